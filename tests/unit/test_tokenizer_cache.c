/* test_tokenizer_cache: the cache of parsed tokenizer.json files
 * (lib/model/tokenizer_cache.c) against its twin, the parse.
 *
 * For the real files of Llama 2, Llama 3 and Qwen3 (in $STAMP_NPM or
 * $BUILD/npm, as test_tokenizer_json finds them): the first open parses
 * and writes the cache, the second loads it; both must give the same ids
 * (with and without special tokens, each decoded with and without) on every
 * text of tests/data/hf_tokenizer_vectors.json, the same bytes for every
 * token, and the file must be what the parse encodes to. A truncated,
 * bit-flipped or wrong-version file falls back to the parse (same
 * results) and is replaced; a file with a correct checksum but a bad id
 * or offset is refused by the checks; a cache directory that cannot be
 * made is no error; STAMP_CACHE_DIR, XDG_CACHE_HOME and HOME choose the
 * directory.
 *
 * The cache is the build's ($STAMP_CACHE_DIR from tests/run.sh, else
 * $BUILD/cache): each file's entry is removed first, so the first open
 * parses, and what is left is the entry test_tokenizer_json and the
 * command tests then load instead of parsing again. */
#include "model/tokenizer.h"
#include "model/tokenizer_cache.h"
#include "../harness.h"
#include "../hf_tokenizers.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VECTORS "tests/data/hf_tokenizer_vectors.json"

static const char *names[3] = {"llama2", "llama3", "qwen3"};
static char model_dir[3][1200];
static char json_path[3][1300 + 16];
static tokenizer *parsed[3], *cached[3];
static json_t *vectors;
static char tmpdir[] = "/tmp/test_tokenizer_cache.XXXXXX";
static char cache_dir[1200];

/* The bytes of a whole file (malloc'ed), or NULL. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)size + 1)) &&
        fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        data = NULL;
    }
    if (f) fclose(f);
    if (data) *n = (size_t)size;
    return data;
}

static int spill(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* The cache file of the tokenizer.json at json into buf. */
static int cache_file_of(const char *json, char *buf, size_t size)
{
    size_t n;
    char *data = slurp(json, &n);
    if (!data) return -1;
    tok_src_hash h;
    tok_src_hash_of(&h, data, n);
    free(data);
    return tok_cache_path(buf, size, &h);
}

/* The number of texts (the first `most`) on which a and b differ in
 * their ids (with and without special tokens) or their decodes (each
 * with and without special tokens). */
static size_t differences(tokenizer *a, tokenizer *b, const char *name, size_t most)
{
    json_t *list = json_object_get(
        json_object_get(json_object_get(vectors, "tokenizers"), name), "vectors");
    size_t bad = 0, i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (i >= most) break;
        json_t *jt = json_object_get(v, "text");
        const char *text = json_string_value(jt);
        size_t len = json_string_length(jt);
        int same = 1;
        for (unsigned f = 0; f < 2 && same; f++) {
            int *ia = NULL, *ib = NULL;
            size_t na = 0, nb = 0;
            int ra = tokenizer_encode_ex(a, text, len, f, &ia, &na);
            int rb = tokenizer_encode_ex(b, text, len, f, &ib, &nb);
            same = ra == rb && na == nb && (!na || !memcmp(ia, ib, na * sizeof *ia));
            for (unsigned d = 0; d < 2 && same && !ra; d++) {
                char *sa = NULL, *sb = NULL;
                size_t la = 0, lb = 0;
                unsigned df = d ? TOKENIZER_SKIP_SPECIAL : 0;
                ra = tokenizer_decode_ex(a, ia, na, df, &sa, &la);
                rb = tokenizer_decode_ex(b, ib, nb, df, &sb, &lb);
                same = ra == rb && la == lb && (!la || !memcmp(sa, sb, la));
                free(sa);
                free(sb);
            }
            free(ia);
            free(ib);
        }
        if (!same) {
            fprintf(stderr, "  %s: cached and parsed differ on %s\n", name,
                    json_dumps(jt, JSON_ENCODE_ANY | JSON_ALLOW_NUL));
            bad++;
        }
    }
    return bad;
}

