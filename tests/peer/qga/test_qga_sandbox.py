"""Commands that change the guest, run in a sandbox.

Each agent runs inside a private mount namespace (``unshare -m``) in which
/sbin/shutdown (-> systemctl), /sbin/hwclock and chpasswd are bind-mounted
over by a recording script: the agents run their real code paths, the host
is never shut down and no password changes.  Time is only set from the RTC
path (no ``time`` argument), so the clock of this machine is never touched.
"""
import os
import shutil

import pytest

from qgaclient import PYQEMU_GA, QEMU_GA, Agent

RECORDER = """#!/bin/sh
# RECORDER for pyqemu-ga tests
{ echo "$(basename "$0") $*"; cat; } >> "%(log)s"
case "$1" in status) exit 3;; esac
exit ${REC_RC:-0}
"""

TARGETS = ["/sbin/shutdown", "/sbin/hwclock", "/usr/sbin/chpasswd"]


def _sandboxed(prog, workdir, extra=(), rc=0):
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "argv.log"
    rec = workdir / "rec.sh"
    rec.write_text(RECORDER % {"log": log})
    rec.chmod(0o755)
    mounts = " && ".join('mount --bind "%s" "%s"' % (rec, t) for t in TARGETS)
    checks = " && ".join('grep -q RECORDER "%s"' % t for t in TARGETS)
    # set -e: should any bind mount fail, no agent runs at all.
    script = 'set -e; %s; %s; exec "$@"' % (mounts, checks)
    wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sandbox"]
    return Agent(prog, workdir, list(extra), wrapper=wrapper, env={"REC_RC": str(rc)}), log


@pytest.fixture
def need_sandbox():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.fail("sandbox tests need root and unshare (util-linux)")
    for t in TARGETS:
        assert os.path.exists(t), t


def _run(tmp_path, requests, rc=0, extra=()):
    results = []
    for prog, d in ((QEMU_GA, "real"), (PYQEMU_GA, "ours")):
        agent, log = _sandboxed(prog, tmp_path / d, extra, rc)
        try:
            c = agent.connect()
            answers = []
            for req, reply in requests:
                if reply:
                    answers.append(c.raw(req)[0])
                else:
                    answers.append(c.no_reply(req))
            results.append((answers, log.read_text() if log.exists() else ""))
        finally:
            agent.stop()
    return results


def test_shutdown_modes(tmp_path, need_sandbox):
    reqs = [(b'{"execute":"guest-shutdown"}', False),
            (b'{"execute":"guest-shutdown","arguments":{"mode":"reboot"}}', False),
            (b'{"execute":"guest-shutdown","arguments":{"mode":"halt"}}', False),
            (b'{"execute":"guest-shutdown","arguments":{"mode":"powerdown"}}', False)]
    real, ours = _run(tmp_path, reqs)
    assert ours == real
    assert ours[1].splitlines()[0].endswith("-h -P +0 hypervisor initiated shutdown")


def test_shutdown_failure(tmp_path, need_sandbox):
    reqs = [(b'{"execute":"guest-shutdown"}', True),
            (b'{"execute":"guest-shutdown","arguments":{"mode":"bogus"}}', True)]
    real, ours = _run(tmp_path, reqs, rc=1)
    assert ours == real
    assert b"child process has failed to shutdown" in ours[0][0]


def test_set_time_from_rtc_and_failures(tmp_path, need_sandbox):
    real, ours = _run(tmp_path, [(b'{"execute":"guest-set-time"}', True)])
    assert ours == real
    assert ours[0] == [b'{"return": {}}\n'] and "hwclock -s" in ours[1]
    real, ours = _run(tmp_path / "fail", [(b'{"execute":"guest-set-time"}', True)], rc=2)
    assert ours == real


def test_set_user_password(tmp_path, need_sandbox):
    reqs = [(b'{"execute":"guest-set-user-password","arguments":{"username":"bob",'
             b'"password":"c2VjcmV0","crypted":false}}', True),
            (b'{"execute":"guest-set-user-password","arguments":{"username":"bob",'
             b'"password":"JDEkYWJjJGRlZg==","crypted":true}}', True),
            (b'{"execute":"guest-set-user-password","arguments":{"username":"bob",'
             b'"password":"c2VjcmV0Cg==","crypted":true}}', True),
            (b'{"execute":"guest-set-user-password","arguments":{"username":"a:b",'
             b'"password":"c2VjcmV0","crypted":false}}', True)]
    real, ours = _run(tmp_path, reqs)
    assert ours == real
    assert "chpasswd \nbob:secret\n" in ours[1]
    assert "chpasswd -e\nbob:$1$abc$def\n" in ours[1]


