// bias.h — the additive action (internal contract between pe.c and the biases).
// The public entry points grape_bias_* live in the bias files.
#ifndef GRAPE_PE_BIAS_H
#define GRAPE_PE_BIAS_H

#include "grape.h"

typedef struct bias_state bias_state;

// Validate the bias part of cfg and allocate its tables.
grape_status bias_create(bias_state **out, const grape_pe_config *cfg);
void bias_free(bias_state *s);
size_t bias_num_params(const bias_state *s);
// Describe the bias's parameter tensors into out (room for max entries) at offsets from base; returns count.
int bias_param_tensors(const bias_state *s, grape_param_info *out, int max, size_t base);
grape_status bias_init_params(const bias_state *s, float *params, uint64_t seed);
// Derive effective slopes and normalised probes from params (the bias's own slice).
grape_status bias_prepare(bias_state *s, const float *params);

#endif
