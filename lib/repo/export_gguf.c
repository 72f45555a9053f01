/* export_gguf: a model as a GGUF file (export_gguf.h): the store's
 * current model or a model directory, dispatched by family; GPT-2 is
 * written here, the Llama family in export_gguf_llama.c; the vocabulary
 * and path helpers both use (export_gguf_impl.h) are here too. GPT-2's
 * names and layouts follow llama.cpp's GPT-2 conversion
 * (convert_hf_to_gguf.py, GPT2Model) and its loader (LLM_ARCH_GPT2). */
#include "repo/export_gguf.h"
#include "base/errors.h"
#include "repo/export_gguf_impl.h"
#include "model/gpt2.h"
#include "model/llama.h"
#include "model/lm.h"
#include "store/modelview.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int export_gguf_check_path(const char *path)
{
    char dir[PATH_MAX];
    struct stat sb;
    const char *slash = strrchr(path, '/');
    if (strlen(path) + 32 >= PATH_MAX)
        return err_set(ERR_INVALID, "export path '%s' is too long", path);
    if (!*path || (slash && !slash[1]))
        return err_set(ERR_INVALID, "'%s' names no file", path);
    snprintf(dir, sizeof dir, "%.*s",
             slash ? (int)(slash - path + (slash == path)) : 1,
             slash ? path : ".");
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
        return err_set(ERR_NOTFOUND, "cannot write '%s': directory '%s' does "
                       "not exist", path, dir);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return err_set(ERR_EXISTS, "'%s' is a directory; --format gguf writes "
                       "one file", path);
    return 0;
}

/* config.json's attention variants that llama.cpp's gpt2 has no key for */
static int check_config(const char *base_dir)
{
    static const struct { const char *field; int expressible; } flags[] = {
        {"scale_attn_weights", 1},
        {"scale_attn_by_inverse_layer_idx", 0},
        {"reorder_and_upcast_attn", 0},
    };
    char path[PATH_MAX + 32];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/config.json", base_dir);
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return err_set(ERR_FORMAT, "'%s': %s", path, jerr.text);
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof flags / sizeof *flags; i++) {
        json_t *v = json_object_get(root, flags[i].field);
        if (json_is_boolean(v) && json_is_true(v) != flags[i].expressible)
            rc = err_set(ERR_INVALID, "'%s' sets %s to %s, which GGUF's gpt2 "
                         "architecture cannot express", path, flags[i].field,
                         json_is_true(v) ? "true" : "false");
    }
    json_decref(root);
    return rc;
}

uint32_t export_gguf_file_type(gguf_type t)
{
    return t == GGUF_F32 ? 0 : t == GGUF_F16 ? 1 : t == GGUF_Q8_0 ? 7 : 32;
}

int gguf_vocab_alloc(gguf_vocab *v, size_t n, int with_scores)
{
    v->n = n;
    v->tokens = calloc(n, sizeof *v->tokens);
    v->lens = calloc(n, sizeof *v->lens);
    v->types = calloc(n, sizeof *v->types);
    v->scores = with_scores ? calloc(n, sizeof *v->scores) : NULL;
    v->eot = -1;
    if (!v->tokens || !v->lens || !v->types || (with_scores && !v->scores))
        return err_set(ERR_NOMEM, "out of memory");
    return 0;
}

int gguf_vocab_add_merge(gguf_vocab *v, const char *s, size_t len)
{
    if ((v->n_merges & (v->n_merges - 1)) == 0) { /* 0 or a power of two */
        size_t cap = v->n_merges ? 2 * v->n_merges : 1024;
        if (cap < 1024) cap = 1024;
        char **m = realloc(v->merges, cap * sizeof *m);
        if (m) v->merges = m;
        size_t *l = m ? realloc(v->merge_lens, cap * sizeof *l) : NULL;
        if (l) v->merge_lens = l;
        if (!m || !l) return err_set(ERR_NOMEM, "out of memory");
    }
    if (!(v->merges[v->n_merges] = strndup(s, len)))
        return err_set(ERR_NOMEM, "out of memory");
    v->merge_lens[v->n_merges++] = len;
    return 0;
}

