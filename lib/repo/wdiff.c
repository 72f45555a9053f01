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
#include "repo/wdiff.h"
#include "base/errors.h"
#include "base/hash.h"
#include "base/splitmix.h"
#include "base/threads.h"
#include "repo/wdiff_naive.h"

#include <cblas.h>
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

/* Writes the header of a blob whose payload (plen bytes) is in place. */
static void seal(unsigned char *out, wdiff_transform t, wdiff_layout l,
                 size_t n, size_t plen, const float *old, const float *new_)
{
    char h[33];
    memcpy(out, wdiff_magic, 4);
    put_u16(out + 4, WDIFF_VERSION);
    out[6] = (unsigned char)t;
    out[7] = (unsigned char)l;
    put_u64(out + 8, n);
    put_u64(out + 16, plen);
    hash_hex(h, old, 4 * n);
    memcpy(out + 24, h, 32);
    hash_hex(h, new_, 4 * n);
    memcpy(out + 56, h, 32);
    put_u64(out + 88, blob_checksum(out, out + WDIFF_HEADER_BYTES, plen));
}

/* Compresses raw into a new blob (header sealed). */
static int pack(const unsigned char *raw, size_t raw_len, int level,
                wdiff_transform t, wdiff_layout l, size_t n, const float *old,
                const float *new_, void **blob, size_t *len)
{
    size_t bound = ZSTD_compressBound(raw_len);
    unsigned char *out = malloc(WDIFF_HEADER_BYTES + bound);
    if (!out)
        return err_set(ERR_NOMEM, "out of memory encoding a diff of %zu "
                       "values", n);
    size_t plen = ZSTD_compress(out + WDIFF_HEADER_BYTES, bound, raw, raw_len,
                                level);
    if (ZSTD_isError(plen)) {
        free(out);
        return err_set(ERR_INVALID, "zstd compression failed: %s",
                       ZSTD_getErrorName(plen));
    }
    seal(out, t, l, n, plen, old, new_);
    unsigned char *shrunk = realloc(out, WDIFF_HEADER_BYTES + plen);
    *blob = shrunk ? shrunk : out;
    *len = WDIFF_HEADER_BYTES + plen;
    return 0;
}

int wdiff_encode(const float *old, const float *new_, size_t n, void **blob,
                 size_t *len)
{
    return wdiff_encode_method(old, new_, n, &wdiff_default_method, blob, len);
}

int wdiff_encode_method(const float *old, const float *new_, size_t n,
                        const wdiff_method *m, void **blob, size_t *len)
{
    *blob = NULL;
    *len = 0;
    if (m->transform != WDIFF_XOR && m->transform != WDIFF_SUB)
        return err_set(ERR_INVALID, "unknown diff transform %d%s",
                       m->transform, m->transform == WDIFF_LOWRANK
                           ? " (low-rank diffs need a shape)" : "");
    if (m->layout != WDIFF_PLAIN && m->layout != WDIFF_BYTEPLANES &&
        m->layout != WDIFF_BITPLANES)
        return err_set(ERR_INVALID, "unknown diff layout %d", m->layout);
    if (n > SIZE_MAX / 64)
        return err_set(ERR_INVALID, "tensor of %zu values is too large for "
                       "a diff", n);
    size_t raw_len = layout_bytes(m->layout, n);
    uint32_t *words = malloc(n ? 4 * n : 1);
    unsigned char *raw = malloc(raw_len ? raw_len : 1);
    int rc;
    if (!words || !raw) {
        rc = err_set(ERR_NOMEM, "out of memory encoding a diff of %zu values",
                     n);
    } else {
        transform_forward(words, old, new_, n, m->transform);
        layout_encode(raw, words, n, m->layout);
        rc = pack(raw, raw_len, m->level, m->transform, m->layout, n, old,
                  new_, blob, len);
    }
    free(words);
    free(raw);
    return rc;
}

/* ---- low-rank diffs -------------------------------------------------- */

/* Low-rank residuals live on an integer grid: for a weight whose old and
 * new exponents are eo and en, both values are exact multiples of
 * u = 2^(min(max(eo,1), max(en,1)) - 150), the smaller of their ulps, so
 * new - old = D u with D an exact integer (|D| < 2^55 when the exponents
 * are at most 30 apart). The factors predict D as Q = round(P / u), or 0
 * where |P| is within the factors' own float rounding (2^-18 of
 * S = sum |A_ik B_jk|); the residual D - Q is stored. u, P and S depend
 * only on the two exponents (both known from either side through the
 * stored XOR of the top 9 bits) and the factors, so apply and revert
 * agree exactly. Escapes: a weight with Inf/NaN or exponents more than 30
 * apart stores the XOR of its two bit patterns as its word; one whose
 * residual does not fit 31 bits stores the marker 0xffffffff and its XOR
 * in the exception list. */
