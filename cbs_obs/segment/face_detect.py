"""Find faces the way MediaPipe's short-range face detector does, in our own code.

The network (BlazeFace, 128x128) only scores 896 fixed SSD anchors and regresses offsets from
them; the box a user sees comes from the pre- and post-processing around it, so that is rebuilt
step by step from MediaPipe's graph ``face_detection_short_range`` and its option values:
letterbox the frame into 128x128 (zero border, values in [-1, 1]), generate the anchors, decode
boxes and six keypoints, keep scores above 0.5, merge overlaps with weighted non-maximum
suppression (IoU > 0.3), and map the result back out of the letterbox.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..models import registry
from .tflite_runner import TfliteRunner


@dataclass(frozen=True)
class AnchorOptions:
    """MediaPipe's SsdAnchorsCalculatorOptions, defaulting to the short-range face detector's values."""

    num_layers: int = 4
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    input_height: int = 128
    input_width: int = 128
    offset_x: float = 0.5
    offset_y: float = 0.5
    strides: tuple[int, ...] = (8, 16, 16, 16)
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = False
    fixed_anchor_size: bool = True


@dataclass(frozen=True)
class DecodeOptions:
    """MediaPipe's TensorsToDetectionsCalculatorOptions for the short-range face detector."""

    num_keypoints: int = 6
    box_scale: float = 128.0  # x_scale = y_scale = w_scale = h_scale
    score_clip: float = 100.0
    min_score: float = 0.5
    nms_iou: float = 0.3


def _scale(o: AnchorOptions, index: int) -> float:
    n = len(o.strides)
    if n == 1:
        return (o.min_scale + o.max_scale) * 0.5
    return o.min_scale + (o.max_scale - o.min_scale) * index / (n - 1.0)


def ssd_anchors(o: AnchorOptions = AnchorOptions()) -> np.ndarray:
    """Anchors as float32 [N, 4] rows (x_center, y_center, width, height), normalised to the input.

    Consecutive layers with the same stride share one feature map, and each of their scales adds
    an anchor per aspect ratio plus one interpolated anchor, as in MediaPipe's calculator.
    """
    rows: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < o.num_layers:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < len(o.strides) and o.strides[last] == o.strides[layer]:
            scale = _scale(o, last)
            if last == 0 and o.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for r in o.aspect_ratios:
                    ratios.append(r)
                    scales.append(scale)
                if o.interpolated_scale_aspect_ratio > 0:
                    nxt = 1.0 if last == len(o.strides) - 1 else _scale(o, last + 1)
                    scales.append(math.sqrt(scale * nxt))
                    ratios.append(o.interpolated_scale_aspect_ratio)
            last += 1
        sizes = [(s * math.sqrt(r), s / math.sqrt(r)) for s, r in zip(scales, ratios, strict=True)]  # (w, h)
        stride = o.strides[layer]
        fh, fw = math.ceil(o.input_height / stride), math.ceil(o.input_width / stride)
        for y in range(fh):
            for x in range(fw):
                cx, cy = (x + o.offset_x) / fw, (y + o.offset_y) / fh
                for w, h in sizes:
                    rows.append((cx, cy, 1.0, 1.0) if o.fixed_anchor_size else (cx, cy, w, h))
        layer = last
    return np.asarray(rows, np.float32)


