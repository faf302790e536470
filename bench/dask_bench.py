"""gconv.dask against one process: throughput of a layer stack, and one large image.

    python bench/dask_bench.py                  # the defaults below (~1 minute in all)
    python bench/dask_bench.py --size 16384 --tile 1024   # the issue's 16k x 16k image
    python bench/dask_bench.py --scheduler tcp://host:8786   # an existing cluster

Needs the dask extra (pip install "gconv[dask]"). Two measurements:

1. Throughput (images/s) of a 3-layer stack (3x3 conv 16->32 + ReLU, depthwise 3x3 +
   ReLU6, 1x1 32->32) over a batch of --batch images of 16 x --hw x --hw, float32:
   one process, gconv with 2 threads, the layers called in turn on the whole batch; against
   gconv.dask.sequential on a LocalCluster of 2 worker processes x 1 thread (batch chunks of
   --batch-chunk images, the input shipped from the client, as a real job's would be), and
   the same with the batch already on the workers (persisted), and with the layers applied
   one by one (gconv.dask.apply: one task and one halo exchange per layer and block).
2. One image (1, 16, --size, --size), float32, convolved 3x3 16->16, padding 1, in --tile x
   --tile spatial chunks on the same cluster, streamed as a job over a scan would run: each
   input tile made on a worker where it is needed (seeded, so any process can make the
   same image), each output tile reduced on its worker to a digest of its bytes (SHA-256),
   nothing of the image persisted. Time, and each worker's peak RSS from fresh worker
   processes; the same stream without the convolution (making the tiles and digesting
   them) is timed too, so the convolution's share is the difference. Against the whole
   array: gconv.conv2d on the same image in a child process with 2 threads (time, peak
   RSS), its output cut into the same tiles and digested, which must equal the cluster's
   tile for tile (bitwise). The whole-array call is skipped, with the reason, when its
   input and output do not fit in this machine's available memory (16384: 34 GB).

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
import hashlib
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


def _image(da, size, tile):
    """The large image, (1, 16, size, size) float32 in tile x tile chunks: seeded per chunk,
    so the child process makes the same values."""
    return da.random.default_rng(0).standard_normal((1, 16, size, size),
                                                     chunks=(1, 16, tile, tile),
                                                     dtype=np.float32)


def _image_weight():
    return np.random.default_rng(1).standard_normal((16, 16, 3, 3)).astype(np.float32)


def _tile_digest(block):
    """A block's bytes as a (1, 1, 1, 1) uint64 (the first 8 bytes of their SHA-256):
    compares tiles bitwise without gathering them."""
    d = hashlib.sha256(np.ascontiguousarray(block).tobytes()).digest()[:8]
    return np.frombuffer(d, dtype=np.uint64).reshape(1, 1, 1, 1)


def _digests(da, y):
    """The (1, 1, rows, columns) array of y's tile digests, lazily."""
    return da.map_blocks(_tile_digest, y, dtype=np.uint64,
                         chunks=tuple((1,) * n for n in y.numblocks))


def _whole_image_bytes(size):
    return 2 * 16 * size * size * 4          # input and output, float32


def _available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _whole_image_child(size, tile, repeats):
    """Runs in a child process: the whole-array call, its best time, peak RSS and tile
    digests."""
    import dask.array as da
    import gconv
    gconv.set_num_threads(2)
    x = np.ascontiguousarray(_image(da, size, tile).compute(scheduler="synchronous"))
    w = _image_weight()
    base = _peak_rss_mb()
    t = _best(lambda: gconv.conv2d(x, w, None, 1, 1), repeats)
    y = gconv.conv2d(x, w, None, 1, 1)
    digests = [[int(_tile_digest(y[:, :, r:r + tile, c:c + tile])[0, 0, 0, 0])
                for c in range(0, size, tile)] for r in range(0, size, tile)]
    print(json.dumps({"seconds": t, "peak_rss_mb": _peak_rss_mb(),
                      "rss_with_input_before_mb": base, "digests": digests}))


def _large_image(a, client, gd, da, wait):
    """Item 2 of the module's docstring."""
    res = {"size": a.size, "tile": a.tile}
    need, avail = _whole_image_bytes(a.size), _available_bytes()
    whole = None
    if need < 0.8 * avail:
        child = subprocess.run([sys.executable, __file__, "--child-whole", str(a.size),
                                "--tile", str(a.tile), "--repeats", str(a.repeats)],
                               capture_output=True, text=True, check=True)
        whole = json.loads(child.stdout.strip().splitlines()[-1])
        res["whole_call_2_threads"] = {k: v for k, v in whole.items() if k != "digests"}
    else:
        res["whole_call_2_threads"] = {
            "skipped": f"its input and output need {need / 2**30:.1f} GiB; this machine has "
                       f"{avail / 2**30:.1f} GiB available"}
    environ = dict(os.environ)
    client.restart()              # fresh worker processes: their peak RSS starts anew
    os.environ.clear()
    os.environ.update(environ)
    w = _image_weight()
    rss0 = client.run(_peak_rss_mb)
    t_make = _best(lambda: _digests(da, _image(da, a.size, a.tile)).compute(), a.repeats)
    digests = []

    def tiled():
        d = _digests(da, gd.conv2d(_image(da, a.size, a.tile), w, None, 1, 1)).compute()
        digests[:] = [d]
    t = _best(tiled, a.repeats)
    rss = client.run(_peak_rss_mb)
    res["cluster_2x1_streamed"] = {
        "seconds": t, "tiles": int(np.prod(digests[0].shape)),
        "making_and_digesting_tiles_only_seconds": t_make,
        "convolution_seconds": t - t_make,
        "peak_rss_mb_per_worker": sorted(rss.values()),
        "rss_at_start_mb_per_worker": sorted(rss0.values()),
        "input_tile_mb": 16 * a.tile * a.tile * 4 / 2**20}
    if whole is not None:
        same = digests[0][0, 0].tolist() == whole["digests"]
        res["cluster_2x1_streamed"]["bitwise_equal_to_whole_call"] = same
        assert same, "a tile of the cluster's result differs from the whole-array call's"
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hw", type=int, default=56)
    ap.add_argument("--batch-chunk", type=int, default=32)
    ap.add_argument("--size", type=int, default=2048, help="the large image's side (16384 "
                    "in the issue: streamed in tiles, each worker holds a few; the "
                    "whole-array call runs only where its input and output fit in memory)")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scheduler", default=None, help="address of a running scheduler")
    ap.add_argument("--json", default=None, help="write the figures here too")
    ap.add_argument("--overhead", action="store_true",
                    help="measure the per-task overhead and the pay-off chunk size instead")
    ap.add_argument("--child-whole", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child_whole is not None:
        return _whole_image_child(a.child_whole, a.tile, a.repeats)

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

        out["image"] = _large_image(a, client, gd, da, wait)
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
