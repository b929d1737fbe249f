#!/usr/bin/python3
"""forward_rest.py - SIREN's forwarder over Orthanc's REST API (POST
/instances with basic authentication, libcurl) against a real Orthanc.

Debian's Orthanc is the archive, started on free loopback ports with a
temporary configuration: AuthenticationEnabled and RemoteAccessAllowed,
one registered user, forward_orthanc.py's Lua filter that logs every
instance that reaches it (so that the test counts what was sent, not only
what was kept). Instances come from tests/tools gen_series and reach the
outgoing folder by rename (forward_orthanc.py's Spool). Scenarios, one
function each (their docstrings say what each proves):

  1. deliver_all       40 instances over 3 persistent HTTP connections.
  2. already_stored    the same instance twice: AlreadyStored is success.
  3. not_dicom         a text file: FAILED with Orthanc's words.
  4. wrong_password    nothing lost, errors naming the credentials; the
                       file fixed while running is read again.
  5. archive_away      Orthanc stopped, then started: each instance once.
  6. credentials_mode  a credentials file others can read is refused.
  7. https             through a TLS front on loopback (Debian's Orthanc
                       1.10 crashes when its own SslEnabled is used): the
                       right CA delivers, a wrong one keeps the files.
  8. serve             `siren serve -c` with archive { url, credentials },
                       and url with host refused at its line and column.

Usage:
  /usr/bin/python3 forward_rest.py --siren build/gateway/siren \\
      --gen-series build/tests/gen_series --policies examples/policies \\
      --work /tmp/forward_rest

Exit status: 0 every check passed, 1 a check failed, 2 the test could not
run (a missing tool). Every process the test starts is stopped before it
exits. About 25 s.
"""

import argparse
import base64
import collections
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings

import forward_orthanc
import tls_orthanc
from forward_orthanc import Spool, check_run, generate
from tls_orthanc import Checks, Processes, sanitizer_report, wait_until

USER, PASSWORD = "siren-gw", "s3cret:with:colons"
RUN_TIMEOUT_S = 90

# ---------------------------------------------------------------------------
# The archive
# ---------------------------------------------------------------------------


class RestArchive(tls_orthanc.Orthanc):
    """Orthanc that asks for a password (one registered user), logs each
    instance that reaches it, and can be stopped and started again on the
    same ports."""

    def __init__(self, checks, processes, work, name):
        lua = os.path.join(work, f"{name}-received.lua")
        with open(lua, "w") as stream:
            stream.write(forward_orthanc.RECEIVED_FILTER)
        self.auth = "Basic " + base64.b64encode(
            f"{USER}:{PASSWORD}".encode()).decode()
        super().__init__(checks, processes, work, name, extra_config={
            "AuthenticationEnabled": True, "RemoteAccessAllowed": True,
            "RegisteredUsers": {USER: PASSWORD}, "LuaScripts": [lua],
            "HttpDescribeErrors": True, "KeepAliveTimeout": 10})
        self.work = work
        self.logs = [self.log_path]
        self.config_path = os.path.join(self.folder, "orthanc.json")
        self.url = f"http://127.0.0.1:{self.http_port}"

    def request(self, method, path, body=None, raw=False):
        """(HTTP status, answer), as the test's user."""
        data = body if isinstance(body, (bytes, type(None))) else \
            body.encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Authorization": self.auth})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                status, content = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, content = error.code, error.read()
        if raw:
            return status, content
        try:
            return status, json.loads(content) if content else None
        except ValueError:
            return status, content.decode("latin-1")

    def start_again(self):
        self.log_path = os.path.join(
            self.work, f"{self.name}-{len(self.logs) + 1}.log")
        self.logs.append(self.log_path)
        self.process = self.processes.start(
            ["Orthanc", "--verbose", self.config_path], self.log_path)
        self.wait_started()

    def receptions(self):
        counts = collections.Counter()
        for log in self.logs:
            with open(log, encoding="latin-1") as stream:
                counts.update(re.findall(r"siren-test received (\S+)",
                                         stream.read()))
        return counts

    def uids(self):
        return collections.Counter(
            i["MainDicomTags"].get("SOPInstanceUID")
            for i in self.get("/instances?expand"))


def unauthenticated_status(archive):
    """What Orthanc answers without a password (proves it asks for one)."""
    try:
        with urllib.request.urlopen(archive.base + "/system", timeout=10) as a:
            return a.status
    except urllib.error.HTTPError as error:
        return error.code


