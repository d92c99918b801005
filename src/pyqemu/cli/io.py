"""pyqemu-io: the image I/O exerciser, with qemu-io's command line and commands."""
from __future__ import annotations

import getopt
import sys
from typing import Dict, List, Optional, Sequence

import pyqemu.block.nbd  # noqa: F401  (registers nbd:// names with the block layer)
from pyqemu.block import BlockNode, open_image
from pyqemu.cli.io_commands import IOSession
from pyqemu.nbd.tls import parse_object, register_creds
from pyqemu.qom import cmdline as cmdline_object
from pyqemu.util.error import QemuError, error_report, run_main
from pyqemu.util.opts import keyval_parse, parse_json_filename

PROG = "pyqemu-io"
VERSION = "pyqemu-io version 7.2.0 (pyqemu)"

USAGE = """\
Usage: {prog} [OPTIONS]... [-c STRING]... [file]
Read and write a disk image with I/O commands, for tests and inspection.

  --object OBJECTDEF   create an object (secret, tls-creds-x509 for nbd:// images)
  --image-opts         the file argument is a set of block options
  -c, --cmd STRING     run a command (may be given many times)
  -f, --format FMT     image format; probed if absent
  -r, --read-only      open the image read-only
  -n, --nocache        same as -t none
  -i, --aio=MODE       threads, native or io_uring (I/O is synchronous)
  -t, --cache=MODE     cache mode of the image
  -d, --discard=MODE   ignore or unmap
  -U, --force-share    open even when another program holds the image
  -h, --help           show this text and exit
  -V, --version        show the version and exit

Without -c, commands are read from standard input; 'help' lists them.
"""

SHORT = "hc:d:f:rsnCmki:t:UvVT:"
LONG = ["help", "cmd=", "format=", "read-only", "snapshot", "nocache", "copy-on-read", "misalign",
        "native-aio", "aio=", "discard=", "cache=", "force-share", "verbose", "version", "trace=",
        "object=", "image-opts"]


def kw_cache_of(extra: Dict[str, object], cache: str) -> str:
    return str(extra.get("cache", cache))


def _open_snapshot(name: str, fmt: Optional[str], cache: str) -> BlockNode:
    """-s: a temporary qcow2 overlay over the image takes the writes."""
    from pyqemu.nbd.backend import open_snapshot_backend
    try:
        return open_snapshot_backend(name, fmt, cache=cache).node
    except QemuError as exc:
        msg = exc.msg.replace("Failed to blk_new_open '%s': " % name, "")
        raise QemuError("can't open device %s: %s" % (name, msg), hint=exc.hint, errno=exc.errno) from None


def _opener(image_opts: bool, cache: str, force_share: bool):
    def open_it(name: str, fmt: Optional[str], read_only: bool, extra: Dict[str, object]) -> BlockNode:
        spec: object = name
        if image_opts:
            if fmt:
                raise QemuError("--image-opts and -f are mutually exclusive")
            spec = parse_json_filename(name) if name.startswith("json:") else keyval_parse(name)[0]
        elif extra.get("options"):
            # open -o key=value,...: block options, with the file name (if any) as 'file'.
            tree: Dict[str, object] = {}
            for text in extra["options"]:  # type: ignore[union-attr]
                tree.update(keyval_parse(str(text))[0])
            if name:
                tree.setdefault("file", name)
            spec = tree
        if extra.get("snapshot"):
            return _open_snapshot(name, fmt, kw_cache_of(extra, cache))
        kw_cache = kw_cache_of(extra, cache)
        share = bool(extra.get("force_share", force_share))
        try:
            return open_image(spec, fmt, readonly=read_only, force_share=share, cache=kw_cache)
        except QemuError as exc:
            # qemu-io names no device for --image-opts ("can't open: ...")
            where = "" if image_opts else " device %s" % name
            raise QemuError("can't open%s: %s" % (where, exc.msg), hint=exc.hint,
                            errno=exc.errno) from None
    return open_it


def _main(argv: Sequence[str]) -> int:
    try:
        opts, args = getopt.gnu_getopt(list(argv), SHORT, LONG)
    except getopt.GetoptError as exc:
        # As qemu-io: the getopt complaint, then the usage text on stdout.
        if "requires argument" in exc.msg:
            error_report("option requires an argument -- '%s'" % exc.opt if len(exc.opt) == 1
                         else "option '--%s' requires an argument" % exc.opt)
        elif len(exc.opt) == 1:
            error_report("invalid option -- '%s'" % exc.opt)
        else:
            error_report("unrecognized option '--%s'" % exc.opt)
        sys.stdout.write(USAGE.format(prog=PROG))
        return 1
    cmds: List[str] = []
    fmt = None
    read_only = False
    cache = "writeback"
    force_share = False
    image_opts = False
    snapshot = False
    for o, v in opts:
        if o in ("-h", "--help"):
            sys.stdout.write(USAGE.format(prog=PROG))
            return 0
        if o in ("-V", "--version"):
            print(VERSION)
            return 0
        if o in ("-c", "--cmd"):
            cmds.append(v)
        elif o in ("-f", "--format"):
            fmt = v
        elif o in ("-r", "--read-only"):
            read_only = True
        elif o in ("-n", "--nocache"):
            cache = "none"
        elif o in ("-t", "--cache"):
            if v not in ("none", "writeback", "writethrough", "directsync", "unsafe"):
                raise QemuError("Invalid cache option: %s" % v)
            cache = v
        elif o in ("-U", "--force-share"):
            force_share = True
        elif o == "--image-opts":
            image_opts = True
        elif o == "--object":
            if cmdline_object.handles(v):
                cmdline_object.add_object_from_cmdline(v)
            else:
                register_creds(parse_object(v))
        elif o in ("-d", "--discard"):
            if v not in ("ignore", "off", "unmap", "on"):
                raise QemuError("Invalid discard option: %s" % v)
        elif o in ("-i", "--aio"):
            if v not in ("threads", "native", "io_uring"):
                raise QemuError("Invalid aio option: %s" % v)
        elif o in ("-s", "--snapshot"):
            snapshot = True
        elif o in ("-C", "--copy-on-read"):
            raise QemuError("-C/--copy-on-read is not supported by pyqemu-io yet")
        # -m, -k, -v, -T: accepted; they change nothing observable here.
    if len(args) > 1:
        sys.stdout.write(USAGE.format(prog=PROG))
        return 1
    session = IOSession(_opener(image_opts, cache, force_share))
    if args:
        try:
            session.node = session.opener(args[0], fmt, read_only, {"snapshot": snapshot})
        except QemuError as exc:
            error_report(exc.msg, hint=exc.hint)
            return 1
    failed = False
    try:
        if cmds:
            for c in cmds:
                if session.run(c) < 0:
                    failed = True
                if session.quit:
                    break
        else:
            failed = _interactive(session)
    finally:
        if session.node is not None:
            session.node.close()
    return 1 if failed else 0


def _interactive(session: IOSession) -> bool:
    failed = False
    while not session.quit:
        # qemu-io prompts whether or not stdin is a terminal.
        sys.stdout.write("%s> " % PROG)
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            break
        if session.run(line.strip()) < 0:
            failed = True
    return failed


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The pyqemu-io console script; returns the exit status."""
    return run_main(_main, PROG, argv)


if __name__ == "__main__":
    sys.exit(main())
