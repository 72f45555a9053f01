/* hf_weights: the weights of a Hugging Face model directory, one
 * model.safetensors or shards listed by model.safetensors.index.json
 * ({"weight_map": {"tensor name": "shard file name", ...}}), opened as
 * one set of tensors found by name.
 *
 * Every file is mapped read-only (safetensors_open, which validates each
 * header) and stays mapped until hf_weights_close: tensors are handed out
 * as pointers into the maps, in their stored dtype, never copied. With an
 * index the shards and the index must agree exactly: every shard it names
 * exists, every tensor it maps is in that shard, every tensor of a shard
 * is mapped to that shard, no tensor is in two shards. Shard names are
 * plain file names in the directory (no '/', no leading '.'). Errors name
 * the file and the problem. */
#ifndef STAMP_HF_WEIGHTS_H
#define STAMP_HF_WEIGHTS_H

#include "model/safetensors.h"

#include <stddef.h>

typedef struct hf_weights hf_weights; /* opaque */

/* Opens DIR/model.safetensors.index.json and its shards if the index
 * exists, else DIR/model.safetensors. On success *out owns every map;
 * close with hf_weights_close. Errors: ERR_NOTFOUND (neither file, or a
 * shard missing), ERR_FORMAT (a bad index or shard), ERR_IO, ERR_NOMEM. */
int hf_weights_open(hf_weights **out, const char *dir);
void hf_weights_close(hf_weights *w); /* accepts NULL */

/* The tensor called `name`, or NULL. *file (when file is not NULL) gets
 * the path of the file that holds it, for messages. Both stay valid
 * until hf_weights_close. */
const st_tensor *hf_weights_find(const hf_weights *w, const char *name,
                                 const char **file);

/* Every tensor, sorted by name: i in [0, hf_weights_count). */
size_t hf_weights_count(const hf_weights *w);
const st_tensor *hf_weights_at(const hf_weights *w, size_t i,
                               const char **file);

/* The number of files (1, or the shards), their summed size in bytes, and
 * the path that names the set ("DIR/model.safetensors" or the index). */
size_t hf_weights_files(const hf_weights *w);
size_t hf_weights_bytes(const hf_weights *w);
const char *hf_weights_path(const hf_weights *w);
/* File i (0 .. hf_weights_files - 1): its path, and its tensors in the
 * file's own order; NULL when i is out of range. */
const char *hf_weights_file(const hf_weights *w, size_t i);
const st_file *hf_weights_file_tensors(const hf_weights *w, size_t i);

#endif
