/* gpt2_config: config.json of a Hugging Face GPT2LMHeadModel (see
 * gpt2_config.h).
 *
 * Reading follows transformers' GPT2Config: a missing field takes GPT-2
 * small's default (vocab 50257, 1024 positions, 768 wide, 12 layers, 12
 * heads, n_inner null = 4*n_embd, epsilon 1e-5). A present field must
 * have the right type and a sane value; each size is capped at 2^24 so
 * that products of a few sizes cannot overflow size_t downstream. Other
 * fields (dropouts, token ids, ...) are ignored on read. Writing emits
 * every field GPT-2's own config.json has, so the exported directory
 * loads wherever the original did. */
#include "model/gpt2_config.h"
#include "base/atomic_file.h"
#include "base/errors.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPT2_CONFIG_MAX_SIZE ((size_t)1 << 24)

/* Reads an optional positive integer field into *out (left alone when
 * the field is missing). */
static int read_size(const char *path, json_t *root, const char *field,
                     size_t *out)
{
    json_t *v = json_object_get(root, field);
    if (!v) return 0;
    if (!json_is_integer(v))
        return err_set(ERR_FORMAT, "'%s': field '%s' must be an integer",
                       path, field);
    json_int_t x = json_integer_value(v);
    if (x <= 0)
        return err_set(ERR_FORMAT, "'%s': field '%s' must be positive, not "
                       "%lld", path, field, (long long)x);
    if ((unsigned long long)x > GPT2_CONFIG_MAX_SIZE)
        return err_set(ERR_FORMAT, "'%s': field '%s' is too large (%lld > "
                       "%zu)", path, field, (long long)x, GPT2_CONFIG_MAX_SIZE);
    *out = (size_t)x;
    return 0;
}

/* An optional string field that must equal `want` when present. */
static int check_string(const char *path, json_t *root, const char *field,
                        const char *want)
{
    json_t *v = json_object_get(root, field);
    if (!v) return 0;
    if (!json_is_string(v))
        return err_set(ERR_FORMAT, "'%s': field '%s' must be a string", path,
                       field);
    if (strcmp(json_string_value(v), want) != 0)
        return err_set(ERR_FORMAT, "'%s': field '%s' is '%s', only '%s' is "
                       "supported", path, field, json_string_value(v), want);
    return 0;
}

int gpt2_config_read(gpt2_config *out, const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line < 0) /* could not open or read the file */
            return err_set(ERR_IO, "'%s': %s", path, jerr.text);
        return err_set(ERR_FORMAT, "'%s': bad JSON at line %d column %d: %s",
                       path, jerr.line, jerr.column, jerr.text);
    }
    int rc = 0;
    gpt2_config c = {
        .n_layer = 12, .n_head = 12, .n_embd = 768, .n_positions = 1024,
        .vocab_size = 50257, .n_inner = 0, .layer_norm_epsilon = 1e-5f,
    };
    if (!json_is_object(root)) {
        rc = err_set(ERR_FORMAT, "'%s': not a JSON object", path);
        goto out;
    }
    if ((rc = check_string(path, root, "model_type", "gpt2")) ||
        (rc = check_string(path, root, "activation_function", "gelu_new")) ||
        (rc = read_size(path, root, "n_layer", &c.n_layer)) ||
        (rc = read_size(path, root, "n_head", &c.n_head)) ||
        (rc = read_size(path, root, "n_embd", &c.n_embd)) ||
        (rc = read_size(path, root, "n_positions", &c.n_positions)) ||
        (rc = read_size(path, root, "vocab_size", &c.vocab_size)))
        goto out;
    json_t *inner = json_object_get(root, "n_inner");
    if (inner && !json_is_null(inner) &&
        (rc = read_size(path, root, "n_inner", &c.n_inner)))
        goto out;
    if (c.n_inner == 0) {
        c.n_inner = 4 * c.n_embd;
        if (c.n_inner > GPT2_CONFIG_MAX_SIZE) {
            rc = err_set(ERR_FORMAT, "'%s': field 'n_inner' (4 * n_embd = %zu) "
                         "is too large (> %zu)", path, c.n_inner,
                         GPT2_CONFIG_MAX_SIZE);
            goto out;
        }
    }
    json_t *eps = json_object_get(root, "layer_norm_epsilon");
    if (eps) {
        if (!json_is_number(eps)) {
            rc = err_set(ERR_FORMAT, "'%s': field 'layer_norm_epsilon' must "
                         "be a number", path);
            goto out;
        }
        double e = json_number_value(eps);
        if (!(e > 0) || !((float)e > 0) || !isfinite((float)e) || e >= 1) {
            rc = err_set(ERR_FORMAT, "'%s': field 'layer_norm_epsilon' must "
                         "be in (0, 1), not %g", path, e);
            goto out;
        }
        c.layer_norm_epsilon = (float)e;
    }
    if (c.n_embd % c.n_head != 0) {
        rc = err_set(ERR_FORMAT, "'%s': field 'n_embd' (%zu) is not divisible "
                     "by field 'n_head' (%zu)", path, c.n_embd, c.n_head);
        goto out;
    }
    *out = c;
