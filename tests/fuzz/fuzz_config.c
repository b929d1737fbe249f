/* fuzz_config.c - libFuzzer harness for the gateway's configuration
 * (gateway/config.c: the settings table, its types and bounds, sizes,
 * AE titles, ports, paths, site blocks, whole-file checks) on top of the
 * syntax policy/config.c parses (fuzz_policy covers that syntax alone).
 *
 * gw_config_load reads a file: each input is written to siren.conf in a
 * temporary folder of this process (made once, removed at exit), with
 * the environment of examples/siren.conf left unset, so that its
 * ${VAR:-default} defaults apply. Beyond the sanitizers it checks that a
 * configuration loads exactly when there is no error, that what loaded
 * holds its invariants (a listener, sites for TLS, AE titles and names in
 * bounds), and that comparing it with itself finds no setting changed. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/fuzz_config.XXXXXX";
static char path[sizeof dir + 16];
static gw_config *loaded, *again;

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

static void setup(void)
{
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/siren.conf", dir);
    atexit(remove_dir);
    loaded = calloc(1, sizeof *loaded);
    again = calloc(1, sizeof *again);
    if (!loaded || !again)
        abort();
}

static void check_invariants(const gw_config *c)
{
    if (!c->tls_port[0] && !c->plain_port[0])
        abort(); /* a configuration always has a listener */
    if (c->tls_port[0] && c->site_count == 0)
        abort();
    if (c->site_count > GW_MAX_SITES || c->crl_count > GW_MAX_CRLS ||
        c->pin_count > GW_MAX_PINS)
        abort();
    for (size_t i = 0; i < c->site_count; i++) {
        const gw_site_config *s = &c->sites[i];
        if (!s->name[0] || strlen(s->name) >= GW_NAME_MAX ||
            s->aet_count == 0 || s->aet_count > GW_MAX_SITE_AETS ||
            !s->policy[0])
            abort();
        for (size_t j = 0; j < s->aet_count; j++)
            if (strlen(s->aets[j]) > DCM_AE_TITLE_MAX)
                abort();
    }
    char names[512];
    if (gw_config_restart_changes(c, c, names, sizeof names) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!loaded)
        setup();
    FILE *f = fopen(path, "w");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    pol_diags diags = {0};
    int rc = gw_config_load(path, loaded, &diags);
    if ((rc == 0) != (diags.errors == 0))
        abort();
    pol_diags_free(&diags);
    if (rc == 0) {
        check_invariants(loaded);
        /* The same file read twice: nothing needs a restart. */
        pol_diags second = {0};
        if (gw_config_load(path, again, &second) != 0)
            abort();
        pol_diags_free(&second);
        char names[512];
        if (gw_config_restart_changes(loaded, again, names, sizeof names))
            abort();
    }
    return 0;
}
