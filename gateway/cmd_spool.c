/* cmd_spool.c - `siren spool`: what an operator sees of the spool of
 * `siren serve -c` and does with the instances it holds back (spool.h
 * says what the stages are). Safe while the service runs: it never calls
 * gw_spool_open (which removes unfinished files: a running service's
 * are not leftovers), it moves instances only by gw_spool_move (rename
 * of a complete file), and the service picks them up by looking again:
 * the processors list received/ every second, the forwarder outgoing/
 * at each poll (its lock on outgoing/ only keeps a second forwarder
 * away). NAME comes from the command line but is treated as untrusted:
 * it names a file in a stage, never a path. */
#include "gateway.h"
#include "sites.h"

#include "audit.h"

#include "config.h"
#include "dicom.h"
#include "spool.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char spool_help[] =
    "usage: siren spool (-c FILE | --spool DIR) COMMAND [ARGS...]\n\n"
    "Looks after the spool of `siren serve -c`, also while it runs:\n"
    "  received/    stored, waiting for a processor\n"
    "  outgoing/    de-identified, waiting for the archive\n"
    "  quarantine/  held back (with NAME.reason): NOT de-identified\n"
    "  failed/      refused for good by the archive (with NAME.reason)\n\n"
    "commands:\n"
    "  list [STAGE]   instances and bytes per stage; with a STAGE, one line\n"
    "                 per instance: name, size, age, site, SOP class and\n"
    "                 (quarantine, failed) the first line of its reason\n"
    "  show NAME      where NAME is, its reason, who sent it (what the\n"
    "                 receiver recorded) and its main header attributes\n"
    "  retry NAME... | retry --all quarantine|failed\n"
    "                 quarantine/ -> received/: processed again under the\n"
    "                 site's current policy (held again if the policy still\n"
    "                 says so); failed/ -> outgoing/: sent again\n"
    "  purge NAME... | purge --all STAGE   [--yes] [--force]\n"
    "                 deletes held instances (quarantine/, failed/) and\n"
    "                 their reasons, for good\n\n"
    "  -c, --config FILE  the gateway's configuration (its `spool`)\n"
    "  --spool DIR        the spool folder itself\n"
    "  --all STAGE        every instance of STAGE (as it is now)\n"
    "  --yes              purge more than one instance (several NAMEs,\n"
    "                     or --all); without it purge lists them and stops\n"
    "  --force            purge from received/ or outgoing/ as well:\n"
    "                     instances not delivered yet, lost for good.\n"
    "                     Stop the service first: one in hand still goes.\n\n"
    "NAME is a file name as `list STAGE` prints it: no folder, no '/'.\n"
    "retry and purge do nothing at all if a NAME is wrong.\n\n"
    "PHI: instances in received/ and quarantine/ are as the site sent\n"
    "them, NOT de-identified. `show` leaves the patient's name, ID and\n"
    "birth date out, but descriptions and the provenance may still\n"
    "identify a patient: handle its output like the instance.\n\n"
    "Run it as the user the service runs as (the spool is mode 0700).\n\n"
    "Exit status: 0 done (an unreadable instance is shown as such), 1\n"
    "something was not done: a NAME wrong or not found, a purge refused,\n"
    "a stage that could not be read, a file that could not be moved or\n"
    "removed (the others still are, unless a NAME was wrong), 2 usage.\n";

/* ---- stages ----------------------------------------------------------------------- */

typedef enum stage {
    STAGE_RECEIVED,
    STAGE_OUTGOING,
    STAGE_QUARANTINE,
    STAGE_FAILED,
    STAGE_COUNT,
} stage;

static const char *const stage_names[STAGE_COUNT] = {
    "received", "outgoing", "quarantine", "failed"};

static const char *stage_dir(const gw_spool *s, stage st)
{
    const char *dirs[STAGE_COUNT] = {s->received, s->outgoing, s->quarantine,
                                     s->failed};
    return dirs[st];
}

/* The stage named text (with or without a trailing '/'), or -1. */
static int stage_parse(const char *text)
{
    size_t len = strlen(text);
    if (len && text[len - 1] == '/')
        len--;
    for (int i = 0; i < STAGE_COUNT; i++)
        if (strlen(stage_names[i]) == len &&
            strncmp(stage_names[i], text, len) == 0)
            return i;
    return -1;
}

/* Held back for an operator, with a NAME.reason beside each instance. */
static bool stage_held(stage st)
{
    return st == STAGE_QUARANTINE || st == STAGE_FAILED;
}

/* Where retry puts an instance back into the flow: a quarantined one
 * before the processors (the policy decides again), a failed one
 * before the forwarder (it was de-identified already). */
static stage retry_target(stage st)
{
    return st == STAGE_QUARANTINE ? STAGE_RECEIVED : STAGE_OUTGOING;
}

/* As the receiver left it: the stored instance, not yet de-identified. */
static bool stage_raw(stage st)
{
    return st == STAGE_RECEIVED || st == STAGE_QUARANTINE;
}

/* ---- safe output ------------------------------------------------------------------ */

/* Code points a terminal would act on or that would disguise the text:
 * C0, DEL, C1 (U+009B is CSI for some terminals), bidirectional
 * controls. */
static bool unsafe_code_point(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp < 0xA0) ||
           (cp >= 0x200E && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* The length of the valid UTF-8 sequence at p (1 to 4) and its code
 * point, or 0 if the bytes are not one. */
static size_t utf8_decode(const unsigned char *p, uint32_t *cp)
{
    size_t len = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2
               : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (!len)
        return 0;
    uint32_t value = len == 1 ? p[0] : p[0] & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) /* also stops at the NUL */
            return 0;
        value = value << 6 | (p[i] & 0x3Fu);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (value < least[len] || value > 0x10FFFF ||
        (value >= 0xD800 && value <= 0xDFFF))
        return 0;
    *cp = value;
    return len;
}

