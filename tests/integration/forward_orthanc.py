#!/usr/bin/python3
"""forward_orthanc.py - SIREN's forwarder (`siren forward`) against a real
Orthanc: every instance of an outgoing folder delivered exactly once,
through an archive that goes away and comes back, refusals for good, and
DICOM-TLS.

Debian's Orthanc is the archive, started here on free loopback ports with
a temporary configuration (tls_orthanc.py's Orthanc class, imported):
UnknownSopClassAccepted off, so that it refuses a SOP class it does not
know, and a Lua ReceivedInstanceFilter that logs the SOP Instance UID of
every instance that reaches it ("siren-test received UID"), so that the
test counts what the archive was sent, not only what it kept (Orthanc
answers success for an instance it already has). The instances come from
tests/tools gen_series and reach the outgoing folder by rename, as the
processor puts them there. Scenarios, one function each (their
docstrings say what each proves):

  1. deliver_all         120 instances, 3 associations: all delivered
                         once, the folder left with only what is not a
                         finished instance, persistent associations.
  2. archive_away        Orthanc stopped before the forwarder starts and
                         killed (SIGKILL) in the middle of a run, each
                         time restarted on the same ports: retries with
                         backoff, no busy loop, nothing lost, every
                         instance stored, one forwarder per folder.
  3. refused_for_good    a SOP class Orthanc does not accept, an instance
                         Orthanc answers A700 for every time (no Study
                         Instance UID), a file that is not DICOM: each in
                         FAILED with NAME.reason, the good ones delivered.
  4. tls                 DICOM-TLS to an Orthanc that requires a client
                         certificate: delivered, idle associations
                         released and reopened while watching the folder;
                         an untrusted CA is a retry, never a failure.

Usage:
  /usr/bin/python3 forward_orthanc.py --siren build/gateway/siren \\
      --gen-series build/tests/gen_series \\
      --pki-script tests/integration/pki.py --work /tmp/forward

Exit status: 0 every check passed, 1 a check failed (each failure is
printed with its scenario), 2 the test could not run (a missing tool).
Every process the test starts is stopped before it exits. About 40 s,
a quarter of it making the PKI.
"""

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings

import pydicom
from pydicom.uid import generate_uid

import tls_orthanc
from tls_orthanc import Checks, Processes, sanitizer_report, wait_until

ORTHANC_AET = tls_orthanc.ORTHANC_AET
SIREN_AET = "SIREN"
RUN_TIMEOUT_S = 120
BOGUS_SOP_CLASS = "1.2.826.0.1.3680043.8.498.1.424242"

RECEIVED_FILTER = """\
-- Every instance that reaches Orthanc, kept or not (the test counts them).
function ReceivedInstanceFilter(dicom, origin, info)
  print('siren-test received ' .. dicom.SOPInstanceUID)
  return true
end
"""

# ---------------------------------------------------------------------------
# The archive
# ---------------------------------------------------------------------------


class Archive(tls_orthanc.Orthanc):
    """tls_orthanc's Orthanc, with the received-instance log, unknown SOP
    classes refused, and restarts on the same ports (each run logs to a
    file of its own)."""

    def __init__(self, checks, processes, work, name, pki=None):
        lua = os.path.join(work, f"{name}-received.lua")
        with open(lua, "w") as stream:
            stream.write(RECEIVED_FILTER)
        super().__init__(checks, processes, work, name, pki, extra_config={
            "UnknownSopClassAccepted": False, "LuaScripts": [lua]})
        self.work = work
        self.logs = [self.log_path]
        self.config_path = os.path.join(self.folder, "orthanc.json")

    def start_again(self):
        self.log_path = os.path.join(
            self.work, f"{self.name}-{len(self.logs) + 1}.log")
        self.logs.append(self.log_path)
        self.process = self.processes.start(
            ["Orthanc", "--verbose", self.config_path], self.log_path,
            env=tls_orthanc.peer_environment())
        self.wait_started()

    def crash(self):
        """SIGKILL: the archive dies in the middle of whatever it does."""
        self.process.kill()
        self.process.wait()
        self.processes.running.remove(self.process)

    def receptions(self):
        """How often each SOP Instance UID reached Orthanc (all runs)."""
        counts = collections.Counter()
        for log in self.logs:
            with open(log, encoding="latin-1") as stream:
                counts.update(re.findall(r"siren-test received (\S+)",
                                         stream.read()))
        return counts

    def uids(self):
        return [i["MainDicomTags"].get("SOPInstanceUID")
                for i in self.get("/instances?expand")]


