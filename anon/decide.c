/* decide.c - the fate of one attribute: a policy line, the private rules,
 * a row of Table E.1-1 under the options in force, or the mode. The walk
 * (engine.c), the cleaner's word list (scrub.c) and `siren policy
 * explain` all ask here, so that they can never disagree. */
#include "internal.h"

#include <string.h>

static const struct {
    unsigned option;
    anon_column column;
} option_columns[] = {
    {POL_OPT_RETAIN_SAFE_PRIVATE, ANON_COL_SAFE_PRIVATE},
    {POL_OPT_RETAIN_UIDS, ANON_COL_UIDS},
    {POL_OPT_RETAIN_DEVICE_IDENTITY, ANON_COL_DEVICE},
    {POL_OPT_RETAIN_INSTITUTION_IDENTITY, ANON_COL_INSTITUTION},
    {POL_OPT_RETAIN_PATIENT_CHARACTERISTICS, ANON_COL_PATIENT_CHARS},
    {POL_OPT_RETAIN_LONG_FULL_DATES, ANON_COL_LONG_FULL_DATES},
    {POL_OPT_RETAIN_LONG_MODIFIED_DATES, ANON_COL_LONG_MODIF_DATES},
    {POL_OPT_CLEAN_DESCRIPTORS, ANON_COL_CLEAN_DESC},
    {POL_OPT_CLEAN_STRUCTURED_CONTENT, ANON_COL_CLEAN_STRUCT},
    {POL_OPT_CLEAN_GRAPHICS, ANON_COL_CLEAN_GRAPHICS},
};

int anon_option_column(unsigned option)
{
    for (size_t i = 0; i < sizeof option_columns / sizeof *option_columns;
         i++)
        if (option_columns[i].option == option)
            return (int)option_columns[i].column;
    return -1;
}

unsigned anon_column_option(int column)
{
    for (size_t i = 0; i < sizeof option_columns / sizeof *option_columns;
         i++)
        if ((int)option_columns[i].column == column)
            return option_columns[i].option;
    return 0;
}

const char *anon_action_name(anon_action action)
{
    static const char *const names[] = {
        [ACT_KEEP] = "keep",       [ACT_REMOVE] = "remove",
        [ACT_EMPTY] = "empty",     [ACT_DUMMY] = "dummy",
        [ACT_REMAP] = "remap UID", [ACT_SHIFT] = "shift date",
        [ACT_HASH] = "hash",       [ACT_CLEAN] = "clean text",
        [ACT_CLEAN_SR] = "clean content items",
        [ACT_REPLACE] = "replace", [ACT_LOOKUP] = "lookup",
    };
    return names[action];
}

static bool is_date_vr(dcm_vr vr)
{
    return vr == DCM_VR_DA || vr == DCM_VR_DT;
}

static bool is_text_vr(dcm_vr vr)
{
    return dcm_vr_is_string(vr) && vr != DCM_VR_UI && !is_date_vr(vr) &&
           vr != DCM_VR_TM && vr != DCM_VR_DS && vr != DCM_VR_IS &&
           vr != DCM_VR_AS;
}

/* C: what "clean" means depends on the option that asked for it. */
static anon_action clean_action(anon_column column, dcm_vr vr)
{
    switch (column) {
    case ANON_COL_LONG_MODIF_DATES:
        /* Whole days move; a time of day (TM) or an offset from UTC (SH)
         * stays what it was. A binary timestamp (Certified Timestamp,
         * Frame Origin Timestamp: OB) or a date read without its VR (UN)
         * cannot be moved and would leave with the real date: removed. */
        if (is_date_vr(vr))
            return ACT_SHIFT;
        return vr == DCM_VR_TM || vr == DCM_VR_SQ || is_text_vr(vr)
                   ? ACT_KEEP /* a sequence: its items' dates are judged */
                   : ACT_REMOVE;
    case ANON_COL_DEVICE:
        /* An AE title or network name: a consistent pseudonym. */
        return is_text_vr(vr) ? ACT_HASH : ACT_REMOVE;
    case ANON_COL_CLEAN_STRUCT:
        /* As for the other options: blanking words inside a UID, a date
         * or a number would leave an invalid value. (2024b has only
         * sequences in this column.) */
        if (vr == DCM_VR_SQ)
            return ACT_CLEAN_SR;
        return is_text_vr(vr) ? ACT_CLEAN : ACT_REMOVE;
    case ANON_COL_CLEAN_GRAPHICS:
        /* Text and graphic annotations are cleaned; an overlay's or a
         * curve's binary data cannot be read for words, so it goes. */
        if (vr == DCM_VR_SQ)
            return ACT_KEEP;
        return is_text_vr(vr) ? ACT_CLEAN : ACT_REMOVE;
    default: /* descriptors, patient characteristics */
        return is_text_vr(vr) ? ACT_CLEAN : ACT_REMOVE;
    }
}

