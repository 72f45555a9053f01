/* gguf: GGUF v3 files built in memory and written atomically (gguf.h).
 * The metadata is serialized as it is set (its bytes are final then);
 * the tensors are converted from the caller's f32 (or made by the
 * caller's fill function) one at a time while the file is written, so
 * the memory needed is one tensor's. */
#include "repo/gguf.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/half.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_ALIGN 32

enum { /* GGUF metadata value types */
    KV_UINT32 = 4, KV_INT32 = 5, KV_FLOAT32 = 6, KV_BOOL = 7, KV_STRING = 8,
    KV_ARRAY = 9,
};

typedef struct {
    char *name;
    int ndim;
    size_t shape[2];   /* row-major */
    gguf_type type;
    const float *data; /* the caller's, (shape); or NULL and: */
    gguf_fill_fn fill; /* makes it at write time */
    const void *ctx;
    size_t offset;     /* into the data section */
    size_t nbytes;
} gguf_tensor;

typedef struct { /* a growing byte buffer */
    unsigned char *p;
    size_t n, cap;
    int failed;
} buf;

struct gguf_writer {
    buf kv;        /* the serialized key/value pairs */
    size_t n_kv;
    gguf_tensor *tensors;
    size_t n_tensors, cap_tensors;
    size_t data_size;
};

static void buf_put(buf *b, const void *src, size_t n)
{
    if (b->failed) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

/* little-endian hosts only (x86-64, aarch64): the bytes as they are */
static void put_u32(buf *b, uint32_t x) { buf_put(b, &x, 4); }
static void put_u64(buf *b, uint64_t x) { buf_put(b, &x, 8); }
static void put_str(buf *b, const char *s, size_t n)
{
    put_u64(b, n);
    buf_put(b, s, n);
}

static int kv_end(gguf_writer *w)
{
    if (w->kv.failed) return err_set(ERR_NOMEM, "out of memory");
    w->n_kv++;
    return 0;
}

int gguf_type_parse(const char *name)
{
    static const struct { const char *name; gguf_type t; } names[] = {
        {"f32", GGUF_F32}, {"f16", GGUF_F16}, {"bf16", GGUF_BF16},
        {"q8_0", GGUF_Q8_0}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i].name)) return (int)names[i].t;
    return -1;
}

const char *gguf_type_name(gguf_type t)
{
    switch (t) {
    case GGUF_F32: return "f32";
    case GGUF_F16: return "f16";
    case GGUF_BF16: return "bf16";
    case GGUF_Q8_0: return "q8_0";
    }
    return "?";
}

size_t gguf_type_size(gguf_type t, size_t n)
{
    switch (t) {
    case GGUF_F32: return 4 * n;
    case GGUF_F16:
    case GGUF_BF16: return 2 * n;
    case GGUF_Q8_0: return n / GGUF_QK8_0 * (2 + GGUF_QK8_0);
    }
    return 0;
}

void gguf_quantize_q8_0(void *out, const float *x, size_t n)
{
    unsigned char *o = out;
    for (size_t b = 0; b < n / GGUF_QK8_0; b++, x += GGUF_QK8_0) {
        float amax = 0;
        for (int i = 0; i < GGUF_QK8_0; i++)
            if (fabsf(x[i]) > amax) amax = fabsf(x[i]);
        float d = amax / 127, id = d ? 1 / d : 0;
        uint16_t dh = float_to_half(d);
        memcpy(o, &dh, 2);
        for (int i = 0; i < GGUF_QK8_0; i++)
            o[2 + i] = (unsigned char)(int8_t)roundf(x[i] * id);
        o += 2 + GGUF_QK8_0;
    }
}

int gguf_writer_new(gguf_writer **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : err_set(ERR_NOMEM, "out of memory");
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w->kv.p);
    free(w);
}

int gguf_set_str(gguf_writer *w, const char *key, const char *value)
{
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, KV_STRING);
    put_str(&w->kv, value, strlen(value));
    return kv_end(w);
}

int gguf_set_u32(gguf_writer *w, const char *key, uint32_t value)
{
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, KV_UINT32);
    put_u32(&w->kv, value);
    return kv_end(w);
}

int gguf_set_f32(gguf_writer *w, const char *key, float value)
{
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, KV_FLOAT32);
    buf_put(&w->kv, &value, 4);
    return kv_end(w);
}

int gguf_set_bool(gguf_writer *w, const char *key, int value)
{
    unsigned char v = value != 0;
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, KV_BOOL);
    buf_put(&w->kv, &v, 1);
    return kv_end(w);
}

int gguf_set_str_array(gguf_writer *w, const char *key,
                       const char *const *values, const size_t *lens,
                       size_t n)
{
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, KV_ARRAY);
    put_u32(&w->kv, KV_STRING);
    put_u64(&w->kv, n);
    for (size_t i = 0; i < n; i++) put_str(&w->kv, values[i], lens[i]);
    return kv_end(w);
}

int gguf_set_i32_array(gguf_writer *w, const char *key,
                       const int32_t *values, size_t n)
{
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, KV_ARRAY);
    put_u32(&w->kv, KV_INT32);
    put_u64(&w->kv, n);
    buf_put(&w->kv, values, 4 * n);
    return kv_end(w);
}

