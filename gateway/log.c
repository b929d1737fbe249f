/* log.c - the one logging facility of the siren program: one line per
 * event on standard error,
 *
 *   2026-11-29T10:00:00.123Z info assoc.accepted peer=... calling=...
 *
 * with a level, an event name and key=value fields. Library modules never
 * log; they return errors that the gateway turns into lines here. Audit
 * events are not log lines and will have their own path. */
#include "gateway.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static gw_log_level threshold = GW_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void gw_log_set_level(gw_log_level level)
{
    threshold = level;
}

void gw_log(gw_log_level level, const char *event, const char *fmt, ...)
{
    if (level < threshold)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    char fields[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fields, sizeof fields, fmt, ap);
        va_end(ap);
    }
    /* One fprintf per line: stdio locks the stream, so lines from
     * association threads do not interleave. */
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s%s%s\n",
            utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
            utc.tm_min, utc.tm_sec, now.tv_nsec / 1000000, level_names[level],
            event, fields[0] ? " " : "", fields);
}

const char *gw_log_quote(const char *text, char *buf, size_t size)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text;
         *p && n + 5 < size; p++) {
        if (*p == '"' || *p == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)*p;
        } else if (*p < 0x20 || *p >= 0x7F) {
            n += (size_t)snprintf(buf + n, size - n, "\\x%02x", *p);
        } else {
            buf[n++] = (char)*p;
        }
    }
    buf[n] = '\0';
    return buf;
}
