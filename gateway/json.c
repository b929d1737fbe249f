/* json.c - the JSON the gateway writes (provenance in the file meta, the
 * audit trail): strings escaped, objects built field by field into a
 * bounded buffer (what does not fit is cut, never overrun). */
#include "gateway.h"

#include <stdio.h>

/* JSON string value: quotes, backslashes and control bytes escaped. */
void gw_json_string(char *out, size_t size, size_t *used, const char *text)
{
    size_t n = *used;
    if (n + 1 < size)
        out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (n + 8 >= size)
            break;
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p < 0x20) {
            n += (size_t)snprintf(out + n, size - n, "\\u%04x", *p);
        } else {
            out[n++] = (char)*p;
        }
    }
    if (n + 1 < size)
        out[n++] = '"';
    out[n] = '\0';
    *used = n;
}

void gw_json_field(char *out, size_t size, size_t *used, const char *key,
                   const char *value)
{
    if (*used + 4 >= size)
        return;
    if (*used > 1)
        out[(*used)++] = ',';
    gw_json_string(out, size, used, key);
    if (*used + 1 < size)
        out[(*used)++] = ':';
    gw_json_string(out, size, used, value);
}

