/* dwconv/simd.h: the depthwise kind's vector helpers: inlining and register-pinning macros,
 * which kernels are specialised for this variant, register blocking, half-width vectors,
 * masked column loads and the stride-2 lane splits. Per variant (dwconv/dwconv.h); expects
 * common/simd.h. */

#define DW_INLINE static inline __attribute__((always_inline))
/* DW_IN_REG: keep a loaded vector in a register; without it GCC folds the load into every
 * FMA that uses it (one memory operand per FMA), which makes the kernels load-bound.
 * DW_OPAQUE: hide a pointer's value, so GCC does not hoist per-row offsets out of the
 * column loop (and spill them). */
#if defined(__x86_64__) || defined(__i386__)
#define DW_IN_REG(v) __asm__("" : "+x"(v))
#define DW_OPAQUE(p) __asm__("" : "+r"(p))
#else
#define DW_IN_REG(v) ((void)0)
#define DW_OPAQUE(p) ((void)0)
#endif

/* The unrolled kernels are compiled for 256- and 512-bit vectors only: the baseline
 * (SSE2) variant, a fallback for old CPUs, runs everything through the generic kernel
 * (still vectorised along the width), which keeps the build time reasonable. */
#define DW_SPECIALISE (VLEN * sizeof(T) >= 32)
#define DW_SPEC(f, g) (DW_SPECIALISE ? FN(f) : FN(g))
/* float64 gets the unrolled 3x3 kernels only (the others run the generic kernel): half
 * the compile time of the rest, for a dtype nobody runs these layers in for speed */
#define DW_SPEC32(f, g) (DW_SPECIALISE && sizeof(T) == 4 ? FN(f) : FN(g))

/* Register blocking: MM*RB*NV accumulators, NV input vectors and the weight broadcasts
 * that fit. 32 registers (AVX-512): 4 rows x up to 3 vectors (MM=2: 2); 16 registers:
 * 2 x 2 (MM=2: 1). A row's vectors go in groups of 3 and 2 (see dw_row_strip). */
#if VREGS >= 32
#define DW_RB 4
#define DW_NV 3
#define DW_NV2 2
#else
#define DW_RB 2
#define DW_NV 2
#define DW_NV2 1
#endif
/* dilation 2 shares fewer input rows between neighbouring output rows: taller strips */
#define DW_RB_D2 (2 * DW_RB)
#define DW_NV_D2 (VREGS >= 32 ? 2 : 1)
#define DW_RB_MAX (2 * DW_RB)

/* half-width vectors, for the ragged end of a row (see dw_row_strip) */
typedef T FN(hvec) __attribute__((vector_size(VLEN / 2 * sizeof(T))));
typedef T FN(uhvec) __attribute__((vector_size(VLEN / 2 * sizeof(T)), aligned(sizeof(T)),
                                   may_alias));
#define DW_HVEC FN(hvec)
#define DW_HLOADU(p) ((DW_HVEC)(*(const FN(uhvec) *)(p)))
#define DW_HSTOREU(p, v) (*(FN(uhvec) *)(p) = (v))
#if VLEN >= 16
#define DW_LO(v) __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)
#elif VLEN >= 8
#define DW_LO(v) __builtin_shufflevector(v, v, 0, 1, 2, 3)
#elif VLEN >= 4
#define DW_LO(v) __builtin_shufflevector(v, v, 0, 1)
#else
#define DW_LO(v) __builtin_shufflevector(v, v, 0)
#endif

DW_INLINE FN(ivec) FN(dw_iota)(void)
{
    FN(ivec) v;
#pragma GCC unroll 16
    for (int i = 0; i < VLEN; i++) v[i] = (FN(ielem))i;
    return v;
}

/* VLEN input values from p, lane l being column c + l of its row; in a masked (direct
 * mode) strip the lanes outside the row [0, W) are zeroed: they are the zero padding (the
 * load read a neighbouring row's values there). */
DW_INLINE VEC FN(dw_cols)(const int MASKED, const T *p, long c, long W)
{
    VEC v = LOADU(p);
    if (MASKED) {
        const FN(ivec) l = FN(dw_iota)();
        const FN(ielem) ce = (FN(ielem))c;
        v = (VEC)((FN(ivec))v & ((l >= -ce) & (l < (FN(ielem))W - ce)));
    }
    return v;
}

/* --- stride 2 on 512-bit floats: even/odd columns in natural order ------------------ */
#if VBYTES == 64 && !GCONV_F64
#define DW_S2V 1
/* even (odd) elements of the 32 consecutive inputs (a, b), in order: one vpermt2ps */
DW_INLINE VEC FN(dw_s2_half)(VEC a, VEC b, const int odd)
{
    const __m512i idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4,
                                         2, 0);
    const __m512i pick = _mm512_add_epi32(idx, _mm512_set1_epi32(odd));
    return (VEC)_mm512_permutex2var_ps((__m512)a, pick, (__m512)b);
}
/* lanes s.. of v, then lanes 0..s-1 of next: one valignd */
#define DW_S2_SHIFT(v, next, s)                                                             \
    ((s) == 0 ? (v) : (VEC)_mm512_alignr_epi32((__m512i)(next), (__m512i)(v), (s)))
#else
#define DW_S2V 0
#endif

/* --- stride-2 lane shuffles ------------------------------------------------------------ */

/* shufps-style split of a (VLEN) | b (VLEN) consecutive inputs: within each 128-bit lane
 * k (E elements), the even (odd) elements of a's lane k then of b's lane k. */
#define DW_E (16 / (int)sizeof(T))
DW_INLINE FN(ivec) FN(dw_split_mask)(const int odd)
{
    FN(ivec) m;
#pragma GCC unroll 16
    for (int l = 0; l < VLEN; l++) {
        const int k = l / DW_E, t = l % DW_E;
        m[l] = (FN(ielem))(t < DW_E / 2 ? k * DW_E + 2 * t + odd
                                        : VLEN + k * DW_E + 2 * (t - DW_E / 2) + odd);
    }
    return m;
}

/* Lane l of a split vector holds output column pos(l) of the 2*VLEN inputs' VLEN outputs;
 * this mask puts them back in order: out[pos(l)] = acc[l]. */
DW_INLINE FN(ivec) FN(dw_unsplit_mask)(void)
{
    FN(ivec) m;
#pragma GCC unroll 16
    for (int l = 0; l < VLEN; l++) {
        const int k = l / DW_E, t = l % DW_E;
        const int pos = t < DW_E / 2 ? k * DW_E / 2 + t : VLEN / 2 + k * DW_E / 2 + t - DW_E / 2;
        m[pos] = (FN(ielem))l;
    }
    return m;
}
