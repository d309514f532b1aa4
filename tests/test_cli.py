"""The command line: success paths write real files; every bad input is one line, exit 2, no traceback."""
from __future__ import annotations

import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest
import torch

from cbs_obs.cli import build_parser, main
from tests.conftest import shared_file

CLI = shutil.which("cbs-obs")


def run_cli(*args, env=None):
    """The installed console script, as a user runs it."""
    assert CLI, "cbs-obs is not on PATH: pip install -e . first"
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cbs-obs: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def _commands(parser, prefix=()):
    """Every command path in the parser tree, e.g. ('models', 'fetch')."""
    import argparse

    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*prefix, name))


def test_every_command_and_option_has_help(capsys):
    import argparse

    parser = build_parser()
    commands = list(_commands(parser))
    assert {("run",), ("bench",), ("obs", "setup"), ("train", "style"), ("eval", "seg")} <= set(commands)
    for cmd in commands:
        with pytest.raises(SystemExit) as e:
            parser.parse_args([*cmd, "--help"])
        assert e.value.code == 0
        assert "usage: cbs-obs" in capsys.readouterr().out
    for cmd in commands:
        sub = parser
        for name in cmd:
            sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        for action in sub._actions:
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                assert action.help, f"cbs-obs {' '.join(cmd)} {action.option_strings or action.dest} has no help"


def test_stylize_writes_output_mask_and_overlay(person_model, tmp_path):
    src = shared_file("data/portrait/astronaut_360x640.png")
    proc = run_cli("stylize", src, "-o", tmp_path / "out.png", "--assign", "background=starry-blue",
                   "--mask-out", tmp_path / "mask.png", "--overlay", tmp_path / "overlay.png", "--feather", "2")
    assert proc.returncode == 0, proc.stderr
    original = cv2.imread(str(src))
    out = cv2.imread(str(tmp_path / "out.png"))
    mask = cv2.imread(str(tmp_path / "mask.png"), cv2.IMREAD_GRAYSCALE)
    assert out.shape == original.shape and mask.shape == original.shape[:2]
    assert mask[5, 5] == 255 and mask[200, 320] == 0  # corner styled, astronaut's chest kept
    person = mask == 0
    np.testing.assert_array_equal(out[person], original[person])
    assert np.abs(out[mask == 255].astype(int) - original[mask == 255]).mean() > 15
    assert cv2.imread(str(tmp_path / "overlay.png")).shape == original.shape


def test_unknown_class_and_style_list_valid_ones(tmp_path):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.zeros((32, 32, 3), np.uint8))
    one_line_error(run_cli("stylize", src, "-o", tmp_path / "o.png", "-a", "sofa=blur"),
                   "unknown class 'sofa'", "valid classes: background, person")
    one_line_error(run_cli("stylize", src, "-o", tmp_path / "o.png", "-a", "background=velvet"),
                   "unknown style 'velvet'", "starry-blue", "pixelate")
    one_line_error(run_cli("stylize", src, "-o", tmp_path / "o.png", "-s", "cityscapes", "-a", "person=blur",
                           "-a", "tree=blur"), "unknown class 'tree'", "vegetation")


def test_missing_weights_give_the_fetch_command(tmp_path):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.zeros((64, 64, 3), np.uint8))
    proc = run_cli("stylize", src, "-o", tmp_path / "o.png", "-s", "cityscapes", "-a", "car=blur",
                   env={"CBS_OBS_CACHE": str(tmp_path / "empty-cache")})
    one_line_error(proc, "cbs-obs models fetch dabnet-cityscapes")


def test_corrupt_and_missing_images(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    one_line_error(run_cli("stylize", bad, "-o", tmp_path / "o.png", "-a", "background=blur"),
                   "not a readable image")
    one_line_error(run_cli("stylize", tmp_path / "nope.jpg", "-o", tmp_path / "o.png", "-a", "background=blur"),
                   "does not exist")


def test_checksum_mismatch_and_wrong_checkpoint(tmp_path):
    wrong = tmp_path / "DABNet_cityscapes.pth"
    torch.save({"model": {"conv.weight": torch.zeros(1)}}, wrong)
    one_line_error(run_cli("models", "fetch", "dabnet-cityscapes", "--from", wrong), "sha256 mismatch")
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.zeros((64, 64, 3), np.uint8))
    one_line_error(run_cli("stylize", src, "-o", tmp_path / "o.png", "-s", "cityscapes", "-a", "car=blur",
                           "--weights", wrong), "not a DABNet checkpoint")


def test_verbose_shows_the_traceback(tmp_path):
    proc = run_cli("--verbose", "stylize", tmp_path / "nope.png", "-o", tmp_path / "o.png", "-a", "background=blur")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_bad_arguments_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["stylize", "x.png", "-o", "y.png", "--style-size", "-3"])
    assert e.value.code == 2 and "must be positive" in capsys.readouterr().err


def test_models_commands(capsys, dabnet_weights):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "dabnet-cityscapes" in out and "MIT" in out and "Apache-2.0" in out
    assert main(["models", "verify", "dabnet-cityscapes"]) == 0
    assert "dabnet-cityscapes: ok" in capsys.readouterr().out
    assert main(["models", "path", "dabnet-cityscapes"]) == 0
    assert capsys.readouterr().out.strip() == str(dabnet_weights)
    assert main(["models", "path", "nosuch"]) == 2
    assert "valid models" in capsys.readouterr().err


