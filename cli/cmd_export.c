/* export: writes the current model (base + the store's edited tensors)
 * as a complete Hugging Face model directory: config.json, vocab.json,
 * merges.txt (and the tokenizer/generation files the base has) copied
 * byte for byte, model.safetensors with the base file's tensor names,
 * shapes and order. The base model's files are only read. Everything is
 * written into a temporary directory beside DIR, checked (every tensor
 * of the written file hashes to the value it was written from), and only
 * then moved into place, so a failure never leaves half a model. */
#include "base/atomic_file.h"
#include "cli/cli.h"
#include "base/errors.h"
#include "model/gpt2.h"
#include "base/hash.h"
#include "store/modelview.h"
#include "model/safetensors.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char cmd_export_usage[] =
    "stamp export DIR [--force]\n"
    "\n"
    "Writes the current model (the base model with every edit in effect)\n"
    "to DIR in the Hugging Face layout: config.json, model.safetensors (the\n"
    "base file's tensor names and order, F32), vocab.json and merges.txt,\n"
    "plus tokenizer and generation files when the base model has them. It\n"
    "loads wherever the base model loads. The base model is never written.\n"
    "\n"
    "  --force   write into DIR even when it is not empty (files of the\n"
    "            same names are replaced, others left alone)\n"
    "\n"
    "DIR is created when missing; a non-empty DIR is refused without\n"
    "--force, and so is the base model's own directory.\n";

static const char *const required_files[] = {"config.json", "vocab.json",
                                             "merges.txt"};
static const char *const optional_files[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "generation_config.json"};

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

/* Removes the temporary directory and what it holds (files only). */
static void remove_tmp(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char p[PATH_MAX + 300];
    if (!d) return;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(path);
}

static int copy_file(const char *from, const char *to)
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

/* model.safetensors of the current model m, in the base file's order. */
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
    if ((rc = safetensors_write(path, w, n))) goto out;
    /* read back: every tensor as written */
    st_file *f = NULL;
    if ((rc = safetensors_open(&f, path))) goto out;
    for (size_t i = 0; !rc && i < n; i++) {
        const st_tensor *st = safetensors_find(f, w[i].name);
        char want[33], have[33];
        size_t numel = safetensors_at(base, i)->numel;
        hash_hex(want, w[i].data, numel * sizeof(float));
        if (st) hash_hex(have, st->data, st->nbytes);
        if (!st || st->dtype != ST_F32 || strcmp(want, have))
            rc = err_set(ERR_IO, "'%s': tensor '%s' did not read back as "
                         "written", path, w[i].name);
    }
    safetensors_close(f);
out:
    for (size_t i = 0; owned && i < n; i++) free(owned[i]);
    free(owned);
    free(w);
    return rc;
}

