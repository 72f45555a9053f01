/* llama: the Llama family's network (see llama.h). The matrices stay in
 * the maps of hf_weights; the model owns only the F32 copies of the
 * vectors (norm weights and biases, a few per block) and whatever down_proj
 * matrices MEMIT asked to own. The layers are the linalg kernels; this
 * file owns the wiring: loading and checking the tensors, the activation
 * workspace, the forward pass with MEMIT's partial passes and hook, and
 * the backward pass: to the hook, or with weight gradients into a
 * trainable model (llama_train.h) down to the embedding.
 *
 * The workspace follows gpt2.c's: per-layer buffers of the workspace's
 * maximum B x T rows, so a pass over fewer tokens keeps each layer's
 * block contiguous; the hook's addition goes to its own buffer, never
 * into the stored block output; the head runs on the logit rows only. A
 * pass with row ranges computes only the rows in the ranges, compactly,
 * and scatters q, k and v into the full layout where the attention also
 * finds the earlier positions' keys and values (unchanged since the
 * earlier pass: the hook adds nothing before the ranges). With
 * LLAMA_ACTS_FORWARD_ONLY every buffer but the keys and the block
 * outputs has a layer stride of 0: the layers share it. A workspace from
 * first_layer > 0 serves backward passes to a hook that compute input
 * gradients only: it keeps per layer just what those read (the norms'
 * inputs and statistics, q, k, v, the attention weights, gate and up),
 * from first_layer up, and the block outputs from first_layer - 1 up;
 * what only weight gradients read (the norms' outputs, the attention's
 * output, the keys) shares one slot between all layers. */
#include "model/llama.h"
#include "model/llama_train.h"
#include "base/errors.h"
#include "base/linalg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- loading ------------------------------------------------------------ */

static void format_shape(char *buf, size_t size, const size_t *shape,
                         int ndim)
{
    size_t o = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && o < size; d++)
        o += (size_t)snprintf(buf + o, size - o, "%s%zu", d ? ", " : "",
                              shape[d]);
    if (o < size) snprintf(buf + o, size - o, "]");
}

static linalg_dtype dtype_of(st_dtype d)
{
    return d == ST_F32 ? LINALG_F32 : d == ST_F16 ? LINALG_F16 : LINALG_BF16;
}

/* The tensor `name` with the given shape (ndim 1 or 2). */
static int find_tensor(const llama_model *m, const char *name, int ndim,
                       size_t d0, size_t d1, const st_tensor **out)
{
    const char *file;
    const st_tensor *t = hf_weights_find(m->weights, name, &file);
    if (!t)
        return err_set(ERR_FORMAT, "'%s': missing tensor '%s'",
                       hf_weights_path(m->weights), name);
    size_t want[2] = {d0, d1};
    int ok = t->ndim == ndim && t->shape[0] == d0 &&
             (ndim == 1 || t->shape[1] == d1);
    if (!ok) {
        char have[128], expect[64];
        format_shape(have, sizeof have, t->shape, t->ndim);
        format_shape(expect, sizeof expect, want, ndim);
        return err_set(ERR_FORMAT, "'%s': tensor '%s' has shape %s, "
                       "config.json implies %s", file, name, have, expect);
    }
    *out = t;
    return 0;
}

static int get_mat(const llama_model *m, const char *name, size_t rows,
                   size_t cols, llama_mat *out)
{
    const st_tensor *t;
    int rc = find_tensor(m, name, 2, rows, cols, &t);
    if (rc) return rc;
    *out = (llama_mat){t->data, dtype_of(t->dtype), rows, cols};
    return 0;
}

/* Converts the vector `name` of n floats into *next and advances it. */
static int get_vec(const llama_model *m, const char *name, size_t n,
                   float **next, const float **out)
{
    const st_tensor *t;
    int rc = find_tensor(m, name, 1, n, 0, &t);
    if (rc) return rc;
    safetensors_to_f32(t, *next);
    *out = *next;
    *next += n;
    return 0;
}

static size_t vector_floats(const llama_config *c)
{
    size_t C = c->n_embd, F = c->n_inner, D = c->head_dim;
    size_t QD = c->n_head * D, KD = c->n_kv_head * D;
    size_t per = 2 * C + (c->qk_norm ? 2 * D : 0) +
                 (c->qkv_bias ? QD + 2 * KD : 0) + (c->o_bias ? C : 0) +
                 (c->mlp_bias ? 2 * F + C : 0);
    return c->n_layer * per + C;
}

static int load_layer(llama_model *m, size_t l, float **next)
{
    const llama_config *c = &m->config;
    size_t C = c->n_embd, F = c->n_inner, D = c->head_dim;
    size_t QD = c->n_head * D, KD = c->n_kv_head * D;
    llama_layer *w = &m->layers[l];
    char name[160];
    int rc = 0;
#define NAME(s) (snprintf(name, sizeof name, "model.layers.%zu.%s", l, s), name)
    if ((rc = get_mat(m, NAME("self_attn.q_proj.weight"), QD, C, &w->q)) ||
        (rc = get_mat(m, NAME("self_attn.k_proj.weight"), KD, C, &w->k)) ||
        (rc = get_mat(m, NAME("self_attn.v_proj.weight"), KD, C, &w->v)) ||
        (rc = get_mat(m, NAME("self_attn.o_proj.weight"), C, QD, &w->o)) ||
        (rc = get_mat(m, NAME("mlp.gate_proj.weight"), F, C, &w->gate)) ||
        (rc = get_mat(m, NAME("mlp.up_proj.weight"), F, C, &w->up)) ||
        (rc = get_mat(m, NAME("mlp.down_proj.weight"), C, F, &w->down)) ||
        (rc = get_vec(m, NAME("input_layernorm.weight"), C, next,
                      &w->attn_norm)) ||
        (rc = get_vec(m, NAME("post_attention_layernorm.weight"), C, next,
                      &w->mlp_norm)))
        return rc;
    if (c->qk_norm &&
        ((rc = get_vec(m, NAME("self_attn.q_norm.weight"), D, next,
                       &w->q_norm)) ||
         (rc = get_vec(m, NAME("self_attn.k_norm.weight"), D, next,
                       &w->k_norm))))
        return rc;
    if (c->qkv_bias &&
        ((rc = get_vec(m, NAME("self_attn.q_proj.bias"), QD, next,
                       &w->q_bias)) ||
         (rc = get_vec(m, NAME("self_attn.k_proj.bias"), KD, next,
                       &w->k_bias)) ||
         (rc = get_vec(m, NAME("self_attn.v_proj.bias"), KD, next,
                       &w->v_bias))))
        return rc;
    if (c->o_bias &&
        (rc = get_vec(m, NAME("self_attn.o_proj.bias"), C, next, &w->o_bias)))
        return rc;
    if (c->mlp_bias &&
        ((rc = get_vec(m, NAME("mlp.gate_proj.bias"), F, next,
                       &w->gate_bias)) ||
         (rc = get_vec(m, NAME("mlp.up_proj.bias"), F, next, &w->up_bias)) ||
         (rc = get_vec(m, NAME("mlp.down_proj.bias"), C, next,
                       &w->down_bias))))
        return rc;
#undef NAME
    return 0;
}

