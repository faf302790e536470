/* dwconv/microkernel_test.h: test-only: the depthwise kernels for this variant, one at a
 * time, on a call frame (common/microkernel_test.h), or their twins (dwconv/twins.h). Per
 * variant, inside dwconv.h's pragma region; expects the kernel tables. The list is the
 * tables the tasks pick from (each distinct kernel once: a slot that falls back to the
 * generic kernel is left out), so a kernel added to a table is tested from then on.
 *
 *   dw.row     dw_kernels[id][mm-1]         shape {kernel id, mm, generic, 0}
 *   dw.direct  dw_kernels_direct[id][mm-1]  shape {kernel id, mm, 0, 0}
 *     w = mm x KH x KW, bias = mm values or NULL, out (and res) = mm x rows x OW;
 *     n = {rows, OW, KH, KW, SH, SW, DH, DW, rows_in, cols, PL, act}, d = {alpha, lo, hi}.
 *     dw.row: x = the zero-padded input rows, rows_in x cols (padded columns; PL unused),
 *     laid out here as the row copies lay them in scratch (phase-split for the generic
 *     kernel). dw.direct: x = input rows (rows_in x cols, cols = the input width W) read in
 *     place between NaN margins, columns outside [0, W) read as zeros; OW >= VLEN.
 *     An unrolled kernel needs KH == KW, SH == SW, DH == DW as its id says.
 *   dw.plane   dw_plane_kernels[id][mm-1]   shape {kernel id, mm, generic, 0}
 *     x = the input plane (H x W), stride 1, OW = W; w, bias as above; out (and res) =
 *     mm x OH x W, flat positions [f0, f1) written;
 *     n = {H, W, OH, PT, PL, KH, KW, DH, DW, f0, f1, act}, d = {alpha, lo, hi}.
 *   dw.lanes   dw_lanes_tile(RB, NB)        shape {RB, NB, VLEN, 0}
 *     x = grid, (RB + 2) x (NB + 2) x VLEN; w = 9 x VLEN (vector t: tap t of each lane);
 *     bias = VLEN values or NULL (zeros); out = RB x NB x VLEN.
 *   dw.lanes_any  dw_any_tiles[RB-1][NB-1] (dwconv/lanes_any.h)  shape {RB, NB, VLEN, 0}
 *     x = grid of n[2] elements; offs = n[0] tap offsets into it; n[1] = elements
 *     between the tile's two rows; w = n[0] x VLEN (vector t: tap t of each lane);
 *     bias = VLEN values or NULL (zeros); out = RB x NB x VLEN.
 */

#ifndef GCONV_DWCONV_TEST_FAMILIES      /* once, not per variant */
#define GCONV_DWCONV_TEST_FAMILIES
enum { DW_TEST_ROW, DW_TEST_DIRECT, DW_TEST_PLANE, DW_TEST_LANES, DW_TEST_LANES_ANY };
static const char *const dw_test_families[] = {"dw.row", "dw.direct", "dw.plane", "dw.lanes",
                                               "dw.lanes_any"};
#endif

typedef void (*FN(dw_lanes_tile_fn))(const T *, long, const VEC *, const T *, T *, long);

/* lanes mode runs where the kernels are specialised (DW_SPECIALISE: VLEN * sizeof(T) >= 32) */
#define DW_LANES_TESTS (VBYTES >= 32)
#if DW_LANES_TESTS
/* X(RB, NB): the tiles dw_lanes_rows instantiates (NB up to DW_LNB) */
#define DW_LANES_TILE_LIST(X)                                                              \
    X(1, 1) X(1, 2) X(1, 3) X(1, 4) X(1, 5) X(1, 6) X(1, 7)                                \
    X(2, 1) X(2, 2) X(2, 3) X(2, 4) X(2, 5) X(2, 6) X(2, 7)
#define DW_LANES_TILE_TEST(RB_, NB_)                                                       \
    static void FN(dw_lanes_tile_##RB_##x##NB_)(const T *g, long gp, const VEC *wv,        \
                                                const T *bv, T *o, long op)                \
    {                                                                                      \
        if (NB_ <= DW_LNB)                                                                 \
            FN(dw_lanes_tile)(RB_, NB_ <= DW_LNB ? NB_ : 1, g, gp, wv, *(const VEC *)bv,   \
                              o, op);                                                      \
    }