# ---------------------------------------------------------------------------
# siren forward --url
# ---------------------------------------------------------------------------


def write_credentials(path, text, mode=0o600):
    with open(path, "w") as stream:
        stream.write(text)
    os.chmod(path, mode)
    return path


class RestForwarder(forward_orthanc.Forwarder):
    """`siren forward --url URL --credentials FILE` in the background."""

    def __init__(self, ctx, name, spool, url, *options, watch=False,
                 credentials=None):
        self.processes = ctx["processes"]
        self.log_path = os.path.join(ctx["work"], f"forward-{name}.log")
        command = [ctx["siren"], "forward", "--dir", spool.outgoing,
                   "--failed", spool.failed, "--url", url,
                   "--credentials", credentials or ctx["credentials"],
                   *([] if watch else ["--once"]), *options]
        self.process = self.processes.start(command, self.log_path)


def check_exactly_once(checks, archive, before, uids, spool, forwarder):
    held = archive.uids() - before
    checks.expect(set(held) == set(uids) and all(n == 1 for n in
                                                 held.values()),
                  f"Orthanc holds {len(held)} new instances, expected "
                  f"{len(uids)}; missing {sorted(set(uids) - set(held))[:3]}")
    received = archive.receptions()
    twice = [u for u in uids if received[u] != 1]
    checks.expect(not twice, f"{len(twice)} instances reached Orthanc other "
                             f"than once: {[(u, received[u]) for u in twice[:3]]}")
    checks.expect(not spool.waiting(), f"left in outgoing: "
                                       f"{spool.waiting()[:5]}")
    delivered = forwarder.delivered()
    checks.expect(len(delivered) == len(uids) == len(set(delivered)),
                  f"siren forward logged {len(delivered)} deliveries for "
                  f"{len(uids)} files")


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------


def scenario_deliver_all(checks, ctx):
    """40 generated CT instances; `siren forward --url --credentials
    --once --connections 3`. Proves: Orthanc asks for a password (401
    without); exit status 0 and "delivered 40"; Orthanc holds the 40 UIDs,
    each of which reached it once; outgoing empty, FAILED empty; every
    forward.delivered line says status=Success with Orthanc's ID; three
    workers delivered over a few connections, not one per file (each
    worker keeps its curl handle)."""
    archive, spool = ctx["archive"], Spool(ctx["work"], "deliver_all")
    checks.expect(unauthenticated_status(archive) == 401,
                  "Orthanc answers without a password")
    instances = generate(ctx, "deliver_all", 40)
    ctx["template"] = next(iter(instances))
    spool.stage(instances)
    before = archive.uids()
    forwarder = RestForwarder(ctx, "deliver_all", spool, archive.url,
                              "--connections", "3")
    status = forwarder.wait(RUN_TIMEOUT_S)
    check_run(checks, "siren forward --url", forwarder, status, 0)
    checks.expect(re.search(r"^delivered 40 \(with warnings 0\), failed 0",
                            forwarder.log_text(), re.M),
                  f"no summary 'delivered 40': {forwarder.log_text()[-300:]}")
    check_exactly_once(checks, archive, before, list(instances.values()),
                       spool, forwarder)
    checks.expect(not spool.failed_files(), f"FAILED holds "
                                            f"{spool.failed_files()}")
    lines = forwarder.events("forward.delivered")
    checks.expect(lines and all(re.search(r" status=Success archive_id="
                                          r"[0-9a-f-]{44} ", line)
                                for line in lines),
                  f"deliveries without Orthanc's Status and ID: {lines[:1]}")
    workers = {re.search(r"worker=(\d+)", line).group(1) for line in lines}
    connected = forwarder.events("forward.connected")
    checks.expect(len(workers) == 3, f"only workers {sorted(workers)}")
    checks.expect(1 <= len(connected) <= 9,
                  f"{len(connected)} connections for 40 files on 3 "
                  f"workers: not persistent")
    checks.count("connections", len(connected))


