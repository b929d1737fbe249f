#!/usr/bin/python3
"""audit_syslog.py - the audit trail as PS3.15 A.5 DICOM audit messages to
a real syslog collector: Debian's rsyslogd, started here in the foreground
with its own work folder, a plain imtcp input and a TLS one (the "ossl"
stream driver, a certificate of the test PKI, client certificates
required), on free loopback ports. The gateway runs examples/siren.conf
(service_e2e.py's helpers) with a real Orthanc as the archive. Checks:

  1. over TLS (RFC 5425, our client certificate): for three instances
     sent by site A, DICOM Instances Transferred (110104, C) with the
     site as requestor (AE title, address, Source Role ID), then DICOM
     Instances Accessed (110103, C, de-identification, Anonymized) and
     Transferred to the archive (110104, R), tied by the spool file;
     Begin Transferring (110102) with the certificate's subject; an
     association with an expired certificate is a Security Alert
     (110113, Node Authentication 110126, outcome 8, the reason);
     Application Activity (110100, Application Start). Every message is
     RFC 5424 as rsyslog parsed it (version 1, APP-NAME siren, MSGID
     DICOM+RFC3881), the BOM, then XML that xml.etree reads, and every
     line of the audit file has its message with the same time and the
     same fields (ParticipantObjectDetail). Every de-identification
     (110103 C) and delivery (110104 R) message has the Study object
     (110180) and the Patient object (Patient Number) of PS3.15 A.5.3,
     whose IDs are the Study Instance UID and Patient ID Orthanc holds
     for its instance (the de-identified ones).
  2. SIGHUP reads the syslog TLS files again: a client certificate that
     rsyslogd does not trust (self-signed) copied over ours is used from
     the next batch (nothing arrives, the gateway retries); ours copied
     back and SIGHUP again, everything arrives; a key file that does not
     load is a syslog.reload_failed and the running files go on serving.
  3. rsyslogd stopped: two more instances are acknowledged to the sender
     as usual, the gateway logs its retries; rsyslogd started again: every
     line arrives, none is lost (some may come twice).
  4. the gateway restarted with tcp:// (plain RFC 6587 octet counting):
     it goes on from the saved offset (Application Stop arrives), passes
     over a damaged line the test wrote into the file, and a new instance
     arrives on the plain input; at the end the offset file holds the
     audit file's size.
  5. no identifying value planted in the instances sent (Patient ID,
     Patient's Name, Study Instance UID, Accession Number, birth date)
     is anywhere in rsyslog's output, in a decoded detail, or in the
     audit file.

Usage:
  /usr/bin/python3 audit_syslog.py --siren build/gateway/siren \\
      --config examples/siren.conf --pki-script tests/integration/pki.py \\
      --work /tmp/audit_syslog

Exit status: 0 every check passed, 1 a check failed, 2 the test could not
run (rsyslogd, its openssl driver, Orthanc or storescu missing). About
30 s.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import sys
import time
import warnings
import xml.etree.ElementTree as ET

import tls_orthanc
from pydicom.uid import generate_uid
from service_e2e import (Archive, Gateway, make_instance, orthanc_instance,
                         storescu)
from tls_orthanc import Checks, Processes, free_port, wait_until

OSSL_DRIVER = "/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so"
DELIVERY_TIMEOUT_S = 40
DAMAGED = '{"time":"2026-11-29T10:00:00Z","event":\n'
HEADER = re.compile(r"<(\d+)>1 (\S+) (\S+) siren (\d+) DICOM\+RFC3881 - "
                    "\ufeff(.*)$", re.S)

# event -> (EventID, EventActionCode), as docs/OPERATIONS.md maps them
MAPPING = {
    "association.accepted": ("110102", "E"),
    "instance.received": ("110104", "C"),
    "instance.rejected": ("110104", "C"),
    "instance.deidentified": ("110103", "C"),
    "instance.quarantined": ("110103", "R"),
    "instance.forwarded": ("110104", "R"),
    "instance.failed": ("110104", "R"),
    "security.alert": ("110113", "E"),
    "spool.retried": ("110103", "U"),
    "spool.purged": ("110103", "D"),
    "application.started": ("110100", "E"),
    "application.stopped": ("110100", "E"),
}


class Rsyslog:
    """rsyslogd -n with a plain and a TLS imtcp input; every message goes
    to out.log as: VERSION APP-NAME MSGID INPUT<TAB>RAW MESSAGE."""

    def __init__(self, processes, work, pki):
        self.processes, self.pki = processes, pki
        self.folder = os.path.join(work, "rsyslog")
        os.makedirs(os.path.join(self.folder, "work"))
        self.tcp_port, self.tls_port = free_port(), free_port()
        self.out = os.path.join(self.folder, "out.log")
        self.conf = os.path.join(self.folder, "rsyslog.conf")
        self.pid_file = os.path.join(self.folder, "rsyslogd.pid")
        self.starts = 0
        with open(self.conf, "w") as stream:
            stream.write(f"""\
