#!/usr/bin/python3
"""anon_phi.py - planted PHI never survives `siren apply`.

The test writes, with pydicom, a set of DICOM files full of identifying
values, de-identifies them with `siren apply`, and looks for every one of
those values in the raw bytes of what comes out.

The planted files (gen_file): CT, MR, Comprehensive SR and Secondary
Capture instances in Explicit VR Little Endian, Implicit VR Little Endian,
Deflated Explicit VR Little Endian and Explicit VR Big Endian, each with a
patient whose name is in one of four Specific Character Sets (ISO_IR 100
"Müller", ISO_IR 192 UTF-8, ISO 2022 IR 87 Japanese, ISO_IR 144
Cyrillic). Each file carries:

  - every attribute of PS3.15 Table E.1-1 with a concrete tag (VR from
    pydicom's dictionary, else DCMTK's dicom.dic, else LO): a marker
    "PHIMARK7Qnnnnnn" unique to that place in text VRs, marker bytes in
    binary ones (OB, OW, UN), a distinctive date, time, number or UID in
    the others; the patient's name, ID, birth date and accession number
    in the attributes that hold them; free text naming them in the
    descriptors; sequences with an item of identifying attributes;
  - the same identifying attributes at depths 1 to 3 inside sequences
    the profile keeps (and so walks), and in SR content items (TEXT,
    PNAME, DATE, DATETIME, UIDREF) at depths 1 to 3;
  - private blocks of known creators (GEMS_ACQU_01, SIEMENS CSA HEADER)
    and of an unknown creator whose name is a marker, private sequences
    nested two deep, a private element without a creator;
  - in the explicit VR little endian files, elements with VR UN: known
    text attributes, a known sequence whose value is an implicit VR
    encoded item list (defined length, and in the non-deflated file also
    undefined length), a private UN holding a sequence, an unknown
    standard tag holding a sequence;
  - elements of the reserved groups 0001, 0003, 0005 and 0007, unknown
    tags of standard groups, overlay planes (60xx: data and comments),
    curves (50xx), a marker in the file meta (source AE title, private
    information), and, in the explicit VR little endian files, command
    group elements (0000,eeee) in the dataset;
  - in one more file, 1280 other identifying values (private texts)
    before the patient's name, so that the cleaner must not stop
    collecting words.

Checks, for each policy (basic: examples/policies/basic.policy with a key
the test makes; options: the same plus retain-patient-characteristics,
clean-descriptors, clean-structured-content and retain-safe-private):

  1. `siren apply` writes one output per input and exits 0;
  2. no marker, and no planted name (each part of it), ID, accession
     number, date, time, number or UID appears in an output's raw bytes:
     in UTF-8, in the file's own character set (for ISO 2022 IR 87 also
     the bare JIS X 0208 bytes between escapes), in upper, lower and
     title case. Each leak is reported with the output element holding
     it and where the value was planted;
  3. pydicom reads every element of every output (values decoded, pixel
     data to an array) without warning, and dcmdump (DCMTK) reads it
     with neither error nor warning;
  4. Patient Identity Removed (0012,0062) is YES; the SOP Instance, Study
     and Series Instance UIDs differ from the input's and are valid 2.25
     UIDs; the output file is named by the new SOP Instance UID;
  5. under the options policy, values those options keep are kept (the
     patient's sex, age, weight; GEMS_ACQU_01 safe private attributes),
     so that the test is known to run the options at all.

In the options files, attributes that the options clean (C) hold only
values that are identifying elsewhere in the same instance (the engine
blanks those, anon/scrub.c); attributes the options keep (K) hold values
that identify no one. Everything else is as in the basic files.

Then the pydicom corpus (test_files/*.dcm and charset_files/*.dcm that
siren reads) under basic.policy: the original Patient's Name, Patient ID
and Study Instance UID of each file must not appear in its output.

Usage:
  /usr/bin/python3 anon_phi.py --siren build/gateway/siren \\
      --policies examples/policies \\
      --data /usr/lib/python3/dist-packages/pydicom/data --work /tmp/phi

Exit status: 0 every check passed, 1 a check failed (each one printed),
2 the test could not run (a missing tool or corpus).

Run with Debian's /usr/bin/python3, which has python3-pydicom and numpy.
"""

import argparse
import datetime
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import warnings
import zlib

import pydicom
import pydicom.config
import pydicom.datadict
import pydicom.encaps
import pydicom.filebase
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
SYNTAX_NAMES = {EXPLICIT_LE: "explicit-le", IMPLICIT_LE: "implicit-le",
                DEFLATED_LE: "deflated", EXPLICIT_BE: "big-endian"}

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

# Every marker starts so; the six digits after it say where it was put.
MARKER = "PHIMARK7Q"
# Every UID the test plants starts so (none is well-known).
UID_ROOT = "1.2.826.0.1.3680043.10.4242"
TABLE_E11 = "ps3.15-2024b-table-E.1-1-confidentiality-profile.json"
DCMTK_DICTIONARIES = sorted(glob.glob("/usr/share/libdcmtk*/dicom.dic"))
SUBPROCESS_TIMEOUT_S = 60
UID_2_25 = re.compile(r"^2\.25\.(0|[1-9][0-9]*)$")

# The options policy: PS3.15 options whose C and K actions the test plants
# for; the engine's order of options (anon/decide.c: C wins over K).
OPTIONS = ("retain-safe-private", "retain-patient-characteristics",
           "clean-descriptors", "clean-structured-content")
OPTION_COLUMNS = (("retain-safe-private", "rtnSafePrivOpt"),
                  ("retain-uids", "rtnUIDsOpt"),
                  ("retain-device-identity", "rtnDevIdOpt"),
                  ("retain-institution-identity", "rtnInstIdOpt"),
                  ("retain-patient-characteristics", "rtnPatCharsOpt"),
                  ("retain-longitudinal-full-dates", "rtnLongFullDatesOpt"),
                  ("retain-longitudinal-modified-dates",
                   "rtnLongModifDatesOpt"),
                  ("clean-descriptors", "cleanDescOpt"),
                  ("clean-structured-content", "cleanStructContOpt"),
                  ("clean-graphics", "cleanGraphOpt"))
TEXT_VRS = ("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR")

# Values the options policy keeps (Retain Patient Characteristics): they
# identify no one, and must be in the output.
KEPT_CHARACTERISTICS = {
    0x00100040: "O",          # Patient's Sex
    0x00101010: "042Y",       # Patient's Age
    0x00101020: "1.75",       # Patient's Size
    0x00101030: "72.5",       # Patient's Weight
    0x00102160: "KEEPOK",     # Ethnic Group
    0x001021A0: "NO",         # Smoking Status
    0x001021C0: 4,            # Pregnancy Status
    0x00102203: "UNALTERED",  # Patient's Sex Neutered
    0x0072005F: "042Y",       # Selector AS Value
}

