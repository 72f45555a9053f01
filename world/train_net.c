/* train_net: the two families behind train.c's interface (train_net.h).
 * GPT-2's tensors are gpt2_model's sizes[] (matrices: wte, wpe, c_attn,
 * attn.c_proj, c_fc, mlp.c_proj); the Llama family's are
 * llama_model_tensors' (matrices: the embedding, the projections,
 * lm_head). */
#include "world/train_net.h"

#include "base/errors.h"

#include <stdlib.h>
#include <string.h>

struct train_net_acts {
    gpt2_acts *gpt2;
    llama_acts *llama;
};

float *train_net_params(const train_net *n, size_t *count)
{
    if (n->family == TRAIN_NET_GPT2) {
        *count = n->gpt2->num_parameters;
        return n->gpt2->memory;
    }
    *count = n->llama->n_params;
    return n->llama->params;
}

size_t train_net_positions(const train_net *n)
{
    return n->family == TRAIN_NET_GPT2 ? n->gpt2->config.n_positions
                                       : n->llama->config.n_positions;
}

size_t train_net_vocab(const train_net *n)
{
    return n->family == TRAIN_NET_GPT2 ? n->gpt2->config.vocab_size
                                       : n->llama->config.vocab_size;
}

int train_net_tensor(const train_net *n, size_t i, size_t *numel,
                     int *matrix)
{
    if (n->family == TRAIN_NET_GPT2) {
        if (i >= GPT2_NUM_TENSORS) return 0;
        *numel = n->gpt2->sizes[i];
        *matrix = i == 0 || i == 1 || i == 4 || i == 6 || i == 10 ||
                  i == GPT2_FCPROJW;
        return 1;
    }
    /* the table up to i: the walk is cheap next to a training step */
    size_t count = llama_model_tensors(n->llama, NULL, 0);
    llama_tensor *all = i < count ? malloc((i + 1) * sizeof *all) : NULL;
    if (!all) return 0;
    llama_model_tensors(n->llama, all, i + 1);
    *numel = all[i].numel;
    *matrix = all[i].matrix;
    free(all);
    return 1;
}

int train_net_grads_new(train_net *g, const train_net *n)
{
    *g = (train_net){.family = n->family};
    if (n->family == TRAIN_NET_GPT2) {
        g->gpt2 = calloc(1, sizeof *g->gpt2);
        if (!g->gpt2) return err_set(ERR_NOMEM, "no memory for gradients");
        return gpt2_model_init(g->gpt2, &n->gpt2->config);
    }
    g->llama = calloc(1, sizeof *g->llama);
    if (!g->llama) return err_set(ERR_NOMEM, "no memory for gradients");
    return llama_model_init(g->llama, &n->llama->config);
}

void train_net_grads_free(train_net *g)
{
    if (g->gpt2) gpt2_model_free(g->gpt2);
    if (g->llama) llama_model_free(g->llama);
    free(g->gpt2);
    free(g->llama);
    memset(g, 0, sizeof *g);
}

int train_net_acts_new(train_net_acts **out, const train_net *n, size_t B,
                       size_t T, size_t max_logits, int forward_only)
{
    *out = NULL;
    train_net_acts *a = calloc(1, sizeof *a);
    if (!a) return err_set(ERR_NOMEM, "no memory for a workspace");
    int rc = n->family == TRAIN_NET_GPT2
                 ? gpt2_acts_new(&a->gpt2, &n->gpt2->config, B, T, max_logits)
                 : llama_acts_new(&a->llama, &n->llama->config, B, T,
                                  max_logits,
                                  forward_only ? LLAMA_ACTS_FORWARD_ONLY : 0);
    if (rc) {
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void train_net_acts_free(train_net_acts *a)
{
    if (!a) return;
    gpt2_acts_free(a->gpt2);
    llama_acts_free(a->llama);
    free(a);
}

int train_net_forward(const train_net *n, train_net_acts *a,
                      const int *tokens, size_t B, size_t T,
                      const size_t *pos, size_t nl)
{
    if (n->family == TRAIN_NET_GPT2) {
        gpt2_batch b = {.tokens = tokens, .B = B, .T = T, .logit_pos = pos,
                        .n_logits = nl};
        return gpt2_forward(n->gpt2, a->gpt2, &b);
    }
    llama_batch b = {.tokens = tokens, .B = B, .T = T, .logit_pos = pos,
                     .n_logits = nl};
    return llama_forward(n->llama, a->llama, &b);
}

const float *train_net_logits(const train_net_acts *a)
{
    return a->gpt2 ? gpt2_acts_logits(a->gpt2) : llama_acts_logits(a->llama);
}

int train_net_backward(const train_net *n, train_net_acts *a,
                       const int *tokens, size_t B, size_t T,
                       const size_t *pos, size_t nl, const float *dlogits,
                       train_net *g)
{
    if (n->family == TRAIN_NET_GPT2) {
        gpt2_batch b = {.tokens = tokens, .B = B, .T = T, .logit_pos = pos,
                        .n_logits = nl};
        return gpt2_backward(n->gpt2, a->gpt2, &b, dlogits, g->gpt2, NULL);
    }
    llama_batch b = {.tokens = tokens, .B = B, .T = T, .logit_pos = pos,
                     .n_logits = nl};
    return llama_backward_params(n->llama, a->llama, &b, dlogits, g->llama,
                                 NULL);
}

static void fp_u64(hash_stream *h, uint64_t v) { hash_stream_update(h, &v, 8); }
static void fp_f64(hash_stream *h, double v) { hash_stream_update(h, &v, 8); }

void train_net_fingerprint(const train_net *n, hash_stream *h)
{
    if (n->family == TRAIN_NET_GPT2) {
        const gpt2_config *c = &n->gpt2->config;
        fp_u64(h, c->n_layer);
        fp_u64(h, c->n_head);
        fp_u64(h, c->n_embd);
        fp_u64(h, c->n_positions);
        fp_u64(h, c->vocab_size);
        fp_u64(h, c->n_inner);
        fp_f64(h, c->layer_norm_epsilon);
        fp_u64(h, n->gpt2->num_parameters);
        return;
    }
    const llama_config *c = &n->llama->config;
    hash_stream_update(h, "llama", 5);
    fp_u64(h, (uint64_t)c->arch);
    fp_u64(h, c->n_layer);
    fp_u64(h, c->n_head);
    fp_u64(h, c->n_kv_head);
    fp_u64(h, c->head_dim);
    fp_u64(h, c->n_embd);
    fp_u64(h, c->n_positions);
    fp_u64(h, c->vocab_size);
    fp_u64(h, c->n_inner);
    fp_f64(h, c->rms_norm_eps);
    fp_f64(h, c->rope_theta);
    fp_u64(h, (uint64_t)c->tie_word_embeddings |
                  (uint64_t)c->qkv_bias << 1 | (uint64_t)c->o_bias << 2 |
                  (uint64_t)c->mlp_bias << 3 | (uint64_t)c->qk_norm << 4);
    fp_u64(h, n->llama->n_params);
}
