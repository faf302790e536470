"""What the whole-network bench (network_bench.py) and the training bench
(training_bench.py) share: rows timed in milliseconds, each library's output checked
against torch's first, a report around them, an aligned table and a bar chart of ratios.
"""
import time

import numpy as np

from .machine import machine_info
from .timing import stats_ms, time_interleaved


def as_numpy(y):
    """A library's output (a torch tensor or an array) as a NumPy array."""
    return y.detach().numpy() if hasattr(y, "detach") else np.asarray(y)


def check_against_torch(row, runners, rtol):
    """Run every library once and compare with torch's output: row["max_abs_error"] per
    library, row["outputs_match"] (|library - torch| <= rtol * max |torch|); a library
    whose call fails is reported in row["errors"] and dropped from ``runners``."""
    expected = as_numpy(runners["torch"]()).astype(np.float64)
    scale = float(np.abs(expected).max())
    row["max_abs_error"] = {}
    for lib, fn in list(runners.items()):
        if lib == "torch":
            continue
        try:
            got = as_numpy(fn())
        except Exception as e:          # noqa: BLE001 - reported in the row, bench goes on
            row["errors"][lib] = f"{type(e).__name__}: {e}"
            del runners[lib]
            continue
        row["max_abs_error"][lib] = float(np.abs(got.astype(np.float64) - expected).max()) \
            if got.shape == expected.shape else float("inf")
    row["outputs_match"] = all(e <= rtol * scale for e in row["max_abs_error"].values())


def time_row(row, runners, settings, ours, ratio_key):
    """Time the runners (interleaved) into row["results"] (ms) and row[ratio_key]: each
    other library's median over ``ours``."""
    samples = time_interleaved(runners, settings["rounds"], settings["min_sample_s"],
                               settings["budget_s"])
    row["results"] = {lib: stats_ms(s) for lib, s in samples.items()}
    mine = row["results"][ours]["median_ms"]
    row[ratio_key] = {lib: r["median_ms"] / mine for lib, r in row["results"].items()
                      if lib != ours}
    return row


def ms_report(kind, mode, settings, thread_counts, peers, timed_peers, results, **what):
    """The report --json writes: the machine (no FMA peak: these rows are not per-layer
    FLOP rates), the settings (``what`` names what was timed) and the rows."""
    return {"machine": machine_info(["torch"] + [p for p in timed_peers if p != "torch"],
                                    peak_iters=None),
            "settings": {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "mode": mode,
                         "kind": kind, **what, "threads": list(thread_counts),
                         "peers": list(peers), "units": "ms", **settings},
            "results": results}


def row_notes(row, label):
    """The table's notes for one row: the libraries skipped or failed, a mismatch."""
    notes = [f"  {label}: {lib} skipped: {why}"
             for lib, why in {**row["skipped"], **row["errors"]}.items()]
    if not row["outputs_match"]:
        notes.append(f"  {label}: OUTPUT MISMATCH {row['max_abs_error']}")
    return notes


def aligned(rows, n_left):
    """Text lines of ``rows`` (lists of cells; the first the header) in columns, the first
    n_left left-aligned, the rest right-aligned, a rule under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i >= n_left else c.ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return lines


def ratio_plot(path, labels, series, ylabel, title):
    """Bars of speed-up ratios per row ({name: [ratio per label]}), a line at 1."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(labels) + 2), 4.5))
    width = 0.8 / max(1, len(series))
    for i, (name, ys) in enumerate(series.items()):
        ax.bar(np.arange(len(labels)) + i * width, ys, width, label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(labels)) + width * (len(series) - 1) / 2)
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def onnxruntime_session_runner(model, feeds, threads):
    """An onnxruntime CPU session of ``model`` (a path or serialized bytes) with
    ``threads`` intra-op threads, called on ``feeds``: the bench's one session set-up."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return lambda: session.run(None, feeds)[0]
