"""``cbs-obs serve``: the project's networks as Triton models, through PyTriton.

Each network is one model with declared tensors (``INPUT0..n`` in the local shapes, ``OUTPUT0``) and
Triton's dynamic batcher, so several engines share the server: requests that arrive together are
run as one batch (one GPU call for torch networks; one after another in ONNX Runtime, whose exports
are fixed to one image). Triton's own HTTP (health, model status), gRPC and metrics endpoints stay
as Triton serves them. With a key, the inference protocol is restricted to requests carrying it.
"""
from __future__ import annotations

import logging
import os
import sysconfig
from collections import Counter
from pathlib import Path

import numpy as np

from ..models.inference import Network
from . import protocol
from .settings import ServeSettings

log = logging.getLogger(__name__)


def _python_library_first() -> None:
    """Triton's Python stub links ``libpython3.X.so`` by name; make it find this interpreter's own, whose
    standard library it will load (a system libpython of another patch level breaks multiprocessing)."""
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and any(Path(libdir).glob("libpython3*.so*")):
        old = os.environ.get("LD_LIBRARY_PATH", "")
        if libdir not in old.split(":"):
            os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{old}" if old else libdir


def clean_stale_shared_memory(folder: Path = Path("/dev/shm")) -> int:
    """A server that crashed (power, OOM, kill -9) leaves its PyTriton tensor store in shared memory, which is
    RAM; remove the stores of processes that no longer exist before starting. Returns how many were removed."""
    removed = 0
    for f in folder.glob("pytrtion*-*") if folder.is_dir() else ():
        pid = f.name[len("pytrtion"):].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            f.unlink(missing_ok=True)
            removed += 1
    return removed


def ranks(net: Network) -> tuple[list[int], int]:
    """How many axes each input and the output have (Triton declares them; every size stays free)."""
    if net.session is not None:
        return [len(i.shape) for i in net.session.get_inputs()], len(net.session.get_outputs()[0].shape)
    shape = net._example[0] or (1, 3, 64, 64)
    y = net.run_local(np.zeros(shape, np.float32))
    return [len(shape)], y.ndim


class BatchSizes:
    """How many requests each model's batches held (for bench figures and the log)."""

    def __init__(self):
        self.seen: Counter[int] = Counter()

    def add(self, n: int) -> None:
        self.seen[n] += 1


def infer_function(net: Network, sizes: BatchSizes):
    """Triton calls this with the requests it batched; each gets its own answer."""
    def infer(requests):
        sizes.add(len(requests))
        items = [_inputs(req, len(net.inputs)) for req in requests]
        if net.session is None and len(items) > 1 and _stackable(items):  # torch: one call for the whole batch
            stacked = {name: np.concatenate([it[i] for it in items]) for i, name in enumerate(net.inputs)}
            out = net.run_local(stacked)
            return [{protocol.OUTPUT: out[k:k + 1][None]} for k in range(len(items))]
        return [{protocol.OUTPUT: net.run_local(dict(zip(net.inputs, it, strict=True)))[None]} for it in items]

    return infer


def _inputs(request, n: int) -> list[np.ndarray]:
    """One request's inputs (a PyTriton request: a mapping by input name), each sent in whichever form
    (float32 or bytes) was smaller."""
    sent = set(request.keys())
    out = []
    for i in range(n):
        for kind in protocol.KINDS:
            name = protocol.input_name(i, kind)
            if name in sent:
                out.append(protocol.unpack(kind, request[name][0]))
                break
        else:
            raise ValueError(f"input {i} missing")
    return out


def _stackable(items) -> bool:
    first = items[0]
    return all(a.ndim > 0 and a.shape[0] == 1 for a in first) and \
        all(all(a.shape == b.shape for a, b in zip(it, first, strict=True)) for it in items)


def _probe(requests):
    return [{protocol.OUTPUT: req[protocol.input_name(0)]} for req in requests]


def _wait_ready(settings: ServeSettings, models: list[str], timeout_s: float = 60.0) -> None:
    """Announce the server only once Triton itself says it is ready (a model may still be settling)."""
    import time

    import tritonclient.grpc as grpcclient

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host
    client = grpcclient.InferenceServerClient(f"{host}:{settings.grpc_port}")
    try:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                if client.is_server_ready(client_timeout=2.0):
                    return
            except Exception:  # not answering yet
                pass
            time.sleep(0.2)
        missing = [m for m in models if not _model_ready(client, m)]
        log.warning("Triton is not ready after %.0f s; models not ready: %s", timeout_s, ", ".join(missing) or "none")
    finally:
        client.close()


def _model_ready(client, model: str) -> bool:
    try:
        return bool(client.is_model_ready(model, client_timeout=2.0))
    except Exception:
        return False


def serve(settings: ServeSettings, networks: dict[str, Network], *, ready=None) -> None:
    """Run Triton until interrupted. ``ready()`` is called once every model is loaded."""
    _python_library_first()
    if clean_stale_shared_memory():
        log.info("removed shared memory left by a server that did not stop cleanly")
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import DEFAULT_PROTECTED_ENDPOINTS, Triton, TritonConfig, TritonSecurityConfig

    host = settings.host
    config = TritonConfig(http_address=host, http_port=settings.http_port, grpc_address=host,
                          grpc_port=settings.grpc_port, metrics_address=host, metrics_port=settings.metrics_port,
                          exit_on_error=True, log_verbose=0)
    # statistics stay readable (model status and batch sizes are Triton's own figures); with a key, inference is
    # restricted to requests carrying it, on gRPC and HTTP alike
    endpoints = [e for e in DEFAULT_PROTECTED_ENDPOINTS if e != "statistics"] + (["inference"] if settings.key else [])
    security = TritonSecurityConfig(access_token=settings.key or None, restricted_endpoints=endpoints)
    sizes: dict[str, BatchSizes] = {}
    with Triton(config=config, security_config=security) as triton:
        batcher = DynamicBatcher(max_queue_delay_microseconds=protocol.QUEUE_DELAY_US)
        triton.bind(protocol.PROBE_MODEL, _probe,
                    inputs=[Tensor(name=protocol.input_name(0), dtype=np.float32, shape=(-1,))],
                    outputs=[Tensor(name=protocol.OUTPUT, dtype=np.float32, shape=(-1,))],
                    config=ModelConfig(max_batch_size=protocol.MAX_BATCH, batcher=batcher))
        for name, net in sorted(networks.items()):
            in_ranks, out_rank = ranks(net)
            sizes[name] = BatchSizes()
            triton.bind(name, infer_function(net, sizes[name]),
                        inputs=[Tensor(name=protocol.input_name(i, kind), shape=(-1,) * r, optional=True,
                                       dtype=np.float32 if kind == "INPUT" else np.uint8)
                                for i, r in enumerate(in_ranks) for kind in protocol.KINDS],
                        outputs=[Tensor(name=protocol.OUTPUT, dtype=np.float32, shape=(-1,) * out_rank)],
                        config=ModelConfig(max_batch_size=protocol.MAX_BATCH, batcher=batcher), strict=False)
        _wait_ready(settings, [protocol.PROBE_MODEL, *networks])
        if ready is not None:
            ready()
        try:
            triton.serve()
        finally:
            for name, s in sizes.items():
                if s.seen:
                    log.info("%s: batches by size %s", name, dict(sorted(s.seen.items())))
