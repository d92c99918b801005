"""Configuration: the key file (``[general]`` group) and its dump (``-D``).

The file is /etc/qemu/qemu-ga.conf, or the one named by $QGA_CONF (QEMU's
agent reads the same variable) or by pyqemu-ga's ``-c FILE``.  Options on
the command line are applied after the file, so they win.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from pyqemu.qga.agent import AgentConfig
from pyqemu.util.error import QemuError

DEFAULT_CONF = "/etc/qemu/qemu-ga.conf"
DEFAULT_HOOK = "/etc/qemu/fsfreeze-hook"
VIRTIO_PATH = "/dev/virtio-ports/org.qemu.guest_agent.0"
SERIAL_PATH = "/dev/ttyS0"


def parse_keyfile(text: str) -> Dict[str, Dict[str, str]]:
    """GLib key-file syntax: ``[group]``, ``key=value``, ``#`` comments."""
    groups: Dict[str, Dict[str, str]] = {}
    current: Optional[Dict[str, str]] = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = groups.setdefault(line[1:-1], {})
            continue
        if "=" not in line or current is None:
            if "=" in line:
                raise ValueError("Key file does not start with a group")
            raise ValueError("Key file contains line \u201c%s\u201d which is not a key-value pair, "
                             "group, or comment" % raw)
        k, v = line.split("=", 1)
        current[k.strip()] = v.strip()
    return groups


def _kf_bool(key: str, value: str) -> bool:
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError("Key file contains key \u201c%s\u201d which has a value that cannot be "
                     "interpreted." % key)


def split_rpcs(text: str) -> List[str]:
    # QEMU's agent builds this list by prepending, so order comes out reversed.
    return list(reversed([x for x in text.split(",") if x]))


def load_file(cfg: AgentConfig, path: str) -> None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return      # a missing configuration file is not an error
    try:
        gen = parse_keyfile(text).get("general", {})
        if "daemon" in gen:
            cfg.daemonize = _kf_bool("daemon", gen["daemon"])
        if "method" in gen:
            cfg.method = gen["method"]
        if "path" in gen:
            cfg.path = gen["path"]
        if "logfile" in gen:
            cfg.logfile = gen["logfile"]
        if "pidfile" in gen:
            cfg.pidfile = gen["pidfile"]
        if "fsfreeze-hook" in gen:
            cfg.fsfreeze_hook = gen["fsfreeze-hook"]
        if "statedir" in gen:
            cfg.statedir = gen["statedir"]
        if "verbose" in gen:
            cfg.verbose = _kf_bool("verbose", gen["verbose"])
        if "retry-path" in gen:
            cfg.retry_path = _kf_bool("retry-path", gen["retry-path"])
        if "block-rpcs" in gen:
            cfg.blocked += split_rpcs(gen["block-rpcs"])
    except ValueError as exc:
        raise QemuError("error loading configuration from path: %s, %s" % (path, exc)) from None


def finalize(cfg: AgentConfig) -> None:
    if cfg.path is None:
        if cfg.method == "isa-serial":
            cfg.path = SERIAL_PATH
        elif cfg.method == "virtio-serial":
            cfg.path = VIRTIO_PATH
        else:
            raise QemuError("must specify a path for this channel")


def dump(cfg: AgentConfig) -> str:
    items: List[Tuple[str, str]] = [("daemon", _b(cfg.daemonize)), ("method", cfg.method),
                                    ("path", cfg.path or "")]
    if cfg.logfile:
        items.append(("logfile", cfg.logfile))
    items.append(("pidfile", cfg.pidfile))
    if cfg.fsfreeze_hook is not None:
        items.append(("fsfreeze-hook", cfg.fsfreeze_hook))
    items += [("statedir", cfg.statedir), ("verbose", _b(cfg.verbose)),
              ("retry-path", _b(cfg.retry_path)), ("block-rpcs", ",".join(cfg.blocked))]
    return "[general]\n" + "".join("%s=%s\n" % kv for kv in items)


def _b(v: bool) -> str:
    return "true" if v else "false"


def conf_path(explicit: Optional[str]) -> str:
    return explicit or os.environ.get("QGA_CONF") or DEFAULT_CONF