global(workDirectory="{self.folder}/work" maxMessageSize="64k"
       DefaultNetstreamDriverCAFile="{pki.path('ca-bundle.pem')}"
       DefaultNetstreamDriverCertFile="{pki.path('server-chain.pem')}"
       DefaultNetstreamDriverKeyFile="{pki.path('server.key')}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}" name="tcp")
input(type="imtcp" address="127.0.0.1" port="{self.tls_port}" name="tls"
      StreamDriver.Name="ossl" StreamDriver.Mode="1"
      StreamDriver.AuthMode="x509/certvalid")
template(name="raw" type="string"
         string="%protocol-version% %app-name% %msgid% %inputname%\\t\
%rawmsg%\\n")
action(type="omfile" file="{self.out}" template="raw")
""")
        self.start()

    def start(self):
        self.starts += 1
        self.log_path = os.path.join(self.folder, f"rsyslogd-{self.starts}.log")
        self.process = self.processes.start(
            ["rsyslogd", "-n", "-f", self.conf, "-i", self.pid_file],
            self.log_path)
        if not wait_until(lambda: self.accepting(), 15, 0.1):
            raise RuntimeError(f"rsyslogd did not start; {self.log_path}")

    def accepting(self):
        for port in (self.tcp_port, self.tls_port):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
            except OSError:
                return False
        return True

    def stop(self):
        self.processes.stop(self.process)

    def records(self):
        """(version, app, msgid, input, raw) of every message so far."""
        if not os.path.exists(self.out):
            return []
        with open(self.out, encoding="utf-8", errors="replace") as stream:
            lines = stream.read().splitlines()
        records = []
        for line in lines:
            head, _, raw = line.partition("\t")
            records.append(tuple(head.split(" ", 3)) + (raw,))
        return records


def parse_message(raw):
    """{event_id, action, outcome, time, type, description, participants,
    details, instances, anonymized, pri} of one RFC 5424 message, or None
    if it is not ours."""
    match = HEADER.match(raw)
    if not match:
        return None
    root = ET.fromstring(match.group(5).encode())
    ident = root.find("EventIdentification")
    type_code = ident.find("EventTypeCode")
    description = ident.find("EventOutcomeDescription")
    return {
        "pri": match.group(1), "timestamp": match.group(2),
        "event_id": ident.find("EventID").get("csd-code"),
        "action": ident.get("EventActionCode"),
        "outcome": ident.get("EventOutcomeIndicator"),
        "time": ident.get("EventDateTime"),
        "type": type_code.get("csd-code") if type_code is not None else None,
        "description": description.text if description is not None else None,
        "participants": [
            dict(p.attrib, role=(p.find("RoleIDCode").get("csd-code")
                                 if p.find("RoleIDCode") is not None
                                 else None))
            for p in root.findall("ActiveParticipant")],
        "source": root.find("AuditSourceIdentification").get("AuditSourceID"),
        "details": {d.get("type"): base64.b64decode(d.get("value")).decode()
                    for d in root.iter("ParticipantObjectDetail")},
        "instances": [i.get("UID") for i in root.iter("Instance")],
        "anonymized": [a.text for a in root.iter("Anonymized")],
        "objects": [
            dict(o.attrib, id_type=tuple(
                o.find("ParticipantObjectIDTypeCode").get(a) for a in
                ("csd-code", "codeSystemName", "originalText")))
            for o in root.findall("ParticipantObjectIdentification")],
    }


def messages(rsyslog):
    """[(input, message)] of every message, after checking how rsyslog
    parsed its header."""
    found = []
    for version, app, msgid, input_name, raw in rsyslog.records():
        message = parse_message(raw)
        if message is None or (version, app, msgid) != ("1", "siren",
                                                        "DICOM+RFC3881"):
            raise AssertionError(f"not an RFC 5424 audit message: "
                                 f"{version} {app} {msgid} {raw[:200]!r}")
        found.append((input_name, message))
    return found


def audit_lines(path):
    """The audit file's events (the line the test damaged left out)."""
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream
                if line.strip() and line != DAMAGED]


