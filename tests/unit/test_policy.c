/*
 * test_policy.c - the policy language (policy/policy.h), as the officer who
 * writes a policy and the engine that applies it see it:
 *
 *   - what `siren policy check` prints for a bad policy: the exact
 *     "file:line:column: error: message (hint: ...)" of each mistake, all
 *     mistakes of a file at once, warnings that do not stop a policy;
 *   - ${VAR} values and the policy hash that records them;
 *   - includes and tables named relative to the file that names them;
 *   - what a compiled policy tells the engine (name, options, key id,
 *     rules in file order, the date shift, the gates);
 *   - which attributes a reference names (keywords, numbers with masks,
 *     private elements by creator, paths through sequences);
 *   - which instances the reject/quarantine lines stop, and why;
 *   - lookup tables, replace templates, reference counting.
 *
 * Every test writes its policies into one scratch folder made with mkdtemp
 * under $SIREN_TEST_TMP; "@" in an expected text stands for that folder.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "dicom.h"
#include "policy.h"
#include "scratch.h"

/* ---- scratch files ------------------------------------------------------ */

static char scratch[PATH_MAX]; /* the folder of this run */

/* scratch/name, into a static buffer (one at a time). */
static const char *in_scratch(const char *name)
{
    static char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    return path;
}

static void write_file_mode(const char *name, const char *text, mode_t mode)
{
    const char *path = in_scratch(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    /* open's mode applies only to new files (and passes the umask). */
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void write_file(const char *name, const char *text)
{
    write_file_mode(name, text, 0644);
}

/* The HMAC key most policies name: 32 bytes of text and a newline, as
 * `openssl rand -hex 16 > k.key` makes it. */
#define TEST_KEY "00112233445566778899aabbccddeeff"

static int setup(void **state)
{
    (void)state;
    if (scratch_make(scratch, sizeof scratch, "policy") < 0)
        return -1;
    char sub[PATH_MAX + 8];
    snprintf(sub, sizeof sub, "%s/sub", scratch);
    if (mkdir(sub, 0755) < 0)
        return -1;
    write_file_mode("k.key", TEST_KEY "\n", 0600);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return scratch_remove(scratch);
}

/* ---- compiling ---------------------------------------------------------- */

/* Variables for ${NAME}: a NULL-terminated list of name, value pairs. */
static const char *lookup_pairs(void *ctx, const char *name)
{
    const char *const *pairs = ctx;
    for (size_t i = 0; pairs && pairs[i]; i += 2)
        if (strcmp(pairs[i], name) == 0)
            return pairs[i + 1];
    return NULL;
}

/* Writes source as scratch/name and compiles it with the variables vars
 * (may be NULL: none is set). */
static pol_policy *compile_with(const char *name, const char *source,
                                const char *const *vars, pol_diags *diags)
{
    write_file(name, source);
    return pol_policy_load(in_scratch(name), lookup_pairs, (void *)vars,
                           diags);
}

static pol_policy *compile(const char *name, const char *source,
                           pol_diags *diags)
{
    return compile_with(name, source, NULL, diags);
}

/* A policy that must compile without errors (warnings allowed). */
static pol_policy *compile_ok(const char *name, const char *source)
{
    pol_diags diags = {0};
    pol_policy *p = compile(name, source, &diags);
    char line[1024];
    for (size_t i = 0; i < diags.count; i++)
        if (!diags.items[i].warning)
            print_error("unexpected: %s\n",
                        pol_diag_format(&diags.items[i], line, sizeof line));
    assert_int_equal(diags.errors, 0);
    assert_non_null(p);
    pol_diags_free(&diags);
    return p;
}

/* expected with each "@" replaced by the scratch folder. */
static const char *expand_at(const char *expected)
{
    static char out[8192];
    size_t n = 0;
    for (const char *c = expected; *c; c++) {
        const char *piece = *c == '@' ? scratch : (char[]){*c, 0};
        assert_true(n + strlen(piece) < sizeof out);
        n += (size_t)snprintf(out + n, sizeof out - n, "%s", piece);
    }
    out[n] = '\0';
    return out;
}

/* The i-th error (warnings skipped), formatted; "" if there are fewer. */
static const char *nth_error(const pol_diags *diags, size_t i, char *buf,
                             size_t size)
{
    for (size_t k = 0; k < diags->count; k++) {
        if (diags->items[k].warning)
            continue;
        if (i-- == 0)
            return pol_diag_format(&diags->items[k], buf, size);
    }
    return "";
}

/* The policy does not compile, and its first error reads expected. */
static void assert_first_error(const char *name, const char *source,
                               const char *const *vars, const char *expected)
{
    pol_diags diags = {0};
    pol_policy *p = compile_with(name, source, vars, &diags);
    char got[1024];
    assert_null(p);
    assert_true(diags.errors > 0);
    assert_string_equal(nth_error(&diags, 0, got, sizeof got),
                        expand_at(expected));
    pol_diags_free(&diags);
}

/* The first lines of most policies below; statements of a case start on
 * line 4. */
#define HEAD                                                                 \
    "policy \"t\" version 1\n"                                               \
    "  profile basic\n"                                                      \
    "  key file \"k.key\"\n"

static uint32_t tag_of(const char *keyword)
{
    const dcm_dict_entry *entry = dcm_dict_find_keyword(keyword);
    assert_non_null(entry);
    return entry->tag;
}

/* ---- diagnostics: what `siren policy check` prints ---------------------- */

/* Each line of a policy that can go wrong, with the exact first error. The
 * column is that of the word, string or tag at fault; whole-policy checks
 * point at the 'policy' line; line 0 (no line:column) means the file. */
static void test_golden_errors(void **state)
{
    (void)state;
    static const struct {
        const char *source;
        const char *expected;
    } cases[] = {
        {HEAD "  frobnicate PatientName\nend\n",
         "@/case.policy:4:3: error: unknown statement 'frobnicate' (hint: "
         "statements: profile, option, mode, key, reject, quarantine, keep, "
         "remove, empty, replace, remap, hash, shift, compress, keep-syntax, "
         "redact, on, verify, allow, include, end)"},
        {HEAD "  keep (0010,001G)\nend\n",
         "@/case.policy:4:8: error: malformed tag: (0010,001G) (hint: write "
         "(gggg,eeee), (60xx,3000) or (gggg,\"CREATOR\",ee))"},
        {HEAD "  keep (0010,\"ACME\",10)\nend\n",
         "@/case.policy:4:8: error: a private creator needs an odd group "
         "above 0008: (0010,\"ACME\",10) (hint: write (gggg,eeee), "
         "(60xx,3000) or (gggg,\"CREATOR\",ee))"},
        {HEAD "  keep PatientNme\nend\n",
         "@/case.policy:4:8: error: unknown attribute 'PatientNme' (hint: use "
         "a keyword of PS3.6 (as dcmdump prints it) or a number "
         "(gggg,eeee))"},
        {HEAD "  replace PatientName with \"ANON\n  end\n",
         "@/case.policy:4:28: error: string not closed (hint: close it with "
         "\" on the same line)"},
        {HEAD "  replace PatientName with \"{PatientNme}\"\nend\n",
         "@/case.policy:4:28: error: unknown attribute 'PatientNme' in the "
         "template (hint: {Keyword} is the new value, {original:Keyword} the "
         "value as received)"},
        {HEAD "  keep PatientID\n",
         "@/case.policy: error: the policy has no 'end' (hint: close the "
         "policy with a line 'end')"},
        {"# a comment first is fine\n"
         "  profile basic\n"
         "policy \"t\" version 1\nend\n",
         "@/case.policy:2:3: error: statement before 'policy' (hint: a "
         "policy file is: policy \"NAME\" version N ... end)"},
        {HEAD "end\n  keep PatientID\n",
         "@/case.policy:5:3: error: statement after 'end' (hint: a policy "
         "file is: policy \"NAME\" version N ... end)"},
        {"policy \"t\" version 0\n  profile basic\nend\n",
         "@/case.policy:1:20: error: bad version (hint: a whole number from "
         "1, raised at each change)"},
        {"policy \"t\" version 1.5\n  profile basic\nend\n",
         "@/case.policy:1:20: error: bad version (hint: a whole number from "
         "1, raised at each change)"},
        {"policy \"t\" version 1\n  profile extended\nend\n",
         "@/case.policy:2:11: error: unknown profile 'extended' (hint: the "
         "PS3.15 profile is 'basic'; options refine it)"},
        {HEAD "  option retain-everything\nend\n",
         "@/case.policy:4:10: error: unknown option 'retain-everything' "
         "(hint: see docs/POLICY.md for the PS3.15 options)"},
        {HEAD "  reject if Modality CT\nend\n",
         "@/case.policy:4:22: error: expected a test, found 'CT' (hint: ==, "
         "!=, <, <=, >, >=, in (...), contains, matches, exists)"},
        {HEAD "  reject when Modality == CT\nend\n",
         "@/case.policy:4:10: error: expected 'if' or 'unless', found 'when' "
         "(hint: write: reject unless Modality in (CT, MR))"},
        {HEAD "  keep PatientID PatientName\nend\n",
         "@/case.policy:4:18: error: unexpected 'PatientName' after the "
         "statement (hint: one statement per line)"},
        {HEAD "  replace PatientID with lookup \"dup.csv\" column subject_id "
              "else quarantine\nend\n",
         "@/case.policy:4:33: error: dup.csv: key \"PAT-1\" appears twice"},
        {HEAD "  replace PatientID with lookup \"dup.csv\" column subject "
              "else quarantine\nend\n",
         "@/case.policy:4:33: error: dup.csv: the header has no column "
         "\"subject\""},
        {HEAD "  replace PatientID with lookup \"dup.csv\" key patient column "
              "subject_id else quarantine\nend\n",
         "@/case.policy:4:33: error: dup.csv: the header has no column "
         "\"patient\""},
        {HEAD "  replace PatientID with lookup \"ragged.csv\" column b "
              "else quarantine\nend\n",
         "@/case.policy:4:33: error: ragged.csv: line 3: 1 fields, the "
         "header has 2"},
        {HEAD "  replace PatientID with lookup \"one.csv\" column subject_id\n"
              "end\n",
         "@/case.policy:4:60: error: expected 'else', found 'end of line' "
         "(hint: say what a key missing from the table does: else "
         "reject|quarantine|keep|default \"TEXT\")"},
        {"policy \"t\" version 1\n  profile basic\n  key file \"open.key\"\n"
         "end\n",
         "@/case.policy:3:12: error: key file @/open.key is readable by "
         "group or others (hint: chmod 600 the file (or 400), owned by the "
         "gateway's user)"},
        {"policy \"t\" version 1\n  profile basic\n  key file \"short.key\"\n"
         "end\n",
         "@/case.policy:3:12: error: key in @/short.key is shorter than 16 "
         "bytes (hint: make one: openssl rand -hex 32 > FILE)"},
        {HEAD "  key file \"k.key\"\nend\n",
         "@/case.policy:4:12: error: a second key"},
        {"policy \"t\" version 1\n  profile basic\nend\n",
         "@/case.policy:1:1: error: the policy remaps UIDs, hashes or shifts "
         "dates and needs a key for that (hint: add: key file "
         "\"/run/secrets/NAME\" (openssl rand -hex 32))"},
        {"\n  policy \"t\" version 1\n    profile basic\n  end\n",
         "@/case.policy:2:3: error: the policy remaps UIDs, hashes or shifts "
         "dates and needs a key for that (hint: add: key file "
         "\"/run/secrets/NAME\" (openssl rand -hex 32))"},
        {"policy \"t\" version 1\n  profile basic\n  option retain-uids\n"
         "  remap StudyInstanceUID\nend\n",
         "@/case.policy:1:1: error: the policy remaps UIDs, hashes or shifts "
         "dates and needs a key for that (hint: add: key file "
         "\"/run/secrets/NAME\" (openssl rand -hex 32))"},
        {"policy \"t\" version 1\n  key file \"k.key\"\nend\n",
         "@/case.policy:1:1: error: the policy names no profile (hint: add "
         "the line: profile basic)"},
        {HEAD "  option retain-longitudinal-full-dates\n"
              "  option retain-longitudinal-modified-dates\n"
              "  shift dates by hmac-days(PatientID, 1..365)\nend\n",
         "@/case.policy:1:1: error: retain-longitudinal-full-dates and "
         "retain-longitudinal-modified-dates exclude each other (hint: "
         "choose one of the two)"},
        {HEAD "  option retain-longitudinal-modified-dates\nend\n",
         "@/case.policy:1:1: error: retain-longitudinal-modified-dates needs "
         "a 'shift dates' line (hint: add: shift dates by "
         "hmac-days(PatientID, 1..365) back)"},
        {HEAD "  shift StudyDate\nend\n",
         "@/case.policy:1:1: error: a 'shift' line needs the 'shift dates by' "
         "line that sets the offset (hint: add: shift dates by "
         "hmac-days(PatientID, 1..365) back)"},
        {HEAD "  shift dates by hmac-days(PatientID, 30..1) back\nend\n",
         "@/case.policy:4:3: error: the range of days is empty (hint: write "
         "the smaller number first)"},
        {HEAD "  shift dates by hmac-days(PatientID, 1..36501)\nend\n",
         "@/case.policy:4:42: error: expected a number of days from 0 to "
         "36500, found '36501'"},
        {HEAD "  option clean-pixel-data\nend\n",
         "@/case.policy:4:10: error: option clean-pixel-data would stamp "
         "that all burned-in text is gone, which SIREN cannot promise: it "
         "blanks only the rectangles redact lines name (hint: name the "
         "rectangles with redact lines and quarantine if "
         "BurnedInAnnotation == YES unless redacted)"},
        {HEAD "  option clean-visual-features\nend\n",
         "@/case.policy:4:10: error: option clean-visual-features would "
         "stamp that no recognizable visual feature remains, which SIREN "
         "cannot promise: it blanks only the rectangles redact lines name "
         "(hint: "
         "name the rectangles with redact lines and quarantine if "
         "BurnedInAnnotation == YES unless redacted)"},
        {HEAD "  replace InstitutionName with \"${SITE_NAME}\"\nend\n",
         "@/case.policy:4:33: error: variable ${SITE_NAME} is not set (hint: "
         "set it in the environment, or give a default: ${NAME:-value})"},
        {HEAD "  replace InstitutionName with \"${SITE NAME}\"\nend\n",
         "@/case.policy:4:33: error: malformed variable reference (hint: "
         "write ${NAME} or ${NAME:-default})"},
        {HEAD "  keep Modality ;\nend\n",
         "@/case.policy:4:17: error: unexpected character ';'"},
        {HEAD "  include \"nothere.inc\"\nend\n",
         "@/case.policy:4:11: error: cannot open @/nothere.inc: No such file "
         "or directory"},
    };
    write_file("dup.csv", "patient_id,subject_id\nPAT-1,S-1\nPAT-2,S-2\n"
                          "PAT-1,S-3\n");
    write_file("one.csv", "patient_id,subject_id\nPAT-1,S-1\n");
    write_file("ragged.csv", "a,b\n1,2\n3\n");
    write_file_mode("open.key", TEST_KEY "\n", 0644);
    write_file_mode("short.key", "0123456789abcde\n", 0600);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        print_message("case %zu\n", i);
        assert_first_error("case.policy", cases[i].source, NULL,
                           cases[i].expected);
    }
}

/* "matches" takes a POSIX extended regular expression; the C library's
 * words say what is wrong with a bad one. */
static void test_golden_bad_regex(void **state)
{
    (void)state;
    regex_t re;
    char why[128], expected[512];
    int rc = regcomp(&re, "(CT", REG_EXTENDED | REG_NOSUB);
    assert_int_not_equal(rc, 0);
    regerror(rc, &re, why, sizeof why);
    snprintf(expected, sizeof expected,
             "@/case.policy:4:30: error: bad regular expression: %s (hint: "
             "POSIX extended syntax: ^, $, [...], (a|b), *, +)", why);
    assert_first_error("case.policy",
                       HEAD "  reject if Modality matches \"(CT\"\nend\n",
                       NULL, expected);
}

/* ${NAME:-default}: the default when NAME is not set, the value when it
 * is. Here the default names a key file that is not there. */
static void test_golden_variable_default(void **state)
{
    (void)state;
    static const char source[] =
        "policy \"t\" version 1\n"
        "  profile basic\n"
        "  key file \"${KEY_FILE:-absent.key}\"\n"
        "end\n";
    char expected[512];
    snprintf(expected, sizeof expected,
             "@/case.policy:3:12: error: cannot open @/absent.key: %s (hint: "
             "key file \"/run/secrets/NAME\")", strerror(ENOENT));
    assert_first_error("case.policy", source, NULL, expected);

    /* Set, the variable's value is used and the policy compiles. */
    static const char *const vars[] = {"KEY_FILE", "k.key", NULL};
    pol_diags diags = {0};
    pol_policy *p = compile_with("case.policy", source, vars, &diags);
    assert_non_null(p);
    assert_int_equal(diags.count, 0);
    pol_policy_unref(p);
    pol_diags_free(&diags);
}

/* A file that cannot be read is reported for the file as a whole. */
static void test_golden_missing_main_file(void **state)
{
    (void)state;
    pol_diags diags = {0};
    char got[1024], expected[512];
    assert_null(pol_policy_load(in_scratch("none.policy"), pol_lookup_env,
                                NULL, &diags));
    snprintf(expected, sizeof expected,
             "@/none.policy: error: cannot open @/none.policy: %s",
             strerror(ENOENT));
    assert_string_equal(nth_error(&diags, 0, got, sizeof got),
                        expand_at(expected));
    pol_diags_free(&diags);
}

/* Include loops and depth: the error is at the include line (its file
 * name) that would close the loop or go one level too deep. */
static void test_golden_includes(void **state)
{
    (void)state;
    /* main -> loop_b.inc -> loop_c.inc -> loop_b.inc */
    write_file("loop_b.inc", "  keep Modality\n  include \"loop_c.inc\"\n");
    write_file("loop_c.inc", "# c\n\n  include \"loop_b.inc\"\n");
    assert_first_error("loop.policy", HEAD "  include \"loop_b.inc\"\nend\n",
                       NULL,
                       "@/loop_c.inc:3:11: error: the file includes itself");
    /* Including the main file is a loop too. */
    write_file("self.inc", "include \"self.policy\"\n");
    assert_first_error("self.policy", HEAD "include \"self.inc\"\nend\n", NULL,
                       "@/self.inc:1:9: error: the file includes itself");

    /* The main file and 7 nested includes are 8 files: the most. */
    char name[32], text[64];
    for (int i = 1; i <= 8; i++) {
        snprintf(name, sizeof name, "deep%d.inc", i);
        snprintf(text, sizeof text, "include \"deep%d.inc\"\n", i + 1);
        write_file(name, i < 7 ? text : "keep Modality\n");
    }
    pol_policy *p = compile_ok("deep.policy",
                               HEAD "include \"deep1.inc\"\nend\n");
    pol_policy_unref(p);
    write_file("deep7.inc", "include \"deep8.inc\"\n");
    assert_first_error("deep.policy", HEAD "include \"deep1.inc\"\nend\n",
                       NULL,
                       "@/deep7.inc:1:9: error: includes nested more than 8 "
                       "deep");

    /* Only the main file opens and closes the policy. */
    write_file("opens.inc", "\n  policy \"x\" version 2\n");
    assert_first_error("case.policy", HEAD "include \"opens.inc\"\nend\n",
                       NULL,
                       "@/opens.inc:2:3: error: 'policy' in an included file "
                       "(hint: only the main file opens the policy)");
    write_file("closes.inc", "end\n");
    assert_first_error("case.policy", HEAD "include \"closes.inc\"\nend\n",
                       NULL,
                       "@/closes.inc:1:1: error: 'end' in an included file "
                       "(hint: only the main file closes the policy)");
}

/* One mistake per line does not hide the next: the parser reports it,
 * skips the rest of the line and carries on, so the officer sees every
 * mistake of the file in one run. */
static void test_all_errors_reported(void **state)
{
    (void)state;
    static const char source[] =
        HEAD
        "  frobnicate PatientName\n"                       /* 4 */
        "  keep PatientNme\n"                              /* 5 */
        "  option retain-everything\n"                     /* 6 */
        "  replace PatientName with\n"                     /* 7 */
        "  reject if Modality CT because \"x\"\n"          /* 8 */
        "  keep PatientID   # fine\n"                      /* 9 */
        "  remove (0010,00ZZ) extra words here\n"          /* 10 */
        "  empty \\\n"                                     /* 11 */
        "    PatientNme\n"                                 /* 12 */
        "  ${UNSET} PatientName\n"                         /* 13 */
        "  keep ${UNSET}\n"                                /* 14 */
        "  keep PatientNme\n"                              /* 15 */
        "end\n";
    static const char *const expected[] = {
        "@/many.policy:4:3: error: unknown statement 'frobnicate'",
        "@/many.policy:5:8: error: unknown attribute 'PatientNme'",
        "@/many.policy:6:10: error: unknown option 'retain-everything'",
        "@/many.policy:7:27: error: expected a value, found 'end of line'",
        "@/many.policy:8:22: error: expected a test, found 'CT'",
        "@/many.policy:10:10: error: malformed tag: (0010,00ZZ)",
        "@/many.policy:12:5: error: unknown attribute 'PatientNme'",
        /* A variable that is not set stands for an empty string. */
        "@/many.policy:13:3: error: variable ${UNSET} is not set",
        "@/many.policy:13:3: error: a statement starts with a word, not ''",
        "@/many.policy:14:8: error: variable ${UNSET} is not set",
        "@/many.policy:14:8: error: expected an attribute, found ''",
        "@/many.policy:15:8: error: unknown attribute 'PatientNme'",
    };
    pol_diags diags = {0};
    assert_null(compile("many.policy", source, &diags));
    assert_int_equal(diags.errors, sizeof expected / sizeof *expected);
    assert_int_equal(diags.count, diags.errors);
    for (size_t i = 0; i < diags.errors; i++) {
        char got[1024];
        const char *want = expand_at(expected[i]);
        nth_error(&diags, i, got, sizeof got);
        /* The message without its hint. */
        assert_true(strncmp(got, want, strlen(want)) == 0);
        assert_true(got[strlen(want)] == '\0' || got[strlen(want)] == ' ');
    }
    pol_diags_free(&diags);
}

/* Options that keep identifying data in compile, with a warning for the
 * officer to check against the protocol; so do a few other lines. */
static void test_warnings(void **state)
{
    (void)state;
    write_file("subjects.csv", "patient_id,subject_id\nPAT-1,S-1\n");
    static const char source[] =
        HEAD
        "  option retain-uids\n"                                 /* 4 */
        "  option retain-device-identity\n"
        "  option retain-patient-characteristics\n"
        "  option retain-institution-identity\n"
        "  option retain-safe-private\n"
        "  option retain-longitudinal-full-dates\n"
        "  option retain-uids\n"                                 /* 10 */
        "  option clean-descriptors\n"
        "  keep (0019,1010)\n"                                   /* 12 */
        "  replace PatientID with lookup \"subjects.csv\" column subject_id "
        "else keep\n"                                            /* 13 */
        "end\n";
    static const char *const expected[] = {
        "@/warn.policy:4:10: warning: option retain-uids keeps the original "
        "UIDs, which link back to the source records (hint: make sure the "
        "protocol and the ethics approval allow it)",
        "@/warn.policy:5:10: warning: option retain-device-identity keeps "
        "device serial numbers and station names (hint: make sure the "
        "protocol and the ethics approval allow it)",
        "@/warn.policy:6:10: warning: option retain-patient-characteristics "
        "keeps age, sex, size, weight and other characteristics (hint: make "
        "sure the protocol and the ethics approval allow it)",
        "@/warn.policy:7:10: warning: option retain-institution-identity "
        "keeps institution names and addresses (hint: make sure the "
        "protocol and the ethics approval allow it)",
        "@/warn.policy:8:10: warning: option retain-safe-private keeps the "
        "private attributes PS3.15 lists as safe (hint: make sure the "
        "protocol and the ethics approval allow it)",
        "@/warn.policy:9:10: warning: option retain-longitudinal-full-dates "
        "keeps every date and time as acquired (hint: make sure the "
        "protocol and the ethics approval allow it)",
        "@/warn.policy:10:10: warning: option retain-uids given twice",
        "@/warn.policy:10:10: warning: option retain-uids keeps the original "
        "UIDs, which link back to the source records (hint: make sure the "
        "protocol and the ethics approval allow it)",
        "@/warn.policy:12:8: warning: (0019,1010) names a private element by "
        "its block number, which differs between files and vendors (hint: "
        "name it by creator: (gggg,\"CREATOR\",ee))",
        "@/warn.policy:13:71: warning: values missing from the table pass "
        "through unchanged (hint: else quarantine holds them for review "
        "instead)",
    };
    pol_diags diags = {0};
    pol_policy *p = compile("warn.policy", source, &diags);
    assert_non_null(p);
    assert_int_equal(diags.errors, 0);
    assert_int_equal(diags.count, sizeof expected / sizeof *expected);
    for (size_t i = 0; i < diags.count; i++) {
        char got[1024];
        assert_true(diags.items[i].warning);
        assert_string_equal(pol_diag_format(&diags.items[i], got, sizeof got),
                            expand_at(expected[i]));
    }
    assert_int_equal(pol_policy_options(p),
                     POL_OPT_RETAIN_UIDS | POL_OPT_RETAIN_DEVICE_IDENTITY |
                         POL_OPT_RETAIN_PATIENT_CHARACTERISTICS |
                         POL_OPT_RETAIN_INSTITUTION_IDENTITY |
                         POL_OPT_RETAIN_SAFE_PRIVATE |
                         POL_OPT_RETAIN_LONG_FULL_DATES |
                         POL_OPT_CLEAN_DESCRIPTORS);
    pol_policy_unref(p);
    pol_diags_free(&diags);

    /* Without the option or a shift line, the basic profile removes the
     * dates: shifting them does nothing. */
    p = compile("warn.policy",
                HEAD "\n  shift dates by hmac-days(PatientID, 1..365)\nend\n",
                &diags);
    assert_non_null(p);
    assert_int_equal(diags.errors, 0);
    assert_int_equal(diags.count, 1);
    char got[1024];
    assert_string_equal(
        pol_diag_format(&diags.items[0], got, sizeof got),
        expand_at("@/warn.policy:5:3: warning: 'shift dates' has no effect: "
                  "the basic profile removes the dates (hint: add option "
                  "retain-longitudinal-modified-dates, or shift lines for the "
                  "attributes to shift)"));
    pol_policy_unref(p);
    pol_diags_free(&diags);

    /* A whole-policy check about a line names that line's file. */
    write_file("shift.inc", "# dates\n    shift dates by hmac-days(PatientID, "
                            "1..365)\n");
    p = compile("warn.policy", HEAD "  include \"shift.inc\"\nend\n", &diags);
    assert_non_null(p);
    assert_int_equal(diags.count, 1);
    pol_diag_format(&diags.items[0], got, sizeof got);
    const char *want = expand_at("@/shift.inc:2:5: warning: 'shift dates' "
                                 "has no effect");
    assert_true(strncmp(got, want, strlen(want)) == 0);
    pol_policy_unref(p);
    pol_diags_free(&diags);
}

/* The diagnostics list itself: pol_diags_add returns -1 for error paths,
 * counts errors only, and pol_diag_format leaves out what is not there. */
static void test_diag_format(void **state)
{
    (void)state;
    pol_diags diags = {0};
    char buf[256];
    assert_int_equal(pol_diags_add(&diags, true, "a.policy", 3, 7, NULL,
                                   "odd %s", "thing"),
                     -1);
    assert_int_equal(pol_diags_add(&diags, false, "a.policy", 0, 0,
                                   "do this", "whole file"),
                     -1);
    assert_int_equal(diags.count, 2);
    assert_int_equal(diags.errors, 1);
    assert_string_equal(pol_diag_format(&diags.items[0], buf, sizeof buf),
                        "a.policy:3:7: warning: odd thing");
    assert_string_equal(pol_diag_format(&diags.items[1], buf, sizeof buf),
                        "a.policy: error: whole file (hint: do this)");
    /* Too small a buffer: cut, still a string. */
    assert_string_equal(pol_diag_format(&diags.items[1], buf, 9), "a.policy");
    pol_diags_free(&diags);
    assert_null(diags.items);
    assert_int_equal(diags.count, 0);
    pol_diags_free(NULL);
}

/* ---- variables and the policy hash -------------------------------------- */

/* ${NAME} inside a string becomes part of it; outside, its value is one
 * token of its own, so a value can never change the structure of a line. */
static void test_variables(void **state)
{
    (void)state;
    static const char source[] =
        "policy \"${TRIAL}\" version ${VERSION}\n"
        "  profile basic\n"
        "  key file \"${KEY:-k.key}\"\n"
        "  reject unless Modality == ${MODALITY} \\\n"
        "      because \"only ${MODALITY}\"\n"
        "  replace InstitutionName with \"${SITE} (${COUNTRY:-NL})\"\n"
        "end\n";
    static const char *const vars[] = {
        "TRIAL", "hobit", "VERSION", "7", "MODALITY", "CT",
        "SITE", "St. Elsewhere", NULL};
    pol_diags diags = {0};
    pol_policy *p = compile_with("vars.policy", source, vars, &diags);
    assert_non_null(p);
    assert_int_equal(diags.count, 0);
    assert_string_equal(pol_policy_name(p), "hobit");
    assert_int_equal(pol_policy_version(p), 7);
    size_t count;
    const pol_rule *rules = pol_policy_rules(p, &count);
    assert_int_equal(count, 1);
    assert_string_equal(rules[0].text, "St. Elsewhere (NL)");
    pol_gate_info gate;
    assert_true(pol_policy_gate(p, 0, &gate));
    assert_string_equal(gate.because, "only CT");

    dcm_dataset *ds = dcm_dataset_new();
    char reason[256];
    assert_int_equal(dcm_dataset_set_string(ds, tag_of("Modality"), DCM_VR_CS,
                                            "CT", NULL), 0);
    assert_int_equal(pol_policy_filter(p, ds, reason, sizeof reason),
                     POL_ACCEPT);
    pol_policy_unref(p);

    /* A value with spaces is one value, not "CT or ...". */
    static const char *const sneaky[] = {
        "TRIAL", "hobit", "VERSION", "7", "MODALITY",
        "CT or Modality exists", "SITE", "x", NULL};
    p = compile_with("vars.policy", source, sneaky, &diags);
    assert_non_null(p);
    assert_int_equal(pol_policy_filter(p, ds, reason, sizeof reason),
                     POL_REJECT);
    assert_string_equal(reason, expand_at("only CT or Modality exists "
                                          "(@/vars.policy:4)"));
    pol_policy_unref(p);

    /* A version must still be a number, whatever the variable says. */
    static const char *const wordy[] = {
        "TRIAL", "hobit", "VERSION", "seven", "MODALITY", "CT", "SITE", "x",
        NULL};
    assert_first_error("vars.policy", source, wordy,
                       "@/vars.policy:1:27: error: bad version (hint: a whole "
                       "number from 1, raised at each change)");
    dcm_dataset_free(ds);
    pol_diags_free(&diags);
}

/* The hash names everything a policy was compiled from. */
static void hash_of(const char *const *vars, char out[65])
{
    pol_diags diags = {0};
    pol_policy *p = pol_policy_load(in_scratch("hash.policy"), lookup_pairs,
                                    (void *)vars, &diags);
    assert_non_null(p);
    const char *hash = pol_policy_hash(p);
    assert_int_equal(strlen(hash), 64);
    assert_int_equal(strspn(hash, "0123456789abcdef"), 64);
    memcpy(out, hash, 65);
    pol_policy_unref(p);
    pol_diags_free(&diags);
}

static void test_hash(void **state)
{
    (void)state;
    write_file("hash.policy",
               HEAD
               "  replace InstitutionName with \"${SITE}\"\n"
               "  replace PatientID with lookup \"hash.csv\" column s else "
               "quarantine\n"
               "end\n");
    write_file("hash.csv", "p,s\nPAT-1,S-1\n");
    static const char *const site_a[] = {"SITE", "A", NULL};
    static const char *const site_b[] = {"SITE", "B", NULL};
    char first[65], again[65], other_site[65], other_table[65],
        other_key[65];
    hash_of(site_a, first);
    hash_of(site_a, again);
    assert_string_equal(first, again); /* same input, same hash */
    hash_of(site_b, other_site);
    assert_string_not_equal(first, other_site);

    write_file("hash.csv", "p,s\nPAT-1,S-2\n");
    hash_of(site_a, other_table);
    assert_string_not_equal(first, other_table);
    write_file("hash.csv", "p,s\nPAT-1,S-1\n");
    hash_of(site_a, again);
    assert_string_equal(first, again);

    /* Another key treats every instance differently. */
    write_file_mode("k.key", "ffeeddccbbaa99887766554433221100\n", 0600);
    hash_of(site_a, other_key);
    write_file_mode("k.key", TEST_KEY "\n", 0600);
    assert_string_not_equal(first, other_key);
}

/* ---- includes ----------------------------------------------------------- */

/* Files named in a file are found next to it: sub/rules.inc names
 * "more.inc" and "ids.csv", both in sub/. Rules say where they were
 * written. */
static void test_includes_relative(void **state)
{
    (void)state;
    write_file("sub/rules.inc",
               "# included\n"
               "  keep SoftwareVersions\n"
               "  include \"more.inc\"\n"
               "  replace PatientID with lookup \"ids.csv\" column s else "
               "reject\n");
    write_file("sub/more.inc", "\n\n    remove StationName\n");
    write_file("sub/ids.csv", "p,s\nPAT-1,S-1\n");
    pol_policy *p = compile_ok("main.policy",
                               HEAD
                               "  keep Modality\n"
                               "  include \"sub/rules.inc\"\n"
                               "  empty StudyID\n"
                               "end\n");
    size_t count;
    const pol_rule *rules = pol_policy_rules(p, &count);
    assert_int_equal(count, 5);
    static const struct {
        const char *file;
        unsigned line, column;
        pol_action_kind kind;
        const char *ref;
    } expected[] = {
        {"@/main.policy", 4, 3, POL_KEEP, "Modality"},
        {"@/sub/rules.inc", 2, 3, POL_KEEP, "SoftwareVersions"},
        {"@/sub/more.inc", 3, 5, POL_REMOVE, "StationName"},
        {"@/sub/rules.inc", 4, 3, POL_LOOKUP, "PatientID"},
        {"@/main.policy", 6, 3, POL_EMPTY, "StudyID"},
    };
    for (size_t i = 0; i < count; i++) {
        assert_string_equal(rules[i].file, expand_at(expected[i].file));
        assert_int_equal(rules[i].line, expected[i].line);
        assert_int_equal(rules[i].column, expected[i].column);
        assert_int_equal(rules[i].kind, expected[i].kind);
        assert_string_equal(rules[i].ref.text, expected[i].ref);
    }
    assert_string_equal(pol_table_get(rules[3].table, "PAT-1"), "S-1");
    assert_string_equal(pol_policy_main_file(p), in_scratch("main.policy"));
    pol_policy_unref(p);
}

/* ---- what a compiled policy tells the engine ---------------------------- */

static void test_accessors(void **state)
{
    (void)state;
    write_file("acc.csv", "p,s\nPAT-1,S-1\n");
    pol_policy *p = compile_ok(
        "acc.policy",
        "# the trial's policy\n"
        "policy \"hobit trial\" version 12\n"                      /* 2 */
        "  profile basic\n"
        "  mode keep-list\n"
        "  option retain-longitudinal-modified-dates\n"
        "  option clean-graphics\n"
        "  key file \"k.key\"\n"
        "  reject unless Modality in (CT, MR) because \"CT and MR only\"\n"
        "  quarantine if BurnedInAnnotation == YES\n"              /* 9 */
        "  keep SoftwareVersions\n"                                /* 10 */
        "  remove StationName\n"
        "  empty StudyID\n"
        "  replace PatientName with \"HOBIT^{PatientID}\"\n"
        "  replace AccessionNumber with hash\n"
        "  replace PatientID with lookup \"acc.csv\" column s else default "
        "\"UNKNOWN\"\n"
        "  remap StudyInstanceUID\n"
        "  hash OtherPatientIDs\n"
        "  shift AcquisitionDate\n"
        "  shift dates by hmac-days(OtherPatientIDs, 3..90) forward\n"
        "end\n");
    assert_string_equal(pol_policy_name(p), "hobit trial");
    assert_int_equal(pol_policy_version(p), 12);
    assert_true(pol_policy_keep_list(p));
    assert_int_equal(pol_policy_options(p),
                     POL_OPT_RETAIN_LONG_MODIFIED_DATES |
                         POL_OPT_CLEAN_GRAPHICS);
    assert_string_equal(pol_option_name(POL_OPT_RETAIN_LONG_MODIFIED_DATES),
                        "retain-longitudinal-modified-dates");
    assert_string_equal(pol_option_name(POL_OPT_CLEAN_VISUAL_FEATURES),
                        "clean-recognizable-visual-features");
    assert_null(pol_option_name(POL_OPT_RETAIN_UIDS | POL_OPT_CLEAN_GRAPHICS));

    /* The key without its final newline; its id is "sha256:" and the
     * first 8 bytes of its SHA-256, never the key. */
    size_t key_len;
    const uint8_t *key = pol_policy_key(p, &key_len);
    assert_int_equal(key_len, strlen(TEST_KEY));
    assert_memory_equal(key, TEST_KEY, key_len);
    uint8_t digest[32];
    unsigned digest_len;
    char want_id[32];
    assert_int_equal(EVP_Digest(TEST_KEY, strlen(TEST_KEY), digest,
                                &digest_len, EVP_sha256(), NULL), 1);
    int n = snprintf(want_id, sizeof want_id, "sha256:");
    for (int i = 0; i < 8; i++)
        n += snprintf(want_id + n, sizeof want_id - (size_t)n, "%02x",
                      digest[i]);
    assert_string_equal(pol_policy_key_id(p), want_id);
    assert_int_equal(strlen(pol_policy_key_id(p)), 7 + 16);

    size_t count;
    const pol_rule *rules = pol_policy_rules(p, &count);
    static const struct {
        pol_action_kind kind;
        unsigned line;
        const char *ref;
    } expected[] = {
        {POL_KEEP, 10, "SoftwareVersions"},
        {POL_REMOVE, 11, "StationName"},
        {POL_EMPTY, 12, "StudyID"},
        {POL_REPLACE, 13, "PatientName"},
        {POL_HASH, 14, "AccessionNumber"},
        {POL_LOOKUP, 15, "PatientID"},
        {POL_REMAP_UID, 16, "StudyInstanceUID"},
        {POL_HASH, 17, "OtherPatientIDs"},
        {POL_SHIFT_DATE, 18, "AcquisitionDate"},
    };
    assert_int_equal(count, sizeof expected / sizeof *expected);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(rules[i].kind, expected[i].kind);
        assert_int_equal(rules[i].line, expected[i].line);
        assert_int_equal(rules[i].column, 3);
        assert_string_equal(rules[i].file, in_scratch("acc.policy"));
        assert_string_equal(rules[i].ref.text, expected[i].ref);
        assert_int_equal(rules[i].ref.length, 1);
    }
    assert_int_equal(rules[0].ref.steps[0].tag, tag_of("SoftwareVersions"));
    assert_int_equal(rules[0].ref.steps[0].mask, 0xFFFFFFFFu);
    assert_string_equal(rules[3].text, "HOBIT^{PatientID}");
    assert_null(rules[4].table);
    assert_non_null(rules[5].table);
    assert_int_equal(rules[5].missing, POL_MISSING_DEFAULT);
    assert_string_equal(rules[5].fallback, "UNKNOWN");

    const pol_tagref *shift_ref;
    int min_days, max_days;
    bool back;
    assert_true(pol_policy_date_shift(p, &shift_ref, &min_days, &max_days,
                                      &back));
    assert_string_equal(shift_ref->text, "OtherPatientIDs");
    assert_int_equal(min_days, 3);
    assert_int_equal(max_days, 90);
    assert_false(back);

    pol_gate_info gate;
    assert_true(pol_policy_gate(p, 0, &gate));
    assert_int_equal(gate.verdict, POL_REJECT);
    assert_true(gate.unless);
    assert_string_equal(gate.because, "CT and MR only");
    assert_string_equal(gate.file, in_scratch("acc.policy"));
    assert_int_equal(gate.line, 8);
    assert_true(pol_policy_gate(p, 1, &gate));
    assert_int_equal(gate.verdict, POL_QUARANTINE);
    assert_false(gate.unless);
    assert_null(gate.because);
    assert_int_equal(gate.line, 9);
    assert_false(pol_policy_gate(p, 2, &gate));
    pol_policy_unref(p);

    /* The defaults: standard mode, no shift, no key when nothing needs
     * one (retain-uids and no hash, remap or shift), shifts go back. */
    p = compile_ok("acc.policy", "policy \"plain\" version 1\n"
                                 "  profile basic\n"
                                 "  option retain-uids\n"
                                 "end\n");
    assert_false(pol_policy_keep_list(p));
    assert_false(pol_policy_date_shift(p, &shift_ref, &min_days, &max_days,
                                       &back));
    assert_null(pol_policy_key(p, &key_len));
    assert_int_equal(key_len, 0);
    assert_string_equal(pol_policy_key_id(p), "");
    assert_false(pol_policy_gate(p, 0, &gate));
    rules = pol_policy_rules(p, &count);
    assert_int_equal(count, 0);
    pol_policy_unref(p);
    p = compile_ok("acc.policy",
                   HEAD "  option retain-longitudinal-modified-dates\n"
                        "  shift dates by hmac-days(PatientID, 0..0)\n"
                        "end\n");
    assert_true(pol_policy_date_shift(p, &shift_ref, &min_days, &max_days,
                                      &back));
    assert_string_equal(shift_ref->text, "PatientID");
    assert_int_equal(min_days, 0);
    assert_int_equal(max_days, 0);
    assert_true(back);
    pol_policy_unref(p);
}

