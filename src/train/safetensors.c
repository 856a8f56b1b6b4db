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

#include "core/error.h"
#include "train/errctx.h"
#include "train/json.h"

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

static grape_status write_all(int fd, const void *p, size_t n, const char *path) {
    for (const char *c = p; n > 0;) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return grape_fail(GRAPE_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        c += w;
        n -= (size_t)w;
    }
    return GRAPE_OK;
}

static grape_status build_header(json_buf *b, const st_entry *t, int n, const char *const *meta, int n_meta) {
    jb_raw(b, "{", 1);
    if (n_meta > 0) {
        jb_printf(b, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) jb_raw(b, ",", 1);
            jb_string(b, meta[2 * i]);
            jb_raw(b, ":", 1);
            jb_string(b, meta[2 * i + 1]);
        }
        jb_raw(b, "}", 1);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        int ok = t[i].ndim >= 0 && t[i].ndim <= ST_MAX_DIMS;
        uint64_t bytes = numel(t[i].shape, ok ? t[i].ndim : 0, &ok) * 4;
        if (!ok) return grape_fail(GRAPE_ERR_ARG, "tensor '%s' has an invalid shape", t[i].name);
        if (n_meta > 0 || i) jb_raw(b, ",", 1);
        jb_string(b, t[i].name);
        jb_printf(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) jb_printf(b, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        jb_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    jb_raw(b, "}", 1);
    while (b->len % 8) jb_raw(b, " ", 1); // the data section starts 8-byte aligned
    return jb_status(b);
}

// fsync the directory holding path, so the rename itself survives a crash.
static grape_status sync_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return grape_fail(GRAPE_ERR_NOMEM, "out of memory");
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return grape_fail(GRAPE_ERR_IO, "cannot open the directory of '%s': %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc ? grape_fail(GRAPE_ERR_IO, "cannot sync the directory of '%s': %s", path, strerror(errno)) : GRAPE_OK;
}

static grape_status write_file(int fd, const char *tmp, const json_buf *h, const st_entry *t, int n) {
    uint64_t hlen = h->len;
    grape_status s = write_all(fd, &hlen, 8, tmp);
    if (!s) s = write_all(fd, h->p, h->len, tmp);
    for (int i = 0; i < n && !s; i++) {
        int ok = 1;
        s = write_all(fd, t[i].data, numel(t[i].shape, t[i].ndim, &ok) * 4, tmp);
    }
    if (!s && fsync(fd) != 0) s = grape_fail(GRAPE_ERR_IO, "cannot sync '%s': %s", tmp, strerror(errno));
    return s;
}

grape_status st_save(const char *path, const st_entry *t, int n, const char *const *meta, int n_meta) {
    json_buf h = {0};
    grape_status s = build_header(&h, t, n, meta, n_meta);
    char tmp[4096];
    if (!s && snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        s = grape_fail(GRAPE_ERR_ARG, "path too long: '%s'", path);
    int fd = s ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!s && fd < 0) s = grape_fail(GRAPE_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
    if (!s) s = write_file(fd, tmp, &h, t, n);
    if (fd >= 0 && close(fd) != 0 && !s) s = grape_fail(GRAPE_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
    if (!s && rename(tmp, path) != 0) s = grape_fail(GRAPE_ERR_IO, "cannot rename to '%s': %s", path, strerror(errno));
    if (s && fd >= 0) unlink(tmp);
    if (!s) s = sync_dir(path);
    jb_free(&h);
    return s;
}

// ---------------------------------------------------------------------------------------------------------
// Reader

struct st_file {
    int fd;
    uint64_t data_start, data_size;
    char *header, *pool; // raw header; decoded strings (never longer than their encoded form)
    size_t pool_used, pool_cap;
    st_info *t;
    int n, cap;
    const char **meta; // key, value pairs
    int n_meta, cap_meta;
};

static grape_status corrupt(const char *what, const char *name) {
    return grape_fail(GRAPE_ERR_FORMAT, "corrupt safetensors file: %s%s%s", what, name ? " of tensor " : "",
                      name ? name : "");
}

static grape_status pool_string(st_file *f, json_cur *c, const char **out) {
    grape_status s = json_string(c, f->pool + f->pool_used, f->pool_cap - f->pool_used);
    if (s) return s;
    *out = f->pool + f->pool_used;
    f->pool_used += strlen(*out) + 1;
    return GRAPE_OK;
}

static int grow(void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return 1;
    int n = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)n * elem);
    if (!p) return 0;
    *arr = p;
    *cap = n;
    return 1;
}

static grape_status parse_metadata(st_file *f, json_cur *c) {
    grape_status s = json_expect(c, '{');
    if (s || json_eat(c, '}')) return s;
    do {
        if (!grow((void **)&f->meta, &f->cap_meta, 2 * f->n_meta + 2, sizeof *f->meta))
            return grape_fail(GRAPE_ERR_NOMEM, "out of memory reading metadata");
        const char **kv = f->meta + 2 * f->n_meta;
        if ((s = pool_string(f, c, &kv[0])) || (s = json_expect(c, ':')) || (s = pool_string(f, c, &kv[1]))) return s;
        f->n_meta++;
    } while (json_eat(c, ','));
    return json_expect(c, '}');
}

static grape_status parse_shape(st_info *t, json_cur *c) {
    grape_status s = json_expect(c, '[');
    if (s || json_eat(c, ']')) return s;
    do {
        uint64_t v;
        if (t->ndim == ST_MAX_DIMS) return corrupt("more than 8 dimensions in the shape", t->name);
        if ((s = json_u64(c, &v))) return s;
        if (v > INT64_MAX) return corrupt("dimension out of range in the shape", t->name);
        t->shape[t->ndim++] = (int64_t)v;
    } while (json_eat(c, ','));
    return json_expect(c, ']');
}

static grape_status parse_offsets(st_info *t, json_cur *c) {
    grape_status s;
    if ((s = json_expect(c, '[')) || (s = json_u64(c, &t->begin)) || (s = json_expect(c, ',')) ||
        (s = json_u64(c, &t->end)))
        return s;
    return json_expect(c, ']');
}

// {"dtype": ..., "shape": [...], "data_offsets": [b, e]}, each key exactly once, in any order.
static grape_status parse_tensor(st_info *t, json_cur *c) {
    static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
    int seen[3] = {0};
    grape_status s = json_expect(c, '{');
    do {
        char key[16];
        if (s || (s = json_string(c, key, sizeof key)) || (s = json_expect(c, ':'))) return s;
        int k = !strcmp(key, keys[0]) ? 0 : !strcmp(key, keys[1]) ? 1 : !strcmp(key, keys[2]) ? 2 : -1;
        if (k < 0 || seen[k]++)
            return corrupt(k < 0 ? "unknown key in the entry" : "repeated key in the entry", t->name);
        s = k == 0 ? json_string(c, t->dtype, sizeof t->dtype) : k == 1 ? parse_shape(t, c) : parse_offsets(t, c);
    } while (!s && json_eat(c, ','));
    if (s || (s = json_expect(c, '}'))) return s;
    if (!seen[0] || !seen[1] || !seen[2]) return corrupt("missing dtype, shape or data_offsets", t->name);
    return GRAPE_OK;
}

static grape_status parse_header(st_file *f, const char *p, size_t n) {
    json_cur c = {p, p, p + n};
    grape_status s = json_expect(&c, '{');
    if (s || json_eat(&c, '}')) return s ? s : json_end(&c);
    do {
        const char *name;
        if ((s = pool_string(f, &c, &name)) || (s = json_expect(&c, ':'))) return s;
        if (!strcmp(name, "__metadata__")) {
            if (f->meta) return corrupt("two __metadata__ entries", NULL);
            s = parse_metadata(f, &c);
            continue;
        }
        if (!grow((void **)&f->t, &f->cap, f->n + 1, sizeof *f->t))
            return grape_fail(GRAPE_ERR_NOMEM, "out of memory reading the header");
        f->t[f->n] = (st_info){.name = name};
        s = parse_tensor(&f->t[f->n++], &c);
    } while (!s && json_eat(&c, ','));
    if (s || (s = json_expect(&c, '}'))) return s;
    return json_end(&c);
}

static int cmp_begin(const void *a, const void *b) {
    const st_info *x = *(const st_info *const *)a, *y = *(const st_info *const *)b;
    return x->begin != y->begin ? (x->begin < y->begin ? -1 : 1) : (x->end > y->end) - (x->end < y->end);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const st_info *const *)a)->name, (*(const st_info *const *)b)->name);
}

