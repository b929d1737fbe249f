#!/usr/bin/python3
"""service_crash.py - the gateway's durability promises under kill -9, a
full spool and signals: `siren serve -c examples/siren.conf` between
senders and a real Orthanc.

Debian's Orthanc is the archive (service_e2e.py's Archive), the PKI is
made fresh (pki.py), the instances are made here with pydicom and carry
planted PHI ("Phimark" names, "PHIMARK" institution) and an Instance
Number that basic.policy keeps. The expected de-identified SOP Instance
UIDs come from `siren apply --policy examples/policies/basic.policy`
with the same pseudonym key (keyed UIDs are a pure function of the key
and the original).

  1. crash     N instances (300; 1000 with --full) from two senders at
               once, both site A over DICOM-TLS, in associations of 40:
               DCMTK `storescu +tls` and `siren send --tls`. The gateway
               is killed with SIGKILL --kills times (4), each after a
               random number of instances stored by the current run and
               a random pause, then once more while the spool drains if
               it holds anything then; it is started again each time on
               the same ports with the same spool. Each sender reads its
               per-file statuses and sends again only what it was not
               told Success, as a site would, until everything is
               acknowledged. Then: every instance is in Orthanc exactly
               once (by its de-identified UID), Orthanc holds nothing
               else, no original UID, no planted value is in Orthanc's
               files and every one says PatientIdentityRemoved YES;
               after a clean stop (SIGTERM, exit 0) the spool is empty:
               nothing in received/, outgoing/, quarantine/, failed/, no
               '.'-names; no instance.stuck/quarantined/failed logged;
               every line of the audit trail is JSON. Counted, not
               failed: audit records missing after the kills (the audit
               writer queues events; a kill -9 loses what it had not
               written yet).
  2. quota     SIREN_SPOOL_QUOTA=256KiB, Orthanc stopped, 8 KiB
               instances sent with `storescu -nh` (goes on after a
               refusal): Success until the spool holds the quota, then
               A700 (Refused: Out of Resources), the first one at most
               QUOTA_LAG_S after the spool (measured by the test every
               50 ms) came within two instances of the quota; Success
               again only after a spool.available (de-identified files
               are smaller: the usage may dip under the quota). The
               spool holds exactly the acknowledged instances; once
               Orthanc is back they are all delivered and none of the
               refused ones is; the spool drains (spool.available) and
               the refused ones, sent again, are accepted and delivered.
  3. signals   on a copy of examples/ (siren.conf and its policies, so
               that the test may edit a policy): a second gateway on
               the same spool is refused at start; SIGHUP with basic.policy
               at version 2 on disk (instances after the reload carry
               "SIREN basic version 2" in DeidentificationMethod); SIGHUP
               with a broken basic.policy (policy.failed logged, version
               2 stays); SIGHUP with a changed siren.conf (all or
               nothing: refused while a policy is broken, in force once
               it compiles; a changed archive port reported as needing
               a restart); SIGTERM in the middle of an association (the
               association finishes, every file Success, exit 0; the next
               start delivers what the spool kept).
  4. requeue   `siren spool retry --all quarantine` while four senders
               keep the processors busy: released instances are older by
               name than those in hand, and an instance already
               processed must not be taken up again (it was, before the
               processor skipped names gone from received/: an
               instance.stuck line and an orphan NAME.reason).

Usage:
  /usr/bin/python3 service_crash.py --siren build/gateway/siren \\
      --config examples/siren.conf --pki-script tests/integration/pki.py \\
      --work /tmp/service_crash [--full] [--count N] [--kills K]
      [--seed S] [--only crash|quota|signals|requeue]

Exit status: 0 every check passed, 1 a check failed, 2 the test could not
run (a missing tool). About 60 s (--full: about 2 minutes).
"""

import argparse
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from datetime import datetime, timezone

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import service_e2e
import tls_orthanc
from tls_orthanc import Checks, Processes, free_port, wait_until

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
STAGES = ("received", "outgoing", "quarantine", "failed")
PLANTED = (b"PHIMARK", b"Phimark", b"ACCPHI77", b"19610307")
SEND_DEADLINE_S = 300       # all instances acknowledged by then
DELIVERY_TIMEOUT_S = 120
QUOTA = 256 * 1024
QUOTA_TEXT = "256KiB"
QUOTA_LAG_S = 3.5           # measured every 2 s, a poll of 0.5 s, noise
TOOL_TIMEOUT_S = 180


# ---------------------------------------------------------------------------
# Instances and their expected pseudonyms
# ---------------------------------------------------------------------------


def make_instance(path, number, side, study_uid, series_uid):
    """A CT image of side x side 16-bit pixels with planted PHI; its
    Instance Number (kept by basic.policy) identifies it."""
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientName = f"Phimark^Crash{number}"
    ds.PatientID = f"MRN{number % 7}PHIMARK"
    ds.PatientBirthDate = "19610307"
    ds.AccessionNumber = "ACCPHI77"
    ds.InstitutionName = "Hospital PHIMARK"
    ds.ReferringPhysicianName = "Doctor^Phimark"
    ds.StudyDate = "20240301"
    ds.Modality = "CT"
    ds.InstanceNumber = number
    ds.Rows = ds.Columns = side
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = random.Random(number).randbytes(side * side * 2)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.save_as(path, write_like_original=False)


def make_set(folder, first, count, side):
    """count instances numbered first.. in folder (one study, one series
    per 100); returns {path: number}."""
    os.makedirs(folder)
    study = generate_uid()
    series = None
    made = {}
    for number in range(first, first + count):
        if (number - first) % 100 == 0:
            series = generate_uid()
        path = os.path.join(folder, f"i{number:05d}.dcm")
        make_instance(path, number, side, study, series)
        made[path] = number
    return made


