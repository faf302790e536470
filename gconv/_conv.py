"""The public front end: ``conv2d`` and ``Conv2d``.

Every call goes: validate and normalise arguments -> one ConvProblem -> pick an
implementation (gconv/_dispatch.py) -> plan the kernel (blocking, threads) -> prepare
weights -> run the compiled kernel into a preallocated output. Everything up to the kernel
depends only on the arguments' shapes, dtypes and options, so it is cached by those: a
repeated call with the same signature goes straight to the kernel. The caller's arrays are
never written to (except ``out``).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

from . import _activation, _dispatch, _isa, _kernels, _plan_cache, _threads
from ._reference import apply_activation
from ._types import (ActivationSpec, Algorithm, FloatArray, IntOrPair, Layout, Padding,
                     PaddingMode)
from ._validation import (as_float_array, check_groups, check_layer_options,
                          FrozenParameters, check_padding_mode, check_same_dtype,
                          normalize_padding, pair, problem_from_shapes, torch_init)

LAYOUTS = ("NCHW", "NHWC")
_NUMPY_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _contiguous(a, dtype):
    if a.flags.c_contiguous and a.dtype == dtype:
        return a
    return np.ascontiguousarray(a, dtype=dtype)


class CallPlan:
    """Everything fixed for one call signature: the problem, the implementation, the
    compiled kernel's plan and how to map the caller's arrays onto the kernel's."""

    __slots__ = ("problem", "impl", "kernel_plan", "activation", "batched", "layout",
                 "mode_pads", "padding_mode", "gather", "user_output_shape", "n_threads")

    def __init__(self, problem, impl, activation, batched, layout, padding_mode, mode_pads,
                 gather=None):
        self.problem = problem
        self.impl = impl
        self.activation = activation
        self.batched = batched
        self.layout = layout
        self.padding_mode = padding_mode
        self.mode_pads = mode_pads           # pads applied by np.pad for non-zero modes
        self.gather = gather                 # (rows, cols): see WindowGather
        self.n_threads = _threads.threads_for(problem)
        self.kernel_plan = impl.make_plan(problem, _isa.isa_level(), self.n_threads)
        if self.kernel_plan is not None:
            a = activation
            self.kernel_plan.set_epilogue(a.code, a.alpha, a.lo, a.hi)
        N, C, OH, OW = problem.output_shape
        shape = (N, OH, OW, C) if layout == "NHWC" else (N, C, OH, OW)
        self.user_output_shape = shape if batched else shape[1:]

    @property
    def is_simple(self):
        """NCHW, batched, zero padding: the caller's arrays go to the kernel as they are."""
        return (self.batched and self.layout == "NCHW" and self.mode_pads is None
                and self.gather is None)


def _check_layout(layout):
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def _make_call_plan(input, weight, bias, stride, padding, dilation, groups, activation,
                    padding_mode, layout, algorithm):
    """Validate one call's arguments (slow path) and build its CallPlan."""
    x = as_float_array(input, "input")
    w = as_float_array(weight, "weight")
    b = as_float_array(bias, "bias", allow_none=True)
    _check_layout(layout)
    check_padding_mode(padding_mode)
    act = _activation.parse_activation(activation)
    if x.ndim not in (3, 4):
        raise ValueError("Expected 3D (unbatched) or 4D (batched) input to conv2d, but got "
                         f"input of size: {list(x.shape)}")
    batched = x.ndim == 4
    shape = x.shape if batched else (1, *x.shape)
    if layout == "NHWC":
        shape = (shape[0], shape[3], shape[1], shape[2])
    mode_pads = None
    if padding_mode != "zeros":
        if w.ndim == 4:
            check_groups(groups)      # torch checks groups before padding
            stride_, dilation_ = pair(stride, "stride"), pair(dilation, "dilation")
            pads = normalize_padding(padding, shape[2], shape[3], w.shape[2], w.shape[3],
                                     stride_, dilation_)
            _check_mode_pads(padding_mode, pads, shape)
            if any(pads):     # the kernel sees the padded input, with no padding of its own
                mode_pads = pads
                shape = (shape[0], shape[1], shape[2] + pads[0] + pads[1],
                         shape[3] + pads[2] + pads[3])
            padding = 0
    if w.ndim != 4:
        raise ValueError(f"Expected 4-dimensional weight (C_out, C_in / groups, kH, kW) for "
                         f"conv2d, but got weight of size {list(w.shape)}")
    check_same_dtype(x, w, b)
    problem = problem_from_shapes(shape, w.shape, stride, padding, dilation, groups,
                                  dtype=x.dtype, bias_shape=None if b is None else b.shape)
    problem, gather, impl = select_implementation(problem, algorithm)
    return CallPlan(problem, impl, act, batched, layout, padding_mode, mode_pads, gather)


