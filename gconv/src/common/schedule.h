/* common/schedule.h: task scheduling helpers every kind's planner uses (per variant: they
 * depend on sizeof(T)). Expects gconv_problem and T (instantiate.h). */

static inline long FN(ceil_div)(long a, long b) { return (a + b - 1) / b; }

/* A call whose input and output together exceed 4 MiB streams them from L3 or memory. */
static int FN(call_streams)(const gconv_problem *p)
{
    const double bytes = (double)sizeof(T) * p->N * (p->C_in * p->H * p->W +
                                                    p->C_out * p->OH * p->OW);
    return bytes > 4.0 * 1024 * 1024;
}

/* Tasks a thread takes at a time (every kind's task_chunk): for a call that streams, runs
 * of consecutive tasks, about 4 per thread, so that each thread reads and writes long
 * contiguous stretches of memory, not every other task's (which the hardware prefetchers
 * follow badly). Measured at 2 threads against one task at a time, layer calls in
 * alternating processes (two sets of pairs, the machine noisy): batch-8 MobileNetV2's
 * depthwise layer a median 9-17 % faster (single pairs from 9 % slower to 27 % faster),
 * batch-8 ResNeXt 56x56 5-10 % faster. Calls in cache keep single tasks: the finest
 * balance between the cores (runs there: no gain in a C harness, -3..+1 %). */
static long FN(task_chunk)(long n_tasks, int n_threads, int streams)
{
    if (n_threads < 2 || !streams) return 1;
    const long chunk = n_tasks / (4L * n_threads);
    return chunk > 1 ? chunk : 1;
}
