/* test_gateway_audit.c - what the syslog sink makes of the audit file:
 * the flat JSON reader (gateway/json_read.c) on the lines audit.c writes
 * and on broken ones, the PS3.15 A.5 message of each event kind
 * (gateway/audit_a5.c: header, codes, participants, objects, escaping),
 * and the collector addresses the configuration accepts
 * (gateway/audit_syslog.c). */
#include "audit_a5.h"
#include "audit_syslog.h"
#include "json_read.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the reader -------------------------------------------------------------------- */

static void reads_an_audit_line(void **state)
{
    (void)state;
    const char line[] = "{\"time\":\"2026-11-29T10:00:00.123Z\","
                        "\"event\":\"instance.received\",\"peer\":"
                        "\"127.0.0.1:4000\",\"reason\":\"a \\\"b\\\" "
                        "\\\\ \\/ \\t\\u00e9\\ud83d\\ude00\"}\n";
    gw_json_flat o;
    char why[160] = "";
    assert_int_equal(gw_json_flat_parse(line, strlen(line), &o, why,
                                        sizeof why), 0);
    assert_int_equal(o.count, 4);
    assert_string_equal(gw_json_flat_get(&o, "event"), "instance.received");
    assert_string_equal(gw_json_flat_get(&o, "peer"), "127.0.0.1:4000");
    assert_string_equal(gw_json_flat_get(&o, "reason"),
                        "a \"b\" \\ / \t\xC3\xA9\xF0\x9F\x98\x80");
    assert_null(gw_json_flat_get(&o, "site"));
    gw_json_flat_free(&o);
}

static void reads_numbers_literals_and_odd_escapes(void **state)
{
    (void)state;
    const char line[] = " { \"n\" : -12.5e+3 , \"t\":true,\"f\":false,"
                        "\"z\":null,\"lone\":\"\\ud800x\","
                        "\"nul\":\"a\\u0000b\","
                        "\"n\":\"second\" } \r\n";
    gw_json_flat o;
    char why[160] = "";
    assert_int_equal(gw_json_flat_parse(line, strlen(line), &o, why,
                                        sizeof why), 0);
    assert_int_equal(o.count, 6); /* null leaves its key out */
    assert_string_equal(gw_json_flat_get(&o, "n"), "-12.5e+3"); /* first */
    assert_string_equal(gw_json_flat_get(&o, "t"), "true");
    assert_string_equal(gw_json_flat_get(&o, "f"), "false");
    assert_null(gw_json_flat_get(&o, "z"));
    assert_string_equal(gw_json_flat_get(&o, "lone"), "\xEF\xBF\xBDx");
    assert_string_equal(gw_json_flat_get(&o, "nul"), "a\xEF\xBF\xBD" "b");
    gw_json_flat_free(&o);
}

