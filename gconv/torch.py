"""The PyTorch adapter: torch layers to gconv layers, gconv inside torch models, and checks.

    import gconv.torch
    layer = gconv.torch.from_torch(torch_conv)      # a gconv.Conv2d / Conv1d, same weights
    model = gconv.torch.convert(model.eval())       # fused, run by gconv (inference)
    print(gconv.torch.cross_check(torch_conv, x))   # torch's output against gconv's

An optional extra (``pip install "gconv[torch]"``); ``import gconv`` never imports it.
gconv has no backward pass: converted layers refuse training mode and autograd rather than
return tensors with wrong (missing) gradients.
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

from . import _check
from ._conv import Conv2d, conv_layer_args
from ._conv1d import Conv1d
from . import _torch_fuse
from ._torch_fuse import ConvertReport

__all__ = ["from_torch", "convert", "cross_check", "CrossCheckReport", "GconvConv1d",
           "GconvConv2d", "ConvertReport"]

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _numpy_dtype(module):
    dtype = module.weight.dtype
    if dtype not in _DTYPES:
        raise TypeError(f"gconv computes in float32 or float64; {type(module).__name__} has "
                        f"weights of {dtype}")
    return _DTYPES[dtype]


def _as_numpy(t):
    """A CPU tensor's memory as a NumPy array (a view, no copy)."""
    return t.detach().resolve_conj().resolve_neg().numpy()


def _conv_kind(module):
    if isinstance(module, nn.Conv2d):
        return 2
    if isinstance(module, nn.Conv1d):
        return 1
    raise TypeError(f"from_torch takes a torch.nn.Conv2d or torch.nn.Conv1d, got "
                    f"{type(module).__module__}.{type(module).__qualname__}")


def _gconv_layer(kind, config, weight, bias):
    """A gconv layer (Conv2d if kind == 2, else Conv1d) with ``config``'s settings
    (anything with nn.ConvNd's attributes) and these weight / bias tensors."""
    if weight.dtype not in _DTYPES:
        raise TypeError(f"gconv computes in float32 or float64; the layer has weights of "
                        f"{weight.dtype}")
    cls = Conv2d if kind == 2 else Conv1d
    layer = cls(config.in_channels, config.out_channels, config.kernel_size,
                stride=config.stride, padding=config.padding, dilation=config.dilation,
                groups=config.groups, bias=bias is not None, padding_mode=config.padding_mode,
                dtype=_DTYPES[weight.dtype], rng=0)
    layer.weight = _as_numpy(weight.cpu())
    if bias is not None:
        layer.bias = _as_numpy(bias.cpu())
    return layer


def from_torch(module):
    """``nn.Conv2d`` / ``nn.Conv1d`` -> ``gconv.Conv2d`` / ``gconv.Conv1d`` with the same
    configuration (groups, stride, padding incl. strings, dilation, padding_mode) and a copy
    of its weights, in the module's dtype (float32 or float64)."""
    _conv_kind(module)
    if isinstance(module, (GconvConv1d, GconvConv2d)):   # pragma: no cover - not nn.ConvNd
        raise TypeError("already a gconv module")
    return _gconv_layer(_conv_kind(module), module, module.weight, module.bias)


