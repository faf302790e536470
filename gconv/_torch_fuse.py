"""Whole models for inference: ``gconv.torch.convert(model)`` with ``fuse=True``.

The model is traced with torch.fx. Each nn.Conv1d / nn.Conv2d (float32 / float64, CPU) and
the ops after it that gconv's fused epilogue computes become one gconv layer:

    conv [-> BatchNorm (eval statistics, folded into the weights and bias in float64)]
         [-> + residual (the other operand of an add)] [-> activation]

out = act(conv + bias + residual) with act one of ReLU, ReLU6, Hardtanh (a clamp), SiLU,
Sigmoid, Tanh, Hardswish, LeakyReLU (modules, functionals or tensor methods). An op is
fused only when the value before it has no other user. Where the add and the activation
run is the epilogue option: "inplace" (default) in place on gconv's output array (NumPy
for the add, relu, relu6, clamp; torch's in-place ops for the others), "kernel" in gconv's
fused epilogue (vectorised in the kernels: MobileNetV2 runs the same in both). Runs of consecutive gconv layers
in the graph become one region (GconvRegion): its inputs go from torch to NumPy once
(zero-copy), its layers pass NumPy arrays to each other, and its outputs go back to
torch once (zero-copy). Every other op stays as it was, run by torch.

Where torch.fx cannot trace a module, its children are converted one by one (traced if
they can be, else again their children), and a bare conv is swapped for a GconvConvNd;
the report says which modules could not be traced and why.

Imported by gconv.torch only (it needs torch).
"""
import collections
import contextlib
import copy
import operator

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from ._conv import UninitializedConv2d
from ._conv1d import geometry_2d
from . import _activation

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_CONVS = {nn.Conv2d: 2, nn.Conv1d: 1}
_BATCHNORMS = {nn.BatchNorm2d: 2, nn.BatchNorm1d: 1}


# -- what can be fused -------------------------------------------------------------------
def _clamp_spec(lo, hi):
    lo = -float("inf") if lo is None else lo
    hi = float("inf") if hi is None else hi
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)):
        return None
    if (lo, hi) == (0, 6):
        return "relu6"
    return ("clamp", float(lo), float(hi))


_NN = torch._C._nn
_SIMPLE_FUNCTIONS = {}
for _name, _fns in {"relu": ((F, "relu"), (torch, "relu"), (torch, "relu_")),
                    "relu6": ((F, "relu6"), (_NN, "relu6")),
                    "sigmoid": ((F, "sigmoid"), (torch, "sigmoid"), (torch, "sigmoid_")),
                    "tanh": ((F, "tanh"), (torch, "tanh"), (torch, "tanh_")),
                    "silu": ((F, "silu"), (_NN, "silu"), (_NN, "silu_")),
                    "hardswish": ((F, "hardswish"), (_NN, "hardswish"),
                                  (_NN, "hardswish_"))}.items():
    for _owner, _attr in _fns:
        if getattr(_owner, _attr, None) is not None:
            _SIMPLE_FUNCTIONS[getattr(_owner, _attr)] = _name
_LEAKY = tuple(f for f in (F.leaky_relu, getattr(_NN, "leaky_relu", None),
                           getattr(_NN, "leaky_relu_", None)) if f is not None)
_HARDTANH = tuple(f for f in (F.hardtanh, getattr(_NN, "hardtanh", None),
                              getattr(_NN, "hardtanh_", None)) if f is not None)
_CLAMPS = tuple(f for f in (torch.clamp, torch.clip, getattr(torch, "clamp_", None))
                if f is not None)
_SIMPLE_METHODS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid",
                   "sigmoid_": "sigmoid", "tanh": "tanh", "tanh_": "tanh"}


