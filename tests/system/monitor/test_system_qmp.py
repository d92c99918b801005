"""pyqemu-system-x86_64 -M none driven over QMP with the official qemu.qmp client."""
import asyncio
import json

from monitor_helpers import connect_unix, wait_path
from qemu.qmp import ExecuteError, QMPClient
from qemu.qmp.protocol import ConnectError


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def qmp_connect(path, name="test"):
    """The socket file can exist a moment before the emulator listens on it."""
    for _ in range(200):
        c = QMPClient(name)
        try:
            await c.connect(path)
            return c
        except ConnectError:
            await asyncio.sleep(0.02)
    raise AssertionError("cannot connect to %s" % path)


async def closed(client):
    """Disconnect after quit: the emulator has closed the socket (EOF), as QEMU does."""
    try:
        await client.disconnect()
    except EOFError:
        pass


async def next_event(client, name):
    while True:
        ev = await asyncio.wait_for(client.events.get(), 10)
        if ev["event"] == name:
            return ev


def test_every_command_over_qmp(emulator, tmp_path):
    path = str(tmp_path / "qmp.sock")
    mem = tmp_path / "mem.bin"
    proc = emulator(["-M", "none", "-display", "none", "-qmp", "unix:%s,server=on,wait=off" % path,
                     "-object", "memory-backend-ram,id=mem0,size=1M", "-chardev", "ringbuf,id=rb0,size=64"])
    wait_path(path, proc)

    async def main():
        c = await qmp_connect(path)
        ex = c.execute
        assert (await ex("query-version"))["qemu"] == {"major": 7, "minor": 2, "micro": 0}
        names = {x["name"] for x in await ex("query-commands")}
        wanted = {"query-version", "query-commands", "query-status", "query-name", "query-uuid",
                  "query-machines", "query-target", "query-kvm", "query-cpus-fast", "query-chardev",
                  "query-chardev-backends", "query-iothreads", "query-memdev", "stop", "cont",
                  "system_reset", "system_powerdown", "quit", "human-monitor-command", "qom-list",
                  "qom-get", "qom-set", "qom-list-types", "device-list-properties", "chardev-add",
                  "chardev-remove", "ringbuf-write", "ringbuf-read", "memsave", "pmemsave",
                  "object-add", "object-del", "qmp_capabilities"}
        assert wanted <= names, wanted - names
        assert (await ex("query-status"))["status"] == "running"
        assert await ex("query-name") == {}
        assert await ex("query-target") == {"arch": "x86_64"}
        assert await ex("query-cpus-fast") == []
        assert await ex("query-iothreads") == []
        assert "UUID" in await ex("query-uuid")
        assert "enabled" in await ex("query-kvm")
        assert any(m["name"] == "none" for m in await ex("query-machines"))
        assert [m["id"] for m in await ex("query-memdev")] == ["mem0"]

        # Run-state commands and their events.
        assert await ex("stop") == {}
        assert "event" in await next_event(c, "STOP")
        assert (await ex("query-status"))["status"] == "paused"
        assert await ex("cont") == {}
        await next_event(c, "RESUME")
        await ex("system_reset")
        ev = await next_event(c, "RESET")
        assert ev["data"] == {"guest": False, "reason": "host-qmp-system-reset"}
        await ex("system_powerdown")
        await next_event(c, "POWERDOWN")

        # QOM and objects.
        assert await ex("qom-get", {"path": "/machine", "property": "type"}) == "none-machine"
        assert any(p["name"] == "machine" for p in await ex("qom-list", {"path": "/"}))
        types = {t["name"] for t in await ex("qom-list-types", {"implements": "memory-backend"})}
        assert "memory-backend-ram" in types
        assert await ex("object-add", {"qom-type": "memory-backend-ram", "id": "m2", "size": 4096}) == {}
        assert await ex("object-del", {"id": "m2"}) == {}

        # Character devices: the one from the command line, one added now.
        cds = {d["label"]: d for d in await ex("query-chardev")}
        assert cds["rb0"]["filename"] == "ringbuf"
        assert cds["compat_monitor0"]["frontend-open"] is True
        backends = {b["name"] for b in await ex("query-chardev-backends")}
        assert {"null", "socket", "udp", "file", "pipe", "pty", "stdio", "ringbuf", "serial"} <= backends
        await ex("ringbuf-write", {"device": "rb0", "data": "round trip \u00e9"})
        assert await ex("ringbuf-read", {"device": "rb0", "size": 64}) == "round trip \u00e9"
        assert await ex("chardev-add", {"id": "f1", "backend": {"type": "file",
                                                                "data": {"out": str(tmp_path / "f1")}}}) == {}
        ret = await ex("chardev-add", {"id": "p1", "backend": {"type": "pty", "data": {}}})
        assert ret["pty"].startswith("/dev/pts/")
        await ex("chardev-remove", {"id": "f1"})
        await ex("chardev-remove", {"id": "p1"})
        try:
            await ex("chardev-remove", {"id": "f1"})
            raise AssertionError("removed twice")
        except ExecuteError as e:
            assert e.error.error.desc == "Chardev 'f1' not found"

        # HMP through QMP.
        text = await ex("human-monitor-command", {"command-line": "info chardev"})
        assert "rb0: filename=ringbuf\r\n" in text
        assert await ex("human-monitor-command", {"command-line": "info version"}) == "7.2.0pyqemu 0.1.0\r\n"

        # Memory: bytes written into RAM come back through pmemsave.
        await ex("pmemsave", {"val": 0, "size": 16, "filename": str(mem)})
        assert mem.stat().st_size == 16

        await ex("quit")
        ev = await next_event(c, "SHUTDOWN")
        assert ev["data"] == {"guest": False, "reason": "host-qmp-quit"}
        await closed(c)
    run(main())
    assert proc.wait(10) == 0


def test_several_clients_get_events(emulator, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    proc = emulator(["-M", "none", "-display", "none", "-qmp", "unix:%s,server=on,wait=off" % a,
                     "-qmp", "unix:%s,server=on,wait=off" % b])
    wait_path(a, proc)
    wait_path(b, proc)

    async def main():
        ca, cb = await qmp_connect(a, "a"), await qmp_connect(b, "b")
        await ca.execute("stop")
        for c in (ca, cb):
            ev = await next_event(c, "STOP")
            assert set(ev["timestamp"]) == {"seconds", "microseconds"}
        assert (await cb.execute("query-status"))["status"] == "paused"
        await cb.execute("quit")
        await closed(ca)
        await closed(cb)
    run(main())
    assert proc.wait(10) == 0


def test_mon_option_and_pretty_output(emulator, tmp_path):
    path = str(tmp_path / "m")
    proc = emulator(["-M", "none", "-display", "none", "-chardev",
                     "socket,id=c0,path=%s,server=on,wait=off" % path, "-mon", "chardev=c0,mode=control,pretty=on"])
    s = connect_unix(path, proc)
    f = s.makefile("rwb")

    def read_obj():
        out = b""
        while True:
            line = f.readline()
            assert line
            out += line
            if line == b"}\r\n":
                return out
    greeting = read_obj()
    assert greeting.startswith(b'{\r\n    "QMP": {\r\n        "version": {\r\n            "qemu": {\r\n')
    assert json.loads(greeting)["QMP"]["capabilities"] == ["oob"]
    f.write(b'{"execute": "qmp_capabilities", "id": 7}\n')
    f.flush()
    assert read_obj() == b'{\r\n    "return": {\r\n    },\r\n    "id": 7\r\n}\r\n'
    f.write(b'{"execute": "quit"}\n')
    f.flush()
    assert proc.wait(10) == 0
    s.close()