# -- gconv inside torch models --------------------------------------------------------------
class _GconvConvNd(nn.Module):
    """A torch module that runs its forward pass with gconv (CPU, float32/float64,
    inference only). It keeps the original layer's ``weight`` and ``bias`` as (frozen)
    parameters, so state_dict keys and values are unchanged; the gconv layer is rebuilt
    (its weights repacked) whenever they change, e.g. after ``load_state_dict``."""

    _dims = None

    def __init__(self, module):
        super().__init__()
        _conv_kind(module)
        _numpy_dtype(module)
        for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                     "dilation", "groups", "padding_mode"):
            setattr(self, name, getattr(module, name))
        self.weight = nn.Parameter(module.weight.detach(), requires_grad=False)
        if module.bias is not None:
            self.bias = nn.Parameter(module.bias.detach(), requires_grad=False)
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
        if self.training:
            raise RuntimeError(f"{name} runs gconv, which is inference-only (no backward "
                               f"pass): call model.eval() before running it")
        if torch.is_grad_enabled() and (
                input.requires_grad or any(p is not None and p.requires_grad
                                           for p in (self.weight, self.bias))):
            raise RuntimeError(f"{name} runs gconv, which has no backward pass, but autograd "
                               f"would need gradients here: run the model under "
                               f"torch.no_grad() or torch.inference_mode(), or keep "
                               f"torch's layer for training")
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"{name} expects a torch.Tensor, got {type(input).__name__}")
        if input.device.type != "cpu" or self.weight.device.type != "cpu":
            raise RuntimeError(f"gconv runs on the CPU; got input on {input.device} and "
                               f"weights on {self.weight.device}: move them with .cpu(), or "
                               f"keep torch's layer for this device")
        if input.dtype not in _DTYPES:
            raise TypeError(f"gconv computes in float32 or float64; {name} got an input of "
                            f"{input.dtype}")

    def forward(self, input):
        self._check_can_run(input)
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


def _wrap(module):
    return GconvConv2d(module) if isinstance(module, nn.Conv2d) else GconvConv1d(module)


def convert(model, example_input=None, *, fuse=True, report=False, inplace=False,
            epilogue="inplace"):
    """``model`` for inference with its convolutions run by gconv.

    ``fuse=True`` (the default): the model is traced with torch.fx; each nn.Conv1d /
    nn.Conv2d is fused with the ops after it that gconv's epilogue computes -- a BatchNorm
    (its eval statistics folded into the weights and bias, in float64), a residual add and
    an activation (ReLU, ReLU6, Hardtanh, SiLU, Sigmoid, Tanh, Hardswish, LeakyReLU) -- and
    runs of consecutive gconv layers pass NumPy arrays to each other, converting from and
    to torch tensors (zero-copy) only at their borders. Every other op is left to torch.
    Where torch.fx cannot trace a module, its children are converted one by one (the report
    says which and why). The result is a frozen inference copy: its weights are packed
    for gconv; it does not follow later changes to ``model``'s parameters.

    ``fuse=False``: every nn.Conv2d / nn.Conv1d (at any depth) is replaced by a gconv-backed
    module (GconvConv2d / GconvConv1d) keeping the same parameters (state_dict unchanged,
    new weights followed); all other modules are left as they are.

    ``epilogue`` (fuse=True): where a fused residual add and activation run. "inplace"
    (the default): gconv computes conv + bias, then the add and the activation run in place
    on gconv's output array (zero-copy; NumPy for the add, relu, relu6 and clamp, torch's
    in-place ops for the others). "kernel":
    in gconv's fused epilogue, out = act(conv + bias + residual) in one pass. Measured
    here, the kernel's epilogue is a scalar loop (a switch per element) that costs more
    than the in-place ops (16->96 1x1 at 112x112: 0.4 ms plain, 4.1 ms with relu6 fused,
    0.55 ms plain + torch's in-place relu6); when it is vectorized, "kernel" saves a pass.

    ``example_input`` (a tensor or a tuple of them; fuse=True): run once at the end, so
    the weights are packed before the first real call, and compared with ``model``'s
    output (``report.max_abs_error``). ``report=True`` returns ``(converted, report)``, a
    ConvertReport whose str() says what was fused and what was left to torch (also kept
    as ``converted.gconv_report``). By default the model is deep-copied first
    (``inplace=True`` edits it). The converted model is inference-only: ``.eval()`` mode,
    under ``torch.no_grad()`` / ``torch.inference_mode()``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert takes a torch.nn.Module, got {type(model).__name__}")
    if fuse:
        converted, rep = _torch_fuse.convert_model(model, example_input, fuse, _wrap, inplace,
                                                  epilogue)
        return (converted, rep) if report else converted
    if not inplace:
        model = copy.deepcopy(model)
    if isinstance(model, (nn.Conv2d, nn.Conv1d)):
        return _wrap(model)
    for path, module in list(model.named_modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, (nn.Conv2d, nn.Conv1d)):
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
