"""guest-ssh-*-authorized-keys against a throwaway user.

The user exists only in a copy of /etc/passwd bind-mounted inside the
agent's private mount namespace; its home is a scratch directory.
"""
import os
import shutil

import pytest

from qgaclient import PYQEMU_GA, QEMU_GA, Agent

UID = 4242


def _agent(prog, workdir):
    workdir.mkdir(parents=True)
    home = workdir / "home"
    home.mkdir()
    os.chown(home, UID, UID)
    passwd = workdir / "passwd"
    passwd.write_text(open("/etc/passwd").read() + "qgatest:x:%d:%d::%s:/bin/sh\n" % (UID, UID, home))
    script = 'set -e; mount --bind "%s" /etc/passwd; exec "$@"' % passwd
    wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sandbox"]
    return Agent(prog, workdir, wrapper=wrapper), home


def test_authorized_keys(tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.fail("needs root and unshare")
    k1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1 one@host"
    k2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ two@host"
    results = []
    for prog, d in ((QEMU_GA, "real"), (PYQEMU_GA, "ours")):
        agent, home = _agent(prog, tmp_path / d)
        try:
            c = agent.connect()
            seq = [
                c.cmd("guest-ssh-get-authorized-keys", username="qgatest").replace(str(home).encode(), b"HOME"),
                c.cmd("guest-ssh-remove-authorized-keys", username="qgatest", keys=[k1]),
                c.cmd("guest-ssh-add-authorized-keys", username="qgatest", keys=[k1, k2]),
                c.cmd("guest-ssh-add-authorized-keys", username="qgatest", keys=[k1]),
                c.cmd("guest-ssh-get-authorized-keys", username="qgatest"),
                c.cmd("guest-ssh-remove-authorized-keys", username="qgatest", keys=[k1]),
                c.cmd("guest-ssh-get-authorized-keys", username="qgatest"),
                c.cmd("guest-ssh-add-authorized-keys", username="qgatest", keys=[k1], reset=True),
                c.cmd("guest-ssh-get-authorized-keys", username="qgatest"),
                c.cmd("guest-ssh-add-authorized-keys", username="nosuchuser", keys=[k1]),
                c.cmd("guest-ssh-add-authorized-keys", username="qgatest", keys=[""]),
                c.cmd("guest-ssh-add-authorized-keys", username="qgatest", keys=["a\nb"]),
            ]
            ak = home / ".ssh" / "authorized_keys"
            # hand-edited file: comments, blank lines, stray spaces, no final newline
            ak.write_text("# mine\n\n  " + k2 + "  \nq 1\n")
            seq += [c.cmd("guest-ssh-get-authorized-keys", username="qgatest"),
                    c.cmd("guest-ssh-add-authorized-keys", username="qgatest", keys=["w 1", "w 1", k1]),
                    ak.read_text(),
                    c.cmd("guest-ssh-remove-authorized-keys", username="qgatest", keys=["q 1", k2]),
                    ak.read_text(),
                    c.cmd("guest-ssh-remove-authorized-keys", username="qgatest", keys=["w 1"])]
            ak = home / ".ssh" / "authorized_keys"
            st, dst = ak.stat(), ak.parent.stat()
            seq.append((ak.read_text(), oct(st.st_mode & 0o777), st.st_uid,
                        oct(dst.st_mode & 0o777), dst.st_uid))
        finally:
            agent.stop()
        results.append(seq)
    assert results[1] == results[0]
    # exact-line matching: the indented copy of k2 survives its removal
    assert results[0][-1] == ("# mine\n\n  " + k2 + "  \n\n" + k1, "0o600", UID, "0o700", UID)
    assert b"invalid OpenSSH public key" in results[0][11]
