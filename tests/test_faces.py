"""Faces as a class: the importer's new operators, MediaPipe's face pre/post-processing, fidelity of
the landmarks to MediaPipe's own FaceMesh on real frames, and the person-face segmenter on the
user's paths (stylize, groups, several faces, tracking, no face)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tflite
import torch

from cbs_obs.errors import SettingsError, UnknownNameError
from cbs_obs.look import Look
from cbs_obs.segment.base import ClassProbs, known_names
from tests.conftest import shared_file
from tests.tflite_build import FLOAT16, FLOAT32, INT32, Op, T, concat_options, pool_options, reshape_options, \
    write_model

B = tflite.BuiltinOperator
BO = tflite.BuiltinOptions


def run_graph(path, x_nhwc: np.ndarray):
    """Our import of a .tflite, fed and read in TFLite's NHWC layout."""
    from cbs_obs.segment.tflite_import import TfliteGraph

    g = TfliteGraph(path).eval()
    with torch.no_grad():
        out = g(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))))
    outs = out if isinstance(out, tuple) else (out,)
    res = [o.numpy().transpose(0, 2, 3, 1) if o.dim() == 4 else o.numpy() for o in outs]
    return res if isinstance(out, tuple) else res[0]


# -- importer: one test per operator, against TFLite's reference semantics written in numpy ------
def test_prelu_with_fp16_alpha(tmp_path):
    x = np.float32([[[[1.0, -2.0], [-4.0, 3.0]], [[0.0, -1.0], [-8.0, -0.5]]]])  # 1x2x2x2 NHWC
    alpha16 = np.float16([[[0.25, 0.5]]])
    path = write_model(tmp_path / "prelu.tflite",
                       [T((1, 2, 2, 2)), T((1, 1, 2), FLOAT16, alpha16), T((1, 1, 2)), T((1, 2, 2, 2))],
                       [Op(B.DEQUANTIZE, (1,), (2,)), Op(B.PRELU, (0, 2), (3,))], [0], [3])
    got = run_graph(path, x)
    expected = np.float32([[[[1.0, -1.0], [-1.0, 3.0]], [[0.0, -0.5], [-2.0, -0.25]]]])
    np.testing.assert_array_equal(got, expected)


def _max_pool_ref(x, k, s, same):
    """TFLite MAX_POOL_2D on NHWC: SAME pads (extra pixel after) with nothing that can win the max."""
    n, h, w, c = x.shape
    if same:
        oh, ow = -(-h // s), -(-w // s)
        ph = max((oh - 1) * s + k - h, 0) // 2
        pw = max((ow - 1) * s + k - w, 0) // 2
    else:
        oh, ow, ph, pw = (h - k) // s + 1, (w - k) // s + 1, 0, 0
    out = np.empty((n, oh, ow, c), np.float32)
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * s - ph, j * s - pw
            win = x[:, max(y0, 0) : y0 + k, max(x0, 0) : x0 + k]
            out[:, i, j] = win.max(axis=(1, 2))
    return out


@pytest.mark.parametrize("k,s,same,hw", [(2, 2, False, 4), (3, 2, True, 5), (2, 2, True, 5)])
def test_max_pool(tmp_path, k, s, same, hw):
    rng = np.random.default_rng(k * 10 + hw)
    x = -np.abs(rng.normal(size=(1, hw, hw, 3))).astype(np.float32) - 0.1  # all negative: zero padding would win
    ref = _max_pool_ref(x, k, s, same)
    path = write_model(tmp_path / "pool.tflite", [T(x.shape), T(ref.shape)],
                       [Op(B.MAX_POOL_2D, (0,), (1,), BO.Pool2DOptions, pool_options(k, s, same))], [0], [1])
    np.testing.assert_array_equal(run_graph(path, x), ref)
    if (k, s, same, hw) == (2, 2, False, 4):  # a case worked by hand
        ramp = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1).repeat(3, axis=3)
        np.testing.assert_array_equal(run_graph(path, ramp)[0, :, :, 0], [[5, 7], [13, 15]])


def test_pad_channels_and_space(tmp_path):
    x = np.arange(1 * 2 * 3 * 2, dtype=np.float32).reshape(1, 2, 3, 2) + 1
    pads = np.int32([[0, 0], [1, 0], [0, 2], [0, 3]])  # NHWC: one row on top, two columns right, 3 channels
    ref = np.pad(x, pads)
    path = write_model(tmp_path / "pad.tflite", [T(x.shape), T((4, 2), INT32, pads), T(ref.shape)],
                       [Op(B.PAD, (0, 1), (2,))], [0], [2])
    got = run_graph(path, x)
    assert got.shape == (1, 3, 5, 5)
    np.testing.assert_array_equal(got, ref)


def test_concatenation_on_channels_and_3d(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3) - 6
    w = np.broadcast_to(np.float32([1.0, -1.0]), (1, 2, 2, 2)).copy()  # a constant second operand
    path = write_model(tmp_path / "cat.tflite", [T(x.shape), T(w.shape, FLOAT32, w), T((1, 2, 2, 5))],
                       [Op(B.CONCATENATION, (0, 1), (2,), BO.ConcatenationOptions, concat_options(-1, relu=True))],
                       [0], [2])
    np.testing.assert_array_equal(run_graph(path, x), np.maximum(np.concatenate([x, w], axis=3), 0))
    # 3-D tensors stay in TFLite layout: axis 1 is the anchor axis, as in the face detector's head
    c = np.float32([[[100, 101], [102, 103]]])  # 1x2x2
    path = write_model(tmp_path / "cat3.tflite",
                       [T((1, 2, 2, 2)), T((1, 4, 2)), T((1, 2, 2), FLOAT32, c), T((1, 6, 2))],
                       [Op(B.RESHAPE, (0,), (1,), BO.ReshapeOptions, reshape_options((1, 4, 2))),
                        Op(B.CONCATENATION, (2, 1), (3,), BO.ConcatenationOptions, concat_options(1))], [0], [3])
    x2 = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(run_graph(path, x2), np.concatenate([c, x2.reshape(1, 4, 2)], axis=1))


