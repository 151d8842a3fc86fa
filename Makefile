# The two commands: `make run` and `make test`. Both install what is missing
# (Debian packages, via scripts/install-deps.sh), then build.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
SANITIZE ?=
DATA_DIR ?= ./data
JOBS ?= $(shell nproc)
# The container image test (label `container`: podman, a Debian mirror, a few
# minutes the first time) runs in `make test-container` and .ci/run.
CTEST_ARGS ?= -LE "container"
# `make test-sim SIM_SEEDS=1000000` runs that many simulated histories.
SIM_SEEDS ?= 2000
# AUTO: tests when their libraries are installed; `make test` needs them.
TESTS ?= AUTO

.PHONY: all deps test-deps container-deps configure build run test test-container test-sim clean format

all: build

deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh --test

container-deps:
	@bash scripts/install-deps.sh --test --container

configure:
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DWALRUS_SANITIZE=$(SANITIZE) -DWALRUS_BUILD_TESTS=$(TESTS) >/dev/null

build: deps configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@bash scripts/run.sh $(BUILD_DIR) $(DATA_DIR)

test: TESTS = ON
test: test-deps configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)
	@cd $(BUILD_DIR) && ctest --output-on-failure --no-tests=error -j $(JOBS) $(CTEST_ARGS)

# Builds the image with podman from a clean copy of the tree and runs it
# (tests/container/image_test.py); only the host-side programs it uses are built.
test-container: TESTS = ON
test-container: container-deps configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target walrusd walrusctl health_probe
	@cd $(BUILD_DIR) && ctest --output-on-failure --no-tests=error -L container

test-sim: TESTS = ON
test-sim: test-deps configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target walrus_sim
	@$(BUILD_DIR)/tests/sim/walrus_sim --seeds $(SIM_SEEDS)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	@rm -rf $(BUILD_DIR)
