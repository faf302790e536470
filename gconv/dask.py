"""gconv on dask arrays: ``gconv.dask.conv2d``, ``conv1d``, ``apply`` and ``sequential``.

    import dask.array as da, gconv, gconv.dask
    x = da.from_array(images, chunks=(8, 16, 128, 128))           # (N, C, H, W)
    y = gconv.dask.conv2d(x, w, b, stride=2, padding=1, groups=4)  # lazy, chunked like x
    y.compute()                     # bitwise equal to gconv.conv2d(images, w, b, ...)

An optional extra (``pip install "gconv[dask]"``); ``import gconv`` never imports dask.

How a chunked convolution is cut (per spatial axis, H and W alike). Output element o reads
input o*s - pad_begin + j*d for taps j = 0..k-1: the window [o*s - pb, o*s - pb + ext) with
ext = d*(k-1) + 1. Output block [o0, o1) therefore reads exactly

    [o0*s - pb, (o1 - 1)*s - pb + ext)

in global input coordinates. The part inside the array is gathered from however many input
chunks it touches (so a chunk may be smaller than the halo: a chunk of one pixel row works,
nothing is rechunked; a slicing task beside each neighbour chunk cuts out just the rows and
columns needed, so only the halo travels), and the part outside becomes the block's own zero padding, which is
therefore non-zero only at the global borders: asymmetric, 'same', 'same_upper' and
'same_lower' padding all resolve to (begin, end) pads once, on the whole array, and the
blocks inherit them. Each block then runs gconv.conv2d on its window. Output chunks follow
the input's: output o belongs to the input chunk holding its centre tap (o*s - pb +
(ext-1)//2), so a 'same' convolution keeps the input's chunks exactly; empty blocks (stride
larger than a chunk) are merged away.

The batch axis runs as it is chunked. Channels: a block needs whole groups, so input
channel chunks are merged until every chunk boundary falls on a group boundary (groups=1:
one channel chunk); each channel block then runs its own groups, and its output channels
form one output chunk.

Weights are one graph key per channel block, referenced by every task of that block: a
distributed worker receives them once, and keeps the kernels' packed copy (per block
geometry) for all its tasks.

Bitwise identity: a block planned on its own may reduce in another order than the whole
array (see _plan_key for the plan choices that do); _Matcher finds those blocks when the
graph is built and computes each on the smallest enlarged region that plans like the whole
array, cropping the block out of it.

A stack (``sequential``) composes the layers' windows back from each output block: one
gather per block for the whole stack, and the intermediate results never leave the task.

Threads: see ``_task_threads``: on a distributed worker each task gets the node's CPUs
divided by all worker threads on that node (so the node is never oversubscribed); under the
threaded scheduler the CPUs divided by its pool size; under the synchronous scheduler gconv's
own setting. ``threads=n`` forces n per task.
"""
from __future__ import annotations

import dataclasses
import operator
import os
import threading
from typing import Sequence

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("gconv.dask needs dask: pip install \"gconv[dask]\" (dask[array] and "
                      "distributed, pinned to the same release)") from e

from . import _conv1d
from . import _isa as _isa_mod
from . import _threads as _threads_mod
from ._conv import Conv2d, UninitializedConv2d
from ._conv1d import Conv1d
from ._validation import (FLOAT_DTYPES, as_float_array, check_padding_mode, check_same_dtype,
                          problem_from_shapes)

__all__ = ["conv2d", "conv1d", "apply", "sequential", "Sequential", "block_windows"]


