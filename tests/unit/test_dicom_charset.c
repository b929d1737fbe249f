/*
 * test_dicom_charset.c - Specific Character Set (0008,0005): parsing the
 * defined terms and decoding text values to UTF-8 (dicom/charset.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dicom.h"

/* One value to decode and the UTF-8 it must give. */
struct decode_case {
    const char *origin;  /* where the bytes come from */
    const char *charset; /* raw (0008,0005) value */
    dcm_vr vr;
    const char *value;
    const char *utf8;
};

/* ------------------------------------------------------------------------
 * The oracle: the text values of pydicom's character set test files
 * (Debian python3-pydicom, pydicom/data/charset_files, described by
 * FileInfo.txt there) and the strings pydicom decodes them to. Extracted at
 * development time with /usr/bin/python3 and pydicom 2.3: for every PN, SH,
 * LO, ST, LT, UT and UC element holding non-ASCII bytes, an escape sequence
 * or several values, plus each file's Patient ID, the raw value with its
 * trailing padding removed, the Specific Character Set of the file (or of
 * the sequence item holding the element) and pydicom's value, joined with
 * backslashes when multi-valued. pydicom drops the trailing empty component
 * group of chrX1/chrX2's names ("...=") that the decoder keeps, so the '='
 * is put back there.
 * ------------------------------------------------------------------------ */

