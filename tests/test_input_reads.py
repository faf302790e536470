"""The kernels never read outside the caller's arrays.

Vector loads near an array's end are easy to get wrong by a few elements, and such a read
usually returns garbage that is masked away, so no result-based test sees it; it only
crashes when the array ends at an unmapped page. guarded_reads_child.py puts the input,
weight, bias and residual against pages that cannot be read and runs every kernel path; it
runs in a child process so that a crash is reported here instead of killing the test run.
"""
import os
import subprocess
import sys

import pytest

import gconv


@pytest.mark.skipif(sys.platform != "linux", reason="uses mmap/mprotect guard pages (Linux)")
def test_no_kernel_reads_outside_its_inputs():
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ)
    # the child imports the same gconv as this process
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(gconv.__file__)), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, os.path.join(here, "guarded_reads_child.py")],
                         capture_output=True, text=True, env=env, timeout=300)
    lines = run.stdout.strip().splitlines()
    last = lines[-1] if lines else "(no output)"
    assert run.returncode == 0, (
        f"child exited with {run.returncode} (-11: a read outside an input) during: {last}\n"
        f"{run.stderr[-2000:]}")
    assert last == "all calls read inside their inputs"
