"""The depthwise kernels (algorithm='depthwise', gconv/src/dwconv/) against the NumPy
reference, on every SIMD variant this CPU runs and both dtypes.

The cases reach each code path of the kernels: the unrolled 3x3/5x5/7x7 kernels at
stride 1 and 2 (and 3x3 at dilation 2), the generic kernel (non-square kernels, other
strides and dilations), depth multipliers 1..3 (the paired-channel loop and its odd
remainder), row mode, plane mode (stride 1 with OW == W narrower than a vector) and lanes
mode (3x3 stride 1 on small planes, channels in the vector lanes), rows
shorter than a vector, ragged row ends, input smaller than the kernel, sub-blocks, group
blocks and row splits across threads, every fused activation and the residual.
"""
import itertools

import numpy as np
import pytest

import gconv
from gconv import _dispatch, _kernels
from gconv._reference import apply_activation, conv2d_reference
from gconv._validation import build_problem

ISAS = gconv.available_isas()
DTYPES = (np.float32, np.float64)
# kernel ids of src/dwconv/params.h (enum DW_K_*), read from the module: "generic", then
# (k, stride, dilation)
KERNEL_IDS = {(name if k == 0 else (k, s, d)): i
              for i, (name, k, s, d) in enumerate(_kernels.DW_KERNELS)}


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _pads(padding):
    """(top, bottom, left, right) from an int, (h, w) or ((t, b), (l, r)), worked out here."""
    if isinstance(padding, (tuple, list)) and isinstance(padding[0], (tuple, list)):
        (t, b), (l, r) = padding
        return (t, b, l, r)
    ph, pw = _pair(padding)
    return (ph, ph, pw, pw)


def case(N, C, H, W, k, stride=1, padding=0, dilation=1, mult=1, bias=True, note=""):
    kh, kw = _pair(k)
    return pytest.param(dict(N=N, C=C, H=H, W=W, KH=kh, KW=kw, stride=stride,
                             padding=padding, dilation=dilation, mult=mult, bias=bias),
                        id=f"{N}x{C}x{H}x{W}_k{kh}x{kw}_s{stride}_p{padding}_d{dilation}"
                           f"_m{mult}{'' if bias else '_nobias'}{'_' + note if note else ''}")


