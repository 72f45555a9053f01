/* store: the LMDB environment behind stamp (see store.h), and the only
 * file that calls mdb_*. It owns every key and value encoding:
 *
 *   meta      key string -> value string (no NUL stored). Internal keys:
 *             "head" (decimal commit id), "last_import_id".
 *   facts     slot key -> newest version id (8 bytes big-endian). The
 *             slot key is subject + 0x1f + relation-or-prompt; a part too
 *             long for LMDB's 511-byte keys is cut and followed by 0x1e and
 *             the XXH3-128 hex of the whole part, so the key stays unique
 *             and every slot of a subject still shares the prefix
 *             subject-part + 0x1f (store_subject_history scans it).
 *   versions  version id (8 bytes BE) -> binary record, see encode_version.
 *             Each record names the previous version of its slot, so a
 *             slot's history is a chain from its newest version.
 *   queue     version id (8 bytes BE) -> empty.
 *   commits   commit id (8 bytes BE) -> JSON text.
 *   diffs     commit id (8 bytes BE) + tensor name -> bytes.
 *   tensors   tensor name -> F32 bytes.
 *   stats     model id + NUL + layer (8 bytes BE) -> bytes.
 *
 * Numeric keys are big-endian so cursors walk them in numeric order, and
 * appends of ever-growing ids use MDB_APPEND. Record integers are little-
 * endian (the machines we run on; checked by the format byte's layout).
 *
 * The writer lock is flock() on DIR/lock, taken before LMDB's own writer
 * mutex so that a waiting writer can give up after $STAMP_LOCK_WAIT
 * seconds and name the holder (its pid is written into the lock file). */
#include "store/store.h"
#include "store/store_check.h"
#include "store/store_format.h"
#include "base/errors.h"
#include "base/hash.h"
#include "base/tmpdir.h"
#include "base/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#define db_names store_db_names

#define STORE_MAP_SIZE ((size_t)1 << 40) /* 1 TiB of address space */
#define VERSION_FORMAT 1                 /* first byte of a version record */
#define MAX_NAME 400                     /* tensor names, meta keys */
#define MAX_KEY_BYTES 511                /* LMDB's largest key */

struct store {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    char *dir;
    int readonly;   /* opened without write access to the directory */
    int format;     /* STORE_FORMAT, or STORE_FORMAT_LEGACY: no checksums */
    int open_fd;    /* lock.mdb, flock'ed shared while the env is open
                       (store_compact takes it exclusive), or -1 */
    store_lock_wait_fn lock_wait;   /* told before a writer waits, or NULL */
    void *lock_wait_ctx;
};

struct store_txn {
    store *s;
    MDB_txn *txn;
    int write;
    int lock_fd;            /* write: the flock'ed DIR/lock */
    uint64_t next_version;  /* write: cached next version id (0: unknown) */
    void **bufs;            /* aligned copies handed out until txn end */
    size_t n_bufs;
    int stats_put;          /* write: statistics were put (their pages are
                               the txn's own, not the map's) */
};

/* ---- small helpers -------------------------------------------------- */

static void be64_put(unsigned char b[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t be64_get(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | b[i];
    return v;
}

/* Turns an LMDB (or errno) code into an ERR_* code with a message that
 * names the store and what was being done. */
static int lmdb_fail(const store *s, int rc, const char *what)
{
    const char *dir = s ? s->dir : "?";
    if (rc == MDB_MAP_FULL)
        return err_set(ERR_STORE, "the store '%s' is full (its map size is "
                       "reached) while %s; nothing was written", dir, what);
    if (rc == ENOSPC)
        return err_set(ERR_IO, "no space left on the device of the store "
                       "'%s' while %s; nothing was written", dir, what);
    if (rc == EACCES || rc == EROFS || rc == EPERM)
        return err_set(ERR_IO, "no write access to the store '%s' while %s: "
                       "%s", dir, what, mdb_strerror(rc));
    if (rc == EIO && s) {
        /* LMDB reports a short write (a full disk, often) as EIO */
        struct statvfs vfs;
        if (statvfs(dir, &vfs) == 0)
            return err_set(ERR_IO, "cannot write the store '%s' while %s: "
                           "i/o error with %llu KiB left on its device (is "
                           "the disk full?); nothing was written", dir, what,
                           (unsigned long long)vfs.f_bavail * vfs.f_frsize /
                               1024);
    }
    if (rc > 0)
        return err_set(ERR_IO, "i/o error in the store '%s' while %s: %s",
                       dir, what, mdb_strerror(rc));
    return err_set(ERR_STORE, "store '%s' failed while %s: %s", dir, what,
                   mdb_strerror(rc));
}

static int need_write(const store_txn *t, const char *what)
{
    if (t->write) return 0;
    return err_set(ERR_INVALID, "%s needs a write transaction", what);
}

static int path_join(char *buf, size_t size, const char *dir,
                     const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return err_set(ERR_INVALID, "path too long: '%s/%s'", dir, name);
    return 0;
}

static uint64_t map_size(void)
{
    /* STAMP_MAP_SIZE (bytes) exists for tests that need a full map. */
    const char *env = getenv("STAMP_MAP_SIZE");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end == '\0' && v >= 65536) return v;
    }
    return STORE_MAP_SIZE;
}

static int env_setup(MDB_env **env)
{
    int rc = mdb_env_create(env);
    if (rc) return rc;
    if ((rc = mdb_env_set_maxdbs(*env, DB_COUNT + 8)) ||
        (rc = mdb_env_set_mapsize(*env, map_size()))) {
        mdb_env_close(*env);
        *env = NULL;
    }
    return rc;
}

static int val_put(MDB_txn *txn, MDB_dbi dbi, int db, int format,
                   MDB_val *k, const void *val, size_t vlen, unsigned flags,
                   void **out);
static int val_open(const store *s, int db, const MDB_val *k, MDB_val *v);

/* ---- version records ----------------------------------------------- */

/* Record layout (integers little-endian):
 *   u8 format (1), u8 state,
 *   u64 number, u64 import_id, u64 commit_id, u64 prev (0 = none),
 *   u64 source_line,
 *   strings (u32 length + bytes): subject, prompt, relation, target_new,
 *   target_true, source_file,
 *   u32 n_paraphrases, strings; u32 n_neighbors, n x (prompt, target). */
#define REC_HEAD (2 + 5 * 8)

typedef struct {
    version_state state;
    uint64_t number, import_id, commit_id, prev, source_line;
} rec_head;

static size_t str_size(const char *s) { return 4 + (s ? strlen(s) : 0); }

static size_t version_size(const fact *f)
{
    size_t n = REC_HEAD;
    n += str_size(f->subject) + str_size(f->prompt) + str_size(f->relation);
    n += str_size(f->target_new) + str_size(f->target_true);
    n += str_size(f->source_file) + 8;
    for (size_t i = 0; i < f->n_paraphrases; i++)
        n += str_size(f->paraphrases[i]);
    for (size_t i = 0; i < f->n_neighbors; i++)
        n += str_size(f->neighbor_prompts[i]) +
             str_size(f->neighbor_targets[i]);
    return n;
}

static unsigned char *put_u64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
    return p + 8;
}

static unsigned char *put_str(unsigned char *p, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : 0;
    memcpy(p, &n, 4);
    if (n) memcpy(p + 4, s, n);
    return p + 4 + n;
}

static void encode_version(unsigned char *p, const rec_head *h,
                           const fact *f)
{
    uint32_t n;
    *p++ = VERSION_FORMAT;
    *p++ = (unsigned char)h->state;
    p = put_u64(p, h->number);
    p = put_u64(p, h->import_id);
    p = put_u64(p, h->commit_id);
    p = put_u64(p, h->prev);
    p = put_u64(p, h->source_line);
    p = put_str(p, f->subject);
    p = put_str(p, f->prompt);
    p = put_str(p, f->relation);
    p = put_str(p, f->target_new);
    p = put_str(p, f->target_true);
    p = put_str(p, f->source_file);
    n = (uint32_t)f->n_paraphrases;
    memcpy(p, &n, 4);
    p += 4;
    for (size_t i = 0; i < f->n_paraphrases; i++)
        p = put_str(p, f->paraphrases[i]);
    n = (uint32_t)f->n_neighbors;
    memcpy(p, &n, 4);
    p += 4;
    for (size_t i = 0; i < f->n_neighbors; i++) {
        p = put_str(p, f->neighbor_prompts[i]);
        p = put_str(p, f->neighbor_targets[i]);
    }
}

