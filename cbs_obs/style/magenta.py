"""The Magenta networks shipped as ONNX: 26 built-in styles, and any image as a style.

Sessions are created once per process and shared by every style that uses them.
"""
from __future__ import annotations

import hashlib
import threading
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from .. import paths
from ..models import registry
from ..models.device import is_background
from ..models.download import sha256_of
from ..models.inference import Network, model_name
from ..errors import InputError
from .base import back_to_size, fit_within, pad_to_multiple

# Index -> readable name, chosen from the contact sheet (cbs-obs styles sheet).
BUILTIN_STYLES: tuple[str, ...] = (
    "sunny-pastel",  # 0
    "bold-outline",  # 1
    "pale-sketch",  # 2
    "neon-swirl",  # 3
    "red-yellow-cubist",  # 4
    "warm-mosaic",  # 5
    "blue-cells",  # 6
    "fauve",  # 7
    "pink-watercolor",  # 8
    "red-teal-pattern",  # 9
    "terracotta",  # 10
    "golden-etching",  # 11
    "soft-gold",  # 12
    "lime-expressionist",  # 13
    "pale-cyan-poster",  # 14
    "woven-lattice",  # 15
    "starry-blue",  # 16
    "red-stripes",  # 17
    "sepia-woodcut",  # 18
    "cobalt-impasto",  # 19
    "crimson-fire",  # 20
    "candy-pop",  # 21
    "navy-red-poster",  # 22
    "charcoal-ink",  # 23
    "cream-engraving",  # 24
    "stained-glass",  # 25
)

_lock = threading.Lock()
# each network's input names, in the order the ONNX file declares them
INPUTS = {"multistyle26": ("image", "style_weights"), "arbitrary-predict": ("style_image",),
          "arbitrary-transform": ("content_image", "style_vector")}


def _network(model: str) -> Network:
    """The network; background threads get their own one-core copy (see device.background_work)."""
    return _network_for(model, is_background())


@cache
def _network_for(model: str, background: bool) -> Network:
    with _lock:
        path = registry.ensure(model)
        source = _symbolic_transform if model == "arbitrary-transform" else (lambda: str(path))
        return Network.from_onnx(model_name(model, sha256_of(path)), source, INPUTS[model], one_thread=background)


def _symbolic_transform() -> bytes:
    """The transform net with symbolic H and W: nothing in the graph fixes 384x384."""
    import onnx

    proto = onnx.load(str(registry.ensure("arbitrary-transform")))
    for value in list(proto.graph.input[:1]) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        dims[1].dim_param, dims[2].dim_param = "height", "width"
    return proto.SerializeToString()


def _to_rgb01(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) * (1.0 / 255.0)


def _from_rgb01(rgb: np.ndarray) -> np.ndarray:
    out = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_RGB2BGR)


class MultiStyle:
    """One of the 26 built-in styles (or a blend: weights over the 26)."""

    def __init__(self, index: int, *, max_side: int | None = None):
        if not 0 <= index < len(BUILTIN_STYLES):
            raise InputError(f"built-in style index must be 0-{len(BUILTIN_STYLES) - 1}, got {index}")
        self.index = index
        self.name = BUILTIN_STYLES[index]
        self.max_side = max_side
        self.weights = np.zeros(len(BUILTIN_STYLES), np.float32)
        self.weights[index] = 1.0

    def apply(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        small, _, _ = pad_to_multiple(fit_within(frame, self.max_side), 4)
        sh, sw = fit_within(frame, self.max_side).shape[:2]
        x = _to_rgb01(small).transpose(2, 0, 1)[None]
        y = _network("multistyle26").run({"image": x, "style_weights": self.weights})[0]
        return back_to_size(_from_rgb01(y.transpose(1, 2, 0)[:sh, :sw]), h, w)


class ArbitraryStyle:
    """Any picture as a style: its 100-d style vector is computed once and cached on disk."""

    STYLE_SIZE = 256

    def __init__(self, image_path: Path | str, *, max_side: int | None = 640):
        self.path = Path(image_path)
        self.name = f"image-style:{self.path.name}"
        self.max_side = max_side
        self.vector = style_vector(self.path)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        small = fit_within(frame, self.max_side)
        sh, sw = small.shape[:2]
        padded, _, _ = pad_to_multiple(small, 4)
        y = _network("arbitrary-transform").run({"content_image": _to_rgb01(padded)[None],
                                                 "style_vector": self.vector})[0]
        return back_to_size(_from_rgb01(y[:sh, :sw]), h, w)


def style_vector(image_path: Path) -> np.ndarray:
    """The style vector of an image, cached by the image's content hash."""
    from ..io.images import read_image

    data = Path(image_path).read_bytes() if Path(image_path).is_file() else None
    if data is None:
        raise InputError(f"style image {image_path} does not exist")
    key = hashlib.sha256(data).hexdigest()[:32]
    cache = paths.cache_dir() / "style_vectors" / f"{key}.npy"
    if cache.exists():
        try:
            return np.load(cache).astype(np.float32).reshape(1, 1, 1, 100)
        except (OSError, ValueError):
            cache.unlink(missing_ok=True)
    img = read_image(image_path)
    hh, ww = img.shape[:2]
    side = min(hh, ww)
    top, left = (hh - side) // 2, (ww - side) // 2
    crop = cv2.resize(img[top : top + side, left : left + side], (ArbitraryStyle.STYLE_SIZE,) * 2,
                      interpolation=cv2.INTER_AREA)
    vec = _network("arbitrary-predict").run(_to_rgb01(crop)[None]).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vec)
    return vec
