#!/bin/sh
# demo.sh - what `make demo` shows. It shows only what exists: today the
# DICOM data core (reading every transfer syntax, writing, character sets)
# through `siren dump`. The full demo (throwaway PKI, local Orthanc, a study
# sent over DICOM-TLS and shown de-identified) arrives with the gateway
# service; until then this script says so instead of pretending.
set -eu
cd "$(dirname "$0")/.."
siren=${SIREN_BIN:-build/gateway/siren}
data=${SIREN_PYDICOM_DATA:-/usr/lib/python3/dist-packages/pydicom/data}

cat <<'TXT'
SIREN demo - foundation stage
=============================
Built so far: the DICOM data core, `siren dump`, and the DICOM network layer
(`siren echo`, `siren send`, and `siren serve --dir`, a plain C-STORE SCP).
Not built yet: TLS listener, site identity, policies, de-identification,
spool, forwarding to Orthanc. Nothing below is de-identified.
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

# The network layer, on loopback: serve into a throwaway folder, echo, send.
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
mkdir "$work/received"
"$siren" serve --dir "$work/received" --port 0 --aet SIREN 2>"$work/serve.log" &
server_pid=$!
port=
for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$(sed -n 's/.*serve.listening port=\([0-9]*\).*/\1/p' "$work/serve.log")
    [ -n "$port" ] && break
    sleep 0.2
done
[ -n "$port" ] || { echo "siren serve did not start:"; cat "$work/serve.log"; exit 1; }
printf '\n$ siren serve --dir received --port 0 --aet SIREN &   # listening on port %s\n' "$port"
printf '$ siren echo --call SIREN 127.0.0.1 %s\n' "$port"
"$siren" echo --call SIREN 127.0.0.1 "$port"
printf '$ siren send --call SIREN 127.0.0.1 %s CT_small.dcm MR_small_bigendian.dcm JPEG2000.dcm\n' "$port"
"$siren" send --call SIREN 127.0.0.1 "$port" "$data/test_files/CT_small.dcm" \
    "$data/test_files/MR_small_bigendian.dcm" "$data/test_files/JPEG2000.dcm" |
    sed "s|$data/test_files/||"
printf '\n$ ls received; siren dump received/* | grep PatientName\n'
ls "$work/received"
"$siren" dump -q "$work/received"/*.dcm | grep PatientName
printf '\nWhat siren serve logged:\n'
sed 's/^/  /' "$work/serve.log"
printf '\nNext: make test (the whole suite); docs/ARCHITECTURE.md explains the design.\n'
