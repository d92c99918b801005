"""pyqemu-img amend [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename."""
from __future__ import annotations

import sys
from typing import List

from pyqemu.cli.img import Progress, img_open, parse_args, parse_o
from pyqemu.util.error import QemuError, UsageError
from pyqemu.qom.cmdline import add_object_from_cmdline

_HELP = """Amend options for 'qcow2':
  backing_file=<str>     - File name of a base image
  backing_fmt=<str>      - Image format of the base image
  compat=<str>           - Compatibility level (v2 [0.10] or v3 [1.1])
  lazy_refcounts=<bool (on/off)> - Postpone refcount updates
  refcount_bits=<num>    - Width of a reference count entry in bits
  size=<size>            - Virtual disk size
"""


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "f:o:t:pq", ["image-opts", "object=", "force"])
    fmt = None
    o_values: List[str] = []
    progress = quiet = image_opts = False
    cache = "writeback"
    for k, v in opts:
        if k == "-f":
            fmt = v
        elif k == "-o":
            o_values.append(v)
        elif k == "-t":
            cache = v
        elif k == "-p":
            progress = True
        elif k == "-q":
            quiet = True
        elif k == "--image-opts":
            image_opts = True
        elif k == "--object":
            add_object_from_cmdline(v)
    if not o_values:
        raise UsageError("Must specify options (-o)", hint="Try 'pyqemu-img --help' for more information")
    if quiet:
        progress = False
    o = parse_o(o_values)
    if "help" in o and not args:
        sys.stdout.write(_HELP)
        return 0
    if len(args) != 1:
        raise UsageError("Expecting one image file name", hint="Try 'pyqemu-img --help' for more information")
    node = img_open(args[0], fmt, image_opts, readonly=False, cache=cache, no_backing=True)
    try:
        if node.driver != "qcow2":
            raise QemuError("Format driver '%s' does not support option amendment" % node.driver)
        if "help" in o:
            sys.stdout.write(_HELP)
            return 0
        prog = Progress(progress)
        from pyqemu.block.qcow2.amend import amend
        amend(node, o)
        prog.finish()
    finally:
        node.close()
    return 0
