"""gconv.Conv2d against torch.nn.Conv2d: shapes, initialisation, refusals, padding modes,
read-only weights, repr."""
import copy
import pickle

import numpy as np
import pytest
import torch

import gconv

# torch's own note about even kernels with padding='same'; the comparison is the point
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


# -- weight and bias shapes, as the seed write-ups list them --------------------------------
@pytest.mark.parametrize("c_in, c_out, k, groups, weight_shape", [
    (16, 4, 1, 1, (4, 16, 1, 1)),
    (16, 4, 1, 2, (4, 8, 1, 1)),
    (16, 4, 1, 4, (4, 4, 1, 1)),
    (8, 4, 5, 4, (4, 2, 5, 5)),
    (8, 4, 5, 2, (4, 4, 5, 5)),
    (4, 8, 5, 4, (8, 1, 5, 5)),
    (4, 8, 5, 2, (8, 2, 5, 5)),
    (3, 3, 5, 1, (3, 3, 5, 5)),
    (3, 9, 3, 3, (9, 1, 3, 3)),
    (6, 4, (3, 5), 2, (4, 3, 3, 5)),
])
def test_weight_and_bias_shapes(c_in, c_out, k, groups, weight_shape):
    layer = gconv.Conv2d(c_in, c_out, k, groups=groups, rng=0)
    assert layer.weight.shape == weight_shape
    assert layer.bias.shape == (c_out,)
    reference = torch.nn.Conv2d(c_in, c_out, k, groups=groups)
    assert layer.weight.shape == tuple(reference.weight.shape)
    assert layer.bias.shape == tuple(reference.bias.shape)


def test_bias_false_has_no_bias():
    layer = gconv.Conv2d(4, 4, 3, bias=False)
    assert layer.bias is None


