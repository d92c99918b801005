"""The QMP server on a chardev: greeting, capabilities negotiation, dispatch, events."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from pyqemu.chardev.char import CHR_EVENT_CLOSED, CHR_EVENT_OPENED, Chardev
from pyqemu.monitor import events, qmp_commands
from pyqemu.monitor.json_stream import JsonError, JsonStreamer, to_json
from pyqemu.monitor.qmp_commands import QMPError
from pyqemu.util.error import QemuError


QUEUE_MAX = 8


def version_info() -> Dict[str, Any]:
    from pyqemu import QEMU_VERSION, __version__
    major, minor, micro = (int(x) for x in QEMU_VERSION.split("."))
    return {"qemu": {"micro": micro, "minor": minor, "major": major},
            "package": "pyqemu %s" % __version__}


class QmpMonitor:
    def __init__(self, chr: Chardev, pretty: bool = False) -> None:
        self.chr = chr
        self.pretty = pretty
        self.negotiated = False
        self.oob_enabled = False
        self.streamer = JsonStreamer()
        # Requests wait here and run one per main-loop turn, as QEMU's dispatcher
        # bottom half does, so that the loop (run-state requests, events) runs
        # between two commands of one batch.
        self.queue: List[Any] = []
        self._scheduled = False
        # QEMU offers out-of-band execution on every chardev but the mux, which
        # cannot run in a separate I/O context.
        self.capabilities: List[str] = [] if chr.typename == "mux" else ["oob"]
        events.add_listener(self._on_event)
        chr.set_handlers(self._can_read, self._read, self._event, owner=self)

    # -- output --------------------------------------------------------------
    def send(self, obj: Dict[str, Any]) -> None:
        text = to_json(obj, self.pretty) + "\n"
        self.chr.write(text.replace("\n", "\r\n").encode("utf-8"))

    def _on_event(self, ev: Dict[str, Any]) -> None:
        if self.negotiated and self.chr is not None:
            self.send(ev)

    def _event(self, event: int) -> None:
        if event == CHR_EVENT_OPENED:
            self.negotiated = False
            self.oob_enabled = False
            self.streamer = JsonStreamer()
            self.send({"QMP": {"version": version_info(), "capabilities": list(self.capabilities)}})
        elif event == CHR_EVENT_CLOSED:
            self.negotiated = False
            self.streamer = JsonStreamer()
            self.queue = []

    # -- input ---------------------------------------------------------------
    def _can_read(self) -> int:
        # As QEMU: without OOB the monitor stops reading while a request waits
        # (so end-of-file is seen only after the requests before it ran); with
        # OOB up to 8 requests may queue.
        limit = QUEUE_MAX if self.oob_enabled else 1
        return 0 if len(self.queue) >= limit else 4096

    def _read(self, data: bytes) -> None:
        self.queue.extend(self.streamer.feed(data))
        if self.queue and not self._scheduled:
            self._scheduled = True
            self.chr.loop.bh_schedule(self._dispatch_one)

    def _dispatch_one(self) -> None:
        if not self.queue or self.chr is None:
            self._scheduled = False
            return
        item = self.queue.pop(0)
        resp = self.handle(item)
        if self.chr is None:
            self._scheduled = False
            return
        # QEMU answers one main-loop turn later (its dispatcher hops back to the
        # monitor context first), so a run-state request the command made
        # (system_reset, quit ...) has had its event sent before the reply.
        self.chr.loop.bh_schedule(lambda: self._respond(resp))

    def _respond(self, resp: Optional[Dict[str, Any]]) -> None:
        self._scheduled = False
        if resp is not None and self.chr is not None:
            self.send(resp)
        if self.chr is None:
            return
        if self.queue:
            self._scheduled = True
            self.chr.loop.bh_schedule(self._dispatch_one)
        else:
            self.chr.accept_input()

    def handle(self, req: Any) -> Optional[Dict[str, Any]]:
        """One request (decoded JSON or JsonError) -> the response object."""
        has_id = isinstance(req, dict) and "id" in req
        rid = req.get("id") if has_id else None
        try:
            if isinstance(req, JsonError):
                raise QemuError(str(req))
            ret = self._dispatch(req)
        except QMPError as e:
            return self._error(e.error_class, e.msg, has_id, rid)
        except QemuError as e:
            return self._error("GenericError", e.msg, has_id, rid)
        resp: Dict[str, Any] = {"return": ret}
        if has_id:
            resp["id"] = rid
        return resp

    @staticmethod
    def _error(cls: str, desc: str, has_id: bool, rid: Any) -> Dict[str, Any]:
        resp: Dict[str, Any] = {}
        if has_id:
            resp["id"] = rid
        resp["error"] = {"class": cls, "desc": desc}
        return resp

    def _dispatch(self, req: Any) -> Any:
        if not isinstance(req, dict):
            raise QemuError("QMP input must be a JSON object")
        for key, val in req.items():
            if key == "exec-oob" and not self.oob_enabled:
                raise QemuError("QMP input member 'exec-oob' is unexpected")
            if key in ("execute", "exec-oob"):
                if not isinstance(val, str):
                    raise QemuError("QMP input member '%s' must be a string" % key)
            elif key == "arguments":
                if not isinstance(val, dict):
                    raise QemuError("QMP input member 'arguments' must be an object")
            elif key not in ("id", "control"):
                raise QemuError("QMP input member '%s' is unexpected" % key)
        if "execute" in req and "exec-oob" in req:
            raise QemuError("QMP input member 'execute' clashes with 'exec-oob'")
        name = req.get("execute", req.get("exec-oob"))
        if name is None:
            raise QemuError("QMP input lacks member 'execute'")
        args = req.get("arguments", {})
        if not self.negotiated:
            if name != "qmp_capabilities":
                raise QMPError("CommandNotFound",
                               "Expecting capabilities negotiation with 'qmp_capabilities'")
            return self._capabilities(args, "exec-oob" in req)
        if name == "qmp_capabilities":
            raise QMPError("CommandNotFound",
                           "Capabilities negotiation is already complete, command ignored")
        cmd = qmp_commands.lookup(name)
        if cmd is None:
            raise QMPError("CommandNotFound", "The command %s has not been found" % name)
        if "exec-oob" in req and not (cmd.allow_oob and self.oob_enabled):
            raise QemuError("The command %s does not support OOB" % name)
        return qmp_commands.execute(name, args)

    def _capabilities(self, args: Dict[str, Any], oob: bool) -> Dict[str, Any]:
        if oob:
            raise QemuError("The command qmp_capabilities does not support OOB")
        for key in args:
            if key != "enable":
                raise QemuError("Parameter '%s' is unexpected" % key)
        enable = args.get("enable", [])
        if not isinstance(enable, list):
            raise QemuError("Invalid parameter type for 'enable', expected: array")
        for cap in enable:
            if cap != "oob":
                # QEMU names the list element 'null' here; keep its wording.
                raise QemuError("Parameter 'null' does not accept value '%s'" % cap)
            if "oob" not in self.capabilities:
                raise QemuError("Capability 'oob' not available")
        self.oob_enabled = "oob" in enable
        self.negotiated = True
        return {}

    def close(self) -> None:
        events.remove_listener(self._on_event)
        if self.chr is not None:
            self.chr.set_handlers(None, None, None, owner=self)
            self.chr = None
