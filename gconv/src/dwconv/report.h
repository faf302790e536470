/* dwconv/report.h: the depthwise kind's plan as _kernels.pyx reports it (Plan.blocking).
 * Once, not per variant; expects dwconv/params.h and common/kind.h. */
#ifndef GCONV_DWCONV_REPORT_H
#define GCONV_DWCONV_REPORT_H

static const char *const dw_mode_names[] = {"row", "plane", "lanes"};

static void dw_report(const void *params, gconv_report *r)
{
    const dw_params *p = params;
    gconv_report_begin(r, p->n_tasks, p->task_chunk, p->scratch_elems, p->zero_scratch);
    GCONV_REPORT_TEXT(r, "mode", dw_mode_names[p->mode]);
    GCONV_REPORT_TEXT(r, "kernel", gconv_dw_kernels[p->kernel_id].name);
    GCONV_REPORT_NUM(r, "kernel_id", p->kernel_id);
    GCONV_REPORT_NUM(r, "VLEN", p->vlen);
    GCONV_REPORT_NUM(r, "strip_channels", p->strip_channels);
    GCONV_REPORT_NUM(r, "sub_rows", p->sub_rows);
    GCONV_REPORT_NUM(r, "rows_per_task", p->rows_per_task);
    GCONV_REPORT_NUM(r, "groups_per_task", p->groups_per_task);
    GCONV_REPORT_NUM(r, "n_tasks", p->n_tasks);
    GCONV_REPORT_NUM(r, "task_chunk", p->task_chunk);
}

#endif
