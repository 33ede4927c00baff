# The two commands a newcomer needs:
#   make run    install what is missing, build strata-server (Release) and start it on
#               127.0.0.1:2379 (etcd's port), its data in ./data; talk to it with etcdctl
#   make test   install what is missing, build, run every test (plain, ASan+UBSan, TSan, fuzz)
# Others: make build (everything), make node (strata-node on stdin/stdout), make bench,
# make package (a .deb with a systemd unit), make format, make clean (build outputs only;
# ./data stays).

RELEASE_DIR := build/release
ARGS ?=

DATA_DIR ?= data

.PHONY: all deps build configure run node test bench package format clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_UNIT_TESTS=ON \
	    -DSTRATA_BUILD_BENCH=ON >/dev/null

build: configure
	@cmake --build $(RELEASE_DIR)
	@cmake --build $(RELEASE_DIR) --target strata-bench

# Builds only what it starts.
run: configure
	@cmake --build $(RELEASE_DIR) --target strata-server
	@echo "strata-server: data in $(DATA_DIR)/, serving etcd's v3 API on 127.0.0.1:2379." >&2
	@echo "  Try: etcdctl put greeting hello && etcdctl get greeting -w json   (Ctrl-C stops)" >&2
	@echo "  Dashboard: http://127.0.0.1:2381/dashboard  (metrics: curl 127.0.0.1:2381/metrics)" >&2
	@$(RELEASE_DIR)/strata-server --data-dir $(DATA_DIR) \
	    --listen-metrics-urls http://127.0.0.1:2381 $(ARGS)

node: configure
	@cmake --build $(RELEASE_DIR) --target strata-node
	@echo "strata-node: reading Maelstrom JSON lines on stdin (Ctrl-D to end)" >&2
	@$(RELEASE_DIR)/strata-node $(ARGS)

test: deps
	@scripts/run-tests.sh

# A Debian package of the install (CPack): build/release/strata_<version>_amd64.deb.
package: build
	@cd $(RELEASE_DIR) && cpack -G DEB

bench: configure
	@cmake --build $(RELEASE_DIR) --target strata-bench strata-node
	$(RELEASE_DIR)/strata-bench --all --node $(RELEASE_DIR)/strata-node

format:
	@clang-format-14 -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build
