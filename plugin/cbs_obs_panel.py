"""cbs-obs panel for OBS Studio (Tools -> Scripts -> +): one click starts live class-based styling.

"Start engine" runs `cbs-obs run` (found without editing paths, see cbsobs_core.find_executable),
keeps it running (cbsobs_supervisor), and puts its video in the current scene as a Media Source
fitted to the canvas, with the settings that keep latency low. When the engine is gone, a
"cbs-obs engine stopped" card covers the video, and the status line and the OBS log say why.
An engine started in a terminal (`cbs-obs run`) on the same port is used as it is.

The panel shows the engine's truth: its look, preset, fps and last error; a change made here sends
only the class that changed; the look chosen is sent again after the engine restarts. The API token
is read from the file cbs-obs keeps, so nothing secret is stored in the scene collection.

OBS facts this file is built around: OBS builds the properties view once from script_properties();
a callback that returns True redraws the *same* props object, so controls that depend on the engine
are added and removed on it inside callbacks. script_log() from a thread is labelled
"[Unknown Script]", so threads queue messages and a timer logs them. Network calls run on a worker
thread so the OBS interface never waits on the engine. Standard library only.
"""
from __future__ import annotations

import importlib
import json
import os
import queue
import re
import sys
import threading
import time
from pathlib import Path

import cbsobs_core as core
import cbsobs_qtview
import cbsobs_supervisor

importlib.reload(core)  # OBS keeps one interpreter: "Reload Scripts" must pick up new helper files too
importlib.reload(cbsobs_supervisor)
importlib.reload(cbsobs_qtview)
Supervisor, engine_env = cbsobs_supervisor.Supervisor, cbsobs_supervisor.engine_env

try:
    import obspython as obs
except ImportError:  # imported outside OBS (tests, linters)
    obs = None

HOTKEY_PREFIX = "cbs_obs."
POLL_S = 1.0
TICK_MS = 250
REDRAW_S = 1.5  # the open panel is redrawn at most this often while what it shows changes
FPS_REDRAW_S = 10.0  # ... and this often when only its fps figure changes
MEDIA_NAME = "cbs-obs"
CARD_NAME = "cbs-obs engine stopped"
CARD_FILE = core.HERE / "engine_stopped.png"
# short labels everywhere: OBS opens its Scripts window narrow, and the widest label or list entry sets the
# panel's width; anything wider than the window is cut off at the right (the status line loses its end)
SOURCES = [("demo", "demo clip"), ("0", "camera 0"), ("1", "camera 1"), ("2", "camera 2"), ("3", "camera 3"),
           ("file", "video file")]
SEGMENTERS = [("person", "person"), ("person-face", "person + face"), ("cityscapes", "street scenes")]
CAMERA_KINDS = ("v4l2_input", "dshow_input", "av_capture_input", "macos-avcapture")
PICTURE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