/* Tensors of layers the config does not have mean the two disagree. */
static int check_extra_tensors(const llama_model *m)
{
    for (size_t i = 0; i < hf_weights_count(m->weights); i++) {
        const char *file;
        const st_tensor *t = hf_weights_at(m->weights, i, &file);
        if (strncmp(t->name, "model.layers.", 13) != 0) continue;
        const char *p = t->name + 13;
        size_t l = 0;
        if (*p < '0' || *p > '9') continue;
        while (*p >= '0' && *p <= '9' && l <= m->config.n_layer)
            l = l * 10 + (size_t)(*p++ - '0');
        if (l >= m->config.n_layer)
            return err_set(ERR_FORMAT, "'%s': tensor '%s' is beyond "
                           "num_hidden_layers = %zu of config.json", file,
                           t->name, m->config.n_layer);
    }
    return 0;
}

int llama_model_load(llama_model *m, const char *dir)
{
    memset(m, 0, sizeof *m);
    size_t n = strlen(dir) + sizeof "/config.json";
    char *cpath = malloc(n);
    if (!cpath) return err_set(ERR_NOMEM, "out of memory");
    snprintf(cpath, n, "%s/config.json", dir);
    int rc = llama_config_read(&m->config, cpath);
    free(cpath);
    if (rc) goto fail;
    if ((rc = hf_weights_open(&m->weights, dir))) goto fail;
    const llama_config *c = &m->config;
    size_t C = c->n_embd, V = c->vocab_size;
    m->n_vectors = vector_floats(c);
    m->vectors = malloc(m->n_vectors * sizeof *m->vectors);
    m->layers = calloc(c->n_layer, sizeof *m->layers);
    m->owned = calloc(c->n_layer, sizeof *m->owned);
    m->inv_freq = malloc(c->head_dim / 2 * sizeof *m->inv_freq);
    if (!m->vectors || !m->layers || !m->owned || !m->inv_freq) {
        rc = err_set(ERR_NOMEM, "no memory for the model of '%s'", dir);
        goto fail;
    }
    llama_config_inv_freq(c, m->inv_freq);
    float *next = m->vectors;
    if ((rc = get_mat(m, "model.embed_tokens.weight", V, C, &m->embed)))
        goto fail;
    for (size_t l = 0; l < c->n_layer; l++)
        if ((rc = load_layer(m, l, &next))) goto fail;
    if ((rc = get_vec(m, "model.norm.weight", C, &next, &m->norm))) goto fail;
    if (c->tie_word_embeddings)
        m->lm_head = m->embed;
    else if ((rc = get_mat(m, "lm_head.weight", V, C, &m->lm_head)))
        goto fail;
    if ((rc = check_extra_tensors(m))) goto fail;
    return 0;
fail:
    llama_model_free(m);
    return rc;
}

void llama_model_free(llama_model *m)
{
    if (!m) return;
    for (size_t l = 0; m->owned && l < m->config.n_layer; l++)
        free(m->owned[l]);
    free(m->owned);
    free(m->layers);
    free(m->vectors);
    free(m->inv_freq);
    free(m->params);
    hf_weights_close(m->weights);
    memset(m, 0, sizeof *m);
}

size_t llama_model_owned_bytes(const llama_model *m)
{
    const llama_config *c = &m->config;
    size_t n = m->n_vectors * sizeof(float) +
               c->n_layer * (sizeof *m->layers + sizeof *m->owned) +
               c->head_dim / 2 * sizeof *m->inv_freq +
               m->n_params * sizeof *m->params;
    for (size_t l = 0; m->owned && l < c->n_layer; l++)
        if (m->owned[l]) n += c->n_embd * c->n_inner * sizeof(float);
    return n;
}

int llama_model_down_f32(llama_model *m, size_t layer, float **out)
{
    *out = NULL;
    if (!m->layers || layer >= m->config.n_layer)
        return err_set(ERR_INVALID, "layer %zu is not a layer of the model",
                       layer);
    llama_mat *d = &m->layers[layer].down;
    if (m->params) { /* a trainable model: F32 already, in its buffer */
        *out = m->params + ((const float *)d->data - m->params);
        return 0;
    }
    if (!m->owned[layer]) {
        float *w = malloc(d->rows * d->cols * sizeof *w);
        if (!w)
            return err_set(ERR_NOMEM, "no memory for down_proj of layer %zu",
                           layer);
        linalg_to_f32(w, d->data, d->dtype, d->rows * d->cols);
        m->owned[layer] = w;
        d->data = w;
        d->dtype = LINALG_F32;
    }
    *out = m->owned[layer];
    return 0;
}

/* ---- activations ---------------------------------------------------------- */

struct llama_acts {
    llama_config c;
    unsigned flags;
    size_t ls;        /* layer stride factor of the shared buffers: 1 or 0 */
    size_t first_layer; /* the layers up to it share its slot of the
                           shared buffers (llama_acts_new_from) */
    int input_grads;  /* first_layer > 0 with a backward: only input
                         gradients, so ln1, ln2, atty and key share one
                         slot and the lower block outputs two */
    size_t maxB, maxT, maxBT, max_logits;
    /* the last pass */
    size_t B, T, valid_layers, start_layer, n_logits, hook_layer;
    int has_forward, has_hook;
    int *tokens;      /* (maxBT) */
    /* the computed rows: all B*T, or with row ranges n_act of them, row i
     * being flat position act_pos[i] */
    int rows;
    size_t n_act;
    size_t *act_pos;  /* (maxBT) */
    size_t *compact;  /* (maxBT) compact row of a flat position, or SIZE_MAX */
    size_t *row_off;  /* (maxB) */
    size_t *row_from; /* (maxB) */
    size_t *row_len;  /* (maxB) */
    size_t *pos;      /* (maxBT) the position in its sequence of each row */
    float *cos, *sin; /* (maxT, D/2) */
    float *memory;
    float *encoded;   /* (maxBT, C) */
    /* per layer (stride ls; ln1, ln2 and atty: one slot if input_grads) */
    float *ln1;       /* (L, maxBT, C) */
    float *rstd1;     /* (L, maxBT) */
    float *qpre;      /* (L, maxBT, QD) q before q_norm (Qwen3) */
    float *qrstd;     /* (L, maxBT, NH) */
    float *kpre;      /* (L, maxBT, KD) */
    float *krstd;     /* (L, maxBT, NKV) */
    float *q;         /* (L, maxBT, QD) after norm and rope, full layout */
    float *k;         /* (L, maxBT, KD) */
    float *v;         /* (L, maxBT, KD) */
    float *att;       /* (L, maxB, NH, maxT, maxT) */
    float *atty;      /* (L, maxBT, QD) */
    float *res2;      /* (L, maxBT, C) */
    float *ln2;       /* (L, maxBT, C) */
    float *rstd2;     /* (L, maxBT) */
    float *gate;      /* (L, maxBT, F) */
    float *up;        /* (L, maxBT, F) */
    /* per layer always */
    float *key;       /* (L, maxBT, F) the MLP keys */
    float *res3;      /* (L, maxBT, C) the block outputs */
    float *hooked;    /* (maxBT, C) block hook_layer's output + the hook */
    float *scratch;   /* (maxBT, C) a projection before its residual add */
    float *xin;       /* (maxBT, C) compact input of block start_layer */
    float *qc;        /* (maxBT, QD) compact q, k, v of a row-range pass */
    float *kc;        /* (maxBT, KD) */
    float *vc;        /* (maxBT, KD) */
    float *lnf_in;    /* (max_logits, C) */
    float *lnf;       /* (max_logits, C) */
    float *lnf_rstd;  /* (max_logits) */
    float *logits;    /* (max_logits, V) */
    /* backward buffers, allocated by the first backward pass */
    float *grad_memory;
    float *dres;      /* (maxBT, C) dLoss/dresidual, carried down */
    float *dln;       /* (maxBT, C) */
    float *dkey;      /* (maxBT, F) */
    float *dgate;     /* (maxBT, F) */
    float *dup;       /* (maxBT, F) */
    float *datty;     /* (maxBT, QD) */
    float *dqf;       /* (maxBT, QD) full layout */
    float *dkf;       /* (maxBT, KD) */
    float *dvf;       /* (maxBT, KD) */
    float *dqc;       /* (maxBT, QD) compact rows of the three */
    float *dkc;       /* (maxBT, KD) */
    float *dvc;       /* (maxBT, KD) */
    float *dq2;       /* (maxBT, QD) before the rope */
    float *dk2;       /* (maxBT, KD) */
    float *dq3;       /* (maxBT, QD) before q_norm (Qwen3 only) */
    float *dk3;       /* (maxBT, KD) */
    float *datt;      /* (maxB, NH, maxT, maxT) */
    float *dlnf;      /* (max_logits, C) */
    float *dlnf_in;   /* (max_logits, C) */
};