/* text made safe to print into out: what a peer put in an instance (or a
 * reason quoting it) must not drive the operator's terminal. Unsafe code
 * points become \u{XXXX}, bytes that are not UTF-8 \xNN; valid UTF-8
 * stays (names with accents stay readable). Cut with "..." if it does
 * not fit. Returns out. */
static const char *safe_text(const char *text, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t used = 0;
    while (*p) {
        char piece[16];
        uint32_t cp = 0;
        size_t len = utf8_decode(p, &cp);
        size_t piece_len;
        if (!len) {
            piece_len = (size_t)snprintf(piece, sizeof piece, "\\x%02X", *p);
            len = 1;
        } else if (unsafe_code_point(cp)) {
            piece_len = (size_t)snprintf(piece, sizeof piece, "\\u{%04X}",
                                         (unsigned)cp);
        } else {
            memcpy(piece, p, len);
            piece_len = len;
        }
        if (used + piece_len + 4 > size) { /* room for "..." and NUL */
            snprintf(out + used, size - used, "...");
            return out;
        }
        memcpy(out + used, piece, piece_len);
        used += piece_len;
        p += len;
    }
    out[used] = '\0';
    return out;
}

/* "512 B", "12.3 KiB", "4.0 GiB". */
static const char *human_bytes(uint64_t bytes, char *out, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        snprintf(out, size, "%llu B", (unsigned long long)bytes);
        return out;
    }
    double value = (double)bytes / 1024;
    size_t unit = 0;
    for (; value >= 1024 && unit + 1 < sizeof units / sizeof *units; unit++)
        value /= 1024;
    snprintf(out, size, "%.1f %s", value, units[unit]);
    return out;
}

