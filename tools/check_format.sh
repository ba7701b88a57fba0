#!/usr/bin/env bash
# Fails when a C/CUDA source differs from the project's .clang-format style.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' '*.cu' '*.cuh' 2>/dev/null || true)
[[ -z "$files" ]] && exit 0
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files
echo "format: $(echo "$files" | wc -w) files clean"
