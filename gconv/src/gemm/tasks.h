/* gemm/tasks.h: the GEMM kind's tasks: pointwise (B read in place), phase planes with
 * pixel-vector tiles, phase planes with channel-vector tiles, and gemm_task, the entry that
 * picks one. Per variant; expects the rest of gemm/ and common/. */

/* d[0, n) = s[0, n), d[n, len) = 0; len a multiple of VLEN. Whole vectors; the vector
 * holding the end of s by a masked load where the ISA has one (else element-wise), so
 * nothing past s[n) is read. (An element-wise loop here was most of a tiny call's time.) */
static inline void FN(copy_zero_padded)(T *restrict d, const T *restrict s, long n, long len)
{
    long t = 0;
    for (; t + VLEN <= n; t += VLEN) {
        VEC v = LOADU(s + t);
        __asm__("" : "+v"(v));     /* keeps GCC from making the loop a memmove call */
        STOREU(d + t, v);
    }
    if (t < n) {
#if HAVE_MASKED_STORES
        STOREU(d + t, MASK_LOAD((VEC){0}, (FN(mask))((1u << (n - t)) - 1), s + t));
#else
        for (long i = 0; i < VLEN; i++) d[t + i] = t + i < n ? s[t + i] : (T)0;
#endif
        t += VLEN;
    }
    for (; t < len; t += VLEN) STOREU(d + t, (VEC){0});
}

/* One task of the pointwise (direct_b) kind: image n, group g, an MB block of output
 * channels, an NC tile of pixels; B read in place from the input (x_left: elements of x
 * from x_ng to its end). */
static void FN(pointwise_task)(const gemm_params *p, const T *x_ng, long x_left,
                               const T *w_g, const T *b_g, const T *r_ng, T *y_ng,
                               long m_begin, long m_end, long pt, T *scratch)
{
    const int MR = p->MR, NV = p->NV;
    const long NR = (long)NV * VLEN, K = p->K, P = p->P;
    /* the ragged last chunk of pixels (if any) runs on the narrowest tile that covers it */
    const FN(ukr_fn) ukr = (FN(ukr_fn))p->ukr, tail_ukr = (FN(ukr_fn))p->tail_ukr;
    const int tail_nv = p->tail_nv;
    long *off = (long *)scratch;              /* off[k] = k*P: rows of the input */
    long *toff = off + K;                     /* toff[k] = k*NR: rows of the tail sliver */
    T *tail = scratch + OFFSET_ELEMS(K);
    for (long k = 0; k < K; k++) { off[k] = k * P; toff[k] = k * NR; }
    const long p0 = pt * p->NC;
    const long nc = (P - p0 < p->NC) ? P - p0 : p->NC;

    for (long k0 = 0; k0 < K; k0 += p->KC) {
        const long kc = (K - k0 < p->KC) ? K - k0 : p->KC;
        const int first = (k0 == 0), last = (k0 + kc == K);
        for (long j = 0; j < nc; j += NR) {
            const long n_cols = (nc - j < NR) ? nc - j : NR;
            const T *B;
            const long *bo;
            FN(ukr_fn) f = ukr;
            if (n_cols == NR) {
                B = x_ng + p0 + j; bo = off + k0;
            } else {
                /* The ragged tail: its tile reads tail_nv vectors per row, past the row's
                 * n_cols pixels into the next channel's (lanes whose results are never
                 * stored). In place while that stays inside x; only the last chunk of
                 * the array's last channels is copied, so nothing past x is ever read. */
                f = tail_ukr;
                if ((k0 + kc - 1) * P + p0 + j + (long)tail_nv * VLEN <= x_left) {
                    B = x_ng + p0 + j; bo = off + k0;
                } else {
                    for (long kk = 0; kk < kc; kk++)
                        FN(copy_zero_padded)(tail + kk * NR, x_ng + (k0 + kk) * P + p0 + j,
                                             n_cols, NR);
                    B = tail; bo = toff;
                }
            }
            for (long m0 = m_begin; m0 < m_end; m0 += MR) {
                const int m = (int)((m_end - m0 < MR) ? m_end - m0 : MR);
                T *C = y_ng + m0 * P + p0 + j;
                f(kc, w_g + (m0 / MR) * K * MR + k0 * MR, B, bo, C, P, m, (int)n_cols,
                  first && b_g ? b_g + m0 : NULL, !first, NULL);
                if (last)
                    FN(epilogue_block)(GCONV_PB(p), C, P, r_ng ? r_ng + m0 * P + p0 + j : NULL, m, n_cols);
            }
        }
    }
}

