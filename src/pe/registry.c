// registry.c — encoding names and options: the option table (one row per grape_pe_config field a name may set),
// parsing "ROT:key=value,...+BIAS:key=value,...", canonical names, defaults, and the tables `grape encodings` prints.
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "grape.h"
#include "pe/bias_kinds.h"
#include "pe/rot_kinds.h"

// `grape encodings` prints the rotations' rows (rot_kinds.c), the additive kinds' rows (bias_kinds.c), then the
// hybrid row.
static const grape_pe_info hybrid_info = {"ROT+BIAS", "hybrid", "those of ROT and BIAS",
                                          "GRAPE §6 composition, e.g. grape-m+grape-ap, xpos+fox"};
#define N_ROT_INFOS GRAPE_ROT_COUNT

// ---------------------------------------------------------------------------------------------------------
// The option table

#define BIT(k) (1u << (k))
#define ROT_ANY 0x7fu // every rotation kind, nope included (GRAPE_ROT_COUNT = 7)
#define ROT_TURNING (ROT_ANY & ~BIT(GRAPE_ROT_NONE))
#define ROT_LEARNED_X16 (BIT(GRAPE_ROT_GRAPE_M) | BIT(GRAPE_ROT_GRAPE_M_BASIS) | BIT(GRAPE_ROT_GRAPE_M_NC))
#define BIAS_ANY ((1u << GRAPE_BIAS_COUNT) - 1) // every bias kind, none included
_Static_assert(GRAPE_ROT_COUNT == 7, "ROT_ANY covers every kind");
_Static_assert(sizeof(grape_rope_scaling) == sizeof(int), "enum options are stored as int");

