# The two set-up commands of the README (`make run`, `make test`) and their helpers.
# Each target installs what is missing first, so a bare Debian machine needs nothing else.

JOBS ?= $(shell nproc)
ASSENT := build/release/assent
EXAMPLES := $(sort $(wildcard examples/terms/*.yaml))
LATEST := $(lastword $(EXAMPLES))

.PHONY: deps build run test bench clean

deps:
	@scripts/install-deps.sh

build: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

run: build
	@echo "== assent terms lint (the first version is expected to fail: it never defined 'service generated data')"
	-@$(ASSENT) terms lint $(EXAMPLES)
	@echo
	@echo "== assent terms diff: each version against the one before"
	-@$(ASSENT) terms diff $(word 1,$(EXAMPLES)) $(word 2,$(EXAMPLES))
	-@$(ASSENT) terms diff $(word 2,$(EXAMPLES)) $(word 3,$(EXAMPLES))
	@echo
	@echo "== assent terms show $(LATEST)"
	@$(ASSENT) terms show $(LATEST)

test: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

bench: deps
	@scripts/install-deps.sh --bench
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)
	bench/run.sh

clean:
	rm -rf build
