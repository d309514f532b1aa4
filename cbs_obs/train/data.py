"""Finding and reading training data: image folders for styles, labelled datasets for segmenters.

Every way a dataset can be wrong (missing folder, no images, image without mask, colour mask,
label value out of range) is reported as one InputError that names the files and the fix, before
any network is built, because training runs are long and a late failure is expensive.

Two segmentation layouts are understood:

* cityscapes: ``ROOT/leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with
  ``ROOT/gtFine/<split>/<city>/*_gtFine_labelTrainIds.png`` (train ids, 255 = ignore);
* folder: ``ROOT/images/**/*.{png,jpg,jpeg,webp}`` with ``ROOT/masks/<same relative stem>.png``;
  when ``ROOT/images/<split>/`` exists only that split is used, otherwise every image is.

``ROOT/dataset.toml`` may name the classes (``classes = [...]``) and ``ignore_index``; without
it the 19 Cityscapes classes apply.
"""
from __future__ import annotations

import logging
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ..io.images import read_image
from ..segment.cityscapes import MEAN_BGR

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")
DEFAULT_IGNORE = 255
CITYSCAPES_IMAGE_SUFFIX = "_leftImg8bit.png"
CITYSCAPES_LABEL_SUFFIX = "_gtFine_labelTrainIds.png"
CITYSCAPES_RAW_SUFFIX = "_gtFine_labelIds.png"
CLASS_NAME = re.compile(r"[^\s=@,+:\"'\\]+")


def _listing(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def list_images(folder: Path | str) -> list[Path]:
    """Every image under ``folder`` (recursively), sorted, or an InputError saying what is there instead."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"dataset folder {folder} does not exist")
    if not folder.is_dir():
        raise InputError(f"{folder} is a file; give a folder of training images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not files:
        raise InputError(f"no images in {folder} (looked recursively for {', '.join(IMAGE_EXTS)}); "
                         "give a folder of photos, e.g. the COCO train2014 images")
    return files


# -- style training ------------------------------------------------------------------------------
def resize_center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Shorter side to ``size`` then the central ``size`` x ``size`` square (the reference recipe's crop)."""
    h, w = img.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    img = cv2.resize(img, (nw, nh), interpolation=interp)
    top, left = (nh - size) // 2, (nw - size) // 2
    return img[top:top + size, left:left + size]


def to_pixels(bgr: np.ndarray) -> torch.Tensor:
    """BGR uint8 H x W x 3 -> RGB float 3 x H x W in 0..255: TransformerNet's units."""
    return torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1))).float()


def load_style_image(path: Path | str, size: int | None = None) -> torch.Tensor:
    """The style target as RGB 0..255, 1 x 3 x H x W; ``size`` scales its shorter side."""
    img = read_image(path)
    if size:
        h, w = img.shape[:2]
        scale = size / min(h, w)
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if min(img.shape[:2]) < 16:
        raise InputError(f"style image {path} is {img.shape[1]}x{img.shape[0]}; it must be at least 16 px a side")
    return to_pixels(img)[None]


class StyleImages(Dataset):
    """Training photos as RGB 0..255 squares. An unreadable photo is skipped with a warning, not fatal."""

    def __init__(self, files: list[Path], size: int = 256):
        self.files, self.size = list(files), size
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        for k in range(len(self.files)):
            j = (i + k) % len(self.files)
            if j in self._bad:
                continue
            try:
                return to_pixels(resize_center_crop(read_image(self.files[j]), self.size))
            except InputError as e:
                self._bad.add(j)
                log.warning("skipping %s", e)
        raise InputError(f"none of the {len(self.files)} training images can be read; use PNG or JPEG files")


# -- segmentation datasets -------------------------------------------------------------------------
@dataclass(frozen=True)
class SegData:
    """A labelled split: (image, label) pairs plus the class list and the ignore value."""

    root: Path
    layout: str
    split: str
    pairs: tuple[tuple[Path, Path], ...]
    classes: tuple[str, ...]
    ignore_index: int = DEFAULT_IGNORE
    note: str = ""


def default_classes() -> tuple[str, ...]:
    from ..models import registry

    return registry.card("dabnet-cityscapes").classes


