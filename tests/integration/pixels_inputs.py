#!/usr/bin/python3
"""pixels_inputs.py - redaction on compressed inputs, end to end: the
same kinds of synthetic images (8-bit and 12-in-16-bit monochrome, 8-bit
RGB, 256x256, a bright "burned-in" block where the redact line applies),
encoded by independent tools (DCMTK `dcmcjpls`, `dcmcjpeg` Baseline,
Extended 12-bit and Lossless SV1, `dcmcrle`; GDCM `gdcmconv --j2k`) and
sent through `siren serve -c` over TLS (DCMTK `storescu +tls`, one
association per syntax) to a real Orthanc, with pixels_orthanc.py's
harness and configuration.

Two sites, two policies with the same redact lines:
  - site-a, no compress line: a lossless input leaves in its received
    syntax when the gateway encodes it, else native (JPEG Lossless); a
    JPEG Baseline or Extended input leaves native, never re-encoded lossy;
    "on compression-failure quarantine";
  - site-b, compress lines to another lossless syntax (JPEG-LS -> JPEG
    2000, JPEG 2000 -> JPEG-LS, RLE -> JPEG 2000, JPEG and raw ->
    JPEG-LS); "on compression-failure keep-original".

For each instance Orthanc stores, decoded by GDCM (`gdcmconv --raw`):
the transfer syntax is the one the policy implies; every rectangle is
the black value on every frame; every other sample equals the input as
an independent decoder reads it (GDCM; for the lossy JPEG inputs DCMTK's
dcmdjpeg, which for monochrome must agree with GDCM), bit for bit, since
the gateway decodes the same stream and writes it losslessly; Burned In
Annotation is NO; Lossy Image Compression is 01 (method ISO_10918_1)
exactly for the results of lossy JPEG inputs, also when the sender did
not say so. Also: 3-frame JPEG-LS and RLE inputs, a rectangle partly
outside the image (clipped), and MPEG2 pixel data with garbage fragments
(a syntax this build does not decode): quarantined at both sites when a
redact line applies (keep-original too), forwarded unchanged when none
does.

Usage:
  /usr/bin/python3 pixels_inputs.py --siren build/gateway/siren \\
      --pki-script tests/integration/pki.py --work /tmp/pixels_inputs

Exit status: 0 every check passed, 1 a check failed, 2 the test could not
run (a missing tool). About 20 s.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import pixels_orthanc
import service_e2e
import tls_orthanc
from pixels_orthanc import JPEG_BASELINE, JPEG_LS, J2K_LOSSLESS, RLE
from tls_orthanc import Checks, Processes

MPEG2 = "1.2.840.10008.1.2.4.100"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
SIZE = 256
RECT = (40, 20, 96, 24)        # x, y, width, height: every ACME image
CLIPPED = (230, 240, 60, 40)   # half outside a 256x256 image
TOOLS = ["Orthanc", "storescu", "openssl", "gdcmconv", "dcmcjpls",
         "dcmcjpeg", "dcmcrle", "dcmdjpeg"]

POLICY = """
policy "pixels-inputs-{name}" version 1
  profile basic
  key file "{key}"
  redact rectangle {rect} if Manufacturer == "ACME"
  redact rectangle {clipped} if Manufacturer == "ACME" \\
      and ManufacturerModelName == "CLIP"
{compress}  on compression-failure {failure}
  verify lossless on
end
"""

# site-b's lines, by the Modality each input kind is sent with.
COMPRESS = """  compress to jpeg2000-lossless if Modality in (MR, XA)
  compress to jpeg-ls-lossless if Modality in (CT, OT)