static const struct decode_case pydicom_cases[] = {
    /* (0010,0010) قباني^لنزار */
    {"chrArab", "ISO_IR 127", DCM_VR_PN,
     "\342\310\307\346\352^\344\346\322\307\321",
     "\331\202\330\250\330\247\331\206\331\212^\331\204\331\206\330"
     "\262\330\247\330\261"},
    /* (0010,0020) SCSARAB */
    {"chrArab", "ISO_IR 127", DCM_VR_LO,
     "SCSARAB",
     "SCSARAB"},
    /* (0010,0010) Buc^Jérôme */
    {"chrFren", "ISO_IR 100", DCM_VR_PN,
     "Buc^J\351r\364me",
     "Buc^J\303\251r\303\264me"},
    /* (0010,0020) SCSFREN */
    {"chrFren", "ISO_IR 100", DCM_VR_LO,
     "SCSFREN",
     "SCSFREN"},
    /* (0010,1000) eggs\spam */
    {"chrFrenMulti", "ISO_IR 100", DCM_VR_LO,
     "eggs\\spam",
     "eggs\\spam"},
    /* (0010,1001) Buc^Jérôme\Buc^Jérôme */
    {"chrFrenMulti", "ISO_IR 100", DCM_VR_PN,
     "Buc^J\351r\364me\\Buc^J\351r\364me",
     "Buc^J\303\251r\303\264me\\Buc^J\303\251r\303\264me"},
    /* (0010,0010) Äneas^Rüdiger */
    {"chrGerm", "ISO_IR 100", DCM_VR_PN,
     "\304neas^R\374diger",
     "\303\204neas^R\303\274diger"},
    /* (0010,0020) SCSGERM */
    {"chrGerm", "ISO_IR 100", DCM_VR_LO,
     "SCSGERM",
     "SCSGERM"},
    /* (0010,0010) Διονυσιος */
    {"chrGreek", "ISO_IR 126", DCM_VR_PN,
     "\304\351\357\355\365\363\351\357\362",
     "\316\224\316\271\316\277\316\275\317\205\317\203\316\271\316\277"
     "\317\202"},
    /* (0010,0020) SCSGREEK */
    {"chrGreek", "ISO_IR 126", DCM_VR_LO,
     "SCSGREEK",
     "SCSGREEK"},
    /* (0010,0010) Yamada^Tarou=山田^太郎=やまだ^たろう */
    {"chrH31", "\\ISO 2022 IR 87", DCM_VR_PN,
     "Yamada^Tarou=\033$B;3ED\033(B^\033$BB@O:\033(B=\033$B$d$^$@\033("
     "B^\033$B$\?$m$&\033(B",
     "Yamada^Tarou=\345\261\261\347\224\260^\345\244\252\351\203\216="
     "\343\202\204\343\201\276\343\201\240^\343\201\237\343\202\215"
     "\343\201\206"},
    /* (0010,0020) H31EXAMPLE */
    {"chrH31", "\\ISO 2022 IR 87", DCM_VR_LO,
     "H31EXAMPLE",
     "H31EXAMPLE"},
    /* (0010,0010) ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう */
    {"chrH32", "ISO 2022 IR 13\\ISO 2022 IR 87", DCM_VR_PN,
     "\324\317\300\336^\300\333\263=\033$B;3ED\033(J^\033$BB@O:\033(J="
     "\033$B$d$^$@\033(J^\033$B$\?$m$&\033(J",
     "\357\276\224\357\276\217\357\276\200\357\276\236^\357\276\200"
     "\357\276\233\357\275\263=\345\261\261\347\224\260^\345\244\252"
     "\351\203\216=\343\202\204\343\201\276\343\201\240^\343\201\237"
     "\343\202\215\343\201\206"},
    /* (0010,0020) H32EXAMPLE */
    {"chrH32", "ISO 2022 IR 13\\ISO 2022 IR 87", DCM_VR_LO,
     "H32EXAMPLE",
     "H32EXAMPLE"},
    /* (0010,0010) שרון^דבורה */
    {"chrHbrw", "ISO_IR 138", DCM_VR_PN,
     "\371\370\345\357^\343\341\345\370\344",
     "\327\251\327\250\327\225\327\237^\327\223\327\221\327\225\327"
     "\250\327\224"},
    /* (0010,0020) SCSHBRW */
    {"chrHbrw", "ISO_IR 138", DCM_VR_LO,
     "SCSHBRW",
     "SCSHBRW"},
    /* (0010,0010) Hong^Gildong=洪^吉洞=홍^길동 */
    {"chrI2", "\\ISO 2022 IR 149", DCM_VR_PN,
     "Hong^Gildong=\033$)C\373\363^\033$)C\321\316\324\327=\033$)C\310"
     "\253^\033$)C\261\346\265\277",
     "Hong^Gildong=\346\264\252^\345\220\211\346\264\236=\355\231\215^"
     "\352\270\270\353\217\231"},
    /* (0010,0020) I2EXAMPLE */
    {"chrI2", "\\ISO 2022 IR 149", DCM_VR_LO,
     "I2EXAMPLE",
     "I2EXAMPLE"},
    /* (0010,0010) やまだ^たろう */
    {"chrJapMulti", "\\ISO 2022 IR 87", DCM_VR_PN,
     "\033$B$d$^$@\033(B^\033$B$\?$m$&\033(B",
     "\343\202\204\343\201\276\343\201\240^\343\201\237\343\202\215"
     "\343\201\206"},
    /* (0010,0020) 2008-4 */
    {"chrJapMulti", "\\ISO 2022 IR 87", DCM_VR_LO,
     "2008-4",
     "2008-4"},
    /* (0010,1001) やまだ^たろう\やまだ^たろう */
    {"chrJapMulti", "\\ISO 2022 IR 87", DCM_VR_PN,
     "\033$B$d$^$@\033(B^\033$B$\?$m$&\033(B\\\033$B$d$^$@\033(B^\033$"
     "B$\?$m$&\033(B",
     "\343\202\204\343\201\276\343\201\240^\343\201\237\343\202\215"
     "\343\201\206\\\343\202\204\343\201\276\343\201\240^\343\201\237"
     "\343\202\215\343\201\206"},
    /* (0010,21B0) たろう */
    {"chrJapMulti", "\\ISO 2022 IR 87", DCM_VR_LT,
     "\033$B$\?$m$&\033(B",
     "\343\201\237\343\202\215\343\201\206"},
    /* (0019,1010) EC=0.00\LR=0.00\MC=3.50\NR=3.00\MD0=-... */
    {"chrJapMulti", "\\ISO 2022 IR 87", DCM_VR_SH,
     "EC=0.00\\LR=0.00\\MC=3.50\\NR=3.00\\MD0=-0.4000\\MD1=0.2000\\FA="
     "C\\FP=0.1000\\BALANCE=0\\MLMIN=0.5000\\MLMAX=2.5000\\MFOC=0.5000",
     "EC=0.00\\LR=0.00\\MC=3.50\\NR=3.00\\MD0=-0.4000\\MD1=0.2000\\FA="
     "C\\FP=0.1000\\BALANCE=0\\MLMIN=0.5000\\MLMAX=2.5000\\MFOC=0.5000"},
    /* (0010,0010) やまだ^たろう */
    {"chrJapMultiExplicitIR6", "ISO 2022 IR 6\\ISO 2022 IR 87", DCM_VR_PN,
     "\033$B$d$^$@\033(B^\033$B$\?$m$&\033(B",
     "\343\202\204\343\201\276\343\201\240^\343\201\237\343\202\215"
     "\343\201\206"},
    /* (0010,0020) 2008-4 */
    {"chrJapMultiExplicitIR6", "ISO 2022 IR 6\\ISO 2022 IR 87", DCM_VR_LO,
     "2008-4",
     "2008-4"},
    /* (0010,1001) やまだ^たろう\やまだ^たろう */
    {"chrJapMultiExplicitIR6", "ISO 2022 IR 6\\ISO 2022 IR 87", DCM_VR_PN,
     "\033$B$d$^$@\033(B^\033$B$\?$m$&\033(B\\\033$B$d$^$@\033(B^\033$"
     "B$\?$m$&\033(B",
     "\343\202\204\343\201\276\343\201\240^\343\201\237\343\202\215"
     "\343\201\206\\\343\202\204\343\201\276\343\201\240^\343\201\237"
     "\343\202\215\343\201\206"},
    /* (0010,21B0) たろう */
    {"chrJapMultiExplicitIR6", "ISO 2022 IR 6\\ISO 2022 IR 87", DCM_VR_LT,
     "\033$B$\?$m$&\033(B",
     "\343\201\237\343\202\215\343\201\206"},
    /* (0019,1010) EC=0.00\LR=0.00\MC=3.50\NR=3.00\MD0=-... */
    {"chrJapMultiExplicitIR6", "ISO 2022 IR 6\\ISO 2022 IR 87", DCM_VR_SH,
     "EC=0.00\\LR=0.00\\MC=3.50\\NR=3.00\\MD0=-0.4000\\MD1=0.2000\\FA="
     "C\\FP=0.1000\\BALANCE=0\\MLMIN=0.5000\\MLMAX=2.5000\\MFOC=0.5000",
     "EC=0.00\\LR=0.00\\MC=3.50\\NR=3.00\\MD0=-0.4000\\MD1=0.2000\\FA="
     "C\\FP=0.1000\\BALANCE=0\\MLMIN=0.5000\\MLMAX=2.5000\\MFOC=0.5000"},
    /* (0008,1070) 김희중 */
    {"chrKoreanMulti", "\\ISO 2022 IR 149", DCM_VR_PN,
     "\033$)C\261\350\310\361\301\337\033(B",
     "\352\271\200\355\235\254\354\244\221"},
    /* (0010,0020) 2008-3 */
    {"chrKoreanMulti", "\\ISO 2022 IR 149", DCM_VR_LO,
     "2008-3",
     "2008-3"},
    /* (0010,1001) 김희중\김희중 */
    {"chrKoreanMulti", "\\ISO 2022 IR 149", DCM_VR_PN,
     "\033$)C\261\350\310\361\301\337\033(B\\\033$)C\261\350\310\361"
     "\301\337\033(B",
     "\352\271\200\355\235\254\354\244\221\\\352\271\200\355\235\254"
     "\354\244\221"},
    /* (0010,21B0) 김희중 */
    {"chrKoreanMulti", "\\ISO 2022 IR 149", DCM_VR_LT,
     "\033$)C\261\350\310\361\301\337\033(B",
     "\352\271\200\355\235\254\354\244\221"},
    /* (0019,1010) EC=0.00\LR=0.00\MC=3.50\NR=3.00\MD0=-... */
    {"chrKoreanMulti", "\\ISO 2022 IR 149", DCM_VR_SH,
     "EC=0.00\\LR=0.00\\MC=3.50\\NR=3.00\\MD0=-0.4000\\MD1=0.2000\\FA="
     "C\\FP=0.1000\\BALANCE=0\\MLMIN=0.5000\\MLMAX=2.5000\\MFOC=0.5000",
     "EC=0.00\\LR=0.00\\MC=3.50\\NR=3.00\\MD0=-0.4000\\MD1=0.2000\\FA="
     "C\\FP=0.1000\\BALANCE=0\\MLMIN=0.5000\\MLMAX=2.5000\\MFOC=0.5000"},
    /* (0010,0010) Люкceмбypг */
    {"chrRuss", "ISO_IR 144", DCM_VR_PN,
     "\273\356\332ce\334\321yp\323",
     "\320\233\321\216\320\272ce\320\274\320\261yp\320\263"},
    /* (0010,0020) SCSRUSS */
    {"chrRuss", "ISO_IR 144", DCM_VR_LO,
     "SCSRUSS",
     "SCSRUSS"},
    /* (0010,0010) ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう */
    {"chrSQEncoding", "ISO 2022 IR 13\\ISO 2022 IR 87 ", DCM_VR_PN,
     "\324\317\300\336^\300\333\263=\033$B;3ED\033(B^\033$BB@O:\033(B="
     "\033$B$d$^$@\033(B^\033$B$\?$m$&\033(B",
     "\357\276\224\357\276\217\357\276\200\357\276\236^\357\276\200"
     "\357\276\233\357\275\263=\345\261\261\347\224\260^\345\244\252"
     "\351\203\216=\343\202\204\343\201\276\343\201\240^\343\201\237"
     "\343\202\215\343\201\206"},
    /* (0010,0010) ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう */
    {"chrSQEncoding1", "ISO 2022 IR 13\\ISO 2022 IR 87", DCM_VR_PN,
     "\324\317\300\336^\300\333\263=\033$B;3ED\033(B^\033$BB@O:\033(B="
     "\033$B$d$^$@\033(B^\033$B$\?$m$&\033(B",
     "\357\276\224\357\276\217\357\276\200\357\276\236^\357\276\200"
     "\357\276\233\357\275\263=\345\261\261\347\224\260^\345\244\252"
     "\351\203\216=\343\202\204\343\201\276\343\201\240^\343\201\237"
     "\343\202\215\343\201\206"},
    /* (0010,0010) Wang^XiaoDong=王^小東= */
    {"chrX1", "ISO_IR 192", DCM_VR_PN,
     "Wang^XiaoDong=\347\216\213^\345\260\217\346\235\261=",
     "Wang^XiaoDong=\347\216\213^\345\260\217\346\235\261="},
    /* (0010,0020) X1EXAMPLE */
    {"chrX1", "ISO_IR 192", DCM_VR_LO,
     "X1EXAMPLE",
     "X1EXAMPLE"},
    /* (0010,0010) Wang^XiaoDong=王^小东= */
    {"chrX2", "GB18030", DCM_VR_PN,
     "Wang^XiaoDong=\315\365^\320\241\266\253=",
     "Wang^XiaoDong=\347\216\213^\345\260\217\344\270\234="},
    /* (0010,0020) X2EXAMPLE */
    {"chrX2", "GB18030", DCM_VR_LO,
     "X2EXAMPLE",
     "X2EXAMPLE"},
};

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static dcm_charset *parse_or_fail(const char *charset)
{
    dcm_error err = {0};
    dcm_charset *cs = dcm_charset_parse(charset, strlen(charset), &err);
    if (!cs)
        fail_msg("Specific Character Set \"%s\": %s", charset, err.message);
    return cs;
}

