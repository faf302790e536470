"""The fuzz test's cases and the child process that runs them (issue 14).

Used three ways:

* ``test_fuzz.py`` imports it for ``make_cases`` / ``make_layer_cases`` / ``issue_cases``
  (plain, picklable descriptions of calls) and for describing a case in a failure message;
* ``test_fuzz.py`` runs it as a child (``--serve``): it reads a pickled list of steps
  from stdin, runs each one and prints one line per step, flushed, so that when a call
  kills the process (a signal) or never returns, the parent knows which call it was;
* by hand, to reproduce one case or a sequence of them::

      python tests/fuzz_child.py conv:1:37             # one case, in this process
      python tests/fuzz_child.py conv:1:37:prime conv:1:37    # its priming call first
      python tests/fuzz_child.py --list conv:1 20      # the first 20 cases of seed 1

A case is a dict: shapes, dtype, data kinds (the arrays are drawn from ``data_seed``) and
every argument as a *spec*, a tagged tuple that decodes to the value passed (``("i", 3)``
-> ``3``, ``("n", "uint64", 3)`` -> ``np.uint64(3)``, ``("f", nan)``, ``("b", True)``,
``("nb", True)`` -> ``np.True_``, ``("t", [...])`` a tuple, ``("l", [...])`` a list,
``("s", "same")``, ``("none",)``, ``("obj",)`` -> a fresh ``object()``), so a case can be
pickled, compared, printed as source and turned into its 'plain' twin (every value
replaced by the plain int it equals: the priming call of the history check).

This file imports numpy at the top and gconv / torch only where they are used: torch only
in a child, and only for a case that torch can be compared on.
"""
import hashlib
import json
import math
import os
import pickle
import random
import sys
import traceback
import warnings

import numpy as np

NAN, INF = float("nan"), float("inf")
LARGE = 2 ** 26          # output elements above which a MemoryError is an acceptable answer
DEFAULT_SEEDS = (1, 2)

# ---------------------------------------------------------------------------------------
# value specs


def I(v):
    return ("i", v)


def T(*elements):
    return ("t", [e if isinstance(e, tuple) else I(e) for e in elements])


def S(s):
    return ("s", s)


def decode(spec):
    tag = spec[0]
    if tag in ("i", "f", "s"):
        return spec[1]
    if tag == "b":
        return bool(spec[1])
    if tag == "nb":
        return np.bool_(spec[1])
    if tag == "n":
        return np.dtype(spec[1]).type(spec[2])
    if tag == "t":
        return tuple(decode(e) for e in spec[1])
    if tag == "l":
        return [decode(e) for e in spec[1]]
    if tag == "none":
        return None
    if tag == "obj":
        return object()
    raise AssertionError(spec)


def _int_source(v):
    if abs(v) >= 2 ** 20:
        sign, a = ("-" if v < 0 else ""), abs(v)
        for base in (2, 10):
            k = round(math.log(a, base))
            for kk in (k - 1, k, k + 1):
                if base ** kk == a:
                    return f"{sign}{base}**{kk}"
                if base ** kk - 1 == a:
                    return f"{sign}({base}**{kk}-1)" if sign else f"{base}**{kk}-1"
    return repr(v)


def source(spec):
    """The value as Python source (numpy as np)."""
    tag = spec[0]
    if tag == "i":
        return _int_source(spec[1])
    if tag == "f":
        v = spec[1]
        if math.isnan(v):
            return "float('nan')"
        if math.isinf(v):
            return "float('inf')" if v > 0 else "-float('inf')"
        return repr(v)
    if tag in ("b", "s"):
        return repr(spec[1])
    if tag == "nb":
        return "np.True_" if spec[1] else "np.False_"
    if tag == "n":
        v = spec[2]
        return f"np.{spec[1]}({_int_source(v) if isinstance(v, int) else source(('f', v))})"
    if tag == "t":
        inner = ", ".join(source(e) for e in spec[1])
        return f"({inner},)" if len(spec[1]) == 1 else f"({inner})"
    if tag == "l":
        return "[" + ", ".join(source(e) for e in spec[1]) + "]"
    if tag == "none":
        return "None"
    if tag == "obj":
        return "object()"
    raise AssertionError(spec)


def plain(spec):
    """The same value with every bool, NumPy scalar and integral float replaced by the plain
    int it equals (where there is one): the priming call's argument."""
    tag = spec[0]
    if tag in ("b", "nb"):
        return I(int(spec[1]))
    if tag == "n":
        v = spec[2]
        if np.dtype(spec[1]).kind in "iu":
            return I(int(v))
        return I(int(v)) if math.isfinite(v) and float(v).is_integer() else spec
    if tag == "f":
        v = spec[1]
        return I(int(v)) if math.isfinite(v) and v.is_integer() else spec
    if tag in ("t", "l"):
        return (tag, [plain(e) for e in spec[1]])
    return spec


def int_of(spec):
    """The integer a size computation reads from an int-like spec (bools and NumPy ints
    included, floats not); None for anything else."""
    tag = spec[0]
    if tag == "i":
        return spec[1]
    if tag in ("b", "nb"):
        return int(spec[1])
    if tag == "n" and np.dtype(spec[1]).kind in "iu":
        return int(spec[2])
    return None


def seq_of(spec, n=2):
    """torch's reading of an int-or-sequence argument: a scalar or a 1-sequence repeated,
    an n-sequence as it is; None when it is not made of ints."""
    if spec[0] in ("t", "l"):
        vals = [int_of(e) for e in spec[1]]
        if None in vals or len(vals) not in (1, n):
            return None
        return tuple(vals * n) if len(vals) == 1 else tuple(vals)
    v = int_of(spec)
    return None if v is None else (v,) * n


def is_nested(spec):
    return spec[0] in ("t", "l") and any(e[0] in ("t", "l") for e in spec[1])


# ---------------------------------------------------------------------------------------
# pools of hostile values