def test_reshape_flattens_in_nhwc_order(tmp_path):
    x = np.arange(1 * 2 * 2 * 6, dtype=np.float32).reshape(1, 2, 2, 6)
    path = write_model(tmp_path / "reshape.tflite", [T(x.shape), T((1, 8, 3))],
                       [Op(B.RESHAPE, (0,), (1,), BO.ReshapeOptions, reshape_options((1, 8, 3)))], [0], [1])
    got = run_graph(path, x)
    np.testing.assert_array_equal(got, x.reshape(1, 8, 3))  # the detector's anchors come out in this order
    # and back to 4-D through a shape tensor input
    path = write_model(tmp_path / "reshape4.tflite",
                       [T(x.shape), T((1, 8, 3)), T((4,), INT32, np.int32([1, 2, 4, 3])), T((1, 2, 4, 3))],
                       [Op(B.RESHAPE, (0,), (1,), BO.ReshapeOptions, reshape_options((1, 8, 3))),
                        Op(B.RESHAPE, (1, 2), (3,))], [0], [3])
    np.testing.assert_array_equal(run_graph(path, x), x.reshape(1, 2, 4, 3))


def test_several_outputs_come_back_in_order(tmp_path):
    x = np.arange(1 * 2 * 2 * 2, dtype=np.float32).reshape(1, 2, 2, 2) - 3
    path = write_model(tmp_path / "two.tflite", [T(x.shape), T((1, 2, 2, 2)), T((1, 8))],
                       [Op(B.RELU, (0,), (1,)), Op(B.RESHAPE, (0,), (2,), BO.ReshapeOptions, reshape_options((1, 8)))],
                       [0], [2, 1])
    flat, relu = run_graph(path, x)
    np.testing.assert_array_equal(flat, x.reshape(1, 8))
    np.testing.assert_array_equal(relu, np.maximum(x, 0))


# -- MediaPipe's pre/post-processing, on cases worked by hand -------------------------------------
def test_short_range_anchors():
    from cbs_obs.segment.face_detect import ssd_anchors

    a = ssd_anchors()
    assert a.shape == (896, 4)
    np.testing.assert_allclose(a[:2], [[0.5 / 16, 0.5 / 16, 1, 1]] * 2)  # stride 8: 16x16 cells, 2 anchors each
    np.testing.assert_allclose(a[2, :2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[511, :2], [15.5 / 16, 15.5 / 16])
    np.testing.assert_allclose(a[512:518, :2], [[0.5 / 8, 0.5 / 8]] * 6)  # three stride-16 layers share 8x8 cells
    np.testing.assert_allclose(a[-1, :2], [7.5 / 8, 7.5 / 8])
    assert (a[:, 2:] == 1).all()  # fixed anchor size


def test_decode_and_weighted_suppression():
    from cbs_obs.segment.face_detect import DecodeOptions, decode, weighted_nms

    anchors = np.float32([[0.5, 0.5, 1, 1], [0.52, 0.5, 1, 1], [0.1, 0.1, 1, 1], [0.9, 0.9, 1, 1]])
    reg = np.zeros((4, 16), np.float32)
    reg[:, 2:4] = 0.2 * 128  # boxes 0.2 wide and high around each anchor
    reg[0, 4:6] = [-0.05 * 128, 0.01 * 128]  # first keypoint offset from the anchor, in 128 px units
    logits = np.float32([[3.0], [1.0], [2.0], [-1.0]])  # sigmoid: 0.95, 0.73, 0.88, 0.27 (dropped)
    det = decode(reg, logits, anchors, DecodeOptions())
    assert len(det) == 3
    np.testing.assert_allclose(det.boxes[0], [0.4, 0.4, 0.6, 0.6], atol=1e-6)
    np.testing.assert_allclose(det.keypoints[0, 0], [0.45, 0.51], atol=1e-6)
    out = weighted_nms(det, 0.3)
    assert len(out) == 2  # anchors 0 and 1 overlap (IoU 0.82) and merge; anchor 2 stands alone
    s0, s1 = 1 / (1 + np.exp(-3.0)), 1 / (1 + np.exp(-1.0))
    x0 = (0.4 * s0 + 0.42 * s1) / (s0 + s1)
    np.testing.assert_allclose(out.boxes[0], [x0, 0.4, x0 + 0.2, 0.6], atol=1e-6)
    np.testing.assert_allclose(out.scores, [s0, 1 / (1 + np.exp(-2.0))], atol=1e-6)  # the best score is kept


def test_rects_crop_and_projection():
    from cbs_obs.segment.face_mesh import crop, project, rect_from_box, roi_from_detection

    size = (100, 200)  # H, W
    box = (0.4, 0.3, 0.5, 0.5)  # 20 px wide, 20 px high
    level = roi_from_detection(box, [(0.42, 0.35), (0.48, 0.35)], size)
    assert level.rotation == pytest.approx(0.0)
    assert (level.w * 200, level.h * 100) == pytest.approx((30, 30))  # square on the long side, 1.5x
    # eyes one above the other, p0 -> p1 pointing up the image: the crop's x axis must point up
    turned = rect_from_box(box, (0.45, 0.45), (0.45, 0.35), size)
    assert turned.rotation == pytest.approx(-np.pi / 2)
    # projection: the crop's centre is the rect's centre, its right edge lies along the rotated x axis
    pts = project(np.float32([[0.5, 0.5, 0.1], [1.0, 0.5, 0.0]]), turned)
    np.testing.assert_allclose(pts[0], [turned.cx, turned.cy, 0.1 * turned.w], atol=1e-6)
    np.testing.assert_allclose(pts[1, :2], [turned.cx, turned.cy - 0.5 * turned.h], atol=1e-6)
    # the crop really samples that rectangle: a bright dot at the rect's "right" edge lands there
    frame = np.zeros((100, 200, 3), np.uint8)
    cv2.circle(frame, (int(round(pts[1, 0] * 200)), int(round(pts[1, 1] * 100)) + 2), 2, (255, 255, 255), -1)
    c = crop(frame, turned, 40)
    ys, xs = np.nonzero(c[:, :, 0] > 128)
    assert xs.mean() > 32 and abs(ys.mean() - 20) < 4


# -- groups -----------------------------------------------------------------------------------------
def test_person_is_face_plus_body_wherever_a_class_is_named():
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1, 1, 1], size=(6, 8)).transpose(2, 0, 1).astype(np.float32)
    probs = ClassProbs(p, ("background", "face", "body"))
    np.testing.assert_allclose(probs.mask(["person"]), p[1] + p[2], atol=1e-6)
    np.testing.assert_allclose(probs.mask(["person", "face"]), p[1] + p[2], atol=1e-6)  # named twice counts once
    np.testing.assert_array_equal(probs.mask(["person"], hard=True), probs.mask(["face", "body"], hard=True))
    classes = probs.classes
    assert known_names(classes) == ("background", "face", "body", "person")
    Look.from_specs(["person=blur"]).check_classes(classes)
    Look.from_specs(["body=blur", "face=candy-pop"]).check_classes(classes)
    with pytest.raises(SettingsError, match="'face' gets a style from both 'person' and 'face'"):
        Look.from_specs(["person=blur", "face=candy-pop"]).check_classes(classes)
    with pytest.raises(UnknownNameError, match="person"):
        Look.from_specs(["hat=blur"]).check_classes(classes)
    # the plain person segmenter's own class is not a group
    assert known_names(("background", "person")) == ("background", "person")
    Look.from_specs(["person=blur"]).check_classes(("background", "person"))