typedef struct {
    const unsigned char *p, *end;
    int bad;
} reader;

static uint64_t get_u64(reader *r)
{
    uint64_t v = 0;
    if (r->end - r->p < 8) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p, 8);
    r->p += 8;
    return v;
}

static uint32_t get_u32(reader *r)
{
    uint32_t v = 0;
    if (r->end - r->p < 4) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p, 4);
    r->p += 4;
    return v;
}

static char *get_str(reader *r)
{
    uint32_t n = get_u32(r);
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = 2;
        return NULL;
    }
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    return s;
}

static int decode_head(const MDB_val *v, rec_head *h)
{
    reader r = {v->mv_data, (const unsigned char *)v->mv_data + v->mv_size,
                0};
    if (v->mv_size < REC_HEAD || r.p[0] != VERSION_FORMAT || r.p[1] > 3)
        return -1;
    h->state = (version_state)r.p[1];
    r.p += 2;
    h->number = get_u64(&r);
    h->import_id = get_u64(&r);
    h->commit_id = get_u64(&r);
    h->prev = get_u64(&r);
    h->source_line = get_u64(&r);
    return 0;
}

/* Decodes a whole record into *out (owned strings). */
static int decode_version(const store *s, uint64_t id, const MDB_val *v,
                          store_version *out, uint64_t *prev)
{
    rec_head h;
    memset(out, 0, sizeof *out);
    if (decode_head(v, &h))
        return err_set(ERR_STORE, "store '%s': version %llu is corrupt "
                       "(bad header)", s->dir, (unsigned long long)id);
    reader r = {(const unsigned char *)v->mv_data + REC_HEAD,
                (const unsigned char *)v->mv_data + v->mv_size, 0};
    fact *f = &out->f;
    out->id = id;
    out->number = h.number;
    out->import_id = h.import_id;
    out->state = h.state;
    out->commit_id = h.commit_id;
    f->source_line = (size_t)h.source_line;
    if (prev) *prev = h.prev;
    f->subject = get_str(&r);
    f->prompt = get_str(&r);
    f->relation = get_str(&r);
    f->target_new = get_str(&r);
    f->target_true = get_str(&r);
    f->source_file = get_str(&r);
    uint32_t np = get_u32(&r);
    if (!r.bad && np > (size_t)(r.end - r.p) / 4) r.bad = 1;
    if (!r.bad && np) {
        f->paraphrases = calloc(np, sizeof(char *));
        if (!f->paraphrases) r.bad = 2;
        else f->n_paraphrases = np;
        for (uint32_t i = 0; i < np && !r.bad; i++)
            f->paraphrases[i] = get_str(&r);
    }
    uint32_t nn = r.bad ? 0 : get_u32(&r);
    if (!r.bad && nn > (size_t)(r.end - r.p) / 8) r.bad = 1;
    if (!r.bad && nn) {
        f->neighbor_prompts = calloc(nn, sizeof(char *));
        f->neighbor_targets = calloc(nn, sizeof(char *));
        if (!f->neighbor_prompts || !f->neighbor_targets) {
            free(f->neighbor_prompts);
            free(f->neighbor_targets);
            f->neighbor_prompts = f->neighbor_targets = NULL;
            r.bad = 2;
        } else {
            f->n_neighbors = nn;
        }
        for (uint32_t i = 0; i < nn && !r.bad; i++) {
            f->neighbor_prompts[i] = get_str(&r);
            f->neighbor_targets[i] = get_str(&r);
        }
    }
    if (!r.bad && r.p != r.end) r.bad = 1;
    if (r.bad) {
        int nomem = r.bad == 2;
        fact_free(f);
        if (nomem) return err_set(ERR_NOMEM, "out of memory reading a "
                                  "version");
        return err_set(ERR_STORE, "store '%s': version %llu is corrupt "
                       "(bad record)", s->dir, (unsigned long long)id);
    }
    return 0;
}

void store_version_free(store_version *v)
{
    if (v) fact_free(&v->f);
}

void store_versions_free(store_version *v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) store_version_free(&v[i]);
    free(v);
}

void store_strings_free(char **names, size_t n)
{
    if (!names) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* A growing array of versions. */
typedef struct {
    store_version *v;
    size_t n, cap;
} version_list;

static store_version *list_push(version_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        store_version *v = realloc(l->v, cap * sizeof *v);
        if (!v) return NULL;
        l->v = v;
        l->cap = cap;
    }
    return &l->v[l->n++];
}

/* ---- the environment ------------------------------------------------ */

static int dir_state(const char *dir, int *exists, int *empty, int *is_store)
{
    struct stat st;
    char path[4096];
    *exists = *empty = *is_store = 0;
    if (stat(dir, &st)) {
        if (errno == ENOENT) return 0;
        return err_set(ERR_IO, "cannot access '%s': %s", dir,
                       strerror(errno));
    }
    *exists = 1;
    if (!S_ISDIR(st.st_mode)) return 0;
    if (path_join(path, sizeof path, dir, "data.mdb")) return ERR_INVALID;
    if (stat(path, &st) == 0) *is_store = 1;
    DIR *d = opendir(dir);
    if (!d) return err_set(ERR_IO, "cannot read '%s': %s", dir,
                           strerror(errno));
    struct dirent *e;
    *empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) *empty = 0;
    closedir(d);
    return 0;
}

/* The format a new store gets: STORE_FORMAT, or the old one without
 * checksums when STAMP_TEST_STORE_FORMAT=1 (for the tests of stores an
 * older stamp wrote). */
static int create_format(void)
{
    const char *env = getenv("STAMP_TEST_STORE_FORMAT");
    return env && !strcmp(env, "1") ? STORE_FORMAT_LEGACY : STORE_FORMAT;
}

int store_create(const char *dir, const char *const *keys,
                 const char *const *values, size_t n)
{
    char clean[4096], tmp[4200], path[4300];
    int exists, empty, is_store, rc;
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof clean)
        return err_set(ERR_INVALID, "bad store directory name '%s'", dir);
    memcpy(clean, dir, len + 1);
    while (len > 1 && clean[len - 1] == '/') clean[--len] = '\0';
    if ((rc = dir_state(clean, &exists, &empty, &is_store))) return rc;
    if (is_store)
        return err_set(ERR_EXISTS, "a store already exists in '%s'", clean);
    if (exists && !empty)
        return err_set(ERR_EXISTS, "'%s' exists and is not an empty "
                       "directory", clean);

    /* Build the store beside its final place and rename it in: a failed
     * or killed init never leaves a half store at `dir` (and a killed
     * one's DIR.tmp.PID goes once its process is gone). */
    tmpdir_sweep_stale(clean, NULL, NULL);
    if ((rc = tmpdir_name(tmp, sizeof tmp, clean))) return rc;
    tmpdir_remove(tmp);
    if (mkdir(tmp, 0755))
        return err_set(ERR_IO, "cannot create the store '%s': %s", clean,
                       strerror(errno));
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    store s = {.dir = clean};
    snprintf(path, sizeof path, "%s/lock", tmp);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = err_set(ERR_IO, "cannot create '%s': %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    if ((rc = env_setup(&env)) || (rc = mdb_env_open(env, tmp, 0, 0644)) ||
        (rc = mdb_txn_begin(env, NULL, 0, &txn))) {
        rc = lmdb_fail(&s, rc, "creating the environment");
        goto fail;
    }
    MDB_dbi meta = 0;
    for (int i = 0; i < DB_COUNT; i++) {
        MDB_dbi dbi;
        if ((rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &dbi))) {
            rc = lmdb_fail(&s, rc, "creating its databases");
            goto fail;
        }
        if (i == DB_META) meta = dbi;
    }
    /* the format is the store's, whatever the caller passed */
    int format = create_format();
    char fv[2] = {(char)('0' + format), '\0'};
    MDB_val fk = {14, "format_version"};
    if ((rc = val_put(txn, meta, DB_META, format, &fk, fv, 1, 0, NULL))) {
        rc = lmdb_fail(&s, rc, "writing its meta data");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        MDB_val k = {strlen(keys[i]), (void *)keys[i]};
        if (k.mv_size == 0 || k.mv_size > MAX_NAME) {
            rc = err_set(ERR_INVALID, "bad meta key '%s'", keys[i]);
            goto fail;
        }
        if (!strcmp(keys[i], "format_version")) continue;
        if ((rc = val_put(txn, meta, DB_META, format, &k, values[i],
                          strlen(values[i]), 0, NULL))) {
            rc = lmdb_fail(&s, rc, "writing its meta data");
            goto fail;
        }
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        rc = lmdb_fail(&s, rc, "writing the new store");
        goto fail;
    }
    mdb_env_close(env);
    env = NULL;
    if (rename(tmp, clean)) {
        rc = err_set(errno == ENOTEMPTY || errno == EEXIST ? ERR_EXISTS
                                                           : ERR_IO,
                     "cannot move the new store into '%s': %s", clean,
                     strerror(errno));
        goto fail;
    }
    return 0;
