/* tokenizer_cache: the parse of a tokenizer.json kept on disk, so that
 * opening the same file again is one mapping and a few pointer fix-ups
 * instead of a JSON parse and a map build (Llama 3's 9 MB file: 0.7 s
 * parsed).
 *
 * Where: $STAMP_CACHE_DIR, else $XDG_CACHE_HOME/stamp, else
 * $HOME/.cache/stamp; STAMP_CACHE_DIR=off turns the cache off. A file's
 * name is the XXH3-128 of the tokenizer.json's bytes and the format
 * version, so an entry is never stale: a changed file is another name.
 * A directory that cannot be made or written only means parsing each
 * time.
 *
 * The file is the memory image of what hf_open builds: a header (magic,
 * version, byte order, word size, an XXH3-64 checksum of everything
 * after it, the source's hash, the counts and a table of sections),
 * then sections at 64-byte offsets holding the arrays as they lie in
 * memory (pool, id tables, the string map, the merge table, each token's
 * bytes), and, as records of fixed-width fields, the added tokens and
 * the pipeline steps with their strings and their regexes' PCRE2 source
 * (compiled again at load). Loading maps the file read-only and points
 * the arrays into the mapping (hf_tok.blob): no copy, and the pages are
 * the page cache's, shared by every process using the same tokenizer.
 * Writers never change a file in place (they rename a new one over it),
 * so a mapping never shrinks under its reader.
 *
 * The file is untrusted input: a wrong magic, version, byte order, word
 * size, checksum or source hash, or any count, offset, id or string
 * range that does not hold, makes the load fail, and hf_open then parses
 * the tokenizer.json and writes the file again. Writers go through a
 * temporary file (mkstemp) renamed into place, so readers never see half
 * a file and two writers of one entry do not mix theirs (both write the
 * same bytes; the last rename wins). No fsync: a file torn by a crash
 * fails its checksum and is written again. A writer killed before its
 * rename leaves its temporary file: the next writer of the same entry
 * removes those of it older than TC_STALE_SECONDS (far longer than a
 * write takes, so a concurrent writer's file is never one of them). */
#include "model/tokenizer_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define TC_VERSION 1
#define TC_STALE_SECONDS 600
#define TC_ALIGN 64
#define TC_BYTE_ORDER 0x01020304u

enum {
    S_POOL, S_STR_OFF, S_STR_LEN, S_KIND, S_SPECIAL, S_MAP, S_TMPL, S_ADDED, S_STEPS,
    S_STEP_STR, S_OFF, S_BYTES, S_PAIRS, N_SECT
};

typedef struct {
    char magic[8];          /* "STAMPTOK" */
    uint32_t version;       /* TC_VERSION */
    uint32_t byte_order;    /* TC_BYTE_ORDER in the writer's order */
    uint32_t word;          /* the writer's sizeof(size_t) */
    uint32_t header_size;   /* sizeof(tc_header) */
    uint64_t checksum;      /* XXH3-64 of every byte after this field */
    tok_src_hash source;    /* the tokenizer.json's XXH3-128 */
    uint64_t file_size;
    uint64_t n_vocab, n_all, map_cap, pair_cap, pool_n, bytes_n;
    uint64_t n_added, n_tmpl, n_step[3], step_str_n;
    int32_t unk_id, byte_fallback, fuse_unk, ignore_merges, has_decoder, pad;
    uint64_t sect[N_SECT][2]; /* each section's offset and size in bytes */
} tc_header;

typedef struct {
    int32_t id, lstrip, rstrip, pad;
    uint64_t off, n; /* the content in the pool */
} tc_added;

#define TC_NONE UINT64_MAX
typedef struct {
    int32_t kind, mode, flag, start, stop;
    uint32_t cp;
    uint64_t s_off, s_n, re_off, re_n; /* in the step strings; TC_NONE: none */
} tc_step;

_Static_assert(sizeof(int) == 4 && sizeof(pair_slot) == 16 && sizeof(hf_map_slot) == 12,
               "the cache's layout");

_Static_assert(offsetof(tc_header, version) == 8 && offsetof(tc_header, checksum) == 24 &&
                   offsetof(tc_header, source) == TOK_CACHE_HASH_AT,
               "the header's start, as tokenizer_cache.h gives it");

int tok_cache_loaded(const tokenizer *t) { return t && t->hf && t->hf->blob; }

