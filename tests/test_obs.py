"""Against a real OBS Studio (headless under Xvfb): the one-click path a streamer walks (script added from
Tools -> Scripts -> +, Start engine, a style picked, the engine killed, OBS restarted), the script panel, hotkeys,
scene presets,
the engine's OBS bridge, and a media source playing the engine's stream."""
from __future__ import annotations

import base64
import json
import time
import urllib.request

import cv2
import numpy as np
import pytest

from tests.conftest import TOKEN, wait_for
from tests.obs_harness import Obs, Xvfb, free_port, require_obs



@pytest.fixture(scope="module")
def display(tmp_path_factory):
    require_obs()
    x = Xvfb(tmp_path_factory.mktemp("xvfb"))
    yield x.start()
    x.stop()


def wait_until(pred, timeout=20.0, what="condition"):
    if not wait_for(pred, timeout):
        pytest.fail(f"timed out waiting for {what}")


def style_of(live_engine, cls="background"):
    return next((a.style for a in live_engine.look.assignments if a.cls == cls), None)


def api(live_engine, method, path, body=None):
    req = urllib.request.Request(live_engine.server.url + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def _write_token(token: str) -> None:
    """The token file the engine would have written: the script reads it from there (nothing pasted)."""
    from cbs_obs.control.token import token_path

    token_path().parent.mkdir(parents=True, exist_ok=True)
    token_path().write_text(token + "\n")


def _log_has(o, text, timeout=20.0):
    wait_until(lambda: text in o.obs_log(), timeout, f"OBS log line {text!r}")


@pytest.fixture
def obs_with_script(display, live_engine, tmp_path):
    _write_token(TOKEN)
    api(live_engine, "PUT", "/api/scenes", {"Scene 2": "Magenta", "Scene": "Blurred"})
    o = Obs(tmp_path, display, script_settings={"port": live_engine.server.port}).start()
    yield o
    o.stop()
    log = o.obs_log()
    assert "Traceback" not in log, log[-3000:]


def test_panel_shows_the_engines_look_and_keeps_its_scene_table(display, live_engine, tmp_path):
    """Findings 4 and 6: a script loaded with OBS shows the look the engine runs (not 'none / 0.00'),
    never replaces the engine's scene table with its own empty one, and stores no token."""
    _write_token(TOKEN)
    api(live_engine, "PUT", "/api/scenes", {"Scene 2": "Magenta"})
    api(live_engine, "PATCH", "/api/look", {"assignments": {"background": {"style": "blur:9", "strength": 0.8}}})
    o = Obs(tmp_path, display, script_settings={"port": live_engine.server.port, "token": "old-plain-token",
                                                "scene_presets": ""}).start()
    try:
        _log_has(o, "engine answers at")
        time.sleep(2.5)  # several polls and ticks: nothing may be pushed
        assert live_engine.controller.presets.scenes == {"Scene 2": "Magenta"}
        assert style_of(live_engine) == "blur:9"
    finally:
        o.stop()
    saved = o.collection()["modules"]["scripts-tool"][0]["settings"]
    assert saved["style_background"] == "blur" and saved["param_background"] == 9
    assert abs(saved["strength_background"] - 0.8) < 1e-6
    assert saved["scene_presets"] == "Scene 2=Magenta"
    assert "token" not in saved and TOKEN not in json.dumps(o.collection())
    assert "Traceback" not in o.obs_log()


def test_hotkeys_switch_presets(obs_with_script, live_engine):
    _log_has(obs_with_script, "engine answers at")
    c = obs_with_script.client()
    wait_until(lambda: "cbs_obs.preset.Green" in str(c.get_hot_key_list().hotkeys), 10, "preset hotkeys")
    c.trigger_hot_key_by_name("cbs_obs.preset.Green")
    wait_until(lambda: style_of(live_engine) == "color:#00ff00", what="hotkey preset Green")
    c.trigger_hot_key_by_name("cbs_obs.next_preset")
    wait_until(lambda: live_engine.controller.preset == "Magenta", what="next preset")
    c.trigger_hot_key_by_name("cbs_obs.toggle")
    wait_until(lambda: not live_engine.look.enabled, what="styling off")
    c.trigger_hot_key_by_name("cbs_obs.toggle")
    wait_until(lambda: live_engine.look.enabled, what="styling on")


def test_program_scene_switch_applies_its_preset(obs_with_script, live_engine):
    _log_has(obs_with_script, "engine answers at")
    c = obs_with_script.client()
    c.set_current_scene_transition("Cut")
    c.set_current_program_scene("Scene 2")
    wait_until(lambda: style_of(live_engine) == "color:#ff00ff", what="Scene 2 -> Magenta")
    c.set_current_program_scene("Scene")
    wait_until(lambda: style_of(live_engine) == "blur", what="Scene -> Blurred")


def test_script_with_engine_down_says_so_without_exceptions(display, tmp_path):
    o = Obs(tmp_path, display, script_settings={"port": free_port(), "style_background": "blur"}).start()
    try:
        _log_has(o, "[cbs-obs] status: engine stopped: engine not reachable at http://127.0.0.1:", 15)
        o.client().trigger_hot_key_by_name("cbs_obs.next_preset")
        _log_has(o, "next preset not sent: engine not reachable", 10)
    finally:
        o.stop()
    log = o.obs_log()
    assert "Traceback" not in log and "[Unknown Script]" not in log


def test_bridge_follows_scenes_and_reconnects_after_obs_restart(display, live_engine, tmp_path):
    from cbs_obs.obs.bridge import ObsBridge, ObsSettings

    api(live_engine, "PUT", "/api/scenes", {"Scene 2": "Green", "Scene": "Blurred"})
    o = Obs(tmp_path, display).start()
    bridge = ObsBridge(ObsSettings("127.0.0.1", o.port, o.password), live_engine.controller, max_backoff=1.0).start()
    try:
        assert bridge.connected.wait(15)
        wait_until(lambda: style_of(live_engine) == "blur", what="preset of the current scene on connect")
        c = o.client()
        c.set_current_scene_transition("Cut")
        c.set_current_program_scene("Scene 2")
        wait_until(lambda: style_of(live_engine) == "color:#00ff00", what="bridge: Scene 2 -> Green")
        c.disconnect()
        o.kill()  # OBS crashes...
        wait_until(lambda: not bridge.connected.is_set(), 10, "bridge to notice")
        api(live_engine, "POST", "/api/apply/Magenta")  # the look changes meanwhile
        o.start()  # ...and comes back (its collection saved Scene 2? it was killed: program scene is Scene)
        wait_until(lambda: bridge.connected.is_set() and bridge.connections >= 2, 30, "reconnect")
        wait_until(lambda: style_of(live_engine) in ("blur", "color:#00ff00"), what="scene preset re-applied")
    finally:
        bridge.close()
        o.stop()
    logs = o.obs_log() + (tmp_path / "obs-stdout.log").read_text(errors="replace")
    assert o.password not in logs


def _screenshot(client, name):
    resp = client.get_source_screenshot(name, "png", 320, None, -1)
    data = resp.image_data.split(",", 1)[1]
    return cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)


