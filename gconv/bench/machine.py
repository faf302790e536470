"""What the bench knows of the machine it runs on: the CPU's model, this core's measured FMA
peak (gconv/bench/_fma_peak.pyx), the CPU time of a process and whether its threads are
stopped (Linux /proc), and how much of the CPUs other processes took while a row was timed.
"""
import os
import platform
import time

import numpy as np

import gconv

from .. import _isa
from . import _fma_peak, peers


def _stat_fields(path):
    """The fields of a /proc .../stat file after the command name (which may hold spaces
    and brackets): [0] is the state, [11] and [12] user and system time in clock ticks.
    None if the file cannot be read (the process or thread is gone, or no /proc)."""
    try:
        with open(path) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def threads_stopped(pid):
    """True when every thread of process pid is stopped (state T), as after SIGSTOP."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True                          # gone (or no /proc): nothing runs
    for tid in tids:
        fields = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
        if fields and fields[0] not in ("T", "t"):    # (None: the thread just exited)
            return False
    return True


def process_cpu_seconds(pid):
    """User + system CPU seconds process pid has used so far (Linux /proc; None elsewhere)."""
    fields = _stat_fields(f"/proc/{pid}/stat")
    try:
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (TypeError, IndexError, ValueError):
        return None


class OtherLoad:
    """How much of the machine other processes used while a block of code ran, from
    /proc/stat's busy time minus the CPU time of this process and of own_pids, the bench's
    peer processes (Linux; None elsewhere). On a shared machine a multi-thread timing is
    only meaningful when this is near 0."""

    def __init__(self, own_pids=()):
        self.own_pids = [pid for pid in own_pids if pid is not None]

    def __enter__(self):
        self.start = self._snapshot()
        return self

    def __exit__(self, *exc):
        end = self._snapshot()
        self.fraction = None
        if self.start is not None and end is not None:
            (b0, o0, t0), (b1, o1, t1) = self.start, end
            capacity = (t1 - t0) * (os.cpu_count() or 1)
            if capacity > 0:
                self.fraction = min(max(((b1 - b0) - (o1 - o0)) / capacity, 0.0), 1.0)
        return False

    def _snapshot(self):
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait
        own = os.times()
        children = sum(process_cpu_seconds(pid) or 0.0 for pid in self.own_pids)
        return busy, own.user + own.system + children, time.perf_counter()


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The first CPU's model name with its CPUID family and model: a hypervisor may show
    only "AMD EPYC", yet family 25 model 17 (Zen 4, 512-bit FMAs in two 256-bit halves)
    has half the FMA peak of a full-width Zen 5 server core (family 26)."""
    fields = {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                if not line.strip():
                    break              # the end of the first CPU's block
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model"):
                    fields[key] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (CPUID family {fields['cpu family']}, model {fields['model']})"
    return name


def measure_fma_peak(peak_iters, trials=5):
    """This core's FMA peak (GFLOP/s) for the running ISA, 0.0 for the generic one: the best
    of a few short trials, as a shared core has slow phases (a single long trial that falls
    in one made every "% peak" of a run read high)."""
    level = _isa.ISA_NAMES.index(gconv.get_isa())
    if level == 0:
        return 0.0
    return max(_fma_peak.fma_peak_gflops(level, max(1, peak_iters // trials))
               for _ in range(trials))


def machine_info(peer_names, peak_iters):
    """The report's "machine": CPU, ISA, versions of everything timed, the FMA peak
    (None with peak_iters None: not measured)."""
    peak = measure_fma_peak(peak_iters) if peak_iters is not None else None
    return {
        "cpu": cpu_model(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gconv": gconv.__version__,
        "openmp": bool(gconv.openmp_enabled()),
        "isa": gconv.get_isa(),
        "available_isas": gconv.available_isas(),
        "fma_peak_gflops_per_core": peak or None,
        "peers": {name: peers.peer_version(name) for name in peer_names},
    }
