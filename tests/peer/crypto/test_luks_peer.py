"""LUKS images between pyqemu and qemu-img/qemu-io 7.2, both directions."""
from __future__ import annotations

import shutil

import pytest

from crypto_peer_util import (OUR_ITER, PYQEMU_IMG, PYQEMU_IO, QEMU_IMG, QEMU_IO, QEMU_ITER, SECRET, info_json,
                      run)

OPTS = "driver=luks,key-secret=sec0,file.filename=%s"


def _io(prog, path, *cmds, secret=SECRET):
    args = ["--object", secret, "--image-opts", OPTS % path]
    for c in cmds:
        args += ["-c", c]
    return run(prog, *args, cwd=None, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("opts", ["", "cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv",
                                  "cipher-alg=aes-192,ivgen-alg=plain,hash-alg=sha1", "cipher-alg=aes-128,cipher-mode=ctr",
                                  "cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=md5"])
def test_ours_create_theirs_read(tmp_path, opts):
    img = str(tmp_path / "o.luks")
    o = ",".join(x for x in ("key-secret=sec0", OUR_ITER, opts) if x)
    p = run(PYQEMU_IMG, "create", "-f", "luks", "--object", SECRET, "-o", o, img, "4M")
    assert p.stdout.startswith("Formatting '%s', fmt=luks size=4194304 key-secret=sec0" % img)
    w = _io(PYQEMU_IO, img, "write -P 0x41 0 64k", "write -P 0x42 1000 3000", "write -P 0x43 4190000 4304")
    assert w.returncode == 0, w.stderr
    r = _io(QEMU_IO, img, "read -P 0x41 0 1000", "read -P 0x42 1000 3000", "read -P 0x41 4000 61536",
            "read -P 0x43 4190000 4304")
    assert r.returncode == 0 and "failed" not in r.stdout, r.stdout + r.stderr
    # and theirs writes, ours reads
    assert _io(QEMU_IO, img, "write -P 0x55 2M 70000").returncode == 0
    r = _io(PYQEMU_IO, img, "read -P 0x55 2M 70000", "read -P 0x42 1000 3000")
    assert r.returncode == 0 and "failed" not in r.stdout, r.stdout + r.stderr
    assert info_json(QEMU_IMG, img, None) == info_json(PYQEMU_IMG, img, None)
    q = run(QEMU_IMG, "info", img).stdout
    assert run(PYQEMU_IMG, "info", img).stdout == q and "encrypted: yes" in q


@pytest.mark.slow
def test_theirs_create_ours_read_convert(tmp_path):
    img = str(tmp_path / "q.luks")
    run(QEMU_IMG, "create", "-q", "-f", "luks", "--object", SECRET, "-o",
        "key-secret=sec0,cipher-mode=cbc,ivgen-alg=essiv," + QEMU_ITER, img, "3M")
    assert _io(QEMU_IO, img, "write -P 0x66 512 1M", "write -z 1536k 4k").returncode == 0
    assert info_json(QEMU_IMG, img, None) == info_json(PYQEMU_IMG, img, None)
    raw = str(tmp_path / "out.raw")
    run(PYQEMU_IMG, "convert", "--object", SECRET, "--image-opts", OPTS % img, "-O", "raw", raw)
    ref = str(tmp_path / "ref.raw")
    run(QEMU_IMG, "convert", "--object", SECRET, "--image-opts", OPTS % img, "-O", "raw", ref)
    with open(raw, "rb") as a, open(ref, "rb") as b:
        assert a.read() == b.read()
    # convert to LUKS with pyqemu; qemu-img compares it with the source
    back = str(tmp_path / "back.luks")
    run(PYQEMU_IMG, "convert", "--object", SECRET, "-O", "luks", "-o", "key-secret=sec0," + OUR_ITER, raw, back)
    c = run(QEMU_IMG, "compare", "--object", SECRET, "--image-opts", "driver=raw,file.filename=" + raw,
            OPTS % back, check=False)
    assert c.returncode == 0, c.stdout + c.stderr


@pytest.mark.slow
def test_errors_match(tmp_path):
    img = str(tmp_path / "e.luks")
    run(PYQEMU_IMG, "create", "-q", "-f", "luks", "--object", SECRET, "-o", "key-secret=sec0," + OUR_ITER,
        img, "1M")
    cases = [
        ["--object", "secret,id=sec0,data=wrong", "--image-opts", OPTS % img],   # wrong password
        ["--image-opts", OPTS % img],                                             # no such secret
        ["--object", SECRET, "-f", "luks", img],                                  # no key-secret
        ["--object", SECRET, "--image-opts", OPTS % img.replace("e.luks", "nope")],
    ]
    for args in cases:
        q = run(QEMU_IMG, "convert", *args, "-O", "raw", str(tmp_path / "x.raw"), check=False)
        p = run(PYQEMU_IMG, "convert", *args, "-O", "raw", str(tmp_path / "x.raw"), check=False)
        assert q.returncode == p.returncode == 1
        assert p.stderr.replace("pyqemu-img", "qemu-img") == q.stderr
        # qemu-io words it "can't open: ..." (no device name with --image-opts)
        q = run(QEMU_IO, *args, "-c", "read 0 512", check=False)
        p = run(PYQEMU_IO, *args, "-c", "read 0 512", check=False)
        assert (p.returncode, p.stderr.replace("pyqemu-io", "qemu-io")) == (q.returncode, q.stderr)
    for bad in ("cipher-alg=bogus", "cipher-mode=bogus", "ivgen-alg=x", "hash-alg=sha3", "cipher-alg=des",
                "cipher-alg=aes-128,ivgen-alg=essiv,ivgen-hash-alg=sha1", "ivgen-alg=essiv,ivgen-hash-alg=sha512",
                "preallocation=bogus"):
        args = ["create", "-f", "luks", "--object", SECRET, "-o", "key-secret=sec0," + bad,
                str(tmp_path / "c.luks"), "1M"]
        q = run(QEMU_IMG, *args, check=False)
        p = run(PYQEMU_IMG, *args, check=False)
        assert (p.returncode, p.stdout, p.stderr.replace("pyqemu-img", "qemu-img")) == \
            (q.returncode, q.stdout, q.stderr), bad
    args = ["create", "-f", "luks", "-o", "key-secret=sec1", str(tmp_path / "d.luks"), "1M"]
    q = run(QEMU_IMG, *args, check=False)
    p = run(PYQEMU_IMG, *args, check=False)
    assert (p.returncode, p.stdout, p.stderr.replace("pyqemu-img", "qemu-img")) == (q.returncode, q.stdout, q.stderr)
    assert not (tmp_path / "d.luks").exists()


def test_corrupt_header_clear_error(tmp_path):
    img = tmp_path / "bad.luks"
    # a hand-made header: magic and version right, everything else zero
    img.write_bytes(b"LUKS\xba\xbe\x00\x01" + bytes(4096))
    q = run(QEMU_IMG, "info", str(img), check=False)
    p = run(PYQEMU_IMG, "info", str(img), check=False)
    assert q.returncode == p.returncode == 1
    assert p.stderr.replace("pyqemu-img", "qemu-img") == q.stderr


@pytest.mark.slow
def test_resize_and_check(tmp_path):
    img = str(tmp_path / "r.luks")
    run(PYQEMU_IMG, "create", "-q", "-f", "luks", "--object", SECRET, "-o", "key-secret=sec0," + OUR_ITER,
        img, "1M")
    assert _io(PYQEMU_IO, img, "write -P 0x12 0 1M").returncode == 0
    run(PYQEMU_IMG, "resize", "--object", SECRET, "--image-opts", OPTS % img, "3M")
    assert info_json(QEMU_IMG, img, None)["virtual-size"] == 3 << 20
    r = _io(QEMU_IO, img, "read -P 0x12 0 1M")
    assert r.returncode == 0 and "failed" not in r.stdout
    for prog in (QEMU_IMG, PYQEMU_IMG):
        c = run(prog, "check", "--object", SECRET, "--image-opts", OPTS % img, check=False)
        assert c.returncode == 63 and "This image format does not support checks" in c.stderr


@pytest.mark.slow  # real qemu-img measure benchmarks PBKDF2 for LUKS
def test_measure_matches(tmp_path):
    raw = str(tmp_path / "m.raw")
    run(QEMU_IMG, "create", "-q", "-f", "raw", raw, "3M")
    # real qemu-img derives a throw-away header for measure: iter-time keeps that short
    for args in (["--size", "16M", "-O", "luks", "-o", "key-secret=sec0,iter-time=300"],
                 ["--size", "16M", "-O", "luks"],
                 ["--size", "16M", "-O", "luks", "-o", "key-secret=sec0,cipher-alg=bogus"],
                 ["-O", "luks", "-o", "key-secret=sec0,cipher-mode=cbc,iter-time=300", "--output=json", raw],
                 ["--size", "16M", "-O", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=sec0,"
                  "encrypt.cipher-alg=aes-128,encrypt.iter-time=300,cluster_size=4k", "--output=json"]):
        q = run(QEMU_IMG, "measure", "--object", SECRET, *args, check=False)
        p = run(PYQEMU_IMG, "measure", "--object", SECRET, *args, check=False)
        assert (p.returncode, p.stdout, p.stderr.replace("pyqemu-img", "qemu-img")) == \
            (q.returncode, q.stdout, q.stderr), args


@pytest.mark.slow
def test_secret_forms(tmp_path):
    """The passphrase given as base64, in a file, and AES-256-CBC-encrypted with another secret."""
    import base64
    import os as _os

    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    img = str(tmp_path / "s.luks")
    run(PYQEMU_IMG, "create", "-q", "-f", "luks", "--object", "secret,id=sec0,data=MTIzNDU2,format=base64",
        "-o", "key-secret=sec0," + OUR_ITER, img, "1M")
    (tmp_path / "pw").write_bytes(b"123456")
    master = bytes(range(32))
    iv = _os.urandom(16)
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(master), modes.CBC(iv)).encryptor()
    ct = enc.update(padder.update(b"123456") + padder.finalize()) + enc.finalize()
    forms = [["--object", "secret,id=sec0,file=%s" % (tmp_path / "pw")],
             ["--object", "secret,id=master,data=%s,format=base64" % base64.b64encode(master).decode(),
              "--object", "secret,id=sec0,keyid=master,iv=%s,data=%s,format=base64"
              % (base64.b64encode(iv).decode(), base64.b64encode(ct).decode())]]
    for objs in forms:
        for prog in (QEMU_IO, PYQEMU_IO):
            p = run(prog, *objs, "--image-opts", OPTS % img, "-c", "write -P 0x5 0 4096", "-c",
                    "read -P 0x5 0 4096", check=False)
            assert p.returncode == 0 and "failed" not in p.stdout, (prog, objs, p.stdout + p.stderr)