def _corner_is(img, bgr, tol=40):
    return img is not None and all(abs(int(img[3, 3, i]) - bgr[i]) < tol for i in range(3))


def test_obs_setup_media_source_shows_styled_frames(display, live_engine, tmp_path):
    from cbs_obs.obs.bridge import ObsSettings
    from cbs_obs.obs.setup import setup_source

    o = Obs(tmp_path, display, canvas=(1280, 720)).start()
    try:
        settings = ObsSettings("127.0.0.1", o.port, o.password)
        api(live_engine, "PATCH", "/api/look", {"assignments": {"background": "color:#00ff00"}})
        url = live_engine.server.url + "/stream.mjpg"
        assert "created source 'cbs-obs'" in setup_source(settings, url)
        assert "updated source 'cbs-obs'" in setup_source(settings, url)  # idempotent
        c = o.client()
        item = next(i for i in c.get_scene_item_list("Scene").scene_items if i["sourceName"] == "cbs-obs")
        t = item["sceneItemTransform"]  # finding 9: fitted to the 1280x720 canvas, not 640x360 in a corner
        assert (t["boundsType"], t["boundsWidth"], t["boundsHeight"]) == ("OBS_BOUNDS_SCALE_INNER", 1280, 720)
        inputs = {i["inputName"]: i["inputKind"] for i in c.get_input_list().inputs}
        assert inputs["cbs-obs"] == "ffmpeg_source"

        def shot():
            try:
                return _screenshot(c, "cbs-obs")
            except Exception:  # 702 until the source has its first frame
                return None

        wait_until(lambda: _corner_is(shot(), (0, 255, 0)), 30, "green background in OBS")
        img = shot()
        assert np.abs(img[100:, 100:220].astype(int) - [0, 255, 0]).sum(axis=2).mean() > 60  # the person is not green
        t0 = time.monotonic()
        api(live_engine, "PATCH", "/api/look", {"assignments": {"background": "color:#ff00ff"}})
        wait_until(lambda: _corner_is(shot(), (255, 0, 255)), 30, "magenta background in OBS")
        t_obs = time.monotonic() - t0
        first = next(t for t, px in live_engine.timeline.frames if t >= t0 and px[0] > 200 and px[1] < 60)
        print(f"look change -> first engine output frame: {(first - t0) * 1000:.0f} ms; "
              f"-> OBS screenshot shows it: {t_obs * 1000:.0f} ms")
    finally:
        o.stop()


