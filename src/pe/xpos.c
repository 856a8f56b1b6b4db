// xpos.c — xPos / LEX scale (LEX, arXiv 2212.10554 §3; github.com/sunyt32/torchscale):
//   ζ_i = (2i + γ·n)/((1 + γ)·n),  q at position m scaled ζ_i^((m − c)/sb),  k at n scaled ζ_i^((c − n)/sb),
// so q'·k' carries ζ_i^((m − n)/sb) and the anchor c cancels. ONE anchor c (grape_positions.xpos_anchor) must be
// shared by the q and the k call (e.g. floor(T/2) to centre); ζ^e is formed as exp(e·ln ζ) in double.
#include <math.h>

#include "core/error.h"
#include "pe/rot_internal.h"

void xpos_ln_zeta(double *ln_zeta, const grape_pe_config *cfg, int npair) {
    double n = 2.0 * npair, g = cfg->xpos_gamma;
    for (int i = 0; i < npair; i++) ln_zeta[i] = log((2.0 * i + g * n) / ((1.0 + g) * n));
}

double xpos_exponent(const grape_pe_config *cfg, double n, double anchor, grape_side side) {
    double e = (n - anchor) / cfg->xpos_scale_base;
    return side == GRAPE_QUERY ? e : -e;
}

// xPos scales q by zeta^((n-c)/sb) and k by zeta^((c-n)/sb) with zeta_min = gamma/(1+gamma) < 1. A scale grows for
// queries before the anchor and keys after it; its ln must stay below this so it and its products with normalised
// values (|x| < e^4) stay finite floats. The other side only shrinks (to 0 far away), which is harmless: its partner
// is bounded by e^84, so the logit's absolute error stays below e^84 * FLT_TRUE_MIN ~ 1e-8 (the KV cache relies on
// it when it re-scales a query against old key blocks).
#define XPOS_MAX_LN_SCALE 84.0

grape_status xpos_check_range(const rot_state *r, const grape_positions *pos, grape_side side, int T) {
    double lnz = 0, c = pos->xpos_anchor;
    for (int p = 0; p < r->npair; p++) lnz = fmax(lnz, fabs(r->ln_zeta[p]));
    double far = side == GRAPE_QUERY ? c - (double)pos->pos0 : (double)pos->pos0 + T - 1 - c, reach;
    reach = XPOS_MAX_LN_SCALE * r->cfg.xpos_scale_base / lnz;
    if (!(far * lnz / r->cfg.xpos_scale_base > XPOS_MAX_LN_SCALE)) return GRAPE_OK;
    return error_fail(GRAPE_ERR_UNSUPPORTED,
                      "xpos: a position lies %.0f tokens from the anchor %.0f; the scale zeta^(+-d/%g) leaves the "
                      "float range past %.0f tokens (a centred anchor serves T <= %.0f; the KV cache has no limit)",
                      far, c, r->cfg.xpos_scale_base, floor(reach), 2 * floor(reach));
}