# Sequences no row of Table E.1-1 names: the profile keeps them and walks
# their items, depth 1 to 3. (Checked against the table at start.)
KEPT_SEQUENCES = (0x00082218,   # Anatomic Region Sequence
                  0x00400260,   # Performed Protocol Code Sequence
                  0x00089215,   # Derivation Code Sequence
                  0x00082228)   # Primary Anatomic Structure Sequence
# Known sequences written with VR UN (explicit VR files): not in the
# table either, so that the engine must read into them.
UN_SEQUENCE = 0x00540016        # Radiopharmaceutical Information Sequence
UN_SEQUENCE_UNDEFINED = 0x00540220  # View Code Sequence
# Table E.1-1 text attributes written with VR UN (explicit VR files).
UN_TEXT = (0x00102180,          # Occupation (SH)
           0x00081040)          # Institutional Department Name (LO)
# Tags of standard groups that no dictionary knows.
UNKNOWN_STANDARD = (0x0008FFF0, 0x00109990, 0x0018FFF2, 0x0020FFF4)


class Person:
    """A patient, or a physician, with a name in one character set."""

    def __init__(self, name, words):
        self.name = name        # the PN value
        self.words = words      # its parts, each must never survive
        groups = name.split("=")[0].split("^")
        self.family = groups[0]
        self.given = groups[1] if len(groups) > 1 else ""


class Charset:
    """A Specific Character Set with the people of one file."""

    def __init__(self, label, value, codec, patient, doctor, verifier):
        self.label = label
        self.value = value      # (0008,0005)
        self.codec = codec      # Python's codec of the whole set
        self.patient = patient
        self.doctor = doctor    # physicians, operators
        self.verifier = verifier  # only in SR verification attributes


CHARSETS = {
    "latin1": Charset(
        "ISO_IR 100 (Latin-1)", "ISO_IR 100", "latin_1",
        Person("Müller^Hänsel^Jörg", ["Müller", "Hänsel", "Jörg"]),
        Person("Åkesson^Björn", ["Åkesson", "Björn"]),
        Person("Ferré^Zoë", ["Ferré", "Zoë"])),
    "utf8": Charset(
        "ISO_IR 192 (UTF-8)", "ISO_IR 192", "utf_8",
        Person("Nguyễn^Thị Ánh", ["Nguyễn", "Thị", "Ánh"]),
        Person("Παπαδόπουλος^Γιώργος", ["Παπαδόπουλος", "Γιώργος"]),
        Person("Łukasiewicz^Żaneta", ["Łukasiewicz", "Żaneta"])),
    "jis": Charset(
        "ISO 2022 IR 87 (Japanese)", ["", "ISO 2022 IR 87"], "iso2022_jp",
        Person("Yamada^Tarou=山田^太郎=やまだ^たろう",
               ["Yamada", "Tarou", "山田", "太郎", "やまだ", "たろう"]),
        Person("Suzuki^Hanako=鈴木^花子=すずき^はなこ",
               ["Suzuki", "Hanako", "鈴木", "花子", "すずき", "はなこ"]),
        Person("Tanaka^Ichirou=田中^一郎=たなか^いちろう",
               ["Tanaka", "Ichirou", "田中", "一郎", "たなか", "いちろう"])),
    "cyrillic": Charset(
        "ISO_IR 144 (Cyrillic)", "ISO_IR 144", "iso8859_5",
        Person("Иванов^Сергей^Петрович", ["Иванов", "Сергей", "Петрович"]),
        Person("Смирнова^Анна", ["Смирнова", "Анна"]),
        Person("Кузнецов^Дмитрий", ["Кузнецов", "Дмитрий"])),
}

# The planted files: (name, SOP class, transfer syntax, character set).
FILES = (
    ("ct-explicit-latin1", CT_IMAGE, EXPLICIT_LE, "latin1"),
    ("mr-implicit-utf8", MR_IMAGE, IMPLICIT_LE, "utf8"),
    ("sr-deflated-jis", COMPREHENSIVE_SR, DEFLATED_LE, "jis"),
    ("sc-bigendian-cyrillic", SECONDARY_CAPTURE, EXPLICIT_BE, "cyrillic"),
    ("sr-explicit-latin1", COMPREHENSIVE_SR, EXPLICIT_LE, "latin1"),
    ("ct-bigendian-jis", CT_IMAGE, EXPLICIT_BE, "jis"),
    ("mr-deflated-cyrillic", MR_IMAGE, DEFLATED_LE, "cyrillic"),
    ("sc-implicit-utf8", SECONDARY_CAPTURE, IMPLICIT_LE, "utf8"),
    ("sr-implicit-cyrillic", COMPREHENSIVE_SR, IMPLICIT_LE, "cyrillic"),
    # Many identifying values before the patient's name (1280 private
    # texts in group 0009): the cleaner must still know the name.
    ("sc-many-values-latin1", SECONDARY_CAPTURE, EXPLICIT_LE, "latin1"),
)
MANY_VALUES_BLOCKS = 5  # of 256 private elements each


# ---------------------------------------------------------------------------
# Checks: what failed, printed as it happens
# ---------------------------------------------------------------------------

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
        self.passed += 1
        print(f"ok   [{self.part}] {what}", flush=True)


# ---------------------------------------------------------------------------
# Planting: the registry says what was put where
# ---------------------------------------------------------------------------

