/* llama_config: config.json of the Llama family (see llama_config.h).
 *
 * Reading follows transformers' LlamaConfig, MistralConfig, Qwen2Config
 * and Qwen3Config: the sizes must be there (every real config.json has
 * them, and a default would silently build another network), the rest
 * take the class's default. Rope settings come either the old way,
 * "rope_theta" and "rope_scaling", or the new way, "rope_parameters"
 * {"rope_type", "rope_theta", ...}. A scaling other than llama3 (or
 * "default", which is none) is refused by name: each changes the
 * frequencies or the attention in its own way and we compute only
 * llama3's. Each size is capped at 2^24, as gpt2_config's are, so that
 * products of a few sizes cannot overflow size_t downstream. */
#include "model/llama_config.h"
#include "base/errors.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define LLAMA_CONFIG_MAX_SIZE ((size_t)1 << 24)

static const struct {
    const char *name;
    llama_arch arch;
} arch_table[] = {
    {"LlamaForCausalLM", LLAMA_ARCH_LLAMA},
    {"MistralForCausalLM", LLAMA_ARCH_MISTRAL},
    {"Qwen2ForCausalLM", LLAMA_ARCH_QWEN2},
    {"Qwen3ForCausalLM", LLAMA_ARCH_QWEN3},
};
#define N_ARCH (sizeof arch_table / sizeof *arch_table)

const char *llama_arch_name(llama_arch a)
{
    for (size_t i = 0; i < N_ARCH; i++)
        if (arch_table[i].arch == a) return arch_table[i].name;
    return "?";
}

/* A size field: required (missing is an error) or optional (left alone). */
static int read_size(const char *path, json_t *obj, const char *field,
                     int required, size_t *out)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) {
        if (required)
            return err_set(ERR_FORMAT, "'%s': missing key '%s'", path, field);
        return 0;
    }
    if (!json_is_integer(v))
        return err_set(ERR_FORMAT, "'%s': key '%s' must be an integer", path,
                       field);
    json_int_t x = json_integer_value(v);
    if (x <= 0)
        return err_set(ERR_FORMAT, "'%s': key '%s' must be positive, not "
                       "%lld", path, field, (long long)x);
    if ((unsigned long long)x > LLAMA_CONFIG_MAX_SIZE)
        return err_set(ERR_FORMAT, "'%s': key '%s' is too large (%lld > %zu)",
                       path, field, (long long)x, LLAMA_CONFIG_MAX_SIZE);
    *out = (size_t)x;
    return 0;
}

/* An optional number that must be positive and finite. */
static int read_positive(const char *path, json_t *obj, const char *where,
                         const char *field, double *out)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v))
        return err_set(ERR_FORMAT, "'%s': key '%s%s' must be a number", path,
                       where, field);
    double x = json_number_value(v);
    if (!(x > 0) || !isfinite(x))
        return err_set(ERR_FORMAT, "'%s': key '%s%s' must be positive, not %g",
                       path, where, field, x);
    *out = x;
    return 0;
}

static int read_bool(const char *path, json_t *obj, const char *field,
                     bool *out)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v))
        return err_set(ERR_FORMAT, "'%s': key '%s' must be true or false",
                       path, field);
    *out = json_is_true(v);
    return 0;
}

/* A token id: a non-negative integer below 2^31. */
static int token_id(const json_t *v, int *out)
{
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > INT32_MAX) return -1;
    *out = (int)x;
    return 0;
}

