"""The object model (QOM): types, properties and the composition tree.

A QOM type is a Python class that names itself with ``TYPE_NAME`` and is
registered with :func:`register_type`; its QOM parent is its Python base
class.  Interfaces are classes deriving from :class:`Interface`; a type lists
the ones it implements in ``INTERFACES`` and they are inherited.  Python
inheritance gives the class-side behaviour; the registry gives what the user
sees (``-object help``, ``qom-list-types``, ``-device help``).

Properties are per instance, created when an object is made, from the
``PROPERTIES`` declared by each class along the inheritance chain (base class
first, as QOM's class_init runs), plus ones added at run time (children,
links).  Values cross the boundary in two forms: strings from the command
line (``-object``, ``-global``, ``-device``) and JSON values from QMP.

Python 3.9 syntax: the memory API, imported by the translator, uses this.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_bool, parse_number, strtosz, SIZE_HINT


class PropertyNotFound(QemuError):
    """Raised with QEMU's 'Property ... not found' wording."""


# ---------------------------------------------------------------------------
# Property value types
# ---------------------------------------------------------------------------

_INT_RANGES = {
    "uint8": (0, 0xFF), "uint16": (0, 0xFFFF), "uint32": (0, 0xFFFFFFFF),
    "uint64": (0, (1 << 64) - 1), "size": (0, (1 << 64) - 1),
    "int8": (-0x80, 0x7F), "int16": (-0x8000, 0x7FFF), "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1), "int": (-(1 << 63), (1 << 63) - 1),
}
_JSON_KIND = {"bool": "boolean", "string": "string", "str": "string"}


def _parse_int_text(name: str, text: str, ptype: str, style: str) -> int:
    if ptype == "size":
        try:
            return strtosz(text)
        except (ValueError, OverflowError):
            if style == "keyval":
                raise QemuError("Parameter '%s' expects a size value" % name) from None
            raise QemuError("Parameter '%s' expects a non-negative number below 2^64" % name,
                            hint=SIZE_HINT) from None
    neg = text.startswith("-")
    try:
        val = parse_number(name, text[1:] if neg else text)
    except QemuError:
        if style == "keyval":
            raise QemuError("Parameter '%s' expects %s" % (
                name, "a uint64 value" if ptype.startswith("uint") else "an int64 value")) from None
        raise QemuError("Parameter '%s' expects integer" % name) from None
    return -val if neg else val


def convert_value(name: str, ptype: str, value: Any, enum: Optional[Sequence[str]] = None,
                  style: str = "json") -> Any:
    """Turn a command-line string or a JSON value into the property's type.

    ``style`` picks QEMU's wording for text: ``keyval`` for -object and
    object_add, ``qdev`` for -device/-global/qom-set; JSON values from QMP
    get the QObject input visitor's messages.
    """
    if ptype == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and style != "json":
            return parse_bool(name, value)
        raise QemuError("Invalid parameter type for '%s', expected: boolean" % name)
    if ptype in _INT_RANGES:
        lo, hi = _INT_RANGES[ptype]
        if isinstance(value, bool):
            raise QemuError("Invalid parameter type for '%s', expected: integer" % name)
        from_text = isinstance(value, str)
        if style == "json" and (from_text or (isinstance(value, int) and value < lo)):
            # The strict QObject visitor of object-add, qom-set and JSON -object.
            if lo == 0:
                raise QemuError("Parameter '%s' expects uint64" % name)
            raise QemuError("Invalid parameter type for '%s', expected: integer" % name)
        if from_text:
            value = _parse_int_text(name, value, ptype, style)
        if not isinstance(value, int):
            raise QemuError("Invalid parameter type for '%s', expected: integer" % name)
        if value < lo or value > hi:
            if from_text and style == "qdev":
                raise QemuError("Parameter '%s' expects %s_t" % (name, ptype))
            raise QemuError("Parameter '%s' expects %s" % (
                name, "uint64" if lo == 0 and hi == (1 << 64) - 1 else
                "a value between %d and %d" % (lo, hi)))
        return value
    if enum is not None:
        if not isinstance(value, str):
            raise QemuError("Invalid parameter type for '%s', expected: string" % name)
        if value not in enum:
            raise QemuError("Parameter '%s' does not accept value '%s'" % (name, value))
        return value
    if ptype in ("string", "str") or ptype.startswith("link<"):
        if not isinstance(value, str):
            raise QemuError("Invalid parameter type for '%s', expected: string" % name)
        return value
    return value


