"""``eval seg``: per-class IoU, mIoU, pixel accuracy, the confusion matrix and inference speed.

Predictions are made at label resolution with the engine's preprocessing (BGR minus MEAN_BGR,
RGB, sides rounded to multiples of 8, ``--size`` resized with INTER_AREA) and the 1/8 logits
upsampled bilinearly to the label size, which at native size is exactly the official
``forward_full``. IoU_c = TP / (TP + FP + FN) over all pixels of the split, ignore pixels left
out. A class that appears neither in the ground truth nor in any prediction has no IoU (0/0):
it is reported as such and left out of the mean, as the Cityscapes scripts do with NaN.
"""
from __future__ import annotations

import csv
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..models.device import torch_device
from ..errors import InputError, ModelError, SettingsError
from ..io.images import read_image
from .data import check_label, find_seg_data, read_label, to_network_input


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, classes: int, ignore_index: int = 255) -> np.ndarray:
    """``classes`` x ``classes`` pixel counts: row = ground-truth class, column = predicted class."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise SettingsError(f"prediction is {pred.shape} but the ground truth is {gt.shape}; they must match")
    pred, gt = pred.ravel(), gt.ravel()
    keep = gt != ignore_index
    p, g = pred[keep].astype(np.int64), gt[keep].astype(np.int64)
    if g.size and (g.min() < 0 or g.max() >= classes):
        raise InputError(f"ground truth holds class ids outside 0..{classes - 1} (other than ignore {ignore_index})")
    if p.size and (p.min() < 0 or p.max() >= classes):
        raise SettingsError(f"prediction holds class ids outside 0..{classes - 1}")
    return np.bincount(g * classes + p, minlength=classes * classes).reshape(classes, classes)


def iou_from_confusion(cm: np.ndarray) -> tuple[np.ndarray, float]:
    """(IoU per class with NaN where TP+FP+FN = 0, mean over the classes that have one; NaN if none)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    present = ~np.isnan(iou)
    return iou, float(iou[present].mean()) if present.any() else math.nan


