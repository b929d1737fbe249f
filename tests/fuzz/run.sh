#!/bin/sh
# run.sh BUILD_DIR smoke|long - runs every fuzz harness built in BUILD_DIR.
#   smoke: a fixed number of runs from a fixed seed (part of make test);
#   long:  FUZZ_SECONDS seconds each (make fuzz), growing the corpus.
# Seeds come from tests/fuzz/NAME.seeds or the pydicom test corpus;
# findings land in BUILD_DIR/fuzz-artifacts/ and make the script fail.
set -eu
build=$1
mode=$2
here=$(cd "$(dirname "$0")" && pwd)
data=${SIREN_PYDICOM_DATA:-/usr/lib/python3/dist-packages/pydicom/data}
smoke_runs=${FUZZ_SMOKE_RUNS:-20000}

# seed NAME DIR: the first corpus of a harness. A harness with a seed
# folder (tests/fuzz/NAME.seeds/) starts from its files; one with a seed
# generator (tests/fuzz/NAME.seeds DIR, executable) gets its seeds from it;
# the others start from the pydicom corpus (files up to 64 KiB: larger ones
# slow every run).
seed() {
    if [ -d "$here/$1.seeds" ]; then
        cp "$here/$1.seeds"/* "$2/"
    elif [ -x "$here/$1.seeds" ]; then
        "$here/$1.seeds" "$2"
    else
        find "$data/test_files" "$data/charset_files" -type f -size -64k \
            ! -name '*.txt' ! -name '*.json' ! -name '*.py' -exec cp {} "$2/" \;
    fi
}

mkdir -p "$build/fuzz-artifacts"

for harness in "$build"/tests/fuzz_*; do
    [ -x "$harness" ] || continue
    name=$(basename "$harness")
    corpus="$build/fuzz-corpus/$name"
    if [ ! -d "$corpus" ]; then
        mkdir -p "$corpus"
        seed "$name" "$corpus"
    fi
    # The policy language has its own dictionary, and fewer smoke runs: a
    # run compiles a policy from files (includes, tables), some 250 runs a
    # second against thousands for the DICOM harnesses.
    case "$name" in
    fuzz_policy) dict="$here/policy.dict" runs=${FUZZ_SMOKE_RUNS:-10000} ;;
    fuzz_config) dict="$here/policy.dict" runs=${FUZZ_SMOKE_RUNS:-5000} ;;
    fuzz_codec_frames) dict="$here/dicom.dict" runs=$smoke_runs ;;
    # The codecs decode whole images (OpenJPEG, CharLS and libjpeg run
    # uninstrumented but take milliseconds): fewer smoke runs.
    fuzz_codec_*) dict="$here/codec.dict" runs=${FUZZ_SMOKE_RUNS:-3000} ;;
    fuzz_rest_answer) dict="$here/rest_answer.dict" runs=$smoke_runs ;;
    fuzz_audit_line) dict="$here/audit_line.dict" runs=$smoke_runs ;;
    *) dict="$here/dicom.dict" runs=$smoke_runs ;;
    esac
    case "$mode" in
    smoke) limit="-runs=$runs -seed=1" ;;
    long) limit="-max_total_time=${FUZZ_SECONDS:-60}" ;;
    *) echo "usage: $0 BUILD_DIR smoke|long" >&2; exit 2 ;;
    esac
    echo "fuzz: $name ($mode)"
    # shellcheck disable=SC2086
    "$harness" $limit -max_len=262144 -timeout=10 -rss_limit_mb=2048 \
        -dict="$dict" -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-artifacts/$name-" \
        "$corpus" 2>"$build/fuzz-artifacts/$name.log" || {
        tail -40 "$build/fuzz-artifacts/$name.log" >&2
        echo "fuzz: $name found a problem; see $build/fuzz-artifacts/" >&2
        exit 1
    }
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' \
        "$build/fuzz-artifacts/$name.log" | sed 's/^/  /'
done
