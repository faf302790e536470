/* gconv_kernels.h: the one header _kernels.pyx includes. Compiles every kind once per
 * (dtype, ISA) variant (instantiate.h), lists their entry points in the registry
 * (registry.h) and picks the ISA at run time from the CPU's features, so a default
 * (portable) build still uses AVX-512 or AVX2 where the CPU has them. GCONV_ISA=avx2|generic
 * forces a lower variant.
 *
 * Layout of src/: common/ (the problem, vector types and loads/stores, transposes,
 * epilogue, task scheduling, the registry row type), gemm/ (the GEMM kind), dwconv/ (the
 * depthwise kind); each file's top comment says what it holds and expects.
 *
 *   variant   target                 VLEN f32/f64   vector registers
 *   avx512    avx512f+vl+dq+bw, fma  16 / 8         32
 *   avx2      avx2, fma              8 / 4          16
 *   generic   the build's baseline   4 / 2 (SSE2)   16
 */
#ifndef GCONV_KERNELS_H
#define GCONV_KERNELS_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/problem.h"
#include "common/microkernel_test.h"
#include "common/kind.h"
/* each kind's parts that are compiled once: parameters, kernel ids, report */
#include "gemm/params.h"
#include "gemm/report.h"
#include "dwconv/params.h"
#include "dwconv/report.h"
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>     /* AVX-512 masked stores (common/simd.h) */
#endif

enum { GCONV_ISA_GENERIC = 0, GCONV_ISA_AVX2 = 1, GCONV_ISA_AVX512 = 2, GCONV_N_ISA = 3 };

/* --- instantiate the bodies: see instantiate.h ------------------------------------------ */
#define GCONV_PASTE2(a, b) a##b
#define GCONV_PASTE(a, b) GCONV_PASTE2(a, b)

#define VBYTES 16     /* the build's baseline: SSE2 on x86-64 */
#define VREGS 16
#define GCONV_F64 0
#define SUF _f32_generic
#include "instantiate.h"
#define GCONV_F64 1
#define SUF _f64_generic
#include "instantiate.h"
#undef VBYTES
#undef VREGS

#if defined(__x86_64__) && defined(__GNUC__)
#define GCONV_HAVE_X86_VARIANTS 1

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define VBYTES 32
#define VREGS 16
#define GCONV_F64 0
#define SUF _f32_avx2
#include "instantiate.h"
#define GCONV_F64 1
#define SUF _f64_avx2
#include "instantiate.h"
#undef VBYTES
#undef VREGS
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
#define VBYTES 64
#define VREGS 32
#define GCONV_F64 0
#define SUF _f32_avx512
#include "instantiate.h"
#define GCONV_F64 1
#define SUF _f64_avx512
#include "instantiate.h"
#undef VBYTES
#undef VREGS
#pragma GCC pop_options
#else
#define GCONV_HAVE_X86_VARIANTS 0
#endif

#include "registry.h"

/* Best variant this CPU (and OS: libgcc checks XCR0) can run. */
static int gconv_cpu_max_isa(void)
{
#if GCONV_HAVE_X86_VARIANTS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        return GCONV_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return GCONV_ISA_AVX2;
#endif
    return GCONV_ISA_GENERIC;
}

#endif
