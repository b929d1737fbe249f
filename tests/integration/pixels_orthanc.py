#!/usr/bin/python3
"""pixels_orthanc.py - the gateway's pixel stage end to end: `siren serve`
with compress and redact lines between DCMTK `storescu +tls` and a real
Orthanc (with its GDCM plugin, so that it renders JPEG 2000).

Two sites send the same synthetic instances (pydicom + numpy, a bright
rectangle planted where the redact line applies): site A's policy says
"on compression-failure quarantine", site B's "keep-original". Checks,
on the files Orthanc returns, decoded by GDCM (`gdcmconv --raw`), an
independent decoder:

  - each instance is stored in the transfer syntax its compress line
    names (8-bit mono JPEG-LS lossless, 12-bit JPEG-LS near-lossless,
    16-bit signed CT JPEG 2000 lossless, 12-bit JPEG 2000 at ratio 10,
    12-bit HTJ2K lossless, 8-bit HTJ2K lossy, RGB JPEG Baseline,
    multi-frame RLE, redaction only: native Explicit VR Little Endian)
    and Orthanc renders its first frame; HTJ2K only if Orthanc accepts
    it: Debian 12's Orthanc 1.10.1 (DCMTK 3.6.7) refuses HTJ2K
    presentation contexts, so the forwarder sends a decoded copy,
    native, which must hold the same samples (an Orthanc that takes
    HTJ2K stores it as it is, checked through OpenJPH's ojph_expand);
  - lossless results equal the originals bit for bit outside the redact
    rectangle, and the rectangle is black (0, the lowest signed value,
    the highest MONOCHROME1 value) on every frame;
  - the lossy results are within a PSNR bound (JPEG-LS near-lossless:
    no sample off by more than its NEAR), have Lossy Image Compression
    01 with the codec's method and the ratio (10:1 for "ratio 10", the
    pixel data as stored), a new SOP Instance UID that its Source
    Image Sequence links to its predecessor, and the derivation code;
  - a 32-bit image that JPEG Baseline cannot carry is quarantined for
    site A (a reason naming the failure) and arrives unchanged, native,
    for site B; the audit trail has an instance.pixels event for each,
    and /metrics counts them.

Usage:
  /usr/bin/python3 pixels_orthanc.py --siren build/gateway/siren \\
      --pki-script tests/integration/pki.py --work /tmp/pixels_orthanc

Exit status: 0 every check passed, 1 a check failed, 2 the test could not
run (a missing tool). About 20 s.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import warnings

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import codec_roundtrip
import service_e2e
import tls_orthanc
from tls_orthanc import Checks, Processes, wait_until

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
GDCM_PLUGIN = "/usr/share/orthanc/plugins/libOrthancGdcm.so"
RECT = (10, 5, 30, 8)  # x, y, width, height: the redact line's
JPEG_LS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K = "1.2.840.10008.1.2.4.203"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
RLE = "1.2.840.10008.1.2.5"
PSNR_MIN_DB = 30.0

POLICY = """
policy "pixels-{name}" version 1
  profile basic
  key file "{key}"
  redact rectangle {x} {y} {w} {h} if Manufacturer == "ACME"
  compress to jpeg-ls-lossless if Modality == MR
  compress to jpeg-ls-near-lossless error 2 if Modality == MG
  compress to jpeg2000-lossless if Modality == CT
  compress to jpeg2000 ratio 10 if Modality == CR
  compress to htj2k-lossless if Modality == NM
  compress to htj2k psnr 45 if Modality == PT
  compress to jpeg quality 90 if Modality in (US, OT)
  compress to rle if Modality == XA
  on compression-failure {failure}
  verify lossless on
end
"""

CONFIG = """
aet "SIREN"
spool "{spool}"
processors 2
tls
  port "0"
  certificate "{pki}/server-chain.pem"
  key "{pki}/server.key"
  sites-ca "{pki}/ca-bundle.pem"
end
site "site-a"
  certificate "cn:site-a.example.org"
  aet "SITEA"
  policy "quarantine.policy"
end
site "site-b"
  certificate "cn:site-b.example.org"
  aet "SITEB"
  policy "keep.policy"
