import pytest

from pyqemu.chardev import chardev_reset_all
from pyqemu.exec.main_loop import MainLoop, set_main_loop


@pytest.fixture
def make_pc(tmp_path):
    """make_pc(*args): build the pc machine in-process (stopped), return it."""
    from pyqemu.hw.core import qdev
    from pyqemu.system import vl
    from pyqemu.system.runstate import reset_runstate
    loop = MainLoop()
    set_main_loop(loop)

    def make(*args):
        reset_runstate()
        config = vl.Config("x86_64")
        vl.reset_option_groups()
        qdev.clear_globals()
        vl.option_groups()
        vl.parse_command_line(["-M", "pc", "-S", "-display", "none", "-nodefaults"] + list(args),
                              config)
        return vl.build_vm(config).machine
    yield make
    chardev_reset_all()
    loop.close()
    set_main_loop(None)