CASES = [
    # the unrolled kernels, rows longer than a vector with ragged ends
    case(2, 3, 20, 37, 3, padding=1),
    case(1, 4, 19, 33, 3, stride=2, padding=1),
    case(1, 3, 21, 35, 3, padding=2, dilation=2),
    case(2, 2, 23, 40, 5, padding=2),
    case(1, 3, 25, 41, 5, stride=2, padding=2),
    case(1, 2, 26, 50, 7, padding=3),
    case(2, 2, 29, 47, 7, stride=2, padding=3),
    case(1, 2, 17, 17, 3, padding=0, note="valid"),
    case(1, 2, 18, 34, 3, padding=((0, 2), (3, 1)), note="asymmetric"),
    case(1, 2, 18, 34, 5, stride=2, padding=((2, 0), (0, 3)), note="asymmetric"),
    # depth multiplier: pairs of channels, and an odd one left over
    case(1, 3, 16, 36, 3, padding=1, mult=2),
    case(2, 2, 15, 33, 3, padding=1, mult=3),
    case(1, 2, 15, 35, 5, stride=2, padding=2, mult=2, bias=False),
    case(1, 2, 20, 40, 7, padding=3, mult=3),
    case(1, 2, 21, 38, 3, stride=(1, 2), padding=1, mult=2, note="generic"),
    # the generic kernel: non-square kernels, other strides and dilations
    case(1, 3, 14, 37, (3, 5), padding=(1, 2)),
    case(1, 2, 13, 40, (1, 7), padding=(0, 3)),
    case(1, 2, 22, 19, (7, 1), padding=(3, 0)),
    case(2, 2, 17, 35, 2, stride=3, padding=1),
    case(1, 2, 23, 41, 4, stride=(2, 3), padding=((2, 1), (0, 3)), dilation=(3, 2)),
    case(1, 2, 19, 34, 3, stride=3, dilation=3, padding=3),
    case(1, 3, 12, 38, 6, padding=((2, 3), (3, 2))),
    case(1, 2, 9, 21, 1),
    case(1, 2, 9, 21, 1, stride=2, padding=1),
    case(1, 2, 12, 33, 5, dilation=2, padding=4),
    # wide rows of the 3x3 kernels: read in place, the padding columns masked; the first
    # and last channel of the batch go through the padded copy
    case(1, 3, 9, 150, 3, padding=1, note="direct"),
    case(2, 2, 10, 130, 3, padding=((1, 2), (0, 2)), mult=3, note="direct"),
    case(1, 3, 8, 129, 3, padding=((0, 0), (2, 1)), mult=2, note="direct"),
    case(1, 3, 11, 300, 3, stride=2, padding=1, mult=2, note="direct"),
    case(2, 2, 7, 261, 3, stride=2, padding=((1, 1), (0, 1)), note="direct"),
    case(1, 3, 12, 140, 3, dilation=2, padding=2, note="direct"),
    # rows shorter than a vector (widths 1, 5, 7 ...); plane mode when OW == W
    case(1, 4, 7, 7, 3, padding=1, note="plane"),
    case(2, 3, 14, 14, 3, padding=1, mult=2, note="plane"),
    case(1, 3, 9, 5, 5, padding=2, note="plane"),
    case(1, 2, 11, 6, 7, padding=3, mult=3, note="plane"),
    case(1, 2, 10, 7, 3, padding=2, dilation=2, note="plane"),
    case(1, 2, 8, 9, (3, 5), padding=(1, 2), note="plane generic"),
    case(1, 3, 6, 1, 3, padding=1, note="width 1"),
    case(1, 3, 1, 1, 3, padding=1, note="1x1 input"),
    case(1, 3, 9, 5, 3, padding=0, note="narrow valid"),
    case(1, 2, 9, 17, 3, stride=2, padding=1, note="narrow s2"),
    case(1, 2, 9, 12, 7, stride=2, padding=3, mult=2, note="narrow s2"),
    # input smaller than the kernel, padding makes up the rest
    case(1, 2, 2, 3, 5, padding=2),
    case(1, 2, 3, 2, 7, padding=3, mult=2),
    case(1, 2, 4, 20, 7, stride=2, padding=3),
    case(2, 2, 2, 40, (5, 3), padding=(2, 1)),
    # empty batch
    case(0, 3, 8, 8, 3, padding=1),
    # tall images: several sub-blocks per channel
    case(1, 2, 300, 40, 3, padding=1, note="sub-blocks"),
    case(1, 1, 250, 100, 5, stride=2, padding=2, note="sub-blocks"),
    case(1, 2, 200, 30, (3, 2), stride=(2, 1), padding=(1, 0), note="sub-blocks generic"),
    # many small channels: several groups per task
    case(2, 64, 9, 20, 3, padding=1, mult=2, note="group blocks"),
    case(1, 200, 6, 6, 3, padding=1, note="group blocks plane"),
    # lanes mode (3x3, stride 1, same padding, small planes, >= VLEN channels): channels
    # in the vector lanes; channel counts that are / are not multiples of 16 and 8, plane
    # sizes that are not multiples of a vector (the last pixel block pulled back)
    case(1, 32, 7, 7, 3, padding=1, note="lanes"),
    case(2, 24, 7, 7, 3, padding=1, note="lanes"),
    case(1, 21, 14, 14, 3, padding=1, bias=False, note="lanes"),
    case(2, 48, 14, 14, 3, padding=1, note="lanes"),
    case(1, 19, 5, 5, 3, padding=1, note="lanes"),
    case(2, 17, 9, 11, 3, padding=1, bias=False, note="lanes"),
    case(1, 40, 13, 6, 3, padding=1, note="lanes"),
    case(1, 16, 4, 4, 3, padding=1, note="lanes one pixel block"),
    case(1, 18, 16, 16, 3, padding=1, note="lanes"),
    case(1, 33, 3, 3, 3, padding=1, note="lanes at VLEN 8"),
    case(3, 9, 2, 5, 3, padding=1, note="lanes at VLEN 8"),
    # lanes mode for any kernel (runtime taps, channels in the lanes, bands of rows):
    # generic shapes with channels to fill half a vector, small planes of the unrolled
    # sizes; channel counts that leave a partial block
    case(1, 24, 33, 33, 3, padding=6, dilation=6, note="lanes-any"),
    case(2, 17, 13, 11, (5, 3), stride=2, padding=(2, 1), dilation=(2, 1), note="lanes-any"),
    case(1, 40, 27, 27, (11, 9), stride=(2, 1), padding=(5, 4), note="lanes-any"),
    case(1, 32, 14, 14, 3, stride=3, padding=1, mult=3, note="lanes-any"),
    case(1, 20, 7, 7, 5, padding=2, mult=2, note="lanes-any small plane"),
    case(1, 16, 9, 9, 7, stride=2, padding=3, bias=False, note="lanes-any"),
    case(1, 48, 60, 61, (7, 5), stride=2, padding=3, note="lanes-any bands"),
    case(1, 9, 2, 3, 4, padding=((3, 0), (1, 2)), mult=4, note="lanes-any tiny"),
    case(2, 16, 1, 1, 1, note="lanes-any 1x1"),
]


