"""The PyTorch adapter: torch layers to gconv layers, gconv inside torch models, and checks.

    import gconv.torch
    layer = gconv.torch.from_torch(torch_conv)      # a gconv.Conv2d / Conv1d /
                                                    # ConvTranspose2d / 1d, same weights
    model = gconv.torch.convert(model.eval())       # fused, run by gconv (inference)
    model = gconv.torch.convert(model.train())      # conv layers swapped (training too)
    print(gconv.torch.cross_check(torch_conv, x))   # torch's output against gconv's

An optional extra (``pip install "gconv[torch]"``); ``import gconv`` never imports it.

Training: when autograd needs gradients (an input or a parameter requires grad and grad
mode is on), a converted layer runs through ``GconvFunction``, a torch.autograd.Function
whose forward is gconv's forward and whose backward is gconv.grad (input, weight and bias
gradients by gconv's kernels). Non-zero padding modes pad with torch's F.pad first (so
autograd differentiates the padding) and convolve with no padding. Double backward is not
supported (the Function is once-differentiable: torch raises a clear error). Without
gradients (torch.no_grad(), inference_mode, frozen parameters) the layers run gconv's
layers directly, their weights packed once until they change.
"""
import copy
import math

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as e:     # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError('gconv.torch needs PyTorch: pip install torch==2.13.0 '
                      '(or pip install "gconv[torch]")') from e

from torch.autograd.function import once_differentiable

from . import _check
from . import grad as _grad
from . import _torch_fuse
from ._conv import Conv2d, conv2d, conv_layer_args
from ._conv1d import Conv1d, _padding_1d, _resolve_pads, conv1d
from ._torch_fuse import ConvertReport
from ._transpose import (ConvTranspose1d, ConvTranspose2d, conv_transpose1d, conv_transpose2d,
                         output_padding_for)
from ._validation import normalize_padding

__all__ = ["from_torch", "convert", "cross_check", "CrossCheckReport", "GconvConv1d",
           "GconvConv2d", "GconvConvTranspose1d", "GconvConvTranspose2d", "GconvFunction",
           "ConvertReport"]

_DTYPES = _torch_fuse._DTYPES          # torch dtype -> NumPy dtype gconv computes in


def _numpy_dtype(module):
    dtype = module.weight.dtype
    if dtype not in _DTYPES:
        raise TypeError(f"gconv computes in float32 or float64; {type(module).__name__} has "
                        f"weights of {dtype}")
    return _DTYPES[dtype]


def _as_numpy(t):
    """A CPU tensor's memory as a NumPy array (a view, no copy)."""
    return t.detach().resolve_conj().resolve_neg().numpy()


_CONVERTIBLE = (nn.Conv2d, nn.Conv1d, nn.ConvTranspose2d, nn.ConvTranspose1d)


def _conv_kind(module):
    """2 / 1 for nn.Conv2d / Conv1d, -2 / -1 for nn.ConvTranspose2d / 1d."""
    if isinstance(module, nn.Conv2d):
        return 2
    if isinstance(module, nn.Conv1d):
        return 1
    if isinstance(module, nn.ConvTranspose2d):
        return -2
    if isinstance(module, nn.ConvTranspose1d):
        return -1
    raise TypeError(f"from_torch takes a torch.nn.Conv2d, Conv1d, ConvTranspose2d or "
                    f"ConvTranspose1d, got {type(module).__module__}."
                    f"{type(module).__qualname__}")


def _gconv_layer(kind, config, weight, bias):
    """A gconv layer (Conv2d, Conv1d, ConvTranspose2d or ConvTranspose1d for kind 2, 1, -2,
    -1) with ``config``'s settings (anything with nn.ConvNd's attributes) and these weight
    / bias tensors."""
    if weight.dtype not in _DTYPES:
        raise TypeError(f"gconv computes in float32 or float64; the layer has weights of "
                        f"{weight.dtype}")
    if kind < 0:
        cls = ConvTranspose2d if kind == -2 else ConvTranspose1d
        layer = cls(config.in_channels, config.out_channels, config.kernel_size,
                    stride=config.stride, padding=config.padding,
                    output_padding=config.output_padding, groups=config.groups,
                    bias=bias is not None, dilation=config.dilation,
                    padding_mode=config.padding_mode, dtype=_DTYPES[weight.dtype], rng=0)
    else:
        cls = Conv2d if kind == 2 else Conv1d
        layer = cls(config.in_channels, config.out_channels, config.kernel_size,
                    stride=config.stride, padding=config.padding, dilation=config.dilation,
                    groups=config.groups, bias=bias is not None,
                    padding_mode=config.padding_mode, dtype=_DTYPES[weight.dtype], rng=0)
    layer.weight = _as_numpy(weight.cpu())
    if bias is not None:
        layer.bias = _as_numpy(bias.cpu())
    return layer


