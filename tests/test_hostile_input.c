// test_hostile_input.c — corpora and flags of docs/RELIABILITY.md: an empty, unreadable or non-regular corpus,
// and a directory of empty files, are refused by data_open with a message naming the path; a binary corpus is
// valid (tokens are bytes); a corpus file truncated after opening changes nothing (it was copied, DATA_COPY_MAX);
// out-of-range, non-numeric and non-finite flags make `grape train` / `grape sample` exit 1 naming the flag.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir.h"
#include "train/data.h"
#include "util.h"

static void write_file(const char *p, const void *b, size_t n) {
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(b, 1, n, f) != n) || fclose(f)) exit(2);
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t k) {
    for (size_t i = 0; i + k <= n; i++)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, k)) return 1;
    return 0;
}

static void expect_refused(const char *name, const char *path, grape_status want, const char *what) {
    data_corpus *c = (data_corpus *)1;
    grape_status s = data_open(&c, path, NULL, 0, 64);
    printf("# %s: %s\n", name, grape_last_error());
    t_true(name, s == want && !c && strstr(grape_last_error(), path) && strstr(grape_last_error(), what));
}

static void test_corpora(void) {
    write_file(tmp_path("empty.txt"), "", 0);
    expect_refused("corpus: empty file", tmp_path("empty.txt"), GRAPE_ERR_ARG, "is empty");
    expect_refused("corpus: missing file", tmp_path("nope.txt"), GRAPE_ERR_IO, "No such file");
    char through[300];
    snprintf(through, sizeof through, "%s/x", tmp_path("empty.txt"));
    expect_refused("corpus: unreadable path (through a file)", through, GRAPE_ERR_IO, "Not a directory");
    expect_refused("corpus: not a regular file (/dev/null)", "/dev/null", GRAPE_ERR_IO, "not a readable regular");
    if (mkdir(tmp_path("empties"), 0755)) exit(2);
    for (int i = 0; i < 3; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s/doc%d", tmp_path("empties"), i);
        write_file(p, "", 0);
    }
    expect_refused("corpus: directory of empty files", tmp_path("empties"), GRAPE_ERR_ARG, "no non-empty");

    enum { N = 200000, T = 64, B = 8 };
    uint8_t *bytes = malloc(N), tok[B * T], tgt[B * T], tok2[B * T], tgt2[B * T];
    t_rng r = t_seed(5);
    for (int i = 0; i < N; i++) bytes[i] = (uint8_t)t_randint(&r, 0, 255);
    write_file(tmp_path("binary.bin"), bytes, N);
    data_corpus *c = NULL;
    grape_status s = data_open(&c, tmp_path("binary.bin"), NULL, 0, T);
    t_true("corpus: binary bytes are a valid corpus", s == GRAPE_OK && data_total_bytes(c) == N);
    if (s) return free(bytes);
    // The file shrinks to nothing while open: the sampler keeps reading the bytes as opened, without SIGBUS.
    uint64_t rng = data_rng_seed(1), rng2 = rng;
    data_sample_batch(tok, tgt, c, &rng, B);
    if (truncate(tmp_path("binary.bin"), 0)) exit(2);
    data_sample_batch(tok2, tgt2, c, &rng2, B);
    int same = !memcmp(tok, tok2, sizeof tok) && !memcmp(tgt, tgt2, sizeof tgt), inside = 1;
    for (int k = 0; k < 200; k++) {
        data_sample_batch(tok2, tgt2, c, &rng2, B);
        data_val_batch(tok2, tgt2, c, k % 4, 4, 1);
        inside &= contains(bytes, N, tok2, T);
    }
    t_true("corpus: truncated after opening, the same windows are sampled (no SIGBUS)", same && inside);
    data_close(c);
    free(bytes);
}

static void expect_flag(const char *argv0, const char *args, const char *flag) {
    char err[2048], name[300];
    int code = t_run_grape(argv0, args, err, sizeof err);
    printf("# grape %s -> %d: %s", args, code, err);
    snprintf(name, sizeof name, "flags: grape %s exits 1 naming %s", args, flag);
    t_true(name, code == 1 && strstr(err, flag));
}

static void test_flags(const char *argv0) {
    static const char *const cases[][2] = {
        {"train --seq 2147483648", "--seq"},        {"train --seq 0", "--seq"},
        {"train --batch -1", "--batch"},            {"train --batch 1.5", "--batch"},
        {"train --steps abc", "--steps"},           {"train --steps -3", "--steps"},
        {"train --lr nan", "--lr"},                 {"train --lr inf", "--lr"},
        {"train --lr -0.1", "--lr"},                {"train --eps 0", "--eps"},
        {"train --seed 99999999999999999999", "--seed"}, {"train --threads 1e3", "--threads"},
        {"train --grad-accum 0", "--grad-accum"},   {"train --lr", "--lr"},
        {"sample --ckpt x --n -1", "--n"},          {"sample --ckpt x --temperature nan", "--temperature"},
        {"sample --ckpt x --top-k 257", "--top-k"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_flag(argv0, cases[i][0], cases[i][1]);
}

int main(int argc, char **argv) {
    (void)argc;
    if (!tmp_create()) return perror("mkdtemp"), 2;
    test_corpora();
    test_flags(argv[0]);
    tmp_remove();
    return t_finish();
}
