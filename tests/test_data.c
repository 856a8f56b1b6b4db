// test_data.c — corpus documents, the deterministic train/validation split, window sampling and the
// readers' errors on bad input (empty, short, binary, missing, non-regular, empty directories).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir.h"
#include "train/data.h"
#include "util.h"

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

// A file in the format of `bible`: n_books books of chapters "\n<Book> c\n\n  v text\n...".
static void write_bible(const char *path, int n_books) {
    FILE *f = fopen(path, "wb");
    for (int b = 0; b < n_books; b++)
        for (int ch = 1; ch <= 1 + b % 3; ch++) {
            fprintf(f, "\n%s%d %d\n\n", b % 2 ? "1 Book" : "Book", b, ch);
            for (int v = 1; v <= 20 + 7 * b; v++) fprintf(f, "  %d And it came to pass in book %d.\n", v, b);
        }
    fclose(f);
}

static void test_bible_split(void) {
    const char *p = tmp_path("bible.txt");
    write_bible(p, 30);
    data_corpus *c = NULL, *c2 = NULL;
    grape_status s = data_open(&c, p, NULL, 0, 32);
    t_true("bible: opens", s == GRAPE_OK);
    if (s) return;
    t_check("bible: one document per book (30)", fabs((double)data_num_docs(c) - 30), 0);
    int starts_ok = 1;
    for (size_t i = 1; i < data_num_docs(c); i++)
        starts_ok &= !memcmp(data_doc_at(c, i)->bytes, "Book", 4) || !memcmp(data_doc_at(c, i)->bytes, "1 Book", 6);
    t_true("bible: every book starts at its heading", starts_ok);
    double share = (double)data_val_bytes(c) / (double)data_total_bytes(c);
    t_check("bible: validation share of bytes near 10%", fabs(share - 0.1), 0.02);
    t_true("bible: first document is training", !data_doc_at(c, 0)->is_val);
    data_open(&c2, p, NULL, 0, 32);
    int same = data_num_docs(c2) == data_num_docs(c);
    for (size_t i = 0; same && i < data_num_docs(c); i++)
        same = data_doc_at(c, i)->is_val == data_doc_at(c2, i)->is_val;
    t_true("bible: split is deterministic", same);
    data_close(c);
    data_close(c2);
}

// The real corpus from `make data`, when present: 66 books, the documented 8 validation books.
static void test_kjv(void) {
    data_corpus *c = NULL;
    if (access("data/kjv.txt", R_OK) != 0 && system("scripts/make_data.sh >/dev/null") != 0) {
        printf("# data/kjv.txt cannot be built (is bible-kjv installed?): KJV checks skipped\n");
        return;
    }
    if (data_open(&c, "data/kjv.txt", NULL, 0, 256)) return (void)t_true("kjv: opens", 0);
    t_check("kjv: 66 books", fabs((double)data_num_docs(c) - 66), 0);
    size_t n_val = 0;
    for (size_t i = 0; i < data_num_docs(c); i++) n_val += data_doc_at(c, i)->is_val;
    t_check("kjv: 8 validation books", fabs((double)n_val - 8), 0);
    t_true("kjv: Deuteronomy (book 4) is validation",
           data_doc_at(c, 4)->is_val && !memcmp(data_doc_at(c, 4)->bytes, "Deuteronomy 1\n", 14));
    t_check("kjv: validation share", fabs((double)data_val_bytes(c) / (double)data_total_bytes(c) - 0.0983), 0.001);
    data_close(c);
}

// A directory whose file i is filled with byte value 'a'+i: a sampled window reveals its document.
static void test_dir_sampling(void) {
    mkdir(tmp_path("dir"), 0755);
    static const size_t sizes[12] = {900, 300, 5000, 40, 1200, 800, 2500, 700, 60, 3000, 1000, 2000};
    char name[64], buf[5000];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "dir/f%02d", i);
        memset(buf, 'a' + i, sizes[i]);
        write_file(tmp_path(name), buf, sizes[i]);
    }
    write_file(tmp_path("dir/.hidden"), "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 60);
    mkdir(tmp_path("dir/sub"), 0755);
    data_corpus *c = NULL;
    const int T = 64, B = 8;
    if (data_open(&c, tmp_path("dir"), NULL, 0, T)) return (void)t_true("dir: opens", 0);
    t_check("dir: 12 documents (hidden files and subdirectories skipped)", fabs((double)data_num_docs(c) - 12), 0);
    int sorted = 1;
    for (int i = 0; i < 12; i++) sorted &= data_doc_at(c, (size_t)i)->bytes[0] == 'a' + i;
    t_true("dir: documents sorted by name", sorted);

    uint8_t tok[8 * 64], tgt[8 * 64];
    uint64_t rng = data_rng_seed(7), rng2 = data_rng_seed(7);
    long counts[12] = {0}, n = 0;
    int in_train = 1, shifted = 1, same = 1;
    for (int it = 0; it < 2000; it++) {
        data_sample_batch(tok, tgt, c, &rng, B);
        uint8_t tok2[8 * 64], tgt2[8 * 64];
        data_sample_batch(tok2, tgt2, c, &rng2, B);
        same &= !memcmp(tok, tok2, sizeof tok) && !memcmp(tgt, tgt2, sizeof tgt);
        for (int b = 0; b < B; b++) {
            int d = tok[b * T] - 'a';
            in_train &= d >= 0 && d < 12 && !data_doc_at(c, (size_t)d)->is_val && sizes[d] >= (size_t)T + 1;
            shifted &= !memcmp(tok + b * T + 1, tgt + b * T, (size_t)T - 1);
            if (d >= 0 && d < 12) counts[d]++;
            n++;
        }
    }
    t_true("dir: sampled windows come only from training documents >= T+1 bytes", in_train);
    t_true("dir: targets are tokens shifted by one", shifted);
    t_true("dir: same seed, same batches", same);
    // Document d is drawn with probability (len-T)/sum(len-T) over usable training documents.
    double tot = 0, worst = 0;
    for (int d = 0; d < 12; d++)
        if (!data_doc_at(c, (size_t)d)->is_val && sizes[d] > (size_t)T) tot += (double)(sizes[d] - (size_t)T);
    for (int d = 0; d < 12; d++)
        if (!data_doc_at(c, (size_t)d)->is_val && sizes[d] > (size_t)T)
            worst = fmax(worst, fabs((double)counts[d] / (double)n - (double)(sizes[d] - (size_t)T) / tot));
    t_check("dir: draw frequency proportional to start positions", worst, 0.01);

    int64_t W = 0;
    for (int d = 0; d < 12; d++)
        if (data_doc_at(c, (size_t)d)->is_val && sizes[d] > (size_t)T) W += (int64_t)((sizes[d] - 1) / (size_t)T);
    t_check("dir: validation window count", fabs((double)(data_num_val_windows(c) - W)), 0);
    int val_ok = 1;
    for (int64_t i = 0; i < W; i += B) {
        int nb = (int)(W - i < B ? W - i : B);
        data_val_batch(tok, tgt, c, i, W, nb);
        for (int b = 0; b < nb; b++) val_ok &= data_doc_at(c, (size_t)(tok[b * T] - 'a'))->is_val;
    }
    t_true("dir: validation windows come only from validation documents", val_ok);
    data_close(c);
}

