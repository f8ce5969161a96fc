# acs: the two commands of the README, and the steps they are made of.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2

.PHONY: all deps configure build test demo bench clean

all: build

deps:
	bash deploy/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)

demo: build
	bash experiments/demo.sh $(BUILD_DIR)

# Benchmarks want a Release build of their own; results go to data/bench/*.json.
bench: deps
	cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DACS_BUILD_TESTS=OFF
	cmake --build build-release -j$(JOBS) --target bench_kernels bench_int8 bench_models
	mkdir -p data/bench
	build-release/experiments/bench/bench_kernels --json data/bench/kernels.json
	build-release/experiments/bench/bench_int8 --json data/bench/int8.json
	build-release/experiments/bench/bench_models --json data/bench/models.json

clean:
	rm -rf $(BUILD_DIR)