def _check(cfg, dtype, isa, activation=None, residual=False, seed=0):
    rng = np.random.default_rng(seed)
    N, C, H, W, KH, KW = (cfg[k] for k in ("N", "C", "H", "W", "KH", "KW"))
    M = cfg["mult"]
    x = rng.uniform(-1, 1, (N, C, H, W))
    w = rng.uniform(-1, 1, (C * M, 1, KH, KW))
    b = rng.uniform(-1, 1, C * M) if cfg["bias"] else None
    pads = _pads(cfg["padding"])
    expected = conv2d_reference(x, w, b, _pair(cfg["stride"]), pads, _pair(cfg["dilation"]), C)
    r = None
    if residual:
        r = rng.uniform(-1, 1, expected.shape)
        expected = expected + r
    act = activation if isinstance(activation, (tuple, type(None))) else (activation,)
    if act is not None:
        name, *params = act
        alpha = params[0] if name == "leaky_relu" and params else 0.01
        lo, hi = (params if name == "clamp" else (0.0, 0.0))
        apply_activation(expected, name, alpha, lo, hi)
    gconv.set_isa(isa)
    got = gconv.conv2d(x.astype(dtype), w.astype(dtype), None if b is None else b.astype(dtype),
                       stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                       groups=C, activation=activation,
                       residual=None if r is None else r.astype(dtype), algorithm="depthwise")
    assert got.dtype == dtype and got.shape == expected.shape
    eps = np.finfo(dtype).eps
    # inputs are rounded to dtype before the kernel sees them: allow for that too
    atol = 16 * eps * (KH * KW + 2) + 4 * eps
    np.testing.assert_allclose(got, expected, rtol=4 * eps, atol=atol,
                               err_msg=f"isa={isa} dtype={np.dtype(dtype).name}")


@pytest.fixture(autouse=True)
def _restore_state():
    isa = gconv.get_isa()
    yield
    gconv.set_isa(isa)
    gconv.set_num_threads(None)


@pytest.mark.parametrize("cfg", CASES)
def test_matches_reference(cfg):
    for isa, dtype in itertools.product(ISAS, DTYPES):
        _check(cfg, dtype, isa)


ACTIVATIONS = ["relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "leaky_relu",
               ("leaky_relu", 0.2), ("clamp", -1, 1), ("clamp", -0.25, 0.5)]
EPILOGUE_CASES = [
    dict(N=1, C=3, H=11, W=37, KH=3, KW=3, stride=1, padding=1, dilation=1, mult=2, bias=True),
    dict(N=1, C=2, H=9, W=7, KH=5, KW=5, stride=1, padding=2, dilation=1, mult=1, bias=True),
    dict(N=2, C=2, H=13, W=29, KH=3, KW=3, stride=2, padding=1, dilation=1, mult=1, bias=False),
    dict(N=1, C=2, H=10, W=26, KH=2, KW=3, stride=1, padding=1, dilation=1, mult=3, bias=True),
    dict(N=2, C=20, H=7, W=7, KH=3, KW=3, stride=1, padding=1, dilation=1, mult=1, bias=True),
    dict(N=1, C=19, H=9, W=10, KH=4, KW=3, stride=(2, 1), padding=2, dilation=(1, 3),
         mult=2, bias=True),                                          # lanes-any
]


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("residual", [False, True], ids=["", "residual"])
def test_epilogue(activation, residual):
    """Residual and activation fused after the convolution (row, plane and lanes mode,
    generic)."""
    for cfg, isa, dtype in itertools.product(EPILOGUE_CASES, ISAS, DTYPES):
        _check(cfg, dtype, isa, activation=activation, residual=residual, seed=1)


