"""gconv.conv2d against the NumPy reference on a broad grid, through every implementation
that accepts each problem; memory layouts; the caller's arrays left untouched."""
import re

import numpy as np
import pytest

import gconv
from conftest import (DTYPES, FORCEABLE, GRID, Case, assert_close, case_id, grid_params,
                      why_not)

ALGORITHMS = ("auto",) + FORCEABLE


def _dtype_id(dt):
    return np.dtype(dt).name


def _run_and_check_untouched(case, x, w, b, **extra):
    """conv2d on (x, w, b); asserts none of them changed."""
    copies = [None if a is None else a.copy() for a in (x, w, b)]
    y = gconv.conv2d(x, w, b, **case.kwargs, **extra)
    for name, a, before in zip(("input", "weight", "bias"), (x, w, b), copies):
        if a is not None:
            assert np.array_equal(a, before), f"conv2d modified its {name}"
    return y


# -- which implementation accepts what -----------------------------------------------------
@pytest.mark.parametrize("case", grid_params())
def test_paths_accept_exactly_their_problems(case):
    """Written from the definitions, not from gconv, so a path that silently declines
    everything (and would make the grid below vacuous) is caught."""
    one_channel_per_group = case.C_in // case.groups == 1
    one_by_one = (case.KH, case.KW) == (1, 1) and case.stride in (1, (1, 1)) \
        and not any(case.explicit_pads())
    expected = {"depthwise": one_channel_per_group, "pointwise": one_by_one,
                "general": True, "reference": True}
    accepted = {a: why_not(a, case) is None for a in FORCEABLE}
    assert accepted == expected


# -- exact comparison on integer data, every path, both dtypes -------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES, ids=_dtype_id)
@pytest.mark.parametrize("case", grid_params())
def test_integer_data_is_exact(case, dtype, algorithm):
    x, w, b = case.arrays(dtype, seed=1, integer=True)
    reason = None if algorithm == "auto" else why_not(algorithm, case, dtype)
    if reason is not None:
        with pytest.raises(ValueError, match=re.escape(reason)) as err:
            gconv.conv2d(x, w, b, **case.kwargs, algorithm=algorithm)
        assert f"algorithm={algorithm!r}" in str(err.value)
        return
    y = _run_and_check_untouched(case, x, w, b, algorithm=algorithm)
    assert y.dtype == np.dtype(dtype)
    assert y.shape == case.output_shape()
    np.testing.assert_array_equal(y, case.reference(x, w, b))


# -- random data, tolerances scaled by the reduction length ---------------------------------
def _accepted_params():
    params = []
    for case in GRID:
        for dtype in DTYPES:
            for algorithm in ALGORITHMS:
                if algorithm == "auto" or why_not(algorithm, case, dtype) is None:
                    params.append(pytest.param(case, dtype, algorithm,
                                               id=f"{case_id(case)}-{_dtype_id(dtype)}-{algorithm}"))
    return params


@pytest.mark.parametrize("case, dtype, algorithm", _accepted_params())
def test_random_data_is_close(case, dtype, algorithm):
    x, w, b = case.arrays(dtype, seed=2, integer=False)
    y = _run_and_check_untouched(case, x, w, b, algorithm=algorithm)
    assert_close(y, case.reference(x, w, b), dtype, case.K)


@pytest.mark.parametrize("case", grid_params())
def test_conv2d_output_shape_agrees(case):
    assert gconv.conv2d_output_shape(case.x_shape, case.w_shape, **case.kwargs) \
        == case.output_shape()


# -- unbatched (C, H, W) input --------------------------------------------------------------
UNBATCHED = [c for c in GRID if c.N == 1][:: 3]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", grid_params(UNBATCHED))
def test_unbatched_input(case, algorithm):
    if algorithm != "auto" and why_not(algorithm, case) is not None:
        return      # declines are checked on the batched grid
    x, w, b = case.arrays(np.float32, seed=3)
    y = gconv.conv2d(x[0], w, b, **case.kwargs, algorithm=algorithm)
    assert y.shape == case.output_shape()[1:]
    np.testing.assert_array_equal(y, case.reference(x, w, b)[0])


