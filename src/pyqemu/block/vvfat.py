"""Protocol driver ``vvfat``: a host directory seen as a FAT12/16/32 disk (``fat:[floppy:][:12:|:16:|:32:]dir``).

Read-only, laid out as QEMU 7.2 does so that the same directory gives the
same bytes: a hard disk has an MBR with one partition at sector 63 (64
cylinders for FAT12, 1024 otherwise, 16 heads, 63 sectors), a floppy has
the boot sector at 0 (80 cylinders, 2 heads, 18 or 36 sectors).  Clusters
are always 16 sectors.  After the boot sector come two copies of the FAT,
the root directory (512 entries, volume label first), then the clusters of
every file and subdirectory in the order the directories are walked
(breadth first, entries in ``readdir`` order).  Long names get VFAT
entries; short names and their ``~N`` tails follow QEMU's rules; times
come from ``stat`` in local time.

QEMU reads a file's last, partial cluster into a buffer that still holds
the previous file cluster it read, so bytes past the end of a file repeat
earlier data; this driver keeps such a buffer too, which makes whole-disk
reads in the same order byte-identical.

With ``rw`` the guest's writes go to a temporary overlay and, whenever the
file system they leave is consistent, are committed to the host directory
(vvfat_commit.py).
"""
from __future__ import annotations

import json
import os
import stat as stat_mod
import struct
import sys
import time
from typing import Any, Dict, List, Optional

from pyqemu.block.node import STATUS_DATA, BlockNode, BlockStatus
from pyqemu.util.error import QemuError, warn_report

SECTOR = 512
SECTORS_PER_CLUSTER = 0x10
CLUSTER = SECTOR * SECTORS_PER_CLUSTER
ENTRY = 32
MODE_DIR, MODE_FILE = 1, 2
_SHORT_OK = set(b"$%'-_@~`!(){}^#&")


def parse_filename(name: str) -> Dict[str, Any]:
    """``fat:...`` -> the options QEMU's vvfat_parse_filename fills in."""
    if not name.startswith("fat:"):
        raise QemuError("File name string must start with 'fat:'")
    fat_type = 32 if ":32:" in name else 16 if ":16:" in name else 12 if ":12:" in name else 0
    i = name.rfind(":")
    if i >= 2 and name[i - 2] == ":" and name[i - 1].isalpha():
        d = name[i - 1:]   # a DOS drive letter (c:...) stays in the name
    else:
        d = name[i + 1:]
    return {"driver": "vvfat", "dir": d, "fat-type": fat_type, "floppy": ":floppy:" in name,
            "rw": ":rw:" in name}


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    from pyqemu.util.opts import parse_bool
    return parse_bool("", str(v))