def select_implementation(problem, algorithm="auto"):
    """(problem the kernels run, its WindowGather or None, the implementation that runs
    it): what a call does with ``problem``, for the call itself, explain, check and dask's
    plan matching alike."""
    gather = WindowGather.of(problem)
    if gather is not None:
        problem = gather.problem
    return problem, gather, _dispatch.select(problem, algorithm)


class WindowGather:
    """A stride (or dilation) far beyond the kernel's reach, gathered away.

    Along an axis whose stride s exceeds both the kernel's extent d*(k-1)+1 and
    GATHER_MIN_STRIDE, the windows lie apart and most input rows are read by no tap. The
    kernels would still split the padded input into s phases per axis (s*s planes in all,
    most of them read by nobody), so their scratch and time grow with the stride (stride
    4096 on a 32x32 input: 3.4 GB); a stride past the padded input overflowed their sizes.
    Instead the façade copies just the rows (columns) the taps read, tap by tap, with zeros
    where a tap falls in the padding, and runs the same convolution on that copy with
    stride k, dilation 1 and no padding: the same products, with memory bounded by the
    output's rows times k. A dilated kernel spanning more than twice the input (plus 64) is
    gathered alike. Real networks never stride past 8 nor dilate past their planes (a 1x1
    stride-2 downsample, DeepLab's dilation 6-24, keep the kernels' own fused path).
    """
    GATHER_MIN_STRIDE = 8

    def __init__(self, problem, rows, cols):
        self.rows, self.cols = rows, cols
        kh, kw = problem.KH, problem.KW
        (sh, sw), (dh, dw), (pt, pb, pl, pr) = problem.stride, problem.dilation, problem.padding
        H, W = problem.H, problem.W
        if rows is not None:
            H, sh, dh, pt, pb = len(rows), kh, 1, 0, 0
        if cols is not None:
            W, sw, dw, pl, pr = len(cols), kw, 1, 0, 0
        self.problem = dataclasses.replace(problem, H=H, W=W, stride=(sh, sw),
                                           dilation=(dh, dw), padding=(pt, pb, pl, pr))

    @staticmethod
    def _taps(size, k, s, d, pad_begin, n_out):
        """Input index of tap j of output i at [i*k + j] (-1: padding), or None when the
        axis runs as it is: gathered when the stride leaves gaps past GATHER_MIN_STRIDE, or
        when the dilated kernel spans far more than the input (then most taps read padding,
        and the kernels' halo rows would grow with the dilation)."""
        extent = d * (k - 1) + 1
        if s <= max(extent, WindowGather.GATHER_MIN_STRIDE) and extent <= 2 * size + 64:
            return None
        idx = [i * s - pad_begin + j * d for i in range(n_out) for j in range(k)]
        return np.array([t if 0 <= t < size else -1 for t in idx], dtype=np.intp)

    @classmethod
    def of(cls, p):
        """The gather problem ``p`` needs, or None."""
        (sh, sw), (dh, dw) = p.stride, p.dilation
        rows = cls._taps(p.H, p.KH, sh, dh, p.padding[0], p.OH)
        cols = cls._taps(p.W, p.KW, sw, dw, p.padding[2], p.OW)
        return None if rows is None and cols is None else cls(p, rows, cols)

    def __call__(self, x):
        """x (N, C, H, W) -> the copy the gathered problem reads."""
        for axis, idx in ((2, self.rows), (3, self.cols)):
            if idx is not None:
                shape = list(x.shape)
                shape[axis] = len(idx)
                g = np.zeros(shape, dtype=x.dtype)
                inside = idx >= 0
                sel = [slice(None)] * 4
                sel[axis] = inside
                g[tuple(sel)] = np.take(x, idx[inside], axis=axis)
                x = g
        return x


