"""``cbs-obs stylize``: images and videos, offline."""
from __future__ import annotations

import time
from pathlib import Path

from ..argtypes import positive_int as _positive_int
from ..errors import InputError
from .options import (_add_look_options, _add_remote_options, _add_steady_options, _build_stylizer, _connect_remote,
                      _look, _perf_settings)


def cmd_stylize(args) -> int:
    from ..io.images import read_image, write_image
    from ..overlay import overlay
    from ..io.video import is_video

    if not args.assign:
        raise InputError("nothing to do: give at least one --assign CLASS=STYLE (e.g. --assign background=blur)")
    _connect_remote(args, timeout_s=120.0)
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
        from ..segment import segmenter_kind

        write_image(args.overlay, overlay(frame, result.probs.labels(frame.shape[:2]), stylizer.classes,
                                          colours=segmenter_kind(args.segmenter).palette))
        print(f"wrote overlay {args.overlay}")
    return 0



def _check_neural_size(args, width: int, height: int) -> None:
    """Neural styles need memory that grows with the picture's area; refuse what would not fit, and say how
    to go on (a bigger cap, or styling at a smaller size), instead of failing deep in ONNX Runtime."""
    from ..style.catalog import is_neural

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

    from ..engine.render import Renderer
    from ..io.video import create_writer, frames, open_video

    cap, fps, count = open_video(args.input)
    _check_neural_size(args, int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    stylizer = _build_stylizer(args)
    perf = _perf_settings(args, moving="sync")
    writer = None
    t0, n = time.perf_counter(), 0
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="worker") as pool:
        renderer = Renderer(stylizer, perf, pool, args.segmenter, realtime=False, fps=fps or 30.0)
        try:
            for frame in tqdm(frames(cap), total=count or None, unit="frame", desc="stylize"):
                out, _ = renderer.render(frame, stylizer.look, t=n / (fps or 30.0))
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



def register(sub) -> None:
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
    _add_remote_options(s)
    s.set_defaults(func=cmd_stylize)
