#!/usr/bin/python3
"""tls_sites.py - the DICOM-TLS listener of `siren serve` against real peers.

Every peer is a real program: DCMTK 3.6.7's echoscu and storescu (+tls),
`openssl s_client`, and for the silent peer a plain TCP socket; nothing is
mocked. The PKI is made fresh by tests/integration/pki.py (root and
intermediate CA, site-a/site-b, and one certificate per way of being bad).
Scenarios, one function each (their docstrings say what each proves):

  1. bad_certificates      each bad certificate (and a good one used with
                           the wrong AE title, and none at all) fails to
                           associate with echoscu and with storescu;
                           nothing is stored; a security.alert names the
                           reason in words
  2. good_sites            storescu +tls as site A (AE SITEA) and as site B
                           (SITEB) sends the pydicom corpus: every file it
                           sends is stored, and each stored file's meta
                           (0002,0102) names the site, the certificate's
                           serial and its SPKI SHA-256
  3. protocols_and_suites  openssl s_client: TLS 1.0/1.1 and CBC suites
                           refused; TLS 1.2 AES-GCM/ChaCha20 and TLS 1.3
                           accepted (a whole association runs over them);
                           --tls-profile modified-bcp195 refuses ChaCha20,
                           --tls-profile tls13 refuses TLS 1.2
  4. sighup_reload         a CRL revoking site B replaces the old one and
                           SIGHUP reloads it: the association site B had
                           open finishes, a new one as site B is refused as
                           revoked, site A still gets in
  5. key_permissions       a server key readable by group or others: siren
                           serve refuses to start and says "chmod 600"
  6. pinning               --pin with site A's SPKI: site A in, site B out
  7. handshake_timeout     a TCP connection that never says anything is
                           closed after --handshake-timeout 2, while others
                           are served meanwhile

Which peer presents which bad certificate, and why: DCMTK 3.6.7 loads every
bad certificate of the PKI, including rsa1024 and sha1 (it only warns, "Key
length of RSA public key too short" and "Certificate hash key not
SHA-256"), so echoscu and storescu present all of them; openssl s_client is
used only where a protocol version or cipher suite has to be forced
(scenario 3), which DCMTK's profiles do not allow. DCMTK is given
NAME-chain.pem (leaf + intermediate, as the PKI intends): it sends the
whole file (checked with `openssl s_server -msg`: its Certificate message
holds leaf and intermediate), and with a leaf-only file OpenSSL completes
the chain from the +cf store itself. nointer-chain.pem holds the leaf only
and its issuer (inter2) is in neither the bundle given to DCMTK (+cf) nor
siren's --sites-ca, so nobody can supply the missing intermediate.

Usage:
  /usr/bin/python3 tls_sites.py --siren build/gateway/siren \\
      --pki-script tests/integration/pki.py \\
      --data /usr/lib/python3/dist-packages/pydicom/data --work /tmp/tls

Exit status: 0 every check passed, 1 a check failed (each failure is
printed with its scenario), 2 the test could not run (a missing tool).
Every process the test starts is stopped before it exits; siren's stderr
is scanned for sanitizer reports (run it on the ASan build too). Run with
Debian's /usr/bin/python3 (python3-pydicom). The DCMTK tools run with
TCP_NODELAY=1 (DCMTK leaves Nagle's algorithm on otherwise).
"""

import argparse
import collections
import glob
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
import traceback
import warnings

import pydicom

SIREN_AET = "SIREN"
SITE_A = ("site-a", "cn:site-a.example.org", "SITEA")
SITE_B = ("site-b", "cn:site-b.example.org", "SITEB")
TOOL_TIMEOUT_S = 60
STARTUP_TIMEOUT_S = 30
LOG_WAIT_S = 10          # a log line the server writes after the peer left
HANDSHAKE_TIMEOUT_S = 2  # --handshake-timeout in scenario 7
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error|"
                       r"ThreadSanitizer|UndefinedBehaviorSanitizer")

def bad_site_ae(cert):
    """The calling AE title of the site made for a bad certificate."""
    return "BAD-" + cert.upper()[:12]


# The bad cases: (label, certificate of the PKI or None for no certificate,
# calling AE title, regular expression the security.alert reason must
# match, why it must fail). The server of scenario 1 has a site for each
# bad certificate (its CN, AE title bad_site_ae(NAME)), so that only the
# TLS checks stand between a bad certificate and a stored file; the last
# three cases use a good certificate with an AE title that is not its
# site's, and no certificate at all.
BAD_CASES = [
    ("expired", "expired", r"expired", "validity ended 10 days ago"),
    ("not yet valid", "notyet", r"not yet valid",
     "validity starts in 10 days"),
    ("unknown CA", "unknownca", r"unknown CA",
     "signed by other-root, which nobody trusts"),
    ("self-signed", "selfsigned", r"self-signed",
     "a self-signed client certificate"),
    ("revoked", "revoked", r"revoked",
     "listed in the intermediate's CRL (crls.pem)"),
    ("wrong EKU", "wrongeku", r"key usage",
     "extended key usage serverAuth only"),
    ("CA:TRUE leaf", "caleaf", r"CA certificate",
     "basicConstraints CA:TRUE used as a client certificate"),
    ("RSA-1024", "rsa1024", r"RSA key under 2048", "a 1024-bit RSA key"),
    ("SHA-1", "sha1", r"SHA-1", "signed with SHA-1"),
    ("missing intermediate", "nointer", r"missing intermediate",
     "issued by inter2, which is not in the bundle, and not sent"),
]
BAD_CERTIFICATES = [cert for _, cert, _, _ in BAD_CASES]
BAD_CASES = [(label, cert, bad_site_ae(cert), pattern, why)
             for label, cert, pattern, why in BAD_CASES] + [
    ("site A's certificate as site B", "site-a", "SITEB",
     r"is not site site-b", "a valid certificate of site A with site B's "
                            "AE title"),
    ("site A's certificate, unknown AE", "site-a", "NOBODY",
     r"belongs to no site", "a valid certificate with an AE title of no "
                            "site"),
    ("no certificate", None, "SITEA",
     r"no client certificate",
     "no client certificate at all (DCMTK +tla)"),
]

