"""Argument checks and normalisation for the public API.

Every message says what was expected and what was given; where torch has a message for
the same mistake, gconv uses torch's words (torch/nn/modules/conv.py and
aten/src/ATen/native/Convolution.cpp), so a torch user recognises it.
"""
import numbers
import operator

import numpy as np

from ._problem import ConvProblem, conv_output_size

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
PADDING_STRINGS = ("valid", "same", "same_upper", "same_lower")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _shape(a):
    return list(a.shape)


def as_float_array(a, name, allow_none=False):
    """Return ``a`` as an ndarray of float32/float64 in native byte order, or raise TypeError.

    Nothing is converted silently: ints, bools, complex, object arrays and anything that is
    not an ndarray are refused, as torch refuses a tensor of the wrong type.
    """
    if a is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a numpy.ndarray of float32 or float64, got None")
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32 or float64, "
                        f"got {type(a).__name__}")
    dt = a.dtype
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        raise TypeError(f"{name} must have dtype float32 or float64, got {dt}")
    if not dt.isnative:  # e.g. '>f4': same values, native order
        a = a.astype(dt.newbyteorder("="))
    return a


def check_same_dtype(x, w, b):
    if x.dtype != w.dtype:
        raise TypeError(f"Input type ({x.dtype}) and weight type ({w.dtype}) should be the same")
    if b is not None and b.dtype != x.dtype:
        raise TypeError(f"Input type ({x.dtype}) and bias type ({b.dtype}) should be the same")


# torch reads these arguments as C int64 and refuses larger ones (ValueError: "Overflow when
# unpacking long long"); so does gconv, before any arithmetic could wrap in the kernels.
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def as_int(value, name, allow_bool=False):
    """An integer argument: Python or NumPy ints that fit in int64; not floats or strings,
    and not bools unless ``allow_bool`` (torch takes a Python bool inside a tuple as an int,
    but refuses a bare one and NumPy's bool everywhere)."""
    if (isinstance(value, np.bool_) or (isinstance(value, bool) and not allow_bool)
            or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = operator.index(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{name} must fit in a 64-bit signed integer, got {value}")
    return int(value)


def ntuple(value, name, n):
    """An int, or a sequence of 1 or n ints -> an n-tuple of ints (torch's _pair and its
    expand_param_if_needed: (1,) means (1, 1)), with torch's message for a wrong length."""
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, n):
            raise ValueError(f"expected {name} to be a single integer value or a list of {n} "
                             f"values to match the convolution dimensions, but got "
                             f"{name}={list(value)}")
        items = tuple(as_int(v, name, allow_bool=True) for v in value)
        return items * n if len(items) == 1 else items
    return (as_int(value, name),) * n


def pair(value, name):
    """An int or a sequence of 2 ints -> (a, b)."""
    return ntuple(value, name, 2)


def check_stride_dilation(stride, dilation):
    if min(stride) <= 0:
        raise ValueError(f"non-positive stride is not supported (got stride={stride})")
    if min(dilation) <= 0:
        raise ValueError(f"dilation should be greater than zero (got dilation={dilation})")


def check_groups(groups):
    groups = as_int(groups, "groups")
    if groups <= 0:
        raise ValueError(f"non-positive groups is not supported (got groups={groups})")
    return groups


def normalize_padding(padding, H, W, KH, KW, stride, dilation):
    """padding -> (top, bottom, left, right).

    Accepts an int, (ph, pw), ((top, bottom), (left, right)), or a string:
      'valid'       no padding;
      'same'        torch's rule: stride must be 1; total d*(k-1), the odd pixel at the end;
      'same_upper'  ONNX auto_pad SAME_UPPER: output ceil(L / s), the odd pixel at the end;
      'same_lower'  ONNX auto_pad SAME_LOWER: the same, the odd pixel at the start.
    """
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                             f"{PADDING_STRINGS}")
        if padding == "valid":
            return (0, 0, 0, 0)
        pads = []
        for size, k, s, d in ((H, KH, stride[0], dilation[0]), (W, KW, stride[1], dilation[1])):
            if padding == "same":
                if s != 1:
                    raise ValueError("padding='same' is not supported for strided convolutions "
                                     f"(got stride={tuple(stride)}); padding='same_upper' or "
                                     "'same_lower' give ONNX's rule for any stride")
                total = d * (k - 1)
                begin = total // 2
            else:
                out = -(-size // s)  # ceil(size / s)
                total = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
                begin = total // 2 if padding == "same_upper" else total - total // 2
            pads += [begin, total - begin]
        return tuple(pads)
    if is_nested_padding(padding):
        (pt, pb), (pl, pr) = (pair(padding[0], "padding"), pair(padding[1], "padding"))
        pads = (pt, pb, pl, pr)
    else:
        ph, pw = pair(padding, "padding")
        pads = (ph, ph, pw, pw)
    if min(pads) < 0:
        raise ValueError(f"negative padding is not supported (got padding={padding!r})")
    return pads


def is_nested_padding(padding):
    """((top, bottom), (left, right)): gconv's asymmetric form."""
    return (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding))