/* A policy is shared by reference: the last unref frees it (ASan's leak
 * check sees the rest). */
static void test_refcount(void **state)
{
    (void)state;
    pol_policy *p = compile_ok("ref.policy",
                               HEAD "  reject if Modality == US\nend\n");
    assert_ptr_equal(pol_policy_ref(p), p);
    assert_ptr_equal(pol_policy_ref(p), p);
    pol_policy_unref(p);
    pol_policy_unref(p);
    assert_string_equal(pol_policy_name(p), "t"); /* one holder is left */
    pol_policy_unref(p);
    assert_null(pol_policy_ref(NULL));
    pol_policy_unref(NULL);
}

/* ---- which attributes a reference names --------------------------------- */

/* The rules of a policy whose lines are "keep REF", one per reference. */
static pol_policy *keep_policy(const char *const *refs, size_t count)
{
    char source[4096];
    int n = snprintf(source, sizeof source, HEAD);
    for (size_t i = 0; i < count; i++)
        n += snprintf(source + n, sizeof source - (size_t)n, "  keep %s\n",
                      refs[i]);
    snprintf(source + n, sizeof source - (size_t)n, "end\n");
    pol_policy *p = compile_ok("refs.policy", source);
    size_t rule_count;
    pol_policy_rules(p, &rule_count);
    assert_int_equal(rule_count, count);
    return p;
}

