#!/usr/bin/python3
"""net_peers.py - SIREN's DICOM network code against real peers on loopback.

Every peer is a real program (DCMTK's echoscu, storescu and storescp,
Debian's Orthanc, and siren itself); nothing is mocked. Scenarios, one
function each (their docstrings say what each proves):

  1. storescu_to_siren     DCMTK storescu, in several proposal modes, sends
                           the pydicom corpus to `siren serve`; what arrives
                           is what went over the wire, byte for byte, and
                           the original, element by element.
  2. siren_scp_refusals    the corpus files storescu cannot send, sent by
                           `siren send`: our SCP refuses exactly the ones
                           listed, with the status and reason listed.
  3. siren_to_storescp     `siren send` to DCMTK storescp (bit preserving):
                           every corpus file arrives as it was.
  4. siren_to_orthanc      `siren send` to a real Orthanc; its REST API
                           confirms every instance.
  5. concurrent_senders    22 senders (siren send and storescu) at once to
                           one `siren serve`, large and small files mixed.
  6. association_limit     more senders than --max-associations: the extra
                           ones get A-ASSOCIATE-RJ (transient, local limit
                           exceeded), the others complete.
  7. ae_title_checks       --allow-calling and the called AE title, with
                           echoscu, storescu, siren echo and siren send.

Usage:
  /usr/bin/python3 net_peers.py --siren build/gateway/siren \\
      --gen-series build/tests/gen_series \\
      --data /usr/lib/python3/dist-packages/pydicom/data --work /tmp/net

Exit status: 0 every check passed, 1 a check failed (each failure is
printed with its scenario), 2 the test itself could not run (a missing
tool or corpus). Every process the test starts is stopped before it exits.

Run with Debian's /usr/bin/python3 (python3-pydicom). The DCMTK tools and
Orthanc run with TCP_NODELAY=1 in their environment: DCMTK leaves Nagle's
algorithm on unless told otherwise, which costs ~40 ms per C-STORE on
loopback (a property of the peers, not of SIREN).
"""

import argparse
import collections
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
import warnings
import zlib

import pydicom
import pydicom.filereader
import pydicom.values
from pydicom.dataelem import RawDataElement

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
NATIVE_SYNTAXES = (EXPLICIT_LE, IMPLICIT_LE, DEFLATED_LE, EXPLICIT_BE)

# How storescu names transfer syntaxes in "Converting transfer syntax: A ->
# B" (DCMTK's DcmXfer names).
DCMTK_SYNTAX_NAMES = {
    "Little Endian Implicit": IMPLICIT_LE,
    "Little Endian Explicit": EXPLICIT_LE,
    "Big Endian Explicit": EXPLICIT_BE,
    "Deflated Explicit VR Little Endian": DEFLATED_LE,
    "JPEG Baseline": JPEG_BASELINE,
    "JPEG Extended, Process 2+4": JPEG_EXTENDED,
    "JPEG Lossless, Non-hierarchical, 1st Order Prediction":
        JPEG_LOSSLESS_SV1,
    "JPEG-LS Lossless": JPEG_LS_LOSSLESS,
    "JPEG 2000 (Lossless only)": JPEG_2000_LOSSLESS,
    "JPEG 2000 (Lossless or Lossy)": JPEG_2000,
    "RLE Lossless": RLE_LOSSLESS,
}

# The storescu option that proposes each compressed syntax of the corpus
# (with the uncompressed ones as fallback).
STORESCU_COMPRESSED_OPTIONS = {
    JPEG_BASELINE: "-xy",
    JPEG_EXTENDED: "-xx",
    JPEG_LOSSLESS_SV1: "-xs",
    JPEG_LS_LOSSLESS: "-xt",
    JPEG_2000_LOSSLESS: "-xv",
    JPEG_2000: "-xw",
    RLE_LOSSLESS: "-xr",
}

PIXEL_DATA = 0x7FE00010
TRAILING_PADDING = 0xFFFCFFFC

# The folders of pydicom's data folder that hold the corpus, and the files
# there that are not DICOM (notes, JSON, gzip, text dumps).
CORPUS_FOLDERS = ("test_files", "charset_files")
NOT_DICOM_SUFFIXES = (".txt", ".json", ".gz", ".dump", ".py", ".pyc")
NOT_DICOM_NAMES = ("README", "README.txt", "FileInfo.txt", "__pycache__")

SIREN_AET = "SIREN"
STORESCP_AET = "STORESCP"
ORTHANC_AET = "ORTHANC"
TOOL_TIMEOUT_S = 120
STARTUP_TIMEOUT_S = 30
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer",
                     "UndefinedBehaviorSanitizer", "runtime error:")

# ---------------------------------------------------------------------------
# What the peers cannot send or refuse, and why. Each entry is checked: the
# file must fail exactly so (the message must be there), and a listed file
# that goes through fails the test too, so that the tables stay true.
# ---------------------------------------------------------------------------

# Corpus files DCMTK cannot parse: storescu logs "Bad DICOM file" when it
# tries to send them, or, with -R (it reads every file first, to know what
# to propose), "missing SOP class (or instance) in file ..., ignoring
# file". (Our reader rejects the same ones, see corpus_roundtrip.py.)
STORESCU_CANNOT_READ = {
    "test_files/MR_truncated.dcm":
        "truncated by design: Pixel Data claims 8192 bytes, 8130 remain",
    "test_files/rtplan_truncated.dcm":
        "truncated by design: a sequence runs past the end of the file",
    "test_files/no_meta.dcm":
        "damaged: a stray byte before the bare data set makes the first "
        "tag (0820,0500) with a 173 MB length",
    "test_files/SC_rgb_jpeg.dcm":
        "mislabelled: the meta says explicit VR (JPEG Baseline), the data "
        "set is implicit VR",
}

# Corpus files in which storescu finds no SOP Class and Instance UID in the
# data set ("No SOP Class or Instance UID in file", or with -R the "missing
# SOP class" line above): it does not send them.
_NO_UIDS_IN_DATASET = ("the data set has no SOP Class UID (0008,0016) nor "
                       "SOP Instance UID (0008,0018)")
_DICOMDIR_NO_UIDS = ("a DICOMDIR: its SOP Class/Instance are only in the "
                     "file meta (Media Storage ...), the data set has none")
_ALL_UN = ("every element is explicit VR UN (as gdcmconv wrote it): DCMTK "
           "does not take a UN value for the UI it is and finds no SOP "
           "Class/Instance UID (pydicom and siren read them)")
STORESCU_NO_UIDS = {
    "test_files/dicomdirtests/DICOMDIR": _DICOMDIR_NO_UIDS,
    "test_files/dicomdirtests/DICOMDIR-bigEnd": _DICOMDIR_NO_UIDS,
    "test_files/dicomdirtests/DICOMDIR-empty.dcm": _DICOMDIR_NO_UIDS,
    "test_files/dicomdirtests/DICOMDIR-implicit": _DICOMDIR_NO_UIDS,
    "test_files/dicomdirtests/DICOMDIR-nooffset": _DICOMDIR_NO_UIDS,
    "test_files/dicomdirtests/DICOMDIR-nopatient": _DICOMDIR_NO_UIDS,
    "test_files/dicomdirtests/DICOMDIR-reordered": _DICOMDIR_NO_UIDS,
    "test_files/dicomdirtests/TINY_ALPHA/DICOMDIR": _DICOMDIR_NO_UIDS,
    "test_files/UN_sequence.dcm": _NO_UIDS_IN_DATASET,
    "test_files/no_meta_group_length.dcm": _NO_UIDS_IN_DATASET,
    "test_files/meta_missing_tsyntax.dcm": _NO_UIDS_IN_DATASET,
    "test_files/nested_priv_SQ.dcm": _NO_UIDS_IN_DATASET,
    "test_files/priv_SQ.dcm": _NO_UIDS_IN_DATASET,
    "test_files/empty_charset_LEI.dcm": _NO_UIDS_IN_DATASET,
    "charset_files/chrSQEncoding.dcm": _NO_UIDS_IN_DATASET,
    "charset_files/chrSQEncoding1.dcm": _NO_UIDS_IN_DATASET,
    "test_files/rtdose_rle.dcm": _ALL_UN,
    "test_files/rtdose_rle_1frame.dcm": _ALL_UN,
}

# What `siren send` does not send (it says so on stderr, exit status 1), and
# the words it must use. Same for every peer.
_TRUNCATED = "bytes remain in the input"
SIREN_SEND_NOT_SENT = {
    "test_files/MR_truncated.dcm":
        ("truncated by design (Pixel Data)", _TRUNCATED),
    "test_files/rtplan_truncated.dcm":
        ("truncated by design (Beam Sequence)", _TRUNCATED),
    "test_files/dicomdirtests/DICOMDIR-nooffset":
        ("a directory record runs past the end of the file", _TRUNCATED),
    "test_files/no_meta.dcm":
        ("damaged: no preamble, no meta, no data set start", "not DICOM"),
    "test_files/SC_rgb_jpeg.dcm":
        ("mislabelled explicit VR, actually implicit", "invalid VR bytes"),
    "test_files/empty_charset_LEI.dcm":
        ("no SOP Class UID in the data set nor in the meta",
         "no SOP Class UID, not sent"),
    "test_files/meta_missing_tsyntax.dcm":
        ("no SOP Class UID in the data set nor in the meta",
         "no SOP Class UID, not sent"),
    "test_files/nested_priv_SQ.dcm":
        ("no SOP Class UID in the data set nor in the meta",
         "no SOP Class UID, not sent"),
}

# What `siren serve` refuses of what `siren send` sends (scenario 2):
# {file: (reason, words of siren send's status line)}. A DICOMDIR that is
# not Explicit VR Little Endian does not get that far: siren send will not
# re-encode a DICOMDIR (its offsets would break), see SIREN_SEND_DICOMDIR.
_MISMATCH_WORDS = ("status 0xA900, error: data set does not match SOP "
                   "class: data set SOP class/instance differ from the "
                   "command")
_SCP_NO_UIDS = ("the data set has no SOP Class/Instance UID (siren send "
                "took them from the file meta): 0xA900", _MISMATCH_WORDS)
_SCP_DICOMDIR = ("a DICOMDIR: the data set has no SOP Class/Instance UID "
                 "(siren send took them from the file meta): 0xA900",
                 _MISMATCH_WORDS)
SIREN_SCP_REFUSALS = {
    "test_files/dicomdirtests/DICOMDIR": _SCP_DICOMDIR,
    "test_files/dicomdirtests/DICOMDIR-empty.dcm": _SCP_DICOMDIR,
    "test_files/dicomdirtests/DICOMDIR-nopatient": _SCP_DICOMDIR,
    "test_files/dicomdirtests/DICOMDIR-reordered": _SCP_DICOMDIR,
    "test_files/dicomdirtests/TINY_ALPHA/DICOMDIR": _SCP_DICOMDIR,
    "test_files/UN_sequence.dcm": _SCP_NO_UIDS,
    "test_files/no_meta_group_length.dcm": _SCP_NO_UIDS,
    "test_files/priv_SQ.dcm": _SCP_NO_UIDS,
    "charset_files/chrSQEncoding.dcm": _SCP_NO_UIDS,
    "charset_files/chrSQEncoding1.dcm": _SCP_NO_UIDS,
}
_DICOMDIR_NOT_RE_ENCODED = (
    "a DICOMDIR in a syntax the peer did not accept: siren send does not "
    "re-encode a DICOMDIR (its offsets count from the file meta)",
    "a DICOMDIR is a file (its offsets count from the file meta), not a "
    "dataset to send")
