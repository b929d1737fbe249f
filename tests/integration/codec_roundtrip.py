#!/usr/bin/python3
"""codec_roundtrip.py - codec/ against independent decoders on real files.

  a. Decoding: every file of pydicom's test corpus with pixel data is
     decoded by `codec_tool decode` and by an independent decoder: DCMTK's
     dcmdrle (RLE), dcmdjpeg (JPEG Baseline), dcmdjpls (JPEG-LS),
     dcmconv (big endian), GDCM's `gdcmconv --raw` (JPEG 2000, and the
     12-bit and lossless JPEG that we decode with DCMTK's code), pydicom
     itself for native pixel data;
     the reference's pixel data is read with pydicom. Lossless syntaxes
     and native data must agree sample for sample (compared on the stored
     bits, sign included); lossy JPEG may differ by the IDCT rounding of
     two implementations (at most JPEG_TOLERANCE levels). Files we refuse
     must be listed in EXPECTED_REFUSALS with the reason and must fail
     cleanly (exit 1, a message, no signal); a listed file that decodes
     fails the test, so the table stays true.
  b. Encoding: native images of the corpus (16-bit signed CT, MR, 3x3 RGB,
     multi-frame RGB) are encoded by `codec_tool encode` into every
     syntax it encodes; the output must decode with DCMTK or GDCM (not our
     code) to the original samples for lossless syntaxes, within NEAR for
     JPEG-LS near-lossless, and above a PSNR bound for JPEG, JPEG 2000
     and HTJ2K lossy (LOSSY_MIN_PSNR_DB). pydicom decodes our RLE output
     too; OpenJPH's ojph_expand decodes our HTJ2K (which OpenJPH encodes
     and OpenJPEG decodes in codec/).

  c. Streams from DCMTK's encoders: a 12-bit image made from CT_small and
     the corpus's RGB and 16-bit images, compressed by dcmcjpeg (lossless
     .57 and SV1 .70, 12-bit Extended .51), dcmcjpls (lossless and NEAR 2)
     and dcmcrle, must decode with codec_tool to the original (lossless)
     or to what DCMTK decodes (lossy).

  d. Truncated codestreams: the first frame of each compressed corpus
     file cut to half its length (and to 300 bytes) must be refused
     cleanly by every decoder: exit 1 and a message, no signal, no
     sanitizer report, never a "successful" decode.

Usage:
  /usr/bin/python3 codec_roundtrip.py --tool build/tests/codec_tool \\
      --data /usr/lib/python3/dist-packages/pydicom/data --work /tmp/codec

The C++ adapters of codec/ are optional (DCMTK's JPEG decoders for
lossless and 12-bit JPEG, OpenJPH for HTJ2K encoding): `codec_tool
syntaxes` says what this build does, and what it cannot do must then be
refused cleanly instead of checked.

Exit status: 0 all agree, 1 a mismatch (each printed), 2 cannot run.
"""

import argparse
import math
import os
import shutil
import subprocess
import sys

import numpy
import pydicom
import pydicom.encaps

RLE = "1.2.840.10008.1.2.5"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K = "1.2.840.10008.1.2.4.203"

# The independent decoder of each syntax: a command writing native data.
REFERENCE = {
    RLE: ["dcmdrle"],
    JPEG_BASELINE: ["dcmdjpeg"],
    # We decode these with DCMTK's IJG build (dcmtk_jpeg.cpp): GDCM's own
    # IJG build is the independent one.
    JPEG_EXTENDED: ["gdcmconv", "--raw"],
    JPEG_LOSSLESS: ["gdcmconv", "--raw"],
    JPEG_LOSSLESS_SV1: ["gdcmconv", "--raw"],
    JPEG_LS: ["dcmdjpls"],
    JPEG_LS_NEAR: ["dcmdjpls"],
    J2K_LOSSLESS: ["gdcmconv", "--raw"],
    J2K: ["gdcmconv", "--raw"],
    # Big endian native data, as DCMTK swaps it (pydicom's raw bytes are
    # the file's).
    "1.2.840.10008.1.2.2": ["dcmconv", "+te"],
}
LOSSY = {JPEG_BASELINE, JPEG_EXTENDED, J2K, JPEG_LS_NEAR}
JPEG_TOLERANCE = 3
LOSSY_MIN_PSNR_DB = 30.0
NEAR = 2