# The corpus files (test_files/*.dcm) in which storescu finds no SOP Class
# and Instance UID, or which it cannot parse: it leaves them out ("missing
# SOP class (or instance) in file ..., ignoring file", with -R). Any other
# file it leaves out fails the test. (net_peers.py explains each.)
STORESCU_LEAVES_OUT = {
    "MR_truncated.dcm", "rtplan_truncated.dcm", "no_meta.dcm",
    "SC_rgb_jpeg.dcm", "UN_sequence.dcm", "no_meta_group_length.dcm",
    "meta_missing_tsyntax.dcm", "nested_priv_SQ.dcm", "priv_SQ.dcm",
    "empty_charset_LEI.dcm", "rtdose_rle.dcm", "rtdose_rle_1frame.dcm",
}

# storescu proposes a compressed syntax only when told to: the option for
# each syntax of the corpus (with -R, the file's own syntax plus the
# uncompressed ones).
STORESCU_SYNTAX_OPTIONS = {
    "1.2.840.10008.1.2.1.99": "-xd",
    "1.2.840.10008.1.2.4.50": "-xy",
    "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.5": "-xr",
}


# ---------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------

class Checks:
    """Failed checks, with the scenario they belong to."""

    def __init__(self):
        self.scenario = ""
        self.failures = []
        self.passed = collections.Counter()

    def fail(self, what):
        line = f"[{self.scenario}] {what}"
        self.failures.append(line)
        print("FAIL " + line, flush=True)

    def expect(self, condition, what):
        """fail(what) unless condition; returns condition."""
        if condition:
            self.passed[self.scenario] += 1
        else:
            self.fail(what)
        return bool(condition)


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

class Processes:
    """Every long-running process the test starts, so that each is stopped
    at the end, also when a check or the test itself fails."""

    def __init__(self):
        self.running = []

    def start(self, command, log_path, env=None, **kwargs):
        log = open(log_path, "wb")
        try:
            process = subprocess.Popen(command, stdout=log,
                                       stderr=subprocess.STDOUT, env=env,
                                       stdin=subprocess.DEVNULL, **kwargs)
        finally:
            log.close()
        self.running.append(process)
        return process

    def stop(self, process, timeout_s=15):
        """SIGCONT (in case it was stopped), SIGTERM, SIGKILL after
        timeout_s; returns the exit status (negative: a signal)."""
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGCONT)
                process.terminate()
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process in self.running:
            self.running.remove(process)
        return process.returncode

    def stop_all(self):
        for process in list(self.running):
            self.stop(process, timeout_s=5)


def run_tool(command, env=None, timeout_s=TOOL_TIMEOUT_S, stdin_bytes=None):
    """Runs a short-lived tool; (exit status or None on timeout, stdout +
    stderr as text)."""
    try:
        done = subprocess.run(command, capture_output=True, env=env,
                              timeout=timeout_s, input=stdin_bytes,
                              stdin=None if stdin_bytes is not None
                              else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as expired:
        return None, ((expired.stdout or b"") +
                      (expired.stderr or b"")).decode("latin-1")
    return done.returncode, (done.stdout + done.stderr).decode("latin-1")


def wait_until(predicate, timeout_s, interval_s=0.02):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def openssl(*args):
    done = subprocess.run(["openssl", *args], capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: "
                           f"{done.stderr.decode('latin-1')}")
    return done.stdout


# ---------------------------------------------------------------------------
# The PKI
# ---------------------------------------------------------------------------

class Pki:
    """The files pki.py made, and what openssl says of the site
    certificates."""

    def __init__(self, folder):
        self.dir = folder

    def path(self, name):
        return os.path.join(self.dir, name)

    def serial(self, name):
        """The certificate's serial number as an int."""
        text = openssl("x509", "-in", self.path(f"{name}.pem"), "-noout",
                       "-serial").decode().strip()
        return int(text.split("=", 1)[1], 16)

    def spki_sha256(self, name):
        """Hex SHA-256 of the certificate's SubjectPublicKeyInfo (openssl
        x509 -pubkey | openssl pkey -pubin -outform DER | sha256)."""
        pem = openssl("x509", "-in", self.path(f"{name}.pem"), "-pubkey",
                      "-noout")
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                             input=pem, capture_output=True, check=True).stdout
        digest = subprocess.run(["openssl", "dgst", "-sha256"], input=der,
                                capture_output=True, check=True).stdout
        return digest.decode().strip().rsplit(" ", 1)[-1].lower()

    def revoke_and_publish(self, name, crl_target):
        """Revokes NAME.pem with the intermediate's openssl ca database
        (ca-inter/, as pki.py keeps it), makes a new intermediate CRL and
        puts root CRL + that CRL into crl_target (atomically: rename)."""
        config = self.path("ca-inter/openssl.cnf")
        openssl("ca", "-config", config, "-cert", self.path("inter.pem"),
                "-keyfile", self.path("inter.key"), "-revoke",
                self.path(f"{name}.pem"))
        fresh = self.path("inter-reload.crl.pem")
        openssl("ca", "-gencrl", "-config", config, "-cert",
                self.path("inter.pem"), "-keyfile", self.path("inter.key"),
                "-out", fresh)
        staged = crl_target + ".new"
        with open(staged, "w") as out:
            for part in (self.path("root.crl.pem"), fresh):
                with open(part) as source:
                    out.write(source.read())
        os.replace(staged, crl_target)


# ---------------------------------------------------------------------------
# siren serve
# ---------------------------------------------------------------------------