def scenario_already_stored(checks, ctx):
    """An instance Orthanc holds already, staged twice under two names.
    Proves: exit status 0, both files delivered (status=AlreadyStored)
    and removed, nothing in FAILED, Orthanc holds it once still."""
    archive, spool = ctx["archive"], Spool(ctx["work"], "already_stored")
    spool.stage([ctx["template"], ctx["template"]])
    before = archive.uids()
    forwarder = RestForwarder(ctx, "already_stored", spool, archive.url)
    status = forwarder.wait(RUN_TIMEOUT_S)
    check_run(checks, "siren forward --url (twice)", forwarder, status, 0)
    lines = forwarder.events("forward.delivered")
    checks.expect(len(lines) == 2 and all(" status=AlreadyStored " in line
                                          for line in lines),
                  f"deliveries of an instance Orthanc holds: {lines}")
    checks.expect(not spool.waiting() and not spool.failed_files(),
                  f"outgoing {spool.waiting()}, FAILED {spool.failed_files()}")
    checks.expect(archive.uids() == before, "Orthanc's instances changed")


def scenario_not_dicom(checks, ctx):
    """A text file named like an instance, before 3 good instances.
    Proves: exit status 1; the text file is in FAILED, byte for byte, with
    NAME.reason giving Orthanc's answer (HTTP 400, "Bad file format");
    the good ones delivered once."""
    archive, spool = ctx["archive"], Spool(ctx["work"], "not_dicom")
    junk = os.path.join(ctx["work"], "not-dicom.dcm")
    with open(junk, "wb") as stream:
        stream.write(b"this is not a DICOM file\n")
    good = generate(ctx, "not_dicom", 3)
    [name] = spool.stage([junk])
    spool.stage(good)
    before = archive.uids()
    forwarder = RestForwarder(ctx, "not_dicom", spool, archive.url)
    status = forwarder.wait(RUN_TIMEOUT_S)
    check_run(checks, "siren forward --url (not DICOM)", forwarder, status, 1)
    moved = os.path.join(spool.failed, name)
    checks.expect(os.path.isfile(moved) and open(moved, "rb").read() ==
                  open(junk, "rb").read(), f"{name} is not in FAILED as it was")
    reason = open(moved + ".reason").read() \
        if os.path.isfile(moved + ".reason") else ""
    checks.expect(f"file: {name}" in reason and "HTTP 400" in reason and
                  "Bad file format" in reason,
                  f"{name}.reason does not give Orthanc's answer: {reason!r}")
    check_exactly_once(checks, archive, before, list(good.values()), spool,
                       forwarder)


def scenario_wrong_password(checks, ctx):
    """5 instances, a credentials file with a wrong password; `siren
    forward --url` watching, backoff 0.1 to 0.3 s. Proves: error lines
    (forward.denied) that name the credentials, with growing attempts;
    nothing delivered, nothing in FAILED, all 5 still in outgoing and
    none in Orthanc. Then the file is given the right password while the
    forwarder runs: it reads it again after the next refusal and
    delivers all 5 once; SIGTERM: exit status 0."""
    archive, spool = ctx["archive"], Spool(ctx["work"], "wrong_password")
    instances = generate(ctx, "wrong_password", 5)
    spool.stage(instances)
    credentials = write_credentials(
        os.path.join(ctx["work"], "wrong.credentials"), f"{USER}:nope\n")
    before = archive.uids()
    forwarder = RestForwarder(ctx, "wrong_password", spool, archive.url,
                              "--backoff-min", "0.1", "--backoff-max", "0.3",
                              watch=True, credentials=credentials)
    wait_until(lambda: len(forwarder.events("forward.denied")) >= 4, 20, 0.1)
    denied = forwarder.events("forward.denied")
    checks.expect(len(denied) >= 4 and all(
        line.split()[1] == "error" and "HTTP 401" in line and
        "credentials file " + credentials in line for line in denied),
        f"refused credentials: {denied[:2]}")
    checks.expect(not forwarder.delivered() and len(spool.waiting()) == 5 and
                  not spool.failed_files() and archive.uids() == before,
                  f"with a wrong password: delivered "
                  f"{len(forwarder.delivered())}, outgoing "
                  f"{len(spool.waiting())}, FAILED {spool.failed_files()}")
    checks.expect(PASSWORD not in forwarder.log_text() and
                  "nope" not in forwarder.log_text(),
                  "a password reached the log")
    write_credentials(credentials, f"{USER}:{PASSWORD}\n")
    wait_until(lambda: len(forwarder.delivered()) >= 5, 20, 0.1)
    status = forwarder.stop()
    check_run(checks, "siren forward --url (password fixed)", forwarder,
              status, 0)
    check_exactly_once(checks, archive, before, list(instances.values()),
                       spool, forwarder)
    checks.count("refusals before the fix", len(denied))


