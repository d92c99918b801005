"""The machine core's monitor commands compared with qemu-system-x86_64.

The same QMP script (HMP through human-monitor-command, and plain QMP
commands) runs against both emulators with the same -M none machine whose
RAM is a shared memory-backend-file; every reply must be equal.  Left out on
purpose: ``info kvm`` (pyqemu has no KVM accelerator), ``qom-list-types``
(pyqemu has fewer types) and the greeting's version.
"""
from __future__ import annotations

import json

import pytest


HMP = [
    "info status", "info name", "info uuid", "info mtree", "info ramblock", "info memdev",
    "info qom-tree", "info qtree", "qom-list /objects", "qom-list",
    "stop", "info status", "cont", "info status",
    "xp /8xb 0x10", "xp /2xg 0", "xp /3c 0x41", "xp /2ud 0x100", "xp /2x 0x100", "xp /3o 0x100",
    "xp /2d 0xfc", "xp /4dh 0xfc", "xp /5c 0x7e", "xp /1x 0x200000", "xp /4xw 0xffff8",
    "p 0x10 + 0x20 * 2", "p /d -5", "p 0", "p /o 8", "p /c 65", "p /u -1", "p /x 255",
    "i 0x80", "i /b 0x80", "i /h 0x80", "o /b 0x80 1",
    "i/b 0x80", "i/w 0x80", "o/b 0x80 1", "x/4xb 0", "xp/2xw 0x10", "p/x 255", "xp/3zb 0", "xp/ 0",
    "xp/4 0", "/x 0", "info/x", "xp/3c 0x41", "xp /2i 0", "p 0x30", "p -1",
    "info cpus", "info registers", "x /4x 0", "xp /s 0", "xp /4i 0",
    "info mtree -f", "info mtree -o", "info mtree -d", "info mtree -D", "info qom-tree /objects",
    "info qom-tree nope", "qom-get /objects/mem size", "qom-set /objects/mem dump off",
    "qom-get /objects/mem dump", "qom-get /objects/mem share",
]
QMP = [
    ("query-name", None), ("query-uuid", None), ("query-status", None), ("query-memdev", None),
    ("query-target", None), ("query-cpus-fast", None), ("query-iothreads", None),
    ("qom-get", {"path": "/objects/mem", "property": "size"}),
    ("qom-get", {"path": "/objects/mem", "property": "share"}),
    ("qom-get", {"path": "/machine", "property": "nope"}),
    ("qom-get", {"path": "/machine", "property": "type"}),
    ("qom-list", {"path": "/nope"}),
    ("qom-list", {"path": "/objects"}),
    ("qom-list", {"path": "/machine"}),
    ("qom-list", {"path": "/objects/mem"}),
    ("qom-get", {"path": "/machine", "property": "smp"}),
    ("qom-get", {"path": "/machine", "property": "memory"}),
    ("qom-get", {"path": "/machine", "property": "memory-backend"}),
    ("object-del", {"id": "mem"}),
    ("object-del", {"id": "zz"}),
    ("object-add", {"qom-type": "memory-backend-ram", "id": "m2", "size": 4096}),
    ("object-add", {"qom-type": "memory-backend-ram", "id": "m2", "size": 4096}),
    ("object-add", {"qom-type": "nope", "id": "m3"}),
    ("object-add", {"qom-type": "memory-backend-ram", "id": "m4", "size": "1M"}),
    ("object-add", {"qom-type": "memory-backend-ram", "id": "m4", "size": 4096,
                    "prealloc-threads": "x"}),
    ("object-add", {"qom-type": "memory-backend-ram", "id": "m4", "size": 4096, "share": "yes"}),
    ("qom-set", {"path": "/machine", "property": "dump-guest-core", "value": "x"}),
    ("object-add", {"qom-type": "secret", "id": "s1", "data": "abc"}),
    ("object-add", {"qom-type": "secret", "id": "s2"}),
    ("qom-set", {"path": "/objects/m2", "property": "size", "value": 8192}),
    ("query-memdev", None),
    ("object-del", {"id": "m2"}),
    ("device-list-properties", {"typename": "nope"}),
    ("system_powerdown", None),
    ("system_reset", None),
    ("stop", None), ("stop", None), ("cont", None), ("cont", None),
]


