"""Shared pieces of the test suite: the problem grid, array makers, tolerances.

The grid is written as `Case`s (the arguments of one conv2d call, with the padding exactly
as a caller would write it). Each case knows its own explicit (top, bottom, left, right)
pads, computed here from torch's and ONNX's rules rather than by gconv, so the reference
the kernels are compared with does not inherit a padding bug from the code under test.
"""
import os
import re
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest

# .ci/sanitize runs the suite under AddressSanitizer (GCONV_SANITIZE=1). OpenVINO cannot load
# there: its CPU plugin dlopens libtbbbind with RTLD_DEEPBIND, which the ASan runtime refuses
# (google/sanitizers#611), and a dying OpenVINO process once left the bench waiting on its
# pipe. So under ASan the suite runs as where OpenVINO is not installed (tests that need it
# skip as importorskip says; the bench leaves the peer out with its reason).
if os.environ.get("GCONV_SANITIZE") == "1":
    sys.modules["openvino"] = None

import gconv  # noqa: E402
from gconv import _dispatch
from gconv._reference import conv2d_reference
from gconv._validation import build_problem

# the implementations a caller can force (ALGORITHMS minus 'auto')
FORCEABLE = tuple(a for a in gconv.ALGORITHMS if a != "auto")
DTYPES = (np.float32, np.float64)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _same_pads(size, k, s, d, rule):
    """(begin, end) pads for one axis under torch's 'same' or ONNX's SAME_UPPER/LOWER."""
    if rule == "same":               # torch: stride 1, total d*(k-1), odd pixel at the end
        total = d * (k - 1)
        return total // 2, total - total // 2
    out = -(-size // s)              # ONNX: output ceil(size / stride)
    total = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
    small, big = total // 2, total - total // 2
    return (small, big) if rule == "same_upper" else (big, small)


@dataclass(frozen=True)
class Case:
    """One conv2d call: shapes plus stride/padding/dilation/groups as a caller writes them."""
    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    groups: int
    KH: int
    KW: int
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    bias: bool = True
    note: str = field(default="", compare=False)

    @property
    def x_shape(self):
        return (self.N, self.C_in, self.H, self.W)

    @property
    def w_shape(self):
        return (self.C_out, self.C_in // self.groups, self.KH, self.KW)

    @property
    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    def explicit_pads(self):
        """(top, bottom, left, right), worked out independently of gconv."""
        p = self.padding
        if isinstance(p, str):
            if p == "valid":
                return (0, 0, 0, 0)
            (sh, sw), (dh, dw) = _pair(self.stride), _pair(self.dilation)
            return (*_same_pads(self.H, self.KH, sh, dh, p), *_same_pads(self.W, self.KW, sw, dw, p))
        if isinstance(p, (tuple, list)) and isinstance(p[0], (tuple, list)):
            (t, b), (l, r) = p
            return (t, b, l, r)
        ph, pw = _pair(p)
        return (ph, ph, pw, pw)

    def output_shape(self):
        t, b, l, r = self.explicit_pads()
        (sh, sw), (dh, dw) = _pair(self.stride), _pair(self.dilation)
        OH = (self.H + t + b - dh * (self.KH - 1) - 1) // sh + 1
        OW = (self.W + l + r - dw * (self.KW - 1) - 1) // sw + 1
        return (self.N, self.C_out, OH, OW)

    def problem(self, dtype=np.float32):
        x = np.empty(self.x_shape, dtype)
        w = np.empty(self.w_shape, dtype)
        b = np.empty(self.C_out, dtype) if self.bias else None
        return build_problem(x, w, b, **self.kwargs)

    def arrays(self, dtype, seed=0, integer=True):
        """(x, w, b). Integer-valued data makes every fp32/fp64 sum exact, so results can be
        compared with ==; random floats exercise real rounding."""
        rng = np.random.default_rng(seed)
        if integer:
            x = rng.integers(-3, 4, self.x_shape).astype(dtype)
            w = rng.integers(-2, 3, self.w_shape).astype(dtype)
            b = rng.integers(-5, 6, self.C_out).astype(dtype) if self.bias else None
        else:
            x = rng.uniform(-1, 1, self.x_shape).astype(dtype)
            w = rng.uniform(-1, 1, self.w_shape).astype(dtype)
            b = rng.uniform(-1, 1, self.C_out).astype(dtype) if self.bias else None
        return x, w, b

    def reference(self, x, w, b):
        return conv2d_reference(x, w, b, _pair(self.stride), self.explicit_pads(),
                                _pair(self.dilation), self.groups)

    @property
    def K(self):
        return self.C_in // self.groups * self.KH * self.KW

    def __str__(self):
        s = str(self.problem()).rsplit("_", 1)[0]        # descriptor without the dtype
        if isinstance(self.padding, str):
            s += f"_pad-{self.padding}"
        s += "" if self.bias else "_nobias"
        note = re.sub(r"[^A-Za-z0-9=<%/.+-]+", "-", self.note).strip("-")
        return s + (f"--{note}" if note else "")


def case_id(case):
    return str(case)


def why_not(algorithm, case, dtype=np.float32):
    """gconv's own reason for declining (None: accepts)."""
    return _dispatch.BY_NAME[algorithm].why_not(case.problem(dtype))


def tolerance(dtype, K):
    """Absolute tolerance for data uniform in [-1, 1): the rounding of a K-term dot product
    grows about like eps*K; a wrong tap or channel is off by O(1)."""
    eps = np.finfo(dtype).eps
    return 16 * eps * max(K, 1) + 4 * eps


def assert_close(got, expected, dtype, K):
    assert got.dtype == np.dtype(dtype), f"output dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == expected.shape, f"output shape {got.shape}, expected {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance(dtype, K))


C, D = Case, "depthwise"
# The grid. Notes say what each case is there for.
GRID = [
    # dense
    C(1, 3, 8, 8, 4, 1, 3, 3, padding=1, note="basic"),
    C(3, 5, 7, 9, 6, 1, 3, 3, stride=2, note="N=3 stride 2"),
    C(1, 4, 9, 11, 8, 1, 3, 5, padding=(1, 2), note="non-square kernel, pair padding"),
    C(1, 4, 9, 11, 3, 1, 5, 2, padding=(2, 0), bias=False),
    C(1, 2, 10, 10, 3, 1, 3, 3, padding=2, dilation=2, note="dilation"),
    C(1, 2, 12, 9, 3, 1, 2, 3, stride=(2, 1), padding=(0, 1), dilation=(1, 2)),
    C(2, 3, 5, 5, 2, 1, 5, 5, note="kernel == input: 1x1 output"),
    C(1, 1, 1, 1, 4, 1, 1, 1, note="1x1 input, 1x1 kernel"),
    C(1, 2, 1, 1, 3, 1, 3, 3, padding=1, note="1x1 input, H < kh with padding"),
    C(2, 2, 2, 3, 2, 1, 3, 3, stride=2, padding=1, note="H < kh with padding"),
    C(1, 3, 6, 6, 4, 1, 4, 4, padding="same", note="even kernel: odd pad at the end"),
    C(1, 3, 7, 5, 4, 1, 3, 2, padding="same", dilation=2),
    C(1, 3, 7, 7, 2, 1, 3, 3, padding="valid"),
    C(1, 3, 7, 8, 5, 1, 3, 3, padding=((0, 2), (1, 0)), note="asymmetric"),
    C(2, 3, 7, 8, 4, 1, 3, 3, stride=2, padding="same_upper"),
    C(1, 3, 7, 8, 4, 1, 4, 4, stride=2, padding="same_lower"),
    C(1, 2, 6, 7, 3, 1, 4, 2, padding="same_upper", dilation=(1, 2)),
    C(1, 3, 9, 9, 4, 1, 1, 1, stride=2, note="1x1 kernel, stride 2"),
    C(1, 3, 5, 6, 4, 1, 1, 1, padding=1, note="1x1 kernel, padded"),
    C(0, 3, 8, 8, 4, 1, 3, 3, padding=1, note="empty batch"),
    C(1, 3, 3, 67, 5, 1, 3, 3, padding=(0, 1), note="long odd row"),
    C(1, 2, 5, 5, 3, 1, 3, 3, padding=3, note="padding > kernel: bias-only border"),
    C(1, 3, 10, 11, 4, 1, 2, 2, stride=3, note="stride > kernel"),
    C(1, 2, 7, 9, 2, 1, 3, 3, dilation=(3, 4), note="dilated kernel fits exactly"),
    # grouped
    C(2, 8, 9, 9, 8, 2, 3, 3, padding=1),
    C(1, 12, 7, 7, 6, 3, 3, 3, stride=2, padding=1, note="C_out/g=2 < C_in/g=4"),
    C(1, 6, 10, 10, 32, 2, 3, 3, padding=1, note="C=6, C_out%16==0, C_in/g<16"),
    C(1, 6, 11, 13, 48, 3, 1, 1, note="pointwise C_in/g=2, C_out/g=16"),
    C(3, 16, 10, 10, 4, 1, 1, 1, note="seed g1"),
    C(3, 16, 10, 10, 4, 2, 1, 1, note="seed g2"),
    C(3, 16, 10, 10, 4, 4, 1, 1, note="seed g4"),
    C(1, 8, 6, 6, 4, 4, 5, 5, padding=2, bias=False, note="seed 8->4 g4"),
    C(1, 8, 6, 6, 4, 2, 5, 5, padding=2, note="seed 8->4 g2"),
    C(1, 4, 6, 6, 8, 2, 5, 5, padding=2, note="seed 4->8 g2"),
    C(1, 3, 8, 8, 9, 3, 3, 3, note="seed 3->9 g3"),
    C(1, 8, 9, 9, 8, 4, 3, 3, padding=2, dilation=2),
    C(1, 8, 9, 10, 12, 4, 1, 1, stride=(2, 3), note="grouped 1x1 strided"),
    C(0, 8, 5, 5, 8, 2, 3, 3, note="empty batch grouped"),
    C(2, 128, 14, 14, 128, 32, 3, 3, padding=1, note="ResNeXt-like 32 groups of 4"),
    # depthwise (C_in / groups == 1), with and without a depth multiplier
    C(2, 6, 9, 9, 6, 6, 3, 3, padding=1),
    C(1, 5, 17, 19, 5, 5, 3, 3, stride=2, padding=1, note="OW=10"),
    C(1, 4, 13, 13, 4, 4, 5, 5, padding=2, bias=False),
    C(1, 3, 15, 15, 3, 3, 7, 7, padding=3),
    C(1, 4, 12, 12, 4, 4, 3, 3, padding=2, dilation=2),
    C(1, 4, 6, 6, 8, 4, 5, 5, padding=2, note="seed 4->8 g4: multiplier 2"),
    C(1, 4, 9, 9, 8, 4, 3, 3, padding=1, note="multiplier 2"),
    C(1, 2, 7, 7, 6, 2, 3, 3, bias=False, note="multiplier 3"),
    C(1, 4, 1, 1, 4, 4, 3, 3, padding=1, note="1x1 input"),
    C(1, 4, 8, 9, 4, 4, 1, 5, padding=(0, 2)),
    C(1, 4, 9, 8, 4, 4, 5, 1, padding=(2, 0)),
    C(1, 4, 7, 7, 4, 4, 4, 4, padding="same"),
    C(1, 4, 9, 11, 4, 4, 3, 3, stride=(1, 2), padding=((1, 0), (2, 1))),
    C(1, 4, 6, 6, 4, 4, 1, 1, note="1x1 depthwise: also pointwise"),
    C(1, 3, 1, 33, 3, 3, 1, 3, padding=(0, 1), note="a single row"),
    C(1, 4, 9, 9, 4, 4, 3, 3, stride=2, padding="same_upper"),
    C(1, 4, 9, 10, 4, 4, 4, 4, stride=2, padding="same_lower"),
    C(2, 1, 7, 7, 1, 1, 3, 3, padding=1, note="single channel, groups=1"),
    C(1, 1, 7, 7, 3, 1, 3, 3, note="single channel to 3"),
    C(0, 4, 6, 6, 8, 4, 3, 3, note="empty batch depthwise"),
    C(3, 6, 11, 13, 6, 6, 3, 3, stride=3, padding=4, note="padding > kernel, stride 3"),
    C(1, 16, 34, 34, 16, 16, 3, 3, padding=1, note="OW=34"),
    # pointwise
    C(2, 16, 7, 9, 24, 1, 1, 1),
    C(1, 3, 1, 1, 5, 1, 1, 1, bias=False),
    C(1, 16, 5, 7, 130, 1, 1, 1, padding="valid", note="C_out=130"),
    # across the kernels' cache blocks: K > 256, P > 2000
    C(1, 32, 48, 48, 16, 1, 3, 3, padding=1, note="K=288, P=2304"),
    C(1, 300, 46, 46, 20, 1, 1, 1, note="pointwise K=300, P=2116"),
    C(1, 64, 24, 24, 64, 2, 3, 3, padding=1, note="grouped K=288"),
    C(1, 8, 50, 50, 8, 8, 3, 3, padding=1, note="depthwise P=2500"),
    C(2, 24, 45, 47, 24, 24, 5, 5, stride=2, padding=2, note="depthwise 5x5 s2"),
]
del C, D


def grid_params(cases=None):
    return [pytest.param(c, id=case_id(c)) for c in (GRID if cases is None else cases)]


@pytest.fixture
def restore_isa():
    before = gconv.get_isa()
    yield
    gconv.set_isa(before)


@pytest.fixture
def restore_threads():
    yield
    gconv.set_num_threads(None)


@pytest.fixture(scope="module")
def torch_single_thread():
    """torch on one thread for a module's comparisons (fast and steady on 2 shared cores)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
