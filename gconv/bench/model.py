"""``gconv bench --model module:function``: the convolutions of the user's own torch model as
bench layers, so that the bench answers "does gconv pay for my network?".

``function`` (in ``module``, importable from the current directory or sys.path, or in a file
``path/to/file.py``) takes no argument and returns ``(model, example_input)``: a
torch.nn.Module and its input (a tensor; a tuple or list of them is passed as positional
arguments, a dict as keyword arguments). One forward pass in eval mode under
torch.no_grad(), with a forward hook on every torch.nn.Conv1d and Conv2d, records each
convolution the model runs with its input's shape and its options (a module called twice
counts twice). Calls of identical shape and options become one bench layer that knows how
many times it ran (``count``), with the weights (and bias) of the first module of that
shape. A Conv1d is timed as the 2-D convolution it is with H = 1 (kernel 1 x k), in gconv and
in every peer alike; a padding_mode other than 'zeros' is timed as zeros padding, and its
row says so. Other convolutions (ConvTranspose, Conv3d, functional calls of F.conv2d) are
not recorded: they are counted in ``skipped``.

torch is imported only when a model is loaded.
"""
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from .layers import BenchLayer

USAGE = "--model takes module:function or path/to/file.py:function"


class ModelError(Exception):
    """A --model that cannot be benched: the message says why, for a usage error."""


@dataclass(frozen=True)
class ModelLayer(BenchLayer):
    """A bench layer recorded from a model: how many times the forward pass ran it, the
    modules that did, the module type, its padding_mode, and the first module's weights."""
    count: int = 1
    modules: tuple = ()
    conv_type: str = "Conv2d"
    padding_mode: str = "zeros"
    weight: object = field(default=None, compare=False, repr=False)
    bias_value: object = field(default=None, compare=False, repr=False)

    @property
    def note(self):
        if self.padding_mode != "zeros":
            return f"padding_mode={self.padding_mode!r} timed as zeros padding"
        return ""

    def make_inputs(self, dtype=np.float32):
        """A seeded random input (the timing does not depend on its values) and the model's
        own weights and bias."""
        x, w, b = super().make_inputs(dtype)
        if self.weight is not None:
            w = np.ascontiguousarray(self.weight, dtype=dtype)
            b = None if self.bias_value is None else np.ascontiguousarray(self.bias_value,
                                                                          dtype=dtype)
        return x, w, b

    def report_fields(self):
        return {**super().report_fields(), "count": self.count, "modules": list(self.modules),
                "conv_type": self.conv_type, "padding_mode": self.padding_mode,
                "note": self.note}


# -- loading the user's function -----------------------------------------------------------

def parse_spec(spec):
    """'module:function' or 'path/to/file.py:function' -> (module or path, function)."""
    target, sep, function = spec.rpartition(":")
    if not sep or not target.strip() or not function.isidentifier():
        raise ModelError(f"{USAGE}, got {spec!r}")
    return target.strip(), function


def _is_path(target):
    return target.endswith(".py") or "/" in target or os.sep in target


def _import_file(path):
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ModelError(f"--model: no file {path}")
    name = "_gconv_bench_model_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(path)
    if folder not in sys.path:                # its own imports of files beside it
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise ModelError(f"--model: loading {path} failed: {type(e).__name__}: {e}") from None
    return module


def _import_module(name):
    # the console script `gconv` does not put the current directory on sys.path (python -m
    # does): a module beside the user should be found either way
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(e.name + ".")):
            raise ModelError(f"--model: no module named {name!r} (from the current "
                             f"directory or sys.path; a file: path/to/file.py:function)"
                             ) from None
        raise ModelError(f"--model: importing {name} failed: {type(e).__name__}: {e}") from None
    except Exception as e:
        raise ModelError(f"--model: importing {name} failed: {type(e).__name__}: {e}") from None


def load_model(spec):
    """Call the function ``spec`` names: (model, example_input), checked."""
    target, function = parse_spec(spec)
    module = _import_file(target) if _is_path(target) else _import_module(target)
    fn = getattr(module, function, None)
    if not callable(fn):
        raise ModelError(f"--model: {target} has no function {function!r}")
    try:
        result = fn()
    except Exception as e:
        raise ModelError(f"--model: {spec}() raised {type(e).__name__}: {e}") from None
    import torch
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise ModelError(f"--model: {spec}() must return (model, example_input), got "
                         f"{_describe_value(result)}")
    model, example = result
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"--model: {spec}() must return (model, example_input) with a "
                         f"torch.nn.Module model, got {_describe_value(model)}")
    return model, example


def _describe_value(value):
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


# -- recording the convolutions ------------------------------------------------------------

@dataclass
class ConvCall:
    """One convolution the forward pass ran."""
    module: str
    conv_type: str               # "Conv1d" or "Conv2d"
    input_shape: tuple           # as the module saw it (batched or not)
    out_channels: int
    kernel_size: tuple
    stride: tuple
    padding: object              # a tuple, or 'same' / 'valid'
    dilation: tuple
    groups: int
    padding_mode: str
    weight: object               # the module's weight and bias as float32 arrays
    bias: object

    def key(self):
        """What makes two calls the same bench layer."""
        return (self.conv_type, self.input_shape, self.out_channels, self.kernel_size,
                self.stride, self.padding, self.dilation, self.groups, self.bias is not None,
                self.padding_mode)


