/* export_patch: the Hugging Face export of a Llama-family model. The
 * base directory's layout is kept whole: the same files (one
 * model.safetensors or the shards and their index), each shard's header
 * byte for byte, every tensor in its stored dtype. A shard that holds no
 * edited tensor is copied; one that does is copied with the edited
 * tensors' bytes replaced by the model's values in the shard's dtype
 * (exact: the edited matrices hold only values of that dtype, lm.h).
 * Then the written files are opened again and every tensor is checked:
 * an untouched one against the base file's bytes, an edited one against
 * the bytes it was written from. */
#include "repo/export_impl.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/half.h"
#include "base/hash.h"
#include "model/hf_weights.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The files of a model directory besides the weights that belong to the
 * model (configuration, tokenizer); copied when the base has them. */
static const char *const model_files[] = {
    "config.json", "generation_config.json", "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
    "added_tokens.json", "vocab.json", "merges.txt",
    "model.safetensors.index.json"};

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The bytes of the edited tensor `t` as the model holds it now, in t's
 * dtype: *out (malloc'ed, t->nbytes). */
static int edited_bytes(lm_model *m, const st_tensor *t, void **out)
{
    size_t numel = 0;
    const float *w = lm_overlay_tensor(m, t->name, &numel);
    if (!w) return ERR_FORMAT;
    if (numel != t->numel)
        return err_set(ERR_FORMAT, "tensor '%s': %zu values in the model, "
                       "%zu in the base file", t->name, numel, t->numel);
    unsigned char *b = malloc(t->nbytes ? t->nbytes : 1);
    if (!b) return err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < numel; i++) {
        uint16_t h;
        if (t->dtype == ST_F32) {
            memcpy(b + 4 * i, &w[i], 4);
            continue;
        }
        h = t->dtype == ST_BF16 ? float_to_bf16(w[i]) : float_to_half(w[i]);
        float back = t->dtype == ST_BF16 ? bf16_to_float(h) : half_to_float(h);
        if (memcmp(&back, &w[i], 4)) {
            free(b);
            return err_set(ERR_NUMERIC, "tensor '%s': value %zu (%g) is not "
                           "a value of the file's dtype", t->name, i,
                           (double)w[i]);
        }
        memcpy(b + 2 * i, &h, 2);
    }
    *out = b;
    return 0;
}

