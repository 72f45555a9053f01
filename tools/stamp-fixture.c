/* stamp-fixture: builds things that command tests need, through the
 * library's own interfaces, so that a test can start from a known state
 * without running the whole pipeline:
 *
 *   stamp-fixture model --out DIR [--vocab DIR] [--positions N]
 *                 [--embd C] [--layers L] [--heads H] [--seed S]
 *       a random GPT-2 (gpt2_model_save; 2 heads by default) with the
 *       tokenizer files of --vocab (default tests/data/gpt2-vocab:
 *       GPT-2's own), so that real text tokenizes as GPT-2 does. Small
 *       by default; GPT-2 medium's shape is --layers 24 --embd 1024
 *       --heads 16 --positions 1024, XL's --layers 48 --embd 1600
 *       --heads 25 --positions 1024.
 *   stamp-fixture llama --out DIR --tokenizer FILE [--arch A] [--dtype D]
 *                 [--shards N] [--layers L] [--embd C] [--ff F]
 *                 [--heads H] [--kv-heads K] [--seed S] [--rope-llama3]
 *                 [--config FILE]
 *       a small random model of the Llama family (A: llama, mistral,
 *       qwen2 with q/k/v biases, qwen3 with q/k norms and untied; D: bf16,
 *       f16, f32) in N shards with model.safetensors.index.json (N > 1)
 *       or one model.safetensors, its vocabulary the tokenizer.json's,
 *       which is copied in. Matrices N(0, 1/in_features), embeddings
 *       N(0, 1), norms 1. --config FILE: the shape and architecture of
 *       that config.json (copied in as it is; Llama 3.2 1B's, say)
 *       instead of the options.
 *   stamp-fixture tensor-diff DIR1 DIR2
 *       the names of the tensors whose dtype, shape or bytes differ
 *       between two model directories (one file or shards each), one a
 *       line, and those only one of them has; exit 0 either way.
 *   stamp-fixture commit --store DIR [-m MSG] [--limit N] [--time T]
 *                 [--scores ES,PS,NS]
 *       a commit record (docs/commit-record.md) for the first N queued
 *       versions (all by default), which become COMMITTED; HEAD moves to
 *       it. No weights change: log, show and status tests need records.
 *   stamp-fixture head --store DIR N
 *       sets HEAD (what a reset does to it).
 *   stamp-fixture hold --store DIR SECONDS
 *       holds a write transaction (and so the writer lock) that long,
 *       printing "holding" once it has it, then aborts it.
 *
 * Not part of stamp: a test tool. Errors go to stderr, exit 1. */
#include "base/blas_cpu.h"
#include "base/errors.h"
#include "base/splitmix.h"
#include "model/gpt2.h"
#include "model/hf_weights.h"
#include "model/llama_config.h"
#include "model/safetensors.h"
#include "store/store.h"
#include "model/tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int die(int rc)
{
    fprintf(stderr, "stamp-fixture: %s\n", err_message(rc));
    return 1;
}

static const char *arg_value(int argc, char **argv, const char *name,
                             const char *dflt)
{
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return dflt;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[65536];
    size_t n;
    int rc = 0;
    if (!in || !out) rc = err_set(ERR_IO, "cannot copy '%s' to '%s': %s",
                                  from, to, strerror(errno));
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = err_set(ERR_IO, "cannot write '%s'", to);
    if (in) fclose(in);
    if (out && fclose(out) && !rc) rc = err_set(ERR_IO, "cannot write '%s'", to);
    return rc;
}

static int make_model(int argc, char **argv)
{
    const char *out = arg_value(argc, argv, "--out", NULL);
    const char *vocab = arg_value(argc, argv, "--vocab", "tests/data/gpt2-vocab");
    if (!out) {
        fprintf(stderr, "stamp-fixture model: --out DIR is required\n");
        return 2;
    }
    tokenizer *tok = NULL;
    int rc = tokenizer_open_dir(&tok, vocab);
    if (rc) return die(rc);
    gpt2_config c = {0};
    c.n_layer = (size_t)atoi(arg_value(argc, argv, "--layers", "2"));
    c.n_embd = (size_t)atoi(arg_value(argc, argv, "--embd", "8"));
    c.n_head = (size_t)atoi(arg_value(argc, argv, "--heads", "2"));
    c.n_positions = (size_t)atoi(arg_value(argc, argv, "--positions", "64"));
    c.vocab_size = tokenizer_vocab_size(tok);
    c.n_inner = 4 * c.n_embd;
    c.layer_norm_epsilon = 1e-5f;
    tokenizer_close(tok);
    gpt2_model m = {0};
    char from[4096], to[4096];
    mkdir(out, 0755);
    if ((rc = gpt2_model_init(&m, &c))) return die(rc);
    gpt2_model_init_random(&m, strtoull(arg_value(argc, argv, "--seed", "1"),
                                        NULL, 10));
    rc = gpt2_model_save(&m, out);
    gpt2_model_free(&m);
    if (rc) return die(rc);
    const char *files[] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s", vocab, files[i]);
        snprintf(to, sizeof to, "%s/%s", out, files[i]);
        if ((rc = copy_file(from, to))) return die(rc);
    }
    return 0;
}