class Planter:
    """Plants values into one file and records each one."""

    def __init__(self, file_name, charset, mode, table, file_index):
        self.file_name = file_name
        self.cs = charset
        self.mode = mode        # "basic" or "options"
        self.table = table      # {tag: row}
        self.file_index = file_index
        self.places = {}        # marker number -> description of the place
        self.needles = []       # (text, what): strings that must not survive
        self.kept = []          # (tag, value): must survive (options)
        self.count = 0

    # -- values ------------------------------------------------------------

    def marker(self, where):
        """A new marker, recorded as planted at where."""
        number = self.file_index * 100000 + self.count
        self.count += 1
        self.places[number] = f"{self.file_name}: {where}"
        return f"{MARKER}{number:06d}", number

    def short_text(self):
        """Identifying words of this instance, at most 64 characters."""
        p = self.cs.patient
        return f"{p.family} {p.given} {self.patient_id()} {self.birth_iso()}"

    def long_text(self):
        """A report that names everyone this instance names."""
        p, d, v = self.cs.patient, self.cs.doctor, self.cs.verifier
        b = self.birth()
        return (f"Patient {p.family}, {p.given} ({p.family.upper()}), ID "
                f"{self.patient_id()}, born {b[:4]}-{b[4:6]}-{b[6:]} "
                f"({b[6:]}.{b[4:6]}.{b[:4]}, {b}), accession "
                f"{self.accession()}, referred by {d.family} {d.given}, "
                f"verified by {v.family}.")

    def patient_id(self):
        return f"PID{self.file_index}Q7X"

    def accession(self):
        return f"ACC{self.file_index}Z9W"

    def birth(self):
        return f"196{self.file_index}0307"

    def birth_iso(self):
        b = self.birth()
        return f"{b[:4]}-{b[4:6]}-{b[6:]}"

    def uid(self, number):
        return f"{UID_ROOT}.{self.file_index}.{number}"

    def planted(self, tag, vr, where):
        """The value to plant for attribute tag (of Table E.1-1, or 0):
        in the options files, what the options clean holds only words
        identifying elsewhere and what they keep a harmless value; else
        value_for's."""
        row = self.table.get(tag)
        code = options_code(row) if self.mode == "options" and row else None
        if code == "K":
            if tag not in KEPT_CHARACTERISTICS:
                raise RuntimeError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}): "
                                   "the options keep it, and the test has "
                                   "no harmless value for it")
            self.kept.append((tag, KEPT_CHARACTERISTICS[tag]))
            return KEPT_CHARACTERISTICS[tag]
        if code == "C" and vr in TEXT_VRS and vr != "UR":
            if vr in ("AE", "CS", "SH"):
                return self.patient_id()
            if vr == "PN":
                return self.cs.patient.name
            if vr in ("LO", "UC"):
                return self.short_text()
            return self.long_text()
        return self.value_for(tag, vr, where)

    def value_for(self, tag, vr, where):
        """A planted value for an attribute of VR vr: a marker where the
        VR holds text, else a distinctive value recorded as a needle."""
        m, number = self.marker(where)
        if vr in ("AE", "CS", "SH"):
            return m
        if vr == "PN":
            return f"{self.cs.doctor.family}^{m}"
        if vr in ("LO", "UC"):
            return f"{m} {self.short_text()}"
        if vr in ("LT", "ST", "UT"):
            return f"{m} {self.long_text()}"
        if vr == "UR":
            return f"http://{m.lower()}.example/"
        if vr in ("OB", "OW", "UN"):
            return even(m.encode("ascii"))
        if vr == "DA":
            date = (datetime.date(1937, 1, 1) +
                    datetime.timedelta(days=number % 3000)).strftime("%Y%m%d")
            self.needles.append((date, where))
            return date
        if vr == "DT":
            date = (datetime.date(1937, 1, 1) +
                    datetime.timedelta(days=number % 3000)).strftime("%Y%m%d")
            value = date + "101112.424242"
            self.needles.append((value, where))
            return value
        if vr == "TM":
            value = f"{(number % 1440) // 60:02d}{number % 60:02d}17.4242"
            self.needles.append((value, where))
            return value
        if vr == "DS":
            value = f"9{number:04d}.5151"
            self.needles.append((value, where))
            return value
        if vr == "IS":
            value = f"8{number:04d}77"
            self.needles.append((value, where))
            return value
        if vr == "AS":
            return "077Y"
        if vr == "UI":
            value = self.uid(number)
            return value
        if vr in ("US", "SS", "UL", "SL", "UV", "SV"):
            return 4242
        if vr in ("FL", "FD"):
            return 42.42
        if vr in ("OF", "OD", "OL", "OV"):
            return b"\x00" * 8
        if vr == "AT":
            return 0x00100010
        return m

    # -- identifying attributes ----------------------------------------------

    def identity(self, ds, where):
        """The patient's identifying attributes and a few markers, into ds:
        what a sequence item of the planted files holds."""
        p = self.cs.patient
        ds.add_new(0x00080050, "SH", self.accession())
        ds.add_new(0x00080080, "LO", self.planted(
            0x00080080, "LO", f"{where}InstitutionName"))
        ds.add_new(0x00080090, "PN", self.cs.doctor.name)
        ds.add_new(0x00100010, "PN", p.name)
        ds.add_new(0x00100020, "LO", self.patient_id())
        ds.add_new(0x00100030, "DA", self.birth())
        ds.add_new(0x00101040, "LO", self.planted(
            0x00101040, "LO", f"{where}PatientAddress"))
        ds.add_new(0x00102180, "SH", self.planted(
            0x00102180, "SH", f"{where}Occupation"))
        ds.add_new(0x00081030, "LO", self.planted(
            0x00081030, "LO", f"{where}StudyDescription"))
        # An unknown standard tag, a private block of an unknown creator.
        m, _ = self.marker(f"{where}(0008,FFF0) unknown tag")
        ds.add_new(0x0008FFF0, "LO", m)
        self.private_unknown(ds, 0x0041, where, depth=1)

    def sequence_item(self, where, depth):
        """An item of identifying attributes; with depth > 1 it holds a
        kept sequence whose item is made the same way."""
        item = Dataset()
        self.identity(item, where)
        if depth > 1:
            tag = KEPT_SEQUENCES[depth % len(KEPT_SEQUENCES)]
            keyword = pydicom.datadict.keyword_for_tag(tag)
            inner = self.sequence_item(f"{where}{keyword}[1]/", depth - 1)
            inner.add_new(0x00080100, "SH", "T-D0050")
            inner.add_new(0x00080102, "SH", "SRT")
            inner.add_new(0x00080104, "LO", "Tissue")
            item.add_new(tag, "SQ", Sequence([inner]))
        return item

    # -- private blocks -------------------------------------------------------

    def private_unknown(self, ds, group, where, depth):
        """A private block of an unknown creator (whose name is a marker):
        text, bytes, and a private sequence nested depth deep."""
        creator, _ = self.marker(f"{where}({group:04X},0010) creator")
        ds.add_new((group << 16) | 0x0010, "LO", creator + " ACME")
        base = (group << 16) | 0x1000
        ds.add_new(base | 0x01, "LO", self.value_for(
            0, "LO", f"{where}({group:04X},1001) private LO"))
        ds.add_new(base | 0x02, "UT", self.value_for(
            0, "UT", f"{where}({group:04X},1002) private UT"))
        ds.add_new(base | 0x03, "OB", self.value_for(
            0, "OB", f"{where}({group:04X},1003) private OB"))
        if depth < 3:
            item = Dataset()
            item.add_new(0x00100010, "PN", self.cs.patient.name)
            item.add_new(0x00100020, "LO", self.patient_id())
            self.private_unknown(item, group, f"{where}({group:04X},1004)"
                                 f"[1]/", depth + 1)
            ds.add_new(base | 0x04, "SQ", Sequence([item]))

    def private_known(self, ds):
        """GEMS_ACQU_01 (safe and unsafe elements) and SIEMENS CSA
        HEADER blocks, and a private element without a creator."""
        ds.add_new(0x00190010, "LO", "GEMS_ACQU_01")
        ds.add_new(0x00191023, "DS", "1.375")  # Table Speed: safe
        if self.mode == "basic":
            ds.add_new(0x0019109E, "LO", self.value_for(
                0, "LO", "(0019,109E) GEMS_ACQU_01 safe LO"))
        else:  # kept by Retain Safe Private: a value that is no one's
            ds.add_new(0x0019109E, "LO", "FSE KEEPOK")
            self.kept.append((0x0019109E, "FSE KEEPOK"))
            self.kept.append((0x00191023, "1.375"))
        ds.add_new(0x00191002, "LO", self.value_for(
            0, "LO", "(0019,1002) GEMS_ACQU_01 unsafe LO"))
        ds.add_new(0x00191003, "PN", self.cs.patient.name)
        ds.add_new(0x00290010, "LO", "SIEMENS CSA HEADER")
        ds.add_new(0x00291010, "OB", self.value_for(
            0, "OB", "(0029,1010) CSA Image Header Info"))
        ds.add_new(0x00291020, "OB", self.value_for(
            0, "OB", "(0029,1020) CSA Series Header Info"))
        ds.add_new(0x00431010, "LO", self.value_for(
            0, "LO", "(0043,1010) private element without a creator"))

    # -- overlays, curves, odd corners -----------------------------------

    def graphics(self, ds):
        """Overlay planes 6000 and 6002 (data and comments), curves 5000
        and 5002."""
        for group in (0x6000, 0x6002):
            g = group << 16
            ds.add_new(g | 0x0010, "US", 16)
            ds.add_new(g | 0x0011, "US", 8)
            ds.add_new(g | 0x0040, "CS", "G")
            ds.add_new(g | 0x0050, "SS", [1, 1])
            ds.add_new(g | 0x0100, "US", 1)
            ds.add_new(g | 0x0102, "US", 0)
            ds.add_new(g | 0x3000, "OW", self.value_for(
                0, "OW", f"({group:04X},3000) OverlayData"))
            ds.add_new(g | 0x4000, "LT", self.value_for(
                0, "LT", f"({group:04X},4000) OverlayComments"))
        for group in (0x5000, 0x5002):
            g = group << 16
            ds.add_new(g | 0x0005, "US", 1)
            ds.add_new(g | 0x0010, "US", 8)
            ds.add_new(g | 0x0020, "CS", "TAC")
            ds.add_new(g | 0x0022, "LO", self.value_for(
                0, "LO", f"({group:04X},0022) CurveDescription"))
            ds.add_new(g | 0x2500, "LO", self.value_for(
                0, "LO", f"({group:04X},2500) CurveLabel"))
            ds.add_new(g | 0x3000, "OB", self.value_for(
                0, "OB", f"({group:04X},3000) CurveData"))

    def reserved_groups(self, ds):
        """Elements of the reserved odd groups 0001-0007 and unknown tags
        of standard groups."""
        for tag, vr in ((0x00010010, "LO"), (0x00030011, "LO"),
                        (0x00031001, "LO"), (0x000500FF, "LO"),
                        (0x00050100, "OB"), (0x00070010, "SH"),
                        (0x00071000, "UT")):
            ds.add_new(tag, vr, self.value_for(
                0, vr, f"({tag >> 16:04X},{tag & 0xFFFF:04X}) reserved "
                       "group"))
        for tag in UNKNOWN_STANDARD[1:]:
            ds.add_new(tag, "LO", self.value_for(
                0, "LO", f"({tag >> 16:04X},{tag & 0xFFFF:04X}) unknown "
                         "standard tag"))

    def un_elements(self, ds):
        """Elements with VR UN (explicit VR files only): known text
        attributes, a known sequence holding implicit VR items, a private
        sequence and an unknown tag holding one."""
        for tag in UN_TEXT:
            keyword = pydicom.datadict.keyword_for_tag(tag)
            value = self.planted(tag, pydicom.datadict.dictionary_VR(tag),
                                 f"{keyword} written as UN")
            add_un(ds, tag, even(f"{value} {self.cs.patient.family}"
                                 .encode(self.cs_codec_first())))
        add_un(ds, UN_SEQUENCE, implicit_items(
            self, "RadiopharmaceuticalInformationSequence (UN, defined "
                  "length)"))
        ds.add_new(0x00450010, "LO", "ACME UN SEQUENCES")
        add_un(ds, 0x00451001, implicit_items(
            self, "(0045,1001) private UN holding a sequence"))
        add_un(ds, UNKNOWN_STANDARD[0] & 0xFFFF0000 | 0xFFF2, implicit_items(
            self, "(0008,FFF2) unknown UN holding a sequence"))

    def cs_codec_first(self):
        """The codec of text in the first (default or single-byte)
        character set of the file: what UN bytes are written in."""
        return "ascii" if self.cs.codec == "iso2022_jp" else self.cs.codec