def _fat_datetime(t: float, want_time: bool) -> int:
    tm = time.localtime(int(t))
    if want_time:
        return (tm.tm_sec // 2) | (tm.tm_min << 5) | (tm.tm_hour << 11)
    return (tm.tm_mday | (tm.tm_mon << 5) | ((tm.tm_year - 1980) << 9)) & 0xFFFF


def _short_char(c: int) -> int:
    """QEMU's to_valid_short_char, including how C's strchr sees a wide character."""
    ch = chr(c).upper()
    c = ord(ch) if len(ch) == 1 else c
    if 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A:
        return c
    low = c & 0xFF
    if low == 0 or low in _SHORT_OK:
        return low
    return 0


class _Mapping:
    __slots__ = ("begin", "end", "dir_index", "mode", "path", "parent", "first_dir_index", "size")

    def __init__(self, mode: int, path: str, dir_index: int, size: int = 0, parent: int = -1) -> None:
        self.begin = 0
        self.end = 0
        self.mode = mode
        self.path = path
        self.dir_index = dir_index
        self.size = size
        self.parent = parent
        self.first_dir_index = 0


def open_vvfat(options: Dict[str, Any], read_only: bool) -> "VvfatNode":
    return VvfatNode(options, read_only)


class VvfatNode(BlockNode):
    driver = "vvfat"

    def __init__(self, options: Dict[str, Any], read_only: bool) -> None:
        super().__init__(options, read_only)
        known = ("driver", "dir", "fat-type", "floppy", "rw", "label", "node-name", "cache",
                 "read-only", "force-share", "filename")
        for k in options:
            if k not in known:
                raise QemuError("Invalid parameter '%s'" % k)
        d = options.get("dir")
        if d is None:
            raise QemuError("vvfat block driver requires a 'dir' option")
        self.dirname = str(d)
        try:
            self.fat_type = int(options.get("fat-type", 0))
        except ValueError:
            raise QemuError("Parameter 'fat-type' expects a number") from None
        floppy = _bool(options.get("floppy", False))
        label = options.get("label")
        if label is not None:
            raw = str(label).encode()
            if len(raw) > 11:
                raise QemuError("vvfat label cannot be longer than 11 bytes")
            self.volume_label = raw.ljust(11, b" ")
        else:
            self.volume_label = b"QEMU VVFAT ".ljust(11)
        if floppy:
            if not self.fat_type:
                self.fat_type, secs = 12, 36
            else:
                secs = 18 if self.fat_type == 12 else 36
            cyls, heads = 80, 2
            self.offset_to_bootsector = 0
        else:
            if not self.fat_type:
                self.fat_type = 16
            self.offset_to_bootsector = 0x3F
            cyls = 64 if self.fat_type == 12 else 1024
            heads, secs = 16, 63
        if self.fat_type == 32:
            warn_report("FAT32 has not been tested. You are welcome to do so!")
            sys.stderr.flush()
        elif self.fat_type not in (12, 16):
            raise QemuError("Valid FAT types are only 12, 16 and 32")
        self.rw = _bool(options.get("rw", False))
        if self.rw and read_only:
            raise QemuError("Unable to set VVFAT to 'rw' when drive is read-only", errno=1)
        if not self.rw and not read_only:
            raise QemuError("Image is read-only", errno=30)
        self.total_sectors = cyls * heads * secs
        self.sector_count = self.total_sectors - self.offset_to_bootsector
        self.filename = 'json:' + json.dumps({"driver": "raw", "file": {
            "fat-type": int(options.get("fat-type", 0)), "dir": self.dirname, "driver": "vvfat",
            "floppy": floppy, "rw": self.rw}})
        self._build(heads, secs)
        if self.offset_to_bootsector > 0:
            self._init_mbr(cyls, heads, secs)
        self.sector_count = self.offset_to_root_dir + SECTORS_PER_CLUSTER * self.cluster_count
        # QEMU's cluster buffer: the tail of a short read keeps what the last file read left
        self._buffer = bytearray(CLUSTER)
        self._current_cluster = -1
        self._current_mapping: Optional[_Mapping] = None
        self._cluster_view: bytes = b""
        if self.rw:
            self._start_write_target()

    # --- building the disk ----------------------------------------------------------
    def _fat_set(self, cluster: int, value: int) -> None:
        fat = self.fat
        if self.fat_type == 32:
            struct.pack_into("<I", fat, cluster * 4, value & 0xFFFFFFFF)
        elif self.fat_type == 16:
            struct.pack_into("<H", fat, cluster * 2, value & 0xFFFF)
        else:
            off = cluster * 3 // 2
            if cluster & 1 == 0:
                fat[off] = value & 0xFF
                fat[off + 1] = (fat[off + 1] & 0xF0) | ((value >> 8) & 0xF)
            else:
                fat[off] = (fat[off] & 0xF) | ((value & 0xF) << 4)
                fat[off + 1] = (value >> 4) & 0xFF

    def _new_entry(self) -> int:
        self.directory.extend(bytes(ENTRY))
        return len(self.directory) // ENTRY - 1

    def _entries(self) -> int:
        return len(self.directory) // ENTRY

    def _long_name(self, name: str) -> Optional[int]:
        try:
            name.encode("utf-8")
            units = name.encode("utf-16-le")
        except UnicodeEncodeError:
            sys.stderr.write("vvfat: invalid UTF-8 name: %s\n" % name)
            return None
        length = len(units) // 2
        count = (length * 2 + 25) // 26
        first = self._entries()
        for i in range(count):
            e = self._new_entry() * ENTRY
            self.directory[e + 11] = 0x0F
            self.directory[e] = (count - i) | (0x40 if i == 0 else 0)
        buf = units + b"\0\0"
        for i in range(26 * count):
            off = i % 26
            off = 1 + off if off < 10 else 14 + off - 10 if off < 22 else 28 + off - 22
            e = (self._entries() - 1 - i // 26) * ENTRY
            self.directory[e + off] = buf[i] if i < len(buf) else 0xFF
        return first

    def _short_name(self, name: str, directory_start: int) -> int:
        idx = self._new_entry()
        e = idx * ENTRY
        short = bytearray(b" " * 11)
        lossy = False
        last_dot = -1
        j = 0
        for pos, ch in enumerate(name):
            if ch == ".":
                if j == 0:
                    lossy = True
                else:
                    if last_dot >= 0:
                        lossy = True
                    last_dot = pos
            elif last_dot < 0:
                v = _short_char(ord(ch))
                if j < 8 and v:
                    short[j] = v
                    j += 1
                else:
                    lossy = True
        if last_dot >= 0:
            j = 0
            for ch in name[last_dot + 1:]:
                v = _short_char(ord(ch))
                if j < 3 and v:
                    short[8 + j] = v
                    j += 1
                else:
                    lossy = True
        if short[0] == 0xE5:
            short[0] = 0x05
        j = next((k for k in range(8) if short[k] == 0x20), 8)
        for i in range(1 if lossy else 0, 999999):
            if i > 0:
                tail = ("~%d" % i).encode()
                at = min(j, 8 - len(tail))
                short[at:at + len(tail)] = tail
            dupe = False
            for k in range(directory_start, idx):
                other = self.directory[k * ENTRY:k * ENTRY + 11]
                if self.directory[k * ENTRY + 11] != 0x0F and other == short:
                    dupe = True
                    break
            if not dupe:
                break
        self.directory[e:e + 11] = short
        return idx

    def _name_entries(self, name: str, directory_start: int) -> int:
        long_first = self._long_name(name)
        idx = self._short_name(name, directory_start)
        if long_first is not None:
            chk = 0
            for c in self.directory[idx * ENTRY:idx * ENTRY + 11]:
                chk = ((((chk & 0xFE) >> 1) | (0x80 if chk & 1 else 0)) + c) & 0xFF
            for k in range(long_first, idx):
                if self.directory[k * ENTRY + 11] != 0x0F:
                    break
                self.directory[k * ENTRY + 13] = chk
        return idx

    def _fill_entry(self, idx: int, st: os.stat_result) -> None:
        e = idx * ENTRY
        d = self.directory
        d[e + 11] = 0x10 if stat_mod.S_ISDIR(st.st_mode) else 0x20
        d[e + 12] = d[e + 13] = 0
        struct.pack_into("<HHHH", d, e + 14, _fat_datetime(st.st_ctime, True),
                         _fat_datetime(st.st_ctime, False), _fat_datetime(st.st_atime, False), 0)
        struct.pack_into("<HH", d, e + 22, _fat_datetime(st.st_mtime, True),
                         _fat_datetime(st.st_mtime, False))

    def _set_begin(self, idx: int, begin: int) -> None:
        struct.pack_into("<H", self.directory, idx * ENTRY + 26, begin & 0xFFFF)
        struct.pack_into("<H", self.directory, idx * ENTRY + 20, (begin >> 16) & 0xFFFF)

    def _read_directory(self, mi: int) -> None:
        m = self.mappings[mi]
        first_cluster = m.begin
        parent_begin = self.mappings[m.parent].begin if m.parent >= 0 else -1
        try:
            names = os.listdir(m.path)   # readdir order, as QEMU walks it
        except OSError:
            raise QemuError("Could not read directory %s" % m.path) from None
        start = m.first_dir_index = 0 if first_cluster == 0 else self._entries()
        if first_cluster != 0:
            for dots in (".", ".."):
                e = self._new_entry() * ENTRY
                self.directory[e:e + 11] = dots.encode().ljust(11, b" ")
            names = [".", ".."] + names   # listdir omits them; readdir gives them first
        for name in names:
            if first_cluster == 0 and self._entries() >= self.root_entries - 1:
                sys.stderr.write("Too many entries in root directory\n")
                raise QemuError("Could not read directory %s" % m.path)
            is_dot, is_dotdot = name == ".", name == ".."
            if first_cluster == 0 and (is_dot or is_dotdot):
                continue
            path = "%s/%s" % (m.path, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if is_dot or is_dotdot:
                idx = start if is_dot else start + 1
            else:
                idx = self._name_entries(name, start)
            self._fill_entry(idx, st)
            is_dir = stat_mod.S_ISDIR(st.st_mode)
            if is_dotdot:
                self._set_begin(idx, parent_begin)
            elif is_dot:
                self._set_begin(idx, first_cluster)
            if st.st_size > 0x7FFFFFFF and not is_dir:
                sys.stderr.write("File %s is larger than 2GB\n" % path)
                raise QemuError("Could not read directory %s" % m.path)
            struct.pack_into("<I", self.directory, idx * ENTRY + 28, 0 if is_dir else st.st_size)
            if not is_dot and not is_dotdot and (is_dir or st.st_size):
                self.mappings.append(_Mapping(MODE_DIR if is_dir else MODE_FILE, path,
                                              self._entries() - 1, st.st_size, mi))
        per_cluster = 0x10 * SECTORS_PER_CLUSTER
        while self._entries() % per_cluster:
            self._new_entry()
        if self.fat_type != 32 and mi == 0 and self._entries() < self.root_entries:
            self.directory.extend(bytes((self.root_entries - self._entries()) * ENTRY))
        m.end = first_cluster + (self._entries() - m.first_dir_index) * ENTRY // CLUSTER
        self._set_begin(m.dir_index, m.begin)

    def _build(self, heads: int, secs: int) -> None:
        self.first_sectors = bytearray(0x40 * SECTOR)
        i = 1 + CLUSTER * 8 // self.fat_type
        self.sectors_per_fat = (self.sector_count + i) // i
        self.offset_to_fat = self.offset_to_bootsector + 1
        self.offset_to_root_dir = self.offset_to_fat + self.sectors_per_fat * 2
        self.directory = bytearray(ENTRY)
        self.directory[:11] = self.volume_label
        self.directory[11] = 0x28
        fat_bytes = self.sectors_per_fat * SECTOR
        self.fat = bytearray(fat_bytes * 3 // 2 if self.fat_type == 12 else fat_bytes)
        self.max_fat_value = {12: 0xFFF, 16: 0xFFFF, 32: 0x0FFFFFFF}[self.fat_type]
        self.root_entries = 0x02 * 0x10 * SECTORS_PER_CLUSTER
        self.cluster_count = (self.sector_count - self.offset_to_root_dir) // SECTORS_PER_CLUSTER
        root = self.dirname[:-1] if self.dirname.endswith("/") and len(self.dirname) > 0 else self.dirname
        self.mappings: List[_Mapping] = [_Mapping(MODE_DIR, root, 0)]
        cluster = 0
        mi = 0
        while mi < len(self.mappings):
            m = self.mappings[mi]
            fix_fat = mi != 0
            if m.mode == MODE_DIR:
                m.begin = cluster
                self._read_directory(mi)
            else:
                m.begin = cluster
                m.end = cluster + 1 + (m.size - 1) // CLUSTER
                self._set_begin(m.dir_index, m.begin)
            cluster = m.end
            if cluster > self.cluster_count:
                raise QemuError("Directory does not fit in FAT%d (capacity %.2f MB)"
                                % (self.fat_type, self.sector_count / 2000.0))
            if fix_fat:
                for j in range(m.begin, m.end - 1):
                    self._fat_set(j, j + 1)
                self._fat_set(m.end - 1, self.max_fat_value)
            mi += 1
        self._fat_set(0, self.max_fat_value)
        self._fat_set(1, self.max_fat_value)
        self._begins = [m.begin for m in self.mappings]
        # past the last cluster in use every sector reads as zeroes
        self._data_end = (self.offset_to_root_dir + cluster * SECTORS_PER_CLUSTER) * SECTOR

        bs = self.offset_to_bootsector * SECTOR
        media = 0xF8 if self.offset_to_bootsector > 0 else 0xF0
        self.fat[0] = media
        sc = self.sector_count
        struct.pack_into("<3s8sHBHBHHBHHHII", self.first_sectors, bs, b"\xeb\x3e\x90", b"MSWIN4.1",
                         SECTOR, SECTORS_PER_CLUSTER, 1, 2, self.root_entries,
                         0 if sc > 0xFFFF else sc, media, self.sectors_per_fat & 0xFFFF, secs, heads,
                         self.offset_to_bootsector, sc if sc > 0xFFFF else 0)
        struct.pack_into("<BBBI11s8s", self.first_sectors, bs + 36,
                         0 if self.offset_to_bootsector == 0 else 0x80, 0, 0x29, 0xFABE1AFD,
                         self.volume_label, b"FAT12   " if self.fat_type == 12 else b"FAT16   ")
        self.first_sectors[bs + 510:bs + 512] = b"\x55\xaa"

    @staticmethod
    def _chs(spos: int, cyls: int, heads: int, secs: int):
        sector = spos % secs
        spos //= secs
        head = spos % heads
        spos //= heads
        if spos >= cyls:
            return b"\xff\xff\xff", 1
        return bytes((head, ((sector + 1) | ((spos >> 8) << 6)) & 0xFF, spos & 0xFF)), 0

    def _init_mbr(self, cyls: int, heads: int, secs: int) -> None:
        mbr = self.first_sectors
        mbr[:SECTOR] = bytes(SECTOR)
        struct.pack_into("<I", mbr, 0x1B8, 0xBE1AFDFA)
        start, lba1 = self._chs(self.offset_to_bootsector, cyls, heads, secs)
        end, lba2 = self._chs(self.total_sectors - 1, cyls, heads, secs)
        lba = lba1 | lba2
        fs_type = 0x1 if self.fat_type == 12 else (0xE if lba else 0x06) if self.fat_type == 16 \
            else (0xC if lba else 0x0B)
        struct.pack_into("<B3sB3sII", mbr, 0x1BE, 0x80, start, fs_type, end, self.offset_to_bootsector,
                         self.total_sectors - self.offset_to_bootsector)
        mbr[510:512] = b"\x55\xaa"

    # --- reading -------------------------------------------------------------------
    def length(self) -> int:
        return self.total_sectors * SECTOR

    def get_allocated_file_size(self) -> int:
        return -1

    def _find_mapping(self, cluster: int) -> Optional[_Mapping]:
        import bisect
        i = bisect.bisect_right(self._begins, cluster) - 1
        if i < 0:
            return None
        m = self.mappings[i]
        return m if m.begin <= cluster < m.end else None

    def _read_cluster(self, cluster: int) -> bool:
        if self._current_cluster == cluster:
            return True
        m = self._current_mapping
        if m is None or not m.begin <= cluster < m.end:
            m = self._find_mapping(cluster)
            if m is None:
                return False
        if m.mode == MODE_DIR:
            self._current_mapping = m
            off = CLUSTER * (cluster - m.begin) + ENTRY * m.first_dir_index
            self._cluster_view = bytes(self.directory[off:off + CLUSTER])
            self._current_cluster = cluster
            return True
        try:
            with open(m.path, "rb") as f:
                f.seek(CLUSTER * (cluster - m.begin))
                data = f.read(CLUSTER)
        except OSError:
            return False
        self._current_mapping = m
        self._buffer[:len(data)] = data
        self._cluster_view = bytes(self._buffer)
        self._current_cluster = cluster
        return True

    def _read_sector(self, sector: int) -> bytes:
        if sector < self.offset_to_root_dir:
            if sector < self.offset_to_fat:
                return bytes(self.first_sectors[sector * SECTOR:(sector + 1) * SECTOR])
            at = (sector - self.offset_to_fat) % self.sectors_per_fat * SECTOR
            return bytes(self.fat[at:at + SECTOR])
        rel = sector - self.offset_to_root_dir
        cluster, within = divmod(rel, SECTORS_PER_CLUSTER)
        if cluster > self.cluster_count or not self._read_cluster(cluster):
            return bytes(SECTOR)
        return self._cluster_view[within * SECTOR:(within + 1) * SECTOR]

    def _base_pread(self, offset: int, length: int) -> bytes:
        if offset >= self._data_end:
            return bytes(length)
        first = offset // SECTOR
        last = (offset + length + SECTOR - 1) // SECTOR
        out = []
        sector = first
        root = self.offset_to_root_dir
        while sector < last:
            if sector < root:
                out.append(self._read_sector(sector))
                sector += 1
                continue
            cluster, within = divmod(sector - root, SECTORS_PER_CLUSTER)
            n = min(last - sector, SECTORS_PER_CLUSTER - within)
            if cluster > self.cluster_count or not self._read_cluster(cluster):
                out.append(bytes(n * SECTOR))   # no file there: zeroes, the buffer untouched
            else:
                out.append(self._cluster_view[within * SECTOR:(within + n) * SECTOR])
            sector += n
        data = b"".join(out)
        skip = offset - first * SECTOR
        return data[skip:skip + length]

    def pread(self, offset: int, length: int) -> bytes:
        self.check_io(offset, length)
        if not self.rw:
            return self._base_pread(offset, length)
        first = offset // SECTOR
        last = (offset + length + SECTOR - 1) // SECTOR
        data = bytearray(self._base_pread(first * SECTOR, (last - first) * SECTOR))
        bitmap = self._written
        for s in range(first, last):
            if bitmap[s >> 3] & (1 << (s & 7)):
                at = (s - first) * SECTOR
                data[at:at + SECTOR] = os.pread(self._overlay.fileno(), SECTOR, s * SECTOR)
        skip = offset - first * SECTOR
        return bytes(data[skip:skip + length])

    # --- rw: guest writes kept in a temporary overlay, committed to the directory -----
    def _start_write_target(self) -> None:
        import tempfile
        from pyqemu.block import vvfat_commit
        self._overlay = tempfile.TemporaryFile(prefix="vvfat.")
        self._written = bytearray((self.total_sectors + 7) // 8)
        self._dirty_clusters: set = set()
        self._commit = vvfat_commit
        try:
            self._tree = self._read_tree()
        except vvfat_commit.Inconsistent:
            self._tree = {}

    def _mark(self, sector: int) -> None:
        self._written[sector >> 3] |= 1 << (sector & 7)
        if sector >= self.offset_to_root_dir:
            self._dirty_clusters.add((sector - self.offset_to_root_dir) // SECTORS_PER_CLUSTER)

    def pwrite(self, offset: int, data: bytes) -> None:
        if not self.rw:
            raise QemuError("Permission denied", errno=13)
        self.check_io(offset, len(data))
        first = offset // SECTOR
        last = (offset + len(data) + SECTOR - 1) // SECTOR
        buf = bytearray(self.pread(first * SECTOR, (last - first) * SECTOR))
        skip = offset - first * SECTOR
        buf[skip:skip + len(data)] = data
        os.pwrite(self._overlay.fileno(), bytes(buf), first * SECTOR)
        for s in range(first, last):
            self._mark(s)
        self._try_commit()

    def _cluster_bytes(self, cluster: int) -> bytes:
        return self.pread((self.offset_to_root_dir + cluster * SECTORS_PER_CLUSTER) * SECTOR, CLUSTER)

    def _read_tree(self) -> Dict[str, Any]:
        fat = self.pread(self.offset_to_fat * SECTOR, self.sectors_per_fat * SECTOR)
        ft = self.fat_type

        def fat_next(c: int) -> int:
            if ft == 32:
                return struct.unpack_from("<I", fat, c * 4)[0] & 0x0FFFFFFF if c * 4 + 4 <= len(fat) else 0
            if ft == 16:
                return struct.unpack_from("<H", fat, c * 2)[0] if c * 2 + 2 <= len(fat) else 0
            off = c * 3 // 2
            if off + 2 > len(fat):
                return 0
            v = fat[off] | fat[off + 1] << 8
            return v >> 4 if c & 1 else v & 0xFFF

        root_clusters = self.mappings[0].end
        root = b"".join(self._cluster_bytes(c) for c in range(root_clusters))
        eof = {12: 0xFF8, 16: 0xFFF8, 32: 0x0FFFFFF8}[ft]
        return self._commit.read_tree(self._cluster_bytes, fat_next, root, CLUSTER,
                                      self.cluster_count, eof)

    def _try_commit(self) -> None:
        try:
            new = self._read_tree()
        except self._commit.Inconsistent:
            return   # the guest is half way through an update
        old = self._tree
        changing = [n for p, n in old.items() if not n.is_dir and
                    (new.get(p) != n or self._dirty_clusters.intersection(n.clusters))]
        for n in changing:
            # keep the guest's view of these clusters once the host file changes under them
            for c in n.clusters:
                self._materialize(c)
        root = self.mappings[0].path

        def copy_out(node: Any, host: str) -> None:
            self._commit.write_file(host, (self._cluster_bytes(c) for c in node.clusters), node.size)

        try:
            self._commit.apply(root, old, new, self._dirty_clusters, copy_out)
        except OSError as exc:
            raise QemuError("vvfat: could not commit to '%s': %s" % (root, os.strerror(exc.errno or 5)),
                            errno=exc.errno) from None
        self._tree = new
        self._dirty_clusters = set()

    def _materialize(self, cluster: int) -> None:
        start = self.offset_to_root_dir + cluster * SECTORS_PER_CLUSTER
        data = self._base_pread(start * SECTOR, CLUSTER)
        for i in range(SECTORS_PER_CLUSTER):
            s = start + i
            if not self._written[s >> 3] & (1 << (s & 7)):
                os.pwrite(self._overlay.fileno(), data[i * SECTOR:(i + 1) * SECTOR], s * SECTOR)
                self._written[s >> 3] |= 1 << (s & 7)

    def _close(self) -> None:
        if self.rw:
            self._overlay.close()

    def block_status(self, offset: int, length: int) -> BlockStatus:
        # QEMU's vvfat has no block status: all data, without a host offset
        return BlockStatus(STATUS_DATA, max(0, min(length, self.length() - offset)))