def test_styles_list_and_sheet(capsys, tmp_path):
    assert main(["styles", "list"]) == 0
    assert "starry-blue" in capsys.readouterr().out
    img = tmp_path / "img.png"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (90, 160, 3), dtype=np.uint8))
    assert main(["styles", "sheet", str(img), "-o", str(tmp_path / "sheet.png"), "--tile-width", "80"]) == 0
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    # 1 original + 26 styles + 6 filters = 33 tiles -> 6 rows of 6, each tile 45 px + 24 px label
    assert sheet.shape == (6 * (45 + 24), 6 * 80, 3)


def test_classes_command(capsys, tmp_path):
    assert main(["classes", "-s", "cityscapes"]) == 0
    assert capsys.readouterr().out.split()[:3] == ["road", "sidewalk", "building"]
    from cbs_obs.segment.dabnet import DABNet

    torch.save({"epoch": 1, "model": DABNet(classes=3).state_dict(), "classes": ["floor", "wall", "grass"]},
               tmp_path / "mine.pth")
    assert main(["classes", "-s", "cityscapes", "--weights", str(tmp_path / "mine.pth")]) == 0
    assert capsys.readouterr().out.split() == ["floor", "wall", "grass"]
    proc = run_cli("stylize", shared_file("data/cityscapes_frame.png"), "-o", tmp_path / "o.png", "-s", "cityscapes",
                   "--weights", tmp_path / "mine.pth", "-a", "grass=blur", "--seg-size", "128x256")
    assert proc.returncode == 0, proc.stderr


def test_stylize_video(person_model, tmp_path):
    from cbs_obs.io.sources import demo_clip_path as demo_clip
    from cbs_obs.io.video import create_writer, frames, open_video

    cap, fps, _ = open_video(demo_clip())
    src = tmp_path / "short.mp4"
    w = create_writer(src, fps, (640, 360))
    for i, f in enumerate(frames(cap)):
        if i == 5:
            break
        w.write(f)
    w.release()
    cap.release()
    assert main(["stylize", str(src), "-o", str(tmp_path / "out.mp4"), "-a", "background=grey"]) == 0
    cap, _, count = open_video(tmp_path / "out.mp4")
    assert count == 5
    first = next(frames(cap))
    assert np.abs(first[:, :, 0].astype(int) - first[:, :, 2]).max() > 30  # the person keeps colour
    assert (np.abs(first[:30, :30, 0].astype(int) - first[:30, :30, 2]) <= 6).all()  # corner is grey


def test_run_config_file(tmp_path, capsys):
    from cbs_obs.cli import _with_config

    cfg = tmp_path / "show.toml"
    cfg.write_text('source = "demo"\nassign = ["background=blur:30", "person=grey"]\nstyle_size = 320\n'
                   'stats = true\nplate = "off"\n')
    parser = build_parser()
    args = parser.parse_args(_with_config(parser, ["run", "--config", str(cfg)]))
    assert (args.source, args.assign, args.style_size, args.stats, args.plate) == \
        ("demo", ["background=blur:30", "person=grey"], 320, True, "off")
    # the command line wins: its source, its options, and its --assign replaces the file's
    args = parser.parse_args(_with_config(parser, ["run", "clip.mp4", "--config", str(cfg), "--style-size", "480",
                                                   "-a", "background=grey"]))
    assert (args.source, args.assign, args.style_size) == ("clip.mp4", ["background=grey"], 480)
    cfg.write_text("style_size = -4\n")
    with pytest.raises(SystemExit):
        parser.parse_args(_with_config(parser, ["run", "--config", str(cfg)]))
    assert "must be positive" in capsys.readouterr().err
    cfg.write_text("colour = 'red'\n")
    assert main(["run", "--config", str(cfg)]) == 2
    assert "unknown key 'colour'" in capsys.readouterr().err
    cfg.write_text("this is not toml")
    assert main(["run", "--config", str(cfg)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


@pytest.mark.parametrize("args, fragments", [
    (["run", "--port", "70000"], ["--port must be 0-65535", "70000"]),
    (["run", "--port", "-1"], ["--port must be 0-65535"]),
    (["run", "--fps", "-5"], ["--fps must be a positive number"]),
    (["run", "--host", "256.1.1.1"], ["--host 256.1.1.1", "127.0.0.1"]),
])
def test_bad_run_options_are_one_line(args, fragments):
    line = one_line_error(run_cli(*args, "--null", "--duration", "1"), *fragments)
    assert "--port" not in line or "--port" in args  # a bad address must not send the user to another port


def test_huge_picture_with_a_neural_style_is_capped(tmp_path):
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((12000, 12000, 3), np.uint8))  # a 440 KB file, 432 MB of pixels
    proc = run_cli("stylize", big, "-o", tmp_path / "out.png", "--assign", "background=starry-blue")
    one_line_error(proc, "12000x12000", "--max-side")
    assert not (tmp_path / "out.png").exists()


def test_broken_video_gives_only_our_line(tmp_path):
    from cbs_obs.io.sources import demo_clip_path

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(demo_clip_path().read_bytes()[:3000])  # no moov atom: FFmpeg logs its own complaint
    one_line_error(run_cli("stylize", broken, "-o", tmp_path / "o.mp4", "--assign", "background=blur"),
                   "not a readable video")