SMALL = [0, 1, 2, 3, 4, -1]
HUGE = [2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 58, 2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64, 10 ** 20]
FLOATS = [1.0, 2.0, 2.5, NAN, INF]
NP_INT_TYPES = ["int8", "int32", "int64", "uint64"]
NP_BIG = [("uint64", 2 ** 64 - 1), ("int64", 2 ** 63 - 1), ("int64", 2 ** 62),
          ("int32", 2 ** 31 - 1)]
ODD = [S("same"), S("valid"), S("same_upper"), S("same_lower"), S("bogus"), ("none",),
       ("obj",)]


def hostile_scalar(rng):
    r = rng.random()
    if r < 0.22:
        return I(rng.choice(SMALL))
    if r < 0.42:
        return I(rng.choice(HUGE))
    if r < 0.54:
        return ("f", rng.choice(FLOATS))
    if r < 0.64:
        return rng.choice([("b", True), ("b", False), ("nb", True), ("nb", False)])
    if r < 0.80:
        t = rng.choice(NP_INT_TYPES)
        return ("n", t, rng.choice([v for v in SMALL if v >= 0 or t[0] != "u"]))
    if r < 0.86:
        return ("n", *rng.choice(NP_BIG))
    if r < 0.92:
        return ("n", rng.choice(["float64", "float64", "float32"]), rng.choice([1.0, 2.0, 2.5]))
    return rng.choice(ODD)


def disguise(rng, v):
    """A value equal to the int v (or not quite), spelled in a way a caller might."""
    options = [("n", t, v) for t in NP_INT_TYPES if v >= 0 or t[0] != "u"]
    options += [("f", float(v)), ("n", "float64", float(v)), T(v), ("l", [I(v), I(v)]),
                T(("n", "int64", v), v), T(v, ("n", "int32", v))]
    if v in (0, 1):
        options += [("b", bool(v)), ("nb", bool(v)), T(v, ("b", bool(v))),
                    T(("b", bool(v)), v), T(("b", bool(v))), T(v, ("nb", bool(v)))]
    return rng.choice(options)


def hostile_value(rng, name, base):
    """A hostile value for stride / padding / dilation / groups (base: the plain spec)."""
    r = rng.random()
    b = seq_of(base) if base[0] != "s" else None
    if r < 0.45 and b is not None and b[0] == b[1]:
        return disguise(rng, b[0])
    if r < 0.62:
        return hostile_scalar(rng)
    if r < 0.86:
        n = rng.choice([0, 1, 1, 2, 2, 2, 2, 3])
        elems = [I(rng.choice([1, 1, 2, 3])) for _ in range(n)]
        if n and rng.random() < 0.8:
            elems[rng.randrange(n)] = hostile_scalar(rng)
        return (rng.choice(["t", "t", "l"]), elems)
    if name == "padding" and r < 0.95:
        e = lambda: hostile_scalar(rng) if rng.random() < 0.3 else I(rng.randint(0, 3))  # noqa
        shape = rng.choice([(2, 2), (2, 2), (2, 2), (1, 2), (2, 1), (3, 2), (2, 3)])
        return ("t", [("t", [e() for _ in range(k)]) for k in shape])
    return rng.choice(ODD)


ACT_NUMBERS = [I(0), I(6), I(-1), ("f", NAN), ("f", INF), ("f", -INF), ("b", True),
               ("f", 0.5), ("n", "float64", 0.2), ("f", 1.0)]


def make_activation(rng):
    r = rng.random()
    if r < 0.45:
        return None
    if r < 0.70:
        return S(rng.choice(["relu", "relu6", "silu", "hardswish", "leaky_relu"]))
    if r < 0.88:
        lo, hi = rng.choice(ACT_NUMBERS), rng.choice(ACT_NUMBERS)
        if rng.random() < 0.7:        # mostly min <= max (when they compare)
            a, b = decode(lo), decode(hi)
            if a > b:
                lo, hi = hi, lo
        return T(S("clamp"), lo, hi)
    if r < 0.97:
        return T(S("leaky_relu"), rng.choice(ACT_NUMBERS))
    return rng.choice([S("bogus"), T(S("clamp"), I(0)), T(S("relu")), ("l", [S("relu")])])


def _data_kind(rng, weights):
    kinds = ["uniform", "rand", "ones", "nan", "inf", "special"]
    return rng.choices(kinds, weights)[0]


# ---------------------------------------------------------------------------------------
# case generators: case i of a seed depends only on (kind, seed, i)


def _rng(kind, seed, i):
    return random.Random(f"gconv-fuzz:{kind}:{seed}:{i}")


