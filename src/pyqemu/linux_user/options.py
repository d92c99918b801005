"""The user-mode emulator's command line and QEMU_* environment variables.

Parsing follows qemu-x86_64: options come before the program, each may be
written with one or two dashes, and every option has an environment variable
that is read first (the command line wins).
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from pyqemu.util.error import UsageError

# name, argument name (None: a flag), environment variable, help text.
OPTIONS = [
    ("h", None, None, "print this help"),
    ("help", None, None, ""),
    ("g", "port", "QEMU_GDB", "wait gdb connection to 'port'"),
    ("L", "path", "QEMU_LD_PREFIX", "set the elf interpreter prefix to 'path'"),
    ("s", "size", "QEMU_STACK_SIZE", "set the stack size to 'size' bytes"),
    ("cpu", "model", "QEMU_CPU", "select CPU (-cpu help for list)"),
    ("E", "var=value", "QEMU_SET_ENV", "sets targets environment variable (see below)"),
    ("U", "var", "QEMU_UNSET_ENV", "unsets targets environment variable (see below)"),
    ("0", "argv0", "QEMU_ARGV0", "forces target process argv[0] to be 'argv0'"),
    ("r", "uname", "QEMU_UNAME", "set qemu uname release string to 'uname'"),
    ("B", "address", "QEMU_GUEST_BASE", "set guest_base address to 'address'"),
    ("R", "size", "QEMU_RESERVED_VA", "reserve 'size' bytes for guest virtual address space"),
    ("d", "item[,...]", "QEMU_LOG",
     "enable logging of specified items (use '-d help' for a list of items)"),
    ("dfilter", "range[,...]", "QEMU_DFILTER", "filter logging based on address range"),
    ("D", "logfile", "QEMU_LOG_FILENAME", "write logs to 'logfile' (default stderr)"),
    ("p", "pagesize", "QEMU_PAGESIZE", "set the host page size to 'pagesize'"),
    ("singlestep", None, "QEMU_SINGLESTEP", "run in singlestep mode"),
    ("strace", None, "QEMU_STRACE", "log system calls"),
    ("seed", "", "QEMU_RAND_SEED", "Seed for pseudo-random number generator"),
    ("version", None, "QEMU_VERSION", "display version information and exit"),
]
_BY_NAME = {o[0]: o for o in OPTIONS}

DEFAULT_STACK_SIZE = 8 * 1024 * 1024


class UserOptions:
    """The parsed command line."""

    def __init__(self) -> None:
        self.gdb_port: Optional[str] = None
        self.ld_prefix: Optional[str] = None
        self.stack_size = DEFAULT_STACK_SIZE
        self.cpu_model: Optional[str] = None
        self.set_env: List[str] = []
        self.unset_env: List[str] = []
        self.argv0: Optional[str] = None
        self.uname_release: Optional[str] = None
        self.guest_base: Optional[int] = None
        self.reserved_va: Optional[int] = None
        self.log_items: Optional[str] = None
        self.dfilter: Optional[str] = None
        self.log_file: Optional[str] = None
        self.pagesize: Optional[int] = None
        self.singlestep = False
        self.strace = False
        self.seed: Optional[str] = None
        self.help = False
        self.help_status = 0
        self.version = False
        self.program: Optional[str] = None
        self.args: List[str] = []

    def target_environ(self, environ: Mapping[str, str]) -> List[str]:
        """The guest's environment: the host's, with -E/-U applied in order."""
        env: Dict[str, str] = dict(environ)
        for spec in self.set_env:
            for item in spec.split(","):
                if "=" in item:
                    k, v = item.split("=", 1)
                    env[k] = v
        for spec in self.unset_env:
            for item in spec.split(","):
                env.pop(item, None)
        return ["%s=%s" % kv for kv in env.items()]


class PlainError(Exception):
    """An option error qemu reports as a bare line on stderr (no program
    name) with exit status 1."""


def _strtoul(text: str) -> Tuple[int, str]:
    """C strtoul(text, &end, 0) on an unsigned long: (value, rest)."""
    m = re.match(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if m is None:
        return 0, text
    digits = m.group(2)
    if digits[:2] in ("0x", "0X"):
        v = int(digits, 16)
    elif digits.startswith("0"):
        v = int(digits, 8) if len(digits) > 1 else 0
    else:
        v = int(digits)
    if v >= 1 << 64:
        v = (1 << 64) - 1          # ERANGE: ULONG_MAX
    elif m.group(1) == "-":
        v = -v & ((1 << 64) - 1)
    return v, text[m.end():]


def _atoi(text: str) -> int:
    m = re.match(r"\s*([+-]?\d+)", text)
    if m is None:
        return 0
    return int(m.group(1))


def parse_reserved_va(arg: str) -> int:
    """-R: a number (C syntax) with an optional k/K/M/G suffix, as qemu."""
    v, rest = _strtoul(arg)
    shift = {"k": 10, "K": 10, "M": 20, "G": 30}.get(rest[:1], 0)
    if shift:
        rest = rest[1:]
        if v << shift >= 1 << 64:
            raise PlainError("Reserved virtual address too big")
        v <<= shift
    if rest:
        raise PlainError("Unrecognised -R size suffix '%s'" % rest)
    return v


def _apply(o: UserOptions, name: str, arg: Optional[str]) -> None:
    from pyqemu.util.opts import strtosz

    if name in ("h", "help"):
        o.help = True
    elif name == "g":
        o.gdb_port = arg
    elif name == "L":
        o.ld_prefix = arg
    elif name == "s":
        try:
            o.stack_size = strtosz(arg or "")
        except Exception:
            o.stack_size = 0
        if o.stack_size == 0:
            # qemu prints the usage (to stdout) and fails for a bad size.
            o.help = True
            o.help_status = 1
    elif name == "cpu":
        o.cpu_model = arg
    elif name == "E":
        o.set_env.append(arg or "")
    elif name == "U":
        o.unset_env.append(arg or "")
    elif name == "0":
        o.argv0 = arg
    elif name == "r":
        o.uname_release = arg
    elif name == "B":
        o.guest_base = _strtoul(arg or "")[0]
    elif name == "R":
        o.reserved_va = parse_reserved_va(arg or "")
    elif name == "d":
        o.log_items = arg
    elif name == "dfilter":
        o.dfilter = arg
    elif name == "D":
        o.log_file = arg
    elif name == "p":
        size = _atoi(arg or "") & ((1 << 64) - 1)
        if size == 0 or size & (size - 1):
            raise PlainError("page size must be a power of two")
        o.pagesize = size
    elif name == "singlestep":
        o.singlestep = True
    elif name == "strace":
        o.strace = True
    elif name == "seed":
        o.seed = arg
    elif name == "version":
        o.version = True


def parse_args(argv: Sequence[str], environ: Optional[Mapping[str, str]] = None) -> UserOptions:
    """Parse ``argv`` (without the program name) and the QEMU_* variables."""
    environ = os.environ if environ is None else environ
    o = UserOptions()
    for name, argname, env, _help in OPTIONS:
        if env and env in environ:
            _apply(o, name, environ[env] if argname is not None else None)
    i = 0
    argv = list(argv)
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            break
        i += 1
        name = a[2:] if a.startswith("--") else a[1:]
        if not name:
            break  # a lone "-" or "--" ends the options
        opt = _BY_NAME.get(name)
        if opt is None:
            raise UsageError("unknown option '%s'" % name)
        arg = None
        if opt[1] is not None:
            if i >= len(argv):
                raise UsageError("missing argument for option '%s'" % name)
            arg = argv[i]
            i += 1
        _apply(o, name, arg)
        if o.help or o.version:
            return o
    if i < len(argv):
        o.program = argv[i]
        o.args = argv[i + 1:]
    return o


def usage_text(prog: str, arch: str, ld_prefix: str, stack_size: int) -> str:
    """``-h`` output in qemu-x86_64's layout."""
    lines = [
        "usage: %s [options] program [arguments...]" % prog,
        "Linux CPU emulator (compiled for %s emulation)" % arch,
        "",
        "Options and associated environment variables:",
        "",
        "%-20s %-17s %s" % ("Argument", "Env-variable", "Description"),
    ]
    for name, argname, env, text in OPTIONS:
        left = "-" + name + (" " + argname if argname else "")
        lines.append("%-20s %-17s %s" % (left, env or "", text))
    lines += [
        "",
        "Defaults:",
        "QEMU_LD_PREFIX  = %s" % ld_prefix,
        "QEMU_STACK_SIZE = %d byte" % stack_size,
        "",
        "You can use -E and -U options or the QEMU_SET_ENV and",
        "QEMU_UNSET_ENV environment variables to set and unset",
        "environment variables for the target process.",
        "It is possible to provide several variables by separating them",
        "by commas in getsubopt(3) style. Additionally it is possible to",
        "provide the -E and -U options multiple times.",
        "The following lines are equivalent:",
        "    -E var1=val2 -E var2=val2 -U LD_PRELOAD -U LD_DEBUG",
        "    -E var1=val2,var2=val2 -U LD_PRELOAD,LD_DEBUG",
        "    QEMU_SET_ENV=var1=val2,var2=val2 QEMU_UNSET_ENV=LD_PRELOAD,LD_DEBUG",
        "Note that if you provide several changes to a single variable",
        "the last change will stay in effect.",
        "",
        "See <https://qemu.org/contribute/report-a-bug> for how to report bugs.",
        "More information on the QEMU project at <https://qemu.org>.",
    ]
    return "\n".join(lines) + "\n"
