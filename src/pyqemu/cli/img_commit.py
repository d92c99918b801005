"""pyqemu-img commit [-b base] [-d] [-p] filename: write an overlay's data into a backing file."""
from __future__ import annotations

from typing import List

from pyqemu.block import STATUS_DATA, STATUS_ZERO, get_block_status
from pyqemu.block.open import open_image
from pyqemu.cli.img import Progress, img_open, out, parse_args
from pyqemu.util.error import QemuError, UsageError
from pyqemu.qom.cmdline import add_object_from_cmdline

CHUNK = 2 << 20


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "f:t:b:r:dpq", ["image-opts", "object="])
    fmt = None
    base_name = None
    drop = quiet = progress = image_opts = False
    cache = "unsafe"
    for k, v in opts:
        if k == "-f":
            fmt = v
        elif k == "-t":
            cache = v
        elif k == "-b":
            base_name = v
            drop = True  # -b implies -d: the images in between become invalid
        elif k == "-d":
            drop = True
        elif k == "-p":
            progress = True
        elif k == "-q":
            quiet = True
        elif k == "--image-opts":
            image_opts = True
        elif k == "--object":
            add_object_from_cmdline(v)
    if quiet:
        progress = False
    if len(args) != 1:
        raise UsageError("Expecting one image file name", hint="Try 'pyqemu-img --help' for more information")
    filename = args[0]
    # the chain is read with force-share (we are its only user); the base is opened writable
    chain = img_open(filename, fmt, image_opts, readonly=True, force_share=True, cache=cache)
    try:
        if chain.backing is None:
            raise QemuError("Image does not have a backing file")
        depth, base = 1, chain.backing
        if base_name is not None:
            import os
            want = os.path.realpath(base_name)
            while base is not None and os.path.realpath(base.filename) != want:
                base, depth = base.backing, depth + 1
            if base is None:
                raise QemuError("Base '%s' not found" % base_name)
        base_path, base_fmt = base.filename, base.driver
        target = open_image(base_path, base_fmt, readonly=False, cache=cache, backing=None)
        try:
            size = chain.length()
            if target.length() < size:
                target.truncate(size)
            prog = Progress(progress)
            pos = 0
            while pos < size:
                st, d = get_block_status(chain, pos, min(CHUNK, size - pos))
                n = st.length
                if d < depth and st.flags & STATUS_DATA:
                    target.pwrite(pos, chain.pread(pos, n))
                elif d < depth and st.flags & STATUS_ZERO:
                    target.pwrite_zeroes(pos, n)
                pos += n
                prog.update(pos, size)
            prog.finish()
            target.flush()
        finally:
            target.close()
    finally:
        chain.close()
    if not drop:
        top = img_open(filename, fmt, image_opts, readonly=False, cache=cache, no_backing=True)
        try:
            if hasattr(top, "make_empty"):
                top.make_empty()
        finally:
            top.close()
    out("Image committed.\n", quiet)
    return 0
