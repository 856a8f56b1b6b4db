// cmd_encodings.c — `grape encodings [--options | NAME]`: the encodings (family, parameters, source), and every
// option of the NAME:key=value syntax with its type, range, default and meaning, printed from the library's tables.
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "grape.h"

static void usage(void) {
    printf("usage: grape encodings [--options | NAME]\n\n"
           "  grape encodings            every encoding name accepted by --pe, one per line:\n"
           "                             NAME  FAMILY  LEARNABLE PARAMETERS (per layer) | SOURCE\n"
           "  grape encodings --options  every option of NAME:key=value,... with its range, default and meaning\n"
           "  grape encodings NAME       the options of one encoding (NAME may carry options) and their values\n\n"
           "Any rotation composes with any bias as ROT+BIAS (e.g. grape-m+grape-ap); options follow each part:\n"
           "  --pe 'rope:rope_base=500000,rotary_dim=32'   --pe 'grape-m:per_head=1+grape-ap:ap_probe_dim=16'\n");
}

// Name of the encoding with rotation r and bias b and default options.
static void kind_name(char *buf, size_t n, grape_rot_kind r, grape_bias_kind b) {
    grape_pe_config c;
    grape_pe_config_default(&c, 1, 2);
    c.rot = r, c.bias = b;
    grape_pe_name(buf, n, &c);
}

// "rope, xpos, ..." for the kinds an option applies to; "every encoding" / "every rotation" for whole families.
static void applies_to(char *buf, size_t n, const grape_pe_option *o) {
    unsigned all_rot = (1u << GRAPE_ROT_COUNT) - 1, all_bias = (1u << GRAPE_BIAS_COUNT) - 1, turning = all_rot & ~1u;
    size_t len = 0;
    buf[0] = '\0';
    if (o->rot_mask == all_rot && o->bias_mask == all_bias) len += (size_t)snprintf(buf, n, "every encoding");
    else if (o->rot_mask == turning) len += (size_t)snprintf(buf, n, "every rotation");
    int whole = len > 0;
    char name[GRAPE_PE_NAME_MAX];
    for (int k = 1; k < GRAPE_ROT_COUNT && !whole; k++) {
        if (!(o->rot_mask >> k & 1u)) continue;
        kind_name(name, sizeof name, (grape_rot_kind)k, GRAPE_BIAS_NONE);
        if (len < n) len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", name);
    }
    for (int k = 1; k < GRAPE_BIAS_COUNT && !whole; k++) {
        if (!(o->bias_mask >> k & 1u)) continue;
        kind_name(name, sizeof name, GRAPE_ROT_NONE, (grape_bias_kind)k);
        if (len < n) len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", name);
    }
}

static const char *type_name(const grape_pe_option *o) {
    static const char *const names[] = {[GRAPE_OPT_INT] = "integer", [GRAPE_OPT_BOOL] = "0|1",
                                        [GRAPE_OPT_REAL] = "number", [GRAPE_OPT_ENUM] = "name"};
    return names[o->type];
}

// Two lines per option: key (alias), type and range, default [, value]; then its meaning and where it applies.
static void print_option(const grape_pe_option *o, const grape_pe_config *value) {
    char def[40], lo[40], hi[40], range[160] = "", where[256], alias[40] = "";
    grape_pe_option_format(def, sizeof def, o, o->def);
    if (o->alias) snprintf(alias, sizeof alias, " (%s)", o->alias);
    if (o->type == GRAPE_OPT_ENUM) {
        for (int i = 0; o->values[i]; i++)
            snprintf(range + strlen(range), sizeof range - strlen(range), "%s%s", i ? "|" : "", o->values[i]);
    } else if (o->type != GRAPE_OPT_BOOL) {
        grape_pe_option_format(lo, sizeof lo, o, o->lo);
        grape_pe_option_format(hi, sizeof hi, o, o->hi);
        snprintf(range, sizeof range, "%s in %s%s, %s]%s", type_name(o), o->flags & GRAPE_OPT_LO_OPEN ? "(" : "[", lo,
                 hi, o->flags & GRAPE_OPT_EVEN ? ", even" : "");
    } else {
        snprintf(range, sizeof range, "0|1");
    }
    printf("  %-28s %-34s default %s", (snprintf(where, sizeof where, "%s%s", o->name, alias), where), range, def);
    if (value) {
        char v[40];
        grape_pe_option_format(v, sizeof v, o, grape_pe_option_get(o, value));
        printf(", here %s", v);
    }
    applies_to(where, sizeof where, o);
    printf("\n      %s [%s]\n", o->doc, where);
}

static void print_info(const char *name) {
    for (int i = 0; i < grape_pe_info_count(); i++) {
        const grape_pe_info *e = grape_pe_info_at(i);
        if (!strcmp(e->name, name)) printf("%-14s %-15s %s | %s\n", e->name, e->family, e->params, e->source);
    }
}

// `grape encodings NAME`: the parts of NAME, its canonical name and every option that applies, with its value.
static int describe(const char *name) {
    grape_pe_config c;
    grape_pe_config_default(&c, 1, 2);
    if (grape_pe_parse(&c, name)) return cli_error("encodings: %s", grape_last_error());
    char canon[GRAPE_PE_NAME_MAX], kind[GRAPE_PE_NAME_MAX];
    grape_pe_name(canon, sizeof canon, &c);
    kind_name(kind, sizeof kind, c.rot, GRAPE_BIAS_NONE);
    if (c.rot != GRAPE_ROT_NONE || c.bias == GRAPE_BIAS_NONE) print_info(kind);
    kind_name(kind, sizeof kind, GRAPE_ROT_NONE, c.bias);
    if (c.bias != GRAPE_BIAS_NONE) print_info(kind);
    printf("\ncanonical name: %s\noptions (NAME:key=value,...):\n", canon);
    for (int i = 0; i < grape_pe_option_count(); i++)
        if (grape_pe_option_applies(grape_pe_option_at(i), &c)) print_option(grape_pe_option_at(i), &c);
    return 0;
}

int cmd_encodings(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) return usage(), 0;
    if (argc > 2) return cli_error("encodings: unexpected argument '%s' (one NAME or --options)", argv[2]);
    if (argc == 2 && !strcmp(argv[1], "--options")) {
        printf("Options of NAME:key=value,... (keys are grape_pe_config fields; aliases in parentheses):\n");
        for (int i = 0; i < grape_pe_option_count(); i++) print_option(grape_pe_option_at(i), NULL);
        return 0;
    }
    if (argc == 2) return describe(argv[1]);
    printf("%-14s %-15s %-s | %s\n", "NAME", "FAMILY", "LEARNABLE PARAMETERS", "SOURCE");
    for (int i = 0; i < grape_pe_info_count(); i++) {
        const grape_pe_info *e = grape_pe_info_at(i);
        printf("%-14s %-15s %s | %s\n", e->name, e->family, e->params, e->source);
    }
    printf("\nOptions follow the name: NAME:key=value,... (grape encodings --options, grape encodings NAME)\n");
    return 0;
}
