/* predict: the next-token prediction of a model for a prompt: the
 * prompt's token ids and the K most likely next tokens with their
 * log-probabilities. The model is --model DIR (a Hugging Face GPT-2
 * directory), else the store's current model (base + committed edits).
 * The work is predict_run (predict.h); this file reads the model and
 * prints. Token texts are raw bytes that need not be valid UTF-8 on their
 * own (a token can hold part of a character): the text output escapes
 * such bytes as \xNN, the JSON output replaces them with U+FFFD. */
#include "cli/cli.h"
#include "base/errors.h"
#include "store/modelview.h"
#include "model/predict.h"

#include <getopt.h>
#include <math.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char cmd_predict_usage[] =
    "stamp predict [--model DIR] [--top K] [--json] TEXT...\n"
    "\n"
    "Prints the token ids of TEXT (several arguments are joined with single\n"
    "spaces) and the K most likely next tokens with their log-probabilities\n"
    "under the store's current model (the base model with every committed\n"
    "edit), or under the model in DIR (config.json, model.safetensors,\n"
    "vocab.json, merges.txt) without touching any store.\n"
    "\n"
    "  --model DIR  predict with the model in DIR instead of the store's\n"
    "  --top K      how many next tokens to list (default 5)\n"
    "  --json       print {\"tokens\": [ids], \"top\": [{\"id\", \"token\",\n"
    "               \"logprob\"}, ...]}\n";

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* The token's bytes as a JSON string: invalid UTF-8 bytes become U+FFFD. */
static json_t *token_json(const char *bytes, size_t n)
{
    char *buf = malloc(3 * n + 1);
    if (!buf) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len((const unsigned char *)bytes + i, n - i);
        if (k) {
            memcpy(buf + o, bytes + i, k);
            o += k;
            i += k;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    json_t *s = json_stringn(buf, o);
    free(buf);
    return s;
}

/* The token's bytes, quoted, with C escapes for what does not print. */
static void print_token(const char *bytes, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)bytes[i];
        size_t k = utf8_len((const unsigned char *)bytes + i, n - i);
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c < 0x20 || c == 0x7f || !k) printf("\\x%02x", c);
        else {
            fwrite(bytes + i, 1, k, stdout);
            i += k;
            continue;
        }
        i++;
    }
    putchar('"');
}

static int print_result(const predict_result *r, const tokenizer *tok,
                        int json_out)
{
    if (json_out) {
        json_t *o = json_object(), *ids = json_array(), *top = json_array();
        for (size_t i = 0; i < r->n_tokens; i++)
            json_array_append_new(ids, json_integer(r->tokens[i]));
        for (size_t i = 0; i < r->n_top; i++) {
            size_t n = 0;
            const char *b = tokenizer_token_bytes(tok, r->top[i].id, &n);
            json_t *text = b ? token_json(b, n) : json_null();
            json_array_append_new(top, json_pack("{s:i, s:o, s:f}", "id",
                                                 r->top[i].id, "token", text,
                                                 "logprob",
                                                 (double)r->top[i].logprob));
        }
        json_object_set_new(o, "tokens", ids);
        json_object_set_new(o, "top", top);
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                         JSON_REAL_PRECISION(8));
        json_decref(o);
        if (!text) return cli_fail("cannot encode the JSON output");
        puts(text);
        free(text);
        return EXIT_OK;
    }
    printf("tokens (%zu):", r->n_tokens);
    for (size_t i = 0; i < r->n_tokens; i++) printf(" %d", r->tokens[i]);
    printf("\nnext token     logprob    prob\n");
    for (size_t i = 0; i < r->n_top; i++) {
        size_t n = 0;
        const char *b = tokenizer_token_bytes(tok, r->top[i].id, &n);
        printf("  %-10d %9.5f  %6.4f  ", r->top[i].id, r->top[i].logprob,
               exp(r->top[i].logprob));
        if (b) print_token(b, n);
        else fputs("(no text)", stdout);
        putchar('\n');
    }
    return EXIT_OK;
}

int cmd_predict(int argc, char **argv, const cli_globals *g)
{
    if (cli_wants_help(argc, argv, "predict")) return EXIT_OK;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"top", required_argument, 0, 'k'},
        {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0}};
    const char *model_dir = NULL;
    size_t top_k = 5;
    int json_out = 0, ch;
    cli_options_begin();
    while ((ch = getopt_long(argc, argv, ":m:k:j", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model_dir = optarg; break;
        case 'k':
            if (cli_parse_size(optarg, &top_k) || top_k == 0 ||
                top_k > 1000000)
                return cli_usage_error("predict", "--top wants a count from "
                                       "1 to 1000000, not '%s'", optarg);
            break;
        case 'j': json_out = 1; break;
        default: return cli_option_error("predict", ch, argv);
        }
    }
    if (optind >= argc) return cli_usage_error("predict", "no TEXT to predict from");
    size_t len = 0;
    for (int i = optind; i < argc; i++) len += strlen(argv[i]) + 1;
    char *text = malloc(len);
    if (!text) return cli_fail("out of memory");
    text[0] = '\0';
    for (int i = optind; i < argc; i++) {
        if (i > optind) strcat(text, " ");
        strcat(text, argv[i]);
    }

    lm_model m = {0};
    tokenizer *tok = NULL;
    store *s = NULL;
    store_txn *t = NULL;
    predict_result r = {0};
    int rc;
    if (model_dir) {
        if ((rc = lm_model_load(&m, model_dir))) goto fail;
        if ((rc = tokenizer_open_dir(&tok, model_dir))) goto fail;
    } else {
        if ((rc = cli_store_open(&s, g))) goto fail;
        if ((rc = store_txn_begin(s, &t, 0))) goto fail;
        if ((rc = modelview_load(&m, t))) goto fail;
        if ((rc = modelview_tokenizer(t, &tok))) goto fail;
        store_txn_abort(t);
        t = NULL;
    }
    if ((rc = predict_run(&m, tok, text, top_k, &r))) goto fail;
    rc = print_result(&r, tok, json_out);
    goto out;
fail:
    rc = cli_fail_code(rc);
out:
    predict_result_free(&r);
    store_txn_abort(t);
    store_close(s);
    tokenizer_close(tok);
    lm_model_free(&m);
    free(text);
    return rc;
}
