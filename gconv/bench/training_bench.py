"""``gconv bench --training``: the two other products of a convolution (issue 18) beside
torch, and one training step.

Rows (TRAINING_CASES, named after the layers they come from):
- the input gradient and the weight gradient of a forward convolution, gconv.grad against
  the kernel torch's autograd runs (aten.convolution_backward with one output asked for);
- transposed convolutions, a gconv.ConvTranspose1d/2d layer (weights packed once, as the
  forward bench keeps a Conv2d) against torch.nn.functional.conv_transpose1d/2d, and
  onnxruntime's ConvTranspose (a one-node model, in its child process) where it runs;
- a training step (forward, backward, SGD with momentum) of the networks bench's
  MobileNetV2 at batch 16 on 96x96 inputs: torch alone against torch with
  gconv.torch.convert, the two models starting from the same weights; the gradients of
  one step (in float64, with the same dropout masks) are compared before timing.

Every output is checked against torch's (GRAD_RTOL of its largest magnitude). The
libraries are interleaved within each round (gconv/bench/timing.py); medians are reported.
"""
import copy
import dataclasses

import numpy as np

import gconv

from . import peers as _peers
from .ms_rows import (aligned, check_against_torch, ms_report, onnxruntime_session_runner,
                      ratio_plot, row_notes, time_row)
from .peer_process import peer_processes
from .report import geometric_mean
from .timing import mode_settings

# |gconv - torch| <= GRAD_RTOL * max |torch|: float32 sums over up to batch x pixels terms
GRAD_RTOL = 1e-4
# the training step's float64 gradients, after a whole network's backward (a wrong
# gradient is off by O(1); batch norm over few samples amplifies float64 rounding)
STEP_RTOL = 1e-6
# the training step's batch and input side (the tests make it small)
STEP_SHAPE = (16, 96)
MODES = {
    "quick": dict(rounds=3, min_sample_s=0.05, budget_s=2.0),
    "full": dict(rounds=9, min_sample_s=0.3, budget_s=15.0),
}


