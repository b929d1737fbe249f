#!/bin/sh
# gen_sop_classes_check.sh SOURCE_DIR - the storage SOP classes the SCP
# accepts by default (dicom/sop_classes.c) are generated from
# dicom/tables/sops.json and committed. This regenerates them into a
# temporary file and fails, showing the difference, when the committed
# file is not what the table and the generator make now.
#
# To bring it up to date:
#   /usr/bin/python3 dicom/tools/gen_sop_classes.py dicom/tables/sops.json \
#       > dicom/sop_classes.c
set -eu

src=${1:?usage: gen_sop_classes_check.sh SOURCE_DIR}
cd "$src"

tmp=$(mktemp "${TMPDIR:-/tmp}/sop_classes.XXXXXX")
trap 'rm -f "$tmp"' EXIT
trap 'exit 2' INT TERM

/usr/bin/python3 dicom/tools/gen_sop_classes.py dicom/tables/sops.json >"$tmp"

if ! diff -u dicom/sop_classes.c "$tmp"; then
    echo "dicom/sop_classes.c differs from what" \
         "dicom/tools/gen_sop_classes.py" \
         "makes of dicom/tables/sops.json (diff above: - committed," \
         "+ regenerated). Regenerate it with:" >&2
    echo "  /usr/bin/python3 dicom/tools/gen_sop_classes.py" \
         "dicom/tables/sops.json > dicom/sop_classes.c" >&2
    exit 1
fi
echo "dicom/sop_classes.c is current"
