"""``gconv bench``: its options and its driver. The top-level command line (gconv/_cli.py)
imports this module only when the ``bench`` subcommand runs.

``bench`` times the bench layers (gconv/bench/layers.py) in gconv and in the peer libraries
that are installed (torch, onnxruntime, OpenVINO; gconv/bench/peers.py), interleaving the
libraries within each round so that the machine's drifts hit them alike
(gconv/bench/timing.py), and reports medians (gconv/bench/report.py, plot.py).
onnxruntime and OpenVINO run in processes of their own (gconv/bench/peer_process.py).
Instead of the catalogue it times ``--sweep N`` random layers (gconv/bench/sweep.py) or
the convolutions of a user's model (``--model module:function``, gconv/bench/model.py).
"""
import argparse
import json
import sys
import time

import numpy as np

import gconv

from .._console import ProgressBar, have_matplotlib, positive_int
from . import peers as _peers
from .layers import BY_NAME, select_layers
from .machine import OtherLoad, machine_info, measure_fma_peak
from .peer_process import peer_processes
from .plot import write_plot
from .report import format_table, geometric_mean, model_totals, sweep_summary
from .sweep import FAMILIES, draw
from .timing import mode_settings, sample_stats, time_interleaved
from .training_bench import (TRAINING_CASES, format_training_table, run_training,
                             write_training_plot)

# Per-mode timing settings (gconv/bench/timing.py says what samples and rounds are).
# budget_s caps the rounds of one (layer, threads) pair, so slow kernels cannot make a run
# take minutes (at least timing.MIN_ROUNDS rounds are always taken).
MODES = {
    "quick": dict(rounds=5, min_sample_s=0.002, budget_s=0.4, peak_iters=5_000_000),
    "full": dict(rounds=15, min_sample_s=0.01, budget_s=4.0, peak_iters=20_000_000),
}
# A timed output must match the peer's: K <= 1200 here, fp32 sums of O(1) terms.
MATCH_RTOL, MATCH_ATOL = 1e-3, 1e-4


