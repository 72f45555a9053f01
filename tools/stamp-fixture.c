/* stamp-fixture: builds things that command tests need, through the
 * library's own interfaces, so that a test can start from a known state
 * without running the whole pipeline:
 *
 *   stamp-fixture model --out DIR [--vocab DIR] [--positions N]
 *                 [--embd C] [--layers L] [--seed S]
 *       a small random GPT-2 (gpt2_model_save) with the tokenizer files
 *       of --vocab (default tests/data/gpt2-vocab: GPT-2's own), so that
 *       real text tokenizes as GPT-2 does.
 *   stamp-fixture commit --store DIR [-m MSG] [--limit N] [--time T]
 *                 [--scores ES,PS,NS]
 *       a commit record (docs/commit-record.md) for the first N queued
 *       versions (all by default), which become COMMITTED; HEAD moves to
 *       it. No weights change: log, show and status tests need records.
 *   stamp-fixture head --store DIR N
 *       sets HEAD (what a reset does to it).
 *   stamp-fixture hold --store DIR SECONDS
 *       holds a write transaction (and so the writer lock) that long,
 *       printing "holding" once it has it, then aborts it.
 *
 * Not part of stamp: a test tool. Errors go to stderr, exit 1. */
#include "base/blas_cpu.h"
#include "base/errors.h"
#include "model/gpt2.h"
#include "store/store.h"
#include "model/tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int die(int rc)
{
    fprintf(stderr, "stamp-fixture: %s\n", err_message(rc));
    return 1;
}

static const char *arg_value(int argc, char **argv, const char *name,
                             const char *dflt)
{
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return dflt;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[65536];
    size_t n;
    int rc = 0;
    if (!in || !out) rc = err_set(ERR_IO, "cannot copy '%s' to '%s': %s",
                                  from, to, strerror(errno));
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = err_set(ERR_IO, "cannot write '%s'", to);
    if (in) fclose(in);
    if (out && fclose(out) && !rc) rc = err_set(ERR_IO, "cannot write '%s'", to);
    return rc;
}

static int make_model(int argc, char **argv)
{
    const char *out = arg_value(argc, argv, "--out", NULL);
    const char *vocab = arg_value(argc, argv, "--vocab", "tests/data/gpt2-vocab");
    if (!out) {
        fprintf(stderr, "stamp-fixture model: --out DIR is required\n");
        return 2;
    }
    tokenizer *tok = NULL;
    int rc = tokenizer_open_dir(&tok, vocab);
    if (rc) return die(rc);
    gpt2_config c = {0};
    c.n_layer = (size_t)atoi(arg_value(argc, argv, "--layers", "2"));
    c.n_embd = (size_t)atoi(arg_value(argc, argv, "--embd", "8"));
    c.n_head = 2;
    c.n_positions = (size_t)atoi(arg_value(argc, argv, "--positions", "64"));
    c.vocab_size = tokenizer_vocab_size(tok);
    c.n_inner = 4 * c.n_embd;
    c.layer_norm_epsilon = 1e-5f;
    tokenizer_close(tok);
    gpt2_model m = {0};
    char from[4096], to[4096];
    mkdir(out, 0755);
    if ((rc = gpt2_model_init(&m, &c))) return die(rc);
    gpt2_model_init_random(&m, strtoull(arg_value(argc, argv, "--seed", "1"),
                                        NULL, 10));
    rc = gpt2_model_save(&m, out);
    gpt2_model_free(&m);
    if (rc) return die(rc);
    const char *files[] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s", vocab, files[i]);
        snprintf(to, sizeof to, "%s/%s", out, files[i]);
        if ((rc = copy_file(from, to))) return die(rc);
    }
    return 0;
}