def _array(tensor):
    import torch
    return None if tensor is None else tensor.detach().to("cpu", torch.float32).numpy().copy()


def record_convs(model, example):
    """Run one forward pass; returns ([ConvCall] in call order, {module type: calls} of the
    convolutions not recorded)."""
    import torch
    from torch import nn
    names = {m: name for name, m in model.named_modules()}
    calls, skipped = [], {}

    def hook(module, inputs, output):
        kind = type(module).__name__
        if not isinstance(module, (nn.Conv1d, nn.Conv2d)):
            skipped[kind] = skipped.get(kind, 0) + 1
            return
        kind = "Conv1d" if isinstance(module, nn.Conv1d) else "Conv2d"
        padding = module.padding
        calls.append(ConvCall(
            module=names.get(module) or kind.lower(), conv_type=kind,
            input_shape=tuple(inputs[0].shape), out_channels=module.out_channels,
            kernel_size=tuple(module.kernel_size), stride=tuple(module.stride),
            padding=padding if isinstance(padding, str) else tuple(padding),
            dilation=tuple(module.dilation), groups=module.groups,
            padding_mode=module.padding_mode,
            weight=_array(module.weight), bias=_array(module.bias)))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.modules.conv._ConvNd)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            if isinstance(example, dict):
                model(**example)
            elif isinstance(example, (tuple, list)):
                model(*example)
            else:
                model(example)
    except Exception as e:
        raise ModelError(f"--model: the model's forward pass failed: {type(e).__name__}: "
                         f"{e}") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return calls, skipped


# -- bench layers ----------------------------------------------------------------------------

def _as_2d(call):
    """The call as conv2d arguments: (N, C, H, W), kernel, stride, padding, dilation and
    the weight (C_out, C_in/g, kh, kw). A Conv1d is the 2-D convolution with H = 1."""
    shape = call.input_shape
    if call.conv_type == "Conv1d":
        N, C, L = shape if len(shape) == 3 else (1, *shape)
        pad = call.padding if isinstance(call.padding, str) else (0, call.padding[0])
        weight = None if call.weight is None else call.weight[:, :, None, :]
        return ((N, C, 1, L), (1, call.kernel_size[0]), (1, call.stride[0]), pad,
                (1, call.dilation[0]), weight)
    N, C, H, W = shape if len(shape) == 4 else (1, *shape)
    return ((N, C, H, W), call.kernel_size, call.stride, call.padding, call.dilation,
            call.weight)


def conv_class(C_in, C_out, groups, kernel):
    """'depthwise', 'pointwise', 'grouped' or 'dense': what kind of convolution it is."""
    if groups > 1 and C_in == groups:
        return "depthwise"
    if tuple(kernel) == (1, 1):
        return "pointwise" if groups == 1 else "pointwise grouped"
    return "grouped" if groups > 1 else "dense"


def model_layers(calls):
    """One ModelLayer per distinct (shape, options) of ``calls``, in first-call order."""
    groups_of = {}
    for call in calls:
        groups_of.setdefault(call.key(), []).append(call)
    layers, names = [], set()
    for same in groups_of.values():
        first = same[0]
        (N, C, H, W), kernel, stride, padding, dilation, weight = _as_2d(first)
        modules = tuple(dict.fromkeys(c.module for c in same))
        more = f" and {len(modules) - 1} more" if len(modules) > 1 else ""
        kind = conv_class(C, first.out_channels, first.groups, kernel)
        name, n = first.module, 1
        while name in names:                # one module run on inputs of several shapes
            n += 1
            name = f"{first.module}#{n}"
        names.add(name)
        layers.append(ModelLayer(
            name=name, N=N, C_in=C, H=H, W=W, C_out=first.out_channels,
            kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
            groups=first.groups, description=f"{first.conv_type} {first.module}{more}",
            family=f"{first.conv_type} {kind}", bias=first.bias is not None,
            count=len(same), modules=modules, conv_type=first.conv_type,
            padding_mode=first.padding_mode, weight=weight, bias_value=first.bias))
    return layers


def load_layers(spec):
    """``--model spec`` -> ([ModelLayer], source): the layers to time and what the report
    says of them. Raises ModelError for anything the user should fix."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ModelError("--model needs torch: pip install torch==2.13.0") from None
    model, example = load_model(spec)
    calls, skipped = record_convs(model, example)
    if not calls:
        raise ModelError(f"--model: {spec}'s forward pass ran no torch.nn.Conv1d or Conv2d: "
                         "nothing to bench")
    layers = model_layers(calls)
    source = {"kind": "model", "model": spec, "model_class": type(model).__name__,
              "convolutions": len(calls), "distinct": len(layers), "skipped": skipped}
    return layers, source
