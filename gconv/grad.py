"""Gradients of gconv's convolutions, named as ``torch.nn.grad`` names them.

    import gconv.grad
    dx = gconv.grad.conv2d_input(x.shape, w, gy, stride, padding, dilation, groups)
    dw = gconv.grad.conv2d_weight(x, w.shape, gy, stride, padding, dilation, groups)
    db = gconv.grad.conv2d_bias(gy)
    (and conv1d_input / conv1d_weight / conv1d_bias; conv_transpose2d_input /
    conv_transpose2d_weight and the 1-D twins, the gradients of conv_transpose2d / 1d)

``padding`` takes every form gconv.conv2d / conv1d take: int, pairs, asymmetric
((top, bottom), (left, right)) or (left, right), 'valid', 'same', 'same_upper',
'same_lower' (resolved against ``input_size`` exactly as the forward call resolves it).

How:
  * input gradient: a transposed convolution of grad_output with the same weight, whose
    output is cropped / extended to input_size (the pads at the start and the output size
    given exactly, so asymmetric and 'same' padding need no output_padding): one set of
    kernels for both, the phase decomposition of gconv/_transpose.py.
  * weight gradient: dW[o, c, kh, kw] = sum_{n, oh, ow} gy[n, o, oh, ow] *
    x[n, g*CG + c, oh*s - p + kh*d, ow*s - p + kw*d] is itself a forward grouped
    convolution, and gconv runs it with its own forward kernels: the input x viewed as
    (CG, G*N, H, W) (input channels as the batch, the batch as channels), grad_output as the
    weight (G*M, N, OH, OW) with groups G, stride d, dilation s, the same padding, output
    (CG, G*M, KH, KW). The reduction over batch and pixels is then the kernels' reduction
    over channels and taps, done in a fixed order that does not depend on the thread count
    (gconv's promise, tested bitwise with 1 and 2 threads). Chosen over NumPy
    einsum/tensordot per tap because BLAS reductions may split differently with the thread
    count (and einsum's path choice with the shapes), which would break that promise; it
    also needs only two transposed copies (x and grad_output), no per-tap window copies.
    Its weak spot: that convolution has an OH x OW kernel and a KH x KW output, which the
    GEMM tiles poorly when each group has few channels. So depthwise and many-group weight
    gradients (one input channel per group, or PER_IMAGE_MIN_GROUPS groups and more) run
    per image instead: image n's input viewed as CG planes of G channels, convolved
    depthwise (multiplier M) with grad_output[n] as the (G*M, 1, OH, OW) kernel, which the
    depthwise kind's lanes mode takes whatever the kernel's size; the images' results are
    summed in order n = 0, 1, ... (again independent of the thread count). Zen 4, one
    thread: 8x144x56x56 3x3 depthwise 33.3 -> ~3.4 ms (torch 5.3-8.9), 8x240x28x28 5x5
    14.1 -> ~2 ms (torch 30), ResNeXt 8x128x56x56 32 groups 62.7 -> 9.4 ms (torch 22.4);
    on 28x28 and 14x14 planes of 32 groups torch stays ahead (8.0 and 7.5 against 4.7 and
    3.2 ms).
  * bias gradient: grad_output summed over batch and pixels by NumPy (single-threaded,
    pairwise, accumulated in float64), so also independent of the thread count.
Gradients of transposed convolutions swap the roles: the input gradient of
conv_transpose2d is conv2d(grad_output, weight), its weight gradient the weight gradient
of that conv2d with input and output exchanged.
"""
from __future__ import annotations

import numpy as np

from ._conv import _contiguous, conv2d
from ._conv1d import _output_length, _padding_1d, _resolve_pads, _single, geometry_2d
from ._transpose import _output_hw, _pads_nd, _transpose_nchw, transpose_geometry
from ._validation import (as_float_array, check_same_dtype,
                          problem_from_shapes)

__all__ = ["conv2d_input", "conv2d_weight", "conv2d_bias", "conv1d_input", "conv1d_weight",
           "conv1d_bias", "conv_transpose2d_input", "conv_transpose2d_weight",
           "conv_transpose1d_input", "conv_transpose1d_weight"]


def _check_grad_output(gy, shape, what):
    if tuple(gy.shape) != tuple(shape):
        raise ValueError(f"grad_output must have the {what}'s output shape {tuple(shape)}, "
                         f"got {tuple(gy.shape)}")


