#!/usr/bin/env python3
"""Download Debian's kernel and busybox-static into .cache/linux and build the
busybox initramfs; prints the kernel and initrd paths (one per line)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from pyqemu.hw.i386.initramfs import fetch_debian_guest  # noqa: E402
from pyqemu.util.error import QemuError  # noqa: E402

if __name__ == "__main__":
    try:
        paths = fetch_debian_guest(sys.argv[1] if len(sys.argv) > 1 else None)
    except QemuError as e:
        sys.exit("linux-guest: %s" % e)
    print(paths["kernel"])
    print(paths["initrd"])
