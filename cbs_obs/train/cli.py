"""The ``train``, ``eval`` and ``data`` commands, added to the main parser by ``register(subparsers)``.

Kept out of ``cbs_obs/cli.py`` so the live commands never import training code, and so this
module imports nothing from it (``cli.py`` calls ``register`` while it builds its parser).
Handlers import their recipe lazily: ``cbs-obs --help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..argtypes import count as _count
from ..argtypes import positive_float as _positive_float
from ..argtypes import positive_int as _positive_int
from ..argtypes import size_hw as _size
from ..errors import InputError


def _scale(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range; write it like 0.75,2.0") from None
    if not 0.1 <= lo <= hi <= 10:
        raise argparse.ArgumentTypeError(f"scale range {text} must satisfy 0.1 <= low <= high <= 10")
    return lo, hi


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty class name; write them like background,sky,tree")
    return names


def _checkpoint_options(p: argparse.ArgumentParser, every: int) -> None:
    g = p.add_argument_group("checkpoints")
    g.add_argument("--checkpoint-every", type=_count, default=every, metavar="N",
                   help=f"save a resumable checkpoint every N steps and at the end (default {every}; 0 = off)")
    g.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                   help="where checkpoints go (default: OUT's folder, OUT-checkpoints/)")
    g.add_argument("--resume", type=Path, metavar="CKPT",
                   help="continue from a checkpoint: weights, optimizer state and step counter")


def _run_options(p: argparse.ArgumentParser, seed: int) -> None:
    p.add_argument("--max-steps", type=_positive_int, metavar="N",
                   help="stop after step N (counted from the start of training, also when resuming)")
    p.add_argument("--seed", type=int, default=seed, metavar="N",
                   help=f"random seed for init and shuffling (default {seed})")
    p.add_argument("--workers", type=_count, metavar="N",
                   help="data loader processes (default: 0 on CPU, 4 with a CUDA GPU)")


# -- handlers --------------------------------------------------------------------------------------
def cmd_train_style(args) -> int:
    from .style import StyleSettings, train_style

    settings = StyleSettings(image_size=args.image_size, style_size=args.style_size, batch=args.batch, lr=args.lr,
                             content_weight=args.content_weight, style_weight=args.style_weight,
                             epochs=args.epochs, max_steps=args.max_steps, checkpoint_every=args.checkpoint_every,
                             seed=args.seed, workers=args.workers)
    result = train_style(args.style_image, args.dataset, args.output, settings, vgg_weights=args.vgg_weights,
                         vgg_random=args.vgg_random, checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    last = result.history[-1] if result.history else None
    if last:
        print(f"step {last['step']}: content {last['content']:.4g}, style {last['style']:.4g}, "
              f"total {last['total']:.4g}")
    print(f"wrote {result.output} (step {result.step})")
    print(f"use it: cbs-obs stylize IN -o OUT --assign CLASS=johnson:{result.output}")
    return 0


def cmd_train_seg(args) -> int:
    from .seg import SegSettings, train_seg

    settings = SegSettings(crop=args.crop, batch=args.batch, epochs=args.epochs, max_steps=args.max_steps,
                           optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                           flip=not args.no_flip, scale=args.scale, checkpoint_every=args.checkpoint_every,
                           seed=args.seed, workers=args.workers)
    result = train_seg(args.dataset, args.output, settings, split=args.split, checkpoint_dir=args.checkpoint_dir,
                       resume=args.resume)
    if result.history:
        print(f"step {result.step}: loss {result.history[-1]['loss']:.4g} "
              f"(first step of this run: {result.history[0]['loss']:.4g})")
    print(f"wrote {result.output} (step {result.step})")
    print(f"check it: cbs-obs eval seg --dataset {args.dataset} --weights {result.output}")
    print(f"use it: cbs-obs stylize IN -o OUT --segmenter cityscapes --weights {result.output} --assign CLASS=STYLE")
    return 0


def cmd_eval_seg(args) -> int:
    from .eval import evaluate_seg

    weights = args.weights
    if weights is None:
        from ..models import registry

        weights = registry.ensure("dabnet-cityscapes", auto_fetch=False)
    result = evaluate_seg(args.dataset, weights, split=args.split, size=args.size, limit=args.limit,
                          progress=not args.json)
    if args.confusion_out:
        result.write_confusion_csv(args.confusion_out)
    if args.json:
        print(result.to_json())
        return 0
    for note in result.notes:
        print(f"note: {note}")
    print(result.report())
    print()
    print(result.confusion_report())
    if args.confusion_out:
        print(f"wrote confusion matrix (pixel counts) to {args.confusion_out}")
    return 0


def cmd_data_prepare(args) -> int:
    from .prepare import prepare_cityscapes, prepare_folder

    if args.layout == "cityscapes":
        if args.classes:
            raise InputError("--classes is for --layout folder; Cityscapes uses its 19 train-id classes")
        result = prepare_cityscapes(args.src, args.out)
        print(f"wrote {result.written} *_gtFine_labelTrainIds.png files under {result.out / 'gtFine'}")
    else:
        if not args.classes:
            raise InputError("--layout folder needs the class names in mask-value order: --classes background,sky")
        result = prepare_folder(args.src, args.out, args.classes, ignore_index=args.ignore_index)
        print(f"checked {result.written} image/mask pairs: all good")
    for note in result.notes:
        print(note)
    print(f"train with: cbs-obs train seg --dataset {result.out} -o model.pth")
    return 0


# -- parsers ---------------------------------------------------------------------------------------
def register(subparsers) -> None:
    """Add ``train {style,seg}``, ``eval seg`` and ``data prepare`` to the main parser's subparsers."""
    t = subparsers.add_parser("train", help="train your own Johnson style or DABNet segmenter",
                              description="Train networks the engine can use at once. See docs/training.md.")
    ts = t.add_subparsers(dest="train_command", metavar="WHAT", required=True)

    s = ts.add_parser("style", help="train a Johnson TransformerNet on one style image",
                      description="Johnson et al.'s perceptual-loss training (the pytorch/examples "
                      "fast_neural_style recipe). The result works as --assign CLASS=johnson:OUT.pth.")
    s.add_argument("--style-image", type=Path, required=True, metavar="IMG", help="the painting or texture to learn")
    s.add_argument("--dataset", type=Path, required=True, metavar="DIR",
                   help="folder of training photos, searched recursively (jpg, jpeg, png, webp), e.g. COCO train2014")
    s.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.pth",
                   help="where to write the trained weights (a plain TransformerNet state dict)")
    s.add_argument("--image-size", type=_positive_int, default=256, metavar="PX",
                   help="training photos are resized and centre-cropped to PX x PX (default 256)")
    s.add_argument("--style-size", type=_positive_int, metavar="PX",
                   help="scale the style image's shorter side to PX (default: its own size)")
    s.add_argument("--batch", type=_positive_int, default=4, metavar="N", help="photos per step (default 4)")
    s.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    s.add_argument("--content-weight", type=float, default=1e5, metavar="W",
                   help="weight of the relu2_2 content loss (default 1e5)")
    s.add_argument("--style-weight", type=float, default=1e10, metavar="W",
                   help="weight of the Gram style loss (default 1e10)")
    s.add_argument("--epochs", type=_positive_int, default=2, metavar="N", help="passes over the dataset (default 2)")
    _run_options(s, 42)
    _checkpoint_options(s, 2000)
    v = s.add_argument_group("loss network (VGG16)")
    v.add_argument("--vgg-weights", type=Path, metavar="PATH",
                   help="torchvision vgg16 state dict (vgg16-397923af.pth) to use instead of downloading it")
    v.add_argument("--vgg-random", action="store_true",
                   help="random VGG16 weights: for testing the pipeline only, the style will be meaningless")
    s.set_defaults(func=cmd_train_style)

    g = ts.add_parser("seg", help="train DABNet on a Cityscapes-layout or images/masks dataset",
                      description="Per-pixel cross-entropy, poly learning rate, random crop and flip. The result "
                      "works as --segmenter cityscapes --weights OUT.pth, with the dataset's class names.")
    g.add_argument("--dataset", type=Path, required=True, metavar="ROOT",
                   help="leftImg8bit/ + gtFine/ (Cityscapes) or images/ + masks/ (+ dataset.toml for class names)")
    g.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.pth",
                   help="where to write the trained checkpoint ({epoch, model, classes} format)")
    g.add_argument("--split", default="train", help="which split to train on (default train)")
    g.add_argument("--crop", type=_size, default=(512, 1024), metavar="HxW",
                   help="random crop size, multiples of 8 (default 512x1024, the official Cityscapes crop)")
    g.add_argument("--batch", type=_positive_int, default=8, metavar="N", help="crops per step (default 8)")
    g.add_argument("--epochs", type=_positive_int, default=1000, metavar="N",
                   help="passes over the dataset (default 1000)")
    g.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="adam (default) or sgd (momentum 0.9)")
    g.add_argument("--lr", type=_positive_float, help="base learning rate (default 5e-4 for adam, 4.5e-2 for sgd)")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay (default 1e-4)")
    g.add_argument("--scale", type=_scale, default=(1.0, 1.0), metavar="LO,HI",
                   help="random rescale range before cropping, e.g. 0.75,2.0 (default 1,1: off)")
    g.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    _run_options(g, 1)
    _checkpoint_options(g, 1000)
    g.set_defaults(func=cmd_train_seg)

    e = subparsers.add_parser("eval", help="measure a trained network on a labelled dataset",
                              description="Accuracy and speed of a trained network.")
    es = e.add_subparsers(dest="eval_command", metavar="WHAT", required=True)
    q = es.add_parser("seg", help="per-class IoU, mIoU, confusion matrix and fps of a DABNet checkpoint",
                      description="Classes absent from both ground truth and predictions have no IoU and are left "
                      "out of the mean (the report says which).")
    q.add_argument("--dataset", type=Path, required=True, metavar="ROOT", help="dataset root, as for train seg")
    q.add_argument("--weights", type=Path, metavar="W",
                   help="DABNet checkpoint (default: the official dabnet-cityscapes model, if fetched)")
    q.add_argument("--split", default="val", help="which split to evaluate (default val)")
    q.add_argument("--size", type=_size, metavar="HxW", help="run the network at this size (default: the image's)")
    q.add_argument("--limit", type=_positive_int, metavar="N", help="evaluate only the first N images")
    q.add_argument("--confusion-out", type=Path, metavar="FILE.csv", help="save the confusion matrix (pixel counts)")
    q.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    q.set_defaults(func=cmd_eval_seg)

    d = subparsers.add_parser("data", help="prepare datasets for train seg",
                              description="Turn raw data into a layout train seg reads.")
    ds = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = ds.add_parser("prepare", help="convert Cityscapes labelIds, or check images/masks and write dataset.toml",
                      description="cityscapes: write *_gtFine_labelTrainIds.png from the raw *_gtFine_labelIds.png. "
                      "folder: check that every image in SRC/images has a same-size mask in SRC/masks with valid "
                      "values, and write dataset.toml with the class names.")
    p.add_argument("--layout", choices=("cityscapes", "folder"), required=True, help="kind of source data")
    p.add_argument("--src", type=Path, required=True, metavar="SRC",
                   help="cityscapes: the folder with gtFine/ and leftImg8bit/; folder: the one with images/ and masks/")
    p.add_argument("--out", type=Path, required=True, metavar="ROOT",
                   help="dataset root to write (may be SRC itself; otherwise the images are linked into it)")
    p.add_argument("--classes", type=_names, metavar="a,b,c",
                   help="folder layout: class names in mask-value order (value 0 = first name)")
    p.add_argument("--ignore-index", type=int, default=255, help="mask value that means 'not labelled' (default 255)")
    p.set_defaults(func=cmd_data_prepare)


def main(argv: list[str] | None = None) -> int:
    """Run these commands on their own (``python -m cbs_obs.train.cli``), with cbs-obs's error handling."""
    from ..errors import CbsError

    parser = argparse.ArgumentParser(prog="cbs-obs")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except CbsError as e:
        print(f"cbs-obs: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