DW_LANES_TILE_LIST(DW_LANES_TILE_TEST)
#define DW_LANES_TILE_ENTRY(RB_, NB_) {RB_, NB_, FN(dw_lanes_tile_##RB_##x##NB_)},
static const struct { int rb, nb; FN(dw_lanes_tile_fn) fn; } FN(dw_lanes_tiles)[] = {
    DW_LANES_TILE_LIST(DW_LANES_TILE_ENTRY)
};
#define DW_N_LANES_TILES ((int)(sizeof(FN(dw_lanes_tiles)) / sizeof(FN(dw_lanes_tiles)[0])))
#undef DW_LANES_TILE_LIST
#undef DW_LANES_TILE_TEST
#undef DW_LANES_TILE_ENTRY
#else
#define DW_N_LANES_TILES 0
#endif

/* One listed kernel. */
typedef struct {
    int family, id, mm, generic;
    FN(dw_rows_fn) rows;        /* dw.row, dw.direct */
    FN(dw_plane_fn) plane;      /* dw.plane */
    int lanes;                  /* dw.lanes: index into dw_lanes_tiles; dw.lanes_any: into
                                   dw_any_tiles */
} FN(dw_test_entry);

/* The index-th kernel of the list: 1, or 0 past its end. */
static int FN(dw_test_entry_at)(int index, FN(dw_test_entry) *e)
{
    int i = 0;
    memset(e, 0, sizeof(*e));
    for (int family = DW_TEST_ROW; family <= DW_TEST_PLANE; family++)
        for (int id = 0; id < DW_N_KERNELS; id++)
            for (int mm = 1; mm <= 2; mm++) {
                const FN(dw_rows_fn) r = family == DW_TEST_ROW ? FN(dw_kernels)[id][mm - 1]
                                         : family == DW_TEST_DIRECT
                                             ? FN(dw_kernels_direct)[id][mm - 1] : NULL;
                const FN(dw_plane_fn) pl =
                    family == DW_TEST_PLANE ? FN(dw_plane_kernels)[id][mm - 1] : NULL;
                const int generic = r ? r == FN(dw_generic_m1) || r == FN(dw_generic_m2)
                                      : pl == FN(dw_plane_gen_m1) || pl == FN(dw_plane_gen_m2);
                if ((!r && !pl) || (generic && (id != 0 || family == DW_TEST_DIRECT)))
                    continue;           /* no kernel, or a fallback listed under id 0 */
                if (i++ != index) continue;
                e->family = family, e->id = id, e->mm = mm, e->generic = generic;
                e->rows = r, e->plane = pl;
                return 1;
            }
#if DW_LANES_TESTS
    for (int t = 0; t < DW_N_LANES_TILES; t++) {
        if (FN(dw_lanes_tiles)[t].nb > DW_LNB) continue;     /* not instantiated here */
        if (i++ != index) continue;
        e->family = DW_TEST_LANES;
        e->lanes = t;
        return 1;
    }
#endif
    for (int t = 0; t < 16; t++) {              /* dw_any_tiles: [RB-1][NB-1], NB <= 8 */
        if (t % 8 + 1 > DW_ANB) continue;       /* not instantiated here */
        if (i++ != index) continue;
        e->family = DW_TEST_LANES_ANY;
        e->lanes = t;
        return 1;
    }
    return 0;
}

static int FN(dw_ukr_list)(int index, gconv_ukr_info *info)
{
    FN(dw_test_entry) e;
    if (!FN(dw_test_entry_at)(index, &e)) return 0;
    info->family = dw_test_families[e.family];
    memset(info->shape, 0, sizeof(info->shape));
    if (e.family == DW_TEST_LANES_ANY) {
        info->shape[0] = e.lanes / 8 + 1;
        info->shape[1] = e.lanes % 8 + 1;
        info->shape[2] = VLEN;
        snprintf(info->name, sizeof(info->name), "%dx%d", info->shape[0], info->shape[1]);
        return 1;
    }
#if DW_LANES_TESTS
    if (e.family == DW_TEST_LANES) {
        info->shape[0] = FN(dw_lanes_tiles)[e.lanes].rb;
        info->shape[1] = FN(dw_lanes_tiles)[e.lanes].nb;
        info->shape[2] = VLEN;
        snprintf(info->name, sizeof(info->name), "%dx%d", info->shape[0], info->shape[1]);
        return 1;
    }
#endif
    info->shape[0] = e.id;
    info->shape[1] = e.mm;
    info->shape[2] = e.generic;
    snprintf(info->name, sizeof(info->name), "%s m%d",
             e.generic ? "generic" : gconv_dw_kernels[e.id].name, e.mm);
    return 1;
}

/* The frame's geometry and epilogue as a depthwise problem (fields the kernels read). */
static void FN(dw_test_params)(dw_params *p, const gconv_ukr_call *c, int act)
{
    memset(p, 0, sizeof(*p));
    p->act = act;
    p->alpha = c->d[0], p->lo = c->d[1], p->hi = c->d[2];
    p->M = 1;
    p->vlen = VLEN;
}

