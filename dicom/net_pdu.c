/* net_pdu.c - encoding and parsing the A-ASSOCIATE PDUs (PS3.8 9.3.2,
 * 9.3.3) and the fixed-size ones. Parsing walks items and sub-items with
 * every length checked against what remains of its enclosing item before
 * anything is read; a PDU that breaks the structure is DCM_E_INVALID,
 * which the association turns into an A-ABORT. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- the encoding buffer --------------------------------------------------- */

static bool bytes_room(dcm_bytes *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->len + n <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *bigger = realloc(b->data, cap);
    if (!bigger) {
        b->failed = true;
        return false;
    }
    b->data = bigger;
    b->cap = cap;
    return true;
}

void dcm_bytes_put(dcm_bytes *b, const void *p, size_t n)
{
    if (n && bytes_room(b, n)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

void dcm_bytes_u8(dcm_bytes *b, uint8_t v)
{
    dcm_bytes_put(b, &v, 1);
}

void dcm_bytes_u16(dcm_bytes *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    dcm_bytes_put(b, p, 2);
}

void dcm_bytes_u32(dcm_bytes *b, uint32_t v)
{
    dcm_bytes_u16(b, (uint16_t)(v >> 16));
    dcm_bytes_u16(b, (uint16_t)v);
}

void dcm_bytes_patch16(dcm_bytes *b, size_t offset, uint16_t v)
{
    if (!b->failed && offset + 2 <= b->len) {
        b->data[offset] = (uint8_t)(v >> 8);
        b->data[offset + 1] = (uint8_t)v;
    }
}

void dcm_bytes_patch32(dcm_bytes *b, size_t offset, uint32_t v)
{
    dcm_bytes_patch16(b, offset, (uint16_t)(v >> 16));
    dcm_bytes_patch16(b, offset + 2, (uint16_t)v);
}

/* ---- encoding ---------------------------------------------------------------- */

/* An item with a 2-byte length: type, reserved, length, then content the
 * caller adds; item_end patches the length. */
static size_t item_start(dcm_bytes *b, uint8_t type)
{
    dcm_bytes_u8(b, type);
    dcm_bytes_u8(b, 0);
    size_t at = b->len;
    dcm_bytes_u16(b, 0);
    return at;
}

static void item_end(dcm_bytes *b, size_t length_at)
{
    dcm_bytes_patch16(b, length_at, (uint16_t)(b->len - length_at - 2));
}

static void item_text(dcm_bytes *b, uint8_t type, const char *text)
{
    size_t at = item_start(b, type);
    dcm_bytes_put(b, text, strlen(text));
    item_end(b, at);
}

/* An AE title field: 16 bytes, space padded. */
static void put_ae(dcm_bytes *b, const char *ae)
{
    char field[16];
    memset(field, ' ', sizeof field);
    size_t n = strlen(ae);
    memcpy(field, ae, n < 16 ? n : 16);
    dcm_bytes_put(b, field, sizeof field);
}

static void put_context_request(dcm_bytes *b, const dcm_pcontext *pc)
{
    size_t at = item_start(b, 0x20);
    dcm_bytes_u8(b, pc->id);
    dcm_bytes_put(b, "\0\0\0", 3);
    item_text(b, 0x30, pc->abstract_syntax);
    for (size_t i = 0; i < pc->proposed_count; i++)
        item_text(b, 0x40, pc->proposed[i]->uid);
    item_end(b, at);
}

static void put_context_answer(dcm_bytes *b, const dcm_pcontext *pc)
{
    size_t at = item_start(b, 0x21);
    dcm_bytes_u8(b, pc->id);
    dcm_bytes_u8(b, 0);
    dcm_bytes_u8(b, pc->result);
    dcm_bytes_u8(b, 0);
    /* A transfer syntax sub-item is always there; its value only means
     * something on acceptance (PS3.8 9.3.3.2). */
    item_text(b, 0x40, pc->result == DCM_PC_ACCEPTED && pc->accepted
                           ? pc->accepted->uid : DCM_TS_IMPLICIT_LE);
    item_end(b, at);
}

/* Role selection: the requestor proposes what it wants for each context
 * that asked; the acceptor answers for the contexts whose role the
 * requestor negotiated. */
static void put_roles(dcm_bytes *b, const dcm_assoc_info *info)
{
    for (size_t i = 0; i < info->context_count; i++) {
        const dcm_pcontext *pc = &info->contexts[i];
        if (pc->scu_role < 0)
            continue;
        bool seen = false; /* one sub-item per abstract syntax */
        for (size_t j = 0; j < i && !seen; j++)
            seen = info->contexts[j].scu_role >= 0 &&
                   strcmp(info->contexts[j].abstract_syntax,
                          pc->abstract_syntax) == 0;
        if (seen)
            continue;
        size_t at = item_start(b, 0x54);
        dcm_bytes_u16(b, (uint16_t)strlen(pc->abstract_syntax));
        dcm_bytes_put(b, pc->abstract_syntax, strlen(pc->abstract_syntax));
        dcm_bytes_u8(b, (uint8_t)pc->scu_role);
        dcm_bytes_u8(b, (uint8_t)pc->scp_role);
        item_end(b, at);
    }
}

static void put_user_identity_request(dcm_bytes *b, const dcm_user_identity *u)
{
    size_t at = item_start(b, 0x58);
    dcm_bytes_u8(b, u->type);
    dcm_bytes_u8(b, u->response_requested);
    dcm_bytes_u16(b, (uint16_t)strlen(u->username));
    dcm_bytes_put(b, u->username, strlen(u->username));
    dcm_bytes_u16(b, 0); /* no passcode: SIREN never sends secrets here */
    item_end(b, at);
}

static void put_user_info(bool request, dcm_bytes *b, const dcm_assoc_info *info,
                          const dcm_pdu_local *local)
{
    size_t at = item_start(b, 0x50);
    size_t max_at = item_start(b, 0x51);
    dcm_bytes_u32(b, local->max_pdu_bytes);
    item_end(b, max_at);
    item_text(b, 0x52, DCM_IMPLEMENTATION_CLASS_UID);
    if (!request && info->async_window_proposed) {
        /* Asynchronous operations are declined: one at a time each way. */
        size_t async_at = item_start(b, 0x53);
        dcm_bytes_u16(b, 1);
        dcm_bytes_u16(b, 1);
        item_end(b, async_at);
    }
    put_roles(b, info);
    item_text(b, 0x55, DCM_IMPLEMENTATION_VERSION_NAME);
    if (request && local->user && local->user->type != DCM_USER_NONE)
        put_user_identity_request(b, local->user);
    if (!request && info->user.type != DCM_USER_NONE &&
        info->user.response_requested) {
        /* Recorded, accepted; no server response for user names (and
         * none that SIREN could give for tokens it does not check). */
        size_t user_at = item_start(b, 0x59);
        dcm_bytes_u16(b, 0);
        item_end(b, user_at);
    }
    item_end(b, at);
}

int dcm_pdu_encode_associate(bool request, const dcm_assoc_info *info,
                             const dcm_pdu_local *local, dcm_bytes *out,
                             dcm_error *err)
{
    out->len = 0;
    dcm_bytes_u8(out, request ? DCM_PDU_ASSOCIATE_RQ : DCM_PDU_ASSOCIATE_AC);
    dcm_bytes_u8(out, 0);
    dcm_bytes_u32(out, 0); /* patched below */
    dcm_bytes_u16(out, 1); /* protocol version 1 */
    dcm_bytes_u16(out, 0);
    put_ae(out, info->called_ae);
    put_ae(out, info->calling_ae);
    static const uint8_t reserved[32];
    dcm_bytes_put(out, reserved, sizeof reserved);
    item_text(out, 0x10, DCM_APPLICATION_CONTEXT);
    for (size_t i = 0; i < info->context_count; i++) {
        if (request)
            put_context_request(out, &info->contexts[i]);
        else
            put_context_answer(out, &info->contexts[i]);
    }
    put_user_info(request, out, info, local);
    if (out->failed)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for a PDU");
    dcm_bytes_patch32(out, 2, (uint32_t)(out->len - DCM_PDU_HEADER_BYTES));
    return DCM_OK;
}

void dcm_pdu_encode_short(uint8_t type, uint8_t b1, uint8_t b2, uint8_t b3,
                          uint8_t out[10])
{
    out[0] = type;
    out[1] = 0;
    out[2] = out[3] = out[4] = 0;
    out[5] = 4;
    out[6] = 0;
    out[7] = b1;
    out[8] = b2;
    out[9] = b3;
}

/* ---- parsing ----------------------------------------------------------------- */

typedef struct cursor {
    const uint8_t *p;
    size_t left;
    dcm_error *err;
} cursor;

static int bad(cursor *c, const char *what)
{
    return dcm_fail(c->err, DCM_E_INVALID, -1, "invalid A-ASSOCIATE PDU: %s",
                    what);
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)be16(p) << 16 | be16(p + 2);
}

/* The next item or sub-item: type and a view of its content. */
static int next_item(cursor *c, uint8_t *type, cursor *content)
{
    if (c->left < 4)
        return bad(c, "item header cut short");
    uint16_t length = be16(c->p + 2);
    if (length > c->left - 4)
        return bad(c, "item length runs past its enclosing item");
    *type = c->p[0];
    *content = (cursor){.p = c->p + 4, .left = length, .err = c->err};
    c->p += 4 + (size_t)length;
    c->left -= 4 + (size_t)length;
    return DCM_OK;
}

/* A UID field (trailing NUL or space padding allowed) into out. */
static int copy_uid(cursor *c, const uint8_t *p, size_t len,
                    char out[DCM_UID_MAX + 1])
{
    while (len > 0 && (p[len - 1] == '\0' || p[len - 1] == ' '))
        len--;
    if (len == 0 || len > DCM_UID_MAX)
        return bad(c, "a UID is empty or longer than 64 characters");
    for (size_t i = 0; i < len; i++)
        if ((p[i] < '0' || p[i] > '9') && p[i] != '.')
            return bad(c, "a UID holds a character other than digits and dots");
    memcpy(out, p, len);
    out[len] = '\0';
    return DCM_OK;
}

/* An AE title field: 16 bytes, leading and trailing spaces insignificant,
 * printable ASCII without backslash (PS3.5 6.2 AE). In an A-ASSOCIATE-AC
 * the fields "shall not be tested" (PS3.8 9.3.3): copied as they are. */
static int copy_ae(cursor *c, const uint8_t *p, char out[DCM_AE_TITLE_MAX + 1],
                   bool check)
{
    if (!check) {
        for (size_t i = 0; i < 16; i++)
            out[i] = p[i] >= 0x20 && p[i] < 0x7F ? (char)p[i] : '?';
        size_t n = 16;
        while (n > 0 && out[n - 1] == ' ')
            n--;
        out[n] = '\0';
        return DCM_OK;
    }
    size_t start = 0, end = 16;
    while (start < end && p[start] == ' ')
        start++;
    while (end > start && (p[end - 1] == ' ' || p[end - 1] == '\0'))
        end--;
    if (start == end)
        return bad(c, "an AE title is empty");
    for (size_t i = start; i < end; i++)
        if (p[i] < 0x20 || p[i] > 0x7E || p[i] == '\\')
            return bad(c, "an AE title holds a control character or backslash");
    memcpy(out, p + start, end - start);
    out[end - start] = '\0';
    return DCM_OK;
}

/* The next free context slot for a presentation context item (its ID in
 * the first byte, 3 more header bytes), zeroed; NULL when none is left or
 * the item is too short (*rc says why). */
static dcm_pcontext *context_slot(cursor *item, dcm_assoc_info *info, int *rc)
{
    if (info->context_count >= DCM_MAX_CONTEXTS) {
        *rc = bad(item, "more than 128 presentation contexts");
        return NULL;
    }
    if (item->left < 4) {
        *rc = bad(item, "presentation context item cut short");
        return NULL;
    }
    dcm_pcontext *pc = &info->contexts[info->context_count];
    memset(pc, 0, sizeof *pc);
    pc->id = item->p[0];
    pc->scu_role = pc->scp_role = -1;
    return pc;
}

static int parse_context_request(cursor *item, dcm_assoc_info *info)
{
    int rc;
    dcm_pcontext *pc = context_slot(item, info, &rc);
    if (!pc)
        return rc;
    if (pc->id % 2 == 0)
        return bad(item, "an even presentation context ID");
    for (size_t i = 0; i < info->context_count; i++)
        if (info->contexts[i].id == pc->id)
            return bad(item, "a presentation context ID used twice");
    cursor sub = {item->p + 4, item->left - 4, item->err};
    bool have_abstract = false;
    while (sub.left > 0) {
        uint8_t type = 0;
        cursor content;
        rc = next_item(&sub, &type, &content);
        if (rc < 0)
            return rc;
        if (type == 0x30) {
            if (have_abstract)
                return bad(item, "two abstract syntaxes in one context");
            rc = copy_uid(&content, content.p, content.left, pc->abstract_syntax);
            have_abstract = true;
        } else if (type == 0x40) {
            char uid[DCM_UID_MAX + 1];
            rc = copy_uid(&content, content.p, content.left, uid);
            const dcm_ts *ts = rc == DCM_OK ? dcm_ts_find(uid) : NULL;
            if (ts && pc->proposed_count < DCM_MAX_CONTEXT_SYNTAXES)
                pc->proposed[pc->proposed_count++] = ts;
            else if (rc == DCM_OK && pc->unknown_count < UINT8_MAX)
                pc->unknown_count++;
        }
        if (rc < 0)
            return rc;
    }
    if (!have_abstract)
        return bad(item, "a presentation context without abstract syntax");
    if (pc->proposed_count + pc->unknown_count == 0)
        return bad(item, "a presentation context without transfer syntax");
    info->context_count++;
    return DCM_OK;
}

static int parse_context_answer(cursor *item, dcm_assoc_info *info)
{
    int rc;
    dcm_pcontext *pc = context_slot(item, info, &rc);
    if (!pc)
        return rc;
    pc->result = item->p[2];
    if (pc->result > DCM_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED)
        return bad(item, "an unknown presentation context result");
    cursor sub = {item->p + 4, item->left - 4, item->err};
    while (sub.left > 0) {
        uint8_t type = 0;
        cursor content;
        rc = next_item(&sub, &type, &content);
        if (rc < 0)
            return rc;
        if (type != 0x40 || pc->result != DCM_PC_ACCEPTED)
            continue;
        char uid[DCM_UID_MAX + 1];
        if ((rc = copy_uid(&content, content.p, content.left, uid)) < 0)
            return rc;
        pc->accepted = dcm_ts_find(uid);
        if (!pc->accepted)
            return bad(item, "an accepted transfer syntax we did not propose");
    }
    if (pc->result == DCM_PC_ACCEPTED && !pc->accepted)
        return bad(item, "an accepted context without transfer syntax");
    info->context_count++;
    return DCM_OK;
}

/* Role selection sub-items name abstract syntaxes; they are applied to
 * the contexts once all items are read (their order is free). */
typedef struct role {
    char uid[DCM_UID_MAX + 1];
    uint8_t scu, scp;
} role;

typedef struct roles {
    role list[DCM_MAX_CONTEXTS];
    size_t count;
} roles;

static int parse_role(cursor *c, roles *found)
{
    if (c->left < 2)
        return bad(c, "role selection cut short");
    uint16_t uid_len = be16(c->p);
    if (uid_len > c->left - 2 || c->left - 2 - uid_len != 2)
        return bad(c, "role selection length mismatch");
    if (found->count >= DCM_MAX_CONTEXTS)
        return bad(c, "more role selections than contexts");
    role *r = &found->list[found->count];
    int rc = copy_uid(c, c->p + 2, uid_len, r->uid);
    if (rc < 0)
        return rc;
    r->scu = c->p[2 + uid_len] ? 1 : 0;
    r->scp = c->p[3 + uid_len] ? 1 : 0;
    found->count++;
    return DCM_OK;
}

static void apply_roles(dcm_assoc_info *info, const roles *found)
{
    for (size_t i = 0; i < found->count; i++)
        for (size_t j = 0; j < info->context_count; j++)
            if (strcmp(info->contexts[j].abstract_syntax,
                       found->list[i].uid) == 0) {
                info->contexts[j].scu_role = (int8_t)found->list[i].scu;
                info->contexts[j].scp_role = (int8_t)found->list[i].scp;
            }
}

/* User Identity (PS3.7 D.3.3.7.1): type, response requested, primary
 * field (user name or token), secondary (passcode, dropped unread). */
static int parse_user_identity(cursor *c, dcm_user_identity *user)
{
    if (c->left < 4)
        return bad(c, "user identity cut short");
    uint8_t type = c->p[0];
    uint16_t primary = be16(c->p + 2);
    if (primary > c->left - 4 || c->left - 4 - primary < 2)
        return bad(c, "user identity primary field length");
    uint16_t secondary = be16(c->p + 4 + primary);
    if (secondary != c->left - 6 - primary)
        return bad(c, "user identity secondary field length");
    if (type < DCM_USER_USERNAME || type > DCM_USER_JWT)
        return bad(c, "unknown user identity type");
    user->type = type;
    user->response_requested = c->p[1] != 0;
    user->primary_length = primary;
    if (type == DCM_USER_USERNAME || type == DCM_USER_USERNAME_PASSCODE) {
        size_t n = primary < sizeof user->username - 1
                       ? primary : sizeof user->username - 1;
        for (size_t i = 0; i < n; i++) {
            uint8_t ch = c->p[4 + i];
            user->username[i] = ch >= 0x20 && ch < 0x7F ? (char)ch : '?';
        }
        user->username[n] = '\0';
    }
    return DCM_OK;
}

static int parse_user_info(bool request, cursor *item, dcm_assoc_info *info,
                           roles *found)
{
    while (item->left > 0) {
        uint8_t type = 0;
        cursor c;
        int rc = next_item(item, &type, &c);
        if (rc < 0)
            return rc;
        switch (type) {
        case 0x51:
            if (c.left != 4)
                return bad(&c, "maximum length sub-item is not 4 bytes");
            info->peer_max_pdu = be32(c.p);
            /* 0 means no limit; anything smaller than this floor cannot
             * carry a command set in sensible pieces (and below 7 bytes
             * not even one PDV). */
            if (info->peer_max_pdu != 0 &&
                info->peer_max_pdu < DCM_MIN_PEER_MAX_PDU)
                return bad(&c, "maximum length below 1024 bytes");
            break;
        case 0x52:
            rc = copy_uid(&c, c.p, c.left, info->peer_implementation_uid);
            break;
        case 0x53:
            if (c.left != 4)
                return bad(&c, "asynchronous window sub-item is not 4 bytes");
            info->async_window_proposed = true;
            info->async_invoked = be16(c.p);
            info->async_performed = be16(c.p + 2);
            break;
        case 0x54:
            rc = parse_role(&c, found);
            break;
        case 0x55: {
            size_t n = c.left < DCM_AE_TITLE_MAX ? c.left : DCM_AE_TITLE_MAX;
            for (size_t i = 0; i < n; i++)
                info->peer_implementation_version[i] =
                    c.p[i] >= 0x20 && c.p[i] < 0x7F ? (char)c.p[i] : '?';
            info->peer_implementation_version[n] = '\0';
            break;
        }
        case 0x58:
            if (request)
                rc = parse_user_identity(&c, &info->user);
            break;
        default: /* extended negotiation and others: not used, skipped */
            break;
        }
        if (rc < 0)
            return rc;
    }
    return DCM_OK;
}

int dcm_pdu_parse_associate(bool request, const uint8_t *body, size_t len,
                            dcm_assoc_info *info, dcm_error *err)
{
    cursor c = {body, len, err};
    memset(info, 0, sizeof *info);
    if (len < 68)
        return bad(&c, "shorter than its fixed fields");
    int rc = copy_ae(&c, body + 4, info->called_ae, request);
    if (rc == DCM_OK)
        rc = copy_ae(&c, body + 20, info->calling_ae, request);
    if (rc < 0)
        return rc;
    info->protocol_version = be16(body);
    c.p += 68;
    c.left -= 68;
    roles *found = calloc(1, sizeof *found);
    if (!found)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    bool have_user_info = false;
    while (c.left > 0 && rc == DCM_OK) {
        uint8_t type = 0;
        cursor item;
        if ((rc = next_item(&c, &type, &item)) < 0)
            break;
        if (type == 0x10)
            rc = copy_uid(&item, item.p, item.left, info->application_context);
        else if (type == 0x20 && request)
            rc = parse_context_request(&item, info);
        else if (type == 0x21 && !request)
            rc = parse_context_answer(&item, info);
        else if (type == 0x50) {
            rc = parse_user_info(request, &item, info, found);
            have_user_info = true;
        } else
            rc = bad(&item, "an item type that does not belong here");
    }
    if (rc == DCM_OK && !have_user_info)
        rc = bad(&c, "no user information item (maximum length is mandatory)");
    if (rc == DCM_OK)
        apply_roles(info, found);
    free(found);
    return rc;
}
