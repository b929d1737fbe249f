/* audit_a5.c - audit lines as PS3.15 A.5 DICOM audit messages in RFC 5424
 * syslog messages (audit_a5.h). The table below is the mapping; the rest
 * writes the XML of the A.5.1 schema, in its element order, with every
 * value escaped and made valid UTF-8 (a line may hold anything). */
#include "audit_a5.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MESSAGE_MAX_BYTES (1u << 20)

/* A code of the DCM scheme (PS3.16), with its meaning. */
typedef struct code {
    const char *value, *meaning;
} code;

/* Who takes part, by the direction of the event. */
typedef enum shape {
    INBOUND,     /* a site sends to the gateway */
    OUTBOUND,    /* the gateway sends to the archive */
    LOCAL,       /* the gateway works on an instance in its spool */
    OPERATOR,    /* a person works on the spool with `siren spool` */
    ALERT,       /* a peer failed to authenticate */
    APPLICATION, /* the gateway starts or stops */
} shape;

#define NONE {NULL, NULL}
#define BEGIN_TRANSFER {"110102", "Begin Transferring DICOM Instances"}
#define TRANSFERRED {"110104", "DICOM Instances Transferred"}
#define ACCESSED {"110103", "DICOM Instances Accessed"}
#define SECURITY_ALERT {"110113", "Security Alert"}
#define APPLICATION_ACTIVITY {"110100", "Application Activity"}

/* EventActionCode: C create, R read, U update, D delete, E execute.
 * EventOutcomeIndicator: 0 success, 4 minor failure (the instance is
 * refused or held, the gateway goes on), 8 serious failure (the action
 * ended: a connection refused, an instance the archive will not take). */
static const struct mapping {
    const char *event;
    code id;           /* EventID, CID 400 */
    char action;
    code type;         /* EventTypeCode, CID 401; NONE: none */
    int outcome;
    shape shape;
    const char *life_cycle; /* ParticipantObjectDataLifeCycle; NULL none */
} mappings[] = {
    {"association.accepted", BEGIN_TRANSFER, 'E', NONE, 0, INBOUND, NULL},
    {"instance.received", TRANSFERRED, 'C', NONE, 0, INBOUND, NULL},
    {"instance.rejected", TRANSFERRED, 'C', NONE, 4, INBOUND, NULL},
    {"instance.deidentified", ACCESSED, 'C', NONE, 0, LOCAL, "7"},
    {"instance.quarantined", ACCESSED, 'R', NONE, 4, LOCAL, NULL},
    /* The pixel stage: redacted, compressed, kept or failed (below). */
    {"instance.pixels", ACCESSED, 'U', NONE, 0, LOCAL, NULL},
    {"instance.forwarded", TRANSFERRED, 'R', NONE, 0, OUTBOUND, NULL},
    {"instance.failed", TRANSFERRED, 'R', NONE, 8, OUTBOUND, NULL},
    {"security.alert", SECURITY_ALERT, 'E',
     {"110126", "Node Authentication"}, 8, ALERT, NULL},
    {"spool.retried", ACCESSED, 'U', NONE, 0, OPERATOR, NULL},
    {"spool.purged", ACCESSED, 'D', NONE, 0, OPERATOR, NULL},
    {"application.started", APPLICATION_ACTIVITY, 'E',
     {"110120", "Application Start"}, 0, APPLICATION, NULL},
    {"application.stopped", APPLICATION_ACTIVITY, 'E',
     {"110121", "Application Stop"}, 0, APPLICATION, NULL},
};

static const code source_role = {"110153", "Source Role ID"};
static const code destination_role = {"110152", "Destination Role ID"};
static const code application_role = {"110150", "Application"};

/* ---- output ------------------------------------------------------------------------ */

typedef struct out {
    char *buf;
    size_t len, cap;
    bool failed; /* out of memory or over MESSAGE_MAX_BYTES */
} out;