static void refuses_broken_lines(void **state)
{
    (void)state;
    static const struct {
        const char *line, *why;
    } cases[] = {
        {"", "not a JSON object at byte 0"},
        {"[1]", "not a JSON object at byte 0"},
        {"{\"a\":{}}", "nested objects and arrays are not read at byte 5"},
        {"{\"a\":[1]}", "nested objects and arrays are not read at byte 5"},
        {"{\"a\":\"x", "unterminated string at byte 7"},
        {"{\"a\":\"x\ty\"}", "control byte 0x09 in a string at byte 7"},
        {"{\"a\":\"\\q\"}", "unknown escape \\q at byte 6"},
        {"{\"a\":\"\\u12\"}", "\\u needs four hex digits at byte 8"},
        {"{\"a\" 1}", "':' expected at byte 5"},
        {"{\"a\":1 \"b\":2}", "',' or '}' expected at byte 7"},
        {"{\"a\":01}", "',' or '}' expected at byte 6"},
        {"{\"a\":1.}", "a digit must follow '.' at byte 7"},
        {"{\"a\":tru}", "not a value at byte 5"},
        {"{\"a\":1} x", "text after the object at byte 8"},
        {"{\"a\":1,}", "a string must start with '\"' at byte 7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gw_json_flat o;
        char why[160] = "";
        assert_int_equal(gw_json_flat_parse(cases[i].line,
                                            strlen(cases[i].line), &o, why,
                                            sizeof why), -1);
        assert_string_equal(why, cases[i].why);
        assert_int_equal(o.count, 0);
        gw_json_flat_free(&o);
    }
}

static void bounds_fields_and_length(void **state)
{
    (void)state;
    char line[2048];
    size_t n = (size_t)snprintf(line, sizeof line, "{");
    for (int i = 0; i <= GW_JSON_FLAT_MAX_FIELDS; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%s\"k%d\":1",
                              i ? "," : "", i);
    snprintf(line + n, sizeof line - n, "}");
    gw_json_flat o;
    char why[160] = "";
    assert_int_equal(gw_json_flat_parse(line, strlen(line), &o, why,
                                        sizeof why), -1);
    assert_non_null(strstr(why, "more than 64 fields"));
    gw_json_flat_free(&o);
    size_t big = GW_JSON_FLAT_MAX_BYTES + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    assert_int_equal(gw_json_flat_parse(huge, big, &o, why, sizeof why), -1);
    assert_non_null(strstr(why, "more than"));
    gw_json_flat_free(&o);
    free(huge);
}

/* ---- the messages ------------------------------------------------------------------ */

static const gw_a5_source source = {.aet = "SIREN", .host = "gw.example.org",
                                    .pid = 77};

static char *message(const char *line)
{
    size_t len = 0;
    char why[160] = "";
    char *msg = gw_a5_syslog_message(line, strlen(line), &source, &len, why,
                                     sizeof why);
    if (msg)
        assert_int_equal(strlen(msg), len);
    return msg;
}

static void has(const char *msg, const char *part)
{
    if (!strstr(msg, part))
        fail_msg("missing %s in %s", part, msg);
}

static void instance_received(void **state)
{
    (void)state;
    char *msg = message(
        "{\"time\":\"2026-11-29T10:00:01.000Z\","
        "\"event\":\"instance.received\","
        "\"peer\":\"10.1.2.3:40312\",\"site\":\"site-a\",\"calling_ae\":"
        "\"SITEA\",\"sop_class\":\"1.2.840.10008.5.1.4.1.1.2\","
        "\"sop_instance\":\"1.2.3.4\",\"bytes\":\"1234\",\"file\":\"f.dcm\"}");
    assert_non_null(msg);
    const char header[] = "<85>1 2026-11-29T10:00:01.000Z gw.example.org "
                          "siren 77 DICOM+RFC3881 - \xEF\xBB\xBF<?xml ";
    assert_memory_equal(msg, header, sizeof header - 1);
    has(msg, "<EventIdentification EventActionCode=\"C\" EventDateTime="
             "\"2026-11-29T10:00:01.000Z\" EventOutcomeIndicator=\"0\">"
             "<EventID csd-code=\"110104\" codeSystemName=\"DCM\" "
             "originalText=\"DICOM Instances Transferred\"/>"
             "</EventIdentification>");
    has(msg, "<ActiveParticipant UserID=\"SITEA\" AlternativeUserID="
             "\"AETITLES=SITEA\" UserName=\"site-a\" UserIsRequestor=\"true\" "
             "NetworkAccessPointID=\"10.1.2.3\" NetworkAccessPointTypeCode="
             "\"2\"><RoleIDCode csd-code=\"110153\"");
    has(msg, "<ActiveParticipant UserID=\"SIREN\" AlternativeUserID="
             "\"AETITLES=SIREN\" UserIsRequestor=\"false\" "
             "NetworkAccessPointID=\"gw.example.org\" "
             "NetworkAccessPointTypeCode=\"1\">"
             "<RoleIDCode csd-code=\"110152\"");
    has(msg, "<AuditSourceIdentification AuditSourceID=\"SIREN\">");
    has(msg, "<ParticipantObjectIdentification ParticipantObjectID=\"1.2.3.4\" "
             "ParticipantObjectTypeCode=\"2\" "
             "ParticipantObjectTypeCodeRole=\"3\">");
    has(msg, "<ParticipantObjectDetail type=\"file\" value=\"Zi5kY20=\"/>");
    has(msg, "<ParticipantObjectDescription><SOPClass UID="
             "\"1.2.840.10008.5.1.4.1.1.2\" NumberOfInstances=\"1\">"
             "<Instance UID=\"1.2.3.4\"/></SOPClass>"
             "</ParticipantObjectDescription>");
    assert_null(strstr(msg, "\n"));
    free(msg);
}

/* The Study and Patient objects A.5.3 asks for in Instances Accessed
 * and Transferred, from the de-identified values the event carries. */
static void study_and_patient_deidentified(void **state)
{
    (void)state;
    char *msg = message(
        "{\"time\":\"2026-11-29T10:00:02Z\","
        "\"event\":\"instance.deidentified\",\"file\":\"f.dcm\","
        "\"sop_class\":\"1.2.840.10008.5.1.4.1.1.2\","
        "\"sop_instance\":\"2.25.9\",\"study\":\"2.25.1\","
        "\"patient_id\":\"PSEUDO-7\"}");
    assert_non_null(msg);
    has(msg, "EventActionCode=\"C\"");
    has(msg, "csd-code=\"110103\"");
    has(msg, "<ParticipantObjectIdentification ParticipantObjectID="
             "\"2.25.1\" ParticipantObjectTypeCode=\"2\" "
             "ParticipantObjectTypeCodeRole=\"3\" "
             "ParticipantObjectDataLifeCycle=\"7\">"
             "<ParticipantObjectIDTypeCode "
             "csd-code=\"110180\" codeSystemName=\"DCM\" "
             "originalText=\"Study Instance UID\"/>");
    has(msg, "<ParticipantObjectDescription><SOPClass UID="
             "\"1.2.840.10008.5.1.4.1.1.2\" NumberOfInstances=\"1\">"
             "<Instance UID=\"2.25.9\"/></SOPClass>"
             "<Anonymized>true</Anonymized></ParticipantObjectDescription>"
             "</ParticipantObjectIdentification>");
    has(msg, "<ParticipantObjectIdentification ParticipantObjectID="
             "\"PSEUDO-7\" ParticipantObjectTypeCode=\"1\" "
             "ParticipantObjectTypeCodeRole=\"1\">"
             "<ParticipantObjectIDTypeCode csd-code=\"2\" "
             "codeSystemName=\"RFC-3881\" originalText=\"Patient Number\"/>"
             "</ParticipantObjectIdentification></AuditMessage>");
    assert_null(strstr(msg, "ParticipantObjectContainsStudy"));
    free(msg);
    msg = message(
        "{\"time\":\"2026-11-29T10:00:02Z\","
        "\"event\":\"instance.forwarded\",\"file\":\"f.dcm\","
        "\"sop_class\":\"1.2.840.10008.5.1.4.1.1.2\","
        "\"sop_instance\":\"2.25.9\",\"study\":\"2.25.1\","
        "\"patient_id\":\"PSEUDO-7\",\"archive\":\"ORTHANC@a:4242\","
        "\"status\":\"0000\"}");
    assert_non_null(msg);
    has(msg, "EventActionCode=\"R\"");
    has(msg, "ParticipantObjectID=\"2.25.1\" ParticipantObjectTypeCode="
             "\"2\" ParticipantObjectTypeCodeRole=\"3\">"
             "<ParticipantObjectIDTypeCode csd-code=\"110180\"");
    has(msg, "ParticipantObjectID=\"PSEUDO-7\" ParticipantObjectTypeCode="
             "\"1\" ParticipantObjectTypeCodeRole=\"1\">");
    assert_null(strstr(msg, "<Anonymized>"));
    free(msg);
}

/* Events about what was received carry no patient and no study: their
 * message has no Patient object (docs/OPERATIONS.md). */
static void no_patient_without_patient_id(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"time\":\"2026-11-29T10:00:02Z\",\"event\":"
        "\"instance.quarantined\",\"file\":\"f.dcm\",\"reason\":\"x\"}",
        "{\"time\":\"2026-11-29T10:00:02Z\",\"event\":"
        "\"instance.received\",\"sop_class\":\"1.2\","
        "\"sop_instance\":\"1.2.3\",\"file\":\"f.dcm\"}",
        "{\"time\":\"2026-11-29T10:00:02Z\",\"event\":"
        "\"instance.deidentified\",\"sop_class\":\"1.2\","
        "\"sop_instance\":\"2.25.9\",\"study\":\"2.25.1\"}",
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        char *msg = message(lines[i]);
        assert_non_null(msg);
        assert_null(strstr(msg, "ParticipantObjectTypeCode=\"1\""));
        assert_null(strstr(msg, "RFC-3881"));
        free(msg);
    }
}

