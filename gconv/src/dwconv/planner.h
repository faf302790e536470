/* dwconv/planner.h: the depthwise planner: kernel id, mode (row, plane or lanes), direct
 * rows or not, scratch geometry, sub-blocks and the task split (dw_plan), and what decided
 * them for the report (dwconv/report.h). Per variant; expects the kernel tables
 * (row_kernels.h, plane_kernels.h). */

static int FN(dw_kernel_id)(const dw_params *p)
{
    if (!DW_SPECIALISE) return DW_K_GENERIC;
    if (p->KH != p->KW || p->SH != p->SW || p->DH != p->DW) return DW_K_GENERIC;
    const long k = p->KH, s = p->SH, d = p->DH;
    if (k == 3 && s == 1 && d == 1) return DW_K_3S1;
    if (k == 3 && s == 2 && d == 1) return DW_K_3S2;
    if (sizeof(T) != 4) return DW_K_GENERIC;       /* see DW_SPEC32 */
    if (k == 3 && s == 1 && d == 2) return DW_K_3S1D2;
    if (k == 5 && s == 1 && d == 1) return DW_K_5S1;
    if (k == 5 && s == 2 && d == 1) return DW_K_5S2;
    if (k == 7 && s == 1 && d == 1) return DW_K_7S1;
    if (k == 7 && s == 2 && d == 1) return DW_K_7S2;
    return DW_K_GENERIC;
}

/* --- geometry and plan ---------------------------------------------------------------- */

static long FN(dw_round)(long n) { return (n + VLEN - 1) / VLEN * VLEN; }

/* Row mode scratch row: nph phases of wq elements (nph = SW for the generic kernel, else
 * 1: the plain padded row). wq covers the widest read: a whole vector (two at stride 2)
 * from the last output column, or from column 0 when OW < VLEN, plus the largest tap. */
static long FN(dw_nph)(const dw_params *p) { return p->kernel_id == DW_K_GENERIC ? p->SW : 1; }
static long FN(dw_wq)(const dw_params *p)
{
    const long cols = p->OW > VLEN ? p->OW : VLEN;
    if (FN(dw_nph)(p) > 1) return FN(dw_round)(cols + ((p->KW - 1) * p->DW) / p->SW);
    return FN(dw_round)(p->SW * cols + (p->KW - 1) * p->DW + 1);
}

static int FN(dw_use_plane)(const dw_params *p)
{
    return p->SH == 1 && p->SW == 1 && p->OW == p->W && p->W < VLEN &&
           (p->OH + (p->KH - 1) * p->DH) * p->W <= 16384 / (long)sizeof(T);
}

/* Plane mode buffer: front margin (>= PL: the first taps read up to PL before the plane),
 * the padded rows, a tail margin for the last vectors' reads. */
static long FN(dw_plane_front)(const dw_params *p) { return FN(dw_round)(p->PL) + VLEN; }
static long FN(dw_plane_elems)(const dw_params *p)
{
    return FN(dw_plane_front)(p) + (p->OH + (p->KH - 1) * p->DH) * p->W + 2 * VLEN +
           (p->KW - 1) * p->DW;
}

/* Lanes mode: 3x3, stride 1, "same" padding, one output channel per input channel, small
 * planes (at least a vector of pixels, rows of at most 16) and at least VLEN channels.
 * DW_LANES_FIT, or the first condition that fails (for the report). */
static int FN(dw_lanes_declined)(const dw_params *p)
{
    if (!DW_SPECIALISE) return DW_LANES_NO_ISA;
    if (!(p->M == 1 && p->KH == 3 && p->KW == 3 && p->SH == 1 && p->SW == 1 && p->DH == 1 &&
          p->DW == 1 && p->PT == 1 && p->PL == 1 && p->OH == p->H && p->OW == p->W))
        return DW_LANES_SHAPE;
    if (p->H * p->W < VLEN) return DW_LANES_SMALL_PLANE;
    if (p->W > 16 || p->H > 16) return DW_LANES_LARGE_PLANE;
    if (p->G < VLEN) return DW_LANES_FEW_CHANNELS;
    return DW_LANES_FIT;
}