/* dw.row and dw.direct */
static int FN(dw_test_rows)(const FN(dw_test_entry) *e, int twin, const gconv_ukr_call *c)
{
    const long *n = c->n;
    const int direct = e->family == DW_TEST_DIRECT;
    dw_params p;
    FN(dw_test_params)(&p, c, (int)n[11]);
    p.OH = n[0], p.OW = n[1], p.KH = n[2], p.KW = n[3], p.SH = n[4], p.SW = n[5];
    p.DH = n[6], p.DW = n[7], p.H = n[8], p.W = n[9], p.PL = direct ? n[10] : 0;
    p.kernel_id = e->generic ? DW_K_GENERIC : e->id;
    const gconv_dw_kernel_info *k = &gconv_dw_kernels[e->id];
    if (p.OH < 1 || p.OW < 1 || p.H < (p.OH - 1) * p.SH + (p.KH - 1) * p.DH + 1 ||
        (!direct && p.W < (p.OW - 1) * p.SW + (p.KW - 1) * p.DW + 1) ||
        (direct && (p.OW < VLEN || p.PL < 0)) ||
        (!e->generic && (p.KH != k->k || p.KW != k->k || p.SH != k->stride ||
                         p.SW != k->stride || p.DH != k->dilation || p.DW != k->dilation)))
        return -1;
    const long plane = p.OH * p.OW;
    if (twin) {
        FNT(dw_twin)(GCONV_FUSED, 0, GCONV_PB(&p), e->mm, c->x, c->w, c->bias, c->res,
                     c->out, 0, plane);
        return 0;
    }
    const long nph = FN(dw_nph)(&p), wq = FN(dw_wq)(&p), pitch = direct ? p.W : nph * wq;
    const long margin = direct ? 4 * p.SW * VLEN + (p.KW - 1) * p.DW + p.PL + VLEN : 0;
    const long elems = p.H * pitch + 2 * margin + 2 * VLEN;
    T *buf = calloc((size_t)elems, sizeof(T));
    if (buf == NULL) return -1;
    const T *x = c->x;
    if (direct) {             /* in place: NaN around, so a load the masks miss shows */
        for (long i = 0; i < elems; i++) buf[i] = (T)NAN;
        memcpy(buf + margin, x, (size_t)(p.H * p.W) * sizeof(T));
    } else {                  /* as dw_fill_rows / dw_fill_row lay the padded rows out */
        for (long r = 0; r < p.H; r++)
            for (long ph = 0; ph < nph; ph++)
                for (long q = 0; q < wq && q * nph + ph < p.W; q++)
                    buf[r * pitch + ph * wq + q] = x[r * p.W + q * nph + ph];
    }
    long *coff = malloc((size_t)FN(dw_generic_table_elems)(&p) * sizeof(T));
    if (coff == NULL) {
        free(buf);
        return -1;
    }
    short *khmap = (short *)(coff + p.KW);
    FN(dw_generic_taps)(&p, wq, coff, khmap);
    const FN(dw_args) a = {&p, pitch, p.OW, plane, coff, khmap};
    e->rows(&a, buf + margin, c->w, c->bias, c->res, c->out, p.OH);
    free(coff);
    free(buf);
    return 0;
}

/* dw.plane */
static int FN(dw_test_plane)(const FN(dw_test_entry) *e, int twin, const gconv_ukr_call *c)
{
    const long *n = c->n;
    dw_params p;
    FN(dw_test_params)(&p, c, (int)n[11]);
    p.H = n[0], p.W = p.OW = n[1], p.OH = n[2], p.PT = n[3], p.PL = n[4], p.KH = n[5];
    p.KW = n[6], p.DH = n[7], p.DW = n[8], p.SH = p.SW = 1;
    p.kernel_id = e->id;
    const long f0 = n[9], f1 = n[10], plane = p.OH * p.OW;
    const gconv_dw_kernel_info *k = &gconv_dw_kernels[e->id];
    if (p.H < 1 || p.W < 1 || p.PT < 0 || p.PL < 0 || p.PT + p.H > p.OH + (p.KH - 1) * p.DH ||
        f0 < 0 || f1 <= f0 || f1 > plane ||
        (!e->generic && (p.KH != k->k || p.KW != k->k || p.DH != k->dilation ||
                         p.DW != k->dilation || k->stride != 1)))
        return -1;
    if (twin) {
        FNT(dw_twin)(GCONV_FUSED, 1, GCONV_PB(&p), e->mm, c->x, c->w, c->bias, c->res, c->out,
                     f0, f1);
        return 0;
    }
    /* as dw_task lays out a plane: margin, PT zero rows, the input, zero rows, margin */
    const long pe = FN(dw_plane_elems)(&p), front = FN(dw_plane_front)(&p);
    T *buf = calloc((size_t)pe, sizeof(T));
    if (buf == NULL) return -1;
    memcpy(buf + front + p.PT * p.W, c->x, (size_t)(p.H * p.W) * sizeof(T));
    FN(ivec) col0, col_tail;
    for (int l = 0; l < VLEN; l++) {
        col0[l] = (FN(ielem))((f0 + l) % p.W);
        col_tail[l] = (FN(ielem))((f1 - VLEN + l + VLEN * p.W) % p.W);
    }
    e->plane(&p, buf + front - p.PL, c->w, c->bias, c->res, c->out, plane, f0, f1, col0,
             col_tail);
    free(buf);
    return 0;
}

