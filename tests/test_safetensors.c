// test_safetensors.c — round trip of the writer and reader, and every class of
// corruption rejected with GRAPE_ERR_FORMAT (truncation, header length, JSON
// syntax, hostile JSON: duplicate keys, 10,000-deep nesting, non-string keys,
// NUL and bad UTF-8 in strings, integers past 2^63; offsets overlapping / out
// of range / with gaps, sizes that disagree with dtype and shape, unknown
// dtypes), plus a byte-flip fuzz of the header.
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpdir.h"
#include "train/safetensors.h"
#include "util.h"

static char path[256];

static long file_size(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static unsigned char *slurp(const char *p, long *n) {
    *n = file_size(p);
    unsigned char *b = malloc((size_t)*n);
    FILE *f = fopen(p, "rb");
    if (!b || !f || fread(b, 1, (size_t)*n, f) != (size_t)*n) exit(2);
    fclose(f);
    return b;
}

static void spit(const char *p, const void *b, size_t n) {
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) exit(2);
}

// A file with header text h (length as written unless hlen_override) followed
// by data_bytes zero bytes.
static void write_raw(const char *p, const char *h, size_t data_bytes, uint64_t hlen_override) {
    uint64_t hlen = hlen_override ? hlen_override : strlen(h);
    size_t n = 8 + strlen(h) + data_bytes;
    unsigned char *b = calloc(1, n);
    memcpy(b, &hlen, 8);
    memcpy(b + 8, h, strlen(h));
    spit(p, b, n);
    free(b);
}

static grape_status open_status(const char *p) {
    st_file *f = NULL;
    grape_status s = st_open(&f, p);
    st_close(f);
    return s;
}

static void expect_format(const char *name, const char *h, size_t data_bytes, uint64_t hlen_override) {
    write_raw(path, h, data_bytes, hlen_override);
    grape_status s = open_status(path);
    printf("# %s: %s\n", name, grape_last_error());
    t_true(name, s == GRAPE_ERR_FORMAT);
}

static void test_round_trip(void) {
    float a[6] = {1, -2, 3.5f, 1e-30f, -0.0f, INFINITY}, b[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f}, c[1] = {42};
    st_entry t[4] = {{"layers.0.w", 2, {2, 3}, a}, {"b", 1, {5}, b}, {"scalar", 0, {0}, c}, {"empty", 2, {0, 4}, a}};
    const char *meta[] = {"step", "12", "quote\"back\\slash", "line\nbreak\ttab é ✓", "empty", ""};
    snprintf(path, sizeof path, "%s/rt.safetensors", tmp_root);
    grape_status s = st_save(path, t, 4, meta, 3);
    t_true("round trip: save", s == GRAPE_OK);
    s = st_save(path, t, 4, meta,
                3); // overwriting goes through the same temp + rename
    t_true("round trip: overwrite", s == GRAPE_OK);
    long n;
    unsigned char *raw = slurp(path, &n);
    uint64_t hlen;
    memcpy(&hlen, raw, 8);
    t_true("format: header length is little-endian u64, data 8-byte aligned, '{' "
           "first",
           hlen % 8 == 0 && 8 + hlen + 4 * (6 + 5 + 1) == (uint64_t)n && raw[8] == '{');
    free(raw);

    st_file *f = NULL;
    s = st_open(&f, path);
    if (s) printf("# %s\n", grape_last_error());
    t_true("round trip: open", s == GRAPE_OK);
    if (s) return;
    float a2[6], b2[5], c2[1];
    int ok = !st_read_f32(f, "layers.0.w", a2, 6) && !st_read_f32(f, "b", b2, 5) && !st_read_f32(f, "scalar", c2, 1);
    ok &= !memcmp(a, a2, sizeof a) && !memcmp(b, b2, sizeof b) && c2[0] == 42;
    t_true("round trip: tensors bit-exact", ok);
    const st_info *i = st_find(f, "layers.0.w"), *e = st_find(f, "empty"), *sc = st_find(f, "scalar");
    t_true("round trip: shapes and dtype", i && i->ndim == 2 && i->shape[0] == 2 && i->shape[1] == 3 &&
                                               !strcmp(i->dtype, "F32") && e && e->ndim == 2 && e->shape[0] == 0 &&
                                               sc && sc->ndim == 0 && st_num_tensors(f) == 4);
    t_true("round trip: metadata with escapes and UTF-8",
           st_meta(f, "step") && !strcmp(st_meta(f, "step"), "12") && st_meta(f, "quote\"back\\slash") &&
               !strcmp(st_meta(f, "quote\"back\\slash"), "line\nbreak\ttab é ✓") && st_meta(f, "empty") &&
               !strcmp(st_meta(f, "empty"), "") && !st_meta(f, "missing"));
    t_true("read: wrong element count is rejected", st_read_f32(f, "b", b2, 4) == GRAPE_ERR_FORMAT);
    t_true("read: missing tensor is rejected", st_read_f32(f, "nope", b2, 5) == GRAPE_ERR_FORMAT);
    st_close(f);

    DIR *d = opendir(tmp_root);
    int leftovers = 0;
    for (struct dirent *de; (de = readdir(d));) leftovers += strstr(de->d_name, ".tmp.") != NULL;
    closedir(d);
    t_true("atomic write: no temp file left behind", leftovers == 0);
    const char *bad_meta[] = {"k", "\xff"};
    s = st_save(path, t, 4, bad_meta, 1);
    printf("# %s\n", grape_last_error());
    t_true("write: metadata that is not UTF-8 is refused, the old file kept",
           s == GRAPE_ERR_ARG && strstr(grape_last_error(), "'k'") && open_status(path) == GRAPE_OK);
    st_entry bad_name = {"w\xff", 2, {2, 3}, a};
    s = st_save(path, &bad_name, 1, NULL, 0);
    t_true("write: a tensor name that is not UTF-8 is refused, the old file kept",
           s == GRAPE_ERR_ARG && open_status(path) == GRAPE_OK);
}

