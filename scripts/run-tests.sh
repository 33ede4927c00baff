#!/usr/bin/env bash
# Builds and runs the whole test suite, in three builds:
#   1. Release (GCC): every test.
#   2. ASan + UBSan (clang-14): every test, plus a bounded libFuzzer run of
#      the message parser.
#   3. TSan (clang-14): the concurrency tests.
# Usage: scripts/run-tests.sh [release|asan|tsan]...   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc)
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(release asan tsan)

configure_and_build() {  # dir, then cmake flags; BUILD_TARGET limits what is built
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
}

run_ctest() {  # dir, then ctest flags
  local dir=$1
  shift
  # One test more than cores: many tests spend their time waiting on timers
  # and child processes (the cluster harness, the crash test).
  ctest --test-dir "$dir" --output-on-failure -j "$((jobs + 1))" "$@"
}

for stage in "${stages[@]}"; do
  start=$SECONDS
  echo "=== test stage: $stage ===" >&2
  case $stage in
    release)
      configure_and_build build/release -DCMAKE_BUILD_TYPE=Release
      run_ctest build/release
      ;;
    asan)
      # -O1 and line tables only, as ASan's docs suggest: as good reports,
      # a fifth less compile time than -O2 -g.
      CC=clang-14 CXX=clang++-14 configure_and_build build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
        -DSTRATA_SANITIZE=address,undefined -DSTRATA_BUILD_FUZZ=ON -DSTRATA_BUILD_BENCH=OFF
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        run_ctest build/asan
      ;;
    tsan)
      # Only the executables it runs (the `concurrency_tests` target).
      CC=clang-14 CXX=clang++-14 BUILD_TARGET=concurrency_tests configure_and_build build/tsan \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_SANITIZE=thread -DSTRATA_BUILD_BENCH=OFF
      TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_ctest build/tsan -L concurrency
      ;;
    *)
      echo "unknown stage '$stage' (expected release, asan or tsan)" >&2
      exit 2
      ;;
  esac
  echo "=== test stage $stage passed in $((SECONDS - start)) s ===" >&2
done