SIREN_SEND_DICOMDIR = {
    "test_files/dicomdirtests/DICOMDIR-bigEnd": _DICOMDIR_NOT_RE_ENCODED,
    "test_files/dicomdirtests/DICOMDIR-implicit": _DICOMDIR_NOT_RE_ENCODED,
}

# What DCMTK storescp (+xa -pm) refuses of what siren send offers
# (scenario 3): {file: (reason, words siren send must print)}.
_NO_DICOMDIR_CONTEXT = ("storescp does not accept the Media Storage "
                        "Directory SOP class", "accepted no context for SOP "
                                               "class 1.2.840.10008.1.3.10")
STORESCP_REFUSALS = {
    "test_files/dicomdirtests/DICOMDIR": _NO_DICOMDIR_CONTEXT,
    "test_files/dicomdirtests/DICOMDIR-bigEnd": _NO_DICOMDIR_CONTEXT,
    "test_files/dicomdirtests/DICOMDIR-empty.dcm": _NO_DICOMDIR_CONTEXT,
    "test_files/dicomdirtests/DICOMDIR-implicit": _NO_DICOMDIR_CONTEXT,
    "test_files/dicomdirtests/DICOMDIR-nopatient": _NO_DICOMDIR_CONTEXT,
    "test_files/dicomdirtests/DICOMDIR-reordered": _NO_DICOMDIR_CONTEXT,
    "test_files/dicomdirtests/TINY_ALPHA/DICOMDIR": _NO_DICOMDIR_CONTEXT,
}

# What Orthanc refuses of what siren send offers (scenario 4).
_ORTHANC_CANNOT_UNDERSTAND = ("Orthanc (DCMTK inside) finds no SOP "
                              "Class/Instance UID in the data set: "
                              "0xC000 (cannot understand)",
                              "status 0xC000")
_ORTHANC_ALL_UN = ("every element is explicit VR UN (as gdcmconv wrote "
                   "it): Orthanc (DCMTK inside) finds no SOP Class/Instance "
                   "UID: 0xC000 (cannot understand)", "status 0xC000")
_ORTHANC_NO_DICOMDIR = ("Orthanc does not accept the Media Storage "
                        "Directory SOP class", _NO_DICOMDIR_CONTEXT[1])
ORTHANC_REFUSALS = {
    "test_files/dicomdirtests/DICOMDIR": _ORTHANC_NO_DICOMDIR,
    "test_files/dicomdirtests/DICOMDIR-bigEnd": _ORTHANC_NO_DICOMDIR,
    "test_files/dicomdirtests/DICOMDIR-empty.dcm": _ORTHANC_NO_DICOMDIR,
    "test_files/dicomdirtests/DICOMDIR-implicit": _ORTHANC_NO_DICOMDIR,
    "test_files/dicomdirtests/DICOMDIR-nopatient": _ORTHANC_NO_DICOMDIR,
    "test_files/dicomdirtests/DICOMDIR-reordered": _ORTHANC_NO_DICOMDIR,
    "test_files/dicomdirtests/TINY_ALPHA/DICOMDIR": _ORTHANC_NO_DICOMDIR,
    "test_files/UN_sequence.dcm": _ORTHANC_CANNOT_UNDERSTAND,
    "test_files/no_meta_group_length.dcm": _ORTHANC_CANNOT_UNDERSTAND,
    "test_files/priv_SQ.dcm": _ORTHANC_CANNOT_UNDERSTAND,
    "charset_files/chrSQEncoding.dcm": _ORTHANC_CANNOT_UNDERSTAND,
    "charset_files/chrSQEncoding1.dcm": _ORTHANC_CANNOT_UNDERSTAND,
    "test_files/rtdose_rle.dcm": _ORTHANC_ALL_UN,
    "test_files/rtdose_rle_1frame.dcm": _ORTHANC_ALL_UN,
}


# ---------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------

class Checks:
    """Failures (with the scenario they belong to) and the numbers for the
    summary."""

    def __init__(self):
        self.scenario = ""
        self.failures = []
        self.counts = collections.Counter()
        self.tolerated = collections.Counter()
        self.refusals = collections.defaultdict(
            lambda: collections.defaultdict(
                lambda: collections.defaultdict(list)))

    def fail(self, what):
        """Records (and prints at once) a failed check."""
        line = f"[{self.scenario}] {what}"
        self.failures.append(line)
        print("FAIL " + line, flush=True)

    def expect(self, condition, what):
        """fail(what) unless condition; returns condition."""
        if not condition:
            self.fail(what)
        return bool(condition)

    def count(self, what, number=1):
        self.counts[f"{self.scenario}: {what}"] += number

    def refused(self, name, why, where=""):
        """A corpus file a peer did not send or store, why (checked), and
        where (a storescu run, ...), for the summary."""
        self.refusals[self.scenario][name][why].append(where)


# ---------------------------------------------------------------------------
# Processes and ports
# ---------------------------------------------------------------------------

def dcmtk_environment():
    """The environment for DCMTK tools and Orthanc: Nagle off (see the
    module docstring)."""
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    return env


class Processes:
    """Every long-running process the test starts, so that all of them are
    stopped at the end, also when a check or the test itself fails."""

    def __init__(self):
        self.running = []

    def start(self, command, log_path, env=None):
        """Starts command with stdout and stderr into log_path."""
        log = open(log_path, "wb")
        try:
            process = subprocess.Popen(command, stdout=log,
                                       stderr=subprocess.STDOUT, env=env,
                                       stdin=subprocess.DEVNULL)
        finally:
            log.close()
        self.running.append(process)
        return process

    def stop(self, process, timeout_s=15):
        """SIGCONT (in case we stopped it), SIGTERM, then SIGKILL after
        timeout_s. Returns the exit status (negative: a signal)."""
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGCONT)
                process.terminate()
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process in self.running:
            self.running.remove(process)
        return process.returncode

    def stop_all(self):
        for process in list(self.running):
            self.stop(process, timeout_s=5)


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now (for peers
    that cannot pick their own and tell us)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout_s, interval_s=0.05):
    """Polls predicate until it returns something true or timeout_s
    passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def run_tool(command, env=None, timeout_s=TOOL_TIMEOUT_S):
    """Runs a short-lived tool; returns (exit status, stdout, stderr) as
    text; the status is None on timeout, negative for a signal."""
    try:
        done = subprocess.run(command, capture_output=True, env=env,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as expired:
        return (None, (expired.stdout or b"").decode("latin-1"),
                (expired.stderr or b"").decode("latin-1"))
    return (done.returncode, done.stdout.decode("latin-1"),
            done.stderr.decode("latin-1"))


def sanitizer_report(text):
    """The first line of a sanitizer report in text, or None."""
    for line in text.splitlines():
        if any(marker in line for marker in SANITIZER_MARKERS):
            return line.strip()
    return None


# ---------------------------------------------------------------------------
# siren serve
# ---------------------------------------------------------------------------

class SirenServer:
    """A running `siren serve` writing into its own directory, on the port
    it picked (--port 0), with its log in a file."""

    def __init__(self, checks, processes, siren, work_dir, name, *options):
        self.checks = checks
        self.processes = processes
        self.dir = os.path.join(work_dir, name + "-in")
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(work_dir, name + "-serve.log")
        self.process = processes.start(
            [siren, "serve", "--dir", self.dir, "--port", "0", "--bind",
             "127.0.0.1", "--aet", SIREN_AET, *options], self.log_path)
        match = wait_until(
            lambda: self.process.poll() is None and re.search(
                r"serve\.listening port=(\d+)", self.log_text()),
            STARTUP_TIMEOUT_S)
        if not match:
            raise RuntimeError(f"siren serve did not start:\n"
                               f"{self.log_text()}")
        self.port = int(match.group(1))

    def log_text(self):
        with open(self.log_path, "r", encoding="latin-1") as log:
            return log.read()

    def log_lines(self, event):
        """The log lines of one event ("assoc.accepted", ...)."""
        return [line for line in self.log_text().splitlines()
                if f" {event} " in line or line.endswith(f" {event}")]

    def arrivals(self):
        """The stored instances, oldest first (by the sequence number in
        their names); files still being received are left out."""
        names = [name for name in os.listdir(self.dir)
                 if name.endswith(".dcm") and not name.startswith(".")]
        names.sort(key=lambda name: int(name[:-4].rsplit("-", 1)[1]))
        return [os.path.join(self.dir, name) for name in names]

    def take_arrivals(self, destination):
        """Moves the stored instances into destination, oldest first, and
        returns their new paths."""
        os.makedirs(destination, exist_ok=True)
        moved = []
        for path in self.arrivals():
            target = os.path.join(destination, os.path.basename(path))
            os.replace(path, target)
            moved.append(target)
        return moved

    def stop(self):
        """SIGTERM; siren serve must exit 0, without a sanitizer report."""
        status = self.processes.stop(self.process)
        log = self.log_text()
        self.checks.expect(status == 0, f"siren serve exited with status "
                                        f"{status}; log {self.log_path}")
        report = sanitizer_report(log)
        self.checks.expect(report is None, f"siren serve: {report} (see "
                                           f"{self.log_path})")


# ---------------------------------------------------------------------------
# A recording relay: what really went over the wire
# ---------------------------------------------------------------------------

# What one C-STORE-RQ carried: the command's Affected SOP Instance UID and
# the data set bytes as sent (the PDV payloads concatenated).
WireRecord = collections.namedtuple("WireRecord", "sop_instance dataset")


class PduRecorder:
    """Parses the PDUs an SCU sends (P-DATA-TF, PS3.8 9.3.5) and records
    every C-STORE-RQ with its data set."""

    def __init__(self, relay):
        self.relay = relay
        self.buffer = bytearray()
        self.command = bytearray()
        self.dataset = bytearray()
        self.store_uid = None

    def feed(self, data):
        self.buffer += data
        while len(self.buffer) >= 6:
            pdu_type = self.buffer[0]
            length = struct.unpack_from(">I", self.buffer, 2)[0]
            if len(self.buffer) < 6 + length:
                return
            if pdu_type == 0x04:
                self.p_data(bytes(self.buffer[6:6 + length]))
            del self.buffer[:6 + length]

    def p_data(self, pdu):
        position = 0
        while position + 6 <= len(pdu):
            # Item length (4), context ID (1), message control header (1):
            # bit 0 command/data set, bit 1 last fragment.
            item_length = struct.unpack_from(">I", pdu, position)[0]
            control = pdu[position + 5]
            fragment = pdu[position + 6:position + 4 + item_length]
            position += 4 + item_length
            if control & 0x01:
                self.command += fragment
                if control & 0x02:
                    self.command_complete(bytes(self.command))
                    self.command.clear()
            else:
                self.dataset += fragment
                if control & 0x02:
                    if self.store_uid is not None:
                        self.relay.add(WireRecord(self.store_uid,
                                                  bytes(self.dataset)))
                    self.dataset.clear()
                    self.store_uid = None

    def command_complete(self, command):
        """A command set (implicit VR little endian): remembers a
        C-STORE-RQ's Affected SOP Instance UID for its data set."""
        fields = {}
        position = 0
        while position + 8 <= len(command):
            group, element, length = struct.unpack_from("<HHI", command,
                                                         position)
            fields[(group, element)] = command[position + 8:
                                               position + 8 + length]
            position += 8 + length
        field = fields.get((0x0000, 0x0100), b"\0\0")
        if struct.unpack("<H", field[:2])[0] == 0x0001:  # C-STORE-RQ
            self.store_uid = fields.get((0x0000, 0x1000), b"").decode(
                "ascii", "replace").rstrip("\0 ")


