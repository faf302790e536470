/* gemm/planes.h: filling the phase planes a phase-plane task reads B from (row by row or as
 * flat runs, fill_phase_planes), their slack, and the tap offsets into them. Per variant;
 * expects common/simd.h, gemm/planner.h (plane_stride, FLAT_PLANE_VECS) and gemm/pack.h
 * (cv_tap). */

/* How vector v of every padded input row is made: it holds input columns [s, s + VLEN),
 * s = v*VLEN - PL, zero outside [0, W). Inside the row it is a plain load; otherwise a load
 * from `from`, a lane shift (pick: lane l = element pick[l] of (zeros, load)) and a mask
 * (keep), which also covers all-padding vectors (keep = 0). */
typedef struct {
    long from;
    int plain;
    FN(ivec) pick, keep;
} FN(col_vec);

static FN(col_vec) FN(plan_col_vec)(long v, long PL, long W)
{
    const FN(ivec) iota = FN(iota)();
    const long s = v * VLEN - PL;
    long from = s < 0 ? 0 : s;
    if (from + VLEN > W) from = W > VLEN ? W - VLEN : 0;   /* read inside the row if it can */
    FN(col_vec) cv;
    cv.from = from;
    cv.plain = (s >= 0 && s + VLEN <= W);
    cv.pick = iota + (ITYPE)(VLEN + s - from);      /* out of [0, 2*VLEN): masked by keep */
    cv.keep = (iota + (ITYPE)s >= 0) & (iota + (ITYPE)s < (ITYPE)W);
    return cv;
}

static inline __attribute__((always_inline)) VEC FN(col_load)(const T *xrow, FN(col_vec) cv)
{
    if (cv.plain) return LOADU(xrow + cv.from);
    VEC x = __builtin_shuffle((VEC){0}, LOADU(xrow + cv.from), cv.pick);
    return (VEC)((FN(ivec))x & cv.keep);
}

/* The same vector for a row near the end of the input, read element by element. */
static VEC FN(col_load_exact)(const T *xrow, long v, long PL, long W)
{
    T t[VLEN];
    for (long l = 0; l < VLEN; l++) {
        const long col = v * VLEN - PL + l;
        t[l] = (col >= 0 && col < W) ? xrow[col] : (T)0;
    }
    return LOADU(t);
}

typedef struct {
    long from;                  /* first input element read, from the channel's start */
    FN(ivec) pick, keep;        /* lane l = element pick[l] of the load, kept where keep[l] */
} FN(plane_vec);

/* (Not inlined: inlined into fill_phase_planes it made the row path 1.6x slower.) */
static __attribute__((noinline)) void FN(fill_flat_planes)(const gemm_params *p,
                                                         const T *x_ng, long oh0, T *planes)
{
    const long H = p->H, W = p->W, PW = p->PW, HW = H * W;
    const long n_vecs = FN(ceil_div)(p->PROWS * PW, VLEN);
    const long plane = FN(plane_stride)(p), ih0 = oh0 - p->PT;
    /* src[e]: the input element (from the channel's start) plane element e holds, or -1 */
    ITYPE src[FLAT_PLANE_VECS * VLEN];
    for (long e = 0; e < n_vecs * VLEN; e++) src[e] = -1;
    for (long i = 0; i < p->PROWS; i++) {
        const long ih = ih0 + i;
        if (ih < 0 || ih >= H) continue;
        for (long iw = 0; iw < W; iw++) src[i * PW + p->PL + iw] = (ITYPE)(ih * W + iw);
    }
    FN(plane_vec) rec[FLAT_PLANE_VECS];
    for (long u = 0; u < n_vecs; u++) {
        const ITYPE *s = src + u * VLEN;
        long first = -1;
        for (long l = 0; l < VLEN && first < 0; l++) first = s[l];
        /* the window [from, from + VLEN) holds every valid lane and stays inside the channel */
        const long from = first < 0 ? 0 : (first < HW - VLEN ? first : HW - VLEN);
        const FN(ivec) sv = *(const FN(uivec) *)s;
        rec[u].from = from;
        rec[u].keep = sv >= 0;
        rec[u].pick = (sv - (ITYPE)from) & rec[u].keep;
    }
    for (long u = 0; u < n_vecs; u++) {         /* one recipe in registers, every channel */
        const T *xu = x_ng + rec[u].from;
        const FN(ivec) pick = rec[u].pick, keep = rec[u].keep;
        /* the loads hop from channel to channel, which the hardware prefetcher does not
         * follow: fetch recipe u+4's lines ahead (AlexNet -0.7 %, dense 3x3 -0.3 %) */
        const T *ahead = x_ng + rec[u + 4 < n_vecs ? u + 4 : u].from;
        for (long c = 0; c < p->CG; c++) {
            __builtin_prefetch(ahead + c * HW, 0, 3);
            const VEC v = __builtin_shuffle(LOADU(xu + c * HW), pick);
            STOREU(planes + c * plane + u * VLEN, (VEC)((FN(ivec))v & keep));
        }
    }
}

