/* store_check: our own reader of LMDB's on-disk format (see
 * store_check.h). It reads data.mdb with pread into buffers of its own,
 * field by field, and trusts nothing it reads: every page number, offset
 * and size is checked before it is used, so a damaged file yields
 * problems, never a wild read.
 *
 * LMDB's layout (liblmdb 0.9 mdb.c, 64-bit little-endian build):
 *   page header (16 bytes): u64 pgno, u16 pad, u16 flags, then u16 lower,
 *     u16 upper (branch and leaf pages) or u32 page count (overflow);
 *     branch and leaf pages go on with u16 node offsets (lower - 16 bytes
 *     of them), nodes sit between upper and the page's end.
 *   node (8 bytes + key + data): u16 lo, u16 hi, u16 flags, u16 ksize;
 *     a branch node's child page is lo | hi << 16 | flags << 32; a leaf
 *     node's data size is lo | hi << 16, its data inline, or (F_BIGDATA)
 *     a u64 overflow page number; F_SUBDATA marks a named database's
 *     record (an MDB_db) in the main database; F_DUPDATA duplicates.
 *   MDB_db (48 bytes): u32 pad, u16 flags, u16 depth, u64 branch, leaf
 *     and overflow pages, u64 entries, u64 root (~0: empty).
 *   meta page: header, then u32 magic, u32 version, u64 address, u64
 *     mapsize, MDB_db free, MDB_db main, u64 last page, u64 txnid; the
 *     page size is the free database's pad.
 *   free database: key u64 txnid, value u64 count + count page numbers. */
#include "store/store_check.h"
#include "store/store_format.h"
#include "base/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGEHDRSZ 16
#define P_BRANCH 0x01
#define P_LEAF 0x02
#define P_OVERFLOW 0x04
#define P_META 0x08
#define F_BIGDATA 0x01
#define F_SUBDATA 0x02
#define F_DUPDATA 0x04
#define NODESIZE 8
#define DBSIZE 48
#define META_MAGIC 0xBEEFC0DEu
#define META_VERSION 1
#define META_SIZE (PAGEHDRSZ + 152)
#define INTEGERKEY 0x08
#define NO_PAGE (~(uint64_t)0)
#define MAX_DEPTH 32   /* LMDB's cursor stack */
#define MAX_KEY 511

enum { SEEN_NONE = 0, SEEN_USED = 1, SEEN_FREE = 2 };
enum { T_FREE = -2, T_MAIN = -1, T_OTHER = -3 };

typedef struct {
    uint32_t pad;
    uint16_t flags, depth;
    uint64_t branch, leaf, overflow, entries, root;
} db_rec;

typedef struct {
    const unsigned char *p;
    size_t n;
} bytes;

/* One tree being walked. */
typedef struct {
    const char *label;     /* "the free list", "database 'facts'", ... */
    int db;                /* store_format index, or T_* */
    db_rec rec;
    uint64_t branch, leaf, overflow, entries;
    unsigned char prev[MAX_KEY + 1];
    size_t prev_len;
    int have_prev, bad;
} tree;

typedef struct {
    int fd;
    uint64_t psize, npages, file_pages;
    unsigned char *seen;
    unsigned char *lvl[MAX_DEPTH];
    int sums;
    store_check_report *r;
    db_rec named[DB_COUNT];
    int have_named[DB_COUNT];
    db_rec other[16];
    char other_name[16][64];
    size_t n_other;
} walker;

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}
static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static db_rec db_read(const unsigned char *p)
{
    db_rec d = {rd32(p), rd16(p + 4), rd16(p + 6), rd64(p + 8),
                rd64(p + 16), rd64(p + 24), rd64(p + 32), rd64(p + 40)};
    return d;
}

/* Appends a problem; `db`/`key` name a damaged record, or NULL. */
static void problem(store_check_report *r, int fatal, int db,
                    const void *key, size_t klen, const char *fmt, ...)
{
    if (r->n_problems == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        store_problem *p = realloc(r->problems, cap * sizeof *p);
        if (!p) return; /* out of memory: the count still says enough */
        r->problems = p;
        r->cap = cap;
    }
    store_problem *p = &r->problems[r->n_problems];
    memset(p, 0, sizeof *p);
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!(p->text = strdup(buf))) return;
    p->fatal = fatal;
    if (db >= 0 && key) {
        p->db = store_db_names[db];
        if ((p->key = malloc(klen ? klen : 1))) {
            memcpy(p->key, key, klen);
            p->klen = klen;
        }
    }
    r->n_problems++;
    if (fatal) r->fatal = 1;
}