class RecordingRelay:
    """A TCP relay on 127.0.0.1 between a real SCU and a real SCP. It
    passes every byte on unchanged in both directions and records each
    data set the SCU sends (parsed before it is passed on, so that the
    record exists before the SCP can answer)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.records = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def add(self, record):
        with self.lock:
            self.records.append(record)

    def take_records(self):
        with self.lock:
            records, self.records = self.records, []
        return records

    def accept_loop(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(
                    ("127.0.0.1", self.target_port), timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for end in (client, server):
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            recorder = PduRecorder(self)
            pair = {"open": 2}
            threading.Thread(target=self.pump, daemon=True,
                             args=(client, server, recorder, pair)).start()
            threading.Thread(target=self.pump, daemon=True,
                             args=(server, client, None, pair)).start()

    def pump(self, source, sink, recorder, pair):
        try:
            while True:
                data = source.recv(1 << 16)
                if not data:
                    break
                if recorder:
                    recorder.feed(data)
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self.lock:
            pair["open"] -= 1
            done = pair["open"] == 0
        if done:
            source.close()
            sink.close()

    def close(self):
        self.closed = True
        self.listener.close()


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

class CorpusFile:
    """One file of the corpus, staged under the work folder, with what the
    comparisons need from it."""

    def __init__(self, name, path):
        self.name = name  # relative to pydicom's data folder
        self.path = path  # the staged copy
        self.dataset_start, self.meta = dataset_start_and_meta(path)
        with open(path, "rb") as stream:
            stream.seek(self.dataset_start)
            self.dataset = stream.read()
        self.syntax = str(self.meta.get("TransferSyntaxUID", "")) or None
        self.sop_class = self.sop_instance = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dataset = pydicom.dcmread(path, force=True,
                                          stop_before_pixels=True)
            self.sop_class = uid_value(dataset.get(0x00080016)) or uid_value(
                self.meta.get(0x00020002))
            self.sop_instance = uid_value(dataset.get(0x00080018)) or \
                uid_value(self.meta.get(0x00020003))
            if self.syntax is None:
                self.syntax = (IMPLICIT_LE if dataset.is_implicit_VR else
                               EXPLICIT_LE if dataset.is_little_endian else
                               EXPLICIT_BE)
        except Exception:  # damaged files: pydicom raises many kinds
            pass

    @property
    def encapsulated(self):
        return self.syntax not in NATIVE_SYNTAXES


def uid_value(element):
    """A UI element's value as text without padding, None if absent."""
    if element is None or element.value in (None, "", b""):
        return None
    value = element.value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).rstrip("\0 ")


def dataset_start_and_meta(path):
    """Where the data set of a DICOM file starts (after the preamble,
    "DICM" and the file meta, if there are any) and the file meta."""
    with open(path, "rb") as stream, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pydicom.filereader.read_preamble(stream, True)
        meta = pydicom.filereader._read_file_meta_info(stream)
        return stream.tell(), meta


def dataset_bytes(path):
    """The bytes of a DICOM file after its file meta."""
    start, _ = dataset_start_and_meta(path)
    with open(path, "rb") as stream:
        stream.seek(start)
        return stream.read()


def stage_corpus(data_dir, work_dir):
    """Copies the DICOM files of the corpus (test_files/ recursively and
    charset_files/) into work_dir/corpus; returns {name: CorpusFile}."""
    root = os.path.join(work_dir, "corpus")
    files = {}
    for top in CORPUS_FOLDERS:
        for folder, subfolders, names in os.walk(os.path.join(data_dir,
                                                              top)):
            subfolders[:] = [s for s in subfolders if s != "__pycache__"]
            for file_name in names:
                if file_name in NOT_DICOM_NAMES or file_name.endswith(
                        NOT_DICOM_SUFFIXES):
                    continue
                source = os.path.join(folder, file_name)
                name = os.path.relpath(source, data_dir)
                target = os.path.join(root, name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(source, target)
                files[name] = CorpusFile(name, target)
    return root, dict(sorted(files.items()))


# ---------------------------------------------------------------------------
# Comparing a stored file with its original, element by element (pydicom)
# ---------------------------------------------------------------------------

# How many bytes one number of each binary VR has: the unit in which big
# endian values are byte swapped.
VR_UNIT_BYTES = {
    "US": 2, "SS": 2, "OW": 2, "AT": 2, "UL": 4, "SL": 4, "FL": 4,
    "OF": 4, "OL": 4, "FD": 8, "SV": 8, "UV": 8, "OD": 8, "OV": 8,
}
STRING_VRS = ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN",
              "SH", "ST", "TM", "UC", "UI", "UR", "UT")

# Differences a DICOM toolkit may make when it re-encodes a data set (DCMTK
# does them when it sends or stores one): counted, not failures.
TOLERATED_GROUP_LENGTH = "group length element recalculated or dropped"
TOLERATED_PADDING = "data set trailing padding (FFFC,FFFC) dropped"
TOLERATED_PAD_BYTE = "odd length value padded to even length"
TOLERATED_STRING_PADDING = ("trailing spaces of a string value trimmed "
                            "(insignificant, PS3.5 6.2)")
TOLERATED_ENCAPSULATED_OB = ("encapsulated Pixel Data written as OB (the "
                             "original said OW; PS3.5 A.4 says OB)")
TOLERATED_IMPLICIT_VR = "VR taken from a dictionary on an implicit VR side"
TOLERATED_UN_SEQUENCE = "sequence stored as UN (implicit VR, unknown tag)"