/* The rows of a phase-plane block that hold input (fill_phase_planes, fill_strided_rows):
 * plane rows [i0, i1) of channel c's row phase a read input rows ih0 + SH*i in [0, H);
 * from i_exact on a row's vector loads could read past the group's input (its last
 * channel's last rows) and go element by element (col_load_exact). */
typedef struct { long ih0, i0, i1, i_exact; } FN(phase_rows);

static FN(phase_rows) FN(phase_rows_of)(const gemm_params *p, long c, long a, long oh0)
{
    const long H = p->H, W = p->W, SH = p->SH, PR = p->PROWS;
    const long reach = W > VLEN ? W : VLEN;                     /* a row's loads read < reach */
    FN(phase_rows) r;
    r.ih0 = SH * oh0 + a - p->PT;
    r.i0 = r.ih0 >= 0 ? 0 : FN(ceil_div)(-r.ih0, SH);
    r.i1 = r.ih0 < H ? FN(ceil_div)(H - r.ih0, SH) : 0;
    if (r.i1 > PR) r.i1 = PR;
    if (r.i0 > r.i1) r.i0 = r.i1;
    r.i_exact = r.i1;
    while (r.i_exact > r.i0 && (c * H + r.ih0 + SH * (r.i_exact - 1)) * W + reach > p->CG * H * W)
        r.i_exact--;
    return r;
}

/* Recipes (col_vec) of a padded row's first n vectors, computed once per fill when they fit
 * (short rows: per channel and row they were most of the fill on small planes); recipe()
 * takes them from there or computes one. */
#define PHASE_SHUFFLE_RECIPES 64
static int FN(cache_recipes)(FN(col_vec) *cvs, long n, long PL, long W)
{
    if (n > PHASE_SHUFFLE_RECIPES) return 0;
    for (long u = 0; u < n; u++) cvs[u] = FN(plan_col_vec)(u, PL, W);
    return 1;
}
static inline __attribute__((always_inline)) FN(col_vec)
FN(recipe)(int cached, const FN(col_vec) *cvs, long u, long PL, long W)
{
    return cached ? cvs[u] : FN(plan_col_vec)(u, PL, W);
}

/* Strides 3..PHASE_SHUFFLE_MAX_SW: a plane row's vector k of phase b holds padded columns
 * SW*(k*VLEN + l) + b, l < VLEN, which lie in the row's padded vectors SW*k .. SW*k + SW-1.
 * Those SW vectors are loaded once (col_load) and each phase's vector is picked out of them
 * by a chain of SW - 1 two-vector shuffles. Row by row (the input streams in order), a
 * row's vectors the last first: its last vector spills into the next row's first one,
 * which that row writes after. Measured:
 * stride 3 with 4 channels per group, 199x112 plane: the fill was 70 % of the call, row by
 * row through a buffer with a scalar scatter. */
