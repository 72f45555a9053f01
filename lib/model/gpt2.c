/* gpt2: the GPT-2 network (see gpt2.h). The parameters are found per
 * layer through one pointer table (gpt2_model.tensors), each tensor in
 * Hugging Face's layout, byte for byte the tensor of model.safetensors:
 * a model made here points it into one contiguous buffer in gpt2_params
 * order; a loaded one into the read-only map of its file, except for
 * the copies it owns (converted dtypes, tensors handed out writable).
 * The layers are the linalg kernels; this file owns the wiring:
 * parameter table, loading (in place) and saving, the activation
 * workspace, the forward pass with MEMIT's partial passes and hook, and
 * the backward pass.
 *
 * Activations are kept per layer in llm.c's (L, B, T, ...) layout with a
 * layer stride sized for the workspace's maximum B x T, so a pass over
 * fewer tokens leaves each layer's (B, T, ...) block contiguous. The
 * hook's addition goes to a separate buffer (`hooked`), never into the
 * stored block output, which is what lets MEMIT rerun the top of the
 * network with new vectors. ln_f and the head run only on the rows named
 * by logit_pos. The backward pass carries one (B, T, C) residual
 * gradient down the blocks and accumulates into it in place.
 *
 * Workspaces for passes that need less keep less (gpt2_acts_new_from, as
 * llama.c's): every per-layer buffer but the MLP keys and the block
 * outputs is "shared", found through slot(): with GPT2_ACTS_FORWARD_ONLY
 * the layers share one slot of it, with a first layer the layers up to
 * it share its slot; GPT2_ACTS_LOGITS_ONLY also keeps one layer's keys
 * and two block outputs. A workspace from a layer above 0 computes no
 * weight gradients, so the inputs of the matmuls that only those read
 * (ln1, atty, ln2) share one slot across all layers. The kernels and
 * their order are the same in every workspace, so are the results, bit
 * for bit. */
#include "model/gpt2.h"
#include "base/errors.h"
#include "base/linalg.h"
#include "model/safetensors.h"
#include "base/splitmix.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- the parameter table ---------------------------------------------- */

static const char *const tensor_suffix[GPT2_NUM_TENSORS] = {
    "wte.weight",         "wpe.weight",        "ln_1.weight",
    "ln_1.bias",          "attn.c_attn.weight", "attn.c_attn.bias",
    "attn.c_proj.weight", "attn.c_proj.bias",  "ln_2.weight",
    "ln_2.bias",          "mlp.c_fc.weight",   "mlp.c_fc.bias",
    "mlp.c_proj.weight",  "mlp.c_proj.bias",   "ln_f.weight",
    "ln_f.bias",
};

static int tensor_per_layer(int i) { return i >= 2 && i <= 13; }

/* Shape of one layer's slice of tensor i. */
static void tensor_shape(const gpt2_config *c, int i, size_t shape[2],
                         int *ndim)
{
    size_t C = c->n_embd, F = c->n_inner, rows = C, cols = 0;
    switch (i) {
    case 0: rows = c->vocab_size; cols = C; break;   /* wte */
    case 1: rows = c->n_positions; cols = C; break;  /* wpe */
    case 4: cols = 3 * C; break;                     /* c_attn.weight */
    case 5: rows = 3 * C; break;                     /* c_attn.bias */
    case 6: cols = C; break;                         /* attn.c_proj.weight */
    case 10: cols = F; break;                        /* c_fc.weight */
    case 11: rows = F; break;                        /* c_fc.bias */
    case 12: rows = F; cols = C; break;              /* mlp.c_proj.weight */
    default: break;                                  /* (C) vectors */
    }
    shape[0] = rows;
    shape[1] = cols;
    *ndim = cols ? 2 : 1;
}

static float **param_ptr(gpt2_params *p, int i) { return (float **)p + i; }

/* Layer l's slice of tensor i (global tensors: l = 0). */
#define W(m, i, l) gpt2_layer_tensor((m), (i), (l))

static int alloc_table(gpt2_model *m)
{
    size_t n = GPT2_NUM_TENSORS * m->config.n_layer;
    m->tensors = calloc(n, sizeof *m->tensors);
    return m->tensors ? 0 : err_set(ERR_NOMEM, "no memory for gpt2 tensors");
}

static void set_pointers(gpt2_model *m)
{
    float *ptr = m->memory;
    size_t L = m->config.n_layer;
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) {
        *param_ptr(&m->p, i) = ptr;
        size_t layers = tensor_per_layer(i) ? L : 1;
        for (size_t l = 0; l < layers; l++)
            m->tensors[(size_t)i * L + l] = ptr + l * (m->sizes[i] / layers);
        ptr += m->sizes[i];
    }
}

/* Checks c and sets m's config and tensor sizes (nothing allocated). */
static int set_shape(gpt2_model *m, const gpt2_config *c)
{
    memset(m, 0, sizeof *m);
    gpt2_config k = *c;
    if (!k.n_inner) k.n_inner = 4 * k.n_embd;
    if (!(k.layer_norm_epsilon > 0)) k.layer_norm_epsilon = 1e-5f;
    if (!k.n_layer || !k.n_head || !k.n_embd || !k.n_positions ||
        !k.vocab_size)
        return err_set(ERR_INVALID, "gpt2 config has a zero size");
    if (k.n_embd % k.n_head)
        return err_set(ERR_INVALID, "gpt2 n_embd %zu is not a multiple of "
                       "n_head %zu", k.n_embd, k.n_head);
    if (k.vocab_size > (size_t)1 << 30 || k.n_embd > (size_t)1 << 20 ||
        k.n_inner > (size_t)1 << 22 || k.n_positions > (size_t)1 << 20 ||
        k.n_layer > 4096)
        return err_set(ERR_INVALID, "gpt2 config sizes are out of range");
    m->config = k;
    size_t L = k.n_layer, C = k.n_embd, F = k.n_inner;
    size_t s[GPT2_NUM_TENSORS] = {
        k.vocab_size * C, k.n_positions * C, L * C, L * C, L * C * 3 * C,
        L * 3 * C,        L * C * C,         L * C, L * C, L * C,
        L * C * F,        L * F,             L * F * C, L * C, C, C};
    m->num_parameters = 0;
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) {
        m->sizes[i] = s[i];
        m->num_parameters += s[i];
    }
    return 0;
}

int gpt2_model_init(gpt2_model *m, const gpt2_config *c)
{
    int rc = set_shape(m, c);
    if (rc) return rc;
    m->memory = calloc(m->num_parameters, sizeof(float));
    if (!m->memory || alloc_table(m)) {
        size_t n = m->num_parameters;
        gpt2_model_free(m);
        return err_set(ERR_NOMEM, "no memory for %zu gpt2 parameters", n);
    }
    set_pointers(m);
    return 0;
}

void gpt2_model_free(gpt2_model *m)
{
    if (!m) return;
    for (size_t i = 0; m->owned && i < GPT2_NUM_TENSORS * m->config.n_layer;
         i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->tensors);
    free(m->memory);
    safetensors_close(m->file);
    memset(m, 0, sizeof *m);
}

