#!/usr/bin/python3
"""corpus_roundtrip.py - the pydicom test corpus, read and written back.

For every DICOM file of pydicom's test corpus (Debian python3-pydicom:
test_files/, including dicomdirtests/ recursively, and charset_files/):

  a. `siren dump -q FILE` and `dcm_rewrite FILE OUT` must both read it, or
     both reject it cleanly: exit status 1 and a `FILE: offset N: message`
     line, no signal, no sanitizer report. A rejected file must be listed
     in EXPECTED_REJECTS with the reason; a listed file that we now accept
     fails the test too, so that the table stays true.
  b. pydicom's reading of OUT (Explicit VR Little Endian, or the original
     syntax if the pixel data is encapsulated) must agree with its reading
     of FILE element by element: the same tags, VRs, values (decoded and
     as bytes), sequence structure, pixel data bytes (native: modulo the
     byte swap of big endian input; encapsulated: every item including the
     Basic Offset Table) and pixel_array.
  c. DCMTK's reading (dcmdump) of OUT must agree with its reading of FILE,
     row by row, and dcmdump must not warn about OUT where it did not
     warn about FILE.
  d. FILE written as Implicit VR Little Endian and as Deflated Explicit VR
     Little Endian must read back (pydicom) with the same values; a file
     with encapsulated pixel data or a DICOMDIR must instead be refused
     cleanly (exit 1, a message that says "transcoding" or "DICOMDIR", no
     OUT left behind).

What "agree" means is spelled out by the comparison functions below. A few
differences are intended (our reader and writer do them on purpose); each
is handled where it arises, named by one of the INTENDED_* constants, and
counted in the summary:

  (1) an explicit VR UN element whose tag the dictionary knows is read with
      the dictionary's VR (and parsed as a sequence if that VR is SQ);
  (2) an undefined length UN element is read as a sequence (CP-246);
  (3) the writer writes sequences and items with undefined length, drops
      group length elements and file meta elements found in the dataset,
      and writes a fresh file meta;
  (4) of a duplicated element, the second is ignored (as DCMTK does;
      pydicom keeps the last).

Three more are not our choices but facts of the encodings, also counted:
where a file is implicit VR its VRs come from a dictionary, and pydicom's
may differ from ours (DCMTK's), so such values are compared as bytes; a
DICOMDIR's offsets are byte positions, which change when lengths do, so
they are compared by the directory record they point to; and for 32-bit
pixels in big endian OW, pydicom's pixel_array disagrees with PS3.5 (and
DCMTK and us) on how the bytes were swapped.

Usage:
  /usr/bin/python3 corpus_roundtrip.py --rewrite build/tests/dcm_rewrite \\
      --siren build/gateway/siren \\
      --data /usr/lib/python3/dist-packages/pydicom/data --work /tmp/corpus

Exit status: 0 everything agrees, 1 a mismatch (each one printed), 2 the
test itself could not run (missing tools or corpus).

Run with Debian's /usr/bin/python3, which has python3-pydicom and numpy.
"""

import argparse
import collections
import concurrent.futures
import io
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import traceback
import warnings
import zlib

import pydicom
import pydicom.config
import pydicom.datadict
import pydicom.filereader
import pydicom.values
from pydicom.dataelem import RawDataElement

# Files of the corpus that our reader rejects on purpose, relative to the
# data folder, with the reason. Each must be rejected with a clean error.
EXPECTED_REJECTS = {
    "test_files/MR_truncated.dcm":
        "truncated by design: Pixel Data claims 8192 bytes, the file ends "
        "8130 bytes later (DCMTK rejects it too; pydicom reads it short)",
    "test_files/rtplan_truncated.dcm":
        "truncated by design: Beam Sequence (300A,00B0) claims 976 bytes, "
        "711 remain (DCMTK rejects it too; pydicom reads what is there)",
    "test_files/no_meta.dcm":
        "damaged: a stray 0x20 byte precedes the bare dataset, so the first "
        "tag reads as (0820,0500) with a 173 MB length (DCMTK rejects it "
        "too; pydicom reads one bogus UN element)",
    "test_files/SC_rgb_jpeg.dcm":
        "mislabelled: the meta says JPEG Baseline (explicit VR) but the "
        "dataset is implicit VR from (0008,0008) on (DCMTK rejects it too; "
        "pydicom guesses implicit VR and reads it)",
    "test_files/dicomdirtests/DICOMDIR-nooffset":
        "inconsistent lengths: the last directory record claims 248 bytes "
        "but the file ends 224 bytes into it, which is indistinguishable "
        "from a truncated file (DCMTK and pydicom read it, stopping at the "
        "end of the file)",
}

# Names of the intended differences, as counted in the summary.
INTENDED_UN_KNOWN_VR = "(1) explicit UN read with the dictionary's VR"
INTENDED_UN_SEQUENCE = "(2) undefined length UN read as a sequence"
INTENDED_LENGTHS = "(3) sequence/item lengths written as undefined"
INTENDED_GROUP_LENGTH = "(3) group length element dropped"
INTENDED_META_IN_DATASET = "(3) file meta element inside the dataset dropped"
INTENDED_DUPLICATE = "(4) duplicated element: the second ignored"
INTENDED_IMPLICIT_VR = ("implicit VR: the VR is not in the file, the two "
                        "readers' dictionaries differ (bytes compared)")
INTENDED_DICOMDIR_OFFSET = ("DICOMDIR offset changed, pointing to the same "
                            "record")
INTENDED_BIG_ENDIAN_OW32 = ("big endian OW with 32-bit pixels: we and DCMTK "
                            "swap 16-bit words as PS3.5 defines OW, pydicom's "
                            "pixel_array swaps 32-bit values")

# The folders of pydicom's data folder that hold the corpus.
CORPUS_FOLDERS = ("test_files", "charset_files")
# Names of files and folders in the corpus that are not DICOM.
NOT_DICOM_SUFFIXES = (".txt", ".json", ".gz", ".dump", ".py", ".pyc")
NOT_DICOM_NAMES = ("README", "README.txt", "FileInfo.txt", "__pycache__")

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

PIXEL_DATA = 0x7FE00010
DIRECTORY_RECORD_SEQUENCE = 0x00041220
# DICOMDIR elements whose value is the byte offset of a directory record.
DICOMDIR_OFFSET_TAGS = (0x00041200, 0x00041202, 0x00041400, 0x00041420)

