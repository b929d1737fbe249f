#!/bin/sh
# demo.sh - what `make demo` shows. It shows only what exists: the DICOM
# data core through `siren dump`, a study sent over DICOM-TLS to
# `siren serve` with a throwaway PKI (a good site, an expired certificate,
# a site using another's AE title), and the received study de-identified
# with `siren apply` under the example policies. The full demo (the
# gateway de-identifying as it receives, forwarding to a local Orthanc)
# arrives with the gateway service; until then this script says so
# instead of pretending.
set -eu
cd "$(dirname "$0")/.."
siren=${SIREN_BIN:-build/gateway/siren}
data=${SIREN_PYDICOM_DATA:-/usr/lib/python3/dist-packages/pydicom/data}

cat <<'TXT'
SIREN demo - foundation stage
=============================
Built so far: the DICOM data core, `siren dump`, the DICOM network layer,
DICOM-TLS with site identity (`siren echo`, `siren send`, `siren serve`),
the policy language and the PS3.15 de-identification engine (`siren policy`,
`siren apply`, `siren diff`).
Not built yet: the gateway service that de-identifies as it receives (the
spool), forwarding to Orthanc, pixel redaction. `siren serve` below stores
what it receives as received: do not point real sites at it.
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

# The network layer over DICOM-TLS, on loopback: a throwaway PKI, siren
# serve with site A bound to its certificate, then a good and a bad sender.
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
printf '\n$ tests/integration/pki.py pki   # a throwaway PKI (openssl)\n'
/usr/bin/python3 tests/integration/pki.py "$work/pki"
pki=$work/pki
mkdir "$work/received"
"$siren" serve --dir "$work/received" --aet SIREN --tls-port 0 \
    --tls-cert "$pki/server-chain.pem" --tls-key "$pki/server.key" \
    --sites-ca "$pki/ca-bundle.pem" --crl "$pki/crls.pem" \
    --site 'site-a|cn:site-a.example.org|SITEA' 2>"$work/serve.log" &
server_pid=$!
port=
for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$(sed -n 's/.*serve.listening tls_port=\([0-9]*\).*/\1/p' "$work/serve.log")
    [ -n "$port" ] && break
    sleep 0.2
done
[ -n "$port" ] || { echo "siren serve did not start:"; cat "$work/serve.log"; exit 1; }
printf '$ siren serve --dir received --tls-port 0 ... --site '"'"'site-a|cn:site-a.example.org|SITEA'"'"' &   # DICOM-TLS on port %s\n' "$port"
tls_as() { # tls_as CERT AET: siren's client options for that certificate
    echo --tls --tls-ca "$pki/ca-bundle.pem" --tls-cert "$pki/$1-chain.pem" \
        --tls-key "$pki/$1.key" --aet "$2" --call SIREN
}
printf '\n$ siren send --tls ... (site A certificate, AE SITEA) CT_small.dcm MR_small_bigendian.dcm JPEG2000.dcm\n'
# shellcheck disable=SC2046
"$siren" send $(tls_as site-a SITEA) localhost "$port" \
    "$data/test_files/CT_small.dcm" "$data/test_files/MR_small_bigendian.dcm" \
    "$data/test_files/JPEG2000.dcm" | sed "s|$data/test_files/||"
printf '\n$ siren send --tls ... (an expired certificate) CT_small.dcm\n'
# shellcheck disable=SC2046
"$siren" send $(tls_as expired SITEA) localhost "$port" \
    "$data/test_files/CT_small.dcm" 2>&1 | sed "s|$data/test_files/||" || true
printf '\n$ siren send --tls ... (site A certificate, AE SITEB) CT_small.dcm\n'
# shellcheck disable=SC2046
"$siren" send $(tls_as site-a SITEB) localhost "$port" \
    "$data/test_files/CT_small.dcm" 2>&1 | sed "s|$data/test_files/||" || true
printf '\n$ siren dump received/* | grep -E "PatientName|SendingApplication"   # as received\n'
"$siren" dump -q "$work/received"/*.dcm | grep -E "PatientName|SendingApplication"
printf '\n$ siren dump received/FIRST | grep PrivateInformation   # who sent it (JSON in the meta)\n'
/usr/bin/python3 - "$work/received" <<'PY'
import glob, json, sys
import pydicom
first = sorted(glob.glob(sys.argv[1] + "/*.dcm"))[0]
meta = pydicom.filereader.read_file_meta_info(first)
print(json.dumps(json.loads(meta[0x00020102].value.rstrip(b"\0")), indent=2))
PY
# De-identification, offline, with the example policies.
(umask 077; openssl rand -hex 32 > "$work/pseudonym.key")
export SIREN_PSEUDONYM_KEY="$work/pseudonym.key"
printf '\n$ siren policy check examples/policies/trial.policy\n'
"$siren" policy check examples/policies/trial.policy 2>&1
printf '\n$ siren policy explain examples/policies/trial.policy PatientID StudyDate AccessionNumber\n'
"$siren" policy explain examples/policies/trial.policy PatientID StudyDate \
    AccessionNumber 2>/dev/null
printf '\n$ siren apply --policy examples/policies/basic.policy -o deidentified received/\n'
"$siren" apply -q --policy examples/policies/basic.policy -o "$work/deidentified" \
    "$work/received" | sed "s|$work/||"
printf '\n$ siren dump deidentified/* | grep -E "PatientName|PatientID|StudyInstanceUID|DeidentificationMethod"\n'
"$siren" dump -q "$work/deidentified"/*.dcm |
    grep -E "PatientName|PatientID|StudyInstanceUID|DeidentificationMethod" | sort -u
printf '\n$ siren diff --policy examples/policies/trial.policy CT_small.dcm | head -20\n'
"$siren" diff --policy examples/policies/trial.policy \
    "$data/test_files/CT_small.dcm" 2>/dev/null | grep -v '^- (00[0-4][0-9],1' | head -20

printf '\nWhat siren serve logged:\n'
sed 's/^/  /' "$work/serve.log"
printf '\nNext: make test (the whole suite); docs/POLICY.md for policy writers;\ndocs/ARCHITECTURE.md explains the design.\n'
