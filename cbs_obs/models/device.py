"""The one place that decides where networks run (torch device, ONNX Runtime providers, threads).

Everything else asks here, so a GPU path stays correct by construction: set ``CBS_OBS_DEVICE``
(cpu, cuda, mps, auto) or pass ``--device`` and every model follows. torch is imported only when a
torch network asks (an engine running ONNX Runtime models never loads it: ~0.4 GB and seconds saved).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

from ..errors import SettingsError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

_CHOICES = ("auto", "cpu", "cuda", "mps")
_requested = os.environ.get("CBS_OBS_DEVICE", "auto")


def onnx_preferred() -> bool:
    """Whether networks should run in ONNX Runtime rather than torch: on the CPU (faster there, no torch
    needed) and where ONNX Runtime itself has the GPU; not when torch would have a GPU that ORT lacks."""
    if any(p != "CPUExecutionProvider" for p in ort_providers()):
        return True
    if _requested == "cpu":
        return True
    if _requested == "auto":
        import sys

        if sys.platform == "darwin":  # Apple GPUs: torch's MPS, unless ORT has CoreML (above)
            return not torch_device().type == "mps"
        return not (os.path.exists("/dev/nvidia0") or os.path.exists("/proc/driver/nvidia/version"))
    return False


def set_device(name: str) -> None:
    global _requested
    if name not in _CHOICES:
        raise SettingsError(f"unknown device {name!r}; choose one of {', '.join(_CHOICES)}")
    _requested = name
    torch_device.cache_clear()
    ort_providers.cache_clear()


@lru_cache(maxsize=1)
def torch_device() -> torch.device:
    import torch

    if _threads:
        torch.set_num_threads(_threads)
    if _requested == "cuda" or (_requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SettingsError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
        return torch.device("cuda")
    if _requested == "mps" or (_requested == "auto" and getattr(torch.backends, "mps", None)
                               and torch.backends.mps.is_available()):
        if not torch.backends.mps.is_available():
            raise SettingsError("--device mps was asked for but this machine has no MPS; use --device cpu")
        return torch.device("mps")
    return torch.device("cpu")


@lru_cache(maxsize=1)
def ort_providers() -> tuple[str, ...]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    # onnxruntime-gpu installed means a GPU is meant to be used; no torch needed to decide
    if _requested in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ("CUDAExecutionProvider", "CPUExecutionProvider")
    if _requested in ("mps", "auto") and "CoreMLExecutionProvider" in available:
        return ("CoreMLExecutionProvider", "CPUExecutionProvider")
    return ("CPUExecutionProvider",)


_threads: int | None = None
_half = os.environ.get("CBS_OBS_HALF", "") not in ("", "0")


def set_half(on: bool) -> None:
    """fp16 for the torch networks (meant for GPUs; it works on the CPU too, slowly)."""
    global _half
    _half = bool(on)


def torch_dtype() -> torch.dtype:
    import torch

    return torch.float16 if _half else torch.float32


def set_threads(n: int) -> None:
    """Threads per network (torch intra-op and each ONNX Runtime session created from now on)."""
    global _threads
    if n < 1:
        raise SettingsError(f"threads must be 1 or more, got {n}")
    _threads = n
    import sys

    if "torch" in sys.modules:  # otherwise torch picks it up from threads() when a torch network loads
        sys.modules["torch"].set_num_threads(n)


def threads() -> int:
    if _threads:
        return _threads
    env = os.environ.get("CBS_OBS_THREADS")
    return int(env) if env else max(1, os.cpu_count() or 1)


_local = threading.local()


def frame_ops_on_one_thread() -> None:
    """Live engines run OpenCV's per-frame work (resizes, filters, blends) on the calling thread only.
    The frame loop already overlaps with the segmentation and styling threads; OpenCV's own worker
    pool on top of them only contends for the same cores (on 2 cores: about 5 ms more CPU per 720p
    frame for the same output)."""
    import cv2

    cv2.setNumThreads(1)


def background_work() -> None:
    """Mark the calling thread as background work (styling while frames keep flowing): it runs on the
    CPU time the frame path leaves and its networks on one core, so the frame loop never waits for it;
    it simply refreshes as often as the spare CPU allows.

    On Linux it runs in the idle scheduling class rather than at a high nice value: the scheduler
    counts a core that runs only idle-class work as free, so a segmentation worker the frame loop
    wakes goes to that core instead of sharing the frame loop's own while the styler keeps the other
    (capture-to-output latency p95 of a styled person on a real clip, 2 cores: 66-79 -> 47-56 ms, the
    styles refreshing as often). See ``background_job`` for a machine with no CPU to spare."""
    _local.background = True
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
        _local.idle = True
        return
    except (AttributeError, OSError):  # not Linux, or not allowed here: a high nice value instead
        pass
    if hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:  # not allowed here: the one-core session still leaves room
            pass


STARVED_AFTER_S = 2.0  # a background job this long that waited for a CPU 3x as long as it ran is starved


def _schedstat() -> tuple[float, float] | None:
    """(seconds this thread ran, seconds it waited for a CPU while runnable), from Linux's schedstat."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as f:
            ran, waited = f.read().split()[:2]
        return int(ran) / 1e9, int(waited) / 1e9
    except (OSError, ValueError):
        return None


@contextmanager
def background_job():
    """Around one piece of background work (a style refresh, a plate restyle). When the frame path
    leaves it almost no CPU (a machine too slow for the chosen sizes: idle-class work then waits and
    waits), the thread steps up to nice 10 so styles still refresh; where the OS refuses that (an
    unprivileged user cannot leave the idle class) the user is told once what to do. Starving is
    waiting to run, not running elsewhere: a network's own worker threads do not count."""
    start = _schedstat() if getattr(_local, "idle", False) else None
    wall0 = time.monotonic()
    try:
        yield
    finally:
        end = _schedstat() if start is not None else None
        wall = time.monotonic() - wall0
        if end is not None and wall > STARVED_AFTER_S and end[1] - start[1] > 3 * (end[0] - start[0]):
            _local.idle = False
            try:
                os.sched_setscheduler(threading.get_native_id(), os.SCHED_OTHER, os.sched_param(0))
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
                log.info("background styling had no CPU to spare for %.1f s: it now runs at nice 10", wall)
            except OSError:
                log.warning("the frame loop leaves no CPU for styling (%.1f s for one refresh): styles refresh "
                            "rarely; use a smaller --style-size or --output-size, or --budget 30", wall)


def is_background() -> bool:
    return getattr(_local, "background", False)


def ort_session(model: str | bytes, *, one_thread: bool = False):
    """An ONNX Runtime session with spinning off: engines that alternate would otherwise fight.
    ``one_thread``: run on the caller's own thread only (a network styling in the background, or one
    small enough that handing work to a second thread costs more than it saves)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1 if one_thread else threads()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=list(ort_providers()))
