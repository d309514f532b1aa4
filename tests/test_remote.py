"""Networks on a second PC: a real `cbs-obs serve` (Triton through PyTriton, CPU, 127.0.0.1) and real engines
calling it with `--remote`. Servers are started by the tests on free ports and killed (with every process
they started) at teardown."""
from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_file, wait_for
from tests.test_app import CLI, count_mjpeg_frames, free_port

if not sys.platform.startswith("linux"):
    pytest.skip("PyTriton ships the Triton server for Linux x86-64 only", allow_module_level=True)

KEY = "test-" + secrets.token_urlsafe(12)


def serve_command() -> list[str]:
    """How to start `cbs-obs serve`: from the environment .ci/run makes for it (CBS_OBS_SERVE_PYTHON: PyTriton
    wants numpy below 2), or from this one when PyTriton is installed here."""
    import importlib.util

    python = os.environ.get("CBS_OBS_SERVE_PYTHON")
    if python:
        return [python, "-m", "cbs_obs", "serve"]
    if importlib.util.find_spec("pytriton") is not None:
        return [CLI, "serve"]
    if os.environ.get("CI"):
        pytest.fail("CI must run the inference-server tests: .ci/run sets CBS_OBS_SERVE_PYTHON")
    pytest.skip('PyTriton is not installed: pip install "cbs-obs[serve]" (or set CBS_OBS_SERVE_PYTHON to a Python '
                "that has it)")


