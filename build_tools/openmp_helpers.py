"""Build-time OpenMP probe (after scikit-learn's ``_build_utils/openmp_helpers.py``).

The probe compiles, links and runs a tiny ``#pragma omp parallel`` program with the
compiler setuptools will use and the flags the extension gets from the environment:
CFLAGS and CPPFLAGS on the compile (setuptools puts them in the compiler command), and
LDFLAGS, CFLAGS and CPPFLAGS on the link, as setuptools adds them to the extension's link.
Without them on the link an instrumented build (CFLAGS=-fsanitize=address) compiled a probe
that could not link, and gconv silently built serially. If the probe fails, gconv builds
serially and says why with a warning (the compiler's, linker's or program's own output,
trimmed): ``prange`` then runs as a plain loop and ``gconv.openmp_enabled()`` is False.

Environment switches:
  GCONV_NO_OPENMP=1       build serially on purpose
  GCONV_FAIL_NO_OPENMP=1  make a failed probe an error (CI and wheels use this)
"""
import contextlib
import os
import shlex
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


def env_link_flags(compiler):
    """LDFLAGS, CFLAGS and CPPFLAGS from the environment, in the order setuptools appends
    them to the extension's link command (its executable link, used by the probe, gets
    none of them). MSVC reads none of these variables."""
    if compiler.compiler_type == "msvc":
        return []
    return [f for name in ("LDFLAGS", "CFLAGS", "CPPFLAGS")
            for f in shlex.split(os.environ.get(name, ""))]


@contextlib.contextmanager
def _output_to(path):
    """Send this process's stdout and stderr (file descriptors 1 and 2, so the compiler's
    and linker's messages too) to the file ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(path, "wb") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _trim(text, lines=25, chars=3000):
    """The end of ``text``, where a compiler or sanitizer puts its error."""
    text = "\n".join(text.strip().splitlines()[-lines:])
    return text if len(text) <= chars else "..." + text[-chars:]


def probe_openmp(compiler):
    """Compile, link and run the probe with ``compiler`` (a distutils CCompiler).

    Returns None when it works, else why not: the failing step and its output, trimmed.
    """
    flags = get_openmp_flag()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_probe.c")
        with open(src, "w") as f:
            f.write(PROBE_SOURCE)
        log = os.path.join(tmp, "probe.log")
        step = "compile"
        try:
            with _output_to(log):
                objects = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
                step = "link"
                exe = os.path.join(tmp, "omp_probe")
                compiler.link_executable(objects, exe, extra_preargs=env_link_flags(compiler),
                                         extra_postargs=flags)
        except Exception as e:  # CompileError, LinkError, a missing compiler
            with open(log, errors="replace") as f:
                output = f.read()
            output = _trim(output)
            return f"the probe's {step} failed ({e})" + (f":\n{output}" if output else "")
        step = "run"
        # an instrumented probe (CFLAGS=-fsanitize=address) runs as it is, but libgomp's
        # thread pool is still live at exit: ASan's leak check must not count that
        asan = os.environ.get("ASAN_OPTIONS", "")
        env = {**os.environ, "OMP_NUM_THREADS": "2",
               "ASAN_OPTIONS": (asan + ":" if asan else "") + "detect_leaks=0"}
        if sys.platform == "win32":
            exe += ".exe"
        try:
            out = subprocess.run([exe], capture_output=True, text=True, timeout=60, env=env)
        except (OSError, subprocess.SubprocessError) as e:
            return f"the probe's run failed: {e}"
        if out.returncode != 0:
            return (f"the probe ran but exited with {out.returncode} (it prints the team size "
                    f"and omp_get_max_threads()):\n{_trim(out.stdout + out.stderr)}")
        return None


def openmp_build_flags(compiler):
    """Flags to add to compile and link args; [] means a serial build."""
    if os.getenv("GCONV_NO_OPENMP"):
        warnings.warn("GCONV_NO_OPENMP is set: building gconv without OpenMP (serial kernels).")
        return []
    why = probe_openmp(compiler)
    if why is None:
        return get_openmp_flag()
    env = " ".join(f"{k}={shlex.quote(os.environ[k])}" for k in ("CC", "CFLAGS", "CPPFLAGS",
                                                                 "LDFLAGS") if k in os.environ)
    message = (
        "Your compiler cannot build and run an OpenMP program; gconv is being built "
        "WITHOUT OpenMP, so its kernels run on one thread. To get parallel kernels, use a "
        "compiler with OpenMP (gcc, or clang with libomp)"
        + (f" and check the flags from the environment ({env})" if env else "")
        + ".\nWhy: " + why
    )
    if os.getenv("GCONV_FAIL_NO_OPENMP"):
        raise RuntimeError(message)
    warnings.warn(message)
    return []
