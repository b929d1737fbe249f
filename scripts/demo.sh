#!/bin/sh
# demo.sh - what `make demo` shows: the gateway between two sites and an
# archive, on loopback. A throwaway PKI and pseudonym key (build/demo/),
# a local Orthanc with a generated configuration, `siren serve -c
# examples/siren.conf`, a synthetic study with planted identifying values
# sent over DICOM-TLS with DCMTK's storescu as two sites, and what Orthanc
# then holds. Everything it starts is stopped at the end; the folder it
# worked in is kept and named, to look at.
#
# Not shown because not built yet: pixel redaction and compression
# (docs/ARCHITECTURE.md lists what is built).
set -eu
cd "$(dirname "$0")/.."
siren=${SIREN_BIN:-build/gateway/siren}
py=/usr/bin/python3

free_port() {
    $py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d /tmp/siren-demo.XXXXXX)
pids=
cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

cat <<'TXT'
SIREN demo
==========
Two trial sites send a study over DICOM-TLS to the gateway, which checks
each site's certificate, spools every instance durably, de-identifies it
under the site's policy (PS3.15 Basic Profile; site B's trial policy adds
options, subject IDs from a lookup table and shifted dates) and forwards it
to an Orthanc archive, recording each step in its audit trail. Pixel
redaction and compression are not built yet.
TXT

printf '\n$ tests/integration/pki.py build/demo/pki   # a throwaway PKI (openssl)\n'
mkdir -p build/demo
[ -f build/demo/pki/server-chain.pem ] || $py tests/integration/pki.py build/demo/pki
[ -f build/demo/pseudonym.key ] ||
    (umask 077 && openssl rand -hex 32 > build/demo/pseudonym.key)