def _cli(*args, timeout=120):
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("cbs-obs")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout)


def test_obs_setup_says_what_is_wrong_in_one_line(display, tmp_path):
    """Finding 9: OBS not running, and a wrong password, each get their own one-line message."""
    r = _cli("obs", "setup", "--obs-port", str(free_port()))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cannot reach OBS" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    o = Obs(tmp_path, display).start()
    try:
        r = _cli("obs", "setup", "--obs-port", str(o.port), "--obs-password", "wrong-password")
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert "the password is wrong" in r.stderr and "cannot reach" not in r.stderr, r.stderr
        assert "wrong-password" not in r.stderr + r.stdout
    finally:
        o.stop()


# -- the streamer's path: OBS running, script added from Tools -> Scripts -> +, one click ------------
def _engine_pids(port: int) -> list[int]:
    from pathlib import Path

    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"cbs-obs") for a in argv[:2]) and b"run" in argv and str(port).encode() in argv:
            pids.append(int(proc.name))
    return pids


def _engine_argv(pid: int) -> list[str]:
    from pathlib import Path

    return [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]


def _engine_state(port: int):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=2) as r:
            return json.load(r)
    except Exception:
        return None


def _engine_style(port: int, cls="background"):
    state = _engine_state(port)
    if state is None:
        return None
    return next((a["style"] for a in state["look"]["assignments"] if a["cls"] == cls), "none")


def _shot_or_none(client, name):
    try:
        return _screenshot(client, name)
    except Exception:
        return None


def _is_green(img):
    return img is not None and _corner_is(img, (0, 255, 0), 60)


