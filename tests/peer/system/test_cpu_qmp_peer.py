"""QMP query-cpu-definitions and query-cpu-model-expansion beside qemu-system-x86_64."""
import json
import os
import shutil
import subprocess
import sys

import pytest

QEMU = shutil.which("qemu-system-x86_64")
PYQEMU = os.path.join(os.path.dirname(sys.executable), "pyqemu-system-x86_64")


def test_reference_qemu_is_installed():
    assert QEMU, "qemu-system-x86_64 (Debian qemu-system-x86) is needed for peer tests"


def _qmp(prog, commands):
    lines = [{"execute": "qmp_capabilities"}] + commands + [{"execute": "quit"}]
    p = subprocess.run([prog, "-M", "none", "-S", "-display", "none", "-nodefaults", "-qmp", "stdio"],
                       input="".join(json.dumps(x) + "\n" for x in lines).encode(),
                       capture_output=True, timeout=180)
    assert p.returncode == 0, p.stderr
    replies = [json.loads(x) for x in p.stdout.decode().splitlines()]
    return [r for r in replies if "return" in r or "error" in r][1:-1]


@pytest.fixture(scope="module")
def definitions():
    return [_qmp(prog, [{"execute": "query-cpu-definitions"}])[0]["return"] for prog in (QEMU, PYQEMU)]


def test_definitions_list_the_same_models_in_the_same_order(definitions):
    theirs, ours = definitions
    strip = [{k: v for k, v in d.items() if k != "unavailable-features"} for d in theirs]
    assert strip == [{k: v for k, v in d.items() if k != "unavailable-features"} for d in ours]


def test_unavailable_features_include_qemus(definitions):
    # pyqemu lacks more than QEMU's TCG (AVX, AES ...): its list is a superset
    # in the same (feature word) order
    theirs, ours = definitions
    for t, o in zip(theirs, ours):
        if t["name"] != "max":
            assert [f for f in o["unavailable-features"] if f in t["unavailable-features"]] == \
                t["unavailable-features"], t["name"]


@pytest.mark.slow
def test_static_expansion_of_every_model_matches(definitions):
    names = [d["name"] for d in definitions[0] if d["name"] not in ("max", "host")]
    cmds = [{"execute": "query-cpu-model-expansion", "arguments": {"type": "static", "model": {"name": n}}}
            for n in names]
    cmds.append({"execute": "query-cpu-model-expansion",
                 "arguments": {"type": "static", "model": {"name": "Haswell", "props": {"avx": False,
                                                                                      "family": 7}}}})
    theirs, ours = _qmp(QEMU, cmds), _qmp(PYQEMU, cmds)
    assert [n for n, t, o in zip(names + ["Haswell+props"], theirs, ours) if t != o] == []


@pytest.mark.parametrize("arguments", [
    {"type": "static", "model": {"name": "nosuch"}},
    {"type": "bogus", "model": {"name": "qemu64"}},
    {"type": "static", "model": {"name": "qemu64", "props": {"vmx": True, "foo": 1}}},
    {"type": "static", "model": {"name": "qemu64", "props": {"vmx": "x"}}},
    {"type": "static", "model": {"name": "qemu64", "props": {"family": "x"}}},
    {"type": "static"},
])
def test_expansion_errors_match(arguments):
    cmd = [{"execute": "query-cpu-model-expansion", "arguments": arguments}]
    assert _qmp(PYQEMU, cmd) == _qmp(QEMU, cmd)
