"""pyqemu: QEMU, the machine emulator and virtualizer, rebuilt in Python."""

__version__ = "0.1.0"
#: The QEMU release whose behaviour pyqemu follows.
QEMU_VERSION = "7.2.0"
