/* stats: the key statistics C_l = E[k k^T] of the edited layers, kept in
 * the store per base model and layer. With --corpus it computes them (or
 * extends them with more corpus lines); without, it shows what is kept.
 * `stamp commit` computes missing statistics itself. */
#include "cli/cli.h"
#include "base/dist.h"
#include "base/errors.h"
#include "base/hash.h"
#include "model/lm.h"
#include "model/tokenizer.h"
#include "memit/hparams.h"
#include "memit/keystats.h"
#include "store/modelview.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

const char cmd_stats_usage[] =
    "stamp stats [--corpus FILE] [--samples N] [--layers LIST] [--checkpoint N] [--json]\n"
    "\n"
    "Computes the second moment of the MLP keys of the edited layers over a\n"
    "text corpus (one sequence per line) on the base model, and keeps it in\n"
    "the store. Run again with a larger --samples to extend it. Without\n"
    "--corpus, shows the statistics the store holds.\n"
    "\n"
    "  --corpus FILE   the text (default for commit: the model's corpus.txt)\n"
    "  --samples N     corpus lines to cover in all (default: 100000)\n"
    "  --layers LIST   layers (default: the store's edited layers)\n"
    "  --checkpoint N  store the sums every N lines or so (default 1000): a\n"
    "                  stopped run keeps them and the next goes on from there,\n"
    "                  with the same result; 0: all at the end or nothing\n"
    "  --json          print the result as JSON\n";

/* A keystats_note_fn: what the statistics need in memory, on stderr
 * before they are computed. */
static void stats_note(void *ctx, const char *text)
{
    (void)ctx;
    cli_progress_done();
    fprintf(stderr, "stamp: %s\n", text);
}

/* Says on stderr how many of the first `upto` lines of the corpus have
 * more tokens than the model's context (as the statistics tokenize
 * them): each is cut to its first n_positions tokens. Rank 0 only. */
