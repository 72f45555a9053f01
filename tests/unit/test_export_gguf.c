/* test_export_gguf: the GGUF export's converters against their naive
 * twins (lib/repo/export_gguf_naive.h: q8_0, the q/k permutation, f16
 * and bf16 rounding), and the files it writes read back by a small GGUF
 * reader of this file's own: header, metadata, tensor table (names,
 * shapes, types, offsets and their alignment, the file's size) and the
 * data of the tensors the converter rearranges (llama's q and k rows
 * permuted, qwen2's not) for the four small models of tests/data/gguf-*.
 * llama.cpp itself reads the same files in tests/cli/t93-gguf-llama.sh. */
#include "tests/harness.h"

#include "base/errors.h"
#include "base/half.h"
#include "base/linalg.h"
#include "base/splitmix.h"
#include "model/llama.h"
#include "repo/export_gguf.h"
#include "repo/export_gguf_naive.h"
#include "repo/gguf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_export_gguf.XXXXXX";

/* ---- a GGUF reader --------------------------------------------------- */

#define MAX_T 256
#define MAX_KV 64
typedef struct {
    unsigned char *p;
    size_t n, pos;
    int bad;
    uint64_t n_tensors, n_kv;
    struct { char key[96]; uint32_t type; size_t at; uint64_t n; } kv[MAX_KV];
    struct { char name[64]; uint32_t ndim; uint64_t dims[4]; uint32_t type;
             uint64_t offset; } t[MAX_T];
    size_t data_start;
} gguf_file;

static uint64_t rd(gguf_file *f, size_t n)
{
    uint64_t v = 0;
    if (f->pos + n > f->n) { f->bad = 1; return 0; }
    memcpy(&v, f->p + f->pos, n);
    f->pos += n;
    return v;
}

static void rd_str(gguf_file *f, char *out, size_t cap)
{
    uint64_t n = rd(f, 8);
    if (f->pos + n > f->n) { f->bad = 1; return; }
    if (out) snprintf(out, cap, "%.*s", (int)n, (const char *)f->p + f->pos);
    f->pos += n;
}

static void skip_value(gguf_file *f, uint32_t type)
{
    static const size_t size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) { rd_str(f, NULL, 0); return; }
    if (type == 9) {
        uint32_t et = (uint32_t)rd(f, 4);
        uint64_t n = rd(f, 8);
        for (uint64_t i = 0; i < n && !f->bad; i++) skip_value(f, et);
        return;
    }
    if (type > 12) { f->bad = 1; return; }
    f->pos += size[type];
}

static int gguf_read(gguf_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    fseek(fp, 0, SEEK_END);
    f->n = (size_t)ftell(fp);
    rewind(fp);
    f->p = malloc(f->n);
    if (!f->p || fread(f->p, 1, f->n, fp) != f->n) f->bad = 1;
    fclose(fp);
    if (f->bad || memcmp(f->p, "GGUF", 4)) return -1;
    f->pos = 4;
    if (rd(f, 4) != 3) return -1;
    f->n_tensors = rd(f, 8);
    f->n_kv = rd(f, 8);
    if (f->n_tensors > MAX_T || f->n_kv > MAX_KV) return -1;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        rd_str(f, f->kv[i].key, sizeof f->kv[i].key);
        f->kv[i].type = (uint32_t)rd(f, 4);
        f->kv[i].at = f->pos;
        if (f->kv[i].type == 9) {
            size_t save = f->pos;
            rd(f, 4);
            f->kv[i].n = rd(f, 8);
            f->pos = save;
        }
        skip_value(f, f->kv[i].type);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        rd_str(f, f->t[i].name, sizeof f->t[i].name);
        f->t[i].ndim = (uint32_t)rd(f, 4);
        for (uint32_t d = 0; d < f->t[i].ndim && d < 4; d++) f->t[i].dims[d] = rd(f, 8);
        f->t[i].type = (uint32_t)rd(f, 4);
        f->t[i].offset = rd(f, 8);
    }
    f->data_start = (f->pos + 31) / 32 * 32;
    return f->bad ? -1 : 0;
}

static int kv_find(const gguf_file *f, const char *key)
{
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (!strcmp(f->kv[i].key, key)) return (int)i;
    return -1;
}