def _check_mode_pads(mode, pads, shape):
    pt, pb, pl, pr = pads
    H, W = shape[2], shape[3]
    if mode == "reflect" and (max(pt, pb) >= H or max(pl, pr) >= W):
        raise ValueError(f"padding_mode='reflect' needs each pad smaller than the input size: "
                         f"got pads (top, bottom, left, right)={pads} for input of size "
                         f"{H}x{W}")
    if mode == "circular" and (max(pt, pb) > H or max(pl, pr) > W):
        raise ValueError(f"padding_mode='circular' needs each pad at most the input size "
                         f"(it would wrap around more than once): got pads "
                         f"(top, bottom, left, right)={pads} for input of size {H}x{W}")


def _check_out(out, shape, dtype, arrays):
    """``out=``: an ndarray of the output's shape and dtype, writeable, C-contiguous, not
    overlapping any of ``arrays`` ((name, array or None) pairs)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"out must have shape {tuple(shape)} and dtype "
                         f"{dtype}, got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writeable, C-contiguous array")
    for name, a in arrays:
        if a is not None and np.may_share_memory(out, a):
            raise ValueError(f"out must not overlap {name}")


def _check_residual(residual, cp):
    r = as_float_array(residual, "residual")
    if r.shape != cp.user_output_shape:
        raise ValueError(f"residual must have the output's shape {cp.user_output_shape}, "
                         f"got {r.shape}")
    if r.dtype != cp.problem.dtype:
        raise TypeError(f"Input type ({cp.problem.dtype}) and residual type ({r.dtype}) "
                        f"should be the same")
    return r


def _to_kernel_layout(a, cp, dtype):
    """Caller's input (or residual) -> C-contiguous NCHW of the problem's dtype."""
    if not cp.batched:
        a = a[None]
    if cp.layout == "NHWC":
        a = a.transpose(0, 3, 1, 2)
    return _contiguous(a, dtype)


def _execute(cp, input, weight, bias, residual, out, prepared_weight=None):
    """Run a CallPlan on the caller's arrays; returns the output in the caller's layout."""
    p = cp.problem
    dtype = p.dtype
    x = _to_kernel_layout(input, cp, dtype)
    if cp.mode_pads is not None:
        pt, pb, pl, pr = cp.mode_pads
        x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), mode=_NUMPY_PAD_MODE[cp.padding_mode])
    if cp.gather is not None:
        x = cp.gather(x)
    b = None if bias is None else _contiguous(bias, dtype)
    r = None if residual is None else _to_kernel_layout(residual, cp, dtype)
    # NCHW, zero padding: the kernel writes straight into `out` (a view adds the batch axis)
    direct_out = out is not None and cp.layout == "NCHW" and cp.mode_pads is None
    if direct_out:
        y = out if cp.batched else out[None]
    else:
        y = np.empty(p.output_shape, dtype=dtype)
    if cp.kernel_plan is None:        # the reference
        w = _contiguous(weight, dtype)
        y[...] = _dispatch.run_reference(p, x, w, b)
        if r is not None:
            y += r
        apply_activation(y, cp.activation.name, cp.activation.alpha, cp.activation.lo,
                         cp.activation.hi)
    else:
        if prepared_weight is None:
            prepared_weight = cp.impl.prepare_weight(cp.kernel_plan, _contiguous(weight, dtype))
        cp.kernel_plan.run(x, prepared_weight, b, r, y)
    if direct_out:
        return out
    if cp.layout == "NHWC":
        y = y.transpose(0, 2, 3, 1)
    if not cp.batched:
        y = y[0]
    if out is not None:
        out[...] = y
        return out
    return np.ascontiguousarray(y) if cp.layout == "NHWC" else y


def _run_lean(cp, input, prepared_weight, bias):
    """The common case, kept lean: a simple CallPlan (see is_simple) with a kernel, no
    residual, no out; bias None or C-contiguous of the problem's dtype. The arrays' types
    and dtypes are part of the callers' cache keys, so nothing is checked here."""
    dtype = cp.problem.dtype
    y = np.empty(cp.user_output_shape, dtype=dtype)
    cp.kernel_plan.run(_contiguous(input, dtype), prepared_weight, bias, None, y)
    return y


