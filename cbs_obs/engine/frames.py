"""Frames and the one-slot, latest-wins hand-off between pipeline stages.

A slot holds at most one item, so a slow stage never builds a backlog: latency cannot grow.
For offline sources (a file processed as fast as possible) ``put(block=True)`` waits for the
consumer instead, so no frame is lost.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Frame:
    pixels: np.ndarray  # BGR uint8 H x W x 3
    index: int
    t_capture: float  # time.monotonic() when the frame was read from the source
    signal: bool = True  # False for "no signal" cards while a source is being retried


@dataclass
class Processed:
    """A composited frame on its way to the outputs, with its timing trail."""

    frame: Frame
    pixels: np.ndarray  # or, from the frame loop to the output thread, the frame's layers still to blend
    stages: dict[str, float] = field(default_factory=dict)  # stage -> seconds


class Closed(Exception):
    """The slot was closed: the pipeline is shutting down."""


class LatestSlot(Generic[T]):
    def __init__(self):
        self._cond = threading.Condition()
        self._item: T | None = None
        self._seq = 0
        self._taken = True
        self._closed = False
        self.overwritten = 0  # items replaced before anyone took them

    def put(self, item: T, *, block: bool = False) -> int:
        """Store ``item``; returns its sequence number."""
        with self._cond:
            if block:
                while not self._taken and not self._closed:
                    self._cond.wait(0.1)
            if self._closed:
                raise Closed
            if not self._taken:
                self.overwritten += 1
            self._item, self._seq, self._taken = item, self._seq + 1, False
            self._cond.notify_all()
            return self._seq

    def get(self, after: int = 0, timeout: float | None = None) -> tuple[int, T] | None:
        """The newest item with sequence number > ``after``; None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._seq <= after and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining if remaining is not None else 0.25)
            if self._closed and self._seq <= after:
                raise Closed
            self._taken = True
            self._cond.notify_all()
            return self._seq, self._item  # type: ignore[return-value]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
