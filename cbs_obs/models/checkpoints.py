"""Reading torch files safely (tensors only, on the CPU) with one clear error for a bad file."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ModelError


def load_torch_file(path: Path | str, *, what: str, fix: str):
    """``torch.load`` with ``weights_only`` (no code runs from the file); ModelError says what to do."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what} {path} does not exist; {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"{path} is not a readable torch checkpoint ({type(e).__name__}); {fix}") from e