@dataclass
class EvalResult:
    classes: tuple[str, ...]
    confusion: np.ndarray
    images: int
    fps: float
    split: str
    size: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def iou(self) -> np.ndarray:
        return iou_from_confusion(self.confusion)[0]

    @property
    def miou(self) -> float:
        return iou_from_confusion(self.confusion)[1]

    @property
    def excluded(self) -> list[str]:
        return [c for c, v in zip(self.classes, self.iou, strict=True) if math.isnan(v)]

    @property
    def pixel_accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else math.nan

    def to_dict(self) -> dict:
        def num(v: float):
            return None if math.isnan(v) else round(float(v), 6)

        return {"split": self.split, "images": self.images, "size": list(self.size) if self.size else None,
                "classes": list(self.classes), "iou": {c: num(v) for c, v in zip(self.classes, self.iou, strict=True)},
                "miou": num(self.miou), "excluded_from_miou": self.excluded,
                "pixel_accuracy": num(self.pixel_accuracy), "fps": round(self.fps, 3),
                "confusion": self.confusion.tolist(), "notes": self.notes}

    def report(self) -> str:
        width = max(len(c) for c in self.classes)
        lines = [f"{'class':{width}s}    IoU"]
        for c, v in zip(self.classes, self.iou, strict=True):
            lines.append(f"{c:{width}s}  " + ("    -   (absent from ground truth and predictions)"
                                               if math.isnan(v) else f"{v * 100:5.1f}%"))
        counted = len(self.classes) - len(self.excluded)
        miou = "n/a" if math.isnan(self.miou) else f"{self.miou * 100:.1f}%"
        lines.append(f"mIoU {miou} over {counted} of {len(self.classes)} classes"
                     + (f" ({', '.join(self.excluded)} excluded: absent from both ground truth and predictions)"
                        if self.excluded else ""))
        acc = "n/a" if math.isnan(self.pixel_accuracy) else f"{self.pixel_accuracy * 100:.1f}%"
        lines.append(f"pixel accuracy {acc}; {self.images} images; {self.fps:.2f} fps (median inference time, "
                     "reading files excluded)")
        return "\n".join(lines)

    def confusion_report(self) -> str:
        """Rows = ground truth, columns = prediction (by class number), in % of the row."""
        n = len(self.classes)
        width = max(len(c) for c in self.classes) + 4
        head = " " * width + "".join(f"{j:>5d}" for j in range(n))
        rows = ["confusion matrix (rows: ground truth, columns: predicted class number, % of the row):", head]
        for i, c in enumerate(self.classes):
            total = self.confusion[i].sum()
            cells = "".join(f"{self.confusion[i, j] * 100 / total:5.0f}" if total else "    -" for j in range(n))
            rows.append(f"{i:>2d} {c:{width - 3}s}" + cells)
        return "\n".join(rows)

    def write_confusion_csv(self, path: Path) -> Path:
        path = Path(path)
        if not path.parent.is_dir():
            raise InputError(f"cannot write {path}: folder {path.parent} does not exist")
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["ground_truth\\predicted", *self.classes])
            for c, row in zip(self.classes, self.confusion, strict=True):
                w.writerow([c, *(int(v) for v in row)])
        return path

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _classes_for(weights: Path, dataset_classes: tuple[str, ...], notes: list[str]) -> tuple[str, ...]:
    from ..segment.cityscapes import saved_classes

    saved = saved_classes(weights)
    if saved is None:
        return dataset_classes
    if len(saved) != len(dataset_classes):
        raise SettingsError(f"{weights} predicts {len(saved)} classes ({', '.join(saved)}) but the dataset has "
                            f"{len(dataset_classes)} ({', '.join(dataset_classes)}); evaluate it on its own dataset")
    if saved != dataset_classes:
        notes.append(f"class names differ between the weights ({', '.join(saved)}) and the dataset; "
                     "using the dataset's, matched by index")
    return dataset_classes


def evaluate_seg(dataset: Path, weights: Path, *, split: str = "val", size: tuple[int, int] | None = None,
                 limit: int | None = None, progress: bool = True) -> EvalResult:
    """Run DABNet ``weights`` over ``split`` of ``dataset`` and accumulate one confusion matrix."""
    import sys

    from tqdm import tqdm

    from ..segment.cityscapes import load_dabnet

    weights = Path(weights)
    if not weights.is_file():
        raise ModelError(f"weights file {weights} does not exist")
    if limit is not None and limit < 1:
        raise SettingsError(f"--limit must be 1 or more, got {limit}")
    data = find_seg_data(dataset, split)
    notes = [data.note] if data.note else []
    classes = _classes_for(weights, data.classes, notes)
    n = len(classes)
    device = torch_device()
    net = load_dabnet(weights, n).to(device).eval()
    pairs = data.pairs[:limit] if limit else data.pairs
    cm = np.zeros((n, n), np.int64)
    times = []
    for image_path, label_path in tqdm(pairs, desc=f"eval {split}", unit="img", disable=not progress,
                                       file=sys.stderr):
        img, gt = read_image(image_path), read_label(label_path)
        check_label(gt, label_path, n, data.ignore_index)
        t0 = time.perf_counter()
        h, w = size if size else img.shape[:2]
        h, w = max(8, h // 8 * 8), max(8, w // 8 * 8)
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        with torch.inference_mode():
            logits = net(to_network_input(img)[None].to(device))
            logits = F.interpolate(logits, gt.shape, mode="bilinear", align_corners=False)
            pred = logits[0].argmax(0).cpu().numpy()
        times.append(time.perf_counter() - t0)
        cm += confusion_matrix(pred, gt, n, data.ignore_index)
    median = statistics.median(times)
    return EvalResult(classes, cm, len(pairs), 1.0 / median if median > 0 else math.inf, split, size, notes)