typedef struct {
    float **ptr;
    size_t n;
} buf_spec;

/* Carves the buffers out of one allocation; 0 or ERR_NOMEM. */
static int alloc_buffers(float **memory, buf_spec *spec, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += spec[i].n ? spec[i].n : 1;
    float *mem = calloc(total, sizeof(float));
    if (!mem) return ERR_NOMEM;
    *memory = mem;
    for (size_t i = 0; i < n; i++) {
        *spec[i].ptr = mem;
        mem += spec[i].n ? spec[i].n : 1;
    }
    return 0;
}

/* The slot of block l's output: under LOGITS_ONLY two slots in turn
 * (the input of block l, l-1's output, is never l's own slot); with
 * input_grads the same below block first_layer - 1, whose output the
 * hook reads, and one slot each from there up (a backward reads every
 * block's input); otherwise one per layer. */
static size_t res3_slot(const llama_acts *a, size_t l)
{
    if (a->flags & LLAMA_ACTS_LOGITS_ONLY) return l % 2;
    if (a->input_grads && a->first_layer >= 3)
        return l + 1 >= a->first_layer ? l + 3 - a->first_layer : l % 2;
    return l;
}

static size_t res3_slots(const llama_acts *a, size_t L)
{
    if (a->flags & LLAMA_ACTS_LOGITS_ONLY) return L < 2 ? L : 2;
    if (a->input_grads && a->first_layer >= 3) return L + 3 - a->first_layer;
    return L;
}

int llama_acts_new(llama_acts **out, const llama_config *c, size_t B,
                   size_t T, size_t max_logits, unsigned flags)
{
    return llama_acts_new_from(out, c, B, T, max_logits, flags, 0);
}

int llama_acts_new_from(llama_acts **out, const llama_config *c, size_t B,
                        size_t T, size_t max_logits, unsigned flags,
                        size_t first_layer)
{
    *out = NULL;
    /* a hook at the top layer: no block runs backward, one slot */
    if (c->n_layer && first_layer >= c->n_layer) first_layer = c->n_layer - 1;
    if (!B || !T)
        return err_set(ERR_INVALID, "llama workspace of %zu x %zu tokens", B,
                       T);
    if (T > c->n_positions)
        return err_set(ERR_INVALID, "sequence length %zu exceeds the model's "
                       "max_position_embeddings %zu", T, c->n_positions);
    if (c->sliding_window && T > c->sliding_window)
        return err_set(ERR_INVALID, "sequence length %zu exceeds the model's "
                       "sliding window of %zu (not supported)", T,
                       c->sliding_window);
    llama_acts *a = calloc(1, sizeof *a);
    if (!a) return err_set(ERR_NOMEM, "no memory for a llama workspace");
    a->c = *c;
    if (flags & LLAMA_ACTS_LOGITS_ONLY) flags |= LLAMA_ACTS_FORWARD_ONLY;
    a->flags = flags;
    a->ls = flags & LLAMA_ACTS_FORWARD_ONLY ? 0 : 1;
    a->first_layer = first_layer;
    a->input_grads = a->ls && first_layer > 0;
    size_t L = c->n_layer, C = c->n_embd, F = c->n_inner, NH = c->n_head,
           NKV = c->n_kv_head, D = c->head_dim, QD = NH * D, KD = NKV * D;
    size_t BT = B * T, SL = a->ls ? L - first_layer : 1,
           WL = a->input_grads ? 1 : SL, NQ = c->qk_norm ? 1 : 0;
    /* LOGITS_ONLY: one layer's keys, two block outputs (a block's input
     * and its output); input_grads: one layer's keys, the outputs of
     * res3_slot's slots */
    size_t KL = flags & LLAMA_ACTS_LOGITS_ONLY || a->input_grads ? 1 : L,
           RL = res3_slots(a, L);
    a->maxB = B;
    a->maxT = T;
    a->maxBT = BT;
    a->max_logits = max_logits;
    a->tokens = malloc(BT * sizeof *a->tokens);
    a->act_pos = malloc(BT * sizeof *a->act_pos);
    a->compact = malloc(BT * sizeof *a->compact);
    a->pos = malloc(BT * sizeof *a->pos);
    a->row_off = malloc(B * sizeof *a->row_off);
    a->row_from = malloc(B * sizeof *a->row_from);
    a->row_len = malloc(B * sizeof *a->row_len);
    buf_spec spec[] = {
        {&a->cos, T * D / 2},          {&a->sin, T * D / 2},
        {&a->encoded, BT * C},         {&a->ln1, WL * BT * C},
        {&a->rstd1, SL * BT},          {&a->qpre, NQ * SL * BT * QD},
        {&a->qrstd, NQ * SL * BT * NH}, {&a->kpre, NQ * SL * BT * KD},
        {&a->krstd, NQ * SL * BT * NKV}, {&a->q, SL * BT * QD},
        {&a->k, SL * BT * KD},         {&a->v, SL * BT * KD},
        {&a->att, SL * B * NH * T * T}, {&a->atty, WL * BT * QD},
        {&a->res2, SL * BT * C},       {&a->ln2, WL * BT * C},
        {&a->rstd2, SL * BT},          {&a->gate, SL * BT * F},
        {&a->up, SL * BT * F},         {&a->key, KL * BT * F},
        {&a->res3, RL * BT * C},       {&a->hooked, BT * C},
        {&a->scratch, BT * C},         {&a->xin, BT * C},
        {&a->qc, BT * QD},             {&a->kc, BT * KD},
        {&a->vc, BT * KD},             {&a->lnf_in, max_logits * C},
        {&a->lnf, max_logits * C},     {&a->lnf_rstd, max_logits},
        {&a->logits, max_logits * c->vocab_size},
    };
    if (!a->tokens || !a->act_pos || !a->compact || !a->pos || !a->row_off ||
        !a->row_from || !a->row_len ||
        alloc_buffers(&a->memory, spec, sizeof spec / sizeof *spec)) {
        llama_acts_free(a);
        return err_set(ERR_NOMEM, "no memory for a llama workspace of %zu x "
                       "%zu tokens", B, T);
    }
    /* the rotary tables: angle p * inv_freq[i] in double, then float */
    double *inv = malloc(D / 2 * sizeof *inv);
    if (!inv) {
        llama_acts_free(a);
        return err_set(ERR_NOMEM, "no memory for a llama workspace");
    }
    llama_config_inv_freq(c, inv);
    for (size_t p = 0; p < T; p++)
        for (size_t i = 0; i < D / 2; i++) {
            double ang = (double)p * inv[i];
            a->cos[p * D / 2 + i] = (float)cos(ang);
            a->sin[p * D / 2 + i] = (float)sin(ang);
        }
    free(inv);
    *out = a;
    return 0;
}

