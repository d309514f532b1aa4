"""The OBS panel's parts that run outside OBS: style lists and specs, the engine client against a real
engine (a rejected change, only the changed class sent, the look re-sent after a restart), the
supervisor with a real process, and `cbs-obs obs plugin-path` / the wheel carrying the script."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, TOKEN, wait_for

sys.path.insert(0, str(ROOT / "plugin"))
import cbs_obs_panel as panel_mod  # noqa: E402  (OBS puts the script's folder on sys.path the same way)
import cbsobs_core as core  # noqa: E402
from cbsobs_supervisor import Supervisor  # noqa: E402


def test_style_list_offers_each_valid_style_once(live_engine):
    styles = json.load(__import__("urllib.request").request.urlopen(live_engine.server.url + "/api/styles"))
    names = [s["name"] for s in styles["styles"]]
    assert "image" not in names and "none" not in names  # bare "image" is always rejected; panels add "none"
    choices = core.style_choices(styles["styles"])
    assert choices.count("none") == 1 and choices[0] == "none"
    assert "image" not in choices and "blur" in choices and "starry-blue" in choices
    assert core.PICTURE_STYLE in choices and core.PICTURE_REPLACE in choices


@pytest.mark.parametrize("controls, spec", [
    ({"style_bg": "blur", "param_bg": 7}, "blur:7"),
    ({"style_bg": "pixelate", "param_bg": 0}, "pixelate"),
    ({"style_bg": "color", "colour_bg": 0xFF00FF00}, "color:#00ff00"),  # OBS colours are 0xAABBGGRR
    ({"style_bg": "color", "colour_bg": 0xFF0000FF}, "color:#ff0000"),
    ({"style_bg": core.PICTURE_REPLACE, "picture_bg": "/x/sky.png"}, "image:@obs-bg"),
    ({"style_bg": core.PICTURE_STYLE, "picture_bg": "/x/sky.png"}, "style-image:@obs-bg"),
    ({"style_bg": core.PICTURE_STYLE}, None),  # no picture chosen yet: nothing to send
    ({"style_bg": "none"}, None),
    ({"style_bg": "starry-blue"}, "starry-blue"),
])
def test_controls_make_specs_and_back(controls, spec):
    assert core.spec_from_controls("bg", controls.get) == spec
    if spec:
        back = core.controls_from_spec(spec)
        assert back["style"] == controls["style_bg"]
        if "param" in back and controls.get("param_bg"):
            assert back["param"] == controls["param_bg"]
        if "colour" in back:
            assert back["colour"] == controls["colour_bg"]


def test_specs_compare_as_the_panel_spells_them():
    assert core.normalize_spec("color") == "color:#00ff00"
    assert core.normalize_spec("blur:7") == "blur:7" and core.normalize_spec("starry-blue") == "starry-blue"
    assert core.normalize_spec("image:@obs-background") == "image:@obs-background"


def test_status_line_tells_the_engines_truth():
    state = {"look": {"assignments": [{"cls": "background", "style": "starry-blue", "strength": 1.0}],
                      "enabled": True}, "preset": "Green", "stats": {"fps": 14.84, "source": "ok", "last_error": ""}}
    line = core.status_line(state)
    assert "background starry-blue 100%" in line and "preset Green" in line and "14.8 fps" in line
    assert "last error: look rejected" in core.status_line(state, error="look rejected")
    assert core.status_line(None, error="exited with code 1").startswith("engine stopped: exited with code 1")


def test_status_is_short_lines_for_the_narrow_scripts_window():
    """OBS opens its Scripts window about 280 px wide for the panel: the status is a short line per fact, and a
    long word (a path, a URL) gets places to break, or it would widen the panel past the window's edge."""
    state = {"look": {"assignments": [{"cls": "background", "style": "color:#ff00ff", "strength": 1.0},
                                      {"cls": "person", "style": "blur:21", "strength": 0.5}], "enabled": True},
             "preset": "Green", "stats": {"fps": 14.84, "source": "ok", "last_error": ""}}
    error = "cannot read /home/someone/Pictures/holidays/2026/a-very-long-file-name-for-a-background.png"
    lines = core.status_lines(state, error=error, supervisor="started by OBS, pid 4242")
    assert lines[:5] == ["engine running", "14.8 fps, source ok", "background color:#ff00ff 100%",
                         "person blur:21 50%", "preset Green"]
    text = core.panel_text(lines)
    assert text.count("\n") == len(lines) - 1
    words = [w for line in text.split("\n") for word in line.split(" ") for w in word.split("\u200b")]
    assert max(len(w) for w in words) <= 24
    assert text.replace("\u200b", "").replace("\n", "; ") == core.status_line(state, error=error,
                                                                              supervisor="started by OBS, pid 4242")


