"""Transposed convolution: ``conv_transpose2d`` / ``conv_transpose1d`` and the layers
``ConvTranspose2d`` / ``ConvTranspose1d``, as torch's, run by gconv's forward kernels.

The algorithm: the sub-pixel (phase) decomposition. Along one axis (input length L, kernel
K, stride s, dilation d, padding p at the start), output pixel o collects every input pixel
i and tap k with  i*s + k*d = o + p.  Split the outputs by their phase a = o mod s,
o = a + s*m: the taps that reach phase a are those with (k*d - a - p) % s == 0 (an
arithmetic progression of step s / gcd(s, d), possibly empty), and tap k reads input
i = m + (a + p - k*d) / s. So, taking those taps in descending k order (the kernel
flipped), the phase-a outputs are a *forward* correlation, stride 1, of the undilated input
with the sub-kernel of those taps, at dilation d / gcd(s, d), shifted by an offset (the
input index tap 0 reads for m = 0). The offset becomes the forward call's padding at the
start when negative, a crop of the input when positive; the end is padded or cropped so
the phase has exactly ceil((OL - a) / s) outputs. In 2-D the phases are s_h * s_w pairs
(a, b), each one conv2d on the input with the outer product of the two axes' tap sets;
phases no tap reaches (or whose window lies wholly in the padding) are bias only.

Groups carry over: the weight (C_in, C_out/g, kH, kW) becomes, group by group, the forward
weight (C_out/g, C_in/g, ...) (channels swapped), then tapped per phase. No zero insertion,
no column buffer beyond the forward kernels' own; each output pixel is computed once, by a
kernel whose results are bitwise identical for any thread count. Stride 1 is the single
phase: one forward conv with the flipped, channel-swapped kernel and padding d*(k-1) - p.

The same core computes conv2d's input gradient (gconv/grad.py) with asymmetric padding and
an explicit output size, which is why ``_transpose_nchw`` takes pads at the start and the
output size rather than torch's (padding, output_padding).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import _activation, _kernels, _threads
from ._conv import _call_plan, _check_out, _contiguous, _execute
from ._reference import apply_activation
from ._types import ActivationSpec, Algorithm, FloatArray
from ._validation import (FLOAT_DTYPES, as_float_array, as_int, check_groups,
                          check_layer_channels, check_same_dtype, check_weight_groups,
                          FrozenParameters, is_nested_padding, ntuple, pair, torch_init)

__all__ = ["conv_transpose2d", "conv_transpose1d", "ConvTranspose2d", "ConvTranspose1d"]


# -- the phase plan ----------------------------------------------------------------------
def _axis_phases(L, K, s, d, p, OL):
    """For each phase a in range(min(s, OL)) along one axis: None (no tap reaches it, or
    every window lies in the padding: bias only) or (taps, sub_dilation, lo, hi, pad_begin,
    pad_end): the forward call reads input[lo:hi] padded by (pad_begin, pad_end) with the
    kernel taps `taps` (descending k) at `sub_dilation`, giving ceil((OL - a) / s) outputs."""
    phases = []
    for a in range(min(s, OL)):
        taps = [k for k in range(K - 1, -1, -1) if (k * d - a - p) % s == 0]
        if not taps:
            phases.append(None)
            continue
        c = [(a + p - k * d) // s for k in taps]            # exact: divisible
        sub_d = c[1] - c[0] if len(taps) > 1 else 1
        off = c[0]
        n_out = -(-(OL - a) // s)
        last = off + n_out - 1 + (len(taps) - 1) * sub_d
        lo, hi = max(off, 0), min(last, L - 1)
        if lo > hi:
            phases.append(None)
            continue
        phases.append((tuple(taps), sub_d, lo, hi + 1, lo - off, last - hi))
    return phases


def _forward_weight(w, groups):
    """(C_in, C_out/g, KH, KW) -> (C_out, C_in/g, KH, KW): each group's channels swapped."""
    C_in, M, KH, KW = w.shape
    CG = C_in // groups
    return np.ascontiguousarray(
        w.reshape(groups, CG, M, KH, KW).transpose(0, 2, 1, 3, 4).reshape(groups * M, CG,
                                                                          KH, KW))