// Each tensor's byte range matches dtype and shape; the ranges tile [0, data_size) exactly; names are unique.
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
    qsort(order, (size_t)f->n, sizeof *order, cmp_name);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(order[i]->name, order[i - 1]->name)) return corrupt("duplicate name", order[i]->name);
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
        if (r < 0) return grape_fail(GRAPE_ERR_IO, "read failed: %s", strerror(errno));
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
    if (fstat(f->fd, &st) != 0) return grape_fail(GRAPE_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    if (size < 8)
        return grape_fail(GRAPE_ERR_FORMAT, "'%s' is not a safetensors file (%llu bytes)", path,
                          (unsigned long long)size);
    grape_status s = read_at(f->fd, &hlen, 8, 0);
    if (s) return s;
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > size - 8)
        return grape_fail(GRAPE_ERR_FORMAT,
                          "corrupt safetensors file '%s': header length %llu out of range (file %llu bytes)", path,
                          (unsigned long long)hlen, (unsigned long long)size);
    f->data_start = 8 + hlen;
    f->data_size = size - f->data_start;
    f->pool_cap = (size_t)hlen + 1;
    f->header = malloc((size_t)hlen);
    f->pool = malloc(f->pool_cap);
    if (!f->header || !f->pool) return grape_fail(GRAPE_ERR_NOMEM, "out of memory reading '%s'", path);
    if ((s = read_at(f->fd, f->header, (size_t)hlen, 8))) return s;
    return parse_header(f, f->header, (size_t)hlen);
}

