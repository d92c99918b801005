"""Shared helpers of the system-mode CPU tests: build a firmware image, run a
program until it exits (never leaving it behind)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
PYQEMU = os.path.join(os.path.dirname(sys.executable), "pyqemu-system-x86_64")


def build_firmware(src: str, tmp_path) -> str:
    """Assemble ``src`` (a file in this directory) into a 64 KiB image at 0xf0000."""
    obj = os.path.join(str(tmp_path), "fw.o")
    out = os.path.join(str(tmp_path), "fw.bin")
    subprocess.run(["as", "--64", "-o", obj, os.path.join(HERE, src)], check=True)
    subprocess.run(["ld", "-m", "elf_x86_64", "-Ttext", "0xf0000", "--oformat", "binary",
                    "-o", out, obj], check=True)
    return out


def run(argv: List[str], timeout: float = 300) -> Tuple[int, bytes]:
    """Run to completion; a run that does not end in ``timeout`` is killed and fails."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("%s did not finish in %d s" % (argv[0], timeout))
    return p.returncode, err


def wait_for_text(path: str, text: bytes, proc: subprocess.Popen, timeout: float,
                  count: int = 1) -> bytes:
    """Poll ``path`` until it contains ``text`` ``count`` times (or the program
    ended / time ran out)."""
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        if data.count(text) >= count or proc.poll() is not None:
            break
        time.sleep(0.2)
    return data
