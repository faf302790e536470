"""Quick timing of gconv's depthwise kernels against torch on the depthwise bench layers.

Dev tool (the real bench is `python -m gconv bench` and the pytest-benchmark suite in
bench/). Times the functional ``gconv.conv2d`` with a forced ``--algorithm`` (and, with
--out, a preallocated output) against torch's, alternating the two in rounds, and prints
per-layer medians, the ratio torch/gconv and GFLOP/s as a Markdown table. The layers are
the catalogue's depthwise ones (gconv/bench/layers.py: one input channel per group).

    python -m bench.dw_timing [--threads 1 2] [--rounds 15] [--reps 20] [--only name ...]
                              [--out]   (from the repo root, after an in-place build)
"""
import argparse
import statistics

import numpy as np

import gconv
from gconv.bench.layers import LAYERS, select_layers
from gconv.bench.timing import time_sample

DEPTHWISE = [layer for layer in LAYERS if layer.C_in == layer.groups]


def run(threads, rounds, reps, layers, algorithm, use_out):
    import torch
    torch.set_num_threads(threads)
    gconv.set_num_threads(threads)
    rows = []
    for layer in layers:
        x, w, b = layer.make_inputs()
        args = layer.conv_args
        xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        y = gconv.conv2d(x, w, b, **args, algorithm=algorithm)
        with torch.no_grad():
            yt = torch.nn.functional.conv2d(xt, wt, bt, **args).numpy()
        err = float(np.max(np.abs(y - yt)))

        out = np.empty_like(y) if use_out else None

        def g_call():
            gconv.conv2d(x, w, b, **args, algorithm=algorithm, out=out)

        def t_call():
            with torch.no_grad():
                torch.nn.functional.conv2d(xt, wt, bt, **args)

        g_call(), t_call()
        n_reps = reps if layer.N == 1 else max(2, reps // 4)
        gt, tt = [], []
        for _ in range(rounds):
            gt.append(time_sample(g_call, n_reps))
            tt.append(time_sample(t_call, n_reps))
        gm, tm = statistics.median(gt), statistics.median(tt)
        rows.append((layer.name, gm * 1e6, tm * 1e6, tm / gm, layer.flops / gm / 1e9, err))
    print(f"\n{threads} thread(s), medians of {rounds} rounds"
          f"{', gconv writes into a preallocated out=' if use_out else ''}")
    print("| layer | gconv us | torch us | ratio | GFLOP/s | max err |")
    print("|---|---|---|---|---|---|")
    for name, gus, tus, ratio, gf, err in rows:
        print(f"| {name} | {gus:.1f} | {tus:.1f} | {ratio:.2f} | {gf:.1f} | {err:.1e} |")
    ratios = [r[3] for r in rows]
    print(f"geomean ratio {float(np.exp(np.mean(np.log(ratios)))):.2f}, "
          f"worst {min(ratios):.2f}")


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.dw_timing")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--only", nargs="*", metavar="NAME",
                    help="depthwise layers to time (default all): "
                         + ", ".join(layer.name for layer in DEPTHWISE))
    ap.add_argument("--algorithm", default="depthwise")
    ap.add_argument("--out", action="store_true",
                    help="gconv writes into a preallocated output (no page faults of a fresh "
                         "array; torch still allocates its own)")
    a = ap.parse_args()
    try:
        layers = select_layers(a.only) if a.only else DEPTHWISE
    except ValueError as e:
        ap.error(str(e))
    others = [layer.name for layer in layers if layer not in DEPTHWISE]
    if others:
        ap.error(f"not depthwise layers: {', '.join(others)}")
    print("gconv isa:", gconv.get_isa())
    for t in a.threads:
        run(t, a.rounds, a.reps, layers, a.algorithm, a.out)


if __name__ == "__main__":
    main()
