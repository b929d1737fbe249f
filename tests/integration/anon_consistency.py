#!/usr/bin/python3
"""anon_consistency.py - the same key gives the same pseudonyms, across
files and across runs of `siren apply`.

A synthetic data set written with pydicom: patient A with a baseline
study (a CT series, a derived CT series whose instances reference the
first series' instances through Source Image Sequence and Referenced
Image Sequence, an SR whose Current Requested Procedure Evidence
Sequence lists every image of the study by study, series and SOP
Instance UID; one Frame of Reference for both CT series) and a follow-up
study, and patient B with one MR study. The policy is the Basic Profile
with Retain Longitudinal Temporal Information Modified Dates, "replace
PatientID with hash" and "shift dates by hmac-days(PatientID, 1..365)
back", under a key the test makes.

Checks:
  1. the files, split between two separate runs of `siren apply` with
     the same key, come out as one data set: each Study, Series and
     Frame of Reference UID is the same new 2.25 UID in every file that
     had it, whichever run wrote it; SOP Instance UIDs are new, unique
     and name the files (and the file meta's Media Storage SOP Instance
     UID); every Referenced SOP Instance UID, and the study and series
     UIDs of the SR's evidence list, is the new UID of the instance,
     study or series it referred to; no original UID is left;
  2. the hashed Patient ID is the same in every file of a patient, and
     differs between patients; every date of a patient's files moved back
     by the same number of days (1 to 365) in both runs, so intervals
     between dates, within an instance and across studies, are kept, and
     times of day within DateTime values are kept; Longitudinal Temporal
     Information Modified is MODIFIED;
  3. a second run of the same files with the same key writes identical
     bytes (the engine has no clock and no randomness);
  4. a different key gives different UIDs and a different Patient ID
     pseudonym for every file;
  5. `siren diff` on a file with planted PHI prints a removal line for
     each planted attribute that the profile removes, a change line for
     the ones it replaces, leaves the file unchanged and exits 0;
  6. `siren policy check` of a broken policy exits 1 with one
     file:line:column error per broken line, and `siren apply` with it
     exits 1 without writing anything; the good policy checks with 0.

Usage:
  /usr/bin/python3 anon_consistency.py --siren build/gateway/siren \\
      --work /tmp/consistency

Exit status: 0 every check passed, 1 a check failed (each one printed),
2 the test could not run.

Run with Debian's /usr/bin/python3, which has python3-pydicom.
"""

import argparse
import datetime
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import warnings

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
UID_ROOT = "1.2.826.0.1.3680043.10.4243"
UID_2_25 = re.compile(r"^2\.25\.(0|[1-9][0-9]*)$")
HASHED_ID = re.compile(r"^[A-Z2-7]{16}$")
SUBPROCESS_TIMEOUT_S = 60

POLICY = """\
# The test's policy: Basic Profile, modified dates, hashed Patient ID.
policy "consistency" version 1
  profile basic
  option retain-longitudinal-modified-dates
  key file "${SIREN_PSEUDONYM_KEY}"
  replace PatientID with hash
  shift dates by hmac-days(PatientID, 1..365) back
end
"""

# Three broken lines (4, 5, 6): each must be reported with its place.
BROKEN_POLICY = """\
policy "broken" version 1
  profile basic
  key file "${SIREN_PSEUDONYM_KEY}"
  optoin retain-uids
  replace PatientID with
  remove NoSuchKeyword
end
"""
BROKEN_LINES = (4, 5, 6)


class Checks:
    """Failures (with the part of the test they belong to) and counts."""

    def __init__(self):
        self.part = ""
        self.failures = []
        self.passed = 0

    def fail(self, what):
        line = f"[{self.part}] {what}"
        self.failures.append(line)
        print("FAIL " + line, flush=True)

    def expect(self, condition, what):
        if condition:
            self.passed += 1
        else:
            self.fail(what)
        return bool(condition)

    def ok(self, what):
        print(f"ok   [{self.part}] {what}", flush=True)


# ---------------------------------------------------------------------------
# The synthetic data set
# ---------------------------------------------------------------------------