void store_check_report_free(store_check_report *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_problems; i++) {
        free(r->problems[i].text);
        free(r->problems[i].key);
    }
    free(r->problems);
    memset(r, 0, sizeof *r);
}

static int read_at(walker *w, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(w->fd, (char *)buf + done, n - done,
                          (off_t)(off + done));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        done += (size_t)k;
    }
    return 0;
}

/* Claims pages [pgno, pgno + n) for tree t (fatal problems when they
 * cannot be in use). */
static int claim(walker *w, tree *t, uint64_t pgno, uint64_t n,
                 const char *what)
{
    if (pgno < 2 || n == 0 || pgno >= w->npages || n > w->npages - pgno) {
        problem(w->r, 1, -1, NULL, 0, "%s: %s page %llu (%llu pages) is "
                "outside the file's %llu pages", t->label, what,
                (unsigned long long)pgno, (unsigned long long)n,
                (unsigned long long)w->npages);
        return -1;
    }
    if (pgno + n > w->file_pages) {
        problem(w->r, 1, -1, NULL, 0, "%s: %s page %llu lies beyond the end "
                "of data.mdb (%llu bytes): the file is truncated", t->label,
                what, (unsigned long long)(pgno + n - 1),
                (unsigned long long)w->r->file_bytes);
        return -1;
    }
    for (uint64_t i = pgno; i < pgno + n; i++) {
        if (w->seen[i] != SEEN_NONE) {
            problem(w->r, 1, -1, NULL, 0, "%s: %s page %llu is %s", t->label,
                    what, (unsigned long long)i, w->seen[i] == SEEN_FREE
                    ? "also listed as free" : "reached twice");
            return -1;
        }
    }
    memset(w->seen + pgno, SEEN_USED, n);
    return 0;
}

static int key_cmp(const tree *t, bytes a, bytes b)
{
    if (t->db == T_FREE && a.n == 8 && b.n == 8) {
        uint64_t x = rd64(a.p), y = rd64(b.p);
        return x < y ? -1 : x > y;
    }
    int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    return c ? c : (a.n < b.n ? -1 : a.n > b.n);
}

static void describe(char *buf, size_t size, const tree *t, bytes key)
{
    if (t->db >= 0) store_key_describe(buf, size, t->db, key.p, key.n);
    else snprintf(buf, size, "a record");
}

/* The meta database is walked before the format is known: its records'
 * checksum verdicts wait here until its "format_version" is read. */
typedef struct {
    unsigned char key[MAX_KEY];
    size_t klen;
    int intact;
} pending_sum;

typedef struct {
    pending_sum *v;
    size_t n, cap;
    int format;        /* from format_version: 1, 2, or 0 (not found) */
} meta_sums;

static meta_sums g_none;

/* Checks one value of a named database (v: payload + trailer). */
static void value_sum(walker *w, tree *t, bytes key, bytes v, meta_sums *ms)
{
    int intact = store_value_intact(t->db, key.p, key.n, v.p, v.n);
    if (t->db == DB_META) {
        if (key.n == 14 && !memcmp(key.p, "format_version", 14)) {
            if (v.n == 1 && v.p[0] == '1') ms->format = STORE_FORMAT_LEGACY;
            else ms->format = STORE_FORMAT;
        }
        if (ms->n == ms->cap) {
            size_t cap = ms->cap ? 2 * ms->cap : 16;
            pending_sum *p = realloc(ms->v, cap * sizeof *p);
            if (!p) return;
            ms->v = p;
            ms->cap = cap;
        }
        pending_sum *p = &ms->v[ms->n++];
        memcpy(p->key, key.p, key.n);
        p->klen = key.n;
        p->intact = intact;
        return;
    }
    if (!w->sums || w->r->format == STORE_FORMAT_LEGACY) return;
    w->r->sums_checked++;
    if (!intact) {
        char what[600];
        describe(what, sizeof what, t, key);
        problem(w->r, 0, t->db, key.p, key.n, "%s (database '%s') fails its "
                "checksum", what, store_db_names[t->db]);
    }
}

