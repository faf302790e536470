"""``gconv bench --training`` (gconv/bench/training_bench.py): small cases registered for the
test (an input gradient, a weight gradient, transposed convolutions in 1-D and 2-D, with
onnxruntime where installed) and a small training step, the table, the JSON, a wrong result
flagged, the usage errors. Speed is never checked here."""
import json

import numpy as np
import pytest

pytest.importorskip("torch")

from gconv import _cli  # noqa: E402
from gconv.bench import peers, training_bench  # noqa: E402
from gconv.bench.training_bench import GradCase  # noqa: E402

TINY = ["--threads", "1", "--quick", "--repeat", "2", "--min-time", "0.001", "--no-progress"]
SMALL = {c.name: c for c in [
    GradCase("t_igrad", "input_grad", (2, 8, 9, 7), (8, 2, 3, 3), 2, 1, 4),
    GradCase("t_wgrad", "weight_grad", (2, 6, 8, 8), (12, 1, 3, 3), 1, 1, 6,
             family="depthwise"),
    GradCase("t_convT1d", "transpose", (2, 6, 11), (6, 1, 16), 4, 0, 1, family="dense"),
    GradCase("t_convT2d", "transpose", (2, 8, 5, 6), (8, 3, 4, 4), 2, 1, 2),
]}
ORT = peers.peer_available("onnxruntime")


@pytest.fixture
def small(monkeypatch):
    for name, case in SMALL.items():
        monkeypatch.setitem(training_bench.TRAINING_CASES, name, case)
    monkeypatch.setattr(training_bench, "STEP_SHAPE", (4, 64))


def test_training_bench_times_gconv_torch_and_onnxruntime(small, tmp_path, capsys):
    out_json = tmp_path / "t.json"
    assert _cli.main(["bench", "--training", ",".join(SMALL) + ",train_step", *TINY,
                      "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "vs torch" in out and "geometric mean" in out and "t_convT2d" in out
    report = json.loads(out_json.read_text())
    assert report["settings"]["kind"] == "training"
    rows = {r["name"]: r for r in report["results"]}
    assert set(rows) == set(SMALL) | {"train_step_mobilenet_v2_b4_64"}
    for name, row in rows.items():
        assert row["outputs_match"], (name, row["max_abs_error"])
        want = {"torch", "convert" if row["op"] == "train_step" else "gconv"}
        if row["op"] == "transpose" and ORT:
            want.add("onnxruntime")
        assert set(row["results"]) == want, name
        assert all(r["median_ms"] > 0 for r in row["results"].values())
    summary = training_bench.training_summary(report)
    assert set(summary) == {1} and summary[1]["geomean_grouped_depthwise"] > 0


def test_a_wrong_gradient_is_flagged_and_exits_1(small, monkeypatch, capsys):
    real = training_bench._runners

    def wrong(case, arrays):
        runners = real(case, arrays)
        good = runners["gconv"]
        runners["gconv"] = lambda: good() * np.float32(1.001)
        return runners
    monkeypatch.setattr(training_bench, "_runners", wrong)
    assert _cli.main(["bench", "--training", "t_wgrad", *TINY]) == 1
    assert "OUTPUT MISMATCH" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--training", "nope"], "unknown training case"),
    (["--training", "--layers", "dense_3x3"], "exclude each other"),
    (["--training", "--networks"], "exclude each other"),
    (["--training", "--batches", "1"], "--batches goes with --networks"),
])
def test_training_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        _cli.main(["bench", *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
