/* atomic_file: writes a file so that a crash never leaves half of it.
 * The bytes go to a temporary file in the same directory
 * ("PATH.tmp.XXXXXX"), which is fsync'ed, renamed over PATH, and the
 * directory fsync'ed; until the commit the old PATH (if any) is intact.
 * Used by safetensors_write and gpt2_config_write; any module that
 * writes a whole file may use it. */
#ifndef STAMP_ATOMIC_FILE_H
#define STAMP_ATOMIC_FILE_H

#include <stddef.h>

typedef struct atomic_file atomic_file; /* opaque */

/* Creates the temporary file for `path` (mode 0644). On success *out
 * owns it; finish with atomic_file_commit or atomic_file_abort. */
int atomic_file_open(atomic_file **out, const char *path);

/* Appends `n` bytes (retries short writes and EINTR). */
int atomic_file_write(atomic_file *f, const void *buf, size_t n);

/* fsync + close + rename into place + fsync of the directory, then frees
 * `f`. On failure the temporary file is removed, `f` is freed and the
 * old file at the path is untouched. */
int atomic_file_commit(atomic_file *f);

/* Removes the temporary file and frees `f`. Accepts NULL. */
void atomic_file_abort(atomic_file *f);

#endif