#define LR_MAX_GAP 30
#define LR_MARK 0xffffffffu

static inline int lr_e1(uint32_t bits)  /* max(exponent, 1) */
{
    int e = (int)((bits >> 23) & 0xffu);
    return e ? e : 1;
}

static inline int lr_escape(uint32_t old_top, uint32_t new_top)
{
    int eo = (int)(old_top & 0xffu), en = (int)(new_top & 0xffu);
    int go = eo ? eo : 1, gn = en ? en : 1;
    return eo == 0xff || en == 0xff || go - gn > LR_MAX_GAP ||
           gn - go > LR_MAX_GAP;
}

/* The value of bits on the grid of exponent emin (exact, |.| < 2^55). */
static inline int64_t lr_value(uint32_t bits, int emin)
{
    int64_t m = bits & 0x7fffffu;
    if (bits & 0x7f800000u) m |= 0x800000;
    m <<= lr_e1(bits) - emin;
    return (bits >> 31) ? -m : m;
}

/* The float with sign/exponent field top whose value on the grid of emin
 * is v; returns 0 when no such float exists (a corrupt blob). */
static inline int lr_bits(int64_t v, uint32_t top, int emin, uint32_t *out)
{
    int e = (int)(top & 0xffu), sh = (e ? e : 1) - emin;
    uint32_t sign = top >> 8;
    if ((v < 0 && !sign) || (v > 0 && sign)) return 0;
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (a & ((UINT64_C(1) << sh) - 1)) return 0;
    a >>= sh;
    if (e ? (a < 0x800000u || a >= 0x1000000u) : a >= 0x800000u) return 0;
    *out = sign << 31 | (uint32_t)e << 23 | ((uint32_t)a & 0x7fffffu);
    return 1;
}

/* The prediction Q of weight (i, j) on the grid of emin: P = A_i . B_j
 * summed in double in index order (each product of two floats is exact
 * in double, so fused multiply-adds cannot change the sum), rounded to
 * the grid, clamped to +-2^60; 0 within the factors' noise. */
static inline int64_t lr_q(const float *a, const float *b, size_t k, int emin)
{
    double p = 0, s = 0;
    for (size_t t = 0; t < k; t++) {
        double x = (double)a[t] * (double)b[t];
        p += x;
        s += fabs(x);
    }
    if (!(fabs(p) > ldexp(s, -18))) return 0;
    double q = round(ldexp(p, 150 - emin));
    if (q > 1152921504606846976.0) q = 1152921504606846976.0;
    if (q < -1152921504606846976.0) q = -1152921504606846976.0;
    return (int64_t)q;
}

typedef struct {
    size_t rows, cols, k, n_exc;
    const float *a, *b;            /* (rows, k), (cols, k) */
    const unsigned char *e_hi, *e_lo;
    const unsigned char *r[4];     /* residual byte planes, high first */
    const unsigned char *exc;      /* n_exc x (u32 index, u32 xor) */
} lr_view;

static size_t lr_raw_bytes(size_t rows, size_t cols, size_t k, size_t n_exc)
{
    return 16 + 4 * k * (rows + cols) + 6 * rows * cols + 8 * n_exc;
}

/* Reads the view of a decompressed low-rank payload. */
static int lr_parse(const unsigned char *raw, size_t raw_len, size_t n,
                    lr_view *v)
{
    if (raw_len < 16)
        return err_set(ERR_FORMAT, "low-rank diff payload too short");
    uint32_t r, c, k, e;
    memcpy(&r, raw, 4);
    memcpy(&c, raw + 4, 4);
    memcpy(&k, raw + 8, 4);
    memcpy(&e, raw + 12, 4);
    if ((size_t)r * c != n || k > (r < c ? r : c) || e > n ||
        lr_raw_bytes(r, c, k, e) != raw_len)
        return err_set(ERR_FORMAT, "low-rank diff has an inconsistent shape "
                       "(%u x %u, rank %u, %u exceptions, for %zu values)",
                       r, c, k, e, n);
    v->rows = r;
    v->cols = c;
    v->k = k;
    v->n_exc = e;
    /* The payload buffer is malloc'ed; offset 16 keeps the floats
     * aligned. */
    v->a = (const float *)(const void *)(raw + 16);
    v->b = v->a + (size_t)r * k;
    const unsigned char *p = (const unsigned char *)(v->b + (size_t)c * k);
    v->e_hi = p;
    v->e_lo = p + n;
    for (int i = 0; i < 4; i++) v->r[i] = p + (2 + i) * n;
    v->exc = p + 6 * n;
    return 0;
}

