#!/usr/bin/env python3
"""Rewrites a BPF object the way LLVM wrote them before BTF: every global
symbol with type NOTYPE and size 0 (function and map symbols alike), as in
the Linux samples/bpf objects of that era. Usage: pre_btf.py IN OUT.
The .BTF/.BTF.ext sections are removed beforehand with llvm-objcopy."""
import struct
import sys

data = bytearray(open(sys.argv[1], "rb").read())
assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "ELF64 little-endian only"
shoff, = struct.unpack_from("<Q", data, 0x28)
shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
for i in range(shnum):
    h = shoff + i * shentsize
    sh_type, = struct.unpack_from("<I", data, h + 4)
    if sh_type != 2:  # SHT_SYMTAB
        continue
    off, size = struct.unpack_from("<QQ", data, h + 0x18)
    for at in range(off, off + size, 24):
        info = data[at + 4]
        shndx, = struct.unpack_from("<H", data, at + 6)
        if info >> 4 == 1 and shndx != 0:  # STB_GLOBAL, defined
            data[at + 4] = info & 0xF0  # STT_NOTYPE
            struct.pack_into("<Q", data, at + 16, 0)
open(sys.argv[2], "wb").write(data)
