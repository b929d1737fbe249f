#!/bin/sh
# demo.sh - what `make demo` shows. It shows only what exists: today the
# DICOM data core (reading every transfer syntax, writing, character sets)
# through `siren dump`. The full demo (throwaway PKI, local Orthanc, a study
# sent over DICOM-TLS and shown de-identified) arrives with the gateway
# service; until then this script says so instead of pretending.
set -eu
cd "$(dirname "$0")/.."
siren=build/gateway/siren
data=${SIREN_PYDICOM_DATA:-/usr/lib/python3/dist-packages/pydicom/data}

cat <<'TXT'
SIREN demo - foundation stage
=============================
Built so far: the DICOM data core and `siren dump`.
Not built yet: TLS listener, site identity, policies, de-identification,
spool, forwarding to Orthanc. This demo does not start a gateway.
TXT

# show FILE WHAT PATTERN: the lines of `siren dump FILE` matching PATTERN.
show() {
    printf '\n$ siren dump %s | grep ...   # %s\n' "$(basename "$1")" "$2"
    "$siren" dump -q "$1" | grep -E "$3"
}

show "$data/test_files/CT_small.dcm" "Explicit VR Little Endian" \
    'TransferSyntax:|PatientName|Modality|OtherPatientIDsSeq|  \(0010,0020\)|PixelData'
show "$data/test_files/MR_small_bigendian.dcm" "Explicit VR Big Endian (retired)" \
    'TransferSyntax:|PatientName|Rows|PixelData'
show "$data/test_files/image_dfl.dcm" "Deflated, inflated to a temporary file" \
    'TransferSyntax:|SOPClassUID|PixelData'
show "$data/test_files/JPEG2000.dcm" "encapsulated JPEG 2000, fragments by reference" \
    'TransferSyntax:|PixelData|pi '
show "$data/charset_files/chrH31.dcm" "ISO 2022 IR 87 (Japanese) decoded to UTF-8" \
    'SpecificCharacterSet|PatientName'
show "$data/charset_files/chrKoreanMulti.dcm" "ISO 2022 IR 149 (Korean)" \
    'SpecificCharacterSet|PatientName'

printf '\n$ siren dump rtplan_truncated.dcm   # a truncated file: a clear error, exit 1\n'
"$siren" dump -q "$data/test_files/rtplan_truncated.dcm" 2>&1 >/dev/null || true
printf '\nNext: make test (the whole suite); docs/ARCHITECTURE.md explains the design.\n'
