"""Running a bench layer (gconv/bench/layers.py) in gconv and in the peer libraries: torch,
onnxruntime and OpenVINO, each imported only when its runner is made.

Each factory does all conversions once and returns a runner, a no-argument callable that
computes the layer's output, so a timer measures the call alone.
"""
import numpy as np

import gconv

from .. import _threads
from .layers import as_pair

PEERS = ("torch", "onnxruntime", "openvino")
# The peers the bench runs in a child process (gconv/bench/peer_process.py).
POOLED_PEERS = ("onnxruntime", "openvino")
INSTALL_HINT = {"torch": "pip install torch==2.13.0",
                "onnxruntime": "pip install onnxruntime onnx",
                "openvino": "pip install openvino"}


def make_runner(library, layer, inputs, threads):
    """A runner of ``layer`` in ``library`` ("gconv" or one of PEERS), in this process,
    with ``threads`` threads where the library takes them per session (onnxruntime,
    OpenVINO; gconv and torch follow PeerThreads). A whole network
    (network_bench.NetworkCase) makes its own runners."""
    if hasattr(layer, "network_runner"):
        return layer.network_runner(library, inputs, threads)
    if library == "gconv":
        return gconv_runner(layer, inputs)
    if library == "torch":
        return torch_runner(layer, inputs)
    if library == "onnxruntime":
        return onnxruntime_runner(layer, inputs, threads)
    if library == "openvino":
        return openvino_runner(layer, inputs, threads)
    raise ValueError(f"unknown library {library!r}: choose from gconv, {', '.join(PEERS)}")


def gconv_runner(layer, inputs):
    """A gconv.Conv2d holding the layer's weights, packed once on the first call, as an
    inference library keeps its layers (onnxruntime and OpenVINO likewise run with constant,
    pre-packed weights). The functional gconv.conv2d packs the weights on every call."""
    x, w, b = inputs
    args = layer.conv_args
    conv = gconv.Conv2d(w.shape[1] * args["groups"], w.shape[0], w.shape[2:], bias=b is not None,
                        dtype=w.dtype, **args)
    conv.weight = w
    if b is not None:
        conv.bias = b
    conv(x)
    return lambda: conv(x)


def torch_runner(layer, inputs):
    """torch.nn.functional.conv2d on tensors sharing the NumPy arrays' memory."""
    import torch
    x, w, b = (None if a is None else torch.from_numpy(a) for a in inputs)
    conv2d = torch.nn.functional.conv2d
    args = layer.conv_args

    return lambda: conv2d(x, w, b, **args)


def onnx_conv_model(layer, weight, bias):
    """A one-node ONNX Conv model whose weights are initializers (constants the runtime
    may pre-pack, as an inference library would). bias None: a Conv without one."""
    from onnx import TensorProto, helper, numpy_helper
    top, bottom, left, right = layer.problem().padding
    inputs, initializers = ["x", "w"], [numpy_helper.from_array(weight, "w")]
    if bias is not None:
        inputs.append("b")
        initializers.append(numpy_helper.from_array(bias, "b"))
    node = helper.make_node("Conv", inputs, ["y"], kernel_shape=list(layer.kernel_hw),
                            pads=[top, left, bottom, right],
                            strides=list(as_pair(layer.stride)),
                            dilations=list(as_pair(layer.dilation)), group=layer.groups)
    out_shape = list(layer.problem().output_shape)
    graph = helper.make_graph(
        [node], layer.name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(layer.input_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=initializers)
    # opset 17 / IR 8: old enough for any onnxruntime of the last few years
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def onnxruntime_runner(layer, inputs, threads):
    import onnxruntime as ort
    x, w, b = inputs
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    model = onnx_conv_model(layer, w, b)
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    feeds = {"x": x}
    return lambda: session.run(None, feeds)[0]


def openvino_runner(layer, inputs, threads):
    """The layer as a one-node OpenVINO model with constant weights on the CPU plugin, in
    fp32 (this CPU has bf16 instructions, which OpenVINO would otherwise use), one stream
    of `threads` threads. The input is shared with the NumPy array, not copied per call."""
    import openvino as ov
    import openvino.opset13 as ops
    x, w, b = inputs
    top, bottom, left, right = layer.problem().padding
    g = layer.groups
    param = ops.parameter(list(x.shape), np.float32, name="x")
    conv_args = dict(strides=list(as_pair(layer.stride)), pads_begin=[top, left],
                     pads_end=[bottom, right], dilations=list(as_pair(layer.dilation)))
    if g == 1:
        conv = ops.convolution(param, ops.constant(w), **conv_args)
    else:                                  # weights (G, C_out/G, C_in/G, kh, kw)
        wg = w.reshape(g, w.shape[0] // g, *w.shape[1:])
        conv = ops.group_convolution(param, ops.constant(wg), **conv_args)
    y = conv if b is None else ops.add(conv, ops.constant(b.reshape(1, -1, 1, 1)))
    return openvino_model_runner(ov.Core(), ov.Model([y], [param], layer.name), x, threads)


def openvino_model_runner(core, model, x, threads):
    """A runner of an OpenVINO model compiled for the CPU in float32, one stream tuned for
    latency on ``threads`` threads, its input ``x`` shared, not copied."""
    import openvino as ov
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(x, shared_memory=True))

    def run():
        request.infer()
        return request.get_output_tensor().data
    return run


def peer_available(name):
    """True when the peer library ``name`` (one of PEERS) can be imported."""
    import importlib.util
    modules = {"torch": ("torch",), "onnxruntime": ("onnxruntime", "onnx"),
               "openvino": ("openvino",)}[name]
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except (ImportError, ValueError):     # a module set to None in sys.modules
        return False


def peer_version(name):
    import importlib
    return importlib.import_module(name).__version__


class PeerThreads:
    """Context manager: run gconv and a peer with ``n`` threads, restoring both after.
    (onnxruntime takes its thread count per session instead.)"""

    def __init__(self, n, peers=()):
        self.n, self.peers = n, tuple(peers)

    def __enter__(self):
        self._gconv_saved = _threads._n_threads
        gconv.set_num_threads(self.n)
        if "torch" in self.peers:
            import torch
            self._torch_saved = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        gconv.set_num_threads(self._gconv_saved)
        if "torch" in self.peers:
            import torch
            torch.set_num_threads(self._torch_saved)
        return False