static const pol_tagref *ref_at(const pol_policy *p, size_t index)
{
    size_t count;
    return &pol_policy_rules(p, &count)[index].ref;
}

static void set_string(dcm_dataset *ds, uint32_t tag, dcm_vr vr,
                       const char *text)
{
    assert_int_equal(dcm_dataset_set_string(ds, tag, vr, text, NULL), 0);
}

static void test_tagref_numbers_and_masks(void **state)
{
    (void)state;
    static const char *const refs[] = {
        "PatientName", "(0010,0010)", "(50xx,xxxx)", "(60xx,3000)",
        "OverlayData", "(0008,xxxx)",
    };
    pol_policy *p = keep_policy(refs, 6);
    dcm_dataset *ds = dcm_dataset_new();
    const pol_tagref *keyword = ref_at(p, 0), *number = ref_at(p, 1),
                     *curves = ref_at(p, 2), *overlay = ref_at(p, 3),
                     *overlay_keyword = ref_at(p, 4), *group = ref_at(p, 5);
    assert_true(pol_tagref_matches(keyword, ds, DCM_TAG(0x0010, 0x0010)));
    assert_false(pol_tagref_matches(keyword, ds, DCM_TAG(0x0010, 0x0020)));
    assert_true(pol_tagref_matches(number, ds, DCM_TAG(0x0010, 0x0010)));
    assert_false(pol_tagref_matches(number, ds, DCM_TAG(0x0010, 0x1010)));

    /* x in a group spares the odd (private) groups between: 0xFF01. */
    assert_int_equal(curves->steps[0].mask, 0xFF010000u);
    assert_true(pol_tagref_matches(curves, ds, DCM_TAG(0x5000, 0x0005)));
    assert_true(pol_tagref_matches(curves, ds, DCM_TAG(0x501E, 0x3000)));
    assert_false(pol_tagref_matches(curves, ds, DCM_TAG(0x6000, 0x3000)));

    assert_int_equal(overlay->steps[0].mask, 0xFF01FFFFu);
    assert_true(pol_tagref_matches(overlay, ds, DCM_TAG(0x6000, 0x3000)));
    assert_true(pol_tagref_matches(overlay, ds, DCM_TAG(0x601E, 0x3000)));
    assert_false(pol_tagref_matches(overlay, ds, DCM_TAG(0x6000, 0x3001)));
    assert_false(pol_tagref_matches(overlay, ds, DCM_TAG(0x7000, 0x3000)));

    /* A keyword of a repeating group names every overlay group, but not
     * the odd (private) groups between them: (6001,3000) is whatever its
     * creator says it is. */
    assert_true(pol_tagref_matches(overlay_keyword, ds,
                                   DCM_TAG(0x6000, 0x3000)));
    assert_true(pol_tagref_matches(overlay_keyword, ds,
                                   DCM_TAG(0x6002, 0x3000)));
    assert_false(pol_tagref_matches(overlay_keyword, ds,
                                    DCM_TAG(0x6001, 0x3000)));
    assert_false(pol_tagref_matches(overlay_keyword, ds,
                                    DCM_TAG(0x6002, 0x3001)));

    assert_true(pol_tagref_matches(group, ds, DCM_TAG(0x0008, 0x0050)));
    assert_false(pol_tagref_matches(group, ds, DCM_TAG(0x0009, 0x0050)));
    dcm_dataset_free(ds);
    pol_policy_unref(p);
}

