/* tokenizer_load: opens the tokenizer of a model directory once and
 * prints the seconds tokenizer_open_dir took and the vocabulary size
 * (bench/tokenizer_load.sh runs it in a fresh process per measurement,
 * with the cache off, cold or warm). */
#include "base/clock.h"
#include "base/errors.h"
#include "model/tokenizer.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tokenizer_load MODEL_DIR\n");
        return 2;
    }
    tokenizer *t;
    double t0 = clock_seconds();
    int rc = tokenizer_open_dir(&t, argv[1]);
    double dt = clock_seconds() - t0;
    if (rc) {
        fprintf(stderr, "tokenizer_load: %s\n", err_message(rc));
        return 1;
    }
    printf("%.6f %zu\n", dt, tokenizer_vocab_size(t));
    tokenizer_close(t);
    return 0;
}
