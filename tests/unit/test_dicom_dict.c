/*
 * test_dicom_dict.c - the data dictionary: lookups by tag, by keyword and
 * by private creator, as a reader or a policy would use them, and the
 * generated tables as a whole (dict_data.h, private to dicom/, is included
 * for the latter).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dicom.h"
#include "dict_data.h"

/* Asserts the fields of a standard entry. */
static void assert_standard(const dcm_dict_entry *e, uint32_t tag,
                            const char *keyword, dcm_vr vr, dcm_vr vr_alt,
                            const char *vm, bool retired)
{
    assert_non_null(e);
    assert_int_equal(e->tag, tag);
    assert_string_equal(e->keyword, keyword);
    assert_int_equal(e->vr, vr);
    assert_int_equal(e->vr_alt, vr_alt);
    assert_string_equal(e->vm, vm);
    assert_null(e->creator);
    assert_int_equal(e->retired, retired);
}

static void test_patient_name_both_ways(void **state)
{
    const dcm_dict_entry *by_tag = dcm_dict_find(DCM_TAG(0x0010, 0x0010));
    (void)state;
    assert_standard(by_tag, DCM_TAG(0x0010, 0x0010), "PatientName",
                    DCM_VR_PN, DCM_VR_NONE, "1", false);
    assert_ptr_equal(dcm_dict_find_keyword("PatientName"), by_tag);
}

static void test_pseudo_vrs(void **state)
{
    (void)state;
    /* px: OW, or OB when encapsulated or 8-bit */
    assert_standard(dcm_dict_find(DCM_TAG_PIXEL_DATA), DCM_TAG_PIXEL_DATA,
                    "PixelData", DCM_VR_OW, DCM_VR_OB, "1", false);
    /* xs: US or SS by Pixel Representation */
    assert_standard(dcm_dict_find(DCM_TAG(0x0028, 0x0106)),
                    DCM_TAG(0x0028, 0x0106), "SmallestImagePixelValue",
                    DCM_VR_US, DCM_VR_SS, "1", false);
    /* lt: LUT Data */
    assert_standard(dcm_dict_find(DCM_TAG(0x0028, 0x3006)),
                    DCM_TAG(0x0028, 0x3006), "LUTData", DCM_VR_OW,
                    DCM_VR_US, "1-n", false);
    /* up: an offset in a DICOMDIR */
    assert_standard(dcm_dict_find(DCM_TAG(0x0004, 0x1400)),
                    DCM_TAG(0x0004, 0x1400), "OffsetOfTheNextDirectoryRecord",
                    DCM_VR_UL, DCM_VR_NONE, "1", false);
    /* na: items carry no VR */
    assert_standard(dcm_dict_find(DCM_TAG_ITEM), DCM_TAG_ITEM, "Item",
                    DCM_VR_NONE, DCM_VR_NONE, "1", false);
}

static void test_repeating_groups(void **state)
{
    const dcm_dict_entry *overlay_data;
    (void)state;
    overlay_data = dcm_dict_find(DCM_TAG(0x6002, 0x3000));
    assert_standard(overlay_data, DCM_TAG(0x6000, 0x3000), "OverlayData",
                    DCM_VR_OW, DCM_VR_OB, "1", false);
    assert_ptr_equal(dcm_dict_find(DCM_TAG(0x60FE, 0x3000)), overlay_data);
    assert_ptr_equal(dcm_dict_find_keyword("OverlayData"), overlay_data);
    assert_standard(dcm_dict_find(DCM_TAG(0x6000, 0x0010)),
                    DCM_TAG(0x6000, 0x0010), "OverlayRows", DCM_VR_US,
                    DCM_VR_NONE, "1", false);
    assert_standard(dcm_dict_find(DCM_TAG(0x50F0, 0x0005)),
                    DCM_TAG(0x5000, 0x0005), "CurveDimensions", DCM_VR_US,
                    DCM_VR_NONE, "1", true);
    /* an exact entry wins over the range (7Fxx,0010) that covers it */
    assert_string_equal(dcm_dict_find(DCM_TAG(0x7FE0, 0x0010))->keyword,
                        "PixelData");
    assert_string_equal(dcm_dict_find(DCM_TAG(0x7F02, 0x0010))->keyword,
                        "VariablePixelData");
}