# How many bytes one number of each binary VR has: the unit in which big
# endian data is byte swapped. Other VRs are strings or single bytes.
VR_UNIT_BYTES = {
    "US": 2, "SS": 2, "OW": 2, "AT": 2,
    "UL": 4, "SL": 4, "FL": 4, "OF": 4, "OL": 4,
    "FD": 8, "SV": 8, "UV": 8, "OD": 8, "OV": 8,
}
BYTES_VRS = ("OB", "OW", "OF", "OD", "OL", "OV", "UN")
STRING_VRS = ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN",
              "SH", "ST", "TM", "UC", "UI", "UR", "UT")

SUBPROCESS_TIMEOUT_S = 120
WORKERS = 8
MISMATCHES_SHOWN_PER_FILE = 12


# ---------------------------------------------------------------------------
# Findings: what the test found, and the report at the end
# ---------------------------------------------------------------------------

class Findings:
    """Collects mismatches and intended differences for the summary."""

    def __init__(self):
        self.mismatches = []  # (file, check, where, what)
        self.intended = collections.Counter()  # kind -> occurrences
        self.intended_files = collections.defaultdict(set)  # kind -> files
        self.files = 0
        self.round_tripped = 0
        self.rejected_as_expected = 0

    def mismatch(self, name, check, where, what):
        """Records that `check` (e.g. "pydicom") found a difference in file
        `name` at `where` (a path to an element, or "" for the file)."""
        self.mismatches.append((name, check, where, what))

    def intend(self, kind, name, count=1):
        """Records `count` occurrences of an intended difference."""
        self.intended[kind] += count
        self.intended_files[kind].add(name)

    def add(self, other):
        """Adds the findings of another Findings (one file's) to these."""
        self.mismatches += other.mismatches
        self.intended += other.intended
        for kind, names in other.intended_files.items():
            self.intended_files[kind] |= names
        self.files += other.files
        self.round_tripped += other.round_tripped
        self.rejected_as_expected += other.rejected_as_expected

    def print_report(self):
        """Prints every mismatch (a few per file and check) and the
        summary."""
        shown = collections.Counter()
        for name, check, where, what in self.mismatches:
            shown[(name, check)] += 1
            count = shown[(name, check)]
            if count <= MISMATCHES_SHOWN_PER_FILE:
                place = f" {where}:" if where else ""
                print(f"MISMATCH {name} [{check}]{place} {what}")
        totals = collections.Counter((n, c) for n, c, _, _ in self.mismatches)
        for (name, check), total in sorted(totals.items()):
            if total > MISMATCHES_SHOWN_PER_FILE:
                print(f"MISMATCH {name} [{check}] ... and "
                      f"{total - MISMATCHES_SHOWN_PER_FILE} more")
        print()
        print("Intended differences seen (occurrences over all checks):")
        for kind, count in sorted(self.intended.items()):
            files = len(self.intended_files[kind])
            print(f"  {kind}: {count} in {files} file(s)")
        print()
        print(f"corpus_roundtrip: {self.files} files, "
              f"{self.round_tripped} round-tripped, "
              f"{self.rejected_as_expected} expected rejects, "
              f"{sum(self.intended.values())} intended differences, "
              f"{len(self.mismatches)} mismatches")


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

def is_dicom_candidate(file_name):
    """True for corpus files that are (meant to be) DICOM: everything but
    the notes, JSON, gzip and text dumps next to them."""
    if file_name in NOT_DICOM_NAMES:
        return False
    return not file_name.endswith(NOT_DICOM_SUFFIXES)


def corpus_files(data_dir):
    """Paths (relative to data_dir, sorted) of the DICOM files in
    test_files/ (recursively) and charset_files/."""
    found = []
    for top in CORPUS_FOLDERS:
        top_dir = os.path.join(data_dir, top)
        for folder, subfolders, file_names in os.walk(top_dir):
            subfolders[:] = [s for s in subfolders if s != "__pycache__"]
            for file_name in file_names:
                if is_dicom_candidate(file_name):
                    path = os.path.join(folder, file_name)
                    found.append(os.path.relpath(path, data_dir))
    return sorted(found)


# ---------------------------------------------------------------------------
# Running our tools
# ---------------------------------------------------------------------------

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer",
                     "UndefinedBehaviorSanitizer", "runtime error:")


