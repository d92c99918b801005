"""One option parser for every program: QEMU's QemuOpts and keyval semantics.

Two syntaxes share one tokenizer:

* :class:`OptsList` / :class:`Opts` follow QemuOpts, used by ``-drive``,
  ``-chardev``, ``-netdev``, ``-machine``, ``qemu-img -o`` and most options:
  ``key=value,key2=value2``; ``,,`` is a literal comma; the first element may
  omit its key when the list has an *implied* key (``-netdev user`` means
  ``type=user``); a bare ``flag`` means ``flag=on`` and ``noflag`` means
  ``flag=off`` (with QEMU's deprecation warning); ``help`` or ``?`` anywhere
  asks for help.  Values stay strings until a typed getter or a description
  checks them.
* :func:`keyval_parse` follows QEMU's keyval syntax (``--blockdev``,
  ``--object`` with dotted keys): dotted keys build nested dictionaries,
  all-digit key fragments build lists.

``json:{...}`` pseudo-filenames decode to the same nested trees
(:func:`parse_json_filename`), and :func:`crumple` / :func:`flatten` convert
between the flat dotted form and the nested form.

Also here: the ini format of ``-readconfig``/``-writeconfig``.

This module keeps to Python 3.9 syntax: the translator imports util/.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

from pyqemu.util.error import OptionError, warn_report

OPT_STRING = "str"
OPT_BOOL = "bool"
OPT_NUMBER = "num"
OPT_SIZE = "size"

SIZE_HINT = ("Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
             "and exabytes, respectively.\n")

_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*\Z")
_ID_HINT = "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n"


# ---------------------------------------------------------------------------
# Scalar values
# ---------------------------------------------------------------------------

_TRUE = ("on", "yes", "true", "y")
_FALSE = ("off", "no", "false", "n")


def parse_bool(name: str, value: str) -> bool:
    """``on/yes/true/y`` or ``off/no/false/n``."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise OptionError("Parameter '%s' expects 'on' or 'off'" % name)


def _strtou64(text: str, base: int) -> Tuple[int, str]:
    """Parse an unsigned integer prefix like strtoull; return (value, rest)."""
    s = text.lstrip()
    neg = False
    if s[:1] in "+-" and s:
        neg = s[0] == "-"
        s = s[1:]
    if base == 0:
        if s[:2].lower() == "0x" and len(s) > 2 and s[2] in "0123456789abcdefABCDEF":
            base, s = 16, s[2:]
        elif s[:1] == "0" and len(s) > 1:
            base = 8
        else:
            base = 10
    elif base == 16 and s[:2].lower() == "0x":
        s = s[2:]
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"[:base]
    i = 0
    while i < len(s) and s[i].lower() in digits:
        i += 1
    if i == 0:
        raise ValueError("no digits")
    val = int(s[:i], base)
    if val >= 1 << 64:
        raise OverflowError("out of range")
    if neg:
        val = (-val) & ((1 << 64) - 1)
    return val, s[i:]


def parse_uint(text: str, base: int = 0) -> int:
    """A whole string as an unsigned 64-bit number (decimal, ``0x`` hex, ``0`` octal)."""
    val, rest = _strtou64(text, base)
    if rest:
        raise ValueError("trailing characters")
    return val


def parse_number(name: str, value: str) -> int:
    """A number option: decimal, hex with ``0x`` or octal with a leading ``0``."""
    try:
        return parse_uint(value, 0)
    except (ValueError, OverflowError):
        raise OptionError("Parameter '%s' expects a number" % name) from None


_SUFFIX_SHIFT = {"b": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}


