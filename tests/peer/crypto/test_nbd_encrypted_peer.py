"""pyqemu-nbd serves encrypted images given ``--object secret``; qemu-io reads them over NBD."""
from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from crypto_peer_util import BIN, OUR_ITER, PYQEMU_IMG, QEMU_IO, SECRET, run

PYQEMU_NBD = os.path.join(BIN, "pyqemu-nbd")


def _serve(sock: str, *args: str) -> subprocess.Popen:
    # persistent: the readiness probe below is a client of its own
    proc = subprocess.Popen([PYQEMU_NBD, "--object", SECRET, "-t", "-k", sock, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120  # key derivation and a loaded machine: be generous
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("pyqemu-nbd exited: %s" % proc.stderr.read().decode())
        if os.path.exists(sock):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(sock)
                return proc
            except OSError:
                pass
            finally:
                s.close()
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError("pyqemu-nbd did not listen")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stdout.close()
    proc.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("fmt,opts,key", [("luks", "key-secret=sec0", "key-secret"),
                                          ("qcow2", "encrypt.format=luks,encrypt.key-secret=sec0",
                                           "encrypt.key-secret")])
def test_serve_encrypted(tmp_path, fmt, opts, key):
    img = str(tmp_path / "e.img")
    it = OUR_ITER if fmt == "luks" else "encrypt." + OUR_ITER
    run(PYQEMU_IMG, "create", "-q", "-f", fmt, "--object", SECRET, "-o", opts + "," + it, img, "2M")
    image_opts = "driver=%s,%s=sec0,file.filename=%s" % (fmt, key, img)
    sock = str(tmp_path / "nbd.sock")
    proc = _serve(sock, "--image-opts", image_opts)
    try:
        uri = "nbd+unix:///?socket=" + sock
        w = run(QEMU_IO, "-f", "raw", uri, "-c", "write -P 0x3c 4096 300k", "-c", "read -P 0x3c 4096 300k",
                check=False)
        assert w.returncode == 0 and "failed" not in w.stdout, w.stdout + w.stderr
    finally:
        _stop(proc)
    # what went over NBD is stored encrypted: QEMU reads it back through its own decryption
    r = run(QEMU_IO, "--object", SECRET, "--image-opts", image_opts, "-c", "read -P 0x3c 4096 300k", check=False)
    assert r.returncode == 0 and "failed" not in r.stdout, r.stdout + r.stderr
    with open(img, "rb") as f:
        assert b"\x3c" * 4096 not in f.read()


def test_wrong_password_fails_like_qemu_nbd(tmp_path):
    img = str(tmp_path / "e.luks")
    run(PYQEMU_IMG, "create", "-q", "-f", "luks", "--object", SECRET, "-o", "key-secret=sec0," + OUR_ITER, img, "1M")
    p = run(PYQEMU_NBD, "--object", "secret,id=sec0,data=nope", "--image-opts",
            "driver=luks,key-secret=sec0,file.filename=" + img, "-k", str(tmp_path / "s"), check=False)
    assert p.returncode == 1
    assert p.stderr == ("pyqemu-nbd: Failed to blk_new_open 'driver=luks,key-secret=sec0,file.filename=%s': "
                        "Invalid password, cannot unlock any keyslot\n" % img)
