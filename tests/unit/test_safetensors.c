/* test_safetensors: the safetensors reader rejects every malformed file
 * with ERR_FORMAT and a message naming the file and the problem (files
 * are built byte by byte in a temporary directory), never crashes on
 * truncated or corrupted input, and reads back what the writer wrote.
 * F16/BF16 conversion is compared with a naive arithmetic twin on all
 * 65,536 inputs of each. */
#include "base/errors.h"
#include "model/safetensors.h"
#include "../harness.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_safetensors.XXXXXX";

static char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

/* Writes an 8-byte length `hlen` (may lie), `header`, then `ndata`
 * bytes 0, 1, 2, ... of data. */
static char *write_raw(const char *name, uint64_t hlen, const char *header,
                       size_t ndata)
{
    char *path = tmp_path(name);
    FILE *fp = fopen(path, "wb");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(len8, 1, 8, fp);
    fputs(header, fp);
    for (size_t i = 0; i < ndata; i++) fputc((int)(i & 0xff), fp);
    fclose(fp);
    return path;
}

/* A file whose length field is right. */
static char *write_st(const char *name, const char *header, size_t ndata)
{
    return write_raw(name, strlen(header), header, ndata);
}

/* Expects safetensors_open(path) to fail with ERR_FORMAT, a NULL handle
 * and a message holding the path and `want`. */
#define EXPECT_BAD(path, want) expect_bad(path, want, __LINE__)
static void expect_bad(const char *path, const char *want, int line)
{
    st_file *f = (st_file *)1;
    err_clear();
    int rc = safetensors_open(&f, path);
    const char *msg = err_message(rc);
    CHECK_MSG(rc == ERR_FORMAT, "line %d: rc %d (%s)", line, rc, msg);
    CHECK_MSG(f == NULL, "line %d", line);
    CHECK_MSG(strstr(msg, path) != NULL, "line %d: path not in '%s'", line, msg);
    CHECK_MSG(strstr(msg, want) != NULL, "line %d: '%s' not in '%s'", line,
              want, msg);
    if (rc == 0) safetensors_close(f);
}

TEST(empty_and_truncated_files)
{
    char *p = tmp_path("empty.safetensors");
    fclose(fopen(p, "wb"));
    EXPECT_BAD(p, "empty");
    p = tmp_path("short.safetensors");
    FILE *fp = fopen(p, "wb");
    fwrite("\x10\0\0\0\0", 1, 5, fp);
    fclose(fp);
    EXPECT_BAD(p, "truncated");
    EXPECT_BAD(write_raw("long.safetensors", 64, "{}", 0), "exceeds the file size");
    EXPECT_BAD(write_raw("huge.safetensors", 200000000, "{}", 0), "100 MB");
    EXPECT_BAD(write_raw("max.safetensors", UINT64_MAX, "{}", 0), "100 MB");
    /* a valid file cut short: the last tensor's bytes are missing */
    EXPECT_BAD(write_st("cut.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
                        "\"data_offsets\":[0,16]}}", 12), "out of bounds");
}

