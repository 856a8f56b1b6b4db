// test_ckpt_hostile.c — every hostile checkpoint of docs/RELIABILITY.md, made by mutating a real one (a resumable
// checkpoint of a 1-step `grape train` run), is refused by grape_model_load (GRAPE_ERR_FORMAT, or
// GRAPE_ERR_UNSUPPORTED for an integer dtype, no model, a message naming the file and the problem) and by the
// commands that read checkpoints: `grape sample`, `grape eval` and `grape train --resume` (exit status 1 or 2, the
// same message on stderr, no crash or sanitizer report). Absurd configurations are refused before anything is
// allocated from them (the DEBUG=1 build's AddressSanitizer aborts on allocations past its limit, so a huge one
// would fail the run).
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "tmpdir.h"
#include "train/checkpoint.h"
#include "train_util.h"
#include "util.h"

typedef enum {
    CUT,       // keep the first n bytes
    CUT_TAIL,  // drop the last n bytes
    HLEN,      // header length field := n (0: the file size)
    RAW,       // the file is text
    HEADER,    // header := text + the good header minus its '{' (text "" and n 1: text alone)
    SET,       // tensor.key := JSON text (tensor "__metadata__": key := string text)
    OVERLAP,   // the last tensor starts 4 bytes early (and ends 4 early)
    GAP,       // 4 bytes inserted before the last tensor
    DROP,      // tensor and its bytes removed (the later tensors move up)
    ADD,       // one more F32 tensor of 1 element at the end
    POKE,      // element 0 of tensor := the float n encodes (1: NaN, 2: +Inf)
} edit_kind;

typedef struct {
    const char *name;
    edit_kind kind;
    const char *tensor, *key, *text;
    unsigned long long n;
    const char *want; // in the message
    grape_status status;
} hostile_case;

// A case that edits only the stored activation plan: grape eval plans the model for its own lengths, so that plan
// does not matter to it (the file is valid for eval).
static int plan_only(const hostile_case *c) { return c->kind == SET && !strcmp(c->key, "model.max_seq"); }

static unsigned char *good;
static size_t good_n;

static void spit(const char *p, const void *a, size_t na, const void *b, size_t nb) {
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(a, 1, na, f) != na || (nb && fwrite(b, 1, nb, f) != nb) || fclose(f)) exit(2);
}

// The tensor entry of root with the largest end offset, and that end.
static json_t *last_tensor(json_t *root, size_t *begin, size_t *end) {
    const char *k;
    json_t *v, *last = NULL;
    *end = 0;
    json_object_foreach(root, k, v) {
        json_t *off = json_object_get(v, "data_offsets");
        if (off && (size_t)json_integer_value(json_array_get(off, 1)) >= *end) {
            last = v;
            *begin = (size_t)json_integer_value(json_array_get(off, 0));
            *end = (size_t)json_integer_value(json_array_get(off, 1));
        }
    }
    return last;
}

static void shift_last(json_t *root, long by) {
    size_t b, e;
    json_t *t = last_tensor(root, &b, &e);
    json_object_set_new(t, "data_offsets", json_pack("[II]", (json_int_t)b + by, (json_int_t)e + by));
}

