/* gemm/report.h: the GEMM kind's plan as _kernels.pyx reports it (Plan.blocking). Once,
 * not per variant; expects gemm/params.h and common/kind.h. */
#ifndef GCONV_GEMM_REPORT_H
#define GCONV_GEMM_REPORT_H

static void gemm_report(const void *params, gconv_report *r)
{
    const gemm_params *p = params;
    gconv_report_begin(r, p->n_tasks, p->task_chunk, p->scratch_elems, p->zero_scratch);
    GCONV_REPORT_NUM(r, "MR", p->MR);
    GCONV_REPORT_NUM(r, "NV", p->NV);
    GCONV_REPORT_NUM(r, "VLEN", p->vlen);
    GCONV_REPORT_NUM(r, "KC", p->KC);
    GCONV_REPORT_NUM(r, "NC", p->NC);
    GCONV_REPORT_NUM(r, "MB", p->MB);
    GCONV_REPORT_NUM(r, "n_tasks", p->n_tasks);
    GCONV_REPORT_FLAG(r, "direct_b", p->direct_b);
    GCONV_REPORT_NUM(r, "PW", p->PW);
    GCONV_REPORT_FLAG(r, "channel_vectors", p->channel_vectors);
    GCONV_REPORT_FLAG(r, "direct_out", p->direct_out);
    GCONV_REPORT_FLAG(r, "prefetch", p->pf_stride > 0);
    GCONV_REPORT_FLAG(r, "flat_planes", p->flat_planes);
    GCONV_REPORT_NUM(r, "task_chunk", p->task_chunk);
}

#endif