#define OPT(field, alias, type, def, lo, hi, flags, values, rot, bias, doc)                                         \
    { #field, alias, type, offsetof(grape_pe_config, field), def, lo, hi, flags, values, rot, bias, doc }
#define INT GRAPE_OPT_INT
#define BOOL GRAPE_OPT_BOOL
#define REAL GRAPE_OPT_REAL
#define EVEN GRAPE_OPT_EVEN
#define LO_OPEN GRAPE_OPT_LO_OPEN

static const char *const scaling_values[] = {"none", "linear", "ntk", "yarn", NULL};
static const char *const ap_forms[] = {[GRAPE_AP_OFFICIAL] = "official", [GRAPE_AP_PAPER] = "paper",
                                       [GRAPE_AP_RELATIVE] = "relative", NULL};
static const char *const qk_gains[] = {[GRAPE_QK_GAIN_DIM] = "dim", [GRAPE_QK_GAIN_PAIR] = "pair", NULL};

static const grape_pe_option options[] = {
    OPT(rotary_dim, "rdim", INT, 0, 0, 4096, EVEN, NULL, ROT_TURNING, 0,
        "R: leading dims of each head that rotate (partial rotary); 0 = the whole head, else even and <= head dim"),
    OPT(interleaved, NULL, BOOL, 0, 0, 1, 0, NULL, ROT_TURNING, 0,
        "pair layout: 0 half-split (i, i+R/2) as the official GRAPE code, 1 interleaved (2i, 2i+1)"),
    OPT(rope_base, "base", REAL, 10000, 1, 1e300, LO_OPEN, NULL, ROT_TURNING, 0,
        "base b of theta_i = b^(-2i/R) (the learned variants start from these frequencies)"),
    OPT(scaling, NULL, GRAPE_OPT_ENUM, GRAPE_SCALING_NONE, 0, 3, 0, scaling_values, ROT_TURNING, 0,
        "context extension: linear (position interpolation), ntk (NTK-aware base), yarn (YaRN ramp)"),
    OPT(scaling_factor, "factor", REAL, 1, 1, 1e9, 0, NULL, ROT_TURNING, 0,
        "extension factor s = target context / training context"),
    OPT(yarn_orig_ctx, "orig_ctx", INT, 0, 0, 1 << 30, 0, NULL, ROT_TURNING, 0,
        "YaRN: training context for the correction dims (>= 1 with scaling=yarn)"),
    OPT(yarn_ext_factor, NULL, REAL, -1, -1, 1e6, 0, NULL, ROT_TURNING, 0,
        "YaRN: extrapolation mix, -1 = auto (1 for yarn)"),
    OPT(yarn_attn_factor, NULL, REAL, 1, 0, 1e6, LO_OPEN, NULL, ROT_TURNING, 0, "YaRN: attention magnitude factor"),
    OPT(yarn_beta_fast, NULL, REAL, 32, 0, 1e6, LO_OPEN, NULL, ROT_TURNING, 0, "YaRN: ramp start (rotations)"),
    OPT(yarn_beta_slow, NULL, REAL, 1, 0, 1e6, LO_OPEN, NULL, ROT_TURNING, 0, "YaRN: ramp end (rotations)"),
    OPT(xpos_gamma, "gamma", REAL, 0.4, 0, 1e6, LO_OPEN, NULL, BIT(GRAPE_ROT_XPOS), 0,
        "xPos decay zeta_i = (2i/R + gamma)/(1 + gamma) (LEX §3)"),
    OPT(xpos_scale_base, "scale_base", REAL, 512, 0, 1e12, LO_OPEN, NULL, BIT(GRAPE_ROT_XPOS), 0,
        "xPos: the decay is zeta_i^(n/scale_base)"),
    OPT(per_head, NULL, BOOL, 0, 0, 1, 0, NULL, ROT_LEARNED_X16 | BIT(GRAPE_ROT_GRAPE_M_CTX), 0,
        "grape-m, -basis, -nc: frequencies (and basis or frame) per head; grape-m-ctx: one phase per head"),
    OPT(log_freq_scale, NULL, REAL, 16, 0, 1e6, LO_OPEN, NULL, ROT_LEARNED_X16, 0,
        "learned frequencies are stored as scale*ln(theta) (the x16 trick divides Adam's step on ln theta)"),
    OPT(nc_rank, "rank", INT, 8, 2, 4096, EVEN, NULL, BIT(GRAPE_ROT_GRAPE_M_NC), 0,
        "rank r of the non-commuting frame E (<= rotary dim)"),
    OPT(ap_probe_dim, "probe_dim", INT, 8, 2, 256, EVEN, NULL, 0, BIT(GRAPE_BIAS_GRAPE_AP),
        "probe dimension P of GRAPE-AP"),
    OPT(ap_form, NULL, GRAPE_OPT_ENUM, GRAPE_AP_OFFICIAL, 0, 2, 0, ap_forms, 0, BIT(GRAPE_BIAS_GRAPE_AP),
        "query probe: official (raw p_t, v1), paper (normalised, un-rotated, GRAPE §5 eq. 5.1), relative (rotated "
        "at t: depends on t - l only)"),
    OPT(basis_folded, "folded", BOOL, 0, 0, 1, 0, NULL, BIT(GRAPE_ROT_GRAPE_M_BASIS), 0,
        "0: the spec's B R(n theta) B^T; 1: B^T folded into W_q, W_k, only R(n theta) (the model then equals grape-m)"),
    OPT(qk_gain, NULL, GRAPE_OPT_ENUM, GRAPE_QK_GAIN_DIM, 0, 1, 0, qk_gains, ROT_TURNING, 0,
        "model QK-RMSNorm gain: dim (one per head dim, official code) or pair (tied within rotation pairs: the "
        "relative law holds for rope, grape-m, grape-m-ctx)"),
    OPT(kv_shift, "kv", BOOL, 0, 0, 1, 0, NULL, ROT_ANY, BIAS_ANY,
        "KV-shift: k and v mix in the previous token's projections through two learned gates"),
};
#define N_OPTIONS (int)(sizeof options / sizeof options[0])

// Rows: the rotations (nope first), the additive kinds but none, the hybrid.
int grape_pe_info_count(void) { return N_ROT_INFOS + GRAPE_BIAS_COUNT - 1 + 1; }

const grape_pe_info *grape_pe_info_at(int i) {
    if (i < 0 || i >= grape_pe_info_count()) return NULL;
    if (i < N_ROT_INFOS) return &rot_kind_of((grape_rot_kind)i)->info;
    if (i < N_ROT_INFOS + GRAPE_BIAS_COUNT - 1) return &bias_kind_of((grape_bias_kind)(i - N_ROT_INFOS + 1))->info;
    return &hybrid_info;
}

int grape_pe_option_count(void) { return N_OPTIONS; }

const grape_pe_option *grape_pe_option_at(int i) { return (i >= 0 && i < N_OPTIONS) ? &options[i] : NULL; }

int grape_pe_option_find(const char *key) {
    for (int i = 0; key && i < N_OPTIONS; i++)
        if (!strcmp(key, options[i].name) || (options[i].alias && !strcmp(key, options[i].alias))) return i;
    return -1;
}

static int rot_applies(const grape_pe_option *o, grape_rot_kind k) { return (o->rot_mask >> k) & 1u; }
static int bias_applies(const grape_pe_option *o, grape_bias_kind k) { return (o->bias_mask >> k) & 1u; }

int grape_pe_option_applies(const grape_pe_option *o, const grape_pe_config *cfg) {
    return rot_applies(o, cfg->rot) || bias_applies(o, cfg->bias);
}

double grape_pe_option_get(const grape_pe_option *o, const grape_pe_config *cfg) {
    const char *p = (const char *)cfg + o->offset;
    return o->type == GRAPE_OPT_REAL ? *(const double *)p : (double)*(const int *)p;
}

static void option_set(const grape_pe_option *o, grape_pe_config *cfg, double v) {
    char *p = (char *)cfg + o->offset;
    if (o->type == GRAPE_OPT_REAL)
        *(double *)p = v;
    else
        *(int *)p = (int)v;
}

void grape_pe_option_format(char *buf, size_t n, const grape_pe_option *o, double v) {
    if (o->type == GRAPE_OPT_ENUM) {
        snprintf(buf, n, "%s", o->values[(int)v]);
        return;
    }
    if (o->type != GRAPE_OPT_REAL) {
        snprintf(buf, n, "%d", (int)v);
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) { // integral values without an exponent: 500000, not 5e+05
        snprintf(buf, n, "%.0f", v);
        return;
    }
    for (int digits = 6; digits <= 17; digits++) { // the shortest text that reads back to the same double
        snprintf(buf, n, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) return;
    }
}

void grape_pe_config_default(grape_pe_config *cfg, int n_heads, int head_dim) {
    *cfg = (grape_pe_config){.rot = GRAPE_ROT_NONE, .bias = GRAPE_BIAS_NONE, .n_heads = n_heads,
                             .head_dim = head_dim};
    for (int i = 0; i < N_OPTIONS; i++) option_set(&options[i], cfg, options[i].def);
}

// ---------------------------------------------------------------------------------------------------------
// Parsing "NAME[:k=v,...][+NAME[:k=v,...]]"

// "[lo, hi]" / "(lo, hi]" with ", even" for the messages.
static void format_range(char *buf, size_t n, const grape_pe_option *o) {
    if (o->type == GRAPE_OPT_BOOL) {
        snprintf(buf, n, "0 or 1");
        return;
    }
    char lo[32], hi[32];
    grape_pe_option_format(lo, sizeof lo, o, o->lo);
    grape_pe_option_format(hi, sizeof hi, o, o->hi);
    snprintf(buf, n, "%s%s, %s]%s", o->flags & GRAPE_OPT_LO_OPEN ? "(" : "[", lo, hi,
             o->flags & GRAPE_OPT_EVEN ? ", even" : "");
}

static int in_range(const grape_pe_option *o, double v) {
    if (!(o->flags & GRAPE_OPT_LO_OPEN ? v > o->lo : v >= o->lo) || !(v <= o->hi)) return 0;
    if (o->type == GRAPE_OPT_REAL) return 1;
    return v == floor(v) && (!(o->flags & GRAPE_OPT_EVEN) || fmod(v, 2) == 0);
}

// The value text s (len bytes) of option o into *v, or a message naming the option, the value and the range.
static grape_status parse_value(double *v, const grape_pe_option *o, const char *s, size_t len) {
    char text[64], range[96];
    if (len == 0 || len >= sizeof text) return error_fail(GRAPE_ERR_ARG, "option %s needs a value", o->name);
    memcpy(text, s, len);
    text[len] = '\0';
    if (o->type == GRAPE_OPT_ENUM) {
        for (int i = 0; o->values[i]; i++)
            if (!strcmp(text, o->values[i])) return *v = i, GRAPE_OK;
        char list[96] = "";
        for (int i = 0; o->values[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", o->values[i]);
        return error_fail(GRAPE_ERR_ARG, "option %s must be one of %s, got '%s'", o->name, list, text);
    }
    int word = o->type == GRAPE_OPT_BOOL && (!strcmp(text, "true") || !strcmp(text, "false")), number = word;
    if (word) {
        *v = !strcmp(text, "true");
    } else {
        char *end;
        errno = 0;
        *v = strtod(text, &end);
        number = !errno && end != text && !*end;
    }
    if (number && in_range(o, *v)) return GRAPE_OK;
    format_range(range, sizeof range, o);
    return error_fail(GRAPE_ERR_ARG, "option %s must be %s in %s, got '%s'", o->name,
                      o->type == GRAPE_OPT_REAL ? "a number" : "an integer", range, text);
}

// Options "k=v,k=v" of one part (kind name `part`, applicable per `applies`), ending at *end: the string's end or
// a '+' that starts the next part (a '+' inside a number, as in 1e+6, is followed by a digit). seen: a mask of
// options already given, so none is given twice.
static grape_status parse_options(grape_pe_config *cfg, const char *s, const char **end, const char *part,
                                  int (*applies)(const grape_pe_option *, int), int kind, unsigned *seen) {
    for (;;) {
        const char *eq = s;
        while (*eq && *eq != '=' && *eq != ',' && *eq != '+') eq++;
        char key[48];
        size_t klen = (size_t)(eq - s);
        if (klen == 0 || klen >= sizeof key)
            return error_fail(GRAPE_ERR_ARG, "%s: empty or overlong option name", part);
        memcpy(key, s, klen);
        key[klen] = '\0';
        int i = grape_pe_option_find(key);
        if (i < 0)
            return error_fail(GRAPE_ERR_ARG, "%s: unknown option '%s' (see `grape encodings %s`)", part, key, part);
        const grape_pe_option *o = &options[i];
        if (!applies(o, kind))
            return error_fail(GRAPE_ERR_ARG, "option %s does not apply to %s (see `grape encodings --options`)",
                              o->name, part);
        if (*eq != '=') return error_fail(GRAPE_ERR_ARG, "option %s needs a value: write %s=VALUE", o->name, o->name);
        if (*seen & (1u << i)) return error_fail(GRAPE_ERR_ARG, "option %s is given twice", o->name);
        *seen |= 1u << i;
        const char *v = eq + 1, *ve = v;
        while (*ve && *ve != ',' && !(*ve == '+' && !(ve[1] >= '0' && ve[1] <= '9'))) ve++;
        double x = 0;
        grape_status st = parse_value(&x, o, v, (size_t)(ve - v));
        if (st) return st;
        option_set(o, cfg, x);
        if (*ve != ',') return *end = ve, GRAPE_OK;
        s = ve + 1;
    }
}
_Static_assert(sizeof(unsigned) * 8 >= sizeof options / sizeof options[0], "the seen mask has a bit per option");

static int rot_applies_k(const grape_pe_option *o, int k) { return rot_applies(o, (grape_rot_kind)k); }
static int bias_applies_k(const grape_pe_option *o, int k) { return bias_applies(o, (grape_bias_kind)k); }

grape_status grape_pe_parse(grape_pe_config *cfg, const char *name) {
    if (!cfg || !name || !*name) return error_fail(GRAPE_ERR_ARG, "empty encoding name");
    grape_pe_config c = *cfg;
    grape_pe_config_default(&c, cfg->n_heads, cfg->head_dim);
    unsigned seen = 0;
    const char *s = name;
    static const char hybrid[] = "want NAME or ROT+BIAS (ROT one of nope, rope, xpos, grape-m*; BIAS one of alibi, "
                                 "fox, grape-a*, grape-ap), each optionally followed by :key=value,...";
    for (int part = 0;; part++) {
        size_t len = strcspn(s, ":+");
        int r = rot_kind_find(s, len), b = bias_kind_find(s, len);
        int is_rot = part == 0 && r >= 0; // a lone name is a rotation if it can be ("nope" is both)
        if (part == 0 && r < 0 && b < 0)
            return error_fail(GRAPE_ERR_ARG, "unknown encoding '%.*s' in '%s' (run `grape encodings`)", (int)len, s,
                              name);
        if (part == 1 && b < 0) return error_fail(GRAPE_ERR_ARG, "bad encoding '%s': %s", name, hybrid);
        if (is_rot)
            c.rot = (grape_rot_kind)r;
        else
            c.bias = (grape_bias_kind)b;
        char kind[24];
        snprintf(kind, sizeof kind, "%.*s", (int)len, s);
        s += len;
        if (*s == ':') {
            grape_status st = parse_options(&c, s + 1, &s, kind, is_rot ? rot_applies_k : bias_applies_k,
                                            is_rot ? r : b, &seen);
            if (st) return st;
        }
        if (*s == '\0') break;
        if (!is_rot) return error_fail(GRAPE_ERR_ARG, "bad encoding '%s': %s", name, hybrid);
        s++; // the '+' before BIAS
    }
    *cfg = c;
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------
// Canonical names

// Append "name[:k=v,...]" for one part: the options that apply to it (and were not printed on an earlier part)
// and differ from their defaults.
static void append_part(char *buf, size_t n, size_t *len, const char *name, const grape_pe_config *cfg,
                        int (*applies)(const grape_pe_option *, int), int kind, unsigned *printed) {
    char val[40];
    size_t cap = n > *len ? n - *len : 0;
    *len += (size_t)snprintf(cap ? buf + *len : NULL, cap, "%s", name);
    int first = 1;
    for (int i = 0; i < N_OPTIONS; i++) {
        const grape_pe_option *o = &options[i];
        double v = grape_pe_option_get(o, cfg);
        if (!applies(o, kind) || (*printed & (1u << i)) || v == o->def) continue;
        *printed |= 1u << i;
        grape_pe_option_format(val, sizeof val, o, v);
        cap = n > *len ? n - *len : 0;
        *len += (size_t)snprintf(cap ? buf + *len : NULL, cap, "%s%s=%s", first ? ":" : ",", o->name, val);
        first = 0;
    }
}

int grape_pe_name(char *buf, size_t n, const grape_pe_config *cfg) {
    size_t len = 0;
    unsigned printed = 0;
    if (n) buf[0] = '\0';
    if (cfg->rot != GRAPE_ROT_NONE || cfg->bias == GRAPE_BIAS_NONE)
        append_part(buf, n, &len, rot_kind_of(cfg->rot)->info.name, cfg, rot_applies_k, cfg->rot, &printed);
    if (cfg->bias != GRAPE_BIAS_NONE) {
        if (len) {
            size_t cap = n > len ? n - len : 0;
            len += (size_t)snprintf(cap ? buf + len : NULL, cap, "+");
        }
        append_part(buf, n, &len, bias_kind_of(cfg->bias)->info.name, cfg, bias_applies_k, cfg->bias, &printed);
    }
    return (int)len;
}
