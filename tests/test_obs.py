"""Against a real OBS Studio (headless under Xvfb): the script panel, hotkeys, scene presets,
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
from tests.obs_harness import Obs, Xvfb, require_obs



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


@pytest.fixture
def obs_with_script(display, live_engine, tmp_path):
    settings = {"engine_url": live_engine.server.url, "token": TOKEN, "style_background": "color:#0000ff",
                "strength_background": 1.0, "scene_presets": "Scene 2=Magenta\n# comment\nScene=Blurred"}
    o = Obs(tmp_path, display, script_settings=settings).start()
    yield o
    o.stop()
    log = o.obs_log()
    assert "Traceback" not in log, log[-3000:]


def test_script_settings_reach_the_engine(obs_with_script, live_engine):
    wait_until(lambda: style_of(live_engine) == "color:#0000ff", what="the script's style to reach the engine")
    assert "Loaded python script: cbs_obs_panel.py" in obs_with_script.obs_log()
    wait_until(lambda: live_engine.controller.presets.scenes == {"Scene 2": "Magenta", "Scene": "Blurred"},
               what="the scene table")


def test_hotkeys_switch_presets(obs_with_script, live_engine):
    wait_until(lambda: style_of(live_engine) == "color:#0000ff", what="script ready")
    c = obs_with_script.client()
    c.trigger_hot_key_by_name("cbs_obs.preset.Green")
    wait_until(lambda: style_of(live_engine) == "color:#00ff00", what="hotkey preset Green")
    c.trigger_hot_key_by_name("cbs_obs.next_preset")
    wait_until(lambda: live_engine.controller.preset == "Magenta", what="next preset")
    c.trigger_hot_key_by_name("cbs_obs.toggle")
    wait_until(lambda: not live_engine.look.enabled, what="styling off")
    c.trigger_hot_key_by_name("cbs_obs.toggle")
    wait_until(lambda: live_engine.look.enabled, what="styling on")


def test_program_scene_switch_applies_its_preset(obs_with_script, live_engine):
    wait_until(lambda: live_engine.controller.presets.scenes.get("Scene 2") == "Magenta", what="scene table")
    c = obs_with_script.client()
    c.set_current_scene_transition("Cut")
    c.set_current_program_scene("Scene 2")
    wait_until(lambda: style_of(live_engine) == "color:#ff00ff", what="Scene 2 -> Magenta")
    c.set_current_program_scene("Scene")
    wait_until(lambda: style_of(live_engine) == "blur", what="Scene -> Blurred")


def test_script_with_engine_down_says_so_without_exceptions(display, tmp_path):
    o = Obs(tmp_path, display, script_settings={"engine_url": "http://127.0.0.1:9", "token": "x",
                                                 "style_background": "blur"}).start()
    try:
        wait_until(lambda: "engine not reachable at http://127.0.0.1:9" in o.obs_log(), 15, "status line")
        o.client().trigger_hot_key_by_name("cbs_obs.next_preset")
        time.sleep(1.0)
    finally:
        o.stop()
    assert "Traceback" not in o.obs_log()


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

    o = Obs(tmp_path, display).start()
    try:
        settings = ObsSettings("127.0.0.1", o.port, o.password)
        api(live_engine, "PATCH", "/api/look", {"assignments": {"background": "color:#00ff00"}})
        url = live_engine.server.url + "/stream.mjpg"
        assert "created source 'cbs-obs'" in setup_source(settings, url)
        assert "updated source 'cbs-obs'" in setup_source(settings, url)  # idempotent
        c = o.client()
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
