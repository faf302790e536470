/* dwconv/lanes.h: lanes mode (3x3, channels in the vector lanes): register tiles over a
 * zero-bordered grid of pixel vectors, and the lanes task. Per variant; expects
 * common/transpose.h and dwconv/epilogue.h. */

/* --- lanes mode ----------------------------------------------------------------------- */

/* Output columns per register tile: RB (1 or 2) rows x NB columns of accumulators, plus the
 * 9 weight vectors and the input vector being used: 2*7 + 9 + 1 = 24 of 32 registers. */
#define DW_LNB (VREGS >= 32 ? 7 : 4)

/* VLEN x VLEN transpose: row i is read at s[i] (s NULL: at s0 + i*lds) and column i
 * written to d[i] (d NULL: at d0 + doff[i]); any addresses, several d[i] may be the same
 * throw-away vector. transpose_block with gathered rows and scattered columns. */
DW_INLINE void FN(dw_tr)(const T *const *s, const T *s0, long lds, T *const *d, T *d0,
                         const int *doff)
{
    VEC r[VLEN];
#pragma GCC unroll 16
    for (int i = 0; i < VLEN; i++) r[i] = LOADU(s ? s[i] : s0 + i * lds);
    FN(transpose_regs)(r);
#pragma GCC unroll 16
    for (int i = 0; i < VLEN; i++) STOREU(d ? d[i] : d0 + doff[i], r[i]);
}

/* One register tile of lanes mode: RB output rows x NB output columns, VLEN channels per
 * vector. g: the padded grid at the tile's first output (its top-left tap), gp elements
 * between grid rows; o: the stage at the tile's first output, op elements between output
 * rows. Every output: bias, then taps kh ascending, kw ascending (input row i = r + kh,
 * column c = j + kw, both loops ascending). */
DW_INLINE void FN(dw_lanes_tile)(const int RB, const int NB, const T *restrict g, long gp,
                                 const VEC *restrict wv, VEC bv, T *restrict o, long op)
{
    VEC acc[2][DW_LNB];
#pragma GCC unroll 2
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) acc[r][j] = bv;
#pragma GCC unroll 4
    for (int i = 0; i < RB + 2; i++) {
        const T *gr = g + i * gp;
        DW_OPAQUE(gr);
#pragma GCC unroll 10
        for (int c = 0; c < NB + 2; c++) {
            VEC xv = *(const VEC *)(gr + c * VLEN);
            DW_IN_REG(xv);
#pragma GCC unroll 2
            for (int r = 0; r < RB; r++) {
                const int kh = i - r;
                if (kh < 0 || kh > 2) continue;
#pragma GCC unroll 3
                for (int kw = 0; kw < 3; kw++) {
                    const int j = c - kw;
                    if (j < 0 || j >= NB) continue;
                    acc[r][j] += wv[kh * 3 + kw] * xv;
                }
            }
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) *(VEC *)(o + r * op + j * VLEN) = acc[r][j];
}

/* RB output rows of lanes mode, the whole width: tiles of DW_LNB columns, then one of the
 * remaining columns. */
DW_INLINE void FN(dw_lanes_rows)(const int RB, const T *g, long gp, const VEC *wv,
                                 VEC bv, T *o, long op, long OW)
{
    long ow = 0;
    for (; ow + DW_LNB <= OW; ow += DW_LNB)
        FN(dw_lanes_tile)(RB, DW_LNB, g + ow * VLEN, gp, wv, bv, o + ow * VLEN, op);
    g += ow * VLEN;
    o += ow * VLEN;
    switch (OW - ow) {
#define DW_LCASE(k)                                                                         \
    case k:                                                                                 \
        if (k < DW_LNB) FN(dw_lanes_tile)(RB, k < DW_LNB ? k : 1, g, gp, wv, bv, o, op);    \
        break;
    DW_LCASE(1) DW_LCASE(2) DW_LCASE(3) DW_LCASE(4) DW_LCASE(5) DW_LCASE(6)
#undef DW_LCASE
    default: break;
    }
}

/* Lanes mode (see the top comment): image n, channels [c0, c1), blocks of VLEN channels
 * (c0 a multiple of VLEN). Scratch: the zero-padded grid of (OH+2) x (OW+2) pixel vectors
 * (its border is zero from the start and never written), the 9 weight vectors, the bias
 * vector, the output stage (OH*OW pixel vectors) and a throw-away vector. */