end
plain
  port "0"
  allow-calling "LOCAL"
  policy "quarantine.policy"
end
archive
  host "127.0.0.1"
  port "{archive_port}"
  aet "{archive_aet}"
end
audit
  file "{audit}"
end
metrics
  port "{metrics_port}"
end
"""


# ---------------------------------------------------------------------------
# instances
# ---------------------------------------------------------------------------


class Image:
    """One synthetic instance: its pixels (frames, rows, columns[, 3]) as
    sent, what the gateway should make of it, and the file."""

    def __init__(self, name, modality, pixels, bits_stored, signed=False,
                 photometric="MONOCHROME2", redact=False, expect_ts=None,
                 lossy=None):
        self.name, self.modality, self.pixels = name, modality, pixels
        self.bits_stored, self.signed = bits_stored, signed
        self.photometric, self.redact = photometric, redact
        # lossy: None, or {"method": Lossy Image Compression Method,
        # "psnr" or "near": the bound, "ratio": the asked ratio}
        self.expect_ts, self.lossy = expect_ts, lossy
        self.uids = {}

    def write(self, path, site):
        frames, rows, columns = self.pixels.shape[:3]
        ds = Dataset()
        ds.SOPClassUID = CT_IMAGE if self.modality == "CT" else \
            SECONDARY_CAPTURE
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.PatientName = "Pixel^Test"
        ds.PatientID = f"PIX-{self.name}"
        ds.Modality = self.modality
        ds.Manufacturer = "ACME" if self.redact else "OTHER"
        ds.BurnedInAnnotation = "YES" if self.redact else "NO"
        ds.Rows, ds.Columns = rows, columns
        color = self.pixels.ndim == 4
        ds.SamplesPerPixel = 3 if color else 1
        if color:
            ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = self.photometric
        allocated = self.pixels.dtype.itemsize * 8
        ds.BitsAllocated = allocated
        ds.BitsStored = self.bits_stored
        ds.HighBit = self.bits_stored - 1
        ds.PixelRepresentation = 1 if self.signed else 0
        if frames > 1:
            ds.NumberOfFrames = frames
        if self.modality == "CT":
            ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
            ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.PixelData = self.pixels.astype(self.pixels.dtype.newbyteorder(
            "<")).tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=False)
        self.uids[site] = str(ds.SOPInstanceUID)

    def black(self):
        if self.photometric == "MONOCHROME1":
            return (1 << (self.bits_stored - (1 if self.signed else 0))) - 1
        return -(1 << (self.bits_stored - 1)) if self.signed else 0

    def expected(self):
        """The pixels the archive should hold for a lossless target."""
        pixels = self.pixels.copy()
        if self.redact:
            x, y, w, h = RECT
            pixels[:, y:y + h, x:x + w] = self.black()
        return pixels


def plant(pixels, value):
    """A bright rectangle where the redact line applies (burned-in text)."""
    x, y, w, h = RECT
    pixels[:, y:y + h, x:x + w] = value
    return pixels


def make_images():
    rng = np.random.default_rng(7)
    rows, columns = 48, 64
    yy, xx = np.mgrid[0:rows, 0:columns]
    mono8 = (xx * 3 + yy * 2).astype(np.uint8)[None]
    ct = (rng.integers(-1024, 3000, (1, rows, columns))).astype(np.int16)
    gradient = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=-1)
    rgb = np.clip(gradient, 0, 255).astype(np.uint8)[None]
    frames = np.stack([((xx + 7 * f) % 200).astype(np.uint8)
                       for f in range(3)])
    mono1 = (rng.integers(0, 4096, (1, rows, columns))).astype(np.uint16)
    wide = (rng.integers(0, 1 << 31, (1, 16, 16))).astype(np.uint32)
    # 12-bit images with texture: a smooth field plus noise
    y2, x2 = np.mgrid[0:128, 0:128]
    field = 1800 + 900 * np.sin(x2 / 11.0) * np.cos(y2 / 17.0)
    mono12 = np.clip(field + rng.normal(0, 40, field.shape), 0,
                     4095).astype(np.uint16)[None]
    return [
        Image("mono8", "MR", plant(mono8, 255), 8, redact=True,
              expect_ts=JPEG_LS),
        Image("near", "MG", mono12.copy(), 12, expect_ts=JPEG_LS_NEAR,
              lossy={"method": "ISO_14495_1", "near": 2}),
        Image("ct16", "CT", plant(ct, 3000), 16, signed=True, redact=True,
              expect_ts=J2K_LOSSLESS),
        Image("j2k10", "CR", mono12.copy(), 12, expect_ts=J2K,
              lossy={"method": "ISO_15444_1", "psnr": 30.0, "ratio": 10}),
        Image("ht12", "NM", plant(mono12.copy(), 4095), 12, redact=True,
              expect_ts=HTJ2K_LOSSLESS),
        Image("ht8", "PT", mono8.copy(), 8, expect_ts=HTJ2K,
              lossy={"method": "ISO_15444_15", "psnr": 40.0}),
        Image("rgb", "US", rgb, 8, photometric="RGB",
              expect_ts=JPEG_BASELINE,
              lossy={"method": "ISO_10918_1", "psnr": PSNR_MIN_DB}),
        Image("frames", "XA", plant(frames, 250), 8, redact=True,
              expect_ts=RLE),
        Image("mono1", "DX", plant(mono1, 0), 12, photometric="MONOCHROME1",
              redact=True, expect_ts=ExplicitVRLittleEndian),
        Image("wide", "OT", wide, 32, expect_ts=None),
    ]


# ---------------------------------------------------------------------------
# checks on what Orthanc holds
# ---------------------------------------------------------------------------


def decoded(ctx, content, name):
    """(dataset, pixels as (frames, rows, columns[, 3])) of a file from
    Orthanc, decoded by GDCM."""
    source = os.path.join(ctx["work"], f"{name}.orthanc.dcm")
    raw = os.path.join(ctx["work"], f"{name}.raw.dcm")
    with open(source, "wb") as stream:
        stream.write(content)
    if pydicom.dcmread(source, stop_before_pixels=True).file_meta \
            .TransferSyntaxUID in (HTJ2K_LOSSLESS, HTJ2K):
        info, values = codec_roundtrip.htj2k_reference(source, ctx["work"],
                                                       name)
        pixels = values if info["samples"] == 3 else values[..., 0]
        return pydicom.dcmread(source), pixels
    subprocess.run(["gdcmconv", "--raw", source, raw], check=True,
                   capture_output=True, timeout=60)
    ds = pydicom.dcmread(raw)
    pixels = ds.pixel_array
    if ds.PhotometricInterpretation.startswith("YBR_FULL"):
        from pydicom.pixel_data_handlers.util import convert_color_space
        pixels = convert_color_space(pixels, ds.PhotometricInterpretation,
                                     "RGB")
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames == 1:
        pixels = pixels[None]
    return pydicom.dcmread(source), pixels


def psnr(a, b, peak):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def check_stored(checks, ctx, image, site):
    archive = ctx["archive"]
    what = f"{site} {image.name}"
    found = [i for i, o in ctx["origin"].items() if o == (site, image.name)]
    checks.expect(len(found) == 1, f"{what}: {len(found)} in Orthanc")
    if len(found) != 1:
        return
    found = found[0]
    syntax = archive.get(f"/instances/{found}/metadata/TransferSyntax")
    accepted = [image.expect_ts]
    if image.expect_ts in (HTJ2K_LOSSLESS, HTJ2K):
        accepted.append(ExplicitVRLittleEndian)   # the decoded copy
    checks.expect(syntax in accepted,
                  f"{what}: stored as {syntax}, expected {accepted}")
    status, preview = archive.request(
        "GET", f"/instances/{found}/frames/0/preview", raw=True)
    checks.expect(status == 200 and preview[:4] == b"\x89PNG",
                  f"{what}: Orthanc does not render it (HTTP {status})")
    content = archive.get(f"/instances/{found}/file", raw=True)
    ds, pixels = decoded(ctx, content, f"{site}-{image.name}")
    if image.lossy:
        check_lossy(checks, what, image, ds, pixels)
        source = ds.get("SourceImageSequence")
        predecessor = source[0].ReferencedSOPInstanceUID if source else None
        checks.expect(predecessor and predecessor != ds.SOPInstanceUID and
                      ds.SOPInstanceUID != image.uids[site],
                      f"{what}: SOP Instance UID {ds.SOPInstanceUID} not "
                      f"new (predecessor {predecessor})")
        return
    expected = image.expected()
    checks.expect(pixels.shape == expected.shape and
                  np.array_equal(pixels, expected),
                  f"{what}: pixels differ from the original "
                  f"({int(np.sum(pixels != expected)) if pixels.shape == expected.shape else pixels.shape} samples)")
    checks.expect(ds.get("LossyImageCompression") != "01",
                  f"{what}: marked lossy")
    if image.redact:
        x, y, w, h = RECT
        checks.expect(np.all(pixels[:, y:y + h, x:x + w] == image.black()),
                      f"{what}: the rectangle is not blank")
        checks.expect(ds.get("BurnedInAnnotation") == "NO",
                      f"{what}: BurnedInAnnotation "
                      f"{ds.get('BurnedInAnnotation')}")


def check_lossy(checks, what, image, ds, pixels):
    """The error bound and the attributes of a lossy result."""
    bound = image.lossy
    if "near" in bound:
        worst = int(np.max(np.abs(pixels.astype(np.int64) -
                                  image.pixels.astype(np.int64))))
        checks.expect(worst <= bound["near"],
                      f"{what}: a sample is off by {worst} > "
                      f"{bound['near']}")
    else:
        value = psnr(pixels, image.pixels, (1 << image.bits_stored) - 1)
        checks.expect(value >= bound["psnr"],
                      f"{what}: PSNR {value:.1f} dB < {bound['psnr']}")
    checks.expect(ds.get("LossyImageCompression") == "01",
                  f"{what}: LossyImageCompression "
                  f"{ds.get('LossyImageCompression')}")
    method = ds.get("LossyImageCompressionMethod")
    ratio = ds.get("LossyImageCompressionRatio")
    checks.expect(method == bound["method"] and ratio and float(ratio) > 1,
                  f"{what}: method {method} ratio {ratio}")
    if "ratio" in bound and ratio:
        # OpenJPEG's rate control ends at or a little past the ratio
        # (11:1 for 10:1 on this small image); 13.3:1 was the bug of
        # counting 12 stored bits instead of 16 allocated.
        checks.expect(0.95 * bound["ratio"] <= float(ratio) <=
                      1.2 * bound["ratio"],
                      f"{what}: ratio {ratio}, asked {bound['ratio']}")
    codes = ds.get("DerivationCodeSequence")
    checks.expect(codes and codes[-1].CodeValue == "113040",
                  f"{what}: no Lossy Compression derivation code")


def send_all(checks, ctx, gateway, images, site, aet):
    paths = []
    for image in images:
        path = os.path.join(ctx["work"], f"{site}-{image.name}.dcm")
        image.write(path, site)
        paths.append(path)
    statuses = service_e2e.storescu(ctx, gateway.tls_port, aet, paths, site)
    checks.expect(statuses == ["Success"] * len(paths),
                  f"{site}: statuses {statuses}")


def wait_for(archive, count):
    return wait_until(lambda: len(archive.instances()) >= count, 60, 0.2)


def audit_events(ctx):
    with open(ctx["audit"]) as stream:
        return [json.loads(line) for line in stream if line.strip()]


def scenario(checks, ctx):
    archive = ctx["archive"]
    gateway = service_e2e.Gateway(ctx, "serve")
    ctx["origin"] = {}
    images = make_images()
    delivered = [i for i in images if i.expect_ts]
    for site, aet, expected in (("site-a", "SITEA", delivered),
                                ("site-b", "SITEB", images)):
        before = archive.instances()
        send_all(checks, ctx, gateway, images, site, aet)
        total = len(before) + len(expected)
        checks.expect(wait_for(archive, total),
                      f"{site}: {len(archive.instances()) - len(before)} of "
                      f"{len(expected)} instances in Orthanc")
        time.sleep(1.0)  # nothing more arrives
        new = archive.instances() - before
        checks.expect(len(new) == len(expected),
                      f"{site}: {len(new)} new instances, expected "
                      f"{len(expected)}")
        for instance in new:
            tags = archive.get(f"/instances/{instance}/simplified-tags")
            for image in images:
                if image.modality == tags.get("Modality"):
                    ctx["origin"][instance] = (site, image.name)
        for image in expected:
            if image.name == "wide":
                continue
            check_stored(checks, ctx, image, site)
    wide_b = [i for i, o in ctx["origin"].items() if o == ("site-b", "wide")]
    if wide_b:
        syntax = archive.get(f"/instances/{wide_b[0]}/metadata/"
                             "TransferSyntax")
        content = archive.get(f"/instances/{wide_b[0]}/file", raw=True)
        ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(content))
        wide = images[-1].pixels
        checks.expect(syntax == ExplicitVRLittleEndian and
                      np.array_equal(ds.pixel_array, wide[0]),
                      f"site-b wide: kept as {syntax}, pixels "
                      f"{'equal' if np.array_equal(ds.pixel_array, wide[0]) else 'differ'}")
    else:
        checks.fail("site-b wide: not kept in its received syntax")
    quarantine = os.path.join(ctx["spool"], "quarantine")
    reasons = []
    for name in os.listdir(quarantine):
        if name.endswith(".reason"):
            with open(os.path.join(quarantine, name)) as stream:
                reasons.append(stream.read())
    checks.expect(len(reasons) == 1 and "compression failed" in reasons[0],
                  f"site-a wide: quarantine reasons {reasons}")
    metrics = urllib.request.urlopen(
        f"http://127.0.0.1:{ctx['metrics_port']}/metrics", timeout=10
    ).read().decode()
    for line in ('siren_pixels_instances_total{action="compressed"} 16',
                 'siren_pixels_instances_total{action="redacted"} 2',
                 'siren_pixels_instances_total{action="kept"} 1',
                 'siren_pixels_instances_total{action="failed"} 1',
                 "siren_pixels_redacted_total 10"):
        checks.expect(line in metrics, f"/metrics lacks {line!r}")
    status = gateway.stop()
    checks.expect(status == 0, f"siren serve exited with {status}")
    events = [e for e in audit_events(ctx) if e["event"] == "instance.pixels"]
    actions = sorted(e["action"] for e in events)
    checks.expect(actions == sorted(["compressed"] * 16 + ["redacted"] * 2 +
                                    ["kept", "failed"]),
                  f"audit: pixel actions {actions}")
    for event in events:
        if event["action"] == "compressed" and event.get("lossy") == "no":
            checks.expect(event.get("verify") == "passed",
                          f"audit: lossless without verify: {event}")
        if event["action"] in ("kept", "failed"):
            checks.expect(event.get("codec") == "jpeg" and
                          "reason" in event, f"audit: {event}")
    with open(gateway.log_path, encoding="latin-1") as stream:
        report = tls_orthanc.sanitizer_report(stream.read())
    checks.expect(not report, f"serve: {report}")


def write_setup(ctx, key):
    work, pki = ctx["work"], ctx["pki"]
    for name, failure in (("quarantine", "quarantine"),
                          ("keep", "keep-original")):
        x, y, w, h = RECT
        with open(os.path.join(work, f"{name}.policy"), "w") as stream:
            stream.write(POLICY.format(name=name, key=key, x=x, y=y, w=w,
                                       h=h, failure=failure))
    config = os.path.join(work, "siren.conf")
    with open(config, "w") as stream:
        stream.write(CONFIG.format(
            spool=ctx["spool"], pki=pki.dir, audit=ctx["audit"],
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
    missing = [t for t in ("Orthanc", "storescu", "openssl", "gdcmconv",
                           "ojph_expand")
               if shutil.which(t) is None]
    if missing or not os.path.exists(GDCM_PLUGIN):
        print(f"pixels_orthanc: cannot run, missing "
              f"{missing or [GDCM_PLUGIN]}")
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
            extra_config={"Plugins": [GDCM_PLUGIN]})
        ctx["archive"].wait_started()
        ctx["config"] = write_setup(ctx, key)
        ctx["env"] = dict(os.environ)
        checks.scenario = "pixels"
        scenario(checks, ctx)
        ctx["archive"].stop()

    return tls_orthanc.run_reported(checks, processes, started, body)


if __name__ == "__main__":
    sys.exit(main())
