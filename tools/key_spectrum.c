/* key_spectrum: how many edits a model's MLP keys can tell apart. For
 * the first N subjects of a world's facts.csv (one fact each, as
 * bench/one_batch.sh queues them), the MEMIT key of every layer at the
 * subject's last token, and per layer:
 *
 *   rank_1pct   eigenvalues of the centred keys' Gram matrix above 1% of
 *               the largest (directions with at least a tenth of the
 *               strongest one's spread)
 *   rank_90     directions holding 90% of the spread
 *   nn_cos      mean cosine (centred) of each key to its nearest other
 *               key among the N: near 1 when subjects look alike
 *   same_answer_cos, other_answer_cos
 *               mean cosine (centred) over pairs of subjects whose facts
 *               have the same prompt, with the same true answer / with
 *               different ones: far apart when the keys encode the
 *               answer rather than the subject
 *
 * A batch of N edits whose keys have far fewer than N strong directions
 * cannot be written without moving the other subjects that share them
 * (docs/world-models.md, "How many edits a world holds").
 *
 *   build/tools/key_spectrum WORLD [N]      (N default 1000)
 *
 * Prints one JSON line per layer. Not a test: an analysis for the docs. */
#include "base/blas_cpu.h"
#include "memit/editreq.h"
#include "base/errors.h"
#include "model/lm.h"
#include "memit/hparams.h"
#include "facts/ingest.h"
#include "memit/memit.h"
#include "model/tokenizer.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Requests for the first fact of each of the first n distinct subjects;
 * which[k] is the fact of r[k]. */
static size_t first_subjects(const ingest_result *res, const tokenizer *tok,
                             size_t max_len, size_t n, editreq *r,
                             size_t *which)
{
    size_t k = 0;
    for (size_t i = 0; i < res->n_facts && k < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(res->facts[j].subject, res->facts[i].subject);
        if (seen) continue;
        if (editreq_build(&r[k], &res->facts[i], tok, NULL, 0, max_len)) {
            err_clear();
            continue;
        }
        which[k++] = i;
    }
    return k;
}

/* Centres the n keys (n, F) in place on their mean. */
static void centre(double *K, size_t n, size_t F)
{
    for (size_t j = 0; j < F; j++) {
        double mu = 0;
        for (size_t i = 0; i < n; i++) mu += K[i * F + j];
        mu /= (double)n;
        for (size_t i = 0; i < n; i++) K[i * F + j] -= mu;
    }
}

/* Mean cosine over pairs with the same prompt and the same (same = 1) or
 * a different (same = 0) true answer, from the Gram matrix G (n, n). */
static double pair_cos(const double *G, size_t n, const fact *const *f,
                       int same)
{
    double sum = 0;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            if (strcmp(f[i]->prompt, f[j]->prompt) ||
                (strcmp(f[i]->target_true, f[j]->target_true) == 0) != same)
                continue;
            double d = sqrt(G[i * n + i] * G[j * n + j]);
            sum += d > 0 ? G[i * n + j] / d : 0;
            count++;
        }
    return count ? sum / (double)count : 0;
}

static void report_layer(size_t layer, const double *K, size_t n, size_t F,
                         const fact *const *f)
{
    double *G = malloc(n * n * sizeof(double)), *ev = malloc(n * sizeof(double));
    if (!G || !ev) { free(G); free(ev); return; }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n,
                (int)F, 1.0, K, (int)F, K, (int)F, 0.0, G, (int)n);
    /* nearest neighbour from the Gram matrix before dsyev overwrites it */
    double nn = 0;
    for (size_t i = 0; i < n; i++) {
        double best = -1;
        for (size_t j = 0; j < n; j++) {
            if (j == i) continue;
            double d = sqrt(G[i * n + i] * G[j * n + j]);
            double c = d > 0 ? G[i * n + j] / d : 0;
            if (c > best) best = c;
        }
        nn += best / (double)n;
    }
    double same = pair_cos(G, n, f, 1), other = pair_cos(G, n, f, 0);
    LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (int)n, G, (int)n, ev);
    double top = ev[n - 1], total = 0, acc = 0;
    size_t rank_1pct = 0, rank_90 = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i] > 0) total += ev[i];
        if (ev[i] > 1e-2 * top) rank_1pct++;
    }
    for (size_t i = n; i-- > 0 && acc < 0.9 * total; rank_90++)
        acc += ev[i] > 0 ? ev[i] : 0;
    printf("{\"layer\":%zu,\"keys\":%zu,\"rank_1pct\":%zu,\"rank_90\":%zu,"
           "\"nn_cos\":%.4f,\"same_answer_cos\":%.4f,"
           "\"other_answer_cos\":%.4f}\n",
           layer, n, rank_1pct, rank_90, nn, same, other);
    free(G);
    free(ev);
}

int main(int argc, char **argv)
{
    blas_cpu_use_best_kernels(argv);
    if (argc < 2 || argc > 3 || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: key_spectrum WORLD [N]\n");
        return argc < 2 || argc > 3 ? 2 : 0;
    }
    const char *dir = argv[1];
    size_t want = argc == 3 ? strtoul(argv[2], NULL, 10) : 1000;
    lm_model m = {0};
    tokenizer *tok = NULL;
    ingest_result res = {0};
    ingest_options opt = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/facts.csv", dir);
    int rc = lm_model_load(&m, dir);
    if (!rc) rc = tokenizer_open_dir(&tok, dir);
    if (!rc) rc = ingest_read(path, INGEST_CSV, &opt, &res);
    if (rc) {
        fprintf(stderr, "key_spectrum: %s\n", err_message(rc));
        return 1;
    }
    size_t F = m.config.n_inner;
    editreq *r = calloc(want ? want : 1, sizeof *r);
    size_t *which = calloc(want ? want : 1, sizeof *which);
    const fact **f = calloc(want ? want : 1, sizeof *f);
    size_t n = r && which && f ? first_subjects(&res, tok, m.config.n_positions,
                                                want, r, which)
                               : 0;
    for (size_t k = 0; k < n; k++) f[k] = &res.facts[which[k]];
    float *Kf = malloc((n ? n : 1) * F * sizeof(float));
    double *K = malloc((n ? n : 1) * F * sizeof(double));
    hparams h;
    hparams_default(&h, &m.config);
    if (n < 2 || !Kf || !K) {
        fprintf(stderr, "key_spectrum: need at least 2 subjects (got %zu)\n", n);
        return 1;
    }
    for (size_t l = 0; l < m.config.n_layer && !rc; l++) {
        rc = memit_keys(&m, r, n, l, l, &h, Kf, NULL);
        for (size_t i = 0; !rc && i < n * F; i++) K[i] = Kf[i];
        if (rc) break;
        centre(K, n, F);
        report_layer(l, K, n, F, f);
    }
    if (rc) fprintf(stderr, "key_spectrum: %s\n", err_message(rc));
    for (size_t i = 0; i < n; i++) editreq_free(&r[i]);
    free(r);
    free(which);
    free(f);
    free(K);
    free(Kf);
    ingest_result_free(&res);
    tokenizer_close(tok);
    lm_model_free(&m);
    return rc ? 1 : 0;
}