def check_classes(classes, ignore_index: int, where: str) -> tuple[tuple[str, ...], int]:
    """Class names usable in ``--assign CLASS=STYLE`` and an ignore value no class uses."""
    if not isinstance(classes, (list, tuple)) or not classes:
        raise InputError(f"{where}: classes must be a non-empty list of names, e.g. classes = [\"sky\", \"tree\"]")
    names = []
    for c in classes:
        if not isinstance(c, str) or not CLASS_NAME.fullmatch(c):
            raise InputError(f"{where}: class name {c!r} is not usable; use letters, digits, _ or - "
                             "(no spaces, quotes, =, @, +, : or commas)")
        names.append(c)
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise InputError(f"{where}: class names must be unique; repeated: {', '.join(dupes)}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or not 0 <= ignore_index <= 255:
        raise InputError(f"{where}: ignore_index must be a whole number 0..255, got {ignore_index!r}")
    if ignore_index < len(names):
        raise InputError(f"{where}: ignore_index {ignore_index} is the id of class {names[ignore_index]!r}; "
                         f"use {DEFAULT_IGNORE}")
    if len(names) > 255:
        raise InputError(f"{where}: at most 255 classes fit in 8-bit masks, got {len(names)}")
    return tuple(names), ignore_index


def read_dataset_card(root: Path) -> tuple[tuple[str, ...], int, bool]:
    """(classes, ignore_index, from_card): ``ROOT/dataset.toml`` or the 19 Cityscapes classes."""
    card = Path(root) / "dataset.toml"
    if not card.is_file():
        return default_classes(), DEFAULT_IGNORE, False
    try:
        data = tomllib.loads(card.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{card} is not valid TOML ({e}); write e.g. classes = [\"background\", \"sky\"]") from None
    if "classes" not in data:
        raise InputError(f"{card} has no classes list; write e.g. classes = [\"background\", \"sky\"]")
    classes, ignore = check_classes(data["classes"], data.get("ignore_index", DEFAULT_IGNORE), str(card))
    return classes, ignore, True


def detect_layout(root: Path) -> str:
    if (root / "leftImg8bit").is_dir():
        return "cityscapes"
    if (root / "images").is_dir():
        return "folder"
    raise InputError(f"{root} is not a dataset: expected leftImg8bit/ and gtFine/ (Cityscapes layout) or "
                     "images/ and masks/ (folder layout); see cbs-obs data prepare --help")


def find_seg_data(root: Path | str, split: str = "train") -> SegData:
    """Scan ``root`` for labelled pairs of ``split``; every missing label is reported at once."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder {root} does not exist")
    layout = detect_layout(root)
    classes, ignore, _ = read_dataset_card(root)
    note = ""
    if layout == "cityscapes":
        pairs, missing, raw = [], [], 0
        images = sorted((root / "leftImg8bit" / split).glob(f"*/*{CITYSCAPES_IMAGE_SUFFIX}"))
        for img in images:
            stem = img.name[: -len(CITYSCAPES_IMAGE_SUFFIX)]
            label = root / "gtFine" / split / img.parent.name / f"{stem}{CITYSCAPES_LABEL_SUFFIX}"
            if label.is_file():
                pairs.append((img, label))
            else:
                missing.append(label.relative_to(root).as_posix())
                raw += label.with_name(f"{stem}{CITYSCAPES_RAW_SUFFIX}").is_file()
        if not images:
            raise InputError(f"no images in {root}/leftImg8bit/{split}/<city>/*{CITYSCAPES_IMAGE_SUFFIX}; "
                             f"is {split!r} the right split?")
        if missing:
            fix = (f"; convert the labelIds first: cbs-obs data prepare --layout cityscapes --src {root} --out {root}"
                   if raw else "")
            raise InputError(f"{len(missing)} of {len(images)} images have no label file: {_listing(missing)}{fix}")
    else:
        img_dir, mask_dir = root / "images", root / "masks"
        if (img_dir / split).is_dir():
            img_dir, mask_dir = img_dir / split, mask_dir / split
        else:
            note = f"no images/{split}/ folder: using every image in images/"
        if not mask_dir.is_dir():
            raise InputError(f"{root} has images but no masks folder {mask_dir}; put one mask PNG per image there "
                             "(same name, class index per pixel)")
        pairs, missing = [], []
        for img in list_images(img_dir):
            mask = (mask_dir / img.relative_to(img_dir)).with_suffix(".png")
            if mask.is_file():
                pairs.append((img, mask))
            else:
                missing.append(img.relative_to(root).as_posix())
        if missing:
            raise InputError(f"{len(missing)} images have no mask in {mask_dir}: {_listing(missing)}; "
                             "each image needs masks/<same name>.png")
    return SegData(root, layout, split, tuple(pairs), classes, ignore, note)


def read_label(path: Path) -> np.ndarray:
    """A class-index mask as uint8 H x W; colour masks and 16-bit values above 255 are refused."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else np.zeros(0, np.uint8)
    lbl = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if lbl is None:
        raise InputError(f"mask {path} is missing or not a readable PNG")
    if lbl.ndim == 3:
        if lbl.shape[2] == 4:
            lbl = lbl[:, :, :3]
        if not (np.array_equal(lbl[:, :, 0], lbl[:, :, 1]) and np.array_equal(lbl[:, :, 0], lbl[:, :, 2])):
            raise InputError(f"mask {path} is a colour image; masks must hold one class index per pixel "
                             "(a greyscale PNG where 0 = first class)")
        lbl = lbl[:, :, 0]
    if lbl.dtype != np.uint8:
        if int(lbl.max()) > 255:
            raise InputError(f"mask {path} has values above 255; save class indices as an 8-bit PNG")
        lbl = lbl.astype(np.uint8)
    return lbl


def bad_label_values(lbl: np.ndarray, classes: int, ignore_index: int) -> list[int]:
    values = np.unique(lbl)
    return [int(v) for v in values if v >= classes and v != ignore_index]


def check_label(lbl: np.ndarray, path: Path, classes: int, ignore_index: int) -> None:
    bad = bad_label_values(lbl, classes, ignore_index)
    if bad:
        raise InputError(f"mask {path} has values {bad[:10]} but there are {classes} classes (0..{classes - 1}) "
                         f"and ignore = {ignore_index}; fix the mask or the classes in dataset.toml")


def to_network_input(bgr: np.ndarray) -> torch.Tensor:
    """BGR uint8 -> 3 x H x W float, the official DABNet preprocessing (BGR minus MEAN_BGR, then RGB)."""
    x = bgr.astype(np.float32) - MEAN_BGR
    return torch.from_numpy(np.ascontiguousarray(x[:, :, ::-1].transpose(2, 0, 1)))


def read_pair(image: Path, label: Path, classes: int, ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    img, lbl = read_image(image), read_label(label)
    if img.shape[:2] != lbl.shape:
        raise InputError(f"image {image} is {img.shape[1]}x{img.shape[0]} but its mask {label} is "
                         f"{lbl.shape[1]}x{lbl.shape[0]}; they must be the same size")
    check_label(lbl, label, classes, ignore_index)
    return img, lbl


class SegCrops(Dataset):
    """Training samples: optional random rescale, random crop (padded with ignore where too small), random flip."""

    def __init__(self, data: SegData, crop: tuple[int, int], *, flip: bool = True,
                 scale: tuple[float, float] = (1.0, 1.0)):
        self.data, self.crop, self.flip, self.scale = data, crop, flip, scale

    def __len__(self) -> int:
        return len(self.data.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.data.pairs[i]
        img, lbl = read_pair(image, label, len(self.data.classes), self.data.ignore_index)
        lo, hi = self.scale
        if hi > lo or lo != 1.0:
            s = random.uniform(lo, hi)
            h, w = lbl.shape
            size = (max(1, round(w * s)), max(1, round(h * s)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
            lbl = cv2.resize(lbl, size, interpolation=cv2.INTER_NEAREST)
        ch, cw = self.crop
        h, w = lbl.shape
        if h < ch or w < cw:  # pad with the mean colour (0 after preprocessing) and ignore labels
            ph, pw = max(0, ch - h), max(0, cw - w)
            img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_CONSTANT,
                                     value=[float(v) for v in np.round(MEAN_BGR)])
            lbl = cv2.copyMakeBorder(lbl, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=self.data.ignore_index)
            h, w = lbl.shape
        top, left = random.randint(0, h - ch), random.randint(0, w - cw)
        img, lbl = img[top:top + ch, left:left + cw], lbl[top:top + ch, left:left + cw]
        if self.flip and random.random() < 0.5:
            img, lbl = img[:, ::-1], lbl[:, ::-1]
        return to_network_input(img), torch.from_numpy(np.ascontiguousarray(lbl)).long()