class Panel:
    """State shared by OBS's threads and the worker. The worker does HTTP only; OBS calls stay on OBS threads."""

    def __init__(self):
        self.location = core.read_location()
        self.port = core.default_port()
        self.client = core.EngineClient(self.url, lambda: core.read_token(self.location))
        self.lock = threading.Lock()
        self.state: dict | None = None  # the engine's /api/state, None while it does not answer
        self.styles: list = []
        self.error = ""  # the last thing that went wrong (a rejected change, an engine exit)
        self.down_reason = ""  # why the engine does not answer
        self.ready = False
        self.camera_note = ""  # the raw camera the engine owns, if OBS has a source on it too
        self.desired: dict | None = None  # {cls: (spec, strength)}: the user's look, re-sent after a restart
        self.mirror: dict = {}  # the engine look last written into the settings
        self.mirror_due = False
        self.first_contact = True
        self.last_uptime = None
        self.logs: queue.Queue = queue.Queue()
        self.jobs: queue.Queue = queue.Queue()
        self.settings = None
        self.props = None
        self.hotkeys: dict = {}
        self.class_props: list = []
        self.options = {"source": "demo", "segmenter": "person"}
        self.supervisor: Supervisor | None = None
        self.want_video = False
        self.card_visible = None
        self.last_status = ""
        self.last_warning = ""
        self.refresher = None  # redraws the open panel (cbsobs_qtview); made on OBS's thread in script_load
        self.shown = None  # what the open panel shows, to redraw it when that changes
        self.last_redraw = 0.0
        self.shown_fps = ""
        self.shown_classes = ""
        self.cameras_due = ""  # "claim" or "release": the raw camera sources, handled on OBS's thread
        self._quit = threading.Event()
        self.worker = threading.Thread(target=self._work, name="cbs-obs-panel", daemon=True)
        self.worker.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_port(self, port: int) -> None:
        if port and port != self.port:
            self.port = port
            self.client = core.EngineClient(self.url, lambda: core.read_token(self.location))
            with self.lock:
                self.state, self.first_contact = None, True

    def log(self, text: str) -> None:
        """From any thread; the OBS timer writes it to the Script Log under this script's name."""
        self.logs.put(text)

    # -- worker thread --------------------------------------------------------------------------
    def _work(self):
        next_poll = 0.0
        while not self._quit.is_set():
            try:
                job = self.jobs.get(timeout=max(0.0, next_poll - time.monotonic()))
            except queue.Empty:
                job = None
            try:
                if job is not None:
                    job()
                if time.monotonic() >= next_poll:
                    self.poll()
                    next_poll = time.monotonic() + POLL_S
            except Exception as e:  # a bug here must not surface as an OBS exception
                self.log(f"internal error: {type(e).__name__}: {e}")

    def poll(self, timeout: float | None = None) -> None:
        """Fetch the engine's state; notice restarts and send the user's look again."""
        if not self.ready:  # script_load has not given the port yet
            return
        client = self.client if timeout is None else core.EngineClient(self.url, self.client.token_fn, timeout)
        status, data = client.call("GET", "/api/state")
        if status != 200:
            with self.lock:
                was_up = self.state is not None
                self.state = None
                self.down_reason = data.get("error", f"HTTP {status}")
            if was_up:
                self.log("engine stopped: " + data.get("error", f"HTTP {status}"))
            return
        uptime = (data.get("stats") or {}).get("uptime_s", 0.0)
        with self.lock:
            came_back = self.state is None or (self.last_uptime is not None and uptime < self.last_uptime)
            first, self.first_contact = self.first_contact, False
            self.last_uptime = uptime
        if came_back:
            _, styles = self.client.call("GET", "/api/styles")
            with self.lock:
                self.styles = list((styles or {}).get("styles", []))
            self.log(f"engine answers at {self.url} ({data.get('segmenter')} segmenter)")
        engine_look = core.look_specs(data.get("look"))
        if came_back and not first and self.desired is not None and self.desired != engine_look:
            self.log("engine restarted: sending the look chosen in OBS again")
            self.send_look(self.desired, engine_look)
            status, data2 = self.client.call("GET", "/api/state")
            if status == 200:
                data, engine_look = data2, core.look_specs(data2.get("look"))
        with self.lock:
            self.state = data
            if engine_look != self.mirror or first:
                self.mirror_due = True
            self.desired = engine_look

    def send_look(self, want: dict, have: dict) -> bool:
        """PATCH only the classes that differ; a rejection is reported and leaves the others alone."""
        ok = True
        for cls in sorted(set(want) | set(have)):
            if want.get(cls) == have.get(cls):
                continue
            value = None if cls not in want else {"style": want[cls][0], "strength": want[cls][1]}
            status, data = self.client.call("PATCH", "/api/look", {"assignments": {cls: value}})
            if status != 200:
                ok = False
                self.report(f"{cls}: change to {value['style'] if value else 'none'} rejected: "
                            + data.get("error", f"HTTP {status}"))
        return ok

    def report(self, text: str) -> None:
        with self.lock:
            self.error = text
        self.log(text)

    def change_classes(self, changes: dict, pictures: dict) -> None:
        """Worker job: upload chosen pictures, then send the changed classes."""
        for cls, path in pictures.items():
            p = Path(path)
            ctype = PICTURE_TYPES.get(p.suffix.lower())
            if ctype is None:
                self.report(f"{cls}: pick a PNG, JPEG or WebP picture (got {p.name})")
                changes.pop(cls, None)
                continue
            try:
                body = p.read_bytes()
            except OSError as e:
                self.report(f"{cls}: cannot read {p}: {e.strerror}")
                changes.pop(cls, None)
                continue
            status, data = self.client.call("POST", "/api/uploads/" + core.upload_name(cls), raw=body,
                                            content_type=ctype)
            if status not in (200, 201):
                self.report(f"{cls}: picture not accepted: " + data.get("error", f"HTTP {status}"))
                changes.pop(cls, None)
        with self.lock:
            have = core.look_specs((self.state or {}).get("look"))
        want = dict(have)
        for cls, value in changes.items():
            if value is None:
                want.pop(cls, None)
            else:
                want[cls] = value
        if self.send_look(want, have):
            with self.lock:
                self.error = ""
        with self.lock:
            self.mirror_due = True  # show the engine's answer (a rejected choice snaps back)
        self.poll()

    def action(self, method: str, path: str, what: str, body=None) -> None:
        def run():
            status, data = self.client.call(method, path, body)
            if status == 0:  # the engine is not running: the status line says so; no warning (OBS pops its log)
                self.log(f"{what} not sent: " + data.get("error", "the engine does not answer"))
            elif status not in (200, 201):
                self.report(f"{what} failed: " + data.get("error", f"HTTP {status}"))
            else:
                self.log(f"{what}: done")
            self.poll()
        self.jobs.put(run)

    def close(self) -> None:
        self._quit.set()
        if self.supervisor is not None:
            self.supervisor.stop()

    # -- engine process -------------------------------------------------------------------------
    def engine_argv(self) -> list:
        exe = core.find_executable(self.location)
        if exe is None:
            raise FileNotFoundError("cbs-obs is not installed where OBS can find it")
        argv = [exe, "run", self.options["source"], "--port", str(self.port), "--segmenter", self.options["segmenter"],
                "--stop-with-stdin"]  # the supervisor holds its stdin: if OBS dies, the engine stops too
        sup = self.supervisor
        if self.desired and not (sup and sup.last_exit.startswith("engine exited (code 2)")):
            for cls, (spec, strength) in sorted(self.desired.items()):
                argv += ["--assign", f"{cls}={spec}@{strength:g}"]
        return argv

    def start_engine(self) -> str:
        running = self.supervisor is not None and self.supervisor.running
        if running:
            return "the engine is already started by OBS"
        status, _ = core.EngineClient(self.url, self.client.token_fn, timeout=0.5).call("GET", "/api/state")
        if status == 200:
            return f"using the engine already running at {self.url} (started outside OBS)"
        if core.find_executable(self.location) is None:
            places = ", ".join(str(p) for p in core.candidate_executables(self.location)[:4])
            text = ("cannot find cbs-obs: install it (pip install cbs-obs) and run `cbs-obs obs plugin-path` once "
                    f"in its environment; looked in {places}...")
            self.report(text)
            return text
        if self.supervisor is None:
            log_path = core.config_dir(self.location) / "engine-obs.log"
            self.supervisor = Supervisor(self.engine_argv, env=engine_env(core.config_dir(self.location)),
                                         log_path=log_path, on_message=self.report_engine)
        self.supervisor.start()
        return "engine starting"

    def report_engine(self, text: str) -> None:
        if text.startswith(("engine exited", "cannot start")):
            self.report(text)
        else:
            self.log(text)

    def status_lines(self) -> list[str]:
        with self.lock:
            state, error = self.state, self.error
            if state is None and not error.startswith(("engine exited", "cannot")):
                error = self.down_reason or error  # why it is down matters more than what failed meanwhile
        sup = self.supervisor.describe(answering=state is not None, shown=error) if self.supervisor is not None else ""
        lines = core.status_lines(state, error=error, supervisor=sup)
        if state is None and (self.supervisor is None or not self.supervisor.running):
            lines.append("press Start engine")
        if self.camera_note:
            lines.append(self.camera_note)
        return lines

    def status(self) -> str:
        """The status on one line (the Script Log); the panel shows status_lines() a row each."""
        return "; ".join(self.status_lines())


