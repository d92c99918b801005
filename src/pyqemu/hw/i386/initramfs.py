"""The project's Linux test guest: Debian's kernel and a busybox initramfs.

``fetch_debian_guest()`` downloads Debian's amd64 kernel and ``busybox-static``
with ``apt-get download`` into a cache directory (``.cache/linux`` by default)
and builds a gzip-compressed cpio 'newc' initramfs with pyqemu's own writer.
Its /init mounts devtmpfs, proc and sysfs, prints ``INIT_MARKER`` and the
CPU count and MemTotal on the console, carries out the actions the kernel
command line asks for (``INIT_ACTIONS``: write to /dev/ttyS1, exit through
isa-debug-exit), and then either powers the machine off or, with
``pyqemu.shell``, starts a shell on the console.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
import subprocess
import tempfile
from typing import Dict, Optional

from pyqemu.util.cpio import CpioWriter
from pyqemu.util.error import QemuError

INIT_MARKER = "pyqemu-guest: init reached"

# Why each line: devtmpfs must be mounted before anything opens /dev (the
# kernel does not mount it for an initramfs); `set -f` because the command
# line is split into words unquoted and must not be globbed; the exit value
# goes to the isa-debug-exit port through /dev/port, since busybox has no outb
# (dd seeks to the port number; conv=notrunc as a device cannot be truncated);
# poweroff -f skips busybox init's shutdown sequence, which has nothing to do.
INIT_SCRIPT = r"""#!/bin/sh
/bin/busybox --install -s /bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "@MARKER@"
echo "pyqemu-guest: cpus $(grep -c ^processor /proc/cpuinfo) $(grep MemTotal /proc/meminfo)"
set -f
cmdline=$(cat /proc/cmdline)
exitport=0x501
exitval=
for arg in $cmdline; do
    case "$arg" in
    pyqemu.ttys1=*) echo "${arg#*=}" > /dev/ttyS1 ;;
    pyqemu.exitport=*) exitport=${arg#*=} ;;
    pyqemu.exit=*) exitval=${arg#*=} ;;
    esac
done
if [ -n "$exitval" ]; then
    printf "\\$(printf %o $((exitval & 255)))" |
        dd of=/dev/port bs=1 seek=$((exitport)) count=1 conv=notrunc 2>/dev/null
    echo "pyqemu-guest: isa-debug-exit at $exitport did not stop the machine"
fi
case " $cmdline " in
*" pyqemu.shell "*) exec setsid cttyhack sh ;;
esac
poweroff -f
""".replace("@MARKER@", INIT_MARKER)

# The guest's /init reads these words of the kernel command line (after
# printing the marker and the "cpus N MemTotal: K kB" line), in this order:
INIT_ACTIONS = {
    "pyqemu.ttys1=TEXT": "write TEXT and a newline to /dev/ttyS1 (TEXT without spaces)",
    "pyqemu.exitport=PORT": "I/O port of isa-debug-exit for pyqemu.exit (default 0x501, "
                            "the device's default iobase)",
    "pyqemu.exit=N": "write the byte N to that port: QEMU exits with status (N<<1)|1",
    "pyqemu.shell": "start a shell on the console instead of powering off",
}

# Part of the cached initramfs's name: bump it when build_initramfs changes
# what it puts in the archive.
LAYOUT_VERSION = 1

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
    with open(bb, "rb") as f:
        busybox = f.read()
    # The name carries a hash of what goes in, so a changed /init or busybox
    # gives a new file and an unchanged one is not rebuilt.
    digest = hashlib.sha256(b"%d\0" % LAYOUT_VERSION + INIT_SCRIPT.encode() + busybox).hexdigest()[:12]
    initrd = os.path.join(cache, "initramfs-%s.cpio.gz" % digest)
    if not os.path.exists(initrd):
        image = build_initramfs(busybox)
        # a private temporary name: several test processes may build at once
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=".initramfs-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(image)
            os.chmod(tmp, 0o644)
            os.replace(tmp, initrd)
        except BaseException:
            os.unlink(tmp)
            raise
    return {"kernel": kernels[-1], "initrd": initrd}
