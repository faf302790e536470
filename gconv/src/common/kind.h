/* common/kind.h: what a kind (a family of kernels: GEMM, depthwise, ...) provides for each
 * (dtype, ISA) variant: one row of the registry (registry.h), and the report a plan gives
 * back. The entry points take the kind's parameters and the arrays as void pointers, so
 * that one row type serves every kind and dtype; each kind casts them to its own types
 * (its parameters begin with the problem, common/problem.h). Once, not per variant. */
#ifndef GCONV_COMMON_KIND_H
#define GCONV_COMMON_KIND_H

/* What the caller decided before planning: bits of plan()'s flags. */
enum {
    GCONV_PLAN_POINTWISE = 1,   /* GEMM: the Pointwise implementation runs this problem
                                   (1x1, stride 1, unpadded), so B may be read in place */
};

/* One entry of a plan's blocking, as explain() and the tests see it. */
typedef struct {
    const char *name;
    long value;
    const char *text;           /* a word instead of a number (a mode's name), or NULL */
    int is_flag;                /* a yes / no (Python: a bool) */
} gconv_field;

#define GCONV_MAX_FIELDS 24

/* A plan as _kernels.pyx sees it, filled by the kind's report(): the schedule every kind
 * has, its own blocking by name, and the path the planner chose: a name ("depthwise /
 * lanes mode, 3x3 unrolled") and the reason, with the numbers that decided it. */
typedef struct {
    long n_tasks;               /* tasks of one call */
    long task_chunk;            /* consecutive tasks a thread takes at a time */
    long scratch_elems;         /* per-thread scratch, in elements */
    int zero_scratch;           /* 1: zero each thread's scratch before its first task */
    int n_fields;
    gconv_field fields[GCONV_MAX_FIELDS];
    char path[128];
    char reason[1024];
} gconv_report;

/* Start a report: the schedule every kind has, no fields yet. */
static inline void gconv_report_begin(gconv_report *r, long n_tasks, long task_chunk,
                                      long scratch_elems, int zero_scratch)
{
    r->n_tasks = n_tasks;
    r->task_chunk = task_chunk;
    r->scratch_elems = scratch_elems;
    r->zero_scratch = zero_scratch;
    r->n_fields = 0;
    r->path[0] = r->reason[0] = 0;
}

/* Append printf-style text to buf (size bytes, NUL-terminated); text past the end is
 * cut. gconv_report_path appends to a report's path name, gconv_report_say to its reason. */
static inline __attribute__((format(printf, 3, 4))) void gconv_report_printf(
    char *buf, size_t size, const char *fmt, ...)
{
    const size_t used = strlen(buf);
    if (used + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}
#define gconv_report_path(r, ...) gconv_report_printf((r)->path, sizeof((r)->path), __VA_ARGS__)
#define gconv_report_say(r, ...) gconv_report_printf((r)->reason, sizeof((r)->reason), __VA_ARGS__)

/* Add one named entry to a report's blocking. */
static inline void gconv_report_add(gconv_report *r, const char *name, long value,
                                    int is_flag, const char *text)
{
    if (r->n_fields >= GCONV_MAX_FIELDS) return;
    gconv_field *f = &r->fields[r->n_fields++];
    f->name = name;
    f->value = value;
    f->is_flag = is_flag;
    f->text = text;
}
#define GCONV_REPORT_NUM(r, name, v) gconv_report_add((r), (name), (long)(v), 0, NULL)
#define GCONV_REPORT_FLAG(r, name, v) gconv_report_add((r), (name), (v) ? 1 : 0, 1, NULL)
#define GCONV_REPORT_TEXT(r, name, s) gconv_report_add((r), (name), 0, 0, (s))
#define GCONV_PLURAL(n) ((n) == 1 ? "" : "s")

/* one task of a plan: its block of y = act(conv(x, w) + bias + residual); bias and
 * residual may be NULL; scratch: the plan's per-thread scratch */
typedef void (*gconv_task_fn)(const void *params, const void *x, const void *w,
                              const void *bias, const void *residual, void *y,
                              long task_index, void *scratch);

typedef struct {
    const char *name;           /* the kind's name, as Python sees it (_kernels.KINDS) */
    size_t params_size;         /* bytes of its parameter struct */
    /* fill the blocking of params (the caller filled its problem, the rest is zero) for
     * n_threads threads; flags: GCONV_PLAN_* */
    void (*plan)(void *params, int n_threads, int flags);
    /* the schedule and the blocking, named (kept by _kernels.pyx's Plan) */
    void (*report)(const void *params, gconv_report *out);
    /* elements of the kernel's weight layout, and in *tmp_elems of the buffer packing
     * needs; NULL (and pack_weights NULL): the kernel reads the weights as given,
     * (C_out, C_in/G, KH, KW) C-contiguous */
    long (*weight_elems)(const void *params, long *tmp_elems);
    void (*pack_weights)(const void *params, const void *w, void *packed, void *tmp);
    gconv_task_fn task;
    gconv_ukr_tests tests;      /* test-only: its micro-kernels, alone and as twins */
} gconv_kind;

#endif
