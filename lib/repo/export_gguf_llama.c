/* export_gguf_llama: a Llama-family model (Llama, Mistral, Qwen2, Qwen3)
 * as a GGUF file (export_gguf.h). Names, layouts and metadata follow
 * llama.cpp's converter (convert_hf_to_gguf.py: LlamaModel, Qwen2Model,
 * Qwen3Model; gguf-py's SpecialVocab) and its loader (LLM_ARCH_LLAMA,
 * QWEN2, QWEN3), read, not copied. Where the converter guesses, this
 * file follows what stamp's own model computes:
 *
 * - rope_freqs (llama3 scaling) is theta^(-2i/D) / inv_freq[i] of
 *   llama_config_inv_freq, the divisors llama.cpp applies, from the
 *   rope_scaling block stamp reads (the converter reads
 *   original_max_position_embeddings from the top level of config.json
 *   and falls back to 8192);
 * - a byte-fallback tokenizer.json becomes llama.cpp's "llama" vocabulary
 *   with scores from its merges (a token's score is minus the rank of
 *   the first merge that makes it), so that llama.cpp's SentencePiece
 *   merging by highest score takes the merges in Hugging Face's order
 *   (the converter's tokenizer.json path gives every token -1000).
 *
 * The matrices stay where the model maps them; each is converted (and
 * for q/k permuted) row by row when the writer asks for it
 * (gguf_add_tensor_fill), so the memory needed is one tensor's f32. */
#include "base/errors.h"
#include "base/linalg.h"
#include "repo/export_gguf.h"
#include "repo/export_gguf_impl.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

size_t export_gguf_qk_row(size_t row, size_t head_dim)
{
    size_t h = row / head_dim, k = row % head_dim;
    return h * head_dim + (k % 2) * (head_dim / 2) + k / 2;
}

/* ---- what llama.cpp can express ----------------------------------------- */

static const char *gguf_arch(llama_arch a)
{
    return a == LLAMA_ARCH_QWEN2 ? "qwen2" : a == LLAMA_ARCH_QWEN3 ? "qwen3"
                                                                   : "llama";
}

int export_gguf_llama_check(const llama_config *c, const char *dir)
{
    const char *arch = gguf_arch(c->arch), *what = NULL;
    if (c->rope_llama3 && c->arch != LLAMA_ARCH_LLAMA &&
        c->arch != LLAMA_ARCH_MISTRAL)
        what = "rope_scaling of type llama3";
    else if (c->arch == LLAMA_ARCH_QWEN3 && (c->qkv_bias || c->o_bias))
        what = "attention_bias true";
    else if (c->arch == LLAMA_ARCH_QWEN3 && c->mlp_bias)
        what = "mlp_bias true";
    else if (c->arch == LLAMA_ARCH_QWEN2 && (c->o_bias || c->mlp_bias))
        what = "an o_proj or MLP bias";
    else if (c->arch == LLAMA_ARCH_QWEN2 && c->qk_norm)
        what = "q/k norms";
    if (what)
        return err_set(ERR_INVALID, "'%s/config.json': %s %s, which GGUF's %s "
                       "architecture cannot express", dir,
                       llama_arch_name(c->arch), what, arch);
    return 0;
}

/* ---- the tokenizer ------------------------------------------------------ */

typedef struct {
    json_t *tok;          /* tokenizer.json */
    json_t *tc;           /* tokenizer_config.json, or NULL */
    const json_t *vocab;  /* tok.model.vocab */
    const json_t *added;  /* tok.added_tokens */
    char path[PATH_MAX + 32];
} tok_files;

