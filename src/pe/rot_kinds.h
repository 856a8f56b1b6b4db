// rot_kinds.h — the table of multiplicative encoding kinds (GRAPE §3), one row per grape_rot_kind: its name and
// documentation (the row `grape encodings` prints) and the per-token input channels the model computes for it.
// Additive kinds have their own table (bias_kinds.h). Adding an encoding: docs/ARCHITECTURE.md.
#ifndef GRAPE_PE_ROT_KINDS_H
#define GRAPE_PE_ROT_KINDS_H

#include <stddef.h>

#include "grape.h"
#include "pe/bias_kinds.h"

typedef struct {
    grape_pe_info info;                       // name, family, parameters, source
    token_input_desc inputs[KIND_MAX_INPUTS]; // the token inputs the model computes for it (name NULL ends)
} rot_kind;

// The row of kind k; that of nope for a k outside [0, GRAPE_ROT_COUNT).
const rot_kind *rot_kind_of(grape_rot_kind k);
// Kind whose name is the len bytes at s, or -1.
int rot_kind_find(const char *s, size_t len);

#endif
