"""The serial transports: both agents on a pseudo-terminal, as on a guest's ttyS1."""
import os
import select
import subprocess
import tty

import pytest

from qgaclient import PYQEMU_GA, QEMU_GA


def _exchange(master, data, timeout=5.0, until=b"\n"):
    os.write(master, data)
    buf = b""
    while until not in buf or not buf.endswith(b"\n"):
        r, _, _ = select.select([master], [], [], timeout)
        if not r:
            break
        buf += os.read(master, 65536)
    return buf


@pytest.mark.parametrize("method", ["isa-serial", "virtio-serial"])
def test_serial_port(tmp_path, method):
    got = []
    for prog in (QEMU_GA, PYQEMU_GA):
        master, slave = os.openpty()
        # no echo: until the agent opens the port, our bytes must not come back
        tty.setraw(slave)
        path = os.ttyname(slave)
        env = dict(os.environ, QGA_CONF=str(tmp_path / "none.conf"))
        proc = subprocess.Popen([prog, "-m", method, "-p", path, "-t", str(tmp_path)],
                                env=env, stderr=subprocess.DEVNULL)
        try:
            # The agent may still be opening the port: resend the sync until it answers.
            first = b""
            for _ in range(50):
                first = _exchange(master, b'\xff{"execute":"guest-sync-delimited","arguments":{"id":5}}',
                                  timeout=0.2, until=b'\xff{"return": 5}')
                if b'\xff{"return": 5}' in first:
                    break
            assert b'\xff{"return": 5}\n' in first
            # answers to the earlier attempts may still be on their way: drain them
            while select.select([master], [], [], 0.5)[0]:
                os.read(master, 65536)
            got.append([_exchange(master, b'{"execute":"guest-ping"}'),
                        _exchange(master, b'{"execute":"guest-sync","arguments":{"id":9}}'),
                        _exchange(master, b'{"execute":"guest-nope"}')])
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.close(master)
            os.close(slave)
    assert got[1] == got[0]
    assert got[0][0] == b'{"return": {}}\n'
