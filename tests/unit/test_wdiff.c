/* test_wdiff: exact weight diffs (apply/revert bit for bit, in place and
 * not, every transform and layout, odd float values), why subtraction is
 * not enough, rejection of corrupt, truncated and mismatched blobs, the
 * statistics of a change (norms, numerical rank) against naive twins,
 * the rank found by a sketch (or the Gram matrix) against the full SVD on
 * random low-rank, full-rank and graded matrices of every orientation,
 * and the compression ratio of a MEMIT-like low-rank update. */
#include "base/errors.h"
#include "base/hash.h"
#include "base/splitmix.h"
#include "repo/wdiff.h"
#include "repo/wdiff_naive.h"
#include "../harness.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

static uint64_t rng_state = 42;

static uint64_t rng_next(void) { return splitmix_next(&rng_state); }

static double rng_normal(void) { return splitmix_normal(&rng_state); }

static float *random_tensor(size_t n, double sd)
{
    float *w = malloc((n ? n : 1) * sizeof *w);
    for (size_t i = 0; i < n; i++) w[i] = (float)(sd * rng_normal());
    return w;
}

/* new = fl(old + U V^T * scale) with U (rows, r), V (cols, r) gaussian,
 * scaled so that ||delta|| = rel * ||old||. */
static float *low_rank_update(const float *old, size_t rows, size_t cols,
                              size_t r, double rel)
{
    size_t n = rows * cols;
    double *u = malloc(rows * r * sizeof *u), *v = malloc(cols * r * sizeof *v);
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < rows * r; i++) u[i] = rng_normal();
    for (size_t i = 0; i < cols * r; i++) v[i] = rng_normal();
    double dn = 0, on = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            double s = 0;
            for (size_t k = 0; k < r; k++) s += u[i * r + k] * v[j * r + k];
            d[i * cols + j] = s;
            dn += s * s;
            on += (double)old[i * cols + j] * old[i * cols + j];
        }
    double scale = dn > 0 ? rel * sqrt(on / dn) : 0;
    float *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++) w[i] = old[i] + (float)(d[i] * scale);
    free(u);
    free(v);
    free(d);
    return w;
}

static const wdiff_method all_methods[] = {
    {WDIFF_XOR, WDIFF_PLAIN, 1},  {WDIFF_XOR, WDIFF_BYTEPLANES, 3},
    {WDIFF_XOR, WDIFF_BITPLANES, 3}, {WDIFF_SUB, WDIFF_PLAIN, 1},
    {WDIFF_SUB, WDIFF_BYTEPLANES, 3}, {WDIFF_SUB, WDIFF_BITPLANES, 3},
};
#define N_METHODS (sizeof all_methods / sizeof all_methods[0])

/* Encodes old -> new, applies and reverts out of place and in place, and
 * checks every result bit for bit. */
static int round_trip(const float *old, const float *new_, size_t n,
                      const wdiff_method *m)
{
    void *blob = NULL;
    size_t len = 0;
    int ok = 1;
    int rc = m ? wdiff_encode_method(old, new_, n, m, &blob, &len)
               : wdiff_encode(old, new_, n, &blob, &len);
    if (rc) return 0;
    float *a = malloc((n ? n : 1) * sizeof *a);
    ok &= wdiff_apply(blob, len, old, a, n) == 0 && !memcmp(a, new_, 4 * n);
    ok &= wdiff_revert(blob, len, new_, a, n) == 0 && !memcmp(a, old, 4 * n);
    memcpy(a, old, 4 * n);
    ok &= wdiff_apply(blob, len, a, a, n) == 0 && !memcmp(a, new_, 4 * n);
    ok &= wdiff_revert(blob, len, a, a, n) == 0 && !memcmp(a, old, 4 * n);
    free(a);
    free(blob);
    return ok;
}

TEST(apply_and_revert_are_bit_exact_for_every_method)
{
    size_t sizes[] = {0, 1, 7, 8, 9, 1000, 4099};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        float *old = random_tensor(n, 0.02);
        float *new_ = random_tensor(n, 0.02);
        for (size_t i = 0; i < n; i += 3) new_[i] = old[i]; /* some unchanged */
        for (size_t m = 0; m < N_METHODS; m++)
            CHECK_MSG(round_trip(old, new_, n, &all_methods[m]),
                      "n %zu method %zu", n, m);
        CHECK_MSG(round_trip(old, new_, n, NULL), "n %zu default", n);
        free(old);
        free(new_);
    }
}

