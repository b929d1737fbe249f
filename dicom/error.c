/* error.c - filling dcm_error and naming error codes. */
#include "internal.h"

#include <stdio.h>

int dcm_fail(dcm_error *err, int code, int64_t offset, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        err->offset = offset;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *dcm_error_code_name(int code)
{
    switch (code) {
    case DCM_OK: return "ok";
    case DCM_E_NOMEM: return "out of memory";
    case DCM_E_IO: return "i/o error";
    case DCM_E_TRUNCATED: return "truncated";
    case DCM_E_INVALID: return "invalid";
    case DCM_E_LIMIT: return "limit exceeded";
    case DCM_E_UNSUPPORTED: return "unsupported";
    case DCM_E_NOT_FOUND: return "not found";
    case DCM_E_ARG: return "bad argument";
    case DCM_E_TIMEOUT: return "timeout";
    case DCM_E_CLOSED: return "connection closed";
    case DCM_E_ABORTED: return "aborted";
    case DCM_E_REJECTED: return "rejected";
    default: return "unknown error";
    }
}
