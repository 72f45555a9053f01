/* export: the current model as a Hugging Face directory, built in
 * DIR.tmp.PID and moved into place (see export.h). GPT-2's weights are
 * written here; the Llama family's are the base's files patched
 * (export_patch.c). */
#include "repo/export.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/hash.h"
#include "base/tmpdir.h"
#include "model/lm.h"
#include "repo/export_impl.h"
#include "model/hf_weights.h"
#include "model/safetensors.h"
#include "store/modelview.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const required_files[] = {"config.json", "vocab.json",
                                             "merges.txt"};
static const char *const optional_files[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "generation_config.json"};
#define N_REQUIRED (sizeof required_files / sizeof *required_files)
#define N_OPTIONAL (sizeof optional_files / sizeof *optional_files)

/* 1 when the directory has entries besides . and .. */
static int dir_nonempty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int any = 0;
    if (!d) return 0;
    while (!any && (e = readdir(d)))
        any = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return any;
}

int export_check_dir(const char *dir, int force, int *exists)
{
    struct stat sb;
    if (exists) *exists = 0;
    if (strlen(dir) + 32 >= PATH_MAX)
        return err_set(ERR_INVALID, "export directory name '%s' is too long",
                       dir);
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return err_set(ERR_EXISTS, "'%s' exists and is not a directory",
                           dir);
        if (exists) *exists = 1;
        if (!force && dir_nonempty(dir))
            return err_set(ERR_EXISTS, "'%s' exists and is not empty (use "
                           "--force to write into it)", dir);
    } else if (errno != ENOENT) {
        return err_set(ERR_IO, "cannot use '%s': %s", dir, strerror(errno));
    }
    return 0;
}

int export_copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    atomic_file *out = NULL;
    char buf[65536];
    size_t n;
    if (!in) return err_set(ERR_IO, "cannot read '%s': %s", from,
                            strerror(errno));
    int rc = atomic_file_open(&out, to);
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        rc = atomic_file_write(out, buf, n);
    if (!rc && ferror(in))
        rc = err_set(ERR_IO, "cannot read '%s': %s", from, strerror(errno));
    fclose(in);
    if (rc) {
        atomic_file_abort(out);
        return rc;
    }
    return atomic_file_commit(out);
}

void export_release_mapped(const void *data, size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    if (!data || page <= 0) return;
    uintptr_t lo = (uintptr_t)data, hi = lo + len, p = (uintptr_t)page;
    uintptr_t a = (lo + p - 1) / p * p, b = hi / p * p;
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Every tensor of the file at path reads back as w[i] was written. The
 * read-back map holds one tensor at a time: export peaks near the
 * model's size, not twice it. */
static int check_weights(const char *path, const st_write_tensor *w,
                         const st_file *base, size_t n)
{
    st_file *f = NULL;
    int rc = safetensors_open(&f, path);
    for (size_t i = 0; !rc && i < n; i++) {
        const st_tensor *st = safetensors_find(f, w[i].name);
        char want[33], have[33];
        size_t numel = safetensors_at(base, i)->numel;
        hash_hex(want, w[i].data, numel * sizeof(float));
        if (st) {
            hash_hex(have, st->data, st->nbytes);
            export_release_mapped(st->data, st->nbytes);
        }
        if (!st || st->dtype != ST_F32 || strcmp(want, have))
            rc = err_set(ERR_IO, "'%s': tensor '%s' did not read back as "
                         "written", path, w[i].name);
    }
    safetensors_close(f);
    return rc;
}

/* model.safetensors of the current model m at path, in the base file's
 * order, read back. */
static int write_weights(const gpt2_model *m, const st_file *base,
                         const char *path)
{
    size_t n = safetensors_count(base);
    st_write_tensor *w = calloc(n ? n : 1, sizeof *w);
    float **owned = calloc(n ? n : 1, sizeof *owned);
    int rc = 0;
    if (!w || !owned) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const st_tensor *st = safetensors_at(base, i);
        size_t numel = 0;
        const float *src = gpt2_tensor(m, st->name, &numel, NULL, NULL);
        const char *tail = strncmp(st->name, "transformer.", 12)
                               ? st->name : st->name + 12;
        if (!src && !strcmp(tail, "lm_head.weight")) /* tied to wte */
            src = gpt2_tensor(m, "wte.weight", &numel, NULL, NULL);
        if (src && numel != st->numel) {
            rc = err_set(ERR_FORMAT, "tensor '%s' has %zu values in the base "
                         "file and %zu in the model", st->name, st->numel,
                         numel);
            goto out;
        }
        if (!src) { /* not a GPT-2 parameter (attn.bias, ...): as it is */
            if (!(owned[i] = malloc((st->numel ? st->numel : 1) *
                                    sizeof(float)))) {
                rc = err_set(ERR_NOMEM, "out of memory");
                goto out;
            }
            safetensors_to_f32(st, owned[i]);
            src = owned[i];
        }
        w[i].name = st->name;
        w[i].ndim = st->ndim;
        memcpy(w[i].shape, st->shape, sizeof w[i].shape);
        w[i].data = src;
    }
    if (!(rc = safetensors_write(path, w, n)))
        rc = check_weights(path, w, base, n);
out:
    for (size_t i = 0; owned && i < n; i++) free(owned[i]);
    free(owned);
    free(w);
    return rc;
}