static int read_token_ids(const char *path, json_t *root, llama_config *c)
{
    json_t *v = json_object_get(root, "bos_token_id");
    c->bos_token_id = -1;
    if (v && !json_is_null(v) && token_id(v, &c->bos_token_id))
        return err_set(ERR_FORMAT, "'%s': key 'bos_token_id' must be a token "
                       "id", path);
    v = json_object_get(root, "eos_token_id");
    c->n_eos = 0;
    if (!v || json_is_null(v)) return 0;
    if (json_is_array(v)) {
        if (json_array_size(v) > LLAMA_MAX_EOS)
            return err_set(ERR_FORMAT, "'%s': key 'eos_token_id' lists %zu "
                           "ids, at most %d are supported", path,
                           json_array_size(v), LLAMA_MAX_EOS);
        for (size_t i = 0; i < json_array_size(v); i++)
            if (token_id(json_array_get(v, i), &c->eos_token_ids[c->n_eos++]))
                return err_set(ERR_FORMAT, "'%s': key 'eos_token_id' must be "
                               "a token id or a list of them", path);
        return 0;
    }
    if (token_id(v, &c->eos_token_ids[0]))
        return err_set(ERR_FORMAT, "'%s': key 'eos_token_id' must be a token "
                       "id or a list of them", path);
    c->n_eos = 1;
    return 0;
}

/* rope_theta and the scaling: from "rope_parameters" when present, else
 * from "rope_theta" and "rope_scaling". */
static int read_rope(const char *path, json_t *root, llama_config *c)
{
    json_t *params = json_object_get(root, "rope_parameters");
    json_t *scaling = json_object_get(root, "rope_scaling");
    const char *where = "rope_scaling.";
    int rc;
    if (params && !json_is_null(params)) {
        if (!json_is_object(params))
            return err_set(ERR_FORMAT, "'%s': key 'rope_parameters' must be an "
                           "object", path);
        if ((rc = read_positive(path, params, "rope_parameters.", "rope_theta",
                                &c->rope_theta)))
            return rc;
        scaling = params;
        where = "rope_parameters.";
    } else {
        if ((rc = read_positive(path, root, "", "rope_theta", &c->rope_theta)))
            return rc;
    }
    /* a rotation of part of each head (transformers' partial_rotary_factor)
     * is none of these architectures' and not computed here */
    json_t *prf = json_object_get(params && json_is_object(params) ? params
                                                                    : root,
                                  "partial_rotary_factor");
    if (!prf && params) prf = json_object_get(root, "partial_rotary_factor");
    if (prf && !json_is_null(prf) &&
        (!json_is_number(prf) || json_number_value(prf) != 1.0))
        return err_set(ERR_FORMAT, "'%s': key 'partial_rotary_factor' is not "
                       "supported (only 1)", path);
    if (!scaling || json_is_null(scaling)) return 0;
    if (!json_is_object(scaling))
        return err_set(ERR_FORMAT, "'%s': key '%.*s' must be an object", path,
                       (int)strlen(where) - 1, where);
    json_t *type = json_object_get(scaling, "rope_type");
    const char *tkey = "rope_type";
    if (!type) {
        type = json_object_get(scaling, "type");
        tkey = "type";
    }
    if (!type || json_is_null(type)) {
        if (scaling == params) return 0; /* rope_theta alone */
        return err_set(ERR_FORMAT, "'%s': key '%srope_type' is missing", path,
                       where);
    }
    if (!json_is_string(type))
        return err_set(ERR_FORMAT, "'%s': key '%s%s' must be a string", path,
                       where, tkey);
    const char *t = json_string_value(type);
    if (!strcmp(t, "default")) return 0;
    if (strcmp(t, "llama3") != 0)
        return err_set(ERR_FORMAT, "'%s': rope scaling type '%s' is not "
                       "supported (only 'llama3')", path, t);
    static const char *keys[] = {"factor", "low_freq_factor",
                                 "high_freq_factor",
                                 "original_max_position_embeddings"};
    double *dst[] = {&c->rope_factor, &c->rope_low_freq_factor,
                     &c->rope_high_freq_factor, NULL};
    for (int i = 0; i < 4; i++) {
        if (!json_object_get(scaling, keys[i]))
            return err_set(ERR_FORMAT, "'%s': missing key '%s%s' of the "
                           "llama3 rope scaling", path, where, keys[i]);
        if (i == 3) {
            if ((rc = read_size(path, scaling, keys[i], 1,
                                &c->rope_original_max_positions)))
                return rc;
        } else if ((rc = read_positive(path, scaling, where, keys[i], dst[i]))) {
            return rc;
        }
    }
    if (!(c->rope_high_freq_factor > c->rope_low_freq_factor))
        return err_set(ERR_FORMAT, "'%s': key '%shigh_freq_factor' (%g) must "
                       "exceed '%slow_freq_factor' (%g)", path, where,
                       c->rope_high_freq_factor, where,
                       c->rope_low_freq_factor);
    c->rope_llama3 = true;
    return 0;
}

