/* cmd_policy.c - "siren policy check|explain": what a compliance officer
 * runs before a policy goes live. */
#include "gateway.h"
#include "sites.h"

#include "anon.h"
#include "policy.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: siren policy check [--strict] FILE\n"
            "       siren policy explain FILE [ATTRIBUTE...]\n\n"
            "check: compiles the policy and prints its errors and warnings\n"
            "  as file:line:column: message; exit 0 if it compiles (with\n"
            "  --strict, only if there is no warning either), 1 if not.\n"
            "explain: for every attribute the policy and PS3.15 Table E.1-1\n"
            "  know (or the ATTRIBUTEs given: keywords or (gggg,eeee)), the\n"
            "  action and where it comes from: a table row and option, or a\n"
            "  policy line.\n");
}

static int check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"strict", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool strict = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 's') {
            strict = true;
        } else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? GW_EXIT_OK : GW_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return GW_EXIT_USAGE;
    }
    size_t warnings;
    pol_policy *p = gw_policy_load(argv[optind], true, &warnings);
    if (!p)
        return GW_EXIT_FAILURE;
    printf("%s: policy \"%s\" version %u, sha256:%s%s%s, %zu warning%s\n",
           argv[optind], pol_policy_name(p), pol_policy_version(p),
           pol_policy_hash(p), pol_policy_key_id(p)[0] ? ", key " : "",
           pol_policy_key_id(p), warnings, warnings == 1 ? "" : "s");
    pol_policy_unref(p);
    return strict && warnings ? GW_EXIT_FAILURE : GW_EXIT_OK;
}

static int explain(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? GW_EXIT_USAGE : GW_EXIT_OK;
    }
    size_t warnings;
    pol_policy *p = gw_policy_load(argv[1], true, &warnings);
    if (!p)
        return GW_EXIT_FAILURE;
    int rc = anon_explain(p, (const char *const *)argv + 2,
                          (size_t)(argc - 2), stdout)
                 ? GW_EXIT_FAILURE
                 : GW_EXIT_OK;
    pol_policy_unref(p);
    return rc;
}

int gw_cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return check(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "explain") == 0)
        return explain(argc - 1, argv + 1);
    usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    return argc >= 2 && strcmp(argv[1], "--help") == 0 ? GW_EXIT_OK
                                                         : GW_EXIT_USAGE;
}
