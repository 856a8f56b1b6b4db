// test_compare.c — `grape compare` end to end on the micro preset (the built grape binary next to this test):
// it writes every file the report promises (results.md with a bold best cell and the BCA row, results.csv with one
// row per encoding x seed x length x mode, results.json, two PNGs, commands.txt); a second run with more seeds
// adds rows without retraining finished runs; a partial checkpoint (an interrupted run) is resumed to the full
// budget; a different budget into the same directory is refused with a message; with --task-mix the passkey
// columns, the effective-context columns and the heat-map appear; the report follows every finished run (a
// compare failing on its second run keeps the first's tables and plots); a checkpoint that cannot be read stops
// compare with a message and is left untouched; the plots' legends stay readable with 20 encodings.
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/compare.h"
#include "tmpdir.h"
#include "util.h"

static char grape[512];

static int run(const char *args, char *out, size_t cap) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", grape, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    if (rc) printf("# %s -> %d\n%s\n", cmd, rc, out);
    return rc;
}

static int file_has(const char *path, const char *needle) {
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f) fclose(f);
    return strstr(buf, needle) != NULL;
}

static int is_png(const char *path) {
    unsigned char m[8] = {0};
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(m, 1, 8, f) : 0;
    if (f) fclose(f);
    return n == 8 && !memcmp(m, "\x89PNG\r\n\x1a\n", 8);
}

static double mtime(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec;
}

#define BUDGET "--preset micro --steps 6 --eval-interval 3 --max-mult 2 --doc-bytes 256 --threads 2"

// A run record whose passkey was not learned at its training length (0.08 at 64) but whose stored effective
// context (written under the older rule) says 512: loading recomputes it from the cells.
static void test_record_pk_rule(void) {
    const char *path = tmp_path("stale-eval.txt");
    FILE *f = fopen(path, "w");
    t_true("write a record", f != NULL);
    if (!f) return;
    fputs("grape-compare-run 1\npe xpos\nseed 1\neval 64 0 2.0 4 256 1000\npasskey_eff 512\n"
          "passkey 64 0 2 25\npasskey 64 1 2 25\npasskey 128 0 5 25\npasskey 128 1 6 25\n"
          "passkey 256 0 8 25\npasskey 256 1 7 25\npasskey 512 0 6 25\npasskey 512 1 6 25\n", f);
    fclose(f);
    cmp_run r;
    t_true("a record with a stale passkey_eff loads", !cmp_run_load(&r, path));
    t_check("its passkey effective context follows the current rule: 0 (0.08 at 64 is below 0.5)", abs(r.pk_eff), 0);
}

// The effective-context band line of a record: read back as written; a malformed one refuses the record.
static void test_record_bands(void) {
    const char *path = tmp_path("bands-eval.txt");
    const char *head = "grape-compare-run 1\npe rope\nseed 1\neval 64 0 2.0 4 256 1000\n";
    FILE *f = fopen(path, "w");
    t_true("write a record with bands", f && fprintf(f, "%seffctx_bands 3 5.5 4.25 4\n", head) > 0 && !fclose(f));
    cmp_run r;
    t_true("it loads", !cmp_run_load(&r, path));
    t_true("its 3 bands read back", r.n_band == 3 && r.band[0] == 5.5 && r.band[1] == 4.25 && r.band[2] == 4.0);
    f = fopen(path, "w");
    t_true("write a record whose effctx_text is stale", f && fprintf(f, "%seffctx_text 1 4 10\neffctx_bands 3 5.5 4.25 4\n",
                                                                  head) > 0 && !fclose(f));
    t_true("it loads", !cmp_run_load(&r, path));
    t_check("its effective context follows the current rule on its bands: 4 (4.25 and 4 are record lows)",
            abs(r.eff_text - 4), 0);
    const char *bad[] = {"effctx_bands 3 5.5 4.25\n", "effctx_bands 0\n", "effctx_bands 2 1 nan\n",
                         "effctx_bands 2 1 2 3\n", "effctx_bands 99 1\n"};
    for (int i = 0; i < 5; i++) {
        f = fopen(path, "w");
        if (!f) return;
        fprintf(f, "%s%s", head, bad[i]);
        fclose(f);
        char name[96];
        snprintf(name, sizeof name, "a malformed band line is refused: %.*s", (int)strlen(bad[i]) - 1, bad[i]);
        t_true(name, cmp_run_load(&r, path) == GRAPE_ERR_FORMAT);
    }
}

