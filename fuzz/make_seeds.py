#!/usr/bin/env python3
"""make_seeds.py GO-BINARY NAME FIRST-FUNC COUNT: writes small, real-structured seeds for
the fuzz targets, cut from a real Go binary (go1.20+, little-endian, 64-bit):

  corpus/pclntab/NAME   a repacked pclntab holding COUNT consecutive functions starting
                        with FIRST-FUNC (their _func records, names, pcsp and pcdata
                        tables; entry offsets rebased to 0)
  corpus/elf_scan/NAME  an ELF (assembled and linked with binutils) whose .text holds
                        those functions' real code and whose .gopclntab is that table,
                        plus .go.buildinfo: `gorace scan` scans it like the original.

Run once by hand; the seeds are committed (a few KiB each).
"""
import os
import struct
import subprocess
import sys
import tempfile


def uvarint(b, p):
    v = s = 0
    while True:
        c = b[p]
        p += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, p


def table_len(b, p):  # length of a pc-value table starting at p, terminator included
    start, first = p, True
    while True:
        v, p = uvarint(b, p)
        if v == 0 and not first:
            return p - start
        _, p = uvarint(b, p)
        first = False


def section(path, name):
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.replace("[ ", "[").split()
        if len(f) > 5 and f[1] == name:
            addr, off, size = int(f[3], 16), int(f[4], 16), int(f[5], 16)
            return addr, open(path, "rb").read()[off:off + size]
    sys.exit(f"{path}: no {name}")


def main():
    path, name, first, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    _, t = section(path, ".gopclntab")
    text_addr, text = section(path, ".text")
    hdr = struct.unpack_from("<IBBBBQQQQQQQQ", t, 0)
    nfunc, text_start, funcname, _, _, pctab, functab = hdr[5], hdr[7], *hdr[8:]
    def func(i):
        entry_off, func_off = struct.unpack_from("<II", t, functab + 8 * i)
        return entry_off, functab + func_off
    def fname(fo):
        no = struct.unpack_from("<i", t, fo + 4)[0]
        s = funcname + no
        return t[s:t.index(b"\0", s)]
    idx = next(i for i in range(nfunc) if fname(func(i)[1]) == first.encode())
    sel = list(range(idx, min(idx + count, nfunc)))
    base_off = func(sel[0])[0]
    end_off = struct.unpack_from("<I", t, functab + 8 * (sel[-1] + 1))[0]
    # The real text base: header textStart (go1.20-1.26) or the .text address (go1.27).
    tbase = text_start or text_addr
    names, pcs, recs = bytearray(), bytearray(b"\xff"), []  # pctab offset 0 = none
    for i in sel:
        entry_off, fo = func(i)
        npcdata, nfuncdata = struct.unpack_from("<I", t, fo + 28)[0], t[fo + 43]
        rec = bytearray(t[fo:fo + 44 + 4 * (npcdata + nfuncdata)])
        struct.pack_into("<I", rec, 0, entry_off - base_off)
        struct.pack_into("<i", rec, 4, len(names))
        names += fname(fo) + b"\0"
        for field in [16, 20, 24] + [44 + 4 * k for k in range(npcdata)]:
            off = struct.unpack_from("<I", rec, field)[0]
            if off == 0 or field in (20, 24):  # pcfile/pcln: not read by the scanner
                struct.pack_into("<I", rec, field, 0)
                continue
            n = table_len(t, pctab + off)
            struct.pack_into("<I", rec, field, len(pcs))
            pcs += t[pctab + off:pctab + off + n]
        recs.append((entry_off - base_off, rec))
    hdr_len = 8 + 8 * 8
    names_off = hdr_len
    pctab_off = names_off + len(names)
    functab_off = (pctab_off + len(pcs) + 7) & ~7
    ft = bytearray()
    recs_start = 8 * len(recs) + 4
    recs_start = (recs_start + 3) & ~3
    blob = bytearray()
    for e, rec in recs:
        ft += struct.pack("<II", e, recs_start + len(blob))
        blob += rec
    ft += struct.pack("<I", end_off - base_off)
    ft += b"\0" * (recs_start - len(ft))
    new_start = tbase + base_off
    header = struct.pack("<IBBBBQQQQQQQQ", 0xFFFFFFF1, 0, 0, t[6], 8, len(sel), 0,
                         new_start if text_start else 0, names_off, pctab_off,
                         pctab_off, pctab_off, functab_off)
    tab = header + names + pcs + b"\0" * (functab_off - pctab_off - len(pcs)) + ft + blob
    here = os.path.dirname(os.path.abspath(__file__))
    for d in ("pclntab", "elf_scan"):
        os.makedirs(f"{here}/corpus/{d}", exist_ok=True)
    open(f"{here}/corpus/pclntab/{name}", "wb").write(tab)
    code = text[new_start - text_addr:tbase + end_off - text_addr]
    _, bi = section(path, ".go.buildinfo")
    arm = t[6] == 4
    prefix = "aarch64-linux-gnu-" if arm else ""
    with tempfile.TemporaryDirectory() as tmp:
        for fn, data in (("code", code), ("tab", tab), ("bi", bi[:64])):
            open(f"{tmp}/{fn}", "wb").write(data)
        open(f"{tmp}/s.s", "w").write(
            '.section .text,"ax"\n.incbin "code"\n'
            '.section .gopclntab,"a"\n.incbin "tab"\n'
            '.section .go.buildinfo,"aw"\n.incbin "bi"\n')
        subprocess.run([prefix + "as", "-o", f"{tmp}/s.o", f"{tmp}/s.s"], cwd=tmp, check=True)
        subprocess.run([prefix + "ld", "-N", "-s", "-e", "0", f"-Ttext={new_start:#x}",
                        "-o", f"{here}/corpus/elf_scan/{name}", f"{tmp}/s.o"], check=True)
    print(f"{name}: {len(sel)} functions from {first}, pclntab {len(tab)} B, "
          f"elf {os.path.getsize(f'{here}/corpus/elf_scan/{name}')} B")


main()
