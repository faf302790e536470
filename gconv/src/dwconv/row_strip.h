/* dwconv/row_strip.h: row mode's register strips: dw_strip (compile-time taps, strides,
 * dilations, masks and half vectors) and dw_strip_generic (runtime taps). Per variant;
 * expects dwconv/simd.h. */

/* --- row mode kernels ----------------------------------------------------------------- */

/* Per-call geometry shared by the kernels of one sub-block. */
typedef struct {
    const dw_params *p;
    long pitch;        /* elements between scratch rows (input rows in direct mode) */
    long OW, plane;    /* output row length; elements per output channel (OH*OW) */
    /* the generic kernel's taps (dw_generic_taps, row_kernels.h): */
    const long *coff;  /* tap column kw -> offset in a phase-split scratch row */
    const short *khmap;/* [i * DW_RB + r]: the kernel row by which a strip's input row i
                          feeds its output row r, or -1 */
} FN(dw_args);

/* One register strip: RB rows x NV vectors x MM channels, all taps.
 *   src: scratch row of the strip's first output row, at the input column of the strip's
 *        first output column (S * c); rows pitch apart
 *   dst: output of channel 0, first row, first column; rows ld apart, channels plane apart
 *   vector j < NV-1 is at output offset j*VLEN, the last one at `last`
 *   wt:  MM * KH*KW weights (contiguous channels), bias: MM values or NULL
 * Input row i (relative) feeds output row r through kh when i = r*S + kh*D; every output
 * is accumulated as bias, then kh ascending, kw ascending. */
DW_INLINE void FN(dw_strip)(const int KH, const int KW, const int S, const int D, const int MM,
                            const int RB, const int NV, const int MASKED, const int HT,
                            const T *restrict src, long pitch, const T *restrict wt,
                            const T *restrict bias, T *restrict dst, long ld, long plane,
                            long last, long col0, long W)
{
    /* HT (S == 1, not MASKED): the last vector is a half-width one, at `last` */
    /* MASKED (direct mode): src is the input row itself at column col0 (which may be
     * < 0); lanes whose input column falls outside [0, W) read a neighbouring row's
     * values (before the row start, or past its end the next row's) and are zeroed,
     * which is the zero padding. (Masks apply to every vector of the group: fewer
     * variants to compile, and only the groups at a row's ends are masked.) */
#define DW_MASKED_J(j) (MASKED)
#define DW_OFF(j) ((j) == NV - 1 ? last : (long)(j) * VLEN)
#define DW_FULL(j) (!HT || (j) < NV - 1)
    VEC acc[2][DW_RB_MAX][4];
    DW_HVEC hacc[2][DW_RB_MAX];
#pragma GCC unroll 4
    for (int m = 0; m < MM; m++) {
        VEC seed = BCAST(bias ? bias[m] : (T)0);
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++) {
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) acc[m][r][j] = seed;
            if (HT) hacc[m][r] = DW_LO(seed);
        }
    }
    const FN(ivec) even = FN(dw_split_mask)(0), odd = FN(dw_split_mask)(1);
    /* S2V (stride 2, 512-bit floats): per input row, vector j's 2*VLEN input columns are
     * split once into even (E) and odd (O) columns in order, plus the few even / odd
     * columns right after them (from one more load: En, On); tap kw is then E (kw even)
     * or O (kw odd) moved kw/2 lanes on by one valignd. Each input column is loaded once
     * per row instead of once per tap pair, and the sums come out in order (no unsplit
     * permute): MobileNetV2's stride-2 3x3 (144 x 56x56) 430 -> 400 ns a channel. */
    const int S2V = DW_S2V && S == 2 && D == 1 && KW <= 7;   /* shifts within a vector */
    const int NI = (RB - 1) * S + (KH - 1) * D + 1;
    const T *rp = src;
    /* weights re-read per strip: hoisted out of the column loop, the broadcasts of a
     * 5x5 or 7x7 kernel would not fit in registers and go through the stack */
    const T *wp = wt;
    DW_OPAQUE(wp);
#pragma GCC unroll 32
    for (int i = 0; i < NI; i++, rp += pitch) {
        DW_OPAQUE(rp);
        const T *rl = rp + S * last;
        VEC odd_x[4];
#if DW_S2V
        VEC ev[4], od[4], evn[4], odn[4];
        if (S2V) {
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) {
                const T *xp = j == NV - 1 ? rl : rp + S * j * VLEN;
                const long c = col0 + S * DW_OFF(j);
                const VEC a = FN(dw_cols)(MASKED, xp, c, W);
                const VEC b = FN(dw_cols)(MASKED, xp + VLEN, c + VLEN, W);
                ev[j] = FN(dw_s2_half)(a, b, 0);
                od[j] = FN(dw_s2_half)(a, b, 1);
                DW_IN_REG(ev[j]);
                DW_IN_REG(od[j]);
                if (KW > 2) {             /* columns 2*VLEN.. after: lane 0 is the next even */
                    const VEC n = FN(dw_cols)(MASKED, xp + 2 * VLEN, c + 2 * VLEN, W);
                    evn[j] = KW > 3 ? FN(dw_s2_half)(n, n, 0) : n;
                    odn[j] = KW > 4 ? FN(dw_s2_half)(n, n, 1) : n;
                }
            }
        }