#define PHASE_SHUFFLE_MAX_SW 6
static __attribute__((noinline)) void FN(fill_strided_rows)(const gemm_params *p,
                                                          const T *x_ng, long oh0, T *planes)
{
    const long H = p->H, W = p->W, PW = p->PW, PR = p->PROWS, SH = p->SH, SW = p->SW;
    const long PL = p->PL, plane = FN(plane_stride)(p);
    const long row_vecs = FN(ceil_div)(PW, VLEN);
    long used_b = 0;                            /* bit b: column phase b is read */
    for (long b = 0; b < SW; b++) used_b |= (long)FN(phase_read)(b, p->KW, p->DW, SW) << b;
    /* mask[b][m]: step m of phase b's chain (m = 1: from vectors 0 and 1; m >= 2: the chain
     * so far and vector m); lanes not taken from the step's second input keep their own */
    FN(ivec) mask[PHASE_SHUFFLE_MAX_SW][PHASE_SHUFFLE_MAX_SW];
    for (long b = 0; b < SW; b++)
        for (long m = 1; m < SW; m++)
            for (int l = 0; l < VLEN; l++) {
                const long src = SW * l + b, vec = src / VLEN, lane = src % VLEN;
                mask[b][m][l] = (FN(ielem))(vec == m ? VLEN + lane
                                            : m == 1 && vec == 0 ? lane : l);
            }
    /* (the recipes once per call: per row they were half the fill of a 13x13 stride-3
     * layer) */
    FN(col_vec) cvs[PHASE_SHUFFLE_RECIPES];
    const int cached = FN(cache_recipes)(cvs, row_vecs * SW, PL, W);
    for (long c = 0; c < p->CG; c++) {
        const T *xc = x_ng + c * H * W;
        for (long a = 0; a < SH; a++) {
            if (!FN(phase_read)(a, p->KH, p->DH, SH)) continue;    /* no tap reads it */
            T *pa = planes + (c * SH + a) * SW * plane;     /* planes (c, a, 0..SW-1) */
            const FN(phase_rows) rows = FN(phase_rows_of)(p, c, a, oh0);
            for (long i = 0; i < PR; i++) {
                const int zero = i < rows.i0 || i >= rows.i1;
                const T *xrow = xc + (rows.ih0 + SH * i) * W;
                for (long k = row_vecs - 1; k >= 0; k--) {
                    T *d = pa + k * VLEN + i * PW;
                    if (zero) {
                        for (long b = 0; b < SW; b++)
                            if (used_b >> b & 1) STOREU(d + b * plane, (VEC){0});
                        continue;
                    }
                    VEC v[PHASE_SHUFFLE_MAX_SW];
                    for (long m = 0; m < SW; m++) {
                        const long u = SW * k + m;
                        v[m] = i >= rows.i_exact ? FN(col_load_exact)(xrow, u, PL, W)
                               : FN(col_load)(xrow, FN(recipe)(cached, cvs, u, PL, W));
                    }
                    for (long b = 0; b < SW; b++) {
                        if (!(used_b >> b & 1)) continue;
                        VEC acc = __builtin_shuffle(v[0], v[1], mask[b][1]);
                        for (long m = 2; m < SW; m++)
                            acc = __builtin_shuffle(acc, v[m], mask[b][m]);
                        STOREU(d + b * plane, acc);
                    }
                }
            }
        }
    }
}

/* Copy the input rows that output rows [oh0, oh0 + PROWS - halo) need, zero-padded, into
 * the phase planes planes[c][a][b][i][j] = xpad[c][SH*(oh0 + i) + a][SW*j + b]
 * (xpad = the input with PT rows / PL columns of zeros before it). Plane rows are written
 * in whole vectors built in registers (col_load), never reloading freshly stored data
 * (partly overlapping reloads stall store forwarding). The work goes in column-vector
 * passes, the last vector first, each a straight loop over the rows with one recipe
 * (col_vec): only a row's last vector spills past it, into the next row's first vector,
 * which the final pass writes, or into the plane's slack. SW == 2 de-interleaves in
 * registers, and so do strides up to PHASE_SHUFFLE_MAX_SW on AVX2 / AVX-512
 * (fill_strided_rows); larger ones go row by row through `rowbuf` (SW*PW + 2*VLEN
 * elements). */