static uint32_t kv_u32(const gguf_file *f, const char *key)
{
    int i = kv_find(f, key);
    uint32_t v = 0;
    if (i >= 0 && (f->kv[i].type == 4 || f->kv[i].type == 7))
        memcpy(&v, f->p + f->kv[i].at, f->kv[i].type == 7 ? 1 : 4);
    else v = UINT32_MAX;
    return v;
}

static int kv_str_is(const gguf_file *f, const char *key, const char *want)
{
    int i = kv_find(f, key);
    if (i < 0 || f->kv[i].type != 8) return 0;
    uint64_t n;
    memcpy(&n, f->p + f->kv[i].at, 8);
    return n == strlen(want) && !memcmp(f->p + f->kv[i].at + 8, want, n);
}

static int tensor_find(const gguf_file *f, const char *name)
{
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->t[i].name, name)) return (int)i;
    return -1;
}

static size_t type_bytes(uint32_t type, size_t n)
{
    return type == 0 ? 4 * n : type == 8 ? n / 32 * 34 : 2 * n;
}

static size_t numel(const gguf_file *f, int i)
{
    size_t n = 1;
    for (uint32_t d = 0; d < f->t[i].ndim; d++) n *= f->t[i].dims[d];
    return n;
}

/* ---- the converters against their twins ------------------------------ */

TEST(q8_0_matches_its_naive_twin)
{
    enum { N = 32 * 64 };
    float *x = malloc(N * sizeof *x);
    unsigned char *q = malloc(N / 32 * 34);
    uint64_t s = 11;
    for (size_t i = 0; i < N; i++) {
        double scale = ((i / 32) % 4 == 0) ? 1e-3 : (i / 32) % 4 == 1 ? 1 : 40;
        x[i] = (float)(((double)(splitmix_next(&s) >> 11) / 9007199254740992.0 - 0.5) * scale);
    }
    for (size_t i = 32 * 5; i < 32 * 6; i++) x[i] = 0; /* an all-zero block */
    gguf_quantize_q8_0(q, x, N);
    size_t off_by_one = 0;
    for (size_t b = 0; b < N / 32; b++) {
        double d;
        int want[32];
        naive_q8_0_block(x + 32 * b, &d, want);
        uint16_t dh;
        memcpy(&dh, q + 34 * b, 2);
        CHECK(dh == float_to_half((float)d));
        for (int i = 0; i < 32; i++) {
            int got = (int8_t)q[34 * b + 2 + i];
            double r = d ? x[32 * b + i] / d : 0;
            /* a value a hair from a half-way point may round either way
             * between x * (1/d) in float and x / d in double */
            if (got != want[i]) {
                off_by_one++;
                CHECK_MSG(abs(got - want[i]) == 1 && fabs(fabs(r - trunc(r)) - 0.5) < 1e-4,
                          "block %zu value %d: %d, naive %d (x/d %.9f)", b, i, got,
                          want[i], r);
            }
        }
    }
    CHECK(off_by_one < 4);
    free(x);
    free(q);
}

TEST(qk_permutation_matches_numpy_reshape_swapaxes)
{
    /* rows labelled by their index: the permuted labels say where each
     * row came from */
    size_t heads[] = {1, 2, 4}, dims[] = {2, 16, 24};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            size_t H = heads[a], D = dims[b], rows = H * D, cols = 3;
            float *in = malloc(rows * cols * sizeof *in), *out = malloc(rows * cols * sizeof *out);
            for (size_t i = 0; i < rows * cols; i++) in[i] = (float)i;
            naive_qk_permute(out, in, rows, cols, H);
            for (size_t r = 0; r < rows; r++)
                CHECK_MSG(out[r * cols] == (float)(export_gguf_qk_row(r, D) * cols),
                          "heads %zu, head_dim %zu, row %zu", H, D, r);
            free(in);
            free(out);
        }
    CHECK(export_gguf_qk_row(1, 4) == 2 && export_gguf_qk_row(2, 4) == 1);
}

/* f16 and bf16 as the writer stores them, read back, against the
 * nearest of all 65536 patterns */
