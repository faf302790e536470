"""Transposed convolution (gconv.conv_transpose2d / 1d, ConvTranspose2d / 1d), the
gradients (gconv.grad) and training through gconv.torch.

Every path is compared with the float64 NumPy references of gconv/_reference.py
(scatter-add / einsum per tap, written independently of the phase decomposition and of the
forward-kernel weight gradient), on a grid of strides 1-4, output_padding, dilation, groups
(dense, depthwise, multipliers), odd sizes and asymmetric / string paddings; the
references themselves and the public API against torch; the gradients bitwise with 1 and
2 threads; torch.autograd.gradcheck through the adapter.
"""

import numpy as np
import pytest
import threadpoolctl
import torch
import torch.nn.functional as F
from torch import nn

import gconv
import gconv.grad as gg
import gconv.torch as gtorch
from gconv._reference import (conv2d_input_grad_reference, conv2d_reference,
                              conv2d_weight_grad_reference, conv_transpose2d_reference)
from conftest import _same_pads, tolerance

pytestmark = pytest.mark.usefixtures("torch_single_thread")
DTYPES = (np.float32, np.float64)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


# -- the grid of transposed convolutions ---------------------------------------------------
# (N, C_in, H, W, C_out, groups, KH, KW, stride, padding, output_padding, dilation)
HAND = [
    (1, 3, 5, 5, 4, 1, 3, 3, 1, 0, 0, 1),             # stride 1: one forward conv
    (2, 4, 5, 7, 6, 2, 3, 3, 2, 1, 1, 1),             # the decoder's 2x upsample
    (1, 4, 4, 4, 4, 1, 4, 4, 2, 1, 0, 1),             # DCGAN: k4 s2 p1
    (2, 6, 3, 5, 6, 6, 3, 3, 2, 1, 1, 1),             # depthwise
    (1, 4, 5, 4, 8, 4, 3, 2, 3, (1, 0), (2, 1), 1),   # depthwise multiplier 2, op per axis
    (1, 2, 5, 6, 3, 1, 2, 2, 2, 0, 0, 1),             # k == s: no overlap
    (1, 2, 5, 6, 3, 1, 1, 1, 4, 0, 3, 1),             # 1x1 stride 4: most phases bias only
    (1, 2, 4, 5, 2, 1, 3, 3, 4, 0, 0, 1),             # k < s: empty phases
    (1, 3, 6, 5, 3, 1, 3, 3, 2, 2, 1, 2),             # dilation == stride
    (1, 3, 6, 5, 3, 1, 3, 3, 2, 1, 0, 3),             # dilation coprime with stride
    (1, 2, 5, 5, 4, 2, 3, 3, 3, 1, 2, 2),             # op < dilation but >= ... (op 2 < s 3)
    (1, 2, 5, 5, 4, 2, 3, 3, 1, 1, 2, 3),             # op >= stride, < dilation
    (2, 3, 7, 3, 5, 1, 5, 3, (3, 2), (2, 1), (1, 0), (1, 2)),
    (1, 4, 1, 1, 4, 2, 3, 3, 2, 0, 1, 1),             # 1x1 input
    (1, 2, 5, 5, 2, 1, 5, 5, 2, 4, 0, 1),             # padding == k - 1: crops everything
    (1, 2, 5, 5, 2, 1, 3, 3, 2, ((2, 0), (0, 3)), 0, 1),   # asymmetric (beyond torch)
    (0, 2, 5, 5, 2, 1, 3, 3, 2, 1, 1, 1),             # empty batch
]


def _draw_grid(n, seed=18):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        G = int(rng.choice([1, 2, 3]))
        CG, M = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        if rng.random() < 0.25:
            CG = 1                      # depthwise (with multiplier M)
        KH, KW = (int(v) for v in rng.integers(1, 6, 2))
        sh, sw = (int(v) for v in rng.integers(1, 5, 2))
        dh, dw = (int(v) for v in rng.integers(1, 4, 2))
        ph, pw = int(rng.integers(0, dh * (KH - 1) + 1)), int(rng.integers(0, dw * (KW - 1) + 1))
        oph = int(rng.integers(0, max(sh, dh)))
        opw = int(rng.integers(0, max(sw, dw)))
        H, W = (int(v) for v in rng.integers(1, 8, 2))
        OH = (H - 1) * sh - 2 * ph + dh * (KH - 1) + oph + 1
        OW = (W - 1) * sw - 2 * pw + dw * (KW - 1) + opw + 1
        if OH <= 0 or OW <= 0:
            continue
        cases.append((int(rng.integers(1, 3)), G * CG, H, W, G * M, G, KH, KW, (sh, sw),
                      (ph, pw), (oph, opw), (dh, dw)))
    return cases


GRID = HAND + _draw_grid(80)


def _tid(c):
    return "n{}c{}h{}w{}o{}g{}k{}x{}_s{}_p{}_op{}_d{}".format(*c).replace(" ", "")


