"""The speed knobs keep their promises: plate, boxes, mask reuse, smoothing, skipping, async styling."""
from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from cbs_obs.engine.plate import BackgroundPlate
from cbs_obs.engine.render import PerfSettings, Renderer, box_of
from cbs_obs.errors import SettingsError
from cbs_obs.look import Look
from cbs_obs.segment.base import ClassProbs
from cbs_obs.style import StyleFamily, register_style_family
from cbs_obs.stylizer import ClassStylizer
from tests.conftest import wait_for
from tests.test_cli import CLI

H, W = 90, 160


def _posing_as_a_network(arg, max_side):
    from cbs_obs.style.catalog import create

    return create(str(arg))


# Filters are applied to each frame in line; a filter registered as a network goes the way neural
# styles go (the styler's own thread, carried along the motion), at a filter's cost and predictability.
register_style_family(StyleFamily("as-net", _posing_as_a_network, "a filter run the way networks are (tests)",
                                  neural=True, argument="FILTER", required=True))


class BoxSegmenter:
    """'person' is a rectangle that can move; everything else is background."""

    name, classes = "person", ("background", "person")

    def __init__(self):
        self.x, self.calls = 40, 0

    def segment(self, frame):
        self.calls += 1
        p = np.zeros((18, 32), np.float32)
        x = self.x * 32 // W
        p[4:16, x : x + 8] = 1.0
        return ClassProbs(np.stack([1 - p, p]), self.classes)


def room(seed=0):
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(np.kron(rng.integers(0, 255, (9, 16, 3)), np.ones((10, 10, 1))).astype(np.uint8))


def make(settings: PerfSettings, look: str, realtime=False):
    seg = BoxSegmenter()
    stylizer = ClassStylizer(seg, Look.from_specs([look]), style_size=settings.style_size)
    return Renderer(stylizer, settings, ThreadPoolExecutor(2), "person", realtime=realtime), seg, stylizer


def test_plate_styles_the_room_at_full_resolution_and_only_when_it_changes():
    r, seg, st = make(PerfSettings(plate="on"), "background=starry-blue")
    frame = room()
    r.render(frame, st.look)
    assert wait_for(lambda: r.plate.restyles >= 1)
    out, _ = r.render(frame, st.look)
    from cbs_obs.engine.plate import fill_unseen
    from cbs_obs.style.catalog import create

    # the plate (with the never-seen place behind the person painted in) styled at full resolution
    expected = create("starry-blue").apply(fill_unseen(r.plate.plate, r.plate.seen))
    bg = np.ones((H, W), bool)
    bg[10:90, 20:100] = False  # around the person box (its mask edge follows the frame's edges)
    assert np.abs(out[bg].astype(int) - expected[bg]).mean() < 1.0
    for _ in range(10):  # a still room: no more restyling
        r.render(frame, st.look)
    time.sleep(0.3)
    assert r.plate.restyles == 1 and r.plate.version == 1
    lit = np.clip(frame.astype(int) + 50, 0, 255).astype(np.uint8)  # the light goes on
    for _ in range(r.plate.s.persist + r.plate.s.watch_every):  # a change must last a few frames and stand still
        r.render(lit, st.look)
    assert r.plate.version == 2 and wait_for(lambda: r.plate.restyles >= 2)
    assert r.plate.change_to_styled_s and r.plate.change_to_styled_s[-1] < 20
    r.close()


def test_plate_keeps_what_is_behind_the_person():
    from cbs_obs.engine.plate import PlateSettings

    plate = BackgroundPlate(settings=PlateSettings(persist_near=3))  # this small room is all 'near the person'
    frame = room()
    bg = np.ones((H, W), np.float32)
    bg[:, 60:100] = 0  # a person stands there
    plate.update(frame, bg)
    moved = frame.copy()
    moved[:, 60:100] = 0  # person pixels are not background: they must not enter the plate
    moved[:, :40] = 255  # a real change in the background: it counts once it has stood still a few frames
    assert not any([plate.update(moved, bg) for _ in range(5)])
    assert plate.update(moved, bg)
    assert (plate.plate[:, 60:100] == frame[:, 60:100]).all()
    assert (plate.plate[:, :24] == 255).all()  # the room well away from the person's edge


