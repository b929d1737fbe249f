/* rest_answer.c - what Orthanc's answer to POST /instances means
 * (forward_transport.h): a small JSON reader that keeps four string
 * members of one object and checks the rest of the grammar while skipping
 * it (RFC 8259; escapes and numbers read as json_read.h does), and the
 * table from HTTP status to outcome.
 *
 * The body comes from the network: every read is checked against the
 * end, nesting is bounded, each kept value is cut to its field. */
#include "forward_transport.h"
#include "json_read.h"

#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct reader {
    const unsigned char *at, *end;
} reader;

/* Decoded text going into a field of size bytes; what does not fit is
 * dropped, whole characters only. A NULL buf keeps nothing. */
typedef struct text {
    char *buf;
    size_t size, used;
    bool cut; /* a character did not fit: none after it goes in */
} text;

static void put_bytes(text *t, const unsigned char *bytes, size_t len)
{
    if (!t || !t->buf || t->cut)
        return;
    if (t->used + len >= t->size) {
        t->cut = true;
        return;
    }
    memcpy(t->buf + t->used, bytes, len);
    t->used += len;
    t->buf[t->used] = '\0';
}

/* Code point cp as UTF-8; control characters (C0, DEL, C1) as spaces. */
static void put_code(text *t, uint32_t cp)
{
    unsigned char bytes[4];
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
        cp = ' ';
    put_bytes(t, bytes, gw_json_utf8(cp, bytes));
}

static void skip_space(reader *r)
{
    while (r->at < r->end && (*r->at == ' ' || *r->at == '\t' ||
                              *r->at == '\n' || *r->at == '\r'))
        r->at++;
}

static bool take(reader *r, char c)
{
    if (r->at == r->end || *r->at != (unsigned char)c)
        return false;
    r->at++;
    return true;
}

static bool take_word(reader *r, const char *word)
{
    size_t len = strlen(word);
    if ((size_t)(r->end - r->at) < len || memcmp(r->at, word, len) != 0)
        return false;
    r->at += len;
    return true;
}

/* The length of the valid UTF-8 character at p (avail bytes there), 0 if
 * it is not one (overlong forms, surrogates and beyond U+10FFFF are not). */
static size_t utf8_length(const unsigned char *p, size_t avail)
{
    size_t len = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
    if (len == 0 || p[0] > 0xF4 || len > avail)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0) ||
        (p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90))
        return 0;
    return len;
}

static bool escape(reader *r, text *t)
{
    if (r->at == r->end)
        return false;
    unsigned char c = *r->at++;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *known = c ? strchr(from, c) : NULL;
    if (known) {
        put_code(t, (unsigned char)to[known - from]);
        return true;
    }
    uint32_t cp;
    if (c != 'u' || !gw_json_unicode_escape(&r->at, r->end, &cp))
        return false;
    put_code(t, cp);
    return true;
}

/* A string, its opening quote next; its text into t (may be NULL). */
static bool string(reader *r, text *t)
{
    if (!take(r, '"'))
        return false;
    while (r->at < r->end) {
        unsigned char c = *r->at;
        if (c == '"') {
            r->at++;
            return true;
        }
        if (c < 0x20)
            return false; /* JSON strings hold no raw control characters */
        if (c == '\\') {
            r->at++;
            if (!escape(r, t))
                return false;
        } else if (c < 0x80) {
            put_code(t, *r->at++);
        } else {
            size_t len = utf8_length(r->at, (size_t)(r->end - r->at));
            if (len == 0)
                return false;
            if (len == 2 && r->at[0] == 0xC2 && r->at[1] < 0xA0)
                put_code(t, r->at[1]); /* a C1 control */
            else
                put_bytes(t, r->at, len);
            r->at += len;
        }
    }
    return false;
}

static bool value(reader *r, int depth);

/* An object, its '{' next. With out (the top level only), the members
 * the forwarder reads are kept. */
static bool object(reader *r, int depth, gw_rest_answer *out)
{
    if (depth > MAX_DEPTH || !take(r, '{'))
        return false;
    skip_space(r);
    if (take(r, '}'))
        return true;
    do {
        skip_space(r);
        char key[16] = "";
        text key_text = {key, sizeof key, 0, false};
        if (!string(r, &key_text))
            return false;
        if (key_text.cut)
            key[0] = '\0'; /* longer than any member we read */
        skip_space(r);
        if (!take(r, ':'))
            return false;
        skip_space(r);
        char *field = NULL;
        size_t size = 0;
        if (out && strcmp(key, "Status") == 0)
            field = out->status, size = sizeof out->status;
        else if (out && strcmp(key, "ID") == 0)
            field = out->id, size = sizeof out->id;
        else if (out && strcmp(key, "Message") == 0)
            field = out->message, size = sizeof out->message;
        else if (out && strcmp(key, "Details") == 0)
            field = out->details, size = sizeof out->details;
        if (field && r->at < r->end && *r->at == '"') {
            field[0] = '\0';
            text kept = {field, size, 0, false};
            if (!string(r, &kept))
                return false;
        } else if (!value(r, depth)) {
            return false;
        }
        skip_space(r);
    } while (take(r, ','));
    return take(r, '}');
}