def _grid_cases(n, seed):
    """n depthwise problems drawn over the issue's grid: kernels 1-11 (square and not),
    dilation 1-8, stride 1-3, multipliers 1-4, planes from 1x1 to wider than a vector row,
    channel counts below, at and past a vector (every mode and kernel is reached)."""
    import random
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        kh, kw = rng.randint(1, 11), rng.choice((None, rng.randint(1, 11)))
        kw = kh if kw is None else kw
        sh, sw = rng.randint(1, 3), rng.randint(1, 3)
        dh, dw = rng.choice((1, 1, 2, 3, 5, 8)), rng.choice((1, 1, 2, 4, 6, 8))
        H, W = rng.choice((1, 3, 7, 14, 19, 30)), rng.choice((1, 5, 7, 16, 23, 40))
        pt, pl = rng.randint(0, (kh - 1) * dh), rng.randint(0, (kw - 1) * dw)
        if H + 2 * pt < (kh - 1) * dh + 1 or W + 2 * pl < (kw - 1) * dw + 1:
            continue
        out.append(dict(N=rng.choice((1, 2)), C=rng.choice((3, 8, 16, 21, 40)), H=H, W=W,
                        KH=kh, KW=kw, stride=(sh, sw), padding=(pt, pl), dilation=(dh, dw),
                        mult=rng.randint(1, 4), bias=rng.random() < 0.8))
    return out


@pytest.mark.parametrize("cfg", _grid_cases(48, seed=16),
                         ids=lambda c: f"{c['C']}x{c['H']}x{c['W']}_k{c['KH']}x{c['KW']}_s"
                                       f"{c['stride']}_d{c['dilation']}_m{c['mult']}")
def test_grid_matches_reference_on_one_and_two_threads(cfg):
    """Every kernel path against the reference on the issue's grid, every ISA and dtype;
    one and two threads bitwise identical."""
    for isa, dtype in itertools.product(ISAS, DTYPES):
        _check(cfg, dtype, isa, seed=4)
        if gconv.openmp_enabled():
            rng = np.random.default_rng(5)
            x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(dtype)
            w = rng.standard_normal((cfg["C"] * cfg["mult"], 1, cfg["KH"], cfg["KW"])
                                    ).astype(dtype)
            kwargs = dict(stride=cfg["stride"], padding=cfg["padding"],
                          dilation=cfg["dilation"], groups=cfg["C"], algorithm="depthwise")
            outs = []
            for n in (1, 2):
                gconv.set_num_threads(n)
                outs.append(gconv.conv2d(x, w, None, **kwargs))
            np.testing.assert_array_equal(outs[0], outs[1])


def test_residual_without_activation():
    for cfg, isa, dtype in itertools.product(EPILOGUE_CASES, ISAS, DTYPES):
        _check(cfg, dtype, isa, residual=True, seed=2)


# Big enough (>= 1 MFLOP) that two threads really run, and split so tasks differ:
# few channels -> output rows are split between tasks; many -> groups are.
THREAD_CASES = [
    dict(N=1, C=2, H=200, W=160, KH=3, KW=3, stride=1, padding=1, dilation=1, mult=1),
    dict(N=1, C=1, H=321, W=300, KH=5, KW=5, stride=2, padding=2, dilation=1, mult=2),
    dict(N=1, C=3, H=120, W=70, KH=7, KW=7, stride=1, padding=3, dilation=1, mult=1),
    dict(N=2, C=1, H=201, W=83, KH=3, KW=4, stride=(1, 2), padding=2, dilation=(2, 1), mult=3),
    dict(N=1, C=6, H=300, W=12, KH=7, KW=7, stride=1, padding=3, dilation=1, mult=1),  # plane
    dict(N=1, C=600, H=12, W=12, KH=3, KW=3, stride=1, padding=1, dilation=1, mult=1),  # plane
    dict(N=3, C=96, H=20, W=20, KH=3, KW=3, stride=1, padding=2, dilation=2, mult=2),
    dict(N=1, C=1200, H=7, W=7, KH=3, KW=3, stride=1, padding=1, dilation=1, mult=1),  # lanes
    dict(N=2, C=201, H=14, W=14, KH=3, KW=3, stride=1, padding=1, dilation=1, mult=1),  # lanes
    dict(N=1, C=64, H=90, W=90, KH=3, KW=3, stride=1, padding=4, dilation=4, mult=1),  # any
    dict(N=1, C=40, H=120, W=70, KH=7, KW=7, stride=2, padding=3, dilation=1, mult=2),  # any
    # input + output above 4 MiB: each thread takes runs of consecutive tasks
    dict(N=4, C=32, H=72, W=72, KH=3, KW=3, stride=1, padding=1, dilation=1, mult=1),
]


