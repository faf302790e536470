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


def _spread(result):
    """Worst relative spread (IQR / median) over the libraries of one row."""
    return max((t["iqr_us"] / t["median_us"] for t in result["times"].values()
                if t.get("iqr_us") is not None and t.get("median_us")), default=0.0)


def _fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def format_table(report):
    """The human-readable report: a header, one row per (threads, layer), geometric means."""
    m, s = report["machine"], report["settings"]
    timed = s["peers"]
    peak = m["fma_peak_gflops_per_core"]
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
    cols = [("layer", 17, "<"), ("threads", 7, ">"), ("algorithm", 9, "<"), ("MFLOP", 7, ">"),
            ("gconv us", 9, ">")]
    cols += [(f"{PEER_SHORT[n]} us", 9, ">") for n in timed]
    cols += [(f"{PEER_SHORT[n]}/gconv", max(9, len(PEER_SHORT[n]) + 6), ">") for n in timed]
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
        cells = ["geometric mean", str(threads), "", "", ""] + [""] * len(timed)
        cells += [_fmt(gm.get(n), ".2f") for n in timed] + ["", ""]
        lines += [rule, row(cells), rule]
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
    for r in report["results"]:
        for name, err in r["errors"].items():
            lines.append(f"{name} failed on {r['layer']}: {err}")
    return "\n".join(lines)