# ---------------------------------------------------------------------------------------
# geometry
def _ceil_div(a, b):
    return -(-a // b)


@dataclasses.dataclass(frozen=True)
class AxisLayer:
    """One convolution along one axis: kernel k, stride s, dilation d, pads (pb, pe)."""
    k: int
    s: int
    d: int
    pb: int
    pe: int

    @property
    def ext(self):
        return self.d * (self.k - 1) + 1

    def out_size(self, L):
        return (L + self.pb + self.pe - self.ext) // self.s + 1

    def anchor_to_out(self, b, L):
        """First output whose centre tap lies at or after input position b (clipped)."""
        c = (self.ext - 1) // 2 - self.pb
        return min(max(_ceil_div(b - c, self.s), 0), self.out_size(L))

    def window(self, o0, o1):
        """Input range (unclipped, global coordinates) that outputs [o0, o1) read."""
        return o0 * self.s - self.pb, (o1 - 1) * self.s - self.pb + self.ext


def _out_bounds(in_chunks, layers):
    """Output block boundaries of a stack of per-axis layers for these input chunks."""
    L = sum(in_chunks)
    bounds = list(np.cumsum((0,) + tuple(in_chunks)))
    for lay in layers:
        O = lay.out_size(L)
        inner = [lay.anchor_to_out(b, L) for b in bounds[1:-1]]
        bounds = sorted(set([0, *inner, O]))
        L = O
    return bounds


def _sizes(L, layers):
    sizes = [L]
    for lay in layers:
        sizes.append(lay.out_size(sizes[-1]))
    return sizes


def region_windows(L, layers, o0, o1):
    """[(lo, hi, pad_lo, pad_hi) per layer]: layer i's input range [lo, hi) (clipped to its
    input) and the zero padding that window needs below and above, for outputs [o0, o1) of
    the last layer; the ranges are nested back from the outputs, so running the layers in
    order on the first window yields exactly [o0, o1). An input of length L."""
    sizes = _sizes(L, layers)
    wins = []
    a, b = o0, o1
    for lay, n in zip(reversed(layers), reversed(sizes[:-1])):
        w0, w1 = lay.window(a, b)
        lo, hi = max(w0, 0), min(w1, n)
        if hi <= lo:          # the window reads padding only
            lo = hi = min(max(w0, 0), n)
        wins.append((lo, hi, lo - w0, w1 - hi))
        a, b = lo, hi
    return wins[::-1]


def block_windows(in_chunks, layers):
    """Per output block of the last layer: (o0, o1, region_windows(...))."""
    L = sum(in_chunks)
    bounds = _out_bounds(in_chunks, layers)
    return [(o0, o1, region_windows(L, layers, o0, o1))
            for o0, o1 in zip(bounds[:-1], bounds[1:])]


def _chunk_slices(chunks, lo, hi):
    """[(chunk index, local start, local stop)] covering [lo, hi) of an axis so chunked."""
    out, start = [], 0
    for i, c in enumerate(chunks):
        stop = start + c
        a, b = max(lo, start), min(hi, stop)
        if a < b:
            out.append((i, a - start, b - start))
        start = stop
    return out


# ---------------------------------------------------------------------------------------
# the worker side
_received = {"stacks": 0, "packings": 0}   # this process's counts (the tests read them)
_received_lock = threading.Lock()


def _received_counts():
    """What this process has received and done: _Stack objects unpickled (a channel block's
    weights arriving) and weight packings (a layer packed for one block geometry). Run on
    the workers by the tests: both must grow per worker, not per task."""
    return dict(_received)


def _count(what):
    with _received_lock:
        _received[what] += 1


class _Stack:
    """The layers one task runs (one channel block), with their weights; sent to a worker
    once, as one graph key. Keeps a Conv2d per (layer, pads), whose weights, packed for the
    block's kernel plan on the first task of that geometry, serve every later task of it on
    that worker (the packed layout depends on the plan, so it is made where it runs)."""

    def __init__(self, specs, algorithm):
        # spec: dict(weight, bias, stride, dilation, groups, activation)
        self.specs = specs
        self.algorithm = algorithm
        self._layers = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"specs": self.specs, "algorithm": self.algorithm}

    def __setstate__(self, state):
        self.specs, self.algorithm = state["specs"], state["algorithm"]
        self._layers, self._lock = {}, threading.Lock()
        _count("stacks")

    def run(self, i, pads, x):
        """Layer i with these pads on x; counts a packing when it made one."""
        lay = self.layer(i, pads)
        packed = len(lay._packed)
        y = lay(x, algorithm=self.algorithm)
        if len(lay._packed) > packed:
            _count("packings")
        return y

    def layer(self, i, pads):
        key = (i, pads)
        lay = self._layers.get(key)
        if lay is None:
            with self._lock:
                lay = self._layers.get(key)
                if lay is None:
                    s = self.specs[i]
                    w = s["weight"]
                    C_out, CG, kh, kw = w.shape
                    pt, pb, pl, pr = pads
                    lay = UninitializedConv2d(CG * s["groups"], C_out, (kh, kw),
                                              s["stride"], ((pt, pb), (pl, pr)),
                                              s["dilation"], s["groups"],
                                              bias=s["bias"] is not None, dtype=w.dtype,
                                              activation=s["activation"])
                    lay.weight = w
                    lay.bias = s["bias"]
                    if len(self._layers) > 64:
                        self._layers.clear()
                    self._layers[key] = lay
        return lay