def _arg(node, i, name, default):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def _activation_of(node, modules, source):
    """The fused-epilogue activation ``node`` computes on ``source`` (a Node), or None."""
    if not node.args or node.args[0] is not source:
        return None
    extra = [a for a in list(node.args[1:]) + list(node.kwargs.values())
             if isinstance(a, torch.fx.Node)]
    if extra:
        return None
    if node.op == "call_module":
        m = modules[node.target]
        t = type(m)
        if t is nn.ReLU:
            return "relu"
        if t is nn.ReLU6:
            return "relu6"
        if t is nn.Hardtanh:
            return _clamp_spec(m.min_val, m.max_val)
        if t is nn.LeakyReLU:
            return ("leaky_relu", float(m.negative_slope))
        return {nn.SiLU: "silu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh",
                nn.Hardswish: "hardswish"}.get(t)
    if node.op == "call_function":
        fn = node.target
        if fn in _SIMPLE_FUNCTIONS:
            return _SIMPLE_FUNCTIONS[fn]
        if fn in _LEAKY:
            slope = _arg(node, 1, "negative_slope", 0.01)
            return ("leaky_relu", float(slope)) if isinstance(slope, (int, float)) else None
        if fn in _HARDTANH:
            return _clamp_spec(_arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0))
        if fn in _CLAMPS:
            return _clamp_spec(_arg(node, 1, "min", None), _arg(node, 2, "max", None))
        return None
    if node.op == "call_method":
        if node.target in _SIMPLE_METHODS and len(node.args) == 1 and not node.kwargs:
            return _SIMPLE_METHODS[node.target]
        if node.target in ("clamp", "clamp_", "clip", "clip_"):
            return _clamp_spec(_arg(node, 1, "min", None), _arg(node, 2, "max", None))
    return None


_ADDS = (operator.add, operator.iadd, torch.add)


def _residual_of(node, source):
    """The other operand if ``node`` is ``source + other`` (or other + source) with
    ``other`` a tensor-valued node, else None."""
    if node.op == "call_function" and node.target in _ADDS:
        if node.kwargs or len(node.args) != 2:
            return None
    elif node.op == "call_method" and node.target in ("add", "add_"):
        if node.kwargs or len(node.args) != 2 or node.target == "add_" and \
                node.args[0] is not source:
            return None
    else:
        return None
    a, b = node.args
    other = b if a is source else a if b is source else None
    if not isinstance(other, torch.fx.Node) or other is source:
        return None
    if other.op == "get_attr":        # a parameter or buffer: likely broadcast, leave it
        return None
    return other


def _foldable_bn(bn, conv):
    return (type(bn) in _BATCHNORMS and _BATCHNORMS[type(bn)] == _CONVS[type(conv)]
            and bn.track_running_stats and bn.running_mean is not None
            and bn.num_features == conv.out_channels)


def fold_batchnorm(weight, bias, bn):
    """(weight, bias) of conv -> BatchNorm in eval mode, computed in float64, returned in
    the weight's dtype."""
    dtype = weight.dtype
    w = weight.detach().to(torch.float64, copy=True)
    b = (torch.zeros(w.shape[0], dtype=torch.float64) if bias is None
         else bias.detach().to(torch.float64))
    mean = bn.running_mean.detach().to(torch.float64)
    var = bn.running_var.detach().to(torch.float64)
    gamma = (bn.weight.detach().to(torch.float64) if bn.weight is not None
             else torch.ones_like(mean))
    beta = (bn.bias.detach().to(torch.float64) if bn.bias is not None
            else torch.zeros_like(mean))
    scale = gamma / torch.sqrt(var + bn.eps)
    w.mul_(scale.reshape(-1, *([1] * (w.dim() - 1))))      # w is a float64 copy
    b = (b - mean) * scale + beta
    return w.to(dtype), b.to(dtype)


def _convertible(conv):
    """None if gconv can run this conv module, else why not."""
    if type(conv) not in _CONVS:
        return f"{type(conv).__name__} is not exactly nn.Conv1d / nn.Conv2d"
    if conv.weight.dtype not in _DTYPES:
        return f"weights of {conv.weight.dtype} (gconv computes in float32 / float64)"
    if conv.weight.device.type != "cpu":
        return f"weights on {conv.weight.device} (gconv runs on the CPU)"
    return None


# -- the run-time objects ----------------------------------------------------------------
_INPLACE_ACTIVATIONS = {
    "relu": lambda t, a: torch.relu_(t),
    "relu6": lambda t, a: F.hardtanh_(t, 0.0, 6.0),          # torch's relu6
    "clamp": lambda t, a: torch.clamp_(t, a.lo, a.hi),
    "leaky_relu": lambda t, a: F.leaky_relu_(t, a.alpha),
    "sigmoid": lambda t, a: torch.sigmoid_(t),
    "tanh": lambda t, a: torch.tanh_(t),
    "silu": lambda t, a: F.silu(t, inplace=True),
    "hardswish": lambda t, a: F.hardswish(t, inplace=True),
}
# The add, relu, relu6 and clamp in place with NumPy (one thread, as fast as torch's op on
# one): torch's ops on large outputs would wake torch's own OpenMP pool between two gconv
# kernels, whose threads then spin against gconv's (the layer bench measured such
# spinning costing the next library ~1.5x at 2 threads). The others by torch in place.
_NUMPY_ACTIVATIONS = {
    "relu": lambda y, a: np.maximum(y, 0, out=y),
    "relu6": lambda y, a: np.clip(y, 0, 6, out=y),
    "clamp": lambda y, a: np.clip(y, a.lo, a.hi, out=y),
}
EPILOGUES = ("inplace", "kernel")