static void test_corruption(void) {
    // Truncation and header length, starting from a valid file.
    long n;
    unsigned char *good = slurp(path, &n);
    char bad_path[300];
    snprintf(bad_path, sizeof bad_path, "%s/bad.safetensors", tmp_root);
    spit(bad_path, good, (size_t)n - 3);
    t_true("truncated data is rejected", open_status(bad_path) == GRAPE_ERR_FORMAT);
    spit(bad_path, good, 100);
    t_true("truncated header is rejected", open_status(bad_path) == GRAPE_ERR_FORMAT);
    spit(bad_path, good, 5);
    t_true("file shorter than 8 bytes is rejected", open_status(bad_path) == GRAPE_ERR_FORMAT);
    for (int byte = 0; byte < 8; byte++) {
        unsigned char *b = malloc((size_t)n);
        memcpy(b, good, (size_t)n);
        b[byte] ^= 0x80; // flipped high bits: lengths from 2^7 up to 2^63, never allocated
        spit(bad_path, b, (size_t)n);
        free(b);
        char name[64];
        snprintf(name, sizeof name, "header length with byte %d flipped is rejected", byte);
        t_true(name, open_status(bad_path) == GRAPE_ERR_FORMAT);
    }
    unsigned char *b = malloc((size_t)n + 4);
    memcpy(b, good, (size_t)n);
    memset(b + n, 0, 4);
    spit(bad_path, b, (size_t)n + 4);
    t_true("trailing bytes after the data are rejected", open_status(bad_path) == GRAPE_ERR_FORMAT);
    free(b);
    free(good);

    snprintf(path, sizeof path, "%s/crafted.safetensors", tmp_root);
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    write_raw(path, ok, 8, 0);
    t_true("crafted valid file opens", open_status(path) == GRAPE_OK);
    // Crafted headers, each with its data section of `data` zero bytes.
    static const struct {
        const char *name, *header;
        size_t data;
    } bad[] = {
        {"bad JSON: missing brace", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8},
        {"bad JSON: unquoted key", "{a:{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8},
        {"bad JSON: trailing garbage", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}x", 8},
        {"bad JSON: negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-1,8]}}", 8},
        {"bad JSON: unterminated string", "{\"a", 8},
        {"bad JSON: bad escape", "{\"\\q\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8},
        {"wrong size: shape product disagrees with offsets",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8},
        {"wrong size: dtype width disagrees with offsets",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8},
        {"wrong size: shape overflows",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_"
         "offsets\":[0,8]}}",
         8},
        {"offsets out of range (past the file)", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
         8},
        {"offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8},
        {"overlapping offsets",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12},
        {"gap between tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         12},
        {"duplicate tensor name",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8},
        {"missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8},
        {"metadata value not a string", "{\"__metadata__\":{\"k\":1}}", 0},
        {"duplicate key in an entry",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"shape\":[2],\"data_offsets\":"
         "[0,8]}}",
         8},
        {"duplicate key in __metadata__", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0},
        {"two __metadata__ entries", "{\"__metadata__\":{},\"__metadata__\":{}}", 0},
        {"non-string key", "{1:{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8},
        {"NUL (\\u0000) in a tensor name",
         "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"
         "}",
         8},
        {"invalid UTF-8 in a tensor name", "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8},
        {"lone surrogate escape", "{\"__metadata__\":{\"k\":\"\\ud800\"}}", 0},
        {"offset is a real number", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.0]}}", 8},
        {"offset 2^63",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,"
         "9223372036854775808]}}",
         8},
        {"shape is not an array", "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8},
        {"unknown key in an entry",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}"
         "}",
         8},
        {"header is an array", "[1,2]", 0},
        {"__metadata__ is not an object", "{\"__metadata__\":[]}", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_format(bad[i].name, bad[i].header, bad[i].data, 0);
    enum { DEEP = 10000 };
    char *deep = malloc(2 * DEEP + 16);
    memcpy(deep, "{\"a\":", 5);
    memset(deep + 5, '[', DEEP);
    memset(deep + 5 + DEEP, ']', DEEP);
    strcpy(deep + 5 + 2 * DEEP, "}");
    expect_format("JSON nested 10,000 deep", deep, 0, 0);
    free(deep);
    expect_format("header length beyond the file", ok, 8, 1000);
    expect_format("header length below the JSON", ok, 8, 20);
    expect_format("header length zero", ok, 8, 0x7fffffffffffffffull);
    t_true("missing file is an i/o error", open_status("/nonexistent/x.safetensors") == GRAPE_ERR_IO);
}

// Random byte flips in a valid header: never a crash, always OK or FORMAT; when
// OK the tensor reads.
static void test_fuzz(void) {
    const char *h = "{\"__metadata__\":{\"step\":\"7\"},\"a\":{\"dtype\":\"F32\",\"shape\":["
                    "2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[8,12]}}";
    t_rng r = t_seed(11);
    int bad_status = 0, rejected = 0, trials = 3000;
    size_t hl = strlen(h);
    char *m = malloc(hl + 1);
    for (int it = 0; it < trials; it++) {
        memcpy(m, h, hl + 1);
        for (int k = 0; k < 1 + it % 3; k++) m[t_randint(&r, 0, (int)hl - 1)] = (char)t_randint(&r, 1, 255);
        write_raw(path, m, 12, 0);
        st_file *f = NULL;
        grape_status s = st_open(&f, path);
        float x[2];
        if (s == GRAPE_OK) {
            const st_info *a = st_find(f, "a");
            grape_status rs = a ? st_read_f32(f, "a", x, 2) : GRAPE_OK;
            bad_status += rs != GRAPE_OK && rs != GRAPE_ERR_FORMAT && rs != GRAPE_ERR_UNSUPPORTED;
        } else {
            rejected++;
            bad_status += s != GRAPE_ERR_FORMAT;
        }
        st_close(f);
    }
    free(m);
    printf("# fuzz: %d of %d mutated headers rejected\n", rejected, trials);
    t_true("fuzz: every status is OK or FORMAT", bad_status == 0);
    t_true("fuzz: most mutations are caught", rejected > trials / 2);
}

int main(void) {
    if (!tmp_create()) return perror("mkdtemp"), 2;
    test_round_trip();
    test_corruption();
    test_fuzz();
    tmp_remove();
    return t_finish();
}
