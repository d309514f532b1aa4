"""Import a small TFLite image model into a torch module that we own and can run anywhere.

Only the operators the MediaPipe selfie segmenters, face detector and face mesh use are supported
(see DESIGN.md); anything else is refused with the operator's name, so a new model fails loudly
instead of silently. Four-dimensional activations are kept NCHW (torch's layout); tensors of any
other rank stay in TFLite's own layout, so RESHAPE, CONCATENATION and PAD translate axes only for
4-D tensors. Weights and constants are converted once at import time, and fp16 weights
(DEQUANTIZE) are widened to fp32.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError

_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}
_FUSED = {0: None, 1: F.relu, 3: F.relu6}
_SAME, _VALID = 0, 1  # builtin padding enum
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def _same_pad(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TF 'SAME' padding: the extra pixel (if any) goes after, i.e. bottom/right."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _spatial(x: torch.Tensor) -> tuple[int, int]:
    """(H, W) as plain ints. Under the ONNX exporter's tracer the sizes would otherwise be recorded
    as Shape/Gather/arithmetic nodes computing every pad at run time; our graphs have fixed input
    sizes, so the pads become constants that ONNX Runtime can fold into the convolutions."""
    return int(x.shape[2]), int(x.shape[3])


def _pad_same(x: torch.Tensor, kh: int, kw: int, sh: int, sw: int, dh: int = 1, dw: int = 1):
    h, w = _spatial(x)
    top, bottom = _same_pad(h, kh, sh, dh)
    left, right = _same_pad(w, kw, sw, dw)
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom))
    return x


@dataclass
class _Op:
    kind: str
    inputs: list[int]
    outputs: list[int]
    fn: Callable[..., torch.Tensor]
    consts: dict[str, str] = field(default_factory=dict)


class TfliteGraph(nn.Module):
    """A TFLite subgraph replayed op by op in torch (NCHW). Input and output are NCHW float."""

    def __init__(self, path: Path):
        super().__init__()
        try:
            import tflite
        except ImportError as e:  # pragma: no cover - dependency is declared
            raise ModelError("the 'tflite' package is needed to import .tflite models: pip install tflite") from e
        try:
            buf = Path(path).read_bytes()
            model = tflite.Model.GetRootAsModel(buf, 0)
            graph = model.Subgraphs(0)
            _ = graph.OperatorsLength()
        except Exception as e:
            raise ModelError(f"{path} is not a readable .tflite model ({e}); "
                             "fetch it again with cbs-obs models fetch --force") from e
        self._tflite = tflite
        self._model, self._graph = model, graph
        self.input_index = int(graph.InputsAsNumpy()[0])
        self.output_indices = [int(i) for i in graph.OutputsAsNumpy()]
        self.output_index = self.output_indices[0]
        self.output_names = [graph.Tensors(i).Name().decode() for i in self.output_indices]
        shape = graph.Tensors(self.input_index).ShapeAsNumpy().tolist()
        self.input_size = (shape[1], shape[2])  # H, W
        self._raw: dict[int, np.ndarray] = {}
        self.ops: list[_Op] = []
        for i in range(graph.OperatorsLength()):
            self._import_op(graph.Operators(i))
        self.output_shapes = [self._shape(i) for i in self.output_indices]  # TFLite layout, e.g. [1, 896, 16]
        del self._model, self._graph, self._raw, self._tflite

    # -- constants -----------------------------------------------------------------
    def _tensor_array(self, index: int) -> np.ndarray | None:
        if index in self._raw:
            return self._raw[index]
        t = self._graph.Tensors(index)
        data = self._model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or len(data) == 0:
            return None
        dtype = _DTYPES.get(t.Type())
        if dtype is None:
            raise ModelError(f"tflite tensor type {t.Type()} is not supported by the importer")
        arr = np.frombuffer(data.tobytes(), dtype=dtype).reshape(t.ShapeAsNumpy().tolist() or [])
        return arr

    def _const(self, index: int, arr: np.ndarray) -> str:
        name = f"c{index}"
        if not hasattr(self, name):
            self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)))
        return name

    def _layout_const(self, index: int) -> str:
        """A constant operand in our activation layout: 4-D ones NCHW, others as TFLite has them."""
        arr = self._raw[index].astype(np.float32)
        return self._const(index, arr.transpose(0, 3, 1, 2) if arr.ndim == 4 else arr)

    def _nchw_const(self, index: int) -> str:
        """Elementwise operands: NHWC constants become broadcastable NCHW ones."""
        arr = self._raw[index].astype(np.float32)
        if arr.ndim == 4:
            arr = arr.transpose(0, 3, 1, 2)
        elif arr.ndim == 1 and arr.size > 1:
            arr = arr.reshape(1, -1, 1, 1)
        return self._const(index, arr)

    def _shape(self, index: int) -> list[int]:
        return [int(v) for v in self._graph.Tensors(index).ShapeAsNumpy()]

    # -- operators -----------------------------------------------------------------
    def _import_op(self, op) -> None:
        tfl = self._tflite
        model = self._model
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        B = tfl.BuiltinOperator
        ins = [int(i) for i in op.InputsAsNumpy()]
        outs = [int(i) for i in op.OutputsAsNumpy()]
        opts_table = op.BuiltinOptions()

        def options(cls):
            o = cls()
            o.Init(opts_table.Bytes, opts_table.Pos)
            return o

        if builtin == B.DEQUANTIZE:
            arr = self._tensor_array(ins[0])
            if arr is None:
                raise ModelError("DEQUANTIZE of a non-constant tensor is not supported")
            self._raw[outs[0]] = arr.astype(np.float32)
            return
        # record constant inputs so elementwise ops can use them
        for i in ins:
            if i >= 0 and i not in self._raw:
                arr = self._tensor_array(i)
                if arr is not None:
                    self._raw[i] = arr.astype(np.float32) if arr.dtype != np.int32 else arr

        if builtin == B.CONV_2D:
            o = options(tfl.Conv2DOptions)
            w = self._raw[ins[1]].transpose(0, 3, 1, 2)  # OHWI -> OIHW
            self._add_conv(ins, outs, w, o, groups=1)
        elif builtin == B.DEPTHWISE_CONV_2D:
            o = options(tfl.DepthwiseConv2DOptions)
            w = self._raw[ins[1]]  # 1 H W C*m
            w = w.transpose(3, 0, 1, 2)  # C*m 1 H W
            c_in = self._graph.Tensors(ins[0]).ShapeAsNumpy()[3]
            self._add_conv(ins, outs, w, o, groups=int(c_in))
        elif builtin in (B.ADD, B.MUL):
            o = options(tfl.AddOptions if builtin == B.ADD else tfl.MulOptions)
            act = self._fused(o.FusedActivationFunction())
            binop = torch.add if builtin == B.ADD else torch.mul
            self._add_binary(ins, outs, binop, act)
        elif builtin == B.HARD_SWISH:
            self.ops.append(_Op("hardswish", ins[:1], outs, F.hardswish))
        elif builtin == B.RELU:
            self.ops.append(_Op("relu", ins[:1], outs, F.relu))
        elif builtin == B.LOGISTIC:
            self.ops.append(_Op("sigmoid", ins[:1], outs, torch.sigmoid))
        elif builtin == B.MEAN:
            axes = [int(a) for a in np.atleast_1d(self._raw[ins[1]])]
            keep = bool(options(tfl.ReducerOptions).KeepDims())
            dims = [{0: 0, 1: 2, 2: 3, 3: 1}[a] for a in axes]
            if sorted(dims) != [2, 3] or not keep:
                raise ModelError(f"MEAN over axes {axes} (keep_dims={keep}) is not supported")
            self.ops.append(_Op("mean", ins[:1], outs, lambda x: x.mean(dim=(2, 3), keepdim=True)))
        elif builtin == B.AVERAGE_POOL_2D:
            o = options(tfl.Pool2DOptions)
            kh, kw, sh, sw = o.FilterHeight(), o.FilterWidth(), o.StrideH(), o.StrideW()
            same = o.Padding() == _SAME
            act = self._fused(o.FusedActivationFunction())

            def pool(x, kh=kh, kw=kw, sh=sh, sw=sw, same=same, act=act):
                if same and (kh > 1 or kw > 1):
                    ones = torch.ones((1, 1, *_spatial(x)), dtype=x.dtype, device=x.device)
                    xp, op_ = _pad_same(x, kh, kw, sh, sw), _pad_same(ones, kh, kw, sh, sw)
                    y = F.avg_pool2d(xp, (kh, kw), (sh, sw)) / F.avg_pool2d(op_, (kh, kw), (sh, sw))
                else:
                    y = F.avg_pool2d(x, (kh, kw), (sh, sw))
                return act(y) if act else y

            self.ops.append(_Op("avgpool", ins[:1], outs, pool))
        elif builtin == B.RESIZE_BILINEAR:
            o = options(tfl.ResizeBilinearOptions)
            if o.AlignCorners():
                raise ModelError("RESIZE_BILINEAR with align_corners is not supported")
            size = tuple(int(v) for v in self._raw[ins[1]])

            def resize(x, size=size):
                return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

            self.ops.append(_Op("resize", ins[:1], outs, resize))
        elif builtin == B.PRELU:
            alpha = self._raw[ins[1]].astype(np.float32)
            if len(self._shape(ins[0])) == 4:
                alpha = alpha.reshape((1,) * (4 - alpha.ndim) + alpha.shape).transpose(0, 3, 1, 2)
            self.ops.append(_Op("prelu", ins[:1], outs, _prelu, {"alpha": self._const(ins[1], alpha)}))
        elif builtin == B.MAX_POOL_2D:
            self._add_max_pool(ins, outs, options(tfl.Pool2DOptions))
        elif builtin == B.PAD:
            self._add_pad(ins, outs)
        elif builtin == B.CONCATENATION:
            o = options(tfl.ConcatenationOptions)
            rank = len(self._shape(outs[0]))
            axis = o.Axis() % rank
            dim = _NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis
            act = self._fused(o.FusedActivationFunction())
            dyn = [i for i in ins if i not in self._raw]
            consts = {f"k{n}": self._layout_const(i) for n, i in enumerate(ins) if i in self._raw}
            slots = [f"k{n}" if i in self._raw else None for n, i in enumerate(ins)]

            def concat(*xs, dim=dim, act=act, slots=slots, **kw):
                it = iter(xs)
                y = torch.cat([kw[s] if s else next(it) for s in slots], dim=dim)
                return act(y) if act else y

            self.ops.append(_Op("concat", dyn, outs, concat, consts))
        elif builtin == B.RESHAPE:
            self._add_reshape(ins, outs)
        elif builtin == B.CUSTOM and code.CustomCode() == b"Convolution2DTransposeBias":
            self._add_transpose_conv(op, ins, outs)
        else:
            name = next((k for k, v in vars(B).items() if v == builtin), str(builtin))
            custom = code.CustomCode().decode() if builtin == B.CUSTOM else ""
            raise ModelError(f"tflite operator {name} {custom} is not supported by the cbs-obs importer")

    def _fused(self, code: int):
        if code not in _FUSED:
            raise ModelError(f"fused activation {code} is not supported")
        return _FUSED[code]

    def _add_conv(self, ins, outs, w: np.ndarray, o, groups: int) -> None:
        wname = self._const(ins[1], w)
        bname = self._const(ins[2], self._raw[ins[2]]) if len(ins) > 2 and ins[2] >= 0 else None
        kh, kw = w.shape[2], w.shape[3]
        sh, sw = o.StrideH(), o.StrideW()
        dh, dw = o.DilationHFactor(), o.DilationWFactor()
        same = o.Padding() == _SAME
        act = self._fused(o.FusedActivationFunction())

        def conv(x, weight, bias=None, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, same=same, act=act):
            pad = (0, 0)
            if same:
                h, w = _spatial(x)
                (top, bottom), (left, right) = _same_pad(h, kh, sh, dh), _same_pad(w, kw, sw, dw)
                if top == bottom and left == right:
                    pad = (top, left)  # the convolution's own padding: one node, no padded copy
                else:
                    x = F.pad(x, (left, right, top, bottom))
            y = F.conv2d(x, weight, bias, (sh, sw), pad, (dh, dw), groups)
            return act(y) if act else y

        consts = {"weight": wname}
        if bname:
            consts["bias"] = bname
        self.ops.append(_Op("conv", ins[:1], outs, conv, consts))

    def _add_max_pool(self, ins, outs, o) -> None:
        kh, kw, sh, sw = o.FilterHeight(), o.FilterWidth(), o.StrideH(), o.StrideW()
        same = o.Padding() == _SAME
        act = self._fused(o.FusedActivationFunction())

        def pool(x, kh=kh, kw=kw, sh=sh, sw=sw, same=same, act=act):
            if same:  # TF ignores the padding: pad with -inf so it never wins the max
                h, w = _spatial(x)
                top, bottom = _same_pad(h, kh, sh)
                left, right = _same_pad(w, kw, sw)
                if top or bottom or left or right:
                    x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
            y = F.max_pool2d(x, (kh, kw), (sh, sw))
            return act(y) if act else y

        self.ops.append(_Op("maxpool", ins[:1], outs, pool))

    def _add_pad(self, ins, outs) -> None:
        pads = np.asarray(self._raw[ins[1]]).astype(np.int64).reshape(-1, 2)
        rank = len(pads)
        # F.pad lists (before, after) pairs from the last dimension backwards.
        order = [2, 1, 3, 0] if rank == 4 else list(range(rank - 1, -1, -1))  # NCHW's W, H, C, N in NHWC axes
        flat = tuple(int(v) for axis in order for v in pads[axis])

        def pad(x, flat=flat):
            return F.pad(x, flat) if any(flat) else x

        self.ops.append(_Op("pad", ins[:1], outs, pad))

    def _add_reshape(self, ins, outs) -> None:
        in_rank = len(self._shape(ins[0]))
        target = self._shape(outs[0])
        if any(v < 0 for v in target[1:]):
            raise ModelError(f"RESHAPE to a shape with unknown dimensions {target} is not supported")
        target = [-1, *target[1:]]  # keep the batch free

        def reshape(x, in4=in_rank == 4, target=tuple(target)):
            if in4:
                x = x.permute(0, 2, 3, 1)  # back to TFLite's NHWC order before flattening
            y = x.reshape(target)
            return y.permute(0, 3, 1, 2) if len(target) == 4 else y

        self.ops.append(_Op("reshape", ins[:1], outs, reshape))

    def _add_binary(self, ins, outs, binop, act) -> None:
        dyn, consts = [], {}
        for slot, i in zip(("a", "b"), ins, strict=False):
            if i in self._raw:
                consts[slot] = self._nchw_const(i)
            else:
                dyn.append(i)
        if len(dyn) == 2:
            fn = lambda a, b: binop(a, b)
        elif "a" in consts:
            fn = lambda b, a: binop(a, b)
        else:
            fn = lambda a, b: binop(a, b)

        def run(*args, fn=fn, act=act, **kw):
            y = fn(*args, **kw)
            return act(y) if act else y

        self.ops.append(_Op("binary", dyn, outs, run, consts))

    def _add_transpose_conv(self, op, ins, outs) -> None:
        raw = op.CustomOptionsAsNumpy().tobytes()
        padding, stride_w, stride_h = struct.unpack("<iii", raw[:12])  # custom enum: 1=SAME, 2=VALID
        w = self._raw[ins[1]]  # O H W I
        weight = self._const(ins[1], w.transpose(3, 0, 1, 2))  # I O H W for conv_transpose2d
        bias = self._const(ins[2], self._raw[ins[2]])
        kh, kw = w.shape[1], w.shape[2]

        def tconv(x, weight, bias, kh=kh, kw=kw, sh=stride_h, sw=stride_w, same=padding == 1):
            y = F.conv_transpose2d(x, weight, bias, (sh, sw))
            if same:
                (h, w_), (yh, yw) = _spatial(x), _spatial(y)
                h, w_ = h * sh, w_ * sw
                top = (yh - h) // 2
                left = (yw - w_) // 2
                y = y[:, :, top : top + h, left : left + w_]
            return y

        self.ops.append(_Op("tconv", ins[:1], outs, tconv, {"weight": weight, "bias": bias}))

    def forward(self, x: torch.Tensor):
        """The model's output, or a tuple of outputs in the model's order when it has several."""
        values: dict[int, torch.Tensor] = {self.input_index: x}
        for op in self.ops:
            args = [values[i] for i in op.inputs]
            kwargs = {k: getattr(self, v) for k, v in op.consts.items()}
            values[op.outputs[0]] = op.fn(*args, **kwargs)
        if len(self.output_indices) == 1:
            return values[self.output_index]
        return tuple(values[i] for i in self.output_indices)


def _prelu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """TFLite PRELU: x where x >= 0, alpha * x elsewhere (alpha per channel).

    Written as relu(x) * (1 - alpha) + x * alpha: the same numbers, and in ONNX Runtime on the CPU
    the fastest form measured for the face mesh (3.4 ms against 3.8 for relu(x) - alpha * relu(-x)
    and 6.2 for its own PRelu node)."""
    return F.relu(x) * (1 - alpha) + x * alpha