def test_suspend_through_systemd(tmp_path, need_sandbox):
    # The recorder answers 'systemctl status' with 3 (unit known, inactive),
    # so both agents go on to 'systemctl suspend' -- recorded, not performed.
    reqs = [(b'{"execute":"guest-suspend-ram"}', False),
            (b'{"execute":"guest-suspend-disk"}', False),
            (b'{"execute":"guest-suspend-hybrid"}', False)]
    real, ours = _run(tmp_path, reqs)
    assert ours == real
    assert "suspend" in ours[1] and "hibernate" in ours[1] and "hybrid-sleep" in ours[1]


def test_fsfreeze_hook(tmp_path, need_sandbox):
    """The hook runs with 'freeze'; a failing hook stops the freeze before any ioctl."""
    hook_ok = tmp_path / "hook-ok.sh"
    hook_bad = tmp_path / "hook-bad.sh"
    hook_log = tmp_path / "hook.log"
    hook_ok.write_text('#!/bin/sh\necho "$1" >> %s\n' % hook_log)
    hook_bad.write_text('#!/bin/sh\necho "$1" >> %s\nexit 4\n' % hook_log)
    hook_ok.chmod(0o755)
    hook_bad.chmod(0o755)
    results = []
    for prog, d in ((QEMU_GA, "real"), (PYQEMU_GA, "ours")):
        answers = []
        for hook in (hook_bad, hook_ok, tmp_path / "missing-hook"):
            hook_log.write_text("")
            a = Agent(prog, tmp_path / d / hook.name, ["-F%s" % hook])
            try:
                c = a.connect()
                # A list naming no mount point freezes nothing: safe on this machine.
                answers.append(c.cmd("guest-fsfreeze-freeze-list", mountpoints=["/nonexistent-mount"]))
                answers.append(c.cmd("guest-fsfreeze-status"))
                answers.append(hook_log.read_text())
            finally:
                a.stop()
        results.append(answers)
    assert results[1] == results[0]
    assert b"fsfreeze hook has failed with status 4" in results[0][0]



CHECK_NO_SYS_TIME = (
    # CAP_SYS_TIME is bit 25; refuse to start the agent if it survived.
    'eff=$(grep CapEff /proc/self/status | cut -f2); '
    '[ $(( 0x$eff & (1 << 25) )) -eq 0 ] || { echo "CAP_SYS_TIME still set" >&2; exit 99; }; '
)


def test_set_time_refused_without_cap_sys_time(tmp_path, need_sandbox):
    """settimeofday() fails with EPERM once CAP_SYS_TIME is gone: the clock is never set.

    The agents run with CAP_SYS_TIME removed from the bounding set (checked
    before they start), hwclock is the recorder, and the requested time is
    the current one, so even a failure of the sandbox would not move the clock.
    """
    import time
    if not shutil.which("setpriv"):
        pytest.fail("needs setpriv (util-linux)")
    got = []
    for prog, d in ((QEMU_GA, "real"), (PYQEMU_GA, "ours")):
        w = tmp_path / d
        w.mkdir()
        rec = w / "rec.sh"
        rec.write_text(RECORDER % {"log": w / "argv.log"})
        rec.chmod(0o755)
        inner = CHECK_NO_SYS_TIME + 'exec "$@"'
        script = ('set -e; mount --bind "%s" /sbin/hwclock; grep -q RECORDER /sbin/hwclock; '
                  'exec setpriv --bounding-set=-sys_time --inh-caps=-sys_time sh -c \'%s\' inner "$@"'
                  % (rec, inner))
        wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sandbox"]
        a = Agent(prog, w, wrapper=wrapper)
        try:
            got.append(a.connect().cmd("guest-set-time", time=time.time_ns()))
        finally:
            a.stop()
        assert not (w / "argv.log").exists()
    assert got[1] == got[0]
    assert got[0] == b'{"error": {"class": "GenericError", "desc": "Failed to set time to guest: ' \
        b'Operation not permitted"}}\n'
