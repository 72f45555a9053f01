/* wdiff: exact, verified weight diffs and the statistics of a change
 * (see wdiff.h for the blob layout).
 *
 * Why a bitwise transform: the change a commit makes to a float tensor is
 * not invertible in float arithmetic (w + d rounds), but the map
 * old_bits -> new_bits is, through XOR or modular subtraction of the
 * 32-bit patterns. Small relative changes leave sign and exponent alone
 * and touch only the low mantissa bits, so the transformed words have
 * long runs of zero high bytes; laying the words out as byte planes puts
 * those runs together, and zstd's entropy stage takes the rest.
 *
 * Assumes a little-endian host (as safetensors does) and IEEE floats. */
#include "wdiff.h"
#include "errors.h"
#include "hash.h"

#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

const wdiff_method wdiff_default_method = {WDIFF_SUB, WDIFF_BYTEPLANES, 3};

static const char wdiff_magic[4] = {'S', 'T', 'W', 'D'};

/* ---- little-endian fields ------------------------------------------- */

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint64_t blob_checksum(const unsigned char *header,
                              const unsigned char *payload, size_t plen)
{
    XXH64_hash_t seed = XXH3_64bits(header, 88);
    return XXH3_64bits_withSeed(payload, plen, seed);
}

/* ---- transforms ------------------------------------------------------ */

static inline uint32_t zigzag(uint32_t d)
{
    return (d << 1) ^ (uint32_t)((int32_t)d >> 31);
}

static inline uint32_t unzigzag(uint32_t z)
{
    return (z >> 1) ^ (uint32_t)(-(int32_t)(z & 1));
}

static inline uint32_t float_bits(const float *p)
{
    uint32_t u;
    memcpy(&u, p, 4);
    return u;
}

/* words[i] = transform(bits of old[i], bits of new[i]) */
static void transform_forward(uint32_t *words, const float *old,
                              const float *new_, size_t n, wdiff_transform t)
{
    if (t == WDIFF_XOR)
        for (size_t i = 0; i < n; i++)
            words[i] = float_bits(old + i) ^ float_bits(new_ + i);
    else
        for (size_t i = 0; i < n; i++)
            words[i] = zigzag(float_bits(new_ + i) - float_bits(old + i));
}

/* dst = src moved by words, forward (old -> new) or backward. */
static void transform_apply(uint32_t *dst, const uint32_t *src,
                            const uint32_t *words, size_t n,
                            wdiff_transform t, int backward)
{
    if (t == WDIFF_XOR) {
        for (size_t i = 0; i < n; i++) dst[i] = src[i] ^ words[i];
    } else if (!backward) {
        for (size_t i = 0; i < n; i++) dst[i] = src[i] + unzigzag(words[i]);
    } else {
        for (size_t i = 0; i < n; i++) dst[i] = src[i] - unzigzag(words[i]);
    }
}

/* ---- layouts --------------------------------------------------------- */

static size_t layout_bytes(wdiff_layout l, size_t n)
{
    if (l == WDIFF_BITPLANES) return 32 * ((n + 7) / 8);
    return 4 * n;
}

static void layout_encode(unsigned char *raw, const uint32_t *w, size_t n,
                          wdiff_layout l)
{
    if (l == WDIFF_PLAIN) {
        memcpy(raw, w, 4 * n);
    } else if (l == WDIFF_BYTEPLANES) {
        for (size_t i = 0; i < n; i++) {
            raw[i] = (unsigned char)(w[i] >> 24);
            raw[n + i] = (unsigned char)(w[i] >> 16);
            raw[2 * n + i] = (unsigned char)(w[i] >> 8);
            raw[3 * n + i] = (unsigned char)w[i];
        }
    } else {
        size_t groups = (n + 7) / 8;
        memset(raw, 0, 32 * groups);
        for (size_t g = 0; g < groups; g++) {
            uint32_t v[8] = {0};
            for (size_t j = 0; j < 8 && 8 * g + j < n; j++) v[j] = w[8 * g + j];
            for (int b = 0; b < 32; b++) {
                unsigned byte = 0;
                for (int j = 0; j < 8; j++)
                    byte |= ((v[j] >> (31 - b)) & 1u) << (7 - j);
                raw[(size_t)b * groups + g] = (unsigned char)byte;
            }
        }
    }
}