def parse_int_list(text, what):
    """'1,2' -> [1, 2] (positive, unique, in order)."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            n = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be comma-separated integers, "
                                             f"got {text!r}") from None
        if n <= 0:
            raise argparse.ArgumentTypeError(f"{what} must be positive, got {n}")
        if n not in out:
            out.append(n)
    if not out:
        raise argparse.ArgumentTypeError(f"{what} is empty")
    return out


def _make_runners(layer, inputs, threads, peers, processes, gconv_run):
    """{library: runner} for one layer; processes: {peer: PeerProcess} of the peers that
    run in a child process (the others run in this one)."""
    runners, errors = {"gconv": gconv_run}, {}
    for name in peers:
        try:
            if name in processes:
                runners[name] = processes[name].runner(layer, inputs, threads)
            else:
                runners[name] = _peers.make_runner(name, layer, inputs, threads)
        except Exception as e:               # a peer that cannot run a layer: say so, go on
            errors[name] = f"{type(e).__name__}: {e}"
    return runners, errors


def _check_outputs(runners, errors):
    """{peer: max abs difference from gconv}, and whether all match. A peer that fails
    here is dropped from ``runners`` and its error kept in ``errors``."""
    y = np.asarray(runners["gconv"]())
    diffs, ok = {}, True
    for name, fn in list(runners.items()):
        if name == "gconv":
            continue
        try:
            ref = fn()
        except Exception as e:
            errors[name] = f"{type(e).__name__}: {e}"
            del runners[name]
            continue
        ref = ref.numpy() if hasattr(ref, "numpy") else np.asarray(ref)
        same_shape = y.shape == ref.shape
        diffs[name] = float(np.abs(y - ref).max()) if same_shape else float("inf")
        ok = ok and same_shape and bool(np.allclose(y, ref, MATCH_RTOL, MATCH_ATOL))
    return diffs, ok


def _refused_row(layer, threads, error):
    """The row of a layer gconv refuses (a model's convolution it cannot run): no times,
    the error; the run goes on."""
    try:
        mflop = layer.mflop
    except ValueError:
        mflop = None
    return {"layer": layer.name, "description": layer.description, "shape": layer.shape_text,
            "problem": None, "algorithm": None, "threads": threads, "mflop": mflop,
            "times": {}, "ratios": {}, "gflops": None, "pct_peak": None, "max_abs_diff": {},
            "outputs_match": True, "errors": {"gconv": error}, "other_load": None,
            "refused": error, **layer.report_fields()}


def _bench_row(layer, threads, peers, processes, settings, peak):
    """Check and time one layer at one thread count: one row of the report."""
    inputs = layer.make_inputs()
    try:
        gconv_run = _peers.gconv_runner(layer, inputs)
    except Exception as e:                   # gconv refuses the layer: say so, go on
        return _refused_row(layer, threads, f"{type(e).__name__}: {e}")
    runners, errors = _make_runners(layer, inputs, threads, peers, processes, gconv_run)
    diffs, match = _check_outputs(runners, errors)
    with OtherLoad(own_pids=[p.pid for p in processes.values()]) as load:
        samples = time_interleaved(runners, settings["rounds"], settings["min_sample_s"],
                                   settings["budget_s"])
    times = {name: sample_stats(s) for name, s in samples.items()}
    g_us = times["gconv"]["median_us"]
    gflops = layer.flops / (g_us * 1e-6) / 1e9
    return {
        "layer": layer.name,
        "description": layer.description,
        "shape": layer.shape_text,
        "problem": str(layer.problem()),
        "algorithm": layer.algorithm(),
        "threads": threads,
        "mflop": layer.mflop,
        "times": times,
        "ratios": {name: times[name]["median_us"] / g_us for name in times if name != "gconv"},
        "gflops": gflops,
        "pct_peak": 100.0 * gflops / (peak * threads) if peak else None,
        "max_abs_diff": diffs,
        "outputs_match": match,
        "errors": errors,
        "other_load": load.fraction,
        **layer.report_fields(),
    }


def run_bench(layers, thread_counts, peers, mode, rounds=None, min_sample_s=None,
              progress=None, source=None):
    """Time every (layer, threads) pair; returns the report dict --json writes.

    source: what the layers are when they are not the catalogue's, kept in the settings:
    {"kind": "sweep", ...} adds the sweep's summary ("sweep_summary"), {"kind": "model", ...}
    the model's convolution time per library ("model_total")."""
    settings = mode_settings(MODES, mode, rounds, min_sample_s)
    machine = machine_info(peers, settings["peak_iters"])
    peak = machine["fma_peak_gflops_per_core"]
    results = []
    total, done = len(layers) * len(thread_counts), 0
    with peer_processes([p for p in peers if p in _peers.POOLED_PEERS]) as processes:
        for threads in thread_counts:
            with _peers.PeerThreads(threads, peers):
                for layer in layers:
                    if progress:
                        progress(done, total, f"{layer.name} @ {threads} thread(s)")
                    results.append(_bench_row(layer, threads, peers, processes, settings,
                                              peak))
                    done += 1
    if progress:
        progress(done, total, "done")
    # measured again at the end, the better of the two: a slow phase at the start alone
    # would otherwise skew every row's "% peak"
    if peak:
        peak = max(peak, measure_fma_peak(settings["peak_iters"]))
        machine["fma_peak_gflops_per_core"] = peak
        for r in results:
            if r["gflops"] is not None:
                r["pct_peak"] = 100.0 * r["gflops"] / (peak * r["threads"])
    geomean = {}
    for threads in thread_counts:
        rows = [r for r in results if r["threads"] == threads]
        geomean[str(threads)] = {name: geometric_mean([r["ratios"].get(name) for r in rows])
                                 for name in peers}
    report = {"machine": machine,
              "settings": {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "mode": mode,
                           "threads": thread_counts, "peers": list(peers),
                           "gconv_api": "gconv.Conv2d layer (weights packed once; torch: F.conv2d)", **settings},
              "results": results,
              "geomean_ratio": geomean}
    if source is not None:
        report["settings"]["source"] = source
        if source["kind"] == "sweep":
            report["sweep_summary"] = sweep_summary(results, thread_counts, peers)
        elif source["kind"] == "model":
            report["model_total"] = model_totals(results, thread_counts, peers)
    return report



DESCRIPTION = ("Time real network layers (see gconv/bench/layers.py) in gconv and in the "
               "installed peers (torch, onnxruntime, openvino), at 1 and N threads, "
               "libraries interleaved within each round; print medians, ratios, "
               "GFLOP/s and % of the measured FMA peak. --sweep N times N random layers "
               "drawn from families of real-network convolutions instead "
               "(gconv/bench/sweep.py); --model the convolutions of your own torch model. "
               "Exit status 1 if an output does not match the peers'.")


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}"
                                         ) from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {n}")
    return n


