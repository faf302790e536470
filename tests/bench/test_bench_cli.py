"""``gconv bench`` (gconv/bench/cli.py) through the command line's main: the table, the
JSON, the exit codes, the peers in processes of their own, the usage errors.

The bench runs here are tiny (one small layer, 2 rounds of ~0.2 ms samples): they check the
table, the JSON and the exit codes, never speed."""
import json
import math
import sys

import numpy as np
import pytest

import gconv
from gconv import _cli
from gconv.bench import cli as bench_cli
from gconv.bench import peer_process, peers
from gconv.bench.layers import BY_NAME

TINY = ["--quick", "--threads", "1", "--repeat", "2", "--min-time", "0.0002"]
HAVE_TORCH = peers.peer_available("torch")
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")


def test_bench_help_names_the_layers(capsys):
    with pytest.raises(SystemExit) as e:
        _cli.main(["bench", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in ("--layers", "--threads", "--repeat", "--json", "--plot", "--quick",
                   "--sweep", "--seed", "--model"):
        assert option in out
    assert "resnext_g32_56" in out and "b8_dense_3x3" in out


# -- bench ---------------------------------------------------------------------------------

def _table_rows(out):
    """{(layer, threads): [cells]} of the table's data rows."""
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) > 3 and cells[1].isdigit() and cells[0] in BY_NAME:
            rows[(cells[0], int(cells[1]))] = cells
    return rows


def _bench_json(path, capsys, layers, peer_list):
    """`gconv bench` of a tiny run writing --json: (printed table, report), exit status 0."""
    code = _cli.main(["bench", "--layers", layers, *TINY, "--peers", peer_list,
                      "--json", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    return out, json.loads(path.read_text())


def test_bench_gconv_alone_table_and_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    out, report = _bench_json(path, capsys, "seed_g4", "none")
    layer = BY_NAME["seed_g4"]

    # the JSON: every number, the machine, the settings
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
    for peer in peers.PEERS:
        if peers.peer_available(peer):
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
    out, report = _bench_json(tmp_path / "b.json", capsys, "seed_g4,mbv2_dw7", "torch")
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
    monkeypatch.setattr(peers, "gconv_runner", wrong_runner)
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
    monkeypatch.setattr(peers, "torch_runner", failing_runner)
    assert _cli.main(["bench", "--layers", "seed_g4", *TINY, "--peers", "torch"]) == 0
    out = capsys.readouterr().out
    assert _table_rows_line(out, "seed_g4").split()[5:7] == ["error", "error"]
    assert "torch failed on seed_g4: RuntimeError: peer exploded" in out


class _FakePeerProcess:
    """Stands in for gconv.bench.peer_process.PeerProcess: runs gconv in this process."""
    made = []

    def __init__(self, peer):
        self.peer, self.pid, self.closed, self.threads = peer, None, False, []
        _FakePeerProcess.made.append(self)

    def runner(self, layer, inputs, threads):
        self.threads.append(threads)
        return peers.gconv_runner(layer, inputs)

    def close(self):
        self.closed = True


def test_bench_runs_pooled_peers_through_peer_processes_and_closes_them(monkeypatch):
    # the bench makes its peer processes through peer_process.peer_processes
    monkeypatch.setattr(peer_process, "PeerProcess", _FakePeerProcess)
    monkeypatch.setattr(_FakePeerProcess, "made", [])
    monkeypatch.setattr(peers, "peer_version", lambda name: "0.0")   # need not be installed
    layer = [BY_NAME["seed_g4"]]
    report = bench_cli.run_bench(layer, [1, 2], ["onnxruntime"], "quick", rounds=2,
                            min_sample_s=0.0002)
    (proc,) = _FakePeerProcess.made                   # one per pooled peer, for the run
    assert proc.peer == "onnxruntime" and proc.threads == [1, 2] and proc.closed
    assert [r["threads"] for r in report["results"]] == [1, 2]
    assert all(r["outputs_match"] and "onnxruntime" in r["ratios"] for r in report["results"])

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(bench_cli, "_bench_row", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bench_cli.run_bench(layer, [1], ["onnxruntime", "openvino"], "quick")
    assert [p.peer for p in _FakePeerProcess.made[1:]] == ["onnxruntime", "openvino"]
    assert all(p.closed for p in _FakePeerProcess.made)


def _table_rows_line(out, name):
    return next(line for line in out.splitlines() if line.startswith(name + " "))


# (options, who says it, what): a bad value of an option's type is the bench subparser's
# error; a name the bench does not know is reported by the top-level parser, as before the
# bench moved to gconv/bench/
@pytest.mark.parametrize("options, usage, message", [
    (["--layers", "resnet_nope"], "gconv", "unknown bench layer(s) resnet_nope"),
    (["--threads", "0"], "gconv bench", "must be positive"),
    (["--threads", "one"], "gconv bench", "comma-separated integers"),
    (["--repeat", "0"], "gconv bench", "positive integer"),
    (["--peers", "tensorflow"], "gconv", "unknown peer 'tensorflow'"),
])
def test_bench_usage_errors_exit_2_and_say_why(options, usage, message, capsys):
    with pytest.raises(SystemExit) as e:
        _cli.main(["bench", *options])
    err = capsys.readouterr().err
    assert (e.value.code, err.splitlines()[0].split(" [")[0]) == (2, f"usage: {usage}")
    assert f"{usage}: error: " in err and message in err


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


def test_bench_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")       # optional extra: gconv[plot]
    path = tmp_path / "ratios.png"
    assert _cli.main(["bench", "--layers", "seed_g4", *TINY, "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