/* "45s", "12m05s", "3h20m", "2d04h". */
static const char *human_age(double seconds, char *out, size_t size)
{
    long long s = seconds > 0 ? (long long)seconds : 0;
    if (s < 60)
        snprintf(out, size, "%llds", s);
    else if (s < 3600)
        snprintf(out, size, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, size, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else
        snprintf(out, size, "%lldd%02lldh", s / 86400, s / 3600 % 24);
    return out;
}

/* ---- an instance in a stage ------------------------------------------------------- */

/* Why NAME cannot name an instance, or NULL. It names a file in one
 * folder of the spool: a '/' would reach elsewhere, a leading '.' the
 * service's unfinished files (and "." and ".."). */
static const char *name_problem(const char *name)
{
    size_t len = strlen(name);
    if (strchr(name, '/'))
        return "a NAME is a file name, without any '/' (as `siren spool "
               "list STAGE` prints it)";
    if (name[0] == '.' || strstr(name, ".."))
        return "not an instance name (starts with '.' or holds '..')";
    if (len > NAME_MAX)
        return "name too long";
    if (len <= 4 || strcmp(name + len - 4, ".dcm") != 0)
        return "not an instance name (instances are NAME.dcm; a "
               "NAME.dcm.reason goes with its instance)";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            return "not an instance name (control characters)";
    return NULL;
}

/* Whether dir holds name as a regular file. A symbolic link put there
 * is not an instance: following it would reach outside the spool. */
static bool holds(const char *dir, const char *name, struct stat *st)
{
    char path[PATH_MAX];
    struct stat unused;
    if (!st)
        st = &unused;
    return gw_spool_path(path, sizeof path, dir, "", name) &&
           lstat(path, st) == 0 && S_ISREG(st->st_mode);
}

/* The time since the instance arrived: from its name (the receiver's
 * clock), else from the file (named by hand). */
static double age_of(const char *name, const struct stat *st)
{
    double age = gw_spool_age_s(name);
    if (age == 0 && st)
        age = difftime(time(NULL), st->st_mtime);
    return age;
}

/* The file name of NAME's reason ("NAME.reason") into out. */
static bool reason_name(const char *name, char *out, size_t size)
{
    int n = snprintf(out, size, "%s.reason", name);
    return n >= 0 && (size_t)n < size;
}

/* The reason recorded beside a held instance into out (only its first
 * line if first_line, the last line break dropped); false if none. */
static bool read_reason(const char *dir, const char *name, bool first_line,
                        char *out, size_t size)
{
    char file[NAME_MAX + 16], path[PATH_MAX];
    out[0] = '\0';
    if (!reason_name(name, file, sizeof file) ||
        !gw_spool_path(path, sizeof path, dir, "", file))
        return false;
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t len = fread(out, 1, size - 1, f);
    fclose(f);
    out[len] = '\0';
    if (first_line)
        out[strcspn(out, "\r\n")] = '\0';
    len = strlen(out);
    while (len && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    return true;
}

/* PS3.6 keywords of the storage SOP classes seen most. dicom/ has the
 * UIDs of all (sop_classes.c, from sops.json) but not their names yet;
 * others are shown by UID. */
static const struct {
    const char *uid, *keyword;
} sop_keywords[] = {
    {"1.2.840.10008.5.1.4.1.1.1", "ComputedRadiographyImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.1.1", "DigitalXRayImageStorageForPresentation"},
    {"1.2.840.10008.5.1.4.1.1.1.1.1", "DigitalXRayImageStorageForProcessing"},
    {"1.2.840.10008.5.1.4.1.1.1.2",
     "DigitalMammographyXRayImageStorageForPresentation"},
    {"1.2.840.10008.5.1.4.1.1.1.2.1",
     "DigitalMammographyXRayImageStorageForProcessing"},
    {"1.2.840.10008.5.1.4.1.1.2", "CTImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.2.1", "EnhancedCTImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.3.1", "UltrasoundMultiFrameImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.4", "MRImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.4.1", "EnhancedMRImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.6.1", "UltrasoundImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.7", "SecondaryCaptureImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.7.2",
     "MultiFrameGrayscaleByteSecondaryCaptureImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.7.3",
     "MultiFrameGrayscaleWordSecondaryCaptureImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.7.4",
     "MultiFrameTrueColorSecondaryCaptureImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.9.1.1", "TwelveLeadECGWaveformStorage"},
    {"1.2.840.10008.5.1.4.1.1.11.1",
     "GrayscaleSoftcopyPresentationStateStorage"},
    {"1.2.840.10008.5.1.4.1.1.12.1", "XRayAngiographicImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.12.2", "XRayRadiofluoroscopicImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.13.1.3", "BreastTomosynthesisImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.20", "NuclearMedicineImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.66", "RawDataStorage"},
    {"1.2.840.10008.5.1.4.1.1.66.4", "SegmentationStorage"},
    {"1.2.840.10008.5.1.4.1.1.77.1.4", "VLPhotographicImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.77.1.6", "VLWholeSlideMicroscopyImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.88.11", "BasicTextSRStorage"},
    {"1.2.840.10008.5.1.4.1.1.88.22", "EnhancedSRStorage"},
    {"1.2.840.10008.5.1.4.1.1.88.33", "ComprehensiveSRStorage"},
    {"1.2.840.10008.5.1.4.1.1.88.67", "XRayRadiationDoseSRStorage"},
    {"1.2.840.10008.5.1.4.1.1.104.1", "EncapsulatedPDFStorage"},
    {"1.2.840.10008.5.1.4.1.1.128", "PositronEmissionTomographyImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.130", "EnhancedPETImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.481.1", "RTImageStorage"},
    {"1.2.840.10008.5.1.4.1.1.481.2", "RTDoseStorage"},
    {"1.2.840.10008.5.1.4.1.1.481.3", "RTStructureSetStorage"},
    {"1.2.840.10008.5.1.4.1.1.481.5", "RTPlanStorage"},
};

static const char *sop_keyword(const char *uid)
{
    for (size_t i = 0; i < sizeof sop_keywords / sizeof *sop_keywords; i++)
        if (strcmp(sop_keywords[i].uid, uid) == 0)
            return sop_keywords[i].keyword;
    return NULL;
}

/* The string value of tag in ds, trimmed; "" if absent. */
static void string_of(const dcm_dataset *ds, uint32_t tag, char *out,
                      size_t size)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    char *value = el ? dcm_element_get_string(el, NULL) : NULL;
    snprintf(out, size, "%s", value ? value : "");
    free(value);
}

/* The SOP Class UID: the file meta's, else the data set's. */
static void sop_class_of(const dcm_file *f, char *out, size_t size)
{
    string_of(dcm_file_meta(f), DCM_TAG_MEDIA_SOP_CLASS_UID, out, size);
    if (!out[0])
        string_of(dcm_file_dataset(f), DCM_TAG_SOP_CLASS_UID, out, size);
}

/* "CTImageStorage", or the UID itself, made safe; "?" if none. */
static const char *sop_class_label(const char *uid, char *out, size_t size)
{
    const char *keyword = sop_keyword(uid);
    if (keyword)
        snprintf(out, size, "%s", keyword);
    else if (uid[0])
        safe_text(uid, out, size);
    else
        snprintf(out, size, "?");
    return out;
}

/* ---- opening the spool ------------------------------------------------------------ */

typedef enum command { CMD_LIST, CMD_SHOW, CMD_RETRY, CMD_PURGE } command;

typedef struct spool_options {
    const char *config, *spool_dir;
    command cmd;
    int all;          /* --all STAGE, or -1 */
    bool yes, force;
    char **args;      /* after the command; points into argv */
    size_t arg_count;
} spool_options;

/* The spool folder from -c (the service's own setting) or --spool. */
/* The service's audit file (from -c), where releases and deletions of
 * held instances are recorded; "" when there is none. */
static char audit_file[PATH_MAX];

/* Who did it, for the audit trail. */
static const char *operator_name(void)
{
    const struct passwd *pw = getpwuid(getuid());
    return pw ? pw->pw_name : "unknown";
}

static bool spool_root(const spool_options *o, char *root, size_t size)
{
    if (o->spool_dir) {
        snprintf(root, size, "%s", o->spool_dir);
        return true;
    }
    gw_config *c = calloc(1, sizeof *c);
    pol_diags diags = {0};
    int rc = c ? gw_config_load(o->config, c, &diags) : -1;
    gw_print_diags(&diags, true);
    pol_diags_free(&diags);
    bool ok = rc == 0 && c->spool[0];
    if (rc == 0 && !c->spool[0])
        fprintf(stderr, "siren spool: %s sets no spool\n", o->config);
    if (ok)
        snprintf(root, size, "%s", c->spool);
    if (ok && c->audit_file[0] && strcmp(c->audit_file, "-") != 0)
        snprintf(audit_file, sizeof audit_file, "%s", c->audit_file);
    free(c);
    return ok;
}

/* The spool's folders, which must be there: siren serve makes them, this
 * does not (a wrong path must not become a new, empty spool). */
static bool open_spool(const spool_options *o, gw_spool *s)
{
    char root[PATH_MAX];
    dcm_error err = {0};
    if (!spool_root(o, root, sizeof root))
        return false;
    if (gw_spool_paths(s, root, &err) < 0) {
        fprintf(stderr, "siren spool: %s: %s\n", root, err.message);
        return false;
    }
    for (int st = 0; st < STAGE_COUNT; st++) {
        const char *dir = stage_dir(s, (stage)st);
        struct stat info;
        if (stat(dir, &info) < 0 || !S_ISDIR(info.st_mode)) {
            fprintf(stderr, "siren spool: %s is not a SIREN spool: %s: %s "
                    "(siren serve -c makes the stage folders at start)\n",
                    root, dir, errno == EACCES ? strerror(errno)
                                               : "no such folder");
            return false;
        }
        if (access(dir, R_OK | X_OK) < 0) {
            fprintf(stderr, "siren spool: %s: %s: run as the user siren "
                    "serve runs as\n", dir, strerror(errno));
            return false;
        }
    }
    return true;
}

/* ---- list ------------------------------------------------------------------------- */

static int list_summary(const gw_spool *s)
{
    int status = GW_EXIT_OK;
    printf("%-11s %9s %14s\n", "stage", "instances", "bytes");
    for (int st = 0; st < STAGE_COUNT; st++) {
        const char *dir = stage_dir(s, (stage)st);
        char **names;
        size_t count;
        dcm_error err = {0};
        if (gw_spool_list(dir, &names, &count, &err) < 0) {
            fprintf(stderr, "siren spool: %s\n", err.message);
            status = GW_EXIT_FAILURE;
            continue;
        }
        uint64_t bytes = 0;
        size_t instances = 0;
        struct stat info;
        for (size_t i = 0; i < count; i++)
            if (holds(dir, names[i], &info)) {
                bytes += (uint64_t)info.st_size;
                instances++;
            }
        char human[32];
        printf("%-11s %9zu %14llu  %s\n", stage_names[st], instances,
               (unsigned long long)bytes,
               human_bytes(bytes, human, sizeof human));
        gw_spool_names_free(names, count);
    }
    return status;
}

/* One line of `list STAGE`: the columns that mean something there.
 * False if name is not (or no longer) an instance there. */
static bool list_line(const gw_spool *s, stage st, const char *name,
                      uint64_t *bytes)
{
    const char *dir = stage_dir(s, st);
    char path[PATH_MAX], size[32], age[32], site[GW_NAME_MAX] = "?";
    char uid[DCM_UID_MAX + 1] = "", label[160] = "(unreadable)";
    char reason[1024], safe[1024];
    struct stat info;
    if (!holds(dir, name, &info) ||
        !gw_spool_path(path, sizeof path, dir, "", name))
        return false; /* gone meanwhile (moved on), or not a file */
    *bytes += (uint64_t)info.st_size;
    dcm_error err = {0};
    dcm_file *f = dcm_file_open(path, NULL, &err);
    if (f) {
        sop_class_of(f, uid, sizeof uid);
        if (!gw_spool_site_of(f, site, sizeof site))
            snprintf(site, sizeof site, "(plain)");
        sop_class_label(uid, label, sizeof label);
        dcm_file_free(f);
    }
    printf("%-32s %10s %8s", safe_text(name, safe, sizeof safe),
           human_bytes((uint64_t)info.st_size, size, sizeof size),
           human_age(age_of(name, &info), age, sizeof age));
    if (stage_raw(st))
        printf(" %-12s", safe_text(site, safe, sizeof safe));
    if (!stage_held(st))
        printf(" %s\n", label);
    else
        printf(" %-36s %s\n", label,
               read_reason(dir, name, true, reason, sizeof reason)
                   ? safe_text(reason, safe, sizeof safe)
                   : "(no reason recorded)");
    return true;
}

static int list_stage(const gw_spool *s, stage st)
{
    char **names;
    size_t count;
    dcm_error err = {0};
    if (gw_spool_list(stage_dir(s, st), &names, &count, &err) < 0) {
        fprintf(stderr, "siren spool: %s\n", err.message);
        return GW_EXIT_FAILURE;
    }
    if (count == 0) {
        printf("%s/: no instances\n", stage_names[st]);
        gw_spool_names_free(names, count);
        return GW_EXIT_OK;
    }
    printf("%-32s %10s %8s", "NAME", "SIZE", "AGE");
    if (stage_raw(st))
        printf(" %-12s", "SITE");
    if (stage_held(st))
        printf(" %-36s REASON\n", "SOP CLASS");
    else
        printf(" SOP CLASS\n");
    uint64_t bytes = 0;
    size_t instances = 0;
    for (size_t i = 0; i < count; i++)
        instances += list_line(s, st, names[i], &bytes);
    char human[32];
    printf("%zu instance%s in %s/, %s\n", instances,
           instances == 1 ? "" : "s",
           stage_names[st], human_bytes(bytes, human, sizeof human));
    gw_spool_names_free(names, count);
    return GW_EXIT_OK;
}

/* ---- show ------------------------------------------------------------------------- */

/* A JSON string at *p as gw_json_string writes it (escapes: \" \\
 * and \u00XX for control bytes, which stay escaped here: safe_text
 * would escape them anyway). Into out, cut to size; false if *p is not
 * one. */
static bool json_string(const char **p, char *out, size_t size)
{
    const char *at = *p;
    size_t n = 0;
    if (*at++ != '"')
        return false;
    for (; *at && *at != '"'; at++) {
        if (*at == '\\' && (at[1] == '"' || at[1] == '\\' || at[1] == '/'))
            at++;
        if (n + 1 < size)
            out[n++] = *at;
    }
    out[n] = '\0';
    if (*at != '"')
        return false;
    *p = at + 1;
    return true;
}

/* The provenance, a flat JSON object of strings as the receiver writes
 * it, one "key  value" line each; the raw text if it is not that. */
static void show_provenance(const char *json)
{
    char key[64], value[1024], safe_key[80], safe[1200];
    const char *p = json;
    bool ok = *p++ == '{';
    while (ok && *p != '}') {
        ok = json_string(&p, key, sizeof key) && *p++ == ':' &&
             json_string(&p, value, sizeof value) && (*p == '}' || *p++ == ',');
        if (ok)
            printf("  %-18s %s\n", safe_text(key, safe_key, sizeof safe_key),
                   safe_text(value, safe, sizeof safe));
    }
    if (!ok)
        printf("  (not as the receiver writes it) %s\n",
               safe_text(json, safe, sizeof safe));
}

/* Attributes that say what an instance is, without saying who the
 * patient is (no name, ID, birth date: `siren dump` shows everything). */
static const uint32_t shown_tags[] = {
    DCM_TAG_SOP_CLASS_UID,      DCM_TAG_SOP_INSTANCE_UID,
    DCM_TAG(0x0008, 0x0060), /* Modality */
    DCM_TAG(0x0008, 0x0020), /* Study Date */
    DCM_TAG(0x0008, 0x0030), /* Study Time */
    DCM_TAG(0x0008, 0x1030), /* Study Description */
    DCM_TAG(0x0008, 0x103E), /* Series Description */
    DCM_TAG(0x0020, 0x000D), /* Study Instance UID */
    DCM_TAG(0x0020, 0x000E), /* Series Instance UID */
    DCM_TAG(0x0020, 0x0011), /* Series Number */
    DCM_TAG(0x0020, 0x0013), /* Instance Number */
    DCM_TAG(0x0018, 0x0015), /* Body Part Examined */
    DCM_TAG(0x0008, 0x0008), /* Image Type */
    DCM_TAG(0x0008, 0x0070), /* Manufacturer */
    DCM_TAG(0x0008, 0x1090), /* Manufacturer's Model Name */
    DCM_TAG(0x0028, 0x0010), /* Rows */
    DCM_TAG(0x0028, 0x0011), /* Columns */
    DCM_TAG(0x0028, 0x0008), /* Number of Frames */
    DCM_TAG(0x0028, 0x0301), /* Burned In Annotation */
    DCM_TAG(0x0012, 0x0062), /* Patient Identity Removed */
    DCM_TAG(0x0012, 0x0063), /* De-identification Method */
    DCM_TAG_SPECIFIC_CHARACTER_SET,
};

/* An element's value as text: strings decoded to UTF-8, numbers. */
static bool value_text(const dcm_dataset *ds, const dcm_element *el,
                       char *out, size_t size)
{
    dcm_vr vr = dcm_element_vr(el);
    if (dcm_element_kind_of(el) == DCM_KIND_VALUE && dcm_vr_is_string(vr)) {
        char *text = dcm_dataset_get_utf8(ds, dcm_element_tag(el), NULL);
        if (!text)
            return false;
        snprintf(out, size, "%s", text);
        free(text);
        return true;
    }
    size_t used = 0, count = dcm_element_value_count(el);
    out[0] = '\0';
    for (size_t i = 0; i < count && i < 8 && used + 24 < size; i++) {
        int64_t number;
        if (dcm_element_get_int(el, i, &number, NULL) < 0)
            return false;
        used += (size_t)snprintf(out + used, size - used, "%s%lld",
                                 i ? "\\" : "", (long long)number);
    }
    return count > 0;
}

static void show_attribute(const dcm_dataset *ds, uint32_t tag)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    char value[1024], safe[1200], label[160];
    if (!el || !value_text(ds, el, value, sizeof value))
        return;
    const dcm_dict_entry *entry = dcm_dict_find(tag);
    printf("  %-28s %s", entry ? entry->keyword : "?",
           safe_text(value, safe, sizeof safe));
    if (tag == DCM_TAG_SOP_CLASS_UID || tag == DCM_TAG_MEDIA_SOP_CLASS_UID) {
        const char *keyword = sop_keyword(value);
        if (keyword)
            printf(" (%s)", keyword);
    } else if (tag == DCM_TAG_TRANSFER_SYNTAX_UID) {
        const dcm_ts *ts = dcm_ts_find(value);
        if (ts)
            printf(" (%s)", safe_text(ts->name, label, sizeof label));
    }
    putchar('\n');
}