size_t gpt2_model_owned_bytes(const gpt2_model *m)
{
    if (m->memory) return m->num_parameters * sizeof(float);
    size_t n = 0, L = m->config.n_layer;
    for (int i = 0; m->owned && i < GPT2_NUM_TENSORS; i++) {
        size_t layers = tensor_per_layer(i) ? L : 1;
        for (size_t l = 0; l < layers; l++)
            if (m->owned[(size_t)i * L + l])
                n += m->sizes[i] / layers * sizeof(float);
    }
    return n;
}

static double rng_normal(uint64_t *s)
{
    double u1 = ((splitmix_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = splitmix_unit(s);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void gpt2_model_init_random(gpt2_model *m, uint64_t seed)
{
    uint64_t s = seed;
    double resid_std = 0.02 / sqrt(2.0 * m->config.n_layer);
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) {
        float *t = *param_ptr(&m->p, i);
        size_t n = m->sizes[i];
        int is_ln_weight = i == 2 || i == 8 || i == 14;
        int is_bias = i == 3 || i == 5 || i == 7 || i == 9 || i == 11 ||
                      i == 13 || i == 15;
        double std = (i == 6 || i == GPT2_FCPROJW) ? resid_std : 0.02;
        for (size_t j = 0; j < n; j++)
            t[j] = is_ln_weight ? 1.0f
                   : is_bias    ? 0.0f
                                : (float)(std * rng_normal(&s));
    }
}

/* Parses "h.<layer>.<suffix>" or a global name, without the prefix.
 * Returns the tensor index or -1; *layer gets the layer (0 if global). */
static int parse_name(const char *name, size_t *layer)
{
    if (!strncmp(name, "transformer.", 12)) name += 12;
    *layer = 0;
    if (!strncmp(name, "h.", 2) && name[2] >= '0' && name[2] <= '9') {
        const char *p = name + 2;
        size_t l = 0;
        while (*p >= '0' && *p <= '9') {
            if (l > 100000) return -1;
            l = l * 10 + (size_t)(*p++ - '0');
        }
        if (*p != '.' || (p - name > 3 && name[2] == '0')) return -1;
        for (int i = 0; i < GPT2_NUM_TENSORS; i++)
            if (tensor_per_layer(i) && !strcmp(p + 1, tensor_suffix[i])) {
                *layer = l;
                return i;
            }
        return -1;
    }
    for (int i = 0; i < GPT2_NUM_TENSORS; i++)
        if (!tensor_per_layer(i) && !strcmp(name, tensor_suffix[i])) return i;
    return -1;
}

/* The table index of `name` and the values per layer; -1 when unknown. */
static long tensor_index(const gpt2_model *m, const char *name, size_t *per,
                         size_t sh[2], int *nd)
{
    size_t layer;
    int i = parse_name(name, &layer);
    if (i < 0 || !m->tensors) return -1;
    *per = m->sizes[i];
    if (tensor_per_layer(i)) {
        if (layer >= m->config.n_layer) return -1;
        *per /= m->config.n_layer;
    }
    tensor_shape(&m->config, i, sh, nd);
    return (long)((size_t)i * m->config.n_layer + layer);
}

const float *gpt2_tensor(const gpt2_model *m, const char *name,
                         size_t *numel, size_t shape[2], int *ndim)
{
    size_t per, sh[2];
    int nd;
    long k = tensor_index(m, name, &per, sh, &nd);
    if (k < 0) return NULL;
    if (numel) *numel = per;
    if (shape) {
        shape[0] = sh[0];
        shape[1] = sh[1];
    }
    if (ndim) *ndim = nd;
    return m->tensors[k];
}

float *gpt2_tensor_mut(gpt2_model *m, const char *name, size_t *numel)
{
    size_t per, sh[2];
    int nd;
    long k = tensor_index(m, name, &per, sh, &nd);
    if (numel) *numel = 0;
    if (k < 0) {
        err_set(ERR_FORMAT, "'%s' is not a tensor of the model", name);
        return NULL;
    }
    if (numel) *numel = per;
    if (m->memory) return (float *)m->tensors[k]; /* our own buffer */
    if (!m->owned[k]) {
        float *copy = malloc(per * sizeof *copy);
        if (!copy) {
            err_set(ERR_NOMEM, "no memory to copy tensor '%s'", name);
            return NULL;
        }
        memcpy(copy, m->tensors[k], per * sizeof *copy);
        m->owned[k] = copy;
        m->tensors[k] = copy;
    }
    return m->owned[k];
}

void gpt2_tensor_name(char *buf, size_t size, int index, size_t layer)
{
    if (index < 0 || index >= GPT2_NUM_TENSORS) {
        snprintf(buf, size, "?");
    } else if (tensor_per_layer(index)) {
        snprintf(buf, size, "h.%zu.%s", layer, tensor_suffix[index]);
    } else {
        snprintf(buf, size, "%s", tensor_suffix[index]);
    }
}

/* ---- loading and saving ------------------------------------------------ */

static char *path_join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static void format_shape(char *buf, size_t size, const size_t *shape,
                         int ndim)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, size - o, "[");
    for (int d = 0; d < ndim && o < size; d++)
        o += (size_t)snprintf(buf + o, size - o, "%s%zu", d ? ", " : "",
                              shape[d]);
    if (o < size) snprintf(buf + o, size - o, "]");
}

/* The tensor named `name` (unprefixed) in f, with or without the
 * "transformer." prefix. Both present is an error. */
static int find_tensor(const st_file *f, const char *path, const char *name,
                       const st_tensor **out)
{
    char pre[256];
    snprintf(pre, sizeof pre, "transformer.%s", name);
    const st_tensor *a = safetensors_find(f, pre), *b = safetensors_find(f, name);
    if (a && b)
        return err_set(ERR_FORMAT, "'%s': tensor '%s' appears both with and "
                       "without the 'transformer.' prefix", path, name);
    *out = a ? a : b;
    if (!*out)
        return err_set(ERR_FORMAT, "'%s': missing tensor '%s'", path, name);
    return 0;
}

/* Checks the tensors that are not GPT-2 parameters: layers beyond
 * n_layer mean config.json disagrees with the file; lm_head.weight must
 * be wte (the head is tied). Anything else (attn.bias, ...) is ignored. */
static int check_extra_tensors(const gpt2_model *m, const st_file *f,
                               const char *path)
{
    for (size_t i = 0; i < safetensors_count(f); i++) {
        const st_tensor *t = safetensors_at(f, i);
        const char *name = t->name;
        if (!strncmp(name, "transformer.", 12)) name += 12;
        if (!strncmp(name, "h.", 2) && name[2] >= '0' && name[2] <= '9') {
            size_t l = strtoul(name + 2, NULL, 10);
            if (l >= m->config.n_layer)
                return err_set(ERR_FORMAT, "'%s': tensor '%s' is beyond "
                               "n_layer = %zu of config.json", path, t->name,
                               m->config.n_layer);
        }
        if (!strcmp(t->name, "lm_head.weight")) {
            size_t V = m->config.vocab_size, C = m->config.n_embd;
            if (t->ndim != 2 || t->shape[0] != V || t->shape[1] != C)
                return err_set(ERR_FORMAT, "'%s': tensor 'lm_head.weight' "
                               "does not have wte's shape", path);
            int same;
            if (t->dtype == ST_F32) { /* compared in the map, not copied */
                same = !memcmp(t->data, W(m, GPT2_WTE, 0),
                               V * C * sizeof(float));
            } else {
                float *tmp = malloc(V * C * sizeof *tmp);
                if (!tmp)
                    return err_set(ERR_NOMEM, "no memory to read '%s'", path);
                safetensors_to_f32(t, tmp);
                same = !memcmp(tmp, W(m, GPT2_WTE, 0), V * C * sizeof *tmp);
                free(tmp);
            }
            if (!same)
                return err_set(ERR_FORMAT, "'%s': tensor 'lm_head.weight' "
                               "differs from wte (untied heads are not "
                               "supported)", path);
        }
    }
    return 0;
}

