// fuzz_pe_name.c — libFuzzer target: the input is an encoding name with options (what --pe and a checkpoint's
// pe.name hold). grape_pe_parse must return a status and never crash; a name it accepts prints back to a name
// that parses to the same canonical name, and the encoding it describes is created (4 heads of dim 16).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char name[256], again[256], back[256];
    if (n >= sizeof name) return 0;
    memcpy(name, data, n);
    name[n] = '\0';
    grape_pe_config c, d;
    grape_pe_config_default(&c, 4, 16);
    if (grape_pe_parse(&c, name)) return 0;
    grape_pe_name(again, sizeof again, &c);
    grape_pe_config_default(&d, 4, 16);
    if (grape_pe_parse(&d, again)) abort(); // a printed name must parse
    grape_pe_name(back, sizeof back, &d);
    if (strcmp(again, back)) abort();
    grape_pe *pe = NULL;
    if (!grape_pe_create(&pe, &c)) grape_pe_free(pe);
    return 0;
}
