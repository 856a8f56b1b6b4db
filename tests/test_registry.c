// test_registry.c — encoding names and options: every documented name parses, hybrids compose, bad names are
// refused; every option of the table parses, prints back canonically, is refused out of range with a message
// naming it, and round-trips bit-exactly through a checkpoint (grape_model_save / grape_model_load).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "grape.h"
#include "tmpdir.h"
#include "util.h"

static const char *const names[] = {"nope",       "rope",       "xpos",       "grape-m",   "grape-m-ctx",
                                    "grape-m-basis", "grape-m-nc", "alibi",   "fox",       "grape-a-k",
                                    "grape-a-q",  "grape-a-qk", "grape-ap"};

static void test_names(void) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 4, 64);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char got[GRAPE_PE_NAME_MAX], label[96];
        int ok = grape_pe_parse(&cfg, names[i]) == GRAPE_OK;
        grape_pe_name(got, sizeof got, &cfg);
        snprintf(label, sizeof label, "parse+name round trip '%s'", names[i]);
        t_true(label, ok && strcmp(got, names[i]) == 0);
    }
    const char *hybrids[] = {"grape-m+grape-ap", "xpos+fox", "rope+alibi", "grape-m-nc+grape-a-qk"};
    for (size_t i = 0; i < 4; i++) {
        char got[GRAPE_PE_NAME_MAX];
        int ok = grape_pe_parse(&cfg, hybrids[i]) == GRAPE_OK && cfg.rot != GRAPE_ROT_NONE &&
                 cfg.bias != GRAPE_BIAS_NONE;
        grape_pe_name(got, sizeof got, &cfg);
        t_true(hybrids[i], ok && strcmp(got, hybrids[i]) == 0);
    }
    const char *bad[] = {"", "roap", "alibi+rope", "rope+", "+fox", "rope+fox+alibi", "grape-m+grape-m"};
    for (size_t i = 0; i < 7; i++) {
        char label[64];
        snprintf(label, sizeof label, "refuses '%s'", bad[i]);
        t_true(label, grape_pe_parse(&cfg, bad[i]) == GRAPE_ERR_ARG && strlen(grape_last_error()) > 0);
    }
}

// The examples and the syntax corners: aliases, enum names, exponents with '+', canonical order.
static void test_examples(void) {
    grape_pe_config c;
    char got[GRAPE_PE_NAME_MAX];
    grape_pe_config_default(&c, 4, 64);
    int ok = !grape_pe_parse(&c, "rope:rope_base=500000,rotary_dim=32");
    grape_pe_name(got, sizeof got, &c);
    t_true("rope:rope_base=500000,rotary_dim=32 sets both, canonical in table order",
           ok && c.rot == GRAPE_ROT_ROPE && c.rope_base == 500000 && c.rotary_dim == 32 &&
               !strcmp(got, "rope:rotary_dim=32,rope_base=500000"));
    ok = !grape_pe_parse(&c, "grape-m:per_head=1+grape-ap:ap_probe_dim=16");
    grape_pe_name(got, sizeof got, &c);
    t_true("grape-m:per_head=1+grape-ap:ap_probe_dim=16 (and the fields not named back at their defaults)",
           ok && c.rot == GRAPE_ROT_GRAPE_M && c.bias == GRAPE_BIAS_GRAPE_AP && c.per_head == 1 &&
               c.ap_probe_dim == 16 && c.rope_base == 10000 && c.rotary_dim == 0 &&
               !strcmp(got, "grape-m:per_head=1+grape-ap:ap_probe_dim=16"));
    ok = !grape_pe_parse(&c, "rope:base=1e+6,scaling=yarn,factor=4,orig_ctx=256+alibi:kv=true");
    grape_pe_name(got, sizeof got, &c);
    t_true("aliases, enum by name, 1e+6, kv_shift on the bias part",
           ok && c.rope_base == 1e6 && c.scaling == GRAPE_SCALING_YARN && c.scaling_factor == 4 &&
               c.yarn_orig_ctx == 256 && c.kv_shift == 1 && c.bias == GRAPE_BIAS_ALIBI &&
               !strcmp(got, "rope:rope_base=1000000,scaling=yarn,scaling_factor=4,yarn_orig_ctx=256,kv_shift=1+alibi"));
    ok = !grape_pe_parse(&c, "nope:kv_shift=1");
    grape_pe_name(got, sizeof got, &c);
    t_true("nope:kv_shift=1", ok && c.rot == GRAPE_ROT_NONE && c.kv_shift == 1 && !strcmp(got, "nope:kv_shift=1"));
}

