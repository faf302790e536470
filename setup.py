"""Build gconv's compiled kernels.

The kernel extension, ``gconv._kernels``, from ``gconv/_kernels.pyx`` plus the C micro-kernel
headers in ``gconv/src/``. The SIMD variants (AVX-512, AVX2, baseline) are compiled into
the same module through per-function target attributes and chosen at run time from the
CPU's features, so a default build is portable and still fast. A second, small one,
``gconv.bench._fma_peak``, is the bench's FMA-peak probe (``gconv/bench/fma_peak.h``).
"""
import glob
import os
import shlex
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_tools.openmp_helpers import openmp_build_flags  # noqa: E402


class build_ext_openmp(build_ext):
    """Probe the compiler for OpenMP once, then add the flag to compile and link args."""

    def build_extensions(self):
        flags = openmp_build_flags(self.compiler)
        for ext in self.extensions:
            ext.extra_compile_args += flags
            ext.extra_link_args += flags
        super().build_extensions()


debug = bool(os.getenv("GCONV_CYTHON_DEBUG"))
directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
}

extensions = [
    Extension(
        "gconv._kernels",
        ["gconv/_kernels.pyx"],
        include_dirs=[numpy.get_include(), "gconv/src"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # -O3 for the micro-kernels; no -march=native: SIMD variants are chosen at run time.
        # GCONV_OPT replaces -O3 (which follows CFLAGS, so an -O there has no effect); .ci/sanitize
        # sets -O2. Not -O1: the depthwise kernels' shift counts become immediates only once
        # loops are unrolled, so -O1 fails to compile (_mm512_alignr_epi32 in DW_S2_SHIFT, gconv/src/dwconv/simd.h).
        extra_compile_args=[*shlex.split(os.getenv("GCONV_OPT", "-O3")), "-std=gnu11", "-fno-math-errno", "-Wno-unused-function", "-Wno-maybe-uninitialized"],
        extra_link_args=[],
        # every header under gconv/src/ (common/, gemm/, dwconv/ and the top level)
        depends=sorted(glob.glob(os.path.join("gconv", "src", "**", "*.h"), recursive=True)),
    ),
    # the bench's FMA-peak probe (gconv/bench/fma_peak.h), apart from the kernels
    Extension(
        "gconv.bench._fma_peak",
        ["gconv/bench/_fma_peak.pyx"],
        include_dirs=["gconv/bench"],
        extra_compile_args=["-O3", "-std=gnu11"],
        extra_link_args=[],
        depends=[os.path.join("gconv", "bench", "fma_peak.h")],
    ),
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives),
    cmdclass={"build_ext": build_ext_openmp},
)
