/* atomic_file: temporary file + fsync + rename (see atomic_file.h). The
 * temporary name is made by mkstemp, so two writers of the same path
 * never share a temporary file; the last rename wins. */
#include "base/atomic_file.h"
#include "base/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct atomic_file {
    int fd;
    char *path; /* final name */
    char *tmp;  /* temporary name */
};

int atomic_file_open(atomic_file **out, const char *path)
{
    *out = NULL;
    atomic_file *f = calloc(1, sizeof *f);
    size_t len = strlen(path);
    if (!f) return err_set(ERR_NOMEM, "'%s': out of memory", path);
    f->fd = -1;
    f->path = strdup(path);
    f->tmp = malloc(len + sizeof ".tmp.XXXXXX");
    if (!f->path || !f->tmp) {
        free(f->path); free(f->tmp); free(f);
        return err_set(ERR_NOMEM, "'%s': out of memory", path);
    }
    memcpy(f->tmp, path, len);
    memcpy(f->tmp + len, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    f->fd = mkstemp(f->tmp);
    if (f->fd < 0) {
        int e = errno;
        free(f->path); free(f->tmp); free(f);
        return err_set(ERR_IO, "cannot create a temporary file for '%s': %s",
                       path, strerror(e));
    }
    if (fchmod(f->fd, 0644) != 0) {
        int e = errno;
        atomic_file_abort(f);
        return err_set(ERR_IO, "cannot set the mode of a temporary file for "
                       "'%s': %s", path, strerror(e));
    }
    *out = f;
    return 0;
}

int atomic_file_write(atomic_file *f, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return err_set(ERR_IO, "cannot write '%s': %s", f->path,
                           strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsyncs the directory holding `path`, so the rename itself is durable. */
static int sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return err_set(ERR_NOMEM, "'%s': out of memory", path);
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || fsync(fd) != 0)
        rc = err_set(ERR_IO, "cannot sync directory '%s': %s", dir,
                     strerror(errno));
    if (fd >= 0) close(fd);
    free(copy);
    return rc;
}

int atomic_file_commit(atomic_file *f)
{
    int rc = 0;
    if (fsync(f->fd) != 0) {
        rc = err_set(ERR_IO, "cannot sync '%s': %s", f->path, strerror(errno));
        goto fail;
    }
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0) {
        rc = err_set(ERR_IO, "cannot close '%s': %s", f->path, strerror(errno));
        goto fail;
    }
    if (rename(f->tmp, f->path) != 0) {
        rc = err_set(ERR_IO, "cannot rename '%s' to '%s': %s", f->tmp,
                     f->path, strerror(errno));
        goto fail;
    }
    rc = sync_dir(f->path);
    free(f->path); free(f->tmp); free(f);
    return rc;
fail:
    atomic_file_abort(f);
    return rc;
}

void atomic_file_abort(atomic_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    free(f->path); free(f->tmp); free(f);
}