/* Units (groups, or lanes mode's blocks of VLEN channels) per task: enough work per task
 * (~64 K multiply-adds of work_unit each) to amortise scheduling, yet >= 4 tasks per
 * thread where the problem allows it. */
static long FN(dw_units_per_task)(long work_unit, long units, long N, int n_threads)
{
    long per = (65536 + work_unit - 1) / (work_unit > 0 ? work_unit : 1);
    const long max_per = N * units / (4L * n_threads);
    if (per > max_per) per = max_per;
    if (per < 1) per = 1;
    if (per > units) per = units;
    return per;
}

/* Direct mode: for the unrolled 3x3 kernels, on rows at least a vector wide. */
static int FN(dw_direct_ok)(const dw_params *p)
{
    /* how far the masked loads reach before / past an input row: within one plane, so
     * they stay inside x when the first and last channel are left out */
    const long before = p->PL;
    const long past = p->SW * (p->OW - 1) + (p->KW - 1) * p->DW + p->SW * VLEN - p->PL - p->W;
    /* worth it for 3x3, where copying the input costs as much as a third of the
     * arithmetic; the larger kernels do enough work per input value */
    const int small_kernel = sizeof(T) == 4 &&       /* see DW_SPEC32 */
        (p->kernel_id == DW_K_3S1 || p->kernel_id == DW_K_3S2 || p->kernel_id == DW_K_3S1D2);
    if (!(small_kernel && p->OW >= VLEN && before <= p->H * p->W && past <= p->H * p->W))
        return 0;
    /* at stride 2 the copy would move two input rows per output row: always worth it */
    if (p->SW == 2) return 1;
    /* and only if most of a row's vectors need no mask: masking costs an AND per load,
     * which on rows of a few vectors outweighs the copy it saves */
    const long nvec = FN(ceil_div)(p->OW, VLEN), span = p->SW * VLEN + (p->KW - 1) * p->DW;
    long masked = 0;
    for (long j = 0; j < nvec; j++) {
        const long c = j * VLEN < p->OW - VLEN ? j * VLEN : p->OW - VLEN;
        masked += !(p->SW * c - p->PL >= 0 && p->SW * c - p->PL + span <= p->W);
    }
    return 2 * masked <= nvec;
}

/* Lanes mode for any kernel (dwconv/lanes_any.h), when the problem has channels to fill
 * at least half the lanes and a band of one output row fits the scratch cap, for
 *   - every shape without an unrolled row kernel (the generic row kernel, with runtime
 *     taps, vectorises along rows: with channels enough for the lanes it ran 1.2-3x slower
 *     than this mode on stride-1 dilated and large kernels, 5x slower before its rework),
 *   - output rows of at most a vector (row mode would compute a whole vector per row,
 *     plane mode masks taps per lane), but 3x3 stride 1 in plane mode on planes at least
 *     half a vector wide (18x14 1.8x faster in plane mode, 14x14 and 14x7 level; 5x5
 *     kernels 0.65-0.87x the time in lanes mode) and the planes the unrolled 3x3 lanes
 *     tile takes (dw_plan asks it first).
 * (7x7 at stride 2 went here too for a while, 0.63x the time on one 112x199 layer at one
 * thread; on an unseen 120 x 112x112 layer it was level at one thread and 1.2x slower at
 * two, so its unrolled row kernel keeps it.)
 * Measured on Zen 4 against the row, plane and 3x3 lanes kernels on random sweep layers
 * (tools/compare_builds.py --families depthwise,depthwise_mult). */
