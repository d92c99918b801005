"""The system emulator's option table: what ``-foo`` means and how ``-h`` shows it.

Each option is registered by the code that owns it with :func:`register_option`
(core options in :mod:`pyqemu.system.core_options`; a board or device family
adds its own from its module).  An option has a name, whether it takes an
argument, a help section, the syntax line(s) and description printed by
``-h``, and a handler called with the argument while the command line is
read.  Options are recognised with one or two leading dashes, as in QEMU.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

# Help sections in the order ``-h`` prints them.
SECTIONS = (
    "Standard options",
    "Block device options",
    "USB convenience options",
    "Display options",
    "i386 target only",
    "Network options",
    "Character device options",
    "TPM device options",
    "Boot Image or Kernel specific",
    "Debug/Expert options",
    "Generic object creation",
)


class QemuOption:
    __slots__ = ("name", "has_arg", "section", "usage", "help", "handler")

    def __init__(self, name: str, has_arg: bool, section: str, usage: str, help: str,
                 handler: Optional[Callable[[Any, Optional[str]], None]]) -> None:
        self.name = name
        self.has_arg = has_arg
        self.section = section
        self.usage = usage
        self.help = help
        self.handler = handler


_options: Dict[str, QemuOption] = {}
_order: List[QemuOption] = []


def register_option(name: str, has_arg: bool, section: str, usage: str = "", help: str = "",
                    handler: Optional[Callable[[Any, Optional[str]], None]] = None) -> QemuOption:
    """Add ``-name`` to the command line.

    ``usage`` is the syntax line as ``-h`` shows it (``-m [size=]megs``);
    ``help`` is the description, on the same line when the syntax is short
    and on indented lines below it otherwise, as QEMU's table does.  An
    empty ``usage`` hides the option from ``-h`` (aliases such as ``-M``).
    ``handler(config, arg)`` runs when the option is read.
    """
    opt = QemuOption(name, has_arg, section, usage, help, handler)
    _options[name] = opt
    _order.append(opt)
    return opt


def lookup_option(name: str) -> Optional[QemuOption]:
    return _options.get(name)


def format_help(progname: str, version_lines: str) -> str:
    out = [version_lines.rstrip("\n"),
           "usage: %s [options] [disk_image]" % progname,
           "",
           "'disk_image' is a raw hard disk image for IDE hard disk 0",
           ""]
    for section in SECTIONS:
        opts = [o for o in _order if o.section == section and o.usage]
        if not opts:
            continue
        out.append("%s:" % section)
        for o in opts:
            text = o.help.rstrip("\n")
            if not text:
                out.append(o.usage)
            elif len(o.usage) < 16 and "\n" not in o.usage:
                lines = text.split("\n")
                out.append("%-16s%s" % (o.usage, lines[0]))
                out.extend("                " + ln for ln in lines[1:])
            else:
                out.append(o.usage)
                out.extend("                " + ln for ln in text.split("\n"))
        out.append("")
    out.append("During emulation, the following keys are useful:")
    out.append("ctrl-a h        print the multiplexer's key help (with -nographic)")
    out.append("")
    out.append("When using -nographic, press 'ctrl-a h' to get some help.")
    out.append("")
    return "\n".join(out) + "\n"
