/* fma_peak.h: measure this core's fp32 FMA peak, so benchmarks report "% of peak" against
 * the machine they ran on rather than a datasheet. 24 independent register-only FMA chains
 * (no loads, no stores) in inline asm, so the compiler cannot fold or spill them.
 * Returns GFLOP/s for the given ISA level, or 0 where no such loop is compiled. */
#ifndef GCONV_FMA_PEAK_H
#define GCONV_FMA_PEAK_H
#include <time.h>

static double gconv_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define GCONV_F512(r) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #r "\n\t"
#define GCONV_F256(r) "vfmadd231ps %%ymm14, %%ymm15, %%ymm" #r "\n\t"

__attribute__((target("avx512f"))) static double gconv_fma_peak_avx512(long iters)
{
    __asm__ volatile("vxorps %%xmm30, %%xmm30, %%xmm30\n\tvxorps %%xmm31, %%xmm31, %%xmm31" ::: "xmm30", "xmm31");
    double t0 = gconv_now_s();
    for (long k = 0; k < iters; k++)
        __asm__ volatile(GCONV_F512(0) GCONV_F512(1) GCONV_F512(2) GCONV_F512(3) GCONV_F512(4)
                         GCONV_F512(5) GCONV_F512(6) GCONV_F512(7) GCONV_F512(8) GCONV_F512(9)
                         GCONV_F512(10) GCONV_F512(11) GCONV_F512(12) GCONV_F512(13)
                         GCONV_F512(14) GCONV_F512(15) GCONV_F512(16) GCONV_F512(17)
                         GCONV_F512(18) GCONV_F512(19) GCONV_F512(20) GCONV_F512(21)
                         GCONV_F512(22) GCONV_F512(23)
                         ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
                             "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
                             "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21",
                             "xmm22", "xmm23");
    double t = gconv_now_s() - t0;
    return iters * 24.0 * 32.0 / t / 1e9;
}

__attribute__((target("avx2,fma"))) static double gconv_fma_peak_avx2(long iters)
{
    __asm__ volatile("vxorps %%xmm14, %%xmm14, %%xmm14\n\tvxorps %%xmm15, %%xmm15, %%xmm15" ::: "xmm14", "xmm15");
    double t0 = gconv_now_s();
    for (long k = 0; k < iters; k++)
        __asm__ volatile(GCONV_F256(0) GCONV_F256(1) GCONV_F256(2) GCONV_F256(3) GCONV_F256(4)
                         GCONV_F256(5) GCONV_F256(6) GCONV_F256(7) GCONV_F256(8) GCONV_F256(9)
                         GCONV_F256(10) GCONV_F256(11)
                         ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
                             "xmm8", "xmm9", "xmm10", "xmm11");
    double t = gconv_now_s() - t0;
    return iters * 12.0 * 16.0 / t / 1e9;
}
#endif

static double gconv_fma_peak(int isa, long iters)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa == 2) return gconv_fma_peak_avx512(iters);
    if (isa == 1) return gconv_fma_peak_avx2(iters * 2);
#endif
    (void)isa; (void)iters;
    return 0.0;
}
#endif
