# The two commands a newcomer needs:
#   make run    install what is missing, build (Release), start strata-node on stdin/stdout
#   make test   install what is missing, build, run every test (plain, ASan+UBSan, TSan, fuzz)
# Others: make build, make bench, make format, make clean.

RELEASE_DIR := build/release
ARGS ?=

.PHONY: all deps build run test bench format clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(RELEASE_DIR)

run: build
	@echo "strata-node: reading Maelstrom JSON lines on stdin (Ctrl-D to end)" >&2
	@$(RELEASE_DIR)/strata-node $(ARGS)

test: deps
	@scripts/run-tests.sh

bench: build
	$(RELEASE_DIR)/strata-bench --all --node $(RELEASE_DIR)/strata-node

format:
	@clang-format-14 -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build
