"""pyqemu-img bench: timed read (or -w write) requests against an image."""
from __future__ import annotations

import time
from typing import List

from pyqemu.cli.img import img_open, parse_args
from pyqemu.util.error import QemuError
from pyqemu.util.opts import strtosz
from pyqemu.qom.cmdline import add_object_from_cmdline


def _int(name: str, text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        v = -1
    if v < 0:
        raise QemuError("Invalid %s specified" % name)
    return v


def _size(name: str, text: str) -> int:
    try:
        v = strtosz(text, "B")
    except (ValueError, OverflowError, QemuError):
        raise QemuError("Invalid %s specified" % name) from None
    return v


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "c:d:f:ni:o:qs:S:t:wU",
                            ["flush-interval=", "no-drain", "pattern=", "image-opts", "force-share",
                             "object="])
    fmt = None
    count, depth, offset, bufsize = 75000, 64, 0, 4096
    step = None
    write = force = image_opts = False
    pattern = 0
    flush_interval = 0
    cache = "writeback"
    for k, v in opts:
        if k == "-c":
            count = _int("request count", v)
        elif k == "-d":
            depth = _int("queue depth", v)
        elif k == "-f":
            fmt = v
        elif k == "-n":
            cache = "none"
        elif k == "-o":
            offset = _size("offset", v)
        elif k == "-s":
            bufsize = _size("buffer size", v)
        elif k == "-S":
            step = _size("step size", v)
        elif k == "-t":
            cache = v
        elif k == "-w":
            write = True
        elif k in ("-U", "--force-share"):
            force = True
        elif k == "--pattern":
            pattern = _int("pattern byte", v) & 0xFF
        elif k == "--flush-interval":
            flush_interval = _int("flush interval", v)
        elif k == "--image-opts":
            image_opts = True
        elif k == "--object":
            add_object_from_cmdline(v)
    if len(args) != 1:
        raise QemuError("Expecting one image file name")
    if step is None:
        step = bufsize
    if flush_interval and not write:
        raise QemuError("--flush-interval is only available in write tests")
    node = img_open(args[0], fmt, image_opts, readonly=not write, force_share=force, cache=cache)
    try:
        size = node.length()
        print("Sending %d %s requests, %d bytes each, %d in parallel (starting at offset %d, step size %d)"
              % (count, "write" if write else "read", bufsize, depth, offset, step))
        if flush_interval:
            print("Sending flush every %d requests" % flush_interval)
        buf = bytes([pattern]) * bufsize
        pos = offset
        t0 = time.perf_counter()
        for i in range(count):
            if pos + bufsize > size:
                pos = offset  # wrap around as qemu-img does at the end of the image
                if pos + bufsize > size:
                    raise QemuError("Request beyond the end of the image")
            if write:
                node.pwrite(pos, buf)
                if flush_interval and (i + 1) % flush_interval == 0:
                    node.flush()
            else:
                node.pread(pos, bufsize)
            pos += step
        if write:
            node.flush()
        print("Run completed in %3.3f seconds." % (time.perf_counter() - t0))
    finally:
        node.close()
    return 0