def read_for_comparison(path):
    """pydicom's reading of a file (force: some originals have no meta);
    a DICOMDIR is read as a plain data set."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, force=True)
        except Exception:
            start, meta = dataset_start_and_meta(path)
            syntax = pydicom.uid.UID(str(meta.get("TransferSyntaxUID",
                                                  EXPLICIT_LE)))
            with open(path, "rb") as stream:
                stream.seek(start)
                data = stream.read()
            if syntax == DEFLATED_LE:
                data = zlib.decompress(data, -zlib.MAX_WBITS)
            dataset = pydicom.filereader.read_dataset(
                io.BytesIO(data), syntax.is_implicit_VR,
                syntax.is_little_endian)
            dataset.file_meta = meta
            return dataset


def tag_text(tag):
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def vr_name(element):
    return str(getattr(element.VR, "value", element.VR))


def swap_bytes(data, unit):
    """data with every unit-byte number reversed."""
    if unit <= 1:
        return data
    whole = len(data) - len(data) % unit
    swapped = bytearray(data)
    for start in range(0, whole, unit):
        swapped[start:start + unit] = data[start:start + unit][::-1]
    return bytes(swapped)


class DatasetComparison:
    """Compares pydicom's reading of an original (IN) with that of a file a
    peer stored (OUT), element by element, recursively: the same tags, the
    same value bytes (as little endian: a big endian value is swapped in
    the units of its VR), the same VRs where both sides say them (explicit
    VR), the same sequence items. Only the differences that re-encoding a
    data set may make are tolerated (TOLERATED_*, counted)."""

    def __init__(self, original_path, stored_path, tolerated):
        self.original = read_for_comparison(original_path)
        self.stored = read_for_comparison(stored_path)
        self.tolerated = tolerated
        self.differences = []

    def run(self):
        self.compare(self.original, self.stored, "")
        return self.differences

    def differ(self, where, what):
        if len(self.differences) < 8:
            self.differences.append(f"{where}: {what}")

    def tags(self, dataset):
        kept = []
        for tag in dataset.keys():
            if tag & 0xFFFF == 0:
                self.tolerated[TOLERATED_GROUP_LENGTH] += 1
            elif tag == TRAILING_PADDING:
                self.tolerated[TOLERATED_PADDING] += 1
            else:
                kept.append(tag)
        return kept

    def compare(self, original, stored, where):
        original_tags = self.tags(original)
        stored_tags = self.tags(stored)
        for tag in sorted(set(original_tags) | set(stored_tags)):
            path = where + tag_text(tag)
            if tag not in stored_tags:
                self.differ(path, "in the original, not stored")
            elif tag not in original_tags:
                self.differ(path, "stored, not in the original")
            else:
                self.compare_element(original, stored, tag, path)

    def compare_element(self, original, stored, tag, path):
        try:
            original_raw = original.get_item(tag)
            stored_raw = stored.get_item(tag)
            original_element = original[tag]
            stored_element = stored[tag]
        except Exception as error:
            self.differ(path, f"pydicom cannot decode it: {error}")
            return
        original_vr = vr_name(original_element)
        stored_vr = vr_name(stored_element)
        if original_vr == "SQ" or stored_vr == "SQ":
            self.compare_sequences(original, stored, original_element,
                                   stored_element, path)
            return
        both_explicit = not (original.is_implicit_VR or
                             stored.is_implicit_VR)
        if (tag == PIXEL_DATA and original_vr == "OW" and stored_vr == "OB"
                and original_raw.length == 0xFFFFFFFF):
            self.tolerated[TOLERATED_ENCAPSULATED_OB] += 1
            stored_vr = original_vr
        if original_vr != stored_vr:
            if both_explicit:
                self.differ(path, f"VR {original_vr} in the original, "
                                  f"{stored_vr} stored")
                return
            self.tolerated[TOLERATED_IMPLICIT_VR] += 1
        # The unit of a big endian value comes from its explicit VR.
        unit_vr = original_vr if not original.is_implicit_VR else stored_vr
        original_bytes = value_bytes(original_raw, unit_vr)
        stored_bytes = value_bytes(stored_raw, unit_vr)
        if original_bytes is None or stored_bytes is None:
            # pydicom decoded it while reading (Specific Character Set).
            if original_element.value != stored_element.value:
                self.differ(path, f"{original_element.value!r} in the "
                                  f"original, {stored_element.value!r} "
                                  f"stored")
            return
        if original_bytes == stored_bytes:
            return
        pad = b" " if unit_vr in STRING_VRS and unit_vr != "UI" else b"\0"
        if len(original_bytes) % 2 and stored_bytes == original_bytes + pad:
            self.tolerated[TOLERATED_PAD_BYTE] += 1
            return
        if (unit_vr in STRING_VRS and original_bytes.rstrip(b" \0") ==
                stored_bytes.rstrip(b" \0")):
            self.tolerated[TOLERATED_STRING_PADDING] += 1
            return
        self.differ(path, f"value bytes differ ({original_vr}): "
                          f"{bytes_difference(original_bytes, stored_bytes)}")

    def compare_sequences(self, original, stored, original_element,
                          stored_element, path):
        original_items = self.items(original, original_element, path)
        stored_items = self.items(stored, stored_element, path)
        if original_items is None or stored_items is None:
            return
        if len(original_items) != len(stored_items):
            self.differ(path, f"{len(original_items)} items in the "
                              f"original, {len(stored_items)} stored")
            return
        for index, (a, b) in enumerate(zip(original_items, stored_items)):
            self.compare(a, b, f"{path}[{index}].")

    def items(self, dataset, element, path):
        """A sequence's items; an implicit VR side may hold a sequence of
        an unknown (private) tag as UN bytes, which are parsed as an
        implicit VR little endian sequence (PS3.5 6.2.2)."""
        if vr_name(element) == "SQ":
            return list(element.value)
        if dataset.is_implicit_VR and vr_name(element) == "UN":
            self.tolerated[TOLERATED_UN_SEQUENCE] += 1
            try:
                return list(pydicom.values.convert_SQ(element.value or b"",
                                                      True, True))
            except Exception as error:
                self.differ(path, f"UN bytes do not parse as a sequence: "
                                  f"{error}")
                return None
        self.differ(path, f"a sequence on one side, VR {vr_name(element)} "
                          f"on the other")
        return None


def value_bytes(item, unit_vr):
    """A raw pydicom element's value bytes as little endian; None if
    pydicom has decoded the value already."""
    if isinstance(item, RawDataElement):
        data = item.value or b""
        if not item.is_little_endian:
            data = swap_bytes(data, VR_UNIT_BYTES.get(unit_vr, 1))
        return data
    if isinstance(item.value, bytes):
        return item.value
    if item.value is None or item.value == "":
        return b""  # empty, whatever pydicom made of it
    return None


def bytes_difference(a, b):
    head = (f"{len(a)} bytes vs {len(b)}" if len(a) != len(b)
            else f"{len(a)} bytes each")
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"{head}, first difference at byte {index}"
    return head


def compare_stored(checks, original, stored_path, what):
    """Element by element comparison of a stored file with its original;
    each difference is a failure. Returns True if they agree."""
    try:
        differences = DatasetComparison(original.path, stored_path,
                                        checks.tolerated).run()
    except Exception as error:
        checks.fail(f"{original.name} ({what}): cannot compare with "
                    f"{stored_path}: {type(error).__name__}: {error}")
        return False
    for difference in differences:
        checks.fail(f"{original.name} ({what}): {difference} (stored as "
                    f"{stored_path})")
    return not differences


def meta_of(path):
    """(transfer syntax, SOP class, SOP instance) of a stored file's
    meta."""
    _, meta = dataset_start_and_meta(path)
    return (str(meta.get("TransferSyntaxUID", "")),
            uid_value(meta.get(0x00020002)), uid_value(meta.get(0x00020003)))


# ---------------------------------------------------------------------------
# Parsing what the peers said
# ---------------------------------------------------------------------------

class StorescuAttempt:
    """What storescu -v logged about one file."""

    def __init__(self, path):
        self.path = path
        self.conversion = None   # (from, to) in DCMTK's names
        self.response = None     # "Success", "Error: ...", ...
        self.messages = []       # its E:/W:/F: lines
        self.ignored = False     # left out before the association (-R)

    def said(self, words):
        return any(words in line for line in self.messages)


def parse_storescu_log(text):
    """storescu -v output as a list of StorescuAttempt, in sending order."""
    attempts = []
    current = None
    for line in text.splitlines():
        match = re.match(r"W: missing SOP class \(or instance\) in file: "
                         r"(.*), ignoring file$", line)
        if match:
            # -R: storescu reads every file before the association, to
            # know what to propose, and leaves these out.
            ignored = StorescuAttempt(match.group(1).strip())
            ignored.ignored = True
            ignored.messages.append(line)
            attempts.append(ignored)
            continue
        match = re.match(r"I: Sending file: (.*)$", line)
        if match:
            current = StorescuAttempt(match.group(1).strip())
            attempts.append(current)
            continue
        if current is None:
            continue
        match = re.match(r"I: Converting transfer syntax: (.*) -> (.*)$",
                         line)
        if match:
            current.conversion = (match.group(1).strip(),
                                  match.group(2).strip())
        elif line.startswith("I: Received Store Response"):
            current.response = line[line.index("(") + 1:line.rindex(")")]
        elif re.match(r"^(XMIT: )?[EWF]: ", line):
            current.messages.append(line)
    return attempts


class SirenSendResult:
    """What `siren send` printed, per file: its status line on stdout or
    its complaint on stderr."""

    def __init__(self, status, stdout, stderr, paths):
        self.exit_status = status
        self.stdout = stdout
        self.stderr = stderr
        self.order = []          # paths with a status line, in order
        self.status = {}         # path: (status, words)
        self.local = {}          # path: message on stderr
        lines = stdout.splitlines() + stderr.splitlines()
        for line in stdout.splitlines():
            match = re.match(r"(.*): status 0x([0-9A-F]{4}), (.*)$", line)
            if match and match.group(1) in paths:
                self.order.append(match.group(1))
                self.status[match.group(1)] = (int(match.group(2), 16),
                                               match.group(3))
        for line in stderr.splitlines():
            path, _, message = line.partition(": ")
            if path in paths:
                self.local[path] = message
        self.association_errors = [line for line in lines
                                   if line.startswith("siren send:")]
        summary = re.search(r"sent (\d+), with warnings (\d+), failed (\d+)",
                            stdout)
        self.summary = tuple(map(int, summary.groups())) if summary else None

    def stored(self):
        """Paths the peer answered with success or a warning, in order."""
        return [path for path in self.order
                if self.status[path][0] == 0 or
                self.status[path][0] & 0xF000 == 0xB000]


def siren_send(siren, calling, called, port, inputs, paths, *options):
    """Runs siren send; returns a SirenSendResult."""
    status, out, err = run_tool([siren, "send", "--aet", calling, "--call",
                                 called, *options, "127.0.0.1", str(port),
                                 *inputs])
    return SirenSendResult(status, out, err, paths)


def check_tool_output(checks, what, status, text, log_path=None):
    """A tool must not have hung, crashed or reported a sanitizer error."""
    where = f" (log {log_path})" if log_path else ""
    checks.expect(status is not None, f"{what} did not finish within "
                                      f"{TOOL_TIMEOUT_S} s{where}")
    checks.expect(status is None or status >= 0,
                  f"{what} died of signal {-(status or 0)}{where}")
    report = sanitizer_report(text)
    checks.expect(report is None, f"{what}: {report}{where}")


def association_counts(log_lines):
    """(accepted, proposed) context counts of assoc.accepted log lines."""
    counts = []
    for line in log_lines:
        match = re.search(r"contexts=(\d+)/(\d+)", line)
        if match:
            counts.append((int(match.group(1)), int(match.group(2))))
    return counts


# ---------------------------------------------------------------------------
# Scenario 1: DCMTK echoscu and storescu to siren serve
# ---------------------------------------------------------------------------

class StorescuRun:
    """One storescu invocation: its options, whether it scans the corpus
    folders (+sd +r) or gets a list of files, and which files."""

    def __init__(self, label, options, description, folders=False,
                 syntax=None):
        self.label = label
        self.options = options
        self.description = description
        self.folders = folders
        self.syntax = syntax  # only the files of this syntax, if set

    @property
    def required_only(self):
        return "-R" in self.options

    def proposes(self, syntax):
        """True if storescu proposes this (compressed) syntax in this run."""
        return self.syntax == syntax


STORESCU_RUNS = [
    StorescuRun("default", [],
                "DCMTK's default (-x=): explicit VR little endian first, "
                "big endian and implicit as fallback, 2 contexts for each "
                "of DCMTK's 64 short-list storage SOP classes (128 "
                "contexts); the corpus folders scanned (+sd +r)",
                folders=True),
    StorescuRun("big-endian", ["-R", "-xb"],
                "-R -xb: only the SOP classes of the files, explicit VR big "
                "endian first; folders scanned (+sd +r)", folders=True),
    StorescuRun("implicit", ["-xi"],
                "-xi: implicit VR little endian only, for DCMTK's 64 "
                "short-list SOP classes; files listed"),
    StorescuRun("deflated", ["-R", "-xd"],
                "-R -xd: deflated explicit VR little endian in a context of "
                "its own, the uncompressed syntaxes in another; files "
                "listed"),
    StorescuRun("combined", ["-R", "-xe", "+C"],
                "-R -xe +C: explicit VR little endian first, all "
                "uncompressed syntaxes combined in one context per SOP "
                "class (siren picks one of them); files listed"),
] + [
    StorescuRun(f"compressed{option}", ["-R", option],
                f"-R {option}: {pydicom.uid.UID(syntax).name} and the "
                f"uncompressed syntaxes; the files in that syntax",
                syntax=syntax)
    for syntax, option in STORESCU_COMPRESSED_OPTIONS.items()
]


def expected_storescu_failure(corpus_file, run):
    """(words storescu logs, reason) if storescu cannot send this file in
    this run; None if it must arrive."""
    name = corpus_file.name
    if name in STORESCU_CANNOT_READ:
        return "Bad DICOM file", STORESCU_CANNOT_READ[name]
    if name in STORESCU_NO_UIDS:
        return "No SOP Class or Instance UID in file", STORESCU_NO_UIDS[name]
    if corpus_file.encapsulated and not run.proposes(corpus_file.syntax):
        return ("unable to convert dataset from",
                "storescu has no decoder for the file's compressed syntax, "
                "which this run does not propose")
    return None


def scenario_storescu_to_siren(checks, env, siren, work, corpus_root,
                               corpus, processes, state):
    """DCMTK echoscu gets Success from `siren serve`; DCMTK storescu sends
    every corpus file in several proposal modes (STORESCU_RUNS), through a
    relay that records the bytes on the wire. Proves, per file: siren
    negotiated every context storescu proposed; each file storescu sent
    got Success and was stored as a Part 10 file whose meta names the
    transfer syntax storescu used and the SOP instance of the command,
    and whose data set is byte for byte the data set that went over the
    wire; that data set is the original's bytes (when storescu did not
    re-encode) or, element by element, the original's content (when it
    converted the syntax or re-encoded lengths, group lengths, padding).
    Each file storescu does not send fails for the reason listed."""
    server = SirenServer(checks, processes, siren, work, "storescu",
                         "--max-associations", "8")
    state["storescu_server"] = server
    status, out, err = run_tool(["echoscu", "-v", "-aet", "ECHOSCU", "-aec",
                                 SIREN_AET, "127.0.0.1", str(server.port)],
                                env)
    checks.expect(status == 0 and "Received Echo Response (Success)" in
                  out + err, f"echoscu to siren serve: exit status {status}:"
                             f" {(out + err).strip()}")
    relay = RecordingRelay(server.port)
    try:
        for run in STORESCU_RUNS:
            run_storescu(checks, env, server, relay, run, corpus_root,
                         corpus, work)
    finally:
        relay.close()


def run_storescu(checks, env, server, relay, run, corpus_root, corpus,
                 work):
    """One storescu run through the relay, and the checks of what
    arrived."""
    print(f"  storescu {run.label}: {run.description}", flush=True)
    files = [f for f in corpus.values()
             if run.syntax is None or f.syntax == run.syntax]
    by_path = {f.path: f for f in files}
    command = ["storescu", "-v", "-nh", "-aet", "STORESCU", "-aec",
               SIREN_AET, *run.options]
    if run.folders:
        command += ["+sd", "+r", "127.0.0.1", str(relay.port),
                    *(os.path.join(corpus_root, top)
                      for top in CORPUS_FOLDERS)]
    else:
        command += ["127.0.0.1", str(relay.port), *by_path]
    log_start = len(server.log_lines("assoc.accepted"))
    started = time.monotonic()
    status, out, err = run_tool(command, env)
    log_path = os.path.join(work, f"storescu-{run.label}.log")
    with open(log_path, "w") as log:
        log.write(" ".join(command) + "\n" + out + err)
    what = f"storescu {run.label}"
    check_tool_output(checks, what, status, out + err, log_path)
    checks.expect(status == 0, f"{what}: exit status {status} (log "
                               f"{log_path})")
    attempts = parse_storescu_log(err)  # stdout has only progress dots
    records = relay.take_records()
    arrivals = server.take_arrivals(os.path.join(work, "storescu-" +
                                                 run.label))

    # The association: every context storescu proposed was accepted, so
    # that a "No presentation context" can only mean storescu did not
    # propose that SOP class.
    counts = association_counts(
        server.log_lines("assoc.accepted")[log_start:])
    checks.expect(len(counts) == 1, f"{what}: {len(counts)} associations "
                                    f"in siren's log, expected 1")
    all_accepted = all(a == p for a, p in counts)
    checks.expect(all_accepted, f"{what}: siren accepted only "
                                f"{counts} of the contexts proposed")

    seen = collections.Counter(a.path for a in attempts)
    for path, corpus_file in by_path.items():
        checks.expect(seen[path] == 1, f"{what}: storescu tried "
                                       f"{corpus_file.name} {seen[path]} "
                                       f"times, expected once")
    # A data set went out for every request that got an answer (storescu
    # logs "Sending Store Request" also when it then fails to convert).
    sent = [a for a in attempts if a.response is not None]
    if not checks.expect(len(sent) == len(records),
                         f"{what}: storescu got {len(sent)} C-STORE "
                         f"answers, the relay saw {len(records)} data "
                         f"sets"):
        return
    wire = {id(a): r for a, r in zip(sent, records)}
    stored = [a for a in attempts if a.response == "Success"]
    if not checks.expect(len(stored) == len(arrivals),
                         f"{what}: {len(stored)} Success answers, "
                         f"{len(arrivals)} files in siren's folder"):
        return
    arrival_of = {id(a): path for a, path in zip(stored, arrivals)}

    for attempt in attempts:
        corpus_file = by_path.get(attempt.path)
        if corpus_file is None:
            checks.fail(f"{what}: storescu sent {attempt.path}, not a "
                        f"corpus file")
            continue
        label = f"{corpus_file.name}, storescu {run.label}"
        expected = expected_storescu_failure(corpus_file, run)
        if expected:
            words, reason = expected
            if attempt.ignored:
                words = "missing SOP class (or instance) in file"
            if checks.expect(attempt.response is None and
                             attempt.said(words),
                             f"{label}: expected storescu to give up "
                             f"({reason}: '{words}'), it logged "
                             f"{attempt.messages} and answer "
                             f"{attempt.response}"):
                checks.refused(corpus_file.name, reason, run.label)
            continue
        if (not run.required_only and attempt.response is None and
                attempt.said("No presentation context for") and
                all_accepted):
            # storescu proposed DCMTK's short list of SOP classes, not
            # this file's; siren accepted everything it proposed.
            checks.refused(corpus_file.name, f"its SOP class "
                           f"{corpus_file.sop_class} is not in DCMTK's "
                           f"short list, which storescu proposes without "
                           f"-R", run.label)
            continue
        if not checks.expect(attempt.response == "Success",
                             f"{label}: answer {attempt.response}, "
                             f"storescu logged {attempt.messages}"):
            continue
        check_storescu_arrival(checks, label, corpus_file, attempt,
                               wire.get(id(attempt)),
                               arrival_of[id(attempt)])
    checks.count("storescu runs")
    checks.count(f"run {run.label}: files stored", len(arrivals))
    checks.counts[f"{checks.scenario}: seconds in storescu runs"] += round(
        time.monotonic() - started, 2)


def check_storescu_arrival(checks, label, corpus_file, attempt, record,
                           arrival):
    """One file storescu sent and siren stored (see
    scenario_storescu_to_siren)."""
    syntax, sop_class, sop_instance = meta_of(arrival)
    expected_syntax = DCMTK_SYNTAX_NAMES.get(
        attempt.conversion[1] if attempt.conversion else "")
    checks.expect(syntax == expected_syntax,
                  f"{label}: stored with transfer syntax {syntax}, storescu "
                  f"sent {attempt.conversion}")
    if record is None:
        checks.fail(f"{label}: the relay recorded no data set")
        return
    checks.expect(sop_instance == record.sop_instance,
                  f"{label}: stored as SOP instance {sop_instance}, the "
                  f"command said {record.sop_instance}")
    checks.expect(corpus_file.sop_instance in (None, record.sop_instance),
                  f"{label}: storescu's command names SOP instance "
                  f"{record.sop_instance}, the file "
                  f"{corpus_file.sop_instance}")
    stored = dataset_bytes(arrival)
    if not checks.expect(stored == record.dataset,
                         f"{label}: the stored data set is not what went "
                         f"over the wire: "
                         f"{bytes_difference(record.dataset, stored)} "
                         f"(stored as {arrival})"):
        return
    checks.count("stored data set == bytes on the wire")
    if record.dataset == corpus_file.dataset:
        checks.count("bytes on the wire == the original's data set bytes")
        return
    source, target = attempt.conversion
    kind = ("storescu re-encoded in the same syntax" if source == target
            else "storescu converted the syntax")
    if compare_stored(checks, corpus_file, arrival, f"storescu, {source} "
                                                    f"-> {target}"):
        checks.count(f"element by element == the original ({kind})")


# ---------------------------------------------------------------------------
# What siren send did with each file, and what the peer stored
# ---------------------------------------------------------------------------

def check_send_outcomes(checks, result, files, local_refusals,
                        peer_refusals, peer):
    """siren send's verdict on each file: left out by siren send itself
    (local_refusals: its words on stderr), refused by the peer
    (peer_refusals: the words in its line), or stored (status 0x0000).
    Returns the stored files in sending order."""
    for corpus_file in files:
        name, path = corpus_file.name, corpus_file.path
        status = result.status.get(path)
        line = (f"status 0x{status[0]:04X}, {status[1]}" if status else
                result.local.get(path, "(nothing printed)"))
        if name in local_refusals:
            reason, words = local_refusals[name]
            if checks.expect(status is None and words in line,
                             f"{name}: expected siren send to leave it out "
                             f"({reason}: '{words}'), it printed: {line}"):
                checks.refused(name, f"siren send: {reason}")
        elif name in peer_refusals:
            reason, words = peer_refusals[name]
            if checks.expect(words in line and (status is None or
                                                status[0] != 0),
                             f"{name}: expected {peer} to refuse it "
                             f"({reason}: '{words}'), siren send printed: "
                             f"{line}"):
                checks.refused(name, f"{peer}: {reason}")
        else:
            checks.expect(status is not None and status[0] == 0,
                          f"{name}: not stored by {peer}: {line}")
    stored = [files_by_path(files)[path] for path in result.stored()]
    failed = len(files) - len(stored)
    checks.expect(result.summary == (len(stored), 0, failed),
                  f"siren send's summary {result.summary}, expected sent "
                  f"{len(stored)}, with warnings 0, failed {failed}")
    checks.expect(result.exit_status == (1 if failed else 0),
                  f"siren send: exit status {result.exit_status}")
    for line in result.association_errors:
        checks.fail(f"siren send to {peer}: {line}")
    checks.count(f"files stored by {peer}", len(stored))
    return stored


def files_by_path(files):
    return {f.path: f for f in files}


def same_on_the_wire(corpus_file, received):
    """received is what siren send sends for corpus_file byte for byte: its
    data set, plus one NUL when it is an odd-length deflated stream (PS3.5
    A.5 pads one, and DIMSE fragments must have even lengths)."""
    original = corpus_file.dataset
    if corpus_file.syntax == DEFLATED_LE and len(original) % 2:
        original += b"\x00"
    return received == original


def check_arrivals(checks, stored_files, arrivals, peer, same_syntax_exact):
    """The files a peer wrote, in the order siren send had them stored:
    the meta names the file's SOP instance; the data set is the original's
    bytes where the peer stored the original's syntax (if
    same_syntax_exact: siren send sends those byte for byte and the peer
    writes what it receives), else element by element the original's
    content (siren send re-encoded into the syntax the peer accepted, or
    the peer re-encoded)."""
    if not checks.expect(len(stored_files) == len(arrivals),
                         f"{len(stored_files)} files stored according to "
                         f"siren send, {len(arrivals)} written by {peer}"):
        return
    for corpus_file, arrival in zip(stored_files, arrivals):
        label = f"{corpus_file.name}, stored by {peer}"
        syntax, _, sop_instance = meta_of(arrival)
        checks.expect(sop_instance == corpus_file.sop_instance,
                      f"{label}: stored as SOP instance {sop_instance}, "
                      f"expected {corpus_file.sop_instance} ({arrival})")
        if syntax == corpus_file.syntax and same_syntax_exact:
            if checks.expect(same_on_the_wire(corpus_file, dataset_bytes(arrival)),
                             f"{label}: stored in the original's syntax "
                             f"but not byte for byte: " + bytes_difference(
                                 corpus_file.dataset,
                                 dataset_bytes(arrival)) + f" ({arrival})"):
                checks.count(f"{peer}: data set == the original's bytes")
        elif compare_stored(checks, corpus_file, arrival,
                            f"{peer}, {corpus_file.syntax} -> {syntax}"):
            kind = ("re-encoded" if syntax != corpus_file.syntax else
                    "same syntax, re-encoded by the peer")
            checks.count(f"{peer}: element by element == the original "
                         f"({kind} {syntax_name(corpus_file.syntax)} -> "
                         f"{syntax_name(syntax)})")


def syntax_name(uid):
    try:
        return pydicom.uid.UID(uid).name
    except Exception:
        return str(uid)


# ---------------------------------------------------------------------------
# Scenario 2: what siren serve refuses
# ---------------------------------------------------------------------------

def scenario_siren_scp_refusals(checks, env, siren, work, corpus_root,
                                corpus, processes, state):
    """The corpus files storescu cannot send (STORESCU_CANNOT_READ,
    STORESCU_NO_UIDS), sent with `siren send` to `siren serve`. Proves
    that our SCP refuses exactly the files of SIREN_SCP_REFUSALS, with
    status 0xA900 and its Error Comment, and logs each refusal
    (store.refused status=0xA900) without storing anything of them; that
    siren send leaves out the ones listed (SIREN_SEND_NOT_SENT,
    SIREN_SEND_DICOMDIR) with those words; and that the rest (files DCMTK
    misreads but we do not) is stored byte for byte."""
    server = SirenServer(checks, processes, siren, work, "refusals")
    state["refusals_server"] = server
    names = sorted(set(STORESCU_CANNOT_READ) | set(STORESCU_NO_UIDS))
    files = [corpus[name] for name in names]
    result = siren_send(siren, "SIRENSCU", SIREN_AET, server.port,
                        [f.path for f in files], files_by_path(files))
    check_tool_output(checks, "siren send", result.exit_status,
                      result.stdout + result.stderr)
    # Only siren serve accepts the DICOMDIR's SOP class; with the other
    # peers the context is missing before re-encoding comes into it.
    stored = check_send_outcomes(checks, result, files,
                                 {**SIREN_SEND_NOT_SENT,
                                  **SIREN_SEND_DICOMDIR},
                                 SIREN_SCP_REFUSALS, "siren serve")
    arrivals = server.take_arrivals(os.path.join(work, "refusals"))
    check_arrivals(checks, stored, arrivals, "siren serve", True)
    refused_in_log = [line for line in server.log_lines("store.refused")
                      if "status=0xA900" in line and
                      "data set SOP class/instance differ" in line]
    expected = sum(1 for f in files if f.name in SIREN_SCP_REFUSALS)
    checks.expect(len(refused_in_log) == expected,
                  f"siren serve logged {len(refused_in_log)} store.refused "
                  f"status=0xA900, expected {expected}")
    leftovers = [n for n in os.listdir(server.dir) if n.startswith(".")]
    checks.expect(not leftovers, f"siren serve left partial files: "
                                 f"{leftovers}")


# ---------------------------------------------------------------------------
# Scenario 3: siren send to DCMTK storescp
# ---------------------------------------------------------------------------

def wait_for_echo(env, port, called):
    """True once a C-ECHO (echoscu) to 127.0.0.1:port succeeds."""
    def echo():
        status, _, _ = run_tool(["echoscu", "-aec", called, "-to", "2",
                                 "127.0.0.1", str(port)], env, 10)
        return status == 0
    return wait_until(echo, STARTUP_TIMEOUT_S, 0.2)


def storescp_files(folder):
    """storescp's files (+uf names end in a counter), oldest first."""
    names = [n for n in os.listdir(folder) if not n.startswith(".")]
    names.sort(key=lambda n: int(re.search(r"(\d+)$", n).group(1)))
    return [os.path.join(folder, n) for n in names]