@pytest.mark.parametrize("cfg", THREAD_CASES, ids=lambda c: f"{c['N']}x{c['C']}x{c['H']}x{c['W']}_k{c['KH']}x{c['KW']}")
def test_bitwise_identical_across_thread_counts(cfg):
    if not gconv.openmp_enabled():
        pytest.skip("serial build: one thread only")
    rng = np.random.default_rng(3)
    N, C, H, W, KH, KW, M = (cfg[k] for k in ("N", "C", "H", "W", "KH", "KW", "mult"))
    kwargs = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                  groups=C, activation="silu", algorithm="depthwise")
    for isa, dtype in itertools.product(ISAS, DTYPES):
        gconv.set_isa(isa)
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        w = rng.standard_normal((C * M, 1, KH, KW)).astype(dtype)
        b = rng.standard_normal(C * M).astype(dtype)
        problem = build_problem(x, w, b, stride=kwargs["stride"], padding=kwargs["padding"],
                                dilation=kwargs["dilation"], groups=C)
        assert problem.flops >= 1_000_000, "small problems run on one thread whatever is set"
        tasks = {}
        outs = {}
        for n in (1, 2):
            gconv.set_num_threads(n)
            outs[n] = gconv.conv2d(x, w, b, **kwargs)
            tasks[n] = _dispatch.DEPTHWISE.make_plan(problem, _isa_level(isa), n).n_tasks
        assert tasks[2] >= 4, "the split should give both threads work"
        np.testing.assert_array_equal(outs[1], outs[2])


def _isa_level(name):
    return _kernels.ISA_NAMES.index(name)


def _blocking(N, C, H, W, k, stride=1, padding=0, dilation=1, mult=1, dtype=np.float32,
              isa=None, n_threads=1):
    x = np.empty((N, C, H, W), dtype)
    kh, kw = _pair(k)
    w = np.empty((C * mult, 1, kh, kw), dtype)
    problem = build_problem(x, w, None, stride=stride, padding=padding, dilation=dilation,
                            groups=C)
    level = _kernels.cpu_max_isa() if isa is None else _isa_level(isa)
    return _dispatch.DEPTHWISE.make_plan(problem, level, n_threads).blocking


