/* dwconv/report.h: the depthwise kind's plan as _kernels.pyx reports it: Plan.blocking (the
 * fields), Plan.path (a name) and Plan.path_reason (why, with the numbers that decided).
 * Once, not per variant; expects dwconv/params.h and common/kind.h.
 *
 * Paths: depthwise / row mode | plane mode | lanes mode, then the kernel ("3x3 unrolled" or
 * "generic kernel", see GCONV_DW_KERNEL_LIST), then ", input read in place" (row mode's
 * direct rows) and ", channels in pairs" (a depth multiplier's paired strips).
 */
#ifndef GCONV_DWCONV_REPORT_H
#define GCONV_DWCONV_REPORT_H

static const char *const dw_mode_names[] = {"row", "plane", "lanes", "lanes-any"};

/* Why the kernel that runs is the generic one (p->unrolled == 0). */
static void dw_report_generic(const dw_params *p, gconv_report *r)
{
    if (p->lanes_declined == DW_LANES_NO_ISA) {     /* vectors under 32 bytes */
        gconv_report_say(r, "; this ISA (vectors of %d) runs the generic kernel only", p->vlen);
        return;
    }
    if (p->kernel_id != DW_K_GENERIC) {            /* plane mode has no unrolled one */
        gconv_report_say(r, "; plane mode has no unrolled %s kernel",
                         gconv_dw_kernels[p->kernel_id].name);
        return;
    }
    for (int id = 1; id < DW_N_KERNELS; id++) {
        const gconv_dw_kernel_info *k = &gconv_dw_kernels[id];
        if (p->KH == k->k && p->KW == k->k && p->SH == k->stride && p->SW == k->stride &&
            p->DH == k->dilation && p->DW == k->dilation) {
            gconv_report_say(r, "; float64 has unrolled 3x3 kernels (stride 1 and 2) only");
            return;
        }
    }
    gconv_report_say(r, "; no unrolled kernel for %ldx%ld, stride (%ld, %ld), dilation "
                     "(%ld, %ld): runtime taps", p->KH, p->KW, p->SH, p->SW, p->DH, p->DW);
}

static void dw_report_path(const dw_params *p, gconv_report *r)
{
    const int vl = p->vlen;
    if (p->mode == DW_MODE_LANES_ANY)
        gconv_report_path(r, "depthwise / lanes mode, runtime taps");
    else
        gconv_report_path(r, "depthwise / %s mode, ", dw_mode_names[p->mode]);
    if (p->unrolled)
        gconv_report_path(r, "%s unrolled", gconv_dw_kernels[p->kernel_id].name);
    else if (p->mode != DW_MODE_LANES_ANY)
        gconv_report_path(r, "generic kernel");
    if (p->direct_rows) gconv_report_path(r, ", input read in place");
    if (p->strip_channels == 2) gconv_report_path(r, ", channels in pairs");

    if (p->mode == DW_MODE_LANES) {
        gconv_report_say(r, "3x3, stride 1, same padding, one output channel per channel; "
                         "%ldx%ld plane (at least a vector of %d pixels, at most 16x16) and "
                         "%ld channels (at least %d): a vector holds one pixel of %d channels",
                         p->H, p->W, vl, p->G, vl, vl);
        return;
    }
    if (p->mode == DW_MODE_LANES_ANY) {
        gconv_report_say(r, "%ldx%ld, stride (%ld, %ld), dilation (%ld, %ld), multiplier "
                         "%ld: ", p->KH, p->KW, p->SH, p->SW, p->DH, p->DW, p->M);
        if (p->kernel_id == DW_K_GENERIC)
            gconv_report_say(r, "no unrolled row kernel");
        else                                    /* dw_any_fits: rows of at most a vector */
            gconv_report_say(r, "output rows of %ld, at most a vector of %d", p->OW, vl);
        gconv_report_say(r, "; %ld channels fill at least half a vector: a vector holds one "
                         "pixel of %d channels, taps in a runtime loop over a zero-padded "
                         "grid of %ld output row%s' input", p->G, vl, p->rows_per_task,
                         GCONV_PLURAL(p->rows_per_task));
        return;
    }
    if (p->mode == DW_MODE_PLANE)
        gconv_report_say(r, "stride 1 and output rows as wide as the input's (%ld), narrower "
                         "than a vector of %d: each %ldx%ld plane runs as one flat row, the "
                         "wrapped taps masked per lane", p->W, vl, p->H, p->W);
    else
        gconv_report_say(r, "output rows of %ld in vectors of %d along the width; input rows "
                         "copied into scratch %ld output rows at a time", p->OW, vl,
                         p->sub_rows);
    if (p->direct_rows)
        gconv_report_say(r, "; rows whose input rows all exist read the input in place, the "
                         "padding columns masked (3x3, float32, few masked vectors)");
    if (p->unrolled)
        gconv_report_say(r, "; %s unrolled: taps, stride and dilation compiled in",
                         gconv_dw_kernels[p->kernel_id].name);
    else
        dw_report_generic(p, r);
    if (p->strip_channels == 2)
        gconv_report_say(r, "; depth multiplier %ld: output channels in pairs per strip",
                         p->M);
    switch (p->lanes_declined) {
    case DW_LANES_SMALL_PLANE:
        gconv_report_say(r, "; lanes mode declined: the %ldx%ld plane has fewer pixels than a "
                         "vector of %d", p->H, p->W, vl);
        break;
    case DW_LANES_LARGE_PLANE:
        gconv_report_say(r, "; lanes mode declined: the %ldx%ld plane is over 16x16", p->H,
                         p->W);
        break;
    case DW_LANES_FEW_CHANNELS:
        gconv_report_say(r, "; lanes mode declined: %ld channels, fewer than a vector of %d",
                         p->G, vl);
        break;
    default: break;
    }
}

static void dw_report(const void *params, gconv_report *r)
{
    const dw_params *p = params;
    gconv_report_begin(r, p->n_tasks, p->task_chunk, p->scratch_elems, p->zero_scratch);
    GCONV_REPORT_TEXT(r, "mode", dw_mode_names[p->mode]);
    GCONV_REPORT_TEXT(r, "kernel", gconv_dw_kernels[p->kernel_id].name);
    GCONV_REPORT_NUM(r, "kernel_id", p->kernel_id);
    GCONV_REPORT_FLAG(r, "unrolled", p->unrolled);
    GCONV_REPORT_FLAG(r, "direct_rows", p->direct_rows);
    GCONV_REPORT_NUM(r, "VLEN", p->vlen);
    GCONV_REPORT_NUM(r, "strip_channels", p->strip_channels);
    GCONV_REPORT_NUM(r, "sub_rows", p->sub_rows);
    GCONV_REPORT_NUM(r, "rows_per_task", p->rows_per_task);
    GCONV_REPORT_NUM(r, "groups_per_task", p->groups_per_task);
    GCONV_REPORT_NUM(r, "n_tasks", p->n_tasks);
    GCONV_REPORT_NUM(r, "task_chunk", p->task_chunk);
    dw_report_path(p, r);
    gconv_report_say(r, "; %ld task%s of up to %ld channel%s x %ld row%s", p->n_tasks,
                     GCONV_PLURAL(p->n_tasks), p->groups_per_task,
                     GCONV_PLURAL(p->groups_per_task), p->rows_per_task,
                     GCONV_PLURAL(p->rows_per_task));
    if (p->task_chunk > 1)
        gconv_report_say(r, "; input + output over 4 MiB: threads take runs of %ld tasks",
                         p->task_chunk);
}

#endif
