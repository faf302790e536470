"""gconv.conv1d / gconv.Conv1d against torch.nn.functional.conv1d / torch.nn.Conv1d.

conv1d runs the 2-D path with H = 1; these tests hold it to torch's 1-D semantics and
error messages (the message text is compared with the one torch itself raises).
"""
import math
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gconv


# torch warns that it copies the input for an even kernel with padding='same'
pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),
              pytest.mark.usefixtures("torch_single_thread")]



def tol(dtype, K, scale=1.0):
    return 16 * np.finfo(dtype).eps * max(K, 1) * max(scale, 1.0)


def assert_matches(got, expected, dtype, K):
    assert got.dtype == np.dtype(dtype)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    np.testing.assert_allclose(got, expected, rtol=0,
                               atol=tol(dtype, K, float(np.abs(expected).max())))


def torch_conv1d(x, w, b=None, stride=1, pads=(0, 0), dilation=1, groups=1, mode="constant"):
    tx = torch.from_numpy(np.asarray(x, np.float64))
    if any(pads):
        tx = F.pad(tx, pads, mode=mode)
    return F.conv1d(tx, torch.from_numpy(np.asarray(w, np.float64)),
                    None if b is None else torch.from_numpy(np.asarray(b, np.float64)),
                    stride=stride, dilation=dilation, groups=groups).numpy()