def test_three_to_nine_channels_allow_at_most_three_groups():
    """(1, 3, 64, 64) -> (1, 9, 64, 64): groups must divide both 3 and 9."""
    allowed = []
    for groups in range(1, 10):
        try:
            gconv.Conv2d(3, 9, 3, groups=groups)
            allowed.append(groups)
        except ValueError:
            pass
    assert allowed == [1, 3]
    y = gconv.Conv2d(3, 9, 3, padding=1, groups=3, rng=0)(np.ones((1, 3, 64, 64), np.float32))
    assert y.shape == (1, 9, 64, 64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype(dtype):
    layer = gconv.Conv2d(4, 6, 3, groups=2, dtype=dtype, rng=0)
    assert layer.weight.dtype == dtype and layer.bias.dtype == dtype
    assert layer(np.ones((1, 4, 5, 5), dtype)).dtype == dtype


# -- initialisation ---------------------------------------------------------------------------
@pytest.mark.parametrize("c_in, c_out, k, groups", [
    (64, 64, 3, 1), (64, 64, 3, 8), (64, 64, 3, 64), (96, 48, 1, 3), (8, 256, (5, 3), 2),
])
def test_init_within_and_filling_torch_bound(c_in, c_out, k, groups):
    layer = gconv.Conv2d(c_in, c_out, k, groups=groups, rng=1)
    kh, kw = (k, k) if isinstance(k, int) else k
    bound = 1 / np.sqrt(c_in // groups * kh * kw)
    w, b = layer.weight, layer.bias
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # uniform on [-bound, bound]: the extremes come close to it, the spread is bound/sqrt(3)
    assert w.max() > 0.95 * bound and w.min() < -0.95 * bound
    assert abs(w.std() / (bound / np.sqrt(3)) - 1) < 0.1
    assert abs(w.mean()) < 0.05 * bound
    # torch draws from the same range: its extremes stay within our bound and come close
    torch.manual_seed(0)
    ref = torch.nn.Conv2d(c_in, c_out, k, groups=groups)
    ref_w, ref_b = ref.weight.detach().abs(), ref.bias.detach().abs()
    assert float(ref_w.max()) <= bound * (1 + 1e-6)
    assert float(ref_w.max()) > 0.95 * bound
    assert float(ref_b.max()) <= bound * (1 + 1e-6)


def test_bias_spread_fills_bound():
    layer = gconv.Conv2d(16, 4096, 1, rng=2)
    bound = 1 / np.sqrt(16)
    assert np.abs(layer.bias).max() <= bound
    assert layer.bias.max() > 0.95 * bound and layer.bias.min() < -0.95 * bound


def test_seeded_init_is_reproducible_and_seeds_differ():
    a = gconv.Conv2d(8, 8, 3, groups=2, rng=123)
    b = gconv.Conv2d(8, 8, 3, groups=2, rng=123)
    c = gconv.Conv2d(8, 8, 3, groups=2, rng=124)
    d = gconv.Conv2d(8, 8, 3, groups=2, rng=np.random.default_rng(123))
    e = gconv.Conv2d(8, 8, 3, groups=2, rng=np.random.default_rng(123))
    assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
    assert np.array_equal(d.weight, e.weight) and np.array_equal(d.bias, e.bias)
    assert not np.array_equal(a.weight, c.weight)
    assert not np.array_equal(a.bias, c.bias)


def test_unseeded_layers_differ():
    assert not np.array_equal(gconv.Conv2d(8, 8, 3).weight, gconv.Conv2d(8, 8, 3).weight)


def test_one_generator_feeds_successive_layers_differently():
    rng = np.random.default_rng(5)
    first, second = gconv.Conv2d(4, 4, 3, rng=rng), gconv.Conv2d(4, 4, 3, rng=rng)
    assert not np.array_equal(first.weight, second.weight)


# -- constructor refusals, in torch's words ---------------------------------------------------
PADDING_MODES_LISTED = r"padding_mode must be one of .*'zeros'.*, but got padding_mode='mirror'"


@pytest.mark.parametrize("args, kwargs, message", [
    ((6, 4, 3), dict(groups=4), "in_channels must be divisible by groups"),
    ((8, 6, 3), dict(groups=4), "out_channels must be divisible by groups"),
    ((3, 9, 3), dict(groups=9), "in_channels must be divisible by groups"),
    ((8, 4, 3), dict(groups=0), "groups must be a positive integer"),
    ((8, 4, 3), dict(groups=-2), "groups must be a positive integer"),
    ((8, 4, 3), dict(padding_mode="mirror"), PADDING_MODES_LISTED),
    ((8, 4, 3), dict(padding="full"), r"Invalid padding string 'full', should be one of"),
    ((8, 4, 3), dict(padding="same", stride=2),
     r"padding='same' is not supported for strided convolutions"),
])
def test_constructor_refusals_match_torch(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gconv.Conv2d(*args, **kwargs)
    with pytest.raises(ValueError, match=message):
        torch.nn.Conv2d(*args, **kwargs)


def test_padding_mode_refusal_lists_every_mode():
    with pytest.raises(ValueError) as err:
        gconv.Conv2d(8, 4, 3, padding_mode="mirror")
    for mode in ("zeros", "reflect", "replicate", "circular"):
        assert f"'{mode}'" in str(err.value)


@pytest.mark.parametrize("groups", [1.5, "2", None, True])
def test_constructor_refuses_non_integer_groups(groups):
    with pytest.raises((ValueError, TypeError), match="groups"):
        gconv.Conv2d(8, 4, 3, groups=groups)


def test_constructor_refuses_non_float_dtype():
    with pytest.raises(TypeError, match="float32 or float64.*int32"):
        gconv.Conv2d(8, 4, 3, dtype=np.int32)


@pytest.mark.parametrize("kwargs", [dict(stride=0), dict(dilation=0), dict(padding=-1)])
def test_bad_stride_dilation_padding_refused_no_later_than_the_first_call(kwargs):
    """torch accepts these in the constructor and refuses them in forward."""
    try:
        layer = gconv.Conv2d(2, 2, 3, **kwargs)
    except ValueError:
        return
    with pytest.raises(ValueError, match="stride|dilation|padding"):
        layer(np.zeros((1, 2, 8, 8), np.float32))


# -- running the layer: same answer as torch.nn.Conv2d with the same weights ------------------
def _torch_twin(layer, **kwargs):
    kwargs = {k: v for k, v in kwargs.items() if k != "bias"}
    ref = torch.nn.Conv2d(layer.in_channels, layer.out_channels, **kwargs,
                          bias=layer.bias is not None,
                          dtype=torch.float64 if layer.weight.dtype == np.float64 else torch.float32)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.weight.copy()))
        if layer.bias is not None:
            ref.bias.copy_(torch.from_numpy(layer.bias.copy()))
    return ref


LAYER_CONFIGS = [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, padding=2, groups=2),
    dict(kernel_size=(3, 5), padding=(1, 2), stride=2, groups=4),
    dict(kernel_size=3, padding=2, dilation=2, groups=8),
    dict(kernel_size=4, padding="same", groups=2),
    dict(kernel_size=3, padding="valid", bias=False),
    dict(kernel_size=5, padding=(2, 1), stride=(1, 2), groups=8),
    dict(kernel_size=1, padding=1, groups=4),
]


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("config", LAYER_CONFIGS,
                         ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_layer_matches_torch(config, padding_mode):
    layer = gconv.Conv2d(8, 16, **config, padding_mode=padding_mode, rng=3)
    ref = _torch_twin(layer, **config, padding_mode=padding_mode)
    x = np.random.default_rng(4).standard_normal((2, 8, 9, 10)).astype(np.float32)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    y = layer(x)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_layer_padding_modes_float64_unbatched(padding_mode):
    layer = gconv.Conv2d(4, 4, 3, padding=(2, 1), groups=4, padding_mode=padding_mode,
                         dtype=np.float64, rng=5)
    ref = _torch_twin(layer, kernel_size=3, padding=(2, 1), groups=4, padding_mode=padding_mode)
    x = np.random.default_rng(6).standard_normal((4, 6, 7))
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


def test_padding_mode_changes_the_border_only():
    x = np.random.default_rng(7).standard_normal((1, 2, 8, 8)).astype(np.float32)
    zeros = gconv.Conv2d(2, 2, 3, padding=1, rng=8)
    reflect = gconv.Conv2d(2, 2, 3, padding=1, padding_mode="reflect", rng=8)
    a, b = zeros(x), reflect(x)
    np.testing.assert_allclose(a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1], rtol=1e-6, atol=1e-6)
    assert not np.allclose(a[..., 0, :], b[..., 0, :])


