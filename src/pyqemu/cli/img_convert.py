"""pyqemu-img convert: copy one or more images (concatenated) into a new or existing target.

The source is walked by block status in chunks of up to 2 MiB: ranges that
read as zeroes are skipped on a fresh target (written as zeroes on an
existing one, ``-n``), data is read in big buffers and written minus runs
of zeroes at least ``-S`` bytes long; ``-c`` compresses whole clusters.
"""
from __future__ import annotations

import os
import re
from typing import List, Tuple

from pyqemu.block import STATUS_DATA, STATUS_ZERO, get_block_status
from pyqemu.block.open import create_image
from pyqemu.block.pipeline import IOPool, read_pieces_into
from pyqemu.cli.img import Progress, img_open, parse_args, parse_o
from pyqemu.cli.img_args import parse_offset
from pyqemu.util.error import QemuError, UsageError, strerror, warn_report
from pyqemu.qom.cmdline import add_object_from_cmdline

CHUNK = 2 << 20
# The copy runs in this thread: a writer thread behind it (IOPool(workers=1)) costs
# more in wake-ups (inter-processor interrupts, which exit to the hypervisor on
# these VMs) and GIL hand-offs than the overlap gains.  Measured with
# bench/img_convert.py's cases, 9 alternating runs: inline 0.84x/0.99x of
# qemu-img's wall time, writer thread 1.22x/1.11x.
IO_THREADS = 0
BUFFERS = 1  # one reused buffer stays in the CPU caches between its read and its write


_ZERO_RUN = re.compile(b"\\x00+")
_ZEROES = bytes(CHUNK)  # compared against, never written to (untouched pages cost nothing)


def _nonzero_runs(buf, gran: int, n: int = -1) -> List[Tuple[int, int]]:
    """(start, end) runs of ``buf[:n]`` that are not all-zero aligned blocks of
    ``gran`` bytes (the partial block at the end counts as a block).

    ``buf`` is a bytes, bytearray or mmap object (searched in place).  Only blocks
    whose first and last bytes are both zero can be zero blocks: those bytes
    are gathered with one strided copy, so data without zero blocks costs a
    few C calls per buffer instead of a scan of every byte.  Candidate blocks
    are compared against zeroes with ``find`` over exactly their length (a
    memcmp; comparing memoryviews goes byte by byte), a run of them at once.
    """
    if n < 0:
        n = len(buf)
    mv = memoryview(buf)
    zeroes = memoryview(_ZEROES)
    full = n // gran
    if full:
        span = full * gran
        first = int.from_bytes(mv[0:span:gran].tobytes(), "little")
        last = int.from_bytes(mv[gran - 1:span:gran].tobytes(), "little")
        mask = (first | last).to_bytes(full, "little")
    else:
        mask = b""
    if full * gran < n:
        mask += b"\0"  # the partial tail block is always a candidate
    runs: List[Tuple[int, int]] = []
    data_start = 0
    for m in _ZERO_RUN.finditer(mask):
        a, b = m.span()
        # candidate blocks a..b-1: zero blocks among them end data runs
        start, end = a * gran, min(b * gran, n)
        zero_blocks: List[Tuple[int, int]] = []
        if _is_zero(buf, zeroes, start, end):
            zero_blocks.append((start, end))
        else:
            for i in range(a, b):
                s, e = i * gran, min((i + 1) * gran, n)
                if _is_zero(buf, zeroes, s, e):
                    if zero_blocks and zero_blocks[-1][1] == s:
                        zero_blocks[-1] = (zero_blocks[-1][0], e)
                    else:
                        zero_blocks.append((s, e))
        for s, e in zero_blocks:
            if s > data_start:
                runs.append((data_start, s))
            data_start = e
    if data_start < n:
        runs.append((data_start, n))
    return runs


def _is_zero(buf, zeroes: memoryview, start: int, end: int) -> bool:
    while start < end:
        k = min(end - start, len(zeroes))
        if buf.find(zeroes[:k], start, start + k) != start:
            return False
        start += k
    return True


