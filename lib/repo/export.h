/* export: the store's current model (the base model with every edit in
 * effect) written as a complete Hugging Face model directory:
 * config.json, vocab.json, merges.txt (and the tokenizer/generation
 * files the base has) copied byte for byte, model.safetensors with the
 * base file's tensor names, shapes and order (F32). It loads wherever
 * the base model loads. The base model's files are only read.
 *
 * Everything is written into DIR.tmp.PID beside DIR (base/tmpdir.h),
 * checked (every tensor of the written file hashes to the value it was
 * written from) and only then moved into place, so a failure never
 * leaves half a model at DIR; what a killed export leaves, the next
 * export to DIR removes (tmpdir_sweep_stale) once its process is gone. */
#ifndef STAMP_EXPORT_H
#define STAMP_EXPORT_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t head;        /* the commit exported (0: the base model) */
    size_t n_tensors;     /* tensors in model.safetensors */
    size_t n_edited;      /* of which the store has edited (its overlay) */
} export_result;

/* The checks export_hf makes of dir before anything else, for a caller
 * that wants them before it opens the store: ERR_INVALID when the name
 * is too long, ERR_EXISTS when dir is not a directory, or (without
 * force) a directory that is not empty, ERR_IO when it cannot be looked
 * at. *exists (may be NULL) tells whether dir is there. */
int export_check_dir(const char *dir, int force, int *exists);

/* Writes the current model of store s (a read transaction of its own)
 * to dir: created when missing (renamed into place whole); an existing
 * empty directory, or with force a non-empty one, gets the files moved
 * in one by one (files of the same names are replaced, others left
 * alone). Refused: the checks of export_check_dir, and the base model's
 * own directory (ERR_INVALID). On failure no temporary is left, and
 * nothing was written to dir unless a rename failed part way through
 * the moves into an existing directory (the files moved so far stay;
 * DIR.tmp.PID is beside DIR, on its file system). *out (may be NULL)
 * says what was written. */
int export_hf(store *s, const char *dir, int force, export_result *out);

#endif
