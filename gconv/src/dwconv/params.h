/* dwconv/params.h: the depthwise kind's kernel ids (once, not per variant). Row mode has an
 * unrolled kernel per (square kernel size, stride, dilation) below and a generic one (id 0)
 * for everything else; the list makes the DW_K_* enum and the table _kernels.pyx exports
 * as DW_KERNELS (tests read the ids from there).
 *
 *   X(ID, kernel size, stride, dilation, name)
 */
#ifndef GCONV_DWCONV_PARAMS_H
#define GCONV_DWCONV_PARAMS_H

#define GCONV_DW_KERNEL_LIST(X)                                                            \
    X(GENERIC, 0, 0, 0, "generic")                                                         \
    X(3S1, 3, 1, 1, "3x3")                                                                 \
    X(3S2, 3, 2, 1, "3x3 stride 2")                                                        \
    X(3S1D2, 3, 1, 2, "3x3 dilation 2")                                                    \
    X(5S1, 5, 1, 1, "5x5")                                                                 \
    X(5S2, 5, 2, 1, "5x5 stride 2")                                                        \
    X(7S1, 7, 1, 1, "7x7")                                                                 \
    X(7S2, 7, 2, 1, "7x7 stride 2")

#define GCONV_DW_K_ENUM(id, k, s, d, name) DW_K_##id,
enum { GCONV_DW_KERNEL_LIST(GCONV_DW_K_ENUM) DW_N_KERNELS };
#undef GCONV_DW_K_ENUM

typedef struct { const char *name; int k, stride, dilation; } gconv_dw_kernel_info;
#define GCONV_DW_K_INFO(id, k, s, d, name) {name, k, s, d},
static const gconv_dw_kernel_info gconv_dw_kernels[DW_N_KERNELS] = {
    GCONV_DW_KERNEL_LIST(GCONV_DW_K_INFO)
};
#undef GCONV_DW_K_INFO

#endif
