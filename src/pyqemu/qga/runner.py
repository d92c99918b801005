"""Running the guest's helper programs (shutdown, hwclock, chpasswd, systemctl)."""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import List, Optional

from pyqemu.qga.errors import QgaError


def find(prog: str) -> Optional[str]:
    return shutil.which(prog)


def run(argv: List[str], search_path: bool = True, stdin: Optional[bytes] = None) -> int:
    """Run a helper with no output; return its wait status (or -1 if it cannot start)."""
    path = argv[0] if not search_path else (find(argv[0]) or "")
    if not path:
        return -1
    try:
        proc = subprocess.Popen([path] + argv[1:], executable=path,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                close_fds=True, start_new_session=True)
    except OSError:
        return -1
    if stdin is not None:
        try:
            proc.communicate(stdin)
        except BrokenPipeError:
            pass
    proc.wait()
    rc = proc.returncode
    return (rc << 8) if rc >= 0 else (-rc)


def check_status(status: int, failure: str) -> None:
    """QEMU's checks on a helper's wait status: killed, then non-zero exit."""
    if status < 0:
        raise QgaError("failed to create child process")
    if os.WIFSIGNALED(status) or not os.WIFEXITED(status):
        raise QgaError("child process has terminated abnormally")
    if os.WEXITSTATUS(status):
        raise QgaError(failure)
