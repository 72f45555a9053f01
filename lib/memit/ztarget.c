/* ztarget: target vectors z by gradient steps on a vector added to the
 * residual stream (see ztarget.h; kmeng01/memit compute_z.py is the
 * reference: NLL over rewriting prompts + kl_factor * KL on the essence
 * prompt + v_weight_decay * ||delta|| / ||h0||^2, Adam, norm clamp). */
#include "memit/ztarget.h"
#include "base/errors.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* The layout of one lockstep group: rows = every sequence of every fact
 * of the group; logit rows = every target position plus one KL row per
 * fact. */
typedef struct {
    size_t G, B, T, C, V, n_logits;
    int *tokens;          /* (B, T) */
    size_t *row_fact;     /* (B) */
    size_t *hook_pos;     /* (B) lookup position of each row */
    size_t *row_from;     /* (B) the lookup within its row: from there on,
                                 the z steps recompute the row */
    size_t *row_len;      /* (B) tokens in each row */
    size_t *logit_pos;    /* (n_logits) */
    size_t *logit_fact;   /* (n_logits) */
    int *logit_target;    /* (n_logits) target id, or -1 for the KL row */
    double *logit_weight; /* (n_logits) weight of the row's -log p */
} zgroup;

static void zgroup_free(zgroup *g)
{
    free(g->tokens);
    free(g->row_fact);
    free(g->hook_pos);
    free(g->row_from);
    free(g->row_len);
    free(g->logit_pos);
    free(g->logit_fact);
    free(g->logit_target);
    free(g->logit_weight);
}

/* The rows, length and logit rows of a group of G facts. */
static void zgroup_shape(const editreq *r, size_t G, size_t *B, size_t *T,
                         size_t *NL)
{
    *B = *T = *NL = 0;
    for (size_t f = 0; f < G; f++) {
        *B += r[f].n_rewrite + 1;
        *NL += r[f].n_rewrite * r[f].n_target + 1;
        for (size_t s = 0; s <= r[f].n_rewrite; s++)
            if (r[f].seq[s].len > *T) *T = r[f].seq[s].len;
    }
}

static int zgroup_init(zgroup *g, const lm_model *m, const editreq *r,
                       size_t G)
{
    memset(g, 0, sizeof *g);
    g->G = G;
    g->C = m->config.n_embd;
    g->V = m->config.vocab_size;
    zgroup_shape(r, G, &g->B, &g->T, &g->n_logits);
    g->tokens = calloc(g->B * g->T, sizeof(int));
    g->row_fact = malloc(g->B * sizeof(size_t));
    g->hook_pos = malloc(g->B * sizeof(size_t));
    g->row_from = malloc(g->B * sizeof(size_t));
    g->row_len = malloc(g->B * sizeof(size_t));
    g->logit_pos = malloc(g->n_logits * sizeof(size_t));
    g->logit_fact = malloc(g->n_logits * sizeof(size_t));
    g->logit_target = malloc(g->n_logits * sizeof(int));
    g->logit_weight = malloc(g->n_logits * sizeof(double));
    if (!g->tokens || !g->row_fact || !g->hook_pos ||
        !g->row_from || !g->row_len || !g->logit_pos ||
        !g->logit_fact || !g->logit_target || !g->logit_weight) {
        zgroup_free(g);
        return ERR_NOMEM;
    }
    size_t b = 0, k = 0;
    for (size_t f = 0; f < G; f++) {
        const editreq *q = &r[f];
        for (size_t s = 0; s <= q->n_rewrite; s++, b++) {
            const editreq_seq *sq = &q->seq[s];
            memcpy(g->tokens + b * g->T, sq->tokens, sq->len * sizeof(int));
            g->row_fact[b] = f;
            g->hook_pos[b] = b * g->T + sq->lookup;
            g->row_from[b] = sq->lookup;
            g->row_len[b] = sq->len;
            if (s == q->n_rewrite) { /* the essence prompt: KL row */
                g->logit_pos[k] = b * g->T + sq->lookup;
                g->logit_fact[k] = f;
                g->logit_target[k] = -1;
                g->logit_weight[k++] = 0;
                continue;
            }
            for (size_t j = 0; j < q->n_target; j++, k++) {
                g->logit_pos[k] = b * g->T + sq->target_start + j;
                g->logit_fact[k] = f;
                g->logit_target[k] = q->target[j];
                /* mean over prompts of the per-prompt mean over tokens */
                g->logit_weight[k] = 1.0 / ((double)q->n_target *
                                            (double)q->n_rewrite);
            }
        }
    }
    return 0;
}

