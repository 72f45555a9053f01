/* keystats: the key statistics C_l of a store: read from the store's
 * `stats` database (keyed by the base model's id and the layer), or
 * computed on the base model from a corpus (one text per line) and put
 * into the store in the caller's write transaction. */
#ifndef STAMP_KEYSTATS_H
#define STAMP_KEYSTATS_H

#include "memit/keystats_sum.h"
#include "base/progress.h"
#include "store/store.h"

/* The corpus to use: `explicit_path` if given, else meta "corpus", else
 * MODEL_DIR/corpus.txt if it exists. *path malloc'ed; ERR_NOTFOUND with
 * a message saying what to do when there is none. */
int keystats_corpus_path(store_txn *t, const char *explicit_path,
                         char **path);

/* The non-empty lines of a corpus file (*lines and each line
 * malloc'ed), as keystats_ensure reads them. */
int keystats_read_corpus(const char *path, char ***lines, size_t *n);

/* keystats_sum_accumulate over lines[start..upto) of the corpus at
 * corpus_path, shared among the MPI ranks (base/dist.h): rank 0 sends
 * each worker a share of contiguous lines, split where the whole call
 * would add its gathered keys (keystats_sum_flush_points), sums its own
 * share into cov and adds the workers' float64 sums in rank order. The
 * result differs from one process's only in the order of those float64
 * additions, and is the same, bit for bit, for a given rank count. The
 * workers read the model from model_dir and the corpus from corpus_path,
 * paths that must be the same on every machine. Rank 0 only. */
int keystats_dist_accumulate(keystats_sum *cov, const size_t *layers,
                             size_t k, const lm_model *m,
                             const tokenizer *tok, char *const *lines,
                             size_t start, size_t upto, const char *model_dir,
                             const char *corpus_path, progress_fn progress,
                             void *ctx);

/* A worker rank's side of keystats_dist_accumulate: the model, tokenizer
 * and corpus it loaded for earlier shares (kept for the next). */
typedef struct keystats_worker keystats_worker;

/* Computes and sends rank 0 the share of the DIST_CMD_STATS just
 * received; a failure of its own is sent to rank 0 too (and returned). */
int keystats_worker_job(keystats_worker **w);
void keystats_worker_free(keystats_worker *w); /* accepts NULL */

/* Something a caller may show its user ("key statistics: ...": what
 * the statistics need in memory before they are computed). */
typedef void (*keystats_note_fn)(void *ctx, const char *text);

/* Checks that `need` bytes, held at once by the statistics and described
 * by `what` ("3 layers x 8192^2 x 8 bytes"), fit in the machine's
 * available memory (base/meminfo.h): ERR_NOMEM with both numbers when
 * they do not. With note non-NULL it is told both first. */
int keystats_check_memory(uint64_t need, const char *what,
                          keystats_note_fn note, void *ctx);

/* The header of the stored statistics of `layer` (ERR_NOTFOUND when
 * there are none): F, tokens, sequences and the record's size in bytes
 * (any pointer may be NULL). Decodes no sum. */
int keystats_info(store_txn *t, size_t layer, size_t *F, uint64_t *tokens,
                  uint64_t *sequences, size_t *bytes);

/* Loads the stored statistics of `layer` into c (ERR_NOTFOUND when
 * there are none). */
int keystats_load(store_txn *t, size_t layer, keystats_sum *c);

/* The mean C_l of `layer`'s stored statistics, *mean a malloc'ed (F, F)
 * that the caller frees: full and symmetric, or with `upper` only its
 * upper triangle written (keystats_sum_decode_mean_upper: a triangle's
 * memory, for spd_cholesky_in_place). The values are the same bits
 * either way. ERR_NOTFOUND, ERR_EMPTY (no tokens). Only one layer's
 * record is in memory at a time: the store's pages are given back. */
int keystats_load_mean(store_txn *t, size_t layer, int upper, double **mean,
                       size_t *F);

/* Makes sure each of layers[0..n) has statistics over at least
 * `sequences` corpus lines (or the whole corpus, if shorter): runs the
 * base model over the corpus lines not yet consumed when more are
 * wanted, storing the result in the write transaction t. Before it
 * computes anything it tells `note` what the float64 sums need (those
 * of the layers computed, held together through one pass of the corpus)
 * and refuses with ERR_NOMEM when that does not fit the machine
 * (keystats_check_memory). Reads only the records' headers of the
 * layers it does not extend. *computed tells whether anything was
 * computed. */
int keystats_ensure(store_txn *t, const size_t *layers, size_t n,
                    size_t sequences, const char *corpus_path, int *computed,
                    keystats_note_fn note, progress_fn progress, void *ctx);

/* keystats_ensure in steps of about `step_lines` corpus lines, each
 * stored in a write transaction of its own on s: a run that is killed
 * keeps the steps it finished, and the next run goes on from there.
 * Steps end where one pass over all the lines to cover would add its
 * gathered keys into the sums (keystats_sum_flush_points), so the sums
 * are the same bits however the work was cut into steps or runs (for
 * layers that start at the same line; a thread count and a rank count).
 * step_lines 0: one transaction. Each transaction that computed
 * anything also records corpus_path as the store's corpus (meta
 * "corpus"). Progress counts this run's lines. */
int keystats_ensure_steps(store *s, const size_t *layers, size_t n,
                          size_t sequences, const char *corpus_path,
                          size_t step_lines, int *computed,
                          keystats_note_fn note, progress_fn progress,
                          void *ctx);

#endif
