/* gemm/planner.h: the GEMM kind's planner: the micro-tile cost model (choose_tile, channel-
 * vector tiles or not), the task split, K blocking, phase-plane geometry and gemm_plan,
 * which fills gemm_params' blocking. Per variant; expects gemm/microkernels.h and
 * common/schedule.h. */

/* Relative cost of one micro-tile step k: FMAs at two per cycle, ~2 loads per cycle, a
 * 4-cycle floor (FMA latency). Only comparisons between tiles use it. This machine's core
 * retires one 512-bit FMA per cycle, but costing FMAs at one per cycle made these
 * comparisons worse: it picks 4x6 over 12x2 for mbv2_pw_expand, 3-10 % slower (C harness,
 * alternated). */
static double FN(step_cost)(int mr, int nv)
{
    double step = 0.5 * mr * nv;
    if (0.5 * (mr + nv) > step) step = 0.5 * (mr + nv);
    return step < 4.0 ? 4.0 : step;
}

/* Cost of `pixels` output pixels on MR x NV tiles: full chunks plus a narrower tail. */
static double FN(pixels_cost)(int mr, int nv, long pixels)
{
    const long NR = (long)nv * VLEN;
    const long full = pixels / NR, rem = pixels - full * NR;
    double c = full * FN(step_cost)(mr, nv);
    if (rem > 0) c += FN(step_cost)(mr, FN(tail_nv)(mr, (int)FN(ceil_div)(rem, VLEN)));
    return c;
}

/* Scratch layout, in elements of T (one block per thread, 64-byte aligned):
 *   [ offsets: 2*K longs | general: phase planes + slack | staging MB x QPAD ]
 *   [ offsets: 2*K longs | pointwise: ragged-tail sliver KC x NR ]                        */
#define OFFSET_ELEMS(K) (FN(ceil_div)(2 * (K) * (long)sizeof(long), (long)sizeof(T)) + 16)

/* Pick the micro-tile (MR x NV) for `pixels` output pixels per (image, group): the
 * cheapest by step_cost times the tile counts along M and pixels; ties go to bigger tiles. */
static void FN(choose_tile)(gemm_params *p, long pixels)
{
    double best = 1e300;
    int bmr = 1, bnv = 1;
    for (int i = 0; i < N_UKR; i++) {
        int mr = FN(ukr_table)[i].mr, nv = FN(ukr_table)[i].nv;
        double cost = (double)FN(ceil_div)(p->M, mr) * FN(pixels_cost)(mr, nv, pixels);
        if (cost < best * 0.999 || (cost <= best * 1.001 && mr * nv > bmr * bnv)) {
            best = cost; bmr = mr; bnv = nv;
        }
    }
    p->MR = bmr; p->NV = bnv; p->vlen = VLEN;
    p->channel_vectors = 0;
    p->panel_w = bmr;
    p->n_panels = FN(ceil_div)(p->M, bmr);
}

/* Phase-plane problems: switch to channel-vector tiles (ukrc) when they cost less than
 * `margin` times the pixel-vector tiles choose_tile picked. Both costs are micro-tile steps
 * (step_cost) times K (the channel-vector transpose and the pixel-vector copy-out are both
 * one pass over the output; measured, they cancel). Pixel vectors lose lanes on small
 * images and on the wide rows' garbage columns; channel vectors lose them when M is not a
 * multiple of VLEN. */
static void FN(maybe_channel_vectors)(gemm_params *p, double margin)
{
    const double pv = margin * (double)FN(ceil_div)(p->M, p->MR) *
                      FN(pixels_cost)(p->MR, p->NV, p->OH * p->PW) * p->K;
    double best = 1e300;
    int bmp = 0, bnv = 0;
    for (int i = 0; i < N_UKRC; i++) {
        const int mp = FN(ukrc_table)[i].mp, nv = FN(ukrc_table)[i].nv;
        const double c = (double)FN(ceil_div)(p->M, (long)nv * VLEN) * p->OH *
                         FN(ceil_div)(p->OW, mp) * FN(step_cost)(mp, nv) * p->K;
        if (c < best * 0.999 || (c <= best * 1.001 && mp * nv > bmp * bnv)) {
            best = c; bmp = mp; bnv = nv;
        }
    }
    p->cv_cost = best; p->cv_bar = pv;           /* for the report */
    p->cv_mp = bmp; p->cv_nv = bnv;
    if (bmp == 0 || best >= pv) return;
    p->channel_vectors = 1;
    p->MR = bmp; p->NV = bnv;
    p->panel_w = (long)bnv * VLEN;
    p->n_panels = FN(ceil_div)(p->M, p->panel_w);
}