PANEL = Panel() if obs is not None else None


# -- OBS glue: everything below runs on OBS's threads ----------------------------------------------
def script_description():
    return ("<b>cbs-obs</b>: style chosen classes of your camera live (background, person...).<br>"
            "Pick a source and press <b>Start engine</b>: the styled video appears in the current scene.")


def script_defaults(settings):
    obs.obs_data_set_default_string(settings, "source", "demo")
    obs.obs_data_set_default_string(settings, "segmenter", "person")
    obs.obs_data_set_default_int(settings, "port", core.default_port())
    obs.obs_data_set_default_bool(settings, "autostart", True)
    obs.obs_data_set_default_string(settings, "scene_presets", "")


def script_load(settings):
    PANEL.settings = settings
    if obs.obs_data_has_user_value(settings, "token"):  # older versions stored it; it lives in its file now
        obs.obs_data_erase(settings, "token")
    PANEL.set_port(obs.obs_data_get_int(settings, "port"))
    PANEL.ready = True
    _read_options(settings)
    saved = obs.obs_data_get_string(settings, "look_json")
    if saved:
        try:
            PANEL.desired = {k: (v[0], float(v[1])) for k, v in json.loads(saved).items()}
        except (ValueError, TypeError, IndexError):
            PANEL.desired = None
    _register_hotkeys(settings, ["next_preset", "previous_preset", "toggle"])
    if PANEL.refresher is None:
        PANEL.refresher = cbsobs_qtview.ViewRefresher()
        if not PANEL.refresher.available:
            PANEL.log(PANEL.refresher.why_not + ": press Refresh to see the engine's latest state")
    obs.obs_frontend_add_event_callback(_on_event)
    obs.timer_add(_tick, TICK_MS)
    if obs.obs_data_get_bool(settings, "autostart") and obs.obs_data_get_bool(settings, "engine_wanted"):
        PANEL.want_video = "update"  # a source the user removed from a scene stays removed
        PANEL.cameras_due = "claim"  # once the scene is loaded (scripts load before it)
        PANEL.log(PANEL.start_engine())
    elif _claimed():
        PANEL.cameras_due = "release"  # OBS closed while the engine had the camera


def _read_options(settings):
    """What the engine is started with, read here on OBS's thread (the supervisor thread makes no OBS calls)."""
    source = obs.obs_data_get_string(settings, "source") or "demo"
    if source == "file":
        source = obs.obs_data_get_string(settings, "source_file") or "demo"
    PANEL.options = {"source": source, "segmenter": obs.obs_data_get_string(settings, "segmenter") or "person"}


