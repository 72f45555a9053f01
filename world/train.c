/* train: AdamW training of a GPT-2 or Llama-family model (train_net.h)
 * on short sequences, and the recall measure that tells when the model
 * knows its facts (train.h).
 *
 * Data parallel over sequences: each step sorts its batch by length and
 * cuts it into slices of TRAIN_SLICE sequences, dealt to the workers in
 * a fixed order. A slice is one (b, T) token block right-padded with id
 * 0 (causal attention keeps padding away from real positions) to its
 * own longest sequence, so short sequences do not pay for the longest
 * of the batch. A worker runs the net's forward + backward single-
 * threaded (we are inside an OpenMP region) over its slices into its
 * own zeroed gradient model, and the gradients are then added in worker
 * order, element by element, so the sum never depends on scheduling.
 * Each pass's cross-entropy gradient is scaled by its share of the
 * step's loss positions, so the step's loss is the mean over all loss
 * positions of the batch. Norms are summed serially in double. Small
 * models have matrices too small for BLAS threads to pay off, hence one
 * single-threaded worker per core. Recall is measured the same way:
 * sequences in length order, chunks padded to their own longest. */
#include "world/train.h"
#include "world/train_net.h"

#include "base/errors.h"
#include "base/hash.h"
#include "base/splitmix.h"
#include "world/train_checkpoint.h"
#include "base/clock.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVAL_CHUNK 64
/* Sequences per training forward/backward pass (see the top). */
#define TRAIN_SLICE 8

void train_options_default(train_options *o)
{
    memset(o, 0, sizeof *o);
    o->steps = 2000;
    o->batch_size = 32;
    o->lr = 3e-3f;
    o->min_lr_frac = 0.1f;
    o->warmup = 50;
    o->schedule = TRAIN_COSINE;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->weight_decay = 0.1f;
    o->grad_clip = 1.0f;
    o->loss = TRAIN_LOSS_ALL;
    o->seed = 1;
    o->threads = 1;
    o->eval_every = 50;
}

float train_lr(const train_options *o, size_t s)
{
    if (s < o->warmup)
        return o->lr * (float)(s + 1) / (float)o->warmup;
    double lo = (double)o->lr * o->min_lr_frac;
    double span = o->steps > o->warmup ? (double)(o->steps - o->warmup) : 1;
    double p = (double)(s - o->warmup) / span;
    if (p > 1)
        p = 1;
    double f = o->schedule == TRAIN_LINEAR ? 1 - p
                                           : 0.5 * (1 + cos(M_PI * p));
    return (float)(lo + (o->lr - lo) * f);
}

/* Tensors smaller than this are updated on the calling thread. */
#define ADAMW_PARALLEL_MIN 65536

void train_adamw(float *param, const float *grad, float *m, float *v,
                 size_t n, float lr, float beta1, float beta2, float eps,
                 float decay, size_t t)
{
    float c1 = 1.0f - powf(beta1, (float)t);
    float c2 = 1.0f - powf(beta2, (float)t);
    /* each element on its own: the same bits on any number of threads */
#pragma omp parallel for simd if (n >= ADAMW_PARALLEL_MIN && !omp_in_parallel())
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        float mh = m[i] / c1, vh = v[i] / c2;
        param[i] -= lr * (mh / (sqrtf(vh) + eps) + decay * param[i]);
    }
}

static int check_seqs(const train_net *net, const train_seq *s, size_t n,
                      const char *what)
{
    size_t ctx = train_net_positions(net), V = train_net_vocab(net);
    for (size_t i = 0; i < n; i++) {
        if (s[i].len < 2 || s[i].len > ctx ||
            s[i].answer_start < 1 || s[i].answer_start >= s[i].len)
            return err_set(ERR_INVALID, "%s sequence %zu: length %zu, answer "
                           "at %zu (context %zu)", what, i, s[i].len,
                           s[i].answer_start, ctx);
        for (size_t k = 0; k < s[i].len; k++)
            if (s[i].tokens[k] < 0 ||
                (size_t)s[i].tokens[k] >= V)
                return err_set(ERR_INVALID, "%s sequence %zu: token id %d "
                               "outside the vocabulary (%zu)", what, i,
                               s[i].tokens[k], V);
    }
    return 0;
}

/* The loss positions of a sequence: [first, len-1) predicting t+1. */
static size_t loss_first(const train_seq *s, train_loss mode)
{
    return mode == TRAIN_LOSS_ANSWER ? s->answer_start - 1 : 0;
}