static inline uint32_t lr_word(const lr_view *v, size_t x)
{
    return (uint32_t)v->r[0][x] << 24 | (uint32_t)v->r[1][x] << 16 |
           (uint32_t)v->r[2][x] << 8 | v->r[3][x];
}

/* bits moved across the diff in place (backward: revert). Returns the
 * number of weights that came out inconsistent (0 for an intact blob;
 * the caller's hash check has the final word). */
static size_t lr_run(const lr_view *v, uint32_t *bits, int backward)
{
    size_t bad = 0, cols = v->cols, k = v->k;
    long rows = (long)v->rows;
#pragma omp parallel for schedule(static) reduction(+ : bad) \
    if (v->rows * v->cols * (k + 1) > (1u << 20))
    for (long i = 0; i < rows; i++) {
        const float *ai = v->a + (size_t)i * k;
        for (size_t j = 0; j < cols; j++) {
            size_t x = (size_t)i * cols + j;
            uint32_t e9 = (uint32_t)v->e_hi[x] << 1 | v->e_lo[x];
            uint32_t z = lr_word(v, x), s = bits[x];
            uint32_t top = s >> 23, other = top ^ e9, out = s;
            if (lr_escape(top, other)) {
                out = s ^ z;
            } else if (z != LR_MARK) { /* marked: the exception list */
                int ek = lr_e1(s), eu = (int)(other & 0xffu);
                eu = eu ? eu : 1;
                int emin = ek < eu ? ek : eu;
                int64_t dq = lr_q(ai, v->b + j * k, k, emin) +
                             (int32_t)unzigzag(z);
                int64_t val = lr_value(s, emin) + (backward ? -dq : dq);
                if (!lr_bits(val, other, emin, &out)) bad++;
            }
            bits[x] = out;
        }
    }
    size_t last = 0;
    for (size_t t = 0; t < v->n_exc; t++) {
        uint32_t idx, x;
        memcpy(&idx, v->exc + 8 * t, 4);
        memcpy(&x, v->exc + 8 * t + 4, 4);
        if (idx >= v->rows * cols || (t && idx <= last) ||
            lr_word(v, idx) != LR_MARK ||
            lr_escape(bits[idx] >> 23, (bits[idx] >> 23) ^
                      ((uint32_t)v->e_hi[idx] << 1 | v->e_lo[idx]))) {
            bad++;
            continue;
        }
        bits[idx] ^= x;
        last = idx;
    }
    return bad;
}

static double lr_uniform(uint64_t *state)
{
    double u = ((splitmix_next(state) >> 11) + 0.5) / 9007199254740992.0;
    return u - 0.5; /* uniform test vectors suffice for a range finder */
}

/* Factors A (rows, r), B (cols, r), float, with A B^T close to d (rows,
 * cols): a randomized range finder with kk = max_rank + 8 columns, then
 * the SVD of the small projected matrix. ERR_INVALID when the numerical
 * rank exceeds max_rank. */
