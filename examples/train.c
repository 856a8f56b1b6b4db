// train.c — train a grape model from C through the public trainer: create a run, step it, evaluate, save, stop;
// then resume it (as another process would after a crash) and finish bit-exactly. The run directory is the one
// `grape train` writes, so `grape sample --ckpt OUT` and `grape train --out OUT --resume --steps N` work on it.
//   cc train.c $(pkg-config --cflags --libs grape) -o train && ./train data/kjv.txt runs/embedded rope+alibi
#include <stdio.h>

#include <grape.h>

#define CHECK(call)                                                                                                \
    do {                                                                                                           \
        if ((call) != GRAPE_OK) {                                                                                  \
            fprintf(stderr, "train: %s: %s\n", #call, grape_last_error());                                         \
            return 1;                                                                                              \
        }                                                                                                          \
    } while (0)

static void print(const grape_train_report *r) {
    if (r->logged) printf("step %3lld/%lld  loss %.4f  lr %.2e  grad norm %.3f\n", (long long)r->step,
                          (long long)r->steps, r->loss, r->lr, r->grad_norm);
}

// grape_trainer_run's callback: print, never ask for a stop.
static int on_step(const grape_train_report *r, void *ctx) {
    (void)ctx;
    print(r);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: train CORPUS OUT_DIR [ENCODING]\n"), 2;
    grape_train_config cfg;
    grape_train_config_default(&cfg);
    snprintf(cfg.preset, sizeof cfg.preset, "micro");
    snprintf(cfg.pe_name, sizeof cfg.pe_name, "%s", argc > 3 ? argv[3] : "rope");
    snprintf(cfg.data, sizeof cfg.data, "%s", argv[1]);
    cfg.batch = 4, cfg.seq = 32, cfg.steps = 40, cfg.eval_batches = 2;
    cfg.eval_interval = 20, cfg.log_interval = 10, cfg.save_interval = 20;

    grape_trainer *t = NULL;
    CHECK(grape_trainer_create(&t, &cfg, argv[2], NULL)); // cfg is resolved inside: micro model, schedule
    grape_train_report r;
    while (grape_trainer_state(t)->step < 15) {
        CHECK(grape_trainer_step(t, &r));
        print(&r);
    }
    double bpb;
    CHECK(grape_trainer_evaluate(t, &bpb));
    printf("step %lld: validation %.4f bits/byte\n", (long long)grape_trainer_state(t)->step, bpb);
    CHECK(grape_trainer_save(t)); // atomic: a crash leaves this checkpoint or the next, never half of one
    grape_trainer_free(t);

    CHECK(grape_trainer_resume(&t, argv[2], NULL, NULL)); // the stored configuration, model, AdamW and sampler
    CHECK(grape_trainer_run(t, on_step, NULL));           // to cfg.steps: validates and saves at the last step
    const grape_train_state *st = grape_trainer_state(t);
    printf("%s: %lld steps, %lld tokens, validation %.4f bits/byte; checkpoint in %s\n",
           grape_trainer_config(t)->pe_name, (long long)st->step, (long long)st->tokens, st->last_val, argv[2]);
    grape_trainer_free(t);
    return 0;
}