def test_never_seen_background_is_painted_from_its_surroundings():
    from cbs_obs.engine.plate import fill_unseen

    plate = np.full((90, 160, 3), (40, 120, 200), np.uint8)
    plate[20:80, 60:100] = (0, 0, 0)  # the person's pixels, captured with the first frame
    seen = np.ones((11, 20), bool)
    seen[2:10, 7:13] = False  # never seen as background
    filled = fill_unseen(plate, seen)
    assert np.abs(filled[30:70, 65:95].astype(int) - (40, 120, 200)).max() <= 3  # room colour, not the person
    assert (filled[:10] == plate[:10]).all() and (filled[:, :40] == plate[:, :40]).all()  # seen places untouched
    assert fill_unseen(plate, np.ones((11, 20), bool)) is plate


def test_moving_classes_are_styled_inside_their_box_only():
    r, seg, st = make(PerfSettings(plate="off", moving="sync", edges=False), "person=color:#ff0000")
    frame = room()
    r.render(frame, st.look)  # first frame: no box yet (whole frame)
    calls = []
    real = st.styles.get("color:#ff0000").apply
    st.styles.get("color:#ff0000").apply = lambda px: calls.append(px.shape) or real(px)
    out, _ = r.render(frame, st.look)
    assert calls and calls[-1][0] < H and calls[-1][1] < W  # only the box was styled
    person = np.zeros((H, W), bool)
    person[25:75, 45:75] = True  # inside the (bilinear-edged) mask
    assert (out[person] == [0, 0, 255]).all()


def test_box_of_scales_and_pads():
    m = np.zeros((18, 32), np.float32)
    m[4:16, 8:16] = 1
    assert box_of(m, (90, 160), margin=0) == (20, 80, 40, 80)
    assert box_of(np.zeros((4, 4), np.float32), (90, 160)) is None


def test_seg_every_and_smoothing():
    r, seg, st = make(PerfSettings(plate="off", seg_every=3, moving="sync"), "person=grey")
    for _ in range(6):
        r.render(room(), st.look)
    assert seg.calls == 2
    r2, seg2, st2 = make(PerfSettings(plate="off", smoothing=0.5, moving="sync"), "person=grey")
    r2.render(room(), st2.look)
    seg2.x = 100  # the person jumps and the segmenter is sure: the mask follows at once (no lag)
    r2.render(room(), st2.look)
    p = r2._probs.probs[1]
    assert np.isclose(p[8, 8], 0.0) and np.isclose(p[8, 20], 1.0)


def test_similar_frames_are_skipped():
    r, seg, st = make(PerfSettings(plate="off", similar_skip=2.0, moving="sync"), "person=grey")
    a, _ = r.render(room(), st.look)
    b, _ = r.render(room(), st.look)
    assert b is a and seg.calls == 1
    r.render(room(seed=1), st.look)
    assert seg.calls == 2


def test_async_styling_serves_the_newest_box():
    r, seg, st = make(PerfSettings(plate="off", moving="async", edges=False), "person=as-net:color:#00ff00",
                      realtime=True)
    frame = room()
    out, _ = r.render(frame, st.look)  # first frame styled in line
    assert wait_for(lambda: r.async_styler.styled_frames >= 1)
    out, stages = r.render(frame, st.look)
    assert (out[30, 50] == [0, 255, 0]).all() and (out[5, 5] == frame[5, 5]).all()
    r.close()


def test_perf_settings_are_validated():
    with pytest.raises(SettingsError, match="plate"):
        PerfSettings(plate="maybe")
    with pytest.raises(SettingsError, match="seg_every"):
        PerfSettings(seg_every=0)
    with pytest.raises(SettingsError, match="smoothing"):
        PerfSettings(smoothing=1.5)