# Files with pixel data that codec/ refuses, and why.
EXPECTED_REFUSALS = {
    "JPEG2000-embedded-sequence-delimiter.dcm":
        "a 250-byte codestream made to test readers: its SIZ holds a "
        "sequence delimiter's bytes as the image size (OpenJPEG: invalid "
        "number of tiles)",
    "MR_truncated.dcm": "the file ends inside Pixel Data (dicom/ refuses)",
    "badVR.dcm": "Number of Frames holds no number",
    "SC_rgb_jpeg.dcm": "an invalid VR in the header (dicom/ refuses)",
    "meta_missing_tsyntax.dcm": "Pixel Data without Rows: no image",
    "nested_priv_SQ.dcm": "Pixel Data without Rows: no image",
}

# Native sources for the encoding round trips: (file, syntaxes it cannot
# take, with the reason the tool must give).
ENCODE_SOURCES = [
    "CT_small.dcm", "MR_small.dcm", "SC_rgb_small_odd.dcm",
    "SC_rgb_rle_2frame.dcm", "rtdose.dcm",
]
ENCODE_TARGETS = [
    (RLE, []), (JPEG_LS, []), (J2K_LOSSLESS, []),
    (JPEG_BASELINE, ["--quality", "90"]),
    (JPEG_LS_NEAR, ["--near", str(NEAR)]),
    (J2K, ["--psnr", "45"]),
    (HTJ2K_LOSSLESS, []),
    (HTJ2K, ["--psnr", "45"]),
]


class Failures:
    def __init__(self):
        self.items = []

    def add(self, what):
        print("FAIL:", what)
        self.items.append(what)


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    # A sanitizer report (the ASan build) is a failure whatever the status.
    if "Sanitizer" in result.stderr or "runtime error:" in result.stderr:
        raise RuntimeError(f"{' '.join(cmd)}: sanitizer report:\n"
                           f"{result.stderr[:2000]}")
    return result


def parse_info(line):
    f = line.split()
    return {"rows": int(f[0]), "columns": int(f[1]), "samples": int(f[2]),
            "allocated": int(f[3]), "stored": int(f[4]),
            "signed": int(f[5]), "planar": int(f[6]),
            "photometric": f[7], "frames": int(f[8]), "syntax": f[9]}


def info_of(ds):
    """The image description of a pydicom dataset (native pixel data)."""
    return {"rows": ds.Rows, "columns": ds.Columns,
            "samples": ds.SamplesPerPixel, "allocated": ds.BitsAllocated,
            "stored": ds.BitsStored, "signed": ds.PixelRepresentation,
            "planar": getattr(ds, "PlanarConfiguration", 0)
            if ds.SamplesPerPixel > 1 else 0,
            "photometric": ds.PhotometricInterpretation,
            "frames": int(getattr(ds, "NumberOfFrames", 1) or 1)}


def samples(raw, info):
    """Samples as int64 (frames, rows, columns, samples), reduced to the
    stored bits and sign-extended; bits allocated 1 as the bytes."""
    if info["allocated"] == 1:
        return numpy.frombuffer(raw, dtype=numpy.uint8).astype(numpy.int64)
    dtype = {8: "<u1", 16: "<u2", 32: "<u4"}[info["allocated"]]
    values = numpy.frombuffer(raw, dtype=dtype).astype(numpy.int64)
    per_pixel = info["samples"]
    if info["photometric"] == "YBR_FULL_422":
        return values  # the subsampled layout, compared as stored
    count = info["frames"] * info["rows"] * info["columns"] * per_pixel
    values = values[:count]
    if info["planar"] == 1:
        values = values.reshape(info["frames"], per_pixel, info["rows"],
                                info["columns"]).transpose(0, 2, 3, 1)
    values = values.reshape(info["frames"], info["rows"], info["columns"],
                            per_pixel)
    bits = info["stored"]
    values = values & ((1 << bits) - 1)
    if info["signed"]:
        values = numpy.where(values >= 1 << (bits - 1), values - (1 << bits),
                             values)
    return values


def ppm_samples(data):
    """The samples of a binary PPM: after "P6", width, height, maxval and
    one whitespace byte."""
    at, fields = 2, 0
    while fields < 3:
        while data[at:at + 1].isspace():
            at += 1
        while not data[at:at + 1].isspace():
            at += 1
        fields += 1
    return data[at + 1:]


