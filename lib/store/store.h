/* store: the LMDB environment that holds everything stamp knows, and the
 * only module that calls mdb_*. It owns every key and value encoding.
 *
 * Named databases (see docs/architecture.md, "The store"):
 *   meta      key -> value (format version, base model identity, params)
 *   facts     slot -> newest version id
 *   versions  version id -> fact + state (+ commit, supersedes)
 *   queue     version id -> (empty): pending versions, in import order
 *   commits   commit id -> commit record (JSON text made by the caller)
 *   diffs     (commit id, tensor name) -> encoded diff bytes
 *   tensors   tensor name -> current edited value (F32 bytes, HF layout)
 *   stats     (model id, layer) -> keystats_sum blob
 *
 * Concurrency: any number of readers; one writer at a time. A write
 * transaction takes an exclusive flock() on a lock file in the store
 * directory; a second writer waits up to $STAMP_LOCK_WAIT seconds
 * (default 30; store_set_lock_wait lets the caller announce the wait)
 * and then gets ERR_BUSY ("the store is locked by another process (pid
 * N)"). Readers never wait.
 *
 * Map size: the environment is opened with a 1 TiB map (address space
 * only; the file grows with the data), so MDB_MAP_FULL does not happen
 * in practice; if it does, or the disk is full, the transaction fails
 * with a clear error and nothing of it is kept.
 *
 * Memory returned from a read (const pointers) points into LMDB's map and
 * is valid only until the transaction ends; say so at each call site. */
#ifndef STAMP_STORE_H
#define STAMP_STORE_H

#include "facts/fact.h"

#include <stddef.h>
#include <stdint.h>

typedef struct store store;         /* opaque: the environment */
typedef struct store_txn store_txn; /* opaque: one transaction */

typedef enum {
    VERSION_QUEUED = 0,
    VERSION_COMMITTED = 1,  /* in commit `commit_id` */
    VERSION_SUPERSEDED = 2, /* a newer version replaced it before commit */
    VERSION_REVERTED = 3,   /* its commit was reverted or reset away */
} version_state;

typedef struct {
    uint64_t id;           /* global, increasing: import order */
    uint64_t number;       /* 1, 2, ... within its slot */
    uint64_t import_id;    /* which import brought it */
    version_state state;
    uint64_t commit_id;    /* when COMMITTED (or REVERTED: the commit) */
    fact f;                /* owned; free with store_version_free */
} store_version;

void store_version_free(store_version *v); /* frees v->f; accepts NULL */
void store_versions_free(store_version *v, size_t n); /* and the array */

/* ---- environment ---------------------------------------------------- */

/* Creates the store directory and environment. Refuses (ERR_EXISTS) when
 * `dir` already holds a store. `meta` pairs are written in the same
 * transaction (n pairs of key, NUL-terminated value). */
int store_create(const char *dir, const char *const *keys,
                 const char *const *values, size_t n);

/* Opens an existing store (ERR_NOTFOUND with the path when there is
 * none). */
int store_open(store **out, const char *dir);
void store_close(store *s); /* accepts NULL */
const char *store_dir(const store *s);

/* Called by a write transaction of store `s` that finds the writer lock
 * held, once, before it waits: the store's directory, the holder's pid
 * (0 when unknown) and how long it will wait ($STAMP_LOCK_WAIT). The
 * library prints nothing; a command that wants the wait announced
 * installs one. No callback (the default): the wait is silent. */
typedef void (*store_lock_wait_fn)(void *ctx, const char *dir, long pid,
                                   double seconds);
void store_set_lock_wait(store *s, store_lock_wait_fn fn, void *ctx);

/* ---- transactions --------------------------------------------------- */

/* write = 0: a read snapshot; write = 1: takes the writer lock first.
 * Nothing a write transaction did is visible (or on disk) until
 * store_txn_commit returns 0; store_txn_abort discards it. */
int store_txn_begin(store *s, store_txn **out, int write);
int store_txn_commit(store_txn *t);   /* frees t */
void store_txn_abort(store_txn *t);   /* frees t; accepts NULL */

/* ---- meta ----------------------------------------------------------- */

/* *value is malloc'ed and NUL-terminated (caller frees); ERR_NOTFOUND
 * when the key is absent. */
int store_meta_get(store_txn *t, const char *key, char **value);
int store_meta_put(store_txn *t, const char *key, const char *value);

/* ---- facts, versions, queue ---------------------------------------- */

typedef enum {
    IMPORT_QUEUED = 0,       /* a new version, queued */
    IMPORT_SUPERSEDED = 1,   /* queued, and replaced a queued version */
    IMPORT_UNCHANGED = 2,    /* same target as the slot's newest version
                                (queued or committed): nothing new */
} import_action;

/* Allocates the next import id (recorded with its time and file names
 * by the caller through meta or the versions it adds). */
int store_import_begin(store_txn *t, uint64_t *import_id);

/* Adds `f` as a new version of its slot unless the slot's newest version
 * has the same target_new and is queued or committed. Copies f. */
int store_fact_add(store_txn *t, const fact *f, uint64_t import_id,
                   import_action *action, uint64_t *version_id);

/* The queued versions in import order; at most `limit` (0 = all).
 * *out is malloc'ed (free with store_versions_free). */
int store_queue_list(store_txn *t, size_t limit, store_version **out,
                     size_t *n);
int store_queue_count(store_txn *t, size_t *n);

/* Streams the queue: calls fn(ctx, v) for each queued version in import
 * order, at most `limit` (0 = all), without holding them all in memory.
 * *v (and its strings) is valid only during the call. A non-zero return
 * from fn stops the walk and is returned. */
int store_queue_foreach(store_txn *t, size_t limit,
                        int (*fn)(void *ctx, const store_version *v),
                        void *ctx);