/* out[0..n): idx[0..n) (or 0..n-1 when idx is NULL) by sequence length,
 * shortest first, equal lengths in their order in idx (a stable
 * counting sort; every len <= max_len). */
static int length_order(const train_seq *seqs, const size_t *idx, size_t n,
                        size_t max_len, size_t *out)
{
    size_t *start = calloc(max_len + 2, sizeof *start);
    if (!start)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        start[seqs[idx ? idx[i] : i].len + 1]++;
    for (size_t l = 1; l <= max_len + 1; l++)
        start[l] += start[l - 1];
    for (size_t i = 0; i < n; i++) {
        size_t k = idx ? idx[i] : i;
        out[start[seqs[k].len]++] = k;
    }
    free(start);
    return 0;
}

/* ---- recall ------------------------------------------------------------ */

/* Recall of seqs[idx[0..B)] with one workspace; writes correct[]. */
static int recall_chunk(const train_net *m, train_net_acts *a, int *tok,
                        size_t *pos, const train_seq *seqs, const size_t *idx,
                        size_t B, unsigned char *correct)
{
    size_t T = 0, nl = 0, V = train_net_vocab(m);
    for (size_t b = 0; b < B; b++)
        if (seqs[idx[b]].len > T)
            T = seqs[idx[b]].len;
    for (size_t b = 0; b < B; b++) {
        const train_seq *s = &seqs[idx[b]];
        for (size_t t = 0; t < T; t++)
            tok[b * T + t] = t < s->len ? s->tokens[t] : 0;
        for (size_t t = s->answer_start - 1; t + 1 < s->len; t++)
            pos[nl++] = b * T + t;
    }
    int rc = train_net_forward(m, a, tok, B, T, pos, nl);
    if (rc)
        return rc;
    const float *logits = train_net_logits(a);
    size_t row = 0;
    for (size_t b = 0; b < B; b++) {
        const train_seq *s = &seqs[idx[b]];
        int ok = 1;
        for (size_t t = s->answer_start - 1; t + 1 < s->len; t++, row++) {
            const float *l = logits + row * V;
            size_t best = 0;
            for (size_t v = 1; v < V; v++)
                if (l[v] > l[best])
                    best = v;
            if ((int)best != s->tokens[t + 1])
                ok = 0;
        }
        correct[idx[b]] = (unsigned char)ok;
    }
    return 0;
}

int train_net_recall(const train_net *m, const train_seq *seqs, size_t n,
                     int threads, double *recall, unsigned char *correct)
{
    *recall = 0;
    if (n == 0)
        return 0;
    int rc = check_seqs(m, seqs, n, "recall");
    if (rc)
        return rc;
    size_t T = 0;
    for (size_t i = 0; i < n; i++)
        if (seqs[i].len > T)
            T = seqs[i].len;
    unsigned char *ok = correct ? correct : malloc(n);
    size_t *order = malloc(n * sizeof *order);
    if (!ok || !order || length_order(seqs, NULL, n, T, order)) {
        if (!correct)
            free(ok);
        free(order);
        return err_set(ERR_NOMEM, "out of memory measuring recall");
    }
    size_t nchunks = (n + EVAL_CHUNK - 1) / EVAL_CHUNK;
    int nt = threads < 1 ? 1 : threads;
    if ((size_t)nt > nchunks)
        nt = (int)nchunks;
    rc = 0;
#pragma omp parallel num_threads(nt)
    {
        train_net_acts *a = NULL;
        int *tok = malloc(EVAL_CHUNK * T * sizeof *tok);
        size_t *pos = malloc(EVAL_CHUNK * T * sizeof *pos);
        int my = (!tok || !pos) ? ERR_NOMEM
                                : train_net_acts_new(&a, m, EVAL_CHUNK, T,
                                                     EVAL_CHUNK * T, 1);
#pragma omp for schedule(dynamic, 1)
        for (size_t c = 0; c < nchunks; c++) {
            if (my)
                continue;
            size_t lo = c * EVAL_CHUNK;
            size_t hi = lo + EVAL_CHUNK < n ? lo + EVAL_CHUNK : n;
            my = recall_chunk(m, a, tok, pos, seqs, order + lo, hi - lo, ok);
        }
#pragma omp critical
        if (my && !rc)
            rc = my;
        train_net_acts_free(a);
        free(tok);
        free(pos);
    }
    if (rc == ERR_NOMEM)
        err_set(ERR_NOMEM, "out of memory measuring recall");
    if (!rc) {
        size_t good = 0;
        for (size_t i = 0; i < n; i++)
            good += ok[i];
        *recall = (double)good / (double)n;
    }
    if (!correct)
        free(ok);
    free(order);
    return rc;
}

