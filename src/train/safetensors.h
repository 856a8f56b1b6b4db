// safetensors.h — reader and writer of the safetensors format (huggingface/safetensors):
//   [u64 little-endian N][N bytes of JSON header, space-padded to a multiple of 8][tensor bytes]
//   header = {"__metadata__": {"key": "value", ...}, "name": {"dtype": "F32", "shape": [..],
//             "data_offsets": [begin, end]}, ...}, offsets relative to the first tensor byte.
// The writer writes F32 tensors atomically (temp file in the same directory, fsync, rename, fsync of the
// directory). The reader trusts nothing: the header length is bounded by the file and ST_MAX_HEADER, the JSON
// is parsed by jansson (duplicate keys, NUL in strings, bad UTF-8 and nesting past its depth limit refused),
// then every entry's keys and types, known dtypes, shape products, offsets that tile the data exactly (no gap,
// no overlap, nothing out of range) and the file size are checked, with GRAPE_ERR_FORMAT and a message on any
// violation. Allocation is bounded by the header length.
#ifndef GRAPE_TRAIN_SAFETENSORS_H
#define GRAPE_TRAIN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "grape.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER ((uint64_t)100 << 20) // as the reference implementation

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *data; // numel(shape) floats
} st_entry;

// Write tensors t[0..n) and metadata pairs meta[2i] -> meta[2i+1] (i < n_meta) to path, atomically.
grape_status st_save(const char *path, const st_entry *t, int n, const char *const *meta, int n_meta);

typedef struct {
    const char *name;
    char dtype[8];
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; // byte offsets into the data section
} st_info;

typedef struct st_file st_file;

// Open and validate path (header and sizes; tensor bytes are read on demand by st_read_f32).
grape_status st_open(st_file **out, const char *path);
void st_close(st_file *f);
int st_num_tensors(const st_file *f);
const st_info *st_tensor_at(const st_file *f, int i);
const st_info *st_find(const st_file *f, const char *name); // NULL if absent
const char *st_meta(const st_file *f, const char *key);     // NULL if absent
// dst: n floats. The tensor must exist, be F32 and hold exactly n elements.
grape_status st_read_f32(const st_file *f, const char *name, float *dst, size_t n);

#endif
