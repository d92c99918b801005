"""Run the multiboot test kernel (tests/guests/multiboot) under an emulator
and parse what it prints on COM1."""
from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "guests", "multiboot"))

import build  # noqa: E402  (the guest's build helper lives beside its sources)

build_kernel = build.build


def run(prog: str, kernel: str, append: str = "", extra: tuple = (), timeout: float = 240) -> tuple:
    """Boot the kernel; return (exit status, the guest's text from its
    start marker on, with CRs dropped)."""
    cmd = [prog, "-M", "pc", "-kernel", kernel, "-nographic", "-no-reboot",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    if append:
        cmd += ["-append", append]
    cmd += list(extra)
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=timeout)
    out = res.stdout.decode(errors="replace").replace("\r", "")
    start = out.find("mbtest: start")
    return res.returncode, out[start:] if start >= 0 else out


def findings(text: str) -> dict:
    """'part: key=value key=value' lines -> {part: {key: int or str}}; the
    values of one part accumulate over its lines."""
    parts: dict = {}
    for line in text.splitlines():
        head, sep, rest = line.partition(":")
        if not sep or " " in head:
            continue
        d = parts.setdefault(head, {})
        words = rest.split()
        if words and "=" not in words[0]:
            d.setdefault("_names", []).append(words[0])
            prefix = words[0] + "."
            words = words[1:]
        else:
            prefix = ""
        for w in words:
            k, eq, v = w.partition("=")
            if not eq:
                continue
            try:
                d[prefix + k] = int(v, 16)
            except ValueError:
                d[prefix + k] = v
    return parts