# A cache hit must never skip a check that a miss would make: 1 == 1.0 == True (and hash
# alike), so only arguments made of exact ints and strings key the cache; a float, bool or
# NumPy scalar goes through validation on every call (which refuses it or takes its value).
def _plain_ints(v):
    t = type(v)
    return t is int or t is str or (t is tuple and all(_plain_ints(e) for e in v))


def _plain_activation(a):
    t = type(a)
    if a is None or t is str or t is _activation.Activation:
        return True
    return t is tuple and all(type(e) in (str, int, float) for e in a)


def plain_signature(weight, bias, stride, padding, dilation, groups, activation,
                    padding_mode):
    """The call's signature past the input, for the plan cache (gconv/_plan_cache.py), or
    None when an argument is not plain (the call is then validated every time)."""
    if (type(weight) is np.ndarray and (bias is None or type(bias) is np.ndarray)
            and (type(stride) is int or _plain_ints(stride))
            and (type(padding) is int or _plain_ints(padding))
            and (type(dilation) is int or _plain_ints(dilation))
            and type(groups) is int and (activation is None or _plain_activation(activation))
            and type(padding_mode) is str):
        return (weight.shape, weight.dtype, None if bias is None else (bias.shape, bias.dtype),
                stride, padding, dilation, groups, type(activation), activation, padding_mode)
    return None


def _call_plan(input, weight, bias, stride, padding, dilation, groups, activation,
               padding_mode, layout, algorithm, signature=False):
    """The cached CallPlan of this call, made (and validated) on first use. ``signature``:
    the plain_signature of the call's arguments when the caller keeps it (a layer)."""
    if signature is False:
        signature = plain_signature(weight, bias, stride, padding, dilation, groups,
                                    activation, padding_mode)
    key = cp = None
    if signature is not None and type(input) is np.ndarray and type(layout) is str \
            and type(algorithm) is str:
        key = (input.shape, input.dtype, signature, layout, algorithm, _plan_cache.setting())
        cp = _plan_cache.PLANS.get(key)
    if cp is None:
        cp = _plan_cache.put(key, _make_call_plan(input, weight, bias, stride, padding,
                                                  dilation, groups, activation, padding_mode,
                                                  layout, algorithm))
    return cp