def _children(pid: int) -> set[int]:
    """Every process below ``pid`` (Triton's server and its Python stubs), read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _signal(pid: int, sig) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _announced(log: Path) -> bool:
    """`cbs-obs serve` prints one line starting with "serving N networks" once Triton is ready."""
    return any(line.startswith("serving ") for line in log.read_text(errors="replace").splitlines())


class Server:
    """One `cbs-obs serve` process on free ports."""

    def __init__(self, tmp: Path, *args: str, key: str | None = KEY, ports=None):
        self.ports = ports or (free_port(), free_port(), free_port())
        self.grpc, self.http, self.metrics = self.ports
        self.url = f"grpc://127.0.0.1:{self.grpc}"
        self.args, self.key, self.tmp = args, key, tmp
        self.proc: subprocess.Popen | None = None
        self.log = tmp / f"serve-{self.grpc}.log"

    def start(self, timeout: float = 300.0) -> Server:
        argv = [*serve_command(), "--grpc-port", str(self.grpc), "--http-port", str(self.http), "--metrics-port",
                str(self.metrics), *self.args]
        env = {**os.environ, **({"CBS_OBS_REMOTE_KEY": self.key} if self.key else {})}
        self.proc = subprocess.Popen(argv, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        ready = wait_for(lambda: _announced(self.log) or self.proc.poll() is not None, timeout, 0.5)
        if not ready or self.proc.poll() is not None:
            self.kill()
            pytest.fail(f"cbs-obs serve did not come up:\n{self.log.read_text()[-3000:]}")
        return self

    def kill(self, sig=signal.SIGKILL) -> None:
        """SIGKILL: the server and everything it started die at once (a crash). SIGTERM: a clean stop (teardown),
        with whatever is left after 30 s killed. Either way no process of it outlives the test."""
        if self.proc is None:
            return
        family = [self.proc.pid, *_children(self.proc.pid)]
        for pid in family if sig == signal.SIGKILL else family[:1]:
            _signal(pid, sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for pid in family:
            _signal(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        for pid in family:  # a crashed server cannot free its shared-memory tensor store: do it for it
            for leftover in Path("/dev/shm").glob(f"pytrtion{pid}-*"):
                leftover.unlink(missing_ok=True)
        self.proc = None

    def stats(self, model: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/v2/models/{model}/stats", timeout=5) as r:
            return json.loads(r.read())["model_stats"][0]


@pytest.fixture(scope="module")
def johnson_ckpt(tmp_path_factory):
    import torch

    from cbs_obs.style.johnson import TransformerNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("johnson") / "random.pth"
    torch.save(TransformerNet().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def server(person_model, dabnet_weights, johnson_ckpt, tmp_path_factory):
    """Every network: both person variants, the face nets, DABNet, the Magenta pair and styles, one Johnson file."""
    s = Server(tmp_path_factory.mktemp("serve"), "--johnson", str(johnson_ckpt)).start()
    yield s
    s.kill(signal.SIGTERM)


@pytest.fixture
def remote_client(server):
    from cbs_obs.remote import RemoteSettings, connect

    client = connect(RemoteSettings(server.url, key=KEY))
    yield client
    connect(None)


def _example(net) -> list[np.ndarray]:
    """A random input of the shapes the network takes (free sizes: a small odd-shaped picture)."""
    rng = np.random.default_rng(0)
    if net.session is None:
        return [rng.random((1, 3, 60, 92), np.float32) * 255]
    arrays = []
    for i in net.session.get_inputs():
        free = iter((64, 96))
        shape = [d if isinstance(d, int) else next(free, 1) for d in i.shape]
        arrays.append(rng.random(shape, np.float32) if len(shape) > 1 else np.full(shape, 1 / shape[0], np.float32))
    return arrays


def test_remote_outputs_equal_local_for_every_network(server, johnson_ckpt):
    """Each network the server offers gives the same answer as the same network run here (float tolerance)."""
    from cbs_obs.remote import RemoteSettings, connect
    from cbs_obs.remote.served import build_networks

    local = build_networks(("person", "person-face", "cityscapes"), (johnson_ckpt,))
    families = {name.rsplit("-", 1)[0] for name in local}
    assert families >= {"selfie-landscape", "selfie-general", "face-detection-short", "face-landmark", "dabnet19",
                        "multistyle26", "arbitrary-predict", "arbitrary-transform", "johnson"}
    client = connect(RemoteSettings(server.url, key=KEY))
    try:
        for name, net in local.items():
            feed = _example(net)
            want = net.run_local(dict(zip(net.inputs, feed, strict=True)))
            got = client.infer(name, feed)
            assert got.shape == want.shape, name
            scale = max(1.0, float(np.abs(want).max()))
            assert float(np.abs(got - want).max()) <= 1e-4 * scale, name
    finally:
        connect(None)
    assert server.stats(next(n for n in local if n.startswith("selfie-landscape")))["inference_count"] >= 1


def test_picture_inputs_travel_as_bytes_and_come_back_exact():
    """What the networks' callers make from bytes (k/255 floats, whole-number pixels) goes over the wire as those
    bytes, a quarter of float32, and the server rebuilds the very same floats; anything else goes as float32."""
    import cv2

    from cbs_obs.remote import protocol

    frame = np.random.default_rng(3).integers(0, 256, (144, 256, 3), np.uint8)
    person_input = (cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) * (1 / 255)).transpose(2, 0, 1)[None]
    johnson_input = frame[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)
    dabnet_input = frame.astype(np.float32) - np.array([72.3924, 82.90902, 73.158325], np.float32)
    for x, kind in ((person_input, "PIXELS"), (johnson_input, "LEVELS"), (dabnet_input, "INPUT"),
                    (np.full((26,), 1 / 26, np.float32), "INPUT"), (-johnson_input, "INPUT")):
        got_kind, wire = protocol.pack(x)
        assert got_kind == kind
        assert wire.nbytes == (x.nbytes // 4 if kind != "INPUT" else x.nbytes)
        back = protocol.unpack(got_kind, wire)
        assert back.dtype == np.float32 and np.array_equal(back, x)


def _stylize(tmp_path: Path, name: str, *args: str, remote: Server | None = None) -> np.ndarray:
    import cv2

    out = tmp_path / f"{name}.png"
    extra = ["--remote", remote.url, "--remote-key", KEY] if remote else []
    r = subprocess.run([CLI, "stylize", *args, "-o", str(out), *extra], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return cv2.imread(str(out)).astype(int)


def test_stylize_remote_equals_local(server, johnson_ckpt, tmp_path):
    """`cbs-obs stylize --remote`: the same picture as local inference, for every kind of network."""
    portrait = str(shared_file("data/portrait/astronaut_360x640.png"))
    street = str(shared_file("data/cityscapes_frame.png"))
    jobs = {
        "person": [portrait, "-a", "background=starry-blue", "-a", f"person=johnson:{johnson_ckpt}"],
        "faces": [portrait, "-s", "person-face", "-a", "face=pale-sketch", "-a", f"background=style-image:{portrait}"],
        "street": [street, "-s", "cityscapes", "--seg-size", "256x512", "--style-size", "256", "-a", "road=fauve"],
    }
    for name, args in jobs.items():
        here = _stylize(tmp_path, name + "-local", *args)
        there = _stylize(tmp_path, name + "-remote", *args, remote=server)
        assert here.shape == there.shape
        assert np.abs(here - there).max() <= 1, name  # rounding of float noise at most


def _api(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def _engine(server: Server | None, port: int, *extra: str, key: str = KEY, log_dir: Path | None = None):
    """`cbs-obs run demo` on ``server`` (None: the server comes from ``extra``, e.g. --config)."""
    log = (log_dir or server.tmp) / f"engine-{port}.log"
    remote = ["--remote", server.url, "--remote-key", key] if server else []
    proc = subprocess.Popen([CLI, "run", "demo", "--port", str(port), "--duration", "300", *remote, *extra],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    proc.log = log
    return proc


def _log(proc) -> str:
    return proc.log.read_text()[-3000:]


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _remote_state(port: int) -> dict:
    try:
        return _api(port, "/api/stats").get("remote") or {}
    except OSError:
        return {}


def test_two_engines_share_one_server(server, person_model):
    """Two `cbs-obs run --remote` engines (two cameras, or two PCs) stream at once through one server."""
    model = _person_model(person_model)
    before = server.stats(model)["inference_count"]
    ports = [free_port(), free_port()]
    config = server.tmp / "show.toml"  # the second engine names the server in its --config file
    config.write_text(f'remote = "{server.url}"\nremote-key = "{KEY}"\n')
    procs = [_engine(server, ports[0]),
             _engine(None, ports[1], "--config", str(config), log_dir=server.tmp)]
    try:
        for p in ports:
            assert wait_for(lambda p=p: _remote_state(p).get("calls", 0) > 5, 90, 0.5), _log(procs[0])
        frames = [count_mjpeg_frames(f"http://127.0.0.1:{p}/stream.mjpg", 3.0) for p in ports]
        assert min(frames) >= 10, frames
        for p in ports:
            state = _api(p, "/api/state")
            assert state["remote"] == {"url": server.url, "fallback": "none", "key": True}
            assert state["stats"]["remote"]["state"] == "ok" and state["stats"]["remote"]["failed"] == 0
    finally:
        for proc in procs:
            _stop(proc)
    assert server.stats(model)["inference_count"] - before >= 10


def _person_model(person_model) -> str:
    from cbs_obs.models.download import sha256_of
    from cbs_obs.models.inference import model_name

    return model_name("selfie-landscape", sha256_of(person_model))


@pytest.mark.parametrize("key", ["wrong-key-123", None])
def test_wrong_or_missing_key_is_refused(server, key):
    """A wrong key (or none) is one clear line and exit 2; the server goes on serving the right key."""
    env = {k: v for k, v in os.environ.items() if k != "CBS_OBS_REMOTE_KEY"}
    argv = [CLI, "run", "demo", "--port", str(free_port()), "--duration", "5", "--remote", server.url]
    r = subprocess.run(argv + (["--remote-key", key] if key else []), capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("cbs-obs: error")]
    assert len(lines) == 1 and "refused the shared key" in lines[0], r.stderr[-1500:]
    assert "Traceback" not in r.stderr
    from cbs_obs.remote import RemoteSettings, connect

    try:
        connect(RemoteSettings(server.url, key=KEY))  # the right key still works
    finally:
        connect(None)


def test_unreachable_server_at_start_is_one_line():
    port = free_port()
    t0 = time.monotonic()
    r = subprocess.run([CLI, "run", "demo", "--port", str(free_port()), "--remote", f"grpc://127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and time.monotonic() - t0 < 60
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("cbs-obs: error: cannot reach the inference server") and "cbs-obs serve" in err


def test_serving_off_loopback_needs_a_key():
    """`cbs-obs serve --host 0.0.0.0` without a key refuses before anything listens."""
    env = {k: v for k, v in os.environ.items() if k != "CBS_OBS_REMOTE_KEY"}
    ports = [free_port() for _ in range(3)]
    r = subprocess.run([CLI, "serve", "--host", "0.0.0.0", "--grpc-port", str(ports[0]), "--http-port", str(ports[1]),
                        "--metrics-port", str(ports[2])], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2
    assert "give a shared key with --key" in r.stderr and "Traceback" not in r.stderr
    assert not set(ports) & {port for _, port in _listening()}


def _listening() -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket on this machine."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state != "0A":  # LISTEN
                continue
            addr, port = local.split(":")
            raw = b"".join(bytes.fromhex(addr[i:i + 8])[::-1] for i in range(0, len(addr), 8))  # host-order words
            ip = ipaddress.ip_address(raw)
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            out.append((str(ip), int(port, 16)))
    return out


def test_server_listens_on_loopback_only(server):
    """Triton's three endpoints (gRPC, HTTP, metrics) are on loopback and nowhere else."""
    mine = [(h, p) for h, p in _listening() if p in server.ports]
    assert {p for _, p in mine} == set(server.ports), mine
    assert all(ipaddress.ip_address(h).is_loopback for h, _ in mine), mine


