"""``cbs-obs``: the command line. Every error the user can cause is one line without a traceback."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

from . import __version__
from .argtypes import positive_int as _positive_int
from .argtypes import size_hw as _size
from .argtypes import size_wh as _wh
from .errors import CbsError, InputError

log = logging.getLogger("cbs_obs")

DEMO_LOOK = ("background=starry-blue",)


# -- stylize ---------------------------------------------------------------------------------
def _segmenters_help() -> str:
    from .segment import SEGMENTERS

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


def _segmenter_options(args) -> dict:
    """The options the chosen segmenter declares it takes (SegmenterKind.options), from the flags."""
    from .segment import segmenter_kind

    takes = segmenter_kind(args.segmenter).options
    given = {"variant": args.variant, "size": args.seg_size}
    options = {k: v for k, v in given.items() if k in takes and v is not None}
    if args.weights:
        options["weights"] = args.weights
    return options


def _look(args, default_assign=()):
    """The look the look options describe, its class names checked before any model loads."""
    from .look import Look
    from .segment import segmenter_classes

    look = Look.from_specs(args.assign or default_assign, strength=args.strength, feather=args.feather,
                           hard=args.hard)
    look.check_classes(segmenter_classes(args.segmenter, args.weights))
    return look


def _build_stylizer(args, default_assign=()):
    from .segment import create_segmenter
    from .style.catalog import StyleCache
    from .stylizer import ClassStylizer

    look = _look(args, default_assign)
    styles = StyleCache(max_side=args.style_size)
    for spec in look.groups():  # style typos fail fast too
        styles.get(spec)
    segmenter = create_segmenter(args.segmenter, **_segmenter_options(args))
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
    _check_neural_size(args, frame.shape[1], frame.shape[0])
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
        from .segment import segmenter_kind

        write_image(args.overlay, overlay(frame, result.probs.labels(frame.shape[:2]), stylizer.classes,
                                          colours=segmenter_kind(args.segmenter).palette))
        print(f"wrote overlay {args.overlay}")
    return 0


def _check_neural_size(args, width: int, height: int) -> None:
    """Neural styles need memory that grows with the picture's area; refuse what would not fit, and say how
    to go on (a bigger cap, or styling at a smaller size), instead of failing deep in ONNX Runtime."""
    from .style.catalog import is_neural

    side = min(max(width, height), args.style_size or max(width, height))
    neural = [a.style for a in _look(args, ()).assignments if is_neural(a.style)]
    if neural and side > args.max_side:
        raise InputError(f"{args.input} is {width}x{height}; neural styles ({neural[0]}) run at most "
                         f"{args.max_side} px per side here: raise the cap with --max-side {max(width, height)} "
                         f"(needs several GB of memory) or style at a smaller size with --style-size {args.max_side}")


def _check_out(path: Path) -> None:
    if not path.parent.exists():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist")


def _stylize_video(args) -> int:
    """Videos go through the live engine's renderer (offline: every frame kept, restyles in line), so a
    file styled offline is as steady as the live output."""
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    from tqdm import tqdm

    from .engine.render import Renderer
    from .video import create_writer, frames, open_video

    cap, fps, count = open_video(args.input)
    _check_neural_size(args, int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    stylizer = _build_stylizer(args)
    perf = _perf_settings(args, moving="sync")
    writer = None
    t0, n = time.perf_counter(), 0
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="worker") as pool:
        renderer = Renderer(stylizer, perf, pool, args.segmenter, realtime=False)
        try:
            for frame in tqdm(frames(cap), total=count or None, unit="frame", desc="stylize"):
                out, _ = renderer.render(frame, stylizer.look)
                if writer is None:
                    writer = create_writer(args.output, fps, (out.shape[1], out.shape[0]))
                writer.write(out)
                n += 1
        finally:
            renderer.close()
            cap.release()
            if writer is not None:
                writer.release()
    dt = time.perf_counter() - t0
    print(f"wrote {args.output}: {n} frames, {n / dt:.1f} fps")
    return 0


# -- run / demo ------------------------------------------------------------------------------
def _perf_settings(args, **fixed):
    from .engine import PerfSettings

    given = {"style_size": args.style_size, "plate": args.plate, "plate_size": args.plate_size,
             "smoothing": args.smoothing, "temporal": args.temporal, "edges": not args.no_edges,
             "crop": not args.no_crop}
    for name in ("seg_every", "similar_skip", "moving"):
        if hasattr(args, name):
            given[name] = getattr(args, name)
    return PerfSettings(**{**given, **fixed})


def _engine_config(args, source: str, options):
    from .engine import EngineConfig

    perf = _perf_settings(args)
    return EngineConfig(source=source, source_options=options, segmenter=args.segmenter,
                        segmenter_options=_segmenter_options(args), output_size=args.output_size, perf=perf,
                        max_frames=args.frames)


def _output_specs(args) -> tuple:
    """The outputs the flags name; none named: the virtual camera if a driver exists (the stream always runs)."""
    from .app import DEFAULT_OUTPUTS
    from .outputs import OutputSpec

    specs = []
    if args.vcam:
        specs.append(OutputSpec("vcam", {"device": args.vcam_device, "backend": args.vcam_backend}))
    if args.record:
        specs.append(OutputSpec("record", {"path": args.record, "realtime": not args.no_pace}))
    if args.preview:
        specs.append(OutputSpec("preview"))
    if args.null:
        specs.append(OutputSpec("null"))
    if specs:
        return tuple(specs)
    if args.vcam_device or args.vcam_backend:
        return (OutputSpec("vcam", {"device": args.vcam_device, "backend": args.vcam_backend}, optional=True),)
    return DEFAULT_OUTPUTS


def _run_engine(engine, *, show_stats: bool, duration: float | None) -> dict:
    """Run until the source ends, the duration passes, or Ctrl-C / SIGTERM; always stop cleanly."""
    import signal
    import threading

    from .engine.stats import format_line

    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        deadline = time.monotonic() + duration if duration else None
        last = time.monotonic()
        while not stop.is_set() and not engine.wait(0.2):
            if deadline and time.monotonic() >= deadline:
                break
            if show_stats and time.monotonic() - last >= 2.0:
                last = time.monotonic()
                print(format_line(engine.stats.snapshot()), flush=True)
    finally:
        engine.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return engine.stats.snapshot()


def _budgeted(args, config, look, source):
    """--budget: measure this machine on the source's first frame and pick sizes that hold the frame rate."""
    import cv2

    from .engine.budget import choose
    from .segment import create_segmenter
    from .style.catalog import StyleCache
    from .stylizer import ClassStylizer

    stylizer = ClassStylizer(create_segmenter(config.segmenter, **config.segmenter_options), look)
    sample = source.read()
    if sample is None:
        raise InputError(f"{source.name} gave no frames")
    if config.output_size:
        sample = cv2.resize(sample, config.output_size, interpolation=cv2.INTER_AREA)
    perf, report = choose(stylizer, sample, look, args.budget, config.perf, config.segmenter)
    print(report, flush=True)
    stylizer.styles = StyleCache(max_side=perf.style_size)
    return replace(config, perf=perf), stylizer


