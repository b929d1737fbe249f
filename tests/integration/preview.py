#!/usr/bin/python3
"""preview.py - `siren preview`: one frame rendered as a PNG with the
policy's redaction rectangles black, read back with Pillow (an
independent PNG decoder).

Synthetic images made here with pydicom and numpy, each with a value
pattern so that every pixel's expected grey or colour is computed
independently of siren:

  a. 8-bit MONOCHROME2 without a window: shown as stored.
  b. 16-bit signed MONOCHROME2 with Rescale Slope/Intercept and a Window
     Center/Width: the PS3.3 C.11.2.1.2 linear window of the rescaled
     value; --window overrides the file's window.
  c. 16-bit MONOCHROME1 without a window: the frame's range outside the
     rectangle (the rectangle holds the extremes, which must not count),
     inverted.
  d. 8-bit RGB: shown as stored, the rectangle (0,0,0).
  e. The same images compressed with codec_tool (JPEG-LS lossless for b,
     JPEG 2000 lossless for d, RLE for c): the PNG is the native one's,
     byte for byte in pixels.
  f. A two-frame image: --frame 2 renders the second frame.
  g. PALETTE COLOR with whole 16-bit lookup tables: through the tables;
     a segmented palette is refused with a message.
  h. A policy whose redact line does not apply: "no redact line
     applies", nothing black.
  i. Bad input: not DICOM, no Pixel Data, a frame out of range, frame 0:
     exit non-zero with a message on stderr and no PNG.

In every case the size, the rectangle (every pixel black), a pixel just
outside it and a few others are checked, and the rectangles printed on
stdout name the policy's file:line.

Usage:
  /usr/bin/python3 preview.py --siren build/gateway/siren \\
      --codec-tool build/tests/codec_tool --work /tmp/preview

Exit status: 0 every check passed, 1 a check failed, 2 cannot run.
"""

import argparse
import os
import shutil
import subprocess
import sys

import numpy
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

try:
    from PIL import Image
except ImportError:  # python3-pil
    Image = None

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
RLE = "1.2.840.10008.1.2.5"

# The rectangle of the policy's redact line: columns 5..24, rows 2..9.
RECT = (5, 2, 20, 8)


def make_image(path, frames, photometric="MONOCHROME2", signed=False,
               bits_stored=None, sop_class=SECONDARY_CAPTURE, **attributes):
    """A Part 10 file in Explicit VR Little Endian from frames, a numpy
    array (frames, rows, columns[, 3]) of the samples' type."""
    frames = numpy.asarray(frames)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "PREVIEW-1"
    ds.PatientName = "Preview^Test"
    ds.Modality = "OT"
    ds.Manufacturer = "ACME"
    colour = frames.ndim == 4
    ds.NumberOfFrames = frames.shape[0]
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric
    if colour:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = frames.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    data = frames.astype(frames.dtype.newbyteorder("<")).tobytes()
    ds.PixelData = data + b"\0" * (len(data) % 2)
    ds["PixelData"].VR = "OW" if ds.BitsAllocated > 8 else "OB"
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.save_as(path, write_like_original=False)
    return path


def windowed(x, center, width):
    """PS3.3 C.11.2.1.2.1 to 0..255, rounded as siren rounds."""
    if width <= 1:
        return 0 if x <= center - 0.5 else 255
    y = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255.0
    return 0 if y <= 0 else 255 if y >= 255 else int(y + 0.5)


class Checks:
    def __init__(self):
        self.failures = []

    def expect(self, condition, what):
        if not condition:
            self.failures.append(what)
            print("FAIL:", what)
        return condition


