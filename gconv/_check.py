"""``run_check``: random valid conv2d configurations cross-checked against PyTorch.

Used by ``python -m gconv check --cases N``. Each case draws a configuration (groups, depth
multiplier, kernel, stride, dilation, padding -- numbers, asymmetric pairs and the strings --,
dtype, bias, batch, and now and then an activation, a residual, channels-last layout or a
padding mode), runs gconv.conv2d and compares it with torch.nn.functional.conv2d computed in
float64 from the same inputs. The reference's padding is worked out here independently of
gconv (torch's rule for 'same', ONNX's auto_pad rule for 'same_upper' / 'same_lower') and
applied with torch.nn.functional.pad.

torch is imported only when a check runs; without it, ImportError says how to install it.
"""
import math
import time
from dataclasses import dataclass, field

import numpy as np

TORCH_INSTALL_HINT = 'pip install torch==2.13.0 (or pip install "gconv[torch]")'

# How many float rounding errors per sqrt(reduction length) the default tolerance allows.
# A sum of K products rounded in float accumulates errors like a random walk, ~sqrt(K)
# roundings of the largest partial sums; 8 leaves room for unlucky orders and the epilogue.
TOLERANCE_ULPS = 8.0


def import_torch(what="gconv check"):
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"{what} compares gconv with PyTorch, which is not installed: "
                          f"{TORCH_INSTALL_HINT}") from e
    return torch


def default_tolerance(dtype, reduction_length):
    """(rtol, atol_scale) for an output whose every element sums ``reduction_length``
    products: rtol = 8 * eps(dtype) * sqrt(K). The absolute tolerance is rtol times the
    largest reference magnitude (``atol_scale`` = rtol), so outputs near zero by
    cancellation are judged against the size of what was summed, not against zero."""
    eps = float(np.finfo(np.dtype(dtype)).eps)
    tol = TOLERANCE_ULPS * eps * math.sqrt(max(1, int(reduction_length)))
    return tol, tol