int gguf_set_f32_array(gguf_writer *w, const char *key,
                       const float *values, size_t n)
{
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, KV_ARRAY);
    put_u32(&w->kv, KV_FLOAT32);
    put_u64(&w->kv, n);
    buf_put(&w->kv, values, 4 * n);
    return kv_end(w);
}

static size_t align_up(size_t n) { return (n + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN; }

static int add_tensor(gguf_writer *w, const char *name, const size_t *shape,
                      int ndim, gguf_type type, const float *data,
                      gguf_fill_fn fill, const void *ctx)
{
    if (ndim < 1 || ndim > 2)
        return err_set(ERR_INVALID, "tensor '%s': %d dimensions", name, ndim);
    size_t numel = ndim == 1 ? shape[0] : shape[0] * shape[1];
    if (type == GGUF_Q8_0 && shape[ndim - 1] % GGUF_QK8_0)
        return err_set(ERR_INVALID, "tensor '%s' cannot be stored as q8_0: "
                       "its rows have %zu values, not a multiple of %d",
                       name, shape[ndim - 1], GGUF_QK8_0);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        gguf_tensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) return err_set(ERR_NOMEM, "out of memory");
        w->tensors = t;
        w->cap_tensors = cap;
    }
    gguf_tensor *t = &w->tensors[w->n_tensors];
    if (!(t->name = strdup(name))) return err_set(ERR_NOMEM, "out of memory");
    t->ndim = ndim;
    t->shape[0] = shape[0];
    t->shape[1] = ndim == 2 ? shape[1] : 1;
    t->type = type;
    t->data = data;
    t->fill = fill;
    t->ctx = ctx;
    t->nbytes = gguf_type_size(type, numel);
    t->offset = w->data_size;
    w->data_size += align_up(t->nbytes);
    w->n_tensors++;
    return 0;
}

int gguf_add_tensor(gguf_writer *w, const char *name, const size_t *shape,
                    int ndim, gguf_type type, const float *data)
{
    return add_tensor(w, name, shape, ndim, type, data, NULL, NULL);
}

int gguf_add_tensor_fill(gguf_writer *w, const char *name,
                         const size_t *shape, int ndim, gguf_type type,
                         gguf_fill_fn fill, const void *ctx)
{
    return add_tensor(w, name, shape, ndim, type, NULL, fill, ctx);
}

/* The tensor t's f32 values x converted to its type into out
 * (t->nbytes). */
static void convert(unsigned char *out, const gguf_tensor *t, const float *x)
{
    size_t n = t->shape[0] * t->shape[1];
    switch (t->type) {
    case GGUF_F32: memcpy(out, x, 4 * n); break;
    case GGUF_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = float_to_half(x[i]);
            memcpy(out + 2 * i, &h, 2);
        }
        break;
    case GGUF_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = float_to_bf16(x[i]);
            memcpy(out + 2 * i, &h, 2);
        }
        break;
    case GGUF_Q8_0: gguf_quantize_q8_0(out, x, n); break;
    }
}

int gguf_writer_write(const gguf_writer *w, const char *path)
{
    static const unsigned char zeros[GGUF_ALIGN];
    buf head = {0};
    atomic_file *f = NULL;
    unsigned char *scratch = NULL;
    float *filled = NULL;
    size_t max_bytes = 0, max_fill = 0;
    int rc;

    buf_put(&head, "GGUF", 4);
    put_u32(&head, 3);
    put_u64(&head, w->n_tensors);
    put_u64(&head, w->n_kv);
    buf_put(&head, w->kv.p, w->kv.n);
    for (size_t i = 0; i < w->n_tensors; i++) {
        const gguf_tensor *t = &w->tensors[i];
        put_str(&head, t->name, strlen(t->name));
        put_u32(&head, (uint32_t)t->ndim);
        /* ggml order: the fastest-varying dimension first */
        for (int d = t->ndim - 1; d >= 0; d--) put_u64(&head, t->shape[d]);
        put_u32(&head, t->type);
        put_u64(&head, t->offset);
        if (t->nbytes > max_bytes) max_bytes = t->nbytes;
        if (t->fill && t->shape[0] * t->shape[1] > max_fill)
            max_fill = t->shape[0] * t->shape[1];
    }
    buf_put(&head, zeros, align_up(head.n) - head.n);
    if (head.failed || !(scratch = malloc(max_bytes ? max_bytes : 1)) ||
        !(filled = malloc(max_fill ? max_fill * sizeof *filled : 1))) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = atomic_file_open(&f, path)) ||
        (rc = atomic_file_write(f, head.p, head.n)))
        goto out;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const gguf_tensor *t = &w->tensors[i];
        if (t->fill) t->fill(t->ctx, filled);
        convert(scratch, t, t->fill ? filled : t->data);
        if ((rc = atomic_file_write(f, scratch, t->nbytes)) ||
            (rc = atomic_file_write(f, zeros, align_up(t->nbytes) -
                                                  t->nbytes)))
            goto out;
    }
    rc = atomic_file_commit(f);
    f = NULL;
out:
    atomic_file_abort(f);
    free(filled);
    free(scratch);
    free(head.p);
    return rc;
}
