"""Training and evaluation on tiny datasets made here (no downloads, a few seconds per run).

Style runs use ``--vgg-random``: a randomly initialised VGG16 still gives a smooth loss the
TransformerNet can lower, which is all these tests check (the styles themselves are meaningless).
Segmentation runs use coloured rectangles, one colour per class, which DABNet learns in a few steps.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import urllib.error
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cbs_obs.errors import InputError, ModelError, SettingsError
from cbs_obs.segment.dabnet import DABNet
from cbs_obs.train import cli as train_cli
from cbs_obs.train import vgg as vgg_module
from cbs_obs.train.data import find_seg_data
from cbs_obs.train.eval import confusion_matrix, iou_from_confusion
from cbs_obs.train.prepare import LABEL_ID_TO_TRAIN_ID, prepare_folder
from cbs_obs.train.seg import SegSettings, poly_lr, train_seg
from cbs_obs.train.style import StyleSettings, train_style

CLASSES = ["background", "grass", "brick"]
COLOURS = np.array([(40, 40, 40), (30, 200, 30), (200, 60, 30)], np.uint8)  # BGR per class


# -- tiny datasets ---------------------------------------------------------------------------------
def make_photos(root: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    (root / "nested").mkdir(parents=True)
    for i in range(n):
        img = (rng.random((64, 80, 3)) * 255).astype(np.uint8)
        cv2.rectangle(img, (8, 8), (40, 50), (int(rng.integers(255)), 120, 60), -1)
        cv2.imwrite(str(root / ("nested" if i % 2 else ".") / f"p{i}.{'jpg' if i % 2 else 'png'}"), img)
    return root


def make_style_image(path: Path) -> Path:
    img = np.zeros((64, 64, 3), np.uint8)
    img[::8] = (0, 128, 255)
    img[:, ::6, 0] = 255
    cv2.imwrite(str(path), img)
    return path


def blocks(rng, size=64) -> np.ndarray:
    """A mask: background with one grass and one brick rectangle."""
    m = np.zeros((size, size), np.uint8)
    for c in (1, 2):
        x, y = rng.integers(0, size - 24, 2)
        w, h = rng.integers(12, 24, 2)
        m[y:y + h, x:x + w] = c
    return m


def paint(mask: np.ndarray, rng) -> np.ndarray:
    img = COLOURS[np.minimum(mask, 2)].astype(np.int16) + rng.integers(-15, 15, (*mask.shape, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_seg_source(root: Path, n: int = 8, sub: str = "") -> Path:
    rng = np.random.default_rng(1)
    (root / "images" / sub).mkdir(parents=True, exist_ok=True)
    (root / "masks" / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        m = blocks(rng)
        cv2.imwrite(str(root / "images" / sub / f"s{i}.png"), paint(m, rng))
        cv2.imwrite(str(root / "masks" / sub / f"s{i}.png"), m)
    return root


@pytest.fixture(scope="module")
def seg_root(tmp_path_factory) -> Path:
    """A prepared 3-class folder dataset (dataset.toml written by data prepare)."""
    base = tmp_path_factory.mktemp("seg")
    make_seg_source(base / "src")
    prepare_folder(base / "src", base / "ds", CLASSES)
    return base / "ds"


def fast_seg(**kw) -> SegSettings:
    return SegSettings(**{"crop": (48, 48), "batch": 4, "epochs": 50, "lr": 5e-3, "workers": 0,
                          "checkpoint_every": 0, **kw})


def fast_style(**kw) -> StyleSettings:
    return StyleSettings(**{"image_size": 64, "batch": 2, "epochs": 10, "workers": 0, "checkpoint_every": 0, **kw})


def one_line_error(capsys, code: int, needle: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.count("\n") == 0 and err.startswith("cbs-obs: error:"), err
    assert needle in err, err
    return err


# -- VGG -------------------------------------------------------------------------------------------
def test_vgg_features_match_torchvision_layout_and_load_its_state_dict():
    from torchvision.models import vgg as tv

    ours = vgg_module.Vgg16Features()
    theirs = tv.make_layers(tv.cfgs["D"])[:23]  # torchvision's vgg16.features, up to relu4_3
    assert [type(m) for m in ours.features] == [type(m) for m in theirs]
    state = {f"features.{k}": v for k, v in theirs.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)  # a full state dict also has the classifier: ignored
    ours.load_torchvision_state(state, "test")
    x = torch.rand(1, 3, 32, 32) * 255
    with torch.no_grad():
        out = ours(x)
        ref = theirs((x / 255 - torch.tensor(vgg_module.IMAGENET_MEAN).view(1, 3, 1, 1))
                     / torch.tensor(vgg_module.IMAGENET_STD).view(1, 3, 1, 1))
    assert [f.shape[1] for f in out] == [64, 128, 256, 512]
    assert torch.allclose(out.relu4_3, ref, atol=1e-4)


def test_vgg_weights_file_loads_frozen(tmp_path):
    state = {f"features.{k}": v.clone() for k, v in vgg_module.Vgg16Features().features.state_dict().items()}
    torch.save(state, tmp_path / "vgg16.pth")
    net = vgg_module.load_vgg(tmp_path / "vgg16.pth")
    assert torch.equal(net.features[21].weight, state["features.21.weight"])
    assert not any(p.requires_grad for p in net.parameters()) and not net.training


def offline():
    """Stands in for torchvision's download when the machine has no network."""
    raise urllib.error.URLError("Name or service not known")


