// test_inputs.h — an encoding's token inputs by channel name (grape_pe_token_input_find), for the tests that build
// them: a list of TI_MAX pointers in the encoding's channel order.
#ifndef GRAPE_TESTS_INPUTS_H
#define GRAPE_TESTS_INPUTS_H

#include "grape.h"

#define TI_MAX 8

// Values per token of the channel named name; 0 when the encoding has none.
static inline int ti_width(const grape_pe *pe, const char *name) {
    int i = grape_pe_token_input_find(pe, name);
    return i >= 0 ? grape_pe_token_input_info(pe, i)->width : 0;
}

// in[channel named name] = x (nothing when the encoding has no such channel).
static inline void ti_set(const float **in, const grape_pe *pe, const char *name, const float *x) {
    int i = grape_pe_token_input_find(pe, name);
    if (i >= 0 && i < TI_MAX) in[i] = x;
}
static inline void ti_set_grad(float **din, const grape_pe *pe, const char *name, float *x) {
    int i = grape_pe_token_input_find(pe, name);
    if (i >= 0 && i < TI_MAX) din[i] = x;
}

#endif