# -- forcing a path that declines says why ---------------------------------------------------
@pytest.mark.parametrize("algorithm, case, words", [
    ("depthwise", Case(1, 8, 6, 6, 8, 2, 3, 3), "C_in / groups"),
    ("pointwise", Case(1, 4, 6, 6, 4, 1, 3, 3), "1x1"),
    ("pointwise", Case(1, 4, 6, 6, 4, 1, 1, 1, stride=2), "stride"),
    ("pointwise", Case(1, 4, 6, 6, 4, 1, 1, 1, padding=1), "padding"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_forced_path_that_declines_explains(algorithm, case, words):
    x, w, b = case.arrays(np.float32)
    with pytest.raises(ValueError, match=re.escape(words)) as err:
        gconv.conv2d(x, w, b, **case.kwargs, algorithm=algorithm)
    assert "cannot run" in str(err.value) and str(case.problem()) in str(err.value)


@pytest.mark.parametrize("algorithm", ["fast", "", "Pointwise", None, 3])
def test_unknown_algorithm_is_refused(algorithm):
    x, w, _ = Case(1, 2, 4, 4, 2, 1, 3, 3).arrays(np.float32)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        gconv.conv2d(x, w, algorithm=algorithm)


# -- a repeated call signature (cached plan) with new data ---------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_signature_new_data(algorithm):
    case = Case(2, 4, 9, 9, 4, 4 if algorithm == "depthwise" else 2,
                1 if algorithm == "pointwise" else 3, 1 if algorithm == "pointwise" else 3)
    for seed in (10, 11, 12):
        x, w, b = case.arrays(np.float32, seed=seed)
        y = gconv.conv2d(x, w, b, **case.kwargs, algorithm=algorithm)
        np.testing.assert_array_equal(y, case.reference(x, w, b))


# -- memory layouts of input, weight and bias ------------------------------------------------
def _strided_view(a):
    """Same values, every axis with stride 2 elements, starting at an offset."""
    big = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
    view = big[tuple(slice(1, None, 2) for _ in a.shape)]
    view[...] = a
    return view


def _negative_strides(a):
    flipped = np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])
    return flipped[(slice(None, None, -1),) * a.ndim]


def _channels_last(a):
    if a.ndim != 4:
        return a
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


LAYOUTS = {
    "c_contiguous": lambda a: a,
    "strided_view": _strided_view,
    "negative_strides": _negative_strides,
    "fortran": np.asfortranarray,
    "channels_last_memory": _channels_last,
    "big_endian": lambda a: a.astype(a.dtype.newbyteorder(">")),
    "read_only": _read_only,
}

LAYOUT_CASES = [
    Case(2, 4, 7, 9, 6, 1, 3, 3, padding=1, note="dense"),
    Case(2, 8, 7, 9, 8, 2, 3, 3, stride=2, padding=1, note="grouped"),
    Case(2, 6, 7, 9, 12, 6, 3, 3, padding=1, note="depthwise x2"),
    Case(2, 8, 7, 9, 12, 4, 1, 1, note="pointwise grouped"),
]


def _layout_params():
    params = []
    for case in LAYOUT_CASES:
        for algorithm in ALGORITHMS:
            if algorithm != "auto" and why_not(algorithm, case) is not None:
                continue
            for name in LAYOUTS:
                for dtype in DTYPES:
                    params.append(pytest.param(case, algorithm, name, dtype, id=(
                        f"{case.note}-{algorithm}-{name}-{_dtype_id(dtype)}")))
    return params


@pytest.mark.parametrize("case, algorithm, layout, dtype", _layout_params())
def test_memory_layouts(case, algorithm, layout, dtype):
    x, w, b = case.arrays(dtype, seed=4)
    expected = case.reference(x, w, b)
    make = LAYOUTS[layout]
    xs, ws, bs = make(x), make(w), make(b)
    assert np.array_equal(xs, x) and np.array_equal(ws, w) and np.array_equal(bs, b)
    y = _run_and_check_untouched(case, xs, ws, bs, algorithm=algorithm)
    assert y.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_broadcast_input_with_zero_strides(algorithm):
    case = Case(3, 4, 6, 6, 4, 4 if algorithm == "depthwise" else 1,
                1 if algorithm == "pointwise" else 3, 1 if algorithm == "pointwise" else 3)
    x, w, b = case.arrays(np.float32, seed=5)
    xb = np.broadcast_to(x[:1], x.shape)        # read-only, stride 0 along N
    y = gconv.conv2d(xb, w, b, **case.kwargs, algorithm=algorithm)
    expected = case.reference(np.array(xb), w, b)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(y[0], y[2])


def test_output_does_not_alias_the_input():
    case = Case(1, 4, 5, 5, 4, 1, 1, 1)
    x, w, b = case.arrays(np.float32)
    y = gconv.conv2d(x, w, b)
    assert not np.may_share_memory(y, x)
    y[...] = 99
    np.testing.assert_array_equal(gconv.conv2d(x, w, b), case.reference(x, w, b))