def add_arguments(b):
    """Give the ``bench`` subparser ``b`` (made by gconv/_cli.py) its description, options
    and command."""
    b.description = DESCRIPTION
    b.add_argument("--layers", metavar="A,B", help="comma-separated layer names (default: "
                   "all). Names: " + ", ".join(BY_NAME))
    b.add_argument("--sweep", metavar="N", type=positive_int,
                   help="time N random realistic layers instead, drawn from the families of "
                        "gconv/bench/sweep.py: " + ", ".join(FAMILIES))
    b.add_argument("--seed", metavar="S", type=non_negative_int,
                   help="the sweep's seed (default 0): the same N and S draw the same layers")
    b.add_argument("--model", metavar="MODULE:FUNCTION",
                   help="time every convolution of your torch model: FUNCTION (in MODULE, or "
                        "in a file path/to/file.py) returns (model, example_input); prints a "
                        "row per distinct shape and the model's total convolution time per "
                        "library. Example: bench/models/tiny_mobilenet.py:make")
    b.add_argument("--networks", metavar="A,B", nargs="?", const="all",
                   help="time whole networks end to end instead (gconv/bench/networks.py, "
                        "needs torch): torch eager, gconv.torch.convert, onnxruntime and "
                        "OpenVINO (from torch.onnx.export), at --batches and --threads. "
                        "Names (default all): mobilenet_v2, mobilenet_v3_large, "
                        "efficientnet_b0, resnext50_32x4d, regnet_y_400mf, convnext_tiny, "
                        "shufflenet_v2, tcn1d")
    b.add_argument("--training", metavar="A,B", nargs="?", const="all",
                   help="time transposed convolutions and the gradients of convolutions "
                        "instead (gconv/bench/training_bench.py, needs torch): gconv against "
                        "torch (and onnxruntime's ConvTranspose), plus one training step "
                        "(train_step) of MobileNetV2 with and without gconv.torch.convert. "
                        "Names (default all): train_step, " + ", ".join(TRAINING_CASES))
    b.add_argument("--batches", metavar="1,8", type=lambda s: parse_int_list(s, "--batches"),
                   help="batch sizes for --networks (default 1,8)")
    b.add_argument("--threads", metavar="1,2", type=lambda s: parse_int_list(s, "--threads"),
                   help="comma-separated thread counts (default: 1 and gconv.get_num_threads())")
    b.add_argument("--repeat", metavar="R", type=positive_int,
                   help=f"rounds per layer and thread count (default {MODES['full']['rounds']}, "
                        f"{MODES['quick']['rounds']} with --quick)")
    b.add_argument("--quick", action="store_true",
                   help="shorter samples and fewer rounds: a rough table in seconds")
    b.add_argument("--peers", metavar="LIST",
                   help="peers to time: comma-separated from torch,onnxruntime,openvino, or "
                        "'none' (default: every one installed)")
    b.add_argument("--json", metavar="FILE", help="write every number and the machine info")
    b.add_argument("--plot", metavar="FILE", help="bar chart of the ratios (needs matplotlib)")
    b.add_argument("--min-time", metavar="SECONDS", type=float, default=None,
                   help=argparse.SUPPRESS)     # per-sample minimum; tests shorten it
    b.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help=argparse.SUPPRESS)     # force the bar on (default: only on a terminal)
    b.add_argument("--no-progress", dest="progress", action="store_false",
                   help=argparse.SUPPRESS)
    b.set_defaults(func=cmd_bench)


def _chosen(args):
    """The options given that choose what to time (they exclude each other)."""
    return [o for o, v in (("--layers", args.layers), ("--sweep", args.sweep),
                           ("--model", args.model), ("--networks", args.networks),
                           ("--training", args.training)) if v is not None]


def _names(text, catalogue, what, parser):
    """The names of --networks / --training: "all" (the option alone) or A,B from the
    catalogue."""
    if text == "all":
        return list(catalogue)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in catalogue]
    if unknown or not names:
        parser.error(f"unknown {what} {', '.join(unknown) or '(none)'}: choose from "
                     f"{', '.join(catalogue)}")
    return names


def _pooled_peers(args, parser, allowed):
    """--peers for --networks / --training: the ``allowed`` pooled peers (default all of
    them); torch is always timed there, 'none' times no other."""
    if args.peers is None:
        return list(allowed)
    peers = [p.strip() for p in args.peers.split(",")
             if p.strip() and p.strip() not in ("none", "torch")]
    for p in peers:
        if p not in allowed:
            parser.error(f"unknown peer {p!r}: choose from {', '.join(allowed)}, 'none'")
    return peers


def _with_bar(args, total, label, run, **kwargs):
    """run(..., mode, rounds, min_sample_s, progress) under the progress bar."""
    bar = ProgressBar(total, label, enabled=args.progress)
    try:
        return run(mode="quick" if args.quick else "full", rounds=args.repeat,
                   min_sample_s=args.min_time, progress=bar.update, **kwargs)
    finally:
        bar.close()