def _combo_boxes(png, x=900, top=250):
    """Style combos in the panel's Look group (found by their colour in a screenshot): their centres' y. x=900 is
    inside every list at the enlarged size and left of a colour row's "Select color" button (same colour)."""
    img = cv2.imread(str(png))
    col = img[:, x].astype(int)
    group = next(y for y in range(top, img.shape[0]) if abs(col[y] - [56, 46, 43]).sum() < 6)
    runs, start = [], None
    for y in range(group, img.shape[0]):
        inside = abs(col[y] - [75, 64, 60]).sum() < 6
        if inside and start is None:
            start = y
        elif not inside and start is not None:
            if y - start >= 18:
                runs.append((start + y) // 2)
            start = None
    return runs


BUTTON_ROWS = {"Start engine": 143, "Stop engine": 187, "Refresh": 231}


def _panel_left(png) -> int:
    """Where the panel's field column starts (the left edge of Start engine): OBS moves it when the text in
    the panel gets longer."""
    img = cv2.imread(str(png))
    row = img[133].astype(int)
    return next(x for x in range(500, img.shape[1]) if abs(row[x] - [75, 64, 60]).sum() < 8)


def _press(screen, button: str) -> None:
    screen.click(_panel_left(screen.shot("press")) + 40, BUTTON_ROWS[button])


def _pick_source(screen, label, shot_name):
    """Pick the panel's Source list entry ``label`` (with the engine stopped the Look group holds no list,
    so Source is the first list under it)."""
    time.sleep(2)  # the panel redraws without the class lists once the engine is gone
    shot = screen.shot(shot_name)
    x = _panel_left(shot) + 238  # right of the list's text, left of its arrow
    combos = _combo_boxes(shot, x=x)
    assert combos, f"no Source list in the panel (see {shot})"
    screen.click(x, combos[0])
    screen.type(label)
    screen.key("Return")
    time.sleep(1)


def test_one_click_path_as_a_streamer(display, tmp_path, person_model):
    """OBS already running; `cbs-obs obs plugin-path`; Tools -> Scripts -> + with that path; Start engine;
    a style picked in the panel and seen in OBS; the engine killed (card, log, restart, look back);
    OBS restarted (engine back by itself, scene table intact); OBS closed (engine gone)."""
    from tests.obs_ui import ScriptsWindow, Screen, require_xdotool

    require_xdotool()
    port = free_port()
    o = Obs(tmp_path, display, canvas=(1280, 720), env={"CBS_OBS_PORT": str(port)}).start()
    screen = Screen(display, tmp_path / "shots")
    figures = {}
    try:
        r = _cli("obs", "plugin-path")
        assert r.returncode == 0, r.stderr
        script = r.stdout.strip()
        win = ScriptsWindow(screen).open()
        t_added = time.monotonic()
        win.add_script(script)
        _log_has(o, "Loaded python script: cbs_obs_panel.py", 10)
        screen.shot("1-script-added-default-size")
        win.enlarge()
        c = o.client()
        _press(screen, "Start engine")  # the first control of the panel
        t_click = time.monotonic() - 0.3  # Screen.click waits 0.3 s after the click
        # OBS's window keeps answering while the engine starts: obs-websocket runs this request on OBS's UI
        # thread and answers only when that thread is free (it waited for the engine, up to 20 s, before)
        t0 = time.monotonic()
        c.set_studio_mode_enabled(True)
        figures["UI thread answers while the engine starts"] = time.monotonic() - t0
        assert figures["UI thread answers while the engine starts"] < 1.5, figures
        assert _engine_state(port) is None  # it was measured while the engine was still starting
        wait_until(lambda: _engine_state(port) is not None, 60, "the engine started by the panel")
        c.set_studio_mode_enabled(False)
        pids = _engine_pids(port)
        assert len(pids) == 1
        argv = _engine_argv(pids[0])
        assert not {"--vcam", "--null", "--record", "--preview"} & set(argv), argv  # no output flags
        wait_until(lambda: (img := _shot_or_none(c, "cbs-obs")) is not None and img.mean() > 20, 30,
                   "styled video in OBS's Media Source")
        figures["script added -> styled video in OBS"] = time.monotonic() - t_added
        figures["Start engine clicked -> styled video in OBS"] = time.monotonic() - t_click
        shot = screen.shot("2-engine-started")
        inputs = {i["inputName"]: i["inputKind"] for i in c.get_input_list().inputs}
        assert inputs.get("cbs-obs") == "ffmpeg_source" and inputs.get("cbs-obs engine stopped") == "image_source"
        media = c.get_input_settings("cbs-obs").input_settings
        assert "use_wallclock_as_timestamps=1" in media["ffmpeg_options"] and media["buffering_mb"] == 0
        items = {i["sourceName"]: i for i in c.get_scene_item_list("Scene").scene_items}
        t = items["cbs-obs"]["sceneItemTransform"]
        assert (t["boundsType"], t["boundsWidth"], t["boundsHeight"]) == ("OBS_BOUNDS_SCALE_INNER", 1280, 720)
        assert not items["cbs-obs engine stopped"]["sceneItemEnabled"]
        _log_has(o, "panel shows controls for background, person", 5)
        _log_has(o, "[cbs-obs] status: engine running", 5)

        # a style picked in the panel: the background's style list, typed like a user ("color" = green)
        combos = _combo_boxes(shot)
        assert len(combos) >= 2, f"no style lists in the panel (see {shot})"
        screen.click(905, combos[0])
        screen.type("color")
        screen.key("Return")
        wait_until(lambda: _engine_style(port) == "color", 15, "the panel's choice to reach the engine")
        wait_until(lambda: _is_green(_shot_or_none(c, "cbs-obs")), 15, "green background in OBS")
        time.sleep(2)  # no click: the panel redraws itself with the new look in its status line
        screen.shot("3-style-picked")

        # the engine dies: the card, the log, the supervisor, the look
        t_kill = time.monotonic()
        import os
        import signal

        os.kill(pids[0], signal.SIGKILL)
        scene_item = items["cbs-obs engine stopped"]["sceneItemId"]
        wait_until(lambda: c.get_scene_item_enabled("Scene", scene_item).scene_item_enabled, 10, "stopped card")
        figures["engine killed -> stopped card shown"] = time.monotonic() - t_kill
        card = _shot_or_none(c, "Scene")
        assert card is not None and abs(card[1, 160].astype(int) - [60, 60, 200]).sum() < 90, "card not on screen"
        _log_has(o, "engine gone: OBS shows the 'engine stopped' card", 5)
        _log_has(o, "engine exited (killed by SIGKILL)", 5)
        _log_has(o, "[cbs-obs] status: engine stopped", 5)
        screen.shot("4-engine-killed-script-log")
        win.close_script_log()
        time.sleep(2)
        screen.shot("5-engine-killed-panel")
        wait_until(lambda: _engine_state(port) is not None, 60, "the supervisor to restart the engine")
        wait_until(lambda: _engine_style(port) == "color", 15, "the look to return")
        wait_until(lambda: not c.get_scene_item_enabled("Scene", scene_item).scene_item_enabled, 10, "card hidden")
        wait_until(lambda: _is_green(_shot_or_none(c, "cbs-obs")), 30, "green video back in OBS")
        figures["engine killed -> styled video back in OBS"] = time.monotonic() - t_kill
        time.sleep(2)
        screen.shot("6-engine-back")

        # a camera source in the scene on the device the engine will read (no camera here: the engine cannot
        # open it, but what OBS does with its own source is what is checked)
        cam = c.create_input("Scene", "Webcam", "v4l2_input", {"device_id": "/dev/video0"}, True).scene_item_id

        # Stop engine: the engine goes, the card shows
        _press(screen, "Stop engine")
        wait_until(lambda: not _engine_pids(port), 15, "Stop engine to stop the engine")
        wait_until(lambda: c.get_scene_item_enabled("Scene", scene_item).scene_item_enabled, 10, "card after Stop")
        _log_has(o, "engine stopped from the panel", 5)

        # camera 0 picked as the source, Start engine: OBS's Webcam source is hidden and lets go of the device
        _pick_source(screen, "camera 0", "7-source-list")
        _press(screen, "Start engine")
        wait_until(lambda: not c.get_scene_item_enabled("Scene", cam).scene_item_enabled, 10, "the Webcam hidden")
        assert c.get_input_settings("Webcam").input_settings["device_id"] == ""
        _log_has(o, "'Webcam' hidden and /dev/video0 closed in OBS: the engine reads that camera now", 5)
        _log_has(o, "cannot open camera 0", 20)  # no camera on this machine: the engine says so, OBS pops its log
        time.sleep(1)
        win.close_script_log()
        screen.shot("8-camera-taken-by-the-engine")
        _press(screen, "Stop engine")  # Stop engine: the Webcam gets its camera back, visible again
        wait_until(lambda: c.get_scene_item_enabled("Scene", cam).scene_item_enabled, 15, "the Webcam shown again")
        assert c.get_input_settings("Webcam").input_settings["device_id"] == "/dev/video0"
        _log_has(o, "camera source 'Webcam' given back its camera /dev/video0", 5)
        wait_until(lambda: not _engine_pids(port), 15, "the camera engine to stop")

        # back to the demo clip; Start engine: the engine comes back with the look
        _pick_source(screen, "demo clip", "9-source-list")
        _press(screen, "Start engine")
        wait_until(lambda: _engine_style(port) == "color", 60, "Start engine again, with the look")

        # the user's scene table (set in the web panel) survives an OBS restart
        token = open(os.path.join(os.environ["CBS_OBS_CONFIG"], "token")).read().strip()

        def put(path, body):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="PUT" if "scenes" in path else "POST",
                                         data=json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=10).close()

        put("/api/presets/Teal", {"assignments": [{"cls": "background", "style": "color:#008080", "strength": 1}]})
        put("/api/scenes", {"Scene 2": "Teal"})
        c.disconnect()
        o.stop()
        wait_until(lambda: not _engine_pids(port), 15, "the engine to stop with OBS")
        t_restart = time.monotonic()
        o.start(fresh=False)
        wait_until(lambda: _engine_state(port) is not None, 60, "the engine to start with OBS")
        figures["OBS started -> engine answers (autostart)"] = time.monotonic() - t_restart
        time.sleep(2.5)
        state = _engine_state(port)
        assert state["scenes"] == {"Scene 2": "Teal"}
        assert _engine_style(port) == "color"
        c = o.client()
        wait_until(lambda: _is_green(_shot_or_none(c, "cbs-obs")), 30, "the styled video in OBS after its restart")
        c.disconnect()
    finally:
        o.stop()
    wait_until(lambda: not _engine_pids(port), 15, "the engine to stop with OBS")
    log = o.obs_log()
    assert "Traceback" not in log and "[Unknown Script]" not in log
    for k, v in figures.items():
        print(f"{k}: {v:.1f} s")