def key_of_line(line):
    if line["event"] not in MAPPING:
        raise AssertionError(f"event {line['event']} has no A.5 mapping in "
                             "this test (nor, perhaps, in audit_a5.c)")
    fields = {k: str(v) for k, v in line.items() if k not in ("time",
                                                              "event")}
    return (line["time"],) + MAPPING[line["event"]] + (
        tuple(sorted(fields.items())),)


def key_of_message(message):
    return (message["time"], message["event_id"], message["action"],
            tuple(sorted(message["details"].items())))


def undelivered(ctx):
    """The audit lines that have no message (yet)."""
    have = {key_of_message(m) for _, m in messages(ctx["rsyslog"])}
    return [line for line in audit_lines(ctx["audit"])
            if key_of_line(line) not in have]


def wait_all_delivered(checks, ctx, what):
    missing = wait_until(lambda: not undelivered(ctx), DELIVERY_TIMEOUT_S,
                         0.2)
    left = undelivered(ctx)
    checks.expect(missing and not left,
                  f"{what}: {len(left)} audit lines without a message, "
                  f"e.g. {left[:2]}")


def wait_lines(ctx, event, count):
    return wait_until(lambda: sum(1 for line in audit_lines(ctx["audit"])
                                  if line["event"] == event) >= count,
                      DELIVERY_TIMEOUT_S, 0.2)


def plant(ctx, path, patient_id):
    """An instance with identifying values the audit must never show,
    which ctx["planted"] keeps: its Patient ID and Study Instance UID
    (make_instance also plants a name, accession number, birth date)."""
    study = generate_uid()
    ctx["planted"].update({patient_id, study})
    return make_instance(path, patient_id, "Meier^Anna", study_uid=study)


def send(ctx, gateway, names, site="site-a"):
    files = [os.path.join(ctx["work"], f"{n}.dcm") for n in names]
    uids = [plant(ctx, f, f"MRN-PHI-{n}") for n, f in zip(names, files)]
    return uids, storescu(ctx, gateway.tls_port, "SITEA", files, site)


def by_event(found, event_id, action=None):
    return [m for _, m in found if m["event_id"] == event_id and
            (action is None or m["action"] == action)]


def requestor(message):
    return [p for p in message["participants"]
            if p.get("UserIsRequestor") == "true"]


STUDY_OBJECT = {"ParticipantObjectTypeCode": "2",
                "ParticipantObjectTypeCodeRole": "3",
                "id_type": ("110180", "DCM", "Study Instance UID")}
PATIENT_OBJECT = {"ParticipantObjectTypeCode": "1",
                  "ParticipantObjectTypeCodeRole": "1",
                  "id_type": ("2", "RFC-3881", "Patient Number")}


def objects_like(message, kind):
    return [o for o in message["objects"]
            if all(o.get(k) == v for k, v in kind.items())]


def check_patient_and_study(checks, ctx, found, instances):
    """Every de-identification and delivery message names the study and
    the patient as Orthanc holds them (two messages per instance sent)."""
    archive = ctx["archive"]
    wanted = by_event(found, "110103", "C") + [
        m for m in by_event(found, "110104", "R") if m["outcome"] == "0"]
    checks.expect(len(wanted) >= 2 * instances,
                  f"{len(wanted)} de-identification and delivery messages "
                  f"for {instances} instances")
    for m in wanted:
        what = f"{m['event_id']} {m['action']} {m['instances']}"
        tags = (orthanc_instance(archive, m["instances"][0])
                if len(m["instances"]) == 1 else None)
        checks.expect(tags is not None, f"{what}: not in Orthanc")
        if tags is None:
            continue
        studies = objects_like(m, STUDY_OBJECT)
        patients = objects_like(m, PATIENT_OBJECT)
        checks.expect([o.get("ParticipantObjectID") for o in studies] ==
                      [tags.get("StudyInstanceUID")],
                      f"{what}: study objects {studies}, Orthanc has "
                      f"{tags.get('StudyInstanceUID')}")
        checks.expect(tags.get("PatientID") and
                      [o.get("ParticipantObjectID") for o in patients] ==
                      [tags["PatientID"]],
                      f"{what}: patient objects {patients}, Orthanc has "
                      f"{tags.get('PatientID')}")


