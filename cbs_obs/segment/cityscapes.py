"""Street scenes: DABNet on the 19 Cityscapes classes, as in the paper."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..models import registry
from ..models.device import torch_device, torch_dtype
from ..models.checkpoints import load_torch_file
from ..models.download import sha256_of
from ..models.inference import Network, model_name
from ..models.onnx_runtime import cache_key
from ..errors import ModelError
from .base import ClassProbs
from .dabnet import DABNet

# Per-channel mean in BGR order, 0..255 scale, no std: the official preprocessing.
MEAN_BGR = np.array([72.3924, 82.90902, 73.158325], np.float32)


def load_dabnet(path: Path, classes: int) -> DABNet:
    ckpt = load_torch_file(path, what="DABNet checkpoint",
                           fix="fetch it again with: cbs-obs models fetch dabnet-cityscapes --force")
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ModelError(f"{path} holds no state dict; expected a DABNet checkpoint with a 'model' entry")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = DABNet(classes=classes)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelError(f"{path} is not a DABNet checkpoint with {classes} classes "
                         f"({str(e).splitlines()[0][:160]})") from e
    return net.eval()


def saved_classes(path: Path) -> tuple[str, ...] | None:
    """Class names stored in a checkpoint by ``cbs-obs train seg`` (official checkpoints have none)."""
    try:
        ckpt = load_torch_file(path, what="checkpoint", fix="")
    except ModelError:
        return None  # load_dabnet reports unreadable files with the fix
    names = ckpt.get("classes") if isinstance(ckpt, dict) else None
    return tuple(str(n) for n in names) if isinstance(names, (list, tuple)) and names else None


class CityscapesSegmenter:
    """``size``: processing (H, W); None keeps the frame size. Sizes are rounded to multiples of 8."""

    name = "cityscapes"

    def __init__(self, weights: Path | None = None, *, size: tuple[int, int] | None = None,
                 card: str = "dabnet-cityscapes", classes: tuple[str, ...] | None = None, backend: str = "onnx"):
        from ..errors import UnknownNameError
        from .person import BACKENDS

        if backend not in BACKENDS:
            raise UnknownNameError("backend", backend, BACKENDS)
        c = registry.card(card)
        self.device = torch_device()
        path = registry.ensure(card, weights=weights)
        self.classes = tuple(classes or (saved_classes(path) if weights is not None else None) or c.classes)
        n = len(self.classes)
        sha = sha256_of(path)
        want = backend if self.device.type == "cpu" else "torch"
        self.network = Network(cache_key("dabnet", sha), lambda: load_dabnet(path, n), (1, 3, 128, 256),
                               backend=want, dynamic_hw=True, example_scale=50.0, model=model_name(f"dabnet{n}", sha))
        self.backend = self.network.backend
        self.dtype = torch_dtype()
        self.size = size

    @property
    def net(self) -> DABNet:
        """The torch module on the inference device (built on first use when the network runs elsewhere)."""
        net = self.network._module()
        return net.to(self.device, self.dtype)

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """The network's input: NCHW float32 RGB minus the mean, at the processing size."""
        import cv2

        if self.size is not None:
            h, w = (max(8, s // 8 * 8) for s in self.size)
            if frame.shape[:2] != (h, w):
                frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        x = frame.astype(np.float32) - MEAN_BGR
        return np.ascontiguousarray(x[:, :, ::-1].transpose(2, 0, 1)[None])

    def segment(self, frame: np.ndarray) -> ClassProbs:
        logits = self.network.run(self.preprocess(frame))[0]  # 1/8 resolution
        e = np.exp(logits - logits.max(0, keepdims=True))
        return ClassProbs((e / e.sum(0, keepdims=True)).astype(np.float32), self.classes)

    @torch.inference_mode()
    def labels_full(self, frame: np.ndarray) -> np.ndarray:
        """Train ids at frame size exactly as the original code computes them (logits upsampled)."""
        x = torch.from_numpy(self.preprocess(frame)).to(self.device, self.dtype)
        return self.net.forward_full(x)[0].argmax(0).byte().cpu().numpy()