/* Every token's bytes, special flag, the vocabulary size and BOS. */
static int same_tables(const tokenizer *a, const tokenizer *b)
{
    if (tokenizer_vocab_size(a) != tokenizer_vocab_size(b) ||
        tokenizer_bos_id(a) != tokenizer_bos_id(b))
        return 0;
    for (int id = 0; id < (int)tokenizer_vocab_size(a); id++) {
        size_t la = 0, lb = 0;
        const char *sa = tokenizer_token_bytes(a, id, &la);
        const char *sb = tokenizer_token_bytes(b, id, &lb);
        if (!sa != !sb || la != lb || (la && memcmp(sa, sb, la)) ||
            tokenizer_is_special(a, id) != tokenizer_is_special(b, id))
            return 0;
    }
    return 1;
}

/* Opens the three real files twice: parsed (writing the cache), then
 * from the cache. */
static void open_twins(int which)
{
    char cpath[4200];
    struct stat st;
    CHECK(cache_file_of(json_path[which], cpath, sizeof cpath) == 0);
    unlink(cpath);
    int rc = tokenizer_open_dir(&parsed[which], model_dir[which]);
    CHECK_MSG(rc == 0, "%s does not open", model_dir[which]);
    if (rc) return;
    CHECK_MSG(!tok_cache_loaded(parsed[which]), "%s: the first open is not a parse",
              names[which]);
    CHECK_MSG(stat(cpath, &st) == 0, "%s: no cache file %s", names[which], cpath);
    CHECK(tokenizer_open_dir(&cached[which], model_dir[which]) == 0);
    CHECK_MSG(tok_cache_loaded(cached[which]),
              "%s: the second open did not load the cache", names[which]);
}

static void check_twins(int which)
{
    open_twins(which);
    if (!parsed[which] || !cached[which] || !vectors) return;
    size_t bad = differences(cached[which], parsed[which], names[which], SIZE_MAX);
    CHECK_MSG(bad == 0, "%zu %s texts differ", bad, names[which]);
    printf("     %s: cached and parsed agree on %zu texts (ids with and without "
           "special tokens, each decoded with and without) and on every token\n", names[which],
           json_array_size(json_object_get(
               json_object_get(json_object_get(vectors, "tokenizers"), names[which]),
               "vectors")));
    CHECK_MSG(same_tables(cached[which], parsed[which]), "%s: the token tables differ",
              names[which]);
    /* the file is what the parse encodes to, and encoding the loaded
     * tokenizer gives it back (Llama 2's: the smallest, the same code) */
    if (which != 0) return;
    char cpath[4200], data_path[4200];
    size_t n = 0, na = 0, nb = 0;
    snprintf(data_path, sizeof data_path, "%s", json_path[which]);
    CHECK(cache_file_of(data_path, cpath, sizeof cpath) == 0);
    char *file = slurp(cpath, &n), *src = slurp(data_path, &na);
    tok_src_hash h;
    tok_src_hash_of(&h, src ? src : "", src ? na : 0);
    void *ea = NULL, *eb = NULL;
    CHECK(tok_cache_encode(parsed[which], &h, &ea, &na) == 0);
    CHECK(tok_cache_encode(cached[which], &h, &eb, &nb) == 0);
    CHECK_MSG(file && ea && eb && na == n && nb == n && !memcmp(file, ea, n) &&
                  !memcmp(file, eb, n),
              "%s: the cache file is not the parse's image", names[which]);
    free(file);
    free(src);
    free(ea);
    free(eb);
}

TEST(llama2_cached_is_parsed) { check_twins(0); }
TEST(llama3_cached_is_parsed) { check_twins(1); }
TEST(qwen3_cached_is_parsed) { check_twins(2); }