# ---------------------------------------------------------------------------
# The spool's folders and siren forward
# ---------------------------------------------------------------------------


class Spool:
    """An outgoing and a failed folder; instances arrive in outgoing by
    rename under sortable names, as the processor writes them."""

    sequence = 0

    def __init__(self, work, name):
        self.outgoing = os.path.join(work, name, "outgoing")
        self.failed = os.path.join(work, name, "failed")
        os.makedirs(self.outgoing)

    def stage(self, paths):
        names = []
        for path in paths:
            Spool.sequence += 1
            name = f"{Spool.sequence:016d}-{os.urandom(2).hex()}.dcm"
            temp = os.path.join(self.outgoing, ".processing-" + name)
            shutil.copyfile(path, temp)
            os.rename(temp, os.path.join(self.outgoing, name))
            names.append(name)
        return names

    def waiting(self):
        return sorted(n for n in os.listdir(self.outgoing)
                      if n.endswith(".dcm") and not n.startswith("."))

    def failed_files(self):
        if not os.path.isdir(self.failed):
            return []
        return sorted(os.listdir(self.failed))


class Forwarder:
    """`siren forward` running in the background (--once unless watch)."""

    def __init__(self, ctx, name, spool, port, *options, watch=False):
        self.processes = ctx["processes"]
        self.log_path = os.path.join(ctx["work"], f"forward-{name}.log")
        command = [ctx["siren"], "forward", "--aet", SIREN_AET, "--call",
                   ORTHANC_AET, "--dir", spool.outgoing, "--failed",
                   spool.failed, *([] if watch else ["--once"]), *options,
                   "127.0.0.1", str(port)]
        self.process = self.processes.start(command, self.log_path)

    def wait(self, timeout_s=RUN_TIMEOUT_S):
        """The exit status, or None if it is still running then."""
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if self.process.poll() is not None and \
                    self.process in self.processes.running:
                self.processes.running.remove(self.process)

    def stop(self):
        return self.processes.stop(self.process)

    def log_text(self):
        with open(self.log_path, encoding="latin-1") as log:
            return log.read()

    def events(self, event):
        return [line for line in self.log_text().splitlines()
                if f" {event} " in line]

    def delivered(self):
        """File names of the forward.delivered lines, in order."""
        return [re.search(r" file=(\S+)", line).group(1)
                for line in self.events("forward.delivered")]


def check_run(checks, what, forwarder, status, expected):
    checks.expect(status is not None, f"{what} still ran after "
                                      f"{RUN_TIMEOUT_S} s (log "
                                      f"{forwarder.log_path})")
    if status is None:
        forwarder.stop()
    checks.expect(status is None or status == expected,
                  f"{what} exited with {status}, expected {expected}: "
                  f"{forwarder.log_text()[-800:]}")
    report = sanitizer_report(forwarder.log_text())
    checks.expect(report is None, f"{what}: {report} (log "
                                  f"{forwarder.log_path})")


