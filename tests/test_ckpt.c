// test_ckpt.c — the public checkpoint API: grape_model_save -> grape_model_load gives bitwise-identical parameters,
// the same configuration and the same loss; the activation plan can be overridden; missing, truncated, corrupt and
// foreign files fail with GRAPE_ERR_IO / GRAPE_ERR_FORMAT and a message (leaks: the DEBUG=1 build's LeakSanitizer);
// a weights-only checkpoint cannot resume (grape_trainer_resume, hence `grape train --resume`, refuses it).
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "tmpdir.h"
#include "train/checkpoint.h"
#include "train/safetensors.h"
#include "train_util.h"
#include "util.h"

enum { B = 2, T = 12 };

// A reduced model with learned encoding parameters and KV-shift, initialised and perturbed so no tensor is trivial.
static grape_model *make_model(const char *pe) {
    grape_model_config c = {.n_layer = 2, .n_embd = 32, .n_head = 2, .vocab_size = 256, .max_batch = B, .max_seq = T};
    grape_pe_config_default(&c.pe, 2, 16);
    grape_model *m = NULL;
    if (grape_pe_parse(&c.pe, pe)) exit(2);
    c.pe.kv_shift = 1;
    if (grape_model_create(&m, &c) || grape_model_init(m, 7)) exit(2);
    t_rng r = t_seed(3);
    float *p = grape_model_params(m);
    for (size_t i = 0; i < grape_model_num_params(m); i++) p[i] += (float)(0.05 * t_normal(&r));
    if (grape_model_params_changed(m)) exit(2);
    return m;
}

static float loss_of(grape_model *m) {
    uint8_t tok[B * T], tgt[B * T];
    t_rng r = t_seed(11);
    for (int i = 0; i < B * T; i++) tok[i] = (uint8_t)t_randint(&r, 0, 255), tgt[i] = (uint8_t)t_randint(&r, 0, 255);
    float loss = -1;
    if (grape_model_forward(m, tok, tgt, B, T, &loss)) printf("# forward: %s\n", grape_last_error());
    return loss;
}

static int same_config(const grape_model_config *a, const grape_model_config *b) {
    char na[GRAPE_PE_NAME_MAX], nb[GRAPE_PE_NAME_MAX];
    grape_pe_name(na, sizeof na, &a->pe);
    grape_pe_name(nb, sizeof nb, &b->pe);
    return a->n_layer == b->n_layer && a->n_embd == b->n_embd && a->n_head == b->n_head &&
           a->vocab_size == b->vocab_size && !strcmp(na, nb) && a->pe.kv_shift == b->pe.kv_shift &&
           a->pe.rope_base == b->pe.rope_base && a->pe.ap_probe_dim == b->pe.ap_probe_dim;
}

static void test_round_trip(const char *pe) {
    char name[160];
    const char *dir = tmp_path(pe);
    grape_model *m = make_model(pe), *l = NULL;
    grape_status s = grape_model_save(m, dir);
    if (!s) s = grape_model_load(&l, dir, 0, 0);
    if (s) printf("# %s\n", grape_last_error());
    snprintf(name, sizeof name, "%s: save -> load", pe);
    if (!t_true(name, !s && l)) {
        grape_model_free(m);
        return;
    }
    size_t n = grape_model_num_params(m);
    snprintf(name, sizeof name, "%s: parameters bitwise identical, same configuration and plan", pe);
    t_true(name, grape_model_num_params(l) == n &&
                     !memcmp(grape_model_params(m), grape_model_params(l), n * sizeof(float)) &&
                     same_config(grape_model_get_config(m), grape_model_get_config(l)) &&
                     grape_model_get_config(l)->max_batch == B && grape_model_get_config(l)->max_seq == T);
    float lm = loss_of(m), ll = loss_of(l);
    printf("# %s: loss %.9g saved, %.9g loaded\n", pe, lm, ll);
    snprintf(name, sizeof name, "%s: identical loss after the round trip", pe);
    t_true(name, lm == ll && lm > 0);
    grape_model_free(l);

    s = grape_model_load(&l, dir, 1, 3 * T);
    snprintf(name, sizeof name, "%s: load with another activation plan (1 x %d)", pe, 3 * T);
    t_true(name, !s && grape_model_get_config(l)->max_batch == 1 && grape_model_get_config(l)->max_seq == 3 * T);
    grape_model_free(l);

    grape_train_config c;
    grape_train_state st;
    s = ckpt_read_meta(dir, &c, &st);
    if (!s) s = t_train(&c, dir, 1, NULL, NULL, NULL);
    printf("# %s\n", grape_last_error());
    snprintf(name, sizeof name, "%s: a weights-only checkpoint cannot resume", pe);
    t_true(name, s == GRAPE_ERR_FORMAT && strstr(grape_last_error(), "weights only"));
    grape_model_free(m);
}