/* A free-list record: its pages are free. */
static void free_record(walker *w, tree *t, bytes v)
{
    uint64_t n = v.n >= 8 ? rd64(v.p) : 0;
    if (v.n < 8 || v.n % 8 || n != v.n / 8 - 1) {
        problem(w->r, 1, -1, NULL, 0, "the free list: a record of %zu bytes "
                "does not hold the page count it starts with", v.n);
        t->bad = 1;
        return;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t pg = rd64(v.p + 8 + 8 * i);
        if (pg < 2 || pg >= w->npages) {
            problem(w->r, 1, -1, NULL, 0, "the free list names page %llu, "
                    "outside the file's %llu pages", (unsigned long long)pg,
                    (unsigned long long)w->npages);
            return;
        }
        if (w->seen[pg] != SEEN_NONE) {
            problem(w->r, 1, -1, NULL, 0, "the free list names page %llu, "
                    "which is %s", (unsigned long long)pg,
                    w->seen[pg] == SEEN_FREE ? "listed free twice"
                                             : "in use");
            return;
        }
        w->seen[pg] = SEEN_FREE;
        w->r->free_pages++;
    }
}

/* A named database's record in the main database. */
static void main_record(walker *w, tree *t, bytes key, uint16_t flags,
                        bytes v)
{
    char name[64];
    size_t n = key.n < sizeof name - 1 ? key.n : sizeof name - 1;
    for (size_t i = 0; i < n; i++)
        name[i] = key.p[i] >= 0x20 && key.p[i] < 0x7f ? (char)key.p[i] : '?';
    name[n] = '\0';
    if (flags != F_SUBDATA || v.n != DBSIZE) {
        problem(w->r, 1, -1, NULL, 0, "the main database: the record of "
                "'%s' is not a database (flags 0x%x, %zu bytes)", name,
                flags, v.n);
        t->bad = 1;
        return;
    }
    int i = store_db_index((const char *)key.p, key.n);
    if (i >= 0) {
        w->named[i] = db_read(v.p);
        w->have_named[i] = 1;
    } else if (w->n_other < 16) {
        problem(w->r, 0, -1, NULL, 0, "the main database names a database "
                "'%s' stamp does not use", name);
        w->other[w->n_other] = db_read(v.p);
        snprintf(w->other_name[w->n_other++], 64, "%s", name);
    }
}

/* One leaf node at offset `off` of page pg: its value checked as its
 * tree needs. Returns -1 when the node is malformed. */