def htj2k_reference(path, work, name):
    """Our HTJ2K output decoded by OpenJPH's ojph_expand (our decoder is
    OpenJPEG): the codestream taken out with pydicom, expanded to raw
    16-bit or 8-bit planes (mono) or PPM (colour, component transform
    undone)."""
    ds = pydicom.dcmread(path)
    info = info_of(ds)
    frames = []
    for index, frame in enumerate(pydicom.encaps.generate_pixel_data_frame(
            ds.PixelData, info["frames"])):
        stream = os.path.join(work, f"{name}.{index}.j2c")
        with open(stream, "wb") as f:
            f.write(frame)
        colour = info["samples"] == 3
        out = stream + (".ppm" if colour else ".yuv")
        result = run(["ojph_expand", "-i", stream, "-o", out])
        if result.returncode != 0:
            raise RuntimeError(f"ojph_expand: {result.stdout.strip()[-200:]}")
        with open(out, "rb") as f:
            data = f.read()
        if colour:
            data = ppm_samples(data)
        frames.append(data)
    if info["samples"] == 3:
        info["photometric"] = "RGB"
    info["frames"] = len(frames)
    values = samples(b"".join(frames), info)
    return info, values


def reference_samples(path, syntax, work, name):
    """Decodes path with the independent decoder for its syntax; returns
    (info, samples) or raises RuntimeError."""
    if syntax in (HTJ2K_LOSSLESS, HTJ2K):
        return htj2k_reference(path, work, name)
    if syntax in REFERENCE:
        out = os.path.join(work, name + ".ref.dcm")
        result = run(REFERENCE[syntax] + [path, out])
        if result.returncode != 0:
            raise RuntimeError(f"{REFERENCE[syntax][0]}: "
                               f"{result.stderr.strip()[:200]}")
        path = out
    ds = pydicom.dcmread(path)
    info = info_of(ds)
    return info, samples(ds.PixelData, info)


def compare(what, syntax, ours, ref, failures, tolerance=0):
    if ours.shape != ref.shape:
        failures.add(f"{what}: shape {ours.shape} vs reference {ref.shape}")
        return None
    diff = numpy.abs(ours - ref)
    worst = int(diff.max()) if diff.size else 0
    if worst > tolerance:
        where = numpy.unravel_index(int(diff.argmax()), diff.shape)
        failures.add(f"{what} ({syntax}): differs by up to {worst} "
                     f"(allowed {tolerance}) at {tuple(int(i) for i in where)}")
    return worst


def psnr(ours, ref, bits):
    mse = float(numpy.mean((ours - ref).astype(numpy.float64) ** 2))
    if mse == 0:
        return 999.0
    peak = float((1 << bits) - 1)
    return 10 * math.log10(peak * peak / mse)


def capabilities(tool):
    """{syntax UID: (decodes, encodes)} of this build of codec/."""
    result = run([tool, "syntaxes"])
    caps = {}
    for line in result.stdout.splitlines():
        uid, decode, encode = line.split()
        caps[uid] = (decode == "decode", encode == "encode")
    return caps


def decode_corpus(tool, files, work, failures, caps):
    checked = refused = 0
    for path in files:
        name = os.path.basename(path)
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=False)
        except Exception:
            continue
        if "PixelData" not in ds and name not in EXPECTED_REFUSALS:
            continue
        raw = os.path.join(work, name + ".raw")
        result = run([tool, "decode", path, raw])
        if result.returncode < 0 or result.returncode > 1:
            failures.add(f"{name}: codec_tool exits {result.returncode}: "
                         f"{result.stderr.strip()[:300]}")
            continue
        if name in EXPECTED_REFUSALS:
            if result.returncode == 0:
                failures.add(f"{name}: decodes now; remove it from "
                             f"EXPECTED_REFUSALS")
            elif "codec_tool:" not in result.stderr:
                failures.add(f"{name}: refused without a message")
            refused += 1
            continue
        syntax = ds.file_meta.TransferSyntaxUID
        # 12-bit JPEG Extended shares .51 with 8-bit, which decodes
        # without the DCMTK adapter.
        if result.returncode != 0 and (
                not caps.get(syntax, (True,))[0] or
                "DCMTK adapter, not built" in result.stderr):
            print(f"decode {name}: refused, this build does not decode "
                  f"{syntax}")
            refused += 1
            continue
        if result.returncode != 0:
            failures.add(f"{name}: {result.stderr.strip()[:300]}")
            continue
        info = parse_info(result.stdout)
        syntax = info["syntax"]
        try:
            ref_info, ref = reference_samples(path, syntax, work, name)
        except Exception as exc:
            failures.add(f"{name}: reference decoder failed: {exc}")
            continue
        if ref_info["photometric"] != info["photometric"]:
            failures.add(f"{name}: decoded as {info['photometric']}, the "
                         f"reference says {ref_info['photometric']}")
            continue
        with open(raw, "rb") as f:
            ours = samples(f.read(), info)
        lossy_jpeg = syntax in (JPEG_BASELINE, JPEG_EXTENDED)
        worst = compare(name, syntax, ours, ref, failures,
                        JPEG_TOLERANCE if lossy_jpeg else 0)
        print(f"decode {name}: {syntax} {info['photometric']} "
              f"{info['frames']} frame(s), max diff {worst}")
        checked += 1
    return checked, refused


