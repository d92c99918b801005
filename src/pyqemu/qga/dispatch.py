"""The command registry and one request/response cycle.

Requests are checked in the order QEMU's dispatcher checks them, so that a
malformed request gets the same error text from pyqemu-ga as from qemu-ga.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from pyqemu.qga.errors import QgaError
from pyqemu.qga.qapi import Member, check_struct
from pyqemu.qga.qjson import qdict_order


@dataclass
class Command:
    name: str
    func: Callable[..., Any]
    schema: List[Member] = field(default_factory=list)
    success_response: bool = True
    # False for commands QEMU's agent registers but disables on Linux.
    supported: bool = True


class Registry:
    """Commands in registration order (the order ``-b help`` prints)."""

    def __init__(self) -> None:
        self.commands: Dict[str, Command] = {}
        self.blocked: Dict[str, Optional[str]] = {}

    def register(self, name: str, schema: Optional[List[Member]] = None,
                 success_response: bool = True, supported: bool = True) -> Callable:
        def deco(func: Callable[..., Any]) -> Callable[..., Any]:
            self.commands[name] = Command(name, func, list(schema or []), success_response, supported)
            return func
        return deco

    def names(self) -> List[str]:
        return list(self.commands)

    def enabled(self, name: str) -> bool:
        cmd = self.commands[name]
        return cmd.supported and name not in self.blocked

    def disable(self, name: str, reason: Optional[str] = None) -> None:
        if name in self.commands:
            self.blocked[name] = reason

    def enable(self, name: str) -> None:
        self.blocked.pop(name, None)


def dispatch(registry: Registry, ctx: Any, req: Any) -> Optional[Dict[str, Any]]:
    """Run one request; return the response object, or None for no reply."""
    if not isinstance(req, dict):
        return error_response(QgaError("QMP input must be a JSON object"))
    req_id = req.get("id", _NO_ID)
    try:
        ret = _run(registry, ctx, req)
    except QgaError as exc:
        return error_response(exc, req_id)
    except Exception as exc:  # noqa: BLE001 - a bug in one command must not kill the agent
        return error_response(QgaError("internal error in %s: %s: %s"
                                       % (req.get("execute"), type(exc).__name__, exc)), req_id)
    if ret is _NO_REPLY:
        return None
    rsp: Dict[str, Any] = {"return": ret}
    if req_id is not _NO_ID:
        rsp["id"] = req_id
    return rsp


_NO_ID = object()
_NO_REPLY = object()


def error_response(exc: QgaError, req_id: Any = _NO_ID) -> Dict[str, Any]:
    rsp: Dict[str, Any] = {"error": {"class": exc.cls, "desc": exc.msg}}
    if req_id is not _NO_ID:
        rsp["id"] = req_id
    return rsp


def _run(registry: Registry, ctx: Any, req: Dict[str, Any]) -> Any:
    for key in qdict_order(list(req)):
        val = req[key]
        if key == "execute":
            if not isinstance(val, str):
                raise QgaError("QMP input member 'execute' must be a string")
        elif key == "arguments":
            if not isinstance(val, dict):
                raise QgaError("QMP input member 'arguments' must be an object")
        elif key != "id":
            # 'exec-oob' included: the agent has no out-of-band execution.
            raise QgaError("QMP input member '%s' is unexpected" % key)
    name = req.get("execute")
    if name is None:
        raise QgaError("QMP input lacks member 'execute'")
    cmd = registry.commands.get(name)
    if cmd is None:
        raise QgaError("The command %s has not been found" % name, "CommandNotFound")
    if not registry.enabled(name):
        reason = registry.blocked.get(name)
        raise QgaError("Command %s has been disabled%s" % (name, ": " + reason if reason else ""),
                       "CommandNotFound")
    args = check_struct(cmd.schema, req.get("arguments", {}))
    ret = cmd.func(ctx, **{k.replace("-", "_"): v for k, v in args.items()})
    if not cmd.success_response:
        return _NO_REPLY
    return {} if ret is None else ret
