#!/usr/bin/env python3
"""Packs LFW small enough to travel to a GPU machine (scripts/gpu-check.sh uses it).

LFW's 112x112 crops are 112 MB, more than the device tool carries with the rest of the pack
(64 MiB in all). Workload W2's first step resizes every image to 64x64 with Pillow's bilinear
filter; this does that step here and stores the result as JPEG (quality 90: about 20 MiB for the
13 233 images), in one gzipped tar (its headers and padding would add 10 MB) with the same layout as the original (lfw/NAME/*.jpg and
pairs.txt). On the GPU machine both engines read it with their usual W2 flags: their resize from
64 to 64 is a copy, so they train on the same pixels, up to their JPEG decoders.

The figures of a run on these files are not W2's (JPEG's losses come on top of the resize), so
the pack uses them for speed, and for trine-vs-peer comparisons on the same files only.

  faces_pack.py FACES OUT.tar.gz [--size 64] [--quality 90]

FACES holds lfw/ and pairs.txt. OUT.tar.gz is written whole or not at all (a temporary file, then a
rename).
"""
import argparse
import io
import os
import sys
import tarfile
import tempfile

from PIL import Image


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('faces', help='folder holding lfw/ (identity folders) and pairs.txt')
    ap.add_argument('out', help='the .tar.gz file to write')
    ap.add_argument('--size', type=int, default=64, help='images are resized to SIZE x SIZE')
    ap.add_argument('--quality', type=int, default=90, help='JPEG quality (1-95)')
    a = ap.parse_args()
    root = os.path.join(a.faces, 'lfw')
    pairs = os.path.join(a.faces, 'pairs.txt')
    for p in (root, pairs):
        if not os.path.exists(p):
            sys.exit(f'faces_pack.py: {p} does not exist ({a.faces} must hold lfw/ and pairs.txt)')
    if not 1 <= a.quality <= 95 or a.size < 8:
        sys.exit(f'faces_pack.py: --quality must be 1..95 (got {a.quality}), --size at least 8 (got {a.size})')

    names = sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    fd, tmp = tempfile.mkstemp(prefix='.faces_pack.', dir=os.path.dirname(os.path.abspath(a.out)))
    os.close(fd)
    count = 0
    try:
        with tarfile.open(tmp, 'w:gz', compresslevel=6) as tar:
            tar.add(pairs, arcname='pairs.txt')
            for n in names:
                for f in sorted(os.listdir(os.path.join(root, n))):
                    if not f.lower().endswith('.jpg'):
                        continue
                    path = os.path.join(root, n, f)
                    try:
                        with Image.open(path) as src:
                            im = src.convert('RGB')
                    except OSError as e:
                        raise SystemExit(f'faces_pack.py: {path}: {e}')
                    buf = io.BytesIO()
                    im.resize((a.size, a.size), Image.BILINEAR).save(buf, 'JPEG', quality=a.quality)
                    info = tarfile.TarInfo(f'lfw/{n}/{f}')
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
                    count += 1
        os.chmod(tmp, 0o644)
        os.replace(tmp, a.out)
    except BaseException:
        os.unlink(tmp)
        raise
    print(f'faces_pack.py: {count} images of {len(names)} identities, {a.size}x{a.size} JPEG '
          f'quality {a.quality}, in {a.out} ({os.path.getsize(a.out) / 2**20:.1f} MiB)', file=sys.stderr)


if __name__ == '__main__':
    main()
