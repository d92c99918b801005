"""Encrypted qcow2 (LUKS and legacy AES) and qcow (AES) between pyqemu and qemu-img/qemu-io 7.2."""
from __future__ import annotations

import json

import pytest

from crypto_peer_util import OUR_ITER, PYQEMU_IMG, PYQEMU_IO, QEMU_IMG, QEMU_IO, QEMU_ITER, SECRET, info_json, run

OBJ = ["--object", SECRET]


def _opts(fmt, path):
    return ["--image-opts", "driver=%s,encrypt.key-secret=sec0,file.filename=%s" % (fmt, path)]


def _io(prog, fmt, path, *cmds):
    args = OBJ + _opts(fmt, path)
    for c in cmds:
        args += ["-c", c]
    p = run(prog, *args, check=False)
    assert p.returncode == 0 and "failed" not in p.stdout, p.stdout + p.stderr
    return p


def _check_json(prog, fmt, path):
    p = run(prog, "check", "--output=json", *OBJ, *_opts(fmt, path), check=False)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    d.pop("filename", None)
    return d


CASES = [("qcow2", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.%s" % OUR_ITER,
          "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.%s" % QEMU_ITER),
         ("qcow2", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.cipher-alg=aes-128,"
          "encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,cluster_size=4096,encrypt.%s" % OUR_ITER, None),
         ("qcow2", "encrypt.format=aes,encrypt.key-secret=sec0", "encrypt.format=aes,encrypt.key-secret=sec0"),
         ("qcow2", "encryption=on,encrypt.key-secret=sec0,compat=0.10", None),
         ("qcow", "encrypt.format=aes,encrypt.key-secret=sec0", "encrypt.format=aes,encrypt.key-secret=sec0")]


@pytest.mark.slow
@pytest.mark.parametrize("fmt,ours,theirs", CASES)
def test_both_directions(tmp_path, fmt, ours, theirs):
    a = str(tmp_path / "ours.img")
    p = run(PYQEMU_IMG, "create", "-f", fmt, *OBJ, "-o", ours, a, "3M")
    for chunk in ours.split(","):
        if not chunk.startswith("encrypt.iter-time") and not chunk.startswith("cluster_size"):
            assert chunk in p.stdout
    _io(PYQEMU_IO, fmt, a, "write -P 0x41 1000 100000", "write -P 0x42 2M 70000", "write -P 0x43 65536 512")
    _io(QEMU_IO, fmt, a, "read -P 0x41 1000 64536", "read -P 0x43 65536 512", "read -P 0x41 66048 34952",
        "read -P 0x42 2M 70000", "read -P 0 0 1000", "read -P 0 101000 100000", "write -P 0x44 1M 4097")
    _io(PYQEMU_IO, fmt, a, "read -P 0x44 1M 4097", "read -P 0x42 2M 70000", "read -P 0 2800k 100k")
    assert info_json(QEMU_IMG, a, None) == info_json(PYQEMU_IMG, a, None)
    q = run(QEMU_IMG, "info", a).stdout
    assert run(PYQEMU_IMG, "info", a).stdout.split("\n")[4:] == q.split("\n")[4:]  # all but 'disk size'
    assert _check_json(QEMU_IMG, fmt, a) == _check_json(PYQEMU_IMG, fmt, a) if fmt == "qcow2" else True
    if theirs is None:
        return
    b = str(tmp_path / "theirs.img")
    run(QEMU_IMG, "create", "-q", "-f", fmt, *OBJ, "-o", theirs, b, "3M")
    _io(QEMU_IO, fmt, b, "write -P 0x51 0 70000", "write -P 0x52 1500k 3000")
    _io(PYQEMU_IO, fmt, b, "read -P 0x51 0 70000", "read -P 0x52 1500k 3000", "read -P 0 70000 10000",
        "write -P 0x53 2M 1000")
    _io(QEMU_IO, fmt, b, "read -P 0x53 2M 1000", "read -P 0x51 0 70000")
    assert info_json(QEMU_IMG, b, None) == info_json(PYQEMU_IMG, b, None)
    if fmt == "qcow2":
        assert _check_json(QEMU_IMG, fmt, b) == _check_json(PYQEMU_IMG, fmt, b)