def run(command):
    """Runs command (a list) and returns (exit status, stdout text, stderr
    text); the status is negative for a signal, None for a timeout."""
    try:
        done = subprocess.run(command, capture_output=True,
                              timeout=SUBPROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, "", ""
    return (done.returncode, done.stdout.decode("latin-1"),
            done.stderr.decode("latin-1"))


def crash_description(status, stderr):
    """What went wrong if a run of our tools did not end by itself with
    status 0, 1 or 2 and without a sanitizer report; None if it did."""
    if status is None:
        return f"did not finish within {SUBPROCESS_TIMEOUT_S} s"
    if status < 0:
        return f"killed by signal {-status}"
    for marker in SANITIZER_MARKERS:
        if marker in stderr:
            lines = [line for line in stderr.splitlines() if marker in line]
            return f"sanitizer report: {lines[0].strip()}"
    if status not in (0, 1, 2):
        return f"exit status {status}: {stderr.strip()[:200]}"
    return None


def has_clean_error(path, stderr):
    """True if stderr holds the `FILE: offset N: message` line that the
    tools print for an unreadable file."""
    pattern = re.compile(r"^" + re.escape(path) + r": offset \d+: \S.*$",
                         re.MULTILINE)
    return pattern.search(stderr) is not None


def read_with_our_tools(name, path, out_path, args, findings):
    """Step a: `siren dump -q` and `dcm_rewrite` on one file. Returns True
    if the file was read and written to out_path, False otherwise (whether
    rejected as expected or not; mismatches are recorded)."""
    dump_status, _, dump_err = run([args.siren, "dump", "-q", path])
    rewrite_status, _, rewrite_err = run([args.rewrite, path, out_path])
    crashed = False
    for tool, status, stderr in (("siren dump", dump_status, dump_err),
                                 ("dcm_rewrite", rewrite_status,
                                  rewrite_err)):
        crash = crash_description(status, stderr)
        if crash:
            findings.mismatch(name, tool, "", crash)
            crashed = True
    if crashed:
        return False
    if dump_status != rewrite_status:
        messages = (dump_err + rewrite_err).strip()
        findings.mismatch(name, "read", "",
                          f"siren dump exits {dump_status}, dcm_rewrite "
                          f"{rewrite_status}: {messages}")
        return False
    if dump_status == 0:
        if name in EXPECTED_REJECTS:
            findings.mismatch(name, "read", "",
                              "listed in EXPECTED_REJECTS but read without "
                              "error: remove it from the table")
        return True
    message = dump_err.strip().splitlines()[-1] if dump_err.strip() else ""
    for tool, stderr in (("siren dump", dump_err),
                         ("dcm_rewrite", rewrite_err)):
        if not has_clean_error(path, stderr):
            findings.mismatch(name, tool, "",
                              f"exit {dump_status} without a "
                              f"'FILE: offset N: message' line: "
                              f"{stderr.strip()[:200]}")
            return False
    if os.path.exists(out_path):
        findings.mismatch(name, "dcm_rewrite", "",
                          "an unreadable input left an output file")
    if name not in EXPECTED_REJECTS:
        findings.mismatch(name, "read", "", f"rejected: {message}")
        return False
    findings.rejected_as_expected += 1
    return False


# ---------------------------------------------------------------------------
# Reading with pydicom
# ---------------------------------------------------------------------------

def tag_text(tag):
    """A tag as DICOM writes it: (0008,0005)."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def read_original_with_pydicom(path):
    """pydicom's reading of a corpus file (force=True: some have no
    preamble or no file meta)."""
    return pydicom.dcmread(path, force=True)


def read_plain_with_pydicom(path):
    """pydicom's reading of a Part 10 file without dcmread's DICOMDIR
    handling (which follows the record offsets and fails if they point
    nowhere): the file meta, then the dataset as a plain dataset."""
    file_meta = pydicom.filereader.read_file_meta_info(path)
    syntax = pydicom.uid.UID(file_meta.TransferSyntaxUID)
    # Preamble, "DICM", the (0002,0000) element, then the rest of the meta.
    dataset_start = 128 + 4 + 12 + file_meta.FileMetaInformationGroupLength
    with open(path, "rb") as stream:
        stream.seek(dataset_start)
        if syntax == DEFLATED_LE:
            inflated = zlib.decompress(stream.read(), -zlib.MAX_WBITS)
            dataset = pydicom.filereader.read_dataset(
                io.BytesIO(inflated), syntax.is_implicit_VR,
                syntax.is_little_endian)
        else:
            dataset = pydicom.filereader.read_dataset(
                stream, syntax.is_implicit_VR, syntax.is_little_endian)
    dataset.file_meta = file_meta
    return dataset


def read_output_with_pydicom(name, check, path, findings):
    """pydicom's reading of one of our outputs, which must be a proper
    Part 10 file (no force). If dcmread fails (say, on a DICOMDIR whose
    record offsets point nowhere), that is a mismatch, and the file is read
    plainly so that its elements can still be compared. Returns None if
    pydicom cannot read the file at all."""
    try:
        return pydicom.dcmread(path)
    except Exception as error:  # pydicom raises many kinds
        findings.mismatch(name, check, "",
                          f"pydicom's dcmread fails on OUT: "
                          f"{type(error).__name__}: {error}")
    try:
        return read_plain_with_pydicom(path)
    except Exception as error:
        findings.mismatch(name, check, "",
                          f"pydicom cannot read OUT at all: "
                          f"{type(error).__name__}: {error}")
        return None


def transfer_syntax_of(dataset):
    """The transfer syntax UID pydicom read the dataset with."""
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return str(meta.TransferSyntaxUID)
    if dataset.is_implicit_VR:
        return IMPLICIT_LE
    return EXPLICIT_LE if dataset.is_little_endian else EXPLICIT_BE


def is_explicit_un(item):
    """True for a raw pydicom element that the file gave VR UN explicitly
    (before pydicom replaced it with a known VR)."""
    return isinstance(item, RawDataElement) and item.VR == "UN"


def has_undefined_length(item):
    """True if a raw or converted pydicom element had undefined length."""
    if isinstance(item, RawDataElement):
        return item.length == 0xFFFFFFFF
    return bool(getattr(item, "is_undefined_length", False))


def has_encapsulated_pixel_data(dataset):
    """True if the top level Pixel Data is encapsulated (fragments)."""
    return (PIXEL_DATA in dataset
            and has_undefined_length(dataset.get_item(PIXEL_DATA)))


def is_dicomdir(dataset):
    """True for a Media Storage Directory (DICOMDIR)."""
    meta = getattr(dataset, "file_meta", None)
    return (meta is not None
            and str(meta.get("MediaStorageSOPClassUID", "")) ==
            MEDIA_STORAGE_DIRECTORY)


def record_index_by_offset(dataset):
    """For a DICOMDIR: {byte offset of a directory record: its index in the
    Directory Record Sequence}."""
    if DIRECTORY_RECORD_SEQUENCE not in dataset:
        return {}
    records = dataset[DIRECTORY_RECORD_SEQUENCE].value
    return {record.seq_item_tell: index
            for index, record in enumerate(records)}


# ---------------------------------------------------------------------------
# Comparing pydicom's readings
# ---------------------------------------------------------------------------

class PydicomComparison:
    """Compares pydicom's reading of an original (IN) with its reading of
    one of our outputs (OUT), recording findings under `check`."""

    def __init__(self, name, check, original, output, findings,
                 output_syntax, duplicated):
        self.name = name
        self.check = check
        self.original = original
        self.output = output
        self.findings = findings
        self.output_syntax = output_syntax
        self.duplicated = duplicated
        self.original_syntax = transfer_syntax_of(original)
        self.original_big_endian = not original.is_little_endian
        self.original_implicit = original.is_implicit_VR
        self.output_implicit = output_syntax == IMPLICIT_LE
        self.dicomdir = is_dicomdir(original)
        self.original_records = (record_index_by_offset(original)
                                 if self.dicomdir else {})
        self.output_records = (record_index_by_offset(output)
                               if self.dicomdir else {})

    def mismatch(self, where, what):
        """Records a mismatch at path `where` under this check."""
        self.findings.mismatch(self.name, self.check, where, what)

    def intend(self, kind, count=1):
        """Counts an intended difference of this file."""
        self.findings.intend(kind, self.name, count)

    # -- the file meta -----------------------------------------------------

    def compare_meta(self):
        """OUT has a fresh file meta (intended difference 3): only its
        transfer syntax and SOP class/instance are checked."""
        meta = self.output.file_meta
        syntax = str(meta.get("TransferSyntaxUID", ""))
        if syntax != self.output_syntax:
            self.mismatch("(0002,0010)",
                          f"OUT's Transfer Syntax UID is {syntax}, expected "
                          f"{self.output_syntax}")
        for meta_tag, dataset_tag in ((0x00020002, 0x00080016),
                                      (0x00020003, 0x00080018)):
            expected = self.original.get(dataset_tag)
            if expected is None or not expected.value:
                expected = self.original.file_meta.get(meta_tag)
            if expected is None or not expected.value:
                continue  # dcm_rewrite invents one
            written = meta.get(meta_tag)
            if written is None or uid_text(written) != uid_text(expected):
                self.mismatch(tag_text(meta_tag),
                              f"OUT has {written and written.value!r}, "
                              f"expected {expected.value!r}")

    # -- datasets ---------------------------------------------------------

    def compared_tags(self, dataset, is_original):
        """The tags of a dataset that take part in the comparison. Group
        lengths and file meta elements inside the dataset are dropped by
        our writer (intended difference 3)."""
        tags = []
        for tag in dataset.keys():
            if tag & 0xFFFF == 0:
                if is_original:
                    self.intend(INTENDED_GROUP_LENGTH)
                continue
            if tag >> 16 == 0x0002:
                if is_original:
                    self.intend(INTENDED_META_IN_DATASET)
                continue
            tags.append(tag)
        return tags

    def compare_datasets(self, original, output, where):
        """Compares two datasets (top level or items) element by element;
        `where` is the path to them, "" at the top level."""
        original_tags = self.compared_tags(original, True)
        output_tags = self.compared_tags(output, False)
        for tag in sorted(set(original_tags) | set(output_tags)):
            path = where + tag_text(tag)
            if tag not in output_tags:
                self.mismatch(path, "in IN, missing in OUT")
            elif tag not in original_tags:
                self.mismatch(path, "not in IN, but in OUT")
            else:
                self.compare_element(original, output, tag, path)

    def compare_element(self, original, output, tag, path):
        """Compares the element `tag` of two datasets."""
        # get_item() gives the raw element (value bytes as in the file)
        # as long as nobody has asked for the decoded value yet.
        try:
            original_raw = original.get_item(tag)
            original_element = original[tag]
        except Exception as error:
            self.mismatch(path, f"pydicom cannot decode IN's value: {error}")
            return
        try:
            output_raw = output.get_item(tag)
            output_element = output[tag]
        except Exception as error:
            self.mismatch(path, f"pydicom cannot decode OUT's value: {error}")
            return
        original_vr = vr_name(original_element)
        output_vr = vr_name(output_element)

        if tag in self.duplicated:
            # Intended difference 4: IN has this element twice (DCMTK says
            # so, without saying where). We keep the first, as DCMTK does,
            # and the DCMTK comparison checks that value; pydicom keeps
            # the last, so its reading of IN is not the one to compare.
            self.intend(INTENDED_DUPLICATE)
            return

        if is_explicit_un(original_raw) and original_vr != "UN":
            # Intended difference 1: pydicom, too, reads an explicit UN
            # with the VR its dictionary knows for the tag.
            self.intend(INTENDED_UN_KNOWN_VR)
        elif (original_vr == "UN" and not self.original_implicit
              and output_vr != "UN"):
            # Intended difference 1 where only our dictionary (DCMTK's
            # private.dic) knows the tag: the file says UN and pydicom
            # keeps it; its UN bytes are compared with what we read.
            self.intend(INTENDED_UN_KNOWN_VR)
            self.compare_un_with_known_vr(original_raw, original_element,
                                          output_raw, output_element,
                                          output_vr, path)
            return

        if original_vr == "SQ" or output_vr == "SQ":
            self.compare_sequences(original_element, output_element,
                                   original_raw, path)
            return
        if tag == PIXEL_DATA and has_undefined_length(original_raw):
            self.compare_fragments(original_element, output_element, path)
            return
        if self.dicomdir and tag in DICOMDIR_OFFSET_TAGS:
            self.compare_dicomdir_offset(original_element, output_element,
                                         path)
            return
        if original_vr != output_vr:
            if not self.vr_difference_is_intended(tag, original, original_vr,
                                                  output_vr):
                self.mismatch(path, f"VR {original_vr} in IN, "
                                    f"{output_vr} in OUT")
                return
            self.compare_bytes(original_raw, original_vr, output_raw,
                               output_vr, path)
            return
        if self.compare_bytes(original_raw, original_vr, output_raw,
                              output_vr, path):
            self.compare_values(original_element, output_element,
                                original_vr, path)

    def vr_difference_is_intended(self, tag, original, original_vr,
                                  output_vr):
        """True (and counted) if the VRs may differ: only where a side was
        read as implicit VR, so that its VR did not come from the file but
        from pydicom's dictionary (the dictionary's VR, one of the two of
        an ambiguous entry such as "US or SS", or UN for a tag it does not
        know). The VR we chose for an implicit original is checked against
        DCMTK's dictionary by the DCMTK comparison."""
        dictionary_vr = pydicom_dictionary_vr(original, tag)
        allowed = dictionary_vr.split(" or ") if dictionary_vr else ["UN"]
        implicit_side_vrs = []
        if self.original_implicit:
            implicit_side_vrs.append(original_vr)
        if self.output_implicit:
            implicit_side_vrs.append(output_vr)
        if implicit_side_vrs and all(vr in allowed
                                     for vr in implicit_side_vrs):
            self.intend(INTENDED_IMPLICIT_VR)
            return True
        return False

    def compare_un_with_known_vr(self, original_raw, original_element,
                                 output_raw, output_element, output_vr,
                                 path):
        """IN's explicit UN, which pydicom leaves as bytes, against the VR
        we read it with: a sequence is compared item by item with the UN
        bytes parsed as Implicit VR Little Endian (the encoding of a UN
        value, PS3.5 6.2.2), anything else byte for byte."""
        if output_vr != "SQ":
            self.compare_bytes(original_raw, "UN", output_raw, output_vr,
                               path)
            return
        try:
            original_items = pydicom.values.convert_SQ(
                original_element.value or b"", True, True)
        except Exception as error:
            self.mismatch(path, f"SQ in OUT, but IN's UN bytes do not parse "
                                f"as a sequence: {error}")
            return
        self.compare_item_lists(list(original_items),
                                list(output_element.value), path)

    def compare_sequences(self, original_element, output_element,
                          original_raw, path):
        """Same item count, and each item the same (recursively)."""
        if vr_name(original_element) != vr_name(output_element):
            self.mismatch(path, f"VR {vr_name(original_element)} in IN, "
                                f"{vr_name(output_element)} in OUT")
            return
        if is_explicit_un(original_raw):
            # Intended difference 2 (CP-246): pydicom, too, reads an
            # undefined length UN as a sequence.
            self.intend(INTENDED_UN_SEQUENCE)
        if not has_undefined_length(original_element):
            self.intend(INTENDED_LENGTHS)  # intended difference 3
        self.compare_item_lists(list(original_element.value),
                                list(output_element.value), path)

    def compare_item_lists(self, original_items, output_items, path):
        """The items of two sequences: as many, and each the same."""
        if len(original_items) != len(output_items):
            self.mismatch(path, f"{len(original_items)} items in IN, "
                                f"{len(output_items)} in OUT")
            return
        for index, (original_item, output_item) in enumerate(
                zip(original_items, output_items)):
            self.compare_datasets(original_item, output_item,
                                  f"{path}[{index}].")

    def compare_fragments(self, original_element, output_element, path):
        """Encapsulated pixel data: the same items (Basic Offset Table and
        fragments), byte for byte, except that an odd length fragment may
        have gained a zero pad byte."""
        if not has_undefined_length(output_element):
            self.mismatch(path, "encapsulated in IN, native in OUT")
            return
        try:
            original_items = split_encapsulated(original_element.value)
            output_items = split_encapsulated(output_element.value)
        except ValueError as error:
            self.mismatch(path, str(error))
            return
        if len(original_items) != len(output_items):
            self.mismatch(path, f"{len(original_items)} items (offset table "
                                f"and fragments) in IN, "
                                f"{len(output_items)} in OUT")
            return
        for index, (original_item, output_item) in enumerate(
                zip(original_items, output_items)):
            what = "Basic Offset Table" if index == 0 else f"fragment {index}"
            if not same_bytes_but_padding(original_item, output_item,
                                          b"\x00"):
                difference = bytes_difference(original_item, output_item)
                self.mismatch(path, f"{what} differs: {difference}")

    def compare_dicomdir_offset(self, original_element, output_element,
                                path):
        """A DICOMDIR offset is the byte position of a directory record:
        it must point to the same record (by index) in both files. 0 means
        no record."""
        original_target = describe_record(original_element.value,
                                          self.original_records)
        output_target = describe_record(output_element.value,
                                        self.output_records)
        if original_target != output_target:
            self.mismatch(path, f"points to {original_target} in IN, "
                                f"to {output_target} in OUT")
        elif original_element.value != output_element.value:
            self.intend(INTENDED_DICOMDIR_OFFSET)

    def compare_bytes(self, original_raw, original_vr, output_raw, output_vr,
                      path):
        """The value bytes (as little endian) are the same, except that an
        odd length value may have gained its VR's pad byte. Skipped where
        pydicom has already decoded the value while reading (Specific
        Character Set): compare_values covers those. Returns False if a
        mismatch was recorded."""
        original_bytes = raw_value_bytes(original_raw, original_vr,
                                         output_vr)
        output_bytes = raw_value_bytes(output_raw, output_vr, output_vr)
        if original_bytes is None or output_bytes is None:
            return True
        if not same_bytes_but_padding(original_bytes, output_bytes,
                                      pad_byte(output_vr)):
            difference = bytes_difference(original_bytes, output_bytes)
            self.mismatch(path, f"value bytes differ ({original_vr} in IN, "
                                f"{output_vr} in OUT): {difference}")
            return False
        return True

    def compare_values(self, original_element, output_element, vr, path):
        """The decoded values (numbers, strings, multiple values) are the
        same."""
        if vr in BYTES_VRS:
            return  # compare_bytes did it
        original_values = decoded_values(original_element)
        output_values = decoded_values(output_element)
        if len(original_values) != len(output_values) or not all(
                same_value(a, b) for a, b in zip(original_values,
                                                 output_values)):
            self.mismatch(path, f"{vr} value {shorten(original_values)} in "
                                f"IN, {shorten(output_values)} in OUT")

    def compare_native_pixels(self):
        """Native pixel data: pydicom's pixel_array (what a viewer shows)
        is the same."""
        if PIXEL_DATA not in self.original or \
                has_encapsulated_pixel_data(self.original):
            return
        try:
            original_pixels = self.original.pixel_array
        except Exception:
            return  # pydicom cannot show the original either
        try:
            output_pixels = self.output.pixel_array
        except Exception as error:
            self.mismatch("(7FE0,0010)", f"pydicom's pixel_array fails on "
                                         f"OUT: {error}")
            return
        if original_pixels.shape == output_pixels.shape and \
                (original_pixels == output_pixels).all():
            return
        if (self.original_big_endian
                and self.original.get("BitsAllocated", 0) > 16
                and vr_name(self.original["PixelData"]) == "OW"):
            # The bytes agree modulo 16-bit word swap (compare_bytes); the
            # values differ only in how a 32-bit pixel in big endian OW is
            # read. PS3.5 defines OW as 16-bit words (DCMTK agrees);
            # pydicom's test files were "corrected" to 32-bit swapping.
            self.intend(INTENDED_BIG_ENDIAN_OW32)
            return
        self.mismatch("(7FE0,0010)", "pixel_array differs between IN and "
                                     "OUT")

    def run(self):
        """All comparisons of this pair."""
        # The datasets first, while pydicom still holds their raw elements
        # (the other comparisons decode a few values).
        self.compare_datasets(self.original, self.output, "")
        self.compare_meta()
        self.compare_native_pixels()


