/* progress: how long-running library work (training, statistics, the
 * solver) reports progress without printing: the caller passes a
 * callback, the command layer draws it. A NULL callback means silence. */
#ifndef STAMP_PROGRESS_H
#define STAMP_PROGRESS_H

#include <stddef.h>

/* `label` names the phase ("z vectors", "layer 3"), `done` of `total`
 * units are finished. Called from one thread at a time. */
typedef void (*progress_fn)(void *ctx, const char *label, size_t done,
                            size_t total);

#endif