int tok_cache_section(const void *blob, size_t n, const char *name, size_t *off,
                      size_t *len)
{
    static const char *names[N_SECT] = {"pool", "str_off", "str_len", "kind", "special",
                                        "map", "tmpl", "added", "steps", "step_str",
                                        "off", "bytes", "pairs"};
    tc_header hd;
    if (n < sizeof hd) return -1;
    memcpy(&hd, blob, sizeof hd);
    for (int s = 0; s < N_SECT; s++) {
        if (strcmp(name, names[s])) continue;
        *off = hd.sect[s][0];
        *len = hd.sect[s][1];
        return 0;
    }
    return -1;
}

void tok_src_hash_of(tok_src_hash *h, const char *data, size_t size)
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, size));
    memcpy(h->b, c.digest, sizeof h->b);
}

/* ---- where ---- */

/* The cache directory into buf, or -1 when the cache is off. */
static int cache_dir(char *buf, size_t size)
{
    const char *d = getenv("STAMP_CACHE_DIR");
    int n;
    if (d && *d) {
        if (!strcmp(d, "off")) return -1;
        n = snprintf(buf, size, "%s", d);
    } else if ((d = getenv("XDG_CACHE_HOME")) && d[0] == '/') {
        n = snprintf(buf, size, "%s/stamp", d); /* the spec: absolute only */
    } else if ((d = getenv("HOME")) && *d) {
        n = snprintf(buf, size, "%s/.cache/stamp", d);
    } else {
        return -1;
    }
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int tok_cache_path(char *buf, size_t size, const tok_src_hash *h)
{
    char dir[4096], hex[33];
    if (cache_dir(dir, sizeof dir)) return -1;
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", h->b[i]);
    int n = snprintf(buf, size, "%s/tokenizer-%s-v%d.bin", dir, hex, TC_VERSION);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* ---- writing ---- */

static uint64_t align_up(uint64_t x) { return (x + TC_ALIGN - 1) & ~(uint64_t)(TC_ALIGN - 1); }

static const hf_step *step_list(const hf_tok *hf, int l, size_t *n)
{
    *n = l == 0 ? hf->n_norm : l == 1 ? hf->n_pre : hf->n_dec;
    return l == 0 ? hf->norm : l == 1 ? hf->pre : hf->dec;
}

/* The step records and their strings (malloc'ed) for the cache. */
static int encode_steps(const hf_tok *hf, tc_step **recs, char **str, size_t *str_n)
{
    size_t total = hf->n_norm + hf->n_pre + hf->n_dec, sn = 0, k = 0;
    for (int l = 0; l < 3; l++) {
        size_t n;
        const hf_step *v = step_list(hf, l, &n);
        for (size_t i = 0; i < n; i++) {
            if (v[i].re && !v[i].re_src) return -1;
            sn += (v[i].s ? v[i].sn : 0) + (v[i].re ? v[i].re_n : 0);
        }
    }
    *recs = calloc(total ? total : 1, sizeof **recs);
    *str = malloc(sn ? sn : 1);
    if (!*recs || !*str) {
        free(*recs);
        free(*str);
        return -1;
    }
    size_t at = 0;
    for (int l = 0; l < 3; l++) {
        size_t n;
        const hf_step *v = step_list(hf, l, &n);
        for (size_t i = 0; i < n; i++, k++) {
            tc_step *r = &(*recs)[k];
            *r = (tc_step){v[i].kind, v[i].mode, v[i].flag, v[i].start, v[i].stop,
                           v[i].cp, TC_NONE, 0, TC_NONE, 0};
            if (v[i].s) {
                memcpy(*str + at, v[i].s, v[i].sn);
                r->s_off = at;
                r->s_n = v[i].sn;
                at += v[i].sn;
            }
            if (v[i].re) {
                memcpy(*str + at, v[i].re_src, v[i].re_n);
                r->re_off = at;
                r->re_n = v[i].re_n;
                at += v[i].re_n;
            }
        }
    }
    *str_n = sn;
    return 0;
}

int tok_cache_encode(const tokenizer *t, const tok_src_hash *h, void **blob, size_t *n)
{
    const hf_tok *hf = t->hf;
    tc_step *steps = NULL;
    char *step_str = NULL;
    size_t step_str_n = 0;
    tc_added *added = calloc(hf->n_added ? hf->n_added : 1, sizeof *added);
    *blob = NULL;
    if (!added || encode_steps(hf, &steps, &step_str, &step_str_n)) {
        free(added);
        return -1;
    }
    for (size_t k = 0; k < hf->n_added; k++)
        added[k] = (tc_added){hf->added[k].id, hf->added[k].lstrip, hf->added[k].rstrip,
                              0, (uint64_t)(hf->added[k].s - hf->pool), hf->added[k].n};
    size_t n_steps = hf->n_norm + hf->n_pre + hf->n_dec;
    const void *src[N_SECT] = {
        hf->pool, hf->str_off, hf->str_len, hf->kind, hf->special, hf->map,
        hf->tmpl, added, steps, step_str, t->off, t->bytes, t->pairs};
    uint64_t len[N_SECT] = {
        hf->pool_n, hf->n_all * sizeof(size_t), hf->n_all * sizeof(uint32_t),
        hf->n_all, hf->n_all, hf->map_cap * sizeof(hf_map_slot),
        hf->n_tmpl * sizeof(int), hf->n_added * sizeof(tc_added),
        n_steps * sizeof(tc_step), step_str_n, (t->n_vocab + 1) * sizeof(size_t),
        t->off[t->n_vocab], t->pair_cap * sizeof(pair_slot)};
    tc_header hd = {.magic = "STAMPTOK", .version = TC_VERSION,
                    .byte_order = TC_BYTE_ORDER, .word = sizeof(size_t),
                    .header_size = sizeof(tc_header), .source = *h,
                    .n_vocab = hf->n_vocab, .n_all = hf->n_all, .map_cap = hf->map_cap,
                    .pair_cap = t->pair_cap, .pool_n = hf->pool_n,
                    .bytes_n = t->off[t->n_vocab], .n_added = hf->n_added,
                    .n_tmpl = hf->n_tmpl, .n_step = {hf->n_norm, hf->n_pre, hf->n_dec},
                    .step_str_n = step_str_n, .unk_id = hf->unk_id,
                    .byte_fallback = hf->byte_fallback, .fuse_unk = hf->fuse_unk,
                    .ignore_merges = hf->ignore_merges, .has_decoder = hf->has_decoder};
    uint64_t at = align_up(sizeof hd);
    for (int s = 0; s < N_SECT; s++) {
        hd.sect[s][0] = at;
        hd.sect[s][1] = len[s];
        at = align_up(at + len[s]);
    }
    hd.file_size = at;
    char *b = calloc(1, at);
    if (b) {
        for (int s = 0; s < N_SECT; s++)
            if (len[s]) memcpy(b + hd.sect[s][0], src[s], len[s]);
        memcpy(b, &hd, sizeof hd);
        size_t from = offsetof(tc_header, source);
        hd.checksum = XXH3_64bits(b + from, at - from);
        memcpy(b, &hd, sizeof hd);
    }
    free(added);
    free(steps);
    free(step_str);
    if (!b) return -1;
    *blob = b;
    *n = at;
    return 0;
}

/* mkdir -p for the directory that holds `path`. */
static int make_parent_dirs(const char *path)
{
    char dir[4096];
    int n = snprintf(dir, sizeof dir, "%s", path);
    if (n <= 0 || (size_t)n >= sizeof dir) return -1;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(dir, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Removes the temporary files "NAME.tmp.*" of cache_path (NAME its last
 * component) last written more than TC_STALE_SECONDS ago: writers of
 * this entry killed before their rename. */
static void remove_stale_temps(const char *cache_path)
{
    char dir[4096], prefix[512];
    const char *slash = strrchr(cache_path, '/');
    if (!slash) return;
    int dn = snprintf(dir, sizeof dir, "%.*s", (int)(slash - cache_path),
                      cache_path);
    int pn = snprintf(prefix, sizeof prefix, "%s.tmp.", slash + 1);
    if (dn <= 0 || (size_t)dn >= sizeof dir || pn <= 0 || (size_t)pn >= sizeof prefix)
        return;
    DIR *d = opendir(dir);
    if (!d) return;
    time_t now = time(NULL);
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, (size_t)pn) != 0) continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && now - st.st_mtime > TC_STALE_SECONDS)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

int tok_cache_save(const tokenizer *t, const char *cache_path, const tok_src_hash *h)
{
    void *blob;
    size_t n;
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", cache_path) >= (int)sizeof tmp ||
        make_parent_dirs(cache_path) || tok_cache_encode(t, h, &blob, &n))
        return -1;
    int fd = mkstemp(tmp), rc = -1;
    if (fd >= 0) {
        const char *p = blob;
        size_t left = n;
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            p += w;
            left -= (size_t)w;
        }
        rc = left == 0 && fchmod(fd, 0644) == 0 ? 0 : -1;
        if (close(fd) != 0) rc = -1;
        if (!rc) rc = rename(tmp, cache_path) == 0 ? 0 : -1;
        if (rc) unlink(tmp);
    }
    free(blob);
    remove_stale_temps(cache_path);
    return rc;
}

