#!/usr/bin/env python3
"""Rewrites a .cu file into C++ the CPU emulation (include/cuda_runtime.h) compiles:
kernel<<<g, b, s, st>>>(args) becomes kernel * ::emu::cfg(g, b, s, st)(args), and the
dynamic shared array (extern __shared__ ... name[];) becomes the emulator's per-block buffer.
Usage: transform.py in.cu out.cpp"""
import re
import sys

src = open(sys.argv[1]).read()
out = src.replace("<<<", " * ::emu::cfg(").replace(">>>(", ")(")
out = re.sub(r"extern\s+__shared__[^;]*?(\w+)\s*\[\s*\]\s*;",
             r"#define \1 (::emu::dynamic_shared())", out)
if "<<<" in out or ">>>" in out:
    sys.exit(f"{sys.argv[1]}: a kernel launch the rewrite does not handle")
with open(sys.argv[2], "w") as f:
    f.write(f'#line 1 "{sys.argv[1]}"\n' + out)
