/* fuzz_tokenizer: libFuzzer target for the tokenizer (run it from the
 * repository root). Two kinds of input:
 *
 *   text (anything not starting with '{'): tokenizer_encode on GPT-2's
 *   vocabulary (tests/data/gpt2-vocab). Invalid UTF-8 must be ERR_FORMAT;
 *   valid text must encode to known ids that decode back to exactly the
 *   input.
 *
 *   a tokenizer.json ('{' first): the bytes up to the first NUL are
 *   written to DIR/tokenizer.json and opened with tokenizer_open_dir;
 *   the bytes after the NUL are the text to encode with what loaded.
 *   Opening may fail (ERR_FORMAT, ERR_IO, ERR_NOMEM, with the handle
 *   NULL) but never crash; a tokenizer that opens must encode and decode
 *   any text without crashing, give ids below its vocabulary size, and
 *   hand out token bytes for each. The seeds in tests/fuzz/seeds/
 *   fuzz_tokenizer hold small files of each supported kind. */
#include "base/errors.h"
#include "model/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tokenizer *tok;
static char dir[] = "/tmp/fuzz_tokenizer.XXXXXX";
static char path[64];

static int fuzz_json(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        /* the parser is the target; a cache would also fill a directory
         * with one file per input (fuzz_tokenizer_cache fuzzes it) */
        setenv("STAMP_CACHE_DIR", "off", 1);
        if (!mkdtemp(dir)) abort();
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t jn = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : "";
    size_t tn = nul ? size - jn - 1 : 0;
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, jn, fp) != jn || fclose(fp) != 0) abort();
    tokenizer *t = (tokenizer *)1;
    int rc = tokenizer_open_dir(&t, dir);
    if (rc) {
        if (t != NULL || (rc != ERR_FORMAT && rc != ERR_IO && rc != ERR_NOMEM)) abort();
        return 0;
    }
    size_t nv = tokenizer_vocab_size(t);
    for (unsigned flags = 0; flags <= TOKENIZER_ADD_SPECIAL; flags++) {
        int *ids = NULL;
        size_t n = 0;
        rc = tokenizer_encode_ex(t, text, tn, flags, &ids, &n);
        if (rc == 0) {
            for (size_t i = 0; i < n; i++) {
                size_t bl;
                if (ids[i] < 0 || (size_t)ids[i] >= nv) abort();
                if (!tokenizer_token_bytes(t, ids[i], &bl)) abort();
            }
            char *s = NULL;
            size_t len = 0;
            if (tokenizer_decode_ex(t, ids, n, TOKENIZER_SKIP_SPECIAL * flags, &s, &len))
                abort();
            if (s[len] != '\0') abort();
            free(s);
        } else if (ids || n) {
            abort();
        }
        free(ids);
    }
    tokenizer_close(t);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size && data[0] == '{') return fuzz_json(data, size);
    if (!tok && tokenizer_open_dir(&tok, "tests/data/gpt2-vocab") != 0)
        abort();
    int *ids = NULL;
    size_t n = 0;
    int rc = tokenizer_encode(tok, (const char *)data, size, &ids, &n);
    if (rc != 0) {
        if (rc != ERR_FORMAT || ids || n) abort();
        return 0;
    }
    if (n > size) abort();
    char *text = NULL;
    size_t len = 0;
    if (tokenizer_decode(tok, ids, n, &text, &len) != 0) abort();
    if (len != size || memcmp(text, data, size) != 0) abort();
    free(text);
    free(ids);
    return 0;
}
