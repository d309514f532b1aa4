"""The live engine: capture -> (segmentation || styling) -> composite -> outputs.

Threads, one job each, connected by latest-wins slots (latency never grows):
  capture   reads the source (paced for files), retries lost sources with backoff and sends
            "no signal" cards meanwhile;
  process   takes the newest frame, runs segmentation and styling of that same frame in two
            parallel workers, then makes its masks at output size;
  output    blends each live frame's layers (while process prepares the next frame), then hands it to
            every output, each on a worker of its own (fanout.py),
            so a slow output skips frames instead of delaying the others; a failing output is
            dropped, the others keep going.
The look is swapped whole by ``set_look`` and read once per frame, without locks.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import CbsError, InputError
from ..look import Look
from ..models.device import frame_ops_on_one_thread
from ..segment import create_segmenter
from ..stylizer import ClassStylizer
from .card import no_signal_card
from .fanout import Fanout, close_quietly
from .frames import Closed, Frame, LatestSlot, Processed
from .render import PerfSettings, Renderer
from ..io.sources import Pacer, Source, SourceLost, SourceOptions, open_source
from .stats import Stats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    source: str = "demo"
    source_options: SourceOptions = field(default_factory=SourceOptions)
    segmenter: str = "person"
    segmenter_options: dict = field(default_factory=dict)
    output_size: tuple[int, int] | None = None  # (W, H); None: the source's size
    perf: PerfSettings = field(default_factory=PerfSettings)
    retry_max_s: float = 5.0
    max_frames: int | None = None  # stop after this many output frames (tests, benchmarks)


class Engine:
    def __init__(self, config: EngineConfig, look: Look | None = None, outputs=(), *,
                 stylizer: ClassStylizer | None = None, source: Source | None = None):
        self.config = config
        self.stats = Stats()
        self.outputs = list(outputs)
        self.stylizer = stylizer or ClassStylizer(
            create_segmenter(config.segmenter, **config.segmenter_options), style_size=config.perf.style_size)
        if look is not None:
            self.stylizer.set_look(look)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="worker")
        self.renderer: Renderer | None = None  # made at start, once the source says whether it is live
        self.source: Source | None = source  # given directly (tests, embedding) or opened from config.source
        self._frames: LatestSlot[Frame] = LatestSlot()
        self._processed: LatestSlot[Processed] = LatestSlot()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._close_lock = threading.Lock()
        self.size: tuple[int, int] | None = None  # output (W, H)
        self.fps = 30.0
        self._first: np.ndarray | None = None
        self._fanout: Fanout | None = None

    # -- control ------------------------------------------------------------------------------
    @property
    def look(self) -> Look:
        return self.stylizer.look

    def set_look(self, look: Look) -> Look:
        """Validated in full before it replaces the current look; a bad look changes nothing."""
        return self.stylizer.set_look(look)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.stylizer.classes

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "Engine":
        """Open the source and every output now, so a missing camera or driver fails at once."""
        if self.source is None:
            self.source = open_source(self.config.source, self.config.source_options)
        try:
            self.source.open()
            first = self.source.read()
        except SourceLost as e:
            raise InputError(str(e)) from None
        if first is None:
            raise InputError(f"{self.source.name} gave no frames")
        self.fps = float(self.source.fps or 30.0)
        h, w = first.shape[:2]
        self.size = self.config.output_size or (w, h)
        self._first = first
        self.outputs = self._start_outputs()
        self._fanout = Fanout(self.outputs, self._output_failed)
        if self.source.realtime:
            frame_ops_on_one_thread()
        self.renderer = Renderer(self.stylizer, self.config.perf, self._pool, self.config.segmenter,
                                 realtime=self.source.realtime, fps=self.fps)
        self.stats.source_state = "ok"
        for name, fn in (("capture", self._capture_loop), ("process", self._process_loop),
                         ("output", self._output_loop)):
            t = threading.Thread(target=self._guard(fn), name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _start_outputs(self) -> list:
        """Start every output. An output marked ``optional`` (the virtual camera nobody asked for by name)
        that cannot start is left out with a warning; any other failure undoes the start and is raised."""
        started = []
        for out in self.outputs:
            try:
                out.start(*self.size, self.fps)
            except Exception as e:
                if getattr(out, "optional", False) and isinstance(e, CbsError):
                    log.warning("%s; continuing without it", e)
                    self.stats.error(str(e))
                    continue
                for done in started:
                    close_quietly(done)
                self.source.close()
                raise
            started.append(out)
        return started

    def _output_failed(self, output, message: str) -> None:
        self.stats.error(message)
        try:
            self.outputs.remove(output)
        except ValueError:
            pass

    def _guard(self, fn):
        """Any thread crashing ends the run (and is reported); the output thread ending is the normal end."""
        def run():
            crashed = False
            try:
                fn()
            except Closed:
                pass
            except Exception:
                crashed = True
                log.exception("engine thread %s crashed", threading.current_thread().name)
                self.stats.error(f"{threading.current_thread().name} crashed")
            finally:
                if crashed or fn == self._output_loop:
                    self._done.set()
        return run

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the source ends, ``max_frames`` is reached or ``stop()`` is called."""
        return self._done.wait(timeout)

    def request_stop(self) -> None:
        """Ask the run to end from any thread (a key press, an API call); ``stop()`` does the cleanup."""
        self._done.set()

    def stop(self) -> None:
        """Idempotent: stops threads, finalizes recordings, releases devices and ports."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._frames.close()
        self._processed.close()
        for t in self._threads:
            t.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._fanout is not None:  # offline runs hand every frame over; live ones do not wait for a stuck output
            self._fanout.close(drain_s=0.0 if self.source is None or self.source.realtime else 10.0)
        if self.renderer is not None:
            self.renderer.close()
        for out in self.outputs:
            close_quietly(out)
        if self.source is not None:
            self.source.close()
        self._done.set()

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- threads ------------------------------------------------------------------------------
    def _capture_loop(self) -> None:
        src = self.source
        assert src is not None
        pacer = Pacer(self.fps) if src.needs_pacing else None
        index = 0
        img = self._first
        while not self._stop.is_set():
            if img is None:
                try:
                    img = src.read()
                except SourceLost as e:
                    if not self._recover(src, str(e)):
                        return
                    continue
                if img is None:
                    log.info("%s ended", src.name)
                    self.stats.source_state = "ended"
                    self._frames.put(None, block=True)  # type: ignore[arg-type]
                    return
            frame = Frame(img, index, time.monotonic())
            index += 1
            self.stats.captured_frame()
            self._frames.put(frame, block=not src.realtime)
            img = None
            if pacer:
                pacer.wait()

    def _recover(self, src: Source, reason: str) -> bool:
        """Retry with backoff; outputs show a no-signal card meanwhile. False when stopping."""
        log.warning("%s; retrying", reason)
        self.stats.source_state = "lost"
        self.stats.error(reason)
        delay, w, h = 0.5, *self.size  # type: ignore[misc]
        while not self._stop.is_set():
            deadline = time.monotonic() + delay
            card = no_signal_card(w, h, f"{src.name}: retrying in {delay:.0f} s" if delay >= 1
                                  else f"{src.name}: reconnecting")
            while time.monotonic() < deadline and not self._stop.is_set():
                self._frames.put(Frame(card, -1, time.monotonic(), signal=False))
                time.sleep(0.2)
            try:
                src.reopen()
                log.info("%s is back", src.name)
                self.stats.source_state = "ok"
                return True
            except (SourceLost, InputError) as e:
                log.debug("retry failed: %s", e)
                delay = min(delay * 2, self.config.retry_max_s)
        return False

    def _to_output_size(self, img: np.ndarray) -> np.ndarray:
        w, h = self.size  # type: ignore[misc]
        if img.shape[1] != w or img.shape[0] != h:
            interp = cv2.INTER_AREA if img.shape[1] > w else cv2.INTER_LINEAR
            img = cv2.resize(img, (w, h), interpolation=interp)
        return img

    def _process_loop(self) -> None:
        after = 0
        while not self._stop.is_set():
            got = self._frames.get(after, timeout=0.5)
            if got is None:
                continue
            after, frame = got
            if frame is None:  # end of a finite source
                self._processed.put(None, block=True)  # type: ignore[arg-type]
                return
            block = not (self.source and self.source.realtime)
            if not frame.signal:
                self._processed.put(Processed(frame, frame.pixels), block=block)
                continue
            try:
                processed = self.process_frame(frame)
            except Exception as e:  # a bad frame or a worker bug: log, skip, keep streaming
                log.warning("frame %d skipped: %s", frame.index, e, exc_info=not isinstance(e, CbsError))
                self.stats.error(f"frame {frame.index}: {e}")
                continue
            self.stats.processed_frame()
            self._processed.put(processed, block=block)

    def process_frame(self, frame: Frame) -> Processed:
        """Segment and style the frame (in parallel, reusing work where allowed) at output size. A live
        frame's layers are blended on the output thread, while this one goes on with the next frame:
        the two overlap on two cores (with a styled face and body the blend is a third of a frame's
        work); a file's frame is composited here."""
        pixels = self._to_output_size(frame.pixels)
        look = self.stylizer.look  # one look snapshot per frame
        if self.source is not None and self.source.realtime:
            out, stages = self.renderer.prepare(pixels, look)
        else:
            out, stages = self.renderer.render(pixels, look)
        for k, v in stages.items():
            self.stats.stage(k, v)
        return Processed(frame, out, stages)

    def _output_loop(self) -> None:
        after = 0
        while not self._stop.is_set():
            got = self._processed.get(after, timeout=0.5)
            if got is None:
                continue
            after, item = got
            if item is None:
                self._fanout.drain()
                return
            if not isinstance(item.pixels, np.ndarray):  # a live frame's layers, blended here
                composition, item.pixels = item.pixels, item.pixels.result()
                self.stats.stage("blend", composition.seconds)
            t0 = time.perf_counter()
            self._fanout.send(item, block=not (self.source and self.source.realtime))
            self.stats.stage("output", time.perf_counter() - t0)
            self.stats.output_frame(item.frame.t_capture, item.frame.signal)
            if self.config.max_frames and self.stats.output >= self.config.max_frames:
                self._fanout.drain()
                return