/* Decodes in_len bytes of in as vr under charset (NULL: no Specific
 * Character Set) and checks the UTF-8, its length, the NUL after it and
 * whether the decoder reported a loss. */
static void check_decode(const char *origin, const char *charset, dcm_vr vr,
                         const char *in, size_t in_len, const char *expected,
                         size_t expected_len, bool expect_lossy)
{
    dcm_charset *cs = charset ? parse_or_fail(charset) : NULL;
    dcm_error err = {0};
    size_t out_len = SIZE_MAX;
    bool lossy = false;
    char *out = dcm_charset_decode(cs, vr, (const uint8_t *)in, in_len,
                                   &out_len, &lossy, &err);

    if (!out)
        fail_msg("%s: decoding failed: %s", origin, err.message);
    if (out_len != expected_len || memcmp(out, expected, out_len) != 0)
        fail_msg("%s (%s, %s): got \"%s\" (%zu bytes), expected \"%s\" "
                 "(%zu bytes)", origin, charset ? charset : "none",
                 dcm_vr_name(vr), out, out_len, expected, expected_len);
    assert_int_equal(out[out_len], '\0');
    if (lossy != expect_lossy)
        fail_msg("%s: lossy is %d, expected %d", origin, lossy,
                 expect_lossy);
    free(out);
    dcm_charset_free(cs);
}