class PropDef:
    """A class-level property declaration, instantiated on each new object.

    ``attr`` names the instance attribute that stores the value when no
    getter/setter is given.  ``settable_after_realize`` mirrors qdev's rule
    that most device properties freeze at realize.
    """

    def __init__(self, name: str, ptype: str, default: Any = None, *, attr: Optional[str] = None,
                 desc: str = "", enum: Optional[Sequence[str]] = None,
                 getter: Optional[Callable[[Any], Any]] = None,
                 setter: Optional[Callable[[Any, Any], None]] = None,
                 readonly: bool = False, settable_after_realize: bool = False,
                 shown_as: Optional[str] = None) -> None:
        self.name = name
        # ``type`` drives conversion; ``qom_type`` is what qom-list and help show
        # (QEMU registers sizes of objects as plain "int" properties).
        self.type = ptype
        self.qom_type = shown_as or ptype
        self.default = default
        self.attr = attr or name.replace("-", "_")
        self.desc = desc
        self.enum = list(enum) if enum is not None else None
        self.getter = getter
        self.setter = setter
        self.readonly = readonly
        self.settable_after_realize = settable_after_realize


class ObjectProperty:
    """One property of one object."""

    __slots__ = ("name", "type", "description", "get", "set", "enum", "default", "defn")

    def __init__(self, name: str, ptype: str, get: Optional[Callable[[], Any]],
                 set: Optional[Callable[[Any], None]], description: str = "",
                 enum: Optional[Sequence[str]] = None, default: Any = None,
                 defn: Optional[PropDef] = None) -> None:
        self.name = name
        self.type = ptype
        self.get = get
        self.set = set
        self.description = description
        self.enum = enum
        self.default = default
        self.defn = defn


# ---------------------------------------------------------------------------
# Type registry
# ---------------------------------------------------------------------------

_types: Dict[str, type] = {}


def register_type(cls: type) -> type:
    """Class decorator: make ``cls`` a QOM type under its ``TYPE_NAME``."""
    name = cls.__dict__.get("TYPE_NAME")
    if not name:
        raise ValueError("%s has no TYPE_NAME" % cls.__name__)
    if name in _types and _types[name] is not cls:
        raise ValueError("type '%s' registered twice" % name)
    _types[name] = cls
    return cls


def type_lookup(name: str) -> Optional[type]:
    return _types.get(name)


def all_types() -> List[type]:
    return list(_types.values())


def type_name(cls: type) -> str:
    return cls.__dict__.get("TYPE_NAME") or type_name(cls.__mro__[1])


def type_parent(cls: type) -> Optional[str]:
    """The QOM parent's name (the nearest registered non-interface base)."""
    for base in cls.__mro__[1:]:
        if "TYPE_NAME" in base.__dict__ and not is_interface(base):
            return base.__dict__["TYPE_NAME"]
    return None


def is_interface(cls: type) -> bool:
    """Interfaces are marked in their own class body, so implementers are not."""
    return bool(cls.__dict__.get("IS_INTERFACE", False))


def is_abstract(cls: type) -> bool:
    return bool(cls.__dict__.get("ABSTRACT", False))


def type_implements(cls: type, name: str) -> bool:
    """True when ``cls`` is the type ``name``, derives from it or implements it."""
    for base in cls.__mro__:
        if base.__dict__.get("TYPE_NAME") == name:
            return True
    return False


def types_of(implements: Optional[str] = None, abstract: bool = False) -> List[type]:
    """Registered (non-interface) types, optionally filtered as qom-list-types does."""
    out = []
    for cls in _types.values():
        if is_interface(cls):
            continue
        if implements is not None and not type_implements(cls, implements):
            continue
        if is_abstract(cls) and not abstract:
            continue
        out.append(cls)
    return out


# ---------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------

class Interface:
    """Base of QOM interfaces; a type implements one by inheriting it."""

    TYPE_NAME = "interface"
    ABSTRACT = True
    IS_INTERFACE = True


register_type(Interface)