static void expect(const char *name, const char *dir, int max_batch, grape_status want) {
    grape_model *m = (grape_model *)1; // must come back NULL
    grape_status s = grape_model_load(&m, dir, max_batch, 0);
    printf("# %s: %s\n", name, grape_last_error());
    t_true(name, s == want && !m && grape_last_error()[0]);
}

// Copy of dir's checkpoint into tmp/name with its size cut by `cut` bytes and byte `flip` (if >= 0) inverted.
static const char *damaged(const char *name, const char *dir, long cut, long flip) {
    char src[300], dst[300];
    const char *out = tmp_path(name);
    snprintf(src, sizeof src, "%s/%s", dir, GRAPE_CHECKPOINT_FILE);
    snprintf(dst, sizeof dst, "%s/%s", out, GRAPE_CHECKPOINT_FILE);
    FILE *f = fopen(src, "rb");
    if (!f || atomic_mkdirs(out)) exit(2);
    fseek(f, 0, SEEK_END);
    long n = ftell(f) - cut;
    unsigned char *b = malloc((size_t)n);
    fseek(f, 0, SEEK_SET);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) exit(2);
    fclose(f);
    if (flip >= 0) b[flip] = (unsigned char)~b[flip];
    FILE *g = fopen(dst, "wb");
    if (!g || fwrite(b, 1, (size_t)n, g) != (size_t)n || fclose(g)) exit(2);
    free(b);
    return out;
}

// Copy of dir's checkpoint into tmp/name with metadata overrides kv[2i] -> kv[2i+1] (NULL value: key dropped),
// made on the header's JSON tree; the tensor bytes are copied unchanged.
static const char *rewritten(const char *name, const char *dir, const char *const *kv, int n_kv) {
    char src[320], dst[320];
    const char *out = tmp_path(name);
    snprintf(src, sizeof src, "%s/%s", dir, GRAPE_CHECKPOINT_FILE);
    snprintf(dst, sizeof dst, "%s/%s", out, GRAPE_CHECKPOINT_FILE);
    FILE *f = fopen(src, "rb");
    uint64_t hlen;
    if (!f || atomic_mkdirs(out) || fread(&hlen, 8, 1, f) != 1) exit(2);
    fseek(f, 0, SEEK_END);
    size_t data = (size_t)ftell(f) - 8 - hlen;
    char *h = malloc(hlen), *d = malloc(data);
    fseek(f, 8, SEEK_SET);
    if (!h || !d || fread(h, 1, hlen, f) != hlen || fread(d, 1, data, f) != data) exit(2);
    fclose(f);
    json_t *root = json_loadb(h, hlen, 0, NULL), *meta = json_object_get(root, "__metadata__");
    for (int i = 0; i < n_kv; i++)
        if (kv[2 * i + 1] ? json_object_set_new(meta, kv[2 * i], json_string(kv[2 * i + 1]))
                          : json_object_del(meta, kv[2 * i]))
            exit(2);
    char *text = json_dumps(root, JSON_COMPACT);
    uint64_t n = strlen(text);
    FILE *g = fopen(dst, "wb");
    if (!g || fwrite(&n, 8, 1, g) != 1 || fwrite(text, 1, n, g) != n || fwrite(d, 1, data, g) != data || fclose(g))
        exit(2);
    json_decref(root);
    free(text);
    free(h);
    free(d);
    return out;
}