out:
    json_decref(root);
    return rc;
}

/* The shortest decimal that reads back as the same float, as a double,
 * so that 1e-5f is written "1e-05" and not "9.9999997473787516e-06". */
static double float_shortest(float x)
{
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)x);
        if (strtof(buf, NULL) == x) break;
    }
    return strtod(buf, NULL);
}

int gpt2_config_write(const gpt2_config *c, const char *path)
{
    const size_t sizes[] = {c->n_layer, c->n_head, c->n_embd, c->n_positions,
                            c->vocab_size, c->n_inner};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (sizes[i] == 0 || sizes[i] > GPT2_CONFIG_MAX_SIZE)
            return err_set(ERR_INVALID, "'%s': a size of the GPT-2 "
                           "configuration is 0 or above %zu", path,
                           GPT2_CONFIG_MAX_SIZE);
    if (c->n_embd % c->n_head != 0 || !(c->layer_norm_epsilon > 0) ||
        !(c->layer_norm_epsilon < 1))
        return err_set(ERR_INVALID, "'%s': inconsistent GPT-2 configuration "
                       "(n_embd %% n_head != 0 or epsilon outside (0, 1))",
                       path);
    json_int_t eos = (json_int_t)c->vocab_size - 1;
    json_t *root = json_pack(
        "{s:s, s:[s], s:f, s:I, s:f, s:I, s:f, s:f, s:s, s:I, s:I, s:I, s:I,"
        " s:I, s:I, s:b, s:f, s:b, s:b, s:n, s:f, s:b, s:s, s:b,"
        " s:{s:{s:b, s:i}}, s:s, s:b, s:I}",
        "activation_function", "gelu_new",
        "architectures", "GPT2LMHeadModel",
        "attn_pdrop", 0.1,
        "bos_token_id", eos,
        "embd_pdrop", 0.1,
        "eos_token_id", eos,
        "initializer_range", 0.02,
        "layer_norm_epsilon", float_shortest(c->layer_norm_epsilon),
        "model_type", "gpt2",
        "n_ctx", (json_int_t)c->n_positions,
        "n_embd", (json_int_t)c->n_embd,
        "n_head", (json_int_t)c->n_head,
        "n_inner", (json_int_t)c->n_inner,
        "n_layer", (json_int_t)c->n_layer,
        "n_positions", (json_int_t)c->n_positions,
        "reorder_and_upcast_attn", 0,
        "resid_pdrop", 0.1,
        "scale_attn_by_inverse_layer_idx", 0,
        "scale_attn_weights", 1,
        "summary_activation",
        "summary_first_dropout", 0.1,
        "summary_proj_to_labels", 1,
        "summary_type", "cls_index",
        "summary_use_proj", 1,
        "task_specific_params", "text-generation", "do_sample", 1,
        "max_length", 50,
        "torch_dtype", "float32",
        "use_cache", 1,
        "vocab_size", (json_int_t)c->vocab_size);
    if (!root) return err_set(ERR_NOMEM, "'%s': cannot build the JSON", path);
    int rc = 0;
    atomic_file *af = NULL;
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    if (!text) {
        rc = err_set(ERR_NOMEM, "'%s': cannot encode the JSON", path);
        goto out;
    }
    if ((rc = atomic_file_open(&af, path)) != 0) goto out;
    if ((rc = atomic_file_write(af, text, strlen(text))) != 0 ||
        (rc = atomic_file_write(af, "\n", 1)) != 0)
        goto out;
    rc = atomic_file_commit(af);
    af = NULL;
out:
    atomic_file_abort(af);
    free(text);
    json_decref(root);
    return rc;
}