/* ---- reading ---- */

int tok_cache_load(tokenizer **out, const char *cache_path, const char *path,
                   const tok_src_hash *h)
{
    *out = NULL;
    int fd = open(cache_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO never blocks */
    if (fd < 0) return -1;
    struct stat st;
    void *blob = MAP_FAILED;
    /* mapped, not read: the pages come from the page cache, no copy */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_size >= (off_t)sizeof(tc_header) && (uint64_t)st.st_size < ((uint64_t)1 << 40))
        blob = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (blob == MAP_FAILED) return -1;
    return tok_cache_decode(out, blob, (size_t)st.st_size, 0, path, h, 1);
}

/* The header and the sections' bounds: counts within the limits the
 * parser keeps, each section inside the file, aligned, of the size its
 * count says. */
static int check_header(const tc_header *hd, size_t n, const tok_src_hash *h)
{
    if (memcmp(hd->magic, "STAMPTOK", 8) || hd->version != TC_VERSION ||
        hd->byte_order != TC_BYTE_ORDER || hd->word != sizeof(size_t) ||
        hd->header_size != sizeof(tc_header) || hd->file_size != n ||
        memcmp(&hd->source, h, sizeof *h))
        return -1;
    uint64_t lim = (uint64_t)1 << 31;
    if (hd->n_vocab < 1 || hd->n_vocab > hd->n_all || hd->n_all > (uint64_t)INT_MAX / 2 ||
        hd->map_cap < 16 || hd->map_cap > lim || (hd->map_cap & (hd->map_cap - 1)) ||
        hd->pair_cap < 16 || hd->pair_cap > lim || (hd->pair_cap & (hd->pair_cap - 1)) ||
        hd->pool_n > n || hd->bytes_n > n || hd->step_str_n > n ||
        hd->n_added > lim || hd->n_tmpl < 1 || hd->n_tmpl > lim ||
        hd->n_step[0] > 4096 || hd->n_step[1] > 4096 || hd->n_step[2] > 4096)
        return -1;
    uint64_t n_steps = hd->n_step[0] + hd->n_step[1] + hd->n_step[2];
    uint64_t want[N_SECT] = {
        hd->pool_n, hd->n_all * sizeof(size_t), hd->n_all * sizeof(uint32_t),
        hd->n_all, hd->n_all, hd->map_cap * sizeof(hf_map_slot),
        hd->n_tmpl * sizeof(int), hd->n_added * sizeof(tc_added),
        n_steps * sizeof(tc_step), hd->step_str_n, (hd->n_vocab + 1) * sizeof(size_t),
        hd->bytes_n, hd->pair_cap * sizeof(pair_slot)};
    for (int s = 0; s < N_SECT; s++) {
        uint64_t off = hd->sect[s][0], len = hd->sect[s][1];
        if (len != want[s] || off % TC_ALIGN || off < sizeof *hd || off > n || len > n - off)
            return -1;
    }
    return 0;
}

