#!/usr/bin/env bash
# Builds etcd 3.4.23's end-to-end tests (tests/e2e, one Go test binary)
# offline from Debian's golang-etcd-server-dev (GO111MODULE=off,
# GOPATH=/usr/share/gocode) into build/deps/etcd-e2e/e2e.test, unless it is
# there and newer than the source. The binary depends only on Debian's etcd
# source, so every build tree (release, asan) shares it. run.sh calls this
# (about 30 s on an idle machine); a lock makes a second caller wait for
# the first one's build instead of building again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=/usr/share/gocode/src/go.etcd.io/etcd
if [ ! -d "$src/tests/e2e" ] || ! command -v go >/dev/null; then
  echo "etcd e2e: golang-go and golang-etcd-server-dev are needed (scripts/install-deps.sh)" >&2
  exit 1
fi
shared=$(cd "$here/../../.." && pwd)/build/deps/etcd-e2e
mkdir -p "$shared"
exec 9>"$shared/.build-lock"
flock 9
if [ ! -x "$shared/e2e.test" ] || [ "$src/tests/e2e/ctl_v3_test.go" -nt "$shared/e2e.test" ]; then
  echo "etcd e2e: building etcd's tests/e2e (offline)" >&2
  (cd "$src/tests/e2e" && GO111MODULE=off GOPATH=/usr/share/gocode \
    GOCACHE="$shared/gocache" go test -c -o "$shared/e2e.test.new" . 2>&1 | tail -20) >&2
  mv "$shared/e2e.test.new" "$shared/e2e.test"
fi
echo "$shared/e2e.test"
