// prof.c — see prof.h. One global state: the ops are entered from a single driving thread.
#include "core/prof.h"

#include <time.h>

typedef struct {
    int on, cpu;
    prof_op cur;
    double last, sec[PROF_COUNT];
    long calls[PROF_COUNT];
} prof_state;

static prof_state P;

static double now(void) {
    struct timespec ts;
    clock_gettime(P.cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void prof_start(int cpu_clock) {
    P = (prof_state){.on = 1, .cpu = cpu_clock, .cur = PROF_OTHER};
    P.last = now();
}

void prof_stop(void) {
    if (P.on) prof_enter(PROF_OTHER);
    P.on = 0;
}

static void charge(void) {
    double t = now();
    P.sec[P.cur] += t - P.last;
    P.last = t;
}

prof_op prof_enter(prof_op op) {
    if (!P.on) return PROF_OTHER;
    charge();
    prof_op prev = P.cur;
    P.cur = op;
    P.calls[op]++;
    return prev;
}

void prof_leave(prof_op prev) {
    if (!P.on) return;
    charge();
    P.cur = prev;
}

double prof_seconds(prof_op op) { return P.sec[op]; }
long prof_calls(prof_op op) { return P.calls[op]; }

const char *prof_name(prof_op op) {
    static const char *const names[PROF_COUNT] = {"other", "GEMM", "attention forward", "attention backward",
                                                  "RMSNorm", "SwiGLU", "cross-entropy", "embedding",
                                                  "encodings", "AdamW"};
    return names[op];
}
