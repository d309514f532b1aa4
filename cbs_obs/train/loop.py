"""The step loop both recipes share: a fixed plan of steps, resumable at any step, with checkpoints.

Why a plan of steps rather than "for epoch in epochs": resuming must continue exactly where a
run stopped. Each epoch's shuffle comes from a generator seeded by (seed, epoch), so a resumed
run rebuilds the same order and skips the batches already done without reading them.
"""
from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from ..models.checkpoints import load_torch_file
from ..models.device import torch_device
from ..errors import CbsError, InputError, ModelError, SettingsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """How many optimiser steps a run takes. ``max_steps`` stops early without changing the schedule."""

    samples: int
    batch: int
    epochs: int
    max_steps: int | None = None
    drop_last: bool = False

    @property
    def steps_per_epoch(self) -> int:
        if self.drop_last and self.samples >= self.batch:
            return self.samples // self.batch
        return math.ceil(self.samples / self.batch)

    @property
    def scheduled_steps(self) -> int:
        """Length of the full schedule (epochs x steps per epoch): what learning-rate decay is measured against."""
        return self.epochs * self.steps_per_epoch

    @property
    def total_steps(self) -> int:
        total = self.scheduled_steps
        return min(total, self.max_steps) if self.max_steps else total


def epoch_order(samples: int, seed: int, epoch: int) -> list[int]:
    """The shuffle of one epoch, the same every time it is asked for (what makes resume exact)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(samples, generator=g).tolist()


def default_workers() -> int:
    """Loader processes: none on CPU (the network already uses every core), 4 feeding a GPU."""
    return 4 if torch_device().type == "cuda" else 0


def one_line(error: CbsError) -> CbsError:
    """A CbsError raised inside a DataLoader worker comes back with a traceback in its message; keep the last line."""
    text = str(error)
    if "Original Traceback" not in text:
        return error
    last = [line for line in text.splitlines() if line.strip()][-1]
    _, _, msg = last.partition(": ")
    return type(error)(msg or last)


def save_checkpoint(path: Path, payload: dict) -> Path:
    """Written to a temporary name and renamed, so an interrupted save never leaves a broken file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path, kind: str) -> dict:
    """A training checkpoint of ``kind`` ('style' or 'seg') with model, optimizer and step."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist")
    ckpt = load_torch_file(path, what="checkpoint", fix="resume from a file written to --checkpoint-dir")
    if not isinstance(ckpt, dict) or not {"model", "optimizer", "step"} <= set(ckpt):
        raise ModelError(f"{path} is not a training checkpoint (it needs model, optimizer and step entries); "
                         "resume from a file written to --checkpoint-dir")
    if ckpt.get("kind", kind) != kind:
        raise ModelError(f"{path} is a checkpoint of 'train {ckpt['kind']}', not 'train {kind}'")
    return ckpt


@dataclass
class RunResult:
    """What a finished run did: the output file, the step it ended at, and every step's losses."""

    output: Path
    start_step: int
    step: int
    history: list[dict] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)


def run_steps(
    *,
    dataset: Dataset,
    plan: Plan,
    start_step: int,
    seed: int,
    workers: int,
    step_fn: Callable[[object, int], dict],
    checkpoint: Callable[[int], Path] | None,
    checkpoint_every: int,
    desc: str,
    progress: bool = True,
) -> tuple[list[dict], list[Path]]:
    """Run steps ``start_step + 1 .. plan.total_steps``; ``step_fn(batch, step_index)`` returns its losses.

    ``checkpoint(step)`` is called every ``checkpoint_every`` steps, after the last step, and when
    the run is interrupted with Ctrl-C (then the interruption is raised again).
    """
    from tqdm import tqdm

    if start_step < 0:
        raise SettingsError(f"step counter cannot be negative ({start_step})")
    if plan.samples < 1:
        raise InputError("the dataset has no samples")
    total, spe = plan.total_steps, plan.steps_per_epoch
    history: list[dict] = []
    saved: list[Path] = []
    step = start_step
    if step >= total:
        return history, saved
    bar = tqdm(total=total, initial=step, desc=desc, unit="step", disable=not progress, dynamic_ncols=True,
               file=sys.stderr)
    pin = torch_device().type == "cuda"
    try:
        while step < total:
            epoch, skip = divmod(step, spe)
            order = epoch_order(plan.samples, seed, epoch)[skip * plan.batch:]
            loader = DataLoader(dataset, batch_size=plan.batch, sampler=order, num_workers=workers,
                                drop_last=plan.drop_last and plan.samples >= plan.batch, pin_memory=pin)
            try:
                for batch in loader:
                    losses = step_fn(batch, step)
                    step += 1
                    losses = {"step": step, "epoch": epoch, **losses}
                    history.append(losses)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items() if k not in ("step", "epoch")},
                                    refresh=False)
                    bar.update(1)
                    if checkpoint is not None and checkpoint_every and step % checkpoint_every == 0:
                        saved.append(checkpoint(step))
                    if step >= total:
                        break
            except CbsError as e:
                raise one_line(e) from None
    except KeyboardInterrupt:
        bar.close()
        if checkpoint is not None and step > start_step:
            path = checkpoint(step)
            print(f"interrupted at step {step}; continue with --resume {path}", file=sys.stderr)
        raise
    finally:
        bar.close()  # also on errors, so the error message starts on its own line
    if checkpoint is not None and checkpoint_every and step % checkpoint_every:  # the last step, if not saved yet
        saved.append(checkpoint(step))
    return history, saved
