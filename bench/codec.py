#!/usr/bin/python3
"""codec.py - pixel data codecs: SIREN's codec/ (through
tests/tools/codec_tool) encoding a CT series and a colour ultrasound-like
series into each transfer syntax it writes, against OpenJPEG's
opj_compress, Grok's grk_compress, OpenJPH's ojph_compress, DCMTK's
dcmcjpls, dcmcjpeg and dcmcrle, GDCM's gdcmconv and Orthanc's ingest
transcoding (orthanc-gdcm plugin) on the same pixels, in one run. Started
by bench/run.sh (`bench/run.sh codec` runs only this); see
docs/PERFORMANCE.md for how to read it.

Inputs (made into OUT/ if missing, kept for the next run):
  CT  the first COUNT instances of the CT series (tests/tools/gen_series,
      OUT/ct200 as the other benchmarks use): 512x512 MONOCHROME2, 16 bits
      allocated, 12 stored, one frame each
  US  US_INSTANCES Ultrasound Multi-frame instances of US_FRAMES frames of
      640x480 RGB, 8 bits (made here with numpy and pydicom, seeded, in
      OUT/usIxF): a sector of smoothly varying, spatially correlated
      speckle on black, a moving colour Doppler patch, a colour bar and
      lines of text-like 5x7 glyphs (hard edges)

Everything runs on all CPUs (JOBS, default os.cpu_count()): the commands
of a run (one a file, or for opj_compress, grk_compress and
ojph_compress one a frame) are dealt round-robin to JOBS bench/runner
processes started at once, each running its share one after another.
codec_tool has no threads of its own; JOBS processes is how it (and
every other tool) uses the cores.
Tools and syntaxes (UIDs 1.2.840.10008.1.2.4.NN shortened to .NN):

  SIREN            codec_tool encode-list TS LIST --no-sync: each runner's
                   share of the files in one process, as the gateway's
                   pixel stage (a long-running thread a core) and Orthanc
                   run; the lossless check, codec_verify_lossless, on, as
                   the gateway runs it; TS .80 JPEG-LS lossless, .90
                   JPEG 2000 lossless, .201 HTJ2K lossless, .91 JPEG 2000
                   with --ratio 10, .50 JPEG Baseline with --quality 90
                   (US only: Baseline carries 8-bit samples), .5 RLE
  SIREN no check   the same with --no-verify, for the lossless syntaxes:
                   the encoder alone, as the other tools run
  SIREN, a process a file
                   codec_tool encode TS IN OUT --no-sync, with the check:
                   a process a file as the command-line tools below, start-up
                   and dynamic linking (a dozen libraries) paid each time
  opj_compress     OpenJPEG's: -i FRAME.pgm|ppm -o FRAME.j2k (lossless,
                   its defaults: 6 resolutions, 64x64 code blocks, one
                   layer, the colour transform for RGB: as SIREN's), and
                   -r 10 -I for .91
  grk_compress     Grok's (the other JPEG 2000 library in Debian 12):
                   -H 1 -i FRAME -o FRAME.j2k (one thread, lossless, the
                   same defaults as opj_compress)
  ojph_compress    OpenJPH's: -i FRAME -o FRAME.j2c -reversible true
                   (defaults: 5 decompositions, 64x64, RPCL, colour
                   transform for RGB: as SIREN's)
  dcmcjpls         IN OUT (lossless)                                  .80
  dcmcjpeg         +e1 IN OUT (lossless, process 14 SV1)              .70
                   +eb +q 90 IN OUT (Baseline, US only)               .50
  dcmcrle          IN OUT                                             .5
  gdcmconv         --jpegls (.80), --j2k (.90), --j2k --lossy -r 10
                   (.91), --jpeg (.70), --jpeg --lossy -q 90 (.50, US),
                   --rle (.5); IN OUT
  Orthanc          Debian's Orthanc with the orthanc-gdcm plugin and
                   "IngestTranscoding": ".90", fed by JOBS storescu
                   processes at once (plain DICOM on loopback, each its
                   own round-robin share of the files); time from
                   starting them to the first poll of REST /statistics
                   (every POLL_S) that counts every instance: receiving,
                   transcoding and storing (SQLite index, no storage
                   compression, as bench/ingest.py's Orthanc)
  Orthanc plain    the same Orthanc without IngestTranscoding (and
                   without the plugin): what of Orthanc's time is not
                   the transcoding
  SIREN gateway    siren serve -c (a plain listener, processors one a
                   core, a policy with the basic profile and "compress to
                   jpeg2000-lossless") in front of an Orthanc without the
                   plugin, fed by JOBS storescu at once: the instance
                   received, spooled (flushed), de-identified, compressed
                   with the lossless check, forwarded and stored; timed
                   like Orthanc, until Orthanc counts every instance; CPU
                   of both servers. The warm-up checks that Orthanc holds
                   .90 with the samples of an input (found by its samples:
                   de-identification gives new UIDs)
  ..., 1 association
                   Orthanc and the gateway again, fed by one storescu (a
                   site sends a study on one association): Orthanc then
                   transcodes in that association's thread, the gateway
                   in all its processor threads

opj_compress, grk_compress and ojph_compress read PGM/PPM, not DICOM:
every frame is extracted once per run, untimed (codec_tool decode, then
numpy into PNM files in OUT/scratch-codec/), and only their encoding of
those files is timed, one process a frame. The DICOM tools read the
DICOM files and write new ones, one process a file (SIREN, one process a
runner); none flushes (codec_tool --no-sync).

Method: the inputs are read once before the runs (page cache). A warm-up
runs every tool on the first JOBS files of each series, untimed, and
checks what it wrote: the transfer syntax; for lossless syntaxes that
codec_tool decodes it to exactly the input's samples (the other tools'
output too; codestreams through opj_decompress / ojph_expand); for lossy
ones the PSNR of the decoded samples (the table's PSNR column; peak
2^bits_stored - 1). Then ROUNDS rounds, each running every (series, tool)
once in an order that rotates from round to round; before each run the
output folder is made empty and sync() called, after it the outputs are
deleted (untimed). The first round also sums the encoded sizes: a DICOM
output's encapsulated Pixel Data value (offset table and item headers
included), a codestream file's size; compression ratio = original pixel
bytes / encoded bytes. images/s = frames / wall seconds (median of the
rounds); MiB/s of original pixel data; CPU = user + system of the tools'
processes (getrusage of the runners' children; for Orthanc, Orthanc's own
from /proc, not storescu's) per image. A speed ratio is the tool's time /
SIREN's time for the same syntax in the same round, median (range):
above 1, SIREN is faster. Targets (issue 7): SIREN .90 at least 2x
Orthanc's ingest transcoding rate (the codec alone, and the gateway end
to end); SIREN .201 at least 5x SIREN .90's
rate with a compression ratio within 10% (>= 0.9x) of it; both with the
SIREN rows (one process a runner: Orthanc is a server, and the gateway
too).
"""

