"""pyqemu-io's commands (read, write, map, ...) with qemu-io's syntax and output.

Each command gets its argument words, parses them with getopt as qemu-io
does, prints what qemu-io prints and returns 0 or a negative errno.  The
"aio_" commands run synchronously: their output is that of the synchronous
command, printed when the request completes.
"""
from __future__ import annotations

import errno
import getopt
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

from pyqemu.block import STATUS_ALLOCATED, BlockNode, node_block_status
from pyqemu.util.error import QemuError, error_report
from pyqemu.util.opts import strtosz

REQUEST_MAX = 2147483136          # QEMU's BDRV_REQUEST_MAX_BYTES
_UNITS = ((1 << 60, " EiB"), (1 << 50, " PiB"), (1 << 40, " TiB"), (1 << 30, " GiB"),
          (1 << 20, " MiB"), (1 << 10, " KiB"))


def cvtstr(value: float) -> str:
    """qemu-io's human size: three decimals, '.000' dropped."""
    for unit, suffix in _UNITS:
        if value >= unit:
            text = "%.3f" % (value / unit)
            break
    else:
        suffix = " bytes"
        text = "%f" % value
    i = text.find(".000")
    return text[:i] + suffix if i >= 0 else text + suffix


def timestr(seconds: float, fixed: bool = False) -> str:
    if fixed or seconds >= 3600:
        h, rest = divmod(seconds, 3600)
        m, s = divmod(rest, 60)
        return "%u:%02u:%05.2f" % (h, m, s)
    return "%05.2f sec" % seconds


def report(total: int, count: int, elapsed: float, terse: bool) -> None:
    rate = total / elapsed if elapsed > 0 else 0.0
    ops = count / elapsed if elapsed > 0 else 0.0
    if terse:
        print("%d,%d,%s,%.3f,%.3f" % (total, count, timestr(elapsed, True), rate, ops))
    else:
        print("%s, %d ops; %s (%s/sec and %.4f ops/sec)" % (cvtstr(total), count, timestr(elapsed),
                                                             cvtstr(rate), ops))


class CommandError(Exception):
    """A command failed after printing its own message; carries the negative errno."""

    def __init__(self, ret: int) -> None:
        super().__init__(ret)
        self.ret = ret


def cvtnum(text: str) -> int:
    try:
        value = strtosz(text)
    except OverflowError:
        print("Parsing error: argument too large -- %s" % text)
        raise CommandError(-errno.ERANGE) from None
    except ValueError:
        print("Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- %s" % text)
        raise CommandError(-errno.EINVAL) from None
    if value > (1 << 63) - 1:
        print("Parsing error: argument too large -- %s" % text)
        raise CommandError(-errno.ERANGE)
    return value