def encode_roundtrips(tool, data, work, failures, caps):
    done = 0
    for source in ENCODE_SOURCES:
        path = os.path.join(data, source)
        raw = os.path.join(work, source + ".orig.raw")
        result = run([tool, "decode", path, raw])
        if result.returncode != 0:
            failures.add(f"{source}: cannot decode the source: "
                         f"{result.stderr.strip()}")
            continue
        info = parse_info(result.stdout)
        with open(raw, "rb") as f:
            original = samples(f.read(), info)
        for syntax, options in ENCODE_TARGETS:
            what = f"{source} -> {syntax}"
            if not caps[syntax][1]:
                print(f"encode {what}: skipped, this build does not encode "
                      f"it")
                continue
            out = os.path.join(work, f"{source}.{syntax}.dcm")
            result = run([tool, "encode", syntax, path, out] + options)
            if result.returncode != 0:
                # Only images the syntax cannot carry may be refused.
                if "unsupported" in result.stderr and (
                        info["allocated"] == 32 or
                        (syntax in (HTJ2K_LOSSLESS, HTJ2K) and
                         info["stored"] > 16) or
                        (syntax == JPEG_BASELINE and info["allocated"] != 8)):
                    print(f"encode {what}: refused as expected: "
                          f"{result.stderr.strip()[:120]}")
                    continue
                failures.add(f"{what}: {result.stderr.strip()[:300]}")
                continue
            try:
                ref_info, ref = reference_samples(out, syntax, work,
                                                  os.path.basename(out))
            except Exception as exc:
                failures.add(f"{what}: independent decoder: {exc}")
                continue
            ref_cmp = ref
            if ref_info["photometric"] != info["photometric"]:
                failures.add(f"{what}: decodes as {ref_info['photometric']}"
                             f", was {info['photometric']}")
                continue
            if syntax in (JPEG_BASELINE, J2K, HTJ2K):
                value = psnr(original, ref_cmp, info["stored"])
                print(f"encode {what}: PSNR {value:.1f} dB")
                if value < LOSSY_MIN_PSNR_DB:
                    failures.add(f"{what}: PSNR {value:.1f} dB below "
                                 f"{LOSSY_MIN_PSNR_DB}")
            else:
                tolerance = NEAR if syntax == JPEG_LS_NEAR else 0
                worst = compare(what, syntax, original, ref_cmp, failures,
                                tolerance)
                print(f"encode {what}: max diff {worst}")
            if syntax == RLE:
                ds = pydicom.dcmread(out)
                mine = ds.pixel_array.astype(numpy.int64).reshape(
                    original.shape)
                compare(what + " (pydicom)", syntax, original, mine, failures)
            done += 1
    return done


# (source, encoder command, syntax it makes, lossless)
DCMTK_ENCODINGS = [
    ("ct12.dcm", ["dcmcjpeg", "+ee"], JPEG_EXTENDED, False),
    ("ct12.dcm", ["dcmcjpeg", "+el"], JPEG_LOSSLESS, True),
    ("ct12.dcm", ["dcmcjpeg", "+e1"], JPEG_LOSSLESS_SV1, True),
    ("ct12.dcm", ["dcmcjpls", "+el"], JPEG_LS, True),
    ("ct12.dcm", ["dcmcjpls", "+en"], JPEG_LS_NEAR, False),
    ("MR_small.dcm", ["dcmcjpeg", "+e1"], JPEG_LOSSLESS_SV1, True),
    ("MR_small.dcm", ["dcmcrle"], RLE, True),
    ("SC_rgb_small_odd.dcm", ["dcmcjpeg", "+e1"], JPEG_LOSSLESS_SV1, True),
    ("SC_rgb_small_odd.dcm", ["dcmcjpls", "+el"], JPEG_LS, True),
    ("SC_rgb_small_odd.dcm", ["dcmcrle"], RLE, True),
]