def make_case(seed, i):
    """One random conv2d call: mostly valid and mildly unusual, sometimes hostile."""
    rng = _rng("conv", seed, i)
    structure = rng.choices(["dense", "grouped", "depthwise"], [0.35, 0.35, 0.30])[0]
    if structure == "depthwise":
        G = rng.randint(1, 6)
        C_in, C_out = G, G * rng.randint(1, 3)
    else:
        G = 1 if structure == "dense" else rng.randint(2, 4)
        cg = 0 if rng.random() < 0.04 else rng.randint(1, 4)
        C_in, C_out = G * cg, G * rng.randint(1, 3)
    KH, KW = rng.randint(1, 5), rng.randint(1, 5)
    N = rng.choices([0, 1, 2, 3], [10, 45, 30, 15])[0]
    stride = rng.choice([1, 1, 1, 1, 2, 2, 3, (1, 2), (2, 1)])
    dilation = rng.choice([1, 1, 1, 1, 2, 3, (1, 2), (2, 1)])
    s, d = (stride,) * 2 if isinstance(stride, int) else stride, \
        (dilation,) * 2 if isinstance(dilation, int) else dilation
    pads = [0, 0, 0, 1, 1, 2, 3, (1, 0), (0, 2), "valid"]
    if s == (1, 1):
        pads += ["same", "same"]
    padding = rng.choice(pads)
    if rng.random() < 0.15:          # gconv's own: ONNX's rules, asymmetric pads
        padding = rng.choice(["same_upper", "same_lower", ((0, 1), (2, 0)), ((1, 1), (0, 0))])
    # a forced algorithm, mostly one that can run the problem
    algorithm = rng.choices(["auto", "depthwise", "pointwise", "general"], [85, 5, 4, 6])[0]
    if algorithm == "depthwise" and C_in != G and rng.random() < 0.8:
        algorithm = "general"
    if algorithm == "pointwise" and rng.random() < 0.8:
        KH = KW = stride = 1
        padding = rng.choice([0, "valid"])
        s = (1, 1)
    H, W = rng.randint(1, 12), rng.randint(1, 12)
    if rng.random() < 0.9:           # make it fit, most of the time
        ph = pw = 0
        if isinstance(padding, int):
            ph = pw = 2 * padding
        elif isinstance(padding, tuple) and isinstance(padding[0], tuple):
            ph, pw = sum(padding[0]), sum(padding[1])
        elif isinstance(padding, tuple):
            ph, pw = 2 * padding[0], 2 * padding[1]
        elif padding != "valid":
            ph = pw = 99
        H = max(H, d[0] * (KH - 1) + 1 - ph)
        W = max(W, d[1] * (KW - 1) + 1 - pw)

    def spec(v):
        if isinstance(v, str):
            return S(v)
        if isinstance(v, tuple):
            return ("t", [spec(e) for e in v])
        return I(v)

    args = {"stride": spec(stride), "padding": spec(padding), "dilation": spec(dilation),
            "groups": I(G)}
    if rng.random() < 0.4:
        names = rng.sample(list(args), 2 if rng.random() < 0.2 else 1)
        for name in names:
            args[name] = hostile_value(rng, name, args[name])
    case = dict(
        id=f"conv:{seed}:{i}", kind="conv", N=N, C_in=C_in, H=H, W=W, C_out=C_out,
        shape_groups=G, KH=KH, KW=KW,
        dtype=rng.choice(["float32", "float32", "float64"]),
        bias=rng.random() < 0.7, args=args,
        data={"x": _data_kind(rng, [55, 10, 10, 8, 8, 9]),
              "w": _data_kind(rng, [80, 0, 5, 5, 5, 5]),
              "b": _data_kind(rng, [85, 0, 0, 7, 8, 0]),
              "r": _data_kind(rng, [85, 0, 0, 5, 5, 5])},
        data_seed=rng.getrandbits(32),
        activation=make_activation(rng),
        padding_mode=rng.choices(["zeros", "reflect", "replicate", "circular"],
                                 [82, 6, 6, 6])[0],
        algorithm=algorithm,
        residual=rng.random() < 0.08,
        unbatched=rng.random() < 0.07,
        layout="NHWC" if rng.random() < 0.07 else "NCHW",
    )
    if case["unbatched"]:
        case["N"] = 1
    return case


def make_cases(seed, n):
    return [make_case(seed, i) for i in range(n)]


def _issue_case(i, x_shape, w_shape, dtype, data, stride, padding, dilation, groups):
    N, C_in, H, W = x_shape
    C_out, CG, KH, KW = w_shape
    return dict(id=f"issue:{i}", kind="conv", N=N, C_in=C_in, H=H, W=W, C_out=C_out,
                shape_groups=groups, KH=KH, KW=KW, dtype=dtype, bias=False,
                args={"stride": I(stride), "padding": I(padding), "dilation": I(dilation),
                      "groups": I(groups)},
                data={"x": data, "w": data, "b": data, "r": data}, data_seed=i,
                activation=None, padding_mode="zeros", algorithm="auto", residual=False,
                unbatched=False, layout="NCHW")


def issue_cases():
    """The exact reproducers of issue 14 (np.ones / np.random.rand are float64)."""
    out = [_issue_case(0, (1, 4, 11, 16), (2, 2, 2, 2), "float64", "ones", 2 ** 63 - 1, 3, 2, 2)]
    for H, W in ((11, 16), (8, 8)):
        for s in (2 ** 62, 2 ** 58):
            out.append(_issue_case(len(out), (1, 4, H, W), (4, 1, 3, 3), "float32", "rand",
                                   s, 3, 2, 4))
    for s in (4096, 16384):
        out.append(_issue_case(len(out), (1, 3, 32, 32), (8, 3, 3, 3), "float64", "rand",
                               s, 1, 1, 1))
    return out


LAYER_ARG_NAMES = ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                   "dilation", "groups", "bias", "padding_mode")


def make_layer_case(seed, i):
    """One gconv.Conv2d(...) construction, then a call on a small input."""
    rng = _rng("layer", seed, i)
    G = rng.choice([1, 1, 2, 3, 4])
    C_in = G * rng.randint(1, 3)
    C_out = G * rng.randint(1, 3)
    if rng.random() < 0.3:                # depthwise
        C_in, C_out = G, G * rng.randint(1, 2)
    k = rng.choice([1, 2, 3, 3, 5, (1, 3), (3, 2)])
    args = {"in_channels": I(C_in), "out_channels": I(C_out),
            "kernel_size": I(k) if isinstance(k, int) else T(*k),
            "stride": I(rng.choice([1, 1, 2])), "padding": I(rng.choice([0, 1, 1, 2])),
            "dilation": I(rng.choice([1, 1, 2])), "groups": I(G),
            "bias": ("b", rng.random() < 0.7), "padding_mode": S("zeros")}
    if rng.random() < 0.2:
        args["padding_mode"] = S(rng.choice(["reflect", "replicate", "circular"]))
    n_hostile = rng.choices([0, 1, 2], [25, 60, 15])[0]
    for name in rng.sample(LAYER_ARG_NAMES, n_hostile):
        if name == "bias":
            args[name] = rng.choice([("b", False), ("nb", True), I(1), I(0), ("none",),
                                     S("yes")])
        elif name == "padding_mode":
            args[name] = rng.choice([S("bogus"), ("none",), S("ZEROS"), S("reflect"),
                                     S("circular")])
        elif rng.random() < 0.4 and seq_of(args[name]) is not None:
            v = seq_of(args[name])
            args[name] = disguise(rng, v[0]) if v[0] == v[1] else \
                ("l", [rng.choice([I(e), ("n", "int64", e)]) for e in v])
        else:
            args[name] = hostile_value(rng, name, args[name])
    K = (k, k) if isinstance(k, int) else k
    return dict(id=f"layer:{seed}:{i}", kind="layer", N=rng.choice([0, 1, 2, 2]), C_in=C_in,
                H=rng.randint(2 * K[0] - 1, 2 * K[0] + 5),
                W=rng.randint(2 * K[1] - 1, 2 * K[1] + 5), C_out=C_out,
                dtype=rng.choice(["float32", "float64"]), args=args,
                data={"x": _data_kind(rng, [80, 0, 0, 7, 7, 6])},
                data_seed=rng.getrandbits(32))


