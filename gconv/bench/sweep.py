"""The bench's sweep (``gconv bench --sweep N --seed S``): N random layers drawn from named
families of real-network convolutions, to be timed like the catalogue's
(gconv/bench/layers.py) in gconv and the peers.

Each family is a function of a ``random.Random`` that returns the arguments of one layer
with realistic numbers: channel counts mostly multiples of 8 or 16 (some odd), planes
matched to the channels as networks do (few channels on large planes, many on small ones;
some planes odd-sized or not square), batch 1 mostly, up to 8. A drawn layer must be a valid
conv2d and cost at most MAX_MFLOP and MAX_MBYTES (input + output + weights): a too costly
draw first gives up batch, then is drawn again. So a 40-layer sweep at 1 and 2 threads
with every peer stays within minutes.

The families' shares are fixed per 40 layers (FAMILIES): ``draw(40, seed)`` holds every
family at least twice, whatever the seed; for other N each family gets its share rounded
down and the rest go to families drawn by weight. ``draw`` depends on (n, seed) alone.
"""
import random
from typing import Callable, NamedTuple

from .layers import BenchLayer, as_pair

# The caps on one drawn layer: FLOPs (2 x multiply-adds), and the bytes of its input,
# output and weights in float32.
MAX_MFLOP = 300.0
MAX_MBYTES = 64.0
PER = 40                                   # FAMILIES' weights are layers per PER layers

# Channel counts of real networks (MobileNet, EfficientNet, ResNet/ResNeXt, ShuffleNet,
# Inception, ConvNeXt, RegNet ...): multiples of 8 or 16.
CHANNELS = (8, 16, 24, 32, 40, 48, 64, 72, 80, 96, 112, 120, 128, 144, 160, 192, 240, 256,
            288, 320, 384, 480, 512, 576, 640, 672, 768, 960, 1024, 1152, 1280, 1536, 2048)
ODD_CHANNELS = 0.1                         # share of counts made odd (a pruned network's)
# (plane, fewest channels, most channels) of a network's stages: a layer of C channels sits
# on one of the planes whose range holds C.
STAGES = ((112, 8, 128), (56, 16, 384), (28, 32, 768), (14, 48, 1536), (7, 96, 4096))
MIN_PLANE, MAX_PLANE = 7, 224
BATCHES = (1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4, 4, 6, 8, 8)


# -- the numbers a family draws ------------------------------------------------------------

def _channels(rng, lo, hi):
    """A channel count in [lo, hi]: a common one, some of them made odd."""
    c = rng.choice([c for c in CHANNELS if lo <= c <= hi] or [lo])
    if c > 8 and rng.random() < ODD_CHANNELS:
        c -= rng.choice((1, 3, 5))
    return c


def _scaled(c, factor):
    """c x factor rounded to a multiple of 8 (at least 8), as expansions and projections."""
    return max(8, int(round(c * factor / 8)) * 8)


def _clamp_plane(n):
    return min(max(int(n), MIN_PLANE), MAX_PLANE)


def _plane(rng, base):
    """(H, W) around base: mostly base x base; some odd-sized (DeepLab's 33, 65; AlexNet's
    27), some not square (a 4:3 or 16:9 frame, a crop)."""
    r = rng.random()
    if r < 0.55:
        return base, base
    if r < 0.75:
        h = _clamp_plane(base + rng.choice((-1, 1)))
        return h, h
    other = _clamp_plane(base * rng.choice((0.5, 0.75, 4 / 3, 1.5, 16 / 9, 2.0)))
    return (base, other) if rng.random() < 0.5 else (other, base)


def _plane_for(rng, channels):
    """A plane for a layer of ``channels`` channels (STAGES)."""
    bases = [p for p, lo, hi in STAGES if lo <= channels <= hi]
    if not bases:
        bases = [STAGES[0][0] if channels < STAGES[0][1] else STAGES[-1][0]]
    return _plane(rng, rng.choice(bases))