static void put_bytes(out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (n > MESSAGE_MAX_BYTES - o->len) {
        o->failed = true;
        return;
    }
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *grown = realloc(o->buf, cap);
        if (!grown) {
            o->failed = true;
            return;
        }
        o->buf = grown;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void put(out *o, const char *s)
{
    put_bytes(o, s, strlen(s));
}

/* The length of the valid UTF-8 character at s (n bytes left) that XML
 * 1.0 allows, or 0. */
static size_t xml_char(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;
    if (s[0] < 0x80) {
        return s[0] >= 0x20 || s[0] == '\t' ? 1 : 0;
    } else if ((s[0] & 0xE0) == 0xC0) {
        cp = s[0] & 0x1F;
        len = 2;
    } else if ((s[0] & 0xF0) == 0xE0) {
        cp = s[0] & 0x0F;
        len = 3;
    } else if ((s[0] & 0xF8) == 0xF0) {
        cp = s[0] & 0x07;
        len = 4;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
        cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return len;
}

/* Text for an attribute value or element content: markup characters as
 * references, anything XML cannot carry (control bytes, broken UTF-8) as
 * U+FFFD. */
static void put_text(out *o, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    while (n > 0) {
        size_t len = xml_char(s, n);
        const char *ref = len != 1     ? NULL
                          : *s == '&'  ? "&amp;"
                          : *s == '<'  ? "&lt;"
                          : *s == '>'  ? "&gt;"
                          : *s == '"'  ? "&quot;"
                          : *s == '\'' ? "&apos;"
                          : *s == '\t' ? "&#9;"
                                       : NULL;
        if (ref)
            put(o, ref);
        else if (len)
            put_bytes(o, (const char *)s, len);
        else
            put(o, "\xEF\xBF\xBD");
        s += len ? len : 1;
        n -= len ? len : 1;
    }
}

/*  NAME="VALUE" (nothing for a NULL value). */
static void put_attr(out *o, const char *name, const char *value)
{
    if (!value)
        return;
    put(o, " ");
    put(o, name);
    put(o, "=\"");
    put_text(o, value);
    put(o, "\"");
}

static void put_code(out *o, const char *element, const char *value,
                     const char *scheme, const char *meaning)
{
    put(o, "<");
    put(o, element);
    put_attr(o, "csd-code", value);
    put_attr(o, "codeSystemName", scheme);
    put_attr(o, "originalText", meaning);
    put(o, "/>");
}

static void put_base64(out *o, const char *text)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                 "qrstuvwxyz0123456789+/";
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t group = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            group |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            group |= s[i + 2];
        char quad[4] = {digits[group >> 18], digits[(group >> 12) & 63],
                        i + 1 < n ? digits[(group >> 6) & 63] : '=',
                        i + 2 < n ? digits[group & 63] : '='};
        put_bytes(o, quad, 4);
    }
}

/* ---- the event's fields ------------------------------------------------------------ */

/* "1.2.3.4:104" or "[::1]:104" -> the address alone, into buf. */
static const char *address_of(const char *peer, char *buf, size_t size)
{
    if (!peer)
        return NULL;
    snprintf(buf, size, "%s", peer[0] == '[' ? peer + 1 : peer);
    char *end = strrchr(buf, peer[0] == '[' ? ']' : ':');
    if (end && (peer[0] == '[' || strchr(buf, ':') == end))
        *end = '\0';
    return buf;
}

/* 2026-11-29T10:00:00.123Z: what audit.c writes, an xsd:dateTime and an
 * RFC 5424 TIMESTAMP (at most 6 digits of fraction). */
static bool valid_time(const char *t)
{
    static const char pattern[] = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;
    for (; pattern[i]; i++)
        if (pattern[i] == 'd' ? !isdigit((unsigned char)t[i])
                              : t[i] != pattern[i])
            return false;
    if (t[i] == '.') {
        size_t digits = 0;
        while (isdigit((unsigned char)t[++i]))
            digits++;
        if (digits < 1 || digits > 6)
            return false;
    }
    return strcmp(t + i, "Z") == 0;
}

/* ---- participants ------------------------------------------------------------------ */

typedef struct participant {
    const char *user_id, *alternative, *user_name;
    bool requestor;
    const char *access_point; /* NetworkAccessPointID */
    const char *access_type;  /* "1" machine name, "2" IP address */
    const code *role;
} participant;