TEST(odd_float_values_round_trip)
{
    /* NaNs with payloads, infinities, signed zeros, denormals, sign flips,
     * the extremes: only bit patterns matter. */
    uint32_t bits_old[] = {0x7fc00001, 0x7f800000, 0xff800000, 0x00000000,
                           0x80000000, 0x00000001, 0x807fffff, 0x3f800000,
                           0xbf800000, 0x7f7fffff, 0xff7fffff, 0x12345678};
    uint32_t bits_new[] = {0x3f800000, 0xff800000, 0x7fffffff, 0x80000000,
                           0x00000000, 0x80000001, 0x007fffff, 0xbf800000,
                           0x3f800000, 0xff7fffff, 0x7f7fffff, 0xedcba987};
    size_t n = sizeof bits_old / sizeof *bits_old;
    float old[12], new_[12];
    memcpy(old, bits_old, sizeof old);
    memcpy(new_, bits_new, sizeof new_);
    for (size_t m = 0; m < N_METHODS; m++)
        CHECK_MSG(round_trip(old, new_, n, &all_methods[m]), "method %zu", m);
    CHECK(round_trip(new_, old, n, NULL));
}

TEST(subtracting_the_delta_does_not_restore_the_weights)
{
    /* Why diffs are bitwise: a commit computes w1 = fl(w + d) for a float
     * delta d; subtracting d again, fl(w1 - d), misses w for a share of
     * the weights (the rounding of the addition is lost), while the diff
     * restores every one. */
    size_t rows = 256, cols = 64, n = rows * cols;
    float *old = random_tensor(n, 0.02 / sqrt(24));
    float *delta = malloc(n * sizeof *delta), *w1 = malloc(n * sizeof *w1);
    float *back = malloc(n * sizeof *back);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        delta[i] = (float)(0.1 * 0.02 / sqrt(24) * rng_normal());
        volatile float sum = old[i] + delta[i];
        w1[i] = sum;
        volatile float w0 = w1[i] - delta[i];
        wrong += memcmp((const void *)&w0, &old[i], 4) != 0;
    }
    printf("  fl(fl(w+d)-d) != w for %zu of %zu weights (%.2f%%)\n", wrong,
           n, 100.0 * wrong / n);
    CHECK_MSG(wrong > n / 50, "only %zu of %zu weights not restored", wrong,
              n);
    void *blob = NULL;
    size_t len = 0;
    CHECK(wdiff_encode(old, w1, n, &blob, &len) == 0);
    CHECK(wdiff_revert(blob, len, w1, back, n) == 0);
    CHECK(!memcmp(back, old, 4 * n));
    free(blob);
    free(back);
    free(old);
    free(delta);
    free(w1);
}

TEST(header_records_the_tensor_hashes)
{
    size_t n = 500;
    float *old = random_tensor(n, 1), *new_ = random_tensor(n, 1);
    void *blob = NULL;
    size_t len = 0;
    wdiff_info info;
    char h[33];
    CHECK(wdiff_encode(old, new_, n, &blob, &len) == 0);
    CHECK(wdiff_info_get(blob, len, &info) == 0);
    CHECK(info.version == WDIFF_VERSION && info.n == n);
    CHECK(info.payload_bytes + WDIFF_HEADER_BYTES == len);
    hash_hex(h, old, 4 * n);
    CHECK(!strcmp(h, info.old_hash));
    hash_hex(h, new_, 4 * n);
    CHECK(!strcmp(h, info.new_hash));
    free(blob);
    free(old);
    free(new_);
}

/* Rewrites the checksum of a blob whose header was patched (bytes 0..87),
 * as the encoder computes it. */
static void reseal(unsigned char *b, size_t len)
{
    uint64_t c = XXH3_64bits_withSeed(b + WDIFF_HEADER_BYTES,
                                      len - WDIFF_HEADER_BYTES,
                                      XXH3_64bits(b, 88));
    for (int i = 0; i < 8; i++) b[88 + i] = (unsigned char)(c >> (8 * i));
}