/* Damages Llama 2's cache file with `damage`, opens again: a parse with
 * the same results, and the file rewritten whole. */
static void expect_fallback(const char *what, void (*damage)(char *file, size_t *n))
{
    char cpath[4200];
    size_t n = 0, m = 0;
    if (!parsed[0] || cache_file_of(json_path[0], cpath, sizeof cpath)) {
        CHECK_MSG(0, "%s: no Llama 2 tokenizer or cache file", what);
        return;
    }
    char *good = slurp(cpath, &n), *bad = good ? malloc(n) : NULL;
    if (!bad) {
        CHECK_MSG(0, "%s: cannot read %s", what, cpath);
        free(good);
        return;
    }
    memcpy(bad, good, n);
    m = n;
    damage(bad, &m);
    CHECK(spill(cpath, bad, m) == 0);
    tokenizer *t = NULL;
    CHECK(tokenizer_open_dir(&t, model_dir[0]) == 0);
    CHECK_MSG(t && !tok_cache_loaded(t), "%s: the damaged cache was loaded", what);
    if (t) {
        CHECK_MSG(differences(t, parsed[0], "llama2", 20) == 0, "%s: results differ", what);
        CHECK(same_tables(t, parsed[0]));
    }
    tokenizer_close(t);
    char *now = slurp(cpath, &m);
    CHECK_MSG(now && m == n && !memcmp(now, good, n),
              "%s: the cache was not rewritten (%zu bytes, want %zu)", what, m, n);
    free(now);
    free(good);
    free(bad);
}

static void truncate_half(char *file, size_t *n) { (void)file; *n /= 2; }
static void flip_a_bit(char *file, size_t *n) { file[*n / 2 + 3] ^= 0x10; }
static void other_version(char *file, size_t *n)
{
    (void)n;
    file[8] ^= 0x7f; /* the version's low byte (after the 8-byte magic) */
}

TEST(bad_cache_falls_back_and_is_replaced)
{
    expect_fallback("truncated", truncate_half);
    expect_fallback("bit flip", flip_a_bit);
    expect_fallback("other version", other_version);
}

/* Forges one field of the cache image `good` into a copy: an id, an
 * offset or a version that does not hold. */
static char *forge(const char *good, size_t n, int k)
{
    char *c = malloc(n);
    size_t off = 0, len = 0;
    memcpy(c, good, n);
    if (k == 0 || k == 1) { /* the string map's first used slot */
        tok_cache_section(c, n, "map", &off, &len);
        for (size_t at = off; at + 12 <= off + len; at += 12) {
            int32_t id;
            memcpy(&id, c + at, 4);
            if (id < 0) continue;
            uint32_t v = k == 0 ? 0x7fffffff : 0xfffffff0; /* an id, a string offset */
            memcpy(c + at + (k == 0 ? 0 : 8), &v, 4);
            break;
        }
    } else if (k == 2) { /* a merge's result past every id */
        tok_cache_section(c, n, "pairs", &off, &len);
        for (size_t at = off; at + 16 <= off + len; at += 16) {
            uint64_t key;
            memcpy(&key, c + at, 8);
            if (key == UINT64_MAX) continue;
            int32_t v = 0x7ffffff0;
            memcpy(c + at + 12, &v, 4);
            break;
        }
    } else if (k == 3) { /* the token bytes' offsets out of order */
        tok_cache_section(c, n, "off", &off, &len);
        size_t big = (size_t)1 << 40;
        memcpy(c + off + sizeof big, &big, sizeof big);
    } else if (k == 4) { /* a string of the id table past the pool */
        tok_cache_section(c, n, "str_off", &off, &len);
        size_t big = (size_t)1 << 40;
        memcpy(c + off, &big, sizeof big);
    } else if (k == 5) { /* a section past the end: the file cut */
        tok_cache_section(c, n, "pairs", &off, &len);
        n = off + len / 2;
    } else { /* version 2 */
        c[8] = 2;
    }
    (void)n;
    return c;
}