/* The whole directory into tmp: the weights of m, the base's files. */
static int write_model_dir(const char *tmp, const gpt2_model *m,
                           const st_file *base, const char *base_dir)
{
    char from[PATH_MAX + 320], to[PATH_MAX + 320];
    int rc;
    snprintf(to, sizeof to, "%s/model.safetensors", tmp);
    if ((rc = write_weights(m, base, to))) return rc;
    for (size_t i = 0; i < N_REQUIRED + N_OPTIONAL; i++) {
        const char *name = i < N_REQUIRED ? required_files[i]
                                          : optional_files[i - N_REQUIRED];
        snprintf(from, sizeof from, "%s/%s", base_dir, name);
        snprintf(to, sizeof to, "%s/%s", tmp, name);
        if (i >= N_REQUIRED && access(from, R_OK)) continue;
        if ((rc = export_copy_file(from, to))) return rc;
    }
    chmod(tmp, 0755);
    return 0;
}

/* tmp's files into dir: the whole directory renamed when dir was not
 * there (*moved: tmp is gone), else file by file. */
static int move_into_place(const char *tmp, const char *dir, int exists,
                           int *moved)
{
    char from[PATH_MAX + 320], to[PATH_MAX + 320];
    int rc = 0;
    if (!exists) {
        if (rename(tmp, dir))
            return err_set(ERR_IO, "cannot move the export into '%s': %s",
                           dir, strerror(errno));
        *moved = 1;
        return 0;
    }
    DIR *d = opendir(tmp);
    struct dirent *e;
    if (!d) return err_set(ERR_IO, "cannot read '%s': %s", tmp, strerror(errno));
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(from, sizeof from, "%s/%s", tmp, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, e->d_name);
        if (rename(from, to))
            rc = err_set(ERR_IO, "cannot move '%s' into '%s': %s", e->d_name,
                         dir, strerror(errno));
    }
    closedir(d);
    return rc;
}

/* The base model must not be the destination, and must have its files
 * (a GPT-2 directory its config and tokenizer files; a Llama-family one
 * is checked file by file as it is copied). */
static int check_base(const char *dir, int exists, const char *base_dir,
                      lm_family family)
{
    char real_base[PATH_MAX], real_dir[PATH_MAX], path[PATH_MAX + 320];
    if (exists && realpath(dir, real_dir) && realpath(base_dir, real_base) &&
        !strcmp(real_dir, real_base))
        return err_set(ERR_INVALID, "'%s' is the base model's directory; the "
                       "base model is never overwritten", dir);
    for (size_t i = 0; family == LM_GPT2 && i < N_REQUIRED; i++) {
        snprintf(path, sizeof path, "%s/%s", base_dir, required_files[i]);
        if (access(path, R_OK))
            return err_set(ERR_NOTFOUND, "base model '%s' has no readable %s",
                           base_dir, required_files[i]);
    }
    return 0;
}

int export_hf(store *s, const char *dir, int force, export_result *out)
{
    store_txn *t = NULL;
    lm_model m = {0};
    st_file *base = NULL;
    char *base_dir = NULL, **overlay = NULL;
    char clean[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX + 320];
    size_t n_overlay = 0, len = strlen(dir);
    uint64_t head = 0;
    int rc, exists = 0, made_tmp = 0, moved = 0;

    if ((rc = export_check_dir(dir, force, &exists))) return rc;
    while (len > 1 && dir[len - 1] == '/') len--; /* "DIR/": DIR.tmp.PID */
    snprintf(clean, sizeof clean, "%.*s", (int)len, dir);
    if ((rc = store_txn_begin(s, &t, 0)) || (rc = store_head(t, &head)) ||
        (rc = modelview_model_dir(t, &base_dir)) ||
        (rc = modelview_load(&m, t)) ||
        (rc = check_base(dir, exists, base_dir, m.config.family)) ||
        (rc = store_tensor_names(t, &overlay, &n_overlay)))
        goto out;
    snprintf(path, sizeof path, "%s/model.safetensors", base_dir);
    if (m.config.family == LM_GPT2 && (rc = safetensors_open(&base, path)))
        goto out;

    /* the temporary beside DIR; a killed export's goes first */
    tmpdir_sweep_stale(clean, NULL, NULL);
    if ((rc = tmpdir_name(tmp, sizeof tmp, clean))) goto out;
    tmpdir_remove(tmp);
    if (mkdir(tmp, 0700)) {
        rc = err_set(ERR_IO, "cannot create a directory beside '%s': %s", dir,
                     strerror(errno));
        goto out;
    }
    made_tmp = 1;
    rc = m.config.family == LM_GPT2
             ? write_model_dir(tmp, m.gpt2, base, base_dir)
             : export_patched_dir(tmp, &m, base_dir, overlay, n_overlay);
    if (rc || (rc = move_into_place(tmp, dir, exists, &moved))) goto out;
    if (out) {
        out->head = head;
        out->n_tensors = base ? safetensors_count(base)
                              : hf_weights_count(m.llama->weights);
        out->n_edited = n_overlay;
    }
out:
    if (made_tmp && !moved) tmpdir_remove(tmp);
    safetensors_close(base);
    store_strings_free(overlay, n_overlay);
    lm_model_free(&m);
    store_txn_abort(t);
    free(base_dir);
    return rc;
}