static double norm2(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* Floating-point operations, counted from the shapes (a multiply-add is
 * 2). zgroup_base_flops: the unedited pass over every position and layer.
 * zgroup_step_flops: one step's forward and backward (input gradients
 * only) over the rows' ranges row_from..step_len in the blocks above
 * zlayer, and the head at n_logits logit rows. Attention at position t
 * reads t + 1 keys. */
static double zgroup_base_flops(const zgroup *g, const lm_config *c)
{
    double mat, head, L = (double)c->n_layer, C = (double)c->n_embd, f = 0;
    lm_flops(c, &mat, &head);
    for (size_t b = 0; b < g->B; b++)
        for (size_t t = 0; t < g->row_len[b]; t++)
            f += L * (mat + 4 * (double)(t + 1) * C);
    return f + (double)g->n_logits * head;
}

static void zgroup_step_flops(const zgroup *g, const lm_config *c,
                              size_t zlayer, const size_t *step_len,
                              size_t n_logits, double *fwd, double *bwd)
{
    double mat, head, C = (double)c->n_embd;
    double above = (double)c->n_layer - (double)zlayer - 1;
    lm_flops(c, &mat, &head);
    *fwd = *bwd = (double)n_logits * head;
    for (size_t b = 0; b < g->B; b++)
        for (size_t t = g->row_from[b]; t < step_len[b]; t++) {
            double att = 4 * (double)(t + 1) * C;
            *fwd += above * (mat + att);
            *bwd += above * (mat + 2 * att);
        }
}

/* The rows and logit rows of the facts still stepping: a finished fact's
 * rows get an empty range (the steps skip them), and its hook and logit
 * positions are left out. hook_row[i]: the row of hook entry i;
 * logit_row[i]: the group's logit row k of step logit row i. */
typedef struct {
    size_t *step_len;  /* (B) row_len, or row_from for a finished fact */
    size_t *hook_pos;  /* (B) */
    size_t *hook_row;  /* (B) */
    size_t *logit_pos; /* (n_logits) */
    size_t *logit_row; /* (n_logits) */
    size_t n_hook, n_logits;
    double fwd_flops, bwd_flops; /* of one step over these rows */
} zactive;

static void zactive_free(zactive *s)
{
    free(s->step_len);
    free(s->hook_pos);
    free(s->hook_row);
    free(s->logit_pos);
    free(s->logit_row);
}

static int zactive_init(zactive *s, const zgroup *g)
{
    s->step_len = malloc(g->B * sizeof(size_t));
    s->hook_pos = malloc(g->B * sizeof(size_t));
    s->hook_row = malloc(g->B * sizeof(size_t));
    s->logit_pos = malloc(g->n_logits * sizeof(size_t));
    s->logit_row = malloc(g->n_logits * sizeof(size_t));
    s->n_hook = s->n_logits = 0;
    if (!s->step_len || !s->hook_pos || !s->hook_row || !s->logit_pos ||
        !s->logit_row) {
        zactive_free(s);
        return ERR_NOMEM;
    }
    return 0;
}

static void zactive_set(zactive *s, const zgroup *g, const int *done,
                        const lm_config *c, size_t zlayer)
{
    s->n_hook = s->n_logits = 0;
    for (size_t b = 0; b < g->B; b++) {
        if (done[g->row_fact[b]]) {
            s->step_len[b] = g->row_from[b];
            continue;
        }
        s->step_len[b] = g->row_len[b];
        s->hook_pos[s->n_hook] = g->hook_pos[b];
        s->hook_row[s->n_hook++] = b;
    }
    for (size_t k = 0; k < g->n_logits; k++) {
        if (done[g->logit_fact[k]]) continue;
        s->logit_pos[s->n_logits] = g->logit_pos[k];
        s->logit_row[s->n_logits++] = k;
    }
    zgroup_step_flops(g, c, zlayer, s->step_len, s->n_logits, &s->fwd_flops,
                      &s->bwd_flops);
}