def from_torch(module):
    """``nn.Conv2d`` / ``nn.Conv1d`` / ``nn.ConvTranspose2d`` / ``nn.ConvTranspose1d`` ->
    ``gconv.Conv2d`` / ``Conv1d`` / ``ConvTranspose2d`` / ``ConvTranspose1d`` with the same
    configuration (groups, stride, padding incl. strings, output_padding, dilation,
    padding_mode) and a copy of its weights, in the module's dtype (float32 or float64)."""
    return _gconv_layer(_conv_kind(module), module, module.weight, module.bias)


# -- training: an autograd Function whose backward is gconv.grad ----------------------------
class _Geometry:
    """One converted call's geometry, resolved for the input's size: the forward and the
    three gradients, on NumPy arrays. ``pads``: conv: ((top, bottom), (left, right)) or
    (left, right); transposed: torch's padding; ``output_padding``: transposed only."""

    def __init__(self, kind, stride, pads, dilation, groups, output_padding=None):
        self.kind, self.stride, self.pads, self.dilation = kind, stride, pads, dilation
        self.groups, self.output_padding = groups, output_padding

    def forward(self, x, w, b):
        k = self.kind
        if k == 2:
            return conv2d(x, w, b, self.stride, self.pads, self.dilation, self.groups)
        if k == 1:
            return conv1d(x, w, b, self.stride, self.pads, self.dilation, self.groups)
        f = conv_transpose2d if k == -2 else conv_transpose1d
        return f(x, w, b, self.stride, self.pads, self.output_padding, self.groups,
                 self.dilation)

    def input_grad(self, x_shape, w, gy):
        k = self.kind
        if k > 0:
            f = _grad.conv2d_input if k == 2 else _grad.conv1d_input
            return f(x_shape, w, gy, self.stride, self.pads, self.dilation, self.groups)
        f = _grad.conv_transpose2d_input if k == -2 else _grad.conv_transpose1d_input
        return f(x_shape, w, gy, self.stride, self.pads, self.output_padding, self.groups,
                 self.dilation)

    def weight_grad(self, x, w_shape, gy):
        k = self.kind
        if k > 0:
            f = _grad.conv2d_weight if k == 2 else _grad.conv1d_weight
            return f(x, w_shape, gy, self.stride, self.pads, self.dilation, self.groups)
        f = _grad.conv_transpose2d_weight if k == -2 else _grad.conv_transpose1d_weight
        return f(x, w_shape, gy, self.stride, self.pads, self.output_padding, self.groups,
                 self.dilation)

    def bias_grad(self, gy):
        return (_grad.conv2d_bias if abs(self.kind) == 2 else _grad.conv1d_bias)(gy)


class GconvFunction(torch.autograd.Function):
    """``GconvFunction.apply(input, weight, bias, geometry)``: gconv's convolution (or
    transposed convolution) under autograd; its backward computes the input, weight and
    bias gradients that are needed with gconv.grad. Once differentiable."""

    @staticmethod
    def forward(ctx, input, weight, bias, geometry):
        ctx.geometry = geometry
        ctx.save_for_backward(input, weight)
        ctx.has_bias = bias is not None
        y = geometry.forward(_as_numpy(input), _as_numpy(weight),
                             None if bias is None else _as_numpy(bias))
        return torch.from_numpy(y)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        x, w = ctx.saved_tensors
        g = ctx.geometry
        gy = np.ascontiguousarray(_as_numpy(grad_output))    # may be expanded (stride 0)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = torch.from_numpy(g.input_grad(tuple(x.shape), _as_numpy(w), gy))
        if ctx.needs_input_grad[1]:
            dw = torch.from_numpy(g.weight_grad(_as_numpy(x), tuple(w.shape), gy))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = torch.from_numpy(g.bias_grad(gy))
        return dx, dw, db, None


