// rot_kinds.h — the table of multiplicative encoding kinds (GRAPE §3), one row per grape_rot_kind: its name and
// documentation (the row `grape encodings` prints), what it is made of (learned frequencies and their storage, a
// contextual phase, the xPos decay, a learned frame), hence its parameters and their init, and the per-token input
// channels the model computes for it. The dispatcher (rot_config.c, rot_table.c, rotation.c) and the model read
// these properties instead of testing kinds; the kinds' kernels (rope.c ... grape_m_nc.c) stay specialised.
// Additive kinds have their own table (bias_kinds.h). Adding an encoding: docs/ARCHITECTURE.md.
#ifndef GRAPE_PE_ROT_KINDS_H
#define GRAPE_PE_ROT_KINDS_H

#include <stddef.h>

#include "grape.h"
#include "pe/kind_table.h"

// A learned frame F of G(n) = F R(nθ) Fᵀ: none (coordinate planes), the Cayley basis B (R×R, grape_m_basis.c) or
// the rank-r frame E (grape_m_nc.c).
typedef enum { ROT_FRAME_NONE, ROT_FRAME_BASIS, ROT_FRAME_NC } rot_frame_kind;

typedef struct {
    grape_pe_info info;    // name, family, parameters, source
    int turns;             // 0 only for nope (L = 0): no rotary dims, nothing to do
    // Parameters, per set (one, or one per head with per_head where per_head_sets), in this order:
    //   learned_freq: "log_freq" (R/2, r/2 for a frame), θ = exp(λ/s) with s = log_freq_scale when x16 (the x16
    //     trick, official GRAPE-M nonctx) else 1 (official GRAPE-M ctx); init λ = s·ln θ_RoPE (after any context
    //     extension), so the kind starts as RoPE;
    //   frame: skew_name (basis: R(R-1)/2, nc: rR - r(r+1)/2 - r/2), init 0 (B = I, E = the first r coordinates).
    int learned_freq, x16, per_head_sets;
    rot_frame_kind frame;
    const char *skew_name;
    int phase;             // angles Φ_t θ from the contextual phase (positions.phase) instead of n θ
    int decay;             // xPos: pairs scaled ζ_i^((n - c)/scale_base), LEX §3
    int norm_first;        // the model applies QK-RMSNorm before the rotation (xPos keeps its decay)
    token_input_desc inputs[KIND_MAX_INPUTS]; // the token inputs the model computes for it (name NULL ends)
} rot_kind;

// The row of kind k; that of nope for a k outside [0, GRAPE_ROT_COUNT).
const rot_kind *rot_kind_of(grape_rot_kind k);
// Kind whose name is the len bytes at s, or -1.
int rot_kind_find(const char *s, size_t len);

#endif
