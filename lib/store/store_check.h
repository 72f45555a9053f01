/* store_check: reads a store's data.mdb itself, with pread, never through
 * LMDB's memory map, and checks LMDB's structure and stamp's checksums
 * page by page. store_open runs the structural part before LMDB reads
 * any page, so that a truncated or damaged file is an error naming the
 * damage and never a signal (a map read past the end of a truncated
 * file is SIGBUS); `stamp fsck` runs all of it.
 *
 * What is checked (LMDB's format: liblmdb 0.9's mdb.c, 64-bit): both
 * meta pages (page type, number, magic, version, page size), the file's
 * size against the newest meta page's last page; then every tree of that
 * snapshot (the free list, the main database and each named database):
 * every page's number, type and depth, its lower and upper bounds, each
 * node within the page, keys in order within and across pages and
 * within their branch keys' bounds, overflow pages (number, type, page
 * count, within the file), the recorded entry, page and depth counts;
 * that no page is reached twice or is both free and in use; pages
 * neither in use nor free. With checksums on, every value of every named
 * database against its checksum (store_format.h). docs/store.md. */
#ifndef STAMP_STORE_CHECK_H
#define STAMP_STORE_CHECK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *text;          /* the problem, naming what is damaged */
    int fatal;           /* in LMDB's structure: LMDB must not read it */
    const char *db;      /* the named database of a damaged record (static
                            string), or NULL */
    unsigned char *key;  /* that record's key (malloc'ed), or NULL */
    size_t klen;
} store_problem;

typedef struct {
    store_problem *problems;
    size_t n_problems, cap;
    int fatal;               /* some problem is fatal */
    int format;              /* the store's format (1: no checksums) */
    uint64_t page_size, file_bytes, last_pgno, txnid;
    uint64_t branch_pages, leaf_pages, overflow_pages, free_pages;
    uint64_t lost_pages;     /* neither in use nor free */
    uint64_t records;        /* in the named databases */
    uint64_t sums_checked;   /* values whose checksum was checked */
} store_check_report;

/* Checks DIR/data.mdb into *r (which the caller frees with
 * store_check_report_free, also after an error). txnid 0: the snapshot
 * of the newest meta page, as LMDB would open it; else the snapshot of
 * that transaction (ERR_NOTFOUND when no meta page holds it any more: a
 * writer moved on). sums: also read every value and check its checksum.
 * Returns 0 when the walk ran, whatever it found (see r->problems), or
 * ERR_IO / ERR_NOMEM when it could not run. */
int store_check_file(const char *dir, uint64_t txnid, int sums,
                     store_check_report *r);
void store_check_report_free(store_check_report *r);

#endif
