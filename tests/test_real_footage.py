"""Styling on real footage, through ``cbs-obs stylize`` with its default flags (Intel IoT DevKit sample
videos, CC BY 4.0, ../shared/data/video): people walking out of the one-by-one clip, a person signing
in the book clip."""
from __future__ import annotations

import cv2
import numpy as np

from tests.conftest import shared_file
from tests.test_cli import run_cli

FIRST, LAST = 150, 226  # she stands by the wall, walks out at the right edge (~190-200), the room is empty


def _excerpt(path, tmp_path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    for i in range(LAST):
        ok, frame = cap.read()
        assert ok
        if i >= FIRST:
            frames.append(frame)
    cap.release()
    h, w = frames[0].shape[:2]
    out = tmp_path / "excerpt.avi"  # lossless, so the frames compared below are the frames styled
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return out, frames


def _read(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame.astype(np.int16))
    return out


def test_a_person_walking_out_is_neither_painted_over_early_nor_left_behind_in_the_room(person_model, tmp_path):
    from cbs_obs.style.catalog import create

    clip, frames = _excerpt(shared_file("data/video/one-by-one-person-detection.mp4"), tmp_path)
    styled = tmp_path / "styled.avi"
    proc = run_cli("stylize", clip, "-a", "background=blur", "-o", styled)
    assert proc.returncode == 0, proc.stderr
    outs = _read(styled)
    assert len(outs) == len(frames)
    empty = frames[-1].astype(np.int16)  # she has gone
    blur = create("blur")

    # clip frames 190-192: the segmenter has lost her (its P(person) 0.004) while she is still in the
    # picture; she must still be shown as herself, not as blurred room
    for i in range(190 - FIRST, 193 - FIRST):
        her = np.abs(frames[i].astype(np.int16) - empty).max(axis=2) > 60
        assert her.mean() > 0.02, "the excerpt no longer shows her here"
        shown = np.abs(outs[i][her] - frames[i][her]).mean()
        painted = np.abs(blur.apply(frames[i]).astype(np.int16)[her] - frames[i][her]).mean()
        assert shown < 0.5 * painted, f"frame {FIRST + i}: she differs by {shown:.1f} from herself " \
            f"(blurred into the room: {painted:.1f})"

    # clip frames 205-225: she has gone; the blurred room must be the room, without her shadow or feet
    floor = (slice(empty.shape[0] * 2 // 3, None), slice(empty.shape[1] * 3 // 4, None))
    for i in range(205 - FIRST, LAST - FIRST):
        room = blur.apply(frames[i]).astype(np.int16)
        left = np.abs(outs[i][floor] - room[floor]).mean()
        assert left < 5.0, f"frame {FIRST + i}: the room's floor differs by {left:.1f} from the blurred room"


def test_a_styled_person_on_real_footage_takes_each_new_style_result_without_a_jump(person_model, tmp_path):
    """Two style results a second land on the person; each flows in over several frames. Taken in on one
    frame, a result changed the person's box by 29 levels at once where the input's largest change from
    one frame to the next is 7; flowing in, by 13."""
    clip = shared_file("data/video/book.mkv")
    styled = tmp_path / "styled.avi"
    proc = run_cli("stylize", clip, "-a", "person=candy-pop", "-o", styled)
    assert proc.returncode == 0, proc.stderr
    ins, outs = _read(clip), _read(styled)
    assert len(ins) == len(outs) > 60
    box = (slice(60, 420), slice(160, 480))  # the person, all through the clip

    def largest_change(frames):
        return max(np.abs(b[box] - a[box]).mean() for a, b in zip(frames[:-1], frames[1:], strict=True))

    styled_jump, own = largest_change(outs), largest_change(ins)
    assert styled_jump < 2.5 * own, f"the styled person changed by {styled_jump:.1f} at once (input: {own:.1f})"
    assert np.abs(outs[len(outs) // 2][box] - ins[len(ins) // 2][box]).mean() > 20, "the person is not styled"
