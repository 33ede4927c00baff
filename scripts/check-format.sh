#!/usr/bin/env bash
# Fails if a C++ file differs from what clang-format-14 (.clang-format) makes
# of it; `make format` fixes them all.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
mapfile -t files < <(git ls-files '*.cc' '*.h')
if ! clang-format-14 --dry-run --Werror "${files[@]}"; then
  echo "check-format: run 'make format'" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