class Object:
    """QOM's Object: properties plus a place in the composition tree."""

    TYPE_NAME = "object"
    ABSTRACT = True
    DESCRIPTION = ""
    PROPERTIES: Sequence[PropDef] = ()

    def __init__(self) -> None:
        self.properties: Dict[str, ObjectProperty] = {}
        self.parent: Optional[Object] = None
        self.canonical_name: Optional[str] = None
        self.add_property("type", "string", lambda: self.type_name, None)
        for cls in reversed(type(self).__mro__):
            for pd in cls.__dict__.get("PROPERTIES", ()):
                self._instantiate(pd)

    # -- type -------------------------------------------------------------
    @property
    def type_name(self) -> str:
        return type_name(type(self))

    def is_a(self, name: str) -> bool:
        return type_implements(type(self), name)

    # -- properties -------------------------------------------------------
    def _instantiate(self, pd: PropDef) -> None:
        if pd.getter is not None:
            get = (lambda pd=pd: pd.getter(self))
        else:
            setattr(self, pd.attr, pd.default)
            get = (lambda pd=pd: getattr(self, pd.attr))
        set_: Optional[Callable[[Any], None]] = None
        if not pd.readonly:
            if pd.setter is not None:
                set_ = (lambda v, pd=pd: pd.setter(self, v))
            else:
                set_ = (lambda v, pd=pd: setattr(self, pd.attr, v))
        self.properties[pd.name] = ObjectProperty(pd.name, pd.qom_type, get, set_, pd.desc,
                                                  pd.enum, pd.default, pd)

    def add_property(self, name: str, ptype: str, get: Optional[Callable[[], Any]],
                     set: Optional[Callable[[Any], None]], description: str = "") -> ObjectProperty:
        if name in self.properties:
            raise QemuError("attempt to add duplicate property '%s' to object (type '%s')"
                            % (name, self.type_name))
        p = ObjectProperty(name, ptype, get, set, description)
        self.properties[name] = p
        return p

    def find_property(self, name: str) -> ObjectProperty:
        p = self.properties.get(name)
        if p is None:
            raise PropertyNotFound("Property '%s.%s' not found" % (self.type_name, name))
        return p

    def check_settable(self, prop: ObjectProperty) -> None:
        """Hook for subclasses (devices refuse most changes once realized)."""

    def set_property(self, name: str, value: Any, style: str = "qdev") -> None:
        """Set from a string (command line) or a JSON value (QMP); see convert_value."""
        p = self.find_property(name)
        if p.set is None:
            raise QemuError("Insufficient permission to perform this operation")
        self.check_settable(p)
        ptype = p.defn.type if p.defn is not None else p.type
        p.set(convert_value(name, ptype, value, p.enum, style))

    def get_property(self, name: str) -> Any:
        p = self.find_property(name)
        if p.get is None:
            raise QemuError("Property '%s.%s' is not readable" % (self.type_name, name))
        value = p.get()
        if isinstance(value, Object):
            return value.path() if value.parent is not None else ""
        return value

    # -- composition tree ---------------------------------------------------
    def add_child(self, name: str, child: "Object") -> "Object":
        """Make ``child`` a ``child<type>`` property named ``name`` (``[*]`` numbers it)."""
        if name.endswith("[*]"):
            base = name[:-3]
            i = 0
            while "%s[%d]" % (base, i) in self.properties:
                i += 1
            name = "%s[%d]" % (base, i)
        if name in self.properties:
            raise QemuError("attempt to add duplicate property '%s' to object (type '%s')"
                            % (name, self.type_name))
        if child.parent is not None:
            raise QemuError("object '%s' already has a parent" % child.canonical_name)
        self.properties[name] = ObjectProperty(name, "child<%s>" % child.type_name,
                                               lambda: child, None)
        child.parent = self
        child.canonical_name = name
        return child

    def add_link(self, name: str, target_type: str, get: Callable[[], Any],
                 set: Optional[Callable[[Any], None]] = None) -> None:
        self.add_property(name, "link<%s>" % target_type, get, set)

    def children(self) -> List["Object"]:
        out = []
        for p in self.properties.values():
            if p.type.startswith("child<"):
                out.append(p.get())
        return out

    def child(self, name: str) -> Optional["Object"]:
        p = self.properties.get(name)
        if p is None or not p.type.startswith("child<"):
            return None
        return p.get()

    def unparent(self) -> None:
        """Remove this object from its parent (and so from the tree)."""
        if self.parent is None:
            return
        self.finalize()
        del self.parent.properties[self.canonical_name]
        self.parent = None
        self.canonical_name = None

    def finalize(self) -> None:
        """Hook: release resources when the object leaves the tree."""
        for c in self.children():
            c.finalize()

    def path(self) -> str:
        parts = []
        o: Optional[Object] = self
        while o is not None and o.parent is not None:
            parts.append(o.canonical_name)
            o = o.parent
        return "/" + "/".join(reversed(parts)) if parts else "/"

    def complete(self) -> None:
        """User creatable objects: called after all properties are set."""