/* A private element is named by its creator: the block (the ee of
 * (gggg,eeXX)) is wherever that creator's name stands in this dataset. */
static void test_tagref_private(void **state)
{
    (void)state;
    static const char *const refs[] = {
        "(0019,\"GEMS_ACQU_01\",10)",
        "(0019,\"GEMS_ACQU_01\",xx)",
        "(0019,\"GEMS_ACQU_01  \",10)", /* padding is not part of a name */
    };
    pol_policy *p = keep_policy(refs, 3);
    const pol_tagref *one = ref_at(p, 0), *block = ref_at(p, 1),
                     *padded = ref_at(p, 2);
    assert_string_equal(one->steps[0].creator, "GEMS_ACQU_01");
    assert_string_equal(padded->steps[0].creator, "GEMS_ACQU_01");
    assert_string_equal(one->text, "(0019,\"GEMS_ACQU_01\",10)");

    /* The creator in the first block, (0019,0010). */
    dcm_dataset *first = dcm_dataset_new();
    set_string(first, DCM_TAG(0x0019, 0x0010), DCM_VR_LO, "GEMS_ACQU_01");
    set_string(first, DCM_TAG(0x0019, 0x1010), DCM_VR_LO, "x");
    assert_true(pol_tagref_matches(one, first, DCM_TAG(0x0019, 0x1010)));
    assert_true(pol_tagref_matches(padded, first, DCM_TAG(0x0019, 0x1010)));
    assert_false(pol_tagref_matches(one, first, DCM_TAG(0x0019, 0x1011)));
    assert_true(pol_tagref_matches(block, first, DCM_TAG(0x0019, 0x1011)));
    /* The creator element itself is not one of the creator's elements. */
    assert_false(pol_tagref_matches(one, first, DCM_TAG(0x0019, 0x0010)));
    assert_false(pol_tagref_matches(block, first, DCM_TAG(0x0019, 0x0010)));
    /* Nor is an element of a block no creator holds. */
    assert_false(pol_tagref_matches(block, first, DCM_TAG(0x0019, 0x1110)));

    /* Another file: another vendor took block 10, GEMS is in block 12
     * (with the LO's padding space). */
    dcm_dataset *second = dcm_dataset_new();
    set_string(second, DCM_TAG(0x0019, 0x0010), DCM_VR_LO, "SIEMENS CT VA0");
    set_string(second, DCM_TAG(0x0019, 0x0012), DCM_VR_LO, "GEMS_ACQU_01 ");
    set_string(second, DCM_TAG(0x0019, 0x1010), DCM_VR_LO, "other");
    set_string(second, DCM_TAG(0x0019, 0x1210), DCM_VR_LO, "ge");
    assert_false(pol_tagref_matches(one, second, DCM_TAG(0x0019, 0x1010)));
    assert_true(pol_tagref_matches(one, second, DCM_TAG(0x0019, 0x1210)));
    assert_false(pol_tagref_matches(one, second, DCM_TAG(0x0019, 0x1211)));
    assert_true(pol_tagref_matches(block, second, DCM_TAG(0x0019, 0x12FF)));
    assert_false(pol_tagref_matches(block, second, DCM_TAG(0x0019, 0x10FF)));
    /* Same creator, same block, another group. */
    assert_false(pol_tagref_matches(one, second, DCM_TAG(0x0021, 0x1210)));
    dcm_dataset_free(first);
    dcm_dataset_free(second);
    pol_policy_unref(p);
}

/* A single step names the attribute at any depth; A/B names B only
 * directly inside an item of A (A itself at any depth). */
static void test_tagref_paths(void **state)
{
    (void)state;
    static const char *const refs[] = {
        "RequestAttributesSequence/AccessionNumber",
        "AccessionNumber",
        "ReferencedStudySequence/RequestAttributesSequence/AccessionNumber",
    };
    pol_policy *p = keep_policy(refs, 3);
    const pol_tagref *path = ref_at(p, 0), *single = ref_at(p, 1),
                     *long_path = ref_at(p, 2);
    assert_int_equal(path->length, 2);
    assert_string_equal(path->text,
                        "RequestAttributesSequence/AccessionNumber");
    uint32_t accession = tag_of("AccessionNumber");

    dcm_dataset *top = dcm_dataset_new();
    set_string(top, accession, DCM_VR_SH, "A0");
    dcm_element *request =
        dcm_dataset_set_sequence(top, tag_of("RequestAttributesSequence"),
                                 NULL);
    dcm_dataset *in_request = dcm_element_append_item(request, NULL);
    set_string(in_request, accession, DCM_VR_SH, "A1");
    dcm_element *other =
        dcm_dataset_set_sequence(top, tag_of("ReferencedStudySequence"), NULL);
    dcm_dataset *in_other = dcm_element_append_item(other, NULL);
    set_string(in_other, accession, DCM_VR_SH, "A2");
    /* ReferencedStudySequence > item > RequestAttributesSequence > item */
    dcm_element *nested = dcm_dataset_set_sequence(
        in_other, tag_of("RequestAttributesSequence"), NULL);
    dcm_dataset *in_nested = dcm_element_append_item(nested, NULL);
    set_string(in_nested, accession, DCM_VR_SH, "A3");

    assert_false(pol_tagref_matches(path, top, accession));
    assert_true(pol_tagref_matches(path, in_request, accession));
    assert_false(pol_tagref_matches(path, in_other, accession));
    assert_true(pol_tagref_matches(path, in_nested, accession));

    assert_true(pol_tagref_matches(single, top, accession));
    assert_true(pol_tagref_matches(single, in_request, accession));
    assert_true(pol_tagref_matches(single, in_nested, accession));

    assert_false(pol_tagref_matches(long_path, in_request, accession));
    assert_true(pol_tagref_matches(long_path, in_nested, accession));
    dcm_dataset_free(top);
    pol_policy_unref(p);
}