def make_layer_cases(seed, n):
    return [make_layer_case(seed, i) for i in range(n)]


def prime_of(case):
    """The priming call: the same case with every argument replaced by the plain ints it
    equals (stride=1 before stride=True); None when that changes nothing."""
    primed = dict(case, id=case["id"] + ":prime",
                  args={k: plain(v) for k, v in case["args"].items()})
    if case.get("activation") is not None:
        primed["activation"] = plain(case["activation"])
    if describe_args(primed) == describe_args(case):
        return None
    return primed


def case_by_id(cid):
    parts = cid.split(":")
    prime = parts[-1] == "prime"
    if prime:
        parts = parts[:-1]
    if parts[0] == "issue":
        case = issue_cases()[int(parts[1])]
    elif parts[0] == "conv":
        case = make_case(int(parts[1]), int(parts[2]))
    elif parts[0] == "layer":
        case = make_layer_case(int(parts[1]), int(parts[2]))
    else:
        raise ValueError(f"case ids look like conv:1:37, layer:2:5, issue:0 (+ ':prime'), "
                         f"got {cid!r}")
    if prime:
        p = prime_of(case)
        return p if p is not None else dict(case, id=case["id"] + ":prime")
    return case


# ---------------------------------------------------------------------------------------
# what a case asks for, computed here in pure Python with torch's formula