def test_token_is_read_from_the_file_cbs_obs_writes(tmp_path, monkeypatch):
    from cbs_obs.control import token as tokens

    monkeypatch.setenv("CBS_OBS_CONFIG", str(tmp_path))
    made = tokens.load_or_create()
    assert core.read_token({}) == made


@pytest.fixture
def panel(live_engine, monkeypatch):
    (Path(core.config_dir({})) / "token").parent.mkdir(parents=True, exist_ok=True)
    (Path(core.config_dir({})) / "token").write_text(TOKEN)
    p = panel_mod.Panel()
    p.set_port(live_engine.server.port)
    p.ready = True  # what script_load does once it knows the port
    assert wait_for(lambda: p.state is not None, 10)
    yield p
    p.close()


def _look(live_engine):
    return {a.cls: a.style for a in live_engine.look.assignments}


def test_rejected_change_is_shown_and_does_not_poison_the_next(panel, live_engine):
    panel.change_classes({"background": ("blur", 1.0)}, {})
    assert _look(live_engine).get("background") == "blur"
    panel.change_classes({"person": ("image:@no-such-picture", 1.0)}, {})
    assert "person: change to image:@no-such-picture rejected" in panel.status()
    assert "person" not in _look(live_engine)
    panel.change_classes({"background": ("pixelate:9", 1.0)}, {})  # only background is sent: accepted
    assert _look(live_engine) == {"background": "pixelate:9"}
    assert "rejected" not in panel.status()


def test_picture_is_uploaded_then_used(panel, live_engine, tmp_path):
    import cv2
    import numpy as np

    pic = tmp_path / "sky.png"
    cv2.imwrite(str(pic), np.full((64, 64, 3), (255, 0, 0), np.uint8))
    panel.change_classes({"background": ("image:@" + core.upload_name("background"), 1.0)}, {"background": str(pic)})
    assert _look(live_engine)["background"] == "image:@obs-background"
    panel.change_classes({"background": None}, {})


def test_look_is_sent_again_after_an_engine_restart(panel, live_engine):
    panel.change_classes({"background": ("color:#00ff00", 1.0)}, {})
    assert wait_for(lambda: panel.desired == {"background": ("color:#00ff00", 1.0)}, 5)
    live_engine.controller.set_look(live_engine.look.__class__.from_specs(["background=grey"]))
    with panel.lock:  # what the worker sees when a new engine process answers: a fresh uptime
        panel.last_uptime = 1e9
        panel.desired = {"background": ("color:#00ff00", 1.0)}
    panel.poll()
    assert _look(live_engine) == {"background": "color:#00ff00"}


def test_supervisor_restarts_a_crashed_engine_and_stops_it(tmp_path):
    marker = tmp_path / "starts"
    code = f"import os,time; open({str(marker)!r},'a').write('x'); print('engine up', flush=True); time.sleep(60)"
    sup = Supervisor(lambda: [sys.executable, "-c", code], env=dict(__import__("os").environ),
                     log_path=tmp_path / "engine.log")
    sup.start()
    try:
        assert wait_for(lambda: sup.proc is not None and marker.exists(), 10)
        first = sup.proc
        first.kill()  # a crash
        assert wait_for(lambda: sup.proc is not None and sup.proc is not first, 10), sup.last_exit
        assert wait_for(lambda: marker.read_text() == "xx", 10)
        assert sup.last_exit.startswith("engine exited (killed by SIGKILL)"), sup.last_exit
    finally:
        t0 = time.monotonic()
        proc = sup.proc
        sup.stop()
    assert proc.poll() is not None and time.monotonic() - t0 < 8
    assert sup.state == "stopped"


