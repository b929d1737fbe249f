/*
 * test_anon_tables.c - the PS3.15 tables of the de-identification engine
 * (anon/tables.h, private to anon/): rows checked against the standard as
 * the engine will ask for them, the tables as a whole (every row valid and
 * found by its own key), and the generator refusing tables it does not
 * understand, with "file:line:" (it is run on small broken inputs; its
 * path comes in $SIREN_GEN_ANON_TABLES, a scratch folder in
 * $SIREN_TEST_TMP).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "tables.h"

#define TAG(group, element) (((uint32_t)(group) << 16) | (uint32_t)(element))

/* The row counts of the editions in anon/tables/ (no duplicates to merge:
 * the generator refuses them). */
#define E11_ROWS 621        /* 2024b: 617 tags, 3 repeating groups, private */
#define E11_EXACT_ROWS 617
#define E11_MASKED_ROWS 3
#define SAFE_PRIVATE_ROWS 479 /* 2023b */
#define SR_ROWS 209           /* 2023b */

static void assert_row(const anon_row *row, const char *name, anon_code basic)
{
    assert_non_null(row);
    assert_string_equal(row->name, name);
    assert_int_equal(row->basic, basic);
}

/* The option cells of row: the listed (column, code) pairs, NONE elsewhere. */
static void assert_options(const uint8_t *option, size_t pairs, ...)
{
    uint8_t want[ANON_COLUMNS] = {0};
    va_list ap;
    va_start(ap, pairs);
    for (size_t i = 0; i < pairs; i++) {
        int column = va_arg(ap, int);
        want[column] = (uint8_t)va_arg(ap, int);
    }
    va_end(ap);
    for (int column = 0; column < ANON_COLUMNS; column++)
        assert_int_equal(option[column], want[column]);
}

/* ---- Table E.1-1 --------------------------------------------------------- */

static void test_patient_and_study(void **state)
{
    const anon_row *row;
    (void)state;
    row = anon_table_find(TAG(0x0010, 0x0010));
    assert_row(row, "Patient's Name", ANON_CODE_Z);
    assert_string_equal(row->tag_text, "(0010,0010)");
    assert_int_equal(row->tag, TAG(0x0010, 0x0010));
    assert_int_equal(row->mask, 0xFFFFFFFFu);
    assert_true(row->in_std_comp_iod);
    assert_options(row->option, 0);

    row = anon_table_find(TAG(0x0008, 0x0050));
    assert_row(row, "Accession Number", ANON_CODE_Z);
    assert_options(row->option, 0);

    row = anon_table_find(TAG(0x0010, 0x0040));
    assert_row(row, "Patient's Sex", ANON_CODE_Z);
    assert_options(row->option, 1, ANON_COL_PATIENT_CHARS, ANON_CODE_K);

    row = anon_table_find(TAG(0x0020, 0x000D));
    assert_row(row, "Study Instance UID", ANON_CODE_U);
    assert_options(row->option, 1, ANON_COL_UIDS, ANON_CODE_K);

    row = anon_table_find(TAG(0x0008, 0x1030));
    assert_row(row, "Study Description", ANON_CODE_X);
    assert_options(row->option, 1, ANON_COL_CLEAN_DESC, ANON_CODE_C);
}

static void test_dates_devices_institutions(void **state)
{
    const anon_row *row;
    (void)state;
    row = anon_table_find(TAG(0x0008, 0x0022));
    assert_row(row, "Acquisition Date", ANON_CODE_XZ);
    assert_options(row->option, 2, ANON_COL_LONG_FULL_DATES, ANON_CODE_K,
                   ANON_COL_LONG_MODIF_DATES, ANON_CODE_C);

    row = anon_table_find(TAG(0x0008, 0x0080));
    assert_row(row, "Institution Name", ANON_CODE_XZD);
    assert_options(row->option, 1, ANON_COL_INSTITUTION, ANON_CODE_K);

    row = anon_table_find(TAG(0x0018, 0x1000));
    assert_row(row, "Device Serial Number", ANON_CODE_XZD);
    assert_options(row->option, 1, ANON_COL_DEVICE, ANON_CODE_K);

    row = anon_table_find(TAG(0x0008, 0x1140));
    assert_row(row, "Referenced Image Sequence", ANON_CODE_XZU);
    assert_string_equal(anon_code_name(row->basic), "X/Z/U*");

    row = anon_table_find(TAG(0x0040, 0xA730));
    assert_row(row, "Content Sequence", ANON_CODE_D);
    assert_options(row->option, 1, ANON_COL_CLEAN_STRUCT, ANON_CODE_C);
}

