"""pyqemu-nbd against real NBD clients (nbdinfo, nbdcopy, qemu-img, qemu-io), beside real qemu-nbd."""
from __future__ import annotations

import json
import os
import re

import pytest
from nbd_peer_util import PYQEMU_NBD, need, run

MiB = 1 << 20


def make_raw(path, size=4 * MiB, chunks=((0, b"hello"), (MiB, b"\x55" * 65536), (3 * MiB, b"\xaa" * 4096))):
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in chunks:
            f.seek(off)
            f.write(data)
    return str(path)


def make_qcow2(tmp_path, name="img.qcow2"):
    p = str(tmp_path / name)
    run([need("qemu-img"), "create", "-q", "-f", "qcow2", p, "8M"])
    run([need("qemu-io"), "-f", "qcow2", "-c", "write -P 0x11 0 64k", "-c", "write -P 0x22 3M 128k",
         "-c", "write -z 5M 64k", p])
    return p


def nbdinfo_json(uri, *extra):
    out = json.loads(run([need("nbdinfo"), "--json", *extra, uri]).stdout)
    for e in out["exports"]:
        e.pop("uri", None)
    return out


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_nbdinfo_json_and_map_match_qemu_nbd(tmp_path, nbd_server, fmt):
    img = make_raw(tmp_path / "a.raw") if fmt == "raw" else make_qcow2(tmp_path)
    args = ["-f", fmt, "-D", "a disk", "-x", "disk0"]
    py = nbd_server("py", img, args, export="disk0")
    py_info = nbdinfo_json(py.uri)
    py_map = run([need("nbdinfo"), "--map", py.uri]).stdout
    py.stop()
    qm = nbd_server("qemu", img, args, export="disk0")
    assert py_info == nbdinfo_json(qm.uri)
    assert py_map == run([need("nbdinfo"), "--map", qm.uri]).stdout
    assert "data" in py_map and "hole,zero" in py_map


def test_nbdinfo_list_and_readonly_multiconn_flags(tmp_path, nbd_server):
    img = make_raw(tmp_path / "a.raw")
    for args in (["-r"], ["-e", "3"], ["-r", "-e", "2"]):
        py = nbd_server("py", img, ["-f", "raw", "-x", "ex", "-D", "descr"] + args, export="ex")
        py_info = nbdinfo_json(py.uri, "--list")
        py.stop()
        qm = nbd_server("qemu", img, ["-f", "raw", "-x", "ex", "-D", "descr"] + args, export="ex")
        assert py_info == nbdinfo_json(qm.uri, "--list")
        qm.stop()


def test_nbdinfo_unknown_export_fails_as_with_qemu_nbd(tmp_path, nbd_server):
    img = make_raw(tmp_path / "a.raw")
    out = []
    for which in ("py", "qemu"):
        srv = nbd_server(which, img, ["-f", "raw", "-r", "-x", "real"])
        p = run([need("nbdinfo"), srv.uri.replace("///", "///nosuch")], check=False)
        srv.stop()
        assert p.returncode == 1
        out.append(p.stderr)
    assert "No such file or directory for export: nosuch" in out[0]
    assert out[0] == out[1]


def test_nbdcopy_both_ways_byte_identical_tcp(tmp_path, nbd_server):
    src = make_raw(tmp_path / "src.raw", size=8 * MiB,
                   chunks=[(i * 3 * 65536 + 7, os.urandom(40000)) for i in range(30)])
    dst = str(tmp_path / "dst.raw")
    with open(dst, "wb") as f:
        f.truncate(8 * MiB)
    srv = nbd_server("py", dst, ["-f", "raw"], tcp=True)
    run([need("nbdcopy"), src, srv.uri])
    back = str(tmp_path / "back.raw")
    run([need("nbdcopy"), srv.uri, back])
    srv.stop()
    data = open(src, "rb").read()
    assert open(dst, "rb").read() == data
    assert open(back, "rb").read() == data


