"""The bench layers (gconv/bench/layers.py): shapes and FLOPs as the peers' published tables,
deterministic inputs, the selection by name."""
import numpy as np
import pytest

import gconv
from gconv.bench import layers

# The peers' table (shared/reference/peers-2026-11-21.md, copied here so the tests do not
# depend on shared/): name -> (N,Cin,H,W -> Cout, k, s, p, d, g as published, MFLOP).
PUBLISHED = {
    "seed_g4": ("2,16,10,10 -> 4, 1x1, 1, 0, 1, 4", 0.01),
    "mbv2_dw112": ("1,32,112,112 -> 32, 3x3, 1, 1, 1, 32", 7.23),
    "mbv2_dw56_s2": ("1,144,56,56 -> 144, 3x3, 2, 1, 1, 144", 2.03),
    "mbv2_dw14": ("1,384,14,14 -> 384, 3x3, 1, 1, 1, 384", 1.35),
    "mbv2_dw7": ("1,960,7,7 -> 960, 3x3, 1, 1, 1, 960", 0.85),
    "dw_mult2": ("1,32,56,56 -> 64, 3x3, 1, 1, 1, 32", 3.61),
    "effb0_dw5": ("1,240,28,28 -> 240, 5x5, 1, 2, 1, 240", 9.41),
    "convnext_dw7": ("1,96,56,56 -> 96, 7x7, 1, 3, 1, 96", 29.50),
    "deeplab_dw_dil2": ("1,256,33,33 -> 256, 3x3, 1, 2, 2, 256", 5.02),
    "mbv2_pw_project": ("1,144,56,56 -> 24, 1x1, 1, 0, 1, 1", 21.68),
    "mbv2_pw_expand": ("1,64,14,14 -> 384, 1x1, 1, 0, 1, 1", 9.63),
    "shufflenet_pw_g3": ("1,240,28,28 -> 240, 1x1, 1, 0, 1, 3", 30.11),
    "shufflenet_pw_g8": ("1,384,28,28 -> 384, 1x1, 1, 0, 1, 8", 28.90),
    "resnext_g32_56": ("1,128,56,56 -> 128, 3x3, 1, 1, 1, 32", 28.90),
    "resnext_g32_s2": ("1,256,56,56 -> 256, 3x3, 2, 1, 1, 32", 28.90),
    "resnext_g32_14": ("1,512,14,14 -> 512, 3x3, 1, 1, 1, 32", 28.90),
    "resnext_g32_7": ("1,1024,7,7 -> 1024, 3x3, 1, 1, 1, 32", 28.90),
    "regnet_g8": ("1,128,28,28 -> 128, 3x3, 1, 1, 1, 8", 28.90),
    "alexnet_g2": ("1,96,27,27 -> 256, 5x5, 1, 2, 1, 2", 447.90),
    "dense_3x3": ("1,64,56,56 -> 64, 3x3, 1, 1, 1, 1", 231.21),
    "dense_1x1": ("1,256,56,56 -> 64, 1x1, 1, 0, 1, 1", 102.76),
    "b8_mbv2_dw112": ("8,32,112,112 -> 32, 3x3, 1, 1, 1, 32", 57.80),
    "b8_resnext_g32_56": ("8,128,56,56 -> 128, 3x3, 1, 1, 1, 32", 231.21),
    "b8_dense_3x3": ("8,64,56,56 -> 64, 3x3, 1, 1, 1, 1", 1849.69),
}


def test_the_layers_are_the_published_ones_in_order():
    assert [layer.name for layer in layers.LAYERS] == list(PUBLISHED)