/* The id of the token whose text is s (an added token first), or -1. */
static int token_id(const tok_files *f, const char *s)
{
    size_t i;
    json_t *a;
    if (!s) return -1;
    json_array_foreach(f->added, i, a) {
        const char *c = json_string_value(json_object_get(a, "content"));
        if (c && !strcmp(c, s))
            return (int)json_integer_value(json_object_get(a, "id"));
    }
    json_t *v = json_object_get(f->vocab, s);
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

/* tokenizer_config.json's KEY: a string or {"content": string}. */
static const char *config_token(const tok_files *f, const char *key)
{
    json_t *v = json_object_get(f->tc, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_string_value(v);
}

/* The post-processor's TemplateProcessing (alone or in a Sequence). */
static const json_t *template_of(const json_t *post)
{
    const char *type = json_string_value(json_object_get(post, "type"));
    if (type && !strcmp(type, "TemplateProcessing")) return post;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(post, "processors"), i, p) {
        type = json_string_value(json_object_get(p, "type"));
        if (type && !strcmp(type, "TemplateProcessing")) return p;
    }
    return NULL;
}

/* The split regexes llama.cpp names (tokenizer.json spells them so) */
static const char RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The pre-tokenizer's name for a byte-level BPE file: "llama-bpe",
 * "qwen2" (their Split regex, then ByteLevel without its own regex) or
 * "gpt-2" (ByteLevel with GPT-2's regex alone). */
static int pre_name(const tok_files *f, const char **out)
{
    const json_t *pre = json_object_get(f->tok, "pre_tokenizer");
    const json_t *list = json_object_get(pre, "pretokenizers");
    size_t n = json_is_array(list) ? json_array_size(list) : 1, n_split = 0;
    const char *regex = NULL;
    int bytelevel_regex = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_is_array(list) ? json_array_get(list, i) : pre;
        const char *type = json_string_value(json_object_get(p, "type"));
        if (!type) continue;
        if (!strcmp(type, "Split")) {
            n_split++;
            regex = json_string_value(
                json_object_get(json_object_get(p, "pattern"), "Regex"));
        } else if (!strcmp(type, "ByteLevel")) {
            const json_t *u = json_object_get(p, "use_regex");
            bytelevel_regex = !u || json_is_true(u);
        }
    }
    *out = NULL;
    if (n_split == 1 && regex && !bytelevel_regex)
        *out = !strcmp(regex, RE_LLAMA3) ? "llama-bpe"
               : !strcmp(regex, RE_QWEN2) ? "qwen2" : NULL;
    else if (n_split == 0 && bytelevel_regex)
        *out = "gpt-2";
    if (!*out)
        return err_set(ERR_FORMAT, "'%s': its pre-tokenizer (%s%s%s) is none "
                       "that llama.cpp names (Llama 3's, Qwen2's or GPT-2's "
                       "split regex); GGUF cannot express it", f->path,
                       regex ? "split regex '" : "no single split regex",
                       regex ? regex : "", regex ? "'" : "");
    return 0;
}

/* A merge of tokenizer.json ("a b", or ["a", "b"] since transformers
 * 4.45) as the text GGUF holds, "a b", with spaces inside the parts as
 * U+0120, as llama.cpp's converter writes them, into buf (size cap). */
static size_t merge_text(const json_t *m, char *buf, size_t cap, char **a_end)
{
    size_t n = 0;
    *a_end = NULL;
    if (json_is_string(m)) {
        n = (size_t)snprintf(buf, cap, "%s", json_string_value(m));
        *a_end = strchr(buf, ' ');
        return n < cap ? n : 0;
    }
    for (size_t part = 0; part < 2; part++) {
        const char *s = json_string_value(json_array_get(m, part));
        if (!s || json_array_size(m) != 2) return 0;
        if (part) {
            *a_end = buf + n;
            buf[n++] = ' ';
        }
        for (; *s && n + 3 < cap; s++) {
            if (*s == ' ') {
                buf[n++] = (char)0xC4;
                buf[n++] = (char)0xA0;
            } else {
                buf[n++] = *s;
            }
        }
        if (n + 3 >= cap) return 0;
    }
    buf[n] = 0;
    return n;
}

/* Token texts and types of the vocabulary and the added tokens; ids
 * past them up to V are "[PADi]" (unused). */
static int fill_tokens(const tok_files *f, gguf_vocab *v, int spm)
{
    const char *key, *unk = json_string_value(
        json_object_get(json_object_get(f->tok, "model"), "unk_token"));
    json_t *val, *a;
    size_t i;
    json_object_foreach((json_t *)f->vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || (size_t)id >= v->n || v->tokens[id])
            return err_set(ERR_FORMAT, "'%s': token '%s' has id %lld, outside "
                           "the model's vocab_size %zu or given twice", f->path,
                           key, (long long)id, v->n);
        if (!(v->tokens[id] = strdup(key))) return err_set(ERR_NOMEM, "out of memory");
        v->lens[id] = strlen(key);
        int byte = strlen(key) == 6 && !strncmp(key, "<0x", 3) && key[5] == '>';
        v->types[id] = spm && byte ? GGUF_TOKEN_BYTE
                       : spm && unk && !strcmp(key, unk) ? GGUF_TOKEN_UNKNOWN
                                                         : GGUF_TOKEN_NORMAL;
    }
    json_array_foreach(f->added, i, a) {
        const char *c = json_string_value(json_object_get(a, "content"));
        json_int_t id = json_integer_value(json_object_get(a, "id"));
        if (!c || id < 0 || (size_t)id >= v->n)
            return err_set(ERR_FORMAT, "'%s': added token %zu has no content "
                           "or an id outside the model's vocab_size %zu",
                           f->path, i, v->n);
        size_t len = strlen(c);
        int special = json_is_true(json_object_get(a, "special")) ||
                      (len > 4 && !strncmp(c, "<|", 2) && !strcmp(c + len - 2, "|>"));
        if (!v->tokens[id] && !(v->tokens[id] = strdup(c)))
            return err_set(ERR_NOMEM, "out of memory");
        v->lens[id] = strlen(v->tokens[id]);
        if (v->types[id] != GGUF_TOKEN_UNKNOWN && v->types[id] != GGUF_TOKEN_BYTE)
            v->types[id] = special ? GGUF_TOKEN_CONTROL : GGUF_TOKEN_USER_DEFINED;
    }
    for (i = 0; i < v->n; i++) {
        if (v->tokens[i]) continue;
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%zu]", i);
        if (!(v->tokens[i] = strdup(pad))) return err_set(ERR_NOMEM, "out of memory");
        v->lens[i] = strlen(pad);
        v->types[i] = GGUF_TOKEN_UNUSED;
        if (spm) v->scores[i] = -1000.0f;
    }
    return 0;
}

