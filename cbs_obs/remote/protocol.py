"""What the server and the engine agree on: tensor names, the key header, the probe model.

Every network is served under its ``Network.model`` name (family + weights hash), so an engine can
only ever run the weights it would run locally. On the wire each input keeps its local shape with a
batch axis in front (Triton's dynamic batcher stacks requests from several engines along it).

Most inputs are pictures: float32 values that are exactly ``k / 255`` or whole numbers ``k`` for
bytes ``k``. Those travel as the bytes themselves (a quarter of the size, no compression work) and
the server rebuilds the very same float32 values; anything else travels as float32. Each input slot
``i`` is therefore three optional tensors, of which a request sends one:
``INPUTi`` (float32), ``PIXELSi`` (uint8, meaning k/255) or ``LEVELSi`` (uint8, meaning k).
"""
from __future__ import annotations

import numpy as np

DEFAULT_GRPC_PORT = 8001
DEFAULT_HTTP_PORT = 8000
DEFAULT_METRICS_PORT = 8002
MAX_BATCH = 8
QUEUE_DELAY_US = 1000  # how long the batcher waits for other engines' requests (one ms: no visible latency)

OUTPUT = "OUTPUT0"
PROBE_MODEL = "cbs-probe"  # a tiny model the client calls at connect: is the server there, is the key right
KEY_HEADER = "triton-access-token"  # Triton's restricted-protocol header, as PyTriton configures it
GRPC_KEY_HEADER = "triton-grpc-protocol-" + KEY_HEADER  # gRPC metadata carries Triton's prefix


PIXEL_SCALE = 1 / 255  # the same Python float the networks' callers multiply bytes by
KINDS = ("INPUT", "PIXELS", "LEVELS")
SAMPLE = 256  # values checked before the whole array (most float inputs fail at once)


def input_name(i: int, kind: str = "INPUT") -> str:
    return f"{kind}{i}"


def _as_bytes(a: np.ndarray, kind: str) -> np.ndarray | None:
    """The bytes ``a`` was made from, or None. Values out of 0..255 or between levels never survive the
    round trip, so the one equality test is the whole check."""
    with np.errstate(invalid="ignore", over="ignore"):
        u = ((a * 255.0 if kind == "PIXELS" else a) + 0.5).astype(np.uint8)
    back = u.astype(np.float32)
    if kind == "PIXELS":
        back *= PIXEL_SCALE
    return u if np.array_equal(back, a) else None


def pack(a: np.ndarray) -> tuple[str, np.ndarray]:
    """(kind, array to send): bytes when they rebuild ``a`` exactly, else ``a`` itself (float32)."""
    if a.dtype == np.float32 and a.size >= SAMPLE:
        sample = a.reshape(-1)[:SAMPLE]
        for kind in ("PIXELS", "LEVELS"):
            if _as_bytes(sample, kind) is not None:
                full = _as_bytes(a, kind)
                if full is not None:
                    return kind, full
    return "INPUT", a


def unpack(kind: str, a: np.ndarray) -> np.ndarray:
    """The float32 input a packed array stands for (bit for bit what the engine had)."""
    if kind == "PIXELS":
        return a.astype(np.float32) * PIXEL_SCALE
    if kind == "LEVELS":
        return a.astype(np.float32)
    return a