/* The id tables, the string map and the merge table: every string
 * inside the pool, every id a known one, ids below n_vocab real and
 * the others virtual, a free slot in each hash table (lookups end), the
 * token bytes' offsets in order. */
static int check_tables(const tokenizer *t, const hf_tok *hf, uint64_t bytes_n)
{
    for (size_t i = 0; i < hf->n_all; i++) {
        if (hf->str_off[i] > hf->pool_n || hf->str_len[i] > hf->pool_n - hf->str_off[i] ||
            hf->special[i] > (HF_SPECIAL | HF_LSTRIP | HF_RSTRIP) ||
            (i < hf->n_vocab ? hf->kind[i] >= ID_VIRTUAL : hf->kind[i] != ID_VIRTUAL))
            return -1;
    }
    size_t free_slots = 0;
    for (size_t h = 0; h < hf->map_cap; h++) {
        const hf_map_slot *m = &hf->map[h];
        if (m->id == -1) {
            free_slots++;
        } else if (m->id < 0 || (size_t)m->id >= hf->n_all || m->off > hf->pool_n ||
                   m->len > hf->pool_n - m->off) {
            return -1;
        }
    }
    if (!free_slots) return -1;
    free_slots = 0;
    for (size_t h = 0; h < t->pair_cap; h++) {
        const pair_slot *s = &t->pairs[h];
        if (s->key == PAIR_EMPTY) {
            free_slots++;
        } else if ((s->key >> 32) >= hf->n_all || (s->key & 0xffffffffu) >= hf->n_all ||
                   s->rank < 0 || s->merged < 0 || (size_t)s->merged >= hf->n_all) {
            return -1;
        }
    }
    if (!free_slots) return -1;
    if (t->off[0] != 0 || t->off[t->n_vocab] != bytes_n) return -1;
    for (size_t id = 0; id < t->n_vocab; id++)
        if (t->off[id + 1] < t->off[id]) return -1;
    return 0;
}

