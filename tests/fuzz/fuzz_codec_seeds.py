#!/usr/bin/python3
"""fuzz_codec_seeds.py SYNTAX... DIR - seeds for fuzz_codec_decode.c: the
first frame of each file of pydicom's test corpus in one of the transfer
syntaxes given, behind the harness's 8-byte image description."""

import os
import struct
import sys

import pydicom
import pydicom.encaps

DATA = os.environ.get("SIREN_PYDICOM_DATA",
                      "/usr/lib/python3/dist-packages/pydicom/data")
PHOTOMETRIC = {"MONOCHROME2": 0, "MONOCHROME1": 1, "PALETTE COLOR": 2,
               "RGB": 0, "YBR_FULL": 1, "YBR_FULL_422": 2, "YBR_RCT": 3,
               "YBR_ICT": 4}


def description(ds):
    samples = 1 if ds.SamplesPerPixel == 3 else 0
    allocated = {8: 0, 16: 1, 32: 2}.get(ds.BitsAllocated, 0)
    flags = ds.PixelRepresentation | PHOTOMETRIC.get(
        ds.PhotometricInterpretation, 0) << 1
    return struct.pack("<HHBBBB", ds.Rows, ds.Columns, samples, allocated,
                       ds.BitsStored, flags)


def main():
    syntaxes, out = sys.argv[1:-1], sys.argv[-1]
    folder = os.path.join(DATA, "test_files")
    for name in sorted(os.listdir(folder)):
        try:
            ds = pydicom.dcmread(os.path.join(folder, name))
            if ds.file_meta.TransferSyntaxUID not in syntaxes:
                continue
            frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
            frame = next(pydicom.encaps.generate_pixel_data_frame(
                ds.PixelData, frames))
        except Exception:
            continue
        with open(os.path.join(out, name + ".seed"), "wb") as f:
            f.write(description(ds) + frame)


if __name__ == "__main__":
    main()