def add_un(ds, tag, data):
    """Adds an element of VR UN whose value is data, whatever VR the
    dictionary gives its tag (pydicom would parse a known sequence)."""
    elem = DataElement(tag, "OB", data)
    elem.VR = "UN"
    ds.add(elem)


def even(data):
    return data + b" " if len(data) % 2 else data


def implicit_items(planter, where):
    """An item list in Implicit VR Little Endian (PS3.5 7.5), defined
    length items: what the value of a UN sequence is."""
    item = b""
    codec = planter.cs_codec_first()
    for tag, value in (
            (0x00080100, b"T-D0050 "),
            (0x00080102, b"SRT "),
            (0x00100010, even(planter.cs.patient.family.encode(codec))),
            (0x00100020, even(planter.patient_id().encode("ascii"))),
            (0x00100030, planter.birth().encode("ascii")),
            (0x00101040, even(planter.marker(
                f"{where}[1]/PatientAddress")[0].encode("ascii"))),
            (0x00291010, b""),
            (0x00410010, even(planter.marker(
                f"{where}[1]/(0041,0010) creator")[0].encode("ascii"))),
            (0x00411001, even(planter.marker(
                f"{where}[1]/(0041,1001) private")[0].encode("ascii")))):
        item += struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value))
        item += value
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item


def load_table(anon_tables_dir):
    """Table E.1-1: {tag: row} for the rows with one concrete tag."""
    path = os.path.join(anon_tables_dir, TABLE_E11)
    with open(path, encoding="utf-8") as f:
        rows = json.load(f)
    table = {}
    for row in rows:
        m = re.match(r"^\(([0-9A-F]{4}),([0-9A-F]{4})\)$", row["tag"])
        if m:
            table[int(m.group(1) + m.group(2), 16)] = row
    return table


def dcmtk_vrs():
    """DCMTK's dictionary: {tag: VR} for single tags."""
    vrs = {}
    for path in DCMTK_DICTIONARIES:
        with open(path, encoding="latin-1") as f:
            for line in f:
                m = re.match(r"^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)\s+"
                             r"(\w\w)", line)
                if m:
                    vrs[int(m.group(1) + m.group(2), 16)] = m.group(3)
    return vrs


def vr_of(tag, dcmtk):
    """The VR to plant an attribute with: pydicom's, DCMTK's, or LO."""
    try:
        vr = pydicom.datadict.dictionary_VR(tag)
    except KeyError:
        vr = dcmtk.get(tag, "LO")
    return vr.split(" or ")[0]


def options_code(row):
    """The Table E.1-1 code of row under OPTIONS, as the engine combines
    them (each option in force with an entry replaces the basic code; a
    C, once set by an option, stays)."""
    code, set_by_option = row["basicProfile"], False
    for option, column in OPTION_COLUMNS:
        if option not in OPTIONS or column not in row:
            continue
        if set_by_option and code == "C":
            continue
        code, set_by_option = row[column], True
    return code


