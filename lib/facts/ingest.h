/* ingest: fact lists -> validated fact records. CSV (libcsv, header row)
 * and the JSON formats of the field (jansson): CounterFact, EasyEdit /
 * KnowEdit and zsRE (see docs/memit.md). Pure: reads the
 * file, touches no store.
 *
 * CSV columns (header names, any order): subject, prompt, target_new
 * (required); target_true, relation, paraphrase (repeatable),
 * neighborhood_prompt + neighborhood_target (repeatable, in pairs; an
 * empty neighborhood_target means target_true). The prompt holds "{}"
 * where the subject goes, or the subject written out (its first
 * occurrence becomes "{}"). A UTF-8 BOM and CRLF line ends are accepted.
 *
 * Every problem is reported as "FILE:LINE: problem" (LINE = the physical
 * line where the CSV row or JSON record starts). */
#ifndef STAMP_INGEST_H
#define STAMP_INGEST_H

#include "facts/fact.h"
#include "model/tokenizer.h"

#include <stddef.h>

typedef enum {
    INGEST_AUTO = 0,    /* guess: .csv / JSON shape of the first record */
    INGEST_CSV,
    INGEST_COUNTERFACT,
    INGEST_EASYEDIT,
    INGEST_ZSRE,
} ingest_format;

/* Parses "csv", "counterfact", "easyedit", "zsre", "auto"; -1 if none. */
int ingest_format_parse(const char *name);

typedef struct {
    const tokenizer *tok;  /* NULL: skip the context-length check */
    size_t max_tokens;     /* prompt + target must fit (n_positions) */
    size_t max_errors;     /* stop collecting after this many (0 = 100) */
} ingest_options;

typedef struct {
    size_t line;
    char *message;         /* "FILE:LINE: problem", malloc'ed */
} ingest_problem;

typedef struct {
    fact *facts;           /* the good records, in file order */
    size_t n_facts;
    ingest_problem *problems;
    size_t n_problems;     /* bad records (or a whole-file problem) */
    int truncated;         /* more problems than max_errors */
    size_t n_bad;          /* bad records in all, past max_errors too */
    ingest_format format;  /* the format used */
} ingest_result;

/* The name standard input goes by in messages and in facts' source_file
 * when ingest_read is given "-". */
#define INGEST_STDIN "<stdin>"

/* Reads `path`; "-" reads standard input to its end (named
 * INGEST_STDIN; with INGEST_AUTO its format is told by its content).
 * Returns 0 when the file could be read and parsed as a whole (check
 * res->n_problems for bad records; a file with no records at all, such
 * as a CSV header alone, gives n_facts = n_bad = 0), or an ERR_* code
 * with err_set() detail when the file as a whole is unusable (missing,
 * a directory, not UTF-8, wrong JSON shape, no header...); in that case
 * res->problems holds the same message too. */
int ingest_read(const char *path, ingest_format fmt,
                const ingest_options *opt, ingest_result *res);
void ingest_result_free(ingest_result *res);

#endif