/* String literals, embedded NULs included. */
#define EXPECT_DECODE(charset, vr, in, out)                                  \
    check_decode(#in, charset, vr, in, sizeof(in) - 1, out,                \
                 sizeof(out) - 1, false)
#define EXPECT_LOSSY(charset, vr, in, out)                                   \
    check_decode(#in, charset, vr, in, sizeof(in) - 1, out,                \
                 sizeof(out) - 1, true)

static void check_cases(const struct decode_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++)
        check_decode(cases[i].origin, cases[i].charset, cases[i].vr,
                     cases[i].value, strlen(cases[i].value), cases[i].utf8,
                     strlen(cases[i].utf8), false);
}

#define CHECK_CASES(cases) check_cases(cases, sizeof cases / sizeof cases[0])

/* U+FFFD in UTF-8. */
#define FFFD "\357\277\275"

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

static void test_pydicom_charset_files(void **state)
{
    (void)state;
    CHECK_CASES(pydicom_cases);
}

/* Every defined term as the only value, with a character of its own
 * (expected UTF-8 from Python's codecs). */
static const struct decode_case single_value_cases[] = {
    {"default", "", DCM_VR_LO, "abc", "abc"},
    {"ASCII", "ISO_IR 6", DCM_VR_LO, "abc", "abc"},
    {"Latin-1", "ISO_IR 100", DCM_VR_LO, "\351", "\303\251"},
    {"Latin-2", "ISO_IR 101", DCM_VR_LO, "\261", "\304\205"},
    {"Latin-3", "ISO_IR 109", DCM_VR_LO, "\241", "\304\246"},
    {"Latin-4", "ISO_IR 110", DCM_VR_LO, "\241", "\304\204"},
    {"Cyrillic", "ISO_IR 144", DCM_VR_LO, "\260", "\320\220"},
    {"Arabic", "ISO_IR 127", DCM_VR_LO, "\307", "\330\247"},
    {"Greek", "ISO_IR 126", DCM_VR_LO, "\301", "\316\221"},
    {"Hebrew", "ISO_IR 138", DCM_VR_LO, "\340", "\327\220"},
    {"Latin-5", "ISO_IR 148", DCM_VR_LO, "\360", "\304\237"},
    {"Latin-9", "ISO_IR 203", DCM_VR_LO, "\244", "\342\202\254"},
    {"Thai", "ISO_IR 166", DCM_VR_LO, "\241", "\340\270\201"},
    {"JIS X 0201", "ISO_IR 13", DCM_VR_LO, "A\261\337", "A\357\275\261"
     "\357\276\237"},
    {"UTF-8", "ISO_IR 192", DCM_VR_LO, "\347\216\213", "\347\216\213"},
    {"GB18030", "GB18030", DCM_VR_LO, "\315\365", "\347\216\213"},
    {"GB18030 four bytes", "GB18030", DCM_VR_LO, "\2010\2010", "\302\200"},
    {"GBK", "GBK", DCM_VR_LO, "\315\365", "\347\216\213"},
    /* A trail byte 5C is half a character, not a value delimiter. */
    {"GBK 5C trail", "GBK", DCM_VR_LO, "\201\\\\x", "\344\271\227\\x"},
    {"ISO 2022 IR 6", "ISO 2022 IR 6", DCM_VR_LO, "abc", "abc"},
    {"ISO 2022 IR 100", "ISO 2022 IR 100", DCM_VR_LO, "\351", "\303\251"},
    {"ISO 2022 IR 101", "ISO 2022 IR 101", DCM_VR_LO, "\261", "\304\205"},
    {"ISO 2022 IR 109", "ISO 2022 IR 109", DCM_VR_LO, "\241", "\304\246"},
    {"ISO 2022 IR 110", "ISO 2022 IR 110", DCM_VR_LO, "\241", "\304\204"},
    {"ISO 2022 IR 144", "ISO 2022 IR 144", DCM_VR_LO, "\260", "\320\220"},
    {"ISO 2022 IR 127", "ISO 2022 IR 127", DCM_VR_LO, "\307", "\330\247"},
    {"ISO 2022 IR 126", "ISO 2022 IR 126", DCM_VR_LO, "\301", "\316\221"},
    {"ISO 2022 IR 138", "ISO 2022 IR 138", DCM_VR_LO, "\340", "\327\220"},
    {"ISO 2022 IR 148", "ISO 2022 IR 148", DCM_VR_LO, "\360", "\304\237"},
    {"ISO 2022 IR 203", "ISO 2022 IR 203", DCM_VR_LO, "\244",
     "\342\202\254"},
    {"ISO 2022 IR 166", "ISO 2022 IR 166", DCM_VR_LO, "\241",
     "\340\270\201"},
    {"ISO 2022 IR 13", "ISO 2022 IR 13", DCM_VR_LO, "\261", "\357\275\261"},
};

