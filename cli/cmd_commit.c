/* commit: stamps the queued facts into the model as one commit. The
 * work is the library's (repo/commit.h: commit_run, which documents the
 * phases, the rounds and the STAMP_TEST_* fault injection); this file
 * parses the options, draws the progress and warnings commit_run tells
 * of, and prints the result: a summary or, with --json, the record. */
#include "cli/cli.h"
#include "base/clock.h"
#include "base/errors.h"
#include "repo/commit.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_commit_usage[] =
    "stamp commit [-m MSG] [--limit N] [--method memit|rome] [--threads N]\n"
    "             [--layers LIST] [--set KEY=VALUE]... [--corpus FILE]\n"
    "             [--no-scores] [--json]\n"
    "\n"
    "Writes every queued fact (or the first N) into the model as one commit:\n"
    "target vectors by gradient steps, then MEMIT's closed-form update of\n"
    "mlp.c_proj in the edited layers (ROME: one fact, one layer).\n"
    "\n"
    "  -m, --message MSG  commit message (default: \"N facts\")\n"
    "  --limit N          commit at most N queued facts, oldest first\n"
    "  --method M         memit (default) or rome (the first queued fact)\n"
    "  --threads N        worker threads (default: the share of the cores the\n"
    "                     other work running leaves; see 'stamp --help')\n"
    "  --layers LIST      edited layers, e.g. 1,2 or 1-3 (default: the\n"
    "                     store's hparams, else a band of early layers)\n"
    "  --set KEY=VALUE    override one hyperparameter for this commit, e.g.\n"
    "                     --set mom2_update_weight=5000 or --set rounds=10\n"
    "                     (rounds: find the target vectors and solve again\n"
    "                     in the edited model; a round that moves them\n"
    "                     further away, or writes less than round_min_shift\n"
    "                     of the shift left, is solved again toward 1/2,\n"
    "                     1/4, ... of the shift (round_halvings times) and\n"
    "                     else taken back, which ends them; a first round\n"
    "                     that aims worse at every share fails the commit;\n"
    "                     joint_layers=1: solve each layer together with\n"
    "                     the later ones, so that it writes the share of\n"
    "                     the shift its keys have room for;\n"
    "                     see 'stamp show --json' of a commit for the keys)\n"
    "  --corpus FILE      text for the key statistics when they are missing\n"
    "                     (default: the model directory's corpus.txt)\n"
    "  --no-scores        skip the ES/PS/NS scores before and after\n"
    "  --json             print the commit record as JSON\n"
    "\n"
    "With --json a commit that does not happen prints {\"committed\": false,\n"
    "\"error\": ..., \"exit\": N} on stdout as well.\n"
    "\n"
    "Exit status: 0 committed, 1 failed (nothing changed), 2 bad usage,\n"
    "3 nothing to commit (the queue is empty).\n";

/* commit_run's events on stderr: progress bars, "stamp: warning: ..." and
 * "stamp: ..." notes. */
static void on_event(void *ctx, const commit_event *e)
{
    (void)ctx;
    switch (e->kind) {
    case COMMIT_EVENT_PROGRESS: cli_progress(e->label, e->done, e->total); break;
    case COMMIT_EVENT_PHASE_END: cli_progress_done(); break;
    case COMMIT_EVENT_WARNING: fprintf(stderr, "stamp: warning: %s\n", e->text); break;
    case COMMIT_EVENT_NOTE: fprintf(stderr, "stamp: %s\n", e->text); break;
    }
}

/* The summary of a commit: what went in where, the scores, the target
 * vectors, the update and its rounds. seconds: since the command began. */