def _problem(input_size, weight_size, stride, padding, dilation, groups, dtype):
    size = tuple(int(v) for v in input_size)
    if len(size) not in (3, 4):
        raise ValueError(f"input_size must be (N, C_in, H, W) or (C_in, H, W), got {size}")
    batched = len(size) == 4
    p = problem_from_shapes(size if batched else (1, *size), weight_size, stride, padding,
                            dilation, groups, dtype=dtype)
    return p, batched


# -- the two cores, on batched NCHW arrays ------------------------------------------------
def _input_grad(gy, w, in_hw, stride, dilation, pads_begin, groups):
    """dx (N, C_in, H, W) from gy (N, C_out, OH, OW), w (C_out, C_in/g, KH, KW)."""
    return _transpose_nchw(_contiguous(gy, gy.dtype), _contiguous(w, w.dtype), None, stride,
                           dilation, pads_begin, in_hw, groups)


# Groups from which the weight gradient runs per image: channels enough to fill half an
# AVX-512 vector in the depthwise kind's lanes mode (ResNeXt 8x128x56x56, 32 groups of 4:
# 62.7 -> 9.4 ms; 8 groups of 8 at 56x56: 22.7 -> 14.5 ms, Zen 4, one thread)
PER_IMAGE_MIN_GROUPS = 8


def _weight_grad(x, weight_size, gy, stride, dilation, pads_begin, groups):
    """dW (C_out, CG, KH, KW) from x (N, C_in, H, W) and gy (N, C_out, OH, OW): one forward
    conv (see the module's comment). Only the first OH x OW outputs are read from gy."""
    N, C_in, H, W = x.shape
    C_out, CG, KH, KW = weight_size
    G = groups
    M = C_out // G
    OH, OW = gy.shape[2], gy.shape[3]
    (sh, sw), (dh, dw), (pt, pl) = stride, dilation, pads_begin
    if N == 0 or OH == 0 or OW == 0:
        return np.zeros(weight_size, dtype=x.dtype)
    # the input rows / columns some tap of some output reads (in padded coordinates up to
    # s*(O-1) + d*(K-1)); the end is padded to reach exactly KH x KW outputs
    need_h, need_w = sh * (OH - 1) + dh * (KH - 1) + 1, sw * (OW - 1) + dw * (KW - 1) + 1
    H2, W2 = max(min(H, need_h - pt), 0), max(min(W, need_w - pl), 0)
    pb, pr = need_h - pt - H2, need_w - pl - W2
    if H2 == 0 or W2 == 0:         # every tap reads padding
        return np.zeros(weight_size, dtype=x.dtype)
    conv_args = dict(stride=(dh, dw), padding=((pt, pb), (pl, pr)), dilation=(sh, sw))
    if CG == 1 or G >= PER_IMAGE_MIN_GROUPS:     # per image (see the module's comment)
        total = None                                    # (CG, C_out, KH, KW)
        for n in range(N):
            # image n's input channels as a batch of CG (G, H2, W2) planes
            xn = np.ascontiguousarray(x[n, :, :H2, :W2].reshape(G, CG, H2, W2)
                                      .transpose(1, 0, 2, 3))
            y = conv2d(xn, gy[n].reshape(C_out, 1, OH, OW), None, groups=G, **conv_args)
            if total is None:
                total = y
            else:
                total += y
        return np.ascontiguousarray(total.transpose(1, 0, 2, 3))
    xt = np.ascontiguousarray(
        x[:, :, :H2, :W2].reshape(N, G, CG, H2, W2).transpose(2, 1, 0, 3, 4)
    ).reshape(CG, G * N, H2, W2)
    gt = np.ascontiguousarray(gy.reshape(N, G, M, OH, OW).transpose(1, 2, 0, 3, 4)).reshape(
        G * M, N, OH, OW)
    yt = conv2d(xt, gt, None, groups=G, **conv_args)    # (CG, C_out, KH, KW)
    return np.ascontiguousarray(yt.transpose(1, 0, 2, 3))


def _bias_grad(gy, axes):
    return gy.sum(axis=axes, dtype=np.float64).astype(gy.dtype)