int train_recall(const gpt2_model *m, const train_seq *seqs, size_t n,
                 int threads, double *recall, unsigned char *correct)
{
    train_net net = train_net_of_gpt2((gpt2_model *)m);
    return train_net_recall(&net, seqs, n, threads, recall, correct);
}

/* ---- training ---------------------------------------------------------- */

typedef struct {
    train_net_acts *acts;
    train_net grads;
    int *tok;          /* (TRAIN_SLICE, T) */
    size_t *pos;       /* (TRAIN_SLICE * T) logit positions */
    int *target;       /* (TRAIN_SLICE * T) */
    float *dlogits;    /* (TRAIN_SLICE * T, V) */
    double loss_sum;   /* sum over its loss positions */
    int rc;
} worker;

static void workers_free(worker *w, int n)
{
    if (!w)
        return;
    for (int i = 0; i < n; i++) {
        train_net_acts_free(w[i].acts);
        train_net_grads_free(&w[i].grads);
        free(w[i].tok);
        free(w[i].pos);
        free(w[i].target);
        free(w[i].dlogits);
    }
    free(w);
}

/* Forward + backward of one slice, seqs idx[0..b) (b <= TRAIN_SLICE),
 * padded to its longest: adds its gradient to w->grads and its loss to
 * w->loss_sum. */
static int slice_pass(const train_net *m, worker *w, const train_seq *seqs,
                      const size_t *idx, size_t b, train_loss mode,
                      double scale)
{
    size_t T = 0, nl = 0, V = train_net_vocab(m);
    for (size_t i = 0; i < b; i++)
        if (seqs[idx[i]].len > T)
            T = seqs[idx[i]].len;
    for (size_t i = 0; i < b; i++) {
        const train_seq *s = &seqs[idx[i]];
        for (size_t t = 0; t < T; t++)
            w->tok[i * T + t] = t < s->len ? s->tokens[t] : 0;
        for (size_t t = loss_first(s, mode); t + 1 < s->len; t++) {
            w->pos[nl] = i * T + t;
            w->target[nl++] = s->tokens[t + 1];
        }
    }
    int rc = train_net_forward(m, w->acts, w->tok, b, T, w->pos, nl);
    if (rc)
        return rc;
    double mean = gpt2_crossentropy(train_net_logits(w->acts), w->target, nl,
                                    V, w->dlogits);
    w->loss_sum += mean * (double)nl;
    /* d(mean over the whole batch)/dlogits = d(mean here) * nl / total */
    float f = (float)(scale * (double)nl);
    for (size_t i = 0; i < nl * V; i++)
        w->dlogits[i] *= f;
    return train_net_backward(m, w->acts, w->tok, b, T, w->pos, nl,
                              w->dlogits, &w->grads);
}

/* Worker k's slices of a batch of n_slices: dealt in a snake order (0 1
 * 1 0 0 1 ... for two workers), so that with the batch sorted by length
 * each worker gets about as many tokens. */
static int slice_owner(size_t slice, int nt)
{
    size_t round = slice / (size_t)nt, at = slice % (size_t)nt;
    return (int)(round % 2 ? (size_t)nt - 1 - at : at);
}

/* Worker k's share of a step: w->grads zeroed, then each of its slices
 * of sorted[0..B) added. */
static int worker_step(const train_net *m, worker *w, int k, int nt,
                       const train_seq *seqs, const size_t *sorted, size_t B,
                       train_loss mode, double scale)
{
    size_t P;
    float *g = train_net_params(&w->grads, &P);
    memset(g, 0, P * sizeof(float));
    w->loss_sum = 0;
    size_t n_slices = (B + TRAIN_SLICE - 1) / TRAIN_SLICE;
    for (size_t j = 0; j < n_slices; j++) {
        if (slice_owner(j, nt) != k)
            continue;
        size_t lo = j * TRAIN_SLICE;
        size_t b = lo + TRAIN_SLICE < B ? TRAIN_SLICE : B - lo;
        int rc = slice_pass(m, w, seqs, sorted + lo, b, mode, scale);
        if (rc)
            return rc;
    }
    return 0;
}

