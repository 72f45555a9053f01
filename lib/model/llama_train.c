/* llama_train: the trainable Llama-family model (llama_train.h): one F32
 * buffer of every parameter, the tensor table that lays it out (the same
 * walk binds the model's pointers, lists the tensors and sizes the
 * buffer, so the three cannot disagree), the initialisation, the save to
 * a Hugging Face directory, and the weight-gradient kernels
 * llama_backward_params uses beyond linalg's. */
#include "model/llama_train.h"
#include "model/llama_train_naive.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/splitmix.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- the layout ---------------------------------------------------------- */

typedef struct {
    llama_tensor *out; /* the table, or NULL */
    size_t max, n;     /* room in out; tensors walked */
    size_t off;        /* floats so far */
    float *base;       /* the buffer to bind into, or NULL */
} walker;

/* Adds a tensor; returns where it is in the buffer (NULL without one). */
static const float *add(walker *w, const char *name, int ndim, size_t d0,
                        size_t d1, int matrix)
{
    size_t numel = ndim == 1 ? d0 : d0 * d1;
    if (w->out && w->n < w->max) {
        llama_tensor *t = &w->out[w->n];
        snprintf(t->name, sizeof t->name, "%s", name);
        t->ndim = ndim;
        t->shape[0] = d0;
        t->shape[1] = ndim == 1 ? 0 : d1;
        t->offset = w->off;
        t->numel = numel;
        t->matrix = matrix;
    }
    const float *at = w->base ? w->base + w->off : NULL;
    w->n++;
    w->off += numel;
    return at;
}

static llama_mat add_mat(walker *w, const char *name, size_t rows,
                         size_t cols)
{
    return (llama_mat){add(w, name, 2, rows, cols, 1), LINALG_F32, rows,
                       cols};
}

static void walk_layer(walker *w, const llama_config *c, size_t l,
                       llama_layer *y)
{
    size_t C = c->n_embd, F = c->n_inner, D = c->head_dim;
    size_t QD = c->n_head * D, KD = c->n_kv_head * D;
    char n[96];
#define N(s) (snprintf(n, sizeof n, "model.layers.%zu.%s", l, s), n)
    y->attn_norm = add(w, N("input_layernorm.weight"), 1, C, 0, 0);
    y->q = add_mat(w, N("self_attn.q_proj.weight"), QD, C);
    if (c->qkv_bias) y->q_bias = add(w, N("self_attn.q_proj.bias"), 1, QD, 0, 0);
    y->k = add_mat(w, N("self_attn.k_proj.weight"), KD, C);
    if (c->qkv_bias) y->k_bias = add(w, N("self_attn.k_proj.bias"), 1, KD, 0, 0);
    y->v = add_mat(w, N("self_attn.v_proj.weight"), KD, C);
    if (c->qkv_bias) y->v_bias = add(w, N("self_attn.v_proj.bias"), 1, KD, 0, 0);
    if (c->qk_norm) {
        y->q_norm = add(w, N("self_attn.q_norm.weight"), 1, D, 0, 0);
        y->k_norm = add(w, N("self_attn.k_norm.weight"), 1, D, 0, 0);
    }
    y->o = add_mat(w, N("self_attn.o_proj.weight"), C, QD);
    if (c->o_bias) y->o_bias = add(w, N("self_attn.o_proj.bias"), 1, C, 0, 0);
    y->mlp_norm = add(w, N("post_attention_layernorm.weight"), 1, C, 0, 0);
    y->gate = add_mat(w, N("mlp.gate_proj.weight"), F, C);
    if (c->mlp_bias) y->gate_bias = add(w, N("mlp.gate_proj.bias"), 1, F, 0, 0);
    y->up = add_mat(w, N("mlp.up_proj.weight"), F, C);
    if (c->mlp_bias) y->up_bias = add(w, N("mlp.up_proj.bias"), 1, F, 0, 0);
    y->down = add_mat(w, N("mlp.down_proj.weight"), C, F);
    if (c->mlp_bias) y->down_bias = add(w, N("mlp.down_proj.bias"), 1, C, 0, 0);
#undef N
}

