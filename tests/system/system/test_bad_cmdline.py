"""Bad command lines: pyqemu-system-x86_64 fails like qemu-system-x86_64 7.2.

Each line runs through both programs; the exit status and every byte of the
output must match once the program name at the start of a line is replaced.
(All fail with status 1 except ``-device X,help`` for an unknown X, which
QEMU reports but answers with status 0.)
"""
from __future__ import annotations

import shlex

import pytest


CASES = [
    "-foo",
    "--foo",
    "-M none -m",
    "-M none -m 12Q",
    "-M none -m 0x",
    "-M none -m 16E",
    "-M none -m 0x10000000000000000",
    "-M none -m 1.5E",
    "-M none -m 1G,foo=1",
    "-M none -m 1G,slots=x",
    "-M none -m 1G,slots=2",
    "-M none -m 1G,maxmem=512M",
    "-M foo",
    "-M none,foo=bar",
    "-M none -machine accel=tcg,foo=1",
    "-M none -smp 4,sockets=1,cores=1,threads=1",
    "-M none -smp 1,sockets=2",
    "-M none -smp cpus=1,dies=2",
    "-M none -smp 2,maxcpus=1",
    "-M none -smp 2",
    "-M none -smp foo",
    "-M none -smp 1,foo=2",
    "-M none -chardev socket",
    "-M none -chardev null,id=a -chardev null,id=a",
    "-M none -chardev foo,id=x",
    "-M none -object secret,id=s,data=x -object secret,id=s,data=y",
    "-M none -object memory-backend-ram,id=m,size=1M -object memory-backend-ram,id=m,size=1M",
    "-M none -object memory-backend-ram,id=x",
    "-M none -object memory-backend-ram,id=x,size=12Q",
    "-M none -object memory-backend-file,id=m,size=1M",
    "-M none -object foo,id=x",
    """-M none -object '{{"qom-type":"memory-backend-ram","id":"m","size":"1M"}}'""",
    "-M none -object secret,id=s",
    "-M none -object secret,id=1s,data=x",
    "-M none -object memory-backend-ram,id=ram,size=1M -m 1M",
    "-M none -cpu foo",
    "-M none -device foo",
    "-M none -device pyqemu-nonexistent,help",
    "-M none -uuid xyz",
    "-M none -rtc base=foo",
    "-M none -rtc clock=foo",
    "-M none -rtc foo=bar",
    "-M none -accel foo",
    "-M none -accel tcg,foo=bar",
    "-M none -machine accel=foo",
    "-M none -global foo",
    "-M none -set a.b.c=d",
    "-M none -set device.x.y=z",
    "-M none -set chardev.x.y=z",
    "-M none -readconfig {tmp}/missing.cfg",
    "-M none -name foo,bar=1",
    "-M none -display foo",
    "-M none -display none,foo=1",
    "-M none -mon chardev=nope",
    "-M none -mon mode=bad",
    "-M none -serial tcp:",
    "-M none -serial tcp:localhost",
    "-M none -monitor udp:x",
    "-M none -serial bogus:x",
    "-M none -monitor bogus:x",
    "-M none -mon chardev=x,mode=bad",
    "-M none -mon mode=control",
    "-M none -chardev null,id=x -mon chardev=x,pretty=on",
    "-M none -chardev null,id=x -mon chardev=x,pretty=x",
    "-M none -cpu nosuch",
    "-M none -cpu qemu64",
    "-M pc -cpu qemu64,+nosuch",
    "-M pc -cpu qemu64,nosuch=on",
    "-M pc -cpu qemu64,sse=maybe",
    "-M pc -cpu qemu64,family=x",
    "-M pc -cpu qemu64,enforce,+vmx",
    "-M pc -cpu host",
    "-M none -monitor chardev:nope",
    "-M none -serial foo:bar",
    "-M none -parallel x",
    "-M none -debugcon foo:bar",
    "-M none -qmp foo:bar",
    "-M none -pidfile {tmp}/nodir/pid",
    "-M none -nographic -daemonize",
    "-M none -d foo",
    "-M none -debugcon null",
    "-m 2M -M none,memory-backend=m -object memory-backend-ram,id=m,size=1M",
    "-M none,memory-backend=zz",
    "-M none,memory-backend=s -object secret,id=s,data=x",
    "-M none -m 1M -mem-path {tmp}/nodir/dir",
    "-M none -object memory-backend-file,id=m,size=1M,mem-path={tmp}/nodir/x",
    "-M none -object memory-backend-ram,id=m,size=0",
    "-M none -serial stdio -parallel stdio",
    "-M none -chardev stdio,id=a -chardev stdio,id=b",
    "-M none -chardev null,id=c -serial chardev:nope",
    "-M none -object memory-backend-ram,id=m,size=1M,share=maybe",
    "-M none -object memory-backend-ram,id=m,size=1M,policy=sometimes",
]


def _norm(out: bytes, prog: str) -> str:
    # The monitor banner carries the version: Debian's 7.2.22, pyqemu's 7.2.0.
    lines = out.decode("utf-8", "replace").replace("QEMU 7.2.22 monitor", "QEMU 7.2.0 monitor").splitlines()
    return "\n".join("PROG" + ln[len(prog):] if ln.startswith(prog + ":") else ln for ln in lines)


@pytest.mark.slow
def test_bad_command_lines_match_qemu(pyqemu_system, real_qemu, tmp_path, run_prog):
    from concurrent.futures import ThreadPoolExecutor

    def one(case):
        args = shlex.split(case.format(tmp=tmp_path)) + ["-display", "none"]
        real = run_prog([real_qemu] + args)
        ours = run_prog([pyqemu_system] + args)
        got = (ours.returncode, _norm(ours.stdout + ours.stderr, "pyqemu-system-x86_64"))
        want = (real.returncode, _norm(real.stdout + real.stderr, "qemu-system-x86_64"))
        return case, want, got

    # A few at a time: each case is two short-lived processes.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, CASES))
    mismatches = []
    for case, want, got in results:
        assert "Traceback" not in got[1]
        if got != want:
            mismatches.append("%s\n  qemu:   %r\n  pyqemu: %r" % (case, want, got))
    assert not mismatches, "\n".join(mismatches)
