"""Issue 4, item 1 against torch: the fused epilogue (activation, residual), out=, NHWC,
asymmetric and ONNX 'same_upper'/'same_lower' padding, padding_mode on conv2d, and
Conv2d(activation=...) with weights packed once.

torch is the oracle (computed in float64 from the same arrays, padding applied with F.pad
from pads worked out here), so a bug shared by gconv's kernels and its reference cannot
hide. torch is a hard test dependency: imported plainly.
"""
import math
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gconv
from gconv import _dispatch
from gconv._validation import build_problem


# torch warns that it copies the input for an even kernel with padding='same'
pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),
              pytest.mark.usefixtures("torch_single_thread")]



# gconv's activation argument -> torch.nn.functional's definition of it
TORCH_ACTIVATIONS = {
    "none": (None, lambda t: t),
    "relu": ("relu", F.relu),
    "relu6": ("relu6", lambda t: F.hardtanh(t, 0.0, 6.0)),
    "silu": ("silu", F.silu),
    "sigmoid": ("sigmoid", torch.sigmoid),
    "tanh": ("tanh", torch.tanh),
    "hardswish": ("hardswish", F.hardswish),
    "leaky_relu": ("leaky_relu", F.leaky_relu),                      # torch's slope 0.01
    "leaky_relu_0.2": (("leaky_relu", 0.2), lambda t: F.leaky_relu(t, 0.2)),
    "leaky_relu_-0.5": (("leaky_relu", -0.5), lambda t: F.leaky_relu(t, -0.5)),
    "clamp_-1.5_2": (("clamp", -1.5, 2.0), lambda t: torch.clamp(t, -1.5, 2.0)),
    "clamp_0_6": (("clamp", 0, 6), lambda t: torch.clamp(t, 0.0, 6.0)),
}

# one problem per kernel path: (C_in, C_out, groups, kernel, stride, padding)
PATHS = {
    "depthwise": (6, 12, 6, 3, 1, 1),        # multiplier 2
    "pointwise": (8, 12, 2, 1, 1, 0),
    "general": (8, 6, 2, 3, 2, 1),
}
DTYPES = (np.float32, np.float64)


def _tolerance(dtype, K, scale):
    return 16 * np.finfo(dtype).eps * max(K, 1) * max(scale, 1.0)


def assert_matches(got, expected, dtype, K):
    assert got.dtype == np.dtype(dtype)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    np.testing.assert_allclose(got, expected, rtol=0,
                               atol=_tolerance(dtype, K, float(np.abs(expected).max())))


def torch_conv(x, w, b=None, stride=1, pads=(0, 0, 0, 0), dilation=1, groups=1, *,
               mode="constant", residual=None, act=lambda t: t):
    """torch in float64: act(conv(F.pad(x, pads, mode)) + b + residual); pads (t, b, l, r)."""
    t, bo, l, r = pads
    tx = torch.from_numpy(np.asarray(x, np.float64))
    if any(pads):
        tx = F.pad(tx, (l, r, t, bo), mode=mode)
    y = F.conv2d(tx, torch.from_numpy(np.asarray(w, np.float64)),
                 None if b is None else torch.from_numpy(np.asarray(b, np.float64)),
                 stride=stride, dilation=dilation, groups=groups)
    if residual is not None:
        y = y + torch.from_numpy(np.asarray(residual, np.float64))
    return act(y).numpy()