/* The template (ids of real tokens, -1 for the sequence) and the added
 * tokens, copied out of the records (sorted by first byte, as
 * hf_derive's added_at needs). */
static int load_added(hf_tok *hf, const tc_header *hd, const char *blob)
{
    for (size_t k = 0; k < hf->n_tmpl; k++)
        if (hf->tmpl[k] < -1 || (hf->tmpl[k] >= 0 && (size_t)hf->tmpl[k] >= hf->n_vocab))
            return -1;
    if (hd->unk_id < -1 || (hd->unk_id >= 0 && (uint64_t)hd->unk_id >= hd->n_vocab))
        return -1;
    const tc_added *a = (const tc_added *)(blob + hd->sect[S_ADDED][0]);
    hf->added = malloc((hd->n_added ? hd->n_added : 1) * sizeof *hf->added);
    if (!hf->added) return -1;
    for (size_t k = 0; k < hd->n_added; k++) {
        if (a[k].id < 0 || (uint64_t)a[k].id >= hd->n_vocab || (a[k].lstrip & ~1) ||
            (a[k].rstrip & ~1) || a[k].n < 1 || a[k].off > hf->pool_n ||
            a[k].n > hf->pool_n - a[k].off ||
            (k > 0 && (unsigned char)hf->pool[a[k].off] <
                          (unsigned char)hf->added[k - 1].s[0]))
            return -1;
        hf->added[k] = (hf_added){a[k].id, a[k].lstrip, a[k].rstrip,
                                  hf->pool + a[k].off, (size_t)a[k].n};
        hf->n_added = k + 1;
    }
    return 0;
}

/* Which kinds of step each list holds, and what each kind needs:
 * a regex (1 yes, 2 optional), a string (1, 2 non-empty), its mode's
 * last value. */
static int step_ok(int list, const tc_step *r)
{
    static const int first[3] = {NORM_PREPEND, PRE_BYTELEVEL, DEC_BYTELEVEL};
    static const int last[3] = {NORM_NFC, PRE_METASPACE, DEC_METASPACE};
    if (r->kind < first[list] || r->kind > last[list] || (r->flag & ~1) || r->start < 0 ||
        r->stop < 0 || r->start > 1 << 20 || r->stop > 1 << 20 || r->cp > 0x10FFFF ||
        r->mode < 0)
        return 0;
    int re = 0, str = 0, mode = 0;
    switch (r->kind) {
    case NORM_PREPEND: str = 1; break;
    case NORM_REPLACE: case DEC_REPLACE: re = 1; str = 1; break;
    case PRE_BYTELEVEL: re = 2; break;
    case PRE_SPLIT: case PRE_MATCH: re = 1; mode = SPLIT_REMOVED; break;
    case PRE_METASPACE: case DEC_METASPACE: str = 2; mode = PREPEND_NEVER; break;
    default: break;
    }
    if (r->mode > mode) return 0;
    if ((r->re_off == TC_NONE) != (re == 0 || (re == 2 && r->re_off == TC_NONE))) return 0;
    if ((r->s_off == TC_NONE) != (str == 0)) return 0;
    return str != 2 || r->s_n > 0;
}