/* The merges: GPT-2 style kept as text; SentencePiece style turned into
 * scores (minus the rank of the first merge making a token). */
static int fill_merges(const tok_files *f, gguf_vocab *v, int spm)
{
    const json_t *merges = json_object_get(json_object_get(f->tok, "model"), "merges");
    size_t i, n_merges = json_array_size(merges);
    json_t *m;
    char buf[1024], *a_end;
    int rc;
    if (spm)
        for (i = 0; i < v->n; i++)
            if (v->types[i] == GGUF_TOKEN_NORMAL)
                v->scores[i] = -(float)(n_merges + i);
    json_array_foreach(merges, i, m) {
        size_t n = merge_text(m, buf, sizeof buf, &a_end);
        if (!n || !a_end)
            return err_set(ERR_FORMAT, "'%s': merge %zu is not \"a b\" or "
                           "[\"a\", \"b\"]", f->path, i);
        if (!spm) {
            if ((rc = gguf_vocab_add_merge(v, buf, n))) return rc;
            continue;
        }
        memmove(a_end, a_end + 1, (size_t)(buf + n - a_end)); /* "ab" */
        json_t *id = json_object_get(f->vocab, buf);
        if (json_is_integer(id) && (size_t)json_integer_value(id) < v->n) {
            float *s = &v->scores[json_integer_value(id)];
            if (*s < -(float)i) *s = -(float)i;
        }
    }
    return 0;
}

static int open_tokenizer(tok_files *f, const char *dir)
{
    json_error_t jerr;
    char path[PATH_MAX + 32];
    snprintf(f->path, sizeof f->path, "%s/tokenizer.json", dir);
    if (!(f->tok = json_load_file(f->path, 0, &jerr)))
        return err_set(ERR_FORMAT, "'%s': %s (GGUF export of the Llama family "
                       "needs the model's tokenizer.json)", f->path, jerr.text);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    f->tc = json_load_file(path, 0, &jerr); /* optional */
    const json_t *model = json_object_get(f->tok, "model");
    const char *type = json_string_value(json_object_get(model, "type"));
    f->vocab = json_object_get(model, "vocab");
    f->added = json_object_get(f->tok, "added_tokens");
    if (!type || strcmp(type, "BPE") || !json_is_object(f->vocab))
        return err_set(ERR_FORMAT, "'%s': a %s model, which GGUF export does "
                       "not support (BPE only)", f->path, type ? type : "typeless");
    return 0;
}