/* Points table entry k at tensor t of the map when it is F32 and 4-byte
 * aligned; otherwise converts it into an owned F32 copy. */
static int use_tensor(gpt2_model *m, size_t k, const st_tensor *t,
                      const char *path)
{
    if (t->dtype == ST_F32 && (uintptr_t)t->data % sizeof(float) == 0) {
        m->tensors[k] = t->data;
        return 0;
    }
    float *copy = malloc((t->numel ? t->numel : 1) * sizeof *copy);
    if (!copy)
        return err_set(ERR_NOMEM, "'%s': no memory to convert tensor '%s'",
                       path, t->name);
    safetensors_to_f32(t, copy);
    m->owned[k] = copy;
    m->tensors[k] = copy;
    return 0;
}

/* Finds, checks and uses every tensor GPT-2 needs from f. */
static int use_tensors(gpt2_model *m, const st_file *f, const char *spath)
{
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) {
        size_t layers = tensor_per_layer(i) ? m->config.n_layer : 1;
        for (size_t l = 0; l < layers; l++) {
            char name[128], have[96], want[96];
            size_t shape[2];
            int ndim, rc;
            const st_tensor *t;
            gpt2_tensor_name(name, sizeof name, i, l);
            if ((rc = find_tensor(f, spath, name, &t))) return rc;
            tensor_shape(&m->config, i, shape, &ndim);
            int ok = t->ndim == ndim &&
                     t->numel == m->sizes[i] / layers;
            for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
            if (!ok) {
                format_shape(have, sizeof have, t->shape, t->ndim);
                format_shape(want, sizeof want, shape, ndim);
                return err_set(ERR_FORMAT, "'%s': tensor '%s' has shape %s, "
                               "config.json implies %s", spath, t->name, have,
                               want);
            }
            if ((rc = use_tensor(m, (size_t)i * m->config.n_layer + l, t,
                                 spath)))
                return rc;
        }
    }
    return 0;
}

int gpt2_model_load(gpt2_model *m, const char *dir)
{
    memset(m, 0, sizeof *m);
    char *cpath = path_join(dir, "config.json");
    char *spath = path_join(dir, "model.safetensors");
    gpt2_config c;
    int rc = 0;
    if (!cpath || !spath) {
        rc = err_set(ERR_NOMEM, "no memory for a path");
        goto out;
    }
    if ((rc = gpt2_config_read(&c, cpath))) goto out;
    if ((rc = set_shape(m, &c))) {
        char why[512];
        snprintf(why, sizeof why, "%s", err_message(rc));
        err_set(rc, "'%s': %s", cpath, why);
        goto out;
    }
    if ((rc = alloc_table(m))) goto fail;
    m->owned = calloc(GPT2_NUM_TENSORS * m->config.n_layer, sizeof *m->owned);
    if (!m->owned) {
        rc = err_set(ERR_NOMEM, "no memory for gpt2 tensors");
        goto fail;
    }
    if ((rc = safetensors_open(&m->file, spath)) ||
        (rc = use_tensors(m, m->file, spath)) ||
        (rc = check_extra_tensors(m, m->file, spath)))
        goto fail;
    goto out;
fail:
    gpt2_model_free(m);
out:
    free(cpath);
    free(spath);
    return rc;
}

int gpt2_model_save(const gpt2_model *m, const char *dir)
{
    size_t L = m->config.n_layer, n = 4 + 12 * L, k = 0;
    st_write_tensor *t = calloc(n, sizeof *t);
    char *names = malloc(n * 80);
    char *cpath = path_join(dir, "config.json");
    char *spath = path_join(dir, "model.safetensors");
    int rc = 0;
    if (!t || !names || !cpath || !spath) {
        rc = err_set(ERR_NOMEM, "no memory to save a model to '%s'", dir);
        goto out;
    }
    if (mkdir(dir, 0777) && errno != EEXIST) {
        rc = err_set(ERR_IO, "'%s': cannot create directory: %s", dir,
                     strerror(errno));
        goto out;
    }
    /* transformers' order: wte, wpe, the blocks, ln_f */
    for (size_t slot = 0; slot < 2 + 12 * L + 2; slot++) {
        int i;
        size_t l = 0;
        if (slot < 2) i = (int)slot;
        else if (slot < 2 + 12 * L) {
            l = (slot - 2) / 12;
            i = 2 + (int)((slot - 2) % 12);
        } else i = 14 + (int)(slot - 2 - 12 * L);
        char *name = names + k * 80, base[64];
        size_t shape[2] = {0, 0};
        int ndim = 0;
        gpt2_tensor_name(base, sizeof base, i, l);
        snprintf(name, 80, "transformer.%s", base);
        t[k].name = name;
        t[k].data = gpt2_tensor(m, base, NULL, shape, &ndim);
        t[k].ndim = ndim;
        t[k].shape[0] = shape[0];
        t[k].shape[1] = shape[1];
        k++;
    }
    if ((rc = safetensors_write(spath, t, k))) goto out;
    rc = gpt2_config_write(&m->config, cpath);
out:
    free(t);
    free(names);
    free(cpath);
    free(spath);
    return rc;
}

/* ---- activations ------------------------------------------------------- */