/* Workers for slices of up to TRAIN_SLICE sequences of up to T tokens. */
static int workers_new(worker **out, int nt, const train_net *m, size_t T)
{
    size_t b = TRAIN_SLICE, V = train_net_vocab(m);
    worker *w = calloc((size_t)nt, sizeof *w);
    int rc = 0;
    *out = NULL;
    if (!w)
        return err_set(ERR_NOMEM, "out of memory setting up training");
    for (int i = 0; i < nt; i++) {
        if ((rc = train_net_acts_new(&w[i].acts, m, b, T, b * T, 0)) ||
            (rc = train_net_grads_new(&w[i].grads, m)))
            goto fail;
        w[i].tok = malloc(b * T * sizeof *w[i].tok);
        w[i].pos = malloc(b * T * sizeof *w[i].pos);
        w[i].target = malloc(b * T * sizeof *w[i].target);
        w[i].dlogits = malloc(b * T * V * sizeof *w[i].dlogits);
        if (!w[i].tok || !w[i].pos || !w[i].target || !w[i].dlogits) {
            rc = err_set(ERR_NOMEM, "out of memory setting up training");
            goto fail;
        }
    }
    *out = w;
    return 0;
fail:
    workers_free(w, nt);
    return rc;
}

/* One batch: loss and gradient of the mean loss over the batch's loss
 * positions, the gradient summed in worker order into w[0].grads.
 * sorted: room for B indices (the batch in length order). */
static int batch_step(const train_net *m, worker *w, int nt,
                      const train_seq *seqs, const size_t *batch, size_t B,
                      train_loss mode, size_t *sorted, double *loss)
{
    size_t total = 0, T = 0, P;
    train_net_params(m, &P);
    for (size_t i = 0; i < B; i++) {
        total += seqs[batch[i]].len - 1 - loss_first(&seqs[batch[i]], mode);
        if (seqs[batch[i]].len > T)
            T = seqs[batch[i]].len;
    }
    double scale = 1.0 / (double)total;
    if (length_order(seqs, batch, B, T, sorted))
        return err_set(ERR_NOMEM, "out of memory in a training step");
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int k = 0; k < nt; k++)
        w[k].rc = worker_step(m, &w[k], k, nt, seqs, sorted, B, mode, scale);
    double sum = 0;
    for (int k = 0; k < nt; k++) {
        if (w[k].rc)
            return w[k].rc;
        sum += w[k].loss_sum;
    }
    *loss = sum / (double)total;
    float *g = train_net_params(&w[0].grads, &P);
    float *gk[256];
    for (int k = 0; k < nt && k < 256; k++)
        gk[k] = train_net_params(&w[k].grads, &P);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < P; i++) {
        float s = g[i];
        for (int k = 1; k < nt; k++)
            s += gk[k][i];
        g[i] = s;
    }
    return 0;
}

int train_net_batch_grad(const train_net *m, const train_seq *seqs,
                         const size_t *idx, size_t n, train_loss mode,
                         int threads, float *grads, double *loss)
{
    int nt = threads < 1 ? 1 : threads;
    size_t T = 0;
    if (n == 0)
        return err_set(ERR_INVALID, "empty batch");
    for (size_t i = 0; i < n; i++) {
        int rc = check_seqs(m, &seqs[idx[i]], 1, "batch");
        if (rc)
            return rc;
        if (seqs[idx[i]].len > T)
            T = seqs[idx[i]].len;
    }
    worker *w;
    size_t *sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        return err_set(ERR_NOMEM, "out of memory setting up training");
    int rc = workers_new(&w, nt, m, T);
    if (!rc) {
        rc = batch_step(m, w, nt, seqs, idx, n, mode, sorted, loss);
        size_t P;
        const float *g = train_net_params(&w[0].grads, &P);
        if (!rc && grads)
            memcpy(grads, g, P * sizeof(float));
        workers_free(w, nt);
    }
    free(sorted);
    return rc;
}

int train_batch_grad(const gpt2_model *m, const train_seq *seqs,
                     const size_t *idx, size_t n, train_loss mode,
                     int threads, gpt2_model *grads, double *loss)
{
    train_net net = train_net_of_gpt2((gpt2_model *)m);
    return train_net_batch_grad(&net, seqs, idx, n, mode, threads,
                                grads ? grads->memory : NULL, loss);
}

static int eval_all(const train_net *m, const train_eval *evals,
                    size_t n_evals, int threads, double *rec, int *met)
{
    *met = n_evals > 0;
    for (size_t e = 0; e < n_evals && e < 8; e++) {
        int rc = train_net_recall(m, evals[e].seqs, evals[e].n, threads,
                                  &rec[e], NULL);
        if (rc)
            return rc;
        if (rec[e] < evals[e].goal)
            *met = 0;
    }
    return 0;
}

