"""pyqemu-img resize [--shrink] [--preallocation=...] filename [+|-]size."""
from __future__ import annotations

from typing import List

from pyqemu.cli.img import img_open, out, parse_args
from pyqemu.util.error import QemuError, UsageError, error_report, warn_report
from pyqemu.util.opts import strtosz
from pyqemu.qom.cmdline import add_object_from_cmdline

SIZE_ERROR = ("Parameter 'size' expects a non-negative number below 2^64")
SIZE_HINT = ("Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
             "and exabytes, respectively.")


def main(argv: List[str]) -> int:
    # a leading '-' of a relative size must not be taken for an option
    if argv and len(argv) >= 2 and argv[-1].startswith("-") and argv[-1][1:2].isdigit():
        argv = argv[:-1] + ["--", argv[-1]]
    opts, args = parse_args(argv, "f:qU", ["image-opts", "object=", "preallocation=", "shrink"])
    fmt = None
    quiet = shrink = image_opts = False
    prealloc = "off"
    for k, v in opts:
        if k == "-f":
            fmt = v
        elif k == "-q":
            quiet = True
        elif k == "--shrink":
            shrink = True
        elif k == "--image-opts":
            image_opts = True
        elif k == "--preallocation":
            if v not in ("off", "metadata", "falloc", "full"):
                raise QemuError("Invalid preallocation mode: '%s'" % v)
            prealloc = v
        elif k == "--object":
            add_object_from_cmdline(v)
    if len(args) != 2:
        raise UsageError("Not enough arguments" if len(args) < 2 else "Expecting image file name and size",
                         hint="Try 'pyqemu-img --help' for more information")
    filename, text = args
    relative = 0
    if text[:1] in "+-":
        relative = 1 if text[0] == "+" else -1
        text = text[1:]
    try:
        n = strtosz(text, "B")
    except (ValueError, OverflowError, QemuError):
        raise QemuError(SIZE_ERROR, hint=SIZE_HINT) from None
    node = img_open(filename, fmt, image_opts, readonly=False)
    try:
        cur = node.length()
        size = cur + relative * n if relative else n
        if size < 0 or (relative and size == 0):
            raise QemuError("New image size must be positive")
        if size < cur and not shrink:
            # QEMU reports the error first, then the warning
            error_report("Use the --shrink option to perform a shrink operation.")
            warn_report("Shrinking an image will delete all data beyond the shrunken image's end. "
                        "Before performing such an operation, make sure there is no important data "
                        "there.")
            return 1
        if size < cur and prealloc != "off":
            raise QemuError("Preallocation can only be used for growing images")
        node.truncate(size, prealloc)
        node.flush()
    finally:
        node.close()
    out("Image resized.\n", quiet)
    return 0