static void test_single_value_terms(void **state)
{
    (void)state;
    CHECK_CASES(single_value_cases);
}

/* Every ISO 2022 term as value 2, reached by its escape sequence (PS3.3
 * Tables C.12-3 and C.12-4), then back to ASCII. */
static const struct decode_case escape_cases[] = {
    {"ESC ( B", "ISO 2022 IR 100\\ISO 2022 IR 6", DCM_VR_LO,
     "\033(Babc", "abc"},
    {"ESC - A", "\\ISO 2022 IR 100", DCM_VR_LO, "\033-A\351", "\303\251"},
    {"ESC - B", "\\ISO 2022 IR 101", DCM_VR_LO, "\033-B\261", "\304\205"},
    {"ESC - C", "\\ISO 2022 IR 109", DCM_VR_LO, "\033-C\241", "\304\246"},
    {"ESC - D", "\\ISO 2022 IR 110", DCM_VR_LO, "\033-D\241", "\304\204"},
    {"ESC - L", "\\ISO 2022 IR 144", DCM_VR_LO, "\033-L\260", "\320\220"},
    {"ESC - G", "\\ISO 2022 IR 127", DCM_VR_LO, "\033-G\307", "\330\247"},
    {"ESC - F", "\\ISO 2022 IR 126", DCM_VR_LO, "\033-F\301", "\316\221"},
    {"ESC - H", "\\ISO 2022 IR 138", DCM_VR_LO, "\033-H\340", "\327\220"},
    {"ESC - M", "\\ISO 2022 IR 148", DCM_VR_LO, "\033-M\360", "\304\237"},
    {"ESC - b", "\\ISO 2022 IR 203", DCM_VR_LO, "\033-b\244",
     "\342\202\254"},
    {"ESC - T", "\\ISO 2022 IR 166", DCM_VR_LO, "\033-T\241",
     "\340\270\201"},
    {"ESC ) I", "\\ISO 2022 IR 13", DCM_VR_LO, "\033)I\261",
     "\357\275\261"},
    {"ESC ( J", "ISO 2022 IR 13\\ISO 2022 IR 87", DCM_VR_LO,
     "\033$B$\"\033(Jab", "\343\201\202ab"},
    {"ESC $ B", "\\ISO 2022 IR 87", DCM_VR_LO, "\033$B;3\033(Bx",
     "\345\261\261x"},
    {"ESC $ ( D", "\\ISO 2022 IR 159", DCM_VR_LO, "\033$(D0!\033(Bx",
     "\344\270\202x"},
    {"ESC $ ) C", "\\ISO 2022 IR 149", DCM_VR_LO, "\033$)C\261\350x",
     "\352\271\200x"},
    {"ESC $ ) A", "\\ISO 2022 IR 58", DCM_VR_LO, "\033$)A\315\365x",
     "\347\216\213x"},
};

static void test_escape_sequences(void **state)
{
    (void)state;
    CHECK_CASES(escape_cases);
}

/* While JIS X 0208 is in G0, bytes come in pairs: 5C, 5E and 3D inside a
 * pair are halves of kanji, not delimiters (PS3.5 6.1.2.5.3). */