def conv2d(input: FloatArray, weight: FloatArray, bias: Optional[FloatArray] = None,
           stride: IntOrPair = 1, padding: Padding = 0, dilation: IntOrPair = 1,
           groups: int = 1, *, activation: ActivationSpec = None,
           residual: Optional[FloatArray] = None, out: Optional[FloatArray] = None,
           padding_mode: PaddingMode = "zeros", layout: Layout = "NCHW",
           algorithm: Algorithm = "auto") -> FloatArray:
    """2-D grouped convolution of NumPy arrays, as ``torch.nn.functional.conv2d``.

    input:    (N, C_in, H, W), or unbatched (C_in, H, W); float32 or float64
    weight:   (C_out, C_in // groups, kH, kW), same dtype as input
    bias:     (C_out,) or None
    stride, dilation: int or (h, w)
    padding:  int, (h, w), ((top, bottom), (left, right)), 'valid', 'same' (torch: stride 1),
              'same_upper' / 'same_lower' (ONNX auto_pad: output ceil(size / stride))
    groups:   C_in and C_out split into `groups` independent paths

    Beyond torch (keyword-only):
    activation:   fused epilogue, out = act(conv + bias + residual): None, 'relu',
                  'relu6', 'sigmoid', 'tanh', 'silu', 'hardswish', 'leaky_relu',
                  ('leaky_relu', slope), ('clamp', min, max)
    residual:     array of the output's shape added before the activation
    out:          preallocated C-contiguous output (shape and dtype must match); returned
    padding_mode: 'zeros', 'reflect', 'replicate', 'circular' (as nn.Conv2d)
    layout:       'NCHW' or 'NHWC' for input, residual and output (weights stay torch's)
    algorithm:    'auto', 'depthwise', 'pointwise', 'general' or 'reference'

    Returns a new array (N, C_out, OH, OW) of the input's dtype (or ``out``).
    """
    cp = _call_plan(input, weight, bias, stride, padding, dilation, groups, activation,
                    padding_mode, layout, algorithm)
    if cp.is_simple and residual is None and out is None and cp.kernel_plan is not None:
        dtype = cp.problem.dtype
        w = cp.impl.prepare_weight(cp.kernel_plan, _contiguous(weight, dtype))
        return _run_lean(cp, input, w, None if bias is None else _contiguous(bias, dtype))
    if residual is not None:
        residual = _check_residual(residual, cp)
    if out is not None:
        _check_out(out, cp.user_output_shape, cp.problem.dtype,
                   (("input", input), ("weight", weight), ("bias", bias),
                    ("residual", residual)))
    return _execute(cp, as_float_array(input, "input"), as_float_array(weight, "weight"),
                    bias if bias is None else as_float_array(bias, "bias"), residual, out)


def conv2d_output_shape(input_shape: Tuple[int, ...], weight_shape: Tuple[int, ...],
                        stride: IntOrPair = 1, padding: Padding = 0, dilation: IntOrPair = 1,
                        groups: int = 1) -> Tuple[int, ...]:
    """Output shape of conv2d for these shapes, with the same checks, without computing."""
    input_shape, weight_shape = tuple(input_shape), tuple(weight_shape)
    if len(input_shape) not in (3, 4):
        raise ValueError("Expected 3D (unbatched) or 4D (batched) input to conv2d, but got "
                         f"input of size: {list(input_shape)}")
    batched = len(input_shape) == 4
    p = problem_from_shapes(input_shape if batched else (1, *input_shape), weight_shape,
                            stride, padding, dilation, groups)
    return p.output_shape if batched else p.output_shape[1:]


def conv_layer_args(layer):
    """A conv layer's arguments as torch prints them: channels, kernel, stride, then only
    what differs from the defaults (Conv1d, Conv2d and gconv.torch's modules share it)."""
    s = (f"{layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}, "
         f"stride={layer.stride}")
    pad = layer.padding
    if pad != "valid" and (isinstance(pad, str) or any(pad)):
        s += f", padding={pad!r}"
    if any(d != 1 for d in layer.dilation):
        s += f", dilation={layer.dilation}"
    if layer.groups != 1:
        s += f", groups={layer.groups}"
    if layer.bias is None:
        s += ", bias=False"
    if layer.padding_mode != "zeros":
        s += f", padding_mode={layer.padding_mode!r}"
    activation = getattr(layer, "activation", None)
    if activation is not None and activation.name is not None:
        s += f", activation={activation.spec!r}"
    return s


