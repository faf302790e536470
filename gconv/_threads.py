"""Thread policy, in one place (after scikit-learn's _openmp_effective_n_threads).

The default is OpenMP's own: omp_get_max_threads(), which honours OMP_NUM_THREADS, capped at
the CPUs this process may run on. ``set_num_threads`` overrides it for gconv only. A
serial build always uses 1. Small problems run on one thread, because starting the
OpenMP team costs more than they take (results are bitwise identical either way).
"""
import os

from . import _kernels
from ._validation import as_int

# Below this many FLOPs a call runs on one thread. Measured on the 2-core machines: a
# 0.13 MFLOP 1x1 conv takes 4.4 us on one thread and 6.3 us on two (waking the second thread
# costs more than it saves), while a 0.85 MFLOP depthwise layer drops from 35 to 25 us.
PARALLEL_MIN_FLOPS = 200_000

_n_threads = None
_default_n_threads = None    # computed once: OpenMP reads OMP_NUM_THREADS only at start-up


def _cpus_available():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _default_threads():
    if not _kernels.openmp_enabled():
        return 1
    n = _kernels.omp_max_threads()
    if "OMP_NUM_THREADS" not in os.environ:
        n = min(n, _cpus_available())
    return max(1, n)


def get_num_threads():
    """Threads gconv's kernels use at most (1 in a build without OpenMP)."""
    global _default_n_threads
    if _n_threads is not None:
        return _n_threads
    if _default_n_threads is None:
        _default_n_threads = _default_threads()
    return _default_n_threads


def set_num_threads(n):
    """Use at most ``n`` threads in gconv's kernels (None restores the default).

    A build without OpenMP accepts any positive n and still runs serially.
    """
    global _n_threads
    if n is not None:
        n = as_int(n, "n")
        if n <= 0:
            raise ValueError(f"set_num_threads expects a positive number of threads, got {n}")
        n = n if _kernels.openmp_enabled() else 1
    _n_threads = n
    _kernels.bump_state_epoch()     # layers' LeanCalls were made for the old count


def threads_for(problem):
    """Threads one call of ``problem`` should use."""
    n = get_num_threads()
    if n > 1 and problem.flops < PARALLEL_MIN_FLOPS:
        return 1
    return n