void llama_acts_free(llama_acts *a)
{
    if (!a) return;
    free(a->tokens);
    free(a->act_pos);
    free(a->compact);
    free(a->pos);
    free(a->row_off);
    free(a->row_from);
    free(a->row_len);
    free(a->memory);
    free(a->grad_memory);
    free(a);
}

const float *llama_acts_logits(const llama_acts *a) { return a->logits; }

/* Layer l's MLP keys and block output in the workspace: under
 * LOGITS_ONLY or input_grads the layers share one slot of keys (see
 * res3_slot for the outputs). */
static float *key_at(const llama_acts *a, size_t l)
{
    size_t k = a->flags & LLAMA_ACTS_LOGITS_ONLY || a->input_grads ? 0 : l;
    return a->key + k * a->maxBT * a->c.n_inner;
}

static float *res3_at(const llama_acts *a, size_t l)
{
    return a->res3 + res3_slot(a, l) * a->maxBT * a->c.n_embd;
}

const float *llama_acts_mlp_key(const llama_acts *a, size_t layer)
{
    if (layer >= a->c.n_layer || a->flags & LLAMA_ACTS_LOGITS_ONLY ||
        a->input_grads)
        return NULL;
    return key_at(a, layer);
}

const float *llama_acts_block_out(const llama_acts *a, size_t layer)
{
    if (layer >= a->c.n_layer || a->flags & LLAMA_ACTS_LOGITS_ONLY ||
        (a->input_grads && layer + 1 < a->first_layer))
        return NULL;
    return res3_at(a, layer);
}

/* ---- the forward pass ------------------------------------------------------ */

static int same_shape(const llama_config *a, const llama_config *b)
{
    return a->n_layer == b->n_layer && a->n_embd == b->n_embd &&
           a->n_inner == b->n_inner && a->n_head == b->n_head &&
           a->n_kv_head == b->n_kv_head && a->head_dim == b->head_dim &&
           a->vocab_size == b->vocab_size && a->qk_norm == b->qk_norm;
}

/* gpt2.c's check_batch, for the same fields. */
static int check_batch(const llama_model *m, const llama_acts *a,
                       const llama_batch *b)
{
    const llama_config *c = &m->config;
    if (!m->layers || !same_shape(c, &a->c))
        return err_set(ERR_INVALID, "llama workspace and model differ in "
                       "shape");
    if (!b->B || !b->T || b->B > a->maxB || b->T > a->maxT)
        return err_set(ERR_INVALID, "batch of %zu x %zu tokens does not fit "
                       "a workspace of %zu x %zu", b->B, b->T, a->maxB,
                       a->maxT);
    if (b->n_logits > a->max_logits)
        return err_set(ERR_INVALID, "%zu logit positions exceed the "
                       "workspace's %zu", b->n_logits, a->max_logits);
    size_t BT = b->B * b->T, L = c->n_layer;
    for (size_t i = 0; i < BT; i++)
        if (b->tokens[i] < 0 || (size_t)b->tokens[i] >= c->vocab_size)
            return err_set(ERR_INVALID, "token id %d at position %zu is "
                           "outside the vocabulary of %zu", b->tokens[i], i,
                           c->vocab_size);
    for (size_t i = 0; i < b->n_logits; i++)
        if (b->logit_pos[i] >= BT)
            return err_set(ERR_INVALID, "logit position %zu is outside the "
                           "batch of %zu tokens", b->logit_pos[i], BT);
    if (b->start_layer > L)
        return err_set(ERR_INVALID, "start layer %zu exceeds n_layer %zu",
                       b->start_layer, L);
    if (b->end_layer && (b->end_layer > L || b->end_layer <= b->start_layer))
        return err_set(ERR_INVALID, "end layer %zu does not fit a pass from "
                       "layer %zu of %zu", b->end_layer, b->start_layer, L);
    if (b->end_layer && b->end_layer < L &&
        (b->n_logits || b->row_from ||
         (b->hook && b->hook->layer >= b->end_layer)))
        return err_set(ERR_INVALID, "a pass that ends at layer %zu has no "
                       "logits, row ranges or later hook", b->end_layer);
    if (b->hook) {
        const llama_hook *h = b->hook;
        if (h->layer >= L || h->layer + 1 < b->start_layer)
            return err_set(ERR_INVALID, "hook at layer %zu does not fit a "
                           "pass from layer %zu of %zu", h->layer,
                           b->start_layer, L);
        for (size_t i = 0; i < h->n; i++)
            if (h->pos[i] >= BT)
                return err_set(ERR_INVALID, "hook position %zu is outside "
                               "the batch of %zu tokens", h->pos[i], BT);
    }
    if (!b->row_from != !b->row_len)
        return err_set(ERR_INVALID, "row ranges need both row_from and "
                       "row_len");
    if (b->row_from) {
        size_t T = b->T;
        if (a->flags & LLAMA_ACTS_FORWARD_ONLY)
            return err_set(ERR_INVALID, "row ranges need a workspace that "
                           "keeps every layer (not FORWARD_ONLY)");
        if (b->start_layer == 0)
            return err_set(ERR_INVALID, "row ranges need a pass from a "
                           "layer above 0");
        if (b->start_layer < a->first_layer)
            return err_set(ERR_INVALID, "row ranges from layer %zu need a "
                           "workspace that keeps it (this one keeps "
                           "layers %zu and up)", b->start_layer,
                           a->first_layer);
        if (b->hook && b->hook->layer + 1 != b->start_layer)
            return err_set(ERR_INVALID, "row ranges need the hook at layer "
                           "%zu", b->start_layer - 1);
        for (size_t r = 0; r < b->B; r++)
            if (b->row_from[r] > b->row_len[r] || b->row_len[r] > T)
                return err_set(ERR_INVALID, "row range %zu..%zu of sequence "
                               "%zu does not fit %zu tokens", b->row_from[r],
                               b->row_len[r], r, T);
        for (size_t i = 0; b->hook && i < b->hook->n; i++) {
            size_t r = b->hook->pos[i] / T, t = b->hook->pos[i] % T;
            if (t < b->row_from[r] || t >= b->row_len[r])
                return err_set(ERR_INVALID, "hook position %zu is outside "
                               "its row range", b->hook->pos[i]);
        }
        for (size_t i = 0; i < b->n_logits; i++) {
            size_t r = b->logit_pos[i] / T, t = b->logit_pos[i] % T;
            if (t < b->row_from[r] || t >= b->row_len[r])
                return err_set(ERR_INVALID, "logit position %zu is outside "
                               "its row range", b->logit_pos[i]);
        }
    }
    if (b->input && (b->start_layer == 0 || b->row_from))
        return err_set(ERR_INVALID, "an input needs a pass from a layer "
                       "above 0 without row ranges");
    if (b->start_layer > 0 && !b->input && a->input_grads &&
        b->start_layer < a->first_layer)
        return err_set(ERR_INVALID, "a pass from layer %zu needs a workspace "
                       "that keeps block %zu's output (this one keeps "
                       "layers %zu and up)", b->start_layer,
                       b->start_layer - 1, a->first_layer);
    if (b->start_layer > 0 && !b->input &&
        (!a->has_forward || a->valid_layers < b->start_layer ||
         a->B != b->B || a->T != b->T ||
         memcmp(a->tokens, b->tokens, BT * sizeof *b->tokens)))
        return err_set(ERR_INVALID, "a pass from layer %zu needs an earlier "
                       "pass over the same tokens", b->start_layer);
    return 0;
}

