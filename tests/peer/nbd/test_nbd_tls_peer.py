"""NBD over TLS: pyqemu-nbd with nbdinfo/nbdcopy/qemu-io as clients, pyqemu-io against qemu-nbd."""
from __future__ import annotations

import os

import pytest
from nbd_peer_util import PYQEMU_NBD, need, run
from nbd_tls_certs import make_certs

MiB = 1 << 20


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    return make_certs(str(d))


def server_obj(certs):
    return ["--object", "tls-creds-x509,id=tls0,endpoint=server,dir=%s" % certs, "--tls-creds", "tls0"]


def make_image(tmp_path):
    p = str(tmp_path / "disk.raw")
    with open(p, "wb") as f:
        f.truncate(4 * MiB)
        f.seek(MiB)
        f.write(b"\x77" * 65536)
    return p


def test_nbdinfo_and_nbdcopy_over_tls_unix_and_tcp(tmp_path, certs, nbd_server):
    img = make_image(tmp_path)
    for tcp in (False, True):
        srv = nbd_server("py", img, ["-f", "raw"] + server_obj(certs), tcp=tcp)
        if tcp:
            uri = "nbds://localhost:%d/?tls-certificates=%s" % (srv.port, certs)
        else:
            uri = "nbds+unix:///?socket=%s&tls-certificates=%s" % (srv.sock, certs)
        info = run([need("nbdinfo"), uri]).stdout
        assert "with TLS" in info and "export-size: 4194304" in info
        out = str(tmp_path / ("copy%d.raw" % tcp))
        run([need("nbdcopy"), uri, out])
        with open(out, "rb") as a, open(img, "rb") as b:
            assert a.read() == b.read()
        # Without TLS the server refuses to serve.
        plain = srv.uri
        p = run([need("nbdinfo"), plain], check=False)
        assert p.returncode != 0
        srv.stop()


def test_real_qemu_io_with_tls_creds_writes_through(tmp_path, certs, nbd_server):
    img = make_image(tmp_path)
    srv = nbd_server("py", img, ["-f", "raw"] + server_obj(certs))
    opts = "driver=nbd,server.type=unix,server.path=%s,tls-creds=tls0,tls-hostname=localhost" % srv.sock
    p = run([need("qemu-io"), "--object", "tls-creds-x509,id=tls0,endpoint=client,dir=%s" % certs,
             "--image-opts", opts, "-c", "write -P 0x42 0 4k", "-c", "read -P 0x77 1M 64k"])
    assert "wrote 4096/4096 bytes at offset 0" in p.stdout
    srv.stop()
    with open(img, "rb") as f:
        assert f.read(4096) == b"\x42" * 4096


@pytest.mark.parametrize("server_prog", ["qemu", "py"])
def test_pyqemu_io_client_with_tls(tmp_path, certs, nbd_server, server_prog):
    img = make_image(tmp_path)
    srv = nbd_server(server_prog, img, ["-f", "raw"] + server_obj(certs), tcp=True)
    obj = "tls-creds-x509,id=tls0,endpoint=client,dir=%s" % certs
    opts = "driver=raw,file.driver=nbd,file.server.type=inet,file.server.host=localhost," \
           "file.server.port=%d,file.tls-creds=tls0" % srv.port
    pyio = os.path.join(os.path.dirname(PYQEMU_NBD), "pyqemu-io")
    p = run([pyio, "--object", obj, "--image-opts", opts, "-c", "read -P 0x77 1M 64k", "-c", "write -P 5 0 512"])
    assert "read 65536/65536 bytes at offset 1048576" in p.stdout
    # Without credentials the TLS-only server turns the client away.
    bad = run([pyio, "-f", "raw", "-c", "read 0 1", srv.uri], check=False)
    assert bad.returncode == 1 and "TLS" in bad.stderr
    srv.stop()
    with open(img, "rb") as f:
        assert f.read(512) == b"\x05" * 512


def test_client_certificate_from_another_ca_is_refused(tmp_path, certs, nbd_server):
    img = make_image(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    make_certs(str(other))
    srv = nbd_server("py", img, ["-f", "raw"] + server_obj(certs))
    p = run([need("nbdinfo"), "nbds+unix:///?socket=%s&tls-certificates=%s" % (srv.sock, other)], check=False)
    assert p.returncode != 0
    # The server survives and serves a correct client afterwards.
    assert run([need("nbdinfo"), "nbds+unix:///?socket=%s&tls-certificates=%s" % (srv.sock, certs)]).returncode == 0


@pytest.mark.parametrize("server_prog", ["qemu", "py"])
def test_plain_clients_get_qemus_tls_messages(tmp_path, certs, nbd_server, server_prog):
    img = make_image(tmp_path)
    srv = nbd_server(server_prog, img, ["-f", "raw"] + server_obj(certs))
    pyio = os.path.join(os.path.dirname(PYQEMU_NBD), "pyqemu-io")
    q = run([need("qemu-io"), "-c", "read 0 1", srv.uri], check=False)
    p = run([pyio, "-c", "read 0 1", srv.uri], check=False)
    assert p.returncode == q.returncode == 1
    assert p.stderr.replace("pyqemu-io", "qemu-io") == q.stderr
    assert "TLS negotiation required before option 7 (go)" in p.stderr
    for extra in ([], ["--object", "tls-creds-x509,id=c0,endpoint=client,dir=%s" % certs, "--tls-creds", "c0"]):
        q = run([need("qemu-nbd"), "-L", "-k", srv.sock] + extra, check=False)
        p = run([PYQEMU_NBD, "-L", "-k", srv.sock] + extra, check=False)
        assert p.returncode == q.returncode == 1
        assert p.stderr.replace("pyqemu-nbd", "qemu-nbd") == q.stderr


def test_list_over_tls_tcp(tmp_path, certs, nbd_server):
    img = make_image(tmp_path)
    srv = nbd_server("py", img, ["-f", "raw", "-x", "secure"] + server_obj(certs), tcp=True, export="secure")
    obj = ["--object", "tls-creds-x509,id=c0,endpoint=client,dir=%s" % certs, "--tls-creds", "c0"]
    args = ["-L", "-b", "localhost", "-p", str(srv.port)] + obj
    q = run([need("qemu-nbd")] + args)
    p = run([PYQEMU_NBD] + args)
    assert p.stdout == q.stdout and "export: 'secure'" in p.stdout