def script_update(settings):
    """Called for every change in the panel: sends the classes whose controls changed, nothing else."""
    PANEL.settings = settings
    _read_options(settings)
    port = obs.obs_data_get_int(settings, "port")
    if port != PANEL.port and (PANEL.supervisor is None or not PANEL.supervisor.running):
        PANEL.set_port(port)
    with PANEL.lock:
        state, mirror, due = PANEL.state, dict(PANEL.mirror), PANEL.mirror_due
    if state is None or due:  # the panel does not show the engine's look yet: nothing of it is a user change
        return
    changes, pictures = {}, {}
    for cls in core.look_names(state):
        style = obs.obs_data_get_string(settings, "style_" + cls)
        if style in (core.PICTURE_STYLE, core.PICTURE_REPLACE) and not obs.obs_data_get_string(settings,
                                                                                                 "picture_" + cls):
            continue  # a picture style waits for its picture; the class keeps its look meanwhile
        spec = core.spec_from_controls(cls, lambda n: _get(settings, n))
        strength = round(obs.obs_data_get_double(settings, "strength_" + cls), 3)
        now = None if spec is None else (spec, strength)
        was = mirror.get(cls)
        if was is not None:  # the same look spelled as the controls spell it ("color" is "color:#00ff00")
            was = (core.normalize_spec(was[0]), round(was[1], 3))
        if now == was:
            continue
        if spec is not None and spec.startswith(("style-image:@", "image:@")):
            picture = obs.obs_data_get_string(settings, "picture_" + cls)
            if not (was and was[0] == spec) or picture != obs.obs_data_get_string(settings, "sent_picture_" + cls):
                pictures[cls] = picture
                obs.obs_data_set_string(settings, "sent_picture_" + cls, picture)
        changes[cls] = now
    if changes:
        with PANEL.lock:
            for cls, value in changes.items():  # expected answer; the engine's real one replaces it
                if value is None:
                    PANEL.mirror.pop(cls, None)
                else:
                    PANEL.mirror[cls] = value
        PANEL.jobs.put(lambda: PANEL.change_classes(changes, pictures))


def script_save(settings):
    for name, hid in PANEL.hotkeys.items():
        array = obs.obs_hotkey_save(hid)
        obs.obs_data_set_array(settings, "hotkey_" + name, array)
        obs.obs_data_array_release(array)


def script_unload():
    if PANEL.refresher is not None:
        PANEL.refresher.close()
    obs.timer_remove(_tick)
    obs.obs_frontend_remove_event_callback(_on_event)
    for hid in PANEL.hotkeys.values():
        obs.obs_hotkey_unregister(hid)
    PANEL.hotkeys.clear()
    PANEL.close()
    if PANEL.settings is not None:
        _release_cameras()  # the script removed while the engine had the camera: the stash goes with the script


def _get(settings, name):
    if name.startswith(("strength_", "param_")):
        return obs.obs_data_get_double(settings, name) if name.startswith("strength_") \
            else obs.obs_data_get_int(settings, name)
    if name.startswith("colour_"):
        return obs.obs_data_get_int(settings, name) if obs.obs_data_has_user_value(settings, name) else None
    return obs.obs_data_get_string(settings, name)


def _tick():
    """OBS timer, on OBS's video thread: write queued messages to the Script Log (only OBS's callbacks may log
    under this script's name), then do the rest on OBS's UI thread where OBS's frontend and the Scripts
    window live (here, when this OBS build offers no way to get there)."""
    while True:
        try:
            item = PANEL.logs.get_nowait()
        except queue.Empty:
            break
        level, text = item if isinstance(item, tuple) else (None, item)
        warn = any(w in text for w in ("rejected", "exited", "failed", "cannot"))
        if warn and text == PANEL.last_warning:
            warn = False  # the same failure again (a camera that stays missing): OBS pops the Script Log on warnings
        elif warn:
            PANEL.last_warning = text
        if level is None:
            level = obs.LOG_WARNING if warn else obs.LOG_INFO
        obs.script_log(level, "[cbs-obs] " + text)
    with PANEL.lock:
        presets = list((PANEL.state or {}).get("presets", []))
    new = [n for n in ("preset." + p for p in presets) if n not in PANEL.hotkeys]
    if new and PANEL.settings is not None:
        # here, in OBS's timer callback: the scripting API files a Python callback under the script whose
        # callback is running, and a callback registered from anywhere else (the UI-thread job) crashes OBS
        _register_hotkeys(PANEL.settings, new)
    if PANEL.refresher is None or not PANEL.refresher.run_on_ui(_update_on_ui):
        if PANEL.refresher is None or not PANEL.refresher.available:
            _update()


def _update_on_ui():
    try:
        _update()
    except Exception as e:  # a bug here must not surface in OBS
        PANEL.log(f"internal error: {type(e).__name__}: {e}")


def _update():
    """Show the engine's look and status, the styled video, the stopped card; give cameras back; redraw."""
    settings = PANEL.settings
    if settings is None:
        return
    lines = PANEL.status_lines()
    status = "; ".join(lines)
    if status != PANEL.last_status:
        if status.split(":")[0].split(";")[0] != PANEL.last_status.split(":")[0].split(";")[0]:
            PANEL.logs.put((obs.LOG_INFO, "status: " + status))  # running <-> stopped, said once
        PANEL.last_status = status
        obs.obs_data_set_string(settings, "status", core.panel_text(lines))
    with PANEL.lock:
        state, due, desired = PANEL.state, PANEL.mirror_due, PANEL.desired
        PANEL.mirror_due = False
    if due and state is not None:
        _mirror_engine(settings, state)
    if desired is not None:
        text = json.dumps({k: list(v) for k, v in desired.items()}, sort_keys=True)
        if text != obs.obs_data_get_string(settings, "look_json"):
            obs.obs_data_set_string(settings, "look_json", text)
    if state is not None:
        if PANEL.want_video:
            _ensure_video(add=PANEL.want_video is True)
            PANEL.want_video = False
    if PANEL.cameras_due == "release":
        PANEL.cameras_due = ""
        _release_cameras()
    elif PANEL.cameras_due == "claim" and obs.obs_data_get_bool(settings, "engine_wanted"):
        PANEL.cameras_due = ""
        _claim_cameras()
    _show_card(state is None)
    _redraw_if_changed(status, state)


