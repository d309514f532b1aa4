"""``cbs-obs bench``: the figures behind BENCHMARKS.md, measured in one run on this machine.

Every figure is a median over the run, and speed-ups are ratios against a baseline measured in
the same run (machines here drift 15-35% between runs, so absolute numbers travel badly).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from .engine import EngineConfig, PerfSettings
from .io.sources import FramesSource
from .look import Look
from .errors import InputError
from .quality import ANALYSIS_SIZE, InputFlow, Regions, currency, halo, instability, mask_instability, pops, summary
from .segment import create_segmenter, segmenter_classes
from .stylizer import ClassStylizer
from .io.video import frames as video_frames
from .io.video import open_video

log = logging.getLogger(__name__)
SCENARIOS = ("models", "bg720", "person720", "cityscapes")
PAPER_FPS = 16.0  # the paper: 1024x2048 on a P100


@dataclass
class Capture:
    """Output that counts frames and, once armed, keeps each output at analysis size with its source index.
    ``cpu_s``: CPU time spent recording (the bench's own work, taken out of the engine's CPU figure)."""

    period: int = 1
    name: str = "bench"
    armed: bool = False
    record: bool = False
    recorded: list[tuple[int, np.ndarray]] = field(default_factory=list)
    log: list[tuple[float, int]] = field(default_factory=list)  # (output time, source index)
    cpu_s: float = 0.0

    def start(self, w, h, fps):
        pass

    def send(self, frame, pixels):
        self.log.append((time.monotonic(), frame.index))
        if self.armed and self.record and frame.signal:
            t0 = time.thread_time()
            small = cv2.resize(pixels, ANALYSIS_SIZE, interpolation=cv2.INTER_AREA)
            self.recorded.append((frame.index % self.period, small))
            self.cpu_s += time.thread_time() - t0

    def close(self):
        pass


def clip_frames(path: str | None, size: tuple[int, int], *, ping_pong: bool = False,
                max_seconds: float | None = None) -> tuple[list[np.ndarray], str]:
    """A clip's frames at ``size`` (W, H): cropped to that aspect first (keeping the top, where heads are),
    then scaled. ``ping_pong`` plays it forwards then backwards, so looping never jumps. ``max_seconds``:
    only the clip's first seconds (a long clip held at 720p would take gigabytes)."""
    from itertools import islice

    from .io.sources import demo_clip_path

    src = path or str(demo_clip_path())
    cap, fps, _ = open_video(src)
    limit = None if max_seconds is None else max(3, round(max_seconds * fps))
    out = [_fit(f, size) for f in islice(video_frames(cap), limit)]
    cap.release()
    if not out:
        raise InputError(f"{src}: no frames could be read")
    if ping_pong and len(out) > 2:
        out = out + out[-2:0:-1]
    return out, os.path.basename(src)