static void report_progress(const train_options *o, size_t step, double loss,
                            const train_eval *evals, size_t n_evals,
                            const double *rec)
{
    if (!o->progress)
        return;
    char label[512];
    size_t len = (size_t)snprintf(label, sizeof label,
                                  "step %zu/%zu loss %.4f", step, o->steps,
                                  loss);
    for (size_t e = 0; e < n_evals && e < 8 && len < sizeof label; e++)
        len += (size_t)snprintf(label + len, sizeof label - len,
                                " %s %.3f", evals[e].name ? evals[e].name
                                                          : "recall", rec[e]);
    o->progress(o->progress_ctx, label, step, o->steps);
}

/* Adds one number to the fingerprint, widened so that every field
 * hashes the same way whatever its C type. */
static void fp_u64(hash_stream *h, uint64_t v) { hash_stream_update(h, &v, 8); }
static void fp_f64(hash_stream *h, double v) { hash_stream_update(h, &v, 8); }

static void fp_seqs(hash_stream *h, const train_seq *seqs, size_t n)
{
    fp_u64(h, n);
    for (size_t i = 0; i < n; i++) {
        fp_u64(h, seqs[i].len);
        fp_u64(h, seqs[i].answer_start);
        hash_stream_update(h, seqs[i].tokens, seqs[i].len * sizeof(int));
    }
}

/* The fingerprint of a training (train_checkpoint.h): everything that
 * decides its course. The model's shape and initial weights, the data,
 * the recall sets and their goals, every option but the progress
 * callback, and the number of workers (the sums depend on it). */
static int training_fingerprint(const train_net *m, const train_seq *seqs,
                                size_t n, const train_eval *evals,
                                size_t n_evals, const train_options *o,
                                int nt, char out[33])
{
    hash_stream *h;
    int rc = hash_stream_open(&h);
    if (rc)
        return rc;
    size_t P;
    const float *params = train_net_params(m, &P);
    hash_stream_update(h, "stamp training 1", 16);
    train_net_fingerprint(m, h);
    hash_stream_update(h, params, P * sizeof(float));
    fp_seqs(h, seqs, n);
    fp_u64(h, n_evals);
    for (size_t e = 0; e < n_evals; e++) {
        fp_seqs(h, evals[e].seqs, evals[e].n);
        fp_f64(h, evals[e].goal);
    }
    fp_u64(h, o->steps);
    fp_u64(h, o->batch_size);
    fp_f64(h, o->lr);
    fp_f64(h, o->min_lr_frac);
    fp_u64(h, o->warmup);
    fp_u64(h, (uint64_t)o->schedule);
    fp_f64(h, o->beta1);
    fp_f64(h, o->beta2);
    fp_f64(h, o->eps);
    fp_f64(h, o->weight_decay);
    fp_f64(h, o->grad_clip);
    fp_u64(h, (uint64_t)o->loss);
    fp_u64(h, o->seed);
    fp_u64(h, (uint64_t)nt);
    fp_u64(h, o->eval_every);
    hash_stream_hex(h, out);
    hash_stream_close(h);
    return 0;
}

int train_run(gpt2_model *m, const train_seq *seqs, size_t n,
              const train_eval *evals, size_t n_evals,
              const train_options *o, train_report *rep)
{
    train_net net = train_net_of_gpt2(m);
    return train_net_run(&net, seqs, n, evals, n_evals, o, rep);
}