TEST(corrupt_and_truncated_blobs_are_rejected)
{
    size_t n = 300;
    float *old = random_tensor(n, 1), *new_ = random_tensor(n, 1);
    float *out = malloc(n * sizeof *out);
    void *blob = NULL;
    size_t len = 0;
    CHECK(wdiff_encode(old, new_, n, &blob, &len) == 0);
    unsigned char *b = malloc(len);
    /* every truncation */
    for (size_t l = 0; l < len; l++) {
        int rc = wdiff_apply(blob, l, old, out, n);
        CHECK_MSG(rc == ERR_FORMAT, "truncated to %zu: rc %d", l, rc);
    }
    /* a byte appended */
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, blob, len);
    longer[len] = 0;
    CHECK(wdiff_apply(longer, len + 1, old, out, n) == ERR_FORMAT);
    free(longer);
    /* every single-byte corruption, two patterns */
    for (size_t i = 0; i < len; i++) {
        for (int pat = 0; pat < 2; pat++) {
            memcpy(b, blob, len);
            b[i] ^= pat ? 0xff : 0x01;
            memcpy(out, old, 4 * n);
            int rc = wdiff_revert(b, len, new_, out, n);
            CHECK_MSG(rc == ERR_FORMAT, "byte %zu ^ %d: rc %d", i, pat, rc);
        }
    }
    CHECK(wdiff_apply(NULL, 0, old, out, n) == ERR_FORMAT);
    /* a newer version is refused by name */
    memcpy(b, blob, len);
    b[4] = 2;
    CHECK(wdiff_apply(b, len, old, out, n) == ERR_FORMAT);
    CHECK(strstr(err_message(ERR_FORMAT), "unsupported version 2") != NULL);
    /* resealed headers: a lying size, unknown transform/layout, bad hex */
    memcpy(b, blob, len);
    b[8] ^= 1; /* n */
    reseal(b, len);
    CHECK(wdiff_apply(b, len, old, out, n) == ERR_INVALID);
    memcpy(b, blob, len);
    b[6] = 9;
    reseal(b, len);
    CHECK(wdiff_apply(b, len, old, out, n) == ERR_FORMAT);
    memcpy(b, blob, len);
    b[7] = 9;
    reseal(b, len);
    CHECK(wdiff_apply(b, len, old, out, n) == ERR_FORMAT);
    memcpy(b, blob, len);
    b[30] = 'Z';
    reseal(b, len);
    CHECK(wdiff_apply(b, len, old, out, n) == ERR_FORMAT);
    free(b);
    free(blob);
    free(old);
    free(new_);
    free(out);
}

TEST(a_sealed_blob_with_the_wrong_payload_is_caught_by_the_hashes)
{
    /* The header says old -> new, the payload encodes old -> other: the
     * checksum is right (resealed), the output hash check refuses it and
     * an in-place tensor stays as it was. */
    size_t n = 200;
    float *old = random_tensor(n, 1), *new_ = random_tensor(n, 1);
    float *other = random_tensor(n, 1), *t = malloc(n * sizeof *t);
    void *good = NULL, *bad = NULL;
    size_t lg = 0, lb = 0;
    CHECK(wdiff_encode(old, new_, n, &good, &lg) == 0);
    CHECK(wdiff_encode(old, other, n, &bad, &lb) == 0);
    unsigned char *b = bad;
    memcpy(b + 56, (unsigned char *)good + 56, 32); /* claim new's hash */
    reseal(b, lb);
    memcpy(t, old, 4 * n);
    CHECK(wdiff_apply(bad, lb, t, t, n) == ERR_FORMAT);
    CHECK(!memcmp(t, old, 4 * n));
    free(good);
    free(bad);
    free(old);
    free(new_);
    free(other);
    free(t);
}

TEST(mismatched_tensors_are_refused_and_left_alone)
{
    size_t n = 128;
    float *old = random_tensor(n, 1), *new_ = random_tensor(n, 1);
    float *t = malloc(n * sizeof *t);
    void *blob = NULL;
    size_t len = 0;
    CHECK(wdiff_encode(old, new_, n, &blob, &len) == 0);
    /* applying to the new tensor, reverting the old one: wrong inputs */
    memcpy(t, new_, 4 * n);
    CHECK(wdiff_apply(blob, len, t, t, n) == ERR_INVALID);
    CHECK(!memcmp(t, new_, 4 * n));
    memcpy(t, old, 4 * n);
    CHECK(wdiff_revert(blob, len, t, t, n) == ERR_INVALID);
    CHECK(!memcmp(t, old, 4 * n));
    /* one bit off */
    memcpy(t, old, 4 * n);
    ((unsigned char *)t)[17] ^= 4;
    CHECK(wdiff_apply(blob, len, t, t, n) == ERR_INVALID);
    /* wrong length */
    CHECK(wdiff_apply(blob, len, old, t, n - 1) == ERR_INVALID);
    /* bad method */
    wdiff_method m = {7, WDIFF_PLAIN, 3};
    void *b2 = NULL;
    size_t l2 = 0;
    CHECK(wdiff_encode_method(old, new_, n, &m, &b2, &l2) == ERR_INVALID);
    CHECK(b2 == NULL);
    free(blob);
    free(old);
    free(new_);
    free(t);
}

static void naive_singular_values_of(const double *a, size_t r, size_t c,
                                     int *ok)
{
    size_t k = r < c ? r : c;
    double *s1 = malloc(k * sizeof *s1), *s2 = malloc(k * sizeof *s2);
    *ok = wdiff_singular_values(a, r, c, s1) == 0 &&
          wdiff_singular_values_naive(a, r, c, s2) == 0;
    for (size_t i = 0; *ok && i < k; i++)
        if (fabs(s1[i] - s2[i]) > 1e-10 * s1[0]) {
            fprintf(stderr, "  s[%zu]: lapack %.17g jacobi %.17g\n", i, s1[i],
                    s2[i]);
            *ok = 0;
        }
    free(s1);
    free(s2);
}