static void layout_decode(uint32_t *w, const unsigned char *raw, size_t n,
                          wdiff_layout l)
{
    if (l == WDIFF_PLAIN) {
        memcpy(w, raw, 4 * n);
    } else if (l == WDIFF_BYTEPLANES) {
        for (size_t i = 0; i < n; i++)
            w[i] = (uint32_t)raw[i] << 24 | (uint32_t)raw[n + i] << 16 |
                   (uint32_t)raw[2 * n + i] << 8 | raw[3 * n + i];
    } else {
        size_t groups = (n + 7) / 8;
        for (size_t g = 0; g < groups; g++) {
            uint32_t v[8] = {0};
            for (int b = 0; b < 32; b++) {
                unsigned byte = raw[(size_t)b * groups + g];
                for (int j = 0; j < 8; j++)
                    v[j] |= (uint32_t)((byte >> (7 - j)) & 1u) << (31 - b);
            }
            for (size_t j = 0; j < 8 && 8 * g + j < n; j++) w[8 * g + j] = v[j];
        }
    }
}

/* ---- encode ---------------------------------------------------------- */

int wdiff_encode(const float *old, const float *new_, size_t n, void **blob,
                 size_t *len)
{
    return wdiff_encode_method(old, new_, n, &wdiff_default_method, blob, len);
}

int wdiff_encode_method(const float *old, const float *new_, size_t n,
                        const wdiff_method *m, void **blob, size_t *len)
{
    int rc = 0;
    uint32_t *words = NULL;
    unsigned char *raw = NULL, *out = NULL;
    *blob = NULL;
    *len = 0;
    if (m->transform != WDIFF_XOR && m->transform != WDIFF_SUB)
        return err_set(ERR_INVALID, "unknown diff transform %d", m->transform);
    if (m->layout != WDIFF_PLAIN && m->layout != WDIFF_BYTEPLANES &&
        m->layout != WDIFF_BITPLANES)
        return err_set(ERR_INVALID, "unknown diff layout %d", m->layout);
    if (n > SIZE_MAX / 64)
        return err_set(ERR_INVALID, "tensor of %zu values is too large for "
                       "a diff", n);
    size_t raw_len = layout_bytes(m->layout, n);
    words = malloc(n ? 4 * n : 1);
    raw = malloc(raw_len ? raw_len : 1);
    size_t bound = ZSTD_compressBound(raw_len);
    out = malloc(WDIFF_HEADER_BYTES + bound);
    if (!words || !raw || !out) {
        rc = err_set(ERR_NOMEM, "out of memory encoding a diff of %zu values",
                     n);
        goto fail;
    }
    transform_forward(words, old, new_, n, m->transform);
    layout_encode(raw, words, n, m->layout);
    size_t plen = ZSTD_compress(out + WDIFF_HEADER_BYTES, bound, raw,
                                raw_len, m->level);
    if (ZSTD_isError(plen)) {
        rc = err_set(ERR_INVALID, "zstd compression failed: %s",
                     ZSTD_getErrorName(plen));
        goto fail;
    }
    memcpy(out, wdiff_magic, 4);
    put_u16(out + 4, WDIFF_VERSION);
    out[6] = (unsigned char)m->transform;
    out[7] = (unsigned char)m->layout;
    put_u64(out + 8, n);
    put_u64(out + 16, plen);
    char h[33];
    hash_hex(h, old, 4 * n);
    memcpy(out + 24, h, 32);
    hash_hex(h, new_, 4 * n);
    memcpy(out + 56, h, 32);
    put_u64(out + 88, blob_checksum(out, out + WDIFF_HEADER_BYTES, plen));
    free(words);
    free(raw);
    unsigned char *shrunk = realloc(out, WDIFF_HEADER_BYTES + plen);
    *blob = shrunk ? shrunk : out;
    *len = WDIFF_HEADER_BYTES + plen;
    return 0;
fail:
    free(words);
    free(raw);
    free(out);
    return rc;
}

