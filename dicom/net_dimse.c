/* net_dimse.c - DIMSE messages (PS3.7): command sets, data sets streamed
 * as PDVs, C-ECHO and C-STORE for both roles, and the SCP loop.
 *
 * Command sets are small and are assembled in memory (bounded by
 * max_command_bytes); data sets never are: a received one goes to the
 * caller's sink one PDV at a time, a sent one is read and framed one PDV
 * at a time. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NO_DATASET 0x0101 /* Command Data Set Type: none follows */

/* Command elements (group 0000, PS3.7 E.1). */
enum {
    CMD_GROUP_LENGTH = 0x0000,
    CMD_AFFECTED_SOP_CLASS = 0x0002,
    CMD_FIELD = 0x0100,
    CMD_MESSAGE_ID = 0x0110,
    CMD_RESPONDED_ID = 0x0120,
    CMD_PRIORITY = 0x0700,
    CMD_DATASET_TYPE = 0x0800,
    CMD_STATUS = 0x0900,
    CMD_ERROR_COMMENT = 0x0902,
    CMD_AFFECTED_SOP_INSTANCE = 0x1000,
    CMD_MOVE_ORIGINATOR_AE = 0x1030,
    CMD_MOVE_ORIGINATOR_ID = 0x1031,
};

/* ---- encoding command sets (Implicit VR Little Endian) --------------------- */

static void le16(dcm_bytes *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    dcm_bytes_put(b, p, 2);
}

static void le32(dcm_bytes *b, uint32_t v)
{
    le16(b, (uint16_t)v);
    le16(b, (uint16_t)(v >> 16));
}

static void put_element(dcm_bytes *b, uint16_t element, const void *value,
                        size_t len, uint8_t padding)
{
    le16(b, 0x0000);
    le16(b, element);
    le32(b, (uint32_t)(len + len % 2));
    dcm_bytes_put(b, value, len);
    if (len % 2)
        dcm_bytes_u8(b, padding);
}

static void put_us(dcm_bytes *b, uint16_t element, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put_element(b, element, p, 2, 0);
}

static void put_text(dcm_bytes *b, uint16_t element, const char *text,
                     uint8_t padding)
{
    if (text && *text)
        put_element(b, element, text, strlen(text), padding);
}

static bool is_response(uint16_t field)
{
    return field & 0x8000;
}

/* The command set of cmd, group length first, elements in tag order. */
static int encode_command(const dcm_command *cmd, dcm_bytes *out,
                          dcm_error *err)
{
    dcm_bytes body = {0};
    put_text(&body, CMD_AFFECTED_SOP_CLASS, cmd->sop_class, '\0');
    put_us(&body, CMD_FIELD, cmd->field);
    if (is_response(cmd->field))
        put_us(&body, CMD_RESPONDED_ID, cmd->responded_id);
    else
        put_us(&body, CMD_MESSAGE_ID, cmd->message_id);
    if (cmd->field == DCM_C_STORE_RQ)
        put_us(&body, CMD_PRIORITY, cmd->priority);
    put_us(&body, CMD_DATASET_TYPE, cmd->has_dataset ? 0x0000 : NO_DATASET);
    if (is_response(cmd->field)) {
        put_us(&body, CMD_STATUS, cmd->status);
        put_text(&body, CMD_ERROR_COMMENT, cmd->error_comment, ' ');
    }
    put_text(&body, CMD_AFFECTED_SOP_INSTANCE, cmd->sop_instance, '\0');
    if (cmd->move_originator_ae[0]) {
        put_text(&body, CMD_MOVE_ORIGINATOR_AE, cmd->move_originator_ae, ' ');
        put_us(&body, CMD_MOVE_ORIGINATOR_ID, cmd->move_originator_id);
    }
    uint8_t length[4] = {(uint8_t)body.len, (uint8_t)(body.len >> 8),
                         (uint8_t)(body.len >> 16), (uint8_t)(body.len >> 24)};
    out->len = 0;
    put_element(out, CMD_GROUP_LENGTH, length, 4, 0);
    dcm_bytes_put(out, body.data, body.len);
    bool failed = body.failed || out->failed;
    free(body.data);
    if (failed)
        return dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for a command");
    return DCM_OK;
}

/* ---- decoding command sets ---------------------------------------------------- */

static const dcm_element *command_element(const dcm_dataset *ds,
                                          uint16_t element)
{
    return dcm_dataset_find(ds, DCM_TAG(0x0000, element));
}

