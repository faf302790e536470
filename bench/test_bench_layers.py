"""Real network layers, timed in gconv and in torch (and onnxruntime when installed).

Run from the repository root, after `python setup.py build_ext --inplace` (or `pip install .`):

    python -m pytest bench/ --benchmark-only --benchmark-group-by=group \
        --benchmark-columns=median,iqr,rounds

Each group (one layer at one thread count, e.g. "resnext_g32_56 @ 1 thread") holds gconv
and its peers side by side. A shorter run: add `--benchmark-max-time=0.2`, or pick layers
with `GCONV_BENCH_LAYERS=dense_3x3,resnext_g32_56` (see conftest.py for every option).
`python -m gconv bench` prints the same comparison as one table with ratios.

The layers and their shapes live in gconv/bench/layers.py (shared with the command line).
Each benchmark's extra_info holds GFLOP/s, % of the measured FMA peak (per-core peak x
threads), the problem descriptor and gconv's kernel path.
"""
import numpy as np
import pytest

from gconv.bench import peers

# every library's output is checked against torch's once, after timing
RTOL, ATOL = 1e-3, 1e-4


def test_conv2d(benchmark, layer, threads, library, layer_inputs, expected_output,
                fma_peak_gflops):
    if library != "gconv" and not peers.peer_available(library):
        pytest.skip(f"{library} is not installed")
    problem = layer.problem()
    benchmark.group = f"{layer.name} @ {threads} thread{'s' if threads > 1 else ''}"
    benchmark.name = f"{layer.name}-{threads}t-{library}"
    with peers.PeerThreads(threads, [library] if library == "torch" else []):
        run = peers.make_runner(library, layer, layer_inputs, threads)
        run()                                         # plans, packing, session warm-up
        output = benchmark(run)

    if benchmark.stats is not None:     # None under --benchmark-disable: one untimed call
        median_s = benchmark.stats.stats.median
        gflops = problem.flops / median_s / 1e9
        benchmark.extra_info.update({
            "library": library,
            "threads": threads,
            "problem": str(problem),
            "shape": layer.shape_text,
            "mflop": round(layer.mflop, 2),
            "gflops": round(gflops, 2),
            "pct_of_fma_peak": (round(100 * gflops / (fma_peak_gflops * threads), 1)
                                if fma_peak_gflops else None),
            "algorithm": layer.algorithm() if library == "gconv" else library,
        })
    if expected_output is not None:
        got = output.numpy() if hasattr(output, "numpy") else np.asarray(output)
        np.testing.assert_allclose(got, expected_output, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{library} on {layer.name} ({problem})")