def cmd_run(args) -> int:
    from .app import AppConfig, ControlSettings, LiveApp
    from .engine import SourceOptions
    from .engine.sources import SourceLost, open_source
    from .engine.stats import format_line

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be 0-65535, got {args.port}")
    if args.fps is not None and not args.fps > 0:
        raise InputError(f"--fps must be a positive number of frames per second, got {args.fps:g}")
    from .web import check_bind_host

    check_bind_host(args.host)
    look = _look(args, DEMO_LOOK)
    options = SourceOptions(width=args.width, height=args.height, fps=args.fps, mjpg=args.mjpg,
                            loop=not args.no_loop, pace=not args.no_pace)
    config = _engine_config(args, args.source, options)
    source = open_source(args.source, options)
    try:
        source.open()  # a missing camera is reported before any model loads
    except SourceLost as e:
        raise InputError(str(e)) from None
    stylizer = None
    if args.budget:
        config, stylizer = _budgeted(args, config, look, source)
    obs = None
    if args.obs:
        from .obs.bridge import ObsSettings

        obs = ObsSettings.from_args(args)
    app = LiveApp(AppConfig(engine=config, look=look, outputs=_output_specs(args),
                            control=ControlSettings(host=args.host, port=args.port,
                                                    allow_hosts=tuple(args.allow_host or ())), obs=obs),
                  source=source, stylizer=stylizer)
    app.start()
    try:
        for line in app.describe():
            print(line, flush=True)
        final = _run_engine(app.engine, show_stats=args.stats, duration=args.duration)
    finally:
        app.stop()
    print(format_line(final))
    return 0