static void test_repeating_groups_are_even_only(void **state)
{
    (void)state;
    /* odd groups are private: no overlay there; (6001,0010) is a private
     * creator, not OverlayRows */
    assert_null(dcm_dict_find(DCM_TAG(0x6001, 0x3000)));
    assert_string_equal(dcm_dict_find(DCM_TAG(0x6001, 0x0010))->keyword,
                        "PrivateCreator");
    assert_null(dcm_dict_find(DCM_TAG(0x6100, 0x3000)));
}

static void test_element_range(void **state)
{
    const dcm_dict_entry *source_image_ids;
    (void)state;
    source_image_ids = dcm_dict_find(DCM_TAG(0x0020, 0x3105));
    assert_standard(source_image_ids, DCM_TAG(0x0020, 0x3100),
                    "SourceImageIDs", DCM_VR_CS, DCM_VR_NONE, "1-n", true);
    assert_ptr_equal(dcm_dict_find(DCM_TAG(0x0020, 0x3100)),
                     source_image_ids);
    assert_ptr_equal(dcm_dict_find(DCM_TAG(0x0020, 0x31FF)),
                     source_image_ids);
    assert_null(dcm_dict_find(DCM_TAG(0x0020, 0x3200)));
}

static void test_private_creator_and_group_length(void **state)
{
    (void)state;
    assert_standard(dcm_dict_find(DCM_TAG(0x0019, 0x0010)),
                    DCM_TAG(0x0009, 0x0010), "PrivateCreator", DCM_VR_LO,
                    DCM_VR_NONE, "1", false);
    assert_string_equal(dcm_dict_find(DCM_TAG(0x0019, 0x00FF))->keyword,
                        "PrivateCreator");
    assert_string_equal(dcm_dict_find(DCM_TAG(0x0019, 0x0000))->keyword,
                        "PrivateGroupLength");
    assert_string_equal(dcm_dict_find(DCM_TAG(0x0018, 0x0000))->keyword,
                        "GenericGroupLength");
    /* an exact entry wins over the catch-all */
    assert_string_equal(dcm_dict_find(DCM_TAG(0x0002, 0x0000))->keyword,
                        "FileMetaInformationGroupLength");
}

static void test_private_data_elements_are_not_standard(void **state)
{
    (void)state;
    assert_null(dcm_dict_find(DCM_TAG(0x0019, 0x1010)));
    assert_null(dcm_dict_find(DCM_TAG(0x0019, 0x1000)));
    assert_null(dcm_dict_find(DCM_TAG(0x0009, 0xFFFF)));
    assert_null(dcm_dict_find(DCM_TAG(0x7FE1, 0x1010)));
    /* (gggg,0001-000F) are reserved, not creators */
    assert_null(dcm_dict_find(DCM_TAG(0x0019, 0x0001)));
}

static void test_private_any_block(void **state)
{
    const dcm_dict_entry *e;
    (void)state;
    /* private.dic has (0019,"GEMS_ACQU_01",11) but no ...,10) */
    e = dcm_dict_find_private("GEMS_ACQU_01", DCM_TAG(0x0019, 0x1011));
    assert_non_null(e);
    assert_int_equal(e->tag, DCM_TAG(0x0019, 0x0011));
    assert_string_equal(e->keyword, "SeriesContrast");
    assert_string_equal(e->creator, "GEMS_ACQU_01");
    assert_int_equal(e->vr, DCM_VR_SS);
    assert_false(e->retired);
    /* the block the creator was given does not matter */
    assert_ptr_equal(dcm_dict_find_private("GEMS_ACQU_01",
                                           DCM_TAG(0x0019, 0x2011)), e);
    assert_ptr_equal(dcm_dict_find_private("GEMS_ACQU_01",
                                           DCM_TAG(0x0019, 0xFF11)), e);
    /* an LO value's padding */
    assert_ptr_equal(dcm_dict_find_private("GEMS_ACQU_01 ",
                                           DCM_TAG(0x0019, 0x1011)), e);
    assert_ptr_equal(dcm_dict_find_private("GEMS_ACQU_01   ",
                                           DCM_TAG(0x0019, 0x1011)), e);
}