def scenario_archive_away(checks, ctx):
    """Orthanc stopped; 20 instances; `siren forward --url --once
    --backoff-min 0.2 --backoff-max 1`. Proves: forward.retry lines
    (connection refused) with delays in [50 ms, 1 s], nothing delivered
    or moved meanwhile; Orthanc started again on the same ports: the
    forwarder exits 0 by itself, each instance reached Orthanc once,
    outgoing and FAILED empty."""
    archive, spool = ctx["archive"], Spool(ctx["work"], "archive_away")
    instances = generate(ctx, "archive_away", 20)
    before = archive.uids()
    archive.stop()
    spool.stage(instances)
    forwarder = RestForwarder(ctx, "archive_away", spool, archive.url,
                              "--backoff-min", "0.2", "--backoff-max", "1")
    wait_until(lambda: len(forwarder.events("forward.retry")) >= 4, 15, 0.1)
    retries = forwarder.events("forward.retry")
    delays = [int(re.search(r"delay_ms=(\d+)", line).group(1))
              for line in retries]
    checks.expect(len(retries) >= 4 and all(50 <= d <= 1000 for d in delays)
                  and all("onnect" in line for line in retries),
                  f"while Orthanc is away: {retries[:2]}, delays {delays}")
    checks.expect(not forwarder.delivered() and len(spool.waiting()) == 20
                  and not spool.failed_files(),
                  f"while Orthanc is away: delivered "
                  f"{len(forwarder.delivered())}, outgoing "
                  f"{len(spool.waiting())}")
    archive.start_again()
    status = forwarder.wait(RUN_TIMEOUT_S)
    check_run(checks, "siren forward --url (Orthanc away)", forwarder,
              status, 0)
    check_exactly_once(checks, archive, before, list(instances.values()),
                       spool, forwarder)
    checks.count("retries while away", len(retries))


def scenario_credentials_mode(checks, ctx):
    """The right credentials in a file of mode 644. Proves: siren forward
    refuses to start (exit status 1) with a message that says the file is
    open to others and how to fix it, without the password; the
    instance stays in outgoing."""
    archive, spool = ctx["archive"], Spool(ctx["work"], "credentials_mode")
    spool.stage([ctx["template"]])
    credentials = write_credentials(
        os.path.join(ctx["work"], "open.credentials"),
        f"{USER}:{PASSWORD}\n", 0o644)
    forwarder = RestForwarder(ctx, "credentials_mode", spool, archive.url,
                              credentials=credentials)
    status = forwarder.wait(30)
    text = forwarder.log_text()
    checks.expect(status == 1 and "open to others" in text and
                  f"chmod 600 {credentials}" in text and PASSWORD not in text,
                  f"a world-readable credentials file: exit status {status}: "
                  f"{text[-300:]}")
    checks.expect(len(spool.waiting()) == 1, "the instance left outgoing")


class TlsFront(http.server.ThreadingHTTPServer):
    """https on loopback in front of Orthanc's http port: each request
    passed on as it came (body, Authorization), each answer passed back.
    HTTP/1.1 with keep-alive, as Orthanc speaks it."""

    daemon_threads = True

    def __init__(self, archive, cert, key):
        super().__init__(("127.0.0.1", 0), TlsFrontHandler)
        self.archive = archive
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.shutdown()
        self.server_close()


class TlsFrontHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        archive = self.server.archive
        upstream = http.client.HTTPConnection("127.0.0.1", archive.http_port,
                                              timeout=60)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        upstream.request("POST", self.path, body, headers)
        answer = upstream.getresponse()
        content = answer.read()
        upstream.close()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.getheader("Content-Type",
                                                          "text/plain"))
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args):
        pass


def make_certificate(work):
    """A self-signed certificate for 127.0.0.1 (its own CA), and another
    one, for a CA that did not sign it."""
    paths = {}
    for name in ("front", "other"):
        cert, key = (os.path.join(work, f"{name}.pem"),
                     os.path.join(work, f"{name}.key"))
        tls_orthanc.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                            key, "-out", cert, "-days", "2", "-subj",
                            f"/CN={name}.siren.test", "-addext",
                            "subjectAltName=IP:127.0.0.1")
        paths[name] = (cert, key)
    return paths


