"""pytest-benchmark suite of real network layers: gconv against torch (onnxruntime, OpenVINO).

Run from the repository root (see test_bench_layers.py for the full command):

    python -m pytest bench/ --benchmark-only --benchmark-group-by=group \
        --benchmark-columns=median,iqr,rounds

Selecting what runs (an option, or the environment variable beside it):
    --bench-layers=a,b    GCONV_BENCH_LAYERS   layer names (gconv/bench/layers.py; default all)
    --bench-threads=1,2   GCONV_BENCH_THREADS  thread counts (default 1 and 2)
    --bench-peers=LIST    GCONV_BENCH_PEERS    from torch,onnxruntime,openvino, or none
                                               (default: every one installed)

bench/ is not collected by the main `pytest` run (pyproject's testpaths is ["tests"]).
"""
import os

import pytest

from gconv.bench import peers
from gconv.bench.layers import select_layers


def pytest_addoption(parser):
    group = parser.getgroup("gconv bench")
    group.addoption("--bench-layers", default=None,
                    help="comma-separated bench layer names (env GCONV_BENCH_LAYERS; "
                         "default: all)")
    group.addoption("--bench-threads", default=None,
                    help="comma-separated thread counts (env GCONV_BENCH_THREADS; default 1,2)")
    group.addoption("--bench-peers", default=None,
                    help="torch,onnxruntime,openvino or none (env GCONV_BENCH_PEERS; default: "
                         "every installed peer)")


def _setting(config, option, env, default):
    value = config.getoption(option)
    if value is None:
        value = os.environ.get(env)
    return default if value is None else value


def _int_list(text, what):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise pytest.UsageError(f"{what} must be comma-separated integers, got {text!r}")
    if not values or min(values) <= 0:
        raise pytest.UsageError(f"{what} must be positive integers, got {text!r}")
    return list(dict.fromkeys(values))


def _peers(config):
    text = _setting(config, "--bench-peers", "GCONV_BENCH_PEERS", None)
    if text is None:
        return [p for p in peers.PEERS if peers.peer_available(p)]
    if text.strip() == "none":
        return []
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in peers.PEERS]
    if unknown:
        raise pytest.UsageError(f"unknown peer(s) {unknown}; choose from {peers.PEERS}")
    return names


def pytest_generate_tests(metafunc):
    config = metafunc.config
    if "layer" in metafunc.fixturenames:
        try:
            layers = select_layers(
                _setting(config, "--bench-layers", "GCONV_BENCH_LAYERS", None))
        except ValueError as e:
            raise pytest.UsageError(str(e))
        metafunc.parametrize("layer", layers, ids=[layer.name for layer in layers])
    if "threads" in metafunc.fixturenames:
        threads = _int_list(_setting(config, "--bench-threads", "GCONV_BENCH_THREADS", "1,2"),
                            "--bench-threads")
        metafunc.parametrize("threads", threads, ids=[f"{t}t" for t in threads])
    if "library" in metafunc.fixturenames:
        # gconv always; a selected peer that is not installed shows up as a skip saying so
        metafunc.parametrize("library", ["gconv", *_peers(config)])


@pytest.fixture(scope="session")
def fma_peak_gflops():
    """Measured FMA peak of one core for the ISA gconv uses (None for 'generic'):
    measured once per session, ~0.4 s, as `gconv bench` does (gconv/bench/machine.py)."""
    from gconv.bench.machine import measure_fma_peak
    return measure_fma_peak(20_000_000) or None


_inputs_cache = {}
_expected_cache = {}


@pytest.fixture
def layer_inputs(layer):
    """(x, weight, bias) of ``layer``, made once per session."""
    if layer.name not in _inputs_cache:
        _inputs_cache.clear()       # the suite runs layer by layer: keep one layer's arrays
        _inputs_cache[layer.name] = layer.make_inputs()
    return _inputs_cache[layer.name]


@pytest.fixture
def expected_output(layer, layer_inputs):
    """torch's output for the layer (None without torch): every library's timed output
    is checked against it, so a benchmark never times a wrong answer."""
    if not peers.peer_available("torch"):
        return None
    if layer.name not in _expected_cache:
        _expected_cache.clear()
        _expected_cache[layer.name] = peers.torch_runner(layer, layer_inputs)().numpy()
    return _expected_cache[layer.name]