/* Sets a->hooked = out + the hook's vectors at their positions. */
static void apply_hook(llama_acts *a, const llama_hook *h, const float *out,
                       size_t BT)
{
    size_t C = a->c.n_embd;
    memcpy(a->hooked, out, BT * C * sizeof(float));
    for (size_t i = 0; i < h->n; i++) {
        float *dst = a->hooked + h->pos[i] * C;
        const float *v = h->vec + i * C;
        for (size_t c = 0; c < C; c++) dst[c] += v[c];
    }
}

/* The residual stream entering block l (l = L: entering the final norm);
 * with row ranges, block start_layer's is a->xin and the others' are the
 * compact outputs below them. */
static const float *block_input(const llama_acts *a, const llama_batch *b,
                                size_t l)
{
    if (a->rows && l == b->start_layer) return a->xin;
    if (b->hook && b->hook->layer + 1 == l) return a->hooked;
    if (l == 0) return a->encoded;
    return res3_at(a, l - 1);
}

/* Layer l's slot of the shared buffers: the layers up to first_layer
 * share first_layer's, which it overwrites after them in a pass. */
static size_t slot(const llama_acts *a, size_t l)
{
    return (l > a->first_layer ? l - a->first_layer : 0) * a->ls;
}

/* Layer l's slice of a shared buffer of `width` floats per row. */
static float *lay(const llama_acts *a, float *base, size_t l, size_t width)
{
    return base + slot(a, l) * a->maxBT * width;
}

/* The same for the buffers only weight gradients read (ln1, ln2, atty):
 * one slot for every layer when the backward computes input gradients
 * only. */
static float *lay_w(const llama_acts *a, float *base, size_t l, size_t width)
{
    return a->input_grads ? base : lay(a, base, l, width);
}

/* q or k of n rows: projection (+ bias), Qwen3's per-head norm, rope.
 * out (n, H*D) the result; pre, rstd: the norm's input and statistics. */
static void project_rope(const llama_acts *a, float *out, float *pre,
                         float *rstd, const float *x, const llama_mat *w,
                         const float *bias, const float *norm, size_t n,
                         size_t H)
{
    size_t C = a->c.n_embd, D = a->c.head_dim;
    linalg_linear_forward(norm ? pre : out, x, w->data, w->dtype, bias, n, C,
                          H * D);
    if (norm)
        linalg_rmsnorm_forward(out, rstd, pre, norm, n * H, D,
                               a->c.rms_norm_eps);
    linalg_rope_forward(out, out, a->cos, a->sin, a->pos, n, H, D);
}

/* Block l over the n computed rows (x: the block's input rows). */
static void block_forward(const llama_model *m, llama_acts *a, size_t l,
                          const float *x, size_t n, size_t B, size_t T)
{
    const llama_layer *w = &m->layers[l];
    size_t C = a->c.n_embd, F = a->c.n_inner, NH = a->c.n_head,
           NKV = a->c.n_kv_head, D = a->c.head_dim, QD = NH * D, KD = NKV * D;
    float eps = a->c.rms_norm_eps;
    float *ln1 = lay_w(a, a->ln1, l, C), *rstd1 = lay(a, a->rstd1, l, 1),
          *q = lay(a, a->q, l, QD), *k = lay(a, a->k, l, KD),
          *v = lay(a, a->v, l, KD), *atty = lay_w(a, a->atty, l, QD),
          *att = a->att + slot(a, l) * a->maxB * NH * a->maxT * a->maxT,
          *res2 = lay(a, a->res2, l, C), *ln2 = lay_w(a, a->ln2, l, C),
          *rstd2 = lay(a, a->rstd2, l, 1), *gate = lay(a, a->gate, l, F),
          *up = lay(a, a->up, l, F),
          *key = key_at(a, l), *res3 = res3_at(a, l);
    float *qpre = a->c.qk_norm ? lay(a, a->qpre, l, QD) : NULL,
          *kpre = a->c.qk_norm ? lay(a, a->kpre, l, KD) : NULL,
          *qrstd = a->c.qk_norm ? lay(a, a->qrstd, l, NH) : NULL,
          *krstd = a->c.qk_norm ? lay(a, a->krstd, l, NKV) : NULL;
    linalg_rmsnorm_forward(ln1, rstd1, x, w->attn_norm, n, C, eps);
    float *qc = a->rows ? a->qc : q, *kc = a->rows ? a->kc : k,
          *vc = a->rows ? a->vc : v;
    project_rope(a, qc, qpre, qrstd, ln1, &w->q, w->q_bias, w->q_norm, n, NH);
    project_rope(a, kc, kpre, krstd, ln1, &w->k, w->k_bias, w->k_norm, n, NKV);
    linalg_linear_forward(vc, ln1, w->v.data, w->v.dtype, w->v_bias, n, C, KD);
    if (a->rows)
        for (size_t i = 0; i < n; i++) {
            size_t p = a->act_pos[i];
            memcpy(q + p * QD, qc + i * QD, QD * sizeof(float));
            memcpy(k + p * KD, kc + i * KD, KD * sizeof(float));
            memcpy(v + p * KD, vc + i * KD, KD * sizeof(float));
        }
    linalg_gqa_attention_forward(atty, att, q, k, v, B, T, NH, NKV, D,
                                 a->rows ? a->row_from : NULL,
                                 a->rows ? a->row_len : NULL,
                                 a->rows ? a->row_off : NULL);
    linalg_linear_forward(a->scratch, atty, w->o.data, w->o.dtype, w->o_bias,
                          n, QD, C);
    linalg_residual_forward(res2, x, a->scratch, n * C);
    linalg_rmsnorm_forward(ln2, rstd2, res2, w->mlp_norm, n, C, eps);
    linalg_linear_forward(gate, ln2, w->gate.data, w->gate.dtype, w->gate_bias,
                          n, C, F);
    linalg_linear_forward(up, ln2, w->up.data, w->up.dtype, w->up_bias, n, C,
                          F);
    linalg_swiglu_forward(key, gate, up, n * F);
    linalg_linear_forward(a->scratch, key, w->down.data, w->down.dtype,
                          w->down_bias, n, F, C);
    linalg_residual_forward(res3, res2, a->scratch, n * C);
}

