"""A small MobileNet-like torch model for ``gconv bench --model`` (the README's example and
the tests'):

    gconv bench --model bench/models/tiny_mobilenet.py:make --quick
    gconv bench --model bench.models.tiny_mobilenet:make --quick   (from the repository root)

On a 1x3x64x64 image it runs 11 convolutions of 9 distinct shapes: a stride-2 stem, two
depthwise-separable blocks (depthwise 3x3 + pointwise 1x1, the second strided), the same
block twice at 16x16 (its two shapes run twice each), a grouped 3x3 (4 groups) and a 1-D
branch over the feature map's columns, a grouped Conv1d (k 3, 4 groups).
"""
import torch
from torch import nn


def separable(c_in, c_out, stride=1):
    """Depthwise 3x3 + pointwise 1x1, each followed by batch norm and ReLU6."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in), nn.ReLU6(),
        nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU6())


class TinyMobileNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU6())                           # 64x64 -> 32x32
        self.blocks = nn.Sequential(
            separable(16, 32),
            separable(32, 64, stride=2),                                # 32x32 -> 16x16
            separable(64, 64),
            separable(64, 64))                                          # the same shapes
        self.grouped = nn.Conv2d(64, 64, 3, padding=1, groups=4)
        self.columns = nn.Conv1d(64, 32, 3, padding=1, groups=4)        # the 1-D branch
        self.head = nn.Linear(64 + 32, classes)

    def forward(self, x):
        x = torch.relu(self.grouped(self.blocks(self.stem(x))))
        seq = torch.relu(self.columns(x.mean(dim=2)))                   # (N, 64, W) -> (N, 32, W)
        return self.head(torch.cat([x.mean(dim=(2, 3)), seq.mean(dim=2)], dim=1))


def make():
    """(model, example input) for gconv bench --model."""
    torch.manual_seed(0)
    return TinyMobileNet(), torch.randn(1, 3, 64, 64)