/* A hostile Patient ID or Study Instance UID (a file's header may hold
 * anything) stays inside its attribute. */
static void patient_and_study_escaped(void **state)
{
    (void)state;
    char *msg = message(
        "{\"time\":\"2026-11-29T10:00:02Z\","
        "\"event\":\"instance.forwarded\",\"file\":\"f.dcm\","
        "\"sop_class\":\"1.2\",\"sop_instance\":\"2.25.9\","
        "\"study\":\"1\\\"/><x a='\","
        "\"patient_id\":\"P\\\"/><Evil>&\\u0002\\u00e9\\t\"}");
    assert_non_null(msg);
    has(msg, "ParticipantObjectID=\"1&quot;/&gt;&lt;x a=&apos;\" "
             "ParticipantObjectTypeCode=\"2\"");
    has(msg, "ParticipantObjectID=\"P&quot;/&gt;&lt;Evil&gt;&amp;"
             "\xEF\xBF\xBD\xC3\xA9&#9;\" ParticipantObjectTypeCode=\"1\"");
    assert_null(strstr(msg, "<Evil>"));
    assert_null(strstr(msg, "<x "));
    free(msg);
}

static void security_alert_escaped(void **state)
{
    (void)state;
    char *msg = message(
        "{\"time\":\"2026-11-29T10:00:03.5Z\",\"event\":\"security.alert\","
        "\"peer\":\"[::1]:5000\",\"reason\":\"<b>&\\\"x\\\"'\\u0001\","
        "\"cert_subject\":\"CN=\xff\"}");
    assert_non_null(msg);
    assert_memory_equal(msg, "<84>1 ", 6);
    has(msg, "EventActionCode=\"E\"");
    has(msg, "EventOutcomeIndicator=\"8\"");
    has(msg, "<EventTypeCode csd-code=\"110126\" codeSystemName=\"DCM\" "
             "originalText=\"Node Authentication\"/>");
    has(msg, "<EventOutcomeDescription>&lt;b&gt;&amp;&quot;x&quot;&apos;"
             "\xEF\xBF\xBD</EventOutcomeDescription>");
    has(msg, "UserID=\"::1\" UserName=\"CN=\xEF\xBF\xBD\" "
             "UserIsRequestor=\"true\" NetworkAccessPointID=\"::1\"");
    has(msg, "ParticipantObjectID=\"::1\"");
    has(msg, "csd-code=\"110182\"");
    free(msg);
}

