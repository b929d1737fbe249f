#!/usr/bin/python3
"""apply_pixels.py - `siren apply` and `siren diff` run the gateway's
pixel stage: what an officer sees offline is what the processor forwards.

Synthetic instances written with pydicom, under
examples/policies/compress.policy (with a key the test makes):
  ct8    CT, 8-bit MONOCHROME2 512x512 -> HTJ2K lossless;
  us8    US from the "ACME Sono 5" of the policy's redact line, 8-bit,
         800x600, Burned In Annotation YES -> top 48 rows blanked, JPEG
         Baseline quality 90 (lossy);
  us12   the same device, 12 bits stored -> blanked, JPEG 2000 lossless;
  pal    the same device, PALETTE COLOR: the rectangle cannot be blanked
         (no black value) -> the pixel stage fails, quarantined.
and under a redaction-only policy the test writes: us8 blanked and kept
native.

Checks:
  1. `siren apply`: exit 0; ct8, us8 and us12 written, pal not, the
     summary counts 3 compressed and 1 failed (rectangles blanked in 2)
     and gives the failure's reason; each written file's transfer syntax;
     the lossless ones decode (OpenJPH's ojph_expand for HTJ2K, GDCM's
     gdcmconv --raw for JPEG 2000) to the input's samples except the
     rectangle, which is 0; the JPEG one has the rectangle black (within
     DCT rounding), Lossy Image Compression 01, a new SOP Instance UID
     that names the file and whose Source Image Sequence names the
     predecessor, Burned In Annotation NO;
  2. a second run writes byte-identical files under the same names;
  3. apply on the written CT (already HTJ2K) counts it unchanged and
     keeps its Pixel Data as it is;
  4. `siren diff`: the Transfer Syntax UID line, one Pixel Data line
     "native N bytes -> <syntax name> M bytes" with M the written file's
     Pixel Data bytes, Burned In Annotation YES -> NO, Lossy Image
     Compression added and the SOP Instance UID changed to the written
     file's for us8, a "pixel data:" line, the summary last; pal reported
     quarantined with the reason, exit 0; the written CT shows no pixel
     or syntax change; inputs untouched;
  5. the redaction-only policy: apply counts 1 redacted, the file stays
     Explicit VR Little Endian with the rectangle 0 and the rest exact;
     diff shows "native 480000 bytes -> native 480000 bytes".

Usage:
  /usr/bin/python3 apply_pixels.py --siren build/gateway/siren \\
      --work /tmp/apply-pixels

Exit status: 0 every check passed, 1 a check failed (each one printed),
2 the test could not run (a missing tool).

Run with Debian's /usr/bin/python3 (python3-pydicom, python3-numpy);
needs gdcmconv (libgdcm-tools) and ojph_expand (openjph-tools).
"""

import argparse
import glob
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import warnings

import numpy
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_pixel_data_frame

EXPLICIT_LE = "1.2.840.10008.1.2.1"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
UID_ROOT = "1.2.826.0.1.3680043.10.4244"
SUBPROCESS_TIMEOUT_S = 60
RECT_ROWS = 48          # compress.policy: redact rectangle 0 0 800 48
JPEG_BLACK_MAX = 2      # DCT rounding of an all-black 8x8 block
JPEG_MEAN_ERROR_MAX = 3.0

REDACT_ONLY_POLICY = """\
policy "redact-only" version 1
  profile basic
  key file "${SIREN_PSEUDONYM_KEY}"
  redact rectangle 0 0 800 48 if Manufacturer == "ACME"
end
"""


class Checks:
    """Failures (with the part of the test they belong to) and counts."""

    def __init__(self):
        self.part = ""
        self.failures = []
        self.passed = 0

    def expect(self, condition, what):
        if condition:
            self.passed += 1
        else:
            line = f"[{self.part}] {what}"
            self.failures.append(line)
            print("FAIL " + line, flush=True)
        return bool(condition)


# ---- the instances ---------------------------------------------------------

def image(rows, columns, bits, seed):
    """A gradient with noise: compresses, and every sample matters."""
    rng = numpy.random.default_rng(seed)
    top = (1 << bits) - 1
    ramp = numpy.add.outer(numpy.arange(rows), numpy.arange(columns))
    noisy = ramp * top // (rows + columns) + rng.integers(
        0, 16, (rows, columns))
    return numpy.clip(noisy, 0, top).astype(
        numpy.uint8 if bits <= 8 else numpy.uint16)