def generate(ctx, name, count):
    """count new CT instances (gen_series); returns {path: UID}."""
    folder = os.path.join(ctx["work"], "generated", name)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    done = subprocess.run([ctx["gen_series"], "ct", folder, str(count)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"gen_series failed: {done.stderr}")
    paths = sorted(os.path.join(folder, n) for n in os.listdir(folder))
    return {p: str(pydicom.dcmread(p, stop_before_pixels=True)
                   .SOPInstanceUID) for p in paths}


def check_exactly_once(checks, archive, before, uids, spool, forwarder):
    """Orthanc holds each of uids once more than before, each reached it
    once, the folder is empty, each file was delivered once."""
    held = collections.Counter(archive.uids())
    new = held - before
    checks.expect(set(new) == set(uids) and all(n == 1 for n in
                                                new.values()),
                  f"Orthanc holds {len(new)} new instances, expected "
                  f"{len(uids)}; missing {sorted(set(uids) - set(new))[:3]}"
                  f", unexpected {sorted(set(new) - set(uids))[:3]}")
    received = archive.receptions()
    twice = [u for u in uids if received[u] != 1]
    checks.expect(not twice, f"{len(twice)} instances reached Orthanc other "
                             f"than once: {[(u, received[u]) for u in twice[:3]]}")
    checks.expect(not spool.waiting(), f"left in outgoing: "
                                       f"{spool.waiting()[:5]}")
    delivered = forwarder.delivered()
    repeated = [n for n, c in collections.Counter(delivered).items() if c > 1]
    checks.expect(len(delivered) == len(uids) and not repeated,
                  f"siren forward logged {len(delivered)} deliveries for "
                  f"{len(uids)} files; delivered twice: {repeated[:3]}")


# ---------------------------------------------------------------------------
# Scenario 1
# ---------------------------------------------------------------------------


def scenario_deliver_all(checks, ctx):
    """120 generated CT instances in outgoing, plus a '.processing-' file
    (unfinished) and a README.txt (not an instance); `siren forward
    --once --connections 3`. Proves: exit status 0 and a summary line;
    Orthanc holds the 120 SOP Instance UIDs, each of which reached it
    exactly once (its Lua filter's log); outgoing holds only the two
    other files, untouched; no FAILED entry; each file delivered once
    (the log); three workers delivered, over at most three associations
    in all (persistent: not one per file), each released at the end."""
    archive, spool = ctx["archive"], Spool(ctx["work"], "deliver_all")
    instances = generate(ctx, "deliver_all", 120)
    spool.stage(instances)
    others = {".processing-0000000000999999-beef.dcm": b"half written",
              "README.txt": b"not an instance"}
    for name, data in others.items():
        with open(os.path.join(spool.outgoing, name), "wb") as stream:
            stream.write(data)
    before = collections.Counter(archive.uids())
    started = time.monotonic()
    forwarder = Forwarder(ctx, "deliver_all", spool, archive.dicom_port,
                          "--connections", "3")
    status = forwarder.wait()
    checks.count("120 instances, seconds", round(time.monotonic() - started,
                                                 1))
    check_run(checks, "siren forward", forwarder, status, 0)
    checks.expect(re.search(r"^delivered 120 \(with warnings 0\), failed 0",
                            forwarder.log_text(), re.M),
                  f"no summary 'delivered 120 ...': "
                  f"{forwarder.log_text()[-300:]}")
    check_exactly_once(checks, archive, before, list(instances.values()),
                       spool, forwarder)
    for name, data in others.items():
        path = os.path.join(spool.outgoing, name)
        checks.expect(os.path.isfile(path) and open(path, "rb").read() ==
                      data, f"{name} was not left alone")
    checks.expect(not spool.failed_files(), f"FAILED holds "
                                            f"{spool.failed_files()}")
    opened = forwarder.events("forward.assoc_opened")
    released = forwarder.events("forward.assoc_released")
    workers = {re.search(r"worker=(\d+)", line).group(1)
               for line in forwarder.events("forward.delivered")}
    checks.expect(1 <= len(opened) <= 3 and len(released) == len(opened),
                  f"{len(opened)} associations opened, {len(released)} "
                  f"released, for 120 files on 3 connections")
    checks.expect(len(workers) == 3, f"only workers {sorted(workers)} "
                                     f"delivered")
    checks.count("associations", len(opened))


# ---------------------------------------------------------------------------
# Scenario 2
# ---------------------------------------------------------------------------


def retry_delays(forwarder):
    return [int(re.search(r"delay_ms=(\d+)", line).group(1))
            for line in forwarder.events("forward.retry")]


def scenario_archive_away(checks, ctx):
    """Orthanc stopped; 40 instances in outgoing; `siren forward --once
    --backoff-min 0.2 --backoff-max 1` started; 20 more instances arrive
    while Orthanc is away; Orthanc restarted on the same ports; killed
    with SIGKILL once 10 more were delivered; restarted again. Proves:
    while Orthanc is away, forward.retry lines with growing attempts and
    delays within [50 ms, 1 s], few enough to exclude a busy loop,
    nothing delivered, every file still in outgoing; a second `siren
    forward` on the same folder refuses to start (exit status 1,
    "another forwarder"); after the restarts the forwarder exits 0 by
    itself, Orthanc holds all 60 UIDs, outgoing is empty, FAILED is
    empty; each instance reached Orthanc once, except at most the two in
    flight when it was killed (twice at most)."""
    archive, spool = ctx["archive"], Spool(ctx["work"], "archive_away")
    first, later = generate(ctx, "away_first", 40), generate(ctx,
                                                             "away_later", 20)
    before = collections.Counter(archive.uids())
    archive.stop()
    spool.stage(first)
    forwarder = Forwarder(ctx, "archive_away", spool, archive.dicom_port,
                          "--backoff-min", "0.2", "--backoff-max", "1")
    away_since = time.monotonic()
    wait_until(lambda: len(forwarder.events("forward.retry")) >= 6, 15, 0.1)
    spool.stage(later)
    second = Forwarder(ctx, "archive_away-second", spool, archive.dicom_port)
    second_status = second.wait(30)
    checks.expect(second_status == 1 and "another forwarder" in
                  second.log_text(), f"a second siren forward on the "
                                     f"folder: exit status {second_status}: "
                                     f"{second.log_text()[-300:]}")
    time.sleep(1.0)
    away_s = time.monotonic() - away_since
    delays = retry_delays(forwarder)
    attempts = [int(re.search(r"attempt=(\d+)", line).group(1))
                for line in forwarder.events("forward.retry")]
    checks.expect(len(delays) >= 6 and max(attempts, default=0) >= 3,
                  f"only {len(delays)} retries, attempts {attempts}")
    checks.expect(all(50 <= d <= 1000 for d in delays),
                  f"retry delays outside [50, 1000] ms: {delays}")
    # Two workers, each pausing at least 50 ms: a busy loop would log
    # thousands of lines.
    checks.expect(len(delays) <= 2 * away_s / 0.05 + 4,
                  f"{len(delays)} retries in {away_s:.1f} s: a busy loop?")
    checks.expect(not forwarder.delivered() and len(spool.waiting()) == 60,
                  f"while Orthanc was away: delivered "
                  f"{len(forwarder.delivered())}, outgoing holds "
                  f"{len(spool.waiting())} of 60")
    checks.count("retries while away", len(delays))
    archive.start_again()
    wait_until(lambda: len(forwarder.delivered()) >= 10, 60, 0.05)
    archive.crash()
    time.sleep(1.5)
    archive.start_again()
    status = forwarder.wait()
    check_run(checks, "siren forward", forwarder, status, 0)
    uids = list(first.values()) + list(later.values())
    held = collections.Counter(archive.uids()) - before
    checks.expect(set(held) == set(uids) and all(n == 1 for n in
                                                 held.values()),
                  f"Orthanc holds {len(held)} new instances, expected 60")
    received = archive.receptions()
    checks.expect(all(1 <= received[u] <= 2 for u in uids) and
                  sum(received[u] for u in uids) <= 62,
                  f"receptions: {sum(received[u] for u in uids)} for 60 "
                  f"instances, missing "
                  f"{[u for u in uids if not received[u]][:3]}")
    checks.expect(not spool.waiting() and not spool.failed_files(),
                  f"outgoing {spool.waiting()[:3]}, FAILED "
                  f"{spool.failed_files()[:3]}")
    checks.count("resent after the kill",
                 sum(received[u] for u in uids) - len(uids))


# ---------------------------------------------------------------------------
# Scenario 3
# ---------------------------------------------------------------------------


def make_refused(ctx, template):
    """The files Orthanc refuses for good: {path: (what, words of the
    reason file)}."""
    folder = os.path.join(ctx["work"], "generated", "refused")
    os.makedirs(folder)
    files = {}
    dataset = pydicom.dcmread(template)
    del dataset.StudyInstanceUID
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    path = os.path.join(folder, "no-study.dcm")
    dataset.save_as(path)
    files[path] = ("no Study Instance UID (Orthanc answers A700 each time)",
                   "refused it 5 times, last with status 0xA700")
    dataset = pydicom.dcmread(template)
    dataset.SOPClassUID = BOGUS_SOP_CLASS
    dataset.file_meta.MediaStorageSOPClassUID = BOGUS_SOP_CLASS
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    path = os.path.join(folder, "bogus-class.dcm")
    dataset.save_as(path)
    files[path] = ("a SOP class Orthanc does not accept",
                   f"accepted no context for SOP class {BOGUS_SOP_CLASS}")
    path = os.path.join(folder, "not-dicom.dcm")
    with open(path, "wb") as stream:
        stream.write(b"this is not a DICOM file")
    files[path] = ("not DICOM", "not a DICOM file that can be sent")
    return files


def scenario_refused_for_good(checks, ctx):
    """Three files Orthanc refuses for good (a SOP class it does not
    accept; no Study Instance UID, which Orthanc answers 0xA700 for each
    time; not DICOM), staged before 10 good instances; `siren forward
    --once --backoff-min 0.05 --backoff-max 0.5`. Proves: exit status 1
    (files went to FAILED) within the run timeout (no endless loop);
    each refused file is in FAILED, byte for byte, with NAME.reason
    naming the file and the reason in words; a forward.failed line for
    each; the 10 good instances delivered once; outgoing empty; Orthanc
    does not hold the refused instances."""
    archive, spool = ctx["archive"], Spool(ctx["work"], "refused_for_good")
    good = generate(ctx, "refused_good", 10)
    refused = make_refused(ctx, next(iter(good)))
    names = dict(zip(spool.stage(refused), refused))
    spool.stage(good)
    before = collections.Counter(archive.uids())
    forwarder = Forwarder(ctx, "refused_for_good", spool, archive.dicom_port,
                          "--backoff-min", "0.05", "--backoff-max", "0.5")
    status = forwarder.wait()
    check_run(checks, "siren forward", forwarder, status, 1)
    check_exactly_once(checks, archive, before, list(good.values()), spool,
                       forwarder)
    failed_lines = forwarder.events("forward.failed")
    for name, path in names.items():
        what, words = refused[path]
        moved = os.path.join(spool.failed, name)
        checks.expect(os.path.isfile(moved) and open(moved, "rb").read() ==
                      open(path, "rb").read(),
                      f"{what}: {name} is not in FAILED as it was")
        reason_path = moved + ".reason"
        reason = open(reason_path).read() if os.path.isfile(reason_path) \
            else ""
        checks.expect(f"file: {name}" in reason and words in reason,
                      f"{what}: {name}.reason does not say '{words}': "
                      f"{reason!r}")
        checks.expect(any(f"file={name} " in line for line in failed_lines),
                      f"{what}: no forward.failed line for {name}")
    checks.expect(len(spool.failed_files()) == 2 * len(refused),
                  f"FAILED holds {spool.failed_files()}")
    checks.count("refused for good", len(failed_lines))


# ---------------------------------------------------------------------------
# Scenario 4
# ---------------------------------------------------------------------------


def scenario_tls(checks, ctx):
    """DICOM-TLS to an Orthanc that requires a client certificate (the
    test PKI's site-a). First `siren forward --tls` with a CA that did
    not sign Orthanc's certificate, stopped with SIGTERM after a few
    tries: forward.retry lines naming the certificate problem, exit
    status 0, nothing moved to FAILED, all files still in outgoing.
    Then with the right CA, watching the folder (no --once,
    --idle-release 1): the 30 instances delivered once over TLS (the
    association log says TLSv1.x); after more than a second idle the
    associations are released; 5 instances staged later are found by
    the next look, delivered on a new association; SIGTERM: exit status
    0, outgoing empty."""
    archive, pki = ctx["tls_archive"], ctx["pki"]
    spool = Spool(ctx["work"], "tls")
    instances, more = generate(ctx, "tls", 30), generate(ctx, "tls_more", 5)
    spool.stage(instances)
    tls = ["--tls", "--tls-cert", pki.path("site-a-chain.pem"),
           "--tls-key", pki.path("site-a.key")]
    untrusted = Forwarder(ctx, "tls-untrusted", spool, archive.dicom_port,
                          *tls, "--tls-ca", pki.path("other-root.pem"),
                          "--backoff-min", "0.1", "--backoff-max", "0.3",
                          watch=True)
    wait_until(lambda: len(untrusted.events("forward.retry")) >= 3, 20, 0.1)
    status = untrusted.stop()
    check_run(checks, "siren forward (untrusted CA)", untrusted, status, 0)
    retries = untrusted.events("forward.retry")
    checks.expect(len(retries) >= 3 and all("certificate" in line or
                                            "TLS" in line
                                            for line in retries),
                  f"untrusted CA: retries {retries[:2]}")
    checks.expect(not untrusted.delivered() and len(spool.waiting()) == 30
                  and not spool.failed_files(),
                  f"untrusted CA: delivered {len(untrusted.delivered())}, "
                  f"outgoing {len(spool.waiting())}, FAILED "
                  f"{spool.failed_files()}")
    before = collections.Counter(archive.uids())
    forwarder = Forwarder(ctx, "tls", spool, archive.dicom_port, *tls,
                          "--tls-ca", pki.path("ca-bundle.pem"),
                          "--idle-release", "1", watch=True)
    wait_until(lambda: len(forwarder.delivered()) >= 30, 60, 0.1)
    wait_until(lambda: forwarder.events("forward.assoc_released"), 10, 0.1)
    idle = [line for line in forwarder.events("forward.assoc_released")
            if "why=idle" in line]
    checks.expect(idle, "no association released for being idle")
    opened_before = len(forwarder.events("forward.assoc_opened"))
    spool.stage(more)
    wait_until(lambda: len(forwarder.delivered()) >= 35, 30, 0.1)
    status = forwarder.stop()
    check_run(checks, "siren forward --tls", forwarder, status, 0)
    check_exactly_once(checks, archive, before,
                       list(instances.values()) + list(more.values()), spool,
                       forwarder)
    opened = forwarder.events("forward.assoc_opened")
    checks.expect(opened and all(re.search(r" tls=TLSv1\.[23]", line)
                                 for line in opened),
                  f"associations not over TLS: {opened[:2]}")
    checks.expect(len(opened) > opened_before,
                  "the files staged later went on no new association")


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

SCENARIOS = [
    ("deliver_all", scenario_deliver_all),
    ("archive_away", scenario_archive_away),
    ("refused_for_good", scenario_refused_for_good),
    ("tls", scenario_tls),
]


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True, help="build/gateway/siren")
    parser.add_argument("--gen-series", required=True,
                        help="build/tests/gen_series")
    parser.add_argument("--pki-script", required=True,
                        help="tests/integration/pki.py")
    parser.add_argument("--work", required=True,
                        help="a scratch folder (emptied first)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only this scenario (repeatable)")
    return parser.parse_args()


