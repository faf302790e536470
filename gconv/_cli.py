"""``python -m gconv`` / the ``gconv`` console script.

    gconv bench [--layers a,b] [--threads 1,2] [--repeat R] [--json FILE] [--plot FILE] [--quick]
    gconv explain IN OUT [--groups G] [--kernel-size K] ... [--plot FILE]
    gconv check [--cases N] [--seed S]

``bench`` times the bench layers (gconv/_layers.py) in gconv and in the peer libraries that
are installed (torch, onnxruntime, OpenVINO), interleaving the libraries within each round
so that the machine's drifts hit them alike, and reports medians. onnxruntime and OpenVINO
run in processes of their own (gconv/_peer_process.py). ``explain`` and ``check``
live in gconv/_explain.py and gconv/_check.py, imported only when those subcommands run.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

from ._peer_process import POOLED_PEERS, PeerProcess, process_cpu_seconds

# Per-mode timing settings. A "sample" is one timed loop of back-to-back calls of one
# library, long enough (min_sample_s) that the timer's resolution and one-off hiccups
# vanish; a "round" is one sample of every library; the median over rounds is reported.
# budget_s caps the rounds of one (layer, threads) pair, so slow kernels cannot make a run
# take minutes (at least MIN_ROUNDS rounds are always taken).
MODES = {
    "quick": dict(rounds=5, min_sample_s=0.002, budget_s=0.4, peak_iters=5_000_000),
    "full": dict(rounds=15, min_sample_s=0.01, budget_s=4.0, peak_iters=20_000_000),
}
MIN_ROUNDS = 3
# A timed output must match the peer's: K <= 1200 here, fp32 sums of O(1) terms.
MATCH_RTOL, MATCH_ATOL = 1e-3, 1e-4
# Rows during which other processes used more than this share of the CPUs get flagged.
BUSY_FRACTION = 0.2
# ... and rows whose rounds spread (IQR / median, worst library) more than this.
NOISY_SPREAD = 0.25
PEER_SHORT = {"torch": "torch", "onnxruntime": "ort", "openvino": "ov"}
INSTALL_HINT = {"torch": "pip install torch==2.13.0",
                "onnxruntime": "pip install onnxruntime onnx",
                "openvino": "pip install openvino"}


# ---------------------------------------------------------------------------------------
# small helpers

class ProgressBar:
    """A one-line progress bar redrawn in place (on a terminal only, unless forced)."""

    def __init__(self, total, label="", stream=None, enabled=None, width=30):
        self.total, self.label, self.width = max(int(total), 1), label, width
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = enabled
        self._shown = False

    def update(self, done, total=None, text=""):
        if total is not None:
            self.total = max(int(total), 1)
        if not self.enabled:
            return
        frac = min(max(done / self.total, 0.0), 1.0)
        filled = int(round(frac * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        line = f"{self.label} [{bar}] {done}/{self.total} {text}".rstrip()
        self.stream.write("\r" + line[:119].ljust(119))
        self.stream.flush()
        self._shown = True

    def close(self):
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * 119 + "\r")
            self.stream.flush()
            self._shown = False


def geometric_mean(values):
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


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


def _positive_int(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


class OtherLoad:
    """How much of the machine other processes used while a block of code ran, from
    /proc/stat's busy time minus the CPU time of this process and of own_pids, the bench's
    peer processes (Linux; None elsewhere). On a shared machine a multi-thread timing is
    only meaningful when this is near 0."""

    def __init__(self, own_pids=()):
        self.own_pids = [pid for pid in own_pids if pid is not None]

    def __enter__(self):
        self.start = self._snapshot()
        return self

    def __exit__(self, *exc):
        end = self._snapshot()
        self.fraction = None
        if self.start is not None and end is not None:
            (b0, o0, t0), (b1, o1, t1) = self.start, end
            capacity = (t1 - t0) * (os.cpu_count() or 1)
            if capacity > 0:
                self.fraction = min(max(((b1 - b0) - (o1 - o0)) / capacity, 0.0), 1.0)
        return False

    def _snapshot(self):
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait
        own = os.times()
        children = sum(process_cpu_seconds(pid) or 0.0 for pid in self.own_pids)
        return busy, own.user + own.system + children, time.perf_counter()


def _cpu_model(cpuinfo="/proc/cpuinfo"):
    """The first CPU's model name with its CPUID family and model: a hypervisor may show
    only "AMD EPYC", yet family 25 model 17 (Zen 4, 512-bit FMAs in two 256-bit halves)
    has half the FMA peak of a full-width Zen 5 server core (family 26)."""
    fields = {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                if not line.strip():
                    break              # the end of the first CPU's block
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model"):
                    fields[key] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (CPUID family {fields['cpu family']}, model {fields['model']})"
    return name


# ---------------------------------------------------------------------------------------
# timing

def _time_sample(fn, n_calls):
    """Seconds per call of n_calls back-to-back calls of fn; a runner in a peer process
    (gconv/_peer_process.py) times its calls there."""
    if hasattr(fn, "time_sample"):
        return fn.time_sample(n_calls)
    t0 = time.perf_counter()
    for _ in range(n_calls):
        fn()
    return (time.perf_counter() - t0) / n_calls


# Pause before each sample (see time_interleaved). Measured at 2 threads with torch in
# the same run: gconv's ResNeXt 56x56 took 300 us after torch's samples against 206 us
# alone; the spinning lasts well under this.
SETTLE_S = 0.02


# A sample's call count comes from the fastest of this many single calls.
CALIBRATION_CALLS = 3


def _freeze_others(runners, name):
    """Stop the peer processes of all runners but `name` (see gconv/_peer_process.py)."""
    for other, fn in runners.items():
        if other != name and hasattr(fn, "pause"):
            fn.pause()


def time_interleaved(runners, rounds, min_sample_s, budget_s):
    """Per-call times (seconds) of each runner: {name: [one per round]}.

    Each runner is warmed up, then given a call count that makes one sample last at least
    min_sample_s. Each round times every runner once, starting from a different one each
    round; every sample follows a pause (SETTLE_S) and half a sample of untimed calls.
    Runners in peer processes are frozen while any other runner is timed.
    Stops after ``rounds`` rounds, or after MIN_ROUNDS once budget_s is spent."""
    names = list(runners)
    n_calls = {}
    for name in names:
        _freeze_others(runners, name)
        fn = runners[name]
        fn()                                     # first call: plans, packing, sessions
        # the fastest of a few single calls: one slow call (a core waking up, a peer's
        # pool still busy) would shrink every sample to a call or two, and a lone call
        # after the pause below reads up to 30x slow on this machine (measured)
        one = min(_time_sample(fn, 1) for _ in range(CALIBRATION_CALLS))
        n_calls[name] = max(1, min(int(min_sample_s / max(one, 1e-9)), 100_000))
    samples = {name: [] for name in names}
    start = time.perf_counter()
    for r in range(rounds):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            _freeze_others(runners, name)
            # the previous library's OpenMP workers spin-wait for a while after its last
            # call and would take cores from this one's threads: let them fall asleep
            time.sleep(SETTLE_S)
            # after the pause this machine's cores run slow for several ms (any code:
            # gconv, torch, plain C): half a sample of untimed calls first. Without them,
            # one-thread samples read 10-25 % slow for every library (mbv2_pw_project:
            # 260 against 205 us called back to back)
            _time_sample(runners[name], max(1, n_calls[name] // 2))
            samples[name].append(_time_sample(runners[name], n_calls[name]))
        if r + 1 >= MIN_ROUNDS and time.perf_counter() - start > budget_s:
            break
    for fn in runners.values():
        if hasattr(fn, "resume"):
            fn.resume()
    return samples


def _stats(samples):
    a = np.asarray(samples) * 1e6
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median_us": float(med), "iqr_us": float(q3 - q1), "min_us": float(a.min()),
            "rounds": int(a.size)}


# ---------------------------------------------------------------------------------------
# bench

def measure_fma_peak(peak_iters, trials=5):
    """This core's FMA peak (GFLOP/s) for the running ISA, 0.0 for the generic one: the best
    of a few short trials, as a shared core has slow phases (a single long trial that falls
    in one made every "% peak" of a run read high)."""
    import gconv
    from . import _isa, _kernels
    level = _isa.ISA_NAMES.index(gconv.get_isa())
    if level == 0:
        return 0.0
    return max(_kernels.fma_peak_gflops(level, max(1, peak_iters // trials))
               for _ in range(trials))


def machine_info(peers, peak_iters):
    import gconv
    isa = gconv.get_isa()
    peak = measure_fma_peak(peak_iters)
    info = {
        "cpu": _cpu_model(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gconv": gconv.__version__,
        "openmp": bool(gconv.openmp_enabled()),
        "isa": isa,
        "available_isas": gconv.available_isas(),
        "fma_peak_gflops_per_core": peak or None,
        "peers": {},
    }
    from . import _layers
    for name in peers:
        info["peers"][name] = _layers.peer_version(name)
    return info


def _make_runners(layer, inputs, threads, peers, processes):
    """{library: runner} for one layer; processes: {peer: PeerProcess} of the peers that
    run in a child process (the others run in this one)."""
    from . import _layers
    runners, errors = {"gconv": _layers.gconv_runner(layer, inputs)}, {}
    for name in peers:
        try:
            if name in processes:
                runners[name] = processes[name].runner(layer, inputs, threads)
            elif name == "torch":
                runners[name] = _layers.torch_runner(layer, inputs)
            else:
                raise ValueError(f"unknown peer {name!r}")
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


def _bench_row(layer, threads, peers, processes, settings, peak):
    """Check and time one layer at one thread count: one row of the report."""
    inputs = layer.make_inputs()
    runners, errors = _make_runners(layer, inputs, threads, peers, processes)
    diffs, match = _check_outputs(runners, errors)
    with OtherLoad(own_pids=[p.pid for p in processes.values()]) as load:
        samples = time_interleaved(runners, settings["rounds"], settings["min_sample_s"],
                                   settings["budget_s"])
    times = {name: _stats(s) for name, s in samples.items()}
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
    }


def run_bench(layers, thread_counts, peers, mode, rounds=None, min_sample_s=None,
              progress=None):
    """Time every (layer, threads) pair; returns the report dict --json writes."""
    from . import _layers
    settings = dict(MODES[mode])
    if rounds is not None:
        settings["rounds"] = rounds
    if min_sample_s is not None:
        settings["min_sample_s"] = min_sample_s
    machine = machine_info(peers, settings["peak_iters"])
    peak = machine["fma_peak_gflops_per_core"]
    results = []
    total, done = len(layers) * len(thread_counts), 0
    processes = {p: PeerProcess(p) for p in peers if p in POOLED_PEERS}
    try:
        for threads in thread_counts:
            with _layers.PeerThreads(threads, peers):
                for layer in layers:
                    if progress:
                        progress(done, total, f"{layer.name} @ {threads} thread(s)")
                    results.append(_bench_row(layer, threads, peers, processes, settings,
                                              peak))
                    done += 1
    finally:
        for process in processes.values():
            process.close()
    if progress:
        progress(done, total, "done")
    # measured again at the end, the better of the two: a slow phase at the start alone
    # would otherwise skew every row's "% peak"
    if peak:
        peak = max(peak, measure_fma_peak(settings["peak_iters"]))
        machine["fma_peak_gflops_per_core"] = peak
        for r in results:
            r["pct_peak"] = 100.0 * r["gflops"] / (peak * r["threads"])
    geomean = {}
    for threads in thread_counts:
        rows = [r for r in results if r["threads"] == threads]
        geomean[str(threads)] = {name: geometric_mean([r["ratios"].get(name) for r in rows])
                                 for name in peers}
    return {"machine": machine,
            "settings": {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "mode": mode,
                         "threads": thread_counts, "peers": list(peers),
                         "gconv_api": "gconv.Conv2d layer (weights packed once; torch: F.conv2d)", **settings},
            "results": results,
            "geomean_ratio": geomean}


def _spread(result):
    """Worst relative spread (IQR / median) over the libraries of one row."""
    return max((t["iqr_us"] / t["median_us"] for t in result["times"].values()
                if t.get("iqr_us") is not None and t.get("median_us")), default=0.0)


def _fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def format_table(report):
    """The human-readable report: a header, one row per (threads, layer), geometric means."""
    m, s = report["machine"], report["settings"]
    peers = s["peers"]
    peak = m["fma_peak_gflops_per_core"]
    lines = [
        f"gconv {m['gconv']} bench on {m['cpu']}, {m['cpus_available']} CPUs, "
        f"ISA {m['isa']}, OpenMP {'on' if m['openmp'] else 'off'}, measured FMA peak "
        + (f"{peak:.1f} GFLOP/s per core" if peak else "unknown (generic ISA)"),
        "peers: " + (", ".join(f"{n} {v}" for n, v in m["peers"].items()) or "none"),
    ]
    from . import _layers
    for name in _layers.PEERS:
        if name not in peers:
            if _layers.peer_available(name):
                lines.append(f"{name} is installed but was not asked for (--peers): not timed")
            else:
                lines.append(f"{name} is missing: not timed ({INSTALL_HINT[name]} to compare)")
    lines.append(f"median us per call over up to {s['rounds']} interleaved rounds; "
                 f"ratio = peer us / gconv us (> 1: gconv is faster); % peak of "
                 f"threads x per-core peak")
    cols = [("layer", 17, "<"), ("threads", 7, ">"), ("algorithm", 9, "<"), ("MFLOP", 7, ">"),
            ("gconv us", 9, ">")]
    cols += [(f"{PEER_SHORT[n]} us", 9, ">") for n in peers]
    cols += [(f"{PEER_SHORT[n]}/gconv", max(9, len(PEER_SHORT[n]) + 6), ">") for n in peers]
    cols += [("GFLOP/s", 7, ">"), ("% peak", 6, ">")]

    def row(cells):
        return "  ".join(f"{c:{a}{w}}" for c, (_, w, a) in zip(cells, cols)).rstrip()

    header = row([c[0] for c in cols])
    rule = "-" * len(header)
    lines += ["", header, rule]
    bad, busy, noisy = [], 0, 0
    for threads in s["threads"]:
        for r in (r for r in report["results"] if r["threads"] == threads):
            cells = [r["layer"], str(threads), r["algorithm"], f"{r['mflop']:.2f}",
                     f"{r['times']['gconv']['median_us']:.1f}"]
            cells += [_fmt(r["times"].get(n, {}).get("median_us"), ".1f", "error")
                      for n in peers]
            cells += [_fmt(r["ratios"].get(n), ".2f", "error") for n in peers]
            cells += [f"{r['gflops']:.1f}", _fmt(r["pct_peak"], ".1f")]
            line = row(cells)
            if not r["outputs_match"]:
                line += "  MISMATCH"
                bad.append(r)
            if r.get("other_load") is not None and r["other_load"] > BUSY_FRACTION:
                line += f"  busy {100 * r['other_load']:.0f}%"
                busy += 1
            spread = _spread(r)
            if spread > NOISY_SPREAD:
                line += f"  spread {100 * spread:.0f}%"
                noisy += 1
            lines.append(line)
        gm = report["geomean_ratio"][str(threads)]
        cells = ["geometric mean", str(threads), "", "", ""] + [""] * len(peers)
        cells += [_fmt(gm.get(n), ".2f") for n in peers] + ["", ""]
        lines += [rule, row(cells), rule]
    if busy:
        lines.append(f"busy N%: other processes used N% of the CPUs while that row was "
                     f"timed ({busy} row(s)); its times, above all with several threads, "
                     f"are not reliable: rerun on a quiet machine")
    if noisy:
        lines.append(f"spread N%: the rounds' interquartile range was N% of the median for "
                     f"a library ({noisy} row(s)): the machine was not steady; rerun")
    pools = [p for p in peers if p in POOLED_PEERS]
    if pools:
        lines.append(f"{' and '.join(pools)} ran in a process of their own, stopped while "
                     "another library was timed: their thread pools spin between runs and "
                     "would take the cores from the others' threads")
    for r in bad:
        lines.append(f"MISMATCH: {r['layer']} at {r['threads']} thread(s): gconv's output "
                     f"differs from the peers' by up to {r['max_abs_diff']}")
    for r in report["results"]:
        for name, err in r["errors"].items():
            lines.append(f"{name} failed on {r['layer']}: {err}")
    return "\n".join(lines)


def write_plot(report, path):
    """Bar chart of peer/gconv time ratios per layer, one bar per thread count."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    peers = report["settings"]["peers"]
    threads = report["settings"]["threads"]
    layers = list(dict.fromkeys(r["layer"] for r in report["results"]))
    panels = peers or ["gconv"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8, 0.55 * len(layers) + 2),
                                                     3.6 * len(panels)), squeeze=False)
    width = 0.8 / len(threads)
    for ax, peer in zip(axes[:, 0], panels):
        for j, t in enumerate(threads):
            by_layer = {r["layer"]: r for r in report["results"] if r["threads"] == t}
            if peer == "gconv":      # no peer: plot GFLOP/s instead of ratios
                values = [by_layer[n]["gflops"] if n in by_layer else 0 for n in layers]
            else:
                values = [by_layer[n]["ratios"].get(peer) or 0 if n in by_layer else 0
                          for n in layers]
            xs = [i + (j - (len(threads) - 1) / 2) * width for i in range(len(layers))]
            gm = report["geomean_ratio"][str(t)].get(peer)
            label = f"{t} thread(s)" + (f", geomean {gm:.2f}x" if gm else "")
            ax.bar(xs, values, width, label=label)
        if peer == "gconv":
            ax.set_ylabel("gconv GFLOP/s")
        else:
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_yscale("log")
            # plain numbers on the log axis (2, 3, 5 between the powers of ten), not 3x10^0
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
                lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
            ax.tick_params(axis="y", which="minor", labelsize=7)
            ax.set_ylabel(f"{peer} time / gconv time")
            ax.set_title(f"gconv vs {peer} (> 1: gconv is faster)")
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers, rotation=60, ha="right", fontsize=8)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _have_matplotlib():
    import importlib.util
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def cmd_bench(args, parser):
    import gconv
    from . import _layers
    try:
        layers = _layers.select_layers(args.layers)
    except ValueError as e:
        parser.error(str(e))
    threads = args.threads or list(dict.fromkeys([1, gconv.get_num_threads()]))
    if args.peers is None:
        peers = [p for p in _layers.PEERS if _layers.peer_available(p)]
    else:
        peers = [] if args.peers.strip() in ("", "none") else \
            [p.strip() for p in args.peers.split(",") if p.strip()]
        for p in peers:
            if p not in _layers.PEERS:
                parser.error(f"unknown peer {p!r}: choose from {', '.join(_layers.PEERS)} "
                             f"or 'none'")
            if not _layers.peer_available(p):
                parser.error(f"peer {p!r} is not installed: {INSTALL_HINT[p]}")
    if args.plot and not _have_matplotlib():
        print("gconv bench: --plot needs matplotlib, which is not installed: "
              "pip install matplotlib", file=sys.stderr)
        return 2
    bar = ProgressBar(len(layers) * len(threads), "bench",
                      enabled=None if args.progress is None else args.progress)
    try:
        report = run_bench(layers, threads, peers, "quick" if args.quick else "full",
                           rounds=args.repeat, min_sample_s=args.min_time,
                           progress=bar.update)
    finally:
        bar.close()
    print(format_table(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        write_plot(report, args.plot)
        print(f"wrote {args.plot}")
    return 0 if all(r["outputs_match"] for r in report["results"]) else 1


# ---------------------------------------------------------------------------------------
# explain and check: thin wrappers, their modules are imported only here

def _int_or_pair(values, what, parser):
    if values is None:
        return None
    if len(values) > 2:
        parser.error(f"{what} takes one or two integers, got {len(values)}")
    return values[0] if len(values) == 1 else tuple(values)


def _padding(values, parser):
    if values is None:
        return 0
    if len(values) == 1 and not values[0].lstrip("-").isdigit():
        return values[0]                           # 'same', 'valid', 'same_upper', ...
    try:
        ints = [int(v) for v in values]
    except ValueError:
        parser.error(f"--padding takes one or two integers or a padding string, got {values}")
    return _int_or_pair(ints, "--padding", parser)


def cmd_explain(args, parser):
    from ._explain import explain
    kwargs = dict(kernel_size=_int_or_pair(args.kernel_size, "--kernel-size", parser) or 1,
                  groups=args.groups,
                  stride=_int_or_pair(args.stride, "--stride", parser) or 1,
                  padding=_padding(args.padding, parser),
                  dilation=_int_or_pair(args.dilation, "--dilation", parser) or 1,
                  input_size=tuple(args.input_size) if args.input_size else None)
    if args.plot and not _have_matplotlib():
        print("gconv explain: --plot needs matplotlib, which is not installed: "
              "pip install matplotlib", file=sys.stderr)
        return 2
    try:
        report = explain(args.in_channels, args.out_channels, **kwargs)
    except (ValueError, TypeError) as e:
        print(f"gconv explain: {e}", file=sys.stderr)
        return 2
    print(report)
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}")
    return 0


def cmd_check(args, parser):
    from ._check import run_check
    bar = ProgressBar(args.cases, "check")
    try:
        summary = run_check(cases=args.cases, seed=args.seed,
                            progress=lambda done, total: bar.update(done, total))
    except ImportError as e:           # torch missing: the back end says how to install it
        bar.close()
        print(f"gconv check: {e}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    print(summary)
    return 0 if summary.ok else 1


# ---------------------------------------------------------------------------------------

def build_parser():
    parser = argparse.ArgumentParser(
        prog="gconv", description="gconv: fast grouped 2-D convolution for NumPy on the CPU.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    b = sub.add_parser(
        "bench", help="time the bench layers in gconv against torch (onnxruntime, OpenVINO)",
        description="Time real network layers (see gconv/_layers.py) in gconv and in the "
                    "installed peers (torch, onnxruntime, openvino), at 1 and N threads, "
                    "libraries interleaved within each round; print medians, ratios, "
                    "GFLOP/s and % of the measured FMA peak. Exit status 1 if an output "
                    "does not match the peers'.")
    b.add_argument("--layers", metavar="A,B", help="comma-separated layer names (default: "
                   "all). Names: " + ", ".join(_layer_names()))
    b.add_argument("--threads", metavar="1,2", type=lambda s: parse_int_list(s, "--threads"),
                   help="comma-separated thread counts (default: 1 and gconv.get_num_threads())")
    b.add_argument("--repeat", metavar="R", type=_positive_int,
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

    e = sub.add_parser("explain", help="what a grouped convolution computes, and how gconv "
                                       "runs it",
                       description="Weight shape, parameters, FLOPs, valid groups, which input "
                                   "channels feed each output channel, and gconv's kernel path.")
    e.add_argument("in_channels", type=_positive_int, metavar="IN")
    e.add_argument("out_channels", type=_positive_int, metavar="OUT")
    e.add_argument("--groups", "-g", type=_positive_int, default=1)
    e.add_argument("--kernel-size", "-k", type=int, nargs="+", metavar="K")
    e.add_argument("--stride", "-s", type=int, nargs="+", metavar="S")
    e.add_argument("--padding", "-p", nargs="+", metavar="P",
                   help="one or two integers, or 'same', 'valid', 'same_upper', 'same_lower'")
    e.add_argument("--dilation", "-d", type=int, nargs="+", metavar="D")
    e.add_argument("--input-size", type=_positive_int, nargs=2, metavar=("H", "W"))
    e.add_argument("--plot", metavar="FILE", help="draw the channel connections (PNG or SVG; "
                                                  "needs matplotlib)")
    e.set_defaults(func=cmd_explain)

    c = sub.add_parser("check", help="cross-check random configurations against torch",
                       description="Run random conv2d configurations in gconv and torch and "
                                   "compare; exit status 1 on any mismatch.")
    c.add_argument("--cases", type=_positive_int, default=200, metavar="N")
    c.add_argument("--seed", type=int, default=0, metavar="S")
    c.set_defaults(func=cmd_check)
    return parser


def _layer_names():
    from . import _layers
    return list(_layers.BY_NAME)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args, parser)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":       # pragma: no cover
    sys.exit(main())
