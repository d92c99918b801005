"""QOM: types, interfaces, typed properties and the composition tree."""
from __future__ import annotations

import pytest

from pyqemu.qom import object as qom
from pyqemu.qom.object import Object, PropDef, register_type
from pyqemu.util.error import QemuError


class Colourful(qom.Interface):
    TYPE_NAME = "test-colourful"
    IS_INTERFACE = True


register_type(Colourful)


@register_type
class Animal(Object):
    TYPE_NAME = "test-animal"
    ABSTRACT = True
    PROPERTIES = (PropDef("legs", "uint8", 4), PropDef("name", "string", None))


@register_type
class Parrot(Animal, Colourful):
    TYPE_NAME = "test-parrot"
    ABSTRACT = False
    PROPERTIES = (PropDef("legs", "uint8", 2), PropDef("talks", "bool", True),
                  PropDef("mood", "TestMood", "calm", enum=("calm", "angry")))


@register_type
class Pet(Object, qom.UserCreatable):
    TYPE_NAME = "test-pet"
    ABSTRACT = False
    PROPERTIES = (PropDef("size", "size", 0),)

    def complete(self) -> None:
        if not self.size:
            raise QemuError("size must be set")


@pytest.fixture(autouse=True)
def fresh_tree():
    qom.reset_root()
    yield
    qom.reset_root()


def test_inheritance_interfaces_and_parent():
    p = qom.object_new("test-parrot")
    assert p.is_a("test-animal") and p.is_a("test-colourful") and p.is_a("object")
    assert not p.is_a("container")
    assert qom.type_parent(Parrot) == "test-animal"
    with pytest.raises(QemuError, match="abstract"):
        qom.object_new("test-animal")


def test_subclass_overrides_default_and_types_convert():
    p = qom.object_new("test-parrot")
    assert p.get_property("legs") == 2
    p.set_property("legs", "0x10")            # command-line string
    assert p.get_property("legs") == 16
    p.set_property("talks", "off")
    assert p.get_property("talks") is False
    p.set_property("talks", True)               # QMP JSON value
    assert p.get_property("talks") is True
    with pytest.raises(QemuError, match="a value between 0 and 255"):
        p.set_property("legs", 300)
    with pytest.raises(QemuError, match="expected: boolean"):
        p.set_property("talks", 3)
    with pytest.raises(QemuError, match="does not accept value 'sleepy'"):
        p.set_property("mood", "sleepy")
    with pytest.raises(QemuError, match=r"Property 'test-parrot.wings' not found"):
        p.set_property("wings", 2)


def test_tree_paths_children_and_partial_resolution():
    root = qom.root()
    m = qom.container_get("/machine/unattached")
    a = m.add_child("bird[*]", qom.object_new("test-parrot"))
    b = m.add_child("bird[*]", qom.object_new("test-parrot"))
    assert (a.path(), b.path()) == ("/machine/unattached/bird[0]", "/machine/unattached/bird[1]")
    assert qom.resolve_path("/machine/unattached/bird[1]") is b
    assert qom.resolve_path("bird[1]") is b                  # partial, unique
    assert qom.resolve_path("unattached") is m
    assert qom.resolve_path("/machine/nope") is None
    assert qom.resolve_path("/machine", "test-parrot") is None
    types = {p.name: p.type for p in root.child("machine").properties.values()}
    assert types["unattached"] == "child<container>"
    b.unparent()
    assert qom.resolve_path("/machine/unattached/bird[1]") is None
    with pytest.raises(QemuError, match="duplicate property 'bird\\[0\\]'"):
        m.add_child("bird[0]", qom.object_new("test-parrot"))


def test_user_creatable_add_and_del():
    pet = qom.user_creatable_add("test-pet", "rex", {"size": "1M"})
    assert pet.path() == "/objects/rex" and pet.size == 1 << 20
    with pytest.raises(QemuError, match="duplicate property 'rex'"):
        qom.user_creatable_add("test-pet", "rex", {"size": "1"})
    with pytest.raises(QemuError, match="size must be set"):
        qom.user_creatable_add("test-pet", "zero", {})
    assert qom.objects_root().child("zero") is None      # a failed complete leaves nothing
    with pytest.raises(QemuError, match="isn't supported by object-add"):
        qom.user_creatable_add("test-parrot", "polly", {})
    with pytest.raises(QemuError, match="expects an identifier"):
        qom.user_creatable_add("test-pet", "1bad", {"size": "1"})
    qom.user_creatable_del("rex")
    with pytest.raises(QemuError, match="object 'rex' not found"):
        qom.user_creatable_del("rex")


def test_qom_list_types_filters():
    names = {qom.type_name(c) for c in qom.types_of("test-animal")}
    assert names == {"test-parrot"}
    names = {qom.type_name(c) for c in qom.types_of("test-animal", abstract=True)}
    assert names == {"test-parrot", "test-animal"}
    assert "test-colourful" not in {qom.type_name(c) for c in qom.types_of()}
