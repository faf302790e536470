/* gemm/prefetch.h: where a task sits in the plan (task_pos) and the software prefetch of the
 * next task's input rows and output block. Per variant; expects the plan (gemm_plan). */

/* Where task `task` sits: image n, group g, output-channel block mb, pixel tile / row block pt. */
static inline void FN(task_pos)(const gemm_params *p, long task, long *n, long *g, long *mb,
                                long *pt)
{
    const long per_img_g = p->n_mblocks * p->n_ptiles;
    const long ng = task / per_img_g, rest = task % per_img_g;
    *mb = rest / p->n_ptiles; *pt = rest % p->n_ptiles;
    *n = ng / p->G; *g = ng % p->G;
}

/* Software prefetch of the next task's data while this task's micro-kernels run: the input
 * rows its phase-plane fill reads and the output block it writes. On batches of large
 * images both live in L3 / DRAM and the fill and the output writes wait on every line (30 %
 * and 20 % of b8_resnext_g32_56); spread over the micro-kernel calls, the prefetches hide
 * behind FMA work (gemm_plan turns them on only for such calls). The next task of this
 * thread is guessed as task + pf_stride (the next task of its chunk, see gemm_plan); a
 * wrong guess costs only bandwidth, never results. Two streams of runs: [0] input rows
 * (read), [1] output rows (write). */
typedef struct {
    const char *base[2];
    long run[2], stride[2], n_runs[2];    /* bytes per run, bytes between runs, runs */
    int s;                                /* current stream; 2 = done */
    long r;                               /* current run */
    const char *cur, *end;                /* the current run's next line and its end */
    long per_call;                        /* lines per pf_step */
} FN(prefetcher);

static void FN(pf_open_run)(FN(prefetcher) *pf)
{
    while (pf->s < 2 && pf->r >= pf->n_runs[pf->s]) { pf->s++; pf->r = 0; }
    if (pf->s == 2) return;
    const char *a = pf->base[pf->s] + pf->r * pf->stride[pf->s];
    pf->cur = (const char *)((unsigned long)a & ~63UL);
    pf->end = a + pf->run[pf->s];
}

/* Set up the prefetches of the task after `task` over `n_calls` micro-kernel calls. */
static void FN(pf_init)(FN(prefetcher) *pf, const gemm_params *p, const T *x, const T *y,
                        long task, long n_calls)
{
    const long S = (long)sizeof(T), next = task + p->pf_stride;
    pf->s = 2; pf->per_call = 0;
    if (p->pf_stride == 0 || next >= p->n_tasks || n_calls < 1) return;
    long n, g, mb, pt, n1, g1, mb1, pt1;
    FN(task_pos)(p, task, &n, &g, &mb, &pt);
    FN(task_pos)(p, next, &n1, &g1, &mb1, &pt1);
    /* input rows [ih0, ih1) of the group's CG channels: already here if only mb differs */
    const long oh0 = pt1 * p->NC, rb = (p->OH - oh0 < p->NC) ? p->OH - oh0 : p->NC;
    long ih0 = p->SH * oh0 - p->PT, ih1 = p->SH * (oh0 + rb - 1) + (p->KH - 1) * p->DH - p->PT + 1;
    if (ih0 < 0) ih0 = 0;
    if (ih1 > p->H) ih1 = p->H;
    const int same_in = (n1 == n && g1 == g && pt1 == pt);
    pf->base[0] = (const char *)(x + ((n1 * p->C_in + g1 * p->CG) * p->H + ih0) * p->W);
    pf->run[0] = (ih1 - ih0) * p->W * S;
    pf->stride[0] = p->H * p->W * S;
    pf->n_runs[0] = (same_in || ih1 <= ih0) ? 0 : p->CG;
    /* output rows [oh0, oh0 + rb) of the block's channels */
    const long m0 = mb1 * p->MB, m1 = (m0 + p->MB < p->M) ? m0 + p->MB : p->M;
    pf->base[1] = (const char *)(y + (n1 * p->C_out + g1 * p->M + m0) * p->P + oh0 * p->OW);
    pf->run[1] = rb * p->OW * S;
    pf->stride[1] = p->P * S;
    pf->n_runs[1] = m1 - m0;
    const long lines = pf->n_runs[0] * (pf->run[0] / 64 + 2) + pf->n_runs[1] * (pf->run[1] / 64 + 2);
    pf->per_call = FN(ceil_div)(lines, n_calls);
    pf->s = 0; pf->r = 0;
    FN(pf_open_run)(pf);
}

/* Issue the next per_call prefetches (called before each micro-kernel call): straight
 * loops over runs, so the bookkeeping stays small next to short micro-kernel calls. */
static inline void FN(pf_step)(FN(prefetcher) *pf)
{
    long left = pf->per_call;
    while (left > 0 && pf->s < 2) {
        long n = (pf->end - pf->cur + 63) / 64;
        if (n > left) n = left;
        const char *c = pf->cur;
        if (pf->s == 0)
            for (long i = 0; i < n; i++) __builtin_prefetch(c + 64 * i, 0, 2);
        else
            for (long i = 0; i < n; i++) __builtin_prefetch(c + 64 * i, 1, 2);
        pf->cur = c + 64 * n;
        left -= n;
        if (pf->cur >= pf->end) { pf->r++; FN(pf_open_run)(pf); }
    }
}
