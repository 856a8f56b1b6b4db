// rotation.h — the multiplicative action G(n) in SO(d) (internal contract between pe.c and the rotations).
// The public entry points grape_rot_forward/backward and grape_phase_* live in the rotation files.
#ifndef GRAPE_PE_ROTATION_H
#define GRAPE_PE_ROTATION_H

#include "grape.h"

typedef struct rot_state rot_state;

// Validate the rotation part of cfg and allocate its tables.
grape_status rot_create(rot_state **out, const grape_pe_config *cfg);
void rot_free(rot_state *r);
size_t rot_num_params(const rot_state *r);
// Describe the rotation's parameter tensors into out (room for max entries) at offsets from base; returns count.
int rot_param_tensors(const rot_state *r, grape_param_info *out, int max, size_t base);
grape_status rot_init_params(const rot_state *r, float *params, uint64_t seed);
// Derive frequencies, bases, frames from params (the rotation's own slice).
grape_status rot_prepare(rot_state *r, const float *params);
// Size the workspace for forward and backward calls of up to max_B × max_T tokens (grape_pe_reserve).
grape_status rot_reserve(rot_state *r, int max_B, int max_T);
// xPos: out (D) = the factor ζ_i^(delta/sb) of each rotary dim's pair (1 on the tail dims, and everywhere for the
// other kinds), by which a query's scale grows when its anchor moves delta positions earlier: the query rotated
// against anchor c − delta is the one rotated against c times out (the KV cache's older key blocks).
void rot_xpos_query_ratio(float *out, const grape_pe *pe, double delta);

#endif
