"""The name qemu-img shows for an opened image (``image:``, ``"filename"``).

QEMU recomputes a node's name from how it was opened: a node whose
options say nothing a plain file name cannot say is shown by that file
name (``t.qcow2``, ``null-co://``); one opened with options that change
what the guest sees (raw's ``offset``/``size``, null-co's ``size``) is
shown as ``json:{...}`` holding those options, ``driver`` and the nested
``file`` child, in QEMU's QDict key order.  Options that only tune the
host side (caches, locking, node names) never appear.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Tuple

from pyqemu.block import BlockNode
from pyqemu.cli.img_json import qdict_order

# per driver, the options that make a name insufficient (QEMU's "strong" runtime options)
STRONG_OPTIONS = {
    "raw": ("offset", "size"),
    "null-co": ("size", "read-zeroes"),
    "null-aio": ("size", "read-zeroes"),
}
# protocol drivers whose name is a fixed URI when no strong option is given
_FIXED_NAMES = {"null-co": "null-co://", "null-aio": "null-aio://"}


def _gather(node: BlockNode) -> Tuple[Dict[str, Any], bool, str]:
    """(options QEMU would list, whether they need a json: name, the plain name)."""
    opts: Dict[str, Any] = {}
    need_json = False
    for key in STRONG_OPTIONS.get(node.driver, ()):
        if node.options.get(key) is not None:
            opts[key] = node.options[key]
            need_json = True
    child = node.file
    if child is not None and child is not node:
        child_opts, child_json, plain = _gather(child)
        opts["file"] = child_opts
        need_json = need_json or child_json
    elif node.driver in ("file", "host_device"):
        opts["filename"] = node.filename
        plain = node.filename
    else:
        plain = _FIXED_NAMES.get(node.driver, node.filename)
    opts["driver"] = node.driver
    return opts, need_json, plain


def compact_json(obj: Any) -> str:
    """``qobject_to_json``: one line, ``", "``/``": "`` separators, QDict key order."""
    if isinstance(obj, dict):
        return "{" + ", ".join("%s: %s" % (json.dumps(k), compact_json(obj[k]))
                               for k in qdict_order(list(obj))) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(compact_json(v) for v in obj) + "]"
    return json.dumps(obj)


def refreshed_filename(node: BlockNode) -> str:
    """The name QEMU 7.2 gives ``node`` after opening it."""
    opts, need_json, plain = _gather(node)
    return "json:" + compact_json(opts) if need_json else plain


def reject_node_references(tree: Any) -> None:
    """In ``json:`` and ``--image-opts`` trees a string ``file`` names another
    node, which qemu-img never has: refuse it with QEMU's message."""
    from pyqemu.util.error import QemuError
    if not isinstance(tree, dict):
        return
    val = tree.get("file")
    if isinstance(val, str):
        raise QemuError("Cannot find device='%s' nor node-name='%s'" % (val, val))
    reject_node_references(val)
