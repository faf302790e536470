/* dwconv/lanes_any.h: lanes mode for any kernel (DW_MODE_LANES_ANY): channels in the
 * vector lanes as in lanes.h, for any kernel size, stride, dilation, padding and depth
 * multiplier, on planes of any size (in bands of output rows). It is the depthwise kind's
 * general engine: the shapes without an unrolled row kernel run here when they have
 * channels enough to fill the lanes (but few channels on long rows: see dw_any_fits in
 * dwconv/planner.h). Per variant; expects common/transpose.h, dwconv/lanes.h (dw_tr) and
 * dwconv/epilogue.h.
 *
 * A task is (image n, VLEN-channel blocks [c0, c1), output rows [oh0, oh1): a band). Per
 * block of VLEN channels:
 *
 *   grid   the band's input rows as pixel vectors (VLEN channels each), zero padded.
 *          Grid row k holds input row oh0*SH - PT + k. A row's padded columns c (input
 *          column c - PL) are split into SW phases so that every tap reads consecutive
 *          pixel vectors along the output row:
 *
 *            padded column c  ->  vector (c % SW) * wq + c / SW       (gw = SW * wq vectors)
 *            output column ow, tap kw  ->  padded column ow*SW + kw*DW
 *                                      ->  vector toff(kw) + ow        (one offset per tap)
 *
 *          Each task zeroes the grid's padding (the scratch is not zeroed per call): rows
 *          outside the input, and the padded columns outside the input that taps read.
 *   tile   RB (1-2) output rows x NB (up to DW_ANB) output columns in registers. Taps in a
 *          runtime loop, kh-major as every depthwise kernel sums them: per tap, one weight
 *          vector and RB*NB FMAs whose input vectors come straight from the grid (memory
 *          operands: one 512-bit load per FMA, which Zen 4's L1 delivers at its FMA rate,
 *          one per cycle; measured 50-65 % of the FMA peak on 25-99 taps).
 *   stage  the band's outputs of one output channel per lane (pixel-major), then the
 *          activation on the whole stage and VLEN x VLEN transposes back into the NCHW
 *          output; a residual is added per channel after the transposes. A depth
 *          multiplier M runs the tiles once per m on the same grid (lane i = channel
 *          c0 + i, output channel (c0 + i)*M + m).
 *
 * Bands, blocks and lanes never change what an output element sums or in which order, so
 * results are bitwise identical for any task split (thread count).
 */

/* Output columns per register tile: RB*NB accumulators plus the weight vector. */
#define DW_ANB (VREGS >= 32 ? 8 : 6)

/* One tile: o[r*op + j*VLEN ..] = bv + sum over taps t of wv[t] * g[toff[t] + r*rstep +
 * j*VLEN ..] (vectors of VLEN lanes). */
DW_INLINE void FN(dw_any_tile)(const int RB, const int NB, const T *restrict g, long rstep,
                               const long *restrict toff, long KK, const T *restrict wv,
                               VEC bv, T *restrict o, long op)
{
    VEC acc[2][DW_ANB];
#pragma GCC unroll 2
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) acc[r][j] = bv;
    for (long t = 0; t < KK; t++) {
        const VEC w = LOADU(wv + t * VLEN);
        const T *gt = g + toff[t];
#pragma GCC unroll 2
        for (int r = 0; r < RB; r++)
#pragma GCC unroll 8
            for (int j = 0; j < NB; j++) acc[r][j] += w * LOADU(gt + r * rstep + j * VLEN);
    }
#pragma GCC unroll 2
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 8
        for (int j = 0; j < NB; j++) STOREU(o + r * op + j * VLEN, acc[r][j]);
}

/* The tiles instantiated: [RB-1][NB-1]. */
#define DW_ANY_TILE_FN(RB_, NB_)                                                           \
    static void FN(dw_any_tile_##RB_##x##NB_)(const T *g, long rstep, const long *toff,    \
                                              long KK, const T *wv, const T *bv, T *o,     \
                                              long op)                                     \
    {                                                                                      \
        FN(dw_any_tile)(RB_, NB_ <= DW_ANB ? NB_ : 1, g, rstep, toff, KK, wv, LOADU(bv),   \
                        o, op);                                                            \
    }
#define DW_ANY_TILE_LIST(X)                                                                \
    X(1, 1) X(1, 2) X(1, 3) X(1, 4) X(1, 5) X(1, 6) X(1, 7) X(1, 8)                        \
    X(2, 1) X(2, 2) X(2, 3) X(2, 4) X(2, 5) X(2, 6) X(2, 7) X(2, 8)
DW_ANY_TILE_LIST(DW_ANY_TILE_FN)
#undef DW_ANY_TILE_FN
typedef void (*FN(dw_any_tile_fn))(const T *, long, const long *, long, const T *, const T *,
                                   T *, long);