def check_padding_mode(padding_mode):
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, but got "
                         f"padding_mode={padding_mode!r}")
    return padding_mode


def check_layer_channels(in_channels, out_channels, groups):
    """A layer's channel counts and groups (every layer class: torch's words) -> ints."""
    in_channels = as_int(in_channels, "in_channels")
    out_channels = as_int(out_channels, "out_channels")
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, numbers.Integral) \
            or groups <= 0:
        raise ValueError("groups must be a positive integer")
    groups = as_int(groups, "groups")
    if in_channels <= 0 or out_channels <= 0:
        raise ValueError(f"in_channels and out_channels must be positive, got "
                         f"in_channels={in_channels}, out_channels={out_channels}")
    if in_channels % groups != 0:
        raise ValueError("in_channels must be divisible by groups")
    if out_channels % groups != 0:
        raise ValueError("out_channels must be divisible by groups")
    return in_channels, out_channels, groups


def frozen_parameter(value, shape, dtype, name):
    """A layer's weight or bias: a C-contiguous read-only copy of ``value`` of ``dtype``,
    which must have ``shape`` (the layer then repacks what depends on it)."""
    a = np.array(value, dtype=dtype, order="C", copy=True)
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    a.flags.writeable = False
    return a


class FrozenParameters:
    """``weight`` and ``bias`` of a layer as read-only arrays (frozen_parameter) of its dtype.
    The layer says its weight's shape (``_weight_shape``) and what a new weight or bias
    makes stale (``_weight_changed`` / ``_bias_changed``); ``_refreeze`` makes the arrays of
    an unpickled copy read-only again."""

    def _weight_shape(self):
        raise NotImplementedError

    def _weight_changed(self):
        pass

    def _bias_changed(self):
        pass

    @property
    def weight(self):
        return self._weight

    @weight.setter
    def weight(self, value):
        self._weight = frozen_parameter(value, self._weight_shape(), self.dtype, "weight")
        self._weight_changed()

    @property
    def bias(self):
        return self._bias

    @bias.setter
    def bias(self, value):
        self._bias = (None if value is None
                      else frozen_parameter(value, (self.out_channels,), self.dtype, "bias"))
        self._bias_changed()

    def _refreeze(self):
        for a in (self._weight, self._bias):    # copies of arrays come back writeable
            if a is not None:
                a.flags.writeable = False