def expected_uids(ctx, folder):
    """{Instance Number: de-identified SOP Instance UID} of the instances
    in folder under basic.policy with the test's key."""
    out = folder.rstrip("/") + "-expected"
    shutil.rmtree(out, ignore_errors=True)
    status, stdout, stderr = tls_orthanc.run_tool(
        [ctx["siren"], "apply", "--policy", ctx["basic_policy"], "-o", out,
         "-q", folder], env=ctx["env"])
    if status != 0:
        raise RuntimeError(f"siren apply: {status}: {stdout}{stderr}")
    uids = {}
    for name in os.listdir(out):
        ds = pydicom.dcmread(os.path.join(out, name),
                             stop_before_pixels=True)
        uids[int(ds.InstanceNumber)] = str(ds.SOPInstanceUID)
    shutil.rmtree(out)
    return uids


# ---------------------------------------------------------------------------
# The gateway
# ---------------------------------------------------------------------------


def log_time(line):
    """The time of a log line (epoch seconds), or None."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ", line)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%f") \
        .replace(tzinfo=timezone.utc).timestamp()


class Gateway:
    """siren serve -c CONFIG on fixed ports (kept across restarts), each
    run with its own log: NAME-1.log, NAME-2.log, ..."""

    def __init__(self, ctx, name, env, config=None):
        self.ctx, self.name, self.env = ctx, name, env
        self.config = config or ctx["config"]
        self.runs = 0
        self.logs = []
        self.process = None
        self.start()

    def start(self):
        self.runs += 1
        path = os.path.join(self.ctx["work"], f"{self.name}-{self.runs}.log")
        self.logs.append(path)
        self.process = self.ctx["processes"].start(
            [self.ctx["siren"], "serve", "-c", self.config], path,
            env=self.env)
        started = wait_until(lambda: self.process.poll() is not None or
                             "serve.listening" in self.log(), 30, 0.05)
        if self.process.poll() is not None or not started:
            raise RuntimeError(f"siren serve did not start (exit "
                               f"{self.process.poll()}); log {path}")

    def log(self, run=None):
        path = self.logs[-1] if run is None else self.logs[run]
        with open(path, encoding="latin-1") as stream:
            return stream.read()

    def all_logs(self):
        return "".join(self.log(i) for i in range(len(self.logs)))

    def events(self, event, text=None):
        text = self.all_logs() if text is None else text
        return [line for line in text.splitlines() if f" {event} " in line]

    def signal(self, signo):
        self.process.send_signal(signo)

    def kill(self):
        """SIGKILL and wait for the end."""
        self.process.kill()
        self.process.wait()
        if self.process in self.ctx["processes"].running:
            self.ctx["processes"].running.remove(self.process)

    def stop(self, timeout_s=30):
        """SIGTERM: the exit status."""
        return self.ctx["processes"].stop(self.process, timeout_s=timeout_s)

    def sanitizer_reports(self):
        reports = []
        for i in range(len(self.logs)):
            report = tls_orthanc.sanitizer_report(self.log(i))
            if report:
                reports.append(f"{os.path.basename(self.logs[i])}: {report}")
        return reports


def gateway_env(ctx, name, spool, **extra):
    """The environment of a gateway: its spool, its audit trail
    (NAME-audit.jsonl), its ports (kept across restarts)."""
    env = dict(ctx["env"], SIREN_SPOOL=spool,
               SIREN_TLS_PORT=str(free_port()),
               SIREN_PLAIN_PORT=str(free_port()),
               SIREN_METRICS_PORT=str(free_port()),
               SIREN_AUDIT_FILE=os.path.join(ctx["work"],
                                             f"{name}-audit.jsonl"))
    env.update(extra)
    return env


def spool_state(spool):
    """{stage: sorted names} of every entry, '.'-names included."""
    state = {}
    for stage in STAGES:
        folder = os.path.join(spool, stage)
        state[stage] = sorted(os.listdir(folder)) if os.path.isdir(folder) \
            else []
    return state


def spool_usage(spool):
    """Bytes of the regular files of the stages, as the gateway counts."""
    total = 0
    for stage in STAGES:
        folder = os.path.join(spool, stage)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def finished(names):
    return [n for n in names if n.endswith(".dcm") and not n.startswith(".")]


def summary_of(state):
    parts = []
    for stage, names in state.items():
        dots = [n for n in names if n.startswith(".")]
        if names:
            parts.append(f"{stage}={len(finished(names))}"
                         + (f"+{len(dots)} dot({', '.join(dots[:3])})"
                            if dots else "")
                         + (f"+{len(names) - len(finished(names)) - len(dots)}"
                            " other" if len(names) - len(finished(names)) -
                            len(dots) else ""))
    return " ".join(parts) or "empty"


# ---------------------------------------------------------------------------
# Senders
# ---------------------------------------------------------------------------


def run_storescu(ctx, port, files, extra=(), aet="SITEA"):
    """storescu +tls with site A's certificate, calling AE title aet:
    {path: response text} for the files it got a response for, and its
    output."""
    pki = ctx["pki"]
    command = ["storescu", "-v", "-to", "10", "-ta", "10", "-ts", "30",
               "-aet", aet, "-aec", "SIREN", *extra,
               "+tls", pki.path("site-a.key"), pki.path("site-a-chain.pem"),
               "+cf", pki.path("ca-bundle.pem"), "127.0.0.1", str(port),
               *files]
    status, out, err = tls_orthanc.run_tool(command,
                                            timeout_s=TOOL_TIMEOUT_S)
    responses, current = {}, None
    for line in (out + err).splitlines():
        match = re.search(r"Sending file: (.*)$", line)
        if match:
            current = match.group(1).strip()
            continue
        match = re.search(r"Received Store Response \((.*)\)\s*$", line)
        if match and current:
            responses[current] = match.group(1)
            current = None
    return responses, status, out + err


def storescu_stored(text):
    return text == "Success" or text.startswith("Warning")


def run_siren_send(ctx, port, files):
    """siren send --tls as site A: {path: response text} for the files the
    peer answered, and its output."""
    pki = ctx["pki"]
    command = [ctx["siren"], "send", "--tls", "--tls-ca",
               pki.path("ca-bundle.pem"), *pki.site_a_options(),
               "--tls-server-name", "localhost", "--timeout", "30",
               "--aet", "SITEA", "--call", "SIREN", "127.0.0.1", str(port),
               *files]
    status, out, err = tls_orthanc.run_tool(command,
                                            timeout_s=TOOL_TIMEOUT_S)
    responses = {}
    wanted = set(files)
    for line in out.splitlines():
        match = re.match(r"(.*): status 0x([0-9A-Fa-f]{4}), (.*)$", line)
        if match and match.group(1) in wanted:
            code = int(match.group(2), 16)
            responses[match.group(1)] = "Success" if code == 0 else \
                f"0x{code:04X} {match.group(3)}"
    return responses, status, out + err


class Sender(threading.Thread):
    """Sends its files in associations of at most BATCH files (a site
    sending study by study) until each was acknowledged with Success;
    after a failure (the gateway away) it pauses and sends again only
    what was not acknowledged, as a site would; within a deadline."""

    BATCH = 40

    def __init__(self, ctx, name, tool, port, files):
        super().__init__(name=name, daemon=True)
        self.ctx, self.tool, self.port = ctx, tool, port
        self.files = sorted(files)
        self.acked = set()
        self.associations = 0
        self.refusals = {}      # response text other than Success: count
        self.unanswered = 0     # files sent with no response (gateway gone)
        self.error = None

    def send(self, files):
        """Sends files in one association; True if each got a response."""
        self.associations += 1
        if self.tool == "storescu":
            responses, _, _ = run_storescu(self.ctx, self.port, files)
            stored = storescu_stored
        else:
            responses, _, _ = run_siren_send(self.ctx, self.port, files)
            stored = lambda text: text == "Success"
        for path in files:
            text = responses.get(path)
            if text is None:
                self.unanswered += 1
            elif stored(text):
                self.acked.add(path)
            else:
                self.refusals[text] = self.refusals.get(text, 0) + 1
        return all(path in responses for path in files)

    def run(self):
        try:
            deadline = time.monotonic() + SEND_DEADLINE_S
            while len(self.acked) < len(self.files) and \
                    time.monotonic() < deadline:
                remaining = [f for f in self.files if f not in self.acked]
                for first in range(0, len(remaining), self.BATCH):
                    if not self.send(remaining[first:first + self.BATCH]):
                        time.sleep(random.uniform(0.1, 0.4))
                        break
        except Exception as error:  # reported by the scenario
            self.error = f"{type(error).__name__}: {error}"
            traceback.print_exc()


# ---------------------------------------------------------------------------
# Orthanc
# ---------------------------------------------------------------------------


def orthanc_instances(archive):
    """{Orthanc ID: SOP Instance UID} of every instance Orthanc holds."""
    status, answer = archive.request("POST", "/tools/find", {
        "Level": "Instance", "Query": {}, "Expand": True})
    if status != 200:
        raise RuntimeError(f"/tools/find: HTTP {status}: {answer}")
    return {item["ID"]: item["MainDicomTags"].get("SOPInstanceUID")
            for item in answer}


def check_orthanc_files(checks, archive, ids, what):
    """No planted value (the originals' names among them) and
    PatientIdentityRemoved YES in each of Orthanc's files ids."""
    bad = []
    for instance in sorted(ids):
        content = archive.get(f"/instances/{instance}/file", raw=True)
        found = [p.decode() for p in PLANTED if p in content]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(content), stop_before_pixels=True)
        removed = ds.get("PatientIdentityRemoved")
        if found or removed != "YES":
            bad.append(f"{instance}: planted {found}, "
                       f"PatientIdentityRemoved {removed!r}")
    checks.expect(not bad, f"{what}: {len(bad)} of Orthanc's files not "
                           f"de-identified: {bad[:3]}")