/* ---- decode ---------------------------------------------------------- */

static int is_hex32(const unsigned char *p)
{
    for (int i = 0; i < 32; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return 0;
    return 1;
}

int wdiff_info_get(const void *blob, size_t len, wdiff_info *out)
{
    const unsigned char *p = blob;
    memset(out, 0, sizeof *out);
    if (!blob || len < WDIFF_HEADER_BYTES)
        return err_set(ERR_FORMAT, "diff blob truncated: %zu bytes, the "
                       "header alone has %d", len, WDIFF_HEADER_BYTES);
    if (memcmp(p, wdiff_magic, 4))
        return err_set(ERR_FORMAT, "diff blob has a bad magic number");
    unsigned version = get_u16(p + 4);
    if (version != WDIFF_VERSION)
        return err_set(ERR_FORMAT, "diff blob has unsupported version %u "
                       "(this stamp reads %d)", version, WDIFF_VERSION);
    uint64_t n = get_u64(p + 8), plen = get_u64(p + 16);
    if (plen != len - WDIFF_HEADER_BYTES)
        return err_set(ERR_FORMAT, "diff blob truncated or padded: payload "
                       "should be %llu bytes, is %zu",
                       (unsigned long long)plen, len - WDIFF_HEADER_BYTES);
    if (get_u64(p + 88) != blob_checksum(p, p + WDIFF_HEADER_BYTES, plen))
        return err_set(ERR_FORMAT, "diff blob is corrupt: checksum mismatch");
    /* Checked after the checksum, so these are encoder bugs, not noise. */
    if (p[6] != WDIFF_XOR && p[6] != WDIFF_SUB)
        return err_set(ERR_FORMAT, "diff blob has unknown transform %u", p[6]);
    if (p[7] != WDIFF_PLAIN && p[7] != WDIFF_BYTEPLANES &&
        p[7] != WDIFF_BITPLANES)
        return err_set(ERR_FORMAT, "diff blob has unknown layout %u", p[7]);
    if (n > SIZE_MAX / 64)
        return err_set(ERR_FORMAT, "diff blob claims %llu values",
                       (unsigned long long)n);
    if (!is_hex32(p + 24) || !is_hex32(p + 56))
        return err_set(ERR_FORMAT, "diff blob has malformed tensor hashes");
    out->version = version;
    out->transform = (wdiff_transform)p[6];
    out->layout = (wdiff_layout)p[7];
    out->n = (size_t)n;
    out->payload_bytes = (size_t)plen;
    memcpy(out->old_hash, p + 24, 32);
    memcpy(out->new_hash, p + 56, 32);
    return 0;
}

/* Validates the blob for a tensor of n values and decompresses its words
 * (malloc'ed, n of them). */
static int decode_words(const void *blob, size_t len, size_t n,
                        wdiff_info *info, uint32_t **words)
{
    int rc = wdiff_info_get(blob, len, info);
    if (rc) return rc;
    if (info->n != n)
        return err_set(ERR_INVALID, "diff is for a tensor of %zu values, "
                       "this one has %zu", info->n, n);
    const unsigned char *payload = (const unsigned char *)blob +
                                   WDIFF_HEADER_BYTES;
    size_t raw_len = layout_bytes(info->layout, n);
    unsigned long long fsize =
        ZSTD_getFrameContentSize(payload, info->payload_bytes);
    if (fsize == ZSTD_CONTENTSIZE_ERROR || fsize == ZSTD_CONTENTSIZE_UNKNOWN ||
        fsize != raw_len)
        return err_set(ERR_FORMAT, "diff blob's compressed frame is not "
                       "%zu bytes of words", raw_len);
    unsigned char *raw = malloc(raw_len ? raw_len : 1);
    uint32_t *w = malloc(n ? 4 * n : 1);
    if (!raw || !w) {
        free(raw);
        free(w);
        return err_set(ERR_NOMEM, "out of memory decoding a diff of %zu "
                       "values", n);
    }
    size_t got = ZSTD_decompress(raw, raw_len, payload, info->payload_bytes);
    if (ZSTD_isError(got) || got != raw_len) {
        free(raw);
        free(w);
        return err_set(ERR_FORMAT, "diff blob's payload does not decompress: "
                       "%s", ZSTD_isError(got) ? ZSTD_getErrorName(got)
                                               : "wrong size");
    }
    layout_decode(w, raw, n, info->layout);
    free(raw);
    *words = w;
    return 0;
}

/* Shared by apply (backward = 0) and revert (backward = 1). */
static int run(const void *blob, size_t len, const float *src, float *dst,
               size_t n, int backward)
{
    wdiff_info info;
    uint32_t *w = NULL;
    int rc = decode_words(blob, len, n, &info, &w);
    if (rc) return rc;
    const char *want_in = backward ? info.new_hash : info.old_hash;
    const char *want_out = backward ? info.old_hash : info.new_hash;
    char h[33];
    hash_hex(h, src, 4 * n);
    if (strcmp(h, want_in)) {
        free(w);
        return err_set(ERR_INVALID, "tensor does not match the diff: its hash "
                       "is %s, the diff's %s tensor hashes to %s", h,
                       backward ? "new" : "old", want_in);
    }
    /* Bit patterns through memcpy-compatible aliasing: float and uint32_t
     * buffers are both plain 4-byte words; work on a uint32_t copy to stay
     * within strict aliasing. */
    uint32_t *bits = malloc(n ? 4 * n : 1);
    if (!bits) {
        free(w);
        return err_set(ERR_NOMEM, "out of memory applying a diff");
    }
    memcpy(bits, src, 4 * n);
    transform_apply(bits, bits, w, n, info.transform, backward);
    free(w);
    hash_hex(h, bits, 4 * n);
    if (strcmp(h, want_out)) {
        free(bits);
        return err_set(ERR_FORMAT, "diff produced a tensor hashing to %s, "
                       "not the recorded %s", h, want_out);
    }
    memcpy(dst, bits, 4 * n);
    free(bits);
    return 0;
}

int wdiff_apply(const void *blob, size_t len, const float *old, float *new_,
                size_t n)
{
    return run(blob, len, old, new_, n, 0);
}

int wdiff_revert(const void *blob, size_t len, const float *new_, float *old,
                 size_t n)
{
    return run(blob, len, new_, old, n, 1);
}

/* ---- statistics ------------------------------------------------------ */

size_t wdiff_rank(const double *s, size_t k, size_t rows, size_t cols)
{
    if (!k || !(s[0] > 0)) return 0;
    double tol = (double)(rows > cols ? rows : cols) * FLT_EPSILON * s[0];
    size_t r = 0;
    while (r < k && s[r] > tol) r++;
    return r;
}

int wdiff_singular_values(const double *a, size_t rows, size_t cols,
                          double *s)
{
    if (!rows || !cols) return 0;
    if (rows > (size_t)INT32_MAX || cols > (size_t)INT32_MAX ||
        rows > SIZE_MAX / sizeof(double) / cols)
        return err_set(ERR_INVALID, "matrix %zu x %zu is too large for an "
                       "svd", rows, cols);
    double *copy = malloc(rows * cols * sizeof *copy);
    if (!copy)
        return err_set(ERR_NOMEM, "out of memory for a %zu x %zu svd", rows,
                       cols);
    memcpy(copy, a, rows * cols * sizeof *copy);
    /* Row-major (rows, cols) is column-major (cols, rows): the transpose,
     * which has the same singular values, with no copy by LAPACKE. */
    double dummy = 0;
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', (lapack_int)cols,
                                     (lapack_int)rows, copy, (lapack_int)cols,
                                     s, &dummy, 1, &dummy, 1);
    free(copy);
    if (info > 0)
        return err_set(ERR_NUMERIC, "svd of a %zu x %zu matrix did not "
                       "converge", rows, cols);
    if (info < 0)
        return err_set(ERR_INVALID, "svd argument %d is invalid", (int)-info);
    return 0;
}

