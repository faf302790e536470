"""The bench's report as text: the table ``gconv bench`` prints, with its geometric means
and the flags on rows timed on a busy or unsteady machine."""
import math

from . import peers

# Rows during which other processes used more than this share of the CPUs get flagged.
BUSY_FRACTION = 0.2
# ... and rows whose rounds spread (IQR / median, worst library) more than this.
NOISY_SPREAD = 0.25
PEER_SHORT = {"torch": "torch", "onnxruntime": "ort", "openvino": "ov"}


def geometric_mean(values):
    """The geometric mean of the positive values (None and the rest left out); None if none."""
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _median(row, library):
    return row["times"].get(library, {}).get("median_us")


def fastest_peer(row, among):
    """(peer, peer us / gconv us) of the fastest of ``among`` on this row, or (None, None)
    when none of them (or gconv) has a time."""
    g = _median(row, "gconv")
    timed = [(_median(row, p), p) for p in among if _median(row, p)]
    if not g or not timed:
        return None, None
    us, peer = min(timed)
    return peer, us / g


WORST = 5


def sweep_summary(results, thread_counts, peer_names):
    """Per thread count: the geometric means of gconv's speed-up against torch, against the
    faster of onnxruntime and OpenVINO and against the fastest peer of each layer, and the
    WORST layers by that last ratio (lowest first)."""
    pooled = [p for p in peer_names if p in peers.POOLED_PEERS]
    out = {}
    for threads in thread_counts:
        rows = [r for r in results if r["threads"] == threads]
        best = [(fastest_peer(r, peer_names), r) for r in rows]
        worst = sorted(((ratio, peer, r) for (peer, ratio), r in best if ratio),
                       key=lambda t: t[0])[:WORST]
        out[str(threads)] = {
            "layers": len(rows),
            "geomean_vs_torch": geometric_mean([r["ratios"].get("torch") for r in rows]),
            "geomean_vs_onnxruntime_openvino": geometric_mean(
                [fastest_peer(r, pooled)[1] for r in rows]) if pooled else None,
            "geomean_vs_fastest_peer": geometric_mean([ratio for (_, ratio), _ in best]),
            "worst": [{"layer": r["layer"], "shape": r["shape"], "peer": peer, "ratio": ratio}
                      for ratio, peer, r in worst],
        }
    return out


def model_totals(results, thread_counts, peer_names):
    """Per thread count: the model's convolution time in each library, the sum of its
    layers' medians weighted by how many times the model runs each (``count``), over the
    layers every library timed; the peers' totals over gconv's; the layers left out."""
    libraries = ["gconv", *peer_names]
    out = {}
    for threads in thread_counts:
        rows = [r for r in results if r["threads"] == threads]
        kept = [r for r in rows if all(_median(r, lib) for lib in libraries)]
        totals = {lib: sum(r.get("count", 1) * _median(r, lib) for r in kept)
                  for lib in libraries}
        out[str(threads)] = {
            "totals_us": totals,
            "ratios": {p: totals[p] / totals["gconv"] for p in peer_names
                       if kept and totals["gconv"]},
            "layers": len(kept), "calls": sum(r.get("count", 1) for r in kept),
            "left_out": [r["layer"] for r in rows if not any(r is k for k in kept)],
        }
    return out


def _spread(result):
    """Worst relative spread (IQR / median) over the libraries of one row."""
    return max((t["iqr_us"] / t["median_us"] for t in result["times"].values()
                if t.get("iqr_us") is not None and t.get("median_us")), default=0.0)


def _fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def _source_lines(report):
    """What a sweep or a model run timed: a line saying so and one per layer (its shape,
    and for a model how many times it runs and its note). Nothing for the catalogue."""
    source = report["settings"].get("source")
    if not source:
        return []
    layers = list({r["layer"]: r for r in report["results"]}.values())
    if source["kind"] == "sweep":
        lines = [f"sweep: {len(layers)} layers drawn with seed {source['seed']} from "
                 f"{len(source['families'])} families (gconv/bench/sweep.py): "
                 + ", ".join(source["families"])]
    else:
        lines = [f"model {source['model']} ({source['model_class']}): "
                 f"{source['convolutions']} convolution calls of {source['distinct']} "
                 f"distinct shapes; a Conv1d is timed as the 2-D convolution with H = 1"]
        for kind, n in source["skipped"].items():
            lines.append(f"not timed: {n} call(s) of {kind} (gconv runs Conv1d and Conv2d)")
    width = max(len(r["layer"]) for r in layers)
    shape_width = max(len(r["shape"]) for r in layers)
    for r in layers:
        extra = f"  x{r['count']}" if "count" in r else ""
        note = r.get("note") or ""
        lines.append((f"  {r['layer']:<{width}}  {r['shape']:<{shape_width}}{extra}"
                      + (f"  ({note})" if note else "")).rstrip())
    return lines


def _summary_lines(report):
    """The sweep's summary, per thread count (sweep_summary)."""
    lines, timed = [], report["settings"]["peers"]
    for threads, summary in report.get("sweep_summary", {}).items():
        if not timed:
            lines.append(f"sweep, {threads} thread(s): no peer timed, nothing to compare")
            continue
        parts = [f"vs torch {_fmt(summary['geomean_vs_torch'], '.2f')}x"] \
            if "torch" in timed else []
        if any(p in peers.POOLED_PEERS for p in timed):
            parts.append(f"vs the faster of onnxruntime/OpenVINO "
                         f"{_fmt(summary['geomean_vs_onnxruntime_openvino'], '.2f')}x")
        parts.append(f"vs each layer's fastest peer "
                     f"{_fmt(summary['geomean_vs_fastest_peer'], '.2f')}x")
        lines.append(f"sweep, {threads} thread(s): gconv's speed-up, geometric mean over "
                     f"{summary['layers']} layers: " + "; ".join(parts))
        if summary["worst"]:
            lines.append(f"  worst {len(summary['worst'])} against the fastest peer:")
            width = max(len(w["layer"]) for w in summary["worst"])
            lines += [f"    {w['layer']:<{width}}  {w['ratio']:6.2f}x  {w['peer']:<11}  "
                      f"{w['shape']}" for w in summary["worst"]]
    return lines


