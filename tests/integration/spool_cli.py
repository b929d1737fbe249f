#!/usr/bin/python3
"""spool_cli.py - `siren spool list|show|retry|purge`, what an operator
does with the spool of `siren serve -c`.

A spool is built by hand (pydicom instances, with the provenance the
receiver records in (0002,0102) and NAME.reason files), then:

  1. list: instances and bytes per stage as the files say; per stage the
     site, SOP class and first line of each reason; a terminal escape
     planted in a reason and a description never reaches the output; a
     symbolic link in a stage is not an instance.
  2. show: stage, every line of the reason, the provenance, the header,
     the PHI warning for what is not de-identified; no patient name, ID
     or birth date; an unreadable instance says so.
  3. NAMEs are file names in the spool: '/', '..', hidden names, reason
     files, a link out of the spool, control characters and unknown
     names are refused by show, retry and purge, and nothing moves.
  4. retry: quarantine -> received and failed -> outgoing, byte for
     byte, reasons gone; nothing done if one NAME is wrong; an instance
     already in the target stage is not overwritten.
  5. purge: one held instance without --yes; several, or --all, only
     with --yes; received/ and outgoing/ only with --force.
  6. -c reads the spool from a configuration; usage errors exit 2; a
     wrong spool path exits 1 and is not created.
  7. with `siren serve -c` running (plain listener, an archive that is
     away): a retried quarantined instance is de-identified into
     outgoing/, one its policy still holds is quarantined again with a
     fresh reason, a retried failed instance waits in outgoing/; the
     service's unfinished files are left alone.

Usage:
  /usr/bin/python3 spool_cli.py --siren build/gateway/siren \\
      --work /tmp/spool_cli

Exit status: 0 every check passed, 1 a check failed. About 5 s.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tls_orthanc import Checks, Processes, free_port, wait_until

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
STAGES = ("received", "outgoing", "quarantine", "failed")
PHI = ("Doe^Phimark", "PHIMARK77", "19610307")
ESC = "\x1b"


def make_instance(path, site=None, sop_class=CT_IMAGE, burned_in=False,
                  description="Chest"):
    """A small instance with planted identifying values and, unless
    site is None, the provenance the receiver records for a TLS site
    (site "" : the plain listener's)."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = PHI[0]
    ds.PatientID = PHI[1]
    ds.PatientBirthDate = PHI[2]
    ds.StudyDate = "20240301"
    ds.StudyDescription = description
    ds.Modality = "CT"
    if burned_in:
        ds.BurnedInAnnotation = "YES"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(32)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if site is not None:
        fields = ('"received":"2024-03-01T10:00:00Z","peer":"127.0.0.1:40000",'
                  '"calling_ae":"SITEA","called_ae":"SIREN","transport":')
        fields += f'"tls","site":"{site}"' if site else '"plain"'
        fields += ',"cert_subject":"CN=site \\"a\\""' if site else ""
        info = ("{" + fields + "}").encode()
        meta.PrivateInformationCreatorUID = "1.2.826.0.1.3680043.10.1"
        meta.PrivateInformation = info + b"\0" * (len(info) % 2)
    ds.file_meta = meta
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.save_as(path, write_like_original=False)


def instance_name(index, age_s=0):
    """A name as the receiver makes them: milliseconds, pid, counter."""
    ms = int((time.time() - age_s) * 1000)
    return f"{ms}-4242-{index:06d}.dcm"


def sha256(path):
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def snapshot(spool):
    """Every file in the spool with its digest (links by target)."""
    files = {}
    for folder, _, names in os.walk(spool):
        for name in names:
            path = os.path.join(folder, name)
            files[os.path.relpath(path, spool)] = (
                os.readlink(path) if os.path.islink(path) else sha256(path))
    return files


class Spool:
    """A spool folder built by hand, and `siren spool` run on it."""

    def __init__(self, siren, root):
        self.siren = siren
        self.root = root
        shutil.rmtree(root, ignore_errors=True)
        for stage in STAGES:
            os.makedirs(os.path.join(root, stage), mode=0o700)

    def path(self, stage, name):
        return os.path.join(self.root, stage, name)

    def add(self, stage, name, reason=None, **kwargs):
        make_instance(self.path(stage, name), **kwargs)
        if reason is not None:
            with open(self.path(stage, name + ".reason"), "w",
                      encoding="utf-8") as stream:
                stream.write(reason + "\n")
        return name

    def has(self, stage, name):
        return os.path.isfile(self.path(stage, name))

    def run(self, *args, config=None):
        where = ["-c", config] if config else ["--spool", self.root]
        done = subprocess.run([self.siren, "spool", *where, *args],
                              capture_output=True, timeout=30,
                              stdin=subprocess.DEVNULL)
        return (done.returncode, done.stdout.decode("utf-8", "replace"),
                done.stderr.decode("utf-8", "replace"))


def line_of(text, name):
    return next((line for line in text.splitlines() if name in line), "")


# ---------------------------------------------------------------------------
# 1-6: a spool made by hand
# ---------------------------------------------------------------------------


def build(spool, work):
    """The instances, by role."""
    n = {}
    n["received"] = spool.add("received", instance_name(1, 30), site="site-a")
    n["outgoing"] = spool.add("outgoing", instance_name(2), sop_class=MR_IMAGE)
    n["outgoing_odd"] = spool.add("outgoing", instance_name(3),
                                  sop_class="1.2.3.4.5")
    n["q_site"] = spool.add(
        "quarantine", instance_name(4, 7200), site="site-b",
        reason="quarantined by policy trial version 3: patient not in the "
               "lookup table")
    n["q_plain"] = spool.add(
        "quarantine", instance_name(5), site="",
        description=f"Head {ESC}[31mred",
        reason=f"quarantined by policy basic version 1: {ESC}[2J burned-in")
    n["q_garbage"] = instance_name(6)
    with open(spool.path("quarantine", n["q_garbage"]), "wb") as stream:
        stream.write(b"this is not DICOM")
    with open(spool.path("quarantine", n["q_garbage"] + ".reason"), "w",
              encoding="utf-8") as stream:
        stream.write("unreadable: not DICOM\n")
    n["failed"] = spool.add(
        "failed", instance_name(7),
        reason="refused for good by 127.0.0.1:4242: status 0xA900\n"
               "second line of the reason")
    n["failed_2"] = spool.add("failed", instance_name(8),
                              reason="refused: status 0xC000")
    # Not instances: a link out of the spool, an unfinished file, a
    # reason whose instance is gone.
    secret = os.path.join(work, "outside.dcm")
    make_instance(secret)
    n["secret"] = secret
    os.symlink(secret, spool.path("quarantine", "link.dcm"))
    os.mkdir(spool.path("quarantine", "sub"))
    spool.add("quarantine", "sub/inner.dcm", reason="inside a folder")
    with open(spool.path("received", ".incoming-abc123"), "wb") as stream:
        stream.write(b"half")
    with open(spool.path("failed", "gone.dcm.reason"), "w",
              encoding="utf-8") as stream:
        stream.write("refused\n")
    return n


def check_list(checks, spool, n):
    checks.scenario = "list"
    status, out, err = spool.run("list")
    checks.expect(status == 0, f"list exited {status}: {err}")
    for stage in STAGES:
        names = [name for name in os.listdir(os.path.join(spool.root, stage))
                 if name.endswith(".dcm") and not name.startswith(".")
                 and not os.path.islink(spool.path(stage, name))]
        size = sum(os.path.getsize(spool.path(stage, name)) for name in names)
        row = re.search(rf"^{stage}\s+(\d+)\s+(\d+)", out, re.M)
        checks.expect(row and (int(row[1]), int(row[2])) == (len(names), size),
                      f"{stage}: {len(names)} instances {size} bytes "
                      f"expected: {out}")

    status, out, err = spool.run("list", "quarantine")
    checks.expect(status == 0, f"list quarantine exited {status}: {err}")
    line = line_of(out, n["q_site"])
    checks.expect("site-b" in line and "CTImageStorage" in line and
                  "patient not in the lookup table" in line and
                  re.search(r"\b2h0\dm\b", line),
                  f"quarantine line for a site's instance: {line!r}")
    line = line_of(out, n["q_plain"])
    checks.expect("(plain)" in line and "burned-in" in line,
                  f"quarantine line for the plain listener's: {line!r}")
    checks.expect("(unreadable)" in line_of(out, n["q_garbage"]),
                  f"an unreadable instance is listed as such: {out}")
    checks.expect(ESC not in out, "a terminal escape in a reason reached "
                  "the output of list")
    checks.expect("link.dcm" not in out, "a symbolic link is listed")
    checks.expect("3 instances in quarantine/" in out, f"count: {out}")

    status, out, _ = spool.run("list", "failed")
    line = line_of(out, n["failed"])
    checks.expect("status 0xA900" in line and "second line" not in out,
                  f"failed/ shows the first line of a reason: {out}")
    checks.expect("gone.dcm" not in out, "a reason without an instance is "
                  "listed")
    status, out, _ = spool.run("list", "received/")
    checks.expect(status == 0 and "site-a" in line_of(out, n["received"]) and
                  ".incoming" not in out, f"list received/: {out}")
    status, out, _ = spool.run("list", "outgoing")
    checks.expect("MRImageStorage" in line_of(out, n["outgoing"]) and
                  "1.2.3.4.5" in line_of(out, n["outgoing_odd"]),
                  f"SOP classes by keyword, else by UID: {out}")


def check_show(checks, spool, n):
    checks.scenario = "show"
    status, out, err = spool.run("show", n["q_site"])
    checks.expect(status == 0, f"show exited {status}: {err}")
    for expected in (f"quarantine/{n['q_site']}", "patient not in the lookup",
                     "NOT de-identified", "site               site-b",
                     "calling_ae         SITEA", 'CN=site "a"',
                     "CTImageStorage", "Modality                     CT",
                     "StudyDate                    20240301",
                     "Explicit VR Little Endian"):
        checks.expect(expected in out, f"show lacks {expected!r}: {out}")
    for value in PHI:
        checks.expect(value not in out, f"show printed {value}")

    status, out, _ = spool.run("show", n["q_plain"])
    checks.expect(status == 0 and ESC not in out and "Head " in out,
                  f"show of a planted escape: {out!r}")
    status, out, _ = spool.run("show", n["failed"])
    checks.expect(status == 0 and "status 0xA900" in out and
                  "second line of the reason" in out and
                  "NOT de-identified" not in out,
                  f"show of a failed instance: {out}")
    status, out, _ = spool.run("show", n["q_garbage"])
    checks.expect(status == 0 and "unreadable" in out,
                  f"show of an unreadable instance: {status} {out}")


def check_bad_names(checks, spool, n):
    checks.scenario = "names"
    before = snapshot(spool.root)
    bad = ["../received/" + n["received"], f"quarantine/{n['q_site']}",
           n["secret"], "sub/inner.dcm", "sub", "..", ".",
           ".incoming-abc123", "..x.dcm",
           n["q_site"] + ".reason", "link.dcm", "gone.dcm", "nothere.dcm",
           f"a{ESC}[2J.dcm", ""]
    for name in bad:
        for command in (["show", name], ["retry", name],
                        ["purge", "--yes", "--force", name]):
            status, out, err = spool.run(*command)
            checks.expect(status == 1, f"{command} exited {status}")
            checks.expect(ESC not in out + err,
                          f"{command}: an escape reached the terminal")
    status, _, err = spool.run("purge", "--yes", n["q_site"], "../x.dcm")
    checks.expect(status == 1 and "nothing purged" in err,
                  f"purge with one bad NAME: {status} {err}")
    checks.expect(snapshot(spool.root) == before,
                  "a refused NAME changed the spool")
    checks.expect(os.path.isfile(n["secret"]), "the file a link points to "
                  "is gone")


def check_retry(checks, spool, n):
    checks.scenario = "retry"
    status, _, err = spool.run("retry", n["received"])
    checks.expect(status == 1 and "nothing to retry" in err,
                  f"retry of an instance in received/: {status} {err}")
    status, _, err = spool.run("retry", n["q_site"], "nothere.dcm")
    checks.expect(status == 1 and spool.has("quarantine", n["q_site"]),
                  f"retry with a wrong NAME moved the right one: {err}")

    digests = {name: sha256(spool.path(stage, name)) for stage, name in
               (("quarantine", n["q_site"]), ("failed", n["failed"]))}
    status, out, err = spool.run("retry", n["q_site"], n["failed"])
    checks.expect(status == 0, f"retry exited {status}: {err}")
    checks.expect(f"{n['q_site']}: quarantine/ -> received/" in out and
                  f"{n['failed']}: failed/ -> outgoing/" in out,
                  f"retry says what moved: {out}")
    checks.expect(spool.has("received", n["q_site"]) and
                  not spool.has("quarantine", n["q_site"]) and
                  not os.path.exists(spool.path("quarantine",
                                                n["q_site"] + ".reason")),
                  "quarantine -> received, reason removed")
    checks.expect(spool.has("outgoing", n["failed"]) and
                  not spool.has("failed", n["failed"]) and
                  not os.path.exists(spool.path("failed",
                                                n["failed"] + ".reason")),
                  "failed -> outgoing, reason removed")
    checks.expect(sha256(spool.path("received", n["q_site"])) ==
                  digests[n["q_site"]] and
                  sha256(spool.path("outgoing", n["failed"])) ==
                  digests[n["failed"]], "retry changed the bytes")
    hidden = [name for stage in STAGES
              for name in os.listdir(os.path.join(spool.root, stage))
              if name.startswith(".retrying")]
    checks.expect(not hidden, f"retry left {hidden}")

    # The same name in both stages (a crash between two): not overwritten.
    twin = spool.add("quarantine", instance_name(9), reason="held")
    shutil.copy(spool.path("quarantine", twin), spool.path("received", twin))
    status, _, err = spool.run("retry", twin)
    checks.expect(status == 1 and "already" in err and
                  spool.has("quarantine", twin) and
                  os.path.exists(spool.path("quarantine", twin + ".reason")),
                  f"retry onto an existing instance: {status} {err}")
    os.unlink(spool.path("received", twin))

    status, out, err = spool.run("retry", "--all", "failed")
    checks.expect(status == 0 and spool.has("outgoing", n["failed_2"]) and
                  not spool.has("failed", n["failed_2"]),
                  f"retry --all failed: {status} {out} {err}")
    status, out, _ = spool.run("retry", "--all", "failed")
    checks.expect(status == 0 and "nothing to retry" in out,
                  f"retry --all of an empty stage: {status} {out}")


def check_purge(checks, spool, n):
    checks.scenario = "purge"
    for args in ([n["received"]], ["--all", "outgoing"],
                 ["--yes", n["outgoing"]]):
        before = snapshot(spool.root)
        status, _, err = spool.run("purge", *args)
        checks.expect(status == 1 and "--force" in err,
                      f"purge {args} without --force: {status} {err}")
        checks.expect(snapshot(spool.root) == before,
                      f"purge {args} without --force changed the spool")

    before = snapshot(spool.root)
    status, out, err = spool.run("purge", n["q_plain"], n["q_garbage"])
    checks.expect(status == 1 and "--yes" in err and
                  f"would delete quarantine/{n['q_plain']}" in out,
                  f"purge of two without --yes: {status} {out} {err}")
    status, out, err = spool.run("purge", "--all", "quarantine")
    checks.expect(status == 1 and "--yes" in err,
                  f"purge --all without --yes: {status} {err}")
    checks.expect(snapshot(spool.root) == before,
                  "purge without --yes changed the spool")

    status, out, err = spool.run("purge", n["q_plain"])
    checks.expect(status == 0 and not spool.has("quarantine", n["q_plain"])
                  and not os.path.exists(spool.path("quarantine",
                                                    n["q_plain"] + ".reason")),
                  f"purge of one: {status} {out} {err}")
    status, out, err = spool.run("purge", "--all", "quarantine", "--yes")
    left = [name for name in os.listdir(os.path.join(spool.root,
                                                     "quarantine"))
            if name not in ("link.dcm", "sub")]
    checks.expect(status == 0 and not left,
                  f"purge --all quarantine --yes left {left}: {out} {err}")
    checks.expect(os.path.islink(spool.path("quarantine", "link.dcm")) and
                  os.path.isfile(n["secret"]),
                  "purge --all touched a link or what it points to")

    status, out, err = spool.run("purge", "--force", n["received"])
    checks.expect(status == 0 and not spool.has("received", n["received"]),
                  f"purge --force of received/: {status} {err}")
    status, _, err = spool.run("purge", "--force", "--all", "outgoing")
    checks.expect(status == 1 and os.listdir(os.path.join(spool.root,
                                                          "outgoing")),
                  f"purge --force --all without --yes: {status} {err}")
    status, _, err = spool.run("purge", "--force", "--yes", "--all",
                               "outgoing")
    checks.expect(status == 0 and not os.listdir(os.path.join(spool.root,
                                                              "outgoing")),
                  f"purge --force --yes --all outgoing: {status} {err}")
    checks.expect(os.path.exists(spool.path("received", ".incoming-abc123")),
                  "an unfinished file of the service was removed")


def check_usage(checks, spool, work):
    checks.scenario = "usage"
    config = os.path.join(work, "siren.conf")
    with open(config, "w", encoding="utf-8") as stream:
        stream.write(f'aet "SIREN"\nspool "{os.path.basename(spool.root)}"\n'
                     'plain\n  port "11112"\n  policy "none.policy"\nend\n'
                     'archive\n  host "127.0.0.1"\n  port "4242"\n'
                     '  aet "ARCHIVE"\nend\n')
    by_config = spool.run("list", config=config)
    by_folder = spool.run("list")
    checks.expect(by_config[0] == 0 and by_config[1] == by_folder[1],
                  f"-c FILE: {by_config}")
    siren = spool.siren
    for args in ([], ["list"], ["--spool", spool.root],
                 ["--spool", spool.root, "-c", config, "list"],
                 ["--spool", spool.root, "frob"],
                 ["--spool", spool.root, "list", "bogus"],
                 ["--spool", spool.root, "list", "a", "b"],
                 ["--spool", spool.root, "show"],
                 ["--spool", spool.root, "retry"],
                 ["--spool", spool.root, "retry", "--all", "received"],
                 ["--spool", spool.root, "retry", "--all", "failed", "x.dcm"],
                 ["--spool", spool.root, "list", "--yes"],
                 ["--spool", spool.root, "purge", "--all", "nowhere"],
                 ["--spool", spool.root, "--frob", "list"]):
        done = subprocess.run([siren, "spool", *args], capture_output=True,
                              timeout=30)
        checks.expect(done.returncode == 2, f"{args} exited "
                      f"{done.returncode}, not 2 (usage)")
    done = subprocess.run([siren, "spool", "--help"], capture_output=True)
    checks.expect(done.returncode == 0 and b"NOT de-identified" in
                  done.stdout, "--help")
    nowhere = os.path.join(work, "no-spool")
    done = subprocess.run([siren, "spool", "--spool", nowhere, "list"],
                          capture_output=True)
    checks.expect(done.returncode == 1 and not os.path.exists(nowhere),
                  f"a wrong spool path: {done.returncode}")
    done = subprocess.run([siren, "spool", "-c", config + ".missing", "list"],
                          capture_output=True)
    checks.expect(done.returncode == 1, "a missing configuration")
    # Deleting a held instance is recorded in the service's audit trail.
    audit = os.path.join(work, "audit.jsonl")
    with open(config, "a", encoding="utf-8") as stream:
        stream.write(f'audit\n  file "{audit}"\nend\n')
    with open(spool.path("quarantine", "audited.dcm"), "wb") as stream:
        stream.write(b"held")
    status, _, err = spool.run("purge", "audited.dcm", config=config)
    events = []
    if os.path.exists(audit):
        with open(audit, encoding="utf-8") as stream:
            events = [json.loads(line) for line in stream]
    checks.expect(status == 0 and any(e.get("event") == "spool.purged" and
                                      e.get("file") == "audited.dcm" and
                                      e.get("operator") for e in events),
                  f"purge with -c: {status} {err}; audit {events}")


# ---------------------------------------------------------------------------
# 7: with the service running
# ---------------------------------------------------------------------------


def live_config(work):
    key = os.path.join(work, "pseudonym.key")
    with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
              "w", encoding="ascii") as stream:
        stream.write(os.urandom(32).hex() + "\n")
    policy = os.path.join(work, "hold.policy")
    with open(policy, "w", encoding="utf-8") as stream:
        stream.write('policy "hold" version 1\n  profile basic\n'
                     f'  key file "{key}"\n'
                     '  replace PatientID with hash\n'
                     '  quarantine if BurnedInAnnotation == "YES" because '
                     '"burned-in text"\nend\n')
    config = os.path.join(work, "live.conf")
    with open(config, "w", encoding="utf-8") as stream:
        stream.write('aet "SIREN"\nspool "live-spool"\nprocessors 2\n'
                     'plain\n  port "0"\n  allow-calling "LOCAL"\n'
                     f'  policy "{policy}"\nend\n'
                     f'archive\n  host "127.0.0.1"\n  port "{free_port()}"\n'
                     '  aet "ARCHIVE"\nend\n')
    return config