/* Walks the layout of c; binds m's pointers when m is given (its
 * params and layers allocated). Returns the tensor count. */
static size_t walk(walker *w, const llama_config *c, llama_model *m)
{
    llama_layer scratch;
    llama_mat embed = add_mat(w, "model.embed_tokens.weight", c->vocab_size,
                              c->n_embd);
    for (size_t l = 0; l < c->n_layer; l++) {
        memset(&scratch, 0, sizeof scratch);
        walk_layer(w, c, l, m ? &m->layers[l] : &scratch);
    }
    const float *norm = add(w, "model.norm.weight", 1, c->n_embd, 0, 0);
    llama_mat head = embed;
    if (!c->tie_word_embeddings)
        head = add_mat(w, "lm_head.weight", c->vocab_size, c->n_embd);
    if (m) {
        m->embed = embed;
        m->norm = norm;
        m->lm_head = head;
    }
    return w->n;
}

size_t llama_model_tensors(const llama_model *m, llama_tensor *out,
                           size_t max)
{
    walker w = {.out = out, .max = max};
    return walk(&w, &m->config, NULL);
}

/* ---- init ------------------------------------------------------------------ */

int llama_model_init(llama_model *m, const llama_config *c)
{
    memset(m, 0, sizeof *m);
    if (!c->n_layer || !c->n_embd || !c->n_inner || !c->n_head ||
        !c->n_kv_head || !c->head_dim || !c->vocab_size || !c->n_positions ||
        c->head_dim % 2 || c->n_head % c->n_kv_head || !(c->rms_norm_eps > 0))
        return err_set(ERR_INVALID, "inconsistent Llama configuration (a "
                       "size is 0, head_dim is odd or num_key_value_heads "
                       "does not divide num_attention_heads)");
    m->config = *c;
    walker w = {0};
    walk(&w, c, NULL);
    m->n_params = w.off;
    m->params = calloc(w.off, sizeof *m->params);
    m->layers = calloc(c->n_layer, sizeof *m->layers);
    m->owned = calloc(c->n_layer, sizeof *m->owned);
    m->inv_freq = malloc(c->head_dim / 2 * sizeof *m->inv_freq);
    if (!m->params || !m->layers || !m->owned || !m->inv_freq) {
        llama_model_free(m);
        return err_set(ERR_NOMEM, "no memory for a Llama model of %zu "
                       "parameters", w.off);
    }
    llama_config_inv_freq(c, m->inv_freq);
    walker b = {.base = m->params};
    walk(&b, c, m);
    return 0;
}

int llama_model_init_random(llama_model *m, const llama_config *c,
                            uint64_t seed)
{
    int rc = llama_model_init(m, c);
    if (rc) return rc;
    size_t n = llama_model_tensors(m, NULL, 0);
    llama_tensor *t = malloc(n * sizeof *t);
    if (!t) {
        llama_model_free(m);
        return err_set(ERR_NOMEM, "no memory for the tensor table");
    }
    llama_model_tensors(m, t, n);
    uint64_t s = seed;
    double resid = 0.02 / sqrt(2.0 * (double)c->n_layer);
    for (size_t i = 0; i < n; i++) {
        float *p = m->params + t[i].offset;
        int is_norm = strstr(t[i].name, "norm.weight") != NULL;
        int is_resid = strstr(t[i].name, "o_proj.weight") ||
                       strstr(t[i].name, "down_proj.weight");
        double std = is_resid ? resid : 0.02;
        for (size_t j = 0; j < t[i].numel; j++)
            p[j] = is_norm         ? 1.0f
                   : !t[i].matrix  ? 0.0f
                                   : (float)(std * splitmix_normal(&s));
    }
    free(t);
    return 0;
}

/* ---- save ------------------------------------------------------------------ */

static const char *model_type(llama_arch a)
{
    switch (a) {
    case LLAMA_ARCH_MISTRAL: return "mistral";
    case LLAMA_ARCH_QWEN2: return "qwen2";
    case LLAMA_ARCH_QWEN3: return "qwen3";
    default: return "llama";
    }
}