/* The 2024b JSON writes "Icon Image Sequence\n\n(see Note 11)". */
static void test_note_reference(void **state)
{
    const anon_row *row = anon_table_find(TAG(0x0088, 0x0200));
    (void)state;
    assert_row(row, "Icon Image Sequence", ANON_CODE_X);
    assert_int_equal(row->note, 11);
    assert_int_equal(anon_table_find(TAG(0x0010, 0x0010))->note, 0);
}

static void test_repeating_groups(void **state)
{
    const anon_row *overlay = anon_table_find(TAG(0x6000, 0x3000));
    const anon_row *curve;
    (void)state;
    assert_row(overlay, "Overlay Data", ANON_CODE_X);
    assert_string_equal(overlay->tag_text, "(60XX,3000)");
    assert_int_equal(overlay->mask, 0xFF00FFFFu);
    assert_options(overlay->option, 1, ANON_COL_CLEAN_GRAPHICS, ANON_CODE_C);
    assert_ptr_equal(anon_table_find(TAG(0x6002, 0x3000)), overlay);
    assert_ptr_equal(anon_table_find(TAG(0x601E, 0x3000)), overlay);
    assert_row(anon_table_find(TAG(0x6002, 0x4000)), "Overlay Comments",
               ANON_CODE_X);
    /* (60xx,0010) Overlay Rows is not in the table */
    assert_null(anon_table_find(TAG(0x6000, 0x0010)));

    curve = anon_table_find(TAG(0x5004, 0x1234));
    assert_row(curve, "Curve Data", ANON_CODE_X);
    assert_string_equal(curve->tag_text, "(50XX,XXXX)");
    assert_int_equal(curve->mask, 0xFF000000u);
    assert_ptr_equal(anon_table_find(TAG(0x5000, 0x0000)), curve);
    assert_ptr_equal(anon_table_find(TAG(0x50FE, 0xFFFF)), curve);
}

static void test_unlisted_and_private(void **state)
{
    const anon_row *private_row = anon_table_private_row();
    (void)state;
    assert_null(anon_table_find(TAG(0x0028, 0x0010))); /* Rows */
    assert_null(anon_table_find(TAG(0x7FE0, 0x0010))); /* Pixel Data */
    assert_null(anon_table_find(TAG(0x0000, 0x0000)));
    assert_null(anon_table_find(0xFFFFFFFEu));
    /* private: never a standard row, not even a repeating group's */
    assert_null(anon_table_find(TAG(0x0019, 0x1010)));
    assert_null(anon_table_find(TAG(0x0019, 0x0010))); /* its creator */
    assert_null(anon_table_find(TAG(0x6001, 0x3000)));
    assert_null(anon_table_find(TAG(0x5001, 0x0000)));

    assert_row(private_row, "Private Attributes", ANON_CODE_X);
    assert_string_equal(private_row->tag_text,
                        "(GGGG,EEEE) WHERE GGGG IS ODD");
    assert_options(private_row->option, 1, ANON_COL_SAFE_PRIVATE,
                   ANON_CODE_C);
    assert_false(private_row->in_std_comp_iod);
    /* its tag and mask say "group odd" */
    assert_int_equal(TAG(0x0019, 0x1010) & private_row->mask,
                     private_row->tag & private_row->mask);
    assert_int_not_equal(TAG(0x0018, 0x1010) & private_row->mask,
                         private_row->tag & private_row->mask);
}

static bool is_basic(uint8_t code)
{
    return code != ANON_CODE_NONE && code != ANON_CODE_K &&
           code != ANON_CODE_C && code < ANON_CODES;
}

static bool is_option(uint8_t code)
{
    return code == ANON_CODE_NONE || code == ANON_CODE_K ||
           code == ANON_CODE_C;
}

/* Every row: a name, valid codes, and found by its own tag; the private
 * row is the one anon_table_private_row() gives. */
