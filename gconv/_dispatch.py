"""The ordered list of convolution implementations (after oneDNN's cpu_convolution_list).

Each implementation says why it declines a problem (``why_not`` returns a reason, or None
when it accepts). ``select`` walks AUTO_ORDER, most specific first; 'general' accepts every
problem, so every valid problem runs. A caller can force one by name (``algorithm=``); a
forced implementation that declines raises ValueError with its reason. 'reference' (the
NumPy oracle) runs only when asked for.
"""
import numpy as np

from . import _kernels
from ._reference import conv2d_reference


class Implementation:
    name = None
    kind = None            # the compiled kind that runs it (_kernels.KINDS); None: not compiled
    plan_flags = 0         # _kernels.PLAN_* bits: what this implementation tells the planner
    summary = ""

    def why_not(self, problem):
        """Why this implementation cannot run ``problem`` (None: it can)."""
        return None

    def why_not_auto(self, problem):
        """Why 'auto' passes over it for ``problem`` (None: auto takes it): why_not, or a
        problem it can run but another implementation runs faster."""
        return self.why_not(problem)

    def make_plan(self, problem, isa, n_threads):
        return _kernels.Plan(problem, self.kind, isa, n_threads, self.plan_flags)

    def prepare_weight(self, plan, weight):
        """Weights in the layout this implementation's kernel reads."""
        size = plan.packed_weight_size()
        if size is None:               # the kernel reads them as given
            return weight
        packed = np.empty(size, dtype=weight.dtype)
        plan.pack_weights(weight, packed)
        return packed

    def __repr__(self):
        return f"<gconv implementation {self.name!r}>"


class Depthwise(Implementation):
    name = "depthwise"
    kind = _kernels.KINDS["depthwise"]
    summary = "direct SIMD loops along the output width, one input channel per group"

    def why_not(self, p):
        if p.C_in_g != 1:
            return (f"depthwise needs one input channel per group (C_in / groups == 1), "
                    f"but C_in / groups = {p.C_in}/{p.groups} = {p.C_in_g}")
        return None

    # Fewer channels than this fill too few lanes of the depthwise kind's channel-vector
    # mode (lanes mode for any kernel takes >= VLEN/2: 8 on AVX-512)
    FEW_CHANNELS = 8

    def why_not_auto(self, p):
        reason = self.why_not(p)
        if reason is not None:
            return reason
        # Few channels with many outputs each (a stem of one or two input channels): the
        # general GEMM vectorises over the output channels, while the depthwise kind runs
        # one output channel at a time (or two, for its unrolled 3x3 kernels). Measured
        # (Zen 4): 1x224x224 -> 64, 4x4 s2: 849 -> 417 us; 8x1x224x224 -> 16, 5x5 s2
        # (unrolled, no channel pairs): 2245 -> 1217 us; 1x56x56 -> 64, 7x7: level. The
        # unrolled 3x3 kernels stay faster (3x3 s2 -> 32: 130 against 154 us).
        M = p.C_out_g
        if (p.groups < self.FEW_CHANNELS and M >= self.FEW_CHANNELS
                and not has_paired_dw_kernel(p)):
            return (f"{p.groups} channel(s) with {M} outputs each and no depthwise kernel "
                    f"for {p.KH}x{p.KW}, stride {p.stride}, dilation {p.dilation} that takes "
                    f"output channels in pairs: the general GEMM vectorises over the {M} "
                    f"output channels")
        return None


def has_paired_dw_kernel(p):
    """Whether the depthwise kind has an unrolled row kernel that takes a depth multiplier's
    output channels in pairs for p's kernel, stride and dilation: the 3x3 ones of its kernel
    table (_kernels.DW_KERNELS; 3x3 at dilation 2 in float32 only)."""
    if (p.KH, p.KW) != (3, 3) or p.stride[0] != p.stride[1] or p.dilation[0] != p.dilation[1]:
        return False
    for name, k, s, d in _kernels.DW_KERNELS[1:]:
        if (k, s, d) == (3, p.stride[0], p.dilation[0]):
            return d == 1 or np.dtype(p.dtype) == np.float32
    return False


class Pointwise(Implementation):
    name = "pointwise"
    kind = _kernels.KINDS["gemm"]
    plan_flags = _kernels.PLAN_POINTWISE     # B may be read in place
    summary = ("per (image, group) a GEMM W[g] x X[n, g] read straight from the input (small "
               "images: through a copy, for channel-vector tiles)")

    def why_not(self, p):
        # the one place this is decided: the planner reads it (PLAN_POINTWISE: B in place)
        if (p.KH, p.KW) != (1, 1):
            return f"pointwise needs a 1x1 kernel, got {p.KH}x{p.KW}"
        if p.stride != (1, 1):
            return f"pointwise needs stride 1, got stride={p.stride}"
        if any(p.padding):
            return f"pointwise needs no padding, got padding (top, bottom, left, right)={p.padding}"
        return None

    def make_plan(self, problem, isa, n_threads):
        reason = self.why_not(problem)
        if reason is not None:     # PLAN_POINTWISE makes the kernel read B in place
            raise ValueError(f"pointwise cannot plan {problem}: {reason}")
        return super().make_plan(problem, isa, n_threads)


class General(Implementation):
    name = "general"
    kind = _kernels.KINDS["gemm"]
    summary = ("implicit GEMM: per task the input rows it needs, zero-padded into phase planes, "
               "feed a register-blocked micro-kernel; no im2col")


class Reference(Implementation):
    name = "reference"
    summary = "plain NumPy, float64 accumulation: the oracle, never chosen by 'auto'"

    def make_plan(self, problem, isa, n_threads):
        return None

    def prepare_weight(self, plan, weight):
        return weight


DEPTHWISE, POINTWISE, GENERAL, REFERENCE = Depthwise(), Pointwise(), General(), Reference()
AUTO_ORDER = (DEPTHWISE, POINTWISE, GENERAL)
BY_NAME = {impl.name: impl for impl in (*AUTO_ORDER, REFERENCE)}
ALGORITHMS = ("auto", *BY_NAME)


def select(problem, algorithm="auto"):
    """The implementation that runs ``problem``; ValueError if a forced one declines."""
    if algorithm == "auto":
        for impl in AUTO_ORDER:
            if impl.why_not_auto(problem) is None:
                return impl
        raise AssertionError("'general' accepts every problem")  # pragma: no cover
    impl = BY_NAME.get(algorithm) if isinstance(algorithm, str) else None
    if impl is None:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    reason = impl.why_not(problem)
    if reason is not None:
        raise ValueError(f"algorithm={algorithm!r} cannot run {problem}: {reason}")
    return impl


def decisions(problem):
    """[(name, reason or None)] for every implementation, in AUTO_ORDER then reference: why
    'auto' passes over each."""
    return [(impl.name, impl.why_not_auto(problem)) for impl in (*AUTO_ORDER, REFERENCE)]


def run_reference(problem, x, w, b):
    return conv2d_reference(x, w, b, problem.stride, problem.padding, problem.dilation,
                            problem.groups)