"""
MODALITY = {"raw": "OT", "jpeg": "OT", "jpeg-12": "OT", "jpeg-lossless": "OT",
            "jpeg-ls": "MR", "j2k": "CT", "rle": "XA", "mpeg2": "OT"}
RECEIVED_TS = {"raw": ExplicitVRLittleEndian, "jpeg": JPEG_BASELINE,
               "jpeg-12": JPEG_EXTENDED, "jpeg-lossless": JPEG_LOSSLESS_SV1,
               "jpeg-ls": JPEG_LS, "j2k": J2K_LOSSLESS, "rle": RLE,
               "mpeg2": MPEG2}
# Inputs whose history is lossy (DCT), and those that leave site-a
# native: JPEG processes this build decodes but does not encode.
LOSSY_KINDS = ("jpeg", "jpeg-12")
NATIVE_KINDS = ("raw", "jpeg", "jpeg-12", "jpeg-lossless")
# storescu's option that proposes the syntax in a context of its own (in
# one context with Explicit VR Little Endian, which the gateway prefers,
# storescu would decompress the file itself).
PROPOSE = {"raw": [], "jpeg": ["-xy"], "jpeg-12": ["-xx"],
           "jpeg-lossless": ["-xs"], "jpeg-ls": ["-xt"], "j2k": ["-xv"],
           "rle": ["-xr"], "mpeg2": ["-xm"]}
ENCODER = {"jpeg": ["dcmcjpeg", "+eb"], "jpeg-12": ["dcmcjpeg", "+ee"],
           "jpeg-lossless": ["dcmcjpeg", "+e1"], "jpeg-ls": ["dcmcjpls"],
           "j2k": ["gdcmconv", "--j2k"], "rle": ["dcmcrle"]}


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------


def mono8(frames):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    rng = np.random.default_rng(11)
    return np.stack([((xx + 2 * yy + 9 * f) % 200 +
                      rng.integers(0, 40, (SIZE, SIZE))).astype(np.uint8)
                     for f in range(frames)])


def mono12(frames):
    """12 bits stored in 16 (GDCM does not decode multi-frame signed
    16-bit data, so the 3-frame inputs are unsigned)."""
    rng = np.random.default_rng(12)
    return rng.integers(0, 3500, (frames, SIZE, SIZE)).astype(np.uint16)


def ct16(frames):
    rng = np.random.default_rng(16)
    return rng.integers(-1024, 3000, (frames, SIZE, SIZE)).astype(np.int16)


def rgb8(frames):
    """Colour as an ultrasound sends it: dcmcjpeg stores it YBR_FULL_422,
    which the gateway decodes to RGB."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    rng = np.random.default_rng(24)
    planes = np.stack([xx, yy, (xx + yy) // 2], axis=-1)
    return np.stack([np.clip(planes + rng.integers(0, 40, planes.shape),
                             0, 255).astype(np.uint8)
                     for _ in range(frames)])


def plant(pixels, rects, value):
    """Bright blocks where the rectangles are (burned-in text)."""
    pixels = pixels.copy()
    for x, y, w, h in rects:
        pixels[:, y:y + h, x:x + w] = value
    return pixels


class Case:
    """One input: its pixels, the syntax it is sent in, its rectangles,
    and at which sites it is sent (index: its Instance Number)."""

    def __init__(self, index, name, kind, pixels, bits_stored,
                 rects=(RECT,), sites=("site-a", "site-b"), unmarked=False):
        self.index, self.name, self.kind = index, name, kind
        self.unmarked = unmarked  # JPEG without dcmcjpeg's lossy marks
        self.bits_stored, self.rects, self.sites = bits_stored, rects, sites
        self.signed = pixels.dtype.kind == "i"
        bright = (1 << (bits_stored - (1 if self.signed else 0))) - 1
        self.pixels = plant(pixels, rects, bright) if rects else pixels
        self.reference = None  # the input as GDCM decodes it

    def black(self):
        return -(1 << (self.bits_stored - 1)) if self.signed else 0

    def expected_ts(self, site):
        """None: quarantined."""
        if self.kind == "mpeg2":
            return None if self.rects else MPEG2
        if site == "site-b":
            return J2K_LOSSLESS if MODALITY[self.kind] in ("MR", "XA") \
                else JPEG_LS
        return ExplicitVRLittleEndian if self.kind in NATIVE_KINDS else \
            RECEIVED_TS[self.kind]

    def dataset(self, site):
        frames, rows, columns = self.pixels.shape[:3]
        color = self.pixels.ndim == 4
        ds = Dataset()
        ds.SOPClassUID = pixels_orthanc.SECONDARY_CAPTURE
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.PatientName = "Inputs^Test"
        ds.PatientID = f"INP-{self.name}"
        ds.Modality = MODALITY[self.kind]
        ds.InstanceNumber = self.number(site)
        ds.Manufacturer = "ACME" if self.rects else "OTHER"
        ds.ManufacturerModelName = "CLIP" if CLIPPED in self.rects else "M1"
        ds.BurnedInAnnotation = "YES" if self.rects else "NO"
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel = 3 if color else 1
        if color:
            ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = "RGB" if color else "MONOCHROME2"
        ds.BitsAllocated = self.pixels.dtype.itemsize * 8
        ds.BitsStored = self.bits_stored
        ds.HighBit = self.bits_stored - 1
        ds.PixelRepresentation = 1 if self.signed else 0
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.PixelData = self.pixels.astype(
            self.pixels.dtype.newbyteorder("<")).tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.is_little_endian, ds.is_implicit_VR = True, False
        return ds

    def number(self, site):
        return self.index + (100 if site == "site-b" else 0)

    def write(self, path, site):
        """The input file, encoded by an independent tool."""
        ds = self.dataset(site)
        if self.kind == "mpeg2":
            mpeg2(ds)
        raw = path + ".native.dcm" if self.kind in ENCODER else path
        ds.save_as(raw, write_like_original=False)
        if self.kind in ENCODER:
            subprocess.run(ENCODER[self.kind] + [raw, path], check=True,
                           capture_output=True, timeout=60)
        if self.unmarked:
            unmark(path)
        syntax = pydicom.dcmread(path, stop_before_pixels=True) \
            .file_meta.TransferSyntaxUID
        if syntax != RECEIVED_TS[self.kind]:
            raise RuntimeError(f"{path}: encoded as {syntax}, not "
                               f"{RECEIVED_TS[self.kind]}")


def unmark(path):
    """Removes what dcmcjpeg wrote about its lossy step: a sender whose
    JPEG Baseline images do not say they are lossy (the gateway must)."""
    ds = pydicom.dcmread(path)
    for keyword in ("LossyImageCompression", "LossyImageCompressionRatio",
                    "LossyImageCompressionMethod", "DerivationDescription",
                    "DerivationCodeSequence"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.save_as(path, write_like_original=False)


def mpeg2(ds):
    """MPEG2 MP@ML pixel data that is no MPEG2 stream: fragments of
    bytes that no decoder of this build (it has none for MPEG2) reads.
    The image attributes stay MONOCHROME2 (MPEG2's own YBR_PARTIAL_420
    would be refused before the syntax is even looked at)."""
    rng = np.random.default_rng(2)
    fragments = [b"\x00\x00\x01\xb3" + rng.bytes(1000), rng.bytes(600)]
    ds.PixelData = encapsulate([b"".join(fragments)])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = MPEG2
    ds.is_little_endian, ds.is_implicit_VR = True, False


def make_cases():
    return [
        Case(1, "raw8", "raw", mono8(1), 8),
        Case(2, "jpeg8", "jpeg", mono8(1), 8),
        Case(12, "jpeg8-unmarked", "jpeg", mono8(1), 8, unmarked=True),
        Case(13, "jpeg-rgb", "jpeg", rgb8(1), 8),
        Case(14, "jpeg12", "jpeg-12", mono12(1), 12),
        Case(15, "jpeg-lossless12", "jpeg-lossless", mono12(1), 12),
        Case(3, "jls8", "jpeg-ls", mono8(1), 8),
        Case(4, "jls12x3", "jpeg-ls", mono12(3), 12),
        Case(5, "j2k8", "j2k", mono8(1), 8),
        Case(6, "j2k16", "j2k", ct16(1), 16),
        Case(7, "rle8x3", "rle", mono8(3), 8),
        Case(8, "rle12x3", "rle", mono12(3), 12),
        Case(9, "clipped", "jpeg-ls", mono8(1), 8, rects=(RECT, CLIPPED)),
        Case(10, "mpeg2", "mpeg2", mono8(1), 8),
        Case(11, "mpeg2-plain", "mpeg2", mono8(1), 8, rects=(),
             sites=("site-a",)),
    ]


def reference(ctx, case, path):
    """The input's pixels as GDCM decodes them; a JPEG input's as DCMTK's
    dcmdjpeg decodes them (to RGB for colour: GDCM leaves YBR_FULL, which
    pydicom's floating-point conversion rounds differently), which for
    monochrome must agree with GDCM."""
    with open(path, "rb") as stream:
        _, pixels = pixels_orthanc.decoded(ctx, stream.read(),
                                           f"input-{case.name}")
    if case.kind in LOSSY_KINDS:
        dcmtk = path + ".dcmdjpeg.dcm"
        subprocess.run(["dcmdjpeg", path, dcmtk], check=True,
                       capture_output=True, timeout=60)
        decoded = pydicom.dcmread(dcmtk).pixel_array[None]
        if case.pixels.ndim == 4:
            return decoded
        if not np.array_equal(decoded, pixels):
            raise RuntimeError("GDCM and DCMTK decode the JPEG input "
                               "differently")
    elif not np.array_equal(pixels, case.pixels):
        raise RuntimeError(f"{case.name}: the lossless input does not "
                           "decode to the original")
    return pixels


# ---------------------------------------------------------------------------
# checks on what Orthanc holds
# ---------------------------------------------------------------------------


def rect_mask(case):
    mask = np.zeros(case.pixels.shape[1:3], dtype=bool)
    for x, y, w, h in case.rects:
        mask[y:y + h, x:x + w] = True  # numpy clips what lies outside
    return mask


def check_stored(checks, ctx, case, site, instance):
    archive = ctx["archive"]
    what = f"{site} {case.name}"
    syntax = archive.get(f"/instances/{instance}/metadata/TransferSyntax")
    checks.expect(syntax == case.expected_ts(site),
                  f"{what}: stored as {syntax}, expected "
                  f"{case.expected_ts(site)}")
    content = archive.get(f"/instances/{instance}/file", raw=True)
    if case.kind == "mpeg2":
        ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(content))
        sent = pydicom.dcmread(case.sent[site])
        checks.expect(ds.PixelData == sent.PixelData,
                      f"{what}: MPEG2 pixel data changed")
        return
    ds, pixels = pixels_orthanc.decoded(ctx, content, f"{site}-{case.name}")
    if pixels.shape != case.reference.shape:
        checks.fail(f"{what}: shape {pixels.shape}, sent "
                    f"{case.reference.shape}")
        return
    mask = rect_mask(case)
    inside, outside = pixels[:, mask], pixels[:, ~mask]
    not_black = int(np.sum(inside != case.black()))
    checks.expect(not_black == 0,
                  f"{what}: {not_black} samples of the rectangles are not "
                  f"{case.black()} (values {np.unique(inside)[:8]})")
    changed = int(np.sum(outside != case.reference[:, ~mask]))
    checks.expect(changed == 0,
                  f"{what}: {changed} samples outside the rectangles differ "
                  f"from the decoded input")
    photometric = "RGB" if case.pixels.ndim == 4 else "MONOCHROME2"
    checks.expect(ds.PhotometricInterpretation == photometric,
                  f"{what}: Photometric Interpretation "
                  f"{ds.PhotometricInterpretation}, expected {photometric}")
    checks.expect(ds.get("BurnedInAnnotation") == "NO",
                  f"{what}: BurnedInAnnotation {ds.get('BurnedInAnnotation')}")
    lossy = ds.get("LossyImageCompression")
    if case.kind in LOSSY_KINDS:
        method = ds.get("LossyImageCompressionMethod")
        methods = list(method) if isinstance(method, pydicom.multival.
                                             MultiValue) else [method]
        checks.expect(lossy == "01" and "ISO_10918_1" in methods,
                      f"{what}: LossyImageCompression {lossy}, method "
                      f"{method} after a JPEG Baseline input")
    else:
        checks.expect(lossy != "01", f"{what}: marked lossy")
    status, preview = archive.request(
        "GET", f"/instances/{instance}/frames/0/preview", raw=True)
    checks.expect(status == 200 and preview[:4] == b"\x89PNG",
                  f"{what}: Orthanc does not render it (HTTP {status})")


def quarantine_reasons(ctx):
    quarantine = os.path.join(ctx["spool"], "quarantine")
    reasons = []
    for name in sorted(os.listdir(quarantine)):
        if name.endswith(".reason"):
            with open(os.path.join(quarantine, name)) as stream:
                reasons.append(stream.read())
    return reasons


def send_all(checks, ctx, gateway, cases, site, aet):
    """One storescu association per input syntax, over TLS with the
    site's certificate (service_e2e.storescu's command, plus -R and the
    syntax's proposal)."""
    pki = ctx["pki"]
    for kind, option in PROPOSE.items():
        paths = []
        for case in (c for c in cases if c.kind == kind):
            path = os.path.join(ctx["work"], f"{site}-{case.name}.dcm")
            case.write(path, site)
            case.sent[site] = path
            paths.append(path)
        if not paths:
            continue
        done = subprocess.run(
            ["storescu", "-v", "-R", *option, "-aet", aet, "-aec", "SIREN",
             "+tls", pki.path(f"{site}.key"), pki.path(f"{site}-chain.pem"),
             "+cf", pki.path("ca-bundle.pem"), "127.0.0.1",
             gateway.tls_port, *paths],
            capture_output=True, text=True, timeout=60)
        statuses = re.findall(r"Received Store Response \(([^)]*)\)",
                              done.stdout + done.stderr)
        checks.expect(statuses == ["Success"] * len(paths),
                      f"{site} {kind}: statuses {statuses}")


def scenario(checks, ctx):
    archive = ctx["archive"]
    gateway = service_e2e.Gateway(ctx, "serve")
    cases = make_cases()
    for case in cases:
        case.sent = {}
    for site, aet in (("site-a", "SITEA"), ("site-b", "SITEB")):
        sent = [c for c in cases if site in c.sites]
        before = archive.instances()
        send_all(checks, ctx, gateway, sent, site, aet)
        for case in sent:
            if case.reference is None and case.kind != "mpeg2":
                case.reference = reference(ctx, case, case.sent[site])
        delivered = [c for c in sent if c.expected_ts(site)]
        checks.expect(pixels_orthanc.wait_for(archive,
                                              len(before) + len(delivered)),
                      f"{site}: {len(archive.instances()) - len(before)} of "
                      f"{len(delivered)} instances in Orthanc")
        time.sleep(1.0)  # nothing more arrives
        stored = {}
        for instance in archive.instances() - before:
            tags = archive.get(f"/instances/{instance}/simplified-tags")
            stored.setdefault(int(tags.get("InstanceNumber", 0)),
                              []).append(instance)
        for case in sent:
            found = stored.get(case.number(site), [])
            expect = 1 if case.expected_ts(site) else 0
            checks.expect(len(found) == expect,
                          f"{site} {case.name}: {len(found)} in Orthanc, "
                          f"expected {expect}")
            if len(found) == 1 and expect == 1:
                check_stored(checks, ctx, case, site, found[0])
    reasons = quarantine_reasons(ctx)
    checks.expect(len(reasons) == 2 and
                  all("redaction failed" in r and MPEG2 in r
                      for r in reasons),
                  f"mpeg2: quarantine reasons {reasons}")
    status = gateway.stop()
    checks.expect(status == 0, f"siren serve exited with {status}")
    events = [e for e in pixels_orthanc.audit_events(ctx)
              if e["event"] == "instance.pixels"]
    actions = sorted(e["action"] for e in events)
    # site-a: 13 redacted (mpeg2-plain has no line), site-b: 13 compressed
    # (the rectangles blanked and re-encoded), the MPEG2 twice failed.
    expected = sorted(["redacted"] * 13 + ["compressed"] * 13 +
                      ["failed"] * 2)
    checks.expect(actions == expected, f"audit: pixel actions {actions}")
    with open(gateway.log_path, encoding="latin-1") as stream:
        report = tls_orthanc.sanitizer_report(stream.read())
    checks.expect(not report, f"serve: {report}")


def write_setup(ctx, key):
    work = ctx["work"]
    rect = " ".join(map(str, RECT))
    clipped = " ".join(map(str, CLIPPED))
    # pixels_orthanc's configuration: site-a reads quarantine.policy,
    # site-b keep.policy.
    for name, compress, failure in (("quarantine", "", "quarantine"),
                                    ("keep", COMPRESS, "keep-original")):
        with open(os.path.join(work, f"{name}.policy"), "w") as stream:
            stream.write(POLICY.format(name=name, key=key, rect=rect,
                                       clipped=clipped, compress=compress,
                                       failure=failure))
    config = os.path.join(work, "siren.conf")
    with open(config, "w") as stream:
        stream.write(pixels_orthanc.CONFIG.format(
            spool=ctx["spool"], pki=ctx["pki"].dir, audit=ctx["audit"],
            archive_port=ctx["archive"].dicom_port,
            archive_aet=tls_orthanc.ORTHANC_AET,
            metrics_port=ctx["metrics_port"]))
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True)
    parser.add_argument("--pki-script", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="pydicom")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing or not os.path.exists(pixels_orthanc.GDCM_PLUGIN):
        print(f"pixels_inputs: cannot run, missing "
              f"{missing or [pixels_orthanc.GDCM_PLUGIN]}")
        return 2
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    checks, processes = Checks(), Processes()
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(1))
    started = time.monotonic()
    ctx = {"siren": os.path.abspath(args.siren), "work": work,
           "processes": processes, "spool": os.path.join(work, "spool"),
           "audit": os.path.join(work, "audit.jsonl"),
           "metrics_port": tls_orthanc.free_port()}

    def body():
        checks.scenario = "setup"
        ctx["pki"] = tls_orthanc.Pki(os.path.abspath(args.pki_script), work)
        key = os.path.join(work, "pseudonym.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(os.urandom(32).hex())
        ctx["archive"] = tls_orthanc.Orthanc(
            checks, processes, work, "orthanc",
            extra_config={"Plugins": [pixels_orthanc.GDCM_PLUGIN]})
        ctx["archive"].wait_started()
        ctx["config"] = write_setup(ctx, key)
        ctx["env"] = dict(os.environ)
        checks.scenario = "inputs"
        scenario(checks, ctx)
        ctx["archive"].stop()

    return tls_orthanc.run_reported(checks, processes, started, body)


if __name__ == "__main__":
    sys.exit(main())
