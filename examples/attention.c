// attention.c — libgrape from an inference engine's side: create an encoding from its name, rotate q and k, form
// the bias factors, run the fused causal attention, and check one output row against a naive loop.
//   cc attention.c $(pkg-config --cflags --libs grape) -o attention && ./attention ['rope:rope_base=500000+alibi']
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <grape.h>

enum { B = 1, T = 8, H = 2, D = 16 };

#define CHECK(call)                                                                                                \
    do {                                                                                                           \
        if ((call) != GRAPE_OK) {                                                                                  \
            fprintf(stderr, "attention: %s: %s\n", #call, grape_last_error());                                     \
            return 1;                                                                                              \
        }                                                                                                          \
    } while (0)

static float q[B * T * H * D], k[B * T * H * D], v[B * T * H * D], qr[B * T * H * D], kr[B * T * H * D];
static float out[B * T * H * D], lse[B * H * T];

// RoPE by hand (RoFormer; half-split pairs (i, i+D/2), the official GRAPE sign): y_i = a cos + b sin,
// y_{i+D/2} = -a sin + b cos, angle n * base^(-2i/D). x, y: (D) of one token and head.
static void rope_naive(double *y, const float *x, int n, double base) {
    for (int i = 0; i < D / 2; i++) {
        double phi = n * pow(base, -2.0 * i / D), a = x[i], b = x[i + D / 2];
        y[i] = a * cos(phi) + b * sin(phi);
        y[i + D / 2] = -a * sin(phi) + b * cos(phi);
    }
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "rope:rope_base=500000+alibi";
    for (int i = 0; i < B * T * H * D; i++) // any deterministic data will do
        q[i] = (float)sin(0.37 * i), k[i] = (float)cos(0.23 * i), v[i] = (float)sin(0.11 * i + 1);

    // 1. The encoding: defaults for H heads of dimension D, then the name with its options.
    grape_pe_config cfg;
    grape_pe_config_default(&cfg, H, D);
    CHECK(grape_pe_parse(&cfg, name));
    if (cfg.rot != GRAPE_ROT_ROPE || (cfg.rotary_dim && cfg.rotary_dim != D) || cfg.interleaved || cfg.scaling ||
        cfg.kv_shift || (cfg.bias != GRAPE_BIAS_NONE && cfg.bias != GRAPE_BIAS_ALIBI)) {
        fprintf(stderr, "attention: the naive loop below knows plain full-dimension rope (+ alibi) only\n");
        return 1;
    }
    grape_pe *pe;
    CHECK(grape_pe_create(&pe, &cfg));
    float *params = calloc(grape_pe_num_params(pe) + 1, sizeof(float)); // rope, alibi: none; learned kinds: some
    CHECK(grape_pe_init_params(pe, params, 1));
    CHECK(grape_pe_prepare(pe, params));

    // 2. The multiplicative action: rotate q and k at positions 0..T-1.
    grape_positions pos = {.pos0 = 0};
    CHECK(grape_rot_forward(qr, q, pe, &pos, GRAPE_QUERY, B, T));
    CHECK(grape_rot_forward(kr, k, pe, &pos, GRAPE_KEY, B, T));

    // 3. The additive action: per-token factors (ALiBi: the slopes); the attention generates b(t,j) from them.
    void *ws = calloc(grape_bias_workspace_bytes(pe, B, T) + 1, 1);
    grape_bias_factors *f; // a handle inside ws; its channels: grape_bias_factor
    CHECK(grape_bias_factors_forward(&f, ws, pe, qr, kr, NULL, 0, B, T));

    // 4. Fused causal attention, scale 1/sqrt(D).
    grape_attn_opts opts = {0};
    CHECK(grape_attn_forward(out, lse, qr, kr, v, cfg.bias != GRAPE_BIAS_NONE ? f : NULL, &opts, B, T, H, D));

    // 5. The same row by hand: query t, head h: softmax_j (q~_t . k~_j / sqrt(D) - m_h (t - j)) v_j.
    int t = T - 1, h = 1;
    float slope[H];
    CHECK(grape_alibi_slopes(slope, H));
    double qt[D], kj[D], logit[T], m = -INFINITY, z = 0, err = 0;
    rope_naive(qt, &q[(t * H + h) * D], t, cfg.rope_base);
    for (int j = 0; j <= t; j++) {
        rope_naive(kj, &k[(j * H + h) * D], j, cfg.rope_base);
        double dot = 0;
        for (int d = 0; d < D; d++) dot += qt[d] * kj[d];
        logit[j] = dot / sqrt(D) - (cfg.bias == GRAPE_BIAS_ALIBI ? slope[h] * (t - j) : 0);
        m = fmax(m, logit[j]);
    }
    for (int j = 0; j <= t; j++) z += exp(logit[j] - m);
    for (int d = 0; d < D; d++) {
        double y = 0;
        for (int j = 0; j <= t; j++) y += exp(logit[j] - m) / z * v[(j * H + h) * D + d];
        err = fmax(err, fabs(y - out[(t * H + h) * D + d]));
    }
    char canon[GRAPE_PE_NAME_MAX];
    grape_pe_name(canon, sizeof canon, &cfg);
    printf("%s: out[t=%d, h=%d] vs the naive loop: max abs error %.2e\n", canon, t, h, err);
    free(params);
    free(ws);
    grape_pe_free(pe);
    return err < 1e-5 ? 0 : 1;
}
