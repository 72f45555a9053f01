/* errors: the error codes every library module returns, and the detail
 * message that goes with the most recent error of the calling thread.
 *
 * Library functions return 0 or one of the negative ERR_* codes and never
 * print or exit. Where a code alone would not tell the user what went
 * wrong (which file, which line, which tensor), the function also calls
 * err_set() with a lowercase message, problem first, subject quoted:
 *     err_set("'%s': header length %zu exceeds file size", path, n);
 * The command layer prints "stamp: error: " + err_message(code). */
#ifndef STAMP_ERRORS_H
#define STAMP_ERRORS_H

enum {
    ERR_OK = 0,
    ERR_IO = -1,        /* a system call failed (errno-based detail) */
    ERR_FORMAT = -2,    /* malformed input file or record */
    ERR_NOMEM = -3,     /* allocation failed */
    ERR_INVALID = -4,   /* bad argument or inconsistent request */
    ERR_NOTFOUND = -5,  /* named thing does not exist */
    ERR_EXISTS = -6,    /* would overwrite something that exists */
    ERR_BUSY = -7,      /* another process holds the lock */
    ERR_NUMERIC = -8,   /* NaN, singular system, divergence */
    ERR_STORE = -9,     /* the store (LMDB) failed or is inconsistent */
    ERR_EMPTY = -10,    /* nothing to do (e.g. empty queue) */
};

/* Records a detail message for the calling thread (printf format).
 * Returns ERR_* passed in `code` so callers can write
 *     return err_set(ERR_FORMAT, "'%s': ...", path);             */
int err_set(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears the calling thread's detail message. */
void err_clear(void);

/* The generic text of a code ("malformed input", ...). Never NULL. */
const char *err_strerror(int code);

/* The calling thread's detail message if one was set since the last
 * err_clear(), else err_strerror(code). Valid until the next err_set. */
const char *err_message(int code);

#endif