def arrays(N, C_in, L, C_out, groups, k, dtype=np.float32, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C_in, L)).astype(dtype)
    w = rng.standard_normal((C_out, C_in // groups, k)).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype) if bias else None
    return x, w, b


CONFIGS = [  # (N, C_in, L, C_out, groups, k, stride, padding, dilation)
    (2, 8, 17, 12, 1, 3, 1, 1, 1),
    (2, 8, 17, 12, 4, 3, 2, 1, 1),
    (1, 6, 20, 6, 6, 5, 1, 2, 1),           # depthwise
    (3, 4, 15, 8, 4, 3, 1, 0, 2),           # depthwise multiplier 2, dilated
    (1, 16, 9, 24, 2, 1, 1, 0, 1),          # pointwise
    (2, 9, 31, 6, 3, 4, 3, 2, 2),
    (1, 4, 5, 4, 2, 5, 1, 0, 1),            # kernel == length: one output
    (2, 6, 12, 6, 3, 3, 1, "same", 1),
    (2, 6, 12, 6, 3, 4, 1, "same", 2),      # even kernel: the odd pad at the end
    (2, 6, 12, 6, 1, 3, 2, "valid", 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_conv1d_matches_torch(cfg, dtype):
    N, C_in, L, C_out, groups, k, stride, padding, dilation = cfg
    x, w, b = arrays(N, C_in, L, C_out, groups, k, dtype)
    expected = F.conv1d(torch.from_numpy(x.astype(np.float64)),
                        torch.from_numpy(w.astype(np.float64)),
                        torch.from_numpy(b.astype(np.float64)), stride=stride,
                        padding=padding, dilation=dilation, groups=groups).numpy()
    y = gconv.conv1d(x, w, b, stride, padding, dilation, groups)
    assert_matches(y, expected, dtype, C_in // groups * k)
    # the 1-element sequences torch accepts work the same
    y_seq = gconv.conv1d(x, w, b, (stride,), padding if isinstance(padding, str) else
                         (padding,), (dilation,), groups)
    np.testing.assert_array_equal(y_seq, y)
    # unbatched (C, L)
    assert_matches(gconv.conv1d(x[0], w, b, stride, padding, dilation, groups), expected[0],
                   dtype, C_in // groups * k)


@pytest.mark.parametrize("pads", [(0, 2), (3, 1), (2, 2), (0, 0)])
def test_asymmetric_left_right_padding(pads):
    x, w, b = arrays(2, 6, 11, 4, 2, 3)
    y = gconv.conv1d(x, w, b, padding=pads, groups=2)
    assert_matches(y, torch_conv1d(x, w, b, pads=pads, groups=2), np.float32, 9)


@pytest.mark.parametrize("rule", ["same_upper", "same_lower"])
@pytest.mark.parametrize("stride, dilation, k, L", [(1, 1, 2, 9), (2, 1, 3, 10), (3, 2, 3, 11),
                                                    (2, 3, 4, 8), (3, 1, 1, 7)])
def test_onnx_same_padding(rule, stride, dilation, k, L):
    x, w, b = arrays(1, 4, L, 4, 4, k)
    out = math.ceil(L / stride)
    total = max(0, (out - 1) * stride + (k - 1) * dilation + 1 - L)
    left = total // 2 if rule == "same_upper" else total - total // 2
    y = gconv.conv1d(x, w, b, stride, rule, dilation, groups=4)
    assert y.shape == (1, 4, out)
    assert_matches(y, torch_conv1d(x, w, b, stride, (left, total - left), dilation, 4),
                   np.float32, k)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding, k", [(1, 3), (2, 5), ("same", 4)])
def test_padding_mode_matches_torch_module(mode, padding, k):
    torch.manual_seed(1)
    module = torch.nn.Conv1d(6, 9, k, padding=padding, groups=3, padding_mode=mode)
    x = torch.randn(2, 6, 13)
    with torch.no_grad():
        expected = module(x).numpy()
    w, b = module.weight.detach().numpy(), module.bias.detach().numpy()
    y = gconv.conv1d(x.numpy(), w, b, padding=padding, groups=3, padding_mode=mode)
    assert_matches(y, expected, np.float32, 2 * k)
    layer = gconv.Conv1d(6, 9, k, padding=padding, groups=3, padding_mode=mode)
    layer.weight, layer.bias = w, b
    np.testing.assert_array_equal(layer(x.numpy()), y)


def test_activation_residual_and_out():
    x, w, b = arrays(2, 8, 16, 8, 2, 3, seed=1)
    pre = torch_conv1d(x, w, b, pads=(1, 1), groups=2)
    residual = np.random.default_rng(2).standard_normal(pre.shape).astype(np.float32)
    expected = F.silu(torch.from_numpy(pre + residual)).numpy()
    out = np.full(pre.shape, np.nan, np.float32)
    y = gconv.conv1d(x, w, b, padding=1, groups=2, activation="silu", residual=residual,
                     out=out)
    assert y is out
    assert_matches(out, expected, np.float32, 13)
    out1 = np.empty(pre.shape[1:], np.float32)
    assert gconv.conv1d(x[1], w, b, padding=1, groups=2, activation="silu",
                        residual=residual[1], out=out1) is out1
    assert_matches(out1, expected[1], np.float32, 13)


def test_out_is_written_in_place_without_an_output_sized_allocation():
    x, w, b = arrays(4, 16, 4096, 16, 4, 3, seed=3)
    out = np.empty((4, 16, 4096), np.float32)
    layer = gconv.Conv1d(16, 16, 3, padding=1, groups=4)
    layer(x, out=out)
    tracemalloc.start()
    try:
        assert layer(x, out=out) is out
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < out.nbytes // 64       # no copy of input or output, no temporary
    assert_matches(out, torch_conv1d(x, layer.weight, layer.bias, pads=(1, 1), groups=4),
                   np.float32, 12)


def test_non_contiguous_input_is_fine():
    x, w, b = arrays(2, 8, 30, 4, 2, 3, seed=4)
    strided = x[:, :, ::2]
    assert_matches(gconv.conv1d(strided, w, b, groups=2),
                   torch_conv1d(np.ascontiguousarray(strided), w, b, groups=2), np.float32, 12)


@pytest.mark.parametrize("bad_out, error, match", [
    (lambda s: np.zeros((s[0], s[1], s[2] + 1), np.float32), ValueError, r"shape \(2, 4, 9\)"),
    (lambda s: np.zeros((s[0], s[1], 1, s[2]), np.float32), ValueError, r"shape \(2, 4, 9\)"),
    (lambda s: np.zeros((s[0], s[1], 2 * s[2]), np.float32)[..., ::2], ValueError,
     "contiguous"),
    (lambda s: np.zeros(s, np.float32).tolist(), TypeError, "ndarray"),
], ids=["length", "rank", "strided", "list"])
def test_bad_out_is_refused(bad_out, error, match):
    x, w, b = arrays(2, 8, 11, 4, 2, 3)
    with pytest.raises(error, match=match):
        gconv.conv1d(x, w, b, groups=2, out=bad_out((2, 4, 9)))


def test_residual_of_the_wrong_shape_is_refused_in_1d_terms():
    x, w, b = arrays(2, 8, 11, 4, 2, 3)
    with pytest.raises(ValueError, match=r"residual must have the output's shape \(2, 4, 9\)"):
        gconv.conv1d(x, w, b, groups=2, residual=np.zeros((2, 4, 8), np.float32))


# -- errors in torch's words ----------------------------------------------------------------
def torch_message(fn):
    with pytest.raises(RuntimeError) as info:
        fn()
    return str(info.value)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 8, 11), (4, 4, 3), dict(groups=1)),             # channel count
    ((2, 8, 11), (4, 4, 3), dict(groups=3)),             # C_in not a multiple
    ((2, 8, 2), (4, 4, 3), dict(groups=2)),              # kernel longer than the input
    ((2, 8, 4), (4, 4, 3), dict(groups=2, dilation=2)),  # dilated extent 5 > 4
    ((2, 8, 11, 1), (4, 4, 3), dict(groups=2)),          # 4-D input
    ((8,), (4, 4, 3), dict(groups=2)),                   # 1-D input
    ((2, 8, 5), (4, 4, 3), dict(groups=2, stride=(1, 2))),
    ((2, 8, 5), (4, 4, 3), dict(groups=2, stride=0)),
    ((2, 8, 5), (4, 4, 3), dict(groups=2, dilation=0)),
    ((2, 8, 5), (3, 4, 3), dict(groups=2)),              # C_out not a multiple
    ((2, 8, 5), (4, 4, 3), dict(groups=2, padding=-1)),
    ((2, 8, 5), (4, 4, 3), dict(groups=0)),
    ((2, 8, 5), (4, 4, 3), dict(groups=2, stride=2, padding="same")),
])
def test_error_messages_are_torchs(x_shape, w_shape, kwargs):
    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    expected = torch_message(lambda: F.conv1d(torch.from_numpy(x), torch.from_numpy(w),
                                              **kwargs))
    with pytest.raises(ValueError) as info:
        gconv.conv1d(x, w, **kwargs)
    # torch's sentence, whole (gconv may append the value it got); torch's doubled
    # brackets in the "divisible" message are a typo gconv does not copy
    assert str(info.value).startswith(expected.replace("[[", "[").replace("]]", "]")), \
        (str(info.value), expected)


def test_bias_and_weight_rank_errors():
    x, w, _ = arrays(2, 8, 11, 4, 2, 3)
    expected = torch_message(lambda: F.conv1d(torch.from_numpy(x), torch.from_numpy(w),
                                              torch.zeros(3), groups=2))
    with pytest.raises(ValueError, match=None) as info:
        gconv.conv1d(x, w, np.zeros(3, np.float32), groups=2)
    assert str(info.value) == expected
    with pytest.raises(ValueError, match=r"3-dimensional weight .* \[4, 4, 3, 3\]"):
        gconv.conv1d(x, np.zeros((4, 4, 3, 3), np.float32), groups=2)
    with pytest.raises(TypeError, match=r"Input type \(float32\) and weight type \(float64\)"):
        gconv.conv1d(x, w.astype(np.float64), groups=2)


# -- the layer ------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, padding=1, groups=4),
    dict(kernel_size=5, stride=2, padding=2, dilation=2, groups=8),
    dict(kernel_size=4, padding="same", groups=2, bias=False),
    dict(kernel_size=1, groups=1),
])
def test_layer_matches_torch_module(kwargs):
    torch.manual_seed(2)
    module = torch.nn.Conv1d(8, 16, **kwargs)
    layer = gconv.Conv1d(8, 16, **kwargs)
    assert layer.weight.shape == tuple(module.weight.shape)
    assert (layer.bias is None) == (module.bias is None)
    layer.weight = module.weight.detach().numpy()
    if module.bias is not None:
        layer.bias = module.bias.detach().numpy()
    x = torch.randn(3, 8, 21)
    with torch.no_grad():
        expected = module(x).numpy()
    assert_matches(layer(x.numpy()), expected, np.float32, 8 // kwargs["groups"] *
                   kwargs["kernel_size"])
    assert_matches(layer(x.numpy()[0]), expected[0], np.float32, 8 // kwargs["groups"] *
                   kwargs["kernel_size"])