def _layers_to_time(args, parser):
    """(layers, source) of --layers (the catalogue; source None), --sweep or --model;
    ``parser`` reports what is wrong with them."""
    chosen = _chosen(args)
    if len(chosen) > 1:
        parser.error(f"{' and '.join(chosen)} exclude each other: time the catalogue's "
                     "layers, a sweep or a model")
    if args.seed is not None and args.sweep is None:
        parser.error("--seed goes with --sweep N")
    if args.sweep is not None:
        seed = args.seed or 0
        return draw(args.sweep, seed), {"kind": "sweep", "count": args.sweep, "seed": seed,
                                         "families": list(FAMILIES)}
    if args.model is not None:
        from .model import ModelError, load_layers
        try:
            return load_layers(args.model)
        except ModelError as e:
            parser.error(str(e))
    try:
        return select_layers(args.layers), None
    except ValueError as e:
        parser.error(str(e))


def cmd_bench(args, parser):
    """Run ``gconv bench``: print the table, write --json and --plot; exit status 1 on a
    mismatch (``parser`` reports usage errors)."""
    if args.batches is not None and args.networks is None:
        parser.error("--batches goes with --networks")
    chosen = _chosen(args)
    for mode, command in (("--networks", cmd_networks), ("--training", cmd_training)):
        if mode in chosen:
            if len(chosen) > 1:
                parser.error(f"{mode} and {' and '.join(o for o in chosen if o != mode)} "
                             "exclude each other")
            return command(args, parser)
    layers, source = _layers_to_time(args, parser)
    threads = args.threads or list(dict.fromkeys([1, gconv.get_num_threads()]))
    if args.peers is None:
        peers = [p for p in _peers.PEERS if _peers.peer_available(p)]
    else:
        peers = [] if args.peers.strip() in ("", "none") else \
            [p.strip() for p in args.peers.split(",") if p.strip()]
        for p in peers:
            if p not in _peers.PEERS:
                parser.error(f"unknown peer {p!r}: choose from {', '.join(_peers.PEERS)} "
                             f"or 'none'")
            if not _peers.peer_available(p):
                parser.error(f"peer {p!r} is not installed: {_peers.INSTALL_HINT[p]}")
    if _plot_unavailable(args):
        return 2
    report = _with_bar(args, len(layers) * len(threads), "bench", run_bench, layers=layers,
                       thread_counts=threads, peers=peers, source=source)
    return _print_and_write(report, args, format_table, write_plot)


def _plot_unavailable(args):
    """True (and says so) when --plot is asked for without matplotlib."""
    if args.plot and not have_matplotlib():
        print("gconv bench: --plot needs matplotlib, which is not installed: "
              "pip install matplotlib", file=sys.stderr)
        return True
    return False


def cmd_training(args, parser):
    """``gconv bench --training``: transposed and backward layers and a training step
    (gconv/bench/training_bench.py)."""
    if not _peers.peer_available("torch"):
        parser.error(f"--training needs torch: {_peers.INSTALL_HINT['torch']}")
    names = _names(args.training, [*TRAINING_CASES, "train_step"], "training case(s)",
                   parser)
    threads = args.threads or [1, 2]
    peers = _pooled_peers(args, parser, ("onnxruntime",))
    if _plot_unavailable(args):
        return 2
    cases = [n for n in names if n != "train_step"]
    report = _with_bar(args, len(names) * len(threads), "training", run_training,
                       names=cases, thread_counts=threads, peers=peers,
                       step="train_step" in names)
    return _print_and_write(report, args, format_training_table, write_training_plot)


def cmd_networks(args, parser):
    """``gconv bench --networks``: whole networks (gconv/bench/network_bench.py)."""
    if not _peers.peer_available("torch"):
        parser.error(f"--networks needs torch: {_peers.INSTALL_HINT['torch']}")
    from . import networks as _networks
    from .network_bench import format_networks_table, run_networks, write_networks_plot
    names = _names(args.networks, _networks.NETWORKS, "network(s)", parser)
    batches = args.batches or [1, 8]
    threads = args.threads or [1, 2]
    peers = _pooled_peers(args, parser, ("onnxruntime", "openvino"))
    if _plot_unavailable(args):
        return 2
    report = _with_bar(args, len(names) * len(batches) * len(threads), "networks",
                       run_networks, names=names, batches=batches, thread_counts=threads,
                       peers=peers)
    return _print_and_write(report, args, format_networks_table, write_networks_plot)


def _print_and_write(report, args, format_report, write_plot_file):
    """Print a report's table, write its JSON and plot where asked; the exit status: 0 when
    every timed output matched the peers', else 1."""
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        write_plot_file(report, args.plot)
        print(f"wrote {args.plot}")
    return 0 if all(r["outputs_match"] for r in report["results"]) else 1
