// layout.c — the layouts of the public structs that bindings fill or read (grape_struct_describe), so a binding
// (tests/torch/common.py builds its ctypes structures from it) follows grape.h instead of keeping a copy of it.
#include <stddef.h>
#include <string.h>

#include "core/error.h"
#include "grape.h"

#define FIELD(S, f, type) {#f, offsetof(S, f), sizeof(((S *)0)->f), type}

static const grape_field_info pe_config[] = {
    FIELD(grape_pe_config, rot, "int"),
    FIELD(grape_pe_config, bias, "int"),
    FIELD(grape_pe_config, n_heads, "int"),
    FIELD(grape_pe_config, head_dim, "int"),
    FIELD(grape_pe_config, rotary_dim, "int"),
    FIELD(grape_pe_config, interleaved, "int"),
    FIELD(grape_pe_config, rope_base, "double"),
    FIELD(grape_pe_config, scaling, "int"),
    FIELD(grape_pe_config, scaling_factor, "double"),
    FIELD(grape_pe_config, yarn_orig_ctx, "int"),
    FIELD(grape_pe_config, yarn_ext_factor, "double"),
    FIELD(grape_pe_config, yarn_attn_factor, "double"),
    FIELD(grape_pe_config, yarn_beta_fast, "double"),
    FIELD(grape_pe_config, yarn_beta_slow, "double"),
    FIELD(grape_pe_config, xpos_gamma, "double"),
    FIELD(grape_pe_config, xpos_scale_base, "double"),
    FIELD(grape_pe_config, per_head, "int"),
    FIELD(grape_pe_config, log_freq_scale, "double"),
    FIELD(grape_pe_config, nc_rank, "int"),
    FIELD(grape_pe_config, ap_probe_dim, "int"),
    FIELD(grape_pe_config, ap_form, "int"),
    FIELD(grape_pe_config, kv_shift, "int"),
    FIELD(grape_pe_config, basis_folded, "int"),
    FIELD(grape_pe_config, qk_gain, "int"),
};
static const grape_field_info model_config[] = {
    FIELD(grape_model_config, n_layer, "int"),     FIELD(grape_model_config, n_embd, "int"),
    FIELD(grape_model_config, n_head, "int"),      FIELD(grape_model_config, vocab_size, "int"),
    FIELD(grape_model_config, max_batch, "int"),   FIELD(grape_model_config, max_seq, "int"),
    FIELD(grape_model_config, pe, "grape_pe_config"),
};
static const grape_field_info param_info[] = {
    FIELD(grape_param_info, name, "char*"), FIELD(grape_param_info, offset, "size_t"),
    FIELD(grape_param_info, ndim, "int"),   FIELD(grape_param_info, shape, "int[4]"),
    FIELD(grape_param_info, weight_decay, "int"),
};
static const grape_field_info tensor_info[] = {
    FIELD(grape_tensor_info, name, "char*"), FIELD(grape_tensor_info, offset, "size_t"),
    FIELD(grape_tensor_info, ndim, "int"),   FIELD(grape_tensor_info, shape, "int[4]"),
    FIELD(grape_tensor_info, weight_decay, "int"),
};
static const grape_field_info positions[] = {
    FIELD(grape_positions, pos0, "int64"),
    FIELD(grape_positions, xpos_anchor, "double"),
    FIELD(grape_positions, phase, "double*"),
};
static const grape_field_info token_input_info[] = {
    FIELD(grape_token_input_info, name, "char*"),       FIELD(grape_token_input_info, width, "int"),
    FIELD(grape_token_input_info, zero_init, "int"),    FIELD(grape_token_input_info, has_bias, "int"),
    FIELD(grape_token_input_info, bias_init, "double"),
};
static const grape_field_info channel[] = {
    FIELD(grape_channel, name, "char*"), FIELD(grape_channel, dtype, "int"),  FIELD(grape_channel, ndim, "int"),
    FIELD(grape_channel, shape, "int[4]"), FIELD(grape_channel, data, "void*"),
};
static const grape_field_info attn_opts[] = {
    FIELD(grape_attn_opts, scale, "float"),
    FIELD(grape_attn_opts, bca_window, "int"),
};

#define STRUCT(S, fields) {#S, fields, (int)(sizeof fields / sizeof fields[0]), sizeof(S)}
static const struct {
    const char *name;
    const grape_field_info *fields;
    int n;
    size_t size;
} structs[] = {
    STRUCT(grape_pe_config, pe_config),        STRUCT(grape_model_config, model_config),
    STRUCT(grape_param_info, param_info),      STRUCT(grape_tensor_info, tensor_info),
    STRUCT(grape_positions, positions),        STRUCT(grape_token_input_info, token_input_info),
    STRUCT(grape_channel, channel),            STRUCT(grape_attn_opts, attn_opts),
};

grape_status grape_struct_describe(const char *name, const grape_field_info **fields, int *n_fields, size_t *size) {
    for (size_t i = 0; name && i < sizeof structs / sizeof structs[0]; i++)
        if (!strcmp(name, structs[i].name)) {
            if (fields) *fields = structs[i].fields;
            if (n_fields) *n_fields = structs[i].n;
            if (size) *size = structs[i].size;
            return GRAPE_OK;
        }
    return error_fail(GRAPE_ERR_ARG, "grape_struct_describe: no public struct named '%s'", name ? name : "(null)");
}
