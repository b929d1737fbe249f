/* vr.c - value representation properties (PS3.5 Section 6.2, Table 7.1-1). */
#include "internal.h"

enum {
    VR_STRING = 1 << 0,  /* a character string */
    VR_CHARSET = 1 << 1, /* ... whose characters follow Specific Char Set */
    VR_LONG = 1 << 2,    /* 4-byte length in explicit VR */
};

struct vr_info {
    char name[3];
    uint8_t flags;
    uint8_t unit_size;
};

static const struct vr_info vr_table[DCM_VR_COUNT] = {
    [DCM_VR_NONE] = {"na", 0, 1},
    [DCM_VR_AE] = {"AE", VR_STRING, 1},
    [DCM_VR_AS] = {"AS", VR_STRING, 1},
    [DCM_VR_AT] = {"AT", 0, 2},
    [DCM_VR_CS] = {"CS", VR_STRING, 1},
    [DCM_VR_DA] = {"DA", VR_STRING, 1},
    [DCM_VR_DS] = {"DS", VR_STRING, 1},
    [DCM_VR_DT] = {"DT", VR_STRING, 1},
    [DCM_VR_FD] = {"FD", 0, 8},
    [DCM_VR_FL] = {"FL", 0, 4},
    [DCM_VR_IS] = {"IS", VR_STRING, 1},
    [DCM_VR_LO] = {"LO", VR_STRING | VR_CHARSET, 1},
    [DCM_VR_LT] = {"LT", VR_STRING | VR_CHARSET, 1},
    [DCM_VR_OB] = {"OB", VR_LONG, 1},
    [DCM_VR_OD] = {"OD", VR_LONG, 8},
    [DCM_VR_OF] = {"OF", VR_LONG, 4},
    [DCM_VR_OL] = {"OL", VR_LONG, 4},
    [DCM_VR_OV] = {"OV", VR_LONG, 8},
    [DCM_VR_OW] = {"OW", VR_LONG, 2},
    [DCM_VR_PN] = {"PN", VR_STRING | VR_CHARSET, 1},
    [DCM_VR_SH] = {"SH", VR_STRING | VR_CHARSET, 1},
    [DCM_VR_SL] = {"SL", 0, 4},
    [DCM_VR_SQ] = {"SQ", VR_LONG, 1},
    [DCM_VR_SS] = {"SS", 0, 2},
    [DCM_VR_ST] = {"ST", VR_STRING | VR_CHARSET, 1},
    [DCM_VR_SV] = {"SV", VR_LONG, 8},
    [DCM_VR_TM] = {"TM", VR_STRING, 1},
    [DCM_VR_UC] = {"UC", VR_STRING | VR_CHARSET | VR_LONG, 1},
    [DCM_VR_UI] = {"UI", VR_STRING, 1},
    [DCM_VR_UL] = {"UL", 0, 4},
    [DCM_VR_UN] = {"UN", VR_LONG, 1},
    [DCM_VR_UR] = {"UR", VR_STRING | VR_LONG, 1},
    [DCM_VR_US] = {"US", 0, 2},
    [DCM_VR_UT] = {"UT", VR_STRING | VR_CHARSET | VR_LONG, 1},
    [DCM_VR_UV] = {"UV", VR_LONG, 8},
};

static bool vr_valid(dcm_vr vr)
{
    return (unsigned)vr < DCM_VR_COUNT;
}

const char *dcm_vr_name(dcm_vr vr)
{
    return vr_valid(vr) ? vr_table[vr].name : "??";
}

dcm_vr dcm_vr_from_chars(uint8_t first, uint8_t second)
{
    /* The enum is in alphabetical order of the names: binary search. */
    int low = DCM_VR_NONE + 1, high = DCM_VR_COUNT - 1;
    while (low <= high) {
        int mid = low + (high - low) / 2;
        const char *name = vr_table[mid].name;
        int order = (uint8_t)name[0] != first ? (uint8_t)name[0] - first
                                              : (uint8_t)name[1] - second;
        if (order == 0)
            return (dcm_vr)mid;
        if (order < 0)
            low = mid + 1;
        else
            high = mid - 1;
    }
    return DCM_VR_NONE;
}

bool dcm_vr_has_long_length(dcm_vr vr)
{
    return vr_valid(vr) && (vr_table[vr].flags & VR_LONG);
}

bool dcm_vr_is_string(dcm_vr vr)
{
    return vr_valid(vr) && (vr_table[vr].flags & VR_STRING);
}

bool dcm_vr_uses_charset(dcm_vr vr)
{
    return vr_valid(vr) && (vr_table[vr].flags & VR_CHARSET);
}

size_t dcm_vr_unit_size(dcm_vr vr)
{
    return vr_valid(vr) ? vr_table[vr].unit_size : 1;
}

uint8_t dcm_vr_padding(dcm_vr vr)
{
    return dcm_vr_is_string(vr) && vr != DCM_VR_UI ? ' ' : '\0';
}

bool dcm_tag_is_private(uint32_t tag)
{
    uint16_t group = DCM_TAG_GROUP(tag);
    return (group & 1) && group > 0x0008 && group != 0xFFFF;
}

bool dcm_tag_is_private_creator(uint32_t tag)
{
    uint16_t element = DCM_TAG_ELEMENT(tag);
    return dcm_tag_is_private(tag) && element >= 0x0010 && element <= 0x00FF;
}
