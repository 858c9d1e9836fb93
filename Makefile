# kiln: `make run` and `make test` work on a fresh machine (see README.md).
JOBS ?= $(shell nproc)
BUILD := build/release
KILN := $(BUILD)/tools/kiln/kiln
MODEL ?= var/models/all-MiniLM-L6-v2
FUZZ_SECONDS ?= 20

.PHONY: setup build run test unit fuzz bench format tidy clean

setup:
	@bash scripts/setup.sh

build: setup
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

run: build
	@$(KILN) inspect $(MODEL)
	@$(KILN) infer --model $(MODEL) --task embed --max-dims 8 --similarity \
	  "kiln runs BERT-family encoders fast on CPUs." \
	  "A fast engine for transformer encoders." \
	  "The cat sat on the mat."
	@$(KILN) bench --model $(MODEL) --batch 1,8 --seq 128 --min-seconds 1

unit: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

fuzz: setup
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS)
	@bash scripts/run_fuzzers.sh build/fuzz $(FUZZ_SECONDS)

test: unit fuzz

bench: build
	@bash bench/run_cpu_bench.sh

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

tidy:
	@git ls-files 'src/*.cc' 'tools/*.cc' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	@rm -rf build