def write_instance(path, number, modality, pixels, bits_stored,
                   photometric="MONOCHROME2", device=None):
    sop_class = CT_IMAGE if modality == "CT" else US_IMAGE
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}.3.{number}"
    meta.TransferSyntaxUID = EXPLICIT_LE
    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = f"{UID_ROOT}.1.{number}"
    ds.SeriesInstanceUID = f"{UID_ROOT}.2.{number}"
    ds.PatientName = "Pixel^Patient"
    ds.PatientID = f"PX{number}"
    ds.Modality = modality
    ds.InstanceNumber = number
    if device:
        ds.Manufacturer, ds.ManufacturerModelName = device
        ds.BurnedInAnnotation = "YES"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if pixels.dtype == numpy.uint8 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if photometric == "PALETTE COLOR":
        lut = (numpy.arange(256, dtype=numpy.uint16) * 257).tobytes()
        for colour in ("Red", "Green", "Blue"):
            setattr(ds, f"{colour}PaletteColorLookupTableDescriptor",
                    [256, 0, 16])
            setattr(ds, f"{colour}PaletteColorLookupTableData", lut)
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, write_like_original=False)


def make_instances(folder):
    """Writes the four inputs; returns {name: (path, pixels)}."""
    acme = ("ACME", "Sono 5")
    made = {
        "ct8": (1, "CT", image(512, 512, 8, 1), 8, "MONOCHROME2", None),
        "us8": (2, "US", image(600, 800, 8, 2), 8, "MONOCHROME2", acme),
        "us12": (3, "US", image(600, 800, 12, 3), 12, "MONOCHROME2", acme),
        "pal": (4, "US", image(600, 800, 8, 4), 8, "PALETTE COLOR", acme),
    }
    inputs = {}
    for name, (number, modality, pixels, bits, photometric,
               device) in made.items():
        path = os.path.join(folder, f"{name}.dcm")
        write_instance(path, number, modality, pixels, bits, photometric,
                       device)
        inputs[name] = (path, pixels)
    return inputs


# ---- helpers ---------------------------------------------------------------

def write_key(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)


def run(args, command):
    env = dict(os.environ, SIREN_PSEUDONYM_KEY=args.key)
    return subprocess.run([args.siren] + command, capture_output=True,
                          text=True, errors="replace", env=env,
                          timeout=SUBPROCESS_TIMEOUT_S)


def read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def item_bytes(encapsulated):
    """The bytes of the items of encapsulated Pixel Data (offset table
    included, item headers not): what siren diff counts."""
    total, at = 0, 0
    while at + 8 <= len(encapsulated):
        group, element, length = struct.unpack_from("<HHI", encapsulated, at)
        if (group, element) != (0xFFFE, 0xE000):
            break
        total += length
        at += 8 + length
    return total


def outputs_by_name(out_dir):
    """{input name: (path, dataset)} of what apply wrote."""
    found = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*.dcm"))):
        ds = read(path)
        name = {1: "ct8", 2: "us8", 3: "us12", 4: "pal"}.get(
            int(ds.InstanceNumber), "?")
        found[name] = (path, ds)
    return found


def gdcm_raw(path, work):
    """Pixels of path decoded by GDCM."""
    raw = os.path.join(work, os.path.basename(path) + ".raw.dcm")
    result = subprocess.run(["gdcmconv", "--raw", path, raw],
                            capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"gdcmconv --raw {path}: {result.stderr[-200:]}")
    return read(raw).pixel_array


def htj2k_samples(ds, work, dtype, shape):
    """The one HTJ2K frame of ds decoded by OpenJPH's ojph_expand."""
    frame = next(generate_pixel_data_frame(ds.PixelData, 1))
    stream = os.path.join(work, "frame.j2c")
    with open(stream, "wb") as f:
        f.write(frame)
    out = stream + ".yuv"
    result = subprocess.run(["ojph_expand", "-i", stream, "-o", out],
                            capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"ojph_expand: {result.stdout[-200:]}")
    with open(out, "rb") as f:
        return numpy.frombuffer(f.read(), dtype).reshape(shape)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---- the checks ------------------------------------------------------------

def check_blanked(checks, what, decoded, original, tolerance):
    checks.expect(decoded.shape == original.shape,
                  f"{what}: decoded shape {decoded.shape}")
    if decoded.shape != original.shape:
        return
    checks.expect(int(decoded[:RECT_ROWS].max()) <= tolerance,
                  f"{what}: rectangle not black: max "
                  f"{int(decoded[:RECT_ROWS].max())}")
    rest = decoded[RECT_ROWS:].astype(numpy.int64) - \
        original[RECT_ROWS:].astype(numpy.int64)
    if tolerance == 0:
        checks.expect(not rest.any(), f"{what}: samples outside the "
                      f"rectangle differ (max {int(abs(rest).max())})")
    else:
        mean = float(numpy.abs(rest).mean())
        checks.expect(mean <= JPEG_MEAN_ERROR_MAX,
                      f"{what}: mean error {mean:.2f} outside the rectangle")


