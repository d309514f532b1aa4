"""Johnson et al.'s TransformerNet, the style network of the paper, written for cbs-obs.

Parameter names match pytorch/examples fast_neural_style checkpoints, so its candy / mosaic /
rain_princess / udnie files (and anything ``cbs-obs train style`` writes) load directly. Old
checkpoints saved InstanceNorm running stats; those keys are dropped on load because instance
norm uses per-image statistics at inference anyway.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.checkpoints import load_torch_file
from ..models.download import sha256_of
from ..models.inference import Network, model_name
from ..models.onnx_runtime import cache_key
from ..errors import ModelError
from .base import back_to_size, fit_within


class ConvLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int, upsample: int | None = None):
        super().__init__()
        self.upsample = upsample
        self.pad = k // 2
        self.conv2d = nn.Conv2d(c_in, c_out, k, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.conv2d(F.pad(x, (self.pad,) * 4, mode="reflect"))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, 1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3, 1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.in2(self.conv2(F.relu(self.in1(self.conv1(x)))))


class TransformerNet(nn.Module):
    """Pixel units in and out (RGB 0..255), as in the reference recipe."""

    def __init__(self):
        super().__init__()
        self.conv1, self.in1 = ConvLayer(3, 32, 9, 1), nn.InstanceNorm2d(32, affine=True)
        self.conv2, self.in2 = ConvLayer(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
        self.conv3, self.in3 = ConvLayer(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
        for i in range(1, 6):
            setattr(self, f"res{i}", ResidualBlock(128))
        self.deconv1, self.in4 = ConvLayer(128, 64, 3, 1, upsample=2), nn.InstanceNorm2d(64, affine=True)
        self.deconv2, self.in5 = ConvLayer(64, 32, 3, 1, upsample=2), nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, 9, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.in1(self.conv1(x)))
        y = F.relu(self.in2(self.conv2(y)))
        y = F.relu(self.in3(self.conv3(y)))
        for i in range(1, 6):
            y = getattr(self, f"res{i}")(y)
        y = F.relu(self.in4(self.deconv1(y)))
        y = F.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def load_transformer(path: Path | str) -> TransformerNet:
    state = load_torch_file(path, what="Johnson checkpoint",
                            fix="give a .pth saved by fast_neural_style or cbs-obs train style")
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # our training checkpoints wrap the weights
    if not isinstance(state, dict):
        raise ModelError(f"{path} does not hold a state dict")
    state = {k: v for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    net = TransformerNet()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ModelError(f"{path} is not a TransformerNet checkpoint ({first[:160]})") from e
    return net.eval()


@lru_cache(maxsize=8)
def _shared_net(path: str, mtime_ns: int) -> Network:
    """One network per checkpoint file version, however many sizes it is used at (torch: any frame size)."""
    if not Path(path).is_file():
        load_transformer(Path(path))  # says what is missing and how to fix it
    sha = sha256_of(Path(path))
    return Network(cache_key("johnson", sha), lambda: load_transformer(Path(path)), backend="torch",
                   model=model_name("johnson", sha))


def johnson_network(path: Path | str) -> Network:
    """The network of a checkpoint file (loaded once per file version)."""
    path = Path(path)
    stamp = path.stat().st_mtime_ns if path.is_file() else 0  # a missing file: the loader says so
    return _shared_net(str(path.resolve()), stamp)


class JohnsonStyle:
    """Any frame size: the input is reflect-padded to a multiple of 4 and the output cropped back."""

    def __init__(self, path: Path | str, *, max_side: int | None = None):
        self.path = Path(path)
        self.name = f"johnson:{self.path.stem}"
        self.max_side = max_side
        self.network = johnson_network(self.path)

    @property
    def net(self) -> TransformerNet:
        return self.network._module()

    def apply(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        small = fit_within(frame, self.max_side)
        sh, sw = small.shape[:2]
        x = np.ascontiguousarray(small[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
        ph, pw = (-sh) % 4, (-sw) % 4
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect" if min(sh, sw) > 4 else "edge")
        y = self.network.run(x)[0, :, :sh, :sw]
        y = np.round(np.clip(y, 0, 255)).astype(np.uint8).transpose(1, 2, 0)
        return back_to_size(np.ascontiguousarray(y[:, :, ::-1]), h, w)
