// prof.h — opt-in per-op time accounting of the model's forward, backward and optimizer step, behind
// `grape bench train --profile` and `grape bench eval --profile` (the per-op tables of docs/BENCHMARKS.md).
// The ops are entered from the one thread that drives the step (their OpenMP and BLAS threads run inside them);
// time is charged to the innermost op, so nested ops (a norm inside the q/k path) are never counted twice. Off by
// default: then every hook is one predictable branch.
#ifndef GRAPE_CORE_PROF_H
#define GRAPE_CORE_PROF_H

typedef enum {
    PROF_OTHER, // everything outside the named ops: splits, copies, zeroing, data sampling, clipping
    PROF_GEMM,  // every linear layer and the lm head (core/gemm.h)
    PROF_ATTN_FWD,
    PROF_ATTN_BWD,
    PROF_NORM,   // RMSNorm forward and backward (residual norms and QK-RMSNorm)
    PROF_SWIGLU, // forward and backward
    PROF_CE,     // cross-entropy forward and backward
    PROF_EMBED,  // embedding forward and backward
    PROF_PE,     // the encodings' own work: rotations, bias factors, phases, KV-shift, their backward
    PROF_ADAMW,  // optimizer update incl. the gradient norm
    PROF_COUNT
} prof_op;

// Start accounting from zero; cpu_clock = 1 charges the calling thread's CPU time (exact with one thread, where
// every kernel runs on it; immune to other processes), 0 wall time.
void prof_start(int cpu_clock);
void prof_stop(void);
// Charge the time since the last switch to the running op, then run `op`; returns the op it interrupted.
prof_op prof_enter(prof_op op);
void prof_leave(prof_op prev);
// Seconds charged to op and the number of times it was entered since prof_start.
double prof_seconds(prof_op op);
long prof_calls(prof_op op);
const char *prof_name(prof_op op);

// Run `stmt` charged to op.
#define PROF(op, stmt)                                                                                                \
    do {                                                                                                              \
        prof_op prof_prev_ = prof_enter(op);                                                                          \
        stmt;                                                                                                         \
        prof_leave(prof_prev_);                                                                                       \
    } while (0)

#endif
