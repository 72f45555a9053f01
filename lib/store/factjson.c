/* factjson: the JSON shape of facts and versions (see factjson.h). Keys
 * are added in a fixed order, which jansson keeps, so output is stable. */
#include "store/factjson.h"

#include <stdint.h>
#include <stdlib.h>

const char *factjson_state(version_state s)
{
    switch (s) {
    case VERSION_QUEUED: return "queued";
    case VERSION_COMMITTED: return "committed";
    case VERSION_SUPERSEDED: return "superseded";
    case VERSION_REVERTED: return "reverted";
    }
    return "unknown";
}

/* jansson refuses invalid UTF-8 (json_string returns NULL); the store
 * only holds validated text, but never let one bad byte drop a field. */
static json_t *str(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("\xef\xbf\xbd");
}

/* Sets o[key] to a string, reusing the value already there (the
 * streaming output fills one object again and again). */
static int set_str(json_t *o, const char *key, const char *s)
{
    json_t *j = json_object_get(o, key);
    if (json_is_string(j) && json_string_set(j, s ? s : "") == 0) return 0;
    return json_object_set_new(o, key, str(s));
}

static int set_int(json_t *o, const char *key, uint64_t v)
{
    json_t *j = json_object_get(o, key);
    if (json_is_integer(j)) return json_integer_set(j, (json_int_t)v);
    return json_object_set_new(o, key, json_integer((json_int_t)v));
}

static json_t *get_array(json_t *o, const char *key)
{
    json_t *a = json_object_get(o, key);
    if (json_is_array(a)) {
        json_array_clear(a);
        return a;
    }
    a = json_array();
    return json_object_set_new(o, key, a) ? NULL : a;
}

static int fill_fact(json_t *o, const fact *f)
{
    char *text = fact_prompt_text(f);
    int bad = !text;
    bad |= set_str(o, "subject", f->subject);
    bad |= set_str(o, "prompt", f->prompt);
    bad |= set_str(o, "prompt_text", text);
    bad |= set_str(o, "relation", f->relation);
    bad |= set_str(o, "target_new", f->target_new);
    bad |= set_str(o, "target_true", f->target_true);
    json_t *para = get_array(o, "paraphrases");
    json_t *nb = get_array(o, "neighborhood");
    bad |= !para || !nb;
    for (size_t i = 0; para && i < f->n_paraphrases; i++)
        bad |= json_array_append_new(para, str(f->paraphrases[i]));
    for (size_t i = 0; nb && i < f->n_neighbors; i++) {
        json_t *pair = json_object();
        bad |= !pair;
        bad |= json_object_set_new(pair, "prompt", str(f->neighbor_prompts[i]));
        bad |= json_object_set_new(pair, "target", str(f->neighbor_targets[i]));
        bad |= json_array_append_new(nb, pair);
    }
    json_t *src = json_object_get(o, "source");
    if (!json_is_object(src)) {
        src = json_object();
        bad |= json_object_set_new(o, "source", src);
    }
    bad |= set_str(src, "file", f->source_file);
    bad |= set_int(src, "line", f->source_line);
    free(text);
    return bad;
}

json_t *factjson_fact(const fact *f)
{
    json_t *o = json_object();
    if (!o) return NULL;
    if (fill_fact(o, f)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int factjson_version_fill(json_t *o, const store_version *v)
{
    int bad = set_int(o, "version", v->id);
    bad |= set_int(o, "number", v->number);
    bad |= set_int(o, "import", v->import_id);
    bad |= set_str(o, "state", factjson_state(v->state));
    if (v->state == VERSION_COMMITTED || v->state == VERSION_REVERTED ||
        v->commit_id)
        bad |= set_int(o, "commit", v->commit_id);
    else
        json_object_del(o, "commit");
    bad |= fill_fact(o, &v->f);
    return bad ? -1 : 0;
}

json_t *factjson_version(const store_version *v)
{
    json_t *o = json_object();
    if (!o) return NULL;
    if (factjson_version_fill(o, v)) {
        json_decref(o);
        return NULL;
    }
    return o;
}