static bool get_us(const dcm_dataset *ds, uint16_t element, uint16_t *out)
{
    const dcm_element *el = command_element(ds, element);
    int64_t v;
    if (!el || dcm_element_get_int(el, 0, &v, NULL) < 0 || v < 0 ||
        v > UINT16_MAX)
        return false;
    *out = (uint16_t)v;
    return true;
}

static void get_text(const dcm_dataset *ds, uint16_t element, char *out,
                     size_t size)
{
    out[0] = '\0';
    const dcm_element *el = command_element(ds, element);
    char *text = el ? dcm_element_get_string(el, NULL) : NULL;
    if (text)
        snprintf(out, size, "%s", text);
    free(text);
}

static int decode_command(const uint8_t *data, size_t len, dcm_command *cmd,
                          dcm_error *err)
{
    dcm_limits limits;
    dcm_limits_default(&limits);
    limits.max_depth = 4;
    limits.max_elements = 256;
    dcm_read_options opt = {.limits = &limits,
                            .transfer_syntax = DCM_TS_IMPLICIT_LE,
                            .dataset_only = true};
    dcm_error parse_err = {0};
    dcm_file *f = dcm_file_open_memory(data, len, &opt, &parse_err);
    if (!f)
        return dcm_fail(err, DCM_E_INVALID, -1, "unreadable command set: %s",
                        parse_err.message);
    const dcm_dataset *ds = dcm_file_dataset(f);
    memset(cmd, 0, sizeof *cmd);
    uint16_t dataset_type = NO_DATASET;
    bool ok = get_us(ds, CMD_FIELD, &cmd->field) &&
              get_us(ds, CMD_DATASET_TYPE, &dataset_type) &&
              (is_response(cmd->field)
                   ? get_us(ds, CMD_RESPONDED_ID, &cmd->responded_id) &&
                         get_us(ds, CMD_STATUS, &cmd->status)
                   : get_us(ds, CMD_MESSAGE_ID, &cmd->message_id));
    cmd->has_dataset = dataset_type != NO_DATASET;
    get_us(ds, CMD_PRIORITY, &cmd->priority);
    get_us(ds, CMD_MOVE_ORIGINATOR_ID, &cmd->move_originator_id);
    get_text(ds, CMD_AFFECTED_SOP_CLASS, cmd->sop_class, sizeof cmd->sop_class);
    get_text(ds, CMD_AFFECTED_SOP_INSTANCE, cmd->sop_instance,
             sizeof cmd->sop_instance);
    get_text(ds, CMD_MOVE_ORIGINATOR_AE, cmd->move_originator_ae,
             sizeof cmd->move_originator_ae);
    get_text(ds, CMD_ERROR_COMMENT, cmd->error_comment,
             sizeof cmd->error_comment);
    dcm_file_free(f);
    if (!ok)
        return dcm_fail(err, DCM_E_INVALID, -1, "command set without command "
                        "field, message ID, data set type or status");
    return DCM_OK;
}

/* ---- receiving -------------------------------------------------------------------- */

/* A DIMSE-level protocol error: the association cannot continue. */
static int protocol_error(dcm_assoc *a, dcm_error *err, const char *what)
{
    dcm_fail(err, DCM_E_INVALID, -1, "%s: %s", dcm_assoc_transport(a)->peer,
             what);
    dcm_assoc_abort(a);
    return DCM_E_INVALID;
}

static int receive_command(dcm_assoc *a, int first_timeout_ms,
                           dcm_command *cmd, dcm_error *err)
{
    if (dcm_assoc_dataset_due(a) >= 0)
        return dcm_fail(err, DCM_E_ARG, -1, "a data set is due first");
    const dcm_net_limits *limits = dcm_assoc_limits(a);
    dcm_bytes buf = {0};
    int context_id = -1, rc;
    for (;;) {
        dcm_pdv pdv;
        rc = dcm_assoc_next_pdv(a, context_id < 0 ? first_timeout_ms
                                                  : limits->dimse_timeout_ms,
                                &pdv, err);
        if (rc != DCM_OK)
            break;
        if (!pdv.command) {
            rc = protocol_error(a, err, "data set fragment where a command "
                                        "was expected");
            break;
        }
        if (context_id >= 0 && pdv.context_id != context_id) {
            rc = protocol_error(a, err, "command fragments on two contexts");
            break;
        }
        context_id = pdv.context_id;
        if (buf.len + pdv.len > limits->max_command_bytes) {
            rc = protocol_error(a, err, "command set larger than "
                                        "max_command_bytes");
            break;
        }
        dcm_bytes_put(&buf, pdv.data, pdv.len);
        if (pdv.last)
            break;
    }
    if (rc == DCM_OK && buf.failed)
        rc = dcm_fail(err, DCM_E_NOMEM, -1, "out of memory for a command");
    if (rc == DCM_OK && buf.len == 0)
        rc = protocol_error(a, err, "an empty command set");
    if (rc == DCM_OK) {
        rc = decode_command(buf.data, buf.len, cmd, err);
        if (rc < 0)
            protocol_error(a, NULL, "");
    }
    free(buf.data);
    if (rc == DCM_OK) {
        cmd->context_id = (uint8_t)context_id;
        dcm_assoc_set_dataset_due(a, cmd->has_dataset ? context_id : -1);
    }
    return rc;
}

