"""``conv1d`` and ``Conv1d``: torch's 1-D convolution, run by the 2-D path with H = 1.

An input (N, C, L) is viewed as (N, C, 1, L) and a weight (C_out, C_in/groups, k) as
(C_out, C_in/groups, 1, k): indexing with ``None`` only adds a unit axis, so these are views
whatever the strides, and a preallocated ``out`` is written in place through such a view.
Everything else (validation, dispatch, fused epilogue, weight packing) is conv2d's.

Errors speak in 1-D terms, as torch's conv1d does. The happy path does no extra checking:
only when conv2d refuses a call are the arguments re-examined to word the error for 1-D.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ._conv import Conv2d, _is_dask_array, conv2d, conv_layer_args
from ._types import ActivationSpec, Algorithm, FloatArray, Padding, PaddingMode
from ._validation import (PADDING_STRINGS, as_float_array, as_int, check_groups,
                          check_group_channels, check_same_dtype, ntuple)


def _single(value, name):
    """An int or a 1-element sequence -> int, with torch's message for a wrong length."""
    return ntuple(value, name, 1)[0]


def _padding_1d(padding):
    """1-D padding -> (left, right), or a padding string unchanged.

    int p or (p,): p on both ends; (left, right): asymmetric (beyond torch, like ONNX pads).
    """
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                             f"{PADDING_STRINGS}")
        return padding
    if isinstance(padding, (tuple, list)):
        if len(padding) == 1:
            left = right = as_int(padding[0], "padding")
        elif len(padding) == 2:
            left, right = as_int(padding[0], "padding"), as_int(padding[1], "padding")
        else:
            raise ValueError(f"expected padding to be a single integer value, a list of 1 "
                             f"value or (left, right) for conv1d, but got "
                             f"padding={list(padding)}")
    else:
        left = right = as_int(padding, "padding")
    if min(left, right) < 0:
        raise ValueError(f"negative padding is not supported (got padding={padding!r})")
    return left, right


def geometry_2d(stride, padding, dilation):
    """conv1d's stride, padding and dilation as conv2d's on H = 1 (kernel height 1)."""
    return ((1, _single(stride, "stride")), _padding_2d(_padding_1d(padding)),
            (1, _single(dilation, "dilation")))


def _padding_2d(pads_1d):
    """conv1d padding -> conv2d padding with no padding along the unit H axis."""
    if isinstance(pads_1d, str):
        return pads_1d      # with H = 1 and KH = 1 every string rule gives 0 rows of padding
    left, right = pads_1d
    return (0, left) if left == right else ((0, 0), (left, right))


def _check_same_stride(padding, stride):
    if padding == "same" and stride != 1:
        raise ValueError(f"padding='same' is not supported for strided convolutions (got "
                         f"stride={stride}); padding='same_upper' or 'same_lower' give ONNX's "
                         f"rule for any stride")


def _check_input_rank(x):
    if x.ndim not in (2, 3):
        raise ValueError("Expected 2D (unbatched) or 3D (batched) input to conv1d, but got "
                         f"input of size: {list(x.shape)}")


def _check_weight_rank(w):
    if w.ndim != 3:
        raise ValueError(f"Expected 3-dimensional weight (C_out, C_in / groups, k) for conv1d, "
                         f"but got weight of size {list(w.shape)}")


def _output_length(L, k, stride, dilation, pads):
    left, right = pads
    return (L + left + right - dilation * (k - 1) - 1) // stride + 1


