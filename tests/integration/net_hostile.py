#!/usr/bin/python3
"""net_hostile.py SIREN WORKDIR - hostile peers against `siren serve`.

Starts `siren serve` (run it against the ASan/UBSan build: its stderr is
scanned for sanitizer reports), then, each on its own connection, sends
hand-built byte sequences (PS3.8 PDUs built here so that they can be
broken precisely) and checks what comes back: an A-ABORT (0x07) or an
A-ASSOCIATE-RJ (0x03), or for a peer that vanished or stalled a plain
close, and then the connection closed, within a bound of time. After each
case a normal C-ECHO (`siren echo`) must still succeed; at the end the
server must be alive, its RSS must not have grown by more than 64 MB, it
must stop cleanly on SIGTERM and its log must hold no sanitizer report.

Cases that wait for a timer (slowloris, idle, ARTIM, a peer that stops
reading) run in threads alongside the others, so the whole run takes
about the ARTIM timeout (30 s, not configurable in `siren serve`) plus a
few seconds. The last cases (Cases.last_cases) reproduce problems found
while writing this test and the fuzz harness; they run after the memory
check because they could take the server down. Standard library only
(Debian's /usr/bin/python3).
"""
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

TIMEOUT_S = 3        # siren serve --timeout: each PDU once started
IDLE_S = 4           # siren serve --idle-timeout
ARTIM_S = 30         # DCM_DEFAULT_ARTIM_TIMEOUT_MS
PROMPT_S = 2.0       # an answer that needs no timer must come within this
RSS_GROWTH_KB = 64 * 1024
SANITIZER = re.compile(r"ERROR: AddressSanitizer|runtime error|"
                       r"LeakSanitizer|ERROR: ThreadSanitizer")

VERIFICATION = b"1.2.840.10008.1.1"
CT_STORAGE = b"1.2.840.10008.5.1.4.1.1.2"
IMPLICIT_LE = b"1.2.840.10008.1.2"
EXPLICIT_LE = b"1.2.840.10008.1.2.1"
APP_CONTEXT = b"1.2.840.10008.3.1.1.1"

ABORT, RJ, AC, PDATA, RELEASE_RP_TYPE = 0x07, 0x03, 0x02, 0x04, 0x06


class Failure(Exception):
    pass


# ---- building PDUs (PS3.8 9.3) ------------------------------------------------

def pdu(pdu_type, body, length=None):
    """A PDU; length overrides the length field (to lie about it)."""
    return struct.pack(">BBI", pdu_type, 0,
                       len(body) if length is None else length) + body


def item(item_type, content, length=None):
    return struct.pack(">BBH", item_type, 0,
                       len(content) if length is None else length) + content


def ae(title):
    return title.ljust(16, b" ")


def context_rq(pc_id, abstract=VERIFICATION, syntaxes=(IMPLICIT_LE,)):
    body = struct.pack(">BBBB", pc_id, 0, 0, 0) + item(0x30, abstract)
    for ts in syntaxes:
        body += item(0x40, ts)
    return item(0x20, body)


def max_length(max_pdu=16384):
    return item(0x51, struct.pack(">I", max_pdu))


def user_info(extra=b"", max_pdu=16384):
    return item(0x50, max_length(max_pdu) + item(0x52, b"1.2.3.4.5.6") +
                item(0x55, b"HOSTILE") + extra)


def context_ac(pc_id, result, ts):
    return item(0x21, struct.pack(">BBBB", pc_id, 0, result, 0) +
                item(0x40, ts))


DEFAULT_CONTEXTS = [context_rq(1, VERIFICATION, [IMPLICIT_LE]),
                    context_rq(3, CT_STORAGE, [EXPLICIT_LE, IMPLICIT_LE])]


def rq_body(contexts=None, called=b"SIREN", calling=b"HOSTILE", ui=None,
            version=1, app=APP_CONTEXT, app_item=None):
    body = struct.pack(">HH", version, 0) + ae(called) + ae(calling)
    body += bytes(32) + (item(0x10, app) if app_item is None else app_item)
    body += b"".join(DEFAULT_CONTEXTS if contexts is None else contexts)
    return body + (user_info() if ui is None else ui)


def rq(**kw):
    return pdu(0x01, rq_body(**kw))


def short(pdu_type, b1=0, b2=0, b3=0):
    return pdu(pdu_type, bytes([0, b1, b2, b3]))


RELEASE_RQ = short(0x05)
RELEASE_RP = short(0x06)
ABORT_PDU = short(0x07)


def pdv(pc_id, control, data, length=None):
    """A PDV item: control bit 0 command, bit 1 last fragment."""
    return struct.pack(">IBB", len(data) + 2 if length is None else length,
                       pc_id, control) + data


def p_data(*pdvs):
    return pdu(0x04, b"".join(pdvs))


# ---- DIMSE command sets (PS3.7 E, implicit VR little endian) -------------------

def element(group, elem, value):
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", group, elem, len(value)) + value


def us(v):
    return struct.pack("<H", v)


def command(fields):
    body = b"".join(element(0, e, v) for e, v in sorted(fields.items()))
    return element(0, 0x0000, struct.pack("<I", len(body))) + body


def echo_rq(msg_id=1):
    return command({0x0002: VERIFICATION, 0x0100: us(0x0030),
                    0x0110: us(msg_id), 0x0800: us(0x0101)})


def store_rq(msg_id, instance):
    return command({0x0002: CT_STORAGE, 0x0100: us(0x0001),
                    0x0110: us(msg_id), 0x0700: us(0), 0x0800: us(0),
                    0x1000: instance})