# -- conv2d ------------------------------------------------------------------------------
def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1,
                 groups=1):
    """The gradient of conv2d(input, weight, ...) with respect to its input, of shape
    ``input_size`` ((N, C_in, H, W) or unbatched (C_in, H, W)), given ``grad_output``."""
    w = as_float_array(weight, "weight")
    gy = as_float_array(grad_output, "grad_output")
    check_same_dtype(gy, w, None)
    p, batched = _problem(input_size, w.shape, stride, padding, dilation, groups, w.dtype)
    _check_grad_output(gy, p.output_shape if batched else p.output_shape[1:], "conv2d")
    g4 = gy if batched else gy[None]
    dx = _input_grad(g4, w, (p.H, p.W), p.stride, p.dilation, (p.padding[0], p.padding[2]),
                     p.groups)
    return dx if batched else dx[0]


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1,
                  groups=1):
    """The gradient of conv2d(input, weight, ...) with respect to a weight of shape
    ``weight_size`` (C_out, C_in // groups, kH, kW), given ``grad_output``."""
    x = as_float_array(input, "input")
    gy = as_float_array(grad_output, "grad_output")
    check_same_dtype(x, gy, None)
    weight_size = tuple(int(v) for v in weight_size)
    p, batched = _problem(x.shape, weight_size, stride, padding, dilation, groups, x.dtype)
    _check_grad_output(gy, p.output_shape if batched else p.output_shape[1:], "conv2d")
    x4, g4 = (x, gy) if batched else (x[None], gy[None])
    return _weight_grad(x4, weight_size, g4, p.stride, p.dilation,
                        (p.padding[0], p.padding[2]), p.groups)


def conv2d_bias(grad_output):
    """The gradient of conv2d's bias: grad_output (N, C_out, OH, OW) or (C_out, OH, OW)
    summed over all but the channel axis."""
    gy = as_float_array(grad_output, "grad_output")
    if gy.ndim not in (3, 4):
        raise ValueError(f"grad_output must be 3-D or 4-D, got shape {gy.shape}")
    return _bias_grad(gy, (0, 2, 3) if gy.ndim == 4 else (1, 2))


# -- conv1d: H = 1 -----------------------------------------------------------------------
def _size_2d(input_size):
    size = tuple(int(v) for v in input_size)
    if len(size) not in (2, 3):
        raise ValueError(f"input_size must be (N, C_in, L) or (C_in, L), got {size}")
    return (*size[:-1], 1, size[-1])


def _reword_1d(error, size, w_shape, gy, stride, padding, dilation):
    """conv2d refused a conv1d gradient's grad_output: say so in 1-D shapes."""
    if "grad_output must have" not in str(error):
        return error
    L, k = size[-1], w_shape[-1]
    pads = _resolve_pads(_padding_1d(padding), L, k, stride, dilation)
    shape = (*size[:-2], w_shape[0], _output_length(L, k, stride, dilation, pads))
    return ValueError(f"grad_output must have the conv1d's output shape {shape}, got "
                      f"{tuple(gy.shape)}")


def conv1d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1,
                 groups=1):
    """conv1d's input gradient, of shape ``input_size`` ((N, C_in, L) or (C_in, L))."""
    w = as_float_array(weight, "weight")
    gy = as_float_array(grad_output, "grad_output")
    if w.ndim != 3:
        raise ValueError(f"Expected 3-dimensional weight (C_out, C_in / groups, k) for "
                         f"conv1d, but got weight of size {list(w.shape)}")
    s, pad, d = geometry_2d(stride, padding, dilation)
    try:
        dx = conv2d_input(_size_2d(input_size), w[:, :, None, :], gy[..., None, :], s, pad, d,
                          groups)
    except ValueError as e:
        raise _reword_1d(e, tuple(input_size), w.shape, gy, s[1], padding, d[1]) from None
    return dx[..., 0, :]


def conv1d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1,
                  groups=1):
    """conv1d's weight gradient, of shape ``weight_size`` (C_out, C_in // groups, k)."""
    x = as_float_array(input, "input")
    gy = as_float_array(grad_output, "grad_output")
    size = tuple(int(v) for v in weight_size)
    if len(size) != 3:
        raise ValueError(f"weight_size must be (C_out, C_in / groups, k), got {size}")
    s, pad, d = geometry_2d(stride, padding, dilation)
    try:
        dw = conv2d_weight(x[..., None, :], (size[0], size[1], 1, size[2]), gy[..., None, :],
                           s, pad, d, groups)
    except ValueError as e:
        raise _reword_1d(e, x.shape, size, gy, s[1], padding, d[1]) from None
    return dw[:, :, 0, :]