fail:
    if (txn) mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
    tmpdir_remove(tmp);
    return rc;
}

/* Every open store holds a shared flock() on DIR/lock.mdb for as long
 * as its environment is open, taken before mdb_env_open: store_compact
 * replaces data.mdb only while it holds that lock exclusive, so no other
 * process maps the old file afterwards. (flock and LMDB's own fcntl locks
 * on the same file are independent on Linux.) Openers wait while a
 * compaction runs. A store directory we cannot write, without lock.mdb,
 * goes without. */
static int open_lock_take(store *s)
{
    char path[4096];
    int rc;
    if ((rc = path_join(path, sizeof path, s->dir, "lock.mdb"))) return rc;
    s->open_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->open_fd < 0) s->open_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->open_fd < 0) return 0;
    while (flock(s->open_fd, LOCK_SH)) {
        if (errno == EINTR) continue;
        close(s->open_fd);
        s->open_fd = -1;
        break; /* no flock here (some file systems): go without */
    }
    return 0;
}

/* Begins the read transaction store_open looks through, once the
 * structure of its snapshot in data.mdb checks (store_check.h): LMDB
 * reads no page of a damaged or truncated file, and the snapshot's pages
 * cannot be reused while the check reads them. */
static int open_checked(store *s, MDB_txn **txn)
{
    for (int tries = 0;; tries++) {
        store_check_report r;
        int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
        if (rc) return lmdb_fail(s, rc, "opening it");
        rc = store_check_file(s->dir, (uint64_t)mdb_txn_id(*txn), 0, &r);
        if (rc == ERR_NOTFOUND && tries < 10) { /* a writer moved on */
            store_check_report_free(&r);
            mdb_txn_abort(*txn);
            continue;
        }
        if (!rc && r.fatal) {
            size_t i = 0;
            while (!r.problems[i].fatal) i++;
            rc = err_set(ERR_STORE, "the store '%s' is damaged: %s%s; `stamp "
                         "fsck` lists the damage", s->dir, r.problems[i].text,
                         r.n_problems > 1 ? " (and more)" : "");
        } else if (rc == ERR_NOTFOUND) {
            rc = err_set(ERR_BUSY, "the store '%s' changed under every "
                         "attempt to check it", s->dir);
        }
        store_check_report_free(&r);
        if (rc) {
            mdb_txn_abort(*txn);
            *txn = NULL;
        }
        return rc;
    }
}

/* Reads meta "format_version" (see store_format.h) into s->format. */
static int open_format(store *s, MDB_txn *txn)
{
    MDB_val k = {14, "format_version"}, v;
    int rc = mdb_get(txn, s->dbi[DB_META], &k, &v);
    s->format = STORE_FORMAT;
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return lmdb_fail(s, rc, "reading its format");
    if (v.mv_size == 1 && *(const char *)v.mv_data == '1') {
        s->format = STORE_FORMAT_LEGACY;
        return 0;
    }
    if ((rc = val_open(s, DB_META, &k, &v))) return rc;
    if (v.mv_size == 1 && *(const char *)v.mv_data == '2') return 0;
    return err_set(ERR_STORE, "the store '%s' has format version '%.*s'; "
                   "this stamp reads versions 1 and 2", s->dir,
                   (int)(v.mv_size > 20 ? 20 : v.mv_size),
                   (char *)v.mv_data);
}

int store_open(store **out, const char *dir)
{
    char path[4096];
    struct stat st;
    int rc;
    *out = NULL;
    if ((rc = path_join(path, sizeof path, dir, "data.mdb"))) return rc;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode) || stat(path, &st))
        return err_set(ERR_NOTFOUND, "no store in '%s' (stamp init --model "
                       "DIR creates one)", dir);
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return err_set(ERR_NOMEM, "out of memory opening '%s'", dir);
    }
    s->open_fd = -1;
    if ((rc = open_lock_take(s))) goto fail;
    if ((rc = env_setup(&s->env))) {
        rc = lmdb_fail(s, rc, "opening it");
        goto fail;
    }
    rc = mdb_env_open(s->env, dir, 0, 0644);
    if (rc == EACCES || rc == EROFS) {
        /* Read-only directory: readers may still look. */
        mdb_env_close(s->env);
        s->env = NULL;
        if ((rc = env_setup(&s->env)) ||
            (rc = mdb_env_open(s->env, dir, MDB_RDONLY, 0644))) {
            rc = lmdb_fail(s, rc, "opening it");
            goto fail;
        }
        s->readonly = 1;
    } else if (rc) {
        rc = lmdb_fail(s, rc, "opening it");
        goto fail;
    }
    int dead = 0;
    mdb_reader_check(s->env, &dead); /* slots of killed readers */
    MDB_txn *txn = NULL;
    if ((rc = open_checked(s, &txn))) goto fail;
    for (int i = 0; i < DB_COUNT; i++) {
        if ((rc = mdb_dbi_open(txn, db_names[i], 0, &s->dbi[i]))) {
            mdb_txn_abort(txn);
            if (rc == MDB_NOTFOUND)
                rc = err_set(ERR_STORE, "'%s' is not a stamp store (it has "
                             "no database '%s')", dir, db_names[i]);
            else
                rc = lmdb_fail(s, rc, "opening its databases");
            goto fail;
        }
    }
    if ((rc = open_format(s, txn))) {
        mdb_txn_abort(txn);
        goto fail;
    }
    if ((rc = mdb_txn_commit(txn))) { /* keeps the dbi handles */
        rc = lmdb_fail(s, rc, "opening its databases");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return rc;
}

void store_close(store *s)
{
    if (!s) return;
    if (s->env) mdb_env_close(s->env);
    if (s->open_fd >= 0) close(s->open_fd); /* and its shared flock */
    free(s->dir);
    free(s);
}

const char *store_dir(const store *s) { return s->dir; }

void store_set_lock_wait(store *s, store_lock_wait_fn fn, void *ctx)
{
    s->lock_wait = fn;
    s->lock_wait_ctx = ctx;
}

/* ---- transactions --------------------------------------------------- */

static double lock_wait_seconds(void)
{
    const char *env = getenv("STAMP_LOCK_WAIT");
    if (env && *env) {
        char *end;
        double w = strtod(env, &end);
        if (*end == '\0' && w >= 0) return w;
    }
    return 30.0;
}

/* The pid the lock's holder wrote into the lock file, or 0. */
static long lock_holder(int fd)
{
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
    return pid > 0 ? pid : 0;
}

/* Takes the exclusive writer lock on DIR/lock; *fd holds it. */
static int writer_lock(const store *s, int *fd)
{
    char path[4096];
    int rc;
    if ((rc = path_join(path, sizeof path, s->dir, "lock"))) return rc;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0)
        return err_set(ERR_IO, "cannot open the lock file '%s': %s", path,
                       strerror(errno));
    double wait = lock_wait_seconds(), deadline = clock_seconds() + wait;
    int told = 0;
    for (;;) {
        if (flock(*fd, LOCK_EX | LOCK_NB) == 0) break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            rc = err_set(ERR_IO, "cannot lock '%s': %s", path,
                         strerror(errno));
            goto fail;
        }
        if (clock_seconds() >= deadline) {
            long pid = lock_holder(*fd);
            if (pid)
                rc = err_set(ERR_BUSY, "the store '%s' is locked by another "
                             "process (pid %ld)", s->dir, pid);
            else
                rc = err_set(ERR_BUSY, "the store '%s' is locked by another "
                             "process", s->dir);
            goto fail;
        }
        if (!told && s->lock_wait) {
            s->lock_wait(s->lock_wait_ctx, s->dir, lock_holder(*fd), wait);
            told = 1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(*fd, 0) == 0 && pwrite(*fd, buf, (size_t)n, 0) == n) {
        /* the pid only helps error messages: failures here are harmless */
    }
    return 0;