static int lr_factors(const double *d, size_t rows, size_t cols,
                      size_t max_rank, float **a_out, float **b_out,
                      size_t *rank)
{
    size_t mn = rows < cols ? rows : cols;
    size_t kk = max_rank + 8 < mn ? max_rank + 8 : mn;
    double *om = malloc(cols * kk * sizeof *om);
    double *y = malloc(rows * kk * sizeof *y);
    double *tau = malloc(kk * sizeof *tau);
    double *bt = malloc(kk * cols * sizeof *bt);
    double *s = malloc(kk * sizeof *s);
    double *u = malloc(kk * kk * sizeof *u);
    double *vt = malloc(kk * cols * sizeof *vt);
    float *a = NULL, *b = NULL;
    int rc = 0;
    if (!om || !y || !tau || !bt || !s || !u || !vt) {
        rc = err_set(ERR_NOMEM, "out of memory factoring a change");
        goto out;
    }
    uint64_t rng = 0x5eed;
    for (size_t i = 0; i < cols * kk; i++) om[i] = lr_uniform(&rng);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)kk,
                (int)cols, 1.0, d, (int)cols, om, (int)kk, 0.0, y, (int)kk);
    /* one power iteration, Y = D D^T Q, sharpens the range against the
     * float rounding noise of the change; Q = orth(Y) each time */
    for (int pass = 0; pass < 2; pass++) {
        if (LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (int)rows, (int)kk, y, (int)kk,
                           tau) ||
            LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (int)rows, (int)kk, (int)kk, y,
                           (int)kk, tau)) {
            rc = err_set(ERR_NUMERIC, "qr of a %zu x %zu sketch failed", rows,
                         kk);
            goto out;
        }
        if (pass) break;
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cols,
                    (int)kk, (int)rows, 1.0, d, (int)cols, y, (int)kk, 0.0,
                    om, (int)kk);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows,
                    (int)kk, (int)cols, 1.0, d, (int)cols, om, (int)kk, 0.0, y,
                    (int)kk);
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kk, (int)cols,
                (int)rows, 1.0, y, (int)kk, d, (int)cols, 0.0, bt, (int)cols);
    if (LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (int)kk, (int)cols, bt,
                       (int)cols, s, u, (int)kk, vt, (int)cols)) {
        rc = err_set(ERR_NUMERIC, "svd of a %zu x %zu sketch failed", kk,
                     cols);
        goto out;
    }
    size_t r = wdiff_rank(s, kk, rows, cols);
    if (r > max_rank || (r == kk && kk < mn)) {
        rc = err_set(ERR_INVALID, "the change has rank above %zu", max_rank);
        goto out;
    }
    a = malloc((r ? rows * r : 1) * sizeof *a);
    b = malloc((r ? cols * r : 1) * sizeof *b);
    if (!a || !b) {
        rc = err_set(ERR_NOMEM, "out of memory factoring a change");
        goto out;
    }
    /* A = Q U sqrt(S), B = V sqrt(S) */
    for (size_t i = 0; i < rows; i++)
        for (size_t t = 0; t < r; t++) {
            double acc = 0;
            for (size_t q = 0; q < kk; q++) acc += y[i * kk + q] * u[q * kk + t];
            a[i * r + t] = (float)(acc * sqrt(s[t]));
        }
    for (size_t j = 0; j < cols; j++)
        for (size_t t = 0; t < r; t++)
            b[j * r + t] = (float)(vt[t * cols + j] * sqrt(s[t]));
    *a_out = a;
    *b_out = b;
    *rank = r;
    a = b = NULL;
out:
    free(om);
    free(y);
    free(tau);
    free(bt);
    free(s);
    free(u);
    free(vt);
    free(a);
    free(b);
    return rc;
}

