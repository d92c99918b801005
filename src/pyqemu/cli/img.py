"""pyqemu-img: the qemu-img command line over :mod:`pyqemu.block`.

Sub-commands live in ``img_*`` modules; this module dispatches, and holds
the helpers they share (getopt-style parsing, opening images with QEMU's
error wording, ``-o`` option lists, progress display).
"""
from __future__ import annotations

import getopt
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from pyqemu import __version__ as PYQEMU_VERSION
from pyqemu.block import BlockNode
from pyqemu.block.open import open_image
from pyqemu.util.error import QemuError, UsageError, error_report, run_main
from pyqemu.util.opts import OptsList, parse_json_filename

PROG = "pyqemu-img"
QEMU_VERSION = "7.2.0"


def version_text() -> str:
    return ("%s version %s (pyqemu %s)\n"
            "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n"
            % (PROG, QEMU_VERSION, PYQEMU_VERSION))


def out(text: str, quiet: bool = False) -> None:
    if not quiet:
        sys.stdout.write(text)


def parse_args(argv: Sequence[str], short: str, long: Sequence[str]) -> Tuple[List[Tuple[str, str]], List[str]]:
    """GNU getopt (options and operands may interleave), with qemu-img's errors."""
    try:
        return getopt.gnu_getopt(list(argv), "h" + short, ["help"] + list(long))
    except getopt.GetoptError as exc:
        if exc.opt and "requires argument" in exc.msg:
            msg = "option requires an argument -- '%s'" % exc.opt if len(exc.opt) == 1 \
                else "option '--%s' requires an argument" % exc.opt
        elif exc.opt and len(exc.opt) == 1:
            msg = "invalid option -- '%s'" % exc.opt
        else:
            msg = "unrecognized option '--%s'" % (exc.opt or "")
        raise UsageError(msg, hint="Try '%s --help' for more information" % PROG) from None


def parse_output(value: str) -> str:
    if value not in ("human", "json"):
        raise QemuError("--output must be used with human or json as argument.")
    return value


_image_opts = OptsList("source", implied_key="file")


def image_spec(name: str, image_opts: bool) -> Any:
    """The file name, or the options tree of ``--image-opts``."""
    if image_opts:
        return _image_opts.parse(name, store=False).to_tree()
    return name


def img_open(name: str, fmt: Optional[str] = None, image_opts: bool = False, readonly: bool = True,
             force_share: bool = False, cache: str = "writeback", no_backing: bool = False) -> BlockNode:
    """Open an image for a sub-command; errors read ``Could not open 'name': ...``."""
    if image_opts and fmt:
        raise QemuError("--image-opts and --format are mutually exclusive")
    spec = image_spec(name, image_opts)
    try:
        if isinstance(spec, str) and spec.startswith("json:"):
            spec = parse_json_filename(spec)
        if isinstance(spec, dict):
            from pyqemu.cli.img_filename import reject_node_references
            reject_node_references(spec)
        return open_image(spec, fmt, readonly=readonly, force_share=force_share, cache=cache,
                          no_backing=no_backing)
    except QemuError as exc:
        raise exc.prefixed("Could not open '%s'" % name) from None


def parse_o(values: List[str]) -> Dict[str, str]:
    """``-o a=b,c=d`` (repeatable) -> dict; ``help`` is answered by the caller."""
    result: Dict[str, str] = {}
    for text in values:
        o = OptsList("create").parse(text, permit_implied=False, warn_on_flag=False, store=False)
        if getattr(o, "help_wanted", False):
            result["help"] = "help"
        for k, v in o.items:
            result[k] = v
    return result


class Progress:
    """QEMU's ``-p`` display: ``    (12.34/100%)\\r``, updated each whole percent."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = 0.0
        if enabled:
            self._show(0.0)

    def _show(self, pct: float) -> None:
        sys.stdout.write("    (%3.2f/100%%)\r" % pct)
        sys.stdout.flush()

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        pct = 100.0 * done / total if total else 100.0
        # QEMU's rule: more than 1% away from the last shown value, or exactly 0 or 100
        if pct > self.last + 1.0 or pct < self.last - 1.0 or pct in (0.0, 100.0):
            self.last = pct
            self._show(pct)

    def finish(self) -> None:
        if self.enabled:
            self._show(100.0)
            sys.stdout.write("\n")
            sys.stdout.flush()


HELP = """\
pyqemu-img version %s (pyqemu %s)
usage: pyqemu-img [standard options] command [command options]
QEMU disk image utility (pyqemu reimplementation)

    '-h', '--help'       display this help and exit
    '-V', '--version'    output version information and exit

Command syntax:
  amend [--object objectdef] [--image-opts] [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename
  bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename
  check [--object objectdef] [--image-opts] [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-T src_cache] [-U] filename
  commit [--object objectdef] [--image-opts] [-q] [-f fmt] [-t cache] [-b base] [-d] [-p] filename
  compare [--object objectdef] [--image-opts] [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] filename1 filename2
  convert [--object objectdef] [--image-opts] [--target-image-opts] [--target-is-zero] [--bitmaps] [-U] [-C] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-l snapshot_param] [-S sparse_size] [-r rate_limit] [-m num_coroutines] [-W] [--salvage] filename [filename2 [...]] output_filename
  create [--object objectdef] [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]
  dd [--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output
  info [--object objectdef] [--image-opts] [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename
  measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [--object objectdef] [--image-opts] [-f fmt] [-l snapshot_param] filename]
  snapshot [--object objectdef] [--image-opts] [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename
  rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] -b backing_file [-F backing_fmt] filename
  resize [--object objectdef] [--image-opts] [-f fmt] [--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size
  map [--object objectdef] [--image-opts] [-f fmt] [--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] filename

Supported formats: qcow2 raw (protocols: file null-co)
"""


_COMMANDS = ("create", "info", "check", "convert", "map", "compare", "resize", "snapshot", "measure",
             "rebase", "commit", "dd", "bench", "amend")


def _command(name: str) -> Callable[[List[str]], int]:
    """The sub-command's main, its module imported now: only the one that runs is loaded."""
    import importlib
    return importlib.import_module("pyqemu.cli.img_" + name).main


def img_main(argv: List[str]) -> int:
    if not argv:
        raise UsageError("Not enough arguments", hint="Try '%s --help' for more information" % PROG)
    cmd = argv[0]
    if cmd in ("-h", "--help"):
        sys.stdout.write(HELP % (QEMU_VERSION, PYQEMU_VERSION))
        return 0
    if cmd in ("-V", "--version"):
        sys.stdout.write(version_text())
        return 0
    if cmd.startswith("-"):
        raise UsageError("unrecognized option '%s'" % cmd if cmd.startswith("--") else
                         "invalid option -- '%s'" % cmd[1:2],
                         hint="Try '%s --help' for more information" % PROG)
    if cmd not in _COMMANDS:
        raise UsageError("Command not found: %s" % cmd, hint="Try '%s --help' for more information" % PROG)
    try:
        return _command(cmd)(argv[1:])
    except UsageError as exc:
        # qemu-img's error_exit(): every usage error ends with the --help hint
        if not exc.hint:
            exc.hint = "Try '%s --help' for more information" % PROG
        raise


def main(argv: Optional[Sequence[str]] = None) -> int:
    status = run_main(img_main, PROG, argv)
    sys.exit(status)


def report(exc: QemuError) -> None:
    error_report(exc.msg, loc=exc.loc, hint=exc.hint)