@pytest.mark.slow
def test_convert_to_and_from_encrypted_qcow2(tmp_path):
    src = str(tmp_path / "s.raw")
    run(QEMU_IMG, "create", "-q", "-f", "raw", src, "5M")
    run(QEMU_IO, "-f", "raw", "-c", "write -P 0x17 100k 1M", "-c", "write -P 0x18 4M 4096", src)
    enc = str(tmp_path / "e.qcow2")
    run(PYQEMU_IMG, "convert", *OBJ, "-O", "qcow2", "-o",
        "encrypt.format=luks,encrypt.key-secret=sec0,encrypt." + OUR_ITER, src, enc)
    c = run(QEMU_IMG, "compare", *OBJ, "--image-opts", "driver=raw,file.filename=" + src,
            "driver=qcow2,encrypt.key-secret=sec0,file.filename=" + enc, check=False)
    assert c.returncode == 0, c.stdout + c.stderr
    ck = run(QEMU_IMG, "check", *OBJ, *_opts("qcow2", enc), check=False)
    assert ck.returncode == 0 and "No errors were found" in ck.stdout
    out = str(tmp_path / "o.raw")
    run(PYQEMU_IMG, "convert", *OBJ, *_opts("qcow2", enc), "-O", "raw", out)
    with open(src, "rb") as f1, open(out, "rb") as f2:
        assert f1.read() == f2.read()
    # map shows no host offsets for encrypted data, as QEMU's does
    q = run(QEMU_IMG, "map", "--output=json", *OBJ, *_opts("qcow2", enc)).stdout
    assert run(PYQEMU_IMG, "map", "--output=json", *OBJ, *_opts("qcow2", enc)).stdout == q


def test_create_errors_match(tmp_path):
    for fmt, o in [("qcow2", "encrypt.format=bogus,encrypt.key-secret=sec0"),
                   ("qcow2", "encrypt.format=aes,encrypt.key-secret=sec0,encrypt.cipher-alg=aes-128"),
                   ("qcow2", "encrypt.format=aes"),
                   ("qcow2", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.cipher-mode=bogus"),
                   ("qcow2", "encrypt.format=luks,encrypt.key-secret=nosuch"),
                   ("qcow", "encrypt.format=luks,encrypt.key-secret=sec0"),
                   ("qcow", "encrypt.format=aes,encrypt.key-secret=sec0,encrypt.cipher-alg=aes-128"),
                   ("qcow", "encrypt.format=aes,encrypt.key-secret=nosuch"),
                   ("qcow", "encrypt.format=aes")]:
        img = tmp_path / "x.img"
        args = ["create", "-f", fmt, *OBJ, "-o", o, str(img), "1M"]
        res = []
        for prog in (QEMU_IMG, PYQEMU_IMG):
            if img.exists():
                img.unlink()
            p = run(prog, *args, check=False)
            # what is left behind matters too: QEMU removes some failed images, not others
            res.append((p.returncode, p.stdout, p.stderr.replace("pyqemu-img", "qemu-img"), img.exists()))
        assert res[1] == res[0], o


def test_missing_key_errors_match(tmp_path):
    img = str(tmp_path / "k.qcow2")
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", *OBJ, "-o", "encrypt.format=aes,encrypt.key-secret=sec0", img, "1M")
    for args in (["check", img], ["map", img], ["convert", "-O", "raw", img, str(tmp_path / "o.raw")],
                 ["check", "--image-opts", "driver=qcow2,encrypt.key-secret=nope,file.filename=" + img]):
        q = run(QEMU_IMG, *args, check=False)
        p = run(PYQEMU_IMG, *args, check=False)
        assert (p.returncode, p.stderr.replace("pyqemu-img", "qemu-img")) == (q.returncode, q.stderr), args


def test_convert_compressed_to_encrypted_is_refused_like_qemu(tmp_path):
    src = str(tmp_path / "s.raw")
    run(QEMU_IMG, "create", "-q", "-f", "raw", src, "1M")
    for o in ("encrypt.format=luks,encrypt.key-secret=sec0", "encryption=on", "encrypt.format=aes"):
        out = str(tmp_path / "c.qcow2")
        q = run(QEMU_IMG, "convert", *OBJ, "-c", "-O", "qcow2", "-o", o, src, out, check=False)
        p = run(PYQEMU_IMG, "convert", *OBJ, "-c", "-O", "qcow2", "-o", o, src, out, check=False)
        assert (p.returncode, p.stderr.replace("pyqemu-img", "qemu-img")) == (q.returncode, q.stderr)
        assert q.returncode == 1 and not (tmp_path / "c.qcow2").exists()
