"""``gconv bench --networks``: whole networks (gconv/bench/networks.py) end to end, at each
batch size and thread count, in torch eager, gconv.torch.convert (fused), onnxruntime and
OpenVINO (both from a torch.onnx.export of the same model; skipped with the reason when not
installed).

torch and the converted model run in the bench's process; onnxruntime and OpenVINO in a
child process each (gconv/bench/peer_process.py), frozen while another library is timed,
as the layer bench does. The libraries are interleaved within each round
(gconv/bench/timing.py). Every output is checked against torch's (NETWORK_RTOL of the
output's largest magnitude).
"""
import os
import tempfile
import time
import warnings

import numpy as np

from . import peers as _peers
from .ms_rows import (aligned, check_against_torch, ms_report, onnxruntime_session_runner,
                      ratio_plot, row_notes, time_row)
from .peer_process import peer_processes
from .timing import mode_settings

LIBRARIES = ("torch", "convert", "onnxruntime", "openvino")
# |library - torch| <= NETWORK_RTOL * max |torch|, float32 through a whole network
NETWORK_RTOL = 1e-3
MODES = {
    "quick": dict(rounds=3, min_sample_s=0.05, budget_s=2.0),
    "full": dict(rounds=9, min_sample_s=0.3, budget_s=20.0),
}


class NetworkCase:
    """One (network, batch) to time: picklable, so a peer's child process can build its
    session from the exported ONNX file (peers.make_runner hands it this object)."""

    def __init__(self, name, batch, onnx_path):
        self.name, self.batch, self.onnx_path = name, batch, onnx_path

    def network_runner(self, library, inputs, threads):
        (x,) = inputs
        if library == "onnxruntime":      # export_onnx names the input "x"
            return onnxruntime_session_runner(self.onnx_path, {"x": x}, threads)
        if library == "openvino":
            import openvino as ov
            core = ov.Core()
            return _peers.openvino_model_runner(core, core.read_model(self.onnx_path), x,
                                                threads)
        raise ValueError(f"{library!r} runs in the bench's process, not in a peer's")


def export_onnx(model, x, path):
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), path, opset_version=17, dynamo=False,
                          input_names=["x"], output_names=["y"])


def _bench_case(name, model, batch, threads, peers, processes, settings, workdir):
    import torch
    import gconv.torch as gtorch
    from . import networks
    x = networks.example_input(name, batch)
    row = dict(network=name, batch=batch, threads=threads, input_shape=list(x.shape),
               results={}, errors={}, skipped={})
    t0 = time.perf_counter()
    converted = gtorch.convert(model)
    row["convert_s"] = time.perf_counter() - t0
    with torch.inference_mode():
        t0 = time.perf_counter()
        converted(x)
        row["first_call_ms"] = (time.perf_counter() - t0) * 1e3
    report = converted.gconv_report
    row["fused"] = dict(report.counts())
    row["regions"] = len(report.regions)
    row["torch_ops"] = dict(report.torch_ops)

    def inference(fn):
        def run():
            with torch.inference_mode():
                return fn(x)
        return run

    runners = {"torch": inference(model), "convert": inference(converted)}
    onnx_path = None
    for peer in ("onnxruntime", "openvino"):
        if peer not in peers:
            continue
        if peer not in processes:
            row["skipped"][peer] = "not installed: " + _peers.INSTALL_HINT[peer]
            continue
        try:
            if onnx_path is None:
                onnx_path = os.path.join(workdir, f"{name}_b{batch}.onnx")
                if not os.path.exists(onnx_path):
                    export_onnx(model, x, onnx_path)
            case = NetworkCase(name, batch, onnx_path)
            runners[peer] = processes[peer].runner(case, (x.numpy(),), threads)
        except Exception as e:          # noqa: BLE001 - reported in the row, bench goes on
            row["errors"][peer] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    check_against_torch(row, runners, NETWORK_RTOL)
    time_row(row, runners, settings, "convert", "convert_vs")
    peers_timed = [p for p in ("onnxruntime", "openvino") if p in row["results"]]
    row["fastest_peer"] = (min(peers_timed, key=lambda p: row["results"][p]["median_ms"])
                           if peers_timed else None)
    return row


def run_networks(names, batches, thread_counts, peers, mode="full", rounds=None,
                 min_sample_s=None, progress=None):
    """Time every (network, batch, threads); returns the report dict (--json writes it)."""
    from . import networks
    settings = mode_settings(MODES, mode, rounds, min_sample_s)
    installed = [p for p in peers if _peers.peer_available(p)]
    results = []
    total, done = len(names) * len(batches) * len(thread_counts), 0
    with peer_processes([p for p in installed if p in _peers.POOLED_PEERS]) as processes, \
            tempfile.TemporaryDirectory(prefix="gconv-networks-") as workdir:
        for name in names:
            model = networks.build(name)
            for batch in batches:
                for threads in thread_counts:
                    if progress:
                        progress(done, total, f"{name} b{batch} @ {threads} thread(s)")
                    with _peers.PeerThreads(threads, ("torch",)):
                        results.append(_bench_case(name, model, batch, threads, peers,
                                                   processes, settings, workdir))
                    done += 1
    if progress:
        progress(done, total, "done")
    return ms_report("networks", mode, settings, thread_counts, peers, installed, results,
                     networks=list(names), batches=list(batches))


def format_networks_table(report):
    libs = [lib for lib in LIBRARIES
            if any(lib in r["results"] for r in report["results"])]
    head = (["network", "batch", "thr"] + [f"{lib} ms" for lib in libs]
            + ["convert vs best peer", "convert s", "1st call ms"])
    rows = [head]
    notes = []
    for r in report["results"]:
        cells = [r["network"], str(r["batch"]), str(r["threads"])]
        for lib in libs:
            res = r["results"].get(lib)
            cells.append("-" if res is None else f"{res['median_ms']:.2f}")
        fp = r.get("fastest_peer")
        cells.append(f"{r['convert_vs'][fp]:.2f}x ({fp})" if fp else "-")
        cells.append(f"{r['convert_s']:.2f}")
        cells.append(f"{r['first_call_ms']:.1f}")
        rows.append(cells)
        notes += row_notes(r, f"{r['network']} b{r['batch']} t{r['threads']}")
    lines = aligned(rows, 1)
    lines.append("medians over rounds; 'convert vs best peer' > 1 means convert is faster "
                 "than the faster of onnxruntime / OpenVINO; 1st call: right after convert "
                 "(packs the weights)")
    return "\n".join(lines + sorted(set(notes)))


def write_networks_plot(report, path):
    rows = report["results"]
    others = [lib for lib in ("torch", "onnxruntime", "openvino")
              if any(lib in r["convert_vs"] for r in rows)]
    ratio_plot(path, [f"{r['network']}\nb{r['batch']} t{r['threads']}" for r in rows],
               {f"vs {lib}": [r["convert_vs"].get(lib, np.nan) for r in rows]
                for lib in others},
               "speed-up of gconv.torch.convert (x)",
               f"Whole networks, medians ({report['machine'].get('cpu', '')})")