AMEND_STEPS = ["state=inactive,old-secret=sec0", "state=inactive,keyslot=0", "state=inactive,keyslot=5",
               "state=inactive", "state=inactive,old-secret=sec1", "state=active",
               "state=active,new-secret=sec1,keyslot=0", "state=active,new-secret=sec1,keyslot=-1",
               "state=active,new-secret=sec1,iter-time=300", "state=inactive,keyslot=1,old-secret=sec0",
               "state=inactive,old-secret=sec0"]


@pytest.mark.slow
def test_amend_key_slots_like_qemu(tmp_path):
    objs = ["--object", SECRET, "--object", "secret,id=sec1,data=abc", "--object", "secret,id=sec2,data=zzz"]
    results = {}
    # one starting image (few PBKDF2 iterations: every amend unlocks it) copied for both tools
    base = str(tmp_path / "base.luks")
    run(PYQEMU_IMG, "create", "-q", "-f", "luks", "--object", SECRET, "-o", "key-secret=sec0," + OUR_ITER,
        base, "1M")
    assert _io(QEMU_IO, base, "write -P 0x2a 0 8k").returncode == 0
    for prog in (QEMU_IMG, PYQEMU_IMG):
        img = str(tmp_path / ("a%d.luks" % len(results)))
        shutil.copyfile(base, img)
        out = []
        for step in AMEND_STEPS:
            if prog == PYQEMU_IMG:
                step = step.replace("iter-time=300", OUR_ITER)
            p = run(prog, "amend", *objs, "-o", step, "--image-opts", OPTS % img, check=False)
            out.append((step.split(",iter")[0], p.returncode, p.stdout,
                        p.stderr.replace("pyqemu-img", "qemu-img").replace(img, "IMG")))
        slots = info_json(QEMU_IMG, img, None)["format-specific"]["data"]["slots"]
        out.append([s["active"] for s in slots])
        # slot 1 (sec1) and the volume survive; the data reads back with the remaining passphrase
        r = _io(QEMU_IO, img, "read -P 0x2a 0 8k", secret="secret,id=sec0,data=abc")
        out.append(r.returncode == 0 and "failed" not in r.stdout)
        results[prog] = out
    assert results[PYQEMU_IMG] == results[QEMU_IMG]


