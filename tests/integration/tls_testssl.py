#!/usr/bin/python3
"""tls_testssl.py - testssl.sh (Debian package) against siren serve's
DICOM-TLS listener, offline, on 127.0.0.1.

Each scan is one `testssl` run against its own `siren serve` (TLS listener
only, a certificate of the test PKI, sites-ca, CRLs, one site), with
machine-readable output (--jsonfile-pretty) that the checks read.
Scenarios, one function each (their docstrings say what each proves):

  1. scan_bcp195           the default profile as any client sees it
                           (no client certificate): protocols, every
                           cipher of every protocol, forward secrecy,
                           server preferences, the vulnerability checks
                           but two (run in 2).
  2. scan_bcp195_as_site   the checks that need a completed handshake
                           (renegotiation, BREACH, session resumption,
                           server defaults), with site-a's certificate;
                           and no session tickets, no resumption.
  3. scan_modified_bcp195  --tls-profile modified-bcp195: AES-GCM only,
                           no ChaCha20, ECDHE on NIST curves or DHE of
                           2048 bits or more.
  4. scan_tls13            --tls-profile tls13: TLS 1.3 only (as
                           site-a: see its docstring).

Our listener requires a client certificate and testssl.sh 3.0 cannot
present one. It does not need to for most checks: protocols and ciphers
are decided by the ServerHello, and the vulnerability probes work on the
server's first flight. The checks that need a completed handshake
(client-initiated renegotiation, session resumption) would fail the
handshake and, for renegotiation, report "not vulnerable" without having
tried, or, when testssl notices the certificate request (a race on TLS
1.3), report it "prevents this from being tested"; so scenario 2 gives
testssl an openssl wrapper (--openssl) that adds site-a's certificate
and key to its `s_client` connections to the listener, and checks in
siren's log that handshakes completed. Scenario 4 runs so too: testssl
cannot even start against a TLS 1.3-only server that requires a
certificate it cannot give.

Offline: testssl gets 127.0.0.1:PORT (no name to resolve), -n none (no
DNS), no --phone-out (no CRL/OCSP fetches), NXCONNECT=127.0.0.1:0
(its probes of the local openssl connect there instead of resolving
"invalid."). When strace is installed, every testssl run is traced
(connect calls) and must connect to nothing but the listener,
127.0.0.1:0, and localhost:4433 (`openssl s_client` without -connect,
which testssl runs to learn what the local openssl supports; nothing is
sent), plus local AF_UNIX sockets (nscd).

The listener certificate: issued for this test by the PKI's intermediate
like pki.py's server.pem (CN=localhost, DNS:localhost, IP:127.0.0.1,
serverAuth), plus a CRL distribution point, as a production certificate
has; without one testssl reports cert_revocation HIGH ("Neither CRL nor
OCSP URI provided"), a finding about the certificate, not the listener.
testssl trusts the PKI's root (--add-ca). No finding is excluded.

Usage:
  /usr/bin/python3 tls_testssl.py --siren build/gateway/siren \\
      --pki-script tests/integration/pki.py --work /tmp/testssl

Exit status: 0 every check passed, 1 a check failed (each failure is
printed with its scenario), 2 the test could not run (testssl or openssl
missing). Every process the test starts is stopped before it exits.
About two minutes (testssl's own pace; scans run two at a time).
"""

import argparse
import collections
import concurrent.futures
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

# Set when the test is being stopped (SIGTERM/SIGINT).
STOPPING = threading.Event()

SIREN_AET = "SIREN"
SITE_AET = "SITEA"
STARTUP_TIMEOUT_S = 30
TESTSSL_TIMEOUT_S = 420
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer",
                     "UndefinedBehaviorSanitizer", "runtime error:")

# testssl severities that fail the test wherever they appear.
FAILING_SEVERITIES = ("MEDIUM", "HIGH", "CRITICAL")
# A check testssl could not do ("WARN") or a testssl bug ("DEBUG"), or a
# scan that could not run ("FATAL"): fails too, the finding is unknown.
UNKNOWN_SEVERITIES = ("WARN", "DEBUG", "FATAL")

PROTOCOL_IDS = ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3")

# Cipher suites (IANA names) each profile may offer.
TLS13_AEAD = r"TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|" \
             r"CHACHA20_POLY1305_SHA256)"
BCP195_TLS12 = r"TLS_ECDHE_(RSA|ECDSA)_WITH_(AES_(128|256)_GCM_SHA(256|384)" \
               r"|CHACHA20_POLY1305_SHA256)"
