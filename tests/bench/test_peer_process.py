"""The bench's peer processes (gconv/bench/peer_process.py): a runner in a child process gives
the same output as in this one, is frozen while other runners are timed, and reports the
child's errors and death as RuntimeError. gconv itself serves as the peer: it needs no
optional library."""
import os
import signal
import time

import numpy as np
import pytest

from gconv.bench import peers
from gconv.bench.layers import BY_NAME
from gconv.bench.machine import process_cpu_seconds, threads_stopped
from gconv.bench.peer_process import PeerProcess
from gconv.bench.timing import time_interleaved

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                                reason="freezing peer processes reads Linux /proc")

LAYER = BY_NAME["seed_g4"]


@pytest.fixture
def process():
    with PeerProcess("gconv") as p:
        yield p


def test_a_remote_runner_computes_what_a_local_one_does(process):
    inputs = LAYER.make_inputs()
    remote = process.runner(LAYER, inputs, threads=1)
    assert process.pid != os.getpid()
    np.testing.assert_array_equal(remote(), peers.gconv_runner(LAYER, inputs)())
    per_call = remote.time_sample(5)
    assert isinstance(per_call, float) and 0 < per_call < 1.0


def test_pause_stops_every_thread_and_a_request_resumes(process):
    remote = process.runner(LAYER, LAYER.make_inputs(), threads=2)
    remote.pause()
    assert threads_stopped(process.pid)
    cpu = process_cpu_seconds(process.pid)
    time.sleep(0.05)
    assert process_cpu_seconds(process.pid) == cpu
    assert remote().shape == LAYER.problem().output_shape      # resumed by the request
    assert not threads_stopped(process.pid)


def test_the_childs_errors_come_back_and_it_goes_on(process):
    x, w, b = LAYER.make_inputs()
    with pytest.raises(RuntimeError, match=r"not running \(exit code None\) for 'call'"):
        process.request("call")                  # no child yet: only "setup" starts one
    bad = (x[:, :3], w, b)                    # 3 input channels for a 16-channel layer
    with pytest.raises(RuntimeError, match=r"ValueError: .*channel"):
        process.runner(LAYER, bad, threads=1)
    with pytest.raises(RuntimeError, match=r"'call' before a successful 'setup'"):
        process.request("call")
    with pytest.raises(RuntimeError, match=r"unknown request 'dance'"):
        process.request("dance")
    assert process.runner(LAYER, (x, w, b), threads=1)().shape == LAYER.problem().output_shape


def test_a_dead_child_raises_and_the_next_runner_starts_a_new_one(process):
    remote = process.runner(LAYER, LAYER.make_inputs(), threads=1)
    first = process.pid
    os.kill(first, signal.SIGKILL)
    process._proc.wait()                         # dead before the request, or during it:
    with pytest.raises(RuntimeError, match=r"gconv's process is not running \(exit code -9\)"):
        remote()
    with pytest.raises(RuntimeError, match=r"not running \(exit code None\) for 'time'"):
        remote.time_sample(1)                    # the runner went with its process
    assert process.runner(LAYER, LAYER.make_inputs(), threads=1)() is not None
    assert process.pid not in (None, first)


def test_ctrl_c_is_left_to_the_parent(process):
    remote = process.runner(LAYER, LAYER.make_inputs(), threads=1)
    os.kill(process.pid, signal.SIGINT)
    assert remote().shape == LAYER.problem().output_shape and process.alive()


def test_close_ends_a_paused_child():
    process = PeerProcess("gconv")
    process.runner(LAYER, LAYER.make_inputs(), threads=1).pause()
    proc = process._proc
    process.close()
    assert proc.poll() is not None and not process.alive()


def test_time_interleaved_freezes_remote_runners_while_others_are_timed(process):
    remote = process.runner(LAYER, LAYER.make_inputs(), threads=1)
    seen = []

    def local():
        seen.append(threads_stopped(process.pid))
    samples = time_interleaved({"local": local, "remote": remote}, rounds=3,
                               min_sample_s=0.0, budget_s=60)
    assert len(samples["remote"]) == 3 and all(t > 0 for t in samples["remote"])
    assert len(seen) >= 3 and all(seen)
    assert not threads_stopped(process.pid)          # left running
