/* llama_top: the next-token top K of a Llama-family model directory
 * (lib/model/llama.c's forward, the directory's tokenizer.json), for
 * each prompt on stdin (one a line), as one JSON array in the shape of
 * `stamp predict --json` with the prompt added:
 *
 *   [{"prompt": TEXT, "tokens": [ids], "bos": BOOL,
 *     "top": [{"id": N, "logprob": X}, ...]}, ...]
 *
 * --bos encodes with the tokenizer's template (Llama 2's "<s>" first),
 * as a model that adds a BOS token is run. tests/cli/t93-gguf-llama.sh
 * compares this with what llama.cpp computes from the GGUF export.
 *
 *   build/tools/llama_top DIR [--top K] [--bos] < prompts.txt
 *
 * Not a product command: `stamp predict` answers for a store's model. */
#include "base/errors.h"
#include "base/linalg.h"
#include "model/llama.h"
#include "model/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The top k of logprobs (V) into top (k ids), largest first. */
static void top_k(const float *lp, size_t V, size_t k, int *top)
{
    for (size_t i = 0; i < k; i++) top[i] = -1;
    for (size_t v = 0; v < V; v++) {
        size_t j = k;
        while (j > 0 && (top[j - 1] < 0 || lp[v] > lp[top[j - 1]])) j--;
        if (j == k) continue;
        memmove(top + j + 1, top + j, (k - j - 1) * sizeof *top);
        top[j] = (int)v;
    }
}

/* One prompt's answer as a JSON object, or NULL (the error is set). */
static json_t *answer(const llama_model *m, const tokenizer *tok,
                      const char *text, int bos, size_t k, int *rc)
{
    int *ids = NULL, *top = NULL;
    size_t n = 0, V = m->config.vocab_size;
    llama_acts *a = NULL;
    float *lp = NULL;
    json_t *out = NULL;
    if ((*rc = tokenizer_encode_ex(tok, text, strlen(text),
                                   bos ? TOKENIZER_ADD_SPECIAL : 0, &ids, &n)))
        goto done;
    if (!n) {
        *rc = err_set(ERR_INVALID, "prompt '%s' has no tokens", text);
        goto done;
    }
    size_t pos = n - 1;
    if ((*rc = llama_acts_new(&a, &m->config, 1, n, 1, 0))) goto done;
    llama_batch b = {.tokens = ids, .B = 1, .T = n, .logit_pos = &pos,
                     .n_logits = 1};
    if ((*rc = llama_forward(m, a, &b))) goto done;
    lp = malloc(V * sizeof *lp);
    top = malloc(k * sizeof *top);
    if (!lp || !top) {
        *rc = err_set(ERR_NOMEM, "out of memory");
        goto done;
    }
    linalg_log_softmax_forward(lp, llama_acts_logits(a), 1, V);
    top_k(lp, V, k, top);
    json_t *jt = json_array(), *jtop = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(jt, json_integer(ids[i]));
    for (size_t i = 0; i < k && top[i] >= 0; i++)
        json_array_append_new(jtop, json_pack("{s:i, s:f}", "id", top[i],
                                              "logprob", (double)lp[top[i]]));
    out = json_pack("{s:s, s:o, s:b, s:o}", "prompt", text, "tokens", jt,
                    "bos", bos, "top", jtop);
done:
    free(ids);
    free(top);
    free(lp);
    llama_acts_free(a);
    return out;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    size_t k = 10;
    int bos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bos")) bos = 1;
        else if (!strcmp(argv[i], "--top") && i + 1 < argc) k = (size_t)atoi(argv[++i]);
        else if (!dir && argv[i][0] != '-') dir = argv[i];
        else dir = NULL, i = argc;
    }
    if (!dir || k == 0) {
        fprintf(stderr, "usage: llama_top DIR [--top K] [--bos] < prompts\n");
        return 2;
    }
    llama_model m;
    tokenizer *tok = NULL;
    int rc = llama_model_load(&m, dir);
    if (!rc) rc = tokenizer_open_dir(&tok, dir);
    json_t *all = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (!rc && (len = getline(&line, &cap, stdin)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (!len) continue;
        json_t *a = answer(&m, tok, line, bos, k, &rc);
        if (a) json_array_append_new(all, a);
    }
    free(line);
    if (!rc) {
        char *s = json_dumps(all, JSON_COMPACT);
        if (s) puts(s);
        free(s);
    } else {
        fprintf(stderr, "llama_top: %s\n", err_message(rc));
    }
    json_decref(all);
    tokenizer_close(tok);
    llama_model_free(&m);
    return rc ? 1 : 0;
}