class Instance:
    """One input file: what it is and what it refers to."""

    def __init__(self, number, patient, study, series, sop_uid):
        self.number = number      # InstanceNumber, unique in the set
        self.patient = patient
        self.study = study        # original Study Instance UID
        self.series = series      # original Series Instance UID
        self.sop_uid = sop_uid
        self.path = None
        self.dates = {}           # keyword -> original DA/DT value


def uid(*parts):
    return ".".join((UID_ROOT,) + tuple(str(p) for p in parts))


PATIENTS = {
    "A": ("Consistency^Alice", "CONS-A-001", "19700101"),
    "B": ("Consistency^Bob", "CONS-B-002", "19650505"),
}
# (patient, study number, study date, series: (number, modality, count,
# role)); role "base", "derived" (references the base series), "sr".
STUDIES = (
    ("A", 1, "20230310", ((1, "CT", 4, "base"), (2, "CT", 3, "derived"),
                          (3, "SR", 1, "sr"))),
    ("A", 2, "20230901", ((1, "CT", 2, "base"),)),
    ("B", 1, "20221120", ((1, "MR", 2, "base"),)),
)


def add_days(date, days):
    d = datetime.date(int(date[:4]), int(date[4:6]), int(date[6:8]))
    return (d + datetime.timedelta(days=days)).strftime("%Y%m%d")


def days_between(a, b):
    """b - a in days, for YYYYMMDD strings."""
    da = datetime.date(int(a[:4]), int(a[4:6]), int(a[6:8]))
    db = datetime.date(int(b[:4]), int(b[4:6]), int(b[6:8]))
    return (db - da).days


def base_dataset(inst, sop_class, modality, study_date, frame_uid,
                 series_number):
    name, patient_id, birth = PATIENTS[inst.patient]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = inst.sop_uid
    ds.StudyInstanceUID = inst.study
    ds.SeriesInstanceUID = inst.series
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = birth
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.InstanceNumber = inst.number
    ds.StudyDate = study_date
    ds.StudyTime = "101500"
    ds.SeriesDate = add_days(study_date, 0)
    ds.ContentDate = add_days(study_date, series_number)
    ds.AcquisitionDateTime = f"{study_date}1015{inst.number:02d}.25"
    ds.AccessionNumber = f"ACC{inst.number:04d}"
    ds.InstitutionName = "Consistency General Hospital"
    if frame_uid:
        ds.FrameOfReferenceUID = frame_uid
    for keyword in ("StudyDate", "SeriesDate", "ContentDate",
                    "AcquisitionDateTime"):
        inst.dates[keyword] = str(ds.get(keyword))
    return ds


def add_image(ds):
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(32))


def reference(sop_class, sop_uid):
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_uid
    return item


def save(ds, path, syntax):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    ds.is_little_endian = True
    ds.is_implicit_VR = syntax == IMPLICIT_LE
    ds.save_as(path, write_like_original=False)


def make_dataset(folder):
    """Writes the synthetic data set; returns its Instances in order,
    and refs: {InstanceNumber: [original UIDs it refers to]}."""
    instances, refs = [], {}
    number = 0
    for patient, study_number, study_date, series_list in STUDIES:
        study = uid(ord(patient), study_number)
        frame = uid(ord(patient), study_number, 0, 1)
        by_series = {}
        for series_number, modality, count, role in series_list:
            series = uid(ord(patient), study_number, series_number)
            sop_class = {"CT": CT_IMAGE, "MR": MR_IMAGE,
                         "SR": COMPREHENSIVE_SR}[modality]
            by_series[series_number] = []
            for i in range(count):
                number += 1
                inst = Instance(number, patient, study, series,
                                uid(ord(patient), study_number,
                                    series_number, 100 + i))
                ds = base_dataset(inst, sop_class, modality, study_date,
                                  None if role == "sr" else frame,
                                  series_number)
                refs[number] = []
                if role == "derived":
                    base = by_series[1]
                    source = base[i % len(base)]
                    other = base[(i + 1) % len(base)]
                    ds.SourceImageSequence = Sequence(
                        [reference(CT_IMAGE, source.sop_uid)])
                    ds.ReferencedImageSequence = Sequence(
                        [reference(CT_IMAGE, other.sop_uid)])
                    refs[number] += [source.sop_uid, other.sop_uid]
                if role == "sr":
                    evidence = Dataset()
                    evidence.StudyInstanceUID = study
                    evidence.ReferencedSeriesSequence = Sequence()
                    for listed in sorted(by_series):
                        if listed == series_number:
                            continue  # the SR's own series
                        series_item = Dataset()
                        series_item.SeriesInstanceUID = \
                            by_series[listed][0].series
                        series_item.ReferencedSOPSequence = Sequence(
                            [reference(CT_IMAGE, x.sop_uid)
                             for x in by_series[listed]])
                        evidence.ReferencedSeriesSequence.append(series_item)
                        refs[number] += [x.sop_uid
                                         for x in by_series[listed]]
                    ds.CurrentRequestedProcedureEvidenceSequence = \
                        Sequence([evidence])
                    ds.ValueType = "CONTAINER"
                    ds.CompletionFlag = "COMPLETE"
                    ds.VerificationFlag = "UNVERIFIED"
                else:
                    add_image(ds)
                inst.path = os.path.join(folder, f"in-{number:02d}.dcm")
                save(ds, inst.path,
                     IMPLICIT_LE if number % 3 == 0 else EXPLICIT_LE)
                by_series[series_number].append(inst)
                instances.append(inst)
    return instances, refs