def test_nbdcopy_into_qcow2_export_then_qemu_img_check_clean(tmp_path, nbd_server):
    src = make_raw(tmp_path / "src.raw", size=8 * MiB,
                   chunks=[(i * 5 * 65536, os.urandom(70000)) for i in range(20)])
    dst = str(tmp_path / "dst.qcow2")
    run([need("qemu-img"), "create", "-q", "-f", "qcow2", dst, "8M"])
    srv = nbd_server("py", dst, ["-f", "qcow2", "-e", "4"])
    run([need("nbdcopy"), src, srv.uri])
    srv.stop()
    run([need("qemu-img"), "check", dst])
    run([need("qemu-img"), "compare", "-f", "raw", "-F", "qcow2", src, dst])


def test_qemu_img_convert_map_compare_over_nbd(tmp_path, nbd_server):
    img = make_qcow2(tmp_path)
    py = nbd_server("py", img, ["-f", "qcow2", "-r", "-e", "4"], tcp=True)
    out = str(tmp_path / "out.qcow2")
    run([need("qemu-img"), "convert", "-O", "qcow2", py.uri, out])
    run([need("qemu-img"), "compare", "-F", "qcow2", py.uri, out])
    run([need("qemu-img"), "compare", "-f", "qcow2", "-F", "qcow2", img, out])
    py_map = json.loads(run([need("qemu-img"), "map", "--output=json", py.uri]).stdout)
    py.stop()
    qm = nbd_server("qemu", img, ["-f", "qcow2", "-r", "-e", "4"], tcp=True)
    qm_map = json.loads(run([need("qemu-img"), "map", "--output=json", qm.uri]).stdout)
    assert py_map == qm_map


def test_qemu_io_writes_land_on_disk(tmp_path, nbd_server):
    img = make_raw(tmp_path / "a.raw")
    srv = nbd_server("py", img, ["-f", "raw"])
    p = run([need("qemu-io"), "-f", "raw", "-c", "write -P 0xcd 65536 65536", "-c", "write -z 2M 1M",
             "-c", "discard 3M 4k", "-c", "flush", "-c", "read -P 0xcd 65536 65536", srv.uri])
    assert "wrote 65536/65536 bytes at offset 65536" in p.stdout
    assert "read 65536/65536 bytes at offset 65536" in p.stdout
    srv.stop()
    data = open(img, "rb").read()
    assert data[65536:131072] == b"\xcd" * 65536
    assert data[2 * MiB:3 * MiB] == bytes(MiB)
    assert data[:5] == b"hello"


def test_read_only_export_rejects_writes_image_unchanged(tmp_path, nbd_server):
    img = make_raw(tmp_path / "a.raw")
    before = open(img, "rb").read()
    results = []
    for which in ("py", "qemu"):
        srv = nbd_server(which, img, ["-f", "raw", "-r"])
        p = run([need("qemu-io"), "-f", "raw", "-c", "write -P 1 0 4k", srv.uri], check=False)
        results.append((p.returncode, p.stdout, p.stderr.replace(srv.uri, "URI")))
        srv.stop()
    assert results[0] == results[1]
    assert "Permission denied" in results[0][2]
    assert open(img, "rb").read() == before


def test_offset_option(tmp_path, nbd_server):
    img = make_raw(tmp_path / "a.raw")
    srv = nbd_server("py", img, ["-f", "raw", "-o", str(MiB)])
    out = str(tmp_path / "out.raw")
    run([need("nbdcopy"), srv.uri, out])
    assert open(out, "rb").read() == open(img, "rb").read()[MiB:]


def _mask(text: str) -> str:
    """Program names (with or without a path) are the one expected difference."""
    return re.sub(r"[^\s`']*qemu-nbd", "PROG", text)


@pytest.mark.parametrize("args", [
    ["--foo"], [], ["/nonexistent/image"], ["-x"], ["--shared"],
    ["--tls-creds", "tls0", "-f", "raw", "IMG"],
    ["--object", "tls-creds-x509,id=tls0,dir=/nonexist,endpoint=server", "--tls-creds", "tls0",
     "-f", "raw", "IMG"],
])
def test_errors_match_qemu_nbd(tmp_path, args):
    img = make_raw(tmp_path / "a.raw")
    args = [img if a == "IMG" else a for a in args]

    py = run([PYQEMU_NBD] + args, check=False, timeout=20)
    qm = run([need("qemu-nbd")] + args, check=False, timeout=20)
    assert py.returncode == qm.returncode == 1
    assert _mask(py.stderr) == _mask(qm.stderr)
