#!/bin/sh
# run-tests.sh - the whole suite, as `make test` and CI run it:
#   1. release build (warnings are errors), unit tests;
#   2. ASan+UBSan build, every test (unit, corpus, bad input, integration);
#   3. libFuzzer build (clang), each harness for a short fixed run.
# Long fuzzing, soak and benchmarks have their own targets (make fuzz/bench).
set -eu
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }

step "release build"
[ -f build/CMakeCache.txt ] ||
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSIREN_WERROR=ON
cmake --build build -j "$jobs"

step "unit tests (release)"
ctest --test-dir build -L unit --output-on-failure -j "$jobs"

step "ASan+UBSan build"
[ -f build-asan/CMakeCache.txt ] ||
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=ASan -DSIREN_WERROR=ON
cmake --build build-asan -j "$jobs"

step "all tests (ASan+UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"

step "fuzz smoke (libFuzzer)"
[ -f build-fuzz/CMakeCache.txt ] ||
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Fuzz -DSIREN_WERROR=ON
cmake --build build-fuzz -j "$jobs"
tests/fuzz/run.sh build-fuzz smoke

step "all passed"
