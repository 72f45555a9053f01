/* keystats_dist: the key statistics shared among MPI ranks (see
 * keystats.h, keystats_dist_accumulate; base/dist.h for the messages).
 * Rank 0 splits the corpus lines into one contiguous share per rank, at
 * lines where one process would add its gathered keys into the float64
 * sums anyway, so every share gathers the same keys in the same float
 * ssyrk groups as one process; what differs is only where the float64
 * additions of those group sums are grouped (a worker's sum starts from
 * zero and is added to rank 0's at the end). The message of a share:
 * rank 0 broadcasts the model directory, the corpus path and a header
 * (u64: k, F, the k layers, then each rank's [first, end) lines of the
 * corpus); each worker answers with a status, then per layer its key
 * count and its (F, F) sum. */
#include "memit/keystats.h"
#include "base/dist.h"
#include "base/errors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct keystats_worker {
    char *dir, *path;   /* what is loaded */
    lm_model m;
    tokenizer *tok;
    char **lines;
    size_t n_lines;
    int loaded;
};

void keystats_worker_free(keystats_worker *w)
{
    if (!w) return;
    if (w->loaded) lm_model_free(&w->m);
    tokenizer_close(w->tok);
    for (size_t i = 0; i < w->n_lines; i++) free(w->lines[i]);
    free(w->lines);
    free(w->dir);
    free(w->path);
    free(w);
}

/* The share boundaries b[0..N]: b[r] the first flush point at or after
 * rank r's even share of the n lines. */
static void share_bounds(const size_t *pts, size_t n_pts, size_t n, int N,
                         size_t *b)
{
    b[0] = 0;
    for (int r = 1; r < N; r++) {
        size_t ideal = n * (size_t)r / (size_t)N, j = 0;
        while (j + 1 < n_pts && pts[j] < ideal) j++;
        b[r] = pts[j] > b[r - 1] ? pts[j] : b[r - 1];
        if (b[r] > n) b[r] = n;
    }
    b[N] = n;
}

/* Rank 0: every worker's answer, in rank order, added into cov; all are
 * received even after a failure (a worker blocks in its send until
 * then). */
static int gather_sums(keystats_sum *cov, size_t k, const size_t *b, int N)
{
    size_t F = cov[0].F;
    double *buf = malloc(F * F * sizeof *buf);
    int rc = buf ? 0 : ERR_NOMEM;
    for (int r = 1; r < N; r++) {
        int wrc = dist_recv_status(r, "key statistics");
        if (wrc) { if (!rc) rc = wrc; continue; }
        for (size_t i = 0; i < k; i++) {
            uint64_t tokens = 0;
            wrc = dist_recv(r, &tokens, sizeof tokens, "key statistics");
            if (!wrc) wrc = buf ? dist_recv(r, buf, F * F * sizeof *buf,
                                            "key statistics")
                                : ERR_NOMEM;
            if (wrc) return rc ? rc : wrc; /* the link itself failed */
            if (rc) continue;
            double *sum = cov[i].sum;
            for (size_t j = 0; j < F * F; j++) sum[j] += buf[j];
            cov[i].tokens += tokens;
            cov[i].sequences += b[r + 1] - b[r];
        }
    }
    free(buf);
    return rc;
}

int keystats_dist_accumulate(keystats_sum *cov, const size_t *layers,
                             size_t k, const lm_model *m,
                             const tokenizer *tok, char *const *lines,
                             size_t start, size_t upto, const char *model_dir,
                             const char *corpus_path, progress_fn progress,
                             void *ctx)
{
    int N = dist_size();
    size_t n = upto - start, *pts = NULL, n_pts = 0;
    size_t *b = malloc(((size_t)N + 1) * sizeof *b);
    size_t head_n = 2 + k + 2 * (size_t)N;
    uint64_t *head = malloc(head_n * sizeof *head);
    int rc = b && head ? 0 : ERR_NOMEM;
    if (!rc) rc = keystats_sum_flush_points(m, tok, lines + start, n, &pts,
                                            &n_pts);
    if (rc) goto out; /* the workers have not been told anything yet */
    share_bounds(pts, n_pts, n, N, b);
    head[0] = k;
    head[1] = m->config.n_inner;
    for (size_t i = 0; i < k; i++) head[2 + i] = layers[i];
    for (int r = 0; r < N; r++) {
        head[2 + k + 2 * (size_t)r] = start + b[r];
        head[3 + k + 2 * (size_t)r] = start + b[r + 1];
    }
    void *dir = (void *)model_dir, *path = (void *)corpus_path;
    size_t dir_len = strlen(model_dir) + 1, path_len = strlen(corpus_path) + 1;
    void *hp = head;
    size_t head_bytes = head_n * sizeof *head;
    if ((rc = dist_command(DIST_CMD_STATS)) ||
        (rc = dist_bcast_blob(&dir, &dir_len)) ||
        (rc = dist_bcast_blob(&path, &path_len)) ||
        (rc = dist_bcast_blob(&hp, &head_bytes)))
        goto out;
    if (b[1] > b[0])
        rc = keystats_sum_accumulate(cov, layers, k, m, tok,
                                     lines + start + b[0], b[1] - b[0],
                                     progress, ctx);
    int grc = gather_sums(cov, k, b, N);
    if (!rc) rc = grc;
    if (!rc && progress) progress(ctx, "key statistics", n, n);
out:
    free(pts);
    free(b);
    free(head);
    return rc;
}

