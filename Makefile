# The commands people type. meson + ninja do the work; scripts/ holds the steps.
#   make        build (build/)
#   make test   install missing packages, build plain + ASan/UBSan + fuzz, run every suite
#   make demo   install missing packages, build, deploy the demo app on the simulated TDX
#               and reach it over TLS (DEMO_CHECK=1: check and stop; scripts/demo.sh)
#   make fuzz   build libFuzzer targets with clang and run each for FUZZ_SECONDS (default 60)
#   make image  build, then the guest images (images/dstack-<version>[-dev]/, guest/build-image.sh)
#               and the demo apps' container images (images/apps/)
.PHONY: all build deps test demo fuzz image clean

FUZZ_SECONDS ?= 60

all: build

deps:
	@scripts/deps.sh

build: deps
	@scripts/build.sh build

test: deps
	@scripts/run-tests.sh

# DEMO_T0: the demo's "ready in N s" counts from here, the install and build included
demo:
	@export DEMO_T0=$$(date +%s.%N) DEMO_SINCE="make demo" && scripts/deps.sh && \
	  scripts/build.sh build && scripts/demo.sh

fuzz: deps
	@scripts/build.sh build-fuzz && FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh build-fuzz

image: deps build
	@guest/build-image.sh build images
	@guest/build-image.sh build images --dev
	@guest/apps/build-app-images.sh images/apps

clean:
	rm -rf build build-asan build-fuzz
