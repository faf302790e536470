"""The bench's sweep (gconv/bench/sweep.py): deterministic draws, every family in 40 layers,
valid layers within the cost caps, the issue's ranges covered; its summary
(gconv/bench/report.py) and ``gconv bench --sweep`` end to end (tiny runs, no speed)."""
import json
import math
from collections import Counter

import pytest

import gconv
from gconv import _cli
from gconv.bench import peers, report, sweep
from gconv.bench.layers import as_pair

TINY = ["--quick", "--threads", "1", "--repeat", "2", "--min-time", "0.0002"]
SEEDS = (0, 1, 2)


def _key(layer):
    return (layer.name, layer.input_shape, layer.weight_shape, layer.conv_args, layer.family)


def test_the_draw_is_deterministic_per_seed_and_differs_across_seeds():
    first = sweep.draw(40, 7)
    assert [_key(layer) for layer in first] == [_key(layer) for layer in sweep.draw(40, 7)]
    assert first == sweep.draw(40, 7)
    shapes = {seed: [layer.shape_text for layer in sweep.draw(40, seed)] for seed in SEEDS}
    assert shapes[0] != shapes[1] != shapes[2] != shapes[0]


def test_names_say_seed_index_and_family():
    layers = sweep.draw(12, 5)
    assert [layer.name for layer in layers] == [f"sweep5-{i}-{layer.family}"
                                                 for i, layer in enumerate(layers, 1)]
    for layer in layers:
        assert layer.family in sweep.FAMILIES and layer.family in layer.description
        assert layer.report_fields()["family"] == layer.family


@pytest.mark.parametrize("seed", SEEDS)
def test_every_family_appears_at_least_twice_in_40_layers(seed):
    counts = Counter(layer.family for layer in sweep.draw(40, seed))
    assert set(counts) == set(sweep.FAMILIES)
    assert min(counts.values()) >= 2
    assert counts == {name: f.share for name, f in sweep.FAMILIES.items()}


@pytest.mark.parametrize("n", [1, 3, 4, 13, 39, 41, 100])
def test_draw_gives_n_layers(n):
    layers = sweep.draw(n, 3)
    assert len(layers) == n and len({layer.name for layer in layers}) == n
    assert sum(sweep.family_counts(n, __import__("random").Random(0)).values()) == n


def test_draw_refuses_no_layers():
    with pytest.raises(ValueError, match="at least one layer"):
        sweep.draw(0)


def _cost(layer):
    """(MFLOP, MB), computed here from gconv.conv2d_output_shape."""
    out = gconv.conv2d_output_shape(layer.input_shape, layer.weight_shape, **layer.conv_args)
    assert out[:2] == (layer.N, layer.C_out)
    C_in_g, kh, kw = layer.weight_shape[1:]
    mflop = 2 * math.prod(out) * C_in_g * kh * kw / 1e6
    values = (math.prod(layer.input_shape) + math.prod(out) + math.prod(layer.weight_shape)
              + layer.C_out)
    return mflop, 4 * values / 1e6


@pytest.mark.parametrize("seed", range(5))
def test_drawn_layers_are_valid_conv2d_within_the_caps(seed):
    for layer in sweep.draw(40, seed):
        mflop, mbytes = _cost(layer)                      # raises if not a valid conv2d
        assert mflop <= sweep.MAX_MFLOP and mbytes <= sweep.MAX_MBYTES, layer.shape_text
        assert mflop == pytest.approx(layer.mflop)
        assert 1 <= layer.N <= 8
        assert 7 <= min(layer.H, layer.W) and max(layer.H, layer.W) <= 224


