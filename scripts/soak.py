"""Soak test: run the engine for a long time at 30 fps with look changes every few seconds.

Reports what a long live show would suffer from: RSS growth, open file descriptors, threads,
latency drift, dropped frames and errors. Runs on demand (not in CI):

    python scripts/soak.py --minutes 20 -o soak.json
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.request

import cv2
import numpy as np

from cbs_obs.app import AppConfig, ControlSettings, LiveApp
from cbs_obs.control.presets import Presets
from cbs_obs.engine import EngineConfig
from cbs_obs.io.sources import FramesSource, demo_clip_path
from cbs_obs.look import Look
from cbs_obs.io.outputs import OutputSpec
from cbs_obs.io.video import frames, open_video

LOOKS = [
    {"background": "starry-blue"}, {"background": "blur:25"}, {"background": "candy-pop", "person": None},
    {"background": "pixelate:12"}, {"background": "crimson-fire", "person": "cartoon"}, {"background": "grey"},
    {"background": "color:#00ff00", "person": None}, {"background": "sketch"},
]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def sample(engine, t0) -> dict:
    s = engine.stats.snapshot()
    return {"t_s": round(time.monotonic() - t0, 1), "rss_mb": round(rss_mb(), 1),
            "fds": len(os.listdir("/proc/self/fd")), "threads": len(os.listdir("/proc/self/task")),
            "fps": s["fps"], "latency_p50_ms": s["latency_ms"]["p50"], "latency_p95_ms": s["latency_ms"]["p95"],
            "output": s["output"], "captured": s["captured"], "dropped": s["dropped"], "errors": s["errors"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0, help="how long to run (default 20)")
    ap.add_argument("--change-every", type=float, default=3.0, help="seconds between look changes (default 3)")
    ap.add_argument("--size", default="1280x720", help="output size WxH (default 1280x720)")
    ap.add_argument("--sample-every", type=float, default=30.0, help="seconds between samples (default 30)")
    ap.add_argument("-o", "--output", help="write the figures as JSON here")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    cap, _, _ = open_video(demo_clip_path())
    clip = [cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in frames(cap)]
    cap.release()
    token = "soak-" + os.urandom(8).hex()
    app = LiveApp(AppConfig(engine=EngineConfig(source="soak"), look=Look.from_specs(["background=starry-blue"]),
                            outputs=(OutputSpec("null"),),
                            control=ControlSettings(port=0, token=token,
                                                    presets=Presets().path.with_name("soak-presets.json"))),
                  source=FramesSource(clip, 30.0))
    app.start()
    server, engine = app.server, app.engine
    stop = threading.Event()
    counts = {"look_changes": 0, "change_errors": 0, "stream_frames": 0}

    def change_looks():
        i = 0
        while not stop.wait(args.change_every):
            body = json.dumps({"assignments": LOOKS[i % len(LOOKS)]}).encode()
            req = urllib.request.Request(server.url + "/api/look", data=body, method="PATCH",
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=10).read()
                counts["look_changes"] += 1
            except Exception:
                counts["change_errors"] += 1
            i += 1

    def watch_stream():  # a viewer on the MJPEG stream the whole time, as OBS would be
        while not stop.is_set():
            try:
                with urllib.request.urlopen(server.url + "/stream.mjpg", timeout=10) as r:
                    while not stop.is_set():
                        line = r.readline()
                        if line.startswith(b"--"):
                            counts["stream_frames"] += 1
                        if not line:
                            break
            except Exception:
                time.sleep(1)

    threads = [threading.Thread(target=change_looks, daemon=True), threading.Thread(target=watch_stream, daemon=True)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    samples = []
    end = t0 + args.minutes * 60
    next_sample = t0 + min(60.0, args.sample_every)  # first sample after warm-up
    while time.monotonic() < end:
        time.sleep(1.0)
        if time.monotonic() >= next_sample:
            samples.append(sample(engine, t0))
            print(json.dumps(samples[-1]), flush=True)
            next_sample += args.sample_every
    stop.set()
    final = engine.stats.snapshot()
    app.stop()
    first, last = samples[0], samples[-1]
    lat = [s["latency_p95_ms"] for s in samples if s["latency_p95_ms"] is not None]
    report = {
        "minutes": args.minutes, "size": args.size, "samples": samples, **counts,
        "frames_captured": final["captured"], "frames_output": final["output"], "frames_dropped": final["dropped"],
        "errors": final["errors"],
        "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
        "rss_first_last_mb": [first["rss_mb"], last["rss_mb"]],
        "fds_first_last": [first["fds"], last["fds"]], "threads_first_last": [first["threads"], last["threads"]],
        "latency_p95_first_last_ms": [lat[0], lat[-1]] if lat else None,
        "latency_p95_median_ms": float(np.median(lat)) if lat else None,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