def apply_compress(checks, args, policy, inputs):
    checks.part = "apply compress.policy"
    out_dir = os.path.join(args.work, "out-a")
    paths = [inputs[n][0] for n in ("ct8", "us8", "us12", "pal")]
    r = run(args, ["apply", "--policy", policy, "-o", out_dir] + paths)
    checks.expect(r.returncode == 0, f"exit {r.returncode}: {r.stderr}")
    lines = r.stdout.splitlines()
    checks.expect(bool(lines) and lines[0].startswith(
        f"4 files: 3 written to {out_dir}, 0 rejected, 1 quarantined, "
        "0 failed"), f"summary: {r.stdout}")
    checks.expect("pixel data: 3 compressed, 0 redacted, 0 kept, 0 unchanged,"
                  " 1 failed; rectangles blanked in 2" in lines,
                  f"no pixel count line in: {r.stdout}")
    checks.expect(any(re.match(r"^  1 quarantined: pixels: .*PALETTE COLOR",
                               line) for line in lines),
                  f"no reason line for the palette image in: {r.stdout}")
    checks.expect(f"{paths[3]}: quarantined: pixels: " in r.stderr,
                  f"no per-file line for the palette image: {r.stderr}")
    written = outputs_by_name(out_dir)
    checks.expect(sorted(written) == ["ct8", "us12", "us8"],
                  f"written: {sorted(written)}")
    syntaxes = {"ct8": HTJ2K_LOSSLESS, "us8": JPEG_BASELINE,
                "us12": J2K_LOSSLESS}
    for name, syntax in syntaxes.items():
        if name in written:
            got = str(written[name][1].file_meta.TransferSyntaxUID)
            if not checks.expect(got == syntax, f"{name}: syntax {got}, "
                                 f"expected {syntax}"):
                del written[name]
    try:
        check_written(checks, args, inputs, written)
    except (RuntimeError, ValueError) as e:
        checks.expect(False, f"cannot decode: {e}")
    return out_dir, written


def check_written(checks, args, inputs, written):
    """The pixels and attributes of the files apply wrote in the right
    syntax."""
    if "ct8" in written:
        ds = written["ct8"][1]
        original = inputs["ct8"][1]
        decoded = htj2k_samples(ds, args.work, numpy.uint8, original.shape)
        checks.expect(numpy.array_equal(decoded, original),
                      "ct8: HTJ2K does not decode to the input's samples")
        checks.expect("LossyImageCompression" not in ds,
                      "ct8: lossless result marked lossy")
    if "us12" in written:
        path, ds = written["us12"]
        check_blanked(checks, "us12", gdcm_raw(path, args.work),
                      inputs["us12"][1], 0)
        checks.expect(ds.get("BurnedInAnnotation") == "NO",
                      f"us12: Burned In Annotation "
                      f"{ds.get('BurnedInAnnotation')}")
        checks.expect("LossyImageCompression" not in ds,
                      "us12: lossless result marked lossy")
    if "us8" in written:
        path, ds = written["us8"]
        check_blanked(checks, "us8", gdcm_raw(path, args.work),
                      inputs["us8"][1], JPEG_BLACK_MAX)
        uid = str(ds.SOPInstanceUID)
        checks.expect(os.path.basename(path) == uid + ".dcm" and
                      str(ds.file_meta.MediaStorageSOPInstanceUID) == uid,
                      f"us8: file {os.path.basename(path)}, meta "
                      f"{ds.file_meta.MediaStorageSOPInstanceUID}, "
                      f"SOP Instance UID {uid}")
        checks.expect(ds.get("LossyImageCompression") == "01" and
                      ds.get("LossyImageCompressionMethod") == "ISO_10918_1",
                      "us8: lossy marks missing")
        checks.expect(ds.get("BurnedInAnnotation") == "NO",
                      f"us8: Burned In Annotation "
                      f"{ds.get('BurnedInAnnotation')}")
        sources = ds.get("SourceImageSequence") or []
        predecessor = str(sources[0].ReferencedSOPInstanceUID) \
            if sources else ""
        checks.expect(predecessor.startswith("2.25.") and predecessor != uid,
                      f"us8: Source Image Sequence names {predecessor!r}")
        codes = ds.get("DerivationCodeSequence") or []
        checks.expect(bool(codes) and codes[0].CodeValue == "113040",
                      "us8: no Lossy Compression derivation code")


