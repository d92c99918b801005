"""``--object`` of the tools (qemu-img, qemu-io, qemu-nbd): make a user-creatable object now.

QEMU's tools create each ``--object`` as soon as the option is parsed
(user_creatable_process_cmdline), from keyval text with the implied key
``qom-type`` or from JSON.  The system emulator has its own, deferred path.
"""
from __future__ import annotations

import json
from typing import Any, Dict

from pyqemu.util.error import QemuError
from pyqemu.util.opts import keyval_parse

# types the tools know, imported on first use so that their modules register them
_TOOL_TYPES = {"secret": "pyqemu.system.secret"}


def add_object_from_cmdline(text: str) -> Any:
    """Create the object ``text`` describes and return it.

    ``help`` prints the list of types (or a type's properties) and ends the
    program with status 0, as the tools do.
    """
    import importlib
    import sys

    from pyqemu.qom import object as qom
    style = "keyval"
    if text.startswith("{"):
        try:
            props: Dict[str, Any] = json.loads(text)
        except ValueError as e:
            raise QemuError("JSON parse error, %s" % e) from None
        if not isinstance(props, dict):
            raise QemuError("Invalid parameter type, expected: object")
        help_wanted = False
        style = "json"
    else:
        props, help_wanted = keyval_parse(text, implied_key="qom-type")
    qom_type = props.pop("qom-type", None)
    if help_wanted or qom_type == "help":
        if qom_type in (None, "help"):
            sys.stdout.write("List of user creatable objects:\n")
            for name in sorted(_TOOL_TYPES):
                sys.stdout.write("  %s\n" % name)
        else:
            from pyqemu.system.help import object_help
            importlib.import_module(_TOOL_TYPES.get(str(qom_type), "pyqemu.system.secret"))
            sys.stdout.write(object_help(str(qom_type)))
        sys.stdout.flush()
        raise SystemExit(0)
    if qom_type is None:
        raise QemuError("Parameter 'qom-type' is missing")
    if qom_type not in _TOOL_TYPES:
        raise QemuError("Parameter 'qom-type' does not accept value '%s'" % qom_type)
    importlib.import_module(_TOOL_TYPES[qom_type])
    oid = props.pop("id", None)
    if oid is None:
        raise QemuError("Parameter 'id' is missing")
    cls = qom.type_lookup(qom_type)
    known = set()
    for c in cls.__mro__:
        for pd in c.__dict__.get("PROPERTIES", ()):
            known.add(pd.name)
    for k in props:
        if k not in known:
            raise QemuError("Parameter '%s' is unexpected" % k)
    return qom.user_creatable_add(qom_type, str(oid), props, style=style)


def handles(text: str) -> bool:
    """True when ``text`` is an object of a type created here (the NBD tools keep
    their own parser for TLS credentials)."""
    if text.startswith("{"):
        try:
            props = json.loads(text)
        except ValueError:
            return True
        return not isinstance(props, dict) or props.get("qom-type") in _TOOL_TYPES
    try:
        props, help_wanted = keyval_parse(text, implied_key="qom-type")
    except QemuError:
        return False
    return help_wanted or props.get("qom-type") in _TOOL_TYPES
