"""pyqemu-ga as a whole program: command line, pid file, reconnects, exit."""
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "peer" / "qga"))
from qgaclient import PYQEMU_GA, Agent  # noqa: E402


def test_reconnect_and_clean_exit(tmp_path):
    a = Agent(PYQEMU_GA, tmp_path)
    try:
        pid = int((tmp_path / "qga.pid").read_text())
        assert pid == a.proc.pid
        for _ in range(3):
            c = a.connect()
            c.sync()
            assert c.cmd("guest-ping") == b'{"return": {}}\n'
            c.close()
        os.kill(a.proc.pid, signal.SIGTERM)
        assert a.proc.wait(5) == 0
        assert not (tmp_path / "qga.pid").exists()
        assert not (tmp_path / "qga.sock").exists()
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