def strtosz(text: str, default_suffix: str = "B", unit: int = 1024) -> int:
    """QEMU's ``qemu_strtosz``: a size with an optional suffix.

    Decimal numbers may have a fraction when a suffix other than bytes scales
    them (``1.5G``); hexadecimal (``0x10``) takes neither fraction nor suffix.
    Suffixes ``B K M G T P E`` are case-insensitive powers of ``unit``.  The
    result must be below 2^64.  Raises ValueError on bad input.
    """
    if not text or text != text.lstrip() and not text.strip():
        raise ValueError("empty")
    s = text.strip() if text.strip() != text else text
    m = re.match(r"\s*(\d+)", s)
    if not m:
        raise ValueError("no number")
    intpart, rest = m.group(1), s[m.end():]
    fraction: Any = 0  # a Fraction only for decimals: importing fractions slows every program's start
    if int(intpart) == 0 and rest[:1] in ("x", "X"):
        val, rest = _strtou64(s, 16)
        if rest[:1] == "." or (rest and rest[0].lower() in _SUFFIX_SHIFT):
            raise ValueError("hex with fraction or suffix")
        if rest:
            raise ValueError("trailing characters")
        return val
    val = int(intpart)
    if rest[:1] == ".":
        fm = re.match(r"\.(\d*)", rest)
        if fm is None:
            raise ValueError("bad fraction")
        if rest[fm.end():fm.end() + 1] in ("e", "E") and re.match(r"[eE][+-]?\d", rest[fm.end():]):
            raise ValueError("exponent")
        digits = fm.group(1)
        if digits:
            from fractions import Fraction
            fraction = Fraction(int(digits), 10 ** len(digits))
        rest = rest[fm.end():]
    suffix = rest[:1].lower()
    if suffix and suffix in _SUFFIX_SHIFT:
        rest = rest[1:]
        mul = unit ** (_SUFFIX_SHIFT[suffix] // 10)
    else:
        mul = unit ** (_SUFFIX_SHIFT[default_suffix.lower()] // 10)
    if rest:
        raise ValueError("trailing characters")
    if mul == 1 and fraction:
        raise ValueError("fraction of a byte")
    total = int((val + fraction) * mul)
    if total >= 1 << 64:
        raise OverflowError("too large")
    return total


def parse_size(name: str, value: str, default_suffix: str = "B") -> int:
    """A size option, with QEMU's message and hint when it is not one."""
    try:
        return strtosz(value, default_suffix)
    except OverflowError:
        # QEMU's parse_option_size words a well-formed but too large size apart.
        raise OptionError("Value '%s' is out of range for parameter '%s'" % (value, name)) from None
    except ValueError:
        raise OptionError("Parameter '%s' expects a non-negative number below 2^64" % name,
                          hint=SIZE_HINT) from None


def check_range(name: str, value: int, lo: int, hi: int) -> int:
    """Range check with QEMU's wording for property values."""
    if value < lo or value > hi:
        raise OptionError("Parameter '%s' expects a value between %d and %d" % (name, lo, hi))
    return value


def check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise OptionError("Parameter 'id' expects an identifier", hint=_ID_HINT)
    return value


# ---------------------------------------------------------------------------
# Tokenizer shared by QemuOpts and keyval
# ---------------------------------------------------------------------------

def get_opt_value(text: str, pos: int) -> Tuple[str, int]:
    """Read a value from ``pos`` up to a single comma; ``,,`` is a comma.

    Returns (value, position after the terminating comma or end).
    """
    out = []
    n = len(text)
    while pos < n:
        c = text[pos]
        if c == ",":
            if pos + 1 < n and text[pos + 1] == ",":
                out.append(",")
                pos += 2
                continue
            return "".join(out), pos + 1
        out.append(c)
        pos += 1
    return "".join(out), pos


def escape_value(value: str) -> str:
    """The inverse of :func:`get_opt_value`: double every comma."""
    return value.replace(",", ",,")


def split_params(text: str) -> List[Tuple[str, Optional[str]]]:
    """Split ``k=v,flag,k2=v2`` into (key, value-or-None) pairs.

    A key runs to the first ``=`` or ``,``; a value to the next single comma.
    An element without ``=`` comes back with value None (its whole text, with
    ``,,`` unescaped, as the key).
    """
    out = []
    pos = 0
    n = len(text)
    while pos < n:
        j = pos
        while j < n and text[j] not in "=,":
            j += 1
        if j < n and text[j] == "=":
            key = text[pos:j]
            value, pos = get_opt_value(text, j + 1)
            out.append((key, value))
        else:
            whole, pos = get_opt_value(text, pos)
            out.append((whole, None))
    return out


def is_help(value: Optional[str]) -> bool:
    return value in ("help", "?")


# ---------------------------------------------------------------------------
# QemuOpts
# ---------------------------------------------------------------------------

class OptDesc:
    """The description of one accepted key of an :class:`OptsList`."""

    __slots__ = ("name", "type", "help", "default")

    def __init__(self, name: str, type: str = OPT_STRING, help: str = "",
                 default: Optional[str] = None) -> None:
        self.name = name
        self.type = type
        self.help = help
        self.default = default

    def check(self, value: str) -> Any:
        """Convert ``value`` to this option's type, raising OptionError."""
        if self.type == OPT_BOOL:
            return parse_bool(self.name, value)
        if self.type == OPT_NUMBER:
            return parse_number(self.name, value)
        if self.type == OPT_SIZE:
            return parse_size(self.name, value)
        return value


class Opts:
    """One parsed instance of an option group (QEMU's QemuOpts).

    Keeps the entries in order as strings (a key may repeat; the last one
    wins for the getters) and the optional ``id``.
    """

    def __init__(self, optslist: "OptsList", id: Optional[str] = None) -> None:
        self.list = optslist
        self.id = id
        self.items: List[Tuple[str, str]] = []
        self.help_wanted = False

    # -- access -----------------------------------------------------------
    def __contains__(self, key: str) -> bool:
        return any(k == key for k, _ in self.items)

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        for k, v in reversed(self.items):
            if k == key:
                return v
        desc = self.list.desc.get(key)
        if desc is not None and desc.default is not None:
            return desc.default
        return default

    def get_all(self, key: str) -> List[str]:
        return [v for k, v in self.items if k == key]

    def get_bool(self, key: str, default: bool = False) -> bool:
        v = self.get(key)
        return default if v is None else parse_bool(key, v)

    def get_number(self, key: str, default: int = 0) -> int:
        v = self.get(key)
        return default if v is None else parse_number(key, v)

    def get_size(self, key: str, default: int = 0) -> int:
        v = self.get(key)
        return default if v is None else parse_size(key, v)

    def set(self, key: str, value: str) -> None:
        self.list.check_key(key, value)
        self.items.append((key, value))

    def delete(self, key: str) -> None:
        self.items = [(k, v) for k, v in self.items if k != key]

    def pop(self, key: str, default: Optional[str] = None) -> Optional[str]:
        v = self.get(key, default)
        self.delete(key)
        return v

    def keys(self) -> List[str]:
        seen: List[str] = []
        for k, _ in self.items:
            if k not in seen:
                seen.append(k)
        return seen

    def to_dict(self, with_id: bool = False) -> Dict[str, str]:
        """The entries as a flat dict, the last value of a repeated key winning."""
        d: Dict[str, str] = {}
        if with_id and self.id is not None:
            d["id"] = self.id
        for k, v in self.items:
            d[k] = v
        return d

    def to_tree(self, with_id: bool = False) -> Dict[str, Any]:
        """Dotted keys crumpled to nested dicts and lists (``file.driver``)."""
        return crumple(self.to_dict(with_id))

    def to_string(self) -> str:
        parts = []
        if self.id is not None:
            parts.append("id=" + escape_value(self.id))
        for k, v in self.items:
            parts.append("%s=%s" % (k, escape_value(v)))
        return ",".join(parts)

    def __repr__(self) -> str:
        return "Opts(%s, %r)" % (self.list.name, self.to_string())


class OptsList:
    """An option group (QEMU's QemuOptsList): its name, implied key and keys.

    ``desc`` lists the accepted keys; an empty ``desc`` accepts any key (the
    owner validates later, as ``-drive`` and ``-device`` do).  ``merge_lists``
    makes every use of the option add to one instance (``-machine``, ``-smp``).
    """

    def __init__(self, name: str, implied_key: Optional[str] = None,
                 desc: Iterable[OptDesc] = (), merge_lists: bool = False,
                 option: Optional[str] = None) -> None:
        self.name = name
        self.option = option or name
        self.implied_key = implied_key
        self.desc: Dict[str, OptDesc] = {d.name: d for d in desc}
        self.merge_lists = merge_lists
        self.instances: List[Opts] = []

    def check_key(self, key: str, value: str) -> None:
        if not self.desc:
            return
        d = self.desc.get(key)
        if d is None:
            raise OptionError("Invalid parameter '%s'" % key)
        d.check(value)

    def find(self, id: Optional[str]) -> Optional[Opts]:
        for o in self.instances:
            if o.id == id:
                return o
        return None

    def create(self, id: Optional[str] = None, fail_if_exists: bool = True) -> Opts:
        if id is not None:
            check_id(id)
            old = self.find(id)
            if old is not None:
                if fail_if_exists and not self.merge_lists:
                    raise OptionError("Duplicate ID '%s' for %s" % (id, self.name))
                return old
        elif self.merge_lists and self.instances:
            return self.instances[0]
        o = Opts(self, id)
        self.instances.append(o)
        return o

    def parse(self, text: str, permit_implied: bool = True, warn_on_flag: bool = True,
              loc: Optional[str] = None, store: bool = True) -> Opts:
        """Parse ``text`` into an :class:`Opts` (QEMU's qemu_opts_parse_noisily).

        With ``store`` the result joins this list's instances (duplicate ids
        are then an error); otherwise it stands alone.
        """
        pairs = split_params(text)
        id = None
        entries: List[Tuple[str, str]] = []
        help_wanted = False
        for i, (key, value) in enumerate(pairs):
            if value is None:
                if is_help(key):
                    help_wanted = True
                if i == 0 and permit_implied and self.implied_key:
                    entries.append((self.implied_key, key))
                    continue
                if is_help(key):
                    continue
                # A bare key is a boolean flag: 'flag' is flag=on, 'noflag' flag=off.
                if key.startswith("no"):
                    name, val = key[2:], "off"
                else:
                    name, val = key, "on"
                if warn_on_flag and name:
                    warn_report("short-form boolean option '%s' deprecated" % key, loc=loc,
                                hint="Please use %s=%s instead" % (name, val))
                entries.append((name, val))
                continue
            if key == "id":
                id = value
                continue
            entries.append((key, value))
        if help_wanted:
            o = Opts(self, id)
            o.items = entries
            o.help_wanted = True
            return o
        for key, value in entries:
            if not key:
                raise OptionError("Invalid parameter ''")
            self.check_key(key, value)
        if store:
            o = self.create(id)
        else:
            if id is not None:
                check_id(id)
            o = Opts(self, id)
        o.items.extend(entries)
        return o

    def help_text(self) -> str:
        lines = []
        for d in sorted(self.desc.values(), key=lambda d: d.name):
            line = "  %s=<%s>" % (d.name, d.type)
            if d.help:
                line = "%-24s - %s" % (line, d.help)
            lines.append(line)
        return "\n".join(lines) + ("\n" if lines else "")


# Registry of the option groups that -readconfig/-writeconfig and -set see.
_groups: Dict[str, OptsList] = {}
# Section names QEMU's config files accept for groups named otherwise on the
# command line (the names of the QemuOptsList behind the option).
CONFIG_ALIASES = {"acpi": "acpitable", "boot-opts": "boot", "smp-opts": "smp"}


def register_opts(optslist: OptsList) -> OptsList:
    _groups[optslist.option] = optslist
    return optslist


def find_opts(name: str) -> OptsList:
    g = _groups.get(CONFIG_ALIASES.get(name, name))
    if g is None:
        raise OptionError("There is no option group '%s'" % name)
    return g


def registered_opts() -> List[OptsList]:
    return list(_groups.values())


def set_option(spec: str) -> None:
    """``-set group.id.arg=value``."""
    m = re.match(r"([^.=]+)\.([^.=]+)\.([^=]+)=(.*)\Z", spec, re.S)
    if not m:
        raise OptionError("Invalid -set parameter: %s" % spec)
    group, id, arg, value = m.groups()
    g = find_opts(group)
    o = g.find(id)
    if o is None:
        raise OptionError("there is no %s \"%s\" defined" % (group, id))
    o.set(arg, value)


# ---------------------------------------------------------------------------
# Nested trees: keyval, crumple, flatten, json:
# ---------------------------------------------------------------------------

_KEY_FRAGMENT = re.compile(r"[A-Za-z0-9_\-]+\Z")


def crumple(flat: Dict[str, Any]) -> Dict[str, Any]:
    """Turn dotted keys into nested dicts; dicts whose keys are 0..n-1 become lists."""
    root: Dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = root
        for j, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise OptionError("Parameters '%s.*' used inconsistently" % ".".join(parts[:j + 1]))
            node = child
        last = parts[-1]
        if isinstance(node.get(last), dict):
            raise OptionError("Parameters '%s.*' used inconsistently" % key)
        node[last] = value
    return _listify(root, "")


def _listify(node: Any, prefix: str) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v, prefix + k + ".") for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        n = len(out)
        for i in range(n):
            if str(i) not in out:
                raise OptionError("Parameter '%s%d' missing" % (prefix, i))
        return [out[str(i)] for i in range(n)]
    return out


def flatten(tree: Any, prefix: str = "") -> Dict[str, Any]:
    """The inverse of :func:`crumple`: nested dicts/lists to dotted keys."""
    out: Dict[str, Any] = {}
    if isinstance(tree, dict):
        items = list(tree.items())
    elif isinstance(tree, list):
        items = [(str(i), v) for i, v in enumerate(tree)]
    else:
        return {prefix[:-1]: tree}
    for k, v in items:
        if isinstance(v, (dict, list)) and v:
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def keyval_parse(text: str, implied_key: Optional[str] = None) -> Tuple[Dict[str, Any], bool]:
    """QEMU's keyval syntax: returns (nested tree, help_wanted).

    Keys are dotted fragments of letters, digits, ``-`` and ``_``; every
    element needs ``=`` except an implied first one; ``help`` or ``?``
    (alone or as a value) asks for help.
    """
    flat: Dict[str, str] = {}
    help_wanted = False
    for i, (key, value) in enumerate(split_params(text)):
        if value is None:
            if is_help(key):
                help_wanted = True
                continue
            if i == 0 and implied_key:
                flat[implied_key] = key
                continue
            raise OptionError("Expected '=' after parameter '%s'" % key)
        if not key or not all(_KEY_FRAGMENT.match(p) for p in key.split(".")):
            raise OptionError("Invalid parameter '%s'" % key)
        flat[key] = value
    return crumple(flat), help_wanted


def parse_json_filename(filename: str) -> Dict[str, Any]:
    """Decode a ``json:{...}`` pseudo-filename to its (nested) options tree.

    Dotted keys inside the object are crumpled too, as QEMU does, so
    ``json:{"file.driver": "file"}`` and ``json:{"file": {"driver": "file"}}``
    are the same tree.
    """
    if not filename.startswith("json:"):
        raise OptionError("Unknown protocol in '%s'" % filename)
    try:
        obj = json.loads(filename[5:])
    except ValueError:
        raise OptionError("Could not parse the JSON options") from None
    if not isinstance(obj, dict):
        raise OptionError("Invalid JSON object given")
    return crumple(flatten(obj))


def tree_to_string(tree: Dict[str, Any]) -> str:
    """A nested tree back to ``a.b=v,c=w`` (values as QEMU prints them)."""
    parts = []
    for k, v in flatten(tree).items():
        if isinstance(v, bool):
            v = "on" if v else "off"
        parts.append("%s=%s" % (k, escape_value(str(v))))
    return ",".join(parts)


# ---------------------------------------------------------------------------
# -readconfig / -writeconfig
# ---------------------------------------------------------------------------

_SECTION_RE = re.compile(r'\[\s*([A-Za-z0-9_\-]+)\s*(?:"([^"]*)"\s*)?\]\s*\Z')
_ENTRY_RE = re.compile(r'\s*([A-Za-z0-9_.\-]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*\Z')


class ConfigSection:
    """One ``[group "id"]`` section of a config file, with its line numbers."""

    __slots__ = ("group", "id", "entries", "lines")

    def __init__(self, group: str, id: Optional[str]) -> None:
        self.group = group
        self.id = id
        self.entries: List[Tuple[str, str]] = []
        self.lines: List[int] = []


def parse_config(text: str, filename: str = "<config>") -> List[ConfigSection]:
    """Parse QEMU's config-file format into sections, in order.

    Group names are returned as written; see :data:`CONFIG_ALIASES`.
    """
    sections: List[ConfigSection] = []
    current: Optional[ConfigSection] = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _SECTION_RE.match(line)
        if m:
            current = ConfigSection(m.group(1), m.group(2))
            sections.append(current)
            continue
        m = _ENTRY_RE.match(line)
        if m:
            key, value = m.group(1), m.group(2).replace('\\"', '"').replace("\\\\", "\\")
        else:
            # QEMU reads any other line's first word as a key with an empty
            # value (its owner then rejects the key), so do the same.
            key, value = line.split()[0], ""
        if current is None:
            raise OptionError("no group defined", loc="%s:%d" % (filename, lineno), file_loc=True)
        current.entries.append((key, value))
        current.lines.append(lineno)
    return sections


def read_config(path: str) -> List[Opts]:
    """``-readconfig FILE``: add each section to its registered option group.

    As in QEMU, a problem with a section is reported at the line of its
    first entry (with no location when the section is empty).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise OptionError("Could not open '%s': %s" % (path, e.strerror), loc="-readconfig %s" % path)
    out = []
    for sec in parse_config(text, path):
        lineno = sec.lines[0] if sec.lines else None
        try:
            g = find_opts(sec.group)
            o = g.create(sec.id)
            for (k, v), lineno in zip(sec.entries, sec.lines):
                o.set(k, v)
        except OptionError as e:
            if e.loc is None and lineno is not None:
                e.loc, e.file_loc = "%s:%d" % (path, lineno), True
            raise
        out.append(o)
    return out


def format_config(opts: Iterable[Opts]) -> str:
    """QEMU's config-file text for the given option instances."""
    out = ["# qemu config file", ""]
    for o in opts:
        if o.id is not None:
            out.append('[%s "%s"]' % (o.list.name, o.id))
        else:
            out.append("[%s]" % o.list.name)
        for k, v in o.items:
            out.append('  %s = "%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')))
        out.append("")
    return "\n".join(out) + "\n"


def write_config(path: str, opts: Optional[Iterable[Opts]] = None) -> None:
    """``-writeconfig FILE`` (``-`` for stdout) of every registered group."""
    if opts is None:
        opts = [o for g in registered_opts() for o in g.instances]
    text = format_config(opts)
    if path == "-":
        import sys
        sys.stdout.write(text)
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise OptionError("Could not open '%s': %s" % (path, e.strerror))
