"""Background work (style refreshes, plate restyles) yields every core to the frame path, yet never starves."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import pytest

from cbs_obs.models import device

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="the idle scheduling class is Linux's")


def _in_thread(fn):
    out = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as e:  # handed to the test
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    if "error" in out:
        raise out["error"]
    return out["value"]


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_background_work_runs_in_the_idle_class():
    """Idle-class work leaves its core counted as free, so a worker the frame loop wakes goes there."""
    def mark():
        device.background_work()
        return os.sched_getscheduler(0), device.is_background()

    assert _in_thread(mark) == (os.SCHED_IDLE, True)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the calling thread is untouched


def test_a_starved_background_job_steps_up_or_says_what_to_do(caplog):
    """Every core busy with normal work (a frame path too heavy for the machine): an idle-class styler
    would never refresh. After one starved job it runs at nice 10 (or, where the OS refuses that, the
    user reads what to change)."""
    spin = "import time\nend = time.time() + 5\nwhile time.time() < end: pass"
    busy = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(os.cpu_count() or 1)]

    def starved_job():
        device.background_work()
        t0 = time.monotonic()
        with device.background_job():
            _spin(0.3)  # 0.3 s of CPU that cannot get a core
        nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return time.monotonic() - t0, os.sched_getscheduler(0), nice

    try:
        time.sleep(0.5)  # the spinners are running
        with caplog.at_level(logging.INFO, logger="cbs_obs.models.device"):
            wall, policy, nice = _in_thread(starved_job)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert wall > device.STARVED_AFTER_S, f"the job was not starved ({wall:.1f} s): the test proves nothing"
    if policy == os.SCHED_OTHER:
        assert nice == 10 and "now runs at nice 10" in caplog.text
    else:  # an unprivileged user cannot leave the idle class
        assert "leaves no CPU for styling" in caplog.text and "--style-size" in caplog.text


def test_a_background_job_with_cpu_to_spare_stays_idle_class():
    def job():
        device.background_work()
        with device.background_job():
            _spin(0.2)
        return os.sched_getscheduler(0)

    assert _in_thread(job) == os.SCHED_IDLE
