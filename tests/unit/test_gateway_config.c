/* test_gateway_config.c - gateway/config.c: the listeners' limits, which
 * `serve -c FILE` reads from the file and `serve --dir` from its options,
 * with one set of defaults and one table of bounds for both. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "scratch.h"

#include <string.h>

/* The defaults a file without limits gets and `serve --dir` starts from:
 * what the help text and docs/OPERATIONS.md state. */
static void defaults_are_the_documented_ones(void **state)
{
    (void)state;
    gw_listen_limits l;
    gw_listen_limits_default(&l);
    assert_int_equal(l.max_associations, 32);
    assert_int_equal(l.timeout_s, 60);
    assert_int_equal(l.idle_timeout_s, 300);
    assert_int_equal(l.artim_timeout_s, 30);
    assert_int_equal(l.max_pdu, 131072);
    assert_int_equal(l.max_handshakes, 16);
    assert_int_equal(l.handshake_timeout_s, 10);
}

/* Each option of serve --dir sets its field, at both ends of its bounds. */
static void sets_each_limit_by_its_setting_name(void **state)
{
    (void)state;
    static const struct {
        const char *name, *low, *high;
        size_t offset;
        long low_value, high_value;
    } cases[] = {
        {"max-associations", "1", "4096",
         offsetof(gw_listen_limits, max_associations), 1, 4096},
        {"timeout", "1", "3600", offsetof(gw_listen_limits, timeout_s), 1,
         3600},
        {"idle-timeout", "1", "86400",
         offsetof(gw_listen_limits, idle_timeout_s), 1, 86400},
        {"artim-timeout", "1", "600",
         offsetof(gw_listen_limits, artim_timeout_s), 1, 600},
        {"max-pdu", "4096", "16777216", offsetof(gw_listen_limits, max_pdu),
         4096, 16777216},
        {"max-handshakes", "1", "4096",
         offsetof(gw_listen_limits, max_handshakes), 1, 4096},
        {"handshake-timeout", "1", "600",
         offsetof(gw_listen_limits, handshake_timeout_s), 1, 600},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gw_listen_limits l;
        gw_listen_limits_default(&l);
        char why[128] = "";
        const int *field = (const int *)((const char *)&l + cases[i].offset);
        assert_int_equal(gw_listen_limits_set(&l, cases[i].name,
                                              cases[i].low, why,
                                              sizeof why), 1);
        assert_int_equal(*field, cases[i].low_value);
        assert_int_equal(gw_listen_limits_set(&l, cases[i].name,
                                              cases[i].high, why,
                                              sizeof why), 1);
        assert_int_equal(*field, cases[i].high_value);
    }
}

/* What the file refuses, the options refuse, saying the bounds; the
 * limit keeps its value. */
static void refuses_values_out_of_bounds_or_not_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *name, *text, *why;
    } cases[] = {
        {"timeout", "0", "a whole number, 1 to 3600"},
        {"timeout", "3601", "a whole number, 1 to 3600"},
        {"timeout", "5x", "a whole number, 1 to 3600"},
        {"timeout", "", "a whole number, 1 to 3600"},
        {"max-pdu", "4095", "a whole number, 4096 to 16777216"},
        {"max-pdu", "99999999999999999999", "a whole number, 4096 to "
                                            "16777216"},
        {"max-associations", "-1", "a whole number, 1 to 4096"},
        {"handshake-timeout", "601", "a whole number, 1 to 600"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gw_listen_limits l, before;
        gw_listen_limits_default(&l);
        before = l;
        char why[128] = "";
        assert_int_equal(gw_listen_limits_set(&l, cases[i].name,
                                              cases[i].text, why,
                                              sizeof why), -1);
        assert_string_equal(why, cases[i].why);
        assert_memory_equal(&l, &before, sizeof l);
    }
}

