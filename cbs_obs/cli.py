"""``cbs-obs``: the command line. Every error the user can cause is one line without a traceback."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from . import __version__
from .errors import CbsError, InputError

log = logging.getLogger("cbs_obs")

DEMO_LOOK = ("background=starry-blue",)


def _size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write HxW, e.g. 512x1024") from None
    if not (8 <= h <= 8192 and 8 <= w <= 8192):
        raise argparse.ArgumentTypeError(f"size {text} is out of range (8..8192 per side)")
    return h, w


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return v


# -- stylize ---------------------------------------------------------------------------------
def _add_look_options(p: argparse.ArgumentParser, default_assign=()) -> None:
    p.add_argument("--segmenter", "-s", default="person", help="person (webcam, default) or cityscapes (street scenes)")
    p.add_argument("--assign", "-a", action="append", metavar="CLASS=STYLE[@STRENGTH]",
                   default=None, help="style a class; repeat for several classes (cbs-obs styles list, "
                   f"cbs-obs classes). Default: {' '.join(default_assign) or 'none'}")
    p.add_argument("--strength", type=float, default=1.0, help="default style strength 0..1 (default 1)")
    p.add_argument("--feather", type=float, default=0.0, help="soften mask edges by this many output pixels")
    p.add_argument("--hard", action="store_true", help="hard masks (most probable class) instead of probabilities")
    p.add_argument("--weights", type=Path, help="segmenter weights file to use instead of the cached model")
    p.add_argument("--variant", choices=("landscape", "general"), default="landscape",
                   help="person segmenter variant: landscape 144x256 (default) or general 256x256")
    p.add_argument("--seg-size", type=_size, metavar="HxW", help="cityscapes processing size (default: frame size)")
    p.add_argument("--style-size", type=_positive_int, metavar="PX",
                   help="longest side at which neural styles run (default: frame size)")


def _build_stylizer(args, default_assign=()):
    from .look import Look
    from .segment import create_segmenter
    from .stylizer import ClassStylizer

    look = Look.from_specs(args.assign or default_assign, strength=args.strength, feather=args.feather,
                           hard=args.hard)
    options = {"variant": args.variant} if args.segmenter == "person" else {}
    if args.segmenter == "cityscapes" and args.seg_size:
        options["size"] = args.seg_size
    from .segment import segmenter_classes
    from .style.catalog import StyleCache

    # Check names before any segmentation model loads, so typos fail fast and first.
    look.check_classes(segmenter_classes(args.segmenter))
    styles = StyleCache(max_side=args.style_size)
    for spec in look.groups():
        styles.get(spec)
    segmenter = create_segmenter(args.segmenter, weights=args.weights, **options)
    return ClassStylizer(segmenter, look, styles=styles)


def cmd_stylize(args) -> int:
    from .imageio import read_image, write_image
    from .overlay import overlay
    from .video import is_video

    if not args.assign:
        raise InputError("nothing to do: give at least one --assign CLASS=STYLE (e.g. --assign background=blur)")
    if is_video(args.input):
        return _stylize_video(args)
    frame = read_image(args.input)
    _check_out(args.output)
    stylizer = _build_stylizer(args)
    t0 = time.perf_counter()
    result = stylizer.process(frame)
    dt = time.perf_counter() - t0
    write_image(args.output, result.frame)
    print(f"wrote {args.output} ({frame.shape[1]}x{frame.shape[0]}, {dt * 1000:.0f} ms)")
    if args.mask_out:
        write_image(args.mask_out, result.combined_mask())
        print(f"wrote mask {args.mask_out}")
    if args.overlay:
        write_image(args.overlay, overlay(frame, result.probs.labels(frame.shape[:2]), stylizer.classes))
        print(f"wrote overlay {args.overlay}")
    return 0


def _check_out(path: Path) -> None:
    if not path.parent.exists():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist")


def _stylize_video(args) -> int:
    from tqdm import tqdm

    from .video import create_writer, frames, open_video

    cap, fps, count = open_video(args.input)
    stylizer = _build_stylizer(args)
    writer = None
    t0, n = time.perf_counter(), 0
    try:
        for frame in tqdm(frames(cap), total=count or None, unit="frame", desc="stylize"):
            out = stylizer.process(frame).frame
            if writer is None:
                writer = create_writer(args.output, fps, (out.shape[1], out.shape[0]))
            writer.write(out)
            n += 1
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    dt = time.perf_counter() - t0
    print(f"wrote {args.output}: {n} frames, {n / dt:.1f} fps")
    return 0


# -- demo ------------------------------------------------------------------------------------
def demo_clip() -> Path:
    from importlib.resources import files

    return Path(str(files("cbs_obs.assets") / "demo_clip.mp4"))


def cmd_demo(args) -> int:
    from .imageio import write_image
    from .look import Look
    from .segment import create_segmenter
    from .stylizer import ClassStylizer
    from .video import create_writer, frames, open_video

    out_dir: Path = args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    look = Look.from_specs(args.assign or DEMO_LOOK)
    print(f"cbs-obs demo: built-in clip, person segmenter, look: {', '.join(args.assign or DEMO_LOOK)}")
    stylizer = ClassStylizer(create_segmenter("person"), look, style_size=args.style_size)
    cap, fps, count = open_video(demo_clip())
    video_path, png_path = out_dir / "demo.mp4", out_dir / "demo.png"
    writer, times = None, []
    try:
        for i, frame in enumerate(frames(cap)):
            t0 = time.perf_counter()
            out = stylizer.process(frame).frame
            times.append(time.perf_counter() - t0)
            if writer is None:
                writer = create_writer(video_path, fps, (out.shape[1], out.shape[0]))
            writer.write(out)
            if i == count // 2:
                write_image(png_path, out)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    times.sort()
    med = times[len(times) // 2]
    print(f"wrote {video_path} ({len(times)} frames) and {png_path}")
    print(f"median {med * 1000:.0f} ms per frame = {1 / med:.1f} fps (sequential, one frame at a time)")
    return 0


# -- styles ----------------------------------------------------------------------------------
def cmd_styles_list(args) -> int:
    from .style.catalog import EXAMPLES, FILTERS
    from .style.magenta import BUILTIN_STYLES

    print("built-in neural styles (cbs-obs styles sheet IMAGE -o sheet.png shows them):")
    for i, name in enumerate(BUILTIN_STYLES):
        print(f"  {name:20s} (magenta:{i})")
    print("filters: " + ", ".join(FILTERS))
    print("with an argument: " + ", ".join(EXAMPLES))
    return 0


def cmd_styles_sheet(args) -> int:
    from .imageio import read_image, write_image
    from .style.sheet import contact_sheet

    frame = read_image(args.image)
    _check_out(args.output)
    sheet = contact_sheet(frame, tile_width=args.tile_width, columns=args.columns, progress=True)
    write_image(args.output, sheet)
    print(f"wrote {args.output} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


def cmd_classes(args) -> int:
    from .segment import segmenter_classes

    print(" ".join(segmenter_classes(args.segmenter)))
    return 0


# -- models ----------------------------------------------------------------------------------
def cmd_models_list(args) -> int:
    from . import registry

    for name, c in registry.cards().items():
        state, path = registry.status(name)
        classes = f" classes: {len(c.classes)}" if c.classes else ""
        print(f"{name:20s} {c.task:13s} {state:8s}{classes}  {c.description}")
        print(f"{'':20s} licence: {c.licence}; {path or 'run: ' + c.fetch_command}")
    return 0


def cmd_models_fetch(args) -> int:
    from . import registry

    names = list(registry.cards()) if args.name == "all" else [args.name]
    if args.source and len(names) != 1:
        raise InputError("--from takes one model name, not 'all'")
    failed = []
    for name in names:
        try:
            path = registry.fetch(name, source_path=args.source, force=args.force)
            print(f"{name}: ok ({path})")
        except CbsError as e:
            if len(names) == 1:
                raise
            failed.append(name)
            print(f"{name}: {e}", file=sys.stderr)
    return 1 if failed else 0


def cmd_models_verify(args) -> int:
    from . import registry

    names = [args.name] if args.name else list(registry.cards())
    bad = 0
    for name in names:
        registry.card(name)
        state, path = registry.status(name)
        if state == "corrupt":
            bad += 1
            print(f"{name}: CORRUPT {path}: sha256 mismatch; fix: {registry.card(name).fetch_command} --force")
        else:
            print(f"{name}: {state}" + (f" {path}" if path else ""))
    return 1 if bad else 0


def cmd_models_path(args) -> int:
    from . import registry

    print(registry.ensure(args.name, auto_fetch=False))
    return 0


# -- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cbs-obs", description="Live class-based neural styling for streamers.")
    p.add_argument("--version", action="version", version=f"cbs-obs {__version__}")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging and full tracebacks")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where networks run (default auto)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("stylize", help="style classes of an image or video file",
                       description="Segment IN, style the assigned classes, write OUT.")
    s.add_argument("input", type=Path, metavar="IN", help="image (PNG, JPEG...) or video file")
    s.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="output image or .mp4")
    _add_look_options(s)
    s.add_argument("--mask-out", type=Path, metavar="PNG", help="also save the styled-weight mask (0..255)")
    s.add_argument("--overlay", type=Path, metavar="PNG", help="also save a class-colour debug overlay")
    s.set_defaults(func=cmd_stylize)

    d = sub.add_parser("demo", help="run the built-in clip through the pipeline (no camera needed)",
                       description="Style the background of a built-in clip; writes demo.mp4 and demo.png.")
    d.add_argument("--output-dir", type=Path, default=Path("cbs-obs-demo"),
                   help="where to write (default ./cbs-obs-demo)")
    d.add_argument("--assign", "-a", action="append", metavar="CLASS=STYLE",
                   help="look (default background=starry-blue)")
    d.add_argument("--style-size", type=_positive_int, metavar="PX", help="longest side for neural styles")
    d.set_defaults(func=cmd_demo)

    st = sub.add_parser("styles", help="list the styles or draw a contact sheet of them")
    ss = st.add_subparsers(dest="styles_command", metavar="ACTION", required=True)
    sl = ss.add_parser("list", help="every style name and family")
    sl.set_defaults(func=cmd_styles_list)
    sh = ss.add_parser("sheet", help="render the 26 built-in styles (and the filters) on IMAGE, with names")
    sh.add_argument("image", type=Path, metavar="IMAGE")
    sh.add_argument("-o", "--output", type=Path, required=True, metavar="PNG")
    sh.add_argument("--tile-width", type=_positive_int, default=320, help="width of each tile (default 320)")
    sh.add_argument("--columns", type=_positive_int, default=6, help="tiles per row (default 6)")
    sh.set_defaults(func=cmd_styles_sheet)

    c = sub.add_parser("classes", help="list the class names a segmenter knows")
    c.add_argument("--segmenter", "-s", default="person", help="person or cityscapes")
    c.set_defaults(func=cmd_classes)

    m = sub.add_parser("models", help="list, fetch, verify and locate model weights")
    ms = m.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ml = ms.add_parser("list", help="every model card with its state and licence")
    ml.set_defaults(func=cmd_models_list)
    mf = ms.add_parser("fetch", help="download (or import with --from) and verify a model")
    mf.add_argument("name", help="model name (cbs-obs models list) or 'all'")
    mf.add_argument("--from", dest="source", type=Path, metavar="PATH", help="use this file instead of downloading")
    mf.add_argument("--force", action="store_true", help="download again even if cached")
    mf.set_defaults(func=cmd_models_fetch)
    mv = ms.add_parser("verify", help="check sha256 of cached models")
    mv.add_argument("name", nargs="?", help="one model (default: all)")
    mv.set_defaults(func=cmd_models_verify)
    mp = ms.add_parser("path", help="print the local path of a model's weights")
    mp.add_argument("name")
    mp.set_defaults(func=cmd_models_path)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("obsws_python", "urllib3", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.verbose:  # our own messages say what went wrong; OpenCV's would be a second, cryptic line
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        if args.device:
            from .device import set_device

            set_device(args.device)
        return args.func(args) or 0
    except CbsError as e:
        if args.verbose:
            raise
        print(f"cbs-obs: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cbs-obs: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
