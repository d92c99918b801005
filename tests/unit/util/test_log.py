"""-d items, -D log file and -dfilter ranges."""
import subprocess
import pytest

from pyqemu.util import log
from pyqemu.util.error import OptionError


@pytest.fixture(autouse=True)
def reset_log():
    yield
    log.set_mask(0)
    log.set_file(None)
    log.set_dfilter(None)


def test_items_parse_to_a_mask():
    mask, traces = log.parse_items("in_asm,op,trace:memory_region_*")
    assert mask == log.mask_of("in_asm") | log.mask_of("op")
    assert traces == ["memory_region_*"]
    log.set_mask(mask)
    assert log.enabled("in_asm") and log.enabled("op") and not log.enabled("exec")


def test_unknown_item_or_help_gives_no_mask():
    assert log.parse_items("nosuch")[0] == 0
    assert log.parse_items("help")[0] == 0


def test_modules_can_register_their_own_items():
    bit = log.register("test_item_xyz", "for the test")
    assert log.parse_items("test_item_xyz")[0] == bit
    assert "test_item_xyz" in log.usage()


def test_help_text_matches_qemu_for_the_standard_items():
    real = subprocess.run(["qemu-system-x86_64", "-d", "help"], capture_output=True, text=True).stdout
    ours = "".join(line for line in log.usage().splitlines(keepends=True)
                   if not line.startswith("test_item_xyz"))
    assert ours == real


def test_log_file(tmp_path):
    f = tmp_path / "qemu.log"
    log.set_file(str(f))
    log.log("hello\n")
    log.set_file(None)
    assert f.read_text() == "hello\n"


def test_log_file_that_cannot_be_opened(tmp_path):
    with pytest.raises(OptionError):
        log.set_file(str(tmp_path / "no" / "such" / "dir.log"))


@pytest.mark.parametrize("spec,ranges", [
    ("0x1000..0x2000", [(0x1000, 0x2000)]),
    ("0x1000+0x100", [(0x1000, 0x10ff)]),
    ("0x1000-0x100", [(0xf01, 0x1000)]),
    ("16..32,0x100+1", [(16, 32), (0x100, 0x100)]),
])
def test_dfilter_ranges(spec, ranges):
    assert log.parse_dfilter(spec) == ranges


@pytest.mark.parametrize("spec,msg", [
    ("0x10", "Bad range specifier"),
    ("0x10+0", "Invalid range"),
    ("abc..0x10", "Invalid number to the left of .."),
    ("0x10..xyz", "Invalid number to the right of .."),
    ("0x20..0x10", "Invalid range"),
])
def test_dfilter_errors_match_qemu(spec, msg):
    with pytest.raises(OptionError) as e:
        log.parse_dfilter(spec)
    assert str(e.value) == msg


def test_dfilter_membership():
    log.set_dfilter("0x1000+0x10")
    assert log.in_dfilter(0x1000) and log.in_dfilter(0x100f)
    assert not log.in_dfilter(0x1010)
    log.set_dfilter(None)
    assert log.in_dfilter(0x1010)