def test_server_killed_and_restarted_mid_run(person_model, tmp_path):
    """The server dies mid-stream: the engine keeps streaming (last masks and styles; a second engine asked for
    a local fallback runs the networks itself) and says so in its stats; a server started again on the same
    port is found without restarting either engine."""
    s = Server(tmp_path, "--segmenter", "person").start()
    port, port_local = free_port(), free_port()
    engines = [_engine(s, port), _engine(s, port_local, "--remote-fallback", "local")]
    restarted = None
    try:
        for p in (port, port_local):
            assert wait_for(lambda p=p: _remote_state(p).get("calls", 0) > 5, 90, 0.5), _log(engines[0])
        s.kill()
        assert wait_for(lambda: _remote_state(port).get("state") == "lost", 20, 0.2)
        assert wait_for(lambda: _remote_state(port_local).get("state") == "lost (running here)", 20, 0.2)
        for p in (port, port_local):
            assert count_mjpeg_frames(f"http://127.0.0.1:{p}/stream.mjpg", 3.0) >= 10  # still streaming
        assert _remote_state(port_local)["ran_here"] > 0 and _remote_state(port)["ran_here"] == 0
        assert all(e.poll() is None for e in engines)
        restarted = Server(tmp_path, "--segmenter", "person", ports=s.ports).start()
        for p in (port, port_local):
            assert wait_for(lambda p=p: _remote_state(p).get("state") == "ok", 30, 0.2)
            state = _remote_state(p)
            assert state["reconnects"] >= 1 and state["failed"] >= 1
            calls = state["calls"]
            assert wait_for(lambda p=p, calls=calls: _remote_state(p)["calls"] > calls + 10, 30, 0.3)  # caught up
        assert count_mjpeg_frames(f"http://127.0.0.1:{port}/stream.mjpg", 3.0) >= 10
    finally:
        for e in engines:
            _stop(e)
        if restarted is not None:
            restarted.kill(signal.SIGTERM)
        s.kill()


def test_a_dropped_copy_of_a_network_does_not_hide_the_live_one_from_the_server():
    """The server serves every live network; a short-lived copy with the same weights (a test, a
    rebuilt style) must not take the live one off that list when it is collected."""
    import gc

    from cbs_obs.models import inference
    from cbs_obs.style.magenta import _network_for

    temporary = _network_for.__wrapped__("arbitrary-transform", False)
    live = _network_for.__wrapped__("arbitrary-transform", False)
    del temporary
    gc.collect()
    assert live.model in inference.networks()
    assert any(n is live for n in inference._networks), "the live network is no longer listed"
