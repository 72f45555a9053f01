/* keystats: stored key statistics and their computation from a corpus
 * (see keystats.h). The statistics belong to the base model: they are
 * computed on it, never on an edited one, so every commit's update uses
 * the same C_l. */
#include "memit/keystats.h"
#include "base/dist.h"
#include "base/errors.h"
#include "model/lm.h"
#include "store/modelview.h"
#include "model/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int keystats_corpus_path(store_txn *t, const char *explicit_path, char **path)
{
    struct stat st;
    if (explicit_path) {
        if (stat(explicit_path, &st) || !S_ISREG(st.st_mode))
            return err_set(ERR_NOTFOUND, "corpus '%s' is not a readable file",
                           explicit_path);
        *path = strdup(explicit_path);
        return *path ? 0 : ERR_NOMEM;
    }
    char *dir = NULL;
    int rc = store_meta_get(t, "corpus", path);
    if (rc != ERR_NOTFOUND) return rc;
    if ((rc = modelview_model_dir(t, &dir))) return rc;
    size_t len = strlen(dir) + sizeof "/corpus.txt";
    *path = malloc(len);
    if (!*path) { free(dir); return ERR_NOMEM; }
    snprintf(*path, len, "%s/corpus.txt", dir);
    free(dir);
    if (stat(*path, &st) == 0 && S_ISREG(st.st_mode)) return 0;
    free(*path);
    *path = NULL;
    return err_set(ERR_NOTFOUND, "no key statistics and no corpus to compute "
                   "them from: run 'stamp stats --corpus FILE'");
}

static int model_id(store_txn *t, char **id)
{
    int rc = store_meta_get(t, "model_id", id);
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_STORE, "the store records no model id");
    return rc;
}

int keystats_load(store_txn *t, size_t layer, keystats_sum *c)
{
    char *id = NULL;
    const void *blob = NULL; /* LMDB memory: valid until the txn ends */
    size_t len = 0;
    int rc = model_id(t, &id);
    if (!rc) rc = store_stats_get(t, id, layer, &blob, &len);
    if (!rc) rc = keystats_sum_decode(c, blob, len);
    free(id);
    return rc;
}

int keystats_read_corpus(const char *path, char ***lines, size_t *n)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return err_set(ERR_IO, "cannot open corpus '%s'", path);
    char *line = NULL, **out = NULL;
    size_t cap = 0, count = 0, room = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&line, &cap, fp)) >= 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        if (got == 0) continue;
        if (count == room) {
            room = room ? 2 * room : 1024;
            char **grown = realloc(out, room * sizeof *out);
            if (!grown) { rc = ERR_NOMEM; break; }
            out = grown;
        }
        if (!(out[count] = strdup(line))) { rc = ERR_NOMEM; break; }
        count++;
    }
    if (!rc && ferror(fp)) rc = err_set(ERR_IO, "cannot read corpus '%s'", path);
    if (!rc && count == 0) rc = err_set(ERR_FORMAT, "corpus '%s' is empty", path);
    free(line);
    fclose(fp);
    if (rc) {
        for (size_t i = 0; i < count; i++) free(out[i]);
        free(out);
        return rc;
    }
    *lines = out;
    *n = count;
    return 0;
}

int keystats_ensure(store_txn *t, const size_t *layers, size_t n,
                    size_t sequences, const char *corpus_path,
                    double **means, int *computed, progress_fn progress,
                    void *ctx)
{
    keystats_sum *cov = calloc(n, sizeof *cov);
    char *id = NULL, *path = NULL, *dir = NULL, **lines = NULL;
    size_t n_lines = 0, from = SIZE_MAX;
    lm_model base = {0};
    tokenizer *tok = NULL;
    int rc = cov ? model_id(t, &id) : ERR_NOMEM;
    *computed = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        rc = keystats_load(t, layers[i], &cov[i]);
        if (rc == ERR_NOTFOUND) {
            err_clear();
            rc = 0;
        }
        if (!rc && cov[i].sequences < sequences && cov[i].sequences < from)
            from = cov[i].sequences;
    }
    if (!rc && from != SIZE_MAX) {
        rc = keystats_corpus_path(t, corpus_path, &path);
        if (!rc) rc = keystats_read_corpus(path, &lines, &n_lines);
        if (!rc && from < n_lines) {
            size_t upto = sequences < n_lines ? sequences : n_lines;
            rc = modelview_model_dir(t, &dir);
            if (!rc) rc = lm_model_load(&base, dir);
            if (!rc) rc = tokenizer_open_dir(&tok, dir);
            /* layers that consumed the same lines go through the corpus
             * together, in one pass of the model; layers may differ when
             * an earlier run asked for other layers */
            keystats_sum *group = calloc(n, sizeof *group);
            size_t *group_layers = calloc(n, sizeof *group_layers);
            if (!group || !group_layers) rc = ERR_NOMEM;
            for (size_t i = 0; !rc && i < n; i++)
                if (cov[i].F == 0) rc = keystats_sum_init(&cov[i], base.config.n_inner);
            while (!rc) {
                size_t start = SIZE_MAX, k = 0;
                for (size_t i = 0; i < n; i++)
                    if (cov[i].sequences < upto && cov[i].sequences < start)
                        start = cov[i].sequences;
                if (start == SIZE_MAX) break;
                for (size_t i = 0; i < n; i++)
                    if (cov[i].sequences == start) {
                        group[k] = cov[i];
                        group_layers[k++] = layers[i];
                    }
                if (dist_active()) /* shared with the MPI ranks */
                    rc = keystats_dist_accumulate(group, group_layers, k,
                                                  &base, tok, lines, start,
                                                  upto, dir, path, progress,
                                                  ctx);
                else
                    rc = keystats_sum_accumulate(group, group_layers, k,
                                                 &base, tok, lines + start,
                                                 upto - start, progress, ctx);
                for (size_t i = 0, j = 0; i < n; i++) /* counts came back */
                    if (cov[i].sequences == start) cov[i] = group[j++];
                for (size_t i = 0; !rc && i < n; i++) {
                    if (cov[i].sequences != upto) continue;
                    void *blob = NULL;
                    size_t len = 0;
                    rc = keystats_sum_encode(&cov[i], &blob, &len);
                    if (!rc) rc = store_stats_put(t, id, layers[i], blob, len);
                    free(blob);
                }
                *computed = 1;
            }
            free(group);
            free(group_layers);
        }
    }
    for (size_t i = 0; !rc && i < n; i++) {
        if (cov[i].tokens == 0) {
            rc = err_set(ERR_NOTFOUND, "no key statistics for layer %zu",
                         layers[i]);
            break;
        }
        if (means) rc = keystats_sum_take_mean(&cov[i], &means[i]);
    }
    if (rc && means)
        for (size_t i = 0; i < n; i++) { free(means[i]); means[i] = NULL; }
    for (size_t i = 0; cov && i < n; i++) keystats_sum_free(&cov[i]);
    for (size_t i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
    free(cov);
    free(id);
    free(path);
    free(dir);
    lm_model_free(&base);
    tokenizer_close(tok);
    return rc;
}
