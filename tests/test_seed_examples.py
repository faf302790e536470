"""The worked example of the seed write-ups (../shared/seeds/000_*.txt, 003_*.txt):
a (2, 16, 10, 10) input whose channel c holds c + 1, convolved 16 -> 4 with 1x1 kernels at
groups 1, 2 and 4 with constant weights 1, 2 and 3 and zero bias."""
import numpy as np
import pytest

import gconv

# by hand: with groups g each output channel sums its 16/g input channels times the weight
#   g=1, w=1: 1 + ... + 16 = 136 everywhere                          -> mean 136
#   g=2, w=2: 2*(1+...+8) = 72 and 2*(9+...+16) = 200 (two channels each) -> mean 136
#   g=4, w=3: 3*10, 3*26, 3*42, 3*58 = 30, 78, 126, 174             -> mean 102
EXPECTED_MEAN = {1: 136, 2: 136, 4: 102}
EXPECTED_CHANNELS = {1: [136] * 4, 2: [72, 72, 200, 200], 4: [30, 78, 126, 174]}
WEIGHT_VALUE = {1: 1, 2: 2, 4: 3}


def seed_input(dtype=np.float32):
    x = np.empty((2, 16, 10, 10), dtype)
    for c in range(16):
        x[:, c] = (c % 16) + 1
    return x


def constant_weight(groups, dtype=np.float32):
    return np.full((4, 16 // groups, 1, 1), WEIGHT_VALUE[groups], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("algorithm", ["auto", "pointwise", "general", "reference"])
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_functional_means(groups, algorithm, dtype):
    y = gconv.conv2d(seed_input(dtype), constant_weight(groups, dtype), np.zeros(4, dtype),
                     groups=groups, algorithm=algorithm)
    assert y.shape == (2, 4, 10, 10)
    assert y.mean() == EXPECTED_MEAN[groups]
    for channel, value in enumerate(EXPECTED_CHANNELS[groups]):
        np.testing.assert_array_equal(y[:, channel], np.full((2, 10, 10), value))


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_layer_means(groups):
    layer = gconv.Conv2d(16, 4, kernel_size=1, groups=groups, rng=0)
    assert layer.weight.shape == (4, 16 // groups, 1, 1)
    assert layer.bias.shape == (4,)
    layer.weight = constant_weight(groups)
    layer.bias = np.zeros(4, np.float32)
    assert layer.weight.mean() == WEIGHT_VALUE[groups] and layer.bias.mean() == 0
    y = layer(seed_input())
    assert y.shape == (2, 4, 10, 10)
    assert y.mean() == EXPECTED_MEAN[groups]
    assert [y[:, c].mean() for c in range(4)] == EXPECTED_CHANNELS[groups]


@pytest.mark.parametrize("algorithm", ["auto", "pointwise", "general", "reference"])
def test_groups_4_output_sees_only_its_own_inputs(algorithm):
    """Output channel o of groups=4 reads input channels 4o..4o+3 and nothing else."""
    rng = np.random.default_rng(0)
    x = seed_input()
    w = rng.standard_normal((4, 4, 1, 1)).astype(np.float32)
    base = gconv.conv2d(x, w, groups=4, algorithm=algorithm)
    for o in range(4):
        own = slice(4 * o, 4 * o + 4)
        others = np.ones(16, bool)
        others[own] = False
        perturbed = x.copy()
        perturbed[:, others] += rng.standard_normal(perturbed[:, others].shape).astype(np.float32)
        y = gconv.conv2d(perturbed, w, groups=4, algorithm=algorithm)
        np.testing.assert_array_equal(y[:, o], base[:, o])
        mine = x.copy()
        mine[:, own] += 1
        y = gconv.conv2d(mine, w, groups=4, algorithm=algorithm)
        assert not np.array_equal(y[:, o], base[:, o])
        changed = [c for c in range(4) if not np.array_equal(y[:, c], base[:, c])]
        assert changed == [o]


def test_groups_4_equals_four_separate_convolutions():
    """groups=4 is four 4 -> 1 convolutions side by side, concatenated."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 16, 10, 10)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    grouped = gconv.conv2d(x, w, padding=1, groups=4)
    parts = [gconv.conv2d(x[:, 4 * g:4 * g + 4], w[g:g + 1], padding=1) for g in range(4)]
    np.testing.assert_allclose(grouped, np.concatenate(parts, axis=1), rtol=1e-6, atol=1e-6)