/* ---- stamp-fixture llama ---------------------------------------------- */

typedef struct {
    st_write_tensor *t;
    float **data;
    int *shard;
    size_t n, cap;
    uint64_t rng;
    st_dtype dtype;
} fx_tensors;

static double fx_normal(uint64_t *s)
{
    double u = splitmix_unit(s), v = splitmix_unit(s);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* Appends a tensor of shape (d0[, d1]): N(0, std^2), or all `fill` when
 * std is 0. */
static int fx_add(fx_tensors *x, int shard, const char *name, size_t d0,
                  size_t d1, double std, float fill)
{
    if (x->n == x->cap) {
        x->cap = 2 * x->cap + 16;
        x->t = realloc(x->t, x->cap * sizeof *x->t);
        x->data = realloc(x->data, x->cap * sizeof *x->data);
        x->shard = realloc(x->shard, x->cap * sizeof *x->shard);
        if (!x->t || !x->data || !x->shard) return ERR_NOMEM;
    }
    size_t n = d0 * (d1 ? d1 : 1);
    float *d = malloc(n * sizeof *d);
    if (!d) return ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        d[i] = std > 0 ? (float)(std * fx_normal(&x->rng)) : fill;
    st_write_tensor *t = &x->t[x->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->data = d;
    t->dtype = x->dtype;
    x->data[x->n] = d;
    x->shard[x->n++] = shard;
    return t->name ? 0 : ERR_NOMEM;
}

static int fx_write(fx_tensors *x, const char *out, int shards)
{
    char path[4096], file[64];
    json_t *map = json_object();
    st_write_tensor *part = malloc((x->n + 1) * sizeof *part);
    size_t total = 0;
    int rc = map && part ? 0 : ERR_NOMEM;
    for (int s = 0; !rc && s < shards; s++) {
        size_t k = 0;
        if (shards == 1) snprintf(file, sizeof file, "model.safetensors");
        else snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors",
                      s + 1, shards);
        for (size_t i = 0; i < x->n; i++)
            if (x->shard[i] == s) {
                part[k++] = x->t[i];
                json_object_set_new(map, x->t[i].name, json_string(file));
                total += (x->t[i].shape[0] * (x->t[i].ndim > 1
                          ? x->t[i].shape[1] : 1)) * (x->dtype == ST_F32 ? 4 : 2);
            }
        snprintf(path, sizeof path, "%s/%s", out, file);
        rc = safetensors_write(path, part, k);
    }
    if (!rc && shards > 1) {
        json_t *idx = json_pack("{s:{s:I},s:O}", "metadata", "total_size",
                                (json_int_t)total, "weight_map", map);
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", out);
        if (!idx || json_dump_file(idx, path, JSON_INDENT(2) | JSON_SORT_KEYS))
            rc = err_set(ERR_IO, "cannot write '%s'", path);
        json_decref(idx);
    }
    json_decref(map);
    free(part);
    return rc;
}

static int fx_config(const char *out, const char *arch, size_t L, size_t C,
                     size_t F, size_t H, size_t K, size_t D, size_t V,
                     int tied, int rope_llama3, const char *dtype)
{
    static const char *const names[][2] = {
        {"llama", "LlamaForCausalLM"}, {"mistral", "MistralForCausalLM"},
        {"qwen2", "Qwen2ForCausalLM"}, {"qwen3", "Qwen3ForCausalLM"}};
    const char *cls = NULL;
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(arch, names[i][0])) cls = names[i][1];
    if (!cls) return err_set(ERR_INVALID, "unknown --arch '%s'", arch);
    json_t *c = json_pack(
        "{s:[s],s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:b,s:s}",
        "architectures", cls, "model_type", arch, "hidden_act", "silu",
        "hidden_size", (json_int_t)C, "intermediate_size", (json_int_t)F,
        "num_hidden_layers", (json_int_t)L, "num_attention_heads",
        (json_int_t)H, "num_key_value_heads", (json_int_t)K, "head_dim",
        (json_int_t)D, "max_position_embeddings", (json_int_t)256,
        "vocab_size", (json_int_t)V, "rms_norm_eps", 1e-5, "rope_theta",
        10000.0, "tie_word_embeddings", tied, "torch_dtype", dtype);
    if (c && rope_llama3)
        json_object_set_new(c, "rope_scaling", json_pack(
            "{s:s,s:f,s:f,s:f,s:i}", "rope_type", "llama3", "factor", 8.0,
            "low_freq_factor", 1.0, "high_freq_factor", 4.0,
            "original_max_position_embeddings", 32));
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", out);
    int rc = c && !json_dump_file(c, path, JSON_INDENT(2)) ? 0
             : err_set(ERR_IO, "cannot write '%s'", path);
    json_decref(c);
    return rc;
}

