#!/usr/bin/env bash
# `etcdctl check perf` (etcd's own load check: 60 s of puts at a set rate,
# then a verdict) against strata-server and the reference etcd 3.4.23, for
# each --load given (default: m and l). Prints etcdctl's verdict lines.
# Usage: bench/check_perf.sh [STRATA_SERVER] [ETCD] [LOAD...]
set -euo pipefail
cd "$(dirname "$0")/.."
strata=${1:-build/release/strata-server}
etcd=${2:-build/deps/etcd-server/usr/bin/etcd}
shift $(( $# > 2 ? 2 : $# ))
loads=("$@")
[ ${#loads[@]} -gt 0 ] || loads=(m l)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

start() {  # name, port: starts the server in the background
  local name=$1 port=$2
  if [ "$name" = strata ]; then
    "$strata" --data-dir "$work/$name-$port" --listen-client-urls "http://127.0.0.1:$port" \
      2>/dev/null &
  else
    "$etcd" --data-dir "$work/$name-$port" --listen-client-urls "http://127.0.0.1:$port" \
      --advertise-client-urls "http://127.0.0.1:$port" \
      --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
      --initial-cluster "default=http://127.0.0.1:$((port + 1))" 2>/dev/null &
  fi
  for _ in $(seq 50); do
    etcdctl --endpoints "127.0.0.1:$port" endpoint health >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "$name did not start" >&2
  exit 1
}

port=24100
for load in "${loads[@]}"; do
  for name in strata etcd; do
    port=$((port + 2))
    start "$name" "$port"
    echo "== $name, --load=$load"
    etcdctl --endpoints "127.0.0.1:$port" check perf --load="$load" 2>&1 | tr '\r' '\n' |
      grep -E '^(PASS|FAIL)' || true
    kill %% 2>/dev/null || true
    wait 2>/dev/null || true
  done
done
