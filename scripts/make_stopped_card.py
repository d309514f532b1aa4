"""Draws plugin/engine_stopped.png, the card the OBS panel shows over the video when the engine is gone."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "plugin" / "engine_stopped.png"


def centred(img, text, y, scale, colour, thickness):
    (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.putText(img, text, ((img.shape[1] - w) // 2, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness,
                cv2.LINE_AA)


def main() -> None:
    img = np.full((720, 1280, 3), (40, 32, 28), np.uint8)
    cv2.rectangle(img, (0, 0), (1279, 719), (60, 60, 200), 12)  # a red frame: not mistaken for a dark scene
    centred(img, "cbs-obs engine stopped", 330, 2.2, (255, 255, 255), 4)
    centred(img, "Tools -> Scripts -> cbs_obs_panel.py shows why; the panel restarts it", 420, 1.0,
            (200, 200, 200), 2)
    cv2.imwrite(str(OUT), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
