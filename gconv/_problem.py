"""ConvProblem: one grouped 2-D convolution, described once.

The façade builds it from validated arguments; the dispatcher, the kernels' planner, the
benchmarks and ``explain`` all read it. Its ``str()`` is the canonical descriptor (after
oneDNN's benchdnn), used in error messages, test ids and benchmark ids.
"""
from dataclasses import dataclass

import numpy as np


def conv_output_size(size, kernel, stride, dilation, pad_begin, pad_end):
    """torch's output size along one axis: floor((L + pads - d*(k-1) - 1) / s) + 1."""
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class ConvProblem:
    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    groups: int
    KH: int
    KW: int
    stride: tuple      # (SH, SW)
    padding: tuple     # (top, bottom, left, right), zeros
    dilation: tuple    # (DH, DW), 1-based as torch
    dtype: np.dtype
    has_bias: bool = False

    # -- derived sizes -------------------------------------------------------------------
    @property
    def C_in_g(self):
        return self.C_in // self.groups

    @property
    def C_out_g(self):
        return self.C_out // self.groups

    @property
    def OH(self):
        pt, pb, _, _ = self.padding
        return conv_output_size(self.H, self.KH, self.stride[0], self.dilation[0], pt, pb)

    @property
    def OW(self):
        _, _, pl, pr = self.padding
        return conv_output_size(self.W, self.KW, self.stride[1], self.dilation[1], pl, pr)

    @property
    def output_shape(self):
        return (self.N, self.C_out, self.OH, self.OW)

    @property
    def weight_shape(self):
        return (self.C_out, self.C_in_g, self.KH, self.KW)

    @property
    def K(self):
        """Reduction length per output element: C_in/groups * KH * KW."""
        return self.C_in_g * self.KH * self.KW

    @property
    def flops(self):
        """Multiply-adds counted as 2 FLOPs (bias and epilogue not counted)."""
        return 2 * self.N * self.C_out * self.OH * self.OW * self.K

    @property
    def is_depthwise(self):
        return self.C_in_g == 1

    @property
    def is_pointwise(self):
        return (self.KH, self.KW) == (1, 1) and self.stride == (1, 1) and not any(self.padding)

    def __str__(self):
        sh, sw = self.stride
        dh, dw = self.dilation
        pt, pb, pl, pr = self.padding
        pad = f"ph{pt}pw{pl}" if (pt, pl) == (pb, pr) else f"pt{pt}pb{pb}pl{pl}pr{pr}"
        return (f"mb{self.N}_g{self.groups}_ic{self.C_in}oc{self.C_out}_ih{self.H}iw{self.W}"
                f"_kh{self.KH}kw{self.KW}_sh{sh}sw{sw}_{pad}_dh{dh}dw{dw}_{np.dtype(self.dtype).name}")
