"""Soak of the OBS panel's one-click path: Start engine / Stop engine clicked again and again in a real OBS.

An early version froze OBS when the engine answered after Start engine. This walks the streamer's path many
times with the panel's live redraw on: a real OBS 29 (headless under Xvfb, tests/obs_harness.py) already
running, the script added through Tools -> Scripts -> + (xdotool), then per cycle a click on Start engine (the
engine is `cbs-obs run demo` started by the panel, no output flags), the engine answering and the panel
redrawing itself with the class controls, a click on Stop engine, the engine gone.

OBS's UI thread is probed after each click and around the engine's answer with an obs-websocket request that
obs-websocket runs on that thread and answers only when it is free (SetStudioModeEnabled, toggled). A probe
over --limit seconds (default 1) counts as a stall; the exit code is 1 when any probe stalled, a cycle failed,
or OBS exited.

    flock /work/bench.lock nice -n 10 python scripts/obs_panel_soak.py --cycles 20

Needs obs-studio, xvfb, xdotool and ffmpeg (see ../shared/notes/obs-headless.md) and the person model in the
cache (CBS_OBS_CACHE, or the default cache once `cbs-obs` has fetched it).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--limit", type=float, default=1.0, help="a UI-thread probe slower than this is a stall (s)")
    ap.add_argument("--dwell", type=float, default=3.0, help="seconds of probing after the engine answers")
    ap.add_argument("-o", "--output", type=Path, help="write the figures as JSON here too")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cbs-obs-panel-soak-"))
    os.environ["CBS_OBS_CONFIG"] = str(tmp / "cbs-config")  # the engine's token and presets, fresh
    from cbs_obs import paths

    os.environ["CBS_OBS_CACHE"] = str(paths.cache_dir())  # OBS gets a HOME of its own: name the model cache
    print(f"model cache: {paths.cache_dir()}; shots and logs: {tmp}", flush=True)
    from tests.obs_harness import Obs, Xvfb, free_port
    from tests.obs_ui import ScriptsWindow, Screen
    from tests.test_obs import _cli, _engine_pids, _engine_state, _press

    port = free_port()
    x = Xvfb(tmp)
    display = x.start()
    o = Obs(tmp, display, canvas=(1280, 720), env={"CBS_OBS_PORT": str(port)}).start()
    screen = Screen(display, tmp / "shots")
    probes: list[tuple[str, float]] = []
    cycles, failures, starts = [], [], []
    try:
        c = o.client()
        studio = [False]

        def probe(when: str) -> float:
            t0 = time.monotonic()
            try:
                studio[0] = not studio[0]
                c.set_studio_mode_enabled(studio[0])
                took = time.monotonic() - t0
            except Exception as e:  # the request timed out (5 s) or OBS is gone
                took = time.monotonic() - t0
                failures.append(f"probe {when}: {type(e).__name__}: {e}")
            probes.append((when, took))
            return took

        def wait(pred, timeout: float) -> bool:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if pred():
                    return True
                time.sleep(0.1)
            return False

        log_pops = [0]

        def press(button: str) -> None:
            """OBS pops its Script Log up on a warning and it may cover the panel: count it, close it, click."""
            if screen.xdo("search", "--onlyvisible", "--name", "^Script Log$", check=False).split():
                log_pops[0] += 1
                win.close_script_log()
                time.sleep(0.3)
            _press(screen, button)

        def shown_controls() -> int:
            return o.obs_log().count("[cbs-obs] panel shows controls for")

        script = _cli("obs", "plugin-path").stdout.strip()
        win = ScriptsWindow(screen).open()
        win.add_script(script)
        if not wait(lambda: "Loaded python script: cbs_obs_panel.py" in o.obs_log(), 10):
            raise RuntimeError("the script did not load")
        win.enlarge()
        for i in range(args.cycles):
            t_cycle = time.monotonic()
            press("Start engine")
            probe("after Start engine")
            t_click = time.monotonic()
            if not wait(lambda: _engine_state(port) is not None, 90):
                failures.append(f"cycle {i + 1}: the engine did not answer in 90 s")
                break
            starts.append(time.monotonic() - t_click)
            end = time.monotonic() + args.dwell
            while time.monotonic() < end:  # the engine answers; the panel redraws with its classes
                probe("engine answering")
                time.sleep(0.25)
            if not wait(lambda n=i + 1: shown_controls() >= n, 10):
                failures.append(f"cycle {i + 1}: the panel did not show the engine's classes")
            press("Stop engine")
            probe("after Stop engine")
            if not wait(lambda: not _engine_pids(port), 20):
                failures.append(f"cycle {i + 1}: the engine did not stop")
                break
            probe("engine stopped")
            cycles.append(time.monotonic() - t_cycle)
            print(f"cycle {i + 1}: {cycles[-1]:.1f} s (engine answered {starts[-1]:.1f} s after the click), "
                  f"slowest probe so far {max(t for _, t in probes):.2f} s", flush=True)
            if o.proc.poll() is not None:
                failures.append(f"OBS exited with {o.proc.returncode}")
                break
        screen.shot("last")
        c.disconnect()
    finally:
        o.stop()
        x.stop()
    log = o.obs_log()
    times = [t for _, t in probes]
    stalls = [(w, round(t, 2)) for w, t in probes if t > args.limit]
    figures = {
        "cycles": len(cycles), "cycle_s_median": round(statistics.median(cycles), 1) if cycles else None,
        "engine_answer_after_click_s": [round(min(starts), 1), round(statistics.median(starts), 1),
                                        round(max(starts), 1)] if starts else None,
        "probes": len(times), "probe_ms_median": round(1000 * statistics.median(times)) if times else None,
        "probe_ms_max": round(1000 * max(times)) if times else None, "stalls_over_limit": stalls,
        "probe_ms_median_max_by_moment": {w: [round(1000 * statistics.median(ts)), round(1000 * max(ts))]
                                          for w in dict(probes) if (ts := [t for m, t in probes if m == w])},
        "panel_showed_classes": log.count("[cbs-obs] panel shows controls for"),
        "script_log_popped_up": log_pops[0], "live_redraw_off": "no way to redraw the Scripts window" in log,
        "tracebacks": log.count("Traceback"),
        "failures": failures,
    }
    print(json.dumps(figures, indent=1))
    if args.output:
        args.output.write_text(json.dumps(figures, indent=1))
    ok = not failures and not stalls and len(cycles) == args.cycles and not figures["tracebacks"]
    return 0 if ok and not figures["live_redraw_off"] else 1


if __name__ == "__main__":
    sys.exit(main())
