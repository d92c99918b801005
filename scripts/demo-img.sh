#!/bin/bash
# pyqemu demo: a short pyqemu-img session, checked by the real qemu-img.
# Run by `make demo-img` with .venv/bin on PATH (it was `make demo` until the
# system emulator could boot Linux; `make demo` is now scripts/demo-linux.sh).
set -euo pipefail

dir=$(mktemp -d /tmp/pyqemu-demo.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cd "$dir"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "pyqemu demo in $dir"
step pyqemu-img --version

# a raw base image with some data in it
step pyqemu-img create -f raw base.raw 64M
python3 - <<'PY'
with open("base.raw", "r+b") as f:
    f.seek(1 << 20)
    f.write(b"base data " * 100000)
PY

# a qcow2 overlay on it, written through the block layer's Python API
step pyqemu-img create -f qcow2 -b base.raw -F raw overlay.qcow2
printf '\n\033[1m$ python -c "...open_image(overlay.qcow2).pwrite(...)"\033[0m\n'
python -c '
from pyqemu.block import open_image
with open_image("overlay.qcow2", readonly=False) as disk:
    disk.pwrite(3 << 20, b"written into the overlay " * 4000)
    disk.pwrite(1 << 20, b"OVERWRITE")          # copy-on-write of a base cluster
    print("overlay reads:", disk.pread(1 << 20, 20))
'

step pyqemu-img info overlay.qcow2
step pyqemu-img map overlay.qcow2
step pyqemu-img check overlay.qcow2

# flatten the chain into a standalone qcow2, plain and compressed
step pyqemu-img convert -p -O qcow2 overlay.qcow2 flat.qcow2
step pyqemu-img convert -c -O qcow2 overlay.qcow2 compressed.qcow2
step pyqemu-img compare overlay.qcow2 flat.qcow2
step pyqemu-img compare overlay.qcow2 compressed.qcow2
step pyqemu-img info --output=json compressed.qcow2
ls -ls *.raw *.qcow2

# the real QEMU 7.2 accepts what pyqemu wrote
if command -v qemu-img >/dev/null; then
    step qemu-img check flat.qcow2
    step qemu-img check compressed.qcow2
    step qemu-img compare overlay.qcow2 compressed.qcow2
else
    echo "(qemu-img is not installed: skipping the cross-check with real QEMU)"
fi
echo
echo "demo finished: all steps succeeded"
