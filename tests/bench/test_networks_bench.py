"""``gconv bench --networks`` (gconv/bench/network_bench.py): a tiny network registered for
the test, timed end to end in torch, convert and the installed peers (in their processes),
the table, the JSON, the plot, a missing peer's reason, the usage errors. Speed is never
checked here."""
import json

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from gconv import _cli  # noqa: E402
from gconv._console import have_matplotlib  # noqa: E402
from gconv.bench import networks, peers  # noqa: E402

TINY = ["--batches", "1", "--threads", "1", "--quick", "--repeat", "2", "--min-time", "0.001",
        "--no-progress"]
POOLED = [p for p in ("onnxruntime", "openvino") if peers.peer_available(p)]


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
                                  nn.ReLU6(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                                  nn.BatchNorm2d(8))
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        y = self.body(x)
        return self.head(torch.relu(y + y.mean()).mean([2, 3]))


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(networks.NETWORKS, "tiny", (Tiny, (3, 12, 12), (3, 12, 12)))


def test_networks_bench_times_every_library(tiny, tmp_path, capsys):
    out_json = tmp_path / "n.json"
    args = ["bench", "--networks", "tiny", *TINY, "--json", str(out_json)]
    if have_matplotlib():
        args += ["--plot", str(tmp_path / "n.png")]
    assert _cli.main(args) == 0
    out = capsys.readouterr().out
    assert "convert vs best peer" in out and "tiny" in out
    report = json.loads(out_json.read_text())
    (row,) = report["results"]
    assert set(row["results"]) == {"torch", "convert", *POOLED}
    assert row["outputs_match"] and row["batch"] == 1 and row["threads"] == 1
    assert row["fused"]["conv"] == 2 and row["fused"]["batchnorm"] == 2
    assert row["convert_s"] > 0 and row["first_call_ms"] > 0
    assert report["settings"]["kind"] == "networks"
    if POOLED:
        assert row["fastest_peer"] in POOLED
    if have_matplotlib():
        assert (tmp_path / "n.png").stat().st_size > 0


def test_a_missing_peer_is_skipped_with_its_reason(tiny, monkeypatch, capsys, tmp_path):
    real = peers.peer_available
    monkeypatch.setattr(peers, "peer_available",
                        lambda name: False if name == "openvino" else real(name))
    out_json = tmp_path / "n.json"
    assert _cli.main(["bench", "--networks", "tiny", *TINY, "--peers", "openvino",
                      "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "openvino skipped: not installed: pip install openvino" in out
    (row,) = json.loads(out_json.read_text())["results"]
    assert set(row["results"]) == {"torch", "convert"}


@pytest.mark.parametrize("args, message", [
    (["--networks", "nonet"], "unknown network"),
    (["--networks", "tiny", "--sweep", "3"], "exclude each other"),
    (["--batches", "2"], "--batches goes with --networks"),
    (["--networks", "tiny", "--peers", "caffe"], "unknown peer"),
])
def test_usage_errors(tiny, args, message, capsys):
    with pytest.raises(SystemExit) as e:
        _cli.main(["bench", *args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_every_network_builds_and_runs_at_its_small_size():
    for name in networks.NETWORKS:
        assert networks.input_shape(name, 8) == (8,) + networks.NETWORKS[name][1]
    model = networks.build("shufflenet_v2")
    bn = model.conv1[1]
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    with torch.inference_mode():
        assert model(networks.example_input("shufflenet_v2", 1, small=True)).shape == (1, 1000)
    with pytest.raises(KeyError, match="unknown network"):
        networks.build("alexnet")