def _resolve_pads(padding, L, k, stride, dilation):
    """(left, right) for this length; the string rules as gconv.conv2d applies them."""
    if not isinstance(padding, str):
        return padding
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = dilation * (k - 1)
        return total // 2, total - total // 2
    out = -(-L // stride)
    total = max(0, (out - 1) * stride + dilation * (k - 1) + 1 - L)
    left = total // 2 if padding == "same_upper" else total - total // 2
    return left, total - left


def _diagnose(x, w, b, stride, padding, dilation, groups, padding_mode, residual, out):
    """conv2d refused this call: raise the 1-D wording of the reason, if we can name it.

    Runs only on the error path; returns quietly when the reason is not a shape problem
    (the caller then re-raises conv2d's own error).
    """
    groups = check_groups(groups)
    if stride <= 0:
        raise ValueError(f"non-positive stride is not supported (got stride={stride})")
    if dilation <= 0:
        raise ValueError(f"non-positive dilation is not supported (got dilation={dilation})")
    check_same_dtype(x, w, b)
    C_out, CG, k = w.shape
    xs = list(x.shape) if x.ndim == 3 else [1, *x.shape]
    N, C, L = xs
    check_group_channels(xs, list(w.shape), groups)
    if b is not None and (b.ndim != 1 or b.shape[0] != C_out):
        raise ValueError(f"Given weight of size {list(w.shape)}, expected bias to be "
                         f"1-dimensional with {C_out} elements, but got bias of size "
                         f"{list(b.shape)} instead")
    if k == 0 or CG == 0:
        return
    pads = _resolve_pads(padding, L, k, stride, dilation)
    extent = dilation * (k - 1) + 1
    if L + sum(pads) < extent:
        raise ValueError(f"Calculated padded input size per channel: ({L + sum(pads)}). "
                         f"Kernel size: ({extent}). Kernel size can't be greater than actual "
                         f"input size")
    if padding_mode == "reflect" and max(pads) >= L:
        raise ValueError(f"padding_mode='reflect' needs each pad smaller than the input "
                         f"length: got pads (left, right)={pads} for input of length {L}")
    if padding_mode == "circular" and max(pads) > L:
        raise ValueError(f"padding_mode='circular' needs each pad at most the input length: "
                         f"got pads (left, right)={pads} for input of length {L}")
    shape = (N, C_out, _output_length(L, k, stride, dilation, pads))
    if x.ndim == 2:
        shape = shape[1:]
    for name, a in (("residual", residual), ("out", out)):
        if isinstance(a, np.ndarray) and a.shape != shape:
            raise ValueError(f"{name} must have the output's shape {shape}, got {a.shape}")


def _as_2d_views(x, residual, out):
    """The caller's 1-D arrays as batched 2-D views (N, C, 1, L): never a copy."""
    batched = x.ndim == 3
    lead = (slice(None),) if batched else (None,)
    index = (*lead, slice(None), None, slice(None))
    x4 = x[index]
    r4 = residual[index] if residual is not None and residual.ndim == x.ndim else residual
    o4 = out[index] if isinstance(out, np.ndarray) and out.ndim == x.ndim else out
    return x4, r4, o4


def _check_extra(x, residual, out):
    if residual is not None:
        residual = as_float_array(residual, "residual")
    if out is not None and not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    return residual


def _from_2d(y4, batched):
    return y4[:, :, 0, :] if batched else y4[0, :, 0, :]


def conv1d(input: FloatArray, weight: FloatArray, bias: Optional[FloatArray] = None,
           stride=1, padding: Padding = 0, dilation=1, groups: int = 1, *,
           activation: ActivationSpec = None, residual: Optional[FloatArray] = None,
           out: Optional[FloatArray] = None, padding_mode: PaddingMode = "zeros",
           algorithm: Algorithm = "auto") -> FloatArray:
    """1-D grouped convolution of NumPy arrays, as ``torch.nn.functional.conv1d``.

    input:    (N, C_in, L), or unbatched (C_in, L); float32 or float64
    weight:   (C_out, C_in // groups, k), same dtype as input
    bias:     (C_out,) or None
    stride, dilation: int (or a 1-element tuple)
    padding:  int, (left, right), 'valid', 'same' (torch: stride 1), 'same_upper' /
              'same_lower' (ONNX auto_pad: output length ceil(L / stride))
    groups:   C_in and C_out split into `groups` independent paths

    Keyword-only, as gconv.conv2d: activation (fused act(conv + bias + residual)), residual
    (the output's shape), out (preallocated, C-contiguous; returned), padding_mode ('zeros',
    'reflect', 'replicate', 'circular'), algorithm.

    Returns a new array (N, C_out, L_out) of the input's dtype (or ``out``).
    """
    x = as_float_array(input, "input")
    w = as_float_array(weight, "weight")
    b = as_float_array(bias, "bias", allow_none=True)
    _check_input_rank(x)
    _check_weight_rank(w)
    s = _single(stride, "stride")
    d = _single(dilation, "dilation")
    pads = _padding_1d(padding)
    _check_same_stride(pads, s)
    residual = _check_extra(x, residual, out)
    x4, r4, o4 = _as_2d_views(x, residual, out)
    if (residual is not None and r4 is residual) or (out is not None and o4 is out):
        # not made views: a rank that cannot be the output's
        _diagnose(x, w, b, s, pads, d, groups, padding_mode, residual, out)
    try:
        y4 = conv2d(x4, w[:, :, None, :], b, (1, s), _padding_2d(pads), (1, d), groups,
                    activation=activation, residual=r4, out=o4, padding_mode=padding_mode,
                    algorithm=algorithm)
    except (ValueError, TypeError):
        _diagnose(x, w, b, s, pads, d, groups, padding_mode, residual, out)
        raise
    return out if out is not None else _from_2d(y4, x.ndim == 3)


class Conv1d:
    """A 1-D convolution layer, as ``torch.nn.Conv1d``, holding NumPy weights.

    Built on a gconv.Conv2d with kernel (1, k): the same initialisation as torch
    (uniform in +-1/sqrt(C_in/groups * k)), the same packing of weights once per kernel
    plan, repacked only after ``layer.weight = new``. ``weight`` (C_out, C_in/groups, k) and
    ``bias`` are read-only arrays.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding: Padding = 0, dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: PaddingMode = "zeros", dtype=np.float32, rng=None,
                 activation: ActivationSpec = None) -> None:
        k = _single(kernel_size, "kernel_size")
        s = _single(stride, "stride")
        d = _single(dilation, "dilation")
        pads = _padding_1d(padding)
        self._layer = Conv2d(in_channels, out_channels, (1, k), stride=(1, s),
                             padding=_padding_2d(pads), dilation=(1, d), groups=groups,
                             bias=bias, padding_mode=padding_mode, dtype=dtype, rng=rng,
                             activation=activation)
        self.kernel_size, self.stride, self.dilation = (k,), (s,), (d,)
        self.padding = pads if isinstance(pads, str) else (
            (pads[0],) if pads[0] == pads[1] else pads)
        self._pads = pads

    in_channels = property(lambda self: self._layer.in_channels)
    out_channels = property(lambda self: self._layer.out_channels)
    groups = property(lambda self: self._layer.groups)
    padding_mode = property(lambda self: self._layer.padding_mode)
    dtype = property(lambda self: self._layer.dtype)
    activation = property(lambda self: self._layer.activation)

    def reset_parameters(self, rng=None):
        self._layer.reset_parameters(rng)

    @property
    def weight(self):
        return self._layer.weight[:, :, 0, :]

    @weight.setter
    def weight(self, value):
        shape = (self.out_channels, self.in_channels // self.groups, self.kernel_size[0])
        w = np.asarray(value)
        if w.shape != shape:
            raise ValueError(f"weight must have shape {shape}, got {w.shape}")
        self._layer.weight = w[:, :, None, :]

    @property
    def bias(self):
        return self._layer.bias

    @bias.setter
    def bias(self, value):
        self._layer.bias = value

    def forward(self, input: FloatArray, *, residual: Optional[FloatArray] = None,
                out: Optional[FloatArray] = None, algorithm: Algorithm = "auto") -> FloatArray:
        """Run the layer on ``input`` (N, C_in, L) or (C_in, L); a dask array goes to
        gconv.dask.apply (the "dask" extra)."""
        if type(input) is not np.ndarray and _is_dask_array(input):
            from . import dask as _dask
            if residual is not None or out is not None:
                raise TypeError("a layer called on a dask array takes no residual or out")
            return _dask.apply(self, input, algorithm=algorithm)
        x = as_float_array(input, "input")
        _check_input_rank(x)
        residual = _check_extra(x, residual, out)
        x4, r4, o4 = _as_2d_views(x, residual, out)
        if (residual is not None and r4 is residual) or (out is not None and o4 is out):
            self._diagnose(x, residual, out)
        try:
            y4 = self._layer(x4, residual=r4, out=o4, algorithm=algorithm)
        except (ValueError, TypeError):
            self._diagnose(x, residual, out)
            raise
        return out if out is not None else _from_2d(y4, x.ndim == 3)

    def _diagnose(self, x, residual, out):
        _diagnose(x, self.weight, self.bias, self.stride[0], self._pads, self.dilation[0],
                  self.groups, self.padding_mode, residual, out)

    __call__ = forward

    def __repr__(self):
        return f"Conv1d({conv_layer_args(self)})"