def test_reflect_padding_as_large_as_the_input_is_refused():
    layer = gconv.Conv2d(1, 1, 5, padding=4, padding_mode="reflect")
    with pytest.raises(ValueError, match="reflect"):
        layer(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(RuntimeError):     # torch refuses it too
        _torch_twin(layer, kernel_size=5, padding=4, padding_mode="reflect")(
            torch.zeros(1, 1, 4, 4))


# -- weights: read-only, replaced by assignment -----------------------------------------------
def test_weights_are_read_only():
    layer = gconv.Conv2d(4, 4, 3, rng=0)
    with pytest.raises(ValueError, match="read-only"):
        layer.weight[0, 0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        layer.bias[0] = 1.0


def test_assigning_weights_changes_the_result():
    layer = gconv.Conv2d(4, 6, 3, padding=1, groups=2, rng=0)
    x = np.random.default_rng(1).standard_normal((1, 4, 7, 7)).astype(np.float32)
    before = layer(x)
    new_w = np.random.default_rng(2).standard_normal(layer.weight.shape).astype(np.float32)
    layer.weight = new_w
    after = layer(x)
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(after, gconv.conv2d(x, new_w, layer.bias, padding=1, groups=2))
    # the layer keeps its own copy: changing the caller's array later does nothing
    new_w[...] = 0
    np.testing.assert_array_equal(layer(x), after)
    layer.bias = None
    np.testing.assert_array_equal(layer(x), gconv.conv2d(x, layer.weight, None, padding=1,
                                                          groups=2))


def test_assigning_a_weight_of_the_wrong_shape_is_refused():
    layer = gconv.Conv2d(4, 6, 3, groups=2)
    with pytest.raises(ValueError, match=r"\(6, 2, 3, 3\).*\(6, 4, 3, 3\)"):
        layer.weight = np.zeros((6, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"\(6,\).*\(5,\)"):
        layer.bias = np.zeros(5, np.float32)


def test_layer_refuses_input_of_another_dtype():
    layer = gconv.Conv2d(2, 2, 3)
    with pytest.raises(TypeError, match=r"float64.*float32"):
        layer(np.zeros((1, 2, 5, 5), np.float64))


@pytest.mark.parametrize("algorithm", ["auto", "general", "reference"])
def test_layer_same_as_functional(algorithm):
    layer = gconv.Conv2d(6, 12, 3, stride=2, padding=1, groups=3, rng=9)
    x = np.random.default_rng(10).integers(-3, 4, (2, 6, 9, 9)).astype(np.float32)
    # integer-valued weights and bias: every path's sums are exact
    layer.weight = np.random.default_rng(11).integers(-2, 3, layer.weight.shape)
    layer.bias = np.arange(12) - 6
    expected = gconv.conv2d(x, layer.weight, layer.bias, stride=2, padding=1, groups=3,
                            algorithm="reference")
    for _ in range(2):     # the second call reuses the packed weights
        np.testing.assert_array_equal(layer(x, algorithm=algorithm), expected)


def test_layer_cache_follows_bias_isa_threads_and_input():
    """The layer caches one plan (and packed weights) per call signature: every change that
    alters the computation must reach the kernel, none may serve a stale plan."""
    layer = gconv.Conv2d(8, 8, 3, padding=1, groups=2, rng=12)
    layer.weight = np.random.default_rng(13).integers(-2, 3, layer.weight.shape)
    layer.bias = np.arange(8) - 4
    x = np.random.default_rng(14).integers(-3, 4, (2, 8, 7, 7)).astype(np.float32)

    def expected(inp, bias):
        return gconv.conv2d(inp, layer.weight, bias, padding=1, groups=2, algorithm="reference")

    np.testing.assert_array_equal(layer(x), expected(x, layer.bias))
    layer.bias = None                                    # planned with a bias
    np.testing.assert_array_equal(layer(x), expected(x, None))
    try:
        gconv.set_isa("generic")
        gconv.set_num_threads(1)
        np.testing.assert_array_equal(layer(x), expected(x, None))
    finally:
        gconv.set_isa(None)
        gconv.set_num_threads(None)
    small = x[:1, :, :5, :6].copy()                      # another shape: another plan
    np.testing.assert_array_equal(layer(small), expected(small, None))
    strided = x[:, :, ::1, ::1][..., ::-1]               # not C-contiguous: copied first
    np.testing.assert_array_equal(layer(strided), expected(strided.copy(), None))
    np.testing.assert_array_equal(layer(x[0]), expected(x[:1], None)[0])   # unbatched


class _ArraySubclass(np.ndarray):
    pass


def test_lean_call_runs_repeats_and_declines_what_it_was_not_made_for():
    """A repeated call with no options runs through the layer's LeanCall, without forward;
    an input it was not made for, or a change of ISA, threads, weights or bias, goes back
    through forward (or reaches the kernel), and every result is right."""
    layer = gconv.Conv2d(8, 8, 3, padding=1, groups=2, rng=12)
    layer.weight = np.random.default_rng(13).integers(-2, 3, layer.weight.shape)
    layer.bias = np.arange(8) - 4
    x = np.random.default_rng(14).integers(-3, 4, (2, 8, 7, 7)).astype(np.float32)

    def expected(inp, bias=layer.bias):
        inp = np.asarray(inp, dtype=np.float32)
        return gconv.conv2d(inp, layer.weight, bias, padding=1, groups=2, algorithm="reference")

    np.testing.assert_array_equal(layer(x), expected(x))      # first call: forward
    lean = layer._lean
    assert lean is not None
    forward_calls = []
    forward = layer.forward
    layer.forward = lambda *a, **k: (forward_calls.append(1), forward(*a, **k))[1]

    y1, y2 = layer(x), layer(x)
    assert forward_calls == []                                # the lean path
    assert y1 is not y2 and y1.base is None                   # a fresh output each call
    np.testing.assert_array_equal(y1, expected(x))
    np.testing.assert_array_equal(x, np.random.default_rng(14).integers(-3, 4, x.shape))

    declined = {
        "other shape": x[:1].copy(),
        "not C-contiguous": x[..., ::-1],
        "big-endian": x.astype(">f4"),
        "ndarray subclass": x.view(_ArraySubclass),
        "unbatched": x[0].copy(),
    }
    for name, inp in declined.items():
        assert lean(inp, layer.bias) is None, name
        forward_calls.clear()
        out = layer(inp)
        assert forward_calls == [1], name
        want = expected(np.asarray(inp)[None] if name == "unbatched" else inp)
        np.testing.assert_array_equal(out, want[0] if name == "unbatched" else want, err_msg=name)

    # declined too, and forward says why (as torch does)
    for inp, why in ((x.astype(np.float64), "should be the same"), (x.tolist(), "numpy.ndarray")):
        assert lean(inp, layer.bias) is None
        with pytest.raises(TypeError, match=why):
            layer(inp)

    layer(x)                                                  # x's LeanCall again
    lean = layer._lean
    try:
        gconv.set_num_threads(1)
        assert lean(x, layer.bias) is None                    # made for the old count
        forward_calls.clear()
        np.testing.assert_array_equal(layer(x), expected(x))
        assert forward_calls == [1] and layer._lean.plan.n_threads == 1
        gconv.set_isa("generic")
        np.testing.assert_array_equal(layer(x), expected(x))
        assert layer._lean.plan.isa == 0
    finally:
        gconv.set_isa(None)
        gconv.set_num_threads(None)
    layer(x)
    assert layer._lean.plan.isa == gconv._kernels.cpu_max_isa()

    layer.bias = None                                         # the bias goes in each call
    forward_calls.clear()
    np.testing.assert_array_equal(layer(x), expected(x, None))
    assert forward_calls == []
    layer.weight = -layer.weight                              # new weights: repacked
    assert layer._lean is None
    np.testing.assert_array_equal(layer(x), expected(x, None))


def test_lean_call_writes_into_out_and_declines_outs_it_cannot_use():
    """out= on a repeated call also runs through the LeanCall and returns out itself; an out
    of another shape or dtype, not C-contiguous, read-only, a subclass or overlapping the
    input is declined, and forward raises the usual error (or writes through a copy)."""
    layer = gconv.Conv2d(8, 8, 3, padding=1, groups=2, rng=12)
    x = np.random.default_rng(15).standard_normal((2, 8, 7, 7)).astype(np.float32)
    x_before = x.copy()
    want = layer(x)
    lean = layer._lean
    forward_calls = []
    forward = layer.forward
    layer.forward = lambda *a, **k: (forward_calls.append(1), forward(*a, **k))[1]

    out = np.full_like(want, np.nan)
    assert layer(x, out=out) is out and forward_calls == []     # the lean path
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(x, x_before)

    read_only = np.empty_like(want)
    read_only.flags.writeable = False
    big = np.empty((2, 8, 7, 8), np.float32)
    sharing = np.empty(x.size + want.size, np.float32)
    x_shared = sharing[:x.size].reshape(x.shape)
    x_shared[...] = x
    declined = {
        "other shape": (x, np.empty((1, 8, 7, 7), np.float32), "must have shape"),
        "other dtype": (x, np.empty(want.shape), "must have shape"),
        "not C-contiguous": (x, big[..., :7], "C-contiguous"),
        "read-only": (x, read_only, "writeable"),
        "overlapping the input": (x_shared, sharing[x.size // 2:][:want.size].reshape(want.shape),
                                  "must not overlap input"),
    }
    for name, (inp, bad, error) in declined.items():
        assert lean(inp, layer.bias, bad) is None, name
        forward_calls.clear()
        with pytest.raises(ValueError, match=error):
            layer(inp, out=bad)
        assert forward_calls == [1], name
    # right next to the input, not overlapping it: accepted
    apart = sharing[x.size:].reshape(want.shape)
    assert layer(x_shared, out=apart) is apart and forward_calls == [1]
    np.testing.assert_array_equal(apart, want)
    # a subclass is declined by the LeanCall but fine for forward
    sub = np.empty_like(want).view(_ArraySubclass)
    assert lean(x, layer.bias, sub) is None
    assert layer(x, out=sub) is sub and forward_calls == [1, 1]
    np.testing.assert_array_equal(sub, want)

    # a layer only ever called with out= reaches its LeanCall from the second call on
    fresh = gconv.Conv2d(8, 8, 3, padding=1, groups=2, rng=12)
    first = np.empty_like(want)
    assert fresh(x, out=first) is first and fresh._lean is not None
    fresh.forward = lambda *a, **k: pytest.fail("the second out= call went through forward")
    second = np.empty_like(want)
    assert fresh(x, out=second) is second
    np.testing.assert_array_equal(second, want)


def test_copied_and_pickled_layers_compute_the_same():
    """copy.deepcopy and pickle work after calls too (the plan caches, which hold compiled
    objects, are left out and rebuilt); the copy keeps its own weights."""
    layer = gconv.Conv2d(8, 8, 3, padding=1, groups=2, rng=12, activation="relu")
    x = np.random.default_rng(14).standard_normal((2, 8, 7, 7)).astype(np.float32)
    y = layer(x)
    layer(x)                                                  # a LeanCall is cached now
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        np.testing.assert_array_equal(clone(x), y)
        np.testing.assert_array_equal(clone(x), y)            # and through its LeanCall
        assert clone.weight is not layer.weight and repr(clone) == repr(layer)
        assert not clone.weight.flags.writeable and not clone.bias.flags.writeable
        clone.weight = -clone.weight
        assert not np.array_equal(clone(x), y)
    np.testing.assert_array_equal(layer(x), y)                # the original is untouched


# -- repr -------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, kwargs", [
    ((16, 4, 1), dict(groups=4)),
    ((8, 4, (3, 5)), dict(stride=2, padding=(1, 2), dilation=2, bias=False)),
    ((3, 9, 3), dict(padding=1, groups=3)),
    ((8, 8, 3), {}),
])
def test_repr_as_torch(args, kwargs):
    assert repr(gconv.Conv2d(*args, **kwargs)) == repr(torch.nn.Conv2d(*args, **kwargs))


def test_repr_names_padding_string_and_mode():
    r = repr(gconv.Conv2d(8, 4, 3, padding="same", padding_mode="reflect"))
    assert r.startswith("Conv2d(8, 4, kernel_size=(3, 3)")
    assert "same" in r and "reflect" in r


def test_plan_names_the_path_a_call_takes_and_why():
    layer = gconv.Conv2d(672, 672, 3, padding=1, groups=672, rng=0)
    report = layer.plan((1, 672, 14, 14))
    assert report.implementation == "depthwise"
    assert report.path.startswith("depthwise / lanes mode, 3x3 unrolled")
    assert "14x14 plane" in report.reason and "672 channels" in report.reason
    x = np.zeros((1, 672, 14, 14), np.float32)
    layer(x)
    layer(x)
    assert layer._lean.plan.path == report.path      # the plan the call ran
    assert str(report).startswith(report.path)
    small = layer.plan((1, 672, 56, 56))
    assert "lanes" not in small.path                 # a large plane: another mode
    ref = gconv.Conv2d(4, 8, 1).plan((1, 4, 5, 5), algorithm="reference")
    assert (ref.implementation, ref.isa) == ("reference", "numpy")
    with pytest.raises(ValueError, match="expected input"):
        layer.plan((1, 3, 14, 14))


def test_an_unpickled_layer_finds_its_own_plans_in_another_process():
    # a layer's plan-cache key holds an id of its signature, valid in its own process only
    import pickle
    import subprocess
    import sys
    import os
    layer = gconv.Conv2d(8, 12, 3, padding=1, groups=4, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 8, 9, 9)).astype(np.float32)
    want = layer(x)
    # the child gives its own layers every id up to this one's first: a layer that kept
    # its id would find one of their plans
    code = ("import pickle, sys, numpy as np, gconv\n"
            f"for c in range({layer._signature} + 1):\n"
            "    gconv.Conv2d(8, 4 * (c + 1), 3, padding=1, groups=4, rng=0)("
            "np.ones((2, 8, 9, 9), np.float32))\n"
            "layer, x = pickle.loads(sys.stdin.buffer.read())\n"
            "sys.stdout.buffer.write(pickle.dumps(layer(x)))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(gconv.__file__)))
    done = subprocess.run([sys.executable, "-c", code], input=pickle.dumps((layer, x)),
                          capture_output=True, timeout=120, cwd=root,
                          env={**os.environ, "PYTHONPATH": root})
    assert done.returncode == 0, done.stderr.decode()
    np.testing.assert_array_equal(pickle.loads(done.stdout), want)