def _torch_pad_order(pads):
    """((top, bottom), (left, right)) or (left, right) -> F.pad's (left, right, top, ...)."""
    if isinstance(pads[0], tuple):
        return (*pads[1], *pads[0])
    return tuple(pads)


# -- gconv inside torch models --------------------------------------------------------------
class _GconvConvNd(nn.Module):
    """A torch module that runs its forward pass with gconv (CPU, float32/float64), and its
    backward with gconv.grad when autograd needs gradients (see GconvFunction). It keeps
    the original layer's ``weight`` and ``bias`` parameters (the same Parameter objects,
    trainable as they were), so state_dict keys and values are unchanged; the gconv layer
    used without autograd is rebuilt (its weights repacked) whenever they change, e.g.
    after ``load_state_dict`` or an optimizer step."""

    _dims = None

    def __init__(self, module):
        super().__init__()
        kind = _conv_kind(module)
        if kind != self._dims:                       # pragma: no cover - _wrap picks it
            raise TypeError(f"{type(self).__name__} cannot wrap {type(module).__name__}")
        _numpy_dtype(module)
        names = ["in_channels", "out_channels", "kernel_size", "stride", "padding",
                 "dilation", "groups", "padding_mode"]
        if kind < 0:
            names.append("output_padding")
        for name in names:
            setattr(self, name, getattr(module, name))
        if kind < 0 and module.padding_mode != "zeros":   # pragma: no cover - torch refuses
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f'{type(module).__name__}')
        self.weight = module.weight
        if module.bias is not None:
            self.bias = module.bias
        else:
            self.register_parameter("bias", None)
        self._layer = None
        self._layer_key = None
        self.train(module.training)          # the replaced layer's mode, as the model's

    def _param_key(self):
        return tuple((p.dtype, p.device, p.data_ptr(), p._version)
                     for p in (self.weight, self.bias) if p is not None)

    def _gconv(self):
        key = self._param_key()
        if key != self._layer_key:
            self._layer = _gconv_layer(self._dims, self, self.weight, self.bias)
            self._layer_key = key
        return self._layer

    def _check_can_run(self, input):
        name = type(self).__name__
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"{name} expects a torch.Tensor, got {type(input).__name__}")
        if input.device.type != "cpu" or self.weight.device.type != "cpu":
            raise RuntimeError(f"gconv runs on the CPU; got input on {input.device} and "
                               f"weights on {self.weight.device}: move them with .cpu(), or "
                               f"keep torch's layer for this device")
        if input.dtype not in _DTYPES:
            raise TypeError(f"gconv computes in float32 or float64; {name} got an input of "
                            f"{input.dtype}")

    def _needs_grad(self, input):
        return torch.is_grad_enabled() and (
            input.requires_grad or any(p is not None and p.requires_grad
                                       for p in (self.weight, self.bias)))

    def _autograd_forward(self, input, output_size=None):
        """The forward under autograd: GconvFunction with this input's geometry."""
        kind = self._dims
        if self.weight.dtype != input.dtype:
            raise TypeError(f"Input type ({input.dtype}) and weight type "
                            f"({self.weight.dtype}) should be the same")
        if kind < 0:
            n = -kind
            pads = tuple((p, p) for p in self.padding)
            op = tuple(self.output_padding)
            if output_size is not None:
                op = output_padding_for(output_size, tuple(input.shape[-n:]), self.kernel_size,
                                        self.stride, pads, self.dilation)
            geometry = _Geometry(kind, self.stride, self.padding, self.dilation, self.groups,
                                 op)
        else:
            if kind == 2:
                H, W = input.shape[-2:]
                pt, pb, pl, pr = normalize_padding(self.padding, H, W, *self.kernel_size,
                                                   self.stride, self.dilation)
                pads = ((pt, pb), (pl, pr))
            else:
                pads = _resolve_pads(_padding_1d(self.padding), input.shape[-1],
                                     self.kernel_size[0], self.stride[0], self.dilation[0])
            if self.padding_mode != "zeros":
                # torch pads (autograd differentiates it), gconv convolves the padded input
                input = nn.functional.pad(input, _torch_pad_order(pads),
                                          mode=self.padding_mode)
                pads = ((0, 0), (0, 0)) if kind == 2 else (0, 0)
            geometry = _Geometry(kind, self.stride, pads, self.dilation, self.groups)
        return GconvFunction.apply(input, self.weight, self.bias, geometry)

    def forward(self, input):
        self._check_can_run(input)
        if self._needs_grad(input):
            return self._autograd_forward(input)
        layer = self._gconv()
        x = _as_numpy(input)
        if (self._dims == 2 and input.dim() == 4 and not input.is_contiguous()
                and input.is_contiguous(memory_format=torch.channels_last)):
            # channels-last memory: hand gconv the NHWC view, return channels-last as torch
            y = layer(x.transpose(0, 2, 3, 1), layout="NHWC")
            return torch.from_numpy(y).permute(0, 3, 1, 2)
        return torch.from_numpy(layer(x))

    def extra_repr(self):
        return conv_layer_args(self)


