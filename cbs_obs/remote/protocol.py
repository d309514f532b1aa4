"""What the server and the engine agree on: tensor names, the key header, the probe model.

Every network is served under its ``Network.model`` name (family + weights hash), so an engine can
only ever run the weights it would run locally. On the wire each input keeps its local shape with a
batch axis in front (Triton's dynamic batcher stacks requests from several engines along it).
"""
from __future__ import annotations

DEFAULT_GRPC_PORT = 8001
DEFAULT_HTTP_PORT = 8000
DEFAULT_METRICS_PORT = 8002
MAX_BATCH = 8
QUEUE_DELAY_US = 1000  # how long the batcher waits for other engines' requests (one ms: no visible latency)

OUTPUT = "OUTPUT0"
PROBE_MODEL = "cbs-probe"  # a tiny model the client calls at connect: is the server there, is the key right
KEY_HEADER = "triton-access-token"  # Triton's restricted-protocol header, as PyTriton configures it
GRPC_KEY_HEADER = "triton-grpc-protocol-" + KEY_HEADER  # gRPC metadata carries Triton's prefix


def input_name(i: int) -> str:
    return f"INPUT{i}"
