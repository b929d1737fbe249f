#!/usr/bin/python3
"""tls_orthanc.py - SIREN's DICOM-TLS against a real Orthanc, both ways.

Debian's Orthanc (DCMTK's TLS layer inside), started with a temporary
configuration and DicomTlsEnabled, is the peer; nothing is mocked. The
certificates come from a fresh test PKI (tests/integration/pki.py) plus
one made here for Orthanc: CN=orthanc.siren.test (SAN that name,
localhost and 127.0.0.1), serverAuth and clientAuth (Orthanc's one
certificate serves its SCP and its SCU), signed by the PKI's
intermediate. Orthanc trusts ca-bundle.pem and requires a client
certificate. Scenarios, one function each (their docstrings say what
each proves):

  1. send_corpus_to_orthanc   `siren send --tls` (site-a's certificate)
                              sends the pydicom corpus and a generated
                              8 MiB image to Orthanc; its REST API holds
                              every instance reported stored; the
                              outcome of every file is the one a plain
                              Orthanc gives.
  2. send_profiles_and_names  the other profiles (modified-bcp195,
                              tls13) and --tls-server-name, right and
                              wrong.
  3. send_to_untrusted        `siren send --tls` with a CA that did not
                              sign Orthanc's certificate: refused, nothing
                              stored.
  4. orthanc_sends_to_siren   Orthanc (modality with UseDicomTls) stores
                              instances into `siren serve`'s DICOM-TLS
                              listener, where its certificate is site
                              "orthanc": the files, their UIDs, the
                              pixels and the (0002,0102) provenance.
  5. orthanc_sends_profiles   the same with `siren serve --tls-profile`
                              modified-bcp195 and tls13.
  6. orthanc_not_the_site     Orthanc's certificate is not the site's, or
                              its AE title is no site's: refused, nothing
                              stored, a security.alert logged.
  7. tls12_orthanc            an Orthanc whose OpenSSL is capped at TLS
                              1.2 (the others negotiate 1.3), both ways,
                              with each profile: bcp195 and
                              modified-bcp195 work with their ciphers,
                              tls13 refuses.

Usage:
  /usr/bin/python3 tls_orthanc.py --siren build/gateway/siren \\
      --pki-script tests/integration/pki.py \\
      --data /usr/lib/python3/dist-packages/pydicom/data --work /tmp/tls

Exit status: 0 every check passed, 1 a check failed (each failure is
printed with its scenario), 2 the test could not run (a missing tool or
corpus). Every process the test starts is stopped before it exits.
About 30 s, most of it making the PKI.
"""

import argparse
import collections
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
import warnings

import pydicom
import pydicom.filereader
from pydicom.uid import generate_uid

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

SIREN_AET = "SIREN"
SITE_AET = "SITEA"
ORTHANC_AET = "ORTHANC"
ORTHANC_CN = "orthanc.siren.test"
TOOL_TIMEOUT_S = 120
STARTUP_TIMEOUT_S = 30
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer",
                     "UndefinedBehaviorSanitizer", "runtime error:")

CORPUS_FOLDERS = ("test_files", "charset_files")
NOT_DICOM_SUFFIXES = (".txt", ".json", ".gz", ".dump", ".py", ".pyc")
NOT_DICOM_NAMES = ("README", "README.txt", "FileInfo.txt", "__pycache__")

# Files that must be stored over TLS whatever else the corpus holds: the
# common image kinds, a compressed syntax, a plan, a character set.
MUST_BE_STORED = ("test_files/CT_small.dcm", "test_files/MR_small.dcm",
                  "test_files/JPEG2000.dcm", "test_files/rtplan.dcm",
                  "charset_files/chrH31.dcm", "test_files/waveform_ecg.dcm")

# What Orthanc sends to siren serve (scenario 4): these plus the 8 MiB
# generated image.
ORTHANC_SENDS = MUST_BE_STORED

LARGE_NAME = "generated/large_ct.dcm"
LARGE_SIDE = 2048        # 2048 x 2048 x 16 bits = 8 MiB of pixels

# ---------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------


class Checks:
    """Failures (with the scenario they belong to) and numbers for the
    summary."""

    def __init__(self):
        self.scenario = ""
        self.failures = []
        self.counts = collections.OrderedDict()

    def fail(self, what):
        line = f"[{self.scenario}] {what}"
        self.failures.append(line)
        print("FAIL " + line, flush=True)

    def expect(self, condition, what):
        if not condition:
            self.fail(what)
        return bool(condition)

    def count(self, what, number):
        self.counts[f"{self.scenario}: {what}"] = number


# ---------------------------------------------------------------------------
# Processes, ports, tools
# ---------------------------------------------------------------------------


class Processes:
    """Every long-running process the test starts, so that all of them are
    stopped at the end, also when a check or the test itself fails."""

    def __init__(self):
        self.running = []

    def start(self, command, log_path, env=None):
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, stdout=log,
                                       stderr=subprocess.STDOUT, env=env,
                                       stdin=subprocess.DEVNULL)
        self.running.append(process)
        return process

    def stop(self, process, timeout_s=15):
        """SIGTERM, then SIGKILL after timeout_s; returns the exit status
        (negative: a signal)."""
        if process.poll() is None:
            try:
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


def run_reported(checks, processes, started, body, summary=None):
    """The end of a test's main(): runs body() (an exception it raises is a
    failure, its traceback printed), stops every process, reports with
    the seconds since `started` (summary(seconds), or a verdict line) and
    returns the exit status (1 if a check failed)."""
    try:
        body()
    except Exception as error:
        traceback.print_exc()
        checks.fail(f"the test itself failed: {type(error).__name__}: "
                    f"{error}")
    finally:
        processes.stop_all()
    seconds = time.monotonic() - started
    if summary:
        summary(seconds)
    else:
        print(f"{'FAILED' if checks.failures else 'passed'}: "
              f"{len(checks.failures)} failure(s) in {seconds:.0f} s")
    return 1 if checks.failures else 0


