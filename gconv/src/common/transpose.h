/* common/transpose.h: VLEN x VLEN transposes in registers (GEMM weight packing and
 * channel-vector tiles, depthwise lanes mode). Per variant; expects VEC, LOADU, STOREU,
 * FN(ivec), FN(iota) (common/simd.h). */

#if VBYTES == 64 && !GCONV_F64
/* r (16 vectors of 16 floats) = its transpose, in registers. Two stages stay inside the
 * 128-bit lanes (unpack of 32-, then 64-bit elements), two move whole 128-bit lanes
 * (shuffle_f32x4): 64 shuffles as in the generic butterfly below, but none of them a
 * vpermt2ps, which here also costs a register copy each (it overwrites a source).
 * Measured: 32 against 45-60 TSC ticks per 16x16 block. */
static inline __attribute__((always_inline)) void FN(transpose_regs)(VEC *r)
{
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {          /* t[i]: lanes a0 b0 a1 b1 | ... (rows i, i+1) */
        t[i] = _mm512_unpacklo_ps((__m512)r[i], (__m512)r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps((__m512)r[i], (__m512)r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) {          /* u[i + j]: 128-bit lane k = column 4k + j */
        u[i] = (__m512)_mm512_unpacklo_pd((__m512d)t[i], (__m512d)t[i + 2]);     /* of rows */
        u[i + 1] = (__m512)_mm512_unpackhi_pd((__m512d)t[i], (__m512d)t[i + 2]); /* i..i+3 */
        u[i + 2] = (__m512)_mm512_unpacklo_pd((__m512d)t[i + 1], (__m512d)t[i + 3]);
        u[i + 3] = (__m512)_mm512_unpackhi_pd((__m512d)t[i + 1], (__m512d)t[i + 3]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {              /* gather column 4k + j's four 128-bit pieces */
        const __m512 a = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
        const __m512 b = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
        const __m512 c = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        const __m512 d = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
        r[j] = (VEC)_mm512_shuffle_f32x4(a, c, 0x88);
        r[8 + j] = (VEC)_mm512_shuffle_f32x4(a, c, 0xdd);
        r[4 + j] = (VEC)_mm512_shuffle_f32x4(b, d, 0x88);
        r[12 + j] = (VEC)_mm512_shuffle_f32x4(b, d, 0xdd);
    }
}
#else
/* r (VLEN vectors) = its transpose, in registers: log2(VLEN) butterfly stages of
 * two-input shuffles; stage b swaps the b x b off-diagonal sub-blocks of every 2b x 2b
 * block. */
static inline __attribute__((always_inline)) void FN(transpose_regs)(VEC *r)
{
    const FN(ivec) iota = FN(iota)();
#pragma GCC unroll 4
    for (int b = 1; b < VLEN; b *= 2) {
        /* indices into the concatenation (row i, row i+b): constants after folding (masks
         * built lane by lane were not folded: ~4x slower transposes) */
        const FN(ivec) up = (FN(ivec))((iota & (ITYPE)b) != 0) & (ITYPE)(VLEN - b);
        const FN(ivec) lo_mask = iota + up, hi_mask = iota + up + (ITYPE)b;
#pragma GCC unroll 16
        for (int i = 0; i < VLEN; i++) {
            if (i & b) continue;
            VEC a = r[i], c = r[i + b];
            r[i] = __builtin_shuffle(a, c, lo_mask);
            r[i + b] = __builtin_shuffle(a, c, hi_mask);
        }
    }
}
#endif

/* dst (VLEN x VLEN, rows ldd apart) = transpose of src (VLEN x VLEN, rows lds apart). */
static inline void FN(transpose_block)(const T *src, long lds, T *dst, long ldd)
{
    VEC r[VLEN];
#pragma GCC unroll 16
    for (int i = 0; i < VLEN; i++) r[i] = LOADU(src + i * lds);
    FN(transpose_regs)(r);
#pragma GCC unroll 16
    for (int i = 0; i < VLEN; i++) STOREU(dst + i * ldd, r[i]);
}
