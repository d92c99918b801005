"""pyqemu-img rebase [-u] -b backing_file [-F backing_fmt] filename.

Safe mode (without ``-u``) copies into the image every range it does not
allocate itself and where the old and the new backing file differ, so the
guest-visible content stays the same; then the header names the new file.
"""
from __future__ import annotations

from typing import List, Optional

from pyqemu.block import BlockNode
from pyqemu.block.node import STATUS_DATA, STATUS_ZERO
from pyqemu.block.open import open_image, resolve_backing_path
from pyqemu.cli.img import Progress, img_open, parse_args
from pyqemu.util.error import QemuError, UsageError
from pyqemu.qom.cmdline import add_object_from_cmdline

CHUNK = 1 << 20


def _read(node: Optional[BlockNode], off: int, n: int) -> bytes:
    if node is None:
        return bytes(n)
    size = node.length()
    if off >= size:
        return bytes(n)
    return node.pread(off, min(n, size - off)).ljust(n, b"\0")


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "b:F:f:t:T:puqU", ["image-opts", "object=", "force-share"])
    fmt = None
    base: Optional[str] = None
    base_fmt = None
    unsafe = quiet = progress = image_opts = False
    cache, src_cache = "writeback", "writeback"
    for k, v in opts:
        if k == "-b":
            base = v
        elif k == "-F":
            base_fmt = v
        elif k == "-f":
            fmt = v
        elif k == "-u":
            unsafe = True
        elif k == "-q":
            quiet = True
        elif k == "-p":
            progress = True
        elif k == "-t":
            cache = v
        elif k == "-T":
            src_cache = v
        elif k == "--image-opts":
            image_opts = True
        elif k == "--object":
            add_object_from_cmdline(v)
    if quiet:
        progress = False
    if len(args) != 1:
        raise UsageError("Expecting one image file name", hint="Try 'pyqemu-img --help' for more information")
    if base is None:
        raise UsageError("Must specify backing file (-b) or use unsafe mode (-u)",
                         hint="Try 'pyqemu-img --help' for more information")
    filename = args[0]
    node = img_open(filename, fmt, image_opts, readonly=False, cache=cache, no_backing=True)
    try:
        if base and not unsafe:
            # safe mode opens the new backing file (probing it) before anything else
            path = resolve_backing_path(node.filename, base)
            try:
                open_image(path, base_fmt, readonly=True, force_share=True).close()
            except QemuError as exc:
                raise QemuError("Could not open new backing file '%s': %s" % (base, exc.msg)) from None
        if base and not base_fmt:
            raise QemuError("Could not change the backing file to '%s': backing format must be specified"
                            % base)
        if node.driver != "qcow2":
            raise QemuError("Could not change the backing file to '%s': Operation not supported" % base)
        if not unsafe:
            _safe_rebase(node, filename, base, base_fmt, src_cache, Progress(progress))
        try:
            node.set_backing(base or None, base_fmt)
        except QemuError as exc:
            raise exc.prefixed("Could not change the backing file to '%s'" % base) from None
    finally:
        node.close()
    return 0


def _safe_rebase(node, filename: str, base: str, base_fmt: Optional[str], cache: str, prog: Progress) -> None:
    old_name = node.backing_filename()
    old = new = None
    try:
        if old_name:
            path = resolve_backing_path(node.filename, old_name)
            try:
                old = open_image(path, node.backing_format(), readonly=True, force_share=True, cache=cache)
            except QemuError as exc:
                raise QemuError("Could not open old backing file '%s': %s" % (path, exc.msg)) from None
        if base:
            path = resolve_backing_path(node.filename, base)
            try:
                new = open_image(path, base_fmt, readonly=True, force_share=True, cache=cache)
            except QemuError as exc:
                raise QemuError("Could not open new backing file '%s': %s" % (base, exc.msg)) from None
        size = node.length()
        pos = 0
        while pos < size:
            n = min(CHUNK, size - pos)
            # the driver's own answer: unallocated ranges have neither DATA nor ZERO
            raw = node.block_status(pos, n)
            n = min(n, raw.length) if raw.length > 0 else n
            if not raw.flags & (STATUS_DATA | STATUS_ZERO):
                a = _read(old, pos, n)
                b = _read(new, pos, n)
                if a != b:
                    node.pwrite(pos, a)
            pos += n
            prog.update(pos, size)
        prog.finish()
    finally:
        for x in (old, new):
            if x is not None:
                x.close()