struct gpt2_acts {
    gpt2_config c;
    unsigned flags;     /* GPT2_ACTS_* (LOGITS_ONLY implies FORWARD_ONLY) */
    size_t ls;          /* layer stride factor of the shared buffers: 1 or 0 */
    size_t gs;          /* the same for ln1, atty, ln2 (read by weight
                           gradients only): 0 from a layer above 0 */
    size_t first_layer; /* the layers up to it share its slot of the
                           shared buffers (gpt2_acts_new_from) */
    size_t bytes;       /* of the buffers allocated (gpt2_acts_bytes) */
    size_t maxB, maxT, maxBT, max_logits;
    /* the last pass */
    size_t B, T, valid_layers, start_layer, n_logits, hook_layer;
    int has_forward, has_hook;
    int *tokens;     /* (maxBT) the last pass's tokens */
    /* row ranges of the last pass: blocks >= start_layer hold its n_act
     * computed positions compactly, row i being flat position act_pos[i] */
    int rows;
    size_t n_act;
    size_t *act_pos;  /* (maxBT) */
    size_t *compact;  /* (maxBT) compact row of a flat position, or SIZE_MAX */
    size_t *row_off;  /* (maxB) compact row of (b, row_from[b]) */
    size_t *row_from; /* (maxB) */
    size_t *row_len;  /* (maxB) */
    float *memory;   /* every forward buffer below */
    float *encoded;  /* (maxBT, C) */
    /* per layer, shared (slot()): */
    float *ln1;      /* (L, maxBT, C) */
    float *ln1_mean; /* (L, maxBT) */
    float *ln1_rstd; /* (L, maxBT) */
    float *qkv;      /* (L, maxBT, 3C) */
    float *atty;     /* (L, maxBT, C) */
    float *att;      /* (L, maxB, NH, maxT, maxT) */
    float *res2;     /* (L, maxBT, C) */
    float *ln2;      /* (L, maxBT, C) */
    float *ln2_mean; /* (L, maxBT) */
    float *ln2_rstd; /* (L, maxBT) */
    float *fch;      /* (L, maxBT, F) */
    /* per layer (LOGITS_ONLY: key_at, res3_at): */
    float *fchg;     /* (L, maxBT, F) the MLP keys */
    float *res3;     /* (L, maxBT, C) the block outputs */
    float *hooked;   /* (maxBT, C) block hook_layer's output + the hook */
    float *scratch;  /* (maxBT, C) a projection before its residual add */
    float *xin;      /* (maxBT, C) compact input of block start_layer */
    float *qkv_c;    /* (maxBT, 3C) compact c_attn output */
    float *lnf_in;   /* (max_logits, C) final residual rows at logit_pos */
    float *lnf;      /* (max_logits, C) */
    float *lnf_mean; /* (max_logits) */
    float *lnf_rstd; /* (max_logits) */
    float *logits;   /* (max_logits, V) */
    /* backward buffers, allocated by the first backward pass */
    float *grad_memory;
    float *dres;     /* (maxBT, C) dLoss/dresidual, carried down */
    float *dln;      /* (maxBT, C) */
    float *datty;    /* (maxBT, C) */
    float *dqkv;     /* (maxBT, 3C) */
    float *dqkv_c;   /* (maxBT, 3C) compact rows of dqkv */
    float *dfchg;    /* (maxBT, F) */
    float *dfch;     /* (maxBT, F) */
    float *datt;     /* (maxB, NH, maxT, maxT) */
    float *dlnf;     /* (max_logits, C) */
    float *dlnf_in;  /* (max_logits, C) */
};

typedef struct {
    float **ptr;
    size_t n;
} buf_spec;

/* Carves the buffers out of one allocation, counted in *bytes; 0 or
 * ERR_NOMEM. */
static int alloc_buffers(float **memory, size_t *bytes, buf_spec *spec,
                         size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += spec[i].n ? spec[i].n : 1;
    float *mem = calloc(total, sizeof(float));
    if (!mem) return ERR_NOMEM;
    *memory = mem;
    *bytes += total * sizeof(float);
    for (size_t i = 0; i < n; i++) {
        *spec[i].ptr = mem;
        mem += spec[i].n ? spec[i].n : 1;
    }
    return 0;
}

int gpt2_acts_new(gpt2_acts **out, const gpt2_config *c, size_t B, size_t T,
                  size_t max_logits)
{
    return gpt2_acts_new_from(out, c, B, T, max_logits, 0, 0);
}

int gpt2_acts_new_from(gpt2_acts **out, const gpt2_config *c, size_t B,
                       size_t T, size_t max_logits, unsigned flags,
                       size_t first_layer)
{
    *out = NULL;
    /* a hook at the top layer: no block runs backward, one slot */
    if (c->n_layer && first_layer >= c->n_layer) first_layer = c->n_layer - 1;
    if (!B || !T)
        return err_set(ERR_INVALID, "gpt2 workspace of %zu x %zu tokens",
                       B, T);
    if (T > c->n_positions)
        return err_set(ERR_INVALID, "sequence length %zu exceeds the "
                       "model's n_positions %zu", T, c->n_positions);
    gpt2_acts *a = calloc(1, sizeof *a);
    if (!a) return err_set(ERR_NOMEM, "no memory for a gpt2 workspace");
    a->c = *c;
    if (!a->c.n_inner) a->c.n_inner = 4 * a->c.n_embd;
    if (!(a->c.layer_norm_epsilon > 0)) a->c.layer_norm_epsilon = 1e-5f;
    if (flags & GPT2_ACTS_LOGITS_ONLY) flags |= GPT2_ACTS_FORWARD_ONLY;
    a->flags = flags;
    a->ls = flags & GPT2_ACTS_FORWARD_ONLY ? 0 : 1;
    a->first_layer = first_layer;
    a->gs = first_layer ? 0 : a->ls;
    size_t L = c->n_layer, C = c->n_embd, F = a->c.n_inner, NH = c->n_head;
    size_t BT = B * T, SL = a->ls ? L - first_layer : 1, GL = a->gs ? L : 1;
    /* LOGITS_ONLY: one layer's keys, two block outputs (a block's input
     * and its output) */
    size_t KL = flags & GPT2_ACTS_LOGITS_ONLY ? 1 : L,
           RL = flags & GPT2_ACTS_LOGITS_ONLY ? (L < 2 ? L : 2) : L;
    a->maxB = B;
    a->maxT = T;
    a->maxBT = BT;
    a->max_logits = max_logits;
    a->tokens = malloc(BT * sizeof *a->tokens);
    a->act_pos = malloc(BT * sizeof *a->act_pos);
    a->compact = malloc(BT * sizeof *a->compact);
    a->row_off = malloc(B * sizeof *a->row_off);
    a->row_from = malloc(B * sizeof *a->row_from);
    a->row_len = malloc(B * sizeof *a->row_len);
    buf_spec spec[] = {
        {&a->encoded, BT * C},       {&a->ln1, GL * BT * C},
        {&a->ln1_mean, SL * BT},     {&a->ln1_rstd, SL * BT},
        {&a->qkv, SL * BT * 3 * C},  {&a->atty, GL * BT * C},
        {&a->att, SL * B * NH * T * T}, {&a->res2, SL * BT * C},
        {&a->ln2, GL * BT * C},      {&a->ln2_mean, SL * BT},
        {&a->ln2_rstd, SL * BT},     {&a->fch, SL * BT * F},
        {&a->fchg, KL * BT * F},     {&a->res3, RL * BT * C},
        {&a->hooked, BT * C},       {&a->scratch, BT * C},
        {&a->xin, BT * C},          {&a->qkv_c, BT * 3 * C},
        {&a->lnf_in, max_logits * C}, {&a->lnf, max_logits * C},
        {&a->lnf_mean, max_logits}, {&a->lnf_rstd, max_logits},
        {&a->logits, max_logits * c->vocab_size},
    };
    if (!a->tokens || !a->act_pos || !a->compact || !a->row_off ||
        !a->row_from || !a->row_len ||
        alloc_buffers(&a->memory, &a->bytes, spec,
                      sizeof spec / sizeof *spec)) {
        gpt2_acts_free(a);
        return err_set(ERR_NOMEM, "no memory for a gpt2 workspace of "
                       "%zu x %zu tokens", B, T);
    }
    *out = a;
    return 0;
}

void gpt2_acts_free(gpt2_acts *a)
{
    if (!a) return;
    free(a->tokens);
    free(a->act_pos);
    free(a->compact);
    free(a->row_off);
    free(a->row_from);
    free(a->row_len);
    free(a->memory);
    free(a->grad_memory);
    free(a);
}

size_t gpt2_acts_bytes(const gpt2_acts *a) { return a ? a->bytes : 0; }

const float *gpt2_acts_logits(const gpt2_acts *a) { return a->logits; }

/* Layer l's MLP keys and block output in the workspace: under
 * LOGITS_ONLY the layers share one slot of keys and two of outputs (the
 * input of block l, l-1's output, is never l's own slot). */
