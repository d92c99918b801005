"""Guest MIPS of the system-mode x86 CPU: the Debian kernel (scripts/linux-guest.py
builds it into .cache/linux) booted with host-unpack=on under
pyqemu-system-x86_64, on CPython and on PyPy, for a fixed amount of CPU time.

Prints guest instructions (the CPU's own counter) per CPU second, so the
figure holds on a loaded machine; the firmware and the first translations
are part of the window, as in a real boot.  Not part of `make test`.

    .venv/bin/python bench/sys_mips.py [cpu-seconds]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs the emulator in-process until it has used the CPU seconds asked for,
# then prints "insns cpu_seconds".
RUNNER = r"""
import sys, threading, time
from pyqemu.exec.main_loop import main_loop
from pyqemu.system import vl
from pyqemu.system.runstate import runstate
budget = float(sys.argv[1])
result = {}
def watch():
    while time.process_time() < budget:
        time.sleep(0.2)
    def stop():
        from pyqemu.system import qmp_machine
        result["n"] = qmp_machine.current.machine.cpus[0].insn_count
        result["t"] = time.process_time()
        runstate().request_shutdown("host-signal")
    main_loop().bh_schedule(stop)
threading.Thread(target=watch, daemon=True).start()
vl.qemu_main(sys.argv[2:])
print("%d %.2f" % (result["n"], result["t"]))
"""


def main() -> int:
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    sys.path.insert(0, str(REPO / "src"))
    from pyqemu.hw.i386.initramfs import fetch_debian_guest
    guest = fetch_debian_guest()
    with tempfile.TemporaryDirectory() as tmp:
        args = ["-M", "pc,host-unpack=on", "-kernel", guest["kernel"], "-initrd", guest["initrd"],
                "-append", "console=ttyS0", "-display", "none", "-nodefaults", "-no-reboot",
                "-m", "256", "-serial", "file:" + os.path.join(tmp, "serial.txt")]
        for name, py in (("CPython", REPO / ".venv" / "bin" / "python"),
                         ("PyPy", REPO / ".venv-pypy" / "bin" / "python")):
            if not py.exists():
                print("%-8s not installed (%s)" % (name, py))
                continue
            env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
            p = subprocess.run([str(py), "-c", RUNNER, str(budget)] + args, env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True)
            last = p.stdout.strip().splitlines()[-1:] or [""]
            try:
                insns, secs = last[0].split()
                mips = int(insns) / float(secs) / 1e6
            except ValueError:
                print("%-8s failed: %s" % (name, p.stderr.strip()[-500:]))
                continue
            print("%-8s %12d guest instructions in %6.1f CPU s: %6.2f guest MIPS"
                  % (name, int(insns), float(secs), mips))
    return 0


if __name__ == "__main__":
    sys.exit(main())
