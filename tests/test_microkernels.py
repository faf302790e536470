"""Every micro-kernel alone against its plain C twin (gconv/src/*/twins.h).

The list comes from the compiled module (``_kernels.microkernels``): GEMM's tile tables
(GEMM_UKR_LIST, GEMM_UKRC_LIST), the depthwise kernel tables (row, direct, plane) and the
lanes modes' register tiles (3x3, and any kernel), for every ISA this CPU runs and both dtypes, so a kernel is tested
as soon as it is listed. Each runs on random arrays through ``_kernels.run_microkernel``
(the argument layouts are in src/<kind>/microkernel_test.h), and so does its twin: a
scalar loop with the same contract that reduces every output in the kernel's order (one
fused multiply-add per step where the ISA's code fuses them). The results must agree
bitwise, over the whole output buffer: what the kernel must not write is checked by
sentinels around and inside it. The twins themselves are checked against NumPy at the end.
"""
import itertools

import numpy as np
import pytest

import gconv
from gconv import _kernels
from gconv._reference import conv2d_reference

ISAS = gconv.available_isas()
DTYPES = (np.float32, np.float64)
SENTINEL = 1234.5
# the epilogue's activation codes (src/common/problem.h) and (alpha, lo, hi)
EPILOGUES = [(0, (0.0, 0.0, 0.0)), (7, (0.0, 0.0, 0.0)), (4, (0.0, -0.4, 0.5)),
             (3, (0.1, 0.0, 0.0))]


def _kernels_listed():
    for isa, dtype in itertools.product(ISAS, DTYPES):
        level = _kernels.ISA_NAMES.index(isa)
        for family, name, shape in _kernels.microkernels(level, dtype):
            yield pytest.param(level, dtype, family, name, shape,
                               id=f"{isa}-{np.dtype(dtype).name}-{family}-{name}")


class Runner:
    """Runs one micro-kernel and its twin on copies of the same output buffer and checks
    that the two buffers come out identical."""

    def __init__(self, level, dtype, family, name):
        self.level, self.dtype, self.family, self.name = level, dtype, family, name
        self.rng = np.random.default_rng(abs(hash((level, family, name))) % 2**32)
        self.calls = 0

    def rand(self, *shape):
        return self.rng.uniform(-1, 1, shape).astype(self.dtype)

    def check(self, out_size, pad=0, out_init=None, **kw):
        """out: a buffer of out_size elements (pre-filled from out_init, else sentinels)
        with `pad` sentinels before and after; kernel and twin must leave equal buffers."""
        bufs = []
        for twin in (False, True):
            buf = np.full(out_size + 2 * pad, SENTINEL, self.dtype)
            if out_init is not None:
                buf[pad:pad + out_size] = out_init
            _kernels.run_microkernel(self.family, self.name, self.level, self.dtype,
                                     buf[pad:pad + out_size], twin=twin, **kw)
            bufs.append(buf)
        kernel, twin = bufs
        where = np.flatnonzero(~((kernel == twin) | (np.isnan(kernel) & np.isnan(twin))))
        assert where.size == 0, (f"{self.family} {self.name}: {where.size} elements differ, "
                                 f"first at {where[0] - pad}: kernel {kernel[where[0]]!r}, "
                                 f"twin {twin[where[0]]!r}; ints={kw.get('ints')}")
        assert np.all(kernel[:pad] == SENTINEL) and np.all(kernel[pad + out_size:] == SENTINEL)
        self.calls += 1
        return kernel[pad:pad + out_size]


# -- GEMM --------------------------------------------------------------------------------------
def _offsets(rng, K, width):
    """boff: rows of B `width` apart plus a little, in a scrambled order."""
    offs = np.arange(K, dtype=np.int64) * (width + 3) + rng.integers(0, 3, K)
    return rng.permutation(offs), int(offs.max()) + width + 1


def check_gemm_ukr(run, shape):
    MR, NV, VLEN, masked = shape
    NR = NV * VLEN
    for K, m, n, bias, accumulate in itertools.product(
            (1, 7, 33), sorted({MR, max(1, MR - 1)}), sorted({NR, NR - 1, 1, VLEN + 1} - {0}),
            (False, True), (0, 1)):
        if n > NR:
            continue
        offs, b_size = _offsets(run.rng, K, NR)
        ldc = NR + 5
        run.check(MR * ldc, pad=9, out_init=run.rand(MR * ldc), x=run.rand(b_size),
                  w=run.rand(K * MR), offs=offs, bias=run.rand(MR) if bias else None,
                  ints=(K, ldc, m, n, accumulate, 0))
    if not masked:
        with pytest.raises(ValueError, match="declines"):
            run.check(NR, x=run.rand(NR), w=run.rand(MR), offs=np.zeros(1, np.int64),
                      ints=(1, NR, 1, NR, 0, 1, 0, VLEN, VLEN, 1))
        return
    # a wide map: NR wide pixels of PW-wide rows into OW-wide output rows (AVX-512)
    for OW, extra, rows, q0, accumulate, m in itertools.product(
            (VLEN, VLEN + 3, 2 * VLEN + 1), (0, 2), (1, 2, 5), (0, 3, VLEN + 1), (0, 1),
            sorted({MR, max(1, MR - 2)})):
        PW, K = OW + extra, 5
        offs, b_size = _offsets(run.rng, K, NR)
        ldc = rows * OW + 4
        run.check(MR * ldc, pad=7, out_init=run.rand(MR * ldc), x=run.rand(b_size),
                  w=run.rand(K * MR), offs=offs, bias=run.rand(MR),
                  ints=(K, ldc, m, NR, accumulate, 1, q0, PW, OW, rows))