/* Runs one group of G facts to completion on the workspace a (big enough
 * for the group). A fact leaves the lockstep when it stops: the later
 * steps run only the rows of the facts still stepping. */
static int zgroup_run(const lm_model *m, lm_acts *a, const editreq *r,
                      size_t G, size_t zlayer, const hparams *h, float *z,
                      float *h0, ztarget_info *info)
{
    zgroup g;
    zactive act;
    int rc = zgroup_init(&g, m, r, G);
    if (rc) return rc;
    if ((rc = zactive_init(&act, &g))) {
        zgroup_free(&g);
        return rc;
    }
    size_t C = g.C, V = g.V, B = g.B, NL = g.n_logits;
    float *delta = calloc(G * C, sizeof(float));
    float *adam_m = calloc(G * C, sizeof(float));
    float *adam_v = calloc(G * C, sizeof(float));
    float *grad = calloc(G * C, sizeof(float));
    float *hook_vec = calloc(B * C, sizeof(float));
    float *dvec = calloc(B * C, sizeof(float));
    float *logp = malloc(NL * V * sizeof(float)); /* then dLoss/dlogits */
    float *kl_init = malloc(G * V * sizeof(float));
    size_t *kl_row = malloc(G * sizeof(size_t));
    double *loss = calloc(G, sizeof(double)), *nll = calloc(G, sizeof(double));
    double *kl = calloc(G, sizeof(double)); /* KL of each fact, this step */
    int *done = calloc(G, sizeof(int));
    if (!delta || !adam_m || !adam_v || !grad || !hook_vec || !dvec ||
        !logp || !kl_init || !kl_row || !loss || !nll || !kl ||
        !done) {
        rc = ERR_NOMEM;
        goto out;
    }
    for (size_t k = 0; k < NL; k++)
        if (g.logit_target[k] < 0) kl_row[g.logit_fact[k]] = k;

    /* The unedited pass: h0 and the KL reference distribution. */
    lm_batch base = {.tokens = g.tokens, .B = B, .T = g.T,
                       .logit_pos = g.logit_pos, .n_logits = NL};
    double flops = zgroup_base_flops(&g, &m->config);
    if ((rc = lm_forward(m, a, &base))) goto out;
    lm_log_softmax(logp, lm_acts_logits(a), NL, V);
    const float *block = lm_acts_block_out(a, zlayer);
    for (size_t b = 0, f = 0; b < B; b++) { /* the bare prompt of fact f */
        if (g.row_fact[b] != f) continue;
        memcpy(h0 + f * C, block + g.hook_pos[b] * C, C * sizeof(float));
        f++;
    }
    for (size_t f = 0; f < G; f++)
        memcpy(kl_init + f * V, logp + kl_row[f] * V, V * sizeof(float));

    lm_hook hook = {.layer = zlayer, .pos = act.hook_pos, .vec = hook_vec};
    lm_batch step = base;
    step.start_layer = zlayer + 1;
    step.hook = &hook;
    step.logit_pos = act.logit_pos;
    /* positions before the subject's last token cannot change: each
     * step runs only the rest of each prompt */
    step.row_from = g.row_from;
    step.row_len = act.step_len;
    zactive_set(&act, &g, done, &m->config, zlayer);
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    size_t n_done = 0;
    for (size_t it = 0; n_done < G; it++) {
        hook.n = act.n_hook;
        step.n_logits = act.n_logits;
        for (size_t i = 0; i < act.n_hook; i++)
            memcpy(hook_vec + i * C,
                   delta + g.row_fact[act.hook_row[i]] * C, C * sizeof(float));
        if ((rc = lm_forward(m, a, &step))) goto out;
        flops += act.fwd_flops;
        lm_log_softmax(logp, lm_acts_logits(a), act.n_logits, V);
        for (size_t f = 0; f < G; f++) loss[f] = nll[f] = 0;
        for (size_t i = 0; i < act.n_logits; i++) {
            size_t k = act.logit_row[i], f = g.logit_fact[k];
            const float *lp = logp + i * V;
            if (g.logit_target[k] >= 0) {
                nll[f] -= g.logit_weight[k] * lp[g.logit_target[k]];
            } else {
                const float *l0 = kl_init + f * V;
                kl[f] = 0;
                for (size_t v = 0; v < V; v++)
                    kl[f] += exp((double)lp[v]) * ((double)lp[v] - l0[v]);
                loss[f] += h->kl_factor * kl[f];
            }
        }
        size_t stopped = 0; /* facts that stop at this step */
        for (size_t f = 0; f < G; f++) {
            if (done[f]) continue;
            double h0n = norm2(h0 + f * C, C);
            loss[f] += nll[f] + h->v_weight_decay * norm2(delta + f * C, C) /
                                    (h0n * h0n);
            if (!isfinite(loss[f])) {
                info[f].failed = 1;
            }
            if (!isfinite(loss[f]) || loss[f] < h->nll_stop ||
                it >= h->v_num_grad_steps) {
                done[f] = 1;
                n_done++;
                stopped++;
                info[f].loss = loss[f];
                info[f].nll = nll[f];
                info[f].steps = it;
            }
        }
        if (n_done == G) break;

        /* dLoss/dlogits for the facts still stepping (the backward pass
         * follows this step's forward, rows of the stopped ones too), in
         * place of logp: each value reads only its own log p */
        for (size_t i = 0; i < act.n_logits; i++) {
            size_t k = act.logit_row[i], f = g.logit_fact[k];
            float *d = logp + i * V;
            const float *lp = d;
            if (done[f]) {
                memset(d, 0, V * sizeof(float));
            } else if (g.logit_target[k] >= 0) {
                double w = g.logit_weight[k];
                for (size_t v = 0; v < V; v++) d[v] = (float)(w * exp(lp[v]));
                d[g.logit_target[k]] -= (float)w;
            } else {
                const float *l0 = kl_init + f * V;
                for (size_t v = 0; v < V; v++)
                    d[v] = (float)(h->kl_factor * exp((double)lp[v]) *
                                   ((double)lp[v] - l0[v] - kl[f]));
            }
        }
        if ((rc = lm_backward(m, a, &step, logp, dvec))) goto out;
        flops += act.bwd_flops;
        memset(grad, 0, G * C * sizeof(float));
        for (size_t i = 0; i < act.n_hook; i++) {
            float *gf = grad + g.row_fact[act.hook_row[i]] * C;
            for (size_t c = 0; c < C; c++) gf[c] += dvec[i * C + c];
        }
        double t = (double)(it + 1);
        for (size_t f = 0; f < G; f++) {
            if (done[f]) continue;
            float *d = delta + f * C, *gf = grad + f * C;
            float *mf = adam_m + f * C, *vf = adam_v + f * C;
            double h0n = norm2(h0 + f * C, C), dn = norm2(d, C);
            if (dn > 0)
                for (size_t c = 0; c < C; c++)
                    gf[c] += (float)(h->v_weight_decay * d[c] /
                                     (dn * h0n * h0n));
            for (size_t c = 0; c < C; c++) {
                mf[c] = (float)(b1 * mf[c] + (1 - b1) * gf[c]);
                vf[c] = (float)(b2 * vf[c] + (1 - b2) * gf[c] * gf[c]);
                double mhat = mf[c] / (1 - pow(b1, t));
                double vhat = vf[c] / (1 - pow(b2, t));
                d[c] -= (float)(h->v_lr * mhat / (sqrt(vhat) + eps));
            }
            double max_norm = h->clamp_norm_factor * h0n;
            dn = norm2(d, C);
            if (dn > max_norm)
                for (size_t c = 0; c < C; c++) d[c] *= (float)(max_norm / dn);
        }
        if (stopped) zactive_set(&act, &g, done, &m->config, zlayer);
    }
    for (size_t f = 0; f < G; f++) {
        info[f].flops = flops / (double)G;
        for (size_t c = 0; c < C; c++) {
            z[f * C + c] = h0[f * C + c] + delta[f * C + c];
            if (!isfinite(z[f * C + c])) info[f].failed = 1;
        }
    }
out:
    free(delta);
    free(adam_m);
    free(adam_v);
    free(grad);
    free(hook_vec);
    free(dvec);
    free(logp);
    free(kl_init);
    free(kl_row);
    free(loss);
    free(nll);
    free(kl);
    free(done);
    zactive_free(&act);
    zgroup_free(&g);
    return rc;
}