int dcm_receive_command(dcm_assoc *a, dcm_command *cmd, dcm_error *err)
{
    return receive_command(a, dcm_assoc_limits(a)->idle_timeout_ms, cmd, err);
}

int dcm_receive_dataset(dcm_assoc *a, dcm_write_fn write, void *ctx,
                        uint64_t *bytes, bool *write_failed, dcm_error *err)
{
    int context_id = dcm_assoc_dataset_due(a);
    if (context_id < 0)
        return dcm_fail(err, DCM_E_ARG, -1, "no data set is due");
    dcm_assoc_set_dataset_due(a, -1);
    *bytes = 0;
    *write_failed = false;
    for (;;) {
        dcm_pdv pdv;
        int rc = dcm_assoc_next_pdv(a, dcm_assoc_limits(a)->dimse_timeout_ms,
                                    &pdv, err);
        if (rc == DCM_RECEIVED_RELEASE)
            return dcm_fail(err, DCM_E_INVALID, -1, "%s released the "
                            "association in the middle of a data set",
                            dcm_assoc_transport(a)->peer);
        if (rc < 0)
            return rc;
        if (pdv.command)
            return protocol_error(a, err, "command fragment inside a data set");
        if (pdv.context_id != context_id)
            return protocol_error(a, err, "data set on another context than "
                                          "its command");
        if (write && !*write_failed && pdv.len > 0 &&
            write(ctx, pdv.data, pdv.len) < 0)
            *write_failed = true;
        *bytes += pdv.len;
        if (pdv.last)
            return DCM_OK;
    }
}

/* ---- sending ------------------------------------------------------------------------ */

/* A data set or command going out as PDVs: bytes fill the PDV space; a
 * full PDV goes out only when more bytes follow, so that the last one
 * carries the "last fragment" bit with data in it. */
typedef struct pdv_stream {
    dcm_assoc *assoc;
    uint8_t context_id;
    bool command;
    uint8_t *space;
    size_t capacity, used;
    uint64_t total;
    dcm_error *err;
    int rc;
} pdv_stream;

static int stream_open(pdv_stream *s, dcm_assoc *a, uint8_t context_id,
                       bool command, dcm_error *err)
{
    *s = (pdv_stream){.assoc = a, .context_id = context_id,
                      .command = command, .err = err};
    s->space = dcm_assoc_pdv_space(a, &s->capacity);
    if (!s->space)
        return s->rc = dcm_fail(err, DCM_E_NOMEM, -1, "out of memory");
    s->capacity -= s->capacity % 2; /* fragments have even lengths */
    return DCM_OK;
}

