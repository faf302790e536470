"""Digest of gconv's outputs over a wide grid: the proof that a refactor changed nothing.

    PYTHONPATH=<build A> python tools/output_digest.py > a.txt
    PYTHONPATH=<build B> python tools/output_digest.py > b.txt
    diff a.txt b.txt          # empty: bitwise the same outputs

One line per (problem, ISA, forced path, dtype, threads, epilogue): a SHA-1 of the output's
bytes. Problems: the test grid (tests/conftest.py), the bench layers at batch 1 and a seeded
draw of random shapes from every family (dense, grouped, depthwise with multipliers, 1x1,
strided, dilated, k x 1, stems). Inputs are seeded, so both builds see the same data. It uses
only the public API (conv2d, set_isa, set_num_threads), so any two commits can be compared.
"""
import hashlib
import os
import random
import sys

import numpy as np

import gconv

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def grid_cases():
    from conftest import GRID          # the test grid: (N, C_in, H, W, C_out, groups, ...)
    for c in GRID:
        yield (f"grid:{c}", c.x_shape, c.w_shape, c.bias, c.kwargs)


def bench_cases():
    try:
        from gconv.bench.layers import LAYERS
    except ImportError:
        from gconv._layers import LAYERS
    for layer in LAYERS:
        x_shape = (1, *layer.input_shape[1:])
        yield (f"bench:{layer.name}", x_shape, layer.weight_shape, True, layer.conv_args)


def random_cases(seed=2026, n=120):
    r = random.Random(seed)
    for i in range(n):
        family = r.choice(["dense", "grouped", "depthwise", "pointwise", "kx1", "stem"])
        H, W = r.randint(1, 40), r.randint(1, 40)
        N = r.choice([1, 1, 2, 3])
        s, d = r.choice([1, 1, 2, 3]), r.choice([1, 1, 2, 3])
        if family == "depthwise":
            C = r.choice([1, 3, 8, 16, 24, 40])
            g, C_out, k = C, C * r.randint(1, 3), (r.randint(1, 9), r.randint(1, 9))
        elif family == "grouped":
            g = r.choice([2, 3, 4, 8, 16])
            C, C_out, k = g * r.randint(1, 8), g * r.randint(1, 8), (r.randint(1, 5),) * 2
        elif family == "pointwise":
            g = r.choice([1, 1, 2, 4])
            C, C_out, k, d = g * r.randint(1, 40), g * r.randint(1, 40), (1, 1), 1
        elif family == "kx1":
            g, C, C_out = 1, r.randint(1, 24), r.randint(1, 24)
            k = r.choice([(1, r.randint(2, 9)), (r.randint(2, 9), 1)])
        elif family == "stem":
            g, C, C_out, k, s = 1, r.randint(1, 4), r.choice([8, 16, 24, 32]), (r.choice([3, 5, 7]),) * 2, 2
        else:
            g, C, C_out, k = 1, r.randint(1, 48), r.randint(1, 48), (r.randint(1, 5),) * 2
        pad = (r.randint(0, k[0]), r.randint(0, k[1]))
        if H + 2 * pad[0] < d * (k[0] - 1) + 1 or W + 2 * pad[1] < d * (k[1] - 1) + 1:
            continue
        kwargs = dict(stride=s, padding=pad, dilation=d, groups=g)
        yield (f"random{i}:{family}", (N, C, H, W), (C_out, C // g, *k), r.random() < 0.7, kwargs)


EPILOGUES = {"none": {}, "relu+res": {"activation": "relu", "residual": True},
             "silu": {"activation": "silu"}, "clamp": {"activation": ("clamp", -0.5, 0.5)}}


def main():
    algorithms = ("auto", "depthwise", "pointwise", "general")
    cases = list(grid_cases()) + list(bench_cases()) + list(random_cases())
    for isa in gconv.available_isas():
        gconv.set_isa(isa)
        for name, x_shape, w_shape, bias, kwargs in cases:
            for dtype in (np.float32, np.float64):
                rng = np.random.default_rng(int(hashlib.sha1(name.encode()).hexdigest()[:8], 16))
                x = rng.standard_normal(x_shape).astype(dtype)
                w = rng.standard_normal(w_shape).astype(dtype)
                b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
                for algorithm in algorithms:
                    for ep_name, ep in EPILOGUES.items():
                        if ep_name != "none" and (algorithm != "auto" or dtype == np.float64):
                            continue
                        for threads in (1, 2):
                            gconv.set_num_threads(threads)
                            extra = dict(ep)
                            try:
                                if extra.pop("residual", False):
                                    shape = gconv.conv2d_output_shape(x_shape, w_shape, **kwargs)
                                    extra["residual"] = np.random.default_rng(1).standard_normal(shape).astype(dtype)
                                y = gconv.conv2d(x, w, b, **kwargs, algorithm=algorithm, **extra)
                                digest = hashlib.sha1(np.ascontiguousarray(y).tobytes()).hexdigest()[:16]
                            except ValueError as e:
                                if "cannot run" not in str(e):
                                    raise
                                continue
                            print(f"{isa} {np.dtype(dtype).name} {algorithm} {ep_name} t{threads} {name} {digest}")
    gconv.set_num_threads(None)


if __name__ == "__main__":
    main()
