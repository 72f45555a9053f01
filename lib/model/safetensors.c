/* safetensors: the mmap reader and the atomic writer of Hugging Face's
 * safetensors format (see safetensors.h).
 *
 * The reader trusts nothing in the file: the header length, the JSON, each
 * tensor's dtype, shape and byte range are checked, and the byte ranges
 * together must tile the data section exactly (sorted by offset, each
 * range starts where the previous one ended, the first at 0, the last at
 * the end of the file), as the reference implementation requires. Only
 * then is a tensor handed out. Tensor data stays in the read-only map;
 * safetensors_to_f32 copies it out with memcpy, so it needs no alignment.
 * The code assumes a little-endian host, as the format does. */
#include "model/safetensors.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/half.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

struct st_file {
    char *path;
    const unsigned char *map; /* whole file, read-only */
    size_t map_size;
    json_t *header;           /* owns the tensor names */
    st_tensor *tensors;       /* in header order */
    size_t count;
};

static size_t dtype_size(st_dtype d) { return d == ST_F32 ? 4 : 2; }

/* Maps a dtype name; 1 for a known but unsupported dtype, -1 unknown. */
static int dtype_parse(const char *s, st_dtype *out)
{
    static const char *unsupported[] = {
        "F64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2",
        "F4", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL",
        "C64",
    };
    if (!strcmp(s, "F32")) { *out = ST_F32; return 0; }
    if (!strcmp(s, "F16")) { *out = ST_F16; return 0; }
    if (!strcmp(s, "BF16")) { *out = ST_BF16; return 0; }
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
        if (!strcmp(s, unsupported[i])) return 1;
    return -1;
}

/* A JSON integer in [0, SIZE_MAX], or -1 (not an integer or negative). */
static int json_size(const json_t *v, size_t *out)
{
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0) return -1;
    *out = (size_t)x;
    return 0;
}

/* Validates one header entry and fills `t` (offset/data set later). */
static int parse_entry(const char *path, const char *name, json_t *v,
                       st_tensor *t)
{
    if (!json_is_object(v))
        return err_set(ERR_FORMAT, "'%s': tensor '%s': entry is not an "
                       "object", path, name);
    json_t *jd = json_object_get(v, "dtype");
    json_t *js = json_object_get(v, "shape");
    json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return err_set(ERR_FORMAT, "'%s': tensor '%s': missing or non-string "
                       "'dtype'", path, name);
    int k = dtype_parse(json_string_value(jd), &t->dtype);
    if (k > 0)
        return err_set(ERR_FORMAT, "'%s': tensor '%s': unsupported dtype "
                       "'%s' (F32, F16 and BF16 are readable)", path, name,
                       json_string_value(jd));
    if (k < 0)
        return err_set(ERR_FORMAT, "'%s': tensor '%s': unknown dtype '%s'",
                       path, name, json_string_value(jd));
    if (!json_is_array(js))
        return err_set(ERR_FORMAT, "'%s': tensor '%s': missing or non-array "
                       "'shape'", path, name);
    size_t nd = json_array_size(js);
    if (nd > SAFETENSORS_MAX_DIMS)
        return err_set(ERR_FORMAT, "'%s': tensor '%s': %zu dimensions, at "
                       "most %d supported", path, name, nd,
                       SAFETENSORS_MAX_DIMS);
    t->ndim = (int)nd;
    t->numel = 1;
    int overflow = 0;
    for (size_t i = 0; i < nd; i++) {
        if (json_size(json_array_get(js, i), &t->shape[i]) != 0)
            return err_set(ERR_FORMAT, "'%s': tensor '%s': shape[%zu] is not "
                           "a non-negative integer", path, name, i);
        if (t->shape[i] != 0 && t->numel > SIZE_MAX / t->shape[i])
            overflow = 1;
        else
            t->numel *= t->shape[i];
    }
    if (overflow && t->numel != 0)
        return err_set(ERR_FORMAT, "'%s': tensor '%s': shape too large", path,
                       name);
    if (overflow) t->numel = 0; /* a zero dimension makes the rest moot */
    size_t es = dtype_size(t->dtype);
    if (t->numel > SIZE_MAX / es)
        return err_set(ERR_FORMAT, "'%s': tensor '%s': shape too large", path,
                       name);
    t->nbytes = t->numel * es;
    size_t b, e;
    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        json_size(json_array_get(jo, 0), &b) != 0 ||
        json_size(json_array_get(jo, 1), &e) != 0)
        return err_set(ERR_FORMAT, "'%s': tensor '%s': 'data_offsets' must be "
                       "two non-negative integers", path, name);
    if (e < b)
        return err_set(ERR_FORMAT, "'%s': tensor '%s': data_offsets [%zu, %zu] "
                       "end before they begin", path, name, b, e);
    if (e - b != t->nbytes)
        return err_set(ERR_FORMAT, "'%s': tensor '%s': shape and dtype need "
                       "%zu bytes but data_offsets [%zu, %zu] hold %zu", path,
                       name, t->nbytes, b, e, e - b);
    t->offset = b;
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a;
    const st_tensor *y = *(const st_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

/* The ranges must tile [0, data_size) exactly. */
static int check_layout(const char *path, st_tensor *t, size_t n,
                        size_t data_size)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].offset > data_size || t[i].nbytes > data_size - t[i].offset)
            return err_set(ERR_FORMAT, "'%s': tensor '%s': data_offsets [%zu, "
                           "%zu] out of bounds (data section is %zu bytes)",
                           path, t[i].name, t[i].offset,
                           t[i].offset + t[i].nbytes, data_size);
    const st_tensor **s = malloc((n ? n : 1) * sizeof *s);
    if (!s) return err_set(ERR_NOMEM, "'%s': out of memory", path);
    for (size_t i = 0; i < n; i++) s[i] = &t[i];
    qsort(s, n, sizeof *s, cmp_offset);
    size_t pos = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (s[i]->offset < pos)
            rc = err_set(ERR_FORMAT, "'%s': tensors '%s' and '%s' overlap "
                         "(bytes %zu to %zu)", path, s[i - 1]->name,
                         s[i]->name, s[i]->offset, pos);
        else if (s[i]->offset > pos)
            rc = err_set(ERR_FORMAT, "'%s': gap in the data before tensor "
                         "'%s' (bytes %zu to %zu belong to no tensor)", path,
                         s[i]->name, pos, s[i]->offset);
        else
            pos = s[i]->offset + s[i]->nbytes;
    }
    if (!rc && pos != data_size)
        rc = err_set(ERR_FORMAT, "'%s': tensors end at byte %zu of a %zu-byte "
                     "data section (trailing bytes)", path, pos, data_size);
    free(s);
    return rc;
}

