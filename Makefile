# acs: the two commands of the README, and the steps they are made of.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2

.PHONY: all deps configure build test demo bench bench-predictor clean

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

# Latency predictor of this machine: kernel and whole-model measurements into
# data/predictors.db (Release build), then the evaluation table and prediction rate.
bench-predictor: deps
	cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DACS_BUILD_TESTS=OFF
	cmake --build build-release -j$(JOBS) --target acs acs-zoo bench_predictor
	mkdir -p data/bench
	build-release/experiments/zoo/acs-zoo train --model all --out data/zoo
	build-release/cli/acs predictor collect --store data/predictors.db \
	  --models data/zoo/vgg.pt,data/zoo/resnet20.pt,data/zoo/mobilenetv2.pt --input 1x1x28x28 \
	  --calib /usr/share/datasets/fashion-mnist
	build-release/cli/acs predictor train --store data/predictors.db
	build-release/experiments/bench/bench_predictor --store data/predictors.db --json data/bench/predictor.json

clean:
	rm -rf $(BUILD_DIR)
