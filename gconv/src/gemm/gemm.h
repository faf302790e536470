/* gemm/gemm.h: the GEMM kind: pointwise (1x1) and general (KH x KW) convolutions as
 * implicit GEMMs. Included per (dtype, ISA) variant by instantiate.h after common/;
 * provides the registry row FN(gemm_kind) (common/kind.h). Its parameters: gemm/params.h;
 * its report: gemm/report.h (both once, not per variant).
 *
 * Layering (BLIS): pack -> macro-kernel -> micro-kernel; only VLEN/VREGS are ISA-specific.
 * Per (image n, group g) the convolution is the product
 *
 *      Y[g] (M x P)  =  W[g] (M x K)  *  B (K x P),      K = CG*KH*KW,  P = OH*OW
 *
 * where row k = (c, kh, kw) of B holds the input pixels tap k sees. B is never built
 * (no im2col): for a 1x1 stride-1 unpadded conv B *is* the input; otherwise a task copies
 * the input rows it needs into zero-padded phase planes in per-thread scratch, where every
 * row of B is a contiguous run at a fixed offset (see gemm_plan).
 *
 *   microkernels.h   ukr_MRxNV (pixel vectors), ukrc_MPxNV (channel vectors), their tables
 *   planner.h        cost model, tile choice, task split, K blocking, gemm_plan
 *   pack.h           weight packing into panels
 *   planes.h         phase-plane fills, tap offsets
 *   prefetch.h       task position, the next task's prefetch
 *   tasks.h          pointwise and phase-plane tasks, gemm_task
 *   twins.h, microkernel_test.h   test-only: plain twins of the micro-kernels, and
 *                    running one alone (the row's `tests`)
 */
#include "gemm/microkernels.h"
#include "gemm/planner.h"
#include "gemm/pack.h"
#include "gemm/planes.h"
#include "gemm/prefetch.h"
#include "gemm/tasks.h"
#if GCONV_TWINS
#include "gemm/twins.h"
#endif
#include "gemm/microkernel_test.h"

static const gconv_kind FN(gemm_kind) = {"gemm", sizeof(gemm_params), FN(gemm_plan),
                                         gemm_report, FN(gemm_weight_elems),
                                         FN(gemm_pack_weights), FN(gemm_task),
                                         {FN(gemm_ukr_list), FN(gemm_ukr_run)}};

#undef OFFSET_ELEMS
#undef MR_MAX
#undef NV_MAX
#undef N_UKR
#undef N_UKRC
#undef MP_MAX
#undef FLAT_PLANE_VECS
#undef GCONV_UKR
#undef GCONV_UKR_ENTRY
#undef GCONV_UKRC
#undef GCONV_UKRC_ENTRY
#undef GEMM_UKR_LIST
#undef GEMM_UKR_LIST_32
#undef GEMM_UKRC_LIST
#undef GEMM_UKRC_LIST_32