# ---------------------------------------------------------------------------
# Running siren and reading what it wrote
# ---------------------------------------------------------------------------

def write_key(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, os.urandom(32).hex().encode() + b"\n")
    os.close(fd)


def run(args, command, key):
    env = dict(os.environ, SIREN_PSEUDONYM_KEY=key)
    return subprocess.run([args.siren] + command, capture_output=True,
                          text=True, errors="replace", env=env,
                          timeout=SUBPROCESS_TIMEOUT_S)


def apply(checks, args, policy, key, out_dir, instances):
    """Runs siren apply; returns {InstanceNumber: (path, dataset)}."""
    r = run(args, ["apply", "-q", "--policy", policy, "-o", out_dir] +
            [i.path for i in instances], key)
    checks.expect(r.returncode == 0,
                  f"siren apply -o {os.path.basename(out_dir)}: exit "
                  f"{r.returncode}: {r.stderr.strip()}")
    outputs = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*.dcm"))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
        outputs[int(ds.InstanceNumber)] = (path, ds)
    checks.expect(sorted(outputs) == sorted(i.number for i in instances),
                  f"{os.path.basename(out_dir)}: outputs for instances "
                  f"{sorted(outputs)}, expected "
                  f"{sorted(i.number for i in instances)}")
    return outputs


def referenced_uids(ds):
    """Every Referenced SOP Instance UID, and the Study/Series Instance
    UIDs inside sequences, at any depth: [(keyword, value)]."""
    found = []
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                for sub in item:
                    if sub.keyword in ("ReferencedSOPInstanceUID",
                                       "StudyInstanceUID",
                                       "SeriesInstanceUID"):
                        found.append((sub.keyword, str(sub.value)))
                found += referenced_uids(item)
    return found


def is_new_uid(value):
    return bool(UID_2_25.match(value)) and len(value) <= 64 and \
        int(value[5:]) < 2 ** 128


# ---------------------------------------------------------------------------
# The parts of the test
# ---------------------------------------------------------------------------

