/* queue: lists the pending fact versions, oldest first, the order in
 * which `stamp commit` takes them. A read command: it never waits for
 * the writer lock and sees one consistent snapshot. */
#include "cli/cli.h"
#include "base/errors.h"
#include "store/factjson.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_queue_usage[] =
    "stamp queue [--json] [--limit N]\n"
    "\n"
    "Lists the queued facts in import order: version id, subject, prompt,\n"
    "new target (and the true one), and where the fact came from.\n"
    "\n"
    "  --limit N   show at most N facts (the count still covers all)\n"
    "  --json      one JSON document: {\"count\": N, \"facts\": [...]}, one\n"
    "              fact per line\n";

typedef struct {
    size_t n;      /* facts written so far */
    char *buf;     /* reused dump buffer */
    size_t cap;
    json_t *obj;   /* one object, filled for each version in turn */
} emit_ctx;

static int emit_json(void *ctx, const store_version *v)
{
    emit_ctx *e = ctx;
    json_t *o = e->obj;
    if (factjson_version_fill(o, v)) return err_set(ERR_NOMEM, "out of memory");
    size_t need = json_dumpb(o, e->buf, e->cap, JSON_COMPACT);
    if (need > e->cap) {
        char *b = realloc(e->buf, 2 * need);
        if (!b) return err_set(ERR_NOMEM, "out of memory");
        e->buf = b;
        e->cap = 2 * need;
        need = json_dumpb(o, e->buf, e->cap, JSON_COMPACT);
    }
    if (need == 0) return err_set(ERR_NOMEM, "cannot encode version %llu",
                                  (unsigned long long)v->id);
    fputs(e->n++ ? ",\n" : "\n", stdout);
    fwrite(e->buf, 1, need, stdout);
    return 0;
}

static int emit_text(void *ctx, const store_version *v)
{
    const fact *f = &v->f;
    char *text = fact_prompt_text(f);
    (void)ctx;
    printf("  #%-6llu %s ->%s", (unsigned long long)v->id,
           text ? text : f->prompt, f->target_new);
    if (f->target_true[0]) printf("  (was%s)", f->target_true);
    printf("  [%s:%zu]\n", f->source_file, f->source_line);
    free(text);
    return 0;
}

int cmd_queue(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"limit", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    int json_out = 0, c;
    size_t limit = 0;
    if (cli_wants_help(argc, argv, "queue")) return EXIT_OK;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":jn:", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json_out = 1; break;
        case 'n':
            if (cli_parse_size(optarg, &limit) || limit == 0)
                return cli_usage_error("queue", "--limit wants a positive "
                                       "number, not '%s'", optarg);
            break;
        default: return cli_option_error("queue", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("queue", "unexpected argument '%s'",
                               argv[optind]);

    store *s = NULL;
    store_txn *t = NULL;
    size_t total = 0;
    int rc, exit_code = EXIT_FAIL;
    static char outbuf[1 << 20];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    if ((rc = cli_store_open(&s, g)) ||
        (rc = store_txn_begin(s, &t, 0)) ||
        (rc = store_queue_count(t, &total)))
        goto fail;
    size_t shown = limit && limit < total ? limit : total;
    if (json_out) {
        /* one JSON document, streamed: one fact per line */
        printf("{\"count\": %zu, \"facts\": [", total);
        emit_ctx e = {0, NULL, 0, json_object()};
        rc = e.obj ? store_queue_foreach(t, limit, emit_json, &e)
                   : err_set(ERR_NOMEM, "out of memory");
        free(e.buf);
        json_decref(e.obj);
        if (rc) goto fail;
        printf("%s]}\n", e.n ? "\n" : "");
    } else if (total == 0) {
        printf("the queue is empty\n");
    } else {
        printf("%zu fact%s queued", total, total == 1 ? "" : "s");
        if (shown < total) printf(" (the first %zu shown)", shown);
        printf(":\n");
        if ((rc = store_queue_foreach(t, limit, emit_text, NULL))) goto fail;
    }
    exit_code = cli_finish_output(EXIT_OK);
    goto out;
fail:
    cli_fail_code(rc);
out:
    store_txn_abort(t);
    store_close(s);
    return exit_code;
}
