"""The composite U = sum R_c T_c + (1 - sum R_c) I: untouched pixels stay bit-exact."""
from __future__ import annotations

import numpy as np
import pytest

from cbs_obs.composite import Patch, build_masks, composite
from cbs_obs.errors import SettingsError, UnknownNameError
from cbs_obs.look import Assignment, Look, MaskOptions
from cbs_obs.segment.base import ClassProbs
from cbs_obs.stylizer import ClassStylizer

CLASSES = ("road", "car", "sky", "building")


def street_probs(h=32, w=48) -> ClassProbs:
    """Four horizontal bands with soft borders, like a segmenter's output at 1/8 scale."""
    y = np.linspace(0, 4, h, dtype=np.float32)[:, None].repeat(w, 1)
    logits = np.stack([-(y - c - 0.5) ** 2 * 8 for c in (3, 2, 0, 1)])
    p = np.exp(logits - logits.max(0))
    return ClassProbs((p / p.sum(0)).astype(np.float32), CLASSES)


class FakeSegmenter:
    name, classes = "fake", CLASSES

    def __init__(self, probs):
        self.probs = probs

    def segment(self, frame):
        return self.probs


@pytest.fixture
def frame():
    return np.random.default_rng(3).integers(0, 256, (256, 384, 3), dtype=np.uint8)


def run(frame, look, probs=None):
    return ClassStylizer(FakeSegmenter(probs or street_probs()), look).process(frame)


def test_unassigned_pixels_are_bit_exact_soft_masks(frame):
    look = Look((Assignment("car", "color:red"), Assignment("sky", "grey")))
    res = run(frame, look)
    total = sum(res.masks.values())
    untouched = total == 0
    assert untouched.mean() > 0.2  # most of the road and building bands
    np.testing.assert_array_equal(res.frame[untouched], frame[untouched])
    sure_car = res.masks["color:red"] == 1.0
    assert sure_car.any() and (res.frame[sure_car] == [0, 0, 255]).all()


def test_hard_masks_partition_exactly(frame):
    look = Look((Assignment("car", "color:red"), Assignment("road", "color:blue")), MaskOptions(hard=True))
    res = run(frame, look)
    labels = res.probs.labels(frame.shape[:2])
    for m in res.masks.values():
        assert set(np.unique(m)) <= {0.0, 1.0}
    rest = sum(res.masks.values()) == 0
    np.testing.assert_array_equal(res.frame[rest], frame[rest])
    assert rest.sum() > 0 and (labels[rest] != 1).all()


def test_several_classes_several_styles_follow_the_formula(frame):
    look = Look((Assignment("car", "color:red", 0.8), Assignment("sky", "color:#00ff00"),
                 Assignment("road", "color:red", 0.3)))
    probs = street_probs()
    res = run(frame, look, probs)
    assert set(res.masks) == {"color:red", "color:#00ff00"}  # classes sharing a style are styled once
    r_red, r_green = res.masks["color:red"], res.masks["color:#00ff00"]
    red, green = np.array([0, 0, 255], np.float32), np.array([0, 255, 0], np.float32)
    expect = r_red[..., None] * red + r_green[..., None] * green + (1 - r_red - r_green)[..., None] * frame
    assert np.abs(res.frame.astype(np.float32) - expect).max() <= 1.0


def test_strength_blends_halfway(frame):
    res = run(frame, Look((Assignment("car", "color:#ffffff", 0.5),), MaskOptions(hard=True)))
    inside = res.masks["color:#ffffff"] > 0
    expect = (frame[inside].astype(np.float32) + 255) / 2
    assert np.abs(res.frame[inside] - expect).max() <= 1.0


def test_feather_softens_hard_edges(frame):
    sharp = run(frame, Look((Assignment("car", "grey"),), MaskOptions(hard=True))).masks["grey"]
    soft = run(frame, Look((Assignment("car", "grey"),), MaskOptions(hard=True, feather=8))).masks["grey"]
    between = lambda m: ((m > 0) & (m < 1)).sum()
    assert between(soft) > 3 * between(sharp)