import datetime
import io
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

sys.dont_write_bytecode = True  # leave no bench/__pycache__ behind
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import data_core  # noqa: E402  (shared helpers, same folder)
import ingest  # noqa: E402  (Poller)
import net  # noqa: E402
import tls_orthanc  # noqa: E402  (Orthanc, Checks, Processes)
from data_core import fail, log  # noqa: E402

import numpy  # noqa: E402  (Debian's python3-numpy)
import pydicom  # noqa: E402  (Debian's python3-pydicom)

MIB = 1 << 20
SHARED_CT_COUNT = 200          # OUT/ct200, the other benchmarks' series
US_ROWS, US_COLUMNS = 480, 640
US_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.3.1"   # Ultrasound Multi-frame
POLL_S = 0.025
DELIVERY_TIMEOUT_S = 600
PLUGIN = "libOrthancGdcm.so"
PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")

TS_RLE = "1.2.840.10008.1.2.5"
TS_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
TS_JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
TS_JPEG_LS = "1.2.840.10008.1.2.4.80"
TS_J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
TS_J2K = "1.2.840.10008.1.2.4.91"
TS_HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"

# (syntax, label, lossless), in the tables' order.
SYNTAXES = [
    (TS_JPEG_LS, "JPEG-LS lossless .80", True),
    (TS_J2K_LOSSLESS, "JPEG 2000 lossless .90", True),
    (TS_HTJ2K_LOSSLESS, "HTJ2K lossless .201", True),
    (TS_J2K, "JPEG 2000 ratio 10 .91", False),
    (TS_JPEG_BASELINE, "JPEG Baseline q90 .50", False),
    (TS_RLE, "RLE .5", True),
    (TS_JPEG_LOSSLESS_SV1, "JPEG lossless SV1 .70", True),
]
LABEL = {ts: label for ts, label, _ in SYNTAXES}
LOSSLESS = {ts: lossless for ts, _, lossless in SYNTAXES}
SIREN_OPTIONS = {TS_J2K: ["--ratio", "10"], TS_JPEG_BASELINE:
                 ["--quality", "90"]}
PER_FILE = "SIREN, a process a file"
ONE_SENDER = "%s, 1 association"


# ---- the colour series ------------------------------------------------------

def glyphs(rng):
    """40 random 5x7 bitmaps: text-like hard edges."""
    return [(rng.rand(7, 5) < 0.45).astype(bool) for _ in range(40)]


def smooth(noise):
    """Speckle is correlated over a few pixels: a 3x5 box filter."""
    padded = numpy.pad(noise, ((1, 1), (2, 2)), mode="edge")
    out = numpy.zeros_like(noise)
    for dy in range(3):
        for dx in range(5):
            out += padded[dy:dy + noise.shape[0], dx:dx + noise.shape[1]]
    return out / 15