class Context:
    def __init__(self, args):
        self.siren = args.siren
        self.codec_tool = args.codec_tool
        self.work = args.work
        self.checks = Checks()
        key = os.path.join(self.work, "key")
        with open(key, "w") as stream:
            stream.write(os.urandom(32).hex() + "\n")
        os.chmod(key, 0o600)
        self.policy = self.write_policy("redact.policy", key, 'Manufacturer '
                                        '== "ACME"')
        self.other_policy = self.write_policy("other.policy", key,
                                              'Manufacturer == "OTHER"')

    def write_policy(self, name, key, condition):
        path = os.path.join(self.work, name)
        with open(path, "w") as stream:
            stream.write(f'policy "preview" version 1\n'
                         f'  profile basic\n'
                         f'  key file "{key}"\n'
                         f'  redact rectangle {" ".join(map(str, RECT))} '
                         f'if {condition}\n'
                         f'end\n')
        return path

    def path(self, name):
        return os.path.join(self.work, name)

    def preview(self, source, *options, policy=None):
        out = self.path(os.path.basename(source) + ".png")
        if os.path.exists(out):
            os.remove(out)
        done = subprocess.run([self.siren, "preview", "--policy",
                               policy or self.policy, "-o", out, *options,
                               source], capture_output=True, text=True,
                              timeout=60)
        report = sanitizer(done.stderr)
        self.checks.expect(report is None, f"{source}: {report}")
        return done, out

    def compress(self, source, syntax):
        target = self.path(os.path.basename(source)[:-4] + f"-{syntax}.dcm")
        done = subprocess.run([self.codec_tool, "encode", syntax, source,
                               target], capture_output=True, text=True,
                              timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"codec_tool encode {syntax} {source}: "
                               f"{done.stderr}")
        got = str(pydicom.dcmread(target).file_meta.TransferSyntaxUID)
        if got != syntax:
            raise RuntimeError(f"codec_tool made {got}, not {syntax}")
        return target


def sanitizer(text):
    for marker in ("ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer"):
        if marker in text:
            return text[text.index(marker):][:400]
    return None


def render(ctx, what, source, *options, policy=None, applies=True):
    """Runs siren preview; the PNG as an array (rows, columns[, 3]), or
    None after a failed check."""
    checks = ctx.checks
    done, out = ctx.preview(source, *options, policy=policy)
    if not checks.expect(done.returncode == 0, f"{what}: exit "
                         f"{done.returncode}: {done.stderr.strip()}"):
        return None
    line = (f"redact rectangle {' '.join(map(str, RECT))} "
            f"({policy or ctx.policy}:4)")
    if applies:
        checks.expect(line in done.stdout.splitlines(),
                      f"{what}: stdout lacks '{line}': {done.stdout!r}")
    else:
        checks.expect("no redact line applies" in done.stdout,
                      f"{what}: stdout: {done.stdout!r}")
    image = Image.open(out)
    image.load()
    return numpy.asarray(image)


def check_rect(ctx, what, png, shape):
    checks = ctx.checks
    if not checks.expect(png.shape == shape, f"{what}: PNG of shape "
                         f"{png.shape}, expected {shape}"):
        return False
    x, y, w, h = RECT
    inside = png[y:y + h, x:x + w]
    checks.expect(not inside.any(), f"{what}: the rectangle is not all "
                                    f"black: {inside.max()}")
    return True


def check_pixels(ctx, what, png, expected, points):
    """expected: the array of expected output values; points (row,
    column) just outside the rectangle and elsewhere."""
    for row, col in points:
        ctx.checks.expect(numpy.array_equal(png[row, col],
                                            expected[row, col]),
                          f"{what}: pixel ({col},{row}) is "
                          f"{png[row, col]}, expected {expected[row, col]}")
    x, y, w, h = RECT
    mask = numpy.ones(png.shape[:2], bool)
    mask[y:y + h, x:x + w] = False
    differ = numpy.argwhere((png != expected).reshape(mask.shape + (-1,))
                            .any(axis=-1) & mask)
    ctx.checks.expect(len(differ) == 0, f"{what}: {len(differ)} pixels "
                      f"outside the rectangle differ, first (row, col) "
                      f"{differ[:3].tolist()}")


# Points just outside the rectangle (left, right, above, below) and far.
POINTS = [(5, 4), (5, 25), (1, 10), (10, 10), (25, 35), (0, 0)]


def mono8(ctx):
    rows, cols = 40, 64
    pattern = ((numpy.arange(rows)[:, None] * 7 + numpy.arange(cols) * 3)
               % 256).astype(numpy.uint8)
    source = make_image(ctx.path("mono8.dcm"), pattern[None])
    png = render(ctx, "8-bit MONOCHROME2", source)
    if png is not None and check_rect(ctx, "8-bit", png, (rows, cols)):
        check_pixels(ctx, "8-bit", png, pattern, POINTS)
    return source, pattern