static void show_contents(const char *path, stage st)
{
    dcm_error err = {0};
    dcm_file *f = dcm_file_open(path, NULL, &err);
    if (!f) {
        char safe[600];
        printf("unreadable: %s", safe_text(err.message, safe, sizeof safe));
        if (err.offset >= 0)
            printf(" (at byte offset %lld)", (long long)err.offset);
        putchar('\n');
        return;
    }
    char json[4200];
    if (gw_spool_provenance(f, json, sizeof json)) {
        printf("provenance (recorded by the receiver):\n");
        show_provenance(json);
    } else if (stage_raw(st)) {
        printf("provenance: none recorded (put there by hand?)\n");
    }
    printf("header:\n");
    show_attribute(dcm_file_meta(f), DCM_TAG_TRANSFER_SYNTAX_UID);
    show_attribute(dcm_file_meta(f), DCM_TAG_SOURCE_AE_TITLE);
    for (size_t i = 0; i < sizeof shown_tags / sizeof *shown_tags; i++)
        show_attribute(dcm_file_dataset(f), shown_tags[i]);
    dcm_file_free(f);
}

static void show_in_stage(const gw_spool *s, stage st, const char *name)
{
    const char *dir = stage_dir(s, st);
    char path[PATH_MAX], size[32], age[32], reason[4096], safe[4200];
    struct stat info;
    if (!holds(dir, name, &info) ||
        !gw_spool_path(path, sizeof path, dir, "", name))
        return;
    printf("%s/%s\n", stage_names[st], safe_text(name, safe, sizeof safe));
    printf("  %-10s %s\n", "path", path);
    printf("  %-10s %s (%llu bytes)\n", "size",
           human_bytes((uint64_t)info.st_size, size, sizeof size),
           (unsigned long long)info.st_size);
    printf("  %-10s %s\n", "age", human_age(age_of(name, &info), age,
                                           sizeof age));
    if (stage_held(st)) {
        if (!read_reason(dir, name, false, reason, sizeof reason))
            printf("  %-10s (no reason recorded)\n", "reason");
        for (char *line = reason, *next; *line; line = next) {
            next = line + strcspn(line, "\n");
            if (*next)
                *next++ = '\0';
            printf("  %-10s %s\n", line == reason ? "reason" : "",
                   safe_text(line, safe, sizeof safe));
        }
    }
    if (stage_raw(st))
        printf("  NOT de-identified: the instance as the site sent it; "
               "what follows may identify the patient\n");
    show_contents(path, st);
}