@register_type
class Container(Object):
    TYPE_NAME = "container"
    ABSTRACT = False


class UserCreatable(Interface):
    """Objects that ``-object`` / ``object-add`` can make."""

    TYPE_NAME = "user-creatable"
    IS_INTERFACE = True


register_type(UserCreatable)

_root: Optional[Container] = None


def root() -> Container:
    """The root of the composition tree (``/``)."""
    global _root
    if _root is None:
        _root = Container()
        for name in ("objects", "chardevs"):
            _root.add_child(name, Container())
    return _root


def reset_root() -> None:
    """Forget the whole tree (tests, and each new machine in one process)."""
    global _root
    _root = None


def container_get(path: str) -> Object:
    """The container at ``path``, creating missing ones as QEMU does."""
    o: Object = root()
    for part in [p for p in path.split("/") if p]:
        c = o.child(part)
        if c is None:
            c = o.add_child(part, Container())
        o = c
    return o


def _walk(o: Object) -> Iterable[Object]:
    yield o
    for c in o.children():
        yield from _walk(c)


def resolve_path(path: str, typename: Optional[str] = None) -> Optional[Object]:
    """An absolute path, or a partial one that must match one object only.

    Returns None when nothing (or, for partial paths, more than one thing)
    matches, as object_resolve_path does.
    """
    if path.startswith("/"):
        o: Optional[Object] = root()
        for part in [p for p in path.split("/") if p]:
            assert o is not None
            p = o.properties.get(part)
            if p is None or p.get is None:
                return None
            if p.type.startswith("child<") or p.type.startswith("link<"):
                o = p.get()
                if not isinstance(o, Object):
                    return None
            else:
                return None
        if o is not None and typename is not None and not o.is_a(typename):
            return None
        return o
    parts = [p for p in path.split("/") if p]
    found = []
    for o in _walk(root()):
        q: Optional[Object] = o
        for part in reversed(parts):
            if q is None or q.canonical_name != part:
                q = None
                break
            q = q.parent
        if q is not None and (typename is None or o.is_a(typename)):
            found.append(o)
    return found[0] if len(found) == 1 else None


def object_new(typename: str) -> Object:
    cls = _types.get(typename)
    if cls is None:
        raise QemuError("unknown type '%s'" % typename)
    if is_abstract(cls) or is_interface(cls):
        raise QemuError("Object type '%s' is abstract" % typename)
    return cls()


def objects_root() -> Object:
    return container_get("/objects")


def user_creatable_add(qom_type: str, id: str, props: Dict[str, Any], style: str = "keyval") -> Object:
    """``-object``/``object-add``: make, set properties, complete, add under /objects.

    ``style`` is ``keyval`` for text values (-object, object_add) and ``json``
    for typed JSON values (QMP object-add, -object {...}).
    """
    from pyqemu.util.opts import check_id
    cls = _types.get(qom_type)
    if cls is None or is_interface(cls):
        raise QemuError("invalid object type: %s" % qom_type)
    if is_abstract(cls):
        raise QemuError("object type '%s' is abstract" % qom_type)
    if not type_implements(cls, "user-creatable"):
        raise QemuError("object type '%s' isn't supported by object-add" % qom_type)
    check_id(id)
    parent = objects_root()
    if parent.child(id) is not None:
        raise QemuError("attempt to add duplicate property '%s' to object (type 'container')" % id)
    obj = cls()
    for k, v in props.items():
        obj.set_property(k, v, style)
    # In the tree first, as QEMU does, so that complete() knows the object's id.
    parent.add_child(id, obj)
    try:
        obj.complete()
    except QemuError as e:
        obj.unparent()
        # QEMU reports completion failures without the option's location.
        e.no_loc = True  # type: ignore[attr-defined]
        raise
    return obj


def user_creatable_del(id: str) -> None:
    obj = objects_root().child(id)
    if obj is None:
        raise QemuError("object '%s' not found" % id)
    can = getattr(obj, "can_be_deleted", None)
    if can is not None and not can():
        raise QemuError("object '%s' is in use, can not be deleted" % id)
    obj.unparent()
