"""Faces as a class: the importer's new operators, MediaPipe's face pre/post-processing, fidelity of
the landmarks to MediaPipe's own FaceMesh on real frames, and the person-face segmenter on the
user's paths (stylize, groups, several faces, tracking, no face)."""
from __future__ import annotations

import json

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
