"""guest-exec and guest-exec-status: run a program, collect its output."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
from typing import Any, Dict, List, Optional

from pyqemu.qga import b64
from pyqemu.qga.errors import QgaError
from pyqemu.qga.qapi import ListOf, arg, opt

MAX_OUTPUT = 16 << 20


class _Capture:
    def __init__(self) -> None:
        self.data = bytearray()
        self.truncated = False

    def drain(self, stream: Any) -> None:
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            room = MAX_OUTPUT - len(self.data)
            if len(chunk) > room:
                self.truncated = True
                chunk = chunk[:max(room, 0)]
            self.data += chunk
        stream.close()


class ExecChild:
    """A started program; threads collect its output so the agent never blocks."""

    def __init__(self, proc: subprocess.Popen, capture: bool, stdin: Optional[bytes]) -> None:
        self.proc = proc
        self.capture = capture
        self.out = _Capture()
        self.err = _Capture()
        self.threads: List[threading.Thread] = []
        if capture:
            self._spawn(self.out.drain, proc.stdout)
            self._spawn(self.err.drain, proc.stderr)
        if stdin is not None:
            self._spawn(self._feed, stdin)

    def _spawn(self, fn: Any, arg: Any) -> None:
        t = threading.Thread(target=fn, args=(arg,), daemon=True)
        t.start()
        self.threads.append(t)

    def _feed(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def finished(self) -> bool:
        if self.proc.poll() is None:
            return False
        return not any(t.is_alive() for t in self.threads)


def _spawn_error(path: str, exc: OSError) -> QgaError:
    return QgaError("Guest agent command failed, error was 'Failed to execute child process "
                    "\u201c%s\u201d (%s)'" % (path, os.strerror(exc.errno or 5)))


def guest_exec(agent: Any, path: str, arg: Optional[List[str]] = None,
               env: Optional[List[str]] = None, input_data: Optional[str] = None,
               capture_output: Optional[bool] = None) -> Dict[str, int]:
    stdin = b64.decode(input_data) if input_data is not None else None
    capture = bool(capture_output)
    argv = [path] + list(arg or [])
    if not path:
        raise _spawn_error(path, OSError(errno.ENOENT, "empty path"))
    exe = path if "/" in path else (shutil.which(path) or path)
    envmap = None
    if env is not None:
        envmap = {}
        for item in env:
            k, _, v = item.partition("=")
            envmap[k] = v
    pipes = dict(stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                 stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                 stderr=subprocess.PIPE if capture else subprocess.DEVNULL)
    try:
        proc = subprocess.Popen(argv, executable=exe, env=envmap, close_fds=True, **pipes)
    except OSError as exc:
        if exc.errno != errno.ENOEXEC:
            raise _spawn_error(path, exc) from None
        # An executable without #! line is a shell script (as GLib's spawn treats it).
        try:
            proc = subprocess.Popen(["/bin/sh", exe] + argv[1:], env=envmap, close_fds=True, **pipes)
        except OSError as exc2:
            raise _spawn_error(path, exc2) from None
    agent.children[proc.pid] = ExecChild(proc, capture, stdin)
    return {"pid": proc.pid}


def exec_status(agent: Any, pid: int) -> Dict[str, Any]:
    child = agent.children.get(pid)
    if child is None:
        raise QgaError("Invalid parameter 'pid'")
    if not child.finished():
        return {"exited": False}
    del agent.children[pid]
    rc = child.proc.returncode
    out: Dict[str, Any] = {"exited": True}
    if rc >= 0:
        out["exitcode"] = rc
    else:
        out["signal"] = -rc
    if child.capture:
        if child.out.data:
            out["out-data"] = b64.encode(bytes(child.out.data))
            out["out-truncated"] = child.out.truncated
        if child.err.data:
            out["err-data"] = b64.encode(bytes(child.err.data))
            out["err-truncated"] = child.err.truncated
    return out


SPECS = {
    "guest-exec-status": (exec_status, [arg("pid", "int")], True, True),
    "guest-exec": (guest_exec, [arg("path"), opt("arg", ListOf("str")), opt("env", ListOf("str")),
                                opt("input-data"), opt("capture-output", "bool")], True, True),
}
