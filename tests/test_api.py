"""Control API: every error path, the token, the origin check; a rejected request changes nothing."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import cv2

from tests.conftest import TOKEN, start_control_engine


@pytest.fixture(scope="module")
def api(person_model, tmp_path_factory):
    engine = start_control_engine(tmp_path_factory.mktemp("cfg"), presets={})
    yield engine.server.url, engine, engine.controller
    engine.app.stop()


def call(url, method="GET", path="/api/state", body=None, token=TOKEN, headers=None, raw=None, ctype=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", ctype or "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            payload = r.read()
            return r.status, (json.loads(payload) if r.headers["Content-Type"].startswith("application/json")
                              else payload)
    except urllib.error.HTTPError as e:
        payload = e.read()
        return e.code, json.loads(payload) if payload else None


def unchanged(engine, fn):
    before = engine.look
    status, body = fn()
    assert engine.look is before, "a rejected request changed the look"
    assert 400 <= status < 500 and isinstance(body["error"], str) and body["status"] == status
    return status, body["error"]


def test_reading_needs_no_token(api):
    url, engine, _ = api
    status, state = call(url, token=None)
    assert status == 200 and state["classes"] == ["background", "person"] and state["segmenter"] == "person"
    assert state["look"]["assignments"][0] == {"cls": "background", "style": "grey", "strength": 1.0}
    status, styles = call(url, path="/api/styles", token=None)
    names = [s["name"] for s in styles["styles"]]
    assert "starry-blue" in names and "blur" in names
    status, jpg = call(url, path=styles["styles"][0]["thumbnail"], token=None)
    assert status == 200 and cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR).shape == (90, 160, 3)
    assert call(url, path="/api/openapi.json", token=None)[1]["openapi"].startswith("3.")
    status, html = call(url, path="/", token=None)
    assert status == 200 and b"cbs-obs" in html


def test_changes_need_the_right_token(api):
    url, engine, _ = api
    body = {"assignments": {"background": "blur"}}
    assert unchanged(engine, lambda: call(url, "PATCH", "/api/look", body, token=None))[0] == 401
    assert unchanged(engine, lambda: call(url, "PATCH", "/api/look", body, token="wrong" * 8))[0] == 403
    status, _ = call(url, "PATCH", "/api/look", body, headers={"X-CBS-Token": TOKEN}, token=None)
    assert status == 200 and engine.look.assignments[0].style == "blur"


def test_other_origins_are_refused(api):
    url, engine, _ = api
    status, err = unchanged(engine, lambda: call(url, "PATCH", "/api/look", {"enabled": False},
                                                 headers={"Origin": "http://evil.example"}))
    assert status == 403 and "not allowed" in err
    assert call(url, token=None, headers={"Origin": "http://evil.example"})[0] == 403
    same = url.replace("http://", "")
    assert call(url, "PATCH", "/api/look", {"enabled": True}, headers={"Origin": f"http://{same}"})[0] == 200


@pytest.mark.parametrize("body, fragment", [
    ({"assignments": [{"cls": "sofa", "style": "blur"}]}, "valid classes: background, person"),
    ({"assignments": [{"cls": "background", "style": "velvet"}]}, "unknown style 'velvet'"),
    ({"assignments": [{"cls": "background", "style": "blur", "strength": 2}]}, "between 0 and 1"),
    ({"assignments": [{"cls": "background", "style": "image:/etc/hosts"}]}, "uploaded image"),
    ({"assignments": [{"cls": "background", "style": "style-image:../../x.png"}]}, "uploaded image"),
    ({"assignments": "background=blur"}, "malformed look"),
    ({"assignments": [], "mask": {"feather": -3}}, "feather"),
    ({"assignments": [], "enabled": "yes"}, "true or false"),
    ({"assignments": [], "colour": 1}, "unknown look field"),
    ([1, 2], "JSON object"),
])
def test_bad_looks_are_400_and_change_nothing(api, body, fragment):
    url, engine, _ = api
    status, err = unchanged(engine, lambda: call(url, "PUT", "/api/look", body))
    assert status == 400 and fragment in err


def test_malformed_json_and_unknown_endpoints(api):
    url, engine, _ = api
    assert unchanged(engine, lambda: call(url, "PUT", "/api/look", raw=b"{not json"))[0] == 400
    assert unchanged(engine, lambda: call(url, "PUT", "/api/look", raw=b""))[0] == 400
    assert call(url, path="/api/nothing")[0] == 404
    assert call(url, "DELETE", "/api/look")[0] == 405
    assert call(url, "POST", "/api/cycle/sideways")[0] == 404
    assert call(url, "POST", "/api/enabled/maybe")[0] == 404


def test_put_and_patch_look(api):
    url, engine, _ = api
    status, body = call(url, "PUT", "/api/look", {"assignments": [{"cls": "background", "style": "starry-blue",
                                                                   "strength": 0.5}], "mask": {"feather": 2}})
    assert status == 200 and engine.look.assignments[0].strength == 0.5 and engine.look.mask.feather == 2
    call(url, "PATCH", "/api/look", {"assignments": {"person": {"style": "cartoon"}, "background": {"strength": 1}}})
    look = {a.cls: a for a in engine.look.assignments}
    assert look["person"].style == "cartoon" and look["background"].strength == 1.0
    call(url, "PATCH", "/api/look", {"assignments": {"person": None}})
    assert [a.cls for a in engine.look.assignments] == ["background"]
    status, err = unchanged(engine, lambda: call(url, "PATCH", "/api/look", {"assignments": {"person": {}}}))
    assert "has no style" in err
    assert call(url, "POST", "/api/enabled/off")[1] == {"enabled": False} and not engine.look.enabled
    assert call(url, "POST", "/api/enabled/toggle")[1] == {"enabled": True}


def test_presets_and_scenes(api):
    url, engine, ctl = api
    call(url, "PUT", "/api/look", {"assignments": [{"cls": "background", "style": "blur"}]})
    assert call(url, "POST", "/api/presets/Blurred")[0] == 201
    assert call(url, "POST", "/api/presets/Painted", {"assignments": [{"cls": "background",
                                                                        "style": "starry-blue"}]})[0] == 201
    status, err = unchanged(engine, lambda: call(url, "POST", "/api/presets/bad%2Fname"))
    assert "bad preset name" in err
    assert unchanged(engine, lambda: call(url, "POST", "/api/presets/Broken",
                                          {"assignments": [{"cls": "sofa", "style": "blur"}]}))[0] == 400
    assert "Broken" not in ctl.presets.names()
    assert call(url, "POST", "/api/apply/Painted")[0] == 200 and engine.look.assignments[0].style == "starry-blue"
    assert call(url, "POST", "/api/apply/Nope")[0] == 404
    assert call(url, "POST", "/api/cycle/next")[1]["preset"] == "Blurred"
    assert call(url, "POST", "/api/cycle/previous")[1]["preset"] == "Painted"
    assert unchanged(engine, lambda: call(url, "PUT", "/api/scenes", {"Scene 2": "Nope"}))[0] == 400
    assert call(url, "PUT", "/api/scenes", {"Scene 2": "Blurred"})[0] == 200
    status, body = call(url, "POST", "/api/scene/Scene%202")
    assert body["preset"] == "Blurred" and engine.look.assignments[0].style == "blur"
    assert call(url, "POST", "/api/scene/Unmapped")[1]["preset"] is None
    assert call(url, "DELETE", "/api/presets/Blurred")[0] == 200 and ctl.presets.scenes == {}
    assert call(url, "DELETE", "/api/presets/Blurred")[0] == 404
    saved = json.loads(ctl.presets.path.read_text())
    assert list(saved["presets"]) == ["Painted"]


def test_uploads(api):
    url, engine, _ = api
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    png = cv2.imencode(".png", img)[1].tobytes()
    assert call(url, "POST", "/api/uploads/paint", raw=png, ctype="text/plain")[0] == 415
    assert call(url, "POST", "/api/uploads/paint", raw=b"\x89PNG broken", ctype="image/png")[0] == 400
    assert call(url, "POST", "/api/uploads/..%2Fescape", raw=png, ctype="image/png")[0] == 400
    big = b"\x00" * (9 * 1024 * 1024)
    try:
        status = call(url, "POST", "/api/uploads/huge", raw=big, ctype="image/png")[0]
    except (ConnectionError, urllib.error.URLError):
        status = 413  # the server may close the connection before the client finished sending
    assert status == 413
    assert call(url, "POST", "/api/uploads/paint", raw=png, ctype="image/png")[0] == 201
    assert call(url, "PATCH", "/api/look", {"assignments": {"background": "style-image:@paint"}})[0] == 200
    assert engine.look.assignments[0].style == "style-image:@paint"
    names = [s["name"] for s in call(url, path="/api/styles")[1]["styles"]]
    assert "style-image:@paint" in names and "image:@paint" in names
    assert call(url, "DELETE", "/api/uploads/paint")[0] == 409  # in use
    call(url, "PATCH", "/api/look", {"assignments": {"background": "grey"}})
    assert call(url, "DELETE", "/api/uploads/paint")[0] == 200
    assert call(url, "DELETE", "/api/uploads/paint")[0] == 404


def test_look_change_reaches_the_stream(api):
    url, engine, _ = api
    call(url, "PUT", "/api/look", {"assignments": [{"cls": "background", "style": "color:#00ff00"}]})
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        status, jpg = call(url, path="/snapshot.jpg", token=None)
        frame = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
        if abs(int(frame[5, 5, 1]) - 255) < 10 and frame[5, 5, 2] < 30:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the snapshot never turned green")


def test_token_file_is_private(tmp_path, monkeypatch):
    import os
    import stat

    from cbs_obs.control import token as tokens

    monkeypatch.setenv("CBS_OBS_CONFIG", str(tmp_path))
    t = tokens.load_or_create()
    assert len(t) >= 24 and tokens.load_or_create() == t
    assert stat.S_IMODE(os.stat(tmp_path / "token").st_mode) == 0o600
    assert tokens.load_or_create(rotate=True) != t
    assert tokens.matches(t, t) and not tokens.matches(t, t[:-1] + "x") and not tokens.matches(t, None)
