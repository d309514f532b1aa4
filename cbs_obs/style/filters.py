"""The non-neural looks streamers use most: cheap, predictable, and always available."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import SettingsError

NAMED_COLOURS = {
    "green": (0, 255, 0), "blue": (0, 0, 255), "red": (255, 0, 0), "black": (0, 0, 0),
    "white": (255, 255, 255), "magenta": (255, 0, 255), "grey": (128, 128, 128), "gray": (128, 128, 128),
}


class Blur:
    def __init__(self, radius: float = 21):
        if not 0 < radius <= 200:
            raise SettingsError(f"blur radius must be in (0, 200] pixels, got {radius}")
        self.radius = radius
        self.name = f"blur:{radius:g}"

    def apply(self, frame: np.ndarray) -> np.ndarray:
        # Blur a downscaled copy: same look at a fraction of the cost for large radii.
        h, w = frame.shape[:2]
        f = max(1, int(self.radius // 8))
        small = cv2.resize(frame, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA) if f > 1 else frame
        out = cv2.GaussianBlur(small, (0, 0), self.radius / f)
        return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR) if f > 1 else out


class Pixelate:
    def __init__(self, block: int = 16):
        if not 2 <= block <= 256:
            raise SettingsError(f"pixelate block must be 2-256 pixels, got {block}")
        self.block = int(block)
        self.name = f"pixelate:{self.block}"

    def apply(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (max(1, w // self.block), max(1, h // self.block)), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def parse_colour(text: str) -> tuple[int, int, int]:
    """'#00ff00', '00ff00', or a name -> RGB."""
    t = text.strip().lower()
    if t in NAMED_COLOURS:
        return NAMED_COLOURS[t]
    h = t.lstrip("#")
    if len(h) == 6 and all(c in "0123456789abcdef" for c in h):
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    raise SettingsError(f"bad colour {text!r}; use #rrggbb or one of {', '.join(NAMED_COLOURS)}")


class SolidColour:
    def __init__(self, colour: str = "green"):
        r, g, b = parse_colour(colour)
        self.bgr = np.array([b, g, r], np.uint8)
        self.name = f"color:#{r:02x}{g:02x}{b:02x}"

    def apply(self, frame: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.bgr, frame.shape).copy()


class Replace:
    """Replace by a picture, scaled to cover the frame (centre crop), resized once per frame size."""

    def __init__(self, path: Path | str):
        from ..io.images import read_image

        self.path = Path(path)
        self.image = read_image(self.path)
        self.name = f"image:{self.path.name}"
        self._cache: tuple[tuple[int, int], np.ndarray] | None = None

    def apply(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        if self._cache is None or self._cache[0] != (h, w):
            ih, iw = self.image.shape[:2]
            s = max(h / ih, w / iw)
            big = cv2.resize(self.image, (max(w, round(iw * s)), max(h, round(ih * s))), interpolation=cv2.INTER_AREA)
            top, left = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
            self._cache = ((h, w), np.ascontiguousarray(big[top : top + h, left : left + w]))
        return self._cache[1]


class Cartoon:
    """Flat colour regions (edge-preserving smoothing, colour quantisation) with dark outlines."""

    name = "cartoon"

    def apply(self, frame: np.ndarray) -> np.ndarray:
        smooth = cv2.bilateralFilter(cv2.pyrDown(frame), 7, 60, 7)
        smooth = cv2.resize(smooth, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
        flat = (smooth // 48) * 48 + 24
        grey = cv2.medianBlur(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 5)
        edges = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 5)
        return cv2.bitwise_and(flat.astype(np.uint8), flat.astype(np.uint8), mask=edges)


class Sketch:
    """Pencil sketch: colour dodge of the greyscale image by its blurred negative."""

    name = "sketch"

    def apply(self, frame: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        # the blur (sigma 6 frame pixels) at half size and stretched back: a smooth picture loses nothing
        # at half size, and a face's sketch costs 0.7 ms instead of 3.1 (within 4 levels at the 99th
        # percentile of the full-size blur's result on real faces)
        h, w = grey.shape
        if min(h, w) >= 8:
            small = cv2.resize(grey, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            blur = cv2.resize(cv2.GaussianBlur(255 - small, (0, 0), 3), (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            blur = cv2.GaussianBlur(255 - grey, (0, 0), 6)
        sketch = cv2.divide(grey, 255 - blur, scale=256)
        return cv2.cvtColor(sketch, cv2.COLOR_GRAY2BGR)


class Greyscale:
    name = "grey"

    def apply(self, frame: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


class NoStyle:
    """Leaves pixels as they are: assigning it is the same as not assigning the class."""

    name = "none"

    def apply(self, frame: np.ndarray) -> np.ndarray:
        return frame
