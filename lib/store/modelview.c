/* modelview: the store's current model = base model + overlay tensors
 * (see modelview.h). The base directory comes from meta "model_dir". */
#include "store/modelview.h"
#include "base/errors.h"

#include "base/hash.h"
#include "model/safetensors.h"

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

int modelview_tokenizer(store_txn *t, tokenizer **tok)
{
    char *dir = NULL;
    int rc = modelview_model_dir(t, &dir);
    if (rc) return rc;
    rc = tokenizer_open_dir(tok, dir);
    free(dir);
    return rc;
}

int modelview_load(gpt2_model *m, store_txn *t)
{
    char *dir = NULL, **names = NULL;
    size_t n_names = 0;
    int rc = modelview_model_dir(t, &dir);
    if (rc) return rc;
    rc = gpt2_model_load(m, dir);
    if (rc) goto out;
    rc = store_tensor_names(t, &names, &n_names);
    if (rc) goto fail;
    for (size_t i = 0; i < n_names; i++) {
        size_t want = 0, have = 0;
        float *dst = gpt2_tensor(m, names[i], &want, NULL, NULL);
        const float *src = NULL; /* LMDB memory: valid until txn ends */
        if (!dst) {
            rc = err_set(ERR_FORMAT, "store tensor '%s' is not a tensor of "
                         "the model in '%s'", names[i], dir);
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
    gpt2_model_free(m);
out:
    store_strings_free(names, n_names);
    free(dir);
    return rc;
}

int modelview_verify_base(store_txn *t)
{
    char *dir = NULL, *recorded = NULL, path[4096];
    st_file *f = NULL;
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
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((rc = safetensors_open(&f, path))) goto out;
    if (safetensors_count(f) != json_object_size(hashes)) {
        rc = err_set(ERR_FORMAT, "base model '%s' changed behind the store's "
                     "back: %zu tensors, %zu recorded", path,
                     safetensors_count(f), json_object_size(hashes));
        goto out;
    }
    for (size_t i = 0; i < safetensors_count(f); i++) {
        const st_tensor *st = safetensors_at(f, i);
        const char *want = json_string_value(json_object_get(hashes, st->name));
        char have[33];
        hash_hex(have, st->data, st->nbytes);
        if (!want || strcmp(want, have)) {
            rc = err_set(ERR_FORMAT, "base model '%s' changed behind the "
                         "store's back: tensor '%s' %s", path, st->name,
                         want ? "differs from its recorded hash"
                              : "was not there at init");
            goto out;
        }
    }
out:
    safetensors_close(f);
    json_decref(hashes);
    free(recorded);
    free(dir);
    return rc;
}