#define DW_ANY_SCRATCH_BYTES (256 * 1024)
/* Per-thread scratch cap of lanes mode: a band's grid and stage within L2; rows of at most a
 * vector may take more (huge kernels on small outputs: a depthwise weight gradient runs as
 * a convolution whose kernel is the output gradient's plane, 56x56 and more), since row
 * mode would waste most of its lanes on them (8 x 144 x 56x56 3x3 weight gradient: 13.4 ms
 * in row mode against torch's 5.6). */
static long FN(dw_any_cap)(const dw_params *p)
{
    return p->OW <= VLEN ? 16 * DW_ANY_SCRATCH_BYTES : DW_ANY_SCRATCH_BYTES;
}
static int FN(dw_any_fits)(const dw_params *p)
{
    if (!(2 * p->G >= VLEN && VLEN > 1 &&
          FN(dw_any_scratch)(p, 1) * (long)sizeof(T) <= FN(dw_any_cap)(p)))
        return 0;
    /* few channels on long rows: the row kernels fill their vectors along the row, while
     * lanes mode would transpose every pixel in and out for little arithmetic (32 x
     * 112x112, 11x5 dilated: 1034 us in row mode, 1843 in lanes mode; 48 channels: lanes
     * mode 0.77x the time) */
    if (p->G <= 2 * VLEN && p->OW >= 4 * VLEN) return 0;
    if (p->kernel_id == DW_K_GENERIC) return 1;
    if (p->OW > VLEN) return 0;
    return !(p->kernel_id == DW_K_3S1 && FN(dw_use_plane)(p) && 2 * p->W >= VLEN);
}

/* Blocks of VLEN channels for the lanes modes, several per task when work_per_block (one
 * block's multiply-adds) is small, else (0) one. Any split gives the same results: every
 * channel is computed the same way in whichever lane and block it lands. */
static void FN(dw_lane_blocks)(dw_params *p, long work_per_block, int n_threads)
{
    const long blocks = FN(ceil_div)(p->G, VLEN);
    const long nb = work_per_block > 0
                    ? FN(dw_units_per_task)(work_per_block, blocks, p->N, n_threads) : 1;
    p->groups_per_task = nb * VLEN;
    p->n_group_blocks = FN(ceil_div)(blocks, nb);
}

/* Every mode's last step: tasks of `rows` output rows (images x group blocks x row
 * blocks) and the task loop's chunks. */
static void FN(dw_finish_tasks)(dw_params *p, long rows, int n_threads)
{
    p->rows_per_task = rows;
    p->n_row_blocks = FN(ceil_div)(p->OH, rows);
    p->n_tasks = p->N * p->n_group_blocks * p->n_row_blocks;
    p->task_chunk = FN(task_chunk)(p->n_tasks, n_threads, FN(call_streams)(GCONV_PB(p)));
}

/* Bands of output rows whose grid and stage fit the scratch cap; whole planes take several
 * channel blocks per task when they are small; bands are split further when images x
 * blocks x bands are too few for the threads (>= 4 tasks each). */
static void FN(dw_plan_any)(dw_params *p, int n_threads)
{
    p->mode = DW_MODE_LANES_ANY;
    p->zero_scratch = 0;        /* each task zeroes the grid's padding (dw_any_task) */
    p->unrolled = 0;
    p->strip_channels = 1;
    long rows = p->OH;
    while (rows > 1 && FN(dw_any_scratch)(p, rows) * (long)sizeof(T) > FN(dw_any_cap)(p))
        rows = (rows + 1) / 2;
    FN(dw_lane_blocks)(p, rows == p->OH
                          ? (long)VLEN * p->M * p->OH * p->OW * p->KH * p->KW : 0, n_threads);
    const long want = 4L * n_threads, base = p->N * p->n_group_blocks;
    if (n_threads > 1 && base * FN(ceil_div)(p->OH, rows) < want) {
        const long r = FN(ceil_div)(p->OH, FN(ceil_div)(want, base));
        if (r < rows) rows = r > 0 ? r : 1;
    }
    p->sub_rows = rows;
    p->scratch_elems = FN(dw_any_scratch)(p, rows);
    FN(dw_finish_tasks)(p, rows, n_threads);
}

