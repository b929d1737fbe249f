/* pseudo.c - keyed pseudonyms: UIDs, hashed values and date offsets, all
 * from HMAC-SHA256 under the policy's key. Each kind has its own label in
 * the HMAC input so that, say, a UID and a name with the same text never
 * give related outputs. Changing a label changes every pseudonym ever
 * issued: they are part of the contract with the archive. */
#include "internal.h"

#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_UID "siren-uid-v1"
#define LABEL_HASH "siren-hash-v1"
#define LABEL_DATE "siren-date-shift-v1"

static void keyed(const anon_keys *k, const char *label, const char *text,
                  uint8_t digest[32])
{
    /* label NUL text: the NUL keeps label and text apart. */
    size_t label_len = strlen(label) + 1, text_len = strlen(text);
    uint8_t stack[512];
    uint8_t *message = label_len + text_len <= sizeof stack
                           ? stack
                           : malloc(label_len + text_len);
    unsigned len = 32;
    if (!message) { /* no memory: still deterministic, never unkeyed */
        HMAC(EVP_sha256(), k->key, (int)k->key_len,
             (const uint8_t *)text, text_len, digest, &len);
        return;
    }
    memcpy(message, label, label_len);
    memcpy(message + label_len, text, text_len);
    HMAC(EVP_sha256(), k->key, (int)k->key_len, message,
         label_len + text_len, digest, &len);
    if (message != stack)
        free(message);
}

bool anon_uid_is_well_known(const char *uid)
{
    return strncmp(uid, "1.2.840.10008.", 14) == 0;
}

void anon_remap_uid(const anon_keys *k, const char *uid,
                    char out[DCM_UID_MAX + 1])
{
    uint8_t digest[32];
    keyed(k, LABEL_UID, uid, digest);
    digest[6] = (uint8_t)((digest[6] & 0x0F) | 0x80); /* version 8 */
    digest[8] = (uint8_t)((digest[8] & 0x3F) | 0x80); /* RFC 9562 variant */
    dcm_uid_from_uuid(digest, out);
}

void anon_hash_text(const anon_keys *k, const char *text, char out[17])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint8_t digest[32];
    keyed(k, LABEL_HASH, text, digest);
    /* 16 characters of 5 bits each from the first 10 bytes. */
    for (int i = 0; i < 16; i++) {
        int bit = i * 5, byte = bit / 8, shift = bit % 8;
        unsigned v = (unsigned)digest[byte] << 8 | digest[byte + 1];
        out[i] = alphabet[(v >> (11 - shift)) & 31];
    }
    out[16] = '\0';
}

int anon_shift_days(const anon_keys *k, const char *id, int min_days,
                    int max_days)
{
    uint8_t digest[32];
    keyed(k, LABEL_DATE, id, digest);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | digest[i];
    uint64_t range = (uint64_t)(max_days - min_days) + 1;
    return min_days + (int)(v % range);
}

/* ---- calendar ----------------------------------------------------------------- */

/* Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), and back. */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(long y, unsigned m)
{
    static const unsigned days[] = {31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static unsigned number(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    return v;
}

/* Shifts one date of len characters at s: YYYYMMDD (DA, and the start of
 * a DT), or in a DT also YYYY and YYYYMM (their missing parts count as
 * the first; the result keeps the same precision). Appends to out. */
static bool shift_date(const char *s, size_t len, bool dt, int days,
                       char *out, size_t size)
{
    size_t date_len = dt ? (len >= 8 ? 8 : len) : len;
    if (!(date_len == 8 || (dt && (date_len == 4 || date_len == 6))) ||
        !digits(s, date_len))
        return false;
    long y = number(s, 4);
    unsigned m = date_len >= 6 ? number(s + 4, 2) : 1;
    unsigned d = date_len == 8 ? number(s + 6, 2) : 1;
    if (m < 1 || m > 12 || d < 1 || d > month_days(y, m))
        return false;
    civil_from_days(days_from_civil(y, m, d) + days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return false;
    char shifted[16];
    snprintf(shifted, sizeof shifted, "%04ld%02u%02u", y, m, d);
    size_t used = strlen(out);
    if (used + len + 1 > size)
        return false;
    memcpy(out + used, shifted, date_len);
    memcpy(out + used + date_len, s + date_len, len - date_len); /* time */
    out[used + len] = '\0';
    return true;
}

/* In a DT, "-ZZXX" after a time (more than the date) followed by the end
 * of the value is a UTC offset, not the dash of a range. */
static bool is_utc_offset(const char *dash, size_t before)
{
    return before > 8 && digits(dash + 1, 4) &&
           (dash[5] == '\0' || dash[5] == '\\');
}

bool anon_shift_value(dcm_vr vr, const char *value, int days, char *out,
                      size_t size)
{
    bool dt = vr == DCM_VR_DT;
    if (size == 0)
        return false;
    out[0] = '\0';
    for (const char *s = value; *s;) {
        size_t len = strcspn(s, "\\-");
        if (dt && s[len] == '-' && is_utc_offset(s + len, len))
            len += 5;
        if (len > 0 && !shift_date(s, len, dt, days, out, size))
            return false;
        s += len;
        if (*s) {
            size_t used = strlen(out);
            if (used + 2 > size)
                return false;
            out[used] = *s++;
            out[used + 1] = '\0';
        }
    }
    return true;
}