/* Other settings of the table are not limits, whatever their type. */
static void knows_only_the_limits(void **state)
{
    (void)state;
    gw_listen_limits l, before;
    gw_listen_limits_default(&l);
    before = l;
    char why[128] = "";
    static const char *const others[] = {"processors", "connections",
                                         "port", "dir", "", "max"};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        assert_int_equal(gw_listen_limits_set(&l, others[i], "2", why,
                                              sizeof why), 0);
    assert_memory_equal(&l, &before, sizeof l);
}

static const char minimal[] =
    "plain\n"
    "  port 11112\n"
    "  policy \"p.policy\"\n"
    "end\n"
    "archive\n"
    "  host 127.0.0.1\n"
    "  port 4242\n"
    "  aet ORTHANC\n"
    "end\n";

static int load(const char *text, gw_config *c, pol_diags *diags)
{
    char dir[512], path[600];
    assert_int_equal(scratch_make(dir, sizeof dir, "test_config"), 0);
    snprintf(path, sizeof path, "%s/siren.conf", dir);
    scratch_write(path, text, 0600);
    int rc = gw_config_load(path, c, diags);
    assert_int_equal(scratch_remove(dir), 0);
    return rc;
}

/* A file without limits has the defaults; the limits block and the tls
 * block's handshake settings land in the same structure. */
static void the_file_fills_the_same_limits(void **state)
{
    (void)state;
    static gw_config c;
    pol_diags diags = {0};
    assert_int_equal(load(minimal, &c, &diags), 0);
    gw_listen_limits defaults;
    gw_listen_limits_default(&defaults);
    assert_memory_equal(&c.limits, &defaults, sizeof defaults);

    char text[1024];
    snprintf(text, sizeof text, "%s%s", minimal,
             "limits\n  timeout 5\n  max-pdu 65536\nend\n"
             "tls\n  handshake-timeout 7\nend\n");
    assert_int_equal(load(text, &c, &diags), 0);
    assert_int_equal(c.limits.timeout_s, 5);
    assert_int_equal(c.limits.max_pdu, 65536);
    assert_int_equal(c.limits.handshake_timeout_s, 7);
    assert_int_equal(c.limits.idle_timeout_s, defaults.idle_timeout_s);
    pol_diags_free(&diags);
}

/* Out of bounds in the file: file:line:column and the same bounds. */
static void the_file_names_the_value_out_of_bounds(void **state)
{
    (void)state;
    static gw_config c;
    pol_diags diags = {0};
    char text[1024];
    snprintf(text, sizeof text, "%s%s", minimal,
             "limits\n  max-pdu 1000\nend\n");
    assert_int_equal(load(text, &c, &diags), -1);
    assert_int_equal(diags.errors, 1);
    assert_int_equal(diags.items[0].line, 11);
    assert_int_equal(diags.items[0].column, 11);
    assert_string_equal(diags.items[0].message, "out of bounds");
    assert_string_equal(diags.items[0].hint,
                        "a whole number, 4096 to 16777216");
    pol_diags_free(&diags);
}

/* A setting's name alone on its line, of every kind of value (a size
 * read past the values it did not have before: found by fuzz_config). */
static void a_setting_without_a_value_is_an_error(void **state)
{
    (void)state;
    static const char *const names[] = {"spool-quota", "processors",
                                        "aet", "spool"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        static gw_config c;
        pol_diags diags = {0};
        char text[1024];
        snprintf(text, sizeof text, "%s%s\n", minimal, names[i]);
        assert_int_equal(load(text, &c, &diags), -1);
        assert_int_equal(diags.errors, 1);
        assert_int_equal(diags.items[0].line, 10);
        assert_string_equal(diags.items[0].message, "no value");
        pol_diags_free(&diags);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_the_documented_ones),
        cmocka_unit_test(sets_each_limit_by_its_setting_name),
        cmocka_unit_test(refuses_values_out_of_bounds_or_not_numbers),
        cmocka_unit_test(knows_only_the_limits),
        cmocka_unit_test(the_file_fills_the_same_limits),
        cmocka_unit_test(the_file_names_the_value_out_of_bounds),
        cmocka_unit_test(a_setting_without_a_value_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