/* Split the work of one (image, group) into tasks until every thread has ~4: along `units`
 * (pixel chunks or output rows) and along weight panels (output-channel blocks), the one
 * with more room first. Pixels or rows are cut into at least `pieces` parts (rounding the
 * part down), so that the channels are split only when they must: each channel block reads
 * the same input again. (Rounding up left mbv2_pw_project 7 pixel tiles x 2 channel
 * blocks, 14 tasks, against 9 tiles now: 2 threads, C harness, 115-122 -> 100-101 us;
 * dense_1x1 499-505 -> 473-475 us.) Results do not depend on the split: each output element
 * is always reduced in the same order. Sets MB / n_mblocks; returns units per task. */
static long FN(split_tasks)(gemm_params *p, long units, long units_per_task, int n_threads)
{
    const long base = p->N * p->G, want = 4L * n_threads;
    long panels_per = p->n_panels;
    if (n_threads > 1 && base * FN(ceil_div)(units, units_per_task) < want) {
        const long pieces = FN(ceil_div)(want, base);      /* per (image, group) */
        if (p->n_panels >= units) {                        /* channels first */
            panels_per = FN(ceil_div)(p->n_panels, pieces);
            const long left = FN(ceil_div)(pieces, FN(ceil_div)(p->n_panels, panels_per));
            if (left > 1) units_per_task = FN(ceil_div)(units, left);
        } else {                                           /* pixels / rows first */
            long per = units / pieces > 1 ? units / pieces : 1;
            if (per < units_per_task) units_per_task = per;
            const long have = FN(ceil_div)(units, units_per_task);
            if (have < pieces) panels_per = FN(ceil_div)(p->n_panels, FN(ceil_div)(pieces, have));
        }
    }
    if (units_per_task < 1) units_per_task = 1;
    p->MB = panels_per * p->panel_w;
    p->n_mblocks = FN(ceil_div)(p->n_panels, panels_per);
    return units_per_task;
}

/* Whether any tap reads row phase a (column phase b): (kh*DH) % SH == a for some kh. A
 * 1x1 kernel at stride 2 reads one phase plane of four; the others are never filled
 * (fill_phase_planes) and take no cache (the row blocking below counts the read ones). */
static int FN(phase_read)(long phase, long K, long D, long S)
{
    for (long k = 0; k < K && k < S; k++)       /* (k*D) % S repeats with period <= S */
        if ((k * D) % S == phase) return 1;
    return 0;
}

/* Elements from one phase plane to the next: PROWS rows of PW, then VLEN of slack so whole-
 * vector copies may run past a row's end (into the next row, written later, or the slack). */
static inline long FN(plane_stride)(const gemm_params *p) { return p->PROWS * p->PW + VLEN; }

/* Flat planes at stride 1: read a plane of PROWS x PW as one flat run. The valid lanes of
 * any VLEN consecutive plane elements come from at most VLEN consecutive input elements (a
 * plane row is at least as wide as an input row), so each plane vector is one load, one
 * permute and a mask, by a recipe that is the same for every channel. Rows narrower than a
 * vector (7x7 and 14x14 images) no longer cost a store each, and the permute costs less than
 * the row path's edge handling: measured per task, ResNeXt 7x7 1716 -> 520 ticks, 14x14
 * 1040 -> 702, dense 28x28 20306 -> 12896. Building the recipes costs about as much as
 * filling four channels, so few channels (ResNeXt 56x56 has 4) keep the row path. Recipes
 * live on the stack: at most FLAT_PLANE_VECS of them. */