TEST(f16_and_bf16_round_to_nearest_even)
{
    enum { N = 256 };
    float x[N];
    uint64_t s = 5;
    for (size_t i = 0; i < N; i++)
        x[i] = (float)((double)(int64_t)(splitmix_next(&s) >> 20) * 1e-9);
    x[0] = 0;
    x[1] = 1 + 0x1p-11f;               /* an f16 tie: stays 1 */
    x[2] = 1 + 3 * 0x1p-11f;           /* an f16 tie: rounds up to even */
    x[3] = 1 + 0x1p-8f;                /* a bf16 tie: stays 1 */
    x[4] = 0x1p-20f;                   /* an f16 subnormal */
    x[5] = -65504;
    size_t shape[1] = {N};
    for (int k = 0; k < 2; k++) {
        gguf_type type = k ? GGUF_BF16 : GGUF_F16;
        gguf_writer *w = NULL;
        char path[128];
        snprintf(path, sizeof path, "%s/h%d.gguf", tmpdir, k);
        CHECK(gguf_writer_new(&w) == 0);
        CHECK(gguf_add_tensor(w, "x", shape, 1, type, x) == 0);
        CHECK(gguf_writer_write(w, path) == 0);
        gguf_writer_free(w);
        gguf_file f;
        CHECK(gguf_read(&f, path) == 0);
        CHECK(f.n_tensors == 1 && f.t[0].type == (uint32_t)type && f.t[0].dims[0] == N);
        const unsigned char *data = f.p + f.data_start;
        for (size_t i = 0; i < N; i++) {
            uint16_t got, want = naive_nearest16(x[i], k ? bf16_to_float : half_to_float);
            memcpy(&got, data + 2 * i, 2);
            CHECK_MSG(got == want, "%s of %.9g: %04x, nearest %04x", k ? "bf16" : "f16",
                      (double)x[i], got, want);
        }
        free(f.p);
    }
}

/* ---- whole exports read back ----------------------------------------- */

typedef struct {
    const char *dir, *arch, *tok_model;
    int permuted, tied, llama3, qk_norm, qkv_bias;
} model_case;

static const model_case cases[] = {
    {"tests/data/gguf-llama3-bf16-sharded", "llama", "gpt2", 1, 1, 1, 0, 0},
    {"tests/data/gguf-mistral-bf16", "llama", "llama", 1, 0, 0, 0, 0},
    {"tests/data/gguf-qwen2-f16", "qwen2", "gpt2", 0, 0, 0, 0, 1},
    {"tests/data/gguf-qwen3-f32", "qwen3", "gpt2", 0, 0, 0, 1, 0},
};

/* The tensor table: every offset aligned and right after the one
 * before, the data ending the file; shapes and types as the model says. */
static void check_table(const gguf_file *f, const llama_config *c, gguf_type type)
{
    size_t expect = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        CHECK_MSG(f->t[i].offset == expect, "%s at %llu, expected %zu", f->t[i].name,
                  (unsigned long long)f->t[i].offset, expect);
        CHECK(f->t[i].offset % 32 == 0);
        size_t n = numel(f, (int)i);
        uint32_t want_type = f->t[i].ndim == 1 ? 0 : (uint32_t)type;
        CHECK_MSG(f->t[i].type == want_type, "%s has type %u", f->t[i].name, f->t[i].type);
        CHECK(f->t[i].dims[0] % 32 == 0 || f->t[i].ndim == 1);
        expect = (f->t[i].offset + type_bytes(f->t[i].type, n) + 31) / 32 * 32;
    }
    CHECK_MSG(f->data_start + expect == f->n, "data %zu + %zu, file %zu", f->data_start,
              expect, f->n);
    int e = tensor_find(f, "token_embd.weight");
    CHECK(e >= 0 && f->t[e].ndim == 2 && f->t[e].dims[0] == c->n_embd &&
          f->t[e].dims[1] == c->vocab_size);
    int q = tensor_find(f, "blk.1.attn_q.weight");
    CHECK(q >= 0 && f->t[q].dims[0] == c->n_embd && f->t[q].dims[1] == c->n_head * c->head_dim);
    int o = tensor_find(f, "blk.0.attn_output.weight");
    CHECK(o >= 0 && f->t[o].dims[0] == c->n_head * c->head_dim && f->t[o].dims[1] == c->n_embd);
    int d = tensor_find(f, "blk.0.ffn_down.weight");
    CHECK(d >= 0 && f->t[d].dims[0] == c->n_inner && f->t[d].dims[1] == c->n_embd);
}

/* blk.L.attn_{q,k} of an f32 export against the model's q_proj/k_proj,
 * permuted by the naive twin for llama, as they are for qwen */