@pytest.mark.slow
def test_amend_encrypted_qcow2(tmp_path):
    img = str(tmp_path / "a.qcow2")
    objs = ["--object", SECRET, "--object", "secret,id=sec1,data=abc"]
    run(PYQEMU_IMG, "create", "-q", "-f", "qcow2", *objs, "-o",
        "encrypt.format=luks,encrypt.key-secret=sec0,encrypt." + OUR_ITER, img, "1M")
    q2 = "driver=qcow2,encrypt.key-secret=sec0,file.filename=" + img
    run(PYQEMU_IMG, "amend", *objs, "-o", "encrypt.state=active,encrypt.new-secret=sec1,encrypt." + OUR_ITER,
        "--image-opts", q2)
    run(PYQEMU_IMG, "amend", *objs, "-o", "encrypt.state=inactive,encrypt.keyslot=0", "--image-opts", q2)
    for prog in (QEMU_IO, PYQEMU_IO):
        p = run(prog, "--object", "secret,id=sec0,data=abc", "--image-opts", q2, "-c", "write -P 1 0 4k",
                "-c", "read -P 1 0 4k", check=False)
        assert p.returncode == 0 and "failed" not in p.stdout, p.stdout + p.stderr
    c = run(QEMU_IMG, "check", "--object", "secret,id=sec0,data=abc", "--image-opts", q2, check=False)
    assert c.returncode == 0 and "No errors were found" in c.stdout
    bad = run(QEMU_IO, "--object", SECRET, "--image-opts", q2, "-c", "read 0 512", check=False)
    assert "Invalid password, cannot unlock any keyslot" in bad.stderr
    for fmt, img2 in (("qcow2", img), ("luks", img)):
        h = run(QEMU_IMG, "amend", "-o", "help", "-f", fmt, img2).stdout
        assert run(PYQEMU_IMG, "amend", "-o", "help", "-f", fmt, img2).stdout == h