static int make_llama(int argc, char **argv)
{
    const char *out = arg_value(argc, argv, "--out", NULL);
    const char *tok_file = arg_value(argc, argv, "--tokenizer", NULL);
    const char *arch = arg_value(argc, argv, "--arch", "llama");
    const char *dt = arg_value(argc, argv, "--dtype", "bf16");
    int shards = atoi(arg_value(argc, argv, "--shards", "1"));
    size_t L = (size_t)atoi(arg_value(argc, argv, "--layers", "2"));
    size_t C = (size_t)atoi(arg_value(argc, argv, "--embd", "32"));
    size_t F = (size_t)atoi(arg_value(argc, argv, "--ff", "64"));
    size_t H = (size_t)atoi(arg_value(argc, argv, "--heads", "4"));
    size_t K = (size_t)atoi(arg_value(argc, argv, "--kv-heads", "2"));
    int rope = 0;
    for (int i = 2; i < argc; i++) rope |= !strcmp(argv[i], "--rope-llama3");
    if (!out || !tok_file || shards < 1 || !L || !C || !F || !H || !K ||
        H % K || (C % H && !arg_value(argc, argv, "--config", NULL))) {
        fprintf(stderr, "stamp-fixture llama: --out DIR and --tokenizer FILE "
                "are required; sizes must fit\n");
        return 2;
    }
    fx_tensors x = {.rng = strtoull(arg_value(argc, argv, "--seed", "1"),
                                    NULL, 10)};
    x.dtype = !strcmp(dt, "f32") ? ST_F32 : !strcmp(dt, "f16") ? ST_F16
                                                                : ST_BF16;
    const char *config = arg_value(argc, argv, "--config", NULL);
    llama_config lc;
    int tied = 1;
    if (config) {
        int crc = llama_config_read(&lc, config);
        if (crc) return die(crc);
        L = lc.n_layer, C = lc.n_embd, F = lc.n_inner, H = lc.n_head;
        K = lc.n_kv_head;
        tied = lc.tie_word_embeddings;
        arch = lc.arch == LLAMA_ARCH_QWEN2 ? "qwen2"
             : lc.arch == LLAMA_ARCH_QWEN3 ? "qwen3" : "llama";
    }
    int qwen2 = !strcmp(arch, "qwen2"), qwen3 = !strcmp(arch, "qwen3");
    size_t D = config ? lc.head_dim : C / H, V;
    if (!config) tied = !qwen3;
    tokenizer *tok = NULL;
    char dir[4096], name[128], path[4096];
    snprintf(dir, sizeof dir, "%s", tok_file);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    int rc = tokenizer_open_dir(&tok, dir);
    if (rc) return die(rc);
    V = tokenizer_vocab_size(tok);
    tokenizer_close(tok);
    if (config && lc.vocab_size < V) {
        fprintf(stderr, "stamp-fixture llama: '%s' has a vocabulary of %zu, "
                "the tokenizer %zu\n", config, lc.vocab_size, V);
        return 1;
    }
    if (config) V = lc.vocab_size;
    mkdir(out, 0755);
    rc = fx_add(&x, 0, "model.embed_tokens.weight", V, C, 1.0, 0);
    for (size_t l = 0; !rc && l < L; l++) {
        int s = (int)(l * (size_t)shards / L);
        double in_c = 1 / sqrt((double)C), in_f = 1 / sqrt((double)F);
#define T(n, d0, d1, sd, fl) \
    (snprintf(name, sizeof name, "model.layers.%zu.%s", l, n), \
     rc = rc ? rc : fx_add(&x, s, name, d0, d1, sd, fl))
        T("input_layernorm.weight", C, 0, 0, 1);
        T("self_attn.q_proj.weight", H * D, C, in_c, 0);
        T("self_attn.k_proj.weight", K * D, C, in_c, 0);
        T("self_attn.v_proj.weight", K * D, C, in_c, 0);
        if (qwen2) {
            T("self_attn.q_proj.bias", H * D, 0, 0.1, 0);
            T("self_attn.k_proj.bias", K * D, 0, 0.1, 0);
            T("self_attn.v_proj.bias", K * D, 0, 0.1, 0);
        }
        if (qwen3) {
            T("self_attn.q_norm.weight", D, 0, 0, 1);
            T("self_attn.k_norm.weight", D, 0, 0, 1);
        }
        T("self_attn.o_proj.weight", C, H * D, 1 / sqrt((double)(H * D)), 0);
        T("post_attention_layernorm.weight", C, 0, 0, 1);
        T("mlp.gate_proj.weight", F, C, in_c, 0);
        T("mlp.up_proj.weight", F, C, in_c, 0);
        T("mlp.down_proj.weight", C, F, in_f, 0);
#undef T
    }
    if (!rc) rc = fx_add(&x, shards - 1, "model.norm.weight", C, 0, 0, 1);
    if (!rc && !tied)
        rc = fx_add(&x, shards - 1, "lm_head.weight", V, C, 1 / sqrt((double)C), 0);
    if (!rc) rc = fx_write(&x, out, shards);
    snprintf(path, sizeof path, "%s/config.json", out);
    if (!rc && config) rc = copy_file(config, path);
    else if (!rc) rc = fx_config(out, arch, L, C, F, H, K, D, V, tied, rope, dt);
    snprintf(path, sizeof path, "%s/tokenizer.json", out);
    if (!rc) rc = copy_file(tok_file, path);
    for (size_t i = 0; i < x.n; i++) {
        free((char *)x.t[i].name);
        free(x.data[i]);
    }
    free(x.t);
    free(x.data);
    free(x.shard);
    return rc ? die(rc) : 0;
}