class SirenServer:
    """A running `siren serve` with its DICOM-TLS listener on the port it
    picked (--tls-port 0), its own store directory and its log in a
    file."""

    def __init__(self, ctx, name, *options, key=None, crl="crls.pem"):
        self.ctx = ctx
        self.name = name
        self.dir = os.path.join(ctx.work, name + "-store")
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(ctx.work, name + "-serve.log")
        command = server_command(ctx, self.dir, key=key, crl=crl) + list(
            options)
        self.process = ctx.processes.start(command, self.log_path)
        match = wait_until(
            lambda: self.process.poll() is None and re.search(
                r"serve\.listening tls_port=(\d+)", self.log_text()),
            STARTUP_TIMEOUT_S)
        if not match:
            raise RuntimeError(f"siren serve ({name}) did not start:\n"
                               f"{self.log_text()}")
        self.port = int(match.group(1))
        ctx.servers.append(self)

    def log_text(self):
        with open(self.log_path, "r", encoding="latin-1") as log:
            return log.read()

    def mark(self):
        """Where the log ends now: what comes after is the next attempt's."""
        return len(self.log_text())

    def lines(self, event, since=0):
        """The log lines of an event ("security.alert", ...; a tuple: of
        any of them) after mark."""
        events = (event,) if isinstance(event, str) else event
        return [line for line in self.log_text()[since:].splitlines()
                if any(f" {name} " in line for name in events)]

    def wait_line(self, event, pattern, since, timeout_s=LOG_WAIT_S,
                  in_reason=False):
        """The first line of event after since that matches pattern (with
        in_reason: whose reason="..." field matches, not its subject or
        other fields); waits for a first line of the event, then a moment
        for more; None if none matches."""
        def find():
            for line in self.lines(event, since):
                text = reason_of(line) if in_reason else line
                if re.search(pattern, text, re.IGNORECASE):
                    return line
            return None
        if not wait_until(lambda: self.lines(event, since), timeout_s):
            return None
        return wait_until(find, 0.3)

    def everything(self):
        """Every name in the store directory, temporary files included."""
        return sorted(os.listdir(self.dir))

    def stored(self):
        return sorted(os.path.join(self.dir, name)
                      for name in os.listdir(self.dir)
                      if name.endswith(".dcm") and not name.startswith("."))

    def stop(self):
        """SIGTERM: siren serve must exit 0 without a sanitizer report."""
        if self in self.ctx.servers:
            self.ctx.servers.remove(self)
        checks = self.ctx.checks
        status = self.ctx.processes.stop(self.process)
        checks.expect(status == 0, f"siren serve ({self.name}) exited with "
                                   f"status {status}; log {self.log_path}")
        report = sanitizer_line(self.log_text())
        checks.expect(report is None, f"siren serve ({self.name}): {report} "
                                      f"(see {self.log_path})")


def reason_of(line):
    """The reason="..." field of a log line ("" if none)."""
    match = re.search(r'reason="((?:[^"\\]|\\.)*)"', line)
    return match.group(1) if match else ""


def server_command(ctx, store_dir, key=None, crl="crls.pem"):
    pki = ctx.pki
    command = [ctx.siren, "serve", "--dir", store_dir, "--tls-port", "0",
               "--bind", "127.0.0.1", "--aet", SIREN_AET,
               "--tls-cert", pki.path("server-chain.pem"),
               "--tls-key", key or pki.path("server.key"),
               "--sites-ca", pki.path("ca-bundle.pem")]
    if crl:
        command += ["--crl", crl if os.path.isabs(crl) else pki.path(crl)]
    for site in (SITE_A, SITE_B):
        command += ["--site", "|".join(site)]
    return command


def sanitizer_line(text):
    for line in text.splitlines():
        if SANITIZER.search(line):
            return line.strip()
    return None


# ---------------------------------------------------------------------------
# The peers
# ---------------------------------------------------------------------------

def dcmtk_tls_options(pki, cert):
    """DCMTK's TLS options: our key and certificate (NAME-chain.pem), the
    CA bundle to check siren's certificate; +tla without a certificate."""
    trust = ["+cf", pki.path("ca-bundle.pem")]
    if cert is None:
        return ["+tla", *trust]
    return ["+tls", pki.path(f"{cert}.key"), pki.path(f"{cert}-chain.pem"),
            *trust]


def echoscu(ctx, port, cert, calling):
    return run_tool(["echoscu", "-v", *dcmtk_tls_options(ctx.pki, cert),
                     "-aet", calling, "-aec", SIREN_AET, "127.0.0.1",
                     str(port)], ctx.env)


def storescu(ctx, port, cert, calling, files, *options):
    return run_tool(["storescu", "-v", "-nh",
                     *dcmtk_tls_options(ctx.pki, cert), *options, "-aet",
                     calling, "-aec", SIREN_AET, "127.0.0.1", str(port),
                     *files], ctx.env)


def storescu_attempts(text):
    """{path: answer or None} for each file storescu -v sent ("Sending
    file"), in order, and the set of files it left out."""
    answers = collections.OrderedDict()
    left_out = set()
    current = None
    for line in text.splitlines():
        match = re.match(r"W: missing SOP class \(or instance\) in file: "
                         r"(.*), ignoring file$", line)
        if match:
            left_out.add(match.group(1).strip())
            continue
        match = re.match(r"I: Sending file: (.*)$", line)
        if match:
            current = match.group(1).strip()
            answers[current] = None
            continue
        match = re.match(r"I: Received Store Response \((.*)\)", line)
        if match and current:
            answers[current] = match.group(1)
    return answers, left_out


# A-ASSOCIATE-RQ for Verification (PS3.8 9.3.2) and A-RELEASE-RQ, for
# s_client to send once its handshake is done.
def _item(item_type, content):
    return struct.pack(">BBH", item_type, 0, len(content)) + content


def _pdu(pdu_type, body):
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def association_bytes(calling):
    context = _item(0x20, bytes([1, 0, 0, 0]) +
                    _item(0x30, b"1.2.840.10008.1.1") +
                    _item(0x40, b"1.2.840.10008.1.2"))
    user = _item(0x50, _item(0x51, struct.pack(">I", 16384)) +
                 _item(0x52, b"1.2.826.0.1.3680043.2.1143.1"))
    request = _pdu(0x01, struct.pack(">HH", 1, 0) +
                   SIREN_AET.encode().ljust(16) +
                   calling.encode().ljust(16) + bytes(32) +
                   _item(0x10, b"1.2.840.10008.3.1.1.1") + context + user)
    return request + _pdu(0x05, bytes(4))


ASSOCIATE_AC = re.compile(rb"\x02\x00....\x00\x01\x00\x00" +
                          SIREN_AET.encode().ljust(16), re.DOTALL)
RELEASE_RP = b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00"