def test_layer_init_follows_torchs_bound_and_weights_are_read_only():
    layer = gconv.Conv1d(12, 6, 5, groups=3, rng=0)
    bound = 1 / math.sqrt(12 // 3 * 5)
    assert layer.weight.shape == (6, 4, 5) and layer.bias.shape == (6,)
    assert np.abs(layer.weight).max() <= bound and np.abs(layer.weight).max() > 0.8 * bound
    with pytest.raises(ValueError):
        layer.weight[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match=r"weight must have shape \(6, 4, 5\)"):
        layer.weight = np.zeros((6, 4, 1, 5), np.float32)


def test_layer_activation_and_new_weights_change_the_result():
    layer = gconv.Conv1d(4, 4, 3, padding=1, groups=2, activation=("leaky_relu", 0.1), rng=1)
    x = np.random.default_rng(5).standard_normal((2, 4, 10)).astype(np.float32)
    before = layer(x)
    assert_matches(before, F.leaky_relu(torch.from_numpy(torch_conv1d(
        x, layer.weight, layer.bias, pads=(1, 1), groups=2)), 0.1).numpy(), np.float32, 6)
    new = np.ones((4, 2, 3), np.float32)
    layer.weight = new
    after = layer(x)
    assert not np.allclose(after, before)
    assert_matches(after, F.leaky_relu(torch.from_numpy(torch_conv1d(
        x, new, layer.bias, pads=(1, 1), groups=2)), 0.1).numpy(), np.float32, 6)


@pytest.mark.parametrize("args, kwargs, message", [
    ((8, 4, 3), dict(groups=3), "in_channels must be divisible by groups"),
    ((8, 6, 3), dict(groups=4), "out_channels must be divisible by groups"),
    ((8, 4, 3), dict(padding="full"), "Invalid padding string 'full'"),
    ((8, 4, 3), dict(stride=2, padding="same"), "not supported for strided"),
    ((8, 4, 3), dict(padding_mode="mirror"), "padding_mode must be one of"),
    ((8, 4, (3, 3)), {}, "expected kernel_size to be a single integer value"),
])
def test_layer_constructor_refusals(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gconv.Conv1d(*args, **kwargs)


def test_repr_reads_like_torchs():
    assert repr(gconv.Conv1d(8, 16, 3, padding=1, groups=4)) == \
        "Conv1d(8, 16, kernel_size=(3,), stride=(1,), padding=(1,), groups=4)"
    assert repr(torch.nn.Conv1d(8, 16, 3, padding=1, groups=4)) == \
        "Conv1d(8, 16, kernel_size=(3,), stride=(1,), padding=(1,), groups=4)"
    assert repr(gconv.Conv1d(4, 4, 3, activation=("leaky_relu", 0.2))).endswith(
        "activation=('leaky_relu', 0.2))")
    assert repr(gconv.Conv1d(4, 4, 3, activation=("clamp", -1, 1))).endswith(
        "activation=('clamp', -1.0, 1.0))")
    assert repr(gconv.Conv1d(4, 4, 3, activation="silu")).endswith("activation='silu')")
