"""Quick timing of gconv's depthwise kernels against torch on the depthwise bench layers.

Dev tool (the real bench lives in bench/ under pytest-benchmark). Interleaves gconv and
torch calls in rounds and reports per-layer medians, the ratio torch/gconv and GFLOP/s.

    python bench/dw_timing.py [--threads 1 2] [--rounds 15] [--reps 20] [--only name ...]
                              [--out]   (run from the repo root, after an in-place build)
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root
import gconv  # noqa: E402

# name: (N, C_in, H, W, C_out, k, stride, pad, dilation, groups)
LAYERS = {
    "mbv2_dw112": (1, 32, 112, 112, 32, 3, 1, 1, 1, 32),
    "mbv2_dw56_s2": (1, 144, 56, 56, 144, 3, 2, 1, 1, 144),
    "mbv2_dw14": (1, 384, 14, 14, 384, 3, 1, 1, 1, 384),
    "mbv2_dw7": (1, 960, 7, 7, 960, 3, 1, 1, 1, 960),
    "dw_mult2": (1, 32, 56, 56, 64, 3, 1, 1, 1, 32),
    "effb0_dw5": (1, 240, 28, 28, 240, 5, 1, 2, 1, 240),
    "convnext_dw7": (1, 96, 56, 56, 96, 7, 1, 3, 1, 96),
    "deeplab_dw_dil2": (1, 256, 33, 33, 256, 3, 1, 2, 2, 256),
    "b8_mbv2_dw112": (8, 32, 112, 112, 32, 3, 1, 1, 1, 32),
}


def time_call(fn, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def run(threads, rounds, reps, only, algorithm, use_out):
    torch.set_num_threads(threads)
    gconv.set_num_threads(threads)
    rows = []
    for name, (N, C, H, W, CO, k, s, p, d, g) in LAYERS.items():
        if only and name not in only:
            continue
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, C, H, W), dtype=np.float32)
        w = rng.standard_normal((CO, C // g, k, k), dtype=np.float32)
        b = rng.standard_normal(CO, dtype=np.float32)
        xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        y = gconv.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g,
                         algorithm=algorithm)
        with torch.no_grad():
            yt = torch.nn.functional.conv2d(xt, wt, bt, s, p, d, g).numpy()
        err = float(np.max(np.abs(y - yt)))

        out = np.empty_like(y) if use_out else None

        def g_call():
            gconv.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g,
                         algorithm=algorithm, out=out)

        def t_call():
            with torch.no_grad():
                torch.nn.functional.conv2d(xt, wt, bt, s, p, d, g)

        g_call(), t_call()
        n_reps = reps if N == 1 else max(2, reps // 4)
        gt, tt = [], []
        for _ in range(rounds):
            gt.append(time_call(g_call, n_reps))
            tt.append(time_call(t_call, n_reps))
        gm, tm = statistics.median(gt), statistics.median(tt)
        OH, OW = y.shape[2], y.shape[3]
        flops = 2 * N * CO * OH * OW * k * k
        rows.append((name, gm * 1e6, tm * 1e6, tm / gm, flops / gm / 1e9, err))
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
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--algorithm", default="depthwise")
    ap.add_argument("--out", action="store_true",
                    help="gconv writes into a preallocated output (no page faults of a fresh "
                         "array; torch still allocates its own)")
    a = ap.parse_args()
    print("gconv isa:", gconv.get_isa())
    for t in a.threads:
        run(t, a.rounds, a.reps, a.only, a.algorithm, a.out)


if __name__ == "__main__":
    main()