def test_vgg_weights_errors_name_the_option(tmp_path, monkeypatch):
    monkeypatch.setattr(vgg_module, "_download_state_dict", offline)
    with pytest.raises(ModelError, match=r"--vgg-weights PATH"):
        vgg_module.load_vgg()
    with pytest.raises(ModelError, match="does not exist.*--vgg-weights PATH"):
        vgg_module.load_vgg(tmp_path / "nope.pth")
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ModelError, match="not a torchvision VGG16 state dict"):
        vgg_module.load_vgg(tmp_path / "other.pth")


# -- train style -----------------------------------------------------------------------------------
def test_train_style_loss_falls_and_output_loads_in_the_engine(tmp_path, caplog):
    """--vgg-random (no download): total loss at the end is below the start; the file works as johnson:PATH."""
    from cbs_obs.style.catalog import create
    from cbs_obs.style.johnson import load_transformer

    photos, style = make_photos(tmp_path / "photos"), make_style_image(tmp_path / "style.png")
    out = tmp_path / "mine.pth"
    with caplog.at_level(logging.WARNING):
        result = train_style(style, photos, out, fast_style(max_steps=8), vgg_random=True, progress=False)
    assert "meaningless" in caplog.text
    totals = [h["total"] for h in result.history]
    assert [h["step"] for h in result.history] == list(range(1, 9))
    assert totals[-1] < totals[0], totals
    assert all(h["total"] == pytest.approx(h["content"] + h["style"], rel=1e-5) for h in result.history)
    load_transformer(out)
    assert not any(k.startswith("model") for k in torch.load(out, weights_only=True))  # plain state dict
    frame = np.full((30, 42, 3), 128, np.uint8)
    styled = create(f"johnson:{out}").apply(frame)
    assert styled.shape == frame.shape and styled.dtype == np.uint8


