"""``train seg``: DABNet on a labelled dataset, written in the official checkpoint format.

The recipe of the DABNet paper's training code, reduced to what a streamer needs: per-pixel
cross-entropy with an ignore label, computed on logits upsampled to the crop (as the official
network returns them), a poly learning-rate schedule ``lr * (1 - step / steps)^0.9`` measured
against the full ``epochs`` schedule, random crop and flip, Adam (lr 5e-4) or SGD (momentum 0.9,
lr 4.5e-2). Inputs get the same preprocessing as ``CityscapesSegmenter`` (BGR minus MEAN_BGR,
then RGB), so what is trained here is what the engine runs.

Output: ``{"epoch", "model", "classes", "ignore_index", "step"}`` - ``load_dabnet`` reads
``model``, ``CityscapesSegmenter`` reads ``classes``. Checkpoints also hold the optimiser.
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
from ..segment.dabnet import DABNet
from .data import SegCrops, find_seg_data
from .loop import Plan, RunResult, default_workers, load_checkpoint, run_steps, save_checkpoint

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd")
DEFAULT_LR = {"adam": 5e-4, "sgd": 4.5e-2}


@dataclass
class SegSettings:
    """Every knob of a segmentation run. Crop and batch default to the official Cityscapes setting."""

    crop: tuple[int, int] = (512, 1024)
    batch: int = 8
    epochs: int = 1000
    max_steps: int | None = None
    optimizer: str = "adam"
    lr: float | None = None
    weight_decay: float = 1e-4
    power: float = 0.9
    flip: bool = True
    scale: tuple[float, float] = (1.0, 1.0)
    checkpoint_every: int = 1000
    seed: int = 1
    workers: int | None = None

    @property
    def base_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def check(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise SettingsError(f"unknown optimizer {self.optimizer!r}; choose {' or '.join(OPTIMIZERS)}")
        if self.batch < 1 or self.epochs < 1:
            raise SettingsError("batch and epochs must be 1 or more")
        if min(self.crop) < 8 or any(c % 8 for c in self.crop):
            raise SettingsError(f"crop {self.crop[0]}x{self.crop[1]} must be multiples of 8 (DABNet works at 1/8)")
        if self.base_lr <= 0 or self.weight_decay < 0:
            raise SettingsError("learning rate must be positive and weight decay not negative")
        lo, hi = self.scale
        if not 0.1 <= lo <= hi <= 10:
            raise SettingsError(f"scale range {lo}..{hi} must satisfy 0.1 <= low <= high <= 10")
        if self.max_steps is not None and self.max_steps < 1:
            raise SettingsError(f"max-steps must be 1 or more, got {self.max_steps}")
        if self.checkpoint_every < 0:
            raise SettingsError("checkpoint-every must be 0 (off) or more")


def poly_lr(base: float, step: int, steps: int, power: float = 0.9) -> float:
    """The poly schedule: ``base`` at step 0, falling to 0 at ``steps``."""
    return base * max(0.0, 1.0 - step / max(1, steps)) ** power


def default_checkpoint_dir(output: Path) -> Path:
    return output.parent / f"{output.stem}-checkpoints"


def _optimizer(net: torch.nn.Module, s: SegSettings) -> torch.optim.Optimizer:
    if s.optimizer == "sgd":
        return torch.optim.SGD(net.parameters(), lr=s.base_lr, momentum=0.9, weight_decay=s.weight_decay)
    return torch.optim.Adam(net.parameters(), lr=s.base_lr, weight_decay=s.weight_decay)


def train_seg(
    dataset: Path,
    output: Path,
    settings: SegSettings | None = None,
    *,
    split: str = "train",
    checkpoint_dir: Path | None = None,
    resume: Path | None = None,
    progress: bool = True,
) -> RunResult:
    """Train DABNet on ``dataset``'s ``split`` and write ``output`` (loadable by ``load_dabnet``)."""
    s = settings or SegSettings()
    s.check()
    output = Path(output)
    if not output.parent.is_dir():
        raise InputError(f"cannot write {output}: folder {output.parent} does not exist")
    data = find_seg_data(dataset, split)
    if data.note:
        log.info("%s", data.note)
    ckpt = load_checkpoint(resume, "seg") if resume is not None else None
    if ckpt is not None and ckpt.get("classes") and tuple(ckpt["classes"]) != data.classes:
        raise SettingsError(f"{resume} was trained on classes {', '.join(ckpt['classes'])} but the dataset has "
                            f"{', '.join(data.classes)}; resume on the same dataset")
    if ckpt is not None and ckpt.get("optimizer_name", s.optimizer) != s.optimizer:
        raise SettingsError(f"{resume} was trained with --optimizer {ckpt['optimizer_name']}; resume with the same")

    device = torch_device()
    torch.manual_seed(s.seed)
    random.seed(s.seed)
    net = DABNet(classes=len(data.classes)).to(device)
    opt = _optimizer(net, s)
    start = 0
    if ckpt is not None:
        net.load_state_dict({k.removeprefix("module."): v for k, v in ckpt["model"].items()})
        opt.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])
    plan = Plan(len(data.pairs), s.batch, s.epochs, s.max_steps, drop_last=True)
    cdir = Path(checkpoint_dir) if checkpoint_dir else default_checkpoint_dir(output)
    net.train()

    def step(batch, index: int) -> dict:
        x, y = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
        lr = poly_lr(s.base_lr, index, plan.scheduled_steps, s.power)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        logits = net.forward_full(x)
        valid = int((y != data.ignore_index).sum())
        # summed then divided: a crop with no labelled pixel gives 0, not NaN
        loss = F.cross_entropy(logits, y, ignore_index=data.ignore_index, reduction="sum") / max(1, valid)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "lr": lr}

    def payload(at: int, *, with_optimizer: bool) -> dict:
        out = {"epoch": at // plan.steps_per_epoch, "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
               "classes": list(data.classes), "ignore_index": data.ignore_index, "step": at, "kind": "seg"}
        if with_optimizer:
            out.update(optimizer=opt.state_dict(), optimizer_name=s.optimizer, settings=_plain(asdict(s)))
        return out

    def checkpoint(at: int) -> Path:
        return save_checkpoint(cdir / f"seg_step{at:07d}.pth", payload(at, with_optimizer=True))

    workers = default_workers() if s.workers is None else s.workers
    crops = SegCrops(data, s.crop, flip=s.flip, scale=s.scale)
    history, saved = run_steps(dataset=crops, plan=plan, start_step=start, seed=s.seed, workers=workers,
                               step_fn=step, checkpoint=checkpoint, checkpoint_every=s.checkpoint_every,
                               desc="train seg", progress=progress)
    final = history[-1]["step"] if history else start
    net.eval()
    save_checkpoint(output, payload(final, with_optimizer=False))
    return RunResult(output, start, final, history, saved)


def _plain(d: dict) -> dict:
    """Settings as lists, numbers and strings, so checkpoints load with ``weights_only=True``."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
