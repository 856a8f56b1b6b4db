// safetensors.c — see safetensors.h.
#include "train/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "train/errctx.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors stores little-endian data; this build assumes a little-endian host"
#endif

static const struct {
    const char *name;
    int width;
} dtypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},  {"I32", 4},     {"I16", 2},    {"I8", 1},
              {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1},   {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};

static int dtype_width(const char *name) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(name, dtypes[i].name)) return dtypes[i].width;
    return 0;
}

// Elements of a shape; 0 on overflow or a negative dimension (with *ok cleared).
static uint64_t numel(const int64_t *shape, int ndim, int *ok) {
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || __builtin_mul_overflow(n, (uint64_t)shape[i], &n)) return *ok = 0, 0;
    return n;
}

// ---------------------------------------------------------------------------------------------------------
// Writer


// Set key in obj to v, taking the reference; 0 when v is NULL (out of memory, or a string that is not UTF-8).
static int put(json_t *obj, const char *key, json_t *v) { return v && !json_object_set_new(obj, key, v); }

// {"__metadata__": {k: v, ...}, name: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...}
static grape_status header_tree(json_t *root, const st_entry *t, int n, const char *const *meta, int n_meta) {
    json_t *md = n_meta > 0 ? json_object() : NULL;
    if (n_meta > 0 && !put(root, "__metadata__", md)) return error_fail(GRAPE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_meta; i++)
        if (!put(md, meta[2 * i], json_string(meta[2 * i + 1])))
            return error_fail(GRAPE_ERR_ARG, "metadata '%s' is not valid UTF-8 (or out of memory)", meta[2 * i]);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        int ok = t[i].ndim >= 0 && t[i].ndim <= ST_MAX_DIMS;
        uint64_t bytes = numel(t[i].shape, ok ? t[i].ndim : 0, &ok) * 4;
        if (!ok || bytes > INT64_MAX - off)
            return error_fail(GRAPE_ERR_ARG, "tensor '%s' has an invalid shape", t[i].name);
        json_t *e = json_object(), *shape = json_array();
        for (int d = 0; shape && d < t[i].ndim; d++) ok &= !json_array_append_new(shape, json_integer(t[i].shape[d]));
        ok &= put(e, "dtype", json_string("F32")); // one call each, so every new value is handed over (or freed)
        ok &= put(e, "shape", shape);
        ok &= put(e, "data_offsets", json_pack("[II]", (json_int_t)off, (json_int_t)(off + bytes)));
        if (!ok) json_decref(e);
        if (!ok || !put(root, t[i].name, e))
            return error_fail(GRAPE_ERR_ARG, "tensor name '%s' is not valid UTF-8 (or out of memory)", t[i].name);
        off += bytes;
    }
    return GRAPE_OK;
}

// The header text, space-padded so the data section starts 8-byte aligned; *len excludes the NUL.
static grape_status build_header(char **out, size_t *len, const st_entry *t, int n, const char *const *meta,
                                 int n_meta) {
    *out = NULL;
    json_t *root = json_object();
    grape_status s = root ? header_tree(root, t, n, meta, n_meta) : error_fail(GRAPE_ERR_NOMEM, "out of memory");
    char *text = s ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (s) return s;
    size_t tl = text ? strlen(text) : 0, padded = (tl + 7) / 8 * 8;
    char *h = text ? realloc(text, padded + 1) : NULL;
    if (!h) {
        free(text);
        return error_fail(GRAPE_ERR_NOMEM, "out of memory formatting a safetensors header");
    }
    memset(h + tl, ' ', padded - tl);
    h[padded] = '\0';
    *out = h;
    *len = padded;
    return GRAPE_OK;
}

static grape_status write_tensors(atomic_file *f, const char *h, size_t hl, const st_entry *t, int n) {
    uint64_t hlen = hl;
    grape_status s = atomic_write(f, &hlen, 8);
    if (!s) s = atomic_write(f, h, hl);
    for (int i = 0; i < n && !s; i++) {
        int ok = 1;
        s = atomic_write(f, t[i].data, numel(t[i].shape, t[i].ndim, &ok) * 4);
    }
    return s;
}

