# The commands people type. meson + ninja do the work; scripts/ holds the steps.
#   make        build (build/)
#   make test   install missing packages, build plain + ASan/UBSan + fuzz, run every suite
#   make demo   install missing packages, build, run the demo on the simulated TEE
#   make fuzz   build libFuzzer targets with clang and run each for FUZZ_SECONDS (default 60)
.PHONY: all build deps test demo fuzz clean

FUZZ_SECONDS ?= 60

all: build

deps:
	@scripts/deps.sh

build: deps
	@scripts/build.sh build

test: deps
	@scripts/run-tests.sh

demo: deps build
	@scripts/demo.sh

fuzz: deps
	@scripts/build.sh build-fuzz && FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh build-fuzz

clean:
	rm -rf build build-asan build-fuzz