static void test_table_e11_whole(void **state)
{
    size_t count, exact = 0, masked = 0, private_rows = 0;
    const anon_row *rows = anon_table_rows(&count);
    (void)state;
    assert_int_equal(count, E11_ROWS);
    for (size_t i = 0; i < count; i++) {
        const anon_row *row = &rows[i];
        assert_true(row->name[0] != '\0');
        assert_true(row->tag_text[0] == '(');
        assert_true(is_basic(row->basic));
        assert_non_null(anon_code_name(row->basic));
        for (int column = 0; column < ANON_COLUMNS; column++)
            assert_true(is_option(row->option[column]));
        if (row == anon_table_private_row()) {
            private_rows++;
        } else {
            assert_ptr_equal(anon_table_find(row->tag), row);
            if (row->mask == 0xFFFFFFFFu)
                exact++;
            else
                masked++;
        }
    }
    /* the table's own order (by name, roughly alphabetical) */
    assert_string_equal(rows[0].name, "Accession Number");
    assert_string_equal(rows[count - 1].name, "X-Ray Source ID");
    assert_int_equal(exact, E11_EXACT_ROWS);
    assert_int_equal(masked, E11_MASKED_ROWS);
    assert_int_equal(private_rows, 1);
    assert_int_equal(anon_data_rows_exact_count, E11_EXACT_ROWS);
    for (size_t i = 1; i < anon_data_rows_exact_count; i++)
        assert_true(anon_data_rows[anon_data_rows_exact[i - 1]].tag <
                    anon_data_rows[anon_data_rows_exact[i]].tag);
}

static void test_code_and_column_names(void **state)
{
    (void)state;
    assert_string_equal(anon_code_name(ANON_CODE_NONE), "");
    assert_string_equal(anon_code_name(ANON_CODE_X), "X");
    assert_string_equal(anon_code_name(ANON_CODE_ZD), "Z/D");
    assert_string_equal(anon_code_name(ANON_CODE_XZD), "X/Z/D");
    assert_string_equal(anon_code_name(ANON_CODE_XZU), "X/Z/U*");
    assert_null(anon_code_name(ANON_CODES));
    assert_null(anon_code_name((anon_code)-1));
    for (int code = 0; code < ANON_CODES; code++)
        assert_non_null(anon_code_name((anon_code)code));
    assert_string_equal(anon_column_name(ANON_COL_SAFE_PRIVATE),
                        "Retain Safe Private Option");
    assert_string_equal(anon_column_name(ANON_COL_LONG_MODIF_DATES),
                        "Retain Longitudinal Temporal Information With "
                        "Modified Dates Option");
    assert_string_equal(anon_column_name(ANON_COL_CLEAN_GRAPHICS),
                        "Clean Graphics Option");
    assert_null(anon_column_name(ANON_COLUMNS));
    for (int column = 0; column < ANON_COLUMNS; column++)
        assert_non_null(anon_column_name((anon_column)column));
}

/* ---- Table E.3.10-1 ------------------------------------------------------ */

static void test_safe_private(void **state)
{
    const anon_safe_private *suv;
    const anon_safe_private *row;
    (void)state;
    suv = anon_safe_private_find(0x7053, 0x00, "Philips PET Private Group");
    assert_non_null(suv);
    assert_string_equal(suv->vr, "DS");
    assert_string_equal(suv->vr_alt, "");
    assert_string_equal(suv->vm, "1");
    assert_true(strncmp(suv->meaning, "SUV Factor", 10) == 0);
    /* a dataset's creator with an LO's padding, or more of it */
    assert_ptr_equal(anon_safe_private_find(0x7053, 0x00,
                                            "Philips PET Private Group "),
                     suv);
    assert_ptr_equal(anon_safe_private_find(0x7053, 0x00,
                                            "Philips PET Private Group   "),
                     suv);
    /* exact otherwise: case, leading space, another group or element */
    assert_null(anon_safe_private_find(0x7053, 0x00,
                                       "PHILIPS PET PRIVATE GROUP"));
    assert_null(anon_safe_private_find(0x7053, 0x00,
                                       " Philips PET Private Group"));
    assert_null(anon_safe_private_find(0x7053, 0x00, "Philips PET Private"));
    assert_null(anon_safe_private_find(0x7055, 0x00,
                                       "Philips PET Private Group"));
    assert_null(anon_safe_private_find(0x7053, 0x01,
                                       "Philips PET Private Group"));
    assert_null(anon_safe_private_find(0x7053, 0x00, ""));
    assert_null(anon_safe_private_find(0x7053, 0x00, NULL));

    row = anon_safe_private_find(0x00E1, 0x21, "ELSCINT1");
    assert_non_null(row);
    assert_string_equal(row->meaning, "DLP");
    /* quoted in the CSV for its comma */
    row = anon_safe_private_find(0x7E01, 0x12, "HOLOGIC, Inc.");
    assert_non_null(row);
    assert_string_equal(row->vr, "OB");
    /* "OW/OB" */
    row = anon_safe_private_find(0x2001, 0x7D, "Philips Imaging DD 001");
    assert_non_null(row);
    assert_string_equal(row->vr, "OW");
    assert_string_equal(row->vr_alt, "OB");
    /* lower-case hex in the CSV: (2001,xx0a) */
    row = anon_safe_private_find(0x2001, 0x0A, "Philips Imaging DD 001");
    assert_non_null(row);
    assert_string_equal(row->meaning, "Image Plane Number");
    /* no VR in the table */
    row = anon_safe_private_find(0x0119, 0x11, "SIEMENS Ultrasound SC2000");
    assert_non_null(row);
    assert_string_equal(row->vr, "");
    /* "" in a quoted field is one quote */
    row = anon_safe_private_find(0x0043, 0x27, "GEMS_PARM_01");
    assert_non_null(row);
    assert_string_equal(row->meaning, "Scan Pitch Ratio in the form "
                                      "\"n.nnn:1\"");
}

