/* gguf: a writer of GGUF v3 files (the model format of llama.cpp) and
 * the number formats they hold. A file is built in memory as key/value
 * metadata and tensor descriptions pointing at the caller's f32 data,
 * then written in one pass through base/atomic_file.h: the bytes go to a
 * temporary beside the path and are renamed over it only when all of
 * them were written and synced, so a failure (no such directory, a full
 * disk) leaves no half-written file and the old file, if any, intact.
 *
 * Layout (little-endian): "GGUF", version 3, tensor count and key/value
 * count (u64); the key/value pairs (a string is a u64 length and its
 * bytes); the tensor infos (name, n_dims, dims in ggml order = the
 * row-major shape reversed, ggml type, offset into the data); padding to
 * general.alignment (32); the tensors, each padded to 32 bytes.
 *
 * Conversion of f32 data happens at write time: F16 and BF16 round to
 * nearest, ties to even; Q8_0 stores blocks of 32 values as an f16 scale
 * d = max|x| / 127 and 32 int8 round(x / d) (34 bytes a block), as
 * ggml's reference quantizer does. */
#ifndef STAMP_GGUF_H
#define STAMP_GGUF_H

#include <stddef.h>
#include <stdint.h>

/* ggml's type numbers for the tensor formats written here */
typedef enum {
    GGUF_F32 = 0,
    GGUF_F16 = 1,
    GGUF_Q8_0 = 8,
    GGUF_BF16 = 30,
} gguf_type;

#define GGUF_QK8_0 32 /* values per Q8_0 block */

typedef struct gguf_writer gguf_writer; /* opaque */

/* "f32", "f16", "bf16", "q8_0" <-> type; -1 for an unknown name. */
int gguf_type_parse(const char *name);
const char *gguf_type_name(gguf_type t);

/* Bytes that n values (a multiple of 32 for Q8_0) take in type t. */
size_t gguf_type_size(gguf_type t, size_t n);

/* n values (a multiple of 32) as n/32 Q8_0 blocks into out
 * (gguf_type_size(GGUF_Q8_0, n) bytes). */
void gguf_quantize_q8_0(void *out, const float *x, size_t n);

int gguf_writer_new(gguf_writer **out);
void gguf_writer_free(gguf_writer *w); /* accepts NULL */

/* Metadata; keys and strings are copied. ERR_NOMEM on failure. */
int gguf_set_str(gguf_writer *w, const char *key, const char *value);
int gguf_set_u32(gguf_writer *w, const char *key, uint32_t value);
int gguf_set_f32(gguf_writer *w, const char *key, float value);
int gguf_set_bool(gguf_writer *w, const char *key, int value);
/* An array of n strings (each with its length: strings may hold any
 * bytes), of n int32 or of n float32. The values are copied. */
int gguf_set_str_array(gguf_writer *w, const char *key,
                       const char *const *values, const size_t *lens,
                       size_t n);
int gguf_set_i32_array(gguf_writer *w, const char *key,
                       const int32_t *values, size_t n);
int gguf_set_f32_array(gguf_writer *w, const char *key,
                       const float *values, size_t n);

/* A tensor of row-major shape (ndim 1 or 2) stored as type. data is the
 * caller's f32, read only by gguf_writer_write, and must outlive it.
 * Q8_0 with a row length (shape[ndim-1]) that is not a multiple of 32 is
 * ERR_INVALID, naming the tensor. */
int gguf_add_tensor(gguf_writer *w, const char *name, const size_t *shape,
                    int ndim, gguf_type type, const float *data);

/* A tensor whose f32 values are made at write time: fill(ctx, out)
 * writes its numel values, row-major, to out. The writer calls it once,
 * converts and writes the tensor, and reuses out for the next one, so a
 * model whose matrices are stored in another layout or dtype is written
 * with one tensor's f32 in memory. ctx must outlive gguf_writer_write. */
typedef void (*gguf_fill_fn)(const void *ctx, float *out);
int gguf_add_tensor_fill(gguf_writer *w, const char *name,
                         const size_t *shape, int ndim, gguf_type type,
                         gguf_fill_fn fill, const void *ctx);

/* Writes the file to path atomically (see above). Errors name the path:
 * ERR_IO (the directory is missing, the disk is full, ...). */
int gguf_writer_write(const gguf_writer *w, const char *path);

#endif