def _script() -> bytes:
    lines = [{"execute": "qmp_capabilities"}]
    for c in HMP:
        lines.append({"execute": "human-monitor-command", "arguments": {"command-line": c}})
    for name, args in QMP:
        lines.append({"execute": name, **({"arguments": args} if args else {})})
    lines.append({"execute": "quit"})
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def _replies(out: bytes):
    replies, events = [], []
    for line in out.decode().splitlines():
        msg = json.loads(line)
        if "event" in msg:
            events.append((msg["event"], msg.get("data")))
        elif "QMP" not in msg:
            replies.append(msg)
    return replies, events


def _canon(command, reply):
    """QEMU prints the address spaces (and flat views) of ``info mtree`` in hash-table
    order, and lists properties in hash-table order too."""
    if command == "qom-list" and isinstance(reply.get("return"), list):
        return sorted(map(repr, reply["return"]))
    if command.startswith("info mtree") and "return" in reply:
        blocks = reply["return"].split("\r\n\r\n")
        # Flat views are numbered in that same order: compare them unnumbered.
        return sorted(b.split("\r\n", 1)[-1] if b.startswith("FlatView #") else b for b in blocks)
    return reply


@pytest.mark.slow
def test_monitor_replies_match_qemu(pyqemu_system, real_qemu, tmp_path, run_prog):
    results = []
    for binary in (real_qemu, pyqemu_system):
        mem = tmp_path / "ram"
        mem.write_bytes(bytes(range(256)) * 4096)
        args = [binary, "-M", "none,memory-backend=mem", "-display", "none", "-nodefaults",
                "-object", "memory-backend-file,id=mem,size=1M,mem-path=%s,share=on" % mem,
                "-name", "gname", "-uuid", "12345678-1234-1234-1234-123456789abc", "-qmp", "stdio"]
        p = run_prog(args, input=_script(), timeout=60)
        assert p.returncode == 0, p.stderr
        results.append(_replies(p.stdout))
    (want, want_ev), (got, got_ev) = results
    commands = ["qmp_capabilities"] + HMP + [n for n, _ in QMP] + ["quit"]
    assert len(got) == len(want) == len(commands)
    diffs = ["%s:\n  qemu:   %r\n  pyqemu: %r" % (c, w, g)
             for c, w, g in zip(commands, want, got) if _canon(c, w) != _canon(c, g)]
    assert not diffs, "\n".join(diffs)
    # The same events in the same order: the monitor runs one request per loop
    # turn and the run state handles queued requests between turns, as QEMU.
    assert got_ev == want_ev
    assert got_ev[-1] == ("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})


@pytest.mark.parametrize("args", [["-M", "none,help"], ["-object", "memory-backend-ram,help"],
                                  ["-object", "memory-backend-file,help"], ["-object", "secret,help"],
                                  ["-d", "help"]])
def test_help_texts_match_qemu(pyqemu_system, real_qemu, run_prog, args):
    want = run_prog([real_qemu] + args)
    got = run_prog([pyqemu_system] + args)
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)


def test_events_and_replies_interleave_as_in_qemu(pyqemu_system, real_qemu, run_prog):
    """QEMU replies one main-loop turn after running a command: the RESET,
    POWERDOWN and SHUTDOWN events of a request come before its reply."""
    script = "".join(json.dumps({"execute": c}) + "\n" for c in (
        "qmp_capabilities", "stop", "cont", "system_reset", "system_powerdown", "quit")).encode()
    streams = []
    for binary in (real_qemu, pyqemu_system):
        p = run_prog([binary, "-M", "none", "-display", "none", "-qmp", "stdio"], input=script, timeout=60)
        assert p.returncode == 0, p.stderr
        msgs = [json.loads(line) for line in p.stdout.decode().splitlines()][1:]
        streams.append([m.get("event", "reply") for m in msgs])
    assert streams[1] == streams[0]
    assert streams[0][-2:] == ["SHUTDOWN", "reply"]