def signed16(ctx):
    rows, cols = 48, 60
    stored = ((numpy.arange(rows)[:, None] * 97 + numpy.arange(cols) * 31)
              % 4000 - 2000).astype(numpy.int16)
    slope, intercept, center, width = 2.0, -100.0, 300.0, 2500.0
    source = make_image(ctx.path("signed16.dcm"), stored[None], signed=True,
                        bits_stored=16, RescaleSlope="2",
                        RescaleIntercept="-100", WindowCenter="300\\40",
                        WindowWidth="2500\\400")
    expect = numpy.vectorize(windowed)(stored * slope + intercept, center,
                                       width).astype(numpy.uint8)
    png = render(ctx, "16-bit signed", source)
    if png is not None and check_rect(ctx, "16-bit", png, (rows, cols)):
        check_pixels(ctx, "16-bit signed, file window", png, expect, POINTS)
    # --window wins over the file's.
    png = render(ctx, "16-bit --window", source, "--window", "-500", "1000")
    expect_option = numpy.vectorize(windowed)(stored * slope + intercept,
                                              -500.0, 1000.0).astype(
                                                  numpy.uint8)
    if png is not None and check_rect(ctx, "16-bit --window", png,
                                      (rows, cols)):
        check_pixels(ctx, "16-bit signed, --window", png, expect_option,
                     POINTS)
    compressed = ctx.compress(source, JPEG_LS_LOSSLESS)
    png = render(ctx, "16-bit JPEG-LS", compressed)
    if png is not None and check_rect(ctx, "16-bit JPEG-LS", png,
                                      (rows, cols)):
        check_pixels(ctx, "16-bit signed JPEG-LS", png, expect, POINTS)


def mono1(ctx):
    rows, cols = 36, 50
    stored = (1000 + numpy.arange(rows)[:, None] * 11 +
              numpy.arange(cols) * 5).astype(numpy.uint16)
    x, y, w, h = RECT
    stored[y, x] = 65000  # extremes inside the rectangle must not count
    stored[y + 1, x + 1] = 0
    source = make_image(ctx.path("mono1.dcm"), stored[None],
                        photometric="MONOCHROME1", bits_stored=16)
    mask = numpy.ones(stored.shape, bool)
    mask[y:y + h, x:x + w] = False
    low, high = float(stored[mask].min()), float(stored[mask].max())
    expect = 255 - numpy.vectorize(windowed)(
        stored.astype(float), (low + high) / 2 + 0.5,
        high - low + 1).astype(numpy.uint8)
    png = render(ctx, "MONOCHROME1", source)
    if png is not None and check_rect(ctx, "MONOCHROME1", png, (rows, cols)):
        check_pixels(ctx, "MONOCHROME1", png, expect, POINTS)
        ctx.checks.expect(png[rows - 1, cols - 1] == 0 and
                          png[0, 0] == 255, "MONOCHROME1: the highest value "
                          "is not black, the lowest not white")
    compressed = ctx.compress(source, RLE)
    png = render(ctx, "MONOCHROME1 RLE", compressed)
    if png is not None and check_rect(ctx, "MONOCHROME1 RLE", png,
                                      (rows, cols)):
        check_pixels(ctx, "MONOCHROME1 RLE", png, expect, POINTS)


def rgb(ctx):
    rows, cols = 32, 40
    r = numpy.arange(rows)[:, None] * 8 + numpy.zeros(cols, int)
    g = numpy.zeros(rows, int)[:, None] + numpy.arange(cols) * 6
    b = (r + g) // 2
    pixels = numpy.stack([r, g, b], axis=-1).astype(numpy.uint8)
    source = make_image(ctx.path("rgb.dcm"), pixels[None],
                        photometric="RGB")
    png = render(ctx, "RGB", source)
    if png is not None and check_rect(ctx, "RGB", png, (rows, cols, 3)):
        check_pixels(ctx, "RGB", png, pixels, POINTS[:-2] + [(31, 39)])
    compressed = ctx.compress(source, J2K_LOSSLESS)
    png = render(ctx, "RGB JPEG 2000", compressed)
    if png is not None and check_rect(ctx, "RGB J2K", png, (rows, cols, 3)):
        check_pixels(ctx, "RGB JPEG 2000", png, pixels,
                     POINTS[:-2] + [(31, 39)])