def _same(k, d=1, rng=None, valid=0.0):
    """The 'same'-like padding of a kernel k at dilation d: d * (k // 2); 0 ('valid') with
    probability ``valid``."""
    if rng is not None and rng.random() < valid:
        return 0
    return d * (k // 2)


def _conv(C_in, C_out, plane, kernel, stride=1, padding=0, dilation=1, groups=1):
    H, W = plane
    return dict(C_in=C_in, C_out=C_out, H=H, W=W, kernel_size=kernel, stride=stride,
                padding=padding, dilation=dilation, groups=groups)


def _pair_or_int(a, b):
    return a if a == b else (a, b)


# -- the families ----------------------------------------------------------------------------

def depthwise(rng):
    """Depthwise k x k, k 3-11, stride 1-3 (MobileNet, EfficientNet, ConvNeXt)."""
    C = _channels(rng, 16, 1536)
    k = rng.choice((3, 3, 3, 5, 5, 7, 9, 11))
    return _conv(C, C, _plane_for(rng, C), k, rng.choice((1, 1, 1, 2, 2, 3)),
                 _same(k, rng=rng, valid=0.1), 1, C)


def depthwise_rect(rng):
    """Depthwise kh x kw, kh != kw, both 3-11; stride 1-2, per axis too."""
    C = _channels(rng, 16, 1024)
    kh, kw = rng.sample((3, 5, 7, 9, 11), 2)
    stride = rng.choice((1, 1, 2, (1, 2), (2, 1)))
    return _conv(C, C, _plane_for(rng, C), (kh, kw), stride, (kh // 2, kw // 2), 1, C)


def depthwise_dilated(rng):
    """Depthwise 3-7 at dilation 2-8, some with other dilations per axis (DeepLab's atrous
    blocks); stride 1, some 2."""
    C = _channels(rng, 32, 1024)
    k = rng.choice((3, 3, 3, 5, 7))
    most = 8 if k == 3 else 4
    dh = rng.randint(2, most)
    dw = dh if rng.random() < 0.8 else rng.randint(1, most)
    return _conv(C, C, _plane_for(rng, C), k, rng.choice((1, 1, 1, 1, 2)),
                 _pair_or_int(_same(k, dh), _same(k, dw)), _pair_or_int(dh, dw), C)


def depthwise_mult(rng):
    """Depthwise with depth multiplier 2-4 (C_out = m x C_in: Xception-style, separable
    stems), k 3-7, stride 1-2."""
    C = _channels(rng, 8, 384)
    m = rng.randint(2, 4)
    k = rng.choice((3, 3, 5, 7))
    return _conv(C, m * C, _plane_for(rng, m * C), k, rng.choice((1, 1, 2)), _same(k), 1, C)


def _grouped(rng, stride=1, dilation=1):
    """Grouped k x k: 2-64 groups of 1-64 input channels, as many outputs per group
    (ResNeXt, RegNet), some twice or half as many."""
    groups = rng.choice((2, 3, 4, 8, 8, 16, 32, 32, 64))
    per_group = rng.choice((1, 2, 3, 4, 4, 8, 8, 12, 16, 16, 24, 32, 48, 64))
    out_per_group = rng.choice((per_group,) * 4 + (2 * per_group, max(1, per_group // 2)))
    C_in, C_out = groups * per_group, groups * out_per_group
    k = rng.choice((3, 3, 3, 5, 7)) if dilation == 1 else rng.choice((3, 3, 5))
    return _conv(C_in, C_out, _plane_for(rng, max(C_in, C_out)), k, stride,
                 _same(k, dilation, rng, valid=0.1 if dilation == 1 else 0.0), dilation,
                 groups)


def grouped(rng):
    """Grouped k x k (k 3-7), stride 1."""
    return _grouped(rng)


def grouped_strided(rng):
    """Grouped k x k, stride 2-3 (a stage's first block)."""
    return _grouped(rng, stride=rng.choice((2, 2, 2, 3)))


def grouped_dilated(rng):
    """Grouped k x k at dilation 2-8 (dilated ResNeXt backbones)."""
    return _grouped(rng, dilation=rng.randint(2, 8))


def pointwise_grouped(rng):
    """Grouped 1x1, 2-16 groups (ShuffleNet, grouped bottlenecks)."""
    groups = rng.choice((2, 3, 4, 8, 8, 16))
    per_group = rng.choice((8, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128))
    out_per_group = rng.choice((per_group, per_group, 2 * per_group, max(1, per_group // 4)))
    C_in, C_out = groups * per_group, groups * out_per_group
    return _conv(C_in, C_out, _plane_for(rng, max(C_in, C_out)), 1, groups=groups)


def pointwise(rng):
    """Dense 1x1: expansions and projections (x 1/6 to x 6)."""
    C_in = _channels(rng, 16, 1024)
    C_out = _scaled(C_in, rng.choice((1 / 6, 1 / 4, 1 / 2, 1, 2, 4, 6)))
    return _conv(C_in, C_out, _plane_for(rng, max(C_in, C_out)), 1)


def pointwise_strided(rng):
    """1x1 at stride 2 (some 3): ResNet's downsampling shortcuts, some grouped."""
    C_in = _channels(rng, 16, 1024)
    groups = 1 if rng.random() < 0.75 else rng.choice((2, 4, 8))
    C_in -= C_in % groups
    C_out = groups * max(1, _scaled(C_in, rng.choice((1, 2, 2, 4))) // groups)
    return _conv(C_in, C_out, _plane_for(rng, C_in), 1, rng.choice((2, 2, 2, 3)), 0, 1,
                 groups)


def _factorised(rng, vertical):
    """k x 1 (vertical) or 1 x k, k 3-7 (Inception v3's factorised convolutions): dense
    mostly, some depthwise."""
    C_in = _channels(rng, 32, 768)
    C_out = C_in if rng.random() < 0.5 else _channels(rng, 32, 768)
    k = rng.choice((3, 5, 7, 7))
    groups = 1
    if rng.random() < 0.2:
        groups, C_out = C_in, C_in
    kernel, padding = ((k, 1), (k // 2, 0)) if vertical else ((1, k), (0, k // 2))
    stride = 1 if rng.random() < 0.85 else 2
    return _conv(C_in, C_out, _plane_for(rng, max(C_in, C_out)), kernel, stride, padding, 1,
                 groups)


def kx1(rng):
    """k x 1, k 3-7."""
    return _factorised(rng, vertical=True)


def onexk(rng):
    """1 x k, k 3-7."""
    return _factorised(rng, vertical=False)


def stem(rng):
    """A network's first layer: 1-4 input channels (grey, RGB, RGB-D/RGBA), k 3-7, stride 2,
    on the largest planes."""
    C_in = rng.choice((1, 2, 3, 3, 3, 3, 4))
    k = rng.choice((3, 3, 4, 5, 7, 7))
    C_out = rng.choice((8, 16, 24, 32, 32, 48, 64, 64))
    plane = _plane(rng, rng.choice((224, 224, 192, 160, 128, 112, 96, 64)))
    return _conv(C_in, C_out, plane, k, 2, 0 if rng.random() < 0.15 else (k - 1) // 2)


def dense3x3(rng):
    """Dense 3x3 (ResNet, VGG, U-Net), stride 1 (some 2), some at dilation 2."""
    C_in = _channels(rng, 8, 512)
    C_out = C_in if rng.random() < 0.6 else _scaled(C_in, rng.choice((0.5, 2)))
    d = 1 if rng.random() < 0.85 else 2
    return _conv(C_in, C_out, _plane_for(rng, max(C_in, C_out)), 3,
                 1 if rng.random() < 0.8 else 2, _same(3, d), d)


class Family(NamedTuple):
    share: int            # layers per PER drawn
    make: Callable        # random.Random -> the layer's conv arguments (_conv)
    text: str             # what it stands for, with its ranges


# Every share is >= 2, so draw(40, s) holds each family at least twice.
FAMILIES = {
    "depthwise": Family(4, depthwise, "depthwise k x k, k 3-11, stride 1-3"),
    "depthwise_rect": Family(2, depthwise_rect,
                             "depthwise kh x kw (3-11, not square), stride 1-2 per axis"),
    "depthwise_dilated": Family(3, depthwise_dilated,
                                "depthwise k 3-7 at dilation 2-8 (some per axis)"),
    "depthwise_mult": Family(3, depthwise_mult,
                             "depthwise with depth multiplier 2-4, k 3-7, stride 1-2"),
    "grouped": Family(4, grouped, "grouped k x k (3-7): 2-64 groups of 1-64 channels"),
    "grouped_strided": Family(3, grouped_strided, "grouped k x k at stride 2-3"),
    "grouped_dilated": Family(2, grouped_dilated, "grouped k x k at dilation 2-8"),
    "pointwise_grouped": Family(3, pointwise_grouped, "grouped 1x1, 2-16 groups"),
    "pointwise": Family(4, pointwise, "dense 1x1, expansion or projection"),
    "pointwise_strided": Family(2, pointwise_strided, "1x1 at stride 2-3, some grouped"),
    "kx1": Family(2, kx1, "k x 1, k 3-7, dense or depthwise"),
    "1xk": Family(2, onexk, "1 x k, k 3-7, dense or depthwise"),
    "stem": Family(2, stem, "first layer: 1-4 input channels, k 3-7, stride 2"),
    "dense3x3": Family(4, dense3x3, "dense 3x3, stride 1-2, some dilation 2"),
}
assert sum(f.share for f in FAMILIES.values()) == PER


# -- the draw ----------------------------------------------------------------------------

def layer_cost(layer):
    """(MFLOP, MB of input + output + weights in float32) of a layer; ValueError if it is no
    valid conv2d."""
    problem = layer.problem()
    n_values = (problem.N * problem.C_in * problem.H * problem.W
                + problem.N * problem.C_out * problem.OH * problem.OW
                + problem.C_out * problem.C_in_g * problem.KH * problem.KW + problem.C_out)
    return problem.flops / 1e6, 4 * n_values / 1e6


def fits(layer):
    """True when the layer is a valid conv2d within MAX_MFLOP and MAX_MBYTES whose dilated
    kernel is no larger than its plane (networks dilate on planes that hold the kernel)."""
    try:
        mflop, mbytes = layer_cost(layer)
    except ValueError:
        return False
    (kh, kw), (dh, dw) = layer.kernel_hw, as_pair(layer.dilation)
    return (mflop <= MAX_MFLOP and mbytes <= MAX_MBYTES
            and dh * (kh - 1) < layer.H and dw * (kw - 1) < layer.W)


def family_counts(n, rng):
    """{family: how many of n layers}: each family's share of n rounded down, the rest to
    distinct families drawn by weight."""
    counts = {name: n * f.share // PER for name, f in FAMILIES.items()}
    names = list(FAMILIES)
    for _ in range(n - sum(counts.values())):       # fewer than len(FAMILIES)
        i = rng.choices(range(len(names)), [FAMILIES[f].share for f in names])[0]
        counts[names.pop(i)] += 1
    return counts


def draw_layer(rng, family, name, max_tries=1000):
    """One layer of ``family`` (a FAMILIES name) called ``name``: drawn until it fits, a
    batch that makes it too costly halved first."""
    make, text = FAMILIES[family].make, f"sweep family {family}: {FAMILIES[family].text}"
    for _ in range(max_tries):
        args = make(rng)
        N = rng.choice(BATCHES)
        while True:
            layer = BenchLayer(name, N, description=text, family=family, **args)
            if fits(layer) or N == 1:
                break
            N //= 2
        if fits(layer):
            return layer
    raise RuntimeError(f"no {family} layer within the caps in {max_tries} draws")


def draw(n, seed=0):
    """n layers drawn from FAMILIES, named ``sweep{seed}-{i}-{family}`` (i from 1), in a
    random order of families; the same (n, seed) always gives the same layers."""
    if n < 1:
        raise ValueError(f"a sweep needs at least one layer, got {n}")
    rng = random.Random(seed)
    order = [f for f, count in family_counts(n, rng).items() for _ in range(count)]
    rng.shuffle(order)
    return [draw_layer(rng, family, f"sweep{seed}-{i}-{family}")
            for i, family in enumerate(order, 1)]