static void FN(fill_phase_planes)(const gemm_params *p, const T *x_ng, long oh0, T *planes,
                                  T *rowbuf)
{
    if (p->flat_planes) {               /* the planner chose the flat fill (flat_planes) */
        FN(fill_flat_planes)(p, x_ng, oh0, planes);
        return;
    }
    if (p->SW > 2 && p->SW <= PHASE_SHUFFLE_MAX_SW && VBYTES >= 32) {
        FN(fill_strided_rows)(p, x_ng, oh0, planes);
        return;
    }
    const long H = p->H, W = p->W, PW = p->PW, PR = p->PROWS, SH = p->SH, SW = p->SW;
    const long PL = p->PL, plane = FN(plane_stride)(p);
    const long row_vecs = FN(ceil_div)(PW, VLEN);               /* vectors per plane row */
    const long in_vecs = FN(ceil_div)(SW * PW, VLEN);           /* per padded input row */
    const FN(ivec) pick_even = FN(iota)() * 2, pick_odd = pick_even + 1;
    /* the row vectors' recipes once per call when they are few (SW <= 2): per channel they
     * were most of the fill on small planes, where a task fills hundreds of channels' few
     * short rows (1x480x7x9 1x1 stride 2) */
    FN(col_vec) cvs[PHASE_SHUFFLE_RECIPES];
    const int cached = SW <= 2 && FN(cache_recipes)(cvs, SW * row_vecs, PL, W);
    for (long c = 0; c < p->CG; c++) {
        const T *xc = x_ng + c * H * W;
        for (long a = 0; a < SH; a++) {
            if (!FN(phase_read)(a, p->KH, p->DH, SH)) continue;    /* no tap reads it */
            T *pa = planes + (c * SH + a) * SW * plane;     /* planes (c, a, 0..SW-1) */
            /* rows [i0, i1) hold input; the rest are zero (phase_rows_of) */
            const FN(phase_rows) rows = FN(phase_rows_of)(p, c, a, oh0);
            const long ih0 = rows.ih0, i0 = rows.i0, i1 = rows.i1, i_exact = rows.i_exact;
            if (SW > 2) {
                for (long i = 0; i < PR; i++) {
                    const T *xrow = xc + (ih0 + SH * i) * W;
                    for (long u = 0; u < in_vecs; u++)
                        STOREU(rowbuf + u * VLEN, i < i0 || i >= i1 ? (VEC){0}
                               : i >= i_exact ? FN(col_load_exact)(xrow, u, PL, W)
                               : FN(col_load)(xrow, FN(plan_col_vec)(u, PL, W)));
                    for (long b = 0; b < SW; b++)
                        if (FN(phase_read)(b, p->KW, p->DW, SW))
                            for (long j = 0; j < PW; j++)
                                pa[b * plane + i * PW + j] = rowbuf[SW * j + b];
                }
                continue;
            }
            for (long v = row_vecs - 1; v >= 0; v--) {
                T *d = pa + v * VLEN;
                for (long i = 0; i < i0; i++)
                    for (long b = 0; b < SW; b++) STOREU(d + b * plane + i * PW, (VEC){0});
                if (SW == 1) {
                    const FN(col_vec) cv = FN(recipe)(cached, cvs, v, PL, W);
                    for (long i = i0; i < i_exact; i++)
                        STOREU(d + i * PW, FN(col_load)(xc + (ih0 + SH * i) * W, cv));
                    for (long i = i_exact; i < i1; i++)
                        STOREU(d + i * PW, FN(col_load_exact)(xc + (ih0 + SH * i) * W, v, PL, W));
                } else {
                    const FN(col_vec) lo = FN(recipe)(cached, cvs, 2 * v, PL, W);
                    const FN(col_vec) hi = FN(recipe)(cached, cvs, 2 * v + 1, PL, W);
                    for (long i = i0; i < i1; i++) {
                        const T *xrow = xc + (ih0 + SH * i) * W;
                        VEC x0, x1;
                        if (i < i_exact) {
                            x0 = FN(col_load)(xrow, lo);
                            x1 = FN(col_load)(xrow, hi);
                        } else {
                            x0 = FN(col_load_exact)(xrow, 2 * v, PL, W);
                            x1 = FN(col_load_exact)(xrow, 2 * v + 1, PL, W);
                        }
                        STOREU(d + i * PW, __builtin_shuffle(x0, x1, pick_even));
                        STOREU(d + plane + i * PW, __builtin_shuffle(x0, x1, pick_odd));
                    }
                }
                for (long i = i1; i < PR; i++)
                    for (long b = 0; b < SW; b++) STOREU(d + b * plane + i * PW, (VEC){0});
            }
        }
    }
}

/* Zero the slack after each of n_planes planes and `tail` elements after the last: the
 * micro-kernels read there (into lanes they discard); zeros keep that read harmless. */
static void FN(zero_slack)(T *planes, long n_planes, long stride, long used, long tail)
{
    for (long q = 0; q < n_planes; q++)
        for (long t = used; t < stride; t++) planes[q * stride + t] = 0;
    for (long t = 0; t < tail; t++) planes[n_planes * stride + t] = 0;
}

/* off[k] = where B row k = tap (c, kh, kw) starts in the phase planes (see gemm_plan), k in
 * the weights' order, or in cv_tap order for channel-vector tiles. The KH*KW offsets inside
 * one channel's planes are computed once (into off[K..2K), free scratch); channels only add
 * a stride (runs once per task: K divisions by the runtime strides cost ~1 % on dense
 * layers). */
static void FN(tap_offsets)(const gemm_params *p, long *off)
{
    const long SH = p->SH, SW = p->SW, PSTR = FN(plane_stride)(p), KH = p->KH, KW = p->KW;
    long *base = off + p->K;
    for (long kh = 0; kh < KH; kh++)
        for (long kw = 0; kw < KW; kw++) {
            const long a = (kh * p->DH) % SH, b = (kw * p->DW) % SW;
            base[kh * KW + kw] = (a * SW + b) * PSTR + (kh * p->DH / SH) * p->PW + kw * p->DW / SW;
        }
    const long cstep = SH * SW * PSTR;
    for (long c = 0; c < p->CG; c++)
        for (long kh = 0; kh < KH; kh++)
            for (long kw = 0; kw < KW; kw++) {
                const long k = p->channel_vectors ? FN(cv_tap)(p, c, kh, kw) : (c * KH + kh) * KW + kw;
                off[k] = base[kh * KW + kw] + c * cstep;
            }
}