void gguf_vocab_free(gguf_vocab *v)
{
    for (size_t i = 0; v->tokens && i < v->n; i++) free(v->tokens[i]);
    for (size_t i = 0; v->merges && i < v->n_merges; i++) free(v->merges[i]);
    free(v->tokens);
    free(v->lens);
    free(v->types);
    free(v->scores);
    free(v->merges);
    free(v->merge_lens);
    memset(v, 0, sizeof *v);
}

int gguf_vocab_write(gguf_writer *w, const gguf_vocab *v)
{
    int rc;
    if ((rc = gguf_set_str_array(w, "tokenizer.ggml.tokens",
                                 (const char *const *)v->tokens, v->lens,
                                 v->n)) ||
        (rc = gguf_set_i32_array(w, "tokenizer.ggml.token_type", v->types,
                                 v->n)))
        return rc;
    if (v->scores &&
        (rc = gguf_set_f32_array(w, "tokenizer.ggml.scores", v->scores, v->n)))
        return rc;
    if (v->merges &&
        (rc = gguf_set_str_array(w, "tokenizer.ggml.merges",
                                 (const char *const *)v->merges,
                                 v->merge_lens, v->n_merges)))
        return rc;
    return 0;
}

/* vocab.json: every id 0..V-1 exactly once */
static int read_tokens(gguf_vocab *v, const char *base_dir, size_t V)
{
    char path[PATH_MAX + 32];
    json_error_t jerr;
    const char *key;
    json_t *val;
    snprintf(path, sizeof path, "%s/vocab.json", base_dir);
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return err_set(ERR_FORMAT, "'%s': %s", path, jerr.text);
    int rc = gguf_vocab_alloc(v, V, 0);
    if (rc) goto out;
    json_object_foreach(root, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || (size_t)id >= V || v->tokens[id]) {
            rc = err_set(ERR_FORMAT, "'%s': token '%s' has id %lld, outside "
                         "the model's %zu or given twice", path, key,
                         (long long)id, V);
            goto out;
        }
        if (!(v->tokens[id] = strdup(key))) {
            rc = err_set(ERR_NOMEM, "out of memory");
            goto out;
        }
        v->lens[id] = strlen(key);
        v->types[id] = 1;
        if (!strcmp(key, "<|endoftext|>")) {
            v->types[id] = 3;
            v->eot = (int)id;
        }
    }
    for (size_t i = 0; i < V; i++)
        if (!v->tokens[i]) {
            rc = err_set(ERR_FORMAT, "'%s' has no token of id %zu (the model "
                         "has %zu)", path, i, V);
            goto out;
        }
out:
    json_decref(root);
    return rc;
}

/* merges.txt: one "a b" a line after the "#version" line */
static int read_merges(gguf_vocab *v, const char *base_dir)
{
    char path[PATH_MAX + 32], *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    snprintf(path, sizeof path, "%s/merges.txt", base_dir);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(ERR_IO, "cannot read '%s': %s", path,
                           strerror(errno));
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (!n || (!v->n_merges && !strncmp(line, "#version", 8))) continue;
        if ((rc = gguf_vocab_add_merge(v, line, (size_t)n))) break;
    }
    if (!rc && ferror(f))
        rc = err_set(ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

int gguf_vocab_read_gpt2(gguf_vocab *v, const char *dir, size_t V)
{
    int rc = read_tokens(v, dir, V);
    return rc ? rc : read_merges(v, dir);
}

static int set_metadata(gguf_writer *w, const gpt2_config *c, gguf_type type,
                        const gguf_vocab *v)
{
    uint32_t file_type = export_gguf_file_type(type);
    int rc;
    if ((rc = gguf_set_str(w, "general.architecture", "gpt2")) ||
        (rc = gguf_set_str(w, "general.name", "stamp export")) ||
        (rc = gguf_set_u32(w, "general.file_type", file_type)) ||
        (rc = gguf_set_u32(w, "general.quantization_version", 2)) ||
        (rc = gguf_set_u32(w, "gpt2.context_length", (uint32_t)c->n_positions)) ||
        (rc = gguf_set_u32(w, "gpt2.embedding_length", (uint32_t)c->n_embd)) ||
        (rc = gguf_set_u32(w, "gpt2.feed_forward_length", (uint32_t)c->n_inner)) ||
        (rc = gguf_set_u32(w, "gpt2.block_count", (uint32_t)c->n_layer)) ||
        (rc = gguf_set_u32(w, "gpt2.attention.head_count", (uint32_t)c->n_head)) ||
        (rc = gguf_set_f32(w, "gpt2.attention.layer_norm_epsilon",
                           c->layer_norm_epsilon)) ||
        (rc = gguf_set_str(w, "tokenizer.ggml.model", "gpt2")) ||
        (rc = gguf_set_str(w, "tokenizer.ggml.pre", "gpt-2")) ||
        (rc = gguf_vocab_write(w, v)) ||
        (rc = gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 0)))
        return rc;
    if (v->eot >= 0 &&
        ((rc = gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->eot)) ||
         (rc = gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eot))))
        return rc;
    return 0;
}

