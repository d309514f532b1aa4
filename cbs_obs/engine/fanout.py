"""Hands each composited frame to every output, each on a worker of its own.

A virtual camera that stalls, a recording on a disk that fills, a preview window that hangs: any
one slow output must not hold back the others. So every output gets its own thread and its own
latest-wins slot; a slow output simply skips frames (counted as its ``dropped``). For offline runs
(``block=True``) every output receives every frame, in order, and the engine waits for the slowest.
A failing output is closed and dropped, the others keep going.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .frames import Closed, LatestSlot, Processed

log = logging.getLogger(__name__)


class OutputWorker:
    def __init__(self, output, on_error: Callable[[object, str], None]):
        self.output = output
        self.on_error = on_error
        self.slot: LatestSlot[Processed | None] = LatestSlot()
        self.sent = 0
        self.failed = False
        self._progress = threading.Condition()
        self._given = 0  # sequence number of the newest item handed over
        self._done = 0  # sequence number of the newest item sent (or given up on)
        self._thread = threading.Thread(target=self._loop, name=f"output-{output.name}", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return self.slot.overwritten

    def put(self, item: Processed | None, *, block: bool) -> None:
        if self.failed:
            return
        try:
            seq = self.slot.put(item, block=block)
        except Closed:
            return
        with self._progress:
            self._given = max(self._given, seq)

    def _finished(self, seq: int) -> None:
        with self._progress:
            self._done = seq
            self._progress.notify_all()

    def _loop(self) -> None:
        after = 0
        while True:
            try:
                got = self.slot.get(after, timeout=0.5)
            except Closed:
                break
            if got is None:
                continue
            after, item = got
            if item is None:  # end of stream
                self._finished(after)
                break
            try:
                self.output.send(item.frame, item.pixels)
                self.sent += 1
            except Exception as e:
                self.failed = True
                self.on_error(self.output, f"{self.output.name} output stopped: {e}")
                close_quietly(self.output)
                self.slot.close()
                self._finished(1 << 62)
                break
            self._finished(after)

    def drain(self, timeout: float) -> None:
        """Wait until this output has sent everything it was given (offline runs lose no frame)."""
        with self._progress:
            self._progress.wait_for(lambda: self._done >= self._given, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self.slot.close()
        self._thread.join(timeout)


class Fanout:
    def __init__(self, outputs, on_error: Callable[[object, str], None]):
        self.on_error = on_error
        self.workers = [OutputWorker(o, self._failed) for o in outputs]

    def _failed(self, output, message: str) -> None:
        log.error("%s", message)
        self.on_error(output, message)

    @property
    def outputs(self) -> list:
        return [w.output for w in self.workers if not w.failed]

    def send(self, item: Processed, *, block: bool) -> None:
        for w in self.workers:
            w.put(item, block=block)

    def stats(self) -> dict[str, dict[str, int]]:
        return {w.output.name: {"sent": w.sent, "dropped": w.dropped, "failed": int(w.failed)} for w in self.workers}

    def drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) until every output has sent what it was given."""
        for w in self.workers:
            if not w.failed:
                w.drain(timeout)

    def close(self, *, drain_s: float = 10.0) -> None:
        """Let every output finish what it holds (bounded), then stop the workers."""
        self.drain(drain_s)
        for w in self.workers:
            w.stop()


def close_quietly(output) -> None:
    try:
        output.close()
    except Exception as e:
        log.warning("closing %s failed: %s", output.name, e)
