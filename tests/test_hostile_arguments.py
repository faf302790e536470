"""Hostile arguments (issue 14): huge strides, odd integer types, NaN through the fused
activations, and a plan cache that must never accept what validation refuses.

The calls that crashed or hung before the fix run in a child process with a timeout, so a
regression fails this file instead of killing the test run.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gconv
from gconv import _conv
from gconv._reference import apply_activation, conv2d_reference

GCONV_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(gconv.__file__)))
RNG = np.random.default_rng(14)


def run_child(code, timeout=60):
    env = {**os.environ, "PYTHONPATH": GCONV_PARENT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, timeout=timeout,
                          capture_output=True, text=True, cwd=GCONV_PARENT)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def reference(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    pair = lambda v: tuple(v) if isinstance(v, tuple) else (v, v)
    ph, pw = pair(padding)
    return conv2d_reference(x, w, b, pair(stride), (ph, ph, pw, pw), pair(dilation), groups)


def direct_reference(x, w, b, stride, pads, dilation, groups):
    """A convolution by definition, output pixel by output pixel and tap by tap, in Python
    integers: independent of the padded-array reference and of WindowGather, and fine for
    any stride or dilation (it touches only the taps inside the input)."""
    N, C, H, W = x.shape
    C_out, CG, KH, KW = w.shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = stride, dilation, pads
    OH = (H + pt + pb - dh * (KH - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (KW - 1) - 1) // sw + 1
    M = C_out // groups
    y = np.zeros((N, C_out, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            for kh in range(KH):
                ih = oh * sh - pt + kh * dh
                if not 0 <= ih < H:
                    continue
                for kw in range(KW):
                    iw = ow * sw - pl + kw * dw
                    if 0 <= iw < W:
                        for g in range(groups):
                            xs = x[:, g * CG:(g + 1) * CG, ih, iw].astype(np.float64)
                            ws = w[g * M:(g + 1) * M, :, kh, kw].astype(np.float64)
                            y[:, g * M:(g + 1) * M, oh, ow] += xs @ ws.T
    if b is not None:
        y += b[None, :, None, None]
    return y


def tol(y, K):
    return 16 * np.finfo(y.dtype).eps * K


# -- 1, 2: huge strides -------------------------------------------------------------------
def test_the_strides_that_crashed_or_hung_now_compute_in_a_child():
    done = run_child("""
        import numpy as np, gconv
        from gconv._reference import conv2d_reference
        ones = lambda *s: np.ones(s, np.float32)
        y = gconv.conv2d(ones(1, 4, 11, 16), ones(2, 2, 2, 2), stride=2**63 - 1, padding=3,
                         dilation=2, groups=2)                          # was SIGSEGV
        print(y.shape, float(y.sum()))
        x = np.arange(4 * 9 * 9, dtype=np.float32).reshape(1, 4, 9, 9)
        w = np.arange(36, dtype=np.float32).reshape(4, 1, 3, 3)
        for s in (2**62, 2**58):                                        # SIGFPE; a hang
            y = gconv.conv2d(x, w, stride=s, padding=3, dilation=2, groups=4)
            r = conv2d_reference(x, w, None, (s, s), (3, 3, 3, 3), (2, 2), 4)
            print(y.shape, bool(np.array_equal(y, r)))
        """)
    assert done.returncode == 0, done.stderr
    # stride past everything: one window at the top-left, which reads only the padding
    # and row/column 1 of the input (3 - 3 + 2*1 = ... taps at -3 and -1: all padding)
    assert done.stdout.split("\n")[:3] == ["(1, 2, 1, 1) 0.0", "(1, 4, 1, 1) True",
                                          "(1, 4, 1, 1) True"]


def test_a_stride_far_beyond_the_input_takes_little_time_and_memory():
    # 4096 took 8 s and 3.4 GB; 16384 raised MemoryError (the kernels' phase planes grew
    # with the square of the stride)
    done = run_child("""
        import resource, time, numpy as np, gconv
        from gconv._reference import conv2d_reference
        rng = np.random.default_rng(0)
        x = rng.random((1, 3, 32, 32)).astype(np.float32)
        w = rng.random((8, 3, 3, 3)).astype(np.float32)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        for s in (4096, 16384, 2**27, 2**40):
            y = gconv.conv2d(x, w, stride=s, padding=1)
            r = conv2d_reference(x, w, None, (s, s), (1, 1, 1, 1), (1, 1), 1)
            assert y.shape == (1, 8, 1, 1) and np.allclose(y, r, atol=1e-5), s
        print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """)
    assert done.returncode == 0, done.stderr
    seconds, grown_kib = map(float, done.stdout.split())
    assert seconds < 5, f"four huge-stride calls took {seconds:.1f} s"
    assert grown_kib < 64 * 1024, f"peak memory grew by {grown_kib / 1024:.0f} MiB"


# strides above WindowGather.GATHER_MIN_STRIDE, on every path and padding form
GATHERED = [
    dict(x=(2, 6, 40, 37), w=(12, 3, 3, 2), stride=9, padding=1, groups=2),
    dict(x=(1, 4, 50, 30), w=(8, 1, 3, 3), stride=(11, 1), padding=(2, 1), dilation=(2, 1),
         groups=4),
    dict(x=(1, 4, 50, 30), w=(4, 1, 5, 5), stride=(2, 13), padding=(0, 3), dilation=2,
         groups=4),
    dict(x=(3, 8, 33, 33), w=(16, 8, 1, 1), stride=10),
    dict(x=(1, 3, 64, 64), w=(5, 3, 4, 4), stride=20, padding=((3, 0), (1, 5))),
    dict(x=(2, 2, 12, 12), w=(2, 1, 2, 2), stride=100, padding=7, groups=2),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("args", GATHERED, ids=lambda a: f"x{a['x']}-w{a['w']}-s{a['stride']}")
def test_gathered_strides_match_the_reference_on_every_path(args, dtype):
    args = dict(args)
    x, w = rand(*args.pop("x"), dtype=dtype), rand(*args.pop("w"), dtype=dtype)
    b = rand(w.shape[0], dtype=dtype)
    padding = args.get("padding", 0)
    cp = _conv._call_plan(x, w, b, args["stride"], padding, args.get("dilation", 1),
                          args.get("groups", 1), None, "zeros", "NCHW", "auto")
    assert cp.gather is not None
    stride, dilation = _pair(args["stride"]), _pair(args.get("dilation", 1))
    pads = gconv._validation.normalize_padding(padding, *x.shape[2:], *w.shape[2:], stride,
                                               dilation)
    want = direct_reference(x, w, b, stride, pads, dilation, args.get("groups", 1)).astype(dtype)
    K = w.shape[1] * w.shape[2] * w.shape[3]
    for algorithm in ("auto", "general", "depthwise"):
        if algorithm == "depthwise" and w.shape[1] != 1:
            continue
        y = gconv.conv2d(x, w, b, **args, algorithm=algorithm)
        np.testing.assert_allclose(y, want, rtol=0, atol=tol(y, K))
    # the layer, NHWC, a fused activation and a non-zero padding mode take the same route
    layer = gconv.Conv2d(x.shape[1], w.shape[0], w.shape[2:], **args, dtype=dtype,
                         activation="relu")
    layer.weight, layer.bias = w, b
    np.testing.assert_allclose(layer(x), np.maximum(want, 0), rtol=0, atol=tol(want, K))
    nhwc = gconv.conv2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w, b, **args,
                        layout="NHWC")
    np.testing.assert_allclose(nhwc.transpose(0, 3, 1, 2), want, rtol=0, atol=tol(want, K))
    if isinstance(padding, int) and padding:
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="edge")
        y = gconv.conv2d(x, w, b, **args, padding_mode="replicate")
        r = gconv.conv2d(xp, w, b, **{**args, "padding": 0}, algorithm="reference")
        np.testing.assert_allclose(y, r, rtol=0, atol=tol(r, K))


def test_real_strides_keep_the_kernels_own_path():
    x, w = rand(1, 8, 32, 32), rand(8, 8, 1, 1)
    for s in (2, 4, 8):
        cp = _conv._call_plan(x, w, None, s, 0, 1, 1, None, "zeros", "NCHW", "auto")
        assert cp.gather is None, s


def test_conv1d_with_a_huge_stride():
    x, w = rand(2, 4, 100), rand(6, 2, 5)
    y = gconv.conv1d(x, w, stride=2**50, padding=2, groups=2)
    r = direct_reference(x[:, :, None], w[:, :, None], None, (1, 2**50), (0, 0, 2, 2), (1, 1), 2)
    np.testing.assert_allclose(y, r[:, :, 0], rtol=0, atol=tol(y, 10))


def test_a_huge_dilation_of_a_1x1_kernel_is_no_dilation():
    x, w = rand(1, 4, 8, 8), rand(2, 4, 1, 1)
    np.testing.assert_array_equal(gconv.conv2d(x, w, dilation=2**62), gconv.conv2d(x, w))


# -- 7: integers out of int64 and outputs no array can hold --------------------------------
@pytest.mark.parametrize("kwargs", [dict(stride=2**63), dict(padding=10**20),
                                    dict(dilation=2**64), dict(groups=2**63),
                                    dict(stride=np.uint64(2**64 - 1)), dict(padding=(1, 2**70)),
                                    dict(padding=((0, 2**63), (0, 0))), dict(stride=-2**64)])
def test_integers_beyond_int64_are_a_value_error(kwargs):
    x, w = np.ones((1, 4, 8, 8), np.float32), np.ones((2, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="64-bit"):
        gconv.conv2d(x, w, **kwargs)


@pytest.mark.parametrize("N", [0, 1])
def test_an_output_no_array_can_hold_is_a_value_error(N):
    x, w = np.ones((N, 4, 8, 8), np.float32), np.ones((2, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="more elements than an array can hold"):
        gconv.conv2d(x, w, padding=2**40)
    with pytest.raises(ValueError, match="more elements than an array can hold"):
        gconv.conv2d_output_shape(x.shape, w.shape, padding=2**40)


# -- 3: the plan cache never accepts what validation refuses --------------------------------
@pytest.mark.parametrize("name", ["stride", "dilation", "groups"])
@pytest.mark.parametrize("hostile", [1.0, True, np.True_, np.float64(1), 2.0, np.float64(2)],
                         ids=repr)
def test_a_refused_scalar_stays_refused_after_its_int_twin_ran(name, hostile):
    value = int(hostile)
    x, w = rand(1, 4, 9, 9), rand(4, 4 // value if name == "groups" else 4, 3, 3)
    kwargs = {name: value}
    gconv.conv2d(x, w, **kwargs)          # caches the int signature
    gconv.conv2d(x, w, **kwargs)
    with pytest.raises(TypeError, match=f"{name} must be an integer"):
        gconv.conv2d(x, w, **{name: hostile})
    with pytest.raises(TypeError, match=f"{name} must be an integer"):
        gconv.conv2d(x, w, **{name: hostile})


def test_refused_activations_stay_refused_after_their_look_alikes_ran():
    x, w = rand(1, 4, 9, 9), rand(4, 4, 3, 3)
    layer = gconv.Conv2d(4, 4, 3, activation="relu", rng=0)
    layer(x)
    gconv.conv2d(x, layer.weight, layer.bias, activation=layer.activation)
    with pytest.raises(ValueError, match="activation must be"):   # a plain tuple equal to it
        gconv.conv2d(x, layer.weight, layer.bias, activation=tuple(layer.activation))
    gconv.conv2d(x, w, activation=("clamp", 0, 1))
    with pytest.raises(TypeError, match="clamp max must be a real number"):
        gconv.conv2d(x, w, activation=("clamp", 0, np.True_))
    # torch.clamp takes a bool bound as 0 or 1, and so does gconv, with or without a cache
    np.testing.assert_array_equal(gconv.conv2d(x, w, activation=("clamp", 0, True)),
                                  gconv.conv2d(x, w, activation=("clamp", 0, 1)))


def test_numpy_ints_are_taken_and_give_the_int_result():
    x, w = rand(2, 4, 11, 11), rand(8, 2, 3, 3)
    want = gconv.conv2d(x, w, stride=2, padding=1, dilation=1, groups=2)
    got = gconv.conv2d(x, w, stride=np.int64(2), padding=np.int32(1), dilation=np.uint8(1),
                       groups=np.int16(2))
    np.testing.assert_array_equal(got, want)


# -- 8: torch's argument forms --------------------------------------------------------------
def test_one_element_tuples_and_bools_inside_tuples_are_taken_as_torch_takes_them():
    x, w = rand(1, 4, 9, 9), rand(6, 4, 3, 3)
    want = gconv.conv2d(x, w, stride=2, padding=1, dilation=1)
    np.testing.assert_array_equal(gconv.conv2d(x, w, stride=(2,), padding=[1], dilation=(1,)),
                                  want)
    np.testing.assert_array_equal(gconv.conv2d(x, w, stride=2, padding=(1, True),
                                               dilation=(True, 1)), want)
    assert gconv.Conv2d(4, 6, 3, stride=(2,)).stride == (2, 2)
    assert gconv.conv2d_output_shape(x.shape, w.shape, stride=(2,), padding=(1,)) == want.shape


@pytest.mark.parametrize("kwargs, error", [
    (dict(stride=(np.True_, 1)), TypeError), (dict(padding=(1.0, 1)), TypeError),
    (dict(stride=()), ValueError), (dict(dilation=(1, 1, 1)), ValueError),
    (dict(padding=(1, None)), TypeError)])
def test_tuples_torch_refuses_are_refused(kwargs, error):
    x, w = rand(1, 4, 9, 9), rand(6, 4, 3, 3)
    with pytest.raises(error):
        gconv.conv2d(x, w, **kwargs)


def test_zero_input_channels_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"non-empty kernel \(C_in / groups >= 1\)"):
        gconv.conv2d(np.ones((1, 0, 8, 8), np.float32), np.ones((2, 0, 3, 3), np.float32))


# -- 4: NaN through the fused activations, as torch ----------------------------------------
PATHS = {"depthwise": ((2, 16, 12, 12), (16, 1, 3, 3), 16),
         "pointwise": ((2, 16, 12, 12), (24, 16, 1, 1), 1),
         "general": ((2, 16, 12, 12), (24, 4, 3, 3), 4)}
NAN_ACTIVATIONS = ["relu", "relu6", ("clamp", 0, 6), ("clamp", -1.0, 0.5), ("clamp", 2, 1),
                   "hardswish", ("leaky_relu", 0.1), "silu", "sigmoid", "tanh"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", NAN_ACTIVATIONS, ids=str)
@pytest.mark.parametrize("path", PATHS)
def test_nan_and_inf_in_the_input_come_out_as_torch_gives_them(path, activation, dtype):
    xs, ws, groups = PATHS[path]
    x, w = rand(*xs, dtype=dtype), rand(*ws, dtype=dtype)
    x[0, :, 3, 4] = np.nan
    x[1, :, 7, 2] = np.inf
    x[1, :, 0, 0] = -np.inf
    pad = ws[2] // 2
    act = gconv._activation.parse_activation(activation)
    want = gconv.conv2d(x, w, padding=pad, groups=groups, algorithm="reference")
    apply_activation(want, act.name, act.alpha, act.lo, act.hi)
    y = gconv.conv2d(x, w, padding=pad, groups=groups, activation=activation, algorithm=path)
    assert np.isnan(want).any()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=tol(y, w[0].size), equal_nan=True)


@pytest.mark.parametrize("bounds", [(np.nan, 1.0), (0.0, np.nan), (np.nan, np.nan)])
@pytest.mark.parametrize("path", PATHS)
def test_a_clamp_with_a_nan_bound_is_nan_everywhere(path, bounds):
    xs, ws, groups = PATHS[path]
    x, w = rand(*xs), rand(*ws)
    y = gconv.conv2d(x, w, groups=groups, activation=("clamp", *bounds), algorithm=path)
    assert np.isnan(y).all()
    layer = gconv.Conv2d(xs[1], ws[0], ws[2], groups=groups, activation=("clamp", *bounds))
    assert np.isnan(layer(x)).all() and np.isnan(layer(x)).all()    # the lean path too


def test_a_clamp_with_min_above_max_gives_max_as_torch():
    x, w = rand(1, 4, 9, 9), rand(4, 4, 3, 3)
    np.testing.assert_array_equal(gconv.conv2d(x, w, activation=("clamp", 2, 1)),
                                  np.ones((1, 4, 7, 7), np.float32))


def test_nan_activations_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w = rand(1, 8, 10, 10), rand(8, 1, 3, 3)
    x[0, :, 5, 5] = np.nan
    t = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1, groups=8)
    for activation, f in [("relu", torch.relu), ("relu6", F.relu6),
                          (("clamp", 0, 6), lambda v: torch.clamp(v, 0, 6)),
                          (("clamp", float("nan"), 6), lambda v: torch.clamp(v, float("nan"), 6)),
                          (("clamp", 1, 0), lambda v: torch.clamp(v, 1, 0))]:
        y = gconv.conv2d(x, w, padding=1, groups=8, activation=activation)
        np.testing.assert_allclose(y, f(t).numpy(), rtol=1e-5, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("dilation, padding", [((2**32, 1), "same_upper"), ((1, 2**40), "same"),
                                               (500, 1000), ((3, 200), (5, 300))])
def test_a_dilation_far_beyond_the_input_is_gathered_and_right(dilation, padding):
    x, w = rand(1, 3, 3, 4), rand(3, 3, 5, 2)
    y = gconv.conv2d(x, w, padding=padding, dilation=dilation)
    cp = _conv._call_plan(x, w, None, 1, padding, dilation, 1, None, "zeros", "NCHW", "auto")
    assert cp.gather is not None
    pads = gconv._validation.normalize_padding(padding, 3, 4, 5, 2, (1, 1), _pair(dilation))
    r = direct_reference(x, w, None, (1, 1), pads, _pair(dilation), 1)
    assert y.shape == r.shape
    np.testing.assert_allclose(y, r, rtol=0, atol=tol(y, 30))


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)