def _explicit(padding):
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        (pt, pb), (pl, pr) = padding
        return pt, pb, pl, pr
    ph, pw = _pair(padding)
    return ph, ph, pw, pw


def _arrays(c, dtype, seed=0):
    N, C_in, H, W, C_out, G, KH, KW = c[:8]
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (N, C_in, H, W)).astype(dtype)
    w = rng.uniform(-1, 1, (C_in, C_out // G, KH, KW)).astype(dtype)
    b = rng.uniform(-1, 1, C_out).astype(dtype)
    return x, w, b


def _reference_transpose(c, x, w, b):
    N, C_in, H, W, C_out, G, KH, KW, s, p, op, d = c
    (sh, sw), (dh, dw), (oph, opw) = _pair(s), _pair(d), _pair(op)
    pt, pb, pl, pr = _explicit(p)
    size = ((H - 1) * sh - pt - pb + dh * (KH - 1) + 1 + oph,
            (W - 1) * sw - pl - pr + dw * (KW - 1) + 1 + opw)
    return conv_transpose2d_reference(x, w, b, (sh, sw), (pt, pb, pl, pr), (dh, dw), G, size)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", GRID, ids=_tid)
def test_conv_transpose2d_against_the_reference(case, dtype):
    x, w, b = _arrays(case, dtype)
    N, C_in, H, W, C_out, G, KH, KW, s, p, op, d = case
    got = gconv.conv_transpose2d(x, w, b, s, p, op, G, d)
    expected = _reference_transpose(case, x, w, b)
    assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance(dtype, C_in // G * KH * KW))


@pytest.mark.parametrize("case", GRID[:40:3], ids=_tid)
def test_conv_transpose1d_against_the_reference(case):
    N, C_in, H, W, C_out, G, KH, KW, s, p, op, d = case
    c2 = (N, C_in, 1, W, C_out, G, 1, KW, (1, _pair(s)[1]), ((0, 0), (_explicit(p)[2],) * 2),
          (0, _pair(op)[1]), (1, _pair(d)[1]))
    x, w, b = _arrays(c2, np.float64)
    got = gconv.conv_transpose1d(x[:, :, 0], w[:, :, 0], b, c2[8][1], c2[9][1][0],
                                 c2[10][1], G, c2[11][1])
    np.testing.assert_allclose(got, _reference_transpose(c2, x, w, b)[:, :, 0], rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("case", [c for c in GRID if not isinstance(_pair(c[9])[0], tuple)],
                         ids=_tid)
def test_conv_transpose2d_matches_torch(case):
    """The public API (float64) against torch.nn.functional.conv_transpose2d."""
    x, w, b = _arrays(case, np.float64, seed=1)
    N, C_in, H, W, C_out, G, KH, KW, s, p, op, d = case
    got = gconv.conv_transpose2d(x, w, b, s, p, op, G, d)
    expected = F.conv_transpose2d(*map(torch.from_numpy, (x, w, b)), s, p, op, G, d).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_the_transpose_reference_matches_torch():
    for case in GRID[:30]:
        if isinstance(_pair(case[9])[0], tuple):
            continue
        x, w, b = _arrays(case, np.float64, seed=2)
        N, C_in, H, W, C_out, G, KH, KW, s, p, op, d = case
        expected = F.conv_transpose2d(*map(torch.from_numpy, (x, w, b)), s, p, op, G, d)
        np.testing.assert_allclose(_reference_transpose(case, x, w, b), expected.numpy(),
                                   rtol=0, atol=1e-12, err_msg=_tid(case))


# -- gradients of conv2d -------------------------------------------------------------------
# (N, C_in, H, W, C_out, groups, KH, KW, stride, padding, dilation)
GRAD_GRID = [
    (2, 4, 7, 8, 6, 2, 3, 3, 1, 1, 1),
    (2, 4, 9, 7, 8, 4, 3, 3, 2, 1, 1),
    (1, 6, 8, 8, 6, 6, 3, 3, 1, "same", 1),           # depthwise, torch's 'same'
    (2, 3, 9, 10, 6, 3, 3, 3, 2, "same_upper", 1),    # depthwise multiplier 2
    (1, 2, 10, 9, 4, 1, 4, 4, 3, "same_lower", 1),
    (1, 2, 11, 9, 3, 1, 3, 2, (2, 3), ((2, 0), (1, 3)), (2, 1)),   # asymmetric
    (2, 4, 8, 9, 4, 2, 1, 1, 2, 0, 1),                # 1x1 stride 2: rows never read
    (1, 3, 13, 11, 2, 1, 3, 3, 4, 0, 3),
    (1, 2, 7, 7, 2, 1, 2, 2, 1, "same", 3),           # even kernel, 'same', dilation
    (3, 2, 5, 6, 4, 2, 5, 5, 1, 2, 1),
    (1, 2, 9, 9, 2, 1, 3, 3, 3, 1, 2),                # stride 3, dilation 2
    (1, 3, 5, 5, 3, 1, 5, 5, 1, 0, 1),                # kernel == input
    (1, 2, 12, 5, 4, 2, 3, 1, (4, 1), (3, 0), (2, 1)),
]


def _grad_pads(case):
    N, C_in, H, W, C_out, G, KH, KW, s, p, d = case
    (sh, sw), (dh, dw) = _pair(s), _pair(d)
    if isinstance(p, str):
        return (*_same_pads(H, KH, sh, dh, p), *_same_pads(W, KW, sw, dw, p))
    return _explicit(p)


def _grad_arrays(case, dtype, seed=0):
    N, C_in, H, W, C_out, G, KH, KW, s, p, d = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (N, C_in, H, W)).astype(dtype)
    w = rng.uniform(-1, 1, (C_out, C_in // G, KH, KW)).astype(dtype)
    y = conv2d_reference(x, w, None, _pair(s), _grad_pads(case), _pair(d), G)
    gy = rng.uniform(-1, 1, y.shape).astype(dtype)
    return x, w, gy


def _gid(c):
    return "n{}c{}h{}w{}o{}g{}k{}x{}_s{}_p{}_d{}".format(*c).replace(" ", "")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", GRAD_GRID, ids=_gid)
def test_conv2d_gradients_against_the_references(case, dtype):
    N, C_in, H, W, C_out, G, KH, KW, s, p, d = case
    x, w, gy = _grad_arrays(case, dtype)
    pads = _grad_pads(case)
    dx = gg.conv2d_input(x.shape, w, gy, s, p, d, G)
    dw = gg.conv2d_weight(x, w.shape, gy, s, p, d, G)
    db = gg.conv2d_bias(gy)
    ex = conv2d_input_grad_reference(x.shape, w, gy, _pair(s), pads, _pair(d), G)
    ew = conv2d_weight_grad_reference(x, w.shape, gy, _pair(s), pads, _pair(d), G)
    for got, exp in ((dx, ex), (dw, ew)):
        assert got.dtype == np.dtype(dtype) and got.shape == exp.shape
    np.testing.assert_allclose(dx, ex, rtol=0, atol=tolerance(dtype, C_out // G * KH * KW))
    K = N * gy.shape[2] * gy.shape[3]
    np.testing.assert_allclose(dw, ew, rtol=0, atol=tolerance(dtype, K))
    np.testing.assert_allclose(db, gy.astype(np.float64).sum(axis=(0, 2, 3)), rtol=0,
                               atol=tolerance(dtype, K))


@pytest.mark.parametrize("case", [c for c in GRAD_GRID if not isinstance(c[9], str)
                                  and not isinstance(_pair(c[9])[0], tuple)], ids=_gid)
def test_conv2d_gradients_match_torch_nn_grad(case):
    N, C_in, H, W, C_out, G, KH, KW, s, p, d = case
    x, w, gy = _grad_arrays(case, np.float64, seed=3)
    X, Wt, GY = map(torch.from_numpy, (x, w, gy))
    np.testing.assert_allclose(gg.conv2d_input(x.shape, w, gy, s, p, d, G),
                               torch.nn.grad.conv2d_input(x.shape, Wt, GY, s, p, d, G).numpy(),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(gg.conv2d_weight(x, w.shape, gy, s, p, d, G),
                               torch.nn.grad.conv2d_weight(X, w.shape, GY, s, p, d, G).numpy(),
                               rtol=0, atol=1e-11)


def test_the_gradient_references_match_torch_autograd():
    for case in GRAD_GRID:
        N, C_in, H, W, C_out, G, KH, KW, s, p, d = case
        x, w, gy = _grad_arrays(case, np.float64, seed=4)
        pt, pb, pl, pr = _grad_pads(case)
        X = torch.from_numpy(x).requires_grad_()
        Wt = torch.from_numpy(w).requires_grad_()
        y = F.conv2d(F.pad(X, (pl, pr, pt, pb)), Wt, None, s, 0, d, G)
        ex, ew = torch.autograd.grad(y, (X, Wt), torch.from_numpy(gy))
        pads = (pt, pb, pl, pr)
        np.testing.assert_allclose(
            conv2d_input_grad_reference(x.shape, w, gy, _pair(s), pads, _pair(d), G),
            ex.numpy(), rtol=0, atol=1e-12, err_msg=_gid(case))
        np.testing.assert_allclose(
            conv2d_weight_grad_reference(x, w.shape, gy, _pair(s), pads, _pair(d), G),
            ew.numpy(), rtol=0, atol=1e-11, err_msg=_gid(case))


@pytest.mark.parametrize("case", GRAD_GRID[:8], ids=_gid)
def test_conv1d_gradients_against_the_references(case):
    N, C_in, H, W, C_out, G, KH, KW, s, p, d = case
    s1, d1 = _pair(s)[1], _pair(d)[1]
    p1 = p if isinstance(p, str) else ((_explicit(p)[2], _explicit(p)[3])
                                        if isinstance(_pair(p)[0], tuple) else _pair(p)[1])
    c2 = (N, C_in, 1, W, C_out, G, 1, KW, (1, s1),
          p if isinstance(p, str) else ((0, 0), _pair(p1) if isinstance(p1, int) else p1),
          (1, d1))
    x, w, gy = _grad_arrays(c2, np.float64, seed=5)
    pads = _grad_pads(c2)
    ex = conv2d_input_grad_reference(x.shape, w, gy, (1, s1), pads, (1, d1), G)[:, :, 0]
    ew = conv2d_weight_grad_reference(x, w.shape, gy, (1, s1), pads, (1, d1), G)[:, :, 0]
    x1, w1, gy1 = x[:, :, 0], w[:, :, 0], gy[:, :, 0]
    np.testing.assert_allclose(gg.conv1d_input(x1.shape, w1, gy1, s1, p1, d1, G), ex,
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(gg.conv1d_weight(x1, w1.shape, gy1, s1, p1, d1, G), ew,
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(gg.conv1d_bias(gy1), gy1.sum(axis=(0, 2)), atol=1e-12)


def test_unbatched_gradients():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 3))
    gy = rng.standard_normal(gconv.conv2d(x, w, None, 2, 1, 1, 2).shape)
    dx = gg.conv2d_input(x.shape, w, gy, 2, 1, 1, 2)
    dw = gg.conv2d_weight(x, w.shape, gy, 2, 1, 1, 2)
    np.testing.assert_allclose(dx, gg.conv2d_input((1, *x.shape), w, gy[None], 2, 1, 1, 2)[0])
    np.testing.assert_allclose(dw, gg.conv2d_weight(x[None], w.shape, gy[None], 2, 1, 1, 2))
    assert gg.conv2d_bias(gy).shape == (6,)


def test_gradient_argument_errors():
    x = np.zeros((1, 4, 6, 6), np.float32)
    w = np.zeros((4, 2, 3, 3), np.float32)
    gy = np.zeros((1, 4, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"grad_output must have .*\(1, 4, 2, 2\)"):
        gg.conv2d_input(x.shape, w, gy, stride=2, groups=2)
    with pytest.raises(ValueError, match="expected input"):
        gg.conv2d_weight(x, (4, 4, 3, 3), gy, groups=2)
    with pytest.raises(TypeError, match="float64"):
        gg.conv2d_input(x.shape, w, gy.astype(np.float64), groups=2)
    with pytest.raises(ValueError, match=r"conv1d's output shape \(1, 4, 4\), got \(1, 4, 6\)"):
        gg.conv1d_input((1, 4, 6), w[:, :, 0], gy[:, :, 0, :].repeat(2, axis=2)[:, :, :6],
                        groups=2)
    with pytest.raises(ValueError, match=r"conv1d's output shape \(1, 4, 2\)"):
        gg.conv1d_weight(x[:, :, 0], (4, 2, 3), gy[:, :, 0], stride=2, groups=2)


# -- transposed-convolution gradients and the layers ---------------------------------------
# torch has no asymmetric padding and no gradient of an empty batch to compare with: those
# cases are compared with the reference only (above)
TORCH_COMPARABLE = [c for c in GRID[:17] + GRID[17:40:4]
                    if not isinstance(_pair(c[9])[0], tuple) and c[0] != 0]


@pytest.mark.parametrize("case", TORCH_COMPARABLE, ids=_tid)
def test_conv_transpose2d_gradients_match_torch(case):
    x, w, b = _arrays(case, np.float64, seed=7)
    N, C_in, H, W, C_out, G, KH, KW, s, p, op, d = case
    X, Wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    y = F.conv_transpose2d(X, Wt, None, s, p, op, G, d)
    gy = np.random.default_rng(8).standard_normal(y.shape)
    ex, ew = torch.autograd.grad(y, (X, Wt), torch.from_numpy(gy))
    np.testing.assert_allclose(gg.conv_transpose2d_input(x.shape, w, gy, s, p, op, G, d),
                               ex.numpy(), rtol=0, atol=1e-11)
    np.testing.assert_allclose(gg.conv_transpose2d_weight(x, w.shape, gy, s, p, op, G, d),
                               ew.numpy(), rtol=0, atol=1e-11)


def test_conv_transpose1d_gradients_match_torch():
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 6, 9)), rng.standard_normal((6, 2, 4))
    X, Wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    y = F.conv_transpose1d(X, Wt, None, 3, 2, 1, 3, 2)
    gy = rng.standard_normal(y.shape)
    ex, ew = torch.autograd.grad(y, (X, Wt), torch.from_numpy(gy))
    np.testing.assert_allclose(gg.conv_transpose1d_input(x.shape, w, gy, 3, 2, 1, 3, 2),
                               ex.numpy(), atol=1e-12)
    np.testing.assert_allclose(gg.conv_transpose1d_weight(x, w.shape, gy, 3, 2, 1, 3, 2),
                               ew.numpy(), atol=1e-12)


@pytest.mark.parametrize("n", [1, 2])
def test_conv_transpose_layers_match_torch(n):
    torch.manual_seed(10)
    cls = nn.ConvTranspose2d if n == 2 else nn.ConvTranspose1d
    module = cls(6, 9, 3, stride=2, padding=1, output_padding=1, groups=3, dtype=torch.float64)
    layer = gtorch.from_torch(module)
    assert isinstance(layer, gconv.ConvTranspose2d if n == 2 else gconv.ConvTranspose1d)
    x = torch.randn(2, 6, *([5, 4] if n == 2 else [7]), dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(layer(x.numpy()), module(x).numpy(), atol=1e-12)
        size = [s * 2 for s in x.shape[2:]]             # output_size as torch's
        np.testing.assert_allclose(layer(x.numpy(), output_size=size),
                                   module(x, output_size=size).numpy(), atol=1e-12)
        np.testing.assert_allclose(layer(x[0].numpy()), module(x[0]).numpy(), atol=1e-12)
    with pytest.raises(ValueError, match=r"requested an output size of .* valid sizes range"):
        layer(x.numpy(), output_size=[40] * n)


def test_conv_transpose_layer_initialisation_packing_and_out():
    layer = gconv.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                                  rng=0)
    assert layer.weight.shape == (4, 3, 3, 3) and layer.weight.dtype == np.float32
    bound = 1 / np.sqrt(3 * 9)                         # torch: fan_in = C_out/g * k*k
    assert np.abs(layer.weight).max() <= bound and np.abs(layer.weight).max() > 0.8 * bound
    assert not layer.weight.flags.writeable
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype(np.float32)
    y = layer(x)
    assert y.shape == (2, 6, 10, 10)
    packed = layer._phases
    layer(x)
    assert layer._phases is packed                     # packed once per input size
    layer.weight = -layer.weight                       # an assignment repacks
    np.testing.assert_allclose(layer(x), gconv.conv_transpose2d(x, layer.weight, layer.bias,
                                                                2, 1, 1, 2), atol=1e-6)
    out = np.empty((2, 6, 10, 10), np.float32)
    assert layer(x, out=out) is out
    np.testing.assert_array_equal(out, layer(x))
    relu = gconv.conv_transpose2d(x, layer.weight, layer.bias, 2, 1, 1, 2, activation="relu")
    np.testing.assert_allclose(relu, np.maximum(layer(x), 0), atol=1e-6)
    bias_only = gconv.conv_transpose2d(x, np.ones((4, 3, 1, 1), np.float32),
                                       np.full(6, -1, np.float32), 4, 0, 3, 2,
                                       activation="relu")
    assert (bias_only[:, :, 1::4] == 0).all()          # empty phases: act(bias)
    assert "ConvTranspose2d(4, 6" in repr(layer)


def test_conv_transpose_errors_in_torch_words():
    x = np.zeros((1, 2, 5, 5), np.float32)
    w = np.zeros((2, 3, 3, 3), np.float32)
    cases = [
        (dict(stride=2, output_padding=2), "output padding must be smaller than either stride "
         "or dilation, but got output_padding_height: 2 output_padding_width: 2 stride_height: "
         "2 stride_width: 2 dilation_height: 1 dilation_width: 1"),
        (dict(groups=3), "expected weight to be at least 3 at dimension 0"),
        (dict(stride=0), "non-positive stride is not supported"),
        (dict(padding=-1), "negative padding is not supported"),
        (dict(dilation=0), "dilation should be greater than zero"),
        (dict(padding="same"), "integer padding"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError) as e:
            gconv.conv_transpose2d(x, w, **kwargs)
        assert message in str(e.value), (kwargs, str(e.value))
        try:
            F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), **kwargs)
        except (RuntimeError, ValueError, TypeError) as t:
            if "same" not in str(kwargs):
                assert message in str(t), (kwargs, str(t))
    with pytest.raises(ValueError, match="expected input.* to have 2 channels"):
        gconv.conv_transpose2d(np.zeros((1, 3, 5, 5), np.float32), w)
    with pytest.raises(TypeError, match="should be the same"):
        gconv.conv_transpose2d(x, w.astype(np.float64))
    with pytest.raises(ValueError, match='Only "zeros" padding mode'):
        gconv.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


# phases stacked as output channels (gconv/_transpose.py, STACK_BELOW_M): few output
# channels per group, phases reading the same window. (N, C_in, H, W, C_out, G, KH, KW,
# stride, padding, output_padding, dilation), and which axes stack.
STACKED = [
    ((2, 6, 1, 9, 2, 1, 1, 4, (1, 2), 0, 0, 1), "width"),        # 1-D, k = 2 s
    ((1, 10, 1, 7, 1, 1, 1, 16, (1, 4), 0, 0, 1), "width"),      # ISTFT-like, one out
    ((2, 8, 1, 6, 4, 2, 1, 6, (1, 3), 0, (0, 2), 1), "width"),   # groups, output_padding
    ((2, 4, 5, 6, 2, 1, 4, 4, 2, 0, 0, 1), "both"),
    ((1, 6, 4, 5, 3, 3, 4, 3, 2, 0, 1, 1), "height"),            # k 3 s 2: columns differ
    ((2, 6, 5, 5, 6, 2, 2, 2, 2, 0, 1, 1), "both"),              # M = 3, 1 tap a phase
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case,axes", STACKED, ids=[str(i) for i in range(len(STACKED))])
def test_stacked_phases_against_the_reference_and_on_1_and_2_threads(case, axes, dtype):
    from gconv._transpose import _Phases, _forward_weight
    x, w, b = _arrays(case, dtype)
    N, C_in, H, W, C_out, G, KH, KW, s, p, op, d = case
    expected = _reference_transpose(case, x, w, b)
    ph = _Phases(_forward_weight(w, G), (H, W), _pair(s), _pair(d), (p, p),
                 expected.shape[2:], G)
    stacked = {a for pairs, *_ in ph.items if len(pairs) > 1
               for a in (["height"] if len({q[0] for q in pairs}) > 1 else [])
               + (["width"] if len({q[1] for q in pairs}) > 1 else [])}
    assert stacked == ({"height", "width"} if axes == "both" else {axes})
    try:
        runs = []
        for n in (1, 2):
            gconv.set_num_threads(n)
            runs.append(gconv.conv_transpose2d(x, w, b, s, p, op, G, d, activation="relu"))
    finally:
        gconv.set_num_threads(None)
    assert runs[0].tobytes() == runs[1].tobytes()
    np.testing.assert_allclose(runs[0], np.maximum(expected, 0), rtol=0,
                               atol=tolerance(dtype, C_in // G * KH * KW))
    if H == 1 and KH == 1:       # the 1-D call takes the same path
        y1 = gconv.conv_transpose1d(x[:, :, 0], w[:, :, 0], b, _pair(s)[1], p,
                                    _pair(op)[1], G, _pair(d)[1], activation="relu")
        assert y1.tobytes() == np.ascontiguousarray(runs[0][:, :, 0]).tobytes()


# -- thread-count independence -------------------------------------------------------------
def test_gradients_and_transpose_are_bitwise_identical_on_1_and_2_threads():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 16, 20, 18)).astype(np.float32)
    w = rng.standard_normal((32, 4, 3, 3)).astype(np.float32)
    wt = rng.standard_normal((16, 8, 4, 4)).astype(np.float32)
    gy = rng.standard_normal(gconv.conv2d(x, w, None, 2, 1, 1, 4).shape).astype(np.float32)
    xd = rng.standard_normal((4, 16, 20, 18)).astype(np.float32)
    wd = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)
    gyd = rng.standard_normal(gconv.conv2d(xd, wd, None, 1, 1, 1, 16).shape).astype(np.float32)

    def run():
        return [gg.conv2d_input(x.shape, w, gy, 2, 1, 1, 4),
                gg.conv2d_weight(x, w.shape, gy, 2, 1, 1, 4),
                gg.conv2d_bias(gy),
                gg.conv2d_weight(xd, wd.shape, gyd, 1, 1, 1, 16),      # depthwise
                gg.conv2d_input(xd.shape, wd, gyd, 1, 1, 1, 16),
                gconv.conv_transpose2d(x, wt, None, 2, 1, 0, 2),
                gg.conv_transpose2d_weight(x, wt.shape, gconv.conv_transpose2d(
                    x, wt, None, 2, 1, 0, 2), 2, 1, 0, 2),
                gg.conv_transpose2d_input(x.shape, wt, gconv.conv_transpose2d(
                    x, wt, None, 2, 1, 0, 2), 2, 1, 0, 2),
                gg.conv1d_weight(x[:, :, 0], (32, 4, 5), gy[:, :, 0, :8], 2, 1, 1, 4),
                gg.conv1d_input(x[:, :, 0].shape, w[:, :, 0], gy[:, :, 0, :9], 2, 1, 1, 4)]
    try:
        gconv.set_num_threads(1)
        one = run()
        gconv.set_num_threads(2)
        two = run()
    finally:
        gconv.set_num_threads(None)
    with threadpoolctl.threadpool_limits(1):        # OpenMP and BLAS limited to 1
        limited = run()
    for a, b, c in zip(one, two, limited):
        assert a.tobytes() == b.tobytes() == c.tobytes()


# -- training through gconv.torch ----------------------------------------------------------
def _geometries():
    G = gtorch._Geometry
    return [
        (G(2, (2, 1), ((1, 0), (1, 2)), (1, 2), 2), (2, 4, 6, 7), (6, 2, 3, 3)),
        (G(2, (1, 1), ((1, 1), (1, 1)), (1, 1), 3), (1, 3, 5, 5), (6, 1, 3, 3)),
        (G(1, 2, (2, 1), 2, 2), (2, 4, 9), (4, 2, 3)),
        (G(-2, (2, 3), (1, 0), (1, 1), 2, (1, 2)), (2, 4, 3, 4), (4, 3, 3, 3)),
        (G(-1, 3, 1, 2, 2, 1), (2, 4, 5), (4, 1, 4)),
    ]


@pytest.mark.parametrize("index", range(5))
def test_gradcheck_through_the_autograd_function(index):
    geometry, x_shape, w_shape = _geometries()[index]
    torch.manual_seed(12)
    x = torch.randn(*x_shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(*w_shape, dtype=torch.float64, requires_grad=True)
    C_out = w_shape[0] if geometry.kind > 0 else w_shape[1] * geometry.groups
    b = torch.randn(C_out, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: gtorch.GconvFunction.apply(x, w, b, geometry), (x, w, b))


TRAINABLE = [
    (lambda: nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4), (4, 8, 15, 13)),
    (lambda: nn.Conv2d(8, 8, 3, padding="same", groups=8, padding_mode="reflect"), (2, 8, 9, 9)),
    (lambda: nn.Conv2d(6, 4, 4, padding="same", dilation=2, padding_mode="circular"),
     (2, 6, 9, 10)),
    (lambda: nn.Conv1d(8, 8, 5, padding=2, groups=4, padding_mode="replicate"), (3, 8, 20)),
    (lambda: nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, groups=2), (2, 16, 7, 6)),
    (lambda: nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1, groups=8),
     (2, 8, 5, 5)),
    (lambda: nn.ConvTranspose1d(6, 9, 5, stride=3, padding=2, groups=3, dilation=2),
     (2, 6, 11)),
]


@pytest.mark.parametrize("index", range(len(TRAINABLE)))
def test_converted_layers_give_torchs_gradients(index):
    make, shape = TRAINABLE[index]
    torch.manual_seed(13)
    module = make()
    converted = gtorch.convert(module).train()
    assert type(converted).__name__.startswith("Gconv")
    x = torch.randn(*shape)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = module(xa), converted(xb)
    torch.testing.assert_close(yb, ya, rtol=1e-4, atol=1e-5)
    gy = torch.randn_like(ya)
    ya.backward(gy)
    yb.backward(gy)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(converted.weight.grad, module.weight.grad, rtol=1e-4, atol=1e-3)
    if module.bias is not None:
        torch.testing.assert_close(converted.bias.grad, module.bias.grad, rtol=1e-4, atol=1e-3)
    if index in (0, 3, 4):   # gradcheck in float64 through the converted module itself
        m64 = gtorch.convert(make().double())
        x64 = torch.randn(1, *shape[1:], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(m64, (x64,))


def test_a_few_training_steps_follow_torchs():
    torch.manual_seed(14)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4), nn.ReLU(),
                          nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)).double()
    converted = gtorch.convert(model)
    data = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    for m in (model, converted):
        opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
        m.train()
        for _ in range(3):
            opt.zero_grad()
            loss = ((m(data) - data) ** 2).mean()
            loss.backward()
            opt.step()
    for (name, p), q in zip(model.named_parameters(), converted.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-9, atol=1e-10, msg=name)
    converted.eval()
    with torch.no_grad():                        # inference picks up the trained weights
        torch.testing.assert_close(converted(data), model.eval()(data), rtol=1e-9, atol=1e-10)


def test_double_backward_raises_a_clear_error():
    layer = gtorch.convert(nn.Conv2d(2, 2, 3).double())
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(layer(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        g.sum().backward()


def test_convert_takes_transposed_layers():
    torch.manual_seed(15)
    model = nn.Sequential(nn.ConvTranspose2d(4, 4, 3, stride=2), nn.ConvTranspose1d(4, 4, 3))
    converted = gtorch.convert(model)
    assert [type(m).__name__ for m in converted] == ["GconvConvTranspose2d",
                                                     "GconvConvTranspose1d"]
    assert "stride=(2, 2)" in repr(converted[0])
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(converted[0](x, output_size=[12, 12]),
                                   model[0](x, output_size=[12, 12]), rtol=1e-4, atol=1e-5)


def test_conv_transpose2d_channels_last():
    rng = np.random.default_rng(16)
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(6)
    expected = gconv.conv_transpose2d(x, w, b, 2, 1, 1, 2)
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    got = gconv.conv_transpose2d(xh, w, b, 2, 1, 1, 2, layout="NHWC")
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected.transpose(0, 2, 3, 1))
    out = np.empty_like(got)
    assert gconv.conv_transpose2d(xh, w, b, 2, 1, 1, 2, layout="NHWC", out=out) is out
    np.testing.assert_array_equal(out, got)
    layer = gconv.ConvTranspose2d(4, 6, 3, 2, 1, 1, 2, dtype=np.float64)
    layer.weight, layer.bias = w, b
    np.testing.assert_array_equal(layer(xh, layout="NHWC"), got)
    np.testing.assert_array_equal(layer(xh[0], layout="NHWC"), got[0])
    with pytest.raises(ValueError, match="layout"):
        gconv.conv_transpose2d(x, w, layout="NCWH")


def test_float32_training_on_a_realistic_block_is_within_tolerance():
    """A MobileNet-style block and a decoder upsample at realistic sizes, float32: gconv's
    gradients against torch's, relative to their magnitude."""
    torch.manual_seed(17)
    model = nn.Sequential(nn.Conv2d(16, 64, 1), nn.ReLU6(),
                          nn.Conv2d(64, 64, 3, stride=2, padding=1, groups=64), nn.ReLU6(),
                          nn.Conv2d(64, 32, 3, padding=1, groups=4),
                          nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1, groups=2))
    converted = gtorch.convert(model)
    x = torch.randn(4, 16, 28, 28)
    for m in (model, converted):
        m.zero_grad()
        ((m(x) - x) ** 2).mean().backward()
    for (name, p), q in zip(model.named_parameters(), converted.parameters()):
        scale = p.grad.abs().max().item()
        assert (q.grad - p.grad).abs().max().item() <= 1e-4 * scale + 1e-7, name


def test_unbatched_and_channels_last_inputs_under_autograd():
    torch.manual_seed(18)
    for module, shape in ((nn.Conv2d(4, 6, 3, padding=1, groups=2), (4, 7, 6)),
                          (nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), (4, 5, 5)),
                          (nn.Conv1d(4, 4, 3, groups=4), (4, 9))):
        converted = gtorch.convert(module)
        xa = torch.randn(*shape, requires_grad=True)
        xb = xa.detach().clone().requires_grad_()
        module(xa).sum().backward()
        converted(xb).sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-4, atol=1e-5)
    module = nn.Conv2d(4, 8, 3, stride=2, groups=4)
    converted = gtorch.convert(module)
    x = torch.randn(2, 4, 9, 9).contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    module(xa).square().sum().backward()
    converted(xb).square().sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(converted.weight.grad, module.weight.grad, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape", [
    # N, C_in, H, W, k, stride, padding, dilation, C_out / C_in, groups
    (3, 24, 40, 36, 3, 1, 1, 1, 1, 24),
    (2, 16, 31, 29, 5, 2, 2, 1, 2, 16),
    (4, 9, 20, 20, 3, 1, 2, 2, 1, 9),
    (2, 40, 7, 7, 3, 1, 1, 1, 3, 40),
    (2, 32, 23, 25, 3, 1, 1, 1, 1, 8),      # 8 groups of 4: per image too
    (3, 48, 15, 14, 5, 2, 2, 1, 2, 16),
])
def test_weight_gradient_per_image_matches_and_is_thread_independent(shape):
    """Depthwise and many-group weight gradients run per image as a depthwise convolution
    with grad_output as its OH x OW kernel (lanes mode for any kernel, however large),
    summed over the batch in order: against the float64 reference, bitwise the same at 1
    and 2 threads, on every ISA."""
    N, C, H, W, k, s, p, d, R, G = shape
    CG, C_out = C // G, C * R
    rng = np.random.default_rng(21)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    OH = (H + 2 * p - d * (k - 1) - 1) // s + 1
    OW = (W + 2 * p - d * (k - 1) - 1) // s + 1
    gy = rng.standard_normal((N, C_out, OH, OW)).astype(np.float32)
    expected = conv2d_weight_grad_reference(x.astype(np.float64), (C_out, CG, k, k),
                                            gy.astype(np.float64), (s, s), (p, p, p, p),
                                            (d, d), G)
    isa = gconv.get_isa()
    try:
        for name in gconv.available_isas():
            gconv.set_isa(name)
            got = []
            for threads in (1, 2):
                gconv.set_num_threads(threads)
                got.append(gg.conv2d_weight(x, (C_out, CG, k, k), gy, s, p, d, G))
            np.testing.assert_array_equal(got[0], got[1])
            scale = np.abs(expected).max()
            np.testing.assert_allclose(got[0], expected, rtol=0, atol=1e-5 * scale)
    finally:
        gconv.set_isa(isa)
        gconv.set_num_threads(None)