/* A file whose checksum holds but whose contents do not: decoded with
 * the checksum skipped (as a forger would recompute it), the checks
 * refuse it; so are another file's cache and every cut of the header. */
TEST(checks_refuse_forged_contents)
{
    if (!parsed[0]) { CHECK(parsed[0] != NULL); return; }
    size_t n = 0;
    char *src = slurp(json_path[0], &n);
    tok_src_hash h, other;
    tok_src_hash_of(&h, src ? src : "", src ? n : 0);
    free(src);
    void *blob;
    CHECK(tok_cache_encode(parsed[0], &h, &blob, &n) == 0);
    for (int k = 0; k < 7; k++) {
        size_t off = 0, len = 0;
        tok_cache_section(blob, n, "pairs", &off, &len);
        char *c = forge(blob, n, k);
        tokenizer *t = NULL;
        CHECK_MSG(tok_cache_decode(&t, c, k == 5 ? off + len / 2 : n, 1, "forged", &h, 0) == -1,
                  "forged case %d loaded", k);
        tokenizer_close(t);
    }
    tokenizer *t = NULL;
    other = h;
    other.b[0] ^= 1;
    char *c = malloc(n);
    memcpy(c, blob, n);
    CHECK(tok_cache_decode(&t, c, n, 1, "other", &other, 0) == -1);
    /* the unforged image loads (checksum checked) */
    c = malloc(n);
    memcpy(c, blob, n);
    CHECK(tok_cache_decode(&t, c, n, 1, "good", &h, 1) == 0);
    if (t) CHECK(same_tables(t, parsed[0]));
    tokenizer_close(t);
    for (size_t cut = 0; cut < 512 && cut < n; cut += 7) {
        c = malloc(cut + 8);
        memcpy(c, blob, cut);
        t = NULL;
        CHECK(tok_cache_decode(&t, c, cut, 1, "cut", &h, 0) == -1);
        tokenizer_close(t);
    }
    free(blob);
}

/* STAMP_CACHE_DIR, then XDG_CACHE_HOME (absolute only), then HOME. */
TEST(cache_directory_from_environment)
{
    tok_src_hash h = {{0xab, 0x01}};
    char buf[4200];
    const char *keep = getenv("STAMP_CACHE_DIR");
    char saved[256];
    snprintf(saved, sizeof saved, "%s", keep ? keep : "");
    setenv("STAMP_CACHE_DIR", "/c/d", 1);
    CHECK(tok_cache_path(buf, sizeof buf, &h) == 0 &&
          !strcmp(buf, "/c/d/tokenizer-ab010000000000000000000000000000-v1.bin"));
    setenv("STAMP_CACHE_DIR", "off", 1);
    CHECK(tok_cache_path(buf, sizeof buf, &h) == -1);
    unsetenv("STAMP_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/x", 1);
    setenv("HOME", "/h", 1);
    CHECK(tok_cache_path(buf, sizeof buf, &h) == 0 && !strncmp(buf, "/x/stamp/tokenizer-", 19));
    setenv("XDG_CACHE_HOME", "relative", 1);
    CHECK(tok_cache_path(buf, sizeof buf, &h) == 0 &&
          !strncmp(buf, "/h/.cache/stamp/tokenizer-", 26));
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    CHECK(tok_cache_path(buf, sizeof buf, &h) == -1);
    setenv("STAMP_CACHE_DIR", "/c/d", 1);
    CHECK(tok_cache_path(buf, 20, &h) == -1); /* no room */
    setenv("STAMP_CACHE_DIR", saved, 1);
}

/* A writer's save removes the temporary files killed writers of the
 * same entry left (older than ten minutes), and only those. */
