"""Time two builds of gconv on the bench layers in one run: the proof that a change kept
the speed (issue 15: "the bench before and after, in one run on the same machine").

    python tools/compare_builds.py --old /path/to/old/checkout --new /path/to/new/checkout \
        [--layers a,b | --sweep N --seed S [--families a,b]] [--threads 1,2] [--rounds 15]
        [--activation relu6] [--json F]

Each build runs in a child process of its own (PYTHONPATH set to its checkout, built in
place). For every (layer, thread count) both children set the layer up (a gconv.Conv2d
with seeded weights, packed once), then the parent asks them for samples in alternating
order, round after round, so the machine's drifts hit both alike. A sample is enough calls
to take ~10 ms. It prints the median per build, new / old, and the spread (the interquartile
range over the median) of each; rows where the new build is slower by more than the larger
spread are flagged. Only the public API is used, so any two commits can be compared.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
import gconv
try:
    from gconv.bench.layers import LAYERS
except ImportError:
    from gconv._layers import LAYERS
BY_NAME = {l.name: l for l in LAYERS}
state = {}
print(json.dumps({"layers": [l.name for l in LAYERS], "file": gconv.__file__}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "sweep":          # the newer build's random layers, as plain specs
        from gconv.bench.sweep import draw
        print(json.dumps([dict(name=l.name, N=l.N, C_in=l.C_in, H=l.H, W=l.W, C_out=l.C_out,
                               kernel_size=l.kernel_size, stride=l.stride,
                               padding=l.padding, dilation=l.dilation, groups=l.groups)
                          for l in draw(cmd["n"], cmd["seed"])]), flush=True)
    elif cmd["op"] == "setup":
        spec = cmd["spec"] or vars(BY_NAME[cmd["layer"]])
        gconv.set_num_threads(cmd["threads"])
        rng = np.random.default_rng(0)
        conv = gconv.Conv2d(spec["C_in"], spec["C_out"], spec["kernel_size"],
                            stride=spec["stride"], padding=spec["padding"],
                            dilation=spec["dilation"], groups=spec["groups"], rng=0,
                            activation=cmd["activation"])
        x = rng.standard_normal((spec["N"], spec["C_in"], spec["H"], spec["W"])
                                ).astype(np.float32)
        conv(x); conv(x)
        calls = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(calls):
                conv(x)
            if time.perf_counter() - t0 > 0.01 or calls > 100000:
                break
            calls *= 2
        state.update(conv=conv, x=x, calls=calls, threads=cmd["threads"])
        print(json.dumps({"calls": calls}), flush=True)
    elif cmd["op"] == "sample":
        conv, x, calls = state["conv"], state["x"], cmd["calls"]
        if state["threads"] > 1:
            # the other build's OpenMP workers spin for a while after its sample and would
            # take this one's cores: a pause lets them sleep, a few calls wake these
            time.sleep(0.02)
            for _ in range(max(1, calls // 4)):
                conv(x)
        t0 = time.perf_counter()
        for _ in range(calls):
            conv(x)
        print(json.dumps({"us": (time.perf_counter() - t0) / calls * 1e6}), flush=True)
"""


class Build:
    def __init__(self, path):
        env = {**os.environ, "PYTHONPATH": os.path.abspath(path)}
        env.pop("OMP_NUM_THREADS", None)
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd="/")
        hello = self._read()
        self.layers, self.file = hello["layers"], hello["file"]

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("a build's child process died")
        return json.loads(line)

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


def spread(samples):
    q = statistics.quantiles(samples, n=4)
    return (q[2] - q[0]) / statistics.median(samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--layers")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--activation", help="a fused activation for every layer, e.g. relu6")
    ap.add_argument("--sweep", type=int, metavar="N",
                    help="N random layers drawn by the new build (gconv/bench/sweep.py)")
    ap.add_argument("--seed", type=int, default=1, help="the sweep's seed")
    ap.add_argument("--families", help="with --sweep: keep only these families' layers "
                    "(comma-separated names of gconv/bench/sweep.py's FAMILIES)")
    ap.add_argument("--json")
    args = ap.parse_args()
    old, new = Build(args.old), Build(args.new)
    print(f"old: {old.file}\nnew: {new.file}")
    specs = {}
    if args.sweep:                   # random layers drawn by the new build (gconv bench --sweep)
        for spec in new.ask(op="sweep", n=args.sweep, seed=args.seed):
            spec = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items()}
            specs[spec["name"]] = spec
        if args.families:            # a sweep layer is named sweep{seed}-{i}-{family}
            keep = set(args.families.split(","))
            specs = {n: s for n, s in specs.items() if n.split("-", 2)[2] in keep}
        names = list(specs)
    else:
        names = (args.layers.split(",") if args.layers
                 else [n for n in new.layers if n in old.layers])
    rows = []
    print(f"{'layer':<32}{'thr':>4}{'old us':>11}{'new us':>11}{'new/old':>9}{'spread':>15}")
    for threads in [int(t) for t in args.threads.split(",")]:
        for name in names:
            setup = dict(op="setup", layer=name, spec=specs.get(name), threads=threads,
                         activation=args.activation)
            calls = max(old.ask(**setup)["calls"], new.ask(**setup)["calls"])
            t = {"old": [], "new": []}
            for r in range(args.rounds):
                order = (("old", old), ("new", new)) if r % 2 == 0 else (("new", new), ("old", old))
                for key, build in order:
                    t[key].append(build.ask(op="sample", calls=calls)["us"])
            mo, mn = statistics.median(t["old"]), statistics.median(t["new"])
            so, sn = spread(t["old"]), spread(t["new"])
            flag = "  SLOWER" if mn / mo - 1 > max(so, sn) else ""
            print(f"{name:<32}{threads:>4}{mo:>11.1f}{mn:>11.1f}{mn / mo:>9.3f}"
                  f"{so * 100:>7.1f}%/{sn * 100:>4.1f}%{flag}", flush=True)
            rows.append(dict(layer=name, threads=threads, old_us=mo, new_us=mn, ratio=mn / mo,
                             old_spread=so, new_spread=sn, old_samples=t["old"],
                             new_samples=t["new"]))
    for threads in sorted({r["threads"] for r in rows}):
        ratios = [r["ratio"] for r in rows if r["threads"] == threads]
        gm = statistics.geometric_mean(ratios)
        print(f"{threads} thread(s): geometric mean new/old {gm:.3f}, range "
              f"{min(ratios):.3f}-{max(ratios):.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    old.close()
    new.close()


if __name__ == "__main__":
    main()