# ---------------------------------------------------------------------------------------
class Conv2d(FrozenParameters):
    """A 2-D convolution layer, as ``torch.nn.Conv2d``, holding NumPy weights.

    ``weight`` (C_out, C_in // groups, kH, kW) and ``bias`` (C_out,) are initialised as
    torch does: uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)] (kaiming-uniform with a=sqrt(5)),
    fan_in = C_in // groups * kH * kW, drawn from ``rng`` (a numpy.random.Generator or seed).

    The weights are read-only arrays: assign a new array (``layer.weight = w``) to change
    them. The layer packs them once per kernel plan and repacks only after an assignment.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: Padding = 0, dilation: IntOrPair = 1,
                 groups: int = 1, bias: bool = True, padding_mode: PaddingMode = "zeros",
                 dtype=np.float32, rng=None, activation: ActivationSpec = None) -> None:
        options = check_layer_options(in_channels, out_channels, kernel_size, stride, padding,
                                      dilation, groups, padding_mode, dtype)
        self.in_channels, self.out_channels = options["in_channels"], options["out_channels"]
        self.kernel_size, self.stride = options["kernel_size"], options["stride"]
        self.padding, self.dilation = options["padding"], options["dilation"]
        self.groups, self.padding_mode = options["groups"], options["padding_mode"]
        self.dtype = options["dtype"]
        self.activation = _activation.parse_activation(activation)
        self._bias_enabled = bool(bias)
        # per input signature and setting: the CallPlan (from gconv/_plan_cache.py), the
        # weights packed for its kernel and its LeanCall; emptied when the weights change
        # (the bias goes to the kernel as it is, on every call: no plan depends on it)
        self._packed = {}
        self._signature = None     # the plan cache's id of its plain_signature: _resign
        self._lean = None     # the last signature's LeanCall: see __call__
        self._weight = self._bias = None
        self.reset_parameters(rng)

    # -- parameters ------------------------------------------------------------------------
    def reset_parameters(self, rng=None):
        kh, kw = self.kernel_size
        self.weight, self.bias = torch_init(
            rng, self.in_channels // self.groups * kh * kw,
            (self.out_channels, self.in_channels // self.groups, kh, kw),
            self.out_channels if self._bias_enabled else None)

    def _weight_shape(self):
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def _weight_changed(self):
        self._packed.clear()
        self._lean = None
        self._resign()

    def _bias_changed(self):
        self._resign()

    def _resign(self):
        """The layer's signature for the plan cache (its options are plain by construction;
        the bias's presence is part of it)."""
        if self._weight is not None:
            self._signature = _plan_cache.signature_id(plain_signature(
                self._weight, self._bias, self.stride, self.padding, self.dilation,
                self.groups, self.activation, self.padding_mode))

    # -- copies: the plan caches hold compiled objects; a copy starts without them ---------
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_packed"], state["_lean"], state["_signature"] = {}, None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._refreeze()
        self._resign()      # signature ids are this process's: another process has its own

    # -- forward ---------------------------------------------------------------------------
    def __call__(self, input: FloatArray, *, residual: Optional[FloatArray] = None,
                 out: Optional[FloatArray] = None, layout: Layout = "NCHW",
                 algorithm: Algorithm = "auto") -> FloatArray:
        """Run the layer on ``input`` (N, C_in, H, W) or (C_in, H, W): see ``forward``."""
        # A repeated call with no options but out: the LeanCall of the last signature checks
        # the input (and out) in C and runs the kernel (the seed layer: ~0.9 us in all,
        # against ~2 us through forward). It returns None when the arrays do not match.
        lean = self._lean
        if lean is not None and residual is None and layout == "NCHW" and algorithm == "auto":
            y = lean(input, self._bias, out)
            if y is not None:
                return y
        return self.forward(input, residual=residual, out=out, layout=layout,
                            algorithm=algorithm)

    def forward(self, input: FloatArray, *, residual: Optional[FloatArray] = None,
                out: Optional[FloatArray] = None, layout: Layout = "NCHW",
                algorithm: Algorithm = "auto") -> FloatArray:
        """Run the layer on ``input`` (N, C_in, H, W) or (C_in, H, W)."""
        if type(input) is not np.ndarray and _is_dask_array(input):
            from . import dask as _dask          # the "dask" extra, imported on demand
            if residual is not None or out is not None:
                raise TypeError("a layer called on a dask array takes no residual or out")
            return _dask.apply(self, input, layout=layout, algorithm=algorithm)
        # The plan comes from the one plan cache under the layer's signature, fixed until
        # its weights change; the layer keeps beside it, per input signature and setting,
        # what depends on its weights: the weights packed for that plan and a LeanCall. So a
        # repeated call costs one short lookup here (most come through __call__, whose
        # LeanCall skips even that); the plan cache is asked on a miss.
        key = entry = None
        if type(input) is np.ndarray:
            key = (input.shape, input.dtype, layout, algorithm, _plan_cache.setting())
            try:
                entry = self._packed.get(key)
            except TypeError:           # an unhashable layout or algorithm: not cached
                key = None
        if entry is None:
            cp = _call_plan(input, self._weight, self._bias, self.stride, self.padding,
                            self.dilation, self.groups, self.activation, self.padding_mode,
                            layout, algorithm, signature=self._signature)  # validates

            packed = lean = None
            if cp.kernel_plan is not None:
                packed = cp.impl.prepare_weight(cp.kernel_plan, self._weight)
                if (type(input) is np.ndarray and cp.is_simple and algorithm == "auto"
                        and input.dtype == cp.problem.dtype):
                    lean = _kernels.LeanCall(cp.kernel_plan, packed, input.shape,
                                             cp.user_output_shape, cp.problem.dtype.num)
            entry = (cp, packed, lean)
            if key is not None:
                if len(self._packed) >= 16:
                    self._packed.clear()
                self._packed[key] = entry
        cp, packed, lean = entry
        if residual is None and packed is not None and cp.is_simple:
            if lean is not None:    # this signature's, for the next call (with out= too)
                lean.renew()        # (the key holds the current ISA and thread count)
            self._lean = lean
            if out is None:
                return _run_lean(cp, input, packed, self._bias)    # the layer's own copy
        if residual is not None:
            residual = _check_residual(residual, cp)
        if out is not None:
            _check_out(out, cp.user_output_shape, cp.problem.dtype,
                       (("input", input), ("residual", residual)))
        return _execute(cp, as_float_array(input, "input"), self._weight, self._bias,
                        residual, out, packed)

    def plan(self, input_shape, *, dtype=None, layout: Layout = "NCHW",
             algorithm: Algorithm = "auto") -> "PathReport":
        """How a call on an input of ``input_shape`` runs, without running it: the
        implementation, the path its planner chose and why, the ISA and the threads (the
        same CallPlan the call would use, from the plan cache)."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        stand_in = np.broadcast_to(np.zeros((), dtype), tuple(input_shape))  # shape only
        cp = _call_plan(stand_in, self._weight, self._bias, self.stride, self.padding,
                        self.dilation, self.groups, self.activation, self.padding_mode,
                        layout, algorithm, signature=self._signature)
        return PathReport.of(cp)

    def __repr__(self):
        return f"Conv2d({conv_layer_args(self)})"


def _is_dask_array(a):
    """Without importing dask: a dask.array.Array (or a subclass) by its class's module."""
    return any(c.__module__.startswith("dask.array") and c.__name__ == "Array"
               for c in type(a).__mro__)


class UninitializedConv2d(Conv2d):
    """A Conv2d whose constructor draws no weights: for callers that assign them right
    after (gconv.torch, gconv.dask's workers) or want only its checks and shapes
    (explain)."""

    def reset_parameters(self, rng=None):
        pass


@dataclasses.dataclass(frozen=True)
class PathReport:
    """What runs a call: the implementation (gconv/_dispatch.py), the path its planner chose
    inside it (src/<kind>/report.h) and the reason, with the numbers that decided."""
    implementation: str
    path: str
    reason: str
    isa: str
    threads: int

    @classmethod
    def of(cls, cp):
        kp = cp.kernel_plan
        if kp is None:                  # the NumPy reference
            return cls(cp.impl.name, cp.impl.name, cp.impl.summary, "numpy", 1)
        return cls(cp.impl.name, kp.path, kp.path_reason, _isa.ISA_NAMES[kp.isa], kp.n_threads)

    def __str__(self):
        return f"{self.path} ({self.isa}, {self.threads} thread(s)): {self.reason}"