int safetensors_open(st_file **out, const char *path)
{
    *out = NULL;
    int rc = 0, fd = -1;
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        rc = err_set(ERR_NOMEM, "'%s': out of memory", path);
        goto fail;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = err_set(errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
                     "cannot open '%s': %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = err_set(ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = err_set(ERR_FORMAT, "'%s': not a regular file", path);
        goto fail;
    }
    if (st.st_size == 0) {
        rc = err_set(ERR_FORMAT, "'%s': file is empty", path);
        goto fail;
    }
    if (st.st_size < 8) {
        rc = err_set(ERR_FORMAT, "'%s': truncated: %lld bytes, too short for "
                     "the 8-byte header length", path, (long long)st.st_size);
        goto fail;
    }
    f->map_size = (size_t)st.st_size;
    void *m = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        rc = err_set(ERR_IO, "cannot map '%s': %s", path, strerror(errno));
        goto fail;
    }
    f->map = m;
    close(fd);
    fd = -1;

    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->map[i];
    if (hlen > ST_MAX_HEADER) {
        rc = err_set(ERR_FORMAT, "'%s': header length %llu exceeds the 100 MB "
                     "limit", path, (unsigned long long)hlen);
        goto fail;
    }
    if (hlen > f->map_size - 8) {
        rc = err_set(ERR_FORMAT, "'%s': header length %llu exceeds the file "
                     "size (%zu bytes after the length)", path,
                     (unsigned long long)hlen, f->map_size - 8);
        goto fail;
    }
    if (hlen < 2 || f->map[8] != '{') {
        rc = err_set(ERR_FORMAT, "'%s': header is not a JSON object", path);
        goto fail;
    }
    json_error_t jerr;
    f->header = json_loadb((const char *)f->map + 8, (size_t)hlen,
                           JSON_REJECT_DUPLICATES, &jerr);
    if (!f->header) {
        rc = err_set(ERR_FORMAT, "'%s': bad JSON header at line %d column %d: "
                     "%s", path, jerr.line, jerr.column, jerr.text);
        goto fail;
    }
    if (!json_is_object(f->header)) {
        rc = err_set(ERR_FORMAT, "'%s': header is not a JSON object", path);
        goto fail;
    }
    size_t n = json_object_size(f->header);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors) {
        rc = err_set(ERR_NOMEM, "'%s': out of memory", path);
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(f->header, key, val) {
        if (!strcmp(key, "__metadata__")) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(val)) {
                rc = err_set(ERR_FORMAT, "'%s': '__metadata__' is not an "
                             "object", path);
                goto fail;
            }
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    rc = err_set(ERR_FORMAT, "'%s': __metadata__ value '%s' is "
                                 "not a string", path, mk);
                    goto fail;
                }
            }
            continue;
        }
        st_tensor *t = &f->tensors[f->count];
        t->name = key;
        if ((rc = parse_entry(path, key, val, t)) != 0) goto fail;
        f->count++;
    }
    size_t data_start = 8 + (size_t)hlen;
    if ((rc = check_layout(path, f->tensors, f->count,
                           f->map_size - data_start)) != 0)
        goto fail;
    for (size_t i = 0; i < f->count; i++)
        f->tensors[i].data = f->map + data_start + f->tensors[i].offset;
    *out = f;
    return 0;
fail:
    if (fd >= 0) close(fd);
    safetensors_close(f);
    return rc;
}

void safetensors_close(st_file *f)
{
    if (!f) return;
    if (f->map) munmap((void *)f->map, f->map_size);
    json_decref(f->header);
    free(f->tensors);
    free(f->path);
    free(f);
}