/* ---- conditions: which instances a gate stops --------------------------- */

static dcm_dataset *ct_instance(void)
{
    dcm_dataset *ds = dcm_dataset_new();
    set_string(ds, tag_of("Modality"), DCM_VR_CS, "CT");
    set_string(ds, tag_of("ImageType"), DCM_VR_CS, "ORIGINAL\\PRIMARY\\AXIAL");
    set_string(ds, tag_of("PatientName"), DCM_VR_PN, "DOE^JOHN");
    set_string(ds, tag_of("PatientAge"), DCM_VR_AS, "045Y");
    set_string(ds, tag_of("SliceThickness"), DCM_VR_DS, "2.50");
    set_string(ds, tag_of("SeriesNumber"), DCM_VR_IS, "3");
    set_string(ds, tag_of("StudyDescription"), DCM_VR_LO,
               "CT CHEST W CONTRAST ");
    set_string(ds, tag_of("InstitutionName"), DCM_VR_LO, "St. Elsewhere");
    set_string(ds, tag_of("SOPClassUID"), DCM_VR_UI,
               "1.2.840.10008.5.1.4.1.1.2");
    uint8_t rows[2] = {0x00, 0x02}; /* US 512, little endian */
    assert_int_equal(dcm_dataset_set_bytes(ds, tag_of("Rows"), DCM_VR_US,
                                           rows, 2, NULL), 0);
    set_string(ds, DCM_TAG(0x0019, 0x0010), DCM_VR_LO, "GEMS_ACQU_01");
    set_string(ds, DCM_TAG(0x0019, 0x1024), DCM_VR_DS, "42");
    dcm_element *request = dcm_dataset_set_sequence(
        ds, tag_of("RequestAttributesSequence"), NULL);
    set_string(dcm_element_append_item(request, NULL),
               tag_of("ScheduledProcedureStepID"), DCM_VR_SH, "SPS1");
    set_string(dcm_element_append_item(request, NULL),
               tag_of("ScheduledProcedureStepID"), DCM_VR_SH, "SPS2");
    set_string(ds, tag_of("ScheduledProcedureStepID"), DCM_VR_SH, "TOP");
    return ds;
}

/* Whether "reject if COND" rejects ds. */
static bool fires(const char *condition, const dcm_dataset *ds)
{
    char source[1024], reason[256];
    snprintf(source, sizeof source, HEAD "  reject if %s\nend\n", condition);
    pol_policy *p = compile_ok("cond.policy", source);
    pol_verdict verdict = pol_policy_filter(p, ds, reason, sizeof reason);
    pol_policy_unref(p);
    return verdict == POL_REJECT;
}

static void test_conditions(void **state)
{
    (void)state;
    static const struct {
        const char *condition;
        bool fires;
    } cases[] = {
        /* Text, compared without padding; quotes are optional. */
        {"Modality == CT", true},
        {"Modality == \"CT\"", true},
        {"Modality == MR", false},
        {"Modality != MR", true},
        {"Modality != CT", false},
        {"StudyDescription == \"CT CHEST W CONTRAST\"", true},
        /* Numbers compare as numbers when both sides are numbers: "3" is
         * less than 10, "2.50" is 2.5; text compares as text. */
        {"SeriesNumber < 10", true},
        {"SeriesNumber > 10", false},
        {"SliceThickness == 2.5", true},
        {"SliceThickness <= 2.5", true},
        {"SliceThickness < 2.5", false},
        {"SliceThickness >= 2.5", true},
        {"SliceThickness > 2", true},
        {"Rows >= 512", true}, /* a binary US value */
        {"Rows < 512", false},
        {"Rows == 512.0", true},
        {"PatientName < \"E\"", true},
        {"PatientName > \"DOE\"", true},
        {"PatientName >= \"DOE^JOHN\"", true},
        {"PatientName > \"DOE^JOHN\"", false},
        {"PatientAge > \"040Y\"", true},
        /* Lists. */
        {"Modality in (CT, MR)", true},
        {"Modality in (MR, PT)", false},
        {"Modality not in (MR, PT)", true},
        {"Modality not in (CT, MR)", false},
        {"SeriesNumber in (1, 3.0)", true},
        /* Substrings and POSIX extended regular expressions. */
        {"StudyDescription contains CHEST", true},
        {"StudyDescription contains \"chest\"", false},
        {"StudyDescription not contains \"HEAD\"", true},
        {"StudyDescription matches \"^CT .*CONTRAST$\"", true},
        {"StudyDescription matches \"^CHEST\"", false},
        {"StudyDescription not matches \"^MR\"", true},
        {"InstitutionName matches \"^St[.] \"", true},
        {"SOPClassUID matches \"^1[.]2[.]840[.]10008[.]5[.]1[.]4[.]1[.]1[.]"
         "(2|4)$\"", true},
        /* exists, and tests on an absent attribute: false, unless "not"
         * stands before the whole test. */
        {"Modality exists", true},
        {"BurnedInAnnotation exists", false},
        {"not BurnedInAnnotation exists", true},
        {"BurnedInAnnotation == YES", false},
        {"BurnedInAnnotation != YES", false},
        {"BurnedInAnnotation < ZZZ", false},
        {"BurnedInAnnotation in (YES, NO)", false},
        {"BurnedInAnnotation not in (YES, NO)", true},
        {"not BurnedInAnnotation == YES", true},
        /* A multi-valued attribute passes when any of its values does. */
        {"ImageType == AXIAL", true},
        {"ImageType == LOCALIZER", false},
        {"ImageType in (LOCALIZER, SCOUT)", false},
        {"ImageType in (DERIVED, PRIMARY)", true},
        {"ImageType != ORIGINAL", true},
        /* contains and matches too look at one value at a time. */
        {"ImageType matches \"^AXIAL$\"", true},
        {"ImageType contains \"PRIMARY\\AXIAL\"", false},
        {"ImageType matches \"^ORIG.*AXIAL$\"", false},
        /* In a string, a backslash other than \" \\ \$ is itself. */
        {"ImageType matches \"^AX\\w+$\"", true},
        /* and binds tighter than or; not tighter than and. */
        {"Modality == CT or Modality == MR and Rows == 256", true},
        {"(Modality == CT or Modality == MR) and Rows == 256", false},
        {"Modality == MR and Rows == 512 or Modality == CT", true},
        {"not Modality == MR and Rows == 256", false},
        {"not (Modality == MR and Rows == 256)", true},
        {"not not Modality == CT", true},
        {"Modality == CT and (Rows == 256 or SeriesNumber == 3)", true},
        /* Paths look into every item of the top-level sequence; a single
         * keyword looks at the top level only. */
        {"RequestAttributesSequence/ScheduledProcedureStepID == SPS2", true},
        {"RequestAttributesSequence/ScheduledProcedureStepID == TOP", false},
        {"ScheduledProcedureStepID == SPS1", false},
        {"ScheduledProcedureStepID == TOP", true},
        /* Numbers and private elements by creator. */
        {"(0008,0060) == CT", true},
        {"(0019,\"GEMS_ACQU_01\",24) > 41", true},
        {"(0019,\"GEMS_ACQU_01\",24) > 42", false},
        {"(0019,\"OTHER\",24) exists", false},
    };
    dcm_dataset *ds = ct_instance();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        print_message("%s\n", cases[i].condition);
        assert_int_equal(fires(cases[i].condition, ds), cases[i].fires);
    }
    dcm_dataset_free(ds);
}

/* The lines run in file order and the first that fires decides; the
 * reason is the "because" text (or the line) and where the line is. */
static void test_gates(void **state)
{
    (void)state;
    pol_policy *p = compile_ok(
        "gates.policy",
        HEAD
        "  reject unless Modality in (CT, MR) because \"only CT and MR\"\n"
        "  quarantine if BurnedInAnnotation == YES \\\n"
        "      because \"burned-in annotation\"\n"
        "  reject if PatientName exists\n"
        "end\n");
    dcm_dataset *ds = dcm_dataset_new();
    char reason[256];

    set_string(ds, tag_of("Modality"), DCM_VR_CS, "US");
    set_string(ds, tag_of("BurnedInAnnotation"), DCM_VR_CS, "YES");
    set_string(ds, tag_of("PatientName"), DCM_VR_PN, "DOE^JANE");
    assert_int_equal(pol_policy_filter(p, ds, reason, sizeof reason),
                     POL_REJECT);
    assert_string_equal(reason,
                        expand_at("only CT and MR (@/gates.policy:4)"));

    set_string(ds, tag_of("Modality"), DCM_VR_CS, "MR");
    assert_int_equal(pol_policy_filter(p, ds, reason, sizeof reason),
                     POL_QUARANTINE);
    assert_string_equal(reason,
                        expand_at("burned-in annotation (@/gates.policy:5)"));

    set_string(ds, tag_of("BurnedInAnnotation"), DCM_VR_CS, "NO");
    assert_int_equal(pol_policy_filter(p, ds, reason, sizeof reason),
                     POL_REJECT);
    assert_string_equal(reason, expand_at("@/gates.policy:7"));

    assert_int_equal(dcm_dataset_remove(ds, tag_of("PatientName")), 0);
    strcpy(reason, "stale");
    assert_int_equal(pol_policy_filter(p, ds, reason, sizeof reason),
                     POL_ACCEPT);
    assert_string_equal(reason, "");

    /* unless with an absent attribute: the test is false, so it fires. */
    dcm_dataset *empty = dcm_dataset_new();
    assert_int_equal(pol_policy_filter(p, empty, reason, sizeof reason),
                     POL_REJECT);
    /* A short buffer gets the start of the reason. */
    assert_int_equal(pol_policy_filter(p, empty, reason, 8), POL_REJECT);
    assert_string_equal(reason, "only CT");
    dcm_dataset_free(empty);
    dcm_dataset_free(ds);
    pol_policy_unref(p);
}

/* ---- lookup tables ------------------------------------------------------ */

/* RFC 4180: quoted fields may hold commas, doubled quotes and line ends;
 * lines end in LF or CRLF; blank lines are skipped; unquoted fields lose
 * their surrounding spaces, quoted ones keep them; a UTF-8 byte order mark
 * is skipped. The key column is the first unless "key COLUMN" names
 * another. */