def compare(actual, expected, dtype, reduction_length, rtol=None, atol=None):
    """Elementwise |actual - expected| <= atol + rtol * |expected|.

    Returns (ok, max_abs_error, max_rel_error, rtol, atol); the relative error is taken over
    the elements whose reference is larger than atol (elsewhere it means nothing).
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    d_rtol, d_atol_scale = default_tolerance(dtype, reduction_length)
    rtol = d_rtol if rtol is None else float(rtol)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    atol = d_atol_scale * max(scale, 1e-30) if atol is None else float(atol)
    if actual.shape != expected.shape:
        return False, math.inf, math.inf, rtol, atol
    diff = np.abs(actual - expected)
    if not np.all(np.isfinite(actual)):
        return False, math.inf, math.inf, rtol, atol
    max_abs = float(diff.max()) if diff.size else 0.0
    big = np.abs(expected) > atol
    max_rel = float((diff[big] / np.abs(expected[big])).max()) if big.any() else 0.0
    ok = bool(np.all(diff <= atol + rtol * np.abs(expected)))
    return ok, max_abs, max_rel, rtol, atol


# -- the independent padding rules ----------------------------------------------------------
def resolve_padding(padding, size, kernel, stride, dilation):
    """gconv's padding argument -> (top, bottom, left, right), computed from the rules'
    definitions (torch conv.py for 'same', ONNX Conv auto_pad for 'same_upper/lower')."""
    if isinstance(padding, str):
        pads = []
        for L, k, s, d in zip(size, kernel, stride, dilation):
            if padding == "valid":
                begin = end = 0
            elif padding == "same":            # torch: total d*(k-1), extra at the end
                total = d * (k - 1)
                begin, end = total // 2, total - total // 2
            else:                               # ONNX: output ceil(L / s)
                total = max(0, (math.ceil(L / s) - 1) * s + (k - 1) * d + 1 - L)
                small, large = total // 2, total - total // 2
                begin, end = (small, large) if padding == "same_upper" else (large, small)
            pads += [begin, end]
        return tuple(pads)
    if isinstance(padding, int):
        return (padding,) * 4
    if isinstance(padding[0], tuple):
        (t, b), (l, r) = padding
        return (t, b, l, r)
    ph, pw = padding
    return (ph, ph, pw, pw)


_TORCH_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
                   "circular": "circular"}


def torch_activation(torch, activation):
    """The torch.nn.functional equivalent of a gconv activation argument."""
    F = torch.nn.functional
    if activation is None:
        return lambda t: t
    if isinstance(activation, tuple):
        if activation[0] == "leaky_relu":
            return lambda t: F.leaky_relu(t, activation[1])
        if activation[0] == "clamp":
            return lambda t: torch.clamp(t, activation[1], activation[2])
    return {"relu": F.relu, "relu6": lambda t: F.hardtanh(t, 0.0, 6.0), "silu": F.silu,
            "sigmoid": torch.sigmoid, "tanh": torch.tanh, "hardswish": F.hardswish,
            "leaky_relu": F.leaky_relu}[activation]


def torch_reference(torch, x, w, b, stride, padding, dilation, groups, *, activation=None,
                    residual=None, padding_mode="zeros"):
    """float64 torch result for NCHW float arrays (pads resolved here, applied by F.pad)."""
    F = torch.nn.functional
    pads = resolve_padding(padding, x.shape[2:], w.shape[2:], stride, dilation)
    t, bo, l, r = pads
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64))
    if any(pads):
        xt = F.pad(xt, (l, r, t, bo), mode=_TORCH_PAD_MODE[padding_mode])
    y = F.conv2d(xt, torch.from_numpy(np.asarray(w, dtype=np.float64)),
                 None if b is None else torch.from_numpy(np.asarray(b, dtype=np.float64)),
                 stride=stride, padding=0, dilation=dilation, groups=groups)
    if residual is not None:
        y = y + torch.from_numpy(np.asarray(residual, dtype=np.float64))
    return torch_activation(torch, activation)(y).numpy()


# -- random configurations ------------------------------------------------------------------
ACTIVATIONS = ("relu", "relu6", "silu", "sigmoid", "tanh", "hardswish", "leaky_relu",
               ("leaky_relu", 0.2), ("clamp", -0.5, 0.75))


@dataclass
class CheckCase:
    """One random configuration; ``str()`` is its descriptor."""
    N: int
    C_in: int
    C_out: int
    H: int
    W: int
    groups: int
    kernel: tuple
    stride: tuple
    padding: object
    dilation: tuple
    dtype: str
    bias: bool
    batched: bool = True
    activation: object = None
    residual: bool = False
    layout: str = "NCHW"
    padding_mode: str = "zeros"

    def __str__(self):
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        s = (f"mb{self.N}_g{self.groups}_ic{self.C_in}oc{self.C_out}_ih{self.H}iw{self.W}"
             f"_kh{kh}kw{kw}_sh{sh}sw{sw}_pad{self.padding!r}_dh{dh}dw{dw}_{self.dtype}"
             .replace(" ", ""))
        extras = [("bias" if self.bias else "no-bias")]
        if not self.batched:
            extras.append("unbatched")
        if self.activation is not None:
            extras.append(f"activation={self.activation!r}")
        if self.residual:
            extras.append("residual")
        if self.layout != "NCHW":
            extras.append(f"layout={self.layout}")
        if self.padding_mode != "zeros":
            extras.append(f"padding_mode={self.padding_mode}")
        return s + " " + " ".join(extras)

    @property
    def reduction_length(self):
        return self.C_in // self.groups * self.kernel[0] * self.kernel[1]


def random_case(rng):
    """A random valid conv2d configuration, small enough to check in milliseconds."""
    kind = rng.choice(["depthwise", "pointwise", "grouped", "grouped", "dense"])
    if kind == "depthwise":
        groups = int(rng.choice([1, 2, 3, 4, 8, 16, 24]))
        cin_g, cout_g = 1, int(rng.choice([1, 1, 2, 3]))
    else:
        groups = 1 if kind == "dense" else int(rng.choice([2, 3, 4, 8]))
        cin_g = int(rng.choice([2, 3, 4, 5, 8, 16]))
        cout_g = int(rng.choice([1, 2, 3, 4, 8, 16]))
    if kind == "pointwise":
        kernel, stride, dilation = (1, 1), (1, 1), (1, 1)
    else:
        kernel = tuple(int(k) for k in rng.choice([1, 2, 3, 3, 4, 5], size=2))
        stride = tuple(int(s) for s in rng.choice([1, 1, 2, 3], size=2))
        dilation = tuple(int(d) for d in rng.choice([1, 1, 1, 2, 3], size=2))
    ext = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    H, W = (e + int(rng.integers(0, 10)) for e in ext)
    pad_kind = rng.choice(["int", "pair", "asym", "valid", "same", "same_upper",
                           "same_lower"])
    if kind == "pointwise":
        pad_kind = rng.choice(["int0", "valid", "same", "same_upper"])
    if pad_kind == "same" and stride != (1, 1):
        pad_kind = "same_lower"
    padding = {"int0": 0, "valid": "valid", "same": "same", "same_upper": "same_upper",
               "same_lower": "same_lower"}.get(pad_kind)
    if pad_kind == "int":
        padding = int(rng.integers(0, 3))
    elif pad_kind == "pair":
        padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    elif pad_kind == "asym":
        padding = tuple((int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in range(2))
    case = CheckCase(N=int(rng.integers(1, 4)), C_in=groups * cin_g, C_out=groups * cout_g,
                     H=H, W=W, groups=groups, kernel=kernel, stride=stride, padding=padding,
                     dilation=dilation, dtype=str(rng.choice(["float32", "float32",
                                                              "float64"])),
                     bias=bool(rng.random() < 0.6))
    case.batched = bool(rng.random() < 0.9)
    if not case.batched:
        case.N = 1
    if rng.random() < 0.35:
        case.activation = ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))]
    case.residual = bool(rng.random() < 0.2)
    case.layout = "NHWC" if rng.random() < 0.15 else "NCHW"
    if rng.random() < 0.15:
        pads = resolve_padding(padding, (H, W), kernel, stride, dilation)
        # reflect needs pads < size; circular and replicate take anything up to the size
        if max(pads[:2]) < H and max(pads[2:]) < W:
            case.padding_mode = str(rng.choice(["reflect", "replicate", "circular"]))
    return case


def output_shape(case):
    """(N, C_out, OH, OW) from torch's output-size formula and the resolved pads."""
    t, b, l, r = resolve_padding(case.padding, (case.H, case.W), case.kernel, case.stride,
                                 case.dilation)
    (kh, kw), (sh, sw), (dh, dw) = case.kernel, case.stride, case.dilation
    return (case.N, case.C_out, (case.H + t + b - dh * (kh - 1) - 1) // sh + 1,
            (case.W + l + r - dw * (kw - 1) - 1) // sw + 1)


def run_case(torch, case, rng, rtol=None, atol=None):
    """-> (ok, max_abs_error, max_rel_error, rtol, atol, error_text)."""
    import gconv
    dtype = np.dtype(case.dtype)
    x = rng.standard_normal((case.N, case.C_in, case.H, case.W)).astype(dtype)
    fan_in = case.reduction_length
    w = (rng.uniform(-1, 1, (case.C_out, case.C_in // case.groups, *case.kernel))
         * (3.0 / math.sqrt(fan_in))).astype(dtype)
    b = rng.uniform(-1, 1, case.C_out).astype(dtype) if case.bias else None
    residual_nchw = None
    if case.residual:
        residual_nchw = rng.standard_normal(output_shape(case)).astype(dtype)
    try:
        ref = torch_reference(torch, x, w, b, case.stride, case.padding, case.dilation,
                              case.groups, activation=case.activation,
                              residual=residual_nchw, padding_mode=case.padding_mode)
        xi, ri = x, residual_nchw
        if case.layout == "NHWC":
            xi = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
            ri = None if ri is None else np.ascontiguousarray(ri.transpose(0, 2, 3, 1))
        if not case.batched:
            xi = xi[0]
            ri = None if ri is None else ri[0]
        y = gconv.conv2d(xi, w, b, case.stride, case.padding, case.dilation, case.groups,
                         activation=case.activation, residual=ri, layout=case.layout,
                         padding_mode=case.padding_mode)
        if y.dtype != dtype:
            return (False, math.inf, math.inf, rtol, atol,
                    f"output dtype {y.dtype}, expected {dtype}")
        if not case.batched:
            y = y[None]
        if case.layout == "NHWC":
            y = y.transpose(0, 3, 1, 2)
    except Exception as e:     # a valid configuration must run: report, don't stop
        return False, math.inf, math.inf, rtol, atol, f"{type(e).__name__}: {e}"
    ok, max_abs, max_rel, rtol_used, atol_used = compare(y, ref, dtype, case.reduction_length,
                                                         rtol, atol)
    return ok, max_abs, max_rel, rtol_used, atol_used, None


@dataclass
class CheckFailure:
    case: CheckCase
    max_abs_error: float
    max_rel_error: float
    rtol: float
    atol: float
    error: str = None          # the exception gconv raised, if it raised

    @property
    def descriptor(self):
        return str(self.case)

    def __str__(self):
        if self.error is not None:
            return f"{self.descriptor}: raised {self.error}"
        return (f"{self.descriptor}: max abs error {self.max_abs_error:.3g} "
                f"(atol {self.atol:.3g}), max rel error {self.max_rel_error:.3g} "
                f"(rtol {self.rtol:.3g})")


@dataclass
class CheckSummary:
    n_cases: int
    seed: int
    failures: list = field(default_factory=list)
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    seconds: float = 0.0
    torch_version: str = ""
    paths: dict = field(default_factory=dict)     # kernel path -> cases

    @property
    def ok(self):
        return not self.failures

    def __bool__(self):
        return self.ok

    def __str__(self):
        paths = ", ".join(f"{name} {n}" for name, n in sorted(self.paths.items()))
        head = (f"gconv check: {self.n_cases} random conv2d configurations against torch "
                f"{self.torch_version} (seed {self.seed}, {self.seconds:.1f} s; paths: {paths})")
        if self.ok:
            return (f"{head}\nall {self.n_cases} match: largest abs error "
                    f"{self.max_abs_error:.3g}, largest rel error {self.max_rel_error:.3g}")
        lines = [head, f"{len(self.failures)} of {self.n_cases} MISMATCH:"]
        lines += [f"  {f}" for f in self.failures]
        return "\n".join(lines)


def _path_of(case):
    from ._conv import select_implementation
    from ._validation import problem_from_shapes

    H, W = case.H, case.W
    if case.padding_mode != "zeros":        # gconv pads first, then convolves unpadded
        t, b, l, r = resolve_padding(case.padding, (H, W), case.kernel, case.stride,
                                     case.dilation)
        H, W, padding = H + t + b, W + l + r, 0
    else:
        padding = case.padding
    try:
        p = problem_from_shapes((case.N, case.C_in, H, W),
                                (case.C_out, case.C_in // case.groups, *case.kernel),
                                case.stride, padding, case.dilation, case.groups,
                                dtype=case.dtype)
        return select_implementation(p)[2].name
    except Exception:           # the case itself reports the error
        return "error"


def run_check(cases=50, seed=0, rtol=None, atol=None, progress=None):
    """Cross-check ``cases`` random conv2d configurations against torch; -> CheckSummary.

    rtol / atol: override the default tolerance (8 eps * sqrt(reduction length), the
    absolute part scaled by the output's magnitude). progress: called as progress(done,
    total) after each case.
    """
    torch = import_torch()
    cases = int(cases)
    if cases < 0:
        raise ValueError(f"cases must be >= 0, got {cases}")
    rng = np.random.default_rng(seed)
    summary = CheckSummary(n_cases=cases, seed=seed, torch_version=torch.__version__)
    start = time.perf_counter()
    for i in range(cases):
        case = random_case(rng)
        path = _path_of(case)
        summary.paths[path] = summary.paths.get(path, 0) + 1
        ok, max_abs, max_rel, r, a, error = run_case(torch, case, rng, rtol, atol)
        if not ok:
            summary.failures.append(CheckFailure(case, max_abs, max_rel, r, a, error))
        elif error is None:
            summary.max_abs_error = max(summary.max_abs_error, max_abs)
            summary.max_rel_error = max(summary.max_rel_error, max_rel)
        if progress is not None:
            progress(i + 1, cases)
    summary.seconds = time.perf_counter() - start
    return summary