static int note_long_lines(store_txn *t, const char *corpus, size_t upto,
                           size_t n_positions)
{
    char **lines = NULL;
    size_t n = 0, cut = 0;
    tokenizer *tok = NULL;
    if (dist_rank() != 0) return 0;
    int rc = keystats_read_corpus(corpus, &lines, &n);
    if (!rc) rc = modelview_tokenizer(t, &tok);
    if (upto > n) upto = n;
    for (size_t i = 0; !rc && i < upto; i++) {
        int *ids = NULL;
        size_t len = 0;
        rc = tokenizer_encode_ex(tok, lines[i], strlen(lines[i]),
                                 TOKENIZER_ADD_SPECIAL, &ids, &len);
        free(ids);
        cut += len > n_positions;
    }
    if (!rc && cut)
        fprintf(stderr, "stamp: note: %zu of the %zu corpus lines used ('%s') "
                "have more tokens than the model's %zu positions: the "
                "statistics take the first %zu tokens of each\n", cut, upto,
                corpus, n_positions, n_positions);
    for (size_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
    tokenizer_close(tok);
    return rc;
}

int cmd_stats(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"corpus", required_argument, 0, 'c'},
        {"samples", required_argument, 0, 's'},
        {"layers", required_argument, 0, 'L'},
        {"json", no_argument, 0, 'j'},
        {"checkpoint", required_argument, 0, 'k'},
        {0, 0, 0, 0},
    };
    if (cli_wants_help(argc, argv, "stats")) return EXIT_OK;
    const char *corpus = NULL, *layers_arg = NULL;
    size_t samples = 0, checkpoint = 1000;
    int json_out = 0, c;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'c': corpus = optarg; break;
        case 's':
            if (cli_parse_size(optarg, &samples) || samples == 0)
                return cli_usage_error("stats", "--samples wants a positive "
                                       "number, not '%s'", optarg);
            break;
        case 'L': layers_arg = optarg; break;
        case 'k':
            if (cli_parse_size(optarg, &checkpoint))
                return cli_usage_error("stats", "--checkpoint wants a number of "
                                       "lines (0: none), not '%s'", optarg);
            break;
        case 'j': json_out = 1; break;
        default: return cli_option_error("stats", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("stats", "unexpected argument '%s'", argv[optind]);

    store *s = NULL;
    store_txn *t = NULL;
    lm_config cfg;
    hparams h = {0};
    char *stored = NULL, *abs_corpus = NULL;
    int rc, computed = 0;
    json_t *out = json_array();
    if ((rc = cli_store_open(&s, g))) goto fail;
    if ((rc = store_txn_begin(s, &t, 0))) goto fail;
    if ((rc = modelview_config(t, &cfg))) goto fail;
    hparams_default(&h, &cfg);
    rc = store_meta_get(t, "hparams", &stored);
    if (rc == ERR_NOTFOUND) { err_clear(); rc = 0; }
    else if (!rc) rc = hparams_apply_json(&h, stored, &cfg);
    if (rc) goto fail;
    if (layers_arg && (rc = hparams_parse_layers(&h, layers_arg, &cfg))) {
        if (rc != ERR_INVALID) goto fail;
        /* a malformed --layers is bad usage, not a failed operation */
        rc = cli_usage_error("stats", "--layers: %s", err_message(rc));
        goto out;
    }
    if (corpus) {
        if (!(abs_corpus = realpath(corpus, NULL))) {
            rc = err_set(ERR_NOTFOUND, "corpus '%s' does not exist", corpus);
            goto fail;
        }
        rc = note_long_lines(t, abs_corpus,
                             samples ? samples : h.stats_samples,
                             cfg.n_positions);
        if (rc) goto fail;
        /* the sums are stored step by step, each in a transaction of
         * its own: this one only reads */
        store_txn_abort(t);
        t = NULL;
        rc = keystats_ensure_steps(s, h.layers, h.n_layers,
                                   samples ? samples : h.stats_samples,
                                   abs_corpus, checkpoint, &computed,
                                   stats_note, cli_progress_fn, NULL);
        cli_progress_done();
        /* the MPI ranks have delivered: they exit before anything is
         * written, which rank 0 then does alone */
        if (!rc) rc = dist_finish();
        if (!rc) rc = store_txn_begin(s, &t, 1);
        if (!rc) rc = store_meta_put(t, "corpus", abs_corpus);
        if (rc) goto fail;
    }
    for (size_t i = 0; i < h.n_layers; i++) {
        keystats_sum cov = {0};
        rc = keystats_load(t, h.layers[i], &cov);
        if (rc == ERR_NOTFOUND) {
            err_clear();
            json_array_append_new(out, json_pack("{s:I,s:b}", "layer",
                (json_int_t)h.layers[i], "present", 0));
            continue;
        }
        if (rc) goto fail;
        if (cov.tokens < cov.F) /* rank <= tokens: every commit would fail */
            fprintf(stderr, "stamp: warning: layer %zu: %llu keys cannot span "
                    "its %zu MLP units; the statistics are singular until "
                    "they cover more text\n", h.layers[i],
                    (unsigned long long)cov.tokens, cov.F);
        char hash[33]; /* of the float64 sums: equal sums, equal hash */
        hash_hex(hash, cov.sum, cov.F * cov.F * sizeof *cov.sum);
        json_array_append_new(out, json_pack("{s:I,s:b,s:I,s:I,s:I,s:s}",
            "layer", (json_int_t)h.layers[i], "present", 1, "tokens",
            (json_int_t)cov.tokens, "sequences", (json_int_t)cov.sequences,
            "size", (json_int_t)cov.F, "sum_hash", hash));
        keystats_sum_free(&cov);
    }
    if (corpus && (rc = store_txn_commit(t))) { t = NULL; goto fail; }
    if (corpus) t = NULL;
    if (json_out) {
        char *text = json_dumps(out, JSON_INDENT(2));
        puts(text);
        free(text);
    } else {
        size_t i;
        json_t *e;
        json_array_foreach(out, i, e) {
            json_int_t layer = json_integer_value(json_object_get(e, "layer"));
            if (!json_is_true(json_object_get(e, "present"))) {
                printf("layer %lld: no statistics\n", (long long)layer);
                continue;
            }
            printf("layer %lld: %lld keys from %lld sequences (%lld x %lld)\n",
                   (long long)layer,
                   (long long)json_integer_value(json_object_get(e, "tokens")),
                   (long long)json_integer_value(json_object_get(e, "sequences")),
                   (long long)json_integer_value(json_object_get(e, "size")),
                   (long long)json_integer_value(json_object_get(e, "size")));
        }
    }
    rc = EXIT_OK;
    goto out;
fail:
    rc = cli_fail_code(rc);
out:
    store_txn_abort(t);
    store_close(s);
    free(stored);
    free(abs_corpus);
    json_decref(out);
    return rc;
}