static int make_commit(int argc, char **argv)
{
    const char *dir = arg_value(argc, argv, "--store", NULL);
    const char *msg = arg_value(argc, argv, "-m", "fixture commit");
    const char *when = arg_value(argc, argv, "--time", "2026-11-29T04:00:00Z");
    const char *scores = arg_value(argc, argv, "--scores", "1,0.9,0.8");
    size_t limit = (size_t)atoi(arg_value(argc, argv, "--limit", "0"));
    double es = 1, ps = 0.9, ns = 0.8;
    if (!dir || sscanf(scores, "%lf,%lf,%lf", &es, &ps, &ns) != 3) {
        fprintf(stderr, "stamp-fixture commit: --store DIR is required\n");
        return 2;
    }
    store *s = NULL;
    store_txn *t = NULL;
    store_version *q = NULL;
    size_t n = 0;
    uint64_t id, parent;
    char *text = NULL;
    int rc;
    if ((rc = store_open(&s, dir)) || (rc = store_txn_begin(s, &t, 1)) ||
        (rc = store_queue_list(t, limit, &q, &n)) ||
        (rc = store_commit_next_id(t, &id)) || (rc = store_head(t, &parent)))
        goto out;
    json_t *versions = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(versions, json_integer((json_int_t)q[i].id));
        if ((rc = store_version_set_state(t, q[i].id, VERSION_COMMITTED, id)))
            goto out;
    }
    json_t *rec = json_pack(
        "{s:I,s:I,s:s,s:s,s:s,s:s,s:o,s:[],s:I,s:[],s:{s:f},"
        "s:[{s:i,s:s,s:f,s:f,s:f,s:i}],s:{},"
        "s:{s:{s:f,s:f,s:f},s:{s:f,s:f,s:f}},s:{s:f},s:i}",
        "id", (json_int_t)id, "parent", (json_int_t)parent, "kind", "commit",
        "time", when, "message", msg, "method", "memit", "versions", versions,
        "superseded", "n_facts", (json_int_t)n, "failed", "hparams",
        "mom2_update_weight", 20000.0, "layers", "layer", 1, "tensor",
        "h.1.mlp.c_proj.weight", "delta_norm", 0.125, "rel_norm", 0.003,
        "max_abs", 0.01, "rank", (int)n, "tensors", "scores", "before", "es",
        0.1, "ps", 0.1, "ns", 0.9, "after", "es", es, "ps", ps, "ns", ns,
        "timings", "total", 1.5, "threads", 2);
    text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text) {
        rc = err_set(ERR_NOMEM, "cannot build the record");
        goto out;
    }
    if ((rc = store_commit_put(t, id, text)) || (rc = store_head_set(t, id)))
        goto out;
    rc = store_txn_commit(t);
    t = NULL;
    if (!rc) printf("%llu\n", (unsigned long long)id);
out:
    free(text);
    store_versions_free(q, n);
    store_txn_abort(t);
    store_close(s);
    return rc ? die(rc) : 0;
}

static int set_head(int argc, char **argv)
{
    const char *dir = arg_value(argc, argv, "--store", NULL);
    if (!dir || argc < 5) {
        fprintf(stderr, "usage: stamp-fixture head --store DIR N\n");
        return 2;
    }
    store *s = NULL;
    store_txn *t = NULL;
    int rc;
    if (!(rc = store_open(&s, dir)) && !(rc = store_txn_begin(s, &t, 1)) &&
        !(rc = store_head_set(t, strtoull(argv[argc - 1], NULL, 10)))) {
        rc = store_txn_commit(t);
        t = NULL;
    }
    store_txn_abort(t);
    store_close(s);
    return rc ? die(rc) : 0;
}

static int hold(int argc, char **argv)
{
    const char *dir = arg_value(argc, argv, "--store", NULL);
    if (!dir || argc < 5) {
        fprintf(stderr, "usage: stamp-fixture hold --store DIR SECONDS\n");
        return 2;
    }
    store *s = NULL;
    store_txn *t = NULL;
    int rc;
    if (!(rc = store_open(&s, dir)) && !(rc = store_txn_begin(s, &t, 1))) {
        printf("holding\n");
        fflush(stdout);
        struct timespec ts = {atoi(argv[argc - 1]), 0};
        nanosleep(&ts, NULL);
    }
    store_txn_abort(t);
    store_close(s);
    return rc ? die(rc) : 0;
}

int main(int argc, char **argv)
{
    blas_cpu_use_best_kernels(argv);
    if (argc >= 2 && !strcmp(argv[1], "hold")) return hold(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "model")) return make_model(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "commit")) return make_commit(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "head")) return set_head(argc, argv);
    fprintf(stderr, "usage: stamp-fixture model|commit|head|hold ... (see the "
            "source)\n");
    return 2;
}
