"""Webcam framing with the face as its own class: background, face, body (``person`` = face + body).

The person mask comes from the selfie segmenter; the faces from MediaPipe's detector and face
mesh, tracked from frame to frame (face_track.py). Each face's class is its face oval (the 36
outline points of the mesh) filled, with a soft edge that follows the oval, and intersected with
the person mask, so ``body=...`` styles hair and clothes and leaves the face untouched.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .base import ClassProbs
from .face_detect import FaceDetector
from .face_mesh import FaceLandmarker
from .face_track import FaceTracker, TrackedFace
from .person import PersonSegmenter

# MediaPipe's FACEMESH_FACE_OVAL edges walked as one closed outline (mesh point indices).
FACE_OVAL = (176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109, 10, 338, 297, 332, 284,
             251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148)
MASK_SIDE = 384  # long side of the probability grid: the face edge needs more than the selfie net's 256
_SHIFT = 4  # sub-pixel bits for polygon filling


def face_oval_mask(faces: list[TrackedFace], frame_size: tuple[int, int], grid: tuple[int, int],
                   edge: float) -> np.ndarray:
    """Filled face ovals on a ``grid`` = (h, w) covering the frame, float32 in [0, 1].

    ``edge``: width of the fade across the oval as a fraction of each face's width (Gaussian sigma;
    0 gives an anti-aliased hard edge).
    """
    gh, gw = grid
    out = np.zeros(grid, np.float32)
    sx, sy = gw / frame_size[1], gh / frame_size[0]
    for face in faces:
        pts = face.landmarks[list(FACE_OVAL), :2] * np.float32([sx, sy])
        sigma = edge * float(np.ptp(pts[:, 0]))
        # work in the face's own window (the oval plus the blur's reach), not the whole grid
        pad = int(np.ceil(4 * sigma)) + 2
        x0, y0 = (max(int(np.floor(v)) - pad, 0) for v in pts.min(0))
        x1, y1 = min(int(np.ceil(pts[:, 0].max())) + pad, gw), min(int(np.ceil(pts[:, 1].max())) + pad, gh)
        if x1 <= x0 or y1 <= y0:
            continue  # the face is outside the picture
        one = np.zeros((y1 - y0, x1 - x0), np.uint8)
        local = np.round((pts - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(one, [local], 255, cv2.LINE_AA, _SHIFT)
        soft = one.astype(np.float32) * (1 / 255)
        if sigma > 0.3:
            # The blurred outline is 0.5 on the oval. Stretching [0.25, 0.75] to [0, 1] keeps that
            # contour on the oval and makes the face exactly 1 from 0.7 sigma inside it, so pixels
            # there stay untouched when only the body is styled. The window's margin is empty, so
            # only the picture's own border is reflected, as on the whole grid.
            soft = np.clip((cv2.GaussianBlur(soft, (0, 0), sigma) - 0.25) * 2, 0, 1)
        window = out[y0:y1, x0:x1]
        np.maximum(window, soft, out=window)
    return out


class PersonFaceSegmenter:
    """Classes ``background``, ``face``, ``body``; the group ``person`` names face + body.

    ``max_faces``: how many faces get their own oval. ``edge``: softness of the face edge as a
    fraction of the face width. ``variant``/``backend``: as for the person segmenter.

    The person network and the face networks run one after the other, each in a one-thread ONNX
    Runtime session, on the caller's thread. The live engine already runs segmentation beside its frame
    loop; on two cores a third busy thread for the faces only slowed all three (face + body on a real
    clip, two A/B pairs: 28.8-28.9 -> 29.3-29.9 fps, capture-to-output latency p50 59-60 -> 30-53 ms).
    """

    name = "person-face"
    classes = ("background", "face", "body")
    timed = True  # segment() takes the frame's time: the landmark smoothing is a filter over time

    def __init__(self, weights: Path | None = None, *, variant: str = "landscape", progress: bool = True,
                 backend: str = "onnx", max_faces: int = 4, edge: float = 0.03, redetect_every: int = 15):
        self.person = PersonSegmenter(weights, variant=variant, progress=progress, backend=backend)
        self.tracker = FaceTracker(FaceDetector(backend=backend, progress=progress, one_thread=True),
                                   FaceLandmarker(backend=backend, progress=progress, one_thread=True),
                                   max_faces=max_faces, redetect_every=redetect_every)
        self.edge = float(edge)
        self.backend = self.person.backend
        self.faces: list[TrackedFace] = []  # the last frame's faces, for callers that want the landmarks

    @staticmethod
    def grid(size: tuple[int, int]) -> tuple[int, int]:
        """The probability grid for a frame of ``size`` = (H, W): its shape, long side at most MASK_SIDE."""
        h, w = size
        k = min(1.0, MASK_SIDE / max(h, w))
        return max(1, round(h * k)), max(1, round(w * k))

    def segment(self, frame: np.ndarray, t: float | None = None) -> ClassProbs:
        """``t``: the frame's time in seconds (default: now, right for live sources; a video file
        processed offline passes its frames' own times so the smoothing sees the clip's real rate)."""
        person_small = self.person.person_probability(frame)
        faces = self.tracker.process(frame, t)
        self.faces = faces
        gh, gw = self.grid(frame.shape[:2])
        person = cv2.resize(person_small, (gw, gh), interpolation=cv2.INTER_LINEAR)
        face = face_oval_mask(faces, frame.shape[:2], (gh, gw), self.edge) * person
        return ClassProbs(np.stack([1.0 - person, face, person - face]), self.classes)