// Header tree edits; *data, *dn the tensor bytes (edited in place or replaced).
static void edit_tree(json_t *root, const hostile_case *c, unsigned char **data, size_t *dn) {
    size_t b, e;
    if (c->kind == SET && !strcmp(c->tensor, "__metadata__"))
        json_object_set_new(json_object_get(root, "__metadata__"), c->key, json_string(c->text));
    else if (c->kind == SET)
        json_object_set_new(json_object_get(root, c->tensor), c->key, json_loads(c->text, JSON_DECODE_ANY, NULL));
    else if (c->kind == OVERLAP)
        shift_last(root, -4);
    else if (c->kind == GAP) {
        shift_last(root, 4);
        last_tensor(root, &b, &e);
        unsigned char *d = calloc(1, *dn + 4);
        memcpy(d, *data, b - 4);
        memcpy(d + b, *data + b - 4, *dn - (b - 4));
        free(*data);
        *data = d, *dn += 4;
    } else if (c->kind == DROP) {
        json_t *off = json_object_get(json_object_get(root, c->tensor), "data_offsets");
        size_t b0 = (size_t)json_integer_value(json_array_get(off, 0)), n = json_integer_value(json_array_get(off, 1)) - b0;
        json_object_del(root, c->tensor);
        const char *k;
        json_t *v;
        json_object_foreach(root, k, v) {
            json_t *o = json_object_get(v, "data_offsets");
            size_t ob = o ? (size_t)json_integer_value(json_array_get(o, 0)) : 0;
            if (o && ob >= b0 + n)
                json_object_set_new(v, "data_offsets",
                                    json_pack("[II]", (json_int_t)(ob - n), json_integer_value(json_array_get(o, 1)) - (json_int_t)n));
        }
        memmove(*data + b0, *data + b0 + n, *dn - b0 - n);
        *dn -= n;
    } else if (c->kind == ADD) {
        json_object_set_new(root, "extra", json_pack("{s:s,s:[i],s:[II]}", "dtype", "F32", "shape", 1, "data_offsets",
                                                     (json_int_t)*dn, (json_int_t)*dn + 4));
        *data = realloc(*data, *dn + 4);
        memset(*data + *dn, 0, 4);
        *dn += 4;
    } else if (c->kind == POKE) {
        json_t *off = json_object_get(json_object_get(root, c->tensor), "data_offsets");
        float x = c->n == 1 ? NAN : INFINITY;
        memcpy(*data + json_integer_value(json_array_get(off, 0)), &x, 4);
    }
}

// dir/model.safetensors := the good checkpoint with c applied.
static void make_case(const char *dir, const hostile_case *c) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, GRAPE_CHECKPOINT_FILE);
    if (atomic_mkdirs(dir)) exit(2);
    uint64_t hl;
    memcpy(&hl, good, 8);
    if (c->kind == CUT) return spit(path, good, c->n, NULL, 0);
    if (c->kind == CUT_TAIL) return spit(path, good, good_n - c->n, NULL, 0);
    if (c->kind == RAW) return spit(path, c->text, strlen(c->text), NULL, 0);
    if (c->kind == HLEN) {
        unsigned char *b = malloc(good_n);
        uint64_t v = c->n ? c->n : good_n;
        memcpy(b, good, good_n);
        memcpy(b, &v, 8);
        spit(path, b, good_n, NULL, 0);
        return free(b);
    }
    size_t dn = good_n - 8 - hl;
    unsigned char *data = malloc(dn);
    memcpy(data, good + 8 + hl, dn);
    char *text;
    if (c->kind == HEADER) {
        text = malloc(strlen(c->text) + hl + 1);
        strcpy(text, c->text);
        if (!c->n) memcpy(text + strlen(c->text), good + 9, hl - 1), text[strlen(c->text) + hl - 1] = '\0';
    } else {
        json_t *root = json_loadb((const char *)good + 8, hl, 0, NULL);
        edit_tree(root, c, &data, &dn);
        text = json_dumps(root, JSON_COMPACT);
        json_decref(root);
    }
    uint64_t n = strlen(text);
    unsigned char *head = malloc(8 + n);
    memcpy(head, &n, 8);
    memcpy(head + 8, text, n);
    spit(path, head, 8 + n, data, dn);
    free(head);
    free(text);
    free(data);
}

static char deep[2 * 10000 + 16];