def parse_pattern(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value <= 255:
        print("%s is not a valid pattern byte" % text)
        raise CommandError(-errno.EINVAL)
    return value


def dump(data: bytes, offset: int) -> None:
    out = []
    for i in range(0, len(data), 16):
        row = data[i:i + 16]
        hexes = "".join("%02x " % b for b in row)
        text = "".join(chr(b) if chr(b).isalnum() and b < 128 else "." for b in row)
        out.append("%08x:  %s %s" % (offset + i, hexes, text))
    if out:
        print("\n".join(out))


class Command:
    def __init__(self, name: str, fn: Callable[["IOSession", List[str]], int], argmin: int,
                 argmax: int, args: Optional[str], oneline: str, needs_file: bool = True,
                 altname: Optional[str] = None, writes: bool = False) -> None:
        self.name = name
        self.fn = fn
        self.argmin = argmin
        self.argmax = argmax
        self.args = args
        self.oneline = oneline
        self.needs_file = needs_file
        self.altname = altname
        self.writes = writes

    def summary(self) -> str:
        """``name [args] -- what it does``, the line qemu-io's help prints."""
        # qemu-io keeps a space for an empty (but present) argument list, as 'map' has.
        return "%s%s -- %s" % (self.name, "" if self.args is None else " " + self.args, self.oneline)


class IOSession:
    """The state qemu-io keeps between commands: the open image."""

    def __init__(self, opener: Callable[[str, Optional[str], bool, Dict[str, object]], BlockNode]) -> None:
        self.node: Optional[BlockNode] = None
        self.opener = opener
        self.quit = False

    # -- dispatch ---------------------------------------------------------------
    def run(self, line: str) -> int:
        words = line.split()
        if not words:
            return 0
        cmd = COMMANDS.get(words[0]) or ALIASES.get(words[0])
        if cmd is None:
            sys.stdout.flush()
            sys.stderr.write('command "%s" not found\n' % words[0])
            return -errno.EINVAL
        if cmd.needs_file and self.node is None:
            sys.stdout.flush()
            sys.stderr.write("no file open, try 'help open'\n")
            return -errno.EINVAL
        if cmd.writes and self.node is not None and self.node.read_only:
            # Checked before the arguments, as qemu-io does for commands needing write permission.
            sys.stdout.flush()
            error_report("Block node is read-only")
            return -errno.EACCES
        argc = len(words) - 1
        if argc < cmd.argmin or (cmd.argmax >= 0 and argc > cmd.argmax):
            sys.stdout.flush()
            if cmd.argmax == -1:
                sys.stderr.write("bad argument count %d to %s, expected at least %d arguments\n"
                                 % (argc, cmd.name, cmd.argmin))
            elif cmd.argmin == cmd.argmax:
                sys.stderr.write("bad argument count %d to %s, expected %d arguments\n"
                                 % (argc, cmd.name, cmd.argmin))
            else:
                sys.stderr.write("bad argument count %d to %s, expected between %d and %d arguments\n"
                                 % (argc, cmd.name, cmd.argmin, cmd.argmax))
            return -errno.EINVAL
        try:
            return cmd.fn(self, words[1:])
        except CommandError as exc:
            return exc.ret
        finally:
            sys.stdout.flush()

    def usage(self, name: str) -> int:
        print(COMMANDS[name].summary())
        return -errno.EINVAL

    def getopt(self, name: str, args: List[str], spec: str) -> Tuple[List[Tuple[str, str]], List[str]]:
        try:
            return getopt.gnu_getopt(args, spec)
        except getopt.GetoptError as exc:
            sys.stdout.flush()
            if "requires argument" in exc.msg:
                sys.stderr.write("%s: option requires an argument -- '%s'\n" % (name, exc.opt))
            else:
                sys.stderr.write("%s: invalid option -- '%s'\n" % (name, exc.opt))
            self.usage(name)
            raise CommandError(-errno.EINVAL) from None

    def writable(self) -> None:
        if self.node is not None and self.node.read_only:
            sys.stdout.flush()
            error_report("Block node is read-only")
            raise CommandError(-errno.EACCES)

    def check_range(self, offset: int, count: int, given: str) -> None:
        if count > REQUEST_MAX:
            print("length cannot exceed %d, given %s" % (REQUEST_MAX, given))
            raise CommandError(-errno.EINVAL)

    def io(self, what: str, fn: Callable[[], object]) -> object:
        """Run one request; report a failure as qemu-io does ('read failed: ...')."""
        try:
            return fn()
        except QemuError as exc:
            err = exc.errno or errno.EIO
        except OSError as exc:
            err = exc.errno or errno.EIO
        print("%s failed: %s" % (what, os.strerror(err)))
        raise CommandError(-err)


def _pattern_check(data: bytes, pattern: int, start: int, count: int, offset: int) -> bool:
    region = data[start:start + count]
    if region != bytes([pattern]) * len(region):
        print("Pattern verification failed at offset %d, %d bytes" % (offset + start, count))
        return False
    return True


def cmd_read(s: IOSession, args: List[str]) -> int:
    opts, rest = s.getopt("read", args, "abCqvpP:s:l:")
    terse = quiet = verbose = False
    pattern: Optional[int] = None
    p_off = 0
    p_len: Optional[int] = None
    for o, v in opts:
        if o == "-C":
            terse = True
        elif o == "-q":
            quiet = True
        elif o == "-v":
            verbose = True
        elif o == "-P":
            pattern = parse_pattern(v)
        elif o == "-s":
            p_off = cvtnum(v)
        elif o == "-l":
            p_len = cvtnum(v)
        elif o in ("-a", "-b"):
            print("vmstate read is not supported by pyqemu-io")
            return -errno.ENOTSUP
    if len(rest) != 2:
        return s.usage("read")
    offset, count = cvtnum(rest[0]), cvtnum(rest[1])
    s.check_range(offset, count, rest[1])
    if (p_off or p_len is not None) and pattern is None:
        return s.usage("read")
    if p_len is None:
        p_len = count - p_off
    if p_off + p_len > count:
        print("pattern verification range exceeds end of read data")
        return -errno.EINVAL
    node = s.node
    assert node is not None
    if offset + count > node.length():
        # Checked before allocating the buffer: a bogus length costs nothing.
        print("read failed: %s" % os.strerror(errno.EIO))
        return -errno.EIO
    t0 = time.perf_counter()
    data = s.io("read", lambda: node.pread(offset, count))
    elapsed = time.perf_counter() - t0
    ret = 0
    if pattern is not None and not _pattern_check(data, pattern, p_off, p_len, offset):
        ret = -errno.EINVAL
    if quiet:
        return ret
    if verbose:
        dump(data, offset)
    if not terse:
        print("read %d/%d bytes at offset %d" % (count, count, offset))
    report(count, 1, elapsed, terse)
    return ret


def cmd_write(s: IOSession, args: List[str]) -> int:
    opts, rest = s.getopt("write", args, "bcCfnpP:quzs:")
    source: Optional[str] = None
    terse = quiet = zero = unmap = compressed = fua = no_fallback = False
    pattern = 0xCD
    have_pattern = False
    for o, v in opts:
        if o == "-C":
            terse = True
        elif o == "-q":
            quiet = True
        elif o == "-z":
            zero = True
        elif o == "-u":
            unmap = True
        elif o == "-c":
            compressed = True
        elif o == "-f":
            fua = True
        elif o == "-P":
            pattern = parse_pattern(v)
            have_pattern = True
        elif o == "-s":
            source = v
        elif o == "-n":
            no_fallback = True
        elif o == "-b":
            print("vmstate write is not supported by pyqemu-io")
            return -errno.ENOTSUP
    if len(rest) != 2:
        return s.usage("write")
    if int(zero) + int(have_pattern) + int(source is not None) > 1:
        print("Only one of -z, -P, and -s can be specified at the same time")
        return -errno.EINVAL
    if unmap and not zero:
        print("-u requires -z to be specified")
        return -errno.EINVAL
    if no_fallback and not zero:
        print("-n requires -z to be specified")
        return -errno.EINVAL
    if compressed and zero:
        print("-c and -z cannot be specified at the same time")
        return -errno.EINVAL
    offset, count = cvtnum(rest[0]), cvtnum(rest[1])
    s.check_range(offset, count, rest[1])
    if compressed:
        for value, what in ((offset, "offset"), (count, "count")):
            if value % 512:
                print("%d is not a sector-aligned value for '%s'" % (value, what))
                return -errno.EINVAL
    s.writable()
    node = s.node
    assert node is not None
    if offset + count > node.length():
        print("write failed: %s" % os.strerror(errno.EIO))
        return -errno.EIO
    t0 = time.perf_counter()
    if zero:
        s.io("write", lambda: node.pwrite_zeroes(offset, count, may_unmap=unmap))
    elif compressed:
        writer = getattr(node, "write_compressed", None)
        if writer is None:
            print("write failed: %s" % os.strerror(errno.ENOTSUP))
            return -errno.ENOTSUP
        cs = node.cluster_size() or 1
        if offset % cs or (count != cs and offset + count != node.length()):
            # Compressed writes cover exactly one cluster (or the image's tail).
            print("write failed: %s" % os.strerror(errno.EINVAL))
            return -errno.EINVAL
        s.io("write", lambda: writer(offset, bytes([pattern]) * count))
    else:
        if source is not None:
            buf = _read_source(source, count)
            if buf is None:
                return -errno.EINVAL
        else:
            buf = bytes([pattern]) * count
        s.io("write", lambda: node.pwrite(offset, buf))
    if fua:
        s.io("write", node.flush)
    elapsed = time.perf_counter() - t0
    if not quiet:
        if not terse:
            print("wrote %d/%d bytes at offset %d" % (count, count, offset))
        report(count, 1, elapsed, terse)
    return 0


def _read_source(path: str, count: int) -> Optional[bytes]:
    """The write buffer from ``write -s FILE``: the file's bytes, repeated to fill ``count``."""
    try:
        with open(path, "rb") as f:
            data = f.read(count)
    except OSError as exc:
        sys.stdout.flush()
        sys.stderr.write("%s: %s\n" % (path, os.strerror(exc.errno or errno.EIO)))
        return None
    if not data:
        return bytes(count)
    return (data * (count // len(data) + 1))[:count]


def _vector(s: IOSession, name: str, args: List[str], spec: str) -> Tuple[dict, int, List[int]]:
    opts, rest = s.getopt(name, args, spec)
    flags = dict(opts)
    if len(rest) < 2:
        s.usage(name)
        raise CommandError(-errno.EINVAL)
    offset = cvtnum(rest[0])
    lens = [cvtnum(a) for a in rest[1:]]
    return flags, offset, lens


def cmd_readv(s: IOSession, args: List[str], name: str = "readv") -> int:
    flags, offset, lens = _vector(s, name, args, "CP:qv")
    total = sum(lens)
    s.check_range(offset, total, str(total))
    node = s.node
    assert node is not None
    if offset + total > node.length():
        print("%s failed: %s" % ("readv" if name == "readv" else "aio_read", os.strerror(errno.EIO)))
        return -errno.EIO
    t0 = time.perf_counter()
    data = s.io("readv" if name == "readv" else "aio_read", lambda: node.pread(offset, total))
    elapsed = time.perf_counter() - t0
    ret = 0
    if "-P" in flags and not _pattern_check(data, parse_pattern(flags["-P"]), 0, total, offset):
        ret = -errno.EINVAL
    if "-q" in flags:
        return ret
    if "-v" in flags:
        dump(data, offset)
    if "-C" not in flags:
        print("read %d/%d bytes at offset %d" % (total, total, offset))
    report(total, 1, elapsed, "-C" in flags)
    return ret


def cmd_writev(s: IOSession, args: List[str], name: str = "writev") -> int:
    flags, offset, lens = _vector(s, name, args, "CfqP:")
    pattern = parse_pattern(flags["-P"]) if "-P" in flags else 0xCD
    total = sum(lens)
    s.check_range(offset, total, str(total))
    s.writable()
    node = s.node
    assert node is not None
    what = "writev" if name == "writev" else "aio_write"
    if offset + total > node.length():
        print("%s failed: %s" % (what, os.strerror(errno.EIO)))
        return -errno.EIO
    t0 = time.perf_counter()
    s.io(what, lambda: node.pwrite(offset, bytes([pattern]) * total))
    if "-f" in flags:
        s.io(what, node.flush)
    elapsed = time.perf_counter() - t0
    if "-q" not in flags:
        if "-C" not in flags:
            print("wrote %d/%d bytes at offset %d" % (total, total, offset))
        report(total, 1, elapsed, "-C" in flags)
    return 0


def cmd_aio_read(s: IOSession, args: List[str]) -> int:
    args = [a for a in args if a != "-i"]
    return cmd_readv(s, args, "aio_read")


def cmd_aio_write(s: IOSession, args: List[str]) -> int:
    opts, rest = s.getopt("aio_write", args, "CfiqP:uz")
    flags = dict(opts)
    if "-z" in flags:
        if len(rest) != 2:
            return s.usage("aio_write")
        sub = ["-z"] + (["-u"] if "-u" in flags else []) + (["-q"] if "-q" in flags else []) + rest
        return cmd_write(s, sub)
    sub = [o + v for o, v in opts if o in ("-C", "-f", "-q")]
    if "-P" in flags:
        sub += ["-P", flags["-P"]]
    return cmd_writev(s, sub + rest, "aio_write")


def cmd_discard(s: IOSession, args: List[str]) -> int:
    opts, rest = s.getopt("discard", args, "Cq")
    flags = dict(opts)
    if len(rest) != 2:
        return s.usage("discard")
    offset, count = cvtnum(rest[0]), cvtnum(rest[1])
    s.check_range(offset, count, rest[1])
    s.writable()
    node = s.node
    assert node is not None
    if offset + count > node.length():
        print("discard failed: %s" % os.strerror(errno.EIO))
        return -errno.EIO
    t0 = time.perf_counter()
    s.io("discard", lambda: node.discard(offset, count))
    elapsed = time.perf_counter() - t0
    if "-q" not in flags:
        if "-C" not in flags:
            print("discard %d/%d bytes at offset %d" % (count, count, offset))
        report(count, 1, elapsed, "-C" in flags)
    return 0


def cmd_flush(s: IOSession, args: List[str]) -> int:
    node = s.node
    assert node is not None
    s.io("flush", node.flush)
    return 0


def cmd_aio_flush(s: IOSession, args: List[str]) -> int:
    return cmd_flush(s, args)


def cmd_truncate(s: IOSession, args: List[str]) -> int:
    opts, rest = s.getopt("truncate", args, "m:")
    prealloc = dict(opts).get("-m", "off")
    if len(rest) != 1:
        return s.usage("truncate")
    size = cvtnum(rest[0])
    node = s.node
    assert node is not None
    try:
        node.truncate(size, prealloc)
    except QemuError as exc:
        sys.stdout.flush()
        error_report(exc.msg)
        return -(exc.errno or errno.EINVAL)
    return 0


def cmd_length(s: IOSession, args: List[str]) -> int:
    node = s.node
    assert node is not None
    print(cvtstr(node.length()))
    return 0


def _vm_state_offset(node: BlockNode) -> int:
    cs = node.cluster_size()
    if node.driver != "qcow2" or not cs:
        return 0
    per_l1 = cs * (cs // 8)
    return -(-node.length() // per_l1) * per_l1


def _has_info(node: BlockNode) -> bool:
    """Whether QEMU's bdrv_get_info succeeds: raw asks its file, and only files answer."""
    if node.driver == "raw":
        return node.file is not None and node.file.driver in ("file", "host_device")
    return node.driver == "qcow2"


def cmd_info(s: IOSession, args: List[str]) -> int:
    node = s.node
    assert node is not None
    print("format name: %s" % node.driver)
    if not _has_info(node):
        return 0
    print("cluster size: %s" % cvtstr(node.cluster_size()))
    print("vm state offset: %s" % cvtstr(_vm_state_offset(node)))
    spec = node.get_info()
    if spec:
        from pyqemu.cli.img_json import qdict_order
        print("Format specific information:")
        for k in qdict_order(list(spec)):
            v = spec[k]
            if isinstance(v, bool):
                v = "true" if v else "false"
            print("    %s: %s" % (k.replace("-", " "), v))
    return 0


def _allocated_above(node: BlockNode, offset: int, length: int) -> Tuple[bool, int]:
    """Whether any layer of the chain allocates ``offset``, and for how many bytes."""
    cur: Optional[BlockNode] = node
    while cur is not None:
        if offset >= cur.length():
            break
        st = node_block_status(cur, offset, length)
        if st.length <= 0:
            break
        if st.flags & STATUS_ALLOCATED:
            return True, st.length
        length = st.length
        cur = cur.backing
    return False, length


def cmd_map(s: IOSession, args: List[str]) -> int:
    node = s.node
    assert node is not None
    size = node.length()
    offset = 0
    while offset < size:
        alloc, n = _allocated_above(node, offset, size - offset)
        # Merge runs with the same status, as qemu-io does.
        while offset + n < size:
            a2, n2 = _allocated_above(node, offset + n, size - offset - n)
            if a2 != alloc:
                break
            n += n2
        print("%s (0x%x) bytes %s allocated at offset %s (0x%x)"
              % (cvtstr(n), n, "   " if alloc else "not", cvtstr(offset), offset))
        offset += n
    return 0


def cmd_alloc(s: IOSession, args: List[str]) -> int:
    node = s.node
    assert node is not None
    offset = cvtnum(args[0])
    count = cvtnum(args[1]) if len(args) > 1 else 512
    remaining, pos, total = count, offset, 0
    while remaining > 0:
        if pos >= node.length():
            break
        st = node_block_status(node, pos, remaining)
        if st.length <= 0:
            break
        if st.flags & STATUS_ALLOCATED:
            total += st.length
        pos += st.length
        remaining -= st.length
    print("%d/%d bytes allocated at offset %s" % (total, count, cvtstr(offset)))
    return 0


def cmd_open(s: IOSession, args: List[str]) -> int:
    if s.node is not None:
        sys.stdout.flush()
        error_report("file open already, try 'help close'")
        return -errno.EBUSY
    opts, rest = s.getopt("open", args, "Crsnkt:d:f:o:U")
    flags: Dict[str, object] = {}
    read_only = False
    fmt = None
    for o, v in opts:
        if o == "-r":
            read_only = True
        elif o == "-n":
            flags["cache"] = "none"
        elif o == "-t":
            flags["cache"] = v
        elif o == "-f":
            fmt = v
        elif o == "-U":
            flags["force_share"] = True
        elif o == "-s":
            flags["snapshot"] = True
        elif o == "-o":
            flags.setdefault("options", []).append(v)  # type: ignore[union-attr]
    if len(rest) > 1:
        return s.usage("open")
    name = rest[0] if rest else ""
    try:
        s.node = s.opener(name, fmt, read_only, flags)
    except QemuError as exc:
        sys.stdout.flush()
        error_report(exc.msg, hint=exc.hint)
        return -(exc.errno or errno.EINVAL)
    return 0


def cmd_close(s: IOSession, args: List[str]) -> int:
    if s.node is not None:
        s.node.close()
        s.node = None
    return 0


def cmd_quit(s: IOSession, args: List[str]) -> int:
    s.quit = True
    return 0


def cmd_sleep(s: IOSession, args: List[str]) -> int:
    try:
        ms = int(args[0], 0)
        if ms < 0:
            raise ValueError
    except ValueError:
        print("Invalid value for milliseconds")
        return -errno.EINVAL
    time.sleep(ms / 1000.0)
    return 0


def cmd_help(s: IOSession, args: List[str]) -> int:
    if args:
        cmd = COMMANDS.get(args[0]) or ALIASES.get(args[0])
        if cmd is None:
            print("command %s not found" % args[0])
            return -errno.EINVAL
        print(cmd.summary())
        return 0
    for name in sorted(COMMANDS):
        print(COMMANDS[name].summary())
    print("\nUse 'help commandname' for extended help.")
    return 0


_TABLE = [
    Command("aio_flush", cmd_aio_flush, 0, 0, None, "completes all outstanding aio requests"),
    Command("aio_read", cmd_aio_read, 2, -1, "[-Ciqv] [-P pattern] off len [len..]",
            "asynchronously reads a number of bytes"),
    Command("aio_write", cmd_aio_write, 2, -1, "[-Cfiquz] [-P pattern] off len [len..]",
            "asynchronously writes a number of bytes", writes=True),
    Command("alloc", cmd_alloc, 1, 2, "offset [count]",
            "checks if offset is allocated in the file"),
    Command("close", cmd_close, 0, 0, None, "close the current open file", altname="c"),
    Command("discard", cmd_discard, 2, -1, "[-Cq] off len",
            "discards a number of bytes at a specified offset", altname="d", writes=True),
    Command("flush", cmd_flush, 0, 0, None, "flush all in-core file state to disk", altname="f"),
    Command("help", cmd_help, 0, 1, "[command]", "help for one or all commands", needs_file=False,
            altname="?"),
    Command("info", cmd_info, 0, 0, None, "prints information about the current file"),
    Command("length", cmd_length, 0, 0, None, "gets the length of the current file", altname="l"),
    Command("map", cmd_map, 0, 0, "", "prints the allocated areas of a file"),
    Command("open", cmd_open, 1, -1, "[-rsnkU] [-t cache] [-d discard] [-o options] [path]",
            "open the file specified by path", needs_file=False, altname="o"),
    Command("quit", cmd_quit, 0, 0, None, "exit the program", needs_file=False, altname="q"),
    Command("read", cmd_read, 2, -1, "[-abCqv] [-P pattern [-s off] [-l len]] off len",
            "reads a number of bytes at a specified offset", altname="r"),
    Command("readv", cmd_readv, 2, -1, "[-Cqv] [-P pattern] off len [len..]",
            "reads a number of bytes at a specified offset"),
    Command("sleep", cmd_sleep, 1, 1, None, "waits for the given value in milliseconds", needs_file=False),
    Command("truncate", cmd_truncate, 1, 3, "[-m prealloc_mode] off",
            "truncates the current file at the given offset", altname="t", writes=True),
    Command("write", cmd_write, 2, -1, "[-bcCfnquz] [-P pattern | -s source_file] off len",
            "writes a number of bytes at a specified offset", altname="w", writes=True),
    Command("writev", cmd_writev, 2, -1, "[-Cfq] [-P pattern] off len [len..]",
            "writes a number of bytes at a specified offset", writes=True),
]
COMMANDS: Dict[str, Command] = {c.name: c for c in _TABLE}
ALIASES: Dict[str, Command] = {c.altname: c for c in _TABLE if c.altname}
