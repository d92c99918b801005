"""The QMP server against the official qemu.qmp client library, in-process."""
import asyncio
import json
import socket

import pytest
from qemu.qmp import ExecuteError, QMPClient

from pyqemu.chardev import CHARDEV_OPTS, create_from_opts
from pyqemu.monitor import start_monitor
from pyqemu.monitor.events import emit


@pytest.fixture
def qmp_socket(loop, loop_thread, tmp_path):
    """Start QMP monitors on unix sockets; returns a function making one and its path."""
    made = []

    def make(name="qmp", pretty=False):
        path = str(tmp_path / name)
        chr = create_from_opts(CHARDEV_OPTS.parse("socket,id=%s,path=%s,server=on,wait=off" % (name, path),
                                                  store=False))
        start_monitor(chr, "control", pretty=pretty)
        made.append(path)
        return path
    yield make, loop_thread


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_greeting_commands_and_errors_with_the_client_library(qmp_socket):
    make, start = qmp_socket
    path = make()
    start()

    async def main():
        c = QMPClient("test")
        await c.connect(path)
        greeting = c.greeting._asdict()
        assert greeting["QMP"]["version"]["qemu"] == {"micro": 0, "minor": 2, "major": 7}
        assert greeting["QMP"]["capabilities"] == ["oob"]
        ver = await c.execute("query-version")
        assert ver["qemu"]["major"] == 7
        names = {x["name"] for x in await c.execute("query-commands")}
        assert {"qmp_capabilities", "query-version", "chardev-add", "ringbuf-read"} <= names
        backends = {x["name"] for x in await c.execute("query-chardev-backends")}
        assert {"null", "socket", "udp", "file", "pipe", "pty", "stdio", "ringbuf", "memory",
                "serial", "mux"} <= backends
        assert await c.execute("chardev-add", {"id": "r", "backend": {"type": "ringbuf",
                                                                     "data": {"size": 8}}}) == {}
        assert await c.execute("ringbuf-write", {"device": "r", "data": "hello world"}) == {}
        assert await c.execute("ringbuf-read", {"device": "r", "size": 100}) == "lo world"
        assert await c.execute("ringbuf-write", {"device": "r", "data": "aGVsbG8=",
                                                 "format": "base64"}) == {}
        assert await c.execute("ringbuf-read", {"device": "r", "size": 10, "format": "base64"}) \
            == "aGVsbG8="
        chardevs = await c.execute("query-chardev")
        assert {"label": "r", "filename": "ringbuf", "frontend-open": False} in chardevs
        assert {"label": "qmp", "filename": "unix:%s,server=on" % path, "frontend-open": True} in chardevs
        assert await c.execute("human-monitor-command",
                               {"command-line": "info chardev"}) != ""
        with pytest.raises(ExecuteError) as e:
            await c.execute("no-such-command")
        assert e.value.error.error.class_ == "CommandNotFound"
        assert e.value.error.error.desc == "The command no-such-command has not been found"
        with pytest.raises(ExecuteError) as e:
            await c.execute("ringbuf-read", {"device": "nope", "size": 3})
        assert (e.value.error.error.class_, e.value.error.error.desc) == \
            ("GenericError", "Device 'nope' not found")
        with pytest.raises(ExecuteError) as e:
            await c.execute("chardev-remove", {"id": "qmp"})
        assert e.value.error.error.desc == "Chardev 'qmp' is busy"
        assert await c.execute("chardev-remove", {"id": "r"}) == {}
        await c.disconnect()
    run(main())


def test_events_reach_every_client(qmp_socket, loop):
    make, start = qmp_socket
    p1, p2 = make("q1"), make("q2")
    start()

    async def main():
        clients = []
        for p in (p1, p2):
            c = QMPClient(p)
            await c.connect(p)
            clients.append(c)
        loop.bh_schedule(lambda: emit("POWERDOWN"))
        for c in clients:
            ev = await asyncio.wait_for(c.events.get(), 5)
            assert ev["event"] == "POWERDOWN"
            assert set(ev["timestamp"]) == {"seconds", "microseconds"}
        for c in clients:
            await c.disconnect()
    run(main())