def check_no_phi(checks, ctx):
    """No planted value in rsyslog's output (raw, and each base64 detail
    decoded) nor in the audit file."""
    planted = sorted(ctx["planted"] | {"Meier", "ACCPHI77", "19610307",
                                       "PHIMARK", "Phimark"})
    with open(ctx["rsyslog"].out, encoding="utf-8",
              errors="replace") as stream:
        texts = {"rsyslog output": stream.read()}
    texts["decoded details"] = "\n".join(
        v for _, m in messages(ctx["rsyslog"]) for v in m["details"].values())
    with open(ctx["audit"], encoding="utf-8", errors="replace") as stream:
        texts["audit file"] = stream.read()
    for where, text in texts.items():
        found = [p for p in planted if p in text]
        checks.expect(not found, f"{where}: identifying values {found}")


def scenario_tls(checks, ctx, gateway):
    uids, statuses = send(ctx, gateway, ["a0", "a1", "a2"])
    checks.expect(statuses == ["Success"] * 3, f"site A statuses {statuses}")
    expired = os.path.join(ctx["work"], "expired.dcm")
    plant(ctx, expired, "MRN-PHI-X")
    statuses = storescu(ctx, gateway.tls_port, "SITEA", [expired], "expired")
    checks.expect(statuses == [], f"expired certificate stored {statuses}")
    checks.expect(wait_lines(ctx, "instance.forwarded", 3),
                  "3 instances forwarded")
    wait_all_delivered(checks, ctx, "TLS")
    found = messages(ctx["rsyslog"])
    checks.expect(all(i == "tls" for i, _ in found),
                  f"inputs {sorted({i for i, _ in found})}, expected tls")
    for _, m in found:
        checks.expect(m["source"] == "SIREN" and m["time"] == m["timestamp"]
                      and m["pri"] in ("85", "84"),
                      f"source/time/PRI {m['source']} {m['time']} "
                      f"{m['timestamp']} {m['pri']}")
    received = by_event(found, "110104", "C")
    for uid in uids:
        mine = [m for m in received if m["instances"] == [uid]]
        checks.expect(len(mine) >= 1, f"no Instances Transferred for {uid}")
        for m in mine:
            who = requestor(m)
            checks.expect(len(who) == 1 and who[0].get("UserID") == "SITEA"
                          and who[0].get("NetworkAccessPointID") ==
                          "127.0.0.1" and who[0]["role"] == "110153" and
                          who[0].get("AlternativeUserID") == "AETITLES=SITEA",
                          f"received {uid}: requestor {who}")
            others = [p for p in m["participants"] if p not in who]
            checks.expect([p.get("UserID") for p in others] == ["SIREN"] and
                          others[0]["role"] == "110152",
                          f"received {uid}: destination {others}")
            file = m["details"].get("file")
            accessed = [a for a in by_event(found, "110103", "C")
                        if a["details"].get("file") == file]
            checks.expect(accessed and accessed[0]["anonymized"] == ["true"]
                          and accessed[0]["instances"] and
                          accessed[0]["instances"] != [uid],
                          f"{uid}: de-identification message {accessed}")
            sent = [s for s in by_event(found, "110104", "R")
                    if s["details"].get("file") == file]
            archive = f"ORTHANC@127.0.0.1:{ctx['archive'].dicom_port}"
            checks.expect(sent and requestor(sent[0])[0].get("UserID") ==
                          "SIREN" and any(p.get("UserID") == archive and
                                          p["role"] == "110152"
                                          for p in sent[0]["participants"]),
                          f"{uid}: forwarded message {sent}")
    begin = by_event(found, "110102", "E")
    checks.expect(begin and all("CN=site-a.example.org" in
                                requestor(b)[0].get("UserName", "")
                                for b in begin),
                  f"Begin Transferring with the certificate: {begin}")
    alerts = by_event(found, "110113", "E")
    checks.expect(len(alerts) >= 1 and all(
        a["type"] == "110126" and a["outcome"] == "8" and a["pri"] == "84"
        and "expired" in (a["description"] or "") and
        requestor(a)[0].get("NetworkAccessPointID") == "127.0.0.1"
        for a in alerts), f"Security Alert: {alerts}")
    started = by_event(found, "110100", "E")
    checks.expect(any(s["type"] == "110120" for s in started),
                  f"Application Start: {started}")
    check_patient_and_study(checks, ctx, found, 3)
    checks.count("messages over TLS", len(found))


