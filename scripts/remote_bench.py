"""Engines sharing one inference server on this machine (loopback) against local inference, in one run.

For 1, 2 and 4 engines (`cbs-obs run demo --null`, default look) it measures, after a warm-up: output
fps, capture-to-output latency p50/p95, the engine processes' CPU, the remote round trip per call,
and the batch sizes Triton's dynamic batcher formed (from Triton's own statistics endpoint). The same
engines with local inference run in the same session as the baseline. Prints a Markdown table.

    flock /work/bench.lock python scripts/remote_bench.py --seconds 15
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CLI = shutil.which("cbs-obs") or "cbs-obs"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK


def tree_cpu(pid: int) -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if int(entry.name) == pid or ppid == pid or _under(int(entry.name), pid):
                total += cpu_seconds(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return total


def _under(pid: int, root: int) -> bool:
    for _ in range(10):
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == root:
            return True
        if pid <= 1:
            return False
    return False


def api(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def wait(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def batch_counts(http_port: int) -> dict[int, int]:
    """Batches executed so far by size, over every model (Triton's statistics endpoint)."""
    stats = api(http_port, "/v2/models/stats")["model_stats"]
    out: dict[int, int] = {}
    for model in stats:
        for b in model.get("batch_stats", []):
            out[int(b["batch_size"])] = out.get(int(b["batch_size"]), 0) + int(b["compute_infer"]["count"])
    return out


def run_engines(n: int, seconds: float, warmup: float, remote: str | None) -> dict:
    ports = [free_port() for _ in range(n)]
    extra = ["--remote", remote] if remote else []
    procs = [subprocess.Popen([CLI, "run", "demo", "--null", "--port", str(p), *extra], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for p in ports]
    try:
        for p in ports:
            if not wait(lambda p=p: api(p, "/api/stats")["output"] > 0, 120):
                raise SystemExit("an engine did not start")
        time.sleep(warmup)
        for p in ports:  # measure the steady state only
            api(p, "/api/stats")
        cpu0 = [cpu_seconds(pr.pid) for pr in procs]
        out0 = [api(p, "/api/stats")["output"] for p in ports]
        t0 = time.monotonic()
        time.sleep(seconds)
        dt = time.monotonic() - t0
        stats = [api(p, "/api/stats") for p in ports]
        cpu = [(cpu_seconds(pr.pid) - c) / dt * 100 for pr, c in zip(procs, cpu0, strict=True)]
    finally:
        for pr in procs:
            pr.send_signal(signal.SIGINT)
        for pr in procs:
            pr.wait(timeout=60)
    fps = [(s["output"] - o) / dt for s, o in zip(stats, out0, strict=True)]
    med = lambda xs: sorted(xs)[len(xs) // 2]
    return {"fps": sum(fps) / n, "p50": med([s["latency_ms"]["p50"] for s in stats]),
            "p95": med([s["latency_ms"]["p95"] for s in stats]), "cpu": sum(cpu) / n,
            "segment": med([s["stages_ms"].get("segment") or 0 for s in stats]),
            "rtt": med([(s.get("remote") or {}).get("latency_ms", {}).get("p50") or 0 for s in stats]),
            "failed": sum((s.get("remote") or {}).get("failed", 0) for s in stats)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--engines", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    g, h, m = free_port(), free_port(), free_port()
    log = open("/tmp/remote_bench_server.log", "w")
    server = subprocess.Popen([CLI, "serve", "--segmenter", "person", "--grpc-port", str(g), "--http-port", str(h),
                               "--metrics-port", str(m)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    rows = []
    try:
        if not wait(lambda: any(line.startswith("serving ") for line in
                                Path("/tmp/remote_bench_server.log").read_text(errors="replace").splitlines()), 300):
            raise SystemExit("the server did not start; see /tmp/remote_bench_server.log")
        url = f"grpc://127.0.0.1:{g}"
        for n in args.engines:
            local = run_engines(n, args.seconds, args.warmup, None)
            before, cpu_s0, t0 = batch_counts(h), tree_cpu(server.pid), time.monotonic()
            remote = run_engines(n, args.seconds, args.warmup, url)
            server_cpu = (tree_cpu(server.pid) - cpu_s0) / (time.monotonic() - t0) * 100
            after = batch_counts(h)
            batches = {k: after[k] - before.get(k, 0) for k in sorted(after) if after[k] > before.get(k, 0)}
            rows.append((n, local, remote, batches, server_cpu))
            print(f"{n} engines done", file=sys.stderr, flush=True)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    print("| engines | inference | fps per engine | latency p50 / p95 ms | segment stage ms | round trip p50 ms "
          "| engine CPU % | server CPU % | batches by size |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, local, remote, batches, server_cpu in rows:
        print(f"| {n} | local | {local['fps']:.1f} | {local['p50']:.0f} / {local['p95']:.0f} | {local['segment']:.0f} "
              f"| - | {local['cpu']:.0f} | - | - |")
        shown = ", ".join(f"{k}: {v}" for k, v in batches.items())
        print(f"| {n} | server (loopback) | {remote['fps']:.1f} | {remote['p50']:.0f} / {remote['p95']:.0f} | "
              f"{remote['segment']:.0f} | {remote['rtt']:.0f} | {remote['cpu']:.0f} | {server_cpu:.0f} | {shown} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