# Phases stacked as output channels: where a layer has few output channels per group
# (below STACK_BELOW_M) the per-phase forward calls are GEMMs with a nearly empty M tile (an
# ISTFT's ConvTranspose1d(1026, 1, 1024, stride 256): 256 calls of M = 1, 0.2x torch); one
# call with the phases' sub-kernels side by side as channels fills it. Only along an axis
# whose phases read the same input window with the same number of taps (then stacking adds
# no zero tap); not for depthwise layers (one input channel per group), which have their
# own kernels.
STACK_BELOW_M = 8


def _stackable(phases):
    """True when every phase of an axis reads the same window with as many taps (they then
    differ only in the taps' weights and, by one at most, in their output count)."""
    if len(phases) < 2 or any(p is None for p in phases):
        return False
    return len({(len(p[0]), p[1], p[2], p[4]) for p in phases}) == 1


class _Phases:
    """The phase decomposition of one transposed convolution's geometry, with each phase's
    sub-kernel cut from one weight; the sub-kernels' packed forms are kept per call plan
    (a layer keeps its _Phases while its weights and input size are unchanged)."""

    def __init__(self, wf, in_hw, stride, dilation, pads_begin, out_hw, groups):
        (H, W), (sh, sw), (dh, dw) = in_hw, stride, dilation
        C_out, CG, KH, KW = wf.shape
        rows = _axis_phases(H, KH, sh, dh, pads_begin[0], out_hw[0])
        cols = _axis_phases(W, KW, sw, dw, pads_begin[1], out_hw[1])
        self.stride, self.out_hw = (sh, sw), out_hw
        # only the phases some tap reaches: with a stride beyond the kernel most are empty
        # (bias only), and those are filled in one pass before the others are computed
        self.has_empty = any(r is None for r in rows) or any(c is None for c in cols)
        stack = CG > 1 and C_out // groups < STACK_BELOW_M
        row_sets = [list(range(len(rows)))] if stack and _stackable(rows) else \
            [[a] for a, r in enumerate(rows) if r is not None]
        col_sets = [list(range(len(cols)))] if stack and _stackable(cols) else \
            [[b] for b, c in enumerate(cols) if c is not None]
        self.items = []                 # (pairs, w_sub, crop, pads, sub_dilation)
        for ra in row_sets:
            for cb in col_sets:
                r, c = rows[ra[0]], cols[cb[0]]     # the first phase has the most outputs
                pairs = [(a, b) for a in ra for b in cb]
                subs = [wf[:, :, np.array(rows[a][0])[:, None], np.array(cols[b][0])[None, :]]
                        for a, b in pairs]
                # output channels (group, phase, channel of the group)
                w_sub = np.ascontiguousarray(np.stack(
                    [w.reshape(groups, C_out // groups, *w.shape[1:]) for w in subs],
                    axis=1).reshape(len(pairs) * C_out, *subs[0].shape[1:]))
                w_sub.flags.writeable = False
                crop = (slice(r[2], r[3]), slice(c[2], c[3]))
                pads = ((r[4], r[5]), (c[4], c[5]))
                self.items.append((pairs, w_sub, crop, pads, (r[1], c[1])))
        self.packed = {}

    def run(self, x, bias, groups, act, y, algorithm):
        """Fill y (N, C_out, OH, OW), C-contiguous, from x (N, C_in, H, W)."""
        sh, sw = self.stride
        if self.has_empty:
            filler = np.zeros((1, y.shape[1], 1, 1), dtype=y.dtype)
            if bias is not None:
                filler += bias.reshape(1, -1, 1, 1)
            apply_activation(filler, act.name, act.alpha, act.lo, act.hi)
            y[...] = filler
        single = len(self.items) == 1 and len(self.items[0][0]) == 1 and not self.has_empty
        N, C_out = y.shape[:2]
        M = C_out // groups
        scratch = None
        threads = _threads.get_num_threads()
        stacked_bias = {}               # per number of stacked phases: the bias repeated
        for i, (pairs, w_sub, crop, pads, dil) in enumerate(self.items):
            xc = x[:, :, crop[0], crop[1]]
            b = bias
            if bias is not None and len(pairs) > 1:
                b = stacked_bias.get(len(pairs))
                if b is None:
                    b = stacked_bias[len(pairs)] = np.ascontiguousarray(np.broadcast_to(
                        bias.reshape(groups, 1, M), (groups, len(pairs), M)).reshape(-1))
            cp = _call_plan(xc, w_sub, b, 1, pads, dil, groups, act, "zeros", "NCHW",
                            algorithm)
            # keyed by the item too: items of equal geometry share one CallPlan
            packed = self.packed.get((i, cp))
            if packed is None and cp.kernel_plan is not None:
                if len(self.packed) >= 64:
                    self.packed.clear()
                packed = self.packed[(i, cp)] = cp.impl.prepare_weight(cp.kernel_plan,
                                                                       w_sub)
            if single:
                _execute(cp, _contiguous(xc, y.dtype), w_sub, b, None, y, packed)
                continue
            # one scratch for every phase's output (they differ by a row or column at most):
            # a fresh array per phase costs its page faults again, as much as the scatter
            shape = cp.problem.output_shape
            size = int(np.prod(shape))
            if scratch is None or scratch.size < size:
                scratch = np.empty(size, dtype=y.dtype)
            z = _execute(cp, _contiguous(xc, y.dtype), w_sub, b, None,
                         scratch[:size].reshape(shape), packed)
            if len(pairs) == 1:
                _kernels.phase_scatter(z, y, *pairs[0], sh, sw, threads)
                continue
            z = z.reshape(N, groups, len(pairs), M, *z.shape[2:])
            OH, OW = self.out_hw
            for p, (a, bb) in enumerate(pairs):
                oh, ow = -(-(OH - a) // sh), -(-(OW - bb) // sw)
                _kernels.phase_scatter(np.ascontiguousarray(
                    z[:, :, p, :, :oh, :ow].reshape(N, C_out, oh, ow)), y, a, bb, sh, sw,
                    threads)
        return y


def _transpose_nchw(x, w, bias, stride, dilation, pads_begin, out_hw, groups,
                    act=_activation.NONE, out=None, algorithm="auto", phases=None):
    """The core: x (N, C_in, H, W) and w (C_in, C_out/g, KH, KW) of one float dtype, already
    checked; pads_begin (top, left); out_hw the output's (OH, OW). Returns y (or out)."""
    N, C_in, H, W = x.shape
    C_out = w.shape[1] * groups
    if phases is None:
        phases = _Phases(_forward_weight(w, groups), (H, W), stride, dilation, pads_begin,
                         out_hw, groups)
    y = out if out is not None else np.empty((N, C_out, *out_hw), dtype=x.dtype)
    if N == 0 or y.size == 0:
        return y
    return phases.run(x, bias, groups, act, y, algorithm)


# -- argument checks (torch's words) -----------------------------------------------------
def _pads_nd(padding, n):
    """Transposed-conv padding -> ((begin, end), ...) per axis: an int, n ints, or (2-D only,
    beyond torch) ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        raise ValueError(f"conv_transpose{n}d takes integer padding, got padding={padding!r} "
                         f"(padding strings are conv{n}d's)")
    if n == 2 and is_nested_padding(padding):
        pads = tuple(pair(p, "padding") for p in padding)
    elif n == 1 and isinstance(padding, (tuple, list)) and len(padding) == 2:
        pads = ((as_int(padding[0], "padding"), as_int(padding[1], "padding")),)
    else:
        pads = tuple((p, p) for p in ntuple(padding, "padding", n))
    if min(min(p) for p in pads) < 0:
        raise ValueError("negative padding is not supported")
    return pads


def _check_geometry(n, stride, dilation, output_padding):
    if min(stride) <= 0:
        raise ValueError("non-positive stride is not supported")
    if min(dilation) <= 0:
        dil = ", ".join(f"dilation_{a}: {v}" for a, v in zip(_AXES[n], dilation))
        raise ValueError(f"dilation should be greater than zero, but got {dil}")
    if min(output_padding) < 0:
        raise ValueError("negative output_padding is not supported")
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
        parts = ([f"output_padding_{a}: {v}" for a, v in zip(_AXES[n], output_padding)]
                 + [f"stride_{a}: {v}" for a, v in zip(_AXES[n], stride)]
                 + [f"dilation_{a}: {v}" for a, v in zip(_AXES[n], dilation)])
        raise ValueError("output padding must be smaller than either stride or dilation, "
                         "but got " + " ".join(parts))


_AXES = {1: ("width",), 2: ("height", "width")}


def _check_transpose_shapes(x_shape, w_shape, groups, n, bias_shape):
    dims = n + 2
    if len(w_shape) != dims:
        raise ValueError(f"Expected {dims}-dimensional weight (C_in, C_out / groups, "
                         f"{'kH, kW' if n == 2 else 'k'}) for conv_transpose{n}d, but got "
                         f"weight of size {list(w_shape)}")
    C_in = w_shape[0]
    check_weight_groups(list(w_shape), groups)
    if x_shape[1] != C_in:
        raise ValueError(f"Given transposed=1, weight of size {list(w_shape)}, expected "
                         f"input{list(x_shape)} to have {C_in} channels, but got "
                         f"{x_shape[1]} channels instead")
    if 0 in w_shape[1:]:
        raise ValueError(f"Expected a non-empty kernel, but got weight of size {list(w_shape)}")
    if 0 in x_shape[2:]:
        raise ValueError(f"Only zero batch or zero channel inputs are supported, but got input "
                         f"shape: {list(x_shape)}")
    C_out = w_shape[1] * groups
    if bias_shape is not None and tuple(bias_shape) != (C_out,):
        raise ValueError(f"Given transposed=1, weight of size {list(w_shape)}, expected bias "
                         f"to be 1-dimensional with {C_out} elements, but got bias of size "
                         f"{list(bias_shape)} instead")


def _output_hw(in_hw, kernel, stride, pads, dilation, output_padding):
    return tuple((L - 1) * s - pb - pe + d * (k - 1) + op + 1
                 for L, k, s, (pb, pe), d, op in zip(in_hw, kernel, stride, pads, dilation,
                                                     output_padding))


def output_padding_for(output_size, in_hw, kernel, stride, pads, dilation):
    """torch's _output_padding: the output_padding that gives ``output_size`` (the last n
    entries are used, as torch), with torch's error for a size out of range."""
    n = len(in_hw)
    if output_size is None:
        return (0,) * n
    size = [as_int(v, "output_size") for v in output_size]
    if len(size) == n + 2:
        size = size[2:]
    if len(size) != n:
        raise ValueError(f"ConvTranspose{n}D: for {n + 2}D input, output_size must have {n} "
                         f"or {n + 2} elements (got {len(size)})")
    lo = _output_hw(in_hw, kernel, stride, pads, dilation, (0,) * n)
    hi = tuple(m + s - 1 for m, s in zip(lo, stride))
    if any(not (a <= v <= b) for v, a, b in zip(size, lo, hi)):
        raise ValueError(f"requested an output size of {tuple(size)}, but valid sizes range "
                         f"from {list(lo)} to {list(hi)} (for an input of {list(in_hw)})")
    return tuple(v - m for v, m in zip(size, lo))


def transpose_geometry(stride, padding, output_padding, groups, dilation, n):
    """A conv_transpose{n}d's geometry arguments, checked with torch's words: (groups,
    stride, dilation, output_padding, pads) with n-tuples and ((begin, end), ...) pads."""
    groups = check_groups(groups)
    stride = ntuple(stride, "stride", n)
    dilation = ntuple(dilation, "dilation", n)
    output_padding = ntuple(output_padding, "output_padding", n)
    pads = _pads_nd(padding, n)
    _check_geometry(n, stride, dilation, output_padding)
    return groups, stride, dilation, output_padding, pads


def _prepare(input, weight, bias, stride, padding, output_padding, groups, dilation, n):
    """Validate a conv_transpose{n}d call; returns the arrays (batched, n = 2 view) and the
    geometry."""
    x = as_float_array(input, "input")
    w = as_float_array(weight, "weight")
    b = as_float_array(bias, "bias", allow_none=True)
    if x.ndim not in (n + 1, n + 2):
        raise ValueError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to "
                         f"conv_transpose{n}d, but got input of size: {list(x.shape)}")
    groups, stride, dilation, output_padding, pads = transpose_geometry(
        stride, padding, output_padding, groups, dilation, n)
    batched = x.ndim == n + 2
    xb = x if batched else x[None]
    _check_transpose_shapes(xb.shape, w.shape, groups, n, None if b is None else b.shape)
    check_same_dtype(x, w, b)
    return x, w, b, batched, stride, dilation, output_padding, pads, groups


def _finish_2d(x, w, b, batched, stride, dilation, output_padding, pads, groups, act, out,
               algorithm, phases=None):
    xb = x if batched else x[None]
    kernel = w.shape[2:]
    out_hw = _output_hw(xb.shape[2:], kernel, stride, pads, dilation, output_padding)
    if min(out_hw) <= 0:
        raise ValueError(f"Given input size per channel: {list(xb.shape[2:])}, the "
                         f"transposed convolution's output would be {list(out_hw)}: too small "
                         f"(check padding)")
    shape = (xb.shape[0], w.shape[1] * groups, *out_hw)
    y = None
    if out is not None:
        _check_out(out, shape if batched else shape[1:], x.dtype,
                   (("input", x), ("weight", w), ("bias", b)))
        y = out if batched else out[None]
    dtype = x.dtype
    xc = _contiguous(xb, dtype)
    if phases is not None and phases[0] != (xc.shape[2:], out_hw):
        phases = None
    ph = phases[1] if phases is not None else None
    y = _transpose_nchw(xc, _contiguous(w, dtype), None if b is None else _contiguous(b, dtype),
                        stride, dilation, (pads[0][0], pads[1][0]), out_hw, groups, act, y,
                        algorithm, ph)
    if out is not None:
        return out
    return y if batched else y[0]


def _nhwc(run, input, out, layout):
    """Run ``run(input_nchw, out_nchw)`` for a caller in ``layout`` ('NCHW' or 'NHWC'):
    NHWC goes through NCHW copies (the weights keep torch's layout)."""
    if layout == "NCHW":
        return run(input, out)
    if layout != "NHWC":
        raise ValueError(f"layout must be one of ('NCHW', 'NHWC'), got {layout!r}")
    x = as_float_array(input, "input")
    if x.ndim not in (3, 4):
        raise ValueError(f"Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d, "
                         f"but got input of size: {list(x.shape)}")
    to_nchw = (0, 3, 1, 2) if x.ndim == 4 else (2, 0, 1)
    to_nhwc = (0, 2, 3, 1) if x.ndim == 4 else (1, 2, 0)
    if out is not None and not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    y = run(x.transpose(to_nchw), None)
    if out is not None:
        if out.shape != y.transpose(to_nhwc).shape or out.dtype != y.dtype:
            raise ValueError(f"out must have shape {y.transpose(to_nhwc).shape} and dtype "
                             f"{y.dtype}, got shape {out.shape} and dtype {out.dtype}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be a writeable, C-contiguous array")
        out[...] = y.transpose(to_nhwc)
        return out
    return np.ascontiguousarray(y.transpose(to_nhwc))


def conv_transpose2d(input: FloatArray, weight: FloatArray, bias: Optional[FloatArray] = None,
                     stride=1, padding=0, output_padding=0, groups: int = 1, dilation=1, *,
                     activation: ActivationSpec = None, out: Optional[FloatArray] = None,
                     layout: str = "NCHW", algorithm: Algorithm = "auto") -> FloatArray:
    """2-D grouped transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    input:  (N, C_in, H, W) or unbatched (C_in, H, W); float32 or float64
    weight: (C_in, C_out // groups, kH, kW), same dtype
    bias:   (C_out,) or None
    stride, dilation, output_padding: int or (h, w); output_padding < stride or < dilation
    padding: int, (h, w), or (beyond torch) ((top, bottom), (left, right))
    Output size per axis: (L - 1)*s - pads + d*(k - 1) + output_padding + 1.

    Keyword-only, beyond torch: activation (fused: act(conv_transpose + bias)), out
    (preallocated C-contiguous output; returned), layout ('NCHW' or 'NHWC' for input and
    output, NHWC through copies), algorithm (the forward kernels' choice).
    """
    def run(x, o):
        args = _prepare(x, weight, bias, stride, padding, output_padding, groups, dilation, 2)
        return _finish_2d(*args, _activation.parse_activation(activation), o, algorithm)
    return _nhwc(run, input, out, layout)


def _to_2d_args(x, w, b, batched, stride, dilation, output_padding, pads, groups):
    x4 = x[:, :, None, :] if batched else x[:, None, :]
    return (x4, w[:, :, None, :], b, batched, (1, stride[0]), (1, dilation[0]),
            (0, output_padding[0]), ((0, 0), pads[0]), groups)


def conv_transpose1d(input: FloatArray, weight: FloatArray, bias: Optional[FloatArray] = None,
                     stride=1, padding=0, output_padding=0, groups: int = 1, dilation=1, *,
                     activation: ActivationSpec = None, out: Optional[FloatArray] = None,
                     algorithm: Algorithm = "auto") -> FloatArray:
    """1-D grouped transposed convolution, as ``torch.nn.functional.conv_transpose1d``:
    input (N, C_in, L) or (C_in, L), weight (C_in, C_out // groups, k); padding an int or
    (beyond torch) (left, right). Run as conv_transpose2d with H = 1 (views, no copies)."""
    args = _prepare(input, weight, bias, stride, padding, output_padding, groups, dilation, 1)
    o4 = None
    if out is not None:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
        o4 = out[..., None, :] if out.ndim == args[0].ndim else out
    y = _finish_2d(*_to_2d_args(*args), _activation.parse_activation(activation), o4,
                   algorithm)
    if out is not None:
        return out
    return y[..., 0, :]


# -- layers ------------------------------------------------------------------------------
class ConvTranspose2d(FrozenParameters):
    """A 2-D transposed convolution layer, as ``torch.nn.ConvTranspose2d``, holding NumPy
    weights: ``weight`` (C_in, C_out // groups, kH, kW), ``bias`` (C_out,), initialised as
    torch does (uniform in +-1/sqrt(fan_in), torch's fan_in of that weight: C_out // groups
    * kH * kW), drawn from ``rng``. Read-only arrays: assign new ones to change them. The
    phase sub-kernels are cut and packed once per input size and repacked only after an
    assignment. ``layer(x, output_size=...)`` picks the output_padding as torch does."""

    _n = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", dtype=np.float32, rng=None,
                 activation: ActivationSpec = None) -> None:
        n = self._n
        in_channels, out_channels, groups = check_layer_channels(in_channels, out_channels,
                                                                 groups)
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f'{type(self).__name__}')
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = ntuple(kernel_size, "kernel_size", n)
        if min(self.kernel_size) <= 0:
            raise ValueError(f"kernel_size must be positive, got {self.kernel_size}")
        self.stride = ntuple(stride, "stride", n)
        self.dilation = ntuple(dilation, "dilation", n)
        self.output_padding = ntuple(output_padding, "output_padding", n)
        self._pads = _pads_nd(padding, n)
        self.padding = (tuple(p for p, _ in self._pads)
                        if all(p == q for p, q in self._pads) else
                        (self._pads[0] if n == 1 else self._pads))
        _check_geometry(n, self.stride, self.dilation, self.output_padding)
        self.padding_mode = "zeros"
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        self.dtype = dtype
        self.activation = _activation.parse_activation(activation)
        self._bias_enabled = bool(bias)
        self._weight = self._bias = None
        self._phases = None            # ((H, W), (OH, OW)), _Phases for the last input size
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None):
        # torch: on weight (C_in, C_out/g, k...) fan_in is size(1) * prod(k)
        self.weight, self.bias = torch_init(
            rng, self.out_channels // self.groups * math.prod(self.kernel_size),
            (self.in_channels, self.out_channels // self.groups, *self.kernel_size),
            self.out_channels if self._bias_enabled else None)

    def _weight_shape(self):
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    def _weight_changed(self):
        self._phases = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_phases"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._refreeze()

    def _weight_2d(self):
        return self._weight if self._n == 2 else self._weight[:, :, None, :]

    def forward(self, input: FloatArray, output_size=None, *, out: Optional[FloatArray] = None,
                layout: str = "NCHW", algorithm: Algorithm = "auto") -> FloatArray:
        """Run the layer on (N, C_in, *spatial) or (C_in, *spatial); ``output_size`` as
        torch's (the spatial size, or the full shape); ``layout`` 'NHWC' (2-D layers only:
        input and output channels-last, through copies)."""
        if layout != "NCHW":
            if self._n != 2:
                raise ValueError(f"layout must be 'NCHW' for {type(self).__name__}")
            if output_size is not None and len(output_size) == 4:
                N, H, W, C = output_size          # the full shape, given channels-last
                output_size = (H, W)
            return _nhwc(lambda x, o: self._forward(x, output_size, o, algorithm), input, out,
                         layout)
        return self._forward(input, output_size, out, algorithm)

    def _forward(self, input, output_size, out, algorithm):
        n = self._n
        x = as_float_array(input, "input")
        if x.ndim not in (n + 1, n + 2):
            raise ValueError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to "
                             f"conv_transpose{n}d, but got input of size: {list(x.shape)}")
        if x.dtype != self.dtype:
            raise TypeError(f"Input type ({x.dtype}) and weight type ({self.dtype}) should be "
                            f"the same")
        op = self.output_padding
        if output_size is not None:
            op = output_padding_for(output_size, x.shape[-n:], self.kernel_size, self.stride,
                                    self._pads, self.dilation)
        batched = x.ndim == n + 2
        xb = x if batched else x[None]
        _check_transpose_shapes(xb.shape, self._weight.shape, self.groups, n, None)
        args = (x, self._weight, self._bias, batched, self.stride, self.dilation, op,
                self._pads, self.groups)
        o4 = out
        if n == 1:
            args = _to_2d_args(*args)
            if isinstance(out, np.ndarray) and out.ndim == x.ndim:
                o4 = out[..., None, :]
        x4, w4 = args[0], args[1]
        in_hw = (x4 if args[3] else x4[None]).shape[2:]
        out_hw = _output_hw(in_hw, w4.shape[2:], args[4], args[7], args[5], args[6])
        key = (tuple(in_hw), out_hw)
        if self._phases is None or self._phases[0] != key:
            if min(out_hw) > 0:
                self._phases = (key, _Phases(_forward_weight(w4, self.groups), in_hw,
                                             args[4], args[5],
                                             (args[7][0][0], args[7][1][0]), out_hw,
                                             self.groups))
        y = _finish_2d(*args, self.activation, o4, algorithm, self._phases)
        if out is not None:
            return out
        return y if n == 2 else y[..., 0, :]

    __call__ = forward

    def __repr__(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if any(min(p) for p in self._pads) or any(max(p) for p in self._pads):
            s += f", padding={self.padding}"
        if any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self._bias is None:
            s += ", bias=False"
        if self.activation.name is not None:
            s += f", activation={self.activation.spec!r}"
        return f"{type(self).__name__}({s})"


class ConvTranspose1d(ConvTranspose2d):
    """A 1-D transposed convolution layer, as ``torch.nn.ConvTranspose1d``: weight
    (C_in, C_out // groups, k), run as ConvTranspose2d's path with H = 1."""
    _n = 1
