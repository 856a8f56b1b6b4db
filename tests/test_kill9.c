// test_kill9.c — crash safety under SIGKILL (docs/RELIABILITY.md): `grape train --save-interval 1` is killed with
// kill -9 at 20 moments drawn from a seeded generator; after every kill the run directory holds a complete
// checkpoint, never a torn one (grape_model_load and `grape eval` load it, ckpt_check_resumable accepts it, its
// step never goes back), the next `grape train --resume` continues from it, and a last resume runs to its end
// with a metrics.jsonl of strictly increasing steps and no temp file of a killed save left in the directory. The
// moments alternate between "0-300 ms after the start" (start-up, loading, the first steps) and "0-20 ms after the
// run's next metrics line" (inside the step and save loop, where with a save every step most of the time goes to
// writing and syncing the checkpoint).
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"
#include "train/checkpoint.h"
#include "train_util.h"
#include "util.h"

enum { KILLS = 20 };

static char corpus[300], dir[300], metrics[400], ckpt[400];

static void sleep_ms(double ms) {
    nanosleep(&(struct timespec){(time_t)(ms / 1000), (long)(ms * 1e6) % 1000000000L}, NULL);
}

// Start `grape train` (a 1-layer model saving every step; --resume once a checkpoint exists) to `steps` steps.
static int start(const char *argv0, const char *steps) {
    const char *args[] = {"train", "--data", corpus, "--out", dir, "--n-layer", "1", "--n-embd", "32", "--n-head", "2",
                          "--batch", "2", "--seq", "32", "--steps", steps, "--save-interval", "1", "--log-interval",
                          "1", "--eval-interval", "1000000", "--eval-batches", "1", "--threads", "1", "--quiet",
                          access(ckpt, F_OK) == 0 ? "--resume" : NULL, NULL};
    return t_spawn_grape(argv0, args);
}

// The checkpoint is whole: the library loads it and would resume it, and `grape eval` scores it.
static int whole(const char *argv0) {
    grape_status s = t_loads(dir) ? ckpt_check_resumable(dir) : GRAPE_ERR_FORMAT;
    if (s) printf("# %s\n", grape_last_error());
    char args[600], err[2048];
    snprintf(args, sizeof args, "eval --ckpt '%s' --lengths 32 --doc-bytes 256 --threads 1", dir);
    int code = t_run_grape(argv0, args, err, sizeof err);
    if (code) printf("# grape eval exit %d: %s\n", code, err);
    return !s && code == 0;
}

// Every line of metrics.jsonl is a JSON object whose "step" is larger than the line before's.
static int metrics_increasing(void) {
    FILE *f = fopen(metrics, "r");
    char line[4096];
    long prev = 0, n = 0;
    int ok = f != NULL;
    while (ok && fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        json_t *st = json_object_get(o, "step");
        ok = json_is_integer(st) && json_integer_value(st) > prev;
        prev = ok ? (long)json_integer_value(st) : prev;
        n++;
        json_decref(o);
    }
    if (f) fclose(f);
    printf("# metrics.jsonl: %ld lines, last step %ld\n", n, prev);
    return ok && n > 0;
}

int main(int argc, char **argv) {
    (void)argc;
    if (!tmp_create()) return perror("mkdtemp"), 2;
    snprintf(corpus, sizeof corpus, "%s", tmp_path("corpus.txt"));
    t_write_words(corpus, 65536, 11);
    snprintf(dir, sizeof dir, "%s", tmp_path("run"));
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    snprintf(ckpt, sizeof ckpt, "%s/%s", dir, GRAPE_CHECKPOINT_FILE);
    t_rng r = t_seed(2026);
    int64_t last = -1, first = -1;
    int all_whole = 1, monotone = 1, kept = 1, in_flight = 0;
    for (int k = 0; k < KILLS; k++) {
        int lines = t_count_lines(metrics), had = access(ckpt, F_OK) == 0, rc;
        double ms = t_uniform(&r) * (k % 2 ? 300 : 20);
        pid_t pid = start(argv[0], "1000000000");
        if (k % 2 == 0) // after the run's next metrics line (up to 60 s)
            for (int i = 0; i < 6000 && t_count_lines(metrics) <= lines; i++) sleep_ms(10);
        sleep_ms(ms);
        kill(pid, SIGKILL);
        waitpid(pid, &rc, 0);
        char tmp[450];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", ckpt, (long)pid);
        in_flight += access(tmp, F_OK) == 0; // the kill left a partly written checkpoint behind
        if (access(ckpt, F_OK) != 0) { // killed before its first save: nothing to check, unless one existed
            kept &= !had;
            continue;
        }
        int64_t step = t_saved_step(dir);
        int ok = whole(argv[0]);
        printf("# kill %2d at %5.1f ms%s: %s, checkpoint of step %lld\n", k + 1, ms,
               k % 2 ? " after the start" : " after a metrics line", WIFSIGNALED(rc) ? "killed" : "had exited",
               (long long)step);
        all_whole &= ok;
        monotone &= step >= last;
        if (first < 0) first = step;
        last = step;
    }
    printf("# %d of %d kills left a partly written temp file (a save was in flight)\n", in_flight, KILLS);
    t_true("kill -9: every kill leaves a whole checkpoint (loads, resumable, grape eval scores it)",
           all_whole && kept && last >= 1);
    t_true("kill -9: the checkpointed step never goes back, and the resumed runs advanced it", monotone && last > first);
    char steps[32];
    snprintf(steps, sizeof steps, "%lld", (long long)last + 3);
    pid_t pid = start(argv[0], steps);
    int rc;
    waitpid(pid, &rc, 0);
    t_true("kill -9: a last --resume runs to its end (3 more steps)",
           WIFEXITED(rc) && WEXITSTATUS(rc) == 0 && t_saved_step(dir) == last + 3 && whole(argv[0]));
    t_true("kill -9: the temp files of the killed saves are gone after the last resume's saves",
           t_count_temp_files(dir) == 0);
    t_true("kill -9: metrics.jsonl holds whole lines of strictly increasing steps", metrics_increasing());
    tmp_remove();
    return t_finish();
}
