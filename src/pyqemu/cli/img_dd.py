"""pyqemu-img dd [-U] [-f fmt] [-O output_fmt] [bs=N] [count=N] [skip=N] if=input of=output."""
from __future__ import annotations

from typing import List

from pyqemu.block.open import create_image
from pyqemu.cli.img import img_open, parse_args
from pyqemu.util.error import QemuError, get_progname
from pyqemu.util.opts import strtosz
from pyqemu.qom.cmdline import add_object_from_cmdline


def _num(name: str, text: str, size: bool) -> int:
    try:
        v = strtosz(text, "B") if size else int(text, 10)
    except (ValueError, OverflowError, QemuError):
        v = -1
    if v < 0 or (size and v == 0):
        if size:
            raise QemuError("Invalid %s specified. You may use k, M, G, T, P or E suffixes for\n"
                            "%s: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes."
                            % (name, get_progname()))
        raise QemuError("invalid number: '%s'" % text)
    return v


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "f:O:U", ["image-opts", "object=", "force-share"])
    fmt = None
    out_fmt = "raw"
    force = image_opts = False
    for k, v in opts:
        if k == "-f":
            fmt = v
        elif k == "-O":
            out_fmt = v
        elif k in ("-U", "--force-share"):
            force = True
        elif k == "--image-opts":
            image_opts = True
        elif k == "--object":
            add_object_from_cmdline(v)
    bs, count, skip = 512, None, 0
    src = dst = None
    for a in args:
        key, sep, val = a.partition("=")
        if not sep:
            raise QemuError("unrecognized operand %s" % a)
        if key == "bs":
            bs = _num("bs", val, True)
        elif key == "count":
            count = _num("count", val, False)
        elif key == "skip":
            skip = _num("skip", val, False)
        elif key == "if":
            src = val
        elif key == "of":
            dst = val
        else:
            raise QemuError("unrecognized operand %s" % a)
    if not src or not dst:
        raise QemuError("Must specify both input and output files")
    node = img_open(src, fmt, image_opts, readonly=True, force_share=force)
    try:
        # as qemu-img: count limits the input size, skip is then taken off it
        size = node.length()
        if count is not None:
            size = min(size, count * bs)
        start = skip * bs
        length = max(0, size - start)
        try:
            create_image(out_fmt, dst, length, {})
        except QemuError as exc:
            raise QemuError("%s: error while creating output image: %s" % (dst, exc.msg)) from None
        out = img_open(dst, out_fmt, readonly=False, cache="unsafe")
        try:
            pos = 0
            chunk = max(bs, (2 << 20) // bs * bs)
            zero = bytes(chunk)
            while pos < length:
                n = min(chunk, length - pos)
                data = node.pread(start + pos, n)
                if data != zero[:n]:
                    out.pwrite(pos, data)
                pos += n
        finally:
            out.close()
    finally:
        node.close()
    return 0