def apply_again(checks, args, policy, inputs, first_dir):
    checks.part = "apply twice"
    out_dir = os.path.join(args.work, "out-b")
    paths = [inputs[n][0] for n in ("ct8", "us8", "us12", "pal")]
    r = run(args, ["apply", "-q", "--policy", policy, "-o", out_dir] + paths)
    checks.expect(r.returncode == 0, f"exit {r.returncode}: {r.stderr}")
    names_a = sorted(glob.glob("*.dcm", root_dir=first_dir))
    names_b = sorted(glob.glob("*.dcm", root_dir=out_dir))
    checks.expect(names_a == names_b and len(names_a) == 3,
                  f"names differ: {names_a} vs {names_b}")
    for name in set(names_a) & set(names_b):
        checks.expect(sha256(os.path.join(first_dir, name)) ==
                      sha256(os.path.join(out_dir, name)),
                      f"{name}: the second run wrote other bytes")


def apply_unchanged(checks, args, policy, written):
    checks.part = "apply unchanged"
    if "ct8" not in written:
        return
    path, before = written["ct8"]
    out_dir = os.path.join(args.work, "out-c")
    r = run(args, ["apply", "--policy", policy, "-o", out_dir, path])
    checks.expect(r.returncode == 0, f"exit {r.returncode}: {r.stderr}")
    checks.expect("pixel data: 0 compressed, 0 redacted, 0 kept, 1 unchanged,"
                  " 0 failed; rectangles blanked in 0" in
                  r.stdout.splitlines(), f"pixel count line: {r.stdout}")
    again = outputs_by_name(out_dir).get("ct8")
    checks.expect(again is not None and
                  again[1].PixelData == before.PixelData and
                  str(again[1].file_meta.TransferSyntaxUID) == HTJ2K_LOSSLESS,
                  "the HTJ2K Pixel Data was not kept as it was")


def diff_lines(checks, args, policy, path):
    before = sha256(path)
    r = run(args, ["diff", "--policy", policy, path])
    checks.expect(r.returncode == 0, f"diff {os.path.basename(path)}: exit "
                  f"{r.returncode}: {r.stderr}")
    checks.expect(sha256(path) == before, f"diff changed {path}")
    return r.stdout.splitlines()


def expect_line(checks, lines, pattern, what):
    found = [line for line in lines if re.match(pattern, line)]
    checks.expect(len(found) == 1, f"{what}: {len(found)} lines match "
                  f"{pattern!r} in:\n" + "\n".join(lines))
    return found[0] if len(found) == 1 else None


def diff_compress(checks, args, policy, inputs, written):
    checks.part = "diff compress.policy"
    summary = r"^\d+ removed, \d+ added, \d+ changed, \d+ unchanged " \
              r"\(policy \"compress\" version 1\)$"
    names = {HTJ2K_LOSSLESS: "High-Throughput JPEG 2000 Image Compression "
                             "(Lossless Only)",
             JPEG_BASELINE: "JPEG Baseline (Process 1)",
             J2K_LOSSLESS: "JPEG 2000 Image Compression (Lossless Only)"}
    expected = {"ct8": (HTJ2K_LOSSLESS, 512 * 512, "htj2k-lossless"),
                "us8": (JPEG_BASELINE, 800 * 600, "jpeg"),
                "us12": (J2K_LOSSLESS, 800 * 600 * 2, "jpeg2000-lossless")}
    for name, (syntax, native, codec) in expected.items():
        lines = diff_lines(checks, args, policy, inputs[name][0])
        expect_line(checks, lines, re.escape(
            f'~ (0002,0010) TransferSyntaxUID "{EXPLICIT_LE}" -> '
            f'"{syntax}"') + "$", name)
        pixel = expect_line(checks, lines, re.escape(
            f"~ (7FE0,0010) PixelData native {native} bytes -> "
            f"{names[syntax]} ") + r"(\d+) bytes$", name)
        if pixel and name in written:
            shown = int(re.search(r"(\d+) bytes$", pixel).group(1))
            actual = item_bytes(written[name][1].PixelData)
            checks.expect(shown == actual, f"{name}: diff shows {shown} "
                          f"bytes, apply wrote {actual}")
        blanked = ", 1 rectangle blanked" if name != "ct8" else ""
        verify = "lossy" if name == "us8" else "passed"
        expect_line(checks, lines, re.escape(
            f"pixel data: compressed to {codec}, ratio ") +
            r"[0-9.]+:1" + re.escape(f", verify {verify}{blanked}") + "$",
            name)
        checks.expect(bool(lines) and re.match(summary, lines[-1]),
                      f"{name}: the summary is not last: {lines[-1:]}")
        if name != "ct8":
            expect_line(checks, lines, re.escape(
                '~ (0028,0301) BurnedInAnnotation "YES" -> "NO"') + "$", name)
        lossy = [line for line in lines
                 if line.startswith("+ (0028,2110) LossyImageCompression")]
        checks.expect(lossy == (['+ (0028,2110) LossyImageCompression "01"']
                                if name == "us8" else []),
                      f"{name}: Lossy Image Compression lines {lossy}")
        if name == "us8" and "us8" in written:
            new_uid = str(written["us8"][1].SOPInstanceUID)
            expect_line(checks, lines, re.escape(
                f'~ (0008,0018) SOPInstanceUID "{UID_ROOT}.3.2" -> '
                f'"{new_uid}"') + "$", name)
    lines = diff_lines(checks, args, policy, inputs["pal"][0])
    checks.expect(len(lines) == 1 and re.match(
        re.escape(f"{inputs['pal'][0]}: quarantined: pixels: ") +
        r".*PALETTE COLOR", lines[0]),
        f"pal: not reported quarantined: {lines}")
    if "ct8" in written:
        lines = diff_lines(checks, args, policy, written["ct8"][0])
        checks.expect(not [line for line in lines if line.startswith(
            ("~ (7FE0,0010)", "~ (0002,0010)"))] and
            "pixel data: unchanged" in lines,
            "the written CT: pixel or syntax change shown, or no "
            "'pixel data: unchanged' line:\n" + "\n".join(lines))