static void test_safe_private_whole(void **state)
{
    size_t count;
    const anon_safe_private *rows = anon_safe_private_rows(&count);
    (void)state;
    assert_int_equal(count, SAFE_PRIVATE_ROWS);
    for (size_t i = 0; i < count; i++) {
        const anon_safe_private *row = &rows[i];
        size_t len = strlen(row->creator);
        assert_true(row->group & 1u);
        assert_true(len > 0 && row->creator[len - 1] != ' ');
        assert_ptr_equal(anon_safe_private_find(row->group, row->element,
                                                row->creator),
                         row);
        if (i > 0) {
            const anon_safe_private *prev = &rows[i - 1];
            assert_true(prev->group < row->group ||
                        (prev->group == row->group &&
                         (prev->element < row->element ||
                          (prev->element == row->element &&
                           strcmp(prev->creator, row->creator) < 0))));
        }
    }
}

/* ---- Table E.3.4-1 ------------------------------------------------------- */

static void test_sr(void **state)
{
    const anon_sr_row *row;
    size_t count;
    (void)state;
    row = anon_sr_find("121022", "DCM", "TEXT");
    assert_non_null(row);
    assert_string_equal(row->meaning, "Accession Number");
    assert_int_equal(row->basic, ANON_CODE_X);
    assert_null(row->scheme_version);
    assert_false(row->retired);
    assert_true(row->in_std_template);
    assert_options(row->option, 0);

    row = anon_sr_find("126201", "DCM", "DATE");
    assert_non_null(row);
    assert_string_equal(row->meaning, "Acquisition Date");
    assert_options(row->option, 2, ANON_COL_LONG_FULL_DATES, ANON_CODE_K,
                   ANON_COL_LONG_MODIF_DATES, ANON_CODE_C);

    row = anon_sr_find("113795", "DCM", "IMAGE");
    assert_non_null(row);
    assert_int_equal(row->basic, ANON_CODE_D);
    assert_options(row->option, 1, ANON_COL_UIDS, ANON_CODE_K);

    /* not listed, or another value type, scheme or case */
    assert_null(anon_sr_find("121022", "DCM", "CODE"));
    assert_null(anon_sr_find("121022", "SCT", "TEXT"));
    assert_null(anon_sr_find("121022", "dcm", "TEXT"));
    assert_null(anon_sr_find("999999", "DCM", "TEXT"));
    assert_null(anon_sr_find(NULL, "DCM", "TEXT"));
    assert_null(anon_sr_find("121022", NULL, "TEXT"));
    assert_null(anon_sr_find("121022", "DCM", NULL));

    /* "NCDR [2.0b]": designator NCDR, version 2.0b */
    row = anon_sr_find("15", "NCDR", "DATETIME");
    assert_non_null(row);
    assert_string_equal(row->meaning, "Admission DateTime");
    assert_string_equal(row->scheme_version, "2.0b");
    assert_null(anon_sr_find("15", "NCDR [2.0b]", "DATETIME"));

    /* one concept, two value types, two actions */
    row = anon_sr_find_concept("121112", "DCM", &count);
    assert_non_null(row);
    assert_int_equal(count, 2);
    assert_string_equal(row[0].meaning, "Source of Measurement");
    assert_string_equal(row[0].value_type, "IMAGE");
    assert_int_equal(row[0].basic, ANON_CODE_D);
    assert_string_equal(row[1].value_type, "WAVEFORM");
    assert_int_equal(row[1].basic, ANON_CODE_X);
    assert_ptr_equal(anon_sr_find("121112", "DCM", "WAVEFORM"), &row[1]);

    row = anon_sr_find_concept("128425", "DCM", &count);
    assert_non_null(row);
    assert_int_equal(count, 3);
    row = anon_sr_find_concept("121022", "DCM", &count);
    assert_non_null(row);
    assert_int_equal(count, 1);
    assert_null(anon_sr_find_concept("999999", "DCM", &count));
    assert_int_equal(count, 0);
    assert_null(anon_sr_find_concept(NULL, "DCM", &count));
    assert_int_equal(count, 0);
}