#endif
#pragma GCC unroll 16
        for (int kw = 0; kw < KW; kw++) {
            VEC xv[4];
            DW_HVEC hx;
            if (HT) {
                hx = DW_HLOADU(rl + kw * D);
                DW_IN_REG(hx);
            }
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) {
                if (!DW_FULL(j)) continue;
                const T *xp = (j == NV - 1 ? rl : rp + S * j * VLEN) + kw * D;
#if DW_S2V
                if (S2V) {
                    xv[j] = kw % 2 == 0 ? DW_S2_SHIFT(ev[j], evn[j], kw / 2)
                                        : DW_S2_SHIFT(od[j], odn[j], kw / 2);
                    DW_IN_REG(xv[j]);
                    continue;
                }
#endif
                const long c = col0 + S * DW_OFF(j) + kw * D;    /* xp's input column */
                if (S == 1) {
                    xv[j] = FN(dw_cols)(DW_MASKED_J(j), xp, c, W);
                } else if (kw % 2 == 0) {     /* S == 2, D == 1: columns kw, kw+2, ... */
                    const VEC a = FN(dw_cols)(DW_MASKED_J(j), xp, c, W);
                    const VEC b = FN(dw_cols)(DW_MASKED_J(j), xp + VLEN, c + VLEN, W);
                    xv[j] = __builtin_shuffle(a, b, even);
                    if (kw + 1 < KW) odd_x[j] = __builtin_shuffle(a, b, odd);
                } else {
                    xv[j] = odd_x[j];
                }
                DW_IN_REG(xv[j]);
            }
#pragma GCC unroll 8
            for (int r = 0; r < RB; r++) {
                const int dh = i - r * S;
                if (dh < 0 || dh % D != 0 || dh / D >= KH) continue;
                const int kh = dh / D;
#pragma GCC unroll 4
                for (int m = 0; m < MM; m++) {
                    VEC wv = BCAST(wp[m * KH * KW + kh * KW + kw]);
#pragma GCC unroll 4
                    for (int j = 0; j < NV; j++)
                        if (DW_FULL(j)) acc[m][r][j] += wv * xv[j];
                    if (HT) hacc[m][r] += ((T)wp[m * KH * KW + kh * KW + kw] - (DW_HVEC){0}) * hx;
                }
            }
        }
    }
    const FN(ivec) unsplit = FN(dw_unsplit_mask)();
#pragma GCC unroll 4
    for (int m = 0; m < MM; m++)
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++)
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) {
                if (!DW_FULL(j)) {
                    DW_HSTOREU(dst + m * plane + r * ld + last, hacc[m][r]);
                    continue;
                }
                VEC v = acc[m][r][j];
                if (S == 2 && !S2V) v = __builtin_shuffle(v, unsplit);
                STOREU(dst + m * plane + r * ld + DW_OFF(j), v);
            }
#undef DW_FULL
}

/* The generic strip: RB output rows x NV vectors x MM channels, runtime taps; src is a
 * phase-split scratch row (SW phases of wq elements) at the strip's first output row and
 * column, rows a->pitch apart. As dw_strip, each input row i is loaded once per tap column
 * for every output row r it feeds (kernel row a->khmap[i*DW_RB + r]); every output sums
 * bias, then kh ascending, kw ascending. */
DW_INLINE void FN(dw_strip_generic)(const int MM, const int RB, const int NV,
                                    const FN(dw_args) *a, const T *restrict src,
                                    const T *restrict wt, const T *restrict bias,
                                    T *restrict dst, long ld, long plane, long last)
{
    const dw_params *p = a->p;
    const long KH = p->KH, KW = p->KW, KK = KH * KW, pitch = a->pitch;
    const long NI = dw_in_rows(p, RB);
    const long *coff = a->coff;
    VEC acc[2][DW_RB_MAX][4];
#pragma GCC unroll 2
    for (int m = 0; m < MM; m++) {
        VEC seed = BCAST(bias ? bias[m] : (T)0);
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++)
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) acc[m][r][j] = seed;
    }
    for (long i = 0; i < NI; i++) {
        const short *kh = a->khmap + i * DW_RB;
        int used = 0;
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++) used |= kh[r] >= 0;
        if (!used) continue;
        const T *row = src + i * pitch;
        for (long kw = 0; kw < KW; kw++) {
            const T *xp = row + coff[kw];
            VEC xv[4];
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) {
                xv[j] = LOADU(xp + DW_OFF(j));
                DW_IN_REG(xv[j]);
            }
#pragma GCC unroll 8
            for (int r = 0; r < RB; r++) {
                if (kh[r] < 0) continue;
                const T *wr = wt + kh[r] * KW + kw;
#pragma GCC unroll 2
                for (int m = 0; m < MM; m++) {
                    VEC wv = BCAST(wr[m * KK]);
#pragma GCC unroll 4
                    for (int j = 0; j < NV; j++) acc[m][r][j] += wv * xv[j];
                }
            }
        }
    }
#pragma GCC unroll 2
    for (int m = 0; m < MM; m++)
#pragma GCC unroll 8
        for (int r = 0; r < RB; r++)
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) STOREU(dst + m * plane + r * ld + DW_OFF(j), acc[m][r][j]);
#undef DW_OFF
#undef DW_MASKED_J
}