/* The groups of n facts: an even number of balanced sizes (at most G
 * facts each), so two threads get equal shares. The split depends on n
 * and G only, never on the thread or rank count, so z is the same for
 * any thread count and any share of the groups. */
static size_t ztarget_groups(size_t n, const hparams *h)
{
    size_t G = h->facts_per_group ? h->facts_per_group : 1;
    size_t n_groups = (n + G - 1) / G;
    if (n_groups > 1 && n_groups % 2 && n_groups < n) n_groups++;
    return n_groups;
}

void ztarget_share(size_t n, const hparams *h, int part, int parts,
                   size_t *first, size_t *end)
{
    size_t n_groups = ztarget_groups(n, h);
    size_t g0 = n_groups * (size_t)part / (size_t)parts;
    size_t g1 = n_groups * (size_t)(part + 1) / (size_t)parts;
    *first = n_groups ? g0 * n / n_groups : 0;
    *end = n_groups ? g1 * n / n_groups : 0;
}

/* ---- chunks ---------------------------------------------------------- */

static size_t chunk_budget_override; /* tests: 0 = h->z_chunk_mib */

size_t ztarget_set_chunk_bytes(size_t bytes)
{
    size_t old = chunk_budget_override;
    chunk_budget_override = bytes;
    return old;
}