static void test_sr_whole(void **state)
{
    size_t count;
    const anon_sr_row *rows = anon_sr_rows(&count);
    (void)state;
    assert_int_equal(count, SR_ROWS);
    for (size_t i = 0; i < count; i++) {
        const anon_sr_row *row = &rows[i];
        size_t concept_count;
        const anon_sr_row *concept;
        assert_true(row->meaning[0] && row->code_value[0] &&
                    row->scheme[0] && row->value_type[0]);
        assert_true(is_basic(row->basic));
        for (int column = 0; column < ANON_COLUMNS; column++)
            assert_true(is_option(row->option[column]));
        /* columns Table E.3.4-1 does not have */
        assert_int_equal(row->option[ANON_COL_SAFE_PRIVATE], ANON_CODE_NONE);
        assert_int_equal(row->option[ANON_COL_CLEAN_STRUCT], ANON_CODE_NONE);
        assert_int_equal(row->option[ANON_COL_CLEAN_GRAPHICS],
                         ANON_CODE_NONE);
        assert_ptr_equal(anon_sr_find(row->code_value, row->scheme,
                                      row->value_type),
                         row);
        concept = anon_sr_find_concept(row->code_value, row->scheme,
                                       &concept_count);
        assert_true(concept <= row && row < concept + concept_count);
    }
}

/* ---- the generator refuses what it does not understand ------------------- */

#define JSON_PRIVATE_ROW                                                     \
    "{\"name\":\"Private Attributes\",\"tag\":\"(GGGG,EEEE) WHERE GGGG IS " \
    "ODD\",\"stdCompIOD\":\"N\",\"basicProfile\":\"X\",\"rtnSafePrivOpt\":" \
    "\"C\",\"id\":\"ggggeeee-where-gggg-is-odd\"}"
#define JSON_NAME_ROW                                                        \
    "{\"name\":\"Patient's Name\",\"tag\":\"(0010,0010)\",\"stdCompIOD\":"   \
    "\"Y\",\"basicProfile\":\"Z\",\"id\":\"00100010\"}"
#define JSON_GOOD "[\n" JSON_PRIVATE_ROW ",\n" JSON_NAME_ROW "\n]\n"

#define SAFE_HEADER "Data Element,Private Creator,VR,VM,Meaning\r\n"
#define SAFE_GOOD SAFE_HEADER \
    "\"(7053,xx00)\",Philips PET Private Group,DS,1,SUV Factor\r\n"

#define SR_HEADER                                                           \
    "Code Meaning,Code Value,Coding Scheme Designator,Value Type,Retd. "   \
    "(from ),In Std. Tpl. (from ),Basic Prof.,Rtn. UIDs Opt.,Rtn. Dev. "    \
    "Id. Opt.,Rtn. Inst. Id. Opt.,Rtn. Pat. Chars. Opt.,Rtn. Long. Full "   \
    "Dates Opt.,Rtn. Long. Modif. Dates Opt.,Clean Desc. Opt.\r\n"
#define SR_GOOD SR_HEADER "Accession Number,121022,DCM,TEXT,N,Y,X,,,,,,,\r\n"

/* One run of the generator: inputs (NULL: the good one) and what its
 * stderr must hold; NULL expect means it must succeed, and then its
 * output must hold output (if not NULL). */
struct gen_case {
    const char *what;
    const char *json, *safe, *sr;
    const char *expect;
    const char *output;
};