fail:
    close(*fd);
    *fd = -1;
    return rc;
}

static void writer_unlock(int fd)
{
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}

int store_txn_begin(store *s, store_txn **out, int write)
{
    int rc;
    *out = NULL;
    if (write && s->readonly)
        return err_set(ERR_IO, "no write access to the store '%s'", s->dir);
    store_txn *t = calloc(1, sizeof *t);
    if (!t) return err_set(ERR_NOMEM, "out of memory");
    t->s = s;
    t->write = write;
    t->lock_fd = -1;
    if (write && (rc = writer_lock(s, &t->lock_fd))) {
        free(t);
        return rc;
    }
    rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (rc) {
        rc = lmdb_fail(s, rc, write ? "starting a write" : "starting a read");
        writer_unlock(t->lock_fd);
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static void txn_free(store_txn *t)
{
    for (size_t i = 0; i < t->n_bufs; i++) free(t->bufs[i]);
    free(t->bufs);
    writer_unlock(t->lock_fd);
    free(t);
}

int store_txn_commit(store_txn *t)
{
    int rc = 0;
    if (t->write) {
        rc = mdb_txn_commit(t->txn);
        if (rc) rc = lmdb_fail(t->s, rc, "committing a write");
    } else {
        mdb_txn_abort(t->txn);
    }
    txn_free(t);
    return rc;
}

void store_txn_abort(store_txn *t)
{
    if (!t) return;
    mdb_txn_abort(t->txn);
    txn_free(t);
}

/* Keeps a malloc'ed buffer alive until the transaction ends. */
static int txn_keep(store_txn *t, void *buf)
{
    void **b = realloc(t->bufs, (t->n_bufs + 1) * sizeof *b);
    if (!b) {
        free(buf);
        return err_set(ERR_NOMEM, "out of memory");
    }
    t->bufs = b;
    t->bufs[t->n_bufs++] = buf;
    return 0;
}

/* ---- generic get/put ------------------------------------------------ */

/* The error for a value of database `db` under key k that fails its
 * checksum: it names the record, never hands out its bytes. */
static int damaged(const store *s, int db, const MDB_val *k)
{
    char what[600];
    store_key_describe(what, sizeof what, db, k->mv_data, k->mv_size);
    return err_set(ERR_STORE, "the store '%s' is damaged: %s (database "
                   "'%s') fails its checksum; `stamp fsck` lists the damage, "
                   "`stamp fsck --repair` mends what can be mended", s->dir,
                   what, db_names[db]);
}

/* Checks a value just read from database `db` under key k: in format 2
 * its checksum, and takes the trailer off *v. Every value read goes
 * through here. */
static int val_open(const store *s, int db, const MDB_val *k, MDB_val *v)
{
    if (s->format == STORE_FORMAT_LEGACY) return 0;
    if (!store_value_intact(db, k->mv_data, k->mv_size, v->mv_data,
                            v->mv_size))
        return damaged(s, db, k);
    v->mv_size -= STORE_SUM_BYTES;
    return 0;
}

/* Writes `vlen` bytes at val (NULL: left to the caller through *out)
 * under k in database db of an environment in `format`, with the
 * checksum trailer in format 2 (sealed here when val is given). Returns
 * an LMDB code. */
static int val_put(MDB_txn *txn, MDB_dbi dbi, int db, int format,
                   MDB_val *k, const void *val, size_t vlen, unsigned flags,
                   void **out)
{
    size_t extra = format == STORE_FORMAT_LEGACY ? 0 : STORE_SUM_BYTES;
    MDB_val v = {vlen + extra, NULL};
    int rc = mdb_put(txn, dbi, k, &v, flags | MDB_RESERVE);
    if (rc) return rc;
    if (val && vlen) memcpy(v.mv_data, val, vlen);
    if (val && extra)
        store_value_seal(db, k->mv_data, k->mv_size, v.mv_data, vlen);
    if (out) *out = v.mv_data;
    return 0;
}

static int db_get(store_txn *t, int db, const void *key, size_t klen,
                  MDB_val *v)
{
    MDB_val k = {klen, (void *)key};
    int rc = mdb_get(t->txn, t->s->dbi[db], &k, v);
    if (rc == MDB_NOTFOUND) return ERR_NOTFOUND;
    if (rc) return lmdb_fail(t->s, rc, "reading");
    return val_open(t->s, db, &k, v);
}

static int db_put(store_txn *t, int db, const void *key, size_t klen,
                  const void *val, size_t vlen, unsigned flags)
{
    MDB_val k = {klen, (void *)key};
    int rc = val_put(t->txn, t->s->dbi[db], db, t->s->format, &k,
                     val ? val : "", vlen, flags, NULL);
    if (rc) return lmdb_fail(t->s, rc, "writing");
    return 0;
}

static int db_del(store_txn *t, int db, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)key};
    int rc = mdb_del(t->txn, t->s->dbi[db], &k, NULL);
    if (rc == MDB_NOTFOUND) return ERR_NOTFOUND;
    if (rc) return lmdb_fail(t->s, rc, "deleting");
    return 0;
}

/* The largest 8-byte big-endian key of a database, 0 when empty. */
static int db_last_id(store_txn *t, int db, uint64_t *id)
{
    MDB_cursor *c;
    MDB_val k, v;
    int rc = mdb_cursor_open(t->txn, t->s->dbi[db], &c);
    if (rc) return lmdb_fail(t->s, rc, "reading");
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    mdb_cursor_close(c);
    *id = 0;
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return lmdb_fail(t->s, rc, "reading");
    if ((rc = val_open(t->s, db, &k, &v))) return rc;
    if (k.mv_size < 8)
        return err_set(ERR_STORE, "store '%s': database '%s' has a bad key",
                       t->s->dir, db_names[db]);
    *id = be64_get(k.mv_data);
    return 0;
}

static int check_name(const char *what, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MAX_NAME)
        return err_set(ERR_INVALID, "%s name '%.60s' is empty or longer than "
                       "%d bytes", what, name, MAX_NAME);
    return 0;
}

/* ---- meta ----------------------------------------------------------- */

int store_meta_get(store_txn *t, const char *key, char **value)
{
    MDB_val v;
    *value = NULL;
    int rc = check_name("meta key", key);
    if (rc) return rc;
    rc = db_get(t, DB_META, key, strlen(key), &v);
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_NOTFOUND, "the store has no meta value '%s'", key);
    if (rc) return rc;
    char *s = malloc(v.mv_size + 1);
    if (!s) return err_set(ERR_NOMEM, "out of memory");
    memcpy(s, v.mv_data, v.mv_size);
    s[v.mv_size] = '\0';
    *value = s;
    return 0;
}

int store_meta_put(store_txn *t, const char *key, const char *value)
{
    int rc = need_write(t, "store_meta_put");
    if (!rc) rc = check_name("meta key", key);
    if (rc) return rc;
    return db_put(t, DB_META, key, strlen(key), value, strlen(value), 0);
}

/* A decimal u64 kept in meta; 0 when absent. */
static int meta_u64(store_txn *t, const char *key, uint64_t *out)
{
    MDB_val v;
    char buf[32];
    *out = 0;
    int rc = db_get(t, DB_META, key, strlen(key), &v);
    if (rc == ERR_NOTFOUND) return 0;
    if (rc) return rc;
    if (v.mv_size == 0 || v.mv_size >= sizeof buf)
        return err_set(ERR_STORE, "store '%s': meta '%s' is not a number",
                       t->s->dir, key);
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = '\0';
    char *end;
    *out = strtoull(buf, &end, 10);
    if (*end)
        return err_set(ERR_STORE, "store '%s': meta '%s' is not a number",
                       t->s->dir, key);
    return 0;
}

static int meta_put_u64(store_txn *t, const char *key, uint64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return db_put(t, DB_META, key, strlen(key), buf, (size_t)n, 0);
}

/* ---- slots, versions, queue ---------------------------------------- */

#define SLOT_SUBJECT_MAX 200
#define SLOT_REST_MAX 250
#define SLOT_KEY_MAX (SLOT_SUBJECT_MAX + 1 + SLOT_REST_MAX)

/* Appends `s` to buf, cut to `max` bytes with 0x1e + hash when longer.
 * Returns the bytes written. */
