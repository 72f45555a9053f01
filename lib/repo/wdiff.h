/* wdiff: reversible weight diffs. For one edited F32 tensor, a diff blob
 * holds exactly what turns the old values into the new ones and back,
 * bit for bit: fl(fl(w + d) - d) != w for about one weight in ten, so a
 * subtracted delta cannot undo a commit; a bitwise transform of the two
 * bit patterns can.
 *
 * Encoding (version 1): each 32-bit word of the tensor becomes
 *   XOR  old_bits ^ new_bits, or
 *   SUB  zigzag(new_bits - old_bits) (mod 2^32: the signed distance in
 *        units in the last place, folded so small changes of either sign
 *        are small numbers),
 * the words are laid out as byte planes (all high bytes, then all third
 * bytes, ...), bit planes, or plainly, and the result is compressed with
 * zstd. docs/performance.md, "Weight diffs", has the measurements
 * behind the default (wdiff_default_method).
 *
 * A change that is (nearly) low-rank, as MEMIT's is, has a better
 * encoding (LOWRANK, wdiff_encode_matrix): factors A (rows, k), B (cols,
 * k) in float32 with A B^T close to new - old, and per weight only what
 * the factors do not predict. The prediction of the ulp distance
 * new_bits - old_bits is Q = round(+-P / ulp(old)) with P = sum_k
 * A_ik B_jk summed in double in a fixed order (each product of two
 * floats is exact in double, so fused multiply-adds cannot change it);
 * it needs only old's sign and exponent, which are stored as the XOR of
 * the two top-9-bit fields, so Q is the same from either side and both
 * apply and revert are exact. Payload (before zstd): u32 rows, cols, k;
 * A; B; the 9-bit sign/exponent XORs as 2 byte planes; zigzag(d - Q) as
 * 4 byte planes.
 *
 * Blob layout (little-endian):
 *   0  "STWD"            magic
 *   4  u16 version (1)   6 u8 transform   7 u8 layout
 *   8  u64 n             number of floats
 *  16  u64 payload bytes
 *  24  32 hex chars      hash_hex of the old tensor's bytes (hash.h)
 *  56  32 hex chars      hash_hex of the new tensor's bytes
 *  88  u64 checksum      XXH3-64 of bytes 0..87 and the payload
 *  96  payload           one zstd frame of the laid-out words
 * Every blob is checked (magic, version, sizes, checksum, frame size)
 * before any of it is used, and apply/revert check the hashes of their
 * input and their output: a blob that does not fit the tensor is refused
 * and never produces a wrong tensor. */
#ifndef STAMP_WDIFF_H
#define STAMP_WDIFF_H

#include <stddef.h>
#include <stdint.h>

#define WDIFF_VERSION 1
#define WDIFF_HEADER_BYTES 96

typedef enum {
    WDIFF_XOR = 1,          /* old_bits ^ new_bits */
    WDIFF_SUB = 2,          /* zigzag(new_bits - old_bits) */
    WDIFF_LOWRANK = 3,      /* factors + residual of the predicted ulp
                               distance (wdiff_encode_matrix only) */
} wdiff_transform;

typedef enum {
    WDIFF_PLAIN = 0,        /* the 32-bit words as they are (LE) */
    WDIFF_BYTEPLANES = 1,   /* 4 planes of n bytes, high byte first */
    WDIFF_BITPLANES = 2,    /* 32 planes of ceil(n/8) bytes, high bit first */
} wdiff_layout;

typedef struct {
    wdiff_transform transform;
    wdiff_layout layout;
    int level;              /* zstd compression level */
} wdiff_method;

/* The method wdiff_encode uses (chosen by measurement, see the top). */
extern const wdiff_method wdiff_default_method;

/* What a blob's header says. */
typedef struct {
    unsigned version;
    wdiff_transform transform;
    wdiff_layout layout;
    size_t n;                 /* floats */
    size_t payload_bytes;     /* compressed */
    char old_hash[33];        /* hash_hex of the old tensor */
    char new_hash[33];        /* hash_hex of the new tensor */
} wdiff_info;

/* Encodes the change old -> new of n floats (old and new may hold NaNs
 * or anything: only bit patterns matter) with the default method.
 * *blob is malloc'ed (caller frees), *len its size. */
int wdiff_encode(const float *old, const float *new_, size_t n, void **blob,
                 size_t *len);

