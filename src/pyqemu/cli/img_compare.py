"""pyqemu-img compare: exit 0 identical, 1 different, 2 error opening, 4 error reading."""
from __future__ import annotations

from typing import List

from pyqemu.block import STATUS_DATA, STATUS_ZERO, get_block_status
from pyqemu.cli.img import Progress, img_open, out, parse_args
from pyqemu.util.error import QemuError, error_report
from pyqemu.qom.cmdline import add_object_from_cmdline

CHUNK = 1 << 20


def _first_diff(a: bytes, b: bytes) -> int:
    """Offset of the 512-byte sector holding the first differing byte (QEMU reports sectors)."""
    lo, hi = 0, len(a)
    while hi - lo > 4096:
        mid = (lo + hi) // 2
        if a[lo:mid] != b[lo:mid]:
            hi = mid
        else:
            lo = mid
    for i in range(lo, hi):
        if a[i] != b[i]:
            return i & ~511
    return lo & ~511


def main(argv: List[str]) -> int:
    try:
        opts, args = parse_args(argv, "f:F:T:pqsU", ["image-opts", "force-share", "object="])
    except QemuError as exc:
        error_report(exc.msg, hint=exc.hint)
        return 2
    fmt1 = fmt2 = None
    quiet = strict = progress = force = image_opts = False
    cache = "writeback"
    for k, v in opts:
        if k == "-f":
            fmt1 = v
        elif k == "-F":
            fmt2 = v
        elif k == "-q":
            quiet = True
        elif k == "-s":
            strict = True
        elif k == "-p":
            progress = True
        elif k in ("-U", "--force-share"):
            force = True
        elif k == "--image-opts":
            image_opts = True
        elif k == "-T":
            cache = v
        elif k == "--object":
            try:
                add_object_from_cmdline(v)
            except QemuError as exc:
                error_report(exc.msg, hint=exc.hint)
                return 1
    if quiet:
        progress = False
    if len(args) != 2:
        error_report("Expecting two image file names")
        return 2
    try:
        a = img_open(args[0], fmt1, image_opts, readonly=True, force_share=force, cache=cache)
    except QemuError as exc:
        error_report(exc.msg, hint=exc.hint)
        return 2
    try:
        b = img_open(args[1], fmt2, image_opts, readonly=True,
                     force_share=force, cache=cache)
    except QemuError as exc:
        a.close()
        error_report(exc.msg, hint=exc.hint)
        return 2
    try:
        return _compare(a, b, args, quiet, strict, Progress(progress))
    except QemuError as exc:
        error_report(exc.msg, hint=exc.hint)
        return 4
    finally:
        a.close()
        b.close()


def _compare(a, b, names, quiet: bool, strict: bool, prog: Progress) -> int:
    la, lb = a.length(), b.length()
    common = min(la, lb)
    total = max(la, lb)
    pos = 0
    while pos < common:
        n = min(CHUNK, common - pos)
        sa, _ = get_block_status(a, pos, n)
        sb, _ = get_block_status(b, pos, n)
        n = min(n, sa.length, sb.length)
        za = not sa.flags & STATUS_DATA and bool(sa.flags & STATUS_ZERO or not sa.flags)
        zb = not sb.flags & STATUS_DATA and bool(sb.flags & STATUS_ZERO or not sb.flags)
        if strict and (sa.flags & (STATUS_DATA | STATUS_ZERO)) != (sb.flags & (STATUS_DATA | STATUS_ZERO)) \
                and not (za and zb):
            out("Strict mode: Offset %d block status mismatch!\n" % pos, quiet)
            return 1
        if not (za and zb):
            da = bytes(n) if za else a.pread(pos, n)
            db = bytes(n) if zb else b.pread(pos, n)
            if da != db:
                out("Content mismatch at offset %d!\n" % (pos + _first_diff(da, db)), quiet)
                return 1
        pos += n
        prog.update(pos, total)
    if la != lb:
        if strict:
            out("Strict mode: Image size mismatch!\n", quiet)
            return 1
        out("Warning: Image size mismatch!\n", quiet)
        big = a if la > lb else b
        zero = bytes(CHUNK)
        while pos < total:
            n = min(CHUNK, total - pos)
            st, _ = get_block_status(big, pos, n)
            n = min(n, st.length)
            if st.flags & STATUS_DATA:
                d = big.pread(pos, n)
                if d != zero[:n]:
                    out("Content mismatch at offset %d!\n" % (pos + _first_diff(d, zero[:n])), quiet)
                    return 1
            pos += n
            prog.update(pos, total)
    prog.finish()
    out("Images are identical.\n", quiet)
    return 0