/* The attention window in force: Mistral's sliding_window when set,
 * Qwen's only when use_sliding_window says so. */
static int read_window(const char *path, json_t *root, llama_config *c)
{
    bool use = c->arch == LLAMA_ARCH_MISTRAL;
    int rc;
    if (c->arch == LLAMA_ARCH_QWEN2 || c->arch == LLAMA_ARCH_QWEN3)
        if ((rc = read_bool(path, root, "use_sliding_window", &use))) return rc;
    c->sliding_window = 0;
    if (!use) return 0;
    return read_size(path, root, "sliding_window", 0, &c->sliding_window);
}

static int read_config(const char *path, json_t *root, llama_config *c)
{
    int rc;
    if (!json_is_object(root))
        return err_set(ERR_FORMAT, "'%s': not a JSON object", path);
    json_t *archs = json_object_get(root, "architectures");
    if (!archs || json_is_null(archs))
        return err_set(ERR_FORMAT, "'%s': missing key 'architectures'", path);
    if (!json_is_array(archs) || json_array_size(archs) == 0 ||
        !json_is_string(json_array_get(archs, 0)))
        return err_set(ERR_FORMAT, "'%s': key 'architectures' must be a list "
                       "of names", path);
    const char *name = json_string_value(json_array_get(archs, 0));
    size_t a = 0;
    while (a < N_ARCH && strcmp(arch_table[a].name, name) != 0) a++;
    if (a == N_ARCH)
        return err_set(ERR_FORMAT, "'%s': unknown architecture '%s' (supported: "
                       "GPT2LMHeadModel, LlamaForCausalLM, "
                       "MistralForCausalLM, Qwen2ForCausalLM, "
                       "Qwen3ForCausalLM)", path, name);
    c->arch = arch_table[a].arch;

    json_t *act = json_object_get(root, "hidden_act");
    if (act && !json_is_null(act) &&
        (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0))
        return err_set(ERR_FORMAT, "'%s': key 'hidden_act' is %s%s%s, only "
                       "'silu' is supported", path,
                       json_is_string(act) ? "'" : "",
                       json_is_string(act) ? json_string_value(act) : "not a "
                       "string", json_is_string(act) ? "'" : "");
    if ((rc = read_size(path, root, "hidden_size", 1, &c->n_embd)) ||
        (rc = read_size(path, root, "intermediate_size", 1, &c->n_inner)) ||
        (rc = read_size(path, root, "num_hidden_layers", 1, &c->n_layer)) ||
        (rc = read_size(path, root, "num_attention_heads", 1, &c->n_head)) ||
        (rc = read_size(path, root, "vocab_size", 1, &c->vocab_size)))
        return rc;
    c->n_kv_head = c->n_head;
    c->head_dim = 0;
    c->n_positions = c->arch == LLAMA_ARCH_LLAMA     ? 2048
                     : c->arch == LLAMA_ARCH_MISTRAL ? 4096 * 32
                                                     : 32768;
    if ((rc = read_size(path, root, "num_key_value_heads", 0, &c->n_kv_head)) ||
        (rc = read_size(path, root, "head_dim", 0, &c->head_dim)) ||
        (rc = read_size(path, root, "max_position_embeddings", 0,
                        &c->n_positions)))
        return rc;
    if (!c->head_dim) {
        if (c->arch == LLAMA_ARCH_QWEN3) {
            c->head_dim = 128;
        } else {
            if (c->n_embd % c->n_head)
                return err_set(ERR_FORMAT, "'%s': key 'hidden_size' (%zu) is "
                               "not divisible by 'num_attention_heads' (%zu) "
                               "and no 'head_dim' is given", path, c->n_embd,
                               c->n_head);
            c->head_dim = c->n_embd / c->n_head;
        }
    }
    if (c->n_head % c->n_kv_head)
        return err_set(ERR_FORMAT, "'%s': key 'num_attention_heads' (%zu) is "
                       "not a multiple of 'num_key_value_heads' (%zu)", path,
                       c->n_head, c->n_kv_head);
    if (c->head_dim % 2)
        return err_set(ERR_FORMAT, "'%s': key 'head_dim' (%zu) must be even "
                       "for rotary embeddings", path, c->head_dim);
    if (c->n_head * c->head_dim > LLAMA_CONFIG_MAX_SIZE)
        return err_set(ERR_FORMAT, "'%s': num_attention_heads x head_dim = %zu "
                       "is too large", path, c->n_head * c->head_dim);

    double eps = 1e-6;
    if ((rc = read_positive(path, root, "", "rms_norm_eps", &eps))) return rc;
    if (!(eps < 1) || !((float)eps > 0))
        return err_set(ERR_FORMAT, "'%s': key 'rms_norm_eps' must be in (0, 1), "
                       "not %g", path, eps);
    c->rms_norm_eps = (float)eps;
    c->rope_theta = 10000.0;
    if ((rc = read_rope(path, root, c))) return rc;
    if ((rc = read_window(path, root, c))) return rc;

    c->tie_word_embeddings = false;
    bool attention_bias = false, mlp_bias = false;
    if ((rc = read_bool(path, root, "tie_word_embeddings",
                        &c->tie_word_embeddings)) ||
        (rc = read_bool(path, root, "attention_bias", &attention_bias)) ||
        (rc = read_bool(path, root, "mlp_bias", &mlp_bias)))
        return rc;
    /* transformers: Qwen2 has q, k, v biases always and no o bias; Llama
     * and Qwen3 put attention_bias on all four; Mistral has none; only
     * Llama reads mlp_bias */
    switch (c->arch) {
    case LLAMA_ARCH_QWEN2:
        c->qkv_bias = true;
        break;
    case LLAMA_ARCH_LLAMA:
        c->mlp_bias = mlp_bias;
        /* fall through */
    case LLAMA_ARCH_QWEN3:
        c->qkv_bias = c->o_bias = attention_bias;
        break;
    case LLAMA_ARCH_MISTRAL:
        break;
    }
    c->qk_norm = c->arch == LLAMA_ARCH_QWEN3;
    return read_token_ids(path, root, c);
}

