"""HMP commands of the monitor side: help, info version/chardev/history, chardevs, ringbufs, log.

Each one calls its QMP command and formats the result as QEMU 7.2 does.
"""
from __future__ import annotations

from typing import Any, Dict

from pyqemu.monitor import hmp_table
from pyqemu.monitor.hmp_table import find, help_line, register_hmp, register_info, sorted_commands
from pyqemu.monitor.qmp_commands import execute
from pyqemu.util import log as qlog
from pyqemu.util.error import QemuError

Args = Dict[str, Any]


def hmp_help(mon: Any, args: Args) -> None:
    name = args.get("name")
    if not name:
        for cmd in sorted_commands(hmp_table.commands):
            mon.printf(help_line(cmd))
        return
    words = []
    p = 0
    while True:
        try:
            word, p = hmp_table.get_word(name, p)
        except hmp_table.ArgError as e:
            mon.printf(e.msg + "\n")
            return
        if word is None:
            break
        words.append(word)
    if not words:
        hmp_help(mon, {})
        return
    if words[0] == "log":
        # As QEMU: "help log" lists the log items rather than the command's line.
        _print_log_usage(mon)
        return
    cmd = find(hmp_table.commands, words[0])
    if cmd is None:
        mon.printf("unknown command: '%s'\n" % words[0])
        return
    if cmd.names[0] == "info":
        if len(words) > 1:
            sub = find(hmp_table.info_commands, words[1])
            if sub is None:
                mon.printf("unknown command: 'info %s'\n" % words[1])
                return
            mon.printf(help_line(sub, "info "))
            return
        for sub in sorted_commands(hmp_table.info_commands):
            mon.printf(help_line(sub, "info "))
        return
    mon.printf(help_line(cmd))


def hmp_info(mon: Any, args: Args) -> None:
    # Reached only without a sub-command (the monitor dispatches "info X" itself).
    for sub in sorted_commands(hmp_table.info_commands):
        mon.printf(help_line(sub, "info "))


def hmp_info_version(mon: Any, args: Args) -> None:
    v = execute("query-version")
    q = v["qemu"]
    mon.printf("%d.%d.%d%s\n" % (q["major"], q["minor"], q["micro"], v["package"]))


def hmp_info_chardev(mon: Any, args: Args) -> None:
    for c in execute("query-chardev"):
        mon.printf("%s: filename=%s\n" % (c["label"], c["filename"]))


def hmp_info_history(mon: Any, args: Args) -> None:
    for i, line in enumerate(mon.rs.history):
        # History holds the typed bytes (as latin-1 text); show them as they were typed.
        mon.printf("%d: '%s'\n" % (i, line.encode("latin-1").decode("utf-8", "surrogateescape")))


def hmp_chardev_add(mon: Any, args: Args) -> None:
    from pyqemu.chardev import CHARDEV_OPTS, create_from_opts
    opts = CHARDEV_OPTS.parse(args["args"], store=False)
    create_from_opts(opts)


def hmp_chardev_change(mon: Any, args: Args) -> None:
    from pyqemu.chardev import CHARDEV_OPTS, backend_from_opts
    opts = CHARDEV_OPTS.parse(args["args"], store=False)
    if opts.id is not None:
        raise QemuError("Unexpected 'id' parameter")
    kind, data = backend_from_opts(opts)
    execute("chardev-change", {"id": args["id"], "backend": {"type": kind, "data": data}})


def hmp_chardev_remove(mon: Any, args: Args) -> None:
    execute("chardev-remove", {"id": args["id"]})


def hmp_chardev_send_break(mon: Any, args: Args) -> None:
    execute("chardev-send-break", {"id": args["id"]})


def hmp_ringbuf_write(mon: Any, args: Args) -> None:
    execute("ringbuf-write", {"device": args["device"], "data": args["data"]})


def hmp_ringbuf_read(mon: Any, args: Args) -> None:
    data = execute("ringbuf-read", {"device": args["device"], "size": args["size"]})
    out = []
    # Byte by byte as QEMU: backslash doubled, control characters (but newline and
    # tab) and DEL as \uXXXX, everything else - UTF-8 sequences too - as it is.
    for ch in data.encode("utf-8", "surrogateescape"):
        if ch == 0x5C:
            out.append("\\\\")
        elif (ch < 0x20 and ch not in (0x0A, 0x09)) or ch == 0x7F:
            out.append("\\u%04X" % ch)
        else:
            out.append(chr(ch))
    mon.printf("".join(out).encode("latin-1").decode("utf-8", "surrogateescape") + "\n")


def hmp_log(mon: Any, args: Args) -> None:
    items = args["items"]
    if items == "none":
        qlog.set_mask(0)
        return
    mask, traces = qlog.parse_items(items)
    if not mask and not traces:
        _print_log_usage(mon)
        return
    qlog.set_mask(mask, traces)


def _print_log_usage(mon: Any) -> None:
    # The monitor's list has a "none" entry that -d help lacks, and names its own command.
    text = qlog.usage().replace('"-d trace:help"', '"log trace:help"')
    head, sep, rest = text.partition("\n")
    mon.printf(head + sep + "%-15s %s\n" % ("none", "remove all logs") + rest)


def hmp_logfile(mon: Any, args: Args) -> None:
    try:
        qlog.set_file(args["filename"])
    except QemuError as e:
        raise QemuError(e.msg) from None


def register_all() -> None:
    register_hmp("help|?", "name:S?", "[cmd]", "show the help", hmp_help)
    register_hmp("info", "item:s?", "[subcommand]",
                 "show various information about the system state", hmp_info)
    register_info("version", "", "", "show the version of QEMU", hmp_info_version)
    register_info("chardev", "", "", "show the character devices", hmp_info_chardev)
    register_info("history", "", "", "show the command line history", hmp_info_history)
    register_hmp("chardev-add", "args:s", "args", "add chardev", hmp_chardev_add)
    register_hmp("chardev-change", "id:s,args:s", "id args", "change chardev", hmp_chardev_change)
    register_hmp("chardev-remove", "id:s", "id", "remove chardev", hmp_chardev_remove)
    register_hmp("chardev-send-break", "id:s", "id", "send a break on chardev", hmp_chardev_send_break)
    register_hmp("ringbuf_write", "device:s,data:s", "device data",
                 "Write to a ring buffer character device", hmp_ringbuf_write)
    register_hmp("ringbuf_read", "device:s,size:i", "device size",
                 "Read from a ring buffer character device", hmp_ringbuf_read)
    register_hmp("log", "items:s", "item1[,...]", "activate logging of the specified items", hmp_log)
    register_hmp("logfile", "filename:F", "filename", "output logs to 'filename'", hmp_logfile)