def missing_prerequisites(args):
    missing = [f"{path} (not an executable)"
               for path in (args.siren, args.gen_series)
               if not os.access(path, os.X_OK)]
    if not os.path.isfile(args.pki_script):
        missing.append(f"{args.pki_script} (pki.py)")
    for tool in ("Orthanc", "openssl"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (Debian packages orthanc, openssl)")
    return missing


def stop_on_signal(signo, frame):
    raise SystemExit(f"forward_orthanc: stopped by signal {signo}")


def main():
    args = parse_arguments()
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    warnings.filterwarnings("ignore", module="pydicom")
    missing = missing_prerequisites(args)
    if missing:
        print("forward_orthanc: cannot run, missing:\n  " +
              "\n  ".join(missing))
        return 2
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    checks, processes = Checks(), Processes()
    started = time.monotonic()
    ctx = {"siren": os.path.abspath(args.siren),
           "gen_series": os.path.abspath(args.gen_series), "work": work,
           "processes": processes}

    def body():
        checks.scenario = "setup"
        ctx["pki"] = tls_orthanc.Pki(os.path.abspath(args.pki_script), work)
        ctx["archive"] = Archive(checks, processes, work, "orthanc")
        ctx["tls_archive"] = Archive(checks, processes, work, "orthanc-tls",
                                     ctx["pki"])
        for key in ("archive", "tls_archive"):
            ctx[key].wait_started()
        tls_orthanc.run_scenarios(checks, ctx, SCENARIOS, args.only)
        checks.scenario = "teardown"
        for key in ("archive", "tls_archive"):
            ctx.pop(key).stop()

    return tls_orthanc.run_reported(
        checks, processes, started, body,
        lambda seconds: tls_orthanc.print_summary(checks, ctx, seconds))


if __name__ == "__main__":
    sys.exit(main())
