"""Running the bench layers (gconv/bench/peers.py): each library's runner computes the
layer, PeerThreads sets and restores thread counts, a missing peer is seen as missing."""
import sys

import numpy as np
import pytest

import gconv
from gconv._reference import conv2d_reference
from gconv.bench import peers
from gconv.bench.layers import BY_NAME, BenchLayer


def _reference_output(layer, inputs):
    x, w, b = inputs
    p, s, d = layer.padding, layer.stride, layer.dilation
    return conv2d_reference(x, w, b, (s, s), (p, p, p, p), (d, d), layer.groups)


@pytest.mark.parametrize("name", ["seed_g4", "mbv2_dw7", "deeplab_dw_dil2"])
def test_gconv_runner_computes_the_layer(name):
    layer = BY_NAME[name]
    inputs = layer.make_inputs()
    y = peers.gconv_runner(layer, inputs)()
    np.testing.assert_allclose(y, _reference_output(layer, inputs), rtol=1e-4, atol=1e-5)


def test_torch_runner_computes_the_layer():
    pytest.importorskip("torch")
    layer = BY_NAME["mbv2_dw56_s2"]
    inputs = layer.make_inputs()
    y = peers.torch_runner(layer, inputs)().numpy()
    np.testing.assert_allclose(y, _reference_output(layer, inputs), rtol=1e-4, atol=1e-5)


def test_onnxruntime_runner_computes_the_layer():
    # onnxruntime is an optional extra (gconv[onnx]): checked where it is installed
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    layer = BY_NAME["deeplab_dw_dil2"]      # dilation, padding and groups all pass
    inputs = layer.make_inputs()
    y = peers.onnxruntime_runner(layer, inputs, threads=1)()
    np.testing.assert_allclose(y, _reference_output(layer, inputs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["deeplab_dw_dil2", "dense_3x3"])   # grouped and not
def test_openvino_runner_computes_the_layer(name):
    # OpenVINO is an optional extra (gconv[openvino]): checked where it is installed
    pytest.importorskip("openvino")
    layer = BY_NAME[name]
    inputs = layer.make_inputs()
    y = peers.openvino_runner(layer, inputs, threads=1)()
    np.testing.assert_allclose(y, _reference_output(layer, inputs), rtol=1e-4, atol=1e-4)


def test_peer_threads_sets_and_restores_thread_counts():
    before = gconv.get_num_threads()
    with_torch = ["torch"] if peers.peer_available("torch") else []
    if with_torch:
        import torch
        torch_before = torch.get_num_threads()
    with peers.PeerThreads(3, with_torch):
        if gconv.openmp_enabled():
            assert gconv.get_num_threads() == 3
        if with_torch:
            assert torch.get_num_threads() == 3
    assert gconv.get_num_threads() == before
    if with_torch:
        assert torch.get_num_threads() == torch_before


def test_peer_available_sees_a_missing_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)      # as if torch were not installed
    assert not peers.peer_available("torch")


def test_make_runner_picks_the_library(monkeypatch):
    made = []
    for name in ("gconv", "torch", "onnxruntime", "openvino"):
        def factory(layer, inputs, threads=None, name=name):
            made.append((name, layer.name, threads))
            return name
        monkeypatch.setattr(peers, f"{name}_runner", factory)
    layer = BY_NAME["seed_g4"]
    for name in ("gconv", "torch", "onnxruntime", "openvino"):
        assert peers.make_runner(name, layer, None, 2) == name
    # gconv and torch follow PeerThreads; the pooled peers take threads per session
    assert made == [("gconv", "seed_g4", None), ("torch", "seed_g4", None),
                    ("onnxruntime", "seed_g4", 2), ("openvino", "seed_g4", 2)]
    with pytest.raises(ValueError, match="unknown library 'tensorflow'"):
        peers.make_runner("tensorflow", layer, None, 1)
    assert set(peers.POOLED_PEERS) < set(peers.PEERS) == set(peers.INSTALL_HINT)


# Layers beyond the catalogue's square ones (the sweep's, a model's): kernels, strides,
# paddings and dilations per axis, torch's 'same' with an even kernel (the odd pixel at the
# end), no bias.
ODD_LAYERS = [
    BenchLayer("rect_nobias", 2, 6, 9, 10, 12, (3, 1), (2, 1), (1, 0), 1, 3, "x",
               family="test", bias=False),
    BenchLayer("same_even", 1, 8, 9, 10, 8, (2, 4), 1, "same", (1, 2), 2, "x", family="test"),
    BenchLayer("dw_dil_pair", 1, 16, 20, 17, 32, (5, 3), (1, 2), (4, 1), (2, 1), 16, "x",
               family="test"),
]


def _reference_any(layer, inputs):
    x, w, b = inputs
    p = layer.problem()
    return conv2d_reference(x, w, b, p.stride, p.padding, p.dilation, layer.groups)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("library", ["gconv", *peers.PEERS])
@pytest.mark.parametrize("layer", ODD_LAYERS, ids=lambda layer: layer.name)
def test_every_runner_computes_layers_with_pairs_same_padding_and_no_bias(library, layer):
    if library != "gconv" and not peers.peer_available(library):
        pytest.skip(f"{library} is not installed")
    inputs = layer.make_inputs()
    y = peers.make_runner(library, layer, inputs, 1)()
    y = y.numpy() if hasattr(y, "numpy") else np.asarray(y)
    np.testing.assert_allclose(y, _reference_any(layer, inputs), rtol=1e-4, atol=1e-4)