def test_engine_started_by_the_panel_stops_when_obs_is_killed(panel, tmp_path):
    """OBS killed (or crashed) runs no clean-up: the engine it started must still stop, not hold the
    camera and the port. The panel starts it with --stop-with-stdin under a supervisor holding its stdin."""
    import os
    import socket

    argv = panel.engine_argv()
    assert "--stop-with-stdin" in argv
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [str(argv[0]), "run", "demo", "--null", "--port", str(port), *argv[argv.index("--segmenter"):]]
    obs_stand_in = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT / 'plugin')!r})\n"
        "from cbsobs_supervisor import Supervisor\n"
        f"sup = Supervisor(lambda: {argv!r}, env=dict(__import__('os').environ), log_path=__import__('pathlib')"
        f".Path({str(tmp_path / 'engine.log')!r}))\n"
        "sup.start()\n"
        "t = time.monotonic()\n"
        "while sup.proc is None and time.monotonic() - t < 60: time.sleep(0.1)\n"
        "print(sup.proc.pid if sup.proc else sup.last_exit, flush=True)\n"
        "time.sleep(600)\n")
    obs = subprocess.Popen([sys.executable, "-c", obs_stand_in], stdout=subprocess.PIPE, text=True)
    line = obs.stdout.readline().strip()
    if not line.isdigit():
        obs.kill()
        pytest.fail(f"the supervisor did not start the engine: {line}")
    engine = int(line)
    try:
        up = lambda: core.EngineClient(f"http://127.0.0.1:{port}", lambda: TOKEN, timeout=1).call(  # noqa: E731
            "GET", "/api/stats")[0] == 200
        assert wait_for(up, 90), (tmp_path / "engine.log").read_text()
        obs.kill()
        obs.wait(10)

        def gone():
            try:
                os.kill(engine, 0)
                return open(f"/proc/{engine}/stat").read().split()[2] == "Z"
            except (ProcessLookupError, FileNotFoundError):
                return True

        assert wait_for(gone, 20), "the engine outlived OBS"
    finally:
        try:
            os.kill(engine, 9)
        except ProcessLookupError:
            pass


