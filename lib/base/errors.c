/* errors: per-thread detail messages for the ERR_* codes (see errors.h).
 * A thread-local buffer keeps OpenMP workers from overwriting each
 * other's messages. */
#include "base/errors.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char detail[1024];

int err_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return code;
}

void err_clear(void) { detail[0] = '\0'; }

const char *err_strerror(int code)
{
    switch (code) {
    case ERR_OK: return "success";
    case ERR_IO: return "input/output error";
    case ERR_FORMAT: return "malformed input";
    case ERR_NOMEM: return "out of memory";
    case ERR_INVALID: return "invalid argument";
    case ERR_NOTFOUND: return "not found";
    case ERR_EXISTS: return "already exists";
    case ERR_BUSY: return "the store is locked by another process";
    case ERR_NUMERIC: return "numerical failure";
    case ERR_STORE: return "store failure";
    case ERR_EMPTY: return "nothing to do";
    }
    return "unknown error";
}

const char *err_message(int code)
{
    return detail[0] ? detail : err_strerror(code);
}
