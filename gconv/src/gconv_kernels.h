/* gconv_kernels.h: compiles every kernel body once per (dtype, ISA) and picks the ISA at
 * run time from the CPU's features, so a default (portable) build still uses AVX-512 or
 * AVX2 where the CPU has them. GCONV_ISA=avx2|generic forces a lower variant.
 *
 *   variant   target                 VLEN f32/f64   vector registers
 *   avx512    avx512f+vl+dq+bw, fma  16 / 8         32
 *   avx2      avx2, fma              8 / 4          16
 *   generic   the build's baseline   4 / 2 (SSE2)   16
 */
#ifndef GCONV_KERNELS_H
#define GCONV_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <string.h>
#include "gconv_params.h"
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>     /* AVX-512 masked stores (conv_gemm_body.h: store_wide) */
#endif

enum { GCONV_ISA_GENERIC = 0, GCONV_ISA_AVX2 = 1, GCONV_ISA_AVX512 = 2, GCONV_N_ISA = 3 };

/* The operations one (dtype, ISA) variant provides. */
#define GCONV_DECLARE_OPS(T, SUF)                                                          \
    typedef struct {                                                                       \
        void (*gemm_plan)(gconv_params *, int);                                            \
        void (*gemm_pack_weights)(const gconv_params *, const T *, T *, T *);                   \
        void (*gemm_task)(const gconv_params *, const T *, const T *, const T *, const T *, \
                          T *, long, T *);                                                 \
        void (*dw_plan)(gconv_params *, int);                                              \
        void (*dw_task)(const gconv_params *, const T *, const T *, const T *, const T *,  \
                        T *, long, T *);                                                   \
    } gconv_ops_##SUF;
GCONV_DECLARE_OPS(float, f32)
GCONV_DECLARE_OPS(double, f64)

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

#define GCONV_OPS(SUF, ISA)                                                                \
    { gemm_plan_##SUF##_##ISA, gemm_pack_weights_##SUF##_##ISA, gemm_task_##SUF##_##ISA,   \
      dw_plan_##SUF##_##ISA, dw_task_##SUF##_##ISA }

static const gconv_ops_f32 gconv_ops_f32_table[GCONV_N_ISA] = {
    GCONV_OPS(f32, generic),
#if GCONV_HAVE_X86_VARIANTS
    GCONV_OPS(f32, avx2), GCONV_OPS(f32, avx512),
#endif
};
static const gconv_ops_f64 gconv_ops_f64_table[GCONV_N_ISA] = {
    GCONV_OPS(f64, generic),
#if GCONV_HAVE_X86_VARIANTS
    GCONV_OPS(f64, avx2), GCONV_OPS(f64, avx512),
#endif
};

/* One task of a plan, whatever its dtype, ISA and kind (0: GEMM, 1: depthwise): the single
 * entry the parallel loop in _kernels.pyx calls. */
static inline void gconv_run_task(int is_f64, int isa, int kind, const gconv_params *p,
                                  const void *x, const void *w, const void *b, const void *r,
                                  void *y, long task, void *scratch)
{
    if (is_f64) {
        const gconv_ops_f64 *o = &gconv_ops_f64_table[isa];
        (kind == 0 ? o->gemm_task : o->dw_task)(p, (const double *)x, (const double *)w,
                                                 (const double *)b, (const double *)r,
                                                 (double *)y, task, (double *)scratch);
    } else {
        const gconv_ops_f32 *o = &gconv_ops_f32_table[isa];
        (kind == 0 ? o->gemm_task : o->dw_task)(p, (const float *)x, (const float *)w,
                                                 (const float *)b, (const float *)r,
                                                 (float *)y, task, (float *)scratch);
    }
}

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
