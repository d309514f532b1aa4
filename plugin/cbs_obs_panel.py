"""cbs-obs panel for OBS Studio (Tools -> Scripts -> +): live class-based styling from inside OBS.

Talks to a running ``cbs-obs run`` engine over its local HTTP API. Standard library only, because
OBS embeds its own Python. Network calls run on a worker thread so the OBS interface never
waits on the engine; when the engine is down the status line says so and nothing is raised.

Settings: engine URL and token (``cbs-obs token``), a style and a strength per class, presets,
and a scene -> preset table (one ``Scene name=Preset`` per line) that the engine applies when a
program scene goes live. Hotkeys (Settings -> Hotkeys): next/previous preset, styling on/off,
and one per preset.
"""
from __future__ import annotations

import json
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request

try:
    import obspython as obs
except ImportError:  # imported outside OBS (tests, linters): only the pure helpers are usable
    obs = None

DEFAULT_URL = "http://127.0.0.1:8765"
HOTKEY_PREFIX = "cbs_obs."
POLL_MS = 2000
NO_STYLE = "none"


# -- pure helpers (no OBS calls; unit-testable) -------------------------------------------------
def parse_scene_table(text: str) -> dict:
    """'Scene=Preset' lines -> {scene: preset}; blank lines and '#' comments are skipped."""
    table = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        scene, _, preset = line.rpartition("=")
        if scene.strip() and preset.strip():
            table[scene.strip()] = preset.strip()
    return table


def look_patch(classes, settings_get) -> dict:
    """The assignments the panel's settings describe, as a PATCH /api/look body.

    Classes the user never set in the panel are left out, so loading the script does not undo a
    look given on the engine's command line. ``settings_get`` returns None for unset values.
    """
    assignments = {}
    for cls in classes:
        style = settings_get("style_" + cls)
        if not style:
            continue
        if style == NO_STYLE:
            assignments[cls] = None
        else:
            strength = settings_get("strength_" + cls)
            assignments[cls] = {"style": style, "strength": 1.0 if strength is None else float(strength)}
    return {"assignments": assignments}


class EngineClient:
    """Blocking calls to the engine's API; returns (status, data) and never raises for network trouble."""

    def __init__(self, url: str = DEFAULT_URL, token: str = "", timeout: float = 2.0):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if method != "GET":
            req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                detail = json.loads(e.read()).get("error", "")
            except Exception:
                detail = ""
            return e.code, {"error": detail or f"HTTP {e.code}"}
        except Exception as e:  # refused, timeout, DNS...: the engine is not there
            return 0, {"error": f"engine not reachable at {self.url} ({type(e).__name__}); start it with: cbs-obs run"}