grape_status st_open(st_file **out, const char *path) {
    *out = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f) return grape_fail(GRAPE_ERR_NOMEM, "out of memory");
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    grape_status s = f->fd < 0 ? grape_fail(GRAPE_ERR_IO, "cannot open '%s': %s", path, strerror(errno)) : GRAPE_OK;
    if (!s) s = load_header(f, path);
    const st_info **order = s ? NULL : malloc(((size_t)f->n + 1) * sizeof *order);
    if (!s) s = order ? check_layout(f, order) : grape_fail(GRAPE_ERR_NOMEM, "out of memory");
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
    free(f->header);
    free(f->pool);
    free(f->t);
    free(f->meta);
    free(f);
}

int st_num_tensors(const st_file *f) { return f->n; }
const st_info *st_tensor_at(const st_file *f, int i) { return &f->t[i]; }

const st_info *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

grape_status st_read_f32(const st_file *f, const char *name, float *dst, size_t n) {
    const st_info *t = st_find(f, name);
    if (!t) return grape_fail(GRAPE_ERR_FORMAT, "tensor '%s' is missing", name);
    if (strcmp(t->dtype, "F32")) return grape_fail(GRAPE_ERR_UNSUPPORTED, "tensor '%s' is %s, not F32", name, t->dtype);
    if (t->end - t->begin != (uint64_t)n * 4)
        return grape_fail(GRAPE_ERR_FORMAT, "tensor '%s' has %llu elements, expected %zu", name,
                          (unsigned long long)((t->end - t->begin) / 4), n);
    return read_at(f->fd, dst, n * 4, f->data_start + t->begin);
}