/* The single action of a (possibly combined) code. The combined codes of
 * Table E.1-1 mean "the first unless the IOD's Type needs the later";
 * without the IOD at hand, an attribute of a standard composite IOD keeps
 * its presence (Z for a Type 2, D for a Type 1, U for a UID), and one in
 * no standard IOD is removed. */
static anon_action code_action(anon_code code, bool in_std_iod, dcm_vr vr)
{
    bool seq = vr == DCM_VR_SQ;
    switch (code) {
    case ANON_CODE_K:
        return ACT_KEEP;
    case ANON_CODE_X:
        return ACT_REMOVE;
    case ANON_CODE_Z:
        return ACT_EMPTY;
    case ANON_CODE_D:
        return vr == DCM_VR_UI ? ACT_REMAP : ACT_DUMMY;
    case ANON_CODE_U:
        return seq ? ACT_KEEP : ACT_REMAP;
    case ANON_CODE_XZ:
        return in_std_iod ? ACT_EMPTY : ACT_REMOVE;
    case ANON_CODE_XD:
    case ANON_CODE_XZD:
    case ANON_CODE_ZD:
        if (!in_std_iod)
            return code == ANON_CODE_ZD ? ACT_EMPTY : ACT_REMOVE;
        /* A sequence of one empty item says nothing a Type 1 needs: an
         * empty sequence is as good and honest. */
        return seq ? ACT_EMPTY : vr == DCM_VR_UI ? ACT_REMAP : ACT_DUMMY;
    case ANON_CODE_XZU:
        if (!in_std_iod)
            return ACT_REMOVE;
        return seq ? ACT_KEEP : ACT_REMAP; /* items' UIDs are remapped */
    default:
        return ACT_REMOVE;
    }
}

/* The code of a row under the options: each option in force with an
 * entry replaces the basic code; C wins over K, so that cleaning asked
 * for by one option is never undone by another's keep. */
static anon_code row_code(uint8_t basic, const uint8_t option[ANON_COLUMNS],
                          unsigned options, int *column)
{
    anon_code code = (anon_code)basic;
    *column = -1;
    for (size_t i = 0; i < sizeof option_columns / sizeof *option_columns;
         i++) {
        anon_code o = (anon_code)option[option_columns[i].column];
        if (!(options & option_columns[i].option) || o == ANON_CODE_NONE)
            continue;
        if (*column >= 0 && code == ANON_CODE_C)
            continue;
        code = o;
        *column = (int)option_columns[i].column;
    }
    return code;
}

anon_action anon_code_action(anon_code code, int column, bool in_std_iod,
                             dcm_vr vr)
{
    if (code == ANON_CODE_C)
        return clean_action((anon_column)column, vr);
    return code_action(code, in_std_iod, vr);
}

anon_decision anon_decide_row(const anon_row *row, unsigned options,
                              dcm_vr vr)
{
    anon_decision d = {.source = SRC_TABLE, .row = row};
    d.code = row_code(row->basic, row->option, options, &d.column);
    d.action = anon_code_action(d.code, d.column, row->in_std_comp_iod, vr);
    return d;
}

anon_decision anon_decide_sr_row(const anon_sr_row *row, unsigned options)
{
    anon_decision d = {.source = SRC_TABLE};
    d.code = row_code(row->basic, row->option, options, &d.column);
    /* For the item as a whole; its value attributes get
     * anon_code_action(d.code, d.column, true, their VR). A C keeps the
     * item so that its value is cleaned or shifted: asked with no VR,
     * clean_action would take the item for binary data and remove it
     * (a TEXT item under Clean Descriptors lost, not cleaned). */
    d.action = d.code == ANON_CODE_C
                   ? ACT_KEEP
                   : anon_code_action(d.code, d.column, true, DCM_VR_NONE);
    return d;
}