int cmd_export(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"force", no_argument, 0, 'f'},
        {0, 0, 0, 0},
    };
    if (cli_wants_help(argc, argv, "export")) return EXIT_OK;
    int force = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
        switch (c) {
        case 'f': force = 1; break;
        default: return cli_usage_error("export", "unknown option");
        }
    }
    if (optind >= argc)
        return cli_usage_error("export", "where to? (a directory)");
    if (optind + 1 < argc)
        return cli_usage_error("export", "unexpected argument '%s'",
                               argv[optind + 1]);
    const char *dir = argv[optind];

    store *s = NULL;
    store_txn *t = NULL;
    gpt2_model m = {0};
    st_file *base = NULL;
    char *base_dir = NULL, **overlay = NULL;
    char tmp[PATH_MAX], from[PATH_MAX + 320], to[PATH_MAX + 320];
    char real_base[PATH_MAX], real_dir[PATH_MAX];
    size_t n_overlay = 0;
    uint64_t head = 0;
    int rc, made_tmp = 0, exists = 0;
    struct stat sb;
    tmp[0] = '\0';

    if (strlen(dir) + 32 >= sizeof tmp)
        return cli_fail("export directory name '%s' is too long", dir);
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return cli_fail("'%s' exists and is not a directory", dir);
        exists = 1;
        if (!force && dir_nonempty(dir))
            return cli_fail("'%s' exists and is not empty (use --force to "
                            "write into it)", dir);
    } else if (errno != ENOENT) {
        return cli_fail("cannot use '%s': %s", dir, strerror(errno));
    }
    if ((rc = store_open(&s, g->store_dir))) goto fail;
    if ((rc = store_txn_begin(s, &t, 0))) goto fail;
    if ((rc = store_head(t, &head))) goto fail;
    if ((rc = modelview_model_dir(t, &base_dir))) goto fail;
    if (exists && realpath(dir, real_dir) && realpath(base_dir, real_base) &&
        !strcmp(real_dir, real_base)) {
        rc = err_set(ERR_INVALID, "'%s' is the base model's directory; the "
                     "base model is never overwritten", dir);
        goto fail;
    }
    for (size_t i = 0; i < sizeof required_files / sizeof *required_files; i++) {
        snprintf(from, sizeof from, "%s/%s", base_dir, required_files[i]);
        if (access(from, R_OK)) {
            rc = err_set(ERR_NOTFOUND, "base model '%s' has no readable %s",
                         base_dir, required_files[i]);
            goto fail;
        }
    }
    if ((rc = modelview_load(&m, t))) goto fail;
    if ((rc = store_tensor_names(t, &overlay, &n_overlay))) goto fail;
    snprintf(from, sizeof from, "%s/model.safetensors", base_dir);
    if ((rc = safetensors_open(&base, from))) goto fail;

    /* the temporary directory beside DIR */
    {
        size_t len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/') len--;
        snprintf(tmp, sizeof tmp, "%.*s.tmp-XXXXXX", (int)len, dir);
    }
    if (!mkdtemp(tmp)) {
        rc = err_set(ERR_IO, "cannot create a directory beside '%s': %s", dir,
                     strerror(errno));
        goto fail;
    }
    made_tmp = 1;
    snprintf(to, sizeof to, "%s/model.safetensors", tmp);
    if ((rc = write_weights(&m, base, to))) goto fail;
    for (size_t i = 0; i < sizeof required_files / sizeof *required_files; i++) {
        snprintf(from, sizeof from, "%s/%s", base_dir, required_files[i]);
        snprintf(to, sizeof to, "%s/%s", tmp, required_files[i]);
        if ((rc = copy_file(from, to))) goto fail;
    }
    for (size_t i = 0; i < sizeof optional_files / sizeof *optional_files; i++) {
        snprintf(from, sizeof from, "%s/%s", base_dir, optional_files[i]);
        snprintf(to, sizeof to, "%s/%s", tmp, optional_files[i]);
        if (access(from, R_OK) == 0 && (rc = copy_file(from, to))) goto fail;
    }
    chmod(tmp, 0755);

    /* into place */
    if (!exists) {
        if (rename(tmp, dir)) {
            rc = err_set(ERR_IO, "cannot move the export into '%s': %s", dir,
                         strerror(errno));
            goto fail;
        }
        made_tmp = 0;
    } else {
        DIR *d = opendir(tmp);
        struct dirent *e;
        if (!d) {
            rc = err_set(ERR_IO, "cannot read '%s': %s", tmp, strerror(errno));
            goto fail;
        }
        while (!rc && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(from, sizeof from, "%s/%s", tmp, e->d_name);
            snprintf(to, sizeof to, "%s/%s", dir, e->d_name);
            if (rename(from, to))
                rc = err_set(ERR_IO, "cannot move '%s' into '%s': %s",
                             e->d_name, dir, strerror(errno));
        }
        closedir(d);
        if (rc) goto fail;
    }
    if (made_tmp) remove_tmp(tmp);
    made_tmp = 0;

    if (head)
        printf("exported commit %llu to '%s'", (unsigned long long)head, dir);
    else
        printf("exported the base model (no commits) to '%s'", dir);
    printf(": %zu tensor%s, %zu edited\n", safetensors_count(base),
           safetensors_count(base) == 1 ? "" : "s", n_overlay);
    rc = 0;
    goto out;
fail:
    cli_fail_code(rc);
    rc = EXIT_FAIL;
out:
    if (made_tmp) remove_tmp(tmp);
    safetensors_close(base);
    store_strings_free(overlay, n_overlay);
    gpt2_model_free(&m);
    store_txn_abort(t);
    store_close(s);
    free(base_dir);
    return rc ? EXIT_FAIL : EXIT_OK;
}
