/*
 * scu.h - what the gateway's DICOM clients share (siren echo, siren send,
 * siren forward and the forwarder): the command-line options that name a
 * peer, opening an association to it over TCP or DICOM-TLS, the
 * presentation contexts to propose for a set of files, and what a C-STORE
 * status means. Internal to gateway/.
 *
 * Threads: gw_scu_open, gw_scu_file_read and the status functions may run
 * in any number of threads at once (a gw_scu_peer is only read, its TLS
 * context is thread-safe); a gw_proposals belongs to one thread.
 */
#ifndef SIREN_GW_SCU_H
#define SIREN_GW_SCU_H

#include "dicom.h"
#include "tls.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- the peer ------------------------------------------------------------ */

typedef struct gw_scu_peer {
    const char *host, *port;
    const char *calling_ae, *called_ae;
    int timeout_ms;          /* connect, TLS handshake, each DIMSE step */
    uint32_t max_pdu;        /* the largest P-DATA PDU we receive */
    tls_context *tls;        /* NULL: plain TCP; borrowed */
    const char *server_name; /* the name the server certificate must
                                carry; NULL: host */
} gw_scu_peer;

/* Connects (then the TLS handshake when peer->tls) and requests an
 * association with count proposals. Owned by the caller
 * (dcm_assoc_free); NULL with err filled (DCM_E_REJECTED says the
 * acceptor's reasons, DCM_E_IO a refused connection, ...). */
dcm_assoc *gw_scu_open(const gw_scu_peer *peer, const dcm_proposal *proposals,
                       size_t count, dcm_error *err);

/* ---- the command line -------------------------------------------------------- */

typedef struct gw_client_options {
    gw_scu_peer peer;             /* host and port: the two positional
                                     arguments after the options */
    bool tls;                     /* --tls */
    tls_client_config tls_config; /* --tls-ca, --tls-cert, --tls-key,
                                     --tls-profile (strings from argv) */
} gw_client_options;

/* The help text of the options gw_client_options_parse reads. */
extern const char gw_client_options_help[];

/* A command's own options, asked before the shared ones: returns 1 if it
 * took opt alone (a flag), 2 if it took opt and value, 0 if opt is not
 * its own, -1 if value is unusable. value is NULL after the last
 * argument. */
typedef int (*gw_option_fn)(void *ctx, const char *opt, const char *value);

/* Reads the options (the shared ones and, through extra, which may be
 * NULL, the command's) and then HOST PORT. Returns the index of the first
 * argument after PORT, or -1 after printing what is wrong (and help) on
 * stderr; --help prints help on stdout and exits 0. Defaults: --aet
 * SIREN, --call ANY-SCP, --timeout 60 s, --max-pdu 128 KiB. No TLS
 * context is made here (gw_client_options_tls). */
int gw_client_options_parse(int argc, char **argv, gw_client_options *o,
                            const char *help, gw_option_fn extra, void *ctx);
/* With --tls: makes the client context into o->peer.tls (the caller
 * unrefs it). 0, or -1 after printing why. */
int gw_client_options_tls(gw_client_options *o, const char *program);

/* ---- files and presentation contexts --------------------------------------- */

/* A Patient ID of 64 characters (LO) in UTF-8. */
#define GW_SCU_PATIENT_ID_MAX (64 * 4)

/* What decides the presentation context a file travels on, and what the
 * audit trail names it by. */
typedef struct gw_scu_file {
    char sop_class[DCM_UID_MAX + 1];
    char sop_instance[DCM_UID_MAX + 1];
    const dcm_ts *ts;
    char study[DCM_UID_MAX + 1];                /* "": none */
    char patient_id[GW_SCU_PATIENT_ID_MAX + 1]; /* UTF-8, cut at a whole
                                                   character; "": none */
} gw_scu_file;

/* Reads path (as dcm_store_file will: the data set's UIDs, else the
 * meta's) into out, with the Study Instance UID and Patient ID of its
 * data set. DCM_E_NOT_FOUND ("no SOP Class UID") when it has no valid
 * SOP Class UID, the reader's error when it cannot be opened or is not
 * DICOM it can read. A missing or invalid SOP Instance UID is left for
 * dcm_store_file to refuse (sop_instance may be empty). */
int gw_scu_file_read(const char *path, gw_scu_file *out, dcm_error *err);

/* Contexts to propose: one per SOP class for native data sets (their own
 * syntax plus Explicit and Implicit VR Little Endian, which dcm_store_file
 * can re-encode them into) and one per SOP class and compressed syntax
 * (an acceptor picks one syntax per context, and would often pick a
 * native one over the compressed one if they shared it). A compressed
 * file brings both its own context, proposed first, and the native one
 * of its class: the fallback for an archive that refuses the compressed
 * syntax, which the forwarder meets by decoding (gw_scu_write_native).
 * items[i].abstract_syntax points into the structure itself: use it
 * where it was made, do not copy it. */
typedef struct gw_proposals {
    size_t count;
    dcm_proposal items[DCM_MAX_CONTEXTS];
    char abstract_syntaxes[DCM_MAX_CONTEXTS][DCM_UID_MAX + 1];
} gw_proposals;

/* The proposal a file goes on as it is, or NULL if none was made for
 * it. */
const dcm_proposal *gw_proposals_find(const gw_proposals *p,
                                      const gw_scu_file *f);
/* Adds what f needs (for a compressed file, the native context of its
 * class too). 0, or -1 (nothing changed) when that would take a context
 * beyond DCM_MAX_CONTEXTS. */
int gw_proposals_add(gw_proposals *p, const gw_scu_file *f);

/* Writes the DICOM file at path to fd as a Part 10 file in Explicit VR
 * Little Endian with its pixel data decoded by codec/, one frame in
 * memory at a time: Photometric Interpretation as the decoder gives it
 * (RGB for YBR JPEG and JPEG 2000), Planar Configuration 0, offset tables
 * gone, every other element as it is (Lossy Image Compression included:
 * decoding loses nothing more). The file itself is only read. For an
 * archive that accepts only native syntaxes. DCM_E_UNSUPPORTED: a
 * syntax or image this build cannot decode; DCM_E_INVALID, DCM_E_LIMIT:
 * pixel data that cannot be decoded; DCM_E_IO: fd could not be written
 * (what was written is then to be thrown away). Thread-safe. */
int gw_scu_write_native(const char *path, int fd, dcm_error *err);

/* ---- C-STORE answers --------------------------------------------------------- */

/* Words for a DIMSE status ("refused: out of resources"). */
const char *gw_status_words(uint16_t status);
/* Success (0000) or a warning (Bxxx, 0001): the peer has the instance. */
bool gw_status_ok(uint16_t status);

#endif /* SIREN_GW_SCU_H */