@dataclasses.dataclass(frozen=True)
class _BlockArgs:
    """Literal arguments of one block task (a dataclass, so dask never reads it as keys)."""
    pads: tuple              # per layer: (top, bottom, left, right)
    zero_hw: tuple           # (H, W) of a window reading padding only, else None
    threads: object          # see _task_threads
    crop: tuple              # (h0, h1, w0, w1) of the block in the region computed, or None
    isa: str                 # the client's gconv ISA when the graph was built


_omp = None


def _omp_lib():
    global _omp
    if _omp is None:
        try:
            import ctypes
            lib = ctypes.CDLL("libgomp.so.1")
            _omp = (lib.omp_get_max_threads, lib.omp_set_num_threads)
        except (OSError, AttributeError):
            _omp = False
    return _omp


def _current_worker():
    """The distributed worker running this task, or None (another scheduler)."""
    try:
        from distributed import get_worker
        return get_worker()
    except (ImportError, ValueError):
        return None


def _task_threads(spec):
    """Threads this task may use (None: leave gconv's setting)."""
    if isinstance(spec, int):
        return spec
    worker = _current_worker()
    cpus = _threads_mod._cpus_available()
    if worker is not None:
        from distributed.comm import get_address_host
        host = get_address_host(worker.address)
        host_threads = (spec or {}).get(host) if isinstance(spec, dict) else None
        if not host_threads:
            host_threads = worker.state.nthreads
        return max(1, cpus // host_threads)
    if threading.current_thread() is threading.main_thread():
        return None           # the synchronous scheduler: one task at a time
    pool = dask.config.get("num_workers", None) or os.cpu_count() or 1
    return max(1, cpus // pool)


def _run_block(stack, pieces, args):
    """One output block: gather its window from the chunks it touches, run the layers."""
    x = np.block(pieces)    # [channel chunk][row][column] of exact pieces: the window
    n = _task_threads(args.threads)
    if n is not None and n > _threads_mod.get_num_threads() and _current_worker() is not None:
        # a Nanny starts workers with OMP_NUM_THREADS=1 (distributed's pre-spawn-environ),
        # which is gconv's default there: raise it to the worker's share (every task of
        # this process asks for the same count)
        _threads_mod.set_num_threads(n)
    omp = _omp_lib() if n is not None else False
    old = None
    if omp:
        old = omp[0]()
        omp[1](n)
    try:
        if args.zero_hw is not None:    # the first layer reads padding only
            x = np.zeros((x.shape[0], x.shape[1], *args.zero_hw), dtype=x.dtype)
        x = np.ascontiguousarray(x)
        if _isa_mod.get_isa() != args.isa:
            _isa_mod.set_isa(args.isa)
        for i, pads in enumerate(args.pads):
            x = stack.run(i, pads, x)
        if args.crop is not None:
            h0, h1, w0, w1 = args.crop
            x = np.ascontiguousarray(x[:, :, h0:h1, w0:w1])
        return x
    finally:
        if old is not None:
            omp[1](old)


# ---------------------------------------------------------------------------------------
# the client side
def _check_dask_input(x, ndim, what):
    if not isinstance(x, da.Array):
        raise TypeError(f"{what} expects a dask.array.Array as input, got {type(x).__name__} "
                        f"(use gconv.{what.split('.')[-1]} for NumPy arrays)")
    if np.dtype(x.dtype) not in FLOAT_DTYPES:
        raise TypeError(f"input must have dtype float32 or float64, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{what} expects a {ndim}-D batched input, got a {x.ndim}-D array of "
                         f"shape {x.shape}")
    if any(np.isnan(c) for cs in x.chunks for c in cs):
        raise ValueError(f"{what} needs known chunk sizes, but the input's chunks are "
                         f"{x.chunks} (call x.compute_chunk_sizes() first)")


def _host_threads():
    """{host: worker threads on it} of the current distributed client, or None."""
    try:
        from distributed import default_client
        client = default_client()
    except (ImportError, ValueError):
        return None
    hosts = {}
    for info in client.scheduler_info(n_workers=-1)["workers"].values():
        hosts[info["host"]] = hosts.get(info["host"], 0) + info["nthreads"]
    return hosts


def _spec(weight, bias, stride, dilation, groups, activation):
    return dict(weight=weight, bias=bias, stride=stride, dilation=dilation, groups=groups,
                activation=activation)


def _group_channel_bounds(c_chunks, CG):
    """Input channel chunk boundaries kept: those on a group boundary."""
    bounds = np.cumsum((0,) + tuple(c_chunks))
    return sorted(set(int(b) for b in bounds if b % CG == 0))


def _plan_key(C, H, W, spec, pads, algorithm, isa):
    """What of a layer's kernel plan fixes each output element's reduction order: the
    implementation; for the GEMM kernels the channel-vector choice (it takes the taps in
    another order) and the K block KC (the micro-kernel's partial sums restart at a block
    boundary), both following the tile choice, which follows the plane size; for the
    depthwise kernel its plane mode (images narrower than a vector) and lanes mode (small
    3x3 'same' planes). See the README, "More than one machine". None: the layer cannot run
    on this window."""
    from . import _kernels
    from ._conv import select_implementation
    w = spec["weight"]
    pt, pb, pl, pr = pads
    try:
        p = problem_from_shapes((1, C, H, W), w.shape, spec["stride"], ((pt, pb), (pl, pr)),
                                spec["dilation"], spec["groups"], dtype=w.dtype)
    except ValueError:
        return None
    p, _, impl = select_implementation(p, algorithm)
    plan = impl.make_plan(p, isa, 1)
    if plan is None:                      # the reference: one order for any size
        return (impl.name,)
    b = plan.blocking
    if impl.kind == _kernels.KINDS["depthwise"]:   # row, plane (narrow images) or lanes mode
        return (impl.name, b["mode"])
    return (impl.name, b["channel_vectors"], b["KC"])


class _Matcher:
    """Chooses, per output block, the region a task computes: the block itself when every
    layer's plan on its window reduces in the whole array's order (see _plan_key), else the
    smallest enlargement of it that does (the task crops the block out of it), at worst the
    whole spatial extent (the whole array's own geometry)."""

    def __init__(self, specs, C, H, W, hl, wl, algorithm, isa):
        self.specs, self.hl, self.wl, self.H, self.W = specs, hl, wl, H, W
        self.algorithm, self.isa = algorithm, isa
        self.OH, self.OW = _sizes(H, hl)[-1], _sizes(W, wl)[-1]
        self.chans = [C] + [sp["weight"].shape[0] for sp in specs[:-1]]
        self.target = self._keys(region_windows(H, hl, 0, self.OH),
                                 region_windows(W, wl, 0, self.OW), full=True)
        self.memo = {}
        self.enlarged = 0

    def _keys(self, hw, ww, full=False):
        keys = []
        for i, (sp, h, w) in enumerate(zip(self.specs, hw, ww)):
            if h[1] <= h[0] or w[1] <= w[0]:
                if i > 0 or full:
                    return None
                H, W, pads = h[2] + h[3], w[2] + w[3], (0, 0, 0, 0)
            else:
                H, W, pads = h[1] - h[0], w[1] - w[0], (h[2], h[3], w[2], w[3])
            geo = (i, H, W, pads)
            k = self.memo.get(geo, ()) if not full else ()
            if k == ():
                k = _plan_key(self.chans[i], H, W, sp, pads, self.algorithm, self.isa)
                if not full:
                    self.memo[geo] = k
            keys.append(k)
        return keys

    @staticmethod
    def _cands(o0, o1, O):
        n = o1 - o0
        sizes = list(range(n, min(n + 8, O) + 1))
        m = n + 8
        while m * 2 < O:
            m *= 2
            sizes.append(m)
        sizes.append(O)
        out = []
        for size in sorted(set(sizes)):
            for start in (min(o0, O - size), max(0, o1 - size)):
                if (start, start + size) not in out:
                    out.append((start, start + size))
        return out

    def region(self, h0, h1, w0, w1):
        """((a0, a1), (b0, b1)): the output region computed for block [h0,h1) x [w0,w1)."""
        if self.target is None:
            return (h0, h1), (w0, w1)
        hc, wc = self._cands(h0, h1, self.OH), self._cands(w0, w1, self.OW)
        pairs = sorted(((a, b) for a in hc for b in wc),
                       key=lambda ab: ((ab[0][1] - ab[0][0]) * (ab[1][1] - ab[1][0])))
        for a, b in pairs:
            keys = self._keys(region_windows(self.H, self.hl, *a),
                              region_windows(self.W, self.wl, *b))
            if keys == self.target:
                if (a, b) != ((h0, h1), (w0, w1)):
                    self.enlarged += 1
                return a, b
        self.enlarged += 1
        return (0, self.OH), (0, self.OW)


def _build(x, specs, algorithm, threads, name, match_plans=True):
    """The graph of a stack of NCHW convolutions on dask array x. specs: validated layer
    specs (weights (C_out, CG, kh, kw), global pads)."""
    from . import _isa
    N, C, H, W = x.shape
    hl = [AxisLayer(s["weight"].shape[2], s["stride"][0], s["dilation"][0], s["pads"][0],
                    s["pads"][1]) for s in specs]
    wl = [AxisLayer(s["weight"].shape[3], s["stride"][1], s["dilation"][1], s["pads"][2],
                    s["pads"][3]) for s in specs]
    hbounds = _out_bounds(x.chunks[2], hl)
    wbounds = _out_bounds(x.chunks[3], wl)
    isa_name = _isa.get_isa()
    matcher = _Matcher(specs, C, H, W, hl, wl, algorithm, _isa.isa_level()) \
        if match_plans else None
    # channel blocks: one layer keeps group-aligned channel chunks; a stack needs them all
    if len(specs) == 1:
        cb = _group_channel_bounds(x.chunks[1], specs[0]["weight"].shape[1])
    else:
        cb = [0, C]
    c_in_bounds = np.cumsum((0,) + tuple(x.chunks[1]))
    host_threads = _host_threads() if threads is None else threads
    token = tokenize(x.name, [(tokenize(s["weight"]), tokenize(s["bias"]), s["stride"],
                               s["pads"], s["dilation"], s["groups"], str(s["activation"]))
                              for s in specs], algorithm, threads, isa_name, match_plans)
    out_name = f"{name}-{token}"
    w_name = f"{name}-weights-{token}"
    # per spatial block: the region computed, its windows, its input pieces
    blocks = {}
    for ih, (h0, h1) in enumerate(zip(hbounds[:-1], hbounds[1:])):
        for iw, (w0, w1) in enumerate(zip(wbounds[:-1], wbounds[1:])):
            (a0, a1), (b0, b1) = matcher.region(h0, h1, w0, w1) if matcher else \
                ((h0, h1), (w0, w1))
            hw, ww = region_windows(H, hl, a0, a1), region_windows(W, wl, b0, b1)
            zero = None
            if hw[0][1] <= hw[0][0] or ww[0][1] <= ww[0][0]:
                # the first layer reads padding only: a window of zeros, unpadded
                zero = (hw[0][1] - hw[0][0] + hw[0][2] + hw[0][3],
                        ww[0][1] - ww[0][0] + ww[0][2] + ww[0][3])
                hsl, wsl = _chunk_slices(x.chunks[2], 0, 1), _chunk_slices(x.chunks[3], 0, 1)
            else:
                hsl = _chunk_slices(x.chunks[2], hw[0][0], hw[0][1])
                wsl = _chunk_slices(x.chunks[3], ww[0][0], ww[0][1])
            pads = tuple((0, 0, 0, 0) if (li == 0 and zero is not None)
                         else (hw[li][2], hw[li][3], ww[li][2], ww[li][3])
                         for li in range(len(specs)))
            crop = None
            if (a0, a1, b0, b1) != (h0, h1, w0, w1):
                crop = (h0 - a0, h1 - a0, w0 - b0, w1 - b0)
            blocks[ih, iw] = (hsl, wsl, _BlockArgs(pads, zero, host_threads, crop, isa_name))
    dsk = {}
    out_c_chunks = []
    piece_name = f"{name}-halo-{token}"

    def piece(ib, ci, hi_, h0_, h1_, wi_, w0_, w1_):
        """The key of the part [h0_, h1_) x [w0_, w1_) of input chunk (ib, ci, hi_, wi_): the
        chunk itself when whole, else a slicing task, so that only the halo travels."""
        key = (x.name, ib, ci, hi_, wi_)
        if (h0_, h1_, w0_, w1_) == (0, x.chunks[2][hi_], 0, x.chunks[3][wi_]):
            return key
        pkey = (piece_name, ib, ci, hi_, wi_, h0_, h1_, w0_, w1_)
        if pkey not in dsk:
            dsk[pkey] = (operator.getitem, key, (slice(None), slice(None), slice(h0_, h1_),
                                                 slice(w0_, w1_)))
        return pkey

    for j, (c0, c1) in enumerate(zip(cb[:-1], cb[1:])):
        if len(specs) == 1:      # this channel block's groups
            s = specs[0]
            CG = s["weight"].shape[1]
            M = s["weight"].shape[0] // s["groups"]
            g0, g1 = c0 // CG, c1 // CG
            w = np.ascontiguousarray(s["weight"][g0 * M:g1 * M])
            b = None if s["bias"] is None else np.ascontiguousarray(s["bias"][g0 * M:g1 * M])
            sub = [_spec(w, b, s["stride"], s["dilation"], g1 - g0, s["activation"])]
            out_c_chunks.append((g1 - g0) * M)
        else:
            sub = [_spec(s["weight"], s["bias"], s["stride"], s["dilation"], s["groups"],
                         s["activation"]) for s in specs]
            out_c_chunks.append(specs[-1]["weight"].shape[0])
        dsk[(w_name, j)] = _Stack(sub, algorithm)
        cis = [i for i in range(len(x.chunks[1]))
               if c_in_bounds[i] >= c0 and c_in_bounds[i + 1] <= c1]
        for ib in range(len(x.chunks[0])):
            for (ih, iw), (hsl, wsl, args) in blocks.items():
                pieces = [[[piece(ib, ci, hi_, h0_, h1_, wi_, w0_, w1_)
                            for wi_, w0_, w1_ in wsl] for hi_, h0_, h1_ in hsl] for ci in cis]
                dsk[(out_name, ib, j, ih, iw)] = (_run_block, (w_name, j), pieces, args)
    chunks = (x.chunks[0], tuple(out_c_chunks), tuple(np.diff(hbounds).tolist()),
              tuple(np.diff(wbounds).tolist()))
    graph = HighLevelGraph.from_collections(out_name, dsk, dependencies=[x])
    y = da.Array(graph, out_name, chunks, dtype=x.dtype, meta=np.empty((0, 0, 0, 0), x.dtype))
    y.gconv_enlarged_blocks = matcher.enlarged if matcher else 0   # for tests and the bench
    return y


def _layer_spec(x_shape, dtype, weight, bias, stride, padding, dilation, groups, activation):
    """Validate one layer against the (global) shape it sees; returns its spec and the
    output shape. Errors are gconv.conv2d's."""
    w = as_float_array(weight, "weight")
    b = as_float_array(bias, "bias", allow_none=True)
    check_same_dtype(np.empty(0, dtype), w, b)      # an input of that dtype
    p = problem_from_shapes(x_shape, w.shape, stride, padding, dilation, groups, dtype=dtype,
                            bias_shape=None if b is None else b.shape)
    from ._activation import parse_activation
    parse_activation(activation)        # refuse a bad activation before any task runs
    spec = dict(weight=np.ascontiguousarray(w), bias=None if b is None else np.ascontiguousarray(b),
                stride=p.stride, dilation=p.dilation, groups=p.groups, activation=activation,
                pads=p.padding)
    return spec, p.output_shape


def _to_nchw(x, layout, what):
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout must be one of ('NCHW', 'NHWC'), got {layout!r}")
    _check_dask_input(x, 4, what)
    return x.transpose(0, 3, 1, 2) if layout == "NHWC" else x


def _padding_mode_input(x, spec_pads, padding_mode):
    """Non-zero padding modes: pad the dask array as gconv.conv2d pads the NumPy one."""
    from ._conv import _NUMPY_PAD_MODE
    pt, pb, pl, pr = spec_pads
    return da.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), mode=_NUMPY_PAD_MODE[padding_mode])


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           activation=None, padding_mode="zeros", layout="NCHW", algorithm="auto",
           threads=None):
    """``gconv.conv2d`` on a dask array (N, C_in, H, W) (or NHWC with layout='NHWC'):
    returns a lazy dask array whose computed value is bitwise equal to gconv.conv2d on the
    whole array, for any chunking. Weights and bias are NumPy arrays. ``threads``: gconv
    threads per task (None: the worker's share, see the module docstring)."""
    x = _to_nchw(input, layout, "gconv.dask.conv2d")
    check_padding_mode(padding_mode)
    spec, _ = _layer_spec(x.shape, np.dtype(x.dtype), weight, bias, stride, padding,
                          dilation, groups, activation)
    if padding_mode != "zeros" and any(spec["pads"]):
        from ._conv import _check_mode_pads
        _check_mode_pads(padding_mode, spec["pads"], (x.shape[0], x.shape[1], x.shape[2],
                                                      x.shape[3]))
        x = _padding_mode_input(x, spec["pads"], padding_mode)
        spec["pads"] = (0, 0, 0, 0)
    y = _build(x, [spec], algorithm, threads, "gconv-conv2d")
    return y.transpose(0, 2, 3, 1) if layout == "NHWC" else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           activation=None, padding_mode="zeros", algorithm="auto", threads=None):
    """``gconv.conv1d`` on a dask array (N, C_in, L); bitwise equal to it for any chunking."""
    _check_dask_input(input, 3, "gconv.dask.conv1d")
    w = as_float_array(weight, "weight")
    if w.ndim != 3:
        raise ValueError(f"Expected 3-dimensional weight (C_out, C_in / groups, k) for conv1d, "
                         f"but got weight of size {list(w.shape)}")
    s, pad, d = _conv1d.geometry_2d(stride, padding, dilation)
    y = conv2d(input[:, :, None, :], w[:, :, None, :], bias, s, pad, d, groups,
               activation=activation, padding_mode=padding_mode, algorithm=algorithm,
               threads=threads)
    return y[:, :, 0, :]


