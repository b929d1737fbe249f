#!/usr/bin/python3
"""service_e2e.py - the gateway end to end: `siren serve -c
examples/siren.conf` between DCMTK senders and a real Orthanc.

Debian's Orthanc is the archive (tls_orthanc.py's Orthanc class, free
loopback ports); the gateway runs the example configuration unchanged,
its environment pointing it at the test's PKI, key, spool and ports.
The instances are made here with pydicom and carry planted PHI. Checks:

  1. two sites over DICOM-TLS, sent with DCMTK `storescu +tls`: site A's
     instances reach Orthanc under basic.policy (no name, a hashed
     Patient ID), site B's under trial.policy (subject IDs from the
     lookup table, "HOBIT^..." names); every one stamped with its
     policy's name and version; no planted value in Orthanc's files.
  2. the plain listener (`storescu` without TLS, AE LOCAL) under
     basic.policy.
  3. a reject line answers 0124 before anything is stored; a patient
     missing from the lookup table is quarantined with a reason and
     never reaches Orthanc; nothing else arrives.
  4. Orthanc away: the senders keep being acknowledged, the instances
     wait in the spool, and are delivered once Orthanc is back.
  5. a restart: instances left in the spool by a stopped gateway are
     delivered by the next one.
  6. the audit trail: every instance received has its de-identification
     (policy name, version, hash) and delivery recorded, or its
     quarantine; the lines reach a stand-in Splunk HTTP Event Collector
     that refuses the first posts; /metrics counts what happened.

Usage:
  /usr/bin/python3 service_e2e.py --siren build/gateway/siren \\
      --config examples/siren.conf --pki-script tests/integration/pki.py \\
      --work /tmp/service_e2e

Exit status: 0 every check passed, 1 a check failed, 2 the test could not
run (a missing tool). About 30 s.
"""

import argparse
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
import warnings

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import tls_orthanc
from tls_orthanc import Checks, Processes, wait_until

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ECG = "1.2.840.10008.5.1.4.1.1.9.1.1"
DELIVERY_TIMEOUT_S = 60


def make_instance(path, patient_id, name, modality="CT", sop_class=CT_IMAGE,
                  study_uid=None):
    """A small instance with planted identifying values."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19610307"
    ds.AccessionNumber = "ACCPHI77"
    ds.InstitutionName = "Hospital PHIMARK"
    ds.ReferringPhysicianName = "Doctor^Phimark"
    ds.StudyDate = "20240301"
    ds.StudyDescription = f"Scan of {name}"
    ds.Modality = modality
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(32)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.save_as(path, write_like_original=False)
    return str(ds.SOPInstanceUID)


class Gateway:
    """siren serve -c CONFIG with the test's environment."""

    def __init__(self, ctx, name):
        self.ctx = ctx
        self.log_path = os.path.join(ctx["work"], f"{name}.log")
        self.process = ctx["processes"].start(
            [ctx["siren"], "serve", "-c", ctx["config"]], self.log_path,
            env=ctx["env"])
        text = wait_until(lambda: self.listening(), 20, 0.1)
        if not text:
            raise RuntimeError(f"siren serve did not start; log "
                               f"{self.log_path}")
        self.tls_port, self.plain_port = text

    def log(self):
        with open(self.log_path, encoding="latin-1") as stream:
            return stream.read()

    def listening(self):
        match = re.search(r"serve\.listening tls_port=(\d+) port=(\d+)",
                          self.log())
        return (match.group(1), match.group(2)) if match else None

    def stop(self):
        return self.ctx["processes"].stop(self.process)


def storescu(ctx, port, aet, files, site=None):
    """DCMTK storescu (over TLS with the site's certificate); the
    statuses it reports, one per file."""
    pki = ctx["pki"]
    command = ["storescu", "-v", "-aet", aet, "-aec", "SIREN"]
    if site:
        command += ["+tls", pki.path(f"{site}.key"),
                    pki.path(f"{site}-chain.pem"),
                    "+cf", pki.path("ca-bundle.pem")]
    command += ["127.0.0.1", port] + files
    done = subprocess.run(command, capture_output=True, text=True,
                          timeout=60)
    return re.findall(r"Received Store Response \(([^)]*)\)",
                      done.stdout + done.stderr)