static void put_participant(out *o, const participant *p)
{
    put(o, "<ActiveParticipant");
    put_attr(o, "UserID", p->user_id ? p->user_id : "unknown");
    put_attr(o, "AlternativeUserID", p->alternative);
    put_attr(o, "UserName", p->user_name);
    put_attr(o, "UserIsRequestor", p->requestor ? "true" : "false");
    if (p->access_point && p->access_point[0]) {
        put_attr(o, "NetworkAccessPointID", p->access_point);
        put_attr(o, "NetworkAccessPointTypeCode", p->access_type);
    }
    if (p->role) {
        put(o, ">");
        put_code(o, "RoleIDCode", p->role->value, "DCM", p->role->meaning);
        put(o, "</ActiveParticipant>");
    } else {
        put(o, "/>");
    }
}

/* "AETITLES=TITLE", the form A.5.2.2 gives a DICOM application. */
static const char *ae_titles(const char *aet, char *buf, size_t size)
{
    if (!aet || !aet[0])
        return NULL;
    snprintf(buf, size, "AETITLES=%s", aet);
    return buf;
}

static participant gateway(const gw_a5_source *src, bool requestor,
                           const code *role, char *titles, size_t size)
{
    return (participant){.user_id = src->aet,
                         .alternative = ae_titles(src->aet, titles, size),
                         .requestor = requestor, .access_point = src->host,
                         .access_type = "1", .role = role};
}

/* The archive: "AET@host:port" (DICOM: AE title and host apart) or the
 * URL it is posted to (REST: the URL is its access point). */
static participant archive(const char *where, char *titles,
                           size_t titles_size, char *host, size_t host_size)
{
    participant p = {.user_id = where, .role = &destination_role,
                     .access_type = "1"};
    if (where && strstr(where, "://")) {
        p.access_point = where;
        p.access_type = "5";
        return p;
    }
    const char *at = where ? strchr(where, '@') : NULL;
    if (!at)
        return p;
    char aet[64];
    snprintf(aet, sizeof aet, "%.*s", (int)(at - where), where);
    p.alternative = ae_titles(aet, titles, titles_size);
    p.access_point = address_of(at + 1, host, host_size);
    return p;
}

static void put_participants(out *o, const struct mapping *m,
                             const gw_json_flat *e, const gw_a5_source *src)
{
    char own[96], titles[96], host[300], address[80];
    const char *peer = address_of(gw_json_flat_get(e, "peer"), address,
                                  sizeof address);
    const char *calling = gw_json_flat_get(e, "calling_ae");
    const char *subject = gw_json_flat_get(e, "cert_subject");
    participant p[2];
    size_t count = 2;
    switch (m->shape) {
    case INBOUND:
        p[0] = (participant){
            .user_id = calling ? calling : peer,
            .alternative = ae_titles(calling, titles, sizeof titles),
            .user_name = subject ? subject : gw_json_flat_get(e, "site"),
            .requestor = true, .access_point = peer, .access_type = "2",
            .role = &source_role};
        p[1] = gateway(src, false, &destination_role, own, sizeof own);
        break;
    case OUTBOUND:
        p[0] = gateway(src, true, &source_role, own, sizeof own);
        p[1] = archive(gw_json_flat_get(e, "archive"), titles,
                       sizeof titles, host, sizeof host);
        break;
    case ALERT:
        p[0] = (participant){.user_id = peer, .user_name = subject,
                             .requestor = true, .access_point = peer,
                             .access_type = "2"};
        p[1] = gateway(src, false, NULL, own, sizeof own);
        break;
    case OPERATOR:
        p[0] = (participant){.user_id = gw_json_flat_get(e, "operator"),
                             .requestor = true};
        p[1] = gateway(src, false, NULL, own, sizeof own);
        break;
    case LOCAL:
        p[0] = gateway(src, true, NULL, own, sizeof own);
        count = 1;
        break;
    case APPLICATION:
        p[0] = gateway(src, false, &application_role, own, sizeof own);
        count = 1;
        break;
    }
    for (size_t i = 0; i < count; i++)
        put_participant(o, &p[i]);
}