#define FLAT_PLANE_VECS 128
static int FN(flat_planes)(const gemm_params *p)
{
    const long flat = FN(ceil_div)(p->PROWS * p->PW, VLEN);
    const long by_rows = p->PROWS * FN(ceil_div)(p->PW, VLEN);
    return p->SH == 1 && p->SW == 1 && p->H * p->W >= VLEN && flat <= FLAT_PLANE_VECS &&
           flat * (8 + 2 * p->CG) < 3 * by_rows * p->CG;     /* fitted to the timings above */
}

/* K block: a KC x NR sliver of B stays in L1 (~32 KB) while every weight panel passes over
 * it; blocks of even size. */
static long FN(kc_for)(long K, long NR)
{
    long kc = (32 * 1024) / (NR * (long)sizeof(T));
    if (kc < 16) kc = 16;
    return kc >= K ? K : FN(ceil_div)(K, FN(ceil_div)(K, kc));
}

/* Channel-vector staging of one task, in elements: the task's rb*OW output pixels (rounded
 * up to whole VLEN-pixel blocks, plus MP for a ragged last tile's spill) x NR channels, NR
 * bias values, and a VLEN x VLEN block for ragged transposes. */
static inline long FN(cv_stage_elems)(long rb, long OW, long MP, long NR)
{
    return (FN(ceil_div)(rb * OW, VLEN) * VLEN + MP) * NR + NR + (long)VLEN * VLEN;
}

/* Planner. Two ways to feed the micro-kernel's B operand:
 *
 * direct_b (1x1, stride 1, no padding): B *is* the input: row k = channel k of the group,
 *   read in place. Tasks tile the pixels (NC per task) and block K by KC so a KC x NR
 *   sliver of B stays in L1 while every weight panel passes over it. (Unless the image is
 *   so small that channel-vector tiles on phase planes win, see below.)
 *
 * otherwise, implicit GEMM on phase planes: a task takes NC output rows. It copies the
 *   input rows they need, zero-padded, into per-thread scratch split into SH x SW phase
 *   planes (plane (a, b) holds padded pixels (SH*i + a, SW*j + b)), each row PW wide:
 *
 *      PW = OW + (KW-1)*DW / SW        ("wide" rows: PW - OW garbage columns, discarded)
 *
 *   Then output pixel q = r*PW + ow (r = row in the block) and tap (c, kh, kw) reads plane
 *   ((kh*DH) % SH, (kw*DW) % SW) of channel c at index q + (kh*DH/SH)*PW + (kw*DW/SW): a
 *   constant offset per tap, so B row k is a contiguous run of the scratch and no im2col
 *   is ever built. The micro-kernel writes wide rows to a staging tile; the valid OW
 *   columns are copied out with the epilogue. */
