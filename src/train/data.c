// data.c — byte corpora: documents, the train/validation split, window sampling (see data.h).
// Files up to DATA_COPY_MAX bytes are copied into anonymous memory once; larger ones are memory-mapped, so a
// corpus larger than RAM is paged in by the kernel on demand. A mapped file that another process truncates raises
// SIGBUS on the next read past its new end, and a run must not die of that: see "Mapped files and SIGBUS".
#include "train/data.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/mem.h"

#define PIECE_BYTES ((size_t)1 << 20)
#define MIN_PIECES 10
#define MAX_HEADING 64 // longest "<Book> 1" line accepted as a bible book heading

typedef struct {
    void *addr;
    size_t len;
    int guard; // slot in guards[] of a mapped file, -1 for a copy
    int fd;    // a mapped file stays open, so data_check can see it shrink (-1 for a copy)
    char *path;
} mapping;

struct data_corpus {
    mapping *maps;
    size_t n_maps, cap_maps;
    data_doc *docs;
    size_t n_docs, cap_docs;
    int T;
    uint64_t total_bytes, val_bytes;
    // Window index: usable training documents with cumulative start counts, validation documents with
    // cumulative window counts; binary search maps a global index to (document, offset).
    size_t *train_doc, *val_doc;
    uint64_t *train_cum, *val_cum;
    size_t n_train, n_val;
};

// ---------------------------------------------------------------------------------------------------------
// Growable arrays (only while opening; never in the sampling path)

static grape_status grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return GRAPE_OK;
    size_t n = *cap ? *cap * 2 : 16, bytes;
    while (n < need) n *= 2;
    if (!size_mul(&bytes, n, elem)) return error_fail(GRAPE_ERR_NOMEM, "document table too large");
    void *p = realloc(*arr, bytes);
    if (!p) return error_fail(GRAPE_ERR_NOMEM, "cannot grow the document table to %zu entries", n);
    *arr = p;
    *cap = n;
    return GRAPE_OK;
}

static grape_status push_doc(data_corpus *c, const uint8_t *p, size_t len) {
    if (len == 0) return GRAPE_OK;
    grape_status s = grow((void **)&c->docs, &c->cap_docs, c->n_docs + 1, sizeof *c->docs);
    if (s) return s;
    c->docs[c->n_docs++] = (data_doc){p, len, 0};
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------
// Mapped files and SIGBUS
//
// A read of a mapped page past the end of a file that shrank after mmap raises SIGBUS. The handler below takes
// a SIGBUS whose address lies in a corpus mapping, maps zero pages over the rest of that mapping (so the read,
// and every later one, completes) and marks the mapping torn; data_check turns the mark, or a file now shorter
// than its mapping (reads inside the last page see zeros without a fault), into a GRAPE_ERR_IO naming the file.
// Why not sigsetjmp around the reads: evaluation hands pointers into the mapping to the model, whose OpenMP
// threads read them, and a longjmp out of an OpenMP region is undefined. Why not pread: documents would become
// file offsets and every window a system call, a larger change for files nobody should be truncating anyway.
// A SIGBUS elsewhere goes to the handler installed before ours, or kills the process as it would have.

#define MAX_GUARDED 1024 // mapped files open at once (each larger than the copy limit)

typedef struct {
    _Atomic uintptr_t begin; // 0: free
    _Atomic size_t len;
    atomic_int torn;
} guard_slot;

static guard_slot guards[MAX_GUARDED];
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction prev_bus;
static int bus_installed;
static uintptr_t page_mask;

// Async-signal-safe: atomics, mmap and sigaction only.
static void on_sigbus(int sig, siginfo_t *si, void *uc) {
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < MAX_GUARDED; i++) {
        uintptr_t b = atomic_load(&guards[i].begin);
        size_t n = atomic_load(&guards[i].len);
        if (!b || a - b >= n) continue;
        uintptr_t page = a & page_mask;
        if (mmap((void *)page, b + n - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
            break;
        atomic_store(&guards[i].torn, 1);
        return;
    }
    if ((prev_bus.sa_flags & SA_SIGINFO) && prev_bus.sa_sigaction)
        prev_bus.sa_sigaction(sig, si, uc);
    else if (!(prev_bus.sa_flags & SA_SIGINFO) && prev_bus.sa_handler != SIG_DFL && prev_bus.sa_handler != SIG_IGN)
        prev_bus.sa_handler(sig);
    else { // the faulting read runs again and the process dies of SIGBUS, as without this handler
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGBUS, &dfl, NULL);
    }
}

// *slot := a guard slot for [addr, addr + len), installing the handler on first use.
static grape_status guard_mapping(int *slot, void *addr, size_t len, const char *path) {
    pthread_mutex_lock(&guard_lock);
    grape_status s = GRAPE_OK;
    if (!bus_installed) {
        page_mask = ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
        struct sigaction sa = {.sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO};
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGBUS, &sa, &prev_bus) == 0)
            bus_installed = 1;
        else
            s = error_fail(GRAPE_ERR_IO, "cannot install the SIGBUS handler for '%s': %s", path, strerror(errno));
    }
    *slot = -1;
    for (int i = 0; !s && i < MAX_GUARDED && *slot < 0; i++)
        if (!atomic_load(&guards[i].begin)) *slot = i;
    if (!s && *slot < 0)
        s = error_fail(GRAPE_ERR_ARG, "'%s': more than %d files larger than %zu bytes are open", path, MAX_GUARDED,
                       data_copy_max());
    if (!s) {
        atomic_store(&guards[*slot].torn, 0);
        atomic_store(&guards[*slot].len, len);
        atomic_store(&guards[*slot].begin, (uintptr_t)addr);
    }
    pthread_mutex_unlock(&guard_lock);
    return s;
}

