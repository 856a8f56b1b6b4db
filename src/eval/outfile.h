// outfile.h — whole-buffer atomic writes of the evaluation outputs (CSV, JSON, markdown): a temp file in the
// same directory, fsync, rename, fsync of the directory, so a reader never sees a half-written file.
#ifndef GRAPE_EVAL_OUTFILE_H
#define GRAPE_EVAL_OUTFILE_H

#include <stddef.h>

#include "grape.h"

grape_status out_write_atomic(const char *path, const void *data, size_t n);

#endif
