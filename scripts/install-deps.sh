#!/usr/bin/env bash
# Installs the Debian packages strata needs to build, test and benchmark.
# Idempotent: does nothing (and needs no network) when everything is present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang-14 libclang-rt-14-dev clang-format-14   # fuzzing (libFuzzer) and sanitizers
  libsimdjson-dev                               # JSON parsing
  libcli11-dev                                  # command-line flags
  libxxhash-dev                                 # key hashing
  libgtest-dev libgmock-dev librapidcheck-dev   # tests
  librocksdb-dev liblmdb-dev                    # benchmark peers
  python3                                       # the cluster test harness (tests/cluster_sim)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
