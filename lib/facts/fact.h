/* fact: one fact edit request as stamp keeps it, whatever file format it
 * came from. All strings are UTF-8, NUL-terminated and owned by the
 * fact (fact_free releases them). */
#ifndef STAMP_FACT_H
#define STAMP_FACT_H

#include <stddef.h>

typedef struct {
    char *subject;            /* "Danielle Darrieux" */
    char *prompt;             /* "The mother tongue of {} is": "{}" marks
                                 the subject (exactly one "{}") */
    char *relation;           /* "P103" or "" when unknown */
    char *target_new;         /* " English": as appended to the prompt;
                                 ingest adds the leading space when absent */
    char *target_true;        /* " French" or "" when unknown */
    size_t n_paraphrases;
    char **paraphrases;       /* full prompts, subject written out */
    size_t n_neighbors;
    char **neighbor_prompts;  /* prompts about other subjects ...     */
    char **neighbor_targets;  /* ... whose answer this is (usually
                                 target_true); same count */
    char *source_file;        /* where it was imported from */
    size_t source_line;       /* line (CSV) or record's line (JSON) */
} fact;

void fact_free(fact *f);              /* frees the strings; accepts NULL */
int fact_copy(fact *dst, const fact *src);

/* The prompt with the subject put in place of "{}" (malloc'ed). */
char *fact_prompt_text(const fact *f);

/* The slot key: subject + "\x1f" + (relation if non-empty, else prompt)
 * (malloc'ed). Two facts with the same slot are versions of one fact. */
char *fact_slot(const fact *f);

#endif