def install_client_files(ctx, name):
    """The PKI's NAME certificate and key copied to the paths siren.conf
    gives the syslog sink (what an operator does before a SIGHUP)."""
    pki = ctx["pki"]
    chain = f"{name}-chain.pem" if os.path.exists(
        pki.path(f"{name}-chain.pem")) else f"{name}.pem"
    shutil.copyfile(pki.path(chain), ctx["syslog_cert"])
    shutil.copyfile(pki.path(f"{name}.key"), ctx["syslog_key"])
    os.chmod(ctx["syslog_key"], 0o600)


def reload_and_wait(gateway, event):
    """SIGHUP, then the log line event (one more than before)."""
    before = gateway.log().count(event)
    os.kill(gateway.process.pid, signal.SIGHUP)
    return wait_until(lambda: gateway.log().count(event) > before, 10, 0.1)


def scenario_rotate(checks, ctx, gateway):
    install_client_files(ctx, "selfsigned")
    checks.expect(reload_and_wait(gateway, "syslog.reloaded"),
                  "SIGHUP: no syslog.reloaded")
    retries = gateway.log().count("tail.retry sink=syslog")
    _, statuses = send(ctx, gateway, ["r0"])
    checks.expect(statuses == ["Success"], f"statuses {statuses}")
    checks.expect(wait_until(lambda: gateway.log().count(
        "tail.retry sink=syslog") > retries, 20, 0.2),
                  "an untrusted client certificate: no retry")
    checks.expect(len(undelivered(ctx)) >= 1,
                  "an untrusted client certificate: every line arrived "
                  "anyway (the old certificate still in use?)")
    install_client_files(ctx, "site-a")
    checks.expect(reload_and_wait(gateway, "syslog.reloaded"),
                  "SIGHUP: no syslog.reloaded")
    wait_all_delivered(checks, ctx, "the certificate restored")
    with open(ctx["syslog_key"], "w") as stream:
        stream.write("not a key\n")
    checks.expect(reload_and_wait(gateway, "syslog.reload_failed"),
                  "a key that does not load: no syslog.reload_failed")
    _, statuses = send(ctx, gateway, ["r1"])
    checks.expect(statuses == ["Success"], f"statuses {statuses}")
    wait_all_delivered(checks, ctx, "after a failed reload")
    install_client_files(ctx, "site-a")


def scenario_outage(checks, ctx, gateway):
    rsyslog = ctx["rsyslog"]
    rsyslog.stop()
    before = len(audit_lines(ctx["audit"]))
    uids, statuses = send(ctx, gateway, ["b0", "b1"])
    checks.expect(statuses == ["Success"] * 2,
                  f"statuses while the collector is away {statuses}")
    checks.expect(wait_lines(ctx, "instance.forwarded", 5),
                  "5 instances forwarded")
    checks.expect(wait_until(lambda: "tail.retry sink=syslog" in
                             gateway.log(), 20, 0.2),
                  "no syslog retry in the gateway's log")
    checks.expect(len(undelivered(ctx)) >= 6,
                  f"{len(audit_lines(ctx['audit'])) - before} new lines, "
                  f"{len(undelivered(ctx))} undelivered")
    rsyslog.start()
    wait_all_delivered(checks, ctx, "after the outage")
    found = messages(rsyslog)
    for uid in uids:
        checks.expect(any(m["instances"] == [uid]
                          for m in by_event(found, "110104", "C")),
                      f"{uid} sent during the outage: no message")


