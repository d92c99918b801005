"""Build the multiboot test kernel (tests/guests/multiboot) with the host's
gcc -m32. The result is cached under .cache/guests/ by a hash of the
sources and flags, so every test and engineer shares one build; nothing
built is committed.

    python3 tests/guests/multiboot/build.py          # prints the ELF's path
    python3 tests/guests/multiboot/build.py --aout   # the a.out-kludge flavour
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
SOURCES = ("boot.S", "kernel.c", "link.ld")
CFLAGS = [
    "-m32", "-ffreestanding", "-nostdlib", "-fno-pic", "-static", "-no-pie",
    "-O2", "-fno-stack-protector", "-mgeneral-regs-only",
    "-fno-asynchronous-unwind-tables", "-fcf-protection=none", "-Wall", "-Wextra", "-Werror",
    "-Wl,--build-id=none", "-Wl,--no-warn-rwx-segments",
]


class BuildError(RuntimeError):
    pass


def _digest(extra: list) -> str:
    h = hashlib.sha256()
    for name in SOURCES:
        with open(os.path.join(HERE, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read() + b"\0")
    h.update(" ".join(CFLAGS + extra).encode())
    return h.hexdigest()[:16]


def _compile(out: str, defines: list) -> None:
    cc = shutil.which("gcc")
    if cc is None:
        raise BuildError("gcc (with gcc-multilib) is needed to build the multiboot test kernel")
    cmd = [cc] + CFLAGS + defines + ["-Wl,-T," + os.path.join(HERE, "link.ld"), "-o", out,
                                     os.path.join(HERE, "boot.S"), os.path.join(HERE, "kernel.c")]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        raise BuildError("building the multiboot test kernel failed:\n" + res.stdout.decode(errors="replace"))


def build(aout: bool = False, cache_dir: str | None = None) -> str:
    """Return the path of the built kernel, building it if needed.

    aout=True gives the same kernel with the multiboot header's address
    fields (flag bit 16), which loaders use instead of the ELF headers."""
    defines = ["-DMB_AOUT_KLUDGE"] if aout else []
    cache_dir = cache_dir or os.path.join(ROOT, ".cache", "guests", "multiboot")
    path = os.path.join(cache_dir, "%s-%s.elf" % ("aout" if aout else "elf", _digest(defines)))
    if os.path.exists(path):
        return path
    os.makedirs(cache_dir, exist_ok=True)
    # build beside the target and rename: concurrent tests never see half a file
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    os.close(fd)
    try:
        _compile(tmp, defines)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


if __name__ == "__main__":
    print(build(aout="--aout" in sys.argv[1:]))
