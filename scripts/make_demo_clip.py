"""Build cbs_obs/assets/demo_clip.mp4: a person moving in front of a still background.

Material: scikit-image's ``astronaut.png`` (NASA portrait of Eileen Collins, public domain) and
``coffee.png`` (Rachel Michetti, CC0), both taken from the scikit-image wheel on PyPI (downloaded,
not installed). The person is cut out with cbs-obs's own person segmenter, then swayed and bobbed
over the coffee background for a few seconds, so the clip has a static room (for the background
plate) and a moving subject (for masks and latency).

    python scripts/make_demo_clip.py            # writes cbs_obs/assets/demo_clip.mp4
"""
from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
W, H, FPS, SECONDS = 640, 360, 15, 4


def skimage_images() -> tuple[np.ndarray, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                        "scikit-image==0.26.0"], check=True)
        wheel = next(Path(tmp).glob("scikit_image-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            decode = lambda n: cv2.imdecode(np.frombuffer(z.read(n), np.uint8), cv2.IMREAD_COLOR)
            return decode("skimage/data/astronaut.png"), decode("skimage/data/coffee.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "cbs_obs" / "assets" / "demo_clip.mp4")
    args = ap.parse_args()
    from cbs_obs.segment import create_segmenter

    person, room = skimage_images()
    person = cv2.resize(person, (300, 300), interpolation=cv2.INTER_AREA)
    alpha = create_segmenter("person", variant="general").segment(person).mask(["person"], person.shape[:2])
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)[..., None]
    rh, rw = room.shape[:2]
    s = max(W / rw, H / rh)
    room = cv2.resize(room, (round(rw * s), round(rh * s)), interpolation=cv2.INTER_AREA)
    room = room[(room.shape[0] - H) // 2 :][:H, (room.shape[1] - W) // 2 :][:, :W]
    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
    writer = cv2.VideoWriter(str(args.output), fourcc, FPS, (W, H))
    for i in range(FPS * SECONDS):
        t = i / FPS
        x = int(W / 2 - 150 + 120 * math.sin(2 * math.pi * t / SECONDS))
        y = int(H - 300 + 60 + 8 * math.sin(2 * math.pi * t * 1.5))
        frame = room.astype(np.float32)
        x0, x1 = max(0, x), min(W, x + 300)
        y0, y1 = max(0, y), min(H, y + 300)
        a = alpha[y0 - y : y1 - y, x0 - x : x1 - x]
        p = person[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
        frame[y0:y1, x0:x1] = a * p + (1 - a) * frame[y0:y1, x0:x1]
        writer.write(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    writer.release()
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KiB, {FPS * SECONDS} frames)")


if __name__ == "__main__":
    main()
