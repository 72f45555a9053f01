/* lm: the family dispatch behind lm.h. Each call goes to gpt2.c or
 * llama.c, which take the same lm_batch. */
#include "model/lm.h"
#include "base/errors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lm_acts {
    lm_family family;
    gpt2_acts *gpt2;
    llama_acts *llama;
};

/* 1 when config.json names a Llama-family architecture (or any other
 * than GPT-2's, which llama_config_read then refuses by name). */
static int names_llama(const char *path, int *llama)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    *llama = 0;
    if (!root)
        return err_set(ERR_FORMAT, "'%s': %s (line %d)", path, je.text,
                       je.line);
    json_t *archs = json_object_get(root, "architectures");
    json_t *first = json_is_array(archs) ? json_array_get(archs, 0) : NULL;
    const char *name = json_string_value(first);
    if (archs && (!name || strcmp(name, "GPT2LMHeadModel"))) *llama = 1;
    json_decref(root);
    return 0;
}

static void from_gpt2_config(lm_config *c, const gpt2_config *g)
{
    memset(c, 0, sizeof *c);
    c->family = LM_GPT2;
    c->arch = "GPT2LMHeadModel";
    c->n_layer = g->n_layer;
    c->n_head = c->n_kv_head = g->n_head;
    c->head_dim = g->n_head ? g->n_embd / g->n_head : 0;
    c->n_embd = g->n_embd;
    c->n_inner = g->n_inner ? g->n_inner : 4 * g->n_embd;
    c->vocab_size = g->vocab_size;
    c->n_positions = g->n_positions;
}

static void from_llama_config(lm_config *c, const llama_config *l)
{
    memset(c, 0, sizeof *c);
    c->family = LM_LLAMA;
    c->arch = llama_arch_name(l->arch);
    c->n_layer = l->n_layer;
    c->n_head = l->n_head;
    c->n_kv_head = l->n_kv_head;
    c->head_dim = l->head_dim;
    c->n_embd = l->n_embd;
    c->n_inner = l->n_inner;
    c->vocab_size = l->vocab_size;
    c->n_positions = l->n_positions;
    if (l->sliding_window && l->sliding_window < c->n_positions)
        c->n_positions = l->sliding_window;
}

int lm_config_read(lm_config *c, const char *dir)
{
    char path[4096];
    int llama = 0, rc;
    memset(c, 0, sizeof *c);
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >=
        sizeof path)
        return err_set(ERR_INVALID, "model directory path too long");
    if ((rc = names_llama(path, &llama))) return rc;
    if (llama) {
        llama_config lc;
        if ((rc = llama_config_read(&lc, path))) return rc;
        from_llama_config(c, &lc);
    } else {
        gpt2_config gc;
        if ((rc = gpt2_config_read(&gc, path))) return rc;
        from_gpt2_config(c, &gc);
    }
    return 0;
}

int lm_model_load(lm_model *m, const char *dir)
{
    lm_config c;
    memset(m, 0, sizeof *m);
    int rc = lm_config_read(&c, dir);
    if (rc) return rc;
    if (c.family == LM_GPT2) {
        m->gpt2 = calloc(1, sizeof *m->gpt2);
        if (!m->gpt2) return err_set(ERR_NOMEM, "out of memory");
        if ((rc = gpt2_model_load(m->gpt2, dir))) goto fail;
        from_gpt2_config(&m->config, &m->gpt2->config);
    } else {
        m->llama = calloc(1, sizeof *m->llama);
        if (!m->llama) return err_set(ERR_NOMEM, "out of memory");
        if ((rc = llama_model_load(m->llama, dir))) goto fail;
        from_llama_config(&m->config, &m->llama->config);
    }
    return 0;
fail:
    free(m->gpt2);
    free(m->llama);
    memset(m, 0, sizeof *m);
    return rc;
}

void lm_model_free(lm_model *m)
{
    if (!m) return;
    if (!m->borrowed) {
        if (m->gpt2) gpt2_model_free(m->gpt2);
        free(m->gpt2);
    }
    if (m->llama) llama_model_free(m->llama);
    free(m->llama);
    memset(m, 0, sizeof *m);
}

void lm_from_gpt2(lm_model *m, gpt2_model *g)
{
    memset(m, 0, sizeof *m);
    m->gpt2 = g;
    m->borrowed = 1;
    from_gpt2_config(&m->config, &g->config);
}

/* ---- passes ------------------------------------------------------------ */

int lm_acts_new(lm_acts **out, const lm_model *m, size_t B, size_t T,
                size_t max_logits, unsigned flags)
{
    return lm_acts_new_from(out, m, B, T, max_logits, flags, 0);
}