def consistency(checks, args, policy, key_a, key_b, instances, refs):
    work = args.work
    checks.part = "two runs, one key"
    first = [i for i in instances if i.number % 2 == 1]
    second = [i for i in instances if i.number % 2 == 0]
    out1 = apply(checks, args, policy, key_a, os.path.join(work, "run1"),
                 first)
    out2 = apply(checks, args, policy, key_a, os.path.join(work, "run2"),
                 second)
    outputs = {**out1, **out2}
    by_number = {i.number: i for i in instances}
    failures = len(checks.failures)

    # One new UID per original study, series and frame of reference,
    # whichever run wrote the file.
    new_of = {}   # original UID -> new UID (or the set of them)
    for number, (path, ds) in sorted(outputs.items()):
        inst = by_number[number]
        for keyword, original in (("StudyInstanceUID", inst.study),
                                  ("SeriesInstanceUID", inst.series),
                                  ("SOPInstanceUID", inst.sop_uid)):
            value = str(ds.get(keyword, ""))
            checks.expect(is_new_uid(value) and value != original,
                          f"instance {number}: {keyword} {value!r} is not "
                          "a new 2.25 UID")
            new_of.setdefault(original, set()).add(value)
        if "FrameOfReferenceUID" in ds:
            new_of.setdefault(("frame", inst.patient, inst.study),
                              set()).add(str(ds.FrameOfReferenceUID))
        name = os.path.basename(path)
        checks.expect(name == f"{ds.SOPInstanceUID}.dcm" and
                      ds.file_meta.MediaStorageSOPInstanceUID ==
                      ds.SOPInstanceUID,
                      f"instance {number}: file {name}, meta "
                      f"{ds.file_meta.MediaStorageSOPInstanceUID}, SOP "
                      f"Instance UID {ds.SOPInstanceUID}")
    for original, values in new_of.items():
        checks.expect(len(values) == 1,
                      f"{original}: {len(values)} different new UIDs across "
                      f"files and runs: {sorted(values)}")
    sop_uids = [str(ds.SOPInstanceUID) for _, ds in outputs.values()]
    checks.expect(len(set(sop_uids)) == len(sop_uids),
                  "two outputs have the same SOP Instance UID")
    studies = {frozenset(new_of[i.study]) for i in instances}
    checks.expect(len(studies) == len(STUDIES),
                  f"{len(STUDIES)} studies became {len(studies)}")
    frames = {k: v for k, v in new_of.items() if isinstance(k, tuple)}
    checks.expect(len(frames) == 3 and all(len(v) == 1
                                           for v in frames.values()),
                  f"Frame of Reference UIDs: {frames}")

    # References resolve to the new UIDs of what they referred to.
    mapped = {o: next(iter(v)) for o, v in new_of.items()
              if isinstance(o, str) and len(v) == 1}
    for number, (path, ds) in sorted(outputs.items()):
        found = referenced_uids(ds)
        wanted = [mapped.get(u, f"(unmapped {u})") for u in refs[number]]
        got = [v for k, v in found if k == "ReferencedSOPInstanceUID"]
        checks.expect(sorted(got) == sorted(wanted),
                      f"instance {number}: references {got}, expected the "
                      f"new UIDs {wanted}")
        for keyword, value in found:
            checks.expect(value in mapped.values(),
                          f"instance {number}: {keyword} {value} inside a "
                          "sequence names no output")
        with open(path, "rb") as f:
            checks.expect(UID_ROOT.encode() not in f.read(),
                          f"instance {number}: an original UID is left "
                          "in the output")
    if len(checks.failures) == failures:
        checks.ok(f"{len(first)} + {len(second)} files in two runs: "
                  f"{len(studies)} studies, {len(frames)} frames of "
                  "reference, one new UID each; every reference resolves")

    # Patient ID and dates.
    failures = len(checks.failures)
    ids, shifts = {}, {}
    for number, (path, ds) in sorted(outputs.items()):
        inst = by_number[number]
        pid = str(ds.get("PatientID", ""))
        checks.expect(HASHED_ID.match(pid) is not None,
                      f"instance {number}: PatientID {pid!r} is not a "
                      "16-character keyed hash")
        ids.setdefault(inst.patient, set()).add(pid)
        for keyword, original in inst.dates.items():
            value = str(ds.get(keyword, ""))
            if not re.match(r"^\d{8}", value):
                checks.fail(f"instance {number}: {keyword} {value!r} is "
                            f"not a date (was {original})")
                continue
            shift = days_between(original[:8], value[:8])
            shifts.setdefault(inst.patient, set()).add(shift)
            checks.expect(value[8:] == original[8:],
                          f"instance {number}: {keyword} {original} -> "
                          f"{value}: the time of day changed")
        checks.expect(ds.get("LongitudinalTemporalInformationModified") ==
                      "MODIFIED", f"instance {number}: Longitudinal "
                      "Temporal Information Modified is "
                      f"{ds.get('LongitudinalTemporalInformationModified')!r}")
    for patient, values in sorted(ids.items()):
        checks.expect(len(values) == 1, f"patient {patient}: PatientID "
                      f"pseudonyms {sorted(values)} across files and runs")
    checks.expect(len(set().union(*ids.values())) == len(ids),
                  f"two patients share a PatientID pseudonym: {ids}")
    for patient, values in sorted(shifts.items()):
        checks.expect(len(values) == 1 and -365 <= min(values) <= -1,
                      f"patient {patient}: date shifts {sorted(values)} "
                      "(days); one shift of 1 to 365 days back expected")
    a_studies = [str(ds.StudyDate) for n, (_, ds) in outputs.items()
                 if by_number[n].patient == "A"]
    checks.expect(days_between(min(a_studies), max(a_studies)) ==
                  days_between(STUDIES[0][2], STUDIES[1][2]),
                  f"patient A: the interval between the studies changed "
                  f"({min(a_studies)} .. {max(a_studies)})")
    if len(checks.failures) == failures:
        checks.ok("one PatientID pseudonym per patient; "
                  + ", ".join(f"patient {p}: dates {min(v)} days"
                              for p, v in sorted(shifts.items()))
                  + ", intervals and times of day kept")

    # The same run again: the same bytes.
    checks.part = "repeatable"
    again = apply(checks, args, policy, key_a, os.path.join(work, "run1b"),
                  first)
    failures = len(checks.failures)
    for number, (path, _) in sorted(out1.items()):
        other = again.get(number)
        if not checks.expect(other is not None,
                             f"instance {number}: missing in the rerun"):
            continue
        with open(path, "rb") as f1, open(other[0], "rb") as f2:
            a, b = f1.read(), f2.read()
        first_difference = next((k for k in range(min(len(a), len(b)))
                                 if a[k] != b[k]), min(len(a), len(b)))
        checks.expect(a == b and os.path.basename(path) ==
                      os.path.basename(other[0]),
                      f"instance {number}: the rerun wrote different bytes "
                      f"({len(a)} vs {len(b)}; first difference at byte "
                      f"{first_difference})")
    if len(checks.failures) == failures:
        checks.ok(f"{len(first)} files applied again: identical bytes and "
                  "names")

    # Another key: nothing the same.
    checks.part = "another key"
    other_key = apply(checks, args, policy, key_b,
                      os.path.join(work, "run-key-b"), instances)
    failures = len(checks.failures)
    for number, (_, ds_b) in sorted(other_key.items()):
        ds_a = outputs[number][1]
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID",
                        "SOPInstanceUID", "FrameOfReferenceUID",
                        "PatientID"):
            if keyword not in ds_a:
                continue
            checks.expect(str(ds_a.get(keyword)) != str(ds_b.get(keyword)),
                          f"instance {number}: {keyword} is "
                          f"{ds_b.get(keyword)} under both keys")
    if len(checks.failures) == failures:
        checks.ok(f"{len(other_key)} files under another key: every UID "
                  "and PatientID pseudonym differs")