@pytest.mark.slow
def test_odd_sizes_and_preallocation(tmp_path):
    """A size that is not whole sectors reads as QEMU rounds it; preallocation=metadata is accepted."""
    for size, prealloc in (("1000", "off"), ("1M", "metadata"), ("1M", "falloc")):
        img = str(tmp_path / ("p-%s.luks" % prealloc))
        run(PYQEMU_IMG, "create", "-q", "-f", "luks", "--object", SECRET, "-o",
            "key-secret=sec0,preallocation=%s,%s" % (prealloc, OUR_ITER), img, size)
        assert info_json(QEMU_IMG, img, None) == info_json(PYQEMU_IMG, img, None)
        vs = info_json(QEMU_IMG, img, None)["virtual-size"]
        r = _io(QEMU_IO, img, "write -P 0x9 0 %d" % vs, "read -P 0x9 0 %d" % vs)
        assert r.returncode == 0 and "failed" not in r.stdout
        r = _io(PYQEMU_IO, img, "read -P 0x9 0 %d" % vs)
        assert r.returncode == 0 and "failed" not in r.stdout


def test_amend_option_errors_match(tmp_path):
    plain = str(tmp_path / "p.qcow2")
    aes = str(tmp_path / "a.qcow2")
    objs = ["--object", SECRET, "--object", "secret,id=sec1,data=abc"]
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", plain, "1M")
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", *objs, "-o", "encrypt.format=aes,encrypt.key-secret=sec0", aes, "1M")
    cases = [[plain, "encrypt.key-secret=sec0"], [plain, "encrypt.cipher-alg=aes-128"], [plain, "encrypt.bogus=1"],
             [plain, "encrypt.state=active,encrypt.new-secret=sec1,encrypt.bogus=1"],
             [plain, "encrypt.format=luks,encrypt.key-secret=sec0"], [plain, "encrypt.state=active,encrypt.new-secret=sec0"],
             ["driver=qcow2,encrypt.key-secret=sec0,file.filename=" + aes,
              "encrypt.state=active,encrypt.new-secret=sec1,compat=0.10"]]
    for target, o in cases:
        spec = ["--image-opts", target] if target.startswith("driver=") else [target]
        q = run(QEMU_IMG, "amend", *objs, "-o", o, *spec, check=False)
        p = run(PYQEMU_IMG, "amend", *objs, "-o", o, *spec, check=False)
        assert (p.returncode, p.stderr.replace("pyqemu-img", "qemu-img")) == (q.returncode, q.stderr), o
    assert info_json(QEMU_IMG, aes, None)["format-specific"]["data"]["compat"] == "1.1"
