"""The bench layers: real network layers as data, the one catalogue of ``bench/`` (the
pytest-benchmark suite, bench/dw_timing.py) and ``python -m gconv bench``.

Each layer is a forward fp32 NCHW conv2d with bias, with exactly the shapes of the peers'
tables in ``shared/reference/peers-2026-11-21.md`` (N,Cin,H,W -> Cout, k, s, p, d, g).
Names follow the network and block they come from (XNNPACK's and benchdnn's habit), so a
number in a table can be traced to a real model.

A layer also knows how to make its inputs (deterministic, seeded by its name); running it
in gconv and in the peer libraries is gconv/bench/peers.py's. BenchLayer serves beyond the
catalogue too: the sweep's random layers (gconv/bench/sweep.py) and a user's model's
convolutions (gconv/bench/model.py), with kernels, strides, paddings and dilations that may
differ between height and width.
"""
import zlib
from dataclasses import dataclass

import numpy as np

from .. import _dispatch
from .._validation import problem_from_shapes


def as_pair(value):
    """An int or a pair -> (a, b)."""
    return (value, value) if isinstance(value, int) else tuple(value)


def pair_text(value, sep="x"):
    """2 -> '2'; (2, 2) -> '2'; (1, 2) -> '1x2'; a padding string as it is."""
    if isinstance(value, str):
        return value
    a, b = as_pair(value)
    return str(a) if a == b else f"{a}{sep}{b}"


