/* gemm/microkernel_test.h: test-only: the GEMM kind's micro-kernels for this variant, one
 * at a time, on a call frame (common/microkernel_test.h), or their twins (gemm/twins.h).
 * Per variant; expects gemm/microkernels.h. Its list is the kernel tables themselves, so
 * a tile added to GEMM_UKR_LIST or GEMM_UKRC_LIST is tested from then on.
 *
 *   gemm.ukr  (ukr_MRxNV)   shape {MR, NV, VLEN, masked stores}
 *     w = A (K x MR), x = B, offs = boff (K), bias = MR values or NULL, out = C;
 *     n = {K, ldc, m, n, accumulate, wide, q0, PW, OW, rows} (wide: AVX-512 only)
 *   gemm.ukrc (ukrc_MPxNV)  shape {MP, NV, VLEN, 0}
 *     w = A (K x NR), x = B, offs = boff (K), bias = NR values or NULL, out = stage
 *     (MP x NR); n = {K}
 */

static int FN(gemm_ukr_list)(int index, gconv_ukr_info *info)
{
    int mr, nv;
    if (index < N_UKR) {
        info->family = "gemm.ukr";
        mr = FN(ukr_table)[index].mr, nv = FN(ukr_table)[index].nv;
    } else if (index < N_UKR + N_UKRC) {
        info->family = "gemm.ukrc";
        mr = FN(ukrc_table)[index - N_UKR].mp, nv = FN(ukrc_table)[index - N_UKR].nv;
    } else {
        return 0;
    }
    snprintf(info->name, sizeof(info->name), "%dx%d", mr, nv);
    info->shape[0] = mr;
    info->shape[1] = nv;
    info->shape[2] = VLEN;
    info->shape[3] = index < N_UKR && HAVE_MASKED_STORES;
    return 1;
}

static int FN(gemm_ukr_run)(int index, int twin, const gconv_ukr_call *c)
{
    const long *n = c->n;
    const T *A = c->w, *B = c->x, *bias = c->bias;
    if (index < N_UKR) {
        const FN(ukr_entry) *e = &FN(ukr_table)[index];
        const int NR = e->nv * VLEN, wide = n[5] != 0;
        if (n[0] < 0 || n[2] < 1 || n[2] > e->mr || n[3] < 1 || n[3] > NR ||
            (wide && (!HAVE_MASKED_STORES || n[7] < n[8] || n[8] < VLEN || n[9] < 1)))
            return -1;
        const FN(wide_map) wm = {n[6], n[7], n[8], n[9]};
        if (twin)
            FNT(gemm_ukr_twin)(GCONV_FUSED, e->mr, NR, n[0], A, B, c->offs, c->out, n[1],
                               (int)n[2], (int)n[3], bias, (int)n[4], wide ? n + 6 : NULL);
        else
            e->fn(n[0], A, B, c->offs, c->out, n[1], (int)n[2], (int)n[3], bias, (int)n[4],
                  wide ? &wm : NULL);
        return 0;
    }
    if (index < N_UKR + N_UKRC) {
        const FN(ukrc_entry) *e = &FN(ukrc_table)[index - N_UKR];
        if (n[0] < 0) return -1;
        if (twin)
            FNT(gemm_ukrc_twin)(GCONV_FUSED, e->mp, e->nv * VLEN, n[0], A, B, c->offs, c->out,
                                bias);
        else
            e->fn(n[0], A, B, c->offs, c->out, bias);
        return 0;
    }
    return -1;
}
