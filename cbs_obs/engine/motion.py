"""Dense motion of the input between consecutive frames, at low resolution.

Styled content must move with what it paints: a styled hand follows the hand on every frame, not
only when a new style result lands. The input's optical flow (OpenCV DIS, a quarter of the frame
size, under 2 ms a frame here) tells where each pixel came from; a forward-backward check marks
where that answer cannot be trusted (occlusions, newly visible places), so carried content is
replaced there rather than smeared.

Conventions: ``backward`` flow at the current frame gives, for each current pixel, the offset to
where it was in the previous frame, so ``cv2.remap(previous, x + backward)`` carries the previous
frame's content to the current frame.
"""
from __future__ import annotations

import cv2
import numpy as np

FLOW_SCALE = 4  # flow at 1/4 of the frame size: hands and faces are still several flow pixels wide


_GRIDS: dict[tuple[int, int], np.ndarray] = {}


def grid(h: int, w: int) -> np.ndarray:
    """Absolute pixel coordinates (x, y) of an h x w image, float32 h x w x 2 (cached: treat as read-only)."""
    g = _GRIDS.get((h, w))
    if g is None:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        g = _GRIDS[(h, w)] = np.dstack([xs, ys])
    return g


_PLANES: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid_planes(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """``grid(h, w)`` as separate x and y planes (cached: treat as read-only)."""
    p = _PLANES.get((h, w))
    if p is None:
        p = _PLANES[(h, w)] = tuple(cv2.split(grid(h, w)))
    return p


def _dis(finest_scale: int, stride: int | None = None):
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    dis.setFinestScale(finest_scale)
    if stride is not None:
        dis.setPatchStride(stride)
    return dis


def consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Where the flow can be trusted (Ruder et al. 2016): following the backward flow and then the
    forward flow from there must come back close to the start, and no motion boundary is crossed.

    ``backward``: current -> previous; ``forward``: previous -> current. Returns bool at flow size."""
    h, w = backward.shape[:2]
    # per channel on contiguous planes: 2-channel views cost OpenCV a copy each (3.5 -> about 1 ms at 320x180)
    gx, gy = _grid_planes(h, w)
    bx, by = cv2.split(backward)
    mx, my = gx + bx, gy + by
    fx, fy = cv2.split(cv2.remap(forward, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    b2 = bx * bx + by * by
    tx, ty = bx + fx, by + fy
    ok = tx * tx + ty * ty <= 0.01 * (b2 + fx * fx + fy * fy) + 0.5
    grad2 = np.zeros((h, w), np.float32)
    for c in (bx, by):  # central differences, as np.gradient, at a fraction of the cost
        for dx, dy in ((1, 0), (0, 1)):
            g = cv2.Sobel(c, cv2.CV_32F, dx, dy, ksize=1, scale=0.5)
            grad2 += g * g
    ok &= grad2 <= 0.01 * b2 + 0.002
    ok &= (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return ok


class Motion:
    """Flow between the previous and the current frame; ``update`` once per frame, then ask it to move things."""

    def __init__(self, scale: int = FLOW_SCALE, light: bool = False):
        """``light``: start with the carrying flow at half the detail (``fine`` may be switched per frame)."""
        self.scale = scale
        # the carrying flow is computed down to the flow size itself (DIS finest scale 0), its
        # patches 6 px apart instead of 4 (5.4 ms a frame here against 2.5 at finest scale 1, 10 at 0 with
        # the preset's 4). A style result lands on a canvas carried for many frames: the finer the carrying,
        # the less the old and new textures are offset when they are blended, and the less the styled
        # person shimmers at each refresh (offline on real clips, a result every 5 frames landing 4 frames
        # later: person instability 2.38 -> 1.69x the input on again, 2.32 -> 1.65x on book, 1.73 -> 1.06x
        # on walk). The light flow (finest scale 1) is for a frame loop that is falling behind the camera.
        # The reverse flow only checks it, so the default is enough there.
        self.fine = not light
        self._fine, self._light = _dis(0, stride=6), _dis(1)
        self.fine_frames = self.frames = 0  # how many flows were computed, and how many of them fine
        self._check = _dis(2)
        self._prev: np.ndarray | None = None
        self.shape: tuple[int, int] | None = None  # full frame (h, w)
        self.backward: np.ndarray | None = None  # at flow size, in flow pixels
        self.valid: np.ndarray | None = None  # bool at flow size
        self.still = True  # no usable previous frame (first frame, size change): nothing moved

    def update(self, pixels: np.ndarray) -> None:
        h, w = pixels.shape[:2]
        fw, fh = max(8, w // self.scale), max(8, h // self.scale)
        gray = cv2.resize(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), (fw, fh), interpolation=cv2.INTER_AREA)
        if self._prev is None or self._prev.shape != gray.shape:
            self.backward = np.zeros((fh, fw, 2), np.float32)
            self.valid = np.ones((fh, fw), bool)
            self.still = True
        else:
            self.backward = (self._fine if self.fine else self._light).calc(gray, self._prev, None)
            self.frames += 1
            self.fine_frames += self.fine
            forward = self._check.calc(self._prev, gray, None)
            self.valid = consistent(forward, self.backward)
            self.still = False
        self._prev, self.shape = gray, (h, w)

    # -- moving things at flow resolution (cheap) --------------------------------------------------
    def carry_small(self, img: np.ndarray, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
        """An image at flow size, moved from the previous frame to the current one."""
        if self.still:
            return img
        h, w = self.backward.shape[:2]
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        coords = grid(h, w) + self.backward
        return cv2.remap(img, coords, None, interpolation, borderMode=cv2.BORDER_REPLICATE)

    def carry(self, chw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """C x h x w maps (class probabilities) of the previous frame moved to this one, at their own
        size, with where that can be trusted (0..1). Unmoved when there is no motion yet."""
        if self.still:
            return chw, None
        c, h, w = chw.shape
        fh, fw = self.backward.shape[:2]
        flow = _affine(cv2.resize(self.backward, (w, h), interpolation=cv2.INTER_LINEAR), w / fw, h / fh)
        coords = np.add(grid(h, w), flow, out=flow)
        # plane by plane: no channel-last copy on the way in, nor strided planes on the way out
        moved = np.empty_like(chw)
        for i in range(c):
            cv2.remap(chw[i], coords, None, cv2.INTER_LINEAR, dst=moved[i], borderMode=cv2.BORDER_REPLICATE)
        trusted = cv2.resize(self.valid.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        return moved, trusted

    def chain(self, coords: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Extend a map "current frame -> frame k" (absolute flow-size coordinates) by this frame's motion."""
        if self.still:
            return coords, valid
        h, w = self.backward.shape[:2]
        at = grid(h, w) + self.backward
        moved = cv2.remap(coords, at, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ok = cv2.remap(valid.astype(np.uint8), at, None, cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
        return moved, ok & self.valid

    def identity(self) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.backward.shape[:2]
        return grid(h, w), np.ones((h, w), bool)

    # -- applying a flow-size map to full-resolution pixels --------------------------------------------
    def full_map(self, coords: np.ndarray, box: tuple[int, int, int, int],
                 shape: tuple[int, int] | None = None) -> np.ndarray:
        """A flow-size absolute map, upsampled to a remap map (x, y per pixel, h x w x 2) for the region
        ``box`` of an image of ``shape`` (default: the frame's; a smaller shape for pictures kept at a
        fraction of it)."""
        y0, y1, x0, x1 = box
        h, w = shape or self.shape
        fh, fw = coords.shape[:2]
        sx, sy = w / fw, h / fh
        # the flow cells that cover the box (one cell of context), scaled to full-resolution coordinates
        cy0, cy1 = max(0, int(y0 / sy) - 1), min(fh, int(np.ceil(y1 / sy)) + 1)
        cx0, cx1 = max(0, int(x0 / sx) - 1), min(fw, int(np.ceil(x1 / sx)) + 1)
        cells = _affine(coords[cy0:cy1, cx0:cx1], sx, sy, 0.5 * sx - 0.5, 0.5 * sy - 0.5)
        big = cv2.resize(cells, (round((cx1 - cx0) * sx), round((cy1 - cy0) * sy)), interpolation=cv2.INTER_LINEAR)
        oy, ox = y0 - round(cy0 * sy), x0 - round(cx0 * sx)
        return big[oy:oy + (y1 - y0), ox:ox + (x1 - x0)]

    def full_mask(self, valid: np.ndarray, box: tuple[int, int, int, int],
                  shape: tuple[int, int] | None = None) -> np.ndarray:
        """A flow-size map (bool or 0..1) as a float weight 0..1 over ``box`` of an image of ``shape`` (soft edges)."""
        y0, y1, x0, x1 = box
        h, w = shape or self.shape
        up = cv2.resize(valid.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        return up[y0:y1, x0:x1]

    def step_map(self) -> np.ndarray:
        """This frame's backward motion as an absolute flow-size map (current -> previous)."""
        h, w = self.backward.shape[:2]
        return grid(h, w) + self.backward


def _affine(xy: np.ndarray, sx: float, sy: float, ox: float = 0.0, oy: float = 0.0) -> np.ndarray:
    """(x * sx + ox, y * sy + oy) for every pixel of a 2-channel map. numpy broadcasts a per-channel
    scale over a channel-last array slowly (0.8 ms at 384x216); OpenCV's transform takes 0.2."""
    return cv2.transform(xy, np.float32([[sx, 0, ox], [0, sy, oy]]))


def remap_region(src: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Sample ``src`` (full frame) at the given full-resolution map (one 2-channel map: OpenCV takes
    it as it is, where separate x and y views of it would each be copied first). A 3-channel picture is
    sampled with a fourth channel added: OpenCV's 4-channel remap is vectorised and its 3-channel one
    is not, so the round trip gives the same pixels in less than half the time."""
    if src.ndim == 3 and src.shape[2] == 3 and src.dtype == np.uint8:
        four = cv2.remap(cv2.cvtColor(src, cv2.COLOR_BGR2BGRA), xy, None, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        return cv2.cvtColor(four, cv2.COLOR_BGRA2BGR)
    return cv2.remap(src, xy, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