TEST(singular_values_match_the_jacobi_twin)
{
    size_t shapes[][2] = {{1, 1}, {5, 3}, {3, 5}, {40, 17}, {17, 40}, {64, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        size_t r = shapes[s][0], c = shapes[s][1];
        double *a = malloc(r * c * sizeof *a);
        for (size_t i = 0; i < r * c; i++) a[i] = rng_normal();
        int ok = 0;
        naive_singular_values_of(a, r, c, &ok);
        CHECK_MSG(ok, "shape %zu x %zu", r, c);
        free(a);
    }
    /* known values: diag(3, 2, 0) padded */
    double d[12] = {3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}, s[3];
    CHECK(wdiff_singular_values(d, 4, 3, s) == 0);
    CHECK_NEAR(s[0], 3, 1e-12);
    CHECK_NEAR(s[1], 2, 1e-12);
    CHECK_NEAR(s[2], 0, 1e-12);
    CHECK(wdiff_rank(s, 3, 4, 3) == 2);
}

TEST(statistics_of_a_low_rank_update)
{
    size_t rows = 192, cols = 48, n = rows * cols;
    size_t ranks[] = {1, 3, 10};
    for (size_t t = 0; t < 3; t++) {
        float *old = random_tensor(n, 0.02);
        float *new_ = low_rank_update(old, rows, cols, ranks[t], 0.05);
        wdiff_stats st;
        CHECK(wdiff_stats_compute(old, new_, rows, cols, &st) == 0);
        CHECK_MSG(st.rank == ranks[t], "rank %zu, want %zu", st.rank,
                  ranks[t]);
        /* naive twin: direct sums, Jacobi singular values */
        double dd = 0, oo = 0, mx = 0;
        size_t changed = 0;
        double *d = malloc(n * sizeof *d), *s = malloc(cols * sizeof *s);
        for (size_t i = 0; i < n; i++) {
            d[i] = (double)new_[i] - old[i];
            dd += d[i] * d[i];
            oo += (double)old[i] * old[i];
            if (fabs(d[i]) > mx) mx = fabs(d[i]);
            changed += new_[i] != old[i];
        }
        CHECK(wdiff_singular_values_naive(d, rows, cols, s) == 0);
        CHECK(wdiff_rank(s, cols, rows, cols) == ranks[t]);
        CHECK_NEAR(st.s_max, s[0], 1e-9 * s[0]);
        CHECK_NEAR(st.delta_norm, sqrt(dd), 1e-12);
        CHECK_NEAR(st.rel_norm, sqrt(dd / oo), 1e-12);
        CHECK_NEAR(st.rel_norm, 0.05, 0.05 * 0.01);
        CHECK(st.max_abs == mx);
        CHECK(st.changed == changed);
        free(d);
        free(s);
        free(old);
        free(new_);
    }
}

/* sum_i scale_i u_i v_i^T + noise * N, (rows, cols), u v N gaussian */
static double *spectrum_matrix(size_t rows, size_t cols, const double *scale,
                               size_t r, double noise)
{
    double *a = calloc(rows * cols, sizeof *a);
    double *u = malloc(rows * sizeof *u), *v = malloc(cols * sizeof *v);
    for (size_t k = 0; k < r; k++) {
        for (size_t i = 0; i < rows; i++) u[i] = rng_normal() / sqrt(rows);
        for (size_t j = 0; j < cols; j++) v[j] = rng_normal() / sqrt(cols);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                a[i * cols + j] += scale[k] * u[i] * v[j];
    }
    for (size_t i = 0; noise > 0 && i < rows * cols; i++)
        a[i] += noise * rng_normal();
    free(u);
    free(v);
    return a;
}

/* wdiff_matrix_rank against the full SVD: the same rank, s_max to 1e-9 */
static int same_rank_as_the_svd(const double *a, size_t rows, size_t cols,
                                size_t *rank)
{
    size_t r_fast = 0, r_full = 1;
    double s_fast = 0, s_full = -1;
    if (wdiff_matrix_rank(a, rows, cols, &r_fast, &s_fast) ||
        wdiff_matrix_rank_naive(a, rows, cols, &r_full, &s_full))
        return 0;
    if (rank) *rank = r_fast;
    if (r_fast != r_full || fabs(s_fast - s_full) > 1e-9 * s_full) {
        printf("  %zu x %zu: rank %zu s_max %.17g, the svd's %zu %.17g\n",
               rows, cols, r_fast, s_fast, r_full, s_full);
        return 0;
    }
    return 1;
}

TEST(matrix_rank_matches_the_full_svd)
{
    /* tall and wide; small (no sketch), a sketch, the Gram matrix */
    size_t shapes[][2] = {{40, 20}, {20, 40}, {192, 48}, {48, 192},
                          {600, 300}, {300, 600}};
    size_t ranks[] = {1, 3, 10, 40};
    double scale[40];
    for (size_t k = 0; k < 40; k++) scale[k] = 1 + (double)k / 7;
    for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++) {
        size_t rows = shapes[sh][0], cols = shapes[sh][1], got = 0;
        size_t n = rows < cols ? rows : cols;
        for (size_t t = 0; t < 4; t++) { /* low rank, exact and with noise */
            if (ranks[t] > n) continue;
            for (int noisy = 0; noisy < 2; noisy++) {
                double *a = spectrum_matrix(rows, cols, scale, ranks[t],
                                            noisy ? 1e-9 : 0);
                CHECK_MSG(same_rank_as_the_svd(a, rows, cols, &got) &&
                          got == ranks[t], "%zu x %zu rank %zu%s: got %zu",
                          rows, cols, ranks[t], noisy ? " + noise" : "", got);
                free(a);
            }
        }
        /* full rank */
        double *a = spectrum_matrix(rows, cols, scale, 0, 1);
        CHECK_MSG(same_rank_as_the_svd(a, rows, cols, &got) && got == n,
                  "%zu x %zu full rank: got %zu", rows, cols, got);
        free(a);
        /* graded: singular values 10^(-k/2) across the tolerance */
        double graded[30];
        for (size_t k = 0; k < 30; k++) graded[k] = pow(10, -(double)k / 2);
        a = spectrum_matrix(rows, cols, graded, n < 30 ? n : 30, 0);
        CHECK_MSG(same_rank_as_the_svd(a, rows, cols, NULL),
                  "%zu x %zu graded", rows, cols);
        free(a);
        /* a float low-rank update with its rounding, as commits make */
        float *old = random_tensor(rows * cols, 0.02);
        float *new_ = low_rank_update(old, rows, cols, 5, 0.01);
        a = malloc(rows * cols * sizeof *a);
        for (size_t i = 0; i < rows * cols; i++)
            a[i] = (double)new_[i] - old[i];
        CHECK_MSG(same_rank_as_the_svd(a, rows, cols, &got) && got == 5,
                  "%zu x %zu float update of rank 5: got %zu", rows, cols,
                  got);
        free(a);
        free(old);
        free(new_);
    }
}

