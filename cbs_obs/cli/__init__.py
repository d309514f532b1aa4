"""``cbs-obs``: the command line, one module per command family. Every error the user can cause is one
line without a traceback."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .. import __version__
from ..errors import CbsError
from . import bench, catalog, live, obs, serve, stylize

log = logging.getLogger("cbs_obs")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cbs-obs", description="Live class-based neural styling for streamers.")
    p.add_argument("--version", action="version", version=f"cbs-obs {__version__}")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging and full tracebacks")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where networks run (default auto)")
    p.add_argument("--half", action="store_true",
                   help="fp16 for the torch networks (for GPUs; on the CPU it is correct but slow)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for family in (stylize, live, serve, obs):
        family.register(sub)
    from ..train.cli import register as register_training

    register_training(sub)
    for family in (bench, catalog):
        family.register(sub)
    return p


def _with_config(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Expand ``run --config FILE`` into the options the file holds, before the user's own."""
    if "run" not in argv or not any(a == "--config" or a.startswith("--config=") for a in argv):
        return argv
    i = argv.index("run")
    rest = argv[i + 1:]
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, remaining = pre.parse_known_args(rest)
    from ..config import config_argv

    run_parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    extra = config_argv(known.config, run_parser, remaining)
    has_source = bool(remaining) and not remaining[0].startswith("-")
    if has_source and extra and not extra[0].startswith("-"):
        extra = extra[1:]  # a source given on the command line wins
        return argv[: i + 1] + remaining[:1] + extra + remaining[1:]
    return argv[: i + 1] + extra + remaining



def main(argv: list[str] | None = None) -> int:
    import os

    # FFmpeg (inside OpenCV) prints its own complaint before ours; ours says what to do. --verbose keeps it.
    if "--verbose" not in (argv if argv is not None else sys.argv) and "-v" not in (argv or sys.argv):
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = _with_config(parser, argv)
    except CbsError as e:
        print(f"cbs-obs: error: {e}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("obsws_python", "urllib3", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.verbose:  # our own messages say what went wrong; OpenCV's would be a second, cryptic line
        import cv2

        logs = getattr(cv2.utils, "logging", None)  # OpenCV 5; 4.x wheels (with numpy 1, as `serve` has) lack it
        if logs is not None:
            logs.setLogLevel(logs.LOG_LEVEL_SILENT)
        elif hasattr(cv2, "setLogLevel"):
            cv2.setLogLevel(0)  # silent
    try:
        if args.device:
            from ..models.device import set_device

            set_device(args.device)
        if args.half:
            from ..models.device import set_half

            set_half(True)
        if getattr(args, "threads", None):
            from ..models.device import set_threads

            set_threads(args.threads)
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