def check_live(checks, siren, work):
    checks.scenario = "live"
    config = live_config(work)
    processes = Processes()
    log_path = os.path.join(work, "serve.log")
    try:
        process = processes.start([siren, "serve", "-c", config], log_path)

        def log():
            with open(log_path, encoding="latin-1") as stream:
                return stream.read()
        if not wait_until(lambda: "serve.listening" in log() or
                          process.poll() is not None, 10, 0.05) \
                or process.poll() is not None:
            checks.fail(f"siren serve did not start: {log()}")
            return
        spool = Spool.__new__(Spool)
        spool.siren, spool.root = siren, os.path.join(work, "live-spool")
        unfinished = spool.path("received", ".incoming-live")
        with open(unfinished, "wb") as stream:
            stream.write(b"half")
        clean = spool.add("quarantine", instance_name(1), site="",
                          reason="no policy for the plain listener")
        held = spool.add("quarantine", instance_name(2), site="",
                         burned_in=True, reason="an old reason")
        failed = spool.add("failed", instance_name(3), reason="refused")

        status, out, err = spool.run("retry", "--all", "quarantine")
        checks.expect(status == 0, f"retry while serving: {status} {err}")
        status, out, err = spool.run("retry", failed)
        checks.expect(status == 0, f"retry of failed/: {status} {err}")
        checks.expect(wait_until(lambda: spool.has("outgoing", clean), 5),
                      "a retried instance was not de-identified into "
                      "outgoing/")
        reason_path = spool.path("quarantine", held + ".reason")

        def reason():
            try:
                with open(reason_path, encoding="utf-8") as stream:
                    return stream.read()
            except FileNotFoundError:
                return ""
        checks.expect(wait_until(lambda: spool.has("quarantine", held) and
                                 "burned-in text" in reason(), 5),
                      f"an instance the policy still holds: not back in "
                      f"quarantine/ with a fresh reason ({reason()!r})")
        checks.expect(not os.path.exists(spool.path("quarantine",
                                                    clean + ".reason")),
                      "the reason of a released instance stayed")
        time.sleep(0.5)  # the forwarder tried the archive, which is away
        checks.expect(spool.has("outgoing", failed) and
                      not spool.has("failed", failed),
                      "a retried failed instance did not wait in outgoing/")
        status, out, _ = spool.run("list", "quarantine")
        checks.expect(status == 0 and "burned-in text" in line_of(out, held),
                      f"list while serving: {out}")
        checks.expect(os.path.exists(unfinished), "siren spool removed an "
                      "unfinished file of the running service")
        checks.expect(process.poll() is None, "siren serve stopped")
    finally:
        processes.stop_all()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--siren", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    siren = os.path.abspath(args.siren)
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    checks = Checks()
    started = time.monotonic()
    try:
        spool = Spool(siren, os.path.join(work, "spool"))
        names = build(spool, work)
        check_list(checks, spool, names)
        check_show(checks, spool, names)
        check_bad_names(checks, spool, names)
        check_retry(checks, spool, names)
        check_purge(checks, spool, names)
        check_usage(checks, spool, work)
        check_live(checks, siren, work)
    except Exception:  # a broken test is a failure, with its trace
        traceback.print_exc()
        checks.fail("the test itself failed")
    print(f"spool_cli: {len(checks.failures)} failure(s) in "
          f"{time.monotonic() - started:.1f} s")
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
