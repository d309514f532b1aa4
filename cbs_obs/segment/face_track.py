"""Follow faces from frame to frame the way MediaPipe's FaceMesh front end does.

Each frame's crop comes from the previous frame's landmarks; the detector runs only while fewer
faces are tracked than ``max_faces`` (MediaPipe's ``NormalizedRectVectorHasMinSize`` gate), and
its new crops are merged with the tracked ones so that a tracked face wins over a detection of
the same face (``AssociationNormRect``, IoU > 0.5). A face whose mesh score drops to 0.5 or below
is dropped, which lets the detector look for it again on the next frame.

Three changes from MediaPipe. For cost: with some faces tracked but fewer than ``max_faces``,
MediaPipe runs the detector on every frame to catch newcomers; here it runs every
``redetect_every`` frames (every frame again as soon as no face is tracked; ``redetect_every=1``
is MediaPipe's rule). For steadiness: when a tracked face is lost, MediaPipe shows no face on
that frame and detects on the next one; here the detector runs again on the same frame, so a
fast head movement does not punch a one-frame hole in the face mask. For the face edge: the crop
that tracking settles on is about 0.7 times the width of the detector's crop for the same face
(the mesh spans less than the detector's box), so their IoU is often just under 0.5 and a
re-detection of a tracked face would count as a second face, drawing a second, different oval
for one face every ``redetect_every`` frames. A detection is also the same face when either crop
covers more than half of the other (``NormRect.cover``); two real faces hardly ever do.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from .face_detect import FaceDetector
from .face_mesh import FaceLandmarker, NormRect, roi_from_detection, roi_from_landmarks
from .face_smooth import LandmarkSmoother

ASSOCIATION_IOU = 0.5
MIN_PRESENCE = 0.5


@dataclass(frozen=True)
class TrackedFace:
    """``landmarks``: [468, 3] in frame pixels (x, y; z in the same scale as x), smoothed when the
    tracker smooths. ``id`` stays the same while the face is followed from frame to frame."""

    landmarks: np.ndarray
    score: float
    rect: NormRect
    detected: bool  # this frame's crop came from the detector, not from the last landmarks
    id: int = 0


@dataclass
class TrackerStats:
    frames: int = 0
    detector_runs: int = 0
    landmark_runs: int = 0
    faces: int = 0
    detect_s: float = 0.0
    landmark_s: float = 0.0
    total_s: float = 0.0

    def per_frame(self) -> dict[str, float]:
        """Mean ms per frame for each stage, detector and mesh runs per frame, faces found per frame."""
        n = max(self.frames, 1)
        return {
            "detect_ms": 1000 * self.detect_s / n,
            "landmarks_ms": 1000 * self.landmark_s / n,
            "tracking_ms": 1000 * (self.total_s - self.detect_s - self.landmark_s) / n,
            "detector_runs_per_frame": self.detector_runs / n,
            "mesh_runs_per_frame": self.landmark_runs / n,
            "faces_per_frame": self.faces / n,
        }


def same_face(a: NormRect, b: NormRect, threshold: float = ASSOCIATION_IOU) -> bool:
    """Two crops of one face: IoU above ``threshold`` (MediaPipe's rule), or one covering more than
    half of the other (a tracked crop inside the detector's larger one)."""
    return a.iou(b) > threshold or a.cover(b) > 0.5


def associate(detected: list[NormRect], tracked: list[tuple[NormRect, int]],
              threshold: float = ASSOCIATION_IOU) -> list[tuple[NormRect, int | None]]:
    """Detections (id None) first, then tracked rects with their face id; each newcomer evicts the
    earlier rects of the same face, so a tracked face wins over a detection of itself."""
    out: list[tuple[NormRect, int | None]] = []
    for r, face_id in [(d, None) for d in detected] + list(tracked):
        out = [(o, i) for o, i in out if not same_face(r, o, threshold)]
        out.append((r, face_id))
    return out


class FaceTracker:
    """``process(frame)`` -> the faces in a BGR frame, tracked across calls. Thread-safe."""

    def __init__(self, detector: FaceDetector, landmarker: FaceLandmarker, *, max_faces: int = 4,
                 redetect_every: int = 15, static: bool = False, smooth: bool = True, settle: int = 2):
        self.detector, self.landmarker = detector, landmarker
        self.max_faces, self.redetect_every, self.static = max(1, int(max_faces)), max(1, int(redetect_every)), static
        self.smooth = smooth and not static
        self.settle = 0 if static else max(0, int(settle))
        self.stats = TrackerStats()
        self._lock = threading.Lock()
        self._prev: list[tuple[NormRect, int]] = []
        self._size: tuple[int, int] | None = None
        self._since_detect = 0
        self._next_id = 1
        self._smoothers: dict[int, LandmarkSmoother] = {}

    def reset(self) -> None:
        with self._lock:
            self._prev, self._size, self._since_detect, self._smoothers = [], None, 0, {}

    def reset_stats(self) -> None:
        """Zero the counters between frames (under the lock), so no frame is counted on one side only."""
        with self._lock:
            self.stats = TrackerStats()

    def stats_per_frame(self) -> dict[str, float]:
        """``stats.per_frame()`` read between frames, while another thread may be tracking."""
        with self._lock:
            return self.stats.per_frame()

    def process(self, frame: np.ndarray, t: float | None = None) -> list[TrackedFace]:
        """``t``: the frame's time in seconds for the landmark smoothing (default: now)."""
        with self._lock:
            return self._process(frame, time.monotonic() if t is None else t)

    def _detect(self, frame: np.ndarray) -> list[NormRect]:
        t = time.perf_counter()
        det = self.detector.detect(frame).take(self.max_faces)
        self.stats.detect_s += time.perf_counter() - t
        self.stats.detector_runs += 1
        self._since_detect = 0
        size = frame.shape[:2]
        return [roi_from_detection(det.boxes[i], det.keypoints[i], size) for i in range(len(det))]

    def _mesh(self, frame: np.ndarray, rect: NormRect) -> tuple[np.ndarray, float]:
        t = time.perf_counter()
        landmarks, score = self.landmarker.run(frame, rect)
        self.stats.landmark_s += time.perf_counter() - t
        self.stats.landmark_runs += 1
        return landmarks, score

    def _landmarks(self, frame: np.ndarray, rects: list[tuple[NormRect, int | None]]) -> list[TrackedFace]:
        """The mesh in each crop; faces scoring MIN_PRESENCE or less are dropped (normalised coords)."""
        faces = []
        size = frame.shape[:2]
        for rect, face_id in rects:
            landmarks, score = self._mesh(frame, rect)
            from_detector = face_id is None
            for _ in range(self.settle if from_detector and score > MIN_PRESENCE else 0):
                # a new face: run the mesh again in the crop its own landmarks give, as the next frames will
                better = roi_from_landmarks(landmarks, size)
                again, again_score = self._mesh(frame, better)
                if again_score <= MIN_PRESENCE:
                    break
                rect, landmarks, score = better, again, again_score
            if score > MIN_PRESENCE:
                if from_detector:
                    face_id, self._next_id = self._next_id, self._next_id + 1
                faces.append(TrackedFace(landmarks, score, rect, from_detector, face_id))
        return faces

    def _process(self, frame: np.ndarray, now: float) -> list[TrackedFace]:
        t0 = time.perf_counter()
        size = frame.shape[:2]
        prev = [] if self.static or size != self._size else self._prev
        self._size = size
        ran = False
        detected: list[NormRect] = []
        due = not prev or self._since_detect + 1 >= self.redetect_every
        if len(prev) < self.max_faces and due:
            detected, ran = self._detect(frame), True
        else:
            self._since_detect += 1
        faces = self._landmarks(frame, associate(detected, prev)[: self.max_faces])
        if not ran and len(faces) < len(prev):
            # A tracked face slipped out of its crop (fast motion). MediaPipe would show no face on
            # this frame and detect on the next; detecting now avoids a one-frame hole in the mask.
            kept = [f.rect for f in faces]
            fresh = [r for r in self._detect(frame) if not any(same_face(r, k) for k in kept)]
            faces += self._landmarks(frame, [(r, None) for r in fresh[: self.max_faces - len(faces)]])
        # the next crops come from the raw landmarks, as in MediaPipe; only the output is smoothed
        self._prev = [(roi_from_landmarks(f.landmarks, size), f.id) for f in faces]
        h, w = size
        scale = np.float32([w, h, w])
        smoothers = {f.id: self._smoothers.get(f.id) or LandmarkSmoother() for f in faces} if self.smooth else {}
        self._smoothers = smoothers
        faces = [TrackedFace(smoothers[f.id].apply(now, f.landmarks * scale) if self.smooth else f.landmarks * scale,
                             f.score, f.rect, f.detected, f.id) for f in faces]
        self.stats.frames += 1
        self.stats.faces += len(faces)
        self.stats.total_s += time.perf_counter() - t0
        return faces