def test_budget_picks_smaller_sizes_for_higher_fps():
    from cbs_obs.engine.budget import choose

    seg = BoxSegmenter()
    look = Look.from_specs(["person=starry-blue"])
    st = ClassStylizer(seg, look)
    frame = np.ascontiguousarray(np.repeat(np.repeat(room(), 4, 0), 4, 1))  # 360x640
    slow, _ = choose(st, frame, look, 2, PerfSettings(), "person")
    fast, report = choose(st, frame, look, 60, PerfSettings(), "person")
    assert slow.style_size >= fast.style_size and "budget 60 fps" in report


def test_bench_runs_and_prints_json(person_model, tmp_path):
    proc = subprocess.run([CLI, "bench", "--scenarios", "person720", "--seconds", "2", "--naive-window", "4",
                           "--runs", "2", "--json", "-o", str(tmp_path / "b.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "run 2 of 2" in proc.stderr
    data = json.loads((tmp_path / "b.json").read_text())
    assert json.loads(proc.stdout) == data  # with --json, stdout is the document alone: progress is on stderr
    s = data["scenarios"]["person720"]["demo_clip.mp4"]["async"]
    assert s["fps"] > 0 and s["latency_ms"]["p50"] > 0 and s["cpu_percent_of_one_core"] > 0
    steady = s["steadiness"]["instability_person"]
    assert steady["ours"]["pairs"] > 0 and steady["input"]["mean"] is not None and steady["naive"]["pairs"] >= 2
    low, high = s["spread"]["cpu_percent_of_one_core"]
    assert s["runs"] == 2 and low <= s["cpu_percent_of_one_core"] <= high


def test_several_bench_runs_give_medians_and_their_range():
    from cbs_obs.bench import median_of_runs

    runs = [{"fps": f, "latency_ms": {"p95": p}, "dropped": d, "look": "person=candy-pop", "errors": 0, "rss_mb": m}
            for f, p, d, m in ((29.0, 40.0, 3, 900.0), (30.0, 60.0, 0, 1500.0), (28.0, 45.0, 1, 1400.0))]
    m = median_of_runs(runs)
    assert m["fps"] == 29.0 and m["latency_ms"]["p95"] == 45.0 and m["dropped"] == 1
    assert m["rss_mb"] == 900.0  # the first run's: later ones also hold what the analysis loaded
    assert m["look"] == "person=candy-pop" and m["runs"] == 3
    assert m["spread"]["latency_ms.p95"] == [40.0, 60.0] and m["spread"]["dropped"] == [0, 3]
    assert median_of_runs(runs[:1]) is runs[0]


class SceneSegmenter:
    """The person of tests.test_steady's synthetic scene at time ``t``, as a segmenter would see it."""

    name, classes = "person", ("background", "person")

    def __init__(self):
        self.t = 0

    def segment(self, frame):
        from tests.test_steady import scene

        p = scene(self.t)[1].astype(np.float32)
        return ClassProbs(np.stack([1 - p, p]), self.classes)


def test_async_results_follow_the_moving_person_every_frame():
    """When the styler falls behind, the last styled picture is carried along the motion on every frame."""
    from tests.test_steady import H as SH
    from tests.test_steady import W as SW
    from tests.test_steady import scene

    seg = SceneSegmenter()
    st = ClassStylizer(seg, Look.from_specs(["person=as-net:grey"]))
    r = Renderer(st, PerfSettings(plate="off", moving="async", edges=False), ThreadPoolExecutor(2), "person",
                 realtime=True)
    r.render(scene(0)[0], st.look)
    assert wait_for(lambda: r.async_styler.styled_frames >= 1)
    r.async_styler.submit = lambda *a, **k: False  # the styler falls behind: only old results exist
    errors, stale = [], []
    for t in range(1, 8):
        seg.t = t
        frame, person = scene(t)
        out, _ = r.render(frame, st.look)
        hand = np.zeros((SH, SW), bool)
        hand[224 - 4 * t:316 - 4 * t, 404:496] = True
        grey = np.repeat(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[..., None], 3, 2)
        old = np.repeat(cv2.cvtColor(scene(0)[0], cv2.COLOR_BGR2GRAY)[..., None], 3, 2)
        errors.append(np.abs(out[hand].astype(int) - grey[hand]).mean())
        stale.append(np.abs(old[hand].astype(int) - grey[hand]).mean())
    r.close()
    assert max(errors) < 10, errors
    assert all(e < s / 2 for e, s in zip(errors[2:], stale[2:], strict=True)), (errors, stale)


def test_style_results_land_at_most_refresh_times_a_second_live_and_offline():
    """Live, the styler takes a frame at most ``refresh`` times a second however fast it styles; offline,
    every (fps / refresh)th frame of the file is styled and the frames between are carried along the flow."""
    from tests.test_steady import scene

    def live(refresh):
        seg = SceneSegmenter()
        st = ClassStylizer(seg, Look.from_specs(["person=as-net:grey"]))
        r = Renderer(st, PerfSettings(plate="off", moving="async", edges=False, refresh=refresh),
                     ThreadPoolExecutor(2), "person", realtime=True)
        start = time.monotonic()
        t = 0
        while time.monotonic() - start < 1.0:  # a camera far faster than 30 fps, for one second
            seg.t = t % 20
            r.render(scene(t % 20)[0], st.look)
            t += 1
            time.sleep(0.005)
        r.close()
        return r.async_styler.styled_frames, t

    capped, frames = live(4.0)
    uncapped, _ = live(120.0)
    assert capped <= 1 + 4 + 1 < frames, f"{capped} frames styled in a second at refresh 4 ({frames} shown)"
    assert uncapped > 2 * capped, f"uncapped styled {uncapped}, capped {capped}: the cap must be what limits"

    seg = SceneSegmenter()
    st = ClassStylizer(seg, Look.from_specs(["person=as-net:grey"]))
    r = Renderer(st, PerfSettings(plate="off", moving="sync", edges=False, refresh=2.0), ThreadPoolExecutor(2),
                 "person", realtime=False, fps=30.0)
    styled, style_box, now = [], r._style_box, [0]
    r._style_box = lambda spec, pixels, box: styled.append(now[0]) or style_box(spec, pixels, box)
    for t in range(40):
        seg.t, now[0] = t % 20, t
        out, _ = r.render(scene(t % 20)[0], st.look, t=t / 30)
        assert out.shape == scene(0)[0].shape
    r.close()
    assert styled == [0, 15, 30], f"offline, frames styled: {styled} (expected every 15th of 40)"


def test_filters_on_moving_classes_follow_each_frame_exactly():
    """A filter (sketch on a face, grey on a person) is cheap and gives the same picture for the same
    input: it is applied to every frame in line, never waits for the styler, and so is never stale."""
    from tests.test_steady import scene

    seg = SceneSegmenter()
    st = ClassStylizer(seg, Look.from_specs(["person=grey"]))
    r = Renderer(st, PerfSettings(plate="off", moving="async", edges=False), ThreadPoolExecutor(2), "person",
                 realtime=True)
    for t in range(8):
        seg.t = t
        frame, person = scene(t)
        out, _ = r.render(frame, st.look)
        core = cv2.erode(person.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        grey = np.repeat(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[..., None], 3, 2)
        assert core.any() and (out[core] == grey[core]).all(), t
        assert (out[:, :5] == frame[:, :5]).all()
    assert r.async_styler.styled_frames == 0 and not r.layers  # nothing queued, nothing carried
    r.close()


@pytest.mark.parametrize("scale", [1, 2])  # the styled picture kept at the frame's size, and at half of it
def test_a_frame_blended_after_the_next_one_is_prepared_shows_its_own_styling(scale):
    """The live engine blends a frame's layers on its output thread while the frame loop already prepares
    the next frame, which carries every moving layer's picture on in place: what a frame hands over must be
    its own, so blending it late gives exactly the picture blending it at once gives."""
    from tests.test_steady import scene

    def renderer():
        seg = SceneSegmenter()
        st = ClassStylizer(seg, Look.from_specs(["person=as-net:grey"]))
        return Renderer(st, PerfSettings(plate="off", moving="sync", edges=False), ThreadPoolExecutor(2), "person",
                        realtime=False), seg, st

    (now, seg_now, st), (late, seg_late, _) = renderer(), renderer()
    pending = None
    for t in range(6):
        seg_now.t = seg_late.t = t
        frame = scene(t)[0]
        frame = cv2.resize(frame, (frame.shape[1] * scale, frame.shape[0] * scale), interpolation=cv2.INTER_LINEAR)
        at_once, _ = now.render(frame, st.look)
        composition, _ = late.prepare(frame, st.look)
        if pending is not None:
            shown, expected = pending[0].result(), pending[1]
            assert np.array_equal(shown, expected), (t, np.abs(shown.astype(int) - expected).max())
        pending = (composition, at_once)
        assert now.layers["as-net:grey"].k == scale
    assert np.array_equal(pending[0].result(), pending[1])
    now.close()
    late.close()


def test_flow_detail_follows_the_loops_headroom():
    """The fine flow costs the frame loop about 3.5 ms more: used while the loop has room, dropped when
    the loop takes most of a frame's interval, taken back once it has room again, and never flipping
    back and forth on the cost of the detail itself."""
    from cbs_obs.engine.pace import FlowPace

    rng = np.random.default_rng(0)

    def run(base_ms: float, frames: int = 300, pace: FlowPace | None = None) -> tuple[FlowPace, int]:
        pace = pace or FlowPace(1 / 30)
        switches = 0
        for _ in range(frames):
            was = pace.fine
            took = base_ms + (3.5 if pace.fine else 0.0) + rng.normal(0, 1) + (8.0 if rng.random() < 0.12 else 0.0)
            switches += pace.observe(took / 1000) != was
        return pace, switches

    quiet, switches = run(14.0)  # a quiet machine: room for the fine flow on every frame
    assert quiet.fine and switches == 0
    busy, switches = run(25.0)  # a busy one: the light flow, switched to once
    assert not busy.fine and switches == 1
    edge, switches = run(21.6)  # between the thresholds: whichever it has, it keeps
    assert edge.fine and switches == 0
    edge, switches = run(21.6, pace=FlowPace(1 / 30, fine=False))
    assert not edge.fine and switches == 0
    recovered, _ = run(12.0, pace=busy)  # the machine quiet again: back to the fine flow
    assert recovered.fine


def test_a_live_renderer_drops_to_the_light_flow_when_its_frames_take_too_long():
    """End to end: a segmenter that takes most of a frame's interval makes the renderer use the light
    flow; a fast one keeps the fine flow; a file styled offline always gets the fine one."""
    from tests.test_steady import scene

    class SlowSegmenter(SceneSegmenter):
        def segment(self, frame):
            time.sleep(0.030)
            return super().segment(frame)

    def shares(seg, realtime):
        st = ClassStylizer(seg, Look.from_specs(["person=as-net:grey"]))
        r = Renderer(st, PerfSettings(plate="off", moving="async", edges=False), ThreadPoolExecutor(2), "person",
                     realtime=realtime)
        for t in range(40):
            seg.t = t % 8
            r.render(scene(t % 8)[0], st.look)
        r.close()
        return r.motion.fine_frames / r.motion.frames

    assert shares(SlowSegmenter(), realtime=True) < 0.5
    assert shares(SceneSegmenter(), realtime=True) == 1.0
    assert shares(SlowSegmenter(), realtime=False) == 1.0
