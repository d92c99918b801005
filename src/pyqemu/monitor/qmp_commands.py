"""The QMP command registry and argument checking (QEMU's qmp-dispatch).

Each side of the emulator registers its commands here::

    register("ringbuf-read", qmp_ringbuf_read,
             args={"device": "str", "size": "int", "*format": "str"})

``func(**arguments)`` returns the JSON-able result (None means ``{}``) or
raises :class:`QMPError` / :class:`~pyqemu.util.error.QemuError` (class
``GenericError``).  ``args`` describes the top-level arguments in QAPI's
spirit - a leading ``*`` marks an optional member, types are ``str``, ``int``,
``number``, ``bool``, ``dict``, ``list``, ``any``, or ``enum:a|b|c`` - so that wrong calls get
QEMU's messages; without it the function's signature decides which arguments
exist and are required.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional

from pyqemu.util.error import QemuError


class QMPError(QemuError):
    """An error with a QMP error class other than GenericError."""

    def __init__(self, cls: str, desc: str) -> None:
        super().__init__(desc)
        self.error_class = cls


_TYPE_NAMES = {"str": "string", "int": "integer", "number": "number", "bool": "boolean",
               "dict": "object", "list": "array"}


def _type_ok(kind: str, value: Any) -> bool:
    if kind.startswith("enum:"):
        return isinstance(value, str)
    if kind == "any":
        return True
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "dict":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    return True


class Command:
    __slots__ = ("name", "func", "args", "allow_preconfig", "allow_oob")

    def __init__(self, name: str, func: Callable[..., Any], args: Optional[Dict[str, str]],
                 allow_preconfig: bool, allow_oob: bool) -> None:
        self.name = name
        self.func = func
        self.args = args
        self.allow_preconfig = allow_preconfig
        self.allow_oob = allow_oob

    def check_args(self, arguments: Dict[str, Any]) -> Dict[str, Any]:
        """Validate ``arguments`` and map QMP names (with '-') to Python names."""
        if self.args is not None:
            spec = {k.lstrip("*"): (v, not k.startswith("*")) for k, v in self.args.items()}
        else:
            spec = {}
            for p in inspect.signature(self.func).parameters.values():
                if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    continue
                spec[p.name.replace("_", "-")] = ("any", p.default is p.empty)
        for key in arguments:
            if key not in spec:
                raise QemuError("Parameter '%s' is unexpected" % key)
        for key, (kind, required) in spec.items():
            if key not in arguments:
                if required:
                    raise QemuError("Parameter '%s' is missing" % key)
                continue
            value = arguments[key]
            if not _type_ok(kind, value):
                raise QemuError("Invalid parameter type for '%s', expected: %s"
                                % (key, "string" if kind.startswith("enum:") else _TYPE_NAMES.get(kind, kind)))
            if kind.startswith("enum:") and value not in kind[5:].split("|"):
                raise QemuError("Parameter '%s' does not accept value '%s'" % (key, value))
        return {k.replace("-", "_"): v for k, v in arguments.items()}


_commands: Dict[str, Command] = {}


def register(name: str, func: Callable[..., Any], *, allow_preconfig: bool = False,
             args: Optional[Dict[str, str]] = None, allow_oob: bool = False) -> None:
    """Add (or replace) the QMP command ``name``."""
    _commands[name] = Command(name, func, args, allow_preconfig, allow_oob)


def unregister(name: str) -> None:
    _commands.pop(name, None)


def lookup(name: str) -> Optional[Command]:
    return _commands.get(name)


def command_names() -> List[str]:
    return list(_commands)


def execute(name: str, arguments: Optional[Dict[str, Any]] = None) -> Any:
    """Run a command as QMP would (for HMP and in-process users); returns its result.

    Raises QMPError(CommandNotFound) for an unknown name.
    """
    cmd = _commands.get(name)
    if cmd is None:
        raise QMPError("CommandNotFound", "The command %s has not been found" % name)
    kwargs = cmd.check_args(arguments or {})
    ret = cmd.func(**kwargs)
    return {} if ret is None else ret