# ---------------------------------------------------------------------------
# Scenario 1: crash
# ---------------------------------------------------------------------------


def stored_now(gateway):
    """store.ok lines of the current run."""
    return gateway.log().count(" store.ok ")


def kill_and_restart(ctx, gateway, spool, notes, what):
    gateway.kill()
    state = spool_state(spool)
    both = set(finished(state["received"])) & set(finished(state["outgoing"]))
    notes.append(f"kill {gateway.runs} ({what}): spool {summary_of(state)}"
                 + (f", {len(both)} in received and outgoing" if both
                    else ""))
    print(f"  {notes[-1]}", flush=True)
    time.sleep(random.uniform(0.2, 1.5))   # the senders meet a closed port
    gateway.start()


def scenario_crash(checks, ctx):
    work, archive = ctx["work"], ctx["archive"]
    count, kills = ctx["count"], ctx["kills"]
    half = count // 2
    files_a = make_set(os.path.join(work, "crash-a"), 1, half, 16)
    files_b = make_set(os.path.join(work, "crash-b"), half + 1,
                       count - half, 16)
    number_of = dict(files_a, **files_b)
    expected = expected_uids(ctx, os.path.join(work, "crash-a"))
    expected.update(expected_uids(ctx, os.path.join(work, "crash-b")))
    checks.expect(len(expected) == count and
                  len(set(expected.values())) == count,
                  f"siren apply made {len(expected)} outputs "
                  f"({len(set(expected.values()))} UIDs) for {count}")
    before = orthanc_instances(archive)
    spool = os.path.join(work, "spool-crash")
    gateway = Gateway(ctx, "crash", gateway_env(ctx, "crash", spool))
    port = gateway.env["SIREN_TLS_PORT"]
    senders = [Sender(ctx, "storescu", "storescu", port, files_a),
               Sender(ctx, "siren-send", "siren", port, files_b)]
    started = time.monotonic()
    for sender in senders:
        sender.start()
    # Each kill after a random number of instances stored by the current
    # run (so that the senders are back at work), then a random pause (so
    # that it falls anywhere in the receive, process, forward cycle).
    notes = []
    share = max(count // (kills + 1), 4)
    sending = lambda: any(s.is_alive() for s in senders)
    for _ in range(kills):
        target = random.randint(max(share // 4, 2), share)
        wait_until(lambda: stored_now(gateway) >= target or not sending(),
                   SEND_DEADLINE_S, 0.02)
        if not sending():
            break
        time.sleep(random.uniform(0, 0.4))
        kill_and_restart(ctx, gateway, spool, notes, "sending")
    for sender in senders:
        sender.join(SEND_DEADLINE_S + TOOL_TIMEOUT_S)
    send_s = time.monotonic() - started
    # One more while the processors and the forwarder drain the spool, if
    # they are not done yet.
    state = spool_state(spool)
    if finished(state["received"]) or finished(state["outgoing"]):
        kill_and_restart(ctx, gateway, spool, notes, "draining")
    checks.count("kills", len(notes))
    checks.expect(len(notes) >= min(kills, 2), f"only {len(notes)} kills "
                  "while the senders were sending")
    for sender in senders:
        checks.expect(not sender.error, f"{sender.name}: {sender.error}")
        checks.expect(len(sender.acked) == len(sender.files),
                      f"{sender.name}: {len(sender.acked)} of "
                      f"{len(sender.files)} acknowledged in "
                      f"{SEND_DEADLINE_S} s ({sender.associations} "
                      f"associations)")
        unexpected = {t: n for t, n in sender.refusals.items()}
        checks.expect(not unexpected, f"{sender.name}: refused with "
                                      f"{unexpected}")
        checks.count(f"{sender.name}: associations, files unanswered",
                     f"{sender.associations}, {sender.unanswered}")
    acked = set().union(*(s.acked for s in senders))
    want = {expected[number_of[p]] for p in acked}

    def drained():
        state = spool_state(spool)
        have = set(orthanc_instances(archive).values())
        return not finished(state["received"]) and \
            not finished(state["outgoing"]) and want <= have
    checks.expect(wait_until(drained, DELIVERY_TIMEOUT_S, 0.5),
                  f"not drained in {DELIVERY_TIMEOUT_S} s: spool "
                  f"{summary_of(spool_state(spool))}")
    status = gateway.stop()
    checks.expect(status == 0, f"siren serve exited with {status} at the "
                               f"clean stop")
    state = spool_state(spool)
    checks.expect(not any(state.values()),
                  f"spool not empty after the clean stop: "
                  f"{ {k: v[:5] for k, v in state.items() if v} }")
    # Orthanc: each instance once, nothing else.
    now = orthanc_instances(archive)
    new = {i: uid for i, uid in now.items() if i not in before}
    by_uid = {}
    for instance, uid in new.items():
        by_uid.setdefault(uid, []).append(instance)
    missing = sorted(want - set(by_uid))
    checks.expect(not missing, f"{len(missing)} acknowledged instances not "
                               f"in Orthanc: {missing[:5]}")
    twice = {u: ids for u, ids in by_uid.items() if len(ids) > 1}
    checks.expect(not twice, f"in Orthanc more than once: "
                             f"{list(twice.items())[:3]}")
    extra = sorted(set(by_uid) - set(expected.values()))
    checks.expect(not extra, f"{len(extra)} unexpected instances in "
                             f"Orthanc: {extra[:5]}")
    for uid in [str(pydicom.dcmread(p, stop_before_pixels=True)
                    .SOPInstanceUID) for p in list(number_of)[:20]]:
        checks.expect(not archive.lookup(uid), f"original UID {uid} in "
                                               "Orthanc")
    check_orthanc_files(checks, archive, new, "crash")
    text = gateway.all_logs()
    for event in ("instance.quarantined", "instance.stuck",
                  "instance.failed", "forward.failed", "spool.unreadable"):
        lines = gateway.events(event, text)
        checks.expect(not lines, f"{len(lines)} {event}: {lines[:2]}")
    reports = gateway.sanitizer_reports()
    checks.expect(not reports, f"sanitizer: {reports}")
    audit_findings(checks, gateway, text)
    stored = len(gateway.events("store.ok", text))
    checks.count("instances acknowledged", len(acked))
    checks.count("store.ok (stored again: unacknowledged before a kill)",
                 f"{stored} ({stored - len(acked)})")
    checks.count("sending, seconds", round(send_s, 1))
    for note in notes:
        checks.count(note.split(":")[0], note.split(": ", 1)[1])


def audit_findings(checks, gateway, text):
    """The audit trail after the kills: every line a JSON object (a kill
    must not leave a torn line that the next run appends to). Counted, not
    failed: spool files the logs name that have no instance.received,
    instance.deidentified or instance.forwarded record (the audit writer
    queues events, and a kill -9 loses those not yet written)."""
    records, bad = [], []
    with open(gateway.env["SIREN_AUDIT_FILE"], encoding="utf-8",
              errors="replace") as stream:
        for line in stream:
            try:
                records.append(json.loads(line))
            except ValueError:
                bad.append(line[:120])
    checks.expect(not bad, f"audit: {len(bad)} lines not JSON: {bad[:2]}")
    by_event = {}
    for record in records:
        by_event.setdefault(record.get("event"), set()).add(
            record.get("file"))
    def named(event):
        return {re.search(r" file=(?:\S*/)?(\S+)", l).group(1)
                for l in gateway.events(event, text)}
    received = named("store.ok") | named("instance.processed") | \
        named("forward.delivered")
    missing = {
        "instance.received": received - by_event.get("instance.received",
                                                     set()),
        "instance.deidentified": named("instance.processed") -
        by_event.get("instance.deidentified", set()),
        "instance.forwarded": named("forward.delivered") -
        by_event.get("instance.forwarded", set())}
    checks.count("audit records missing after kills (received, "
                 "deidentified, forwarded)",
                 ", ".join(str(len(v)) for v in missing.values()))
    checks.count("audit: a spool file with no instance.received record",
                 sorted(missing["instance.received"])[:1])


# ---------------------------------------------------------------------------
# Scenario 2: quota
# ---------------------------------------------------------------------------


class UsageWatch(threading.Thread):
    """Measures the spool every 50 ms; remembers when it first held
    limit bytes. (The gateway may see the quota reached earlier than
    this watch: an instance being de-identified is in received/ and
    outgoing/ at once for a moment. Hence the limit: the quota less
    two instances.)"""

    def __init__(self, spool, limit):
        super().__init__(daemon=True)
        self.spool, self.limit = spool, limit
        self.reached = None
        self.peak = 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            usage = spool_usage(self.spool)
            self.peak = max(self.peak, usage)
            if usage >= self.limit and self.reached is None:
                self.reached = time.time()
            time.sleep(0.05)


def scenario_quota(checks, ctx):
    work = ctx["work"]
    count = 160
    files = make_set(os.path.join(work, "quota"), 20001, count, 64)
    expected = expected_uids(ctx, os.path.join(work, "quota"))
    archive = ctx["archive"]
    before = orthanc_instances(archive)
    archive.stop()
    spool = os.path.join(work, "spool-quota")
    gateway = Gateway(ctx, "quota", gateway_env(
        ctx, "quota", spool, SIREN_SPOOL_QUOTA=QUOTA_TEXT))
    port = gateway.env["SIREN_TLS_PORT"]
    watch = UsageWatch(spool, QUOTA - 2 * os.path.getsize(min(files)))
    watch.start()
    paths = sorted(files)
    responses, status, output = run_storescu(ctx, port, paths, ["-nh"])
    watch.stopping.set()
    watch.join()
    statuses = [responses.get(p) for p in paths]
    acked = [p for p in paths if responses.get(p) == "Success"]
    refused = [p for p in paths if responses.get(p) and
               re.search(r"out ?of ?resources|a700",
                         responses[p].lower().replace(" ", ""))]
    checks.expect(len(acked) + len(refused) == count,
                  f"statuses other than Success and A700: "
                  f"{sorted(set(statuses) - {'Success'})[:5]}; storescu: "
                  f"{output[-500:]}")
    checks.expect(acked and refused, f"{len(acked)} Success, "
                                     f"{len(refused)} A700")
    text = gateway.log()
    full = gateway.events("spool.full", text)
    checks.expect(full, "no spool.full logged")
    # Success after an A700 only if the gateway found the spool below its
    # quota again meanwhile (de-identified files are smaller than the
    # originals: the usage may dip back under the quota).
    first_refused = next((i for i, p in enumerate(paths) if p in refused),
                         count)
    later = [p for p in paths[first_refused:] if p in acked]
    checks.expect(not later or gateway.events("spool.available", text),
                  f"{len(later)} Success after the first A700, and no "
                  f"spool.available: "
                  f"{[s[:10] if s else s for s in statuses]}")
    refusal_lines = [l for l in gateway.events("store.refused", text)
                     if "0xA700" in l]
    checks.expect(len(refusal_lines) == len(refused),
                  f"{len(refusal_lines)} store.refused 0xA700 lines for "
                  f"{len(refused)} refusals")
    if refusal_lines and watch.reached:
        lag = log_time(refusal_lines[0]) - watch.reached
        checks.count("first A700 after the spool came near the quota, s",
                     round(lag, 2))
        checks.expect(lag <= QUOTA_LAG_S, f"the first A700 came {lag:.2f} s "
                                          f"after the spool held the quota")
    checks.expect(watch.reached, f"the spool never came near {QUOTA} "
                                 f"bytes (peak {watch.peak})")
    checks.count("acknowledged, refused", f"{len(acked)}, {len(refused)}")
    checks.count("spool peak, bytes", watch.peak)
    # The spool holds exactly what was acknowledged.
    wait_until(lambda: not finished(spool_state(spool)["received"]), 20,
               0.2)
    state = spool_state(spool)
    checks.expect(len(finished(state["outgoing"])) == len(acked) and
                  not finished(state["received"]),
                  f"spool {summary_of(state)} for {len(acked)} "
                  f"acknowledged")
    checks.expect(len(gateway.events("store.ok", text)) == len(acked),
                  f"{len(gateway.events('store.ok', text))} store.ok for "
                  f"{len(acked)} acknowledged")
    # Orthanc back: the acknowledged ones, none of the refused.
    ctx["archive"] = archive = archive.restart()
    want = {expected[files[p]] for p in acked}
    unwanted = {expected[files[p]] for p in refused}
    checks.expect(wait_until(lambda: want <= set(
        orthanc_instances(archive).values()), DELIVERY_TIMEOUT_S, 0.5),
        f"acknowledged instances not delivered in {DELIVERY_TIMEOUT_S} s")
    wait_until(lambda: not finished(spool_state(spool)["outgoing"]), 20, 0.2)
    now = orthanc_instances(archive)
    got = {uid for i, uid in now.items() if i not in before}
    checks.expect(not (got & unwanted), f"{len(got & unwanted)} refused "
                                        f"instances in Orthanc")
    checks.expect(got == want, f"Orthanc got {len(got)} instances for "
                               f"{len(want)} acknowledged")
    def available():
        states = [l for l in gateway.log().splitlines()
                  if " spool.full " in l or " spool.available " in l]
        return states and " spool.available " in states[-1]
    checks.expect(wait_until(available, 10, 0.2),
                  "no spool.available after the drain")
    # The refused ones, sent again, are accepted now.
    responses, status, output = run_storescu(ctx, port, refused, ["-nh"])
    again = [p for p in refused if responses.get(p) == "Success"]
    checks.expect(len(again) == len(refused),
                  f"{len(again)} of {len(refused)} refused instances "
                  f"accepted when sent again: "
                  f"{sorted(set(responses.values()))[:3]}")
    want |= {expected[files[p]] for p in again}
    checks.expect(wait_until(lambda: want <= set(
        orthanc_instances(archive).values()), DELIVERY_TIMEOUT_S, 0.5),
        "the instances sent again were not delivered")
    wait_until(lambda: not finished(spool_state(spool)["outgoing"]) and
               not finished(spool_state(spool)["received"]), 20, 0.2)
    status = gateway.stop()
    checks.expect(status == 0, f"siren serve exited with {status}")
    state = spool_state(spool)
    checks.expect(not any(state.values()), f"spool not empty after the "
                                           f"clean stop: {summary_of(state)}")
    new = {i: u for i, u in orthanc_instances(archive).items()
           if i not in before}
    checks.expect(set(new.values()) == want and len(new) == len(want),
                  f"Orthanc holds {len(new)} new instances for "
                  f"{len(want)} acknowledged")
    check_orthanc_files(checks, archive, new, "quota")
    reports = gateway.sanitizer_reports()
    checks.expect(not reports, f"sanitizer: {reports}")


# ---------------------------------------------------------------------------
# Scenario 3: signals
# ---------------------------------------------------------------------------

POLICY_V2 = """\
policy "basic" version 2
  profile basic
  key file "${SIREN_PSEUDONYM_KEY}"
  replace PatientID with hash
end
"""

POLICY_BROKEN = """\
policy "basic" version 3
  profile basic
  key file "${SIREN_PSEUDONYM_KEY}"
  replace PatientID with
end
"""


def method_of(archive, uid):
    ids = archive.lookup(uid)
    if not ids:
        return None
    tags = archive.get(f"/instances/{ids[0]}/simplified-tags")
    return tags.get("DeidentificationMethod", "")


def send_one(checks, ctx, gateway, path, expected, what, aet="SITEA"):
    responses, status, output = run_storescu(
        ctx, gateway.env["SIREN_TLS_PORT"], [path], aet=aet)
    checks.expect(responses.get(path) == "Success",
                  f"{what}: status {responses.get(path)}: {output[-300:]}")
    uid = expected[int(pydicom.dcmread(path, stop_before_pixels=True)
                       .InstanceNumber)]
    archive = ctx["archive"]
    checks.expect(wait_until(lambda: archive.lookup(uid), 30, 0.2),
                  f"{what}: not delivered")
    return method_of(archive, uid) or ""


def check_spool_taken(checks, ctx, gateway):
    """A second gateway on the running one's spool is refused at start,
    before it could remove the first one's unfinished files."""
    env = dict(gateway.env, SIREN_TLS_PORT=str(free_port()),
               SIREN_PLAIN_PORT=str(free_port()),
               SIREN_METRICS_PORT=str(free_port()))
    second = subprocess.run([ctx["siren"], "serve", "-c", gateway.config],
                            env=env, capture_output=True, text=True,
                            timeout=30)
    checks.expect(second.returncode == 1 and
                  "in use by another siren serve" in second.stderr,
                  f"a second gateway on the same spool: exit "
                  f"{second.returncode}: {second.stderr[-300:]}")


def check_config_reload(checks, ctx, gateway, conf, policy, paths, expected):
    """SIGHUP reads siren.conf again, all or nothing: site A gets a second
    AE title (SITEA9) in the file while its policy is broken - the reload
    fails as a whole and SITEA9 stays unknown; with the policy mended it
    succeeds and SITEA9 may send; a changed archive port is reported as
    needing a restart while delivery goes on to the running one."""
    with open(conf) as stream:
        text = stream.read()
    aet_line = 'aet "${SIREN_SITE_A_AET:-SITEA}"'
    assert aet_line in text and 'port "${SIREN_ARCHIVE_PORT:-4242}"' in text
    text = text.replace(aet_line, aet_line + '\n  aet "SITEA9"')
    text = text.replace('port "${SIREN_ARCHIVE_PORT:-4242}"', 'port "9"')
    with open(conf, "w") as stream:
        stream.write(text)
    mark = len(gateway.events("config.reload_failed"))
    gateway.signal(signal.SIGHUP)
    checks.expect(wait_until(lambda: len(gateway.events(
        "config.reload_failed")) > mark, 10, 0.1),
        "no config.reload_failed with a broken policy")
    responses, _, output = run_storescu(
        ctx, gateway.env["SIREN_TLS_PORT"], [paths[0]], aet="SITEA9")
    checks.expect(paths[0] not in responses,
                  f"SITEA9 accepted after a failed reload: {output[-300:]}")
    with open(policy, "w") as stream:
        stream.write(POLICY_V2)
    mark = len(gateway.events("config.reloaded"))
    gateway.signal(signal.SIGHUP)
    checks.expect(wait_until(lambda: len(gateway.events(
        "config.reloaded")) > mark, 10, 0.1), "no config.reloaded")
    checks.expect([l for l in gateway.events("config.restart_needed")
                   if "archive.port" in l],
                  "the changed archive port is not reported as needing a "
                  "restart")
    for path in paths:
        method = send_one(checks, ctx, gateway, path, expected,
                          "after the configuration reload", aet="SITEA9")
        checks.expect(method.startswith("SIREN basic version 2"),
                      f"after the configuration reload: {method!r}")
    # The restart later in the scenario delivers to the real archive.
    with open(conf, "w") as stream:
        stream.write(text.replace('port "9"',
                                  'port "${SIREN_ARCHIVE_PORT:-4242}"'))


def scenario_signals(checks, ctx):
    work = ctx["work"]
    files = make_set(os.path.join(work, "signals"), 30001, 40, 16)
    paths = sorted(files)
    expected = expected_uids(ctx, os.path.join(work, "signals"))
    conf = os.path.join(work, "conf")
    os.makedirs(os.path.join(conf, "policies"))
    source = os.path.dirname(ctx["config"])
    shutil.copy(ctx["config"], os.path.join(conf, "siren.conf"))
    for name in os.listdir(os.path.join(source, "policies")):
        shutil.copy(os.path.join(source, "policies", name),
                    os.path.join(conf, "policies", name))
    policy = os.path.join(conf, "policies", "basic.policy")
    before = orthanc_instances(ctx["archive"])
    spool = os.path.join(work, "spool-signals")
    gateway = Gateway(ctx, "signals", gateway_env(ctx, "signals", spool),
                      config=os.path.join(conf, "siren.conf"))
    check_spool_taken(checks, ctx, gateway)
    method = send_one(checks, ctx, gateway, paths[0], expected, "before")
    checks.expect(method.startswith("SIREN basic version 1"),
                  f"before the reload: {method!r}")
    # SIGHUP with version 2 on disk.
    with open(policy, "w") as stream:
        stream.write(POLICY_V2)
    gateway.signal(signal.SIGHUP)
    checks.expect(wait_until(lambda: [l for l in gateway.events(
        "policy.loaded") if "policy=basic version=2" in l], 10, 0.1),
        "no policy.loaded for basic version 2")
    method = send_one(checks, ctx, gateway, paths[1], expected, "reloaded")
    checks.expect(method.startswith("SIREN basic version 2"),
                  f"after the reload: {method!r}")
    # SIGHUP with a broken policy: version 2 stays.
    with open(policy, "w") as stream:
        stream.write(POLICY_BROKEN)
    gateway.signal(signal.SIGHUP)
    checks.expect(wait_until(lambda: [l for l in gateway.events(
        "policy.failed") if "basic.policy" in l], 10, 0.1),
        "no policy.failed for the broken basic.policy")
    checks.expect(gateway.process.poll() is None,
                  "siren serve ended after a broken policy")
    method = send_one(checks, ctx, gateway, paths[2], expected, "broken")
    checks.expect(method.startswith("SIREN basic version 2"),
                  f"after a failed reload: {method!r}")
    check_config_reload(checks, ctx, gateway, os.path.join(conf, "siren.conf"),
                        policy, paths[3:6], expected)
    # SIGTERM in the middle of an association: it finishes.
    rest = paths[6:]
    outcome = {}
    sender = threading.Thread(target=lambda: outcome.update(
        zip(("responses", "status", "output"),
            run_storescu(ctx, gateway.env["SIREN_TLS_PORT"], rest))))
    mark = len(gateway.events("store.ok"))
    sender.start()
    wait_until(lambda: len(gateway.events("store.ok")) >= mark + 5 or
               not sender.is_alive(), 30, 0.01)
    checks.expect(sender.is_alive(), "the association ended before the "
                                     "SIGTERM")
    gateway.signal(signal.SIGTERM)
    sender.join(TOOL_TIMEOUT_S)
    status = gateway.process.wait(timeout=30)
    ctx["processes"].stop(gateway.process)
    checks.expect(status == 0, f"siren serve exited with {status} after "
                               f"SIGTERM")
    responses = outcome.get("responses", {})
    acked = [p for p in rest if responses.get(p) == "Success"]
    checks.expect(len(acked) == len(rest),
                  f"{len(acked)} of {len(rest)} Success in the association "
                  f"SIGTERM interrupted: {outcome.get('output', '')[-300:]}")
    state = spool_state(spool)
    dots = [n for names in state.values() for n in names
            if n.startswith(".")]
    checks.expect(not dots, f"'.'-files after SIGTERM: {dots[:5]}")
    checks.count("after SIGTERM, spool", summary_of(state))
    # The next start (a policy that compiles again: a broken one stops the
    # start) delivers what the spool kept.
    with open(policy, "w") as stream:
        stream.write(POLICY_V2)
    gateway.start()
    archive = ctx["archive"]
    want = {expected[files[p]] for p in acked}
    checks.expect(wait_until(lambda: want <= set(
        orthanc_instances(archive).values()), DELIVERY_TIMEOUT_S, 0.5),
        "what the SIGTERM left in the spool was not delivered")
    wait_until(lambda: not finished(spool_state(spool)["outgoing"]) and
               not finished(spool_state(spool)["received"]), 20, 0.2)
    status = gateway.stop()
    checks.expect(status == 0, f"siren serve exited with {status}")
    state = spool_state(spool)
    checks.expect(not any(state.values()), f"spool not empty after the "
                                           f"clean stop: {summary_of(state)}")
    new = {i: u for i, u in orthanc_instances(archive).items()
           if i not in before}
    checks.expect(len(new) == len(files), f"Orthanc holds {len(new)} new "
                                          f"instances for {len(files)}")
    check_orthanc_files(checks, archive, new, "signals")
    reports = gateway.sanitizer_reports()
    checks.expect(not reports, f"sanitizer: {reports}")


# ---------------------------------------------------------------------------
# Scenario 4 (only when asked for): instances put into received/ by hand
# ---------------------------------------------------------------------------


def scenario_requeue(checks, ctx):
    """Four senders keep both processor threads busy while an operator
    releases held instances with `siren spool retry --all quarantine`
    (150 of them, in quarantine/ since an hour ago, each with its
    NAME.reason): retry moves them into received/ under their names,
    older than those being processed. Every instance must be processed
    and delivered; none may be taken up again after it left received/
    (which shows as instance.stuck and a NAME.reason without its
    instance in quarantine/: "unreadable: cannot open: No such file or
    directory")."""
    work, archive = ctx["work"], ctx["archive"]
    per_sender, held = 100, 150
    streams = [make_set(os.path.join(work, f"requeue-{k}"),
                        40001 + k * per_sender, per_sender, 16)
               for k in range(4)]
    extra = make_set(os.path.join(work, "requeue-held"), 49001, held, 16)
    expected = {}
    for k in range(4):
        expected.update(expected_uids(ctx, os.path.join(work,
                                                        f"requeue-{k}")))
    expected.update(expected_uids(ctx, os.path.join(work, "requeue-held")))
    spool = os.path.join(work, "spool-requeue")
    gateway = Gateway(ctx, "requeue", gateway_env(ctx, "requeue", spool))
    port = gateway.env["SIREN_TLS_PORT"]
    quarantine = os.path.join(spool, "quarantine")
    old = int(time.time() * 1000) - 3600 * 1000
    for i, path in enumerate(sorted(extra)):
        name = f"{old + i}-1-{i:06d}.dcm"
        shutil.copy(path, os.path.join(quarantine, name))
        with open(os.path.join(quarantine, name + ".reason"), "w") as reason:
            reason.write("held by the test\n")
    results = [None] * len(streams)

    def send(k):
        results[k] = run_siren_send(ctx, port, sorted(streams[k]))[0]
    threads = [threading.Thread(target=send, args=(k,))
               for k in range(len(streams))]
    for thread in threads:
        thread.start()
    wait_until(lambda: stored_now(gateway) >= 20, 30, 0.01)
    status, out, err = tls_orthanc.run_tool(
        [ctx["siren"], "spool", "--spool", spool, "retry", "--all",
         "quarantine"])
    checks.expect(status == 0 and f"{held} of {held}" in out,
                  f"siren spool retry: {status}: {out[-200:]}{err[-300:]}")
    for thread in threads:
        thread.join(TOOL_TIMEOUT_S)
    acked = [p for k, r in enumerate(results) for p, t in (r or {}).items()
             if t == "Success"]
    checks.expect(len(acked) == len(streams) * per_sender,
                  f"{len(acked)} of {len(streams) * per_sender} "
                  f"acknowledged")
    numbers = dict(extra)
    for stream in streams:
        numbers.update(stream)
    want = {expected[numbers[p]] for p in acked + sorted(extra)}
    checks.count("instances sent, released from quarantine",
                 f"{len(acked)}, {held}")
    checks.expect(wait_until(lambda: want <= set(
        orthanc_instances(archive).values()), DELIVERY_TIMEOUT_S, 0.5),
        "not every instance delivered")
    wait_until(lambda: not finished(spool_state(spool)["outgoing"]) and
               not finished(spool_state(spool)["received"]), 20, 0.2)
    status = gateway.stop()
    checks.expect(status == 0, f"siren serve exited with {status}")
    state = spool_state(spool)
    checks.expect(not any(state.values()), f"spool not empty after the "
                                           f"clean stop: {summary_of(state)}")
    text = gateway.all_logs()
    for event in ("instance.stuck", "instance.quarantined"):
        lines = gateway.events(event, text)
        checks.expect(not lines, f"{len(lines)} {event}: {lines[:1]}")


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

SCENARIOS = (("crash", scenario_crash), ("quota", scenario_quota),
             ("signals", scenario_signals), ("requeue", scenario_requeue))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--pki-script", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--full", action="store_true",
                        help="1000 instances in the crash scenario")
    parser.add_argument("--count", type=int, help="instances in the crash "
                                                  "scenario")
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--only", action="append", default=[])
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="pydicom")
    missing = [t for t in ("Orthanc", "storescu", "openssl")
               if shutil.which(t) is None]
    if missing:
        print(f"service_crash: cannot run, missing {missing}")
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    print(f"seed {seed} (--seed {seed} repeats the kill points)", flush=True)
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    checks, processes = Checks(), Processes()
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(1))
    started = time.monotonic()
    config = os.path.abspath(args.config)
    ctx = {"siren": os.path.abspath(args.siren), "work": work,
           "config": config, "processes": processes,
           "basic_policy": os.path.join(os.path.dirname(config), "policies",
                                        "basic.policy"),
           "count": args.count or (1000 if args.full else 300),
           "kills": args.kills}
    def body():
        checks.scenario = "setup"
        ctx["pki"] = pki = tls_orthanc.Pki(os.path.abspath(args.pki_script),
                                           work)
        key = os.path.join(work, "pseudonym.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(os.urandom(32).hex())
        ctx["archive"] = service_e2e.Archive(checks, processes, work,
                                             "orthanc")
        ctx["archive"].wait_started()
        ctx["env"] = dict(os.environ,
                          SIREN_TLS_CERT=pki.path("server-chain.pem"),
                          SIREN_TLS_KEY=pki.path("server.key"),
                          SIREN_SITES_CA=pki.path("ca-bundle.pem"),
                          SIREN_CRL=pki.path("crls.pem"),
                          SIREN_PSEUDONYM_KEY=key,
                          SIREN_ARCHIVE_PORT=str(ctx["archive"].dicom_port),
                          SIREN_ARCHIVE_AET=tls_orthanc.ORTHANC_AET)
        tls_orthanc.run_scenarios(checks, ctx, SCENARIOS, args.only)
        checks.scenario = "teardown"
        ctx["archive"].stop()

    def summary(seconds):
        print(f"\n== summary (seed {seed})")
        for what, number in checks.counts.items():
            print(f"  {what}: {number}")
        print(f"{'FAILED' if checks.failures else 'passed'}: "
              f"{len(checks.failures)} failure(s) in {seconds:.0f} s")
        for failure in checks.failures:
            print(f"  {failure}")

    return tls_orthanc.run_reported(checks, processes, started, body,
                                    summary)


if __name__ == "__main__":
    sys.exit(main())
