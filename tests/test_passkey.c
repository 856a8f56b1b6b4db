// test_passkey.c — effective context and passkey retrieval (docs/EVALUATION.md): the Wilson interval against
// published values, the effective context of hand-made loss curves (flat, steady gain, gain that stops, noise, a
// late dip) against a naive band loop, the passkey effective context on hand-made accuracies, the sample layout
// (in place = out of place, filler cleaned), the task-mix spec and its determinism, and `grape passkey` end to end:
// a micro model trained with the documented mix retrieves >= 90% at its training length, the output is
// deterministic, bad input exits 1 with a message.
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eval/effctx.h"
#include "eval/passkey.h"
#include "tmpdir.h"
#include "train/data.h"
#include "train/task_mix.h"
#include "util.h"

// ---------------------------------------------------------------------------------------------------------------
// Wilson score interval

static void test_wilson(void) {
    // 95% Wilson intervals (z = 1.96), e.g. Newcombe (1998) Table I / R's binom::binom.wilson
    const struct {
        int k, n;
        double lo, hi;
    } c[] = {{0, 10, 0.0, 0.277533}, {5, 10, 0.236593, 0.763407}, {10, 10, 0.722467, 1.0}, {81, 263, 0.255289,
                                                                                             0.366210}};
    double err = 0;
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        double lo, hi;
        passkey_wilson(&lo, &hi, c[i].k, c[i].n, PASSKEY_Z95);
        err = fmax(err, fmax(fabs(lo - c[i].lo), fabs(hi - c[i].hi)));
    }
    t_check("wilson: published 95% intervals (0/10, 5/10, 10/10, 81/263)", err, 2e-5);
}

// ---------------------------------------------------------------------------------------------------------------
// Effective context from a loss curve

// The definition of effctx.h, octave by octave with direct sums (no prefix sums): the largest octave whose band
// mean is below every shorter band's by the margin.
static int naive_effctx(const double *loss, int L, double margin) {
    int best = 1;
    for (int c = 2; c <= L; c *= 2) {
        double here = 0, lowest = loss[0];
        for (int x = c / 2 + 1; x <= c; x++) here += loss[x - 1];
        here /= c - c / 2;
        for (int d = 2; d < c; d *= 2) {
            double m = 0;
            for (int x = d / 2 + 1; x <= d; x++) m += loss[x - 1];
            lowest = fmin(lowest, m / (d - d / 2));
        }
        if (here <= lowest - margin) best = c;
    }
    return best;
}

