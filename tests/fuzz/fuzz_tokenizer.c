/* fuzz_tokenizer: libFuzzer target for tokenizer_encode on GPT-2's
 * vocabulary (tests/data/gpt2-vocab, so run it from the repository
 * root). Any bytes: invalid UTF-8 must be ERR_FORMAT; valid text must
 * encode to known ids that decode back to exactly the input. */
#include "base/errors.h"
#include "model/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static tokenizer *tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
