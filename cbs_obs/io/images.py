"""Reading and writing still images with one clear error for every way a file can be bad."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

WRITE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def read_image(path: Path | str) -> np.ndarray:
    """BGR uint8 HxWx3; greyscale and alpha images are converted."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"image {p} does not exist")
    if p.is_dir():
        raise InputError(f"{p} is a folder; give an image file")
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{p} is not a readable image (corrupt or unsupported format); use PNG or JPEG")
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(1, int(img.max())))
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def write_image(path: Path | str, img: np.ndarray) -> Path:
    p = Path(path)
    if p.suffix.lower() not in WRITE_EXTS:
        raise InputError(f"cannot write {p}: use one of {', '.join(WRITE_EXTS)}")
    if p.parent and not p.parent.exists():
        raise InputError(f"cannot write {p}: folder {p.parent} does not exist")
    ok, buf = cv2.imencode(p.suffix.lower(), img)
    if not ok:
        raise InputError(f"cannot encode {p}")
    try:
        buf.tofile(str(p))
    except OSError as e:
        raise InputError(f"cannot write {p}: {e.strerror}") from e
    return p
