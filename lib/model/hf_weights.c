/* hf_weights: a model directory's safetensors files as one set of tensors
 * (see hf_weights.h).
 *
 * The index is untrusted like the shards: it is parsed with jansson
 * (duplicate keys rejected), each shard name must be a plain file name,
 * and the index and the shards are checked against each other both ways
 * before anything is handed out. Lookups go through one array of every
 * tensor sorted by name, which also exposes a tensor present in two
 * shards as two neighbours. */
#include "model/hf_weights.h"
#include "base/errors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *name; /* owned by its st_file */
    const st_tensor *t;
    size_t file;      /* index into files/st */
} entry;

struct hf_weights {
    char *path;       /* the index, or DIR/model.safetensors */
    char **files;     /* (n_files) paths */
    st_file **st;     /* (n_files) */
    size_t n_files;
    entry *entries;   /* (n) sorted by name */
    size_t n;
    size_t bytes;
};

static char *path_join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, file);
    return p;
}

void hf_weights_close(hf_weights *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_files; i++) {
        safetensors_close(w->st[i]);
        free(w->files[i]);
    }
    free(w->st);
    free(w->files);
    free(w->entries);
    free(w->path);
    free(w);
}

/* Opens DIR/name as file number w->n_files; a missing shard is named as
 * one (index: the index's path, or NULL for the single file). */
static int add_file(hf_weights *w, const char *dir, const char *name,
                    const char *index)
{
    char *path = path_join(dir, name);
    if (!path) return err_set(ERR_NOMEM, "out of memory");
    size_t i = w->n_files;
    w->files[i] = path;
    int rc = safetensors_open(&w->st[i], path);
    if (rc == ERR_NOTFOUND && index)
        rc = err_set(ERR_NOTFOUND, "'%s': shard named in '%s' is missing",
                     path, index);
    if (rc) {
        free(path);
        w->files[i] = NULL;
        w->st[i] = NULL;
        return rc;
    }
    w->n_files++;
    struct stat st;
    if (stat(path, &st) == 0) w->bytes += (size_t)st.st_size;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return x->file < y->file ? -1 : x->file > y->file;
}

/* The sorted table of every tensor of every file; a name twice is an
 * error naming both files. */
static int build_entries(hf_weights *w)
{
    size_t n = 0;
    for (size_t f = 0; f < w->n_files; f++) n += safetensors_count(w->st[f]);
    w->entries = malloc((n ? n : 1) * sizeof *w->entries);
    if (!w->entries) return err_set(ERR_NOMEM, "out of memory");
    for (size_t f = 0; f < w->n_files; f++)
        for (size_t i = 0; i < safetensors_count(w->st[f]); i++) {
            const st_tensor *t = safetensors_at(w->st[f], i);
            w->entries[w->n++] = (entry){t->name, t, f};
        }
    qsort(w->entries, w->n, sizeof *w->entries, cmp_entry);
    for (size_t i = 1; i < w->n; i++)
        if (!strcmp(w->entries[i - 1].name, w->entries[i].name))
            return err_set(ERR_FORMAT, "tensor '%s' is in two shards, '%s' and "
                           "'%s'", w->entries[i].name,
                           w->files[w->entries[i - 1].file],
                           w->files[w->entries[i].file]);
    return 0;
}

