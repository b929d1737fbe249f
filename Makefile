# SIREN - thin front end over CMake. `make help` lists the targets.
#
# Build folders: build/ (release, warnings are errors), build-asan/ (ASan +
# UBSan), build-fuzz/ (clang, libFuzzer). Each is configured on first use.

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
SOAK_KILLS ?= 10
CMAKE ?= cmake
CC_FUZZ ?= clang
CXX_FUZZ ?= clang++

.PHONY: all build test test-unit demo fuzz bench soak clean help deps-build

all: build

help:
	@echo "make            build bin: build/gateway/siren"
	@echo "make test       the whole suite (installs Debian packages as root)"
	@echo "make demo       the quickstart demo (see README.md)"
	@echo "make fuzz       run every fuzz harness for FUZZ_SECONDS each (default 60)"
	@echo "make bench      benchmarks against DCMTK and GDCM, see docs/PERFORMANCE.md"
	@echo "make soak       kill -9 the gateway during 1000 instances (SOAK_KILLS times)"
	@echo "make clean      remove the build folders"

deps-build:
	@scripts/deps.sh build

build/CMakeCache.txt:
	$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=Release -DSIREN_WERROR=ON

build-asan/CMakeCache.txt:
	$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=ASan -DSIREN_WERROR=ON

build-fuzz/CMakeCache.txt:
	CC=$(CC_FUZZ) CXX=$(CXX_FUZZ) $(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Fuzz -DSIREN_WERROR=ON

build: deps-build build/CMakeCache.txt
	$(CMAKE) --build build -j $(JOBS)

test:
	@scripts/deps.sh test
	@scripts/run-tests.sh

demo:
	@scripts/deps.sh demo
	@$(MAKE) --no-print-directory build
	@scripts/demo.sh

fuzz:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory build-fuzz/CMakeCache.txt
	$(CMAKE) --build build-fuzz -j $(JOBS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh build-fuzz long

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@bench/run.sh

# The crash test at full size (make test runs it with 300 instances):
# 1000 instances from two senders, the gateway killed SOAK_KILLS times,
# then every acknowledged instance must be in Orthanc, once.
soak:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory build
	/usr/bin/python3 tests/integration/service_crash.py \
	    --siren build/gateway/siren --config examples/siren.conf \
	    --pki-script tests/integration/pki.py --work build/soak \
	    --full --kills $(SOAK_KILLS)

clean:
	rm -rf build build-asan build-fuzz