class GconvConv2d(_GconvConvNd):
    """``nn.Conv2d``'s forward pass run by gconv (see ``convert``)."""
    _dims = 2


class GconvConv1d(_GconvConvNd):
    """``nn.Conv1d``'s forward pass run by gconv (see ``convert``)."""
    _dims = 1


class _GconvConvTransposeNd(_GconvConvNd):
    def forward(self, input, output_size=None):
        self._check_can_run(input)
        if self._needs_grad(input):
            return self._autograd_forward(input, output_size)
        return torch.from_numpy(self._gconv()(_as_numpy(input), output_size=output_size))

    def extra_repr(self):
        s = conv_layer_args(self)
        if any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        return s


class GconvConvTranspose2d(_GconvConvTransposeNd):
    """``nn.ConvTranspose2d``'s forward pass run by gconv (see ``convert``)."""
    _dims = -2


class GconvConvTranspose1d(_GconvConvTransposeNd):
    """``nn.ConvTranspose1d``'s forward pass run by gconv (see ``convert``)."""
    _dims = -1


_WRAPPERS = {2: GconvConv2d, 1: GconvConv1d, -2: GconvConvTranspose2d,
             -1: GconvConvTranspose1d}


def _wrap(module):
    return _WRAPPERS[_conv_kind(module)](module)