def orthanc_instance(archive, uid):
    ids = archive.lookup(uid)
    return archive.get(f"/instances/{ids[0]}/simplified-tags") if ids \
        else None


def wait_delivered(archive, count):
    return wait_until(lambda: len(archive.instances()) >= count,
                      DELIVERY_TIMEOUT_S, 0.2)


def no_phi(checks, archive, what):
    """No planted value in any file Orthanc holds."""
    planted = [b"PHIMARK", b"Phimark", b"ACCPHI77", b"19610307",
               b"Meier", b"Rossi", b"Kowalski", b"PAT-0001", b"PAT-9999"]
    for instance in archive.instances():
        content = archive.get(f"/instances/{instance}/file", raw=True)
        found = [p.decode() for p in planted if p in content]
        checks.expect(not found, f"{what}: {found} in Orthanc's "
                                 f"instance {instance}")


def scenario_sites(checks, ctx, gateway):
    work, archive = ctx["work"], ctx["archive"]
    a = [os.path.join(work, f"a{i}.dcm") for i in range(3)]
    uids_a = [make_instance(p, f"MRN{i}PHI", "Meier^Anna") for i, p in
              enumerate(a)]
    b = [os.path.join(work, f"b{i}.dcm") for i in range(2)]
    make_instance(b[0], "PAT-0001", "Rossi^Mario")
    make_instance(b[1], "PAT-0002", "Rossi^Maria", modality="MR")
    statuses = storescu(ctx, gateway.tls_port, "SITEA", a, "site-a")
    checks.expect(statuses == ["Success"] * 3, f"site A statuses {statuses}")
    statuses = storescu(ctx, gateway.tls_port, "SITEB", b, "site-b")
    checks.expect(statuses == ["Success"] * 2, f"site B statuses {statuses}")
    plain = os.path.join(work, "plain.dcm")
    make_instance(plain, "LOCAL77", "Kowalski^Jan")
    statuses = storescu(ctx, gateway.plain_port, "LOCAL", [plain])
    checks.expect(statuses == ["Success"], f"plain statuses {statuses}")
    checks.expect(wait_delivered(archive, 6), "6 instances in Orthanc "
                  f"(have {len(archive.instances())})")
    tags = [archive.get(f"/instances/{i}/simplified-tags")
            for i in archive.instances()]
    by_policy = {}
    for t in tags:
        method = t.get("DeidentificationMethod", "")
        by_policy.setdefault(method.split("\\")[0], []).append(t)
        checks.expect(t.get("PatientIdentityRemoved") == "YES",
                      f"PatientIdentityRemoved {t.get('PatientIdentityRemoved')}")
    basic = by_policy.get("SIREN basic version 1", [])
    trial = by_policy.get("SIREN hobit version 4", [])
    checks.expect(len(basic) == 4 and len(trial) == 2,
                  f"policies stamped: {sorted(by_policy)} "
                  f"({len(basic)} basic, {len(trial)} hobit)")
    for t in basic:
        checks.expect(not t.get("PatientName") and
                      re.fullmatch(r"[A-Z2-7]{16}", t.get("PatientID", "")),
                      f"basic: name {t.get('PatientName')!r} id "
                      f"{t.get('PatientID')!r}")
    subjects = sorted(t.get("PatientID") for t in trial)
    checks.expect(subjects == ["HOBIT-001", "HOBIT-002"],
                  f"trial subjects {subjects}")
    for t in trial:
        checks.expect(t.get("PatientName") == f"HOBIT^{t.get('PatientID')}",
                      f"trial name {t.get('PatientName')}")
    for uid in uids_a:
        checks.expect(not archive.lookup(uid), f"original UID {uid} in "
                                               "Orthanc")
    no_phi(checks, archive, "sites")
    checks.count("instances delivered", len(tags))
    check_metrics(checks, ctx)


# Another loopback address (all of 127/8 is): metrics { bind } is taken.
METRICS_ADDRESS = "127.0.0.2"