@dataclasses.dataclass(frozen=True)
class GradCase:
    """One row. op: "input_grad" / "weight_grad" of the forward convolution of an input
    x_shape (N, C_in, *spatial) with a weight weight_shape (C_out, C_in/groups, *kernel);
    or "transpose": a transposed convolution of an input x_shape with a weight weight_shape
    (C_in, C_out/groups, *kernel), torch's layouts. family: depthwise, grouped or dense
    (the issue's geometric-mean target is over the first two)."""
    name: str
    op: str
    x_shape: tuple
    weight_shape: tuple
    stride: int = 1
    padding: int = 0
    groups: int = 1
    dilation: int = 1
    output_padding: int = 0
    family: str = "grouped"
    source: str = ""

    @property
    def dims(self):
        return len(self.x_shape) - 2

    def forward_output_shape(self):
        N, _, *spatial = self.x_shape
        C_out, _, *kernel = self.weight_shape
        return (N, C_out) + tuple(
            (L + 2 * self.padding - self.dilation * (k - 1) - 1) // self.stride + 1
            for L, k in zip(spatial, kernel))

    def arrays(self, seed=0):
        """Float32 inputs: (x, w, grad_output) for the gradients, (x, w) for transpose."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.x_shape, dtype=np.float32)
        w = rng.standard_normal(self.weight_shape, dtype=np.float32)
        w *= np.float32(1 / np.sqrt(np.prod(self.weight_shape[1:])))
        if self.op == "transpose":
            return x, w
        gy = rng.standard_normal(self.forward_output_shape(), dtype=np.float32)
        return x, w, gy

    def network_runner(self, library, inputs, threads):
        """onnxruntime's ConvTranspose, in the peer's child process (peers.make_runner)."""
        if library != "onnxruntime" or self.op != "transpose":
            raise ValueError(f"{self.name}: no {library} runner")
        from onnx import TensorProto, helper, numpy_helper
        x, w = inputs
        y_shape = [x.shape[0], w.shape[1] * self.groups] + [
            (L - 1) * self.stride - 2 * self.padding + self.dilation * (k - 1)
            + self.output_padding + 1 for L, k in zip(x.shape[2:], w.shape[2:])]
        d = self.dims
        node = helper.make_node(
            "ConvTranspose", ["x", "w"], ["y"], kernel_shape=list(w.shape[2:]),
            strides=[self.stride] * d, pads=[self.padding] * (2 * d),
            dilations=[self.dilation] * d, output_padding=[self.output_padding] * d,
            group=self.groups)
        graph = helper.make_graph(
            [node], self.name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
            initializer=[numpy_helper.from_array(w, "w")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  ir_version=8)
        return onnxruntime_session_runner(model.SerializeToString(), {"x": x}, threads)


def _dw(name, N, C, HW, k, stride=1, source=""):
    pad = (k - 1) // 2
    return [GradCase(f"{name}_{op[0]}grad", op, (N, C, HW, HW), (C, 1, k, k), stride,
                     pad, C, family="depthwise", source=source)
            for op in ("input_grad", "weight_grad")]


def _grouped(name, N, C, C_out, HW, k, groups, stride=1, source=""):
    pad = (k - 1) // 2
    return [GradCase(f"{name}_{op[0]}grad", op, (N, C, HW, HW), (C_out, C // groups, k, k),
                     stride, pad, groups, source=source)
            for op in ("input_grad", "weight_grad")]


TRAINING_CASES = {c.name: c for c in [
    *_dw("mbv2_dw3_56", 16, 144, 56, 3, source="MobileNetV2 block 3, batch 16"),
    *_dw("mbv2_dw3_s2_112", 8, 96, 112, 3, stride=2, source="MobileNetV2 block 2 (stride 2)"),
    *_dw("mbv2_dw3_14", 32, 576, 14, 3, source="MobileNetV2 block 13, batch 32"),
    *_dw("convnext_dw7_56", 8, 96, 56, 7, source="ConvNeXt-T stage 1 (7x7)"),
    *_grouped("resnext_g32_56", 8, 128, 128, 56, 3, 32, source="ResNeXt-50 stage 1"),
    *_grouped("resnext_g32_28", 8, 256, 256, 28, 3, 32, source="ResNeXt-50 stage 2"),
    GradCase("convT1d_dw512", "transpose", (8, 512, 1024), (512, 1, 4), 2, 1, 512,
             family="depthwise", source="ConvTranspose1d(512, 512, 4, 2, 1, groups=512): "
             "pytorch/pytorch#47341"),
    GradCase("decoder_convT2d_g8", "transpose", (8, 128, 28, 28), (128, 16, 4, 4), 2, 1, 8,
             source="a decoder's 2x upsampling, 8 groups of 16"),
    GradCase("decoder_convT2d_dw", "transpose", (8, 128, 28, 28), (128, 1, 4, 4), 2, 1, 128,
             family="depthwise", source="a decoder's depthwise 2x upsampling"),
    GradCase("vocoder_convT1d_s8", "transpose", (4, 512, 200), (512, 256, 16), 8, 4, 1,
             family="dense", source="HiFi-GAN's first upsampling (x8)"),
    GradCase("istft_convT1d", "transpose", (1, 1026, 400), (1026, 1, 1024), 256, 0, 1,
             family="dense", source="an ISTFT as overlap-add: 513 bins x re/im in, one "
             "channel out, kernel 1024, hop 256"),
]}


def _tensors(arrays):
    import torch
    return [torch.from_numpy(a) for a in arrays]


def _torch_transpose(case):
    import torch.nn.functional as F
    f = F.conv_transpose1d if case.dims == 1 else F.conv_transpose2d

    def run(x, w):
        return f(x, w, None, case.stride, case.padding, case.output_padding, case.groups,
                 case.dilation)
    return run


def _runners(case, arrays):
    """{"gconv": fn, "torch": fn} for the case; each returns the product."""
    import torch
    d = case.dims
    if case.op == "transpose":
        x, w = arrays
        layer_type = gconv.ConvTranspose1d if d == 1 else gconv.ConvTranspose2d
        layer = layer_type(w.shape[0], w.shape[1] * case.groups, w.shape[2:], case.stride,
                           case.padding, case.output_padding, case.groups, bias=False,
                           dilation=case.dilation)
        layer.weight = w
        tx, tw = _tensors(arrays)
        run_torch = _torch_transpose(case)
        return {"gconv": lambda: layer(x), "torch": lambda: run_torch(tx, tw)}
    x, w, gy = arrays
    tx, tw, tgy = _tensors(arrays)
    from gconv import grad
    args = (case.stride, case.padding, case.dilation, case.groups)
    backward = torch.ops.aten.convolution_backward
    t_args = ([case.stride] * d, [case.padding] * d, [case.dilation] * d, False, [0] * d,
              case.groups)
    if case.op == "input_grad":
        g = grad.conv1d_input if d == 1 else grad.conv2d_input
        return {"gconv": lambda: g(x.shape, w, gy, *args),
                "torch": lambda: backward(tgy, tx, tw, None, *t_args,
                                          [True, False, False])[0]}
    g = grad.conv1d_weight if d == 1 else grad.conv2d_weight
    return {"gconv": lambda: g(x, w.shape, gy, *args),
            "torch": lambda: backward(tgy, tx, tw, None, *t_args, [False, True, False])[1]}


def bench_case(case, threads, processes, settings):
    """One row: the case at ``threads`` threads (gconv and torch in this process)."""
    arrays = case.arrays()
    row = dict(name=case.name, op=case.op, family=case.family, source=case.source,
               threads=threads, x_shape=list(case.x_shape),
               weight_shape=list(case.weight_shape), stride=case.stride,
               padding=case.padding, groups=case.groups, results={}, errors={}, skipped={})
    runners = _runners(case, arrays)
    if case.op == "transpose" and "onnxruntime" in processes:
        try:
            runners["onnxruntime"] = processes["onnxruntime"].runner(case, arrays, threads)
        except Exception as e:          # noqa: BLE001
            row["errors"]["onnxruntime"] = f"{type(e).__name__}: {str(e)[:200]}"
    check_against_torch(row, runners, GRAD_RTOL)
    return time_row(row, runners, settings, "gconv", "gconv_vs")


def training_step_case(threads, settings):
    """The training-step row: MobileNetV2 (the networks bench's), SGD with momentum."""
    import torch
    import gconv.torch as gtorch
    from . import networks
    batch, hw = STEP_SHAPE
    torch.manual_seed(0)
    model = networks.build("mobilenet_v2").train()
    converted = gtorch.convert(copy.deepcopy(model), fuse=False)
    x = torch.randn(batch, 3, hw, hw)
    target = torch.randint(0, 1000, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()
    row = dict(name=f"train_step_mobilenet_v2_b{batch}_{hw}", op="train_step",
               family="network", source=f"MobileNetV2, batch {batch}, {hw}x{hw}, "
               "SGD momentum 0.9", threads=threads, results={}, errors={}, skipped={})

    def grads(m, dtype):
        torch.manual_seed(1)            # the same dropout masks for both models
        m.zero_grad()
        loss_fn(m(x.to(dtype)), target).backward()
        return np.concatenate([p.grad.detach().numpy().ravel() for p in m.parameters()])
    # checked in float64, where only a wrong gradient can differ: in float32 this network's
    # gradients move by ~0.4 % of their scale between any two summation orders (torch
    # against itself in float64 included), through batch norm at batch 16
    g_torch = grads(copy.deepcopy(model).double(), torch.float64)
    g_conv = grads(gtorch.convert(copy.deepcopy(model).double(), fuse=False), torch.float64)
    scale = float(np.abs(g_torch).max())
    row["max_abs_error"] = {"convert": float(np.abs(g_conv - g_torch).max())}
    row["outputs_match"] = row["max_abs_error"]["convert"] <= STEP_RTOL * scale

    def step(m):
        opt = torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9)

        def run():
            opt.zero_grad(set_to_none=True)
            loss_fn(m(x), target).backward()
            opt.step()
        return run
    return time_row(row, {"torch": step(model), "convert": step(converted)}, settings,
                    "convert", "gconv_vs")


def run_training(names, thread_counts, peers, mode="full", rounds=None, min_sample_s=None,
                 progress=None, step=True):
    """Time every case (and the training step) at each thread count; the report dict."""
    settings = mode_settings(MODES, mode, rounds, min_sample_s)
    installed = [p for p in peers if p == "onnxruntime" and _peers.peer_available(p)]
    results = []
    total, done = (len(names) + bool(step)) * len(thread_counts), 0
    with peer_processes(installed) as processes:
        for threads in thread_counts:
            with _peers.PeerThreads(threads, ("torch",)):
                for name in names:
                    if progress:
                        progress(done, total, f"{name} @ {threads} thread(s)")
                    results.append(bench_case(TRAINING_CASES[name], threads, processes,
                                              settings))
                    done += 1
                if step:
                    if progress:
                        progress(done, total, f"training step @ {threads} thread(s)")
                    results.append(training_step_case(threads, settings))
                    done += 1
    if progress:
        progress(done, total, "done")
    return ms_report("training", mode, settings, thread_counts, peers, installed, results,
                     cases=list(names))


def training_summary(report):
    """Per thread count: geometric mean of gconv vs torch over all rows, over the grouped
    and depthwise rows, and the slowest row."""
    out = {}
    for t in sorted({r["threads"] for r in report["results"]}):
        rows = [r for r in report["results"] if r["threads"] == t and "torch" in r["gconv_vs"]
                and r["op"] != "train_step"]
        if not rows:
            continue
        ratios = [r["gconv_vs"]["torch"] for r in rows]
        gd = [r["gconv_vs"]["torch"] for r in rows if r["family"] in ("depthwise", "grouped")]
        worst = min(rows, key=lambda r: r["gconv_vs"]["torch"])
        out[t] = {"geomean_all": geometric_mean(ratios),
                  "geomean_grouped_depthwise": geometric_mean(gd),
                  "slowest": (worst["name"], worst["gconv_vs"]["torch"])}
    return out


def format_training_table(report):
    libs = [lib for lib in ("gconv", "convert", "torch", "onnxruntime")
            if any(lib in r["results"] for r in report["results"])]
    head = ["case", "op", "thr"] + [f"{lib} ms" for lib in libs] + ["vs torch", "vs ort"]
    rows, notes = [head], []
    for r in report["results"]:
        cells = [r["name"], r["op"], str(r["threads"])]
        for lib in libs:
            res = r["results"].get(lib)
            cells.append("-" if res is None else f"{res['median_ms']:.3f}")
        for lib in ("torch", "onnxruntime"):
            v = r["gconv_vs"].get(lib)
            cells.append("-" if v is None else f"{v:.2f}x")
        rows.append(cells)
        notes += row_notes(r, f"{r['name']} t{r['threads']}")
    lines = aligned(rows, 2)
    for t, s in training_summary(report).items():
        gd = s["geomean_grouped_depthwise"]
        lines.append(f"{t} thread(s): gconv vs torch, geometric mean {s['geomean_all']:.2f}x "
                     f"(grouped and depthwise rows: "
                     f"{'-' if gd is None else f'{gd:.2f}x'}); slowest {s['slowest'][0]} "
                     f"{s['slowest'][1]:.2f}x")
    lines.append("medians over rounds; 'vs torch' > 1: gconv (convert, for the training "
                 "step) faster; the layers' gradients are torch's aten.convolution_backward")
    return "\n".join(lines + sorted(set(notes)))


def write_training_plot(report, path):
    rows = report["results"]
    ratio_plot(path, [f"{r['name']} t{r['threads']}" for r in rows],
               {"vs torch": [r["gconv_vs"].get("torch", np.nan) for r in rows]},
               "gconv speed-up over torch (x)",
               f"Transposed and backward layers, medians ({report['machine'].get('cpu', '')})")
