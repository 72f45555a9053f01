/* tmpdir: names, removes and sweeps up the DIR.tmp.PID temporaries that
 * directories are built in (see tmpdir.h). */
#include "base/tmpdir.h"
#include "base/errors.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

int tmpdir_name(char *buf, size_t size, const char *dir)
{
    int n = snprintf(buf, size, "%s.tmp.%ld", dir, (long)getpid());
    if (n < 0 || (size_t)n >= size)
        return err_set(ERR_INVALID, "the directory name '%s' is too long",
                       dir);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0; /* go on past what cannot be removed */
}

void tmpdir_remove(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The PID of a name "BASE.tmp.PID" (prefix "BASE.tmp."), or 0. */
static long pid_of(const char *name, const char *prefix, size_t plen)
{
    if (strncmp(name, prefix, plen))
        return 0;
    const char *digits = name + plen;
    char *end;
    errno = 0;
    long pid = strtol(digits, &end, 10);
    return end != digits && !*end && !errno && pid > 0 ? pid : 0;
}

void tmpdir_sweep_stale(const char *dir,
                        void (*removed)(void *ctx, const char *path,
                                        long pid),
                        void *ctx)
{
    char copy_dir[4096], copy_base[4096], prefix[4200], path[4200];
    if (snprintf(copy_dir, sizeof copy_dir, "%s", dir) >=
        (int)sizeof copy_dir)
        return;
    snprintf(copy_base, sizeof copy_base, "%s", dir);
    const char *parent = dirname(copy_dir), *base = basename(copy_base);
    size_t plen = (size_t)snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    DIR *d = opendir(parent);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        long pid = pid_of(e->d_name, prefix, plen);
        if (!pid || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        /* the entry's own digits: "0012" names another folder than 12 */
        if (snprintf(path, sizeof path, "%s.tmp.%s", dir,
                     e->d_name + plen) >= (int)sizeof path)
            continue;
        tmpdir_remove(path);
        if (removed)
            removed(ctx, path, pid);
    }
    closedir(d);
}