/* The bytes a chunk's passes may take: z_chunk_mib (0: no limit). */
static double chunk_budget(const hparams *h)
{
    if (chunk_budget_override) return (double)chunk_budget_override;
    return h->z_chunk_mib ? (double)h->z_chunk_mib * 1048576.0 : 1e300;
}

/* The memory a pass over B rows of T tokens with NL logit rows takes,
 * estimated from the shapes: per token and layer kept (the Llama family
 * keeps the layers above zlayer, GPT-2 every layer) the norms' inputs,
 * q, k, v, the attention weights, the MLP's two F-wide halves; per token
 * the shared and the backward's buffers; per logit row the logits and
 * zgroup_run's log-probabilities; GPT-2 also keeps the keys and block
 * outputs of the layers below. Only the cut into chunks reads it. */
static double zgroup_bytes(const lm_config *c, size_t zlayer, size_t B,
                           size_t T, size_t NL)
{
    double C = (double)c->n_embd, F = (double)c->n_inner,
           QD = (double)(c->n_head * c->head_dim),
           KD = (double)(c->n_kv_head * c->head_dim);
    double kept = (double)(c->n_layer - zlayer - 1);
    double below = c->family == LM_LLAMA ? 0 : (double)(zlayer + 1) * (F + C);
    double per_token = kept * (4 * C + QD + 2 * KD + 2 * F +
                                (double)(c->n_head * T)) +
                       below + 4 * F + 8 * C + 4 * QD;
    return 4 * ((double)(B * T) * per_token +
                (double)NL * (3 * (double)c->vocab_size + 4 * C));
}

/* The facts of a group run in chunks of whole facts, each chunk stepping
 * in lockstep on its own: as many facts as keep zgroup_bytes within the
 * budget (one at least). A fact's steps read only its own rows, so a
 * chunk steps each fact as the whole group would, up to the order of
 * float sums in the batched kernels. The cut depends on the facts and
 * the model's shape only, never on the threads. Returns the facts of the
 * chunk that starts at r[0], of at most n. */
static size_t zchunk_facts(const lm_config *c, size_t zlayer,
                           const hparams *h, const editreq *r, size_t n)
{
    size_t k = 1;
    while (k < n) {
        size_t B, T, NL;
        zgroup_shape(r, k + 1, &B, &T, &NL);
        if (zgroup_bytes(c, zlayer, B, T, NL) > chunk_budget(h)) break;
        k++;
    }
    return k;
}