size_t safetensors_count(const st_file *f) { return f->count; }

const st_tensor *safetensors_at(const st_file *f, size_t i)
{
    return i < f->count ? &f->tensors[i] : NULL;
}

const st_tensor *safetensors_find(const st_file *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

void safetensors_to_f32(const st_tensor *t, float *out)
{
    const unsigned char *p = t->data;
    size_t n = t->numel;
    if (t->dtype == ST_F32) {
        memcpy(out, p, n * 4);
    } else if (t->dtype == ST_F16) {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = half_to_float(h);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = bf16_to_float(h);
        }
    }
}

/* Product of the shape, or 0 with *overflow set. */
static size_t shape_numel(const st_write_tensor *t, int *overflow)
{
    size_t n = 1;
    *overflow = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 0) return 0;
        if (n > SIZE_MAX / 4 / t->shape[d]) *overflow = 1;
        n *= t->shape[d];
    }
    return *overflow ? 0 : n;
}

/* The n values of t in its dtype (F16 and BF16 rounded to nearest). */
static int write_data(atomic_file *af, const st_write_tensor *t, size_t n)
{
    if (t->dtype == ST_F32) return atomic_file_write(af, t->data, 4 * n);
    uint16_t buf[4096];
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < 4096 && i < n; k++, i++)
            buf[k] = t->dtype == ST_F16 ? float_to_half(t->data[i])
                                        : float_to_bf16(t->data[i]);
        int rc = atomic_file_write(af, buf, 2 * k);
        if (rc) return rc;
    }
    return 0;
}

int safetensors_write(const char *path, const st_write_tensor *t, size_t n)
{
    int rc = 0;
    json_t *hdr = json_object();
    char *text = NULL;
    atomic_file *af = NULL;
    if (!hdr) return err_set(ERR_NOMEM, "'%s': out of memory", path);
    json_t *meta = json_pack("{s:s}", "format", "pt");
    if (!meta || json_object_set_new(hdr, "__metadata__", meta) != 0) {
        rc = err_set(ERR_NOMEM, "'%s': out of memory", path);
        goto out;
    }
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        int ovf;
        if (!t[i].name || !t[i].name[0] ||
            !strcmp(t[i].name, "__metadata__")) {
            rc = err_set(ERR_INVALID, "'%s': tensor %zu has an invalid name",
                         path, i);
            goto out;
        }
        if (t[i].ndim < 0 || t[i].ndim > SAFETENSORS_MAX_DIMS) {
            rc = err_set(ERR_INVALID, "'%s': tensor '%s': bad ndim %d", path,
                         t[i].name, t[i].ndim);
            goto out;
        }
        size_t numel = shape_numel(&t[i], &ovf), es = t[i].dtype == ST_F32 ? 4 : 2;
        if (ovf || offset > SIZE_MAX - es * numel) {
            rc = err_set(ERR_INVALID, "'%s': tensor '%s': shape too large",
                         path, t[i].name);
            goto out;
        }
        if (numel && !t[i].data) {
            rc = err_set(ERR_INVALID, "'%s': tensor '%s': no data", path,
                         t[i].name);
            goto out;
        }
        if (json_object_get(hdr, t[i].name)) {
            rc = err_set(ERR_INVALID, "'%s': duplicate tensor name '%s'", path,
                         t[i].name);
            goto out;
        }
        json_t *shape = json_array();
        json_t *e = json_object();
        if (!shape || !e) {
            json_decref(shape); json_decref(e);
            rc = err_set(ERR_NOMEM, "'%s': out of memory", path);
            goto out;
        }
        for (int d = 0; d < t[i].ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t[i].shape[d]));
        json_object_set_new(e, "dtype", json_string(
            t[i].dtype == ST_F32 ? "F32" : t[i].dtype == ST_F16 ? "F16" : "BF16"));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets",
                            json_pack("[I,I]", (json_int_t)offset,
                                      (json_int_t)(offset + es * numel)));
        if (json_object_set_new(hdr, t[i].name, e) != 0) {
            rc = err_set(ERR_NOMEM, "'%s': out of memory", path);
            goto out;
        }
        offset += es * numel;
    }
    text = json_dumps(hdr, JSON_COMPACT);
    if (!text) {
        rc = err_set(ERR_NOMEM, "'%s': cannot encode the header", path);
        goto out;
    }
    size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(padded >> (8 * i));
    static const char spaces[8] = "        ";
    if ((rc = atomic_file_open(&af, path)) != 0) goto out;
    if ((rc = atomic_file_write(af, len8, 8)) != 0 ||
        (rc = atomic_file_write(af, text, hlen)) != 0 ||
        (rc = atomic_file_write(af, spaces, padded - hlen)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int ovf;
        size_t numel = shape_numel(&t[i], &ovf);
        if (numel && (rc = write_data(af, &t[i], numel)) != 0)
            goto out;
    }
    rc = atomic_file_commit(af);
    af = NULL;
out:
    atomic_file_abort(af);
    free(text);
    json_decref(hdr);
    return rc;
}
