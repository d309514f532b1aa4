"""VGG16 as the loss network of Johnson et al.: features at relu1_2, relu2_2, relu3_3 and relu4_3.

Only ``features[0:23]`` of torchvision's VGG16 is built: the rest (the 120M-parameter classifier)
is never used by the perceptual loss, so building it would only cost memory and start-up time.
Layer indices match torchvision's, so its state dict (``features.N.weight``) loads directly.

Weights, in order: ``--vgg-weights PATH`` (a torchvision vgg16 state dict), ``--vgg-random``
(for tests only: the loss then measures nothing meaningful), or torchvision's ImageNet weights
(``VGG16_Weights.IMAGENET1K_V1``) from the torch hub cache, downloaded on first use.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from ..models.checkpoints import load_torch_file
from ..errors import ModelError

log = logging.getLogger(__name__)

# torchvision's VGG16 "D" configuration up to relu4_3: channels, with "M" for max-pool.
_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
# Index (in torchvision's ``features``) of the ReLU after which each loss layer is read.
TAPS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NO_WEIGHTS_FIX = ("give the file with --vgg-weights PATH (a torchvision vgg16 state dict such as "
                  "vgg16-397923af.pth), or --vgg-random for a smoke test only")


class VggOutputs(NamedTuple):
    relu1_2: torch.Tensor
    relu2_2: torch.Tensor
    relu3_3: torch.Tensor
    relu4_3: torch.Tensor


class Vgg16Features(nn.Module):
    """Frozen; takes RGB 0..255 images and normalises them as ImageNet training did."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in _CONFIG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)
        for m in self.modules():  # torchvision's own initialisation, for --vgg-random
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, pixels: torch.Tensor) -> VggOutputs:
        x = (pixels - self.mean) / self.std  # == ((pixels / 255) - mean) / std
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS.values():
                taps.append(x)
        return VggOutputs(*taps)

    def load_torchvision_state(self, state: dict, source: str) -> None:
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        if not isinstance(state, dict):
            raise ModelError(f"{source} does not hold a state dict; {NO_WEIGHTS_FIX}")
        wanted = {f"features.{k}" for k in self.features.state_dict()}
        missing = sorted(wanted - set(state))
        if missing:
            raise ModelError(f"{source} is not a torchvision VGG16 state dict (missing {', '.join(missing[:3])}); "
                             f"{NO_WEIGHTS_FIX}")
        try:
            self.features.load_state_dict({k.removeprefix("features."): state[k] for k in wanted})
        except RuntimeError as e:
            raise ModelError(f"{source} does not match VGG16 ({str(e).splitlines()[0][:160]}); "
                             f"{NO_WEIGHTS_FIX}") from e


def _download_state_dict() -> dict:
    """torchvision's ImageNet VGG16 weights: from the torch hub cache, else downloaded into it."""
    from torchvision.models import VGG16_Weights

    return VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=True)


def load_vgg(weights: Path | str | None = None, *, random_init: bool = False) -> Vgg16Features:
    """The frozen loss network, from a file, from torchvision, or random for tests (with a warning)."""
    net = Vgg16Features()
    if weights is not None and random_init:
        raise ModelError("give either --vgg-weights or --vgg-random, not both")
    if weights is not None:
        path = Path(weights)
        state = load_torch_file(path, what="VGG16 weights file", fix=NO_WEIGHTS_FIX)
        net.load_torchvision_state(state, str(path))
    elif random_init:
        log.warning("--vgg-random: the loss network has random weights, so the trained style will be "
                    "meaningless; use this only to test the pipeline")
    else:
        try:
            state = _download_state_dict()
        except Exception as e:  # no network, proxy, disk full...: one message with the way out
            raise ModelError(f"cannot download the ImageNet VGG16 weights torchvision uses ({type(e).__name__}: "
                             f"{str(e)[:120]}); {NO_WEIGHTS_FIX}") from None
        net.load_torchvision_state(state, "torchvision VGG16_Weights.IMAGENET1K_V1")
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def gram(features: torch.Tensor) -> torch.Tensor:
    """B x C x C Gram matrices, divided by C*H*W as in the reference recipe."""
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)
