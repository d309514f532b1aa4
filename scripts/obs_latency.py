"""Latency the OBS Media Source path adds on top of the engine's own output, measured with a real OBS.

A real OBS 29 (headless under Xvfb, as in tests/obs_harness.py) plays the engine's MJPEG stream
through a Media Source with the settings the OBS panel and `cbs-obs obs setup` use. The engine
runs the demo clip; each trial switches the background to a solid colour, notes when the engine
sent the first frame with it (an output hook on the engine), and polls OBS's screenshot of the
source until that colour shows. Trials are spread over the run so a growing delay would show as a
difference between the first and the last third.

    python scripts/obs_latency.py --trials 40

Needs obs-studio and xvfb (see ../shared/notes/obs-headless.md) and the person model in the cache.
"""
from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import start_control_engine  # noqa: E402
from tests.obs_harness import Obs, Xvfb  # noqa: E402

COLOURS = [((0, 255, 0), "#00ff00"), ((255, 0, 255), "#ff00ff")]  # BGR, spec


def screenshot(client, name):
    try:
        resp = client.get_source_screenshot(name, "png", 32, None, -1)
    except Exception:
        return None
    data = base64.b64decode(resp.image_data.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def near(px, bgr, tol=60) -> bool:
    return all(abs(int(px[i]) - bgr[i]) < tol for i in range(3))


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=40)
    args = ap.parse_args()

    from cbs_obs.look import Look
    from cbs_obs.obs.bridge import ObsSettings
    from cbs_obs.obs.setup import setup_source

    tmp = Path(tempfile.mkdtemp(prefix="cbs-obs-latency-"))
    x = Xvfb(tmp)
    display = x.start()
    engine = start_control_engine(tmp, {})
    o = Obs(tmp, display, canvas=(1280, 720)).start()
    try:
        setup_source(ObsSettings("127.0.0.1", o.port, o.password), engine.server.url + "/stream.mjpg")
        c = o.client()
        end = time.monotonic() + 30
        while screenshot(c, "cbs-obs") is None and time.monotonic() < end:
            time.sleep(0.1)
        added, polls = [], []
        for i in range(args.trials):
            bgr, spec = COLOURS[i % 2]
            t0 = time.monotonic()
            engine.controller.set_look(Look.from_specs([f"background=color:{spec}"]))
            seen = None
            while time.monotonic() - t0 < 10:
                t_poll = time.monotonic()
                img = screenshot(c, "cbs-obs")
                polls.append(time.monotonic() - t_poll)
                if img is not None and near(img[1, 1], bgr):
                    seen = time.monotonic()
                    break
            first = next((t for t, px in engine.timeline.frames if t >= t0 and near(px, bgr)), None)
            if seen is None or first is None:
                print(f"trial {i}: colour not seen (engine frame {first}, OBS {seen})")
                continue
            added.append((seen - first) * 1000)
            time.sleep(0.3 + (i % 3) * 0.2)
        third = max(1, len(added) // 3)
        print(f"trials: {len(added)} of {args.trials}; OBS screenshot poll (32 px wide) median "
              f"{statistics.median(polls) * 1000:.0f} ms")
        print(f"latency added by the Media Source path (engine output -> OBS source): median "
              f"{statistics.median(added):.0f} ms, p95 {pct(added, 95):.0f} ms, max {max(added):.0f} ms")
        print(f"first third median {statistics.median(added[:third]):.0f} ms, last third median "
              f"{statistics.median(added[-third:]):.0f} ms (a growing delay would show here)")
    finally:
        o.stop()
        engine.app.stop()
        x.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
