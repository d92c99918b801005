"""QEMU-style error reporting and the no-traceback rule."""
import pytest

from pyqemu.util import error
from pyqemu.util.error import OptionError, QemuError, run_main


def test_message_with_program_and_option_location(capsys):
    def main(argv):
        raise OptionError("Invalid parameter 'foo'", loc="-drive foo=bar")
    assert run_main(main, "pyqemu-system-x86_64", []) == 1
    assert capsys.readouterr().err == "pyqemu-system-x86_64: -drive foo=bar: Invalid parameter 'foo'\n"


def test_file_locations_have_no_space_after_the_program(capsys):
    def main(argv):
        raise OptionError("There is no option group 'x'", loc="vm.cfg:2", file_loc=True)
    run_main(main, "pyqemu-system-x86_64", [])
    assert capsys.readouterr().err == "pyqemu-system-x86_64:vm.cfg:2: There is no option group 'x'\n"


def test_hint_lines_follow_the_message(capsys):
    def main(argv):
        raise QemuError("Failed to get \"write\" lock", hint="Is another process using the image [a.img]?")
    run_main(main, "pyqemu-img", [])
    assert capsys.readouterr().err == ('pyqemu-img: Failed to get "write" lock\n'
                                       'Is another process using the image [a.img]?\n')


def test_os_error_wording(capsys, tmp_path):
    path = tmp_path / "x.img"

    def main(argv):
        try:
            open(path)
        except OSError as e:
            raise error.os_error(e, "Could not open '%s'" % path)
    run_main(main, "pyqemu-img", [])
    assert capsys.readouterr().err == "pyqemu-img: Could not open '%s': No such file or directory\n" % path


def test_unexpected_exceptions_never_show_a_traceback(capsys, monkeypatch):
    monkeypatch.delenv("PYQEMU_DEBUG", raising=False)

    def main(argv):
        return {}["boom"]
    assert run_main(main, "pyqemu-img", []) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("pyqemu-img: internal error: KeyError")


def test_debug_lets_the_traceback_through(monkeypatch):
    monkeypatch.setenv("PYQEMU_DEBUG", "1")

    def main(argv):
        raise KeyError("boom")
    with pytest.raises(KeyError):
        run_main(main, "pyqemu-img", [])


def test_exit_status_passes_through():
    assert run_main(lambda argv: 3, "p", []) == 3
    assert run_main(lambda argv: None, "p", []) == 0

    def exits(argv):
        raise SystemExit(2)
    assert run_main(exits, "p", []) == 2