int wdiff_encode_lowrank(const float *old, const float *new_, size_t rows,
                         size_t cols, size_t max_rank, int level,
                         void **blob, size_t *len)
{
    *blob = NULL;
    *len = 0;
    if (!rows || !cols || rows > UINT32_MAX || cols > UINT32_MAX ||
        rows > SIZE_MAX / 64 / cols || rows * cols > UINT32_MAX ||
        max_rank == 0)
        return err_set(ERR_INVALID, "no low-rank diff for a %zu x %zu tensor",
                       rows, cols);
    size_t n = rows * cols, k = 0, n_exc = 0;
    double *d = malloc(n * sizeof *d);
    float *a = NULL, *b = NULL;
    unsigned char *raw = NULL;
    int rc = 0;
    if (!d) return err_set(ERR_NOMEM, "out of memory factoring a change");
    for (size_t i = 0; i < n; i++) {
        /* escapes (Inf, NaN, far exponents) are not the factors' job */
        d[i] = (double)new_[i] - (double)old[i];
        if (lr_escape(float_bits(old + i) >> 23, float_bits(new_ + i) >> 23))
            d[i] = 0;
    }
    /* small sketches first: most changes have a small rank */
    for (size_t try_rank = max_rank < 32 ? max_rank : 32;;) {
        rc = lr_factors(d, rows, cols, try_rank, &a, &b, &k);
        if (rc != ERR_INVALID || try_rank == max_rank) break;
        try_rank = 4 * try_rank < max_rank ? 4 * try_rank : max_rank;
    }
    free(d);
    if (rc) return rc;
    /* residual words first (exceptions counted), then the list */
    uint32_t *z = malloc(n * sizeof *z);
    if (!z) {
        rc = err_set(ERR_NOMEM, "out of memory encoding a diff");
        goto out;
    }
    long lrows = (long)rows;
#pragma omp parallel for schedule(static) reduction(+ : n_exc) \
    if (n * (k + 1) > (1u << 20))
    for (long i = 0; i < lrows; i++) {
        for (size_t j = 0; j < cols; j++) {
            size_t x = (size_t)i * cols + j;
            uint32_t ob = float_bits(old + x), nb = float_bits(new_ + x);
            if (lr_escape(ob >> 23, nb >> 23)) {
                z[x] = ob ^ nb;
                continue;
            }
            int emin = lr_e1(ob) < lr_e1(nb) ? lr_e1(ob) : lr_e1(nb);
            int64_t r = lr_value(nb, emin) - lr_value(ob, emin) -
                        lr_q(a + (size_t)i * k, b + j * k, k, emin);
            if (r > INT32_MAX || r < -INT32_MAX) {
                z[x] = LR_MARK;
                n_exc++;
            } else {
                z[x] = zigzag((uint32_t)(int32_t)r);
            }
        }
    }
    size_t raw_len = lr_raw_bytes(rows, cols, k, n_exc);
    raw = malloc(raw_len);
    if (!raw) {
        free(z);
        rc = err_set(ERR_NOMEM, "out of memory encoding a diff");
        goto out;
    }
    uint32_t hdr[4] = {(uint32_t)rows, (uint32_t)cols, (uint32_t)k,
                       (uint32_t)n_exc};
    memcpy(raw, hdr, 16);
    memcpy(raw + 16, a, rows * k * sizeof *a);
    memcpy(raw + 16 + rows * k * 4, b, cols * k * sizeof *b);
    unsigned char *p = raw + 16 + 4 * k * (rows + cols), *exc = p + 6 * n;
    for (size_t x = 0, t = 0; x < n; x++) {
        uint32_t ob = float_bits(old + x), nb = float_bits(new_ + x);
        uint32_t e9 = (ob ^ nb) >> 23;
        p[x] = (unsigned char)(e9 >> 1);
        p[n + x] = (unsigned char)(e9 & 1);
        p[2 * n + x] = (unsigned char)(z[x] >> 24);
        p[3 * n + x] = (unsigned char)(z[x] >> 16);
        p[4 * n + x] = (unsigned char)(z[x] >> 8);
        p[5 * n + x] = (unsigned char)z[x];
        if (z[x] == LR_MARK && !lr_escape(ob >> 23, nb >> 23)) {
            uint32_t pair[2] = {(uint32_t)x, ob ^ nb};
            memcpy(exc + 8 * t++, pair, 8);
        }
    }
    free(z);
    rc = pack(raw, raw_len, level, WDIFF_LOWRANK, WDIFF_BYTEPLANES, n, old,
              new_, blob, len);
out:
    free(raw);
    free(a);
    free(b);
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
    if (p[6] != WDIFF_XOR && p[6] != WDIFF_SUB && p[6] != WDIFF_LOWRANK)
        return err_set(ERR_FORMAT, "diff blob has unknown transform %u", p[6]);
    if ((p[7] != WDIFF_PLAIN && p[7] != WDIFF_BYTEPLANES &&
         p[7] != WDIFF_BITPLANES) ||
        (p[6] == WDIFF_LOWRANK && p[7] != WDIFF_BYTEPLANES))
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

/* Validates the blob for a tensor of n values and decompresses its
 * payload (*raw malloc'ed, *raw_len bytes). */
static int decompress(const void *blob, size_t len, size_t n,
                      wdiff_info *info, unsigned char **raw, size_t *raw_len)
{
    int rc = wdiff_info_get(blob, len, info);
    if (rc) return rc;
    if (info->n != n)
        return err_set(ERR_INVALID, "diff is for a tensor of %zu values, "
                       "this one has %zu", info->n, n);
    const unsigned char *payload = (const unsigned char *)blob +
                                   WDIFF_HEADER_BYTES;
    unsigned long long fsize =
        ZSTD_getFrameContentSize(payload, info->payload_bytes);
    int ok;
    if (info->transform == WDIFF_LOWRANK) /* factors <= 4n, list <= 8n */
        ok = fsize >= 16 + 6 * (unsigned long long)n &&
             fsize <= 16 + 18 * (unsigned long long)n + 8;
    else
        ok = fsize == layout_bytes(info->layout, n);
    if (fsize == ZSTD_CONTENTSIZE_ERROR || fsize == ZSTD_CONTENTSIZE_UNKNOWN ||
        !ok)
        return err_set(ERR_FORMAT, "diff blob's compressed frame has the "
                       "wrong size for %zu values", n);
    unsigned char *r = malloc(fsize ? (size_t)fsize : 1);
    if (!r)
        return err_set(ERR_NOMEM, "out of memory decoding a diff of %zu "
                       "values", n);
    size_t got = ZSTD_decompress(r, (size_t)fsize, payload,
                                 info->payload_bytes);
    if (ZSTD_isError(got) || got != fsize) {
        free(r);
        return err_set(ERR_FORMAT, "diff blob's payload does not decompress: "
                       "%s", ZSTD_isError(got) ? ZSTD_getErrorName(got)
                                               : "wrong size");
    }
    *raw = r;
    *raw_len = (size_t)fsize;
    return 0;
}

/* Shared by apply (backward = 0) and revert (backward = 1). */
static int run(const void *blob, size_t len, const float *src, float *dst,
               size_t n, int backward)
{
    wdiff_info info;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    uint32_t *w = NULL, *bits = NULL;
    char h[33];
    int rc = decompress(blob, len, n, &info, &raw, &raw_len);
    if (rc) return rc;
    const char *want_in = backward ? info.new_hash : info.old_hash;
    const char *want_out = backward ? info.old_hash : info.new_hash;
    hash_hex(h, src, 4 * n);
    if (strcmp(h, want_in)) {
        rc = err_set(ERR_INVALID, "tensor does not match the diff: its hash "
                     "is %s, the diff's %s tensor hashes to %s", h,
                     backward ? "new" : "old", want_in);
        goto out;
    }
    /* Work on a uint32_t copy: the bit patterns, within strict aliasing. */
    bits = malloc(n ? 4 * n : 1);
    if (!bits) {
        rc = err_set(ERR_NOMEM, "out of memory applying a diff");
        goto out;
    }
    memcpy(bits, src, 4 * n);
    if (info.transform == WDIFF_LOWRANK) {
        lr_view v;
        if ((rc = lr_parse(raw, raw_len, n, &v))) goto out;
        lr_run(&v, bits, backward);
    } else {
        w = malloc(n ? 4 * n : 1);
        if (!w) {
            rc = err_set(ERR_NOMEM, "out of memory applying a diff");
            goto out;
        }
        layout_decode(w, raw, n, info.layout);
        transform_apply(bits, bits, w, n, info.transform, backward);
    }
    hash_hex(h, bits, 4 * n);
    if (strcmp(h, want_out)) {
        rc = err_set(ERR_FORMAT, "diff produced a tensor hashing to %s, not "
                     "the recorded %s", h, want_out);
        goto out;
    }
    memcpy(dst, bits, 4 * n);
out:
    free(raw);
    free(w);
    free(bits);
    return rc;
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

/* Decodes a fresh blob both ways against the tensors it was made from. */
static int self_check(const void *blob, size_t len, const float *old,
                      const float *new_, size_t n)
{
    float *t = malloc(n ? 4 * n : 1);
    if (!t) return err_set(ERR_NOMEM, "out of memory checking a diff");
    int rc = wdiff_apply(blob, len, old, t, n);
    if (!rc && memcmp(t, new_, 4 * n)) rc = ERR_FORMAT;
    if (!rc) rc = wdiff_revert(blob, len, new_, t, n);
    if (!rc && memcmp(t, old, 4 * n)) rc = ERR_FORMAT;
    free(t);
    return rc;
}

int wdiff_encode_matrix(const float *old, const float *new_, size_t rows,
                        size_t cols, void **blob, size_t *len)
{
    size_t n = rows * cols;
    void *lr = NULL, *plain = NULL;
    size_t lr_len = 0, plain_len = 0;
    int rc = wdiff_encode(old, new_, n, &plain, &plain_len);
    if (rc) return rc;
    /* factors worth at most half the raw words; rank 256 at most */
    size_t max_rank = rows && cols ? n / (2 * (rows + cols)) : 0;
    if (max_rank > 256) max_rank = 256;
    if (rows >= 2 && cols >= 2 && max_rank >= 1 && n >= 1024) {
        /* the factors' LAPACK bits depend on OpenBLAS's thread count: never
         * the automatic one, so that the stored bytes do not (threads.h) */
        int before = threads_exact_begin();
        int e = wdiff_encode_lowrank(old, new_, rows, cols, max_rank,
                                     wdiff_default_method.level, &lr, &lr_len);
        threads_exact_end(before);
        if (e == ERR_NOMEM) {
            free(plain);
            return e;
        }
        err_clear(); /* a change of high rank: the plain encoding it is */
        if (!e && lr_len < plain_len && !self_check(lr, lr_len, old, new_, n)) {
            free(plain);
            *blob = lr;
            *len = lr_len;
            return 0;
        }
        err_clear();
        free(lr);
    }
    *blob = plain;
    *len = plain_len;
    return 0;
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

/* ---- the rank of a change -------------------------------------------
 *
 * A commit's change has rank at most its keys times its rounds, far below
 * the matrix's sides, plus rounding. The rank is found from a sketch of
 * k columns (k = 16, 64, 256, ... up to half the smaller side): M the
 * tall view of a (a, or its transpose when wide), Q an orthonormal basis
 * of M Omega (Omega a fixed pseudo-random (n, k)), B = Q^T M (k, n) and
 * the residual R = M - Q B. Since M^T M = B^T B + R^T R, each singular
 * value of M lies in [s_i(B), sqrt(s_i(B)^2 + |R|^2)], and those past k
 * below |R| (|R| <= |R|_F, computed exactly). When each value is then
 * surely above or surely not above wdiff_rank's tolerance, the rank is
 * certain: the same count as the full SVD's, at O(rows cols k). Else a
 * larger sketch, or (when the change is not low-rank: the residual keeps
 * most of the energy or shrinks little) the full problem: the SVD for a
 * small side, the eigenvalues of the Gram matrix of the smaller side for
 * a large one (a quarter of an SVD's work; the tolerance squared is far
 * above double rounding of the squares). */

enum { RANK_SKETCH_FIRST = 16, RANK_SVD_SIDE = 256, RANK_BLOCK = 256 };

/* Row i of the tall view of a (rows, cols): a's row, or its column. */
static void tall_row(const double *a, size_t rows, size_t cols, int wide,
                     size_t i, double *out)
{
    if (!wide) { memcpy(out, a + i * cols, cols * sizeof *out); return; }
    for (size_t j = 0; j < rows; j++) out[j] = a[j * cols + i];
}

/* B = Q^T M (k, n) and |R|_F^2 = |M - Q B|_F^2 for the (m, k) basis Q. */
static void sketch_project(const double *a, size_t rows, size_t cols,
                           const double *Q, size_t k, double *B,
                           double *scratch, double *resid2)
{
    int wide = rows < cols;
    size_t m = wide ? cols : rows, n = wide ? rows : cols;
    if (!wide)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k,
                    (int)cols, (int)rows, 1.0, Q, (int)k, a, (int)cols, 0.0,
                    B, (int)n);
    else /* Q^T a^T */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)k, (int)rows,
                    (int)cols, 1.0, Q, (int)k, a, (int)cols, 0.0, B, (int)n);
    double r2 = 0;
    for (size_t r0 = 0; r0 < m; r0 += RANK_BLOCK) {
        size_t nb = m - r0 < RANK_BLOCK ? m - r0 : RANK_BLOCK;
        for (size_t i = 0; i < nb; i++)
            tall_row(a, rows, cols, wide, r0 + i, scratch + i * n);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb,
                    (int)n, (int)k, -1.0, Q + r0 * k, (int)k, B, (int)n, 1.0,
                    scratch, (int)n);
        r2 += cblas_ddot((int)(nb * n), scratch, 1, scratch, 1);
    }
    *resid2 = r2;
}