class _PngAt:
    """Saves the composited frame with a given index as PNG (the demo's still)."""

    name = "png"

    def __init__(self, path: Path, index: int):
        self.path, self.index, self.saved = path, index, False

    def start(self, width, height, fps):
        pass

    def send(self, frame, pixels):
        from .imageio import write_image

        if frame.index == self.index:
            write_image(self.path, pixels)
            self.saved = True

    def close(self):
        pass


def cmd_demo(args) -> int:
    from .engine import Engine, EngineConfig, PerfSettings, SourceOptions
    from .look import Look
    from .outputs.record import Recorder

    out_dir: Path = args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = args.assign or DEMO_LOOK
    print(f"cbs-obs demo: built-in clip -> person segmenter -> {', '.join(specs)}", flush=True)
    video_path, png_path = out_dir / "demo.mp4", out_dir / "demo.png"
    config = EngineConfig(source="demo", source_options=SourceOptions(loop=False, pace=False),
                          perf=PerfSettings(style_size=args.style_size))
    engine = Engine(config, Look.from_specs(specs), [Recorder(video_path, realtime=False), _PngAt(png_path, 30)])
    stats = _run_engine(engine.start(), show_stats=False, duration=None)
    lat, stages = stats["latency_ms"], stats["stages_ms"]
    plate = engine.renderer.plate if engine.renderer else None
    print(f"wrote {video_path} ({stats['output']} frames) and {png_path}")
    print(f"{stats['fps']:.1f} fps, capture-to-output latency p50 {lat['p50']:.0f} ms / p95 {lat['p95']:.0f} ms "
          f"(every frame kept; per frame: segment {stages['segment']:.0f} ms, composite {stages['composite']:.0f} ms"
          + (f"; the still background was styled {plate.restyles} times at full resolution)" if plate else ")"))
    return 0


# -- token and OBS -----------------------------------------------------------------------------
def cmd_token(args) -> int:
    from .control import token as tokens

    token = tokens.load_or_create(rotate=args.rotate)
    print(f"http://{args.host}:{args.port}/?token={token}" if args.url else token)
    if args.rotate:
        print("new token saved; restart cbs-obs run and reopen the web panel (the OBS panel reads it itself)",
              file=sys.stderr)
    return 0


def cmd_obs_plugin_path(args) -> int:
    from .obs.plugin import script_path, write_location

    script = script_path()
    print(script)
    note = write_location(script)
    if note is None:
        print(f"note: cannot write beside {script} (read-only); the script will look for cbs-obs on PATH",
              file=sys.stderr)
    print("In OBS: Tools -> Scripts -> + and open that file, then press Start engine.", file=sys.stderr)
    return 0


def cmd_obs_setup(args) -> int:
    from .obs.bridge import ObsSettings
    from .obs.setup import setup_source

    url = args.url or f"http://127.0.0.1:{args.port}/stream.mjpg"
    print(setup_source(ObsSettings.from_args(args), url, name=args.source_name, scene=args.scene))
    return 0