@pytest.mark.parametrize("shape,kernel_id,plane,lanes", [
    ((1, 4, 30, 40, 3, 1, 1, 1), (3, 1, 1), False, False),
    ((1, 4, 30, 40, 3, 2, 1, 1), (3, 2, 1), False, False),
    ((1, 4, 30, 40, 3, 1, 2, 2), (3, 1, 2), False, False),
    ((1, 4, 30, 40, 5, 1, 2, 1), (5, 1, 1), False, False),
    ((1, 4, 30, 40, 5, 2, 2, 1), (5, 2, 1), False, False),
    ((1, 4, 30, 40, 7, 1, 3, 1), (7, 1, 1), False, False),
    ((1, 4, 30, 40, 7, 2, 3, 1), (7, 2, 1), False, False),
    ((1, 4, 30, 40, 4, 1, 1, 1), "generic", False, False),
    ((1, 4, 30, 40, 3, 3, 1, 1), "generic", False, False),
    ((1, 4, 7, 7, 3, 1, 1, 1), (3, 1, 1), True, False),     # fewer channels than a vector
    ((1, 4, 7, 7, 5, 1, 4, 2), "generic", True, False),
    ((1, 32, 12, 12, 3, 1, 1, 1), (3, 1, 1), False, True),
    ((1, 40, 14, 14, 3, 1, 1, 1), (3, 1, 1), False, True),
    ((1, 32, 30, 30, 3, 1, 1, 1), (3, 1, 1), False, False),  # lanes mode: planes <= 16x16
])
def test_kernel_selection(shape, kernel_id, plane, lanes):
    """The shapes the specialised kernels are for do get them (so the tests above that use
    these shapes exercise the unrolled code, not only the generic loop)."""
    N, C, H, W, k, s, p, d = shape
    blk = _blocking(N, C, H, W, k, s, p, d)
    assert blk["kernel_id"] == KERNEL_IDS[kernel_id]
    assert blk["kernel"] == _kernels.DW_KERNELS[blk["kernel_id"]][0]
    # lanes mode (channels in the vector lanes): AVX2 and AVX-512, >= VLEN channels
    lanes = lanes and blk["VLEN"] >= 8 and C >= blk["VLEN"]
    # plane mode needs rows narrower than a vector: 7 < VLEN on AVX2 and AVX-512
    plane = plane and W < blk["VLEN"]
    assert blk["mode"] == ("lanes" if lanes else "plane" if plane else "row")


@pytest.mark.parametrize("shape,any_mode", [
    ((1, 64, 33, 33, 3, 1, 6, 6), True),        # dilation 6: no unrolled kernel
    ((1, 64, 28, 28, (3, 7), 2, 1, 1), True),   # not square
    ((1, 64, 14, 14, 3, 3, 1, 1), True),        # stride 3
    ((1, 64, 7, 7, 5, 1, 2, 1), True),          # 5x5 on rows shorter than a vector
    ((1, 64, 56, 56, 7, 2, 3, 1), False),       # 7x7 stride 2: its unrolled row kernel
    ((1, 64, 56, 56, 3, 1, 1, 1), False),       # 3x3 on long rows: the unrolled row kernel
    ((1, 64, 56, 56, 5, 1, 2, 1), False),
    ((1, 2, 33, 33, 3, 1, 6, 6), False),        # two channels: the generic row kernel
    ((1, 32, 70, 112, (11, 5), 1, (5, 4), (5, 2)), True),   # few channels, long rows
    ((1, 64, 40, 120, 5, 1, 4, 2), True),
])
def test_lanes_any_selection(shape, any_mode):
    """Lanes mode for any kernel takes the shapes without an unrolled kernel (and small
    rows) when channels fill half a vector, but not few channels (at most two
    vectors' worth) on rows of 4 vectors or more; the row kernels keep the rest."""
    N, C, H, W, k, s, p, d = shape
    kw, pw, dw = _pair(k)[1], _pair(p)[1], _pair(d)[1]
    OW = (W + 2 * pw - dw * (kw - 1) - 1) // _pair(s)[1] + 1
    for isa in ISAS:
        blk = _blocking(N, C, H, W, k, s, p, d, isa=isa)
        vlen = blk["VLEN"]
        # the baseline ISA (SSE2) has no unrolled kernels: every shape is "generic" there
        expected = ((any_mode or isa == "generic") and 2 * C >= vlen
                    and not (C <= 2 * vlen and OW >= 4 * vlen))
        assert (blk["mode"] == "lanes-any") == expected, (isa, blk["mode"])


def test_calls_that_stream_hand_out_runs_of_tasks():
    """task_chunk: consecutive tasks per grab at 2 threads when input + output exceed 4 MiB
    (5.3 MB here); one task at a time in cache or on one thread."""
    assert _blocking(4, 32, 72, 72, 3, 1, 1, n_threads=2)["task_chunk"] > 1
    assert _blocking(4, 32, 72, 72, 3, 1, 1, n_threads=1)["task_chunk"] == 1
    assert _blocking(1, 32, 72, 72, 3, 1, 1, n_threads=2)["task_chunk"] == 1
    assert _blocking(4, 32, 14, 14, 3, 1, 1, n_threads=2)["task_chunk"] == 1   # lanes, cached