def _fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    fh, fw = frame.shape[:2]
    if fw * h > fh * w:  # too wide: crop the sides evenly
        cw = fh * w // h
        frame = frame[:, (fw - cw) // 2:(fw - cw) // 2 + cw]
    elif fw * h < fh * w:  # too tall: keep the top part
        ch = fw * h // w
        top = min((fh - ch) // 2, fh // 20)
        frame = frame[top:top + ch]
    return cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC if frame.shape[1] < w else cv2.INTER_AREA)


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _stolen_seconds() -> float | None:
    """CPU time the host of a virtual machine took from it (Linux's "steal"), all cores; None elsewhere.
    These machines slow down by 15-35% when the host is busy: a run's figures are read next to it."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run_live(frames, look, perf, *, seconds: float, fps: float = 30.0, segmenter: str = "person",
             record: bool = False, seg_options=None, on_frame=None) -> tuple[dict, Capture]:
    """Play frames in real time through the engine; returns stats with CPU use, RSS and the capture."""
    release_memory()
    cap = Capture(period=len(frames), record=record)
    app = _live_app(EngineConfig(source="bench", segmenter=segmenter, segmenter_options=seg_options or {}, perf=perf),
                    look, FramesSource(frames, fps, name="bench clip"), [cap]).start()
    engine = app.engine
    warm = time.monotonic() + min(3.0, seconds / 4)  # first frames include model warm-up and the first plate
    while time.monotonic() < warm:
        time.sleep(0.05)
    engine.stats.reset()  # measure steady state only
    tracker = getattr(engine.stylizer.segmenter, "tracker", None)
    if tracker is not None:
        tracker.reset_stats()
    cap.armed = True
    styler = engine.renderer.async_styler
    styled0 = styler.styled_frames if styler else 0
    motion = engine.renderer.motion
    flows0 = motion.frames, motion.fine_frames
    cpu0, rec0, stolen0, t0 = _cpu_seconds(), cap.cpu_s, _stolen_seconds(), time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end and not engine.wait(0.1):
        if on_frame:
            on_frame(engine)
    elapsed = time.monotonic() - t0
    cpu = (_cpu_seconds() - cpu0 - (cap.cpu_s - rec0)) / elapsed  # the engine's, not the bench's recording
    stolen = _stolen_seconds()
    stats = engine.stats.snapshot()
    if stolen is not None and stolen0 is not None:
        stats["cpu_stolen_percent_of_one_core"] = round(100 * (stolen - stolen0) / elapsed, 1)
    if styler is not None and styler.styled_frames > styled0:
        stats["moving_style_refresh_hz"] = round((styler.styled_frames - styled0) / elapsed, 1)
    if motion.frames > flows0[0]:  # how often the frame loop could afford the fine flow
        stats["fine_flow_share"] = round((motion.fine_frames - flows0[1]) / (motion.frames - flows0[0]), 3)
    plate = engine.renderer.plate
    stats["rss_mb"] = _rss_mb()
    if tracker is not None:
        stats["faces"] = _rounded(tracker.stats_per_frame())
    app.stop()
    cap.armed = False
    stats["cpu_percent_of_one_core"] = round(100 * cpu, 1)
    if plate is not None:
        stats["plate_restyles"] = plate.restyles
        stats["plate_tiles_restyled"] = getattr(plate, "tiles_restyled", None)
        stats["plate_restyle_ms"] = round(plate.last_restyle_s * 1000, 1)
    return stats, cap


def _live_app(config: EngineConfig, look: Look, source, outputs):
    """The live app as users run it (LiveApp, control plane included), with the bench's own outputs only."""
    import secrets

    from .app import AppConfig, ControlSettings, LiveApp

    return LiveApp(AppConfig(engine=config, look=look, outputs=(),
                             control=ControlSettings(port=0, token=secrets.token_urlsafe(24))),
                   source=source, extra_outputs=outputs)


def release_memory() -> None:
    """Hand memory freed by an analysis back to the system before the next live run, so that run's RSS
    is the engine's and not the allocator's leftovers (glibc keeps freed heap otherwise: the figure grew
    from 3.7 to 10 GB over four clips)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def edge_steadiness(frames: list[np.ndarray], n: int = 60, *, segmenter: str = "person", cls: str = "person",
                    guided: bool = True) -> dict:
    """A class's mask edge on the first ``n`` frames: the segmenter's own mask stretched to the frame,
    next to the engine's (smoothed along the motion where unsure; with ``guided``, edges snapped by
    the guided filter, as the engine does for the room's mask)."""
    from .engine.edges import GuidedUpsampler, MaskSmoother
    from .engine.motion import Motion

    frames = frames[:n]
    seg, motion, smoother = create_segmenter(segmenter), Motion(), MaskSmoother(PerfSettings().smoothing)
    size = (frames[0].shape[0], frames[0].shape[1])
    raw, ours = [], []
    for i, f in enumerate(frames):
        probs = _segment_at(seg, f, i)
        motion.update(f)
        small_raw = probs.mask([cls])
        smooth = smoother(probs, motion).mask([cls])
        full_raw = cv2.resize(small_raw, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        full_ours = GuidedUpsampler(f)(smooth, size) if guided else \
            cv2.resize(smooth, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        raw.append((i, cv2.resize(full_raw, ANALYSIS_SIZE, interpolation=cv2.INTER_AREA)))
        ours.append((i, cv2.resize(full_ours, ANALYSIS_SIZE, interpolation=cv2.INTER_AREA)))
    flow = InputFlow({i: cv2.resize(f, ANALYSIS_SIZE, interpolation=cv2.INTER_AREA) for i, f in enumerate(frames)})
    return {"frames": len(frames), "class": cls, "segmenter_bilinear": summary(mask_instability(raw, flow)),
            "engine": summary(mask_instability(ours, flow))}


def _segment_at(seg, frame: np.ndarray, index: int, fps: float = 30.0):
    """Segment a clip's frame offline: segmenters that smooth over time (the face tracker) get the
    frame's own time, not the wall clock, which runs at the analysis's pace."""
    if getattr(seg, "timed", False):
        return seg.segment(frame, t=index / fps)
    return seg.segment(frame)


def moving_classes(look: Look) -> list[str]:
    """The names a look styles, as assigned (a group such as ``person`` stays one name)."""
    return [a.cls for a in look.assignments]


def steadiness(frames: list[np.ndarray], look: Look, cap: Capture, *, naive_frames: int,
               segmenter: str = "person") -> dict:
    """Temporal instability, pops, currency and halo of the engine's output, next to the input's own
    and the naive path's (every frame styled in full at output size), on the same clip: in the room,
    in the person and in each class the look styles (e.g. face and body)."""
    outputs = cap.recorded
    if len(outputs) < 3:
        return {"skipped": "too few frames recorded"}
    styled = moving_classes(look)
    used = sorted({i for i, _ in outputs})
    inputs = {i: cv2.resize(frames[i], ANALYSIS_SIZE, interpolation=cv2.INTER_AREA) for i in used}
    seg = create_segmenter(segmenter)
    named = ["person"] + [c for c in styled if c not in ("person", "background")]
    masks: dict[str, dict[int, np.ndarray]] = {c: {} for c in named}
    for i in used:  # where each class is: the segmenter on the full frame, at 0.5
        probs = _segment_at(seg, frames[i], i)
        for c in named:
            masks[c][i] = probs.mask([c], (ANALYSIS_SIZE[1], ANALYSIS_SIZE[0])) > 0.5
    regions = Regions.from_masks(masks["person"])
    areas = {"person": regions.person, "background": regions.background}
    for c in named[1:]:
        areas[c] = Regions.from_masks(masks[c]).person  # the class's core
    flow = InputFlow(inputs)
    as_input = [(i, inputs[i]) for i, _ in outputs]
    # the naive path on a window of the same consecutive source frames
    window = outputs[:naive_frames]
    if getattr(seg, "tracker", None) is not None:
        # the naive path styles a window from the middle of the clip: follow the faces into it first,
        # as a live run would have, so a frame where the detector alone misses a face is not counted
        seg.tracker.reset()
        w0 = window[0][0] if window else 0
        for k in range(max(0, w0 - 15), w0):
            seg.segment(frames[k])
    naive = ClassStylizer(seg, look, style_size=None)
    fresh = {}
    for i, _ in window:
        if i not in fresh:
            fresh[i] = cv2.resize(naive.process(frames[i]).frame, ANALYSIS_SIZE, interpolation=cv2.INTER_AREA)
    naive_out = [(i, fresh[i]) for i, _ in window]
    ours_bg = instability(outputs, flow, regions.background)
    result: dict = {"measured_at": f"{ANALYSIS_SIZE[0]}x{ANALYSIS_SIZE[1]}", "classes": styled}
    for c in dict.fromkeys(["person", "background"] + named[1:]):
        ours = ours_bg if c == "background" else instability(outputs, flow, areas[c])
        r = result[f"instability_{c}"] = {"ours": summary(ours),
                                          "input": summary(instability(as_input, flow, areas[c])),
                                          "naive": summary(instability(naive_out, flow, areas[c]))}
        # the naive path costs seconds a frame, so it runs on a window: ours on the very same pairs, for the ratio
        r["ours_on_naive_window"] = summary(instability(window, flow, areas[c]))
        if r["ours"]["mean"] and r["input"]["mean"]:
            r["ours_vs_input"] = round(r["ours"]["mean"] / r["input"]["mean"], 2)
        if r["ours_on_naive_window"]["mean"] and r["naive"]["mean"]:
            r["ours_vs_naive"] = round(r["ours_on_naive_window"]["mean"] / r["naive"]["mean"], 2)
    # the metric's own floor: one output frame shown still (warping a textured picture with the flow of a
    # plain wall is not exact, so even a perfectly still styled room scores above the input)
    result["still_floor_background"] = summary(instability([(i, outputs[0][1]) for i, _ in outputs], flow,
                                                           regions.background))
    result["pops_background"] = pops(ours_bg)
    moving = [c for c in styled if c != "background"]
    main = "background" if not moving else ("person" if len(moving) > 1 else moving[0])
    result["currency_psnr_db"] = currency(dict(window), fresh, areas[main])
    if len(moving) > 1:
        result["currency_psnr_db_by_class"] = {c: currency(dict(window), fresh, areas[c]) for c in moving}
    if "background" in styled:
        result["halo"] = halo(dict(window), inputs, fresh, regions)
        result["mask_edge_instability"] = edge_steadiness(frames, segmenter=segmenter)
    if "face" in named:
        # the face's edge inside the person: moving classes get bilinear masks in the engine
        result["mask_edge_instability_face"] = edge_steadiness(frames, segmenter=segmenter, cls="face", guided=False)
    return result


def room_change(frames, look, perf, *, change_after: float = 3.0, seconds: float = 8.0) -> dict:
    """Brighten the room (a light switched on) and time how long until the output's background shows it."""
    lit = [cv2.convertScaleAbs(f, alpha=1.0, beta=40) for f in frames]
    switch = {"frames": frames}

    class Switching(FramesSource):
        def read(self):
            self.frames = switch["frames"]
            return super().read()

    seen: list[tuple[float, float]] = []  # (time, mean abs change of output vs before, in sure background)
    ref_out: dict[str, np.ndarray] = {}

    class Watch:
        name = "watch"

        def start(self, *a):
            pass

        def send(self, frame, pixels):
            small = cv2.resize(pixels, (160, 90), interpolation=cv2.INTER_AREA).astype(np.int16)
            if switch["frames"] is frames:  # until the light goes on: remember the latest output
                if time.monotonic() > t_start + change_after - 0.5:
                    probs = engine.renderer._probs
                    bg = cv2.resize(probs.mask(["background"]), (160, 90)) > 0.97
                    ref_out["bg"] = cv2.erode(bg.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
                    ref_out["before"] = small
                return
            if ref_out["bg"].any():
                diff = np.abs(small - ref_out["before"])[ref_out["bg"]]
                seen.append((time.monotonic(), float(diff.mean())))

        def close(self):
            pass

    cap = Capture(period=len(frames))
    app = _live_app(EngineConfig(source="bench", perf=perf), look, Switching(frames, 30.0, name="room change"),
                    [cap, Watch()])
    engine = app.engine

    t_start = time.monotonic()
    app.start()
    while time.monotonic() < t_start + change_after:
        time.sleep(0.02)
    t_change = time.monotonic()
    switch["frames"] = lit
    while time.monotonic() < t_change + seconds:
        time.sleep(0.05)
    plate = engine.renderer.plate
    app.stop()
    # the lit room is +40 everywhere; the styled background moves by roughly that once restyled
    shown = next((t for t, d in seen if t >= t_change and d > 12), None)
    return {"change_to_styled_output_ms": None if shown is None else round((shown - t_change) * 1000),
            "plate_change_to_styled_ms": [round(s * 1000) for s in (plate.change_to_styled_s if plate else [])][-3:]}


def naive_paper_method(frame: np.ndarray, n: int) -> float:
    """DABNet + one TransformerNet per style, torch eager, full size, sequential: seconds per frame."""
    import torch

    from .segment.cityscapes import MEAN_BGR, CityscapesSegmenter
    from .style.johnson import TransformerNet

    seg = CityscapesSegmenter(backend="torch")
    nets = [TransformerNet().eval(), TransformerNet().eval()]  # car and road styles; timing needs no weights
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        with torch.inference_mode():
            x = frame.astype(np.float32) - MEAN_BGR
            x = torch.from_numpy(np.ascontiguousarray(x[:, :, ::-1])).permute(2, 0, 1)[None]
            labels = seg.net.forward_full(x)[0].argmax(0).numpy()
            rgb = torch.from_numpy(np.ascontiguousarray(frame[:, :, ::-1])).permute(2, 0, 1)[None].float()
            out = frame.astype(np.float32)
            for net, cls in zip(nets, (13, 0), strict=True):  # car, road
                styled = net(rgb)[0].clamp(0, 255).permute(1, 2, 0).numpy()[:, :, ::-1]
                m = (labels == cls)[..., None]
                out = m * styled + (1 - m) * out
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _clips(args) -> list[str | None]:
    return args.clip or [None]


def _clip(args, path: str | None) -> tuple[list[np.ndarray], str]:
    return clip_frames(path, (1280, 720), ping_pong=True, max_seconds=args.clip_seconds)


# the figures whose run-to-run range is printed next to their median (dotted paths into one run's result)
SPREAD = ("fps", "cpu_percent_of_one_core", "latency_ms.p95", "dropped", "rss_mb",
          "steadiness.instability_person.ours_vs_input", "steadiness.instability_background.ours_vs_input",
          "steadiness.instability_face.ours_vs_input", "steadiness.instability_body.ours_vs_input",
          "steadiness.currency_psnr_db", "steadiness.pops_background", "fine_flow_share",
          "cpu_stolen_percent_of_one_core")


def median_of_runs(runs: list[dict]) -> dict:
    """One result from several runs of the same measurement: every number is the median over the runs
    (these machines drift 15-35% from minute to minute, so one run can mislead) but RSS, which is the
    first run's; ``runs`` says how many, and ``spread`` gives the lowest and highest value of the
    headline figures."""
    if len(runs) == 1:
        return runs[0]
    out = _median_tree(runs)
    if "rss_mb" in runs[0]:  # later runs also hold what the analysis loaded (the naive path's networks)
        out["rss_mb"] = runs[0]["rss_mb"]
    out["runs"] = len(runs)
    spread = {}
    for path in SPREAD:
        values = [v for v in (_dig(r, path) for r in runs) if _is_number(v)]
        if values:
            spread[path] = [min(values), max(values)]
    out["spread"] = spread
    return out


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _dig(tree, path: str):
    for key in path.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _median_tree(items: list):
    first = items[0]
    if isinstance(first, dict):
        keys = dict.fromkeys(k for it in items if isinstance(it, dict) for k in it)
        return {k: _median_tree([it[k] for it in items if isinstance(it, dict) and k in it]) for k in keys}
    numbers = [v for v in items if _is_number(v)]
    if numbers and len(numbers) == len([v for v in items if v is not None]):
        m = float(np.median(numbers))
        return int(m) if all(isinstance(v, int) for v in numbers) and m.is_integer() else round(m, 3)
    return first


def scenario_bg720(args) -> dict:
    """The room styled behind a person (background plate), per clip."""
    spec = f"background={getattr(args, 'room_style', None) or 'starry-blue'}"
    look = Look.from_specs([spec])
    results = {}
    for path in _clips(args):
        frames, name = _clip(args, path)
        runs = []
        for k in range(args.runs):
            _progress(name, spec, k, args.runs)
            stats, cap = run_live(frames, look, PerfSettings(), seconds=args.seconds, record=True)
            runs.append({"output_size": "1280x720", "look": spec, **_live_figures(stats),
                         "steadiness": steadiness(frames, look, cap, naive_frames=args.naive_window)})
        result = median_of_runs(runs)
        if args.room_change:
            result["room_change"] = room_change(frames, look, PerfSettings())
        results[name] = result
    return results


def _progress(clip: str, what: str, k: int, runs: int) -> None:
    """Progress goes to stderr: with ``--json`` stdout carries the document alone."""
    print(f"   {clip}: {what}" + (f", run {k + 1} of {runs}" if runs > 1 else ""), file=sys.stderr, flush=True)


def scenario_person720(args) -> dict:
    """The person (or, with ``--segmenter person-face``, the face and the body) styled in front of an
    untouched room, per clip, in the chosen moving mode and in sync mode."""
    segmenter = getattr(args, "segmenter", None) or "person"
    specs = getattr(args, "assign", None) or ["person=candy-pop"]
    look = Look.from_specs(specs)
    look.check_classes(segmenter_classes(segmenter))
    results = {}
    modes = [args.person_moving] + (["sync"] if args.person_moving != "sync" and args.compare_sync else [])
    for path in _clips(args):
        frames, name = _clip(args, path)
        runs: dict[str, list[dict]] = {mode: [] for mode in modes}
        refresh = PerfSettings.refresh if args.person_refresh is None else args.person_refresh
        for k in range(args.runs):  # the modes alternate, so each mode's median spans the same minutes
            for mode in modes:
                _progress(name, f"{' '.join(specs)} ({mode})", k, args.runs)
                perf = PerfSettings(style_size=args.person_style_size, moving=mode, refresh=refresh)
                stats, cap = run_live(frames, look, perf, seconds=args.seconds, record=True, segmenter=segmenter)
                runs[mode].append({"output_size": "1280x720", "segmenter": segmenter, "look": " ".join(specs),
                                   "style_size": args.person_style_size, "refresh": perf.refresh,
                                   **_live_figures(stats),
                                   "steadiness": steadiness(frames, look, cap, naive_frames=args.naive_window,
                                                            segmenter=segmenter)})
        results[name] = {mode: median_of_runs(r) for mode, r in runs.items()}
    return results


def scenario_cityscapes(args) -> dict:
    from .io.images import read_image

    frame = read_image(args.cityscapes_frame)
    look = Look.from_specs(["car=candy-pop", "road=starry-blue"])
    perf = PerfSettings(style_size=1024, plate="off")
    seg_options = {"size": (512, 1024)}
    stats, _ = run_live([frame], look, perf, seconds=args.seconds, fps=30.0, segmenter="cityscapes",
                        seg_options=seg_options)
    result = {"frame": os.path.basename(args.cityscapes_frame), "size": "1024x2048",
              "look": "car=candy-pop road=starry-blue", "seg_size": "512x1024", "style_size": 1024,
              **_live_figures(stats)}
    if args.compare_naive:
        naive_s = naive_paper_method(frame, max(1, args.naive_frames))
        ours_s = (stats["stages_ms"]["process"] + (stats["stages_ms"].get("blend") or 0.0)) / 1000
        result["naive_s_per_frame"] = round(naive_s, 2)
        result["ours_s_per_frame"] = round(ours_s, 3)
        result["speedup_vs_naive"] = round(naive_s / ours_s, 1)
    result["paper_fps_on_p100"] = PAPER_FPS
    return result


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (first-run allocations, lazy sessions)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1000, 1)


def scenario_models(args) -> dict:
    """Each network alone at the sizes the engine uses, ONNX Runtime and torch eager side by side."""
    import torch

    from .segment.cityscapes import CityscapesSegmenter
    from .segment.person import PersonSegmenter
    from .style.catalog import create
    from .style.johnson import TransformerNet

    frames, _ = clip_frames(_clips(args)[0], (1280, 720))
    f720 = frames[0]
    f360 = cv2.resize(f720, (640, 360), interpolation=cv2.INTER_AREA)
    n = args.repeats
    out: dict = {"repeats": n, "ms": {}}
    ms = out["ms"]
    for backend in ("onnx", "torch"):
        seg = PersonSegmenter(backend=backend)
        key = f"person segmenter 144x256 ({seg.backend}), from a 720p frame"
        ms[key] = _median_ms(lambda s=seg: s.segment(f720), n)
    if args.cityscapes_frame:
        from .io.images import read_image

        street = read_image(args.cityscapes_frame)
        for backend in ("onnx", "torch"):
            seg = CityscapesSegmenter(backend=backend, size=(512, 1024))
            ms[f"DABNet 512x1024 ({seg.backend})"] = _median_ms(lambda s=seg: s.segment(street), max(3, n // 4))
    for size, frame in (("640x360", f360), ("1280x720", f720)):
        ms[f"built-in style starry-blue {size} (onnx)"] = _median_ms(lambda f=frame: create("starry-blue").apply(f),
                                                                      max(3, n // 4))
    net = TransformerNet().eval()
    x = torch.rand(1, 3, 360, 640) * 255
    with torch.inference_mode():
        ms["Johnson TransformerNet 640x360 (torch eager)"] = _median_ms(lambda: net(x), 3)
    for name in ("blur", "pixelate", "cartoon", "sketch", "grey"):
        ms[f"filter {name} 1280x720"] = _median_ms(lambda s=name: create(s).apply(f720), n)
    out["faces"] = _face_figures(frames, n)
    out["johnson_vs_multistyle_ratio_640x360"] = round(
        ms["Johnson TransformerNet 640x360 (torch eager)"] / ms["built-in style starry-blue 640x360 (onnx)"], 2)
    return out


def _face_figures(frames: list[np.ndarray], n: int) -> dict:
    """The person-face segmenter's cost: each face network alone, then the whole clip tracked frame
    by frame (ms per frame for detection, landmarks and the tracking arithmetic, how often the
    detector ran, faces per frame)."""
    from .segment.face_mesh import roi_from_detection
    from .segment.person_face import PersonFaceSegmenter

    seg = PersonFaceSegmenter()
    det, mesh = seg.tracker.detector, seg.tracker.landmarker
    f = frames[0]
    out: dict = {"ms": {f"face detector 128x128 ({det.backend}), from a 720p frame": _median_ms(lambda: det.detect(f),
                                                                                                n)}}
    found = det.detect(f)
    if len(found):
        roi = roi_from_detection(found.boxes[0], found.keypoints[0], f.shape[:2])
        out["ms"][f"face mesh 192x192 ({mesh.backend}), one face"] = _median_ms(lambda: mesh.run(f, roi), n)
    seg.tracker.reset()
    seg.tracker.reset_stats()
    times = []
    for frame in frames:
        t0 = time.perf_counter()
        seg.segment(frame)
        times.append(time.perf_counter() - t0)
    per = _rounded(seg.tracker.stats_per_frame())
    person_ms = _median_ms(lambda: seg.person.segment(f), n)
    out["tracked_clip"] = {"frames": len(frames), **per,
                           "person_face_segmenter_ms_median": round(float(np.median(times)) * 1000, 1),
                           "person_segmenter_alone_ms_median": person_ms}
    return out


def _rounded(per_frame: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2 if k.endswith("_ms") else 3) for k, v in per_frame.items()}


def _live_figures(stats: dict) -> dict:
    keep = ("fps", "latency_ms", "stages_ms", "dropped", "captured", "output", "errors", "cpu_percent_of_one_core",
            "rss_mb", "plate_restyles", "plate_tiles_restyled", "plate_restyle_ms", "moving_style_refresh_hz", "faces",
            "fine_flow_share", "cpu_stolen_percent_of_one_core")
    return {k: stats[k] for k in keep if k in stats}


RUNNERS = {"models": scenario_models, "bg720": scenario_bg720, "person720": scenario_person720,
           "cityscapes": scenario_cityscapes}


def run(args) -> dict:
    import torch

    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                           "processor": platform.processor() or platform.machine()},
               "scenarios": {}}
    for name in args.scenarios:
        if name == "cityscapes" and not args.cityscapes_frame:
            results["scenarios"][name] = {"skipped": "no --cityscapes-frame given "
                                          "(e.g. ../shared/data/cityscapes_frame.png)"}
            continue
        print(f"== {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        results["scenarios"][name] = RUNNERS[name](args)
        results["scenarios"][name]["bench_seconds"] = round(time.perf_counter() - t0, 1)
        if not args.json:
            print(json.dumps(results["scenarios"][name], indent=2), flush=True)
    return results
