/* export_impl: what export.c and export_patch.c share (private to
 * lib/repo). */
#ifndef STAMP_EXPORT_IMPL_H
#define STAMP_EXPORT_IMPL_H

#include "model/lm.h"

#include <stddef.h>

/* Copies the file `from` to `to` (atomically: a temporary renamed). */
int export_copy_file(const char *from, const char *to);

/* Drops the whole pages inside [data, data + len) of a read-only file map
 * from the process (the page cache keeps them; a later read faults them
 * back in), so that reading a file back once costs no memory on top of
 * the model. Only for read-only file maps: it would zero heap memory. */
void export_release_mapped(const void *data, size_t len);

/* A Llama-family model m (the store's model view, whose overlay tensors
 * are edited[0..n_edited)) into the directory tmp: the base directory's
 * files and shard layout, the edited tensors patched in their stored
 * dtype, every tensor read back and checked (export_patch.c). */
int export_patched_dir(const char *tmp, lm_model *m, const char *base_dir,
                       char *const *edited, size_t n_edited);

#endif
