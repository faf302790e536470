"""The command line (gconv/_cli.py): `python -m gconv bench | explain | check`.

The bench runs here are tiny (one small layer, 2 rounds of ~0.2 ms samples): they check the
table, the JSON and the exit codes, never speed. explain and check are tested for their
wiring with stand-in back ends; their own tests cover what they compute."""
import io
import json
import math
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import gconv
from gconv import _cli, _layers

TINY = ["--quick", "--threads", "1", "--repeat", "2", "--min-time", "0.0002"]
HAVE_TORCH = _layers.peer_available("torch")
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")


def _run_gconv(*args):
    """`python -m gconv ARGS` in a fresh interpreter importing this same gconv."""
    root = str(Path(gconv.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "gconv", *args], capture_output=True,
                          text=True, env=env, cwd=os.path.dirname(root) or "/", timeout=120)


# -- the entry points --------------------------------------------------------------------

def test_python_m_gconv_help_lists_the_subcommands():
    r = _run_gconv("--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: gconv")
    for command in ("bench", "explain", "check"):
        assert re.search(rf"^\s+{command}\s+\S", r.stdout, re.M), r.stdout


def test_python_m_gconv_without_a_command_is_a_usage_error():
    r = _run_gconv()
    assert r.returncode == 2
    assert "usage: gconv" in r.stderr and "required" in r.stderr


def test_console_script_points_at_main():
    # pyproject declares the `gconv` console script; its target must be this main
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    match = re.search(r'^gconv\s*=\s*"([\w.]+):(\w+)"', pyproject.read_text(), re.M)
    assert match, "pyproject.toml declares no gconv console script"
    module, func = match.groups()
    assert (module, func) == ("gconv._cli", "main")
    assert callable(_cli.main)


