# acs: the two commands of the README, and the steps they are made of.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2

.PHONY: all deps configure build test demo demo-campaign bench bench-predictor bench-onpolicy fuzz asan clean

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

# A small nightly campaign on the zoo, run for yesterday and today; prints where the HTML
# report is (docs/campaigns.md).
demo-campaign: build
	bash experiments/demo_campaign.sh $(BUILD_DIR)

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

# The predictor on the policies searches propose (docs/latency.md): the zoo and two
# torchvision models trained here by Python, their layers measured into data/predictors.db,
# a search per model at latency=0.5x, its top policies measured alternately with the dense
# baseline. Table and data/bench/onpolicy.json.
ZOO28 = data/zoo/vgg.pt,data/zoo/resnet20.pt,data/zoo/mobilenetv2.pt
TV32 = data/zoo/tv_resnet18.pt,data/zoo/tv_mobilenet_v2.pt
bench-onpolicy: deps
	cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DACS_BUILD_TESTS=OFF
	cmake --build build-release -j$(JOBS) --target acs acs-zoo bench_onpolicy
	build-release/experiments/zoo/acs-zoo train --model all --out data/zoo
	for m in resnet18 mobilenet_v2; do test -f data/zoo/tv_$$m.pt || \
	  /usr/bin/python3 experiments/zoo/train_torchvision.py --model $$m --out data/zoo --epochs 2 --train-samples 20000; done
	build-release/cli/acs predictor collect --store data/predictors.db --threads 1 --samples 600 --heldout 100 \
	  --rounds 1 --passes 8 --layers-of $(ZOO28) --input 1x1x28x28
	build-release/cli/acs predictor collect --store data/predictors.db --threads 1 --samples 0 --heldout 0 \
	  --rounds 0 --passes 8 --layers-of $(TV32) --input 1x3x32x32
	build-release/cli/acs predictor train --store data/predictors.db
	build-release/experiments/bench/bench_onpolicy --store data/predictors.db \
	  --models $(subst .pt,.pt@1x1x28x28,$(ZOO28)),$(subst .pt,.pt@1x3x32x32,$(TV32))

# Fuzzing with clang's libFuzzer under ASan + UBSan: each target for FUZZ_SECONDS on a
# working copy of its corpus in data/fuzz/NAME; a crash stops the run and is saved as
# data/fuzz/crashes/NAME-crash-* (add it to tests/fuzz/corpus/NAME once fixed). The
# dataset target runs without leak checks: LibTorch's own readers leak on some malformed
# torch files (tests/fuzz/corpus/dataset/torch_file_leaked_by_libtorch); the importer's
# suppresses LibTorch's own leaks (tests/fuzz/libtorch.supp).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = policy kernel_spec job_records data_specs campaign_spec dataset importer tar
fuzz:
	bash deploy/install-deps.sh fuzz
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DACS_FUZZ=ON
	cmake --build build-fuzz -j$(JOBS)
	mkdir -p data/fuzz/crashes
	for t in $(FUZZ_TARGETS); do mkdir -p data/fuzz/$$t && cp -n tests/fuzz/corpus/$$t/* data/fuzz/$$t/ && \
	  ASAN_OPTIONS=detect_leaks=$$(test $$t = dataset && echo 0 || echo 1) \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/libtorch.supp \
	  build-fuzz/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -timeout=20 \
	    -artifact_prefix=data/fuzz/crashes/$$t- data/fuzz/$$t || exit 1; done

# The torch-free unit tests and the fuzz replays under ASan + UBSan (gcc).
ASAN_TESTS = test_policy test_kernels test_int8_kernels test_measure test_predictors test_server_store
ASAN_REPLAYS = policy kernel_spec job_records data_specs campaign_spec tar
asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
	cmake --build build-asan -j$(JOBS) --target $(ASAN_TESTS) $(addprefix fuzz_replay_,$(ASAN_REPLAYS))
	for t in $(ASAN_TESTS); do build-asan/tests/$$t || exit 1; done
	for t in $(ASAN_REPLAYS); do build-asan/tests/fuzz/fuzz_replay_$$t tests/fuzz/corpus/$$t || exit 1; done

clean:
	rm -rf $(BUILD_DIR)