static bool array(reader *r, int depth)
{
    if (depth > MAX_DEPTH || !take(r, '['))
        return false;
    skip_space(r);
    if (take(r, ']'))
        return true;
    do {
        if (!value(r, depth))
            return false;
        skip_space(r);
    } while (take(r, ','));
    return take(r, ']');
}

/* Any value, skipped; depth is that of its container. */
static bool value(reader *r, int depth)
{
    skip_space(r);
    if (r->at == r->end)
        return false;
    switch (*r->at) {
    case '"':
        return string(r, NULL);
    case '{':
        return object(r, depth + 1, NULL);
    case '[':
        return array(r, depth + 1);
    case 't':
        return take_word(r, "true");
    case 'f':
        return take_word(r, "false");
    case 'n':
        return take_word(r, "null");
    default:
        return gw_json_number(&r->at, r->end) == NULL;
    }
}

int gw_rest_answer_parse(const char *body, size_t len, gw_rest_answer *out)
{
    memset(out, 0, sizeof *out);
    reader r = {(const unsigned char *)body,
                (const unsigned char *)body + len};
    skip_space(&r);
    bool ok = object(&r, 1, out);
    skip_space(&r);
    if (ok && r.at == r.end)
        return 0;
    memset(out, 0, sizeof *out);
    return -1;
}

/* ---- what the answer means ------------------------------------------------------ */

/* ": Message (Details)", ": Message", ": Details" or "". */
static void orthanc_words(const gw_rest_answer *b, bool parsed, char *out,
                          size_t size)
{
    const char *message = parsed ? b->message : "";
    const char *details = parsed ? b->details : "";
    if (message[0] && details[0])
        snprintf(out, size, ": %s (%s)", message, details);
    else if (message[0] || details[0])
        snprintf(out, size, ": %s", message[0] ? message : details);
    else
        out[0] = '\0';
}

static void judge_stored(const gw_rest_answer *b, bool parsed,
                         gw_fwd_answer *out)
{
    if (parsed && b->id[0] && (strcmp(b->status, "Success") == 0 ||
                               strcmp(b->status, "AlreadyStored") == 0)) {
        out->kind = GW_FWD_STORED;
        snprintf(out->status, sizeof out->status, "%s", b->status);
        snprintf(out->archive_id, sizeof out->archive_id, "%s", b->id);
        return;
    }
    /* FilteredOut (a filter of the archive's refused it), Failure, or
     * an answer that is not Orthanc's: not stored, as far as we know. */
    out->kind = GW_FWD_LATER;
    if (parsed && b->status[0])
        snprintf(out->detail, sizeof out->detail, "HTTP 200 with Status "
                 "\"%s\"%s", b->status, strcmp(b->status, "FilteredOut") == 0
                 ? " (a filter of the archive refused it)" : "");
    else
        snprintf(out->detail, sizeof out->detail, "HTTP 200 without the "
                 "Status and ID of a stored instance");
}

void gw_rest_judge(long http_status, const gw_rest_answer *b, bool parsed,
                   gw_fwd_answer *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->status, sizeof out->status, "http_%ld", http_status);
    if (http_status == 200) {
        judge_stored(b, parsed, out);
        return;
    }
    char words[400];
    orthanc_words(b, parsed, words, sizeof words);
    long h = http_status;
    if (h == 401 || h == 403 || h == 407) {
        out->kind = GW_FWD_DENIED;
        snprintf(out->detail, sizeof out->detail, "HTTP %ld: the archive "
                 "does not accept our credentials%s", h, words);
    } else if ((h >= 300 && h < 400) || h == 404 || h == 405) {
        out->kind = GW_FWD_DENIED;
        snprintf(out->detail, sizeof out->detail, "HTTP %ld: the archive "
                 "URL does not lead to Orthanc's REST API (POST /instances)"
                 "%s", h, words);
    } else if (h == 408 || h == 429 || h == 502 || h == 503 || h == 504 ||
               h == 507) {
        out->kind = GW_FWD_AWAY;
        snprintf(out->detail, sizeof out->detail, "HTTP %ld: the archive "
                 "is busy or unavailable%s", h, words);
    } else if (h >= 400 && h < 500) {
        out->kind = GW_FWD_REFUSED;
        snprintf(out->detail, sizeof out->detail, "the archive refused it: "
                 "HTTP %ld%s", h, words);
    } else {
        out->kind = GW_FWD_LATER;
        snprintf(out->detail, sizeof out->detail, "HTTP %ld%s", h, words);
    }
}
