"""Bad input gets a ValueError or TypeError that says what was expected and what was given,
in torch's words where torch has them. Where torch also refuses the same input, the same
input is put through torch.nn.functional.conv2d too, so the two stay in step."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gconv


def z(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


class Bad:
    """One bad call: conv2d(input, weight, bias, **kwargs) must raise `error` matching
    `match`; torch_refuses: torch raises for the same input too (checked)."""

    def __init__(self, id, input, weight, bias=None, error=ValueError, match="",
                 torch_refuses=True, **kwargs):
        self.id, self.input, self.weight, self.bias = id, input, weight, bias
        self.error, self.match, self.torch_refuses, self.kwargs = error, match, torch_refuses, kwargs

    def __repr__(self):
        return self.id


BAD = [
    # ranks
    Bad("input_rank_2", z(8, 8), z(4, 8, 3, 3), match=re.escape(
        "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [8, 8]")),
    Bad("input_rank_5", z(1, 1, 8, 8, 8), z(4, 1, 3, 3), match=re.escape(
        "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: "
        "[1, 1, 8, 8, 8]")),
    Bad("input_rank_0", np.float32(1.0), z(4, 1, 3, 3), error=(TypeError, ValueError),
        match=r"(ndarray|input of size: \[\])", torch_refuses=False),
    Bad("weight_rank_3", z(1, 8, 8, 8), z(4, 8, 3), match=r"weight.*\[4, 8, 3\]"),
    Bad("weight_rank_5", z(1, 8, 8, 8), z(4, 8, 3, 3, 1), match=r"weight.*\[4, 8, 3, 3, 1\]"),
    # channels against weight x groups (torch's own example)
    Bad("channels_vs_groups", z(1, 8, 32, 32), z(128, 32, 3, 3), groups=4, match=re.escape(
        "Given groups=4, weight of size [128, 32, 3, 3], expected input[1, 8, 32, 32] to have "
        "128 channels, but got 8 channels instead")),
    Bad("channels_dense", z(2, 3, 8, 8), z(4, 8, 3, 3), match=re.escape(
        "Given groups=1, weight of size [4, 8, 3, 3], expected input[2, 3, 8, 8] to have 8 "
        "channels, but got 3 channels instead")),
    Bad("channels_unbatched", z(3, 8, 8), z(4, 8, 3, 3), match=re.escape(
        "expected input[1, 3, 8, 8] to have 8 channels, but got 3 channels instead")),
    Bad("weight_with_no_input_channels", z(1, 8, 8, 8), z(4, 0, 3, 3), match=re.escape(
        "expected input[1, 8, 8, 8] to have 0 channels, but got 8 channels instead")),
    # groups
    Bad("groups_0", z(1, 8, 8, 8), z(4, 8, 3, 3), groups=0,
        match=r"non-positive groups is not supported.*0"),
    Bad("groups_negative", z(1, 8, 8, 8), z(4, 8, 3, 3), groups=-2,
        match=r"non-positive groups is not supported.*-2"),
    Bad("groups_float", z(1, 8, 8, 8), z(4, 4, 3, 3), groups=2.0, error=TypeError,
        match=r"groups must be an integer, got 2\.0"),
    Bad("groups_str", z(1, 8, 8, 8), z(4, 4, 3, 3), groups="2", error=TypeError,
        match=r"groups must be an integer, got '2'"),
    Bad("groups_bool", z(1, 8, 8, 8), z(4, 8, 3, 3), groups=True, error=TypeError,
        match=r"groups must be an integer, got True", torch_refuses=False),
    Bad("c_out_not_divisible", z(1, 8, 8, 8), z(6, 2, 3, 3), groups=4, match=re.escape(
        "Given groups=4, expected weight to be divisible by 4 at dimension 0, but got weight "
        "of size [6, 2, 3, 3] instead")),
    Bad("c_out_below_groups", z(1, 8, 8, 8), z(2, 1, 3, 3), groups=8, match=re.escape(
        "Given groups=8, expected weight to be at least 8 at dimension 0, but got weight of "
        "size [2, 1, 3, 3] instead")),
    Bad("c_out_zero", z(1, 8, 8, 8), z(0, 8, 3, 3), match=re.escape(
        "expected weight to be at least 1 at dimension 0, but got weight of size [0, 8, 3, 3]")),
    # stride, dilation, padding
    Bad("stride_0", z(1, 8, 8, 8), z(4, 8, 3, 3), stride=0,
        match=r"non-positive stride is not supported.*0"),
    Bad("stride_negative", z(1, 8, 8, 8), z(4, 8, 3, 3), stride=(1, -1),
        match=r"non-positive stride is not supported.*-1"),
    Bad("stride_float", z(1, 8, 8, 8), z(4, 8, 3, 3), stride=1.5, error=TypeError,
        match=r"stride must be an integer, got 1\.5"),
    Bad("stride_three_values", z(1, 8, 8, 8), z(4, 8, 3, 3), stride=(1, 1, 1), match=re.escape(
        "expected stride to be a single integer value or a list of 2 values to match the "
        "convolution dimensions, but got stride=[1, 1, 1]")),
    Bad("dilation_0", z(1, 8, 8, 8), z(4, 8, 3, 3), dilation=0,
        match=r"dilation should be greater than zero.*0"),
    Bad("dilation_negative", z(1, 8, 8, 8), z(4, 8, 3, 3), dilation=(-1, 1),
        match=r"dilation should be greater than zero.*-1"),
    Bad("padding_negative", z(1, 8, 8, 8), z(4, 8, 3, 3), padding=-1,
        match=r"negative padding is not supported.*-1"),
    Bad("padding_negative_pair", z(1, 8, 8, 8), z(4, 8, 3, 3), padding=(0, -2),
        match=r"negative padding is not supported.*-2"),
    Bad("padding_negative_nested", z(1, 8, 8, 8), z(4, 8, 3, 3), padding=((0, -1), (0, 0)),
        match=r"negative padding is not supported.*-1", torch_refuses=False),
    Bad("padding_three_values", z(1, 8, 8, 8), z(4, 8, 3, 3), padding=(1, 1, 1),
        match=re.escape("expected padding to be a single integer value or a list of 2 values "
                        "to match the convolution dimensions, but got padding=[1, 1, 1]")),
    Bad("padding_float", z(1, 8, 8, 8), z(4, 8, 3, 3), padding=1.5, error=TypeError,
        match=r"padding must be an integer, got 1\.5"),
    Bad("padding_unknown_string", z(1, 8, 8, 8), z(4, 8, 3, 3), padding="foo",
        match=r"Invalid padding string:? 'foo'.*'valid'.*'same'"),
    Bad("padding_upper_case", z(1, 8, 8, 8), z(4, 8, 3, 3), padding="SAME",
        match=r"Invalid padding string:? 'SAME'"),
    Bad("same_with_stride_2", z(1, 8, 8, 8), z(4, 8, 3, 3), padding="same", stride=2,
        match=re.escape("padding='same' is not supported for strided convolutions")),
    Bad("same_with_stride_1_2", z(1, 8, 8, 8), z(4, 8, 3, 3), padding="same", stride=(1, 2),
        match=re.escape("padding='same' is not supported for strided convolutions")),
    # kernel against the padded input
    Bad("kernel_larger_than_input", z(1, 8, 2, 2), z(4, 8, 3, 3), match=re.escape(
        "Calculated padded input size per channel: (2 x 2). Kernel size: (3 x 3). Kernel size "
        "can't be greater than actual input size")),
    Bad("dilated_kernel_larger_than_input", z(1, 8, 4, 9), z(4, 8, 3, 3), dilation=2,
        match=re.escape("Calculated padded input size per channel: (4 x 9). Kernel size: "
                        "(5 x 5). Kernel size can't be greater than actual input size")),
    Bad("kernel_larger_than_padded_width", z(1, 2, 9, 1), z(4, 2, 3, 4), padding=1,
        match=re.escape("Calculated padded input size per channel: (11 x 3). Kernel size: "
                        "(3 x 4). Kernel size can't be greater than actual input size")),
    Bad("input_height_0", z(1, 8, 0, 8), z(4, 8, 3, 3), padding=1,
        match=r"input.*\[1, 8, 0, 8\]|\(2 x 10\)"),
    # zero-size kernel
    Bad("kernel_height_0", z(1, 8, 8, 8), z(4, 8, 0, 3), match=(
        "kernel size should be greater than zero, but got kernel_height: 0 kernel_width: 3")),
    Bad("kernel_width_0", z(1, 8, 8, 8), z(4, 8, 3, 0), match=(
        "kernel size should be greater than zero, but got kernel_height: 3 kernel_width: 0")),
    # bias
    Bad("bias_too_long", z(1, 8, 8, 8), z(4, 8, 3, 3), z(5), match=re.escape(
        "Given weight of size [4, 8, 3, 3], expected bias to be 1-dimensional with 4 elements, "
        "but got bias of size [5] instead")),
    Bad("bias_2d", z(1, 8, 8, 8), z(4, 8, 3, 3), z(4, 1), match=re.escape(
        "Given weight of size [4, 8, 3, 3], expected bias to be 1-dimensional with 4 elements, "
        "but got bias of size [4, 1] instead")),
    Bad("bias_0d", z(1, 8, 8, 8), z(4, 8, 3, 3), np.zeros((), np.float32), match=re.escape(
        "expected bias to be 1-dimensional with 4 elements, but got bias of size [] instead")),
    Bad("bias_list", z(1, 8, 8, 8), z(4, 8, 3, 3), [0.0] * 4, error=TypeError,
        match=r"bias must be a numpy\.ndarray.*got list"),
    Bad("bias_int", z(1, 8, 8, 8), z(4, 8, 3, 3), np.zeros(4, np.int64), error=TypeError,
        match=r"bias must have dtype float32 or float64, got int64"),
    # not arrays, or not float arrays
    Bad("input_none", None, z(4, 8, 3, 3), error=TypeError,
        match=r"input must be a numpy\.ndarray of float32 or float64, got None"),
    Bad("weight_none", z(1, 8, 8, 8), None, error=TypeError,
        match=r"weight must be a numpy\.ndarray of float32 or float64, got None"),
    Bad("input_str", "abc", z(4, 8, 3, 3), error=TypeError,
        match=r"input must be a numpy\.ndarray of float32 or float64, got str"),
    Bad("input_list", [[[[1.0]]]], z(1, 1, 1, 1), error=TypeError,
        match=r"input must be a numpy\.ndarray of float32 or float64, got list"),
    Bad("weight_list", z(1, 1, 3, 3), [[[[1.0]]]], error=TypeError,
        match=r"weight must be a numpy\.ndarray of float32 or float64, got list"),
    Bad("input_object", np.zeros((1, 8, 8, 8), object), z(4, 8, 3, 3), error=TypeError,
        match=r"input must have dtype float32 or float64, got object"),
    Bad("input_complex", z(1, 8, 8, 8, dtype=np.complex64), z(4, 8, 3, 3, dtype=np.complex64),
        error=TypeError, match=r"input must have dtype float32 or float64, got complex64",
        torch_refuses=False),
    Bad("input_int32", z(1, 8, 8, 8, dtype=np.int32), z(4, 8, 3, 3, dtype=np.int32),
        error=TypeError, match=r"input must have dtype float32 or float64, got int32",
        torch_refuses=False),
    Bad("weight_int64", z(1, 8, 8, 8), z(4, 8, 3, 3, dtype=np.int64), error=TypeError,
        match=r"weight must have dtype float32 or float64, got int64"),
    Bad("input_bool", z(1, 8, 8, 8, dtype=bool), z(4, 8, 3, 3, dtype=bool), error=TypeError,
        match=r"input must have dtype float32 or float64, got bool"),
    Bad("input_float16", z(1, 8, 8, 8, dtype=np.float16), z(4, 8, 3, 3, dtype=np.float16),
        error=TypeError, match=r"input must have dtype float32 or float64, got float16",
        torch_refuses=False),
    # mixed dtypes are refused, as torch refuses them
    Bad("input_f64_weight_f32", z(1, 8, 8, 8, dtype=np.float64), z(4, 8, 3, 3),
        error=TypeError,
        match=re.escape("Input type (float64) and weight type (float32) should be the same")),
    Bad("input_f32_weight_f64", z(1, 8, 8, 8), z(4, 8, 3, 3, dtype=np.float64),
        error=TypeError,
        match=re.escape("Input type (float32) and weight type (float64) should be the same")),
    Bad("bias_f64_with_f32", z(1, 8, 8, 8), z(4, 8, 3, 3), z(4, dtype=np.float64),
        error=TypeError,
        match=re.escape("Input type (float32) and bias type (float64) should be the same")),
]


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_gconv_refuses_with_a_message(bad):
    with pytest.raises(bad.error, match=bad.match):
        gconv.conv2d(bad.input, bad.weight, bad.bias, **bad.kwargs)


def _as_torch(a):
    if isinstance(a, np.ndarray) and a.dtype != object:
        return torch.from_numpy(np.ascontiguousarray(a))
    return a


@pytest.mark.parametrize("bad", [b for b in BAD if b.torch_refuses], ids=repr)
def test_torch_refuses_the_same_input(bad):
    # RuntimeError is torch's usual class; what matters is that it refuses too
    with pytest.raises((RuntimeError, ValueError, TypeError, NotImplementedError)):
        F.conv2d(_as_torch(bad.input), _as_torch(bad.weight), _as_torch(bad.bias),
                 **bad.kwargs)


@pytest.mark.parametrize("bad", [b for b in BAD if isinstance(b.weight, np.ndarray)
                                 and isinstance(b.input, np.ndarray) and b.bias is None
                                 and b.input.dtype == b.weight.dtype == np.float32],
                         ids=repr)
def test_conv2d_output_shape_refuses_the_same_shapes(bad):
    """The shape-only helper runs the same checks as conv2d."""
    with pytest.raises(bad.error, match=bad.match):
        gconv.conv2d_output_shape(bad.input.shape, bad.weight.shape, **bad.kwargs)


# -- an empty batch is not an error ---------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["auto", "general", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_empty_batch_gives_empty_output(dtype, algorithm):
    x, w, b = z(0, 6, 9, 7, dtype=dtype), z(4, 3, 3, 3, dtype=dtype), z(4, dtype=dtype)
    y = gconv.conv2d(x, w, b, stride=2, padding=1, groups=2, algorithm=algorithm)
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                        stride=2, padding=1, groups=2)
    assert y.shape == tuple(expected.shape) == (0, 4, 5, 4)
    assert y.dtype == dtype


def test_empty_batch_is_still_checked():
    with pytest.raises(ValueError, match="expected input\\[0, 5, 8, 8\\] to have 6 channels"):
        gconv.conv2d(z(0, 5, 8, 8), z(4, 3, 3, 3), groups=2)


# -- other arguments ------------------------------------------------------------------------
def test_unknown_padding_mode():
    with pytest.raises(ValueError, match=r"padding_mode must be one of .*'zeros'.*'reflect'"
                                         r".*'replicate'.*'circular'.*got padding_mode='mirror'"):
        gconv.conv2d(z(1, 2, 5, 5), z(2, 2, 3, 3), padding=1, padding_mode="mirror")


def test_conv2d_output_shape_rank_check():
    with pytest.raises(ValueError, match=re.escape("input of size: [8, 8]")):
        gconv.conv2d_output_shape((8, 8), (4, 8, 3, 3))


def test_nan_input_is_computed_not_refused():
    """Values are not validated: NaN propagates as in torch (no silent zeroing)."""
    x = np.full((1, 1, 3, 3), np.nan, np.float32)
    y = gconv.conv2d(x, np.ones((1, 1, 3, 3), np.float32))
    assert np.isnan(y).all()
