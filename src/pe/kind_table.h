// kind_table.h — what the two kind tables (bias_kinds.h, rot_kinds.h) share: how a row declares the per-token input
// channels the model computes for its kind (the rows of grape_pe_token_input_info; pe.c builds an encoding's list
// from them), and the lookup of a row by name.
#ifndef GRAPE_PE_KIND_TABLE_H
#define GRAPE_PE_KIND_TABLE_H

#include <stddef.h>
#include <string.h>

#include "grape.h"

// Widths in units of the encoding: one per head, or P per head (GRAPE-AP probes); TW_PHASE: H with per_head, else 1.
typedef enum { TW_H, TW_HP, TW_PHASE } token_width;
typedef struct {
    const char *name;
    token_width width;
    int zero_init, has_bias;
    double bias_init;
} token_input_desc;
#define KIND_MAX_INPUTS 2

// Does the row with this info have the name given by the len bytes at s?
static inline int kind_named(const grape_pe_info *info, const char *s, size_t len) {
    return strlen(info->name) == len && !strncmp(info->name, s, len);
}

#endif
