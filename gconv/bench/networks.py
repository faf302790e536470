"""Whole networks for ``gconv bench --networks``, built here with torch.nn (no downloads,
no torchvision), with random weights and non-trivial BatchNorm statistics.

    model = build("mobilenet_v2")          # eval mode, seeded, BatchNorm calibrated
    x = example_input("mobilenet_v2", batch=1)

The architectures follow the published ones (torchvision's layouts where it has them);
the 1-D model is a QuartzNet-style TCN: grouped / depthwise conv1d blocks with BatchNorm,
ReLU and residual adds. Needs torch: imported only by the bench and the tests.
"""
import torch
import torch.nn.functional as F
from torch import nn


def _divisible(v, divisor=8, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNAct(nn.Sequential):
    def __init__(self, cin, cout, k=3, stride=1, groups=1, act=nn.ReLU6, dim=2):
        conv = nn.Conv2d if dim == 2 else nn.Conv1d
        bn = nn.BatchNorm2d if dim == 2 else nn.BatchNorm1d
        layers = [conv(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                  bn(cout)]
        if act is not None:
            layers.append(act(inplace=True) if act in (nn.ReLU, nn.ReLU6, nn.SiLU,
                                                       nn.Hardswish) else act())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, cin, squeeze, act=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.fc1 = nn.Conv2d(cin, squeeze, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeeze, cin, 1)
        self.gate = gate()

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


# -- MobileNetV2 -------------------------------------------------------------------------
class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, 1))
        layers += [ConvBNAct(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        cin = 32
        features = [ConvBNAct(3, cin, 3, 2)]
        for t, c, n, s in settings:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(ConvBNAct(cin, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


# -- MobileNetV3-Large -------------------------------------------------------------------
class MBv3Block(nn.Module):
    def __init__(self, cin, k, exp, cout, se, act, stride):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers = []
        if exp != cin:
            layers.append(ConvBNAct(cin, exp, 1, act=act))
        layers.append(ConvBNAct(exp, exp, k, stride, groups=exp, act=act))
        if se:
            layers.append(SqueezeExcite(exp, _divisible(exp // 4), nn.ReLU, nn.Hardsigmoid))
        layers.append(ConvBNAct(exp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return y + x if self.use_res else y


class MobileNetV3Large(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        RE, HS = nn.ReLU, nn.Hardswish
        cfg = [(16, 3, 16, 16, False, RE, 1), (16, 3, 64, 24, False, RE, 2),
               (24, 3, 72, 24, False, RE, 1), (24, 5, 72, 40, True, RE, 2),
               (40, 5, 120, 40, True, RE, 1), (40, 5, 120, 40, True, RE, 1),
               (40, 3, 240, 80, False, HS, 2), (80, 3, 200, 80, False, HS, 1),
               (80, 3, 184, 80, False, HS, 1), (80, 3, 184, 80, False, HS, 1),
               (80, 3, 480, 112, True, HS, 1), (112, 3, 672, 112, True, HS, 1),
               (112, 5, 672, 160, True, HS, 2), (160, 5, 960, 160, True, HS, 1),
               (160, 5, 960, 160, True, HS, 1)]
        layers = [ConvBNAct(3, 16, 3, 2, act=HS)]
        layers += [MBv3Block(*c) for c in cfg]
        layers.append(ConvBNAct(160, 960, 1, act=HS))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(960, 1280), nn.Hardswish(inplace=True),
                                        nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


# -- EfficientNet-B0 ---------------------------------------------------------------------
class MBConv(nn.Module):
    def __init__(self, cin, cout, k, stride, expand):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        exp = cin * expand
        layers = []
        if expand != 1:
            layers.append(ConvBNAct(cin, exp, 1, act=nn.SiLU))
        layers += [ConvBNAct(exp, exp, k, stride, groups=exp, act=nn.SiLU),
                   SqueezeExcite(exp, max(1, cin // 4), nn.SiLU, nn.Sigmoid),
                   ConvBNAct(exp, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return y + x if self.use_res else y      # stochastic depth is the identity in eval


class EfficientNetB0(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        cfg = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
               (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
               (6, 3, 1, 192, 320, 1)]
        layers = [ConvBNAct(3, 32, 3, 2, act=nn.SiLU)]
        for expand, k, stride, cin, cout, n in cfg:
            for i in range(n):
                layers.append(MBConv(cin if i == 0 else cout, cout, k,
                                     stride if i == 0 else 1, expand))
        layers.append(ConvBNAct(320, 1280, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


# -- ResNeXt-50 32x4d --------------------------------------------------------------------
class Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride, groups, base_width, downsample):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNeXt50(nn.Module):
    def __init__(self, num_classes=1000, groups=32, width_per_group=4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        stages = []
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            layers = []
            for i in range(blocks):
                s = stride if i == 0 else 1
                down = None
                if i == 0 and (s != 1 or cin != planes * 4):
                    down = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, s, bias=False),
                                         nn.BatchNorm2d(planes * 4))
                layers.append(Bottleneck(cin, planes, s, groups, width_per_group, down))
                cin = planes * 4
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# -- RegNetY-400MF -----------------------------------------------------------------------
class RegNetYBlock(nn.Module):
    def __init__(self, cin, cout, stride, group_width, se_ratio=0.25):
        super().__init__()
        groups = cout // group_width
        self.a = ConvBNAct(cin, cout, 1, act=nn.ReLU)
        self.b = ConvBNAct(cout, cout, 3, stride, groups=groups, act=nn.ReLU)
        self.se = SqueezeExcite(cout, int(round(se_ratio * cin)), nn.ReLU, nn.Sigmoid)
        self.c = ConvBNAct(cout, cout, 1, act=None)
        self.proj = (ConvBNAct(cin, cout, 1, stride, act=None)
                     if stride != 1 or cin != cout else None)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        return self.relu(shortcut + self.c(self.se(self.b(self.a(x)))))


class RegNetY400MF(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.stem = ConvBNAct(3, 32, 3, 2, act=nn.ReLU)
        cin, blocks = 32, []
        for depth, width in ((1, 48), (3, 104), (6, 208), (6, 440)):
            for i in range(depth):
                blocks.append(RegNetYBlock(cin, width, 2 if i == 0 else 1, 8))
                cin = width
        self.trunk = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.trunk(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# -- ConvNeXt-Tiny -----------------------------------------------------------------------
class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim, layer_scale=1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pw2(self.act(self.pw1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


class ConvNeXtTiny(nn.Module):
    def __init__(self, num_classes=1000, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))]
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            if i:
                layers.append(nn.Sequential(LayerNorm2d(dims[i - 1], eps=1e-6),
                                            nn.Conv2d(dims[i - 1], dim, 2, 2)))
            layers.append(nn.Sequential(*[ConvNeXtBlock(dim) for _ in range(depth)]))
        self.features = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.head(self.norm(x))


# -- ShuffleNetV2 1.0x -------------------------------------------------------------------
def channel_shuffle(x, groups):
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        branch = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(ConvBNAct(cin, cin, 3, stride, groups=cin, act=None),
                                         ConvBNAct(cin, branch, 1, act=nn.ReLU))
        else:
            self.branch1 = nn.Identity()
        c2 = cin if stride > 1 else branch
        self.branch2 = nn.Sequential(ConvBNAct(c2, branch, 1, act=nn.ReLU),
                                     ConvBNAct(branch, branch, 3, stride, groups=branch,
                                               act=None),
                                     ConvBNAct(branch, branch, 1, act=nn.ReLU))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, num_classes=1000, channels=(24, 116, 232, 464, 1024)):
        super().__init__()
        self.conv1 = ConvBNAct(3, channels[0], 3, 2, act=nn.ReLU)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stages = channels[0], []
        for repeats, cout in zip((4, 8, 4), channels[1:4]):
            units = [ShuffleUnit(cin, cout, 2)] + [ShuffleUnit(cout, cout, 1)
                                                   for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.conv5 = ConvBNAct(cin, channels[4], 1, act=nn.ReLU)
        self.fc = nn.Linear(channels[4], num_classes)

    def forward(self, x):
        x = self.conv5(self.stages(self.maxpool(self.conv1(x))))
        return self.fc(x.mean([2, 3]))


# -- a 1-D model: a QuartzNet-style TCN with grouped conv1d ------------------------------
class TCNBlock(nn.Module):
    def __init__(self, cin, cout, k, repeats=3, groups=4):
        super().__init__()
        layers = []
        c = cin
        for r in range(repeats):
            layers += [nn.Conv1d(c, c, k, padding=k // 2, groups=c, bias=False),
                       nn.Conv1d(c, cout, 1, groups=groups, bias=False),
                       nn.BatchNorm1d(cout)]
            if r < repeats - 1:
                layers.append(nn.ReLU(inplace=True))
            c = cout
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv1d(cin, cout, 1, groups=groups, bias=False),
                                      nn.BatchNorm1d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class TCN1d(nn.Module):
    def __init__(self, cin=64, num_classes=29):
        super().__init__()
        self.prologue = nn.Sequential(nn.Conv1d(cin, 256, 33, 2, 16, groups=cin, bias=False),
                                      nn.Conv1d(256, 256, 1, groups=4, bias=False),
                                      nn.BatchNorm1d(256), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(TCNBlock(256, 256, 33), TCNBlock(256, 256, 39),
                                    TCNBlock(256, 512, 51), TCNBlock(512, 512, 63),
                                    TCNBlock(512, 512, 75))
        self.epilogue = nn.Sequential(
            nn.Conv1d(512, 512, 87, padding=86, dilation=2, groups=512, bias=False),
            nn.Conv1d(512, 1024, 1, bias=False), nn.BatchNorm1d(1024), nn.ReLU(inplace=True),
            nn.Conv1d(1024, num_classes, 1))

    def forward(self, x):
        return self.epilogue(self.blocks(self.prologue(x)))


# -- the catalogue -----------------------------------------------------------------------
# name: (class, input shape without the batch, the smaller input the tests use)
NETWORKS = {
    "mobilenet_v2": (MobileNetV2, (3, 224, 224), (3, 64, 64)),
    "mobilenet_v3_large": (MobileNetV3Large, (3, 224, 224), (3, 64, 64)),
    "efficientnet_b0": (EfficientNetB0, (3, 224, 224), (3, 64, 64)),
    "resnext50_32x4d": (ResNeXt50, (3, 224, 224), (3, 64, 64)),
    "regnet_y_400mf": (RegNetY400MF, (3, 224, 224), (3, 64, 64)),
    "convnext_tiny": (ConvNeXtTiny, (3, 224, 224), (3, 64, 64)),
    "shufflenet_v2": (ShuffleNetV2, (3, 224, 224), (3, 64, 64)),
    "tcn1d": (TCN1d, (64, 1024), (64, 128)),
}


def input_shape(name, batch=1, small=False):
    _, shape, small_shape = NETWORKS[name]
    return (batch,) + (small_shape if small else shape)


def example_input(name, batch=1, small=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(input_shape(name, batch, small), generator=g)


def build(name, seed=0):
    """The network ``name`` in eval mode: seeded random weights (torch's init), BatchNorm
    statistics measured on random inputs (so they normalise) then perturbed, and random
    BatchNorm / LayerNorm affine parameters."""
    if name not in NETWORKS:
        raise KeyError(f"unknown network {name!r}; known: {', '.join(NETWORKS)}")
    torch.manual_seed(seed)
    model = NETWORKS[name][0]()
    g = torch.Generator().manual_seed(seed + 1)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    # calibrate: one pass in training mode on a small random batch sets running stats to
    # the batch's (momentum 1), so activations stay in a sane range through the depth
    if norms:
        saved = [m.momentum for m in norms]
        for m in norms:
            m.momentum = 1.0
        model.train()
        with torch.no_grad():
            model(example_input(name, batch=2, small=True, seed=seed + 2))
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)):
                if getattr(m, "weight", None) is not None:
                    m.weight.copy_(torch.empty_like(m.weight).uniform_(0.5, 1.5, generator=g))
                    m.bias.copy_(torch.empty_like(m.bias).uniform_(-0.2, 0.2, generator=g))
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.running_mean.mul_(torch.empty_like(m.running_mean)
                                        .uniform_(0.9, 1.1, generator=g))
                    m.running_var.mul_(torch.empty_like(m.running_var)
                                       .uniform_(0.8, 1.25, generator=g))
            if isinstance(m, ConvNeXtBlock):       # a layer scale that lets the block act
                m.gamma.copy_(torch.empty_like(m.gamma).uniform_(0.05, 0.2, generator=g))
    return model.eval()


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())