def scenario_https(checks, ctx):
    """An https front (Python's TLS, certificate for IP 127.0.0.1) before
    Orthanc. First `siren forward --url https://... --ca` with a CA that
    did not sign it, stopped after a few tries: forward.retry lines about
    the certificate, nothing delivered or moved. Then with the right CA:
    10 instances delivered once, exit status 0."""
    archive, spool = ctx["archive"], Spool(ctx["work"], "https")
    certs = make_certificate(ctx["work"])
    front = TlsFront(archive, *certs["front"])
    try:
        url = f"https://127.0.0.1:{front.port}"
        instances = generate(ctx, "https", 10)
        spool.stage(instances)
        untrusted = RestForwarder(ctx, "https-untrusted", spool, url,
                                  "--ca", certs["other"][0], "--backoff-min",
                                  "0.1", "--backoff-max", "0.3", watch=True)
        wait_until(lambda: len(untrusted.events("forward.retry")) >= 3, 15,
                   0.1)
        status = untrusted.stop()
        check_run(checks, "siren forward (untrusted CA)", untrusted, status, 0)
        retries = untrusted.events("forward.retry")
        checks.expect(len(retries) >= 3 and all(
            re.search(r"certificate|SSL", line) for line in retries),
            f"untrusted CA: {retries[:2]}")
        checks.expect(not untrusted.delivered() and
                      len(spool.waiting()) == 10 and not spool.failed_files(),
                      "untrusted CA: files delivered or moved")
        before = archive.uids()
        forwarder = RestForwarder(ctx, "https", spool, url, "--ca",
                                  certs["front"][0])
        status = forwarder.wait(RUN_TIMEOUT_S)
        check_run(checks, "siren forward --url https", forwarder, status, 0)
        check_exactly_once(checks, archive, before, list(instances.values()),
                           spool, forwarder)
    finally:
        front.close()


SERVE_CONFIG = """\
# forward_rest.py: the gateway delivering over Orthanc's REST API.
aet "SIREN"
spool "spool"
processors 1
plain
  port "0"
  allow-calling "LOCAL"
  policy "{policies}/basic.policy"
end
archive
  {host}url "{url}"
  credentials "gateway.credentials"
  timeout 20
end
audit
  file "audit.jsonl"
end
"""


def scenario_serve(checks, ctx):
    """`siren serve -c` with archive { url, credentials (relative to the
    file), timeout } and a plain listener under basic.policy; 4 instances
    sent with `siren send`. Proves: --check accepts the file, and refuses
    one that gives url and host, and an ftp:// url, with the line and
    column of url; Orthanc
    holds 4 new (de-identified) instances, the spool's outgoing folder
    empties, the audit trail has 4 instance.forwarded records with status
    Success and Orthanc's ID; SIGTERM: exit status 0."""
    archive = ctx["archive"]
    folder = os.path.join(ctx["work"], "serve")
    os.makedirs(folder)
    write_credentials(os.path.join(folder, "gateway.credentials"),
                      f"{USER}:{PASSWORD}\n")
    config = os.path.join(folder, "siren.conf")
    both = os.path.join(folder, "both.conf")
    ftp = os.path.join(folder, "ftp.conf")
    for path, host, url in ((config, "", archive.url),
                            (both, 'host "127.0.0.1"\n  ', archive.url),
                            (ftp, "", "ftp://127.0.0.1:21")):
        with open(path, "w") as stream:
            stream.write(SERVE_CONFIG.format(policies=ctx["policies"],
                                             url=url, host=host))
    env = dict(os.environ, SIREN_PSEUDONYM_KEY=ctx["key"])
    for path, where in ((both, ":12:7: error: archive url and host are "
                                "exclusive"),
                        (ftp, ":11:7: error: not an http:// or https:// "
                              "URL")):
        done = subprocess.run([ctx["siren"], "serve", "-c", path, "--check"],
                              capture_output=True, text=True, env=env)
        checks.expect(done.returncode == 1 and
                      re.search(re.escape(path + where), done.stderr),
                      f"{os.path.basename(path)}: exit status "
                      f"{done.returncode}: {done.stderr}")
    done = subprocess.run([ctx["siren"], "serve", "-c", config, "--check"],
                          capture_output=True, text=True, env=env)
    checks.expect(done.returncode == 0, f"--check: {done.stderr}")
    log_path = os.path.join(ctx["work"], "serve.log")
    process = ctx["processes"].start([ctx["siren"], "serve", "-c", config],
                                     log_path, env=env)
    log = lambda: open(log_path, encoding="latin-1").read()
    match = wait_until(lambda: re.search(r"serve\.listening .*port=(\d+)",
                                         log()), 20, 0.1)
    if not match:
        raise RuntimeError(f"siren serve did not start: {log()[-500:]}")
    before = sum(archive.uids().values())
    instances = generate(ctx, "serve", 4)
    done = subprocess.run([ctx["siren"], "send", "--aet", "LOCAL", "--call",
                           "SIREN", "127.0.0.1", match.group(1),
                           *instances], capture_output=True, text=True)
    checks.expect(done.returncode == 0, f"siren send: {done.stderr}")
    outgoing = os.path.join(folder, "spool", "outgoing")
    arrived = wait_until(lambda: sum(archive.uids().values()) - before >= 4
                         and not [n for n in os.listdir(outgoing)
                                  if not n.startswith(".")], 30, 0.2)
    checks.expect(arrived, f"Orthanc holds "
                           f"{sum(archive.uids().values()) - before} of 4")
    status = ctx["processes"].stop(process)
    checks.expect(status == 0, f"siren serve exited with {status}")
    report = sanitizer_report(log())
    checks.expect(report is None, f"siren serve: {report}")
    records = [json.loads(line) for line in
               open(os.path.join(folder, "audit.jsonl"))]
    forwarded = [r for r in records if r.get("event") == "instance.forwarded"]
    checks.expect(len(forwarded) == 4 and all(
        r.get("status") == "Success" and r.get("archive") == archive.url and
        re.fullmatch(r"[0-9a-f-]{44}", r.get("archive_id", ""))
        for r in forwarded), f"instance.forwarded records: {forwarded[:1]}")
    checks.expect(PASSWORD not in log(), "the password reached the log")