static int leaf_node(walker *w, tree *t, uint64_t pgno,
                     const unsigned char *pg, size_t off, bytes key,
                     meta_sums *ms)
{
    uint16_t flags = rd16(pg + off + 4);
    uint64_t dsize = rd16(pg + off) | (uint64_t)rd16(pg + off + 2) << 16;
    size_t data_off = off + NODESIZE + key.n;
    unsigned char *heap = NULL;
    bytes v = {NULL, 0};
    if (flags & ~(F_BIGDATA | F_SUBDATA | F_DUPDATA) ||
        (flags & F_DUPDATA) || ((flags & F_SUBDATA) && t->db != T_MAIN)) {
        problem(w->r, 1, -1, NULL, 0, "%s: page %llu has a node with flags "
                "0x%x (stamp stores no duplicates or nested databases)",
                t->label, (unsigned long long)pgno, flags);
        return -1;
    }
    int need = t->db == T_FREE || t->db == T_MAIN || t->db == DB_META ||
               (w->sums && t->db >= 0);
    if (flags & F_BIGDATA) {
        if (data_off + 8 > w->psize) {
            problem(w->r, 1, -1, NULL, 0, "%s: page %llu has a node past its "
                    "end", t->label, (unsigned long long)pgno);
            return -1;
        }
        uint64_t ov = rd64(pg + data_off);
        uint64_t n = (PAGEHDRSZ - 1 + dsize) / w->psize + 1;
        if (claim(w, t, ov, n, "an overflow")) return -1;
        unsigned char hdr[PAGEHDRSZ];
        if (read_at(w, hdr, sizeof hdr, ov * w->psize) ||
            rd64(hdr) != ov || rd16(hdr + 10) != P_OVERFLOW ||
            rd32(hdr + 12) != n) {
            problem(w->r, 1, -1, NULL, 0, "%s: overflow page %llu (of page "
                    "%llu) has a bad header: number %llu, flags 0x%x, %u "
                    "pages where %llu are needed", t->label,
                    (unsigned long long)ov, (unsigned long long)pgno,
                    (unsigned long long)rd64(hdr), rd16(hdr + 10),
                    rd32(hdr + 12), (unsigned long long)n);
            return -1;
        }
        t->overflow += n;
        if (need) {
            if (!(heap = malloc(dsize ? dsize : 1)) ||
                read_at(w, heap, dsize, ov * w->psize + PAGEHDRSZ)) {
                free(heap);
                problem(w->r, 1, -1, NULL, 0, "%s: cannot read overflow "
                        "page %llu", t->label, (unsigned long long)ov);
                return -1;
            }
            v.p = heap;
            v.n = dsize;
        }
    } else {
        if (data_off + dsize > w->psize) {
            problem(w->r, 1, -1, NULL, 0, "%s: page %llu has a node of %llu "
                    "bytes past its end", t->label, (unsigned long long)pgno,
                    (unsigned long long)dsize);
            return -1;
        }
        v.p = pg + data_off;
        v.n = dsize;
    }
    if (t->db == T_FREE) free_record(w, t, v);
    else if (t->db == T_MAIN) main_record(w, t, key, flags, v);
    else if (t->db >= 0 && need) value_sum(w, t, key, v, ms);
    free(heap);
    return 0;
}

/* Checks a key against its bounds [lo, hi) and the tree's previous leaf
 * key. */
static int key_in_order(walker *w, tree *t, uint64_t pgno, bytes key,
                        const bytes *lo, const bytes *hi, int leaf)
{
    if ((lo && key_cmp(t, key, *lo) < 0) || (hi && key_cmp(t, key, *hi) >= 0)
        || (leaf && t->have_prev &&
            key_cmp(t, key, (bytes){t->prev, t->prev_len}) <= 0)) {
        char what[600];
        describe(what, sizeof what, t, key);
        problem(w->r, 1, -1, NULL, 0, "%s: page %llu has a key out of order "
                "(%s)", t->label, (unsigned long long)pgno, what);
        return -1;
    }
    if (leaf) {
        memcpy(t->prev, key.p, key.n);
        t->prev_len = key.n;
        t->have_prev = 1;
    }
    return 0;
}

/* Walks the subtree at page pgno, `level` below the root, whose keys lie
 * in [lo, hi) (NULL: unbounded). */
