/* repair: mends records of a store that `stamp fsck` found damaged,
 * from what the store still holds intact. Each function works in the
 * caller's write transaction; what it writes checks (a rebuilt tensor
 * passes every diff's hash checks on the way), and on an error the
 * caller aborts the transaction. */
#ifndef STAMP_REPAIR_H
#define STAMP_REPAIR_H

#include "store/store.h"

#include <stddef.h>

/* Rebuilds overlay tensor `name` from the base model and the diffs of
 * the commits on HEAD's chain, oldest first (wdiff_apply checks each
 * step's hashes), and writes it (or deletes it from the overlay when it
 * equals the base, as history_ws_write does). *steps: the diffs applied.
 * ERR_STORE naming the commit when a record or diff on the way is itself
 * damaged or does not fit. It deletes the damaged value first: on any
 * error the caller aborts t, which leaves the store as it was. */
int repair_overlay_tensor(store_txn *t, const char *name, size_t *steps);

#endif