static const struct gen_case gen_cases[] = {
    {.what = "good input",
     .output = "{0x00100010u, 0xFFFFFFFFu, \"(0010,0010)\", \"Patient's "
               "Name\", 0, true, ANON_CODE_Z, {0}},"},
    {.what = "creator with padding, LF line ends",
     .safe = SAFE_HEADER
     "\"(7053,xx00)\",Philips PET Private Group  ,DS,1,x\n",
     .output = "{0x7053u, 0x00u, \"Philips PET Private Group\", \"DS\","},
    /* Table E.1-1 */
    {.what = "unknown basic code",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Patient's Name\","
             "\"tag\":\"(0010,0010)\",\"stdCompIOD\":\"Y\",\"basicProfile\":"
             "\"Q\",\"id\":\"00100010\"}\n]\n",
     .expect = "e11.json:3: (0010,0010) Patient's Name: basicProfile \"Q\" "
               "is not"},
    {.what = "K in the basic column",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Patient's Name\","
             "\"tag\":\"(0010,0010)\",\"stdCompIOD\":\"Y\",\"basicProfile\":"
             "\"K\",\"id\":\"00100010\"}\n]\n",
     .expect = "e11.json:3: (0010,0010) Patient's Name: basicProfile \"K\""},
    {.what = "unknown option code",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Patient's Name\","
             "\"tag\":\"(0010,0010)\",\"stdCompIOD\":\"Y\",\"basicProfile\":"
             "\"Z\",\"rtnUIDsOpt\":\"X\",\"id\":\"00100010\"}\n]\n",
     .expect = "e11.json:3: (0010,0010) Patient's Name: rtnUIDsOpt \"X\" is "
               "not K or C"},
    {.what = "unknown key",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Patient's Name\","
             "\"tag\":\"(0010,0010)\",\"stdCompIOD\":\"Y\",\"basicProfile\":"
             "\"Z\",\"retired\":\"N\",\"id\":\"00100010\"}\n]\n",
     .expect = "e11.json:3: unknown key \"retired\""},
    {.what = "missing key",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Patient's Name\","
             "\"tag\":\"(0010,0010)\",\"basicProfile\":\"Z\",\"id\":"
             "\"00100010\"}\n]\n",
     .expect = "e11.json:3: no \"stdCompIOD\""},
    {.what = "value not a string",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Patient's Name\","
             "\"tag\":\"(0010,0010)\",\"stdCompIOD\":1}\n]\n",
     .expect = "e11.json:3: the value of \"stdCompIOD\" is not a string"},
    {.what = "bad tag text",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Patient's Name\","
             "\"tag\":\"(0010,001)\",\"stdCompIOD\":\"Y\",\"basicProfile\":"
             "\"Z\",\"id\":\"0010001\"}\n]\n",
     .expect = "e11.json:3: (0010,001) Patient's Name: tag \"(0010,001)\" "
               "is neither"},
    {.what = "repeating group of groups",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Everything\",\"tag\":"
             "\"(XXXX,0010)\",\"stdCompIOD\":\"Y\",\"basicProfile\":\"Z\","
             "\"id\":\"xxxx0010\"}\n]\n",
     .expect = "e11.json:3: (XXXX,0010) Everything: tag"},
    {.what = "row in an odd group",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Odd\",\"tag\":"
             "\"(0019,0010)\",\"stdCompIOD\":\"Y\",\"basicProfile\":\"Z\","
             "\"id\":\"00190010\"}\n]\n",
     .expect = "e11.json:3: (0019,0010) Odd: a row for an odd"},
    {.what = "id not the tag",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Patient's Name\","
             "\"tag\":\"(0010,0010)\",\"stdCompIOD\":\"Y\",\"basicProfile\":"
             "\"Z\",\"id\":\"00100020\"}\n]\n",
     .expect = "e11.json:3: (0010,0010) Patient's Name: id \"00100020\""},
    {.what = "control character in a name",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Patient's\\nName\","
             "\"tag\":\"(0010,0010)\",\"stdCompIOD\":\"Y\",\"basicProfile\":"
             "\"Z\",\"id\":\"00100010\"}\n]\n",
     .expect = "e11.json:3: (0010,0010) Patient's?Name: name: byte 0x0A"},
    {.what = "repeated tag",
     .json = "[\n" JSON_PRIVATE_ROW ",\n" JSON_NAME_ROW ",\n" JSON_NAME_ROW
             "\n]\n",
     .expect = "e11.json:4: (0010,0010) Patient's Name repeats the tag of"},
    {.what = "tag inside a repeating group",
     .json = "[\n" JSON_PRIVATE_ROW ",\n{\"name\":\"Overlay Data\",\"tag\":"
             "\"(60XX,3000)\",\"stdCompIOD\":\"Y\",\"basicProfile\":\"X\","
             "\"id\":\"60xx3000\"},\n{\"name\":\"Overlay Data 0\",\"tag\":"
             "\"(6000,3000)\",\"stdCompIOD\":\"Y\",\"basicProfile\":\"X\","
             "\"id\":\"60003000\"}\n]\n",
     .expect = "e11.json:4: (6000,3000) Overlay Data 0 lies inside"},
    {.what = "no private row",
     .json = "[\n" JSON_NAME_ROW "\n]\n",
     .expect = "e11.json: 0 rows \"(GGGG,EEEE) WHERE GGGG IS ODD\", "
               "expected one"},
    {.what = "JSON syntax",
     .json = "[\n" JSON_PRIVATE_ROW "\n" JSON_NAME_ROW "\n]\n",
     .expect = "e11.json:3: expected ',' or ']'"},
    /* Table E.3.10-1 */
    {.what = "not an any-block element",
     .safe = SAFE_HEADER
     "\"(7053,1000)\",Philips PET Private Group,DS,1,x\r\n",
     .expect = "safe.csv:2: (7053,1000) Philips PET Private Group: Data "
               "Element \"(7053,1000)\" is not (gggg,xxee)"},
    {.what = "standard group",
     .safe = SAFE_HEADER
     "\"(7052,xx00)\",Philips PET Private Group,DS,1,x\r\n",
     .expect = "group 7052 is not private"},
    {.what = "unknown VR",
     .safe = SAFE_HEADER
     "\"(7053,xx00)\",Philips PET Private Group,XY,1,x\r\n",
     .expect = "safe.csv:2: (7053,xx00) Philips PET Private Group: VR "
               "\"XY\""},
    {.what = "repeated safe row, padded",
     .safe = SAFE_GOOD
     "\"(7053,XX00)\",Philips PET Private Group ,DS,1,x\r\n",
     .expect = "safe.csv:3: (7053,xx00) \"Philips PET Private Group\" is "
               "already at line 2"},
    {.what = "quote not closed",
     .safe = SAFE_HEADER
     "\"(7053,xx00)\",\"Philips PET Private Group,DS,1,x\r\n",
     .expect = "safe.csv:2: quoted field not closed"},
    {.what = "wrong field count",
     .safe = SAFE_HEADER "\"(7053,xx00)\",Philips PET Private Group,DS,1\r\n",
     .expect = "safe.csv:2: 4 fields, expected 5"},
    {.what = "another header",
     .safe = "Tag,Private Creator,VR,VM,Meaning\r\n",
     .expect = "safe.csv:1: header: column 1 should be \"Data Element\""},
    /* Table E.3.4-1 */
    {.what = "scheme with a version but no brackets",
     .sr = SR_HEADER
     "Admission DateTime,15,NCDR 2.0b,DATETIME,N,Y,X,,,,,K,C,\r\n",
     .expect = "sr.csv:2: Admission DateTime DATETIME: Coding Scheme "
               "Designator"},
    {.what = "unknown value type",
     .sr = SR_HEADER "Accession Number,121022,DCM,STRING,N,Y,X,,,,,,,\r\n",
     .expect = "sr.csv:2: Accession Number STRING: Value Type \"STRING\""},
    {.what = "unknown option in SR",
     .sr = SR_HEADER "Accession Number,121022,DCM,TEXT,N,Y,X,D,,,,,,\r\n",
     .expect = "sr.csv:2: Accession Number TEXT: Rtn. UIDs Opt. \"D\" is not "
               "K or C"},
    {.what = "repeated SR row",
     .sr = SR_GOOD "Accession Number,121022,DCM,TEXT,N,Y,D,,,,,,,\r\n",
     .expect = "sr.csv:3: (121022, DCM) Accession Number as TEXT is already "
               "at line 2"},
};