static void unmap(mapping *m) {
    if (m->guard >= 0) atomic_store(&guards[m->guard].begin, 0);
    munmap(m->addr, m->len);
    if (m->fd >= 0) close(m->fd);
    free(m->path);
}

size_t data_copy_max(void) {
    const char *e = getenv("GRAPE_DATA_COPY_MAX");
    return e && *e ? (size_t)strtoull(e, NULL, 10) : DATA_COPY_MAX;
}

grape_status data_check(const data_corpus *c) {
    for (size_t i = 0; i < c->n_maps; i++) {
        const mapping *m = &c->maps[i];
        struct stat st;
        if (m->guard < 0) continue;
        if (atomic_load(&guards[m->guard].torn) || fstat(m->fd, &st) != 0 || (uint64_t)st.st_size < m->len)
            return error_fail(GRAPE_ERR_IO,
                              "'%s' shrank while in use (it was %zu bytes when opened, mapped rather than copied): "
                              "its bytes past the new end are gone",
                              m->path, m->len);
    }
    return GRAPE_OK;
}

// *out := anonymous memory holding the len bytes of fd, read with pread (a file that shrinks meanwhile is an
// error, not a short corpus).
static grape_status copy_file(void **out, int fd, size_t len, const char *path) {
    uint8_t *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) return error_fail(GRAPE_ERR_NOMEM, "cannot allocate %zu bytes for '%s'", len, path);
    grape_status s = GRAPE_OK;
    for (size_t at = 0; at < len && !s;) {
        ssize_t r = pread(fd, a + at, len - at, (off_t)at);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) s = error_fail(GRAPE_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        if (r == 0) s = error_fail(GRAPE_ERR_IO, "'%s' shrank while being read (%zu of %zu bytes)", path, at, len);
        at += r > 0 ? (size_t)r : 0;
    }
    if (s) munmap(a, len);
    *out = s ? NULL : a;
    return s;
}

