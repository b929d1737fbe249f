/* net_fsm.c - the DICOM Upper Layer state transition table (PS3.8 9.2.3,
 * Table 9-10): which action an event triggers in each state. The actions
 * themselves (and the state each leads to) are carried out in net_assoc.c;
 * keeping the table as data lets a test compare it with the standard cell
 * by cell, and makes every event the table does not list an error instead
 * of an accident. */
#include "internal.h"

#define STATES 13
#define EVENTS 19

/* Rows: events 1-19; columns: states 1-13 (0 = not applicable). */
static const uint8_t table[EVENTS][STATES] = {
    /*            Sta1     Sta2     Sta3     Sta4     Sta5     Sta6     Sta7
                  Sta8     Sta9     Sta10    Sta11    Sta12    Sta13 */
    /* Evt1 */ {DCM_AE1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    /* Evt2 */ {0, 0, 0, DCM_AE2, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    /* Evt3 */ {0, DCM_AA1, DCM_AA8, 0, DCM_AE3, DCM_AA8, DCM_AA8,
                DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA6},
    /* Evt4 */ {0, DCM_AA1, DCM_AA8, 0, DCM_AE4, DCM_AA8, DCM_AA8,
                DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA6},
    /* Evt5 */ {DCM_AE5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    /* Evt6 */ {0, DCM_AE6, DCM_AA8, 0, DCM_AA8, DCM_AA8, DCM_AA8,
                DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA7},
    /* Evt7 */ {0, 0, DCM_AE7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    /* Evt8 */ {0, 0, DCM_AE8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    /* Evt9 */ {0, 0, 0, 0, 0, DCM_DT1, 0, DCM_AR7, 0, 0, 0, 0, 0},
    /* Evt10 */ {0, DCM_AA1, DCM_AA8, 0, DCM_AA8, DCM_DT2, DCM_AR6,
                 DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA6},
    /* Evt11 */ {0, 0, 0, 0, 0, DCM_AR1, 0, 0, 0, 0, 0, 0, 0},
    /* Evt12 */ {0, DCM_AA1, DCM_AA8, 0, DCM_AA8, DCM_AR2, DCM_AR8,
                 DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA6},
    /* Evt13 */ {0, DCM_AA1, DCM_AA8, 0, DCM_AA8, DCM_AA8, DCM_AR3,
                 DCM_AA8, DCM_AA8, DCM_AR10, DCM_AR3, DCM_AA8, DCM_AA6},
    /* Evt14 */ {0, 0, 0, 0, 0, 0, 0, DCM_AR4, DCM_AR9, 0, 0, DCM_AR4, 0},
    /* Evt15 */ {0, 0, DCM_AA1, DCM_AA2, DCM_AA1, DCM_AA1, DCM_AA1,
                 DCM_AA1, DCM_AA1, DCM_AA1, DCM_AA1, DCM_AA1, 0},
    /* Evt16 */ {0, DCM_AA2, DCM_AA3, 0, DCM_AA3, DCM_AA3, DCM_AA3,
                 DCM_AA3, DCM_AA3, DCM_AA3, DCM_AA3, DCM_AA3, DCM_AA2},
    /* Evt17 */ {0, DCM_AA5, DCM_AA4, DCM_AA4, DCM_AA4, DCM_AA4, DCM_AA4,
                 DCM_AA4, DCM_AA4, DCM_AA4, DCM_AA4, DCM_AA4, DCM_AR5},
    /* Evt18 */ {0, DCM_AA2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, DCM_AA2},
    /* Evt19 */ {0, DCM_AA1, DCM_AA8, 0, DCM_AA8, DCM_AA8, DCM_AA8,
                 DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA8, DCM_AA7},
};

dcm_ul_action dcm_ul_action_for(dcm_ul_state state, dcm_ul_event event)
{
    if (state < DCM_STA1 || state > DCM_STA13 || event < DCM_EVT1 ||
        event > DCM_EVT19)
        return DCM_ACT_NONE;
    return (dcm_ul_action)table[event - 1][state - 1];
}

const char *dcm_ul_action_name(dcm_ul_action action)
{
    static const char *const names[] = {
        "none", "AE-1", "AE-2", "AE-3", "AE-4", "AE-5", "AE-6", "AE-7",
        "AE-8", "DT-1", "DT-2", "AR-1", "AR-2", "AR-3", "AR-4", "AR-5",
        "AR-6", "AR-7", "AR-8", "AR-9", "AR-10", "AA-1", "AA-2", "AA-3",
        "AA-4", "AA-5", "AA-6", "AA-7", "AA-8",
    };
    return (unsigned)action < sizeof names / sizeof names[0] ? names[action]
                                                            : "?";
}