static int show(const gw_spool *s, const char *name)
{
    const char *problem = name_problem(name);
    char safe[600];
    if (problem) {
        fprintf(stderr, "siren spool: %s: %s\n",
                safe_text(name, safe, sizeof safe), problem);
        return GW_EXIT_FAILURE;
    }
    /* After a crash an instance may be in two stages: show both. */
    size_t found = 0;
    for (int st = 0; st < STAGE_COUNT; st++)
        if (holds(stage_dir(s, (stage)st), name, NULL)) {
            if (found++)
                putchar('\n');
            show_in_stage(s, (stage)st, name);
        }
    if (!found) {
        fprintf(stderr, "siren spool: %s: no such instance in the spool "
                "(`siren spool list STAGE` shows the names)\n",
                safe_text(name, safe, sizeof safe));
        return GW_EXIT_FAILURE;
    }
    return GW_EXIT_OK;
}

/* ---- what retry and purge work on ------------------------------------------------- */

typedef struct target {
    stage st;
    char *name; /* owned */
} target;

typedef struct targets {
    target *items;
    size_t count, capacity;
} targets;

static void targets_free(targets *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->items[i].name);
    free(t->items);
}

static bool targets_has(const targets *t, stage st, const char *name)
{
    for (size_t i = 0; i < t->count; i++)
        if (t->items[i].st == st && strcmp(t->items[i].name, name) == 0)
            return true;
    return false;
}

