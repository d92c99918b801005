"""LUKS interoperability with Linux cryptsetup (cryptsetup-bin): headers, key slots, master keys.

cryptsetup cannot map the data here (no device-mapper in CI), so the data
path is checked through qemu-io: pyqemu writes, QEMU reads with the master
key it unlocked itself from the same header.
"""
from __future__ import annotations

import shutil

import pytest

from crypto_peer_util import OUR_ITER, PYQEMU_IMG, PYQEMU_IO, QEMU_IMG, QEMU_IO, SECRET, info_json, run

CRYPTSETUP = shutil.which("cryptsetup") or shutil.which("cryptsetup", path="/usr/sbin:/sbin")
OPTS = "driver=luks,key-secret=sec0,file.filename=%s"


def _io(prog, path, *cmds, secret=SECRET):
    args = ["--object", secret, "--image-opts", OPTS % path]
    for c in cmds:
        args += ["-c", c]
    p = run(prog, *args, check=False)
    assert p.returncode == 0 and "failed" not in p.stdout, p.stdout + p.stderr
    return p


def _dump(path):
    out = run(CRYPTSETUP, "luksDump", path).stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}


@pytest.mark.slow
def test_cryptsetup_reads_our_header_and_key_slot(tmp_path):
    img = str(tmp_path / "o.luks")
    run(PYQEMU_IMG, "create", "-q", "-f", "luks", "--object", SECRET, "-o",
        "key-secret=sec0,cipher-mode=cbc,ivgen-alg=essiv," + OUR_ITER, img, "2M")
    d = _dump(img)
    ours = info_json(PYQEMU_IMG, img, None)["format-specific"]["data"]
    assert (d["Version"], d["Cipher name"], d["Cipher mode"], d["Hash spec"]) == \
        ("1", "aes", "cbc-essiv:sha256", "sha256")
    assert d["UUID"] == ours["uuid"] and int(d["Payload offset"]) * 512 == ours["payload-offset"]
    (tmp_path / "pw").write_text("123456")
    (tmp_path / "bad").write_text("654321")
    run(CRYPTSETUP, "open", "--test-passphrase", "--key-file", str(tmp_path / "pw"), img)
    assert run(CRYPTSETUP, "open", "--test-passphrase", "--key-file", str(tmp_path / "bad"), img,
               check=False).returncode != 0
    # a second key slot added by cryptsetup opens the same volume in pyqemu
    _io(PYQEMU_IO, img, "write -P 0x61 0 64k")
    (tmp_path / "pw2").write_text("second")
    run(CRYPTSETUP, "luksAddKey", "--batch-mode", "--pbkdf-force-iterations", "1000", "--key-file",
        str(tmp_path / "pw"), img, str(tmp_path / "pw2"))
    _io(PYQEMU_IO, img, "read -P 0x61 0 64k", secret="secret,id=sec0,data=second")
    slots = info_json(PYQEMU_IMG, img, None)["format-specific"]["data"]["slots"]
    assert [s["active"] for s in slots[:3]] == [True, True, False]
    assert info_json(QEMU_IMG, img, None) == info_json(PYQEMU_IMG, img, None)


@pytest.mark.slow
@pytest.mark.parametrize("cipher", [[], ["--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"],
                                    ["--cipher", "aes-xts-plain64", "--key-size", "256", "--hash", "sha1"]])
def test_we_open_cryptsetup_volumes(tmp_path, cipher):
    img = str(tmp_path / "c.luks")
    with open(img, "wb") as f:
        f.truncate(6 << 20)
    (tmp_path / "pw").write_text("123456")
    run(CRYPTSETUP, "luksFormat", "--type", "luks1", "--batch-mode", "--pbkdf-force-iterations", "1000",
        *cipher, "--key-file", str(tmp_path / "pw"), img)
    assert info_json(QEMU_IMG, img, None) == info_json(PYQEMU_IMG, img, None)
    _io(PYQEMU_IO, img, "write -P 0x71 4096 200k")
    _io(QEMU_IO, img, "read -P 0x71 4096 200k")
    _io(PYQEMU_IO, img, "read 0 4096", secret="secret,id=sec0,data=123456")
    bad = run(PYQEMU_IO, "--object", "secret,id=sec0,data=nope", "--image-opts", OPTS % img, "-c",
              "read 0 512", check=False)
    assert bad.returncode == 1 and "Invalid password, cannot unlock any keyslot" in bad.stderr
