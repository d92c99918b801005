"""pyqemu-ga as a whole program: command line, pid file, reconnects, exit."""
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "peer" / "qga"))
from qgaclient import PYQEMU_GA, Agent, Client  # noqa: E402


def test_reconnect_and_clean_exit(tmp_path):
    a = Agent(PYQEMU_GA, tmp_path)
    try:
        for _ in range(3):
            c = a.connect()
            c.sync()
            assert c.cmd("guest-ping") == b'{"return": {}}\n'
            c.close()
        os.kill(a.proc.pid, signal.SIGTERM)
        assert a.proc.wait(5) == 0
        assert not (tmp_path / "qga.sock").exists()
    finally:
        a.stop()


def test_daemonize_writes_locked_pidfile(tmp_path):
    import time
    sock = tmp_path / "d.sock"
    pidfile = tmp_path / "d.pid"
    argv = [PYQEMU_GA, "-d", "-m", "unix-listen", "-p", str(sock), "-t", str(tmp_path),
            "-f", str(pidfile)]
    env = dict(os.environ, QGA_CONF=str(tmp_path / "none.conf"))
    assert subprocess.run(argv, env=env, timeout=10).returncode == 0
    for _ in range(100):
        if sock.exists() and pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    try:
        c = Client(str(sock))
        c.sync()
        assert c.cmd("guest-ping") == b'{"return": {}}\n'
        c.close()
        # a second daemon on the same pid file must refuse to start
        r = subprocess.run(argv[:5] + [str(tmp_path / "e.sock")] + argv[6:], env=env,
                           capture_output=True, text=True, timeout=10)
        time.sleep(0.3)
        assert not (tmp_path / "e.sock").exists()
        assert int(pidfile.read_text()) == pid
        assert r.returncode == 0      # the parent returns before the child reports
    finally:
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not pidfile.exists():
            break
        time.sleep(0.05)
    assert not pidfile.exists()


def test_frozen_state_survives_restart(tmp_path):
    (tmp_path / "qga.state.isfrozen").write_bytes(b"")
    a = Agent(PYQEMU_GA, tmp_path)
    try:
        c = a.connect()
        assert c.cmd("guest-fsfreeze-status") == b'{"return": "frozen"}\n'
        assert b"the agent is in frozen state" in c.cmd("guest-get-osinfo")
        assert c.cmd("guest-fsfreeze-thaw") == b'{"return": 0}\n'
        assert c.cmd("guest-fsfreeze-status") == b'{"return": "thawed"}\n'
        assert not (tmp_path / "qga.state.isfrozen").exists()
    finally:
        a.stop()


def test_bad_options_exit_nonzero():
    r = subprocess.run([PYQEMU_GA, "-x"], capture_output=True, text=True)
    assert r.returncode == 1 and "invalid option -- 'x'" in r.stderr
    r = subprocess.run([PYQEMU_GA, "-m", "carrier-pigeon", "-p", "/nonexistent/x", "-t", "/tmp",
                        "-f", "/nonexistent/pid"], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    r = subprocess.run([PYQEMU_GA, "-V"], capture_output=True, text=True)
    assert r.stdout == "QEMU Guest Agent 7.2.22\n"


def test_retry_path_waits_for_the_device(tmp_path):
    """-r: the serial device appears after the agent started; it is picked up."""
    import select
    import time
    import tty
    link = tmp_path / "org.qemu.guest_agent.0"
    env = dict(os.environ, QGA_CONF=str(tmp_path / "none.conf"))
    proc = subprocess.Popen([PYQEMU_GA, "-r", "-m", "virtio-serial", "-p", str(link), "-t", str(tmp_path)],
                            env=env, stderr=subprocess.DEVNULL)
    master = slave = None
    try:
        time.sleep(1.5)
        assert proc.poll() is None          # still waiting, not dead
        master, slave = os.openpty()
        tty.setraw(slave)
        link.symlink_to(os.ttyname(slave))
        buf = b""
        deadline = time.time() + 10
        while b'\xff{"return": 3}\n' not in buf and time.time() < deadline:
            os.write(master, b'\xff{"execute":"guest-sync-delimited","arguments":{"id":3}}')
            if select.select([master], [], [], 0.3)[0]:
                buf += os.read(master, 65536)
        assert b'\xff{"return": 3}\n' in buf
    finally:
        proc.terminate()
        assert proc.wait(5) == 0
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)


def test_missing_device_without_retry_fails(tmp_path):
    r = subprocess.run([PYQEMU_GA, "-m", "virtio-serial", "-p", str(tmp_path / "nope"), "-t", str(tmp_path)],
                       env=dict(os.environ, QGA_CONF=str(tmp_path / "none.conf")),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "failed to initialize guest agent channel" in r.stderr


def test_exec_children_do_not_linger_as_zombies(tmp_path):
    import json
    import time
    a = Agent(PYQEMU_GA, tmp_path)
    try:
        c = a.connect()
        pid = json.loads(c.cmd("guest-exec", path="/bin/true"))["return"]["pid"]
        for _ in range(50):
            try:
                with open("/proc/%d/stat" % pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                break           # reaped
            time.sleep(0.1)
        else:
            raise AssertionError("child %d still present in state %s" % (pid, state))
        # the status is still there for the host to collect
        st = json.loads(c.cmd("guest-exec-status", pid=pid))["return"]
        assert st == {"exited": True, "exitcode": 0}
    finally:
        a.stop()
