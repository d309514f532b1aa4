"""Steady video: each mechanism is shown to work on a clip with known motion, and shown to be needed."""
from __future__ import annotations

import time

import cv2
import numpy as np

from cbs_obs.engine.edges import MaskSmoother
from cbs_obs.engine.motion import Motion
from cbs_obs.engine.moving import MovingLayer, StyleResult, fade_frames
from cbs_obs.engine.plate import BackgroundPlate, PlateSettings
from cbs_obs.segment.base import ClassProbs
from tests.conftest import wait_for

H, W = 360, 640


def _demo_frame() -> np.ndarray:
    from cbs_obs.io.sources import demo_clip_path

    cap = cv2.VideoCapture(str(demo_clip_path()))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return cv2.resize(frame, (W, H), interpolation=cv2.INTER_AREA)


# natural textures (the built-in clip's photos), so optical flow sees what it sees in a real room
ROOM = _demo_frame()
BODY = np.ascontiguousarray(cv2.flip(ROOM, -1)[60:300, 200:360])
HAND = np.ascontiguousarray(cv2.flip(ROOM, 1)[20:120, 40:140])


def scene(t: int) -> tuple[np.ndarray, np.ndarray]:
    """A still body and a hand rising 4 px a frame in front of a still room: motion no rigid shift can follow."""
    frame, person = ROOM.copy(), np.zeros((H, W), bool)
    frame[100:340, 240:400] = BODY
    person[100:340, 240:400] = True
    y = 220 - 4 * t
    frame[y:y + 100, 400:500] = HAND
    person[y:y + 100, 400:500] = True
    return frame, person


def style(frame: np.ndarray, seed: int | None = None) -> np.ndarray:
    """A per-pixel 'style' (so styling then moving equals moving then styling), plus, optionally, the
    texture noise a neural style adds anew to every result."""
    out = (255 - frame).astype(np.int16)
    if seed is not None:
        out += np.random.default_rng(seed).integers(-12, 13, frame.shape[:2])[..., None].astype(np.int16)
    return np.clip(out, 0, 255).astype(np.uint8)


BOX = (60, 350, 220, 520)


def carried_run(frames: int, delay: int, temporal: float, noise: bool = False, light: bool = False,
                fade: int | None = None):
    """A moving layer fed a style result every ``delay`` frames, each styled from the frame it was
    handed ``delay`` frames earlier (what the async styler does on a busy CPU). ``fade``: as the renderer
    picks it by default (done before the next result lands)."""
    fade = fade_frames(delay) if fade is None else fade
    motion, layer = Motion(light=light), MovingLayer("s", blend=1.0 - temporal, fade=fade)
    outs, in_flight = [], None
    for t in range(frames):
        frame, _ = scene(t)
        motion.update(frame)
        layer.advance(motion, BOX)
        if in_flight is not None and t - in_flight[0] >= delay:
            tag, styled = in_flight
            layer.land(StyleResult("s", BOX, styled, (H, W), tag), frame, motion)
            in_flight = None
        if in_flight is None:
            y0, y1, x0, x1 = BOX
            in_flight = (t, style(frame, t if noise else None)[y0:y1, x0:x1])
            layer.follow(t, motion)
            if not layer.ready:  # first frame: styled in line
                layer.land(StyleResult("s", BOX, in_flight[1], (H, W), t), frame, motion, now=True)
        outs.append(layer.frame(frame))
    return outs


