"""What must never happen on a streamer's machine: secrets in logs, silent exposure to the network."""
from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

import pytest

from tests.test_cli import CLI


def run_engine(args, env_extra=None, seconds=8.0):
    env = {**os.environ, **(env_extra or {})}
    proc = subprocess.Popen([CLI, "--verbose", "run", "demo", "--null", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    return proc


def test_no_password_or_token_in_logs(person_model, tmp_path):
    secret_pw = "pw-" + os.urandom(6).hex()
    env = {"CBS_OBS_CONFIG": str(tmp_path / "cfg"), "CBS_OBS_OBS_PASSWORD": secret_pw}
    token = subprocess.run([CLI, "token"], capture_output=True, text=True, env={**os.environ, **env}).stdout.strip()
    port = 18000 + os.getpid() % 1000
    proc = run_engine(["--port", str(port), "--obs", "--obs-port", "9"], env)  # OBS is not there: retries
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=5).read()  # the dock URL
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/enabled/toggle", method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
        urllib.request.urlopen(req, timeout=5).read()
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # a malformed request line
            sock.sendall(f"GET /?token={token} HTTP/1.1 x\r\nHost: 127.0.0.1\r\n\r\n".encode())
            assert sock.recv(100).startswith(b"HTTP/1.1 400")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # a refused Host, token in the URL
            sock.sendall(f"GET /api/state?token={token} HTTP/1.1\r\nHost: evil.example\r\n\r\n".encode())
            assert sock.recv(100).startswith(b"HTTP/1.1 403")
        time.sleep(2.5)  # let the OBS bridge retry with the password a few times
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "http GET / -> 200" in out and "OBS not reachable" in out  # verbose logging really ran
    assert token not in out and secret_pw not in out


def test_binding_beyond_loopback_warns(person_model, tmp_path):
    proc = subprocess.run([CLI, "run", "demo", "--null", "--host", "0.0.0.0", "--port", "0", "--duration", "2"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CBS_OBS_CONFIG": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    warning = next(line for line in proc.stderr.splitlines() if "listening on 0.0.0.0" in line)
    assert "camera" in warning and "viewable from your network" in warning and "token" in warning
    assert "--host 127.0.0.1" in warning and "--allow-host" in warning


def test_default_bind_is_loopback():
    from cbs_obs.cli import build_parser

    args = build_parser().parse_args(["run"])
    assert args.host == "127.0.0.1"


@pytest.mark.parametrize("spec", ["image:/etc/hosts", "style-image:../../secret.png", "johnson:/tmp/x.pth",
                                  "image:@../x", "style-image:@a/b"])
def test_api_refuses_file_paths_in_styles(spec):
    from cbs_obs.style.catalog import is_safe_spec

    assert not is_safe_spec(spec)
    assert is_safe_spec("style-image:@painting") and is_safe_spec("starry-blue") and is_safe_spec("blur:20")