def _status_crop(png, top=120):
    """The panel's rows above its Look group (buttons and the status line), from a screenshot."""
    img = cv2.imread(str(png))
    col = img[:, 990].astype(int)
    group = next(y for y in range(top + 130, img.shape[0]) if abs(col[y] - [56, 46, 43]).sum() < 6)
    return img[top + 120:group, 560:1250]


def test_script_added_while_the_engine_runs_shows_its_classes_and_a_live_status(display, thirds_engine, tmp_path):
    """Finding 2 and the live status line: added through Tools -> Scripts -> + with an engine already running
    (started in a terminal), the panel shows the engine's classes and groups (person = face + body) with no
    click, redraws its status line by itself when the look changes elsewhere, and a style picked for
    `person` styles face and body."""
    from tests.conftest import thirds_colours
    from tests.obs_ui import require_xdotool

    require_xdotool()
    _write_token(TOKEN)
    url = thirds_engine.server.url
    o = Obs(tmp_path, display, env={"CBS_OBS_PORT": str(thirds_engine.server.port)}).start()
    try:
        screen, win = _script_added_through_the_window(o, display, tmp_path)
        screen.shot("1-script-added-engine-running-default-size")
        win.enlarge()
        time.sleep(2)
        before = _status_crop(screen.shot("2-enlarged"))
        api(thirds_engine, "PATCH", "/api/look", {"assignments": {"background": "color:#ff00ff"}})
        assert "127.0.0.1" in url
        wait_until(lambda: (now := _status_crop(screen.shot("3-status-after-api-change"))).shape != before.shape
                   or np.abs(now.astype(int) - before).sum() > 1000, 10, "the status line to change with no click")

        shot = screen.shot("4-before-person-picked")
        combos = _combo_boxes(shot)
        assert len(combos) == 4, f"expected style lists for background, face, body, person (see {shot})"
        screen.click(905, combos[3])
        screen.type("color")
        screen.key("Return")
        wait_until(lambda: ("person", "color") in [(a.cls, a.style) for a in thirds_engine.look.assignments], 15,
                   "the person style to reach the engine")

        def styled():
            with urllib.request.urlopen(url + "/snapshot.jpg", timeout=10) as r:
                img = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
            bg, face, body = thirds_colours(img)
            return face[1] > 200 > face[2] and body[1] > 200 > body[2] and bg[1] < 60 and bg[2] > 200
        wait_until(styled, 15, "face and body green, background magenta")
        time.sleep(2.5)
        screen.shot("5-person-picked")
    finally:
        o.stop()
    assert "Traceback" not in o.obs_log()