def us_frame(rng, index, font):
    """One 480x640x3 uint8 frame: index moves the Doppler patch and the
    tissue, rng draws the speckle."""
    y, x = numpy.mgrid[0:US_ROWS, 0:US_COLUMNS].astype(numpy.float32)
    cx, cy = US_COLUMNS / 2, -60.0
    r = numpy.hypot(x - cx, y - cy)
    angle = numpy.arctan2(x - cx, y - cy)
    sector = (r > 90) & (r < 520) & (numpy.abs(angle) < 0.6)
    depth = numpy.clip((r - 90) / 430, 0, 1)
    tissue = (150 * numpy.exp(-2.2 * depth) +
              40 * numpy.sin(angle * 7 + index * 0.1) ** 2 +
              60 * numpy.exp(-((x - cx - 40 * numpy.sin(index / 5)) ** 2 +
                               (y - 260) ** 2) / 3000))
    speckle = smooth(rng.rayleigh(0.8, size=(US_ROWS, US_COLUMNS))
                     .astype(numpy.float32))
    gray = numpy.clip(tissue * speckle * sector, 0, 255)
    img = numpy.repeat(gray[:, :, None], 3, axis=2)
    flow = numpy.where(x > cx, 1.0, -1.0) * numpy.exp(
        -((x - cx - 30 * numpy.cos(index / 4)) ** 2 / 1800 +
          (y - 220) ** 2 / 900))
    box = sector & (numpy.abs(x - cx) < 90) & (numpy.abs(y - 220) < 60)
    for sign, channel in ((1, 0), (-1, 2)):
        mask = box & (sign * flow > 0.15)
        img[mask] *= 0.3
        img[mask, channel] = numpy.clip(120 + 135 * sign * flow, 0,
                                        255)[mask]
    bar = numpy.linspace(255, 0, 200, dtype=numpy.float32)[:, None]
    img[140:340, 600:612, 0] = numpy.clip(bar * 1.2 - 50, 0, 255)
    img[140:340, 600:612, 2] = numpy.clip(205 - bar, 0, 255)
    img = img.astype(numpy.uint8)
    for line, (top, left) in enumerate([(10, 10), (28, 10), (46, 10),
                                        (450, 10), (10, 470)]):
        for k in range(min(18, (US_COLUMNS - left - 40) // 12)):
            glyph = font[(line * 7 + k + (index if line == 3 else 0)) %
                         len(font)]
            mask = numpy.kron(glyph, numpy.ones((2, 2), bool))
            img[top:top + 14, left + k * 12:left + k * 12 + 10][mask] = 230
    return img


def us_dataset(frames, number, uids):
    """A Part 10 Ultrasound Multi-frame instance of the frames."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID = US_SOP_CLASS
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uids
    ds.Modality = "US"
    ds.PatientName = "BENCH^CODEC"
    ds.PatientID = "BENCH-US"
    ds.StudyDate = ds.ContentDate = "20260101"
    ds.StudyTime = ds.ContentTime = "120000"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.Manufacturer = "SIREN bench"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = US_ROWS, US_COLUMNS
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = len(frames)
    ds.FrameTime = 33.3
    ds.FrameIncrementPointer = 0x00181063
    ds.LossyImageCompression = "00"
    ds.PixelData = numpy.stack(frames).tobytes()
    return ds


def us_series(out_dir, instances, frames):
    """OUT/usIxF, made if missing (deterministic pixels, fresh UIDs)."""
    folder = os.path.join(out_dir, f"us{instances}x{frames}")
    if not os.path.isdir(folder):
        from pydicom.uid import generate_uid
        partial = folder + ".partial"
        data_core.remove_folder(partial)
        os.makedirs(partial)
        log(f"generating {instances} ultrasound instances of {frames} "
            f"frames into {folder}")
        rng = numpy.random.RandomState(7)
        font = glyphs(rng)
        uids = (generate_uid(), generate_uid())
        for number in range(1, instances + 1):
            images = [us_frame(rng, (number - 1) * frames + i, font)
                      for i in range(frames)]
            us_dataset(images, number, uids).save_as(
                os.path.join(partial, f"US{number:06d}.dcm"),
                write_like_original=False)
        os.rename(partial, folder)
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.endswith(".dcm"))


# ---- series and their frames ------------------------------------------------

class Series:
    def __init__(self, name, files, codec_tool):
        self.name = name
        self.files = files
        info = subprocess.run([codec_tool, "info", files[0]], check=True,
                              capture_output=True, text=True).stdout.split()
        (self.rows, self.columns, self.samples, self.bits_allocated,
         self.bits_stored) = (int(v) for v in info[:5])
        self.frames = int(info[8])          # per file
        self.dtype = numpy.dtype("<u2" if self.bits_allocated == 16
                                 else "u1")
        self.frame_bytes = (self.rows * self.columns * self.samples *
                            self.dtype.itemsize)
        self.images = len(files) * self.frames
        self.pixel_bytes = self.images * self.frame_bytes
        self.reference = {}                 # file -> decoded raw path
        self.pnm = {}                       # file -> [frame PNM paths]
        self.label = (f"{name}: {len(files)} instances x {self.frames} "
                      f"frame{'s' if self.frames > 1 else ''}, "
                      f"{self.columns}x{self.rows} "
                      f"{'RGB' if self.samples == 3 else 'grey'} "
                      f"{self.bits_stored}/{self.bits_allocated} bit, "
                      f"{self.pixel_bytes / MIB:.0f} MiB")

    def peak(self):
        return (1 << self.bits_stored) - 1

    def extract(self, codec_tool, folder):
        """Each file's samples (codec_tool decode) and its frames as
        PGM/PPM for the codestream encoders: untimed."""
        os.makedirs(folder)
        for path in self.files:
            base = os.path.join(folder, os.path.basename(path)[:-4])
            raw = base + ".raw"
            subprocess.run([codec_tool, "decode", path, raw], check=True,
                           stdout=subprocess.DEVNULL)
            self.reference[path] = raw
            samples = self.read_raw(raw)
            self.pnm[path] = []
            for index, frame in enumerate(samples):
                pnm = f"{base}_f{index + 1:03d}." + \
                    ("ppm" if self.samples == 3 else "pgm")
                write_pnm(pnm, frame, self.peak())
                self.pnm[path].append(pnm)

    def read_raw(self, raw):
        shape = (-1, self.rows, self.columns) + \
            ((self.samples,) if self.samples > 1 else ())
        return numpy.fromfile(raw, dtype=self.dtype).reshape(shape)


def write_pnm(path, frame, maxval):
    kind = b"P6" if frame.ndim == 3 else b"P5"
    data = frame.astype(">u2" if maxval > 255 else "u1").tobytes()
    with open(path, "wb") as f:
        f.write(kind + b"\n%d %d\n%d\n" % (frame.shape[1], frame.shape[0],
                                           maxval) + data)


def read_pnm(path):
    with open(path, "rb") as f:
        content = f.read()
    fields, pos = [], 0
    while len(fields) < 4:                  # magic, width, height, maxval
        while content[pos:pos + 1].isspace():
            pos += 1
        if content[pos:pos + 1] == b"#":
            pos = content.index(b"\n", pos)
            continue
        end = pos
        while not content[end:end + 1].isspace():
            end += 1
        fields.append(content[pos:end])
        pos = end
    width, height, maxval = (int(v) for v in fields[1:])
    dtype = ">u2" if maxval > 255 else "u1"
    shape = (height, width) + ((3,) if fields[0] == b"P6" else ())
    return numpy.frombuffer(content[pos + 1:], dtype=dtype).reshape(shape)


# ---- tools ------------------------------------------------------------------

class Tool:
    """A command-line encoder: argv(input, output) for one DICOM file
    (per_frame False) or one PNM frame (per_frame True)."""

    def __init__(self, name, syntax, argv, extension, per_frame=False,
                 decoder=None, batch=None):
        self.name = name
        self.syntax = syntax
        self.argv = argv
        self.extension = extension
        self.per_frame = per_frame
        self.decoder = decoder              # for codestreams
        # batch(LIST) is the one command that runs a runner's whole share
        # (LIST: the share's argv(input, output), a line each, tab
        # separated); None: one command a file
        self.batch = batch

    def jobs(self, series, files, folder):
        """[(argv, output)] for the given files of series."""
        pairs = []
        for path in files:
            sources = series.pnm[path] if self.per_frame else [path]
            for source in sources:
                stem = os.path.splitext(os.path.basename(source))[0]
                out = os.path.join(folder, stem + self.extension)
                pairs.append((self.argv(source, out), out))
        return pairs


def tools_for(series, codec_tool):
    colour = series.samples == 3
    tools = []
    for ts, _, lossless in SYNTAXES:
        if ts == TS_JPEG_LOSSLESS_SV1 or (ts == TS_JPEG_BASELINE and
                                          not colour):
            continue
        options = SIREN_OPTIONS.get(ts, [])
        tools.append(Tool("SIREN", ts, lambda i, o: [i, o], ".dcm",
                          batch=lambda lst, t=ts, op=options:
                          [codec_tool, "encode-list", t, lst,
                           "--no-sync"] + op))
        if lossless:
            tools.append(Tool("SIREN no check", ts, lambda i, o: [i, o],
                              ".dcm", batch=lambda lst, t=ts:
                              [codec_tool, "encode-list", t, lst,
                               "--no-sync", "--no-verify"]))
        tools.append(Tool(PER_FILE, ts, lambda i, o, t=ts, op=options:
                          [codec_tool, "encode", t, i, o, "--no-sync"] + op,
                          ".dcm"))
    tools += [
        Tool("opj_compress", TS_J2K_LOSSLESS,
             lambda i, o: ["opj_compress", "-i", i, "-o", o], ".j2k",
             per_frame=True, decoder="opj_decompress"),
        Tool("opj_compress -r 10 -I", TS_J2K,
             lambda i, o: ["opj_compress", "-i", i, "-o", o, "-r", "10",
                           "-I"], ".j2k", per_frame=True,
             decoder="opj_decompress"),
        # Grok, the other JPEG 2000 library Debian 12 packages (AGPL-3,
        # so an anchor here, not a dependency); one thread, as the others
        Tool("grk_compress -H 1", TS_J2K_LOSSLESS,
             lambda i, o: ["grk_compress", "-H", "1", "-i", i, "-o", o],
             ".j2k", per_frame=True, decoder="opj_decompress"),
        Tool("ojph_compress", TS_HTJ2K_LOSSLESS,
             lambda i, o: ["ojph_compress", "-i", i, "-o", o, "-reversible",
                           "true"], ".j2c", per_frame=True,
             decoder="ojph_expand"),
        Tool("dcmcjpls", TS_JPEG_LS, lambda i, o: ["dcmcjpls", i, o], ".dcm"),
        Tool("dcmcjpeg +e1", TS_JPEG_LOSSLESS_SV1,
             lambda i, o: ["dcmcjpeg", "+e1", i, o], ".dcm"),
        Tool("dcmcrle", TS_RLE, lambda i, o: ["dcmcrle", i, o], ".dcm"),
        Tool("gdcmconv --jpegls", TS_JPEG_LS,
             lambda i, o: ["gdcmconv", "--jpegls", i, o], ".dcm"),
        Tool("gdcmconv --j2k", TS_J2K_LOSSLESS,
             lambda i, o: ["gdcmconv", "--j2k", i, o], ".dcm"),
        Tool("gdcmconv --j2k --lossy -r 10", TS_J2K,
             lambda i, o: ["gdcmconv", "--j2k", "--lossy", "-r", "10", i, o],
             ".dcm"),
        Tool("gdcmconv --jpeg", TS_JPEG_LOSSLESS_SV1,
             lambda i, o: ["gdcmconv", "--jpeg", i, o], ".dcm"),
        Tool("gdcmconv --rle", TS_RLE,
             lambda i, o: ["gdcmconv", "--rle", i, o], ".dcm"),
    ]
    if colour:
        tools += [
            Tool("dcmcjpeg +eb +q 90", TS_JPEG_BASELINE,
                 lambda i, o: ["dcmcjpeg", "+eb", "+q", "90", i, o], ".dcm"),
            Tool("gdcmconv --jpeg --lossy -q 90", TS_JPEG_BASELINE,
                 lambda i, o: ["gdcmconv", "--jpeg", "--lossy", "-q", "90",
                               i, o], ".dcm"),
        ]
    return tools


def run_parallel(runner, pairs, jobs, folder, batch=None):
    """Runs the commands dealt round-robin to `jobs` runners at once (with
    batch, each runner's share as the one command batch(list of the
    share)); returns (wall seconds, CPU seconds of everything they ran,
    largest peak RSS)."""
    shares = [pairs[i::jobs] for i in range(jobs)]
    inputs, procs = [], []
    for index, share in enumerate(s for s in shares if s):
        lines = ["\t".join(argv) + "\n" for argv, _ in share]
        if batch:
            listing = os.path.join(folder, f".list-{index}")
            with open(listing, "w") as f:
                f.write("".join(lines))
            lines = ["\t".join(batch(listing)) + "\n"]
        path = os.path.join(folder, f".commands-{index}")
        with open(path, "w") as f:
            f.write("".join(lines))
        inputs.append(open(path))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    for stdin in inputs:
        procs.append(subprocess.Popen([runner], stdin=stdin,
                                      stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    answers = [p.communicate() for p in procs]
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for stdin in inputs:
        stdin.close()
    for p, (out, err) in zip(procs, answers):
        if p.returncode != 0:
            fail(f"runner: {err.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + \
        (after.ru_stime - before.ru_stime)
    rss = max(int(out.split()[1]) for out, _ in answers)
    return seconds, cpu, rss


# ---- Orthanc ----------------------------------------------------------------

def gdcm_plugin():
    for folder in PLUGIN_DIRS:
        path = os.path.join(folder, PLUGIN)
        if os.path.exists(path):
            return path
    return None


class OrthancTarget:
    """Orthanc receiving the series by JOBS storescu at once (senders:
    that many instead)."""

    def __init__(self, name, plugin, transcode, senders=None):
        self.name, self.senders = name, senders
        self.syntax = TS_J2K_LOSSLESS if transcode else None
        self.extra = {"DicomCheckCalledAet": False}
        if transcode:
            self.extra.update({
                "Plugins": [plugin],
                "IngestTranscoding": TS_J2K_LOSSLESS,
                "Gdcm": {"Enable": True, "Throttling": os.cpu_count()},
            })

    def run(self, ctx, series, files, jobs, measure=False, check=False):
        """One run; returns (seconds, Orthanc CPU seconds, encoded bytes
        if measure else None)."""
        def body(folder, archive):
            os.sync()
            seconds, cpu = send_series(self.name, archive, files, jobs)
            encoded = None
            if measure or check:
                encoded = self.inspect(archive, ctx, series, files, check)
            return seconds, cpu, encoded
        return with_archive(ctx, "orthanc", self.extra, body)

    def inspect(self, archive, ctx, series, files, check):
        """Encoded bytes of what Orthanc stored; with check, its syntax
        and (lossless) samples against the inputs'."""
        by_uid = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for path in files:
                by_uid[str(pydicom.dcmread(path, stop_before_pixels=True)
                           .SOPInstanceUID)] = path
        return inspect_archive(
            self, archive, ctx, series, check,
            lambda ds, path: by_uid[str(ds.SOPInstanceUID)])


def with_archive(ctx, name, extra_config, body):
    """body(folder, archive) with an Orthanc started in an empty folder
    (stopped and the folder removed after); returns what body returns."""
    folder = os.path.join(ctx["work"], name)
    data_core.remove_folder(folder)
    os.makedirs(folder)
    archive = tls_orthanc.Orthanc(ctx["checks"], ctx["processes"], folder,
                                  "orthanc", extra_config=extra_config)
    try:
        archive.wait_started()
        result = body(folder, archive)
    finally:
        archive.stop()
    if ctx["checks"].failures:
        fail(ctx["checks"].failures[-1])
    data_core.remove_folder(folder)
    return result


def send_series(name, archive, files, jobs, to=None, pids=()):
    """The files by `jobs` storescu at once to `to` ((port, called AE
    title); default: the archive itself), timed until the archive
    counts every instance; returns (seconds, CPU seconds of the archive
    and of pids)."""
    port, called = to or (archive.dicom_port, tls_orthanc.ORTHANC_AET)
    poller = ingest.Poller(archive)
    logs = [tempfile.TemporaryFile() for _ in range(jobs)]
    watched = [archive.process.pid] + list(pids)
    before = [net.proc_cpu_seconds(pid) for pid in watched]
    started = time.monotonic()
    procs = [subprocess.Popen(
        ["storescu", "-aet", "BENCH", "-aec", called, "127.0.0.1",
         str(port)] + files[i::jobs],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        env=net.dcmtk_env()) for i, err in enumerate(logs)
        if files[i::jobs]]
    stored = None
    try:
        while stored is None:
            if poller.count() >= len(files):
                stored = time.monotonic() - started
            elif any(p.poll() not in (None, 0) for p in procs) or \
                    time.monotonic() - started > DELIVERY_TIMEOUT_S:
                break
            else:
                time.sleep(POLL_S)
        after = [net.proc_cpu_seconds(pid) for pid in watched]
    finally:
        poller.close()
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    for p, err in zip(procs, logs):
        if p.returncode != 0 or stored is None:
            err.seek(0)
            fail(f"{name}: storescu exit status {p.returncode}; "
                 f"Orthanc stored {'all' if stored else 'not all'} "
                 f"{len(files)} instances: " +
                 err.read().decode(errors="replace").strip()[-2000:])
    cpu = sum((a[0] - b[0]) + (a[1] - b[1])
              for a, b in zip(after, before))
    return stored, cpu


def inspect_archive(target, archive, ctx, series, check, source_of):
    """Encoded bytes of what Orthanc stored; with check, its syntax and
    (lossless) samples against those of source_of(dataset, stored file),
    the input it came from."""
    total = 0
    for instance in archive.instances():
        content = archive.get(f"/instances/{instance}/file", raw=True)
        ds = pydicom.dcmread(io.BytesIO(content))
        syntax = str(ds.file_meta.TransferSyntaxUID)
        if target.syntax:
            total += len(ds.PixelData)
        if not check:
            continue
        want = target.syntax or "1.2.840.10008.1.2.1"
        if syntax != want:
            fail(f"{target.name}: Orthanc stored {syntax}, expected {want}")
        path = os.path.join(ctx["work"], "orthanc-check.dcm")
        with open(path, "wb") as f:
            f.write(content)
        check_lossless(ctx, target.name, series, source_of(ds, path), path)
    return total


GATEWAY_CONFIG = """\
aet "SIREN"
spool "{spool}"
processors 0
plain
  port "{port}"
  allow-calling "BENCH"
  policy "{policy}"
end
archive
  host "127.0.0.1"
  port "{archive_port}"
  aet "{archive_aet}"
  connections 2
end
audit
  file "{audit}"
end
metrics
  port "{metrics_port}"
end
"""

GATEWAY_POLICY = """\
policy "bench-codec" version 1
  profile basic
  key file "{key}"
  compress to {codec}
end
"""


class GatewayTarget:
    """SIREN's gateway (siren serve -c) in front of a plain Orthanc: it
    receives the series from JOBS storescu at once over plain DICOM,
    de-identifies it (the basic profile), compresses it by the policy's
    compress line with the lossless check, in its processor threads (one
    a core), and forwards it to Orthanc, which stores it as it is. Timed
    as Orthanc's ingest transcoding is: until Orthanc counts every
    instance; CPU of the gateway and Orthanc."""

    def __init__(self, name, syntax, codec, senders=None):
        self.name, self.syntax, self.codec = name, syntax, codec
        self.senders = senders

    def run(self, ctx, series, files, jobs, measure=False, check=False):
        def body(folder, archive):
            running = self.start(ctx, folder, archive)
            try:
                os.sync()
                seconds, cpu = send_series(self.name, archive, files, jobs,
                                           to=(running.port, "SIREN"),
                                           pids=[running.pid])
                encoded = None
                if measure or check:
                    encoded = inspect_archive(
                        self, archive, ctx, series, check,
                        self.source_finder(ctx, series, files))
            finally:
                running.stop()
            return seconds, cpu, encoded
        return with_archive(ctx, "gateway", {"DicomCheckCalledAet": False},
                            body)

    def start(self, ctx, folder, archive):
        key = os.path.join(folder, "pseudonym.key")
        with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(os.urandom(32).hex())
        policy = os.path.join(folder, "bench.policy")
        with open(policy, "w") as f:
            f.write(GATEWAY_POLICY.format(key=key, codec=self.codec))

        def argv(spool, port):
            config = os.path.join(folder, "siren.conf")
            with open(config, "w") as f:
                f.write(GATEWAY_CONFIG.format(
                    spool=spool, port=port, policy=policy,
                    archive_port=archive.dicom_port,
                    archive_aet=tls_orthanc.ORTHANC_AET,
                    audit=os.path.join(folder, "audit.jsonl"),
                    metrics_port=net.free_port()))
            return [ctx["siren"], "serve", "-c", config]
        server = net.Server("siren serve", argv, port_from_log=False)
        return server.start(os.path.join(folder, "spool"),
                            os.path.join(folder, "serve.log"))

    @staticmethod
    def source_finder(ctx, series, files):
        """De-identification gives the instances new UIDs: the input a
        stored instance came from is the one with its samples."""
        def source_of(ds, path):
            got = decode_output(ctx, None, series, path, ctx["work"])
            for source in files:
                want = series.read_raw(series.reference[source])
                if got.shape == want.shape and numpy.array_equal(got, want):
                    return source
            fail(f"SIREN gateway: {path} holds the samples of no input")
        return source_of


# ---- checks -----------------------------------------------------------------

def decode_output(ctx, tool, series, output, scratch):
    """The samples of one output as the series' array (frames first)."""
    if getattr(tool, "decoder", None):
        pnm = os.path.join(scratch, "decoded." +
                           ("ppm" if series.samples == 3 else "pgm"))
        subprocess.run([tool.decoder, "-i", output, "-o", pnm], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return read_pnm(pnm).astype(series.dtype)[None]
    raw = os.path.join(scratch, "decoded.raw")
    done = subprocess.run([ctx["codec_tool"], "decode", output, raw],
                          capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{tool.name}: codec_tool cannot decode {output}: "
             f"{done.stderr.strip()}")
    photometric = done.stdout.split()[7]
    if series.samples == 3 and photometric != "RGB":
        fail(f"{tool.name}: {output} decodes to {photometric}, not RGB")
    return series.read_raw(raw)


def check_lossless(ctx, name, series, source, output, tool=None,
                   frame=None):
    scratch = ctx["work"]
    got = decode_output(ctx, tool, series, output, scratch)
    want = series.read_raw(series.reference[source])
    if frame is not None:
        want = want[frame:frame + 1]
    if got.shape != want.shape or not numpy.array_equal(got, want):
        fail(f"{name}: {output} does not decode to the samples of {source}")


def squared_error(ctx, tool, series, source, output, frame=None):
    got = decode_output(ctx, tool, series, output, ctx["work"])
    want = series.read_raw(series.reference[source])
    if frame is not None:
        want = want[frame:frame + 1]
    diff = got.astype(numpy.float64) - want.astype(numpy.float64)
    return float((diff * diff).sum()), diff.size


def dicom_syntax(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(pydicom.dcmread(path, stop_before_pixels=True)
                   .file_meta.TransferSyntaxUID)


def check_tool(ctx, tool, series, files, pairs):
    """The warm-up's checks of one tool's outputs; returns the PSNR in dB
    for a lossy syntax, else None."""
    sse, count = 0.0, 0
    outputs = iter(out for _, out in pairs)
    for path in files:
        frames = range(series.frames) if tool.per_frame else [None]
        for frame in frames:
            out = next(outputs)
            if not tool.per_frame:
                syntax = dicom_syntax(out)
                if syntax != tool.syntax:
                    fail(f"{tool.name}: {out} is {syntax}, expected "
                         f"{tool.syntax}")
            if LOSSLESS[tool.syntax]:
                check_lossless(ctx, tool.name, series, path, out, tool,
                               frame)
            else:
                e, n = squared_error(ctx, tool, series, path, out, frame)
                sse, count = sse + e, count + n
    if LOSSLESS[tool.syntax]:
        return None
    mse = sse / count
    return float("inf") if mse == 0 else \
        10 * numpy.log10(series.peak() ** 2 / mse)


def encoded_bytes(tool, pairs):
    """Encapsulated Pixel Data bytes (DICOM) or codestream bytes."""
    total = 0
    for _, out in pairs:
        if tool.per_frame:
            total += os.path.getsize(out)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                total += len(pydicom.dcmread(out).PixelData)
    return total


# ---- reporting --------------------------------------------------------------

def package_versions():
    names = ["libopenjp2-7", "libopenjph0.9", "libcharls2",
             "libjpeg62-turbo", "dcmtk", "libgdcm3.0", "orthanc",
             "orthanc-gdcm"]
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Package} "
                           "${Version}\\n"] + names, capture_output=True,
                          text=True)
    versions = dict(line.split(" ", 1) for line in
                    done.stdout.splitlines() if " " in line)
    return ", ".join(f"{n} {versions[n]}" for n in names if n in versions)