static size_t key_part(unsigned char *buf, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) {
        memcpy(buf, s, n);
        return n;
    }
    size_t keep = max - 33;
    char hex[33];
    hash_hex(hex, s, n);
    memcpy(buf, s, keep);
    buf[keep] = 0x1e;
    memcpy(buf + keep + 1, hex, 32);
    return keep + 33;
}

/* The subject prefix of slot keys (subject part + 0x1f). */
static size_t subject_prefix(unsigned char *buf, const char *subject)
{
    size_t n = key_part(buf, subject, SLOT_SUBJECT_MAX);
    buf[n] = 0x1f;
    return n + 1;
}

static size_t slot_key(unsigned char *buf, const fact *f)
{
    size_t n = subject_prefix(buf, f->subject ? f->subject : "");
    const char *rest = f->relation && f->relation[0]
                           ? f->relation
                           : (f->prompt ? f->prompt : "");
    return n + key_part(buf + n, rest, SLOT_REST_MAX);
}

static int version_read(store_txn *t, uint64_t id, store_version *out,
                        uint64_t *prev)
{
    unsigned char k[8];
    MDB_val v;
    be64_put(k, id);
    int rc = db_get(t, DB_VERSIONS, k, 8, &v);
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_NOTFOUND, "no version %llu in the store",
                       (unsigned long long)id);
    if (rc) return rc;
    return decode_version(t->s, id, &v, out, prev);
}

/* Writes a version record (replacing any) through MDB_RESERVE. */
static int version_write(store_txn *t, uint64_t id, const rec_head *h,
                         const fact *f, unsigned flags)
{
    unsigned char k8[8];
    be64_put(k8, id);
    MDB_val k = {8, k8};
    size_t n = version_size(f);
    void *p;
    int rc = val_put(t->txn, t->s->dbi[DB_VERSIONS], DB_VERSIONS,
                     t->s->format, &k, NULL, n, flags, &p);
    if (rc) return lmdb_fail(t->s, rc, "writing a version");
    encode_version(p, h, f);
    if (t->s->format != STORE_FORMAT_LEGACY)
        store_value_seal(DB_VERSIONS, k8, 8, p, n);
    return 0;
}

static int queue_put(store_txn *t, uint64_t id, unsigned flags)
{
    unsigned char k[8];
    be64_put(k, id);
    return db_put(t, DB_QUEUE, k, 8, "", 0, flags);
}

static int queue_del(store_txn *t, uint64_t id)
{
    unsigned char k[8];
    be64_put(k, id);
    int rc = db_del(t, DB_QUEUE, k, 8);
    return rc == ERR_NOTFOUND ? 0 : rc;
}

int store_import_begin(store_txn *t, uint64_t *import_id)
{
    uint64_t last;
    int rc = need_write(t, "store_import_begin");
    if (!rc) rc = meta_u64(t, "last_import_id", &last);
    if (!rc) rc = meta_put_u64(t, "last_import_id", last + 1);
    if (!rc) *import_id = last + 1;
    return rc;
}

static rec_head head_of(const store_version *v, uint64_t prev)
{
    rec_head h = {v->state, v->number, v->import_id, v->commit_id, prev,
                  v->f.source_line};
    return h;
}

int store_fact_add(store_txn *t, const fact *f, uint64_t import_id,
                   import_action *action, uint64_t *version_id)
{
    unsigned char key[SLOT_KEY_MAX], k8[8];
    store_version newest = {0};
    uint64_t newest_prev = 0, newest_id = 0, id;
    int have_newest = 0, rc = need_write(t, "store_fact_add");
    if (rc) return rc;
    if (!f->subject || !f->subject[0] || !f->target_new ||
        !f->target_new[0])
        return err_set(ERR_INVALID, "a fact needs a subject and a target");
    size_t klen = slot_key(key, f);
    MDB_val v;
    rc = db_get(t, DB_FACTS, key, klen, &v);
    if (rc == 0) {
        if (v.mv_size != 8)
            return err_set(ERR_STORE, "store '%s': a slot of '%s' is corrupt",
                           t->s->dir, f->subject);
        newest_id = be64_get(v.mv_data);
        if ((rc = version_read(t, newest_id, &newest, &newest_prev)))
            return rc;
        have_newest = 1;
    } else if (rc != ERR_NOTFOUND) {
        return rc;
    }
    if (have_newest && !strcmp(newest.f.target_new, f->target_new) &&
        (newest.state == VERSION_QUEUED ||
         newest.state == VERSION_COMMITTED)) {
        *action = IMPORT_UNCHANGED;
        if (version_id) *version_id = newest_id;
        goto out;
    }
    if (t->next_version == 0) {
        uint64_t last;
        if ((rc = db_last_id(t, DB_VERSIONS, &last))) goto out;
        t->next_version = last + 1;
    }
    id = t->next_version;
    *action = IMPORT_QUEUED;
    if (have_newest && newest.state == VERSION_QUEUED) {
        rec_head h = head_of(&newest, newest_prev);
        h.state = VERSION_SUPERSEDED;
        if ((rc = version_write(t, newest_id, &h, &newest.f, 0)) ||
            (rc = queue_del(t, newest_id)))
            goto out;
        *action = IMPORT_SUPERSEDED;
    }
    rec_head h = {VERSION_QUEUED, have_newest ? newest.number + 1 : 1,
                  import_id, 0, have_newest ? newest_id : 0,
                  f->source_line};
    if ((rc = version_write(t, id, &h, f, MDB_APPEND)) ||
        (rc = queue_put(t, id, MDB_APPEND)))
        goto out;
    be64_put(k8, id);
    if ((rc = db_put(t, DB_FACTS, key, klen, k8, 8, 0))) goto out;
    t->next_version = id + 1;
    if (version_id) *version_id = id;
out:
    store_version_free(&newest);
    return rc;
}

int store_queue_list(store_txn *t, size_t limit, store_version **out,
                     size_t *n)
{
    version_list l = {0};
    MDB_cursor *c;
    MDB_val k, v;
    *out = NULL;
    *n = 0;
    int rc = mdb_cursor_open(t->txn, t->s->dbi[DB_QUEUE], &c);
    if (rc) return lmdb_fail(t->s, rc, "reading the queue");
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (limit && l.n >= limit) break;
        if (k.mv_size != 8) {
            rc = err_set(ERR_STORE, "store '%s': the queue has a bad key",
                         t->s->dir);
            goto fail;
        }
        if ((rc = val_open(t->s, DB_QUEUE, &k, &v))) goto fail;
        store_version *sv = list_push(&l);
        if (!sv) {
            rc = err_set(ERR_NOMEM, "out of memory listing the queue");
            goto fail;
        }
        if ((rc = version_read(t, be64_get(k.mv_data), sv, NULL))) {
            l.n--;
            if (rc == ERR_NOTFOUND)
                rc = err_set(ERR_STORE, "store '%s': queued version %llu "
                             "does not exist", t->s->dir,
                             (unsigned long long)be64_get(k.mv_data));
            goto fail;
        }
    }
    if (rc && rc != MDB_NOTFOUND && !(limit && l.n >= limit)) {
        rc = lmdb_fail(t->s, rc, "reading the queue");
        goto fail;
    }
    mdb_cursor_close(c);
    *out = l.v;
    *n = l.n;
    return 0;
fail:
    mdb_cursor_close(c);
    store_versions_free(l.v, l.n);
    return rc;
}

int store_queue_foreach(store_txn *t, size_t limit,
                        int (*fn)(void *ctx, const store_version *v),
                        void *ctx)
{
    MDB_cursor *c;
    MDB_val k, v;
    size_t n = 0;
    int rc = mdb_cursor_open(t->txn, t->s->dbi[DB_QUEUE], &c);
    if (rc) return lmdb_fail(t->s, rc, "reading the queue");
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (limit && n >= limit) break;
        if (k.mv_size != 8) {
            rc = err_set(ERR_STORE, "store '%s': the queue has a bad key",
                         t->s->dir);
            goto out;
        }
        store_version sv;
        uint64_t id = be64_get(k.mv_data);
        if ((rc = val_open(t->s, DB_QUEUE, &k, &v))) goto out;
        if ((rc = version_read(t, id, &sv, NULL))) {
            if (rc == ERR_NOTFOUND)
                rc = err_set(ERR_STORE, "store '%s': queued version %llu "
                             "does not exist", t->s->dir,
                             (unsigned long long)id);
            goto out;
        }
        rc = fn(ctx, &sv);
        store_version_free(&sv);
        if (rc) goto out;
        n++;
    }
    if (rc == MDB_NOTFOUND || (limit && n >= limit)) rc = 0;
    else if (rc) rc = lmdb_fail(t->s, rc, "reading the queue");