class SClientResult:
    def __init__(self, status, output):
        self.status = status
        self.output = output
        text = output.decode("latin-1")
        match = re.search(r"New, (\S+), Cipher is (\S+)", text)
        self.protocol = match.group(1) if match else None
        self.cipher = match.group(2) if match else None
        self.associated = bool(ASSOCIATE_AC.search(output))
        self.released = RELEASE_RP in output

    @property
    def handshake_done(self):
        return self.cipher not in (None, "(NONE)")

    def summary(self):
        text = self.output.decode("latin-1")
        lines = [line for line in text.splitlines()
                 if re.search(r"error|alert|Cipher is|Protocol", line)]
        return f"exit status {self.status}; " + " | ".join(
            line.strip() for line in lines[:6])


def s_client(ctx, port, options, cert="site-a", calling="SITEA"):
    """openssl s_client with the given version/cipher options and a site
    certificate: after the handshake it sends an A-ASSOCIATE-RQ and an
    A-RELEASE-RQ. Reads until the A-RELEASE-RP (then stops s_client: a
    DICOM requestor closes after the RP, s_client would wait for the
    server) or until the server closes."""
    pki = ctx.pki
    command = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
               *options, "-CAfile", pki.path("ca-bundle.pem"),
               "-verify_return_error", "-ign_eof"]
    if cert:
        command += ["-cert", pki.path(f"{cert}.pem"), "-key",
                    pki.path(f"{cert}.key")]
    process = subprocess.Popen(command, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    ctx.processes.running.append(process)
    output = b""
    try:
        try:
            process.stdin.write(association_bytes(calling))
            process.stdin.close()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and RELEASE_RP not in output:
            ready, _, _ = select.select([process.stdout], [], [], 0.2)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            output += chunk
        try:  # after EOF: its exit status; after the RP: still running
            status = process.wait(timeout=0 if RELEASE_RP in output else 5)
        except subprocess.TimeoutExpired:
            status = None
    finally:
        ctx.processes.stop(process, timeout_s=5)
        process.stdout.close()
    return SClientResult(status, output)


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

def corpus_groups(data_dir):
    """test_files/*.dcm grouped by the storescu options that let it send
    them (-R and the option that proposes the file's compressed syntax;
    none for the uncompressed ones)."""
    groups = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(data_dir, "test_files",
                                              "*.dcm"))):
        syntax = None
        try:
            dataset = pydicom.dcmread(path, force=True,
                                      stop_before_pixels=True)
            syntax = str(dataset.file_meta.get("TransferSyntaxUID", ""))
        except Exception:  # storescu decides what it can send
            pass
        groups[STORESCU_SYNTAX_OPTIONS.get(syntax, "")].append(path)
    return groups


def sop_instance_of(path):
    try:
        dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        return str(dataset.SOPInstanceUID)
    except Exception:
        return None


def provenance_of(path):
    """(SOP instance UID of the meta, the JSON of (0002,0102) Private
    Information as a dict, or the error)."""
    try:
        meta = pydicom.dcmread(path).file_meta
    except Exception as error:
        return None, f"unreadable: {type(error).__name__}: {error}"
    element = meta.get((0x0002, 0x0102))
    if element is None:
        return str(meta.MediaStorageSOPInstanceUID), "no (0002,0102)"
    raw = element.value
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    try:
        info = json.loads(raw.rstrip(b"\x00 ").decode("utf-8"))
    except ValueError as error:
        return str(meta.MediaStorageSOPInstanceUID), f"not JSON: {error}"
    return str(meta.MediaStorageSOPInstanceUID), info


def check_provenance(ctx, what, path, site, cert, calling):
    """The stored file's (0002,0102) names the site, its AE title, the
    certificate's serial and SPKI SHA-256 (as openssl computes them), and
    the TLS transport."""
    checks = ctx.checks
    _, info = provenance_of(path)
    if not checks.expect(isinstance(info, dict), f"{what}: {path}: "
                         f"(0002,0102) Private Information: {info}"):
        return
    serial = info.get("cert_serial", "")
    try:
        serial_value = int(serial, 16)
    except (TypeError, ValueError):
        serial_value = None
    expected = {"site": site, "calling_ae": calling, "transport": "tls"}
    for key, value in expected.items():
        checks.expect(info.get(key) == value, f"{what}: {path}: (0002,0102) "
                      f"{key}={info.get(key)!r}, expected {value!r}")
    checks.expect(serial_value == ctx.serials[cert],
                  f"{what}: {path}: (0002,0102) cert_serial={serial!r}, "
                  f"openssl says {ctx.serials[cert]:X}")
    spki = ctx.spkis[cert]
    checks.expect(str(info.get("cert_spki_sha256", "")).lower() == spki,
                  f"{what}: {path}: (0002,0102) cert_spki_sha256="
                  f"{info.get('cert_spki_sha256')!r}, openssl says {spki}")


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------

def expect_refused(ctx, server, label, tool, status, output, pattern,
                   since, answered):
    """The checks of one refused attempt: the tool failed and got no
    answer, nothing arrived, no association was accepted, and a
    security.alert whose reason matches pattern was logged."""
    checks = ctx.checks
    what = f"{label}, {tool}"
    checks.expect(status not in (0, None), f"{what}: exit status {status}, "
                  f"expected a failure; output: {output.strip()[-400:]}")
    checks.expect(answered not in output, f"{what}: the tool got an answer "
                  f"({answered!r}) although it must not associate")
    alert = server.wait_line("security.alert", pattern, since,
                             in_reason=True)
    checks.expect(alert is not None, f"{what}: no security.alert with a "
                  f"reason matching /{pattern}/; new alerts: "
                  f"{server.lines('security.alert', since)}")
    checks.expect(not server.lines("assoc.accepted", since),
                  f"{what}: siren accepted an association: "
                  f"{server.lines('assoc.accepted', since)}")
    arrived = server.everything()
    if not checks.expect(arrived == [], f"{what}: something arrived in "
                         f"{server.dir}: {arrived}"):
        # Moved aside, so that the next case starts from an empty store.
        aside = os.path.join(ctx.work, "arrived-when-refused",
                             re.sub(r"\W+", "-", what))
        os.makedirs(aside, exist_ok=True)
        for name in arrived:
            os.replace(os.path.join(server.dir, name),
                       os.path.join(aside, name))
    others = server.lines("security.alert", since)
    return alert or (others[0] if others else None)