def uid_text(element):
    """A UI element's value as text, without padding (bytes if the element
    was read as UN)."""
    value = element.value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).rstrip("\0 ")


def vr_name(element):
    """A pydicom element's VR as two letters ("US or SS" for an unresolved
    ambiguous one); pydicom 2.3 holds either a str or a str Enum."""
    return str(getattr(element.VR, "value", element.VR))


def pydicom_dictionary_vr(dataset, tag):
    """The VR pydicom's dictionaries give a tag ("US or SS" for ambiguous
    ones), "" if they do not know it."""
    try:
        if tag >> 16 & 1 and 0x0010 <= tag & 0xFFFF <= 0x00FF:
            return "LO"  # a private creator
        if tag >> 16 & 1:
            creator_tag = (tag & 0xFFFF0000) | ((tag & 0xFF00) >> 8)
            creator = dataset.get(creator_tag)
            if creator is None:
                return ""
            return pydicom.datadict.private_dictionary_VR(tag, creator.value)
        return pydicom.datadict.dictionary_VR(tag)
    except KeyError:
        return ""


def swap_bytes(data, unit):
    """data with the bytes of every `unit`-byte number reversed (a trailing
    partial number is kept as it is)."""
    if unit <= 1:
        return data
    whole = len(data) - len(data) % unit
    swapped = bytearray(data)
    for start in range(0, whole, unit):
        swapped[start:start + unit] = data[start:start + unit][::-1]
    return bytes(swapped)


