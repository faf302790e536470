"""``gconv bench --model`` (gconv/bench/model.py): the convolutions a forward pass of the
user's model runs, recorded, deduplicated and benched; the model's total per library; the
sample model bench/models/tiny_mobilenet.py; clear usage errors for bad --model values.
The bench runs here are tiny: they check rows, totals and fields, never speed."""
import json
import pickle
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from gconv import _cli  # noqa: E402
from gconv.bench import model as bench_model  # noqa: E402
from gconv.bench import peers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "bench" / "models" / "tiny_mobilenet.py"
TINY = ["--quick", "--threads", "1", "--repeat", "2", "--min-time", "0.0002"]

# The sample model on its 1x3x64x64 input, counted by hand from its source:
# (first module, shape as the bench writes it, calls, family)
TINY_MOBILENET = [
    ("stem.0", "1,3,64,64 -> 16, 3x3, 2, 1, 1, 1", 1, "Conv2d dense"),
    ("blocks.0.0", "1,16,32,32 -> 16, 3x3, 1, 1, 1, 16", 1, "Conv2d depthwise"),
    ("blocks.0.3", "1,16,32,32 -> 32, 1x1, 1, 0, 1, 1", 1, "Conv2d pointwise"),
    ("blocks.1.0", "1,32,32,32 -> 32, 3x3, 2, 1, 1, 32", 1, "Conv2d depthwise"),
    ("blocks.1.3", "1,32,16,16 -> 64, 1x1, 1, 0, 1, 1", 1, "Conv2d pointwise"),
    ("blocks.2.0", "1,64,16,16 -> 64, 3x3, 1, 1, 1, 64", 2, "Conv2d depthwise"),
    ("blocks.2.3", "1,64,16,16 -> 64, 1x1, 1, 0, 1, 1", 2, "Conv2d pointwise"),
    ("grouped", "1,64,16,16 -> 64, 3x3, 1, 1, 1, 4", 1, "Conv2d grouped"),
    ("columns", "1,64,1,16 -> 32, 1x3, 1, 0x1, 1, 4", 1, "Conv1d grouped"),
]


