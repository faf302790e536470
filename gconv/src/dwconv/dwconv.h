/* dwconv/dwconv.h: the depthwise kind (one input channel per group, M = C_out/G output
 * channels per input channel: M > 1 is a depth multiplier). Included per (dtype, ISA)
 * variant by instantiate.h after common/, whose vector types (common/simd.h), transposes,
 * epilogue and task scheduling it uses; nothing from gemm/. Provides the registry row
 * FN(dw_kind) (common/kind.h).
 *
 *   simd.h           inlining/register macros, specialisation, half vectors, masked loads
 *   epilogue.h       the vectorised epilogue
 *   row_strip.h      row mode's register strips (unrolled and generic)
 *   row_kernels.h    row mode's kernels by id (DW_KERNEL), their tables
 *   plane_kernels.h  plane mode's kernels, their table
 *   lanes.h          lanes mode's tiles and task
 *   lanes_any.h      lanes mode for any kernel: runtime taps, bands of rows (the general
 *                    engine: shapes without an unrolled kernel, and small rows)
 *   planner.h        kernel id, mode, direct rows, scratch, task split (dw_plan)
 *   tasks.h          copies into scratch, dw_task
 *   twins.h, microkernel_test.h   test-only: plain twins of the kernels, and running one
 *                    alone (the row's `tests`)
 *
 * Row and plane mode are vectorised along the output width, the lanes modes across
 * channels. Four modes:
 *
 * Row mode (the general one)
 *   task      = (image n, block of MB groups, block of NC output rows). A task writes only
 *               its own rows of the M output channels of its groups.
 *   strip     = RB output rows x NV vectors along the width x MM output channels of the
 *               group (MM = 2: a depth multiplier's channels in pairs), accumulated in
 *               registers. Each input vector loaded is used for every (row, tap, channel)
 *               it feeds: the RB rows share their common input rows, the MM channels share
 *               everything. A row's vectors go in groups of 3 and 2; its last vector is
 *               pulled back to end at OW (the overlap is recomputed identically), or is a
 *               half-width vector when the ragged end is at most half a vector (3x3).
 *   kernels   = 3x3, 5x5, 7x7 at stride 1 and 2, and 3x3 stride 1 dilation 2, with KH, KW,
 *               S, D, RB, NV, MM all compile-time (fully unrolled taps). At stride 2 on
 *               512-bit floats each input row is split once into its even and odd columns
 *               in order, and every tap is one of them moved by a valignd (S2V in
 *               dw_strip); elsewhere a strip loads two vectors of input per tap pair and
 *               splits them with in-lane shuffles (shufps), which leaves the outputs in a
 *               fixed lane permutation, undone by one permute per stored vector.
 *               The generic kernel (any KH, KW, strides, dilations) has runtime tap loops
 *               over strips of DW_RB rows that share their input rows as the unrolled
 *               ones do, its tap offsets and row-to-kernel-row map computed once per task
 *               (dw_generic_taps) instead of divided out per tap.
 *   input     = padded copy: a sub-block of SB output rows of one group has its input rows
 *               copied into per-thread scratch with the zero padding around them (zero
 *               rows above/below the input). The scratch is zeroed once, before a thread's
 *               first task (zero_scratch), and copies write only the input's values,
 *               so the padding stays zero: no per-task clearing (measured: clearing
 *               the scratch per task cost as much as the copies themselves). For the generic kernel at a stride
 *               S > 1 the rows are deinterleaved into S phases (phase ph holds padded
 *               columns ph, ph+S, ...) so that every tap is one contiguous load:
 *                   padded column c*S + kw*D  ->  phase (kw*D) % S, offset c + (kw*D) / S.
 *               Direct (3x3, float32): the rows whose input rows all exist read the input
 *               in place, no copy; the vectors at a row's two ends load across the row
 *               boundary and zero the lanes that fall in the padding (see dw_strip). Used
 *               at stride 2, and at stride 1 when at most half a row's vectors need masks.
 *
 * Plane mode (stride 1, OW == W < VLEN: narrow planes with "same" padding)
 *   The channel's plane is copied whole between zero rows and the kernel runs along the
 *   flattened plane: output position f = oh*W + ow reads plane[f + kh*DH*W + kw*DW - PL]
 *   since input and output rows have the same length. Taps that would wrap into the next
 *   row (the left/right padding) are masked per lane from the lane's column f mod W. A
 *   vector thus covers several short rows, and the output is written straight to y.
 *
 * Lanes mode (3x3, stride 1, "same" padding, M == 1, planes of at least a vector of pixels
 * and at most 16x16, at least VLEN channels; AVX2 and AVX-512)
 *   Small planes waste lanes and need a misaligned load per FMA in the other modes, so here
 *   a vector holds one pixel of VLEN channels (oneDNN's nChw16c, per block in scratch).
 *   task      = (image n, MB channels: blocks of VLEN). Per block: VLEN x VLEN transposes
 *               put the channels' pixels, VLEN at a time, into a zero-bordered grid of
 *               (H+2) x (W+2) pixel vectors (the border is zero from the start and never
 *               written); 9 weight vectors (tap t of each channel) and a bias vector;
 *               register tiles of 2 rows x up to 7 columns (AVX2: 4) accumulate the taps
 *               from aligned grid loads, no masks, each loaded vector feeding up to 6 FMAs;
 *               the results go to a pixel-major stage, transposed back into the NCHW output
 *               planes; the epilogue on the stage (activation alone: elementwise, all
 *               lanes at once) or per channel after the transposes (with a residual). The plane's last pixel block is
 *               pulled back to end at H*W (rewrites equal values); a last block of fewer
 *               than VLEN channels reads the last valid channel again in the empty lanes
 *               and stores those lanes to a throw-away vector.
 *
 * Lanes mode for any kernel (any kernel size, stride, dilation, padding, multiplier; at
 * least VLEN/2 channels): lanes mode's layout with the taps in a runtime loop over a
 * zero-padded grid whose columns are split by the stride's phase, planes in bands of output
 * rows; see dwconv/lanes_any.h. The planner sends it every shape without an unrolled row
 * kernel and rows of at most a vector (but 3x3 stride 1 plane mode on rows of half a vector
 * or more, and few channels on long rows stay in row mode).
 *
 * Epilogue: bias seeds the accumulators; the residual and the activation run over each
 * strip's rows right after they are stored (still in L1).
 *
 * Determinism: which mode, kernel, vector layout and accumulation order an output element
 * gets depends only on the problem, never on the task split, so results are bitwise
 * identical for any thread count.
 *
 * Which variants are compiled (see DW_SPEC): the unrolled kernels exist for AVX2 and
 * AVX-512; in float64 only the 3x3 ones; the SSE2 baseline runs the generic kernel.
 *
 * Parameters: dw_params (dwconv/params.h): the problem, then the mode, the kernel id and
 * the blocking dw_plan chose.
 */