def met(value, target):
    return "**met**" if value >= target else "**not met**"


def series_table(add, series, res):
    add(f"{series.label}:")
    add("")
    add("| Syntax | Tool | images/s | MiB/s | CPU ms/image | compression "
        "ratio | PSNR dB | tool time / SIREN's | peak RSS |")
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = res["rows"]
    for ts, label, _ in SYNTAXES + [(None, "(none: Orthanc as is)", True)]:
        for key in [k for k in rows if k[1] == ts]:
            r = rows[key]
            seconds = statistics.median(r["times"])
            ours = rows.get(("SIREN", ts))
            if key[0] == "SIREN" or not ours:
                speed = "1" if key[0] == "SIREN" else "-"
            else:
                speed = net.ratio_cell([t / o for t, o in
                                    zip(r["times"], ours["times"])])
            cpu = statistics.median(r["cpu"]) * 1000 / series.images
            ratio = (f"{series.pixel_bytes / r['encoded']:.2f}"
                     if r.get("encoded") else "-")
            psnr = f"{r['psnr']:.1f}" if r.get("psnr") is not None else "-"
            rss = f"{r['rss'] / MIB:.1f} MiB" if r.get("rss") else "-"
            add(f"| {label} | {key[0]} | {series.images / seconds:.1f} | "
                f"{series.pixel_bytes / MIB / seconds:.1f} | {cpu:.1f} | "
                f"{ratio} | {psnr} | {speed} | {rss} |")
    add("")