static int tensor_diff(int argc, char **argv)
{
    hf_weights *a = NULL, *b = NULL;
    if (argc != 4) {
        fprintf(stderr, "stamp-fixture tensor-diff DIR1 DIR2\n");
        return 2;
    }
    int rc = hf_weights_open(&a, argv[2]);
    if (!rc) rc = hf_weights_open(&b, argv[3]);
    for (size_t i = 0; !rc && i < hf_weights_count(a); i++) {
        const st_tensor *x = hf_weights_at(a, i, NULL);
        const st_tensor *y = hf_weights_find(b, x->name, NULL);
        if (!y || x->dtype != y->dtype || x->nbytes != y->nbytes ||
            x->ndim != y->ndim ||
            memcmp(x->shape, y->shape, sizeof x->shape) ||
            memcmp(x->data, y->data, x->nbytes))
            printf("%s\n", x->name);
    }
    for (size_t i = 0; !rc && i < hf_weights_count(b); i++) {
        const st_tensor *y = hf_weights_at(b, i, NULL);
        if (!hf_weights_find(a, y->name, NULL)) printf("%s\n", y->name);
    }
    hf_weights_close(a);
    hf_weights_close(b);
    return rc ? die(rc) : 0;
}

static int make_commit(int argc, char **argv)
{
    const char *dir = arg_value(argc, argv, "--store", NULL);
    const char *msg = arg_value(argc, argv, "-m", "fixture commit");
    const char *when = arg_value(argc, argv, "--time", "2026-11-29T04:00:00Z");
    const char *scores = arg_value(argc, argv, "--scores", "1,0.9,0.8");
    size_t limit = (size_t)atoi(arg_value(argc, argv, "--limit", "0"));
    double es = 1, ps = 0.9, ns = 0.8;
    if (!dir || sscanf(scores, "%lf,%lf,%lf", &es, &ps, &ns) != 3) {
        fprintf(stderr, "stamp-fixture commit: --store DIR is required\n");
        return 2;
    }
    store *s = NULL;
    store_txn *t = NULL;
    store_version *q = NULL;
    size_t n = 0;
    uint64_t id, parent;
    char *text = NULL;
    int rc;
    if ((rc = store_open(&s, dir)) || (rc = store_txn_begin(s, &t, 1)) ||
        (rc = store_queue_list(t, limit, &q, &n)) ||
        (rc = store_commit_next_id(t, &id)) || (rc = store_head(t, &parent)))
        goto out;
    json_t *versions = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(versions, json_integer((json_int_t)q[i].id));
        if ((rc = store_version_set_state(t, q[i].id, VERSION_COMMITTED, id)))
            goto out;
    }
    json_t *rec = json_pack(
        "{s:I,s:I,s:s,s:s,s:s,s:s,s:o,s:[],s:I,s:[],s:{s:f},"
        "s:[{s:i,s:s,s:f,s:f,s:f,s:i}],s:{},"
        "s:{s:{s:f,s:f,s:f},s:{s:f,s:f,s:f}},s:{s:f},s:i}",
        "id", (json_int_t)id, "parent", (json_int_t)parent, "kind", "commit",
        "time", when, "message", msg, "method", "memit", "versions", versions,
        "superseded", "n_facts", (json_int_t)n, "failed", "hparams",
        "mom2_update_weight", 20000.0, "layers", "layer", 1, "tensor",
        "h.1.mlp.c_proj.weight", "delta_norm", 0.125, "rel_norm", 0.003,
        "max_abs", 0.01, "rank", (int)n, "tensors", "scores", "before", "es",
        0.1, "ps", 0.1, "ns", 0.9, "after", "es", es, "ps", ps, "ns", ns,
        "timings", "total", 1.5, "threads", 2);
    text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text) {
        rc = err_set(ERR_NOMEM, "cannot build the record");
        goto out;
    }
    if ((rc = store_commit_put(t, id, text)) || (rc = store_head_set(t, id)))
        goto out;
    rc = store_txn_commit(t);
    t = NULL;
    if (!rc) printf("%llu\n", (unsigned long long)id);