def scenario_bad_certificates(ctx):
    """Each bad certificate of the PKI (BAD_CASES: expired, not yet valid,
    unknown CA, self-signed, revoked, wrong EKU, CA:TRUE leaf, RSA-1024,
    SHA-1, missing intermediate), used with the AE title of a site made
    for it (--site matching its CN: only the TLS checks can refuse it), a
    valid site A certificate used with site B's AE title or with an AE
    title of no site, and no certificate at all: DCMTK echoscu +tls and
    storescu +tls (two corpus files) both
    fail to associate (non-zero exit status, no C-ECHO/C-STORE answer),
    siren accepts no association and stores nothing, and its log has a
    security.alert whose reason names the problem in words."""
    bad_sites = []
    for cert in BAD_CERTIFICATES:
        bad_sites += ["--site", f"bad-{cert}|cn:{cert}.example.org|"
                                f"{bad_site_ae(cert)}"]
    server = SirenServer(ctx, "bad", *bad_sites)
    files = [os.path.join(ctx.data, "test_files", name)
             for name in ("CT_small.dcm", "MR_small.dcm")]
    for label, cert, calling, pattern, why in BAD_CASES:
        since = server.mark()
        status, output = echoscu(ctx, server.port, cert, calling)
        alert = expect_refused(ctx, server, f"{label} ({why})", "echoscu",
                               status, output, pattern, since,
                               "Received Echo Response")
        since = server.mark()
        status, output = storescu(ctx, server.port, cert, calling, files)
        expect_refused(ctx, server, f"{label} ({why})", "storescu", status,
                       output, pattern, since, "Received Store Response")
        print(f"  {label:34} -> {reason_of(alert or '') or alert}",
              flush=True)
    server.stop()


def scenario_good_sites(ctx):
    """storescu +tls as site A (AE SITEA) and as site B (AE SITEB) sends
    the pydicom corpus (test_files/*.dcm, in one run per transfer syntax
    with -R and the option proposing it): every file storescu sends gets
    Success and is stored (the stored SOP instances are the sent ones);
    storescu leaves out only the files listed in STORESCU_LEAVES_OUT; each
    stored file's (0002,0102) Private Information is JSON naming the site,
    the calling AE title, TLS, and the certificate's serial and SPKI
    SHA-256 as openssl computes them."""
    checks = ctx.checks
    server = SirenServer(ctx, "good")
    groups = corpus_groups(ctx.data)
    for site, _, calling in (SITE_A, SITE_B):
        what = f"{site} ({calling})"
        sent = collections.Counter()
        left_out = set()
        for option, files in sorted(groups.items()):
            status, output = storescu(ctx, server.port, site, calling, files,
                                      "-R", *([option] if option else []))
            log_path = os.path.join(ctx.work, f"good-{site}{option}.log")
            with open(log_path, "w") as log:
                log.write(output)
            answers, ignored = storescu_attempts(output)
            left_out |= {os.path.basename(path) for path in ignored}
            checks.expect(status == 0, f"{what}: storescu -R {option}: exit "
                                       f"status {status} (log {log_path})")
            for path, answer in answers.items():
                if checks.expect(answer == "Success",
                                 f"{what}: {os.path.basename(path)}: "
                                 f"answer {answer} (log {log_path})"):
                    sent[sop_instance_of(path)] += 1
        unexpected = left_out - STORESCU_LEAVES_OUT
        checks.expect(not unexpected, f"{what}: storescu left out "
                      f"{sorted(unexpected)}, which it should send")
        stored = server.stored()
        by_instance = collections.Counter()
        for path in stored:
            instance, _ = provenance_of(path)
            by_instance[instance] += 1
            check_provenance(ctx, what, path, site, site, calling)
        checks.expect(sum(sent.values()) >= 40, f"{what}: only "
                      f"{sum(sent.values())} corpus files sent, expected "
                      f"about 56")
        checks.expect(by_instance == sent, f"{what}: stored instances differ "
                      f"from the ones storescu was told are stored: "
                      f"missing {sorted((sent - by_instance).elements())}, "
                      f"extra {sorted((by_instance - sent).elements())}")
        accepted = server.lines("assoc.accepted")
        checks.expect(all("site=" in line for line in accepted),
                      f"{what}: an association without a site: {accepted}")
        print(f"  {what}: {len(stored)} files stored, each with its "
              f"provenance checked; left out by storescu: "
              f"{len(left_out)}", flush=True)
        os.makedirs(os.path.join(ctx.work, f"good-{site}"), exist_ok=True)
        for path in stored:
            os.replace(path, os.path.join(ctx.work, f"good-{site}",
                                          os.path.basename(path)))
    checks.expect(not server.lines("security.alert"), f"security alerts "
                  f"for good sites: {server.lines('security.alert')}")
    server.stop()


SECLEVEL0 = ["-cipher", "DEFAULT:@SECLEVEL=0"]  # so that s_client offers it
UNSUPPORTED = r"unsupported protocol|wrong version|protocol version"
NO_CIPHER = r"no shared cipher|no ciphers? available|no suitable"