def raw_value_bytes(item, vr, other_vr):
    """The value bytes of a raw pydicom element in little endian (big
    endian values swapped in units of vr, or of other_vr if vr is UN);
    None if pydicom has already decoded it."""
    if isinstance(item, RawDataElement):
        data = item.value or b""
        if not item.is_little_endian:
            unit = VR_UNIT_BYTES.get(vr if vr != "UN" else other_vr, 1)
            data = swap_bytes(data, unit)
        return data
    if isinstance(item.value, bytes):
        return item.value
    return None


def pad_byte(vr):
    """The byte that pads a value of this VR to even length."""
    return b" " if vr in STRING_VRS and vr != "UI" else b"\x00"


def same_bytes_but_padding(original, output, pad):
    """True if output is original, or original plus one pad byte where
    original had odd length."""
    if original == output:
        return True
    return len(original) % 2 == 1 and output == original + pad


def bytes_difference(original, output):
    """Where two byte strings first differ, in words."""
    if len(original) != len(output):
        prefix = f"{len(original)} bytes in IN, {len(output)} in OUT"
    else:
        prefix = f"{len(original)} bytes each"
    for index, (a, b) in enumerate(zip(original, output)):
        if a != b:
            return (f"{prefix}, first difference at byte {index}: "
                    f"{a:02x} in IN, {b:02x} in OUT")
    return prefix