static int cmp_desc(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a < b) - (a > b);
}

int wdiff_singular_values_naive(const double *a, size_t rows, size_t cols,
                                double *s)
{
    /* Vectors u_j (j < k) of length m: the columns of a, or of its
     * transpose when it is wide, so that k = min(rows, cols). */
    size_t k = rows < cols ? rows : cols, m = rows < cols ? cols : rows;
    if (!k) return 0;
    double *u = malloc(k * m * sizeof *u);
    if (!u) return err_set(ERR_NOMEM, "out of memory for a jacobi svd");
    for (size_t j = 0; j < k; j++)
        for (size_t i = 0; i < m; i++)
            u[j * m + i] = rows >= cols ? a[i * cols + j] : a[j * cols + i];
    for (int sweep = 0; sweep < 100; sweep++) {
        int rotated = 0;
        for (size_t p = 0; p + 1 < k; p++) {
            for (size_t q = p + 1; q < k; q++) {
                double *up = u + p * m, *uq = u + q * m;
                double al = 0, be = 0, ga = 0;
                for (size_t i = 0; i < m; i++) {
                    al += up[i] * up[i];
                    be += uq[i] * uq[i];
                    ga += up[i] * uq[i];
                }
                if (al == 0 || be == 0 || fabs(ga) <= 1e-15 * sqrt(al * be))
                    continue;
                rotated = 1;
                double zeta = (be - al) / (2 * ga);
                double t = (zeta >= 0 ? 1.0 : -1.0) /
                           (fabs(zeta) + sqrt(1 + zeta * zeta));
                double c = 1 / sqrt(1 + t * t), sn = c * t;
                for (size_t i = 0; i < m; i++) {
                    double x = up[i], y = uq[i];
                    up[i] = c * x - sn * y;
                    uq[i] = sn * x + c * y;
                }
            }
        }
        if (!rotated) break;
    }
    for (size_t j = 0; j < k; j++) {
        double ss = 0;
        for (size_t i = 0; i < m; i++) ss += u[j * m + i] * u[j * m + i];
        s[j] = sqrt(ss);
    }
    free(u);
    qsort(s, k, sizeof *s, cmp_desc);
    return 0;
}

