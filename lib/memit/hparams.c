/* hparams: defaults, JSON overrides and validation of the editing
 * hyperparameters (see hparams.h). The reference values are kmeng01/
 * memit's hparams/MEMIT/gpt2-xl.json; the defaults here were tuned on
 * our small world models (see bench/ and docs/quality.md). */
#include "memit/hparams.h"
#include "base/errors.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void hparams_default(hparams *h, const lm_config *c)
{
    memset(h, 0, sizeof *h);
    size_t L = c->n_layer;
    h->mom2_update_weight = 20000;
    h->v_lr = 0.5;
    h->v_num_grad_steps = 20;
    h->v_weight_decay = 0.5;
    h->kl_factor = 0.0625;
    h->clamp_norm_factor = 0.75;
    h->nll_stop = 0.05;
    h->n_prefixes = 4;
    h->prefix_tokens = 6;
    h->seed = 1;
    h->facts_per_group = 16;
    h->z_chunk_mib = 512;
    h->stats_samples = 100000;
    h->rome_ridge = 1e-4;
    /* a new batch keeps the committed edits where they are (measured on
     * the benchmark world's ten nightly batches: docs/quality.md,
     * "What each setting did") */
    h->protect_committed = 1;
    h->rounds = 1;
    h->round_halvings = 3;
    if (L >= 12 && c->family == LM_LLAMA) {
        /* the Llama family: AlphaEdit's and MEMIT's published settings
         * for Llama 3 8B (hparams/AlphaEdit/Llama3-8B.json: layers 4-8 of
         * 32, lambda 15000, 25 steps at lr 0.1), the band scaled to the
         * model's depth */
        for (size_t l = (L * 4 + 16) / 32; l <= (L * 8 + 16) / 32 &&
                                           h->n_layers < HPARAMS_MAX_LAYERS; l++)
            h->layers[h->n_layers++] = l;
        h->mom2_update_weight = 15000;
        h->v_lr = 0.1;
        h->v_num_grad_steps = 25;
        return;
    }
    if (L >= 12) {
        /* GPT-2-sized models: MEMIT's band for GPT-2 XL (layers 13-17
         * of 48, hparams/MEMIT/gpt2-xl.json), scaled to the depth:
         * GPT-2 small 3-4, medium 7-9, large 10-13 */
        for (size_t l = (13 * L + 24) / 48; l <= (17 * L + 24) / 48 &&
                                            h->n_layers < HPARAMS_MAX_LAYERS; l++)
            h->layers[h->n_layers++] = l;
        return;
    }
    /* Small models (our world models, up to 8 layers): they recall a fact
     * through the subject's last token only in their first layers, their
     * residual stream is small next to what a fact needs, and they never
     * saw text behind a context prefix. Measured on world-tiny (docs/quality.md,
     * "world-tiny and the built-in defaults"): layers 0-1, a larger clamp, no prefixes, and
     * six rounds of small steps (a lambda of 2000 against the world's own
     * text): on world-tiny's batch of all 64 subjects ES 100 and NS 80
     * where one round at lambda 200 gave 81 and 70. */
    h->layers[h->n_layers++] = 0;
    if (L >= 4) h->layers[h->n_layers++] = 1;
    h->mom2_update_weight = 2000;
    h->rounds = 6;
    h->clamp_norm_factor = 4;
    h->n_prefixes = 0;
}

static int check_layers(const hparams *h, const lm_config *c)
{
    if (h->n_layers == 0)
        return err_set(ERR_INVALID, "hparams: 'layers' is empty");
    for (size_t i = 0; i < h->n_layers; i++) {
        if (h->layers[i] >= c->n_layer)
            return err_set(ERR_INVALID, "hparams: layer %zu is outside the "
                           "model's %zu layers", h->layers[i], c->n_layer);
        if (i && h->layers[i] <= h->layers[i - 1])
            return err_set(ERR_INVALID, "hparams: 'layers' must ascend");
    }
    return 0;
}

int hparams_parse_layers(hparams *h, const char *text, const lm_config *c)
{
    hparams tmp = *h;
    tmp.n_layers = 0;
    const char *p = text;
    if (!*p) goto bad;
    while (*p) {
        char *end;
        /* digits only: strtol alone would take signs and spaces */
        if (!isdigit((unsigned char)*p)) goto bad;
        long a = strtol(p, &end, 10), b;
        if (a < 0 || a > 1000000) goto bad;
        b = a;
        if (*end == '-') {
            p = end + 1;
            if (!isdigit((unsigned char)*p)) goto bad;
            b = strtol(p, &end, 10);
            if (b < a || b > 1000000) goto bad;
        }
        for (long l = a; l <= b; l++) {
            if (tmp.n_layers == HPARAMS_MAX_LAYERS)
                return err_set(ERR_INVALID, "hparams: more than %d layers",
                               HPARAMS_MAX_LAYERS);
            tmp.layers[tmp.n_layers++] = (size_t)l;
        }
        p = end;
        if (*p == ',' && p[1]) p++;
        else if (*p) goto bad;
    }
    int rc = check_layers(&tmp, c);
    if (rc) return rc;
    *h = tmp;
    return 0;
bad:
    return err_set(ERR_INVALID, "layers '%s': expected a list such as "
                   "'1,2,3' or '1-3' (ascending)", text);
}