def _redraw_if_changed(status: str, state) -> None:
    """Redraw the open panel when what it shows changed (status line, classes, presets, look), at most every
    REDRAW_S; a change of the fps figure alone every FPS_REDRAW_S (each redraw makes OBS keep the
    panel's callbacks until the script unloads, so the panel is not redrawn for nothing)."""
    refresher = PANEL.refresher
    if refresher is None or not refresher.available:
        return
    fps = re.search(r"[\d.]+ fps", status)
    shown = (re.sub(r"[\d.]+ fps", "fps", status), tuple(core.look_names(state)),
             tuple((state or {}).get("presets", [])), json.dumps((state or {}).get("look"), sort_keys=True))
    since = time.monotonic() - PANEL.last_redraw
    if since < REDRAW_S or (shown == PANEL.shown and (since < FPS_REDRAW_S or fps is None
                                                      or fps.group() == PANEL.shown_fps)):
        return
    if refresher.request():
        PANEL.shown, PANEL.shown_fps, PANEL.last_redraw = shown, fps.group() if fps else "", time.monotonic()


def _mirror_engine(settings, state):
    """Write the engine's look (and its scene table, if the panel has none) into the panel's settings."""
    specs = core.look_specs(state.get("look"))
    for cls in core.look_names(state):
        spec, strength = specs.get(cls, (None, 1.0))
        controls = core.controls_from_spec(spec)
        obs.obs_data_set_string(settings, "style_" + cls, controls["style"])
        obs.obs_data_set_double(settings, "strength_" + cls, strength)
        if "param" in controls:
            obs.obs_data_set_int(settings, "param_" + cls, controls["param"])
        if "colour" in controls:
            obs.obs_data_set_int(settings, "colour_" + cls, controls["colour"])
    if not obs.obs_data_get_string(settings, "scene_presets").strip() and state.get("scenes"):
        obs.obs_data_set_string(settings, "scene_presets", core.format_scene_table(state["scenes"]))
    with PANEL.lock:
        PANEL.mirror = specs


# -- the video in the scene, and the card that replaces it when the engine is gone -------------------
def _fit_to_canvas(item):
    ovi = obs.obs_video_info()
    obs.obs_get_video_info(ovi)
    bounds = obs.vec2()
    bounds.x, bounds.y = ovi.base_width, ovi.base_height
    pos = obs.vec2()
    pos.x, pos.y = 0, 0
    obs.obs_sceneitem_set_alignment(item, 5)  # top left
    obs.obs_sceneitem_set_pos(item, pos)
    obs.obs_sceneitem_set_bounds_type(item, obs.OBS_BOUNDS_SCALE_INNER)
    obs.obs_sceneitem_set_bounds_alignment(item, 0)  # centred in the bounds
    obs.obs_sceneitem_set_bounds(item, bounds)


def media_settings(url: str):
    """The Media Source settings that keep an MJPEG stream's latency bounded (see ../shared notes)."""
    data = obs.obs_data_create()
    obs.obs_data_set_bool(data, "is_local_file", False)
    obs.obs_data_set_string(data, "input", url)
    obs.obs_data_set_string(data, "input_format", "mpjpeg")
    obs.obs_data_set_int(data, "buffering_mb", 0)
    obs.obs_data_set_int(data, "reconnect_delay_sec", 1)
    obs.obs_data_set_bool(data, "restart_on_activate", False)
    obs.obs_data_set_bool(data, "close_when_inactive", False)
    obs.obs_data_set_bool(data, "clear_on_media_end", False)
    obs.obs_data_set_bool(data, "hw_decode", False)
    obs.obs_data_set_string(data, "ffmpeg_options", "use_wallclock_as_timestamps=1 fflags=nobuffer")
    return data


def _put_in_scene(scene, name, kind, data, add=True):
    """Create or update source ``name`` and make sure it is in ``scene``, fitted to the canvas.

    With ``add=False`` only an existing source is updated (None when there is none in the scene)."""
    source = obs.obs_get_source_by_name(name)
    if source is None and not add:
        return None
    if source is None:
        source = obs.obs_source_create(kind, name, data, None)
    else:
        obs.obs_source_update(source, data)
    item = obs.obs_scene_find_source(scene, name)
    if item is None and add:
        item = obs.obs_scene_add(scene, source)
    if item is not None:
        _fit_to_canvas(item)
    obs.obs_source_release(source)
    return item