PANEL_BG, GROUP_BG, HANDLE = (42, 33, 31), (56, 46, 43), (75, 64, 60)  # BGR in OBS 29's default theme


def _runs(row, x0: int, x1: int) -> list:
    """(start, end, colour) of each run of one colour in ``row[x0:x1]``."""
    runs, start = [], x0
    for x in range(x0 + 1, x1 + 1):
        if x == x1 or tuple(row[x]) != tuple(row[start]):
            runs.append((start, x, tuple(int(v) for v in row[start])))
            start = x
    return runs


def _panel_fit(png, window) -> dict:
    """Where the panel's content ends and its scroll area's visible part ends, from a screenshot.

    OBS's properties view scrolls vertically only: content wider than the view is cut at its right edge, and
    every wrapped line in it (the status line) loses its end. The Look group spans the content's full width, so
    its right edge (when it is in view) is the content's; the vertical scroll bar's handle marks where the
    visible part ends; text cut by that edge has pixels right at it."""
    img = cv2.imread(str(png)).astype(int)
    wx, wy, ww, wh = window
    mid = wx + ww // 2
    bars, groups = [], []
    for y in range(wy, min(wy + wh, img.shape[0])):
        runs = _runs(img[y], mid, min(wx + ww, img.shape[1]))
        for (_, _, before), (s, e, colour) in zip(runs, runs[1:], strict=False):
            if before == PANEL_BG and colour == HANDLE and 6 <= e - s <= 14:
                bars.append((s, y))
            if before == PANEL_BG and colour == GROUP_BG and e - s >= 100:
                groups.append((e, y))
    assert bars, f"no scroll bar in the panel (see {png})"
    bar = max(x for x, _ in bars)
    top = min(y for x, y in bars if x == bar)
    area = img[top:wy + wh - 70, mid:bar]
    text_x = np.nonzero((area.min(axis=2) > 150).any(axis=0))[0]
    return {"group_end": max(e for e, _ in groups) if groups else None, "bar": bar,
            "text_end": mid + int(text_x.max()) if len(text_x) else 0}