# -- bench -----------------------------------------------------------------------------------
def cmd_bench(args) -> int:
    import json

    from .bench import run

    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.output}")
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
    from .segment import CLASS_GROUPS, known_names, segmenter_classes

    classes = segmenter_classes(args.segmenter, args.weights)
    print(" ".join(classes))
    for group in known_names(classes)[len(classes):]:
        print(f"{group} = {' + '.join(CLASS_GROUPS[group])}")
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
    p.add_argument("--half", action="store_true",
                   help="fp16 for the torch networks (for GPUs; on the CPU it is correct but slow)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("stylize", help="style classes of an image or video file",
                       description="Segment IN, style the assigned classes, write OUT.")
    s.add_argument("input", type=Path, metavar="IN", help="image (PNG, JPEG...) or video file")
    s.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="output image or .mp4")
    _add_look_options(s)
    s.add_argument("--mask-out", type=Path, metavar="PNG", help="also save the styled-weight mask (0..255)")
    s.add_argument("--overlay", type=Path, metavar="PNG", help="also save a class-colour debug overlay")
    s.add_argument("--max-side", type=_positive_int, default=4096, metavar="PX",
                   help="largest picture side neural styles may run at (default 4096; memory grows with the area)")
    _add_steady_options(s.add_argument_group("videos: steadiness"))
    s.set_defaults(func=cmd_stylize)

    r = sub.add_parser("run", help="run the live engine: camera/file/stream -> virtual camera, MJPEG, recording",
                       description="Style a live source and publish it. With no output flags: virtual camera "
                       "(if a driver is present) and the MJPEG stream on 127.0.0.1.")
    r.add_argument("--config", type=Path, metavar="TOML",
                   help="read options from a TOML file (keys are the long option names, plus source and assign); "
                   "options on the command line win")
    r.add_argument("source", nargs="?", default="demo",
                   help="demo (default), camera index (0), /dev/videoN, rtsp:// or http:// URL, video or image file")
    src = r.add_argument_group("source")
    src.add_argument("--width", type=_positive_int, help="camera capture width")
    src.add_argument("--height", type=_positive_int, help="camera capture height")
    src.add_argument("--fps", type=float, help="camera fps, or the rate to play files and images at")
    src.add_argument("--mjpg", action="store_true", help="ask the camera for MJPG (higher fps at 720p/1080p on USB)")
    src.add_argument("--no-loop", action="store_true", help="files: stop at the end instead of looping")
    src.add_argument("--no-pace", action="store_true",
                     help="files: process every frame as fast as possible (no drops) instead of playing in real time")
    _add_look_options(r, DEMO_LOOK)
    r.set_defaults(style_size=640)
    _add_perf_options(r)
    r.add_argument("--output-size", type=_wh, metavar="WxH", help="output resolution (default: the source's)")
    out = r.add_argument_group("outputs")
    out.add_argument("--vcam", action="store_true", help="publish as a virtual camera (pyvirtualcam)")
    out.add_argument("--vcam-device", help="virtual camera device, e.g. /dev/video10")
    out.add_argument("--vcam-backend", help="pyvirtualcam backend: v4l2loopback, obs, unitycapture")
    out.add_argument("--host", default="127.0.0.1",
                     help="address of the web panel, control API and MJPEG stream (default 127.0.0.1)")
    out.add_argument("--port", type=int, default=8765, help="their port (default 8765)")
    out.add_argument("--allow-host", action="append", metavar="NAME",
                     help="another name browsers may use for this machine (the Host header is checked against "
                     "loopback names and --host); repeat for several")
    out.add_argument("--record", type=Path, metavar="MP4", help="record the output to a file")
    out.add_argument("--preview", action="store_true", help="show a preview window (q quits)")
    out.add_argument("--null", action="store_true", help="discard frames (benchmarks)")
    _add_obs_options(r)
    r.add_argument("--stats", action="store_true", help="print fps, latency and stage timings every 2 s")
    r.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    r.add_argument("--frames", type=_positive_int, metavar="N", help="stop after N output frames")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="run the built-in clip through the pipeline (no camera needed)",
                       description="Style the background of a built-in clip; writes demo.mp4 and demo.png.")
    d.add_argument("--output-dir", type=Path, default=Path("cbs-obs-demo"),
                   help="where to write (default ./cbs-obs-demo)")
    d.add_argument("--assign", "-a", action="append", metavar="CLASS=STYLE",
                   help="look (default background=starry-blue)")
    d.add_argument("--style-size", type=_positive_int, metavar="PX", help="longest side for neural styles")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("token", help="print the control API token (made on first use, kept with mode 0600)")
    t.add_argument("--rotate", action="store_true", help="make a new token (the old one stops working)")
    t.add_argument("--url", action="store_true", help="print the web panel's address with the token in it")
    t.add_argument("--host", default="127.0.0.1", help="the engine's address, for --url (default 127.0.0.1)")
    t.add_argument("--port", type=int, default=8765, help="the engine's port, for --url (default 8765)")
    t.set_defaults(func=cmd_token)

    o = sub.add_parser("obs", help="set up OBS to show the engine's output")
    os_ = o.add_subparsers(dest="obs_command", metavar="ACTION", required=True)
    su = os_.add_parser("setup", help="create or update a media source that plays the engine's MJPEG stream",
                        description="Connects to OBS (obs-websocket 5) and creates, or updates, a media source "
                        "playing http://127.0.0.1:PORT/stream.mjpg in the current (or given) scene.")
    _add_obs_options(su, flag=False)
    su.add_argument("--scene", help="scene to add the source to (default: the current program scene)")
    su.add_argument("--source-name", default="cbs-obs", help="name of the OBS source (default cbs-obs)")
    su.add_argument("--port", type=int, default=8765, help="the engine's HTTP port (default 8765)")
    su.add_argument("--url", help="stream URL, if not the local engine's")
    su.set_defaults(func=cmd_obs_setup)
    pp = os_.add_parser("plugin-path", help="print where the OBS script is (add it in Tools -> Scripts -> +)",
                        description="Prints the path of cbs_obs_panel.py and records beside it where this "
                        "cbs-obs is installed, so the script can start the engine without any path typed in OBS.")
    pp.set_defaults(func=cmd_obs_plugin_path)

    from .train.cli import register as register_training

    register_training(sub)

    from .bench import SCENARIOS

    b = sub.add_parser("bench", help="measure fps, latency, CPU and quality of the standard scenarios",
                       description="Runs each scenario through the real engine and prints medians and same-run "
                       "ratios. models: each network alone. bg720: person segmenter, background styled, 1280x720 "
                       "at 30 fps. person720: the "
                       "person styled, background untouched. cityscapes: the paper's setting, car and road styled.")
    b.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), metavar="NAME",
                   help=f"which scenarios ({', '.join(SCENARIOS)}; default all)")
    b.add_argument("--seconds", type=float, default=20.0, help="measured seconds per live scenario (default 20)")
    b.add_argument("--clip", action="append", metavar="VIDEO",
                   help="real footage to measure on (repeat for several clips; cropped and scaled to 1280x720, "
                   "played forwards then backwards); default: the built-in clip")
    b.add_argument("--naive-window", type=_positive_int, default=30, metavar="N",
                   help="consecutive frames styled naively (every frame in full) for comparison (default 30)")
    b.add_argument("--compare-sync", action="store_true", help="person720: also run --moving sync as a reference")
    b.add_argument("--room-change", action="store_true", help="bg720: also time a room change (a light switched on)")
    b.add_argument("--cityscapes-frame", type=str, metavar="PNG", help="a 1024x2048 Cityscapes frame")
    b.add_argument("--compare-naive", action="store_true",
                   help="also time the paper's method run naively (DABNet + TransformerNet, torch eager, full size)")
    b.add_argument("--naive-frames", type=_positive_int, default=1, help="frames for the naive baseline (default 1)")
    b.add_argument("--person-style-size", type=_positive_int, default=480, help="style size for person720")
    b.add_argument("--person-moving", choices=("async", "sync"), default="async", help="moving mode for person720")
    b.add_argument("--repeats", type=_positive_int, default=20, help="timed runs per network in 'models' (default 20)")
    b.add_argument("--json", action="store_true", help="print the results as one JSON document")
    b.add_argument("-o", "--output", type=Path, metavar="JSON", help="also write the results to a file")
    b.set_defaults(func=cmd_bench)

    st = sub.add_parser("styles", help="list the styles or draw a contact sheet of them")
    ss = st.add_subparsers(dest="styles_command", metavar="ACTION", required=True)
    sl = ss.add_parser("list", help="every style name and family")
    sl.set_defaults(func=cmd_styles_list)
    sh = ss.add_parser("sheet", help="render the 26 built-in styles (and the filters) on IMAGE, with names")
    sh.add_argument("image", type=Path, metavar="IMAGE", help="your own picture to show the styles on")
    sh.add_argument("-o", "--output", type=Path, required=True, metavar="PNG", help="where to write the sheet")
    sh.add_argument("--tile-width", type=_positive_int, default=320, help="width of each tile (default 320)")
    sh.add_argument("--columns", type=_positive_int, default=6, help="tiles per row (default 6)")
    sh.set_defaults(func=cmd_styles_sheet)

    c = sub.add_parser("classes", help="list the class names a segmenter knows")
    c.add_argument("--segmenter", "-s", default="person", help=_segmenters_help())
    c.add_argument("--weights", type=Path, help="a checkpoint from cbs-obs train seg (it carries its classes)")
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
    mp.add_argument("name", help="model name (cbs-obs models list)")
    mp.set_defaults(func=cmd_models_path)
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
    from .config import config_argv

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

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        if args.device:
            from .device import set_device

            set_device(args.device)
        if args.half:
            from .device import set_half

            set_half(True)
        if getattr(args, "threads", None):
            from .device import set_threads

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
