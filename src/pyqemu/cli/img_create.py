"""pyqemu-img create."""
from __future__ import annotations

import sys
from typing import Dict, List

from pyqemu.block.open import FORMAT_MODULES, create_image, format_module, open_image, resolve_backing_path
from pyqemu.cli.img import PROG, out, parse_args, parse_o
from pyqemu.util.error import QemuError, UsageError
from pyqemu.util.opts import strtosz
from pyqemu.qom.cmdline import add_object_from_cmdline

# the order qemu-img prints "Formatting ..." options in, and their defaults
_PRINT_ORDER = {
    "qcow2": [("encryption", None), ("encrypt.format", None), ("encrypt.key-secret", None),
              ("encrypt.cipher-alg", None), ("encrypt.cipher-mode", None), ("encrypt.ivgen-alg", None),
              ("encrypt.ivgen-hash-alg", None), ("encrypt.hash-alg", None), ("encrypt.iter-time", None),
              ("cluster_size", "65536"), ("extended_l2", "off"), ("preallocation", None),
              ("compression_type", "zlib"), ("size", None), ("compat", None), ("backing_file", None),
              ("backing_fmt", None), ("data_file", None), ("data_file_raw", None),
              ("lazy_refcounts", "off"), ("refcount_bits", "16")],
    "raw": [("size", None), ("preallocation", None)],
}
_HELP = {
    "raw": [("size", "<size>", "Virtual disk size")],
    "qcow2": [("backing_file", "<str>", "File name of a base image"),
              ("backing_fmt", "<str>", "Image format of the base image"),
              ("cluster_size", "<size>", "qcow2 cluster size"),
              ("compat", "<str>", "Compatibility level (v2 [0.10] or v3 [1.1])"),
              ("compression_type", "<str>", "Compression method used for image cluster compression"),
              ("data_file", "<str>", "File name of an external data file"),
              ("data_file_raw", "<bool (on/off)>", "The external data file must stay valid as a raw image"),
              ("encrypt.cipher-alg", "<str>", "Name of encryption cipher algorithm"),
              ("encrypt.cipher-mode", "<str>", "Name of encryption cipher mode"),
              ("encrypt.format", "<str>", "Encrypt the image, format choices: 'aes', 'luks'"),
              ("encrypt.hash-alg", "<str>", "Name of encryption hash algorithm"),
              ("encrypt.iter-time", "<num>", "Time to spend in PBKDF in milliseconds"),
              ("encrypt.ivgen-alg", "<str>", "Name of IV generator algorithm"),
              ("encrypt.ivgen-hash-alg", "<str>", "Name of IV generator hash algorithm"),
              ("encrypt.key-secret", "<str>", "ID of secret providing qcow AES key or LUKS passphrase"),
              ("encryption", "<bool (on/off)>", "Encrypt the image with format 'aes'. (Deprecated in "
               "favor of encrypt.format=aes)"),
              ("extended_l2", "<bool (on/off)>", "Extended L2 tables"),
              ("lazy_refcounts", "<bool (on/off)>", "Postpone refcount updates"),
              ("preallocation", "<str>", "Preallocation mode (allowed values: off, metadata, falloc, full)"),
              ("refcount_bits", "<num>", "Width of a reference count entry in bits"),
              ("size", "<size>", "Virtual disk size")],
}

SIZE_ERROR = ("Invalid image size specified. You may use k, M, G, T, P or E suffixes for\n"
              "%s: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.")


def parse_image_size(text: str) -> int:
    try:
        size = strtosz(text, "B")
    except (ValueError, OverflowError, QemuError):
        size = -1
    if size < 0 or size > (1 << 63) - 1:
        raise QemuError(SIZE_ERROR % PROG)
    return size


def _refuse_protocol_formats(fmt: str) -> None:
    """vvfat is a protocol in pyqemu's registry but a format driver without create in QEMU."""
    if fmt == "vvfat":
        raise QemuError("Format driver 'vvfat' does not support image creation")


def print_create_help(fmt: str) -> None:
    _refuse_protocol_formats(fmt)
    if fmt in FORMAT_MODULES and hasattr(format_module(fmt), "validate_create_options"):
        # formats without create (cloop, dmg ...) refuse -o help too, as qemu-img does
        format_module(fmt).validate_create_options({})
    sys.stdout.write("Supported %s options:\n" % fmt)
    helps = _HELP.get(fmt) or (getattr(format_module(fmt), "CREATE_HELP", [])
                               if fmt in FORMAT_MODULES else [])
    for name, kind, text in helps:
        sys.stdout.write("  %-22s - %s\n" % ("%s=%s" % (name, kind), text))
    sys.stdout.write("\nThe protocol level may support further options.\n"
                     "Specify the target filename to include those options.\n")