def scenario_siren_to_storescp(checks, env, siren, work, corpus_root,
                               corpus, processes, state):
    """`siren send` sends both corpus folders to DCMTK storescp, which
    accepts every syntax it knows (+xa) and any SOP class (-pm) and writes
    what it receives bit for bit (+B). Proves: every file siren can read
    arrives, in sending order: in its own syntax byte for byte the
    original data set, re-encoded (storescp chose another syntax) element
    by element the original's content; the files left out or refused are
    the listed ones, for the listed reasons."""
    port = free_port()
    folder = os.path.join(work, "storescp-in")
    os.makedirs(folder)
    log_path = os.path.join(work, "storescp.log")
    process = processes.start(["storescp", "-v", "-aet", STORESCP_AET,
                               "+B", "+xa", "-pm", "+uf", "-od", folder,
                               str(port)], log_path, env=env)
    try:
        if not checks.expect(wait_for_echo(env, port, STORESCP_AET),
                             f"storescp did not answer C-ECHO on port "
                             f"{port} (log {log_path})"):
            return
        files = list(corpus.values())
        result = siren_send(siren, "SIRENSCU", STORESCP_AET, port,
                            [os.path.join(corpus_root, top)
                             for top in CORPUS_FOLDERS],
                            files_by_path(files))
        check_tool_output(checks, "siren send", result.exit_status,
                          result.stdout + result.stderr)
        stored = check_send_outcomes(checks, result, files,
                                     SIREN_SEND_NOT_SENT, STORESCP_REFUSALS,
                                     "storescp")
    finally:
        status = processes.stop(process)
    with open(log_path, encoding="latin-1") as log:
        storescp_log = log.read()
    for line in storescp_log.splitlines():
        if line.startswith(("E:", "F:")):
            checks.fail(f"storescp logged: {line}")
    checks.expect(status in (0, -signal.SIGTERM),
                  f"storescp exited with status {status}")
    check_arrivals(checks, stored, storescp_files(folder), "storescp", True)