out:
    free(text);
    store_versions_free(q, n);
    store_txn_abort(t);
    store_close(s);
    return rc ? die(rc) : 0;
}

static int set_head(int argc, char **argv)
{
    const char *dir = arg_value(argc, argv, "--store", NULL);
    if (!dir || argc < 5) {
        fprintf(stderr, "usage: stamp-fixture head --store DIR N\n");
        return 2;
    }
    store *s = NULL;
    store_txn *t = NULL;
    int rc;
    if (!(rc = store_open(&s, dir)) && !(rc = store_txn_begin(s, &t, 1)) &&
        !(rc = store_head_set(t, strtoull(argv[argc - 1], NULL, 10)))) {
        rc = store_txn_commit(t);
        t = NULL;
    }
    store_txn_abort(t);
    store_close(s);
    return rc ? die(rc) : 0;
}

static int hold(int argc, char **argv)
{
    const char *dir = arg_value(argc, argv, "--store", NULL);
    if (!dir || argc < 5) {
        fprintf(stderr, "usage: stamp-fixture hold --store DIR SECONDS\n");
        return 2;
    }
    store *s = NULL;
    store_txn *t = NULL;
    int rc;
    if (!(rc = store_open(&s, dir)) && !(rc = store_txn_begin(s, &t, 1))) {
        printf("holding\n");
        fflush(stdout);
        struct timespec ts = {atoi(argv[argc - 1]), 0};
        nanosleep(&ts, NULL);
    }
    store_txn_abort(t);
    store_close(s);
    return rc ? die(rc) : 0;
}

int main(int argc, char **argv)
{
    blas_cpu_use_best_kernels(argv);
    if (argc >= 2 && !strcmp(argv[1], "hold")) return hold(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "model")) return make_model(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "llama")) return make_llama(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "tensor-diff")) return tensor_diff(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "commit")) return make_commit(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "head")) return set_head(argc, argv);
    fprintf(stderr, "usage: stamp-fixture model|llama|tensor-diff|commit|head|hold ... (see the "
            "source)\n");
    return 2;
}