static void test_private_mismatches(void **state)
{
    (void)state;
    assert_null(dcm_dict_find_private("GEMS_ACQU_01",
                                      DCM_TAG(0x0019, 0x1010)));
    assert_null(dcm_dict_find_private("gems_acqu_01",
                                      DCM_TAG(0x0019, 0x1011)));
    assert_null(dcm_dict_find_private("GEMS_ACQU_0",
                                      DCM_TAG(0x0019, 0x1011)));
    assert_null(dcm_dict_find_private("GEMS_ACQU_011",
                                      DCM_TAG(0x0019, 0x1011)));
    assert_null(dcm_dict_find_private(" GEMS_ACQU_01",
                                      DCM_TAG(0x0019, 0x1011)));
    assert_null(dcm_dict_find_private("GEMS_ACQU_01",
                                      DCM_TAG(0x0099, 0x1011)));
    /* not a private data element: even group, creator or reserved slot */
    assert_null(dcm_dict_find_private("GEMS_ACQU_01",
                                      DCM_TAG(0x0018, 0x1011)));
    assert_null(dcm_dict_find_private("GEMS_ACQU_01",
                                      DCM_TAG(0x0019, 0x0011)));
    assert_null(dcm_dict_find_private(NULL, DCM_TAG(0x0019, 0x1011)));
    assert_null(dcm_dict_find_private("", DCM_TAG(0x0019, 0x1011)));
}

static void test_private_fixed_block(void **state)
{
    (void)state;
    /* (0019,"PHILIPS MR/PART",1000) and ...,1100) share a low byte: a
     * four-digit element in private.dic holds for that block only */
    assert_string_equal(dcm_dict_find_private("PHILIPS MR/PART",
                        DCM_TAG(0x0019, 0x1000))->keyword, "FieldOfView");
    assert_string_equal(dcm_dict_find_private("PHILIPS MR/PART",
                        DCM_TAG(0x0019, 0x1100))->keyword, "NumberOfStacks");
    assert_int_equal(dcm_dict_find_private("PHILIPS MR/PART",
                     DCM_TAG(0x0019, 0x1100))->tag, DCM_TAG(0x0019, 0x1100));
    assert_null(dcm_dict_find_private("PHILIPS MR/PART",
                                      DCM_TAG(0x0019, 0x2000)));
}

static void test_private_odd_details(void **state)
{
    const dcm_dict_entry *e;
    (void)state;
    /* a private group range, (6001-o-60ff,"PAPYRUS 3.0",10) */
    e = dcm_dict_find_private("PAPYRUS 3.0", DCM_TAG(0x6001, 0x1010));
    assert_non_null(e);
    assert_string_equal(e->keyword, "OverlayRows");
    assert_ptr_equal(dcm_dict_find_private("PAPYRUS 3.0",
                                           DCM_TAG(0x60FF, 0x2010)), e);
    /* ... and the same creator's entry for one group, also byte 10 */
    assert_string_equal(dcm_dict_find_private("PAPYRUS 3.0",
                        DCM_TAG(0x0041, 0x1010))->keyword, "PointerSequence");
    /* a line without a Version field and lower case hex */
    e = dcm_dict_find_private("PAPYRUS", DCM_TAG(0x0041, 0x10B3));
    assert_non_null(e);
    assert_string_equal(e->keyword, "InternalOffsetToImage");
    assert_string_equal(e->vm, "1-n");
    /* a name with a blank: DCMTK drops it */
    assert_string_equal(dcm_dict_find_private("GEMS_ACQU_01",
                        DCM_TAG(0x0019, 0x1014))->keyword,
                        "EndNumberForBaseline");
    /* a creator with two inner spaces */
    assert_string_equal(dcm_dict_find_private("SIEMENS MR VA0  GEN",
                        DCM_TAG(0x0021, 0x104A))->keyword, "MIPStartSlice");
    /* a pseudo-VR in a private entry */
    e = dcm_dict_find_private("SPI-P Release 1", DCM_TAG(0x7FE1, 0x1010));
    assert_non_null(e);
    assert_int_equal(e->vr, DCM_VR_OW);
    assert_int_equal(e->vr_alt, DCM_VR_OB);
}