static void check_qk_data(const gguf_file *f, const llama_model *m, int permuted)
{
    const llama_config *c = &m->config;
    for (size_t l = 0; l < c->n_layer; l++)
        for (int k = 0; k < 2; k++) {
            const llama_mat *w = k ? &m->layers[l].k : &m->layers[l].q;
            size_t n = w->rows * w->cols, heads = k ? c->n_kv_head : c->n_head;
            float *src = malloc(n * sizeof *src), *want = malloc(n * sizeof *want);
            linalg_to_f32(src, w->data, w->dtype, n);
            if (permuted) naive_qk_permute(want, src, w->rows, w->cols, heads);
            else memcpy(want, src, n * sizeof *src);
            char name[64];
            snprintf(name, sizeof name, "blk.%zu.attn_%s.weight", l, k ? "k" : "q");
            int i = tensor_find(f, name);
            CHECK_MSG(i >= 0 && !memcmp(f->p + f->data_start + f->t[i].offset, want,
                                        n * sizeof *want),
                      "%s is not the %s q/k_proj", name, permuted ? "permuted" : "unpermuted");
            free(src);
            free(want);
        }
}

TEST(exports_read_back)
{
    for (size_t mi = 0; mi < sizeof cases / sizeof *cases; mi++) {
        const model_case *mc = &cases[mi];
        llama_model m;
        int rc = llama_model_load(&m, mc->dir);
        CHECK_MSG(rc == 0, "%s", err_message(rc));
        if (rc) continue;
        const llama_config *c = &m.config;
        gguf_type types[] = {GGUF_F32, GGUF_Q8_0};
        for (int ti = 0; ti < 2; ti++) {
            char path[160];
            snprintf(path, sizeof path, "%s/m%zu-%d.gguf", tmpdir, mi, ti);
            size_t n_tensors = 0;
            rc = export_gguf_llama(&m, mc->dir, path, types[ti], &n_tensors);
            CHECK_MSG(rc == 0, "%s: %s", mc->dir, err_message(rc));
            gguf_file f;
            CHECK(gguf_read(&f, path) == 0);
            size_t per_layer = 9 + (mc->qk_norm ? 2 : 0) + (mc->qkv_bias ? 3 : 0);
            size_t want = c->n_layer * per_layer + 2 + !mc->tied + mc->llama3;
            CHECK_MSG(f.n_tensors == n_tensors && n_tensors == want,
                      "%s: %llu tensors, said %zu, expected %zu", mc->dir,
                      (unsigned long long)f.n_tensors, n_tensors, want);
            char key[96];
            CHECK(kv_str_is(&f, "general.architecture", mc->arch));
            CHECK(kv_str_is(&f, "tokenizer.ggml.model", mc->tok_model));
            snprintf(key, sizeof key, "%s.block_count", mc->arch);
            CHECK(kv_u32(&f, key) == c->n_layer);
            snprintf(key, sizeof key, "%s.attention.head_count_kv", mc->arch);
            CHECK(kv_u32(&f, key) == c->n_kv_head);
            snprintf(key, sizeof key, "%s.attention.key_length", mc->arch);
            CHECK(kv_u32(&f, key) == c->head_dim);
            snprintf(key, sizeof key, "%s.rope.dimension_count", mc->arch);
            CHECK(kv_u32(&f, key) == c->head_dim);
            int tk = kv_find(&f, "tokenizer.ggml.tokens");
            CHECK(tk >= 0 && f.kv[tk].n == c->vocab_size);
            CHECK((kv_find(&f, "tokenizer.ggml.scores") >= 0) == !strcmp(mc->tok_model, "llama"));
            CHECK((kv_find(&f, "tokenizer.ggml.merges") >= 0) == !strcmp(mc->tok_model, "gpt2"));
            CHECK((tensor_find(&f, "rope_freqs.weight") >= 0) == mc->llama3);
            CHECK((tensor_find(&f, "output.weight") >= 0) == !mc->tied);
            CHECK((tensor_find(&f, "blk.0.attn_q.bias") >= 0) == mc->qkv_bias);
            CHECK((tensor_find(&f, "blk.1.attn_k_norm.weight") >= 0) == mc->qk_norm);
            check_table(&f, c, types[ti]);
            if (types[ti] == GGUF_F32) check_qk_data(&f, &m, mc->permuted);
            free(f.p);
        }
        llama_model_free(&m);
    }
}

int main(void)
{
    if (!mkdtemp(tmpdir)) return 1;
    RUN(q8_0_matches_its_naive_twin);
    RUN(qk_permutation_matches_numpy_reshape_swapaxes);
    RUN(f16_and_bf16_round_to_nearest_even);
    RUN(exports_read_back);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    return harness_summary();
}