static json_t *id_or_null(int id)
{
    return id >= 0 ? json_integer(id) : json_null();
}

static json_t *config_json(const llama_config *c, st_dtype dtype)
{
    json_t *r = json_object();
    if (!r) return NULL;
    json_t *arch = json_array();
    json_array_append_new(arch, json_string(llama_arch_name(c->arch)));
    json_object_set_new(r, "architectures", arch);
    json_object_set_new(r, "model_type", json_string(model_type(c->arch)));
#define SZ(k, v) json_object_set_new(r, k, json_integer((json_int_t)(v)))
    SZ("hidden_size", c->n_embd);
    SZ("intermediate_size", c->n_inner);
    SZ("num_hidden_layers", c->n_layer);
    SZ("num_attention_heads", c->n_head);
    SZ("num_key_value_heads", c->n_kv_head);
    SZ("head_dim", c->head_dim);
    SZ("vocab_size", c->vocab_size);
    SZ("max_position_embeddings", c->n_positions);
    if (c->sliding_window) SZ("sliding_window", c->sliding_window);
#undef SZ
    /* the float's shortest decimal (1e-05, not 9.99999975e-06) */
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)c->rms_norm_eps);
        if ((float)strtod(buf, NULL) == c->rms_norm_eps) break;
    }
    json_object_set_new(r, "rms_norm_eps", json_real(strtod(buf, NULL)));
    json_object_set_new(r, "rope_theta", json_real(c->rope_theta));
    if (c->rope_llama3)
        json_object_set_new(r, "rope_scaling", json_pack(
            "{s:s, s:f, s:f, s:f, s:I}", "rope_type", "llama3",
            "factor", c->rope_factor, "low_freq_factor",
            c->rope_low_freq_factor, "high_freq_factor",
            c->rope_high_freq_factor, "original_max_position_embeddings",
            (json_int_t)c->rope_original_max_positions));
    json_object_set_new(r, "hidden_act", json_string("silu"));
    json_object_set_new(r, "tie_word_embeddings",
                        json_boolean(c->tie_word_embeddings));
    if (c->arch == LLAMA_ARCH_LLAMA || c->arch == LLAMA_ARCH_QWEN3)
        json_object_set_new(r, "attention_bias", json_boolean(c->o_bias));
    if (c->arch == LLAMA_ARCH_LLAMA)
        json_object_set_new(r, "mlp_bias", json_boolean(c->mlp_bias));
    json_object_set_new(r, "bos_token_id", id_or_null(c->bos_token_id));
    json_object_set_new(r, "eos_token_id",
                        id_or_null(c->n_eos ? c->eos_token_ids[0] : -1));
    json_object_set_new(r, "initializer_range", json_real(0.02));
    json_object_set_new(r, "torch_dtype",
                        json_string(dtype == ST_BF16  ? "bfloat16"
                                    : dtype == ST_F16 ? "float16"
                                                      : "float32"));
    json_object_set_new(r, "use_cache", json_true());
    return r;
}

static int write_config(const llama_config *c, st_dtype dtype,
                        const char *path)
{
    json_t *root = config_json(c, dtype);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS |
                                             JSON_REAL_PRECISION(9))
                      : NULL;
    atomic_file *af = NULL;
    int rc = 0;
    if (!text) {
        rc = err_set(ERR_NOMEM, "'%s': cannot build the JSON", path);
        goto out;
    }
    if ((rc = atomic_file_open(&af, path)) ||
        (rc = atomic_file_write(af, text, strlen(text))) ||
        (rc = atomic_file_write(af, "\n", 1)))
        goto out;
    rc = atomic_file_commit(af);
    af = NULL;
out:
    atomic_file_abort(af);
    free(text);
    json_decref(root);
    return rc;
}

