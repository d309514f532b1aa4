"""Option groups and the objects they describe, shared by the commands."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..argtypes import positive_int as _positive_int
from ..argtypes import size_hw as _size

DEMO_LOOK = ("background=starry-blue",)


def _segmenters_help() -> str:
    from ..segment import SEGMENTERS

    return "; ".join(f"{k.name}: {k.help}" for k in SEGMENTERS.values())



def _add_look_options(p: argparse.ArgumentParser, default_assign=()) -> None:
    p.add_argument("--segmenter", "-s", default="person", help=_segmenters_help())
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



def _add_steady_options(g) -> None:
    """What keeps video steady; shared by live runs and offline videos (the same layers render both)."""
    g.add_argument("--plate", choices=("auto", "on", "off"), default="auto",
                   help="background plate: style the still room at full resolution only where it changes, fading "
                   "changes in (auto: on for the person segmenter)")
    g.add_argument("--plate-size", type=_positive_int, metavar="PX", help="longest side for styling the plate "
                   "(default: output size)")
    g.add_argument("--smoothing", type=float, default=0.8, metavar="A",
                   help="mask smoothing 0-0.95: weight of the previous mask, moved along the motion, where the "
                   "segmenter is unsure (default 0.8; 0 = off)")
    g.add_argument("--temporal", type=float, default=0.5, metavar="A",
                   help="steadiness of styled moving classes 0-0.95: weight the picture carried along the motion "
                   "keeps when a new style result lands (default 0.5; 0 = every result replaces it)")
    g.add_argument("--refresh", type=float, default=2.0, metavar="HZ",
                   help="new style results per second for styled moving classes (default 2; the picture follows "
                   "the motion in between: more results only add texture flicker and CPU). Live --moving sync "
                   "styles every frame regardless")
    g.add_argument("--no-edges", action="store_true",
                   help="plain bilinear mask edges instead of edges snapped to the frame (guided filter)")
    g.add_argument("--no-crop", action="store_true", help="style moving classes on the whole frame, not their box")



def _add_perf_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("speed and quality")
    _add_steady_options(g)
    g.add_argument("--seg-every", type=_positive_int, default=1, metavar="N", help="segment every N frames")
    g.add_argument("--similar-skip", type=float, default=0.0, metavar="D",
                   help="reuse the last result when a frame changed less than D (0-255 mean); 0 = off")
    g.add_argument("--moving", choices=("async", "sync"), default="async",
                   help="moving classes (a styled person): async styles them in their own thread and shows the "
                   "newest styled box on every frame (camera frame rate); sync makes each frame wait for its own")
    g.add_argument("--threads", type=_positive_int, help="CPU threads per network (default: all cores)")
    g.add_argument("--budget", type=float, metavar="FPS",
                   help="measure this machine at start and pick sizes that hold FPS (overrides --style-size, "
                   "--seg-every)")



def _add_obs_options(p: argparse.ArgumentParser, *, flag: bool = True) -> None:
    g = p.add_argument_group("OBS (obs-websocket 5)")
    if flag:
        g.add_argument("--obs", action="store_true",
                       help="connect to OBS: apply the preset mapped to each program scene")
    g.add_argument("--obs-host", default="127.0.0.1", help="OBS websocket host (default 127.0.0.1)")
    g.add_argument("--obs-port", type=int, default=4455, help="OBS websocket port (default 4455)")
    g.add_argument("--obs-password", help="OBS websocket password (better: the CBS_OBS_OBS_PASSWORD variable)")



def _add_remote_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("networks on another PC (an inference server started with cbs-obs serve)")
    g.add_argument("--remote", metavar="grpc://HOST:PORT",
                   help="run the segmenter and styles on that server; capture and compositing stay here")
    g.add_argument("--remote-key", metavar="KEY",
                   help="the server's shared key (better: the CBS_OBS_REMOTE_KEY variable)")
    g.add_argument("--remote-fallback", choices=("none", "local"), default="none",
                   help="while the server is lost: none keeps the last masks and styles (default), local runs the "
                   "networks here until it is back")



def _connect_remote(args, *, timeout_s: float = 10.0) -> None:
    """--remote: check the server and the key now, before any network loads. ``timeout_s``: longest wait for one
    answer (live: short, a lost server must not hold frames; offline: long, big pictures take time)."""
    if not getattr(args, "remote", None):
        return
    from ..errors import SettingsError
    from ..remote import RemoteSettings, connect

    settings = RemoteSettings(args.remote, key=args.remote_key, fallback=args.remote_fallback, timeout_s=timeout_s)
    try:
        import tritonclient.grpc  # noqa: F401
    except ImportError:
        raise SettingsError('--remote needs Triton\'s client: pip install "cbs-obs[remote]"') from None
    connect(settings)



def _segmenter_options(args) -> dict:
    """The options the chosen segmenter declares it takes (SegmenterKind.options), from the flags."""
    from ..segment import segmenter_kind

    takes = segmenter_kind(args.segmenter).options
    given = {"variant": args.variant, "size": args.seg_size}
    options = {k: v for k, v in given.items() if k in takes and v is not None}
    if args.weights:
        options["weights"] = args.weights
    return options



def _look(args, default_assign=()):
    """The look the look options describe, its class names checked before any model loads."""
    from ..look import Look
    from ..segment import segmenter_classes

    look = Look.from_specs(args.assign or default_assign, strength=args.strength, feather=args.feather,
                           hard=args.hard)
    look.check_classes(segmenter_classes(args.segmenter, args.weights))
    return look



def _build_stylizer(args, default_assign=()):
    from ..segment import create_segmenter
    from ..style.catalog import StyleCache
    from ..stylizer import ClassStylizer

    look = _look(args, default_assign)
    styles = StyleCache(max_side=args.style_size)
    for spec in look.groups():  # style typos fail fast too
        styles.get(spec)
    segmenter = create_segmenter(args.segmenter, **_segmenter_options(args))
    return ClassStylizer(segmenter, look, styles=styles)



def _perf_settings(args, **fixed):
    from ..engine import PerfSettings

    given = {"style_size": args.style_size, "plate": args.plate, "plate_size": args.plate_size,
             "smoothing": args.smoothing, "temporal": args.temporal, "refresh": args.refresh,
             "edges": not args.no_edges, "crop": not args.no_crop}
    for name in ("seg_every", "similar_skip", "moving"):
        if hasattr(args, name):
            given[name] = getattr(args, name)
    return PerfSettings(**{**given, **fixed})