def _assert_fits(png, window, *, group: bool) -> dict:
    fit = _panel_fit(png, window)
    assert fit["bar"] - fit["text_end"] >= 6, f"text is cut at the panel's right edge: {fit} ({png})"
    if group:
        assert fit["group_end"] is not None, f"the Look group is not in view (see {png})"
        assert fit["bar"] - fit["group_end"] >= 6, f"the panel is wider than its view and cut at the right: {fit} " \
                                                   f"({png})"
        assert fit["text_end"] <= fit["group_end"], f"text runs past the panel's edge: {fit} ({png})"
    return fit


def _script_added_through_the_window(o, display, tmp_path):
    """Tools -> Scripts -> + with the panel script, OBS already running; waits for the panel's controls."""
    from tests.obs_ui import ScriptsWindow, Screen

    screen = Screen(display, tmp_path / "shots")
    win = ScriptsWindow(screen).open()
    win.add_script(_cli("obs", "plugin-path").stdout.strip())
    _log_has(o, "panel shows controls for background, face, body, person", 10)
    time.sleep(2)
    return screen, win


def _assert_panel_fits(screen, window, name: str) -> None:
    """The panel as OBS shows it (status line in view), then scrolled down to its Look group: nothing cut."""
    fit = _assert_fits(screen.shot(name), window, group=False)
    screen.xdo("mousemove", fit["bar"] - 265, window[1] + 300)  # the label column's empty left part
    clicks = 0
    while clicks < 8:  # the wheel, a click at a time, until the Look group is in view
        screen.xdo("click", 5)
        clicks += 1
        time.sleep(0.4)
        shot = screen.shot(f"{name}-scrolled")
        if _panel_fit(shot, window)["group_end"] is not None:
            break
    _assert_fits(shot, window, group=True)
    screen.xdo("click", "--repeat", clicks, 4)  # back to the top
    time.sleep(0.3)


def test_panel_fits_the_default_scripts_window(display, tmp_path):
    """The Scripts window at the size OBS opens it: nothing in the panel is cut at the right, so the status
    line (engine running with a look, then engine stopped) is read whole. Screenshots under tmp_path/shots."""
    from tests.conftest import start_thirds_engine
    from tests.obs_ui import require_xdotool

    require_xdotool()
    _write_token(TOKEN)
    engine = start_thirds_engine(tmp_path / "engine")
    o = Obs(tmp_path, display, env={"CBS_OBS_PORT": str(engine.server.port)}).start()
    try:
        screen, win = _script_added_through_the_window(o, display, tmp_path)
        window = win.geometry()
        _assert_panel_fits(screen, window, "1-default-size-engine-running")

        api(engine, "PATCH", "/api/look", {"assignments": {"background": "color:#ff00ff", "face": "blur:21",
                                                           "body": "pixelate:16"}})
        time.sleep(3.5)  # the panel polls each second and redraws itself at most every 1.5 s
        _assert_panel_fits(screen, window, "2-default-size-long-look")

        engine.app.stop()
        _log_has(o, "[cbs-obs] status: engine stopped: engine not reachable", 10)
        time.sleep(3)
        _assert_panel_fits(screen, window, "3-default-size-engine-stopped")
        assert win.geometry() == window  # still the size OBS opened it at
    finally:
        o.stop()
        engine.app.stop()
    assert "Traceback" not in o.obs_log()
