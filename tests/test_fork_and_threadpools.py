"""gconv in multiprocess applications (issue 14): forked children and threadpoolctl.

GNU libgomp's thread pool does not survive fork(): a child whose parent ran a 2-thread
region hung on its first parallel call. A forked child now runs serially. threadpoolctl's
limits lower OpenMP's thread count while active; gconv follows them and returns to its own
count after. Each scenario runs in a fresh child process with a timeout, so a hang fails the
test instead of the run.
"""
import os
import subprocess
import sys
import textwrap

import pytest

import gconv

GCONV_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(gconv.__file__)))
needs_openmp = pytest.mark.skipif(not gconv.openmp_enabled(),
                                  reason="a serial build has no thread pool to fork or limit")


def run_python(code, timeout=90):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "GCONV_ISA")}
    env["PYTHONPATH"] = GCONV_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=GCONV_PARENT)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


SETUP = """
    import os, numpy as np, gconv
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 32, 48, 48)).astype(np.float32)       # ~16 MFLOP: 2 threads
    w = rng.standard_normal((32, 4, 3, 3)).astype(np.float32)
    gconv.set_num_threads(2)
    want = gconv.conv2d(x, w, padding=1, groups=8)                    # the parent's team runs
    layer = gconv.Conv2d(32, 32, 3, padding=1, groups=8, rng=0)
    layer_want = layer(x); layer(x)                                   # and its lean path
"""


def test_a_multiprocessing_fork_child_computes_after_the_parent_used_two_threads():
    out = run_python(SETUP + """
    import multiprocessing as mp, queue
    def child(q):
        q.put((bool(np.array_equal(gconv.conv2d(x, w, padding=1, groups=8), want)),
               bool(np.array_equal(layer(x), layer_want)), gconv.get_num_threads()))
    if __name__ == "__main__":
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start()
        p.join(45)
        try:
            print(q.get(timeout=5))
        except queue.Empty:
            print("hung" if p.is_alive() else f"died:{p.exitcode}")
        if p.is_alive():
            p.kill()
    """)
    assert out == ["(True,", "True,", "1)"]      # serial in the child: libgomp's pool is gone


@needs_openmp
def test_os_fork_child_runs_serially_and_the_parent_keeps_its_threads():
    out = run_python(SETUP + """
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        gconv.set_num_threads(2)        # asked for, still serial: the pool cannot be remade
        ok = np.array_equal(gconv.conv2d(x, w, padding=1, groups=8), want)
        os.write(wfd, f"{int(ok)} {gconv.get_num_threads()}".encode())
        os._exit(0)
    os.close(wfd)
    print(os.read(r, 100).decode(), os.waitpid(pid, 0)[1], gconv.get_num_threads(),
          int(np.array_equal(gconv.conv2d(x, w, padding=1, groups=8), want)))
    """)
    assert out == ["1", "1", "0", "2", "1"]


THREADPOOL = """
    from threadpoolctl import threadpool_limits, threadpool_info
    # gconv's libgomp is among the pools threadpoolctl controls
    assert any(i["internal_api"] == "openmp" for i in threadpool_info())
    def threads_used(layer):
        return layer._lean.plan.n_threads     # the plan the layer's repeated call ran
"""


@needs_openmp
def test_threadpool_limits_before_the_first_call_last_only_while_active():
    pytest.importorskip("threadpoolctl")
    out = run_python("""
    import numpy as np, gconv
    """ + THREADPOOL + """
    x = np.ones((2, 32, 48, 48), np.float32)
    layer = gconv.Conv2d(32, 32, 3, padding=1, groups=8, rng=0)
    with threadpool_limits(1):
        y1 = layer(x); layer(x)
        print(gconv.get_num_threads(), threads_used(layer))
    y2 = layer(x); layer(x)
    print(gconv.get_num_threads(), threads_used(layer), int(np.array_equal(y1, y2)))
    """)
    assert out == ["1", "1", "2", "2", "1"]


@needs_openmp
def test_threadpool_limits_after_calls_cap_every_path_and_release_it():
    pytest.importorskip("threadpoolctl")
    out = run_python(SETUP + THREADPOOL + """
    from gconv import _conv
    def functional_threads():
        return _conv._call_plan(x, w, None, 1, 1, 1, 8, None, "zeros", "NCHW", "auto").n_threads
    print(gconv.get_num_threads(), threads_used(layer), functional_threads())
    with threadpool_limits(1):
        y = layer(x)                       # the lean path notices the limit
        print(gconv.get_num_threads(), threads_used(layer), functional_threads(),
              int(np.array_equal(y, layer_want)))
        gconv.set_num_threads(2)           # gconv's own count does not lift the limit
        print(gconv.get_num_threads())
    layer(x)
    print(gconv.get_num_threads(), threads_used(layer), functional_threads())
    """)
    assert out == ["2", "2", "2", "1", "1", "1", "1", "1", "2", "2", "2"]