def make_12bit(data, work):
    """CT_small's pixels brought into 12 unsigned bits."""
    ds = pydicom.dcmread(os.path.join(data, "CT_small.dcm"))
    pixels = ds.pixel_array.astype(numpy.int64)
    pixels = (pixels - pixels.min()) & 0xFFF
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    path = os.path.join(work, "ct12.dcm")
    ds.save_as(path, write_like_original=False)
    return path


def dcmtk_encodings(tool, data, work, failures, caps):
    sources = {"ct12.dcm": make_12bit(data, work)}
    done = 0
    for source, encoder, syntax, lossless in DCMTK_ENCODINGS:
        path = sources.get(source, os.path.join(data, source))
        what = f"{source} by {' '.join(encoder)}"
        if not caps[syntax][0]:
            print(f"dcmtk {what}: skipped, this build does not decode "
                  f"{syntax}")
            continue
        encoded = os.path.join(work, f"{source}.{encoder[0]}{encoder[-1]}.dcm")
        result = run(encoder + [path, encoded])
        if result.returncode != 0:
            failures.add(f"{what}: {result.stderr.strip()[:200]}")
            continue
        raw = os.path.join(work, os.path.basename(encoded) + ".raw")
        result = run([tool, "decode", encoded, raw])
        if result.returncode != 0:
            failures.add(f"{what}: {result.stderr.strip()[:300]}")
            continue
        info = parse_info(result.stdout)
        if info["syntax"] != syntax:
            failures.add(f"{what}: made {info['syntax']}, not {syntax}")
            continue
        with open(raw, "rb") as f:
            ours = samples(f.read(), info)
        if lossless:
            ref_ds = pydicom.dcmread(path)
            ref_info = info_of(ref_ds)
            ref = samples(ref_ds.PixelData, ref_info)
        else:
            ref_info, ref = reference_samples(encoded, syntax, work,
                                              os.path.basename(encoded))
        worst = compare(what, syntax, ours, ref, failures)
        print(f"dcmtk {what}: {syntax}, max diff {worst}")
        done += 1
    return done


def truncated_streams(tool, files, work, failures):
    done = 0
    for path in files:
        name = os.path.basename(path)
        try:
            ds = pydicom.dcmread(path)
            syntax = ds.file_meta.TransferSyntaxUID
            if not syntax.is_compressed or name in EXPECTED_REFUSALS:
                continue
            frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
            frame = next(pydicom.encaps.generate_pixel_data_frame(
                ds.PixelData, frames))
        except Exception:
            continue
        for cut in (len(frame) // 2, 300):
            if cut >= len(frame):
                continue
            part = frame[:cut] + (b"\0" if cut % 2 else b"")
            ds.PixelData = pydicom.encaps.encapsulate([part])
            ds.NumberOfFrames = 1
            out = os.path.join(work, f"{name}.cut{cut}.dcm")
            ds.save_as(out)
            result = run([tool, "decode", out, out + ".raw"])
            if result.returncode != 1 or "codec_tool:" not in result.stderr:
                failures.add(f"{name} cut to {cut} bytes: exit "
                             f"{result.returncode}, "
                             f"{result.stderr.strip()[:200]}")
            done += 1
    print(f"{done} truncated codestreams refused")
    return done


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tool", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    for program in ("dcmdrle", "dcmdjpeg", "dcmdjpls", "dcmconv", "dcmcrle",
                    "dcmcjpeg", "dcmcjpls", "gdcmconv", "ojph_expand"):
        if not shutil.which(program):
            print(f"cannot run: {program} is missing (dcmtk, libgdcm-tools)")
            return 2
    files = sorted(os.path.join(args.data, "test_files", name)
                   for name in os.listdir(os.path.join(args.data,
                                                       "test_files"))
                   if name.endswith(".dcm"))
    if not files:
        print("cannot run: no corpus in", args.data)
        return 2
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    failures = Failures()
    caps = capabilities(args.tool)
    checked, refused = decode_corpus(args.tool, files, args.work, failures,
                                     caps)
    encoded = encode_roundtrips(args.tool, os.path.join(args.data,
                                                        "test_files"),
                                args.work, failures, caps)
    truncated_streams(args.tool, files, args.work, failures)
    from_dcmtk = dcmtk_encodings(args.tool, os.path.join(args.data,
                                                         "test_files"),
                                 args.work, failures, caps)
    print(f"{checked} files decoded and compared, {refused} refused as "
          f"listed, {encoded} encodings checked, {from_dcmtk} DCMTK "
          f"encodings decoded, "
          f"{len(failures.items)} failure(s)")
    return 1 if failures.items else 0


if __name__ == "__main__":
    sys.exit(main())