int lm_acts_new_from(lm_acts **out, const lm_model *m, size_t B, size_t T,
                     size_t max_logits, unsigned flags, size_t first_layer)
{
    lm_acts *a = calloc(1, sizeof *a);
    int rc;
    *out = NULL;
    if (!a) return err_set(ERR_NOMEM, "out of memory");
    a->family = m->config.family;
    if (a->family == LM_GPT2)
        rc = gpt2_acts_new_from(&a->gpt2, &m->gpt2->config, B, T, max_logits,
                                (flags & LM_ACTS_FORWARD_ONLY
                                     ? GPT2_ACTS_FORWARD_ONLY : 0) |
                                (flags & LM_ACTS_LOGITS_ONLY
                                     ? GPT2_ACTS_LOGITS_ONLY : 0),
                                first_layer);
    else
        rc = llama_acts_new_from(&a->llama, &m->llama->config, B, T,
                                 max_logits,
                                 (flags & LM_ACTS_FORWARD_ONLY
                                      ? LLAMA_ACTS_FORWARD_ONLY : 0) |
                                 (flags & LM_ACTS_LOGITS_ONLY
                                      ? LLAMA_ACTS_LOGITS_ONLY : 0),
                                 first_layer);
    if (rc) {
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void lm_acts_free(lm_acts *a)
{
    if (!a) return;
    gpt2_acts_free(a->gpt2);
    llama_acts_free(a->llama);
    free(a);
}

int lm_forward(const lm_model *m, lm_acts *a, const lm_batch *b)
{
    return a->family == LM_GPT2 ? gpt2_forward(m->gpt2, a->gpt2, b)
                                : llama_forward(m->llama, a->llama, b);
}

int lm_backward(const lm_model *m, lm_acts *a, const lm_batch *b,
                const float *dlogits, float *dvec)
{
    if (a->family == LM_GPT2)
        return gpt2_backward(m->gpt2, a->gpt2, b, dlogits, NULL, dvec);
    return llama_backward(m->llama, a->llama, b, dlogits, dvec);
}

const float *lm_acts_logits(const lm_acts *a)
{
    return a->family == LM_GPT2 ? gpt2_acts_logits(a->gpt2)
                                : llama_acts_logits(a->llama);
}

const float *lm_acts_mlp_key(const lm_acts *a, size_t layer)
{
    return a->family == LM_GPT2 ? gpt2_acts_mlp_key(a->gpt2, layer)
                                : llama_acts_mlp_key(a->llama, layer);
}

const float *lm_acts_block_out(const lm_acts *a, size_t layer)
{
    return a->family == LM_GPT2 ? gpt2_acts_block_out(a->gpt2, layer)
                                : llama_acts_block_out(a->llama, layer);
}

void lm_log_softmax(float *out, const float *logits, size_t n, size_t V)
{
    gpt2_log_softmax(out, logits, n, V);
}

void lm_flops(const lm_config *c, double *block, double *head)
{
    double C = (double)c->n_embd, F = (double)c->n_inner;
    double QD = (double)(c->n_head * c->head_dim);
    double KD = (double)(c->n_kv_head * c->head_dim);
    if (c->family == LM_GPT2)
        *block = 2 * C * (4 * C + 2 * F);  /* qkv, proj; fc, proj */
    else                                   /* q, k, v, o; gate, up, down */
        *block = 2 * C * (2 * QD + 2 * KD + 3 * F);
    *head = 2 * C * (double)c->vocab_size;
}

/* ---- the edited matrix ------------------------------------------------- */

static linalg_dtype stored_dtype(const llama_model *lm, const char *name)
{
    const st_tensor *t = hf_weights_find(lm->weights, name, NULL);
    if (!t || t->dtype == ST_F32) return LINALG_F32;
    return t->dtype == ST_F16 ? LINALG_F16 : LINALG_BF16;
}

void lm_edit_name(const lm_model *m, size_t layer, char *buf, size_t size)
{
    if (m->config.family == LM_GPT2)
        gpt2_tensor_name(buf, size, GPT2_FCPROJW, layer);
    else
        snprintf(buf, size, "model.layers.%zu.mlp.down_proj.weight", layer);
}

int lm_edit_view_get(lm_model *m, size_t layer, lm_edit_view *v)
{
    size_t C = m->config.n_embd, F = m->config.n_inner;
    memset(v, 0, sizeof *v);
    if (layer >= m->config.n_layer)
        return err_set(ERR_INVALID, "layer %zu is not a layer of the model "
                       "(%zu layers)", layer, m->config.n_layer);
    if (m->config.family == LM_GPT2) {
        char name[64];
        lm_edit_name(m, layer, name, sizeof name);
        if (!(v->w = gpt2_tensor_mut(m->gpt2, name, NULL))) return ERR_NOMEM;
        v->rows = F;
        v->cols = C;
        v->key_stride = C;
        v->out_stride = 1;
        v->stored = LINALG_F32;
        return 0;
    }
    int rc = llama_model_down_f32(m->llama, layer, &v->w);
    if (rc) return rc;
    char name[96];
    lm_edit_name(m, layer, name, sizeof name);
    v->rows = C;
    v->cols = F;
    v->key_stride = 1;
    v->out_stride = F;
    v->stored = stored_dtype(m->llama, name);
    return 0;
}

void lm_edit_round(const lm_edit_view *v)
{
    if (v->stored == LINALG_F32) return;
    for (size_t i = 0; i < v->rows * v->cols; i++)
        v->w[i] = lm_round_value(v->stored, v->w[i]);
}

float *lm_overlay_tensor(lm_model *m, const char *name, size_t *numel)
{
    *numel = 0;
    if (m->config.family == LM_GPT2) {
        return gpt2_tensor_mut(m->gpt2, name, numel);
    }
    size_t layer = 0;
    char canon[96];
    if (sscanf(name, "model.layers.%zu.", &layer) == 1 &&
        layer < m->config.n_layer) {
        lm_edit_name(m, layer, canon, sizeof canon);
        lm_edit_view v;
        if (!strcmp(canon, name)) {
            if (lm_edit_view_get(m, layer, &v)) return NULL;
            *numel = v.rows * v.cols;
            return v.w;
        }
    }
    err_set(ERR_FORMAT, "'%s' is not a tensor stamp edits in a %s",
            name, m->config.arch);
    return NULL;
}