@dataclass(frozen=True)
class BenchLayer:
    """One forward fp32 NCHW conv2d. kernel_size, stride, padding and dilation are ints or
    (height, width) pairs; padding may also be one of conv2d's padding strings ('same',
    'valid', ...). ``family`` names where a drawn or recorded layer comes from (the sweep's
    families, gconv/bench/sweep.py; a user's model, gconv/bench/model.py): empty for the
    catalogue below. ``bias``: whether the layer adds one (the catalogue's all do)."""
    name: str
    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    kernel_size: object
    stride: object
    padding: object
    dilation: object
    groups: int
    description: str
    family: str = ""
    bias: bool = True

    # -- shapes ------------------------------------------------------------------------
    @property
    def input_shape(self):
        return (self.N, self.C_in, self.H, self.W)

    @property
    def kernel_hw(self):
        return as_pair(self.kernel_size)

    @property
    def weight_shape(self):
        return (self.C_out, self.C_in // self.groups, *self.kernel_hw)

    @property
    def conv_args(self):
        """Keyword arguments of conv2d (gconv's and torch's) besides the arrays."""
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    @property
    def shape_text(self):
        """The peers' table notation: 'N,Cin,H,W -> Cout, kxk, s, p, d, g'; a stride,
        padding or dilation that differs between height and width as 'hxw'."""
        kh, kw = self.kernel_hw
        return (f"{self.N},{self.C_in},{self.H},{self.W} -> {self.C_out}, {kh}x{kw}, "
                f"{pair_text(self.stride)}, {pair_text(self.padding)}, "
                f"{pair_text(self.dilation)}, {self.groups}")

    def full_shape(self):
        """Every number of the layer, for the bench's JSON: pairs as [height, width], the
        padding also resolved to [top, bottom, left, right]."""
        padding = self.padding if isinstance(self.padding, str) else list(as_pair(self.padding))
        try:
            pads = list(self.problem().padding)
        except ValueError:                   # a layer gconv refuses: its padding as given
            pads = None
        return {"N": self.N, "C_in": self.C_in, "H": self.H, "W": self.W,
                "C_out": self.C_out, "kernel_size": list(self.kernel_hw),
                "stride": list(as_pair(self.stride)), "padding": padding, "pads": pads,
                "dilation": list(as_pair(self.dilation)), "groups": self.groups,
                "bias": self.bias}

    def report_fields(self):
        """What a row of the bench's report adds for this layer: nothing for the catalogue
        (its rows keep their fields), the family and full shape for a drawn layer."""
        if not self.family:
            return {}
        return {"family": self.family, "full_shape": self.full_shape()}

    # -- problem -----------------------------------------------------------------------
    def problem(self, dtype=np.float32):
        """gconv's ConvProblem for this layer (through the façade's own checks)."""
        return problem_from_shapes(self.input_shape, self.weight_shape, self.stride,
                                   self.padding, self.dilation, self.groups, dtype=dtype,
                                   bias_shape=(self.C_out,) if self.bias else None)

    @property
    def flops(self):
        """Multiply-adds x 2 (bias not counted), as the peers' MFLOP column."""
        return self.problem().flops

    @property
    def mflop(self):
        return self.flops / 1e6

    def algorithm(self):
        """The kernel path gconv's 'auto' dispatch takes for this layer."""
        return _dispatch.select(self.problem()).name

    # -- data --------------------------------------------------------------------------
    def make_inputs(self, dtype=np.float32):
        """(x, weight, bias): C-contiguous arrays, the same for every run of this layer
        (bias None for a layer without one).

        x uniform in [-1, 1); weight and bias uniform in torch's default init bounds
        (+-1/sqrt(fan_in)), so outputs stay O(1) for every layer."""
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        kh, kw = self.kernel_hw
        fan_in = self.weight_shape[1] * kh * kw
        bound = 1.0 / np.sqrt(fan_in)
        x = rng.uniform(-1.0, 1.0, self.input_shape).astype(dtype)
        w = rng.uniform(-bound, bound, self.weight_shape).astype(dtype)
        b = rng.uniform(-bound, bound, self.C_out).astype(dtype)
        return x, w, b if self.bias else None


def _layer(name, shape, description):
    """shape: (N, C_in, H, W, C_out, k, s, p, d, g), in the peers' column order."""
    return BenchLayer(name, *shape, description=description)


LAYERS = (
    _layer("seed_g4", (2, 16, 10, 10, 4, 1, 1, 0, 1, 4),
           "the write-ups' worked example: 16 -> 4 channels, 1x1, groups 4 (overhead-bound)"),
    _layer("mbv2_dw112", (1, 32, 112, 112, 32, 3, 1, 1, 1, 32),
           "MobileNetV2 first bottleneck, depthwise 3x3 at 112x112"),
    _layer("mbv2_dw56_s2", (1, 144, 56, 56, 144, 3, 2, 1, 1, 144),
           "MobileNetV2 block 3 (expand 6), depthwise 3x3 stride 2, 56 -> 28"),
    _layer("mbv2_dw14", (1, 384, 14, 14, 384, 3, 1, 1, 1, 384),
           "MobileNetV2 14x14 stage (64 -> 384 expanded), depthwise 3x3"),
    _layer("mbv2_dw7", (1, 960, 7, 7, 960, 3, 1, 1, 1, 960),
           "MobileNetV2 last stage (160 -> 960 expanded), depthwise 3x3 at 7x7"),
    _layer("dw_mult2", (1, 32, 56, 56, 64, 3, 1, 1, 1, 32),
           "depthwise 3x3 with depth multiplier 2 (C_out = 2 x C_in), as Xception-style stems"),
    _layer("effb0_dw5", (1, 240, 28, 28, 240, 5, 1, 2, 1, 240),
           "EfficientNet-B0 MBConv6 stage 4, depthwise 5x5 at 28x28"),
    _layer("convnext_dw7", (1, 96, 56, 56, 96, 7, 1, 3, 1, 96),
           "ConvNeXt-T stage 1 block, depthwise 7x7 at 56x56"),
    _layer("deeplab_dw_dil2", (1, 256, 33, 33, 256, 3, 1, 2, 2, 256),
           "DeepLabV3 / MobileNet atrous block, depthwise 3x3 dilation 2 at 33x33"),
    _layer("mbv2_pw_project", (1, 144, 56, 56, 24, 1, 1, 0, 1, 1),
           "MobileNetV2 block 2, pointwise 1x1 projection 144 -> 24 at 56x56"),
    _layer("mbv2_pw_expand", (1, 64, 14, 14, 384, 1, 1, 0, 1, 1),
           "MobileNetV2 14x14 stage, pointwise 1x1 expansion 64 -> 384"),
    _layer("shufflenet_pw_g3", (1, 240, 28, 28, 240, 1, 1, 0, 1, 3),
           "ShuffleNet v1 (g=3) stage 2, grouped pointwise 1x1, groups 3"),
    _layer("shufflenet_pw_g8", (1, 384, 28, 28, 384, 1, 1, 0, 1, 8),
           "ShuffleNet v1 (g=8) stage 2, grouped pointwise 1x1, groups 8"),
    _layer("resnext_g32_56", (1, 128, 56, 56, 128, 3, 1, 1, 1, 32),
           "ResNeXt-50 32x4d conv2 stage, grouped 3x3 (4 channels per group) at 56x56"),
    _layer("resnext_g32_s2", (1, 256, 56, 56, 256, 3, 2, 1, 1, 32),
           "ResNeXt-50 32x4d conv3 first block, grouped 3x3 stride 2, 56 -> 28"),
    _layer("resnext_g32_14", (1, 512, 14, 14, 512, 3, 1, 1, 1, 32),
           "ResNeXt-50 32x4d conv4 stage, grouped 3x3 (16 channels per group) at 14x14"),
    _layer("resnext_g32_7", (1, 1024, 7, 7, 1024, 3, 1, 1, 1, 32),
           "ResNeXt-50 32x4d conv5 stage, grouped 3x3 (32 channels per group) at 7x7"),
    _layer("regnet_g8", (1, 128, 28, 28, 128, 3, 1, 1, 1, 8),
           "RegNet-style grouped 3x3, 16 channels per group, at 28x28"),
    _layer("alexnet_g2", (1, 96, 27, 27, 256, 5, 1, 2, 1, 2),
           "AlexNet conv2, 5x5 split over two GPUs in the original: groups 2"),
    _layer("dense_3x3", (1, 64, 56, 56, 64, 3, 1, 1, 1, 1),
           "ResNet-18/34 conv2 stage, dense 3x3 at 56x56 (compute-bound)"),
    _layer("dense_1x1", (1, 256, 56, 56, 64, 1, 1, 0, 1, 1),
           "ResNet-50 conv2 bottleneck reduce, dense 1x1 256 -> 64 at 56x56"),
    _layer("b8_mbv2_dw112", (8, 32, 112, 112, 32, 3, 1, 1, 1, 32),
           "mbv2_dw112 at batch 8"),
    _layer("b8_resnext_g32_56", (8, 128, 56, 56, 128, 3, 1, 1, 1, 32),
           "resnext_g32_56 at batch 8"),
    _layer("b8_dense_3x3", (8, 64, 56, 56, 64, 3, 1, 1, 1, 1),
           "dense_3x3 at batch 8"),
)

BY_NAME = {layer.name: layer for layer in LAYERS}


def select_layers(names=None):
    """The layers called ``names`` (a list or a comma-separated string), in the table's
    order; all of them for None or ''. Unknown names raise ValueError listing the known."""
    if names is None:
        return list(LAYERS)
    if isinstance(names, str):
        names = [n for n in (s.strip() for s in names.split(",")) if n]
    if not names:
        return list(LAYERS)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown bench layer(s) {', '.join(unknown)}; known layers: "
                         f"{', '.join(BY_NAME)}")
    wanted = set(names)
    return [layer for layer in LAYERS if layer.name in wanted]