static void walk_page(walker *w, tree *t, uint64_t pgno, int level,
                      const bytes *lo, const bytes *hi, meta_sums *ms)
{
    if (t->bad) return;
    if (level >= MAX_DEPTH || level >= t->rec.depth) {
        problem(w->r, 1, -1, NULL, 0, "%s: page %llu lies deeper than the "
                "recorded depth %u", t->label, (unsigned long long)pgno,
                t->rec.depth);
        t->bad = 1;
        return;
    }
    if (claim(w, t, pgno, 1, level ? "a" : "the root")) {
        t->bad = 1;
        return;
    }
    unsigned char *pg = w->lvl[level];
    int leaf = level + 1 == t->rec.depth;
    uint16_t flags, lower, upper;
    if (read_at(w, pg, w->psize, pgno * w->psize)) {
        problem(w->r, 1, -1, NULL, 0, "%s: cannot read page %llu", t->label,
                (unsigned long long)pgno);
        t->bad = 1;
        return;
    }
    flags = rd16(pg + 10);
    lower = rd16(pg + 12);
    upper = rd16(pg + 14);
    if (rd64(pg) != pgno || flags != (leaf ? P_LEAF : P_BRANCH) ||
        lower < PAGEHDRSZ + 2 || (lower - PAGEHDRSZ) % 2 || lower > upper ||
        upper > w->psize) {
        problem(w->r, 1, -1, NULL, 0, "%s: page %llu has a bad header "
                "(number %llu, flags 0x%x where 0x%x belongs at depth %d, "
                "bounds %u-%u)", t->label, (unsigned long long)pgno,
                (unsigned long long)rd64(pg), flags, leaf ? P_LEAF : P_BRANCH,
                level + 1, lower, upper);
        t->bad = 1;
        return;
    }
    size_t nkeys = (size_t)(lower - PAGEHDRSZ) / 2;
    if (leaf) t->leaf++;
    else t->branch++;
    for (size_t i = 0; i < nkeys && !t->bad; i++) {
        size_t off = rd16(pg + PAGEHDRSZ + 2 * i);
        size_t ksize = off + NODESIZE <= w->psize ? rd16(pg + off + 6) : 0;
        if (off < upper || off % 2 || off + NODESIZE > w->psize ||
            ksize > MAX_KEY || off + NODESIZE + ksize > w->psize) {
            problem(w->r, 1, -1, NULL, 0, "%s: page %llu has a node at a bad "
                    "offset (%zu, key of %zu bytes)", t->label,
                    (unsigned long long)pgno, off, ksize);
            t->bad = 1;
            return;
        }
        bytes key = {pg + off + NODESIZE, ksize};
        if (leaf) {
            if (key_in_order(w, t, pgno, key, lo, hi, 1) ||
                leaf_node(w, t, pgno, pg, off, key, ms)) {
                t->bad = 1;
                return;
            }
            t->entries++;
            continue;
        }
        /* branch: node i's child holds the keys from key i (the first
         * node's key is unused: the parent's bound) to key i + 1 */
        uint64_t child = rd16(pg + off) | (uint64_t)rd16(pg + off + 2) << 16
                         | (uint64_t)rd16(pg + off + 4) << 32;
        const bytes *clo = lo, *chi = hi;
        bytes next;
        if (i > 0) {
            if (key_in_order(w, t, pgno, key, lo, hi, 0)) {
                t->bad = 1;
                return;
            }
            clo = &key;
        }
        if (i + 1 < nkeys) {
            size_t o2 = rd16(pg + PAGEHDRSZ + 2 * (i + 1));
            size_t k2 = o2 + NODESIZE <= w->psize ? rd16(pg + o2 + 6) : 0;
            if (o2 < upper || o2 + NODESIZE + k2 > w->psize || k2 > MAX_KEY) {
                problem(w->r, 1, -1, NULL, 0, "%s: page %llu has a node at a "
                        "bad offset (%zu)", t->label,
                        (unsigned long long)pgno, o2);
                t->bad = 1;
                return;
            }
            next = (bytes){pg + o2 + NODESIZE, k2};
            if (i > 0 && key_cmp(t, next, key) <= 0) {
                problem(w->r, 1, -1, NULL, 0, "%s: branch page %llu has keys "
                        "out of order", t->label, (unsigned long long)pgno);
                t->bad = 1;
                return;
            }
            chi = &next;
        }
        walk_page(w, t, child, level + 1, clo, chi, ms);
    }
}

/* Walks one tree and compares what it found with its record. */
static void walk_tree(walker *w, const char *label, int db, db_rec rec,
                      meta_sums *ms)
{
    tree *t = calloc(1, sizeof *t);
    if (!t) {
        problem(w->r, 1, -1, NULL, 0, "out of memory checking %s", label);
        return;
    }
    t->label = label;
    t->db = db;
    t->rec = rec;
    if (rec.root == NO_PAGE) {
        if (rec.depth || rec.entries || rec.branch || rec.leaf ||
            rec.overflow)
            problem(w->r, 1, -1, NULL, 0, "%s is empty but records %llu "
                    "entries and depth %u", label,
                    (unsigned long long)rec.entries, rec.depth);
        free(t);
        return;
    }
    if (rec.depth == 0) {
        problem(w->r, 1, -1, NULL, 0, "%s records depth 0 with a root page",
                label);
        free(t);
        return;
    }
    walk_page(w, t, rec.root, 0, NULL, NULL, ms);
    if (!t->bad && (t->entries != rec.entries || t->branch != rec.branch ||
                    t->leaf != rec.leaf || t->overflow != rec.overflow))
        problem(w->r, 1, -1, NULL, 0, "%s holds %llu entries on %llu branch, "
                "%llu leaf and %llu overflow pages; its record says %llu, "
                "%llu, %llu and %llu", label, (unsigned long long)t->entries,
                (unsigned long long)t->branch, (unsigned long long)t->leaf,
                (unsigned long long)t->overflow,
                (unsigned long long)rec.entries,
                (unsigned long long)rec.branch, (unsigned long long)rec.leaf,
                (unsigned long long)rec.overflow);
    if (db >= 0) w->r->records += t->entries;
    w->r->branch_pages += t->branch;
    w->r->leaf_pages += t->leaf;
    w->r->overflow_pages += t->overflow;
    free(t);
}

