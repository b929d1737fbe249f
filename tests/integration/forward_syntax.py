#!/usr/bin/python3
"""forward_syntax.py - `siren forward` and compressed transfer syntaxes,
against two real Orthancs: one that accepts every syntax, and one whose
DICOM server accepts only Implicit and Explicit VR Little Endian
("AcceptedTransferSyntaxes", Orthanc 1.9.0 and later).

The instances are synthetic (pydicom, numpy; preview.py's make_image),
compressed by tests/tools codec_tool:

  ct-jpegls   16-bit signed CT, JPEG-LS Lossless (.80)
  rgb-j2k     8-bit RGB secondary capture, JPEG 2000 Lossless (.90),
              stored as YBR_RCT
  mf-rle      3-frame 8-bit secondary capture, RLE Lossless (.5)
  rgb-jpeg    8-bit RGB, JPEG Baseline (.50, lossy: Lossy Image
              Compression 01)

Scenarios:

  1. as_is        the Orthanc that accepts everything: each instance
                  stored in its own syntax, its Pixel Data bytes those of
                  the file sent; no forward.decoded line.
  2. decoded      the native-only Orthanc: each stored in Explicit VR
                  Little Endian, lossless ones with exactly the samples
                  of the native original (every frame), RGB from YBR_RCT
                  with Photometric Interpretation RGB, the JPEG one with
                  the samples codec_tool decodes and Lossy Image
                  Compression still 01; a forward.decoded line and
                  decoded_from= on forward.delivered for each; no hidden
                  decoded copy left in outgoing.
  3. undecodable  to the native-only Orthanc: a JPEG-LS file whose
                  codestream is cut in half, and an MPEG2 video (a
                  syntax this build cannot decode): both in FAILED with
                  a reason that says why, nothing stored, the good
                  instances sent with them delivered.

Usage:
  /usr/bin/python3 forward_syntax.py --siren build/gateway/siren \\
      --codec-tool build/tests/codec_tool --work /tmp/forward-syntax

Exit status: 0 every check passed, 1 a check failed, 2 the test could not
run. About 15 s.
"""

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy
import pydicom
import pydicom.encaps
from pydicom.uid import generate_uid

import tls_orthanc
from forward_orthanc import Forwarder, Spool, check_run
from preview import make_image
from tls_orthanc import Checks, Processes

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SC_MULTIFRAME_BYTE = "1.2.840.10008.5.1.4.1.1.7.2"
VIDEO_ENDOSCOPIC = "1.2.840.10008.5.1.4.1.1.77.1.1.1"
MPEG2 = "1.2.840.10008.1.2.4.100"

SYNTAXES = {"ct-jpegls": "1.2.840.10008.1.2.4.80",
            "rgb-j2k": "1.2.840.10008.1.2.4.90",
            "mf-rle": "1.2.840.10008.1.2.5",
            "rgb-jpeg": "1.2.840.10008.1.2.4.50"}


class Instance:
    """A compressed file, the native file it came from, and what a
    decoder must give for it (the native samples, or codec_tool's
    decoding for the lossy one)."""

    def __init__(self, name, native, compressed, expected):
        self.name = name
        self.native = native
        self.compressed = compressed
        self.expected = expected
        self.uid = str(pydicom.dcmread(compressed).SOPInstanceUID)
        self.syntax = str(pydicom.dcmread(compressed).file_meta
                          .TransferSyntaxUID)


def run(command):
    done = subprocess.run(command, capture_output=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.decode()}")
    return done


def new_uid(path):
    """Gives the file at path a new SOP Instance UID (each archive gets
    instances of its own)."""
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = \
        generate_uid()
    ds.save_as(path, write_like_original=False)


def make_instances(ctx, tag):
    folder = os.path.join(ctx["work"], "images", tag)
    os.makedirs(folder)
    natives = {}
    rows, cols = 64, 70
    ct = ((numpy.arange(rows)[:, None] * 131 + numpy.arange(cols) * 17) %
          3000 - 1024).astype(numpy.int16)
    natives["ct-jpegls"] = make_image(
        os.path.join(folder, "ct.dcm"), ct[None], signed=True,
        bits_stored=16, sop_class=CT_IMAGE, Modality="CT",
        RescaleSlope="1", RescaleIntercept="0")
    r = (numpy.arange(48)[:, None] * 5 + numpy.zeros(50, int)) % 256
    g = (numpy.zeros(48, int)[:, None] + numpy.arange(50) * 5) % 256
    rgb = numpy.stack([r, g, (r * g) % 256], axis=-1).astype(numpy.uint8)
    natives["rgb-j2k"] = make_image(os.path.join(folder, "rgb.dcm"),
                                    rgb[None], photometric="RGB")
    natives["rgb-jpeg"] = make_image(os.path.join(folder, "rgb2.dcm"),
                                     rgb[None], photometric="RGB")
    frames = numpy.stack([(numpy.arange(40)[:, None] * (f + 1) +
                           numpy.arange(30)) % 256 for f in range(3)]
                         ).astype(numpy.uint8)
    natives["mf-rle"] = make_image(os.path.join(folder, "mf.dcm"), frames,
                                   sop_class=SC_MULTIFRAME_BYTE)
    instances = []
    for name, native in natives.items():
        compressed = os.path.join(folder, f"{name}.dcm")
        run([ctx["codec_tool"], "encode", SYNTAXES[name], native,
             compressed])
        new_uid(compressed)
        if name == "rgb-jpeg":
            raw = compressed + ".raw"
            run([ctx["codec_tool"], "decode", compressed, raw])
            expected = numpy.fromfile(raw, numpy.uint8).reshape(rgb.shape)
        else:
            expected = pydicom.dcmread(native).pixel_array
        instances.append(Instance(name, native, compressed, expected))
    return instances


