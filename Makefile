# The two commands: `make run` and `make test`. Both install what is missing
# (Debian packages, via scripts/install-deps.sh), then build.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
SANITIZE ?=
DATA_DIR ?= ./data
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps test-deps configure build run test clean format

all: build

deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh --test

configure:
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DWALRUS_SANITIZE=$(SANITIZE) >/dev/null

build: deps configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@bash scripts/run.sh $(BUILD_DIR) $(DATA_DIR)

test: test-deps configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	@rm -rf $(BUILD_DIR)