static void test_effctx(void) {
    enum { L = 4096 + 100 }; // not a power of two: the last octave is 4096
    static double loss[L], scratch[L + 1];
    const double m = EFFCTX_MARGIN_BITS;
    for (int c = 1; c <= L; c++) loss[c - 1] = 3.0;
    t_check("effctx: a flat curve gains nothing: 1", abs(effctx_from_loss(loss, L, m, scratch) - 1), 0);

    for (int c = 1; c <= L; c++) loss[c - 1] = 5.0 - 0.1 * log2((double)c); // 0.1 bits per doubling, forever
    t_check("effctx: 0.1 bits per doubling everywhere: the last octave, 4096",
            abs(effctx_from_loss(loss, L, m, scratch) - 4096), 0);
    // uniform noise of up to +-0.04 bits (4x the margin) on single positions: the bands average it out
    t_rng r = t_seed(11);
    for (int c = 1; c <= L; c++) loss[c - 1] += 0.08 * (t_uniform(&r) - 0.5);
    int noisy = effctx_from_loss(loss, L, m, scratch);
    t_check("effctx: +-0.04 bits of per-position noise does not decide it (still 4096)", abs(noisy - 4096), 0);
    t_check("effctx: noisy curve, prefix sums = naive band loop", abs(noisy - naive_effctx(loss, L, m)), 0);

    // 0.1 bits per doubling up to 256, flat after: the first band whose half beyond 256 makes the gain < 0.01
    for (int c = 1; c <= L; c++) loss[c - 1] = 5.0 - 0.1 * log2((double)(c < 256 ? c : 256));
    int stop = effctx_from_loss(loss, L, m, scratch);
    t_check("effctx: gain stops at 256: the octave (256, 512] still gains on (128, 256], (512, 1024] not: 512",
            abs(stop - 512), 0);
    t_check("effctx: stopped curve, prefix sums = naive band loop", abs(stop - naive_effctx(loss, L, m)), 0);

    // a plateau: 0.1 bits per doubling, nothing from (8, 16] to (16, 32], then 0.1 per doubling again: not the end
    double band16 = 0;
    for (int c = 1; c <= L; c++) loss[c - 1] = 5.0 - 0.1 * log2((double)c);
    for (int c = 9; c <= 16; c++) band16 += loss[c - 1] / 8;
    for (int c = 17; c <= 32; c++) loss[c - 1] = band16; // (16, 32] holds the mean of (8, 16]: it gains nothing
    int plateau = effctx_from_loss(loss, L, m, scratch);
    t_check("effctx: a plateau at (16, 32] followed by gains again does not end it: 4096", abs(plateau - 4096), 0);
    t_check("effctx: plateau curve, prefix sums = naive band loop", abs(plateau - naive_effctx(loss, L, m)), 0);

    // a loss that rises past 256 (extrapolation failure) then falls again from 2048, but not below its best at 256
    for (int c = 1; c <= L; c++)
        loss[c - 1] = c <= 256 ? 5.0 - 0.1 * log2((double)c) : c <= 2048 ? 4.2 + 0.001 * (c - 256) : 6.0 - 0.5 * log2(c / 2048.0);
    int dip = effctx_from_loss(loss, L, m, scratch);
    t_check("effctx: a rise past 256 ends it at 256, a later dip above the best does not extend it", abs(dip - 256), 0);
    t_check("effctx: rise-and-dip curve, prefix sums = naive band loop", abs(dip - naive_effctx(loss, L, m)), 0);

    double sums[8] = {0};
    for (int p = 0; p < 8; p++) sums[p] = 10 * M_LN2 * (8 - p); // 10 windows, loss(c) = 9 - c bits
    static double s2[17];
    t_check("effctx_from_sums: summed nats over windows -> bits (1 bit per position: all 8)",
            abs(effctx_from_sums(sums, 10, 8, m, s2) - 8), 0);
    t_check("effctx_from_sums leaves the curve in bits in its scratch (loss(3) = 6)", fabs(s2[2] - 6.0), 1e-12);

    // octave band means: (c/2, c] of loss(c) = 9 - c, c = 1..8: 8 | 7 | (6+5)/2 | (4+3+2+1)/4
    double bands[EFFCTX_MAX_BANDS];
    int nb = effctx_bands(s2, 8, bands, s2 + 8);
    t_check("effctx_bands: 4 octaves of 8 positions", abs(nb - 4), 0);
    t_check("effctx_bands: band 1 is position 1", fabs(bands[0] - 8.0), 1e-12);
    t_check("effctx_bands: band (1, 2]", fabs(bands[1] - 7.0), 1e-12);
    t_check("effctx_bands: band (2, 4]", fabs(bands[2] - 5.5), 1e-12);
    t_check("effctx_bands: band (4, 8]", fabs(bands[3] - 2.5), 1e-12);
    double from_sums[EFFCTX_MAX_BANDS];
    t_check("effctx_bands_from_sums: the same 4 bands straight from the summed nats",
            abs(effctx_bands_from_sums(sums, 10, 8, from_sums, s2) - 4) + fabs(from_sums[0] - 8.0) +
                fabs(from_sums[1] - 7.0) + fabs(from_sums[2] - 5.5) + fabs(from_sums[3] - 2.5),
            1e-12);
    const double rec[] = {4.0, 3.0, 3.5, 2.995, 2.98, 3.2, 2.9};
    t_check("effctx_from_bands: the last record low by >= 0.01 (2.9 at 64; 2.995 at 8 is short by 0.005, 2.98 at 16"
            " is one by 0.02)", abs(effctx_from_bands(rec, 7, m) - 64), 0);
    t_check("effctx_from_bands: without the last band, 16", abs(effctx_from_bands(rec, 6, m) - 16), 0);
    t_check("effctx_from_bands: one band: 1", abs(effctx_from_bands(rec, 1, m) - 1), 0);
    t_check("effctx_bands: L = 4196 has the octaves 1 ... 4096", abs(effctx_bands(loss, L, bands, scratch) - 13), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Passkey effective context

static void test_passkey_effective(void) {
    const int lens[] = {64, 128, 256, 512};
    const double acc1[] = {0.95, 0.90, 0.50, 0.95};
    t_check("passkey eff: 0.90 >= 0.9 x 0.95 keeps 128, 0.50 ends the run (512 not reached)",
            abs(passkey_effective_context(lens, acc1, 4, 64, 0.9) - 128), 0);
    const double acc2[] = {1.0, 1.0, 0.9, 0.9};
    t_check("passkey eff: 0.9 >= 0.9 x 1.0 to the end: 512", abs(passkey_effective_context(lens, acc2, 4, 64, 0.9) - 512),
            0);
    const double acc3[] = {0.0, 0.0, 0.0, 0.0};
    t_check("passkey eff: nothing learned at the training length: 0",
            abs(passkey_effective_context(lens, acc3, 4, 64, 0.9)), 0);
    const double acc5[] = {0.08, 0.21, 0.31, 0.25};
    t_check("passkey eff: chance level at the training length (0.08 < 0.5, not learned): 0, not 512",
            abs(passkey_effective_context(lens, acc5, 4, 64, 0.9)), 0);
    const double acc6[] = {0.5, 0.45, 0.2, 0.5};
    t_check("passkey eff: exactly 0.5 at the training length counts as learned: 128",
            abs(passkey_effective_context(lens, acc6, 4, 64, 0.9) - 128), 0);
    t_check("passkey eff: training length not evaluated: 0", abs(passkey_effective_context(lens, acc2, 4, 100, 0.9)),
            0);
    const int shuffled[] = {512, 64, 256, 128};
    const double acc4[] = {0.95, 0.95, 0.50, 0.90};
    t_check("passkey eff: lengths in any order (same as the first case)",
            abs(passkey_effective_context(shuffled, acc4, 4, 64, 0.9) - 128), 0);
    passkey_cell cells[4] = {{64, 0, 10, 9, 0, 0}, {64, 1, 10, 7, 0, 0}, {128, 0, 10, 2, 0, 0}, {128, 1, 10, 0, 0, 0}};
    double acc[2];
    passkey_length_accuracy(acc, cells, 4, lens, 2);
    t_check("passkey: accuracy per length pools its depths (16/20, 2/20)", fmax(fabs(acc[0] - 0.8), fabs(acc[1] - 0.1)),
            1e-15);
}

// ---------------------------------------------------------------------------------------------------------------
// Samples and the task mix

static void test_build(void) {
    const char *filler = "ab 3c#de"; // a digit and a '#' in the filler become spaces
    uint8_t tok[16], tgt[16];
    const uint8_t key[] = "7";
    passkey_insert ins[2] = {{2, key}, {8, key}};
    int L = 11; // 8 filler bytes + 2 inserts of '#' + 1 digit = 12 bytes = L + 1
    t_check("passkey_filler_len(11, 2 inserts, 1 digit) = 8", abs(passkey_filler_len(L, 2, 1) - 8), 0);
    passkey_build(tok, tgt, L, (const uint8_t *)filler, ins, 2, 1);
    char s[13];
    memcpy(s, tok, 11);
    s[11] = (char)tgt[10];
    s[12] = '\0';
    t_true("passkey_build: 'ab#7  c de#7' (needle at depth 2, query last, filler cleaned)", !strcmp(s, "ab#7  c de#7"));
    t_true("passkey_build: targets are tokens shifted by one", !memcmp(tok + 1, tgt, 10));

    // in place (filler = tokens) equals out of place, for several insert layouts
    t_rng r = t_seed(3);
    int same = 1;
    for (int trial = 0; trial < 50; trial++) {
        enum { T = 40 };
        uint8_t win[T + 1], a[T], b[T], c[T], d[T], keys[3][3] = {"123", "456", "789"};
        for (int i = 0; i <= T; i++) win[i] = (uint8_t)('a' + t_randint(&r, 0, 25));
        int n = passkey_filler_len(T, 4, 3), at[4];
        for (int i = 0; i < 4; i++) at[i] = t_randint(&r, 0, n);
        for (int i = 1; i < 4; i++) // insertion sort
            for (int j = i; j > 0 && at[j] < at[j - 1]; j--) {
                int x = at[j];
                at[j] = at[j - 1], at[j - 1] = x;
            }
        passkey_insert in4[4] = {{at[0], keys[0]}, {at[1], keys[0]}, {at[2], keys[1]}, {at[3], keys[1]}};
        memcpy(c, win, T);
        passkey_build(a, b, T, win, in4, 4, 3);
        passkey_build(c, d, T, c, in4, 4, 3);
        same &= !memcmp(a, c, T) && !memcmp(b, d, T);
    }
    t_true("passkey_build: in place (filler = tokens) equals out of place (50 layouts)", same);
}

static void test_mix_spec(void) {
    task_mix m;
    char name[GRAPE_TASK_MIX_MAX];
    int ok = !task_mix_parse(&m, "passkey:0.25") && m.frac == 0.25 && m.key_len == 1 && m.pairs == 1;
    task_mix_name(name, sizeof name, &m);
    t_true("task mix: passkey:0.25 -> defaults, canonical 'passkey:0.25'", ok && !strcmp(name, "passkey:0.25"));
    ok = !task_mix_parse(&m, "passkey:1,same=1,pairs=4,key=2") && m.frac == 1 && m.key_len == 2 && m.pairs == 4 &&
         m.same_key == 1;
    task_mix_name(name, sizeof name, &m);
    t_true("task mix: options in any order, canonical order 'passkey:1,key=2,pairs=4,same=1'",
           ok && !strcmp(name, "passkey:1,key=2,pairs=4,same=1"));
    ok = !task_mix_parse(&m, "") && m.frac == 0;
    task_mix_name(name, sizeof name, &m);
    t_true("task mix: empty = none, named ''", ok && !name[0]);
    const char *bad[] = {"passkey", "passkey:", "passkey:1.5", "passkey:-0.1", "recall:0.5", "passkey:0.5,key=0",
                         "passkey:0.5,key=17", "passkey:0.5,pairs=0", "passkey:0.5,depth=3", "passkey:0.5x"};
    int refused = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        refused &= task_mix_parse(&m, bad[i]) == GRAPE_ERR_ARG && strstr(grape_last_error(), bad[i]);
    t_true("task mix: 10 bad specs refused, the message quoting the spec", refused);
}

static void test_mix_apply(void) {
    enum { B = 64, T = 32 };
    static uint8_t tok[B * T], tgt[B * T], tok2[B * T], tgt2[B * T], orig[B * T];
    t_rng r = t_seed(9);
    for (int i = 0; i < B * T; i++) orig[i] = (uint8_t)('a' + t_randint(&r, 0, 25));
    task_mix m;
    task_mix_parse(&m, "passkey:0.5,key=2,pairs=2");
    uint64_t rng1 = data_rng_seed(7), rng2 = data_rng_seed(7);
    memcpy(tok, orig, sizeof tok), memcpy(tgt, orig, sizeof tgt);
    memcpy(tok2, orig, sizeof tok), memcpy(tgt2, orig, sizeof tgt);
    task_mix_apply(tok, tgt, &m, &rng1, B, T, 0, B);
    task_mix_apply(tok2, tgt2, &m, &rng2, B, T, 0, B);
    t_true("task mix: the same RNG state gives the same batch (and the same state after)",
           !memcmp(tok, tok2, sizeof tok) && !memcmp(tgt, tgt2, sizeof tgt) && rng1 == rng2);
    int mixed = 0, well_formed = 1;
    for (int b = 0; b < B; b++) {
        const uint8_t *x = tok + b * T, *y = tgt + b * T;
        if (!memcmp(x, orig + b * T, T)) continue;
        mixed++;
        int marks = 0;
        for (int t = 0; t < T; t++) marks += x[t] == PASSKEY_MARK;
        // the row ends with the second pair's query '#' K K; its needle holds the same key
        int ok = y[T - 3] == PASSKEY_MARK && marks == 4 && y[T - 2] >= '0' && y[T - 2] <= '9', needle = 0;
        for (int t = 0; t + 2 < T - 2; t++) // a needle '#' K K wholly before the final query at s[T-2]
            needle |= x[t] == PASSKEY_MARK && x[t + 1] == y[T - 2] && x[t + 2] == y[T - 1];
        well_formed &= ok && needle && !memcmp(x + 1, y, T - 1);
    }
    t_true("task mix 0.5: between 20 and 44 of 64 rows are passkey samples", mixed >= 20 && mixed <= 44);
    t_true("task mix: each mixed row holds 2 needle/query pairs, ends with a query whose needle came before",
           well_formed);
    memcpy(tok, orig, sizeof tok);
    task_mix_parse(&m, "");
    uint64_t rng3 = data_rng_seed(7);
    task_mix_apply(tok, tgt, &m, &rng3, B, T, 0, B);
    t_true("no task mix: the batch and the RNG are untouched", !memcmp(tok, orig, sizeof tok) && rng3 == data_rng_seed(7));
}

// ---------------------------------------------------------------------------------------------------------------
// grape passkey end to end

static const char *argv0;

// Run `grape ARGS` (the grape next to this test binary), stdout into out (cap bytes); exit status.
static int run_out(const char *args, char *out, size_t cap) {
    char self[512], cmd[4096];
    snprintf(self, sizeof self, "%s", argv0);
    snprintf(cmd, sizeof cmd, "'%s/../grape' %s 2>/dev/null", dirname(self), args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static double json_number(const char *s, const char *key) {
    const char *p = strstr(s, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

// The fastest-learning documented setup (docs/EVALUATION.md): micro preset, every row a passkey sample.
#define LEARN "train --preset micro --pe rope --task-mix " PASSKEY_TEST_MIX " --steps " PASSKEY_TEST_STEPS \
              " --lr 3e-3 --threads 1 --quiet --eval-interval 0"
#ifndef PASSKEY_TEST_MIX
#define PASSKEY_TEST_MIX "passkey:1,pairs=4,same=1"
#define PASSKEY_TEST_STEPS "300"
#endif

static int same_file(const char *a, const char *b) {
    FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
    int same = f && g;
    for (int x = 0, y = 0; same && (x != EOF || y != EOF);) same = (x = fgetc(f)) == (y = fgetc(g));
    if (f) fclose(f);
    if (g) fclose(g);
    return same;
}

// The mix is drawn from the sampler's RNG, which the checkpoint keeps: 4 steps + resume to 8 = 8 steps at once.
static void test_resume(void) {
    char args[1024], err[2048], a[300], b[300];
    const char *run = "train --preset micro --pe rope --task-mix passkey:0.5,pairs=2 --threads 1 --quiet "
                      "--eval-interval 0 --save-interval 0";
    snprintf(a, sizeof a, "%s", tmp_path("whole"));
    snprintf(b, sizeof b, "%s", tmp_path("split"));
    snprintf(args, sizeof args, "%s --steps 8 --out %s", run, a);
    int ok = t_run_grape(argv0, args, err, sizeof err) == 0;
    snprintf(args, sizeof args, "%s --steps 4 --decay-steps 8 --out %s", run, b);
    ok = ok && t_run_grape(argv0, args, err, sizeof err) == 0;
    snprintf(args, sizeof args, "%s --steps 8 --decay-steps 8 --out %s --resume", run, b);
    ok = ok && t_run_grape(argv0, args, err, sizeof err) == 0;
    snprintf(a + strlen(a), sizeof a - strlen(a), "/model.safetensors");
    snprintf(b + strlen(b), sizeof b - strlen(b), "/model.safetensors");
    if (!t_true("task mix: 4 steps + --resume to 8 = 8 steps at once (byte-identical checkpoint)", ok && same_file(a, b)))
        printf("# %s\n", err);
}

static void test_cli(void) {
    static char out[1 << 16], out2[1 << 16], err[2048];
    char args[2048], ck[300];
    snprintf(ck, sizeof ck, "%s", tmp_path("pk"));
    snprintf(args, sizeof args, LEARN " --out %s", ck);
    if (!t_true("train micro with the passkey mix", t_run_grape(argv0, args, err, sizeof err) == 0)) {
        printf("# %s\n", err);
        return;
    }
    snprintf(args, sizeof args, "passkey --ckpt %s --lengths 64,128 --depths 0,0.5,1 --trials 40 --json --threads 1", ck);
    int rc = run_out(args, out, sizeof out);
    double acc = json_number(out, "{\"length\": 64, \"accuracy\": ");
    printf("# micro passkey accuracy at the training length 64: %.3f\n", acc);
    t_true("a micro model learns the task: >= 90% exact at its training length (120 trials)", !rc && acc >= 0.9);
    t_true("passkey --json: effective_context and 6 cells with Wilson bounds",
           strstr(out, "\"effective_context\": ") && strstr(out, "\"ci_low\": ") &&
               json_number(out, "\"training_length\": ") == 64);
    rc = run_out(args, out2, sizeof out2);
    t_true("passkey: the same command gives the same output", !rc && !strcmp(out, out2));

    const struct {
        const char *args, *msg;
    } bad[] = {{"passkey", "--ckpt"},
               {"passkey --ckpt /nonexistent/dir", "cannot load"},
               {"passkey --ckpt CK --depths 0.5,1.5", "--depths"},
               {"passkey --ckpt CK --trials 0", "--trials"},
               {"passkey --ckpt CK --lengths 3", "too short"},
               {"passkey --ckpt CK --key 17", "--key"},
               {"passkey --ckpt CK --lengths 64,1048576", "validation document"},
               {"passkey --ckpt CK --bogus 1", "--bogus"},
               {"train --preset micro --task-mix passkey:2 --steps 1 --out CK2", "fraction"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char a[1024], label[256];
        const char *at = strstr(bad[i].args, "CK");
        if (at)
            snprintf(a, sizeof a, "%.*s%s%s", (int)(at - bad[i].args), bad[i].args, ck, at + 2);
        else
            snprintf(a, sizeof a, "%s", bad[i].args);
        rc = t_run_grape(argv0, a, err, sizeof err);
        snprintf(label, sizeof label, "bad input '%s': exit 1, message names '%s'", bad[i].args, bad[i].msg);
        if (!t_true(label, rc == 1 && strstr(err, bad[i].msg))) printf("# exit %d: %s\n", rc, err);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    argv0 = argv[0];
    test_wilson();
    test_effctx();
    test_passkey_effective();
    test_build();
    test_mix_spec();
    test_mix_apply();
    if (access("data/kjv.txt", R_OK) != 0 && system("scripts/make_data.sh >/dev/null") != 0)
        return t_true("data/kjv.txt exists (scripts/make_data.sh)", 0), t_finish();
    if (!tmp_create()) return t_true("create a temporary directory", 0), t_finish();
    test_resume();
    test_cli();
    tmp_remove();
    return t_finish();
}