SCENARIOS = [
    ("deliver_all", scenario_deliver_all),
    ("already_stored", scenario_already_stored),
    ("not_dicom", scenario_not_dicom),
    ("wrong_password", scenario_wrong_password),
    ("archive_away", scenario_archive_away),
    ("credentials_mode", scenario_credentials_mode),
    ("https", scenario_https),
    ("serve", scenario_serve),
]


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True, help="build/gateway/siren")
    parser.add_argument("--gen-series", required=True,
                        help="build/tests/gen_series")
    parser.add_argument("--policies", required=True,
                        help="examples/policies")
    parser.add_argument("--work", required=True,
                        help="a scratch folder (emptied first)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only this scenario (repeatable; "
                             "deliver_all is always run first)")
    return parser.parse_args()


def missing_prerequisites(args):
    missing = [f"{path} (not an executable)"
               for path in (args.siren, args.gen_series)
               if not os.access(path, os.X_OK)]
    for tool in ("Orthanc", "openssl"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (Debian packages orthanc, openssl)")
    return missing


def stop_on_signal(signo, frame):
    raise SystemExit(f"forward_rest: stopped by signal {signo}")


def main():
    args = parse_arguments()
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    warnings.filterwarnings("ignore", module="pydicom")
    missing = missing_prerequisites(args)
    if missing:
        print("forward_rest: cannot run, missing:\n  " + "\n  ".join(missing))
        return 2
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    checks, processes = Checks(), Processes()
    started = time.monotonic()
    ctx = {"siren": os.path.abspath(args.siren),
           "gen_series": os.path.abspath(args.gen_series),
           "policies": os.path.abspath(args.policies), "work": work,
           "processes": processes,
           "credentials": write_credentials(
               os.path.join(work, "gateway.credentials"),
               f"{USER}:{PASSWORD}\n"),
           "key": write_credentials(os.path.join(work, "pseudonym.key"),
                                    os.urandom(32).hex())}

    def body():
        checks.scenario = "setup"
        ctx["archive"] = RestArchive(checks, processes, work, "orthanc")
        ctx["archive"].wait_started()
        # deliver_all always runs (first: SCENARIOS order), as --only says.
        only = args.only + ["deliver_all"] if args.only else []
        tls_orthanc.run_scenarios(checks, ctx, SCENARIOS, only)
        checks.scenario = "teardown"
        ctx.pop("archive").stop()

    return tls_orthanc.run_reported(
        checks, processes, started, body,
        lambda seconds: tls_orthanc.print_summary(checks, ctx, seconds))


if __name__ == "__main__":
    sys.exit(main())