TEST(statistics_of_no_change_and_of_non_finite_values)
{
    size_t n = 60;
    float *old = random_tensor(n, 1);
    wdiff_stats st;
    CHECK(wdiff_stats_compute(old, old, 6, 10, &st) == 0);
    CHECK(st.rank == 0 && st.delta_norm == 0 && st.changed == 0 &&
          st.max_abs == 0);
    float *bad = malloc(n * sizeof *bad);
    memcpy(bad, old, 4 * n);
    bad[7] = NAN;
    CHECK(wdiff_stats_compute(old, bad, 6, 10, &st) == ERR_NUMERIC);
    bad[7] = INFINITY;
    CHECK(wdiff_stats_compute(old, bad, 6, 10, &st) == ERR_NUMERIC);
    /* a 1-d tensor as one row */
    memcpy(bad, old, 4 * n);
    bad[3] += 1;
    CHECK(wdiff_stats_compute(old, bad, 1, n, &st) == 0);
    CHECK(st.rank == 1 && st.changed == 1);
    free(old);
    free(bad);
}


/* A matrix round trip with the encoding wdiff_encode_matrix picks;
 * returns the transform it used (0 on any failure). */
static int matrix_round_trip(const float *old, const float *new_,
                             size_t rows, size_t cols, size_t *len_out)
{
    size_t n = rows * cols, len = 0;
    void *blob = NULL;
    wdiff_info info;
    if (wdiff_encode_matrix(old, new_, rows, cols, &blob, &len)) return 0;
    int ok = wdiff_info_get(blob, len, &info) == 0;
    float *a = malloc(n * sizeof *a);
    ok &= wdiff_apply(blob, len, old, a, n) == 0 && !memcmp(a, new_, 4 * n);
    ok &= wdiff_revert(blob, len, new_, a, n) == 0 && !memcmp(a, old, 4 * n);
    memcpy(a, new_, 4 * n);
    ok &= wdiff_revert(blob, len, a, a, n) == 0 && !memcmp(a, old, 4 * n);
    free(a);
    free(blob);
    if (len_out) *len_out = len;
    return ok ? (int)info.transform : 0;
}

TEST(low_rank_changes_round_trip_exactly)
{
    size_t shapes[][2] = {{64, 32}, {32, 64}, {256, 64}, {100, 37}};
    size_t ranks[] = {1, 3, 8};
    for (size_t s = 0; s < 4; s++)
        for (size_t r = 0; r < 3; r++) {
            size_t rows = shapes[s][0], cols = shapes[s][1];
            float *old = random_tensor(rows * cols, 0.02);
            float *new_ = low_rank_update(old, rows, cols, ranks[r], 0.05);
            int t = matrix_round_trip(old, new_, rows, cols, NULL);
            CHECK_MSG(t == WDIFF_LOWRANK, "%zu x %zu rank %zu: transform %d",
                      rows, cols, ranks[r], t);
            free(old);
            free(new_);
        }
}