static void FN(dw_plan)(void *params, int n_threads, int flags)
{
    dw_params *p = params;
    (void)flags;
    p->vlen = VLEN;
    p->zero_scratch = 1;     /* the tasks never write the padding (see dw_fill_row) */
    p->kernel_id = FN(dw_kernel_id)(p);
    p->lanes_declined = FN(dw_lanes_declined)(p);
    /* the unrolled 3x3 lanes tile first: 960 x 7x7 (MobileNetV2) 18.9 us against 26.1 in
     * lanes mode for any kernel (Zen 4) */
    if (p->lanes_declined != DW_LANES_FIT && FN(dw_any_fits)(p)) {
        FN(dw_plan_any)(p, n_threads);
        return;
    }
    if (p->lanes_declined == DW_LANES_FIT) {
        p->mode = DW_MODE_LANES;
        p->unrolled = 1;                  /* dw_lanes_tile: 3x3 compiled in */
        p->strip_channels = 1;
        p->sub_rows = p->OH;
        p->scratch_elems = ((p->H + 2) * (p->W + 2) + 9 + 1 + p->H * p->W + 1) * VLEN;
        FN(dw_lane_blocks)(p, (long)VLEN * p->OH * p->OW * 9, n_threads);
        FN(dw_finish_tasks)(p, p->OH, n_threads);
        return;
    }
    p->mode = FN(dw_use_plane)(p) ? DW_MODE_PLANE : DW_MODE_ROW;
    const int plane = p->mode == DW_MODE_PLANE;
    /* channels per strip: pairs when M >= 2 and the kernel has a pair variant */
    p->strip_channels = p->M >= 2 && (plane ? FN(dw_plane_kernels)[p->kernel_id][1] != NULL
                                            : FN(dw_kernels)[p->kernel_id][1] != NULL) ? 2 : 1;
    const int rb = plane ? 1 : p->kernel_id == DW_K_3S1D2 ? DW_RB_D2 : DW_RB;
    p->unrolled = plane ? FN(dw_plane_kernels)[p->kernel_id][0] != FN(dw_plane_gen_m1)
                        : FN(dw_kernels)[p->kernel_id][0] != FN(dw_generic_m1);
    p->direct_rows = !plane && FN(dw_direct_ok)(p);
    if (plane) {
        p->sub_rows = p->OH;
        p->scratch_elems = 2 * FN(dw_plane_elems)(p);
    } else {
        /* sub-block: input rows of ~16 KB (stays in L1 with its output), whole strips */
        const long pitch = FN(dw_nph)(p) * FN(dw_wq)(p);
        long sb = (16 * 1024 / (long)sizeof(T) / pitch - (p->KH - 1) * p->DH - 1) / p->SH + 1;
        sb = sb / rb * rb;
        if (sb < rb) sb = rb;
        if (sb > p->OH) sb = p->OH;
        p->sub_rows = sb;
        p->scratch_elems = dw_in_rows(p, sb) * pitch + 2 * VLEN;
        if (!p->unrolled)                      /* the generic kernel's tap tables */
            p->scratch_elems += FN(dw_generic_table_elems)(p);
    }

    const long want = 4L * n_threads;
    const long mb = FN(dw_units_per_task)(p->M * p->OH * p->OW * p->KH * p->KW, p->G, p->N,
                                          n_threads);
    p->groups_per_task = mb;
    p->n_group_blocks = FN(ceil_div)(p->G, mb);
    /* rows per task: split the rows when images x group blocks are too few for the threads */
    const long base = p->N * p->n_group_blocks;
    long rows = p->OH;
    if (n_threads > 1 && base < want) {
        rows = FN(ceil_div)(FN(ceil_div)(p->OH, FN(ceil_div)(want, base)), rb) * rb;
        if (rows < 1) rows = 1;
    }
    FN(dw_finish_tasks)(p, rows, n_threads);
}