static void test_tables(void **state)
{
    (void)state;
    write_file("ids.csv",
               "\"patient id\",subject_id,site\r\n"
               "PAT-1,\"HOBIT,001\",A\r\n"
               "\r\n"
               "\"PAT \"\"2\"\"\",HOBIT-002,\"B \"\"north\"\"\"\r\n"
               "  PAT-3  ,  HOBIT-003  ,C\n"
               "PAT-4,\"  padded  \",\"two\r\nlines\"\r\n"
               "\n"
               "PAT-5,HOBIT-005,E");
    pol_policy *p = compile_ok(
        "tables.policy",
        HEAD
        "  replace PatientID with lookup \"ids.csv\" column subject_id else "
        "reject\n"
        "  replace OtherPatientIDs with lookup \"ids.csv\" key subject_id "
        "column \"site\" else quarantine\n"
        "  replace PatientComments with lookup \"ids.csv\" key \"patient id\" "
        "column site else default \"unknown site\"\n"
        "end\n");
    size_t count;
    const pol_rule *rules = pol_policy_rules(p, &count);
    assert_int_equal(count, 3);
    const pol_table *by_patient = rules[0].table, *by_subject = rules[1].table;
    assert_int_equal(rules[0].missing, POL_MISSING_REJECT);
    assert_int_equal(rules[1].missing, POL_MISSING_QUARANTINE);
    assert_int_equal(rules[2].missing, POL_MISSING_DEFAULT);
    assert_string_equal(rules[2].fallback, "unknown site");

    assert_string_equal(pol_table_get(by_patient, "PAT-1"), "HOBIT,001");
    assert_string_equal(pol_table_get(by_patient, "PAT \"2\""), "HOBIT-002");
    assert_string_equal(pol_table_get(by_patient, "PAT-3"), "HOBIT-003");
    assert_string_equal(pol_table_get(by_patient, "PAT-4"), "  padded  ");
    assert_string_equal(pol_table_get(by_patient, "PAT-5"), "HOBIT-005");
    assert_null(pol_table_get(by_patient, "PAT-6"));
    assert_null(pol_table_get(by_patient, "patient id")); /* the header */
    assert_null(pol_table_get(by_patient, ""));
    assert_null(pol_table_get(by_patient, "pat-1")); /* exact keys */

    assert_string_equal(pol_table_get(by_subject, "HOBIT,001"), "A");
    assert_string_equal(pol_table_get(by_subject, "HOBIT-002"),
                        "B \"north\"");
    assert_string_equal(pol_table_get(by_subject, "  padded  "),
                        "two\r\nlines");
    assert_string_equal(pol_table_get(by_subject, "HOBIT-005"), "E");
    assert_null(pol_table_get(by_subject, "PAT-1"));
    assert_string_equal(pol_table_get(rules[2].table, "PAT-3"), "C");
    pol_policy_unref(p);

    /* A spreadsheet's byte order mark is not part of the first name. */
    write_file("bom.csv", "\xEF\xBB\xBFpatient_id,subject_id\r\n"
                          "PAT-1,S-1\r\n");
    p = compile_ok("tables.policy",
                   HEAD "  replace PatientID with lookup \"bom.csv\" key "
                        "patient_id column subject_id else reject\nend\n");
    rules = pol_policy_rules(p, &count);
    assert_string_equal(pol_table_get(rules[0].table, "PAT-1"), "S-1");
    pol_policy_unref(p);

    /* A table with only its header is empty, not an error. */
    write_file("empty.csv", "p,s\r\n");
    p = compile_ok("tables.policy",
                   HEAD "  replace PatientID with lookup \"empty.csv\" column "
                        "s else quarantine\nend\n");
    rules = pol_policy_rules(p, &count);
    assert_null(pol_table_get(rules[0].table, "PAT-1"));
    pol_policy_unref(p);

    /* An open quote is an error of the table, at the line's file name. */
    write_file("open.csv", "p,s\nPAT-1,\"S-1\n");
    assert_first_error("tables.policy",
                       HEAD "  replace PatientID with lookup \"open.csv\" "
                            "column s else quarantine\nend\n",
                       NULL,
                       "@/tables.policy:4:33: error: open.csv: line 2: quote "
                       "not closed");
}

/* ---- replace templates -------------------------------------------------- */

static void test_template_check(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *error; /* NULL: well-formed */
    } cases[] = {
        {"ANON", NULL},
        {"", NULL},
        {"HOBIT^{PatientID}", NULL},
        {"{original:PatientID}/{StudyDate}", NULL},
        {"{{not a reference}}", NULL},
        {"{PatientNme}", "unknown attribute 'PatientNme' in the template"},
        {"{original:}", "'{' without a keyword and '}'"},
        {"{}", "'{' without a keyword and '}'"},
        {"ID {PatientID", "'{' without a keyword and '}'"},
        {"a}b", "'}' without '{' (write }} for a brace)"},
        {"{original:Nope}", "unknown attribute 'Nope' in the template"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char error[160] = "untouched";
        int rc = pol_template_check(cases[i].text, error, sizeof error);
        print_message("%s\n", cases[i].text);
        if (!cases[i].error) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(error, cases[i].error);
        }
    }
}

typedef struct seen {
    uint32_t tags[8];
    bool original[8];
    size_t count;
} seen;

static void note_ref(void *ctx, uint32_t tag, bool original)
{
    seen *s = ctx;
    assert_true(s->count < 8);
    s->tags[s->count] = tag;
    s->original[s->count++] = original;
}

static void test_template_each(void **state)
{
    (void)state;
    seen s = {0};
    pol_template_each("{{x}} {PatientID}-{original:StudyDate}/{PatientID}",
                      note_ref, &s);
    assert_int_equal(s.count, 3);
    assert_int_equal(s.tags[0], tag_of("PatientID"));
    assert_false(s.original[0]);
    assert_int_equal(s.tags[1], tag_of("StudyDate"));
    assert_true(s.original[1]);
    assert_int_equal(s.tags[2], tag_of("PatientID"));
    assert_false(s.original[2]);
    s.count = 0;
    pol_template_each("plain text", note_ref, &s);
    assert_int_equal(s.count, 0);
}

/* Values as the engine gives them: PatientID after de-identification
 * and as received; StudyDate absent. */
static const char *get_value(void *ctx, uint32_t tag, bool original)
{
    (void)ctx;
    if (tag == DCM_TAG(0x0010, 0x0020))
        return original ? "MRN-123" : "SUBJ-7";
    return NULL;
}

static void test_template_expand(void **state)
{
    (void)state;
    static const char text[] =
        "{{ID}} {PatientID} was {original:PatientID}{StudyDate}!";
    static const char want[] = "{ID} SUBJ-7 was MRN-123!";
    char out[64];
    assert_int_equal(pol_template_expand(text, get_value, NULL, out,
                                         sizeof out),
                     (int)strlen(want));
    assert_string_equal(out, want);
    /* Exactly enough room (the NUL included), and one byte less. */
    assert_int_equal(pol_template_expand(text, get_value, NULL, out,
                                         sizeof want),
                     (int)strlen(want));
    assert_string_equal(out, want);
    assert_int_equal(pol_template_expand(text, get_value, NULL, out,
                                         sizeof want - 1),
                     -1);
    assert_int_equal(pol_template_expand(text, get_value, NULL, out, 0), -1);
    assert_int_equal(pol_template_expand("", get_value, NULL, out, 1), 0);
    assert_string_equal(out, "");
    assert_int_equal(pol_template_expand("{Nope}", get_value, NULL, out,
                                         sizeof out),
                     -1);
}

/* ---- pixels: compression and redaction ---------------------------------- */