TEST(low_rank_diffs_survive_odd_values)
{
    /* a low-rank change plus weights that cross zero, change exponent,
     * become NaN, infinite, denormal or signed zero */
    size_t rows = 64, cols = 32, n = rows * cols;
    float *old = random_tensor(n, 0.02);
    float *new_ = low_rank_update(old, rows, cols, 2, 0.3);
    uint32_t odd[] = {0x7fc00001, 0x7f800000, 0xff800000, 0x00000000,
                      0x80000000, 0x00000001, 0x807fffff, 0x7f7fffff};
    for (size_t i = 0; i < 8; i++) {
        memcpy(&new_[i * 97], &odd[i], 4);
        memcpy(&old[i * 89 + 5], &odd[7 - i], 4);
    }
    old[3] = 1e-3f;
    new_[3] = -1e-3f;        /* sign flip */
    old[4] = 1.0f;
    new_[4] = 0.99999994f;   /* exponent change */
    void *blob = NULL;
    size_t len = 0;
    /* each odd weight is a spike of rank one for the factors */
    int rc = wdiff_encode_lowrank(old, new_, rows, cols, 24, 3, &blob, &len);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    float *a = malloc(n * sizeof *a);
    CHECK(wdiff_apply(blob, len, old, a, n) == 0 && !memcmp(a, new_, 4 * n));
    CHECK(wdiff_revert(blob, len, new_, a, n) == 0 && !memcmp(a, old, 4 * n));
    free(a);
    free(blob);
    free(old);
    free(new_);
}

TEST(low_rank_exception_list_round_trips)
{
    /* A few tiny weights (1e-10) get the low-rank change plus 1e-7, a
     * spike far below the factors' rank threshold but, on their grid
     * (2^-57), more than 2^31 steps away from the prediction: they go to
     * the exception list, and everything still comes back exactly. */
    size_t rows = 64, cols = 32, n = rows * cols;
    float *base = random_tensor(n, 0.02);
    float *upd = low_rank_update(base, rows, cols, 2, 0.3);
    float *old = malloc(n * sizeof *old), *new_ = malloc(n * sizeof *new_);
    for (size_t i = 0; i < n; i++) {
        float d = upd[i] - base[i];
        int spike = i % 401 == 7;
        old[i] = spike ? (i % 2 ? 1e-10f : -1e-10f) : base[i];
        new_[i] = old[i] + d + (spike ? 1e-7f : 0.0f);
    }
    void *blob = NULL;
    size_t len = 0;
    int rc = wdiff_encode_lowrank(old, new_, rows, cols, 4, 3, &blob, &len);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    const unsigned char *pay = (const unsigned char *)blob + WDIFF_HEADER_BYTES;
    size_t plen = len - WDIFF_HEADER_BYTES;
    size_t raw_len = (size_t)ZSTD_getFrameContentSize(pay, plen);
    unsigned char *raw = malloc(raw_len);
    uint32_t n_exc = 0;
    CHECK(ZSTD_decompress(raw, raw_len, pay, plen) == raw_len);
    memcpy(&n_exc, raw + 12, 4);
    printf("  %u of %zu weights in the exception list\n", n_exc, n);
    CHECK(n_exc > 0);
    float *a = malloc(n * sizeof *a);
    CHECK(wdiff_apply(blob, len, old, a, n) == 0 && !memcmp(a, new_, 4 * n));
    CHECK(wdiff_revert(blob, len, new_, a, n) == 0 && !memcmp(a, old, 4 * n));
    free(a);
    free(raw);
    free(blob);
    free(base);
    free(upd);
    free(old);
    free(new_);
}

TEST(high_rank_changes_fall_back_to_the_plain_encoding)
{
    size_t rows = 64, cols = 48, n = rows * cols;
    float *old = random_tensor(n, 0.02);
    float *new_ = low_rank_update(old, rows, cols, 40, 0.05);
    void *blob = NULL;
    size_t len = 0;
    CHECK(wdiff_encode_lowrank(old, new_, rows, cols, 8, 3, &blob, &len) ==
          ERR_INVALID);
    CHECK(blob == NULL);
    CHECK(matrix_round_trip(old, new_, rows, cols, NULL) ==
          (int)wdiff_default_method.transform);
    /* no change at all: rank 0, still exact */
    CHECK(matrix_round_trip(old, old, rows, cols, NULL) != 0);
    free(old);
    free(new_);
}