typedef struct {
    int ok;
    uint64_t psize, last_pg, txnid;
    db_rec free_db, main_db;
} meta_page;

/* Reads and checks meta page i (at offset off). */
static meta_page read_meta(walker *w, int i, uint64_t off)
{
    unsigned char b[META_SIZE];
    meta_page m = {0};
    if (read_at(w, b, sizeof b, off)) {
        problem(w->r, 1, -1, NULL, 0, "meta page %d cannot be read: "
                "data.mdb is truncated (%llu bytes)", i,
                (unsigned long long)w->r->file_bytes);
        return m;
    }
    const unsigned char *mm = b + PAGEHDRSZ;
    m.free_db = db_read(mm + 24);
    m.main_db = db_read(mm + 24 + DBSIZE);
    m.psize = m.free_db.pad;
    m.last_pg = rd64(mm + 24 + 2 * DBSIZE);
    m.txnid = rd64(mm + 32 + 2 * DBSIZE);
    if (rd64(b) != (uint64_t)i || rd16(b + 10) != P_META ||
        rd32(mm) != META_MAGIC || rd32(mm + 4) != META_VERSION) {
        problem(w->r, 1, -1, NULL, 0, "meta page %d is damaged (number %llu, "
                "flags 0x%x, magic 0x%x, version %u)", i,
                (unsigned long long)rd64(b), rd16(b + 10), rd32(mm),
                rd32(mm + 4));
        return m;
    }
    if (m.psize < 512 || m.psize > 65536 || (m.psize & (m.psize - 1)) ||
        m.last_pg < 1) {
        problem(w->r, 1, -1, NULL, 0, "meta page %d is damaged (page size "
                "%llu, last page %llu)", i, (unsigned long long)m.psize,
                (unsigned long long)m.last_pg);
        return m;
    }
    m.ok = 1;
    return m;
}

/* Reads both meta pages and picks the snapshot (txnid 0: the newest, as
 * LMDB does). Returns 1 when a snapshot was picked, 0 when the metas are
 * damaged (problems said), -1 when no meta holds `txnid`. */
static int pick_meta(walker *w, uint64_t txnid, meta_page *out)
{
    store_check_report *r = w->r;
    meta_page m0 = read_meta(w, 0, 0);
    uint64_t psize = m0.ok ? m0.psize : 4096;
    if (r->file_bytes < 2 * psize) {
        problem(r, 1, -1, NULL, 0, "data.mdb is truncated to %llu bytes: too "
                "short for its two meta pages", (unsigned long long)r->file_bytes);
        return 0;
    }
    meta_page m1 = read_meta(w, 1, psize);
    if (!m0.ok || !m1.ok) return 0;
    if (m1.psize != m0.psize) {
        problem(r, 1, -1, NULL, 0, "the meta pages disagree on the page size "
                "(%llu and %llu)", (unsigned long long)m0.psize,
                (unsigned long long)m1.psize);
        return 0;
    }
    /* transaction N writes meta page N % 2: the two hold consecutive
     * transactions, or LMDB would pick a stale snapshot */
    uint64_t hi = m0.txnid > m1.txnid ? m0.txnid : m1.txnid;
    uint64_t lo = m0.txnid > m1.txnid ? m1.txnid : m0.txnid;
    if (hi - lo != 1 || (m1.txnid > m0.txnid) != (int)(hi % 2)) {
        problem(r, 1, -1, NULL, 0, "the meta pages hold transactions %llu "
                "and %llu, not two consecutive ones: one of them is damaged",
                (unsigned long long)m0.txnid, (unsigned long long)m1.txnid);
        return 0;
    }
    if (txnid) {
        if (m0.txnid == txnid) *out = m0;
        else if (m1.txnid == txnid) *out = m1;
        else return -1;
    } else {
        *out = m1.txnid > m0.txnid ? m1 : m0;
    }
    if (out->free_db.flags != INTEGERKEY || out->main_db.flags ||
        out->main_db.pad) {
        problem(r, 1, -1, NULL, 0, "the meta page of transaction %llu is "
                "damaged (database flags 0x%x and 0x%x)",
                (unsigned long long)out->txnid, out->free_db.flags,
                out->main_db.flags);
        return 0;
    }
    return 1;
}