/* 1 when the text gets a leading "▁" (Prepend normalizer, Metaspace) */
static int space_prefix(const tok_files *f)
{
    const json_t *norm = json_object_get(f->tok, "normalizer");
    const json_t *pre = json_object_get(f->tok, "pre_tokenizer");
    char *ns = json_dumps(norm, JSON_COMPACT), *ps = json_dumps(pre, JSON_COMPACT);
    int yes = (ns && strstr(ns, "\"Prepend\"")) ||
              (ps && strstr(ps, "\"Metaspace\"") && !strstr(ps, "\"never\""));
    free(ns);
    free(ps);
    return yes;
}

/* Special ids and whether BOS/EOS are added, as gguf-py's SpecialVocab
 * finds them: tokenizer_config.json, the template, config.json. */
static int set_specials(gguf_writer *w, const tok_files *f,
                        const llama_config *c, size_t V)
{
    const json_t *tmpl = template_of(json_object_get(f->tok, "post_processor"));
    const char *first = json_string_value(json_object_get(json_object_get(
        json_array_get(json_object_get(tmpl, "single"), 0), "SpecialToken"), "id"));
    const json_t *model = json_object_get(f->tok, "model");
    int bos = token_id(f, config_token(f, "bos_token"));
    if (bos < 0) bos = token_id(f, first);
    if (bos < 0) bos = c->bos_token_id;
    int eos = token_id(f, config_token(f, "eos_token"));
    if (eos < 0 && c->n_eos) eos = c->eos_token_ids[0];
    int unk = token_id(f, config_token(f, "unk_token"));
    if (unk < 0) unk = token_id(f, json_string_value(json_object_get(model, "unk_token")));
    int pad = token_id(f, config_token(f, "pad_token"));
    const json_t *add_bos = json_object_get(f->tc, "add_bos_token");
    const json_t *add_eos = json_object_get(f->tc, "add_eos_token");
    int rc = gguf_set_bool(w, "tokenizer.ggml.add_bos_token",
                           json_is_boolean(add_bos) ? json_is_true(add_bos)
                                                    : first && bos == token_id(f, first));
    if (!rc && json_is_boolean(add_eos))
        rc = gguf_set_bool(w, "tokenizer.ggml.add_eos_token", json_is_true(add_eos));
    static const char *keys[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                 "tokenizer.ggml.unknown_token_id",
                                 "tokenizer.ggml.padding_token_id"};
    int ids[] = {bos, eos, unk, pad};
    for (size_t i = 0; !rc && i < 4; i++)
        if (ids[i] >= 0 && (size_t)ids[i] < V)
            rc = gguf_set_u32(w, keys[i], (uint32_t)ids[i]);
    return rc;
}

/* A model with GPT-2's vocab.json and merges.txt instead of a
 * tokenizer.json (stamp-world's Llama worlds): llama.cpp's "gpt2"
 * vocabulary with the gpt-2 pre-tokenizer, no BOS added. */
static int set_gpt2_tokenizer(gguf_writer *w, const char *dir,
                              const llama_config *c)
{
    gguf_vocab v = {0};
    int rc = gguf_vocab_read_gpt2(&v, dir, c->vocab_size);
    if (!rc && !(rc = gguf_set_str(w, "tokenizer.ggml.model", "gpt2")) &&
        !(rc = gguf_set_str(w, "tokenizer.ggml.pre", "gpt-2")) &&
        !(rc = gguf_vocab_write(w, &v)))
        rc = gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 0);
    if (!rc && v.eot >= 0 &&
        !(rc = gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v.eot)))
        rc = gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v.eot);
    gguf_vocab_free(&v);
    return rc;
}