def convert(model, example_input=None, *, fuse=None, report=False, inplace=False,
            epilogue="inplace"):
    """``model`` with its convolutions run by gconv: fused for inference, or swapped layer
    by layer for training.

    ``fuse=None`` (the default) fuses a model in eval mode and swaps the layers of a model
    in train mode: folding BatchNorm into the weights is right only with eval statistics.

    ``fuse=True``: the model is traced with torch.fx; each nn.Conv1d / nn.Conv2d is fused
    with the ops after it that gconv's epilogue computes -- a BatchNorm (its eval statistics
    folded into the weights and bias, in float64), a residual add and an activation (ReLU,
    ReLU6, Hardtanh, SiLU, Sigmoid, Tanh, Hardswish, LeakyReLU) -- and runs of consecutive
    gconv layers pass NumPy arrays to each other, converting from and to torch tensors
    (zero-copy) only at their borders. Every other op is left to torch. Where torch.fx
    cannot trace a module, its children are converted one by one (the report says which and
    why). The result is a frozen inference copy: its weights are packed for gconv; it does
    not follow later changes to ``model``'s parameters, and refuses .train() and autograd.

    ``fuse=False``: every nn.Conv2d / nn.Conv1d / nn.ConvTranspose2d / nn.ConvTranspose1d
    (at any depth) is replaced by a gconv-backed module (GconvConv2d, GconvConv1d,
    GconvConvTranspose2d, GconvConvTranspose1d) holding the same weight and bias
    Parameters; all other modules are left as they are. Converted layers run in .eval() and
    .train() mode, under torch.no_grad() / inference_mode (gconv's layers, weights packed
    once) and under autograd (GconvFunction: the backward pass by gconv.grad); an optimizer
    made on the model's parameters keeps working with ``inplace=True``.

    ``epilogue`` (fused): where a fused residual add and activation run. "inplace" (the
    default): gconv computes conv + bias, then the add and the activation run in place on
    gconv's output array (NumPy for the add, relu, relu6 and clamp, torch's in-place ops for
    the others). "kernel": in gconv's fused epilogue, out = act(conv + bias + residual) in
    one pass.

    ``example_input`` (a tensor or a tuple of them; fused): run once at the end, so the
    weights are packed before the first real call, and compared with ``model``'s output
    (``report.max_abs_error``). ``report=True`` returns ``(converted, report)``, a
    ConvertReport whose str() says what was fused and what was left to torch (also kept as
    ``converted.gconv_report``). By default the model is deep-copied first (``inplace=True``
    edits it)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert takes a torch.nn.Module, got {type(model).__name__}")
    if fuse is None:
        fuse = not model.training
    if fuse:
        converted, rep = _torch_fuse.convert_model(model, example_input, fuse, _wrap, inplace,
                                                  epilogue)
        return (converted, rep) if report else converted
    if not inplace:
        model = copy.deepcopy(model)
    if isinstance(model, _CONVERTIBLE):
        return _wrap(model)
    for path, module in list(model.named_modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, _CONVERTIBLE):
                try:
                    setattr(module, name, _wrap(child))
                except TypeError as e:
                    where = f"{path}.{name}" if path else name
                    raise TypeError(f"cannot convert {where}: {e}") from e
    return model


# -- cross-checking -------------------------------------------------------------------------
class CrossCheckReport:
    """torch's output against gconv's for one layer and input.

    ok, max_abs_error, max_rel_error, rtol, atol (the tolerance used:
    |gconv - torch| <= atol + rtol * |torch| elementwise), input_shape, torch_shape,
    gconv_shape, dtype, reduction_length, layer (the torch module's repr).
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return (f"<CrossCheckReport ok={self.ok} max_abs_error={self.max_abs_error:.3g} "
                f"max_rel_error={self.max_rel_error:.3g}>")

    def __str__(self):
        verdict = "MATCH" if self.ok else "MISMATCH"
        lines = [f"{verdict}: {self.layer} on input {self.input_shape} ({self.dtype})",
                 f"  output shapes: torch {self.torch_shape}, gconv {self.gconv_shape}",
                 f"  max abs error {self.max_abs_error:.3g}, max rel error "
                 f"{self.max_rel_error:.3g}",
                 f"  tolerance: |gconv - torch| <= {self.atol:.3g} + {self.rtol:.3g} * |torch| "
                 f"(reduction length {self.reduction_length})"]
        if self.worst_index is not None and not self.ok:
            lines.append(f"  worst element {self.worst_index}: torch {self.worst_torch!r}, "
                         f"gconv {self.worst_gconv!r}")
        return "\n".join(lines)


def cross_check(module, x, *, rtol=None, atol=None, gconv_layer=None):
    """Run ``module`` (an nn.Conv2d / nn.Conv1d) and its gconv twin on ``x`` (a tensor or a
    NumPy array) and compare. ``gconv_layer``: the gconv layer to check (default
    ``from_torch(module)``). Default tolerance: 8 eps(dtype) * sqrt(C_in/groups * kernel
    size), the absolute part scaled by the output's magnitude. Returns a CrossCheckReport."""
    _conv_kind(module)
    xt = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
    if not isinstance(xt, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor or a numpy.ndarray, got {type(x).__name__}")
    layer = from_torch(module) if gconv_layer is None else gconv_layer
    with torch.no_grad():
        expected = module(xt).cpu()
    actual = layer(_as_numpy(xt.cpu()))
    expected_np = _as_numpy(expected)
    K = module.in_channels // module.groups * math.prod(module.kernel_size)
    ok, max_abs, max_rel, r, a = _check.compare(actual, expected_np, expected_np.dtype, K,
                                                rtol, atol)
    worst = worst_t = worst_g = None
    if actual.shape == expected_np.shape and actual.size:
        diff = np.abs(actual.astype(np.float64) - expected_np)
        worst = tuple(int(i) for i in np.unravel_index(np.nanargmax(diff), diff.shape))
        worst_t, worst_g = float(expected_np[worst]), float(actual[worst])
    return CrossCheckReport(ok=ok, max_abs_error=max_abs, max_rel_error=max_rel, rtol=r,
                            atol=a, input_shape=tuple(xt.shape), torch_shape=tuple(expected.shape),
                            gconv_shape=tuple(actual.shape), dtype=str(expected_np.dtype),
                            reduction_length=K, layer=repr(module), worst_index=worst,
                            worst_torch=worst_t, worst_gconv=worst_g)