def split_encapsulated(data):
    """The items of an encapsulated Pixel Data value, as a list of bytes:
    the Basic Offset Table first, then the fragments."""
    items = []
    position = 0
    while position + 8 <= len(data):
        group, element, length = struct.unpack_from("<HHI", data, position)
        position += 8
        if (group, element) == (0xFFFE, 0xE0DD):
            break
        if (group, element) != (0xFFFE, 0xE000):
            raise ValueError(f"({group:04X},{element:04X}) where an item "
                             f"was expected at byte {position - 8}")
        if position + length > len(data):
            raise ValueError(f"item at byte {position - 8} runs past the "
                             f"end of the value")
        items.append(bytes(data[position:position + length]))
        position += length
    return items


def decoded_values(element):
    """A pydicom element's value as a list of plain Python values (numbers,
    strings), empty for an empty value."""
    value = element.value
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        values = list(value)
    else:
        values = [value]
    plain = []
    for one in values:
        if isinstance(one, (int, float)) and not isinstance(
                one, (pydicom.valuerep.DSfloat, pydicom.valuerep.IS)):
            plain.append(one)
        else:
            plain.append(str(one))
    return plain


def same_value(a, b):
    """Equality that holds for NaN too."""
    if isinstance(a, float) and isinstance(b, float) and \
            math.isnan(a) and math.isnan(b):
        return True
    return a == b


def shorten(values):
    """A value list for a message, at most about 120 characters."""
    text = repr(values)
    return text if len(text) <= 120 else text[:117] + "..."


def describe_record(offset, records):
    """What a DICOMDIR offset points to: "no record" for 0, "record [i]",
    or "nothing (offset N)"."""
    if offset in (0, None, ""):
        return "no record"
    if offset in records:
        return f"record [{records[offset]}]"
    return f"nothing (offset {offset})"


# ---------------------------------------------------------------------------
# Comparing DCMTK's readings
# ---------------------------------------------------------------------------

# One element line of `dcmdump`: indentation, tag, VR, value, "#", length,
# VM, keyword.
DCMDUMP_ROW = re.compile(
    r"^(?P<indent> *)\((?P<group>[0-9a-f]{4}),(?P<element>[0-9a-f]{4})\) "
    r"(?P<vr>\S\S) (?P<value>.*?)\s+#\s*(?P<length>\d+|u/l),\s*(?P<vm>\d+) "
    r"(?P<name>.*)$")
DCMDUMP_RECORD_OFFSET = re.compile(r"^\s*#\s+offset=\$(?P<offset>\d+)")
DCMDUMP_SEQUENCE = re.compile(r"^\(Sequence with (explicit|undefined) "
                              r"length #=(?P<items>\d+)\)$")

DcmtkRow = collections.namedtuple("DcmtkRow", "vr value")


def dcmdump(path, extra_options=()):
    """Runs dcmdump on path, printing complete values (+L), UIDs as numbers
    (-Un) and non-ASCII/control characters as octal escapes (+Qo, so that
    one element is one line). Returns (status, stdout, stderr)."""
    return run(["dcmdump", "+L", "-Un", "+Qo", *extra_options, path])