typedef struct {
    const char *key;
    size_t offset;
    int is_int;   /* size_t (1), uint64_t (2) or double (0) */
} field;

#define D(name) {#name, offsetof(hparams, name), 0}
#define Z(name) {#name, offsetof(hparams, name), 1}
static const field fields[] = {
    D(mom2_update_weight), D(v_lr), Z(v_num_grad_steps), D(v_weight_decay),
    D(kl_factor), D(clamp_norm_factor), D(nll_stop), Z(n_prefixes),
    Z(prefix_tokens), {"seed", offsetof(hparams, seed), 2},
    Z(facts_per_group), Z(z_chunk_mib), Z(stats_samples), D(rome_ridge), D(mom2_ridge),
    D(protect_committed), D(nullspace_threshold), Z(joint_layers), Z(rounds),
    D(round_min_shift), Z(round_halvings),
};
#undef D
#undef Z
static const size_t n_fields = sizeof fields / sizeof fields[0];

int hparams_apply_json(hparams *h, const char *json, const lm_config *c)
{
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    hparams tmp = *h;
    int rc = 0;
    if (!root || !json_is_object(root)) {
        rc = err_set(ERR_INVALID, "hparams: not a JSON object: %s",
                     root ? "" : jerr.text);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "layers")) {
            if (!json_is_array(v) || json_array_size(v) > HPARAMS_MAX_LAYERS) {
                rc = err_set(ERR_INVALID, "hparams: 'layers' must be an "
                             "array of at most %d layer numbers",
                             HPARAMS_MAX_LAYERS);
                goto out;
            }
            tmp.n_layers = json_array_size(v);
            for (size_t i = 0; i < tmp.n_layers; i++) {
                json_t *e = json_array_get(v, i);
                if (!json_is_integer(e) || json_integer_value(e) < 0) {
                    rc = err_set(ERR_INVALID, "hparams: 'layers' must hold "
                                 "non-negative integers");
                    goto out;
                }
                tmp.layers[i] = (size_t)json_integer_value(e);
            }
            continue;
        }
        size_t i = 0;
        while (i < n_fields && strcmp(fields[i].key, key)) i++;
        if (i == n_fields) {
            rc = err_set(ERR_INVALID, "hparams: unknown key '%s'", key);
            goto out;
        }
        char *dst = (char *)&tmp + fields[i].offset;
        if (fields[i].is_int) {
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                rc = err_set(ERR_INVALID, "hparams: '%s' must be a "
                             "non-negative integer", key);
                goto out;
            }
            if (fields[i].is_int == 1)
                *(size_t *)dst = (size_t)json_integer_value(v);
            else
                *(uint64_t *)dst = (uint64_t)json_integer_value(v);
        } else {
            if (!json_is_number(v) || json_number_value(v) < 0) {
                rc = err_set(ERR_INVALID, "hparams: '%s' must be a "
                             "non-negative number", key);
                goto out;
            }
            *(double *)dst = json_number_value(v);
        }
    }
    if (tmp.facts_per_group == 0) tmp.facts_per_group = 1;
    if (tmp.joint_layers > 1) {
        rc = err_set(ERR_INVALID, "hparams: 'joint_layers' must be 0 or 1");
        goto out;
    }
    if (tmp.joint_layers && tmp.nullspace_threshold > 0) {
        rc = err_set(ERR_INVALID, "hparams: joint_layers and "
                     "nullspace_threshold cannot be used together");
        goto out;
    }
    rc = check_layers(&tmp, c);
    if (!rc) *h = tmp;
out:
    json_decref(root);
    return rc;
}

char *hparams_to_json(const hparams *h)
{
    json_t *root = json_object(), *layers = json_array();
    for (size_t i = 0; i < h->n_layers; i++)
        json_array_append_new(layers, json_integer((json_int_t)h->layers[i]));
    json_object_set_new(root, "layers", layers);
    for (size_t i = 0; i < n_fields; i++) {
        const char *src = (const char *)h + fields[i].offset;
        json_t *v;
        if (fields[i].is_int == 1)
            v = json_integer((json_int_t) * (const size_t *)src);
        else if (fields[i].is_int == 2)
            v = json_integer((json_int_t) * (const uint64_t *)src);
        else
            v = json_real(*(const double *)src);
        json_object_set_new(root, fields[i].key, v);
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}
