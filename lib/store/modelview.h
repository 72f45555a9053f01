/* modelview: the store's current model = the read-only base model
 * (meta "model_dir": a GPT-2 or Llama-family directory, model/lm.h) with
 * the store's
 * edited tensors (the overlay in the `tensors` database) written over
 * it. An edited model is never a rewritten base file. */
#ifndef STAMP_MODELVIEW_H
#define STAMP_MODELVIEW_H

#include "model/lm.h"
#include "store/store.h"
#include "model/tokenizer.h"

/* The hashes init records of the base model in dir: *hashes_json
 * (malloc'ed) maps each tensor's name to hash_hex of its bytes; model_id
 * is the hash of the sorted "name:hash" lines. */
int modelview_hash_base(const char *dir, char **hashes_json,
                        char model_id[33]);

/* Loads the base model named by the store's meta into m and applies
 * every overlay tensor of the transaction's snapshot. Errors name the
 * model file or the tensor (ERR_FORMAT when an overlay tensor's size
 * does not match the model's). */
int modelview_load(lm_model *m, store_txn *t);

/* The base model directory recorded in meta (malloc'ed). */
int modelview_model_dir(store_txn *t, char **dir);

/* The base model's family and shape (its config.json). */
int modelview_config(store_txn *t, lm_config *c);

/* Opens the base model's tokenizer (tokenizer.json, or vocab.json and
 * merges.txt). */
int modelview_tokenizer(store_txn *t, tokenizer **tok);

/* Checks the base model's model.safetensors against the per-tensor
 * hashes recorded at init (meta "model_tensor_hashes"). ERR_FORMAT naming
 * the first tensor that differs (or is missing) when the file was changed
 * behind the store's back. */
int modelview_verify_base(store_txn *t);

#endif