static void test_unknown(void **state)
{
    (void)state;
    assert_null(dcm_dict_find(DCM_TAG(0x0010, 0x0011)));
    assert_null(dcm_dict_find(DCM_TAG(0xFFFE, 0xE001)));
    assert_null(dcm_dict_find(DCM_TAG(0x0008, 0x0003)));
    assert_null(dcm_dict_find_keyword("NoSuchKeyword"));
    assert_null(dcm_dict_find_keyword(""));
    assert_null(dcm_dict_find_keyword(NULL));
    assert_null(dcm_dict_find_keyword("patientname"));
    assert_null(dcm_dict_find_keyword("PatientName "));
    /* keywords of PS3.6, not DCMTK's retired spelling */
    assert_null(dcm_dict_find_keyword("RETIRED_CurveDimensions"));
    assert_int_equal(dcm_dict_find_keyword("CurveDimensions")->tag,
                     DCM_TAG(0x5000, 0x0005));
    /* private names are not standard keywords */
    assert_null(dcm_dict_find_keyword("SeriesContrast"));
}

static void test_standard_table(void **state)
{
    size_t retired = 0;
    (void)state;
    assert_true(dcm_dict_standard_count > 4000);
    for (size_t i = 0; i < dcm_dict_standard_count; i++) {
        const dcm_dict_entry *e = &dcm_dict_standard[i];
        if (i > 0)
            assert_true(dcm_dict_standard[i - 1].tag < e->tag);
        assert_ptr_equal(dcm_dict_find(e->tag), e);
        assert_null(e->creator);
        assert_true(e->keyword[0] != '\0' && e->vm[0] != '\0');
        assert_true(e->vr < DCM_VR_COUNT && e->vr_alt < DCM_VR_COUNT);
        assert_null(strstr(e->keyword, "RETIRED"));
        retired += e->retired;
    }
    assert_true(retired > 100);
}

static void test_keyword_index_round_trips(void **state)
{
    (void)state;
    assert_int_equal(dcm_dict_keyword_count,
                     dcm_dict_standard_count + dcm_dict_range_count);
    for (size_t i = 0; i < dcm_dict_keyword_count; i++) {
        const dcm_dict_entry *e = dcm_dict_keywords[i];
        if (i > 0)
            assert_true(strcmp(dcm_dict_keywords[i - 1]->keyword,
                               e->keyword) < 0);
        assert_int_equal(dcm_dict_find_keyword(e->keyword)->tag, e->tag);
    }
    for (size_t i = 0; i < dcm_dict_standard_count; i++) {
        const dcm_dict_entry *e = &dcm_dict_standard[i];
        assert_ptr_equal(dcm_dict_find_keyword(e->keyword), e);
    }
    for (size_t i = 0; i < dcm_dict_range_count; i++) {
        const dcm_dict_entry *e = &dcm_dict_ranges[i].entry;
        assert_ptr_equal(dcm_dict_find_keyword(e->keyword), e);
    }
}

/* Every private entry is found again from its creator and a tag in its
 * first group (in block 10 unless the entry fixes another). */
static void test_private_table_round_trips(void **state)
{
    (void)state;
    assert_true(dcm_dict_private_count > 2000);
    for (size_t i = 0; i < dcm_dict_private_count; i++) {
        const dcm_dict_private *p = &dcm_dict_privates[i];
        uint16_t block = p->block ? p->block : 0x10;
        uint32_t tag = DCM_TAG(DCM_TAG_GROUP(p->entry.tag),
                               (uint16_t)(block << 8 | p->element_byte));
        assert_non_null(p->entry.creator);
        assert_ptr_equal(dcm_dict_find_private(p->entry.creator, tag),
                         &p->entry);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patient_name_both_ways),
        cmocka_unit_test(test_pseudo_vrs),
        cmocka_unit_test(test_repeating_groups),
        cmocka_unit_test(test_repeating_groups_are_even_only),
        cmocka_unit_test(test_element_range),
        cmocka_unit_test(test_private_creator_and_group_length),
        cmocka_unit_test(test_private_data_elements_are_not_standard),
        cmocka_unit_test(test_private_any_block),
        cmocka_unit_test(test_private_mismatches),
        cmocka_unit_test(test_private_fixed_block),
        cmocka_unit_test(test_private_odd_details),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_standard_table),
        cmocka_unit_test(test_keyword_index_round_trips),
        cmocka_unit_test(test_private_table_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