static void targets_add(targets *t, stage st, const char *name)
{
    if (t->count == t->capacity) {
        size_t capacity = t->capacity ? t->capacity * 2 : 64;
        target *more = realloc(t->items, capacity * sizeof *more);
        if (!more) {
            perror("siren spool");
            exit(GW_EXIT_FAILURE);
        }
        t->items = more;
        t->capacity = capacity;
    }
    char *copy = strdup(name);
    if (!copy) {
        perror("siren spool");
        exit(GW_EXIT_FAILURE);
    }
    t->items[t->count++] = (target){st, copy};
}

/* Every instance of a stage as it is now; false if unreadable. */
static bool add_stage(targets *t, const gw_spool *s, stage st)
{
    char **names;
    size_t count;
    dcm_error err = {0};
    if (gw_spool_list(stage_dir(s, st), &names, &count, &err) < 0) {
        fprintf(stderr, "siren spool: %s\n", err.message);
        return false;
    }
    for (size_t i = 0; i < count; i++)
        if (holds(stage_dir(s, st), names[i], NULL))
            targets_add(t, st, names[i]);
    gw_spool_names_free(names, count);
    return true;
}

/* The stages among allowed that hold name; false (after saying why) if
 * the name is wrong or no allowed stage holds it. */
static bool add_name(targets *t, const gw_spool *s, const char *name,
                     const bool allowed[STAGE_COUNT], bool purging)
{
    char safe[600];
    const char *problem = name_problem(name);
    if (problem) {
        fprintf(stderr, "siren spool: %s: %s\n",
                safe_text(name, safe, sizeof safe), problem);
        return false;
    }
    int elsewhere = -1;
    size_t found = 0;
    for (int st = 0; st < STAGE_COUNT; st++) {
        if (!holds(stage_dir(s, (stage)st), name, NULL))
            continue;
        if (allowed[st]) {
            if (!targets_has(t, (stage)st, name)) /* a NAME given twice */
                targets_add(t, (stage)st, name);
            found++;
        } else if (elsewhere < 0) {
            elsewhere = st;
        }
    }
    if (found)
        return true;
    name = safe_text(name, safe, sizeof safe);
    if (elsewhere < 0)
        fprintf(stderr, "siren spool: %s: no such instance in the spool "
                "(`siren spool list STAGE` shows the names)\n", name);
    else if (purging)
        fprintf(stderr, "siren spool: %s is in %s/, not delivered yet: not "
                "purged (--force deletes it anyway; stop the service "
                "first)\n", name, stage_names[elsewhere]);
    else
        fprintf(stderr, "siren spool: %s is in %s/, on its way already: "
                "nothing to retry\n", name, stage_names[elsewhere]);
    return false;
}

/* ---- retry ------------------------------------------------------------------------ */

/* Moves a held instance back into the flow. Its reason goes out of the
 * way first (renamed to a hidden name) rather than after: the service
 * may take the instance as soon as it has moved, hold it back again and
 * write a new reason, which must not be the one we then remove. A crash
 * in between leaves the instance where it was, its reason lost (hidden
 * names are removed when the service starts). */