/* The computed rows of b: every position, or the row ranges compactly. */
static void set_rows(llama_acts *a, const llama_batch *b)
{
    size_t T = b->T, BT = b->B * T, n = 0;
    a->rows = b->row_from != NULL;
    if (!a->rows) {
        for (size_t i = 0; i < BT; i++) a->pos[i] = i % T;
        a->n_act = BT;
        return;
    }
    for (size_t i = 0; i < BT; i++) a->compact[i] = SIZE_MAX;
    for (size_t r = 0; r < b->B; r++) {
        a->row_from[r] = b->row_from[r];
        a->row_len[r] = b->row_len[r];
        a->row_off[r] = n;
        for (size_t t = b->row_from[r]; t < b->row_len[r]; t++) {
            a->compact[r * T + t] = n;
            a->pos[n] = t;
            a->act_pos[n++] = r * T + t;
        }
    }
    a->n_act = n;
}

int llama_forward(const llama_model *m, llama_acts *a, const llama_batch *b)
{
    int rc = check_batch(m, a, b);
    if (rc) return rc;
    size_t L = a->c.n_layer, C = a->c.n_embd, V = a->c.vocab_size;
    size_t B = b->B, T = b->T, BT = B * T, s = b->start_layer;
    const llama_hook *h = b->hook;
    a->has_forward = 0;
    if (s == 0) {
        memcpy(a->tokens, b->tokens, BT * sizeof *b->tokens);
        a->B = B;
        a->T = T;
        a->valid_layers = 0;
        linalg_embedding_forward(a->encoded, b->tokens, m->embed.data,
                                 m->embed.dtype, BT, C);
    } else if (b->input) { /* the caller's copy of block s-1's output */
        memcpy(a->tokens, b->tokens, BT * sizeof *b->tokens);
        a->B = B;
        a->T = T;
        memcpy(res3_at(a, s - 1), b->input,
               BT * C * sizeof(float));
    }
    if (h && h->layer + 1 == s)
        apply_hook(a, h, res3_at(a, h->layer), BT);
    set_rows(a, b);
    size_t n = a->n_act, end = b->end_layer ? b->end_layer : L;
    const size_t *row_of = a->rows ? a->compact : NULL;
    if (a->rows) {
        const float *in = h ? a->hooked : res3_at(a, s - 1);
        for (size_t i = 0; i < n; i++)
            memcpy(a->xin + i * C, in + a->act_pos[i] * C, C * sizeof(float));
    }
    for (size_t l = s; l < end; l++) {
        block_forward(m, a, l, block_input(a, b, l), n, B, T);
        if (h && h->layer == l) apply_hook(a, h, res3_at(a, l), BT);
    }
    /* block outputs a later pass may start from: none when they share
     * two slots (logits only) */
    a->valid_layers = a->flags & LLAMA_ACTS_LOGITS_ONLY ? 0 : a->rows ? s : end;
    if (end < L) /* nothing above: no head, no backward */
        return 0;
    /* the final norm and the head on the logit rows only */
    const float *fin = block_input(a, b, L);
    for (size_t i = 0; i < b->n_logits; i++) {
        size_t at = row_of ? row_of[b->logit_pos[i]] : b->logit_pos[i];
        memcpy(a->lnf_in + i * C, fin + at * C, C * sizeof(float));
    }
    if (b->n_logits) {
        linalg_rmsnorm_forward(a->lnf, a->lnf_rstd, a->lnf_in, m->norm,
                               b->n_logits, C, a->c.rms_norm_eps);
        linalg_linear_forward(a->logits, a->lnf, m->lm_head.data,
                              m->lm_head.dtype, NULL, b->n_logits, C, V);
    }
    a->has_forward = 1;
    a->start_layer = s;
    a->n_logits = b->n_logits;
    a->has_hook = h != NULL;
    a->hook_layer = h ? h->layer : 0;
    return 0;
}

/* ---- the backward pass ------------------------------------------------------ */

static int alloc_grad_buffers(llama_acts *a)
{
    size_t C = a->c.n_embd, F = a->c.n_inner, NH = a->c.n_head,
           D = a->c.head_dim, QD = NH * D, KD = a->c.n_kv_head * D;
    size_t BT = a->maxBT, NL = a->max_logits, NQ = a->c.qk_norm ? 1 : 0;
    buf_spec spec[] = {
        {&a->dres, BT * C},   {&a->dln, BT * C},    {&a->dkey, BT * F},
        {&a->dgate, BT * F},  {&a->dup, BT * F},    {&a->datty, BT * QD},
        {&a->dqf, BT * QD},   {&a->dkf, BT * KD},   {&a->dvf, BT * KD},
        {&a->dqc, BT * QD},   {&a->dkc, BT * KD},   {&a->dvc, BT * KD},
        {&a->dq2, BT * QD},   {&a->dk2, BT * KD},   {&a->dq3, NQ * BT * QD},
        {&a->dk3, NQ * BT * KD},
        {&a->datt, a->maxB * NH * a->maxT * a->maxT},
        {&a->dlnf, NL * C},   {&a->dlnf_in, NL * C},
    };
    if (alloc_buffers(&a->grad_memory, spec, sizeof spec / sizeof *spec))
        return err_set(ERR_NOMEM, "no memory for llama backward buffers");
    return 0;
}

/* Where in the trainable model g the tensor g's own field p points to,
 * writable (NULL for an absent tensor). */
static float *grad_at(llama_model *g, const void *p)
{
    return p ? g->params + ((const float *)p - g->params) : NULL;
}