static float *key_at(const gpt2_acts *a, size_t l)
{
    size_t k = a->flags & GPT2_ACTS_LOGITS_ONLY ? 0 : l;
    return a->fchg + k * a->maxBT * a->c.n_inner;
}

static float *res3_at(const gpt2_acts *a, size_t l)
{
    size_t k = a->flags & GPT2_ACTS_LOGITS_ONLY ? l % 2 : l;
    return a->res3 + k * a->maxBT * a->c.n_embd;
}

/* Layer l's slot of the shared buffers: the layers up to first_layer
 * share first_layer's, which it overwrites after them in a pass. */
static size_t slot(const gpt2_acts *a, size_t l)
{
    return (l > a->first_layer ? l - a->first_layer : 0) * a->ls;
}

/* Layer l's slice of a shared buffer of `width` floats per row. */
static float *lay(const gpt2_acts *a, float *base, size_t l, size_t width)
{
    return base + slot(a, l) * a->maxBT * width;
}

/* Layer l's slice of ln1, atty or ln2 (`width` floats per row), which
 * only weight gradients read after the block: one slot from a layer
 * above 0. */
static float *lay_w(const gpt2_acts *a, float *base, size_t l, size_t width)
{
    return base + l * a->gs * a->maxBT * width;
}

/* Layer l's attention probabilities (maxB, NH, maxT, maxT). */
static float *att_at(const gpt2_acts *a, size_t l)
{
    return a->att + slot(a, l) * a->maxB * a->c.n_head * a->maxT * a->maxT;
}

const float *gpt2_acts_mlp_key(const gpt2_acts *a, size_t layer)
{
    if (layer >= a->c.n_layer || a->flags & GPT2_ACTS_LOGITS_ONLY)
        return NULL;
    return key_at(a, layer);
}

const float *gpt2_acts_block_out(const gpt2_acts *a, size_t layer)
{
    if (layer >= a->c.n_layer || a->flags & GPT2_ACTS_LOGITS_ONLY)
        return NULL;
    return res3_at(a, layer);
}

/* ---- the forward pass ---------------------------------------------------- */

static int same_shape(const gpt2_config *a, const gpt2_config *b)
{
    return a->n_layer == b->n_layer && a->n_head == b->n_head &&
           a->n_embd == b->n_embd && a->n_positions == b->n_positions &&
           a->vocab_size == b->vocab_size && a->n_inner == b->n_inner;
}

static int check_batch(const gpt2_model *m, const gpt2_acts *a,
                       const gpt2_batch *b)
{
    const gpt2_config *c = &m->config;
    if (!m->tensors || !same_shape(c, &a->c))
        return err_set(ERR_INVALID, "gpt2 workspace and model differ in shape");
    if (!b->B || !b->T || b->B > a->maxB || b->T > a->maxT)
        return err_set(ERR_INVALID, "batch of %zu x %zu tokens does not fit "
                       "a workspace of %zu x %zu", b->B, b->T, a->maxB,
                       a->maxT);
    if (b->n_logits > a->max_logits)
        return err_set(ERR_INVALID, "%zu logit positions exceed the "
                       "workspace's %zu", b->n_logits, a->max_logits);
    size_t BT = b->B * b->T, L = c->n_layer;
    for (size_t i = 0; i < BT; i++)
        if (b->tokens[i] < 0 || (size_t)b->tokens[i] >= c->vocab_size)
            return err_set(ERR_INVALID, "token id %d at position %zu is "
                           "outside the vocabulary of %zu", b->tokens[i], i,
                           c->vocab_size);
    for (size_t i = 0; i < b->n_logits; i++)
        if (b->logit_pos[i] >= BT)
            return err_set(ERR_INVALID, "logit position %zu is outside the "
                           "batch of %zu tokens", b->logit_pos[i], BT);
    if (b->start_layer > L)
        return err_set(ERR_INVALID, "start layer %zu exceeds n_layer %zu",
                       b->start_layer, L);
    if (b->end_layer && (b->end_layer > L || b->end_layer <= b->start_layer))
        return err_set(ERR_INVALID, "end layer %zu does not fit a pass from "
                       "layer %zu of %zu", b->end_layer, b->start_layer, L);
    if (b->end_layer && b->end_layer < L &&
        (b->n_logits || b->row_from || (b->hook && b->hook->layer >= b->end_layer)))
        return err_set(ERR_INVALID, "a pass that ends at layer %zu has no "
                       "logits, row ranges or later hook", b->end_layer);
    if (b->hook) {
        const gpt2_hook *h = b->hook;
        if (h->layer >= L || h->layer + 1 < b->start_layer)
            return err_set(ERR_INVALID, "hook at layer %zu does not fit a "
                           "pass from layer %zu of %zu", h->layer,
                           b->start_layer, L);
        for (size_t i = 0; i < h->n; i++)
            if (h->pos[i] >= BT)
                return err_set(ERR_INVALID, "hook position %zu is outside "
                               "the batch of %zu tokens", h->pos[i], BT);
    }
    if (!b->row_from != !b->row_len)
        return err_set(ERR_INVALID, "row ranges need both row_from and "
                       "row_len");
    if (b->row_from) {
        size_t T = b->T;
        if (a->flags & GPT2_ACTS_FORWARD_ONLY)
            return err_set(ERR_INVALID, "row ranges need a workspace that "
                           "keeps every layer (not FORWARD_ONLY)");
        if (b->start_layer == 0)
            return err_set(ERR_INVALID, "row ranges need a pass from a "
                           "layer above 0");
        if (b->start_layer < a->first_layer)
            return err_set(ERR_INVALID, "row ranges from layer %zu need a "
                           "workspace that keeps it (this one keeps "
                           "layers %zu and up)", b->start_layer,
                           a->first_layer);
        if (b->hook && b->hook->layer + 1 != b->start_layer)
            return err_set(ERR_INVALID, "row ranges need the hook at layer "
                           "%zu", b->start_layer - 1);
        for (size_t r = 0; r < b->B; r++)
            if (b->row_from[r] > b->row_len[r] || b->row_len[r] > T)
                return err_set(ERR_INVALID, "row range %zu..%zu of sequence "
                               "%zu does not fit %zu tokens", b->row_from[r],
                               b->row_len[r], r, T);
        for (size_t i = 0; b->hook && i < b->hook->n; i++) {
            size_t r = b->hook->pos[i] / T, t = b->hook->pos[i] % T;
            if (t < b->row_from[r] || t >= b->row_len[r])
                return err_set(ERR_INVALID, "hook position %zu is outside "
                               "its row range", b->hook->pos[i]);
        }
        for (size_t i = 0; i < b->n_logits; i++) {
            size_t r = b->logit_pos[i] / T, t = b->logit_pos[i] % T;
            if (t < b->row_from[r] || t >= b->row_len[r])
                return err_set(ERR_INVALID, "logit position %zu is outside "
                               "its row range", b->logit_pos[i]);
        }
    }
    if (b->input && (b->start_layer == 0 || b->row_from))
        return err_set(ERR_INVALID, "an input needs a pass from a layer "
                       "above 0 without row ranges");
    if (b->start_layer > 0 && !b->input &&
        (!a->has_forward || a->valid_layers < b->start_layer ||
         a->B != b->B || a->T != b->T ||
         memcmp(a->tokens, b->tokens, BT * sizeof *b->tokens)))
        return err_set(ERR_INVALID, "a pass from layer %zu needs an earlier "
                       "pass over the same tokens", b->start_layer);
    return 0;
}