/* One sketch of k columns: *certain when the rank (into *rank, with the
 * largest singular value of B in *s_max) is sure; *resid2 = |R|_F^2. */
static int rank_sketch(const double *a, size_t rows, size_t cols, size_t k,
                       size_t *rank, double *s_max, double *resid2,
                       int *certain)
{
    int wide = rows < cols;
    size_t m = wide ? cols : rows, n = wide ? rows : cols;
    double *om = malloc(n * k * sizeof *om), *Q = malloc(m * k * sizeof *Q);
    double *B = malloc(k * n * sizeof *B), *tau = malloc(k * sizeof *tau);
    double *s = malloc(k * sizeof *s);
    double *scratch = malloc(RANK_BLOCK * n * sizeof *scratch);
    int rc = om && Q && B && tau && s && scratch
        ? 0 : err_set(ERR_NOMEM, "out of memory for a rank sketch");
    uint64_t seed = 0x5ca1ab1eull + k; /* the same sketch every time */
    for (size_t i = 0; !rc && i < n * k; i++)
        om[i] = 2 * splitmix_unit(&seed) - 1;
    if (!rc) {
        if (!wide)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows,
                        (int)k, (int)cols, 1.0, a, (int)cols, om, (int)k, 0.0,
                        Q, (int)k);
        else
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cols,
                        (int)k, (int)rows, 1.0, a, (int)cols, om, (int)k, 0.0,
                        Q, (int)k);
        lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)m,
                                         (lapack_int)k, Q, (lapack_int)k, tau);
        if (!info)
            info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)m,
                                  (lapack_int)k, (lapack_int)k, Q,
                                  (lapack_int)k, tau);
        if (info) rc = err_set(ERR_NUMERIC, "rank sketch: qr failed (%d)",
                               (int)info);
    }
    if (!rc) {
        sketch_project(a, rows, cols, Q, k, B, scratch, resid2);
        rc = wdiff_singular_values(B, k, n, s);
    }
    if (!rc) {
        double c = (double)(rows > cols ? rows : cols) * FLT_EPSILON;
        double e2 = *resid2, lo = c * s[0], hi = c * sqrt(s[0] * s[0] + e2);
        size_t r = 0;
        int sure = s[0] > 0 && (k == n || e2 <= lo * lo);
        for (size_t i = 0; i < k; i++) {
            if (s[i] > hi) r++;
            else if (s[i] * s[i] + e2 > lo * lo) sure = 0;
        }
        *certain = sure;
        *rank = r;
        *s_max = s[0];
    }
    free(om);
    free(Q);
    free(B);
    free(tau);
    free(s);
    free(scratch);
    return rc;
}