/* out (cols, rows) = in (rows, cols) transposed */
static void transpose(float *out, const float *in, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) out[c * rows + r] = in[r * cols + c];
}

/* The tensors of m under llama.cpp's names; the transposed Conv1D
 * weights go to *scratch (malloc'ed, the caller frees after writing). */
static int add_tensors(gguf_writer *w, const gpt2_model *m, gguf_type type,
                       float **scratch, size_t *n_tensors)
{
    const gpt2_config *c = &m->config;
    size_t L = c->n_layer, C = c->n_embd, F = c->n_inner, V = c->vocab_size;
    size_t per_layer = 3 * C * C + C * C + 2 * C * F;
    float *t = *scratch = malloc(L * per_layer * sizeof(float));
    char name[64];
    int rc;
    *n_tensors = 0;
    if (!t) return err_set(ERR_NOMEM, "out of memory");
#define P(tensor, l) gpt2_layer_tensor(m, GPT2_##tensor, (l))
#define ADD(nm, data, r, k, ty)                                               \
    do {                                                                      \
        size_t shape_[2] = {(r), (k)};                                        \
        if ((rc = gguf_add_tensor(w, (nm), shape_,                           \
                                  (k) ? 2 : 1, (ty), (data))))                \
            return rc;                                                        \
        (*n_tensors)++;                                                       \
    } while (0)
    ADD("token_embd.weight", P(WTE, 0), V, C, type);
    ADD("position_embd.weight", P(WPE, 0), c->n_positions, C,
        GGUF_F32);
    for (size_t l = 0; l < L; l++) {
        float *qkv = t, *proj = qkv + 3 * C * C, *up = proj + C * C,
              *down = up + C * F;
        t += per_layer;
        transpose(qkv, P(QKVW, l), C, 3 * C);
        transpose(proj, P(ATTPROJW, l), C, C);
        transpose(up, P(FCW, l), C, F);
        transpose(down, P(FCPROJW, l), F, C);
#define BLK(suffix) (snprintf(name, sizeof name, "blk.%zu.%s", l, suffix), name)
        ADD(BLK("attn_norm.weight"), P(LN1W, l), C, 0, GGUF_F32);
        ADD(BLK("attn_norm.bias"), P(LN1B, l), C, 0, GGUF_F32);
        ADD(BLK("attn_qkv.weight"), qkv, 3 * C, C, type);
        ADD(BLK("attn_qkv.bias"), P(QKVB, l), 3 * C, 0, GGUF_F32);
        ADD(BLK("attn_output.weight"), proj, C, C, type);
        ADD(BLK("attn_output.bias"), P(ATTPROJB, l), C, 0, GGUF_F32);
        ADD(BLK("ffn_norm.weight"), P(LN2W, l), C, 0, GGUF_F32);
        ADD(BLK("ffn_norm.bias"), P(LN2B, l), C, 0, GGUF_F32);
        ADD(BLK("ffn_up.weight"), up, F, C, type);
        ADD(BLK("ffn_up.bias"), P(FCB, l), F, 0, GGUF_F32);
        ADD(BLK("ffn_down.weight"), down, C, F, type);
        ADD(BLK("ffn_down.bias"), P(FCPROJB, l), C, 0, GGUF_F32);
#undef BLK
    }
    ADD("output_norm.weight", P(LNFW, 0), C, 0, GGUF_F32);
    ADD("output_norm.bias", P(LNFB, 0), C, 0, GGUF_F32);
    ADD("output.weight", P(WTE, 0), V, C, type); /* GPT-2's tied head */
#undef ADD
#undef P
    return 0;
}

