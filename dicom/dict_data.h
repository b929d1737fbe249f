/*
 * dict_data.h - private to dicom/: the shape of the data dictionary tables
 * that tools/gen_dict.c generates at build time (into dict_data.c, from
 * DCMTK's dicom.dic and private.dic) and that dict.c searches. Only those
 * two files include this header (and the dictionary's unit test, to check
 * the tables as a whole).
 *
 * Four immutable tables, each in the order its search needs:
 *
 * - dcm_dict_standard: the standard entries for one tag, ascending by tag
 *   (tags are unique): binary search.
 * - dcm_dict_ranges: the standard entries that cover a range of tags,
 *   repeating groups such as (60xx,3000), element ranges such as
 *   (0020,31xx) and the catch-all rows for group lengths and private
 *   creators, most specific first (fewest tags covered), so that the first
 *   range that contains a tag is the one to use. About a hundred entries:
 *   a linear scan.
 * - dcm_dict_privates: the private entries, ascending by (creator,
 *   element_byte), and within that most specific first (one group before
 *   a group range, one block before any block); a binary search finds the
 *   first entry for a creator and byte, a short scan the one for the group.
 * - dcm_dict_keywords: the keyword index, pointers to every entry of
 *   dcm_dict_standard and dcm_dict_ranges ascending by keyword (strcmp
 *   order; keywords are unique, the generator makes sure of it).
 *
 * Everything is const data: safe from any thread.
 */
#ifndef SIREN_DICOM_DICT_DATA_H
#define SIREN_DICOM_DICT_DATA_H

#include "dicom.h"

/* Which numbers between first and last a range covers. */
enum dcm_dict_parity {
    DCM_DICT_ANY = 0,  /* every number */
    DCM_DICT_EVEN = 1, /* even numbers only: repeating groups, PS3.5 7.6 */
    DCM_DICT_ODD = 2,  /* odd numbers only: private groups */
};

/* A standard entry for a range of tags. entry.tag is the first tag (first
 * group, first element); the range is inclusive at both ends and the
 * first numbers always have the parity that the range allows. */
typedef struct dcm_dict_range {
    dcm_dict_entry entry;
    uint16_t group_last;
    uint16_t element_last;
    uint8_t group_parity;   /* enum dcm_dict_parity */
    uint8_t element_parity; /* enum dcm_dict_parity */
} dcm_dict_range;

/* A private entry: the element with low byte element_byte in any block
 * (gggg,bb00-bbFF) that entry.creator reserved, or only in block `block`
 * when private.dic fixes it (the (gggg,"CREATOR",bbee) form). entry.tag is
 * (first group, 00ee) for any block and (first group, bbee) for a fixed
 * one. Groups run from DCM_TAG_GROUP(entry.tag) to group_last. */
typedef struct dcm_dict_private {
    dcm_dict_entry entry;
    uint16_t group_last;
    uint8_t group_parity; /* enum dcm_dict_parity */
    uint8_t element_byte; /* the element's low byte, ee */
    uint8_t block;        /* 0: any block; else the one block, bb */
} dcm_dict_private;

extern const dcm_dict_entry dcm_dict_standard[];
extern const size_t dcm_dict_standard_count;

extern const dcm_dict_range dcm_dict_ranges[];
extern const size_t dcm_dict_range_count;

extern const dcm_dict_private dcm_dict_privates[];
extern const size_t dcm_dict_private_count;

extern const dcm_dict_entry *const dcm_dict_keywords[];
extern const size_t dcm_dict_keyword_count;

#endif /* SIREN_DICOM_DICT_DATA_H */