/* Sets a->hooked = out + the hook's vectors at their positions. */
static void apply_hook(gpt2_acts *a, const gpt2_hook *h, const float *out,
                       size_t BT)
{
    size_t C = a->c.n_embd;
    memcpy(a->hooked, out, BT * C * sizeof(float));
    for (size_t i = 0; i < h->n; i++) {
        float *dst = a->hooked + h->pos[i] * C;
        const float *v = h->vec + i * C;
        for (size_t c = 0; c < C; c++) dst[c] += v[c];
    }
}

/* The residual stream entering block l (l = L: entering ln_f). */
static const float *block_input(const gpt2_acts *a, const gpt2_batch *b,
                                size_t l)
{
    if (b->hook && b->hook->layer + 1 == l) return a->hooked;
    if (l == 0) return a->encoded;
    return res3_at(a, l - 1);
}

/* The rest of block l once the attention has filled its atty rows: the
 * projection, both residual adds and the MLP, over the first n rows of
 * the layer's buffers (x: the block's input rows). */
static void block_forward_after_attention(const gpt2_model *m, gpt2_acts *a,
                                          size_t l, const float *x, size_t n)
{
    size_t C = a->c.n_embd, F = a->c.n_inner;
    float eps = m->config.layer_norm_epsilon;
    float *atty = lay_w(a, a->atty, l, C), *res2 = lay(a, a->res2, l, C),
          *ln2 = lay_w(a, a->ln2, l, C), *ln2_mean = lay(a, a->ln2_mean, l, 1),
          *ln2_rstd = lay(a, a->ln2_rstd, l, 1), *fch = lay(a, a->fch, l, F),
          *fchg = key_at(a, l), *res3 = res3_at(a, l);
    linalg_matmul_forward(a->scratch, atty, W(m, GPT2_ATTPROJW, l),
                          W(m, GPT2_ATTPROJB, l), n, C, C);
    linalg_residual_forward(res2, x, a->scratch, n * C);
    linalg_layernorm_forward(ln2, ln2_mean, ln2_rstd, res2, W(m, GPT2_LN2W, l),
                             W(m, GPT2_LN2B, l), n, C, eps);
    linalg_matmul_forward(fch, ln2, W(m, GPT2_FCW, l), W(m, GPT2_FCB, l), n,
                          C, F);
    linalg_gelu_forward(fchg, fch, n * F);
    linalg_matmul_forward(a->scratch, fchg, W(m, GPT2_FCPROJW, l),
                          W(m, GPT2_FCPROJB, l), n, F, C);
    linalg_residual_forward(res3, res2, a->scratch, n * C);
}

static void block_forward(const gpt2_model *m, gpt2_acts *a, size_t l,
                          const float *x, size_t B, size_t T)
{
    size_t C = a->c.n_embd, NH = a->c.n_head, BT = B * T;
    float eps = m->config.layer_norm_epsilon;
    float *ln1 = lay_w(a, a->ln1, l, C), *ln1_mean = lay(a, a->ln1_mean, l, 1),
          *ln1_rstd = lay(a, a->ln1_rstd, l, 1), *qkv = lay(a, a->qkv, l, 3 * C),
          *atty = lay_w(a, a->atty, l, C), *att = att_at(a, l);
    linalg_layernorm_forward(ln1, ln1_mean, ln1_rstd, x, W(m, GPT2_LN1W, l),
                             W(m, GPT2_LN1B, l), BT, C, eps);
    linalg_matmul_forward(qkv, ln1, W(m, GPT2_QKVW, l),
                          W(m, GPT2_QKVB, l), BT, C, 3 * C);
    linalg_attention_forward(atty, att, qkv, B, T, C, NH);
    block_forward_after_attention(m, a, l, x, BT);
}

/* The row ranges of b: the compact layout of the computed positions. */
static void set_rows(gpt2_acts *a, const gpt2_batch *b)
{
    size_t T = b->T, n = 0;
    for (size_t i = 0; i < b->B * T; i++) a->compact[i] = SIZE_MAX;
    for (size_t r = 0; r < b->B; r++) {
        a->row_from[r] = b->row_from[r];
        a->row_len[r] = b->row_len[r];
        a->row_off[r] = n;
        for (size_t t = b->row_from[r]; t < b->row_len[r]; t++) {
            a->compact[r * T + t] = n;
            a->act_pos[n++] = r * T + t;
        }
    }
    a->n_act = n;
}

/* Block l over the computed positions only (compact input x, n_act rows);
 * c_attn's output also goes to the full-layout qkv, where the attention
 * finds the earlier positions' keys and values. */
static void block_forward_rows(const gpt2_model *m, gpt2_acts *a, size_t l,
                               const float *x, size_t B, size_t T)
{
    size_t C = a->c.n_embd, NH = a->c.n_head, N = a->n_act;
    float eps = m->config.layer_norm_epsilon;
    float *ln1 = lay_w(a, a->ln1, l, C), *ln1_mean = lay(a, a->ln1_mean, l, 1),
          *ln1_rstd = lay(a, a->ln1_rstd, l, 1), *qkv = lay(a, a->qkv, l, 3 * C),
          *atty = lay_w(a, a->atty, l, C), *att = att_at(a, l);
    linalg_layernorm_forward(ln1, ln1_mean, ln1_rstd, x, W(m, GPT2_LN1W, l),
                             W(m, GPT2_LN1B, l), N, C, eps);
    linalg_matmul_forward(a->qkv_c, ln1, W(m, GPT2_QKVW, l),
                          W(m, GPT2_QKVB, l), N, C, 3 * C);
    for (size_t i = 0; i < N; i++)
        memcpy(qkv + a->act_pos[i] * 3 * C, a->qkv_c + i * 3 * C,
               3 * C * sizeof(float));
    linalg_attention_rows_forward(atty, att, qkv, B, T, C, NH, a->row_from,
                                  a->row_len, a->row_off);
    block_forward_after_attention(m, a, l, x, N);
}

