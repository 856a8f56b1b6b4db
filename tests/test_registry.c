// test_registry.c — encoding names: every documented name parses, hybrids compose, bad names are refused.
#include <stdio.h>
#include <string.h>

#include "grape.h"
#include "util.h"

static const char *const names[] = {"nope",       "rope",       "xpos",       "grape-m",   "grape-m-ctx",
                                    "grape-m-basis", "grape-m-nc", "alibi",   "fox",       "grape-a-k",
                                    "grape-a-q",  "grape-a-qk", "grape-ap"};

int main(void) {
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, 4, 64);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char got[64];
        int ok = grape_pe_parse(&cfg, names[i]) == GRAPE_OK;
        grape_pe_name(got, sizeof got, &cfg);
        char label[96];
        snprintf(label, sizeof label, "parse+name round trip '%s'", names[i]);
        t_true(label, ok && strcmp(got, names[i]) == 0);
    }
    const char *hybrids[] = {"grape-m+grape-ap", "xpos+fox", "rope+alibi", "grape-m-nc+grape-a-qk"};
    for (size_t i = 0; i < 4; i++) {
        char got[64];
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
    return t_finish();
}
