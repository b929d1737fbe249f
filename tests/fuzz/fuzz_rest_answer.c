/* fuzz_rest_answer.c - libFuzzer harness for the reader of Orthanc's
 * answers to POST /instances (gateway/rest_answer.c) and the judgement
 * made of them: any body, under every kind of HTTP status, must give
 * NUL-terminated fields without control characters, and a delivery only
 * for 200 with Orthanc's Status and ID. */
#include "forward_transport.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Terminated, and no C0, DEL or C1 control (U+0080 to U+009F is
 * 0xC2 0x80 to 0xC2 0x9F in UTF-8). */
static void check_text(const char *text, size_t size)
{
    size_t len = strnlen(text, size);
    if (len == size)
        abort();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7F ||
            (c == 0xC2 && i + 1 < len &&
             (unsigned char)text[i + 1] < 0xA0))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 201, 302, 400, 401, 404,
                                    413, 500, 503};
    gw_rest_answer a;
    bool parsed = gw_rest_answer_parse((const char *)data, size, &a) == 0;
    check_text(a.status, sizeof a.status);
    check_text(a.id, sizeof a.id);
    check_text(a.message, sizeof a.message);
    check_text(a.details, sizeof a.details);
    for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++) {
        gw_fwd_answer out;
        gw_rest_judge(statuses[i], &a, parsed, &out);
        check_text(out.detail, sizeof out.detail);
        check_text(out.status, sizeof out.status);
        if (out.kind == GW_FWD_STORED &&
            (statuses[i] != 200 || !parsed || !a.id[0]))
            abort();
    }
    return 0;
}
