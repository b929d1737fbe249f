/*
 * dict.c - looking up the data dictionary (PS3.6, and the private tags
 * DCMTK knows). The tables are generated at build time into dict_data.c;
 * their layout and order are described in dict_data.h. Everything here
 * reads const data only: safe from any thread.
 */
#include "dict_data.h"

#include <string.h>

/* An element of a private block, (gggg,1000) to (gggg,FFFF): the lookup
 * goes through its creator, never through a standard entry. */
#define DICT_FIRST_PRIVATE_BLOCK_ELEMENT 0x1000u

static bool in_span(uint16_t number, uint16_t first, uint16_t last,
                    uint8_t parity)
{
    if (number < first || number > last)
        return false;
    switch (parity) {
    case DCM_DICT_EVEN: return (number & 1u) == 0;
    case DCM_DICT_ODD: return (number & 1u) != 0;
    default: return true;
    }
}

static bool range_contains(const dcm_dict_range *range, uint32_t tag)
{
    return in_span(DCM_TAG_GROUP(tag), DCM_TAG_GROUP(range->entry.tag),
                   range->group_last, range->group_parity) &&
           in_span(DCM_TAG_ELEMENT(tag), DCM_TAG_ELEMENT(range->entry.tag),
                   range->element_last, range->element_parity);
}

static const dcm_dict_entry *find_exact(uint32_t tag)
{
    size_t low = 0, high = dcm_dict_standard_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        uint32_t mid_tag = dcm_dict_standard[mid].tag;
        if (mid_tag == tag)
            return &dcm_dict_standard[mid];
        if (mid_tag < tag)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}

/* The ranges are ordered most specific first (dict_data.h), so the first
 * match is the one to use: (6000,3000) is OverlayData, not a catch-all. */
static const dcm_dict_entry *find_in_ranges(uint32_t tag)
{
    for (size_t i = 0; i < dcm_dict_range_count; i++) {
        if (range_contains(&dcm_dict_ranges[i], tag))
            return &dcm_dict_ranges[i].entry;
    }
    return NULL;
}

const dcm_dict_entry *dcm_dict_find(uint32_t tag)
{
    const dcm_dict_entry *entry = find_exact(tag);
    if (entry)
        return entry;
    /* In an odd group only the group length and the private creators
     * (0000-00FF) are standard. A private data element such as
     * (0019,1010) means what its creator says, so no catch-all row may
     * claim it (the generator refuses rows that would reach that far). */
    if ((DCM_TAG_GROUP(tag) & 1u) != 0 &&
        DCM_TAG_ELEMENT(tag) >= DICT_FIRST_PRIVATE_BLOCK_ELEMENT)
        return NULL;
    return find_in_ranges(tag);
}

/* ---- private entries ------------------------------------------------------ */

/* Orders an entry's (creator, element byte) against the key (creator of
 * creator_len bytes, byte), as strcmp would order the NUL-terminated
 * creators: the order the generator sorted the table in. */
static int compare_private_key(const dcm_dict_private *p, const char *creator,
                               size_t creator_len, uint8_t byte)
{
    const unsigned char *have = (const unsigned char *)p->entry.creator;
    const unsigned char *want = (const unsigned char *)creator;
    for (size_t i = 0; i < creator_len; i++) {
        if (have[i] != want[i])
            return have[i] < want[i] ? -1 : 1; /* also when have ends */
    }
    if (have[creator_len] != '\0')
        return 1; /* the entry's creator is longer */
    return (p->element_byte > byte) - (p->element_byte < byte);
}

/* Index of the first entry not ordered before (creator, byte). */
static size_t private_lower_bound(const char *creator, size_t creator_len,
                                  uint8_t byte)
{
    size_t low = 0, high = dcm_dict_private_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (compare_private_key(&dcm_dict_privates[mid], creator,
                                creator_len, byte) < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

static bool private_matches(const dcm_dict_private *p, uint32_t tag)
{
    uint8_t block = (uint8_t)(DCM_TAG_ELEMENT(tag) >> 8);
    return in_span(DCM_TAG_GROUP(tag), DCM_TAG_GROUP(p->entry.tag),
                   p->group_last, p->group_parity) &&
           (p->block == 0 || p->block == block);
}

const dcm_dict_entry *dcm_dict_find_private(const char *creator, uint32_t tag)
{
    size_t creator_len;
    uint8_t byte = (uint8_t)(DCM_TAG_ELEMENT(tag) & 0xFFu);
    if (!creator || (DCM_TAG_GROUP(tag) & 1u) == 0 ||
        DCM_TAG_ELEMENT(tag) < DICT_FIRST_PRIVATE_BLOCK_ELEMENT)
        return NULL;
    /* A creator value may carry the padding space of an LO. */
    creator_len = strlen(creator);
    while (creator_len > 0 && creator[creator_len - 1] == ' ')
        creator_len--;
    /* Entries for this creator and byte are adjacent, most specific first
     * (one group before a group range, a fixed block before any block):
     * the first that covers the tag wins. */
    for (size_t i = private_lower_bound(creator, creator_len, byte);
         i < dcm_dict_private_count; i++) {
        const dcm_dict_private *p = &dcm_dict_privates[i];
        if (compare_private_key(p, creator, creator_len, byte) != 0)
            break;
        if (private_matches(p, tag))
            return &p->entry;
    }
    return NULL;
}

/* ---- keywords ------------------------------------------------------------- */

const dcm_dict_entry *dcm_dict_find_keyword(const char *keyword)
{
    size_t low = 0, high = dcm_dict_keyword_count;
    if (!keyword)
        return NULL;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int order = strcmp(dcm_dict_keywords[mid]->keyword, keyword);
        if (order == 0)
            return dcm_dict_keywords[mid];
        if (order < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}
