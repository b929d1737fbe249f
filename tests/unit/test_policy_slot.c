/* test_policy_slot.c - a policy swapped while other threads use it: each
 * reader keeps the version it acquired, whole, until it lets go, and
 * nothing is freed under it (run under ASan: a use after free fails). */
#include "policy.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define READERS 4
#define SWAPS 300

static char dir[512];

/* Compiles a policy of the given version (a policy file per version). */
static pol_policy *compile_version(unsigned version)
{
    char path[600];
    snprintf(path, sizeof path, "%s/v%u.policy", dir, version);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "policy \"slot\" version %u\n  profile basic\n"
               "  option retain-uids\nend\n",
            version);
    fclose(f);
    pol_diags diags = {0};
    pol_policy *p = pol_policy_load(path, pol_lookup_env, NULL, &diags);
    assert_int_equal(diags.errors, 0);
    pol_diags_free(&diags);
    assert_non_null(p);
    return p;
}

typedef struct reader {
    pol_slot *slot;
    volatile int *stop;
    unsigned long acquired;
    unsigned bad;
} reader;

static void *read_loop(void *arg)
{
    reader *r = arg;
    while (!*r->stop) {
        pol_policy *p = pol_slot_acquire(r->slot);
        /* The name and version read twice must agree: the object is
         * neither freed nor changed while it is held. */
        unsigned v = pol_policy_version(p);
        if (strcmp(pol_policy_name(p), "slot") != 0 || v == 0 ||
            v > SWAPS + 1 || pol_policy_version(p) != v)
            r->bad++;
        pol_policy_unref(p);
        r->acquired++;
    }
    return NULL;
}

static void swaps_under_readers(void **state)
{
    (void)state;
    pol_policy *versions[SWAPS + 2];
    for (unsigned v = 1; v <= SWAPS + 1; v++)
        versions[v] = compile_version(v);
    pol_slot slot;
    pol_slot_init(&slot, versions[1]);
    volatile int stop = 0;
    reader readers[READERS];
    pthread_t threads[READERS];
    for (int i = 0; i < READERS; i++) {
        readers[i] = (reader){.slot = &slot, .stop = &stop};
        assert_int_equal(pthread_create(&threads[i], NULL, read_loop,
                                        &readers[i]), 0);
    }
    for (unsigned v = 2; v <= SWAPS + 1; v++)
        pol_slot_swap(&slot, versions[v]);
    stop = 1;
    for (int i = 0; i < READERS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(readers[i].bad, 0);
    }
    pol_policy *last = pol_slot_acquire(&slot);
    assert_int_equal(pol_policy_version(last), SWAPS + 1);
    pol_policy_unref(last);
    pol_slot_destroy(&slot);
}

static void empty_slot(void **state)
{
    (void)state;
    pol_slot slot;
    pol_slot_init(&slot, NULL);
    assert_null(pol_slot_acquire(&slot));
    pol_slot_swap(&slot, compile_version(1));
    pol_policy *p = pol_slot_acquire(&slot);
    assert_int_equal(pol_policy_version(p), 1);
    pol_policy_unref(p);
    pol_slot_destroy(&slot);
}

int main(void)
{
    const char *tmp = getenv("SIREN_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/policy_slot.XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(swaps_under_readers),
        cmocka_unit_test(empty_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
