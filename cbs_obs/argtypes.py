"""Argument types shared by every cbs-obs command: each turns bad input into one clear usage error."""
from __future__ import annotations

import argparse


def _number(text: str, cast, what: str):
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    v = _number(text, int, "a whole number")
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return v


def count(text: str) -> int:
    v = _number(text, int, "a whole number")
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return v


def positive_float(text: str) -> float:
    v = _number(text, float, "a number")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return v


def _pair(text: str, example: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write it like {example}") from None
    if not (8 <= a <= 8192 and 8 <= b <= 8192):
        raise argparse.ArgumentTypeError(f"size {text} is out of range (8..8192 per side)")
    return a, b


def size_hw(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W), for network processing sizes."""
    return _pair(text, "512x1024 (height x width)")


def size_wh(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H), for video resolutions as people write them."""
    return _pair(text, "1280x720 (width x height)")
