// test_hostile_input.c — corpora and flags of docs/RELIABILITY.md: an empty, unreadable or non-regular corpus,
// and a directory of empty files, are refused by data_open with a message naming the path; a binary corpus is
// valid (tokens are bytes); a corpus file truncated after opening changes nothing when it was copied
// (DATA_COPY_MAX), and when it was mapped (GRAPE_DATA_COPY_MAX=0) the sampler and the evaluation stop with
// GRAPE_ERR_IO naming it instead of dying of SIGBUS, while a SIGBUS outside the corpus still kills the process;
// out-of-range, non-numeric and non-finite flags make `grape train` / `grape sample` exit 1 naming the flag.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eval/eval.h"
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

// Mean bits per byte of a 1-layer model over c's validation windows of length T (eval_length, the path of
// `grape eval`, which hands pointers into the corpus to the model).
static grape_status eval_corpus(const data_corpus *c, int T) {
    grape_model_config mc = {.n_layer = 1, .n_embd = 16, .n_head = 2, .vocab_size = 256, .max_batch = 1, .max_seq = T};
    grape_pe_config_default(&mc.pe, 2, 8);
    grape_model *m = NULL;
    grape_evaluator *e = NULL;
    eval_result r;
    if (grape_pe_parse(&mc.pe, "rope") || grape_model_create(&m, &mc) || grape_model_init(m, 1) ||
        grape_evaluator_create(&e, m, T))
        exit(2);
    grape_status s = eval_length(&r, e, c, T, 0, 0, NULL, NULL, NULL);
    grape_evaluator_free(e);
    grape_model_free(m);
    return s;
}

// GRAPE_DATA_COPY_MAX=0 maps every file: truncating one during use is reported by data_check (through the
// sampler and the evaluation) naming the file, and the reads past the new end raise no SIGBUS.
static void test_mapped_truncation(void) {
    enum { N = 300000, T = 64, B = 8 };
    uint8_t *bytes = malloc(N), tok[B * T], tgt[B * T];
    t_rng r = t_seed(6);
    for (int i = 0; i < N; i++) bytes[i] = (uint8_t)t_randint(&r, 0, 255);
    const char *path = tmp_path("mapped.bin");
    write_file(path, bytes, N);
    free(bytes);
    setenv("GRAPE_DATA_COPY_MAX", "0", 1);
    data_corpus *c = NULL;
    grape_status s = data_open(&c, path, NULL, 0, T);
    unsetenv("GRAPE_DATA_COPY_MAX");
    uint64_t rng = data_rng_seed(1);
    int ok = s == GRAPE_OK;
    for (int k = 0; ok && k < 20; k++) ok = !data_sample_batch(tok, tgt, c, &rng, B) && !data_val_batch(tok, tgt, c, k, 20, 1);
    t_true("mapped corpus: sampling before any change succeeds", ok && eval_corpus(c, T) == GRAPE_OK);
    if (!ok) return data_close(c);
    if (truncate(path, N / 2)) exit(2);
    s = GRAPE_OK;
    for (int k = 0; k < 200 && !s; k++) s = data_sample_batch(tok, tgt, c, &rng, B);
    printf("# %s\n", grape_last_error());
    t_true("mapped corpus: shrunk to half, the sampler stops with GRAPE_ERR_IO naming the file (no SIGBUS)",
           s == GRAPE_ERR_IO && strstr(grape_last_error(), path) && strstr(grape_last_error(), "shrank"));
    if (truncate(path, 0)) exit(2);
    s = data_val_batch(tok, tgt, c, 0, 4, 4);
    grape_status se = eval_corpus(c, T);
    t_true("mapped corpus: shrunk to nothing, validation batches and eval_length stop naming the file (no SIGBUS)",
           s == GRAPE_ERR_IO && se == GRAPE_ERR_IO && strstr(grape_last_error(), path));
    data_close(c);
}

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

// Opening and closing a mapped corpus 1,100 times (more than the 1,024 guarded mappings open at once) succeeds and
// leaves no file descriptor behind.
static void test_mapped_reopen(void) {
    static uint8_t buf[1 << 14];
    memset(buf, 'b', sizeof buf);
    write_file(tmp_path("reopen.bin"), buf, sizeof buf);
    setenv("GRAPE_DATA_COPY_MAX", "0", 1);
    int fds = open_fds(), ok = 1;
    for (int i = 0; i < 1100 && ok; i++) {
        data_corpus *c = NULL;
        ok = data_open(&c, tmp_path("reopen.bin"), NULL, 0, 16) == GRAPE_OK;
        data_close(c);
    }
    unsetenv("GRAPE_DATA_COPY_MAX");
    t_true("mapped corpus: 1,100 opens and closes succeed and leave no descriptor open", ok && open_fds() == fds);
}

