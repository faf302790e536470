/* dwconv/tasks.h: the depthwise task (dw_task): copies of input rows or planes into
 * scratch, then the row, plane or lanes kernels. Per variant; expects the rest of
 * dwconv/. */

/* --- copies into scratch -------------------------------------------------------------- */

/* d[0..n) = s[0..n) for n >= VLEN: whole vectors, the last one ending at n. */
DW_INLINE void FN(dw_copy_long)(T *restrict d, const T *restrict s, long n)
{
    long q = 0;
    for (; q + VLEN <= n; q += VLEN) {
        VEC v = LOADU(s + q);
        DW_IN_REG(v);              /* keeps GCC from turning the loop into a memmove call */
        STOREU(d + q, v);
    }
    if (q < n) STOREU(d + n - VLEN, LOADU(s + n - VLEN));
}

/* Row mode, nph > 1 phases (dw_fill_rows does plain rows): input row xr (NULL: a zero
 * row) into scratch row dst (nph phases of wq; phase ph, position q holds padded column
 * q*nph + ph = input column q*nph + ph - PL).
 * Only the positions that hold input values are written: the padding around them is
 * zero from the start (zero_scratch) and never written. Every task lays its rows out the
 * same way, so this holds across the tasks sharing a thread's scratch. */
static void FN(dw_fill_row)(const dw_params *p, const T *restrict xr, T *restrict dst,
                            long nph, long wq)
{
    const long PL = p->PL, W = p->W;
    for (long ph = 0; ph < nph; ph++) {
        /* valid q: 0 <= q*nph + ph - PL < W */
        long q_lo = PL - ph > 0 ? (PL - ph + nph - 1) / nph : 0;
        long q_hi = (W + PL - ph + nph - 1) / nph;
        if (q_hi > wq) q_hi = wq;
        if (q_lo > q_hi) q_lo = q_hi;
        const long n = q_hi - q_lo;
        T *d = dst + ph * wq + q_lo;
        const T *s = xr + q_lo * nph + ph - PL;      /* input of d[0] */
        if (xr == NULL) for (long q = 0; q < n; q++) d[q] = 0;
        else for (long q = 0; q < n; q++) d[q] = s[q * nph];
    }
}

/* Plain padded rows (nph == 1): input rows ih0 .. ih0+nin-1 of channel xc (zeros outside
 * the input) into scratch rows dst, pitch apart; only the input's columns are written (see
 * dw_fill_row). One loop for all rows: short rows (28 wide: two vector copies) made the
 * per-row call and set-up a fifth of some layers' time. */
static void FN(dw_fill_rows)(const dw_params *p, const T *restrict xc, long ih0, long nin,
                             T *restrict dst, long pitch, long wq)
{
    const long PL = p->PL, W = p->W, H = p->H;
    const long q_lo = PL < wq ? PL : wq, q_hi = W + PL < wq ? W + PL : wq;
    const long n = q_hi - q_lo;
    dst += q_lo;
    for (long k = 0; k < nin; k++, dst += pitch) {
        const long ih = ih0 + k;
        if (ih < 0 || ih >= H) {
            for (long q = 0; q < n; q++) dst[q] = 0;
            continue;
        }
        const T *src = xc + ih * W;
        if (n < VLEN) {
            for (long q = 0; q < n; q++) dst[q] = src[q];
            continue;
        }
        /* dw_copy_long's loop, written out here: calling it measured 4-6 % slower on
         * effb0_dw5 and deeplab_dw_dil2 (A/B in the C harness, reproduced), for reasons of
         * code generation we did not pin down */
        long q = 0;
        for (; q + VLEN <= n; q += VLEN) {
            VEC v = LOADU(src + q);
            DW_IN_REG(v);          /* keeps GCC from turning the loop into a memmove call */
            STOREU(dst + q, v);
        }
        if (q < n) STOREU(dst + n - VLEN, LOADU(src + n - VLEN));
    }
}
/* --- task ----------------------------------------------------------------------------- */