def _parse_snapshot_param(text: str):
    """``-l`` takes ``snapshot.id=...,snapshot.name=...`` or a bare id-or-name."""
    if not text.startswith("snapshot."):
        return (text, text, True)  # a bare value: id, else name
    sid = name = None
    for part in text.split(","):
        key, _, val = part.partition("=")
        if key == "snapshot.id":
            sid = val
        elif key == "snapshot.name":
            name = val
        else:
            from pyqemu.util.error import error_report
            error_report("Invalid parameter '%s'" % key)
            raise QemuError("Failed in parsing snapshot param '%s'" % text)
    return sid, name, False


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "f:O:B:F:o:l:S:t:T:m:r:cCnpqUW",
                            ["image-opts", "target-image-opts", "target-is-zero", "force-share",
                             "object=", "salvage", "bitmaps", "skip-broken-bitmaps"])
    fmt = None
    out_fmt = None
    out_base = None
    base_fmt = None
    o_values: List[str] = []
    compress = progress = quiet = no_create = force = image_opts = target_is_zero = False
    tgt_image_opts = salvage = bitmaps = skip_broken = False
    sparse = 4096
    snapshot_param = None
    cache = "unsafe"
    src_cache = "writeback"
    for k, v in opts:
        if k == "-f":
            fmt = v
        elif k == "-O":
            out_fmt = v
        elif k == "-B":
            out_base = v
        elif k == "-F":
            base_fmt = v
        elif k == "-o":
            o_values.append(v)
        elif k == "-c":
            compress = True
        elif k == "-p":
            progress = True
        elif k == "-q":
            quiet = True
        elif k == "-n":
            no_create = True
        elif k in ("-U", "--force-share"):
            force = True
        elif k == "--image-opts":
            image_opts = True
        elif k == "--target-is-zero":
            target_is_zero = True
        elif k == "--target-image-opts":
            tgt_image_opts = True
        elif k == "--salvage":
            salvage = True
        elif k == "--bitmaps":
            bitmaps = True
        elif k == "--skip-broken-bitmaps":
            skip_broken = True
        elif k == "-S":
            sparse = parse_offset(v, "buffer size for sparse output")
            if sparse % 512 or sparse > (2 << 30):
                raise QemuError("Invalid buffer size for sparse output specified. Valid sizes are "
                                "multiples of 512 up to 2147483136.")
        elif k == "-t":
            cache = v
        elif k == "-T":
            src_cache = v
        elif k in ("-m", "-W", "-C", "-l", "-r"):
            if k == "-m" and not (v.isdigit() and 1 <= int(v) <= 16):
                raise QemuError("Invalid number of coroutines. Allowed number of coroutines is "
                                "between 1 and 16")
            if k == "-l":
                snapshot_param = _parse_snapshot_param(v)
        elif k == "--object":
            add_object_from_cmdline(v)
    if quiet:
        progress = False
    if out_fmt is None and not tgt_image_opts:
        out_fmt = "raw"
    if skip_broken and not bitmaps:
        raise QemuError("Use of --skip-broken-bitmaps requires --bitmaps")
    if tgt_image_opts and not no_create:
        raise QemuError("--target-image-opts requires use of -n flag")
    if no_create and o_values:
        raise QemuError("-o has no effect when skipping image creation")
    if len(args) < 2:
        raise UsageError("Expecting image file name")
    srcs, target = args[:-1], args[-1]
    o = parse_o(o_values)
    if out_base is not None:
        o["backing_file"] = out_base
        if base_fmt:
            o["backing_fmt"] = base_fmt
    if compress and out_fmt not in ("qcow2", "vmdk"):
        raise QemuError("Compression not supported for this file format")
    # QEMU's vmdk takes compressed writes as plain ones (stream images deflate anyway),
    # but a flat target has no cluster size for -c
    vmdk_compress = compress and out_fmt == "vmdk"
    if vmdk_compress:
        compress = False
    if compress:
        from pyqemu.util.opts import parse_bool
        if o.get("encrypt.format") or parse_bool("encryption", o.get("encryption", "off")):
            raise QemuError("Compression and encryption not supported at the same time")
    if target_is_zero and not no_create:
        raise QemuError("--target-is-zero requires use of -n flag")
    nodes = []
    try:
        if bitmaps and len(srcs) > 1:
            raise QemuError("Copying bitmaps only possible with single source")
        if snapshot_param is not None and len(srcs) > 1:
            raise QemuError("No support for concatenating multiple snapshot")
        for s in srcs:
            nodes.append(img_open(s, fmt, image_opts, readonly=True, force_share=force, cache=src_cache))
        if snapshot_param is not None:
            if nodes[0].driver != "qcow2":
                raise QemuError("Failed to load snapshot: Operation not supported")
            from pyqemu.block.qcow2.snapshot import load_snapshot_readonly
            load_snapshot_readonly(nodes[0], *snapshot_param)
        total = sum(n.length() for n in nodes)
        copied_bitmaps = _source_bitmaps(nodes[0], skip_broken) if bitmaps else []
        if not no_create:
            if "backing_file" in o and "backing_fmt" not in o:
                raise QemuError("Backing file specified without backing format")
            try:
                create_image(out_fmt, target, total, o)
            except QemuError as exc:
                raise QemuError("%s: error while converting %s: %s" % (target, out_fmt, exc.msg)) from None
        # as QEMU's img_add_key_secrets: the new target is opened with the
        # key secrets its creation options named (LUKS, encrypted qcow2)
        secrets = {k: v for k, v in o.items() if k.endswith("key-secret")}
        if secrets:
            from pyqemu.block.open import open_image
            try:
                tgt = open_image(dict(secrets, file=target), out_fmt, readonly=False, cache=cache)
            except QemuError as exc:
                raise exc.prefixed("Could not open '%s'" % target) from None
        else:
            tgt = img_open(target, out_fmt, tgt_image_opts, readonly=False, cache=cache)
        try:
            if bitmaps and not (tgt.driver == "qcow2" and tgt.header.version >= 3):
                raise QemuError("Format driver '%s' does not support bitmaps" % tgt.driver)
            if no_create and tgt.length() < total:
                raise QemuError("output file is smaller than input file")
            if vmdk_compress and not tgt.cluster_size():
                raise QemuError("invalid cluster size")
            _copy(nodes, tgt, total, compress, sparse, fresh=(not no_create and getattr(tgt, "has_zero_init", True)) or target_is_zero,
                  keep_unallocated=out_base is not None, prog=Progress(progress), salvage=salvage)
            if copied_bitmaps:
                from pyqemu.block.qcow2.bitmaps import store_bitmaps
                store_bitmaps(tgt, copied_bitmaps)
            tgt.flush()
        finally:
            tgt.close()
    finally:
        for n in nodes:
            n.close()
    return 0


