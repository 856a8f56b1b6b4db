// test_cli.c — the grape command line as a user types it: encoding options and model-size flags on `grape train`,
// the checkpoint keeping them, `grape sample` printing the canonical name back, resume by re-running the same
// command with --resume appended (repeated flags accepted, a real conflict refused naming both values), size
// validation before any allocation, and `grape encodings --options` / `grape encodings NAME` listing the table.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "grape.h"
#include "tmpdir.h"
#include "train/checkpoint.h"
#include "util.h"

static char grape[512], corpus[300], out_file[300];
static char output[1 << 16]; // stdout + stderr of the last command

// Run `grape ARGS` (a shell fragment), keep its output, return its exit status (-1 when it did not exit).
static int run(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>&1", grape, args, out_file);
    int rc = system(cmd);
    FILE *f = fopen(out_file, "r");
    size_t n = f ? fread(output, 1, sizeof output - 1, f) : 0;
    output[n] = '\0';
    if (f) fclose(f);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Exit status want and every string of `has` (NULL-terminated) in the output.
static void expect(const char *name, int rc, int want, const char *const *has) {
    int ok = rc == want;
    for (; has && *has; has++) ok = ok && strstr(output, *has);
    if (!t_true(name, ok)) printf("# exit %d, output:\n%s\n", rc, output);
}

// A seeded synthetic corpus: words of random letters, so any window is a valid training sequence.
static void make_corpus(void) {
    snprintf(corpus, sizeof corpus, "%s", tmp_path("corpus.txt"));
    FILE *f = fopen(corpus, "w");
    t_rng r = t_seed(5);
    for (int i = 0; f && i < 40000; i++) fputc(t_randint(&r, 0, 5) ? 'a' + t_randint(&r, 0, 25) : ' ', f);
    if (f) fclose(f);
}

#define TRAIN "train --pe 'rope:rope_base=500000,rotary_dim=8' --n-layer 2 --n-embd 32 --n-head 2 --batch 2 --seq 16 " \
              "--seed 3 --eval-interval 0 --eval-batches 1 --quiet --data "

static void test_train_and_resume(void) {
    char args[1500];
    const char *dir = tmp_path("run");
    snprintf(args, sizeof args, TRAIN "%s --out %s --steps 2", corpus, dir);
    expect("train with encoding options and size flags", run(args), 0, NULL);
    grape_train_config c;
    grape_train_state st;
    grape_status s = ckpt_read_meta(dir, &c, &st);
    t_true("the checkpoint keeps the options and the sizes",
           !s && !strcmp(c.pe_name, "rope:rotary_dim=8,rope_base=500000") && c.model.pe.rope_base == 500000 &&
               c.model.pe.rotary_dim == 8 && c.model.n_layer == 2 && c.model.n_embd == 32 && c.model.n_head == 2);

    snprintf(args, sizeof args, "sample --ckpt %s --n 4", dir);
    expect("sample prints the canonical name with its options", run(args), 0,
           (const char *const[]){"rope:rotary_dim=8,rope_base=500000, L=2 C=32 H=2, step 2", NULL});

    snprintf(args, sizeof args, TRAIN "%s --out %s --steps 4 --resume", corpus, dir);
    expect("the same command with --resume appended (and more --steps) continues", run(args), 0, NULL);
    s = ckpt_read_meta(dir, &c, &st);
    t_true("resumed to step 4", !s && st.step == 4);

    snprintf(args, sizeof args,
             "train --pe 'rope:base=5e5,rdim=8' --preset tiny --n-embd 32 --steps 5 --out %s --resume --quiet", dir);
    expect("resume accepts the same encoding spelled differently", run(args), 0, NULL);

    snprintf(args, sizeof args, "train --seed 4 --out %s --resume", dir);
    expect("resume refuses another --seed, naming both values", run(args), 1,
           (const char *const[]){"--seed 4", "--seed 3", NULL});
    snprintf(args, sizeof args, "train --pe rope --out %s --resume", dir);
    expect("resume refuses another --pe, naming both encodings", run(args), 1,
           (const char *const[]){"'rope'", "'rope:rotary_dim=8,rope_base=500000'", NULL});
    snprintf(args, sizeof args, "train --n-embd 64 --out %s --resume", dir);
    expect("resume refuses another --n-embd", run(args), 1, (const char *const[]){"--n-embd 64", "--n-embd 32", NULL});
    snprintf(args, sizeof args, "train --accum-mean --out %s --resume", dir);
    expect("resume refuses --accum-mean on a summed run", run(args), 1,
           (const char *const[]){"--accum-mean conflicts", NULL});
    s = ckpt_read_meta(dir, &c, &st);
    t_true("refused resumes leave the checkpoint alone", !s && st.step == 5);
}

static void test_refusals(void) {
    char args[1500];
    const char *dir = tmp_path("bad");
    snprintf(args, sizeof args, "train --n-embd 100 --n-head 3 --data %s --out %s", corpus, dir);
    expect("--n-embd not divisible by --n-head", run(args), 1, (const char *const[]){"not divisible", NULL});
    snprintf(args, sizeof args, "train --n-embd 66 --n-head 2 --data %s --out %s", corpus, dir);
    expect("odd head dim", run(args), 1, (const char *const[]){"= 33 must be even", NULL});
    snprintf(args, sizeof args, "train --n-layer 0 --data %s --out %s", corpus, dir);
    expect("--n-layer 0", run(args), 1, (const char *const[]){"--n-layer wants an integer in [1, 4096]", NULL});
    snprintf(args, sizeof args, "train --n-embd 16384 --n-head 8 --n-layer 64 --quiet --data %s --out %s", corpus,
             dir);
    expect("a model larger than the machine: a clear error before allocating", run(args), 1,
           (const char *const[]){"more than this machine's", "try a smaller --n-layer", NULL});
    snprintf(args, sizeof args, "train --pe 'rope:rope_base=0.5' --data %s --out %s", corpus, dir);
    expect("a bad option value names the key and the range", run(args), 1,
           (const char *const[]){"rope_base must be a number in (1, 1e+300], got '0.5'", NULL});
    snprintf(args, sizeof args, "train --pe 'rope:rotary_dim=80' --n-embd 64 --n-head 2 --quiet --data %s --out %s",
             corpus, dir);
    expect("a head-dependent range is checked before training", run(args), 1,
           (const char *const[]){"rotary_dim must be even in [2, head_dim=32], got 80", NULL});
}

static void test_encodings(void) {
    int rc = run("encodings --options");
    int all = rc == 0;
    for (int i = 0; i < grape_pe_option_count(); i++) {
        const grape_pe_option *o = grape_pe_option_at(i);
        char def[48], line[96];
        grape_pe_option_format(def, sizeof def, o, o->def);
        snprintf(line, sizeof line, "default %s", def);
        all = all && strstr(output, o->name) && strstr(output, o->doc) && strstr(output, line);
    }
    if (!t_true("encodings --options lists every option with its default and meaning", all)) printf("%s\n", output);
    expect("encodings NAME: canonical name, values and only the options that apply",
           run("encodings 'grape-m:per_head=1+grape-ap:probe_dim=16'"), 0,
           (const char *const[]){"canonical name: grape-m:per_head=1+grape-ap:ap_probe_dim=16", "default 8, here 16",
                                 NULL});
    t_true("encodings NAME leaves out options that do not apply (xpos_gamma for grape-m)",
           !strstr(output, "xpos_gamma"));
    expect("encodings NAME with a bad option", run("encodings 'xpos:nc_rank=4'"), 1,
           (const char *const[]){"nc_rank does not apply to xpos", NULL});
    expect("bench pe --pe times one encoding with options beside rope",
           run("bench pe --pe 'grape-m:rotary_dim=8' --D 16 --T 8 --B 1 --H 1 --reps 1 --threads 1"), 0,
           (const char *const[]){"grape-m:rotary_dim=8", NULL});
    expect("bench attn takes options",
           run("bench attn --pe 'rope:rotary_dim=8+alibi:kv=1' --T 64 --B 1 --H 1 --D 16 --reps 1"), 0, NULL);
}

int main(int argc, char **argv) {
    (void)argc;
    if (!tmp_create()) return printf("FAIL cannot create a temporary directory\n"), 1;
    snprintf(grape, sizeof grape, "%s", argv[0]); // BUILD/tests/test_cli -> BUILD/grape
    for (int up = 0; up < 2; up++) *(strrchr(grape, '/') ? strrchr(grape, '/') : grape) = '\0';
    strcat(grape, "/grape");
    snprintf(out_file, sizeof out_file, "%s", tmp_path("output.txt"));
    make_corpus();
    test_train_and_resume();
    test_refusals();
    test_encodings();
    tmp_remove();
    return t_finish();
}
