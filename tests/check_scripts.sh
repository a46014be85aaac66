#!/usr/bin/env bash
# ctest `scripts_runnable`: every program under scripts/, .ci/, datasets/ and tests/ (a file
# whose first line is a `#!` line) runs as the README and the docs run it, `scripts/NAME.sh`:
# it has its executable bit, and a bash script parses (`bash -n`). A script committed without
# the bit fails here, not on a user's clean clone with "Permission denied".
#
#   bash tests/check_scripts.sh SOURCE_DIR
set -u
root=${1:?usage: check_scripts.sh SOURCE_DIR}
status=0 count=0
while IFS= read -r -d '' f; do
  IFS= read -r first < "$f" || first=''
  [[ $first == '#!'* ]] || continue
  count=$((count + 1))
  rel=${f#"$root"/}
  if [ ! -x "$f" ]; then
    echo "$rel: starts with '$first' but is not executable (git update-index --chmod=+x $rel)"
    status=1
  fi
  if [[ $first == *bash* ]] && ! bash -n "$f"; then
    echo "$rel: bash cannot parse it (see above)"
    status=1
  fi
done < <(find "$root/scripts" "$root/.ci" "$root/datasets" "$root/tests" -type f -print0 | sort -z)
[ "$count" -gt 0 ] || { echo "no scripts found under $root (scripts/, .ci/, datasets/, tests/)"; exit 1; }
[ "$status" = 0 ] && echo "$count scripts: executable, and the bash ones parse"
exit "$status"