int gpt2_forward(const gpt2_model *m, gpt2_acts *a, const gpt2_batch *b)
{
    int rc = check_batch(m, a, b);
    if (rc) return rc;
    size_t L = a->c.n_layer, C = a->c.n_embd, V = a->c.vocab_size;
    size_t B = b->B, T = b->T, BT = B * T, s = b->start_layer;
    const gpt2_hook *h = b->hook;
    a->has_forward = 0;
    if (s == 0) {
        memcpy(a->tokens, b->tokens, BT * sizeof *b->tokens);
        a->B = B;
        a->T = T;
        a->valid_layers = 0;
        linalg_encoder_forward(a->encoded, b->tokens, W(m, GPT2_WTE, 0),
                               W(m, GPT2_WPE, 0), B, T, C);
    } else if (b->input) { /* the caller's copy of block s-1's output */
        memcpy(a->tokens, b->tokens, BT * sizeof *b->tokens);
        a->B = B;
        a->T = T;
        memcpy(res3_at(a, s - 1), b->input, BT * C * sizeof(float));
    }
    if (h && h->layer + 1 == s) apply_hook(a, h, res3_at(a, h->layer), BT);
    a->rows = b->row_from != NULL;
    if (a->rows) {
        set_rows(a, b);
        const float *in = block_input(a, b, s);
        for (size_t i = 0; i < a->n_act; i++)
            memcpy(a->xin + i * C, in + a->act_pos[i] * C, C * sizeof(float));
        for (size_t l = s; l < L; l++)
            block_forward_rows(m, a, l, l == s ? a->xin : block_input(a, b, l),
                               B, T);
        const float *fin = res3_at(a, L - 1);
        for (size_t i = 0; i < b->n_logits; i++)
            memcpy(a->lnf_in + i * C, fin + a->compact[b->logit_pos[i]] * C,
                   C * sizeof(float));
        a->valid_layers = s;
        goto head;
    }
    size_t end = b->end_layer ? b->end_layer : L;
    for (size_t l = s; l < end; l++) {
        block_forward(m, a, l, block_input(a, b, l), B, T);
        if (h && h->layer == l) apply_hook(a, h, res3_at(a, l), BT);
    }
    /* a LOGITS_ONLY workspace keeps no block output for a later pass */
    a->valid_layers = a->flags & GPT2_ACTS_LOGITS_ONLY ? 0 : end;
    if (end < L) { /* nothing above: no head, no backward */
        a->has_forward = 0;
        return 0;
    }
    /* ln_f and the tied head on the logit rows only */
    const float *fin = block_input(a, b, L);
    for (size_t i = 0; i < b->n_logits; i++)
        memcpy(a->lnf_in + i * C, fin + b->logit_pos[i] * C, C * sizeof(float));
head:
    if (b->n_logits) {
        linalg_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, a->lnf_in,
                                 W(m, GPT2_LNFW, 0), W(m, GPT2_LNFB, 0),
                                 b->n_logits, C,
                                 m->config.layer_norm_epsilon);
        linalg_matmul_nt_forward(a->logits, a->lnf, W(m, GPT2_WTE, 0),
                                 b->n_logits, C, V);
    }
    a->has_forward = 1;
    a->start_layer = s;
    a->n_logits = b->n_logits;
    a->has_hook = h != NULL;
    a->hook_layer = h ? h->layer : 0;
    return 0;
}

/* ---- the backward pass ----------------------------------------------------- */

static int alloc_grad_buffers(gpt2_acts *a)
{
    size_t C = a->c.n_embd, F = a->c.n_inner, NH = a->c.n_head;
    size_t BT = a->maxBT, NL = a->max_logits;
    buf_spec spec[] = {
        {&a->dres, BT * C},   {&a->dln, BT * C},    {&a->datty, BT * C},
        {&a->dqkv, BT * 3 * C}, {&a->dqkv_c, BT * 3 * C},
        {&a->dfchg, BT * F}, {&a->dfch, BT * F},
        {&a->datt, a->maxB * NH * a->maxT * a->maxT},
        {&a->dlnf, NL * C},   {&a->dlnf_in, NL * C},
    };
    if (alloc_buffers(&a->grad_memory, &a->bytes, spec,
                      sizeof spec / sizeof *spec))
        return err_set(ERR_NOMEM, "no memory for gpt2 backward buffers");
    return 0;
}

/* Block l backward: a->dres holds dLoss/d(block output) on entry and
 * dLoss/d(block input) on exit. g: gradients to accumulate, or NULL. */
static void block_backward(const gpt2_model *m, gpt2_acts *a, gpt2_params *g,
                           size_t l, const float *x, size_t B, size_t T)
{
    size_t C = a->c.n_embd, F = a->c.n_inner, NH = a->c.n_head, BT = B * T;
    const float *ln1 = lay_w(a, a->ln1, l, C),
                *ln1_mean = lay(a, a->ln1_mean, l, 1),
                *ln1_rstd = lay(a, a->ln1_rstd, l, 1),
                *qkv = lay(a, a->qkv, l, 3 * C),
                *atty = lay_w(a, a->atty, l, C),
                *att = att_at(a, l), *res2 = lay(a, a->res2, l, C),
                *ln2 = lay_w(a, a->ln2, l, C),
                *ln2_mean = lay(a, a->ln2_mean, l, 1),
                *ln2_rstd = lay(a, a->ln2_rstd, l, 1),
                *fch = lay(a, a->fch, l, F), *fchg = key_at(a, l);
#define G(field, off) (g ? g->field + (off) : NULL)
    /* MLP: res3 = res2 + c_proj(gelu(c_fc(ln_2(res2)))) */
    memset(a->dfchg, 0, BT * F * sizeof(float));
    linalg_matmul_backward(a->dfchg, G(fcprojw, l * F * C), G(fcprojb, l * C),
                           a->dres, fchg, W(m, GPT2_FCPROJW, l), BT, F, C);
    memset(a->dfch, 0, BT * F * sizeof(float));
    linalg_gelu_backward(a->dfch, fch, a->dfchg, BT * F);
    memset(a->dln, 0, BT * C * sizeof(float));
    linalg_matmul_backward(a->dln, G(fcw, l * C * F), G(fcb, l * F), a->dfch,
                           ln2, W(m, GPT2_FCW, l), BT, C, F);
    linalg_layernorm_backward(a->dres, G(ln2w, l * C), G(ln2b, l * C), a->dln,
                              res2, W(m, GPT2_LN2W, l), ln2_mean, ln2_rstd,
                              BT, C);
    /* attention: res2 = x + c_proj(attn(c_attn(ln_1(x)))) */
    memset(a->datty, 0, BT * C * sizeof(float));
    linalg_matmul_backward(a->datty, G(attprojw, l * C * C), G(attprojb, l * C),
                           a->dres, atty, W(m, GPT2_ATTPROJW, l), BT, C, C);
    memset(a->dqkv, 0, BT * 3 * C * sizeof(float));
    linalg_attention_backward(a->dqkv, a->datt, a->datty, qkv, att, B, T, C,
                              NH);
    memset(a->dln, 0, BT * C * sizeof(float));
    linalg_matmul_backward(a->dln, G(qkvw, l * C * 3 * C), G(qkvb, l * 3 * C),
                           a->dqkv, ln1, W(m, GPT2_QKVW, l), BT, C, 3 * C);
    linalg_layernorm_backward(a->dres, G(ln1w, l * C), G(ln1b, l * C), a->dln,
                              x, W(m, GPT2_LN1W, l), ln1_mean, ln1_rstd, BT, C);
#undef G
}

/* block_backward over the computed positions of a row-range pass, with
 * no weight gradients; x is the block's compact input. */
