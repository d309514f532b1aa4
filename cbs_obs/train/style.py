"""``train style``: a Johnson TransformerNet for one style image (Johnson et al. 2016).

The recipe of pytorch/examples fast_neural_style, so results compare with its candy / mosaic
files: photos resized and centre-cropped to 256 px, batch 4, Adam lr 1e-3, content loss at
VGG16 relu2_2 (weight 1e5), style loss on Gram matrices at relu1_2, relu2_2, relu3_3 and relu4_3
(weight 1e10), 2 epochs. The final file is the plain TransformerNet state dict, the format the
reference scripts and ``load_transformer`` both read; checkpoints add the optimiser and step.
"""
from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..models.device import torch_device
from ..errors import InputError, SettingsError
from ..style.johnson import TransformerNet
from .data import StyleImages, list_images, load_style_image
from .loop import Plan, RunResult, default_workers, load_checkpoint, run_steps, save_checkpoint
from .vgg import gram, load_vgg

log = logging.getLogger(__name__)


@dataclass
class StyleSettings:
    """Every knob of a style run; the defaults are the reference recipe's."""

    image_size: int = 256
    style_size: int | None = None
    batch: int = 4
    lr: float = 1e-3
    content_weight: float = 1e5
    style_weight: float = 1e10
    epochs: int = 2
    max_steps: int | None = None
    checkpoint_every: int = 2000
    seed: int = 42
    workers: int | None = None

    def check(self) -> None:
        for name in ("image_size", "batch", "epochs"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.replace('_', '-')} must be 1 or more, got {getattr(self, name)}")
        if self.image_size < 32 or self.image_size % 4:
            raise SettingsError(f"image size must be a multiple of 4 and at least 32, got {self.image_size}")
        if self.lr <= 0 or self.content_weight < 0 or self.style_weight < 0:
            raise SettingsError("learning rate must be positive and loss weights not negative")
        if self.max_steps is not None and self.max_steps < 1:
            raise SettingsError(f"max-steps must be 1 or more, got {self.max_steps}")
        if self.checkpoint_every < 0:
            raise SettingsError("checkpoint-every must be 0 (off) or more")


def default_checkpoint_dir(output: Path) -> Path:
    return output.parent / f"{output.stem}-checkpoints"


def train_style(
    style_image: Path,
    dataset: Path,
    output: Path,
    settings: StyleSettings | None = None,
    *,
    vgg_weights: Path | None = None,
    vgg_random: bool = False,
    checkpoint_dir: Path | None = None,
    resume: Path | None = None,
    progress: bool = True,
) -> RunResult:
    """Train, write ``output`` (loadable by ``load_transformer``) and return the losses of every step.

    Cheap checks (style image, dataset, output folder, resume file) come before VGG16 is loaded.
    """
    s = settings or StyleSettings()
    s.check()
    output = Path(output)
    if not output.parent.is_dir():
        raise InputError(f"cannot write {output}: folder {output.parent} does not exist")
    style = load_style_image(style_image, s.style_size)
    files = list_images(dataset)
    ckpt = load_checkpoint(resume, "style") if resume is not None else None
    vgg = load_vgg(vgg_weights, random_init=vgg_random)

    device = torch_device()
    torch.manual_seed(s.seed)
    random.seed(s.seed)
    net = TransformerNet().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    start = 0
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        for group in opt.param_groups:
            group["lr"] = s.lr
        start = int(ckpt["step"])
        if ckpt.get("style_image") and Path(ckpt["style_image"]).name != Path(style_image).name:
            log.warning("%s was trained on style image %s, now continuing with %s", resume,
                        Path(ckpt["style_image"]).name, Path(style_image).name)
    vgg = vgg.to(device)
    with torch.no_grad():
        style_grams = [gram(f) for f in vgg(style.to(device))]

    plan = Plan(len(files), s.batch, s.epochs, s.max_steps)
    cdir = Path(checkpoint_dir) if checkpoint_dir else default_checkpoint_dir(output)

    def step(batch: torch.Tensor, _index: int) -> dict:
        x = batch.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        y = net(x)
        fy = vgg(y)
        with torch.no_grad():
            fx = vgg(x)
        content = s.content_weight * F.mse_loss(fy.relu2_2, fx.relu2_2)
        style_loss = sum(F.mse_loss(gram(f), g.expand(len(x), -1, -1)) for f, g in zip(fy, style_grams, strict=True))
        style_loss = s.style_weight * style_loss
        total = content + style_loss
        total.backward()
        opt.step()
        return {"content": content.item(), "style": style_loss.item(), "total": total.item()}

    def checkpoint(at: int) -> Path:
        return save_checkpoint(cdir / f"style_step{at:07d}.pth", {
            "kind": "style", "model": net.state_dict(), "optimizer": opt.state_dict(), "step": at,
            "epoch": at // plan.steps_per_epoch, "settings": _plain(asdict(s)),
            "style_image": str(style_image)})

    workers = default_workers() if s.workers is None else s.workers
    if start >= plan.total_steps:
        log.warning("the checkpoint is already at step %d of %d; writing its weights only", start, plan.total_steps)
    history, saved = run_steps(dataset=StyleImages(files, s.image_size), plan=plan, start_step=start, seed=s.seed,
                               workers=workers, step_fn=step, checkpoint=checkpoint,
                               checkpoint_every=s.checkpoint_every, desc="train style", progress=progress)
    net.eval()
    save_checkpoint(output, {k: v.detach().cpu() for k, v in net.state_dict().items()})
    final = history[-1]["step"] if history else start
    return RunResult(output, start, final, history, saved)


def _plain(d: dict) -> dict:
    """Settings as plain numbers and strings, so checkpoints load with ``weights_only=True``."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}
