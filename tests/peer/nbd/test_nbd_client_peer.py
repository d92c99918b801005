"""pyqemu's NBD client (the nbd block driver) against real servers: qemu-nbd and nbdkit."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from nbd_peer_util import PYQEMU_NBD, need, run

MiB = 1 << 20
BIN = os.path.dirname(PYQEMU_NBD)
PYQEMU_IMG = os.path.join(BIN, "pyqemu-img")
PYQEMU_IO = os.path.join(BIN, "pyqemu-io")


def make_qcow2(tmp_path):
    p = str(tmp_path / "img.qcow2")
    run([need("qemu-img"), "create", "-q", "-f", "qcow2", p, "8M"])
    run([need("qemu-io"), "-f", "qcow2", "-c", "write -P 0x11 0 64k", "-c", "write -P 0x22 3M 128k",
         "-c", "write -z 5M 64k", p])
    return p


@pytest.mark.parametrize("tcp", [False, True])
def test_pyqemu_img_map_convert_compare_against_qemu_nbd(tmp_path, nbd_server, tcp):
    img = make_qcow2(tmp_path)
    srv = nbd_server("qemu", img, ["-f", "qcow2", "-r", "-e", "4"], tcp=tcp)
    ours = json.loads(run([PYQEMU_IMG, "map", "--output=json", srv.uri]).stdout)
    theirs = json.loads(run([need("qemu-img"), "map", "--output=json", srv.uri]).stdout)
    assert ours == theirs
    out = str(tmp_path / "out.qcow2")
    run([PYQEMU_IMG, "convert", "-O", "qcow2", srv.uri, out])
    run([need("qemu-img"), "check", out])
    run([need("qemu-img"), "compare", "-f", "qcow2", "-F", "qcow2", img, out])
    run([PYQEMU_IMG, "compare", "-F", "qcow2", srv.uri, out])
    info = json.loads(run([PYQEMU_IMG, "info", "--output=json", srv.uri]).stdout)
    assert info["virtual-size"] == 8 * MiB and info["format"] == "raw"


def test_legacy_names_and_option_form(tmp_path, nbd_server):
    img = make_qcow2(tmp_path)
    srv = nbd_server("qemu", img, ["-f", "qcow2", "-r", "-e", "8", "-x", "exp"], tcp=True, export="exp")
    names = ["nbd:127.0.0.1:%d:exportname=exp" % srv.port,
             "nbd://127.0.0.1:%d/exp" % srv.port]
    for name in names:
        p = run([PYQEMU_IO, "-r", "-f", "raw", "-c", "read -P 0x22 3M 128k", name])
        assert "read 131072/131072 bytes at offset 3145728" in p.stdout
    opts = "driver=raw,file.driver=nbd,file.server.type=inet,file.server.host=127.0.0.1," \
           "file.server.port=%d,file.export=exp" % srv.port
    p = run([PYQEMU_IO, "-r", "--image-opts", opts, "-c", "read -P 0x11 0 64k"])
    assert "read 65536/65536 bytes at offset 0" in p.stdout
    srv.stop()
    srv = nbd_server("qemu", img, ["-f", "qcow2", "-r", "-e", "8"])
    p = run([PYQEMU_IO, "-r", "-f", "raw", "-c", "read -P 0x11 0 64k", "nbd:unix:%s" % srv.sock])
    assert "read 65536/65536 bytes at offset 0" in p.stdout


def test_connection_errors(tmp_path):
    sock = str(tmp_path / "none.sock")
    q = run([need("qemu-io"), "-c", "read 0 1", "nbd+unix:///?socket=%s" % sock], check=False)
    p = run([PYQEMU_IO, "-c", "read 0 1", "nbd+unix:///?socket=%s" % sock], check=False)
    assert p.returncode == q.returncode == 1
    assert p.stderr.replace("pyqemu-io", "qemu-io") == q.stderr


@pytest.fixture
def nbdkit(tmp_path):
    procs = []

    def start(*args):
        sock = str(tmp_path / ("kit%d.sock" % len(procs)))
        proc = subprocess.Popen([need("nbdkit"), "-f", "-U", sock, *args], stderr=subprocess.PIPE)
        procs.append(proc)
        for _ in range(300):
            if os.path.exists(sock):
                return "nbd+unix:///?socket=%s" % sock
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read())
            time.sleep(0.05)
        raise AssertionError("nbdkit did not start")

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)
        p.stderr.close()


def test_pyqemu_io_and_img_against_nbdkit(tmp_path, nbdkit):
    uri = nbdkit("memory", "size=8M")
    p = run([PYQEMU_IO, "-f", "raw", "-c", "write -P 0x66 1M 64k", "-c", "write -z 2M 1M",
             "-c", "discard 4M 64k", "-c", "flush", "-c", "read -P 0x66 1M 64k", "-c", "read -P 0 2M 1M", uri])
    assert "verification failed" not in p.stdout and "failed" not in p.stdout
    out = str(tmp_path / "kit.raw")
    run([PYQEMU_IMG, "convert", "-O", "raw", uri, out])
    data = open(out, "rb").read()
    assert len(data) == 8 * MiB and data[MiB:MiB + 65536] == b"\x66" * 65536
    ours = json.loads(run([PYQEMU_IMG, "map", "--output=json", uri]).stdout)
    theirs = json.loads(run([need("qemu-img"), "map", "--output=json", uri]).stdout)
    assert ours == theirs


def test_nbdkit_file_plugin_roundtrip(tmp_path, nbdkit):
    disk = str(tmp_path / "f.raw")
    with open(disk, "wb") as f:
        f.truncate(2 * MiB)
    uri = nbdkit("file", "file=%s" % disk)
    run([PYQEMU_IO, "-f", "raw", "-c", "write -P 0x3c 4096 8192", uri])
    with open(disk, "rb") as f:
        f.seek(4096)
        assert f.read(8192) == b"\x3c" * 8192
