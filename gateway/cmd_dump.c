/* cmd_dump.c - `siren dump FILE...`: a dcmdump-like listing. A file that
 * cannot be read is reported as `FILE: offset N: message` and makes the
 * exit status 1; the other files are still listed. */
#include "gateway.h"

#include "dicom.h"

#include <stdio.h>
#include <string.h>

static const char dump_help[] =
    "usage: siren dump [-q] FILE...\n\n"
    "Prints each DICOM file element by element: tag, VR, value (text decoded\n"
    "to UTF-8, long values shortened), length, value multiplicity, keyword;\n"
    "sequence items indented.\n\n"
    "  -q, --quiet   do not report tolerated oddities (odd lengths, ...)\n\n"
    "Exit status: 0 all files read, 1 a file could not be read, 2 usage.\n";

static void print_warning(void *ctx, int64_t offset, const char *message)
{
    const char *path = ctx;
    fprintf(stderr, "%s: offset %lld: warning: %s\n", path, (long long)offset,
            message);
}

static int dump_one(const char *path, bool quiet)
{
    dcm_read_options options = {
        .warn = quiet ? NULL : print_warning,
        .warn_ctx = (void *)path,
    };
    dcm_error err = {0};
    dcm_file *file = dcm_file_open(path, &options, &err);
    if (!file) {
        if (err.offset >= 0)
            fprintf(stderr, "%s: offset %lld: %s\n", path,
                    (long long)err.offset, err.message);
        else
            fprintf(stderr, "%s: %s\n", path, err.message);
        return GW_EXIT_FAILURE;
    }
    int rc = dcm_dump_file(file, stdout, &err);
    dcm_file_free(file);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", path, err.message);
        return GW_EXIT_FAILURE;
    }
    return GW_EXIT_OK;
}

int gw_cmd_dump(int argc, char **argv)
{
    bool quiet = false;
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "-q") == 0 || strcmp(argv[first], "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(argv[first], "--help") == 0 ||
                   strcmp(argv[first], "-h") == 0) {
            fputs(dump_help, stdout);
            return GW_EXIT_OK;
        } else if (strcmp(argv[first], "--") == 0) {
            first++;
            break;
        } else {
            fprintf(stderr, "siren dump: unknown option '%s'\n\n%s",
                    argv[first], dump_help);
            return GW_EXIT_USAGE;
        }
    }
    if (first >= argc) {
        fputs(dump_help, stderr);
        return GW_EXIT_USAGE;
    }
    int status = GW_EXIT_OK;
    for (int i = first; i < argc; i++)
        if (dump_one(argv[i], quiet) != GW_EXIT_OK)
            status = GW_EXIT_FAILURE;
    return status;
}
