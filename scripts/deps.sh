#!/bin/sh
# deps.sh - makes sure the Debian 12 packages a task needs are installed.
#
#   scripts/deps.sh build|test|demo|bench|fuzz
#
# As root it installs what is missing (apt-get, idempotent: nothing is done
# when everything is there). Otherwise it prints the exact apt-get line to
# run and exits 1. Each package is here for a reason stated in
# docs/ARCHITECTURE.md ("Dependencies").
set -eu

build="cmake make gcc g++ pkg-config zlib1g-dev libdcmtk-dev libssl-dev libmicrohttpd-dev libcurl4-openssl-dev libjpeg62-turbo-dev libcharls-dev libopenjp2-7-dev libopenjph-dev"
test_extra="libcmocka-dev clang libclang-rt-14-dev dcmtk python3 python3-pydicom python3-numpy orthanc curl openssl testssl.sh rsyslog rsyslog-openssl python3-yaml libgdcm-tools libopenjp2-tools openjph-tools python3-pil orthanc-gdcm"
demo_extra="dcmtk python3-pydicom openssl orthanc curl"
bench_extra="dcmtk libgdcm-tools python3 python3-pydicom python3-numpy openssl orthanc orthanc-gdcm curl libopenjp2-tools openjph-tools grokj2k-tools"
fuzz_extra="clang libclang-rt-14-dev python3-pydicom"

case "${1:-}" in
build) wanted="$build" ;;
test) wanted="$build $test_extra" ;;
demo) wanted="$build $demo_extra" ;;
bench) wanted="$build $bench_extra" ;;
fuzz) wanted="$build $fuzz_extra" ;;
*)
    echo "usage: $0 build|test|demo|bench|fuzz" >&2
    exit 2
    ;;
esac

missing=""
for pkg in $wanted; do
    case " $missing " in *" $pkg "*) continue ;; esac
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $pkg"
done
missing=${missing# }

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages for '$1'. Run as root:" >&2
    echo "  apt-get install -y --no-install-recommends $missing" >&2
    exit 1
fi

echo "Installing Debian packages for '$1': $missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