#define DW_ANY_TILE_PTR(RB_, NB_) FN(dw_any_tile_##RB_##x##NB_),
static const FN(dw_any_tile_fn) FN(dw_any_tiles)[16] = {DW_ANY_TILE_LIST(DW_ANY_TILE_PTR)};
#undef DW_ANY_TILE_PTR
#undef DW_ANY_TILE_LIST

/* Grid geometry (the planner sizes scratch with these): padded columns the taps and the
 * input reach, vectors per phase (wq) and per grid row (gw = SW * wq). */
static long FN(dw_any_wq)(const dw_params *p)
{
    long cols = (p->OW - 1) * p->SW + (p->KW - 1) * p->DW + 1;
    if (cols < p->PL + p->W) cols = p->PL + p->W;
    return FN(ceil_div)(cols, p->SW);
}

/* Scratch layout, in elements of T: grid, weights (M*KK vectors), bias (M vectors), stage
 * (rows_per_task*OW vectors), a throw-away vector, tap offsets (KK longs). */
static long FN(dw_any_scratch)(const dw_params *p, long rows)
{
    const long KK = p->KH * p->KW, gw = p->SW * FN(dw_any_wq)(p);
    const long longs = FN(ceil_div)(KK * (long)sizeof(long), (long)sizeof(T));
    return (dw_in_rows(p, rows) * gw + p->M * (KK + 1) + rows * p->OW + 1) * VLEN +
           longs + VLEN;
}

