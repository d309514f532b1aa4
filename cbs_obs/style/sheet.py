"""Contact sheet: every built-in style (and the filters) on the user's own image, with names."""
from __future__ import annotations

import cv2
import numpy as np
from tqdm import tqdm

from .catalog import create
from .magenta import BUILTIN_STYLES

SHEET_FILTERS = ("blur", "pixelate", "cartoon", "sketch", "grey", "color:#00ff00")


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    bar = np.zeros((24, tile.shape[1], 3), np.uint8)
    cv2.putText(bar, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def contact_sheet(frame: np.ndarray, *, tile_width: int = 320, columns: int = 6, progress: bool = False) -> np.ndarray:
    h, w = frame.shape[:2]
    tile_h = max(32, round(h * tile_width / w))
    small = cv2.resize(frame, (tile_width, tile_h), interpolation=cv2.INTER_AREA)
    names = ["original", *BUILTIN_STYLES, *SHEET_FILTERS]
    tiles = []
    for name in tqdm(names, desc="styles", disable=not progress):
        tiles.append(_label(small if name == "original" else create(name).apply(small), name))
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)