def _ensure_video(add: bool = True):
    """The styled video in the current scene, and the stopped card above it (hidden while the engine runs)."""
    scene_source = obs.obs_frontend_get_current_scene()
    if scene_source is None:
        return
    scene = obs.obs_scene_from_source(scene_source)
    data = media_settings(PANEL.url + "/stream.mjpg")
    _put_in_scene(scene, MEDIA_NAME, "ffmpeg_source", data, add)
    obs.obs_data_release(data)
    card = obs.obs_data_create()
    obs.obs_data_set_string(card, "file", str(CARD_FILE))
    item = _put_in_scene(scene, CARD_NAME, "image_source", card, add)
    obs.obs_data_release(card)
    if item is not None:
        obs.obs_sceneitem_set_order(item, obs.OBS_ORDER_MOVE_TOP)
    PANEL.card_visible = None
    PANEL.log(f"video source '{MEDIA_NAME}' in scene '{obs.obs_source_get_name(scene_source)}' plays "
              f"{PANEL.url}/stream.mjpg")
    obs.obs_source_release(scene_source)


# -- the raw camera the engine reads: hidden (and closed) in OBS while the engine owns it ------------------
def _engine_device():
    """The camera device the engine is started on (camera N is /dev/videoN on Linux), None for files and the demo."""
    src = PANEL.options["source"]
    if src.isdigit():
        return f"/dev/video{src}" if sys.platform.startswith("linux") else f"camera {src}"
    return src if src.startswith("/dev/video") else None


def _same_device(a: str, b: str) -> bool:
    return bool(a and b) and os.path.realpath(a) == os.path.realpath(b)


def _claim_cameras() -> None:
    """Before the engine opens its camera: hide the current scene's sources on that camera and make OBS close
    the device (a V4L2 device streams to one program at a time); both are undone by _release_cameras()."""
    device = _engine_device()
    PANEL.camera_note = ""
    if device is None or _claimed():
        return
    scene_source = obs.obs_frontend_get_current_scene()
    if scene_source is None:
        PANEL.cameras_due = "claim"
        return
    scene_name = obs.obs_source_get_name(scene_source)
    scene = obs.obs_scene_from_source(scene_source)
    claimed, unmatched = [], []
    items = obs.obs_scene_enum_items(scene) or []
    for item in items:
        source = obs.obs_sceneitem_get_source(item)
        kind = obs.obs_source_get_unversioned_id(source)
        if kind not in CAMERA_KINDS:
            continue
        name = obs.obs_source_get_name(source)
        data = obs.obs_source_get_settings(source)
        dev = obs.obs_data_get_string(data, "device_id")
        obs.obs_data_release(data)
        if kind != "v4l2_input":
            unmatched.append(name)  # which camera a DirectShow or AVFoundation source reads is not known here
            continue
        if not _same_device(dev, device):
            continue
        was_visible = obs.obs_sceneitem_visible(item)
        obs.obs_sceneitem_set_visible(item, False)
        off = obs.obs_data_create()
        obs.obs_data_set_string(off, "device_id", "")
        obs.obs_source_update(source, off)
        obs.obs_data_release(off)
        claimed.append({"source": name, "scene": scene_name, "item": obs.obs_sceneitem_get_id(item),
                        "device": dev, "visible": was_visible})
    obs.sceneitem_list_release(items)
    obs.obs_source_release(scene_source)
    obs.obs_data_set_string(PANEL.settings, "claimed_cameras", json.dumps(claimed))
    if claimed:
        names = ", ".join(f"'{c['source']}'" for c in claimed)
        PANEL.camera_note = (f"{names} hidden and {device} closed in OBS: the engine reads that camera now "
                             "(shown again when the engine stops)")
    elif unmatched:
        PANEL.camera_note = (f"the engine reads {device}; OBS cannot tell if {', '.join(unmatched)} uses it: "
                             "if so, hide it (the styled video replaces it) and close it so the engine can open it")
    if PANEL.camera_note:
        PANEL.log(PANEL.camera_note)


def _claimed() -> list:
    try:
        value = json.loads(obs.obs_data_get_string(PANEL.settings, "claimed_cameras") or "[]")
        return value if isinstance(value, list) else []
    except ValueError:
        return []


def _release_cameras() -> None:
    """The engine stopped: give the camera back to the OBS sources it was taken from, visible as they were."""
    claimed = _claimed()
    if not claimed:
        return
    for c in claimed:
        source = obs.obs_get_source_by_name(c.get("source", ""))
        if source is None:
            continue
        on = obs.obs_data_create()
        obs.obs_data_set_string(on, "device_id", c.get("device", ""))
        obs.obs_source_update(source, on)
        obs.obs_data_release(on)
        obs.obs_source_release(source)
        scene_source = obs.obs_get_source_by_name(c.get("scene", ""))
        if scene_source is not None:
            item = obs.obs_scene_find_sceneitem_by_id(obs.obs_scene_from_source(scene_source), int(c.get("item", 0)))
            if item is not None:
                obs.obs_sceneitem_set_visible(item, bool(c.get("visible", True)))
            obs.obs_source_release(scene_source)
        PANEL.log(f"camera source '{c.get('source')}' given back its camera {c.get('device')}")
    obs.obs_data_set_string(PANEL.settings, "claimed_cameras", "[]")
    PANEL.camera_note = ""