/* The GPT-2 model m of base_dir (its config.json, vocab.json and
 * merges.txt) to path. */
static int write_gpt2(const gpt2_model *m, const char *base_dir,
                      const char *path, gguf_type type, size_t *n_tensors)
{
    gguf_writer *w = NULL;
    gguf_vocab v = {0};
    float *scratch = NULL;
    int rc;
    if ((rc = check_config(base_dir)) ||
        (rc = read_tokens(&v, base_dir, m->config.vocab_size)) ||
        (rc = read_merges(&v, base_dir)) || (rc = gguf_writer_new(&w)) ||
        (rc = set_metadata(w, &m->config, type, &v)) ||
        (rc = add_tensors(w, m, type, &scratch, n_tensors)))
        goto out;
    rc = gguf_writer_write(w, path);
out:
    free(scratch);
    gguf_writer_free(w);
    gguf_vocab_free(&v);
    return rc;
}

int export_gguf(store *s, const char *path, gguf_type type,
                export_result *out)
{
    store_txn *t = NULL;
    lm_model m = {0};
    char *base_dir = NULL, **overlay = NULL;
    size_t n_overlay = 0, n_tensors = 0;
    uint64_t head = 0;
    int rc;

    if ((rc = export_gguf_check_path(path))) return rc;
    if ((rc = store_txn_begin(s, &t, 0)) || (rc = store_head(t, &head)) ||
        (rc = modelview_model_dir(t, &base_dir)) ||
        (rc = modelview_load(&m, t)) ||
        (rc = store_tensor_names(t, &overlay, &n_overlay)))
        goto out;
    rc = m.gpt2 ? write_gpt2(m.gpt2, base_dir, path, type, &n_tensors)
                : export_gguf_llama(m.llama, base_dir, path, type, &n_tensors);
    if (!rc && out) {
        out->head = head;
        out->n_tensors = n_tensors;
        out->n_edited = n_overlay;
    }
out:
    store_strings_free(overlay, n_overlay);
    lm_model_free(&m);
    store_txn_abort(t);
    free(base_dir);
    return rc;
}

/* config.json's first architecture; "GPT2LMHeadModel" when it names none
 * (old GPT-2 directories). *arch is malloc'ed. */
static int read_arch(const char *dir, char **arch)
{
    char path[PATH_MAX + 32];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return err_set(ERR_FORMAT, "'%s': %s", path, jerr.text);
    const char *a = json_string_value(
        json_array_get(json_object_get(root, "architectures"), 0));
    *arch = strdup(a ? a : "GPT2LMHeadModel");
    json_decref(root);
    return *arch ? 0 : err_set(ERR_NOMEM, "out of memory");
}

int export_gguf_dir(const char *dir, const char *path, gguf_type type,
                    export_result *out)
{
    gpt2_model g = {0};
    llama_model l = {0};
    char *arch = NULL;
    size_t n_tensors = 0;
    int rc;
    if ((rc = export_gguf_check_path(path)) || (rc = read_arch(dir, &arch)))
        goto out;
    int gpt2 = !strcmp(arch, "GPT2LMHeadModel");
    if (!gpt2) { /* what GGUF cannot express, before reading the weights */
        llama_config c;
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/config.json", dir);
        if ((rc = llama_config_read(&c, path)) ||
            (rc = export_gguf_llama_check(&c, dir)))
            goto out;
    }
    if ((rc = gpt2 ? gpt2_model_load(&g, dir) : llama_model_load(&l, dir)))
        goto out;
    rc = gpt2 ? write_gpt2(&g, dir, path, type, &n_tensors)
              : export_gguf_llama(&l, dir, path, type, &n_tensors);
    if (!rc && out) {
        out->head = 0;
        out->n_tensors = n_tensors;
        out->n_edited = 0;
    }
out:
    free(arch);
    gpt2_model_free(&g);
    llama_model_free(&l);
    return rc;
}