def test_no_assignment_returns_the_frame(frame):
    assert run(frame, Look()).frame is frame
    disabled = Look((Assignment("car", "grey"),), enabled=False)
    assert run(frame, disabled).frame is frame


def test_composite_single_layer_exact_at_zero_and_one(frame):
    t = np.full_like(frame, 7)
    r = np.zeros(frame.shape[:2], np.float32)
    r[:, :100] = 1
    out = composite(frame, [(r, t)])
    np.testing.assert_array_equal(out[:, 100:], frame[:, 100:])
    assert (out[:, :100] == 7).all()


def test_look_rejects_bad_values():
    with pytest.raises(SettingsError, match="between 0 and 1"):
        Assignment("car", "grey", 1.5)
    with pytest.raises(SettingsError, match="CLASS=STYLE"):
        Assignment.parse("car")
    with pytest.raises(SettingsError, match="assigned twice"):
        Look((Assignment("car", "grey"), Assignment("car", "blur")))
    with pytest.raises(SettingsError, match="feather"):
        MaskOptions(feather=-1)
    assert Assignment.parse("sky=blur:9@0.25") == Assignment("sky", "blur:9", 0.25)


def test_set_look_keeps_old_look_on_error():
    s = ClassStylizer(FakeSegmenter(street_probs()), Look((Assignment("car", "grey"),)))
    before = s.look
    with pytest.raises(UnknownNameError, match="valid classes: road, car, sky, building"):
        s.set_look(Look((Assignment("sofa", "grey"),)))
    with pytest.raises(UnknownNameError, match="unknown style"):
        s.set_look(Look((Assignment("car", "velvet"),)))
    assert s.look is before


def test_look_round_trips_through_dict():
    look = Look((Assignment("car", "grey", 0.4),), MaskOptions(feather=3, hard=True))
    assert Look.from_dict(look.to_dict()) == look
    with pytest.raises(SettingsError):
        Look.from_dict({"assignments": [{"cls": "car"}]})


def test_build_masks_sizes(frame):
    masks = build_masks(street_probs(), Look((Assignment("sky", "grey"),)), (100, 150))
    assert masks["grey"].shape == (100, 150) and masks["grey"].dtype == np.float32


@pytest.mark.parametrize("n", [1, 2, 3])
def test_layers_covering_part_of_the_frame_follow_the_formula_and_leave_the_rest_exact(frame, n):
    """Only the box the masks cover is blended (a face, a person); in it U is within a level of the
    formula, and outside it the frame comes back bit-exact."""
    rng = np.random.default_rng(n)
    h, w = frame.shape[:2]
    layers = []
    for k in range(n):
        r = np.zeros((h, w), np.float32)
        y, x = 40 + 30 * k, 60 + 50 * k
        r[y:y + 60, x:x + 80] = rng.uniform(0, 1 / n, (60, 80)).astype(np.float32)
        layers.append((r, rng.integers(0, 256, frame.shape, dtype=np.uint8)))
    out = composite(frame, layers)
    total = sum(r for r, _ in layers)
    expect = sum(r[..., None] * t for r, t in layers) + (1 - total)[..., None] * frame
    assert np.abs(out.astype(np.float32) - expect).max() <= 1.0
    untouched = total == 0
    assert untouched.mean() > 0.5
    np.testing.assert_array_equal(out[untouched], frame[untouched])
    assert out is not frame and composite(frame, [(np.zeros((h, w), np.float32), layers[0][1])]) is not frame


def test_patches_count_as_the_frame_outside_their_box(frame):
    """A styled face and a styled body handed over as patches (styled pixels for a box only) give the
    formula with T = I outside each box, also where the two masks share a soft edge."""

    rng = np.random.default_rng(7)
    h, w = frame.shape[:2]
    body, face = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    body[60:250, 80:300] = 0.6
    face[30:110, 140:220] = rng.uniform(0, 0.4, (80, 80))  # overlaps the body's top edge and leaves it
    body_patch = Patch((50, 256, 70, 310), rng.integers(0, 256, (206, 240, 3), dtype=np.uint8))
    face_patch = Patch((40, 100, 150, 230), rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))  # cuts the mask
    out = composite(frame, [(face, face_patch), (body, body_patch)])

    def full(p):
        t = frame.astype(np.float32).copy()
        y0, y1, x0, x1 = p.box
        t[y0:y1, x0:x1] = p.pixels
        return t

    expect = frame + face[..., None] * (full(face_patch) - frame) + body[..., None] * (full(body_patch) - frame)
    assert np.abs(out.astype(np.float32) - expect).max() <= 1.0
    untouched = (body == 0) & (face == 0)
    np.testing.assert_array_equal(out[untouched], frame[untouched])