MODIFIED_TLS13 = r"TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384)"
MODIFIED_TLS12 = r"TLS_(ECDHE_(RSA|ECDSA)|DHE_RSA)_WITH_AES_(128|256)_GCM_" \
                 r"SHA(256|384)"
NIST_CURVES = {"prime256v1", "secp384r1", "secp521r1"}

LISTENER_CERT_CONFIG = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
O = SIREN Test
CN = localhost
[ ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
crlDistributionPoints = URI:http://crl.siren.test/inter.crl
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

# ---------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------


class Checks:
    """Failures (with the scenario they belong to), notes and numbers for
    the summary. Scenarios run in threads: each has its own Scope."""

    def __init__(self):
        self.lock = threading.Lock()
        self.failures = []
        self.counts = collections.OrderedDict()
        self.findings = collections.OrderedDict()   # scenario: [lines]

    def scope(self, scenario):
        return Scope(self, scenario)


class Scope:
    def __init__(self, checks, scenario):
        self.checks = checks
        self.scenario = scenario

    def fail(self, what):
        line = f"[{self.scenario}] {what}"
        with self.checks.lock:
            self.checks.failures.append(line)
        print("FAIL " + line, flush=True)

    def expect(self, condition, what):
        if not condition:
            self.fail(what)
        return bool(condition)

    def count(self, what, number):
        with self.checks.lock:
            self.checks.counts[f"{self.scenario}: {what}"] = number

    def findings(self, lines):
        with self.checks.lock:
            self.checks.findings[self.scenario] = lines


# ---------------------------------------------------------------------------
# Processes and tools
# ---------------------------------------------------------------------------


class Processes:
    """Every long-running process the test starts, stopped at the end.
    testssl runs in a process group of its own (it forks many openssl and
    background jobs), stopped as a whole; siren serve stays in ours."""

    def __init__(self):
        self.lock = threading.RLock()   # the signal handler may stop all
        self.running = []
        self.groups = set()

    def start(self, command, log_path, env=None, cwd=None, group=False):
        if STOPPING.is_set():
            raise RuntimeError("the test is being stopped")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, stdout=log,
                                       stderr=subprocess.STDOUT, env=env,
                                       cwd=cwd, stdin=subprocess.DEVNULL,
                                       start_new_session=group)
        with self.lock:
            self.running.append(process)
            if group:
                self.groups.add(process.pid)
        return process

    def signal(self, process, signo):
        try:
            if process.pid in self.groups:
                os.killpg(process.pid, signo)
            else:
                process.send_signal(signo)
        except ProcessLookupError:
            pass

    def stop(self, process, timeout_s=15):
        """SIGTERM (to the group, if it has one), then SIGKILL after
        timeout_s; returns the exit status."""
        if process.poll() is None:
            self.signal(process, signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.signal(process, signal.SIGKILL)
                process.wait()
        with self.lock:
            if process in self.running:
                self.running.remove(process)
            self.groups.discard(process.pid)
        return process.returncode

    def stop_all(self):
        with self.lock:
            running = list(self.running)
        for process in running:
            self.stop(process, timeout_s=5)


def wait_until(predicate, timeout_s, interval_s=0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def openssl(*args):
    done = subprocess.run(["openssl", *args], capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: "
                           f"{done.stderr.decode(errors='replace')}")
    return done.stdout


def sanitizer_report(text):
    for line in text.splitlines():
        if any(marker in line for marker in SANITIZER_MARKERS):
            return line.strip()
    return None


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------


class Pki:
    """The test PKI (pki.py) and the listener certificate (see the module
    docstring)."""

    def __init__(self, pki_script, work):
        self.dir = os.path.join(work, "pki")
        done = subprocess.run([sys.executable, pki_script, self.dir],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pki.py failed: {done.stdout}{done.stderr}")
        config = self.path("listener.cnf")
        with open(config, "w") as stream:
            stream.write(LISTENER_CERT_CONFIG)
        key, csr = self.path("listener.key"), self.path("listener.csr")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                "rsa_keygen_bits:2048", "-out", key)
        os.chmod(key, 0o600)
        openssl("req", "-new", "-key", key, "-config", config, "-out", csr)
        serial = "0x1" + secrets.token_hex(16)[1:]
        openssl("x509", "-req", "-in", csr, "-CA", self.path("inter.pem"),
                "-CAkey", self.path("inter.key"), "-set_serial", serial,
                "-days", "365", "-sha256", "-extfile", config,
                "-extensions", "ext", "-out", self.path("listener.pem"))
        os.remove(csr)
        with open(self.path("listener-chain.pem"), "w") as target:
            for part in ("listener.pem", "inter.pem"):
                with open(self.path(part)) as source:
                    target.write(source.read())

    def path(self, name):
        return os.path.join(self.dir, name)


# ---------------------------------------------------------------------------
# siren serve
# ---------------------------------------------------------------------------


class SirenServer:
    """`siren serve` with only its DICOM-TLS listener on 127.0.0.1 (port
    of its choosing), the listener certificate, sites-ca, CRLs and site
    'site-a|cn:site-a.example.org|SITEA'."""

    def __init__(self, scope, processes, siren, pki, work, name, profile):
        self.scope = scope
        self.processes = processes
        self.dir = os.path.join(work, name + "-in")
        os.makedirs(self.dir)
        self.log_path = os.path.join(work, name + "-serve.log")
        command = [siren, "serve", "--dir", self.dir, "--bind", "127.0.0.1",
                   "--aet", SIREN_AET, "--tls-port", "0",
                   "--tls-profile", profile,
                   "--tls-cert", pki.path("listener-chain.pem"),
                   "--tls-key", pki.path("listener.key"),
                   "--sites-ca", pki.path("ca-bundle.pem"),
                   "--crl", pki.path("crls.pem"),
                   "--site", f"site-a|cn:site-a.example.org|{SITE_AET}"]
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

    def events(self):
        """{event name: number of log lines}."""
        counter = collections.Counter()
        for line in self.log_text().splitlines():
            parts = line.split(" ", 3)
            if len(parts) >= 3:
                counter[parts[2]] += 1
        return counter

    def stop(self):
        """SIGTERM; siren serve must exit 0, without a sanitizer report."""
        status = self.processes.stop(self.process)
        self.scope.expect(status == 0, f"siren serve exited with status "
                                       f"{status}; log {self.log_path}")
        report = sanitizer_report(self.log_text())
        self.scope.expect(report is None, f"siren serve: {report} (see "
                                          f"{self.log_path})")


def check_still_serves(scope, siren, pki, server):
    """After the scan the listener still serves a site: `siren echo
    --tls` with site-a's certificate gets C-ECHO success."""
    done = subprocess.run(
        [siren, "echo", "--aet", SITE_AET, "--call", SIREN_AET, "--tls",
         "--tls-ca", pki.path("ca-bundle.pem"),
         "--tls-cert", pki.path("site-a-chain.pem"),
         "--tls-key", pki.path("site-a.key"), "--tls-server-name",
         "localhost", "127.0.0.1", str(server.port)],
        capture_output=True, text=True, timeout=60)
    scope.expect(done.returncode == 0,
                 f"after the scan, siren echo --tls as site-a failed (exit "
                 f"status {done.returncode}): "
                 f"{(done.stdout + done.stderr).strip()}")


# ---------------------------------------------------------------------------
# testssl.sh
# ---------------------------------------------------------------------------

SITE_OPENSSL_WRAPPER = """\
#!/bin/sh
# openssl for testssl.sh: its s_client connections to the listener present
# site-a's certificate (testssl.sh 3.0 has no option for it); everything
# else is openssl itself.
if [ "$1" = s_client ]; then
    for arg in "$@"; do
        if [ "$arg" = "{target}" ]; then
            shift
            exec "{openssl}" s_client -cert "{cert}" -key "{key}" "$@"
        fi
    done
fi
exec "{openssl}" "$@"
"""


class Scan:
    """One testssl run and its JSON findings."""

    def __init__(self, scope, processes, work, name, port, options,
                 add_ca, openssl_path=None):
        self.scope = scope
        self.name = name
        self.target = f"127.0.0.1:{port}"
        self.port = port
        self.json_path = os.path.join(work, f"{name}-testssl.json")
        self.log_path = os.path.join(work, f"{name}-testssl.log")
        self.trace_path = os.path.join(work, f"{name}-connects.strace")
        command = ["testssl", "--quiet", "--color", "0", "--warnings",
                   "batch", "-n", "none", "--connect-timeout", "10",
                   "--openssl-timeout", "10", "--add-ca", add_ca,
                   "--jsonfile-pretty", self.json_path]
        if openssl_path:
            command += ["--openssl", openssl_path]
        command += [*options, self.target]
        tracer = strace_command()
        self.traced = tracer is not None
        if tracer:
            command = [*tracer, "-o", self.trace_path, *command]
        env = dict(os.environ)
        env["NXCONNECT"] = "127.0.0.1:0"
        started = time.monotonic()
        process = processes.start(command, self.log_path, env=env, cwd=work,
                                  group=True)
        try:
            process.wait(timeout=TESTSSL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            scope.fail(f"testssl did not finish within {TESTSSL_TIMEOUT_S} "
                       f"s (log {self.log_path})")
        self.status = processes.stop(process)
        self.seconds = round(time.monotonic() - started, 1)
        self.sections = collections.OrderedDict()   # section: [finding]
        self.client_problems = []
        self.load()

    def load(self):
        """Reads the JSON testssl wrote; a missing or broken file, or a
        testssl error exit (242 and up), fails the scenario."""
        self.scope.expect(self.status is not None and 0 <= self.status < 242,
                          f"testssl exited with status {self.status} (log "
                          f"{self.log_path})")
        try:
            with open(self.json_path) as stream:
                document = json.load(stream)
        except (OSError, ValueError) as error:
            self.scope.fail(f"no testssl JSON ({error}); log "
                            f"{self.log_path}")
            return
        for key, value in document.items():
            if key.startswith("clientProblem"):
                self.client_problems += value if isinstance(value, list) \
                    else [value]
        results = document.get("scanResult") or []
        if not self.scope.expect(len(results) == 1,
                                 f"testssl scanned {len(results)} targets, "
                                 f"expected 1"):
            return
        result = results[0]
        self.scope.expect(str(result.get("ip")) == "127.0.0.1" and
                          str(result.get("port")) == str(self.port),
                          f"testssl scanned {result.get('ip')}:"
                          f"{result.get('port')}, not {self.target}")
        for section, value in result.items():
            if isinstance(value, list):
                self.sections[section] = value

    def all_findings(self):
        for section, findings in self.sections.items():
            for finding in findings:
                yield section, finding

    def find(self, finding_id):
        for _, finding in self.all_findings():
            if finding.get("id") == finding_id:
                return finding
        return None

    def text(self, finding_id):
        finding = self.find(finding_id)
        return finding.get("finding", "") if finding else None

    def ciphers(self):
        """[(protocol id, IANA name, OpenSSL name, key exchange,
        encryption)] from the cipherTests section (-E)."""
        offered = []
        for finding in self.sections.get("cipherTests", []):
            match = re.match(r"cipher-(\w+?)_x[0-9a-f]+$",
                             finding.get("id", ""))
            tokens = finding.get("finding", "").split()
            if not match or len(tokens) < 6:
                self.scope.fail(f"cannot read testssl cipher finding "
                                f"{finding}")
                continue
            protocol = match.group(1)               # tls1_2, tls1_3, ...
            start = 3 if tokens[0] == "TLS" else 2  # "TLS 1.2" / "SSLv3"
            openssl_name = tokens[start]
            iana, encryption = tokens[-1], tokens[-3]
            key_exchange = " ".join(tokens[start + 1:-3])
            offered.append((protocol, iana, openssl_name, key_exchange,
                            encryption))
        return offered


def summarize_findings(scope, scan):
    """Every finding of the scan, one line each, for the report."""
    lines = [f"{scan.name}: testssl {scan.seconds} s, exit status "
             f"{scan.status}"]
    for section, finding in scan.all_findings():
        if finding.get("id") == "cert":
            continue  # the PEM text
        lines.append(f"  {section}/{finding.get('id')} "
                     f"[{finding.get('severity')}] {finding.get('finding')}")
    for problem in scan.client_problems:
        lines.append(f"  (testssl's own client) {problem.get('id')} "
                     f"[{problem.get('severity')}] {problem.get('finding')}")
    scope.findings(lines)


# What a finding that testssl could not check means here, when known.
UNKNOWN_HINTS = {
    "sessionresumption_ticket": " (testssl caught a TLS 1.3 session ticket "
                                "on one connection, missed it on the next: "
                                "see the session ticket check)",
}


def check_severities(scope, scan):
    """No finding of MEDIUM, HIGH or CRITICAL severity, and no check that
    testssl could not do (WARN/DEBUG/FATAL), in any section."""
    for section, finding in scan.all_findings():
        severity = finding.get("severity", "")
        scope.expect(severity not in FAILING_SEVERITIES,
                     f"testssl finding {section}/{finding.get('id')} "
                     f"[{severity}]: {finding.get('finding')}")
        scope.expect(severity not in UNKNOWN_SEVERITIES,
                     f"testssl could not check {section}/"
                     f"{finding.get('id')} [{severity}]: "
                     f"{finding.get('finding')}"
                     f"{UNKNOWN_HINTS.get(finding.get('id'), '')}")


def check_protocols(scope, scan, offered):
    """Exactly the protocols in `offered` (testssl ids) are offered."""
    for protocol in PROTOCOL_IDS:
        text = scan.text(protocol)
        if not scope.expect(text is not None, f"testssl said nothing about "
                                              f"{protocol}"):
            continue
        if protocol in offered:
            scope.expect(text.startswith("offered"),
                         f"{protocol} must be offered, testssl says: {text}")
        else:
            scope.expect(text.startswith("not offered"),
                         f"{protocol} must not be offered, testssl says: "
                         f"{text}")


def check_ciphers(scope, scan, allowed):
    """Every cipher offered matches allowed[protocol] (a regular
    expression of IANA names), each protocol in allowed offers at least
    one, and none is offered for another protocol; the forward-secret
    list (-f) names the same suites. Returns the suites."""
    offered = scan.ciphers()
    by_protocol = collections.defaultdict(list)
    for protocol, iana, openssl_name, key_exchange, encryption in offered:
        by_protocol[protocol].append(iana)
        pattern = allowed.get(protocol)
        scope.expect(pattern and re.fullmatch(pattern, iana),
                     f"{protocol} offers {iana} ({openssl_name}, "
                     f"{key_exchange}, {encryption}): not allowed")
        match = re.fullmatch(r"DH (\d+)", key_exchange)
        if match:
            scope.expect(int(match.group(1)) >= 2048,
                         f"{iana}: {key_exchange}, less than 2048 bits")
    for protocol in allowed:
        scope.expect(by_protocol.get(protocol), f"{protocol}: no cipher "
                                                f"offered")
    pfs = scan.text("PFS_ciphers")
    if scope.expect(pfs is not None, "testssl gave no PFS_ciphers"):
        scope.expect(set(pfs.split()) == {o[2] for o in offered},
                     f"forward-secret suites {sorted(pfs.split())} differ "
                     f"from those offered "
                     f"{sorted({o[2] for o in offered})}")
    return offered


def check_offline(scope, scan):
    """The traced testssl run connected only where it may (see the module
    docstring)."""
    if not scan.traced:
        scope.count("connect() calls traced", "no (strace is not installed "
                                              "or may not trace here)")
        return
    allowed = {("127.0.0.1", scan.port), ("127.0.0.1", 0),
               ("127.0.0.1", 4433), ("::1", 4433)}
    seen = collections.Counter()
    try:
        with open(scan.trace_path, encoding="latin-1") as stream:
            trace = stream.read()
    except OSError as error:
        scope.fail(f"no strace output: {error}")
        return
    for line in trace.splitlines():
        if " connect(" not in line:
            continue
        inet = re.search(r"sin_port=htons\((\d+)\), "
                         r"sin_addr=inet_addr\(\"([^\"]+)\"\)", line)
        inet6 = re.search(r"sin6_port=htons\((\d+)\).*inet_pton\(AF_INET6, "
                          r"\"([^\"]+)\"", line)
        unix = re.search(r"sa_family=AF_UNIX, sun_path=\"([^\"]*)\"", line)
        if inet or inet6:
            port, address = (inet or inet6).groups()
            seen[(address, int(port))] += 1
        elif unix:
            seen[("unix", unix.group(1))] += 1
        elif "AF_UNSPEC" not in line:
            seen[("other", line.strip()[:120])] += 1
    for (address, port), number in seen.items():
        scope.expect((address, port) in allowed or address == "unix",
                     f"testssl connected to {address} {port} ({number} "
                     f"times; see {scan.trace_path})")
    listener = seen.pop(("127.0.0.1", scan.port), 0)
    scope.expect(listener > 0, f"the trace shows no connection to the "
                               f"listener ({scan.trace_path})")
    elsewhere = ", ".join(f"{address} {port}: {number}" for
                          (address, port), number in
                          sorted(seen.items(), key=str))
    scope.count("connect() calls traced", f"to the listener {listener}; "
                                          f"elsewhere: {elsewhere or 'none'}")


_STRACE = []


def strace_command():
    """strace tracing connect() in every process, with a seccomp filter
    where strace has one (far faster); None if strace is missing or may
    not trace here (ptrace forbidden)."""
    if not _STRACE:
        _STRACE.append(None)
        if shutil.which("strace"):
            base = ["strace", "-f", "-qq", "-e", "trace=connect", "-e",
                    "signal=none"]
            for candidate in (base[:3] + ["--seccomp-bpf"] + base[3:], base):
                done = subprocess.run([*candidate, "-o", os.devnull, "true"],
                                      capture_output=True)
                if done.returncode == 0:
                    _STRACE[0] = candidate
                    break
    return _STRACE[0]


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------


def run_scan(scope, ctx, name, profile, options, as_site=False,
             after_scan=None):
    """siren serve with the profile, testssl with options against it (as
    site-a if as_site), the common checks, after_scan(server) if given;
    returns (server log events, scan)."""
    pki, work = ctx["pki"], ctx["work"]
    server = SirenServer(scope, ctx["processes"], ctx["siren"], pki, work,
                         name, profile)
    try:
        wrapper = None
        if as_site:
            wrapper = os.path.join(work, f"{name}-openssl.sh")
            with open(wrapper, "w") as stream:
                stream.write(SITE_OPENSSL_WRAPPER.format(
                    target=f"127.0.0.1:{server.port}",
                    openssl=shutil.which("openssl"),
                    cert=pki.path("site-a-chain.pem"),
                    key=pki.path("site-a.key")))
            os.chmod(wrapper, 0o755)
        scan = Scan(scope, ctx["processes"], work, name, server.port,
                    options, pki.path("root.pem"), wrapper)
        scope.count("testssl seconds", scan.seconds)
        summarize_findings(scope, scan)
        check_severities(scope, scan)
        check_offline(scope, scan)
        check_still_serves(scope, ctx["siren"], pki, server)
        if after_scan:
            after_scan(server)
        events = server.events()
        scope.count("siren log events", dict(sorted(events.items())))
    finally:
        server.stop()
    return events, scan


# -U (every vulnerability check) but -R and -B, for the scan without a
# certificate: whether testssl notices that the server requires one is a
# race on TLS 1.3 (it sees the server's "certificate required" alert
# only if it reads it before its s_client exits), and when it does, it
# reports renegotiation and BREACH as "client x509-based authentication
# prevents this from being tested" (WARN). Both run in the scan as site-a
# instead, where handshakes complete.
VULNERABILITIES_ANYONE = ["-H", "-I", "-T", "-BB", "-C", "-O", "-Z", "-W",
                          "-A", "-L", "-F", "-J", "-D", "-4"]


def scenario_scan_bcp195(scope, ctx):
    """`siren serve` (profile bcp195) scanned with -p -E -f -P and the
    vulnerability checks of -U but renegotiation and BREACH (see
    VULNERABILITIES_ANYONE), without a client certificate, as anyone on
    the network can. Proves: SSLv2,
    SSLv3, TLS 1.0 and TLS 1.1 are not offered, TLS 1.2 and 1.3 are;
    every cipher offered is, in TLS 1.2, ECDHE with AES-GCM or
    ChaCha20-Poly1305, in TLS 1.3 one of its three AEAD suites, and the
    forward-secrecy list names exactly those; the server picks the
    cipher (cipher_order "server"); no finding of any section (the
    vulnerabilities: Heartbleed, CCS, Ticketbleed, ROBOT, CRIME, POODLE,
    fallback SCSV, SWEET32, FREAK, DROWN, LOGJAM, BEAST, LUCKY13, RC4)
    is MEDIUM, HIGH or CRITICAL, and none is a check
    testssl could not do; testssl connected only to the listener; the
    listener still serves site-a afterwards and siren serve exits 0."""
    _, scan = run_scan(scope, ctx, "bcp195", "bcp195",
                       ["-p", "-E", "-f", "-P", *VULNERABILITIES_ANYONE])
    check_protocols(scope, scan, ("TLS1_2", "TLS1_3"))
    offered = check_ciphers(scope, scan, {"tls1_2": BCP195_TLS12,
                                          "tls1_3": TLS13_AEAD})
    order = scan.text("cipher_order") or ""
    scope.expect(order.startswith("server"),
                 f"cipher order is not the server's: {order!r}")
    scope.count("suites offered", len(offered))


def scenario_scan_bcp195_as_site(scope, ctx):
    """`siren serve` (bcp195) scanned with -S -R -B, testssl's openssl
    presenting site-a's certificate (see the module docstring); then
    `openssl s_client` as site-a, TLS 1.3 and 1.2. Proves: handshakes
    completed (siren logged events that follow a handshake, not only
    refused handshakes); secure renegotiation (RFC 5746) is supported and
    client-initiated renegotiation is refused ("not vulnerable", tried,
    not timed out); BREACH is not applicable (testssl finds no HTTP); the
    certificate chain is trusted with the PKI's root; session resumption
    is not offered (testssl) and the listener sends no session ticket
    and resumes no session (s_client, see check_no_resumption); no
    finding is MEDIUM, HIGH or CRITICAL; testssl connected only to the
    listener."""
    events, scan = run_scan(
        scope, ctx, "bcp195-site", "bcp195", ["-S", "-R", "-B"],
        as_site=True, after_scan=lambda server: check_no_resumption(
            scope, ctx["pki"], server, ctx["work"]))
    after_handshake = events["assoc.failed"] + events["assoc.accepted"]
    scope.expect(after_handshake > 0,
                 f"no handshake completed with site-a's certificate: "
                 f"siren logged {dict(events)}")
    scope.expect(scan.text("secure_renego") == "supported",
                 f"secure_renego: {scan.text('secure_renego')!r}")
    scope.expect(scan.text("secure_client_renego") == "not vulnerable",
                 f"secure_client_renego: "
                 f"{scan.text('secure_client_renego')!r} (expected 'not "
                 f"vulnerable', tried)")
    trust = scan.text("cert_chain_of_trust") or ""
    scope.expect(trust.startswith("passed"),
                 f"cert_chain_of_trust: {trust!r}")
    scope.count("connections that completed the handshake",
                after_handshake)


def s_client_as_site(pki, port, options, linger_s=1.0):
    """`openssl s_client` to the listener with site-a's certificate; stdin
    stays open linger_s seconds, so that what the server sends after the
    handshake (TLS 1.3 session tickets) arrives. Returns its output."""
    process = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
         "-servername", "localhost", "-CAfile", pki.path("ca-bundle.pem"),
         "-cert", pki.path("site-a-chain.pem"), "-key",
         pki.path("site-a.key"), *options],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    time.sleep(linger_s)
    try:
        output, _ = process.communicate(b"", timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output.decode("latin-1")


def check_no_resumption(scope, pki, server, work):
    """Every connection is verified in full (tls/context.c turns tickets
    and the session cache off, so that no resumption outlives a
    revocation or a reload): with TLS 1.3 and with TLS 1.2, site-a's
    handshake completes, the listener sends no session ticket, and a
    second connection offering the saved session is not resumed."""
    for version, ticket_words in (("-tls1_3", "New Session Ticket"),
                                  ("-tls1_2", "TLS session ticket:")):
        session = os.path.join(work, f"session{version}.pem")
        first = s_client_as_site(pki, server.port,
                                 [version, "-sess_out", session])
        if not scope.expect(re.search(r"^New, TLSv1\.[23]", first, re.M),
                            f"s_client {version} as site-a: no handshake: "
                            f"{first.strip()[-300:]}"):
            continue
        tickets = first.count(ticket_words)
        scope.expect(tickets == 0,
                     f"s_client {version}: the listener sent {tickets} "
                     f"session ticket(s) ('{ticket_words}'), although it "
                     f"resumes no session")
        if os.path.exists(session) and os.path.getsize(session):
            second = s_client_as_site(pki, server.port,
                                      [version, "-sess_in", session], 0.3)
            scope.expect(not re.search(r"^Reused", second, re.M),
                         f"s_client {version}: the listener resumed a "
                         f"session")


def scenario_scan_modified_bcp195(scope, ctx):
    """`siren serve --tls-profile modified-bcp195` scanned with -p -E -f
    -P -J (LOGJAM). Proves: TLS 1.2 and 1.3 only; every cipher is AES-GCM
    (TLS 1.2: ECDHE or DHE; TLS 1.3: the two AES-GCM suites), DHE of 2048
    bits or more; "CHACHA20" appears nowhere in testssl's JSON; the
    elliptic curves offered are NIST curves only; no finding is MEDIUM,
    HIGH or CRITICAL; testssl connected only to the listener."""
    _, scan = run_scan(scope, ctx, "modified-bcp195", "modified-bcp195",
                       ["-p", "-E", "-f", "-P", "-J"])
    check_protocols(scope, scan, ("TLS1_2", "TLS1_3"))
    offered = check_ciphers(scope, scan, {"tls1_2": MODIFIED_TLS12,
                                          "tls1_3": MODIFIED_TLS13})
    with open(scan.json_path) as stream:
        scope.expect("CHACHA20" not in stream.read().upper(),
                     f"CHACHA20 appears in {scan.json_path}")
    curves = set((scan.text("PFS_ECDHE_curves") or "").split())
    scope.expect(curves and curves <= NIST_CURVES,
                 f"elliptic curves offered: {sorted(curves)}, expected NIST "
                 f"curves only")
    groups = scan.text("DH_groups")
    if groups:
        for bits in re.findall(r"ffdhe(\d+)", groups):
            scope.expect(int(bits) >= 2048, f"DH group ffdhe{bits}")
    scope.count("suites offered", len(offered))


def scenario_scan_tls13(scope, ctx):
    """`siren serve --tls-profile tls13` scanned with -p -E -f, as site-a
    (testssl's first connection test needs a completed handshake, and a
    TLS 1.3 server that requires a certificate completes none without
    one: "Your OpenSSL cannot connect"). Proves: only TLS 1.3 is
    offered, with its AEAD suites only; no finding is MEDIUM, HIGH or
    CRITICAL; testssl connected only to the listener."""
    _, scan = run_scan(scope, ctx, "tls13", "tls13", ["-p", "-E", "-f"],
                       as_site=True)
    check_protocols(scope, scan, ("TLS1_3",))
    offered = check_ciphers(scope, scan, {"tls1_3": TLS13_AEAD})
    scope.count("suites offered", len(offered))


SCENARIOS = [
    ("scan_bcp195", scenario_scan_bcp195),
    ("scan_bcp195_as_site", scenario_scan_bcp195_as_site),
    ("scan_modified_bcp195", scenario_scan_modified_bcp195),
    ("scan_tls13", scenario_scan_tls13),
]

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True, help="build/gateway/siren")
    parser.add_argument("--pki-script", required=True,
                        help="tests/integration/pki.py")
    parser.add_argument("--work", required=True,
                        help="a scratch folder (emptied first)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="scans at once (default 2)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only this scenario (repeatable)")
    return parser.parse_args()


def missing_prerequisites(args):
    missing = []
    if not os.access(args.siren, os.X_OK):
        missing.append(f"{args.siren} (not an executable)")
    if not os.path.isfile(args.pki_script):
        missing.append(f"{args.pki_script} (pki.py)")
    for tool in ("testssl", "openssl"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (Debian packages testssl.sh, openssl)")
    return missing


PROCESSES = Processes()


def stop_on_signal(signo, frame):
    """SIGTERM/SIGINT: no new scenario or process, stop what runs (the
    scans then end), unwind."""
    STOPPING.set()
    PROCESSES.stop_all()
    raise SystemExit(f"tls_testssl: stopped by signal {signo}")


def run_scenario(checks, ctx, name, scenario):
    if STOPPING.is_set():
        return
    scope = checks.scope(name)
    print(f"== {name} (started)", flush=True)
    started = time.monotonic()
    try:
        scenario(scope, ctx)
    except Exception as error:  # report; the others go on
        traceback.print_exc()
        scope.fail(f"the scenario itself failed: {type(error).__name__}: "
                   f"{error}")
    scope.count("seconds", round(time.monotonic() - started, 1))
    print(f"== {name} (done)", flush=True)


def main():
    args = parse_arguments()
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    missing = missing_prerequisites(args)
    if missing:
        print("tls_testssl: cannot run, missing:\n  " + "\n  ".join(missing))
        return 2
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    checks = Checks()
    processes = PROCESSES
    started = time.monotonic()
    ctx = {"siren": os.path.abspath(args.siren), "work": work,
           "processes": processes}
    try:
        strace_command()  # probed once, before the threads
        ctx["pki"] = Pki(os.path.abspath(args.pki_script), work)
        checks.counts["PKI, seconds"] = round(time.monotonic() - started, 1)
        chosen = [(n, s) for n, s in SCENARIOS
                  if not args.only or n in args.only]
        with concurrent.futures.ThreadPoolExecutor(
                max_workers=max(1, args.jobs)) as pool:
            for future in [pool.submit(run_scenario, checks, ctx, n, s)
                           for n, s in chosen]:
                future.result()
    except Exception as error:
        traceback.print_exc()
        checks.scope("setup").fail(f"the test itself failed: "
                                   f"{type(error).__name__}: {error}")
    finally:
        processes.stop_all()
    print_summary(checks, time.monotonic() - started)
    return 1 if checks.failures else 0


def print_summary(checks, seconds):
    print("\n== testssl findings")
    for name, _ in SCENARIOS:
        for line in checks.findings.get(name, []):
            print(line)
    print(f"\n== summary ({seconds:.1f} s)")
    for what, number in checks.counts.items():
        print(f"  {what}: {number}")
    if checks.failures:
        print(f"\n{len(checks.failures)} FAILED checks:")
        for failure in checks.failures:
            print(f"  {failure}")
    else:
        print("\nall checks passed")


if __name__ == "__main__":
    sys.exit(main())
