"""Write tiny .tflite files by hand (flatbuffers), so importer tests need no TensorFlow.

``build_model`` takes tensors (shape, type, constant data or None) and operators (builtin code,
input and output tensor indices, and a function that writes the options table) and returns the
bytes of a one-subgraph model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
import tflite

FLOAT32, FLOAT16, INT32 = tflite.TensorType.FLOAT32, tflite.TensorType.FLOAT16, tflite.TensorType.INT32
_NP = {FLOAT32: np.float32, FLOAT16: np.float16, INT32: np.int32}


@dataclass
class T:
    shape: tuple[int, ...]
    type: int = FLOAT32
    data: np.ndarray | None = None


@dataclass
class Op:
    code: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options_type: int = 0
    options: object = None  # callable(builder) -> offset of the options table


def _ints(b: flatbuffers.Builder, values) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(list(values)):
        b.PrependInt32(int(v))
    return b.EndVector()


def _offsets(b: flatbuffers.Builder, offsets) -> int:
    b.StartVector(4, len(offsets), 4)
    for o in reversed(list(offsets)):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def build_model(tensors: list[T], ops: list[Op], inputs: list[int], outputs: list[int]) -> bytes:
    b = flatbuffers.Builder(1024)
    buffers, buffer_of = [], []
    tflite.BufferStart(b)
    buffers.append(tflite.BufferEnd(b))  # buffer 0: empty, by convention
    for t in tensors:
        if t.data is None:
            buffer_of.append(0)
            continue
        raw = np.ascontiguousarray(t.data, dtype=_NP[t.type]).tobytes()
        vec = b.CreateByteVector(raw)
        tflite.BufferStart(b)
        tflite.BufferAddData(b, vec)
        buffers.append(tflite.BufferEnd(b))
        buffer_of.append(len(buffers) - 1)
    tensor_offs = []
    for i, t in enumerate(tensors):
        name = b.CreateString(f"t{i}")
        shape = _ints(b, t.shape)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, t.type)
        tflite.TensorAddBuffer(b, buffer_of[i])
        tflite.TensorAddName(b, name)
        tensor_offs.append(tflite.TensorEnd(b))
    codes = sorted({op.code for op in ops})
    code_offs = []
    for c in codes:
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(c, 127))
        tflite.OperatorCodeAddBuiltinCode(b, c)
        tflite.OperatorCodeAddVersion(b, 1)
        code_offs.append(tflite.OperatorCodeEnd(b))
    op_offs = []
    for op in ops:
        opts = op.options(b) if op.options else None
        ins, outs = _ints(b, op.inputs), _ints(b, op.outputs)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, codes.index(op.code))
        tflite.OperatorAddInputs(b, ins)
        tflite.OperatorAddOutputs(b, outs)
        if opts is not None:
            tflite.OperatorAddBuiltinOptionsType(b, op.options_type)
            tflite.OperatorAddBuiltinOptions(b, opts)
        op_offs.append(tflite.OperatorEnd(b))
    t_vec, o_vec = _offsets(b, tensor_offs), _offsets(b, op_offs)
    in_vec, out_vec = _ints(b, inputs), _ints(b, outputs)
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, t_vec)
    tflite.SubGraphAddInputs(b, in_vec)
    tflite.SubGraphAddOutputs(b, out_vec)
    tflite.SubGraphAddOperators(b, o_vec)
    sub = tflite.SubGraphEnd(b)
    subs, codes_vec, bufs = _offsets(b, [sub]), _offsets(b, code_offs), _offsets(b, buffers)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes_vec)
    tflite.ModelAddSubgraphs(b, subs)
    tflite.ModelAddBuffers(b, bufs)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def write_model(path: Path, *args) -> Path:
    Path(path).write_bytes(build_model(*args))
    return Path(path)


# -- options tables ---------------------------------------------------------------------------
def pool_options(k: int, s: int, same: bool):
    def write(b):
        tflite.Pool2DOptionsStart(b)
        tflite.Pool2DOptionsAddPadding(b, tflite.Padding.SAME if same else tflite.Padding.VALID)
        tflite.Pool2DOptionsAddStrideW(b, s)
        tflite.Pool2DOptionsAddStrideH(b, s)
        tflite.Pool2DOptionsAddFilterWidth(b, k)
        tflite.Pool2DOptionsAddFilterHeight(b, k)
        return tflite.Pool2DOptionsEnd(b)
    return write


def concat_options(axis: int, relu: bool = False):
    def write(b):
        tflite.ConcatenationOptionsStart(b)
        tflite.ConcatenationOptionsAddAxis(b, axis)
        tflite.ConcatenationOptionsAddFusedActivationFunction(b, 1 if relu else 0)
        return tflite.ConcatenationOptionsEnd(b)
    return write


def reshape_options(shape):
    def write(b):
        vec = _ints(b, shape)
        tflite.ReshapeOptionsStart(b)
        tflite.ReshapeOptionsAddNewShape(b, vec)
        return tflite.ReshapeOptionsEnd(b)
    return write
