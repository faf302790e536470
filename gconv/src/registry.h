/* registry.h: every kind's entry points, one row (common/kind.h) per (kind, dtype, ISA).
 * Included once by gconv_kernels.h after the variants are compiled. _kernels.pyx reads the
 * kinds from here (KINDS: name -> index), so Python holds no copy of this list.
 *
 * Adding a kind: a folder with its kernels, planner and tasks that defines the row
 * FN(<kind>_kind) per variant (included by instantiate.h), one line in GCONV_KIND_LIST, and
 * an Implementation class in gconv/_dispatch.py.
 *
 *   X(ENUM, row)   row: the per-variant row's name without its suffix
 */
#ifndef GCONV_REGISTRY_H
#define GCONV_REGISTRY_H

#define GCONV_KIND_LIST(X)                                                                 \
    X(GEMM, gemm_kind)                                                                     \
    X(DEPTHWISE, dw_kind)

#define GCONV_KIND_ENUM(id, row) GCONV_KIND_##id,
enum { GCONV_KIND_LIST(GCONV_KIND_ENUM) GCONV_N_KINDS };
#undef GCONV_KIND_ENUM

#if GCONV_HAVE_X86_VARIANTS
#define GCONV_KIND_ROWS(id, row)                                                           \
    {{&row##_f32_generic, &row##_f32_avx2, &row##_f32_avx512},                             \
     {&row##_f64_generic, &row##_f64_avx2, &row##_f64_avx512}},
#else
#define GCONV_KIND_ROWS(id, row) {{&row##_f32_generic}, {&row##_f64_generic}},
#endif
/* [kind][is_f64][isa]; NULL for an ISA this build has no variant of */
static const gconv_kind *const gconv_registry[GCONV_N_KINDS][2][GCONV_N_ISA] = {
    GCONV_KIND_LIST(GCONV_KIND_ROWS)
};
#undef GCONV_KIND_ROWS

static inline const gconv_kind *gconv_kind_row(int kind, int is_f64, int isa)
{
    return gconv_registry[kind][is_f64 != 0][isa];
}

#endif