def _pads(p, H, W, KH, KW, stride, dilation):
    """(top, bottom, left, right) from a padding spec, or None."""
    if p[0] == "s":
        if p[1] == "valid":
            return (0, 0, 0, 0)
        if p[1] not in ("same", "same_upper", "same_lower"):
            return None
        pads = []
        for size, k, s, d in ((H, KH, stride[0], dilation[0]), (W, KW, stride[1], dilation[1])):
            if p[1] == "same":
                if s != 1:
                    return None
                total = d * (k - 1)
                begin = total // 2
            else:
                total = max(0, (-(-size // s) - 1) * s + d * (k - 1) + 1 - size)
                begin = total // 2 if p[1] == "same_upper" else total - total // 2
            pads += [begin, total - begin]
        return tuple(pads)
    if is_nested(p):
        if len(p[1]) != 2 or any(e[0] not in ("t", "l") or len(e[1]) != 2 for e in p[1]):
            return None
        vals = [int_of(e) for pair in p[1] for e in pair[1]]
        return None if None in vals else tuple(vals)
    ph = seq_of(p)
    return None if ph is None else (ph[0], ph[0], ph[1], ph[1])


def geometry(case):
    """(KH, KW, stride, dilation, pads) as torch reads the arguments, or None when they are
    not ints (or are out of range: a non-positive stride or dilation, a negative pad)."""
    a = case["args"]
    if case["kind"] == "layer":
        k = seq_of(a["kernel_size"])
        if k is None or min(k) <= 0:
            return None
        KH, KW = k
    else:
        KH, KW = case["KH"], case["KW"]
    stride, dilation = seq_of(a["stride"]), seq_of(a["dilation"])
    if stride is None or dilation is None or min(stride + dilation) <= 0:
        return None
    pads = _pads(a["padding"], case["H"], case["W"], KH, KW, stride, dilation)
    if pads is None or min(pads) < 0:
        return None
    return KH, KW, stride, dilation, pads


def output_hw(case):
    """(OH, OW) by torch's formula; 'invalid' when the dilated kernel is larger than the
    padded input; None when the arguments do not say (see geometry)."""
    g = geometry(case)
    if g is None:
        return None
    KH, KW, stride, dilation, (t, b, l, r) = g
    sizes = []
    for size, k, s, d, p0, p1 in ((case["H"], KH, stride[0], dilation[0], t, b),
                                  (case["W"], KW, stride[1], dilation[1], l, r)):
        span = size + p0 + p1 - d * (k - 1) - 1
        if span < 0:
            return "invalid"
        sizes.append(span // s + 1)
    return tuple(sizes)


def int64_overflow(case):
    """Whether torch's int64 arithmetic on these sizes wraps (padded size or dilated kernel
    extent beyond 2**63 - 1): then torch's own answer is not the convolution's."""
    g = geometry(case)
    if g is None:
        return False
    KH, KW, stride, dilation, (t, b, l, r) = g
    big = 2 ** 63
    return (case["H"] + t + b >= big or case["W"] + l + r >= big
            or dilation[0] * (KH - 1) + 1 >= big or dilation[1] * (KW - 1) + 1 >= big)


def requested_elements(case):
    """The number of elements the call asks gconv to produce (the output; for a non-zero
    padding mode also the padded input; for a layer, its weight), or None when the
    arguments do not say one."""
    if case["kind"] == "layer":
        a = case["args"]
        cin, cout, g = int_of(a["in_channels"]), int_of(a["out_channels"]), int_of(a["groups"])
        k = seq_of(a["kernel_size"])
        if None in (cin, cout, g, k) or g <= 0:
            return None
        return max(0, cout) * max(0, cin // g) * max(0, k[0]) * max(0, k[1])
    hw = output_hw(case)
    if hw is None or hw == "invalid":
        return None
    n = case["N"] * case["C_out"] * hw[0] * hw[1]
    if case["padding_mode"] != "zeros":
        t, b, l, r = geometry(case)[4]
        n = max(n, case["N"] * case["C_in"] * (case["H"] + t + b) * (case["W"] + l + r))
    return n


def output_shape(case):
    """The output's shape in the caller's layout, or None (see requested_elements)."""
    hw = output_hw(case)
    if hw is None or hw == "invalid":
        return None
    OH, OW = hw
    shape = (case["N"], OH, OW, case["C_out"]) if case["layout"] == "NHWC" else \
        (case["N"], case["C_out"], OH, OW)
    return shape[1:] if case["unbatched"] else shape


# ---------------------------------------------------------------------------------------
# describing a case


def describe_args(case):
    parts = []
    order = LAYER_ARG_NAMES if case["kind"] == "layer" else \
        ("stride", "padding", "dilation", "groups")
    for name in order:
        parts.append(f"{name}={source(case['args'][name])}")
    if case["kind"] == "conv":
        if case.get("activation") is not None:
            parts.append(f"activation={source(case['activation'])}")
        if case["residual"]:
            parts.append("residual=r")
        for name, default in (("padding_mode", "zeros"), ("layout", "NCHW"),
                              ("algorithm", "auto")):
            if case[name] != default:
                parts.append(f"{name}={case[name]!r}")
    return ", ".join(parts)


def describe(case):
    """One line of source plus the arrays it uses."""
    if case["kind"] == "layer":
        return (f"layer = gconv.Conv2d({describe_args(case)}, dtype=np.{case['dtype']}, "
                f"rng={case['data_seed']}); layer(x)   # x: {x_shape(case)} "
                f"{case['dtype']} {case['data']['x']!r}")
    b = "b" if case["bias"] else "None"
    s = f"gconv.conv2d(x, w, {b}, {describe_args(case)})"
    s += (f"   # x: {x_shape(case)} {case['dtype']} {case['data']['x']!r}, "
          f"w: {w_shape(case)} {case['data']['w']!r}")
    if case["bias"]:
        s += f", b: ({case['C_out']},) {case['data']['b']!r}"
    return s


def x_shape(case):
    N, C, H, W = case["N"], case["C_in"], case["H"], case["W"]
    shape = (N, H, W, C) if case.get("layout") == "NHWC" else (N, C, H, W)
    return shape[1:] if case.get("unbatched") else shape


def w_shape(case):
    return (case["C_out"], case["C_in"] // case["shape_groups"], case["KH"], case["KW"])


def _data(rng, kind, shape, dtype):
    if kind == "ones":
        return np.ones(shape, dtype)
    if kind == "rand":
        return rng.random(shape).astype(dtype)
    a = rng.uniform(-1, 1, shape)
    if kind in ("nan", "inf", "special"):
        hit = rng.random(shape) < (0.1 if kind != "special" else 0.15)
        if kind == "nan":
            a[hit] = np.nan
        else:
            values = [np.inf, -np.inf] + ([np.nan] if kind == "special" else [])
            a[hit] = rng.choice(values, size=int(hit.sum()))
    return a.astype(dtype)


def make_arrays(case):
    """(x, w, b, r) for a conv case; (x,) for a layer case. r is None unless the case has a
    residual whose shape the arguments determine (and is small)."""
    rng = np.random.default_rng(case["data_seed"])
    dt = np.dtype(case["dtype"])
    x = _data(rng, case["data"]["x"], x_shape(case), dt)
    if case["kind"] == "layer":
        return (x,)
    w = _data(rng, case["data"]["w"], w_shape(case), dt)
    b = _data(rng, case["data"]["b"], (case["C_out"],), dt) if case["bias"] else None
    r = None
    if case["residual"]:
        shape = output_shape(case)
        if shape is not None and max(shape) <= 2 ** 16 and math.prod(shape) <= 2 ** 16:
            r = _data(rng, case["data"]["r"], shape, dt)
    return x, w, b, r


# ---------------------------------------------------------------------------------------
# running a case


def digest(y):
    """Shape, dtype and bytes of an output, with every NaN made the same NaN (so two runs
    agree when their NaNs sit in the same places)."""
    a = np.array(y, copy=True, order="C")
    a[np.isnan(a)] = np.nan
    h = hashlib.sha256(repr((a.shape, a.dtype.str)).encode() + a.tobytes())
    return h.hexdigest()[:20]


def _error_class(e):
    for cls in (MemoryError, ValueError, TypeError):
        if isinstance(e, cls):
            return cls.__name__
    return "other"


def _peak_rss_mb():
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KB on Linux
    except ImportError:
        return 0.0


def run_gconv(case, arrays):
    """(record, output or None). record: {'o': 'ok', shape, dtype, digest} or
    {'o': 'refused', 'type', 'cls' (ValueError / TypeError / MemoryError / other), 'msg'};
    both with 'seconds' (the call's time) and 'peak_mb' (how much it raised the process's
    peak resident memory)."""
    import time
    rss0, t0 = _peak_rss_mb(), time.perf_counter()
    rec, y = _run_gconv(case, arrays)
    rec["seconds"] = round(time.perf_counter() - t0, 4)
    rec["peak_mb"] = round(_peak_rss_mb() - rss0, 1)
    return rec, y


def _run_gconv(case, arrays):
    import gconv
    kwargs = {k: decode(v) for k, v in case["args"].items()}
    stage = "call"
    try:
        if case["kind"] == "layer":
            stage = "construct"
            layer = gconv.Conv2d(**kwargs, dtype=np.dtype(case["dtype"]), rng=case["data_seed"])
            stage = "call"
            y = layer(arrays[0])
        else:
            x, w, b, r = arrays
            extra = {}
            if case.get("activation") is not None:
                extra["activation"] = decode(case["activation"])
            if r is not None:
                extra["residual"] = r
            for name, default in (("padding_mode", "zeros"), ("layout", "NCHW"),
                                  ("algorithm", "auto")):
                if case[name] != default:
                    extra[name] = case[name]
            y = gconv.conv2d(x, w, b, **kwargs, **extra)
    except Exception as e:            # noqa: BLE001 - every refusal is recorded
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else "?"
        return {"o": "refused", "type": type(e).__name__, "cls": _error_class(e),
                "msg": str(e)[:400], "where": where, "stage": stage}, None
    if not isinstance(y, np.ndarray):
        return {"o": "refused", "type": "NotAnArray", "cls": "other",
                "msg": f"returned {type(y).__name__}", "where": "", "stage": stage}, None
    return {"o": "ok", "shape": list(y.shape), "dtype": str(y.dtype), "digest": digest(y)}, y


# -- the torch oracle ---------------------------------------------------------------------

def torch_skip_reason(case):
    """Why a case is not compared with torch (a deliberate difference), or None."""
    if case["kind"] == "conv" and case["C_in"] == 0:
        return "C_in == 0 (gconv refuses it; torch returns an empty tensor whatever C_out is)"
    p = case["args"]["padding"]
    if p[0] == "s" and p[1] in ("same_upper", "same_lower"):
        return "padding='same_upper'/'same_lower' is gconv's own"
    if is_nested(p):
        return "nested ((top, bottom), (left, right)) padding is gconv's own"
    n = requested_elements(case)
    if n is not None and n > LARGE:
        return f"the call asks for {n} elements (> 2**26): torch would try to allocate them"
    return None


def _torch_activation(y, spec):
    import torch
    import torch.nn.functional as F
    if spec is None:
        return y
    act = decode(spec)
    simple = {"relu": torch.relu, "relu6": F.relu6, "silu": F.silu, "hardswish": F.hardswish,
              "sigmoid": torch.sigmoid, "tanh": torch.tanh, "leaky_relu": F.leaky_relu}
    if isinstance(act, str) and act in simple:
        return simple[act](y)
    if isinstance(act, tuple) and len(act) == 3 and act[0] == "clamp":
        return torch.clamp(y, act[1], act[2])
    if isinstance(act, tuple) and len(act) == 2 and act[0] == "leaky_relu":
        return F.leaky_relu(y, act[1])
    raise ValueError(f"{act!r} is not an activation (torch has no such function)")


def _to_nchw(a, case):
    if a is None:
        return None
    if case.get("layout") == "NHWC":
        a = np.moveaxis(a, -1, -3)
    return a


def _from_nchw(a, case):
    if case.get("layout") == "NHWC":
        a = np.moveaxis(a, -3, -1)
    return a


def _torch_conv(case, arrays, args):
    """torch's answer for a conv case, in float64, in the caller's layout."""
    import torch
    import torch.nn.functional as F
    x, w, b, r = arrays
    X = torch.from_numpy(np.ascontiguousarray(_to_nchw(x, case), np.float64))
    Wt = torch.from_numpy(np.ascontiguousarray(w, np.float64))
    B = None if b is None else torch.from_numpy(b.astype(np.float64))
    kwargs = {k: decode(v) for k, v in args.items()}
    if case["padding_mode"] == "zeros":
        y = F.conv2d(X, Wt, B, **kwargs)
    else:
        # torch has no functional conv with a padding mode: nn.Conv2d(..., padding_mode)
        # pads with F.pad and convolves with padding 0, so arguments F.conv2d refuses (a
        # negative padding, which F.pad takes as a crop) would slip through. Refuse them
        # as F.conv2d does, then compute what nn.Conv2d computes with these weights.
        F.conv2d(X, Wt, B, **kwargs)
        layer = torch.nn.Conv2d(X.shape[-3], Wt.shape[0], tuple(Wt.shape[2:]), **kwargs,
                                bias=B is not None, padding_mode=case["padding_mode"],
                                dtype=torch.float64)
        y = layer._conv_forward(X, Wt, B)
    if case["residual"]:
        if r is None:
            raise ValueError("no residual of the output's shape could be made")
        y = y + torch.from_numpy(np.ascontiguousarray(_to_nchw(r, case), np.float64))
    y = _torch_activation(y, case.get("activation"))
    return _from_nchw(y.numpy(), case)


def _torch_layer(case, arrays, glayer_weights):
    import torch
    kwargs = {k: decode(v) for k, v in case["args"].items()}
    layer = torch.nn.Conv2d(**kwargs, dtype=torch.float64)
    if glayer_weights is not None:
        gw, gb = glayer_weights
        with torch.no_grad():
            if tuple(layer.weight.shape) == gw.shape:
                layer.weight.copy_(torch.from_numpy(gw.astype(np.float64)))
            else:
                glayer_weights = None
            if gb is not None and layer.bias is not None and tuple(layer.bias.shape) == gb.shape:
                layer.bias.copy_(torch.from_numpy(gb.astype(np.float64)))
            elif (gb is None) != (layer.bias is None):
                glayer_weights = None
    X = torch.from_numpy(arrays[0].astype(np.float64))
    with torch.no_grad():
        if layer.padding_mode != "zeros":     # as in _torch_conv: F.conv2d's checks first
            torch.nn.functional.conv2d(X, layer.weight, layer.bias, layer.stride,
                                       layer.padding, layer.dilation, layer.groups)
        y = layer(X)
    return y.numpy(), glayer_weights is not None


def _quirk_retries(case):
    """Variants of a case torch refuses for reasons that are its own parser's quirks (see
    run_torch). Each: (reason, args)."""
    out = []
    args = case["args"]
    # 1. torch's argument parser types an int list by its first element, so (1, True) is
    #    accepted and (True, 1) refused: a bool first is refused only by that.
    fixed = {}
    for name, v in args.items():
        if v[0] in ("t", "l") and v[1] and v[1][0][0] == "b":
            fixed[name] = (v[0], [I(int(v[1][0][1]))] + v[1][1:])
    if fixed:
        out.append(("a bool first in a tuple (torch refuses only (True, 1), not (1, True))",
                    {**args, **fixed}))
    # 2. nn.Conv2d with a non-zero padding mode gives F.pad a 1-tuple padding as it is
    #    (NotImplementedError) where F.conv2d repeats it.
    p = args["padding"]
    mode = case["padding_mode"] if case["kind"] == "conv" else args["padding_mode"]
    mode = mode if isinstance(mode, str) else (mode[1] if mode[0] == "s" else None)
    if mode not in ("zeros", None) and p[0] in ("t", "l") and len(p[1]) == 1:
        ints = [I(int(e[1])) if e[0] == "b" else e for e in p[1]]   # and no bool first (1.)
        out.append(("padding=(p,) with a padding mode: nn.Conv2d's F.pad does not repeat it",
                    {**args, "padding": (p[0], ints * 2)}))
    # 3. nn.Conv2d(kernel_size=(k,)) makes a 3-D weight (F.conv2d then refuses it) where
    #    stride=(s,) is repeated.
    k = args.get("kernel_size")
    if k is not None and k[0] in ("t", "l") and len(k[1]) == 1:
        out.append(("kernel_size=(k,): nn.Conv2d makes a 3-D weight of it",
                    {**args, "kernel_size": (k[0], k[1] * 2)}))
    return out


def run_torch(case, arrays, gres, gy, glayer_weights=None):
    """Compare gconv's answer (gres, gy) with torch's. Returns a dict:
    torch: 'ok' / 'refused' / 'skipped' / 'either'; verdict: 'agree' / 'disagree' / 'n/a';
    detail: why."""
    why = torch_skip_reason(case)
    if why is not None:
        return {"torch": "skipped", "verdict": "n/a", "detail": why}
    try:
        import torch
    except ImportError:
        return {"torch": "skipped", "verdict": "n/a", "detail": "torch is not installed"}
    torch.set_num_threads(1)
    if case["kind"] == "layer":
        def compute(args):
            return _torch_layer(dict(case, args=args), arrays, glayer_weights)
    else:
        def compute(args):
            return _torch_conv(case, arrays, args), True

    either = None
    try:
        ty, values_comparable = compute(case["args"])
    except Exception as e:        # noqa: BLE001 - torch refuses
        terr = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        ty = None
        for reason, args in _quirk_retries(case):
            try:
                ty, values_comparable = compute(args)
                either = reason
                break
            except Exception:     # noqa: BLE001
                pass
        if ty is None:
            if gres["o"] == "refused":
                return {"torch": "refused", "verdict": "agree", "detail": terr}
            return {"torch": "refused", "verdict": "disagree",
                    "detail": f"torch refuses ({terr}) but gconv computes an output of shape "
                              f"{tuple(gres['shape'])}"}
    # bools given to nn.Conv2d's own arguments: torch takes True for 1 only because it
    # never checks them; gconv may do the same or refuse
    if case["kind"] == "layer" and either is None:
        for name in ("in_channels", "out_channels", "kernel_size"):
            v = case["args"][name]
            elems = v[1] if v[0] in ("t", "l") else [v]
            if any(e[0] in ("b", "nb") for e in elems):
                either = f"a bool as nn.Conv2d's {name} (torch never checks its type)"
    if output_hw(case) == "invalid" and int64_overflow(case):
        # torch's sizes wrapped around int64 (e.g. dilation 2**62 x (k - 1) = 2**64 -> 0):
        # the kernel does not fit the input, and gconv must say so
        detail = ("torch computes an output only because its int64 size arithmetic wraps; "
                  "the dilated kernel is larger than the padded input")
        if gres["o"] == "refused":
            return {"torch": "refused", "verdict": "agree", "detail": detail}
        return {"torch": "refused", "verdict": "disagree",
                "detail": detail + f", yet gconv computes an output {tuple(gres['shape'])}"}
    if (case["N"] == 0 and gres["o"] == "refused" and either is None
            and ("non-positive stride" in gres["msg"] or "dilation should be" in gres["msg"])):
        # torch checks stride and dilation only when the batch is not empty
        either = "a non-positive stride or dilation on an empty batch (torch checks neither)"
    status = "either" if either else "ok"
    if gres["o"] == "refused":
        if either:
            return {"torch": status, "verdict": "agree", "detail": either}
        if case["kind"] == "conv" and case["algorithm"] != "auto" and "algorithm=" in gres["msg"]:
            return {"torch": status, "verdict": "n/a",
                    "detail": "the forced algorithm cannot run it (gconv's own option)"}
        return {"torch": status, "verdict": "disagree",
                "detail": f"torch computes an output of shape {tuple(ty.shape)} but gconv "
                          f"refuses: {gres['type']}: {gres['msg'][:200]}"}
    if tuple(gres["shape"]) != tuple(ty.shape):
        return {"torch": status, "verdict": "disagree",
                "detail": f"output shape {tuple(gres['shape'])}, torch {tuple(ty.shape)}"}
    if gres["dtype"] != case["dtype"]:
        return {"torch": status, "verdict": "disagree",
                "detail": f"output dtype {gres['dtype']}, the input's is {case['dtype']}"}
    if not values_comparable:
        return {"torch": status, "verdict": "agree", "detail": "shapes only"}
    return _compare_values(case, gy, ty, status, either)


def _reduction_length(case):
    if case["kind"] == "layer":
        k = seq_of(case["args"]["kernel_size"]) or (1, 1)
        g = int_of(case["args"]["groups"]) or 1
        return max(1, case["C_in"] // max(g, 1) * k[0] * k[1])
    return max(1, case["C_in"] // case["shape_groups"] * case["KH"] * case["KW"])


def _compare_values(case, gy, ty, status, either):
    K = _reduction_length(case)
    if case["dtype"] == "float32":
        rtol, atol = 1e-4, 1e-4 * max(1.0, K / 10)
    else:
        rtol, atol = 1e-10, 1e-10 * max(1.0, K / 10)
    g = np.asarray(gy, np.float64)
    gn, tn = np.isnan(g), np.isnan(ty)
    if not np.array_equal(gn, tn):
        idx = tuple(int(i) for i in np.argwhere(gn != tn)[0])
        return {"torch": status, "verdict": "disagree",
                "detail": f"NaN in different places: {int(gn.sum())} in gconv, {int(tn.sum())} "
                          f"in torch; at {idx} gconv {g[idx]!r}, torch {ty[idx]!r}"}
    ok = np.isclose(g, ty, rtol=rtol, atol=atol) | gn
    if not ok.all():
        idx = tuple(int(i) for i in np.argwhere(~ok)[0])
        return {"torch": status, "verdict": "disagree",
                "detail": f"{int((~ok).sum())} of {ok.size} values differ beyond rtol {rtol} "
                          f"atol {atol:.3g}; at {idx} gconv {g[idx]!r}, torch {ty[idx]!r}"}
    return {"torch": status, "verdict": "agree", "detail": either or ""}


# ---------------------------------------------------------------------------------------
# the child process


def _limit_memory():
    """A ceiling on the address space, so that a call that allocates (or would touch) tens
    of GB fails with MemoryError in this child instead of swamping the machine
    (GCONV_FUZZ_MEMORY_GB, default 4; 0: no ceiling). None under AddressSanitizer
    (GCONV_SANITIZE=1, .ci/sanitize): its shadow memory reserves terabytes of address space,
    and it reports an oversized allocation itself; the peak-memory check still applies."""
    if os.environ.get("GCONV_SANITIZE") == "1":
        return
    try:
        import resource
        gb = float(os.environ.get("GCONV_FUZZ_MEMORY_GB", "4"))
        if gb <= 0:
            return
        limit = int(gb * 2 ** 30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def _emit(kind, k, payload):
    line = f"{kind} {k} " + (payload if isinstance(payload, str) else json.dumps(payload))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def serve():
    """Read {'steps': [(case, mode, pass)], 'torch': bool} from stdin, run them in order.
    Per step: 'B k gconv' before the call, 'R k {...}' after it; for a pass-1 run with
    torch wanted: 'B k torch', then 'T k {...}'."""
    import faulthandler
    faulthandler.enable()
    payload = pickle.load(sys.stdin.buffer)
    _limit_memory()
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    import gconv  # noqa: F401 - imported once, before the first step's timer
    _emit("S", -1, "ready")
    for k, (case, mode, pas) in enumerate(payload["steps"]):
        arrays = make_arrays(case)
        _emit("B", k, "gconv")
        gres, gy = run_gconv(case, arrays)
        _emit("R", k, gres)
        if payload["torch"] and mode == "run" and pas == 1:
            _emit("B", k, "torch")
            weights = None
            if case["kind"] == "layer" and gres["o"] == "ok":
                weights = _layer_weights(case)
            try:
                t = run_torch(case, arrays, gres, gy, weights)
            except Exception as e:     # noqa: BLE001 - a bug here, not in gconv
                t = {"torch": "error", "verdict": "n/a",
                     "detail": f"the torch comparison itself failed: {type(e).__name__}: {e}"}
            _emit("T", k, t)
    _emit("E", -1, "end")


def _layer_weights(case):
    import gconv
    kwargs = {k: decode(v) for k, v in case["args"].items()}
    layer = gconv.Conv2d(**kwargs, dtype=np.dtype(case["dtype"]), rng=case["data_seed"])
    return (np.array(layer.weight), None if layer.bias is None else np.array(layer.bias))


def main(argv):
    if argv[:1] == ["--serve"]:
        serve()
        return 0
    if argv[:1] == ["--list"]:
        kind, seed = argv[1].split(":")
        n = int(argv[2]) if len(argv) > 2 else 20
        make = make_case if kind == "conv" else make_layer_case
        for i in range(n):
            c = make(int(seed), i)
            print(f"{c['id']}: {describe(c)}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    # by hand from a checkout with an in-place build: that build, unless PYTHONPATH says
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    built = [f for f in os.listdir(os.path.join(root, "gconv"))
             if f.startswith("_kernels") and f.endswith((".so", ".pyd"))] \
        if os.path.isdir(os.path.join(root, "gconv")) else []
    if built and "PYTHONPATH" not in os.environ:
        sys.path.insert(0, root)
    import gconv
    print(f"(gconv from {os.path.dirname(gconv.__file__)})")
    import faulthandler
    faulthandler.enable()
    _limit_memory()
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    no_torch = "--no-torch" in argv
    for cid in [a for a in argv if not a.startswith("--")]:
        case = case_by_id(cid)
        print(f"{case['id']}: {describe(case)}", flush=True)
        n = requested_elements(case)
        print(f"  asks for {n} elements" if n is not None else "  asks for (no valid size)")
        arrays = make_arrays(case)
        gres, gy = run_gconv(case, arrays)
        print(f"  gconv: {json.dumps(gres)}", flush=True)
        if not no_torch and not cid.endswith(":prime"):
            weights = _layer_weights(case) if case["kind"] == "layer" and gres["o"] == "ok" \
                else None
            print(f"  torch: {json.dumps(run_torch(case, arrays, gres, gy, weights))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