# ---------------------------------------------------------------------------
# Scenario 4: siren send to Orthanc
# ---------------------------------------------------------------------------

class OrthancRest:
    """Orthanc's REST API on 127.0.0.1."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, raw=False):
        with urllib.request.urlopen(self.base + path, timeout=30) as answer:
            data = answer.read()
        return data if raw else json.loads(data)

    def post(self, path, body):
        request = urllib.request.Request(self.base + path,
                                         data=body.encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def system(self):
        try:
            return self.get("/system")
        except (OSError, ValueError):
            return None


def scenario_siren_to_orthanc(checks, env, siren, work, corpus_root,
                              corpus, processes, state):
    """A real Orthanc (temporary configuration, free loopback ports, no
    remote access, no authentication, no plugins) receives both corpus
    folders from `siren send --call ORTHANC`. Proves through Orthanc's REST
    API: every file siren send reports as stored is an instance of Orthanc
    (/tools/lookup by its SOP Instance UID; /instances/{id}/simplified-tags
    says that UID), Orthanc holds exactly as many instances as distinct
    (patient, study, series, instance) were stored (files of the corpus
    that share all four are one instance), and the file Orthanc keeps is,
    element by element, the first corpus file stored with those UIDs.
    The files left out or refused are the listed ones."""
    http_port, dicom_port = free_port(), free_port()
    while dicom_port == http_port:
        dicom_port = free_port()
    folder = os.path.join(work, "orthanc")
    os.makedirs(folder)
    config = {
        "Name": "siren-net-peers",
        "StorageDirectory": os.path.join(folder, "storage"),
        "IndexDirectory": os.path.join(folder, "index"),
        "HttpPort": http_port, "DicomPort": dicom_port,
        "DicomAet": ORTHANC_AET, "DicomCheckCalledAet": True,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "HttpServerEnabled": True, "DicomServerEnabled": True,
        "Plugins": [], "SaveJobs": False, "StorageCompression": False,
        "UnknownSopClassAccepted": True,
    }
    config_path = os.path.join(folder, "orthanc.json")
    with open(config_path, "w") as stream:
        json.dump(config, stream, indent=2)
    log_path = os.path.join(work, "orthanc.log")
    process = processes.start(["Orthanc", config_path], log_path, env=env)
    rest = OrthancRest(http_port)
    try:
        system = wait_until(lambda: process.poll() is None and
                            rest.system(), STARTUP_TIMEOUT_S, 0.2)
        if not checks.expect(system and system.get("DicomAet") ==
                             ORTHANC_AET, f"Orthanc did not start (log "
                                          f"{log_path})"):
            return
        files = list(corpus.values())
        result = siren_send(siren, "SIRENSCU", ORTHANC_AET, dicom_port,
                            [os.path.join(corpus_root, top)
                             for top in CORPUS_FOLDERS],
                            files_by_path(files))
        check_tool_output(checks, "siren send", result.exit_status,
                          result.stdout + result.stderr)
        stored = check_send_outcomes(checks, result, files,
                                     SIREN_SEND_NOT_SENT, ORTHANC_REFUSALS,
                                     "Orthanc")
        check_orthanc_holds(checks, rest, stored, folder)
    finally:
        status = processes.stop(process)
    checks.expect(status == 0, f"Orthanc exited with status {status} "
                               f"(log {log_path})")


def check_orthanc_holds(checks, rest, stored, folder):
    """The REST API checks of scenario_siren_to_orthanc."""
    first_file_of = {}   # Orthanc instance ID: the first file stored there
    for corpus_file in stored:
        uid = corpus_file.sop_instance
        matches = [m["ID"] for m in rest.post("/tools/lookup", uid)
                   if m.get("Type") == "Instance"]
        if not checks.expect(matches, f"{corpus_file.name}: Orthanc has no "
                                      f"instance with SOP Instance UID "
                                      f"{uid}"):
            continue
        for instance_id in matches:
            tags = rest.get(f"/instances/{instance_id}/simplified-tags")
            checks.expect(tags.get("SOPInstanceUID") == uid,
                          f"{corpus_file.name}: Orthanc's instance "
                          f"{instance_id} says SOP Instance UID "
                          f"{tags.get('SOPInstanceUID')}, expected {uid}")
        for instance_id in matches:
            if instance_id not in first_file_of and \
                    orthanc_key(corpus_file) == orthanc_key_of(
                        rest, instance_id):
                first_file_of[instance_id] = corpus_file
    instances = rest.get("/instances")
    keys = {orthanc_key(f) for f in stored}
    checks.expect(len(instances) == len(keys),
                  f"Orthanc holds {len(instances)} instances; {len(stored)} "
                  f"files were stored, {len(keys)} distinct (patient, "
                  f"study, series, instance)")
    checks.expect(set(instances) == set(first_file_of),
                  f"Orthanc's instances and the ones found by SOP Instance "
                  f"UID differ: {sorted(set(instances) ^ set(first_file_of))}")
    checks.count("Orthanc instances", len(instances))
    for instance_id, corpus_file in first_file_of.items():
        path = os.path.join(folder, instance_id + ".dcm")
        with open(path, "wb") as stream:
            stream.write(rest.get(f"/instances/{instance_id}/file", True))
        if compare_stored(checks, corpus_file, path, "kept by Orthanc"):
            checks.count("Orthanc's file == the original, element by "
                         "element")


def orthanc_key(corpus_file):
    """What makes an Orthanc instance: patient ID, study, series and
    instance UIDs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(corpus_file.path, force=True,
                                  stop_before_pixels=True)
    return (str(dataset.get("PatientID", "")),
            uid_value(dataset.get(0x0020000D)) or "",
            uid_value(dataset.get(0x0020000E)) or "",
            corpus_file.sop_instance)


def orthanc_key_of(rest, instance_id):
    tags = rest.get(f"/instances/{instance_id}/simplified-tags")
    return (tags.get("PatientID", ""), tags.get("StudyInstanceUID", ""),
            tags.get("SeriesInstanceUID", ""), tags.get("SOPInstanceUID"))


# ---------------------------------------------------------------------------
# Senders and what they sent (scenarios 5 and 6)
# ---------------------------------------------------------------------------

SIREN_SEND_RJ_WORDS = ("rejected the association", "transient",
                       "presentation provider", "local limit exceeded (2)")
DCMTK_RJ_WORDS = ("Association Rejected", "Rejected Transient",
                  "Service Provider (Presentation", "Local Limit Exceeded")