@pytest.fixture(autouse=True)
def _keep_sys_path(monkeypatch):
    """--model puts the current directory or the model file's folder on sys.path: undone
    after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def _layers(model, example):
    calls, skipped = bench_model.record_convs(model, example)
    return bench_model.model_layers(calls), calls, skipped


def _gconv_output(layer):
    return np.asarray(peers.gconv_runner(layer, layer.make_inputs())())


# -- recording -------------------------------------------------------------------------------

def test_the_sample_model_records_every_convolution_deduplicated():
    layers, source = bench_model.load_layers(f"{SAMPLE}:make")
    assert source == {"kind": "model", "model": f"{SAMPLE}:make",
                      "model_class": "TinyMobileNet", "convolutions": 11, "distinct": 9,
                      "skipped": {}}
    assert [(la.name, la.shape_text, la.count, la.family) for la in layers] == TINY_MOBILENET
    by_name = {la.name: la for la in layers}
    assert by_name["blocks.2.0"].modules == ("blocks.2.0", "blocks.3.0")
    assert by_name["blocks.2.3"].description == "Conv2d blocks.2.3 and 1 more"
    # the model's own weights, its bias where it has one
    net, _ = bench_model.load_model(f"{SAMPLE}:make")
    x, w, b = by_name["grouped"].make_inputs()
    np.testing.assert_array_equal(w, net.grouped.weight.detach().numpy())
    np.testing.assert_array_equal(b, net.grouped.bias.detach().numpy())
    assert by_name["stem.0"].make_inputs()[2] is None and not by_name["stem.0"].bias
    _, w1d, _ = by_name["columns"].make_inputs()
    np.testing.assert_array_equal(w1d[:, :, 0, :], net.columns.weight.detach().numpy())
    assert x.shape == (1, 64, 16, 16) and x.dtype == np.float32


def test_a_module_run_twice_counts_twice_and_other_shapes_get_their_own_layer():
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=2)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x):
            y = self.conv(self.conv(x))                       # the same shape twice
            return self.conv(y[:, :, ::2, ::2])               # and a smaller one

    layers, calls, _ = _layers(Twice(), torch.randn(2, 8, 12, 12))
    assert len(calls) == 3
    assert [(la.name, la.count, la.input_shape) for la in layers] == [
        ("conv", 2, (2, 8, 12, 12)), ("conv#2", 1, (2, 8, 6, 6))]


def test_conv1d_is_benched_as_a_2d_convolution_with_height_1():
    net = nn.Sequential(nn.Conv1d(8, 16, 5, stride=2, padding=2, dilation=1),
                        nn.Conv1d(16, 16, 3, padding="same", dilation=2, groups=16))
    layers, _, _ = _layers(net, torch.randn(8, 50))         # unbatched: (C, L)
    first, second = layers
    assert (first.input_shape, first.kernel_hw, first.stride, first.padding) == (
        (1, 8, 1, 50), (1, 5), (1, 2), (0, 2))
    assert (second.padding, second.dilation, second.family) == ("same", (1, 2),
                                                                "Conv1d depthwise")
    y = _gconv_output(first)
    x = torch.from_numpy(first.make_inputs()[0][:, :, 0, :])
    with torch.no_grad():
        want = nn.functional.conv1d(x, net[0].weight, net[0].bias, stride=2, padding=2)
    np.testing.assert_allclose(y[:, :, 0, :], want.numpy(), rtol=1e-4, atol=1e-5)


def test_padding_mode_reflect_is_benched_as_zeros_and_marked():
    net = nn.Conv2d(4, 8, 3, padding=1, padding_mode="reflect")
    (layer,), _, _ = _layers(net, torch.randn(1, 4, 9, 9))
    assert layer.padding == (1, 1) and layer.padding_mode == "reflect"
    assert layer.note == "padding_mode='reflect' timed as zeros padding"
    assert layer.report_fields()["note"] == layer.note
    x, w, b = layer.make_inputs()
    want = nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                padding=1)                   # zeros padding
    np.testing.assert_allclose(_gconv_output(layer), want.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_same_padding_with_an_even_kernel_runs_in_every_peer():
    net = nn.Conv2d(6, 6, (2, 4), padding="same", dilation=(1, 2), groups=3, bias=False)
    (layer,), _, _ = _layers(net, torch.randn(1, 6, 7, 10))
    assert layer.padding == "same" and layer.full_shape()["pads"] == [0, 1, 3, 3]
    inputs = layer.make_inputs()
    y = _gconv_output(layer)
    for lib in peers.PEERS:
        if peers.peer_available(lib):
            out = peers.make_runner(lib, layer, inputs, 1)()
            out = out.numpy() if hasattr(out, "numpy") else np.asarray(out)
            np.testing.assert_allclose(out, y, rtol=1e-4, atol=1e-5, err_msg=lib)


def test_other_convolutions_are_counted_as_skipped_and_inputs_may_be_tuples_or_dicts():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
            self.conv = nn.Conv2d(4, 4, 1)

        def forward(self, a, b=None):
            return self.conv(self.up(a)) + (0 if b is None else b.sum())

    net = TwoInputs().train()
    layers, calls, skipped = _layers(net, (torch.randn(1, 4, 5, 5), torch.ones(1)))
    assert skipped == {"ConvTranspose2d": 1} and [la.name for la in layers] == ["conv"]
    assert layers[0].input_shape == (1, 4, 10, 10)
    assert net.training                                     # restored after the eval pass
    _, calls, _ = _layers(net, {"a": torch.randn(1, 4, 3, 3)})
    assert len(calls) == 1


def test_model_layers_pickle_for_the_peer_processes():
    layers, _ = bench_model.load_layers(f"{SAMPLE}:make")
    for layer in layers:
        again = pickle.loads(pickle.dumps(layer))
        assert again == layer
        for a, b in zip(again.make_inputs(), layer.make_inputs()):
            np.testing.assert_array_equal(a, b)


# -- gconv bench --model ---------------------------------------------------------------------

def _data_rows(out, names):
    return {line.split()[0]: line.split() for line in out.splitlines()
            if line.split() and line.split()[0] in names and len(line.split()) > 4
            and line.split()[1].isdigit()}


def _bench_model(spec, capsys, tmp_path, peer_list="none"):
    path = tmp_path / "model.json"
    code = _cli.main(["bench", "--model", spec, *TINY, "--peers", peer_list,
                      "--json", str(path)])
    out = capsys.readouterr().out
    return code, out, json.loads(path.read_text())


def test_bench_model_gconv_alone_rows_and_total(tmp_path, capsys):
    code, out, data = _bench_model(f"{SAMPLE}:make", capsys, tmp_path)
    assert code == 0
    names = [name for name, *_ in TINY_MOBILENET]
    rows = _data_rows(out, names)
    assert sorted(rows) == sorted(names)
    for name, shape, count, family in TINY_MOBILENET:
        assert rows[name][2] == str(count)                   # the calls column
    results = {r["layer"]: r for r in data["results"]}
    for name, shape, count, family in TINY_MOBILENET:
        r = results[name]
        assert (r["shape"], r["count"], r["family"]) == (shape, count, family)
        assert r["modules"][0] == name and r["full_shape"]["C_out"] == int(shape.split()[2][:-1])
    total = data["model_total"]["1"]
    want = sum(r["count"] * r["times"]["gconv"]["median_us"] for r in data["results"])
    assert total["totals_us"]["gconv"] == pytest.approx(want)
    assert (total["layers"], total["calls"], total["left_out"]) == (9, 11, [])
    total_line = next(line for line in out.splitlines() if line.startswith("model total  "))
    assert total_line.split()[2:5] == ["1", "11", f"{want:.1f}"]
    assert ("model " + f"{SAMPLE}:make (TinyMobileNet): 11 convolution calls of 9 distinct "
            "shapes") in out
    assert data["settings"]["source"]["convolutions"] == 11


@pytest.mark.skipif(not peers.peer_available("torch"), reason="torch is not installed")
def test_bench_model_against_torch_totals_and_ratio(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)                          # the module form, from the repo root
    code, out, data = _bench_model("bench.models.tiny_mobilenet:make", capsys, tmp_path,
                                   "torch")
    assert code == 0
    total = data["model_total"]["1"]
    for lib in ("gconv", "torch"):
        want = sum(r["count"] * r["times"][lib]["median_us"] for r in data["results"])
        assert total["totals_us"][lib] == pytest.approx(want)
    ratio = total["totals_us"]["torch"] / total["totals_us"]["gconv"]
    assert total["ratios"]["torch"] == pytest.approx(ratio)
    total_line = next(line for line in out.splitlines() if line.startswith("model total  "))
    assert total_line.split()[-1] == f"{ratio:.2f}"
    assert all(r["outputs_match"] for r in data["results"])


def test_bench_model_marks_reflect_padding(tmp_path, capsys):
    file = tmp_path / "reflect_net.py"
    file.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def make():
            net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"),
                                nn.Conv2d(8, 8, 3, padding=1))
            return net, torch.randn(1, 3, 16, 16)
        """))
    code, out, data = _bench_model(f"{file}:make", capsys, tmp_path)
    assert code == 0
    legend = next(line for line in out.splitlines() if line.startswith("  0 "))
    assert legend.endswith("(padding_mode='reflect' timed as zeros padding)")
    first, second = data["results"]
    assert first["padding_mode"] == "reflect" and first["note"]
    assert second["padding_mode"] == "zeros" and second["note"] == ""