def _layer_args(layer):
    if isinstance(layer, Conv1d):
        layer = layer._layer            # the Conv2d on H = 1 that runs it
    if isinstance(layer, Conv2d):
        return dict(weight=layer.weight, bias=layer.bias, stride=layer.stride,
                    dilation=layer.dilation, padding=layer.padding, groups=layer.groups,
                    activation=layer.activation.spec if layer.activation.name is not None
                    else None, padding_mode=layer.padding_mode)
    raise TypeError(f"expected a gconv.Conv2d or gconv.Conv1d layer, got {type(layer).__name__}")


class Sequential:
    """Layers (gconv.Conv2d, or gconv.Conv1d) run one after the other on a dask array, fused
    per block: each output block gathers the input window the whole stack needs (the halos
    of all layers, composed) once and runs every layer on it, so a stack makes one halo
    exchange per block, not one per layer. Bitwise equal to calling the layers in turn on
    the whole NumPy array. Channels are not split (a stack mixes all of them)."""

    def __init__(self, layers: Sequence, *, algorithm="auto", threads=None):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("sequential needs at least one layer")
        kinds = {isinstance(l, Conv1d) for l in self.layers}
        for l in self.layers:
            _layer_args(l)
        if len(kinds) != 1:
            raise TypeError("sequential takes Conv2d layers or Conv1d layers, not a mix")
        self.is_1d = kinds.pop()
        self.algorithm, self.threads = algorithm, threads

    def __call__(self, x, layout="NCHW"):
        one_d = self.is_1d
        if one_d:
            _check_dask_input(x, 3, "gconv.dask.sequential")
            x = x[:, :, None, :]
        else:
            x = _to_nchw(x, layout, "gconv.dask.sequential")
        shape, dtype, specs = x.shape, np.dtype(x.dtype), []
        for i, layer in enumerate(self.layers):
            a = _layer_args(layer)
            if a["padding_mode"] != "zeros":
                raise NotImplementedError(f"sequential: layer {i} has padding_mode="
                                          f"{a['padding_mode']!r}; only 'zeros' is fused "
                                          "(call gconv.dask.apply on it alone)")
            try:
                spec, shape = _layer_spec(shape, dtype, a["weight"], a["bias"], a["stride"],
                                          a["padding"], a["dilation"], a["groups"],
                                          a["activation"])
            except (ValueError, TypeError) as e:
                raise type(e)(f"sequential: layer {i} ({layer!r}): {e}") from e
            specs.append(spec)
        y = _build(x, specs, self.algorithm, self.threads, "gconv-sequential")
        if one_d:
            return y[:, :, 0, :]
        return y.transpose(0, 2, 3, 1) if layout == "NHWC" else y


def sequential(layers, *, algorithm="auto", threads=None):
    """``Sequential(layers)``: a stack of gconv layers fused per block (see Sequential)."""
    return Sequential(layers, algorithm=algorithm, threads=threads)


def apply(layer, x, *, layout="NCHW", algorithm="auto", threads=None):
    """Run a gconv.Conv2d or gconv.Conv1d layer on a dask array (as ``layer(x)`` on NumPy);
    its weights are sent to each worker once."""
    a = _layer_args(layer)
    if isinstance(layer, Conv1d):
        return conv1d(x, layer.weight, a["bias"], layer.stride[0], layer._pads,
                      layer.dilation[0], layer.groups, activation=a["activation"],
                      padding_mode=a["padding_mode"], algorithm=algorithm, threads=threads)
    return conv2d(x, a["weight"], a["bias"], a["stride"], a["padding"], a["dilation"],
                  a["groups"], activation=a["activation"], padding_mode=a["padding_mode"],
                  layout=layout, algorithm=algorithm, threads=threads)
