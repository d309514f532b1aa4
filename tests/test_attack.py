"""The findings of an attack run against `cbs-obs run demo`, each replayed against the real engine.

DNS rebinding, decompression bombs, stale and non-atomic uploads, validation bypass, slow and idle
clients, hostile JSON, lost updates: every test here failed on the hand-written server it replaced.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib

import cv2
import numpy as np
import pytest

from tests.conftest import TOKEN, start_control_engine, wait_for
from tests.test_api import call, unchanged
from tests.test_cli import CLI


@pytest.fixture(scope="module")
def live(person_model, tmp_path_factory):
    engine = start_control_engine(tmp_path_factory.mktemp("cfg"), {"Blurred": "background=blur"})
    yield engine
    engine.app.stop()


def raw(port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None, timeout=15):
    """One request with exactly these headers (Host included), as a rebinding page's browser sends it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read(65536)
        return resp.status, data
    finally:
        conn.close()


def png_bytes(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def png_bomb(side: int) -> bytes:
    """A tiny PNG whose header claims side x side pixels (1-bit grey, all zero): gigabytes once decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


# -- DNS rebinding and exposure ---------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/snapshot.jpg", "/stream.mjpg", "/api/state", "/api/events", "/api/stats",
                                  "/api/thumbnail/image%3A%40pic", "/api/thumbnail/blur", "/"])
def test_rebinding_host_is_refused(live, path):
    port = live.server.port
    status, body = raw(port, "GET", path, {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"})
    assert status == 403 and b"evil.example" in body and json.loads(body)["status"] == 403
    status, body = raw(port, "GET", path, {"Host": f"evil.example:{port}"})  # no Origin at all (an <img>)
    assert status == 403
    assert raw(port, "GET", "/api/state", {"Host": f"localhost:{port}"})[0] == 200
    assert raw(port, "GET", "/api/state", {"Host": f"127.0.0.1:{port}"})[0] == 200


def test_foreign_origin_with_allowed_host_is_refused(live):
    port = live.server.port
    status, _ = raw(port, "GET", "/snapshot.jpg", {"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"})
    assert status == 403


def test_off_loopback_reading_needs_the_token(person_model, tmp_path):
    from cbs_obs.app import AppConfig, ControlSettings, LiveApp
    from cbs_obs.engine import EngineConfig, SourceOptions
    from cbs_obs.look import Look

    app = LiveApp(AppConfig(engine=EngineConfig(source="demo", source_options=SourceOptions(loop=True)),
                            look=Look.from_specs(["background=grey"]), outputs=(),
                            control=ControlSettings(host="0.0.0.0", port=0, token=TOKEN,
                                                    presets=tmp_path / "p.json", allow_hosts=("studio.lan",))))
    with app:
        port = app.server.port
        host = {"Host": f"127.0.0.1:{port}"}
        for path in ("/snapshot.jpg", "/stream.mjpg", "/api/state", "/api/events", "/api/thumbnail/blur"):
            status, body = raw(port, "GET", path, host)
            assert status == 401 and b"token" in body, path
        assert raw(port, "GET", "/api/state", {**host, "Authorization": "Bearer wrong-token-xxxxxxxx"})[0] == 403
        assert raw(port, "GET", "/api/state", {**host, "Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert raw(port, "GET", "/api/state", {"Host": f"studio.lan:{port}", "X-CBS-Token": TOKEN})[0] == 200
        assert wait_for(lambda: raw(port, "GET", f"/snapshot.jpg?token={TOKEN}", host)[0] == 200, 30)
        status, page = raw(port, "GET", "/", host)  # the panel page itself loads, then asks for the token
        assert status == 200 and b"cbs-obs" in page
        assert raw(port, "GET", "/api/state", {"Host": f"evil.example:{port}", "X-CBS-Token": TOKEN})[0] == 403


# -- uploads ----------------------------------------------------------------------------------------
def _peak_rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc (Linux)")
def test_decompression_bomb_is_refused_without_a_memory_spike(person_model, tmp_path):
    bomb = png_bomb(20000)
    assert len(bomb) < 200_000
    port = 19000 + os.getpid() % 1000
    env = {**os.environ, "CBS_OBS_CONFIG": str(tmp_path / "cfg")}
    token = subprocess.run([CLI, "token"], capture_output=True, text=True, env=env).stdout.strip()
    proc = subprocess.Popen([CLI, "run", "demo", "--null", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _ok(url), 90), "engine did not come up"
        time.sleep(2.0)  # models loaded, frames flowing: the steady state
        with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
            f.write("5")  # reset the peak, so the next reading is the request's own
        before = _peak_rss_kb(proc.pid)
        t0 = time.monotonic()
        status, body = call(url, "POST", "/api/uploads/bomb", raw=bomb, ctype="image/png", token=token)
        took = time.monotonic() - t0
        peak = _peak_rss_kb(proc.pid)
        print(f"\nbomb 20000x20000 ({len(bomb)} B): {status} in {took * 1000:.0f} ms, "
              f"peak RSS {before / 1024:.0f} -> {peak / 1024:.0f} MB")
        assert status == 400 and "20000x20000" in body["error"]
        assert peak - before < 64 * 1024, f"peak RSS grew by {(peak - before) / 1024:.0f} MB"
        assert took < 2.0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def _ok(url: str) -> bool:
    try:
        return call(url, token=None)[0] == 200
    except OSError:
        return False


def test_image_headers_give_the_size_of_every_format():
    from cbs_obs.control.uploads import image_size
    from cbs_obs.errors import InputError

    img = np.zeros((37, 53, 3), np.uint8)
    for ext, kind in ((".png", "png"), (".jpg", "jpeg"), (".webp", "webp")):
        assert image_size(cv2.imencode(ext, img)[1].tobytes()) == (53, 37, kind)
    assert image_size(cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes())[:2] == (53, 37)
    huge_jpeg = b"\xff\xd8\xff\xc0\x00\x11\x08" + struct.pack(">HH", 60000, 60000) + b"\x03" + b"\x00" * 9
    assert image_size(huge_jpeg)[:2] == (60000, 60000)
    with pytest.raises(InputError):
        image_size(b"GIF89a" + b"\x00" * 40)


def test_jpeg_bomb_is_refused(live):
    url = live.server.url
    huge_jpeg = b"\xff\xd8\xff\xc0\x00\x11\x08" + struct.pack(">HH", 30000, 30000) + b"\x03" + b"\x00" * 9 + b"\xff\xd9"
    status, body = call(url, "POST", "/api/uploads/jbomb", raw=huge_jpeg, ctype="image/jpeg")
    assert status == 400 and "30000x30000" in body["error"]


@pytest.mark.parametrize("name", ["CON", "nul", "Com1", "LPT9", "aux", "prn"])
def test_windows_device_names_are_refused(live, name):
    img = png_bytes(np.full((32, 32, 3), 90, np.uint8))
    status, body = call(live.server.url, "POST", f"/api/uploads/{name}", raw=img, ctype="image/png")
    assert status == 400 and "device name" in body["error"]


def _corner(url):
    status, jpg = call(url, path="/snapshot.jpg", token=None)
    return tuple(int(v) for v in cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)[4, 4])


def test_reupload_is_picked_up(live):
    url = live.server.url
    red, blue = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)
    red[:] = (0, 0, 255)
    blue[:] = (255, 0, 0)
    assert call(url, "POST", "/api/uploads/swap", raw=png_bytes(red), ctype="image/png")[0] == 201
    assert call(url, "PUT", "/api/look", {"assignments": [{"cls": "background", "style": "image:@swap"}]})[0] == 200
    assert wait_for(lambda: _corner(url)[2] > 200 and _corner(url)[0] < 60, 15), "never showed the first picture"
    thumb1 = call(url, path="/api/thumbnail/image%3A%40swap")[1]
    assert call(url, "POST", "/api/uploads/swap", raw=png_bytes(blue), ctype="image/png")[0] == 201
    assert wait_for(lambda: _corner(url)[0] > 200 and _corner(url)[2] < 60, 15), "the re-upload was not picked up"
    assert call(url, path="/api/thumbnail/image%3A%40swap")[1] != thumb1
    call(url, "PUT", "/api/look", {"assignments": [{"cls": "background", "style": "grey"}]})


def test_spellings_of_a_spec_share_one_cache_entry(tmp_path, monkeypatch):
    from cbs_obs.style.catalog import StyleCache, uploads_dir

    monkeypatch.setenv("CBS_OBS_CONFIG", str(tmp_path))
    uploads_dir().mkdir(parents=True)
    cv2.imwrite(str(uploads_dir() / "x.png"), np.full((32, 32, 3), 128, np.uint8))
    cache = StyleCache()
    first = cache.get("image:@x")
    for spelling in ("IMAGE:@x", " image:@x", "Image: @x ", "image:@x\t"):
        assert cache.get(spelling) is first
    assert cache.get("Starry-Blue") is cache.get("starry-blue ") and len(cache) == 2
    time.sleep(0.01)
    cv2.imwrite(str(uploads_dir() / "x.png"), np.full((32, 32, 3), 200, np.uint8))
    assert cache.get("image:@x") is not first and len(cache) == 2  # replaced, not added


_WRITER = r"""
import os, sys, cv2, numpy as np
os.environ["CBS_OBS_CONFIG"] = sys.argv[1]
from cbs_obs.control.uploads import store
a, b = (open(p, "rb").read() for p in sys.argv[2:4])
open(sys.argv[4], "w").close()
i = 0
while True:
    store("victim", a if i % 2 else b)
    i += 1
"""


def test_kill_during_upload_leaves_a_whole_picture(tmp_path):
    from cbs_obs.control.uploads import clean_stale_temps

    cfg = tmp_path / "cfg"
    folder = cfg / "styles"
    rng = np.random.default_rng(1)
    pics = [rng.integers(0, 255, (1600, 1600, 3), dtype=np.uint8) for _ in range(2)]  # ~7 MB PNGs, slow to write
    files = []
    for i, img in enumerate(pics):
        files.append(tmp_path / f"{i}.png")
        files[-1].write_bytes(png_bytes(img))
    folder.mkdir(parents=True)
    (folder / "victim.png").write_bytes(files[0].read_bytes())
    env = {**os.environ}
    for trial in range(6):
        ready = tmp_path / f"ready{trial}"
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(cfg), str(files[0]), str(files[1]), str(ready)],
                                env=env)
        assert wait_for(ready.exists, 60)
        time.sleep(0.2 + 0.37 * trial)  # somewhere inside a write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        listed = [p for p in folder.iterdir() if not p.name.startswith(".")]
        assert [p.name for p in listed] == ["victim.png"]
        got = cv2.imread(str(folder / "victim.png"), cv2.IMREAD_COLOR)
        assert got is not None, f"trial {trial}: the picture is truncated"
        assert any(np.array_equal(got, p) for p in pics), f"trial {trial}: the picture is neither version"
    clean_stale_temps(folder, older_than_s=0)
    assert [p.name for p in folder.iterdir()] == ["victim.png"]


# -- validation and concurrency ---------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    {"enabled": False, "assignments": [{"cls": "person", "style": "no-such-style"}]},
    {"assignments": [{"cls": "person", "style": "no-such-style", "strength": 0}]},
])
def test_disabled_or_zero_strength_look_is_still_validated(live, body):
    url = live.server.url
    status, err = unchanged(live, lambda: call(url, "PUT", "/api/look", body))
    assert status == 400 and "no-such-style" in err
    assert unchanged(live, lambda: call(url, "POST", "/api/presets/Sneaky", body))[0] == 400
    assert "Sneaky" not in live.controller.presets.names()
    call(url, "POST", "/api/enabled/off")
    status, err = unchanged(live, lambda: call(url, "PATCH", "/api/look",
                                               {"assignments": {"person": {"style": "no-such-style",
                                                                           "strength": 0}}}))
    assert "no-such-style" in err
    assert call(url, "POST", "/api/enabled/on")[0] == 200  # the toggle still works


def test_concurrent_toggles_never_lose_an_update(live):
    url = live.server.url
    call(url, "POST", "/api/enabled/on")
    for _ in range(3):
        before = live.controller.changes
        errors: list[int] = []

        def worker(errors=errors):
            for _ in range(15):
                status, _ = call(url, "POST", "/api/enabled/toggle")
                if status != 200:
                    errors.append(status)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert live.controller.changes - before == 120
        assert live.look.enabled, "an even number of toggles left styling off: an update was lost"


@pytest.mark.parametrize("body", [b"[" * 1000 + b"]" * 1000, b"{\"a\":" * 5000 + b"1" + b"}" * 5000,
                                  b"[" * 200000])
def test_deep_json_is_400(live, body):
    status, err = unchanged(live, lambda: call(live.server.url, "PUT", "/api/look", raw=body))
    assert status == 400 and "nested too deeply" in err


def test_huge_style_spec_is_400(live):
    body = {"assignments": [{"cls": "background", "style": "blur" + "x" * 800_000}]}
    status, err = unchanged(live, lambda: call(live.server.url, "PUT", "/api/look", body))
    assert status == 400 and "too long" in err
    status, _ = unchanged(live, lambda: call(live.server.url, "PATCH", "/api/look",
                                             {"assignments": {"background": "x" * 5000}}))
    assert status == 400


def test_token_is_checked_before_the_body_is_read(live):
    """A client without the token announcing an 8 MB body gets its 401 at once, body unsent."""
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=5) as s:
        s.sendall(f"POST /api/uploads/x HTTP/1.1\r\nHost: 127.0.0.1:{live.server.port}\r\n"
                  "Content-Type: image/png\r\nContent-Length: 8000000\r\n\r\n".encode())
        t0 = time.monotonic()
        reply = s.recv(4096)
        assert reply.startswith(b"HTTP/1.1 401") and time.monotonic() - t0 < 2


# -- slow and idle clients --------------------------------------------------------------------------
def test_idle_connections_do_not_stop_the_engine(live):
    port = live.server.port
    socks = []
    try:
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 4 == 0:
                s.sendall(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
            socks.append(s)
        frames = live.stats.snapshot()["output"]
        t0 = time.monotonic()
        status, state = call(live.server.url)
        assert status == 200 and state["classes"] and time.monotonic() - t0 < 3
        assert wait_for(lambda: live.stats.snapshot()["output"] > frames + 10, 10), "the engine stopped"
        # the server cuts clients that never finish their headers
        limit = live.server.limits.header_timeout
        time.sleep(limit + 2)
        socks[0].settimeout(2)
        assert socks[0].recv(1) == b"" and socks[1].recv(1) == b""
    finally:
        for s in socks:
            s.close()


def test_connections_beyond_the_cap_get_503():
    from cbs_obs.io.outputs.mjpeg import MjpegStream
    from cbs_obs.web import ServerLimits, WebServer

    server = WebServer("127.0.0.1", 0, limits=ServerLimits(max_connections=20, header_timeout=30))
    stream = MjpegStream(server)
    stream.start(64, 48, 30)
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(25)]
    try:
        time.sleep(0.3)
        status, _ = raw(server.port, "GET", "/snapshot.jpg", {"Host": "127.0.0.1"})
        assert status == 503
    finally:
        for s in socks:
            s.close()
    assert wait_for(lambda: raw(server.port, "GET", "/snapshot.jpg", {"Host": "127.0.0.1"})[0] == 503
                    and b"no frame" in raw(server.port, "GET", "/snapshot.jpg", {"Host": "127.0.0.1"})[1], 10)
    stream.close()


# -- files on disk ----------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_token_file_and_config_dir_modes_are_enforced_on_load(tmp_path, monkeypatch):
    from cbs_obs.control import token as tokens

    cfg = tmp_path / "cfg"
    cfg.mkdir(mode=0o755)
    os.chmod(cfg, 0o755)
    (cfg / "token").write_text("an-old-token-that-is-long-enough\n")
    os.chmod(cfg / "token", 0o644)
    monkeypatch.setenv("CBS_OBS_CONFIG", str(cfg))
    assert tokens.load_or_create() == "an-old-token-that-is-long-enough"
    assert stat.S_IMODE(os.stat(cfg / "token").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o700
    assert not [p for p in cfg.iterdir() if p.name.startswith(".")]


def test_preset_saves_leave_no_temp_files_and_stale_ones_are_cleaned(tmp_path):
    from cbs_obs.control.presets import Presets, clean_stale_temps
    from cbs_obs.look import Look

    store = Presets(tmp_path / "presets.json")
    for i in range(5):
        store.save(f"p{i}", Look.from_specs(["background=blur"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["presets.json"]
    stale = tmp_path / ".presets.abc123.json.tmp"
    stale.write_text("{")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert clean_stale_temps(tmp_path) == 1 and not stale.exists()


def test_a_stalled_body_is_cut_by_the_server():
    from cbs_obs.io.outputs.mjpeg import MjpegStream
    from cbs_obs.web import ServerLimits, WebServer

    server = WebServer("127.0.0.1", 0, limits=ServerLimits(body_timeout=1.0, header_timeout=2.0))
    stream = MjpegStream(server)
    stream.start(64, 48, 30)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"POST /snapshot.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789")
            t0 = time.monotonic()
            reply = s.recv(4096)
            assert reply.startswith(b"HTTP/1.1 408") and 0.8 < time.monotonic() - t0 < 5
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET /snapshot.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
            t0 = time.monotonic()
            assert s.recv(4096) == b"" and 1.5 < time.monotonic() - t0 < 6
    finally:
        stream.close()


def test_a_burst_of_connections_is_accepted_at_once(live):
    """The listen backlog holds a burst: no connect waits for a SYN retry (1 s with a backlog of 5)."""
    results: list[float] = []

    def one():
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", live.server.port), timeout=10):
            results.append(time.monotonic() - t0)

    threads = [threading.Thread(target=one) for _ in range(300)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.sort()
    print(f"\nburst of 300 connects: median {results[150] * 1000:.1f} ms, slowest {results[-1] * 1000:.0f} ms")
    assert len(results) == 300 and results[-1] < 0.9