static void test_separator_and_pieces(void) {
    data_corpus *c = NULL;
    char buf[4000];
    for (int i = 0; i < 4000; i++) buf[i] = (char)('a' + i % 26);
    memcpy(buf + 1000, "@@", 2);
    memcpy(buf + 2500, "@@", 2);
    write_file(tmp_path("sep.txt"), buf, sizeof buf);
    if (data_open(&c, tmp_path("sep.txt"), "@@", 2, 100)) return (void)t_true("sep: opens", 0);
    int ok = data_num_docs(c) == 3 && data_doc_at(c, 0)->len == 1000 && data_doc_at(c, 1)->len == 1498 &&
             data_doc_at(c, 2)->len == 1498;
    t_true("sep: documents between separators, separator bytes excluded", ok);
    t_true("sep: rule selects nothing, so the last document is validation",
           data_doc_at(c, 2)->is_val && data_val_bytes(c) == 1498);
    data_close(c);

    // No separator, no bible headings: max(10, ceil(size/1MiB)) equal pieces; random binary bytes work.
    t_rng r = t_seed(3);
    for (int i = 0; i < 4000; i++) buf[i] = (char)t_randint(&r, 0, 255);
    write_file(tmp_path("bin.dat"), buf, sizeof buf);
    grape_status s = data_open(&c, tmp_path("bin.dat"), NULL, 0, 100);
    t_true("binary: opens", s == GRAPE_OK);
    if (s) return;
    t_check("binary: 10 equal pieces", fabs((double)data_num_docs(c) - 10) + fabs((double)data_doc_at(c, 3)->len - 400),
            0);
    // Greedy rule: piece i joins validation once 400 is closer to 10% of 400(i+1) than 0 is, i.e. at i = 5.
    t_true("binary: exactly piece 5 is validation", data_doc_at(c, 5)->is_val && data_val_bytes(c) == 400);
    data_close(c);
}

static void expect_error(const char *name, const char *path, int T, grape_status want) {
    data_corpus *c = NULL;
    grape_status s = data_open(&c, path, NULL, 0, T);
    printf("# %s: %s\n", name, grape_last_error());
    t_true(name, s == want && c == NULL && grape_last_error()[0] != 0);
    data_close(c);
}

static void test_errors(void) {
    expect_error("missing path is an i/o error", tmp_path("nope/none.txt"), 16, GRAPE_ERR_IO);
    write_file(tmp_path("empty.txt"), "", 0);
    expect_error("empty file is rejected", tmp_path("empty.txt"), 16, GRAPE_ERR_ARG);
    write_file(tmp_path("short.txt"), "hello world, this is short", 26);
    expect_error("file shorter than T+1 is rejected", tmp_path("short.txt"), 16, GRAPE_ERR_ARG);
    mkdir(tmp_path("emptydir"), 0755);
    expect_error("directory without files is rejected", tmp_path("emptydir"), 16, GRAPE_ERR_ARG);
    mkdir(tmp_path("onefile"), 0755);
    write_file(tmp_path("onefile/a.txt"), "0123456789012345678901234567890123456789", 40);
    write_file(tmp_path("onefile/b.txt"), "", 0);
    expect_error("directory with one usable document is rejected", tmp_path("onefile"), 16, GRAPE_ERR_ARG);
    expect_error("non-regular file is rejected", "/dev/null", 16, GRAPE_ERR_IO);
    expect_error("T = 0 is rejected", tmp_path("short.txt"), 0, GRAPE_ERR_ARG);
}

int main(void) {
    if (!tmp_create()) return perror("mkdtemp"), 2;
    test_bible_split();
    test_kjv();
    test_dir_sampling();
    test_separator_and_pieces();
    test_errors();
    tmp_remove();
    return t_finish();
}
