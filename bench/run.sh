#!/bin/sh
# bench/run.sh - the benchmarks behind docs/PERFORMANCE.md, side by side
# with DCMTK (and GDCM, for de-identification) in one run. `make bench`
# runs it after a Release build.
#
#   bench/run.sh [core|anon|net|tls|codec|ingest] [--rounds N]
#                [--size-mib MIB] [--count N]
#   bench/run.sh anon [--rounds N] [--count N]
#   bench/run.sh net [--rounds N] [--count N] [--senders N]
#   bench/run.sh tls [--rounds N] [--count N] [--senders N] [--clients N]
#                    [--seconds S]
#   bench/run.sh codec [--rounds N] [--count N] [--us-instances N]
#                      [--us-frames N] [--jobs N]
#   bench/run.sh ingest [--rounds N] [--count N] [--associations N]
#                       [--size-mib MIB]
#
# With no first word all run: core (bench/data_core.py, read and write
# against dcmconv), anon (bench/anon.py, de-identification with
# `siren apply` against dcmodify and gdcmanon), net (bench/net.py, C-STORE
# SCP against storescp), tls (bench/tls.py, the same over DICOM-TLS
# against storescp +tls, and new TLS connections per second), codec
# (bench/codec.py, codec/ through tests/tools/codec_tool encoding a CT and
# a colour ultrasound series against opj_compress, grk_compress,
# ojph_compress, DCMTK, GDCM and Orthanc's ingest transcoding), then ingest
# (bench/ingest.py, the gateway `siren serve -c examples/siren.conf` end to
# end into a real Orthanc, against storescu straight to Orthanc over
# DICOM-TLS and to storescp +tls; and the gateway's peak memory).
# Data goes to bench/out/ (git-ignored, made on first use, kept for the
# next run; rm -rf bench/out to regenerate it). The results tables are
# printed and saved as bench/out/data_core.md, bench/out/anon.md,
# bench/out/net.md, bench/out/tls.md, bench/out/codec.md and
# bench/out/ingest.md.
# Environment: SIREN_BUILD (build folder, default build),
# SIREN_BENCH_ROUNDS, SIREN_BENCH_SIZE_MIB.
set -eu

cd "$(dirname "$0")/.."
build=${SIREN_BUILD:-build}
which=all
case "${1:-}" in
    core|anon|net|tls|codec|ingest) which=$1; shift ;;
esac

for tool in dcm_rewrite gen_series; do
    if [ ! -x "$build/tests/$tool" ]; then
        echo "bench: $build/tests/$tool is missing: run 'make build' first" >&2
        exit 1
    fi
done
if ! command -v dcmconv >/dev/null 2>&1; then
    echo "bench: dcmconv not found: apt-get install dcmtk" >&2
    exit 1
fi
# The process runner (bench/runner.c says why it is C), rebuilt when its
# source changes.
mkdir -p bench/out
runner=bench/out/runner
if [ ! -x "$runner" ] || [ -n "$(find bench/runner.c -newer "$runner")" ]; then
    ${CC:-cc} -O2 -std=c11 -Wall -Wextra -o "$runner" bench/runner.c
fi

# Debian's interpreter, as in CI (a pyenv python3 may come first in PATH).
python=/usr/bin/python3
[ -x "$python" ] || python=python3

if [ "$which" = all ] || [ "$which" = core ]; then
    "$python" bench/data_core.py --build "$build" --runner "$runner" "$@"
fi
if [ "$which" = all ] || [ "$which" = anon ]; then
    "$python" bench/anon.py --build "$build" --runner "$runner" "$@"
fi
if [ "$which" = all ] || [ "$which" = net ]; then
    "$python" bench/net.py --build "$build" "$@"
fi
if [ "$which" = all ] || [ "$which" = tls ]; then
    "$python" bench/tls.py --build "$build" "$@"
fi
if [ "$which" = all ] || [ "$which" = codec ]; then
    "$python" bench/codec.py --build "$build" --runner "$runner" "$@"
fi
if [ "$which" = all ] || [ "$which" = ingest ]; then
    exec "$python" bench/ingest.py --build "$build" "$@"
fi
