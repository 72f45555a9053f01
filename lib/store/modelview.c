/* modelview: the store's current model = base model + overlay tensors
 * (see modelview.h). The base directory comes from meta "model_dir". */
#include "store/modelview.h"
#include "base/errors.h"

#include "base/hash.h"
#include "model/hf_weights.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int modelview_model_dir(store_txn *t, char **dir)
{
    int rc = store_meta_get(t, "model_dir", dir);
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_STORE, "the store records no base model");
    return rc;
}

int modelview_config(store_txn *t, lm_config *c)
{
    char *dir = NULL;
    int rc = modelview_model_dir(t, &dir);
    if (rc) return rc;
    rc = lm_config_read(c, dir);
    free(dir);
    return rc;
}

int modelview_tokenizer(store_txn *t, tokenizer **tok)
{
    char *dir = NULL;
    int rc = modelview_model_dir(t, &dir);
    if (rc) return rc;
    rc = tokenizer_open_dir(tok, dir);
    free(dir);
    return rc;
}

int modelview_load(lm_model *m, store_txn *t)
{
    char *dir = NULL, **names = NULL;
    size_t n_names = 0;
    int rc = modelview_model_dir(t, &dir);
    if (rc) return rc;
    rc = lm_model_load(m, dir);
    if (rc) goto out;
    rc = store_tensor_names(t, &names, &n_names);
    if (rc) goto fail;
    for (size_t i = 0; i < n_names; i++) {
        size_t want = 0, have = 0;
        float *dst = lm_overlay_tensor(m, names[i], &want);
        const float *src = NULL; /* LMDB memory: valid until txn ends */
        if (!dst) {
            rc = err_set(ERR_FORMAT, "store tensor '%s' is not a tensor of "
                         "the model in '%s' that stamp edits", names[i], dir);
            goto fail;
        }
        rc = store_tensor_get(t, names[i], &src, &have);
        if (rc) goto fail;
        if (have != want) {
            rc = err_set(ERR_FORMAT, "store tensor '%s' has %zu values, the "
                         "model's has %zu", names[i], have, want);
            goto fail;
        }
        memcpy(dst, src, want * sizeof(float));
    }
    goto out;
fail:
    lm_model_free(m);
out:
    store_strings_free(names, n_names);
    free(dir);
    return rc;
}

int modelview_hash_base(const char *dir, char **hashes_json,
                        char model_id[33])
{
    hf_weights *w = NULL;
    int rc = hf_weights_open(&w, dir);
    if (rc) return rc;
    size_t n = hf_weights_count(w);
    json_t *obj = json_object();
    hash_stream *hs = NULL;
    *hashes_json = NULL;
    if (!obj || hash_stream_open(&hs)) {
        rc = err_set(ERR_NOMEM, "out of memory hashing '%s'",
                     hf_weights_path(w));
        goto out;
    }
    /* hf_weights hands the tensors out sorted by name: the id's lines
     * are "name:hash\n" in that order */
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = hf_weights_at(w, i, NULL);
        char hex[33];
        hash_hex(hex, t->data, t->nbytes);
        if (json_object_set_new(obj, t->name, json_string(hex))) {
            rc = err_set(ERR_NOMEM, "out of memory");
            goto out;
        }
        hash_stream_update(hs, t->name, strlen(t->name));
        hash_stream_update(hs, ":", 1);
        hash_stream_update(hs, hex, 32);
        hash_stream_update(hs, "\n", 1);
    }
    hash_stream_hex(hs, model_id);
    *hashes_json = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
    if (!*hashes_json) rc = err_set(ERR_NOMEM, "out of memory");
out:
    hash_stream_close(hs);
    json_decref(obj);
    hf_weights_close(w);
    return rc;
}

int modelview_verify_base(store_txn *t)
{
    char *dir = NULL, *recorded = NULL;
    hf_weights *w = NULL;
    json_t *hashes = NULL;
    int rc = modelview_model_dir(t, &dir);
    if (!rc) rc = store_meta_get(t, "model_tensor_hashes", &recorded);
    if (rc) goto out;
    hashes = json_loads(recorded, 0, NULL);
    if (!json_is_object(hashes)) {
        rc = err_set(ERR_STORE, "the store's recorded model hashes are "
                     "unreadable");
        goto out;
    }
    if ((rc = hf_weights_open(&w, dir))) goto out;
    const char *path = hf_weights_path(w);
    if (hf_weights_count(w) != json_object_size(hashes)) {
        rc = err_set(ERR_FORMAT, "base model '%s' changed behind the store's "
                     "back: %zu tensors, %zu recorded", path,
                     hf_weights_count(w), json_object_size(hashes));
        goto out;
    }
    /* every damaged tensor is named: the first with its file, the rest
     * after it ("; also ...") */
    char first[1024] = "", also[1024] = "";
    size_t bad = 0, used = 0;
    for (size_t i = 0; i < hf_weights_count(w); i++) {
        const char *file = NULL;
        const st_tensor *st = hf_weights_at(w, i, &file);
        const char *want = json_string_value(json_object_get(hashes, st->name));
        char have[33];
        hash_hex(have, st->data, st->nbytes);
        if (want && !strcmp(want, have)) continue;
        if (bad++ == 0)
            snprintf(first, sizeof first, "base model '%s' changed behind "
                     "the store's back: tensor '%s' %s", file, st->name,
                     want ? "differs from its recorded hash"
                          : "was not there at init");
        else if (used < sizeof also)
            used += (size_t)snprintf(also + used, sizeof also - used,
                                     "%s'%s'", bad > 2 ? ", " : "", st->name);
    }
    if (bad == 1) rc = err_set(ERR_FORMAT, "%s", first);
    else if (bad > 1)
        rc = err_set(ERR_FORMAT, "%s; also %s (%zu tensors in all)", first,
                     also, bad);
out:
    hf_weights_close(w);
    json_decref(hashes);
    free(recorded);
    free(dir);
    return rc;
}