def parse_command(data):
    fields, at = {}, 0
    while at + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHI", data, at)
        fields[(group, elem)] = data[at + 8:at + 8 + length]
        at += 8 + length
    return fields


# ---- a connection with a reader thread -------------------------------------------

class Conn:
    """A TCP connection to the server. A thread reads PDUs as they come
    (so that an A-ABORT sent just before a reset is not lost) and notes
    how the connection ended."""

    MAX_PDUS = 20000  # more is a flood: the reader stops and closes

    def __init__(self, port, rcvbuf=None, read=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.cond = threading.Condition()
        self.pdus = []          # (time, type, body)
        self.end = None         # (time, "eof" | "reset" | "error: ...")
        self.stop = False
        self.last_sent = time.monotonic()
        self.thread = None
        if read:
            self.start_reader()

    def start_reader(self):
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        buf = b""
        while not self.stop:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                self._ended("reset")
                return
            except OSError as e:
                self._ended("error: %s" % e)
                return
            if not chunk:
                self._ended("eof")
                return
            buf += chunk
            while len(buf) >= 6:
                length = struct.unpack_from(">I", buf, 2)[0]
                if len(buf) < 6 + length:
                    break
                with self.cond:
                    self.pdus.append((time.monotonic(), buf[0],
                                      buf[6:6 + length]))
                    self.cond.notify_all()
                buf = buf[6 + length:]
                if len(self.pdus) >= self.MAX_PDUS:
                    self._ended("flood of %d PDUs" % len(self.pdus))
                    self.sock.close()
                    return

    def _ended(self, how):
        with self.cond:
            self.end = (time.monotonic(), how)
            self.cond.notify_all()

    def send(self, data, swallow=False):
        """Sends all of data; swallow: a reset or a full window ends the
        sending quietly (the server may stop reading on purpose)."""
        try:
            self.sock.sendall(data)
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            if not swallow:
                raise
        self.last_sent = time.monotonic()

    def half_close(self):
        self.sock.shutdown(socket.SHUT_WR)
        self.last_sent = time.monotonic()

    def wait_pdu(self, index, timeout):
        """The index-th PDU received, or None if the connection ended or
        the time ran out first."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.pdus) <= index and self.end is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.pdus[index] if len(self.pdus) > index else None

    def wait_end(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.end is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.end

    def close(self):
        self.stop = True
        try:
            self.sock.close()
        except OSError:
            pass
        if self.thread:
            self.thread.join(2)


def describe(conn, since):
    """What came back: PDU types, then how the connection ended, with the
    time from `since`."""
    parts = []
    shown = conn.pdus if len(conn.pdus) <= 8 else conn.pdus[:6]
    for t, pdu_type, body in shown:
        name = {ABORT: "A-ABORT", RJ: "A-ASSOCIATE-RJ", AC: "A-ASSOCIATE-AC",
                PDATA: "P-DATA", RELEASE_RP_TYPE: "A-RELEASE-RP"}.get(
                    pdu_type, "0x%02X" % pdu_type)
        if pdu_type in (ABORT, RJ) and len(body) == 4:
            name += "(%d,%d,%d)" % (body[1], body[2], body[3])
        parts.append("%s@%.2fs" % (name, t - since))
    if len(shown) < len(conn.pdus):
        parts.append("... %d PDUs in all" % len(conn.pdus))
    if conn.end:
        parts.append("%s@%.2fs" % (conn.end[1], conn.end[0] - since))
    return " ".join(parts) or "nothing"


def expect_end(conn, want, within, skip=0):
    """After the first `skip` PDUs (an A-ASSOCIATE-AC and answers), the
    next PDU must be of a type in want ("close": none at all is fine too)
    and the server must then close, all within `within` seconds of our
    last byte. After an A-ASSOCIATE-RJ or A-RELEASE-RP the server waits
    for us to close (ARTIM, PS3.8 Sta13), so we do. Returns a description
    of what came back."""
    since = conn.last_sent
    got = conn.wait_pdu(skip, within)
    if got is None:
        end = conn.wait_end(0.2)
        if end is None:
            raise Failure("nothing within %.1fs (%s)" %
                          (within, describe(conn, since)))
        if "close" not in want:
            raise Failure("closed without A-ABORT/RJ (%s)" %
                          describe(conn, since))
    elif got[1] not in want:
        raise Failure("unexpected PDU 0x%02X (%s)" % (got[1],
                                                      describe(conn, since)))
    elif got[1] in (RJ, RELEASE_RP_TYPE):
        text = describe(conn, since)
        conn.close()
        return text + " (we close)"
    end = conn.wait_end(max(0.5, within - (time.monotonic() - since)))
    if end is None:
        raise Failure("not closed within %.1fs (%s)" %
                      (within, describe(conn, since)))
    extra = [p for p in conn.pdus[skip + (1 if got else 0):] if p[1] != ABORT]
    if extra:
        raise Failure("PDUs after the abort (%s)" % describe(conn, since))
    return describe(conn, since)


# ---- a valid association, built by hand ----------------------------------------------

def parse_ac(body):
    """{context ID: result} of an A-ASSOCIATE-AC body."""
    results, at = {}, 68
    while at + 4 <= len(body):
        item_type, _, length = struct.unpack_from(">BBH", body, at)
        if item_type == 0x21:
            results[body[at + 4]] = body[at + 6]
        at += 4 + length
    return results


def associate(conn, **kw):
    conn.send(rq(**kw))
    got = conn.wait_pdu(0, 5)
    if got is None or got[1] != AC:
        raise Failure("no A-ASSOCIATE-AC (%s)" % describe(conn, conn.last_sent))
    return parse_ac(got[2])


def read_response(conn, index, timeout=5):
    """The command set of the response that starts at PDU `index`;
    returns (fields, index after it)."""
    data = b""
    while True:
        got = conn.wait_pdu(index, timeout)
        if got is None or got[1] != PDATA:
            raise Failure("no response (%s)" % describe(conn, conn.last_sent))
        index += 1
        body, at, last = got[2], 0, False
        while at + 6 <= len(body):
            length = struct.unpack_from(">I", body, at)[0]
            data += body[at + 6:at + 4 + length]
            last = body[at + 5] & 2
            at += 4 + length
        if last:
            return parse_command(data), index


def status_of(fields):
    return struct.unpack("<H", fields[(0, 0x0900)])[0]


def echo(conn, index, pc_id=1, msg_id=1):
    conn.send(p_data(pdv(pc_id, 0x03, echo_rq(msg_id))))
    fields, index = read_response(conn, index)
    if status_of(fields) != 0:
        raise Failure("C-ECHO status 0x%04X" % status_of(fields))
    return index


def release(conn, index):
    conn.send(RELEASE_RQ)
    got = conn.wait_pdu(index, 5)
    if got is None or got[1] != RELEASE_RP_TYPE:
        raise Failure("no A-RELEASE-RP (%s)" % describe(conn, conn.last_sent))
    conn.close()


# ---- the cases ------------------------------------------------------------------------

def small_dataset(instance):
    return (element(0x0008, 0x0016, CT_STORAGE) +
            element(0x0008, 0x0018, instance) +
            element(0x0010, 0x0010, b"Hostile^Peer"))


class Cases:
    """Each case runs on its own connection and returns what it got;
    raising Failure fails it. conn_ports records the client ports of each
    case (named in self.local.name by the runner, per thread) so that the
    server's log lines can be matched."""

    def __init__(self, port, store_dir, siren):
        self.siren = siren
        self.port = port
        self.store_dir = store_dir
        self.conn_ports = {}
        self.local = threading.local()

    def conn(self, _label=None, **kw):
        c = Conn(self.port, **kw)
        name = getattr(self.local, "name", "?")
        self.conn_ports.setdefault(name, []).append(c.port)
        return c

    def established(self, name, **kw):
        c = self.conn(name)
        results = associate(c, **kw)
        return c, results

    # -- before an association --

    def send_expect(self, name, data, want=(ABORT,), within=PROMPT_S,
                    half_close=False):
        c = self.conn(name)
        try:
            c.send(data, swallow=True)
            if half_close:
                c.half_close()
            return expect_end(c, want, within)
        finally:
            c.close()

    def fast_cases(self):
        """(name, function) in order; each ends in an A-ABORT/RJ/close."""
        cases = []

        def add(name, data, want=(ABORT,), within=PROMPT_S, half_close=False):
            cases.append((name, lambda: self.send_expect(
                name, data, want, within, half_close)))

        add("unknown PDU type 0x09", pdu(0x09, bytes(4)))
        add("unknown PDU type 0xFF, 4 GB length", pdu(0xFF, b"", 0xFFFFFFFF))
        add("P-DATA-TF before any association",
            p_data(pdv(1, 0x03, echo_rq())))
        add("A-ASSOCIATE-RQ length 0xFFFFFFFF (4 GB-1), header only",
            pdu(0x01, b"", 0xFFFFFFFF))
        add("A-ASSOCIATE-RQ length 0xFFFFFFFF with a valid body after",
            pdu(0x01, rq_body(), 0xFFFFFFFF))
        add("A-ASSOCIATE-RQ length 0x80000000 (2 GB)",
            pdu(0x01, b"", 0x80000000))
        add("A-ASSOCIATE-RQ length 256 KiB + 1 (over max_associate_bytes)",
            pdu(0x01, b"", (256 << 10) + 1))
        add("A-ASSOCIATE-RQ length 0", pdu(0x01, b""))
        add("A-ASSOCIATE-RQ shorter than its fixed fields", pdu(0x01, bytes(67)))
        body = rq_body()
        add("A-ASSOCIATE-RQ length past the end, then half-close",
            pdu(0x01, body, len(body) + 100), want=(ABORT, "close"),
            half_close=True)
        add("truncated PDU header (3 bytes), then half-close", b"\x01\x00\x00",
            want=(ABORT, "close"), half_close=True)
        add("A-ASSOCIATE-RQ length shorter than its items",
            pdu(0x01, body, len(body) - 10) + body[-10:])
        add("application context item length 0xFFFF",
            rq(app_item=item(0x10, APP_CONTEXT, length=0xFFFF)))
        add("presentation context item length past the PDU",
            rq(contexts=[item(0x20, context_rq(1)[4:], length=0x4000)]))
        add("abstract syntax sub-item length past its item",
            rq(contexts=[item(0x20, struct.pack(">BBBB", 1, 0, 0, 0) +
                              item(0x30, VERIFICATION, length=200) +
                              item(0x40, IMPLICIT_LE))]))
        add("transfer syntax sub-item length 0xFFFF",
            rq(contexts=[item(0x20, struct.pack(">BBBB", 1, 0, 0, 0) +
                              item(0x30, VERIFICATION) +
                              item(0x40, IMPLICIT_LE, length=0xFFFF))]))
        add("presentation context item cut short (2 bytes)",
            rq(contexts=[item(0x20, b"\x01\x00")]))
        add("user information sub-item length past its item",
            rq(ui=item(0x50, max_length() + item(0x52, b"1.2.3", length=300))))
        add("maximum length sub-item of 2 bytes",
            rq(ui=item(0x50, item(0x51, b"\x40\x00"))))
        add("no user information item",
            pdu(0x01, rq_body(ui=b"")))
        add("user identity with lying field lengths",
            rq(ui=user_info(item(0x58, struct.pack(">BBH", 2, 1, 0xFFF0) +
                                 b"user" + struct.pack(">H", 6) + b"secret"))))
        add("role selection with UID length past its item",
            rq(ui=user_info(item(0x54, struct.pack(">H", 0x7FFF) + CT_STORAGE +
                                 b"\x01\x01"))))
        add("200 presentation contexts (IDs wrap, > 128)",
            rq(contexts=[context_rq((2 * i + 1) & 0xFF, CT_STORAGE)
                         for i in range(200)]))
        add("129 role selection sub-items",
            rq(ui=user_info(b"".join(
                item(0x54, struct.pack(">H", len(CT_STORAGE)) + CT_STORAGE +
                     b"\x01\x00") for _ in range(129)))))
        add("even presentation context ID",
            rq(contexts=[context_rq(2)]))
        add("presentation context ID 0", rq(contexts=[context_rq(0)]))
        add("duplicate presentation context IDs",
            rq(contexts=[context_rq(1), context_rq(3), context_rq(1, CT_STORAGE)]))
        add("presentation context without transfer syntax",
            rq(contexts=[item(0x20, struct.pack(">BBBB", 1, 0, 0, 0) +
                              item(0x30, VERIFICATION))]))
        add("abstract syntax that is not a UID",
            rq(contexts=[context_rq(1, b"1.2.840.10008.1.1\x01<script>")]))
        add("calling AE title with a control character",
            rq(calling=b"EVIL\x07AE"))
        add("an item type that does not belong (0x21 in a request)",
            rq(contexts=[item(0x21, struct.pack(">BBBB", 1, 0, 0, 0) +
                              item(0x40, IMPLICIT_LE))]))
        add("A-ABORT with length 5", pdu(0x07, bytes(5)))
        add("A-ABORT with length 3", pdu(0x07, bytes(3)))
        add("A-ABORT with length 0xFFFFFFFF", pdu(0x07, b"", 0xFFFFFFFF))
        add("A-RELEASE-RQ with length 0", pdu(0x05, b""))
        add("A-RELEASE-RQ with length 8", pdu(0x05, bytes(8)))
        add("A-RELEASE-RQ before any association", RELEASE_RQ)
        add("A-RELEASE-RP before any association", RELEASE_RP)
        add("A-ASSOCIATE-AC sent to the acceptor",
            pdu(0x02, rq_body()))
        add("A-ASSOCIATE-RJ sent to the acceptor", short(0x03, 1, 1, 1))
        add("A-ABORT before any association (server closes silently)",
            ABORT_PDU, want=("close",))
        add("protocol version 2 only", rq(version=2), want=(RJ,))
        add("unknown application context",
            rq(app=b"1.2.3.4"), want=(RJ,))
        add("called AE title not ours", rq(called=b"SOMEONE-ELSE"), want=(RJ,))
        cases.append(("128 presentation contexts (accepted, then echo)",
                      self.many_contexts))
        cases.append(("64 KiB of transfer syntaxes in one context",
                      self.many_syntaxes))
        cases.append(("largest A-ASSOCIATE-RQ (256 KiB of user information)",
                      self.largest_rq))

        # -- after an association --
        def after(name, data, want=(ABORT,), within=PROMPT_S):
            cases.append((name, lambda: self.after_assoc(name, data, want,
                                                         within)))

        after("P-DATA with a PDV length larger than its PDU",
              pdu(0x04, struct.pack(">IBB", 1000, 1, 3) + echo_rq()))
        after("P-DATA with a PDV length of 0xFFFFFFFF",
              pdu(0x04, struct.pack(">IBB", 0xFFFFFFFF, 1, 3) + echo_rq()))
        after("P-DATA with a PDV length of 1",
              pdu(0x04, struct.pack(">IBB", 1, 1, 3)))
        after("P-DATA with 3 bytes (shorter than a PDV header)",
              pdu(0x04, b"\x00\x00\x00"))
        after("P-DATA longer than max PDU (128 KiB + 1), header only",
              pdu(0x04, b"", (128 << 10) + 1))
        after("P-DATA length 0xFFFFFFFF", pdu(0x04, b"", 0xFFFFFFFF))
        after("PDV on a context that was not accepted (ID 5, never proposed)",
              p_data(pdv(5, 0x03, echo_rq())))
        after("PDV on a context that was rejected (abstract syntax 1.2.3)",
              p_data(pdv(7, 0x03, echo_rq())))
        cases.append(("command set of 1 MB (over max_command_bytes)",
                      self.huge_command))
        after("data set fragment where a command was expected",
              p_data(pdv(1, 0x02, echo_rq())))
        after("command with garbage inside",
              p_data(pdv(1, 0x03, b"\x00\x00\x00\x00\x04\x00\x00\x00"
                         b"\xff\xff\xff\x7f" + b"garbage!" * 8)))
        after("command with an element length past its end",
              p_data(pdv(1, 0x03, echo_rq()[:-6] + struct.pack("<HHI", 0, 0x800, 0x7FFFFFF0))))
        after("command without a command field",
              p_data(pdv(1, 0x03, command({0x0110: us(1), 0x0800: us(0x0101)}))))
        after("command fragments on two contexts",
              p_data(pdv(1, 0x01, echo_rq()[:10]), pdv(3, 0x03, echo_rq()[10:])))
        after("a second A-ASSOCIATE-RQ", rq())
        after("an A-RELEASE-RP we never asked for", RELEASE_RP)
        after("an A-ASSOCIATE-AC", pdu(0x02, rq_body()))
        after("unknown PDU type 0x55 after association", pdu(0x55, bytes(4)))
        after("A-RELEASE-RQ with length 6", pdu(0x05, bytes(6)))
        after("A-ABORT from the peer (server closes silently)", ABORT_PDU,
              want=("close",))
        cases.append(("C-STORE data set on another context than its command",
                      self.dataset_other_context))
        cases.append(("command fragment inside a data set",
                      self.command_in_dataset))
        cases.append(("A-RELEASE-RQ in the middle of a data set",
                      self.release_mid_dataset))
        cases.append(("C-STORE of a small instance, then release (sanity)",
                      self.good_store))
        cases.append(("maximum length 7 (room for one data byte), then C-ECHO",
                      lambda: self.small_max_length(7)))
        cases.append(("maximum length 1024, then C-ECHO",
                      lambda: self.small_max_length(1024)))
        return cases

    def last_cases(self):
        """Reproducers of problems found while writing this test (see
        the cases): run after the memory check, each followed by an echo,
        because some of them can take the server down."""
        return [
            ("siren echo against an acceptor announcing maximum length 5",
             lambda: self.hostile_acceptor(5)),
            ("empty command PDV (0 bytes, last fragment)",
             lambda: self.after_assoc("empty command",
                                      p_data(pdv(1, 0x03, b"")))),
            ("maximum length 6 (no room for data), then C-ECHO",
             lambda: self.small_max_length(6)),
            ("maximum length 5 (smaller than a PDV header), then C-ECHO",
             lambda: self.small_max_length(5)),
        ]

    def small_max_length(self, max_pdu):
        """The requestor receives at most max_pdu bytes of P-DATA body:
        the answer must respect that (or the association end), promptly
        and in a bounded number of PDUs."""
        c = self.conn()
        try:
            c.send(rq(ui=user_info(max_pdu=max_pdu)))
            got = c.wait_pdu(0, PROMPT_S)
            if got is None or got[1] != AC:
                # refusing such a peer at once is fine too
                return expect_end(c, (ABORT, RJ), PROMPT_S)
            c.send(p_data(pdv(1, 0x03, echo_rq())))
            deadline = time.monotonic() + PROMPT_S
            while time.monotonic() < deadline and not c.end:
                last = c.wait_pdu(len(c.pdus), 0.2)
                if last and last[1] == PDATA and last[2][5:6] and \
                        last[2][5] & 2:
                    break  # the last fragment of the response
            if c.end and c.end[1].startswith("flood"):
                raise Failure("answered with a flood (%s)" %
                              describe(c, c.last_sent))
            if any(p[1] == ABORT for p in c.pdus) or (c.end and not any(
                    p[1] == PDATA for p in c.pdus)):
                # refusing to work with such a peer is fine; vanishing
                # without a word after the request is not
                return expect_end(c, (ABORT,), PROMPT_S, skip=1)
            oversized = [p for p in c.pdus if p[1] == PDATA and
                         len(p[2]) > max_pdu]
            if oversized:
                raise Failure("%d P-DATA PDUs over the peer's maximum of %d "
                              "bytes" % (len(oversized), max_pdu))
            fields, index = read_response(c, 1, timeout=0.5)
            if status_of(fields) != 0:
                raise Failure("C-ECHO status 0x%04X" % status_of(fields))
            release(c, index)
            return "C-ECHO-RSP in %d P-DATA PDUs of <= %d bytes, released" % (
                index - 1, max_pdu)
        finally:
            c.close()

    def hostile_acceptor(self, max_pdu):
        """The other direction: `siren echo` talks to an acceptor (this
        script) that accepts with a tiny maximum length. siren echo may
        fail, but must not overrun memory."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)
        port = listener.getsockname()[1]
        proc = subprocess.Popen(
            [self.siren, "echo", "--call", "SIREN", "--timeout", "3",
             "127.0.0.1", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            peer, _ = listener.accept()
            peer.settimeout(3)
            header = peer.recv(6, socket.MSG_WAITALL)
            peer.recv(struct.unpack(">I", header[2:6])[0], socket.MSG_WAITALL)
            peer.sendall(pdu(0x02, rq_body(
                contexts=[context_ac(1, 0, IMPLICIT_LE)], called=b"SIREN",
                calling=b"SIREN", ui=user_info(max_pdu=max_pdu))))
            try:
                while peer.recv(65536):
                    pass
            except OSError:
                pass
            peer.close()
            out, err = proc.communicate(timeout=15)
        finally:
            listener.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = (out + err).decode("utf-8", "replace")
        found = SANITIZER.search(text)
        if found:
            raise Failure("siren echo: " + text[max(0, found.start() - 100):
                                                 found.start() + 900])
        return "siren echo exit %d: %s" % (proc.returncode,
                                          text.strip().splitlines()[-1]
                                          if text.strip() else "")

    def after_assoc(self, name, data, want=(ABORT,), within=PROMPT_S):
        contexts = DEFAULT_CONTEXTS + [context_rq(7, b"1.2.3")]
        c, results = self.established(name, contexts=contexts)
        try:
            if results.get(1) != 0 or results.get(7) == 0:
                raise Failure("unexpected context results %r" % results)
            index = echo(c, 1)  # the association works before the attack
            c.send(data, swallow=True)
            return expect_end(c, want, within, skip=index)
        finally:
            c.close()

    def many_contexts(self):
        name = "128 presentation contexts"
        contexts = [context_rq(1)] + [context_rq(2 * i + 1, CT_STORAGE)
                                      for i in range(1, 128)]
        c, results = self.established(name, contexts=contexts)
        try:
            if len(results) != 128 or any(r != 0 for r in results.values()):
                raise Failure("expected 128 accepted contexts, got %r" % results)
            index = echo(c, 1, pc_id=1)
            index = echo(c, index, pc_id=1, msg_id=2)
            release(c, index)
            return "A-ASSOCIATE-AC with 128 accepted, C-ECHO ok, released"
        finally:
            c.close()

    def many_syntaxes(self):
        name = "64 KiB of transfer syntaxes"
        unknown = b"1.2.840.99999.1.2.3.4.5.6.7.8.9"
        subs = item(0x30, VERIFICATION)
        while len(subs) + 4 + len(unknown) + 4 + 4 <= 0xFFFF - 4 - 21:
            subs += item(0x40, unknown)
        subs += item(0x40, IMPLICIT_LE)  # the only known one, last
        big = item(0x20, struct.pack(">BBBB", 1, 0, 0, 0) + subs)
        only_unknown = item(0x20, struct.pack(">BBBB", 3, 0, 0, 0) +
                            item(0x30, CT_STORAGE) +
                            b"".join(item(0x40, unknown) for _ in range(300)))
        if len(big) < 0xFF00:
            raise Failure("the context item is only %d bytes" % len(big))
        c, results = self.established(name, contexts=[big, only_unknown])
        try:
            if results.get(1) != 0 or results.get(3) != 4:
                raise Failure("expected context 1 accepted and 3 refused (4), "
                              "got %r" % results)
            release(c, echo(c, 1))
            return ("A-ASSOCIATE-AC (context of %d bytes accepted, 300 unknown "
                    "syntaxes refused), C-ECHO ok, released" % len(big))
        finally:
            c.close()

    def largest_rq(self):
        name = "largest A-ASSOCIATE-RQ"
        base = rq_body()
        # extra user information items full of unknown sub-items (skipped)
        filler = item(0x56, bytes(0xFFFF - 8))
        extra, limit = b"", (256 << 10) - len(base)
        while len(extra) + len(item(0x50, filler)) <= limit:
            extra += item(0x50, filler)
        body = base + extra
        c = self.conn(name)
        try:
            c.send(pdu(0x01, body))
            got = c.wait_pdu(0, 5)
            if got is None:
                raise Failure("no answer (%s)" % describe(c, c.last_sent))
            if got[1] == AC:
                release(c, echo(c, 1))
                return "A-ASSOCIATE-AC for a %d-byte request, echo ok" % len(body)
            return expect_end(c, (ABORT, RJ), PROMPT_S)
        finally:
            c.close()

    def huge_command(self):
        name = "command set of 1 MB"
        c, _ = self.established(name)
        try:
            index = echo(c, 1)
            chunk = b"\x00" * (60 << 10)
            # 18 fragments of 60 KiB, none of them last: 1 MB+ in total
            for _ in range(18):
                c.send(p_data(pdv(1, 0x01, chunk)), swallow=True)
                if c.end:
                    break
            return expect_end(c, (ABORT,), PROMPT_S, skip=index)
        finally:
            c.close()

    def store_start(self, name, instance=b"1.2.826.0.1.3680043.2.1125.1"):
        # implicit VR LE only: small_dataset() is encoded that way
        c, _ = self.established(name, contexts=[
            context_rq(1), context_rq(3, CT_STORAGE, [IMPLICIT_LE])])
        index = echo(c, 1)
        c.send(p_data(pdv(3, 0x03, store_rq(5, instance))))
        return c, index

    def dataset_other_context(self):
        c, index = self.store_start("dataset on another context")
        try:
            c.send(p_data(pdv(1, 0x02, small_dataset(b"1.2.3"))))
            return expect_end(c, (ABORT,), PROMPT_S, skip=index)
        finally:
            c.close()

    def command_in_dataset(self):
        c, index = self.store_start("command inside a data set")
        try:
            c.send(p_data(pdv(3, 0x00, b"\x08\x00\x16\x00"),
                          pdv(3, 0x03, echo_rq())))
            return expect_end(c, (ABORT,), PROMPT_S, skip=index)
        finally:
            c.close()

    def release_mid_dataset(self):
        c, index = self.store_start("release mid data set")
        try:
            c.send(p_data(pdv(3, 0x00, b"\x08\x00\x16\x00")))
            c.send(RELEASE_RQ)
            return expect_end(c, (ABORT, RELEASE_RP_TYPE, "close"), PROMPT_S,
                              skip=index)
        finally:
            c.close()

    def good_store(self):
        instance = b"1.2.826.0.1.3680043.2.1125.77"
        c, index = self.store_start("good store", instance)
        try:
            ds = small_dataset(instance)
            c.send(p_data(pdv(3, 0x00, ds[:10])) + p_data(pdv(3, 0x02, ds[10:])))
            fields, index = read_response(c, index)
            # the data set is not a whole CT image but is what it says it is
            if status_of(fields) != 0:
                raise Failure("C-STORE status 0x%04X: %s" % (
                    status_of(fields), fields.get((0, 0x0902), b"").decode()))
            release(c, index)
            stored = [n for n in os.listdir(self.store_dir)
                      if n.endswith(".dcm")]
            held = [n for n in stored
                    if instance in open(os.path.join(self.store_dir, n),
                                        "rb").read()]
            if len(held) != 1:
                raise Failure("the instance is in %d files of %s" %
                              (len(held), self.store_dir))
            return "C-STORE-RSP success, stored as %s, released" % held[0]
        finally:
            c.close()

    # -- cases that wait for a timer: run in threads --------------------------

    def slow_cases(self):
        return [
            ("silent peer (nothing sent): closed by ARTIM", self.silent),
            ("slowloris before association (RQ header, then 1 byte/s)",
             self.slowloris_rq),
            ("slowloris after association (P-DATA header, then 1 byte/s)",
             self.slowloris_pdata),
            ("idle association (nothing after the AC)", self.idle),
            ("A-ASSOCIATE-RQ length past the end, connection kept open",
             self.stalled_rq),
            ("truncated PDU header, connection kept open",
             self.stalled_header),
            ("peer that stops reading (C-ECHO flood, small window)",
             self.no_reader),
        ]

    def silent(self):
        c = self.conn("silent")
        try:
            t0 = time.monotonic()
            c.last_sent = t0
            result = expect_end(c, ("close", ABORT), ARTIM_S + TIMEOUT_S + 5)
            took = c.end[0] - t0
            if took < ARTIM_S - 2:
                raise Failure("closed after %.1fs, before ARTIM (%ds)" %
                              (took, ARTIM_S))
            return result
        finally:
            c.close()

    def slowloris(self, c, first, rest, index=0):
        c.send(first)
        t0 = time.monotonic()
        for byte in rest:
            if c.end or c.wait_pdu(index, 0) is not None:
                break
            if time.monotonic() - t0 > TIMEOUT_S + 10:
                raise Failure("still reading after %ds" % (TIMEOUT_S + 10))
            c.send(bytes([byte]), swallow=True)
            c.wait_end(1.0)
        # from the first header byte, the whole PDU must come within
        # the DIMSE timeout
        c.last_sent = t0
        return c

    def slowloris_rq(self):
        c = self.conn("slowloris rq")
        try:
            self.slowloris(c, rq()[:6], rq()[6:])
            return expect_end(c, (ABORT, "close"), TIMEOUT_S + PROMPT_S)
        finally:
            c.close()

    def slowloris_pdata(self):
        c, _ = self.established("slowloris pdata")
        try:
            index = echo(c, 1)
            data = p_data(pdv(1, 0x03, echo_rq(2)))
            self.slowloris(c, data[:6], data[6:], index)
            return expect_end(c, (ABORT, "close"), TIMEOUT_S + PROMPT_S,
                              skip=index)
        finally:
            c.close()

    def idle(self):
        c, _ = self.established("idle")
        try:
            index = echo(c, 1)
            return expect_end(c, (ABORT,), IDLE_S + PROMPT_S, skip=index)
        finally:
            c.close()

    def stalled_rq(self):
        c = self.conn("stalled rq")
        try:
            body = rq_body()
            c.send(pdu(0x01, body, len(body) + 100))
            return expect_end(c, (ABORT, "close"), TIMEOUT_S + PROMPT_S)
        finally:
            c.close()

    def stalled_header(self):
        c = self.conn("stalled header")
        try:
            c.send(b"\x01\x00\x00")
            return expect_end(c, (ABORT, "close"), TIMEOUT_S + PROMPT_S)
        finally:
            c.close()

    def no_reader(self):
        c = self.conn("no reader", rcvbuf=4096, read=False)
        try:
            c.send(rq())
            c.sock.settimeout(0.5)
            flood = p_data(pdv(1, 0x03, echo_rq(9))) * 2000
            sent, t0 = 0, time.monotonic()
            while sent < 40 and time.monotonic() - t0 < 5:
                try:
                    c.sock.sendall(flood)
                except socket.timeout:
                    break  # the server stopped reading: its writes block
                except OSError:
                    break
                sent += 1
            # not reading for longer than the server's write timeout
            time.sleep(TIMEOUT_S + 2)
            c.last_sent = time.monotonic()
            c.start_reader()
            end = c.wait_end(10)
            if end is None:
                raise Failure("still open %.0fs after the server's write "
                              "timeout (%d floods sent)" % (10, sent))
            n = len(c.pdus)
            return "%d PDUs drained, then %s (%d x 2000 C-ECHO-RQ sent)" % (
                n, end[1], sent)
        finally:
            c.close()


# ---- the server -----------------------------------------------------------------------

class Server:
    def __init__(self, siren, work):
        self.siren = siren
        self.store = os.path.join(work, "store")
        os.makedirs(self.store, exist_ok=True)
        for name in os.listdir(self.store):  # an earlier run's instances
            os.unlink(os.path.join(self.store, name))
        self.log_path = os.path.join(work, "serve.log")
        env = dict(os.environ)
        # A small quarantine keeps RSS meaningful under ASan (freed memory
        # held for use-after-free detection would count as growth).
        env["ASAN_OPTIONS"] = ":".join(filter(None, [
            env.get("ASAN_OPTIONS", ""), "detect_leaks=1",
            "quarantine_size_mb=16"]))
        env["UBSAN_OPTIONS"] = ":".join(filter(None, [
            env.get("UBSAN_OPTIONS", ""), "print_stacktrace=1"]))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [siren, "serve", "--dir", self.store, "--port", "0",
             "--timeout", str(TIMEOUT_S), "--idle-timeout", str(IDLE_S)],
            stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.port = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(r"serve\.listening port=(\d+)", self.log_text())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        if not self.port:
            raise Failure("siren serve did not start:\n" + self.log_text())

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def echo(self):
        """A normal C-ECHO from `siren echo`: must succeed."""
        r = subprocess.run([self.siren, "echo", "--call", "SIREN", "--timeout",
                            "10", "127.0.0.1", str(self.port)],
                           capture_output=True, timeout=30)
        text = (r.stdout + r.stderr).decode("utf-8", "replace")
        if SANITIZER.search(text):
            raise Failure("siren echo reported a sanitizer error:\n" + text)
        if r.returncode != 0 or "status 0x0000" not in text:
            raise Failure("C-ECHO failed (exit %d): %s" % (r.returncode,
                                                          text.strip()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Failure("siren serve did not stop on SIGTERM")
        self.log.close()
        return self.proc.returncode


def log_reasons(text, ports):
    """The server's last log line about each client port (its reason)."""
    out = []
    for port in ports:
        lines = [line for line in text.splitlines()
                 if re.search(r"peer=127\.0\.0\.1:%d\b" % port, line)]
        if lines:
            m = re.search(r'reason="([^"]*)"', lines[-1])
            out.append(m.group(1) if m else lines[-1].split(" ", 3)[2])
    return "; ".join(out)


def memory_rounds(port, rounds=8, width=16):
    """Rounds of connections held at once, each making the server allocate
    its largest buffers (a 256 KiB A-ASSOCIATE-RQ partly sent, a 128 KiB
    P-DATA partly sent), then all closed mid-PDU; bounded memory means RSS
    does not grow with the rounds."""
    for r in range(rounds):
        time.sleep(0.3)  # the last round's threads end (max associations)
        conns = []
        for i in range(width):
            c = Conn(port)
            if (r + i) % 2:
                c.send(pdu(0x01, b"", 256 << 10) + bytes(100 << 10))
            else:
                associate(c)
                c.send(pdu(0x04, b"", 128 << 10) + bytes(64 << 10))
            conns.append(c)
        for c in conns:
            c.close()  # the server sees the end at once
    time.sleep(0.5)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: net_hostile.py SIREN WORKDIR")
    siren, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    started = time.monotonic()
    failures, report = [], []
    server = Server(siren, work)
    cases = Cases(server.port, server.store, siren)
    try:
        for _ in range(3):
            server.echo()
        rss_start = server.rss_kb()

        # timers run alongside the rest
        slow_results = {}

        def run_slow(name, fn):
            cases.local.name = name
            t0 = time.monotonic()
            try:
                slow_results[name] = (True, fn(), time.monotonic() - t0)
            except Exception as e:  # Failure or a socket error
                slow_results[name] = (False, "%s: %s" % (type(e).__name__, e),
                                      time.monotonic() - t0)
        threads = [threading.Thread(target=run_slow, args=case, daemon=True)
                   for case in cases.slow_cases()]
        for t in threads:
            t.start()

        for name, fn in cases.fast_cases():
            cases.local.name = name
            try:
                got = fn()
                report.append(("ok", name, got))
            except Exception as e:
                failures.append(name)
                report.append(("FAIL", name, "%s: %s" % (type(e).__name__, e)))
            try:
                server.echo()
            except Exception as e:
                failures.append(name + " (echo after it)")
                report.append(("FAIL", name + ": echo after it", str(e)))
                if server.proc.poll() is not None:
                    break

        if server.proc.poll() is None:
            try:
                memory_rounds(server.port)
                server.echo()
                report.append(("ok", "memory rounds (8 x 16 connections "
                               "with max-size PDUs pending)", "echo ok"))
            except Exception as e:
                failures.append("memory rounds")
                report.append(("FAIL", "memory rounds", str(e)))

        # while the slow cases hold their connections, others are served
        for t in threads:
            while t.is_alive():
                if server.proc.poll() is None:
                    try:
                        server.echo()
                    except Exception as e:
                        failures.append("echo during slow cases")
                        report.append(("FAIL", "echo during slow cases", str(e)))
                        break
                t.join(1.0)
        for name, _ in cases.slow_cases():
            ok, got, took = slow_results.get(name, (False, "did not run", 0))
            report.append(("ok" if ok else "FAIL", name, got))
            if not ok:
                failures.append(name)

        if server.proc.poll() is not None:
            failures.append("server alive")
            report.append(("FAIL", "server alive",
                           "exited with %s" % server.proc.returncode))
        else:
            time.sleep(TIMEOUT_S)  # let the memory rounds' threads end
            server.echo()
            rss_end = server.rss_kb()
            growth = rss_end - rss_start
            line = "VmRSS %d kB -> %d kB (+%d kB, bound %d kB)" % (
                rss_start, rss_end, growth, RSS_GROWTH_KB)
            if growth > RSS_GROWTH_KB:
                failures.append("memory bounded")
                report.append(("FAIL", "memory bounded", line))
            else:
                report.append(("ok", "server alive, memory bounded", line))

        for name, fn in cases.last_cases():
            if server.proc.poll() is not None:
                failures.append(name)
                report.append(("FAIL", name, "not run: the server is gone"))
                continue
            cases.local.name = name
            try:
                report.append(("ok", name, fn()))
            except Exception as e:
                failures.append(name)
                report.append(("FAIL", name, "%s: %s" % (type(e).__name__, e)))
            try:
                server.echo()
            except Exception as e:
                failures.append(name + " (echo after it)")
                report.append(("FAIL", name + ": echo after it", str(e)))
        if server.proc.poll() is not None:
            failures.append("server alive at the end")
            report.append(("FAIL", "server alive at the end",
                           "exited with %s" % server.proc.returncode))
    finally:
        code = server.stop()
    log = server.log_text()
    if code != 0:
        failures.append("clean stop")
        report.append(("FAIL", "clean stop", "siren serve exited %s" % code))
    found = SANITIZER.search(log)
    if found:
        failures.append("sanitizers")
        at = max(0, found.start() - 200)
        report.append(("FAIL", "sanitizer report in the server's log",
                       log[at:at + 3000]))

    for status, name, got in report:
        print("%-4s %s\n       %s" % (status, name, got))
        reasons = log_reasons(log, cases.conn_ports.get(name, []))
        if reasons:
            print("       server: %s" % reasons)
    print("net_hostile: %d checks, %d failed, %.0fs (log: %s)" % (
        len(report), len(failures), time.monotonic() - started,
        server.log_path))
    if failures:
        print("failed: " + "; ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