// With the corpus handler installed (a mapped corpus open), a SIGBUS on another mapping still kills the process.
static void test_foreign_sigbus(void) {
    const char *corpus = tmp_path("mapped2.bin"), *other = tmp_path("other.bin");
    static uint8_t buf[1 << 16];
    memset(buf, 'a', sizeof buf);
    write_file(corpus, buf, sizeof buf);
    write_file(other, buf, sizeof buf);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20); // a handler that swallowed the fault would spin on it
        if (!freopen("/dev/null", "w", stderr)) _exit(3); // the sanitizer's report of the expected fault
        data_corpus *c = NULL;
        setenv("GRAPE_DATA_COPY_MAX", "0", 1);
        int fd = open(other, O_RDONLY);
        volatile const uint8_t *p = fd < 0 ? MAP_FAILED : mmap(NULL, sizeof buf, PROT_READ, MAP_PRIVATE, fd, 0);
        if (data_open(&c, corpus, NULL, 0, 16) || p == MAP_FAILED || truncate(other, 0)) _exit(3);
        _exit(p[sizeof buf - 1] == 'a' ? 0 : 4); // SIGBUS here
    }
    int rc;
    waitpid(pid, &rc, 0);
    printf("# child: %s %d\n", WIFSIGNALED(rc) ? "signal" : "exit", WIFSIGNALED(rc) ? WTERMSIG(rc) : WEXITSTATUS(rc));
    // Without sanitizers the default action: death by SIGBUS. Under ASan, its own handler (installed before
    // ours, so chained to) reports the fault and exits 1.
    t_true("foreign SIGBUS: a fault outside the corpus mappings still ends the process",
           (WIFSIGNALED(rc) && WTERMSIG(rc) == SIGBUS) || (WIFEXITED(rc) && WEXITSTATUS(rc) == 1));
}

// `grape ARGS` exits 1 naming flag; the check is named after shown (ARGS without scratch paths).
static void expect_flag(const char *argv0, const char *args, const char *shown, const char *flag) {
    char err[2048], name[300];
    int code = t_run_grape(argv0, args, err, sizeof err);
    printf("# grape %s -> %d: %s", shown, code, err);
    snprintf(name, sizeof name, "flags: grape %s exits 1 naming %s", shown, flag);
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
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_flag(argv0, cases[i][0], cases[i][0], cases[i][1]);
    // grape eval reads --lengths once the checkpoint is loaded: a real (weights-only) one and a corpus.
    grape_model_config mc = {.n_layer = 1, .n_embd = 16, .n_head = 2, .vocab_size = 256, .max_batch = 1, .max_seq = 16};
    grape_pe_config_default(&mc.pe, 2, 8);
    grape_model *m = NULL;
    if (grape_pe_parse(&mc.pe, "rope") || grape_model_create(&m, &mc) || grape_model_init(m, 1) ||
        grape_model_save(m, tmp_path("ck")))
        exit(2);
    grape_model_free(m);
    static char text[1 << 16];
    for (size_t i = 0; i < sizeof text; i++) text[i] = (char)('a' + i * 7 % 26);
    write_file(tmp_path("flags.txt"), text, sizeof text);
    static const char *const eval_cases[][2] = {
        {"--lengths 2147483648", "--lengths"}, {"--lengths 0", "--lengths"},       {"--lengths abc", "--lengths"},
        {"--lengths 16,-3", "--lengths"},      {"--doc-bytes -1", "--doc-bytes"}, {"--threads nan", "--threads"},
    };
    for (size_t i = 0; i < sizeof eval_cases / sizeof eval_cases[0]; i++) {
        char args[800], shown[100];
        snprintf(args, sizeof args, "eval --ckpt %s --data %s %s", tmp_path("ck"), tmp_path("flags.txt"),
                 eval_cases[i][0]);
        snprintf(shown, sizeof shown, "eval --ckpt CKPT --data CORPUS %s", eval_cases[i][0]);
        expect_flag(argv0, args, shown, eval_cases[i][1]);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    if (!tmp_create()) return perror("mkdtemp"), 2;
    test_corpora();
    test_mapped_truncation();
    test_mapped_reopen();
    test_foreign_sigbus();
    test_flags(argv[0]);
    tmp_remove();
    return t_finish();
}