static void FN(dw_lanes_task)(const dw_params *p, const T *x, const T *w, const T *bias,
                              const T *res, T *y, long n, long c0, long c1, T *scratch)
{
    const long H = p->H, W = p->W, HW = H * W, G = p->G, KK = 9;
    const long gp = (W + 2) * VLEN;
    T *grid = scratch;
    T *wts = grid + (H + 2) * gp;
    T *bv = wts + KK * VLEN;
    T *stage = bv + VLEN;
    T *dummy = stage + HW * VLEN;
    const int epi = res != NULL || p->act != GCONV_ACT_NONE;
    const T *s[VLEN];
    T *d[VLEN];
    /* where pixel q goes in the grid (the same for every block) */
    int goff[16 * 16];
    for (long oh = 0, q = 0; oh < H; oh++)
        for (long ow = 0; ow < W; ow++, q++) goff[q] = (int)((oh + 1) * gp + (ow + 1) * VLEN);
    for (long cb = c0; cb < c1; cb += VLEN) {
        const long nc = c1 - cb < VLEN ? c1 - cb : VLEN;
        /* missing channels (nc < VLEN) read the last valid one's values: finite, unused */
        const T *xc = x + (n * G + cb) * HW;
        for (long q0 = 0; q0 < HW; q0 += VLEN) {
            const long qs = q0 + VLEN <= HW ? q0 : HW - VLEN;    /* last block pulled back */
            if (nc == VLEN) {
                FN(dw_tr)(NULL, xc + qs, HW, NULL, grid, goff + qs);
            } else {
                for (int i = 0; i < VLEN; i++) s[i] = xc + (i < nc ? i : nc - 1) * HW + qs;
                FN(dw_tr)(s, NULL, 0, NULL, grid, goff + qs);
            }
        }
        /* weights: vector t = tap t of the block's channels */
        for (long t0 = 0; t0 < KK; t0 += VLEN) {
            if ((cb + nc - 1) * KK + t0 + VLEN <= G * KK) {
                for (int i = 0; i < VLEN; i++) {
                    s[i] = w + (cb + (i < nc ? i : nc - 1)) * KK + t0;
                    d[i] = t0 + i < KK ? wts + (t0 + i) * VLEN : dummy;
                }
                FN(dw_tr)(s, NULL, 0, d, NULL, NULL);
            } else {            /* the last block: the loads would run past w */
                for (long t = t0; t < KK && t < t0 + VLEN; t++)
                    for (int i = 0; i < VLEN; i++)
                        wts[t * VLEN + i] = w[(cb + (i < nc ? i : nc - 1)) * KK + t];
            }
        }
        for (int i = 0; i < VLEN; i++) bv[i] = bias ? bias[cb + (i < nc ? i : nc - 1)] : (T)0;
        VEC wv[9];
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) wv[t] = *(const VEC *)(wts + t * VLEN);
        const VEC b = *(const VEC *)bv;
        /* row pairs (and a last single row); after each, the activation on its stage rows
         * (alone, it is elementwise: all lanes at once) and the transposes out of the
         * pixel blocks it completes, interleaved with the FMAs of the next rows. The last
         * pixel block is pulled back to end at H*W (rewrites equal values). */
        T *yc = y + (n * G + cb) * HW;
        long qo = 0;                    /* next pixel block to transpose out */
        for (long oh = 0; oh < H;) {
            const long rb = oh + 2 <= H ? 2 : 1;
            T *so = stage + oh * W * VLEN;
            if (rb == 2) FN(dw_lanes_rows)(2, grid + oh * gp, gp, wv, b, so, W * VLEN, W);
            else FN(dw_lanes_rows)(1, grid + oh * gp, gp, wv, b, so, W * VLEN, W);
            if (epi && res == NULL) FN(dw_epilogue)(p, so, NULL, rb * W * VLEN);
            oh += rb;
            const long done = oh * W;
            for (; qo < HW && (qo + VLEN <= done || done == HW); qo += VLEN) {
                const long qs = qo + VLEN <= HW ? qo : HW - VLEN;
                if (nc == VLEN) {
                    FN(transpose_block)(stage + qs * VLEN, VLEN, yc + qs, HW);
                    continue;
                }
                for (int i = 0; i < VLEN; i++) d[i] = i < nc ? yc + i * HW + qs : dummy;
                FN(dw_tr)(NULL, stage + qs * VLEN, VLEN, d, NULL, NULL);
            }
        }
        if (res != NULL)        /* the residual is NCHW: per channel, after the transposes */
            for (long i = 0; i < nc; i++)
                FN(dw_epilogue)(p, yc + i * HW, res + (n * G + cb + i) * HW, HW);
    }
}
