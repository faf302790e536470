"""Timing: samples of back-to-back calls, rounds that interleave the libraries, and their
statistics. Used by the bench's driver (gconv/bench/cli.py) and, for a runner in a child
process, by the child itself (gconv/bench/peer_process.py).

A "sample" is one timed loop of back-to-back calls of one library, long enough
(min_sample_s) that the timer's resolution and one-off hiccups vanish; a "round" is one
sample of every library; the median over rounds is reported.
"""
import time

import numpy as np

# At least this many rounds, whatever the time budget.
MIN_ROUNDS = 3
# Pause before each sample (see time_interleaved). Measured at 2 threads with torch in
# the same run: gconv's ResNeXt 56x56 took 300 us after torch's samples against 206 us
# alone; the spinning lasts well under this.
SETTLE_S = 0.02
# A sample's call count comes from the fastest of this many single calls.
CALIBRATION_CALLS = 3


def time_sample(fn, n_calls):
    """Seconds per call of n_calls back-to-back calls of fn; a runner in a peer process
    (gconv/bench/peer_process.py) times its calls there."""
    if hasattr(fn, "time_sample"):
        return fn.time_sample(n_calls)
    t0 = time.perf_counter()
    for _ in range(n_calls):
        fn()
    return (time.perf_counter() - t0) / n_calls


def _freeze_others(runners, name):
    """Stop the peer processes of all runners but `name` (see gconv/bench/peer_process.py)."""
    for other, fn in runners.items():
        if other != name and hasattr(fn, "pause"):
            fn.pause()


def time_interleaved(runners, rounds, min_sample_s, budget_s):
    """Per-call times (seconds) of each runner: {name: [one per round]}.

    Each runner is warmed up, then given a call count that makes one sample last at least
    min_sample_s. Each round times every runner once, starting from a different one each
    round; every sample follows a pause (SETTLE_S) and half a sample of untimed calls.
    Runners in peer processes are frozen while any other runner is timed.
    Stops after ``rounds`` rounds, or after MIN_ROUNDS once budget_s is spent."""
    names = list(runners)
    n_calls = {}
    for name in names:
        _freeze_others(runners, name)
        fn = runners[name]
        fn()                                     # first call: plans, packing, sessions
        # the fastest of a few single calls: one slow call (a core waking up, a peer's
        # pool still busy) would shrink every sample to a call or two, and a lone call
        # after the pause below reads up to 30x slow on this machine (measured)
        one = min(time_sample(fn, 1) for _ in range(CALIBRATION_CALLS))
        n_calls[name] = max(1, min(int(min_sample_s / max(one, 1e-9)), 100_000))
    samples = {name: [] for name in names}
    start = time.perf_counter()
    for r in range(rounds):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            _freeze_others(runners, name)
            # the previous library's OpenMP workers spin-wait for a while after its last
            # call and would take cores from this one's threads: let them fall asleep
            time.sleep(SETTLE_S)
            # after the pause this machine's cores run slow for several ms (any code:
            # gconv, torch, plain C): half a sample of untimed calls first. Without them,
            # one-thread samples read 10-25 % slow for every library (mbv2_pw_project:
            # 260 against 205 us called back to back)
            time_sample(runners[name], max(1, n_calls[name] // 2))
            samples[name].append(time_sample(runners[name], n_calls[name]))
        if r + 1 >= MIN_ROUNDS and time.perf_counter() - start > budget_s:
            break
    for fn in runners.values():
        if hasattr(fn, "resume"):
            fn.resume()
    return samples


def sample_stats(samples):
    """Median, interquartile range and minimum (microseconds) of per-call times (seconds)."""
    a = np.asarray(samples) * 1e6
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median_us": float(med), "iqr_us": float(q3 - q1), "min_us": float(a.min()),
            "rounds": int(a.size)}


def stats_ms(samples):
    """sample_stats in milliseconds, keys named so (median_ms, iqr_ms, min_ms, rounds): the
    unit of the whole-network and training benches."""
    return {(k[:-3] + "_ms" if k.endswith("_us") else k): (v / 1e3 if k.endswith("_us") else v)
            for k, v in sample_stats(samples).items()}


def mode_settings(modes, mode, rounds=None, min_sample_s=None):
    """A bench mode's timing settings (modes[mode]) with the command line's overrides."""
    settings = dict(modes[mode])
    if rounds is not None:
        settings["rounds"] = rounds
    if min_sample_s is not None:
        settings["min_sample_s"] = min_sample_s
    return settings