/* One task of the phase-plane kind (see gemm_plan): image n, group g, an MB block of
 * output channels, output rows [oh0, oh0 + NC). */
static void FN(phase_task)(const gemm_params *p, const T *x_ng, const T *w_g,
                           const T *b_g, const T *r_ng, T *y_ng, long m_begin, long m_end,
                           long rt, T *scratch, FN(prefetcher) *pf)
{
    const int MR = p->MR, NV = p->NV;
    const long NR = (long)NV * VLEN, K = p->K, PW = p->PW, PR = p->PROWS, OW = p->OW;
    const long SH = p->SH, SW = p->SW;
    const FN(ukr_fn) ukr = FN(find_ukr)(MR, NV);
    const long oh0 = rt * p->NC;
    const long rb = (p->OH - oh0 < p->NC) ? p->OH - oh0 : p->NC;
    const long qn = (rb - 1) * PW + OW;             /* wide pixels holding valid outputs */
    const long QPAD = p->QPAD;
    const int tail_v = FN(tail_nv)(MR, (int)FN(ceil_div)(qn % NR, VLEN));
    const long tail_nr = (long)tail_v * VLEN;
    const FN(ukr_fn) tail_ukr = FN(find_ukr)(MR, tail_v);

    long *off = (long *)scratch;
    T *planes = scratch + OFFSET_ELEMS(K);
    const long PSTR = FN(plane_stride)(p), plane_elems = p->CG * SH * SW * PSTR;
    T *stage = planes + plane_elems + NR + 64;      /* unused with direct_out */
    const int direct = p->direct_out;

    FN(tap_offsets)(p, off);
    FN(fill_phase_planes)(p, x_ng, oh0, planes, stage + (direct ? 0 : p->MB * QPAD));
    FN(zero_slack)(planes, plane_elems / PSTR, PSTR, PR * PW, NR + 64);

    FN(wide_map) wm = {0, PW, OW, rb};
    for (long k0 = 0; k0 < K; k0 += p->KC) {
        const long kc = (K - k0 < p->KC) ? K - k0 : p->KC;
        for (long j = 0; j < qn; j += NR) {
            const FN(ukr_fn) f = (qn - j >= NR) ? ukr : tail_ukr;
            const int ncols = (int)((qn - j >= NR) ? NR : tail_nr);
            wm.q0 = j;
            for (long m0 = m_begin; m0 < m_end; m0 += MR) {
                const int m = (int)((m_end - m0 < MR) ? m_end - m0 : MR);
                FN(pf_step)(pf);
                T *C = direct ? y_ng + (m0 * p->OH + oh0) * OW : stage + (m0 - m_begin) * QPAD + j;
                f(kc, w_g + (m0 / MR) * K * MR + k0 * MR, planes + j, off + k0, C,
                  direct ? p->P : QPAD, m, ncols, (k0 == 0 && b_g) ? b_g + m0 : NULL, k0 > 0,
                  direct ? &wm : NULL);
            }
        }
    }
    /* wide rows -> output rows (unless written directly), then the epilogue while they are
     * in L1. Output rows [oh0, oh0 + rb) of a channel are one run of y, copied in whole
     * vectors: a row's last vector may run into the following rows, copied right after,
     * but never past the run (beyond it is another task's output). */
    const int epi = (r_ng != NULL || p->act != GCONV_ACT_NONE);
    for (long m0 = m_begin; m0 < m_end; m0++) {
        const T *src = stage + (m0 - m_begin) * QPAD;
        T *dst = y_ng + (m0 * p->OH + oh0) * OW;
        if (!direct)
            for (long r = 0; r < rb; r++) {
                const long room = (rb - r) * OW;
                long q = 0;
                for (; q < OW && q + VLEN <= room; q += VLEN)
                    STOREU(dst + r * OW + q, LOADU(src + r * PW + q));
                for (; q < OW; q++) dst[r * OW + q] = src[r * PW + q];
            }
        if (epi)
            FN(epilogue_block)(GCONV_PB(p), dst, rb * OW, r_ng ? r_ng + (m0 * p->OH + oh0) * OW : NULL, 1, rb * OW);
    }
}

