"""The machine core's QMP and HMP commands, driven through the official
``qemu.qmp`` client against ``pyqemu-system-x86_64 -M none``.

Guest RAM is a shared ``memory-backend-file``: bytes the test puts in the
file must come back through ``xp`` and ``pmemsave``, and the test device's
registers are reached through the I/O port commands.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pytest
from qemu.qmp import ExecuteError, QMPClient

RAM = 1 << 20


class VM:
    def __init__(self, binary, tmp_path, *extra):
        self.sock = str(tmp_path / "qmp.sock")
        self.mem = str(tmp_path / "guest-ram")
        with open(self.mem, "wb") as f:
            f.write(bytes(range(256)) * (RAM // 256))
        argv = [binary, "-M", "none,memory-backend=mem", "-display", "none",
                "-object", "memory-backend-file,id=mem,size=1M,mem-path=%s,share=on" % self.mem,
                "-qmp", "unix:%s,server=on,wait=off" % self.sock,
                "-name", "guest-one", "-uuid", "12345678-1234-1234-1234-123456789abc",
                "-device", "pyqemu-testdev,id=td,iobase=0x510,addr=0x100000,reset-value=7"] + list(extra)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=str(tmp_path))
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out, err = self.proc.communicate(timeout=5)
                pytest.fail("emulator did not start: %r" % err)
            time.sleep(0.05)
        self.qmp = QMPClient("test")

    async def hmp(self, line):
        return await self.qmp.execute("human-monitor-command", {"command-line": line})

    async def event(self, name, timeout=10):
        while True:
            ev = await asyncio.wait_for(self.qmp.events.get(), timeout)
            if ev["event"] == name:
                return ev

    async def disconnect_after_quit(self):
        # The emulator closes the socket as it exits; qemu.qmp reports that EOF here.
        try:
            await self.qmp.disconnect()
        except EOFError:
            pass

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


@pytest.fixture
def vm(pyqemu_system, tmp_path):
    v = VM(pyqemu_system, tmp_path)
    yield v
    v.close()


def arun(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_run_state_commands_and_events(vm):
    async def go():
        await vm.qmp.connect(vm.sock)
        assert await vm.qmp.execute("query-status") == {"status": "running", "singlestep": False,
                                                        "running": True}
        await vm.qmp.execute("stop")
        await vm.event("STOP")
        assert (await vm.qmp.execute("query-status"))["status"] == "paused"
        assert await vm.hmp("info status") == "VM status: paused\r\n"
        await vm.qmp.execute("cont")
        await vm.event("RESUME")
        await vm.hmp("stop")
        await vm.event("STOP")
        await vm.hmp("c")
        await vm.event("RESUME")
        await vm.qmp.execute("system_powerdown")
        await vm.event("POWERDOWN")
        await vm.qmp.execute("system_reset")
        ev = await vm.event("RESET")
        assert ev["data"] == {"guest": False, "reason": "host-qmp-system-reset"}
        await vm.qmp.execute("quit")
        ev = await vm.event("SHUTDOWN")
        assert ev["data"] == {"guest": False, "reason": "host-qmp-quit"}
        await vm.disconnect_after_quit()
    arun(go())
    assert vm.proc.wait(timeout=20) == 0


def test_machine_facts(vm):
    async def go():
        await vm.qmp.connect(vm.sock)
        assert await vm.qmp.execute("query-name") == {"name": "guest-one"}
        assert await vm.hmp("info name") == "guest-one\r\n"
        assert await vm.qmp.execute("query-uuid") == {"UUID": "12345678-1234-1234-1234-123456789abc"}
        assert await vm.hmp("info uuid") == "12345678-1234-1234-1234-123456789abc\r\n"
        assert await vm.qmp.execute("query-target") == {"arch": "x86_64"}
        machines = await vm.qmp.execute("query-machines")
        none = [m for m in machines if m["name"] == "none"][0]
        assert none["cpu-max"] == 1 and none["default-ram-id"] == "ram"
        assert await vm.qmp.execute("query-kvm") == {"enabled": False, "present": False}
        assert await vm.qmp.execute("query-cpus-fast") == []
        assert await vm.qmp.execute("query-iothreads") == []
        assert await vm.hmp("info cpus") == ""
        assert await vm.hmp("info registers") == "No CPU available\r\n"
        memdev = await vm.qmp.execute("query-memdev")
        assert memdev == [{"id": "mem", "size": RAM, "merge": True, "dump": True, "prealloc": False,
                           "share": True, "reserve": True, "host-nodes": [], "policy": "default"}]
        text = await vm.hmp("info memdev")
        assert text.startswith("memory backend: mem\r\n  size:  1048576\r\n")
        assert "  share: true\r\n" in text
        await vm.qmp.disconnect()
    arun(go())


def test_qom_and_devices(vm):
    async def go():
        await vm.qmp.connect(vm.sock)
        names = {p["name"]: p["type"] for p in await vm.qmp.execute("qom-list", {"path": "/machine"})}
        assert names["peripheral"] == "child<container>" and names["type"] == "string"
        td = {p["name"]: p["type"] for p in
              await vm.qmp.execute("qom-list", {"path": "/machine/peripheral/td"})}
        assert td["addr"] == "uint64" and td["realized"] == "bool"
        assert await vm.qmp.execute("qom-get", {"path": "/machine/peripheral/td",
                                                "property": "iobase"}) == 0x510
        assert await vm.qmp.execute("qom-get", {"path": "td", "property": "realized"}) is True
        with pytest.raises(ExecuteError) as e:
            await vm.qmp.execute("qom-list", {"path": "/machine/nothing"})
        assert e.value.error_class == "DeviceNotFound"
        with pytest.raises(ExecuteError) as e:
            await vm.qmp.execute("qom-set", {"path": "td", "property": "iobase", "value": 1})
        assert "after it was realized" in str(e.value)
        # The scratch register reads back its reset value, set through qom-set.
        assert await vm.hmp("i /w 0x510") == "portl[0x0510] = 0x00000007\r\n"
        await vm.hmp("o 0x510 0x1234")
        assert await vm.hmp("i /h 0x510") == "portw[0x0510] = 0x1234\r\n"
        assert await vm.hmp("i 0x51c") == "portw[0x051c] = 0x4d55\r\n"   # the last size stays
        await vm.hmp("qom-set td reset-value 0x99")
        await vm.qmp.execute("system_reset")
        await vm.event("RESET")
        assert await vm.hmp("i /w 0x510") == "portl[0x0510] = 0x00000099\r\n"
        assert await vm.hmp("qom-list /machine/peripheral") == "type (string)\r\ntd (child<pyqemu-testdev>)\r\n"
        tree = await vm.hmp("info qom-tree")
        assert "  /peripheral (container)\r\n    /td (pyqemu-testdev)\r\n" in tree
        qtree = await vm.hmp("info qtree")
        assert qtree.startswith("bus: main-system-bus\r\n  type System\r\n")
        props = await vm.qmp.execute("device-list-properties", {"typename": "pyqemu-testdev"})
        assert {p["name"] for p in props} == {"addr", "iobase", "reset-value"}
        types = await vm.qmp.execute("qom-list-types", {"implements": "memory-backend"})
        assert {t["name"] for t in types} == {"memory-backend-ram", "memory-backend-file"}
        await vm.qmp.disconnect()
    arun(go())


def test_objects_add_and_del(vm):
    async def go():
        await vm.qmp.connect(vm.sock)
        await vm.qmp.execute("object-add", {"qom-type": "memory-backend-ram", "id": "m2", "size": 65536})
        await vm.hmp("object_add secret,id=pw,data=letmein")
        ids = [m["id"] for m in await vm.qmp.execute("query-memdev")]
        assert ids == ["m2", "mem"]
        with pytest.raises(ExecuteError) as e:
            await vm.qmp.execute("object-add", {"qom-type": "memory-backend-ram", "id": "m2",
                                                "size": 65536})
        assert "duplicate" in str(e.value)
        await vm.qmp.execute("object-del", {"id": "m2"})
        await vm.hmp("object_del pw")
        assert [m["id"] for m in await vm.qmp.execute("query-memdev")] == ["mem"]
        with pytest.raises(ExecuteError) as e:
            await vm.qmp.execute("object-del", {"id": "mem"})
        assert str(e.value) == "object 'mem' is in use, can not be deleted"
        await vm.qmp.disconnect()
    arun(go())


def test_guest_memory_round_trip(vm, tmp_path):
    out = str(tmp_path / "dump")
    async def go():
        await vm.qmp.connect(vm.sock)
        assert await vm.hmp("xp /8xb 0x10") == (
            "0000000000000010: 0x10 0x11 0x12 0x13 0x14 0x15 0x16 0x17\r\n")
        assert await vm.hmp("xp /2xg 0") == (
            "0000000000000000: 0x0706050403020100 0x0f0e0d0c0b0a0908\r\n")
        assert await vm.hmp("xp /3cb 0x41") == "0000000000000041: 'A' 'B' 'C'\r\n"
        assert await vm.hmp("xp /2uw 0x100") == "0000000000000100:   50462976  117835012\r\n"
        assert await vm.hmp("xp /1x 0x200000") == "0000000000200000: Cannot access memory\r\n"
        # The test device's MMIO window, mapped at addr=0x100000, right after RAM.
        assert await vm.hmp("xp /1xw 0x10000c") == "000000000010000c: 0x51454d55\r\n"
        # Change the file underneath: the guest sees it at once (share=on).
        with open(vm.mem, "r+b") as f:
            f.seek(0x3000)
            f.write(b"pyqemu!")
        await vm.qmp.execute("pmemsave", {"val": 0x2ff0, "size": 0x40, "filename": out})
        with open(out, "rb") as f:
            data = f.read()
        with open(vm.mem, "rb") as f:
            f.seek(0x2ff0)
            assert data == f.read(0x40)
        assert data[0x10:0x17] == b"pyqemu!"
        # HMP reads "0x20 /path" as a division, as QEMU does: use a relative name
        # (the emulator runs in tmp_path).  The last 16 bytes are the test device's
        # registers: scratch = reset-value 7, control, write count 0, identification.
        assert await vm.hmp("pmemsave 0xffff0 0x20 dump2") == ""
        with open(str(tmp_path / "dump2"), "rb") as f:
            assert f.read() == (bytes(range(0xf0, 0x100)) + bytes([7, 0, 0, 0]) + bytes(8)
                                + bytes.fromhex("554d4551"))
        assert await vm.hmp("p /x 0x10 + 0x20 * 2") == "0x50\r\n"
        assert await vm.hmp("p /d -5") == "-5\r\n"
        with pytest.raises(ExecuteError) as e:
            await vm.qmp.execute("memsave", {"val": 0, "size": 16, "filename": out})
        assert str(e.value) == "Parameter 'cpu-index' expects a CPU number"
        mtree = await vm.hmp("info mtree")
        assert ("    0000000000000000-00000000000fffff (prio 0, ram): mem\r\n"
                "    0000000000100000-000000000010000f (prio 0, i/o): pyqemu-testdev\r\n") in mtree
        assert "0000000000000510-000000000000051f (prio 0, i/o): pyqemu-testdev-io" in mtree
        ramblock = await vm.hmp("info ramblock")
        assert "                     mem    4 KiB  0x0000000000000000 0x0000000000100000" in ramblock
        await vm.qmp.disconnect()
    arun(go())


def test_guest_requests_and_no_shutdown(pyqemu_system, tmp_path):
    v = VM(pyqemu_system, tmp_path, "-no-shutdown")
    try:
        async def go():
            await v.qmp.connect(v.sock)
            await v.hmp("o 0x514 2")          # the device asks for a reset
            ev = await v.event("RESET")
            assert ev["data"] == {"guest": True, "reason": "guest-reset"}
            await v.hmp("o 0x514 1")          # ... and for a power-off
            ev = await v.event("SHUTDOWN")
            assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}
            await v.event("STOP")
            assert (await v.qmp.execute("query-status"))["status"] == "shutdown"
            with pytest.raises(ExecuteError) as e:
                await v.qmp.execute("cont")
            assert str(e.value) == "Resetting the Virtual Machine is required"
            await v.qmp.execute("system_reset")
            await v.event("RESET")
            assert await v.hmp("info status") == "VM status: paused (prelaunch)\r\n"
            await v.qmp.execute("cont")
            await v.event("RESUME")
            await v.qmp.execute("quit")
            await v.disconnect_after_quit()
        arun(go())
        assert v.proc.wait(timeout=20) == 0
    finally:
        v.close()


def test_no_reboot_exits_on_guest_reset(pyqemu_system, tmp_path):
    v = VM(pyqemu_system, tmp_path, "-no-reboot", "-S")
    try:
        async def go():
            await v.qmp.connect(v.sock)
            assert await v.hmp("info status") == "VM status: paused (prelaunch)\r\n"
            await v.qmp.execute("cont")
            await v.event("RESUME")
            await v.hmp("o 0x514 2")
            ev = await v.event("SHUTDOWN")
            assert ev["data"] == {"guest": True, "reason": "guest-reset"}
            await v.disconnect_after_quit()
        arun(go())
        assert v.proc.wait(timeout=20) == 0
    finally:
        v.close()


@pytest.mark.parametrize("extra,action", [((), "poweroff"), (("-no-shutdown",), "pause")])
def test_guest_panic(pyqemu_system, tmp_path, extra, action):
    v = VM(pyqemu_system, tmp_path, *extra)
    try:
        async def go():
            await v.qmp.connect(v.sock)
            await v.hmp("o 0x514 3")          # the device reports a guest panic
            ev = await v.event("GUEST_PANICKED")
            assert ev["data"] == {"action": action}
            if action == "pause":
                await v.event("STOP")
                assert (await v.qmp.execute("query-status"))["status"] == "guest-panicked"
                await v.qmp.execute("quit")
            else:
                ev = await v.event("SHUTDOWN")
                assert ev["data"] == {"guest": True, "reason": "guest-panic"}
            await v.disconnect_after_quit()
        arun(go())
        assert v.proc.wait(timeout=20) == 0
    finally:
        v.close()
