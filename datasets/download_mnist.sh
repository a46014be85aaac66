#!/usr/bin/env bash
# Downloads the four MNIST .gz files into DIR from the first mirror that works, verifying each
# file's SHA-256 and MD5 (values from shared/data/README.md) before it takes its final name.
#
#   datasets/download_mnist.sh DIR
#
# Files already in DIR with the right checksum are kept. Downloads go to hidden temporary names in
# DIR and are renamed only once verified, so DIR never holds a partial or corrupt file.
# MNIST_MIRRORS (space-separated base URLs ending in '/', file:// works) replaces the default list.
# Exit status: 0 all four files present and verified, 1 a file could not be fetched or verified,
# 2 usage error.
set -euo pipefail

usage() { echo "usage: $0 DIR" >&2; exit 2; }
[[ $# -eq 1 && $1 != -* ]] || usage
dir=$1

default_mirrors="https://ossci-datasets.s3.amazonaws.com/mnist/ \
https://storage.googleapis.com/cvdf-datasets/mnist/ \
http://yann.lecun.com/exdb/mnist/"
read -r -a mirrors <<< "${MNIST_MIRRORS:-$default_mirrors}"

# name sha256 md5
files=(
  "train-images-idx3-ubyte.gz 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609 f68b3c2dcbeaaa9fbdd348bbdeb94873"
  "train-labels-idx1-ubyte.gz 3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c d53e105ee54ea40749a09fcbcd1e9432"
  "t10k-images-idx3-ubyte.gz 8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6 9fb629c4189551a2d022fa330f9573f3"
  "t10k-labels-idx1-ubyte.gz f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6 ec29112dd5afa0611ce80d1b7f02629c"
)

die() { echo "download_mnist: $*" >&2; exit 1; }

command -v sha256sum > /dev/null && command -v md5sum > /dev/null ||
  die "sha256sum and md5sum (coreutils) are needed to verify the files"
if command -v curl > /dev/null; then
  fetch() { curl -fsSL --retry 2 --connect-timeout 15 --max-time 600 -o "$2" "$1"; }
elif command -v wget > /dev/null; then
  fetch() { wget -q --tries=3 --timeout=15 -O "$2" "$1"; }
else
  die "neither curl nor wget is installed"
fi

# verify FILE SHA256 MD5: true when both checksums match.
verify() {
  [[ -f $1 ]] &&
    [[ $(sha256sum < "$1" | cut -d' ' -f1) == "$2" ]] &&
    [[ $(md5sum < "$1" | cut -d' ' -f1) == "$3" ]]
}

mkdir -p "$dir" || die "cannot create $dir"
[[ -d $dir && -w $dir ]] || die "$dir is not a writable directory"

tmp=""
trap '[[ -n $tmp ]] && rm -f "$tmp"' EXIT

for entry in "${files[@]}"; do
  read -r name sha md5 <<< "$entry"
  target=$dir/$name
  if verify "$target" "$sha" "$md5"; then
    echo "$name: present, checksum ok"
    continue
  fi
  [[ -e $target ]] && echo "$name: present but its checksum is wrong; downloading again" >&2
  tmp=$dir/.$name.part.$$
  ok=0
  tried=()
  for base in "${mirrors[@]}"; do
    url=$base$name
    tried+=("$url")
    rm -f "$tmp"
    if ! err=$(fetch "$url" "$tmp" 2>&1); then
      echo "$name: $url: download failed${err:+ ($err)}" >&2
      continue
    fi
    if ! verify "$tmp" "$sha" "$md5"; then
      echo "$name: $url: checksum mismatch (expected sha256 $sha)" >&2
      continue
    fi
    mv -f "$tmp" "$target"
    sync "$target" 2> /dev/null || true
    echo "$name: downloaded from $url, checksum ok"
    ok=1
    break
  done
  rm -f "$tmp"
  tmp=""
  ((ok)) || die "could not fetch a verified $name (tried: ${tried[*]}). Without internet, copy the \
four files from another machine into $dir."
done
echo "MNIST ready in $dir"
