"""The bench's printed table (gconv/bench/report.py), on reports made by hand."""
import pytest

from gconv.bench import peers, report
from gconv.bench.layers import BY_NAME


def _table_rows_line(out, name):
    return next(line for line in out.splitlines() if line.startswith(name + " "))


def _hand_report(ratios, other_load=0.0, torch_iqr_us=1.0):
    results = []
    for name, ratio in ratios.items():
        layer = BY_NAME[name]
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
            "geomean_ratio": {"2": {"torch": report.geometric_mean(list(ratios.values()))}}}


def test_format_table_columns_rows_and_geometric_mean():
    text = report.format_table(_hand_report({"dense_3x3": 2.0, "mbv2_dw7": 0.5}))
    lines = text.splitlines()
    assert "Test CPU" in lines[0] and "ISA avx2" in lines[0] and "50.0 GFLOP/s" in lines[0]
    assert "up to 7 interleaved rounds" in text
    assert ("onnxruntime is missing" in text) != peers.peer_available("onnxruntime")
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
    text = report.format_table(_hand_report({"dense_3x3": 2.0}, other_load=0.45))
    assert _table_rows_line(text, "dense_3x3").endswith("busy 45%")
    assert "other processes used N% of the CPUs" in text


def test_format_table_flags_rows_whose_rounds_spread():
    # torch 200 us with an IQR of 80 us: 40 % spread
    text = report.format_table(_hand_report({"dense_3x3": 2.0}, torch_iqr_us=80.0))
    assert _table_rows_line(text, "dense_3x3").endswith("spread 40%")
    assert "interquartile range was N% of the median" in text


def test_geometric_mean():
    assert report.geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert report.geometric_mean([None, 3.0]) == pytest.approx(3.0)
    assert report.geometric_mean([]) is None

