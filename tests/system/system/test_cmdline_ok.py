"""Command lines that work: help texts, config files, pidfile, daemon, signals, -mem-path."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest


def qmp_script(*commands) -> bytes:
    lines = [{"execute": "qmp_capabilities"}]
    for c in commands:
        if isinstance(c, str) and " " in c or isinstance(c, str) and c.startswith("info"):
            lines.append({"execute": "human-monitor-command", "arguments": {"command-line": c}})
        elif isinstance(c, str):
            lines.append({"execute": c})
        else:
            lines.append({"execute": c[0], "arguments": c[1]})
    lines.append({"execute": "quit"})
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def replies(out: bytes):
    return [m["return"] for m in map(json.loads, out.decode().splitlines()) if "return" in m]


def test_version_and_help(pyqemu_system, run_prog):
    p = run_prog([pyqemu_system, "-version"])
    assert p.returncode == 0
    assert p.stdout == (b"QEMU emulator version 7.2.0 (pyqemu 0.1.0)\n"
                        b"Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n")
    p = run_prog([pyqemu_system, "-h"])
    text = p.stdout.decode()
    assert p.returncode == 0
    assert text.startswith(p.stdout.decode().splitlines()[0] + "\n")
    assert "\nusage: pyqemu-system-x86_64 [options] [disk_image]\n" in text
    assert "\nStandard options:\n-h or -help     display this help and exit\n" in text
    assert "\n-m [size=]megs[,slots=n,maxmem=size]\n                " in text
    assert "\nDebug/Expert options:\n" in text and "\n-S              freeze CPU at startup" in text
    p = run_prog([pyqemu_system, "--help"])
    assert p.returncode == 0 and p.stdout.decode() == text


def test_help_requests(pyqemu_system, run_prog):
    p = run_prog([pyqemu_system, "-machine", "help"])
    lines = p.stdout.decode().splitlines()
    assert p.returncode == 0 and lines[0] == "Supported machines are:"
    assert "none                 empty machine" in lines
    p = run_prog([pyqemu_system, "-M", "none,help"])
    assert p.returncode == 0
    assert p.stdout.decode().splitlines()[:2] == [
        "none-machine options:", "  append=<string>        - Linux kernel command line"]
    p = run_prog([pyqemu_system, "-M", "none", "-device", "help"])
    blocks = p.stdout.decode().split("\n\n")
    misc = [b for b in blocks if b.startswith("Misc devices:\n")]
    assert len(misc) == 1 and 'name "pyqemu-testdev", desc "pyqemu test device"' in misc[0].splitlines()
    p = run_prog([pyqemu_system, "-device", "pyqemu-testdev,help"])
    assert p.stdout.decode() == ("pyqemu-testdev options:\n"
                                 "  addr=<uint64>          -  (default: 4276944896)\n"
                                 "  iobase=<uint16>        -  (default: 0)\n"
                                 "  reset-value=<uint32>   -  (default: 0)\n")
    p = run_prog([pyqemu_system, "-object", "help"])
    assert p.stdout == (b"List of user creatable objects:\n  memory-backend-file\n"
                        b"  memory-backend-ram\n  secret\n")
    p = run_prog([pyqemu_system, "-object", "secret,help"])
    assert p.stdout.decode().splitlines()[1:3] == ["  data=<string>", "  file=<string>"]
    p = run_prog([pyqemu_system, "-cpu", "help"])
    assert p.returncode == 0 and p.stdout.startswith(b"Available CPUs:\n")
    assert b"qemu64" in p.stdout
    p = run_prog([pyqemu_system, "-accel", "help"])
    assert p.stdout == b"Accelerators supported in QEMU binary:\ntcg\n"
    p = run_prog([pyqemu_system, "-trace", "help"])
    assert b"runstate_set\n" in p.stdout
    p = run_prog([pyqemu_system, "-d", "help"])
    assert p.returncode == 1 and p.stdout.startswith(b"Log items (comma separated):\n")


def test_writeconfig_then_readconfig(pyqemu_system, run_prog, tmp_path):
    cfg = tmp_path / "vm.cfg"
    args = ["-M", "none", "-display", "none", "-m", "8", "-name", "from-config",
            "-rtc", "base=utc", "-nodefaults"]
    p = run_prog([pyqemu_system] + args + ["-writeconfig", str(cfg), "-qmp", "stdio"],
                 input=qmp_script())
    assert p.returncode == 0, p.stderr
    text = cfg.read_text()
    assert '[machine]\n  type = "none"\n' in text and '[name]\n  guest = "from-config"\n' in text
    p = run_prog([pyqemu_system, "-readconfig", str(cfg), "-display", "none", "-qmp", "stdio"],
                 input=qmp_script("query-name", "info ramblock"))
    assert p.returncode == 0, p.stderr
    name, ramblock = replies(p.stdout)[1:3]
    assert name == {"name": "from-config"}
    assert "                     ram    4 KiB  0x0000000000000000 0x0000000000800000" in ramblock


def test_readconfig_objects_and_errors(pyqemu_system, run_prog, tmp_path):
    cfg = tmp_path / "objects.cfg"
    cfg.write_text('[object "m0"]\n  qom-type = "memory-backend-ram"\n  size = "1M"\n\n'
                   '[machine]\n  type = "none"\n  memory-backend = "m0"\n')
    p = run_prog([pyqemu_system, "-readconfig", str(cfg), "-display", "none", "-qmp", "stdio"],
                 input=qmp_script("query-memdev", "info ramblock"))
    assert p.returncode == 0, p.stderr
    memdev, ramblock = replies(p.stdout)[1:3]
    assert [m["id"] for m in memdev] == ["m0"] and memdev[0]["size"] == 1 << 20
    assert "                      m0    4 KiB  0x0000000000000000 0x0000000000100000" in ramblock
    bad = tmp_path / "bad.cfg"
    bad.write_text('[bogus]\n  a = "b"\n')
    p = run_prog([pyqemu_system, "-readconfig", str(bad)])
    assert (p.returncode, p.stderr.decode()) == (
        1, "pyqemu-system-x86_64:%s:2: There is no option group 'bogus'\n" % bad)


def test_mem_path_directory(pyqemu_system, run_prog, tmp_path):
    p = run_prog([pyqemu_system, "-M", "none", "-display", "none", "-m", "4", "-mem-path",
                  str(tmp_path), "-nodefaults", "-qmp", "stdio"],
                 input=qmp_script("query-memdev", "xp /2x 0x3ffff8", "xp /1x 0x400000"))
    assert p.returncode == 0, p.stderr
    memdev, xp1, xp2 = replies(p.stdout)[1:4]
    assert memdev[0]["id"] == "ram" and memdev[0]["size"] == 4 << 20
    assert xp1 == "00000000003ffff8: 0x00000000 0x00000000\r\n"
    assert xp2 == "0000000000400000: Cannot access memory\r\n"
    assert os.listdir(tmp_path) == []          # an unlinked temporary file, as QEMU makes


def _wait_for(path, proc=None, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc is not None and proc.poll() is not None:
            pytest.fail("emulator exited: %r" % (proc.communicate(),))
        assert time.monotonic() < deadline, "timed out waiting for %s" % path
        time.sleep(0.05)


def test_pidfile_and_sigterm(pyqemu_system, tmp_path):
    pidfile = tmp_path / "vm.pid"
    proc = subprocess.Popen([pyqemu_system, "-M", "none", "-display", "none", "-pidfile",
                             str(pidfile)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        _wait_for(pidfile, proc)
        deadline = time.monotonic() + 10
        while pidfile.read_text() == "" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pidfile.read_text() == "%d\n" % proc.pid
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert err.decode() == "pyqemu-system-x86_64: terminating on signal 15 from pid %d (%s)\n" % (
            os.getpid(), open("/proc/self/cmdline", "rb").read().split(b"\0")[0].decode())
        assert not pidfile.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_daemonize(pyqemu_system, tmp_path):
    pidfile = tmp_path / "vm.pid"
    sock = tmp_path / "qmp.sock"
    p = subprocess.run([pyqemu_system, "-M", "none", "-display", "none", "-daemonize",
                        "-pidfile", str(pidfile), "-qmp", "unix:%s,server=on,wait=off" % sock],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    pid = int(pidfile.read_text())
    try:
        assert sock.exists()
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(sock))
        s.recv(4096)
        s.sendall(b'{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n')
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        assert b'"host-qmp-quit"' in data
        deadline = time.monotonic() + 20
        while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists("/proc/%d" % pid)
    finally:
        if os.path.exists("/proc/%d" % pid):
            os.kill(pid, signal.SIGKILL)


def test_name_process_sets_the_process_name(pyqemu_system, tmp_path):
    pidfile = tmp_path / "vm.pid"
    proc = subprocess.Popen([pyqemu_system, "-M", "none", "-display", "none", "-pidfile", str(pidfile),
                             "-name", "guest,process=a-very-long-process-name"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(pidfile, proc)
        deadline = time.monotonic() + 10
        comm = ""
        while time.monotonic() < deadline:
            with open("/proc/%d/comm" % proc.pid) as f:
                comm = f.read()
            if comm.startswith("a-very"):
                break
            time.sleep(0.05)
        assert comm == "a-very-long-pro\n"          # truncated to 15 bytes, as QEMU's too
    finally:
        proc.kill()
        proc.communicate()


def test_prelaunch_with_S(pyqemu_system, run_prog):
    p = run_prog([pyqemu_system, "-M", "none", "-display", "none", "-S", "-nodefaults", "-qmp", "stdio"],
                 input=qmp_script("query-status", "info status", "cont", "query-status"))
    assert p.returncode == 0, p.stderr
    r = replies(p.stdout)
    assert r[1] == {"status": "prelaunch", "singlestep": False, "running": False}
    assert r[2] == "VM status: paused (prelaunch)\r\n"
    assert r[4]["status"] == "running"
