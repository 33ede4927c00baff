#!/usr/bin/env bash
# Installs the Debian packages strata needs to build, test and benchmark.
# Idempotent: does nothing (and needs no network) when everything is present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang-14 libclang-rt-14-dev clang-format-14   # fuzzing (libFuzzer) and sanitizers
  lld                                           # ... and their builds' linker
  libsimdjson-dev                               # JSON parsing
  libcli11-dev                                  # command-line flags
  libxxhash-dev                                 # key hashing
  libgtest-dev libgmock-dev librapidcheck-dev   # tests
  librocksdb-dev liblmdb-dev                    # benchmark peers
  python3                                       # the cluster test harness (tests/cluster_sim)
  libgrpc++-dev libprotobuf-dev                 # strata-server: gRPC and protobuf
  libabsl-dev                                   # ... and Abseil, gRPC's (its locks' mode)
  libssl-dev                                    # snapshot checksums (SHA-256), TLS file checks
  libsodium-dev                                 # password hashes (Argon2id) for etcd's Auth users
  libgoogle-perftools-dev                       # strata-server's allocator (tcmalloc_minimal)
  openssl                                       # tests: certificates made at test time
  libcpp-httplib-dev                            # the metrics and health port (HTTP)
  python3-prometheus-client                     # tests: parses /metrics as Prometheus would
  chromium fonts-dejavu-core                    # tests: the dashboard in a real (headless) browser
  systemd                                       # tests: systemd-analyze verify of the packaged unit
  protobuf-compiler protobuf-compiler-grpc      # ... generating etcd's v3 API at build time
  etcd-client                                   # tests: etcdctl, a client we did not write
  python3-etcd3 python3-grpcio                  # tests: python-etcd3, another one
  python3-xxhash                                # tests: which member owns a key (XXH3, as ShardMap)
  golang-go golang-etcd-server-dev              # tests: etcd's own e2e tests, built offline
)

cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
updated=0
apt_update() {
  if [ $updated -eq 0 ]; then
    $SUDO apt-get update -qq
    updated=1
  fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  apt_update
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Unpacked, not installed: etcd's .proto files (the build generates the
# server's gRPC code from them) and the reference etcd server (tests compare
# strata with it; installing etcd-server would start a system service).
unpack() {  # package, directory under build/deps, a file that shows it is there
  local package=$1 dir=build/deps/$2 marker=$3
  [ -e "$dir/$marker" ] && return 0
  echo "install-deps: unpacking $package into $dir" >&2
  apt_update
  local tmp
  tmp=$(mktemp -d)
  chmod 755 "$tmp"  # apt-get download runs as _apt
  (cd "$tmp" && apt-get download -qq "$package" >&2)
  rm -rf "$dir"
  mkdir -p "$dir"
  dpkg -x "$tmp"/*.deb "$dir"
  rm -rf "$tmp"
}
unpack golang-etcd-server-dev etcd usr/share/gocode/src/go.etcd.io/etcd/etcdserver/etcdserverpb/rpc.proto
unpack etcd-server etcd-server usr/bin/etcd

# The npm etcd3 client, for tests/compat (from the npm registry). Node.js and
# npm come from Debian when the machine has neither.
if ! command -v npm >/dev/null; then
  apt_update
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >&2
fi
if [ ! -d build/deps/npm/node_modules/etcd3 ]; then
  echo "install-deps: installing the npm etcd3 client into build/deps/npm" >&2
  mkdir -p build/deps/npm
  npm install --silent --no-audit --no-fund --prefix build/deps/npm etcd3@1.1.2 >&2
fi