def _layer_2d(conv, dtype, bias, activation):
    """A gconv 2-D layer for ``conv`` (a 1-D conv as kernel (1, k) on H = 1, as
    gconv.Conv1d does, called here on views without Conv1d's per-call checks)."""
    if type(conv) is nn.Conv2d:
        return UninitializedConv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                                   stride=conv.stride, padding=conv.padding,
                                   dilation=conv.dilation, groups=conv.groups, bias=bias,
                                   padding_mode=conv.padding_mode, dtype=dtype,
                                   activation=activation)
    stride, padding, dilation = geometry_2d(conv.stride, conv.padding, conv.dilation)
    return UninitializedConv2d(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]),
                               stride=stride, padding=padding, dilation=dilation,
                               groups=conv.groups, bias=bias, padding_mode=conv.padding_mode,
                               dtype=dtype, activation=activation)


class FusedConv:
    """One gconv layer with its epilogue: conv (+ folded BN) (+ residual) (+ activation).

    epilogue="kernel": the residual add and the activation run in gconv's fused epilogue.
    epilogue="inplace": gconv computes conv + bias; the residual add and the activation
    then run in place on gconv's output array (no copy, no new memory): NumPy's add,
    maximum and clip, torch's in-place ops for the other activations."""

    def __init__(self, conv, weight, bias, activation, epilogue="inplace"):
        if epilogue not in EPILOGUES:
            raise ValueError(f"epilogue must be one of {EPILOGUES}, got {epilogue!r}")
        self.kind = _CONVS[type(conv)]
        self.epilogue = epilogue
        self.activation = _activation.parse_activation(activation)
        self._bind_ops()
        dtype = _DTYPES[weight.dtype]
        self.layer = _layer_2d(conv, dtype, bias is not None,
                               activation if epilogue == "kernel" else None)
        w = weight.detach().cpu().numpy()
        self.layer.weight = w if self.kind == 2 else w[:, :, None, :]
        if bias is not None:
            self.layer.bias = bias.detach().cpu().numpy()
        self._plain = None

    def __call__(self, x, residual=None):
        if self.kind == 1:                  # (N, C, L) <-> (N, C, 1, L): views
            y = self._call2d(x[..., None, :],
                             None if residual is None else self._as_4d(residual))
            return y[..., 0, :]
        return self._call2d(x, residual)

    def _bind_ops(self):
        a = self.activation
        self._act_fn = _INPLACE_ACTIVATIONS.get(a.name)
        self._np_act = (_NUMPY_ACTIVATIONS.get(a.name) if a.lo == a.lo and a.hi == a.hi
                        else None)           # a NaN clamp bound: torch's rule, by torch

    def __getstate__(self):                 # the in-place ops are lambdas: bound again
        state = self.__dict__.copy()
        state["_act_fn"] = state["_np_act"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bind_ops()

    @staticmethod
    def _as_4d(r):
        return r[..., None, :] if r.ndim >= 2 else r

    def _call2d(self, x, residual):
        if self.epilogue == "kernel":
            if residual is None:
                return self.layer(x)
            try:
                return self.layer(x, residual=residual)
            except (ValueError, TypeError):
                # a residual that broadcasts (or of another dtype): torch's add, then the act
                return self._unfused(x, residual)
        y = self.layer(x)
        if residual is not None:
            if (type(residual) is np.ndarray and residual.shape == y.shape
                    and residual.dtype == y.dtype):
                np.add(y, residual, out=y)
            else:                            # broadcasting or promoting: torch's add
                y = (torch.from_numpy(y) + torch.from_numpy(residual)).numpy()
        if self._np_act is not None:
            self._np_act(y, self.activation)
        elif self._act_fn is not None:
            self._act_fn(torch.from_numpy(y), self.activation)
        return y

    def _unfused(self, x, residual):
        if self._plain is None:
            L = self.layer
            plain = UninitializedConv2d(L.in_channels, L.out_channels, L.kernel_size,
                                        stride=L.stride, padding=L.padding,
                                        dilation=L.dilation, groups=L.groups,
                                        bias=L.bias is not None, padding_mode=L.padding_mode,
                                        dtype=L.dtype)
            plain.weight = self.layer.weight
            plain.bias = self.layer.bias
            self._plain = plain
        t = torch.from_numpy(self._plain(x)) + torch.from_numpy(residual)
        if self._act_fn is not None:
            self._act_fn(t, self.activation)
        return t.numpy()


class GconvRegion(nn.Module):
    """Consecutive gconv layers of a converted model, run on NumPy arrays: the inputs come
    from torch (zero-copy views), the outputs go back to torch (zero-copy)."""

    def __init__(self, steps, n_inputs, outputs, names):
        super().__init__()
        # steps: (FusedConv, input slot, residual slot or None, output slot, slots to free)
        self.steps = steps
        self.n_inputs = n_inputs
        self.outputs = outputs
        self.names = names          # the original conv modules' names, for repr / report

    def forward(self, *inputs):
        if self.training:
            raise RuntimeError("GconvRegion runs gconv, which is inference-only (no "
                               "backward pass): call model.eval() before running it")
        grad = torch.is_grad_enabled()
        values = []
        for t in inputs:
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"GconvRegion expects torch.Tensor inputs, got "
                                f"{type(t).__name__}")
            if t.requires_grad:
                if grad:
                    raise RuntimeError("GconvRegion runs gconv, which has no backward "
                                       "pass, but autograd would need gradients here: run "
                                       "the model under torch.no_grad() or "
                                       "torch.inference_mode()")
                t = t.detach()
            if t.device.type != "cpu":
                raise RuntimeError(f"gconv runs on the CPU; got an input on {t.device}")
            values.append(t.numpy())
        values.extend([None] * (len(self.steps)))
        for op, xs, rs, ys, free in self.steps:
            values[ys] = op(values[xs], None if rs is None else values[rs])
            for s in free:
                values[s] = None
        if len(self.outputs) == 1:
            return torch.from_numpy(values[self.outputs[0]])
        return tuple(torch.from_numpy(values[s]) for s in self.outputs)

    def extra_repr(self):
        return f"{len(self.steps)} gconv layers: {', '.join(self.names)}"

    def __deepcopy__(self, memo):
        # the steps (gconv layers with packed weights) are not changed after convert:
        # copies of a converted model share them
        new = GconvRegion(self.steps, self.n_inputs, self.outputs, self.names)
        new.train(self.training)
        return new