@pytest.mark.parametrize("size", [(256, 384), (250, 371)])  # whole tiles, and sizes that end mid-tile
def test_a_styled_room_blends_only_where_the_frame_shows_through_with_the_formula_everywhere(size):
    """A room layer is 1 almost everywhere: the compositor blends only the tile runs where R < 1
    (the person, the soft edge, stray unsure pixels) and must still give the formula's every pixel."""
    rng = np.random.default_rng(5)
    h, w = size
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    t = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    r = np.clip((np.hypot(yy - h * 0.6, xx - w * 0.5) - 60) / 12, 0, 1).astype(np.float32)  # a soft-edged person
    r[3, w - 1] = 0.5  # a stray unsure pixel in the last column
    r[h - 1, 0] = 0.0  # and one in the last row
    out = composite(frame, [(r, t)])
    expected = np.clip(t * r[..., None] + frame * (1 - r[..., None]) + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert out[h - 1, 0].tolist() == frame[h - 1, 0].tolist() and (out[r == 1] == t[r == 1]).all()


@pytest.mark.parametrize("factor", [2, 3, 5])
def test_a_mask_held_small_gives_the_same_picture_as_the_mask_stretched_in_full(factor):
    """The live room's mask stays at the guide's size and is stretched only in the runs the compositor
    blends: every pixel must equal compositing with the whole stretched mask."""
    from cbs_obs.composite import Stretched

    rng = np.random.default_rng(7)
    h, w = 48 * factor, 80 * factor
    yy, xx = np.mgrid[:h // factor, :w // factor]
    small = np.clip((np.hypot(yy - 30, xx - 40) - 10) / 4, 0, 1).astype(np.float32)
    small[0, -1] = 0.3  # unsure pixels on the border
    small[-1, 0] = 0.0
    mask = Stretched(small, factor)
    full = mask.full()
    assert full.shape == (h, w)
    k = factor
    for box in [(0, 16, 0, 16), (8 * k, 24 * k, 4 * k, 40 * k), (h - 2 * k, h, w - 4 * k, w)]:
        np.testing.assert_array_equal(mask.region(*box), full[box[0]:box[1], box[2]:box[3]])
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    t = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    np.testing.assert_array_equal(composite(frame, [(mask, t)]), composite(frame, [(full, t)]))
    # a styled person: the inverse mask behind a Patch over part of the frame (read only inside its box)
    person, inverse = Stretched(1 - small, factor), 1 - full
    patch = Patch((5, h - 7, 9, w // 2 + 3), t[5:h - 7, 9:w // 2 + 3].copy())
    np.testing.assert_array_equal(composite(frame, [(person, patch)]), composite(frame, [(inverse, patch)]))


def test_a_mask_held_small_at_a_fractional_scale_gives_the_same_picture_as_the_mask_stretched_in_full():
    """The face and body grid is 384x216 under 1280x720 (10 frame pixels for 3): the class masks stay at
    the grid's size and are stretched only in the tiles the compositor blends, and every pixel must
    equal compositing with the masks stretched in full."""
    from cbs_obs.composite import Stretched, class_mask

    rng = np.random.default_rng(11)
    sh, sw, h, w = 54, 96, 180, 320  # 10 for 3, as 216x384 -> 720x1280
    yy, xx = np.mgrid[:sh, :sw]
    person = np.clip(1.2 - np.hypot((yy - 34) / 20, (xx - 48) / 16), 0, 1).astype(np.float32)
    face = (np.clip(1.5 - np.hypot((yy - 16) / 7, (xx - 48) / 6) * 1.5, 0, 1) * person).astype(np.float32)
    probs = ClassProbs(np.stack([1 - person, face, person - face]), ("background", "face", "body"))
    look = Look((Assignment("face", "sketch"), Assignment("body", "candy-pop")))
    groups = look.groups()
    held = {s: class_mask(probs, g, (h, w), look.mask, stretched=True) for s, g in groups.items()}
    full = {s: class_mask(probs, g, (h, w), look.mask) for s, g in groups.items()}
    for s in groups:
        assert isinstance(held[s], Stretched) and (held[s].factor, held[s].over) == (10, 3)
        np.testing.assert_array_equal(held[s].full(), full[s])
        for box in [(0, 30, 0, 30), (37, 151, 13, 299), (150, 180, 290, 320)]:
            np.testing.assert_array_equal(held[s].region(*box), full[s][box[0]:box[1], box[2]:box[3]])
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    face_patch = Patch((10, 90, 110, 210), rng.integers(0, 256, (80, 100, 3), dtype=np.uint8))
    body_patch = Patch((0, h, 0, w), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    out = composite(frame, [(held["sketch"], face_patch), (held["candy-pop"], body_patch)])
    in_full = composite(frame, [(full["sketch"], face_patch), (full["candy-pop"], body_patch)])
    np.testing.assert_array_equal(out, in_full)
    t_face = frame.astype(np.float32).copy()
    t_face[10:90, 110:210] = face_patch.pixels
    r_face, r_body = full["sketch"][..., None], full["candy-pop"][..., None]
    expect = frame + r_face * (t_face - frame) + r_body * (body_patch.pixels - frame.astype(np.float32))
    assert np.abs(out.astype(np.float32) - expect).max() <= 1.0
    untouched = (full["sketch"] == 0) & (full["candy-pop"] == 0)
    assert untouched.mean() > 0.3
    np.testing.assert_array_equal(out[untouched], frame[untouched])


@pytest.mark.parametrize("factor", [2, 3])
def test_a_styled_patch_held_small_gives_the_same_picture_as_the_patch_stretched_in_full(factor):
    """A moving class's carried picture is kept at a fraction of the frame's size: handed over as it is,
    the compositor stretches only the tiles it copies or blends, to the same pixels as the whole stretch,
    also where the box ends mid-tile and the picture reaches beyond the frame."""
    from cbs_obs.composite import Stretched

    rng = np.random.default_rng(factor)
    h, w = 150, 250
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    r = np.clip((70 - np.hypot(yy - 80, xx - 120)) / 15, 0, 1).astype(np.float32)  # a soft-edged person
    small = rng.integers(0, 256, (-(-(h - 12) // factor), -(-(w - 20) // factor), 3), dtype=np.uint8)
    held = Patch((12, h, 20, w), Stretched(small, factor))  # the picture reaches beyond the frame's end
    solid = held.solid()
    assert solid.pixels.shape == (h - 12, w - 20, 3)
    np.testing.assert_array_equal(solid.pixels, held.pixels.full()[:h - 12, :w - 20])
    out = composite(frame, [(r, held)])
    np.testing.assert_array_equal(out, composite(frame, [(r, solid)]))
    t = frame.astype(np.float32).copy()
    t[12:, 20:] = solid.pixels
    assert np.abs(out - (frame + r[..., None] * (t - frame))).max() <= 1.0
    # with a face on top, and mixed with a styled room (a whole styled frame): the same pixels
    face = np.zeros((h, w), np.float32)
    face[30:70, 100:140] = 0.7
    face_patch = Patch((25, 75, 95, 145), rng.integers(0, 256, (50, 50, 3), dtype=np.uint8))
    np.testing.assert_array_equal(composite(frame, [(face, face_patch), (r, held)]),
                                  composite(frame, [(face, face_patch), (r, solid)]))
    room = rng.integers(0, 256, frame.shape, dtype=np.uint8)
    np.testing.assert_array_equal(composite(frame, [(1 - r, room), (r, held)]),
                                  composite(frame, [(1 - r, room), (r, solid)]))