def run_scenarios(checks, ctx, scenarios, only=(), after_each=None):
    """Each (name, scenario) of scenarios, or those named in only, as
    scenario(checks, ctx), timed; one that raises is a failure and the next
    runs; after_each() after every one."""
    for name, scenario in scenarios:
        if only and name not in only:
            continue
        checks.scenario = name
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            scenario(checks, ctx)
        except Exception as error:  # report and go on with the next
            traceback.print_exc()
            checks.fail(f"the scenario itself failed: "
                        f"{type(error).__name__}: {error}")
        finally:
            if after_each:
                after_each()
        checks.count("seconds", round(time.monotonic() - started, 1))


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on now (for Orthanc, which
    cannot pick its own and tell us)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout_s, interval_s=0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def run_tool(command, env=None, timeout_s=TOOL_TIMEOUT_S):
    """(exit status, stdout, stderr); the status is None on timeout."""
    try:
        done = subprocess.run(command, capture_output=True, env=env,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as expired:
        return (None, (expired.stdout or b"").decode("latin-1"),
                (expired.stderr or b"").decode("latin-1"))
    return (done.returncode, done.stdout.decode("latin-1"),
            done.stderr.decode("latin-1"))


def openssl(*args, stdin=None):
    done = subprocess.run(["openssl", *args], input=stdin,
                          capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: "
                           f"{done.stderr.decode(errors='replace')}")
    return done.stdout


def sanitizer_report(text):
    for line in text.splitlines():
        if any(marker in line for marker in SANITIZER_MARKERS):
            return line.strip()
    return None


def peer_environment():
    """Orthanc (DCMTK inside) with Nagle off, as in net_peers.py."""
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    return env


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------

ORTHANC_CERT_CONFIG = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
O = SIREN Test
CN = {cn}
[ ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:{cn},DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


class Pki:
    """The test PKI (pki.py) and Orthanc's certificate signed by its
    intermediate."""

    def __init__(self, pki_script, work):
        self.dir = os.path.join(work, "pki")
        done = subprocess.run([sys.executable, pki_script, self.dir],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pki.py failed: {done.stdout}{done.stderr}")
        self.orthanc_cert, self.orthanc_key, self.orthanc_chain = \
            self.issue("orthanc", ORTHANC_CN)

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name, cn):
        """NAME.pem/.key/-chain.pem for cn, by the intermediate."""
        config = self.path(f"{name}.cnf")
        with open(config, "w") as stream:
            stream.write(ORTHANC_CERT_CONFIG.format(cn=cn))
        key, csr = self.path(f"{name}.key"), self.path(f"{name}.csr")
        cert, chain = self.path(f"{name}.pem"), self.path(f"{name}-chain.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                "rsa_keygen_bits:2048", "-out", key)
        os.chmod(key, 0o600)
        openssl("req", "-new", "-key", key, "-config", config, "-out", csr)
        serial = "0x" + secrets.token_hex(16)
        serial = "0x1" + serial[3:]          # positive, 128 bits
        openssl("x509", "-req", "-in", csr, "-CA", self.path("inter.pem"),
                "-CAkey", self.path("inter.key"), "-set_serial", serial,
                "-days", "30", "-sha256", "-extfile", config,
                "-extensions", "ext", "-out", cert)
        os.remove(csr)
        with open(chain, "w") as target:
            for part in (cert, self.path("inter.pem")):
                with open(part) as source:
                    target.write(source.read())
        return cert, key, chain

    def site_a_options(self):
        return ["--tls-cert", self.path("site-a-chain.pem"),
                "--tls-key", self.path("site-a.key")]


def spki_sha256(cert):
    """Hex SHA-256 of a certificate's SubjectPublicKeyInfo (DER)."""
    pem = openssl("x509", "-in", cert, "-pubkey", "-noout")
    der = openssl("pkey", "-pubin", "-outform", "DER", stdin=pem)
    return hashlib.sha256(der).hexdigest()


def serial_hex(cert):
    text = openssl("x509", "-in", cert, "-serial", "-noout").decode()
    return text.strip().split("=", 1)[1].upper()


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------


class CorpusFile:
    def __init__(self, name, path):
        self.name = name
        self.path = path
        self.sop_instance = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                dataset = pydicom.dcmread(path, force=True,
                                          stop_before_pixels=True)
                uid = dataset.get("SOPInstanceUID") or \
                    dataset.file_meta.get("MediaStorageSOPInstanceUID")
                self.sop_instance = str(uid).strip("\0 ") if uid else None
            except Exception:
                pass


def stage_corpus(data_dir, work):
    """Copies the DICOM files of the corpus (test_files/ recursively and
    charset_files/) into work/corpus, adds the generated large image;
    returns (root, {name: CorpusFile})."""
    root = os.path.join(work, "corpus")
    files = {}
    for top in CORPUS_FOLDERS:
        for folder, subfolders, names in os.walk(os.path.join(data_dir,
                                                              top)):
            subfolders[:] = [s for s in subfolders if s != "__pycache__"]
            for file_name in names:
                if file_name in NOT_DICOM_NAMES or file_name.endswith(
                        NOT_DICOM_SUFFIXES):
                    continue
                source = os.path.join(folder, file_name)
                name = os.path.relpath(source, data_dir)
                target = os.path.join(root, name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(source, target)
                files[name] = None
    large = os.path.join(root, LARGE_NAME)
    os.makedirs(os.path.dirname(large), exist_ok=True)
    make_large_image(os.path.join(root, "test_files/CT_small.dcm"), large)
    files[LARGE_NAME] = None
    return root, {name: CorpusFile(name, os.path.join(root, name))
                  for name in sorted(files)}


def make_large_image(template, target):
    """CT_small with 2048 x 2048 16-bit pixels of fixed pseudo-random
    noise (8 MiB: many PDUs and TLS records) and new UIDs."""
    dataset = pydicom.dcmread(template)
    dataset.Rows = dataset.Columns = LARGE_SIDE
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 16, 15
    dataset.SamplesPerPixel = 1
    dataset.PixelRepresentation = 0
    dataset.PixelData = random.Random(20261129).randbytes(
        LARGE_SIDE * LARGE_SIDE * 2)
    dataset["PixelData"].VR = "OW"
    for keyword in ("SmallestImagePixelValue", "LargestImagePixelValue"):
        if keyword in dataset:
            del dataset[keyword]
    dataset.SOPInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.save_as(target, write_like_original=False)


def pixel_bytes(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(path, force=True)
    value = dataset.get("PixelData")
    return bytes(value) if value is not None else None


# ---------------------------------------------------------------------------
# siren send
# ---------------------------------------------------------------------------


class SendResult:
    """What `siren send` printed, per file: its status line (stdout), its
    local complaint (stderr), and the association errors."""

    def __init__(self, status, stdout, stderr, paths):
        self.exit_status = status
        self.stdout, self.stderr = stdout, stderr
        self.outcome = {}        # path: ("status", code) / ("local", words)
        for line in stdout.splitlines():
            match = re.match(r"(.*): status 0x([0-9A-F]{4}), (.*)$", line)
            if match and match.group(1) in paths:
                self.outcome[match.group(1)] = ("status",
                                                int(match.group(2), 16))
        for line in stderr.splitlines():
            path, _, message = line.partition(": ")
            if path in paths and path not in self.outcome:
                # the peer's port differs between runs
                self.outcome[path] = ("local", re.sub(
                    r"127\.0\.0\.1:\d+", "PEER", message))
        self.association_errors = [l for l in stderr.splitlines()
                                   if l.startswith("siren send:")]

    def stored(self):
        return [path for path, (kind, code) in self.outcome.items()
                if kind == "status" and (code == 0 or
                                         code & 0xF000 == 0xB000)]


def siren_send(siren, port, inputs, paths, *options):
    command = [siren, "send", "--aet", SITE_AET, "--call", ORTHANC_AET,
               *options, "127.0.0.1", str(port), *inputs]
    status, out, err = run_tool(command)
    return SendResult(status, out, err, paths)


def check_ran(checks, what, status, text):
    """A tool must have finished, not died of a signal, and not reported a
    sanitizer error."""
    checks.expect(status is not None, f"{what} did not finish within "
                                      f"{TOOL_TIMEOUT_S} s")
    checks.expect(status is None or status >= 0,
                  f"{what} died of signal {-(status or 0)}")
    report = sanitizer_report(text)
    checks.expect(report is None, f"{what}: {report}")


# ---------------------------------------------------------------------------
# Orthanc
# ---------------------------------------------------------------------------


class Orthanc:
    """A running Orthanc with a temporary configuration on free loopback
    ports: no remote access, no authentication, no plugins; with DICOM
    TLS (its certificate, trusting ca-bundle.pem, client certificates
    required) or without. openssl_conf: an OpenSSL configuration file
    for its process (OPENSSL_CONF), e.g. one that caps TLS at 1.2.
    extra_config: settings added to (or replacing) the configuration's
    (forward_orthanc.py uses this class too)."""

    def __init__(self, checks, processes, work, name, pki=None,
                 openssl_conf=None, extra_config=None):
        self.checks = checks
        self.processes = processes
        self.name = name
        self.folder = os.path.join(work, name)
        os.makedirs(self.folder)
        self.http_port = free_port()
        self.dicom_port = free_port()
        while self.dicom_port == self.http_port:
            self.dicom_port = free_port()
        config = {
            "Name": f"siren-{name}",
            "StorageDirectory": os.path.join(self.folder, "storage"),
            "IndexDirectory": os.path.join(self.folder, "index"),
            "HttpPort": self.http_port, "DicomPort": self.dicom_port,
            "DicomAet": ORTHANC_AET, "DicomCheckCalledAet": True,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "HttpServerEnabled": True, "DicomServerEnabled": True,
            "Plugins": [], "SaveJobs": False, "StorageCompression": False,
            "UnknownSopClassAccepted": True, "DicomScuTimeout": 20,
            "DicomModalities": {},
        }
        if pki:
            config.update({
                "DicomTlsEnabled": True,
                "DicomTlsCertificate": pki.orthanc_chain,
                "DicomTlsPrivateKey": pki.orthanc_key,
                "DicomTlsTrustedCertificates": pki.path("ca-bundle.pem"),
                "DicomTlsRemoteCertificateRequired": True,
            })
        config.update(extra_config or {})
        config_path = os.path.join(self.folder, "orthanc.json")
        with open(config_path, "w") as stream:
            json.dump(config, stream, indent=2)
        self.log_path = os.path.join(work, f"{name}.log")
        self.base = f"http://127.0.0.1:{self.http_port}"
        env = peer_environment()
        if openssl_conf:
            env["OPENSSL_CONF"] = openssl_conf
        self.process = processes.start(["Orthanc", "--verbose", config_path],
                                       self.log_path, env=env)

    def wait_started(self):
        system = wait_until(lambda: self.process.poll() is None and
                            self.system(), STARTUP_TIMEOUT_S, 0.2)
        if not system or system.get("DicomAet") != ORTHANC_AET:
            raise RuntimeError(f"Orthanc ({self.name}) did not start; log "
                               f"{self.log_path}")

    def system(self):
        try:
            return self.get("/system")
        except (OSError, ValueError):
            return None

    def request(self, method, path, body=None, raw=False):
        """(HTTP status, answer); an HTTP error is an answer too."""
        data = body if isinstance(body, (bytes, type(None))) else \
            body.encode() if isinstance(body, str) else \
            json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                status, content = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, content = error.code, error.read()
        if raw:
            return status, content
        try:
            return status, json.loads(content) if content else None
        except ValueError:
            return status, content.decode("latin-1")

    def get(self, path, raw=False):
        status, answer = self.request("GET", path, raw=raw)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {answer}")
        return answer

    def instances(self):
        return set(self.get("/instances"))

    def lookup(self, uid):
        """Orthanc's instance IDs with this SOP Instance UID."""
        status, matches = self.request("POST", "/tools/lookup", uid)
        if status != 200:
            raise RuntimeError(f"/tools/lookup {uid}: HTTP {status}")
        return [m["ID"] for m in matches if m.get("Type") == "Instance"]

    def upload(self, path):
        with open(path, "rb") as stream:
            status, answer = self.request("POST", "/instances", stream.read())
        if status != 200 or not isinstance(answer, dict):
            raise RuntimeError(f"uploading {path} to Orthanc: HTTP {status}: "
                               f"{answer}")
        return answer["ID"]

    def log_text(self):
        with open(self.log_path, encoding="latin-1") as log:
            return log.read()

    def stop(self):
        status = self.processes.stop(self.process)
        self.checks.expect(status == 0, f"Orthanc ({self.name}) exited with "
                                        f"status {status} (log "
                                        f"{self.log_path})")


# ---------------------------------------------------------------------------
# siren serve
# ---------------------------------------------------------------------------


class SirenServer:
    """`siren serve` with only its DICOM-TLS listener (--tls-port 0 on
    127.0.0.1), the PKI's server certificate, sites-ca and CRLs."""

    def __init__(self, checks, processes, siren, pki, work, name, sites,
                 profile=None):
        self.checks = checks
        self.processes = processes
        self.dir = os.path.join(work, name + "-in")
        os.makedirs(self.dir)
        self.log_path = os.path.join(work, name + "-serve.log")
        command = [siren, "serve", "--dir", self.dir, "--bind", "127.0.0.1",
                   "--aet", SIREN_AET, "--tls-port", "0",
                   "--tls-cert", pki.path("server-chain.pem"),
                   "--tls-key", pki.path("server.key"),
                   "--sites-ca", pki.path("ca-bundle.pem"),
                   "--crl", pki.path("crls.pem")]
        for site in sites:
            command += ["--site", site]
        if profile:
            command += ["--tls-profile", profile]
        self.process = processes.start(command, self.log_path)
        match = wait_until(
            lambda: self.process.poll() is None and re.search(
                r"serve\.listening tls_port=(\d+)", self.log_text()),
            STARTUP_TIMEOUT_S)
        if not match:
            raise RuntimeError(f"siren serve did not start:\n"
                               f"{self.log_text()}")
        self.port = int(match.group(1))

    def log_text(self):
        with open(self.log_path, encoding="latin-1") as log:
            return log.read()

    def log_lines(self, event):
        return [line for line in self.log_text().splitlines()
                if f" {event} " in line]

    def arrivals(self):
        return sorted(os.path.join(self.dir, name)
                      for name in os.listdir(self.dir)
                      if name.endswith(".dcm") and not name.startswith("."))

    def stop(self):
        status = self.processes.stop(self.process)
        self.checks.expect(status == 0, f"siren serve exited with status "
                                        f"{status}; log {self.log_path}")
        report = sanitizer_report(self.log_text())
        self.checks.expect(report is None, f"siren serve: {report} (see "
                                           f"{self.log_path})")


def provenance(path):
    """The JSON siren serve writes into (0002,0102) of a stored file."""
    meta = pydicom.filereader.read_file_meta_info(path)
    element = meta.get(0x00020102)
    if element is None:
        return None
    return json.loads(bytes(element.value).rstrip(b"\0 ").decode())


def declare_siren(orthanc, server):
    """SIREN as a modality of Orthanc, reached with DICOM TLS."""
    status, answer = orthanc.request("PUT", "/modalities/siren", {
        "AET": SIREN_AET, "Host": "127.0.0.1", "Port": server.port,
        "UseDicomTls": True, "Timeout": 20})
    if status != 200:
        raise RuntimeError(f"PUT /modalities/siren: HTTP {status}: {answer}")


def orthanc_store(orthanc, ids):
    """Orthanc's C-STORE SCU to siren, synchronously: (HTTP status,
    answer)."""
    return orthanc.request("POST", "/modalities/siren/store",
                           {"Resources": ids, "Synchronous": True})


# ---------------------------------------------------------------------------
# Scenario 1: siren send --tls with the corpus
# ---------------------------------------------------------------------------


def scenario_send_corpus_to_orthanc(checks, ctx):
    """`siren send --tls` (profile bcp195, site-a's certificate and key,
    Orthanc's certificate checked against ca-bundle.pem and 127.0.0.1)
    sends both corpus folders and an 8 MiB generated image to the TLS
    Orthanc; the same files go over plain TCP to an Orthanc configured
    alike but without TLS. Proves: no association error over TLS; every
    file has the same outcome (status, or the same local refusal) over
    TLS as over plain TCP; the MUST_BE_STORED files and the large image
    are stored; every file siren send reports as stored is an instance
    of the TLS Orthanc (its REST API /tools/lookup by SOP Instance UID,
    and /instances/{id}/simplified-tags says that UID); Orthanc holds no
    instance besides those; the large image's pixels Orthanc keeps are
    the ones sent."""
    orthanc, plain, corpus = ctx["orthanc"], ctx["plain"], ctx["corpus"]
    inputs = [os.path.join(ctx["corpus_root"], top)
              for top in CORPUS_FOLDERS + ("generated",)]
    paths = {f.path for f in corpus.values()}
    before = orthanc.instances()
    started = time.monotonic()
    tls = siren_send(ctx["siren"], orthanc.dicom_port, inputs, paths,
                     "--tls", "--tls-ca", ctx["pki"].path("ca-bundle.pem"),
                     *ctx["pki"].site_a_options())
    checks.count("siren send --tls, seconds",
                 round(time.monotonic() - started, 2))
    check_ran(checks, "siren send --tls", tls.exit_status,
              tls.stdout + tls.stderr)
    checks.expect(not tls.association_errors,
                  f"siren send --tls reported association errors: "
                  f"{tls.association_errors[:5]}")
    reference = siren_send(ctx["siren"], plain.dicom_port, inputs, paths)
    check_ran(checks, "siren send (plain)", reference.exit_status,
              reference.stdout + reference.stderr)
    checks.expect(not reference.association_errors,
                  f"siren send (plain) reported association errors: "
                  f"{reference.association_errors[:5]}")
    by_path = {f.path: f for f in corpus.values()}
    for path in sorted(paths):
        name = by_path[path].name
        checks.expect(path in tls.outcome, f"{name}: siren send --tls "
                                           f"printed no outcome")
        checks.expect(tls.outcome.get(path) == reference.outcome.get(path),
                      f"{name}: over TLS {tls.outcome.get(path)}, over "
                      f"plain TCP {reference.outcome.get(path)}")
    stored = [by_path[p] for p in tls.stored()]
    stored_names = {f.name for f in stored}
    for name in MUST_BE_STORED + (LARGE_NAME,):
        outcome = tls.outcome.get(corpus[name].path) if name in corpus \
            else "not in the corpus"
        checks.expect(name in stored_names, f"{name} was not stored over "
                                            f"TLS: {outcome}")
    found = set()
    for corpus_file in stored:
        uid = corpus_file.sop_instance
        if not checks.expect(uid, f"{corpus_file.name}: stored, but has no "
                                  f"SOP Instance UID to look up"):
            continue
        matches = orthanc.lookup(uid)
        if not checks.expect(matches, f"{corpus_file.name}: reported "
                                      f"stored, Orthanc has no instance "
                                      f"with SOP Instance UID {uid}"):
            continue
        for instance_id in matches:
            tags = orthanc.get(f"/instances/{instance_id}/simplified-tags")
            checks.expect(tags.get("SOPInstanceUID") == uid,
                          f"{corpus_file.name}: Orthanc's instance "
                          f"{instance_id} says SOP Instance UID "
                          f"{tags.get('SOPInstanceUID')}, expected {uid}")
        found.update(matches)
    new = orthanc.instances() - before
    checks.expect(new <= found | before,
                  f"Orthanc holds instances no stored file explains: "
                  f"{sorted(new - found)}")
    large = corpus.get(LARGE_NAME)
    if large and large.sop_instance:
        ids = orthanc.lookup(large.sop_instance)
        if ids:
            kept = os.path.join(ctx["work"], "orthanc-large.dcm")
            with open(kept, "wb") as stream:
                stream.write(orthanc.get(f"/instances/{ids[0]}/file",
                                         raw=True))
            checks.expect(pixel_bytes(kept) == pixel_bytes(large.path),
                          "the 8 MiB image's pixels Orthanc keeps differ "
                          "from the ones sent over TLS")
    checks.count("files sent", len(paths))
    checks.count("stored over TLS (== over plain TCP)", len(stored))
    checks.count("Orthanc instances found by SOP Instance UID", len(found))
    ctx["stored_over_tls"] = stored


# ---------------------------------------------------------------------------
# Scenario 2: the other profiles, and the server name
# ---------------------------------------------------------------------------


def scenario_send_profiles_and_names(checks, ctx):
    """`siren send --tls` with --tls-profile modified-bcp195 and tls13,
    and with --tls-server-name orthanc.siren.test (a SAN of Orthanc's
    certificate), each sending a new instance (MR_small with a new SOP
    Instance UID): stored and held by Orthanc. With --tls-server-name
    other.siren.test (not in the certificate): exit status 1, siren send
    says the host name does not match, Orthanc holds nothing new."""
    orthanc, pki = ctx["orthanc"], ctx["pki"]
    template = ctx["corpus"]["test_files/MR_small.dcm"].path
    cases = [("profile modified-bcp195", ["--tls-profile",
                                          "modified-bcp195"], True),
             ("profile tls13", ["--tls-profile", "tls13"], True),
             ("server name orthanc.siren.test",
              ["--tls-server-name", ORTHANC_CN], True),
             ("server name other.siren.test",
              ["--tls-server-name", "other.siren.test"], False)]
    for label, options, should_store in cases:
        path = os.path.join(ctx["work"], "single",
                            re.sub(r"\W+", "_", label) + ".dcm")
        uid = new_instance(template, path)
        before = orthanc.instances()
        result = siren_send(ctx["siren"], orthanc.dicom_port, [path], {path},
                            "--tls", "--tls-ca", pki.path("ca-bundle.pem"),
                            *pki.site_a_options(), *options)
        check_ran(checks, f"siren send ({label})", result.exit_status,
                  result.stdout + result.stderr)
        if should_store:
            checks.expect(result.exit_status == 0 and
                          result.stored() == [path],
                          f"{label}: not stored: exit status "
                          f"{result.exit_status}: "
                          f"{(result.stdout + result.stderr).strip()}")
            checks.expect(orthanc.lookup(uid), f"{label}: Orthanc has no "
                                               f"instance {uid}")
        else:
            text = result.stdout + result.stderr
            checks.expect(result.exit_status == 1 and
                          "host name does not match" in text,
                          f"{label}: expected exit status 1 and 'host name "
                          f"does not match', got {result.exit_status}: "
                          f"{text.strip()}")
            checks.expect(orthanc.instances() == before,
                          f"{label}: Orthanc holds something new")
    checks.count("cases", len(cases))


def new_instance(template, target):
    """A copy of template with a new SOP Instance UID; returns it."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    dataset = pydicom.dcmread(template)
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.save_as(target, write_like_original=False)
    return str(dataset.SOPInstanceUID)


# ---------------------------------------------------------------------------
# Scenario 3: an Orthanc we must not trust
# ---------------------------------------------------------------------------


def scenario_send_to_untrusted(checks, ctx):
    """`siren send --tls --tls-ca other-root.pem` (a CA that did not sign
    Orthanc's certificate) to the TLS Orthanc. Proves: exit status 1,
    siren send says the handshake was rejected for an unknown CA, it
    reports no file as stored, and Orthanc holds nothing new."""
    orthanc, pki = ctx["orthanc"], ctx["pki"]
    path = os.path.join(ctx["work"], "single", "untrusted.dcm")
    uid = new_instance(ctx["corpus"]["test_files/CT_small.dcm"].path, path)
    before = orthanc.instances()
    result = siren_send(ctx["siren"], orthanc.dicom_port, [path], {path},
                        "--tls", "--tls-ca", pki.path("other-root.pem"),
                        *pki.site_a_options())
    text = result.stdout + result.stderr
    check_ran(checks, "siren send (untrusted)", result.exit_status, text)
    checks.expect(result.exit_status == 1 and not result.stored(),
                  f"expected exit status 1 and nothing stored, got "
                  f"{result.exit_status}: {text.strip()}")
    checks.expect("TLS handshake rejected" in text and "unknown CA" in text,
                  f"siren send did not say the server's certificate is of "
                  f"an unknown CA: {text.strip()}")
    checks.expect(not orthanc.lookup(uid) and orthanc.instances() == before,
                  "Orthanc holds something new")


# ---------------------------------------------------------------------------
# Scenario 4: Orthanc sends to siren serve
# ---------------------------------------------------------------------------


def scenario_orthanc_sends_to_siren(checks, ctx):
    """`siren serve` (DICOM-TLS listener only, profile bcp195, site
    'orthanc|cn:orthanc.siren.test|ORTHANC'); SIREN declared in Orthanc
    (REST PUT /modalities/siren, UseDicomTls); the ORTHANC_SENDS files and
    the 8 MiB image uploaded to Orthanc (POST /instances) and stored to
    siren (POST /modalities/siren/store, synchronous). Proves: Orthanc's
    job reports every instance sent and none failed; siren serve's
    directory holds exactly that many files with exactly those SOP
    Instance UIDs; the large image's pixels are the ones uploaded; each
    file's (0002,0102) provenance JSON names site "orthanc", transport
    tls, calling AE ORTHANC, called AE SIREN, TLS 1.2 or 1.3, Orthanc's
    certificate (subject CN, serial, SPKI SHA-256); siren logs one
    store.ok site=orthanc per instance and no security.alert."""
    orthanc, pki = ctx["orthanc"], ctx["pki"]
    server = SirenServer(checks, ctx["processes"], ctx["siren"], pki,
                         ctx["work"], "orthanc-sends",
                         [f"orthanc|cn:{ORTHANC_CN}|{ORTHANC_AET}"])
    ctx["servers"].append(server)
    names = ORTHANC_SENDS + (LARGE_NAME,)
    sent = {name: ctx["corpus"][name] for name in names}
    ids = [orthanc.upload(f.path) for f in sent.values()]
    declare_siren(orthanc, server)
    started = time.monotonic()
    status, answer = orthanc_store(orthanc, ids)
    checks.count("Orthanc's store job, seconds",
                 round(time.monotonic() - started, 2))
    checks.expect(status == 200 and isinstance(answer, dict) and
                  answer.get("InstancesCount") == len(ids) and
                  answer.get("FailedInstancesCount") == 0,
                  f"Orthanc's store to siren: HTTP {status}: {answer} "
                  f"(Orthanc log {orthanc.log_path}, siren log "
                  f"{server.log_path})")
    arrivals = server.arrivals()
    checks.expect(len(arrivals) == len(sent),
                  f"siren serve stored {len(arrivals)} files, Orthanc sent "
                  f"{len(sent)}")
    expected_uids = {f.sop_instance: f for f in sent.values()}
    received = {}
    for path in arrivals:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(path, stop_before_pixels=True)
        received[str(dataset.SOPInstanceUID)] = path
    checks.expect(set(received) == set(expected_uids),
                  f"SOP Instance UIDs differ: missing "
                  f"{sorted(set(expected_uids) - set(received))}, "
                  f"unexpected {sorted(set(received) - set(expected_uids))}")
    large = sent[LARGE_NAME]
    if large.sop_instance in received:
        checks.expect(pixel_bytes(received[large.sop_instance]) ==
                      pixel_bytes(large.path),
                      "the 8 MiB image's pixels siren stored differ from "
                      "the ones uploaded to Orthanc")
    check_provenance(checks, ctx, server, arrivals, ("TLSv1.2", "TLSv1.3"))
    store_ok = [l for l in server.log_lines("store.ok")
                if " site=orthanc " in l]
    checks.expect(len(store_ok) == len(sent),
                  f"siren logged {len(store_ok)} store.ok site=orthanc, "
                  f"expected {len(sent)}")
    alerts = server.log_lines("security.alert")
    checks.expect(not alerts, f"siren logged security alerts: {alerts[:3]}")
    checks.count("instances Orthanc sent and siren stored", len(arrivals))
    server.stop()
    ctx["servers"].remove(server)


def check_provenance(checks, ctx, server, arrivals, protocols,
                     cipher_pattern=None):
    """The (0002,0102) JSON of every arrival says who sent it."""
    cert = ctx["pki"].orthanc_cert
    expected = {"site": "orthanc", "transport": "tls",
                "calling_ae": ORTHANC_AET, "called_ae": SIREN_AET,
                "cert_serial": serial_hex(cert),
                "cert_spki_sha256": spki_sha256(cert)}
    for path in arrivals:
        name = os.path.basename(path)
        try:
            info = provenance(path)
        except ValueError as error:
            checks.fail(f"{name}: (0002,0102) is not JSON: {error}")
            continue
        if not checks.expect(info, f"{name}: no (0002,0102) provenance"):
            continue
        for key, value in expected.items():
            checks.expect(str(info.get(key, "")).upper() == value.upper(),
                          f"{name}: provenance {key}={info.get(key)!r}, "
                          f"expected {value!r}")
        checks.expect(f"CN={ORTHANC_CN}" in info.get("cert_subject", ""),
                      f"{name}: provenance cert_subject "
                      f"{info.get('cert_subject')!r} lacks CN={ORTHANC_CN}")
        checks.expect(info.get("tls_protocol") in protocols,
                      f"{name}: provenance tls_protocol "
                      f"{info.get('tls_protocol')!r}, expected one of "
                      f"{protocols}")
        if cipher_pattern:
            checks.expect(re.fullmatch(cipher_pattern,
                                       info.get("tls_cipher", "")),
                          f"{name}: provenance tls_cipher "
                          f"{info.get('tls_cipher')!r} does not match "
                          f"{cipher_pattern}")
        ctx.setdefault("negotiated", collections.Counter())[
            (server.log_path.rsplit("/", 1)[-1], info.get("tls_protocol"),
             info.get("tls_cipher"))] += 1


# ---------------------------------------------------------------------------
# Scenario 5: Orthanc sends to the other profiles
# ---------------------------------------------------------------------------

# Profile: (protocols, cipher pattern) the provenance must show.
PROFILE_EXPECTATIONS = {
    "modified-bcp195": (("TLSv1.2", "TLSv1.3"),
                        r"(TLS_AES_(128|256)_GCM_SHA(256|384)|"
                        r"(ECDHE|DHE)-(RSA|ECDSA)-AES(128|256)-GCM-"
                        r"SHA(256|384))"),
    "tls13": (("TLSv1.3",), r"TLS_(AES_(128|256)_GCM_SHA(256|384)|"
                            r"CHACHA20_POLY1305_SHA256)"),
}


def scenario_orthanc_sends_profiles(checks, ctx):
    """`siren serve --tls-profile modified-bcp195`, then tls13, each
    receiving two instances (CT_small, MR_small) from Orthanc. Proves:
    Orthanc (DCMTK) can use each profile; the files arrive with the
    right UIDs; the provenance shows a protocol and a cipher the profile
    allows (modified-bcp195: AES-GCM only; tls13: TLS 1.3)."""
    orthanc = ctx["orthanc"]
    names = ("test_files/CT_small.dcm", "test_files/MR_small.dcm")
    ids = [orthanc.upload(ctx["corpus"][n].path) for n in names]
    uids = {ctx["corpus"][n].sop_instance for n in names}
    for profile, (protocols, cipher) in PROFILE_EXPECTATIONS.items():
        server = SirenServer(checks, ctx["processes"], ctx["siren"],
                             ctx["pki"], ctx["work"], f"profile-{profile}",
                             [f"orthanc|cn:{ORTHANC_CN}|{ORTHANC_AET}"],
                             profile=profile)
        ctx["servers"].append(server)
        declare_siren(orthanc, server)
        status, answer = orthanc_store(orthanc, ids)
        checks.expect(status == 200 and isinstance(answer, dict) and
                      answer.get("FailedInstancesCount") == 0,
                      f"{profile}: Orthanc's store: HTTP {status}: {answer} "
                      f"(siren log {server.log_path})")
        arrivals = server.arrivals()
        got = set()
        for path in arrivals:
            got.add(str(pydicom.dcmread(path, stop_before_pixels=True)
                        .SOPInstanceUID))
        checks.expect(got == uids, f"{profile}: siren stored {sorted(got)}, "
                                   f"expected {sorted(uids)}")
        check_provenance(checks, ctx, server, arrivals, protocols, cipher)
        server.stop()
        ctx["servers"].remove(server)
    checks.count("profiles", len(PROFILE_EXPECTATIONS))


# ---------------------------------------------------------------------------
# Scenario 6: Orthanc is not the site it claims to be
# ---------------------------------------------------------------------------


def scenario_orthanc_not_the_site(checks, ctx):
    """`siren serve` where the certificate of the site with AE title
    ORTHANC is another one (cn:pacs.elsewhere.test), then where ORTHANC is
    no site's AE title (the site 'orthanc' has AE OTHERAE). Orthanc's
    store must fail in both; siren stores nothing and logs a
    security.alert that says why (the certificate is not the site's / the
    AE title belongs to no site), with Orthanc's certificate subject."""
    orthanc = ctx["orthanc"]
    ids = [orthanc.upload(ctx["corpus"]["test_files/CT_small.dcm"].path)]
    cases = [("certificate of another site",
              f"orthanc|cn:pacs.elsewhere.test|{ORTHANC_AET}",
              "certificate is not site orthanc's"),
             ("AE title of no site", f"orthanc|cn:{ORTHANC_CN}|OTHERAE",
              f"calling AE title {ORTHANC_AET} belongs to no site")]
    for label, site, reason in cases:
        server = SirenServer(checks, ctx["processes"], ctx["siren"],
                             ctx["pki"], ctx["work"],
                             "notsite-" + re.sub(r"\W+", "_", label), [site])
        ctx["servers"].append(server)
        declare_siren(orthanc, server)
        status, answer = orthanc_store(orthanc, ids)
        checks.expect(status != 200 or (isinstance(answer, dict) and
                                        answer.get("FailedInstancesCount")),
                      f"{label}: Orthanc's store succeeded: {answer}")
        checks.expect(not server.arrivals(), f"{label}: siren stored "
                                             f"{server.arrivals()}")
        alerts = server.log_lines("security.alert")
        checks.expect(any(reason in line and f"CN={ORTHANC_CN}" in line
                          for line in alerts),
                      f"{label}: no security.alert saying '{reason}' with "
                      f"Orthanc's subject; siren logged: "
                      f"{server.log_text().strip()[-600:]}")
        server.stop()
        ctx["servers"].remove(server)
    checks.count("refusals", len(cases))


# ---------------------------------------------------------------------------
# Scenario 7: an Orthanc that speaks TLS 1.2 only
# ---------------------------------------------------------------------------

# OpenSSL's system-wide default for every SSL_CTX of the process: Orthanc
# (DCMTK) sets no maximum of its own, so this caps it at TLS 1.2 (both as
# SCP and as SCU). Orthanc 1.10 has no setting for it.
TLS12_ONLY_OPENSSL_CONF = """\
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MaxProtocol = TLSv1.2
"""

# Profile: the cipher siren must negotiate with a TLS 1.2 peer, or None
# if the profile must refuse it.
TLS12_CIPHERS = {
    "bcp195": r"ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM-SHA(256|384)|"
              r"CHACHA20-POLY1305)",
    "modified-bcp195": r"(ECDHE|DHE)-(RSA|ECDSA)-AES(128|256)-GCM-"
                       r"SHA(256|384)",
    "tls13": None,
}


def scenario_tls12_orthanc(checks, ctx):
    """A second TLS Orthanc, its OpenSSL capped at TLS 1.2 (OPENSSL_CONF
    MaxProtocol; the others negotiate TLS 1.3), for each of SIREN's
    profiles. Proves, with `siren send --tls --tls-profile P` to it:
    bcp195 and modified-bcp195 store a new instance that Orthanc then
    holds; tls13 fails (exit status 1, a TLS handshake error) and Orthanc
    holds nothing new. And with Orthanc storing two instances into
    `siren serve --tls-profile P`: bcp195 and modified-bcp195 receive
    them, the provenance says TLSv1.2 and a cipher the profile allows
    (bcp195: ECDHE with AES-GCM or ChaCha20-Poly1305; modified-bcp195:
    ECDHE or DHE with AES-GCM); tls13 stores nothing and logs the
    refused handshake."""
    orthanc = ctx["orthanc12"]
    pki = ctx["pki"]
    template = ctx["corpus"]["test_files/CT_small.dcm"].path
    for profile, cipher in TLS12_CIPHERS.items():
        path = os.path.join(ctx["work"], "single", f"tls12-{profile}.dcm")
        uid = new_instance(template, path)
        before = orthanc.instances()
        result = siren_send(ctx["siren"], orthanc.dicom_port, [path], {path},
                            "--tls", "--tls-ca", pki.path("ca-bundle.pem"),
                            *pki.site_a_options(), "--tls-profile", profile)
        text = result.stdout + result.stderr
        check_ran(checks, f"siren send ({profile})", result.exit_status,
                  text)
        if cipher:
            checks.expect(result.exit_status == 0 and
                          result.stored() == [path] and orthanc.lookup(uid),
                          f"siren send --tls-profile {profile} to a TLS 1.2 "
                          f"Orthanc: exit status {result.exit_status}, "
                          f"Orthanc holds it: {bool(orthanc.lookup(uid))}: "
                          f"{text.strip()}")
        else:
            checks.expect(result.exit_status == 1 and not result.stored()
                          and "TLS handshake" in text,
                          f"siren send --tls-profile {profile} to a TLS 1.2 "
                          f"Orthanc: expected exit status 1 and a TLS "
                          f"handshake error, got {result.exit_status}: "
                          f"{text.strip()}")
            checks.expect(orthanc.instances() == before,
                          f"{profile}: Orthanc holds something new")
    names = ("test_files/CT_small.dcm", "test_files/MR_small.dcm")
    ids = [orthanc.upload(ctx["corpus"][n].path) for n in names]
    uids = {ctx["corpus"][n].sop_instance for n in names}
    for profile, cipher in TLS12_CIPHERS.items():
        server = SirenServer(checks, ctx["processes"], ctx["siren"], pki,
                             ctx["work"], f"tls12-{profile}",
                             [f"orthanc|cn:{ORTHANC_CN}|{ORTHANC_AET}"],
                             profile=profile)
        ctx["servers"].append(server)
        declare_siren(orthanc, server)
        status, answer = orthanc_store(orthanc, ids)
        arrivals = server.arrivals()
        if cipher:
            checks.expect(status == 200 and isinstance(answer, dict) and
                          answer.get("FailedInstancesCount") == 0,
                          f"{profile}: TLS 1.2 Orthanc's store: HTTP "
                          f"{status}: {answer} (siren log "
                          f"{server.log_path})")
            got = {str(pydicom.dcmread(p, stop_before_pixels=True)
                       .SOPInstanceUID) for p in arrivals}
            checks.expect(got == uids, f"{profile}: siren stored "
                                       f"{sorted(got)}, expected "
                                       f"{sorted(uids)}")
            check_provenance(checks, ctx, server, arrivals, ("TLSv1.2",),
                             cipher)
        else:
            checks.expect(status != 200 or (isinstance(answer, dict) and
                                            answer.get(
                                                "FailedInstancesCount")),
                          f"{profile}: the TLS 1.2 Orthanc's store "
                          f"succeeded: {answer}")
            checks.expect(not arrivals, f"{profile}: siren stored "
                                        f"{arrivals}")
            refused = [line for line in server.log_text().splitlines()
                       if "TLS handshake failed" in line]
            checks.expect(refused, f"{profile}: siren logged no refused "
                                   f"handshake: "
                                   f"{server.log_text().strip()[-400:]}")
        server.stop()
        ctx["servers"].remove(server)
    checks.count("profiles", len(TLS12_CIPHERS))


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

SCENARIOS = [
    ("send_corpus_to_orthanc", scenario_send_corpus_to_orthanc),
    ("send_profiles_and_names", scenario_send_profiles_and_names),
    ("send_to_untrusted", scenario_send_to_untrusted),
    ("orthanc_sends_to_siren", scenario_orthanc_sends_to_siren),
    ("orthanc_sends_profiles", scenario_orthanc_sends_profiles),
    ("orthanc_not_the_site", scenario_orthanc_not_the_site),
    ("tls12_orthanc", scenario_tls12_orthanc),
]


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True, help="build/gateway/siren")
    parser.add_argument("--pki-script", required=True,
                        help="tests/integration/pki.py")
    parser.add_argument("--data", required=True,
                        help="pydicom's data folder (test_files, "
                             "charset_files)")
    parser.add_argument("--work", required=True,
                        help="a scratch folder (emptied first)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only this scenario (repeatable)")
    return parser.parse_args()


def missing_prerequisites(args):
    missing = []
    if not os.access(args.siren, os.X_OK):
        missing.append(f"{args.siren} (not an executable)")
    if not os.path.isfile(args.pki_script):
        missing.append(f"{args.pki_script} (pki.py)")
    for tool in ("Orthanc", "openssl"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (Debian packages orthanc, openssl)")
    for name in MUST_BE_STORED:
        if not os.path.isfile(os.path.join(args.data, name)):
            missing.append(f"{os.path.join(args.data, name)} (Debian "
                           f"package python3-pydicom)")
    return missing


def stop_on_signal(signo, frame):
    raise SystemExit(f"tls_orthanc: stopped by signal {signo}")


def main():
    args = parse_arguments()
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    warnings.filterwarnings("ignore", module="pydicom")
    missing = missing_prerequisites(args)
    if missing:
        print("tls_orthanc: cannot run, missing:\n  " + "\n  ".join(missing))
        return 2
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    checks = Checks()
    processes = Processes()
    started = time.monotonic()
    ctx = {"siren": os.path.abspath(args.siren), "work": work,
           "processes": processes, "servers": []}
    def stop_servers():
        for server in ctx["servers"]:
            server.stop()
        ctx["servers"].clear()

    def body():
        checks.scenario = "setup"
        ctx["pki"] = Pki(os.path.abspath(args.pki_script), work)
        checks.count("PKI, seconds", round(time.monotonic() - started, 1))
        ctx["corpus_root"], ctx["corpus"] = stage_corpus(args.data, work)
        ctx["orthanc"] = Orthanc(checks, processes, work, "orthanc-tls",
                                 ctx["pki"])
        ctx["plain"] = Orthanc(checks, processes, work, "orthanc-plain")
        tls12_conf = os.path.join(work, "openssl-tls12-only.cnf")
        with open(tls12_conf, "w") as stream:
            stream.write(TLS12_ONLY_OPENSSL_CONF)
        ctx["orthanc12"] = Orthanc(checks, processes, work, "orthanc-tls12",
                                   ctx["pki"], openssl_conf=tls12_conf)
        for key in ("orthanc", "plain", "orthanc12"):
            ctx[key].wait_started()
        run_scenarios(checks, ctx, SCENARIOS, args.only,
                      after_each=stop_servers)
        checks.scenario = "teardown"
        for key in ("orthanc", "plain", "orthanc12"):
            ctx.pop(key).stop()

    return run_reported(checks, processes, started, body,
                        lambda seconds: print_summary(checks, ctx, seconds))


def print_summary(checks, ctx, seconds):
    print(f"\n== summary ({seconds:.1f} s)")
    for what, number in checks.counts.items():
        print(f"  {what}: {number}")
    for (log, protocol, cipher), number in sorted(
            ctx.get("negotiated", {}).items()):
        print(f"  negotiated with Orthanc as sender ({log}): {protocol} "
              f"{cipher}: {number} instance(s)")
    if checks.failures:
        print(f"\n{len(checks.failures)} FAILED checks:")
        for failure in checks.failures:
            print(f"  {failure}")
    else:
        print("\nall checks passed")


if __name__ == "__main__":
    sys.exit(main())
