/* uid.c - UID syntax (PS3.5 9.1) and new UIDs under the 2.25 root derived
 * from a random UUID (PS3.5 B.2). */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

bool dcm_uid_is_valid(const char *uid)
{
    size_t len = uid ? strlen(uid) : 0;
    if (len == 0 || len > DCM_UID_MAX)
        return false;
    size_t component_len = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = uid[i];
        if (c == '.' || c == '\0') {
            if (component_len == 0)
                return false; /* empty component */
            component_len = 0;
        } else if (c >= '0' && c <= '9') {
            /* A component with a leading zero must be exactly "0". */
            if (component_len == 1 && uid[i - 1] == '0')
                return false;
            component_len++;
        } else {
            return false;
        }
    }
    return true;
}

/* Divides the 128-bit big-endian number in limbs by 10, returns the
 * remainder. */
static unsigned divide_by_ten(uint32_t limbs[4])
{
    uint64_t remainder = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t current = (remainder << 32) | limbs[i];
        limbs[i] = (uint32_t)(current / 10);
        remainder = current % 10;
    }
    return (unsigned)remainder;
}

static bool is_zero(const uint32_t limbs[4])
{
    return (limbs[0] | limbs[1] | limbs[2] | limbs[3]) == 0;
}

void dcm_uid_from_uuid(const uint8_t uuid[16], char out[DCM_UID_MAX + 1])
{
    uint32_t limbs[4];
    for (int i = 0; i < 4; i++)
        limbs[i] = (uint32_t)uuid[4 * i] << 24 | (uint32_t)uuid[4 * i + 1] << 16 |
                   (uint32_t)uuid[4 * i + 2] << 8 | uuid[4 * i + 3];

    char digits[40]; /* 2^128 has 39 decimal digits */
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + divide_by_ten(limbs));
    } while (!is_zero(limbs));

    memcpy(out, "2.25.", 5);
    for (size_t i = 0; i < count; i++)
        out[5 + i] = digits[count - 1 - i];
    out[5 + count] = '\0';
}

int dcm_uid_generate(char out[DCM_UID_MAX + 1], dcm_error *err)
{
    uint8_t uuid[16];
    ssize_t got;
    do {
        got = getrandom(uuid, sizeof uuid, 0);
    } while (got < 0 && errno == EINTR);
    if (got != (ssize_t)sizeof uuid)
        return dcm_fail(err, DCM_E_IO, -1, "no random bytes for a UID: %s",
                        strerror(errno));
    uuid[6] = (uint8_t)((uuid[6] & 0x0F) | 0x40); /* version 4 */
    uuid[8] = (uint8_t)((uuid[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    dcm_uid_from_uuid(uuid, out);
    return DCM_OK;
}