static int set_tokenizer(gguf_writer *w, const char *dir, const llama_config *c)
{
    char gpt2_vocab[PATH_MAX + 32], tok_json[PATH_MAX + 32];
    snprintf(tok_json, sizeof tok_json, "%s/tokenizer.json", dir);
    snprintf(gpt2_vocab, sizeof gpt2_vocab, "%s/vocab.json", dir);
    if (access(tok_json, F_OK) && !access(gpt2_vocab, R_OK))
        return set_gpt2_tokenizer(w, dir, c);
    tok_files f = {0};
    gguf_vocab v = {0};
    const char *pre = NULL;
    int rc = open_tokenizer(&f, dir);
    const json_t *model = json_object_get(f.tok, "model");
    int spm = json_is_true(json_object_get(model, "byte_fallback"));
    if (!rc && !spm) rc = pre_name(&f, &pre);
    if (rc || (rc = gguf_vocab_alloc(&v, c->vocab_size, spm)) ||
        (rc = fill_tokens(&f, &v, spm)) || (rc = fill_merges(&f, &v, spm)))
        goto out;
    if ((rc = gguf_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2")) ||
        (rc = gguf_set_str(w, "tokenizer.ggml.pre", spm ? "default" : pre)) ||
        (rc = gguf_vocab_write(w, &v)) ||
        (spm && (rc = gguf_set_bool(w, "tokenizer.ggml.add_space_prefix",
                                    space_prefix(&f)))) ||
        (rc = set_specials(w, &f, c, v.n)))
        goto out;
out:
    gguf_vocab_free(&v);
    json_decref(f.tok);
    json_decref(f.tc);
    return rc;
}

/* ---- hyperparameters ---------------------------------------------------- */

static int set_hparams(gguf_writer *w, const llama_config *c, gguf_type type)
{
    const char *arch = gguf_arch(c->arch);
    char key[96];
    size_t ctx = c->n_positions;
    if (c->sliding_window && c->sliding_window < ctx) ctx = c->sliding_window;
    int rc;
#define KEY(k) (snprintf(key, sizeof key, "%s.%s", arch, k), key)
    if ((rc = gguf_set_str(w, "general.architecture", arch)) ||
        (rc = gguf_set_str(w, "general.name", "stamp export")) ||
        (rc = gguf_set_u32(w, "general.file_type", export_gguf_file_type(type))) ||
        (rc = gguf_set_u32(w, "general.quantization_version", 2)) ||
        (rc = gguf_set_u32(w, KEY("context_length"), (uint32_t)ctx)) ||
        (rc = gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->n_embd)) ||
        (rc = gguf_set_u32(w, KEY("block_count"), (uint32_t)c->n_layer)) ||
        (rc = gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->n_inner)) ||
        (rc = gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head)) ||
        (rc = gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head)) ||
        (rc = gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim)) ||
        (rc = gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim)) ||
        (rc = gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->rms_norm_eps)) ||
        (rc = gguf_set_f32(w, KEY("rope.freq_base"), (float)c->rope_theta)) ||
        (rc = gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim)) ||
        (rc = gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size)))
        return rc;
#undef KEY
    return 0;
}

/* ---- tensors ------------------------------------------------------------ */

typedef struct {
    const void *data;    /* rows x cols of dtype */
    linalg_dtype dtype;
    size_t rows, cols;
    size_t head_dim;     /* rows permuted per head of this many, or 0 */
} source;

static void fill_source(const void *ctx, float *out)
{
    const source *s = ctx;
    size_t es = s->dtype == LINALG_F32 ? 4 : 2;
    for (size_t r = 0; r < s->rows; r++) {
        size_t from = s->head_dim ? export_gguf_qk_row(r, s->head_dim) : r;
        linalg_to_f32(out + r * s->cols,
                      (const char *)s->data + from * s->cols * es, s->dtype,
                      s->cols);
    }
}

typedef struct {
    gguf_writer *w;
    source *src;       /* (cap) */
    size_t n, cap;
    gguf_type type;    /* of the matrices */
} tensor_list;

/* Adds a matrix (cols > 0: stored as list->type) or a vector (cols 0:
 * f32); permute: the head size whose row pairs are reordered, or 0. */
static int add(tensor_list *t, const char *name, const void *data,
               linalg_dtype dtype, size_t rows, size_t cols, size_t permute)
{
    if (!data) return 0; /* a bias or norm the architecture lacks */
    source *s = &t->src[t->n];
    *s = (source){data, dtype, rows, cols ? cols : 1, permute};
    size_t shape[2] = {rows, cols};
    int rc = gguf_add_tensor_fill(t->w, name, shape, cols ? 2 : 1,
                                  cols ? t->type : GGUF_F32, fill_source, s);
    if (!rc) t->n++;
    return rc;
}

static int add_mat(tensor_list *t, const char *name, const llama_mat *m,
                   size_t permute)
{
    return add(t, name, m->data, m->dtype, m->rows, m->cols, permute);
}

