"""gconv.dask against one process: throughput of a layer stack, and one large image.

    python bench/dask_bench.py                  # the defaults below (~1 minute in all)
    python bench/dask_bench.py --size 16384     # the issue's 16k x 16k case (a big machine)
    python bench/dask_bench.py --scheduler tcp://host:8786   # an existing cluster

Needs the dask extra (pip install "gconv[dask]"). Two measurements:

1. Throughput (images/s) of a 3-layer stack (3x3 conv 16->32 + ReLU, depthwise 3x3 +
   ReLU6, 1x1 32->32) over a batch of --batch images of 16 x --hw x --hw, float32:
   one process, gconv with 2 threads, the layers called in turn on the whole batch; against
   gconv.dask.sequential on a LocalCluster of 2 worker processes x 1 thread (batch chunks of
   --batch-chunk images, the input shipped from the client, as a real job's would be), and
   the same with the batch already on the workers (persisted), and with the layers applied
   one by one (gconv.dask.apply: one task and one halo exchange per layer and block).
2. One image (1, 16, --size, --size), float32, convolved 3x3 16->16, padding 1: the
   whole-array call in a child process (time and its peak RSS) against gconv.dask on the
   same cluster in --tile x --tile spatial chunks (generated on the workers; the result
   persisted on them): time and each worker's peak RSS.

3. With --overhead: what a task costs on the scheduler, and from which chunk size gconv on
   dask pays off. One 3x3 16->32 layer over a batch of --batch images (already on the
   workers) in batch chunks of 1 to --batch images, and over one 16 x 2048 x 2048 image in
   square tiles of 64 to 1024 pixels: per chunking the best time and the tasks, and a
   straight-line fit of time against tasks over the chunkings that keep both workers
   busy: its slope is the wall time a task adds.

Every time is the best of --repeats runs after a warm-up. The LocalCluster is started here
and closed at the end; --scheduler uses a running cluster instead (then it is not closed).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def _best(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _stack(gconv):
    return [gconv.Conv2d(16, 32, 3, padding=1, rng=1, activation="relu"),
            gconv.Conv2d(32, 32, 3, padding=1, groups=32, rng=2, activation="relu6"),
            gconv.Conv2d(32, 32, 1, rng=3)]


def _peak_rss_mb():
    """This process's peak resident set (VmHWM: its own address space's high-water mark;
    getrusage's ru_maxrss would carry the parent's over fork+exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _whole_image_child(size, repeats):
    """Runs in a child process: the whole-array call, its best time and peak RSS."""
    import gconv
    gconv.set_num_threads(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 16, size, size), dtype=np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    base = _peak_rss_mb()
    t = _best(lambda: gconv.conv2d(x, w, None, 1, 1), repeats)
    print(json.dumps({"seconds": t, "peak_rss_mb": _peak_rss_mb(),
                      "rss_with_input_before_mb": base}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hw", type=int, default=56)
    ap.add_argument("--batch-chunk", type=int, default=32)
    ap.add_argument("--size", type=int, default=2048, help="the large image's side (16384 "
                    "in the issue: 17 GB of input and as much output, not for a shared "
                    "machine)")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scheduler", default=None, help="address of a running scheduler")
    ap.add_argument("--json", default=None, help="write the figures here too")
    ap.add_argument("--overhead", action="store_true",
                    help="measure the per-task overhead and the pay-off chunk size instead")
    ap.add_argument("--child-whole", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child_whole is not None:
        return _whole_image_child(a.child_whole, a.repeats)

    import dask.array as da
    from distributed import Client, LocalCluster, wait

    import gconv
    import gconv.dask as gd

    out = {"machine": os.uname().nodename, "cpus": len(os.sched_getaffinity(0))}
    # 1. one process, 2 threads
    gconv.set_num_threads(2)
    layers = _stack(gconv)
    x = np.random.default_rng(0).standard_normal((a.batch, 16, a.hw, a.hw), dtype=np.float32)

    def whole():
        y = x
        for layer in layers:
            y = layer(y)
        return y

    t = _best(whole, a.repeats)
    out["stack_one_process_2_threads_img_s"] = a.batch / t
    ref = whole()

    cluster = None
    if a.scheduler:
        client = Client(a.scheduler)
    else:
        environ = dict(os.environ)     # a Nanny leaves OMP_NUM_THREADS=1 etc. in it
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
        os.environ.clear()
        os.environ.update(environ)
    try:
        if a.overhead:
            out["overhead"] = _overhead(a, client, layers[0], x, gconv, gd, da, wait)
            return _finish(out, a)
        xd = da.from_array(x, chunks=(a.batch_chunk, 16, a.hw, a.hw))
        seq = gd.sequential(layers)
        t = _best(lambda: client.compute(seq(xd)).result(), a.repeats)
        out["stack_cluster_2x1_fused_img_s"] = a.batch / t
        assert client.compute(seq(xd)).result().tobytes() == ref.tobytes()

        xp = client.persist(xd)       # the batch already on the workers
        wait(xp)
        t = _best(lambda: client.compute(seq(xp)).result(), a.repeats)
        out["stack_cluster_2x1_fused_data_on_workers_img_s"] = a.batch / t
        xp = None                     # released on the workers

        def per_layer():
            y = xd
            for layer in layers:
                y = gd.apply(layer, y)
            return client.compute(y).result()
        t = _best(per_layer, a.repeats)
        out["stack_cluster_2x1_per_layer_img_s"] = a.batch / t

        # 2. the large image
        child = subprocess.run([sys.executable, __file__, "--child-whole", str(a.size),
                                "--repeats", str(a.repeats)], capture_output=True, text=True,
                               check=True)
        out["image_whole_call"] = json.loads(child.stdout.strip().splitlines()[-1])
        environ = dict(os.environ)
        client.restart()              # fresh worker processes: their peak RSS starts anew
        os.environ.clear()
        os.environ.update(environ)
        w = np.random.default_rng(1).standard_normal((16, 16, 3, 3)).astype(np.float32)
        img = da.random.default_rng(0).standard_normal(
            (1, 16, a.size, a.size), chunks=(1, 16, a.tile, a.tile), dtype=np.float32)
        img = client.persist(img)
        wait(img)
        rss0 = client.run(_peak_rss_mb)

        def tiled():
            y = client.persist(gd.conv2d(img, w, None, 1, 1))
            wait(y)
            del y
        t = _best(tiled, a.repeats)
        rss = client.run(_peak_rss_mb)
        out["image_cluster_2x1"] = {
            "seconds": t, "tile": a.tile,
            "peak_rss_mb_per_worker": sorted(rss.values()),
            "input_share_resident_mb": 16 * a.size * a.size * 4 / 2 / 2**20,
            "rss_with_input_before_mb": sorted(rss0.values())}
        out["image_size"] = a.size
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return _finish(out, a)


def _finish(out, a):
    print(json.dumps(out, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


def _overhead(a, client, layer, x, gconv, gd, da, wait):
    """Per chunking: seconds and tasks; and a straight line seconds = base + per_task *
    tasks fitted over the chunkings that keep both workers busy (2 tasks or more): per_task
    is the wall time a task adds (see the module's docstring, item 3)."""
    def sweep(make, chunkings):
        rows = []
        for chunks in chunkings:
            data = client.persist(make(chunks))
            wait(data)
            tasks = gd.apply(layer, data).npartitions    # one task per output block
            t = _best(lambda: wait(client.persist(gd.apply(layer, data))), a.repeats)
            rows.append({"chunks": chunks, "tasks": tasks, "seconds": t})
            data = None                                  # released on the workers
        busy = [r for r in rows if r["tasks"] >= 2]
        per_task, base = np.polyfit([r["tasks"] for r in busy],
                                    [r["seconds"] for r in busy], 1)
        return {"rows": rows, "fit_base_ms": base * 1e3, "fit_per_task_ms": per_task * 1e3}

    batch = [c for c in (1, 2, 4, 8, 16, 32, 64, 128, 256) if c <= a.batch]
    res = {"batch": sweep(lambda c: da.from_array(x, chunks=(c, 16, a.hw, a.hw)), batch)}
    size = 2048
    res["tiles"] = sweep(
        lambda t: da.random.default_rng(0).standard_normal(
            (1, 16, size, size), chunks=(1, 16, t, t), dtype=np.float32),
        [64, 128, 256, 512, 1024])
    one = gconv.Conv2d(16, 32, 3, padding=1, rng=1, activation="relu")
    gconv.set_num_threads(2)
    res["one_process_2_threads_batch_s"] = _best(lambda: one(x), a.repeats)
    return res


if __name__ == "__main__":
    main()