def check_metrics(checks, ctx):
    """The counters of what just happened, and the health, on the address
    `metrics { bind }` names (and not on 127.0.0.1)."""
    base = f"http://{METRICS_ADDRESS}:{ctx['metrics_port']}"
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{ctx['metrics_port']}"
                               "/healthz", timeout=5)
        checks.fail(f"/healthz answers on 127.0.0.1, bind is "
                    f"{METRICS_ADDRESS}")
    except OSError:
        pass
    with urllib.request.urlopen(base + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    values = dict(re.findall(r"^(siren_[^ ]+) (\S+)$", text, re.M))
    expected = {'siren_instances_received_total{site="site-a"}': "3",
                'siren_instances_received_total{site="site-b"}': "2",
                'siren_instances_received_total{site="(plain)"}': "1",
                "siren_instances_forwarded_total": "6",
                'siren_delivery_seconds_count': "6",
                "siren_spool_full": "0"}
    for key, value in expected.items():
        checks.expect(values.get(key) == value,
                      f"/metrics {key} = {values.get(key)}, expected {value}")
    with urllib.request.urlopen(base + "/healthz", timeout=10) as answer:
        checks.expect(answer.status == 200, f"/healthz {answer.status}")


def scenario_refusals(checks, ctx, gateway):
    work, archive = ctx["work"], ctx["archive"]
    before = len(archive.instances())
    ecg = os.path.join(work, "ecg.dcm")
    make_instance(ecg, "PAT-0003", "Rossi^Luca", modality="ECG",
                  sop_class=ECG)
    statuses = storescu(ctx, gateway.tls_port, "SITEB", [ecg], "site-b")
    checks.expect(len(statuses) == 1 and
                  re.search(r"0x0?124|not authorized", statuses[0].lower()),
                  f"rejected ECG status {statuses}")
    unknown = os.path.join(work, "unknown.dcm")
    make_instance(unknown, "PAT-9999", "Rossi^Ugo")
    statuses = storescu(ctx, gateway.tls_port, "SITEB", [unknown], "site-b")
    checks.expect(statuses == ["Success"], f"quarantined instance status "
                                           f"{statuses}")
    quarantine = os.path.join(ctx["spool"], "quarantine")
    reasons = wait_until(lambda: [n for n in os.listdir(quarantine)
                                  if n.endswith(".reason")], 20, 0.2)
    checks.expect(reasons, "nothing in spool/quarantine")
    for name in reasons or []:
        with open(os.path.join(quarantine, name)) as stream:
            text = stream.read()
        checks.expect("lookup table" in text, f"quarantine reason {text!r}")
    time.sleep(1)
    checks.expect(len(archive.instances()) == before,
                  f"Orthanc got {len(archive.instances()) - before} "
                  "refused instances")


def scenario_archive_away(checks, ctx, gateway):
    work, archive = ctx["work"], ctx["archive"]
    before = len(archive.instances())
    archive.stop()
    files = [os.path.join(work, f"away{i}.dcm") for i in range(4)]
    for i, path in enumerate(files):
        make_instance(path, f"AWAY{i}", "Meier^Otto")
    statuses = storescu(ctx, gateway.tls_port, "SITEA", files, "site-a")
    checks.expect(statuses == ["Success"] * 4,
                  f"statuses with Orthanc away {statuses}")
    outgoing = os.path.join(ctx["spool"], "outgoing")
    waiting = wait_until(lambda: len([n for n in os.listdir(outgoing)
                                      if n.endswith(".dcm")]) == 4, 20, 0.2)
    checks.expect(waiting, "4 instances waiting in spool/outgoing")
    ctx["archive"] = archive = archive.restart()
    checks.expect(wait_delivered(archive, before + 4),
                  f"{before + 4} instances once Orthanc is back (have "
                  f"{len(archive.instances())})")


def scenario_restart(checks, ctx, gateway):
    work, archive = ctx["work"], ctx["archive"]
    before = len(archive.instances())
    archive.stop()
    files = [os.path.join(work, f"restart{i}.dcm") for i in range(3)]
    for i, path in enumerate(files):
        make_instance(path, f"RESTART{i}", "Meier^Eva")
    statuses = storescu(ctx, gateway.tls_port, "SITEA", files, "site-a")
    checks.expect(statuses == ["Success"] * 3, f"statuses {statuses}")
    status = gateway.stop()
    checks.expect(status == 0, f"siren serve exited with {status}")
    ctx["archive"] = archive = archive.restart()
    second = Gateway(ctx, "serve-2")
    checks.expect(wait_delivered(archive, before + 3),
                  f"{before + 3} instances after the restart (have "
                  f"{len(archive.instances())})")
    return second


class Archive(tls_orthanc.Orthanc):
    """An Orthanc that can be stopped and started again on its ports."""

    def __init__(self, checks, processes, work, name, ports=None):
        self.args = (checks, processes, work, name)
        super().__init__(checks, processes, work, name)

    def restart(self):
        checks, processes, work, name = self.args
        again = Archive.__new__(Archive)
        again.args = self.args
        again.checks, again.processes, again.name = checks, processes, name
        again.folder, again.http_port = self.folder, self.http_port
        again.dicom_port, again.base = self.dicom_port, self.base
        again.log_path = self.log_path + ".2"
        again.process = processes.start(
            ["Orthanc", "--verbose", os.path.join(self.folder,
                                                  "orthanc.json")],
            again.log_path, env=tls_orthanc.peer_environment())
        again.wait_started()
        return again


class Collector:
    """A stand-in for Splunk's HTTP Event Collector (Splunk is not a
    Debian package): it answers 503 to the first posts (a collector that
    is down), then 200, and keeps the events it accepted."""

    def __init__(self, token, refuse_first=3):
        self.events, self.refused, self.bad_auth = [], 0, 0
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Authorization") != f"Splunk {token}":
                    collector.bad_auth += 1
                    self.send_response(401)
                elif collector.refused < refuse_first:
                    collector.refused += 1
                    self.send_response(503)
                else:
                    for line in body.decode().splitlines():
                        collector.events.append(json.loads(line))
                    self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"text":"Success","code":0}')

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.url = (f"http://127.0.0.1:{self.server.server_address[1]}"
                    "/services/collector/event")
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def stop(self):
        self.server.shutdown()