def parse_dcmdump(text):
    """DCMTK's reading as {(path, tag): DcmtkRow} in file order, for the
    dataset only (the meta section is skipped: intended difference 3).

    The path names the enclosing sequences and items, e.g.
    "(0008,1115)[0].". Normalized away: group lengths (3), delimitation
    items and explicit vs undefined length markers (3), the length and VM
    columns. Items become rows of their own ("item") so that empty items
    count. For a DICOMDIR, "up" (offset) values become the index of the
    record they point to."""
    rows = {}
    stack = []  # path component per indentation level
    items_seen = collections.Counter()  # parent path -> items so far
    in_dataset = False
    record_offsets = {}  # DICOMDIR: byte offset -> "record [i]"
    last_item = None
    for line in text.splitlines():
        if line.startswith("# Dicom-Data-Set"):
            in_dataset = True
            continue
        if not in_dataset:
            continue
        offset_match = DCMDUMP_RECORD_OFFSET.match(line)
        if offset_match and last_item is not None:
            record_offsets[int(offset_match.group("offset"))] = last_item
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = DCMDUMP_ROW.match(line)
        if not match:
            raise ValueError(f"cannot parse dcmdump line: {line[:120]}")
        level = len(match.group("indent")) // 2
        del stack[level:]
        parent = "".join(stack)
        tag = f"({match.group('group')},{match.group('element')})".upper()
        vr = match.group("vr")
        value = match.group("value")
        if tag in ("(FFFE,E00D)", "(FFFE,E0DD)"):
            continue  # delimiters: intended difference 3
        if match.group("element") == "0000":
            continue  # group length: intended difference 3
        if match.group("group") == "0002":
            continue  # file meta inside the dataset: intended difference 3
        if tag == "(FFFE,E000)":
            index = items_seen[parent]
            items_seen[parent] += 1
            stack.append(f"[{index}].")
            # The item's own row is keyed by its path, e.g. ("(0008,1115)
            # [0]", ""), the rows of its elements by "(0008,1115)[0].".
            if vr == "pi":  # a fragment of encapsulated pixel data
                rows[(f"{parent}[{index}]", "")] = DcmtkRow("pi", value)
            else:
                rows[(f"{parent}[{index}]", "")] = DcmtkRow("na", "item")
                if parent == "(0004,1220)":
                    last_item = f"record [{index}]"
            continue
        if vr == "??":
            # An implicit VR element with an unknown tag: written with an
            # explicit VR it must be UN, which is what dcmdump then shows.
            vr = "UN"
        sequence = DCMDUMP_SEQUENCE.match(value)
        if sequence:
            value = f"(Sequence #={sequence.group('items')})"
        rows[(parent, tag)] = DcmtkRow(vr, value)
        stack.append(tag)
    for key, row in rows.items():
        if row.vr == "up" and record_offsets:
            offset = int(row.value)
            target = ("no record" if offset == 0 else
                      record_offsets.get(offset, f"nothing (offset {offset})"))
            rows[key] = DcmtkRow("up", target)
    return rows


def same_dcmtk_value(vr, original, output):
    """dcmdump's values are the same, allowing for the zero pad byte an odd
    length binary value gains ("...\\ab" vs "...\\ab\\00")."""
    if original == output:
        return True
    if vr in ("OB", "UN", "pi") and output == original + "\\00":
        return True
    return False


DCMTK_DUPLICATE = re.compile(r"Element \((?P<group>[0-9a-f]{4}),"
                             r"(?P<element>[0-9a-f]{4})\) found twice")


def duplicated_tags(stderr):
    """The tags DCMTK found twice in one dataset or item (it ignores the
    second, as we do), from dcmdump's warnings."""
    return {int(m.group("group") + m.group("element"), 16)
            for m in DCMTK_DUPLICATE.finditer(stderr)}


def dcmtk_problems(stderr):
    """dcmdump's error and warning lines (it exits 0 even when it fails)."""
    return [line for line in stderr.splitlines()
            if line.startswith(("E:", "W:", "F:"))]


def compare_with_dcmtk(name, path, out_path, dcmtk_original, findings):
    """Step c: dcmdump's reading of OUT agrees with its reading of IN
    (dcmtk_original: dcmdump's result for IN)."""
    _, dump_in, err_in = dcmtk_original
    status_out, dump_out, err_out = dcmdump(out_path)
    check = "dcmtk"
    if status_out != 0 or any(line.startswith(("E:", "F:"))
                              for line in err_out.splitlines()):
        problems = " / ".join(dcmtk_problems(err_out))
        findings.mismatch(name, check, "", f"dcmdump fails on OUT: "
                                           f"{problems}")
        return
    new_warnings = [w for w in dcmtk_problems(err_out)
                    if w not in dcmtk_problems(err_in)]
    for warning in new_warnings:
        findings.mismatch(name, check, "", f"dcmdump warns about OUT only: "
                                           f"{warning}")
    try:
        rows_in = parse_dcmdump(dump_in)
        rows_out = parse_dcmdump(dump_out)
    except ValueError as error:
        findings.mismatch(name, check, "", str(error))
        return
    rows_in = use_converted_un_rows(name, path, rows_in, rows_out, findings)
    for key in list(rows_in) + [k for k in rows_out if k not in rows_in]:
        where = key[0] + key[1]
        if key not in rows_out:
            findings.mismatch(name, check, where,
                              f"in IN ({rows_in[key].vr} "
                              f"{shorten_text(rows_in[key].value)}), "
                              f"missing in OUT")
        elif key not in rows_in:
            findings.mismatch(name, check, where,
                              f"not in IN, but in OUT ({rows_out[key].vr} "
                              f"{shorten_text(rows_out[key].value)})")
        else:
            original, output = rows_in[key], rows_out[key]
            if original.vr != output.vr:
                findings.mismatch(name, check, where,
                                  f"VR {original.vr} in IN, {output.vr} in "
                                  f"OUT")
            elif not same_dcmtk_value(original.vr, original.value,
                                      output.value):
                difference = text_difference(original.value, output.value)
                findings.mismatch(name, check, where,
                                  f"{original.vr} value differs: "
                                  f"{difference}")


def use_converted_un_rows(name, path, rows_in, rows_out, findings):
    """Intended difference 1: where IN has an explicit UN that we read with
    the dictionary's VR, take DCMTK's own conversion of IN (dcmdump +uc,
    "convert to real VR if known") for that element and everything nested
    in it, so that the values are compared, not just listed."""
    converted_keys = [key for key, row in rows_in.items()
                      if row.vr == "UN" and key in rows_out
                      and rows_out[key].vr != "UN"]
    if not converted_keys:
        return rows_in
    _, dump_converted, _ = dcmdump(path, ("+uc",))
    rows_converted = parse_dcmdump(dump_converted)
    merged = dict(rows_in)
    for parent, tag in converted_keys:
        prefix = parent + tag
        findings.intend(INTENDED_UN_KNOWN_VR, name)
        for key in [k for k in merged if k[0].startswith(prefix)
                    or k == (parent, tag)]:
            del merged[key]
        for key, row in rows_converted.items():
            if key[0].startswith(prefix) or key == (parent, tag):
                merged[key] = row
    return merged


def text_difference(original, output):
    """Two dcmdump values for a message: whole if short, else around the
    first character where they differ."""
    if len(original) + len(output) <= 160:
        return f"{original} in IN, {output} in OUT"
    first = next((i for i, (a, b) in enumerate(zip(original, output))
                  if a != b), min(len(original), len(output)))
    start = max(0, first - 20)
    return (f"from character {first} on: ...{original[start:first + 40]}... "
            f"in IN ({len(original)} characters), "
            f"...{output[start:first + 40]}... in OUT "
            f"({len(output)} characters)")