// The plots' legends: a few encodings keep the key beside the plot; more than 12 lines (the science run has 32)
// put it below on a taller canvas, and 20 encodings get 20 different colours.
static int count_colours(const char *path) {
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f) fclose(f);
    char seen[32][8];
    int k = 0;
    for (const char *c = buf; (c = strstr(c, "lc rgb '#")) != NULL && k < 32; c += 9) {
        int dup = 0;
        for (int i = 0; i < k; i++) dup |= !strncmp(seen[i], c + 9, 6);
        if (!dup) memcpy(seen[k], c + 9, 6), seen[k][6] = '\0', k++;
    }
    return k;
}

static void test_plot_keys(void) {
    enum { N = 20 };
    cmp_run *runs = calloc(N, sizeof *runs);
    char(*pes)[CMP_NAME] = calloc(N, sizeof *pes);
    if (!t_true("allocate 20 records", runs && pes)) {
        free(runs), free(pes);
        return;
    }
    for (int i = 0; i < N; i++) {
        snprintf(pes[i], CMP_NAME, "pe%d", i);
        memcpy(runs[i].pe, pes[i], CMP_NAME);
        runs[i].seed = 1, runs[i].n_eval = 1;
        runs[i].ev[0] = (cmp_eval){.length = 64, .bpb = 2.0 + 0.01 * i, .windows = 4, .bytes = 256};
    }
    cmp_budget bu = {.preset = "micro", .data = "data/kjv.txt", .batch = 4, .seq = 64, .steps = 6, .lr = 1e-3};
    int len = 64;
    char dir[300], p[512];
    snprintf(dir, sizeof dir, "%s", tmp_path("keys"));
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/bpb_vs_length.gp", dir);
    t_true("reports of 2 encodings written", !cmp_write_reports(dir, &bu, (const char(*)[CMP_NAME])pes, 2, runs, 2, &len, 1));
    t_true("2 encodings: the key beside the plot", file_has(p, "set key outside right top\n"));
    t_true("20 encodings: reports written", !cmp_write_reports(dir, &bu, (const char(*)[CMP_NAME])pes, N, runs, N, &len, 1));
    t_true("20 encodings: the key below the plot, in three columns, one line taller",
           file_has(p, "set key outside below center maxcols 3 font ',10' samplen 3 height 1\n"));
    t_true("20 encodings: the canvas grows by the key's 7 rows and its extra line (600 + 8 x 18 px)",
           file_has(p, "size 1000,744 "));
    t_check("20 encodings: 20 different line colours", abs(count_colours(p) - N), 0);
    free(runs), free(pes);
}