/* The full problem through the Gram matrix of the smaller side. */
static int rank_gram(const double *a, size_t rows, size_t cols, size_t *rank,
                     double *s_max)
{
    int wide = rows < cols;
    size_t n = wide ? rows : cols;
    double *G = malloc(n * n * sizeof *G), *w = malloc(n * sizeof *w);
    int rc = G && w ? 0 : err_set(ERR_NOMEM, "out of memory for a %zu x %zu "
                                  "gram matrix", n, n);
    if (!rc) {
        cblas_dsyrk(CblasRowMajor, CblasUpper, wide ? CblasNoTrans : CblasTrans,
                    (int)n, (int)(wide ? cols : rows), 1.0, a, (int)cols, 0.0,
                    G, (int)n);
        lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U',
                                         (lapack_int)n, G, (lapack_int)n, w);
        if (info) rc = err_set(ERR_NUMERIC, "eigenvalues of a %zu x %zu gram "
                               "matrix did not converge", n, n);
    }
    if (!rc) { /* ascending eigenvalues: the singular values descending */
        for (size_t i = 0; i < n; i++) G[i] = sqrt(fmax(w[n - 1 - i], 0));
        *rank = wdiff_rank(G, n, rows, cols);
        *s_max = G[0];
    }
    free(G);
    free(w);
    return rc;
}

