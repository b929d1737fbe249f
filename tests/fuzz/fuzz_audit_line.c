/* fuzz_audit_line.c - libFuzzer harness for what the syslog sink reads
 * from the audit file: the flat JSON reader (gateway/json_read.c) and the
 * PS3.15 A.5 message made of a line (gateway/audit_a5.c). The input is
 * one line, as the file might hold it after damage or an edit.
 *
 * Beyond the sanitizers it checks what the collector relies on: a parsed
 * object has at most GW_JSON_FLAT_MAX_FIELDS fields, each key and value
 * inside the decoded buffer; a message is an RFC 5424 header, the BOM,
 * then XML that is valid UTF-8 without control bytes, whose tags nest
 * and close, whose '<' only ever starts markup and whose '&' only starts
 * one of the references the writer uses. */
#include "audit_a5.h"
#include "json_read.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void check_parsed(const char *line, size_t len)
{
    gw_json_flat o;
    char why[200];
    int rc = gw_json_flat_parse(line, len, &o, why, sizeof why);
    check(rc == 0 || why[0]);
    check(o.count <= GW_JSON_FLAT_MAX_FIELDS);
    for (size_t i = 0; i < o.count; i++) {
        check(o.keys[i] >= o.text && o.keys[i] <= o.text + len);
        check(o.values[i] >= o.text && o.values[i] <= o.text + len);
        check(strlen(o.keys[i]) <= len && strlen(o.values[i]) <= len);
        check(gw_json_flat_get(&o, o.keys[i]) != NULL);
    }
    gw_json_flat_free(&o);
}

/* The length of a valid UTF-8 character at s, or 0. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2
                 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static void check_reference(const char *p)
{
    static const char *const refs[] = {"&amp;", "&lt;", "&gt;", "&quot;",
                                       "&apos;", "&#9;"};
    for (size_t i = 0; i < sizeof refs / sizeof *refs; i++)
        if (strncmp(p, refs[i], strlen(refs[i])) == 0)
            return;
    abort();
}

/* Tags nest: a stack of element names. */
static void check_xml(const char *xml, size_t len)
{
    const char *names[32];
    size_t names_len[32], depth = 0;
    const unsigned char *u = (const unsigned char *)xml;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(u + i, len - i);
        check(n > 0 && u[i] >= 0x20);
        i += n;
    }
    for (const char *p = xml; p < xml + len;) {
        if (*p == '&') {
            check_reference(p);
            p++;
            continue;
        }
        check(*p != '>');
        if (*p != '<') {
            p++;
            continue;
        }
        const char *end = memchr(p, '>', (size_t)(xml + len - p));
        check(end != NULL);
        for (const char *q = p + 1; q < end; q++)
            check(*q != '<');
        if (p[1] == '?') {
            check(end[-1] == '?');
        } else if (p[1] == '/') {
            check(depth > 0);
            depth--;
            check((size_t)(end - p - 2) == names_len[depth] &&
                  memcmp(p + 2, names[depth], names_len[depth]) == 0);
        } else if (end[-1] != '/') {
            check(depth < 32);
            names[depth] = p + 1;
            names_len[depth] = strcspn(p + 1, " />");
            depth++;
        }
        p = end + 1;
    }
    check(depth == 0);
}

static void check_message(const char *line, size_t len)
{
    gw_a5_source src = {.aet = "SIREN", .host = "gw.example.org",
                        .pid = 42};
    size_t msg_len = 0;
    char why[200];
    char *msg = gw_a5_syslog_message(line, len, &src, &msg_len, why,
                                     sizeof why);
    if (!msg) {
        check(why[0] != '\0');
        return;
    }
    check(strlen(msg) == msg_len);
    check(strncmp(msg, "<85>1 ", 6) == 0 || strncmp(msg, "<84>1 ", 6) == 0);
    const char *bom = strstr(msg, " DICOM+RFC3881 - \xEF\xBB\xBF");
    check(bom != NULL);
    for (const char *p = msg; p < bom; p++)
        check(*p >= 0x20 && *p < 0x7F);
    const char *xml = bom + strlen(" DICOM+RFC3881 - \xEF\xBB\xBF");
    check(strncmp(xml, "<?xml", 5) == 0);
    check_xml(xml, msg_len - (size_t)(xml - msg));
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy without a terminator: the reader must not look past len. */
    char *line = malloc(size ? size : 1);
    if (!line)
        return 0;
    memcpy(line, data, size);
    check_parsed(line, size);
    check_message(line, size);
    free(line);
    return 0;
}
