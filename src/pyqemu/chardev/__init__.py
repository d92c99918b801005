"""Character devices: backends, the mux, and the -chardev/-serial front door."""
from pyqemu.chardev.char import (CHR_EVENT_BREAK, CHR_EVENT_CLOSED, CHR_EVENT_MUX_IN,
                                  CHR_EVENT_MUX_OUT, CHR_EVENT_OPENED, Chardev, chardev_find,
                                  chardev_get, chardev_list, chardev_reset_all, chardev_unregister)
from pyqemu.chardev.create import (BACKENDS, CHARDEV_OPTS, backend_from_opts, chardev_help_text,
                                   chardev_new, create_from_opts, create_from_spec,
                                   parse_serial_spec)

__all__ = [
    "CHR_EVENT_BREAK", "CHR_EVENT_CLOSED", "CHR_EVENT_MUX_IN", "CHR_EVENT_MUX_OUT",
    "CHR_EVENT_OPENED", "Chardev", "chardev_find", "chardev_get", "chardev_list",
    "chardev_reset_all", "chardev_unregister", "BACKENDS", "CHARDEV_OPTS", "backend_from_opts",
    "chardev_help_text", "chardev_new", "create_from_opts", "create_from_spec",
    "parse_serial_spec",
]