def test_bench_model_reports_a_layer_gconv_refuses_and_goes_on(tmp_path, capsys, monkeypatch):
    real = peers.gconv_runner

    def refusing(layer, inputs):
        if layer.name == "grouped":
            raise ValueError("not this one")
        return real(layer, inputs)
    monkeypatch.setattr(peers, "gconv_runner", refusing)
    code, out, data = _bench_model(f"{SAMPLE}:make", capsys, tmp_path)
    assert code == 0
    row = _data_rows(out, ["grouped"])["grouped"]
    assert row[3:6] == ["-", "4.72", "refused"]
    assert "gconv refused grouped: ValueError: not this one" in out
    total = data["model_total"]["1"]
    assert (total["layers"], total["calls"], total["left_out"]) == (8, 10, ["grouped"])
    assert "leaves out what a library could not time: grouped" in out


# -- bad --model values ------------------------------------------------------------------

def _write(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize("spec, message", [
    ("tiny_mobilenet", "--model takes module:function or path/to/file.py:function, got "
                       "'tiny_mobilenet'"),
    (":make", "--model takes module:function"),
    ("bench.models.tiny_mobilenet:", "--model takes module:function"),
    ("no_such_module_for_gconv:make", "--model: no module named 'no_such_module_for_gconv'"),
    ("missing/model.py:make", "--model: no file"),
    ("{dir}/net.py:nope", "has no function 'nope'"),
    ("{dir}/net.py:not_a_pair", "must return (model, example_input), got a Tensor"),
    ("{dir}/net.py:three", "must return (model, example_input), got a tuple of 3"),
    ("{dir}/net.py:no_module", "with a torch.nn.Module model, got a str"),
    ("{dir}/net.py:raises", "raised RuntimeError: no weights here"),
    ("{dir}/net.py:bad_input", "the model's forward pass failed: RuntimeError"),
    ("{dir}/net.py:no_conv", "ran no torch.nn.Conv1d or Conv2d: nothing to bench"),
    ("{dir}/broken.py:make", "loading"),
])
def test_bad_model_values_are_usage_errors(spec, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "net.py", """
        import torch
        from torch import nn

        def not_a_pair():
            return torch.ones(1)

        def three():
            return nn.Conv2d(1, 1, 1), torch.ones(1, 1, 2, 2), 3

        def no_module():
            return "model", torch.ones(1)

        def raises():
            raise RuntimeError("no weights here")

        def bad_input():
            return nn.Conv2d(3, 4, 3), torch.ones(1, 5, 8, 8)

        def no_conv():
            return nn.Linear(3, 4), torch.ones(2, 3)
        """)
    _write(tmp_path, "broken.py", "import no_such_dependency_for_gconv\n")
    with pytest.raises(SystemExit) as e:
        _cli.main(["bench", "--model", spec.format(dir=tmp_path), *TINY, "--peers", "none"])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert err.splitlines()[0].startswith("usage: gconv")
    assert "gconv: error: " in err and message in err and "Traceback" not in err


def test_model_without_torch_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(SystemExit) as e:
        _cli.main(["bench", "--model", f"{SAMPLE}:make", "--peers", "none"])
    assert e.value.code == 2
    assert "--model needs torch: pip install torch==2.13.0" in capsys.readouterr().err