def path_arrays(path, dtype, N=2, H=9, W=10, seed=0, scale=3.0):
    """x, w, b for a path's problem, sized so that conv outputs span about -10..10."""
    C_in, C_out, groups, k, stride, padding = PATHS[path]
    rng = np.random.default_rng(seed)
    x = rng.uniform(-scale, scale, (N, C_in, H, W)).astype(dtype)
    w = rng.uniform(-1, 1, (C_out, C_in // groups, k, k)).astype(dtype)
    b = rng.uniform(-1, 1, C_out).astype(dtype)
    kwargs = dict(stride=stride, padding=padding, groups=groups)
    pads = (padding,) * 4
    return x, w, b, kwargs, pads, C_in // groups * k * k


def test_each_path_problem_runs_on_that_path():
    for path in PATHS:
        x, w, b, kwargs, _, _ = path_arrays(path, np.float32)
        problem = build_problem(x, w, b, kwargs["stride"], kwargs["padding"], 1, kwargs["groups"])
        assert _dispatch.select(problem).name == path


# -- activations ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("act_id", TORCH_ACTIVATIONS)
def test_activation_matches_torch(act_id, path, dtype):
    activation, torch_act = TORCH_ACTIVATIONS[act_id]
    x, w, b, kwargs, pads, K = path_arrays(path, dtype)
    pre = torch_conv(x, w, b, kwargs["stride"], pads, 1, kwargs["groups"])
    # the data reaches every piece of every activation: below -3, inside (-3, 3), above 6
    assert pre.min() < -3 and pre.max() > 6 and np.any(np.abs(pre) < 1)
    y = gconv.conv2d(x, w, b, **kwargs, activation=activation)
    assert_matches(y, torch_conv(x, w, b, kwargs["stride"], pads, 1, kwargs["groups"],
                                 act=torch_act), dtype, K)


@pytest.mark.parametrize("act_id", ["relu6", "hardswish", "leaky_relu_0.2", "clamp_-1.5_2"])
def test_activation_without_bias(act_id):
    activation, torch_act = TORCH_ACTIVATIONS[act_id]
    x, w, _, kwargs, pads, K = path_arrays("general", np.float32)
    y = gconv.conv2d(x, w, None, **kwargs, activation=activation)
    assert_matches(y, torch_conv(x, w, None, kwargs["stride"], pads, 1, kwargs["groups"],
                                 act=torch_act), np.float32, K)


def test_relu6_is_clamp_0_6_and_leaky_relu_default_slope_is_torchs():
    x, w, b, kwargs, _, _ = path_arrays("general", np.float64)
    np.testing.assert_array_equal(gconv.conv2d(x, w, b, **kwargs, activation="relu6"),
                                  gconv.conv2d(x, w, b, **kwargs, activation=("clamp", 0, 6)))
    np.testing.assert_array_equal(gconv.conv2d(x, w, b, **kwargs, activation="leaky_relu"),
                                  gconv.conv2d(x, w, b, **kwargs,
                                               activation=("leaky_relu", 0.01)))


@pytest.mark.parametrize("activation", ["gelu", ("clamp", 2), ("leaky_relu",),
                                        ("clamp", 0), 3, ("relu", 1)])
def test_unknown_or_malformed_activation_is_refused(activation):
    x, w, b, kwargs, _, _ = path_arrays("general", np.float32)
    with pytest.raises((ValueError, TypeError), match="activation|clamp|slope"):
        gconv.conv2d(x, w, b, **kwargs, activation=activation)


# -- residual -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("act_id", ["none", "relu", "silu", "clamp_-1.5_2"])
def test_residual_is_added_before_the_activation(act_id, path, dtype):
    activation, torch_act = TORCH_ACTIVATIONS[act_id]
    x, w, b, kwargs, pads, K = path_arrays(path, dtype)
    shape = gconv.conv2d_output_shape(x.shape, w.shape, **kwargs)
    residual = np.random.default_rng(1).uniform(-4, 4, shape).astype(dtype)
    kept = residual.copy()
    y = gconv.conv2d(x, w, b, **kwargs, activation=activation, residual=residual)
    expected = torch_conv(x, w, b, kwargs["stride"], pads, 1, kwargs["groups"],
                          residual=residual, act=torch_act)
    assert_matches(y, expected, dtype, K + 1)
    np.testing.assert_array_equal(residual, kept)          # read, never written


def test_residual_non_contiguous_and_unbatched():
    x, w, b, kwargs, pads, K = path_arrays("depthwise", np.float32, N=1)
    shape = gconv.conv2d_output_shape(x.shape, w.shape, **kwargs)
    big = np.random.default_rng(2).standard_normal((*shape[:3], 2 * shape[3]), np.float32)
    residual = big[..., ::2]
    assert not residual.flags.c_contiguous
    expected = torch_conv(x, w, b, 1, pads, 1, kwargs["groups"], residual=residual,
                          act=F.relu)
    y = gconv.conv2d(x, w, b, **kwargs, residual=residual, activation="relu")
    assert_matches(y, expected, np.float32, K + 1)
    y1 = gconv.conv2d(x[0], w, b, **kwargs, residual=residual[0], activation="relu")
    assert_matches(y1, expected[0], np.float32, K + 1)


def test_residual_of_the_wrong_shape_or_dtype_is_refused():
    x, w, b, kwargs, _, _ = path_arrays("general", np.float32)
    shape = gconv.conv2d_output_shape(x.shape, w.shape, **kwargs)
    with pytest.raises(ValueError, match=r"residual must have the output's shape"):
        gconv.conv2d(x, w, b, **kwargs, residual=np.zeros((shape[0], shape[1], 1, 1),
                                                          np.float32))
    with pytest.raises(TypeError, match="residual"):
        gconv.conv2d(x, w, b, **kwargs, residual=np.zeros(shape, np.float64))
    with pytest.raises(TypeError, match="residual"):
        gconv.conv2d(x, w, b, **kwargs, residual=np.zeros(shape, np.int32))


# -- out= ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("path", PATHS)
def test_out_is_filled_and_returned(path, dtype):
    x, w, b, kwargs, pads, K = path_arrays(path, dtype)
    out = np.full(gconv.conv2d_output_shape(x.shape, w.shape, **kwargs), np.nan, dtype)
    y = gconv.conv2d(x, w, b, **kwargs, activation="silu", out=out)
    assert y is out
    assert_matches(out, torch_conv(x, w, b, kwargs["stride"], pads, 1, kwargs["groups"],
                                   act=F.silu), dtype, K)


def test_out_unbatched_nhwc_and_with_residual():
    x, w, b, kwargs, pads, K = path_arrays("general", np.float32, N=1)
    shape = gconv.conv2d_output_shape(x.shape, w.shape, **kwargs)
    residual = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    expected = torch_conv(x, w, b, kwargs["stride"], pads, 1, kwargs["groups"],
                          residual=residual, act=torch.tanh)
    out = np.empty(shape[1:], np.float32)
    assert gconv.conv2d(x[0], w, b, **kwargs, residual=residual[0], activation="tanh",
                        out=out) is out
    assert_matches(out, expected[0], np.float32, K + 1)
    out_nhwc = np.empty((shape[0], shape[2], shape[3], shape[1]), np.float32)
    y = gconv.conv2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w, b, **kwargs,
                     residual=np.ascontiguousarray(residual.transpose(0, 2, 3, 1)),
                     activation="tanh", layout="NHWC", out=out_nhwc)
    assert y is out_nhwc
    assert_matches(out_nhwc, expected.transpose(0, 2, 3, 1), np.float32, K + 1)


def _out_case():
    x, w, b, kwargs, _, _ = path_arrays("general", np.float32)
    return x, w, b, kwargs, gconv.conv2d_output_shape(x.shape, w.shape, **kwargs)


@pytest.mark.parametrize("make_out, error, match", [
    (lambda s: np.zeros((s[0], s[1], s[2], s[3] + 1), np.float32), ValueError, "shape"),
    (lambda s: np.zeros(s[1:], np.float32), ValueError, "shape"),
    (lambda s: np.zeros(s, np.float64), (ValueError, TypeError), "dtype"),
    (lambda s: np.zeros((s[0], s[1], s[2], 2 * s[3]), np.float32)[..., ::2], ValueError,
     "contiguous"),
    (lambda s: np.zeros(s[::-1], np.float32).T, ValueError, "contiguous"),
    (lambda s: np.zeros(s, np.float32).tolist(), TypeError, "ndarray"),
], ids=["shape", "rank", "dtype", "strided", "fortran", "list"])
def test_bad_out_is_refused_clearly(make_out, error, match):
    x, w, b, kwargs, shape = _out_case()
    out = make_out(shape)
    with pytest.raises(error, match=match):
        gconv.conv2d(x, w, b, **kwargs, out=out)


def test_read_only_out_is_refused_and_left_alone():
    x, w, b, kwargs, shape = _out_case()
    out = np.full(shape, 7.0, np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        gconv.conv2d(x, w, b, **kwargs, out=out)
    assert np.all(out == 7.0)


def test_out_overlapping_an_input_is_refused():
    rng = np.random.default_rng(4)
    # C_in == C_out and 'same' padding: an output shaped exactly like the input
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    kept = x.copy()
    with pytest.raises(ValueError, match="overlap"):
        gconv.conv2d(x, w, None, padding=1, groups=2, out=x)
    np.testing.assert_array_equal(x, kept)
    residual = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    with pytest.raises(ValueError, match="overlap"):
        gconv.conv2d(x, w, None, padding=1, groups=2, residual=residual, out=residual)
    buf = np.zeros(2 * x.size, np.float32)
    xin, out = buf[:x.size].reshape(x.shape), buf[x.size // 2:x.size // 2 + x.size].reshape(x.shape)
    xin[...] = x
    with pytest.raises(ValueError, match="overlap"):
        gconv.conv2d(xin, w, None, padding=1, groups=2, out=out)


@pytest.mark.parametrize("path", PATHS)
def test_layer_with_out_allocates_nothing_output_sized(path):
    """With prepacked weights and out=, a call allocates no array: NumPy's allocations are
    traced by tracemalloc, and the same call without out= visibly allocates the output."""
    C_in, C_out, groups, k, stride, padding = PATHS[path]
    layer = gconv.Conv2d(C_in, C_out, k, stride=stride, padding=padding, groups=groups,
                         activation="relu", rng=0)
    x = np.random.default_rng(5).standard_normal((2, C_in, 48, 48)).astype(np.float32)
    out = np.empty(gconv.conv2d_output_shape(x.shape, layer.weight.shape, stride, padding,
                                             1, groups), np.float32)
    layer(x, out=out)                                   # plan and pack once
    tracemalloc.start()
    try:
        assert layer(x, out=out) is out
        _, peak_with_out = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        layer(x)
        _, peak_without = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_without >= out.nbytes                   # the measurement sees allocations
    assert peak_with_out < out.nbytes // 64


# -- channels-last -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("path", PATHS)
def test_nhwc_input_and_output_match_torch(path, dtype):
    x, w, b, kwargs, pads, K = path_arrays(path, dtype)
    expected = torch_conv(x, w, b, kwargs["stride"], pads, 1, kwargs["groups"],
                          act=F.hardswish).transpose(0, 2, 3, 1)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y = gconv.conv2d(x_nhwc, w, b, **kwargs, activation="hardswish", layout="NHWC")
    assert y.flags.c_contiguous
    assert_matches(y, expected, dtype, K)
    # a channels-last view of NCHW memory is fine too
    y_view = gconv.conv2d(x.transpose(0, 2, 3, 1), w, b, **kwargs, activation="hardswish",
                          layout="NHWC")
    assert_matches(y_view, expected, dtype, K)
    # unbatched (H, W, C)
    y1 = gconv.conv2d(x_nhwc[1], w, b, **kwargs, activation="hardswish", layout="NHWC")
    assert_matches(y1, expected[1], dtype, K)


def test_nhwc_layer_and_residual():
    layer = gconv.Conv2d(8, 8, 3, padding=1, groups=4, activation="relu", rng=1)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 8, 7, 5)).astype(np.float32)
    r = rng.standard_normal((2, 8, 7, 5)).astype(np.float32)
    expected = torch_conv(x, layer.weight, layer.bias, 1, (1,) * 4, 1, 4, residual=r,
                          act=F.relu).transpose(0, 2, 3, 1)
    y = layer(np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
              residual=np.ascontiguousarray(r.transpose(0, 2, 3, 1)), layout="NHWC")
    assert_matches(y, expected, np.float32, 8 * 9 // 4 + 1)


def test_nhwc_input_with_wrong_channel_axis_is_refused_with_torchs_message():
    x, w, b, kwargs, _, _ = path_arrays("general", np.float32)
    with pytest.raises(ValueError, match="expected input.* to have 8 channels"):
        gconv.conv2d(x, w, b, **kwargs, layout="NHWC")      # NCHW data labelled NHWC


def test_unknown_layout_is_refused():
    x, w, b, kwargs, _, _ = path_arrays("general", np.float32)
    with pytest.raises(ValueError, match="layout"):
        gconv.conv2d(x, w, b, **kwargs, layout="CHWN")


# -- asymmetric padding ----------------------------------------------------------------------
@pytest.mark.parametrize("pads, stride, dilation", [
    (((0, 2), (1, 0)), 1, 1),
    (((3, 0), (0, 3)), 1, 1),
    (((1, 2), (2, 1)), 2, 1),
    (((0, 1), (1, 0)), (1, 2), (2, 1)),
    (((2, 2), (0, 0)), 3, 2),
    (([1, 0], [0, 2]), 1, 1),                 # lists work as tuples do
])
@pytest.mark.parametrize("path", ["depthwise", "general"])
def test_asymmetric_padding_matches_torch_pad_then_conv(path, pads, stride, dilation):
    C_in, C_out, groups, k, _, _ = PATHS[path]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, C_in, 9, 8)).astype(np.float32)
    w = rng.standard_normal((C_out, C_in // groups, k, k)).astype(np.float32)
    b = rng.standard_normal(C_out).astype(np.float32)
    (t, bo), (l, r) = pads
    y = gconv.conv2d(x, w, b, stride=stride, padding=pads, dilation=dilation, groups=groups)
    assert_matches(y, torch_conv(x, w, b, stride, (t, bo, l, r), dilation, groups),
                   np.float32, C_in // groups * k * k)


def test_negative_asymmetric_padding_is_refused():
    x, w, b, kwargs, _, _ = path_arrays("general", np.float32)
    kwargs["padding"] = ((0, -1), (1, 1))
    with pytest.raises(ValueError, match="negative padding is not supported"):
        gconv.conv2d(x, w, b, **kwargs)


# -- 'same_upper' / 'same_lower' (ONNX auto_pad) ---------------------------------------------
def onnx_same_pads(size, kernel, stride, dilation, rule):
    """ONNX Conv auto_pad: output ceil(size / stride); total pad
    (out - 1) * stride + (kernel - 1) * dilation + 1 - size, never negative; SAME_UPPER puts
    the odd pixel at the end, SAME_LOWER at the start."""
    out = math.ceil(size / stride)
    total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size)
    head = total // 2 if rule == "same_upper" else (total + 1) // 2
    return head, total - head


@pytest.mark.parametrize("rule", ["same_upper", "same_lower"])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
@pytest.mark.parametrize("dilation", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_onnx_same_padding_matches_torch(stride, dilation, kernel, rule):
    H, W = 7, 8                                     # an odd and an even size at once
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 4, H, W)).astype(np.float64)
    w = rng.standard_normal((6, 2, kernel, kernel)).astype(np.float64)
    t, bo = onnx_same_pads(H, kernel, stride, dilation, rule)
    l, r = onnx_same_pads(W, kernel, stride, dilation, rule)
    y = gconv.conv2d(x, w, None, stride=stride, padding=rule, dilation=dilation, groups=2)
    assert y.shape[2:] == (math.ceil(H / stride), math.ceil(W / stride))
    assert_matches(y, torch_conv(x, w, None, stride, (t, bo, l, r), dilation, 2),
                   np.float64, 2 * kernel * kernel)


def test_same_upper_and_lower_differ_where_the_pad_is_odd():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    w = rng.standard_normal((2, 1, 2, 2)).astype(np.float32)      # total pad 1 per axis
    upper = gconv.conv2d(x, w, padding="same_upper", groups=2)
    lower = gconv.conv2d(x, w, padding="same_lower", groups=2)
    assert upper.shape == lower.shape == (1, 2, 6, 6)
    assert not np.allclose(upper, lower)
    # the odd pixel at the end (upper) and at the start (lower), as torch computes it
    assert_matches(upper, torch_conv(x, w, None, 1, (0, 1, 0, 1), 1, 2), np.float32, 4)
    assert_matches(lower, torch_conv(x, w, None, 1, (1, 0, 1, 0), 1, 2), np.float32, 4)


def test_same_upper_on_the_layer_with_stride_and_dilation():
    layer = gconv.Conv2d(4, 8, 3, stride=2, padding="same_upper", dilation=2, groups=4, rng=2)
    x = np.random.default_rng(10).standard_normal((2, 4, 11, 10)).astype(np.float32)
    t, bo = onnx_same_pads(11, 3, 2, 2, "same_upper")
    l, r = onnx_same_pads(10, 3, 2, 2, "same_upper")
    assert_matches(layer(x), torch_conv(x, layer.weight, layer.bias, 2, (t, bo, l, r), 2, 4),
                   np.float32, 9)


def test_torch_same_with_stride_is_refused_and_points_to_same_upper():
    x, w, b, kwargs, _, _ = path_arrays("general", np.float32)
    kwargs["padding"] = "same"
    with pytest.raises(ValueError, match="not supported for strided.*same_upper"):
        gconv.conv2d(x, w, b, **kwargs)


# -- padding_mode on conv2d -------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("kernel, padding, dilation, groups", [
    (3, 1, 1, 1),
    (3, (2, 1), 1, 4),
    (3, 2, 2, 8),                      # depthwise
    (4, "same", 1, 2),                 # even kernel: the odd pad at the end
    (3, "same", 2, 4),
])
def test_conv2d_padding_mode_matches_torch_module(mode, kernel, padding, dilation, groups):
    torch.manual_seed(0)
    module = torch.nn.Conv2d(8, 8, kernel, padding=padding, dilation=dilation, groups=groups,
                             padding_mode=mode, dtype=torch.float64)
    x = torch.randn(2, 8, 7, 9, dtype=torch.float64)
    with torch.no_grad():
        expected = module(x).numpy()
    y = gconv.conv2d(x.numpy(), module.weight.detach().numpy(), module.bias.detach().numpy(),
                     padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    assert_matches(y, expected, np.float64, 8 // groups * kernel * kernel)
    # the layer's own padding_mode gives the same
    layer = gconv.Conv2d(8, 8, kernel, padding=padding, dilation=dilation, groups=groups,
                         padding_mode=mode, dtype=np.float64)
    layer.weight, layer.bias = module.weight.detach().numpy(), module.bias.detach().numpy()
    np.testing.assert_array_equal(layer(x.numpy()), y)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding, stride", [(((0, 2), (1, 0)), 1), ("same_upper", 2),
                                             ("same_lower", 3)])