/* The same with an explicit method (for measurements and tests);
 * ERR_INVALID for an unknown transform or layout (LOWRANK needs a shape:
 * wdiff_encode_matrix). */
int wdiff_encode_method(const float *old, const float *new_, size_t n,
                        const wdiff_method *m, void **blob, size_t *len);

/* The smallest encoding of the change of a (rows, cols) row-major
 * matrix: LOWRANK when the change has a numerical rank k small enough
 * for its factors to pay (k <= 256 and the factors well under the raw
 * size), else the default method. The blob is decoded and checked both
 * ways before it is returned. Decodes with wdiff_apply/wdiff_revert like
 * any other. */
int wdiff_encode_matrix(const float *old, const float *new_, size_t rows,
                        size_t cols, void **blob, size_t *len);

/* Low-rank encoding with at most max_rank factors (for tests and
 * measurements; ERR_INVALID when the change is not captured by max_rank
 * factors, i.e. its numerical rank is larger). */
int wdiff_encode_lowrank(const float *old, const float *new_, size_t rows,
                         size_t cols, size_t max_rank, int level,
                         void **blob, size_t *len);

/* Reads and validates a blob's header and checksum (not the payload's
 * decompression). ERR_FORMAT, with the problem, for a truncated or
 * corrupt blob. */
int wdiff_info_get(const void *blob, size_t len, wdiff_info *out);

/* new_ = old with the diff applied. Checks that the blob is intact, that
 * n matches, that old hashes to the blob's old hash (ERR_INVALID when it
 * does not: the tensor is not the one the diff was made from) and that
 * the result hashes to the new hash. new_ may equal old (in place); on
 * any error an in-place tensor is left as it was, a separate new_ holds
 * no meaningful data. */
int wdiff_apply(const void *blob, size_t len, const float *old, float *new_,
                size_t n);

/* old = new_ with the diff taken off: the exact inverse of wdiff_apply,
 * with the same checks in the other direction. old may equal new_. */
int wdiff_revert(const void *blob, size_t len, const float *new_, float *old,
                 size_t n);

/* ---- statistics of a change (for `stamp diff` and commit records) ---- */

typedef struct {
    double delta_norm;   /* ||new - old||_F */
    double old_norm;     /* ||old||_F */
    double rel_norm;     /* delta_norm / old_norm (0 when old_norm is 0) */
    double max_abs;      /* max |new - old| */
    size_t changed;      /* elements whose bits differ */
    size_t rank;         /* numerical rank of new - old as rows x cols */
    double s_max;        /* its largest singular value */
} wdiff_stats;

/* Statistics of new - old viewed as a (rows, cols) row-major matrix. The
 * delta is formed in double (exact for floats within 2^29 of each
 * other's scale). Rank = number of singular values above
 * max(rows, cols) * FLT_EPSILON * s_max (wdiff_rank): the data are
 * floats, so anything below float rounding of the largest direction is
 * noise; found by wdiff_matrix_rank, at a cost that follows the rank.
 * rows * cols must not overflow; a tensor with NaN or Inf in the delta
 * is ERR_NUMERIC. */
int wdiff_stats_compute(const float *old, const float *new_, size_t rows,
                        size_t cols, wdiff_stats *out);

/* The singular values of the (rows, cols) row-major double matrix a in
 * descending order into s (min(rows, cols) values), by LAPACK dgesdd.
 * a is not modified. */
int wdiff_singular_values(const double *a, size_t rows, size_t cols,
                          double *s);

/* The numerical rank of the (rows, cols) row-major matrix a by
 * wdiff_rank's rule, and its largest singular value (to about 1e-10
 * relative), at O(rows cols k) for a change of rank well below k: a
 * sketch of k columns whose residual bounds every singular value, taken
 * only when that makes the count certain (wdiff.c says how), else the
 * full problem. The same rank as the full SVD's (wdiff_naive.h) except
 * for a singular value within rounding of the tolerance. a is not
 * modified. */
int wdiff_matrix_rank(const double *a, size_t rows, size_t cols,
                      size_t *rank, double *s_max);

/* Numerical rank of descending singular values s (k of them) of a
 * (rows, cols) matrix of float data, with the rule above. */
size_t wdiff_rank(const double *s, size_t k, size_t rows, size_t cols);

#endif
