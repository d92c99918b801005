"""The project's Linux test guest: Debian's kernel and a busybox initramfs.

``fetch_debian_guest()`` downloads Debian's amd64 kernel and ``busybox-static``
with ``apt-get download`` into a cache directory (``.cache/linux`` by default)
and builds a gzip-compressed cpio 'newc' initramfs with pyqemu's own writer.
Its /init mounts devtmpfs, proc and sysfs, prints ``INIT_MARKER`` on the
console, and then either powers the machine off or, when the kernel command
line holds ``pyqemu.shell``, starts a shell on the console.
"""
from __future__ import annotations

import glob
import gzip
import io
import os
import subprocess
from typing import Dict, Optional

from pyqemu.util.cpio import CpioWriter
from pyqemu.util.error import QemuError

INIT_MARKER = "pyqemu-guest: init reached"

# Why each line: devtmpfs must be mounted before anything opens /dev (the
# kernel does not mount it for an initramfs); poweroff -f skips busybox init's
# shutdown sequence, which has nothing to do here.
INIT_SCRIPT = """#!/bin/sh
/bin/busybox --install -s /bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "%s"
echo "pyqemu-guest: cpus $(grep -c ^processor /proc/cpuinfo) $(grep MemTotal /proc/meminfo)"
if grep -q pyqemu.shell /proc/cmdline; then
    exec setsid cttyhack sh
fi
poweroff -f
""" % INIT_MARKER

DEFAULT_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))), ".cache", "linux")


def build_initramfs(busybox: bytes, init_script: str = INIT_SCRIPT) -> bytes:
    """A gzip-compressed newc archive holding busybox and the init script."""
    raw = io.BytesIO()
    w = CpioWriter(raw)
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "root"):
        w.add_dir(d)
    # The console node lets the kernel open /dev/console for init before devtmpfs exists.
    w.add_chardev("dev/console", 5, 1)
    w.add_file("bin/busybox", busybox, perm=0o755)
    w.add_symlink("bin/sh", "busybox")
    w.add_file("init", init_script.encode(), perm=0o755)
    w.close()
    out = io.BytesIO()
    # mtime=0 keeps the archive reproducible byte for byte.
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _run(cmd: list, cwd: str) -> str:
    try:
        res = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise QemuError("%s failed: %s" % (cmd[0], e))
    if res.returncode != 0:
        raise QemuError("%s failed: %s" % (" ".join(cmd), res.stderr.strip()))
    return res.stdout


def _kernel_package() -> str:
    out = _run(["apt-cache", "depends", "linux-image-amd64"], "/")
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split()[1]
    raise QemuError("apt-cache does not name the package behind linux-image-amd64")


def _download_and_extract(package_glob: str, package: str, cache: str) -> str:
    debs = sorted(glob.glob(os.path.join(cache, package_glob)))
    if not debs:
        _run(["apt-get", "download", package], cache)
        debs = sorted(glob.glob(os.path.join(cache, package_glob)))
        if not debs:
            raise QemuError("apt-get download %s left no .deb in %s" % (package, cache))
    root = os.path.join(cache, "root")
    _run(["dpkg-deb", "-x", debs[-1], root], cache)
    return root


def fetch_debian_guest(cache: Optional[str] = None) -> Dict[str, str]:
    """Make sure kernel and initramfs exist in ``cache``; returns their paths."""
    cache = cache or DEFAULT_CACHE
    os.makedirs(cache, exist_ok=True)
    kernels = sorted(glob.glob(os.path.join(cache, "root", "boot", "vmlinuz-*")))
    if not kernels:
        _download_and_extract("linux-image-*-amd64*.deb", _kernel_package(), cache)
        kernels = sorted(glob.glob(os.path.join(cache, "root", "boot", "vmlinuz-*")))
        if not kernels:
            raise QemuError("the kernel package holds no /boot/vmlinuz-*")
    bb = os.path.join(cache, "root", "bin", "busybox")
    if not os.path.exists(bb):
        _download_and_extract("busybox-static_*.deb", "busybox-static", cache)
    initrd = os.path.join(cache, "initramfs.cpio.gz")
    with open(bb, "rb") as f:
        image = build_initramfs(f.read())
    old = None
    if os.path.exists(initrd):
        with open(initrd, "rb") as f:
            old = f.read()
    if old != image:
        with open(initrd + ".tmp", "wb") as f:
            f.write(image)
        os.replace(initrd + ".tmp", initrd)
    return {"kernel": kernels[-1], "initrd": initrd}
