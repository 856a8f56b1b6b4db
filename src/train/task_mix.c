// task_mix.c — passkey samples for training and evaluation (task_mix.h).
#include "train/task_mix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/data.h"

// Uniform integer in [0, n) from the splitmix64 state (multiply-shift: no modulo bias worth naming for n << 2^32).
static uint64_t draw(uint64_t *rng, uint64_t n) { return (uint64_t)(((unsigned __int128)data_rng_next(rng) * n) >> 64); }

// ",name=V" with V in [lo, hi] at *p into *out; advances *p. 0 when p does not start with ",name=".
static int option(const char **p, const char *name, int lo, int hi, int *out, grape_status *s, const char *spec) {
    size_t n = strlen(name);
    if ((*p)[0] != ',' || strncmp(*p + 1, name, n) || (*p)[1 + n] != '=') return 0;
    char *end;
    long v = strtol(*p + 2 + n, &end, 10);
    if (end == *p + 2 + n || v < lo || v > hi)
        *s = error_fail(GRAPE_ERR_ARG, "task mix '%s': %s=N wants N in [%d, %d]", spec, name, lo, hi);
    *out = (int)v;
    *p = end;
    return 1;
}

grape_status task_mix_parse(task_mix *m, const char *spec) {
    *m = (task_mix){0, 1, 1, 0};
    if (!spec || !*spec) return GRAPE_OK;
    if (strncmp(spec, "passkey:", 8))
        return error_fail(GRAPE_ERR_ARG, "task mix '%s': expected passkey:F[,key=N][,pairs=P][,same=0|1]", spec);
    char *end;
    m->frac = strtod(spec + 8, &end);
    if (end == spec + 8 || !(m->frac >= 0 && m->frac <= 1))
        return error_fail(GRAPE_ERR_ARG, "task mix '%s': the fraction F must be a number in [0, 1]", spec);
    const char *p = end;
    grape_status s = GRAPE_OK;
    while (!s && *p)
        if (!option(&p, "key", 1, PASSKEY_MAX_KEY, &m->key_len, &s, spec) &&
            !option(&p, "pairs", 1, PASSKEY_MAX_PAIRS, &m->pairs, &s, spec) &&
            !option(&p, "same", 0, 1, &m->same_key, &s, spec))
            return error_fail(GRAPE_ERR_ARG, "task mix '%s': unexpected '%s' (options: ,key=N ,pairs=P ,same=0|1)",
                              spec, p);
    return s;
}

void task_mix_name(char *buf, size_t n, const task_mix *m) {
    // options at their defaults are left out, like encoding names; the trainer parses this string, so %g's
    // rounding of F is the fraction it uses
    char opt[64] = "";
    if (m->key_len != 1) snprintf(opt, sizeof opt, ",key=%d", m->key_len);
    if (m->pairs != 1) snprintf(opt + strlen(opt), sizeof opt - strlen(opt), ",pairs=%d", m->pairs);
    if (m->same_key) snprintf(opt + strlen(opt), sizeof opt - strlen(opt), ",same=1");
    if (m->frac == 0)
        snprintf(buf, n, "%s", "");
    else
        snprintf(buf, n, "passkey:%g%s", m->frac, opt);
}

int passkey_filler_len(int L, int n_ins, int key_len) { return L + 1 - n_ins * (1 + key_len); }

// Byte o of the sample s[0..L] into tokens (s[0..L)) and targets (s[1..L]).
static void put(uint8_t *tokens, uint8_t *targets, int L, int o, uint8_t c) {
    if (o < L) tokens[o] = c;
    if (o > 0) targets[o - 1] = c;
}

// Filler bytes that could be mistaken for the needle become spaces.
static uint8_t clean(uint8_t c) { return (c >= '0' && c <= '9') || c == PASSKEY_MARK ? ' ' : c; }

void passkey_build(uint8_t *tokens, uint8_t *targets, int L, const uint8_t *filler, const passkey_insert *ins,
                   int n_ins, int key_len) {
    // From the end backwards: output position o only ever exceeds the filler index j it copies (by the inserts
    // before it), so in place every filler byte is read before its place is written.
    int o = L, j = passkey_filler_len(L, n_ins, key_len);
    for (int i = n_ins - 1; i >= -1; i--) {
        int stop = i >= 0 ? ins[i].at : 0;
        for (; j > stop; j--, o--) put(tokens, targets, L, o, clean(filler[j - 1]));
        if (i < 0) break;
        for (int c = key_len - 1; c >= 0; c--, o--) put(tokens, targets, L, o, ins[i].key[c]);
        put(tokens, targets, L, o--, PASSKEY_MARK);
    }
}

void passkey_random_key(uint8_t *key, int key_len, uint64_t *rng) {
    for (int i = 0; i < key_len; i++) key[i] = (uint8_t)('0' + draw(rng, 10));
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

void task_mix_apply(uint8_t *tokens, uint8_t *targets, const task_mix *m, uint64_t *rng, int B, int T, int lo,
                    int n_rows) {
    int P = m->pairs, n = passkey_filler_len(T, 2 * P, m->key_len);
    if (m->frac <= 0 || n < 1) return;
    uint64_t cut = (uint64_t)(m->frac * 18446744073709551616.0); // frac 1 saturates: every row
    uint8_t keys[PASSKEY_MAX_PAIRS][PASSKEY_MAX_KEY];
    int at[2 * PASSKEY_MAX_PAIRS];
    passkey_insert ins[2 * PASSKEY_MAX_PAIRS];
    for (int b = 0; b < B; b++) {
        if (m->frac < 1 && data_rng_next(rng) >= cut) continue;
        // needle i at at[2i], its query at at[2i+1]; the last query closes the sample
        for (int i = 0; i < 2 * P - 1; i++) at[i] = (int)draw(rng, (uint64_t)n + 1);
        qsort(at, (size_t)(2 * P - 1), sizeof *at, cmp_int);
        at[2 * P - 1] = n;
        for (int i = 0; i < P; i++) {
            if (i == 0 || !m->same_key) passkey_random_key(keys[i], m->key_len, rng);
            if (i > 0 && m->same_key) memcpy(keys[i], keys[0], (size_t)m->key_len);
            ins[2 * i] = (passkey_insert){at[2 * i], keys[i]};
            ins[2 * i + 1] = (passkey_insert){at[2 * i + 1], keys[i]};
        }
        if (b < lo || b >= lo + n_rows) continue; // another rank's row: its draws are taken all the same
        uint8_t *tok = tokens + (size_t)(b - lo) * T, *tgt = targets + (size_t)(b - lo) * T;
        passkey_build(tok, tgt, T, tok, ins, 2 * P, m->key_len); // in place
    }
}