/* Every way a pixel line can be wrong, with the exact first error. */
static void test_golden_pixel_errors(void **state)
{
    (void)state;
    static const struct {
        const char *line; /* line 4 of HEAD ... end */
        const char *expected;
    } cases[] = {
        {"compress jpeg2000-lossless",
         "4:12: error: expected 'to', found 'jpeg2000-lossless' (hint: "
         "write: compress to jpeg2000-lossless)"},
        {"compress to j2k",
         "4:15: error: unknown codec 'j2k' (hint: codecs: rle, "
         "jpeg-ls-lossless, jpeg2000-lossless, htj2k-lossless, jpeg quality "
         "N, jpeg-ls-near-lossless error N, jpeg2000 ratio|psnr N, htj2k "
         "ratio|psnr N)"},
        {"compress to \"rle\"",
         "4:15: error: unknown codec 'rle' (hint: codecs: rle, "
         "jpeg-ls-lossless, jpeg2000-lossless, htj2k-lossless, jpeg quality "
         "N, jpeg-ls-near-lossless error N, jpeg2000 ratio|psnr N, htj2k "
         "ratio|psnr N)"},
        {"compress to",
         "4:14: error: unknown codec 'end of line' (hint: codecs: rle, "
         "jpeg-ls-lossless, jpeg2000-lossless, htj2k-lossless, jpeg quality "
         "N, jpeg-ls-near-lossless error N, jpeg2000 ratio|psnr N, htj2k "
         "ratio|psnr N)"},
        {"compress to jpeg",
         "4:19: error: expected 'quality', found 'end of line' (hint: write: "
         "compress to jpeg quality 90)"},
        {"compress to jpeg quality 0",
         "4:28: error: JPEG quality must be a whole number from 1 to 100, "
         "found '0' (hint: 90 keeps fine detail; lower numbers lose more)"},
        {"compress to jpeg quality 101",
         "4:28: error: JPEG quality must be a whole number from 1 to 100, "
         "found '101' (hint: 90 keeps fine detail; lower numbers lose more)"},
        {"compress to jpeg quality 92.5",
         "4:28: error: JPEG quality must be a whole number from 1 to 100, "
         "found '92.5' (hint: 90 keeps fine detail; lower numbers lose "
         "more)"},
        {"compress to jpeg-ls-near-lossless 2",
         "4:37: error: expected 'error', found '2' (hint: write: compress to "
         "jpeg-ls-near-lossless error 2)"},
        {"compress to jpeg-ls-near-lossless error 0",
         "4:43: error: the near-lossless error must be a whole number from 1 "
         "to 255, found '0' (hint: the largest difference allowed in a "
         "sample; for none, use jpeg-ls-lossless)"},
        {"compress to jpeg-ls-near-lossless error 256",
         "4:43: error: the near-lossless error must be a whole number from 1 "
         "to 255, found '256' (hint: the largest difference allowed in a "
         "sample; for none, use jpeg-ls-lossless)"},
        {"compress to jpeg2000 ratio 1",
         "4:30: error: the compression ratio must be a number above 1 and at "
         "most 1000, found '1' (hint: 10 means 10:1; for no loss, use the "
         "-lossless codec)"},
        {"compress to htj2k ratio 0.5",
         "4:27: error: the compression ratio must be a number above 1 and at "
         "most 1000, found '0.5' (hint: 10 means 10:1; for no loss, use the "
         "-lossless codec)"},
        {"compress to jpeg2000 ratio 1001",
         "4:30: error: the compression ratio must be a number above 1 and at "
         "most 1000, found '1001' (hint: 10 means 10:1; for no loss, use the "
         "-lossless codec)"},
        {"compress to jpeg2000 ratio 10:1",
         "4:32: error: unexpected character ':'"},
        {"compress to jpeg2000 psnr 19.5",
         "4:29: error: the PSNR in dB must be a number from 20 to 150, "
         "found '19.5' (hint: 45 keeps the image close to the "
         "original; higher keeps more)"},
        {"compress to jpeg2000 lossless",
         "4:24: error: expected 'ratio' or 'psnr' after jpeg2000, found "
         "'lossless' (hint: lossy: ratio 10 or psnr 45; lossless: compress "
         "to jpeg2000-lossless or htj2k-lossless)"},
        {"compress to htj2k quality 40",
         "4:21: error: expected 'ratio' or 'psnr' after htj2k, found "
         "'quality' (hint: lossy: ratio 10 or psnr 45; lossless: compress "
         "to jpeg2000-lossless or htj2k-lossless)"},
        {"compress to rle when Modality == US",
         "4:19: error: expected 'if', 'unless' or the end of the line, found "
         "'when' (hint: a condition as on reject lines: ... if Modality == "
         "US)"},
        {"compress to jpeg-ls-lossless if Modality CT",
         "4:44: error: expected a test, found 'CT' (hint: ==, !=, <, <=, >, "
         ">=, in (...), contains, matches, exists)"},
        {"keep-syntax because \"small\"",
         "4:15: error: expected 'if', 'unless' or the end of the line, found "
         "'because' (hint: a condition as on reject lines: ... if Modality == "
         "US)"},
        {"keep-syntax if Modalty == SR",
         "4:18: error: unknown attribute 'Modalty' (hint: use a keyword of "
         "PS3.6 (as dcmdump prints it) or a number (gggg,eeee))"},
        {"redact box 0 0 10 10",
         "4:10: error: expected 'rectangle', found 'box' (hint: write: "
         "redact rectangle X Y WIDTH HEIGHT)"},
        {"redact rectangle 0 0 0 40",
         "4:24: error: WIDTH must be a whole number from 1 to 65535, found "
         "'0' (hint: in pixels: redact rectangle X Y WIDTH HEIGHT)"},
        {"redact rectangle 0 0 512 0",
         "4:28: error: HEIGHT must be a whole number from 1 to 65535, found "
         "'0' (hint: in pixels: redact rectangle X Y WIDTH HEIGHT)"},
        {"redact rectangle 0 0 512",
         "4:27: error: HEIGHT must be a whole number from 1 to 65535, found "
         "'end of line' (hint: in pixels: redact rectangle X Y WIDTH "
         "HEIGHT)"},
        {"redact rectangle -1 0 10 10",
         "4:20: error: X must be a whole number from 0 to 65535, found '-1' "
         "(hint: in pixels: redact rectangle X Y WIDTH HEIGHT)"},
        {"redact rectangle 0 65536 10 10",
         "4:22: error: Y must be a whole number from 0 to 65535, found "
         "'65536' (hint: in pixels: redact rectangle X Y WIDTH HEIGHT)"},
        {"redact rectangle 65000 0 600 10",
         "4:3: error: the rectangle ends past column 65535 (X + WIDTH is "
         "65600) (hint: Columns is at most 65535)"},
        {"redact rectangle 0 65535 10 1",
         "4:3: error: the rectangle ends past row 65535 (Y + HEIGHT is "
         "65536) (hint: Rows is at most 65535)"},
        {"redact rectangle 0 0 10 10 if Manufacturer == ACME extra",
         "4:54: error: unexpected 'extra' after the statement (hint: one "
         "statement per line)"},
        {"on failure quarantine",
         "4:6: error: expected 'compression-failure', found 'failure' (hint: "
         "write: on compression-failure quarantine)"},
        {"on compression-failure drop",
         "4:26: error: expected keep-original or quarantine, found 'drop' "
         "(hint: keep-original forwards the instance in the syntax it came "
         "in; quarantine holds it)"},
        {"on compression-failure quarantine\n"
         "  on compression-failure keep-original",
         "5:3: error: a second 'on compression-failure' line (the first is "
         "on line 4)"},
        {"verify lossy on",
         "4:10: error: expected 'lossless', found 'lossy' (hint: write: "
         "verify lossless on)"},
        {"verify lossless yes",
         "4:19: error: expected on or off, found 'yes' (hint: on (the "
         "default) decodes each lossless result and compares it with the "
         "original)"},
        {"verify lossless on\n  verify lossless on",
         "5:3: error: a second 'verify lossless' line (the first is on line "
         "4)"},
        {"allow lossy",
         "4:9: error: expected lossy-recompression, found 'lossy' (hint: "
         "write: allow lossy-recompression)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char source[1024], expected[1024];
        print_message("%s\n", cases[i].line);
        snprintf(source, sizeof source, HEAD "  %s\nend\n", cases[i].line);
        snprintf(expected, sizeof expected, "@/pixels.policy:%s",
                 cases[i].expected);
        assert_first_error("pixels.policy", source, NULL, expected);
    }
    /* Outside policy ... end, as every statement. */
    assert_first_error("pixels.policy",
                       "compress to rle\npolicy \"t\" version 1\n"
                       "  profile basic\n  key file \"k.key\"\nend\n",
                       NULL,
                       "@/pixels.policy:1:1: error: statement before "
                       "'policy' (hint: a policy file is: policy \"NAME\" "
                       "version N ... end)");
}

/* The diagnostics of source, all of them, formatted, must be expected. */
static void assert_diags(const char *name, const char *source,
                         const char *const *expected, size_t count)
{
    pol_diags diags = {0};
    pol_policy *p = compile(name, source, &diags);
    char got[1024];
    for (size_t i = 0; i < diags.count; i++)
        print_message("%s\n", pol_diag_format(&diags.items[i], got,
                                              sizeof got));
    assert_int_equal(diags.count, count);
    for (size_t i = 0; i < count; i++)
        assert_string_equal(pol_diag_format(&diags.items[i], got, sizeof got),
                            expand_at(expected[i]));
    assert_true((p != NULL) == (diags.errors == 0));
    pol_policy_unref(p);
    pol_diags_free(&diags);
}

/* Warnings: pixel lines do nothing yet (once per policy), lines after an
 * unconditional lossless or keep-syntax line never apply (an
 * unconditional lossy line may be skipped, so it hides nothing), and the
 * two statements that lower safety. */
static void test_pixel_warnings(void **state)
{
    (void)state;
    static const char source[] =
        HEAD
        "  compress to jpeg quality 90\n"                        /* 4 */
        "  compress to htj2k-lossless if Modality == CT\n"
        "  keep-syntax\n"                                        /* 6 */
        "  compress to rle if Modality == US\n"
        "  redact rectangle 0 0 10 10\n"                         /* 8 */
        "  verify lossless off\n"
        "  allow lossy-recompression\n"                          /* 10 */
        "  allow lossy-recompression\n"
        "  verify lossless\n"                                    /* 12 */
        "end\n";
    static const char *const expected[] = {
        "@/w.policy:7:3: warning: this line never applies: @/w.policy:6 "
        "applies to every instance (hint: the first line that applies wins: "
        "put lines with a condition before the line without one)",
        "@/w.policy:9:19: warning: lossless results are not checked: an "
        "encoder fault would reach the archive unnoticed (hint: keep the "
        "check unless throughput demands otherwise)",
        "@/w.policy:10:9: warning: lossy lines also apply to images already "
        "compressed with loss, which then lose more (hint: make sure the "
        "protocol allows a second generation of loss)",
        "@/w.policy:11:9: warning: allow lossy-recompression given twice",
        "@/w.policy:11:9: warning: lossy lines also apply to images already "
        "compressed with loss, which then lose more (hint: make sure the "
        "protocol allows a second generation of loss)",
        "@/w.policy:12:18: error: expected on or off, found 'end of line' "
        "(hint: on (the default) decodes each lossless result and compares "
        "it with the original)",
    };
    assert_diags("w.policy", source, expected,
                 sizeof expected / sizeof *expected);
}

static dcm_dataset *pixel_instance(const char *modality,
                                   const char *manufacturer, uint16_t rows)
{
    dcm_dataset *ds = dcm_dataset_new();
    set_string(ds, tag_of("Modality"), DCM_VR_CS, modality);
    set_string(ds, tag_of("Manufacturer"), DCM_VR_LO, manufacturer);
    uint8_t value[2] = {(uint8_t)(rows & 0xFF), (uint8_t)(rows >> 8)};
    assert_int_equal(dcm_dataset_set_bytes(ds, tag_of("Rows"), DCM_VR_US,
                                           value, 2, NULL), 0);
    return ds;
}

/* compress and keep-syntax lines: the first that applies wins, in file
 * order with included lines where the include stands; every parameter
 * reaches the query; no line means the syntax is kept. */
static void test_pixel_first_match(void **state)
{
    (void)state;
    write_file("ct.inc", "compress to htj2k-lossless if Modality == CT and "
                         "Rows >= 512\n");
    pol_policy *p = compile_ok(
        "first.policy",
        HEAD
        "  compress to jpeg quality 85 if Modality == US\n"          /* 4 */
        "  keep-syntax if Modality in (SR, KO)\n"
        "  include \"ct.inc\"\n"                                     /* 6 */
        "  compress to jpeg2000 ratio 12.5 if Modality == XA\n"
        "  compress to htj2k psnr 48 if Modality == DX\n"            /* 8 */
        "  compress to jpeg-ls-near-lossless error 3 if Modality == CR\n"
        "  compress to rle if Modality == SC\n"                      /* 10 */
        "  compress to jpeg-ls-lossless unless Modality == MG\n"
        "  compress to jpeg2000-lossless\n"                          /* 12 */
        "end\n");
    static const struct {
        const char *modality;
        uint16_t rows;
        pol_codec codec;
        const char *ts_uid;
        const char *file;
        unsigned line;
        const char *format;
    } cases[] = {
        {"US", 480, POL_CODEC_JPEG, "1.2.840.10008.1.2.4.50", "first.policy",
         4, "jpeg quality 85"},
        {"SR", 0, POL_CODEC_NONE, NULL, "first.policy", 5, "keep-syntax"},
        {"KO", 0, POL_CODEC_NONE, NULL, "first.policy", 5, "keep-syntax"},
        {"CT", 512, POL_CODEC_HTJ2K_LOSSLESS, "1.2.840.10008.1.2.4.201",
         "ct.inc", 1, "htj2k-lossless"},
        {"CT", 256, POL_CODEC_JPEG_LS, "1.2.840.10008.1.2.4.80",
         "first.policy", 11, "jpeg-ls-lossless"},
        {"XA", 1024, POL_CODEC_J2K, "1.2.840.10008.1.2.4.91", "first.policy",
         7, "jpeg2000 ratio 12.5"},
        {"DX", 2048, POL_CODEC_HTJ2K, "1.2.840.10008.1.2.4.203",
         "first.policy", 8, "htj2k psnr 48"},
        {"CR", 2048, POL_CODEC_JPEG_LS_NEAR, "1.2.840.10008.1.2.4.81",
         "first.policy", 9, "jpeg-ls-near-lossless error 3"},
        {"SC", 100, POL_CODEC_RLE, "1.2.840.10008.1.2.5", "first.policy", 10,
         "rle"},
        {"MG", 3000, POL_CODEC_J2K_LOSSLESS, "1.2.840.10008.1.2.4.90",
         "first.policy", 12, "jpeg2000-lossless"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        print_message("%s %u\n", cases[i].modality, cases[i].rows);
        dcm_dataset *ds = pixel_instance(cases[i].modality, "ACME",
                                         cases[i].rows);
        pol_compression c;
        char reason[256] = "stale", text[64];
        assert_true(pol_policy_compression(p, ds, &c, reason, sizeof reason));
        assert_string_equal(reason, "");
        assert_int_equal(c.codec, cases[i].codec);
        if (cases[i].ts_uid)
            assert_string_equal(c.ts_uid, cases[i].ts_uid);
        else
            assert_null(c.ts_uid);
        assert_string_equal(c.file, in_scratch(cases[i].file));
        assert_int_equal(c.line, cases[i].line);
        assert_string_equal(pol_compression_format(&c, text, sizeof text),
                            cases[i].format);
        assert_int_equal(c.lossy, cases[i].codec == POL_CODEC_JPEG ||
                                      cases[i].codec == POL_CODEC_J2K ||
                                      cases[i].codec == POL_CODEC_HTJ2K ||
                                      cases[i].codec ==
                                          POL_CODEC_JPEG_LS_NEAR);
        assert_int_equal(c.quality, cases[i].codec == POL_CODEC_JPEG ? 85 : 0);
        assert_int_equal(c.near_error,
                         cases[i].codec == POL_CODEC_JPEG_LS_NEAR ? 3 : 0);
        assert_true(c.ratio == (cases[i].codec == POL_CODEC_J2K ? 12.5 : 0));
        assert_true(c.psnr_db == (cases[i].codec == POL_CODEC_HTJ2K ? 48 : 0));
        dcm_dataset_free(ds);
    }
    /* The lines in file order, for explain. */
    static const struct {
        pol_codec codec;
        pol_when when;
    } lines[] = {
        {POL_CODEC_JPEG, POL_IF},          {POL_CODEC_NONE, POL_IF},
        {POL_CODEC_HTJ2K_LOSSLESS, POL_IF}, {POL_CODEC_J2K, POL_IF},
        {POL_CODEC_HTJ2K, POL_IF},         {POL_CODEC_JPEG_LS_NEAR, POL_IF},
        {POL_CODEC_RLE, POL_IF},           {POL_CODEC_JPEG_LS, POL_UNLESS},
        {POL_CODEC_J2K_LOSSLESS, POL_ALWAYS},
    };
    pol_compression c;
    pol_when when;
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        assert_true(pol_policy_compress_line(p, i, &c, &when));
        assert_int_equal(c.codec, lines[i].codec);
        assert_int_equal(when, lines[i].when);
    }
    assert_false(pol_policy_compress_line(p, sizeof lines / sizeof *lines,
                                          &c, &when));
    pol_policy_unref(p);

    /* No line applies: the syntax is kept, and nothing says which line. */
    p = compile_ok("first.policy",
                   HEAD "  compress to rle if Modality == US\nend\n");
    dcm_dataset *ds = pixel_instance("CT", "ACME", 512);
    char reason[16] = "stale";
    c.file = "stale";
    assert_false(pol_policy_compression(p, ds, &c, reason, sizeof reason));
    assert_int_equal(c.codec, POL_CODEC_NONE);
    assert_null(c.file);
    assert_null(c.ts_uid);
    assert_int_equal(c.line, 0);
    assert_string_equal(reason, "");
    assert_false(pol_policy_compression(p, ds, &c, NULL, 0));
    dcm_dataset_free(ds);
    pol_policy_unref(p);

    assert_string_equal(pol_codec_name(POL_CODEC_NONE), "keep-syntax");
    assert_string_equal(pol_codec_name(POL_CODEC_J2K_LOSSLESS),
                        "jpeg2000-lossless");
}

/* Already-lossy input (Lossy Image Compression 01, or a syntax not known
 * to be lossless) is not compressed lossily again: the line is passed
 * over with the reason and the next lines are tried; lossless lines still
 * apply. "allow lossy-recompression" lifts this. */
static void test_pixel_already_lossy(void **state)
{
    (void)state;
    static const char lines[] =
        "  compress to jpeg quality 90 if Modality == US\n"          /* 4 */
        "  compress to htj2k ratio 20 if Modality == US\n"
        "  compress to jpeg2000-lossless if Modality == US and Rows < 100\n"
        "end\n";
    char source[1024];
    snprintf(source, sizeof source, HEAD "%s", lines);
    pol_policy *strict = compile_ok("lossy.policy", source);
    snprintf(source, sizeof source, HEAD "  allow lossy-recompression\n%s",
             lines);
    pol_policy *allowing = compile_ok("allow.policy", source);
    pol_compression c;
    char reason[512];

    /* Native, not flagged: the first line. */
    dcm_dataset *ds = pixel_instance("US", "ACME", 480);
    assert_true(pol_policy_compression(strict, ds, &c, reason, sizeof reason));
    assert_int_equal(c.line, 4);
    assert_string_equal(reason, "");
    /* Flagged 01: both lossy lines are passed over, the first is named;
     * no lossless line applies (Rows 480), so the syntax is kept. */
    set_string(ds, tag_of("LossyImageCompression"), DCM_VR_CS, "01");
    assert_false(pol_policy_compression(strict, ds, &c, reason,
                                        sizeof reason));
    assert_int_equal(c.codec, POL_CODEC_NONE);
    assert_string_equal(
        reason, expand_at("compress to jpeg quality 90 skipped: Lossy Image "
                          "Compression is 01 and the policy does not allow "
                          "lossy recompression (@/lossy.policy:4)"));
    /* A short buffer gets the start. */
    assert_false(pol_policy_compression(strict, ds, &c, reason, 12));
    assert_string_equal(reason, "compress to");
    /* A lossless line after them still applies, the reason stays. */
    uint8_t rows[2] = {64, 0};
    assert_int_equal(dcm_dataset_set_bytes(ds, tag_of("Rows"), DCM_VR_US,
                                           rows, 2, NULL), 0);
    assert_true(pol_policy_compression(strict, ds, &c, reason, sizeof reason));
    assert_int_equal(c.codec, POL_CODEC_J2K_LOSSLESS);
    assert_int_equal(c.line, 6);
    assert_true(strncmp(reason, "compress to jpeg quality 90 skipped", 35) ==
                0);
    /* Allowed: the first line. */
    assert_true(pol_policy_compression(allowing, ds, &c, reason,
                                       sizeof reason));
    assert_int_equal(c.codec, POL_CODEC_JPEG);
    assert_string_equal(reason, "");
    /* 00 (or padded other values) is not lossy. */
    set_string(ds, tag_of("LossyImageCompression"), DCM_VR_CS, "00");
    assert_true(pol_policy_compression(strict, ds, &c, reason, sizeof reason));
    assert_int_equal(c.line, 4);
    set_string(ds, tag_of("LossyImageCompression"), DCM_VR_CS, " 01 ");
    assert_true(pol_policy_compression(strict, ds, &c, reason, sizeof reason));
    assert_int_equal(c.line, 6);
    assert_int_equal(dcm_dataset_remove(ds, tag_of("LossyImageCompression")),
                     0);

    /* The syntax the instance came in: JPEG Baseline, JPEG 2000 (may be
     * lossy) and an unknown encapsulated one are lossy; the lossless
     * ones and native data are not. */
    static const struct {
        const char *uid;
        bool lossy;
    } syntaxes[] = {
        {"1.2.840.10008.1.2.4.50", true},  {"1.2.840.10008.1.2.4.51", true},
        {"1.2.840.10008.1.2.4.81", true},  {"1.2.840.10008.1.2.4.91", true},
        {"1.2.840.10008.1.2.4.203", true}, {"1.2.840.10008.1.2.4.100", true},
        {"1.2.840.10008.1.2.4.57", false}, {"1.2.840.10008.1.2.4.70", false},
        {"1.2.840.10008.1.2.4.80", false}, {"1.2.840.10008.1.2.4.90", false},
        {"1.2.840.10008.1.2.4.201", false}, {"1.2.840.10008.1.2.5", false},
        {"1.2.840.10008.1.2.8.1", false},  {"1.2.840.10008.1.2.1.98", false},
        {"1.2.840.10008.1.2.1", false},    {"1.2.840.10008.1.2", false},
    };
    for (size_t i = 0; i < sizeof syntaxes / sizeof *syntaxes; i++) {
        const dcm_ts *ts = dcm_ts_find(syntaxes[i].uid);
        print_message("%s\n", syntaxes[i].uid);
        assert_non_null(ts);
        dcm_dataset_set_syntax(ds, ts);
        assert_true(pol_policy_compression(strict, ds, &c, reason,
                                           sizeof reason));
        assert_int_equal(c.line, syntaxes[i].lossy ? 6 : 4);
        if (syntaxes[i].lossy) {
            char want[256];
            snprintf(want, sizeof want,
                     "compress to jpeg quality 90 skipped: transfer syntax "
                     "%s may be lossy and the policy does not allow lossy "
                     "recompression (@/lossy.policy:4)",
                     syntaxes[i].uid);
            assert_string_equal(reason, expand_at(want));
        }
    }
    dcm_dataset_free(ds);
    pol_policy_unref(strict);
    pol_policy_unref(allowing);
}

/* Every redact line that applies adds its rectangle, in file order;
 * conditions on the device and the image size pick them. */
static void test_pixel_redactions(void **state)
{
    (void)state;
    write_file("acme.inc", "redact rectangle 0 0 640 40 if Manufacturer == "
                           "ACME and Rows == 480\n");
    pol_policy *p = compile_ok(
        "redact.policy",
        HEAD
        "  include \"acme.inc\"\n"                                   /* 4 */
        "  redact rectangle 600 440 40 40 if Manufacturer == ACME\n"
        "  redact rectangle 0 0 1 1 unless Modality in (US, XA)\n"   /* 6 */
        "  redact rectangle 65000 65000 535 535 if Rows > 60000\n"
        "  redact rectangle 10 20 30 40\n"                           /* 8 */
        "end\n");
    pol_rect r[8];

    dcm_dataset *ds = pixel_instance("US", "ACME", 480);
    assert_int_equal(pol_policy_redactions(p, ds, r, 8), 3);
    assert_string_equal(r[0].file, in_scratch("acme.inc"));
    assert_int_equal(r[0].line, 1);
    assert_int_equal(r[0].x, 0);
    assert_int_equal(r[0].y, 0);
    assert_int_equal(r[0].width, 640);
    assert_int_equal(r[0].height, 40);
    assert_string_equal(r[1].file, in_scratch("redact.policy"));
    assert_int_equal(r[1].line, 5);
    assert_int_equal(r[1].x, 600);
    assert_int_equal(r[1].y, 440);
    assert_int_equal(r[2].line, 8);
    assert_int_equal(r[2].x, 10);
    assert_int_equal(r[2].y, 20);
    assert_int_equal(r[2].width, 30);
    assert_int_equal(r[2].height, 40);
    /* A short out: the first ones, and how many apply. */
    memset(r, 0, sizeof r);
    assert_int_equal(pol_policy_redactions(p, ds, r, 1), 3);
    assert_int_equal(r[0].line, 1);
    assert_int_equal(r[1].line, 0);
    assert_int_equal(pol_policy_redactions(p, ds, NULL, 0), 3);
    dcm_dataset_free(ds);

    /* Another model size, another vendor, another modality. */
    ds = pixel_instance("US", "ACME", 600);
    assert_int_equal(pol_policy_redactions(p, ds, r, 8), 2);
    assert_int_equal(r[0].line, 5);
    assert_int_equal(r[1].line, 8);
    dcm_dataset_free(ds);
    ds = pixel_instance("CT", "OTHER", 65535);
    assert_int_equal(pol_policy_redactions(p, ds, r, 8), 3);
    assert_int_equal(r[0].line, 6);
    assert_int_equal(r[1].line, 7);
    assert_int_equal(r[1].x + r[1].width, 65535);
    assert_int_equal(r[2].line, 8);
    dcm_dataset_free(ds);

    pol_when when;
    assert_true(pol_policy_redact_line(p, 2, r, &when));
    assert_int_equal(r[0].line, 6);
    assert_int_equal(when, POL_UNLESS);
    assert_true(pol_policy_redact_line(p, 4, r, &when));
    assert_int_equal(when, POL_ALWAYS);
    assert_false(pol_policy_redact_line(p, 5, r, &when));
    pol_policy_unref(p);
}

/* The policy-wide settings, their defaults, and the hash of a policy
 * whose only change is a pixel line in an included file. */
static void test_pixel_settings(void **state)
{
    (void)state;
    pol_policy *p = compile_ok("set.policy", HEAD "end\n");
    assert_false(pol_policy_keep_original_on_failure(p));
    assert_true(pol_policy_verify_lossless(p));
    assert_false(pol_policy_allow_lossy_recompression(p));
    pol_compression c;
    pol_when when;
    pol_rect r;
    assert_false(pol_policy_compress_line(p, 0, &c, &when));
    assert_false(pol_policy_redact_line(p, 0, &r, &when));
    pol_policy_unref(p);

    p = compile_ok("set.policy",
                   HEAD "  on compression-failure keep-original\n"
                        "  verify lossless off\n"
                        "  allow lossy-recompression\nend\n");
    assert_true(pol_policy_keep_original_on_failure(p));
    assert_false(pol_policy_verify_lossless(p));
    assert_true(pol_policy_allow_lossy_recompression(p));
    pol_policy_unref(p);
    p = compile_ok("set.policy",
                   HEAD "  on compression-failure quarantine\n"
                        "  verify lossless on\nend\n");
    assert_false(pol_policy_keep_original_on_failure(p));
    assert_true(pol_policy_verify_lossless(p));
    pol_policy_unref(p);

    char first[65], second[65];
    write_file("px.inc", "compress to jpeg2000 ratio 10\n");
    p = compile_ok("set.policy", HEAD "  include \"px.inc\"\nend\n");
    memcpy(first, pol_policy_hash(p), 65);
    pol_policy_unref(p);
    write_file("px.inc", "compress to jpeg2000 ratio 11\n");
    p = compile_ok("set.policy", HEAD "  include \"px.inc\"\nend\n");
    memcpy(second, pol_policy_hash(p), 65);
    pol_policy_unref(p);
    assert_string_not_equal(first, second);
}

/* "quarantine if ... unless redacted": the recommended line for burned-in
 * text; it holds what no redact line covers, with the redact lines as
 * the one list of what is covered. */
static void test_pixel_unless_redacted(void **state)
{
    (void)state;
    pol_policy *p = compile_ok(
        "burned.policy",
        HEAD
        "  redact rectangle 0 0 800 48 if Manufacturer == ACME and Rows == "
        "600\n"                                                        /* 4 */
        "  quarantine if not BurnedInAnnotation == NO unless redacted \\\n"
        "      because \"burned-in text\"\n"
        "  reject if Modality == XA\n"                                 /* 7 */
        "end\n");
    char reason[256];
    dcm_dataset *ds = pixel_instance("US", "ACME", 600);
    set_string(ds, tag_of("BurnedInAnnotation"), DCM_VR_CS, "YES");
    assert_int_equal(pol_policy_filter(p, ds, reason, sizeof reason),
                     POL_ACCEPT);
    dcm_dataset_free(ds);
    /* Another size, another vendor: no rectangle covers it. */
    ds = pixel_instance("US", "ACME", 768);
    set_string(ds, tag_of("BurnedInAnnotation"), DCM_VR_CS, "YES");
    assert_int_equal(pol_policy_filter(p, ds, reason, sizeof reason),
                     POL_QUARANTINE);
    assert_string_equal(reason,
                        expand_at("burned-in text (@/burned.policy:5)"));
    dcm_dataset_free(ds);
    /* Absent Burned In Annotation: "== NO" is false on an absent
     * attribute, so "not ... == NO" holds; only NO passes. */
    ds = pixel_instance("US", "OTHER", 600);
    assert_int_equal(pol_policy_filter(p, ds, reason, sizeof reason),
                     POL_QUARANTINE);
    set_string(ds, tag_of("BurnedInAnnotation"), DCM_VR_CS, "NO");
    assert_int_equal(pol_policy_filter(p, ds, reason, sizeof reason),
                     POL_ACCEPT);
    /* A redacted instance still meets the lines after. */
    dcm_dataset_free(ds);
    ds = pixel_instance("XA", "ACME", 600);
    set_string(ds, tag_of("BurnedInAnnotation"), DCM_VR_CS, "YES");
    assert_int_equal(pol_policy_filter(p, ds, reason, sizeof reason),
                     POL_REJECT);
    dcm_dataset_free(ds);
    pol_gate_info gate;
    assert_true(pol_policy_gate(p, 0, &gate));
    assert_true(gate.unless_redacted);
    assert_true(pol_policy_gate(p, 1, &gate));
    assert_false(gate.unless_redacted);
    pol_policy_unref(p);

    assert_first_error("burned.policy",
                       HEAD "  quarantine if BurnedInAnnotation == YES unless "
                            "Modality == US\nend\n",
                       NULL,
                       "@/burned.policy:4:50: error: expected 'redacted', "
                       "found 'Modality' (hint: write: quarantine if "
                       "BurnedInAnnotation == YES unless redacted)");
    static const char *const no_redact[] = {
        "@/burned.policy:4:43: warning: 'unless redacted' always fires: the "
        "policy has no redact line (hint: add the redact rectangle lines "
        "for the devices whose burned-in text you know)",
    };
    assert_diags("burned.policy",
                 HEAD "  quarantine if BurnedInAnnotation == YES unless "
                      "redacted\nend\n",
                 no_redact, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_errors),
        cmocka_unit_test(test_golden_bad_regex),
        cmocka_unit_test(test_golden_variable_default),
        cmocka_unit_test(test_golden_missing_main_file),
        cmocka_unit_test(test_golden_includes),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_diag_format),
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_includes_relative),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_tagref_numbers_and_masks),
        cmocka_unit_test(test_tagref_private),
        cmocka_unit_test(test_tagref_paths),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_gates),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_template_check),
        cmocka_unit_test(test_template_each),
        cmocka_unit_test(test_template_expand),
        cmocka_unit_test(test_golden_pixel_errors),
        cmocka_unit_test(test_pixel_warnings),
        cmocka_unit_test(test_pixel_first_match),
        cmocka_unit_test(test_pixel_already_lossy),
        cmocka_unit_test(test_pixel_redactions),
        cmocka_unit_test(test_pixel_settings),
        cmocka_unit_test(test_pixel_unless_redacted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
