"""Running the project's Linux guest (Debian kernel + pyqemu's busybox
initramfs) under real qemu-system-x86_64 or pyqemu-system-x86_64, for the
tests of the guest's /init actions and of the early boot."""
from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PYQEMU = os.path.join(os.path.dirname(sys.executable), "pyqemu-system-x86_64")

# Booting Linux under pyqemu takes far longer than CI allows today: those
# tests run only when this variable is set (PYQEMU_LINUX_BOOT=1).
OPT_IN = bool(os.environ.get("PYQEMU_LINUX_BOOT"))
# Seconds one pyqemu boot may take when opted in.
PYQEMU_TIMEOUT = float(os.environ.get("PYQEMU_LINUX_BOOT_TIMEOUT", "7200"))


def pyqemu_command() -> Tuple[List[str], Dict[str, str]]:
    """pyqemu-system-x86_64 on PyPy when the project's .venv-pypy exists (it is
    several times faster there), else on this test run's CPython."""
    env = dict(os.environ)
    pypy = os.path.join(REPO, ".venv-pypy", "bin", "python")
    if os.path.exists(pypy):
        env["PYTHONPATH"] = os.path.join(REPO, "src")
        return [pypy, "-m", "pyqemu.cli.system"], env
    return [PYQEMU], env


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_to_exit(cmd: Sequence[str], timeout: float,
                env: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
    """Run a boot to its end; (exit status, console output). The process
    group is killed if it outlives ``timeout``."""
    proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        out = proc.stdout.read() if proc.stdout else b""
        raise AssertionError("%s did not finish within %d s; last output: %r"
                             % (cmd[0], timeout, out[-1500:].decode(errors="replace")))
    finally:
        if proc.poll() is None:
            _kill(proc)
        if proc.stdout:
            proc.stdout.close()
    return proc.returncode, out.decode(errors="replace")


def run_until(cmd: Sequence[str], needles: Sequence[str], timeout: float,
              env: Optional[Dict[str, str]] = None) -> str:
    """Run until every needle has appeared in the output with the rest of its
    line, then kill the emulator; returns the output. Fails when the emulator ends first or the
    deadline passes."""
    proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, env=env)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout

    def complete(needle: bytes) -> bool:
        at = buf.find(needle)
        return at >= 0 and b"\n" in buf[at:]

    try:
        while not all(complete(n.encode()) for n in needles):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: %r not seen within %d s; last output: %r"
                                     % (cmd[0], needles, timeout, buf[-1500:]))
            if not sel.select(timeout=min(left, 1.0)):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                proc.wait()
                raise AssertionError("%s ended (status %s) before %r; last output: %r"
                                     % (cmd[0], proc.returncode, needles, buf[-1500:]))
            buf += chunk
    finally:
        sel.close()
        _kill(proc)
        proc.stdout.close()
    return buf.decode(errors="replace")


def real_qemu_path() -> Optional[str]:
    return shutil.which("qemu-system-x86_64")


def guest_info(out: str) -> Tuple[int, int]:
    """(CPU count, MemTotal in kB) from the line /init prints after the marker."""
    line = [ln for ln in out.splitlines() if "pyqemu-guest: cpus" in ln][0]
    words = line.split()
    return int(words[2]), int(words[4])