/* Kernel rows [*kh0, *kh1) of output row oh read input rows; the others read the zero
 * padding above or below the input (an empty range when all do). */
static void FN(rows_inside)(const gemm_params *p, long oh, long *kh0, long *kh1)
{
    const long top = p->PT - oh * p->SH;            /* padding rows above the first tap */
    const long below = p->H - 1 + top;              /* last input row, from the first tap */
    long lo = top > 0 ? FN(ceil_div)(top, p->DH) : 0;
    long hi = below < 0 ? 0 : below / p->DH + 1;
    if (hi > p->KH) hi = p->KH;
    if (lo > hi) lo = hi;
    *kh0 = lo; *kh1 = hi;
}

/* The channel-vector variant of phase_task: same phase planes and tap offsets; tiles of MR
 * pixels along one output row x NR output channels, written pixel-major into a stage that
 * holds the whole task (rb*OW pixels). Output rows [oh0, oh0 + rb) of a channel are one
 * contiguous run of y, so the stage goes to NCHW in VLEN x VLEN register transposes. */
static void FN(phase_task_cv)(const gemm_params *p, const T *x_ng, const T *w_g,
                              const T *b_g, const T *r_ng, T *y_ng, long m_begin, long m_end,
                              long rt, T *scratch, FN(prefetcher) *pf)
{
    const int MP = p->MR, NV = p->NV;
    const long NR = (long)NV * VLEN, K = p->K, PW = p->PW, PR = p->PROWS, OW = p->OW, P = p->P;
    const long SH = p->SH, SW = p->SW;
    const FN(ukrc_fn) ukrc = FN(find_ukrc)(MP, NV);
    const long oh0 = rt * p->NC;
    const long rb = (p->OH - oh0 < p->NC) ? p->OH - oh0 : p->NC;
    const long Q = rb * OW;                         /* output pixels of this task */

    long *off = (long *)scratch;
    T *planes = scratch + OFFSET_ELEMS(K);
    const long PSTR = FN(plane_stride)(p), plane_elems = p->CG * SH * SW * PSTR;
    T *stage = planes + plane_elems + MP + 64;      /* pixel-major: stage[q*NR + channel] */
    const long stage_px = FN(ceil_div)(Q, VLEN) * VLEN + MP;
    T *bias_pad = stage + stage_px * NR;            /* NR bias values, zero-padded */
    T *block = bias_pad + NR;                       /* VLEN x VLEN, ragged transposes */

    FN(tap_offsets)(p, off);
    FN(fill_phase_planes)(p, x_ng, oh0, planes, block + VLEN * VLEN);
    FN(zero_slack)(planes, plane_elems / PSTR, PSTR, PR * PW, MP + 64);

    const int epi = (r_ng != NULL || p->act != GCONV_ACT_NONE);
    for (long oc0 = m_begin; oc0 < m_end; oc0 += NR) {
        const long n_oc = (m_end - oc0 < NR) ? m_end - oc0 : NR;
        const T *A = w_g + (oc0 / NR) * K * NR;
        if (b_g)
            for (long c = 0; c < NR; c++) bias_pad[c] = c < n_oc ? b_g[oc0 + c] : (T)0;
        /* a ragged last tile of a row spills into the next row's pixels, computed later.
         * Kernel rows that read only zero padding rows are left out: in cv_tap order they
         * are the ends of k (7x7 images: 10 % of the products, AlexNet's 27x27: 4 %) */
        for (long r = 0; r < rb; r++) {
            long kh0, kh1;
            FN(rows_inside)(p, oh0 + r, &kh0, &kh1);
            const long k0 = kh0 * p->CG * p->KW, kn = (kh1 - kh0) * p->CG * p->KW;
            for (long ow0 = 0; ow0 < OW; ow0 += MP) {
                FN(pf_step)(pf);
                ukrc(kn, A + k0 * NR, planes + r * PW + ow0, off + k0,
                     stage + (r * OW + ow0) * NR, b_g ? bias_pad : NULL);
            }
        }
        /* pixel-major -> NCHW: channel c's outputs are y[c][oh0*OW, oh0*OW + Q) */
        for (long c0 = 0; c0 < n_oc; c0 += VLEN) {
            const long n_ch = (n_oc - c0 < VLEN) ? n_oc - c0 : VLEN;
            T *y_c = y_ng + (oc0 + c0) * P + oh0 * OW;
            for (long q0 = 0; q0 < Q; q0 += VLEN) {
                const long n_px = (Q - q0 < VLEN) ? Q - q0 : VLEN;
                if (n_ch == VLEN && n_px == VLEN) {
                    FN(transpose_block)(stage + q0 * NR + c0, NR, y_c + q0, P);
                } else {     /* stores must stay inside this task's rows and channels */
                    FN(transpose_block)(stage + q0 * NR + c0, NR, block, VLEN);
                    for (long c = 0; c < n_ch; c++)
                        for (long i = 0; i < n_px; i++) y_c[c * P + q0 + i] = block[c * VLEN + i];
                }
            }
            for (long c = 0; c < n_ch && epi; c++)
                FN(epilogue_block)(GCONV_PB(p), y_c + c * P, Q, r_ng ? r_ng + (oc0 + c0 + c) * P + oh0 * OW : NULL, 1, Q);
        }
    }
}