# -- the real networks on real frames ---------------------------------------------------------------
FRAMES = ("astronaut_360x640", "again_f20", "walk_f30", "headpose_female_f10", "headpose_male_f30")


@pytest.fixture(scope="session")
def face_models(person_model):
    """Both face networks, fetched from the mediapipe wheel on PyPI like the person model."""
    from cbs_obs.models import registry
    from cbs_obs.errors import DownloadError

    try:
        return [registry.fetch(n, progress=False) for n in ("face-detection-short", "face-landmark")]
    except DownloadError as e:
        pytest.skip(f"cannot reach PyPI to fetch the face models: {e}")


@pytest.fixture(scope="session")
def face_nets(face_models):
    from cbs_obs.segment.face_detect import FaceDetector
    from cbs_obs.segment.face_mesh import FaceLandmarker

    return FaceDetector(), FaceLandmarker()


@pytest.fixture(scope="session")
def face_segmenter(face_models):
    from cbs_obs.segment import create_segmenter

    return create_segmenter("person-face")


def reference(name: str):
    """A real frame, MediaPipe FaceMesh's landmarks on it (pixels) and its filled face ovals."""
    meta = json.loads(shared_file("data/faces/faces.json").read_text())
    frame = cv2.imread(str(shared_file(f"data/faces/{name}.png")))
    landmarks = np.load(shared_file(f"data/faces/{name}.landmarks.npy"))
    oval = cv2.imread(str(shared_file(f"data/faces/{name}.face_oval.png")), cv2.IMREAD_GRAYSCALE) > 127
    assert landmarks.shape == (meta["frames"][name]["faces"], 468, 3)
    return frame, landmarks, oval


def face_box(landmarks: np.ndarray) -> float:
    return float(max(np.ptp(landmarks[:, 0]), np.ptp(landmarks[:, 1])))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def own_oval(segmenter, frame: np.ndarray, ref_oval: np.ndarray) -> np.ndarray:
    """The face oval our segmenter draws for a new face in ``frame`` (its mesh settled into its own
    crop, as live tracking shows it), filled; checked against MediaPipe's single-image oval, which
    reaches a little lower (its mesh in the detector's wider crop)."""
    from cbs_obs.segment.person_face import FACE_OVAL

    segmenter.tracker.reset()
    segmenter.segment(frame)
    segmenter.tracker.reset()
    (face,) = segmenter.faces
    filled = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(filled, [np.round(face.landmarks[list(FACE_OVAL), :2]).astype(np.int32)], 1)
    assert iou(filled > 0, ref_oval) >= 0.9
    return filled > 0


def test_oval_order_is_mediapipes(face_models):
    from cbs_obs.segment.person_face import FACE_OVAL

    meta = json.loads(shared_file("data/faces/faces.json").read_text())
    assert list(FACE_OVAL) == meta["oval_order"]


@pytest.mark.parametrize("name", FRAMES)
def test_landmarks_match_mediapipe(face_nets, name):
    """Single-image mode, as the references were made: detector, rotated crop, mesh, projection."""
    from cbs_obs.segment.face_track import FaceTracker

    frame, ref, _ = reference(name)
    faces = FaceTracker(*face_nets, static=True).process(frame)
    assert len(faces) == len(ref) == 1
    got = faces[0].landmarks
    box = face_box(ref[0])
    err = np.linalg.norm(got[:, :2] - ref[0, :, :2], axis=1)
    z_err = np.abs(got[:, 2] - ref[0, :, 2])
    print(f"{name}: mean landmark error {err.mean():.3f} px = {100 * err.mean() / box:.3f}% of the face box "
          f"({box:.0f} px), max {err.max():.2f} px, mean |dz| {z_err.mean():.3f} px")
    assert err.mean() <= 0.01 * box
    assert z_err.mean() <= 0.01 * box


