"""Pictures uploaded through the API: sized from their header before any decoding, decoded one
at a time, stored atomically (a kill mid-write leaves the previous picture intact).

A 400 KB PNG can claim 20000x20000 pixels and take gigabytes to decode, so the header's width and
height are read first (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X) and anything too large is refused
without allocating a pixel.
"""
from __future__ import annotations

import struct
import threading
from pathlib import Path

import cv2
import numpy as np

from .. import paths
from ..errors import InputError
from ..style.catalog import check_upload_name, uploads, uploads_dir

MAX_SIDE = 4096
MIN_SIDE = 16
MAX_UPLOADS = 100
_decode_lock = threading.Lock()  # one decode at a time: peak memory is one picture, not N


def image_size(data: bytes) -> tuple[int, int, str]:
    """(width, height, kind) from a PNG, JPEG or WebP header; InputError if it is none of them."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return w, h, "png"
    if data[:2] == b"\xff\xd8":
        return (*_jpeg_size(data), "jpeg")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return w, h, "webp"
        if chunk == b"VP8L" and data[20] == 0x2F:
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, "webp"
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF, "webp"
    raise InputError("the upload is not a readable PNG, JPEG or WebP image")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if i + 9 > n:
                break
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if length < 2:
            break
        i += 2 + length
    raise InputError("the upload is not a readable JPEG (no frame header found)")


def decode_checked(data: bytes) -> np.ndarray:
    """Pixels of an upload whose header promises a sane size; refused before decoding otherwise."""
    w, h, _ = image_size(data)
    if max(w, h) > MAX_SIDE or min(w, h) < MIN_SIDE:
        raise InputError(f"image must be {MIN_SIDE}-{MAX_SIDE} pixels per side (its header says {w}x{h})")
    with _decode_lock:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError("the upload is not a readable image")
    if img.shape[1] != w or img.shape[0] != h:
        raise InputError(f"the image's header says {w}x{h} but it holds {img.shape[1]}x{img.shape[0]} pixels")
    return img


def clean_stale_temps(folder: Path, older_than_s: float = 60.0) -> int:
    """Remove temp files a killed write left behind (``.NAME.XXXX.tmp``); returns how many."""
    return paths.clean_stale_temps(folder, (".*.tmp",), older_than_s)


def store(name: str, data: bytes) -> Path:
    """Check, decode and store an upload as NAME.png (re-encoded: nothing but pixels is kept)."""
    check_upload_name(name)
    existing = uploads()
    if name not in existing and len(existing) >= MAX_UPLOADS:
        raise InputError(f"too many uploads ({MAX_UPLOADS}); delete some first")
    img = decode_checked(data)
    ok, png = cv2.imencode(".png", img)
    if not ok:
        raise InputError("the upload could not be re-encoded as PNG")
    folder = uploads_dir()
    target = folder / f"{name}.png"
    paths.write_atomic(target, png.tobytes())
    for old in folder.glob(f"{name}.*"):  # an older upload of the same name in another format goes only now
        if old != target and old.stem == name and not old.name.startswith("."):
            old.unlink(missing_ok=True)
    return target
