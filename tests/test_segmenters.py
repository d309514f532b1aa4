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



def test_person_graph_stays_in_blocked_layout(person_segmenter, portrait):
    """The selfie network's export carries no Pad in front of its stride-2 convolutions and no
    ReduceMean (ONNX Runtime would leave its blocked layout around each), and gives the torch
    module's numbers on a real portrait."""
    import onnx

    from cbs_obs.models.inference import onnx_path

    if person_segmenter.backend != "onnx":
        pytest.skip("the person network runs in torch on this machine (no ONNX Runtime graph)")
    ops = [n.op_type for n in onnx.load(str(onnx_path(person_segmenter.network.key))).graph.node]
    assert "Pad" not in ops and "ReduceMean" not in ops
    assert ops.count("GlobalAveragePool") == 10
    small = cv2.cvtColor(person_segmenter._sample(portrait), cv2.COLOR_BGR2RGB)
    x = (small.astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    with torch.inference_mode():
        expected = person_segmenter.net(torch.from_numpy(x)).numpy()
    # within the bar every export is checked against (kernel order moves the last digits: about 1e-4 here)
    np.testing.assert_allclose(person_segmenter.network.run(x), expected, atol=1e-3)


def test_layout_rewrite_keeps_numbers(tmp_path):
    """One-sided zero pads move into the convolution and spatial means become global pooling, with
    the same output, on a small module shaped like TFLite's exports."""
    import onnx
    import onnxruntime as ort
    import torch.nn.functional as F

    from cbs_obs.models.onnx_layout import fold_layout_breakers

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)
            self.dw = torch.nn.Conv2d(8, 8, 5, stride=2, groups=8)
            self.se = torch.nn.Conv2d(8, 8, 1)

        def forward(self, x):
            y = torch.relu(self.conv(F.pad(x, (0, 1, 0, 1))))
            y = self.dw(F.pad(y, (1, 2, 1, 2)))
            return y * torch.sigmoid(self.se(y.mean((2, 3), keepdim=True)))

    net, x = Net().eval(), torch.rand(1, 3, 36, 64)
    path = tmp_path / "net.onnx"
    torch.onnx.export(net, (x,), str(path), input_names=["input"], output_names=["output"], opset_version=17,
                      dynamo=False)
    assert fold_layout_breakers(path) == 3
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "Pad" not in ops and "ReduceMean" not in ops
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.inference_mode():
        np.testing.assert_allclose(got, net(x).numpy(), atol=1e-5)


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