def _show_card(visible: bool):
    """Show the card in every scene that has it when the engine is gone (and only then)."""
    if visible == PANEL.card_visible:
        return
    card = obs.obs_get_source_by_name(CARD_NAME)
    if card is None:
        return
    obs.obs_source_release(card)
    scenes = obs.obs_frontend_get_scenes() or []
    for scene_source in scenes:
        item = obs.obs_scene_find_source(obs.obs_scene_from_source(scene_source), CARD_NAME)
        if item is not None:
            obs.obs_sceneitem_set_visible(item, visible)
    obs.source_list_release(scenes)
    if PANEL.card_visible is not None or visible:
        PANEL.log("engine gone: OBS shows the 'engine stopped' card" if visible else "engine back: card hidden")
    if PANEL.card_visible and not visible:
        _restart_media()
    PANEL.card_visible = visible


def _restart_media():
    """OBS's Media Source stops retrying after about ten failed reconnects; reopen it when the engine is back."""
    media = obs.obs_get_source_by_name(MEDIA_NAME)
    if media is not None:
        obs.obs_source_media_restart(media)
        obs.obs_source_release(media)


# -- hotkeys and scene events -------------------------------------------------------------------------
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
            PANEL.action("POST", "/api/apply/" + core.quote(name[7:]), "preset " + name[7:])
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
        PANEL.action("POST", "/api/scene/" + core.quote(name), "scene " + name)
    elif event == obs.OBS_FRONTEND_EVENT_EXIT:
        if PANEL.refresher is not None:
            PANEL.refresher.close()
        PANEL.close()


# -- the properties view ------------------------------------------------------------------------------
def _on_start(props, prop):
    """Returns at once: the engine starts on the supervisor's thread, and the open panel is redrawn with the
    engine's classes when it answers (cbsobs_qtview), so OBS's window never waits for the engine."""
    obs.obs_data_set_bool(PANEL.settings, "engine_wanted", True)
    PANEL.want_video = True
    _claim_cameras()
    PANEL.log(PANEL.start_engine())
    _rebuild(props)
    return True


def _on_stop(props, prop):
    obs.obs_data_set_bool(PANEL.settings, "engine_wanted", False)
    if PANEL.supervisor is not None and PANEL.supervisor.running:
        supervisor = PANEL.supervisor

        def stop():  # on the worker: the engine may take seconds to close, OBS's window must not wait
            supervisor.stop()
            PANEL.log("engine stopped from the panel")
            PANEL.cameras_due = "release"
        PANEL.jobs.put(stop)
    else:
        PANEL.log("the engine was not started by OBS; stop it where it runs (Ctrl-C in its terminal)")
    _rebuild(props)
    return True


def _on_refresh(props, prop):
    PANEL.poll(timeout=0.5)  # now, not at the worker's next poll: the redraw shows the engine as it is
    _update()
    _rebuild(props)
    return True


def _on_add_video(props, prop):
    _ensure_video()
    return False


def _on_style_changed(props, prop, settings):
    """A class's style changed: show only the controls that style has (radius, colour, picture)."""
    cls = obs.obs_property_name(prop)[len("style_"):]
    group = obs.obs_property_group_content(obs.obs_properties_get(props, "classes"))
    target = group if group is not None else props
    style = obs.obs_data_get_string(settings, "style_" + cls)
    for name, show in (("param_", style in core.PARAM_STYLES), ("colour_", style == "color"),
                       ("picture_", style in (core.PICTURE_STYLE, core.PICTURE_REPLACE))):
        p = obs.obs_properties_get(target, name + cls)
        if p is not None:
            obs.obs_property_set_visible(p, show)
    return True


def _on_apply_preset(props, prop):
    name = obs.obs_data_get_string(PANEL.settings, "preset")
    if name:
        PANEL.action("POST", "/api/apply/" + core.quote(name), "preset " + name)
    return False


def _on_save_preset(props, prop):
    name = obs.obs_data_get_string(PANEL.settings, "new_preset").strip()
    if name:
        PANEL.action("POST", "/api/presets/" + core.quote(name), "saving preset " + name)
    return False


def _on_apply_scenes(props, prop):
    """The scene table is sent only from this button: loading OBS never replaces the engine's table."""
    table = core.parse_scene_table(obs.obs_data_get_string(PANEL.settings, "scene_presets"))
    PANEL.action("PUT", "/api/scenes", "scene table", table)
    return False