# -- the report --------------------------------------------------------------------------
class ConvertReport:
    """What convert did: ``fused`` (one entry per conv run by gconv: name, batchnorm,
    residual, activation, region), ``kept`` (convs left to torch, with the reason),
    ``torch_ops`` (a Counter of the other ops torch still runs), ``regions`` (the number of
    gconv layers in each), ``untraced`` ({module path: why torch.fx could not trace it}),
    ``max_abs_error`` / ``max_abs_output`` (on the example input, if one was given)."""

    def __init__(self):
        self.fused = []
        self.kept = []
        self.torch_ops = collections.Counter()
        self.regions = []
        self.untraced = {}
        self.max_abs_error = None
        self.max_abs_output = None
        self.epilogue = None

    def counts(self):
        c = collections.Counter()
        for f in self.fused:
            c["conv"] += 1
            c["batchnorm"] += f["batchnorm"] is not None
            c["residual"] += f["residual"] is not None
            c["activation"] += f["activation"] is not None
        return c

    def __str__(self):
        c = self.counts()
        lines = [f"gconv.torch.convert: {c['conv']} convolutions run by gconv in "
                 f"{len(self.regions)} region(s) (layers per region: "
                 f"{', '.join(map(str, self.regions)) or '-'})",
                 f"  fused into them: {c['batchnorm']} BatchNorms, {c['residual']} residual "
                 f"adds, {c['activation']} activations (epilogue={self.epilogue!r})"]
        if self.untraced:
            lines.append("  torch.fx could not trace (their children were converted one by "
                         "one, without fusion across them):")
            lines += [f"    {path or '(the model)'}: {why}" for path, why in
                      self.untraced.items()]
        if self.kept:
            lines.append("  convolutions left to torch:")
            lines += [f"    {name}: {why}" for name, why in self.kept]
        if self.torch_ops:
            lines.append("  ops left to torch: " + ", ".join(
                f"{name} x{n}" for name, n in sorted(self.torch_ops.items(),
                                                       key=lambda kv: (-kv[1], kv[0]))))
        if self.max_abs_error is not None:
            lines.append(f"  on the example input: max |converted - original| = "
                         f"{self.max_abs_error:.3g} (max |original| = "
                         f"{self.max_abs_output:.3g})")
        lines.append("  per convolution (conv [+ batchnorm] [+ residual] [-> activation]):")
        for f in self.fused:
            parts = [f["name"]]
            if f["batchnorm"]:
                parts.append(f"+ {f['batchnorm']}")
            if f["residual"]:
                parts.append(f"+ residual {f['residual']}")
            if f["activation"]:
                parts.append(f"-> {f['activation']}")
            lines.append(f"    [region {f['region']}] " + " ".join(parts))
        return "\n".join(lines)

    __repr__ = __str__


