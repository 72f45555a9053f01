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

/* Loads the stored statistics of `layer` into c (ERR_NOTFOUND when
 * there are none). */
int keystats_load(store_txn *t, size_t layer, keystats_sum *c);

/* Makes sure each of layers[0..n) has statistics over at least
 * `sequences` corpus lines (or the whole corpus, if shorter): loads
 * them, and runs the base model over the corpus lines not yet consumed
 * when more are wanted, storing the result in the write transaction t.
 * With `means` non-NULL, means[i] gets a malloc'ed (F, F) C_l.
 * *computed tells whether anything was computed. */
int keystats_ensure(store_txn *t, const size_t *layers, size_t n,
                    size_t sequences, const char *corpus_path,
                    double **means, int *computed, progress_fn progress,
                    void *ctx);

#endif
