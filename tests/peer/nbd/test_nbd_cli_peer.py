"""pyqemu-nbd as a program: --fork/--pid-file, lifetime, -e, -L, -s, -c/-d, beside qemu-nbd."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time

import pytest
from nbd_peer_util import PYQEMU_NBD, need, run

MiB = 1 << 20


def image(tmp_path, name="d.raw"):
    p = str(tmp_path / name)
    with open(p, "wb") as f:
        f.truncate(4 * MiB)
        f.write(b"start")
    return p


def prog(which):
    return PYQEMU_NBD if which == "py" else need("qemu-nbd")


def wait_gone(pid, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("which", ["py", "qemu"])
def test_fork_pid_file_and_exit_after_last_client(tmp_path, which):
    img = image(tmp_path)
    sock = str(tmp_path / "s.sock")
    pidf = str(tmp_path / "pid")
    p = run([prog(which), "--fork", "--pid-file", pidf, "-k", sock, "-f", "raw", img], timeout=30)
    assert p.returncode == 0
    # The parent returned only once the server listens: a client connects at once.
    pid = int(open(pidf).read())
    try:
        out = run([need("nbdinfo"), "--size", "nbd+unix:///?socket=%s" % sock]).stdout
        assert out.strip() == str(4 * MiB)
        # Not persistent: the server ends after its only client, removing its socket.
        assert wait_gone(pid)
        assert not os.path.exists(sock)
    finally:
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("fork", [True, False])
def test_pid_file_that_cannot_be_created(tmp_path, fork):
    img = image(tmp_path)
    outs = []
    for which in ("py", "qemu"):
        sock = str(tmp_path / ("%s.sock" % which))
        argv = [prog(which)] + (["--fork"] if fork else []) + [
            "--pid-file", str(tmp_path / "missing" / "pid"), "-k", sock, "-f", "raw", img]
        p = run(argv, check=False, timeout=30)
        assert p.returncode == 1
        outs.append(p.stderr.split(":", 1)[1])
    assert outs[0] == outs[1]


def test_shared_clients_at_once_and_persistent(tmp_path, nbd_server):
    img = image(tmp_path)
    srv = nbd_server("py", img, ["-f", "raw", "-e", "3"])
    results = []

    def client(i):
        p = run([need("qemu-io"), "-f", "raw", "-c", "write -P %d %d 64k" % (i + 1, i * 65536),
                 "-c", "read -P %d %d 64k" % (i + 1, i * 65536), srv.uri], check=False)
        results.append(p.returncode)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [0, 0, 0]
    # -t: still there after all clients left.
    assert run([need("nbdinfo"), "--size", srv.uri]).stdout.strip() == str(4 * MiB)
    srv.stop()
    data = open(img, "rb").read()
    for i in range(3):
        assert data[i * 65536:(i + 1) * 65536] == bytes([i + 1]) * 65536


def test_one_client_at_a_time_by_default(tmp_path, nbd_server):
    img = image(tmp_path)
    srv = nbd_server("py", img, ["-f", "raw"])
    first = socket.socket(socket.AF_UNIX)
    first.connect(srv.sock)
    assert first.recv(8) == b"NBDMAGIC"
    second = socket.socket(socket.AF_UNIX)
    second.settimeout(0.5)
    second.connect(srv.sock)          # queued by the kernel, not accepted
    with pytest.raises(socket.timeout):
        second.recv(8)
    first.close()
    second.settimeout(10)
    assert second.recv(8) == b"NBDMAGIC"
    second.close()


def test_list_matches_qemu_nbd(tmp_path, nbd_server):
    img = image(tmp_path)
    srv = nbd_server("qemu", img, ["-f", "raw", "-x", "exp", "-D", "the disk", "-r"], export="exp")
    a = run([need("qemu-nbd"), "-L", "-k", srv.sock]).stdout
    b = run([PYQEMU_NBD, "-L", "-k", srv.sock]).stdout
    srv.stop()
    assert a == b and "export: 'exp'" in b
    srv = nbd_server("py", img, ["-f", "raw", "-x", "exp", "-D", "the disk", "-r"], export="exp")
    assert run([need("qemu-nbd"), "-L", "-k", srv.sock]).stdout == a


def test_snapshot_writes_do_not_reach_the_image(tmp_path, nbd_server):
    img = image(tmp_path)
    before = open(img, "rb").read()
    srv = nbd_server("py", img, ["-f", "raw", "-s"])
    p = run([need("qemu-io"), "-f", "raw", "-c", "write -P 9 0 64k", "-c", "read -P 9 0 64k", srv.uri])
    assert "read 65536/65536 bytes at offset 0" in p.stdout and "failed" not in p.stdout
    srv.stop()
    assert open(img, "rb").read() == before


def test_qcow2_served_and_written_stays_consistent(tmp_path, nbd_server):
    img = str(tmp_path / "d.qcow2")
    run([need("qemu-img"), "create", "-q", "-f", "qcow2", img, "16M"])
    srv = nbd_server("py", img, ["-f", "qcow2"])
    run([need("qemu-io"), "-f", "raw", "-c", "write -P 3 1M 3M", "-c", "write -z 2M 64k", "-c", "discard 3M 64k",
         srv.uri])
    srv.stop()
    run([need("qemu-img"), "check", img])
    p = run([need("qemu-io"), "-f", "qcow2", "-c", "read -P 3 1M 1M", "-c", "read -P 0 2M 64k", img])
    assert "verification failed" not in p.stdout


@pytest.mark.skipif(os.path.exists("/sys/module/nbd"), reason="this host has the nbd kernel module")
@pytest.mark.parametrize("args", [["-c", "/dev/nbd0", "-f", "raw", "IMG"], ["-d", "/dev/nbd0"]])
def test_kernel_device_without_nbd_module(tmp_path, args):
    img = image(tmp_path)
    args = [img if a == "IMG" else a for a in args]
    q = run([need("qemu-nbd")] + args, check=False, timeout=30)
    p = run([PYQEMU_NBD] + args, check=False, timeout=30)
    assert p.returncode == q.returncode == 1
    first = p.stderr.splitlines()[0]
    assert re.sub(r"^\S+: ", "", first) == re.sub(r"^\S+: ", "", q.stderr.splitlines()[0])
    assert "nbd module" in p.stderr


def test_sigterm_removes_socket(tmp_path):
    img = image(tmp_path)
    sock = str(tmp_path / "t.sock")
    proc = subprocess.Popen([PYQEMU_NBD, "-t", "-k", sock, "-f", "raw", img], stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        assert os.path.exists(sock)
        proc.terminate()
        assert proc.wait(15) == 0
        assert not os.path.exists(sock)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


@pytest.mark.parametrize("args", [[], ["--discard=unmap"], ["--discard=unmap", "--detect-zeroes=unmap"],
                                  ["--detect-zeroes=on"]])
def test_discard_and_detect_zeroes_policies_match_qemu_nbd(tmp_path, nbd_server, args):
    # Whether ext4 reports zeroed ranges as holes depends on page-cache state,
    # so the bytes are compared, not the maps.
    images = []
    for which in ("qemu", "py"):
        img = str(tmp_path / ("%s.raw" % which))
        with open(img, "wb") as f:
            f.write(b"\x01" * (4 * MiB))
        srv = nbd_server(which, img, ["-f", "raw"] + args)
        run([need("qemu-io"), "-f", "raw", "-c", "discard 0 1M", "-c", "write -z -u 1M 1M",
             "-c", "write -P 0 2M 1M", srv.uri])
        srv.stop()
        with open(img, "rb") as f:
            data = f.read()
        assert data[MiB:3 * MiB] == bytes(2 * MiB)
        images.append(data)
    assert images[0] == images[1]
    # Discard only reaches the image with --discard=unmap (qemu-nbd ignores it by default).
    assert images[1][:MiB] == (bytes(MiB) if "--discard=unmap" in args else b"\x01" * MiB)


@pytest.mark.parametrize("args", [["--detect-zeroes=unmap", "-f", "raw", "IMG"], ["--discard=bogus", "IMG"],
                                  ["--detect-zeroes=bogus", "IMG"], ["--cache=bogus", "IMG"],
                                  ["-f", "raw", "--image-opts", "IMG"]])
def test_policy_option_errors_match(tmp_path, args):
    img = image(tmp_path)
    args = [img if a == "IMG" else a for a in args]
    q = run([need("qemu-nbd")] + args, check=False, timeout=30)
    p = run([PYQEMU_NBD] + args, check=False, timeout=30)
    assert p.returncode == q.returncode == 1
    assert re.sub(r"^\S*qemu-nbd: ", "", p.stderr, flags=re.M) == re.sub(r"^\S*qemu-nbd: ", "", q.stderr, flags=re.M)


def test_image_opts_serves_qcow2(tmp_path, nbd_server):
    img = str(tmp_path / "o.qcow2")
    run([need("qemu-img"), "create", "-q", "-f", "qcow2", img, "4M"])
    run([need("qemu-io"), "-f", "qcow2", "-c", "write -P 0x71 0 4k", img])
    srv = nbd_server("py", "driver=qcow2,file.driver=file,file.filename=%s" % img, ["--image-opts", "-r"])
    p = run([need("qemu-io"), "-r", "-f", "raw", "-c", "read -P 0x71 0 4k", srv.uri])
    assert "read 4096/4096 bytes at offset 0" in p.stdout and "failed" not in p.stdout


def test_load_internal_snapshot_read_only(tmp_path, nbd_server):
    img = str(tmp_path / "sn.qcow2")
    run([need("qemu-img"), "create", "-q", "-f", "qcow2", img, "4M"])
    run([need("qemu-io"), "-f", "qcow2", "-c", "write -P 1 0 64k", img])
    run([need("qemu-img"), "snapshot", "-c", "snap1", img])
    run([need("qemu-io"), "-f", "qcow2", "-c", "write -P 2 0 64k", img])
    for spec in ("snap1", "1", "snapshot.name=snap1", "snapshot.id=1,snapshot.name=snap1"):
        srv = nbd_server("py", img, ["-f", "qcow2", "-l", spec])
        p = run([need("qemu-io"), "-r", "-f", "raw", "-c", "read -P 1 0 64k", srv.uri])
        assert "failed" not in p.stdout
        assert run([need("nbdinfo"), "--can", "read-only", srv.uri], check=False).returncode == 0
        srv.stop()
    run([need("qemu-img"), "check", img])
    p = run([need("qemu-io"), "-r", "-c", "read -P 2 0 64k", img])
    assert "failed" not in p.stdout
    for spec, fmt in (("nosuch", "qcow2"), ("x", "raw")):
        q = run([need("qemu-nbd"), "-f", fmt, "-l", spec, img], check=False, timeout=30)
        py = run([PYQEMU_NBD, "-f", fmt, "-l", spec, img], check=False, timeout=30)
        assert py.returncode == q.returncode == 1
        assert py.stderr.replace("pyqemu-nbd", "qemu-nbd") == q.stderr