int train_net_run(const train_net *m, const train_seq *seqs, size_t n,
                  const train_eval *evals, size_t n_evals,
                  const train_options *o, train_report *rep)
{
    memset(rep, 0, sizeof *rep);
    double t0 = clock_seconds();
    size_t P;
    float *params = train_net_params(m, &P);
    int nt = o->threads < 1 ? 1 : o->threads;
    if (n == 0 || o->batch_size == 0 || o->steps == 0)
        return err_set(ERR_INVALID, "nothing to train (%zu sequences, batch "
                       "%zu, %zu steps)", n, o->batch_size, o->steps);
    if (n_evals > 8)
        return err_set(ERR_INVALID, "%zu recall sets (at most 8)", n_evals);
    if (nt > 256)
        return err_set(ERR_INVALID, "%d training threads (at most 256)", nt);
    int rc = check_seqs(m, seqs, n, "training");
    for (size_t e = 0; !rc && e < n_evals; e++)
        rc = check_seqs(m, evals[e].seqs, evals[e].n, evals[e].name);
    if (rc)
        return rc;

    size_t B = o->batch_size < n ? o->batch_size : n;
    size_t T = 0;
    for (size_t i = 0; i < n; i++)
        if (seqs[i].len > T)
            T = seqs[i].len;
    worker *w = NULL;
    size_t *order = malloc(n * sizeof *order);
    size_t *batch = malloc(B * sizeof *batch);
    size_t *sorted = malloc(B * sizeof *sorted);
    float *mom = calloc(P, sizeof *mom), *vel = calloc(P, sizeof *vel);
    if (!order || !batch || !sorted || !mom || !vel)
        goto nomem;
    if ((rc = workers_new(&w, nt, m, T)))
        goto done;

    uint64_t rng = o->seed ^ 0x545241494e4b4559ULL;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    splitmix_shuffle(order, n, &rng);
    size_t cursor = 0, since = 0, step = 0;
    double loss_acc = 0, rec[8] = {0};
    int met = 0;
    char fingerprint[33];
    train_state st = {.P = P, .params = params, .mom = mom, .vel = vel,
                      .n = n, .order = order};
    if (o->checkpoint) {
        if ((rc = training_fingerprint(m, seqs, n, evals, n_evals, o, nt,
                                       fingerprint)) ||
            (rc = train_checkpoint_load(o->checkpoint, fingerprint, &st,
                                        &rep->checkpoint)))
            goto done;
        if (rep->checkpoint == CHECKPOINT_LOADED) {
            step = rep->resumed_from = st.step;
            cursor = st.cursor;
            rng = st.rng;
        }
    }

    for (; step < o->steps; step++) {
        for (size_t i = 0; i < B; i++) {
            if (cursor == n) {
                splitmix_shuffle(order, n, &rng);
                cursor = 0;
            }
            batch[i] = order[cursor++];
        }
        double loss;
        if ((rc = batch_step(m, w, nt, seqs, batch, B, o->loss, sorted,
                             &loss)))
            goto done;
        if (!isfinite(loss)) {
            rc = err_set(ERR_NUMERIC, "training diverged at step %zu (loss "
                         "%g)", step + 1, loss);
            goto done;
        }
        loss_acc += loss;
        since++;

        float *g = train_net_params(&w[0].grads, &P);
        double norm2 = 0;
        for (size_t i = 0; i < P; i++)
            norm2 += (double)g[i] * g[i];
        double norm = sqrt(norm2);
        if (!isfinite(norm)) {
            rc = err_set(ERR_NUMERIC, "gradient not finite at step %zu",
                         step + 1);
            goto done;
        }
        if (o->grad_clip > 0 && norm > o->grad_clip) {
            float f = (float)(o->grad_clip / norm);
            for (size_t i = 0; i < P; i++)
                g[i] *= f;
        }
        float lr = train_lr(o, step);
        size_t off = 0, numel;
        int matrix;
        for (size_t k = 0; train_net_tensor(m, k, &numel, &matrix); k++) {
            train_adamw(params + off, g + off, mom + off, vel + off, numel,
                        lr, o->beta1, o->beta2, o->eps,
                        matrix ? o->weight_decay : 0.0f, step + 1);
            off += numel;
        }

        int last = step + 1 == o->steps;
        if ((o->eval_every && (step + 1) % o->eval_every == 0) || last) {
            if ((rc = eval_all(m, evals, n_evals, nt, rec, &met)))
                goto done;
            rep->loss = loss_acc / (double)since;
            report_progress(o, step + 1, rep->loss, evals, n_evals, rec);
            loss_acc = 0;
            since = 0;
            if (met) {
                step++;
                break;
            }
            /* a run that goes on saves where it is; one that ends here
             * has nothing to continue */
            if (o->checkpoint && !last) {
                st.step = step + 1;
                st.cursor = cursor;
                st.rng = rng;
                if ((rc = train_checkpoint_save(o->checkpoint, fingerprint,
                                                &st)))
                    goto done;
            }
        }
    }
    rep->steps = step;
    rep->reached_goal = met;
    for (size_t e = 0; e < n_evals && e < 8; e++)
        rep->recall[e] = rec[e];
    rc = 0;
    goto done;
nomem:
    rc = err_set(ERR_NOMEM, "out of memory setting up training");
done:
    workers_free(w, nt);
    free(order);
    free(batch);
    free(sorted);
    free(mom);
    free(vel);
    rep->seconds = clock_seconds() - t0;
    return rc;
}