/* Loads (or keeps) the model, tokenizer and corpus lines a share needs. */
static int worker_load(keystats_worker *w, const char *dir, const char *path)
{
    int rc = 0;
    if (!w->dir || strcmp(w->dir, dir)) {
        if (w->loaded) lm_model_free(&w->m);
        tokenizer_close(w->tok);
        w->tok = NULL;
        w->loaded = 0;
        free(w->dir);
        if (!(w->dir = strdup(dir))) return ERR_NOMEM;
        if ((rc = lm_model_load(&w->m, dir))) { free(w->dir); w->dir = NULL; return rc; }
        w->loaded = 1;
        if ((rc = tokenizer_open_dir(&w->tok, dir))) { free(w->dir); w->dir = NULL; return rc; }
    }
    if (!w->path || strcmp(w->path, path)) {
        for (size_t i = 0; i < w->n_lines; i++) free(w->lines[i]);
        free(w->lines);
        w->lines = NULL;
        w->n_lines = 0;
        free(w->path);
        if (!(w->path = strdup(path))) return ERR_NOMEM;
        if ((rc = keystats_read_corpus(path, &w->lines, &w->n_lines))) {
            free(w->path);
            w->path = NULL;
        }
    }
    return rc;
}

/* The worker's share: its sums from zero over lines [first, end). */
static int worker_share(keystats_worker *w, const uint64_t *head,
                        size_t head_n, keystats_sum **sums)
{
    size_t k = head[0], F = head[1], r = (size_t)dist_rank();
    if (head_n != 2 + k + 2 * (size_t)dist_size())
        return err_set(ERR_INVALID, "key statistics: a header of rank 0 "
                       "that does not fit %d ranks", dist_size());
    size_t first = head[2 + k + 2 * r], end = head[3 + k + 2 * r];
    if (w->m.config.n_inner != F)
        return err_set(ERR_INVALID, "the model in '%s' has %zu MLP units, "
                       "rank 0's has %zu", w->dir, w->m.config.n_inner, F);
    if (end > w->n_lines || first > end)
        return err_set(ERR_INVALID, "corpus '%s' has %zu lines here, rank 0 "
                       "asked for lines %zu-%zu", w->path, w->n_lines, first,
                       end);
    size_t *layers = malloc((k ? k : 1) * sizeof *layers);
    *sums = calloc(k ? k : 1, sizeof **sums);
    if (!layers || !*sums) { free(layers); return ERR_NOMEM; }
    int rc = 0;
    for (size_t i = 0; !rc && i < k; i++) {
        layers[i] = head[2 + i];
        rc = keystats_sum_init(&(*sums)[i], F);
    }
    if (!rc && end > first)
        rc = keystats_sum_accumulate(*sums, layers, k, &w->m, w->tok,
                                     w->lines + first, end - first, NULL,
                                     NULL);
    free(layers);
    return rc;
}

int keystats_worker_job(keystats_worker **wp)
{
    void *dir = NULL, *path = NULL, *hp = NULL;
    size_t dir_len = 0, path_len = 0, head_bytes = 0;
    keystats_sum *sums = NULL;
    int rc;
    if ((rc = dist_bcast_blob(&dir, &dir_len)) ||
        (rc = dist_bcast_blob(&path, &path_len)) ||
        (rc = dist_bcast_blob(&hp, &head_bytes)))
        goto out; /* a broken link: nothing to answer on */
    const uint64_t *head = hp;
    size_t k = head_bytes >= 8 ? head[0] : 0;
    if (!*wp && !(*wp = calloc(1, sizeof **wp))) rc = ERR_NOMEM;
    if (!rc) rc = worker_load(*wp, dir, path);
    if (!rc) rc = worker_share(*wp, head, head_bytes / sizeof *head, &sums);
    dist_test_pause();
    int src = dist_send_status(rc, rc ? err_message(rc) : NULL);
    for (size_t i = 0; !rc && !src && i < k; i++) {
        uint64_t tokens = sums[i].tokens;
        if (!(src = dist_send(&tokens, sizeof tokens)))
            src = dist_send(sums[i].sum, sums[i].F * sums[i].F * sizeof(double));
    }
    if (!rc) rc = src;
out:
    for (size_t i = 0; sums && i < (hp && head_bytes >= 8 ? ((uint64_t *)hp)[0] : 0); i++)
        keystats_sum_free(&sums[i]);
    free(sums);
    free(dir);
    free(path);
    free(hp);
    return rc;
}
