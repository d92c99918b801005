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
  data_file=<str>        - File name of an external data file
  data_file_raw=<bool (on/off)> - The external data file must stay valid as a raw image
  encrypt.iter-time=<num> - Time to spend in PBKDF in milliseconds
  encrypt.keyslot=<num>  - Select a single keyslot to modify explicitly
  encrypt.new-secret=<str> - New secret to set in the matching keyslots. Empty string to erase
  encrypt.old-secret=<str> - Select all keyslots that match this password
  encrypt.state=<str>    - Select new state of affected keyslots (active/inactive)
  lazy_refcounts=<bool (on/off)> - Postpone refcount updates
  refcount_bits=<num>    - Width of a reference count entry in bits
  size=<size>            - Virtual disk size
"""


def _luks_help() -> str:
    from pyqemu.block.crypto.luks import AMEND_HELP
    return "Amend options for 'luks':\n" + "".join("  %-22s - %s\n" % ("%s=%s" % (n, t), h)
                                                   for n, t, h in AMEND_HELP)


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "f:o:t:pq", ["image-opts", "object=", "force"])
    fmt = None
    o_values: List[str] = []
    progress = quiet = image_opts = force = False
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
        elif k == "--force":
            force = True
    if not o_values:
        raise UsageError("Must specify options (-o)", hint="Try 'pyqemu-img --help' for more information")
    if quiet:
        progress = False
    o = parse_o(o_values)
    if "help" in o and not args:
        sys.stdout.write(_HELP)
        return 0
    if "help" in o and fmt in ("qcow2", "luks"):  # named format: no need to open (or unlock) the image
        sys.stdout.write(_HELP if fmt == "qcow2" else _luks_help())
        return 0
    if len(args) != 1:
        raise UsageError("Expecting one image file name", hint="Try 'pyqemu-img --help' for more information")
    node = img_open(args[0], fmt, image_opts, readonly=False, cache=cache, no_backing=True)
    try:
        if node.driver == "luks":  # key slots (pyqemu.block.crypto.luks.amend)
            if "help" in o:
                sys.stdout.write(_luks_help())
                return 0
            from pyqemu.block.luks import amend as luks_amend
            luks_amend(node, o, force)
            return 0
        if node.driver != "qcow2":
            raise QemuError("Format driver '%s' does not support option amendment" % node.driver)
        if "help" in o:
            sys.stdout.write(_HELP)
            return 0
        prog = Progress(progress)
        from pyqemu.block.qcow2.amend import amend
        from pyqemu.block.qcow2.encrypt import check_amend_keys
        check_amend_keys(o)
        enc = {k[8:]: o.pop(k) for k in list(o) if k.startswith("encrypt.") and k != "encrypt.format"}
        if enc:  # key slots first: QEMU refuses encryption options before changing anything else
            from pyqemu.block.qcow2.encrypt import amend_encryption
            amend_encryption(node, enc, force)
        if o or not enc:
            amend(node, o)
        prog.finish()
    finally:
        node.close()
    return 0