static void FN(gemm_plan)(void *params, int n_threads, int flags)
{
    gemm_params *p = params;
    p->pointwise = (flags & GCONV_PLAN_POINTWISE) != 0;
    const long S = (long)sizeof(T);
    p->zero_scratch = 0;     /* every task writes what it reads */
    p->direct_out = 0;
    /* B in place needs 1x1, stride 1, no padding: Python's Pointwise.why_not decided that
     * (GCONV_PLAN_POINTWISE); this only reads it */
    p->direct_b = p->pointwise;
    if (p->direct_b) {
        FN(choose_tile)(p, p->P);
        /* Small images waste pixel-vector lanes (7x7: 49 pixels in 4 vectors) and channel-
         * vector tiles do not; those need the input copied into a plane, which with the
         * transpose out costs ~10 % of the tiles' work. Measured on 7x7 (ResNet-50 stage
         * 4, 2048 -> 512): 1234 us in place, 917 us through the copy. (Decided on a copy
         * of p: the phase-plane planning below starts afresh.) */
        gemm_params q = *p;
        q.PW = q.OW;
        FN(maybe_channel_vectors)(&q, 0.9);
        p->pw_cv_cost = q.cv_cost; p->pw_cv_bar = q.cv_bar;     /* for the report */
        p->pw_cv_mp = q.cv_mp; p->pw_cv_nv = q.cv_nv;
        if (q.channel_vectors) p->direct_b = 0;
    }
    if (p->direct_b) {
        const long NR = (long)p->NV * VLEN;
        const long kc = FN(kc_for)(p->K, NR);
        p->KC = kc;
        long n_chunks = FN(ceil_div)(p->P, NR);
        long per = FN(split_tasks)(p, n_chunks, FN(ceil_div)(2048, NR), n_threads);
        p->NC = per * NR;
        p->n_ptiles = FN(ceil_div)(p->P, p->NC);
        /* only the last pixel tile can end in a ragged chunk (NC is a multiple of NR) */
        const long ragged = (p->P - (p->n_ptiles - 1) * p->NC) % NR;
        p->tail_nv = ragged ? FN(tail_nv)(p->MR, (int)FN(ceil_div)(ragged, VLEN)) : p->NV;
        p->ukr = (const void *)FN(find_ukr)(p->MR, p->NV);
        p->tail_ukr = (const void *)FN(find_ukr)(p->MR, p->tail_nv);
        p->PW = p->PROWS = p->QPAD = 0;
        p->flat_planes = 0;
        p->scratch_elems = OFFSET_ELEMS(p->K) + kc * NR + 64;
    } else {
        p->PW = p->OW + (p->KW - 1) * p->DW / p->SW;
        FN(choose_tile)(p, p->OH * p->PW);
        FN(maybe_channel_vectors)(p, 1.0);
        /* a vector of wide pixels must span at most two output rows */
        p->direct_out = HAVE_MASKED_STORES && !p->channel_vectors && p->OW >= VLEN;
        const long NR = p->channel_vectors ? p->MR : (long)p->NV * VLEN;   /* pixels per tile */
        const long halo = (p->KH - 1) * p->DH / p->SH;
        /* rows per task: the input planes read + staging within ~384 KB of the 1 MB L2 */
        long phases_read = 0;
        for (long a = 0; a < p->SH; a++)
            for (long b = 0; b < p->SW; b++)
                phases_read += FN(phase_read)(a, p->KH, p->DH, p->SH) &&
                               FN(phase_read)(b, p->KW, p->DW, p->SW);
        long rb = p->OH;
        for (;;) {
            long in = p->CG * phases_read * ((rb + halo) * p->PW + VLEN);
            long stage = p->channel_vectors ? FN(cv_stage_elems)(rb, p->OW, p->MR, p->panel_w)
                         : p->direct_out ? 0
                                         : p->n_panels * p->MR *
                                               FN(ceil_div)((rb - 1) * p->PW + p->OW, NR) * NR;
            if ((in + stage) * S <= 384 * 1024 || rb == 1) break;
            rb = (rb + 1) / 2;
        }
        rb = FN(split_tasks)(p, p->OH, rb, n_threads);
        p->NC = rb;
        p->n_ptiles = FN(ceil_div)(p->OH, rb);
        p->KC = p->channel_vectors ? p->K : FN(kc_for)(p->K, NR);
        p->PROWS = rb + halo;
        p->flat_planes = FN(flat_planes)(p);
        /* stage: wide rows of MB channels (pixel vectors) or one MR x NR tile + bias */
        p->QPAD = FN(ceil_div)((rb - 1) * p->PW + p->OW, NR) * NR;
        const long stage = p->channel_vectors ? FN(cv_stage_elems)(rb, p->OW, p->MR, p->panel_w)
                           : p->direct_out ? 0 : p->MB * p->QPAD;
        p->scratch_elems = OFFSET_ELEMS(p->K) + p->CG * p->SH * p->SW * FN(plane_stride)(p) +
                           NR + 64 + stage + p->SW * (p->PW + 2L * VLEN) + VLEN;
    }
    p->n_tasks = p->N * p->G * p->n_mblocks * p->n_ptiles;
    const int streams = FN(call_streams)(GCONV_PB(p));
    p->task_chunk = FN(task_chunk)(p->n_tasks, n_threads, streams);
    /* Prefetch the next task's data (pf_init) only when the call streams: there it saves
     * 5-27 % (batch 4-8), while on data already in cache the prefetch instructions only
     * queue for miss buffers and cost 1-4 % (measured on ResNeXt's 56x56, strided and 7x7
     * layers). This thread's next task: the next one of its chunk, or with chunks of one
     * task about n_threads on (the dynamic schedule hands them out in order). */
    p->pf_stride = !streams ? 0 : (p->task_chunk > 1 || n_threads == 1) ? 1 : n_threads;
}