// Copy (up to data_copy_max() bytes) or map a regular file, read-only; an empty file yields len 0 and no memory.
static grape_status map_file(data_corpus *c, const char *path, const uint8_t **p, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return error_fail(GRAPE_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return error_fail(GRAPE_ERR_IO, "'%s' is not a readable regular file", path);
    }
    *p = NULL;
    *len = (size_t)st.st_size;
    if (*len == 0) {
        close(fd);
        return GRAPE_OK;
    }
    mapping m = {NULL, *len, -1, -1, strdup(path)};
    grape_status s = m.path ? GRAPE_OK : error_fail(GRAPE_ERR_NOMEM, "out of memory");
    if (!s && *len <= data_copy_max())
        s = copy_file(&m.addr, fd, *len, path);
    else if (!s && (m.addr = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
        m.addr = NULL, s = error_fail(GRAPE_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
    else if (!s && !(s = guard_mapping(&m.guard, m.addr, *len, path)))
        m.fd = fd, fd = -1;
    if (fd >= 0) close(fd);
    if (!s) s = grow((void **)&c->maps, &c->cap_maps, c->n_maps + 1, sizeof *c->maps);
    if (s) {
        m.addr ? unmap(&m) : free(m.path);
        return s;
    }
    c->maps[c->n_maps++] = m;
    *p = m.addr;
    return GRAPE_OK;
}

// ---------------------------------------------------------------------------------------------------------
// Documents of a single file

// First occurrence of sep in [p, p+len), or NULL (memmem without _GNU_SOURCE).
static const uint8_t *find_bytes(const uint8_t *p, size_t len, const char *sep, size_t sep_len) {
    for (const uint8_t *end = p + len; (size_t)(end - p) >= sep_len;) {
        const uint8_t *hit = memchr(p, (unsigned char)sep[0], (size_t)(end - p) - sep_len + 1);
        if (!hit) return NULL;
        if (memcmp(hit, sep, sep_len) == 0) return hit;
        p = hit + 1;
    }
    return NULL;
}

static grape_status split_by_separator(data_corpus *c, const uint8_t *p, size_t len, const char *sep, size_t sep_len) {
    size_t a = 0;
    while (a <= len) {
        const uint8_t *hit = find_bytes(p + a, len - a, sep, sep_len);
        size_t b = hit ? (size_t)(hit - p) : len;
        grape_status s = push_doc(c, p + a, b - a);
        if (s) return s;
        a = b + sep_len;
        if (!hit) break;
    }
    return GRAPE_OK;
}

// Does the line [s, e) look like the start of a book in `bible` output: "<Book> 1" between two blank lines?
static int is_book_heading(const uint8_t *p, size_t len, size_t s, size_t e) {
    if (s < 1 || p[s - 1] != '\n' || (s >= 2 && p[s - 2] != '\n')) return 0;
    if (e - s < 3 || e - s > MAX_HEADING || p[s] == ' ') return 0;
    if (p[e - 2] != ' ' || p[e - 1] != '1') return 0;
    return e + 1 < len && p[e] == '\n' && p[e + 1] == '\n';
}

// One document per book; the bytes before the first heading belong to the first book.
static grape_status split_by_book(data_corpus *c, const uint8_t *p, size_t len) {
    size_t prev = 0, n_headings = 0;
    for (size_t s = 0; s < len;) {
        const uint8_t *nl = memchr(p + s, '\n', len - s);
        size_t e = nl ? (size_t)(nl - p) : len;
        if (is_book_heading(p, len, s, e) && n_headings++ > 0) {
            grape_status st = push_doc(c, p + prev, s - prev);
            if (st) return st;
            prev = s;
        }
        s = e + 1;
    }
    return push_doc(c, p + prev, len - prev);
}

static grape_status split_equal(data_corpus *c, const uint8_t *p, size_t len) {
    size_t n = len / PIECE_BYTES + (len % PIECE_BYTES != 0);
    if (n < MIN_PIECES) n = MIN_PIECES;
    for (size_t i = 0; i < n; i++) {
        size_t a = (size_t)((unsigned __int128)len * i / n), b = (size_t)((unsigned __int128)len * (i + 1) / n);
        grape_status s = push_doc(c, p + a, b - a);
        if (s) return s;
    }
    return GRAPE_OK;
}

static grape_status open_file(data_corpus *c, const char *path, const char *sep, size_t sep_len) {
    const uint8_t *p;
    size_t len;
    grape_status s = map_file(c, path, &p, &len);
    if (s) return s;
    if (len == 0) return error_fail(GRAPE_ERR_ARG, "data file '%s' is empty", path);
    if (sep) return split_by_separator(c, p, len, sep, sep_len);
    s = split_by_book(c, p, len);
    if (s || c->n_docs >= 2) return s;
    c->n_docs = 0;
    return split_equal(c, p, len);
}

// ---------------------------------------------------------------------------------------------------------
// Documents of a directory

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

// Names of the regular, non-hidden files directly inside dir, sorted bytewise.
static grape_status list_dir(char ***out, size_t *n_out, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return error_fail(GRAPE_ERR_IO, "cannot open directory '%s': %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    grape_status s = GRAPE_OK;
    for (struct dirent *e; !s && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char *full = malloc(strlen(dir) + strlen(e->d_name) + 2);
        s = full ? grow((void **)&names, &cap, n + 1, sizeof *names)
                 : error_fail(GRAPE_ERR_NOMEM, "out of memory listing '%s'", dir);
        if (s) {
            free(full);
            break;
        }
        sprintf(full, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
            names[n++] = full;
        else
            free(full);
    }
    closedir(d);
    if (s) {
        free_names(names, n);
        return s;
    }
    if (n) qsort(names, n, sizeof *names, cmp_names);
    *out = names;
    *n_out = n;
    return GRAPE_OK;
}

static grape_status open_dir(data_corpus *c, const char *dir) {
    char **names = NULL;
    size_t n = 0;
    grape_status s = list_dir(&names, &n, dir);
    if (s) return s;
    for (size_t i = 0; i < n && !s; i++) {
        const uint8_t *p;
        size_t len;
        s = map_file(c, names[i], &p, &len);
        if (!s) s = push_doc(c, p, len);
    }
    free_names(names, n);
    if (!s && c->n_docs == 0) s = error_fail(GRAPE_ERR_ARG, "directory '%s' has no non-empty regular files", dir);
    return s;
}

// ---------------------------------------------------------------------------------------------------------
// Split and window index

static void split_docs(data_corpus *c) {
    double seen = 0, val = 0;
    for (size_t i = 0; i < c->n_docs; i++) {
        double len = (double)c->docs[i].len;
        seen += len;
        double target = DATA_VAL_SHARE * seen;
        c->docs[i].is_val = fabs(val + len - target) < fabs(val - target);
        if (c->docs[i].is_val) val += len;
    }
    // A few large documents can leave the rule with nothing to hold out; validation must never be empty.
    if (val == 0) c->docs[c->n_docs - 1].is_val = 1;
    for (size_t i = 0; i < c->n_docs; i++) {
        c->total_bytes += c->docs[i].len;
        c->val_bytes += c->docs[i].is_val ? c->docs[i].len : 0;
    }
}

// Windows a document contributes: every start for training, non-overlapping starts for validation.
static uint64_t doc_windows(const data_doc *d, int T, int is_val) {
    if (d->len < (size_t)T + 1) return 0;
    return is_val ? (d->len - 1) / (size_t)T : d->len - (size_t)T;
}

static grape_status build_index(data_corpus *c, int is_val, size_t **doc, uint64_t **cum, size_t *n) {
    *doc = malloc((c->n_docs + 1) * sizeof **doc);
    *cum = malloc((c->n_docs + 1) * sizeof **cum);
    if (!*doc || !*cum) return error_fail(GRAPE_ERR_NOMEM, "out of memory indexing %zu documents", c->n_docs);
    uint64_t total = 0;
    *n = 0;
    for (size_t i = 0; i < c->n_docs; i++) {
        uint64_t w = c->docs[i].is_val == is_val ? doc_windows(&c->docs[i], c->T, is_val) : 0;
        if (!w) continue;
        (*doc)[*n] = i;
        (*cum)[(*n)++] = total += w;
    }
    return GRAPE_OK;
}

grape_status data_open(data_corpus **out, const char *path, const char *sep, size_t sep_len, int T) {
    *out = NULL;
    if (T < 1) return error_fail(GRAPE_ERR_ARG, "sequence length must be positive, got %d", T);
    if (sep && sep_len == 0) return error_fail(GRAPE_ERR_ARG, "document separator is empty");
    struct stat st;
    if (stat(path, &st) != 0) return error_fail(GRAPE_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    data_corpus *c = calloc(1, sizeof *c);
    if (!c) return error_fail(GRAPE_ERR_NOMEM, "out of memory");
    c->T = T;
    grape_status s = S_ISDIR(st.st_mode) ? open_dir(c, path) : open_file(c, path, sep, sep_len);
    if (!s && c->n_docs < 2)
        s = error_fail(GRAPE_ERR_ARG, "'%s' has %zu document(s); a train/validation split needs at least 2", path,
                       c->n_docs);
    if (!s) {
        split_docs(c);
        s = build_index(c, 0, &c->train_doc, &c->train_cum, &c->n_train);
    }
    if (!s) s = build_index(c, 1, &c->val_doc, &c->val_cum, &c->n_val);
    if (!s && (c->n_train == 0 || c->n_val == 0))
        s = error_fail(GRAPE_ERR_ARG, "'%s': no %s document has the %d bytes a window of seq %d needs", path,
                       c->n_train ? "validation" : "training", T + 1, T);
    if (s) {
        data_close(c);
        return s;
    }
    *out = c;
    return GRAPE_OK;
}

void data_close(data_corpus *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_maps; i++) unmap(&c->maps[i]);
    free(c->maps);
    free(c->docs);
    free(c->train_doc);
    free(c->train_cum);
    free(c->val_doc);
    free(c->val_cum);
    free(c);
}

size_t data_num_docs(const data_corpus *c) { return c->n_docs; }
const data_doc *data_doc_at(const data_corpus *c, size_t i) { return &c->docs[i]; }
uint64_t data_total_bytes(const data_corpus *c) { return c->total_bytes; }
uint64_t data_val_bytes(const data_corpus *c) { return c->val_bytes; }
int64_t data_num_val_windows(const data_corpus *c) { return (int64_t)c->val_cum[c->n_val - 1]; }

// ---------------------------------------------------------------------------------------------------------
// Sampling

uint64_t data_rng_seed(uint64_t seed) { return seed * 0x9e3779b97f4a7c15ull ^ 0xd1b54a32d192ed03ull; }

uint64_t data_rng_next(uint64_t *state) { // splitmix64
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// First k with cum[k] > x (cum strictly increasing, x < cum[n-1]).
static size_t upper_bound(const uint64_t *cum, size_t n, uint64_t x) {
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

// Start of global window x among the documents of one index; stride 1 (training) or T (validation).
static const uint8_t *window_at(const data_corpus *c, const size_t *doc, const uint64_t *cum, size_t n, uint64_t x,
                                size_t stride) {
    size_t k = upper_bound(cum, n, x);
    uint64_t first = k ? cum[k - 1] : 0;
    return c->docs[doc[k]].bytes + (x - first) * stride;
}

// tokens, targets: (T) each, from a window w of T+1 bytes.
static void copy_window(uint8_t *tokens, uint8_t *targets, const uint8_t *w, int T) {
    memcpy(tokens, w, (size_t)T);
    memcpy(targets, w + 1, (size_t)T);
}

grape_status data_sample_batch(uint8_t *tokens, uint8_t *targets, const data_corpus *c, uint64_t *rng, int B) {
    uint64_t total = c->train_cum[c->n_train - 1];
    for (int b = 0; b < B; b++) {
        uint64_t x = (uint64_t)(((unsigned __int128)data_rng_next(rng) * total) >> 64);
        const uint8_t *w = window_at(c, c->train_doc, c->train_cum, c->n_train, x, 1);
        copy_window(tokens + (size_t)b * c->T, targets + (size_t)b * c->T, w, c->T);
    }
    return data_check(c);
}

grape_status data_val_batch(uint8_t *tokens, uint8_t *targets, const data_corpus *c, int64_t idx0, int64_t n_windows,
                            int B) {
    uint64_t total = c->val_cum[c->n_val - 1];
    for (int b = 0; b < B; b++) {
        uint64_t x = (uint64_t)((unsigned __int128)(uint64_t)(idx0 + b) * total / (uint64_t)n_windows);
        const uint8_t *w = window_at(c, c->val_doc, c->val_cum, c->n_val, x, (size_t)c->T);
        copy_window(tokens + (size_t)b * c->T, targets + (size_t)b * c->T, w, c->T);
    }
    return data_check(c);
}
