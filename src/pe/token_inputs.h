// token_inputs.h — how a kind table row (bias_kinds.h, rot_kinds.h) declares the per-token input channels the
// model computes for its kind: the rows of grape_pe_token_input_info (pe.c builds an encoding's list from them).
#ifndef GRAPE_PE_TOKEN_INPUTS_H
#define GRAPE_PE_TOKEN_INPUTS_H

// Widths in units of the encoding: one per head, or P per head (GRAPE-AP probes); TW_PHASE: H with per_head, else 1.
typedef enum { TW_H, TW_HP, TW_PHASE } token_width;
typedef struct {
    const char *name;
    token_width width;
    int zero_init, has_bias;
    double bias_init;
} token_input_desc;
#define KIND_MAX_INPUTS 2

#endif
