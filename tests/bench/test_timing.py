"""The bench's timing (gconv/bench/timing.py): interleaved rounds, samples, statistics.
Freezing runners in peer processes is tested in test_peer_process.py."""
import pytest

from gconv.bench import timing


def test_interleaved_timing_rounds_and_order():
    calls = []
    runners = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    samples = timing.time_interleaved(runners, rounds=4, min_sample_s=0.0, budget_s=60)
    assert {k: len(v) for k, v in samples.items()} == {"a": 4, "b": 4}
    # after warm-up and calibration (1 + 3 calls each), rounds alternate who goes first; each
    # sample is an untimed warm-up call, then the timed one, of the same runner
    timed = calls[8:]
    assert timed == [c for c in "abbaabba" for _ in range(2)]


def test_time_sample_and_stats():
    calls = []
    per_call = timing.time_sample(lambda: calls.append(1), 7)
    assert len(calls) == 7 and 0 < per_call < 0.01

    class Remote:                      # a runner in a peer process times itself there
        def time_sample(self, n):
            return n * 1.0
    assert timing.time_sample(Remote(), 3) == 3.0
    stats = timing.sample_stats([1e-6, 2e-6, 3e-6, 4e-6, 5e-6])
    assert stats == pytest.approx({"median_us": 3.0, "iqr_us": 2.0, "min_us": 1.0,
                                   "rounds": 5})