int llama_config_read(llama_config *out, const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line < 0) /* could not open or read the file */
            return err_set(ERR_IO, "'%s': %s", path, jerr.text);
        return err_set(ERR_FORMAT, "'%s': bad JSON at line %d column %d: %s",
                       path, jerr.line, jerr.column, jerr.text);
    }
    llama_config c;
    memset(&c, 0, sizeof c);
    int rc = read_config(path, root, &c);
    json_decref(root);
    if (!rc) *out = c;
    return rc;
}

void llama_config_inv_freq(const llama_config *c, double *inv_freq)
{
    size_t D = c->head_dim, half = D / 2;
    for (size_t i = 0; i < half; i++)
        inv_freq[i] = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)D);
    if (!c->rope_llama3) return;
    /* transformers' _compute_llama3_parameters: wavelengths longer than
     * old/low are slowed by factor, shorter than old/high kept, the band
     * between interpolated */
    double factor = c->rope_factor, lo = c->rope_low_freq_factor,
           hi = c->rope_high_freq_factor,
           old = (double)c->rope_original_max_positions;
    double lo_wavelen = old / lo, hi_wavelen = old / hi;
    for (size_t i = 0; i < half; i++) {
        double f = inv_freq[i], wavelen = 2 * M_PI / f;
        if (wavelen > lo_wavelen) {
            inv_freq[i] = f / factor;
        } else if (wavelen >= hi_wavelen) {
            double smooth = (old / wavelen - lo) / (hi - lo);
            inv_freq[i] = (1 - smooth) * f / factor + smooth * f;
        }
    }
}