def _op_name(node, modules):
    if node.op == "call_module":
        return type(modules[node.target]).__name__
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    if node.op == "call_method":
        return f".{node.target}()"
    return None


# -- the passes --------------------------------------------------------------------------
def _fuse_graph(gm, report, prefix, fuse, epilogue):
    graph = gm.graph
    modules = dict(gm.named_modules())
    consumed = set()
    fused_nodes = {}          # node -> (FusedConv, report entry)
    qual = (lambda name: f"{prefix}.{name}" if prefix else name)
    for node in list(graph.nodes):
        if node in consumed or node.op != "call_module":
            continue
        conv = modules[node.target]
        if type(conv) not in _CONVS and not isinstance(conv, (nn.Conv1d, nn.Conv2d)):
            continue
        why = _convertible(conv)
        if why is not None:
            report.kept.append((qual(node.target), why))
            continue
        if len(node.args) != 1 or node.kwargs:
            report.kept.append((qual(node.target), "called with extra arguments"))
            continue
        weight, bias = conv.weight, conv.bias
        entry = dict(name=qual(node.target), batchnorm=None, residual=None, activation=None)
        chain, cur, residual, act = [node], node, None, None
        if fuse:
            user = next(iter(cur.users)) if len(cur.users) == 1 else None
            if (user is not None and user.op == "call_module"
                    and _foldable_bn(modules[user.target], conv)):
                weight, bias = fold_batchnorm(weight, bias, modules[user.target])
                entry["batchnorm"] = qual(user.target)
                chain.append(user)
                cur = user
            user = next(iter(cur.users)) if len(cur.users) == 1 else None
            if user is not None and user not in consumed:
                other = _residual_of(user, cur)
                if other is not None:
                    residual = other
                    entry["residual"] = other.name
                    chain.append(user)
                    cur = user
            user = next(iter(cur.users)) if len(cur.users) == 1 else None
            if user is not None and user not in consumed:
                act = _activation_of(user, modules, cur)
                if act is not None:
                    entry["activation"] = _activation.parse_activation(act).spec
                    entry["activation"] = (entry["activation"] if isinstance(
                        entry["activation"], str) else repr(entry["activation"]))
                    chain.append(user)
                    cur = user
        try:
            op = FusedConv(conv, weight, bias, act, epilogue)
        except (TypeError, ValueError) as e:
            report.kept.append((qual(node.target), f"gconv refused it: {e}"))
            continue
        args = (node.args[0],) if residual is None else (node.args[0], residual)
        with graph.inserting_before(cur):
            new = graph.call_function(_fused_placeholder, args)
        cur.replace_all_uses_with(new)
        for n in reversed(chain):
            graph.erase_node(n)
        consumed.update(chain)
        fused_nodes[new] = (op, entry)
    return fused_nodes


def _fused_placeholder(*args):       # pragma: no cover - replaced by regions before a run
    raise RuntimeError("a fused gconv node outside a region")


def _make_regions(gm, fused_nodes, report, prefix):
    graph = gm.graph
    runs, run = [], []
    for node in graph.nodes:
        if node in fused_nodes:
            run.append(node)
        elif run:
            runs.append(run)
            run = []
    if run:
        runs.append(run)
    for i, run in enumerate(runs):
        members = set(run)
        inputs, slot = [], {}
        for n in run:
            for a in n.args:
                if a not in members and a not in slot:
                    slot[a] = len(inputs)
                    inputs.append(a)
        for k, n in enumerate(run):
            slot[n] = len(inputs) + k
        outputs = [n for n in run if any(u not in members for u in n.users)]
        last_use = {}
        for k, n in enumerate(run):
            for a in n.args:
                last_use[slot[a]] = k
        keep = {slot[n] for n in outputs}
        steps, names = [], []
        region_index = len(report.regions)
        for k, n in enumerate(run):
            op, entry = fused_nodes[n]
            entry["region"] = region_index
            report.fused.append(entry)
            names.append(entry["name"])
            rs = slot[n.args[1]] if len(n.args) > 1 else None
            free = tuple(s for s, last in last_use.items() if last == k and s not in keep)
            steps.append((op, slot[n.args[0]], rs, slot[n], free))
        report.regions.append(len(run))
        name = f"gconv_region_{i}"
        gm.add_submodule(name, GconvRegion(steps, len(inputs), [slot[n] for n in outputs],
                                           names))
        with graph.inserting_before(run[0]):
            region = graph.call_module(name, tuple(inputs))
            if len(outputs) == 1:
                outputs[0].replace_all_uses_with(region,
                                                 delete_user_cb=lambda u: u not in members)
            else:
                for j, n in enumerate(outputs):
                    item = graph.call_function(operator.getitem, (region, j))
                    n.replace_all_uses_with(item, delete_user_cb=lambda u: u not in members)
        for n in reversed(run):
            graph.erase_node(n)


