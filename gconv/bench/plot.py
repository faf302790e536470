"""The bench's plot: peer / gconv time ratios per layer (``gconv bench --plot``; needs
matplotlib, imported only here)."""


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
                values = [by_layer[n]["gflops"] or 0 if n in by_layer else 0 for n in layers]
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
    fig.suptitle(_title(report), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _title(report):
    """The machine, and what was timed when it is not the catalogue."""
    m, source = report["machine"], report["settings"].get("source")
    title = f"gconv {m['gconv']} on {m['cpu']}, ISA {m['isa']}"
    if source and source["kind"] == "sweep":
        title += f"\nsweep of {source['count']} layers, seed {source['seed']}"
    elif source and source["kind"] == "model":
        title += f"\nmodel {source['model']} ({source['convolutions']} convolutions)"
    return title
