/* repair: rebuilding what fsck found damaged from what is intact (see
 * repair.h). The overlay tensor is HEAD's value: the base model's value
 * with the diff of every commit on the chain that touched it applied in
 * order (revert commits carry diffs of their own, so the chain replays
 * forward as it was written). */
#include "repo/repair.h"
#include "repo/history.h"
#include "repo/wdiff.h"
#include "base/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int repair_overlay_tensor(store_txn *t, const char *name, size_t *steps)
{
    history_ws *ws = NULL;
    history_link *chain = NULL;
    size_t n_chain = 0, n = 0;
    const float *base;
    float *cur = NULL;
    int rc;
    *steps = 0;
    /* the damaged value goes first, so that the workspace loads the
     * base model's value, never the damaged one */
    rc = store_tensor_del(t, name);
    if (rc && rc != ERR_NOTFOUND) return rc;
    if ((rc = history_chain(t, &chain, &n_chain, NULL)) ||
        (rc = history_ws_open(&ws, t)) ||
        (rc = history_ws_base(ws, name, &base, &n)))
        goto out;
    if (!(cur = malloc(n ? n * sizeof *cur : 1))) {
        rc = err_set(ERR_NOMEM, "out of memory rebuilding '%s'", name);
        goto out;
    }
    memcpy(cur, base, n * sizeof *cur);
    for (size_t i = n_chain; i-- > 0;) {
        const void *blob; /* LMDB memory: valid until the txn ends */
        size_t len;
        rc = store_diff_get(t, chain[i].id, name, &blob, &len);
        if (rc == ERR_NOTFOUND) continue;
        if (!rc) rc = wdiff_apply(blob, len, cur, cur, n);
        if (rc) {
            char why[512];
            snprintf(why, sizeof why, "%s", err_message(rc));
            rc = err_set(ERR_STORE, "cannot rebuild tensor '%s': commit "
                         "%llu's diff does not give it back (%s)", name,
                         (unsigned long long)chain[i].id, why);
            goto out;
        }
        (*steps)++;
    }
    if (memcmp(cur, base, n * sizeof *cur) == 0) {
        rc = store_tensor_del(t, name);
        if (rc == ERR_NOTFOUND) rc = 0;
    } else {
        rc = store_tensor_put(t, name, cur, n);
    }
out:
    free(cur);
    free(chain);
    history_ws_close(ws);
    return rc;
}