/* ---- the participant objects ------------------------------------------------------ */

/* Every field but time and event, as ParticipantObjectDetail. */
static void put_details(out *o, const gw_json_flat *e)
{
    for (size_t i = 0; i < e->count; i++) {
        if (!strcmp(e->keys[i], "time") || !strcmp(e->keys[i], "event"))
            continue;
        put(o, "<ParticipantObjectDetail");
        put_attr(o, "type", e->keys[i]);
        put(o, " value=\"");
        put_base64(o, e->values[i]);
        put(o, "\"/>");
    }
}

/* The object the event is about: the study when the event names it
 * (A.5.3: type 2, role 3 Report, Study Instance UID), else the instance,
 * else the spool file, else the peer. The SOP class and instance are in
 * its description. Study Instance UID (110180) and Node ID (110182) are
 * DCM codes; an instance or a spool file named alone has no DCM code, so
 * those are this implementation's (scheme "SIREN"), as A.5.1.2.4
 * allows. */
static void put_object(out *o, const struct mapping *m,
                       const gw_json_flat *e)
{
    const char *study = gw_json_flat_get(e, "study");
    const char *instance = gw_json_flat_get(e, "sop_instance");
    const char *sop_class = gw_json_flat_get(e, "sop_class");
    const char *file = gw_json_flat_get(e, "file");
    char address[80];
    const char *peer = address_of(gw_json_flat_get(e, "peer"), address,
                                  sizeof address);
    const char *id, *type_code, *scheme, *meaning, *role;
    if (study || instance) {
        id = study ? study : instance;
        type_code = study ? "110180" : "SOPInstanceUID";
        scheme = study ? "DCM" : "SIREN";
        meaning = study ? "Study Instance UID" : "SOP Instance UID";
        role = "3"; /* report: a DICOM object */
    } else if (file) {
        id = file;
        type_code = "SpoolFile";
        scheme = "SIREN";
        meaning = "Spool file name";
        role = "3";
    } else if (peer) {
        id = peer;
        type_code = "110182";
        scheme = "DCM";
        meaning = "Node ID";
        role = NULL;
    } else {
        return;
    }
    bool anonymized = m->life_cycle && !strcmp(m->life_cycle, "7");
    put(o, "<ParticipantObjectIdentification");
    put_attr(o, "ParticipantObjectID", id);
    put_attr(o, "ParticipantObjectTypeCode", "2");
    put_attr(o, "ParticipantObjectTypeCodeRole", role);
    put_attr(o, "ParticipantObjectDataLifeCycle", m->life_cycle);
    put(o, ">");
    put_code(o, "ParticipantObjectIDTypeCode", type_code, scheme, meaning);
    put_details(o, e);
    if (sop_class || anonymized) {
        put(o, "<ParticipantObjectDescription>");
        if (sop_class) {
            put(o, "<SOPClass");
            put_attr(o, "UID", sop_class);
            put(o, " NumberOfInstances=\"1\">");
            if (instance) {
                put(o, "<Instance");
                put_attr(o, "UID", instance);
                put(o, "/>");
            }
            put(o, "</SOPClass>");
        }
        if (anonymized)
            put(o, "<Anonymized>true</Anonymized>");
        put(o, "</ParticipantObjectDescription>");
    }
    put(o, "</ParticipantObjectIdentification>");
}

/* The patient (A.5.3: type 1 Person, role 1 Patient, Patient Number) by
 * the event's patient_id. Only events about a de-identified instance
 * carry one, and it is the de-identified Patient ID (a pseudonym, or
 * what the policy left): no name, no received value. */
static void put_patient(out *o, const gw_json_flat *e)
{
    const char *patient_id = gw_json_flat_get(e, "patient_id");
    if (!patient_id)
        return;
    put(o, "<ParticipantObjectIdentification");
    put_attr(o, "ParticipantObjectID", patient_id);
    put_attr(o, "ParticipantObjectTypeCode", "1");
    put_attr(o, "ParticipantObjectTypeCodeRole", "1");
    put(o, ">");
    put_code(o, "ParticipantObjectIDTypeCode", "2", "RFC-3881",
             "Patient Number");
    put(o, "</ParticipantObjectIdentification>");
}

