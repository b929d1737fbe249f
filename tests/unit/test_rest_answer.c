/* test_rest_answer.c - gateway/rest_answer.c: the members read from
 * Orthanc's JSON answers to POST /instances (its real answers, escapes,
 * cut values, nesting, malformed bodies) and what each HTTP status and
 * body means for the file being forwarded. */
#include "forward_transport.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *body, gw_rest_answer *out)
{
    return gw_rest_answer_parse(body, strlen(body), out);
}

/* Orthanc 1.10's own answers, as it prints them. */
static const char stored[] =
    "{\n"
    "   \"ID\" : \"f689ddd2-662f8fe1-8b18180d-ec2a2cee-937917af\",\n"
    "   \"ParentPatient\" : \"fa558bce-587a86d3-ad0da9b3-9d043d9d-4f5c5718\",\n"
    "   \"Path\" : \"/instances/f689ddd2-662f8fe1-8b18180d-ec2a2cee-937917af\",\n"
    "   \"Status\" : \"AlreadyStored\"\n"
    "}\n";
static const char bad_file[] =
    "{\n"
    "\t\"Details\" : \"Cannot parse an invalid DICOM file (size: 9 bytes)\",\n"
    "\t\"HttpError\" : \"Bad Request\",\n"
    "\t\"HttpStatus\" : 400,\n"
    "\t\"Message\" : \"Bad file format\",\n"
    "\t\"Method\" : \"POST\",\n"
    "\t\"OrthancError\" : \"Bad file format\",\n"
    "\t\"OrthancStatus\" : 15,\n"
    "\t\"Uri\" : \"/instances\"\n"
    "}\n";

static void orthanc_answers(void **state)
{
    (void)state;
    gw_rest_answer a;
    assert_int_equal(parse(stored, &a), 0);
    assert_string_equal(a.status, "AlreadyStored");
    assert_string_equal(a.id, "f689ddd2-662f8fe1-8b18180d-ec2a2cee-937917af");
    assert_string_equal(a.message, "");
    assert_int_equal(parse(bad_file, &a), 0);
    assert_string_equal(a.message, "Bad file format");
    assert_string_equal(a.details,
                        "Cannot parse an invalid DICOM file (size: 9 bytes)");
    assert_string_equal(a.status, "");
}

static void escapes_and_nesting(void **state)
{
    (void)state;
    gw_rest_answer a;
    assert_int_equal(parse("{\"x\":{\"y\":[1,-2.5e+3,true,false,null,"
                           "{\"Status\":\"inner\"},[[]]]},"
                           "\"Status\":\"Success\",\"ID\":\"a\\/b\","
                           "\"Message\":\"caf\\u00e9 \\ud83d\\ude00 \\udc00"
                           "\\n\\t\\\"q\\\"\"}", &a), 0);
    assert_string_equal(a.status, "Success"); /* not the nested one */
    assert_string_equal(a.id, "a/b");
    assert_string_equal(a.message, "caf\xc3\xa9 \xf0\x9f\x98\x80 "
                                   "\xef\xbf\xbd  \"q\"");
    /* A member that is not a string leaves its field empty; the last of
     * two string values counts. */
    assert_int_equal(parse("{\"Status\":7,\"ID\":\"one\",\"ID\":\"two\"}", &a),
                     0);
    assert_string_equal(a.status, "");
    assert_string_equal(a.id, "two");
    /* Raw UTF-8 is kept; keys longer than any member read are skipped. */
    assert_int_equal(parse("{\"MessageMessageMessage\":\"x\",\"Message\":"
                           "\"\xc3\xa9t\xc3\xa9\"}", &a), 0);
    assert_string_equal(a.message, "\xc3\xa9t\xc3\xa9");
    /* DEL and C1 controls, raw or escaped, become spaces too. */
    assert_int_equal(parse("{\"Message\":\"a\x7f" "b\xc2\x85" "c\\u0085d"
                           "\xc2\xa0" "e\"}", &a), 0);
    assert_string_equal(a.message, "a b c d\xc2\xa0" "e");
}

/* A value longer than its field is cut between characters. */
static void long_values_cut(void **state)
{
    (void)state;
    char body[2048] = "{\"Message\":\"";
    for (int i = 0; i < 300; i++)
        strcat(body, "\xc3\xa9"); /* 2 bytes each */
    strcat(body, "\",\"Status\":\"Success\"}");
    gw_rest_answer a;
    assert_int_equal(parse(body, &a), 0);
    size_t len = strlen(a.message);
    assert_true(len < sizeof a.message && len >= sizeof a.message - 3);
    assert_int_equal(len % 2, 0);
    assert_string_equal(a.status, "Success"); /* read on after the cut */
    /* A short character does not slip in after one that did not fit. */
    char mixed[512] = "{\"ID\":\"";
    for (size_t i = 0; i < sizeof a.id - 2; i++)
        strcat(mixed, "a");
    strcat(mixed, "\xe2\x82\xac" "b\"}");
    assert_int_equal(parse(mixed, &a), 0);
    assert_int_equal(strlen(a.id), sizeof a.id - 2);
    assert_null(strchr(a.id, 'b'));
}