/* One task: image n, group g, an MB block of output channels, a pixel tile (pointwise) or
 * a block of output rows (phase planes).
 *   x: (N, C_in, H, W) contiguous          wp: packed weights (gemm_pack_weights)
 *   bias: (C_out,) or NULL                 res: like y, or NULL
 *   y: (N, C_out, OH, OW) contiguous       scratch: p->scratch_elems elements
 */
static void FN(gemm_task)(const void *params, const void *x_, const void *wp_,
                          const void *bias_, const void *res_, void *y_, long task,
                          void *scratch_)
{
    const gemm_params *p = params;
    const T *x = x_, *wp = wp_, *bias = bias_, *res = res_;
    T *y = y_, *scratch = scratch_;
    long n, g, mb, pt;
    FN(task_pos)(p, task, &n, &g, &mb, &pt);
    const T *x_ng = x + (n * p->C_in + g * p->CG) * p->H * p->W;
    T *y_ng = y + (n * p->C_out + g * p->M) * p->P;
    const T *r_ng = res ? res + (n * p->C_out + g * p->M) * p->P : NULL;
    const T *w_g = wp + g * p->n_panels * p->K * p->panel_w;
    const T *b_g = bias ? bias + g * p->M : NULL;
    const long m_begin = mb * p->MB;
    const long m_end = (m_begin + p->MB < p->M) ? m_begin + p->MB : p->M;
    if (p->direct_b) {
        FN(pointwise_task)(p, x_ng, (p->N * p->C_in - (n * p->C_in + g * p->CG)) * p->H * p->W,
                           w_g, b_g, r_ng, y_ng, m_begin, m_end, pt, scratch);
        return;
    }
    /* micro-kernel calls of this task, to spread the next task's prefetches over */
    const long oh0 = pt * p->NC, rb = (p->OH - oh0 < p->NC) ? p->OH - oh0 : p->NC;
    const long mblk = m_end - m_begin;
    FN(prefetcher) pf;
    if (p->channel_vectors) {
        FN(pf_init)(&pf, p, x, y, task,
                    FN(ceil_div)(mblk, p->panel_w) * rb * FN(ceil_div)(p->OW, p->MR));
        FN(phase_task_cv)(p, x_ng, w_g, b_g, r_ng, y_ng, m_begin, m_end, pt, scratch, &pf);
    } else {
        const long qn = (rb - 1) * p->PW + p->OW, NR = (long)p->NV * VLEN;
        FN(pf_init)(&pf, p, x, y, task,
                    FN(ceil_div)(p->K, p->KC) * FN(ceil_div)(qn, NR) * FN(ceil_div)(mblk, p->MR));
        FN(phase_task)(p, x_ng, w_g, b_g, r_ng, y_ng, m_begin, m_end, pt, scratch, &pf);
    }
}
