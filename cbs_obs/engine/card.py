"""The "no signal" card outputs show while a lost source is retried (viewers see why, not a freeze)."""
from __future__ import annotations

import cv2
import numpy as np


def no_signal_card(width: int, height: int, message: str) -> np.ndarray:
    card = np.zeros((height, width, 3), np.uint8)
    card[:] = (40, 24, 24)
    scale = max(0.5, width / 900)
    for i, (text, s) in enumerate((("NO SIGNAL", 2.0 * scale), (message, 0.6 * scale))):
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, s, 2)
        while tw > width - 20 and s > 0.3:
            s *= 0.9
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, s, 2)
        y = height // 2 + (-int(20 * scale) if i == 0 else int(40 * scale))
        cv2.putText(card, text, ((width - tw) // 2, y), cv2.FONT_HERSHEY_SIMPLEX, s, (230, 230, 230), 2, cv2.LINE_AA)
    return card