# Orthanc on free loopback ports, no remote access.
http_port=$(free_port)
dicom_port=$(free_port)
mkdir "$work/orthanc"
cat > "$work/orthanc/orthanc.json" <<JSON
{ "Name": "siren-demo", "StorageDirectory": "$work/orthanc/storage",
  "IndexDirectory": "$work/orthanc/index", "HttpPort": $http_port,
  "DicomPort": $dicom_port, "DicomAet": "ORTHANC",
  "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "Plugins": [], "DicomModalities": {} }
JSON
Orthanc "$work/orthanc/orthanc.json" > "$work/orthanc.log" 2>&1 &
pids="$pids $!"
printf '$ Orthanc orthanc.json &   # the archive: HTTP %s, DICOM %s\n' \
    "$http_port" "$dicom_port"

# The gateway: the example configuration as it is, pointed at this run.
tls_port=$(free_port)
metrics_port=$(free_port)
export SIREN_SPOOL="$work/spool" SIREN_TLS_PORT="$tls_port" \
    SIREN_ARCHIVE_PORT="$dicom_port" SIREN_METRICS_PORT="$metrics_port" \
    SIREN_AUDIT_FILE="$work/audit.jsonl"
printf '\n$ siren serve -c examples/siren.conf --check\n'
"$siren" serve -c examples/siren.conf --check 2>/dev/null
"$siren" serve -c examples/siren.conf 2> "$work/serve.log" &
pids="$pids $!"
printf '$ siren serve -c examples/siren.conf &   # DICOM-TLS on port %s\n' \
    "$tls_port"
for _ in $(seq 50); do
    grep -q serve.listening "$work/serve.log" &&
        curl -sf "http://127.0.0.1:$http_port/system" > /dev/null && break
    sleep 0.2
done
grep -q serve.listening "$work/serve.log" ||
    { echo "siren serve did not start:"; cat "$work/serve.log"; exit 1; }

# A study with planted identifying values, for each site.
$py - "$work" <<'PY'
import sys
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
work = sys.argv[1]
for site, patient in (("a", "MRN-4711"), ("b", "PAT-0001")):
    study, series = generate_uid(), generate_uid()
    for i in range(3):
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName, ds.PatientID = "Meier^Anna", patient
        ds.PatientBirthDate, ds.StudyDate = "19610307", "20240301"
        ds.AccessionNumber, ds.Modality = "ACC-99812", "CT"
        ds.InstitutionName = "St. Elsewhere Hospital"
        ds.StudyDescription = "CT chest Meier"
        ds.InstanceNumber = i + 1
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation = 15, 0
        ds.PixelData = bytes(128)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(f"{work}/site-{site}-{i}.dcm", write_like_original=False)
PY
pki=build/demo/pki
send() { # send SITE AET: storescu over DICOM-TLS with the site's certificate
    printf '\n$ storescu +tls %s.key %s-chain.pem +cf ca-bundle.pem -aet %s -aec SIREN localhost %s site-%s-*.dcm\n' \
        "$1" "$1" "$2" "$tls_port" "${1#site-}"
    storescu +tls "$pki/$1.key" "$pki/$1-chain.pem" +cf "$pki/ca-bundle.pem" \
        -aet "$2" -aec SIREN localhost "$tls_port" "$work/$1"-*.dcm 2>&1 |
        sed "s|$work/||" || true
    echo "(silence is success: storescu reports only problems)"
}
send site-a SITEA
send site-b SITEB
printf '\n$ storescu +tls expired.key ... -aet SITEA   # an expired certificate\n'
storescu +tls "$pki/expired.key" "$pki/expired-chain.pem" +cf "$pki/ca-bundle.pem" \
    -aet SITEA -aec SIREN localhost "$tls_port" "$work/site-a-0.dcm" 2>&1 |
    head -2 || true

printf '\nWaiting for Orthanc to hold the 6 de-identified instances...\n'
for _ in $(seq 100); do
    count=$(curl -s "http://127.0.0.1:$http_port/instances" | $py -c 'import json,sys; print(len(json.load(sys.stdin)))')
    [ "$count" -ge 6 ] && break
    sleep 0.2
done
printf '\n$ curl http://127.0.0.1:%s/instances/.../simplified-tags   # what Orthanc holds\n' "$http_port"
$py - "$http_port" <<'PY'
import json, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
get = lambda path: json.load(urllib.request.urlopen(base + path))
for instance in get("/instances"):
    t = get(f"/instances/{instance}/simplified-tags")
    if t.get("InstanceNumber") != "1":
        continue
    print(f"  {t.get('DeidentificationMethod', '').split(chr(92))[0]}")
    for key in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate",
                "AccessionNumber", "InstitutionName", "StudyDescription",
                "StudyInstanceUID", "PatientIdentityRemoved"):
        print(f"    {key:24} {t.get(key, '(removed)')!r}")
PY
cat <<TXT

Planted: PatientName 'Meier^Anna', PatientID 'MRN-4711' (site A) and
'PAT-0001' (site B, subject HOBIT-001 in examples/policies/subjects.csv),
birth date 19610307, study date 20240301, accession ACC-99812.

What the gateway logged (one line per event):
TXT
grep -E "assoc.accepted|security.alert|instance.processed|forward.delivered" \
    "$work/serve.log" | cut -c1-160 | sed 's/^/  /' | head -14
printf '\n$ curl http://127.0.0.1:%s/metrics | grep ...   # Prometheus\n' "$metrics_port"
curl -s "http://127.0.0.1:$metrics_port/metrics" |
    grep -E '^siren_(instances_received_total|instances_rejected_total|instances_forwarded_total|tls_failures_total.reason="expired"|delivery_seconds_count)' |
    sed 's/^/  /'
printf '\n$ head -3 audit.jsonl   # the audit trail, one JSON object per event\n'
head -3 "$work/audit.jsonl" | cut -c1-200 | sed 's/^/  /'
cat <<TXT

To look further: $work (spool/, serve.log, orthanc.log).
Next: make test (the whole suite); docs/POLICY.md for policy writers;
docs/OPERATIONS.md to run it; docs/ARCHITECTURE.md explains the design.
TXT