def multiframe(ctx):
    frames = numpy.stack([numpy.full((30, 40), 10 * (f + 1), numpy.uint8)
                          for f in range(2)])
    frames[1, 20, 30] = 200
    source = make_image(ctx.path("two-frames.dcm"), frames)
    png = render(ctx, "frame 2", source, "--frame", "2")
    if png is not None and check_rect(ctx, "frame 2", png, (30, 40)):
        check_pixels(ctx, "frame 2", png, frames[1], [(20, 30), (0, 0)])
    done, out = ctx.preview(source, "--frame", "3")
    ctx.checks.expect(done.returncode == 1 and "no frame 3" in done.stderr
                      and not os.path.exists(out),
                      f"frame 3 of 2: exit {done.returncode}, "
                      f"{done.stderr.strip()!r}")
    done, out = ctx.preview(source, "--frame", "0")
    ctx.checks.expect(done.returncode == 2 and "from 1" in done.stderr,
                      f"frame 0: exit {done.returncode}, "
                      f"{done.stderr.strip()!r}")


def palette(ctx):
    rows, cols = 20, 30
    index = ((numpy.arange(rows)[:, None] + numpy.arange(cols)) % 16
             ).astype(numpy.uint8)
    entries = numpy.arange(16)
    red = (entries * 16 * 257).astype("<u2")
    green = ((15 - entries) * 16 * 257).astype("<u2")
    blue = numpy.full(16, 0x8000, "<u2")
    source = make_image(
        ctx.path("palette.dcm"), index[None], photometric="PALETTE COLOR",
        RedPaletteColorLookupTableDescriptor=[16, 0, 16],
        GreenPaletteColorLookupTableDescriptor=[16, 0, 16],
        BluePaletteColorLookupTableDescriptor=[16, 0, 16],
        RedPaletteColorLookupTableData=red.tobytes(),
        GreenPaletteColorLookupTableData=green.tobytes(),
        BluePaletteColorLookupTableData=blue.tobytes())
    expect = numpy.stack([red[index] >> 8, green[index] >> 8,
                          blue[index] >> 8], axis=-1).astype(numpy.uint8)
    png = render(ctx, "PALETTE COLOR", source)
    if png is not None and check_rect(ctx, "palette", png, (rows, cols, 3)):
        check_pixels(ctx, "PALETTE COLOR", png, expect, POINTS[:4])
    ds = pydicom.dcmread(source)
    ds.SegmentedRedPaletteColorLookupTableData = b"\0\0"
    segmented = ctx.path("palette-segmented.dcm")
    ds.save_as(segmented, write_like_original=False)
    done, out = ctx.preview(segmented)
    ctx.checks.expect(done.returncode == 1 and "segmented" in done.stderr
                      and not os.path.exists(out),
                      f"segmented palette: exit {done.returncode}, "
                      f"{done.stderr.strip()!r}")


def not_applying(ctx, source, pattern):
    png = render(ctx, "no redact line", source, policy=ctx.other_policy,
                 applies=False)
    if png is not None:
        ctx.checks.expect(numpy.array_equal(png, pattern),
                          "a policy whose redact line does not apply "
                          "changed the image")


def bad_inputs(ctx):
    text = ctx.path("not-dicom.dcm")
    with open(text, "w") as stream:
        stream.write("hello, this is not DICOM at all\n" * 10)
    no_pixels = ctx.path("no-pixels.dcm")
    ds = pydicom.dcmread(ctx.path("mono8.dcm"))
    del ds.PixelData
    ds.save_as(no_pixels, write_like_original=False)
    for name, source, words in (("not DICOM", text, "not-dicom.dcm"),
                                ("no Pixel Data", no_pixels,
                                 "no Pixel Data"),
                                ("missing file", ctx.path("absent.dcm"),
                                 "absent.dcm")):
        done, out = ctx.preview(source)
        ctx.checks.expect(done.returncode == 1 and words in done.stderr and
                          not os.path.exists(out),
                          f"{name}: exit {done.returncode}, stderr "
                          f"{done.stderr.strip()!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True)
    parser.add_argument("--codec-tool", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    if Image is None:
        print("cannot run: Pillow is missing (python3-pil)")
        return 2
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    ctx = Context(args)
    source, pattern = mono8(ctx)
    signed16(ctx)
    mono1(ctx)
    rgb(ctx)
    multiframe(ctx)
    palette(ctx)
    not_applying(ctx, source, pattern)
    bad_inputs(ctx)
    print(f"{len(ctx.checks.failures)} failure(s)")
    return 1 if ctx.checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