/* A scratch folder of our own under $SIREN_TEST_TMP. */
static void make_work_dir(char *dir, size_t size)
{
    const char *tmp = getenv("SIREN_TEST_TMP");
    int len = snprintf(dir, size, "%s/anon_tables.%ld", tmp ? tmp : "/tmp",
                       (long)getpid());
    assert_true(len > 0 && (size_t)len < size);
    assert_true(mkdir(dir, 0700) == 0 || errno == EEXIST);
}

static void join_path(char *path, size_t size, const char *dir,
                      const char *name)
{
    int len = snprintf(path, size, "%s/%s", dir, name);
    assert_true(len > 0 && (size_t)len < size);
}

static void remove_work_dir(const char *dir)
{
    const char *names[] = {"e11.json", "safe.csv", "sr.csv", "out.c",
                           "stderr.txt"};
    char path[4096];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        join_path(path, sizeof path, dir, names[i]);
        remove(path);
    }
    assert_int_equal(rmdir(dir), 0);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    FILE *out;
    join_path(path, sizeof path, dir, name);
    out = fopen(path, "w");
    assert_non_null(out);
    assert_true(fputs(text, out) >= 0);
    assert_int_equal(fclose(out), 0);
}

/* Runs the generator in dir on e11.json, safe.csv and sr.csv; returns its
 * exit status (-1 if it did not exit) and its stderr in err. */