TEST(corrupt_low_rank_blobs_are_rejected)
{
    size_t rows = 40, cols = 30, n = rows * cols;
    float *old = random_tensor(n, 0.02);
    float *new_ = low_rank_update(old, rows, cols, 2, 0.05);
    float *out = malloc(n * sizeof *out);
    void *blob = NULL;
    size_t len = 0;
    CHECK(wdiff_encode_lowrank(old, new_, rows, cols, 4, 3, &blob, &len) == 0);
    unsigned char *b = malloc(len + 64);
    for (size_t l = 0; l < len; l += 7)
        CHECK(wdiff_apply(blob, l, old, out, n) == ERR_FORMAT);
    for (size_t i = 0; i < len; i++) {
        memcpy(b, blob, len);
        b[i] ^= 0x10;
        int rc = wdiff_revert(b, len, new_, out, n);
        CHECK_MSG(rc == ERR_FORMAT, "byte %zu: rc %d", i, rc);
    }
    /* a well-sealed payload whose shape lies: rows + 1 */
    const unsigned char *pay = (const unsigned char *)blob + WDIFF_HEADER_BYTES;
    size_t plen = len - WDIFF_HEADER_BYTES;
    size_t raw_len = (size_t)ZSTD_getFrameContentSize(pay, plen);
    unsigned char *raw = malloc(raw_len);
    CHECK(ZSTD_decompress(raw, raw_len, pay, plen) == raw_len);
    uint32_t r;
    memcpy(&r, raw, 4);
    r += 1;
    memcpy(raw, &r, 4);
    size_t bound = ZSTD_compressBound(raw_len);
    unsigned char *forged = malloc(WDIFF_HEADER_BYTES + bound);
    memcpy(forged, blob, WDIFF_HEADER_BYTES);
    size_t fl = ZSTD_compress(forged + WDIFF_HEADER_BYTES, bound, raw, raw_len, 3);
    for (int i = 0; i < 8; i++) forged[16 + i] = (unsigned char)(fl >> (8 * i));
    reseal(forged, WDIFF_HEADER_BYTES + fl);
    CHECK(wdiff_apply(forged, WDIFF_HEADER_BYTES + fl, old, out, n) ==
          ERR_FORMAT);
    CHECK(strstr(err_message(ERR_FORMAT), "inconsistent shape") != NULL);
    free(forged);
    free(raw);
    free(b);
    free(blob);
    free(old);
    free(new_);
    free(out);
}

/* Rebuilds blob with raw payload `raw` (compressed again) under the same
 * header, resealed: what a bug or a malicious writer could produce. */
static unsigned char *rebuild(const void *blob, const unsigned char *raw,
                              size_t raw_len, size_t *len)
{
    size_t bound = ZSTD_compressBound(raw_len);
    unsigned char *b = malloc(WDIFF_HEADER_BYTES + bound);
    memcpy(b, blob, WDIFF_HEADER_BYTES);
    size_t pl = ZSTD_compress(b + WDIFF_HEADER_BYTES, bound, raw, raw_len, 1);
    for (int i = 0; i < 8; i++) b[16 + i] = (unsigned char)(pl >> (8 * i));
    *len = WDIFF_HEADER_BYTES + pl;
    reseal(b, *len);
    return b;
}