def diff_check(checks, args, policy_basic, key, work):
    """siren diff on a file with planted PHI."""
    checks.part = "siren diff"
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = uid(9, 1)
    ds.StudyInstanceUID = uid(9, 2)
    ds.SeriesInstanceUID = uid(9, 3)
    ds.Modality = "CT"
    ds.PatientName = "Diffmann^Petra"
    ds.PatientID = "DIFF-0042"
    ds.PatientAddress = "PHIMARK7Q 12 Diff Street"
    ds.OtherPatientNames = "Diffmann^Petra^Maiden"
    ds.PatientTelephoneNumbers = "+41 44 000 00 00"
    ds.ImageComments = "PHIMARK7Q Diffmann Petra"
    ds.add_new(0x00190010, "LO", "ACME DIFF")
    ds.add_new(0x00191001, "LO", "PHIMARK7Q private")
    add_image(ds)
    path = os.path.join(work, "diff-input.dcm")
    save(ds, path, EXPLICIT_LE)
    with open(path, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    r = run(args, ["diff", "--policy", policy_basic, path], key)
    checks.expect(r.returncode == 0, f"siren diff: exit {r.returncode}: "
                                     f"{r.stderr.strip()}")
    lines = r.stdout.splitlines()
    for mark, tag, keyword in (("-", "(0010,1040)", "PatientAddress"),
                               ("-", "(0010,1001)", "OtherPatientNames"),
                               ("-", "(0010,2154)", "PatientTelephoneNumbers"),
                               ("-", "(0020,4000)", "ImageComments"),
                               ("-", "(0019,1001)", ""),
                               ("-", "(0019,0010)", "PrivateCreator"),
                               ("~", "(0010,0010)", "PatientName"),
                               ("~", "(0010,0020)", "PatientID"),
                               ("~", "(0020,000D)", "StudyInstanceUID"),
                               ("+", "(0012,0062)", "PatientIdentityRemoved")):
        checks.expect(any(line.startswith(f"{mark} {tag} {keyword}")
                          for line in lines),
                      f"no line '{mark} {tag} {keyword} ...' in:\n"
                      + r.stdout)
    checks.expect(bool(lines) and re.match(
        r"^\d+ removed, \d+ added, \d+ changed, \d+ unchanged \(policy "
        r"\"basic\" version 1\)$", lines[-1]) is not None,
        f"siren diff: no summary line: {lines[-1:]}")
    with open(path, "rb") as f:
        checks.expect(hashlib.sha256(f.read()).hexdigest() == before,
                      "siren diff changed its input file")
    if not [f for f in checks.failures if f.startswith("[siren diff]")]:
        checks.ok("removal lines for the planted PHI, change lines for "
                  "the replaced attributes, input untouched, exit 0")


def policy_check(checks, args, policy_good, key, work, instances):
    """siren policy check and apply with a broken policy."""
    checks.part = "siren policy check"
    broken = os.path.join(work, "broken.policy")
    with open(broken, "w", encoding="utf-8") as f:
        f.write(BROKEN_POLICY)
    r = run(args, ["policy", "check", broken], key)
    checks.expect(r.returncode == 1, f"policy check of a broken policy: "
                                     f"exit {r.returncode}, expected 1")
    out = r.stdout + r.stderr
    for line in BROKEN_LINES:
        checks.expect(re.search(rf"^{re.escape(broken)}:{line}:\d+: error: ",
                                out, re.M) is not None,
                      f"no '{broken}:{line}:COLUMN: error: ...' line in:\n"
                      + out)
    out_dir = os.path.join(work, "broken-out")
    r = run(args, ["apply", "-q", "--policy", broken, "-o", out_dir,
                   instances[0].path], key)
    checks.expect(r.returncode == 1 and not glob.glob(
        os.path.join(out_dir, "*")), f"apply with a broken policy: exit "
        f"{r.returncode}, wrote {glob.glob(os.path.join(out_dir, '*'))}")
    r = run(args, ["policy", "check", policy_good], key)
    checks.expect(r.returncode == 0, f"policy check of the test's policy: "
                                     f"exit {r.returncode}: {r.stderr}")
    if not [f for f in checks.failures if f.startswith("[siren policy")]:
        checks.ok("a broken policy: exit 1, one file:line:column error per "
                  "broken line, apply refuses it; the good one: exit 0")


def parse_arguments():
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.path.dirname(os.path.dirname(here))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True, help="the siren program")
    parser.add_argument("--policies",
                        default=os.path.join(source, "examples", "policies"),
                        help="the folder of basic.policy")
    parser.add_argument("--work", required=True, help="a scratch folder")
    return parser.parse_args()


def main():
    args = parse_arguments()
    if not os.access(args.siren, os.X_OK):
        print(f"anon_consistency: {args.siren} is not an executable program",
              file=sys.stderr)
        return 2
    args.work = os.path.abspath(args.work)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(os.path.join(args.work, "in"))
    key_a = os.path.join(args.work, "key-a")
    key_b = os.path.join(args.work, "key-b")
    write_key(key_a)
    write_key(key_b)
    policy = os.path.join(args.work, "consistency.policy")
    with open(policy, "w", encoding="utf-8") as f:
        f.write(POLICY)
    basic = os.path.join(args.work, "basic.policy")
    shutil.copy(os.path.join(args.policies, "basic.policy"), basic)
    instances, refs = make_dataset(os.path.join(args.work, "in"))
    checks = Checks()
    consistency(checks, args, policy, key_a, key_b, instances, refs)
    diff_check(checks, args, basic, key_a, args.work)
    policy_check(checks, args, policy, key_a, args.work, instances)
    print(f"anon_consistency: {checks.passed} checks passed, "
          f"{len(checks.failures)} failed")
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