out:
    mdb_cursor_close(c);
    return rc;
}

int store_queue_count(store_txn *t, size_t *n)
{
    MDB_stat st;
    int rc = mdb_stat(t->txn, t->s->dbi[DB_QUEUE], &st);
    if (rc) return lmdb_fail(t->s, rc, "reading the queue");
    *n = st.ms_entries;
    return 0;
}

int store_version_get(store_txn *t, uint64_t id, store_version *out)
{
    return version_read(t, id, out, NULL);
}

static int cmp_version_id(const void *a, const void *b)
{
    uint64_t x = ((const store_version *)a)->id;
    uint64_t y = ((const store_version *)b)->id;
    return x < y ? -1 : x > y;
}

int store_subject_history(store_txn *t, const char *subject,
                          store_version **out, size_t *n)
{
    unsigned char prefix[SLOT_SUBJECT_MAX + 2];
    size_t plen = subject_prefix(prefix, subject);
    version_list l = {0};
    MDB_cursor *c;
    MDB_val k = {plen, prefix}, v;
    *out = NULL;
    *n = 0;
    int rc = mdb_cursor_open(t->txn, t->s->dbi[DB_FACTS], &c);
    if (rc) return lmdb_fail(t->s, rc, "reading facts");
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen)) break;
        if ((rc = val_open(t->s, DB_FACTS, &k, &v))) goto fail;
        if (v.mv_size != 8) {
            rc = err_set(ERR_STORE, "store '%s': a slot of '%s' is corrupt",
                         t->s->dir, subject);
            goto fail;
        }
        uint64_t id = be64_get(v.mv_data), guard = 0;
        while (id) {
            uint64_t prev = 0;
            store_version *sv = list_push(&l);
            if (!sv) {
                rc = err_set(ERR_NOMEM, "out of memory");
                goto fail;
            }
            if ((rc = version_read(t, id, sv, &prev))) {
                l.n--;
                goto fail;
            }
            if (strcmp(sv->f.subject, subject)) { /* hashed-prefix clash */
                store_version_free(sv);
                l.n--;
            }
            if ((prev && prev >= id) || ++guard > 100000000) {
                rc = err_set(ERR_STORE, "store '%s': the history of "
                             "version %llu loops", t->s->dir,
                             (unsigned long long)id);
                goto fail;
            }
            id = prev;
        }
    }
    if (rc != MDB_NOTFOUND && rc != 0) {
        rc = lmdb_fail(t->s, rc, "reading facts");
        goto fail;
    }
    mdb_cursor_close(c);
    if (l.n) qsort(l.v, l.n, sizeof *l.v, cmp_version_id);
    *out = l.v;
    *n = l.n;
    return 0;
fail:
    mdb_cursor_close(c);
    store_versions_free(l.v, l.n);
    return rc;
}

int store_committed_list(store_txn *t, uint64_t commit_id,
                         store_version **out, size_t *n)
{
    version_list l = {0};
    MDB_cursor *c;
    MDB_val k, v;
    *out = NULL;
    *n = 0;
    int rc = mdb_cursor_open(t->txn, t->s->dbi[DB_VERSIONS], &c);
    if (rc) return lmdb_fail(t->s, rc, "reading versions");
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        rec_head h;
        uint64_t id = k.mv_size == 8 ? be64_get(k.mv_data) : 0;
        if ((rc = val_open(t->s, DB_VERSIONS, &k, &v))) goto fail;
        if (!id || decode_head(&v, &h)) {
            rc = err_set(ERR_STORE, "store '%s': version %llu is corrupt",
                         t->s->dir, (unsigned long long)id);
            goto fail;
        }
        if (h.state != VERSION_COMMITTED) continue;
        if (commit_id && h.commit_id != commit_id) continue;
        store_version *sv = list_push(&l);
        if (!sv) {
            rc = err_set(ERR_NOMEM, "out of memory");
            goto fail;
        }
        if ((rc = decode_version(t->s, id, &v, sv, NULL))) {
            l.n--;
            goto fail;
        }
    }
    if (rc != MDB_NOTFOUND) {
        rc = lmdb_fail(t->s, rc, "reading versions");
        goto fail;
    }
    mdb_cursor_close(c);
    *out = l.v;
    *n = l.n;
    return 0;
fail:
    mdb_cursor_close(c);
    store_versions_free(l.v, l.n);
    return rc;
}

int store_version_set_state(store_txn *t, uint64_t id, version_state s,
                            uint64_t commit_id)
{
    store_version v;
    uint64_t prev;
    int rc = need_write(t, "store_version_set_state");
    if (rc) return rc;
    if ((unsigned)s > VERSION_REVERTED)
        return err_set(ERR_INVALID, "bad version state %d", (int)s);
    if ((rc = version_read(t, id, &v, &prev))) return rc;
    rec_head h = head_of(&v, prev);
    h.state = s;
    h.commit_id = s == VERSION_QUEUED ? 0 : commit_id;
    rc = version_write(t, id, &h, &v.f, 0);
    if (!rc) rc = s == VERSION_QUEUED ? queue_put(t, id, 0) : queue_del(t, id);
    store_version_free(&v);
    return rc;
}

/* ---- commits -------------------------------------------------------- */

int store_head(store_txn *t, uint64_t *commit_id)
{
    return meta_u64(t, "head", commit_id);
}

int store_head_set(store_txn *t, uint64_t commit_id)
{
    int rc = need_write(t, "store_head_set");
    if (rc) return rc;
    if (commit_id) {
        unsigned char k[8];
        MDB_val v;
        be64_put(k, commit_id);
        rc = db_get(t, DB_COMMITS, k, 8, &v);
        if (rc == ERR_NOTFOUND)
            return err_set(ERR_NOTFOUND, "no commit %llu in the store",
                           (unsigned long long)commit_id);
        if (rc) return rc;
    }
    return meta_put_u64(t, "head", commit_id);
}

int store_commit_next_id(store_txn *t, uint64_t *commit_id)
{
    uint64_t last;
    int rc = db_last_id(t, DB_COMMITS, &last);
    if (!rc) *commit_id = last + 1;
    return rc;
}

int store_commit_put(store_txn *t, uint64_t id, const char *json)
{
    unsigned char k[8];
    int rc = need_write(t, "store_commit_put");
    if (rc) return rc;
    if (id == 0)
        return err_set(ERR_INVALID, "commit id 0 is the base model");
    be64_put(k, id);
    return db_put(t, DB_COMMITS, k, 8, json, strlen(json), 0);
}

int store_commit_get(store_txn *t, uint64_t id, char **json)
{
    unsigned char k[8];
    MDB_val v;
    *json = NULL;
    be64_put(k, id);
    int rc = db_get(t, DB_COMMITS, k, 8, &v);
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_NOTFOUND, "no commit %llu in the store",
                       (unsigned long long)id);
    if (rc) return rc;
    char *s = malloc(v.mv_size + 1);
    if (!s) return err_set(ERR_NOMEM, "out of memory");
    memcpy(s, v.mv_data, v.mv_size);
    s[v.mv_size] = '\0';
    *json = s;
    return 0;
}

int store_commit_ids(store_txn *t, uint64_t **ids, size_t *n)
{
    MDB_cursor *c;
    MDB_val k, v;
    MDB_stat st;
    *ids = NULL;
    *n = 0;
    int rc = mdb_stat(t->txn, t->s->dbi[DB_COMMITS], &st);
    if (rc) return lmdb_fail(t->s, rc, "reading commits");
    if (st.ms_entries == 0) return 0;
    uint64_t *a = malloc(st.ms_entries * sizeof *a);
    if (!a) return err_set(ERR_NOMEM, "out of memory");
    size_t m = 0;
    if ((rc = mdb_cursor_open(t->txn, t->s->dbi[DB_COMMITS], &c))) {
        free(a);
        return lmdb_fail(t->s, rc, "reading commits");
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 &&
         m < st.ms_entries; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        int e = val_open(t->s, DB_COMMITS, &k, &v);
        if (e) {
            mdb_cursor_close(c);
            free(a);
            return e;
        }
        if (k.mv_size == 8) a[m++] = be64_get(k.mv_data);
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND) {
        free(a);
        return lmdb_fail(t->s, rc, "reading commits");
    }
    *ids = a;
    *n = m;
    return 0;
}

