"""Rewrite an exported graph so ONNX Runtime keeps its blocked (NCHWc) layout through it.

On the CPU, ONNX Runtime runs convolutions in a blocked channel layout and converts tensors back
to plain NCHW in front of every node it has no blocked kernel for. TFLite's "SAME" convolutions
with stride 2 pad one more pixel after than before, which torch's convolutions cannot express, so
the export has a Pad node in front of each of them; squeeze-and-excitation blocks average with
ReduceMean. Both are outside the blocked path: the selfie segmenter spent about a third of its
time converting layouts and padding (ORT profile, 256x144 input). Here

- a zero Pad of the height and width that only feeds a Conv becomes that Conv's own (asymmetric)
  padding, which ONNX allows;
- ReduceMean over height and width of a 4-D tensor, keeping dimensions, becomes GlobalAveragePool.

Both give the same numbers; callers still check the rewritten graph against torch.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def fold_layout_breakers(path: Path) -> int:
    """Rewrite the ONNX file at ``path`` in place (atomically); returns how many nodes changed.

    Constants (pad amounts, reduction axes) are folded first by ONNX Runtime's basic,
    hardware-independent optimisation level, so they can be read as plain initializers."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    fd, folded = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".basic.tmp")
    os.close(fd)
    try:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = folded
        opts.log_severity_level = 3
        ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        model = onnx.load(folded)
    finally:
        Path(folded).unlink(missing_ok=True)
    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    ranks = _ranks(model)
    changed, dropped = 0, []
    for node in graph.node:
        if node.op_type == "Pad":
            conv = _foldable_pad(node, consts, users, outputs)
            if conv is None:
                continue
            pads = consts[node.input[1]].astype(np.int64).tolist()  # [n0, c0, h0, w0, n1, c1, h1, w1]
            old = next((list(a.ints) for a in conv.attribute if a.name == "pads"), [0, 0, 0, 0])
            new = [old[0] + pads[2], old[1] + pads[3], old[2] + pads[6], old[3] + pads[7]]
            for a in list(conv.attribute):
                if a.name in ("pads", "auto_pad"):
                    conv.attribute.remove(a)
            conv.attribute.append(helper.make_attribute("pads", new))
            conv.input[0] = node.input[0]
            dropped.append(node)
            changed += 1
        elif node.op_type == "ReduceMean" and _spatial_mean(node, consts, ranks):
            node.op_type = "GlobalAveragePool"
            del node.attribute[:]
            del node.input[1:]
            changed += 1
    for node in dropped:
        graph.node.remove(node)
    if changed:
        onnx.checker.check_model(model)
        from .. import paths

        paths.write_atomic(path, model.SerializeToString())
    log.debug("%s: %d nodes moved into the blocked layout", path.name, changed)
    return changed


def _foldable_pad(node, consts: dict, users: dict, outputs: set):
    """The Conv this Pad alone feeds when the Pad is a constant zero pad of height and width only, else None."""
    mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
    if mode != b"constant" or len(node.input) < 2 or node.input[1] not in consts:
        return None
    if len(node.input) > 2 and node.input[2] and (node.input[2] not in consts or np.any(consts[node.input[2]] != 0)):
        return None
    if len(node.input) > 3 and node.input[3]:  # explicit axes (opset 18+): not worth the bookkeeping
        return None
    pads = consts[node.input[1]].reshape(-1)
    if pads.size != 8 or np.any(pads < 0) or pads[0] or pads[1] or pads[4] or pads[5]:
        return None
    after = users.get(node.output[0], [])
    if node.output[0] in outputs or len(after) != 1 or after[0].op_type != "Conv" or \
            after[0].input[0] != node.output[0]:
        return None
    conv = after[0]
    if any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in conv.attribute):
        return None
    return conv


def _spatial_mean(node, consts: dict, ranks: dict) -> bool:
    """A ReduceMean over the height and width of a 4-D tensor that keeps its dimensions."""
    attrs = {a.name: a for a in node.attribute}
    if "keepdims" in attrs and attrs["keepdims"].i != 1:
        return False
    if "noop_with_empty_axes" in attrs and attrs["noop_with_empty_axes"].i:
        return False
    if "axes" in attrs:
        axes = list(attrs["axes"].ints)
    elif len(node.input) > 1 and node.input[1] in consts:
        axes = consts[node.input[1]].reshape(-1).tolist()
    else:
        return False
    rank = ranks.get(node.input[0])
    return rank == 4 and sorted(a % 4 for a in axes) == [2, 3]


def _ranks(model) -> dict[str, int]:
    """Rank of every tensor whose shape is known."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {}
    for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        t = v.type.tensor_type
        if t.HasField("shape"):
            ranks[v.name] = len(t.shape.dim)
    return ranks