// Each bad option is refused with GRAPE_ERR_ARG, a message containing `want`, and cfg untouched.
static void test_refusals(void) {
    static const struct {
        const char *name, *want;
    } bad[] = {
        {"rope:foo=1", "'foo'"},
        {"rope:nc_rank=4", "nc_rank does not apply to rope"},
        {"rope:rotary_dim=33", "rotary_dim must be an integer in [0, 4096], even, got '33'"},
        {"rope:rotary_dim=-2", "rotary_dim must be an integer in [0, 4096], even, got '-2'"},
        {"rope:rope_base=1", "rope_base must be a number in (1, 1e+300], got '1'"},
        {"rope:rope_base=abc", "rope_base must be a number"},
        {"rope:scaling=cubic", "scaling must be one of none, linear, ntk, yarn, got 'cubic'"},
        {"rope:kv_shift", "kv_shift needs a value"},
        {"rope:kv_shift=2", "kv_shift must be an integer in 0 or 1, got '2'"},
        {"rope:rope_base=2,base=3", "rope_base is given twice"},
        {"grape-ap:ap_probe_dim=300", "ap_probe_dim must be an integer in [2, 256], even, got '300'"},
        {"rope:", "empty"},
        {"rope+grape-ap:rotary_dim=8", "rotary_dim does not apply to grape-ap"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        grape_pe_config c, before;
        grape_pe_config_default(&c, 4, 64);
        c.rope_base = 123;
        before = c;
        grape_status s = grape_pe_parse(&c, bad[i].name);
        char label[160];
        snprintf(label, sizeof label, "refuses '%s' saying \"%s\"", bad[i].name, bad[i].want);
        if (!t_true(label, s == GRAPE_ERR_ARG && strstr(grape_last_error(), bad[i].want) &&
                               !memcmp(&c, &before, sizeof c)))
            printf("# got: %s\n", grape_last_error());
    }
}

// A valid value other than the default: +/- a quarter of (|default| + 1) for numbers, 2 for even integers.
static double other_value(const grape_pe_option *o) {
    if (o->type == GRAPE_OPT_BOOL) return 1 - o->def;
    if (o->type == GRAPE_OPT_ENUM) return o->def + 1 <= o->hi ? o->def + 1 : o->def - 1;
    double step = o->type == GRAPE_OPT_REAL ? 0.25 * (fabs(o->def) + 1) : o->flags & GRAPE_OPT_EVEN ? 2 : 1;
    return o->def + step <= o->hi ? o->def + step : o->def - step;
}

// An encoding the option applies to, with the option set to other_value (and YaRN on for the yarn_* knobs).
static void config_for(grape_pe_config *c, const grape_pe_option *o) {
    grape_pe_config_default(c, 2, 16);
    for (int k = GRAPE_ROT_COUNT - 1; k >= 0; k--) // the first kind it applies to
        if (o->rot_mask >> k & 1u) c->rot = (grape_rot_kind)k;
    for (int k = GRAPE_BIAS_COUNT - 1; k >= 1 && !o->rot_mask; k--)
        if (o->bias_mask >> k & 1u) c->bias = (grape_bias_kind)k;
    if (!strncmp(o->name, "yarn_", 5)) c->scaling = GRAPE_SCALING_YARN, c->scaling_factor = 2, c->yarn_orig_ctx = 8;
    double v = other_value(o);
    if (o->type == GRAPE_OPT_REAL)
        *(double *)((char *)c + o->offset) = v;
    else
        *(int *)((char *)c + o->offset) = (int)v;
}

static int same_options(const grape_pe_config *a, const grape_pe_config *b) {
    if (a->rot != b->rot || a->bias != b->bias) return 0;
    for (int i = 0; i < grape_pe_option_count(); i++) {
        const grape_pe_option *o = grape_pe_option_at(i);
        if (grape_pe_option_applies(o, a) && grape_pe_option_get(o, a) != grape_pe_option_get(o, b)) return 0;
    }
    return 1;
}

// Every option: name -> parse gives the value back; a model with it saves and loads with every option equal.
static void test_every_option(void) {
    for (int i = 0; i < grape_pe_option_count(); i++) {
        const grape_pe_option *o = grape_pe_option_at(i);
        grape_pe_config c, back;
        config_for(&c, o);
        char name[GRAPE_PE_NAME_MAX], label[GRAPE_PE_NAME_MAX + 64];
        grape_pe_name(name, sizeof name, &c);
        grape_pe_config_default(&back, 2, 16);
        grape_status s = grape_pe_parse(&back, name);
        snprintf(label, sizeof label, "%s: '%s' parses back to the same options", o->name, name);
        t_true(label, !s && same_options(&c, &back) && grape_pe_option_get(o, &back) != o->def);

        grape_model_config mc = {.n_layer = 1, .n_embd = 32, .n_head = 2, .vocab_size = 256, .max_batch = 1,
                                 .max_seq = 8, .pe = c};
        grape_model *m = NULL, *l = NULL;
        s = grape_model_create(&m, &mc);
        if (!s) s = grape_model_init(m, 5);
        if (!s) s = grape_model_save(m, tmp_path(o->name));
        if (!s) s = grape_model_load(&l, tmp_path(o->name), 0, 0);
        if (s) printf("# %s: %s\n", name, grape_last_error());
        snprintf(label, sizeof label, "%s: checkpoint of '%s' loads with every option equal", o->name, name);
        t_true(label, !s && same_options(&c, &grape_model_get_config(l)->pe));
        grape_model_free(m);
        grape_model_free(l);
    }
}

// GRAPE_PE_NAME_MAX holds the longest canonical name: every kind pair with every option at its longest text.
static void test_name_bound(void) {
    int longest = 0;
    for (int r = 0; r < GRAPE_ROT_COUNT; r++)
        for (int b = 0; b < GRAPE_BIAS_COUNT; b++) {
            grape_pe_config c;
            grape_pe_config_default(&c, 2, 16);
            c.rot = (grape_rot_kind)r, c.bias = (grape_bias_kind)b;
            for (int i = 0; i < grape_pe_option_count(); i++) {
                const grape_pe_option *o = grape_pe_option_at(i);
                char *p = (char *)&c + o->offset;
                if (o->type == GRAPE_OPT_REAL)
                    *(double *)p = -1.2345678901234567e-300; // 24 characters, the longest %.17g
                else
                    *(int *)p = o->type == GRAPE_OPT_ENUM ? (int)o->hi : -1234567890;
            }
            int n = grape_pe_name(NULL, 0, &c);
            longest = n > longest ? n : longest;
        }
    printf("# longest canonical name: %d characters\n", longest);
    t_true("GRAPE_PE_NAME_MAX holds the longest canonical name", longest < GRAPE_PE_NAME_MAX);
}

// grape_struct_describe: the described fields of grape_pe_config tile the struct (each starts where the previous
// ends, up to alignment, and the last ends within sizeof), and an unknown name is refused.
static void test_describe(void) {
    const grape_field_info *f;
    int n = 0;
    size_t size = 0, end = 0, gaps = 0;
    t_true("describe grape_pe_config", grape_struct_describe("grape_pe_config", &f, &n, &size) == GRAPE_OK);
    for (int i = 0; i < n; i++) {
        if (f[i].offset < end || f[i].offset - end >= 8) gaps++;
        end = f[i].offset + f[i].size;
    }
    t_true("grape_pe_config: described fields cover the struct", n > 0 && gaps == 0 && size - end < 8);
    t_true("grape_pe_config: rot first, qk_gain last",
           !strcmp(f[0].name, "rot") && f[0].offset == offsetof(grape_pe_config, rot) &&
               !strcmp(f[n - 1].name, "qk_gain"));
    t_true("an unknown struct is refused", grape_struct_describe("grape_nothing", &f, &n, &size) == GRAPE_ERR_ARG &&
                                               strstr(grape_last_error(), "grape_nothing"));
}

// The token input list: the rotation's channels, the bias's, then KV-shift's, with the widths and model init the
// kind tables declare; lookups by name; an encoding without inputs has an empty list.
static void test_token_inputs(void) {
    static const struct {
        const char *pe;
        const char *names[4];
        int width[4], zero_init[4], has_bias[4];
    } cases[] = {
        {"grape-m-ctx:per_head=1+fox:kv_shift=1", {"phase", "gate", "shift_k", "shift_v"}, {4, 4, 4, 4},
         {1, 0, 0, 0}, {1, 1, 0, 0}},
        {"grape-m-ctx+grape-ap:ap_probe_dim=6", {"phase", "probe"}, {1, 24}, {1, 0}, {1, 0}},
        {"rope+grape-a-qk", {NULL}, {0}, {0}, {0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        grape_pe_config cfg;
        grape_pe_config_default(&cfg, 4, 16);
        grape_pe *pe = NULL;
        int ok = grape_pe_parse(&cfg, cases[c].pe) == GRAPE_OK && grape_pe_create(&pe, &cfg) == GRAPE_OK;
        int n = 0;
        while (n < 4 && cases[c].names[n]) n++;
        ok = ok && grape_pe_num_token_inputs(pe) == n && !grape_pe_token_input_info(pe, n) &&
             grape_pe_token_input_find(pe, "nothing") == -1;
        for (int i = 0; ok && i < n; i++) {
            const grape_token_input_info *ti = grape_pe_token_input_info(pe, i);
            ok = !strcmp(ti->name, cases[c].names[i]) && ti->width == cases[c].width[i] &&
                 ti->zero_init == cases[c].zero_init[i] && ti->has_bias == cases[c].has_bias[i] &&
                 grape_pe_token_input_find(pe, ti->name) == i;
        }
        char name[160];
        snprintf(name, sizeof name, "token inputs of %s: names, widths, init in list order", cases[c].pe);
        t_true(name, ok);
        grape_pe_free(pe);
    }
}

int main(void) {
    if (!tmp_create()) return printf("FAIL cannot create a temporary directory\n"), 1;
    test_names();
    test_examples();
    test_refusals();
    test_every_option();
    test_name_bound();
    test_describe();
    test_token_inputs();
    tmp_remove();
    return t_finish();
}
