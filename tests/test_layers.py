"""The bench layers (gconv/_layers.py): shapes and FLOPs as the peers' published tables,
deterministic inputs, and runners that compute the right thing."""
import os

import numpy as np
import pytest

import gconv
from gconv import _layers
from gconv._reference import conv2d_reference

# .ci/sanitize runs the suite under AddressSanitizer and sets GCONV_SANITIZE=1. OpenVINO cannot
# load there: its CPU plugin dlopens libtbbbind with RTLD_DEEPBIND, and the ASan runtime
# ends any process that does (google/sanitizers#611), so nothing of OpenVINO's can be tested.
OPENVINO_UNDER_ASAN = ("GCONV_SANITIZE=1: OpenVINO's CPU plugin dlopens libtbbbind with "
                       "RTLD_DEEPBIND, which the ASan runtime refuses (google/sanitizers#611)")
SANITIZE = os.environ.get("GCONV_SANITIZE") == "1"

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
    assert [layer.name for layer in _layers.LAYERS] == list(PUBLISHED)


@pytest.mark.parametrize("layer", _layers.LAYERS, ids=lambda layer: layer.name)
def test_layer_shape_matches_the_published_table(layer):
    shape, _ = PUBLISHED[layer.name]
    assert layer.shape_text == shape
    N, C, H, W = layer.input_shape
    k, g = layer.kernel_size, layer.groups
    assert layer.weight_shape == (layer.C_out, C // g, k, k)


@pytest.mark.parametrize("layer", _layers.LAYERS, ids=lambda layer: layer.name)
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


@pytest.mark.parametrize("layer", _layers.LAYERS, ids=lambda layer: layer.name)
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
    layer = _layers.BY_NAME["resnext_g32_7"]
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
    other = _layers.BenchLayer("another", *(1, 1024, 7, 7, 1024, 3, 1, 1, 1, 32), "x")
    assert not np.array_equal(other.make_inputs()[0], x)


def test_select_layers():
    by_name = _layers.select_layers("dense_3x3, seed_g4")
    assert [layer.name for layer in by_name] == ["seed_g4", "dense_3x3"]   # table order
    assert _layers.select_layers(["mbv2_dw7"]) == [_layers.BY_NAME["mbv2_dw7"]]
    assert _layers.select_layers(None) == list(_layers.LAYERS)
    assert _layers.select_layers("") == list(_layers.LAYERS)
    with pytest.raises(ValueError, match=r"unknown bench layer\(s\) resnet_nope.*dense_3x3"):
        _layers.select_layers("dense_3x3,resnet_nope")


def _reference_output(layer, inputs):
    x, w, b = inputs
    p, s, d = layer.padding, layer.stride, layer.dilation
    return conv2d_reference(x, w, b, (s, s), (p, p, p, p), (d, d), layer.groups)


@pytest.mark.parametrize("name", ["seed_g4", "mbv2_dw7", "deeplab_dw_dil2"])
def test_gconv_runner_computes_the_layer(name):
    layer = _layers.BY_NAME[name]
    inputs = layer.make_inputs()
    y = _layers.gconv_runner(layer, inputs)()
    np.testing.assert_allclose(y, _reference_output(layer, inputs), rtol=1e-4, atol=1e-5)


def test_torch_runner_computes_the_layer():
    pytest.importorskip("torch")
    layer = _layers.BY_NAME["mbv2_dw56_s2"]
    inputs = layer.make_inputs()
    y = _layers.torch_runner(layer, inputs)().numpy()
    np.testing.assert_allclose(y, _reference_output(layer, inputs), rtol=1e-4, atol=1e-5)


def test_onnxruntime_runner_computes_the_layer():
    # onnxruntime is an optional extra (gconv[onnx]): checked where it is installed
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    layer = _layers.BY_NAME["deeplab_dw_dil2"]      # dilation, padding and groups all pass
    inputs = layer.make_inputs()
    y = _layers.onnxruntime_runner(layer, inputs, threads=1)()
    np.testing.assert_allclose(y, _reference_output(layer, inputs), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(SANITIZE, reason=OPENVINO_UNDER_ASAN)
@pytest.mark.parametrize("name", ["deeplab_dw_dil2", "dense_3x3"])   # grouped and not
def test_openvino_runner_computes_the_layer(name):
    # OpenVINO is an optional extra (gconv[openvino]): checked where it is installed
    pytest.importorskip("openvino")
    layer = _layers.BY_NAME[name]
    inputs = layer.make_inputs()
    y = _layers.openvino_runner(layer, inputs, threads=1)()
    np.testing.assert_allclose(y, _reference_output(layer, inputs), rtol=1e-4, atol=1e-4)


def test_peer_threads_sets_and_restores_thread_counts():
    before = gconv.get_num_threads()
    peers = ["torch"] if _layers.peer_available("torch") else []
    if peers:
        import torch
        torch_before = torch.get_num_threads()
    with _layers.PeerThreads(3, peers):
        if gconv.openmp_enabled():
            assert gconv.get_num_threads() == 3
        if peers:
            assert torch.get_num_threads() == 3
    assert gconv.get_num_threads() == before
    if peers:
        assert torch.get_num_threads() == torch_before


def test_peer_available_sees_a_missing_module(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "torch", None)      # as if torch were not installed
    assert not _layers.peer_available("torch")