def format_table(report):
    """The human-readable report: a header, one row per (threads, layer), geometric means;
    for a sweep its summary, for a model its total per library."""
    m, s = report["machine"], report["settings"]
    timed = s["peers"]
    peak = m["fma_peak_gflops_per_core"]
    is_model = "model_total" in report
    lines = [
        f"gconv {m['gconv']} bench on {m['cpu']}, {m['cpus_available']} CPUs, "
        f"ISA {m['isa']}, OpenMP {'on' if m['openmp'] else 'off'}, measured FMA peak "
        + (f"{peak:.1f} GFLOP/s per core" if peak else "unknown (generic ISA)"),
        "peers: " + (", ".join(f"{n} {v}" for n, v in m["peers"].items()) or "none"),
    ]
    for name in peers.PEERS:
        if name not in timed:
            if peers.peer_available(name):
                lines.append(f"{name} is installed but was not asked for (--peers): not timed")
            else:
                lines.append(f"{name} is missing: not timed ({peers.INSTALL_HINT[name]} "
                             f"to compare)")
    lines.append(f"median us per call over up to {s['rounds']} interleaved rounds; "
                 f"ratio = peer us / gconv us (> 1: gconv is faster); % peak of "
                 f"threads x per-core peak")
    lines += _source_lines(report)
    name_width = max([17] + [len(r["layer"]) for r in report["results"]])
    cols = [("layer", name_width, "<"), ("threads", 7, ">")]
    cols += [("calls", 5, ">")] if is_model else []
    cols += [("algorithm", 9, "<"), ("MFLOP", 7, ">"), ("gconv us", 9, ">")]
    cols += [(f"{PEER_SHORT[n]} us", 9, ">") for n in timed]
    cols += [(f"{PEER_SHORT[n]}/gconv", max(9, len(PEER_SHORT[n]) + 6), ">") for n in timed]
    cols += [("GFLOP/s", 7, ">"), ("% peak", 6, ">")]

    def row(cells):
        return "  ".join(f"{c:{a}{w}}" for c, (_, w, a) in zip(cells, cols)).rstrip()

    def lead(name, threads, calls=""):
        return [name, str(threads)] + ([str(calls)] if is_model else [])

    header = row([c[0] for c in cols])
    rule = "-" * len(header)
    lines += ["", header, rule]
    bad, busy, noisy = [], 0, 0
    for threads in s["threads"]:
        for r in (r for r in report["results"] if r["threads"] == threads):
            cells = lead(r["layer"], threads, r.get("count", ""))
            if r.get("refused"):
                cells += ["-", _fmt(r["mflop"], ".2f"), "refused"]
                lines.append(row(cells + ["-"] * (2 * len(timed) + 2)))
                continue
            cells += [r["algorithm"], f"{r['mflop']:.2f}",
                      f"{r['times']['gconv']['median_us']:.1f}"]
            cells += [_fmt(r["times"].get(n, {}).get("median_us"), ".1f", "error")
                      for n in timed]
            cells += [_fmt(r["ratios"].get(n), ".2f", "error") for n in timed]
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
        cells = lead("geometric mean", threads) + ["", "", ""] + [""] * len(timed)
        cells += [_fmt(gm.get(n), ".2f") for n in timed] + ["", ""]
        lines += [rule, row(cells)]
        if is_model:
            total = report["model_total"][str(threads)]
            cells = lead("model total", threads, total["calls"]) + ["", ""]
            cells += [_fmt(total["totals_us"][lib], ".1f") if total["layers"] else "-"
                      for lib in ["gconv", *timed]]
            cells += [_fmt(total["ratios"].get(n), ".2f") for n in timed] + ["", ""]
            lines.append(row(cells))
        lines.append(rule)
    if is_model:
        lines.append("model total: the sum over the model's convolutions of each layer's "
                     "median x its calls, per library: the model's convolution time")
        for threads, total in report["model_total"].items():
            if total["left_out"]:
                lines.append(f"model total at {threads} thread(s) leaves out what a library "
                             f"could not time: {', '.join(total['left_out'])}")
    lines += _summary_lines(report)
    if busy:
        lines.append(f"busy N%: other processes used N% of the CPUs while that row was "
                     f"timed ({busy} row(s)); its times, above all with several threads, "
                     f"are not reliable: rerun on a quiet machine")
    if noisy:
        lines.append(f"spread N%: the rounds' interquartile range was N% of the median for "
                     f"a library ({noisy} row(s)): the machine was not steady; rerun")
    pools = [p for p in timed if p in peers.POOLED_PEERS]
    if pools:
        lines.append(f"{' and '.join(pools)} ran in a process of their own, stopped while "
                     "another library was timed: their thread pools spin between runs and "
                     "would take the cores from the others' threads")
    for r in bad:
        lines.append(f"MISMATCH: {r['layer']} at {r['threads']} thread(s): gconv's output "
                     f"differs from the peers' by up to {r['max_abs_diff']}")
    refused = {r["layer"]: r["refused"] for r in report["results"] if r.get("refused")}
    lines += [f"gconv refused {name}: {error}" for name, error in refused.items()]
    for r in report["results"]:
        for name, err in r["errors"].items():
            if not r.get("refused"):
                lines.append(f"{name} failed on {r['layer']}: {err}")
    return "\n".join(lines)
