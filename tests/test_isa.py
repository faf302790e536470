"""Every SIMD variant this CPU can run gives the reference's answer, through every path;
GCONV_ISA and set_isa select a variant; unknown or unsupported names are refused."""
import os
import subprocess
import sys

import numpy as np
import pytest

import gconv
from gconv import _isa
from conftest import Case, assert_close, why_not

GCONV_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(gconv.__file__)))
ALL_ISAS = ("avx512", "avx2", "generic")

# a small grid: every kernel family, ragged widths, strides, dilation, multiplier
ISA_GRID = [
    Case(2, 6, 9, 19, 32, 2, 3, 3, padding=1, note="general C_in/g=3"),
    Case(1, 8, 11, 23, 12, 4, 3, 5, stride=2, padding=(1, 2), dilation=(1, 2)),
    Case(2, 16, 7, 37, 24, 1, 1, 1, note="pointwise"),
    Case(1, 12, 6, 21, 12, 3, 1, 1, note="pointwise grouped"),
    Case(2, 8, 13, 35, 8, 8, 3, 3, padding=1, note="depthwise"),
    Case(1, 4, 17, 19, 8, 4, 5, 5, stride=2, padding=2, note="depthwise x2 s2"),
    Case(1, 5, 9, 40, 5, 5, 3, 3, padding=2, dilation=2, note="depthwise dilated"),
    Case(1, 32, 48, 48, 16, 1, 3, 3, padding=1, note="K=288, P=2304"),
]


def _params():
    params = []
    for isa in gconv.available_isas():
        for case in ISA_GRID:
            for algorithm in ("depthwise", "pointwise", "general"):
                if why_not(algorithm, case) is None:
                    for dtype in (np.float32, np.float64):
                        params.append(pytest.param(isa, case, algorithm, dtype, id=(
                            f"{isa}-{case}-{algorithm}-{np.dtype(dtype).name}")))
    return params


def test_this_cpu_lists_its_variants_best_first():
    isas = gconv.available_isas()
    assert isas and isas[-1] == "generic"
    assert list(isas) == [i for i in ALL_ISAS if i in isas]
    assert gconv.get_isa() in isas


@pytest.mark.parametrize("isa, case, algorithm, dtype", _params())
def test_variant_matches_reference(isa, case, algorithm, dtype, restore_isa):
    gconv.set_isa(isa)
    assert gconv.get_isa() == isa
    x, w, b = case.arrays(dtype, seed=11, integer=True)
    y = gconv.conv2d(x, w, b, **case.kwargs, algorithm=algorithm)
    np.testing.assert_array_equal(y, case.reference(x, w, b))
    x, w, b = case.arrays(dtype, seed=12, integer=False)
    y = gconv.conv2d(x, w, b, **case.kwargs, algorithm=algorithm)
    assert_close(y, case.reference(x, w, b), dtype, case.K)


@pytest.mark.parametrize("isa", gconv.available_isas())
def test_layer_under_each_variant(isa, restore_isa):
    """A layer's packed weights follow the variant: switching must not reuse another
    variant's packing."""
    layer = gconv.Conv2d(16, 32, 3, padding=1, groups=2, rng=0)
    x = np.random.default_rng(1).standard_normal((1, 16, 12, 13)).astype(np.float32)
    expected = gconv.conv2d(x, layer.weight, layer.bias, padding=1, groups=2,
                            algorithm="reference")
    layer(x)                      # packs for the current variant
    gconv.set_isa(isa)
    np.testing.assert_allclose(layer(x), expected, rtol=0, atol=1e-4)


def test_set_isa_none_restores_the_best(restore_isa):
    gconv.set_isa("generic")
    assert gconv.get_isa() == "generic"
    gconv.set_isa(None)
    assert gconv.get_isa() == gconv.available_isas()[0]


@pytest.mark.parametrize("name", ["sse9", "AVX2", "", "avx-512", 2])
def test_unknown_isa_is_refused(name, restore_isa):
    before = gconv.get_isa()
    with pytest.raises(ValueError, match="unknown ISA.*expected one of"):
        gconv.set_isa(name)
    assert gconv.get_isa() == before


def test_unsupported_isa_is_refused(restore_isa, monkeypatch):
    """On a CPU without AVX-512 asking for it must fail, not crash: simulate that CPU."""
    monkeypatch.setattr(_isa, "_MAX", 0)
    for name in ("avx2", "avx512"):
        with pytest.raises(ValueError, match=f"cannot run the '{name}' kernels"):
            gconv.set_isa(name)
    gconv.set_isa("generic")
    assert gconv.get_isa() == "generic"


def _run(code, **env):
    full_env = {k: v for k, v in os.environ.items() if k != "GCONV_ISA"}
    full_env["PYTHONPATH"] = GCONV_PARENT + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=120, cwd=GCONV_PARENT)


CHECK_IN_SUBPROCESS = """
import numpy as np, gconv
from gconv._reference import conv2d_reference
rng = np.random.default_rng(0)
x = rng.integers(-3, 4, (2, 8, 9, 21)).astype(np.float32)
for w, groups, pads in (((8, 2, 3, 3), 4, 1), ((8, 1, 3, 3), 8, 1), ((6, 8, 1, 1), 1, 0)):
    w = rng.integers(-2, 3, w).astype(np.float32)
    y = gconv.conv2d(x, w, padding=pads, groups=groups)
    assert np.array_equal(y, conv2d_reference(x, w, None, (1, 1), (pads,) * 4, (1, 1), groups))
print(gconv.get_isa())
"""


@pytest.mark.parametrize("isa", gconv.available_isas())
def test_gconv_isa_environment_variable(isa):
    done = _run(CHECK_IN_SUBPROCESS, GCONV_ISA=isa)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == isa


def test_gconv_isa_environment_variable_unknown_fails_loudly():
    done = _run("import gconv", GCONV_ISA="sse9")
    assert done.returncode != 0
    assert "sse9" in done.stderr and "ValueError" in done.stderr
