"""torch.nn.functional.conv2d as the second oracle, on the same grid as test_conv2d.py.

torch is a hard test dependency (CI installs torch==2.13.0), so it is imported plainly:
a CI run without torch must fail, not skip these comparisons.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gconv
from conftest import DTYPES, GRID, FORCEABLE, grid_params, tolerance, why_not

# torch's own note about even kernels with padding='same'; the comparison is the point
pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),
              pytest.mark.usefixtures("torch_single_thread")]




def _torch_takes(padding):
    """torch's own padding forms: an int, a pair of ints, 'same', 'valid'."""
    if isinstance(padding, str):
        return padding in ("same", "valid")
    return isinstance(padding, int) or all(isinstance(p, int) for p in padding)


def torch_conv2d(case, x, w, b):
    """torch's answer for `case`; asymmetric and ONNX-style pads go through F.pad first."""
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    tb = None if b is None else torch.from_numpy(b)
    padding = case.padding
    if not _torch_takes(padding):
        t, bot, left, right = case.explicit_pads()
        tx = F.pad(tx, (left, right, t, bot))
        padding = 0
    y = F.conv2d(tx, tw, tb, stride=case.stride, padding=padding, dilation=case.dilation,
                 groups=case.groups)
    return y.numpy()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", grid_params())
def test_matches_torch(case, dtype):
    x, w, b = case.arrays(dtype, seed=7, integer=False)
    expected = torch_conv2d(case, x, w, b)
    y = gconv.conv2d(x, w, b, **case.kwargs)
    assert y.shape == expected.shape
    assert y.dtype == expected.dtype == np.dtype(dtype)
    # both sides round: allow twice one side's error
    np.testing.assert_allclose(y, expected, rtol=0, atol=2 * tolerance(dtype, case.K))


def _forced_params():
    return [pytest.param(c, a, id=f"{c}-{a}") for c in GRID[::4] for a in FORCEABLE
            if a != "reference" and why_not(a, c) is None]


@pytest.mark.parametrize("case, algorithm", _forced_params())
def test_every_path_matches_torch(case, algorithm):
    x, w, b = case.arrays(np.float32, seed=8, integer=False)
    y = gconv.conv2d(x, w, b, **case.kwargs, algorithm=algorithm)
    np.testing.assert_allclose(y, torch_conv2d(case, x, w, b), rtol=0,
                               atol=2 * tolerance(np.float32, case.K))


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel", [(1, 1), (2, 2), (3, 3), (4, 5), (2, 7)], ids=str)
@pytest.mark.parametrize("dilation", [1, 2, (1, 3)], ids=str)
def test_padding_strings_as_torch(padding, kernel, dilation):
    """'same' and 'valid' handed to torch as they are: odd totals put the extra pixel
    where torch puts it."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4, 13, 20)).astype(np.float32)
    w = rng.standard_normal((6, 2, *kernel)).astype(np.float32)
    y = gconv.conv2d(x, w, padding=padding, dilation=dilation, groups=2)
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=padding,
                        dilation=dilation, groups=2).numpy()
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=0, atol=2 * tolerance(np.float32, 2 * 35))


@pytest.mark.parametrize("case", grid_params([c for c in GRID if c.N == 1][::2]))
def test_unbatched_matches_torch(case):
    """A (C, H, W) input, as torch takes it (torch pads the last two axes with F.pad)."""
    x, w, b = case.arrays(np.float64, seed=10, integer=False)
    x = x[0]
    t, bot, left, right = case.explicit_pads()
    tx = F.pad(torch.from_numpy(x), (left, right, t, bot))
    expected = F.conv2d(tx, torch.from_numpy(w), None if b is None else torch.from_numpy(b),
                        stride=case.stride, dilation=case.dilation, groups=case.groups).numpy()
    y = gconv.conv2d(x, w, b, **case.kwargs)
    assert y.shape == expected.shape == case.output_shape()[1:]
    np.testing.assert_allclose(y, expected, rtol=0, atol=2 * tolerance(np.float64, case.K))