def raw_session(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rwb")
    return s, f


def ask(f, text):
    f.write(text.encode() + b"\n")
    f.flush()
    return f.readline()


# Requests and the answers real qemu-system-x86_64 7.2 gives (captured from it).
RAW_CASES = [
    ('{"execute":"qmp_capabilities","id":1}',
     '{"id": 1, "error": {"class": "CommandNotFound", "desc": '
     '"Capabilities negotiation is already complete, command ignored"}}'),
    ('{"execute":"foo","id":"x"}',
     '{"id": "x", "error": {"class": "CommandNotFound", "desc": "The command foo has not been found"}}'),
    ('[1]', '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}'),
    ('{"foo":1}', '{"error": {"class": "GenericError", "desc": "QMP input member \'foo\' is unexpected"}}'),
    ('{"id":5}', '{"id": 5, "error": {"class": "GenericError", "desc": "QMP input lacks member \'execute\'"}}'),
    ('{"execute":1}',
     '{"error": {"class": "GenericError", "desc": "QMP input member \'execute\' must be a string"}}'),
    ('{"execute":"query-version","arguments":[]}',
     '{"error": {"class": "GenericError", "desc": "QMP input member \'arguments\' must be an object"}}'),
    ('{"exec-oob":"query-version"}',
     '{"error": {"class": "GenericError", "desc": "QMP input member \'exec-oob\' is unexpected"}}'),
    ('{"execute":"ringbuf-read"}',
     '{"error": {"class": "GenericError", "desc": "Parameter \'device\' is missing"}}'),
    ('{"execute":"ringbuf-read","arguments":{"device":1,"size":2}}',
     '{"error": {"class": "GenericError", "desc": "Invalid parameter type for \'device\', expected: string"}}'),
    ('{"execute":"ringbuf-read","arguments":{"device":"a","size":"2"}}',
     '{"error": {"class": "GenericError", "desc": "Invalid parameter type for \'size\', expected: integer"}}'),
    ('{"execute":"query-version","arguments":{"x":1}}',
     '{"error": {"class": "GenericError", "desc": "Parameter \'x\' is unexpected"}}'),
    ('{"execute": foo}', '{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword \'foo\'"}}'),
    ('{"execute":"chardev-add","arguments":{"id":"x","backend":{"type":"bogus","data":{}}}}',
     '{"error": {"class": "GenericError", "desc": "Parameter \'type\' does not accept value \'bogus\'"}}'),
    ('{"execute":"chardev-add","arguments":{"id":"x","backend":{"type":"file","data":{}}}}',
     '{"error": {"class": "GenericError", "desc": "Parameter \'backend.data.out\' is missing"}}'),
    ('{"execute":"chardev-add","arguments":{"id":"x","backend":{"type":"null"}}}',
     '{"error": {"class": "GenericError", "desc": "Parameter \'backend.data\' is missing"}}'),
    ('{"execute":"ringbuf-write","arguments":{"device":"x","data":"x","format":"utf9"}}',
     '{"error": {"class": "GenericError", "desc": "Parameter \'format\' does not accept value \'utf9\'"}}'),
]


def test_raw_protocol_answers_match_qemu(qmp_socket):
    make, start = qmp_socket
    path = make()
    start()
    s, f = raw_session(path)
    greeting = json.loads(f.readline())
    assert list(greeting) == ["QMP"] and list(greeting["QMP"]) == ["version", "capabilities"]
    assert ask(f, '{"execute":"query-version"}') == (
        b'{"error": {"class": "CommandNotFound", "desc": '
        b'"Expecting capabilities negotiation with \'qmp_capabilities\'"}}\r\n')
    assert ask(f, '{"execute":"qmp_capabilities","arguments":{"enable":"oob"}}') == (
        b'{"error": {"class": "GenericError", "desc": "Invalid parameter type for \'enable\', '
        b'expected: array"}}\r\n')
    assert ask(f, '{"execute":"qmp_capabilities","id":1}') == b'{"return": {}, "id": 1}\r\n'
    for req, resp in RAW_CASES:
        assert ask(f, req) == resp.encode() + b"\r\n", req
    s.close()


def read_pretty(f):
    """One pretty-printed object: lines up to the closing brace at column 0."""
    out = b""
    while True:
        line = f.readline()
        assert line
        out += line
        if line == b"}\r\n":
            return out


def test_out_of_band_after_enabling_it(qmp_socket):
    make, start = qmp_socket
    path = make()
    start()
    s, f = raw_session(path)
    f.readline()
    assert ask(f, '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}') == b'{"return": {}}\r\n'
    assert ask(f, '{"exec-oob":"query-version"}') == (
        b'{"error": {"class": "GenericError", "desc": "The command query-version does not support OOB"}}\r\n')
    assert ask(f, '{"execute":"query-version","exec-oob":"x"}') == (
        b'{"error": {"class": "GenericError", "desc": "QMP input member \'execute\' clashes with \'exec-oob\'"}}\r\n')
    s.close()


def test_reconnect_renegotiates_and_pretty_output(qmp_socket):
    make, start = qmp_socket
    path = make(pretty=True)
    start()
    for _ in range(2):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        f = s.makefile("rwb")
        head = read_pretty(f)
        assert head.startswith(b'{\r\n    "QMP": {\r\n        "version": {\r\n')
        f.write(b'{"execute":"qmp_capabilities","id":"a"}')
        f.flush()
        out = read_pretty(f)
        assert out == b'{\r\n    "return": {\r\n    },\r\n    "id": "a"\r\n}\r\n'
        s.close()