static const entry *lookup(const hf_weights *w, const char *name)
{
    entry key = {name, NULL, 0};
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(w->entries[mid].name, key.name);
        if (c == 0) return &w->entries[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* A shard name must stay inside the directory. */
static int plain_file_name(const char *s)
{
    return s[0] && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\');
}

static int open_index(hf_weights *w, const char *dir)
{
    const char *ipath = w->path;
    json_error_t jerr;
    json_t *root = json_load_file(ipath, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line < 0)
            return err_set(ERR_IO, "'%s': %s", ipath, jerr.text);
        return err_set(ERR_FORMAT, "'%s': bad JSON at line %d column %d: %s",
                       ipath, jerr.line, jerr.column, jerr.text);
    }
    int rc = 0;
    json_t *map = json_is_object(root) ? json_object_get(root, "weight_map")
                                       : NULL;
    json_t *shards = json_object(); /* the distinct shard names, as a set */
    if (!shards) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!json_is_object(map)) {
        rc = err_set(ERR_FORMAT, "'%s': missing key 'weight_map' (an object "
                     "from tensor names to shard files)", ipath);
        goto out;
    }
    const char *name;
    json_t *v;
    json_object_foreach(map, name, v) {
        if (!json_is_string(v)) {
            rc = err_set(ERR_FORMAT, "'%s': the shard of tensor '%s' is not a "
                         "string", ipath, name);
            goto out;
        }
        if (!plain_file_name(json_string_value(v))) {
            rc = err_set(ERR_FORMAT, "'%s': tensor '%s' is mapped to '%s', not "
                         "a file name in the directory", ipath, name,
                         json_string_value(v));
            goto out;
        }
        json_object_set(shards, json_string_value(v), json_true());
    }
    size_t ns = json_object_size(shards);
    if (ns == 0) {
        rc = err_set(ERR_FORMAT, "'%s': 'weight_map' is empty", ipath);
        goto out;
    }
    w->files = calloc(ns, sizeof *w->files);
    w->st = calloc(ns, sizeof *w->st);
    if (!w->files || !w->st) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto out;
    }
    /* jansson iterates in insertion order: the shards open in the order
     * the index first names them */
    json_object_foreach(shards, name, v)
        if ((rc = add_file(w, dir, name, ipath))) goto out;
    if ((rc = build_entries(w))) goto out;
    for (size_t i = 0; i < w->n; i++) {
        const entry *e = &w->entries[i];
        json_t *s = json_object_get(map, e->name);
        const char *shard = strrchr(w->files[e->file], '/') + 1;
        if (!s) {
            rc = err_set(ERR_FORMAT, "'%s': tensor '%s' is not in the index "
                         "'%s'", w->files[e->file], e->name, ipath);
            goto out;
        }
        if (strcmp(json_string_value(s), shard) != 0) {
            rc = err_set(ERR_FORMAT, "'%s': holds tensor '%s', which the index "
                         "'%s' maps to '%s'", w->files[e->file], e->name,
                         ipath, json_string_value(s));
            goto out;
        }
    }
    json_object_foreach(map, name, v) {
        if (!lookup(w, name)) {
            rc = err_set(ERR_FORMAT, "'%s': tensor '%s' is mapped to '%s', "
                         "which does not hold it", ipath, name,
                         json_string_value(v));
            goto out;
        }
    }
out:
    json_decref(shards);
    json_decref(root);
    return rc;
}

int hf_weights_open(hf_weights **out, const char *dir)
{
    *out = NULL;
    hf_weights *w = calloc(1, sizeof *w);
    char *index = path_join(dir, "model.safetensors.index.json");
    char *single = path_join(dir, "model.safetensors");
    int rc = 0;
    if (!w || !index || !single) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto fail;
    }
    struct stat st;
    if (stat(index, &st) == 0) {
        w->path = index;
        index = NULL;
        rc = open_index(w, dir);
    } else if (errno != ENOENT) {
        rc = err_set(ERR_IO, "cannot stat '%s': %s", index, strerror(errno));
    } else if (stat(single, &st) != 0 && errno == ENOENT) {
        rc = err_set(ERR_NOTFOUND, "'%s': no model.safetensors or "
                     "model.safetensors.index.json", dir);
    } else {
        w->path = strdup(single);
        w->files = calloc(1, sizeof *w->files);
        w->st = calloc(1, sizeof *w->st);
        if (!w->path || !w->files || !w->st)
            rc = err_set(ERR_NOMEM, "out of memory");
        else if (!(rc = add_file(w, dir, "model.safetensors", NULL)))
            rc = build_entries(w);
    }
    if (rc) goto fail;
    free(index);
    free(single);
    *out = w;
    return 0;
fail:
    free(index);
    free(single);
    hf_weights_close(w);
    return rc;
}

const st_tensor *hf_weights_find(const hf_weights *w, const char *name,
                                 const char **file)
{
    const entry *e = lookup(w, name);
    if (file) *file = e ? w->files[e->file] : NULL;
    return e ? e->t : NULL;
}

size_t hf_weights_count(const hf_weights *w) { return w->n; }

const st_tensor *hf_weights_at(const hf_weights *w, size_t i,
                               const char **file)
{
    if (i >= w->n) return NULL;
    if (file) *file = w->files[w->entries[i].file];
    return w->entries[i].t;
}

size_t hf_weights_files(const hf_weights *w) { return w->n_files; }
size_t hf_weights_bytes(const hf_weights *w) { return w->bytes; }
const char *hf_weights_path(const hf_weights *w) { return w->path; }

const char *hf_weights_file(const hf_weights *w, size_t i)
{
    return i < w->n_files ? w->files[i] : NULL;
}

const st_file *hf_weights_file_tensors(const hf_weights *w, size_t i)
{
    return i < w->n_files ? w->st[i] : NULL;
}
