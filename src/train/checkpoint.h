// checkpoint.h — DIR/model.safetensors: the model's tensors under their own names, AdamW's moments as
// "opt.m.<name>" / "opt.v.<name>", and in "__metadata__" (every value a string, as other safetensors loaders
// expect: "format": "pt", "grape.format": "grape-checkpoint", "grape.format_version") the whole grape_train_config
// (model shape, encoding and every grape_pe_config field, data, hyper-parameters) and grape_train_state (step,
// sampler RNG, tokens; no wall-clock time, so equal runs write equal bytes), numbers as decimal strings, doubles
// with 17 significant digits so they read back bit-exactly. Keys: docs/TRAINING.md.
// A weights-only checkpoint (grape_model_save) is the same format without the "opt.*" tensors, its training
// keys zero (data.path empty, state.last_val_bpb NaN): it loads everywhere a model is read, but cannot resume.
#ifndef GRAPE_TRAIN_CHECKPOINT_H
#define GRAPE_TRAIN_CHECKPOINT_H

#include "grape.h"
#include "train/train.h"

#define CKPT_FORMAT "grape-checkpoint"
// v2: the metadata follows the safetensors conventions ("format": "pt", grape.format, grape.format_version; no
// wall-clock time); KV-shift has independent key and value gates (w_shift_k, w_shift_v), pe.qk_gain, pe.ap_form
// (was ap_paper), the interleaved layout's sign, grape-m-basis in the spec's order unless pe.basis_folded.
// v1 files ("format": "grape-checkpoint", "format_version": "1") are refused by name, never misread.
#define CKPT_VERSION "2"

// Save atomically into dir (created with its parents if missing). adam_m, adam_v: grape_model_num_params floats
// each, or both NULL for a weights-only checkpoint.
grape_status ckpt_save(const char *dir, grape_model *m, const float *adam_m, const float *adam_v,
                       const grape_train_config *cfg, const grape_train_state *st);
// GRAPE_ERR_ARG naming the key when a string of cfg (data path, separator, names) cannot be stored: the header
// is JSON, whose strings are UTF-8. Checked before training, so a run never fails at its first save.
grape_status ckpt_check_storable(const grape_train_config *cfg);
// Read only the metadata (to build the model before loading tensors). Any missing or malformed key is
// GRAPE_ERR_FORMAT naming the key.
grape_status ckpt_read_meta(const char *dir, grape_train_config *cfg, grape_train_state *st);
// Load the model's tensors (and the moments unless adam_m/adam_v are NULL); every tensor must be present with
// the model's shape and finite values, and the file must hold nothing else (the moments of every tensor, or of
// none). Calls grape_model_params_changed.
grape_status ckpt_load_tensors(const char *dir, grape_model *m, float *adam_m, float *adam_v);
// GRAPE_ERR_FORMAT, saying so, when dir's checkpoint is weights-only (nothing to resume from), or when its
// configuration fails the checks grape_model_load makes before allocating anything from it (so a resumed run
// never sizes a model from an absurd configuration).
grape_status ckpt_check_resumable(const char *dir);
// grape_model_load, also returning the checkpoint's configuration and state (cfg, st may be NULL).
grape_status ckpt_load_model(grape_model **out, grape_train_config *cfg, grape_train_state *st, const char *dir, int max_batch,
                             int max_seq);

// Elements of a model tensor (product of its shape).
size_t ckpt_numel(const grape_tensor_info *t);

#endif
