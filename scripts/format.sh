#!/usr/bin/env bash
# Formats every C++ and CUDA file tracked by git with clang-format (style: .clang-format).
#
#   scripts/format.sh           rewrites the files in place
#   scripts/format.sh --check   changes nothing; lists the files that are not formatted and
#                               exits 1 when there is one

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

check=0
case ${1:-} in
  "") ;;
  --check) check=1 ;;
  *) die "usage: scripts/format.sh [--check]" ;;
esac

command -v clang-format >/dev/null 2>&1 || ensure_packages clang-format
mapfile -d '' files < <(git ls-files -z -- '*.h' '*.hpp' '*.cc' '*.cpp' '*.cu' '*.cuh')
[ ${#files[@]} -gt 0 ] || exit 0

if [ "$check" = 0 ]; then
  clang-format -i -- "${files[@]}"
  say "formatted ${#files[@]} files"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror -- "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  printf '[trine] not formatted (run scripts/format.sh):\n' >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
say "all ${#files[@]} C++ files are formatted"