static int run_generator(const char *generator, const char *dir, char *err,
                         size_t err_size)
{
    char paths[5][4096];
    const char *names[5] = {"e11.json", "safe.csv", "sr.csv", "out.c",
                            "stderr.txt"};
    int status;
    size_t len;
    FILE *in;
    pid_t pid;
    for (int i = 0; i < 5; i++)
        join_path(paths[i], sizeof paths[i], dir, names[i]);
    remove(paths[3]);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(paths[4], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(126);
        execl(generator, generator, paths[0], paths[1], paths[2], paths[3],
              (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    in = fopen(paths[4], "r");
    assert_non_null(in);
    len = fread(err, 1, err_size - 1, in);
    err[len] = '\0';
    fclose(in);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void assert_output_holds(const char *dir, const char *what,
                                const char *wanted)
{
    static char text[65536];
    char path[4096];
    size_t len;
    FILE *in;
    join_path(path, sizeof path, dir, "out.c");
    in = fopen(path, "r");
    assert_non_null(in);
    len = fread(text, 1, sizeof text - 1, in);
    text[len] = '\0';
    fclose(in);
    if (!strstr(text, wanted))
        fail_msg("%s: the output lacks \"%s\"", what, wanted);
}

static void check_case(const char *generator, const char *dir,
                       const struct gen_case *c)
{
    char err[8192];
    int status;
    write_text(dir, "e11.json", c->json ? c->json : JSON_GOOD);
    write_text(dir, "safe.csv", c->safe ? c->safe : SAFE_GOOD);
    write_text(dir, "sr.csv", c->sr ? c->sr : SR_GOOD);
    status = run_generator(generator, dir, err, sizeof err);
    if (!c->expect) {
        if (status != 0)
            fail_msg("%s: exit %d, stderr: %s", c->what, status, err);
        if (c->output)
            assert_output_holds(dir, c->what, c->output);
        return;
    }
    if (status != 1 || !strstr(err, c->expect))
        fail_msg("%s: exit %d (want 1), stderr \"%s\" lacks \"%s\"", c->what,
                 status, err, c->expect);
}

static void test_generator_refuses(void **state)
{
    const char *generator = getenv("SIREN_GEN_ANON_TABLES");
    char dir[1024], out[4096];
    struct stat st;
    (void)state;
    if (!generator)
        skip();
    make_work_dir(dir, sizeof dir);
    for (size_t i = 0; i < sizeof gen_cases / sizeof gen_cases[0]; i++)
        check_case(generator, dir, &gen_cases[i]);
    /* a refused table leaves no output, not even a partial one */
    join_path(out, sizeof out, dir, "out.c");
    assert_int_not_equal(stat(out, &st), 0);
    join_path(out, sizeof out, dir, "out.c.tmp");
    assert_int_not_equal(stat(out, &st), 0);
    remove_work_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patient_and_study),
        cmocka_unit_test(test_dates_devices_institutions),
        cmocka_unit_test(test_note_reference),
        cmocka_unit_test(test_repeating_groups),
        cmocka_unit_test(test_unlisted_and_private),
        cmocka_unit_test(test_table_e11_whole),
        cmocka_unit_test(test_code_and_column_names),
        cmocka_unit_test(test_safe_private),
        cmocka_unit_test(test_safe_private_whole),
        cmocka_unit_test(test_sr),
        cmocka_unit_test(test_sr_whole),
        cmocka_unit_test(test_generator_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