grape_status st_save(const char *path, const st_entry *t, int n, const char *const *meta, int n_meta) {
    char *h = NULL;
    size_t hl = 0;
    atomic_file f;
    grape_status s = build_header(&h, &hl, t, n, meta, n_meta);
    if (!s && !(s = atomic_open(&f, path))) s = atomic_finish(&f, write_tensors(&f, h, hl, t, n));
    free(h);
    return s;
}

// ---------------------------------------------------------------------------------------------------------
// Reader

struct st_file {
    int fd;
    uint64_t data_start, data_size;
    json_t *root;       // the parsed header; names and metadata values point into it
    const json_t *meta; // "__metadata__" (NULL if absent)
    st_info *t;
    int n;
};

static grape_status corrupt(const char *what, const char *name) {
    return error_fail(GRAPE_ERR_FORMAT, "corrupt safetensors file: %s%s%s", what, name ? " of tensor " : "",
                      name ? name : "");
}

// A JSON integer in [0, INT64_MAX] (jansson's json_int_t holds the whole range; larger ones fail to parse).
static int get_u63(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

static grape_status parse_shape(st_info *t, const json_t *shape) {
    if (!json_is_array(shape)) return corrupt("shape is not an array", t->name);
    if (json_array_size(shape) > ST_MAX_DIMS) return corrupt("more than 8 dimensions in the shape", t->name);
    t->ndim = (int)json_array_size(shape);
    for (int d = 0; d < t->ndim; d++) {
        uint64_t v;
        if (!get_u63(json_array_get(shape, (size_t)d), &v))
            return corrupt("a dimension is not a non-negative integer", t->name);
        t->shape[d] = (int64_t)v;
    }
    return GRAPE_OK;
}

// {"dtype": "...", "shape": [...], "data_offsets": [b, e]} and nothing else.
static grape_status parse_tensor(st_info *t, const json_t *e) {
    if (!json_is_object(e)) return corrupt("entry is not an object", t->name);
    const json_t *dtype = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape"),
                 *off = json_object_get(e, "data_offsets");
    if (!dtype || !shape || !off) return corrupt("missing dtype, shape or data_offsets", t->name);
    if (json_object_size(e) != 3) return corrupt("unknown key in the entry", t->name);
    if (!json_is_string(dtype) || json_string_length(dtype) >= sizeof t->dtype)
        return corrupt("unknown dtype", t->name);
    memcpy(t->dtype, json_string_value(dtype), json_string_length(dtype) + 1);
    grape_status s = parse_shape(t, shape);
    if (s) return s;
    if (!json_is_array(off) || json_array_size(off) != 2 || !get_u63(json_array_get(off, 0), &t->begin) ||
        !get_u63(json_array_get(off, 1), &t->end))
        return corrupt("data_offsets is not two non-negative integers", t->name);
    return GRAPE_OK;
}

// The header is one JSON object; jansson checks the syntax (UTF-8, no NUL in strings, duplicate keys refused,
// nesting bounded) and grape checks the shape of every entry.
static grape_status parse_header(st_file *f, const char *p, size_t n) {
    json_error_t err;
    f->root = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err);
    if (!f->root)
        return error_fail(GRAPE_ERR_FORMAT, "corrupt safetensors file: header is not valid JSON: %s (byte %d)",
                          err.text, err.position);
    if (!json_is_object(f->root)) return corrupt("header is not a JSON object", NULL);
    f->t = calloc(json_object_size(f->root) + 1, sizeof *f->t);
    if (!f->t) return error_fail(GRAPE_ERR_NOMEM, "out of memory reading the header");
    const char *key;
    json_t *v;
    json_object_foreach(f->root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(v)) return corrupt("__metadata__ is not an object", NULL);
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv)) return corrupt("a metadata value is not a string", NULL);
            }
            f->meta = v;
            continue;
        }
        st_info *t = &f->t[f->n++];
        t->name = key;
        grape_status s = parse_tensor(t, v);
        if (s) return s;
    }
    return GRAPE_OK;
}

static int cmp_begin(const void *a, const void *b) {
    const st_info *x = *(const st_info *const *)a, *y = *(const st_info *const *)b;
    return x->begin != y->begin ? (x->begin < y->begin ? -1 : 1) : (x->end > y->end) - (x->end < y->end);
}