// The metadata follows the safetensors conventions ("format": "pt", every value a string); numbers travel as
// strings that must parse exactly.
static void test_metadata(const char *run) {
    char dir[300], path[320]; // tmp_path's buffers rotate
    snprintf(dir, sizeof dir, "%s", run);
    snprintf(path, sizeof path, "%s/%s", dir, GRAPE_CHECKPOINT_FILE);
    st_file *f = NULL;
    grape_status s = st_open(&f, path);
    const char *fmt = s ? NULL : st_meta(f, "format"), *g = s ? NULL : st_meta(f, "grape.format"),
               *v = s ? NULL : st_meta(f, "grape.format_version"), *nl = s ? NULL : st_meta(f, "model.n_layer");
    t_true("metadata: format pt, grape.format grape-checkpoint, version " CKPT_VERSION ", numbers as strings",
           fmt && !strcmp(fmt, "pt") && g && !strcmp(g, "grape-checkpoint") && v && !strcmp(v, CKPT_VERSION) && nl &&
               !strcmp(nl, "2") && !st_meta(f, "state.elapsed"));
    st_close(f);
    static const char *const bad[][2] = {
        {"model.n_layer", "2.5"}, {"model.n_layer", "abc"},      {"model.n_layer", ""},
        {"model.n_layer", " 2"},  {"model.n_layer", "+2"},       {"model.n_layer", "99999999999"},
        {"train.seed", "-1"},     {"opt.lr", "inf"},             {"opt.lr", "nan"},
        {"opt.lr", "0x1p-10"},    {"model.n_head", NULL},        {"grape.format_version", "99"},
        {"format", "tf"},         {"state.step", "1e3"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[160];
        snprintf(name, sizeof name, "metadata: %s = %s%s%s is refused, naming it", bad[i][0], bad[i][1] ? "'" : "",
                 bad[i][1] ? bad[i][1] : "(missing)", bad[i][1] ? "'" : "");
        grape_model *m = (grape_model *)1;
        s = grape_model_load(&m, rewritten("bad", dir, bad[i], 1), 0, 0);
        printf("# %s: %s\n", name, grape_last_error());
        int named = strstr(grape_last_error(), bad[i][0]) || strstr(grape_last_error(), "not a grape checkpoint") ||
                    strstr(grape_last_error(), "v99");
        t_true(name, s == GRAPE_ERR_FORMAT && !m && named);
    }
}

static void test_errors(void) {
    char dir[300], path[300]; // tmp_path's buffers rotate
    snprintf(dir, sizeof dir, "%s", tmp_path("grape-m+grape-ap"));
    expect("error: missing directory", tmp_path("no-such-run"), 0, GRAPE_ERR_IO);
    expect("error: truncated checkpoint", damaged("cut", dir, 100, -1), 0, GRAPE_ERR_FORMAT);
    expect("error: flipped header byte", damaged("flip", dir, 0, 8), 0, GRAPE_ERR_FORMAT);
    expect("error: flipped header length", damaged("len", dir, 0, 3), 0, GRAPE_ERR_FORMAT);
    expect("error: impossible activation plan", dir, -1, GRAPE_ERR_ARG);
    float x = 1;
    st_entry e = {.name = "wte", .ndim = 1, .shape = {1}, .data = &x};
    snprintf(path, sizeof path, "%s/%s", tmp_path("foreign"), GRAPE_CHECKPOINT_FILE);
    if (atomic_mkdirs(tmp_path("foreign")) || st_save(path, &e, 1, NULL, 0)) exit(2);
    expect("error: safetensors that is not a grape checkpoint", tmp_path("foreign"), 0, GRAPE_ERR_FORMAT);
    // A v1 checkpoint (one KV-shift gate, ap_paper, the old interleaved sign, folded grape-m-basis) is refused by
    // name, never misread.
    const char *v1[] = {"format", "grape-checkpoint", "format_version", "1"};
    snprintf(path, sizeof path, "%s/%s", tmp_path("v1"), GRAPE_CHECKPOINT_FILE);
    if (atomic_mkdirs(tmp_path("v1")) || st_save(path, &e, 1, v1, 2)) exit(2);
    grape_model *m = NULL;
    grape_status s = grape_model_load(&m, tmp_path("v1"), 0, 0);
    printf("# %s\n", grape_last_error());
    t_true("error: a format v1 checkpoint is refused with a message naming v1 and v2",
           s == GRAPE_ERR_FORMAT && !m && strstr(grape_last_error(), "format v1") && strstr(grape_last_error(), "v2"));
    t_true("error: NULL arguments", grape_model_load(NULL, dir, 0, 0) == GRAPE_ERR_ARG &&
                                        grape_model_save(NULL, dir) == GRAPE_ERR_ARG);
}

int main(void) {
    if (!tmp_create()) return perror("mkdtemp"), 2;
    test_round_trip("grape-m+grape-ap");
    test_round_trip("grape-m-ctx+fox");
    test_round_trip("xpos+grape-a-qk");
    test_metadata(tmp_path("grape-m+grape-ap"));
    test_errors();
    tmp_remove();
    return t_finish();
}