static void test_delimiter_bytes_inside_jis_pairs(void **state)
{
    (void)state;
    /* JIS 5C21 and 305C, 305E, 303D (Python's iso2022_jp). */
    EXPECT_DECODE("\\ISO 2022 IR 87", DCM_VR_SH,
                  "\033$B\\!0\\\033(B\\x", "\346\243\224\347\247\273\\x");
    EXPECT_DECODE("\\ISO 2022 IR 87", DCM_VR_PN,
                  "\033$B0^\033(B^\033$B0=\033(B=y",
                  "\347\267\257^\347\266\276=y");
    EXPECT_DECODE("\\ISO 2022 IR 87", DCM_VR_LT, "\033$B0\\\033(B",
                  "\347\247\273");
}

/* PS3.5 6.1.2.5.3: value 1's sets come back before delimiters and
 * control characters, so a G1 set designated before one is gone after. */
static void test_initial_sets_restored(void **state)
{
    (void)state;
    /* PN: at '^' and '=' (the Korean example of PS3.5 I.2 repeats the
     * escape for that reason). */
    EXPECT_LOSSY("\\ISO 2022 IR 149", DCM_VR_PN, "\033$)C\261\350^\261\350",
                 "\352\271\200^" FFFD FFFD);
    EXPECT_LOSSY("\\ISO 2022 IR 149", DCM_VR_PN, "\033$)C\261\350=\261\350",
                 "\352\271\200=" FFFD FFFD);
    /* '^' is no delimiter outside PN. */
    EXPECT_DECODE("\\ISO 2022 IR 149", DCM_VR_LO, "\033$)C\261\350^\261\350",
                  "\352\271\200^\352\271\200");
    /* The value delimiter, but in LT, ST and UT a backslash is text. */
    EXPECT_LOSSY("\\ISO 2022 IR 149", DCM_VR_SH, "\033$)C\261\350\\\261\350",
                 "\352\271\200\\" FFFD FFFD);
    EXPECT_LOSSY("\\ISO 2022 IR 149", DCM_VR_UC, "\033$)C\261\350\\\261\350",
                 "\352\271\200\\" FFFD FFFD);
    EXPECT_DECODE("\\ISO 2022 IR 149", DCM_VR_LT,
                  "\033$)C\261\350\\\261\350",
                  "\352\271\200\\\352\271\200");
    EXPECT_DECODE("\\ISO 2022 IR 149", DCM_VR_ST,
                  "\033$)C\261\350\\\261\350",
                  "\352\271\200\\\352\271\200");
    EXPECT_DECODE("\\ISO 2022 IR 149", DCM_VR_UT,
                  "\033$)C\261\350\\\261\350",
                  "\352\271\200\\\352\271\200");
    /* Each line starts afresh (PS3.5 I.3): one escape per line. */
    EXPECT_DECODE("\\ISO 2022 IR 149", DCM_VR_LT,
                  "\033$)Ca \261\350\r\n\033$)Cb \261\350\r\nc",
                  "a \352\271\200\r\nb \352\271\200\r\nc");
    EXPECT_LOSSY("\\ISO 2022 IR 149", DCM_VR_LT, "\033$)C\261\350\t\261\350",
                 "\352\271\200\t" FFFD FFFD);
    /* A control character ends a JIS X 0208 run in G0 too. */
    EXPECT_DECODE("\\ISO 2022 IR 87", DCM_VR_LT, "\033$B;3\nab",
                  "\345\261\261\nab");
    /* Back to value 1's G1, not to nothing. */
    EXPECT_DECODE("ISO 2022 IR 100\\ISO 2022 IR 126", DCM_VR_PN,
                  "\351\033-F\341^\351", "\303\251\316\261^\303\251");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    EXPECT_LOSSY("ISO_IR 192", DCM_VR_LO, "a\377b", "a" FFFD "b");
    /* A cut-off character is one U+FFFD (Unicode's maximal subpart). */
    EXPECT_LOSSY("ISO_IR 192", DCM_VR_LO, "\347\216x", FFFD "x");
    EXPECT_LOSSY("ISO_IR 192", DCM_VR_LO, "\347\216", FFFD);
    /* Overlong, surrogate and past U+10FFFF. */
    EXPECT_LOSSY("ISO_IR 192", DCM_VR_LO, "\300\257", FFFD FFFD);
    EXPECT_LOSSY("ISO_IR 192", DCM_VR_LO, "\340\200\257", FFFD FFFD FFFD);
    EXPECT_LOSSY("ISO_IR 192", DCM_VR_LO, "\360\200\200\257",
                 FFFD FFFD FFFD FFFD);
    EXPECT_LOSSY("ISO_IR 192", DCM_VR_LO, "\355\240\200", FFFD FFFD FFFD);
    EXPECT_LOSSY("ISO_IR 192", DCM_VR_LO, "\364\220\200\200",
                 FFFD FFFD FFFD FFFD);
    EXPECT_DECODE("ISO_IR 192", DCM_VR_LO, "\360\237\230\200\357\277\277",
                  "\360\237\230\200\357\277\277");
}