int ztarget_compute(const lm_model *m, const editreq *r, size_t n,
                    size_t zlayer, const hparams *h, float *z, float *h0,
                    ztarget_info *info, progress_fn progress, void *ctx)
{
    return ztarget_compute_share(m, r, n, zlayer, h, 0, 1, z, h0, info,
                                 progress, ctx);
}

/* The largest chunk of groups g0..g1 (of n_groups over n facts). */
static void zchunks_max_shape(const lm_config *c, size_t zlayer,
                              const hparams *h, const editreq *r, size_t n,
                              size_t n_groups, size_t g0, size_t g1,
                              size_t *maxB, size_t *maxT, size_t *maxNL)
{
    *maxB = *maxT = *maxNL = 1;
    for (size_t gi = g0; gi < g1; gi++) {
        size_t f = gi * n / n_groups, end = (gi + 1) * n / n_groups;
        while (f < end) {
            size_t cnt = zchunk_facts(c, zlayer, h, r + f, end - f), B, T, NL;
            zgroup_shape(r + f, cnt, &B, &T, &NL);
            if (B > *maxB) *maxB = B;
            if (T > *maxT) *maxT = T;
            if (NL > *maxNL) *maxNL = NL;
            f += cnt;
        }
    }
}

int ztarget_compute_share(const lm_model *m, const editreq *r, size_t n,
                          size_t zlayer, const hparams *h, int part,
                          int parts, float *z, float *h0, ztarget_info *info,
                          progress_fn progress, void *ctx)
{
    const lm_config *cfg = &m->config;
    size_t C = cfg->n_embd, n_groups = ztarget_groups(n, h), finished = 0;
    size_t g0 = n_groups * (size_t)part / (size_t)parts;
    size_t g1 = n_groups * (size_t)(part + 1) / (size_t)parts, first, end;
    ztarget_share(n, h, part, parts, &first, &end);
    if (zlayer >= cfg->n_layer)
        return err_set(ERR_INVALID, "z layer %zu is outside the model", zlayer);
    float *own_h0 = h0 ? NULL : malloc((n ? n : 1) * C * sizeof(float));
    if (!h0 && !own_h0) return ERR_NOMEM;
    if (!h0) h0 = own_h0;
    memset(info, 0, n * sizeof *info);
    int rc = 0;
    if (progress) progress(ctx, "target vectors", 0, end - first);
    /* one workspace per thread, for the largest chunk: allocating one
     * per chunk costs page faults that two threads serialise on; the
     * steps' passes and backward start above zlayer, so the workspace
     * keeps the activations of those layers only */
    size_t maxB, maxT, maxNL;
    zchunks_max_shape(cfg, zlayer, h, r, n, n_groups, g0, g1, &maxB, &maxT,
                      &maxNL);
    /* fewer groups than threads (a small batch on a large model): one
     * team of one thread runs the groups in turn, each pass's kernels on
     * every thread; otherwise each group runs on one thread */
    int in_turn = g1 - g0 < (size_t)omp_get_max_threads();
#pragma omp parallel if (!in_turn)
    {
        lm_acts *a = NULL;
        int arc = lm_acts_new_from(&a, m, maxB, maxT, maxNL, 0, zlayer + 1);
#pragma omp for schedule(dynamic, 1)
        for (size_t gi = g0; gi < g1; gi++) {
            size_t f = gi * n / n_groups, f1 = (gi + 1) * n / n_groups;
            int grc = arc;
            while (!grc && f < f1) {
                size_t cnt = zchunk_facts(cfg, zlayer, h, r + f, f1 - f);
                grc = zgroup_run(m, a, r + f, cnt, zlayer, h, z + f * C,
                                 h0 + f * C, info + f);
                f += cnt;
            }
#pragma omp critical(ztarget_progress)
            {
                if (grc && !rc) rc = grc;
                finished += f1 - gi * n / n_groups;
                if (progress)
                    progress(ctx, "target vectors", finished, end - first);
            }
        }
        lm_acts_free(a);
    }
    free(own_h0);
    return rc;
}
