/* safetensors: reads (by mmap) and writes the safetensors format of
 * Hugging Face: an 8-byte little-endian header length N, N bytes of JSON
 * header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}, then the tensor data.
 *
 * safetensors_open validates everything before anything is used: header
 * length within the file and at most 100 MB, well-formed JSON (jansson),
 * known dtype (F32, F16, BF16 are readable as float; others are
 * rejected), shape x dtype size = byte range, ranges contiguous from 0
 * without gaps or overlaps, in bounds of the file, no duplicate names.
 * Every error names the file and the problem (see errors.h). */
#ifndef STAMP_SAFETENSORS_H
#define STAMP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define SAFETENSORS_MAX_DIMS 8

typedef enum { ST_F32, ST_F16, ST_BF16 } st_dtype;

typedef struct {
    const char *name;                      /* owned by the file handle */
    st_dtype dtype;
    int ndim;
    size_t shape[SAFETENSORS_MAX_DIMS];
    size_t numel;                          /* product of shape (1 for 0-d) */
    size_t offset;                         /* from the start of the data */
    size_t nbytes;
    const void *data;                      /* into the mmap; read-only */
} st_tensor;

typedef struct st_file st_file; /* opaque */

/* Maps and validates `path`. On success *out owns the mapping; close it
 * with safetensors_close. */
int safetensors_open(st_file **out, const char *path);
void safetensors_close(st_file *f); /* accepts NULL */

size_t safetensors_count(const st_file *f);
const st_tensor *safetensors_at(const st_file *f, size_t i); /* header order */
const st_tensor *safetensors_find(const st_file *f, const char *name);

/* Copies tensor `t` into `out` (t->numel floats), converting F16/BF16. */
void safetensors_to_f32(const st_tensor *t, float *out);

/* A tensor to write: F32 data of `numel` = product of shape, stored as
 * dtype (0 = ST_F32; F16 and BF16 rounded to nearest even). */
typedef struct {
    const char *name;
    int ndim;
    size_t shape[SAFETENSORS_MAX_DIMS];
    const float *data;
    st_dtype dtype;
} st_write_tensor;

/* Writes `n` tensors to `path` in the order given: header padded
 * with spaces to a multiple of 8, "__metadata__": {"format": "pt"}, data
 * contiguous in header order. Writes to a temporary file in the same
 * directory and renames it into place, so a crash never leaves half a
 * file. */
int safetensors_write(const char *path, const st_write_tensor *t, size_t n);

#endif
