# The two set-up commands of the README (`make run`, `make test`) and their helpers.
# `make run` starts the server on the embedded default; `make show` prints the example terms'
# diffs and decision matrix.
# Each target installs what is missing first, so a bare Debian machine needs nothing else.

JOBS ?= $(shell nproc)
ASSENT := build/release/assent
EXAMPLES := $(sort $(wildcard examples/terms/*.yaml))
LATEST := $(lastword $(EXAMPLES))

.PHONY: deps build run show test bench fuzz clean install package

deps:
	@scripts/install-deps.sh

build: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

run: build
	@echo "== assent terms lint (the first version is refused: it never defined 'service generated data')"
	@$(ASSENT) terms lint $(EXAMPLES) || echo "(exit $$?: as expected, the 2023-03-31 version does not lint)"
	@echo
	@echo "== assent serve --demo (the 2023 example terms published into ./assent-data as history, like terms publish --backfill; Ctrl-C stops it)"
	@$(ASSENT) serve --demo --data ./assent-data --listen 127.0.0.1:8080

show: build
	-@$(ASSENT) terms diff $(word 1,$(EXAMPLES)) $(word 2,$(EXAMPLES))
	-@$(ASSENT) terms diff $(word 2,$(EXAMPLES)) $(word 3,$(EXAMPLES))
	@$(ASSENT) terms show $(LATEST)

# The binary, its manual page, bash completion and the systemd unit (PREFIX, default /usr/local).
install: build
	cmake --install build/release --prefix $${PREFIX:-/usr/local}

# A .deb of the release build (build/release/assent_*.deb).
package: build
	cd build/release && cpack -G DEB

# The Python package's tests (pytest) run against the release build: the interpreter is not
# built with the sanitizers.
PYTHON_TARGETS := assent assent_docs assent_gate_bench assent_python assent_python_files
test: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target $(PYTHON_TARGETS)
	/usr/bin/python3 -m pytest -q -p no:cacheprovider test/python

bench: deps
	@scripts/install-deps.sh --bench
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)
	bench/run.sh

# Fuzzing (not part of `make test`, which replays the corpora): clang-19 with libFuzzer,
# FUZZ_SECONDS (default 300) per target.
fuzz: deps
	@scripts/install-deps.sh --fuzz
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS)
	FUZZ_SECONDS=$${FUZZ_SECONDS:-300} scripts/fuzz.sh

clean:
	rm -rf build
