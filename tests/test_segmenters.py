"""Fidelity of our segmenters against the original implementations' outputs on shared frames."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from cbs_obs.errors import ModelError
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def cityscapes(dabnet_weights):
    from cbs_obs.segment import create_segmenter

    return create_segmenter("cityscapes")


@pytest.fixture(scope="module")
def street():
    from cbs_obs.io.images import read_image

    frame = read_image(shared_file("data/cityscapes_frame.png"))
    ref = cv2.imread(str(shared_file("data/cityscapes_frame.dabnet_trainids.png")), cv2.IMREAD_UNCHANGED)
    return frame, ref


def test_dabnet_has_published_size(cityscapes):
    assert sum(p.numel() for p in cityscapes.net.parameters()) == 756_643
    assert len(cityscapes.classes) == 19 and cityscapes.classes[13] == "car"


def test_dabnet_matches_original_train_ids(cityscapes, street):
    frame, ref = street
    agree = float((cityscapes.labels_full(frame) == ref).mean())
    print(f"DABNet full-size agreement with the original: {agree:.5f}")
    assert agree >= 0.995


def test_dabnet_soft_path_matches_too(cityscapes, street):
    """The engine's path (softmax at 1/8, probabilities resized) stays within the fidelity bar."""
    frame, ref = street
    probs = cityscapes.segment(frame)
    assert probs.probs.shape == (19, 128, 256)
    np.testing.assert_allclose(probs.probs.sum(0), 1.0, atol=1e-4)
    agree = float((probs.labels(frame.shape[:2]) == ref).mean())
    print(f"DABNet soft-path agreement: {agree:.5f}")
    assert agree >= 0.995


def test_dabnet_rejects_wrong_checkpoint(tmp_path):
    from cbs_obs.segment.cityscapes import load_dabnet
    from cbs_obs.segment.dabnet import DABNet

    state = DABNet(classes=11).state_dict()
    torch.save({"epoch": 1, "model": state}, tmp_path / "camvid.pth")
    with pytest.raises(ModelError, match="not a DABNet checkpoint with 19 classes"):
        load_dabnet(tmp_path / "camvid.pth", 19)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable torch checkpoint"):
        load_dabnet(tmp_path / "junk.pth", 19)


def test_dabnet_loads_dataparallel_prefix(tmp_path):
    from cbs_obs.segment.cityscapes import load_dabnet
    from cbs_obs.segment.dabnet import DABNet

    state = {"module." + k: v for k, v in DABNet().state_dict().items()}
    torch.save({"model": state}, tmp_path / "dp.pth")
    assert isinstance(load_dabnet(tmp_path / "dp.pth", 19), DABNet)


def test_person_mask_matches_mediapipe(person_segmenter, portrait):
    ref = cv2.imread(str(shared_file("data/portrait/astronaut_360x640.selfie_mask.png")), cv2.IMREAD_GRAYSCALE)
    probs = person_segmenter.segment(portrait)
    assert probs.classes == ("background", "person")
    np.testing.assert_allclose(probs.probs.sum(0), 1.0, atol=1e-6)
    mask = probs.mask(["person"], portrait.shape[:2])
    a, b = mask > 0.5, ref > 127
    iou = (a & b).sum() / (a | b).sum()
    print(f"selfie IoU vs MediaPipe: {iou:.4f}, mean abs diff {np.abs(mask - ref / 255).mean():.4f}")
    assert iou >= 0.97


def test_person_general_variant_runs(person_model, portrait):
    from cbs_obs.models import registry
    from cbs_obs.segment import create_segmenter

    try:
        registry.fetch("selfie-general", progress=False)
    except Exception as e:  # network only
        pytest.skip(f"cannot fetch selfie-general: {e}")
    seg = create_segmenter("person", variant="general")
    assert seg.input_size == (256, 256)
    mask = seg.segment(portrait).mask(["person"], portrait.shape[:2])
    # the astronaut is in the middle: the centre is person, the far corners are not
    assert mask[200, 320] > 0.9 and mask[5, 5] < 0.1 and mask[5, 634] < 0.1


def test_tflite_same_padding_is_tf_asymmetric():
    from cbs_obs.segment.tflite_import import _same_pad

    assert _same_pad(144, 3, 2) == (0, 1)  # even input, stride 2: the extra pixel goes bottom/right
    assert _same_pad(145, 3, 2) == (1, 1)
    assert _same_pad(72, 3, 1) == (1, 1)
    assert _same_pad(8, 1, 1) == (0, 0)


def test_tflite_import_refuses_garbage(tmp_path):
    from cbs_obs.segment.tflite_import import TfliteGraph

    (tmp_path / "bad.tflite").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a readable .tflite"):
        TfliteGraph(tmp_path / "bad.tflite")


def test_unknown_segmenter_lists_choices():
    from cbs_obs.errors import UnknownNameError
    from cbs_obs.segment import create_segmenter

    with pytest.raises(UnknownNameError, match="valid segmenters: person, person-face, cityscapes"):
        create_segmenter("faces")


def test_half_precision_path_agrees(dabnet_weights, person_model, portrait):
    """--half (fp16, meant for GPUs) keeps the same answers; checked here on the CPU torch path."""
    from cbs_obs.models import device
    from cbs_obs.segment import create_segmenter

    small = cv2.resize(cv2.imread(str(shared_file("data/cityscapes_frame.png"))), (512, 256))
    full = create_segmenter("cityscapes", backend="torch").segment(small).labels()
    person = create_segmenter("person", backend="torch").segment(portrait).mask(["person"]) > 0.5
    device.set_half(True)
    try:
        seg = create_segmenter("cityscapes", backend="torch")
        assert next(seg.net.parameters()).dtype == torch.float16
        half = seg.segment(small).labels()
        half_person = create_segmenter("person", backend="torch").segment(portrait).mask(["person"]) > 0.5
    finally:
        device.set_half(False)
    assert (half == full).mean() > 0.99
    assert (half_person == person).mean() > 0.99
