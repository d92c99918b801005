"""Differential tests: the same C program natively and under pyqemu-x86_64/i386."""
import os

import pytest

from lu_support import IS_PYPY, VARIANTS, run_both

# Under PyPy one build of each program (see lu_support.py); under CPython the three
# main builds, and i386 PIE (dynamic, with the host's 32-bit libc) for a few programs.
ALL = ["static64"] if IS_PYPY else ["pie64", "static32", "static64"]
WITH_PIE32 = ALL if IS_PYPY else sorted(VARIANTS)


def same(native, emu):
    assert b"Traceback" not in emu.stderr, emu.stderr.decode(errors="replace")
    assert emu.stdout.decode(errors="replace") == native.stdout.decode(errors="replace")
    assert emu.returncode == native.returncode, emu.stderr.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("variant", WITH_PIE32)
def test_hello_args_env_status(builder, variant):
    prog = builder.build("hello", variant)
    env = dict(os.environ, PYQEMU_TEST_VAR="value with spaces")
    native, emu = run_both(prog, variant, ["42", "two words", ""], env=env)
    same(native, emu)
    assert native.returncode == 42


@pytest.mark.slow
@pytest.mark.parametrize("variant", WITH_PIE32)
def test_file_io(builder, variant, tmp_path):
    prog = builder.build("fileio", variant)
    (tmp_path / "n").mkdir()
    (tmp_path / "e").mkdir()
    native, emu = run_both(prog, variant, [str(tmp_path / "e")], native_args=[str(tmp_path / "n")])
    same(native, emu)
    assert b"readdir: . .. b.txt f0 f1 f2 f3 f4" in emu.stdout


@pytest.mark.slow
@pytest.mark.parametrize("variant", ALL)
def test_memory(builder, variant):
    prog = builder.build("mem", variant)
    same(*run_both(prog, variant))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ALL)
def test_misc_syscalls(builder, variant):
    prog = builder.build("misc", variant)
    native, emu = run_both(prog, variant)
    same(native, emu)
    assert b"FIONREAD: 0 5" in emu.stdout


@pytest.mark.slow
@pytest.mark.parametrize("variant", ALL)
def test_fork_exec_pipes_wait(builder, variant, tmp_path):
    prog = builder.build("procs", variant)
    script = tmp_path / "script.sh"
    script.write_text('#!/bin/sh\necho "script says $1"\nexit 4\n')
    script.chmod(0o755)
    native, emu = run_both(prog, variant, [str(script)])
    same(native, emu)
    assert b"exec'd child read: piped line" in emu.stdout and b"script: status=4" in emu.stdout


@pytest.mark.slow
@pytest.mark.parametrize("variant", ALL)
def test_sockets_and_polling(builder, variant):
    prog = builder.build("net", variant)
    native, emu = run_both(prog, variant)
    same(native, emu)
    assert b"tcp recv: 14 hello over tcp" in emu.stdout


@pytest.mark.slow
@pytest.mark.parametrize("variant", WITH_PIE32)
def test_signals(builder, variant):
    prog = builder.build("signals", variant)
    native, emu = run_both(prog, variant)
    same(native, emu)
    assert b"SIGSEGV read-only, fixed and resumed: code=2 addr_ok=1 value=42" in emu.stdout
    assert b"read restarted: 1 x handler ran=1" in emu.stdout
    assert b"sigsuspend woken by SIGALRM: -1 1" in emu.stdout


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["static64"] if IS_PYPY else ["static64", "static32"])
@pytest.mark.parametrize("how,sig", [("abort", 6), ("segv", 11)])
def test_fatal_signals(builder, variant, how, sig):
    prog = builder.build("signals", variant)
    native, emu = run_both(prog, variant, [how])
    same(native, emu)
    assert emu.returncode == -sig
    assert emu.stderr.decode().endswith("qemu: uncaught target signal %d (%s) - core dumped\n"
                                        % (sig, {6: "Aborted", 11: "Segmentation fault"}[sig]))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ALL)
@pytest.mark.parametrize("args", [[], ["9"]])
def test_threads(builder, variant, args):
    prog = builder.build("threads", variant, ["-pthread"])
    native, emu = run_both(prog, variant, args)
    same(native, emu)
    assert b"mutex counter: 8000\natomic counter: 8000\n" in emu.stdout


@pytest.mark.slow
@pytest.mark.parametrize("variant", ALL)
def test_process_attributes(builder, variant):
    prog = builder.build("procattr", variant)
    native, emu = run_both(prog, variant)
    same(native, emu)
    assert b"prctl get: pyqemu-test" in emu.stdout and b"sendfile: 3 off=4 ELF" in emu.stdout


@pytest.mark.slow
@pytest.mark.parametrize("variant", ALL)
def test_shared_memory_across_fork(builder, variant, tmp_path):
    """MAP_SHARED anonymous and file mappings stay shared with a forked child;
    a process-shared semaphore (host futex) wakes across the processes."""
    prog = builder.build("shm", variant, ["-lpthread"])
    (tmp_path / "n").mkdir()
    (tmp_path / "e").mkdir()
    native, emu = run_both(prog, variant, [str(tmp_path / "e")], native_args=[str(tmp_path / "n")],
                           timeout=300)
    same(native, emu)
    assert b"anon shared: counter=2000 text=written by the child private=parent private" in emu.stdout
    assert b"after child store: ABC34xyz8! ABC34xyz8!" in emu.stdout


@pytest.mark.slow
def test_big_sparse_memory_costs_only_touched_pages(builder):
    """Guest mappings far larger than what the test touches (a 64 GiB
    reservation, 8 GiB read-write, a 9 GiB mremap, a 2 GiB heap) work as
    natively, and the emulator's memory use stays proportional to the touched
    pages."""
    import subprocess
    import threading

    from lu_support import VARIANTS, emulator

    prog = builder.build("bigmem", "static64")
    native = subprocess.run([prog], capture_output=True, timeout=120)
    p = subprocess.Popen(emulator("static64") + VARIANTS["static64"][2] + [prog],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killer = threading.Timer(600, p.kill)      # never hang the suite
    killer.start()
    try:
        out = p.stdout.read()                  # the program prints a few lines only
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)  # reap it ourselves to get its rusage
    finally:
        killer.cancel()
        p.stdout.close()
        p.stderr.close()
        p.returncode = os.waitstatus_to_exitcode(status)
    assert err == b"" and out == native.stdout and p.returncode == native.returncode == 0
    assert b"mremap 9G: ok first=1 last=0" in out
    assert usage.ru_maxrss < 400 * 1024        # KiB: far below the gigabytes mapped