TEST(bad_json_headers)
{
    EXPECT_BAD(write_st("json.safetensors", "{\"a\": {\"dtype\": }}", 0), "bad JSON");
    EXPECT_BAD(write_st("trail.safetensors", "{} x", 0), "bad JSON");
    EXPECT_BAD(write_st("array.safetensors", "[1, 2]", 0), "not a JSON object");
    EXPECT_BAD(write_st("nul.safetensors", "{\"a\\u0000\": 1}", 0), "bad JSON");
    EXPECT_BAD(write_st("dup.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
               "duplicate");
    EXPECT_BAD(write_st("meta.safetensors", "{\"__metadata__\": [1]}", 0),
               "'__metadata__' is not an object");
    EXPECT_BAD(write_st("metav.safetensors", "{\"__metadata__\": {\"format\": 1}}", 0),
               "not a string");
    EXPECT_BAD(write_st("entry.safetensors", "{\"a\": 3}", 0), "'a': entry is not an object");
}

TEST(bad_tensor_entries)
{
    EXPECT_BAD(write_st("dtype.safetensors", "{\"w\":{\"dtype\":\"F33\",\"shape\":[1],"
                        "\"data_offsets\":[0,4]}}", 4), "unknown dtype 'F33'");
    EXPECT_BAD(write_st("i64.safetensors", "{\"w\":{\"dtype\":\"I64\",\"shape\":[1],"
                        "\"data_offsets\":[0,8]}}", 8), "unsupported dtype 'I64'");
    EXPECT_BAD(write_st("nodtype.safetensors", "{\"w\":{\"shape\":[1],"
                        "\"data_offsets\":[0,4]}}", 4), "'dtype'");
    EXPECT_BAD(write_st("size.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                        "\"data_offsets\":[0,20]}}", 20), "need 24 bytes");
    EXPECT_BAD(write_st("size16.safetensors", "{\"w\":{\"dtype\":\"F16\",\"shape\":[4],"
                        "\"data_offsets\":[0,16]}}", 16), "need 8 bytes");
    EXPECT_BAD(write_st("neg.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],"
                        "\"data_offsets\":[0,4]}}", 4), "shape[0]");
    EXPECT_BAD(write_st("real.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],"
                        "\"data_offsets\":[0,4]}}", 4), "shape[0]");
    EXPECT_BAD(write_st("shape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":4,"
                        "\"data_offsets\":[0,16]}}", 16), "'shape'");
    EXPECT_BAD(write_st("dims.safetensors", "{\"w\":{\"dtype\":\"F32\","
                        "\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4),
               "9 dimensions");
    EXPECT_BAD(write_st("ovf.safetensors", "{\"w\":{\"dtype\":\"F32\","
                        "\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4),
               "too large");
    EXPECT_BAD(write_st("offs.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
                        "\"data_offsets\":[0,4,8]}}", 4), "'data_offsets'");
    EXPECT_BAD(write_st("offneg.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
                        "\"data_offsets\":[-4,0]}}", 4), "'data_offsets'");
    EXPECT_BAD(write_st("backw.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],"
                        "\"data_offsets\":[4,0]}}", 4), "end before they begin");
}

TEST(bad_layouts)
{
    EXPECT_BAD(write_st("overlap.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
               "overlap");
    EXPECT_BAD(write_st("same.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16),
               "overlap");
    EXPECT_BAD(write_st("gap.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20),
               "gap");
    EXPECT_BAD(write_st("start.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
               "gap");
    EXPECT_BAD(write_st("oob.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 12),
               "out of bounds");
    EXPECT_BAD(write_st("far.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                        "\"data_offsets\":[18446744073709551612,9223372036854775807]}}", 0),
               "bad JSON"); /* beyond jansson's integers */
    EXPECT_BAD(write_st("trailing.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8),
               "trailing");
}

TEST(missing_and_not_regular)
{
    st_file *f = (st_file *)1;
    char *p = tmp_path("nope.safetensors");
    int rc = safetensors_open(&f, p);
    CHECK(rc == ERR_NOTFOUND && f == NULL && strstr(err_message(rc), p));
    rc = safetensors_open(&f, tmpdir);
    CHECK(rc == ERR_FORMAT && f == NULL && strstr(err_message(rc), "regular"));
}

/* An odd but valid file: metadata last, padded header, zero-size and 0-d
 * tensors, tensors stored out of header order, a BF16 and an F16. */
TEST(valid_handmade_file)
{
    const char *hdr =
        "{\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]},"
        "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
        "\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[12,14]},"
        "\"__metadata__\":{\"format\":\"pt\"}}     ";
    char *p = write_st("valid.safetensors", hdr, 14);
    st_file *f = NULL;
    int rc = safetensors_open(&f, p);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc) return;
    CHECK(safetensors_count(f) == 4);
    CHECK(!strcmp(safetensors_at(f, 0)->name, "z"));
    CHECK(!strcmp(safetensors_at(f, 3)->name, "h"));
    CHECK(safetensors_at(f, 4) == NULL);
    CHECK(safetensors_find(f, "__metadata__") == NULL);
    CHECK(safetensors_find(f, "q") == NULL);
    const st_tensor *z = safetensors_find(f, "z"), *b = safetensors_find(f, "b");
    const st_tensor *a = safetensors_find(f, "a");
    CHECK(z && z->ndim == 2 && z->numel == 0 && z->nbytes == 0);
    CHECK(b && b->ndim == 0 && b->numel == 1 && b->nbytes == 4 && b->offset == 8);
    CHECK(a && a->dtype == ST_BF16 && a->numel == 4 && a->shape[1] == 2);
    /* data bytes are 0,1,2,...: BF16 element 0 is 0x0100 -> 0x01000000 */
    float out[4];
    safetensors_to_f32(a, out);
    uint32_t bits;
    memcpy(&bits, &out[0], 4);
    CHECK(bits == 0x01000000u);
    memcpy(&bits, &out[3], 4);
    CHECK(bits == 0x07060000u);
    CHECK(((const unsigned char *)b->data)[0] == 8);
    safetensors_close(f);
    safetensors_close(NULL);
}

TEST(write_read_round_trip)
{
    float w[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f}, s = 42.0f;
    float big[1000];
    for (int i = 0; i < 1000; i++) big[i] = sinf((float)i) * 1e3f;
    st_write_tensor t[] = {
        {"h.0.attn.c_attn.weight", 2, {2, 3}, w, ST_F32},
        {"scalar", 0, {0}, &s, ST_F32},
        {"empty", 2, {0, 5}, NULL, ST_F32},
        {"big", 3, {10, 10, 10}, big, ST_F32},
    };
    char *p = tmp_path("rt.safetensors");
    int rc = safetensors_write(p, t, 4);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    st_file *f = NULL;
    rc = safetensors_open(&f, p);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc) return;
    CHECK(safetensors_count(f) == 4);
    for (size_t i = 0; i < 4; i++) {
        const st_tensor *r = safetensors_at(f, i);
        CHECK(!strcmp(r->name, t[i].name) && r->dtype == ST_F32);
        CHECK(r->ndim == t[i].ndim);
        size_t numel = 1;
        for (int d = 0; d < r->ndim; d++) {
            CHECK(r->shape[d] == t[i].shape[d]);
            numel *= t[i].shape[d];
        }
        CHECK(r->numel == numel && r->nbytes == 4 * numel);
        CHECK(((uintptr_t)r->data & 3) == 0); /* header padded to 8 */
        if (numel) CHECK(!memcmp(r->data, t[i].data, 4 * numel));
        float *back = malloc(4 * (numel ? numel : 1));
        safetensors_to_f32(r, back);
        if (numel) CHECK(!memcmp(back, t[i].data, 4 * numel));
        free(back);
    }
    safetensors_close(f);
    /* the header is padded with spaces to a multiple of 8 and names pt */
    FILE *fp = fopen(p, "rb");
    unsigned char len8[8];
    CHECK(fread(len8, 1, 8, fp) == 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
    CHECK(n % 8 == 0 && n < 4096);
    char hdr[4096] = {0};
    CHECK(fread(hdr, 1, n, fp) == n);
    fclose(fp);
    CHECK(strstr(hdr, "\"__metadata__\":{\"format\":\"pt\"}") != NULL);
    CHECK(strstr(hdr, "\"data_offsets\":[0,24]") != NULL);
    /* the same shapes read back from a file with no tensors at all */
    CHECK(safetensors_write(tmp_path("none.safetensors"), NULL, 0) == 0);
    CHECK(safetensors_open(&f, tmp_path("none.safetensors")) == 0);
    if (f) CHECK(safetensors_count(f) == 0);
    safetensors_close(f);
}

static int count_files(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

TEST(write_errors_leave_old_file)
{
    float x[2] = {1, 2};
    st_write_tensor good[] = {{"x", 1, {2}, x, ST_F32}};
    char *p = tmp_path("keep.safetensors");
    CHECK(safetensors_write(p, good, 1) == 0);
    struct stat before, after;
    stat(p, &before);
    st_write_tensor dup[] = {{"x", 1, {2}, x, ST_F32}, {"x", 1, {1}, x, ST_F32}};
    int rc = safetensors_write(p, dup, 2);
    CHECK(rc == ERR_INVALID && strstr(err_message(rc), "duplicate"));
    st_write_tensor dims[] = {{"y", 9, {1}, x, ST_F32}};
    CHECK(safetensors_write(p, dims, 1) == ERR_INVALID);
    st_write_tensor meta[] = {{"__metadata__", 1, {2}, x, ST_F32}};
    CHECK(safetensors_write(p, meta, 1) == ERR_INVALID);
    st_write_tensor nodata[] = {{"y", 1, {2}, NULL, ST_F32}};
    CHECK(safetensors_write(p, nodata, 1) == ERR_INVALID);
    st_write_tensor huge[] = {{"y", 2, {(size_t)1 << 40, (size_t)1 << 40}, x, ST_F32}};
    CHECK(safetensors_write(p, huge, 1) == ERR_INVALID);
    stat(p, &after);
    CHECK(before.st_ino == after.st_ino && before.st_size == after.st_size);
    rc = safetensors_write("/nonexistent-dir/x.safetensors", good, 1);
    CHECK(rc == ERR_IO && strstr(err_message(rc), "/nonexistent-dir/x.safetensors"));
    CHECK(count_files() == 0);
    /* an existing file is replaced (a new inode: renamed into place) */
    CHECK(safetensors_write(p, good, 1) == 0);
    stat(p, &after);
    CHECK(before.st_ino != after.st_ino && (after.st_mode & 0777) == 0644);
}

/* Every prefix of a valid file and every single-byte corruption (three
 * values per byte) must open cleanly or fail with ERR_FORMAT. */
TEST(truncations_and_corruptions_never_crash)
{
    float w[6] = {1, 2, 3, 4, 5, 6};
    st_write_tensor t[] = {{"a", 2, {2, 2}, w, ST_F32}, {"b", 1, {2}, w + 4, ST_F32}};
    char *p = tmp_path("src.safetensors");
    CHECK(safetensors_write(p, t, 2) == 0);
    FILE *fp = fopen(p, "rb");
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    CHECK(n > 100 && n < sizeof buf);
    char *q = tmp_path("mut.safetensors");
    int bad = 0, opened = 0;
    for (size_t len = 0; len < n; len++) {
        fp = fopen(q, "wb");
        fwrite(buf, 1, len, fp);
        fclose(fp);
        st_file *f = NULL;
        int rc = safetensors_open(&f, q);
        if (rc != ERR_FORMAT || f) bad++;
        safetensors_close(f);
    }
    static const unsigned char vals[] = {0x00, 0x39, 0xff};
    for (size_t i = 0; i < n; i++)
        for (int v = 0; v < 3; v++) {
            unsigned char c[512];
            memcpy(c, buf, n);
            c[i] = vals[v];
            fp = fopen(q, "wb");
            fwrite(c, 1, n, fp);
            fclose(fp);
            st_file *f = NULL;
            int rc = safetensors_open(&f, q);
            if (rc == 0) {
                opened++;
                for (size_t k = 0; k < safetensors_count(f); k++) {
                    const st_tensor *x = safetensors_at(f, k);
                    float *o = malloc(4 * (x->numel + 1));
                    safetensors_to_f32(x, o);
                    free(o);
                }
            } else if (rc != ERR_FORMAT || f) {
                bad++;
            }
            safetensors_close(f);
        }
    CHECK_MSG(bad == 0, "%d mutations gave a wrong result", bad);
    CHECK(opened > 0); /* corrupting data bytes leaves a valid file */
}

/* The naive twins: the value from sign, exponent and mantissa. */
static float naive_f16(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp(m, -24);
    else v = ldexp(1024 + m, e - 25);
    return (float)(sign ? -v : v);
}

static float naive_bf16(uint16_t h)
{
    int sign = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v;
    if (e == 255) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp(m, -133);
    else v = ldexp(128 + m, e - 134);
    return (float)(sign ? -v : v);
}

TEST(f16_bf16_match_naive_twin)
{
    uint16_t *all = malloc(65536 * 2 * 2);
    for (int i = 0; i < 65536; i++) all[i] = all[65536 + i] = (uint16_t)i;
    const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[256,256],\"data_offsets\":[0,131072]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[65536],\"data_offsets\":[131072,262144]}}";
    char *p = tmp_path("half.safetensors");
    FILE *fp = fopen(p, "wb");
    uint64_t hl = strlen(hdr);
    fwrite(&hl, 8, 1, fp); /* little-endian host */
    fputs(hdr, fp);
    fwrite(all, 2, 2 * 65536, fp);
    fclose(fp);
    free(all);
    st_file *f = NULL;
    int rc = safetensors_open(&f, p);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc) return;
    float *out = malloc(65536 * sizeof *out);
    int bad = 0;
    safetensors_to_f32(safetensors_find(f, "h"), out);
    for (int i = 0; i < 65536; i++) {
        float want = naive_f16((uint16_t)i);
        int ok = isnan(want) ? isnan(out[i]) : (memcmp(&want, &out[i], 4) == 0);
        if (!ok && bad++ < 5) fprintf(stderr, "  f16 %04x: %g vs %g\n", i, out[i], want);
    }
    safetensors_to_f32(safetensors_find(f, "b"), out);
    for (int i = 0; i < 65536; i++) {
        float want = naive_bf16((uint16_t)i);
        int ok = isnan(want) ? isnan(out[i]) : (memcmp(&want, &out[i], 4) == 0);
        if (!ok && bad++ < 10) fprintf(stderr, "  bf16 %04x: %g vs %g\n", i, out[i], want);
    }
    CHECK_MSG(bad == 0, "%d conversions differ", bad);
    /* spot values everyone knows */
    uint16_t one = 0x3c00, half_min = 0x0001, bf_pi = 0x4049;
    CHECK(naive_f16(one) == 1.0f && naive_f16(half_min) == 0x1p-24f);
    CHECK(fabsf(naive_bf16(bf_pi) - 3.140625f) == 0);
    free(out);
    safetensors_close(f);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(empty_and_truncated_files);
    RUN(bad_json_headers);
    RUN(bad_tensor_entries);
    RUN(bad_layouts);
    RUN(missing_and_not_regular);
    RUN(valid_handmade_file);
    RUN(write_read_round_trip);
    RUN(write_errors_leave_old_file);
    RUN(truncations_and_corruptions_never_crash);
    RUN(f16_bf16_match_naive_twin);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
    return harness_summary();
}