static bool retry_one(const gw_spool *s, stage from, const char *name)
{
    stage to = retry_target(from);
    const char *from_dir = stage_dir(s, from), *to_dir = stage_dir(s, to);
    char file[NAME_MAX + 16], reason[PATH_MAX], hidden[PATH_MAX], safe[600];
    const char *shown = safe_text(name, safe, sizeof safe);
    if (holds(to_dir, name, NULL)) {
        fprintf(stderr, "siren spool: %s is in %s/ already: the copy in %s/ "
                "is not moved (purge it once the other has gone through)\n",
                shown, stage_names[to], stage_names[from]);
        return false;
    }
    if (!reason_name(name, file, sizeof file) ||
        !gw_spool_path(reason, sizeof reason, from_dir, "", file) ||
        !gw_spool_path(hidden, sizeof hidden, from_dir, ".retrying-", file)) {
        fprintf(stderr, "siren spool: %s: path too long\n", shown);
        return false;
    }
    bool had_reason = rename(reason, hidden) == 0;
    if (!had_reason && errno != ENOENT) {
        fprintf(stderr, "siren spool: cannot move %s aside: %s\n", reason,
                strerror(errno));
        return false;
    }
    dcm_error err = {0};
    if (gw_spool_move(from_dir, to_dir, name, &err) < 0) {
        fprintf(stderr, "siren spool: %s\n", err.message);
        if (had_reason && rename(hidden, reason) < 0)
            fprintf(stderr, "siren spool: its reason is in %s: %s\n", hidden,
                    strerror(errno));
        return false;
    }
    if (had_reason && (unlink(hidden) < 0 || gw_sync_dir(from_dir) < 0))
        fprintf(stderr, "siren spool: %s: %s (removed at the service's "
                "next start)\n", hidden, strerror(errno));
    printf("%s: %s/ -> %s/\n", shown, stage_names[from], stage_names[to]);
    gw_audit("spool.retried", "file", name, "from", stage_names[from], "to",
             stage_names[to], "operator", operator_name(), NULL);
    return true;
}

static int retry(const gw_spool *s, const spool_options *o)
{
    const bool allowed[STAGE_COUNT] = {[STAGE_QUARANTINE] = true,
                                       [STAGE_FAILED] = true};
    targets t = {0};
    bool ok = true;
    if (o->all >= 0)
        ok = add_stage(&t, s, (stage)o->all);
    for (size_t i = 0; i < o->arg_count; i++)
        ok = add_name(&t, s, o->args[i], allowed, false) && ok;
    if (!ok) {
        fprintf(stderr, "siren spool: nothing retried\n");
        targets_free(&t);
        return GW_EXIT_FAILURE;
    }
    if (t.count == 0)
        printf("%s/: no instances, nothing to retry\n", stage_names[o->all]);
    size_t moved = 0;
    for (size_t i = 0; i < t.count; i++)
        moved += retry_one(s, t.items[i].st, t.items[i].name);
    if (t.count > 1 || (o->all >= 0 && t.count))
        printf("%zu of %zu instance%s moved back\n", moved, t.count,
               t.count == 1 ? "" : "s");
    targets_free(&t);
    return moved == t.count ? GW_EXIT_OK : GW_EXIT_FAILURE;
}

/* ---- purge ------------------------------------------------------------------------ */

/* The instance first, then its reason: a crash in between leaves a
 * reason without an instance (not listed), never an instance held
 * without its reason. */
static bool purge_one(const gw_spool *s, stage st, const char *name)
{
    const char *dir = stage_dir(s, st);
    char reason[NAME_MAX + 16], safe[600];
    dcm_error err = {0};
    if (gw_spool_remove(dir, name, &err) < 0 ||
        (stage_held(st) && reason_name(name, reason, sizeof reason) &&
         gw_spool_remove(dir, reason, &err) < 0)) {
        fprintf(stderr, "siren spool: %s\n",
                safe_text(err.message, safe, sizeof safe));
        return false;
    }
    printf("deleted %s/%s\n", stage_names[st],
           safe_text(name, safe, sizeof safe));
    gw_audit("spool.purged", "file", name, "stage", stage_names[st],
             "operator", operator_name(), NULL);
    return true;
}

static int purge(const gw_spool *s, const spool_options *o)
{
    bool allowed[STAGE_COUNT] = {[STAGE_QUARANTINE] = true,
                                 [STAGE_FAILED] = true};
    allowed[STAGE_RECEIVED] = allowed[STAGE_OUTGOING] = o->force;
    if (o->all >= 0 && !allowed[o->all]) {
        fprintf(stderr, "siren spool: %s/ holds instances not delivered "
                "yet: purge --all %s needs --force (stop the service "
                "first)\n", stage_names[o->all], stage_names[o->all]);
        return GW_EXIT_FAILURE;
    }
    targets t = {0};
    bool ok = true;
    if (o->all >= 0)
        ok = add_stage(&t, s, (stage)o->all);
    for (size_t i = 0; i < o->arg_count; i++)
        ok = add_name(&t, s, o->args[i], allowed, true) && ok;
    if (!ok) {
        fprintf(stderr, "siren spool: nothing purged\n");
        targets_free(&t);
        return GW_EXIT_FAILURE;
    }
    /* --all deletes what is there when it runs, which may be more than
     * the operator last looked at: it always asks. */
    if ((t.count > 1 || (o->all >= 0 && t.count > 0)) && !o->yes) {
        char safe[600];
        for (size_t i = 0; i < t.count; i++)
            printf("would delete %s/%s\n", stage_names[t.items[i].st],
                   safe_text(t.items[i].name, safe, sizeof safe));
        fprintf(stderr, "siren spool: %zu instance%s: nothing purged; run "
                "again with --yes to delete %s for good\n", t.count,
                t.count == 1 ? "" : "s", t.count == 1 ? "it" : "them");
        targets_free(&t);
        return GW_EXIT_FAILURE;
    }
    if (t.count == 0)
        printf("%s/: no instances, nothing to purge\n", stage_names[o->all]);
    size_t deleted = 0;
    for (size_t i = 0; i < t.count; i++)
        deleted += purge_one(s, t.items[i].st, t.items[i].name);
    if (t.count > 1 || (o->all >= 0 && t.count))
        printf("%zu of %zu instance%s deleted\n", deleted, t.count,
               t.count == 1 ? "" : "s");
    targets_free(&t);
    return deleted == t.count ? GW_EXIT_OK : GW_EXIT_FAILURE;
}

