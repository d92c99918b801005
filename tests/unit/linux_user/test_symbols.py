"""Function symbols for -d in_asm's IN: line."""
import random
import shutil
import subprocess

import pytest

from pyqemu.linux_user.symbols import SymbolTable


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    gcc = shutil.which("gcc")
    assert gcc, "gcc must be installed"
    d = tmp_path_factory.mktemp("sym")
    (d / "p.c").write_text("int helper(int x) { return x * 3; }\n"
                           "int main(int c, char **v) { return helper(c); }\n")
    subprocess.run([gcc, "-O1", "-fno-inline", "-static", "-o", str(d / "p"), str(d / "p.c")],
                   check=True)
    nm = subprocess.run(["nm", str(d / "p")], capture_output=True, text=True, check=True)
    addrs = {f[2]: int(f[0], 16) for f in (ln.split() for ln in nm.stdout.splitlines())
             if len(f) == 3}
    return (d / "p").read_bytes(), addrs


def test_names_functions_by_range(prog):
    data, addrs = prog
    t = SymbolTable(data, 64, 0)
    assert t.lookup(addrs["main"]) == "main"
    assert t.lookup(addrs["helper"]) == "helper"
    assert t.lookup(addrs["helper"] + 1) == "helper"
    assert t.lookup(0x10) == ""


def test_load_bias_moves_symbols(prog):
    data, addrs = prog
    t = SymbolTable(data, 64, 0x1000)
    assert t.lookup(addrs["main"] + 0x1000) == "main"


def test_malformed_files_just_have_no_names(prog):
    data, _ = prog
    rnd = random.Random(3)
    for _ in range(200):
        b = bytearray(data[:4096])
        for _ in range(20):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        assert isinstance(SymbolTable(bytes(b), 64, 0).lookup(0x401000), str)
    assert SymbolTable(b"\x7fELF", 32, 0).lookup(0) == ""