class Sender:
    """One SCU process (siren send or storescu) and the files it sends."""

    def __init__(self, kind, label, files):
        self.kind = kind      # "siren" or "storescu"
        self.label = label
        self.files = files    # CorpusFile objects, in sending order
        self.process = None
        self.log_path = None

    def command(self, siren, port):
        paths = [f.path for f in self.files]
        if self.kind == "siren":
            return [siren, "send", "--aet", self.label.upper()[:16],
                    "--call", SIREN_AET, "127.0.0.1", str(port), *paths]
        return ["storescu", "-v", "-R", "-nh", "-aet",
                self.label.upper()[:16], "-aec", SIREN_AET, "127.0.0.1",
                str(port), *paths]

    def start(self, processes, siren, port, work, env):
        self.log_path = os.path.join(work, self.label + ".log")
        self.process = processes.start(self.command(siren, port),
                                       self.log_path, env=env)

    def start_and_hold(self, processes, siren, server, work, env):
        """Starts the sender and stops it (SIGSTOP) as soon as siren has
        accepted its association, so that the association stays open
        until continue_() (the sender then goes on where it was). Returns
        False if siren did not accept it. Only for siren send: storescu
        does not survive it (a send(2) that the stop interrupts returns a
        short count, after which DCMTK writes a broken PDU: "TCP I/O
        Error ... writeDataPDU"; siren then rightly aborts)."""
        assert self.kind == "siren"
        before = server.log_text().count(" assoc.accepted ")
        self.start(processes, siren, server.port, work, env)
        accepted = wait_until(lambda: server.log_text().count(
            " assoc.accepted ") > before, STARTUP_TIMEOUT_S, 0.005)
        self.process.send_signal(signal.SIGSTOP)
        return bool(accepted)

    def start_paused(self, processes, siren, port, work, env):
        """Starts the sender and stops it at once, before it can have
        connected (it is still loading its dictionary and files), so that
        several can be let go at the same moment with continue_(). Safe
        for storescu, which has no socket yet."""
        self.start(processes, siren, port, work, env)
        self.process.send_signal(signal.SIGSTOP)

    def continue_(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def finish(self, processes, timeout_s=TOOL_TIMEOUT_S):
        """Waits for the process (killed after timeout_s); returns (exit
        status, output)."""
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        status = processes.stop(self.process)
        with open(self.log_path, encoding="latin-1") as log:
            return status, log.read()

    def check_success(self, checks, status, output):
        """Exit status 0 and Success for every file."""
        what = f"{self.label} ({self.kind})"
        check_tool_output(checks, what, status, output, self.log_path)
        if self.kind == "siren":
            expected = f"sent {len(self.files)}, with warnings 0, failed 0"
            successes = output.count(": status 0x0000, success")
        else:
            expected = "Received Store Response (Success)"
            successes = output.count(expected)
        return checks.expect(
            status == 0 and expected in output and
            successes == len(self.files),
            f"{what}: exit status {status}, {successes} of "
            f"{len(self.files)} files stored (log {self.log_path})")


def generated_files(gen_series, folder, ct_count, frames):
    """ct_count CT instances of 512 KiB, and a multi-frame instance of
    frames x 512 KiB if frames; as CorpusFile objects (multi-frame
    first)."""
    os.makedirs(folder, exist_ok=True)
    made = []
    if frames:
        path = os.path.join(folder, "multiframe.dcm")
        subprocess.run([gen_series, "multiframe", path, str(frames)],
                       check=True, capture_output=True)
        made.append(path)
    if ct_count:
        ct_folder = os.path.join(folder, "ct")
        subprocess.run([gen_series, "ct", ct_folder, str(ct_count)],
                       check=True, capture_output=True)
        made += [os.path.join(ct_folder, n)
                 for n in sorted(os.listdir(ct_folder))]
    return [CorpusFile(os.path.relpath(p, folder), p) for p in made]


def byte_for_byte_corpus_files(corpus):
    """Small corpus files that siren send sends byte for byte to siren
    serve (explicit VR little endian, which siren serve prefers, or a
    compressed syntax, which gets a context of its own) and siren serve
    stores: for senders whose files must arrive exactly as they are."""
    excluded = (set(SIREN_SEND_NOT_SENT) | set(SIREN_SEND_DICOMDIR) |
                set(SIREN_SCP_REFUSALS))
    return [f for f in corpus.values()
            if f.name not in excluded and f.sop_instance and
            (f.syntax == EXPLICIT_LE or f.encapsulated) and
            len(f.dataset) < (1 << 20)]


def check_arrivals_of_senders(checks, senders, arrivals):
    """The files in siren's folder are exactly the files the senders sent:
    siren send's byte for byte (the same multiset of data sets, each under
    its SOP instance), storescu's (DCMTK re-encodes sequence lengths)
    element by element, found by their SOP Instance UID (generated files
    have unique ones)."""
    expected = collections.defaultdict(list)  # data set hash: files
    by_uid = {}
    for sender in senders:
        for f in sender.files:
            if sender.kind == "siren":
                expected[hashlib.sha256(f.dataset).hexdigest()].append(f)
            else:
                by_uid[f.sop_instance] = f
    unmatched_uids = set(by_uid)
    for arrival in arrivals:
        _, _, sop_instance = meta_of(arrival)
        if sop_instance in by_uid:
            unmatched_uids.discard(sop_instance)
            if compare_stored(checks, by_uid[sop_instance], arrival,
                              "sent by storescu"):
                checks.count("storescu's files == their originals, "
                             "element by element")
            continue
        digest = hashlib.sha256(dataset_bytes(arrival)).hexdigest()
        if not checks.expect(expected.get(digest), f"{arrival}: stored, but "
                                                   f"no sender sent this "
                                                   f"data set"):
            continue
        original = expected[digest].pop()
        checks.expect(sop_instance == original.sop_instance,
                      f"{arrival}: SOP instance {sop_instance} in the meta, "
                      f"the data set is {original.name}'s "
                      f"({original.sop_instance})")
        checks.count("siren send's files == their originals, byte for byte")
    for files in expected.values():
        for f in files:
            checks.fail(f"{f.path}: sent by siren send, not stored")
    for uid in unmatched_uids:
        checks.fail(f"{by_uid[uid].path}: sent by storescu, not stored")


def open_associations(log_text):
    """The most associations siren had open at once, and the number open
    at each refusal, from its log (lines are written in event order)."""
    open_now = peak = 0
    at_refusals = []
    for line in log_text.splitlines():
        if " assoc.accepted " in line:
            open_now += 1
            peak = max(peak, open_now)
        elif " assoc.released " in line or " assoc.ended " in line:
            open_now -= 1
        elif " assoc.refused " in line:
            at_refusals.append(open_now)
    return peak, at_refusals


# ---------------------------------------------------------------------------
# Scenario 5: many associations at once
# ---------------------------------------------------------------------------

SIREN_SENDERS = 16
STORESCU_SENDERS = 6
LEAST_OPEN_AT_ONCE = 16


def scenario_concurrent_senders(checks, env, siren, work, corpus_root,
                                corpus, processes, state):
    """22 senders at once, 16 `siren send` and 6 `storescu`, to one
    `siren serve --max-associations 32`, each with a different mix: a
    generated multi-frame instance of 6, 8 or 10 frames (3 to 5 MiB), 1 to
    3 generated CT instances of 512 KiB, and for the siren senders a
    different handful of small corpus files. The siren senders are held
    (SIGSTOP) as soon as siren has accepted their associations; the
    storescu senders, started paused, are let go together; once siren has
    accepted theirs too (or they are done), the siren senders go on.
    Proves: every sender succeeds (exit status 0, Success for every file);
    siren accepted 22 associations, refused none, and had at least 16
    open at the same moment (by its log); what siren stored is exactly
    what was sent (see check_arrivals_of_senders)."""
    failures_before = len(checks.failures)
    small = byte_for_byte_corpus_files(corpus)
    senders = []
    for index in range(SIREN_SENDERS + STORESCU_SENDERS):
        kind = "siren" if index < SIREN_SENDERS else "storescu"
        label = f"sender{index:02d}"
        # The multi-frame instance goes first, so that no siren sender can
        # have finished before it is held.
        files = generated_files(state["gen_series"],
                                os.path.join(work, "generated", label),
                                1 + index % 3, (6, 8, 10)[index // 3 % 3])
        if kind == "siren":
            files += small[index::SIREN_SENDERS]
        senders.append(Sender(kind, label, files))
    server = SirenServer(checks, processes, siren, work, "concurrent",
                         "--max-associations", "32")
    state["concurrent_server"] = server
    logs = os.path.join(work, "concurrent-senders")
    os.makedirs(logs)
    siren_senders = senders[:SIREN_SENDERS]
    storescu_senders = senders[SIREN_SENDERS:]
    try:
        for sender in storescu_senders:
            sender.start_paused(processes, siren, server.port, logs, env)
        for sender in siren_senders:
            checks.expect(sender.start_and_hold(processes, siren, server,
                                                logs, env),
                          f"{sender.label}: siren did not accept it")
        for sender in storescu_senders:
            sender.continue_()
        wait_until(lambda: server.log_text().count(" assoc.accepted ") >=
                   len(senders) or all(s.process.poll() is not None
                                       for s in storescu_senders),
                   STARTUP_TIMEOUT_S, 0.005)
    finally:
        for sender in senders:
            if sender.process:
                sender.continue_()
    for sender in senders:
        sender.check_success(checks, *sender.finish(processes))
    total = sum(len(s.files) for s in senders)
    megabytes = sum(len(f.dataset) for s in senders for f in s.files) / 2**20
    log = server.log_text()
    peak, refusals = open_associations(log)
    accepted = log.count(" assoc.accepted ")
    checks.expect(accepted == len(senders) and not refusals,
                  f"siren accepted {accepted} associations and refused "
                  f"{len(refusals)}; expected {len(senders)} and none")
    checks.expect(peak >= LEAST_OPEN_AT_ONCE,
                  f"at most {peak} associations were open at once, "
                  f"expected at least {LEAST_OPEN_AT_ONCE}")
    checks.count("senders", len(senders))
    checks.count("most associations open at once", peak)
    checks.count("files sent", total)
    checks.count("megabytes sent", round(megabytes))
    arrivals = server.take_arrivals(os.path.join(work, "concurrent"))
    checks.expect(len(arrivals) == total, f"{len(arrivals)} files stored, "
                                          f"{total} sent")
    check_arrivals_of_senders(checks, senders, arrivals)
    if len(checks.failures) == failures_before:
        remove_large_files(work, "concurrent")


def remove_large_files(work, arrivals):
    """After a scenario passed: its generated files and what siren stored
    (hundreds of MiB) go; logs stay."""
    shutil.rmtree(os.path.join(work, "generated"), ignore_errors=True)
    shutil.rmtree(os.path.join(work, arrivals), ignore_errors=True)


# ---------------------------------------------------------------------------
# Scenario 6: more senders than --max-associations
# ---------------------------------------------------------------------------

MAX_ASSOCIATIONS = 4


def scenario_association_limit(checks, env, siren, work, corpus_root,
                               corpus, processes, state):
    """`siren serve --max-associations 4`: 4 siren send senders (each with
    an 8 MiB multi-frame and a CT instance) hold the 4 associations (each is held with SIGSTOP once siren has accepted
    it, so that the slots stay taken: Sender.start_and_hold), then 6 more peers try at once: 2
    siren send, 2 storescu, echoscu and siren echo. Proves: each extra one
    gets A-ASSOCIATE-RJ transient, service provider (presentation), local
    limit exceeded, reported as such by DCMTK and by siren, and siren logs
    6 assoc.refused while 4 associations are open; nothing of theirs is
    stored; then the 4 holders, continued, complete, and their files
    arrive intact."""
    failures_before = len(checks.failures)
    server = SirenServer(checks, processes, siren, work, "limit",
                         "--max-associations", str(MAX_ASSOCIATIONS))
    state["limit_server"] = server
    logs = os.path.join(work, "limit-senders")
    os.makedirs(logs)
    holders = []
    for index in range(MAX_ASSOCIATIONS):
        label = f"holder{index}"
        holders.append(Sender("siren", label, generated_files(
            state["gen_series"], os.path.join(work, "generated", label),
            1, 16)))
    try:
        for holder in holders:
            if not checks.expect(holder.start_and_hold(processes, siren,
                                                       server, logs, env),
                                 f"{holder.label}: siren did not accept "
                                 f"it"):
                return
        small = byte_for_byte_corpus_files(corpus)[:3]
        extras = [Sender("siren", "extra-siren0", small[:1]),
                  Sender("siren", "extra-siren1", small[1:3]),
                  Sender("storescu", "extra-scu0", small[:1]),
                  Sender("storescu", "extra-scu1", small[1:2])]
        for extra in extras:
            extra.start(processes, siren, server.port, logs, env)
        echo_commands = {
            "echoscu": ["echoscu", "-v", "-aec", SIREN_AET, "127.0.0.1",
                        str(server.port)],
            "siren echo": [siren, "echo", "--call", SIREN_AET, "127.0.0.1",
                           str(server.port)],
        }
        echo_results = {name: run_tool(command, env)
                        for name, command in echo_commands.items()}
        for extra in extras:
            status, output = extra.finish(processes)
            check_refused(checks, f"{extra.label} ({extra.kind})",
                          extra.kind == "siren", status, output)
        for name, (status, out, err) in echo_results.items():
            check_refused(checks, name, name.startswith("siren"), status,
                          out + err)
        log = server.log_text()
        _, open_at_refusals = open_associations(log)
        checks.expect(open_at_refusals == [MAX_ASSOCIATIONS] * 6,
                      f"siren's refusals came with {open_at_refusals} "
                      f"associations open, expected 6 refusals with "
                      f"{MAX_ASSOCIATIONS} open")
        checks.expect(log.count(f'reason="more than {MAX_ASSOCIATIONS} '
                                f'associations"') == 6,
                      "siren did not log 6 refusals for 'more than "
                      f"{MAX_ASSOCIATIONS} associations'")
    finally:
        for holder in holders:
            if holder.process:
                holder.continue_()
    for holder in holders:
        holder.check_success(checks, *holder.finish(processes))
    arrivals = server.take_arrivals(os.path.join(work, "limit"))
    check_arrivals_of_senders(checks, holders, arrivals)
    checks.count("peers refused", 6)
    checks.count("holders completed", len(holders))
    if len(checks.failures) == failures_before:
        remove_large_files(work, "limit")


def check_refused(checks, what, is_siren, status, output):
    """A peer that must have been refused for the association limit."""
    check_tool_output(checks, what, status, output)
    words = SIREN_SEND_RJ_WORDS if is_siren else DCMTK_RJ_WORDS
    missing = [w for w in words if w not in output]
    checks.expect(status not in (0, None) and not missing,
                  f"{what}: expected A-ASSOCIATE-RJ (local limit exceeded): "
                  f"exit status {status}, missing {missing} in: "
                  f"{output.strip()[-400:]}")


# ---------------------------------------------------------------------------
# Scenario 7: AE titles
# ---------------------------------------------------------------------------

GOOD_CALLING = "GOODSCU"


def scenario_ae_title_checks(checks, env, siren, work, corpus_root, corpus,
                             processes, state):
    """`siren serve --aet SIREN --allow-calling GOODSCU`. Proves: a calling
    AE title not in the list is rejected (A-ASSOCIATE-RJ permanent,
    service user, calling AE title not recognized) and a called AE title
    other than ours likewise (called AE title not recognized), as echoscu,
    storescu, siren echo and siren send report them (exit status and
    words); the allowed pair gets C-ECHO Success from both echo tools;
    nothing is stored for the rejected senders; siren logs each
    rejection."""
    server = SirenServer(checks, processes, siren, work, "aetitles",
                         "--allow-calling", GOOD_CALLING)
    state["aetitles_server"] = server
    port = str(server.port)
    sample = byte_for_byte_corpus_files(corpus)[0].path
    calling_words = {"dcmtk": ("Association Rejected", "Rejected Permanent",
                               "Service User",
                               "Calling AE Title Not Recognized"),
                     "siren": ("rejected the association", "permanent",
                               "service user",
                               "calling AE title not recognized (3)")}
    called_words = {"dcmtk": ("Association Rejected", "Rejected Permanent",
                              "Service User",
                              "Called AE Title Not Recognized"),
                    "siren": ("rejected the association", "permanent",
                              "service user",
                              "called AE title not recognized (7)")}
    cases = [
        ("echoscu, calling BADSCU", "dcmtk", calling_words,
         ["echoscu", "-v", "-aet", "BADSCU", "-aec", SIREN_AET]),
        ("echoscu, called WRONGAE", "dcmtk", called_words,
         ["echoscu", "-v", "-aet", GOOD_CALLING, "-aec", "WRONGAE"]),
        ("storescu, calling BADSCU", "dcmtk", calling_words,
         ["storescu", "-v", "-aet", "BADSCU", "-aec", SIREN_AET]),
        ("storescu, called WRONGAE", "dcmtk", called_words,
         ["storescu", "-v", "-aet", GOOD_CALLING, "-aec", "WRONGAE"]),
        ("siren echo, calling BADSCU", "siren", calling_words,
         [siren, "echo", "--aet", "BADSCU", "--call", SIREN_AET]),
        ("siren echo, called WRONGAE", "siren", called_words,
         [siren, "echo", "--aet", GOOD_CALLING, "--call", "WRONGAE"]),
        ("siren send, calling BADSCU", "siren", calling_words,
         [siren, "send", "--aet", "BADSCU", "--call", SIREN_AET]),
        ("siren send, called WRONGAE", "siren", called_words,
         [siren, "send", "--aet", GOOD_CALLING, "--call", "WRONGAE"]),
    ]
    for what, family, words_by_family, command in cases:
        command = command + ["127.0.0.1", port]
        if "storescu" in command[0] or command[1:2] == ["send"]:
            command.append(sample)
        status, out, err = run_tool(command, env)
        check_tool_output(checks, what, status, out + err)
        words = words_by_family[family]
        missing = [w for w in words if w not in out + err]
        checks.expect(status not in (0, None) and not missing,
                      f"{what}: expected a rejection, got exit status "
                      f"{status}, missing {missing} in: "
                      f"{(out + err).strip()[-400:]}")
    for what, command in (
            ("echoscu, allowed", ["echoscu", "-v", "-aet", GOOD_CALLING,
                                  "-aec", SIREN_AET]),
            ("siren echo, allowed", [siren, "echo", "--aet", GOOD_CALLING,
                                     "--call", SIREN_AET])):
        status, out, err = run_tool(command + ["127.0.0.1", port], env)
        checks.expect(status == 0 and ("Received Echo Response (Success)"
                                       in err or "status 0x0000" in out),
                      f"{what}: exit status {status}: "
                      f"{(out + err).strip()[-300:]}")
    checks.expect(not server.arrivals(), "siren stored files of a rejected "
                                         "association")
    rejections = server.log_lines("assoc.failed")
    calling = sum("calling AE title not recognized" in l for l in rejections)
    called = sum("called AE title not recognized" in l for l in rejections)
    checks.expect(calling == 4 and called == 4,
                  f"siren logged {calling} calling and {called} called AE "
                  f"title rejections, expected 4 and 4")
    checks.count("rejections checked", len(cases))


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

SCENARIOS = [
    ("storescu_to_siren", scenario_storescu_to_siren),
    ("siren_scp_refusals", scenario_siren_scp_refusals),
    ("siren_to_storescp", scenario_siren_to_storescp),
    ("siren_to_orthanc", scenario_siren_to_orthanc),
    ("concurrent_senders", scenario_concurrent_senders),
    ("association_limit", scenario_association_limit),
    ("ae_title_checks", scenario_ae_title_checks),
]


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True, help="build/gateway/siren")
    parser.add_argument("--gen-series", required=True,
                        help="build/tests/gen_series")
    parser.add_argument("--data", required=True,
                        help="pydicom's data folder (test_files, "
                             "charset_files)")
    parser.add_argument("--work", required=True,
                        help="a scratch folder (emptied first)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only this scenario (repeatable)")
    return parser.parse_args()


def missing_prerequisites(args):
    """What the test needs and does not find."""
    missing = []
    for path in (args.siren, args.gen_series):
        if not os.access(path, os.X_OK):
            missing.append(f"{path} (not an executable)")
    for tool in ("echoscu", "storescu", "storescp", "Orthanc"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (Debian packages dcmtk, orthanc)")
    for top in CORPUS_FOLDERS:
        if not os.path.isdir(os.path.join(args.data, top)):
            missing.append(f"{os.path.join(args.data, top)} (Debian package "
                           f"python3-pydicom)")
    return missing


def stop_on_signal(signo, frame):
    """SIGTERM/SIGINT: unwind, so that the peers started are stopped."""
    raise SystemExit(f"net_peers: stopped by signal {signo}")


def main():
    args = parse_arguments()
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    # The corpus has invalid values on purpose; pydicom warns about them.
    warnings.filterwarnings("ignore", module="pydicom")
    missing = missing_prerequisites(args)
    if missing:
        print("net_peers: cannot run, missing:\n  " + "\n  ".join(missing))
        return 2
    siren = os.path.abspath(args.siren)
    gen_series = os.path.abspath(args.gen_series)
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    checks = Checks()
    processes = Processes()
    env = dcmtk_environment()
    state = {"gen_series": gen_series}
    started = time.monotonic()
    corpus = {}
    try:
        corpus_root, corpus = stage_corpus(args.data, work)
        for name, scenario in SCENARIOS:
            if args.only and name not in args.only:
                continue
            checks.scenario = name
            print(f"== {name}", flush=True)
            scenario_started = time.monotonic()
            try:
                scenario(checks, env, siren, work, corpus_root, corpus,
                         processes, state)
            except Exception as error:  # report and go on with the next
                traceback.print_exc()
                checks.fail(f"the scenario itself failed: "
                            f"{type(error).__name__}: {error}")
            finally:
                for key in [k for k in state if k.endswith("_server")]:
                    state.pop(key).stop()
            checks.counts[f"{name}: seconds"] = round(
                time.monotonic() - scenario_started, 1)
    finally:
        processes.stop_all()
    print_summary(checks, len(corpus), time.monotonic() - started)
    return 1 if checks.failures else 0


def print_summary(checks, corpus_count, seconds):
    print(f"\n== summary ({corpus_count} corpus files, {seconds:.1f} s)")
    for what, number in sorted(checks.counts.items()):
        print(f"  {what}: {number}")
    if checks.tolerated:
        print("  differences tolerated in element by element comparisons:")
        for what, number in sorted(checks.tolerated.items()):
            print(f"    {what}: {number}")
    for scenario, files in checks.refusals.items():
        print(f"  corpus files not sent or not stored in {scenario} (each "
              f"checked to fail so):")
        by_reason = collections.defaultdict(list)
        for name, reasons in files.items():
            for reason, places in reasons.items():
                where = ", ".join(p for p in places if p)
                by_reason[(reason, where)].append(name)
        for (reason, where), names in sorted(by_reason.items()):
            print(f"    {reason}" + (f" [{where}]" if where else "") +
                  f": {len(names)} file(s)")
            for name in sorted(names):
                print(f"      {name}")
    if checks.failures:
        print(f"\n{len(checks.failures)} FAILED checks:")
        for failure in checks.failures:
            print(f"  {failure}")
    else:
        print("\nall checks passed")


if __name__ == "__main__":
    sys.exit(main())
