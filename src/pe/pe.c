// pe.c — the grape_pe object: config validation, parameter layout, init and prepare, delegated to the
// rotation part and the bias part.
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "pe/bias_kinds.h"
#include "pe/pe_internal.h"
#include "pe/rot_kinds.h"

#define GRAPE_MAX_HEADS 4096
#define GRAPE_MAX_HEAD_DIM 4096

static grape_status check_common(const grape_pe_config *c) {
    if (c->rot < 0 || c->rot >= GRAPE_ROT_COUNT || c->bias < 0 || c->bias >= GRAPE_BIAS_COUNT)
        return error_fail(GRAPE_ERR_ARG, "unknown encoding kind (rot %d, bias %d)", (int)c->rot, (int)c->bias);
    if (c->n_heads < 1 || c->n_heads > GRAPE_MAX_HEADS)
        return error_fail(GRAPE_ERR_ARG, "n_heads must be in [1, %d], got %d", GRAPE_MAX_HEADS, c->n_heads);
    if (c->head_dim < 2 || c->head_dim > GRAPE_MAX_HEAD_DIM || c->head_dim % 2)
        return error_fail(GRAPE_ERR_ARG, "head_dim must be even in [2, %d], got %d", GRAPE_MAX_HEAD_DIM,
                          c->head_dim);
    return GRAPE_OK;
}

// KV-shift's gates: one for keys, one for values (the official kv_shift.py has one shift projection for each).
static const token_input_desc kv_shift_inputs[KIND_MAX_INPUTS] = {{.name = "shift_k", .width = TW_H},
                                                                  {.name = "shift_v", .width = TW_H}};

static void add_inputs(grape_pe *pe, const token_input_desc *d) {
    const grape_pe_config *c = &pe->cfg;
    for (int i = 0; i < KIND_MAX_INPUTS && d[i].name; i++) {
        int w = d[i].width == TW_HP ? c->n_heads * c->ap_probe_dim
              : d[i].width == TW_PHASE && !c->per_head ? 1 : c->n_heads;
        pe->inputs[pe->n_inputs++] = (grape_token_input_info){d[i].name, w, d[i].zero_init, d[i].has_bias,
                                                              d[i].bias_init};
    }
}

static void collect_inputs(grape_pe *pe) {
    pe->in_rot = pe->n_inputs;
    add_inputs(pe, rot_kind_of(pe->cfg.rot)->inputs);
    pe->in_bias = pe->n_inputs;
    add_inputs(pe, bias_kind_of(pe->cfg.bias)->inputs);
    pe->in_shift = pe->n_inputs;
    if (pe->cfg.kv_shift) add_inputs(pe, kv_shift_inputs);
}

static grape_status collect_tensors(grape_pe *pe) {
    int n = rot_param_tensors(pe->rot, pe->tensors, GRAPE_PE_MAX_TENSORS, 0);
    n += bias_param_tensors(pe->bias, pe->tensors + n, GRAPE_PE_MAX_TENSORS - n, pe->n_rot_params);
    if (n > GRAPE_PE_MAX_TENSORS) return error_fail(GRAPE_ERR_ARG, "too many parameter tensors (%d)", n);
    pe->n_tensors = n;
    return GRAPE_OK;
}

grape_status grape_pe_create(grape_pe **out, const grape_pe_config *cfg) {
    *out = NULL;
    if (!cfg) return error_fail(GRAPE_ERR_ARG, "grape_pe_create: cfg is NULL");
    grape_status st = check_common(cfg);
    if (st) return st;
    grape_pe *pe = mem_alloc(sizeof *pe);
    if (!pe) return GRAPE_ERR_NOMEM;
    pe->cfg = *cfg;
    if ((st = rot_create(&pe->rot, cfg)) || (st = bias_create(&pe->bias, cfg))) {
        grape_pe_free(pe);
        return st;
    }
    pe->n_rot_params = rot_num_params(pe->rot);
    pe->n_bias_params = bias_num_params(pe->bias);
    collect_inputs(pe);
    if ((st = collect_tensors(pe))) {
        grape_pe_free(pe);
        return st;
    }
    *out = pe;
    return GRAPE_OK;
}

void grape_pe_free(grape_pe *pe) {
    if (!pe) return;
    rot_free(pe->rot);
    bias_free(pe->bias);
    mem_free(pe);
}

const grape_pe_config *grape_pe_get_config(const grape_pe *pe) { return &pe->cfg; }

size_t grape_pe_num_params(const grape_pe *pe) { return pe->n_rot_params + pe->n_bias_params; }

int grape_pe_num_param_tensors(const grape_pe *pe) { return pe->n_tensors; }

const grape_param_info *grape_pe_param_tensor(const grape_pe *pe, int i) {
    return (i >= 0 && i < pe->n_tensors) ? &pe->tensors[i] : NULL;
}

grape_status grape_pe_init_params(const grape_pe *pe, float *params, uint64_t seed) {
    if (grape_pe_num_params(pe) && !params) return error_fail(GRAPE_ERR_ARG, "grape_pe_init_params: params NULL");
    grape_status st = rot_init_params(pe->rot, params, seed);
    if (st) return st;
    return bias_init_params(pe->bias, params ? params + pe->n_rot_params : NULL, seed ^ 0x9e3779b97f4a7c15ull);
}

grape_status grape_pe_prepare(grape_pe *pe, const float *params) {
    if (grape_pe_num_params(pe) && !params) return error_fail(GRAPE_ERR_ARG, "grape_pe_prepare: params NULL");
    grape_status st = rot_prepare(pe->rot, params);
    if (st) return st;
    return bias_prepare(pe->bias, params ? params + pe->n_rot_params : NULL);
}

grape_status grape_pe_reserve(grape_pe *pe, int max_B, int max_T) {
    if (!pe) return error_fail(GRAPE_ERR_ARG, "grape_pe_reserve: pe is NULL");
    if (max_B < 1 || max_T < 1)
        return error_fail(GRAPE_ERR_ARG, "grape_pe_reserve: max_B (%d) and max_T (%d) must be >= 1", max_B, max_T);
    return rot_reserve(pe->rot, max_B, max_T);
}

int grape_pe_num_token_inputs(const grape_pe *pe) { return pe ? pe->n_inputs : 0; }

const grape_token_input_info *grape_pe_token_input_info(const grape_pe *pe, int i) {
    return pe && i >= 0 && i < pe->n_inputs ? &pe->inputs[i] : NULL;
}

int grape_pe_token_input_find(const grape_pe *pe, const char *name) {
    for (int i = 0; pe && name && i < pe->n_inputs; i++)
        if (!strcmp(pe->inputs[i].name, name)) return i;
    return -1;
}