def redact_only(checks, args, inputs):
    checks.part = "redaction alone"
    policy = os.path.join(args.work, "redact-only.policy")
    with open(policy, "w", encoding="utf-8") as f:
        f.write(REDACT_ONLY_POLICY)
    path, original = inputs["us8"]
    out_dir = os.path.join(args.work, "out-r")
    r = run(args, ["apply", "--policy", policy, "-o", out_dir, path])
    checks.expect(r.returncode == 0, f"exit {r.returncode}: {r.stderr}")
    checks.expect("pixel data: 0 compressed, 1 redacted, 0 kept, 0 unchanged,"
                  " 0 failed; rectangles blanked in 1" in
                  r.stdout.splitlines(), f"pixel count line: {r.stdout}")
    written = outputs_by_name(out_dir).get("us8")
    if checks.expect(written is not None, "us8 not written"):
        ds = written[1]
        checks.expect(str(ds.file_meta.TransferSyntaxUID) == EXPLICIT_LE,
                      f"syntax {ds.file_meta.TransferSyntaxUID}")
        check_blanked(checks, "us8 redacted", ds.pixel_array, original, 0)
    lines = diff_lines(checks, args, policy, path)
    expect_line(checks, lines, re.escape(
        "~ (7FE0,0010) PixelData native 480000 bytes -> native 480000 "
        "bytes") + "$", "redacted")
    checks.expect(not [line for line in lines
                       if line.startswith("~ (0002,0010)")],
                  "a syntax change shown for native to native")
    expect_line(checks, lines, re.escape(
        "pixel data: redacted, 1 rectangle blanked") + "$", "redacted")


def parse_arguments():
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.path.dirname(os.path.dirname(here))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True, help="the siren program")
    parser.add_argument("--policies",
                        default=os.path.join(source, "examples", "policies"),
                        help="the folder of compress.policy")
    parser.add_argument("--work", required=True, help="a scratch folder")
    return parser.parse_args()


def main():
    args = parse_arguments()
    missing = [tool for tool in ("gdcmconv", "ojph_expand")
               if not shutil.which(tool)]
    if missing or not os.access(args.siren, os.X_OK):
        print(f"apply_pixels: cannot run: missing {missing or args.siren}",
              file=sys.stderr)
        return 2
    args.work = os.path.abspath(args.work)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(os.path.join(args.work, "in"))
    args.key = os.path.join(args.work, "pseudonym.key")
    write_key(args.key)
    policy = os.path.join(args.policies, "compress.policy")
    inputs = make_instances(os.path.join(args.work, "in"))
    checks = Checks()
    first_dir, written = apply_compress(checks, args, policy, inputs)
    apply_again(checks, args, policy, inputs, first_dir)
    apply_unchanged(checks, args, policy, written)
    diff_compress(checks, args, policy, inputs, written)
    redact_only(checks, args, inputs)
    print(f"apply_pixels: {checks.passed} checks passed, "
          f"{len(checks.failures)} failed")
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