def shorten_text(text):
    """A dcmdump value for a message, at most about 100 characters."""
    return text if len(text) <= 100 else text[:97] + "..."


# ---------------------------------------------------------------------------
# Other target syntaxes
# ---------------------------------------------------------------------------

def refusal_expected(original):
    """Why our writer must refuse to write the original in a syntax other
    than its own (a word its message must contain), or None: encapsulated
    pixel data would need transcoding, and PS3.10 allows a DICOMDIR (whose
    record offsets are byte positions) only in Explicit VR Little Endian."""
    if has_encapsulated_pixel_data(original):
        return "transcoding"
    if is_dicomdir(original):
        return "DICOMDIR"
    return None


def rewrite_in_syntax(name, path, out_path, syntax_name, syntax_uid,
                      original, duplicated, args, findings):
    """Step d: writes the file in another syntax and compares pydicom's
    reading of it with the original; a file the writer must refuse (see
    refusal_expected) must be refused cleanly instead."""
    check = f"pydicom --ts {syntax_name}"
    status, _, stderr = run([args.rewrite, "--ts", syntax_name, path,
                             out_path])
    crash = crash_description(status, stderr)
    if crash:
        findings.mismatch(name, f"dcm_rewrite --ts {syntax_name}", "", crash)
        return
    reason = refusal_expected(original)
    if reason:
        if status != 1 or reason not in stderr:
            findings.mismatch(name, check, "",
                              f"expected exit 1 and a message about "
                              f"{reason}, got exit {status}: "
                              f"{stderr.strip()[:200]}")
        if os.path.exists(out_path):
            findings.mismatch(name, check, "",
                              "a refused rewrite left an output file")
        return
    if status != 0:
        findings.mismatch(name, check, "", f"dcm_rewrite failed: "
                                           f"{stderr.strip()[:200]}")
        return
    output = read_output_with_pydicom(name, check, out_path, findings)
    if output is not None:
        PydicomComparison(name, check, original, output, findings,
                          syntax_uid, duplicated).run()


# ---------------------------------------------------------------------------
# One file, and the whole corpus
# ---------------------------------------------------------------------------

def expected_output_syntax(original):
    """Step b's target: Explicit VR Little Endian, or the original's own
    syntax when its pixel data is encapsulated."""
    if has_encapsulated_pixel_data(original):
        return transfer_syntax_of(original)
    return EXPLICIT_LE


def check_file(name, args):
    """Steps a to d for the corpus file `name` (relative to --data).
    Returns the Findings for this file. An exception in the comparison
    itself is a mismatch too (with its traceback), never a silent pass."""
    findings = Findings()
    try:
        check_file_steps(name, args, findings)
    except Exception:
        findings.mismatch(name, "test", "", "the comparison raised an "
                          "exception:\n" + traceback.format_exc())
    return findings


def check_file_steps(name, args, findings):
    """The body of check_file, recording into findings."""
    path = os.path.join(args.data, name)
    stem = os.path.join(args.work, name.replace(os.sep, "__"))
    out_path = stem + ".explicit.dcm"
    findings.files += 1
    if not read_with_our_tools(name, path, out_path, args, findings):
        return
    try:
        original = read_original_with_pydicom(path)
    except Exception as error:
        findings.mismatch(name, "pydicom", "",
                          f"we read it, pydicom cannot: {error}")
        return
    dcmtk_original = dcmdump(path)
    duplicated = duplicated_tags(dcmtk_original[2])
    output = read_output_with_pydicom(name, "pydicom", out_path, findings)
    if output is not None:
        PydicomComparison(name, "pydicom", original, output, findings,
                          expected_output_syntax(original), duplicated).run()
    compare_with_dcmtk(name, path, out_path, dcmtk_original, findings)
    for syntax_name, syntax_uid in (("implicit", IMPLICIT_LE),
                                    ("deflated", DEFLATED_LE)):
        # A fresh reading: the comparison decodes the values it touches.
        original = read_original_with_pydicom(path)
        rewrite_in_syntax(name, path, f"{stem}.{syntax_name}.dcm",
                          syntax_name, syntax_uid, original, duplicated,
                          args, findings)
    findings.round_tripped += 1


def configure_pydicom():
    """pydicom as the comparison wants it: tolerant and quiet (it warns
    about every oddity of the corpus, which is not what this test is
    about), converting explicit UN to known VRs (its default, the same as
    our intended difference 1)."""
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pydicom.config.replace_un_with_known_vr = True
    warnings.simplefilter("ignore")


def parse_arguments():
    """The command line (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rewrite", required=True,
                        help="the dcm_rewrite tool")
    parser.add_argument("--siren", required=True, help="the siren program")
    parser.add_argument("--data", required=True,
                        help="pydicom's data folder (test_files, "
                             "charset_files)")
    parser.add_argument("--work", required=True,
                        help="scratch folder, created fresh")
    return parser.parse_args()


def main():
    """Checks every file of the corpus; returns the exit status."""
    args = parse_arguments()
    for tool in (args.rewrite, args.siren):
        if not os.access(tool, os.X_OK):
            print(f"corpus_roundtrip: {tool} is not an executable program",
                  file=sys.stderr)
            return 2
    if shutil.which("dcmdump") is None:
        print("corpus_roundtrip: dcmdump (DCMTK) is not installed",
              file=sys.stderr)
        return 2
    for folder in CORPUS_FOLDERS:
        if not os.path.isdir(os.path.join(args.data, folder)):
            print(f"corpus_roundtrip: no {folder} in {args.data} (is "
                  f"python3-pydicom installed?)", file=sys.stderr)
            return 2
    configure_pydicom()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)

    findings = Findings()
    names = corpus_files(args.data)
    for name in EXPECTED_REJECTS:
        if name not in names:
            findings.mismatch(name, "corpus", "",
                              "listed in EXPECTED_REJECTS but not in the "
                              "corpus")
    # The files are independent; most of the time goes into waiting for
    # the tools (dcm_rewrite syncs each output to disk), so they are
    # checked several at a time, and reported in corpus order.
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=WORKERS, initializer=configure_pydicom) as pool:
        for file_findings in pool.map(check_file, names,
                                      [args] * len(names)):
            findings.add(file_findings)
    findings.print_report()
    return 1 if findings.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