static const hostile_case cases[] = {
    {"empty file", CUT, 0, 0, 0, 0, "not a safetensors file (0 bytes)", GRAPE_ERR_FORMAT},
    {"truncated in the header", CUT, 0, 0, 0, 40, "header length", GRAPE_ERR_FORMAT},
    {"truncated in the data (offsets past the end)", CUT_TAIL, 0, 0, 0, 100, "past the end", GRAPE_ERR_FORMAT},
    {"wrong magic (a zip file)", RAW, 0, 0, "PK\x03\x04\x14\x01\x06\x01 not a checkpoint", 0, "header length",
     GRAPE_ERR_FORMAT},
    {"wrong magic (text)", RAW, 0, 0, "hello, this is not a checkpoint\n", 0, "header length", GRAPE_ERR_FORMAT},
    {"header length past the end", HLEN, 0, 0, 0, 0, "out of range", GRAPE_ERR_FORMAT},
    {"header length 2^63", HLEN, 0, 0, 0, 1ull << 63, "out of range", GRAPE_ERR_FORMAT},
    {"header length 2^64 - 1", HLEN, 0, 0, 0, ~0ull, "out of range", GRAPE_ERR_FORMAT},
    {"header not JSON", HEADER, 0, 0, "this is not JSON", 1, "not valid JSON", GRAPE_ERR_FORMAT},
    {"JSON nested 10,000 deep", HEADER, 0, 0, deep, 1, "not valid JSON", GRAPE_ERR_FORMAT},
    {"duplicate keys", HEADER, 0, 0, "{\"wte\":{},", 0, "duplicate", GRAPE_ERR_FORMAT},
    {"key not a string", HEADER, 0, 0, "{1:{},", 0, "not valid JSON", GRAPE_ERR_FORMAT},
    {"offsets out of range (end 2^40)", SET, "ln_f.weight", "data_offsets", "[0,1099511627776]", 0, "disagree",
     GRAPE_ERR_FORMAT},
    {"overflowing offsets", SET, "wte", "data_offsets", "[9223372036854775807,1]", 0, "disagree", GRAPE_ERR_FORMAT},
    {"overflowing shape 2^40 x 2^40", SET, "wte", "shape", "[1099511627776,1099511627776]", 0, "overflows",
     GRAPE_ERR_FORMAT},
    {"overlapping tensors", OVERLAP, 0, 0, 0, 0, "overlapping", GRAPE_ERR_FORMAT},
    {"gap between tensors", GAP, 0, 0, 0, 0, "gap before", GRAPE_ERR_FORMAT},
    {"dtype of another width (F16)", SET, "wte", "dtype", "\"F16\"", 0, "disagree with dtype", GRAPE_ERR_FORMAT},
    {"dtype of the same width (I32)", SET, "wte", "dtype", "\"I32\"", 0, "not F32", GRAPE_ERR_UNSUPPORTED},
    {"unknown dtype", SET, "wte", "dtype", "\"F31\"", 0, "unknown dtype", GRAPE_ERR_FORMAT},
    {"shape not matching the offsets", SET, "wte", "shape", "[256,31]", 0, "disagree", GRAPE_ERR_FORMAT},
    {"shape not matching the config", SET, "wte", "shape", "[32,256]", 0, "shape other than the config",
     GRAPE_ERR_FORMAT},
    {"tensor missing", DROP, "ln_f.weight", 0, 0, 0, "tensor 'ln_f.weight' is missing", GRAPE_ERR_FORMAT},
    {"tensor extra", ADD, 0, 0, 0, 0, "tensors where it has", GRAPE_ERR_FORMAT},
    {"n_layer = 10^9", SET, "__metadata__", "model.n_layer", "1000000000", 0, "needs at least", GRAPE_ERR_FORMAT},
    {"n_layer = 4096 (in range, not in the file)", SET, "__metadata__", "model.n_layer", "4096", 0, "needs at least",
     GRAPE_ERR_FORMAT},
    {"vocab_size past the file", SET, "__metadata__", "model.vocab_size", "1000000", 0, "needs at least",
     GRAPE_ERR_FORMAT},
    {"n_embd = 0", SET, "__metadata__", "model.n_embd", "0", 0, "positive", GRAPE_ERR_FORMAT},
    {"head dim 0 (n_head > n_embd)", SET, "__metadata__", "model.n_head", "64", 0, "divisible", GRAPE_ERR_FORMAT},
    {"head dim odd", SET, "__metadata__", "model.n_head", "32", 0, "must be even", GRAPE_ERR_FORMAT},
    {"activation plan past memory", SET, "__metadata__", "model.max_seq", "1073741824", 0, "activation plan",
     GRAPE_ERR_FORMAT},
    {"unknown encoding", SET, "__metadata__", "pe.name", "warp-drive", 0, "warp-drive", GRAPE_ERR_FORMAT},
    {"unknown encoding option", SET, "__metadata__", "pe.name", "rope+bogus", 0, "bogus", GRAPE_ERR_FORMAT},
    {"NaN weight", POKE, "wte", 0, 0, 1, "tensor 'wte' holds a non-finite value (nan", GRAPE_ERR_FORMAT},
    {"Inf weight", POKE, "ln_f.weight", 0, 0, 2, "tensor 'ln_f.weight' holds a non-finite value (inf",
     GRAPE_ERR_FORMAT},
};