def targets_table(add, all_series, results):
    add("| Target (issue 7) | " + " | ".join(s.name for s in all_series) +
        " |")
    add("|---|" + "---|" * len(all_series))

    def speed(s, faster, slower):
        rows = results[s.name]["rows"]
        if faster not in rows or slower not in rows:
            return "-"
        values = [t / o for t, o in zip(rows[slower]["times"],
                                        rows[faster]["times"])]
        return values

    lines = [
        ("SIREN .90 rate / Orthanc ingest transcoding rate, >= 2",
         ("SIREN", TS_J2K_LOSSLESS), ("Orthanc", TS_J2K_LOSSLESS), 2.0),
        ("SIREN gateway .90 rate (end to end) / Orthanc's, >= 2",
         ("SIREN gateway", TS_J2K_LOSSLESS), ("Orthanc", TS_J2K_LOSSLESS),
         2.0),
        ("the same, one association (as a site sends a study)",
         (ONE_SENDER % "SIREN gateway", TS_J2K_LOSSLESS),
         (ONE_SENDER % "Orthanc", TS_J2K_LOSSLESS), 2.0),
        ("SIREN .201 rate / SIREN .90 rate, >= 5",
         ("SIREN", TS_HTJ2K_LOSSLESS), ("SIREN", TS_J2K_LOSSLESS), 5.0),
        ("the same without the lossless check (encoder alone)",
         ("SIREN no check", TS_HTJ2K_LOSSLESS),
         ("SIREN no check", TS_J2K_LOSSLESS), None),
        ("the same with the check, a process a file",
         (PER_FILE, TS_HTJ2K_LOSSLESS), (PER_FILE, TS_J2K_LOSSLESS), None),
        ("ojph_compress rate / opj_compress rate (the libraries alone)",
         ("ojph_compress", TS_HTJ2K_LOSSLESS),
         ("opj_compress", TS_J2K_LOSSLESS), None),
        ("grk_compress rate / opj_compress rate (JPEG 2000 libraries)",
         ("grk_compress -H 1", TS_J2K_LOSSLESS),
         ("opj_compress", TS_J2K_LOSSLESS), None),
    ]
    for label, faster, slower, target in lines:
        cells = []
        for s in all_series:
            values = speed(s, faster, slower)
            if values == "-":
                cells.append("-")
                continue
            cell = net.ratio_cell(values)
            if target:
                cell += f": {met(statistics.median(values), target)}"
            cells.append(cell)
        add(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for s in all_series:
        rows = results[s.name]["rows"]
        ht = rows[("SIREN", TS_HTJ2K_LOSSLESS)]["encoded"]
        j2k = rows[("SIREN", TS_J2K_LOSSLESS)]["encoded"]
        value = j2k / ht                 # HTJ2K's ratio / J2K's ratio
        cells.append(f"**{value:.3f}**: {met(value, 0.9)}")
    add("| SIREN .201 compression ratio / SIREN .90's, >= 0.9 | " +
        " | ".join(cells) + " |")
    add("")


def report(all_series, results, args, started, ended, loads):
    lines = []
    add = lines.append
    add(f"Run {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs "
        f"({data_core.cpu_model()}), Linux {platform.release()}; "
        f"{package_versions()}; SIREN {data_core.git_revision()}; "
        f"{args.jobs} processes at once; {args.rounds} rounds; "
        f"{(ended - started).seconds // 60} min; load average (1 min) "
        f"{min(loads):.1f} to {max(loads):.1f} during the run; "
        f"`bench/run.sh codec --rounds {args.rounds} --count {args.count} "
        f"--us-instances {args.us_instances} --us-frames {args.us_frames}`.")
    add("")
    for s in all_series:
        series_table(add, s, results[s.name])
    targets_table(add, all_series, results)
    return "\n".join(lines) + "\n"


# ---- main -------------------------------------------------------------------

def parse_args():
    parser = data_core.bench_parser(__doc__, 3, runner=True)
    parser.add_argument("--count", type=int, default=40,
                        help="CT instances: the first COUNT of the "
                        "200-instance series")
    parser.add_argument("--us-instances", type=int, default=2)
    parser.add_argument("--us-frames", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=os.cpu_count(),
                        help="processes at once (default: one a CPU)")
    for ignored in ("--size-mib", "--senders", "--clients", "--seconds",
                    "--associations"):
        parser.add_argument(ignored, help="another benchmark's option, "
                            "accepted and ignored so that bench/run.sh can "
                            "pass one set of options")
    args = parser.parse_args()
    if min(args.rounds, args.count, args.us_instances, args.us_frames,
           args.jobs) < 1:
        fail("--rounds, --count, --us-instances, --us-frames and --jobs "
             "must be >= 1")
    return args


def check_tools(args):
    for tool, package in (("opj_compress", "libopenjp2-tools"),
                          ("opj_decompress", "libopenjp2-tools"),
                          ("grk_compress", "grokj2k-tools"),
                          ("ojph_compress", "openjph-tools"),
                          ("ojph_expand", "openjph-tools"),
                          ("dcmcjpls", "dcmtk"), ("storescu", "dcmtk"),
                          ("gdcmconv", "libgdcm-tools"),
                          ("Orthanc", "orthanc")):
        if not shutil.which(tool):
            fail(f"{tool} not found: apt-get install {package}")
    plugin = gdcm_plugin()
    if not plugin:
        fail(f"{PLUGIN} not found in {' or '.join(PLUGIN_DIRS)}: apt-get "
             f"install orthanc-gdcm")
    codec_tool = os.path.abspath(os.path.join(args.build, "tests",
                                              "codec_tool"))
    gen_series = os.path.join(args.build, "tests", "gen_series")
    siren = os.path.join(args.build, "gateway", "siren")
    for path in (codec_tool, gen_series, siren):
        if not os.access(path, os.X_OK):
            fail(f"{path} is missing: run 'make build' first")
    syntaxes = subprocess.run([codec_tool, "syntaxes"], capture_output=True,
                              text=True, check=True).stdout
    for ts in (TS_JPEG_LS, TS_J2K_LOSSLESS, TS_HTJ2K_LOSSLESS, TS_J2K,
               TS_JPEG_BASELINE, TS_RLE):
        if f"{ts} decode encode" not in syntaxes:
            fail(f"{codec_tool} does not encode {ts} (built without its "
                 f"library?)")
    kind = data_core.build_type(args.build)
    if kind != "Release":
        log(f"warning: {args.build} is a {kind} build, not Release")
    return plugin, codec_tool, gen_series


def run_tool(ctx, args, s, tool, files, measure=False):
    """One run of tool on files of series s into an empty folder: (wall
    seconds, CPU seconds, peak RSS, encoded bytes if measure, the
    (argv, output) pairs); the outputs are left for the caller."""
    if isinstance(tool, (OrthancTarget, GatewayTarget)):
        seconds, cpu, encoded = tool.run(ctx, s, files,
                                         tool.senders or args.jobs,
                                         measure=measure)
        return seconds, cpu, 0, encoded, []
    folder = os.path.join(ctx["work"], "out")
    data_core.remove_folder(folder)
    os.makedirs(folder)
    pairs = tool.jobs(s, files, folder)
    os.sync()
    seconds, cpu, rss = run_parallel(args.runner, pairs, args.jobs, folder,
                                     tool.batch)
    encoded = encoded_bytes(tool, pairs) if measure else None
    return seconds, cpu, rss, encoded, pairs


def warm_up(ctx, args, runs, results):
    """Every tool on the first JOBS files of its series, outputs checked;
    a row for each (tool, syntax), with the PSNR of lossy ones."""
    log("warm-up: the first files of each series, outputs checked")
    for s, tool in runs:
        files = s.files[:args.jobs]
        row = results[s.name]["rows"].setdefault(
            (tool.name, tool.syntax), {"times": [], "cpu": [], "rss": 0})
        if isinstance(tool, (OrthancTarget, GatewayTarget)):
            tool.run(ctx, s, files, tool.senders or args.jobs, check=True)
            continue
        pairs = run_tool(ctx, args, s, tool, files)[4]
        row["psnr"] = check_tool(ctx, tool, s, files, pairs)
        data_core.remove_folder(os.path.join(ctx["work"], "out"))


def timed_rounds(ctx, args, runs, results, loads):
    for index in range(args.rounds):
        shift = index % len(runs)
        for s, tool in runs[shift:] + runs[:shift]:
            row = results[s.name]["rows"][(tool.name, tool.syntax)]
            seconds, cpu, rss, encoded, _ = run_tool(
                ctx, args, s, tool, s.files, measure=(index == 0))
            data_core.remove_folder(os.path.join(ctx["work"], "out"))
            if index == 0:
                row["encoded"] = encoded
            row["times"].append(seconds)
            row["cpu"].append(cpu)
            row["rss"] = max(row["rss"], rss)
        loads.append(os.getloadavg()[0])
        log(f"round {index + 1}/{args.rounds} done (load {loads[-1]:.1f})")


def main():
    args = parse_args()
    plugin, codec_tool, gen_series = check_tools(args)
    started = datetime.datetime.now(datetime.timezone.utc)
    loads = [os.getloadavg()[0]]
    ct_files = net.ct_series(gen_series, args.out,
                             max(SHARED_CT_COUNT, args.count))[:args.count]
    us_files = us_series(args.out, args.us_instances, args.us_frames)
    work = os.path.abspath(os.path.join(args.out, "scratch-codec"))
    data_core.remove_folder(work)
    os.makedirs(work)
    ctx = {"work": work, "codec_tool": codec_tool,
           "siren": os.path.abspath(os.path.join(args.build, "gateway",
                                                 "siren")),
           "checks": tls_orthanc.Checks(),
           "processes": tls_orthanc.Processes()}
    all_series = [Series("CT", [os.path.abspath(p) for p in ct_files],
                         codec_tool),
                  Series("US", [os.path.abspath(p) for p in us_files],
                         codec_tool)]
    runs = []                    # (series, tool) in the rotation's order
    for s in all_series:
        s.extract(codec_tool, os.path.join(work, f"frames-{s.name}"))
        runs += [(s, tool) for tool in tools_for(s, codec_tool)]
        runs.append((s, OrthancTarget("Orthanc", plugin, True)))
        runs.append((s, GatewayTarget("SIREN gateway", TS_J2K_LOSSLESS,
                                      "jpeg2000-lossless")))
        # A site sends a study on one association: Orthanc transcodes in
        # that association's thread, the gateway in all its processors.
        runs.append((s, OrthancTarget(ONE_SENDER % "Orthanc", plugin, True,
                                      senders=1)))
        runs.append((s, GatewayTarget(ONE_SENDER % "SIREN gateway",
                                      TS_J2K_LOSSLESS, "jpeg2000-lossless",
                                      senders=1)))
        runs.append((s, OrthancTarget("Orthanc plain", plugin, False)))
    results = {s.name: {"rows": {}} for s in all_series}
    try:
        warm_up(ctx, args, runs, results)
        timed_rounds(ctx, args, runs, results, loads)
    finally:
        ctx["processes"].stop_all()
    shutil.rmtree(work, ignore_errors=True)
    ended = datetime.datetime.now(datetime.timezone.utc)
    text = report(all_series, results, args, started, ended, loads)
    with open(os.path.join(args.out, "codec.md"), "w") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