/* ---- the command line ------------------------------------------------------------- */

static int usage_error(const char *problem, const char *detail)
{
    char safe[300];
    fprintf(stderr, "siren spool: %s%s%s\n\n%s", problem, detail ? ": " : "",
            detail ? safe_text(detail, safe, sizeof safe) : "", spool_help);
    return GW_EXIT_USAGE;
}

/* Options anywhere (`siren spool list -c FILE` reads as well); the
 * first other word is the command, the rest its arguments. args must
 * hold argc pointers. -1 after a usage message, 1 after the help. */
static int parse_words(int argc, char **argv, spool_options *o, char **args,
                       size_t *count)
{
    bool options_end = false;
    for (int i = 1; i < argc; i++) {
        const char *word = argv[i];
        bool has_value = i + 1 < argc;
        if (options_end || word[0] != '-' || word[1] == '\0') {
            args[(*count)++] = argv[i];
        } else if (strcmp(word, "--") == 0) {
            options_end = true;
        } else if (strcmp(word, "-h") == 0 || strcmp(word, "--help") == 0) {
            fputs(spool_help, stdout);
            return 1;
        } else if ((strcmp(word, "-c") == 0 ||
                    strcmp(word, "--config") == 0) && has_value) {
            o->config = argv[++i];
        } else if (strcmp(word, "--spool") == 0 && has_value) {
            o->spool_dir = argv[++i];
        } else if (strcmp(word, "--all") == 0 && has_value) {
            if ((o->all = stage_parse(argv[++i])) < 0)
                return usage_error("--all takes a stage (received, outgoing,"
                                   " quarantine, failed), not", argv[i]), -1;
        } else if (strcmp(word, "--yes") == 0) {
            o->yes = true;
        } else if (strcmp(word, "--force") == 0) {
            o->force = true;
        } else {
            return usage_error("unknown option or missing value", word), -1;
        }
    }
    return 0;
}

/* What each command takes; NULL if o is right. */
static const char *check_command(const spool_options *o)
{
    bool names = o->arg_count > 0, all = o->all >= 0;
    if (!o->config == !o->spool_dir)
        return "give the spool with either -c FILE or --spool DIR";
    if (o->cmd != CMD_PURGE && (o->yes || o->force))
        return "--yes and --force are for purge";
    if ((o->cmd == CMD_LIST || o->cmd == CMD_SHOW) && all)
        return "--all is for retry and purge";
    switch (o->cmd) {
    case CMD_LIST:
        return o->arg_count > 1 ? "list takes at most one STAGE"
               : names && stage_parse(o->args[0]) < 0
                   ? "list takes a stage: received, outgoing, quarantine "
                     "or failed"
                   : NULL;
    case CMD_SHOW:
        return o->arg_count != 1 ? "show takes one NAME" : NULL;
    case CMD_RETRY:
        if (all && !stage_held((stage)o->all))
            return "retry --all takes quarantine or failed (the other "
                   "stages move on by themselves)";
        /* fall through */
    case CMD_PURGE:
        return names == all ? "give NAME... or --all STAGE (not both)"
                            : NULL;
    }
    return NULL;
}

static int parse_options(int argc, char **argv, spool_options *o,
                         char **words)
{
    *o = (spool_options){.all = -1};
    size_t count = 0;
    int rc = parse_words(argc, argv, o, words, &count);
    if (rc)
        return rc;
    if (count == 0)
        return usage_error("no command given", NULL), -1;
    static const char *const commands[] = {"list", "show", "retry", "purge"};
    size_t which = 0;
    while (which < 4 && strcmp(words[0], commands[which]) != 0)
        which++;
    if (which == 4)
        return usage_error("unknown command", words[0]), -1;
    o->cmd = (command)which;
    o->args = words + 1;
    o->arg_count = count - 1;
    const char *problem = check_command(o);
    if (problem)
        return usage_error(problem, NULL), -1;
    return 0;
}

int gw_cmd_spool(int argc, char **argv)
{
    char **words = calloc((size_t)argc + 1, sizeof *words);
    if (!words) {
        perror("siren spool");
        return GW_EXIT_FAILURE;
    }
    spool_options o;
    int rc = parse_options(argc, argv, &o, words);
    gw_spool s;
    int status = rc < 0   ? GW_EXIT_USAGE
                 : rc > 0 ? GW_EXIT_OK
                 : !open_spool(&o, &s) ? GW_EXIT_FAILURE
                 : -1;
    /* Releasing or deleting held instances is on the record. */
    dcm_error err = {0};
    if (status < 0 && (o.cmd == CMD_RETRY || o.cmd == CMD_PURGE) &&
        audit_file[0] && gw_audit_start(audit_file, &err) < 0) {
        fprintf(stderr, "siren spool: %s\n", err.message);
        status = GW_EXIT_FAILURE;
    }
    if (status < 0)
        status = o.cmd == CMD_LIST && o.arg_count
                     ? list_stage(&s, (stage)stage_parse(o.args[0]))
                 : o.cmd == CMD_LIST  ? list_summary(&s)
                 : o.cmd == CMD_SHOW  ? show(&s, o.args[0])
                 : o.cmd == CMD_RETRY ? retry(&s, &o)
                                      : purge(&s, &o);
    gw_audit_stop();
    free(words);
    return status;
}