def _count_torch_ops(gm, report):
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], GconvRegion):
            continue
        if node.op == "call_function" and node.target is operator.getitem:
            continue
        name = _op_name(node, modules)
        if name is not None:
            report.torch_ops[name] += 1


def _fuse_traced(gm, report, prefix, fuse, epilogue):
    fused_nodes = _fuse_graph(gm, report, prefix, fuse, epilogue)
    _make_regions(gm, fused_nodes, report, prefix)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    _count_torch_ops(gm, report)
    return gm


def _why(e):
    return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"


def convert_module(module, report, prefix, fuse, wrap, epilogue):
    """``module`` (the caller's to change) traced and fused, or (where tracing fails) its
    children converted one by one; ``wrap`` swaps a bare conv for a gconv-backed module."""
    if type(module) in _CONVS:
        why = _convertible(module)
        if why is None:
            report.fused.append(dict(name=prefix or "(the model)", batchnorm=None,
                                     residual=None, activation=None,
                                     region=len(report.regions)))
            report.regions.append(1)
            return wrap(module)
        report.kept.append((prefix, why))
        return module
    if not list(module.children()):
        report.torch_ops[type(module).__name__] += 1
        return module
    try:
        gm = torch.fx.symbolic_trace(module)
    except Exception as e:       # noqa: BLE001 - any tracing failure: fall back, say why
        report.untraced[prefix] = _why(e)
    else:
        return _fuse_traced(gm, report, prefix, fuse, epilogue)
    for name, child in list(module.named_children()):
        path = f"{prefix}.{name}" if prefix else name
        new = convert_module(child, report, path, fuse, wrap, epilogue)
        if new is not child:
            setattr(module, name, new)
    return module


@contextlib.contextmanager
def _eval_mode(model):
    """``model`` in eval mode inside the block, every module's mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def _trace_in_eval_mode(model):
    """torch.fx's trace of ``model`` in eval mode (its modes restored after), or None."""
    with _eval_mode(model):
        try:
            return torch.fx.symbolic_trace(model)
        except Exception:            # noqa: BLE001 - convert_module says why
            return None


def convert_model(model, example_input, fuse, wrap, inplace, epilogue="inplace"):
    if epilogue not in EPILOGUES:
        raise ValueError(f"epilogue must be one of {EPILOGUES}, got {epilogue!r}")
    report = ConvertReport()
    report.epilogue = epilogue
    gm = None
    if type(model) not in _CONVS and list(model.children()):
        gm = _trace_in_eval_mode(model)
    if gm is not None:
        # the trace shares the model's modules; fusion only reads them, and the copy below
        # takes the few left in the graph (the gconv regions are shared, never changed)
        converted = _fuse_traced(gm, report, "", fuse, epilogue)
        if not inplace:
            converted = copy.deepcopy(converted)
    else:
        work = model if inplace else copy.deepcopy(model)
        work.eval()
        converted = convert_module(work, report, "", fuse, wrap, epilogue)
    converted.eval()
    if example_input is not None:
        inputs = example_input if isinstance(example_input, tuple) else (example_input,)
        with torch.inference_mode():
            got = converted(*inputs)     # packs the weights: the next call is a steady one
            if not inplace:
                with _eval_mode(model):
                    expected = model(*inputs)
                if isinstance(expected, torch.Tensor) and isinstance(got, torch.Tensor):
                    report.max_abs_error = float((got.double() - expected.double())
                                                 .abs().max())
                    report.max_abs_output = float(expected.double().abs().max())
    converted.gconv_report = report
    return converted, report