def test_plugin_path_prints_the_script_and_records_cbs_obs(tmp_path):
    exe = Path(sys.executable).with_name("cbs-obs")
    r = subprocess.run([str(exe), "obs", "plugin-path"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    script = Path(r.stdout.strip())
    assert script.name == "cbs_obs_panel.py" and script.is_file()
    note = json.loads((script.parent / "cbs_obs_panel.json").read_text())
    assert Path(note["cbs_obs"]) == exe
    assert core.find_executable(note) == exe


def test_wheel_contains_the_obs_script(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                        str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and any(t in r.stderr for t in ("No matching distribution", "Failed to establish",
                                                          "Temporary failure in name resolution")):
        pytest.skip(f"cannot fetch the build backend from PyPI: {r.stderr.strip()[-200:]}")
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(tmp_path.glob("cbs_obs-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("cbs_obs_panel.py", "cbsobs_core.py", "cbsobs_supervisor.py", "cbsobs_qtview.py", "engine_stopped.png"):
        assert f"cbs_obs/plugin/{f}" in names, names
    # installed (not editable), the script finds the cbs-obs beside it without any note or PATH
    prefix = tmp_path / "env"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-warn-script-location",
                        "--ignore-installed",  # without it pip uninstalls the running environment's cbs-obs first
                        "--prefix", str(prefix), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    plugin = next(prefix.glob("lib/python*/site-packages/cbs_obs/plugin"))
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import cbsobs_core as c; "
             "print(c.find_executable())")
    r = subprocess.run([sys.executable, "-c", probe, str(plugin)], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.stdout.strip() == str(prefix / "bin" / "cbs-obs"), r.stdout + r.stderr


def test_script_finds_the_config_dir_where_cbs_obs_keeps_it(monkeypatch, tmp_path):
    from cbs_obs import paths

    assert core.config_dir({}) == paths.config_dir()  # CBS_OBS_CONFIG (set for the tests)
    monkeypatch.delenv("CBS_OBS_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert core.config_dir({}) == paths.config_dir()  # the platform's default


def test_script_installed_in_an_environment_finds_its_cbs_obs(tmp_path):
    env = tmp_path / "venv"
    here = env / "lib" / "python3.11" / "site-packages" / "cbs_obs" / "plugin"
    assert env / "bin" / "cbs-obs" in core.installed_alongside(here)
    win = tmp_path / "venv" / "Lib" / "site-packages" / "cbs_obs" / "plugin"
    assert any(p.parent == env / "Scripts" for p in core.installed_alongside(win))
    assert core.installed_alongside(tmp_path / "src" / "plugin") == []


def test_panel_lists_classes_then_groups(thirds_engine):
    """The engine's state names the groups its classes make (person = face + body); the panel lists them last."""
    state = json.load(__import__("urllib.request").request.urlopen(thirds_engine.server.url + "/api/state"))
    assert state["groups"] == {"person": ["face", "body"]}
    assert core.look_names(state) == ["background", "face", "body", "person"]
    assert core.look_names({"classes": ["background", "person"], "groups": {}}) == ["background", "person"]


def test_status_line_stays_short_and_says_an_exit_once(tmp_path):
    long_error = "engine exited (code 2): cbs-obs: error: cannot open camera 0: " + "x" * 300
    line = core.status_line(None, error=long_error, supervisor="restarting in 1 s")
    assert len(line) < 200 and line.startswith("engine stopped: engine exited (code 2)")
    sup = Supervisor(lambda: [], env={}, log_path=tmp_path / "log")
    sup.state, sup.last_exit, sup.next_start = "restarting", long_error, time.monotonic() + 1
    assert long_error not in sup.describe(answering=False, shown=long_error)
    assert long_error in sup.describe(answering=False)


def test_live_redraw_says_why_when_this_process_has_no_obs():
    """Outside OBS (or in an OBS build whose Qt it does not know) the redraw is off, says why, queues nothing;
    the panel then tells the user to press Refresh."""
    import cbsobs_qtview

    r = cbsobs_qtview.ViewRefresher()
    assert not r.available and "no way to redraw the Scripts window" in r.why_not
    assert r.request() is False and r.run_on_ui(lambda: None) is False


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_live_redraw_is_off_on_windows_and_macos_and_says_so(monkeypatch, platform):
    """Windows builds use another C++ ABI and macOS was never tried: the panel says to press Refresh there."""
    import cbsobs_qtview

    monkeypatch.setattr(cbsobs_qtview.sys, "platform", platform)
    r = cbsobs_qtview.ViewRefresher()
    assert not r.available and f"Linux builds of OBS only (this is {platform})" in r.why_not
    assert r.request() is False


def test_live_redraw_works_with_qt6_libraries(tmp_path):
    """OBS 28+ for Linux from Flatpak or the Ubuntu PPA is built with Qt 6, whose QList is laid out unlike Qt 5's.
    Not a Qt 6 OBS (none can be installed here): real Qt 6 libraries (PySide6's) in a process with a real
    QApplication, a window named like OBS's Scripts window holding an OBSPropertiesView with a ReloadProperties
    slot, and a stand-in for libobs's obs_queue_task (tests/qt6_scripts_window.py). The binding finds the view,
    asks for the redraw from another thread and it runs on Qt's main thread, waits while the user types in the
    panel or a dialog is open, and frees the lists Qt 6 hands it."""
    pytest.importorskip("PySide6.QtWidgets", reason="PySide6 not installed (pip install -e .[test]): it carries the "
                                                     "Qt 6 libraries this test binds to")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("QT_")}
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "qt6_scripts_window.py"), str(ROOT / "plugin")],
                       capture_output=True, text=True, timeout=120, env={**env, "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["available"] and out["qt_major"] == 6 and out["qt_version"].startswith("6."), out
    assert out["top_level_found"] == [True, True] and "ScriptsTool" in out["names"]
    assert out["children_of_window"][0] == out["children_of_window"][1] > 30
    assert out["view_parent_is_holder"] and out["view_found_below_window"]
    assert set(out["task_kinds"]) == {0}  # OBS_TASK_UI
    assert out["redraw"] == {"reloads": 1, "on_main_thread": True, "redraws": 1}
    assert out["job_on_main_thread"]
    assert out["focus_is_field"] and out["typing_in_panel"] == {"reloads": 1, "busy_skips": 1}
    assert out["typing_elsewhere"] == {"reloads": 2, "busy_skips": 1}
    assert out["modal_dialog"] == {"reloads": 2, "busy_skips": 2}
    assert out["top_level_count"] >= 42
    assert out["rss_growth_kb_50k_lists"] < 2000, out  # 50,000 lists of 42+ pointers unfreed: about 25 MB
    assert out["after_window_closed"] == {"available": True, "redraws": 2}  # no view, no redraw, no crash