def _copy(nodes, tgt, total: int, compress: bool, sparse: int, fresh: bool, keep_unallocated: bool,
          prog: Progress, salvage: bool = False) -> None:
    if prog.enabled:
        # as qemu-img: the percentage is of the data to copy, not of the disk size
        total = _progress_total(nodes, count_zero=not sparse, keep_unallocated=keep_unallocated)
    if compress:
        _copy_compressed(nodes, tgt, total, prog, salvage)
        return
    # Block status is walked and metadata work done in guest order, so that a
    # qcow2 target is laid out as qemu-img lays it out.
    scan = sparse and fresh
    done = 0
    with IOPool(workers=IO_THREADS, buffers=BUFFERS, buffer_size=CHUNK) as pool:
        pool.guard(tgt)
        tgt_off = 0
        for src in nodes:
            size = src.length()
            pos = 0
            while pos < size:
                st, depth = get_block_status(src, pos, min(CHUNK, size - pos))
                n = st.length
                if keep_unallocated and depth > 0:
                    pass  # left to the target's backing file
                elif st.flags & STATUS_ZERO or not st.flags & STATUS_DATA:  # zero wins, as in QEMU
                    if not fresh:
                        tgt.pwrite_zeroes(tgt_off + pos, n, may_unmap=True)
                    elif keep_unallocated and st.flags & STATUS_ZERO:
                        tgt.pwrite_zeroes(tgt_off + pos, n)
                else:
                    buf = pool.get_buffer(n)
                    try:
                        read_pieces_into(src.read_plan(pos, n), buf)
                    except QemuError as exc:  # mapping or reading failed (a bad compressed cluster...)
                        pool.release(buf)
                        buf = memoryview(bytearray(_read_failed(src, pos, n, exc, salvage)))
                    off = tgt_off + pos
                    plans = []
                    for a, b in (_nonzero_runs(buf.obj, sparse, n) if scan else ((0, n),)):
                        plans.extend(tgt.write_plan(off + a, buf[a:b]))
                    pool.submit_writes(plans, release=buf)
                    done += n
                    prog.update(done, total)
                    pos += n
                    continue
                pos += n
                if not sparse and not (keep_unallocated and depth > 0):
                    done += n  # -S 0: zeroes are written out and counted
                    prog.update(done, total)
            tgt_off += size
    prog.finish()