def check_collector(checks, ctx):
    """What the audit file holds up to the shipped offset reached the
    collector, in order, through its refusals."""
    collector = ctx["collector"]
    with open(ctx["audit"] + ".hec-offset") as stream:
        offset = int(stream.read())
    with open(ctx["audit"], "rb") as stream:
        shipped = stream.read(offset).decode().splitlines()
    got = [json.dumps(e["event"], sort_keys=True) for e in collector.events
           if e.get("sourcetype") == "siren:audit"]
    want = [json.dumps(json.loads(line), sort_keys=True) for line in shipped]
    checks.expect(collector.refused == 3, f"collector refusals: "
                                          f"{collector.refused}")
    checks.expect(not collector.bad_auth, "posts without the token")
    checks.expect(len(want) > 20 and all(w in got for w in want),
                  f"collector has {len(got)} events, the audit file "
                  f"{len(want)} shipped lines")
    checks.count("events shipped to the collector", len(got))


def check_audit(checks, ctx):
    """Every instance received has its de-identification (policy name,
    version, hash) and its delivery recorded, or its quarantine; the
    rejection and the refused certificate are there too."""
    events = []
    with open(ctx["audit"]) as stream:
        for line in stream:
            try:
                events.append(json.loads(line))
            except ValueError:
                checks.fail(f"audit line not JSON: {line!r}")
    by_file = {}
    for e in events:
        if "file" in e:
            by_file.setdefault(e["file"], []).append(e["event"])
    for name, kinds in by_file.items():
        if "instance.received" not in kinds:
            continue
        done = ("instance.deidentified" in kinds and
                "instance.forwarded" in kinds) or \
            "instance.quarantined" in kinds
        checks.expect(done, f"audit of {name}: {kinds}")
    deidentified = [e for e in events if e["event"] ==
                    "instance.deidentified"]
    checks.expect(all(e.get("policy") and e.get("policy_version") and
                      len(e.get("policy_sha256", "")) == 64
                      for e in deidentified),
                  "de-identification events without policy name, version "
                  "or hash")
    kinds = {e["event"] for e in events}
    for kind in ("association.accepted", "instance.received",
                 "instance.deidentified", "instance.forwarded",
                 "instance.rejected", "instance.quarantined"):
        checks.expect(kind in kinds, f"no {kind} in the audit trail")
    accepted = [e for e in events if e["event"] == "association.accepted"
                and e.get("transport") == "tls"]
    checks.expect(accepted and all(e.get("cert_serial") and
                                   e.get("site") for e in accepted),
                  "TLS associations without site or certificate")
    checks.count("audit events", len(events))