def person_error(out: np.ndarray, t: int) -> float:
    frame, person = scene(t)
    inner = cv2.erode(person.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    return float(np.abs(out[inner].astype(int) - style(frame)[inner]).mean())


def test_the_finer_carrying_flow_keeps_the_styled_hand_closer_to_the_hand():
    """Carried for many frames between results, the canvas drifts from the content by the flow's error;
    the default flow (DIS down to the flow size) drifts about half as far as the light one."""
    fine = [person_error(o, t) for t, o in enumerate(carried_run(frames=10, delay=5, temporal=0.5))]
    light = [person_error(o, t) for t, o in enumerate(carried_run(frames=10, delay=5, temporal=0.5, light=True))]
    assert max(fine) < 2.5 and max(fine) < 0.6 * max(light), f"fine {fine} vs light {light}"


def test_flow_carried_styling_follows_non_rigid_motion_and_a_rigid_shift_does_not():
    outs = carried_run(frames=12, delay=5, temporal=0.5)
    carried = [person_error(o, t) for t, o in enumerate(outs)]
    assert max(carried) < 6.0, f"flow-carried styling drifted from the current pose: {carried}"
    # what the old path showed: the result of frame 0 moved rigidly by the mask centroid shift
    _, p0 = scene(0)
    rigid = []
    for t in range(1, 6):
        _, pt = scene(t)
        dy = round(np.argwhere(pt).mean(0)[0] - np.argwhere(p0).mean(0)[0])
        shifted = np.roll(style(scene(0)[0]), dy, axis=0)
        rigid.append(person_error(shifted, t))
    assert all(r > 3 * c for r, c in zip(rigid[2:], carried[3:6], strict=True)), \
        f"rigid shift {rigid} vs flow-carried {carried}"


def person_changes(outs: list[np.ndarray]) -> list[float]:
    """What a viewer sees change on the styled person from each output to the next, beyond the motion:
    mean |out_t - out_t-1 moved along the input's flow| inside the person."""
    from cbs_obs.engine.motion import remap_region

    motion, out = Motion(), []
    for t, o in enumerate(outs):
        motion.update(scene(t)[0])
        if t:
            prev = remap_region(outs[t - 1], motion.full_map(motion.step_map(), (0, H, 0, W)))
            inner = cv2.erode(scene(t)[1].astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
            out.append(float(np.abs(o[inner].astype(int) - prev[inner]).mean()))
    return out


def test_a_landing_refresh_does_not_jump():
    """Each new result carries new texture noise (as neural styles do); blending it in where the flow is
    trusted halves the jump a viewer sees when it lands, compared with taking it as it is."""
    def jumps(temporal):
        return max(person_changes(carried_run(frames=16, delay=4, temporal=temporal, noise=True, fade=1)))

    steady, raw = jumps(0.5), jumps(0.0)
    assert steady < 0.65 * raw, f"refresh jump {steady:.1f} with blending vs {raw:.1f} without"


def test_a_result_flows_in_over_several_frames_instead_of_jumping_in_on_one():
    """At a couple of results a second, each result's new texture would change the styled person by
    many levels on one frame, twice a second: it comes in over ``fade`` frames instead, carried along."""
    def changes(fade):
        return person_changes(carried_run(frames=30, delay=10, temporal=0.5, noise=True, fade=fade))

    at_once, spread = changes(1), changes(6)
    assert max(spread) < 0.4 * max(at_once), f"largest change {max(spread):.2f} spread vs {max(at_once):.2f} at once"
    assert sum(spread) < 1.5 * sum(at_once), "spreading must not add change overall"


def test_fewer_style_results_flicker_less_and_stay_as_current():
    """Every result a neural style gives has new texture; landing one on every frame (all a fast machine
    can style) shimmers, while the flow keeps a canvas refreshed every 15 frames close to the current
    pose (it drifts by the flow's error, far less than the texture noise one result brings). What
    ``refresh`` caps."""
    def flicker_and_error(delay):
        changes = person_changes(carried_run(frames=31, delay=delay, temporal=0.5, noise=True))
        clean = carried_run(frames=31, delay=delay, temporal=0.5)  # the same without texture noise: the pose alone
        return float(np.mean(changes)), float(np.mean([person_error(o, t) for t, o in enumerate(clean)]))

    (every, every_error), (capped, capped_error) = flicker_and_error(1), flicker_and_error(15)
    assert capped < 0.5 * every, f"flicker {capped:.2f} with a result every 15 frames vs {every:.2f} every frame"
    frame = scene(0)[0]
    noise = float(np.abs(style(frame, 1).astype(int) - style(frame)).mean())
    assert capped_error < 0.5 * noise, f"error to the current pose {capped_error:.2f} (every frame: " \
        f"{every_error:.2f}; one result's texture noise: {noise:.2f})"


def room_frame() -> np.ndarray:
    return ROOM.copy()


class FakeStyles:
    """Counts what the plate asks to be styled (a per-pixel style, so results are exact)."""

    def __init__(self):
        self.calls: list[tuple[int, int]] = []

    def get(self, spec):
        return self

    def apply(self, img):
        self.calls.append(img.shape[:2])
        return style(img)


def make_plate(**kw) -> tuple[BackgroundPlate, FakeStyles]:
    styles = FakeStyles()
    return BackgroundPlate(background=False, styles=styles, settings=PlateSettings(**kw)), styles


def test_sensor_noise_compression_and_exposure_drift_never_restyle():
    plate, styles = make_plate()
    bg = np.ones((360, 640), np.float32)
    base = room_frame()
    rng = np.random.default_rng(5)
    for t in range(60):
        gain = 1.0 + 0.002 * t  # slow auto-exposure drift: +12% over two seconds
        noisy = np.clip(base * gain + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
        ok, jpg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 70])  # compression
        plate.update(cv2.imdecode(jpg, cv2.IMREAD_COLOR), bg)
        plate.styled("s")
    assert plate.restyles == 1 and len(styles.calls) == 1, "a still room must settle to no restyles"


def test_a_real_change_restyles_only_its_tiles_and_fades_in():
    plate, styles = make_plate(fade=8)
    bg = np.ones((360, 640), np.float32)
    base = room_frame()
    plate.update(base, bg)
    first = plate.styled("s").copy()
    changed = base.copy()
    changed[40:120, 60:160] = 255 - changed[40:120, 60:160]  # a poster goes up on the wall
    shown = []
    for _ in range(18):
        plate.update(changed, bg)
        shown.append(plate.styled("s").copy())
    assert plate.restyles == 2
    h, w = styles.calls[-1]
    assert h * w < 0.4 * 360 * 640, f"restyled {w}x{h}: more than the changed tiles and their margin"
    far = np.zeros((360, 640), bool)
    far[220:, 320:] = True
    assert all((s[far] == first[far]).all() for s in shown), "the unchanged room must not change at all"
    poster = (slice(50, 110), slice(70, 150))
    target = style(changed)[poster].astype(int)
    steps = [np.abs(shown[i][poster].astype(int) - shown[i - 1][poster]).mean() for i in range(1, len(shown))]
    total = np.abs(first[poster].astype(int) - target).mean()
    assert np.abs(shown[-1][poster].astype(int) - target).mean() < 2.0, "the change must land in the end"
    assert max(steps) < 0.3 * total, f"a new plate must fade in over frames, not swap: steps {steps}"


def test_a_person_is_never_styled_into_the_room():
    """Pixels near the person's edge do not enter the plate, so no ghost outline is styled into the room."""
    plate, _ = make_plate()
    frame = room_frame()
    frame[100:300, 250:400] = (255, 0, 255)  # a person in magenta, a colour the room does not have
    bg = np.ones((360, 640), np.float32)
    bg[100:300, 250:400] = 0
    bg = cv2.GaussianBlur(bg, (0, 0), 6)  # a soft mask edge that still says 'room' a few px into the person
    plate.update(frame, bg)
    ghost = np.all(np.abs(fill_unseen_plate(plate).astype(int) - (255, 0, 255)) < 60, axis=2)
    assert ghost.sum() == 0, f"{ghost.sum()} pixels of the person ended up in the room plate"


def test_a_shadow_crossing_the_room_is_never_kept_in_the_plate():
    """Someone walking out of the picture casts a shadow (and shows a foot) that the segmenter rightly or
    wrongly calls room. Only what stands still enters the plate: the shadow must not be styled into the room
    while a real change elsewhere (a poster going up) is restyled meanwhile."""
    plate, _ = make_plate()
    bg = np.ones((H, W), np.float32)  # the segmenter sees no person at all
    base = room_frame()
    plate.update(base, bg)
    plate.styled("s")
    poster, path = (slice(40, 120), slice(60, 160)), (slice(250, 310), slice(300, 640))
    frames = []
    for t in range(60):
        frame = base.copy()
        frame[poster] = 255 - frame[poster]
        x = 300 + 16 * t
        if x < W:  # a shadow 48 px wide crossing the floor at 16 px a frame, then gone
            frame[260:300, x:x + 48] = frame[260:300, x:x + 48] // 3
        plate.update(frame, bg)
        frames.append(plate.styled("s").copy())
    assert plate.restyles >= 2, "the poster must be restyled"
    assert np.abs(frames[-1][poster].astype(int) - style(frame)[poster]).mean() < 2.0, "the poster must land"
    worst = max(np.abs(f[path].astype(int) - style(base)[path]).max(axis=2).mean() for f in frames)
    assert worst < 2.0, f"the shadow's path differs from the styled room by {worst:.1f} levels on average"


def fill_unseen_plate(plate):
    from cbs_obs.engine.plate import fill_unseen

    return fill_unseen(plate.plate, plate.seen)


def test_mask_smoothing_steadies_unsure_edges_without_lag():
    smoother = MaskSmoother(0.8)
    flicker = []
    for t in range(10):  # an unsure edge pixel flickering 0.4 / 0.6; a sure region
        p = np.zeros((1, 8, 8), np.float32)
        p[0, :, :4] = 0.4 if t % 2 else 0.6
        p[0, :, 4:] = 1.0 if t < 5 else 0.0  # the person leaves, surely
        out = smoother(ClassProbs(np.concatenate([1 - p, p]), ("background", "person")), None).probs[1]
        flicker.append(out[0, 0])
        if t == 5:
            assert out[0, 6] == 0.0, "a sure change must show at once"
    swing = max(abs(a - b) for a, b in zip(flicker[1:], flicker[:-1], strict=True))
    assert swing < 0.5 * 0.2, f"unsure pixels still swing by {swing:.3f} (raw 0.2)"


def test_offline_and_live_plates_agree_on_when_to_restyle(person_model):
    """The live plate (its own thread) restyles on the same changes as the offline one."""
    live = BackgroundPlate(background=True, styles=FakeStyles())
    bg = np.ones((360, 640), np.float32)
    live.update(room_frame(), bg)
    live.styled("s")
    assert wait_for(lambda: live.restyles == 1)
    live.close()


def test_the_live_plate_styles_tiles_that_change_one_after_another_in_one_go():
    """Live, a restyle starts at least ``gather_s`` after the one before: two parts of the room that
    change a few frames apart (a screen, the room behind moving hands) cost one restyle, not two."""
    bg = np.ones((360, 640), np.float32)
    base = room_frame()
    for gather, expected in ((0.0, 3), (3.0, 2)):
        plate = BackgroundPlate(background=True, styles=FakeStyles(), settings=PlateSettings(gather_s=gather))
        plate.update(base, bg)
        plate.styled("s")
        assert wait_for(lambda p=plate: p.restyles == 1)  # a new look: styled at once
        changed = base.copy()
        changed[40:120, 60:160] = 255 - changed[40:120, 60:160]  # a poster goes up
        for _ in range(12):
            plate.update(changed, bg)
            plate.styled("s")
        if not gather:  # without gathering the poster is restyled on its own
            assert wait_for(lambda p=plate: p.restyles == 2)
        changed[220:300, 420:560] = 255 - changed[220:300, 420:560]  # and a few frames on, a lamp elsewhere
        for _ in range(12):
            plate.update(changed, bg)
            plate.styled("s")
        assert wait_for(lambda p=plate, n=expected: p.restyles == n, timeout=10)
        time.sleep(0.3)
        plate.close()
        assert plate.restyles == expected, f"gather {gather} s: {plate.restyles} restyles"


def test_the_live_plate_restyles_within_its_share_of_a_core_while_people_uncover_the_room():
    """People walking through the room uncover a new part of it every few frames. Restyling each part
    as it settles would keep a core busy; the live plate waits after each restyle so that restyling
    takes at most ``duty`` of one core on average, and gathers what changed meanwhile."""
    bg = np.ones((360, 640), np.float32)
    base = room_frame()

    class SlowStyles(FakeStyles):  # a neural style's time on a real room
        def apply(self, img):
            time.sleep(0.25)
            return super().apply(img)

    def busy_share(duty: float) -> tuple[float, int]:
        plate = BackgroundPlate(background=True, styles=SlowStyles(), settings=PlateSettings(duty=duty))
        plate.update(base, bg)
        plate.styled("s")
        assert wait_for(lambda: plate.restyles == 1)  # a new look: styled at once, whatever the cap
        busy, n0 = 0.0, plate.restyles
        seen, frame, t0 = n0, base.copy(), time.monotonic()
        for i in range(120):  # 4 s at 30 fps; a new part of the room shows every 8 frames
            if i % 8 == 0:
                y, x = 40 + 80 * (i // 8 % 4), 40 * (i // 8)
                frame[y:y + 70, x:x + 36] = 255 - frame[y:y + 70, x:x + 36]
            plate.update(frame, bg)
            plate.styled("s")
            time.sleep(max(0.0, t0 + (i + 1) / 30 - time.monotonic()))
            done, seen = plate.restyles - seen, plate.restyles
            busy += done * plate.last_restyle_s
        elapsed = time.monotonic() - t0
        plate.close()
        return busy / elapsed, plate.restyles - n0

    capped, n_capped = busy_share(0.2)
    uncapped, n_uncapped = busy_share(1.0)
    print(f"restyling took {capped:.0%} of a core in {n_capped} restyles (duty 0.2), "
          f"{uncapped:.0%} in {n_uncapped} without a cap")
    assert capped <= 0.3 and n_capped >= 2  # within its share (one restyle may straddle the end), still restyling
    assert uncapped >= 0.4


def test_a_screen_playing_video_in_the_room_is_never_restyled():
    """A monitor showing video changes between every two looks at the room: that is movement, not a
    change of the room, so the plate keeps the picture it first styled and the room never shimmers."""
    plate, styles = make_plate(cooldown=30, fade=4)
    bg = np.ones((360, 640), np.float32)
    base = room_frame()
    plate.update(base, bg)
    plate.styled("s")
    rng = np.random.default_rng(3)
    for _ in range(90):
        frame = base.copy()
        frame[40:120, 60:160] = rng.integers(0, 255, (1, 1, 3), dtype=np.uint8)  # the screen's picture changes
        plate.update(frame, bg)
        plate.styled("s")
    assert plate.restyles == 1, f"{plate.restyles - 1} restyles of a screen playing video"


def test_a_screen_that_never_settles_is_restyled_ever_less_often_and_a_real_change_still_promptly():
    """A tile that changes again as soon as its cooldown ends (a screen showing slides, a new one every
    half second) doubles its wait (up to ``cooldown_max``); once the room is quiet for a while, the next
    change there is restyled at the normal pace."""
    plate, styles = make_plate(cooldown=30, cooldown_max=120, fade=4)
    bg = np.ones((360, 640), np.float32)
    base = room_frame()
    plate.update(base, bg)
    plate.styled("s")
    rng = np.random.default_rng(4)
    restyled_at = []
    for t in range(600):
        if t % 15 == 0:
            frame = base.copy()
            frame[40:120, 60:160] = rng.integers(0, 255, (1, 1, 3), dtype=np.uint8)
        before = plate.restyles
        plate.update(frame, bg)
        plate.styled("s")
        if plate.restyles > before:
            restyled_at.append(t)
    gaps = np.diff(restyled_at)
    # without the back-off: one restyle every 30 frames, 20 in all
    assert len(restyled_at) <= 8, f"restyled at frames {restyled_at}"
    assert gaps[-1] >= 120 and list(gaps) == sorted(gaps), f"the waits must grow to the cap: {list(gaps)}"
    for _ in range(300):  # the screen is switched off: the room is quiet for 10 s
        plate.update(base, bg)
        plate.styled("s")
    quiet = plate.restyles
    changed = base.copy()
    changed[200:300, 400:560] = (20, 200, 20)  # then something really changes in another part of the room
    waited = 0
    while plate.restyles == quiet and waited < 30:
        plate.update(changed, bg)
        plate.styled("s")
        waited += 1
    assert plate.restyles > quiet and waited <= 12, f"a real change waited {waited} frames"


def test_a_carried_picture_handed_over_small_gives_the_same_patch_as_stretched_in_full():
    """At 720p a moving class's canvas is half the frame's size; the live compositor takes it as it is
    (``lazy``) and stretches only what shows, which must be the very pixels of the stretched patch."""
    from cbs_obs.composite import Stretched

    frame = cv2.resize(ROOM, (1280, 720), interpolation=cv2.INTER_LINEAR)
    motion, layer = Motion(), MovingLayer("s")
    motion.update(frame)
    box = (101, 601, 301, 901)
    layer.land(StyleResult("s", box, style(frame)[101:601, 301:901], (720, 1280), 1), frame, motion, now=True)
    moved = np.ascontiguousarray(np.roll(frame, 6, axis=1))
    motion.update(moved)
    layer.advance(motion, (101, 601, 307, 907))
    lazy, full = layer.patch((720, 1280), lazy=True), layer.patch((720, 1280))
    assert isinstance(lazy.pixels, Stretched) and lazy.pixels.factor == 2 and lazy.box == full.box
    np.testing.assert_array_equal(lazy.solid().pixels, full.pixels)


def test_carrying_a_picture_through_four_channels_gives_opencvs_three_channel_pixels():
    """The carried canvas is remapped with a fourth channel added (OpenCV vectorises only that case):
    the same pixels as the plain 3-channel remap, borders and odd sizes included."""
    from cbs_obs.engine.motion import remap_region

    rng = np.random.default_rng(4)
    for h, w in [(360, 640), (37, 53), (1, 7)]:
        src = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        xy = np.dstack([xs, ys]) + (rng.random((h, w, 2)).astype(np.float32) - 0.5) * 20  # reaching outside too
        np.testing.assert_array_equal(remap_region(src, xy),
                                      cv2.remap(src, xy, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))


def test_a_person_the_segmenter_blinks_out_is_held_while_they_are_there_and_let_go_when_they_leave():
    """The webcam segmenter can lose a person for a few frames while they are plainly there (seen from
    behind, at the frame's edge): they are held where the frame still differs from the known room, for a
    few frames at most, and let go at once when the room shows again."""
    from cbs_obs.engine.blink import BlinkHold

    plate, _ = make_plate()
    base, sh, sw = room_frame(), 36, 64

    def person_at(x):
        frame, p = base.copy(), np.zeros((sh, sw), np.float32)
        frame[100:300, x:x + 120] = (255, 0, 255)
        p[10:30, x // 10:(x + 120) // 10] = 1.0
        return frame, p

    def probs(p):
        return ClassProbs(np.stack([1.0 - p, p]), ("background", "person"))

    for _ in range(3):  # the room, empty
        plate.update(base, np.ones((H, W), np.float32))
    blink = BlinkHold(frames=3)
    for x in range(100, 160, 10):  # someone walks in
        frame, p = person_at(x)
        plate.update(frame, 1.0 - cv2.resize(p, (W, H)))
        assert blink(probs(p), frame, plate, ["background"]).mask(["person"]).sum() == p.sum()
    held = []
    for x in (160, 190, 220, 250):  # the segmenter sees nobody, though they walk on, 30 px a frame
        frame, p = person_at(x)
        out = blink(probs(np.zeros_like(p)), frame, plate, ["background"]).mask(["person"])
        held.append(float(out[p > 0].mean()))
    assert min(held[:3]) > 0.9, f"share of the person held in the first 3 blinked frames: {held}"
    assert held[3] == 0.0, "a blink is bridged for 3 frames at most"
    blink = BlinkHold(frames=3)
    frame, p = person_at(150)
    blink(probs(p), frame, plate, ["background"])
    gone = blink(probs(np.zeros_like(p)), base, plate, ["background"])  # they really left: the room shows
    assert gone.mask(["person"]).sum() == 0.0, "nobody is held where the room shows again"


def test_a_shadow_gone_from_the_room_is_not_taken_for_the_person():
    """The plate may hold the room with the person's shadow on it; when they move on, that spot brightens
    but keeps its colour, and must not be held as the person (it showed as a patch of unstyled wall)."""
    from cbs_obs.engine.blink import BlinkHold

    room = cv2.resize(room_frame(), (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
    far = np.ones((36, 64), bool)
    far[:, :20] = False
    shadowed = room.copy()
    shadowed[:, :20] *= 0.65  # the plate took this part in under a shadow
    person = room.copy()
    person[:, :20] = (60, 70, 80)  # someone in grey clothes
    someone = BlinkHold()._someone
    assert not someone(room.copy(), shadowed, far)[:, :20].any(), "a lifted shadow counted as someone"
    assert someone(person, room, far)[:, :20].mean() > 0.8, "a person must still count"