def conv1d_bias(grad_output):
    """conv1d's bias gradient: grad_output (N, C_out, L_out) or (C_out, L_out) summed over
    all but the channel axis."""
    gy = as_float_array(grad_output, "grad_output")
    if gy.ndim not in (2, 3):
        raise ValueError(f"grad_output must be 2-D or 3-D, got shape {gy.shape}")
    return _bias_grad(gy, (0, 2) if gy.ndim == 3 else (1,))


# -- conv_transpose2d / 1d ---------------------------------------------------------------
def _transpose_args(x_shape, w_shape, gy, stride, padding, output_padding, groups, dilation,
                    n):
    """The geometry of the conv_transpose{n}d whose gradient is asked for, and whether it
    is batched; grad_output must have its output's shape."""
    groups, stride, dilation, output_padding, pads = transpose_geometry(
        stride, padding, output_padding, groups, dilation, n)
    batched = len(x_shape) == n + 2
    out = _output_hw(x_shape[-n:], w_shape[2:], stride, pads, dilation, output_padding)
    C_out = w_shape[1] * groups
    shape = (C_out, *out) if not batched else (x_shape[0], C_out, *out)
    _check_grad_output(gy, shape, f"conv_transpose{n}d")
    return groups, stride, dilation, pads, batched


def conv_transpose2d_input(input_size, weight, grad_output, stride=1, padding=0,
                           output_padding=0, groups=1, dilation=1):
    """The gradient of conv_transpose2d(input, weight, ...) (torch's argument order) with
    respect to its input, of shape ``input_size``: conv2d(grad_output, weight), cropped."""
    w = as_float_array(weight, "weight")
    gy = as_float_array(grad_output, "grad_output")
    check_same_dtype(gy, w, None)
    size = tuple(int(v) for v in input_size)
    groups, stride, dilation, pads, batched = _transpose_args(
        size, w.shape, gy, stride, padding, output_padding, groups, dilation, 2)
    g4 = gy if batched else gy[None]
    dx = conv2d(g4, w, None, stride, pads, dilation, groups)
    dx = np.ascontiguousarray(dx[:, :, :size[-2], :size[-1]])
    return dx if batched else dx[0]


def conv_transpose2d_weight(input, weight_size, grad_output, stride=1, padding=0,
                            output_padding=0, groups=1, dilation=1):
    """The gradient of conv_transpose2d(input, weight, ...) with respect to a weight of
    shape ``weight_size`` (C_in, C_out // groups, kH, kW)."""
    x = as_float_array(input, "input")
    gy = as_float_array(grad_output, "grad_output")
    check_same_dtype(x, gy, None)
    size = tuple(int(v) for v in weight_size)
    groups, stride, dilation, pads, batched = _transpose_args(
        x.shape, size, gy, stride, padding, output_padding, groups, dilation, 2)
    x4, g4 = (x, gy) if batched else (x[None], gy[None])
    # conv2d(gy, W) = x's gradient path: W's gradient is that conv's weight gradient
    return _weight_grad(_contiguous(g4, g4.dtype), size, x4, stride, dilation,
                        (pads[0][0], pads[1][0]), groups)


def conv_transpose1d_input(input_size, weight, grad_output, stride=1, padding=0,
                           output_padding=0, groups=1, dilation=1):
    """conv_transpose1d's input gradient (see conv_transpose2d_input)."""
    w = as_float_array(weight, "weight")
    gy = as_float_array(grad_output, "grad_output")
    size = _size_2d(input_size)
    pads = _pads_nd(padding, 1)[0]
    dx = conv_transpose2d_input(size, w[:, :, None, :], gy[..., None, :],
                                (1, _single(stride, "stride")), ((0, 0), pads),
                                (0, _single(output_padding, "output_padding")), groups,
                                (1, _single(dilation, "dilation")))
    return dx[..., 0, :]


def conv_transpose1d_weight(input, weight_size, grad_output, stride=1, padding=0,
                            output_padding=0, groups=1, dilation=1):
    """conv_transpose1d's weight gradient (see conv_transpose2d_weight)."""
    x = as_float_array(input, "input")
    gy = as_float_array(grad_output, "grad_output")
    size = tuple(int(v) for v in weight_size)
    pads = _pads_nd(padding, 1)[0]
    dw = conv_transpose2d_weight(x[..., None, :], (size[0], size[1], 1, size[2]),
                                 gy[..., None, :], (1, _single(stride, "stride")),
                                 ((0, 0), pads), (0, _single(output_padding, "output_padding")),
                                 groups, (1, _single(dilation, "dilation")))
    return dw[:, :, 0, :]