bool anon_is_image_attribute(uint32_t tag)
{
    static const uint32_t named[] = {
        DCM_TAG(0x0008, 0x0005), /* Specific Character Set */
        DCM_TAG(0x0008, 0x0008), /* Image Type */
        DCM_TAG(0x0008, 0x0016), /* SOP Class UID */
        DCM_TAG(0x0008, 0x0060), /* Modality */
        DCM_TAG(0x0018, 0x0050), /* Slice Thickness */
        DCM_TAG(0x0018, 0x0088), /* Spacing Between Slices */
        DCM_TAG(0x0020, 0x0011), /* Series Number */
        DCM_TAG(0x0020, 0x0013), /* Instance Number */
        DCM_TAG(0x0020, 0x0032), /* Image Position (Patient) */
        DCM_TAG(0x0020, 0x0037), /* Image Orientation (Patient) */
        DCM_TAG(0x0020, 0x1041), /* Slice Location */
    };
    uint16_t group = DCM_TAG_GROUP(tag);
    /* Image Pixel, Image Plane, VOI LUT, Modality LUT and friends; pixel
     * data and its offset tables. */
    if (group == 0x0028 || group == 0x7FE0)
        return true;
    for (size_t i = 0; i < sizeof named / sizeof *named; i++)
        if (named[i] == tag)
            return true;
    return false;
}

static anon_decision from_rule(const pol_rule *rule, dcm_vr vr)
{
    static const anon_action actions[] = {
        [POL_KEEP] = ACT_KEEP,       [POL_REMOVE] = ACT_REMOVE,
        [POL_EMPTY] = ACT_EMPTY,     [POL_REPLACE] = ACT_REPLACE,
        [POL_HASH] = ACT_HASH,       [POL_LOOKUP] = ACT_LOOKUP,
        [POL_REMAP_UID] = ACT_REMAP, [POL_SHIFT_DATE] = ACT_SHIFT,
    };
    anon_decision d = {.source = SRC_POLICY, .rule = rule, .column = -1};
    d.action = actions[rule->kind];
    (void)vr;
    return d;
}

static anon_decision decide_private(const pol_policy *p,
                                    const dcm_dataset *ds, uint32_t tag)
{
    anon_decision d = {.source = SRC_PRIVATE, .column = -1,
                       .row = anon_table_private_row(),
                       .code = ANON_CODE_X, .action = ACT_REMOVE};
    char creator[DCM_CREATOR_MAX + 1];
    if ((pol_policy_options(p) & POL_OPT_RETAIN_SAFE_PRIVATE) &&
        dcm_dataset_private_creator(ds, tag, creator, sizeof creator) &&
        anon_safe_private_find(DCM_TAG_GROUP(tag),
                               (uint8_t)(DCM_TAG_ELEMENT(tag) & 0xFF),
                               creator)) {
        d.source = SRC_SAFE_PRIVATE;
        d.column = ANON_COL_SAFE_PRIVATE;
        d.code = ANON_CODE_K;
        d.action = ACT_KEEP;
    }
    return d;
}

anon_decision anon_decide(const pol_policy *p, const dcm_dataset *ds,
                          uint32_t tag, dcm_vr vr)
{
    size_t count;
    const pol_rule *rules = pol_policy_rules(p, &count);
    for (size_t i = count; i > 0; i--)
        if (pol_tagref_matches(&rules[i - 1].ref, ds, tag))
            return from_rule(&rules[i - 1], vr);
    if (dcm_tag_is_private(tag) && !dcm_tag_is_private_creator(tag))
        return decide_private(p, ds, tag);
    return anon_decide_standard(p, tag, vr);
}

anon_decision anon_decide_standard(const pol_policy *p, uint32_t tag,
                                   dcm_vr vr)
{
    const anon_row *row = anon_table_find(tag);
    if (row)
        return anon_decide_row(row, pol_policy_options(p), vr);
    anon_decision d = {.source = SRC_UNLISTED, .column = -1,
                       .action = ACT_KEEP};
    if (dcm_tag_is_private_creator(tag))
        return d; /* dropped by the engine once its block is empty */
    uint16_t group = DCM_TAG_GROUP(tag);
    if (!dcm_dict_find(tag) || group == 0x0000 ||
        (group < 0x0008 && (group & 1))) {
        /* An attribute no dictionary knows, in a standard or a reserved
         * group (0001-0007): nothing says what it holds. The dictionary
         * also names elements that have no place in a data set: command
         * elements (0000,xxxx), whose Error Comment is free text, and
         * (0001-0007 odd, 0010-00FF), "IllegalPrivateCreator" (PS3.5
         * 7.1 forbids those groups). A name is not a meaning: removed. */
        d.source = SRC_UNKNOWN;
        d.action = ACT_REMOVE;
    } else if (pol_policy_keep_list(p) && !anon_is_image_attribute(tag)) {
        d.source = SRC_KEEP_LIST;
        d.action = ACT_REMOVE;
    }
    return d;
}