/* The named databases, meta first (its format_version says whether the
 * others carry checksums). */
static void walk_named(walker *w, meta_sums *ms)
{
    char label[128];
    for (int i = 0; i < DB_COUNT; i++) {
        if (!w->have_named[i]) {
            problem(w->r, 1, -1, NULL, 0, "the store has no database '%s'",
                    store_db_names[i]);
            continue;
        }
        if (w->named[i].flags) {
            problem(w->r, 1, -1, NULL, 0, "database '%s' has flags 0x%x; "
                    "stamp opens its databases with none", store_db_names[i],
                    w->named[i].flags);
            continue;
        }
        snprintf(label, sizeof label, "database '%s'", store_db_names[i]);
        walk_tree(w, label, i, w->named[i], ms);
        if (i != DB_META) continue;
        w->r->format = ms->format ? ms->format : STORE_FORMAT;
        if (!w->sums || w->r->format == STORE_FORMAT_LEGACY) continue;
        for (size_t j = 0; j < ms->n; j++) {
            w->r->sums_checked++;
            if (ms->v[j].intact) continue;
            char what[600];
            store_key_describe(what, sizeof what, DB_META, ms->v[j].key,
                               ms->v[j].klen);
            problem(w->r, 0, DB_META, ms->v[j].key, ms->v[j].klen, "%s "
                    "(database 'meta') fails its checksum", what);
        }
    }
    for (size_t i = 0; i < w->n_other; i++) {
        snprintf(label, sizeof label, "database '%s'", w->other_name[i]);
        walk_tree(w, label, T_OTHER, w->other[i], &g_none);
    }
}

int store_check_file(const char *dir, uint64_t txnid, int sums,
                     store_check_report *r)
{
    char path[4096];
    struct stat st;
    walker w = {.fd = -1, .sums = sums, .r = r};
    meta_sums ms = {0};
    int rc = 0;
    memset(r, 0, sizeof *r);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    w.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (w.fd < 0 || fstat(w.fd, &st))
        return err_set(ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    r->file_bytes = (uint64_t)st.st_size;
    meta_page m;
    int picked = pick_meta(&w, txnid, &m);
    if (picked < 0) {
        rc = ERR_NOTFOUND;
        goto out;
    }
    if (!picked) goto out;
    w.psize = r->page_size = m.psize;
    w.npages = m.last_pg + 1;
    r->last_pgno = m.last_pg;
    r->txnid = m.txnid;
    w.file_pages = r->file_bytes / w.psize;
    if (!(w.seen = calloc(w.npages, 1))) goto nomem;
    for (int i = 0; i < MAX_DEPTH; i++)
        if (!(w.lvl[i] = malloc(w.psize))) goto nomem;
    w.seen[0] = w.seen[1] = SEEN_USED;
    walk_tree(&w, "the free list", T_FREE, m.free_db, &g_none);
    walk_tree(&w, "the main database", T_MAIN, m.main_db, &g_none);
    if (!r->fatal) walk_named(&w, &ms);
    if (!r->fatal) {
        for (uint64_t i = 2; i < w.npages; i++)
            r->lost_pages += w.seen[i] == SEEN_NONE;
        if (r->lost_pages)
            problem(r, 0, -1, NULL, 0, "%llu pages are neither in use nor "
                    "free (LMDB will not reuse them)",
                    (unsigned long long)r->lost_pages);
    }
    goto out;
nomem:
    rc = err_set(ERR_NOMEM, "out of memory checking '%s'", path);
out:
    free(ms.v);
    free(w.seen);
    for (int i = 0; i < MAX_DEPTH; i++) free(w.lvl[i]);
    close(w.fd);
    return rc;
}
