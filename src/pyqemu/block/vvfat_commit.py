"""vvfat ``rw``: reading the FAT file system the guest has written, and writing it back to the host.

After every write the whole tree is parsed from the disk as the guest now
sees it (directory entries with their VFAT long names, cluster chains from
the first FAT).  If it is consistent (no loops, no cluster used twice, no
chain shorter than its file, no name that could leave the directory), the
host directory is brought in line with it: entries whose first cluster
moved to another name are renamed, files whose clusters or size changed
are rewritten, new files and directories are created.  Files and
directories the guest deleted are left on the host, as QEMU 7.2 leaves
them.  An inconsistent state (the guest is half way through an update)
is left alone until a later write completes it, as QEMU does.  Names
without a long name are taken from the short name in lower case.
"""
from __future__ import annotations

import os
import struct
from typing import Callable, Dict, List, NamedTuple, Set, Tuple

ENTRY = 32


class Node(NamedTuple):
    is_dir: bool
    first_cluster: int
    size: int
    clusters: Tuple[int, ...]


class Inconsistent(Exception):
    """The guest's file system is not in a state that can be committed."""


def _lfn_chars(e: bytes) -> bytes:
    return e[1:11] + e[14:26] + e[28:32]


def _checksum(short: bytes) -> int:
    chk = 0
    for c in short:
        chk = ((((chk & 0xFE) >> 1) | (0x80 if chk & 1 else 0)) + c) & 0xFF
    return chk


def _short_to_name(e: bytes) -> str:
    base = bytearray(e[:8].rstrip(b" "))
    ext = e[8:11].rstrip(b" ")
    if base[:1] == b"\x05":
        base[0] = 0xE5
    name = base.decode("latin-1").lower()
    if ext:
        name += "." + ext.decode("latin-1").lower()
    return name


def parse_directory(data: bytes) -> List[Tuple[str, int, int, int]]:
    """(name, attributes, first cluster, size) of the live entries of one directory's bytes."""
    out = []
    lfn: Dict[int, bytes] = {}
    lfn_count = lfn_sum = -1
    for at in range(0, len(data) - ENTRY + 1, ENTRY):
        e = data[at:at + ENTRY]
        if e[0] == 0:
            break
        if e[0] == 0xE5:
            lfn = {}
            continue
        attr = e[11]
        if attr == 0x0F:
            seq = e[0] & 0x3F
            if e[0] & 0x40:
                lfn, lfn_count, lfn_sum = {}, seq, e[13]
            if e[13] != lfn_sum or not 1 <= seq <= 20:
                lfn = {}
                continue
            lfn[seq] = _lfn_chars(e)
            continue
        if attr & 0x08:   # volume label
            lfn = {}
            continue
        short = bytes(e[:11])
        name = None
        if lfn and len(lfn) == lfn_count and lfn_sum == _checksum(short) and \
                set(lfn) == set(range(1, lfn_count + 1)):
            units = b"".join(lfn[i] for i in range(1, lfn_count + 1))
            text = units.decode("utf-16-le", "replace")
            name = text.split("\0", 1)[0]
        if name is None:
            name = _short_to_name(short)
        lfn = {}
        first = struct.unpack_from("<H", e, 26)[0] | struct.unpack_from("<H", e, 20)[0] << 16
        size = struct.unpack_from("<I", e, 28)[0]
        out.append((name, attr, first, size))
    return out


def read_tree(read_cluster: Callable[[int], bytes], fat_next: Callable[[int], int], root: bytes,
              cluster_size: int, cluster_count: int, eof_min: int) -> Dict[str, Node]:
    """Every file and directory below the root, by relative path; raises Inconsistent."""
    tree: Dict[str, Node] = {}
    used: Set[int] = set()

    def chain(first: int, limit: int) -> Tuple[int, ...]:
        out = []
        c = first
        while True:
            if c < 2 or c > cluster_count or c in used:
                raise Inconsistent("bad cluster %d" % c)
            used.add(c)
            out.append(c)
            if len(out) > limit:
                raise Inconsistent("chain too long")
            n = fat_next(c)
            if n >= eof_min:
                return tuple(out)
            c = n

    todo: List[Tuple[str, bytes]] = [("", root)]
    while todo:
        prefix, data = todo.pop(0)
        seen: Set[str] = set()
        for name, attr, first, size in parse_directory(data):
            if name in (".", ".."):
                continue
            if not name or "/" in name or "\0" in name or name.lower() in seen:
                raise Inconsistent("bad name %r" % name)
            seen.add(name.lower())
            path = prefix + name
            if attr & 0x10:
                if first == 0:
                    raise Inconsistent("directory without clusters")
                cl = chain(first, cluster_count)
                tree[path] = Node(True, first, 0, cl)
                todo.append((path + "/", b"".join(read_cluster(c) for c in cl)))
            else:
                need = (size + cluster_size - 1) // cluster_size
                cl = chain(first, need) if first else ()
                if len(cl) < need or (size == 0 and first):
                    raise Inconsistent("file %s shorter than its size" % path)
                tree[path] = Node(False, first, size, cl)
    return tree


def apply(root: str, old: Dict[str, Node], new: Dict[str, Node], written: Set[int],
          copy_out: Callable[[Node, str], None]) -> None:
    """Make the host directory ``root`` match ``new`` (``old`` is what it matches now)."""
    by_first = {n.first_cluster: p for p, n in old.items() if n.first_cluster}
    renamed: Dict[str, str] = {}
    for path, n in sorted(new.items(), key=lambda kv: kv[0].count("/")):
        src = by_first.get(n.first_cluster) if n.first_cluster else None
        if src is not None and src != path and src not in new and old[src].is_dir == n.is_dir \
                and path not in old:
            os.renames(os.path.join(root, _apply_renames(src, renamed)), os.path.join(root, path))
            renamed[src] = path
    old_now = _rebase(old, renamed)
    # entries the guest deleted stay on the host: QEMU 7.2 does not delete them either, and
    # a half-finished guest update can never cost the user a file
    for path, n in sorted(new.items(), key=lambda kv: kv[0].count("/")):
        host = os.path.join(root, path)
        prev = old_now.get(path)
        if n.is_dir:
            if prev is None or not prev.is_dir:
                if prev is not None and os.path.lexists(host):
                    os.unlink(host)
                os.makedirs(host, exist_ok=True)
            continue
        if prev is not None and not prev.is_dir and prev.clusters == n.clusters and \
                prev.size == n.size and not written.intersection(n.clusters):
            continue
        if prev is not None and prev.is_dir:
            _rmtree(host)
        copy_out(n, host)


def _apply_renames(path: str, renamed: Dict[str, str]) -> str:
    for src, dst in renamed.items():
        if path == src or path.startswith(src + "/"):
            return dst + path[len(src):]
    return path


def _rebase(old: Dict[str, Node], renamed: Dict[str, str]) -> Dict[str, Node]:
    return {_apply_renames(p, renamed): n for p, n in old.items()}


def _rmtree(path: str) -> None:
    if not os.path.isdir(path) or os.path.islink(path):
        if os.path.lexists(path):
            os.unlink(path)
        return
    for name in os.listdir(path):
        _rmtree(os.path.join(path, name))
    os.rmdir(path)


def write_file(path: str, chunks, size: int) -> None:
    """Write ``size`` bytes from ``chunks`` to ``path`` through a temporary name in its directory."""
    tmp = path + ".vvfat-tmp"
    done = 0
    with open(tmp, "wb") as f:
        for data in chunks:
            take = min(len(data), size - done)
            f.write(data[:take])
            done += take
            if done >= size:
                break
    os.replace(tmp, path)