def run(checks, ctx):
    gateway = Gateway(ctx, "serve")
    for name, scenario in (("sites", scenario_sites),
                           ("refusals", scenario_refusals),
                           ("archive_away", scenario_archive_away),
                           ("restart", scenario_restart)):
        checks.scenario = name
        print(f"== {name}", flush=True)
        try:
            gateway = scenario(checks, ctx, gateway) or gateway
        except Exception as error:
            traceback.print_exc()
            checks.fail(f"the scenario failed: {type(error).__name__}: "
                        f"{error}")
    checks.scenario = "teardown"
    status = gateway.stop()
    checks.expect(status == 0, f"siren serve exited with {status}")
    checks.scenario = "audit"
    check_audit(checks, ctx)
    check_collector(checks, ctx)
    for log in ("serve", "serve-2"):
        path = os.path.join(ctx["work"], f"{log}.log")
        if os.path.exists(path):
            with open(path, encoding="latin-1") as stream:
                report = tls_orthanc.sanitizer_report(stream.read())
            checks.expect(not report, f"{log}: {report}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--pki-script", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="pydicom")
    missing = [t for t in ("Orthanc", "storescu", "openssl")
               if shutil.which(t) is None]
    if missing:
        print(f"service_e2e: cannot run, missing {missing}")
        return 2
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    checks, processes = Checks(), Processes()
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(1))
    started = time.monotonic()
    ctx = {"siren": os.path.abspath(args.siren), "work": work,
           "config": os.path.abspath(args.config), "processes": processes,
           "spool": os.path.join(work, "spool"),
           "audit": os.path.join(work, "audit.jsonl"),
           "metrics_port": tls_orthanc.free_port()}

    def body():
        checks.scenario = "setup"
        ctx["pki"] = pki = tls_orthanc.Pki(os.path.abspath(args.pki_script),
                                           work)
        key = os.path.join(work, "pseudonym.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(os.urandom(32).hex())
        ctx["collector"] = Collector("siren-test-token")
        ctx["archive"] = Archive(checks, processes, work, "orthanc")
        ctx["archive"].wait_started()
        ctx["env"] = dict(os.environ, SIREN_SPOOL=ctx["spool"],
                          SIREN_TLS_PORT="0", SIREN_PLAIN_PORT="0",
                          SIREN_TLS_CERT=pki.path("server-chain.pem"),
                          SIREN_TLS_KEY=pki.path("server.key"),
                          SIREN_SITES_CA=pki.path("ca-bundle.pem"),
                          SIREN_CRL=pki.path("crls.pem"),
                          SIREN_PSEUDONYM_KEY=key,
                          SIREN_ARCHIVE_PORT=str(ctx["archive"].dicom_port),
                          SIREN_ARCHIVE_AET=tls_orthanc.ORTHANC_AET,
                          SIREN_AUDIT_FILE=ctx["audit"],
                          SIREN_METRICS_PORT=str(ctx["metrics_port"]),
                          SIREN_METRICS_BIND=METRICS_ADDRESS,
                          SPLUNK_HEC_URL=ctx["collector"].url,
                          SPLUNK_HEC_TOKEN="siren-test-token")
        run(checks, ctx)
        ctx["archive"].stop()

    return tls_orthanc.run_reported(checks, processes, started, body)


if __name__ == "__main__":
    sys.exit(main())