@pytest.mark.parametrize("layer", layers.LAYERS, ids=lambda layer: layer.name)
def test_layer_shape_matches_the_published_table(layer):
    shape, _ = PUBLISHED[layer.name]
    assert layer.shape_text == shape
    N, C, H, W = layer.input_shape
    k, g = layer.kernel_size, layer.groups
    assert layer.weight_shape == (layer.C_out, C // g, k, k)


@pytest.mark.parametrize("layer", layers.LAYERS, ids=lambda layer: layer.name)
def test_layer_flops_match_the_published_mflop(layer):
    _, mflop = PUBLISHED[layer.name]
    # published to 2 decimals: the exact figure is within half a unit of the last digit
    assert abs(layer.mflop - mflop) <= 0.005 + 1e-9
    # and the count is 2 x N x C_out x OH x OW x C_in/g x k x k, computed independently
    p, d, s, k = layer.padding, layer.dilation, layer.stride, layer.kernel_size
    OH = (layer.H + 2 * p - d * (k - 1) - 1) // s + 1
    OW = (layer.W + 2 * p - d * (k - 1) - 1) // s + 1
    assert layer.problem().output_shape == (layer.N, layer.C_out, OH, OW)
    assert layer.flops == 2 * layer.N * layer.C_out * OH * OW * (layer.C_in // layer.groups) * k * k


@pytest.mark.parametrize("layer", layers.LAYERS, ids=lambda layer: layer.name)
def test_layer_problem_and_kernel_path(layer):
    problem = layer.problem()
    assert isinstance(problem, gconv.ConvProblem)
    assert problem.has_bias and problem.dtype == np.float32
    assert problem.groups == layer.groups and problem.C_in == layer.C_in
    # the dispatch rules (gconv/_dispatch.py): one input channel per group -> depthwise;
    # 1x1, stride 1, no padding -> pointwise; everything else -> general
    if layer.C_in // layer.groups == 1:
        expected = "depthwise"
    elif layer.kernel_size == 1 and layer.stride == 1 and layer.padding == 0:
        expected = "pointwise"
    else:
        expected = "general"
    assert layer.algorithm() == expected
    assert len(layer.description) > 10


def test_make_inputs_is_deterministic_float32_with_bias():
    layer = layers.BY_NAME["resnext_g32_7"]
    x, w, b = layer.make_inputs()
    x2, w2, b2 = layer.make_inputs()
    for a, a2, shape in ((x, x2, layer.input_shape), (w, w2, layer.weight_shape),
                         (b, b2, (layer.C_out,))):
        assert a.dtype == np.float32 and a.shape == shape and a.flags.c_contiguous
        np.testing.assert_array_equal(a, a2)
    # torch's default init bound for the weights, inputs in [-1, 1)
    bound = 1 / np.sqrt(layer.C_in // layer.groups * layer.kernel_size ** 2)
    assert np.abs(w).max() <= bound and np.abs(x).max() <= 1
    assert x.std() > 0.5            # not a constant
    # another layer of the same input shape gets other data
    other = layers.BenchLayer("another", *(1, 1024, 7, 7, 1024, 3, 1, 1, 1, 32), "x")
    assert not np.array_equal(other.make_inputs()[0], x)


def test_select_layers():
    by_name = layers.select_layers("dense_3x3, seed_g4")
    assert [layer.name for layer in by_name] == ["seed_g4", "dense_3x3"]   # table order
    assert layers.select_layers(["mbv2_dw7"]) == [layers.BY_NAME["mbv2_dw7"]]
    assert layers.select_layers(None) == list(layers.LAYERS)
    assert layers.select_layers("") == list(layers.LAYERS)
    with pytest.raises(ValueError, match=r"unknown bench layer\(s\) resnet_nope.*dense_3x3"):
        layers.select_layers("dense_3x3,resnet_nope")


def test_a_layer_may_have_pairs_a_padding_string_and_no_bias():
    layer = layers.BenchLayer("r", 2, 6, 9, 10, 12, (3, 1), (2, 1), (1, 0), (1, 2), 3, "x",
                              family="test", bias=False)
    assert layer.shape_text == "2,6,9,10 -> 12, 3x1, 2x1, 1x0, 1x2, 3"
    assert layer.weight_shape == (12, 2, 3, 1) and layer.kernel_hw == (3, 1)
    assert layer.problem().output_shape == gconv.conv2d_output_shape(
        layer.input_shape, layer.weight_shape, **layer.conv_args)
    x, w, b = layer.make_inputs()
    assert b is None and np.abs(w).max() <= 1 / np.sqrt(2 * 3 * 1)
    assert layer.full_shape() == {
        "N": 2, "C_in": 6, "H": 9, "W": 10, "C_out": 12, "kernel_size": [3, 1],
        "stride": [2, 1], "padding": [1, 0], "pads": [1, 1, 0, 0], "dilation": [1, 2],
        "groups": 3, "bias": False}
    assert layer.report_fields() == {"family": "test", "full_shape": layer.full_shape()}
    same = layers.BenchLayer("s", 1, 4, 7, 7, 4, (2, 4), 1, "same", 1, 1, "x", family="t")
    assert same.shape_text == "1,4,7,7 -> 4, 2x4, 1, same, 1, 1"
    assert same.full_shape()["pads"] == [0, 1, 1, 2]      # torch: the odd pixel at the end
    # square pairs read as the catalogue's single numbers
    square = layers.BenchLayer("q", 1, 4, 7, 7, 4, (3, 3), (2, 2), (1, 1), (1, 1), 4, "x")
    assert square.shape_text == "1,4,7,7 -> 4, 3x3, 2, 1, 1, 4"


def test_catalogue_rows_keep_their_fields():
    assert all(layer.report_fields() == {} and layer.family == "" and layer.bias
               for layer in layers.LAYERS)