static void outbound_and_operator(void **state)
{
    (void)state;
    char *msg = message(
        "{\"time\":\"2026-11-29T10:00:04Z\",\"event\":\"instance.failed\","
        "\"file\":\"f.dcm\",\"sop_instance\":\"2.25.9\",\"reason\":\"0122\"}");
    assert_non_null(msg);
    has(msg, "EventActionCode=\"R\"");
    has(msg, "EventOutcomeIndicator=\"8\"");
    has(msg, "UserID=\"SIREN\" AlternativeUserID=\"AETITLES=SIREN\" "
             "UserIsRequestor=\"true\"");
    free(msg);
    msg = message(
        "{\"time\":\"2026-11-29T10:00:04Z\",\"event\":\"instance.forwarded\","
        "\"file\":\"f.dcm\",\"sop_instance\":\"2.25.9\",\"archive\":"
        "\"ORTHANC@archive.example.org:4242\",\"status\":\"0000\"}");
    assert_non_null(msg);
    has(msg, "<ActiveParticipant UserID=\"ORTHANC@archive.example.org:4242\" "
             "AlternativeUserID=\"AETITLES=ORTHANC\" UserIsRequestor=\"false\" "
             "NetworkAccessPointID=\"archive.example.org\"");
    free(msg);
    msg = message(
        "{\"time\":\"2026-11-29T10:00:04Z\",\"event\":\"instance.forwarded\","
        "\"file\":\"f.dcm\",\"sop_instance\":\"2.25.9\",\"archive\":"
        "\"https://pacs.example.org/instances\",\"status\":\"Success\"}");
    assert_non_null(msg);
    has(msg, "<ActiveParticipant UserID=\"https://pacs.example.org/instances\" "
             "UserIsRequestor=\"false\" NetworkAccessPointID="
             "\"https://pacs.example.org/instances\" "
             "NetworkAccessPointTypeCode=\"5\">");
    free(msg);
    msg = message(
        "{\"time\":\"2026-11-29T10:00:05Z\",\"event\":\"spool.purged\","
        "\"file\":\"q.dcm\",\"stage\":\"quarantine\",\"operator\":\"alice\"}");
    assert_non_null(msg);
    has(msg, "EventActionCode=\"D\"");
    has(msg, "<ActiveParticipant UserID=\"alice\" UserIsRequestor=\"true\"/>");
    has(msg, "ParticipantObjectID=\"q.dcm\"");
    has(msg, "csd-code=\"SpoolFile\" codeSystemName=\"SIREN\"");
    free(msg);
}