static int stream_write(void *ctx, const void *data, size_t len)
{
    pdv_stream *s = ctx;
    const uint8_t *p = data;
    while (len > 0 && s->rc == DCM_OK) {
        if (s->used == s->capacity) {
            s->rc = dcm_assoc_send_pdv(s->assoc, s->context_id, s->command,
                                       false, s->used, s->err);
            s->used = 0;
            continue;
        }
        size_t n = s->capacity - s->used < len ? s->capacity - s->used : len;
        memcpy(s->space + s->used, p, n);
        s->used += n;
        s->total += n;
        p += n;
        len -= n;
    }
    if (s->rc < 0) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* Sends the last fragment. A message is an even number of bytes (PS3.5
 * 7.1, A.5: elements have even lengths, a deflated stream is padded); a
 * file whose data set is odd (a deflated stream its writer did not pad)
 * gets the trailing NUL here, as the padding PS3.5 A.5 prescribes. */
static int stream_close(pdv_stream *s)
{
    if (s->rc == DCM_OK && s->total % 2)
        stream_write(s, "", 1);
    if (s->rc == DCM_OK)
        s->rc = dcm_assoc_send_pdv(s->assoc, s->context_id, s->command, true,
                                   s->used, s->err);
    return s->rc;
}

int dcm_send_command(dcm_assoc *a, const dcm_command *cmd, dcm_error *err)
{
    dcm_bytes buf = {0};
    pdv_stream s;
    int rc = encode_command(cmd, &buf, err);
    if (rc == DCM_OK && (rc = stream_open(&s, a, cmd->context_id, true, err)) ==
                            DCM_OK) {
        stream_write(&s, buf.data, buf.len);
        rc = stream_close(&s);
    }
    free(buf.data);
    return rc;
}

int dcm_send_dataset(dcm_assoc *a, uint8_t context_id, dcm_read_fn read,
                     void *ctx, dcm_error *err)
{
    pdv_stream s;
    int rc = stream_open(&s, a, context_id, false, err);
    if (rc < 0)
        return rc;
    uint8_t chunk[64 << 10];
    for (;;) {
        long got = read(ctx, chunk, sizeof chunk);
        if (got < 0)
            return dcm_fail(err, DCM_E_IO, -1, "reading the data set to send: "
                            "%s", strerror(errno));
        if (got == 0 || stream_write(&s, chunk, (size_t)got) < 0)
            break;
    }
    return stream_close(&s);
}

/* ---- SCU operations ----------------------------------------------------------------- */

/* Waits for the response to request (DIMSE timeout) and checks it answers
 * it; a data set with a response (not used by ECHO/STORE) is drained. */
static int await_response(dcm_assoc *a, const dcm_command *request,
                          dcm_command *rsp, dcm_error *err)
{
    int rc = receive_command(a, dcm_assoc_limits(a)->dimse_timeout_ms, rsp,
                             err);
    if (rc == DCM_RECEIVED_RELEASE)
        return dcm_fail(err, DCM_E_CLOSED, -1, "%s released the association "
                        "instead of answering", dcm_assoc_transport(a)->peer);
    if (rc < 0)
        return rc;
    if (rsp->has_dataset) {
        uint64_t bytes;
        bool failed;
        if ((rc = dcm_receive_dataset(a, NULL, NULL, &bytes, &failed, err)) < 0)
            return rc;
    }
    if (rsp->field != (request->field | 0x8000) ||
        rsp->responded_id != request->message_id)
        return protocol_error(a, err, "a response that does not answer the "
                                      "request");
    return DCM_OK;
}

int dcm_echo(dcm_assoc *a, uint16_t *status, dcm_error *err)
{
    const dcm_pcontext *pc =
        dcm_assoc_find_context(a, DCM_VERIFICATION_SOP_CLASS, NULL);
    if (!pc)
        return dcm_fail(err, DCM_E_UNSUPPORTED, -1, "%s accepted no "
                        "Verification context",
                        dcm_assoc_transport(a)->peer);
    dcm_command rq = {.field = DCM_C_ECHO_RQ, .message_id = 1,
                      .context_id = pc->id};
    snprintf(rq.sop_class, sizeof rq.sop_class, "%s",
             DCM_VERIFICATION_SOP_CLASS);
    dcm_command rsp;
    int rc = dcm_send_command(a, &rq, err);
    if (rc == DCM_OK)
        rc = await_response(a, &rq, &rsp, err);
    if (rc == DCM_OK)
        *status = rsp.status;
    return rc;
}

/* A file to send: its SOP identity, syntax and where its data set starts. */
typedef struct outgoing {
    dcm_file *file;
    char sop_class[DCM_UID_MAX + 1];
    char sop_instance[DCM_UID_MAX + 1];
    const dcm_ts *ts;
} outgoing;

/* A UID of the data set (what is stored is the data set, so it says what
 * the command announces), else of the meta. */
static void uid_of(const dcm_file *f, uint32_t tag, uint32_t meta_tag,
                   char out[DCM_UID_MAX + 1])
{
    const dcm_element *el = dcm_dataset_find(dcm_file_dataset(f), tag);
    if (!el)
        el = dcm_dataset_find(dcm_file_meta(f), meta_tag);
    char *text = el ? dcm_element_get_string(el, NULL) : NULL;
    snprintf(out, DCM_UID_MAX + 1, "%s", text ? text : "");
    free(text);
}

static int open_outgoing(const char *path, outgoing *o, dcm_error *err)
{
    o->file = dcm_file_open(path, NULL, err);
    if (!o->file)
        return err ? err->code : DCM_E_INVALID;
    uid_of(o->file, DCM_TAG_SOP_CLASS_UID, DCM_TAG_MEDIA_SOP_CLASS_UID,
           o->sop_class);
    uid_of(o->file, DCM_TAG_SOP_INSTANCE_UID, DCM_TAG_MEDIA_SOP_INSTANCE_UID,
           o->sop_instance);
    o->ts = dcm_file_transfer_syntax(o->file);
    if (!dcm_uid_is_valid(o->sop_class) || !dcm_uid_is_valid(o->sop_instance))
        return dcm_fail(err, DCM_E_INVALID, -1, "%s has no valid SOP Class "
                        "and Instance UID", path);
    return DCM_OK;
}

static long fd_read(void *ctx, void *buf, size_t len)
{
    ssize_t got;
    do {
        got = read(*(int *)ctx, buf, len);
    } while (got < 0 && errno == EINTR);
    return (long)got;
}

/* The data set as it is in the file (the context took the file's syntax). */
static int send_raw(dcm_assoc *a, const char *path, const outgoing *o,
                    uint8_t context_id, dcm_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dcm_fail(err, DCM_E_IO, -1, "cannot open %s: %s", path,
                        strerror(errno));
    int rc;
    if (lseek(fd, (off_t)dcm_file_dataset_offset(o->file), SEEK_SET) < 0)
        rc = dcm_fail(err, DCM_E_IO, -1, "%s: %s", path, strerror(errno));
    else
        rc = dcm_send_dataset(a, context_id, fd_read, &fd, err);
    close(fd);
    return rc;
}

/* The data set re-encoded into the context's syntax. */
static int send_encoded(dcm_assoc *a, const outgoing *o,
                        const dcm_pcontext *pc, dcm_error *err)
{
    pdv_stream s;
    int rc = stream_open(&s, a, pc->id, false, err);
    if (rc < 0)
        return rc;
    rc = dcm_write_dataset(dcm_file_dataset(o->file), pc->accepted->uid,
                           stream_write, &s, err);
    if (s.rc < 0)
        return s.rc; /* the network failed: err says how */
    if (rc < 0) {
        /* The data set could not be encoded after part of it went out:
         * the association cannot carry on with this message. */
        dcm_assoc_abort(a);
        return rc;
    }
    return stream_close(&s);
}

/* The context to send o on: one that accepted its own syntax, else, for
 * a native data set, one that accepted a little endian native syntax it
 * can be re-encoded into. */
static const dcm_pcontext *context_for(dcm_assoc *a, const outgoing *o,
                                       dcm_error *err)
{
    const dcm_pcontext *pc = dcm_assoc_find_context(a, o->sop_class, o->ts);
    if (pc && pc->accepted == o->ts)
        return pc;
    const dcm_assoc_info *info = dcm_assoc_info_of(a);
    for (size_t i = 0; i < info->context_count && !o->ts->encapsulated; i++) {
        pc = &info->contexts[i];
        if (pc->result == DCM_PC_ACCEPTED &&
            strcmp(pc->abstract_syntax, o->sop_class) == 0 &&
            !pc->accepted->encapsulated && !pc->accepted->big_endian)
            return pc;
    }
    dcm_fail(err, DCM_E_UNSUPPORTED, -1, "%s accepted no context for SOP "
             "class %s in %s or a syntax it could be re-encoded into",
             dcm_assoc_transport(a)->peer, o->sop_class, o->ts->name);
    return NULL;
}

int dcm_store_file(dcm_assoc *a, const char *path, uint16_t message_id,
                   uint16_t *status, char *error_comment, dcm_error *err)
{
    outgoing o = {0};
    int rc = open_outgoing(path, &o, err);
    const dcm_pcontext *pc = rc == DCM_OK ? context_for(a, &o, err) : NULL;
    if (rc == DCM_OK && !pc)
        rc = DCM_E_UNSUPPORTED;
    dcm_command rq = {.field = DCM_C_STORE_RQ, .message_id = message_id,
                      .has_dataset = true};
    if (rc == DCM_OK && pc->accepted != o.ts)
        rc = dcm_write_check(dcm_file_dataset(o.file), pc->accepted->uid, err);
    if (rc == DCM_OK) {
        rq.context_id = pc->id;
        memcpy(rq.sop_class, o.sop_class, sizeof rq.sop_class);
        memcpy(rq.sop_instance, o.sop_instance, sizeof rq.sop_instance);
        rc = dcm_send_command(a, &rq, err);
    }
    if (rc == DCM_OK)
        rc = pc->accepted == o.ts ? send_raw(a, path, &o, pc->id, err)
                                  : send_encoded(a, &o, pc, err);
    dcm_file_free(o.file);
    dcm_command rsp;
    if (rc == DCM_OK)
        rc = await_response(a, &rq, &rsp, err);
    if (rc == DCM_OK) {
        *status = rsp.status;
        if (error_comment)
            snprintf(error_comment, 65, "%s", rsp.error_comment);
    }
    return rc;
}

/* ---- the SCP loop ------------------------------------------------------------------- */

static int respond(dcm_assoc *a, const dcm_command *rq, uint16_t status,
                   const char *comment, dcm_error *err)
{
    dcm_command rsp = {.field = (uint16_t)(rq->field | 0x8000),
                       .responded_id = rq->message_id,
                       .status = status,
                       .context_id = rq->context_id};
    memcpy(rsp.sop_class, rq->sop_class, sizeof rsp.sop_class);
    memcpy(rsp.sop_instance, rq->sop_instance, sizeof rsp.sop_instance);
    if (comment)
        snprintf(rsp.error_comment, sizeof rsp.error_comment, "%s", comment);
    return dcm_send_command(a, &rsp, err);
}

static int drain(dcm_assoc *a, const dcm_command *rq, dcm_error *err)
{
    uint64_t bytes;
    bool failed;
    return rq->has_dataset ? dcm_receive_dataset(a, NULL, NULL, &bytes, &failed,
                                                 err)
                           : DCM_OK;
}

static int serve_store(dcm_assoc *a, const dcm_command *rq,
                       const dcm_store_handler *store, dcm_error *err)
{
    if (!rq->has_dataset)
        return respond(a, rq, DCM_STATUS_CANNOT_UNDERSTAND,
                       "C-STORE-RQ without a data set", err);
    const dcm_pcontext *pc = dcm_assoc_context(a, rq->context_id);
    uint16_t status = DCM_STATUS_SUCCESS;
    char comment[65] = "";
    void *instance = NULL;
    if (strcmp(pc->abstract_syntax, rq->sop_class) != 0) {
        status = DCM_STATUS_SOP_CLASS_NOT_SUPPORTED;
        snprintf(comment, sizeof comment, "SOP class differs from the "
                 "presentation context's");
    } else if (!store) {
        status = DCM_STATUS_SOP_CLASS_NOT_SUPPORTED;
    } else if (store->begin(store->ctx, a, rq, &instance, &status) < 0) {
        instance = NULL;
        if (status == DCM_STATUS_SUCCESS)
            status = DCM_STATUS_OUT_OF_RESOURCES;
    }
    uint64_t bytes;
    bool write_failed;
    int rc = dcm_receive_dataset(a, instance ? store->data : NULL, instance,
                                 &bytes, &write_failed, err);
    if (instance)
        status = store->end(instance, rc == DCM_OK && !write_failed, comment);
    if (rc < 0)
        return rc;
    return respond(a, rq, status, comment[0] ? comment : NULL, err);
}

int dcm_scp_serve(dcm_assoc *a, const dcm_store_handler *store, dcm_error *err)
{
    for (;;) {
        dcm_command rq;
        int rc = dcm_receive_command(a, &rq, err);
        if (rc == DCM_RECEIVED_RELEASE)
            return DCM_OK;
        if (rc < 0)
            return rc;
        if (rq.field == DCM_C_STORE_RQ) {
            rc = serve_store(a, &rq, store, err);
        } else if (rq.field == DCM_C_ECHO_RQ) {
            rc = drain(a, &rq, err);
            if (rc == DCM_OK)
                rc = respond(a, &rq, DCM_STATUS_SUCCESS, NULL, err);
        } else {
            rc = drain(a, &rq, err);
            if (rc == DCM_OK && !is_response(rq.field))
                rc = respond(a, &rq, DCM_STATUS_UNRECOGNIZED_OPERATION,
                             "operation not supported here", err);
        }
        if (rc < 0)
            return rc;
    }
}