/* dW (OUT, IN) += dout^T inp and dbias += column sums of dout, for a
 * linear layer of grads g (its weight w, its bias bias; either NULL). */
static void linear_weight_backward(llama_model *g, const llama_mat *w,
                                   const float *bias, const float *dout,
                                   const float *inp, size_t n, size_t IN,
                                   size_t OUT)
{
    linalg_matmul_nt_backward(NULL, grad_at(g, w->data), dout, inp, NULL, n,
                              IN, OUT);
    if (bias) llama_bias_backward(grad_at(g, bias), dout, n, OUT);
}

/* The gradient of project_rope: dx (n, C) += from dout (n, H*D), the
 * gradient of its output; with grads (gw: the grads' layer, bias and
 * norm weight), the projection's and the norm's weight gradients too.
 * d2, d3: scratch (n, H*D). x: the projection's input. */
static void project_rope_backward(const llama_acts *a, float *dx,
                                  const float *dout, float *d2, float *d3,
                                  const float *pre, const float *rstd,
                                  const llama_mat *w, const float *norm,
                                  size_t n, size_t H, llama_model *g,
                                  const llama_mat *gw, const float *gbias,
                                  const float *gnorm, const float *x)
{
    size_t C = a->c.n_embd, D = a->c.head_dim, HD = H * D;
    memset(d2, 0, n * HD * sizeof(float));
    linalg_rope_backward(d2, dout, a->cos, a->sin, a->pos, n, H, D);
    if (norm) {
        if (g)
            llama_rmsnorm_weight_backward(grad_at(g, gnorm), d2, pre, rstd,
                                          n * H, D);
        memset(d3, 0, n * HD * sizeof(float));
        linalg_rmsnorm_backward(d3, d2, pre, norm, rstd, n * H, D);
        d2 = d3;
    }
    if (g) linear_weight_backward(g, gw, gbias, d2, x, n, C, HD);
    linalg_linear_backward(dx, d2, w->data, w->dtype, n, C, HD);
}

/* The MLP half of block l backward: a->dres holds dLoss/d(block output)
 * on entry and dLoss/d(res2) on exit; with grads g, the MLP's weight
 * gradients are added to g. */
static void mlp_backward(const llama_model *m, llama_acts *a, size_t l,
                         size_t n, llama_model *g)
{
    const llama_layer *w = &m->layers[l];
    const llama_layer *gl = g ? &g->layers[l] : NULL;
    size_t C = a->c.n_embd, F = a->c.n_inner;
    const float *res2 = lay(a, a->res2, l, C), *rstd2 = lay(a, a->rstd2, l, 1),
                *ln2 = lay_w(a, a->ln2, l, C), *gate = lay(a, a->gate, l, F),
                *up = lay(a, a->up, l, F), *key = key_at(a, l);
    /* out = res2 + down(silu(gate(ln2)) * up(ln2)), ln2 = norm(res2) */
    if (g)
        linear_weight_backward(g, &gl->down, gl->down_bias, a->dres, key, n,
                               F, C);
    memset(a->dkey, 0, n * F * sizeof(float));
    linalg_linear_backward(a->dkey, a->dres, w->down.data, w->down.dtype, n, F,
                           C);
    memset(a->dgate, 0, n * F * sizeof(float));
    memset(a->dup, 0, n * F * sizeof(float));
    linalg_swiglu_backward(a->dgate, a->dup, a->dkey, gate, up, n * F);
    if (g) {
        linear_weight_backward(g, &gl->gate, gl->gate_bias, a->dgate, ln2, n,
                               C, F);
        linear_weight_backward(g, &gl->up, gl->up_bias, a->dup, ln2, n, C, F);
    }
    memset(a->dln, 0, n * C * sizeof(float));
    linalg_linear_backward(a->dln, a->dgate, w->gate.data, w->gate.dtype, n, C,
                           F);
    linalg_linear_backward(a->dln, a->dup, w->up.data, w->up.dtype, n, C, F);
    if (g)
        llama_rmsnorm_weight_backward(grad_at(g, gl->mlp_norm), a->dln, res2,
                                      rstd2, n, C);
    linalg_rmsnorm_backward(a->dres, a->dln, res2, w->mlp_norm, rstd2, n, C);
}

/* Block l backward over the n computed rows: a->dres holds dLoss/d(block
 * output) on entry and dLoss/d(block input) on exit; x: the block's
 * input; with grads g, the block's weight gradients are added to g. */
static void block_backward(const llama_model *m, llama_acts *a, size_t l,
                           const float *x, size_t n, size_t B, size_t T,
                           llama_model *g)
{
    const llama_layer *w = &m->layers[l];
    const llama_layer *gl = g ? &g->layers[l] : NULL;
    size_t C = a->c.n_embd, NH = a->c.n_head, NKV = a->c.n_kv_head,
           D = a->c.head_dim, QD = NH * D, KD = NKV * D;
    const float *rstd1 = lay(a, a->rstd1, l, 1), *ln1 = lay_w(a, a->ln1, l, C),
                *q = lay(a, a->q, l, QD), *k = lay(a, a->k, l, KD),
                *v = lay(a, a->v, l, KD), *atty = lay_w(a, a->atty, l, QD),
                *att = a->att + slot(a, l) * a->maxB * NH * a->maxT * a->maxT;
    const float *qpre = a->c.qk_norm ? lay(a, a->qpre, l, QD) : NULL,
                *kpre = a->c.qk_norm ? lay(a, a->kpre, l, KD) : NULL,
                *qrstd = a->c.qk_norm ? lay(a, a->qrstd, l, NH) : NULL,
                *krstd = a->c.qk_norm ? lay(a, a->krstd, l, NKV) : NULL;
    mlp_backward(m, a, l, n, g);
    /* attention: res2 = x + o(attn(q, k, v)), q, k, v of ln1 = norm(x) */
    if (g) linear_weight_backward(g, &gl->o, gl->o_bias, a->dres, atty, n, QD, C);
    memset(a->datty, 0, n * QD * sizeof(float));
    linalg_linear_backward(a->datty, a->dres, w->o.data, w->o.dtype, n, QD, C);
    /* with row ranges the keys and values before the ranges get gradients
     * too; they are dropped (those positions do not depend on the hook) */
    size_t BT = B * T;
    memset(a->dqf, 0, BT * QD * sizeof(float));
    memset(a->dkf, 0, BT * KD * sizeof(float));
    memset(a->dvf, 0, BT * KD * sizeof(float));
    linalg_gqa_attention_backward(a->dqf, a->dkf, a->dvf, a->datt, a->datty, q,
                                  k, v, att, B, T, NH, NKV, D,
                                  a->rows ? a->row_from : NULL,
                                  a->rows ? a->row_len : NULL,
                                  a->rows ? a->row_off : NULL);
    float *dq = a->dqf, *dk = a->dkf, *dv = a->dvf;
    if (a->rows) {
        for (size_t i = 0; i < n; i++) {
            size_t p = a->act_pos[i];
            memcpy(a->dqc + i * QD, a->dqf + p * QD, QD * sizeof(float));
            memcpy(a->dkc + i * KD, a->dkf + p * KD, KD * sizeof(float));
            memcpy(a->dvc + i * KD, a->dvf + p * KD, KD * sizeof(float));
        }
        dq = a->dqc;
        dk = a->dkc;
        dv = a->dvc;
    }
    memset(a->dln, 0, n * C * sizeof(float));
    project_rope_backward(a, a->dln, dq, a->dq2, a->dq3, qpre, qrstd, &w->q,
                          w->q_norm, n, NH, g, gl ? &gl->q : NULL,
                          gl ? gl->q_bias : NULL, gl ? gl->q_norm : NULL, ln1);
    project_rope_backward(a, a->dln, dk, a->dk2, a->dk3, kpre, krstd, &w->k,
                          w->k_norm, n, NKV, g, gl ? &gl->k : NULL,
                          gl ? gl->k_bias : NULL, gl ? gl->k_norm : NULL, ln1);
    if (g) linear_weight_backward(g, &gl->v, gl->v_bias, dv, ln1, n, C, KD);
    linalg_linear_backward(a->dln, dv, w->v.data, w->v.dtype, n, C, KD);
    if (g)
        llama_rmsnorm_weight_backward(grad_at(g, gl->attn_norm), a->dln, x,
                                      rstd1, n, C);
    linalg_rmsnorm_backward(a->dres, a->dln, x, w->attn_norm, rstd1, n, C);
}