def _copy_compressed(nodes, tgt, total: int, prog: Progress, salvage: bool) -> None:
    """``-c``: whole target clusters, compressed in worker threads."""
    done = 0
    cs = tgt.cluster_size() or 65536
    chunk_size = max(CHUNK - CHUNK % cs, cs)
    tgt_off = 0
    for src in nodes:
        size = src.length()
        pos = 0
        while pos < size:
            n = min(chunk_size, size - pos)
            st, depth = get_block_status(src, pos, n)
            # a cluster partly data is read and compressed whole
            if (st.flags & STATUS_DATA and not st.flags & STATUS_ZERO) or st.length < cs:
                n = min(-(-st.length // cs) * cs, size - pos)
                try:
                    data = src.pread(pos, n)
                except QemuError as exc:
                    data = _read_failed(src, pos, n, exc, salvage)
                _write_compressed(tgt, tgt_off + pos, data, cs)
                for i in range(0, n, cs):  # qemu-img counts compressed clusters one by one
                    done += min(cs, n - i)
                    prog.update(done, total)
            else:
                n = st.length - st.length % cs
            pos += n
        tgt_off += size
    prog.finish()


def _source_bitmaps(src, skip_broken: bool) -> list:
    """The persistent bitmaps ``--bitmaps`` copies: (name, flags, granularity bits, clusters)."""
    if not (src.driver == "qcow2" and src.header.version >= 3):
        raise QemuError("Source lacks bitmap support")
    from pyqemu.block.qcow2.bitmaps import bitmap_clusters, read_bitmaps
    out = []
    for bm in read_bitmaps(src):
        if bm.in_use:
            if not skip_broken:
                raise QemuError("Cannot copy inconsistent bitmap '%s'" % bm.name,
                                hint="Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to delete it")
            warn_report("Skipping inconsistent bitmap '%s'" % bm.name)
            continue
        out.append((bm.name, bm.flags, bm.gbits, bitmap_clusters(src, bm)))
    return out


def _progress_total(nodes, count_zero: bool, keep_unallocated: bool) -> int:
    """Bytes whose copying moves the progress display (qemu-img's allocated sectors)."""
    total = 0
    for src in nodes:
        size = src.length()
        pos = 0
        while pos < size:
            st, depth = get_block_status(src, pos, min(CHUNK, size - pos))
            is_data = st.flags & STATUS_DATA and not st.flags & STATUS_ZERO
            if not (keep_unallocated and depth > 0) and (is_data or count_zero):
                total += st.length
            pos += st.length
    return total


def _read_failed(src, pos: int, n: int, exc: QemuError, salvage: bool) -> bytes:
    """A source read failed: QEMU's error, or with ``--salvage`` the readable
    sectors, each unreadable one warned about and taken as zeroes."""
    reason = strerror(exc.errno) if exc.errno else exc.msg
    if not salvage:
        raise QemuError("error while reading at byte %d: %s" % (pos, reason)) from None
    parts = []
    for off in range(pos, pos + n, 512):
        k = min(512, pos + n - off)
        try:
            parts.append(src.pread(off, k))
        except QemuError as err:
            warn_report("error while reading offset %d: %s" % (off, strerror(err.errno) if err.errno
                                                                  else err.msg))
            parts.append(bytes(k))
    return b"".join(parts)


_pool = None


def _write_compressed(tgt, offset: int, data: bytes, cs: int) -> None:
    """Compress the clusters of ``data`` in worker threads (zlib and zstd release the
    GIL), then write them in order."""
    global _pool
    zero = bytes(cs)
    pieces = [(offset + i, data[i:i + cs]) for i in range(0, len(data), cs)]
    pieces = [(o, p) for o, p in pieces if p != zero[:len(p)]]
    if len(pieces) > 1:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor
            _pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
        comps = list(_pool.map(lambda op: tgt.compress_cluster(op[1]), pieces))
    else:
        comps = [None] * len(pieces)
    for (o, p), c in zip(pieces, comps):
        tgt.write_compressed(o, p, c)