int wdiff_stats_compute(const float *old, const float *new_, size_t rows,
                        size_t cols, wdiff_stats *out)
{
    memset(out, 0, sizeof *out);
    if (rows && cols > SIZE_MAX / sizeof(double) / rows)
        return err_set(ERR_INVALID, "tensor %zu x %zu is too large", rows,
                       cols);
    size_t n = rows * cols, k = rows < cols ? rows : cols;
    double *d = malloc((n ? n : 1) * sizeof *d);
    double *s = malloc((k ? k : 1) * sizeof *s);
    if (!d || !s) {
        free(d);
        free(s);
        return err_set(ERR_NOMEM, "out of memory for the statistics of a "
                       "%zu x %zu change", rows, cols);
    }
    double dd = 0, oo = 0, mx = 0;
    size_t changed = 0;
    for (size_t i = 0; i < n; i++) {
        d[i] = (double)new_[i] - (double)old[i];
        dd += d[i] * d[i];
        oo += (double)old[i] * old[i];
        if (fabs(d[i]) > mx) mx = fabs(d[i]);
        changed += memcmp(&old[i], &new_[i], sizeof(float)) != 0;
    }
    int rc = 0;
    if (!isfinite(dd) || !isfinite(oo)) {
        rc = err_set(ERR_NUMERIC, "change of a %zu x %zu tensor is not "
                     "finite", rows, cols);
        goto out;
    }
    out->delta_norm = sqrt(dd);
    out->old_norm = sqrt(oo);
    out->rel_norm = oo > 0 ? out->delta_norm / out->old_norm : 0;
    out->max_abs = mx;
    out->changed = changed;
    if (dd > 0) {
        rc = wdiff_singular_values(d, rows, cols, s);
        if (rc) goto out;
        out->s_max = s[0];
        out->rank = wdiff_rank(s, k, rows, cols);
    }
out:
    free(d);
    free(s);
    return rc;
}