def test_bench_help_names_the_layers(capsys):
    with pytest.raises(SystemExit) as e:
        _cli.main(["bench", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in ("--layers", "--threads", "--repeat", "--json", "--plot", "--quick"):
        assert option in out
    assert "resnext_g32_56" in out and "b8_dense_3x3" in out


# -- bench ---------------------------------------------------------------------------------

def _table_rows(out):
    """{(layer, threads): [cells]} of the table's data rows."""
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) > 3 and cells[1].isdigit() and cells[0] in _layers.BY_NAME:
            rows[(cells[0], int(cells[1]))] = cells
    return rows


def test_bench_gconv_alone_table_and_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    code = _cli.main(["bench", "--layers", "seed_g4", *TINY, "--peers", "none",
                      "--json", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    layer = _layers.BY_NAME["seed_g4"]

    # the JSON: every number, the machine, the settings
    report = json.loads(path.read_text())
    m = report["machine"]
    assert m["isa"] == gconv.get_isa() and m["gconv"] == gconv.__version__
    assert m["numpy"] == np.__version__ and m["peers"] == {}
    assert m["openmp"] == gconv.openmp_enabled()
    if gconv.get_isa() != "generic":
        assert m["fma_peak_gflops_per_core"] > 1
    assert report["settings"]["threads"] == [1] and report["settings"]["peers"] == []
    (row,) = report["results"]
    assert (row["layer"], row["threads"], row["algorithm"]) == ("seed_g4", 1, "pointwise")
    assert row["problem"] == str(layer.problem()) and row["shape"] == layer.shape_text
    g = row["times"]["gconv"]
    assert g["rounds"] == 2 and 0 < g["min_us"] <= g["median_us"] < 1e5
    assert row["gflops"] == pytest.approx(layer.flops / g["median_us"] / 1e3)
    if m["fma_peak_gflops_per_core"]:
        assert row["pct_peak"] == pytest.approx(100 * row["gflops"] / m["fma_peak_gflops_per_core"])
    assert row["ratios"] == {} and row["outputs_match"]

    # the table: a header naming the columns, the row, why each peer was not timed
    for peer in _layers.PEERS:
        if _layers.peer_available(peer):
            assert f"{peer} is installed but was not asked for (--peers)" in out
        else:
            assert f"{peer} is missing: not timed" in out
    header = next(line for line in out.splitlines() if line.startswith("layer"))
    assert header.split() == ["layer", "threads", "algorithm", "MFLOP", "gconv", "us",
                              "GFLOP/s", "%", "peak"]
    cells = _table_rows(out)[("seed_g4", 1)]
    assert cells[2] == "pointwise" and cells[3] == "0.01"
    assert float(cells[4]) == pytest.approx(g["median_us"], abs=0.05)
    assert f"wrote {path}" in out


@needs_torch
def test_bench_against_torch_ratios_and_geometric_means(capsys, tmp_path):
    path = tmp_path / "b.json"
    code = _cli.main(["bench", "--layers", "seed_g4,mbv2_dw7", *TINY, "--peers", "torch",
                      "--json", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(path.read_text())
    assert set(report["machine"]["peers"]) == {"torch"}
    ratios = []
    for row in report["results"]:
        t = row["times"]
        ratio = t["torch"]["median_us"] / t["gconv"]["median_us"]
        assert row["ratios"]["torch"] == pytest.approx(ratio)
        assert row["outputs_match"] and row["max_abs_diff"]["torch"] < 1e-4
        ratios.append(row["ratios"]["torch"])
        cells = _table_rows(out)[(row["layer"], 1)]
        assert float(cells[5]) == pytest.approx(t["torch"]["median_us"], abs=0.05)
        assert float(cells[6]) == pytest.approx(row["ratios"]["torch"], abs=0.005)
    geomean = math.sqrt(ratios[0] * ratios[1])
    assert report["geomean_ratio"]["1"]["torch"] == pytest.approx(geomean)
    gm_line = next(line for line in out.splitlines() if line.startswith("geometric mean"))
    assert gm_line.split()[2:] == ["1", f"{geomean:.2f}"]
    assert "torch/gconv" in out and "torch is missing" not in out


def test_bench_without_torch_times_gconv_alone(monkeypatch, capsys):
    # as on a machine where no peer is installed
    for module in ("torch", "onnxruntime", "openvino"):
        monkeypatch.setitem(sys.modules, module, None)
    assert _cli.main(["bench", "--layers", "seed_g4", *TINY]) == 0
    out = capsys.readouterr().out
    assert "torch is missing: not timed (pip install torch==2.13.0" in out
    assert "peers: none" in out and "torch/gconv" not in out
    assert ("seed_g4", 1) in _table_rows(out)


@needs_torch
def test_bench_exits_1_when_gconv_output_is_wrong(monkeypatch, capsys):
    def wrong_runner(layer, inputs):
        x, w, b = inputs
        y = gconv.conv2d(x, w, b, **layer.conv_args)
        return lambda: y + 1.0
    monkeypatch.setattr(_layers, "gconv_runner", wrong_runner)
    assert _cli.main(["bench", "--layers", "seed_g4", *TINY, "--peers", "torch"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in _table_rows_line(out, "seed_g4")
    assert "MISMATCH: seed_g4 at 1 thread(s)" in out


@needs_torch
def test_bench_reports_a_peer_that_fails_and_goes_on(monkeypatch, capsys):
    def failing_runner(layer, inputs):
        def run():
            raise RuntimeError("peer exploded")
        return run
    monkeypatch.setattr(_layers, "torch_runner", failing_runner)
    assert _cli.main(["bench", "--layers", "seed_g4", *TINY, "--peers", "torch"]) == 0
    out = capsys.readouterr().out
    assert _table_rows_line(out, "seed_g4").split()[5:7] == ["error", "error"]
    assert "torch failed on seed_g4: RuntimeError: peer exploded" in out


class _FakePeerProcess:
    """Stands in for gconv._peer_process.PeerProcess: runs gconv in this process."""
    made = []

    def __init__(self, peer):
        self.peer, self.pid, self.closed, self.threads = peer, None, False, []
        _FakePeerProcess.made.append(self)

    def runner(self, layer, inputs, threads):
        self.threads.append(threads)
        return _layers.gconv_runner(layer, inputs)

    def close(self):
        self.closed = True


def test_bench_runs_pooled_peers_through_peer_processes_and_closes_them(monkeypatch):
    monkeypatch.setattr(_cli, "PeerProcess", _FakePeerProcess)
    monkeypatch.setattr(_FakePeerProcess, "made", [])
    monkeypatch.setattr(_layers, "peer_version", lambda name: "0.0")   # need not be installed
    layer = [_layers.BY_NAME["seed_g4"]]
    report = _cli.run_bench(layer, [1, 2], ["onnxruntime"], "quick", rounds=2,
                            min_sample_s=0.0002)
    (proc,) = _FakePeerProcess.made                   # one per pooled peer, for the run
    assert proc.peer == "onnxruntime" and proc.threads == [1, 2] and proc.closed
    assert [r["threads"] for r in report["results"]] == [1, 2]
    assert all(r["outputs_match"] and "onnxruntime" in r["ratios"] for r in report["results"])

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(_cli, "_bench_row", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _cli.run_bench(layer, [1], ["onnxruntime", "openvino"], "quick")
    assert [p.peer for p in _FakePeerProcess.made[1:]] == ["onnxruntime", "openvino"]
    assert all(p.closed for p in _FakePeerProcess.made)


def _table_rows_line(out, name):
    return next(line for line in out.splitlines() if line.startswith(name + " "))


@pytest.mark.parametrize("argv, message", [
    (["bench", "--layers", "resnet_nope"], "unknown bench layer(s) resnet_nope"),
    (["bench", "--threads", "0"], "must be positive"),
    (["bench", "--threads", "one"], "comma-separated integers"),
    (["bench", "--repeat", "0"], "positive integer"),
    (["bench", "--peers", "tensorflow"], "unknown peer 'tensorflow'"),
    (["explain", "16"], "required"),
    (["explain", "16", "4", "--kernel-size", "1", "2", "3"], "one or two integers"),
    (["check", "--cases", "-1"], "positive integer"),
])
def test_usage_errors_exit_2_and_say_why(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        _cli.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("peer, hint", [("onnxruntime", "pip install onnxruntime onnx"),
                                        ("openvino", "pip install openvino")])
def test_bench_asking_for_a_missing_peer_says_how_to_install(peer, hint, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, peer, None)
    with pytest.raises(SystemExit) as e:
        _cli.main(["bench", "--peers", peer])
    assert e.value.code == 2
    assert hint in capsys.readouterr().err


def test_bench_plot_without_matplotlib_says_pip_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    path = tmp_path / "ratios.png"
    assert _cli.main(["bench", "--layers", "seed_g4", *TINY, "--plot", str(path)]) == 2
    assert "pip install matplotlib" in capsys.readouterr().err
    assert not path.exists()


def test_bench_plot_writes_a_png(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")       # optional extra: gconv[plot]
    if os.environ.get("GCONV_SANITIZE") == "1":
        # under ASan OpenVINO's process dies loading its CPU plugin (test_layers.py says why);
        # once its telemetry's forked child, deadlocked in dlopen, held the pipe open and the
        # bench waited forever. The bench times the other peers, as where OpenVINO is absent.
        monkeypatch.setitem(sys.modules, "openvino", None)
    path = tmp_path / "ratios.png"
    assert _cli.main(["bench", "--layers", "seed_g4", *TINY, "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the table's format, on a report made by hand -------------------------------------------

def _hand_report(ratios, other_load=0.0, torch_iqr_us=1.0):
    results = []
    for name, ratio in ratios.items():
        layer = _layers.BY_NAME[name]
        results.append({"layer": name, "threads": 2, "algorithm": layer.algorithm(),
                        "mflop": layer.mflop,
                        "times": {"gconv": {"median_us": 100.0, "iqr_us": 1.0},
                                  "torch": {"median_us": 100.0 * ratio,
                                            "iqr_us": torch_iqr_us}},
                        "ratios": {"torch": ratio}, "gflops": layer.flops / 100e-6 / 1e9,
                        "pct_peak": 12.5, "outputs_match": True, "max_abs_diff": {},
                        "errors": {}, "other_load": other_load})
    return {"machine": {"gconv": "9.9", "cpu": "Test CPU", "cpus_available": 2,
                        "openmp": True, "isa": "avx2", "fma_peak_gflops_per_core": 50.0,
                        "peers": {"torch": "0.0"}},
            "settings": {"threads": [2], "peers": ["torch"], "rounds": 7},
            "results": results,
            "geomean_ratio": {"2": {"torch": _cli.geometric_mean(list(ratios.values()))}}}


def test_format_table_columns_rows_and_geometric_mean():
    text = _cli.format_table(_hand_report({"dense_3x3": 2.0, "mbv2_dw7": 0.5}))
    lines = text.splitlines()
    assert "Test CPU" in lines[0] and "ISA avx2" in lines[0] and "50.0 GFLOP/s" in lines[0]
    assert "up to 7 interleaved rounds" in text
    assert ("onnxruntime is missing" in text) != _layers.peer_available("onnxruntime")
    assert _table_rows_line(text, "dense_3x3").split() == [
        "dense_3x3", "2", "general", "231.21", "100.0", "200.0", "2.00", "2312.1", "12.5"]
    assert _table_rows_line(text, "mbv2_dw7").split()[5:7] == ["50.0", "0.50"]
    gm = next(line for line in lines if line.startswith("geometric mean"))
    assert gm.split() == ["geometric", "mean", "2", "1.00"]
    assert "busy" not in text and "spread" not in text
    # columns line up: every data row as long as the header or longer (flags at the end)
    header = next(line for line in lines if line.startswith("layer"))
    assert header.index("torch/gconv") > header.index("torch us") > header.index("gconv us")


def test_format_table_flags_rows_timed_on_a_busy_machine():
    text = _cli.format_table(_hand_report({"dense_3x3": 2.0}, other_load=0.45))
    assert _table_rows_line(text, "dense_3x3").endswith("busy 45%")
    assert "other processes used N% of the CPUs" in text


def test_format_table_flags_rows_whose_rounds_spread():
    # torch 200 us with an IQR of 80 us: 40 % spread
    text = _cli.format_table(_hand_report({"dense_3x3": 2.0}, torch_iqr_us=80.0))
    assert _table_rows_line(text, "dense_3x3").endswith("spread 40%")
    assert "interquartile range was N% of the median" in text


def test_geometric_mean():
    assert _cli.geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert _cli.geometric_mean([None, 3.0]) == pytest.approx(3.0)
    assert _cli.geometric_mean([]) is None


def test_progress_bar_draws_and_clears():
    stream = io.StringIO()
    bar = _cli.ProgressBar(4, "bench", stream=stream, enabled=True, width=8)
    bar.update(3, text="dense_3x3")
    assert "\rbench [######..] 3/4 dense_3x3" in stream.getvalue()
    bar.close()
    assert stream.getvalue().endswith("\r")
    quiet = io.StringIO()
    _cli.ProgressBar(4, stream=quiet).update(1)      # StringIO is no terminal: no bar
    assert quiet.getvalue() == ""


def test_interleaved_timing_rounds_and_order():
    calls = []
    runners = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    samples = _cli.time_interleaved(runners, rounds=4, min_sample_s=0.0, budget_s=60)
    assert {k: len(v) for k, v in samples.items()} == {"a": 4, "b": 4}
    # after warm-up and calibration (1 + 3 calls each), rounds alternate who goes first; each
    # sample is an untimed warm-up call, then the timed one, of the same runner
    timed = calls[8:]
    assert timed == [c for c in "abbaabba" for _ in range(2)]


# -- explain and check: wiring to their back ends -----------------------------------------

@pytest.fixture
def fake_explain(monkeypatch):
    seen = {}

    class Report:
        def __str__(self):
            return "EXPLAINED"

        def plot(self, path):
            seen["plot"] = path

    def explain(in_channels, out_channels, **kwargs):
        seen.update(args=(in_channels, out_channels), kwargs=kwargs)
        return Report()
    monkeypatch.setitem(sys.modules, "gconv._explain",
                        types.SimpleNamespace(explain=explain))
    return seen


def test_explain_passes_its_arguments(fake_explain, capsys):
    assert _cli.main(["explain", "16", "4", "--groups", "4", "--kernel-size", "3",
                      "--padding", "same", "--input-size", "10", "12"]) == 0
    assert capsys.readouterr().out.strip() == "EXPLAINED"
    assert fake_explain["args"] == (16, 4)
    assert fake_explain["kwargs"] == dict(kernel_size=3, groups=4, stride=1, padding="same",
                                          dilation=1, input_size=(10, 12))


def test_explain_pairs_and_defaults(fake_explain, capsys):
    assert _cli.main(["explain", "8", "8", "-k", "3", "5", "-s", "2", "-p", "1", "2",
                      "-d", "2"]) == 0
    assert fake_explain["kwargs"] == dict(kernel_size=(3, 5), groups=1, stride=2,
                                          padding=(1, 2), dilation=2, input_size=None)
    assert "plot" not in fake_explain


def test_explain_plot(fake_explain, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = str(tmp_path / "g.png")
    assert _cli.main(["explain", "16", "4", "-g", "4", "--plot", path]) == 0
    assert fake_explain["plot"] == path


def test_explain_reports_a_bad_configuration(monkeypatch, capsys):
    def explain(in_channels, out_channels, **kwargs):
        raise ValueError("in_channels must be divisible by groups")
    monkeypatch.setitem(sys.modules, "gconv._explain", types.SimpleNamespace(explain=explain))
    assert _cli.main(["explain", "16", "4", "--groups", "3"]) == 2
    assert "divisible by groups" in capsys.readouterr().err


@pytest.mark.parametrize("ok, code", [(True, 0), (False, 1)])
def test_check_prints_the_summary_and_exits_by_it(monkeypatch, capsys, ok, code):
    seen = {}

    class Summary:
        def __init__(self):
            self.ok = ok

        def __str__(self):
            return f"SUMMARY ok={self.ok}"

    def run_check(cases, seed, progress):
        seen.update(cases=cases, seed=seed)
        for i in range(cases):
            progress(i + 1, cases)
        return Summary()
    monkeypatch.setitem(sys.modules, "gconv._check", types.SimpleNamespace(run_check=run_check))
    assert _cli.main(["check", "--cases", "5", "--seed", "7"]) == code
    assert capsys.readouterr().out.strip() == f"SUMMARY ok={ok}"
    assert seen == {"cases": 5, "seed": 7}


def test_check_without_torch_says_so(monkeypatch, capsys):
    def run_check(cases, seed, progress):
        raise ImportError("gconv check compares gconv with PyTorch, which is not installed")
    monkeypatch.setitem(sys.modules, "gconv._check", types.SimpleNamespace(run_check=run_check))
    assert _cli.main(["check"]) == 2
    assert "gconv check: gconv check compares gconv with PyTorch" in capsys.readouterr().err


def test_cpu_model_names_the_cpuid_family_and_model_of_the_first_cpu(tmp_path):
    # a hypervisor may show only "AMD EPYC"; family and model tell Zen 4 from Zen 5
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
                       "model\t\t: 17\nmodel name\t: AMD EPYC\n\n"
                       "processor\t: 1\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: Other\n")
    assert _cli._cpu_model(str(cpuinfo)) == "AMD EPYC (CPUID family 25, model 17)"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\n")
    assert _cli._cpu_model(str(cpuinfo)) == "Some CPU"
    assert _cli._cpu_model(str(tmp_path / "missing")) != ""