static void test_undecodable_bytes(void **state)
{
    (void)state;
    /* G1 holds nothing when value 1 is empty. */
    EXPECT_LOSSY("\\ISO 2022 IR 87", DCM_VR_LO, "a\351", "a" FFFD);
    /* JIS X 0201 has no katakana past DF. */
    EXPECT_LOSSY("ISO_IR 13", DCM_VR_LO, "\340", FFFD);
    /* Half a JIS X 0208 pair, and a pair JIS X 0208 leaves empty. */
    EXPECT_LOSSY("\\ISO 2022 IR 87", DCM_VR_LO, "\033$B;\033(Bx", FFFD "x");
    EXPECT_LOSSY("\\ISO 2022 IR 87", DCM_VR_LO, "\033$B~~;3\033(B",
                 FFFD "\345\261\261");
    /* A KS X 1001 pair that is no character keeps the next pair whole. */
    EXPECT_LOSSY("\\ISO 2022 IR 149", DCM_VR_LO, "\033$)C\311\241\261\350",
                 FFFD "\352\271\200");
    /* Unknown (JIS X 0213) and cut-off escape sequences. */
    EXPECT_LOSSY("\\ISO 2022 IR 87", DCM_VR_LO, "\033$(Qab", FFFD "ab");
    EXPECT_LOSSY("\\ISO 2022 IR 87", DCM_VR_LO, "ab\033$", "ab" FFFD);
    EXPECT_LOSSY("\\ISO 2022 IR 87", DCM_VR_LO, "\033$\nab", FFFD "\nab");
    EXPECT_LOSSY("GB18030", DCM_VR_LO, "a\377b", "a" FFFD "b");
    EXPECT_LOSSY("GBK", DCM_VR_LO, "a\315", "a" FFFD);
    EXPECT_LOSSY("ISO_IR 127", DCM_VR_LO, "\241", FFFD);
}

/* Without code extension (one value, not an "ISO 2022" term) ESC is only
 * a control character (PS3.5 6.1.2.5.4). */
static void test_escape_without_code_extension(void **state)
{
    (void)state;
    EXPECT_DECODE("ISO_IR 100", DCM_VR_LO, "a\033-F\341",
                  "a\033-F\303\241");
    EXPECT_DECODE("ISO_IR 192", DCM_VR_LO, "\033$B", "\033$B");
}

/* Values a reader meets although PS3.3 does not allow them. */
static void test_tolerated_charsets(void **state)
{
    (void)state;
    /* ISO_IR instead of ISO 2022 IR in value 1 of several. */
    EXPECT_DECODE("ISO_IR 13\\ISO 2022 IR 87", DCM_VR_PN,
                  "\324\317^\033$B;3\033(J", "\357\276\224\357\276\217^"
                  "\345\261\261");
    /* A multi-byte set as value 1 starts in ASCII. */
    EXPECT_DECODE("ISO 2022 IR 87", DCM_VR_PN, "ab\033$B;3\033(B",
                  "ab\345\261\261");
    /* Korean as value 1 puts KS X 1001 in G1 from the start. */
    EXPECT_DECODE("ISO 2022 IR 149", DCM_VR_PN, "\261\350", "\352\271\200");
    /* UTF-8 allows no code extension: later values are ignored. */
    EXPECT_DECODE("ISO_IR 192\\ISO 2022 IR 87", DCM_VR_PN, "\347\216\213",
                  "\347\216\213");
    /* Spellings seen in the wild, and padding. */
    static const char *const latin1_spellings[] = {
        "ISO_IR 100", "ISO_IR_100", "ISO-IR 100", "ISO IR 100", "iso_ir 100",
        "ISO_IR100", " ISO_IR 100 ", "ISO_IR 100\\", "ISO 2022 IR 100",
        "ISO2022 IR100", "iso-2022-ir-100",
    };
    for (size_t i = 0; i < sizeof latin1_spellings / sizeof *latin1_spellings;
         i++)
        check_decode(latin1_spellings[i], latin1_spellings[i], DCM_VR_PN,
                     "\351", 1, "\303\251", 2, false);
    /* Lower case, padded with a NUL as some writers do. */
    dcm_charset *cs = dcm_charset_parse("gb18030\0", 8, NULL);
    assert_non_null(cs);
    char *out = dcm_charset_decode(cs, DCM_VR_PN, (const uint8_t *)"\315\365",
                                   2, NULL, NULL, NULL);
    assert_non_null(out);
    assert_string_equal(out, "\347\216\213");
    free(out);
    dcm_charset_free(cs);
}

static void check_unsupported(const char *charset, size_t len,
                              const char *named)
{
    dcm_error err = {0};
    dcm_charset *cs = dcm_charset_parse(charset, len, &err);

    assert_null(cs);
    assert_int_equal(err.code, DCM_E_UNSUPPORTED);
    if (!strstr(err.message, named))
        fail_msg("message \"%s\" does not name \"%s\"", err.message, named);
}

