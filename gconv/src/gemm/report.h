/* gemm/report.h: the GEMM kind's plan as _kernels.pyx reports it: Plan.blocking (the
 * fields), Plan.path (a name) and Plan.path_reason (why, with the numbers that decided).
 * Once, not per variant; expects gemm/params.h and common/kind.h.
 *
 * Paths (the implementation, then the planner's choice):
 *   pointwise / B in place, MRxNV pixel-vector tiles
 *   pointwise / plane copy, MPxNV channel-vector tiles      (small images)
 *   general / phase planes, MRxNV pixel-vector tiles, masked stores | staged
 *   general / phase planes, MPxNV channel-vector tiles
 */
#ifndef GCONV_GEMM_REPORT_H
#define GCONV_GEMM_REPORT_H

static void gemm_report_path(const gemm_params *p, gconv_report *r)
{
    const char *impl = p->pointwise ? "pointwise" : "general";
    const int vl = p->vlen;
    if (p->direct_b) {
        gconv_report_path(r, "%s / B in place, %dx%d pixel-vector tiles", impl, p->MR, p->NV);
        gconv_report_say(r, "1x1, stride 1, no padding: B (K = %ld input channels x %ld "
                         "pixels) is the input, read in place, K in blocks of %ld; %dx%d "
                         "tiles: %d output channel%s x %d vector%s of %d pixels; channel-vector "
                         "tiles (%dx%d) through a plane copy would cost %.3g, not below %.3g "
                         "(0.9 x these tiles' cost)",
                         p->K, p->P, p->KC, p->MR, p->NV, p->MR, GCONV_PLURAL(p->MR), p->NV,
                         GCONV_PLURAL(p->NV), vl, p->pw_cv_mp,
                         p->pw_cv_nv, p->pw_cv_cost, p->pw_cv_bar);
        return;
    }
    const long nvec = (p->P + vl - 1) / vl;
    if (p->channel_vectors) {
        gconv_report_path(r, "%s / %s, %dx%d channel-vector tiles", impl,
                          p->pointwise ? "plane copy" : "phase planes", p->MR, p->NV);
        if (p->pointwise)
            gconv_report_say(r, "1x1 on a %ldx%ld image: its %ld pixels fill %ld vectors of "
                             "%d (%ld %% of their lanes), so channel-vector tiles through a "
                             "plane copy cost %.3g, below %.3g (0.9 x B read in place)",
                             p->OH, p->OW, p->P, nvec, vl, 100 * p->P / (nvec * vl),
                             p->pw_cv_cost, p->pw_cv_bar);
        else
            gconv_report_say(r, "%ldx%ld kernel, stride (%ld, %ld), dilation (%ld, %ld): "
                             "input rows zero-padded into %ld phase plane(s) per channel; on "
                             "a %ldx%ld output, channel-vector tiles cost %.3g, below the "
                             "pixel-vector tiles' %.3g (wide rows of %ld for %ld outputs)",
                             p->KH, p->KW, p->SH, p->SW, p->DH, p->DW, p->SH * p->SW, p->OH,
                             p->OW, p->cv_cost, p->cv_bar, p->PW, p->OW);
        gconv_report_say(r, "; %dx%d tiles: %d pixel%s of a row x %d vector%s of %d output "
                         "channels (%ld per group)", p->MR, p->NV, p->MR, GCONV_PLURAL(p->MR),
                         p->NV, GCONV_PLURAL(p->NV), vl, p->M);
    } else {
        gconv_report_path(r, "%s / phase planes, %dx%d pixel-vector tiles, %s", impl, p->MR,
                          p->NV, p->direct_out ? "masked stores" : "staged");
        gconv_report_say(r, "%ldx%ld kernel, stride (%ld, %ld), dilation (%ld, %ld): input "
                         "rows zero-padded into %ld phase plane(s) per channel, wide rows of "
                         "%ld for %ld outputs; %dx%d tiles (%d output channel%s x %d vector%s "
                         "of %d pixels) cost %.3g, the best channel-vector tiles (%dx%d) "
                         "%.3g; K = %ld in blocks of %ld; ",
                         p->KH, p->KW, p->SH, p->SW, p->DH, p->DW, p->SH * p->SW, p->PW, p->OW,
                         p->MR, p->NV, p->MR, GCONV_PLURAL(p->MR), p->NV, GCONV_PLURAL(p->NV),
                         vl, p->cv_bar, p->cv_mp, p->cv_nv,
                         p->cv_cost, p->K, p->KC);
        if (p->direct_out)
            gconv_report_say(r, "written straight to the output by masked stores (rows of "
                             "%ld outputs, at least a vector of %d)", p->OW, vl);
        else if (p->OW < vl)
            gconv_report_say(r, "staged, then copied out: rows of %ld outputs are narrower "
                             "than a vector of %d", p->OW, vl);
        else
            gconv_report_say(r, "staged, then copied out: this ISA has no masked stores");
    }
    if (p->flat_planes)
        gconv_report_say(r, "; planes of %ld x %ld filled as flat runs (%ld channel%s)",
                         p->PROWS, p->PW, p->CG, GCONV_PLURAL(p->CG));
}

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
    gemm_report_path(p, r);
    gconv_report_say(r, "; %ld task%s of up to %ld output channel%s x %ld %s", p->n_tasks,
                     GCONV_PLURAL(p->n_tasks), p->MB, GCONV_PLURAL(p->MB), p->NC,
                     p->direct_b ? "pixels" : p->NC == 1 ? "row" : "rows");
    if (p->pf_stride > 0)
        gconv_report_say(r, "; input + output over 4 MiB: each task prefetches the next one's "
                         "data");
    if (p->task_chunk > 1)
        gconv_report_say(r, "; threads take runs of %ld tasks", p->task_chunk);
}

#endif
