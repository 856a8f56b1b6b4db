// xpos.c — xPos / LEX scale (arXiv 2212.10554 §3; xpos_lex_fox_alibi.md §1):
//   ζ_i = (2i + γ·n)/((1 + γ)·n),  q at position m scaled ζ_i^((m − c)/sb),  k at n scaled ζ_i^((c − n)/sb),
// so q'·k' carries ζ_i^((m − n)/sb) and the anchor c cancels. ONE anchor c (grape_positions.xpos_anchor) must be
// shared by the q and the k call (e.g. floor(T/2) to centre); ζ^e is formed as exp(e·ln ζ) in double.
#include <math.h>

#include "pe/rot_internal.h"

void xpos_ln_zeta(double *ln_zeta, const grape_pe_config *cfg, int npair) {
    double n = 2.0 * npair, g = cfg->xpos_gamma;
    for (int i = 0; i < npair; i++) ln_zeta[i] = log((2.0 * i + g * n) / ((1.0 + g) * n));
}

double xpos_exponent(const grape_pe_config *cfg, double n, double anchor, grape_side side) {
    double e = (n - anchor) / cfg->xpos_scale_base;
    return side == GRAPE_QUERY ? e : -e;
}
