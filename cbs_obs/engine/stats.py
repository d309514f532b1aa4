"""Live figures: output fps, capture-to-output latency p50/p95, per-stage medians, drops, errors."""
from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


def _pct(values, q: float) -> float | None:
    return float(np.percentile(np.fromiter(values, float), q)) if values else None


class Stats:
    def __init__(self, window: int = 300):
        self._lock = threading.Lock()
        self.window = window
        self.stages: dict[str, deque[float]] = {}
        self.latency: deque[float] = deque(maxlen=window)
        self.out_times: deque[float] = deque(maxlen=window)
        self.captured = self.processed = self.output = self.errors = 0
        self.no_signal_frames = 0
        self.source_state = "starting"
        self.last_error = ""
        self.started = time.monotonic()

    def reset(self) -> None:
        """Forget everything so far (benchmarks measure the steady state, after warm-up)."""
        self.__init__(self.window)

    def stage(self, name: str, seconds: float) -> None:
        with self._lock:
            self.stages.setdefault(name, deque(maxlen=self.window)).append(seconds)

    def captured_frame(self) -> None:
        with self._lock:
            self.captured += 1

    def processed_frame(self) -> None:
        with self._lock:
            self.processed += 1

    def output_frame(self, t_capture: float, signal: bool = True) -> None:
        now = time.monotonic()
        with self._lock:
            self.output += 1
            self.out_times.append(now)
            if signal:
                self.latency.append(now - t_capture)
            else:
                self.no_signal_frames += 1

    def error(self, message: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = message

    def snapshot(self) -> dict:
        """The figures; with networks on an inference server (``--remote``) also its state under ``remote``."""
        from ..models.inference import remote_status

        remote = remote_status()
        with self._lock:
            times = list(self.out_times)
            fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
            lat = list(self.latency)
            return {
                "fps": round(fps, 2),
                "latency_ms": {"p50": _ms(_pct(lat, 50)), "p95": _ms(_pct(lat, 95))},
                "stages_ms": {k: _ms(_pct(v, 50)) for k, v in self.stages.items()},
                "captured": self.captured,
                "processed": self.processed,
                "output": self.output,
                "dropped": max(0, self.captured - self.processed),
                "errors": self.errors,
                "last_error": self.last_error,
                "no_signal_frames": self.no_signal_frames,
                "source": self.source_state,
                "uptime_s": round(time.monotonic() - self.started, 1),
                **({"remote": remote} if remote is not None else {}),
            }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def format_line(s: dict) -> str:
    stages = " ".join(f"{k}={v:.0f}" for k, v in s["stages_ms"].items() if v is not None)
    lat = s["latency_ms"]
    p50 = f"{lat['p50']:.0f}" if lat["p50"] is not None else "-"
    p95 = f"{lat['p95']:.0f}" if lat["p95"] is not None else "-"
    remote = s.get("remote")
    server = f" | server {remote['state']}" if remote else ""
    return (f"fps {s['fps']:5.1f} | latency p50 {p50} ms p95 {p95} ms | {stages} ms | "
            f"dropped {s['dropped']} | errors {s['errors']} | source {s['source']}{server}")