def test_padding_mode_with_gconv_only_paddings(mode, padding, stride):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 4, 8, 7)).astype(np.float32)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    if isinstance(padding, str):
        pads = (*onnx_same_pads(8, 3, stride, 1, padding), *onnx_same_pads(7, 3, stride, 1,
                                                                            padding))
    else:
        (t, bo), (l, r) = padding
        pads = (t, bo, l, r)
    y = gconv.conv2d(x, w, None, stride=stride, padding=padding, groups=2, padding_mode=mode,
                     activation="relu")
    assert_matches(y, torch_conv(x, w, None, stride, pads, 1, 2, mode=mode, act=F.relu),
                   np.float32, 18)


def test_padding_mode_unbatched_and_nhwc():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    expected = torch_conv(x, w, None, 1, (1,) * 4, 1, 4, mode="reflect")
    assert_matches(gconv.conv2d(x[0], w, padding=1, groups=4, padding_mode="reflect"),
                   expected[0], np.float32, 9)
    y = gconv.conv2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w, padding=1, groups=4,
                     padding_mode="reflect", layout="NHWC")
    assert_matches(y, expected.transpose(0, 2, 3, 1), np.float32, 9)


def test_padding_mode_zeros_is_the_default_and_reflect_too_wide_is_refused():
    x, w, b, kwargs, _, _ = path_arrays("general", np.float32)
    np.testing.assert_array_equal(gconv.conv2d(x, w, b, **kwargs, padding_mode="zeros"),
                                  gconv.conv2d(x, w, b, **kwargs))
    small = x[:, :, :2, :2]
    with pytest.raises(ValueError, match="reflect"):
        gconv.conv2d(small, w, b, groups=2, padding=2, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        gconv.conv2d(x, w, b, **kwargs, padding_mode="mirror")


# -- Conv2d(activation=...) and prepacked weights -------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("act_id", ["relu6", "sigmoid", "leaky_relu_0.2"])
def test_layer_activation_matches_torch(path, act_id):
    activation, torch_act = TORCH_ACTIVATIONS[act_id]
    C_in, C_out, groups, k, stride, padding = PATHS[path]
    layer = gconv.Conv2d(C_in, C_out, k, stride=stride, padding=padding, groups=groups,
                         activation=activation, rng=3)
    x = np.random.default_rng(13).uniform(-6, 6, (2, C_in, 8, 9)).astype(np.float32)
    expected = torch_conv(x, layer.weight, layer.bias, stride, (padding,) * 4, 1, groups,
                          act=torch_act)
    assert_matches(layer(x), expected, np.float32, C_in // groups * k * k)


class PackCounter:
    """Counts an implementation's prepare_weight calls (weight packing) via monkeypatch."""

    def __init__(self, monkeypatch, impl):
        self.calls = 0
        original = impl.prepare_weight

        def counting(plan, weight):
            self.calls += 1
            return original(plan, weight)

        monkeypatch.setattr(impl, "prepare_weight", counting)


@pytest.mark.parametrize("path", PATHS)
def test_layer_packs_once_and_repacks_after_new_weights(monkeypatch, path):
    C_in, C_out, groups, k, stride, padding = PATHS[path]
    counter = PackCounter(monkeypatch, _dispatch.BY_NAME[path])
    layer = gconv.Conv2d(C_in, C_out, k, stride=stride, padding=padding, groups=groups,
                         activation="relu", rng=4)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, C_in, 8, 9)).astype(np.float32)
    first = layer(x)
    for _ in range(4):
        np.testing.assert_array_equal(layer(x), first)
    assert counter.calls == 1                            # packed once for this plan
    other = rng.standard_normal((1, C_in, 5, 6)).astype(np.float32)
    layer(other)
    layer(other)
    layer(x)
    assert counter.calls == 2                            # once more for the new shape only

    new_weight = rng.standard_normal(layer.weight.shape).astype(np.float32)
    layer.weight = new_weight
    second = layer(x)
    assert counter.calls == 3                            # repacked after the assignment
    assert not np.allclose(second, first)
    expected = torch_conv(x, new_weight, layer.bias, stride, (padding,) * 4, 1, groups,
                          act=F.relu)
    assert_matches(second, expected, np.float32, C_in // groups * k * k)
    layer(x)
    assert counter.calls == 3


def test_layer_weights_cannot_change_behind_the_packed_copy():
    layer = gconv.Conv2d(8, 8, 3, padding=1, groups=2, rng=5)
    with pytest.raises(ValueError):
        layer.weight[0, 0, 0, 0] = 1.0                   # read-only: no stale packed copy
    source = np.array(layer.weight)
    layer.weight = source
    source[...] = 0                                      # the layer keeps its own copy
    assert np.any(layer.weight != 0)


def test_new_bias_changes_the_result():
    layer = gconv.Conv2d(8, 6, 3, groups=2, activation="relu", rng=6)
    x = np.random.default_rng(15).standard_normal((1, 8, 6, 6)).astype(np.float32)
    before = layer(x)
    layer.bias = np.full(6, 5.0, np.float32)
    after = layer(x)
    assert np.all(after >= before)
    assert_matches(after, torch_conv(x, layer.weight, layer.bias, 1, (0,) * 4, 1, 2,
                                     act=F.relu), np.float32, 36)