def test_the_families_cover_the_issues_ranges():
    layers = [layer for seed in range(10) for layer in sweep.draw(40, seed)]
    by = {}
    for layer in layers:
        by.setdefault(layer.family, []).append(layer)

    def kernels(family):
        return [layer.kernel_hw for layer in by[family]]

    # depthwise: kernel 3-11, square and not; stride 1-3; dilation 1-8; multiplier 1-4
    dw = [layer for f in ("depthwise", "depthwise_rect", "depthwise_dilated", "depthwise_mult")
          for layer in by[f]]
    assert all(layer.C_in == layer.groups for layer in dw)
    ks = {k for layer in dw for k in layer.kernel_hw}
    assert min(ks) == 3 and max(ks) == 11
    assert any(kh != kw for kh, kw in kernels("depthwise_rect"))
    assert all(kh != kw for kh, kw in kernels("depthwise_rect"))
    strides = {s for layer in dw for s in as_pair(layer.stride)}
    assert strides == {1, 2, 3}
    dilations = {d for layer in by["depthwise_dilated"] for d in as_pair(layer.dilation)}
    assert max(dilations) == 8 and min(dilations) >= 1 and {2, 3, 4} <= dilations
    multipliers = {layer.C_out // layer.C_in for layer in by["depthwise_mult"]}
    assert multipliers == {2, 3, 4}
    # grouped k x k: 1-64 channels per group, 2-64 groups, dilated and strided
    grouped = by["grouped"] + by["grouped_strided"] + by["grouped_dilated"]
    per_group = {layer.C_in // layer.groups for layer in grouped}
    groups = {layer.groups for layer in grouped}
    assert min(per_group) == 1 and max(per_group) == 64
    assert min(groups) == 2 and max(groups) == 64
    assert all(layer.kernel_hw[0] >= 3 for layer in grouped)
    assert {as_pair(layer.stride)[0] for layer in by["grouped_strided"]} == {2, 3}
    assert min(as_pair(layer.dilation)[0] for layer in by["grouped_dilated"]) >= 2
    # 1x1 grouped and dense, strided 1x1
    assert all(layer.kernel_hw == (1, 1) and layer.groups > 1
               for layer in by["pointwise_grouped"])
    assert all(layer.kernel_hw == (1, 1) and layer.groups == 1 for layer in by["pointwise"])
    assert all(layer.kernel_hw == (1, 1) and as_pair(layer.stride)[0] >= 2
               for layer in by["pointwise_strided"])
    # k x 1 and 1 x k
    assert all(kw == 1 and kh >= 3 for kh, kw in kernels("kx1"))
    assert all(kh == 1 and kw >= 3 for kh, kw in kernels("1xk"))
    # stems: 1-4 input channels, kernel 3-7, stride 2
    stems = by["stem"]
    assert {layer.C_in for layer in stems} == {1, 2, 3, 4}
    assert all(3 <= layer.kernel_hw[0] <= 7 and layer.stride == 2 for layer in stems)
    # dense 3x3
    assert all(layer.kernel_hw == (3, 3) and layer.groups == 1 for layer in by["dense3x3"])
    # batch 1-8; planes 7 to 224, not all square; channels mostly multiples of 8, some odd
    assert {layer.N for layer in layers} >= {1, 2, 8}
    assert min(layer.H for layer in layers) == 7 and max(layer.W for layer in layers) >= 200
    assert any(layer.H != layer.W for layer in layers)
    channels = [layer.C_in for layer in layers if layer.family != "stem"]
    multiples = sum(c % 8 == 0 for c in channels) / len(channels)
    assert 0.7 < multiples < 1 and any(c % 2 for c in channels)
    # a paddings: 'same'-like mostly, some 0
    pads = [as_pair(layer.padding) for layer in layers]
    assert any(p == (0, 0) for p in pads) and sum(p != (0, 0) for p in pads) > len(pads) / 2


# -- the summary -------------------------------------------------------------------------

def _row(name, threads, **us):
    g = us["gconv"]
    return {"layer": name, "shape": f"shape of {name}", "threads": threads,
            "times": {lib: {"median_us": t} for lib, t in us.items()},
            "ratios": {lib: t / g for lib, t in us.items() if lib != "gconv"}}


def test_sweep_summary_geomeans_and_worst_layers():
    rows = [_row("a", 1, gconv=10, torch=20, onnxruntime=40, openvino=5),     # ov 0.5
            _row("b", 1, gconv=10, torch=80, onnxruntime=20, openvino=30),    # ort 2
            _row("c", 1, gconv=10, torch=9, onnxruntime=30, openvino=40),     # torch 0.9
            _row("a", 2, gconv=10, torch=10, onnxruntime=10, openvino=10)]
    summary = report.sweep_summary(rows, [1, 2], ["torch", "onnxruntime", "openvino"])
    one = summary["1"]
    assert one["layers"] == 3
    assert one["geomean_vs_torch"] == pytest.approx((2 * 8 * 0.9) ** (1 / 3))
    assert one["geomean_vs_onnxruntime_openvino"] == pytest.approx((0.5 * 2 * 3) ** (1 / 3))
    assert one["geomean_vs_fastest_peer"] == pytest.approx((0.5 * 2 * 0.9) ** (1 / 3))
    assert [(w["layer"], w["peer"]) for w in one["worst"]] == [
        ("a", "openvino"), ("c", "torch"), ("b", "onnxruntime")]
    assert [w["ratio"] for w in one["worst"]] == pytest.approx([0.5, 0.9, 2.0])
    assert summary["2"]["geomean_vs_fastest_peer"] == pytest.approx(1.0)
    # only torch timed: no onnxruntime / OpenVINO figure
    only_torch = report.sweep_summary(rows, [1], ["torch"])["1"]
    assert only_torch["geomean_vs_onnxruntime_openvino"] is None
    assert only_torch["geomean_vs_fastest_peer"] == pytest.approx((2 * 8 * 0.9) ** (1 / 3))


def test_sweep_summary_keeps_the_worst_five():
    rows = [_row(f"l{i}", 1, gconv=10, torch=i + 1) for i in range(8)]
    worst = report.sweep_summary(rows, [1], ["torch"])["1"]["worst"]
    assert [w["layer"] for w in worst] == ["l0", "l1", "l2", "l3", "l4"]


# -- gconv bench --sweep -------------------------------------------------------------------

@pytest.mark.skipif(not peers.peer_available("torch"), reason="torch is not installed")
def test_bench_sweep_against_torch_table_json_and_summary(tmp_path, capsys):
    path = tmp_path / "sweep.json"
    code = _cli.main(["bench", "--sweep", "3", "--seed", "4", *TINY, "--peers", "torch",
                      "--json", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(path.read_text())
    layers = sweep.draw(3, 4)
    assert data["settings"]["source"] == {"kind": "sweep", "count": 3, "seed": 4,
                                          "families": list(sweep.FAMILIES)}
    assert [r["layer"] for r in data["results"]] == [layer.name for layer in layers]
    for row, layer in zip(data["results"], layers):
        assert row["family"] == layer.family and row["shape"] == layer.shape_text
        full = row["full_shape"]
        assert (full["N"], full["C_in"], full["H"], full["W"], full["C_out"]) == (
            layer.N, layer.C_in, layer.H, layer.W, layer.C_out)
        assert tuple(full["kernel_size"]) == layer.kernel_hw
        assert full["groups"] == layer.groups and len(full["pads"]) == 4
        assert set(row["times"]) == {"gconv", "torch"} and row["outputs_match"]
        assert row["times"]["gconv"]["median_us"] > 0
        # the legend: the layer's name with its shape
        assert any(line.startswith(f"  {layer.name} ") and line.endswith(layer.shape_text)
                   for line in out.splitlines())
        assert any(line.startswith(layer.name + " ") and line.split()[1] == "1"
                   for line in out.splitlines())
    summary = data["sweep_summary"]["1"]
    assert summary["geomean_vs_torch"] == pytest.approx(data["geomean_ratio"]["1"]["torch"])
    assert summary["geomean_vs_onnxruntime_openvino"] is None
    assert len(summary["worst"]) == 3
    assert "sweep: 3 layers drawn with seed 4 from 14 families" in out
    assert ("sweep, 1 thread(s): gconv's speed-up, geometric mean over 3 layers: vs torch "
            f"{summary['geomean_vs_torch']:.2f}x; vs each layer's fastest peer") in out
    assert "worst 3 against the fastest peer:" in out
    assert "AMD" in out or data["machine"]["cpu"] in out        # the header names the CPU


def test_bench_sweep_gconv_alone(capsys):
    assert _cli.main(["bench", "--sweep", "1", *TINY, "--peers", "none"]) == 0
    out = capsys.readouterr().out
    layer = sweep.draw(1, 0)[0]
    assert layer.name.startswith("sweep0-1-") and layer.shape_text in out
    assert "sweep, 1 thread(s): no peer timed, nothing to compare" in out


@pytest.mark.parametrize("options, message", [
    (["--sweep", "3", "--layers", "seed_g4"], "--layers and --sweep exclude each other"),
    (["--sweep", "3", "--model", "m:f"], "--sweep and --model exclude each other"),
    (["--seed", "3"], "--seed goes with --sweep N"),
])
def test_sweep_usage_errors(options, message, capsys):
    with pytest.raises(SystemExit) as e:
        _cli.main(["bench", *options])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "gconv: error:" in err and message in err


@pytest.mark.parametrize("options, message", [
    (["--sweep", "0"], "positive integer"),
    (["--sweep", "3", "--seed", "-1"], "non-negative integer"),
])
def test_sweep_bad_numbers(options, message, capsys):
    with pytest.raises(SystemExit) as e:
        _cli.main(["bench", *options])
    assert e.value.code == 2 and message in capsys.readouterr().err
