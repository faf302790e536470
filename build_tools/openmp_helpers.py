"""Build-time OpenMP probe (after scikit-learn's ``_build_utils/openmp_helpers.py``).

The probe compiles, links and runs a tiny ``#pragma omp parallel`` program with the
compiler setuptools will use. If that fails, gconv builds serially and says so with a
warning: ``prange`` then runs as a plain loop and ``gconv.openmp_enabled()`` is False.

Environment switches:
  GCONV_NO_OPENMP=1       build serially on purpose
  GCONV_FAIL_NO_OPENMP=1  make a failed probe an error (CI and wheels use this)
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import warnings

PROBE_SOURCE = textwrap.dedent(
    """\
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d %d\\n", n, omp_get_max_threads());
        return n == omp_get_max_threads() ? 0 : 1;
    }
    """
)


def get_openmp_flag():
    if sys.platform == "win32":
        return ["/openmp"]
    if sys.platform == "darwin" and "openmp" in os.getenv("CPPFLAGS", ""):
        # Apple clang: the user points CPPFLAGS/LDFLAGS at libomp ("-Xpreprocessor -fopenmp").
        return []
    return ["-fopenmp"]


def check_openmp_support(compiler):
    """True when ``compiler`` (a distutils CCompiler) builds and runs an OpenMP program."""
    flags = get_openmp_flag()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_probe.c")
        with open(src, "w") as f:
            f.write(PROBE_SOURCE)
        try:
            objects = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            exe = os.path.join(tmp, "omp_probe")
            compiler.link_executable(objects, exe, extra_postargs=flags)
            out = subprocess.run([exe], capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "OMP_NUM_THREADS": "2"})
            return out.returncode == 0
        except Exception:  # compile, link or run failed: no usable OpenMP
            return False


def openmp_build_flags(compiler):
    """Flags to add to compile and link args; [] means a serial build."""
    if os.getenv("GCONV_NO_OPENMP"):
        warnings.warn("GCONV_NO_OPENMP is set: building gconv without OpenMP (serial kernels).")
        return []
    if check_openmp_support(compiler):
        return get_openmp_flag()
    message = (
        "Your compiler cannot build and run an OpenMP program; gconv is being built "
        "WITHOUT OpenMP, so its kernels run on one thread. To get parallel kernels, use a "
        "compiler with OpenMP (gcc, or clang with libomp)."
    )
    if os.getenv("GCONV_FAIL_NO_OPENMP"):
        raise RuntimeError(message)
    warnings.warn(message)
    return []