/* Copies bytes [from, to) of in into out. */
static int copy_range(FILE *in, const char *path, atomic_file *out,
                      size_t from, size_t to)
{
    char buf[1 << 16];
    if (fseeko(in, (off_t)from, SEEK_SET))
        return err_set(ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    while (from < to) {
        size_t want = to - from < sizeof buf ? to - from : sizeof buf;
        size_t got = fread(buf, 1, want, in);
        if (got != want)
            return err_set(ERR_IO, "cannot read '%s': %s", path,
                           ferror(in) ? strerror(errno) : "file too short");
        int rc = atomic_file_write(out, buf, got);
        if (rc) return rc;
        from += got;
    }
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a;
    const st_tensor *y = *(const st_tensor *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Shard `path` into `to`, the tensors in edit[0..n) (of that shard)
 * replaced by the model's values. */
static int patch_shard(lm_model *m, const char *path, const char *to,
                       const st_tensor **edit, size_t n)
{
    FILE *in = fopen(path, "rb");
    atomic_file *out = NULL;
    unsigned char len8[8];
    int rc = 0;
    if (!in) return err_set(ERR_IO, "cannot read '%s': %s", path,
                            strerror(errno));
    if (fread(len8, 1, 8, in) != 8) {
        fclose(in);
        return err_set(ERR_IO, "cannot read '%s'", path);
    }
    size_t data = 8, pos = 0, size;
    for (int i = 0; i < 8; i++) data += (size_t)len8[i] << (8 * i);
    fseeko(in, 0, SEEK_END);
    size = (size_t)ftello(in);
    qsort(edit, n, sizeof *edit, by_offset);
    rc = atomic_file_open(&out, to);
    for (size_t i = 0; !rc && i < n; i++) {
        void *bytes = NULL;
        size_t at = data + edit[i]->offset;
        if ((rc = copy_range(in, path, out, pos, at))) break;
        if ((rc = edited_bytes(m, edit[i], &bytes))) break;
        rc = atomic_file_write(out, bytes, edit[i]->nbytes);
        free(bytes);
        pos = at + edit[i]->nbytes;
    }
    if (!rc) rc = copy_range(in, path, out, pos, size);
    fclose(in);
    if (rc) {
        atomic_file_abort(out);
        return rc;
    }
    return atomic_file_commit(out);
}

/* Every tensor of the directory `dir` just written: an edited one (in
 * edited[0..n_edited), names) holds the model's bytes, every other one
 * the base file's. */
static int check_written(lm_model *m, const hf_weights *base,
                         const char *dir, char *const *edited,
                         size_t n_edited)
{
    hf_weights *w = NULL;
    int rc = hf_weights_open(&w, dir);
    if (rc) return rc;
    if (hf_weights_count(w) != hf_weights_count(base))
        rc = err_set(ERR_IO, "'%s': %zu tensors written, the base has %zu",
                     dir, hf_weights_count(w), hf_weights_count(base));
    for (size_t i = 0; !rc && i < hf_weights_count(w); i++) {
        const char *file = NULL;
        const st_tensor *t = hf_weights_at(w, i, &file);
        const st_tensor *b = hf_weights_find(base, t->name, NULL);
        int is_edited = 0;
        for (size_t k = 0; k < n_edited; k++)
            is_edited |= !strcmp(edited[k], t->name);
        void *want = NULL;
        if (is_edited && b && (rc = edited_bytes(m, b, &want))) break;
        if (!b || b->nbytes != t->nbytes || b->dtype != t->dtype ||
            memcmp(t->data, want ? want : b->data, t->nbytes))
            rc = err_set(ERR_IO, "'%s': tensor '%s' did not read back as "
                         "written", file, t->name);
        free(want);
        /* both maps hold one tensor at a time: export peaks far below
         * the model's size, not at twice it */
        export_release_mapped(t->data, t->nbytes);
        if (b) export_release_mapped(b->data, b->nbytes);
    }
    hf_weights_close(w);
    return rc;
}

int export_patched_dir(const char *tmp, lm_model *m, const char *base_dir,
                       char *const *edited, size_t n_edited)
{
    const hf_weights *base = m->llama->weights;
    char from[PATH_MAX + 320], to[PATH_MAX + 320];
    const st_tensor **edit = calloc(n_edited ? n_edited : 1, sizeof *edit);
    int rc = edit ? 0 : err_set(ERR_NOMEM, "out of memory");
    for (size_t f = 0; !rc && f < hf_weights_files(base); f++) {
        const char *path = hf_weights_file(base, f);
        size_t n = 0;
        for (size_t k = 0; !rc && k < n_edited; k++) {
            const char *file = NULL;
            const st_tensor *t = hf_weights_find(base, edited[k], &file);
            if (!t)
                rc = err_set(ERR_FORMAT, "edited tensor '%s' is not in the "
                             "base model '%s'", edited[k], base_dir);
            else if (!strcmp(file, path))
                edit[n++] = t;
        }
        snprintf(to, sizeof to, "%s/%s", tmp, base_name(path));
        if (!rc)
            rc = n ? patch_shard(m, path, to, edit, n)
                   : export_copy_file(path, to);
    }
    free(edit);
    for (size_t i = 0; !rc && i < sizeof model_files / sizeof *model_files;
         i++) {
        snprintf(from, sizeof from, "%s/%s", base_dir, model_files[i]);
        snprintf(to, sizeof to, "%s/%s", tmp, model_files[i]);
        if (access(from, R_OK)) continue;
        rc = export_copy_file(from, to);
    }
    if (!rc) rc = check_written(m, base, tmp, edited, n_edited);
    return rc;
}