@pytest.mark.parametrize("name", FRAMES)
def test_face_class_matches_mediapipe_oval(face_segmenter, name):
    """One image, as MediaPipe's single-image mode saw it: the mesh in the detector's crop (a new face
    is not settled into its own crop here, which changes the mesh: see the video-mode test)."""
    frame, _, oval = reference(name)
    face_segmenter.tracker.reset()
    settle, face_segmenter.tracker.settle = face_segmenter.tracker.settle, 0
    try:
        probs = face_segmenter.segment(frame)
    finally:
        face_segmenter.tracker.settle = settle
    assert probs.classes == ("background", "face", "body")
    np.testing.assert_allclose(probs.probs.sum(0), 1.0, atol=1e-5)
    face = probs.mask(["face"], frame.shape[:2]) > 0.5
    score = iou(face, oval)
    print(f"{name}: face class IoU with MediaPipe's face oval {score:.4f}")
    assert score >= 0.9
    np.testing.assert_allclose(probs.mask(["person"]), 1 - probs.probs[0], atol=1e-6)


def test_body_style_leaves_the_face_bit_identical(face_segmenter):
    """``body=candy-pop``: hair and clothes styled, the face untouched, through the real stylizer."""
    from cbs_obs.stylizer import ClassStylizer

    frame, _, oval = reference("again_f20")
    face_segmenter.tracker.reset()
    result = ClassStylizer(face_segmenter, Look.from_specs(["body=candy-pop"])).process(frame)
    mine = own_oval(face_segmenter, frame, oval)
    inside = cv2.erode(mine.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # 4 px in from the oval
    same = (result.frame == frame).all(axis=2)
    print(f"face pixels unchanged: {same[inside].mean():.4f} of {inside.sum()}")
    assert same[inside].all()
    body = result.probs.mask(["body"], frame.shape[:2]) > 0.95
    assert body.sum() > 20 * inside.sum() / 10 and (~same[body]).mean() > 0.9  # the outfit really is styled
    # and the other way round: face=... changes the face only
    face_segmenter.tracker.reset()
    only_face = ClassStylizer(face_segmenter, Look.from_specs(["face=candy-pop"])).process(frame)
    far = cv2.dilate(oval.astype(np.uint8), np.ones((25, 25), np.uint8)) == 0
    assert (only_face.frame[far] == frame[far]).all()
    assert (only_face.frame[inside] != frame[inside]).any(axis=1).mean() > 0.9


def _around_face(frame, landmarks, oval, side=240):
    """A ``side`` square of the frame centred on the face, with the reference moved along."""
    cx, cy = (int(v) for v in landmarks[0, :, :2].mean(0))
    x0 = min(max(cx - side // 2, 0), frame.shape[1] - side)
    y0 = min(max(cy - side // 2, 0), frame.shape[0] - side)
    sl = (slice(y0, y0 + side), slice(x0, x0 + side))
    return frame[sl], landmarks[0] - np.float32([x0, y0, 0]), oval[sl]


def test_two_faces_each_get_theirs(face_segmenter):
    """Two real faces side by side (each frame cut to a square around its face: the short-range
    detector, like MediaPipe's, wants faces of at least a fifth or so of the picture)."""
    a, ref_a, oval_a = _around_face(*reference("again_f20"))
    b, ref_b, oval_b = _around_face(*reference("headpose_male_f30"))
    frame = np.hstack([a, b])
    face_segmenter.tracker.reset()
    for _ in range(3):  # the first frame detects, the next ones track
        probs = face_segmenter.segment(frame)
    faces = sorted(face_segmenter.faces, key=lambda f: f.landmarks[:, 0].mean())
    assert len(faces) == 2 and not any(f.detected for f in faces)
    for face, ref, dx in ((faces[0], ref_a, 0), (faces[1], ref_b, a.shape[1])):
        err = np.linalg.norm(face.landmarks[:, :2] - (ref[:, :2] + [dx, 0]), axis=1).mean()
        print(f"face at x+{dx}: mean landmark error {100 * err / face_box(ref):.2f}% of the face box (tracked)")
        assert err <= 0.03 * face_box(ref)  # tracked crops differ from the single-image ones a little
    face = probs.mask(["face"], frame.shape[:2]) > 0.5
    both = np.hstack([oval_a, oval_b])
    print(f"two faces: face class IoU {iou(face, both):.4f}, left {iou(face[:, :240], oval_a):.4f}, "
          f"right {iou(face[:, 240:], oval_b):.4f}")
    assert iou(face[:, :240], oval_a) >= 0.85 and iou(face[:, 240:], oval_b) >= 0.85


def _pan(frame: np.ndarray, dx: int) -> np.ndarray:
    """The camera turned: the picture slides right by ``dx`` pixels (edge pixels fill the gap)."""
    m = np.float32([[1, 0, dx], [0, 1, 0]])
    return cv2.warpAffine(frame, m, (frame.shape[1], frame.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def test_a_redetected_face_is_the_same_face_not_a_second_one(face_nets):
    """Tracking settles on a crop about 0.7x the detector's for the same face (IoU under 0.5): the
    periodic look for newcomers must not add that face again (two ovals for one face, every 15
    frames). On a real clip with one person: one face on every frame, the detector run now and then."""
    from cbs_obs.segment.face_mesh import NormRect
    from cbs_obs.segment.face_track import FaceTracker, associate

    tracked = NormRect(0.47, 0.33, 0.16, 0.285)
    detected = NormRect(0.47, 0.37, 0.23, 0.41)
    assert tracked.iou(detected) < 0.5  # MediaPipe's IoU rule alone would keep both
    assert associate([detected], [(tracked, 7)]) == [(tracked, 7)]
    elsewhere = NormRect(0.8, 0.35, 0.2, 0.35)  # a second person's face
    assert associate([elsewhere], [(tracked, 7)]) == [(elsewhere, None), (tracked, 7)]

    tracker = FaceTracker(*face_nets, redetect_every=15)
    cap = cv2.VideoCapture(str(shared_file("data/video/walk.mkv")))
    counts = []
    for i in range(89):
        ok, frame = cap.read()
        assert ok
        counts.append(len(tracker.process(frame, t=i / 30)))
    cap.release()
    print("faces per frame", counts, "detector runs", tracker.stats.detector_runs)
    assert counts == [1] * 89
    assert 3 <= tracker.stats.detector_runs <= 12  # first sight, then every 15th frame (and fast moves)


def test_tracker_counters_reset_and_read_between_frames():
    """The bench zeroes and reads the tracker's counters while the engine tracks on another thread;
    a reset between a frame's mesh runs and its face count would report more faces than mesh runs."""
    import threading

    from cbs_obs.segment.face_detect import Detections
    from cbs_obs.segment.face_track import FaceTracker

    class TwoFaces:
        def detect(self, frame):
            boxes = np.float32([[0.1, 0.2, 0.3, 0.5], [0.6, 0.2, 0.8, 0.5]])
            eyes = np.float32([[[0.15, 0.3], [0.25, 0.3]], [[0.65, 0.3], [0.75, 0.3]]])
            return Detections(boxes, np.concatenate([eyes, np.repeat(eyes[:, :1], 4, 1)], 1), np.float32([0.9, 0.9]))

    class SlowMesh:  # a mesh run that takes a while, so a reset often lands inside a frame
        def run(self, frame, rect):
            time.sleep(0.002)
            ring = np.stack([np.cos(np.arange(468)), np.sin(np.arange(468)), np.zeros(468)], 1).astype(np.float32)
            return ring * [rect.w / 3, rect.h / 3, 0] + [rect.cx, rect.cy, 0], 0.99

    tracker = FaceTracker(TwoFaces(), SlowMesh(), max_faces=2, smooth=False)
    frame = np.zeros((72, 128, 3), np.uint8)
    stop = threading.Event()
    worker = threading.Thread(target=lambda: [tracker.process(frame) for _ in iter(stop.is_set, True)])
    worker.start()
    try:
        for i in range(200):
            tracker.reset_stats()
            time.sleep(0.0005 * (i % 7))
            per = tracker.stats_per_frame()
            assert per["mesh_runs_per_frame"] >= per["faces_per_frame"], (i, per)
    finally:
        stop.set()
        worker.join()
    assert tracker.stats.faces == 2 * tracker.stats.frames > 0


def test_face_leaving_and_coming_back_is_found_again(face_nets):
    """Tracked while visible (the detector only when tracking slips), lost when out of the picture,
    found again on return."""
    from cbs_obs.segment.face_track import FaceTracker

    frame, ref, _ = reference("again_f20")
    tracker = FaceTracker(*face_nets, max_faces=1)
    out, back = list(range(0, 421, 30)), list(range(420, -1, -30))
    shifts = [0, 0, 0] + out + [420] * 3 + back + [0] * 3  # the camera pans away at 30 px a frame and back
    seen, ran = [], []
    for dx in shifts:
        runs = tracker.stats.detector_runs
        seen.append(len(tracker.process(_pan(frame, dx))))
        ran.append(tracker.stats.detector_runs > runs)
    print("pan", shifts, "\nfaces", seen, "\ndetector", [int(r) for r in ran])
    gone = [i for i, dx in enumerate(shifts) if dx == 420]
    assert seen[:3] == [1, 1, 1] and ran[:3] == [True, False, False]  # detected once, then tracked
    assert all(seen[i] == 0 and ran[i] for i in gone)  # out of the picture: lost, the detector looks every frame
    assert seen[-4:] == [1] * 4 and not any(ran[-3:])  # back: found again, and tracked
    assert all(seen[i] for i, dx in enumerate(shifts) if dx <= 240)  # fully in the picture: never a hole
    final = tracker.process(frame)[0].landmarks
    err = np.linalg.norm(final[:, :2] - ref[0, :, :2], axis=1).mean()
    print(f"after coming back: mean landmark error {100 * err / face_box(ref[0]):.2f}% of the face box")
    assert err <= 0.03 * face_box(ref[0])


def test_no_face_leaves_the_face_class_empty(face_segmenter):
    from cbs_obs.stylizer import ClassStylizer

    cap = cv2.VideoCapture(str(shared_file("data/video/car-detection.mp4")))
    ok, frame = cap.read()
    cap.release()
    assert ok
    face_segmenter.tracker.reset()
    stylizer = ClassStylizer(face_segmenter, Look.from_specs(["face=candy-pop"]))
    result = stylizer.process(frame)
    assert face_segmenter.faces == []
    assert result.probs.probs[1].max() == 0.0
    assert (result.frame == frame).all()  # nothing to style, nothing touched
    assert ClassStylizer(face_segmenter, Look.from_specs(["person=blur"])).process(frame).frame.shape == frame.shape
    blank = np.zeros((48, 64, 3), np.uint8)  # tiny and empty frames do not break it either
    assert face_segmenter.segment(blank).probs[1].max() == 0.0


def test_cli_stylize_with_the_face_kept(face_segmenter, tmp_path):
    from tests.test_cli import run_cli

    src = shared_file("data/faces/again_f20.png")
    out = tmp_path / "out.png"
    proc = run_cli("stylize", src, "-o", out, "--segmenter", "person-face", "-a", "body=candy-pop")
    assert proc.returncode == 0, proc.stderr
    frame, styled = cv2.imread(str(src)), cv2.imread(str(out))
    _, _, oval = reference("again_f20")
    inside = cv2.erode(own_oval(face_segmenter, frame, oval).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert styled.shape == frame.shape and (styled[inside] == frame[inside]).all()
    assert (styled != frame).any(axis=2).mean() > 0.1
    proc = run_cli("stylize", src, "-o", out, "--segmenter", "person-face", "-a", "person=blur", "-a", "face=blur")
    assert proc.returncode == 2 and "'face' gets a style from both 'person' and 'face'" in proc.stderr
    proc = run_cli("classes", "--segmenter", "person-face")
    assert proc.stdout.split("\n")[:2] == ["background face body", "person = face + body"]


def test_bench_reports_face_and_body_with_the_face_nets_cost(face_models, tmp_path):
    """``cbs-obs bench -s person-face -a face=... -a body=...`` on a real clip: steadiness per class,
    the face edge's flicker, and what detection, landmarks and tracking cost per frame."""
    from tests.test_cli import run_cli

    clip = shared_file("data/video/walk.mkv")
    out = tmp_path / "b.json"
    proc = run_cli("bench", "--scenarios", "person720", "--seconds", "3", "--naive-window", "10", "-s", "person-face",
                   "-a", "face=sketch", "-a", "body=grey", "--clip", clip, "--json", "-o", out)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(out.read_text())["scenarios"]["person720"]["walk.mkv"]["async"]
    assert s["segmenter"] == "person-face" and s["look"] == "face=sketch body=grey" and s["fps"] > 0
    faces = s["faces"]
    assert faces["faces_per_frame"] > 0.8  # one person, face in view throughout
    assert faces["mesh_runs_per_frame"] >= faces["faces_per_frame"] and faces["landmarks_ms"] > 0
    assert 0 < faces["detector_runs_per_frame"] < 0.5  # tracked: the detector runs now and then, not every frame
    steady = s["steadiness"]
    assert steady["classes"] == ["face", "body"]
    for c in ("face", "body", "person", "background"):
        r = steady[f"instability_{c}"]
        assert r["ours"]["pairs"] > 0 and r["input"]["mean"] is not None and r["naive"]["pairs"] >= 1, c
    assert set(steady["currency_psnr_db_by_class"]) == {"face", "body"}
    edge = steady["mask_edge_instability_face"]
    assert edge["class"] == "face" and edge["engine"]["pairs"] > 10


def test_a_video_styled_offline_smooths_the_face_on_the_clips_own_clock(face_segmenter):
    """Offline, frames take far longer than 1/30 s each; the landmark smoothing must still see the
    clip's 30 fps (the renderer hands the segmenter each frame's time), or it would barely smooth."""
    from concurrent.futures import ThreadPoolExecutor

    from cbs_obs.engine.render import PerfSettings, Renderer
    from cbs_obs.stylizer import ClassStylizer

    cap = cv2.VideoCapture(str(shared_file("data/video/walk.mkv")))
    frames = [cap.read()[1] for _ in range(4)]
    cap.release()
    face_segmenter.tracker.reset()
    look = Look.from_specs(["body=grey"])
    with ThreadPoolExecutor(2) as pool:
        r = Renderer(ClassStylizer(face_segmenter, look), PerfSettings(moving="sync"), pool, "person-face",
                     realtime=False)
        for i, f in enumerate(frames):
            r.render(f, look, t=100 + i / 30)
            time.sleep(0.2)  # slower than the clip, as offline styling is
        r.close()
    (smoother,) = face_segmenter.tracker._smoothers.values()
    assert smoother.last_t == pytest.approx(100 + 3 / 30) and smoother.frequency == pytest.approx(30, rel=1e-6)


def test_one_euro_smoothing_step_by_step():
    """MediaPipe's one-euro filter worked by hand on a two-point 'face' 40 px wide and 20 high."""
    from cbs_obs.segment.face_smooth import LandmarkSmoother

    pts = np.float32([[0, 0, 0], [40, 20, 0]])
    s = LandmarkSmoother()
    np.testing.assert_array_equal(s.apply(0.0, pts), pts)  # the first sample passes through
    moved = pts + np.float32([3, 0, 0])
    got = s.apply(1 / 30, moved)
    speed = 3 * 30 / 30  # 3 px at 30 Hz, over the face size (40 + 20) / 2 = 30 px
    a_d = 1 / (1 + 30 / (2 * np.pi * 1.0))  # derivative cutoff 1 Hz at 30 Hz
    cutoff = 0.05 + 80 * a_d * speed
    a = 1 / (1 + 30 / (2 * np.pi * cutoff))
    np.testing.assert_allclose(got[:, 0], pts[:, 0] + 3 * a, rtol=1e-5)
    np.testing.assert_allclose(got[:, 1], pts[:, 1], atol=1e-6)  # y did not move
    assert np.array_equal(s.apply(1 / 30, pts), pts)  # a repeated timestamp passes through untouched


def test_one_euro_smoothing_holds_still_faces_and_follows_moving_ones():
    from cbs_obs.segment.face_smooth import LandmarkSmoother

    rng = np.random.default_rng(1)
    base = rng.uniform(0, 100, size=(468, 3)).astype(np.float32)  # a 100 px "face"
    s = LandmarkSmoother()
    outs = [s.apply(i / 30, base + rng.normal(0, 0.5, base.shape).astype(np.float32)) for i in range(60)]
    jitter_out = np.std(np.diff(np.stack(outs[30:]), axis=0))
    assert jitter_out < 0.5 * 0.5 * np.sqrt(2)  # still: the noise is at least halved
    s = LandmarkSmoother()
    for i in range(30):  # moving 10 px a frame (a third of the face a second): follows closely
        got = s.apply(i / 30, base + [10 * i, 0, 0])
    assert np.abs(got[:, 0] - (base[:, 0] + 290)).mean() < 3


def test_tracked_face_oval_is_steady_under_camera_noise(face_nets):
    """A still face seen through sensor noise: the smoothed landmarks barely move from frame to frame."""
    from cbs_obs.segment.face_track import FaceTracker

    frame, _, _ = reference("headpose_male_f30")
    rng = np.random.default_rng(2)
    noisy = [np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8) for _ in range(20)]
    moves = {}
    for smooth in (False, True):
        tracker = FaceTracker(*face_nets, max_faces=1, smooth=smooth)
        pts = [tracker.process(f, t=i / 30)[0].landmarks[:, :2] for i, f in enumerate(noisy)]
        steps = np.diff(np.stack(pts[5:]), axis=0)
        moves[smooth] = float(np.linalg.norm(steps, axis=2).mean())
    print(f"frame-to-frame landmark movement under noise: raw {moves[False]:.3f} px, smoothed {moves[True]:.3f} px")
    assert moves[True] < 0.35 * moves[False]


def test_live_engine_styles_the_body_and_keeps_the_face(face_models):
    """``run`` with the person-face segmenter: frames flow at 30 fps input, the face stays untouched."""
    from cbs_obs.engine import Engine, EngineConfig
    from cbs_obs.io.sources import FramesSource
    from tests.conftest import wait_for
    from tests.test_engine import Capture

    frame, _, oval = reference("again_f20")
    capture = Capture()
    engine = Engine(EngineConfig(source="faces", segmenter="person-face"),
                    Look.from_specs(["body=candy-pop", "background=grey"]), [capture],
                    source=FramesSource([frame], 30.0, name="face clip"))
    with engine:
        assert wait_for(lambda: len(capture.items) >= 20, timeout=90)
        stats = engine.stats.snapshot()
    assert stats["errors"] == 0, stats.get("last_error")
    # 8 px in: tracked crops (the live path) give a mesh a few percent smaller than single-image mode
    inside = cv2.erode(oval.astype(np.uint8), np.ones((17, 17), np.uint8)) > 0
    last = capture.items[-1][2]
    assert last.shape == frame.shape
    assert (last[inside] == frame[inside]).all()  # the face, bit-identical
    assert (last != frame).any(axis=2).mean() > 0.5  # background and outfit styled


TRACKED_REFS = Path(__file__).parent / "data" / "faces_tracked"


@pytest.mark.parametrize("settle", [0, 2])
@pytest.mark.parametrize("clip", ["again", "walk", "head-pose-face-detection-male"])
def test_tracking_matches_mediapipe_video_mode(request, clip, settle):
    """Frame by frame over a real clip, the tracked landmarks (crop from the last landmarks, detector
    only when lost) agree with MediaPipe's own FaceMesh in video mode (references in
    tests/data/faces_tracked, see its README). Smoothing off, ``redetect_every=1`` and no settling
    of new faces: MediaPipe's legacy FaceMesh does none of these."""
    from cbs_obs.segment.face_track import FaceTracker

    meta = json.loads((TRACKED_REFS / "tracked.json").read_text())["clips"][clip]
    video = shared_file(f"data/{meta['source']}")
    with np.load(TRACKED_REFS / f"{clip}.npz") as ref:
        xy, found = ref["xy_32ths"].astype(np.float32) / 32, ref["found"]
    assert len(xy) == meta["frames"] and found.sum() == meta["frames_with_face"]
    tracker = FaceTracker(*request.getfixturevalue("face_nets"), max_faces=1, smooth=False, redetect_every=1,
                          settle=settle)
    cap = cv2.VideoCapture(str(video))
    errors = []
    for r, has_face in zip(xy, found, strict=True):
        ok, frame = cap.read()
        assert ok
        faces = tracker.process(frame)
        assert len(faces) == int(has_face)
        if faces:
            errors.append(np.linalg.norm(faces[0].landmarks[:, :2] - r, axis=1).mean() / face_box(r))
    cap.release()
    print(f"{clip}: {len(errors)} tracked frames, mean landmark error {100 * np.mean(errors):.3f}% of the face box, "
          f"worst frame {100 * np.max(errors):.3f}%; detector ran on {tracker.stats.detector_runs} frames")
    if settle:
        print(f"first frames {np.round(100 * np.array(errors[:4]), 2)}%")
        errors = errors[3:]
    assert np.mean(errors) <= 0.01 and np.max(errors) <= 0.01
    assert tracker.stats.detector_runs == 1  # found once, then followed
    assert tracker.stats.landmark_runs == len(xy) + settle


def test_control_patches_and_presets_accept_the_person_group(tmp_path):
    """The API's look patches and the presets name ``person`` with the person-face segmenter too."""
    from types import SimpleNamespace

    from cbs_obs.control.controller import Controller
    from cbs_obs.control.presets import Presets
    from cbs_obs.stylizer import ClassStylizer

    stylizer = ClassStylizer(SimpleNamespace(name="person-face", classes=("background", "face", "body")))

    class Engine:  # the part of the engine the controller talks to
        classes, look = stylizer.classes, Look()

        def set_look(self, look):
            self.look = stylizer.set_look(look)

    ctl = Controller(Engine(), Presets(tmp_path / "presets.json"))
    ctl.patch_look({"assignments": {"person": "blur", "background": "grey"}})
    ctl.save_preset("Painted me")
    ctl.patch_look({"assignments": {"person": None, "body": "blur", "face": "grey"}})
    with pytest.raises(SettingsError, match="'face' gets a style from both"):
        ctl.patch_look({"assignments": {"person": "blur"}})
    assert {a.cls for a in ctl.apply_preset("Painted me").assignments} == {"person", "background"}
    with pytest.raises(UnknownNameError, match="valid classes: background, face, body, person"):
        ctl.patch_look({"assignments": {"hair": "blur"}})


def test_oval_window_matches_the_whole_grid_and_faces_at_the_border():
    """The oval is drawn in the face's own window; the result is what drawing on the whole grid gives."""
    from cbs_obs.segment.face_track import TrackedFace
    from cbs_obs.segment.person_face import FACE_OVAL, face_oval_mask

    t = np.linspace(0, 2 * np.pi, len(FACE_OVAL), endpoint=False)
    lm = np.zeros((468, 3), np.float32)

    def face(cx, cy):
        pts = lm.copy()
        pts[list(FACE_OVAL), 0], pts[list(FACE_OVAL), 1] = cx + 40 * np.cos(t), cy + 55 * np.sin(t)
        return TrackedFace(pts, 1.0, None, False)

    inside = face_oval_mask([face(100, 80)], (200, 300), (200, 300), 0.03)
    whole = np.zeros((200, 300), np.uint8)  # the same oval drawn and blurred on the whole grid
    pts = face(100, 80).landmarks[list(FACE_OVAL), :2]
    cv2.fillPoly(whole, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    whole = np.clip((cv2.GaussianBlur(whole.astype(np.float32) / 255, (0, 0), 0.03 * 80) - 0.25) * 2, 0, 1)
    np.testing.assert_allclose(inside, whole, atol=1e-5)
    assert inside[80, 100] == 1.0 and inside[80, 40] == 0.0 and inside.sum() == pytest.approx(np.pi * 40 * 55, rel=0.03)
    half = face_oval_mask([face(10, 80)], (200, 300), (200, 300), 0.03)  # half out of the picture
    assert half[80, 0] == 1.0 and half[80, 55] < 0.5 < half[80, 46] and half[80, 62] == 0.0
    gone = face_oval_mask([face(-200, 80)], (200, 300), (200, 300), 0.03)
    assert gone.max() == 0.0


# -- speed: what keeps the face class at the camera's frame rate --------------------------------------
@pytest.mark.parametrize("name", ["selfie-landscape", "face-detection-short", "face-landmark"])
def test_imported_graphs_have_fixed_pads_inside_the_convolutions(face_models, name):
    """The exported graphs carry no run-time size arithmetic and no separate padding before a
    convolution that can pad itself: with them, ONNX Runtime ran the face mesh at 6.4 ms instead of
    3.4 (the SAME pads computed from Shape nodes kept it from fusing and laying out the convolutions)."""
    import onnx

    from cbs_obs.models import registry
    from cbs_obs.models.inference import onnx_path
    from cbs_obs.segment.face_detect import FaceDetector
    from cbs_obs.segment.face_mesh import FaceLandmarker
    from cbs_obs.segment.person import PersonSegmenter

    registry.fetch(name, progress=False)
    make = {"selfie-landscape": lambda: PersonSegmenter(progress=False).network,
            "face-detection-short": lambda: FaceDetector(progress=False).runner.network,
            "face-landmark": lambda: FaceLandmarker(progress=False).runner.network}[name]
    network = make()
    assert network.backend == "onnx"
    graph = onnx.load(str(onnx_path(network.key))).graph
    ops = [n.op_type for n in graph.node]
    if name != "selfie-landscape":  # (the selfie net's upsampling reads its batch and channels: folded by ORT)
        assert "Shape" not in ops  # no size read at run time
    # what every tensor works out to, for those that depend on no input (ONNX Runtime folds them at load)
    values = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # topological order
        if node.op_type == "Constant":
            values[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
        elif all(i == "" or i in values for i in node.input):
            values.update(_run_onnx_node(node, [values.get(i) for i in node.input]))
    users = {i: n.op_type for n in graph.node for i in n.input}
    pads_before_conv = 0
    for node in graph.node:
        if node.op_type == "Pad" and users.get(node.output[0]) == "Conv":
            assert node.input[1] in values, "pads computed at run time"
            pads = values[node.input[1]].tolist()
            half = len(pads) // 2
            assert pads[:half] != pads[half:], f"symmetric pad {pads} before a convolution"
            pads_before_conv += 1
    if name == "face-landmark":  # only the one-sided pads of stride-2 convolutions stay separate
        assert pads_before_conv == 6 and ops.count("Conv") == 45


def _run_onnx_node(node, inputs) -> dict:
    """One ONNX node on constant inputs (ONNX's reference evaluator)."""
    from onnx.reference import ReferenceEvaluator

    names = [f"i{k}" if v is not None else "" for k, v in enumerate(inputs)]
    one = onnx_node_with_inputs(node, names)
    got = ReferenceEvaluator(one).run(None, {n: v for n, v in zip(names, inputs, strict=True) if v is not None})
    return dict(zip(node.output, got, strict=True))


def onnx_node_with_inputs(node, names: list[str]):
    from onnx import helper

    one = helper.make_node(node.op_type, names, list(node.output), domain=node.domain)
    one.attribute.extend(node.attribute)
    return one