static int add_layer(tensor_list *t, const llama_model *m, size_t l)
{
    const llama_config *c = &m->config;
    const llama_layer *y = &m->layers[l];
    size_t D = c->head_dim, C = c->n_embd, F = c->n_inner;
    size_t QD = c->n_head * D, KD = c->n_kv_head * D;
    /* llama.cpp's "llama" rotates adjacent pairs: q and k rows permuted */
    size_t P = c->arch == LLAMA_ARCH_LLAMA || c->arch == LLAMA_ARCH_MISTRAL ? D : 0;
    char n[64];
    int rc;
#define N(s) (snprintf(n, sizeof n, "blk.%zu.%s", l, s), n)
    if ((rc = add(t, N("attn_norm.weight"), y->attn_norm, LINALG_F32, C, 0, 0)) ||
        (rc = add_mat(t, N("attn_q.weight"), &y->q, P)) ||
        (rc = add_mat(t, N("attn_k.weight"), &y->k, P)) ||
        (rc = add_mat(t, N("attn_v.weight"), &y->v, 0)) ||
        (rc = add(t, N("attn_q.bias"), y->q_bias, LINALG_F32, QD, 0, P)) ||
        (rc = add(t, N("attn_k.bias"), y->k_bias, LINALG_F32, KD, 0, P)) ||
        (rc = add(t, N("attn_v.bias"), y->v_bias, LINALG_F32, KD, 0, 0)) ||
        (rc = add(t, N("attn_q_norm.weight"), y->q_norm, LINALG_F32, D, 0, 0)) ||
        (rc = add(t, N("attn_k_norm.weight"), y->k_norm, LINALG_F32, D, 0, 0)) ||
        (rc = add_mat(t, N("attn_output.weight"), &y->o, 0)) ||
        (rc = add(t, N("attn_output.bias"), y->o_bias, LINALG_F32, C, 0, 0)) ||
        (rc = add(t, N("ffn_norm.weight"), y->mlp_norm, LINALG_F32, C, 0, 0)) ||
        (rc = add_mat(t, N("ffn_gate.weight"), &y->gate, 0)) ||
        (rc = add_mat(t, N("ffn_up.weight"), &y->up, 0)) ||
        (rc = add_mat(t, N("ffn_down.weight"), &y->down, 0)) ||
        (rc = add(t, N("ffn_gate.bias"), y->gate_bias, LINALG_F32, F, 0, 0)) ||
        (rc = add(t, N("ffn_up.bias"), y->up_bias, LINALG_F32, F, 0, 0)) ||
        (rc = add(t, N("ffn_down.bias"), y->down_bias, LINALG_F32, C, 0, 0)))
        return rc;
#undef N
    return 0;
}

/* rope_freqs (D/2): the divisors of llama.cpp's frequencies that give
 * stamp's llama3-scaled ones. */
static int rope_factors(const llama_model *m, float **out)
{
    const llama_config *c = &m->config;
    size_t half = c->head_dim / 2;
    if (!(*out = malloc(half * sizeof **out))) return err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < half; i++)
        (*out)[i] = (float)(pow(c->rope_theta, -2.0 * (double)i / (double)c->head_dim) /
                            m->inv_freq[i]);
    return 0;
}

int export_gguf_llama(const llama_model *m, const char *dir,
                      const char *path, gguf_type type, size_t *n_tensors)
{
    const llama_config *c = &m->config;
    tensor_list t = {.type = type, .cap = 4 + 18 * c->n_layer};
    float *freqs = NULL;
    int rc;
    if ((rc = export_gguf_check_path(path)) || (rc = export_gguf_llama_check(c, dir)) ||
        (rc = gguf_writer_new(&t.w)))
        return rc;
    if (!(t.src = malloc(t.cap * sizeof *t.src))) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = set_hparams(t.w, c, type)) || (rc = set_tokenizer(t.w, dir, c)))
        goto out;
    if (c->rope_llama3 &&
        ((rc = rope_factors(m, &freqs)) ||
         (rc = add(&t, "rope_freqs.weight", freqs, LINALG_F32, c->head_dim / 2, 0, 0))))
        goto out;
    if ((rc = add_mat(&t, "token_embd.weight", &m->embed, 0))) goto out;
    for (size_t l = 0; l < c->n_layer; l++)
        if ((rc = add_layer(&t, m, l))) goto out;
    if ((rc = add(&t, "output_norm.weight", m->norm, LINALG_F32, c->n_embd, 0, 0)) ||
        (!c->tie_word_embeddings &&
         (rc = add_mat(&t, "output.weight", &m->lm_head, 0))))
        goto out;
    if ((rc = gguf_writer_write(t.w, path))) goto out;
    if (n_tensors) *n_tensors = t.n;
out:
    gguf_writer_free(t.w);
    free(t.src);
    free(freqs);
    return rc;
}