def check_gemm_ukrc(run, shape):
    MP, NV, VLEN, _ = shape
    NR = NV * VLEN
    for K, bias in itertools.product((1, 9, 40), (False, True)):
        offs, b_size = _offsets(run.rng, K, MP)
        run.check(MP * NR, pad=5, x=run.rand(b_size), w=run.rand(K * NR), offs=offs,
                  bias=run.rand(NR) if bias else None, ints=(K,))


# -- depthwise ---------------------------------------------------------------------------------
# geometries (KH, KW, SH, SW, DH, DW) for the generic kernels, which take any
GENERIC_ROW = [(3, 4, 1, 2, 2, 1), (2, 5, 3, 1, 1, 2), (1, 1, 1, 1, 1, 1), (3, 3, 2, 2, 1, 1)]
GENERIC_PLANE = [(3, 5, 1, 1, 1, 1), (2, 3, 1, 1, 2, 1), (5, 5, 1, 1, 2, 2)]


def _geometries(shape, generic_list):
    kid, mm, generic, _ = shape
    if generic:
        return generic_list
    _, k, s, d = _kernels.DW_KERNELS[kid]
    return [(k, k, s, s, d, d)]


def _epilogue(run, i):
    return EPILOGUES[i % len(EPILOGUES)]


def check_dw_rows(run, shape, vlen, direct):
    kid, mm, _, _ = shape
    widths = (vlen, 2 * vlen + 5, 4 * vlen + 1) if direct else \
        (3, vlen, 2 * vlen + vlen // 4 + 1, 5 * vlen + vlen - 1)
    cases = itertools.product(_geometries(shape, GENERIC_ROW), widths, (1, 3, 9, 11, 14),
                              (0, 1, 2))
    for i, ((KH, KW, SH, SW, DH, DW), OW, rows, pad) in enumerate(cases):
        rows_in = (rows - 1) * SH + (KH - 1) * DH + 1 + i % 2
        span = (OW - 1) * SW + (KW - 1) * DW + 1
        if direct:           # the input row is read in place; pad: left padding, right = i % 3
            PL, cols = pad, span - pad - i % 3
            if cols < 1:
                continue
        else:                # x: the padded rows, any width that covers the taps
            PL, cols = 0, span + pad
        act, reals = _epilogue(run, i)
        size = mm * rows * OW
        run.check(size, pad=11, x=run.rand(rows_in * cols), w=run.rand(mm * KH * KW),
                  bias=run.rand(mm) if i % 3 else None,
                  residual=run.rand(size) if i % 4 == 1 else None,
                  ints=(rows, OW, KH, KW, SH, SW, DH, DW, rows_in, cols, PL, act), reals=reals)


def check_dw_plane(run, shape, vlen):
    kid, mm, _, _ = shape
    cases = itertools.product(_geometries(shape, GENERIC_PLANE),
                              sorted({1, 3, vlen - 1}), (1, 5, 9), (0, 1))
    for i, ((KH, KW, SH, SW, DH, DW), W, H, partial) in enumerate(cases):
        PT, PL = (KH - 1) * DH // 2, (KW - 1) * DW // 2 + i % 2
        PB = (KH - 1) * DH - PT + i % 3
        OH = H + PT + PB - (KH - 1) * DH
        plane = OH * W
        f0, f1 = (W, max(W + 1, plane - 2)) if partial and plane > W + 1 else (0, plane)
        act, reals = _epilogue(run, i)
        size = mm * plane
        run.check(size, pad=6, x=run.rand(H * W), w=run.rand(mm * KH * KW),
                  bias=run.rand(mm) if i % 3 else None,
                  residual=run.rand(size) if i % 4 == 1 else None,
                  ints=(H, W, OH, PT, PL, KH, KW, DH, DW, f0, f1, act), reals=reals)


def check_dw_lanes(run, shape):
    RB, NB, VLEN, _ = shape
    for bias in (False, True):
        run.check(RB * NB * VLEN, pad=4, x=run.rand((RB + 2) * (NB + 2) * VLEN),
                  w=run.rand(9 * VLEN), bias=run.rand(VLEN) if bias else None)


def check_dw_lanes_any(run, shape):
    RB, NB, VLEN, _ = shape
    for KK, bias in itertools.product((1, 4, 9, 25), (False, True)):
        # a grid of pixel vectors; taps anywhere in it (as dilations and phases put them),
        # rows of the tile rstep apart
        rstep = (NB + 7) * VLEN
        ng = (RB + 12) * rstep
        offs = run.rng.integers(0, ng - (RB - 1) * rstep - NB * VLEN, KK) // VLEN * VLEN
        run.check(RB * NB * VLEN, pad=4, x=run.rand(ng), w=run.rand(KK * VLEN),
                  offs=offs.astype(np.int64), bias=run.rand(VLEN) if bias else None,
                  ints=(KK, rstep, ng))


@pytest.mark.parametrize("level, dtype, family, name, shape", list(_kernels_listed()))
def test_microkernel_matches_its_twin_bitwise(level, dtype, family, name, shape):
    run = Runner(level, dtype, family, name)
    vlen = (64 if level == 2 else 32 if level == 1 else 16) // np.dtype(dtype).itemsize
    if family == "gemm.ukr":
        check_gemm_ukr(run, shape)
    elif family == "gemm.ukrc":
        check_gemm_ukrc(run, shape)
    elif family in ("dw.row", "dw.direct"):
        check_dw_rows(run, shape, vlen, direct=family == "dw.direct")
    elif family == "dw.plane":
        check_dw_plane(run, shape, vlen)
    elif family == "dw.lanes":
        check_dw_lanes(run, shape)
    elif family == "dw.lanes_any":
        check_dw_lanes_any(run, shape)
    else:
        pytest.fail(f"no test for micro-kernel family {family!r}: add a check_ function")
    assert run.calls > 0


def test_every_kernel_family_is_listed_on_the_best_isa():
    level = _kernels.cpu_max_isa()
    families = {f for f, _, _ in _kernels.microkernels(level, np.float32)}
    assert {"gemm.ukr", "gemm.ukrc", "dw.row", "dw.plane", "dw.lanes_any"} <= families
    if level >= 1:
        assert {"dw.direct", "dw.lanes"} <= families


def test_a_kernel_declines_arguments_it_cannot_take():
    level = _kernels.cpu_max_isa()
    name = next(n for f, n, _ in _kernels.microkernels(level, np.float32) if f == "gemm.ukr")
    out = np.zeros(64, np.float32)
    with pytest.raises(ValueError, match="declines"):       # m = 0 rows
        _kernels.run_microkernel("gemm.ukr", name, level, np.float32, out, x=out, w=out,
                                 offs=np.zeros(1, np.int64), ints=(1, 8, 0, 1, 0, 0))
    with pytest.raises(ValueError, match="no gemm.ukr"):
        _kernels.run_microkernel("gemm.ukr", "99x99", level, np.float32, out)
    with pytest.raises(TypeError, match="float32"):
        _kernels.run_microkernel("gemm.ukr", name, level, np.float32, out,
                                 x=np.zeros(8, np.float64))


# -- the twins themselves, against NumPy ---------------------------------------------------------
def test_gemm_twins_compute_the_product():
    level, dtype = _kernels.cpu_max_isa(), np.float64
    rng = np.random.default_rng(1)
    (_, name, (MR, NV, VLEN, _)), = [k for k in _kernels.microkernels(level, dtype)
                                      if k[0] == "gemm.ukr"][:1]
    NR, K = NV * VLEN, 6
    A, B = rng.standard_normal((K, MR)), rng.standard_normal((K, NR + 2))
    bias = rng.standard_normal(MR)
    C = np.zeros(MR * NR)
    _kernels.run_microkernel("gemm.ukr", name, level, dtype, C, x=B.ravel(), w=A.ravel(),
                             offs=np.arange(K, dtype=np.int64) * (NR + 2), bias=bias,
                             ints=(K, NR, MR, NR, 0, 0), twin=True)
    np.testing.assert_allclose(C.reshape(MR, NR), A.T @ B[:, :NR] + bias[:, None], rtol=1e-12)


def test_depthwise_twins_compute_the_convolution():
    level, dtype = _kernels.cpu_max_isa(), np.float64
    rng = np.random.default_rng(2)
    H, W, OH, OW, mm = 9, 7, 4, 6, 2
    x = rng.standard_normal((H, W))
    w = rng.standard_normal((mm, 1, 3, 2))
    out = np.zeros(mm * OH * OW)
    _kernels.run_microkernel("dw.row", "generic m2", level, dtype, out, x=x.ravel(),
                             w=w.ravel(), ints=(OH, OW, 3, 2, 2, 1, 1, 1, H, W, 0, 0),
                             twin=True)
    expected = conv2d_reference(np.broadcast_to(x, (1, 1, H, W)), w, None, (2, 1), (0,) * 4,
                                (1, 1), 1)[0]
    np.testing.assert_allclose(out.reshape(mm, OH, OW), expected[:, :OH, :OW], rtol=1e-12)