def corrupt_jpegls(ctx, instance):
    """The JPEG-LS file with its codestream cut in half."""
    ds = pydicom.dcmread(instance.compressed)
    frame = next(pydicom.encaps.generate_pixel_data_frame(ds.PixelData))
    ds.PixelData = pydicom.encaps.encapsulate([frame[:len(frame) // 2]])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = \
        generate_uid()
    path = os.path.join(ctx["work"], "images", "cut-jpegls.dcm")
    ds.save_as(path, write_like_original=False)
    return path, str(ds.SOPInstanceUID)


def mpeg2_video(ctx):
    """A video instance in MPEG2: a syntax this build does not decode."""
    folder = os.path.join(ctx["work"], "images")
    path = make_image(os.path.join(folder, "video-native.dcm"),
                      numpy.zeros((1, 16, 16, 3), numpy.uint8),
                      photometric="RGB", sop_class=VIDEO_ENDOSCOPIC,
                      Modality="ES")
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "YBR_PARTIAL_420"
    ds.PixelData = pydicom.encaps.encapsulate([b"\0\0\1\xb3" + b"\0" * 60])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = MPEG2
    ds.is_little_endian, ds.is_implicit_VR = True, False
    target = os.path.join(folder, "video-mpeg2.dcm")
    ds.save_as(target, write_like_original=False)
    return target, str(ds.SOPInstanceUID)


def stored(archive, uid):
    """(transfer syntax Orthanc stored, its file as a pydicom dataset), or
    None when Orthanc does not hold the instance."""
    ids = archive.lookup(uid)
    if len(ids) != 1:
        return None
    syntax = archive.get(f"/instances/{ids[0]}/metadata/TransferSyntax",
                         raw=True).decode()
    data = archive.get(f"/instances/{ids[0]}/file", raw=True)
    return syntax, pydicom.dcmread(io.BytesIO(data))


def forward(ctx, name, archive, paths):
    spool = Spool(ctx["work"], name)
    names = spool.stage(paths)
    forwarder = Forwarder(ctx, name, spool, archive.dicom_port)
    return spool, names, forwarder, forwarder.wait()


def scenario_as_is(checks, ctx):
    """Every syntax accepted: each instance goes and is stored as it is."""
    archive = ctx["any"]
    instances = make_instances(ctx, "as_is")
    spool, _, forwarder, status = forward(ctx, "as_is", archive,
                                          [i.compressed for i in instances])
    check_run(checks, "siren forward (as is)", forwarder, status, 0)
    for instance in instances:
        got = stored(archive, instance.uid)
        if not checks.expect(got is not None, f"{instance.name}: not in "
                                              f"Orthanc"):
            continue
        syntax, ds = got
        sent = pydicom.dcmread(instance.compressed)
        checks.expect(syntax == instance.syntax, f"{instance.name}: stored "
                      f"in {syntax}, sent in {instance.syntax}")
        checks.expect(ds.PixelData == sent.PixelData, f"{instance.name}: "
                      f"the stored Pixel Data is not the bytes sent")
    checks.expect(not forwarder.events("forward.decoded"),
                  "an archive that takes every syntax got decoded data")
    checks.expect(not os.listdir(spool.outgoing), f"outgoing holds "
                  f"{os.listdir(spool.outgoing)}")


def scenario_decoded(checks, ctx):
    """Only native syntaxes accepted: each goes decoded, bit-exact."""
    archive = ctx["native"]
    instances = make_instances(ctx, "decoded")
    spool, names, forwarder, status = forward(
        ctx, "decoded", archive, [i.compressed for i in instances])
    check_run(checks, "siren forward (decoded)", forwarder, status, 0)
    for instance, name in zip(instances, names):
        got = stored(archive, instance.uid)
        if not checks.expect(got is not None, f"{instance.name}: not in "
                                              f"the native-only Orthanc"):
            continue
        syntax, ds = got
        checks.expect(syntax in (EXPLICIT_LE, IMPLICIT_LE),
                      f"{instance.name}: stored in {syntax}")
        pixels = ds.pixel_array
        checks.expect(pixels.shape == instance.expected.shape and
                      numpy.array_equal(pixels, instance.expected),
                      f"{instance.name}: the stored samples differ from "
                      f"the original ({pixels.shape} vs "
                      f"{instance.expected.shape})")
        if instance.name.startswith("rgb"):
            checks.expect(ds.PhotometricInterpretation == "RGB",
                          f"{instance.name}: stored as "
                          f"{ds.PhotometricInterpretation}")
        if instance.name == "rgb-jpeg":
            checks.expect(ds.get("LossyImageCompression") == "01",
                          "the decoded JPEG lost Lossy Image Compression 01")
        decoded = [line for line in forwarder.events("forward.decoded")
                   if f"file={name}" in line]
        checks.expect(len(decoded) == 1 and f"from={instance.syntax}" in
                      decoded[0], f"{instance.name}: forward.decoded lines "
                      f"{decoded}")
        delivered = [line for line in forwarder.events("forward.delivered")
                     if f"file={name}" in line]
        checks.expect(len(delivered) == 1 and
                      f"decoded_from={instance.syntax}" in delivered[0],
                      f"{instance.name}: forward.delivered {delivered}")
    checks.expect(not os.listdir(spool.outgoing), f"outgoing holds "
                  f"{os.listdir(spool.outgoing)} (a decoded copy left?)")
    checks.count("instances decoded for the native-only archive",
                  len(forwarder.events("forward.decoded")))


def scenario_undecodable(checks, ctx):
    """What cannot be decoded for a native-only archive fails for good."""
    archive = ctx["native"]
    good = make_instances(ctx, "undecodable")[:1]
    cut, cut_uid = corrupt_jpegls(ctx, good[0])
    video, video_uid = mpeg2_video(ctx)
    spool, names, forwarder, status = forward(
        ctx, "undecodable", archive, [good[0].compressed, cut, video])
    check_run(checks, "siren forward (undecodable)", forwarder, status, 1)
    checks.expect(stored(archive, good[0].uid) is not None,
                  "the good instance sent with them was not delivered")
    for name, uid, words in ((names[1], cut_uid, "cannot be decoded"),
                             (names[2], video_uid, "cannot decode MPEG2")):
        checks.expect(stored(archive, uid) is None, f"{uid} was stored")
        reason_path = os.path.join(spool.failed, name + ".reason")
        reason = open(reason_path).read() if os.path.isfile(reason_path) \
            else ""
        checks.expect(os.path.isfile(os.path.join(spool.failed, name)) and
                      words in reason and "native syntax" in reason,
                      f"{name}: FAILED holds {spool.failed_files()}, "
                      f"reason {reason!r}")
    checks.expect(not os.listdir(spool.outgoing), f"outgoing holds "
                  f"{os.listdir(spool.outgoing)}")


SCENARIOS = [scenario_as_is, scenario_decoded, scenario_undecodable]


def stop_on_signal(number, _frame):
    raise KeyboardInterrupt(f"signal {number}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True)
    parser.add_argument("--codec-tool", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop_on_signal)
    warnings.filterwarnings("ignore", module="pydicom")
    if shutil.which("Orthanc") is None:
        print("forward_syntax: cannot run: Orthanc is missing (orthanc)")
        return 2
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    checks, processes = Checks(), Processes()
    started = time.monotonic()
    ctx = {"siren": os.path.abspath(args.siren),
           "codec_tool": os.path.abspath(args.codec_tool), "work": work,
           "processes": processes}

    def body():
        checks.scenario = "setup"
        ctx["any"] = tls_orthanc.Orthanc(checks, processes, work,
                                         "orthanc-any")
        ctx["native"] = tls_orthanc.Orthanc(
            checks, processes, work, "orthanc-native", extra_config={
                "AcceptedTransferSyntaxes": [IMPLICIT_LE, EXPLICIT_LE]})
        for key in ("any", "native"):
            ctx[key].wait_started()
        tls_orthanc.run_scenarios(
            checks, ctx, [(s.__name__[len("scenario_"):], s)
                          for s in SCENARIOS])
        checks.scenario = "teardown"
        for key in ("any", "native"):
            ctx.pop(key).stop()

    return tls_orthanc.run_reported(
        checks, processes, started, body,
        lambda seconds: tls_orthanc.print_summary(checks, ctx, seconds))


if __name__ == "__main__":
    sys.exit(main())