def torch_init(rng, fan_in, weight_shape, bias_size=None):
    """torch's initialisation of a conv layer: kaiming_uniform_(a=sqrt(5)) of the weight and
    the bias, both uniform in +-1/sqrt(fan_in), drawn from ``rng`` (a Generator or a seed).
    Returns (weight, bias or None) as float64 arrays."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    bound = 1.0 / np.sqrt(fan_in)
    weight = rng.uniform(-bound, bound, size=weight_shape)
    bias = None if bias_size is None else rng.uniform(-bound, bound, size=bias_size)
    return weight, bias


def check_layer_options(in_channels, out_channels, kernel_size, stride, padding, dilation,
                        groups, padding_mode, dtype):
    """nn.Conv2d's constructor checks (torch/nn/modules/conv.py's words). Returns the
    normalised options: channels and groups as ints, kernel_size/stride/dilation as pairs,
    padding as a string, a pair or ((top, bottom), (left, right)), and the dtype."""
    in_channels, out_channels, groups = check_layer_channels(in_channels, out_channels, groups)
    kernel_size = pair(kernel_size, "kernel_size")
    if min(kernel_size) <= 0:
        raise ValueError(f"kernel_size must be positive, got {kernel_size}")
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                             f"{PADDING_STRINGS}")
        if padding == "same" and stride != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
    elif is_nested_padding(padding):
        padding = (pair(padding[0], "padding"), pair(padding[1], "padding"))
    else:
        padding = pair(padding, "padding")
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dict(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size,
                stride=stride, padding=padding, dilation=dilation, groups=groups,
                padding_mode=check_padding_mode(padding_mode), dtype=dtype)


def check_weight_groups(w_shape, groups):
    """torch's checks that a weight's dimension 0 (C_out, or C_in of a transposed
    convolution's weight) splits into ``groups``; the shape (a list) as given."""
    if w_shape[0] < groups:
        raise ValueError(f"Given groups={groups}, expected weight to be at least {groups} at "
                         f"dimension 0, but got weight of size {w_shape} instead")
    if w_shape[0] % groups:
        raise ValueError(f"Given groups={groups}, expected weight to be divisible by {groups} "
                         f"at dimension 0, but got weight of size {w_shape} instead")


def check_group_channels(x_shape, w_shape, groups):
    """torch's checks that weight (C_out, C_in / groups, ...) fits groups and the input
    (N, C_in, ...); the shapes (lists) appear in the messages as given."""
    CG = w_shape[1]
    check_weight_groups(w_shape, groups)
    if x_shape[1] != CG * groups:
        raise ValueError(f"Given groups={groups}, weight of size {w_shape}, expected "
                         f"input{x_shape} to have {CG * groups} channels, but got "
                         f"{x_shape[1]} channels instead")


def check_output_size(shape, dtype):
    """Refuse an output no array can hold (counting an empty batch as one image, so the
    kernels never plan with sizes whose products overflow)."""
    n = max(shape[0], 1)
    for d in shape[1:]:
        n *= d
    if n * np.dtype(dtype).itemsize > np.iinfo(np.intp).max:
        raise ValueError(f"the output would have shape {tuple(shape)}: more elements than an "
                         f"array can hold (check stride, padding and dilation)")


def build_problem(x, w, b, stride, padding, dilation, groups):
    """Check everything about one conv2d call on arrays and return its ConvProblem.

    x, w, b are float ndarrays already (as_float_array); x is 4-D (N, C, H, W).
    """
    if w.ndim != 4:
        raise ValueError(f"Expected 4-dimensional weight (C_out, C_in / groups, kH, kW) for "
                         f"conv2d, but got weight of size {_shape(w)}")
    check_same_dtype(x, w, b)
    return problem_from_shapes(x.shape, w.shape, stride, padding, dilation, groups,
                               dtype=x.dtype, bias_shape=None if b is None else b.shape)


def problem_from_shapes(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                        *, dtype=np.float32, bias_shape=None):
    """Check one conv2d call given by shapes (no arrays) and return its ConvProblem.

    input_shape (N, C_in, H, W); weight_shape (C_out, C_in / groups, kH, kW); bias_shape
    (C_out,) or None for no bias. The checks and messages are conv2d's.
    """
    x_shape = [operator.index(d) for d in input_shape]
    w_shape = [operator.index(d) for d in weight_shape]
    if len(w_shape) != 4:
        raise ValueError(f"Expected 4-dimensional weight (C_out, C_in / groups, kH, kW) for "
                         f"conv2d, but got weight of size {w_shape}")
    groups = check_groups(groups)
    stride = pair(stride, "stride")
    dilation = pair(dilation, "dilation")
    check_stride_dilation(stride, dilation)
    C_out, CG, KH, KW = w_shape
    check_group_channels(x_shape, w_shape, groups)
    N, C, H, W = x_shape
    if KH == 0 or KW == 0:
        raise ValueError(f"kernel size should be greater than zero, but got kernel_height: "
                         f"{KH} kernel_width: {KW} (weight of size {w_shape})")
    if CG == 0:
        # torch returns an (N, 0, OH, OW) tensor here, whatever C_out is: a shape no
        # convolution has; gconv refuses (README: deliberate differences from torch)
        raise ValueError(f"Expected a non-empty kernel (C_in / groups >= 1), but got weight "
                         f"of size {w_shape} for input of size {x_shape}")
    if H == 0 or W == 0:
        raise ValueError(f"Only zero batch or zero channel inputs are supported, but got input "
                         f"shape: {x_shape}")
    if bias_shape is not None and tuple(bias_shape) != (C_out,):
        raise ValueError(f"Given weight of size {w_shape}, expected bias to be 1-dimensional "
                         f"with {C_out} elements, but got bias of size {list(bias_shape)} "
                         f"instead")
    pads = normalize_padding(padding, H, W, KH, KW, stride, dilation)
    pt, pb, pl, pr = pads
    ext_h, ext_w = dilation[0] * (KH - 1) + 1, dilation[1] * (KW - 1) + 1
    if H + pt + pb < ext_h or W + pl + pr < ext_w:
        raise ValueError(f"Calculated padded input size per channel: ({H + pt + pb} x "
                         f"{W + pl + pr}). Kernel size: ({ext_h} x {ext_w}). Kernel size can't "
                         f"be greater than actual input size")
    OH = conv_output_size(H, KH, stride[0], dilation[0], pt, pb)
    OW = conv_output_size(W, KW, stride[1], dilation[1], pl, pr)
    check_output_size((N, C_out, OH, OW), dtype)
    return ConvProblem(N=N, C_in=C, H=H, W=W, C_out=C_out, groups=groups, KH=KH, KW=KW,
                       stride=stride, padding=pads, dilation=dilation, dtype=np.dtype(dtype),
                       has_bias=bias_shape is not None)
