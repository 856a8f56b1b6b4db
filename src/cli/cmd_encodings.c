// cmd_encodings.c — `grape encodings`: one line per encoding name with family, parameters and source.
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "grape.h"

int cmd_encodings(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: grape encodings\n\nLists every encoding name accepted by --pe, one per line:\n"
               "NAME  FAMILY  LEARNABLE PARAMETERS (per layer)  SOURCE.\n"
               "Any rotation composes with any bias as ROT+BIAS (e.g. grape-m+grape-ap).\n");
        return 0;
    }
    if (argc > 1) return cli_error("encodings: unexpected argument '%s'", argv[1]);
    printf("%-14s %-15s %-s | %s\n", "NAME", "FAMILY", "LEARNABLE PARAMETERS", "SOURCE");
    for (int i = 0; i < grape_pe_info_count(); i++) {
        const grape_pe_info *e = grape_pe_info_at(i);
        printf("%-14s %-15s %s | %s\n", e->name, e->family, e->params, e->source);
    }
    return 0;
}