static void print_summary(const commit_result *r, double seconds)
{
    const hparams *h = &r->h;
    size_t L = h->n_layers, n = r->n_facts;
    int rome = r->method == COMMIT_ROME;
    printf("commit %llu: %zu fact%s stamped into layer%s",
           (unsigned long long)r->id, n, n == 1 ? "" : "s", L == 1 ? "" : "s");
    for (size_t i = 0; i < L; i++) printf("%s%zu", i ? "," : " ", h->layers[i]);
    printf(" (%s, %.1fs)\n", commit_method_name(r->method), seconds);
    if (r->scored) {
        /* a score over no prompts (a CSV without paraphrases) is n/a */
        char b[3][16], a[3][16];
        size_t np = r->after.n_paraphrase, nn = r->after.n_neighbor;
        snprintf(b[0], 16, "%.1f", r->before.es);
        snprintf(a[0], 16, "%.1f", r->after.es);
        snprintf(b[1], 16, np ? "%.1f" : "n/a", r->before.ps);
        snprintf(a[1], 16, np ? "%.1f" : "n/a", r->after.ps);
        snprintf(b[2], 16, nn ? "%.1f" : "n/a", r->before.ns);
        snprintf(a[2], 16, nn ? "%.1f" : "n/a", r->after.ns);
        printf("  efficacy %s -> %s   paraphrase %s -> %s   "
               "neighbourhood %s -> %s\n", b[0], a[0], b[1], a[1], b[2], a[2]);
    }
    printf("  target vectors: %zu of %zu make the new answer likely "
           "(NLL < 0.5)\n", r->rounds[0].z_likely, n);
    if (!rome) {
        printf("  update: wrote %.0f%% of the target shift; leverage",
               100 * r->rounds[0].shift_written);
        for (size_t i = 0; i < L; i++)
            printf("%s %.2f (layer %zu)", i ? "," : "", r->layers[i].leverage,
                   h->layers[i]);
        printf("\n");
        if (h->protect_committed > 0 && r->n_kept)
            printf("  kept the %zu committed edit%s where they were "
                   "(protect_committed %g)\n", r->n_kept,
                   r->n_kept == 1 ? "" : "s", h->protect_committed);
        if (r->n_rounds > 1) {
            printf("  %zu round%s", r->rounds_done,
                   r->rounds_done == 1 ? "" : "s");
            if (r->rounds_stop)
                printf(" of %zu (%s)", r->n_rounds, r->rounds_stop);
            printf("; target vectors likely per round:");
            for (size_t k = 0; k < r->rounds_done; k++)
                printf(" %zu", r->rounds[k].z_likely);
            printf("\n");
            for (size_t k = 0; k < r->rounds_done; k++)
                if (r->rounds[k].step < 1)
                    printf("  round %zu solved again toward 1/%.0f of its "
                           "shift\n", k + 1, 1 / r->rounds[k].step);
        }
    }
    if (r->n_failed)
        printf("  %zu fact%s left queued (see warnings above)\n", r->n_failed,
               r->n_failed == 1 ? "" : "s");
}

int cmd_commit(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"message", required_argument, 0, 'm'},
        {"limit", required_argument, 0, 'l'},
        {"method", required_argument, 0, 'M'},
        {"threads", required_argument, 0, 't'},
        {"layers", required_argument, 0, 'L'},
        {"set", required_argument, 0, 's'},
        {"corpus", required_argument, 0, 'c'},
        {"no-scores", no_argument, 0, 'n'},
        {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0},
    };
    if (cli_wants_help(argc, argv, "commit")) return EXIT_OK;
    const char *method = "memit", **sets = calloc((size_t)argc, sizeof *sets);
    commit_options o = {0};
    int json_out = 0, c, rc = 0;
    size_t threads = 0;
    cli_options_begin();
    while (rc == 0 && (c = getopt_long(argc, argv, ":m:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.message = optarg; break;
        case 'l':
            if (cli_parse_size(optarg, &o.limit) || o.limit == 0)
                rc = cli_usage_error("commit", "--limit wants a positive "
                                     "number, not '%s'", optarg);
            break;
        case 'M': method = optarg; break;
        case 't':
            if (cli_parse_size(optarg, &threads) || threads == 0 ||
                threads > 4096)
                rc = cli_usage_error("commit", "--threads wants a positive "
                                     "number, not '%s'", optarg);
            o.threads = (int)threads;
            break;
        case 'L': o.layers = optarg; break;
        case 's': sets[o.n_sets++] = optarg; break;
        case 'c': o.corpus = optarg; break;
        case 'n': o.no_scores = 1; break;
        case 'j': json_out = 1; break;
        default: rc = cli_option_error("commit", c, argv);
        }
    }
    if (!rc && !strcmp(method, "rome")) o.method = COMMIT_ROME;
    else if (!rc && strcmp(method, "memit"))
        rc = cli_usage_error("commit", "unknown method '%s' (memit or rome)",
                             method);
    if (!rc && optind < argc)
        rc = cli_usage_error("commit", "unexpected argument '%s'",
                             argv[optind]);
    if (rc) {
        free(sets);
        return rc;
    }
    o.sets = sets;

    double t_start = clock_seconds();
    store *s = NULL;
    commit_result res = {0};
    int exit_code = EXIT_OK;
    if ((rc = cli_store_open(&s, g)) ||
        (rc = commit_run(s, &o, on_event, NULL, &res))) {
        /* --json answers on every outcome: what did not happen, and why */
        json_t *why = json_out ? json_pack("{s:b,s:s}", "committed", 0,
                                           "error", err_message(rc)) : NULL;
        if (res.bad_option) {
            exit_code = cli_usage_error("commit", "%s", err_message(rc));
        } else {
            cli_fail_code(rc);
            exit_code = rc == ERR_EMPTY ? EXIT_NOTHING : EXIT_FAIL;
        }
        if (why) {
            json_object_set_new(why, "exit", json_integer(exit_code));
            char *out = json_dumps(why, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            if (out) puts(out);
            free(out);
            json_decref(why);
        }
    } else if (json_out) {
        char *out = json_dumps(res.record, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(out);
        free(out);
    } else {
        print_summary(&res, clock_seconds() - t_start);
    }
    commit_result_free(&res);
    store_close(s);
    free(sets);
    return exit_code;
}