# {profile: [(label, s_client options, None to be accepted or the reason
# the refusal must give, (protocol, cipher) expected when accepted)]}
PROTOCOL_CASES = {
    "bcp195": [
        ("TLS 1.0", ["-tls1", *SECLEVEL0], UNSUPPORTED, None),
        ("TLS 1.1", ["-tls1_1", *SECLEVEL0], UNSUPPORTED, None),
        ("TLS 1.2 AES128-SHA (CBC, RSA key exchange)",
         ["-tls1_2", "-cipher", "AES128-SHA"], NO_CIPHER, None),
        ("TLS 1.2 ECDHE-RSA-AES128-SHA (CBC)",
         ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA"], NO_CIPHER, None),
        ("TLS 1.2 ECDHE-RSA-AES256-SHA384 (CBC)",
         ["-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA384"], NO_CIPHER, None),
        ("TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256",
         ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], None,
         ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")),
        ("TLS 1.2 ECDHE-RSA-CHACHA20-POLY1305",
         ["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"], None,
         ("TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305")),
        ("TLS 1.3", ["-tls1_3"], None, ("TLSv1.3", None)),
    ],
    "modified-bcp195": [
        ("TLS 1.2 ECDHE-RSA-CHACHA20-POLY1305 (no ChaCha20 in B.13)",
         ["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"], NO_CIPHER,
         None),
        ("TLS 1.3 TLS_CHACHA20_POLY1305_SHA256 (no ChaCha20 in B.13)",
         ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
         NO_CIPHER, None),
        ("TLS 1.1", ["-tls1_1", *SECLEVEL0], UNSUPPORTED, None),
        ("TLS 1.2 ECDHE-RSA-AES128-SHA (CBC)",
         ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA"], NO_CIPHER, None),
        ("TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384",
         ["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"], None,
         ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")),
        ("TLS 1.3 TLS_AES_128_GCM_SHA256",
         ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"], None,
         ("TLSv1.3", "TLS_AES_128_GCM_SHA256")),
    ],
    "tls13": [
        ("TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256 (TLS 1.3 only)",
         ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], UNSUPPORTED,
         None),
        ("TLS 1.3", ["-tls1_3"], None, ("TLSv1.3", None)),
        ("TLS 1.3 TLS_CHACHA20_POLY1305_SHA256",
         ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"], None,
         ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")),
    ],
}


def scenario_protocols_and_suites(ctx):
    """openssl s_client with site A's certificate against siren serve in
    each --tls-profile (PROTOCOL_CASES). A refused case: the handshake
    does not complete (no cipher negotiated, non-zero exit status), no
    association is accepted, and siren logs why (unsupported protocol, no
    shared cipher). An accepted case: the handshake completes with the
    protocol and cipher asked for, and a whole association (A-ASSOCIATE-AC
    to A-RELEASE-RP) runs over it, siren logging it with tls=<protocol>
    and the site."""
    checks = ctx.checks
    for profile, cases in PROTOCOL_CASES.items():
        server = SirenServer(ctx, f"profile-{profile}", "--tls-profile",
                             profile)
        for label, options, refusal, expected in cases:
            what = f"--tls-profile {profile}: {label}"
            since = server.mark()
            result = s_client(ctx, server.port, options)
            if refusal:
                checks.expect(not result.handshake_done and
                              result.status not in (0, None),
                              f"{what}: expected the handshake to be "
                              f"refused; s_client: {result.summary()}")
                checks.expect(not result.associated,
                              f"{what}: an A-ASSOCIATE-AC came back")
                line = server.wait_line(("security.alert", "tls.failed"),
                                        refusal, since, in_reason=True)
                checks.expect(line is not None, f"{what}: siren logged no "
                              f"refusal matching /{refusal}/; it logged: "
                              f"{server.log_text()[since:].strip()}")
                checks.expect(not server.lines("assoc.accepted", since),
                              f"{what}: siren accepted an association")
                outcome = "refused"
            else:
                protocol, cipher = expected
                checks.expect(result.handshake_done and
                              result.protocol == protocol and
                              (cipher is None or result.cipher == cipher),
                              f"{what}: expected {protocol} {cipher or ''}; "
                              f"s_client: {result.summary()}")
                checks.expect(result.associated and result.released,
                              f"{what}: no whole association over it "
                              f"(A-ASSOCIATE-AC {result.associated}, "
                              f"A-RELEASE-RP {result.released}); "
                              f"s_client: {result.summary()}")
                accepted = server.wait_line(
                    "assoc.accepted", rf"site=site-a .*tls={protocol}\b",
                    since)
                checks.expect(accepted is not None, f"{what}: siren logged "
                              f"no assoc.accepted with site=site-a and "
                              f"tls={protocol}: "
                              f"{server.log_text()[since:].strip()}")
                checks.expect(not server.lines("security.alert", since),
                              f"{what}: security alert: "
                              f"{server.lines('security.alert', since)}")
                outcome = f"accepted ({result.protocol} {result.cipher})"
            print(f"  {what}: {outcome}", flush=True)
        server.stop()


def scenario_sighup_reload(ctx):
    """siren serve starts with a CRL that does not revoke site B. storescu
    as site B opens an association to send one file 300 times (--repeat)
    and is stopped (SIGSTOP) once siren logged the association. The CRL
    file is replaced by one revoking site B's certificate (openssl ca
    -revoke and -gencrl with the PKI's ca-inter database) and siren gets
    SIGHUP (it logs tls.reloaded). Then: a new connection with site B's
    certificate is refused as revoked (echoscu and storescu: a
    security.alert, no association); site A still associates; the stopped
    association, continued (SIGCONT), finishes: storescu exits 0, siren
    logs its release after the reload, and the 300 stored files all came
    over that one association (the peer address in (0002,0102)) with site
    B's provenance."""
    checks = ctx.checks
    crl = os.path.join(ctx.work, "reload-crls.pem")
    shutil.copy(ctx.pki.path("crls.pem"), crl)
    server = SirenServer(ctx, "reload", crl=crl)
    repeat = 300
    source = os.path.join(ctx.data, "test_files", "CT_small.dcm")
    log_path = os.path.join(ctx.work, "reload-storescu.log")
    sender = ctx.processes.start(
        ["storescu", "-v", *dcmtk_tls_options(ctx.pki, "site-b"), "-aet",
         "SITEB", "-aec", SIREN_AET, "--repeat", str(repeat), "127.0.0.1",
         str(server.port), source], log_path, env=ctx.env)
    accepted = server.wait_line("assoc.accepted", r"site=site-b", 0, 30)
    sender.send_signal(signal.SIGSTOP)
    if not checks.expect(accepted is not None, "storescu as site B did "
                         f"not associate: {server.log_text()}"):
        ctx.processes.stop(sender)
        server.stop()
        return
    established = re.search(r"peer=(\S+)", accepted).group(1)
    before = len(server.stored())
    checks.expect(before < repeat and sender.poll() is None,
                  f"storescu finished ({before} of {repeat} stored) before "
                  f"it could be stopped: the established association did "
                  f"not outlive the reload")
    print(f"  site B associated, stopped after {before} of {repeat} "
          f"files", flush=True)

    ctx.pki.revoke_and_publish("site-b", crl)
    since = server.mark()
    server.process.send_signal(signal.SIGHUP)
    reloaded = server.wait_line("tls.reloaded", r"", since)
    checks.expect(reloaded is not None, f"no tls.reloaded after SIGHUP: "
                  f"{server.log_text()[since:]}")

    since = server.mark()
    status, output = echoscu(ctx, server.port, "site-b", "SITEB")
    expect_refused_during(ctx, server, "site B after the reload, echoscu",
                          status, output, since)
    since = server.mark()
    status, output = storescu(ctx, server.port, "site-b", "SITEB", [source])
    expect_refused_during(ctx, server, "site B after the reload, storescu",
                          status, output, since)
    status, output = echoscu(ctx, server.port, "site-a", "SITEA")
    checks.expect(status == 0 and "Received Echo Response (Success)" in
                  output, f"site A after the reload: echoscu exit status "
                  f"{status}: {output.strip()[-400:]}")
    print("  after the reload: site B refused as revoked, site A in",
          flush=True)

    since = server.mark()
    sender.send_signal(signal.SIGCONT)
    try:
        status = sender.wait(timeout=120)
    except subprocess.TimeoutExpired:
        status = None
    ctx.processes.stop(sender)
    with open(log_path, encoding="latin-1") as log:
        text = log.read()
    successes = text.count("Received Store Response (Success)")
    checks.expect(status == 0 and successes == repeat,
                  f"the association established before the reload did not "
                  f"finish: storescu exit status {status}, {successes} of "
                  f"{repeat} Success (log {log_path})")
    released = server.wait_line("assoc.released", rf"stored={repeat}\b",
                                since)
    checks.expect(released is not None, f"siren logged no release of the "
                  f"site B association with stored={repeat}: "
                  f"{server.log_text()[since:]}")
    stored = server.stored()
    checks.expect(len(stored) == repeat, f"{len(stored)} files stored, "
                  f"expected {repeat}")
    peers = collections.Counter()
    for path in stored:
        _, info = provenance_of(path)
        peers[info.get("peer") if isinstance(info, dict) else info] += 1
    checks.expect(list(peers) == [established], f"the stored files came "
                  f"from {dict(peers)}, expected all from the association "
                  f"established before the reload ({established})")
    for path in stored[:3] + stored[-3:]:
        check_provenance(ctx, "site B across the reload", path, "site-b",
                         "site-b", "SITEB")
    print(f"  the established association finished: {len(stored)} stored",
          flush=True)
    server.stop()


def expect_refused_during(ctx, server, what, status, output, since):
    """A site B attempt after the reload: refused as revoked, no
    association (what is stored comes from the stopped one, checked at
    the end)."""
    checks = ctx.checks
    checks.expect(status not in (0, None), f"{what}: exit status {status}, "
                  f"expected a failure: {output.strip()[-400:]}")
    alert = server.wait_line("security.alert", r"revoked", since,
                             in_reason=True)
    checks.expect(alert is not None, f"{what}: no security.alert saying "
                  f"revoked; log: {server.log_text()[since:].strip()}")
    checks.expect(not server.lines("assoc.accepted", since),
                  f"{what}: siren accepted it")


def scenario_key_permissions(ctx):
    """A copy of server.key with mode 644, then 640: siren serve refuses to
    start (non-zero exit status, no listener) and says what to do
    ("chmod 600")."""
    checks = ctx.checks
    for mode in (0o644, 0o640):
        key = os.path.join(ctx.work, f"server-{mode:o}.key")
        shutil.copy(ctx.pki.path("server.key"), key)
        os.chmod(key, mode)
        store = os.path.join(ctx.work, f"key{mode:o}-store")
        os.makedirs(store, exist_ok=True)
        status, output = run_tool(server_command(ctx, store, key=key),
                                  timeout_s=20)
        what = f"server key mode {mode:o}"
        checks.expect(status not in (0, None), f"{what}: siren serve exit "
                      f"status {status}, expected a refusal: {output}")
        checks.expect("chmod 600" in output, f"{what}: the message does not "
                      f"say 'chmod 600': {output.strip()}")
        checks.expect("serve.listening" not in output, f"{what}: siren "
                      f"serve listened: {output.strip()}")
        report = sanitizer_line(output)
        checks.expect(report is None, f"{what}: {report}")
        print(f"  {what}: {output.strip().splitlines()[0] if output.strip() else '(nothing said)'}",
              flush=True)


def scenario_pinning(ctx):
    """--pin with site A's SPKI SHA-256 (as openssl computes it): echoscu
    and storescu as site A associate and store; site B, whose certificate
    is otherwise valid, is refused with a security.alert about the pinned
    keys and nothing of it is stored."""
    checks = ctx.checks
    server = SirenServer(ctx, "pin", "--pin", ctx.spkis["site-a"])
    status, output = echoscu(ctx, server.port, "site-a", "SITEA")
    checks.expect(status == 0 and "Received Echo Response (Success)" in
                  output, f"site A (pinned): echoscu exit status {status}: "
                  f"{output.strip()[-400:]}")
    source = os.path.join(ctx.data, "test_files", "CT_small.dcm")
    status, output = storescu(ctx, server.port, "site-a", "SITEA", [source])
    checks.expect(status == 0 and "Received Store Response (Success)" in
                  output, f"site A (pinned): storescu exit status {status}:"
                  f" {output.strip()[-400:]}")
    stored = server.stored()
    checks.expect(len(stored) == 1, f"site A (pinned): {len(stored)} files "
                                    f"stored, expected 1")
    for path in stored:
        check_provenance(ctx, "site A (pinned)", path, "site-a", "site-a",
                         "SITEA")
        os.remove(path)
    for tool in ("echoscu", "storescu"):
        since = server.mark()
        if tool == "echoscu":
            status, output = echoscu(ctx, server.port, "site-b", "SITEB")
            answered = "Received Echo Response"
        else:
            status, output = storescu(ctx, server.port, "site-b", "SITEB",
                                      [source])
            answered = "Received Store Response"
        expect_refused(ctx, server, "site B (not pinned)", tool, status,
                       output, r"pinned", since, answered)
    print("  site A (pinned) in, site B refused", flush=True)
    server.stop()


def scenario_handshake_timeout(ctx):
    """--handshake-timeout 2: a TCP connection to the TLS port that sends
    nothing is closed by siren after about 2 s (not before, not much
    later), siren logs the timeout, and meanwhile site A's echoscu is
    served at once (the silent peer holds nothing else)."""
    checks = ctx.checks
    server = SirenServer(ctx, "handshake", "--handshake-timeout",
                         str(HANDSHAKE_TIMEOUT_S))
    since = server.mark()
    silent = socket.create_connection(("127.0.0.1", server.port))
    started = time.monotonic()
    try:
        echo_started = time.monotonic()
        status, output = echoscu(ctx, server.port, "site-a", "SITEA")
        echo_seconds = time.monotonic() - echo_started
        checks.expect(status == 0 and "Received Echo Response (Success)" in
                      output, f"echoscu while a peer is silent: exit "
                      f"status {status}: {output.strip()[-400:]}")
        checks.expect(echo_seconds < HANDSHAKE_TIMEOUT_S,
                      f"echoscu took {echo_seconds:.1f} s while a peer was "
                      f"silent")
        silent.settimeout(HANDSHAKE_TIMEOUT_S + 10)
        try:
            data = silent.recv(4096)
            how = "closed" if not data else f"sent {data[:16]!r}"
        except ConnectionResetError:
            data, how = b"", "reset"
        except socket.timeout:
            data, how = None, "still open"
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    checks.expect(data == b"", f"the silent connection was not closed: "
                               f"{how} after {elapsed:.1f} s")
    checks.expect(HANDSHAKE_TIMEOUT_S - 0.2 <= elapsed <=
                  HANDSHAKE_TIMEOUT_S + 3, f"the silent connection was "
                  f"{how} after {elapsed:.2f} s, expected about "
                  f"{HANDSHAKE_TIMEOUT_S} s")
    line = server.wait_line("tls.failed", r"handshake", since,
                            in_reason=True)
    checks.expect(line is not None, f"siren logged no tls.failed for the "
                  f"silent peer: {server.log_text()[since:].strip()}")
    print(f"  silent peer {how} after {elapsed:.2f} s; siren: "
          f"{line.split(' tls.failed ', 1)[-1] if line else None}",
          flush=True)
    server.stop()


SCENARIOS = [
    ("bad_certificates", scenario_bad_certificates),
    ("good_sites", scenario_good_sites),
    ("protocols_and_suites", scenario_protocols_and_suites),
    ("sighup_reload", scenario_sighup_reload),
    ("key_permissions", scenario_key_permissions),
    ("pinning", scenario_pinning),
    ("handshake_timeout", scenario_handshake_timeout),
]


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

class Context:
    """What every scenario needs."""

    def __init__(self, args, checks, processes):
        self.siren = os.path.abspath(args.siren)
        self.data = os.path.abspath(args.data)
        self.work = os.path.abspath(args.work)
        self.checks = checks
        self.processes = processes
        self.servers = []
        self.env = dict(os.environ, TCP_NODELAY="1")
        self.pki = None
        self.serials = {}
        self.spkis = {}


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True, help="the siren binary")
    parser.add_argument("--pki-script", required=True, help="pki.py")
    parser.add_argument("--data", required=True,
                        help="pydicom's data folder (test_files)")
    parser.add_argument("--work", required=True,
                        help="a scratch folder (emptied first)")
    parser.add_argument("--only", action="append",
                        help="run only this scenario (repeatable)")
    return parser.parse_args()


def missing_prerequisites(args):
    missing = [tool for tool in ("openssl", "echoscu", "storescu")
               if shutil.which(tool) is None]
    if not os.access(args.siren, os.X_OK):
        missing.append(f"siren binary {args.siren}")
    if not os.path.isfile(args.pki_script):
        missing.append(f"PKI script {args.pki_script}")
    if not glob.glob(os.path.join(args.data, "test_files", "*.dcm")):
        missing.append(f"pydicom corpus in {args.data}/test_files")
    return missing


def stop_on_signal(signo, frame):
    raise KeyboardInterrupt(f"signal {signo}")


def main():
    args = parse_arguments()
    signal.signal(signal.SIGTERM, stop_on_signal)
    warnings.filterwarnings("ignore", module="pydicom")
    missing = missing_prerequisites(args)
    if missing:
        print("tls_sites: cannot run, missing:\n  " + "\n  ".join(missing))
        return 2
    checks = Checks()
    processes = Processes()
    ctx = Context(args, checks, processes)
    shutil.rmtree(ctx.work, ignore_errors=True)
    os.makedirs(ctx.work)
    started = time.monotonic()
    pki_dir = os.path.join(ctx.work, "pki")
    done = subprocess.run(["/usr/bin/python3", args.pki_script, pki_dir],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"tls_sites: pki.py failed:\n{done.stdout}{done.stderr}")
        return 2
    ctx.pki = Pki(pki_dir)
    key_mode = stat.S_IMODE(os.stat(ctx.pki.path("server.key")).st_mode)
    if key_mode & 0o077:
        print(f"tls_sites: pki.py left server.key mode {key_mode:o}")
        return 2
    for site in ("site-a", "site-b"):
        ctx.serials[site] = ctx.pki.serial(site)
        ctx.spkis[site] = ctx.pki.spki_sha256(site)
    print(f"PKI made in {time.monotonic() - started:.1f} s", flush=True)
    try:
        for name, scenario in SCENARIOS:
            if args.only and name not in args.only:
                continue
            checks.scenario = name
            print(f"== {name}", flush=True)
            scenario_started = time.monotonic()
            try:
                scenario(ctx)
            except Exception as error:  # report, go on with the next one
                traceback.print_exc()
                checks.fail(f"the scenario itself failed: "
                            f"{type(error).__name__}: {error}")
            finally:
                for server in list(ctx.servers):
                    server.stop()
            print(f"   ({time.monotonic() - scenario_started:.1f} s)",
                  flush=True)
    finally:
        processes.stop_all()
    print(f"\n== summary ({time.monotonic() - started:.1f} s)")
    for name, _ in SCENARIOS:
        print(f"  {name}: {checks.passed[name]} checks passed")
    if checks.failures:
        print(f"{len(checks.failures)} checks failed:")
        for line in checks.failures:
            print("  " + line)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
