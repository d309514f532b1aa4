"""``cbs-obs run`` and ``cbs-obs demo``: the live engine."""
from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ..argtypes import positive_int as _positive_int
from ..argtypes import size_wh as _wh
from ..errors import InputError
from .options import (DEMO_LOOK, _add_look_options, _add_obs_options, _add_perf_options, _add_remote_options,
                      _connect_remote, _look, _perf_settings, _segmenter_options)

log = logging.getLogger(__name__)


def _engine_config(args, source: str, options):
    from ..engine import EngineConfig

    perf = _perf_settings(args)
    return EngineConfig(source=source, source_options=options, segmenter=args.segmenter,
                        segmenter_options=_segmenter_options(args), output_size=args.output_size, perf=perf,
                        max_frames=args.frames)



def _output_specs(args) -> tuple:
    """The outputs the flags name; none named: the virtual camera if a driver exists (the stream always runs)."""
    from ..app import DEFAULT_OUTPUTS
    from ..io.outputs import OutputSpec

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



@contextmanager
def _stop_requests(stop_with_stdin: bool = False):
    """An event set by Ctrl-C / SIGTERM or (``stop_with_stdin``) by the program that started us closing our
    standard input. Entered before anything starts: a SIGTERM that comes while the engine starts (OBS
    stopping it at once) must stop it cleanly, not kill the process with Python's default handler."""
    import signal
    import threading

    stop = threading.Event()
    if stop_with_stdin:
        threading.Thread(target=_wait_for_eof, args=(stop,), name="stdin", daemon=True).start()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_engine(engine, stop, *, show_stats: bool, duration: float | None) -> dict:
    """Run until the source ends, the duration passes or ``stop`` is set; always stop cleanly."""
    from ..engine.stats import format_line

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
    return engine.stats.snapshot()


def _wait_for_eof(stop) -> None:
    """Our parent holds the other end of stdin: when it exits, even killed or crashed, the OS closes it
    and this read returns. So an engine started by OBS never outlives OBS (keeping the camera busy).
    The file descriptor is read, not sys.stdin: a thread blocked in the buffered reader holds its lock,
    and Python aborts at exit ("could not acquire lock ... at interpreter shutdown") when stopped otherwise."""
    try:
        fd = sys.stdin.fileno()
        while os.read(fd, 4096):
            pass
    except (OSError, ValueError, AttributeError):
        pass
    log.warning("the program that started the engine has gone: stopping")
    stop.set()


def _budgeted(args, config, look, source):
    """--budget: measure this machine on the source's first frame and pick sizes that hold the frame rate."""
    import cv2

    from ..engine.budget import choose
    from ..segment import create_segmenter
    from ..style.catalog import StyleCache
    from ..stylizer import ClassStylizer

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
    from ..app import AppConfig, ControlSettings, LiveApp
    from ..engine import SourceOptions
    from ..io.sources import SourceLost, open_source
    from ..engine.stats import format_line

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be 0-65535, got {args.port}")
    if args.fps is not None and not args.fps > 0:
        raise InputError(f"--fps must be a positive number of frames per second, got {args.fps:g}")
    from ..web import check_bind_host

    check_bind_host(args.host)
    look = _look(args, DEMO_LOOK)
    _connect_remote(args)
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
        from ..obs.bridge import ObsSettings

        obs = ObsSettings.from_args(args)
    app = LiveApp(AppConfig(engine=config, look=look, outputs=_output_specs(args),
                            control=ControlSettings(host=args.host, port=args.port,
                                                    allow_hosts=tuple(args.allow_host or ())), obs=obs),
                  source=source, stylizer=stylizer)
    with _stop_requests(args.stop_with_stdin) as stop:
        app.start()
        try:
            for line in app.describe():
                print(line, flush=True)
            final = _run_engine(app.engine, stop, show_stats=args.stats, duration=args.duration)
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
        from ..io.images import write_image

        if frame.index == self.index:
            write_image(self.path, pixels)
            self.saved = True

    def close(self):
        pass



def cmd_demo(args) -> int:
    from ..engine import Engine, EngineConfig, PerfSettings, SourceOptions
    from ..look import Look
    from ..io.outputs.record import Recorder

    out_dir: Path = args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = args.assign or DEMO_LOOK
    print(f"cbs-obs demo: built-in clip -> person segmenter -> {', '.join(specs)}", flush=True)
    video_path, png_path = out_dir / "demo.mp4", out_dir / "demo.png"
    config = EngineConfig(source="demo", source_options=SourceOptions(loop=False, pace=False),
                          perf=PerfSettings(style_size=args.style_size))
    engine = Engine(config, Look.from_specs(specs), [Recorder(video_path, realtime=False), _PngAt(png_path, 30)])
    with _stop_requests() as stop:
        stats = _run_engine(engine.start(), stop, show_stats=False, duration=None)
    lat, stages = stats["latency_ms"], stats["stages_ms"]
    plate = engine.renderer.plate if engine.renderer else None
    print(f"wrote {video_path} ({stats['output']} frames) and {png_path}")
    print(f"{stats['fps']:.1f} fps, capture-to-output latency p50 {lat['p50']:.0f} ms / p95 {lat['p95']:.0f} ms "
          f"(every frame kept; per frame: segment {stages['segment']:.0f} ms, composite {stages['composite']:.0f} ms"
          + (f"; the still background was styled {plate.restyles} times at full resolution)" if plate else ")"))
    return 0



def register(sub) -> None:
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
    _add_remote_options(r)
    _add_obs_options(r)
    r.add_argument("--stats", action="store_true", help="print fps, latency and stage timings every 2 s")
    r.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    r.add_argument("--stop-with-stdin", action="store_true",
                   help="stop when standard input closes: for programs that start the engine (the OBS script "
                   "does), so it never outlives them, even when they crash")
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