static void FN(dw_task)(const void *params, const void *x_, const void *w_, const void *bias_,
                        const void *res_, void *y_, long task, void *scratch_)
{
    const dw_params *p = params;
    const T *x = x_, *w = w_, *bias = bias_, *res = res_;
    T *y = y_, *scratch = scratch_;
    const long per_n = p->n_group_blocks * p->n_row_blocks;
    const long n = task / per_n, rest = task % per_n;
    const long gb = rest / p->n_row_blocks, rt = rest % p->n_row_blocks;
    const long g0 = gb * p->groups_per_task, g1 = g0 + p->groups_per_task < p->G ? g0 + p->groups_per_task : p->G;
    const long oh0 = rt * p->rows_per_task, oh1 = oh0 + p->rows_per_task < p->OH ? oh0 + p->rows_per_task : p->OH;
    const long H = p->H, W = p->W, OW = p->OW, M = p->M, KK = p->KH * p->KW, SB = p->sub_rows;
    const long plane = p->OH * OW;

    if (p->mode == DW_MODE_LANES) {
        FN(dw_lanes_task)(p, x, w, bias, res, y, n, g0, g1, scratch);
        return;
    }
    if (p->mode == DW_MODE_LANES_ANY) {
        FN(dw_any_task)(p, x, w, bias, res, y, n, g0, g1, oh0, oh1, scratch);
        return;
    }
    if (p->mode == DW_MODE_ROW) {
        const FN(dw_rows_fn) *fns = FN(dw_kernels)[p->kernel_id];
        const long nph = FN(dw_nph)(p), wq = FN(dw_wq)(p), pitch = nph * wq;
        /* the generic kernel's tap tables, at the end of the scratch (dw_plan sized it) */
        long *coff = NULL;
        short *khmap = NULL;
        if (!p->unrolled) {
            coff = (long *)(scratch + p->scratch_elems - FN(dw_generic_table_elems)(p));
            khmap = (short *)(coff + p->KW);
            FN(dw_generic_taps)(p, wq, coff, khmap);
        }
        const FN(dw_args) a = {p, pitch, OW, plane, coff, khmap};
        const FN(dw_args) ad = {p, W, OW, plane, NULL, NULL};
        /* rows start `lead` in, so the input's first column (padded column PL) lands on a
         * vector boundary: the copies' stores are then aligned (a store across two cache
         * lines costs two) */
        T *rows0 = scratch + (nph == 1 ? (VLEN - p->PL % VLEN) % VLEN : 0);
        /* Direct mode for the output rows whose input rows all exist: the kernels read the
         * input in place (no copy), masking the columns that fall in the left/right zero
         * padding. Their masked loads touch up to a vector before or after the row, so the
         * very first and last channel of x always go through the scratch copy. */
        long od0 = oh0, od1 = oh0;
        if (p->direct_rows) {            /* the planner asked dw_direct_ok */
            const long S = p->SH, span = (p->KH - 1) * p->DH;
            od0 = (p->PT + S - 1) / S;                     /* oh*S - PT >= 0 */
            od1 = H - 1 - span + p->PT >= 0 ? (H - 1 - span + p->PT) / S + 1 : 0;
            od0 = od0 > oh0 ? od0 : oh0;
            od1 = od1 < oh1 ? od1 : oh1;
            if (od1 < od0) od1 = od0;
        }
        for (long g = g0; g < g1; g++) {
            const T *xc = x + (n * p->C_in + g) * H * W;
            const int edge_channel = (n == 0 && g == 0) || (n == p->N - 1 && g == p->G - 1);
            const long d0 = edge_channel ? oh0 : od0, d1 = edge_channel ? oh0 : od1;
            const FN(dw_rows_fn) *dfns = FN(dw_kernels_direct)[p->kernel_id];
            for (long m0 = 0, mm; m0 < M && d1 > d0; m0 += mm) {
                mm = M - m0 >= 2 && dfns[1] ? 2 : 1;
                const long co = g * M + m0;
                const long off = (n * p->C_out + co) * plane + d0 * OW;
                dfns[mm - 1](&ad, xc + (d0 * p->SH - p->PT) * W, w + co * KK,
                             bias ? bias + co : NULL, res ? res + off : NULL, y + off, d1 - d0);
            }
            /* the other rows: [oh0, d0) and [d1, oh1), from padded copies */
            for (int part = 0; part < 2; part++) {
                /* no direct rows: all rows in part 0 */
                const long r0 = part ? (d1 > d0 ? d1 : oh1) : oh0;
                const long r1 = part ? oh1 : (d1 > d0 ? d0 : oh1);
                for (long ob = r0; ob < r1; ob += SB) {
                    const long rows = ob + SB < r1 ? SB : r1 - ob;
                    const long nin = dw_in_rows(p, rows), ih0 = ob * p->SH - p->PT;
                    if (nph == 1)
                        FN(dw_fill_rows)(p, xc, ih0, nin, rows0, pitch, wq);
                    else
                        for (long k = 0; k < nin; k++) {
                            const long ih = ih0 + k;
                            FN(dw_fill_row)(p, (ih >= 0 && ih < H) ? xc + ih * W : NULL,
                                            rows0 + k * pitch, nph, wq);
                        }
                    for (long m0 = 0, mm; m0 < M; m0 += mm) {
                        mm = M - m0 >= 2 && fns[1] ? 2 : 1;    /* no pair kernel: singly */
                        const long co = g * M + m0;
                        const long off = (n * p->C_out + co) * plane + ob * OW;
                        fns[mm - 1](&a, rows0, w + co * KK, bias ? bias + co : NULL,
                                    res ? res + off : NULL, y + off, rows);
                    }
                }
            }
        }
        return;
    }

    /* Plane mode: two buffers, each [front margin][zero rows PT][H input rows][zero rows]
     * [tail], zero but for the input rows (zero_scratch). The next channel is copied into one while the other is computed, so the
     * kernel never loads (at other offsets) what was stored just before: that would stall
     * on store-to-load forwarding. */
    const long front = FN(dw_plane_front)(p), pe = FN(dw_plane_elems)(p);
    const long f0 = oh0 * OW, f1 = oh1 * OW;
    FN(ivec) col0, col_tail;
    for (int l = 0; l < VLEN; l++) {
        col0[l] = (FN(ielem))((f0 + l) % W);
        col_tail[l] = (FN(ielem))((f1 - VLEN + l + VLEN * W) % W);
    }
    for (long g = g0; g <= g1; g++) {
        if (g < g1) {        /* copy channel g into buffer g % 2 */
            const T *xc = x + (n * p->C_in + g) * H * W;
            T *data = scratch + (g & 1) * pe + front + p->PT * W;
            if (H * W >= VLEN) FN(dw_copy_long)(data, xc, H * W);
            else for (long q = 0; q < H * W; q++) data[q] = xc[q];
        }
        if (g == g0) continue;
        const long gc = g - 1;          /* compute channel gc from buffer gc % 2 */
        const T *base = scratch + (gc & 1) * pe + front - p->PL;
        const FN(dw_plane_fn) *pfns = FN(dw_plane_kernels)[p->kernel_id];
        for (long m0 = 0, mm; m0 < M; m0 += mm) {
            mm = M - m0 >= 2 && pfns[1] ? 2 : 1;
            const long co = gc * M + m0;
            const long off = (n * p->C_out + co) * plane;
            pfns[mm - 1](p, base, w + co * KK, bias ? bias + co : NULL, res ? res + off : NULL,
                         y + off, plane, f0, f1, col0, col_tail);
        }
    }
}
