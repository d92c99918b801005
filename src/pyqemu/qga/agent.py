"""The agent's state: configuration, open file handles, children, freeze state."""
from __future__ import annotations

import configparser
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from pyqemu.qga.dispatch import Registry, dispatch
from pyqemu.qga.errors import QgaError

VERSION = "7.2.22"

# Commands that stay usable while filesystems are frozen; everything else
# could write to a frozen filesystem and hang the agent.
FROZEN_ALLOWED = ("guest-ping", "guest-info", "guest-sync", "guest-sync-delimited",
                  "guest-fsfreeze-status", "guest-fsfreeze-thaw")
FROZEN_REASON = "the agent is in frozen state"


@dataclass
class AgentConfig:
    method: str = "virtio-serial"
    path: Optional[str] = None
    logfile: Optional[str] = None
    pidfile: str = "/var/run/qemu-ga.pid"
    fsfreeze_hook: Optional[str] = None
    statedir: str = "/var/run"
    verbose: bool = False
    daemonize: bool = False
    retry_path: bool = False
    blocked: List[str] = field(default_factory=list)


class Agent:
    """Everything a command may need; one per running agent."""

    def __init__(self, config: AgentConfig, registry: Optional[Registry] = None) -> None:
        from pyqemu.qga.commands import build_registry
        self.config = config
        self.registry = registry or build_registry()
        for name in config.blocked:
            self.registry.disable(name)
        self.files: Dict[int, Any] = {}
        self.children: Dict[int, Any] = {}
        self.frozen = False
        self.delimit_response = False
        self.state_path = os.path.join(config.statedir, "qga.state")
        self.frozen_marker = self.state_path + ".isfrozen"
        self.fd_counter = 1000
        self._load_state()
        # Filesystems frozen by a previous instance may still be frozen:
        # start refusing writers until the host thaws them.
        if os.path.exists(self.frozen_marker):
            self.set_frozen(True)

    # -- persistent state: the next file handle survives restarts, so a host
    # never confuses a stale handle with a new one.
    def _load_state(self) -> None:
        kf = configparser.ConfigParser(interpolation=None)
        try:
            kf.read(self.state_path)
            self.fd_counter = kf.getint("global", "fd_counter", fallback=1000)
        except (configparser.Error, ValueError):
            self.fd_counter = 1000
        self._save_state()

    def _save_state(self) -> None:
        data = "[global]\nfd_counter=%d\n" % self.fd_counter
        try:
            fd, tmp = tempfile.mkstemp(prefix="qga.state.", dir=self.config.statedir)
        except OSError as exc:
            raise QgaError("failed to write persistent state to %s: %s"
                           % (self.state_path, os.strerror(exc.errno or 5))) from None
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.replace(tmp, self.state_path)

    def new_handle(self) -> int:
        handle = self.fd_counter
        self.fd_counter = 1000 if self.fd_counter >= (1 << 63) - 1 else self.fd_counter + 1
        self._save_state()
        return handle

    def set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        try:
            if frozen:
                os.close(os.open(self.frozen_marker, os.O_CREAT | os.O_WRONLY, 0o600))
            elif os.path.exists(self.frozen_marker):
                os.unlink(self.frozen_marker)
        except OSError:
            pass    # the in-memory state still protects this instance
        for name in self.registry.names():
            if name in FROZEN_ALLOWED:
                continue
            if frozen:
                if name not in self.registry.blocked:
                    self.registry.disable(name, FROZEN_REASON)
            elif self.registry.blocked.get(name) == FROZEN_REASON:
                self.registry.enable(name)

    def handle(self, req: Any) -> Optional[Dict[str, Any]]:
        return dispatch(self.registry, self, req)

    def close(self) -> None:
        for f in self.files.values():
            try:
                f.close()
            except OSError:
                pass
        self.files.clear()