def test_train_style_resume_continues_the_step_counter(tmp_path):
    from cbs_obs.style.johnson import load_transformer

    photos, style = make_photos(tmp_path / "photos"), make_style_image(tmp_path / "style.png")
    out, ckdir = tmp_path / "s.pth", tmp_path / "ck"
    first = train_style(style, photos, out, fast_style(max_steps=3, checkpoint_every=2), vgg_random=True,
                        checkpoint_dir=ckdir, progress=False)
    assert [p.name for p in first.checkpoints] == ["style_step0000002.pth", "style_step0000003.pth"]
    ckpt = torch.load(ckdir / "style_step0000003.pth", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["kind"] == "style" and "optimizer" in ckpt
    load_transformer(ckdir / "style_step0000003.pth")  # checkpoints load in the engine too

    second = train_style(style, photos, out, fast_style(max_steps=5, checkpoint_every=2), vgg_random=True,
                         checkpoint_dir=ckdir, resume=ckdir / "style_step0000003.pth", progress=False)
    assert second.start_step == 3 and [h["step"] for h in second.history] == [4, 5]
    last = torch.load(ckdir / "style_step0000005.pth", weights_only=True)
    assert last["step"] == 5
    adam_steps = {float(s["step"]) for s in last["optimizer"]["state"].values()}
    assert adam_steps == {5.0}  # the optimizer state came along: Adam counted 3 + 2 steps


def test_train_style_user_errors_are_one_clear_cbs_error(tmp_path, monkeypatch, capsys):
    photos, style = make_photos(tmp_path / "photos"), make_style_image(tmp_path / "style.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="not a readable image"):
        train_style(broken, photos, tmp_path / "o.pth", fast_style(), vgg_random=True)
    with pytest.raises(InputError, match="no images in"):
        train_style(style, tmp_path / "empty", tmp_path / "o.pth", fast_style(), vgg_random=True)
    with pytest.raises(InputError, match="does not exist"):
        train_style(style, tmp_path / "missing", tmp_path / "o.pth", fast_style(), vgg_random=True)
    with pytest.raises(InputError, match="folder .* does not exist"):
        train_style(style, photos, tmp_path / "no" / "o.pth", fast_style(), vgg_random=True)
    with pytest.raises(ModelError, match="not a training checkpoint"):
        plain = tmp_path / "plain.pth"
        torch.save({"conv1.conv2d.weight": torch.zeros(1)}, plain)
        train_style(style, photos, tmp_path / "o.pth", fast_style(), vgg_random=True, resume=plain)
    with pytest.raises(SettingsError):
        train_style(style, photos, tmp_path / "o.pth", fast_style(image_size=30), vgg_random=True)

    # The same through the command line: exit 2 and exactly one line, naming the fix.
    monkeypatch.setattr(vgg_module, "_download_state_dict", offline)
    base = ["train", "style", "--dataset", str(photos), "-o", str(tmp_path / "o.pth"), "--image-size", "64"]
    one_line_error(capsys, train_cli.main([*base, "--style-image", str(style)]), "--vgg-weights PATH")
    one_line_error(capsys, train_cli.main([*base, "--style-image", str(broken), "--vgg-random"]),
                   "not a readable image")
    assert not (tmp_path / "o.pth").exists()


# -- train seg -------------------------------------------------------------------------------------
def test_train_seg_loss_falls_and_checkpoint_loads_everywhere(seg_root, tmp_path):
    from cbs_obs.segment import create_segmenter
    from cbs_obs.segment.cityscapes import load_dabnet

    out = tmp_path / "seg.pth"
    result = train_seg(seg_root, out, fast_seg(max_steps=12), progress=False)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 12 and np.mean(losses[-3:]) < 0.6 * losses[0], losses
    ckpt = torch.load(out, weights_only=True)
    assert {"epoch", "model", "classes", "step"} <= set(ckpt) and ckpt["classes"] == CLASSES and ckpt["step"] == 12
    assert "optimizer" not in ckpt  # the result is lean; checkpoints are for resuming
    load_dabnet(out, len(CLASSES))
    seg = create_segmenter("cityscapes", weights=out)
    assert seg.classes == tuple(CLASSES)
    rng = np.random.default_rng(5)
    mask = blocks(rng)
    probs = seg.segment(paint(mask, rng))
    assert probs.probs.shape == (3, 8, 8) and probs.classes == tuple(CLASSES)
    assert np.allclose(probs.probs.sum(0), 1, atol=1e-4)


def test_train_seg_resume_continues_step_and_schedule(seg_root, tmp_path):
    ckdir = tmp_path / "ck"
    s = fast_seg(max_steps=3, checkpoint_every=3)
    first = train_seg(seg_root, tmp_path / "a.pth", s, checkpoint_dir=ckdir, progress=False)
    assert first.step == 3 and first.checkpoints == [ckdir / "seg_step0000003.pth"]
    second = train_seg(seg_root, tmp_path / "b.pth", fast_seg(max_steps=5, checkpoint_every=3),
                       checkpoint_dir=ckdir, resume=ckdir / "seg_step0000003.pth", progress=False)
    assert second.start_step == 3 and [h["step"] for h in second.history] == [4, 5]
    scheduled = 50 * (8 // 4)  # epochs x steps per epoch: max-steps does not bend the schedule
    assert second.history[0]["lr"] == pytest.approx(poly_lr(5e-3, 3, scheduled))
    assert torch.load(tmp_path / "b.pth", weights_only=True)["step"] == 5
    assert poly_lr(1.0, 0, 10) == 1.0 and poly_lr(1.0, 10, 10) == 0.0
    assert poly_lr(1.0, 5, 10) == pytest.approx(0.5 ** 0.9)
    with pytest.raises(ModelError, match="not a training checkpoint"):
        train_seg(seg_root, tmp_path / "c.pth", s, resume=tmp_path / "b.pth")  # final file: no optimizer


def test_train_seg_user_errors(tmp_path, capsys):
    src = make_seg_source(tmp_path / "src", n=3)
    (src / "masks" / "s1.png").unlink()
    with pytest.raises(InputError, match=r"1 images have no mask .*s1\.png"):
        train_seg(src, tmp_path / "o.pth", fast_seg())
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    with pytest.raises(InputError, match="no images in"):
        train_seg(tmp_path / "empty", tmp_path / "o.pth", fast_seg())
    with pytest.raises(InputError, match="is not a dataset"):
        train_seg(tmp_path, tmp_path / "o.pth", fast_seg())
    with pytest.raises(SettingsError, match="multiples of 8"):
        train_seg(src, tmp_path / "o.pth", fast_seg(crop=(50, 50)))
    bad = make_seg_source(tmp_path / "bad", n=2)
    cv2.imwrite(str(bad / "masks" / "s0.png"), np.full((64, 64), 7, np.uint8))
    (bad / "dataset.toml").write_text('classes = ["background", "grass", "brick"]\n')
    with pytest.raises(InputError, match=r"values \[7\]"):
        train_seg(bad, tmp_path / "o.pth", fast_seg(max_steps=2, batch=2))
    (bad / "dataset.toml").write_text('classes = ["a b"]\n')
    with pytest.raises(InputError, match="not usable"):
        find_seg_data(bad)
    capsys.readouterr()
    code = train_cli.main(["train", "seg", "--dataset", str(tmp_path / "empty"), "-o", str(tmp_path / "o.pth")])
    one_line_error(capsys, code, "no images in")


# -- eval seg --------------------------------------------------------------------------------------
def test_confusion_and_iou_of_a_hand_built_case():
    gt = np.array([[0, 0, 1, 1],
                   [0, 0, 1, 255]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 0, 0, 2]])  # the 2 sits on an ignored pixel: it does not count
    cm = confusion_matrix(pred, gt, 4)
    assert cm.tolist() == [[3, 1, 0, 0], [1, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    iou, miou = iou_from_confusion(cm)
    assert iou[0] == pytest.approx(3 / 5) and iou[1] == pytest.approx(2 / 4)
    assert math.isnan(iou[2]) and math.isnan(iou[3])  # absent from both: excluded
    assert miou == pytest.approx((3 / 5 + 2 / 4) / 2)
    # A class only predicted (never in the ground truth) counts, with IoU 0.
    iou, miou = iou_from_confusion(confusion_matrix(np.array([0, 2, 1]), np.array([0, 0, 1]), 3))
    assert iou.tolist() == [0.5, 1.0, 0.0] and miou == pytest.approx(0.5)
    with pytest.raises(InputError):
        confusion_matrix(np.array([0]), np.array([5]), 3)


def test_eval_seg_end_to_end_exact_numbers(tmp_path, capsys):
    """A DABNet with a zero classifier predicts class 0 everywhere, so every number is known."""
    root = tmp_path / "ds"
    for split in ("val", "train"):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
    m1 = np.zeros((60, 60), np.uint8)
    m1[30:, :30], m1[30:, 30:] = 1, 255  # 1800 background, 900 grass, 900 ignored
    m2 = np.zeros((60, 60), np.uint8)
    m2[:20, :20] = 1  # 3200 background, 400 grass
    for name, m in (("a", m1), ("b", m2)):
        cv2.imwrite(str(root / "images" / "val" / f"{name}.png"), paint(m, np.random.default_rng(0)))
        cv2.imwrite(str(root / "masks" / "val" / f"{name}.png"), m)
    (root / "dataset.toml").write_text('classes = ["background", "grass", "brick"]\nignore_index = 255\n')
    net = DABNet(classes=3)
    torch.nn.init.zeros_(net.classifier[0].conv.weight)
    weights = tmp_path / "zero.pth"
    torch.save({"epoch": 0, "model": net.state_dict(), "classes": CLASSES}, weights)

    csv_path = tmp_path / "cm.csv"
    code = train_cli.main(["eval", "seg", "--dataset", str(root), "--weights", str(weights), "--json",
                           "--confusion-out", str(csv_path)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 2 and report["split"] == "val"
    assert report["confusion"] == [[5000, 0, 0], [1300, 0, 0], [0, 0, 0]]
    assert report["iou"] == {"background": pytest.approx(5000 / 6300, abs=1e-6), "grass": 0.0, "brick": None}
    assert report["miou"] == pytest.approx(5000 / 6300 / 2, abs=1e-6)
    assert report["excluded_from_miou"] == ["brick"]
    assert report["pixel_accuracy"] == pytest.approx(5000 / 6300, abs=1e-6) and report["fps"] > 0
    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == ["ground_truth\\predicted", *CLASSES] and rows[2] == ["grass", "1300", "0", "0"]

    assert train_cli.main(["eval", "seg", "--dataset", str(root), "--weights", str(weights), "--size", "32x32"]) == 0
    text = capsys.readouterr().out
    assert "mIoU 39.7% over 2 of 3 classes (brick excluded: absent from both" in text
    assert "confusion matrix" in text
    wrong = tmp_path / "wrong.pth"
    torch.save({"epoch": 0, "model": DABNet(classes=5).state_dict(), "classes": list("abcde")}, wrong)
    one_line_error(capsys, train_cli.main(["eval", "seg", "--dataset", str(root), "--weights", str(wrong)]),
                   "predicts 5 classes")


# -- data prepare ----------------------------------------------------------------------------------
def test_prepare_cityscapes_writes_train_ids_and_trains(tmp_path, capsys):
    src = tmp_path / "raw"
    ids = np.arange(64 * 64, dtype=np.int64).reshape(64, 64) % 36  # every label id 0..33, and 34, 35
    ids[0, :3] = 255
    for split, city in (("train", "aachen"), ("val", "lindau")):
        for k in range(2):
            stem = f"{city}_000000_00001{k}"
            (src / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
            (src / "gtFine" / split / city).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(src / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"),
                        np.random.default_rng(k).integers(0, 255, (64, 64, 3), dtype=np.uint8))
            cv2.imwrite(str(src / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"), ids.astype(np.uint8))
    with pytest.raises(InputError, match="cbs-obs data prepare --layout cityscapes"):
        find_seg_data(src)  # raw labels only: the message says how to convert them

    out = tmp_path / "cs"
    assert train_cli.main(["data", "prepare", "--layout", "cityscapes", "--src", str(src), "--out", str(out)]) == 0
    assert "wrote 4 " in capsys.readouterr().out
    train_ids = cv2.imread(str(out / "gtFine/train/aachen/aachen_000000_000010_gtFine_labelTrainIds.png"),
                           cv2.IMREAD_UNCHANGED)
    expected = np.full(256, 255)
    for label_id, train_id in LABEL_ID_TO_TRAIN_ID.items():
        expected[label_id] = train_id
    assert np.array_equal(train_ids, expected[ids])
    assert sorted(LABEL_ID_TO_TRAIN_ID.values()) == list(range(19))
    assert LABEL_ID_TO_TRAIN_ID[7] == 0 and LABEL_ID_TO_TRAIN_ID[26] == 13 and LABEL_ID_TO_TRAIN_ID[33] == 18
    data = find_seg_data(out, "val")
    assert len(data.pairs) == 2 and len(data.classes) == 19 and data.classes[13] == "car"

    from cbs_obs.segment.cityscapes import load_dabnet

    res = train_seg(out, tmp_path / "cs.pth", fast_seg(max_steps=2, batch=2, crop=(32, 32)), progress=False)
    assert res.step == 2
    load_dabnet(tmp_path / "cs.pth", 19)


def test_prepare_folder_lists_every_problem(tmp_path, capsys):
    src = make_seg_source(tmp_path / "src", n=5)
    (src / "masks" / "s0.png").unlink()  # image with no mask
    cv2.imwrite(str(src / "masks" / "s1.png"), np.zeros((32, 64), np.uint8))  # size mismatch
    cv2.imwrite(str(src / "masks" / "s2.png"), np.dstack([np.zeros((64, 64), np.uint8)] * 2
                                                          + [np.ones((64, 64), np.uint8)]))  # colour
    cv2.imwrite(str(src / "masks" / "s3.png"), np.full((64, 64), 9, np.uint8))  # value out of range
    cv2.imwrite(str(src / "masks" / "orphan.png"), np.zeros((64, 64), np.uint8))
    with pytest.raises(InputError) as e:
        prepare_folder(src, tmp_path / "out", CLASSES)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("5 problem(s)")
    for needle in ("s0.png: no mask", "s1.png: image 64x64 but mask 64x32", "s2.png is a colour image",
                   "s3.png: mask values [9]", "masks without an image: orphan.png"):
        assert needle in msg, msg
    with pytest.raises(InputError, match="not usable"):
        prepare_folder(src, tmp_path / "out", ["bad=name"])
    one_line_error(capsys, train_cli.main(["data", "prepare", "--layout", "folder", "--src", str(src),
                                           "--out", str(tmp_path / "o")]), "--classes background,sky")


def test_every_command_and_option_has_help_and_a_handler():
    parser = argparse.ArgumentParser(prog="cbs-obs")
    sub = parser.add_subparsers(dest="command", required=True)
    train_cli.register(sub)
    leaves = []
    for name, p in sub.choices.items():
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for leaf_name, leaf in action.choices.items():
                    leaves.append((f"{name} {leaf_name}", leaf))
    assert {n for n, _ in leaves} == {"train style", "train seg", "eval seg", "data prepare"}
    for name, leaf in leaves:
        assert callable(leaf.get_default("func")), name
        for action in leaf._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"{name} {action.option_strings} has no help"
    for action in sub._choices_actions:
        assert action.help