/* Debug-info variable tracking costs more compile time than anything else on these
 * large unrolled functions (the build adds -g); line info is kept. */
#pragma GCC push_options
#pragma GCC optimize("no-var-tracking", "no-var-tracking-assignments")

#include "dwconv/simd.h"
#include "dwconv/epilogue.h"
#include "dwconv/row_strip.h"
#include "dwconv/row_kernels.h"
#include "dwconv/plane_kernels.h"
#include "dwconv/lanes.h"
#include "dwconv/lanes_any.h"
#include "dwconv/planner.h"
#include "dwconv/tasks.h"
#if GCONV_TWINS
#include "dwconv/twins.h"
#endif
#include "dwconv/microkernel_test.h"

static const gconv_kind FN(dw_kind) = {"depthwise", sizeof(dw_params), FN(dw_plan), dw_report,
                                       NULL, NULL, FN(dw_task),
                                       {FN(dw_ukr_list), FN(dw_ukr_run)}};

#undef DW_HVEC
#undef DW_HLOADU
#undef DW_HSTOREU
#undef DW_LO
#undef DW_INLINE
#undef DW_IN_REG
#undef DW_OPAQUE
#undef DW_RB
#undef DW_RB_D2
#undef DW_NV_D2
#undef DW_RB_MAX
#undef DW_NV
#undef DW_NV2
#undef DW_E
#undef DW_KERNEL
#undef DW_LNB
#undef DW_ANB
#undef DW_COL_ADVANCE
#undef DW_PLANE_KERNEL
#undef DW_SPECIALISE
#undef DW_SPEC
#undef DW_SPEC32
#undef DW_S2V
#undef DW_S2_SHIFT

#pragma GCC pop_options
