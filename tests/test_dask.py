"""gconv.dask: convolutions of dask arrays, bitwise equal to gconv on the whole array.

Three engines: the synchronous scheduler (most tests: fast and deterministic), the threaded
scheduler, and a real distributed LocalCluster of 2 worker processes x 1 thread, started by
a fixture and closed after. Skipped when dask (the "dask" extra) is not installed.
"""
import os
import pickle
import sys

import numpy as np
import pytest

import gconv

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
gd = pytest.importorskip("gconv.dask")

ISAS = gconv.available_isas()


@pytest.fixture(autouse=True)
def _restore_isa():
    isa = gconv.get_isa()
    yield
    gconv.set_isa(isa)


def same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _rand_chunks(rng, n, max_cuts=3):
    if n <= 1:
        return (n,)
    cuts = sorted(set(rng.integers(1, n, size=rng.integers(0, max_cuts + 1)).tolist()))
    return tuple(np.diff([0, *cuts, n]).tolist())


def _random_case(rng):
    kind = int(rng.integers(4))
    g = int(rng.choice([1, 2, 4]))
    if kind == 0:        # depthwise (and channel multiplier)
        cin = g = g * int(rng.integers(1, 3))
        cout = cin * int(rng.integers(1, 3))
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    elif kind == 1:      # pointwise, sometimes with a long K
        cin = g * int(rng.choice([1, 3, 8, 40]))
        cout = g * int(rng.integers(1, 9))
        k = (1, 1)
    else:                # grouped / dense general
        cin, cout = g * int(rng.integers(1, 9)), g * int(rng.integers(1, 9))
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    s = (1, 1) if kind == 1 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pc = int(rng.integers(4))
    if kind == 1:
        pad = 0
    elif pc == 0:
        pad = tuple((int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in range(2))
    elif pc == 1:
        pad = "same_upper"
    elif pc == 2:
        pad = "same_lower"
    else:
        pad = "same" if s == (1, 1) else 1
    return dict(N=int(rng.integers(0, 4)), cin=cin, cout=cout, g=g, k=k, s=s, d=d, pad=pad,
                H=int(rng.integers(6, 50)), W=int(rng.integers(6, 50)),
                dtype=[np.float32, np.float64][int(rng.integers(2))],
                bias=bool(rng.integers(2)), act=[None, "relu", "silu"][int(rng.integers(3))],
                isa=ISAS[int(rng.integers(len(ISAS)))])


@pytest.mark.parametrize("seed", range(12))
def test_random_shapes_and_chunkings_bitwise(seed):
    rng = np.random.default_rng(1000 + seed)
    done = 0
    while done < 10:
        c = _random_case(rng)
        gconv.set_isa(c["isa"])
        x = rng.standard_normal((c["N"], c["cin"], c["H"], c["W"])).astype(c["dtype"])
        w = rng.standard_normal((c["cout"], c["cin"] // c["g"], *c["k"])).astype(c["dtype"])
        b = rng.standard_normal(c["cout"]).astype(c["dtype"]) if c["bias"] else None
        args = (w, b, c["s"], c["pad"], c["d"], c["g"])
        try:
            ref = gconv.conv2d(x, *args, activation=c["act"])
        except ValueError:
            continue
        chunks = (_rand_chunks(rng, c["N"]) if c["N"] else (0,), _rand_chunks(rng, c["cin"]),
                  _rand_chunks(rng, c["H"]), _rand_chunks(rng, c["W"]))
        y = gd.conv2d(da.from_array(x, chunks=chunks), *args, activation=c["act"])
        assert same_bits(y.compute(scheduler="sync"), ref), (c, chunks)
        done += 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("stride,dilation,padding", [
    (1, 1, 1), (2, 1, 1), (3, 2, ((2, 0), (1, 3))), ((2, 3), (1, 2), "same_upper"),
    (1, 3, "same"), (2, 2, "same_lower"), (1, 1, ((0, 4), (3, 0))),
])
@pytest.mark.parametrize("kind", ["depthwise", "grouped", "dense"])
def test_borders_strides_dilations(kind, stride, dilation, padding, isa, dtype):
    gconv.set_isa(isa)
    rng = np.random.default_rng(7)
    cin, cout, g = {"depthwise": (8, 8, 8), "grouped": (8, 12, 4), "dense": (6, 10, 1)}[kind]
    x = rng.standard_normal((2, cin, 23, 19)).astype(dtype)
    w = rng.standard_normal((cout, cin // g, 3, 4)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    ref = gconv.conv2d(x, w, b, stride, padding, dilation, g)
    for chunks in [(1, cin, 5, 4), (2, cin, 1, 19), (1, cin, (7, 1, 15), (2, 17)),
                   (2, cin, 23, 1)]:
        y = gd.conv2d(da.from_array(x, chunks=chunks), w, b, stride, padding, dilation, g)
        assert same_bits(y.compute(scheduler="sync"), ref), chunks


def test_one_pixel_row_chunks_and_long_K():
    """Chunks of one row (far smaller than the halo) and a 7x7 dense layer with K = 32*49
    (the GEMM's K is blocked): exact."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 32, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 32, 7, 7)).astype(np.float32)
    ref = gconv.conv2d(x, w, None, 1, 3)
    y = gd.conv2d(da.from_array(x, chunks=(1, 32, 1, 20)), w, None, 1, 3)
    assert y.chunks[2] == (1,) * 20           # 'same'-like: the input's chunks kept
    assert same_bits(y.compute(scheduler="sync"), ref)


def test_empty_batch():
    x = da.zeros((0, 4, 10, 10), chunks=(0, 4, 5, 5), dtype=np.float32)
    w = np.ones((4, 4, 3, 3), np.float32)
    y = gd.conv2d(x, w, padding=1)
    assert y.shape == (0, 4, 10, 10)
    ref = gconv.conv2d(np.zeros((0, 4, 10, 10), np.float32), w, padding=1)
    assert same_bits(y.compute(scheduler="sync"), ref)


def test_output_chunks_follow_the_input():
    x = da.zeros((4, 8, 64, 64), chunks=(2, 8, 16, 32), dtype=np.float32)
    w = np.ones((8, 8, 3, 3), np.float32)
    assert gd.conv2d(x, w, padding="same").chunks == ((2, 2), (8,), (16,) * 4, (32, 32))
    assert gd.conv2d(x, w, stride=2, padding=1).chunks == ((2, 2), (8,), (8,) * 4, (16, 16))
    y = gd.conv2d(x, w, stride=8)      # windows far apart: no empty blocks
    assert all(c > 0 for cs in y.chunks[2:] for c in cs)


def test_channel_chunks_merged_to_whole_groups():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 12, 9, 9)).astype(np.float64)
    w = rng.standard_normal((6, 4, 3, 3))
    xd = da.from_array(x, chunks=(1, (2, 2, 4, 1, 3), 9, 9))   # groups of 4 channels
    y = gd.conv2d(xd, w, None, 1, 1, 1, 3)
    assert y.chunks[1] == (2, 2, 2)        # boundaries 4, 8 kept; 2 and 9 merged away
    assert same_bits(y.compute(scheduler="sync"), gconv.conv2d(x, w, None, 1, 1, 1, 3))
    y1 = gd.conv2d(xd, rng.standard_normal((5, 12, 1, 1)))      # groups=1: one block
    assert y1.chunks[1] == (5,)


def test_nhwc_conv1d_and_padding_modes():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 11, 13, 6)).astype(np.float32)     # NHWC
    w = rng.standard_normal((4, 6, 3, 3)).astype(np.float32)
    ref = gconv.conv2d(x, w, None, 2, 1, layout="NHWC")
    y = gd.conv2d(da.from_array(x, chunks=(1, 4, 5, 6)), w, None, 2, 1, layout="NHWC")
    assert same_bits(np.ascontiguousarray(y.compute(scheduler="sync")), ref)
    x1 = rng.standard_normal((3, 4, 50)).astype(np.float64)
    w1 = rng.standard_normal((6, 2, 5))
    for kw in (dict(stride=2, padding=(3, 1)), dict(padding="same", dilation=3),
               dict(stride=3, padding="same_upper")):
        ref = gconv.conv1d(x1, w1, None, groups=2, **kw)
        y = gd.conv1d(da.from_array(x1, chunks=(2, 2, 7)), w1, None, groups=2, **kw)
        assert same_bits(y.compute(scheduler="sync"), ref), kw
    x2 = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    w2 = rng.standard_normal((3, 3, 3, 3)).astype(np.float32)
    for mode in ("reflect", "replicate", "circular"):
        ref = gconv.conv2d(x2, w2, None, 1, 1, padding_mode=mode)
        y = gd.conv2d(da.from_array(x2, chunks=(1, 3, 5, 4)), w2, None, 1, 1,
                      padding_mode=mode)
        assert same_bits(y.compute(scheduler="sync"), ref), mode


# Problems where a block planned on its own reduces in another order than the whole array:
# (ISA, x shape, weight shape, stride, padding, dilation, groups, chunks, the plan choice
# that differs between the whole array and a block)
PLAN_ORDER_CASES = [
    ("generic", (1, 8, 35, 34), (7, 8, 3, 3), (1, 2), ((0, 0), (0, 3)), (1, 2), 1,
     (1, 8, 35, (15, 19)), "channel_vectors"),
    ("avx512", (1, 8, 34, 43), (6, 8, 5, 4), (2, 1), "same_lower", (2, 2), 1,
     (1, 8, (7, 17, 6, 4), 43), "KC"),
    ("avx2", (1, 2, 22, 9), (2, 1, 4, 4), 1, ((1, 3), (3, 1)), 1, 2,
     (1, (1, 1), 22, (1, 1, 5, 2)), "depthwise plane mode"),
    ("avx512", (1, 32, 12, 12), (32, 1, 3, 3), 1, 1, 1, 32, (1, 32, 5, 12),
     "depthwise lanes mode"),
]


@pytest.mark.parametrize("case", PLAN_ORDER_CASES, ids=[c[-1] for c in PLAN_ORDER_CASES])
def test_plan_order_reproducer(case):
    """The whole array's plan and a block's can reduce in different orders: without plan
    matching some block differs in the last bits; gconv.dask computes such blocks on an
    enlarged region instead, and the result is exact."""
    isa, xs, ws, stride, padding, dilation, groups, chunks, _ = case
    if isa not in ISAS:
        pytest.skip(f"this CPU has no {isa}")
    gconv.set_isa(isa)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    ref = gconv.conv2d(x, w, None, stride, padding, dilation, groups)
    xd = da.from_array(x, chunks=chunks)
    spec = gd._layer_spec(xd.shape, np.dtype(np.float32), w, None, stride, padding,
                          dilation, groups, None)[0]
    unmatched = gd._build(xd, [spec], "auto", 1, "t", match_plans=False)
    assert not same_bits(unmatched.compute(scheduler="sync"), ref)
    y = gd.conv2d(xd, w, None, stride, padding, dilation, groups)
    assert y.gconv_enlarged_blocks > 0
    assert same_bits(y.compute(scheduler="sync"), ref)


def test_layers_and_sequential_with_activations():
    rng = np.random.default_rng(6)
    layers = [gconv.Conv2d(8, 16, 3, padding=1, rng=1, activation="relu"),
              gconv.Conv2d(16, 16, 3, stride=2, padding="same_upper", groups=16, rng=2,
                           activation=("leaky_relu", 0.1)),
              gconv.Conv2d(16, 8, 1, rng=3, activation="silu"),
              gconv.Conv2d(8, 8, (3, 5), padding=((2, 0), (1, 3)), dilation=(1, 2), rng=4)]
    x = rng.standard_normal((3, 8, 37, 29)).astype(np.float32)
    ref = x
    for layer in layers:
        ref = layer(ref)
    xd = da.from_array(x, chunks=(2, 8, 10, 12))
    y = xd
    for layer in layers:
        y = gd.apply(layer, y)
        assert y.dtype == np.float32
    assert same_bits(y.compute(scheduler="sync"), ref)
    seq = gd.sequential(layers)
    ys = seq(xd)
    assert same_bits(ys.compute(scheduler="sync"), ref)
    # fused: one task per output block (plus one weights key), no per-layer arrays
    graph = dict(ys.__dask_graph__())
    own = [k for k in graph if isinstance(k, tuple) and k[0] == ys.name]
    weights = [k for k in graph if isinstance(k, tuple) and "weights" in k[0]]
    halos = [k for k in graph if isinstance(k, tuple) and "-halo-" in k[0]]
    assert len(own) == np.prod(ys.numblocks) and len(weights) == 1
    assert len(graph) == (len(own) + len(weights) + len(halos)
                          + len(dict(xd.__dask_graph__())))
    assert halos


def test_only_the_halo_travels():
    """A neighbour chunk is cut to the rows and columns a block needs (a slicing task next
    to the chunk), not sent whole: a 3x3 'same' layer takes 1-pixel strips and corners."""
    w = np.ones((8, 8, 3, 3))
    xd = da.zeros((1, 8, 256, 256), chunks=(1, 8, 64, 64))
    y = gd.conv2d(xd, w, padding=1)
    assert y.gconv_enlarged_blocks == 0
    graph = dict(y.__dask_graph__())
    halos = [k for k in graph if isinstance(k, tuple) and "-halo-" in k[0]]
    assert halos and all(min(k[-3] - k[-4], k[-1] - k[-2]) == 1 for k in halos)
    # each of the 16 blocks: its own chunk plus up to 8 neighbours' strips and corners
    assert len(halos) == 4 * 2 * 3 * 2 + 4 * 9   # strips: 2 per inner edge; corners


@pytest.mark.parametrize("seed", range(6))
def test_random_stacks_bitwise(seed):
    """Random stacks of 2-3 layers (strides, dilations, asymmetric and 'same*' padding,
    groups, activations), random chunkings, every ISA: the fused stack equals the layers
    called in turn on the whole array."""
    rng = np.random.default_rng(2000 + seed)
    gconv.set_isa(ISAS[seed % len(ISAS)])
    dtype = [np.float32, np.float64][seed % 2]
    c = int(rng.choice([4, 8]))
    layers = []
    for i in range(int(rng.integers(2, 4))):
        g = int(rng.choice([1, 2, c]))
        cout = c if g == c else int(rng.choice([4, 8]))
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = [((1, 0), (0, 2)), "same_upper", "same_lower", 1][int(rng.integers(4))]
        layers.append(gconv.Conv2d(c, cout, k, s, pad, (int(rng.integers(1, 3)), 1), g,
                                   dtype=dtype, rng=i, activation=["relu", None][i % 2]))
        c = cout
    x = rng.standard_normal((2, layers[0].in_channels, 40, 37)).astype(dtype)
    ref = x
    for layer in layers:
        ref = layer(ref)
    for _ in range(3):
        chunks = (1, layers[0].in_channels, _rand_chunks(rng, 40, 4), _rand_chunks(rng, 37, 4))
        y = gd.sequential(layers)(da.from_array(x, chunks=chunks))
        assert same_bits(y.compute(scheduler="sync"), ref), (layers, chunks)


def test_conv1d_layers_and_sequential():
    rng = np.random.default_rng(8)
    layers = [gconv.Conv1d(4, 8, 5, padding=2, rng=1, activation="relu"),
              gconv.Conv1d(8, 8, 3, stride=2, groups=8, rng=2)]
    x = rng.standard_normal((2, 4, 61)).astype(np.float32)
    ref = layers[1](layers[0](x))
    xd = da.from_array(x, chunks=(1, 4, 9))
    assert same_bits(gd.sequential(layers)(xd).compute(scheduler="sync"), ref)
    assert same_bits(gd.apply(layers[1], gd.apply(layers[0], xd)).compute(scheduler="sync"),
                     ref)


def test_weights_are_one_key_not_per_task():
    rng = np.random.default_rng(9)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    xd = da.zeros((8, 64, 32, 32), chunks=(1, 64, 8, 8), dtype=np.float32)
    y = gd.conv2d(xd, w, padding=1)
    graph = dict(y.__dask_graph__())
    holders = [k for k, v in graph.items() if isinstance(v, gd._Stack)]
    assert len(holders) == 1
    tasks = [k for k in graph if isinstance(k, tuple) and k[0] == y.name]
    assert len(tasks) == 8 * 16
    # a task's own pickle holds no weights: far smaller than them
    one = graph[tasks[0]]
    assert len(pickle.dumps(one)) < w.nbytes / 20


def test_threaded_scheduler_and_threads_per_task():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 8, 30, 30)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    ref = gconv.conv2d(x, w, None, 1, 1, 1, 2)
    xd = da.from_array(x, chunks=(1, 8, 10, 15))
    with dask.config.set(num_workers=2):
        y = gd.conv2d(xd, w, None, 1, 1, 1, 2).compute(scheduler="threads")
    assert same_bits(y, ref)
    assert gd._task_threads(3) == 3
    assert gd._task_threads(None) is None          # the main thread: gconv's own setting
    cpus = len(os.sched_getaffinity(0))
    with dask.config.set(num_workers=2):           # a pool thread: the CPUs over the pool
        share = dask.delayed(gd._task_threads)(None).compute(scheduler="threads")
    assert share == max(1, cpus // 2)


@pytest.mark.parametrize("bad,err,match", [
    (lambda x, w: gd.conv2d(x.compute(), w), TypeError, "dask.array.Array"),
    (lambda x, w: gd.conv2d(x.astype(np.int32), w), TypeError, "float32 or float64"),
    (lambda x, w: gd.conv2d(x, w.astype(np.float64)), TypeError, "weight type"),
    (lambda x, w: gd.conv2d(x, w[:, :2]), ValueError, "channels"),
    (lambda x, w: gd.conv2d(x[x[:, 0, 0, 0] > 0], w), ValueError, "chunk sizes"),
    (lambda x, w: gd.conv2d(x, w, padding=-1), ValueError, "negative padding"),
    (lambda x, w: gd.conv2d(x, w, activation="nope"), ValueError, "activation"),
    (lambda x, w: gd.conv2d(x[0], w), ValueError, "4-D"),
    (lambda x, w: gd.conv1d(x, w), ValueError, "3-D"),
    (lambda x, w: gd.conv2d(x, w, padding_mode="reflect", padding=9), ValueError, "reflect"),
])
def test_errors_before_any_task(bad, err, match):
    x = da.ones((2, 4, 8, 8), chunks=(1, 4, 4, 4), dtype=np.float32)
    w = np.ones((4, 4, 3, 3), np.float32)
    with pytest.raises(err, match=match):
        bad(x, w)


def test_import_gconv_does_not_import_dask():
    import subprocess
    code = "import sys, gconv; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(__import__('pathlib').Path(gconv.__file__).parent.parent))
    assert out.stdout.strip() == "False", out.stderr


# ---------------------------------------------------------------------------------------
# a real engine: 2 worker processes x 1 thread
@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    # a Nanny writes its pre-spawn environment (OMP_NUM_THREADS=1, ...) into this process's
    # os.environ before spawning a worker (distributed/nanny.py): put it back after
    environ = dict(os.environ)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()
        os.environ.clear()
        os.environ.update(environ)


def test_local_cluster_bitwise(client):
    rng = np.random.default_rng(11)
    for _ in range(4):
        c = _random_case(rng)
        c["isa"] = gconv.get_isa()
        x = rng.standard_normal((max(c["N"], 1), c["cin"], c["H"], c["W"])).astype(c["dtype"])
        w = rng.standard_normal((c["cout"], c["cin"] // c["g"], *c["k"])).astype(c["dtype"])
        args = (w, None, c["s"], c["pad"], c["d"], c["g"])
        try:
            ref = gconv.conv2d(x, *args, activation=c["act"])
        except ValueError:
            continue
        chunks = (1, _rand_chunks(rng, c["cin"]), _rand_chunks(rng, c["H"]),
                  _rand_chunks(rng, c["W"]))
        y = gd.conv2d(da.from_array(x, chunks=chunks), *args, activation=c["act"])
        assert same_bits(client.compute(y).result(), ref), (c, chunks)


def test_local_cluster_sequential_weights_sent_once(client):
    rng = np.random.default_rng(12)
    layers = [gconv.Conv2d(16, 32, 3, padding=1, rng=1, activation="relu"),
              gconv.Conv2d(32, 32, 3, padding=1, groups=32, rng=2, activation="relu6"),
              gconv.Conv2d(32, 16, 1, rng=3)]
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    ref = x
    for layer in layers:
        ref = layer(ref)
    before = client.run(gd._received_counts)
    y = gd.sequential(layers)(da.from_array(x, chunks=(1, 16, 16, 16)))
    n_tasks = int(np.prod(y.numblocks))
    assert n_tasks == 32
    assert same_bits(client.compute(y).result(), ref)
    after = client.run(gd._received_counts)
    stacks = {a: after[a]["stacks"] - before[a]["stacks"] for a in after}
    packings = {a: after[a]["packings"] - before[a]["packings"] for a in after}
    # the weights' key reached each worker at most once, not once per task
    assert sum(stacks.values()) <= len(after) < n_tasks
    # and each worker packed each layer once per block geometry (the 2x2 blocks of a
    # 32x32 image have 4 different paddings), not once per task: 3 layers x 4 at most,
    # where 16 tasks per worker would make 48 packings
    assert sum(packings.values()) >= 3
    assert all(n <= 3 * 4 for n in packings.values()), packings
    # each task's threads: the node's CPUs over the 2 workers' threads, never more
    cpus = len(__import__("os").sched_getaffinity(0))
    hosts = gd._host_threads()          # what a graph built now sends its tasks
    assert sum(hosts.values()) == 2
    for addr in after:
        share = client.submit(gd._task_threads, hosts, workers=[addr], pure=False)
        assert share.result() == max(1, cpus // sum(hosts.values()))


def test_a_layer_called_on_a_dask_array_runs_gconv_dask_bitwise():
    rng = np.random.default_rng(5)
    layer = gconv.Conv2d(8, 16, 3, padding=1, groups=4, activation="relu", rng=1)
    x = rng.standard_normal((3, 8, 20, 17)).astype(np.float32)
    y = layer(da.from_array(x, chunks=(2, 8, 7, 9)))
    assert isinstance(y, da.Array)
    np.testing.assert_array_equal(y.compute(scheduler="synchronous"), layer(x))
    layer1 = gconv.Conv1d(4, 8, 5, padding=2, groups=2, rng=2)
    s = rng.standard_normal((2, 4, 50)).astype(np.float32)
    y1 = layer1(da.from_array(s, chunks=(1, 4, 13)))
    np.testing.assert_array_equal(y1.compute(scheduler="synchronous"), layer1(s))
    with pytest.raises(TypeError, match="no residual or out"):
        layer(da.from_array(x), residual=x)