def _rebuild(props):
    """Add the engine-dependent controls on the props OBS shows (class controls, presets, status)."""
    with PANEL.lock:
        state, styles = PANEL.state, list(PANEL.styles)
    obs.obs_data_set_string(PANEL.settings, "status", core.panel_text(PANEL.status_lines()))
    classes_prop = obs.obs_properties_get(props, "classes")
    group = obs.obs_property_group_content(classes_prop)
    for name in PANEL.class_props:
        obs.obs_properties_remove_by_name(group, name)
    PANEL.class_props = []
    live = PANEL.refresher is not None and PANEL.refresher.available
    if state is None:
        obs.obs_properties_add_text(group, "classes_note", "Classes", obs.OBS_TEXT_INFO)
        PANEL.class_props.append("classes_note")
        starting = PANEL.supervisor is not None and PANEL.supervisor.running
        when = "they appear here when it answers" if live else "press Refresh when it answers"
        obs.obs_data_set_string(PANEL.settings, "classes_note",
                                f"the engine is starting: {when}" if starting
                                else "start the engine (or press Refresh) to style its classes")
    else:
        choices = core.style_choices(styles)
        groups = state.get("groups") or {}
        for cls in core.look_names(state):
            # the class name alone (the class's own rows follow it): the Scripts window is narrow
            lst = obs.obs_properties_add_list(group, "style_" + cls, cls, obs.OBS_COMBO_TYPE_LIST,
                                              obs.OBS_COMBO_FORMAT_STRING)
            if cls in groups:
                obs.obs_property_set_long_description(lst, f"{cls} = {' + '.join(groups[cls])}")
            for name in choices:
                obs.obs_property_list_add_string(lst, name, name)
            obs.obs_property_set_modified_callback(lst, _on_style_changed)
            obs.obs_properties_add_float_slider(group, "strength_" + cls, "  strength", 0.0, 1.0, 0.05)
            obs.obs_properties_add_int_slider(group, "param_" + cls, "  size", 1, 99, 1)
            obs.obs_properties_add_color(group, "colour_" + cls, "  colour")
            obs.obs_properties_add_path(group, "picture_" + cls, "  picture", obs.OBS_PATH_FILE,
                                        "Pictures (*.png *.jpg *.jpeg *.webp)", None)
            PANEL.class_props += [n + cls for n in ("style_", "strength_", "param_", "colour_", "picture_")]
            style = obs.obs_data_get_string(PANEL.settings, "style_" + cls)
            for name, show in (("param_", style in core.PARAM_STYLES), ("colour_", style == "color"),
                               ("picture_", style in (core.PICTURE_STYLE, core.PICTURE_REPLACE))):
                obs.obs_property_set_visible(obs.obs_properties_get(group, name + cls), show)
    shown = ", ".join(core.look_names(state)) if state is not None else ""
    if shown and shown != PANEL.shown_classes:
        PANEL.log("panel shows controls for " + shown)
    PANEL.shown_classes = shown
    plist = obs.obs_properties_get(props, "preset")
    obs.obs_property_list_clear(plist)
    for name in (state or {}).get("presets", []):
        obs.obs_property_list_add_string(plist, name, name)


def script_properties():
    props = obs.obs_properties_create()
    PANEL.props = props
    obs.obs_properties_add_button(props, "start_engine", "Start engine", _on_start)
    obs.obs_properties_add_button(props, "stop_engine", "Stop engine", _on_stop)
    obs.obs_properties_add_button(props, "refresh", "Refresh", _on_refresh)
    obs.obs_properties_add_text(props, "status", "Engine", obs.OBS_TEXT_INFO)
    obs.obs_properties_add_group(props, "classes", "Look", obs.OBS_GROUP_NORMAL, obs.obs_properties_create())
    src = obs.obs_properties_add_list(props, "source", "Source", obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING)
    for value, label in SOURCES:
        obs.obs_property_list_add_string(src, label, value)
    obs.obs_properties_add_path(props, "source_file", "Video file", obs.OBS_PATH_FILE,
                                "Videos (*.mp4 *.mkv *.mov *.webm *.avi);;All files (*)", None)
    seg = obs.obs_properties_add_list(props, "segmenter", "Segmenter", obs.OBS_COMBO_TYPE_LIST,
                                      obs.OBS_COMBO_FORMAT_STRING)
    for value, label in SEGMENTERS:
        obs.obs_property_list_add_string(seg, label, value)
    obs.obs_property_set_long_description(seg, "person: a webcam's person and background; person + face: the face "
                                                "styled apart; street scenes: road, cars, sky... (Cityscapes)")
    obs.obs_properties_add_int(props, "port", "Engine port", 1024, 65535, 1)
    # short labels: OBS's Scripts window is narrow, and the longest label sets where every control starts
    auto = obs.obs_properties_add_bool(props, "autostart", "Start with OBS")
    obs.obs_property_set_long_description(auto, "Start the engine when OBS starts, once it was started here")
    add = obs.obs_properties_add_button(props, "add_video", "Add video to scene", _on_add_video)
    obs.obs_property_set_long_description(add, "Add the styled video to the current scene, fitted to the canvas")
    obs.obs_properties_add_list(props, "preset", "Preset", obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING)
    obs.obs_properties_add_button(props, "apply_preset", "Apply preset", _on_apply_preset)
    obs.obs_properties_add_text(props, "new_preset", "Save look as", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_button(props, "save_preset", "Save preset", _on_save_preset)
    table = obs.obs_properties_add_text(props, "scene_presets", "Scene presets", obs.OBS_TEXT_MULTILINE)
    obs.obs_property_set_long_description(table, "One 'Scene=Preset' per line: that preset is applied when the "
                                                 "scene goes live")
    obs.obs_properties_add_button(props, "apply_scenes", "Apply scene table", _on_apply_scenes)
    _rebuild(props)
    return props
