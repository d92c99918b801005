"""Checking command arguments the way QEMU's QAPI input visitor does.

A schema is a list of :class:`Member`; a member's type is one of the names
``int`` (signed 64-bit), ``uint`` (unsigned 64-bit; negative numbers wrap, as
in QEMU), ``bool``, ``str``, a :class:`Enum`, a :class:`ListOf` or a nested
list of members (a struct).  Errors carry QAPI's wording, with member paths
such as ``vcpus[0].logical-id``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from pyqemu.qga.errors import QgaError
from pyqemu.qga.qjson import qdict_order


@dataclass(frozen=True)
class Enum:
    values: Tuple[str, ...]


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class Alternate:
    """An integer or an enum value (QGA's ``GuestFileWhence``)."""
    name: str
    enum: Enum


@dataclass(frozen=True)
class Member:
    name: str
    type: Any
    optional: bool = False


Schema = Sequence[Member]
_TYPE_NAMES = {"int": "integer", "uint": "integer", "bool": "boolean", "str": "string",
               "number": "number"}


def _bad_type(path: str, expected: str) -> QgaError:
    return QgaError("Invalid parameter type for '%s', expected: %s" % (path, expected))


def _is_int64(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < (1 << 63)


def check_value(typ: Any, value: Any, path: str) -> Any:
    if typ == "int":
        if not _is_int64(value):
            raise _bad_type(path, "integer")
        return value
    if typ == "uint":
        if isinstance(value, bool) or not isinstance(value, int) or not -(1 << 63) <= value < (1 << 64):
            # QAPI's unsigned visitor words every failure this way
            raise QgaError("Parameter '%s' expects uint64" % path)
        return value & ((1 << 64) - 1)
    if typ == "bool":
        if not isinstance(value, bool):
            raise _bad_type(path, "boolean")
        return value
    if typ == "str":
        if not isinstance(value, str):
            raise _bad_type(path, "string")
        return value
    if isinstance(typ, Enum):
        if not isinstance(value, str):
            raise _bad_type(path, "string")
        if value not in typ.values:
            raise QgaError("Parameter '%s' does not accept value '%s'" % (path, value))
        return value
    if isinstance(typ, Alternate):
        if _is_int64(value):
            return value
        if isinstance(value, str):
            return check_value(typ.enum, value, path)
        raise _bad_type(path, typ.name)
    if isinstance(typ, ListOf):
        if not isinstance(value, list):
            raise _bad_type(path, "array")
        return [check_value(typ.item, v, "%s[%d]" % (path, i)) for i, v in enumerate(value)]
    # a struct
    if not isinstance(value, dict):
        raise _bad_type(path, "object")
    return check_struct(typ, value, path + ".")


def check_struct(schema: Schema, args: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Validate ``args`` against ``schema``; return the checked members."""
    out: Dict[str, Any] = {}
    for m in schema:
        path = prefix + m.name
        if m.name not in args:
            if not m.optional:
                raise QgaError("Parameter '%s' is missing" % path)
            continue
        out[m.name] = check_value(m.type, args[m.name], path)
    known = {m.name for m in schema}
    extra = [k for k in args if k not in known]
    if extra:
        # QAPI tracks unvisited members in a GHashTable filled in QDict order;
        # the first one that table yields is the one reported.
        first = ghash_order(qdict_order(list(args)), set(extra))[0]
        raise QgaError("Parameter '%s' is unexpected" % (prefix + first))
    return out


_PRIMES = (1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521,
           131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213)
_MIN_SHIFT = 3


def _str_hash(key: str) -> int:
    h = 5381
    for b in key.encode("utf-8"):
        if b >= 0x80:
            b -= 0x100          # GLib hashes bytes as signed char
        h = (h * 33 + b) & 0xFFFFFFFF
    return h if h >= 2 else 2


def _closest_shift(n: int) -> int:
    i = 0
    while n:
        n >>= 1
        i += 1
    return max(i, _MIN_SHIFT)


def ghash_order(keys: List[str], wanted: Optional[set] = None) -> List[str]:
    """Iteration order of a GLib string hash table after inserting ``keys``."""
    shift = _MIN_SHIFT
    table: List[Optional[str]] = [None] * (1 << shift)

    def place(tab: List[Optional[str]], sh: int, key: str) -> None:
        mask = (1 << sh) - 1
        idx = ((_str_hash(key) * 11) & 0xFFFFFFFF) % _PRIMES[sh]
        step = 0
        while tab[idx] is not None:
            step += 1
            idx = (idx + step) & mask
        tab[idx] = key

    count = 0
    for k in keys:
        place(table, shift, k)
        count += 1
        size = 1 << shift
        if size <= count + count // 16:
            shift = _closest_shift(count * 2)
            new: List[Optional[str]] = [None] * (1 << shift)
            for old in table:
                if old is not None:
                    place(new, shift, old)
            table = new
    return [k for k in table if k is not None and (wanted is None or k in wanted)]


def arg(name: str, typ: Union[str, Any] = "str", optional: bool = False) -> Member:
    return Member(name, typ, optional)


def opt(name: str, typ: Union[str, Any] = "str") -> Member:
    return Member(name, typ, True)


__all__ = ["Enum", "ListOf", "Alternate", "Member", "Schema", "check_struct", "check_value",
           "arg", "opt", "ghash_order"]
