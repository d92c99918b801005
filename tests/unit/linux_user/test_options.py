"""The user-mode command line and its QEMU_* environment variables."""
import pytest

from pyqemu.linux_user.options import PlainError, parse_args, parse_reserved_va, usage_text
from pyqemu.util.error import UsageError


def test_options_stop_at_program():
    o = parse_args(["-L", "/x", "--strace", "-cpu", "max", "prog", "-L", "arg"], environ={})
    assert (o.ld_prefix, o.strace, o.cpu_model, o.program, o.args) == ("/x", True, "max", "prog", ["-L", "arg"])


def test_environment_variables_and_command_line_precedence():
    env = {"QEMU_STRACE": "", "QEMU_LD_PREFIX": "/env", "QEMU_STACK_SIZE": "1M", "QEMU_CPU": "core2duo",
           "QEMU_GDB": "1234", "QEMU_SET_ENV": "A=1,B=2", "QEMU_UNSET_ENV": "C"}
    o = parse_args(["-L", "/cmd", "p"], environ=env)
    assert o.strace and o.ld_prefix == "/cmd" and o.stack_size == 1 << 20
    assert o.cpu_model == "core2duo" and o.gdb_port == "1234"
    assert sorted(o.target_environ({"C": "x", "D": "y"})) == ["A=1", "B=2", "D=y"]


def test_set_and_unset_env_in_order():
    o = parse_args(["-E", "X=1,Y=2", "-U", "Y", "-E", "Z=a=b", "p"], environ={})
    assert sorted(o.target_environ({})) == ["X=1", "Z=a=b"]


@pytest.mark.parametrize("argv,msg", [(["-nope"], "unknown option 'nope'"),
                                      (["-L"], "missing argument for option 'L'")])
def test_errors(argv, msg):
    with pytest.raises(UsageError) as ei:
        parse_args(argv, environ={})
    assert str(ei.value) == msg


def test_bad_stack_size_means_usage_and_failure():
    o = parse_args(["-s", "lots", "p"], environ={})
    assert o.help and o.help_status == 1


def test_usage_layout():
    text = usage_text("pyqemu-i386", "i386", "/etc/qemu-binfmt/i386", 8388608)
    assert text.startswith("usage: pyqemu-i386 [options] program [arguments...]\n")
    assert "-L path              QEMU_LD_PREFIX    set the elf interpreter prefix to 'path'\n" in text
    assert "QEMU_STACK_SIZE = 8388608 byte\n" in text


@pytest.mark.parametrize("arg,msg", [("3000", "page size must be a power of two"),
                                     ("abc", "page size must be a power of two"),
                                     ("-4096", "page size must be a power of two")])
def test_page_size_errors_are_bare_lines(arg, msg):
    with pytest.raises(PlainError) as ei:
        parse_args(["-p", arg, "x"], environ={})
    assert str(ei.value) == msg


def test_page_size_takes_the_leading_number_as_atoi():
    assert parse_args(["-p", "8192x", "x"], environ={}).pagesize == 8192


@pytest.mark.parametrize("arg,value", [("0x1000", 0x1000), ("16M", 16 << 20), ("1G", 1 << 30),
                                       ("64k", 64 << 10), ("010", 8), ("0", 0)])
def test_reserved_va_syntax(arg, value):
    assert parse_reserved_va(arg) == value


@pytest.mark.parametrize("arg,msg", [("1m", "Unrecognised -R size suffix 'm'"),
                                     ("abc", "Unrecognised -R size suffix 'abc'"),
                                     ("99999999999G", "Reserved virtual address too big")])
def test_reserved_va_errors(arg, msg):
    with pytest.raises(PlainError) as ei:
        parse_reserved_va(arg)
    assert str(ei.value) == msg


def test_guest_base_is_strtoul():
    assert parse_args(["-B", "0x10000", "x"], environ={}).guest_base == 0x10000
    assert parse_args(["-B", "junk", "x"], environ={}).guest_base == 0