int llama_model_save(const llama_model *m, const char *dir, st_dtype dtype)
{
    if (!m->params)
        return err_set(ERR_INVALID, "'%s': only a trainable Llama model can "
                       "be saved", dir);
    size_t n = llama_model_tensors(m, NULL, 0), plen = strlen(dir) + 32;
    llama_tensor *t = malloc(n * sizeof *t);
    st_write_tensor *w = calloc(n, sizeof *w);
    char *path = malloc(plen);
    int rc = 0;
    if (!t || !w || !path) {
        rc = err_set(ERR_NOMEM, "no memory to save a model to '%s'", dir);
        goto out;
    }
    if (mkdir(dir, 0777) && errno != EEXIST) {
        rc = err_set(ERR_IO, "'%s': cannot create directory: %s", dir,
                     strerror(errno));
        goto out;
    }
    llama_model_tensors(m, t, n);
    for (size_t i = 0; i < n; i++) {
        w[i].name = t[i].name;
        w[i].ndim = t[i].ndim;
        w[i].shape[0] = t[i].shape[0];
        w[i].shape[1] = t[i].shape[1];
        w[i].data = m->params + t[i].offset;
        w[i].dtype = dtype;
    }
    snprintf(path, plen, "%s/model.safetensors", dir);
    if ((rc = safetensors_write(path, w, n))) goto out;
    snprintf(path, plen, "%s/config.json", dir);
    rc = write_config(&m->config, dtype, path);
out:
    free(t);
    free(w);
    free(path);
    return rc;
}

/* ---- weight-gradient kernels ----------------------------------------------- */

void llama_rmsnorm_weight_backward(float *dweight, const float *dout,
                                   const float *inp, const float *rstd,
                                   size_t N, size_t C)
{
#pragma omp parallel for if (!omp_in_parallel() && N * C > 65536)
    for (size_t i = 0; i < C; i++) {
        float s = 0;
        for (size_t n = 0; n < N; n++)
            s += dout[n * C + i] * inp[n * C + i] * rstd[n];
        dweight[i] += s;
    }
}

void llama_bias_backward(float *dbias, const float *dout, size_t N,
                         size_t OUT)
{
#pragma omp parallel for if (!omp_in_parallel() && N * OUT > 65536)
    for (size_t o = 0; o < OUT; o++) {
        float s = 0;
        for (size_t n = 0; n < N; n++) s += dout[n * OUT + o];
        dbias[o] += s;
    }
}

void llama_embedding_backward(float *dtable, const float *dout,
                              const int *inp, size_t N, size_t C)
{
    for (size_t n = 0; n < N; n++) {
        float *d = dtable + (size_t)inp[n] * C;
        const float *g = dout + n * C;
        for (size_t c = 0; c < C; c++) d[c] += g[c];
    }
}

/* ---- naive twins (llama_train_naive.h) ------------------------------------- */

void llama_rmsnorm_weight_backward_naive(float *dweight, const float *dout,
                                         const float *inp, const float *rstd,
                                         size_t N, size_t C)
{
    for (size_t i = 0; i < C; i++) {
        double s = 0;
        for (size_t n = 0; n < N; n++)
            s += (double)dout[n * C + i] * inp[n * C + i] * rstd[n];
        dweight[i] = (float)(dweight[i] + s);
    }
}

void llama_bias_backward_naive(float *dbias, const float *dout, size_t N,
                               size_t OUT)
{
    for (size_t o = 0; o < OUT; o++) {
        double s = 0;
        for (size_t n = 0; n < N; n++) s += dout[n * OUT + o];
        dbias[o] = (float)(dbias[o] + s);
    }
}

void llama_embedding_backward_naive(float *dtable, const float *dout,
                                    const int *inp, size_t N, size_t C)
{
    /* each id once, at its first row: the sum of its rows in double */
    for (size_t n0 = 0; n0 < N; n0++) {
        size_t first = 0;
        while (inp[first] != inp[n0]) first++;
        if (first != n0) continue;
        for (size_t c = 0; c < C; c++) {
            double s = 0;
            for (size_t n = n0; n < N; n++)
                if (inp[n] == inp[n0]) s += dout[n * C + c];
            float *d = dtable + (size_t)inp[n0] * C + c;
            *d = (float)(*d + s);
        }
    }
}
