/* factjson: facts and their versions as JSON objects (jansson), the one
 * shape that every --json output uses for them (queue, show, diff, ...):
 *
 *   {"version": 12, "number": 2, "import": 3, "state": "queued",
 *    "commit": 4 (only when committed or reverted),
 *    "subject": "...", "prompt": "The mother tongue of {} is",
 *    "prompt_text": "The mother tongue of Danielle Darrieux is",
 *    "relation": "P103", "target_new": " English", "target_true": " French",
 *    "paraphrases": ["..."], "neighborhood": [{"prompt": "...",
 *    "target": "..."}], "source": {"file": "edits/a.csv", "line": 4}} */
#ifndef STAMP_FACTJSON_H
#define STAMP_FACTJSON_H

#include "store/store.h"

#include <jansson.h>

/* "queued", "committed", "superseded", "reverted" (or "unknown"). */
const char *factjson_state(version_state s);

/* A new JSON object for the fact alone (no version fields); NULL when
 * out of memory. */
json_t *factjson_fact(const fact *f);

/* A new JSON object for a version (the fact plus its version fields);
 * NULL when out of memory. */
json_t *factjson_version(const store_version *v);

/* Fills `o` with the version's keys, reusing the values already in it:
 * one object can be filled for version after version (the streaming
 * output of `stamp queue --json`). Key order is that of the first fill.
 * Returns 0, or -1 when out of memory. */
int factjson_version_fill(json_t *o, const store_version *v);

#endif