@dataclass(frozen=True)
class Detections:
    """Faces in normalised coordinates: ``boxes`` [n, 4] (xmin, ymin, xmax, ymax), ``keypoints``
    [n, 6, 2] (x, y of the two eyes, nose tip, mouth centre and the two ear tragions, in
    MediaPipe's order), ``scores`` [n]."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, n: int) -> Detections:
        return Detections(self.boxes[:n], self.keypoints[:n], self.scores[:n])


def decode(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray,
           o: DecodeOptions = DecodeOptions()) -> Detections:
    """Raw outputs [N, 16] and [N, 1] -> detections above ``min_score`` (before suppression)."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits[:, 0].astype(np.float64), -o.score_clip, o.score_clip)))
    keep = np.nonzero(scores >= o.min_score)[0]
    r, a = regressors[keep].astype(np.float32), anchors[keep]
    s = o.box_scale
    cx = r[:, 0] / s * a[:, 2] + a[:, 0]
    cy = r[:, 1] / s * a[:, 3] + a[:, 1]
    w = r[:, 2] / s * a[:, 2]
    h = r[:, 3] / s * a[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kp = r[:, 4 : 4 + 2 * o.num_keypoints].reshape(-1, o.num_keypoints, 2) / s
    kp = kp * a[:, None, 2:4] + a[:, None, 0:2]
    return Detections(boxes, kp.astype(np.float32), scores[keep].astype(np.float32))


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (xmin, ymin, xmax, ymax) box with each of ``boxes``."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(det: Detections, threshold: float) -> Detections:
    """MediaPipe's WEIGHTED suppression: each cluster (IoU > ``threshold`` with the best remaining
    detection) becomes one detection whose box and keypoints are the score-weighted mean of the
    cluster, keeping the best score. Output is sorted by score, best first."""
    order = np.argsort(-det.scores, kind="stable")
    boxes, kps, scores = [], [], []
    while len(order):
        best = order[0]
        overlap = iou(det.boxes[best], det.boxes[order]) > threshold
        cluster, order = order[overlap], order[~overlap]
        w = det.scores[cluster][:, None]
        boxes.append((det.boxes[cluster] * w).sum(0) / w.sum())
        kps.append((det.keypoints[cluster] * w[:, :, None]).sum(0) / w.sum())
        scores.append(det.scores[best])
        if not overlap.any():  # cannot happen (a box overlaps itself) unless its area is zero
            break
    if not scores:
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0, det.keypoints.shape[1], 2), np.float32),
                          np.zeros(0, np.float32))
    return Detections(np.asarray(boxes, np.float32), np.asarray(kps, np.float32), np.asarray(scores, np.float32))


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """The frame centred in a square of its long side, scaled to ``size``, zero border.

    Returns the ``size`` x ``size`` image and (side, x0, y0) of the square in frame pixels, which
    map tensor coordinates u in [0, 1] back to frame pixels as x = x0 + u * side.
    """
    h, w = frame.shape[:2]
    side = float(max(h, w))
    x0, y0 = (w - side) / 2, (h - side) / 2
    k = size / side
    m = np.float32([[k, 0, -x0 * k], [0, k, -y0 * k]])
    img = cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(0, 0, 0))
    return img, side, x0, y0


class FaceDetector:
    """BlazeFace short range. ``detect(frame)`` -> Detections normalised to the frame (best first)."""

    def __init__(self, weights: Path | None = None, *, backend: str = "onnx", progress: bool = True,
                 one_thread: bool = False, options: DecodeOptions = DecodeOptions()):
        path = registry.ensure("face-detection-short", weights=weights, progress=progress)
        self.runner = TfliteRunner(path, "face-detection-short", backend=backend, one_thread=one_thread)
        self.size = self.runner.input_size[0]
        self.anchors = ssd_anchors(AnchorOptions(input_height=self.size, input_width=self.size))
        self.options = options
        names = self.runner.output_names
        self._reg, self._cls = names.index("regressors"), names.index("classificators")

    @property
    def backend(self) -> str:
        return self.runner.backend

    def detect(self, frame: np.ndarray) -> Detections:
        """``frame``: BGR uint8 H x W x 3."""
        img, side, x0, y0 = letterbox(frame, self.size)
        x = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1)[None] * (2 / 255) - 1
        outs = self.runner(x)
        det = weighted_nms(decode(outs[self._reg], outs[self._cls], self.anchors, self.options),
                           self.options.nms_iou)
        h, w = frame.shape[:2]
        scale = np.float32([side / w, side / h])
        shift = np.float32([x0 / w, y0 / h])
        boxes = det.boxes.reshape(-1, 2, 2) * scale + shift
        kps = det.keypoints * scale + shift
        return Detections(boxes.reshape(-1, 4).astype(np.float32), kps.astype(np.float32), det.scores)
