"""x86 boards; importing the package registers them with the machine registry."""
from pyqemu.hw.i386 import pc  # noqa: F401
