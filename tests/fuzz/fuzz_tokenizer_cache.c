/* fuzz_tokenizer_cache: libFuzzer target for the reader of the tokenizer
 * cache (lib/model/tokenizer_cache.c): the input is a cache file.
 *
 * The checksum is skipped and the source hash is taken from the input
 * itself, so that the fuzzer reaches the checks behind them (a forger
 * can recompute both). Loading may fail but never crash or read out of
 * bounds; a tokenizer that loads must encode and decode text without
 * crashing, give ids below its vocabulary size and hand out every
 * token's bytes. The seeds in tests/fuzz/seeds/fuzz_tokenizer_cache are
 * the caches of fuzz_tokenizer's tokenizer.json seeds (made with
 * `fuzz_tokenizer_cache --make-seed FILE.json OUT`). */
#include "base/errors.h"
#include "model/tokenizer.h"
#include "model/tokenizer_cache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *texts[] = {"Hello, world! 123", " the  cat\n\tsat ",
                              "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80", ""};

static void exercise(tokenizer *t)
{
    size_t nv = tokenizer_vocab_size(t);
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        for (unsigned f = 0; f < 2; f++) {
            int *ids = NULL;
            size_t n = 0;
            if (tokenizer_encode_ex(t, texts[k], strlen(texts[k]), f, &ids, &n) == 0) {
                for (size_t i = 0; i < n; i++)
                    if (ids[i] < 0 || (size_t)ids[i] >= nv) abort();
                char *s = NULL;
                size_t sl;
                if (tokenizer_decode_ex(t, ids, n, f ? TOKENIZER_SKIP_SPECIAL : 0, &s,
                                        &sl) == 0)
                    free(s);
            }
            free(ids);
        }
    }
    for (size_t id = 0; id < nv; id++) {
        size_t len;
        tokenizer_token_bytes(t, (int)id, &len);
        tokenizer_is_special(t, (int)id);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tok_src_hash h = {{0}};
    if (size >= TOK_CACHE_HASH_AT + sizeof h.b)
        memcpy(h.b, data + TOK_CACHE_HASH_AT, sizeof h.b);
    void *blob = malloc(size ? size : 1);
    if (!blob) return 0;
    memcpy(blob, data, size);
    tokenizer *t = NULL;
    if (tok_cache_decode(&t, blob, size, 1, "fuzz", &h, 0) == 0) {
        exercise(t);
        tokenizer_close(t);
    }
    return 0;
}

/* --make-seed JSON OUT: writes the cache of a tokenizer.json file (the
 * bytes up to its first NUL, as fuzz_tokenizer reads its inputs). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (*argc < 4 || strcmp((*argv)[1], "--make-seed")) return 0;
    static char data[1 << 20];
    tokenizer *t = NULL;
    void *blob;
    size_t bn;
    FILE *in = fopen((*argv)[2], "rb");
    if (!in) exit(1);
    size_t n = fread(data, 1, sizeof data - 1, in);
    fclose(in);
    n = strnlen(data, n);
    tok_src_hash h;
    tok_src_hash_of(&h, data, n);
    if (hf_parse(&t, (*argv)[2], data, n) || tok_cache_encode(t, &h, &blob, &bn)) {
        fprintf(stderr, "%s: %s\n", (*argv)[2], err_message(ERR_FORMAT));
        exit(1);
    }
    FILE *f = fopen((*argv)[3], "wb");
    if (!f || fwrite(blob, 1, bn, f) != bn || fclose(f)) exit(1);
    exit(0);
}