/* The checks of a backward pass: it follows a forward pass of b, and has
 * what it needs (a hook and dvec without grads; a full pass with). */
static int check_backward(const llama_model *m, const llama_acts *a,
                          const llama_batch *b, const llama_model *g,
                          const float *dvec)
{
    const llama_hook *h = b->hook;
    if (a->flags & LLAMA_ACTS_FORWARD_ONLY)
        return err_set(ERR_INVALID, "llama backward needs a workspace that "
                       "keeps every layer (not FORWARD_ONLY)");
    if (h && !g ? h->layer + 1 < a->first_layer : a->first_layer > 0)
        return err_set(ERR_INVALID, "llama backward needs the layers above "
                       "the hook (or all layers, for weight gradients) in "
                       "its workspace; it keeps layers %zu and up",
                       a->first_layer);
    if (!a->has_forward || a->B != b->B || a->T != b->T ||
        a->start_layer != b->start_layer || a->n_logits != b->n_logits ||
        a->has_hook != (h != NULL) || (h && a->hook_layer != h->layer) ||
        a->rows != (b->row_from != NULL) || !same_shape(&m->config, &a->c))
        return err_set(ERR_INVALID, "llama backward does not follow a forward "
                       "pass of the same batch");
    if (!g) {
        if (!h || !dvec)
            return err_set(ERR_INVALID, "llama backward needs a hook and its "
                           "gradient buffer");
        return 0;
    }
    if (!g->params || !same_shape(&m->config, &g->config) ||
        g->config.qkv_bias != m->config.qkv_bias ||
        g->config.o_bias != m->config.o_bias ||
        g->config.mlp_bias != m->config.mlp_bias ||
        g->config.tie_word_embeddings != m->config.tie_word_embeddings)
        return err_set(ERR_INVALID, "llama gradients need a trainable model "
                       "of the model's shape");
    if (b->start_layer || b->row_from)
        return err_set(ERR_INVALID, "llama weight gradients need a pass from "
                       "layer 0 without row ranges");
    if (dvec && !h)
        return err_set(ERR_INVALID, "llama backward: a vector gradient "
                       "without a hook");
    return 0;
}

/* The head and the final norm backward, on the logit rows: a->dres (n, C)
 * gets dLoss/d(residual entering the final norm). */
static void head_backward(const llama_model *m, llama_acts *a,
                          const llama_batch *b, const float *dlogits,
                          llama_model *g)
{
    size_t C = a->c.n_embd, V = a->c.vocab_size, NL = b->n_logits;
    const size_t *row_of = a->rows ? a->compact : NULL;
    memset(a->dres, 0, a->n_act * C * sizeof(float));
    if (!NL) return;
    if (g)
        linalg_matmul_nt_backward(NULL, grad_at(g, g->lm_head.data), dlogits,
                                  a->lnf, NULL, NL, C, V);
    memset(a->dlnf, 0, NL * C * sizeof(float));
    linalg_linear_backward(a->dlnf, dlogits, m->lm_head.data, m->lm_head.dtype,
                           NL, C, V);
    if (g)
        llama_rmsnorm_weight_backward(grad_at(g, g->norm), a->dlnf, a->lnf_in,
                                      a->lnf_rstd, NL, C);
    memset(a->dlnf_in, 0, NL * C * sizeof(float));
    linalg_rmsnorm_backward(a->dlnf_in, a->dlnf, a->lnf_in, m->norm,
                            a->lnf_rstd, NL, C);
    for (size_t i = 0; i < NL; i++) {
        size_t at = row_of ? row_of[b->logit_pos[i]] : b->logit_pos[i];
        float *dst = a->dres + at * C;
        const float *src = a->dlnf_in + i * C;
        for (size_t c = 0; c < C; c++) dst[c] += src[c];
    }
}

int llama_backward_params(const llama_model *m, llama_acts *a,
                          const llama_batch *b, const float *dlogits,
                          llama_model *grads, float *dvec)
{
    size_t L = a->c.n_layer, C = a->c.n_embd, B = b->B, T = b->T;
    const llama_hook *h = b->hook;
    int rc = check_backward(m, a, b, grads, dvec);
    if (rc) return rc;
    if (!a->grad_memory && (rc = alloc_grad_buffers(a))) return rc;
    size_t n = a->n_act;
    const size_t *row_of = a->rows ? a->compact : NULL;
    head_backward(m, a, b, dlogits, grads);
    /* without weight gradients nothing below the hook matters */
    size_t low = grads ? 0 : h->layer + 1;
    for (size_t l = L; l-- > low;) {
        if (h && dvec && l == h->layer)
            for (size_t i = 0; i < h->n; i++) {
                size_t at = row_of ? row_of[h->pos[i]] : h->pos[i];
                memcpy(dvec + i * C, a->dres + at * C, C * sizeof(float));
            }
        block_backward(m, a, l, block_input(a, b, l), n, B, T, grads);
    }
    if (h && dvec && low == h->layer + 1)
        for (size_t i = 0; i < h->n; i++) {
            size_t at = row_of ? row_of[h->pos[i]] : h->pos[i];
            memcpy(dvec + i * C, a->dres + at * C, C * sizeof(float));
        }
    if (grads)
        llama_embedding_backward(grad_at(grads, grads->embed.data), a->dres,
                                 a->tokens, B * T, C);
    return 0;
}

int llama_backward(const llama_model *m, llama_acts *a, const llama_batch *b,
                   const float *dlogits, float *dvec)
{
    return llama_backward_params(m, a, b, dlogits, NULL, dvec);
}