static void malformed(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "", "   ", "[]", "\"Success\"", "{", "{\"Status\":\"Success\"",
        "{\"Status\":\"Success\"} x", "{\"Status\" \"Success\"}",
        "{\"Status\":\"Succ\nss\"}", "{\"Status\":\"\\x\"}",
        "{\"Status\":\"\\u12\"}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":-}",
        "{\"a\":tru}", "{\"a\":[1,]}", "{,}", "{\"a\":1,}",
        "{\"Message\":\"\xc3\"}", "{\"Message\":\"\xe0\x80\x80\"}",
        "{\"Message\":\"\xed\xa0\x80\"}", "{\"Message\":\"\xf5\x80\x80\x80\"}",
        "{\"a\":\"x\"}{\"b\":1}",
    };
    gw_rest_answer a;
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        memset(&a, 'x', sizeof a);
        if (parse(bodies[i], &a) != -1)
            fail_msg("accepted: %s", bodies[i]);
        assert_string_equal(a.status, ""); /* nothing kept */
        assert_string_equal(a.id, "");
    }
    /* A NUL inside the body is a control character. */
    static const char with_nul[] = "{\"Status\":\"Suc\0cess\"}";
    assert_int_equal(gw_rest_answer_parse(with_nul, sizeof with_nul - 1, &a),
                     -1);
}

/* 64 levels of nesting are read, 65 are not. */
static void nesting_limit(void **state)
{
    (void)state;
    char body[400];
    for (int depth = 64; depth <= 65; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth - 1; i++)
            body[n++] = '[';
        body[n] = '\0';
        char text[420];
        snprintf(text, sizeof text, "{\"a\":%s", body);
        n = strlen(text);
        for (int i = 0; i < depth - 1; i++)
            text[n++] = ']';
        text[n++] = '}';
        text[n] = '\0';
        gw_rest_answer a;
        assert_int_equal(parse(text, &a), depth == 64 ? 0 : -1);
    }
}

static gw_fwd_answer judge(long http, const char *body)
{
    gw_rest_answer a;
    bool parsed = body && parse(body, &a) == 0;
    if (!parsed)
        memset(&a, 0, sizeof a);
    gw_fwd_answer out;
    gw_rest_judge(http, &a, parsed, &out);
    return out;
}

static void what_answers_mean(void **state)
{
    (void)state;
    gw_fwd_answer out = judge(200, stored);
    assert_int_equal(out.kind, GW_FWD_STORED);
    assert_string_equal(out.status, "AlreadyStored");
    assert_string_equal(out.archive_id,
                        "f689ddd2-662f8fe1-8b18180d-ec2a2cee-937917af");
    assert_int_equal(judge(200, "{\"Status\":\"Success\",\"ID\":\"i\"}").kind,
                     GW_FWD_STORED);
    /* 200 is not enough: Orthanc's Status and ID say it is stored. */
    assert_int_equal(judge(200, "{\"Status\":\"Success\"}").kind,
                     GW_FWD_LATER);
    assert_int_equal(judge(200, "{\"Status\":\"Failure\",\"ID\":\"i\"}").kind,
                     GW_FWD_LATER);
    out = judge(200, "{\"Status\":\"FilteredOut\",\"ID\":\"i\"}");
    assert_int_equal(out.kind, GW_FWD_LATER);
    assert_non_null(strstr(out.detail, "FilteredOut"));
    assert_int_equal(judge(200, "<html>OK</html>").kind, GW_FWD_LATER);
    assert_int_equal(judge(200, NULL).kind, GW_FWD_LATER);
    assert_int_equal(judge(201, stored).kind, GW_FWD_LATER);

    out = judge(400, bad_file);
    assert_int_equal(out.kind, GW_FWD_REFUSED);
    assert_string_equal(out.status, "http_400");
    assert_string_equal(out.detail, "the archive refused it: HTTP 400: Bad "
                        "file format (Cannot parse an invalid DICOM file "
                        "(size: 9 bytes))");
    assert_int_equal(judge(415, NULL).kind, GW_FWD_REFUSED);
    assert_int_equal(judge(413, "").kind, GW_FWD_REFUSED);
    assert_int_equal(judge(422, NULL).kind, GW_FWD_REFUSED);

    out = judge(401, "");
    assert_int_equal(out.kind, GW_FWD_DENIED);
    assert_non_null(strstr(out.detail, "credentials"));
    assert_int_equal(judge(403, NULL).kind, GW_FWD_DENIED);
    assert_int_equal(judge(407, NULL).kind, GW_FWD_DENIED);
    assert_int_equal(judge(404, "{\"Message\":\"Unknown resource\"}").kind,
                     GW_FWD_DENIED);
    assert_int_equal(judge(405, NULL).kind, GW_FWD_DENIED);
    assert_int_equal(judge(302, NULL).kind, GW_FWD_DENIED);

    assert_int_equal(judge(503, NULL).kind, GW_FWD_AWAY);
    assert_int_equal(judge(502, NULL).kind, GW_FWD_AWAY);
    assert_int_equal(judge(504, NULL).kind, GW_FWD_AWAY);
    assert_int_equal(judge(507, NULL).kind, GW_FWD_AWAY);
    assert_int_equal(judge(429, NULL).kind, GW_FWD_AWAY);
    assert_int_equal(judge(408, NULL).kind, GW_FWD_AWAY);

    out = judge(500, "{\"Message\":\"Internal error\"}");
    assert_int_equal(out.kind, GW_FWD_LATER);
    assert_string_equal(out.detail, "HTTP 500: Internal error");
    assert_int_equal(judge(501, NULL).kind, GW_FWD_LATER);
    assert_int_equal(judge(100, NULL).kind, GW_FWD_LATER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(orthanc_answers),
        cmocka_unit_test(escapes_and_nesting),
        cmocka_unit_test(long_values_cut),
        cmocka_unit_test(malformed),
        cmocka_unit_test(nesting_limit),
        cmocka_unit_test(what_answers_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
