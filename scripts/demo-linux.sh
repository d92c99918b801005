#!/bin/bash
# pyqemu's main job: boot Debian's Linux kernel on the emulated x86 PC, with
# the CPU in software, to a busybox shell on the serial console.
# Run by `make demo` (which makes .venv and, when pypy3 is there, .venv-pypy);
# extra arguments go to the emulator, e.g. `make demo DEMO_ARGS="-smp 2"`.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "pyqemu demo: Debian's kernel and busybox-static (apt-get download) into .cache/linux,"
echo "             and an initramfs written by pyqemu's own cpio code"
# (an assignment, not mapfile < <(...): set -e must see the script fail)
paths=$(.venv/bin/python scripts/linux-guest.py)
kernel=$(sed -n 1p <<<"$paths")
initrd=$(sed -n 2p <<<"$paths")

# PyPy runs the translator's generated Python code several times faster.
if [ -x .venv-pypy/bin/python ]; then
    py=.venv-pypy/bin/python
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
else
    py=.venv/bin/python
fi
impl=$("$py" -c 'import platform; print(platform.python_implementation(), platform.python_version())')

# earlyprintk: the kernel's messages show from its first line, not only once
# its serial console is up (minutes later here).
# -icount shift=3: guest time advances 8 ns per guest instruction instead of
# with the wall clock, so the slow guest is not swamped by its timer ticks.
cmd=("$py" -m pyqemu.cli.system -M pc,host-unpack=on -m 256 -icount shift=3
     -kernel "$kernel" -initrd "$initrd"
     -append "console=ttyS0 earlyprintk=serial,ttyS0 pyqemu.shell"
     -nographic "$@")

cat <<MSG

pyqemu demo: booting $(basename "$kernel") on pyqemu-system-x86_64
  interpreter: $impl ($py)
  machine:     -M pc,host-unpack=on (the bzImage's payload is unpacked on the host,
               sparing the guest's XZ decompressor, three quarters of the work)
  command:     $(printf '%q ' "${cmd[@]}")
  console:     this terminal is the guest's ttyS0.
               C-a x quits, C-a c switches between the console and the monitor.

What to expect (measured on a 2-core machine; see docs/system.md, "Booting Linux"):
  real qemu-system-x86_64 boots this guest to its shell in about 10 s.
  pyqemu is much slower today: on PyPy the kernel's first console lines come
  after several minutes and the shell is not reached within an hour yet; on
  CPython it is slower still. When the shell comes, the line
  'pyqemu-guest: init reached' precedes it.

MSG
exec "${cmd[@]}"
