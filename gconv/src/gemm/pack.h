/* gemm/pack.h: packing the weights (C_out, CG, KH, KW) into the micro-kernels' panels
 * (gemm_pack_weights). Per variant; expects common/transpose.h and the plan (gemm_plan). */

/* wt (K x M, rows ldt apart) = transpose of w (M x K), whole VLEN x VLEN blocks
 * vectorised, edges scalar. */
static void FN(transpose)(const T *w, long M, long K, T *wt, long ldt)
{
    const long Mb = M / VLEN * VLEN, Kb = K / VLEN * VLEN;
    for (long m = 0; m < Mb; m += VLEN)
        for (long k = 0; k < Kb; k += VLEN) FN(transpose_block)(w + m * K + k, K, wt + k * ldt + m, ldt);
    for (long m = 0; m < M; m++) {
        const long k0 = m < Mb ? Kb : 0;   /* rows already done have only the k edge left */
        for (long k = k0; k < K; k++) wt[k * ldt + m] = w[m * K + k];
    }
}

/* Tap order of the channel-vector tiles: k = (kh * CG + c) * KW + kw, kernel rows outermost,
 * so the taps of the kernel rows that fall into an output row's zero padding rows are one
 * contiguous run of k, which phase_task_cv leaves out (pixel-vector tiles keep the weights'
 * own order, k = (c * KH + kh) * KW + kw). */
static inline long FN(cv_tap)(const gemm_params *p, long c, long kh, long kw)
{
    return (kh * p->CG + c) * p->KW + kw;
}

/* Pack W (G, M, K) into panels A~[g][panel][k][panel_w] (panel_w = MR output channels for
 * pixel-vector tiles, NV*VLEN for channel-vector tiles), zero rows beyond M. A panel is the
 * transpose of panel_w rows of the group's M x K block: whole-vector-wide panels are
 * transposed straight into place, or, for channel-vector tiles (cv_tap order), into `tmp`
 * and their rows moved in that order; narrower ones go through a transpose of the whole
 * block into `tmp` (K * max(M, panel_w) elements), their rows copied out of it. */
static void FN(gemm_pack_weights)(const void *params, const void *w_, void *wp_, void *tmp_)
{
    const gemm_params *p = params;
    const T *w = w_;
    T *wp = wp_, *tmp = tmp_;
    const long PWD = p->panel_w, K = p->K, M = p->M;
    for (long g = 0; g < p->G; g++) {
        if (PWD % VLEN == 0) {
            for (long pa = 0; pa < p->n_panels; pa++) {
                T *dst = wp + (g * p->n_panels + pa) * K * PWD;
                const long m0 = pa * PWD, cnt = (M - m0 < PWD) ? M - m0 : PWD;
                const T *wm = w + (g * M + m0) * K;
                if (p->channel_vectors) {
                    /* channel-vector tiles take the taps in cv_tap order: transpose in
                     * the weights' order into tmp, then move whole rows */
                    const long KH = p->KH, KW = p->KW;
                    FN(transpose)(wm, cnt, K, tmp, PWD);
                    T *d = dst;
                    for (long kh = 0; kh < KH; kh++)
                        for (long c = 0; c < p->CG; c++)
                            for (long kw = 0; kw < KW; kw++, d += PWD) {
                                const T *row = tmp + ((c * KH + kh) * KW + kw) * PWD;
                                for (long i = 0; i < PWD; i += VLEN) STOREU(d + i, LOADU(row + i));
                            }
                } else {
                    FN(transpose)(wm, cnt, K, dst, PWD);
                }
                for (long k = 0; k < K && cnt < PWD; k++)
                    for (long i = cnt; i < PWD; i++) dst[k * PWD + i] = 0;
            }
            continue;
        }
        FN(transpose)(w + g * M * K, M, K, tmp, M);
        for (long pa = 0; pa < p->n_panels; pa++) {
            T *dst = wp + (g * p->n_panels + pa) * K * PWD;
            const long m0 = pa * PWD, cnt = (M - m0 < PWD) ? M - m0 : PWD;
            for (long k = 0; k < K; k++) {
                const T *src = tmp + k * M + m0;
                T *d = dst + k * PWD;
                for (long i = 0; i < cnt; i++) d[i] = src[i];
                for (long i = cnt; i < PWD; i++) d[i] = 0;
            }
        }
    }
}

/* Elements of the packed weights (gemm_pack_weights' wp: G groups of n_panels K x panel_w
 * panels) and, in *tmp_elems, of the buffer it needs (a K x M transpose, or one K x panel_w
 * panel: channel-vector panels may be wider than M). */
static long FN(gemm_weight_elems)(const void *params, long *tmp_elems)
{
    const gemm_params *p = params;
    *tmp_elems = p->K * (p->M > p->panel_w ? p->M : p->panel_w) + 64;
    return p->G * p->n_panels * p->K * p->panel_w;
}
