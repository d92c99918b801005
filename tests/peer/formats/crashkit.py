"""kill -9 pyqemu-io at a chosen write or flush of its image file, deterministically.

The child is pyqemu-io itself (its console-script entry point) with the
file protocol's mutating calls counted: at the N-th call it kills itself
with SIGKILL before the call reaches the file.  Iterating N from 1 until
the run completes visits every point where a crash can leave the image,
with no timing involved.  pyqemu-io prints "wrote ..." after each request
and "flushed" is inferred from the order of -c commands, so the caller
knows which requests completed and which were flushed before the kill.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import List, Sequence, Tuple

CHILD = r"""
import os, signal, sys
from pyqemu.block.file import FileNode
from pyqemu.cli.io import main
limit = int(os.environ["KILL_AT_CALL"])
calls = [0]
def counted(name):
    orig = getattr(FileNode, name)
    def wrapper(self, *a, **k):
        calls[0] += 1
        if calls[0] == limit:
            os.kill(os.getpid(), signal.SIGKILL)
        return orig(self, *a, **k)
    return wrapper
for name in ("pwrite", "pwritev", "pwrite_zeroes", "discard", "flush", "truncate"):
    setattr(FileNode, name, counted(name))
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Crash:
    """What a killed run left: the commands that completed before the kill."""
    killed: bool
    completed: int          # how many -c commands finished (their output was printed)
    output: str


def run_killed(cwd, io_args: Sequence[str], commands: Sequence[str], kill_at: int) -> Crash:
    """Run pyqemu-io with ``commands`` (each a -c), killed at file call number ``kill_at``."""
    argv = [sys.executable, "-c", CHILD, *io_args]
    for c in commands:
        argv += ["-c", c]
    env = dict(os.environ, KILL_AT_CALL=str(kill_at), PYTHONUNBUFFERED="1")
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in r.stderr, r.stderr
    killed = r.returncode == -signal.SIGKILL
    assert killed or r.returncode == 0, (r.returncode, r.stderr)
    # a write completed when its "wrote" line is out; a flush when a later write
    # completed or the run finished (a kill may have hit the flush itself)
    wrote = len(re.findall(r"^wrote ", r.stdout, re.M))
    done, seen = 0, 0
    for c in commands:
        if c.startswith("write"):
            if seen == wrote:
                break
            seen += 1
        elif killed and seen == wrote:
            break
        done += 1
    return Crash(killed, done, r.stdout)


def flushed_writes(commands: Sequence[str], crash: Crash) -> List[str]:
    """The write commands that completed before the last flush that completed."""
    last_flush = max((i for i in range(crash.completed) if commands[i] == "flush"), default=-1)
    return [c for c in commands[:last_flush + 1] if c.startswith("write")]


def pattern_ranges(writes: Sequence[str]) -> List[Tuple[int, int, int]]:
    """(pattern, offset, length) of qemu-io 'write -P p off len' commands (plain byte numbers)."""
    out = []
    for w in writes:
        _, _, p, off, length = w.split()
        out.append((int(p, 0), int(off), int(length)))
    return out


def started_writes(commands: Sequence[str], crash: Crash) -> List[str]:
    """The writes that completed or may have been in progress at the kill.

    A flush leaves no output, so after the last completed write the kill may
    have hit a flush or the write after it: count that write as started.
    """
    writes = [c for c in commands[:crash.completed] if c.startswith("write")]
    nxt = [c for c in commands[crash.completed:] if c.startswith("write")]
    return writes + nxt[:1]
