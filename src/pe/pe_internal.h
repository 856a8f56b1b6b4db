// pe_internal.h — the grape_pe object: a rotation part and a bias part, each owning its parameters.
// The encoding's parameter vector is [rotation params | bias params].
#ifndef GRAPE_PE_INTERNAL_H
#define GRAPE_PE_INTERNAL_H

#include "grape.h"
#include "pe/bias.h"
#include "pe/rotation.h"

#define GRAPE_PE_MAX_TENSORS 16
#define GRAPE_PE_MAX_INPUTS 8 // token input channels: the rotation's, the bias's, KV-shift's two

// Token input channels: the rotation kind's (from its row, rot_kinds.c), then the bias kind's (bias_kinds.c), then
// KV-shift's. A part reads its own channels by index: in[pe->in_rot + i], in[pe->in_bias + i].

struct grape_pe {
    grape_pe_config cfg;
    rot_state *rot;
    bias_state *bias;
    size_t n_rot_params;  // rotation params start at offset 0
    size_t n_bias_params; // bias params start at offset n_rot_params
    int n_tensors;
    grape_param_info tensors[GRAPE_PE_MAX_TENSORS];
    int n_inputs;
    int in_rot, in_bias, in_shift; // index of each part's first channel
    grape_token_input_info inputs[GRAPE_PE_MAX_INPUTS];
};

// The i-th token input of the bias part (NULL when in is NULL or the kind has fewer).
static inline const float *pe_bias_input(const grape_pe *pe, const float *const *in, int i) {
    return in && pe->in_bias + i < pe->in_shift ? in[pe->in_bias + i] : NULL;
}
static inline float *pe_bias_input_grad(const grape_pe *pe, float *const *din, int i) {
    return din && pe->in_bias + i < pe->in_shift ? din[pe->in_bias + i] : NULL;
}

#endif