static void block_backward_rows(const gpt2_model *m, gpt2_acts *a, size_t l,
                                const float *x, size_t B, size_t T)
{
    size_t C = a->c.n_embd, F = a->c.n_inner, NH = a->c.n_head, N = a->n_act;
    const float *ln1 = lay_w(a, a->ln1, l, C),
                *ln1_mean = lay(a, a->ln1_mean, l, 1),
                *ln1_rstd = lay(a, a->ln1_rstd, l, 1),
                *qkv = lay(a, a->qkv, l, 3 * C),
                *atty = lay_w(a, a->atty, l, C),
                *att = att_at(a, l), *res2 = lay(a, a->res2, l, C),
                *ln2 = lay_w(a, a->ln2, l, C),
                *ln2_mean = lay(a, a->ln2_mean, l, 1),
                *ln2_rstd = lay(a, a->ln2_rstd, l, 1),
                *fch = lay(a, a->fch, l, F), *fchg = key_at(a, l);
    memset(a->dfchg, 0, N * F * sizeof(float));
    linalg_matmul_backward(a->dfchg, NULL, NULL, a->dres, fchg,
                           W(m, GPT2_FCPROJW, l), N, F, C);
    memset(a->dfch, 0, N * F * sizeof(float));
    linalg_gelu_backward(a->dfch, fch, a->dfchg, N * F);
    memset(a->dln, 0, N * C * sizeof(float));
    linalg_matmul_backward(a->dln, NULL, NULL, a->dfch, ln2,
                           W(m, GPT2_FCW, l), N, C, F);
    linalg_layernorm_backward(a->dres, NULL, NULL, a->dln, res2,
                              W(m, GPT2_LN2W, l), ln2_mean, ln2_rstd, N, C);
    memset(a->datty, 0, N * C * sizeof(float));
    linalg_matmul_backward(a->datty, NULL, NULL, a->dres, atty,
                           W(m, GPT2_ATTPROJW, l), N, C, C);
    /* the attention reaches keys and values before the ranges too; their
     * gradients are dropped (those positions do not depend on the hook) */
    memset(a->dqkv, 0, B * T * 3 * C * sizeof(float));
    linalg_attention_rows_backward(a->dqkv, a->datt, a->datty, qkv, att, B, T,
                                   C, NH, a->row_from, a->row_len, a->row_off);
    for (size_t i = 0; i < N; i++)
        memcpy(a->dqkv_c + i * 3 * C, a->dqkv + a->act_pos[i] * 3 * C,
               3 * C * sizeof(float));
    memset(a->dln, 0, N * C * sizeof(float));
    linalg_matmul_backward(a->dln, NULL, NULL, a->dqkv_c, ln1,
                           W(m, GPT2_QKVW, l), N, C, 3 * C);
    linalg_layernorm_backward(a->dres, NULL, NULL, a->dln, x,
                              W(m, GPT2_LN1W, l), ln1_mean, ln1_rstd, N, C);
}

int gpt2_backward(const gpt2_model *m, gpt2_acts *a, const gpt2_batch *b,
                  const float *dlogits, gpt2_model *grads, float *dvec)
{
    size_t L = a->c.n_layer, C = a->c.n_embd, V = a->c.vocab_size;
    size_t B = b->B, T = b->T, BT = B * T, s = b->start_layer, NL = b->n_logits;
    const gpt2_hook *h = b->hook;
    if (!a->has_forward || a->B != B || a->T != T || a->start_layer != s ||
        a->n_logits != NL || a->has_hook != (h != NULL) ||
        (h && a->hook_layer != h->layer) || !same_shape(&m->config, &a->c))
        return err_set(ERR_INVALID, "gpt2 backward does not follow a forward "
                       "pass of the same batch");
    if (dvec && !h)
        return err_set(ERR_INVALID, "hook gradient requested of a pass "
                       "without a hook");
    if (a->rows != (b->row_from != NULL) || (a->rows && grads))
        return err_set(ERR_INVALID, "gpt2 backward of a row-range pass "
                       "needs the same ranges and no weight gradients");
    if (grads && (!grads->memory || !same_shape(&grads->config, &m->config)))
        return err_set(ERR_INVALID, "gradient model differs in shape");
    if (a->flags & GPT2_ACTS_FORWARD_ONLY)
        return err_set(ERR_INVALID, "gpt2 backward needs a workspace that "
                       "keeps every layer (not FORWARD_ONLY)");
    if (grads && a->first_layer)
        return err_set(ERR_INVALID, "gpt2 weight gradients need a workspace "
                       "that keeps every layer (this one keeps layers %zu "
                       "and up)", a->first_layer);
    /* the blocks backward runs: from stop up */
    size_t stop = s;
    if (!grads && !a->rows) stop = h ? h->layer + 1 : L;
    if (stop < a->first_layer)
        return err_set(ERR_INVALID, "gpt2 backward to block %zu needs a "
                       "workspace that keeps it; this one keeps layers %zu "
                       "and up", stop, a->first_layer);
    if (!a->grad_memory) {
        int rc = alloc_grad_buffers(a);
        if (rc) return rc;
    }
    gpt2_params *g = grads ? &grads->p : NULL;

    /* the head and ln_f, on the logit rows */
    memset(a->dres, 0, BT * C * sizeof(float));
    const size_t *row_of = a->rows ? a->compact : NULL;
    if (NL) {
        memset(a->dlnf, 0, NL * C * sizeof(float));
        linalg_matmul_nt_backward(a->dlnf, g ? g->wte : NULL, dlogits, a->lnf,
                                  W(m, GPT2_WTE, 0), NL, C, V);
        memset(a->dlnf_in, 0, NL * C * sizeof(float));
        linalg_layernorm_backward(a->dlnf_in, g ? g->lnfw : NULL,
                                  g ? g->lnfb : NULL, a->dlnf, a->lnf_in,
                                  W(m, GPT2_LNFW, 0), a->lnf_mean, a->lnf_rstd,
                                  NL, C);
        for (size_t i = 0; i < NL; i++) {
            size_t at = row_of ? row_of[b->logit_pos[i]] : b->logit_pos[i];
            float *dst = a->dres + at * C;
            const float *src = a->dlnf_in + i * C;
            for (size_t c = 0; c < C; c++) dst[c] += src[c];
        }
    }

    if (a->rows) {
        for (size_t l = L; l-- > s;)
            block_backward_rows(m, a, l, l == s ? a->xin : block_input(a, b, l),
                                B, T);
        for (size_t i = 0; dvec && i < h->n; i++)
            memcpy(dvec + i * C, a->dres + row_of[h->pos[i]] * C,
                   C * sizeof(float));
        return 0;
    }
    /* Without weight gradients, nothing below the hook matters (stop). */
    for (size_t l = L; l-- > stop;) {
        if (h && h->layer == l && dvec)
            for (size_t i = 0; i < h->n; i++)
                memcpy(dvec + i * C, a->dres + h->pos[i] * C, C * sizeof(float));
        block_backward(m, a, g, l, block_input(a, b, l), B, T);
    }
    if (h && h->layer + 1 == stop && dvec)
        for (size_t i = 0; i < h->n; i++)
            memcpy(dvec + i * C, a->dres + h->pos[i] * C, C * sizeof(float));
    if (g && s == 0)
        linalg_encoder_backward(g->wte, g->wpe, a->dres, b->tokens, B, T, C);
    return 0;
}

/* ---- losses ---------------------------------------------------------------- */

void gpt2_log_softmax(float *out, const float *logits, size_t n, size_t V)
{
    linalg_log_softmax_forward(out, logits, n, V);
}

double gpt2_crossentropy(const float *logits, const int *targets, size_t n,
                         size_t V, float *dlogits)
{
    if (!n) return 0.0;
    double total = linalg_crossentropy_forward(NULL, logits, targets, n, V);
    if (dlogits) {
        float d = 1.0f / (float)n;
        memset(dlogits, 0, n * V * sizeof(float));
        for (size_t i = 0; i < n; i++)
            linalg_crossentropy_softmax_backward(dlogits + i * V, &d,
                                                 logits + i * V, targets + i,
                                                 1, V);
    }
    return total / (double)n;
}