/* dw.lanes: the tile reads and writes whole aligned vectors, so it runs on aligned
 * copies of the frame's arrays */
static int FN(dw_test_lanes)(const FN(dw_test_entry) *e, int twin, const gconv_ukr_call *c)
{
#if DW_LANES_TESTS
    const int RB = FN(dw_lanes_tiles)[e->lanes].rb, NB = FN(dw_lanes_tiles)[e->lanes].nb;
    const long gp = (NB + 2) * VLEN, op = NB * VLEN, ng = (RB + 2) * gp, no = RB * op;
    T *buf = aligned_alloc(64, (size_t)((ng + 10 * VLEN + no) * sizeof(T) + 63) / 64 * 64);
    if (buf == NULL) return -1;
    T *g = buf, *wv = g + ng, *bv = wv + 9 * VLEN, *o = bv + VLEN;
    memcpy(g, c->x, (size_t)ng * sizeof(T));
    memcpy(wv, c->w, (size_t)(9 * VLEN) * sizeof(T));
    for (int l = 0; l < VLEN; l++) bv[l] = c->bias ? ((const T *)c->bias)[l] : (T)0;
    if (twin)
        FNT(dw_lanes_tile_twin)(GCONV_FUSED, RB, NB, VLEN, g, gp, wv, bv, o, op);
    else
        FN(dw_lanes_tiles)[e->lanes].fn(g, gp, (const VEC *)wv, bv, o, op);
    memcpy(c->out, o, (size_t)no * sizeof(T));
    free(buf);
    return 0;
#else
    (void)e, (void)twin, (void)c;
    return -1;
#endif
}

/* dw.lanes_any: on aligned copies of the frame's arrays, as the task's scratch */
static int FN(dw_test_lanes_any)(const FN(dw_test_entry) *e, int twin, const gconv_ukr_call *c)
{
    const int RB = e->lanes / 8 + 1, NB = e->lanes % 8 + 1;
    const long KK = c->n[0], rstep = c->n[1], ng = c->n[2], no = RB * NB * VLEN;
    if (KK < 1 || rstep < 0 || c->offs == NULL) return -1;
    for (long t = 0; t < KK; t++)
        if (c->offs[t] < 0 || c->offs[t] + (RB - 1) * rstep + NB * VLEN > ng) return -1;
    T *buf = aligned_alloc(64, (size_t)((ng + (KK + 1) * VLEN + no) * sizeof(T) + 63) / 64 * 64);
    if (buf == NULL) return -1;
    T *g = buf, *wv = g + ng, *bv = wv + KK * VLEN, *o = bv + VLEN;
    memcpy(g, c->x, (size_t)ng * sizeof(T));
    memcpy(wv, c->w, (size_t)(KK * VLEN) * sizeof(T));
    for (int l = 0; l < VLEN; l++) bv[l] = c->bias ? ((const T *)c->bias)[l] : (T)0;
    if (twin)
        FNT(dw_any_tile_twin)(GCONV_FUSED, RB, NB, VLEN, g, rstep, c->offs, KK, wv, bv, o,
                              NB * VLEN);
    else
        FN(dw_any_tiles)[e->lanes](g, rstep, c->offs, KK, wv, bv, o, NB * VLEN);
    memcpy(c->out, o, (size_t)no * sizeof(T));
    free(buf);
    return 0;
}

static int FN(dw_ukr_run)(int index, int twin, const gconv_ukr_call *c)
{
    FN(dw_test_entry) e;
    if (!FN(dw_test_entry_at)(index, &e)) return -1;
    if (e.family == DW_TEST_LANES_ANY) return FN(dw_test_lanes_any)(&e, twin, c);
    if (e.family == DW_TEST_LANES) return FN(dw_test_lanes)(&e, twin, c);
    if (e.family == DW_TEST_PLANE) return FN(dw_test_plane)(&e, twin, c);
    return FN(dw_test_rows)(&e, twin, c);
}

#undef DW_N_LANES_TILES
#undef DW_LANES_TESTS
