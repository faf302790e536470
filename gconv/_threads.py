"""Thread policy, in one place (after scikit-learn's _openmp_effective_n_threads).

gconv's own count is ``set_num_threads(n)``, or by default OpenMP's start-up count
(OMP_NUM_THREADS, else the CPUs this process may run on). Three things lower it:
  - a build without OpenMP: always 1;
  - a forked child (os.fork, multiprocessing's 'fork', DataLoader-style workers): 1, because
    GNU libgomp's thread pool does not survive fork(): a child's first parallel region
    would wait forever for the parent's threads (see _after_fork_in_child);
  - an active OpenMP limit: threadpoolctl's ``threadpool_limits(n)`` (or any
    omp_set_num_threads call) lowers OpenMP's nthreads-var below its start-up value while
    it is active; gconv then uses at most that many, and its own count again after.
Small problems run on one thread, because starting the OpenMP team costs more than they
take (results are bitwise identical either way).
"""
from __future__ import annotations

import os
from typing import Optional

from . import _kernels
from ._validation import as_int

# Below this many FLOPs a call runs on one thread. Measured on the 2-core machines: a
# 0.13 MFLOP 1x1 conv takes 4.4 us on one thread and 6.3 us on two (waking the second thread
# costs more than it saves), while a 0.85 MFLOP depthwise layer drops from 35 to 25 us.
PARALLEL_MIN_FLOPS = 200_000

_n_threads = None             # set_num_threads' value; None: the default
_in_forked_child = False


def _cpus_available():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _openmp_startup_threads():
    """nthreads-var as libgomp sets it at start-up: OMP_NUM_THREADS's first value, else
    the CPUs this process may run on. Read from the environment, not from
    omp_get_max_threads(), which an active threadpoolctl limit lowers."""
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if first.isdigit() and int(first) > 0:
        return int(first)
    return _cpus_available()


_SERIAL = not _kernels.openmp_enabled()
_default_n_threads = 1 if _SERIAL else _openmp_startup_threads()
_omp_max_threads = _kernels.omp_max_threads


def get_num_threads() -> int:
    """Threads gconv's kernels use at most now (1 in a build without OpenMP or in a forked
    child; at most an active threadpoolctl limit). Called on every convolution: kept lean."""
    if _SERIAL or _in_forked_child:
        return 1
    n = _n_threads or _default_n_threads
    limit = _omp_max_threads()
    return limit if limit < n and limit < _default_n_threads else n


def set_num_threads(n: Optional[int]) -> None:
    """Use at most ``n`` threads in gconv's kernels (None restores the default).

    A build without OpenMP, or a forked child, accepts any positive n and still runs
    serially; an active threadpoolctl limit still caps it.
    """
    global _n_threads
    if n is not None:
        n = as_int(n, "n")
        if n <= 0:
            raise ValueError(f"set_num_threads expects a positive number of threads, got {n}")
    _n_threads = n
    _kernels.bump_state_epoch()     # layers' LeanCalls were made for the old count


def _after_fork_in_child():
    """A forked child runs every kernel serially: libgomp keeps the parent's thread pool in
    its state but not its threads, so a parallel region would hang. (A fresh pool cannot be
    made safely; a process started with 'spawn' or 'forkserver' has full threads.)"""
    global _in_forked_child
    _in_forked_child = True
    _kernels.bump_state_epoch()     # LeanCalls made in the parent were for its count


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def threads_for(problem):
    """Threads one call of ``problem`` should use."""
    n = get_num_threads()
    if n > 1 and problem.flops < PARALLEL_MIN_FLOPS:
        return 1
    return n