static char *dup_mem(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* The pipeline's steps from their records: strings copied, regexes
 * compiled from their source. */
static int load_steps(hf_tok *hf, const tc_header *hd, const char *blob)
{
    const tc_step *r = (const tc_step *)(blob + hd->sect[S_STEPS][0]);
    const char *str = blob + hd->sect[S_STEP_STR][0];
    uint64_t sn = hd->step_str_n;
    hf_step **lists[3] = {&hf->norm, &hf->pre, &hf->dec};
    size_t *counts[3] = {&hf->n_norm, &hf->n_pre, &hf->n_dec};
    for (int l = 0; l < 3; l++) {
        *lists[l] = calloc(hd->n_step[l] ? hd->n_step[l] : 1, sizeof **lists[l]);
        if (!*lists[l]) return -1;
        for (size_t i = 0; i < hd->n_step[l]; i++, r++) {
            if (!step_ok(l, r) ||
                (r->s_off != TC_NONE && (r->s_off > sn || r->s_n > sn - r->s_off)) ||
                (r->re_off != TC_NONE && (r->re_off > sn || r->re_n > sn - r->re_off)))
                return -1;
            hf_step *st = &(*lists[l])[i];
            *st = (hf_step){.kind = r->kind, .mode = r->mode, .flag = r->flag,
                            .cp = r->cp, .start = r->start, .stop = r->stop};
            (*counts[l])++;
            if (r->s_off != TC_NONE) {
                if (!(st->s = dup_mem(str + r->s_off, r->s_n))) return -1;
                st->sn = r->s_n;
            }
            if (r->re_off != TC_NONE) {
                int ecode;
                size_t eoff;
                if (!(st->re_src = dup_mem(str + r->re_off, r->re_n))) return -1;
                st->re_n = r->re_n;
                if (!(st->re = hf_compile_re(st->re_src, st->re_n, &ecode, &eoff))) return -1;
            }
        }
    }
    return 0;
}

static void release(void *blob, size_t n, int malloced)
{
    if (malloced) free(blob);
    else munmap(blob, n);
}

int tok_cache_decode(tokenizer **out, void *blob, size_t n, int malloced,
                     const char *path, const tok_src_hash *h, int check_sum)
{
    *out = NULL;
    char *b = blob;
    tc_header hd;
    size_t from = offsetof(tc_header, source);
    if (n < sizeof hd || ((uintptr_t)blob & 7)) {
        release(blob, n, malloced);
        return -1;
    }
    memcpy(&hd, b, sizeof hd);
    if (check_header(&hd, n, h) ||
        (check_sum && hd.checksum != XXH3_64bits(b + from, n - from))) {
        release(blob, n, malloced);
        return -1;
    }
    tokenizer *t = calloc(1, sizeof *t);
    hf_tok *hf = calloc(1, sizeof *hf);
    if (!t || !hf) {
        free(t);
        free(hf);
        release(blob, n, malloced);
        return -1;
    }
    t->hf = hf;
    hf->blob = blob; /* tokenizer_close releases it from here on */
    hf->blob_n = n;
    hf->blob_malloced = malloced;
    hf->path = strdup(path);
#define AT(s) ((void *)(b + hd.sect[s][0]))
    hf->n_vocab = t->n_vocab = hd.n_vocab;
    hf->n_all = hd.n_all;
    hf->pool = AT(S_POOL);
    hf->pool_n = hd.pool_n;
    hf->str_off = AT(S_STR_OFF);
    hf->str_len = AT(S_STR_LEN);
    hf->kind = AT(S_KIND);
    hf->special = AT(S_SPECIAL);
    hf->map = AT(S_MAP);
    hf->map_cap = hd.map_cap;
    hf->tmpl = AT(S_TMPL);
    hf->n_tmpl = hd.n_tmpl;
    t->off = AT(S_OFF);
    t->bytes = AT(S_BYTES);
    t->pairs = AT(S_PAIRS);
    t->pair_cap = hd.pair_cap;
#undef AT
    hf->unk_id = hd.unk_id;
    hf->byte_fallback = hd.byte_fallback != 0;
    hf->fuse_unk = hd.fuse_unk != 0;
    hf->ignore_merges = hd.ignore_merges != 0;
    hf->has_decoder = hd.has_decoder != 0;
    if (!hf->path || check_tables(t, hf, hd.bytes_n) || load_added(hf, &hd, b) ||
        load_steps(hf, &hd, b)) {
        tokenizer_close(t);
        return -1;
    }
    hf_derive(hf);
    *out = t;
    return 0;
}