class Panel:
    """The script's state: what the engine offers, what the user set, and a worker for HTTP."""

    def __init__(self):
        self.client = EngineClient()
        self.classes = []
        self.styles = []
        self.presets = []
        self.status = "starting"
        self.settings = None
        self.pushed_look = None
        self.pushed_scenes = None
        self.initial_push = True  # the settings saved with the scene collection still have to reach the engine
        self.hotkeys = {}
        self.jobs = queue.Queue()
        self.lock = threading.Lock()
        self.worker = threading.Thread(target=self._work, name="cbs-obs-panel", daemon=True)
        self.worker.start()

    # worker thread: HTTP only, never OBS calls
    def _work(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception as e:  # a bug here must not surface as an OBS exception
                self.set_status(f"internal error: {type(e).__name__}: {e}")

    def submit(self, fn):
        self.jobs.put(fn)

    def set_status(self, text: str):
        with self.lock:
            changed = text != self.status
            self.status = text
        if changed and obs is not None:
            obs.script_log(obs.LOG_INFO, "[cbs-obs] " + text)

    def refresh_engine(self) -> bool:
        """Fetch classes, styles and presets (worker thread)."""
        status, data = self.client.call("GET", "/api/state")
        if status != 200:
            self.set_status(data.get("error", "engine error"))
            return False
        _, styles = self.client.call("GET", "/api/styles")
        with self.lock:
            self.classes = list(data.get("classes", []))
            self.presets = list(data.get("presets", []))
            self.styles = [s["name"] for s in (styles or {}).get("styles", [])]
        look = data.get("look", {})
        self.set_status(f"connected: {data.get('segmenter')} segmenter, preset {data.get('preset') or '-'}, "
                        f"styling {'on' if look.get('enabled', True) else 'off'}")
        return True

    def push(self, patch, scenes):
        """Send the look and the scene table if they changed since the last successful push (worker)."""
        if not self.classes and not self.refresh_engine():
            return
        if patch is not None and patch != self.pushed_look:
            status, data = self.client.call("PATCH", "/api/look", patch)
            if status == 200:
                self.pushed_look = patch
            else:
                self.set_status("look not applied: " + data.get("error", f"HTTP {status}"))
                return
        if patch is not None:
            self.initial_push = False
        if scenes is not None and scenes != self.pushed_scenes:
            status, data = self.client.call("PUT", "/api/scenes", scenes)
            if status == 200:
                self.pushed_scenes = scenes
            else:
                self.set_status("scene table not applied: " + data.get("error", f"HTTP {status}"))
                return
        self.refresh_engine()

    def action(self, method, path, what):
        def run():
            status, data = self.client.call(method, path)
            if status == 200:
                self.refresh_engine()
            else:
                self.set_status(f"{what} failed: " + data.get("error", f"HTTP {status}"))
        self.submit(run)


PANEL = Panel() if obs is not None else None


# -- OBS glue (main thread) ----------------------------------------------------------------------
def _get(settings, name):
    if not obs.obs_data_has_user_value(settings, name):
        return None
    if name.startswith("strength_"):
        return obs.obs_data_get_double(settings, name)
    return obs.obs_data_get_string(settings, name)


def _current_patch(settings):
    with PANEL.lock:
        classes = list(PANEL.classes)
    if not classes:
        return None
    patch = look_patch(classes, lambda n: _get(settings, n))
    return patch if patch["assignments"] else {}


def script_description():
    return ("<b>cbs-obs</b>: style chosen classes of your camera live (background, person, road, cars...).<br>"
            "Start the engine first: <code>cbs-obs run</code>; paste the token from <code>cbs-obs token</code>.")


def script_defaults(settings):
    obs.obs_data_set_default_string(settings, "engine_url", DEFAULT_URL)
    obs.obs_data_set_default_string(settings, "token", "")
    obs.obs_data_set_default_string(settings, "scene_presets", "")


def script_load(settings):
    PANEL.settings = settings
    _configure(settings)
    PANEL.submit(PANEL.refresh_engine)  # in the worker: OBS start-up never waits on the engine
    _register_hotkeys(settings, ["next_preset", "previous_preset", "toggle"])
    obs.obs_frontend_add_event_callback(_on_event)
    obs.timer_add(_tick, POLL_MS)


def _configure(settings):
    PANEL.client = EngineClient(obs.obs_data_get_string(settings, "engine_url") or DEFAULT_URL,
                                obs.obs_data_get_string(settings, "token"))


def script_update(settings):
    PANEL.settings = settings
    _configure(settings)
    patch = _current_patch(settings)
    scenes = parse_scene_table(obs.obs_data_get_string(settings, "scene_presets"))
    PANEL.submit(lambda: PANEL.push(patch or None, scenes))
    if patch == {}:  # nothing set in the panel: nothing to send, the engine's look stands
        PANEL.initial_push = False


def script_save(settings):
    for name, hid in PANEL.hotkeys.items():
        array = obs.obs_hotkey_save(hid)
        obs.obs_data_set_array(settings, "hotkey_" + name, array)
        obs.obs_data_array_release(array)


def script_unload():
    obs.timer_remove(_tick)
    for hid in PANEL.hotkeys.values():
        obs.obs_hotkey_unregister(hid)
    PANEL.hotkeys.clear()
    PANEL.jobs.put(None)


def _tick():
    """Every 2 s: pick up presets made elsewhere, register their hotkeys, push settings once the engine is up."""
    settings = PANEL.settings
    if settings is None:
        return
    with PANEL.lock:
        presets = list(PANEL.presets)
        have_classes = bool(PANEL.classes)
    _register_hotkeys(settings, ["preset." + p for p in presets])
    if not have_classes:
        PANEL.submit(PANEL.refresh_engine)
    elif PANEL.initial_push:
        script_update(settings)


def _hotkey_action(name):
    def pressed(is_pressed):
        if not is_pressed:
            return
        if name == "next_preset":
            PANEL.action("POST", "/api/cycle/next", "next preset")
        elif name == "previous_preset":
            PANEL.action("POST", "/api/cycle/previous", "previous preset")
        elif name == "toggle":
            PANEL.action("POST", "/api/enabled/toggle", "styling on/off")
        elif name.startswith("preset."):
            PANEL.action("POST", "/api/apply/" + urllib.parse.quote(name[7:], safe=""), "preset " + name[7:])
    return pressed


def _register_hotkeys(settings, names):
    labels = {"next_preset": "cbs-obs: next preset", "previous_preset": "cbs-obs: previous preset",
              "toggle": "cbs-obs: styling on/off"}
    for name in names:
        if name in PANEL.hotkeys:
            continue
        label = labels.get(name) or "cbs-obs: preset " + name[7:]
        hid = obs.obs_hotkey_register_frontend(HOTKEY_PREFIX + name, label, _hotkey_action(name))
        array = obs.obs_data_get_array(settings, "hotkey_" + name)
        obs.obs_hotkey_load(hid, array)
        obs.obs_data_array_release(array)
        PANEL.hotkeys[name] = hid


def _on_event(event):
    if event == obs.OBS_FRONTEND_EVENT_SCENE_CHANGED:
        source = obs.obs_frontend_get_current_scene()
        if source is None:
            return
        name = obs.obs_source_get_name(source)
        obs.obs_source_release(source)
        PANEL.action("POST", "/api/scene/" + urllib.parse.quote(name, safe=""), "scene " + name)


def _on_apply_preset(props, prop):
    name = obs.obs_data_get_string(PANEL.settings, "preset")
    if name:
        PANEL.action("POST", "/api/apply/" + urllib.parse.quote(name, safe=""), "preset " + name)
    return False


def _on_save_preset(props, prop):
    name = obs.obs_data_get_string(PANEL.settings, "new_preset").strip()
    if name:
        PANEL.action("POST", "/api/presets/" + urllib.parse.quote(name, safe=""), "saving preset " + name)
    return False


def _on_refresh(props, prop):
    PANEL.submit(PANEL.refresh_engine)
    return True


def script_properties():
    props = obs.obs_properties_create()
    obs.obs_properties_add_text(props, "engine_url", "Engine URL", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_text(props, "token", "API token (cbs-obs token)", obs.OBS_TEXT_PASSWORD)
    with PANEL.lock:
        classes, styles, presets, status = list(PANEL.classes), list(PANEL.styles), list(PANEL.presets), PANEL.status
    obs.obs_properties_add_text(props, "status", "Status: " + status, obs.OBS_TEXT_INFO)
    obs.obs_properties_add_button(props, "refresh", "Reconnect / refresh lists", _on_refresh)
    for cls in classes:
        lst = obs.obs_properties_add_list(props, "style_" + cls, "Style: " + cls, obs.OBS_COMBO_TYPE_LIST,
                                          obs.OBS_COMBO_FORMAT_STRING)
        for name in [NO_STYLE, *styles]:
            obs.obs_property_list_add_string(lst, name, name)
        obs.obs_properties_add_float_slider(props, "strength_" + cls, "Strength: " + cls, 0.0, 1.0, 0.05)
    plist = obs.obs_properties_add_list(props, "preset", "Preset", obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING)
    for name in presets:
        obs.obs_property_list_add_string(plist, name, name)
    obs.obs_properties_add_button(props, "apply_preset", "Apply preset", _on_apply_preset)
    obs.obs_properties_add_text(props, "new_preset", "Save current look as", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_button(props, "save_preset", "Save preset", _on_save_preset)
    obs.obs_properties_add_text(props, "scene_presets", "Scene -> preset (one 'Scene=Preset' per line)",
                                obs.OBS_TEXT_MULTILINE)
    return props