static void FN(dw_any_task)(const dw_params *p, const T *x, const T *w, const T *bias,
                            const T *res, T *y, long n, long c0, long c1, long oh0, long oh1,
                            T *scratch)
{
    const long H = p->H, W = p->W, HW = H * W, G = p->G, M = p->M, OW = p->OW;
    const long KH = p->KH, KW = p->KW, KK = KH * KW, SH = p->SH, SW = p->SW;
    const long plane = p->OH * OW, C_out = p->C_out;
    const long wq = FN(dw_any_wq)(p), gw = SW * wq, gv = gw * VLEN;
    const long rows = oh1 - oh0, nin = dw_in_rows(p, rows);
    T *grid = scratch;
    T *wts = grid + dw_in_rows(p, p->rows_per_task) * gv;
    T *bvs = wts + M * KK * VLEN;
    T *stage = bvs + M * VLEN;
    T *dummy = stage + p->rows_per_task * OW * VLEN;
    long *toff = (long *)(dummy + VLEN);
    for (long kh = 0, t = 0; kh < KH; kh++)
        for (long kw = 0; kw < KW; kw++, t++) {
            const long c = kw * p->DW;
            toff[t] = kh * p->DH * gv + ((c % SW) * wq + c / SW) * VLEN;
        }
    const int epi = res != NULL || p->act != GCONV_ACT_NONE;
    /* the band's input rows [ih0, ih1) within the input; grid row k = input row gi0 + k */
    const long gi0 = oh0 * SH - p->PT;
    const long ih0 = gi0 > 0 ? gi0 : 0, ih1 = gi0 + nin < H ? gi0 + nin : H;
    const long q0 = ih0 * W, q1 = ih1 > ih0 ? ih1 * W : q0;
    const long npix = q1 - q0;
    const T *s[VLEN];
    T *d[VLEN];
    /* the zero padding, per task (the scratch is not zeroed: another task's band may have
     * left input values anywhere): grid rows outside the input whole, and in the others
     * the padded columns outside [PL, PL + W) that the taps read */
    const long ncols = (OW - 1) * SW + (KW - 1) * p->DW + 1;
    for (long k = 0; k < nin; k++) {
        T *gr = grid + k * gv;
        if (gi0 + k < 0 || gi0 + k >= H) {
            for (long e = 0; e < gv; e++) gr[e] = 0;
            continue;
        }
        for (int side = 0; side < 2; side++) {      /* left of the input, right of it */
            const long c0 = side ? p->PL + W : 0, c1 = side ? ncols : p->PL;
            for (long c = c0, ph = c0 % SW, qd = c0 / SW; c < c1; c++) {
                T *v = gr + (ph * wq + qd) * VLEN;
                for (int i = 0; i < VLEN; i++) v[i] = 0;
                if (++ph == SW) ph = 0, qd++;
            }
        }
    }

    for (long cb = c0; cb < c1; cb += VLEN) {
        const long nc = c1 - cb < VLEN ? c1 - cb : VLEN;
        const T *xc = x + (n * G + cb) * HW;
        /* 1. input pixels into the grid: VLEN pixels x VLEN channels per transpose, the
         * last block pulled back; missing channels (nc < VLEN) read the last one again */
        if (npix >= VLEN) {
            /* pixel q0's grid vector; then column by column: its phase ph and place qd
             * in the phase advance without divisions (two per lane cost more than the
             * transpose itself at stride 2) */
            long ih = q0 / W, iw = 0, ph = p->PL % SW, qd = p->PL / SW;
            T *row = grid + (ih - gi0) * gv;
            for (long qb = q0; qb < q1; qb += VLEN) {
                const long qs = qb + VLEN <= q1 ? qb : q1 - VLEN;
                if (qs != qb) {          /* the last block, pulled back: start over there */
                    ih = qs / W, iw = qs % W;
                    ph = (iw + p->PL) % SW, qd = (iw + p->PL) / SW;
                    row = grid + (ih - gi0) * gv;
                }
                /* full blocks of channels read rows HW apart; at stride 1 a block within
                 * one input row lands on consecutive grid vectors: no pointer arrays */
                const T *s0 = nc == VLEN ? xc + qs : NULL;
                if (nc < VLEN)
                    for (int i = 0; i < VLEN; i++) s[i] = xc + (i < nc ? i : nc - 1) * HW + qs;
                if (SW == 1 && iw + VLEN <= W) {
                    if (s0 != NULL) {
                        FN(transpose_block)(s0, HW, row + qd * VLEN, VLEN);
                    } else {
                        for (int i = 0; i < VLEN; i++) d[i] = row + (qd + i) * VLEN;
                        FN(dw_tr)(s, NULL, 0, d, NULL, NULL);
                    }
                    iw += VLEN, qd += VLEN;
                    if (iw == W) iw = 0, qd = p->PL, row += gv;
                    continue;
                }
                for (int i = 0; i < VLEN; i++) {
                    d[i] = row + (ph * wq + qd) * VLEN;
                    if (++ph == SW) ph = 0, qd++;
                    if (++iw == W) {
                        iw = 0, ph = p->PL % SW, qd = p->PL / SW;
                        row += gv;
                    }
                }
                FN(dw_tr)(s0 ? NULL : s, s0, HW, d, NULL, NULL);
            }
        } else {
            for (long q = q0; q < q1; q++) {
                const long ih = q / W, c = q % W + p->PL;
                T *g = grid + (ih - gi0) * gv + ((c % SW) * wq + c / SW) * VLEN;
                for (int i = 0; i < VLEN; i++) g[i] = xc[(i < nc ? i : nc - 1) * HW + q];
            }
        }
        /* 2. weights: vector (m, t) = tap t of output channels (cb + i)*M + m; bias */
        for (long m = 0; m < M; m++) {
            for (long t = 0; t < KK; t++)
                for (int i = 0; i < VLEN; i++)
                    wts[(m * KK + t) * VLEN + i] = w[((cb + (i < nc ? i : nc - 1)) * M + m) * KK + t];
            for (int i = 0; i < VLEN; i++)
                bvs[m * VLEN + i] = bias ? bias[(cb + (i < nc ? i : nc - 1)) * M + m] : (T)0;
        }
        /* 3. per output channel of the block's lanes: tiles, activation, transposes out */
        for (long m = 0; m < M; m++) {
            const T *wm = wts + m * KK * VLEN, *bm = bvs + m * VLEN;
            for (long r = 0; r < rows;) {
                const long rb = r + 2 <= rows ? 2 : 1;
                const T *g = grid + r * SH * gv;
                T *o = stage + r * OW * VLEN;
                for (long ow = 0; ow < OW;) {
                    const long nb = OW - ow < DW_ANB ? OW - ow : DW_ANB;
                    FN(dw_any_tiles)[(rb - 1) * 8 + nb - 1](g + ow * VLEN, SH * gv, toff, KK,
                                                            wm, bm, o + ow * VLEN, OW * VLEN);
                    ow += nb;
                }
                r += rb;
            }
            if (epi && res == NULL) FN(dw_epilogue)(p, stage, NULL, rows * OW * VLEN);
            const long f0 = oh0 * OW, nf = rows * OW;
            T *yc = y + (n * C_out + cb * M + m) * plane + f0;
            if (nf >= VLEN) {
                for (long qb = 0; qb < nf; qb += VLEN) {
                    const long qs = qb + VLEN <= nf ? qb : nf - VLEN;
                    if (nc == VLEN) {
                        FN(transpose_block)(stage + qs * VLEN, VLEN, yc + qs, M * plane);
                        continue;
                    }
                    for (int i = 0; i < VLEN; i++)
                        d[i] = i < nc ? yc + i * M * plane + qs : dummy;
                    FN(dw_tr)(NULL, stage + qs * VLEN, VLEN, d, NULL, NULL);
                }
            } else {
                for (long q = 0; q < nf; q++)
                    for (long i = 0; i < nc; i++) yc[i * M * plane + q] = stage[q * VLEN + i];
            }
            if (res != NULL)
                for (long i = 0; i < nc; i++)
                    FN(dw_epilogue)(p, yc + i * M * plane, res + (yc - y) + i * M * plane, nf);
        }
    }
}