/* ---- diffs and tensors ---------------------------------------------- */

static int diff_key(unsigned char *k, uint64_t commit_id, const char *tensor,
                    size_t *klen)
{
    int rc = check_name("tensor", tensor);
    if (rc) return rc;
    size_t n = strlen(tensor);
    be64_put(k, commit_id);
    memcpy(k + 8, tensor, n);
    *klen = 8 + n;
    return 0;
}

int store_diff_put(store_txn *t, uint64_t commit_id, const char *tensor,
                   const void *data, size_t len)
{
    unsigned char k[8 + MAX_NAME];
    size_t klen;
    int rc = need_write(t, "store_diff_put");
    if (!rc) rc = diff_key(k, commit_id, tensor, &klen);
    if (rc) return rc;
    return db_put(t, DB_DIFFS, k, klen, data, len, 0);
}

int store_diff_get(store_txn *t, uint64_t commit_id, const char *tensor,
                   const void **data, size_t *len)
{
    unsigned char k[8 + MAX_NAME];
    size_t klen;
    MDB_val v;
    int rc = diff_key(k, commit_id, tensor, &klen);
    if (rc) return rc;
    rc = db_get(t, DB_DIFFS, k, klen, &v);
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_NOTFOUND, "commit %llu has no diff of '%s'",
                       (unsigned long long)commit_id, tensor);
    if (rc) return rc;
    *data = v.mv_data; /* LMDB memory: valid until the txn ends */
    *len = v.mv_size;
    return 0;
}

/* Collects keys of db (after skipping `skip` prefix bytes) whose first
 * plen bytes equal prefix, as malloc'ed strings. */
static int collect_names(store_txn *t, int db, const unsigned char *prefix,
                         size_t plen, char ***names, size_t *n)
{
    MDB_cursor *c;
    MDB_val k = {plen, (void *)prefix}, v;
    char **a = NULL;
    size_t m = 0, cap = 0;
    *names = NULL;
    *n = 0;
    int rc = mdb_cursor_open(t->txn, t->s->dbi[db], &c);
    if (rc) return lmdb_fail(t->s, rc, "reading names");
    rc = plen ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)
              : mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen)))
            break;
        if (m == cap) {
            cap = cap ? 2 * cap : 16;
            char **b = realloc(a, cap * sizeof *b);
            if (!b) goto nomem;
            a = b;
        }
        size_t len = k.mv_size - plen;
        if (!(a[m] = malloc(len + 1))) goto nomem;
        memcpy(a[m], (char *)k.mv_data + plen, len);
        a[m++][len] = '\0';
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND && rc != 0) {
        store_strings_free(a, m);
        return lmdb_fail(t->s, rc, "reading names");
    }
    *names = a;
    *n = m;
    return 0;
nomem:
    mdb_cursor_close(c);
    store_strings_free(a, m);
    return err_set(ERR_NOMEM, "out of memory");
}

int store_diff_tensors(store_txn *t, uint64_t commit_id, char ***names,
                       size_t *n)
{
    unsigned char k[8];
    be64_put(k, commit_id);
    return collect_names(t, DB_DIFFS, k, 8, names, n);
}

int store_tensor_get(store_txn *t, const char *name, const float **data,
                     size_t *numel)
{
    MDB_val v;
    int rc = check_name("tensor", name);
    if (rc) return rc;
    rc = db_get(t, DB_TENSORS, name, strlen(name), &v);
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_NOTFOUND, "tensor '%s' has no edited value",
                       name);
    if (rc) return rc;
    if (v.mv_size % sizeof(float))
        return err_set(ERR_STORE, "store '%s': tensor '%s' has %zu bytes, "
                       "not a whole number of floats", t->s->dir, name,
                       v.mv_size);
    if ((uintptr_t)v.mv_data % sizeof(float)) {
        /* Small values sit unaligned in LMDB pages: hand out a copy that
         * lives as long as the transaction. */
        void *copy = malloc(v.mv_size ? v.mv_size : 1);
        if (!copy) return err_set(ERR_NOMEM, "out of memory");
        memcpy(copy, v.mv_data, v.mv_size);
        if ((rc = txn_keep(t, copy))) return rc;
        *data = copy;
    } else {
        *data = v.mv_data; /* LMDB memory: valid until the txn ends */
    }
    *numel = v.mv_size / sizeof(float);
    return 0;
}

int store_tensor_put(store_txn *t, const char *name, const float *data,
                     size_t numel)
{
    int rc = need_write(t, "store_tensor_put");
    if (!rc) rc = check_name("tensor", name);
    if (rc) return rc;
    return db_put(t, DB_TENSORS, name, strlen(name), data,
                  numel * sizeof(float), 0);
}

int store_tensor_del(store_txn *t, const char *name)
{
    int rc = need_write(t, "store_tensor_del");
    if (!rc) rc = check_name("tensor", name);
    if (rc) return rc;
    rc = db_del(t, DB_TENSORS, name, strlen(name));
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_NOTFOUND, "tensor '%s' has no edited value",
                       name);
    return rc;
}

int store_tensor_names(store_txn *t, char ***names, size_t *n)
{
    return collect_names(t, DB_TENSORS, NULL, 0, names, n);
}

/* ---- keystats_sum statistics ----------------------------------------- */

static int stats_key(unsigned char *k, const char *model_id, size_t layer,
                     size_t *klen)
{
    int rc = check_name("model id", model_id);
    if (rc) return rc;
    size_t n = strlen(model_id);
    memcpy(k, model_id, n);
    k[n] = '\0';
    be64_put(k + n + 1, layer);
    *klen = n + 9;
    return 0;
}

int store_stats_get(store_txn *t, const char *model_id, size_t layer,
                    const void **data, size_t *len)
{
    unsigned char k[MAX_NAME + 9];
    size_t klen;
    MDB_val v;
    int rc = stats_key(k, model_id, layer, &klen);
    if (rc) return rc;
    rc = db_get(t, DB_STATS, k, klen, &v);
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_NOTFOUND, "no statistics for layer %zu of model "
                       "'%s'", layer, model_id);
    if (rc) return rc;
    *data = v.mv_data; /* LMDB memory: valid until the txn ends */
    *len = v.mv_size;
    return 0;
}

int store_stats_put(store_txn *t, const char *model_id, size_t layer,
                    const void *data, size_t len)
{
    unsigned char k[MAX_NAME + 9];
    size_t klen;
    int rc = need_write(t, "store_stats_put");
    if (!rc) rc = stats_key(k, model_id, layer, &klen);
    if (rc) return rc;
    t->stats_put = 1;
    return db_put(t, DB_STATS, k, klen, data, len, 0);
}

void store_stats_release(store_txn *t, const void *data, size_t len)
{
    /* Without MDB_WRITEMAP, a value a transaction did not write lies on
     * the read-only shared map of data.mdb: dropping its pages loses
     * nothing. Only whole pages inside the value are dropped. */
    long page = sysconf(_SC_PAGESIZE);
    if (!t || !data || t->stats_put || page <= 0) return;
    uintptr_t lo = (uintptr_t)data, hi = lo + len, p = (uintptr_t)page;
    uintptr_t a = (lo + p - 1) / p * p, b = hi / p * p;
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ---- space and compaction ------------------------------------------ */

static uint64_t stat_bytes(const MDB_stat *st)
{
    return ((uint64_t)st->ms_branch_pages + st->ms_leaf_pages +
            st->ms_overflow_pages) * st->ms_psize;
}

int store_space_get(store_txn *t, store_space *out)
{
    store *s = t->s;
    MDB_stat st;
    MDB_envinfo info;
    MDB_cursor *c = NULL;
    int rc;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < DB_COUNT; i++) {
        if ((rc = mdb_stat(t->txn, s->dbi[i], &st)))
            return lmdb_fail(s, rc, "measuring its databases");
        out->db[i].name = db_names[i];
        out->db[i].entries = st.ms_entries;
        out->db[i].bytes = stat_bytes(&st);
    }
    out->n_db = DB_COUNT;
    if ((rc = mdb_env_stat(s->env, &st)) ||
        (rc = mdb_env_info(s->env, &info)))
        return lmdb_fail(s, rc, "measuring it");
    out->page_size = st.ms_psize;
    /* the main DB (the named databases' records) and the two meta pages */
    out->meta_bytes = stat_bytes(&st) + 2 * (uint64_t)st.ms_psize;
    out->used_bytes = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((rc = mdb_stat(t->txn, 0, &st)))
        return lmdb_fail(s, rc, "measuring its free list");
    out->freelist_bytes = stat_bytes(&st);
    /* free pages: each free-DB record is an ID list, its count first */
    if ((rc = mdb_cursor_open(t->txn, 0, &c)))
        return lmdb_fail(s, rc, "reading its free list");
    MDB_val k, v;
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
        if (v.mv_size >= sizeof(size_t))
            out->free_pages += *(const size_t *)v.mv_data;
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) return lmdb_fail(s, rc, "reading its free list");
    char path[4096];
    struct stat fst;
    if ((rc = path_join(path, sizeof path, s->dir, "data.mdb"))) return rc;
    if (stat(path, &fst) == 0) out->file_bytes = (uint64_t)fst.st_size;
    return 0;
}