def scenario_plain(checks, ctx, gateway):
    checks.expect(ctx["processes"].stop(gateway.process) == 0,
                  "gateway exit status")
    with open(ctx["audit"], "a") as stream:  # a damaged line: passed over
        stream.write(DAMAGED)
    ctx["env"].update(SIREN_SYSLOG=f"tcp://127.0.0.1:"
                                   f"{ctx['rsyslog'].tcp_port}",
                      SIREN_SYSLOG_CA="", SIREN_SYSLOG_CERT="",
                      SIREN_SYSLOG_KEY="")
    gateway = Gateway(ctx, "gateway-tcp")
    uids, statuses = send(ctx, gateway, ["c0"])
    checks.expect(statuses == ["Success"], f"statuses {statuses}")
    checks.expect(wait_lines(ctx, "instance.forwarded", 6),
                  "6 instances forwarded")
    wait_all_delivered(checks, ctx, "plain TCP")
    found = messages(ctx["rsyslog"])
    checks.expect(any(i == "tcp" and m["instances"] == uids
                      for i, m in found),
                  f"{uids[0]}: nothing on the plain input")
    checks.expect(any(m["type"] == "110121"
                      for m in by_event(found, "110100", "E")),
                  "no Application Stop")
    checks.expect("syslog.skipped reason=\"not a value at byte 39" in
                  gateway.log(), "the damaged line was not passed over")
    ctx["processes"].stop(gateway.process)
    wait_all_delivered(checks, ctx, "after the stop")
    with open(ctx["audit"] + ".syslog-offset") as stream:
        offset = int(stream.read())
    checks.expect(offset == os.path.getsize(ctx["audit"]),
                  f"offset {offset}, audit file "
                  f"{os.path.getsize(ctx['audit'])} bytes")
    check_patient_and_study(checks, ctx, messages(ctx["rsyslog"]), 6)
    report = tls_orthanc.sanitizer_report(gateway.log())
    checks.expect(not report, f"sanitizer: {report}")


def run(checks, ctx):
    gateway = Gateway(ctx, "gateway")
    for name, scenario in (("tls", scenario_tls),
                           ("rotate", scenario_rotate),
                           ("outage", scenario_outage)):
        checks.scenario = name
        scenario(checks, ctx, gateway)
    report = tls_orthanc.sanitizer_report(gateway.log())
    checks.expect(not report, f"sanitizer: {report}")
    checks.scenario = "plain"
    scenario_plain(checks, ctx, gateway)
    checks.scenario = "phi"
    check_no_phi(checks, ctx)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--pki-script", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="pydicom")
    missing = [t for t in ("rsyslogd", "Orthanc", "storescu", "openssl")
               if shutil.which(t) is None]
    if not os.path.exists(OSSL_DRIVER):
        missing.append("rsyslog-openssl")
    if missing:
        print(f"audit_syslog: cannot run, missing {missing} "
              "(scripts/deps.sh test installs them)")
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
           "audit": os.path.join(work, "audit.jsonl"), "planted": set()}

    def body():
        checks.scenario = "setup"
        ctx["pki"] = pki = tls_orthanc.Pki(os.path.abspath(args.pki_script),
                                           work)
        key = os.path.join(work, "pseudonym.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(os.urandom(32).hex())
        ctx["rsyslog"] = rsyslog = Rsyslog(processes, work, pki)
        ctx["syslog_cert"] = os.path.join(work, "syslog-client.pem")
        ctx["syslog_key"] = os.path.join(work, "syslog-client.key")
        install_client_files(ctx, "site-a")
        ctx["archive"] = Archive(checks, processes, work, "orthanc")
        ctx["archive"].wait_started()
        ctx["env"] = dict(os.environ, SIREN_SPOOL=ctx["spool"],
                          SIREN_TLS_PORT="0", SIREN_PLAIN_PORT="0",
                          SIREN_TLS_CERT=pki.path("server-chain.pem"),
                          SIREN_TLS_KEY=pki.path("server.key"),
                          SIREN_SITES_CA=pki.path("ca-bundle.pem"),
                          SIREN_PSEUDONYM_KEY=key,
                          SIREN_ARCHIVE_PORT=str(ctx["archive"].dicom_port),
                          SIREN_ARCHIVE_AET=tls_orthanc.ORTHANC_AET,
                          SIREN_AUDIT_FILE=ctx["audit"],
                          SIREN_METRICS_PORT=str(free_port()),
                          SIREN_SYSLOG=f"tls://127.0.0.1:{rsyslog.tls_port}",
                          SIREN_SYSLOG_CA=pki.path("ca-bundle.pem"),
                          SIREN_SYSLOG_CERT=ctx["syslog_cert"],
                          SIREN_SYSLOG_KEY=ctx["syslog_key"])
        run(checks, ctx)
        ctx["archive"].stop()

    return tls_orthanc.run_reported(checks, processes, started, body)


if __name__ == "__main__":
    sys.exit(main())