def test_scratch_stays_small():
    """Per-thread scratch is a few padded rows (or one small plane), never the input."""
    for isa, dtype in itertools.product(ISAS, DTYPES):
        for shape in [(1, 1, 2000, 2000, 7, 1, 3), (1, 1, 4000, 300, 3, 2, 1),
                      (1, 1, 3000, 7, 5, 1, 2), (1, 1, 500, 2000, (4, 6), 3, 2)]:
            N, C, H, W, k, s, p = shape
            blk = _blocking(N, C, H, W, k, s, p, dtype=dtype, isa=isa)
            input_bytes = H * W * np.dtype(dtype).itemsize
            assert blk["scratch_bytes"] <= max(256 * 1024, input_bytes // 16), (shape, blk)


@pytest.mark.parametrize("cfg", [
    dict(N=1, C=32, H=20, W=21, KH=3, KW=3, stride=1, padding=3, dilation=3, mult=1),
    dict(N=2, C=24, H=33, W=17, KH=5, KW=7, stride=(2, 3), padding=(4, 5), dilation=1, mult=2),
    dict(N=1, C=48, H=120, W=90, KH=7, KW=7, stride=2, padding=3, dilation=1, mult=1),
])
def test_lanes_any_padding_is_zero_whatever_ran_before(cfg):
    """Lanes mode for any kernel does not zero its scratch per call: each task zeroes the
    grid's padding. A call on NaN input (scratch left full of NaN, reused by the next
    call's allocation) must not leak into a call on finite input, on any ISA."""
    rng = np.random.default_rng(7)
    N, C, H, W, KH, KW, M = (cfg[k] for k in ("N", "C", "H", "W", "KH", "KW", "mult"))
    kwargs = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                  groups=C, algorithm="depthwise")
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((C * M, 1, KH, KW)).astype(np.float32)
    for isa in ISAS:
        gconv.set_isa(isa)
        for threads in (1, 2):
            gconv.set_num_threads(threads)
            clean = gconv.conv2d(x, w, None, **kwargs)
            assert np.isfinite(clean).all()
            gconv.conv2d(np.full_like(x, np.nan), w, None, **kwargs)
            again = gconv.conv2d(x, w, None, **kwargs)
            np.testing.assert_array_equal(again, clean)


@pytest.mark.parametrize("shape, dtype, auto", [
    ((1, 1, 40, 40, 64, 4, 2, 1), np.float32, "general"),     # stem, no unrolled 4x4
    ((2, 1, 40, 40, 16, 5, 2, 2), np.float32, "general"),     # 5x5: one channel at a time
    ((2, 1, 40, 40, 16, 5, 2, 2), np.float64, "general"),
    ((1, 2, 30, 30, 32, (3, 5), 1, 1), np.float32, "general"),
    ((1, 1, 40, 40, 64, 7, 1, 3), np.float32, "general"),
    ((1, 1, 40, 40, 32, 3, 2, 1), np.float32, "depthwise"),   # unrolled 3x3: pairs
    ((1, 3, 40, 40, 24, 3, 1, 1), np.float64, "depthwise"),
    ((1, 2, 30, 30, 8, 3, 2, 1), np.float64, "depthwise"),
    ((1, 2, 30, 30, 4, 5, 2, 2), np.float32, "depthwise"),    # few outputs per channel
    ((1, 8, 30, 30, 64, 5, 2, 2), np.float32, "depthwise"),   # channels enough for lanes
])
def test_auto_sends_few_channel_many_output_problems_to_the_gemm(shape, dtype, auto):
    """'auto' passes over depthwise for a few channels with many outputs each when the
    depthwise kind has no unrolled kernel (the GEMM vectorises over the outputs); a forced
    algorithm='depthwise' still runs it, and both agree with the reference."""
    N, C, H, W, C_out, k, s, p = shape
    rng = np.random.default_rng(2)
    kh, kw = _pair(k)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((C_out, 1, kh, kw)).astype(dtype)
    prob = build_problem(x, w, None, stride=s, padding=p, dilation=1, groups=C)
    assert _dispatch.select(prob).name == auto
    expected = conv2d_reference(x.astype(np.float64), w.astype(np.float64), None, _pair(s),
                                _pads(p), (1, 1), C)
    tol = 64 * np.finfo(dtype).eps * kh * kw
    for algorithm in ("auto", "depthwise"):
        got = gconv.conv2d(x, w, None, stride=s, padding=p, groups=C, algorithm=algorithm)
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
