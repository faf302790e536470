"""The oracle checked on its own: gconv._reference.conv2d_reference against cases worked out
by hand, and against a deliberately naive loop implementation written here."""
import itertools

import numpy as np
import pytest

from gconv._reference import conv2d_reference


def loop_conv2d(x, w, b, stride, pads, dilation, groups):
    """The definition, one multiply-add at a time (torch's cross-correlation)."""
    N, C_in, H, W = x.shape
    C_out, CG, KH, KW = w.shape
    sh, sw = stride
    dh, dw = dilation
    pt, pb, pl, pr = pads
    OH = (H + pt + pb - dh * (KH - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (KW - 1) - 1) // sw + 1
    M = C_out // groups
    y = np.zeros((N, C_out, OH, OW))
    for n, co, i, j in itertools.product(range(N), range(C_out), range(OH), range(OW)):
        g = co // M
        acc = 0.0 if b is None else float(b[co])
        for c, kh, kw in itertools.product(range(CG), range(KH), range(KW)):
            r = i * sh - pt + kh * dh
            s = j * sw - pl + kw * dw
            if 0 <= r < H and 0 <= s < W:
                acc += float(x[n, g * CG + c, r, s]) * float(w[co, c, kh, kw])
        y[n, co, i, j] = acc
    return y


def ref(x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    return conv2d_reference(x, w, b, stride, pads, dilation, groups)


def test_identity_kernel_returns_the_input():
    x = np.arange(1, 21, dtype=np.float64).reshape(1, 1, 4, 5)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 1, 1] = 1
    np.testing.assert_array_equal(ref(x, w, pads=(1, 1, 1, 1)), x)


def test_box_kernel_sums_each_window():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)   # [[0 1 2] [3 4 5] [6 7 8]]
    w = np.ones((1, 1, 2, 2))
    expected = [[0 + 1 + 3 + 4, 1 + 2 + 4 + 5],
                [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]]
    np.testing.assert_array_equal(ref(x, w)[0, 0], expected)


def test_worked_example_with_padding_stride_and_bias():
    # padded x (pad 1):     w:        windows at stride 2 (rows/cols 0-1 and 2-3):
    #   0 0 0 0             1 2       [0 0; 0 1]·w = 4     [0 0; 2 0]·w = 6
    #   0 1 2 0             3 4       [0 3; 0 0]·w = 6     [4 0; 0 0]·w = 4
    #   0 3 4 0
    #   0 0 0 0
    # (a flipped, "true" convolution would give [[1, 6], [6, 16]] instead)
    x = np.array([[[[1., 2.], [3., 4.]]]])
    w = np.array([[[[1., 2.], [3., 4.]]]])
    y = ref(x, w, np.array([10.]), stride=(2, 2), pads=(1, 1, 1, 1))
    np.testing.assert_array_equal(y, [[[[14., 16.], [16., 14.]]]])


def test_groups_split_the_channels():
    # channel 0 holds 1, channel 1 holds 10
    x = np.stack([np.full((3, 3), 1.), np.full((3, 3), 10.)])[None]
    w_grouped = np.array([2., 3.]).reshape(2, 1, 1, 1)     # out 0 sees only in 0, out 1 in 1
    y = ref(x, w_grouped, groups=2)
    np.testing.assert_array_equal(y[0, 0], np.full((3, 3), 2.))
    np.testing.assert_array_equal(y[0, 1], np.full((3, 3), 30.))
    # groups=1 with the same taps on both inputs mixes them
    w_dense = np.array([[2., 2.], [3., 3.]]).reshape(2, 2, 1, 1)
    y = ref(x, w_dense, groups=1)
    np.testing.assert_array_equal(y[0, 0], np.full((3, 3), 22.))
    np.testing.assert_array_equal(y[0, 1], np.full((3, 3), 33.))


def test_groups_with_two_channels_per_group():
    # 4 inputs holding 1, 2, 3, 4; 2 groups; every weight 1: out g sums its own pair
    x = np.arange(1., 5.).reshape(1, 4, 1, 1) * np.ones((1, 4, 2, 2))
    w = np.ones((4, 2, 1, 1))
    y = ref(x, w, groups=2)
    np.testing.assert_array_equal(y[0, :, 0, 0], [3., 3., 7., 7.])


def test_dilation_skips_pixels():
    x = np.array([1., 2., 3., 4., 5.]).reshape(1, 1, 1, 5)
    w = np.array([1., 10.]).reshape(1, 1, 1, 2)
    # taps 2 apart: x[j] + 10 x[j + 2]
    np.testing.assert_array_equal(ref(x, w, dilation=(1, 2))[0, 0, 0], [31., 42., 53.])


def test_asymmetric_padding_and_non_square_stride():
    x = np.arange(1., 7.).reshape(1, 1, 2, 3)        # [[1 2 3] [4 5 6]]
    w = np.ones((1, 1, 1, 1))
    # pad: top 1, bottom 0, left 0, right 2 -> rows [0 0 0 0 0; 1 2 3 0 0; 4 5 6 0 0]
    y = ref(x, w, stride=(1, 2), pads=(1, 0, 0, 2))
    np.testing.assert_array_equal(y[0, 0], [[0., 0., 0.], [1., 3., 0.], [4., 6., 0.]])


def test_bias_only_when_weights_are_zero():
    x = np.ones((2, 3, 4, 4))
    y = ref(x, np.zeros((5, 3, 3, 3)), np.arange(5.))
    assert y.shape == (2, 5, 2, 2)
    np.testing.assert_array_equal(y, np.broadcast_to(np.arange(5.).reshape(1, 5, 1, 1), y.shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_has_the_input_dtype(dtype):
    y = ref(np.ones((1, 1, 3, 3), dtype), np.ones((1, 1, 2, 2), dtype))
    assert y.dtype == dtype


def test_empty_batch():
    y = ref(np.ones((0, 2, 5, 5)), np.ones((3, 2, 3, 3)))
    assert y.shape == (0, 3, 3, 3)


LOOP_CASES = [
    # (N, C_in, H, W, C_out, groups, KH, KW, stride, pads, dilation, bias)
    (1, 3, 5, 6, 4, 1, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), True),
    (2, 4, 7, 5, 6, 2, 2, 3, (2, 1), (0, 1, 2, 0), (1, 1), False),
    (1, 6, 8, 8, 6, 6, 3, 3, (2, 2), (1, 1, 1, 1), (2, 2), True),
    (1, 2, 6, 9, 6, 2, 3, 2, (1, 3), (2, 0, 1, 1), (2, 1), True),
    (1, 4, 3, 3, 8, 4, 3, 3, (1, 1), (2, 2, 2, 2), (1, 1), True),
    (2, 6, 4, 7, 9, 3, 1, 4, (1, 2), (0, 0, 3, 0), (1, 2), False),
]


@pytest.mark.parametrize("case", LOOP_CASES, ids=lambda c: "x".join(map(str, c[:8])))
def test_reference_matches_the_loop_definition(case):
    N, C_in, H, W, C_out, groups, KH, KW, stride, pads, dilation, has_bias = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C_in, H, W))
    w = rng.standard_normal((C_out, C_in // groups, KH, KW))
    b = rng.standard_normal(C_out) if has_bias else None
    expected = loop_conv2d(x, w, b, stride, pads, dilation, groups)
    got = ref(x, w, b, stride, pads, dilation, groups)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