/* One version by id (ERR_NOTFOUND). */
int store_version_get(store_txn *t, uint64_t id, store_version *out);

/* Every version of the slots whose subject equals `subject`, oldest
 * first. */
int store_subject_history(store_txn *t, const char *subject,
                          store_version **out, size_t *n);

/* Every version with state COMMITTED (any commit: commit_id = 0) or
 * committed in `commit_id`. */
int store_committed_list(store_txn *t, uint64_t commit_id,
                         store_version **out, size_t *n);

/* Sets a version's state (and commit id), and keeps the queue in step:
 * QUEUED puts it in the queue, any other state takes it out. */
int store_version_set_state(store_txn *t, uint64_t id, version_state s,
                            uint64_t commit_id);

/* ---- commits -------------------------------------------------------- */

/* Commit ids are 1, 2, 3, ...; 0 is the base model. HEAD is the newest
 * commit still in effect (0 when none). */
int store_head(store_txn *t, uint64_t *commit_id);
int store_head_set(store_txn *t, uint64_t commit_id);
int store_commit_next_id(store_txn *t, uint64_t *commit_id);

/* The record is JSON text made by the caller; *json malloc'ed. */
int store_commit_put(store_txn *t, uint64_t id, const char *json);
int store_commit_get(store_txn *t, uint64_t id, char **json);
/* All commit ids that exist, ascending (including ones reset away). */
int store_commit_ids(store_txn *t, uint64_t **ids, size_t *n);

/* ---- diffs and tensors ---------------------------------------------- */

int store_diff_put(store_txn *t, uint64_t commit_id, const char *tensor,
                   const void *data, size_t len);
/* *data points into the map: valid until the transaction ends. */
int store_diff_get(store_txn *t, uint64_t commit_id, const char *tensor,
                   const void **data, size_t *len);
/* Names of the tensors a commit has diffs for (malloc'ed array of
 * malloc'ed strings). */
int store_diff_tensors(store_txn *t, uint64_t commit_id, char ***names,
                       size_t *n);

/* The current edited value of a tensor (F32, HF layout). *data points
 * into the map: valid until the transaction ends. ERR_NOTFOUND when the
 * tensor has never been edited (the base value applies). */
int store_tensor_get(store_txn *t, const char *name, const float **data,
                     size_t *numel);
int store_tensor_put(store_txn *t, const char *name, const float *data,
                     size_t numel);
int store_tensor_del(store_txn *t, const char *name);
int store_tensor_names(store_txn *t, char ***names, size_t *n);

/* ---- keystats_sum statistics ----------------------------------------- */

/* Opaque blobs keyed by (model id, layer). *data valid until txn end. */
int store_stats_get(store_txn *t, const char *model_id, size_t layer,
                    const void **data, size_t *len);
int store_stats_put(store_txn *t, const char *model_id, size_t layer,
                    const void *data, size_t len);

/* Says the caller is done with a blob store_stats_get returned in t: the
 * pages of the store's map it lies on are dropped from the process (they
 * stay in the page cache; a later read maps them again), so a statistics
 * record read once does not stay in the process's memory for the rest
 * of the transaction. Does nothing when t has put statistics itself (its
 * blobs may then be the transaction's own pages). data stays readable. */
void store_stats_release(store_txn *t, const void *data, size_t len);

void store_strings_free(char **names, size_t n);

/* ---- space ----------------------------------------------------------- */

typedef struct {
    const char *name;   /* static: "meta", "facts", ... */
    uint64_t entries;
    uint64_t bytes;     /* (branch + leaf + overflow pages) x page size */
} store_space_db;

typedef struct {
    store_space_db db[8];   /* each named database */
    size_t n_db;
    uint64_t page_size;
    uint64_t meta_bytes;     /* the two meta pages and the main DB */
    uint64_t freelist_bytes; /* the free list's own pages */
    uint64_t free_pages;     /* pages free for reuse inside the file */
    uint64_t used_bytes;     /* pages in use up to the last: the sum of
                                the above (free pages x page size) and
                                pages held for readers; <= file_bytes */
    uint64_t file_bytes;     /* data.mdb's size */
} store_space;

/* The space the store takes, by kind, as of transaction t. */
int store_space_get(store_txn *t, store_space *out);

/* Rewrites data.mdb compacted (LMDB's compacting copy: free pages
 * dropped, every tree packed) through DIR/data.mdb.gc-tmp and an atomic
 * rename, synced: a kill at any moment leaves the old file or the new,
 * whole. Holds the writer lock; refuses with ERR_BUSY while another
 * process has the store open. No transaction of `s` may be open. *before
 * and *after: data.mdb's size in bytes. The environment is reopened on
 * the new file; on failure after the rename `s` may be unusable (close
 * it). */
int store_compact(store *s, uint64_t *before, uint64_t *after);

/* ---- format and repair ----------------------------------------------- */

/* The store's format: 2, whose every value carries a checksum that every
 * read checks (a damaged value is an ERR_STORE naming the record), or 1
 * (written by a stamp before checksums; read and written as it is until
 * store_upgrade). docs/store.md. */
int store_format(const store *s);

/* Rewrites every value of a format-1 store with its checksum and marks
 * it format 2, in one write transaction of its own (all or nothing; no
 * transaction of `s` may be open). *upgraded = 0 when there was nothing
 * to do. Values are taken as they are: check the store first. */
int store_upgrade(store *s, int *upgraded);

/* Deletes the record under `key` of database `db` ("queue", "stats",
 * ... as store_check names them) without reading its value: the way to
 * drop a damaged record. ERR_NOTFOUND when there is none. */
int store_record_drop(store_txn *t, const char *db, const void *key,
                      size_t klen);

#endif