static void test_unknown_terms(void **state)
{
    (void)state;
    check_unsupported("ISO_IR 999", 10, "\"ISO_IR 999\"");
    check_unsupported("ISO 2022 IR 100\\ISO 2022 IR 42 ", 31,
                      "value 2 \"ISO 2022 IR 42\"");
    check_unsupported("UTF-8", 5, "\"UTF-8\"");
    check_unsupported("ISO_IR 100\377", 11, "\"ISO_IR 100?\"");
    check_unsupported("\\ISO 2022 IR 87\\KOI8-R", 22, "value 3 \"KOI8-R\"");
}

static void test_empty_values(void **state)
{
    (void)state;
    static const char *const charsets[] = {
        "", "ISO_IR 100", "\\ISO 2022 IR 87", "ISO_IR 192", "GB18030",
    };
    for (size_t i = 0; i < sizeof charsets / sizeof *charsets; i++)
        check_decode(charsets[i], charsets[i], DCM_VR_PN, "", 0, "", 0,
                     false);
    check_decode("no charset", NULL, DCM_VR_PN, "", 0, "", 0, false);

    size_t out_len = SIZE_MAX;
    char *out = dcm_charset_decode(NULL, DCM_VR_LO, NULL, 0, &out_len, NULL,
                                   NULL);
    assert_non_null(out);
    assert_string_equal(out, "");
    assert_int_equal(out_len, 0);
    free(out);

    dcm_charset *cs = dcm_charset_parse(NULL, 0, NULL);
    assert_non_null(cs);
    dcm_charset_free(cs);
}

/* No Specific Character Set, and VRs that do not follow it (PS3.5
 * 6.1.2.3): the default repertoire, anything else U+FFFD. */
static void test_default_repertoire(void **state)
{
    (void)state;
    check_decode("no charset", NULL, DCM_VR_PN, "Buc^J\351r", 7,
                 "Buc^J" FFFD "r", 9, true);
    check_decode("CS", "ISO_IR 100", DCM_VR_CS, "A\351", 2, "A" FFFD, 4,
                 true);
    check_decode("AE", "ISO_IR 192", DCM_VR_AE, "STORE\347\216\213", 8,
                 "STORE" FFFD FFFD FFFD, 14, true);
    check_decode("UI", "\\ISO 2022 IR 87", DCM_VR_UI, "1.2\0", 4, "1.2\0", 4,
                 false);
    check_decode("DA", "GB18030", DCM_VR_DA, "20240101", 8, "20240101", 8,
                 false);
}

/* *lossy is only ever set, never cleared, so that a caller can gather it
 * over many values. */
static void test_lossy_accumulates(void **state)
{
    (void)state;
    dcm_charset *cs = parse_or_fail("ISO_IR 192");
    bool lossy = false;

    char *out = dcm_charset_decode(cs, DCM_VR_LO, (const uint8_t *)"\377", 1,
                                   NULL, &lossy, NULL);
    assert_non_null(out);
    free(out);
    assert_true(lossy);
    out = dcm_charset_decode(cs, DCM_VR_LO, (const uint8_t *)"ok", 2, NULL,
                             &lossy, NULL);
    assert_non_null(out);
    free(out);
    assert_true(lossy);
    dcm_charset_free(cs);
}

/* Long values grow the output many times; one cached converter serves
 * every call. */
static void test_long_values(void **state)
{
    (void)state;
    enum { COUNT = 100000 };
    uint8_t *in = malloc(COUNT);
    assert_non_null(in);
    memset(in, 0xE9, COUNT);
    dcm_charset *cs = parse_or_fail("ISO_IR 100");

    for (int round = 0; round < 3; round++) {
        size_t out_len = 0;
        char *out = dcm_charset_decode(cs, DCM_VR_UT, in, COUNT, &out_len,
                                       NULL, NULL);
        assert_non_null(out);
        assert_int_equal(out_len, 2 * COUNT);
        assert_memory_equal(out + out_len - 2, "\303\251", 2);
        free(out);
    }
    dcm_charset_free(cs);
    free(in);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    dcm_error err = {0};

    assert_null(dcm_charset_parse(NULL, 3, &err));
    assert_int_equal(err.code, DCM_E_ARG);
    err.code = 0;
    assert_null(dcm_charset_decode(NULL, DCM_VR_LO, NULL, 3, NULL, NULL,
                                   &err));
    assert_int_equal(err.code, DCM_E_ARG);
    dcm_charset_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pydicom_charset_files),
        cmocka_unit_test(test_single_value_terms),
        cmocka_unit_test(test_escape_sequences),
        cmocka_unit_test(test_delimiter_bytes_inside_jis_pairs),
        cmocka_unit_test(test_initial_sets_restored),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_undecodable_bytes),
        cmocka_unit_test(test_escape_without_code_extension),
        cmocka_unit_test(test_tolerated_charsets),
        cmocka_unit_test(test_unknown_terms),
        cmocka_unit_test(test_empty_values),
        cmocka_unit_test(test_default_repertoire),
        cmocka_unit_test(test_lossy_accumulates),
        cmocka_unit_test(test_long_values),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
