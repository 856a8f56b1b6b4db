// pe_internal.h — the grape_pe object: a rotation part and a bias part, each owning its parameters.
// The encoding's parameter vector is [rotation params | bias params].
#ifndef GRAPE_PE_INTERNAL_H
#define GRAPE_PE_INTERNAL_H

#include "grape.h"
#include "pe/bias.h"
#include "pe/rotation.h"

#define GRAPE_PE_MAX_TENSORS 16

struct grape_pe {
    grape_pe_config cfg;
    rot_state *rot;
    bias_state *bias;
    size_t n_rot_params;  // rotation params start at offset 0
    size_t n_bias_params; // bias params start at offset n_rot_params
    int n_tensors;
    grape_param_info tensors[GRAPE_PE_MAX_TENSORS];
};

#endif