# Where each standard attribute of the table is planted by the file
# structure itself (not by the table walk).
STRUCTURAL = {0x00080018, 0x0020000D, 0x0020000E, 0x00200052, 0x00020003,
              0x0040A730, 0xFFFCFFFC}


def gen_file(planter, sop_class, syntax, dcmtk, path):
    """Writes one planted instance to path; returns its original UIDs."""
    cs, mode = planter.cs, planter.mode
    ds = Dataset()
    ds.SpecificCharacterSet = cs.value
    ds.SOPClassUID = sop_class
    uids = {"sop": planter.uid(9001), "study": planter.uid(9002),
            "series": planter.uid(9003), "frame": planter.uid(9004)}
    ds.SOPInstanceUID = uids["sop"]
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.InstanceNumber = planter.file_index + 1
    ds.SeriesNumber = 7
    ds.Modality = {CT_IMAGE: "CT", MR_IMAGE: "MR", COMPREHENSIVE_SR: "SR",
                   SECONDARY_CAPTURE: "OT"}[sop_class]
    ds.Manufacturer = "SIREN test"

    # Every row of Table E.1-1 with a concrete tag.
    for tag, row in sorted(planter.table.items()):
        if tag in STRUCTURAL or tag >> 16 == 0x0002 or tag in ds:
            continue
        vr = vr_of(tag, dcmtk)
        keyword = (pydicom.datadict.keyword_for_tag(tag) or
                   f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
        if vr == "SQ":
            item = planter.sequence_item(f"{keyword}[1]/", depth=1)
            ds.add_new(tag, "SQ", Sequence([item]))
            continue
        ds.add_new(tag, vr, planter.planted(tag, vr, keyword))

    # The patient's identity where the standard puts it.
    p = cs.patient
    ds.PatientName = p.name
    ds.PatientID = planter.patient_id()
    ds.PatientBirthDate = planter.birth()
    ds.AccessionNumber = planter.accession()
    ds.OtherPatientNames = [p.name, cs.doctor.name]
    ds.PatientBirthName = p.name
    ds.PatientMotherBirthName = cs.doctor.name
    ds.ReferringPhysicianName = cs.doctor.name
    ds.PerformingPhysicianName = cs.doctor.name
    ds.OperatorsName = cs.doctor.name
    ds.VerifyingObserverSequence = Sequence([Dataset()])
    ds.VerifyingObserverSequence[0].VerifyingObserverName = cs.verifier.name
    ds.VerifyingObserverSequence[0].VerificationDateTime = \
        planter.birth() + "120000"
    ds.VerifyingObserverSequence[0].VerifyingOrganization = \
        planter.value_for(0, "LO", "VerifyingObserverSequence[1]/"
                                   "VerifyingOrganization")
    # Descriptors that name the patient (in the basic files, also a
    # marker each); one spells the family name in capitals.
    for tag, text in ((0x00081030, planter.short_text()),
                      (0x0008103E, f"{p.family.upper()} "
                                   f"{planter.accession()}"),
                      (0x00204000, planter.long_text()),
                      (0x00181030, f"{p.given} {p.family}")):
        keyword = pydicom.datadict.keyword_for_tag(tag)
        vr = pydicom.datadict.dictionary_VR(tag)
        if mode == "basic":
            m, _ = planter.marker(keyword)
            text = f"{m} {text}"
        ds.add_new(tag, vr, text)

    # Depth 1-3 in sequences the profile keeps and walks.
    for depth, tag in zip((1, 2, 3), KEPT_SEQUENCES):
        keyword = pydicom.datadict.keyword_for_tag(tag)
        item = planter.sequence_item(f"{keyword}[1]/", depth)
        item.add_new(0x00080100, "SH", "T-D0050")
        item.add_new(0x00080102, "SH", "SRT")
        item.add_new(0x00080104, "LO", "Tissue")
        ds.add_new(tag, "SQ", Sequence([item]))
    # A referenced image whose UIDs are remapped and whose item is walked.
    ref = Dataset()
    ref.ReferencedSOPClassUID = sop_class
    ref.ReferencedSOPInstanceUID = planter.uid(9005)
    planter.identity(ref, "ReferencedImageSequence[1]/")
    ds.ReferencedImageSequence = Sequence([ref])

    planter.private_known(ds)
    planter.private_unknown(ds, 0x0041, "", depth=1)
    if "many-values" in planter.file_name:
        for block in range(MANY_VALUES_BLOCKS):
            slot = 0x10 + block
            ds.add_new(0x00090000 | slot, "LO", f"ACME NOTES {block}")
            for element in range(256):
                ds.add_new(0x00090000 | slot << 8 | element, "LO",
                           planter.marker(f"(0009,{slot:02X}{element:02X}) "
                                          "private note")[0])
    planter.graphics(ds)
    planter.reserved_groups(ds)
    explicit = syntax in (EXPLICIT_LE, DEFLATED_LE)
    if explicit:
        planter.un_elements(ds)
    if sop_class == COMPREHENSIVE_SR:
        sr_content(planter, ds)
    else:
        content = Dataset()
        content.ValueType = "TEXT"
        content.TextValue = planter.long_text() if mode == "options" else \
            planter.value_for(0, "UT", "ContentSequence[1]/TextValue")
        ds.ContentSequence = Sequence([content])
        image(ds, sop_class)
    ds.add_new(0xFFFCFFFC, "OB", planter.value_for(
        0, "OB", "DataSetTrailingPadding"))

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uids["sop"]
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = planter.uid(9006)
    meta.ImplementationVersionName = "SIRENTEST"
    meta.SourceApplicationEntityTitle = planter.marker(
        "file meta SourceApplicationEntityTitle")[0]
    meta.PrivateInformationCreatorUID = planter.uid(9007)
    meta.PrivateInformation = planter.value_for(
        0, "OB", "file meta PrivateInformation")
    ds.file_meta = meta
    ds.is_little_endian = syntax != EXPLICIT_BE
    ds.is_implicit_VR = syntax == IMPLICIT_LE
    ds.preamble = b"\x00" * 128
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the odd corners are on purpose
        ds.save_as(path, write_like_original=False)
    if syntax == EXPLICIT_LE:
        patch_explicit_le(planter, path)
    return uids


def image(ds, sop_class):
    """A small native image: zeros, so that no byte of it is a marker."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 16
    ds.Columns = 16
    bits = 8 if sop_class == SECONDARY_CAPTURE else 16
    ds.BitsAllocated = bits
    ds.BitsStored = bits if bits == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelData = b"\x00" * (16 * 16 * bits // 8)
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"


def concept(code, scheme, meaning):
    item = Dataset()
    item.CodeValue = code
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return Sequence([item])


def sr_content(planter, ds):
    """An SR content tree: TEXT, PNAME, DATE, DATETIME and UIDREF items
    with concepts Table E.3.4-1 lists and does not list, nested three
    containers deep."""
    cs, basic = planter.cs, planter.mode == "basic"
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = concept("18748-4", "LN", "Diagnostic "
                                         "Imaging Report")
    ds.ContinuityOfContent = "SEPARATE"
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "VERIFIED"

    def items(depth, where):
        out = []

        def add(value_type, code, scheme, meaning, **values):
            item = Dataset()
            item.RelationshipType = "CONTAINS"
            item.ValueType = value_type
            item.ConceptNameCodeSequence = concept(code, scheme, meaning)
            for keyword, value in values.items():
                setattr(item, keyword, value)
            out.append(item)

        def text(label):
            if basic:
                return planter.value_for(0, "UT", f"{where}{label}")
            return planter.long_text()

        add("TEXT", "121106", "DCM", "Comment",
            TextValue=text(f"TEXT Comment (depth {depth})"))
        add("TEXT", "99PHI1", "99SIREN", "Note",
            TextValue=text(f"TEXT unlisted concept (depth {depth})"))
        add("PNAME", "121029", "DCM", "Subject Name",
            PersonName=cs.patient.name)
        add("PNAME", "99PHI2", "99SIREN", "Nurse",
            PersonName=planter.value_for(0, "PN", f"{where}PNAME unlisted "
                                                  f"(depth {depth})"))
        add("DATE", "121031", "DCM", "Subject Birth Date",
            Date=planter.birth())
        add("DATE", "99PHI3", "99SIREN", "Visit Date",
            Date=planter.value_for(0, "DA", f"{where}DATE unlisted "
                                            f"(depth {depth})"))
        add("DATETIME", "99PHI4", "99SIREN", "Visit",
            DateTime=planter.value_for(0, "DT", f"{where}DATETIME unlisted "
                                                f"(depth {depth})"))
        add("UIDREF", "99PHI5", "99SIREN", "Reference",
            UID=planter.uid(9100 + depth))
        if depth < 3:
            container = Dataset()
            container.RelationshipType = "CONTAINS"
            container.ValueType = "CONTAINER"
            container.ConceptNameCodeSequence = concept("121070", "DCM",
                                                        "Findings")
            container.ContinuityOfContent = "SEPARATE"
            container.ContentSequence = Sequence(items(
                depth + 1, f"{where}ContentSequence[{len(out) + 1}]/"))
            out.append(container)
        return out

    ds.ContentSequence = Sequence(items(1, "ContentSequence[*]/"))


def patch_explicit_le(planter, path):
    """Adds, in an Explicit VR Little Endian file, what pydicom cannot
    write: a UN element of undefined length holding implicit VR items
    (a known sequence's tag) and command group elements (0000,eeee) at
    the start of the dataset."""
    with open(path, "rb") as f:
        data = f.read()
    meta_length = struct.unpack_from("<I", data, 132 + 8)[0]
    start = 132 + 12 + meta_length
    m_error, _ = planter.marker("(0000,0902) ErrorComment in the dataset")
    command = b""
    for tag, vr, value in (
            (0x00000902, b"LO", even(m_error.encode("ascii"))),
            (0x00001000, b"UI", even(planter.uid(9200).encode("ascii"))
             .replace(b" ", b"\x00"))):
        command += struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr + \
            struct.pack("<H", len(value)) + value
    items = implicit_items(planter, "ViewCodeSequence (UN, undefined "
                                    "length)")
    undefined = (struct.pack("<HH", UN_SEQUENCE_UNDEFINED >> 16,
                             UN_SEQUENCE_UNDEFINED & 0xFFFF) +
                 b"UN\x00\x00" + struct.pack("<I", 0xFFFFFFFF) + items +
                 struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    # Insert the UN sequence in tag order: before the first element with
    # a greater tag at the top level (walk the explicit VR dataset).
    pos = start
    while pos < len(data):
        group, element = struct.unpack_from("<HH", data, pos)
        tag = group << 16 | element
        if tag > UN_SEQUENCE_UNDEFINED:
            break
        vr = data[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR",
                  b"OD", b"OL", b"OV", b"SV", b"UV"):
            length = struct.unpack_from("<I", data, pos + 8)[0]
            header = 12
        else:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            header = 8
        if length == 0xFFFFFFFF:
            raise RuntimeError("patch_explicit_le: undefined length before "
                               "the insertion point")
        pos += header + length
    data = data[:start] + command + data[start:pos] + undefined + data[pos:]
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------
# Looking for leaks
# ---------------------------------------------------------------------------

def inflated(path):
    """The bytes of the file at path; a deflated data set inflated, so
    that what it holds can be searched."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[128:132] != b"DICM" or raw[132:136] != b"\x02\x00\x00\x00":
        return raw
    meta_end = 132 + 12 + struct.unpack_from("<I", raw, 140)[0]
    if DEFLATED_LE.encode() not in raw[132:meta_end]:
        return raw
    return raw[:meta_end] + zlib.decompress(raw[meta_end:], -zlib.MAX_WBITS)


def case_variants(text):
    return {text, text.upper(), text.lower(), text.title(), text.casefold()}


def encoded_forms(text, codec):
    """The byte strings text may leave in: UTF-8 and the file's character
    set (for ISO 2022 IR 87 also the bare JIS X 0208 bytes), each case
    variant, lowered (ASCII) for a case-insensitive search."""
    forms = set()
    for variant in case_variants(text):
        for c in ("utf_8", codec):
            try:
                b = variant.encode(c)
            except UnicodeEncodeError:
                continue
            forms.add(b.lower())
            if c == "iso2022_jp":
                bare = re.sub(rb"\x1b[$(][@AB-J]", b"", b)
                if bare:
                    forms.add(bare.lower())
    return forms


def element_path(path, elem):
    keyword = elem.keyword or ""
    return f"{path}{keyword}({elem.tag.group:04X},{elem.tag.element:04X})"


def find_in_dataset(ds, needles, path=""):
    """Paths of the elements of ds (at any depth) whose value contains one
    of needles (lowered byte strings)."""
    found = []
    for tag in list(ds.keys()):
        try:
            elem = ds[tag]
        except Exception:  # a value pydicom cannot convert: its bytes
            elem = ds.get_item(tag)
            if any(n in bytes(elem.value or b"").lower() for n in needles):
                found.append(f"{path}({tag.group:04X},{tag.element:04X})")
            continue
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                found += find_in_dataset(
                    item, needles, f"{element_path(path, elem)}[{i + 1}]/")
            continue
        value = elem.value
        if isinstance(value, (bytes, bytearray)):
            data = bytes(value).lower()
        else:
            data = str(value).encode("utf_8", "replace").lower()
        if any(n in data for n in needles):
            found.append(element_path(path, elem))
    return found


def read_elements(ds, path, problems):
    """Converts every element of ds (values decoded), recording each
    warning or error with the element's path."""
    for tag in list(ds.keys()):
        where = f"{path}({tag.group:04X},{tag.element:04X})"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                elem = ds[tag]
                where = element_path(path, elem)
                if elem.VR == "PN":
                    str(elem.value)
            except Exception as e:  # pydicom raises many kinds
                problems.append(f"pydicom: {where}: {type(e).__name__}: {e}")
                continue
        for w in caught:
            problems.append(f"pydicom warns: {where}: {w.message}")
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                read_elements(item, f"{where}[{i + 1}]/", problems)


def read_output(path):
    """pydicom's reading of path, every element converted and the pixel
    data decoded; None and the problems if that fails or warns."""
    problems = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path)
        except Exception as e:  # pydicom raises many kinds
            return None, [f"pydicom: {type(e).__name__}: {e}"]
    for w in caught:
        problems.append(f"pydicom warns while reading: {w.message}")
    read_elements(ds.file_meta, "meta/", problems)
    read_elements(ds, "", problems)
    if "PixelData" in ds:
        try:
            ds.pixel_array
        except Exception as e:
            problems.append(f"pydicom: pixel data: {type(e).__name__}: {e}")
    return ds, problems


def dcmdump_problems(path):
    """DCMTK's complaints about path (errors and warnings)."""
    r = subprocess.run(["dcmdump", path],
                       capture_output=True, text=True, errors="replace",
                       timeout=SUBPROCESS_TIMEOUT_S)
    problems = [line for line in (r.stderr + r.stdout).splitlines()
                if re.match(r"^[EWF]: ", line)]
    if r.returncode != 0:
        problems.insert(0, f"dcmdump exit status {r.returncode}")
    return problems


def check_output(checks, policy, planter, original_uids, in_path, out_path):
    """Checks 2-4 of the docstring for one output."""
    name = planter.file_name
    raw = inflated(out_path)
    hay = raw.lower()
    ds, problems = read_output(out_path)
    for problem in problems:
        checks.fail(f"{name}: {policy}: {problem}")
    for problem in dcmdump_problems(out_path):
        checks.fail(f"{name}: {policy}: dcmdump: {problem}")
    leaks = 0

    def report(needle_text, forms, planted_at):
        nonlocal leaks
        leaks += 1
        where = (find_in_dataset(ds.file_meta, forms, "meta/") +
                 find_in_dataset(ds, forms)) if ds is not None else []
        if not where:
            offset = min(hay.find(f) for f in forms if f in hay)
            where = [f"byte offset {offset}"]
        checks.fail(f"LEAK {name}: policy {policy}: {needle_text!r} "
                    f"(planted at {planted_at}) found in the output at "
                    f"{', '.join(where)}")

    # Markers: each names its place.
    for m in sorted(set(re.findall(rb"phimark7q(\d{6})", hay))):
        number = int(m)
        marker = f"{MARKER}{number:06d}"
        report(marker, {marker.lower().encode()},
               planter.places.get(number, "another file"))
    if b"phimark7q" in hay and not re.search(rb"phimark7q\d{6}", hay):
        report(MARKER, {MARKER.lower().encode()}, "a marker, cut short")
    # Markers in 16-bit words whose bytes were swapped (OW from big
    # endian), at either alignment.
    for shift in (0, 1):
        data = raw[shift:]
        data = data[:len(data) // 2 * 2]
        swapped = bytearray(data)
        swapped[0::2], swapped[1::2] = data[1::2], data[0::2]
        if b"phimark7q" in bytes(swapped).lower():
            report(MARKER + " (byte-swapped)", {b"hpmiark"},
                   "an OB/OW/UN value")
    # Names, IDs, dates and the planted non-text values.
    cs = planter.cs
    people = ((cs.patient, "the patient's name"),
              (cs.doctor, "a physician's name"),
              (cs.verifier, "the verifying observer's name"))
    needles = []
    for person, what in people:
        for word in person.words:
            needles.append((word, what))
    b = planter.birth()
    needles += [(planter.patient_id(), "PatientID"),
                (planter.accession(), "AccessionNumber"),
                (b, "PatientBirthDate"), (planter.birth_iso(), "birth date"),
                (f"{b[6:]}.{b[4:6]}.{b[:4]}", "birth date"),
                (f"{b[4:6]}/{b[6:]}/{b[:4]}", "birth date"),
                (UID_ROOT, "a planted UID")]
    needles += planter.needles
    for text, planted_at in needles:
        forms = encoded_forms(text, cs.codec)
        if any(f in hay for f in forms):
            report(text, forms, planted_at)
    checks.expect(leaks == 0, f"{name}: {policy}: {leaks} leak(s)")
    if ds is None:
        return
    checks.expect(ds.get("PatientIdentityRemoved") == "YES",
                  f"{name}: {policy}: PatientIdentityRemoved is "
                  f"{ds.get('PatientIdentityRemoved')!r}, not YES")
    for key, keyword in (("sop", "SOPInstanceUID"),
                         ("study", "StudyInstanceUID"),
                         ("series", "SeriesInstanceUID")):
        value = str(ds.get(keyword, ""))
        checks.expect(value != original_uids[key] and UID_2_25.match(value)
                      and len(value) <= 64 and
                      int(value[5:] or 0) < 2 ** 128,
                      f"{name}: {policy}: {keyword} {value!r} is not a new "
                      "2.25 UID")
    checks.expect(os.path.basename(out_path) == f"{ds.SOPInstanceUID}.dcm",
                  f"{name}: {policy}: output named "
                  f"{os.path.basename(out_path)}, not by its SOP Instance UID")
    if policy == "options":
        for tag, value in planter.kept:
            elem = ds.get(Tag(tag))
            got = elem.value if elem is not None else None
            checks.expect(got is not None and str(got) == str(value),
                          f"{name}: {policy}: ({tag >> 16:04X},"
                          f"{tag & 0xFFFF:04X}) should be kept as {value!r} "
                          f"by the options, is {got!r}")


# ---------------------------------------------------------------------------
# The parts of the test
# ---------------------------------------------------------------------------

def make_policies(args, work):
    """The key and both policies; returns {name: path}."""
    key = os.path.join(work, "pseudonym.key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, os.urandom(32).hex().encode() + b"\n")
    os.close(fd)
    os.environ["SIREN_PSEUDONYM_KEY"] = key
    basic = os.path.join(work, "basic.policy")
    shutil.copy(os.path.join(args.policies, "basic.policy"), basic)
    with open(basic, encoding="utf-8") as f:
        text = f.read()
    options = os.path.join(work, "options.policy")
    lines = "".join(f"  option {o}\n" for o in OPTIONS)
    text = text.replace('policy "basic" version 1',
                        'policy "phi-options" version 1')
    text = text.replace("  profile basic\n", "  profile basic\n" + lines)
    with open(options, "w", encoding="utf-8") as f:
        f.write(text)
    return {"basic": basic, "options": options}


def run_apply(siren, policy, out_dir, inputs):
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    return subprocess.run([siren, "apply", "--policy", policy, "-o", out_dir,
                           "-q"] + inputs, capture_output=True, text=True,
                          errors="replace", timeout=SUBPROCESS_TIMEOUT_S)


def planted_files(checks, args, policies, table, dcmtk, work):
    for mode in ("basic", "options"):
        checks.part = f"planted/{mode}"
        in_dir = os.path.join(work, f"in-{mode}")
        os.makedirs(in_dir)
        planters, uids, paths = {}, {}, []
        for index, (name, sop_class, syntax, charset) in enumerate(FILES):
            planter = Planter(name, CHARSETS[charset], mode, table, index)
            path = os.path.join(in_dir, f"{name}.dcm")
            uids[index + 1] = gen_file(planter, sop_class, syntax, dcmtk,
                                       path)
            planters[index + 1] = planter
            paths.append(path)
        places = sum(len(p.places) + len(p.needles)
                     for p in planters.values())
        print(f"     [{checks.part}] {len(paths)} files, {places} planted "
              "values", flush=True)
        out_dir = os.path.join(work, f"out-{mode}")
        r = run_apply(args.siren, policies[mode], out_dir, paths)
        if not checks.expect(r.returncode == 0,
                             f"siren apply exit {r.returncode}: "
                             f"{r.stderr.strip()} {r.stdout.strip()}"):
            continue
        outputs = sorted(glob.glob(os.path.join(out_dir, "*.dcm")))
        checks.expect(len(outputs) == len(paths),
                      f"{len(outputs)} outputs for {len(paths)} inputs: "
                      f"{r.stdout.strip()}")
        failures = len(checks.failures)
        seen = set()
        for out in outputs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                number = int(pydicom.dcmread(out, stop_before_pixels=True)
                             .get("InstanceNumber", 0))
            if number not in planters:
                checks.fail(f"{out}: no planted file has InstanceNumber "
                            f"{number}")
                continue
            seen.add(number)
            check_output(checks, mode, planters[number], uids[number],
                         paths[number - 1], out)
        if len(checks.failures) == failures:
            checks.ok(f"{len(seen)} outputs: no planted value survives, "
                      "pydicom and dcmdump read them, identity removed, "
                      "new UIDs")


def corpus(checks, args, policies, work):
    """The pydicom corpus under basic.policy."""
    checks.part = "corpus/basic"
    files = sorted(glob.glob(os.path.join(args.data, "test_files", "*.dcm")) +
                   glob.glob(os.path.join(args.data, "charset_files",
                                          "*.dcm")))
    read, skipped = 0, {}
    failures = len(checks.failures)
    for path in files:
        name = os.path.relpath(path, args.data)
        out_dir = os.path.join(work, "corpus", name.replace("/", "_"))
        r = run_apply(args.siren, policies["basic"], out_dir, [path])
        outputs = glob.glob(os.path.join(out_dir, "*.dcm"))
        if r.returncode != 0 or len(outputs) != 1:
            # Not read or not writable (no SOP Class UID): refused, which
            # is safe; whether siren should read it is corpus_roundtrip's.
            why = r.stderr.strip().splitlines()
            skipped[name] = why[0].split(": ", 1)[-1] if why else "no output"
            continue
        read += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            original = pydicom.dcmread(path, force=True,
                                       stop_before_pixels=True)
        hay = outside_pixel_data(outputs[0], inflated(outputs[0])).lower()
        for keyword in ("PatientName", "PatientID", "StudyInstanceUID"):
            if keyword not in original:
                continue
            # The value as the file holds it, before pydicom decodes it.
            raw_item = original.get_item(keyword)
            raw_bytes = raw_item.value if isinstance(
                raw_item.value, bytes) else b""
            text = str(original[keyword].value or "").strip()
            if len(text) < 2 or text.upper() in ("ANONYMIZED", "ANONYMOUS"):
                continue  # what the engine's dummies say, or nothing
            forms = {text.encode("utf_8", "replace").lower(),
                     raw_bytes.rstrip(b" \x00").lower()}
            if keyword == "StudyInstanceUID" or text.isdigit():
                # A UID, or a numeric ID such as '99000': found only as a
                # number of its own, not inside the digits of a new UID
                # (2.25.8833...8809900002..., seen once in CI).
                hit = re.search(rb"(?<![0-9.])" + re.escape(text.encode()) +
                                rb"(?![0-9.])", hay)
            else:
                hit = any(f and f in hay for f in forms)
            checks.expect(not hit, f"LEAK {name}: policy basic: original "
                                   f"{keyword} {text!r} is in the output")
    if len(checks.failures) == failures:
        checks.ok(f"{read} corpus files de-identified: no original "
                  "PatientName, PatientID or StudyInstanceUID in any output")
    for name, why in sorted(skipped.items()):
        print(f"     [{checks.part}] {name}: not de-identified ({why})",
              flush=True)


def outside_pixel_data(path, raw):
    """raw without the pixel data's value bytes (native or fragments), so
    that short values are not found in image data by chance."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
    if "PixelData" not in ds:
        return raw
    data = ds.PixelData
    parts = [data]
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        try:
            parts = list(pydicom.encaps.generate_pixel_data_fragment(
                pydicom.filebase.DicomBytesIO(data)))
        except Exception:
            parts = [data]
    for part in parts:
        if len(part) >= 16:
            raw = raw.replace(part, b"")
    return raw


def parse_arguments():
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.path.dirname(os.path.dirname(here))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True, help="the siren program")
    parser.add_argument("--policies",
                        default=os.path.join(source, "examples", "policies"),
                        help="the folder of basic.policy")
    parser.add_argument("--anon-tables",
                        default=os.path.join(source, "anon", "tables"),
                        help="the folder of the PS3.15 tables")
    parser.add_argument("--data",
                        default="/usr/lib/python3/dist-packages/pydicom/data",
                        help="pydicom's data folder")
    parser.add_argument("--work", required=True, help="a scratch folder")
    return parser.parse_args()


def main():
    args = parse_arguments()
    if not os.access(args.siren, os.X_OK):
        print(f"anon_phi: {args.siren} is not an executable program",
              file=sys.stderr)
        return 2
    if shutil.which("dcmdump") is None:
        print("anon_phi: dcmdump (DCMTK) is not installed", file=sys.stderr)
        return 2
    if not os.path.isdir(os.path.join(args.data, "test_files")):
        print(f"anon_phi: no test_files in {args.data} (is python3-pydicom "
              "installed?)", file=sys.stderr)
        return 2
    args.work = os.path.abspath(args.work)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    table = load_table(args.anon_tables)
    for tag in KEPT_SEQUENCES + (UN_SEQUENCE, UN_SEQUENCE_UNDEFINED):
        assert tag not in table, f"{tag:08X} is in Table E.1-1"
    for tag in UNKNOWN_STANDARD:
        assert tag not in pydicom.datadict.DicomDictionary, f"{tag:08X}"
    dcmtk = dcmtk_vrs()
    policies = make_policies(args, args.work)
    checks = Checks()
    planted_files(checks, args, policies, table, dcmtk, args.work)
    corpus(checks, args, policies, args.work)
    print(f"anon_phi: {checks.passed} checks passed, {len(checks.failures)} "
          "failed")
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