// Each tensor's byte range matches dtype and shape; the ranges tile [0, data_size) exactly (names are unique:
// the parser refuses duplicate keys).
static grape_status check_layout(const st_file *f, const st_info **order) {
    for (int i = 0; i < f->n; i++) {
        const st_info *t = &f->t[i];
        int width = dtype_width(t->dtype), ok = 1;
        if (!width) return corrupt("unknown dtype", t->name);
        uint64_t n = numel(t->shape, t->ndim, &ok), bytes;
        if (!ok || __builtin_mul_overflow(n, (uint64_t)width, &bytes)) return corrupt("shape overflows", t->name);
        if (t->end < t->begin || t->end - t->begin != bytes)
            return corrupt("data_offsets disagree with dtype and shape", t->name);
        order[i] = t;
    }
    qsort(order, (size_t)f->n, sizeof *order, cmp_begin);
    uint64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        if (order[i]->begin != at)
            return corrupt(order[i]->begin < at ? "overlapping data_offsets" : "gap before data_offsets",
                           order[i]->name);
        at = order[i]->end;
    }
    if (at != f->data_size)
        return corrupt(at > f->data_size ? "data_offsets past the end of the file"
                                         : "file size disagrees with the header (trailing bytes)",
                       NULL);
    return GRAPE_OK;
}

static grape_status read_at(int fd, void *dst, size_t n, uint64_t off) {
    for (char *p = dst; n > 0;) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return error_fail(GRAPE_ERR_IO, "read failed: %s", strerror(errno));
        if (r == 0) return corrupt("file truncated", NULL);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return GRAPE_OK;
}

static grape_status load_header(st_file *f, const char *path) {
    struct stat st;
    uint64_t hlen;
    if (fstat(f->fd, &st) != 0) return error_fail(GRAPE_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    if (size < 8)
        return error_fail(GRAPE_ERR_FORMAT, "'%s' is not a safetensors file (%llu bytes)", path,
                          (unsigned long long)size);
    grape_status s = read_at(f->fd, &hlen, 8, 0);
    if (s) return s;
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > size - 8)
        return error_fail(GRAPE_ERR_FORMAT,
                          "corrupt safetensors file '%s': header length %llu out of range (file %llu bytes)", path,
                          (unsigned long long)hlen, (unsigned long long)size);
    f->data_start = 8 + hlen;
    f->data_size = size - f->data_start;
    char *header = malloc((size_t)hlen);
    if (!header) return error_fail(GRAPE_ERR_NOMEM, "out of memory reading '%s'", path);
    if (!(s = read_at(f->fd, header, (size_t)hlen, 8))) s = parse_header(f, header, (size_t)hlen);
    free(header);
    return s;
}

grape_status st_open(st_file **out, const char *path) {
    *out = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f) return error_fail(GRAPE_ERR_NOMEM, "out of memory");
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    grape_status s = f->fd < 0 ? error_fail(GRAPE_ERR_IO, "cannot open '%s': %s", path, strerror(errno)) : GRAPE_OK;
    if (!s) s = load_header(f, path);
    const st_info **order = s ? NULL : malloc(((size_t)f->n + 1) * sizeof *order);
    if (!s) s = order ? check_layout(f, order) : error_fail(GRAPE_ERR_NOMEM, "out of memory");
    free(order);
    if (s) {
        if (s == GRAPE_ERR_FORMAT && !strstr(grape_last_error(), path)) fail_in(s, path);
        st_close(f);
        return s;
    }
    *out = f;
    return GRAPE_OK;
}

void st_close(st_file *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    json_decref(f->root);
    free(f->t);
    free(f);
}

int st_num_tensors(const st_file *f) { return f->n; }
const st_info *st_tensor_at(const st_file *f, int i) { return &f->t[i]; }

const st_info *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) { return json_string_value(json_object_get(f->meta, key)); }

grape_status st_read_f32(const st_file *f, const char *name, float *dst, size_t n) {
    const st_info *t = st_find(f, name);
    if (!t) return error_fail(GRAPE_ERR_FORMAT, "tensor '%s' is missing", name);
    if (strcmp(t->dtype, "F32")) return error_fail(GRAPE_ERR_UNSUPPORTED, "tensor '%s' is %s, not F32", name, t->dtype);
    if (t->end - t->begin != (uint64_t)n * 4)
        return error_fail(GRAPE_ERR_FORMAT, "tensor '%s' has %llu elements, expected %zu", name,
                          (unsigned long long)((t->end - t->begin) / 4), n);
    return read_at(f->fd, dst, n * 4, f->data_start + t->begin);
}
