"""Turning raw data into the layouts ``train seg`` reads (``cbs-obs data prepare``).

Cityscapes ships ``*_gtFine_labelIds.png`` with 34 label ids; training uses 19 train ids. The
table below restates the facts of cityscapesScripts' ``helpers/labels.py`` (id -> trainId; every
id not listed, including the license plate's -1, is ignored as 255). For a folder of images and
masks, preparing means checking every pair once, up front, and writing the ``dataset.toml`` card
that names the classes.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..io.images import read_image
from .data import (
    CITYSCAPES_LABEL_SUFFIX,
    CITYSCAPES_RAW_SUFFIX,
    DEFAULT_IGNORE,
    IMAGE_EXTS,
    _listing,
    bad_label_values,
    check_classes,
    read_label,
)

# Cityscapes label id -> train id (19 evaluated classes); all other ids -> 255.
LABEL_ID_TO_TRAIN_ID = {
    7: 0,    # road
    8: 1,    # sidewalk
    11: 2,   # building
    12: 3,   # wall
    13: 4,   # fence
    17: 5,   # pole
    19: 6,   # traffic light
    20: 7,   # traffic sign
    21: 8,   # vegetation
    22: 9,   # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}


def train_id_lut() -> np.ndarray:
    lut = np.full(256, DEFAULT_IGNORE, np.uint8)
    for label_id, train_id in LABEL_ID_TO_TRAIN_ID.items():
        lut[label_id] = train_id
    return lut


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    return train_id_lut()[label_ids]


@dataclass
class Prepared:
    out: Path
    written: int = 0
    notes: list[str] = field(default_factory=list)


def _write_png(path: Path, img: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise InputError(f"cannot encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf.tofile(str(path))


def _link_or_copy(src: Path, dest: Path) -> str:
    """Point ``dest`` at ``src`` (a symlink; a copy where links are not allowed)."""
    if dest.resolve() == src.resolve():
        return f"{dest} already points at {src}"
    if dest.exists() or dest.is_symlink():
        raise InputError(f"{dest} already exists; give an empty --out folder or the source folder itself")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(src.resolve(), dest, target_is_directory=True)
        return f"linked {dest} -> {src.resolve()}"
    except OSError:
        shutil.copytree(src, dest)
        return f"copied {src} to {dest}"


def prepare_cityscapes(src: Path, out: Path, *, progress: bool = True) -> Prepared:
    """Write ``*_gtFine_labelTrainIds.png`` under ``out/gtFine`` for every ``*_gtFine_labelIds.png`` in ``src``."""
    from tqdm import tqdm

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise InputError(f"source folder {src} does not exist")
    raw = sorted((src / "gtFine").glob(f"*/*/*{CITYSCAPES_RAW_SUFFIX}"))
    if not raw:
        raise InputError(f"no gtFine/<split>/<city>/*{CITYSCAPES_RAW_SUFFIX} under {src}; give the folder where "
                         "gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip were unpacked")
    result = Prepared(out)
    lut = train_id_lut()
    for path in tqdm(raw, desc="labelIds -> trainIds", unit="mask", disable=not progress, file=sys.stderr):
        ids = read_label(path)
        name = path.name[: -len(CITYSCAPES_RAW_SUFFIX)] + CITYSCAPES_LABEL_SUFFIX
        _write_png(out / path.relative_to(src).parent / name, lut[ids])
        result.written += 1
    images = src / "leftImg8bit"
    if not images.is_dir():
        result.notes.append(f"{images} is missing: unpack leftImg8bit_trainvaltest.zip there before training")
    elif out.resolve() != src.resolve():
        result.notes.append(_link_or_copy(images, out / "leftImg8bit"))
    return result


def check_folder_pairs(src: Path, classes: int, ignore_index: int) -> tuple[int, list[str]]:
    """(pairs found, problems): every image needs a readable same-size mask with valid values."""
    img_dir, mask_dir = src / "images", src / "masks"
    if not img_dir.is_dir():
        raise InputError(f"{src} has no images/ folder; the folder layout is images/NAME.jpg + masks/NAME.png")
    if not mask_dir.is_dir():
        raise InputError(f"{src} has no masks/ folder; put one mask PNG per image there (same name, class index "
                         "per pixel)")
    images = sorted(p for p in img_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not images:
        raise InputError(f"no images in {img_dir} (looked recursively for {', '.join(IMAGE_EXTS)})")
    problems: list[str] = []
    good = 0
    expected = set()
    for img_path in images:
        rel = img_path.relative_to(img_dir)
        mask_path = (mask_dir / rel).with_suffix(".png")
        expected.add(mask_path.resolve())
        if not mask_path.is_file():
            problems.append(f"{rel.as_posix()}: no mask (expected masks/{rel.with_suffix('.png').as_posix()})")
            continue
        try:
            img, lbl = read_image(img_path), read_label(mask_path)
        except InputError as e:
            problems.append(str(e))
            continue
        if img.shape[:2] != lbl.shape:
            problems.append(f"{rel.as_posix()}: image {img.shape[1]}x{img.shape[0]} but mask "
                            f"{lbl.shape[1]}x{lbl.shape[0]}")
            continue
        bad = bad_label_values(lbl, classes, ignore_index)
        if bad:
            problems.append(f"{rel.as_posix()}: mask values {bad[:6]} are not class ids 0..{classes - 1} "
                            f"or ignore {ignore_index}")
            continue
        good += 1
    orphans = [p.relative_to(mask_dir).as_posix() for p in sorted(mask_dir.rglob("*.png"))
               if p.resolve() not in expected]
    if orphans:
        problems.append(f"masks without an image: {_listing(orphans, 4)}")
    return good, problems


def prepare_folder(src: Path, out: Path, classes: list[str], *, ignore_index: int = DEFAULT_IGNORE) -> Prepared:
    """Validate images/ + masks/ in ``src`` and write ``out/dataset.toml`` (linking the data when out != src)."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise InputError(f"source folder {src} does not exist")
    names, ignore_index = check_classes(list(classes), ignore_index, "--classes")
    good, problems = check_folder_pairs(src, len(names), ignore_index)
    if problems:
        raise InputError(f"{len(problems)} problem(s) in {src}: " + "; ".join(problems[:10])
                         + (f"; and {len(problems) - 10} more" if len(problems) > 10 else ""))
    result = Prepared(out, written=good)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != src.resolve():
        for sub in ("images", "masks"):
            result.notes.append(_link_or_copy(src / sub, out / sub))
    quoted = ", ".join(f'"{n}"' for n in names)
    (out / "dataset.toml").write_text(
        "# Written by cbs-obs data prepare: class i is mask value i.\n"
        f"classes = [{quoted}]\nignore_index = {ignore_index}\n", encoding="utf-8")
    result.notes.append(f"wrote {out / 'dataset.toml'} ({len(names)} classes, ignore {ignore_index})")
    return result