int main(int argc, char **argv) {
    (void)argc;
    char self[512], out[1 << 15], args[1024];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(grape, sizeof grape, "%s/../grape", dirname(self));
    if (access("data/kjv.txt", R_OK) != 0 && system("scripts/make_data.sh >/dev/null") != 0)
        return t_true("data/kjv.txt exists (scripts/make_data.sh)", 0), t_finish();
    if (!tmp_create()) return t_true("create a temporary directory", 0), t_finish();
    test_record_pk_rule();
    test_record_bands();
    test_plot_keys();
    char dir[300];
    snprintf(dir, sizeof dir, "%s", tmp_path("cmp"));
    snprintf(args, sizeof args, "compare --pes rope,alibi --seeds 1 --out %s " BUDGET, dir);
    t_true("compare rope,alibi (micro, 6 steps) exits 0", run(args, out, sizeof out) == 0);
    const char *files[] = {"results.md", "results.csv", "results.json", "commands.txt"};
    char p[512];
    for (int i = 0; i < 4; i++) {
        char label[64];
        snprintf(label, sizeof label, "%s written", files[i]);
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        t_true(label, t_count_lines(p) > 0);
    }
    snprintf(p, sizeof p, "%s/bpb_vs_length.png", dir);
    t_true("bpb_vs_length.png is a PNG", is_png(p));
    snprintf(p, sizeof p, "%s/loss_curves.png", dir);
    t_true("loss_curves.png is a PNG", is_png(p));
    snprintf(p, sizeof p, "%s/bpb_vs_length_zoom.png", dir);
    t_true("bpb_vs_length_zoom.png (the same script, the axis within 20% of the best) is a PNG", is_png(p));
    snprintf(p, sizeof p, "%s/effective_context.png", dir);
    t_true("effective_context.png is a PNG", is_png(p));
    snprintf(p, sizeof p, "%s/runs/rope-s1/eval.txt", dir);
    t_true("eval.txt holds the octave bands of the effective-context pass (128 = 2^7: 8 bands)",
           file_has(p, "\neffctx_bands 8 "));
    snprintf(p, sizeof p, "%s/results.json", dir);
    t_true("results.json holds them", file_has(p, "\"effctx_bands\": ["));
    snprintf(p, sizeof p, "%s/results.csv", dir);
    // rope: 2 lengths x (full, bca); alibi: 2 lengths x full
    t_check("results.csv: header + 6 rows (encoding x seed x length x mode)", abs(t_count_lines(p) - 7), 0);
    snprintf(p, sizeof p, "%s/results.md", dir);
    t_true("results.md: BCA row and a bold best cell", file_has(p, "| rope +BCA |") && file_has(p, "**"));
    snprintf(p, sizeof p, "%s/results.json", dir);
    t_true("results.json: runs with evals and curves", file_has(p, "\"evals\": [") && file_has(p, "\"val_curve\""));
    snprintf(p, sizeof p, "%s/commands.txt", dir);
    t_true("commands.txt: the compare line and each run's train and eval commands",
           file_has(p, "'compare'") && file_has(p, "grape train --preset micro --pe rope") &&
               file_has(p, "--bca") && file_has(p, "grape resolution --ckpt"));

    char ck[512];
    snprintf(ck, sizeof ck, "%s/runs/rope-s1/model.safetensors", dir);
    double before = mtime(ck);
    snprintf(args, sizeof args, "compare --pes rope,alibi --seeds 2 --out %s " BUDGET, dir);
    t_true("second compare with --seeds 2 exits 0", run(args, out, sizeof out) == 0);
    snprintf(p, sizeof p, "%s/results.csv", dir);
    t_check("results.csv: seed 2 added (12 rows)", abs(t_count_lines(p) - 13), 0);
    t_true("finished runs are not retrained (checkpoint untouched)", before > 0 && mtime(ck) == before);
    snprintf(p, sizeof p, "%s/results.md", dir);
    t_true("results.md: mean ± std over 2 seeds", file_has(p, " ± "));

    // An interrupted run: a checkpoint of 3 of the 6 steps, made with the run's own train command.
    snprintf(args, sizeof args,
             "train --preset micro --pe nope --steps 3 --seed 1 --lr 0.001 --eval-interval 3 --save-interval 3 "
             "--log-interval 1 --threads 2 --quiet --out %s/runs/nope-s1", dir);
    int ok = run(args, out, sizeof out) == 0;
    snprintf(args, sizeof args, "compare --pes nope --out %s " BUDGET, dir);
    ok = ok && run(args, out, sizeof out) == 0;
    t_true("a partial checkpoint is resumed, not restarted", ok && strstr(out, "(resuming)"));
    snprintf(p, sizeof p, "%s/runs/nope-s1/metrics.jsonl", dir);
    t_true("the resumed run reaches the budget's last step", file_has(p, "\"step\": 6,"));
    snprintf(p, sizeof p, "%s/results.md", dir);
    t_true("results.md: nope added, with the tokens/s ratio column", file_has(p, "| nope |") && file_has(p, "1.00×"));

    // With the passkey mix: the effective-context columns, the passkey columns and a heat-map per encoding.
    char pk[300];
    snprintf(pk, sizeof pk, "%s", tmp_path("cmp-pk"));
    snprintf(args, sizeof args,
             "compare --pes rope --out %s --task-mix passkey:1,pairs=4,same=1 --passkey-trials 2 " BUDGET, pk);
    t_true("compare --task-mix passkey:... exits 0", run(args, out, sizeof out) == 0);
    snprintf(p, sizeof p, "%s/results.md", pk);
    t_true("results.md: eff ctx text, passkey 1x and eff ctx passkey columns",
           file_has(p, "| eff ctx text |") && file_has(p, "| passkey 1x | eff ctx passkey |"));
    snprintf(p, sizeof p, "%s/results.csv", pk);
    t_true("results.csv: effective-context and passkey fields",
           file_has(p, ",eff_ctx_text,passkey_acc,eff_ctx_passkey\n"));
    snprintf(p, sizeof p, "%s/runs/rope-s1/eval.txt", pk);
    t_true("eval.txt: the effective-context pass at the longest length (128) over every validation window",
           file_has(p, "\neffctx_text ") && file_has(p, " 128 3297\n"));
    snprintf(args, sizeof args, "eval --ckpt %s/runs/rope-s1 --lengths 128 --doc-bytes 0 --json", pk);
    char want[64] = "?";
    if (run(args, out, sizeof out) == 0 && strstr(out, "\"effective_context\": "))
        snprintf(want, sizeof want, "effctx_text %d 128 3297\n", atoi(strstr(out, "\"effective_context\": ") + 21));
    t_true("eval.txt: the same effective context as grape eval --doc-bytes 0 of the checkpoint", file_has(p, want));
    snprintf(p, sizeof p, "%s/results.json", pk);
    t_true("results.json: effective_context_text with its length and windows",
           file_has(p, "\"effective_context_text\": {\"value\": ") && file_has(p, "\"length\": 128, \"windows\": 3297}"));
    snprintf(p, sizeof p, "%s/passkey_rope.png", pk);
    t_true("passkey_rope.png is a PNG (the heat-map)", is_png(p));
    snprintf(p, sizeof p, "%s/commands.txt", pk);
    t_true("commands.txt: the task mix on the train line and the passkey command",
           file_has(p, "--task-mix 'passkey:1,pairs=4,same=1'") && file_has(p, "grape passkey --ckpt"));
    snprintf(p, sizeof p, "%s/runs/rope-s1/model.safetensors", pk);
    snprintf(args, sizeof args, "passkey --ckpt %s/runs/rope-s1 --lengths 64 --depths 0.5 --trials 1", pk);
    t_true("the runs carry the mix in their checkpoint (grape passkey reads it)",
           run(args, out, sizeof out) == 0 && strstr(out, "task mix 'passkey:1,pairs=4,same=1'"));

    snprintf(args, sizeof args, "compare --pes rope --out %s --preset micro --steps 7 --quiet", dir);
    int rc = run(args, out, sizeof out);
    t_true("another budget into the same directory: refused with a message",
           rc != 0 && strstr(out, "another budget"));

    // The report follows every finished run: a compare whose second run fails (a file where its directory would
    // go) leaves the tables and plots of its first, without gnuplot warnings about the encoding with no data.
    char part[300];
    snprintf(part, sizeof part, "%s", tmp_path("cmp-part"));
    snprintf(p, sizeof p, "%s/runs", part);
    mkdir(part, 0755), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/runs/alibi-s1", part);
    FILE *blocker = fopen(p, "w");
    t_true("a file planted where the second run's directory goes", blocker && fclose(blocker) == 0);
    snprintf(args, sizeof args, "compare --pes rope,alibi --out %s " BUDGET, part);
    rc = run(args, out, sizeof out);
    t_true("the second run cannot start: compare fails with a message naming it", rc != 0 && strstr(out, "alibi-s1"));
    t_true("no gnuplot warning about an encoding without runs", !strstr(out, "warning"));
    snprintf(p, sizeof p, "%s/results.csv", part);
    t_true("the report of the first run is written before the second starts",
           file_has(p, "\nrope,1,") && !file_has(p, "\nalibi,"));
    snprintf(p, sizeof p, "%s/bpb_vs_length.png", part);
    t_true("with its plot", is_png(p));

    // A checkpoint that cannot be read is never trained over: compare stops with a message and leaves it as it was.
    char bad[300];
    snprintf(bad, sizeof bad, "%s", tmp_path("cmp-bad"));
    mkdir(bad, 0755);
    snprintf(p, sizeof p, "%s/runs", bad);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/runs/rope-s1", bad);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/runs/rope-s1/model.safetensors", bad);
    FILE *junk = fopen(p, "w");
    t_true("a corrupt checkpoint planted", junk && fputs("not a checkpoint", junk) >= 0 && fclose(junk) == 0);
    snprintf(args, sizeof args, "compare --pes rope --out %s " BUDGET, bad);
    rc = run(args, out, sizeof out);
    t_true("a corrupt checkpoint: compare fails, naming it and what to do",
           rc != 0 && strstr(out, "cannot be resumed") && strstr(out, "move it away"));
    t_true("the corrupt checkpoint is left as it was", file_has(p, "not a checkpoint"));

    // --effctx-windows N: the effective-context pass scores N evenly spaced windows, and N is part of the budget.
    char ew[300];
    snprintf(ew, sizeof ew, "%s", tmp_path("cmp-ew"));
    snprintf(args, sizeof args, "compare --pes nope --out %s --effctx-windows 5 " BUDGET, ew);
    t_true("compare --effctx-windows 5 exits 0", run(args, out, sizeof out) == 0);
    snprintf(p, sizeof p, "%s/runs/nope-s1/eval.txt", ew);
    t_true("eval.txt: the effective-context pass over 5 windows of 128", file_has(p, " 128 5\n"));
    snprintf(p, sizeof p, "%s/compare.cfg", ew);
    t_true("compare.cfg: effctx_windows 5", file_has(p, "effctx_windows 5\n"));
    tmp_remove();
    return t_finish();
}