/* STAMP_TEST_GC_SLEEP=P:S: store_compact sleeps S seconds at point P
 * (copy: the compacted copy is written to the temporary file, not yet
 * synced nor renamed; renamed: the new file is in place, the directory
 * not yet synced), so that tests can kill it there. */
static void gc_test_sleep(const char *point)
{
    const char *env = getenv("STAMP_TEST_GC_SLEEP");
    size_t n = strlen(point);
    if (!env || strncmp(env, point, n) || env[n] != ':') return;
    double sec = strtod(env + n + 1, NULL);
    if (sec <= 0) return;
    struct timespec ts = {(time_t)sec,
                          (long)((sec - (double)(time_t)sec) * 1e9)};
    nanosleep(&ts, NULL);
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Copies what the environment holds into `fd`, compacted, and syncs. */
static int compact_to(store *s, int fd)
{
    int rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
    if (rc) return lmdb_fail(s, rc, "writing its compacted copy");
    gc_test_sleep("copy");
    if (fsync(fd))
        return err_set(ERR_IO, "cannot sync the compacted copy of '%s': %s",
                       s->dir, strerror(errno));
    return 0;
}

int store_compact(store *s, uint64_t *before, uint64_t *after)
{
    char data[4096], tmp[4096];
    struct stat st;
    int rc, lock_fd = -1, fd = -1, exclusive = 0;
    *before = *after = 0;
    if (s->readonly)
        return err_set(ERR_IO, "no write access to the store '%s'", s->dir);
    if ((rc = path_join(data, sizeof data, s->dir, "data.mdb")) ||
        (rc = path_join(tmp, sizeof tmp, s->dir, "data.mdb.gc-tmp")))
        return rc;
    if ((rc = writer_lock(s, &lock_fd))) return rc;
    if (s->open_fd < 0) {
        rc = err_set(ERR_IO, "cannot lock '%s/lock.mdb' against other "
                     "processes; the store was not compacted", s->dir);
        goto out;
    }
    if (flock(s->open_fd, LOCK_EX | LOCK_NB)) {
        rc = errno == EWOULDBLOCK
                 ? err_set(ERR_BUSY, "the store '%s' is open in another "
                           "process; compact it when nothing else uses it",
                           s->dir)
                 : err_set(ERR_IO, "cannot lock '%s/lock.mdb': %s", s->dir,
                           strerror(errno));
        goto out;
    }
    exclusive = 1;
    /* A reader that went without the flock (a read-only opener) still
     * shows in LMDB's reader table. */
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    if (stat(data, &st)) {
        rc = err_set(ERR_IO, "cannot stat '%s': %s", data, strerror(errno));
        goto out;
    }
    *before = (uint64_t)st.st_size;
    unlink(tmp); /* what a killed compaction left */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = err_set(ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if ((rc = compact_to(s, fd))) goto out;
    close(fd);
    fd = -1;
    /* rename is atomic: a kill leaves either the old file or the new one,
     * both whole; lock.mdb is rebuilt from the file by the next opener,
     * which is the first (this process held everyone else off) */
    if (rename(tmp, data)) {
        rc = err_set(ERR_IO, "cannot replace '%s': %s", data,
                     strerror(errno));
        goto out;
    }
    gc_test_sleep("renamed");
    if (fsync_path(s->dir, 1)) {
        rc = err_set(ERR_IO, "cannot sync the store directory '%s': %s",
                     s->dir, strerror(errno));
        goto out;
    }
    /* our environment still maps the old file: reopen it on the new one */
    mdb_env_close(s->env);
    s->env = NULL;
    if ((rc = env_setup(&s->env)) ||
        (rc = mdb_env_open(s->env, s->dir, 0, 0644))) {
        if (s->env) mdb_env_close(s->env);
        s->env = NULL;
        rc = lmdb_fail(s, rc, "reopening it after compaction");
        goto out;
    }
    MDB_txn *txn = NULL;
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))) {
        rc = lmdb_fail(s, rc, "reopening it after compaction");
        goto out;
    }
    for (int i = 0; i < DB_COUNT && !rc; i++)
        rc = mdb_dbi_open(txn, db_names[i], 0, &s->dbi[i]);
    if (rc) {
        mdb_txn_abort(txn);
        rc = lmdb_fail(s, rc, "reopening its databases after compaction");
        goto out;
    }
    if ((rc = mdb_txn_commit(txn))) {
        rc = lmdb_fail(s, rc, "reopening its databases after compaction");
        goto out;
    }
    if (stat(data, &st) == 0) *after = (uint64_t)st.st_size;
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    if (exclusive) flock(s->open_fd, LOCK_SH);
    writer_unlock(lock_fd);
    return rc;
}

/* ---- format, upgrade and repair -------------------------------------- */

int store_format(const store *s) { return s->format; }

/* Rewrites every record of database db with its checksum. */
static int upgrade_db(store *s, MDB_txn *txn, int db)
{
    MDB_cursor *c;
    MDB_val k, v;
    unsigned char key[MAX_KEY_BYTES];
    int rc = mdb_cursor_open(txn, s->dbi[db], &c);
    if (rc) return lmdb_fail(s, rc, "upgrading it");
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        size_t klen = k.mv_size;
        void *copy = malloc(v.mv_size ? v.mv_size : 1);
        if (!copy || klen > sizeof key) {
            free(copy);
            mdb_cursor_close(c);
            return err_set(ERR_NOMEM, "out of memory upgrading '%s'", s->dir);
        }
        memcpy(key, k.mv_data, klen);
        memcpy(copy, v.mv_data, v.mv_size);
        MDB_val kk = {klen, key};
        rc = val_put(txn, s->dbi[db], db, STORE_FORMAT, &kk, copy, v.mv_size,
                     0, NULL);
        free(copy);
        if (rc) break;
        /* back to where we were: the put may have moved the cursor */
        kk = (MDB_val){klen, key};
        if ((rc = mdb_cursor_get(c, &kk, &v, MDB_SET))) break;
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) return lmdb_fail(s, rc, "upgrading it");
    return 0;
}

int store_upgrade(store *s, int *upgraded)
{
    store_txn *t;
    *upgraded = 0;
    if (s->format != STORE_FORMAT_LEGACY) return 0;
    int rc = store_txn_begin(s, &t, 1);
    if (rc) return rc;
    for (int db = 0; db < DB_COUNT && !rc; db++)
        rc = upgrade_db(s, t->txn, db);
    if (!rc) {
        MDB_val k = {14, "format_version"};
        char two = '2';
        rc = val_put(t->txn, s->dbi[DB_META], DB_META, STORE_FORMAT, &k, &two,
                     1, 0, NULL);
        if (rc) rc = lmdb_fail(s, rc, "upgrading it");
    }
    if (rc) {
        store_txn_abort(t);
        return rc;
    }
    if ((rc = store_txn_commit(t))) return rc;
    s->format = STORE_FORMAT;
    *upgraded = 1;
    return 0;
}

int store_record_drop(store_txn *t, const char *db, const void *key,
                      size_t klen)
{
    int rc = need_write(t, "store_record_drop");
    if (rc) return rc;
    int i = store_db_index(db, strlen(db));
    if (i < 0) return err_set(ERR_INVALID, "no database '%s'", db);
    if (klen == 0 || klen > MAX_KEY_BYTES)
        return err_set(ERR_INVALID, "bad key of %zu bytes", klen);
    return db_del(t, i, key, klen);
}