TEST(save_removes_stale_temporary_files)
{
    char dir[1300], entry[1400], old_tmp[1500], new_tmp[1500], other[1500];
    snprintf(dir, sizeof dir, "%s/sweep", tmpdir);
    snprintf(entry, sizeof entry, "%s/tokenizer-x-v1.bin", dir);
    snprintf(old_tmp, sizeof old_tmp, "%s.tmp.AAAAAA", entry);
    snprintf(new_tmp, sizeof new_tmp, "%s.tmp.BBBBBB", entry);
    snprintf(other, sizeof other, "%s/tokenizer-y-v1.bin.tmp.CCCCCC", dir);
    CHECK(mkdir(dir, 0700) == 0);
    CHECK(spill(old_tmp, "x", 1) == 0 && spill(new_tmp, "x", 1) == 0 &&
          spill(other, "x", 1) == 0);
    struct timespec hour_ago[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
    CHECK(utimensat(AT_FDCWD, old_tmp, hour_ago, 0) == 0);
    CHECK(utimensat(AT_FDCWD, other, hour_ago, 0) == 0);
    tok_src_hash h = {{0}};
    if (!parsed[0]) { CHECK_MSG(0, "no Llama 2 tokenizer"); return; }
    CHECK(tok_cache_save(parsed[0], entry, &h) == 0);
    CHECK_MSG(access(entry, R_OK) == 0, "the entry was not written");
    CHECK_MSG(access(old_tmp, F_OK) != 0, "a killed writer's old file is left");
    CHECK_MSG(access(new_tmp, F_OK) == 0, "a recent writer's file was removed");
    CHECK_MSG(access(other, F_OK) == 0, "another entry's file was removed");
}

/* A cache directory that cannot be made (under a regular file): the
 * tokenizer.json is parsed, no error. */
TEST(unusable_cache_is_no_error)
{
    char file[300], dir[400];
    snprintf(file, sizeof file, "%s/plain-file", tmpdir);
    snprintf(dir, sizeof dir, "%s/sub", file);
    CHECK(spill(file, "x", 1) == 0);
    setenv("STAMP_CACHE_DIR", dir, 1);
    tokenizer *t = NULL;
    CHECK(tokenizer_open_dir(&t, model_dir[0]) == 0);
    if (t && parsed[0]) CHECK(!tok_cache_loaded(t) && same_tables(t, parsed[0]));
    tokenizer_close(t);
    setenv("STAMP_CACHE_DIR", cache_dir, 1);
}

static int find_models(const char *build)
{
    for (int w = 0; w < 3; w++) {
        if (hf_tokenizer_dir(build, names[w], model_dir[w], sizeof model_dir[w]))
            return -1;
        snprintf(json_path[w], sizeof json_path[w], "%.1199s/tokenizer.json", model_dir[w]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    char build[1024];
    hf_test_build_dir(argv[0], build, sizeof build);
    /* the build's cache, never $HOME's: made by the first write */
    const char *cd = getenv("STAMP_CACHE_DIR");
    if (cd && *cd && strcmp(cd, "off")) snprintf(cache_dir, sizeof cache_dir, "%s", cd);
    else snprintf(cache_dir, sizeof cache_dir, "%s/cache", build);
    setenv("STAMP_CACHE_DIR", cache_dir, 1);
    find_models(build);
    json_error_t jerr;
    vectors = json_load_file(VECTORS, JSON_ALLOW_NUL, &jerr);
    if (!vectors) fprintf(stderr, "cannot read %s: %s\n", VECTORS, jerr.text);
    RUN(llama2_cached_is_parsed);
    RUN(llama3_cached_is_parsed);
    RUN(qwen3_cached_is_parsed);
    RUN(bad_cache_falls_back_and_is_replaced);
    RUN(checks_refuse_forged_contents);
    RUN(cache_directory_from_environment);
    RUN(unusable_cache_is_no_error);
    RUN(save_removes_stale_temporary_files);
    for (int w = 0; w < 3; w++) {
        tokenizer_close(parsed[w]);
        tokenizer_close(cached[w]);
    }
    json_decref(vectors);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
    return harness_summary();
}