/* ---- the message ------------------------------------------------------------------- */

/* The mapping's outcome, or 4 (minor failure) for an event whose action
 * failed (the pixel stage: the instance is held). */
static int outcome_of(const struct mapping *m, const gw_json_flat *e)
{
    const char *action = gw_json_flat_get(e, "action");
    return action && strcmp(action, "failed") == 0 ? 4 : m->outcome;
}

static void put_xml(out *o, const struct mapping *m, const gw_json_flat *e,
                    const gw_a5_source *src)
{
    char action[2] = {m->action, '\0'}, outcome[4];
    snprintf(outcome, sizeof outcome, "%d", outcome_of(m, e));
    put(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><AuditMessage>");
    put(o, "<EventIdentification");
    put_attr(o, "EventActionCode", action);
    put_attr(o, "EventDateTime", gw_json_flat_get(e, "time"));
    put_attr(o, "EventOutcomeIndicator", outcome);
    put(o, ">");
    put_code(o, "EventID", m->id.value, "DCM", m->id.meaning);
    if (m->type.value)
        put_code(o, "EventTypeCode", m->type.value, "DCM", m->type.meaning);
    const char *reason = gw_json_flat_get(e, "reason");
    if (reason) {
        put(o, "<EventOutcomeDescription>");
        put_text(o, reason);
        put(o, "</EventOutcomeDescription>");
    }
    put(o, "</EventIdentification>");
    put_participants(o, m, e, src);
    put(o, "<AuditSourceIdentification");
    put_attr(o, "AuditSourceID", src->aet);
    /* 4: an application server process */
    put(o, "><AuditSourceTypeCode csd-code=\"4\"/>"
           "</AuditSourceIdentification>");
    put_object(o, m, e);
    put_patient(o, e);
    put(o, "</AuditMessage>");
}

/* RFC 5424 HOSTNAME: printable US-ASCII, at most 255, "-" if none. */
static void put_host(out *o, const char *host)
{
    size_t n = 0;
    for (const char *s = host; s && *s && n < 255; s++, n++)
        if (*s < 33 || *s > 126)
            break;
    if (!host || n == 0 || host[n] != '\0') {
        put(o, "-");
        return;
    }
    put(o, host);
}

char *gw_a5_syslog_message(const char *line, size_t line_len,
                           const gw_a5_source *src, size_t *len, char *why,
                           size_t why_size)
{
    gw_json_flat e;
    if (gw_json_flat_parse(line, line_len, &e, why, why_size) < 0) {
        gw_json_flat_free(&e);
        return NULL;
    }
    const char *event = gw_json_flat_get(&e, "event");
    const char *time = gw_json_flat_get(&e, "time");
    const struct mapping *m = NULL;
    for (size_t i = 0; event && i < sizeof mappings / sizeof *mappings; i++)
        if (strcmp(mappings[i].event, event) == 0)
            m = &mappings[i];
    if (!event || !time || !valid_time(time) || !m) {
        snprintf(why, why_size, "%s", !event ? "no event name"
                                      : !time || !valid_time(time)
                                          ? "no valid time"
                                          : "an event with no DICOM audit "
                                            "message");
        gw_json_flat_free(&e);
        return NULL;
    }
    out o = {0};
    /* PRI: facility 10 (security/authorization), severity 5 (notice), 4
     * (warning) for a failure; VERSION 1; the event's time. */
    char header[64];
    snprintf(header, sizeof header, "<%d>1 ",
             10 * 8 + (outcome_of(m, &e) ? 4 : 5));
    put(&o, header);
    put(&o, time);
    put(&o, " ");
    put_host(&o, src->host);
    snprintf(header, sizeof header, " siren %ld DICOM+RFC3881 - \xEF\xBB\xBF",
             src->pid);
    put(&o, header);
    put_xml(&o, m, &e, src);
    gw_json_flat_free(&e);
    if (o.failed) {
        free(o.buf);
        snprintf(why, why_size, "message over %u bytes or out of memory",
                 MESSAGE_MAX_BYTES);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