TEST(sealed_garbage_payloads_never_crash_or_lie)
{
    /* Random mutations of the decompressed payload (factors, planes,
     * exception list, shape fields), recompressed and resealed so they
     * pass the checksum: decoding either refuses (ERR_FORMAT) or gives
     * exactly the recorded tensor, and never touches memory it should
     * not (run it under make asan). */
    size_t rows = 48, cols = 24, n = rows * cols;
    float *base = random_tensor(n, 0.02);
    float *new_ = low_rank_update(base, rows, cols, 2, 0.05);
    new_[100] = base[100] + 1e-7f; /* something for the exception list */
    base[100] = 1e-10f;
    new_[100] += 1e-10f;
    float *out = malloc(n * sizeof *out);
    void *blobs[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    CHECK(wdiff_encode_lowrank(base, new_, rows, cols, 8, 3, &blobs[0],
                               &lens[0]) == 0);
    CHECK(wdiff_encode(base, new_, n, &blobs[1], &lens[1]) == 0);
    int refused = 0, exact = 0, wrong = 0;
    for (int which = 0; which < 2; which++) {
        if (!blobs[which]) continue;
        const unsigned char *pay =
            (const unsigned char *)blobs[which] + WDIFF_HEADER_BYTES;
        size_t plen = lens[which] - WDIFF_HEADER_BYTES;
        size_t raw_len = (size_t)ZSTD_getFrameContentSize(pay, plen);
        unsigned char *raw = malloc(raw_len + 64), *mut = malloc(raw_len + 64);
        CHECK(ZSTD_decompress(raw, raw_len, pay, plen) == raw_len);
        for (int iter = 0; iter < 300; iter++) {
            size_t ml = raw_len;
            memcpy(mut, raw, raw_len);
            int kind = (int)(rng_next() % 4);
            if (kind == 0) { /* a few random bytes */
                for (int k = 0; k < 1 + (int)(rng_next() % 4); k++)
                    mut[rng_next() % raw_len] = (unsigned char)rng_next();
            } else if (kind == 1) { /* the shape fields */
                mut[rng_next() % 16] = (unsigned char)rng_next();
            } else if (kind == 2) { /* shorter or longer */
                ml = raw_len - 1 - rng_next() % 8;
                if (rng_next() % 2) ml = raw_len + 1 + rng_next() % 60;
                for (size_t k = raw_len; k < ml; k++) mut[k] = 0xff;
            } else { /* the end: exception list, low residual plane */
                mut[raw_len - 1 - rng_next() % 16] ^= 1u << (rng_next() % 8);
            }
            size_t len = 0;
            unsigned char *b = rebuild(blobs[which], mut, ml, &len);
            int rc = (iter % 2) ? wdiff_revert(b, len, new_, out, n)
                                : wdiff_apply(b, len, base, out, n);
            const float *want = (iter % 2) ? base : new_;
            if (rc == 0 && !memcmp(out, want, 4 * n)) exact++;
            else if (rc == ERR_FORMAT) refused++;
            else wrong++;
            free(b);
        }
        free(raw);
        free(mut);
    }
    printf("  600 sealed mutations: %d refused, %d decoded exactly, %d wrong\n",
           refused, exact, wrong);
    CHECK(wrong == 0);
    CHECK(refused > 400);
    free(blobs[0]);
    free(blobs[1]);
    free(base);
    free(new_);
    free(out);
}

TEST(compression_ratio_of_a_memit_like_update)
{
    /* A c_proj-shaped slice with a rank-8 update of relative size 1e-2,
     * as a MEMIT batch makes: the default encoding must beat every
     * plain layout and shrink the raw words. */
    size_t rows = 768, cols = 192, n = rows * cols;
    float *old = random_tensor(n, 0.02 / sqrt(24));
    float *new_ = low_rank_update(old, rows, cols, 8, 1e-2);
    void *blob = NULL;
    size_t len = 0, plain = 0;
    CHECK(wdiff_encode(old, new_, n, &blob, &len) == 0);
    for (size_t m = 0; m < N_METHODS; m++) {
        void *b = NULL;
        size_t l = 0;
        CHECK(wdiff_encode_method(old, new_, n, &all_methods[m], &b, &l) == 0);
        printf("  method %s/%s level %d: %.1f%% of raw\n",
               all_methods[m].transform == WDIFF_XOR ? "xor" : "sub",
               all_methods[m].layout == WDIFF_PLAIN        ? "plain"
               : all_methods[m].layout == WDIFF_BYTEPLANES ? "byteplanes"
                                                           : "bitplanes",
               all_methods[m].level, 100.0 * l / (4.0 * n));
        if (all_methods[m].layout == WDIFF_PLAIN && (!plain || l < plain))
            plain = l;
        free(b);
    }
    printf("  default: %zu of %zu bytes (%.1f%%)\n", len, 4 * n,
           100.0 * len / (4.0 * n));
    CHECK(len < 4 * n * 3 / 4);
    CHECK(len < plain);
    size_t lr = 0;
    CHECK(matrix_round_trip(old, new_, rows, cols, &lr) == WDIFF_LOWRANK);
    printf("  low-rank (wdiff_encode_matrix): %zu bytes (%.1f%%)\n", lr,
           100.0 * lr / (4.0 * n));
    CHECK_MSG(lr < len / 2, "low-rank %zu, default %zu", lr, len);
    free(blob);
    free(old);
    free(new_);
}

int main(void)
{
    RUN(apply_and_revert_are_bit_exact_for_every_method);
    RUN(odd_float_values_round_trip);
    RUN(subtracting_the_delta_does_not_restore_the_weights);
    RUN(header_records_the_tensor_hashes);
    RUN(corrupt_and_truncated_blobs_are_rejected);
    RUN(a_sealed_blob_with_the_wrong_payload_is_caught_by_the_hashes);
    RUN(mismatched_tensors_are_refused_and_left_alone);
    RUN(singular_values_match_the_jacobi_twin);
    RUN(statistics_of_a_low_rank_update);
    RUN(matrix_rank_matches_the_full_svd);
    RUN(statistics_of_no_change_and_of_non_finite_values);
    RUN(low_rank_changes_round_trip_exactly);
    RUN(low_rank_diffs_survive_odd_values);
    RUN(low_rank_exception_list_round_trips);
    RUN(high_rank_changes_fall_back_to_the_plain_encoding);
    RUN(corrupt_low_rank_blobs_are_rejected);
    RUN(sealed_garbage_payloads_never_crash_or_lie);
    RUN(compression_ratio_of_a_memit_like_update);
    return harness_summary();
}