static char corpus[300];

// `grape ARGS` exits 1 or 2 with the checkpoint's path and the case's phrase on stderr.
static void expect_refused(const char *argv0, const hostile_case *c, const char *what, const char *args,
                           const char *path) {
    char msg[4096], name[300];
    int code = t_run_grape(argv0, args, msg, sizeof msg);
    snprintf(name, sizeof name, "grape %s: %s exits 1-2 naming the file and the problem", what, c->name);
    if (!t_true(name, (code == 1 || code == 2) && strstr(msg, path) && strstr(msg, c->want)))
        printf("# exit %d, stderr: %s\n", code, msg);
}

static void run_case(const hostile_case *c, const char *argv0) {
    char dir[300], path[400], name[200], args[1000];
    snprintf(dir, sizeof dir, "%s", tmp_path("case"));
    snprintf(path, sizeof path, "%s/%s", dir, GRAPE_CHECKPOINT_FILE);
    make_case(dir, c);
    grape_model *m = (grape_model *)1;
    grape_status s = grape_model_load(&m, dir, 0, 0);
    printf("# %s: %s\n", c->name, grape_last_error());
    snprintf(name, sizeof name, "grape_model_load: %s is refused naming the file and the problem", c->name);
    t_true(name, s == c->status && !m && strstr(grape_last_error(), path) && strstr(grape_last_error(), c->want));

    snprintf(args, sizeof args, "sample --ckpt '%s' --n 1", dir);
    expect_refused(argv0, c, "sample", args, path);
    snprintf(args, sizeof args, "eval --ckpt '%s' --lengths 16 --doc-bytes 64 --threads 1", dir);
    if (!plan_only(c)) expect_refused(argv0, c, "eval", args, path);
    snprintf(args, sizeof args, "train --out '%s' --resume --steps 3 --threads 1 --quiet", dir);
    expect_refused(argv0, c, "train --resume", args, path);
}

// A real checkpoint: one step of training a 2-layer RoPE model (weights, both AdamW moments, the run's metadata).
static void make_good(void) {
    snprintf(corpus, sizeof corpus, "%s", tmp_path("corpus.txt"));
    t_write_words(corpus, 65536, 3);
    grape_train_config c = t_train_config(corpus, 2, 1, 16, 1);
    char path[400];
    snprintf(path, sizeof path, "%s/%s", tmp_path("good"), GRAPE_CHECKPOINT_FILE);
    if (t_train(&c, tmp_path("good"), 0, NULL, NULL, NULL)) exit(2);
    FILE *f = fopen(path, "rb");
    if (!f) exit(2);
    fseek(f, 0, SEEK_END);
    good_n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    good = malloc(good_n);
    if (!good || fread(good, 1, good_n, f) != good_n) exit(2);
    fclose(f);
    t_true("the unmutated checkpoint loads", t_loads(tmp_path("good")));
}

// The unmutated checkpoint passes every command below (so a refusal there is the mutation's doing).
static void check_good(const char *argv0) {
    static const char *const cmds[] = {"sample --ckpt '%s' --n 1", "eval --ckpt '%s' --lengths 16 --doc-bytes 64 --threads 1",
                                       "train --out '%s' --resume --steps 2 --threads 1 --quiet"};
    for (int i = 0; i < 3; i++) {
        char args[600], msg[2048], name[300];
        snprintf(args, sizeof args, cmds[i], tmp_path("good"));
        int code = t_run_grape(argv0, args, msg, sizeof msg);
        snprintf(name, sizeof name, "the unmutated checkpoint passes grape %.*s", (int)strcspn(cmds[i], " -"), cmds[i]);
        if (!t_true(name, code == 0)) printf("# exit %d, stderr: %s\n", code, msg);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    if (!tmp_create()) return perror("mkdtemp"), 2;
    memcpy(deep, "{\"a\":", 5);
    memset(deep + 5, '[', 10000);
    memset(deep + 5 + 10000, ']', 10000);
    strcpy(deep + 5 + 20000, "}");
    make_good();
    check_good(argv[0]);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], argv[0]);
    free(good);
    tmp_remove();
    return t_finish();
}
