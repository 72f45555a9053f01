/* history: the commit chain of a store and exact movement of the model
 * along it. HEAD -> parent -> ... -> 0 (the base model) is the chain in
 * effect; commits off it (reset away, or a HEAD that was reverted) stay
 * in the store with their diffs. A commit record (docs/commit-record.md)
 * lists per tensor the hashes "before" and "after"; its diffs (wdiff.h)
 * move a tensor between the two bit for bit, in either direction.
 *
 * A workspace (history_ws) holds copies of tensors as they are in the
 * store's current model (the overlay, else the base model's values) and
 * moves them across commits: undo (after -> before) and redo (before ->
 * after). Every step checks the tensor's hash against the record and
 * the diff header, so a store whose tensors were changed outside a
 * commit is reported, never silently "reverted" into garbage.
 *
 * The cost of a move is the number of commits crossed times the tensors
 * they touched: undoing k commits never reads the rest of the history.
 *
 * Records of kind "revert" (a git-revert-style commit that removes an
 * older commit's change semantically) carry, besides the schema's
 * fields, "state_changes": [{"version": id, "from": "committed",
 * "to": "reverted"}, ...], the fact state changes the revert made, so
 * that undoing the revert commit restores them exactly. */
#ifndef STAMP_HISTORY_H
#define STAMP_HISTORY_H

#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- records and the chain ------------------------------------------ */

/* Parses commit `id`'s record into *rec (caller json_decref's it).
 * ERR_NOTFOUND "no commit N"; ERR_STORE when the text is not a JSON
 * object whose "id" is id and whose "parent" is an older commit. */
int history_record(store_txn *t, uint64_t id, json_t **rec);

/* Resolves a commit name: "HEAD", "HEAD~N", "base" (= 0), or a commit id
 * ("3"); numbers are decimal digits only (no sign, space or overflow).
 * ERR_INVALID for a malformed name, ERR_NOTFOUND for an id with no
 * commit or HEAD~N past the base. */
int history_resolve(store_txn *t, const char *spec, uint64_t *id);

/* The commits from `from` down to `to`, newest first, `from` included
 * and `to` excluded (n = 0 when they are equal). ERR_INVALID naming both
 * when `to` is not `from` or one of its ancestors. *ids malloc'ed. */
int history_path(store_txn *t, uint64_t from, uint64_t to, uint64_t **ids,
                 size_t *n);

/* The newest commit that is an ancestor of (or equal to) both a and b. */
int history_common_ancestor(store_txn *t, uint64_t a, uint64_t b,
                            uint64_t *out);

/* Whether `id` is on the chain of HEAD (0, the base, always is). Costs
 * the number of commits between HEAD and id. */
int history_on_chain(store_txn *t, uint64_t id, int *on);

/* What became of the commits: HEAD's chain (what `stamp log` lists),
 * each commit on it with the revert commit on the chain that reverted
 * it (0: none), and the commits off the chain, undone exactly (a HEAD
 * reverted, or reset away). A revert commit is on the chain and not
 * itself reverted (only a HEAD revert can be undone, and that takes it
 * off the chain). */
typedef struct {
    uint64_t id;
    uint64_t reverts;       /* a revert commit: the commit it reverts */
    uint64_t reverted_by;   /* the revert commit that undid it, or 0 */
} history_link;

/* HEAD's chain, newest first (n = 0 at the base), and how many commit
 * records the store holds off it. *chain malloc'ed (NULL when n = 0);
 * off_chain may be NULL. Parses every record on the chain. */
int history_chain(store_txn *t, history_link **chain, size_t *n,
                  size_t *off_chain);

/* The fate of commit `id` (ERR_NOTFOUND when there is none): *on_chain
 * 1 when it is on HEAD's chain, and *reverted_by the revert commit on
 * the chain that reverted it (0: none). Off the chain, it was undone
 * exactly (reverted while HEAD, or reset away). */
int history_fate(store_txn *t, uint64_t id, int *on_chain,
                 uint64_t *reverted_by);

/* The name of a version state as records spell it ("committed", ...),
 * and back (-1 when unknown). */
const char *history_state_name(int state);
int history_state_parse(const char *name);

/* ---- tensor workspaces ---------------------------------------------- */

typedef struct history_ws history_ws; /* opaque */

/* A workspace over the transaction's current model. Opens the base
 * model's model.safetensors (meta "model_dir") by mmap; tensors are
 * copied in on first use. t must outlive the workspace. */
int history_ws_open(history_ws **out, store_txn *t);
void history_ws_close(history_ws *ws); /* accepts NULL */

/* The workspace's copy of tensor `name` (loaded on first use from the
 * overlay, else the base; "h.0.x" and "transformer.h.0.x" name the same
 * base tensor). *data is owned by the workspace, valid until it closes;
 * a caller may change it and then calls history_ws_touch. shape: rows
 * and cols of the tensor as a matrix (a 1-d tensor is one row); may be
 * NULL. ERR_NOTFOUND when the base model has no such tensor. */
