"""JSON text exactly as qemu-img prints QAPI objects.

QEMU 7.2 builds a QDict and pretty-prints it; a QDict is a hash table of 512
buckets (hash ``tdb_hash``), iterated bucket by bucket, newest entry first
within a bucket.  Scripts do not care about key order but byte-for-byte
comparison with qemu-img does, so the same order is reproduced here.
"""
from __future__ import annotations

import json
from typing import Any, List

_BUCKETS = 512


def _tdb_hash(name: str) -> int:
    data = name.encode()
    value = (0x238F13AF * len(data)) & 0xFFFFFFFF
    for i, c in enumerate(data):
        value = (value + (c << (i * 5 % 24))) & 0xFFFFFFFF
    return (1103515243 * value + 12345) & 0xFFFFFFFF


def qdict_order(keys: List[str]) -> List[str]:
    """Keys in the order QEMU's QDict iterates them (``keys`` in insertion order)."""
    indexed = [(_tdb_hash(k) % _BUCKETS, -i, k) for i, k in enumerate(keys)]
    return [k for _, _, k in sorted(indexed)]


def to_json_pretty(obj: Any, indent: int = 0) -> str:
    """``qobject_to_json_pretty``: 4-space indent, QDict key order."""
    pad = "    " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{\n" + "    " * indent + "}"
        items = ['%s%s: %s' % (pad, json.dumps(k), to_json_pretty(obj[k], indent + 1))
                 for k in qdict_order(list(obj))]
        return "{\n" + ",\n".join(items) + "\n" + "    " * indent + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[\n" + "    " * indent + "]"
        items = [pad + to_json_pretty(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + "    " * indent + "]"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if obj is None:
        return "null"
    if isinstance(obj, float):
        return repr(obj)
    return json.dumps(obj)
