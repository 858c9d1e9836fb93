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
	@echo ""
	@echo "kiln serve: model repository ./model_repository (all-MiniLM-L6-v2 embeddings; qa, ner,"
	@echo "  classify: our LoRA adapters on MiniLM, sharing its weights; search: 296 SQuAD paragraphs;"
	@echo "  identity)   HTTP localhost:8000   gRPC localhost:8001   metrics localhost:8002/metrics"
	@echo "Open http://localhost:8000/ for the playground. Try, from another shell:"
	@echo "  curl -s localhost:8000/v2/models/qa/infer -d '{\"inputs\":[{\"name\":\"question\",\"datatype\":\"BYTES\",\"shape\":[1,1],\"data\":[\"Who built it?\"]},{\"name\":\"context\",\"datatype\":\"BYTES\",\"shape\":[1,1],\"data\":[\"The kiln was built by a small team in 2026.\"]}]}'"
	@echo "  curl -s localhost:8000/v2/models/all-MiniLM-L6-v2"
	@echo "  curl -s localhost:8000/v2/models/all-MiniLM-L6-v2/infer -d '{\"inputs\":[{\"name\":\"TEXT\",\"datatype\":\"BYTES\",\"shape\":[2,1],\"data\":[\"kiln serves BERT models.\",\"A fast server for encoders.\"]}]}'"
	@echo "  .venv/bin/python examples/embed_client.py        (tritonclient, gRPC)"
	@echo "Stop with Ctrl-C (graceful: in-flight requests finish)."
	@$(KILN) serve --model-repository model_repository

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