int history_ws_tensor(history_ws *ws, const char *name, float **data,
                      size_t *numel, size_t shape[2]);

/* Marks a tensor changed by the caller (history_ws_write writes it). */
void history_ws_touch(history_ws *ws, const char *name);

/* The base model's value of `name` as F32 (owned by the workspace). */
int history_ws_base(history_ws *ws, const char *name, const float **data,
                    size_t *numel);

/* Tensors loaded so far, in load order. */
size_t history_ws_count(const history_ws *ws);
const char *history_ws_name(const history_ws *ws, size_t i);

/* Moves the workspace across commit `id` (record rec) backward (undo:
 * each tensor in the record goes from "after" to "before") or forward
 * (redo). `only`: a JSON object whose keys limit the tensors moved, or
 * NULL for all. ERR_STORE, naming the commit and tensor, when a tensor
 * is not in the state the record says, a diff is missing or corrupt, or
 * the diff and the record disagree. */
int history_ws_undo(history_ws *ws, uint64_t id, const json_t *rec,
                    const json_t *only);
int history_ws_redo(history_ws *ws, uint64_t id, const json_t *rec,
                    const json_t *only);

/* Moves a workspace that holds the state of commit `from` (usually HEAD:
 * a fresh workspace) to the state of commit `to`: undo down to their
 * common ancestor, redo up to `to`. Works for commits off the chain. */
int history_ws_goto(history_ws *ws, uint64_t from, uint64_t to,
                    const json_t *only);

/* Writes every changed tensor into the store's overlay; one equal to the
 * base model bit for bit is deleted from the overlay instead. Needs a
 * write transaction. Counts (may be NULL) of puts and deletes. */
int history_ws_write(history_ws *ws, size_t *put, size_t *deleted);

/* ---- moving HEAD (inside the caller's write transaction) ------------ */

typedef struct {
    uint64_t old_head, new_head;
    uint64_t new_commit;     /* revert of an older commit: its new commit */
    size_t commits;          /* commits undone */
    size_t tensors;          /* tensors written to the overlay */
    size_t tensors_deleted;  /* of which back at the base (deleted) */
    size_t reverted;         /* versions that became REVERTED */
    size_t restored;         /* versions that became COMMITTED again */
} history_result;

/* Returns exactly to the state right after commit `target` (0 = the base
 * model): undoes HEAD's commits one by one down to it, with their fact
 * state changes (versions -> REVERTED, the versions they superseded ->
 * COMMITTED; a revert commit's state_changes undone), checks that every
 * tensor hashes to what the chain recorded, writes the overlay and moves
 * HEAD. ERR_INVALID when target is not on HEAD's chain (it was reset
 * away or reverted). target == HEAD changes nothing. */
int history_reset(store_txn *t, uint64_t target, history_result *res);

/* Reverts commit `id`. HEAD: exactly, as history_reset to its parent.
 * An older commit on the chain: a new commit of kind "revert" whose
 * tensors are new = current - (after - before) of the old commit (a
 * semantic undo, not bit-exact, as git revert), with its diffs, the old
 * commit's versions -> REVERTED, its superseded versions COMMITTED again
 * where their slot has no committed version, and HEAD -> the new commit.
 * message NULL gives "revert commit N (...)". ERR_INVALID for the base,
 * for a commit off the chain, one already reverted, or a revert commit
 * that is not HEAD. */
int history_revert(store_txn *t, uint64_t id, const char *message,
                   history_result *res);

/* ---- checking a store ------------------------------------------------ */

typedef struct {
    uint64_t head;
    size_t commits;          /* records in the store */
    size_t chain;            /* commits on HEAD's chain */
    size_t diffs;            /* diff blobs checked */
    size_t overlay;          /* overlay tensors checked */
    size_t replayed;         /* tensor steps replayed back to the base */
    size_t base_tensors;     /* base model tensors checked */
    size_t versions;         /* fact versions checked */
} history_fsck_counts;

/* Verifies the store in transaction t (a read snapshot suffices):
 * every record parses and its diffs are intact and agree with it; every
 * overlay tensor hashes to the "after" of the newest commit on the chain
 * that touched it (and a touched tensor missing from the overlay is the
 * base value that commit left); undoing the chain from HEAD back to the
 * base reproduces every recorded hash and ends at the base model's
 * values; the base model files match meta "model_tensor_hashes" (and
 * config.json meta "config"); the queue and the fact states agree with
 * the chain (committed versions belong to a commit in effect, each
 * commit's versions are in a state its fate allows, one committed
 * version per slot). Each problem found is appended to `problems` as a
 * string; the return value is an error only when the check itself could
 * not run (ERR_NOMEM, an unreadable store). */
int history_fsck(store_txn *t, json_t *problems, history_fsck_counts *c);

/* ---- facts ----------------------------------------------------------- */

/* The fact versions in effect after commit `id`: walking from id to the
 * base, each slot's newest version committed by a commit that no revert
 * commit of that walk reverted. *ids malloc'ed, ascending. */
int history_facts_at(store_txn *t, uint64_t id, uint64_t **ids, size_t *n);

#endif