/* The pixel stage's event: an update of the instance, a minor failure
 * when the stage failed (the instance is held). */
static void pixels_update_and_failure(void **state)
{
    (void)state;
    char *done = message(
        "{\"time\":\"2026-11-29T10:00:02.000Z\",\"event\":\"instance.pixels\","
        "\"file\":\"f.dcm\",\"action\":\"compressed\",\"codec\":"
        "\"jpeg-ls-lossless\",\"sop_instance\":\"2.25.1\"}");
    assert_non_null(done);
    assert_memory_equal(done, "<85>1 ", 6);
    has(done, "<EventIdentification EventActionCode=\"U\" EventDateTime="
              "\"2026-11-29T10:00:02.000Z\" EventOutcomeIndicator=\"0\">"
              "<EventID csd-code=\"110103\"");
    free(done);
    char *failed = message(
        "{\"time\":\"2026-11-29T10:00:03.000Z\",\"event\":\"instance.pixels\","
        "\"file\":\"f.dcm\",\"action\":\"failed\",\"reason\":\"encoder\"}");
    assert_non_null(failed);
    assert_memory_equal(failed, "<84>1 ", 6);
    has(failed, "EventOutcomeIndicator=\"4\"");
    has(failed, "<EventOutcomeDescription>encoder</EventOutcomeDescription>");
    free(failed);
}

static void no_message_for(void **state)
{
    (void)state;
    static const struct {
        const char *line, *why;
    } cases[] = {
        {"{\"time\":\"2026-11-29T10:00:00Z\",\"event\":\"new.kind\"}",
         "an event with no DICOM audit message"},
        {"{\"time\":\"2026-11-29 10:00:00\",\"event\":\"instance.received\"}",
         "no valid time"},
        {"{\"time\":\"2026-11-29T10:00:00.1234567Z\","
         "\"event\":\"spool.purged\"}",
         "no valid time"},
        {"{\"event\":\"instance.received\"}", "no valid time"},
        {"{\"time\":\"2026-11-29T10:00:00Z\"}", "no event name"},
        {"not json", "not a JSON object at byte 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = 0;
        char why[160] = "";
        assert_null(gw_a5_syslog_message(cases[i].line, strlen(cases[i].line),
                                         &source, &len, why, sizeof why));
        assert_string_equal(why, cases[i].why);
    }
}

/* ---- collector addresses ------------------------------------------------------------ */

static void collector_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool tls;
        const char *host, *port;
    } good[] = {
        {"tcp://syslog.example.org", false, "syslog.example.org", "514"},
        {"tls://syslog.example.org", true, "syslog.example.org", "6514"},
        {"tls://10.0.0.1:7514", true, "10.0.0.1", "7514"},
        {"tcp://[::1]:601", false, "::1", "601"},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        gw_syslog_target t;
        char why[160] = "";
        assert_int_equal(gw_syslog_target_parse(good[i].text, &t, why,
                                                sizeof why), 0);
        assert_int_equal(t.tls, good[i].tls);
        assert_string_equal(t.host, good[i].host);
        assert_string_equal(t.port, good[i].port);
    }
    static const char *const bad[] = {
        "udp://h:514", "h:514", "tcp://", "tcp://h:0", "tcp://h:65536",
        "tcp://h:+5", "tcp://h:5x", "tcp://user@h", "tcp://h/path",
        "tcp://[::1", "tcp://[::1]x", "tls://h:",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gw_syslog_target t;
        char why[160] = "";
        if (gw_syslog_target_parse(bad[i], &t, why, sizeof why) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_true(why[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_an_audit_line),
        cmocka_unit_test(reads_numbers_literals_and_odd_escapes),
        cmocka_unit_test(refuses_broken_lines),
        cmocka_unit_test(bounds_fields_and_length),
        cmocka_unit_test(instance_received),
        cmocka_unit_test(study_and_patient_deidentified),
        cmocka_unit_test(no_patient_without_patient_id),
        cmocka_unit_test(patient_and_study_escaped),
        cmocka_unit_test(security_alert_escaped),
        cmocka_unit_test(outbound_and_operator),
        cmocka_unit_test(pixels_update_and_failure),
        cmocka_unit_test(no_message_for),
        cmocka_unit_test(collector_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