def formatting_line(fmt: str, filename: str, opts: Dict[str, str], size: int) -> str:
    parts = []
    order = _PRINT_ORDER.get(fmt) or (getattr(format_module(fmt), "PRINT_ORDER", None)
                                      if fmt in FORMAT_MODULES else None)
    for key, default in order or [("size", None)]:
        if key == "size":
            parts.append("size=%d" % size)
        elif key in opts:
            val = opts[key]
            if key == "cluster_size":  # a size option prints as a number of bytes
                try:
                    val = str(strtosz(val, "B"))
                except (ValueError, OverflowError, QemuError):
                    pass
            parts.append("%s=%s" % (key, val))
        elif default is not None:
            parts.append("%s=%s" % (key, default))
    return "Formatting '%s', fmt=%s %s\n" % (filename, fmt, " ".join(parts))


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "F:b:f:ho:qu", ["object="])
    fmt = "raw"
    base = None
    base_fmt = None
    o_values: List[str] = []
    quiet = False
    unsafe = False
    for k, v in opts:
        if k == "-f":
            fmt = v
        elif k == "-b":
            base = v
        elif k == "-F":
            base_fmt = v
        elif k == "-o":
            o_values.append(v)
        elif k == "-q":
            quiet = True
        elif k == "-u":
            unsafe = True
        elif k in ("-h", "--help"):
            from pyqemu.cli.img import HELP, QEMU_VERSION, PYQEMU_VERSION
            sys.stdout.write(HELP % (QEMU_VERSION, PYQEMU_VERSION))
            return 0
        elif k == "--object":
            add_object_from_cmdline(v)
    o = parse_o(o_values)
    if "help" in o:
        print_create_help(fmt)
        return 0
    if not args:
        raise UsageError("Expecting image file name",
                         hint="Try '%s --help' for more information" % PROG)
    filename = args[0]
    if len(args) > 2:
        raise UsageError("Unexpected argument: %s" % args[2],
                         hint="Try '%s --help' for more information" % PROG)
    size = parse_image_size(args[1]) if len(args) > 1 else None
    if "size" in o:
        size = parse_image_size(o.pop("size"))
    if base is not None:
        o["backing_file"] = base
    if base_fmt is not None:
        o["backing_fmt"] = base_fmt
    try:
        _refuse_protocol_formats(fmt)
        if fmt not in ("raw", "qcow2") and fmt not in FORMAT_MODULES:
            raise QemuError("Unknown file format '%s'" % fmt)
        if base is not None and fmt in FORMAT_MODULES and hasattr(format_module(fmt), "CREATE_HELP") and \
                "backing_file" not in [h[0] for h in format_module(fmt).CREATE_HELP]:
            raise QemuError("Backing file not supported for file format '%s'" % fmt)
        if fmt in FORMAT_MODULES and hasattr(format_module(fmt), "validate_create_options"):
            # options qemu-img rejects before it prints "Formatting ..."
            format_module(fmt).validate_create_options(o)
        if fmt == "raw" and ("backing_file" in o or "backing_fmt" in o):
            raise QemuError("Backing file not supported for file format 'raw'")
        backing = o.get("backing_file")
        if backing is not None and (size is None or not unsafe):
            path = resolve_backing_path(filename, backing)
            if "backing_fmt" not in o:
                probed = None
                try:
                    with open_image(path, readonly=True, force_share=True) as b:
                        probed = b.driver
                except QemuError:
                    pass
                raise QemuError("Backing file specified without backing format",
                                hint="Detected format of %s." % probed if probed else "")
            try:
                with open_image(path, o["backing_fmt"], readonly=True, force_share=True) as b:
                    bsize = b.length()
            except QemuError as exc:
                raise QemuError("%s\nCould not open backing image." % exc.msg) from None
            if size is None:
                size = bsize
        elif backing is not None and "backing_fmt" not in o:
            raise QemuError("Backing file specified without backing format")
        if size is None:
            raise QemuError("Image creation needs a size parameter")
        out(formatting_line(fmt, filename, o, size), quiet)
        sys.stdout.flush()
        create_image(fmt, filename, size, o)
    except QemuError as exc:
        if exc.loc is None and not exc.msg.startswith("Could not create"):
            exc.loc = filename
        elif exc.loc is None:
            exc.loc = filename
        raise
    return 0