int wdiff_matrix_rank_naive(const double *a, size_t rows, size_t cols,
                            size_t *rank, double *s_max)
{
    size_t k = rows < cols ? rows : cols;
    double *s = malloc((k ? k : 1) * sizeof *s);
    if (!s) return err_set(ERR_NOMEM, "out of memory");
    int rc = wdiff_singular_values(a, rows, cols, s);
    *rank = rc || !k ? 0 : wdiff_rank(s, k, rows, cols);
    *s_max = rc || !k ? 0 : s[0];
    free(s);
    return rc;
}

int wdiff_matrix_rank(const double *a, size_t rows, size_t cols,
                      size_t *rank, double *s_max)
{
    size_t n = rows < cols ? rows : cols;
    *rank = 0;
    *s_max = 0;
    if (!n) return 0;
    if (rows > (size_t)INT32_MAX || cols > (size_t)INT32_MAX ||
        rows > SIZE_MAX / sizeof(double) / cols)
        return err_set(ERR_INVALID, "matrix %zu x %zu is too large for its "
                       "rank", rows, cols);
    double energy = cblas_ddot((int)(rows * cols), a, 1, a, 1), last = -1;
    if (!(energy > 0)) return 0;
    for (size_t k = RANK_SKETCH_FIRST; 2 * k <= n; k *= 4) {
        double e2;
        int certain = 0;
        int rc = rank_sketch(a, rows, cols, k, rank, s_max, &e2, &certain);
        if (rc || certain) return rc;
        /* not low-rank at this size: the residual holds most of the
         * change, or a 4x larger sketch took little of it */
        if (e2 > energy / 4 || (last >= 0 && e2 > last / 4)) break;
        last = e2;
    }
    return n <= RANK_SVD_SIDE ? wdiff_matrix_rank_naive(a, rows, cols, rank,
                                                        s_max)
                              : rank_gram(a, rows, cols, rank, s_max);
}

int wdiff_stats_compute(const float *old, const float *new_, size_t rows,
                        size_t cols, wdiff_stats *out)
{
    memset(out, 0, sizeof *out);
    if (rows && cols > SIZE_MAX / sizeof(double) / rows)
        return err_set(ERR_INVALID, "tensor %zu x %zu is too large", rows,
                       cols);
    size_t n = rows * cols;
    double *d = malloc((n ? n : 1) * sizeof *d);
    if (!d)
        return err_set(ERR_NOMEM, "out of memory for the statistics of a "
                       "%zu x %zu change", rows, cols);
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
    if (dd > 0) { /* as in wdiff_encode_matrix: the rank's bits too */
        int before = threads_exact_begin();
        rc = wdiff_matrix_rank(d, rows, cols, &out->rank, &out->s_max);
        threads_exact_end(before);
    }
out:
    free(d);
    return rc;
}
