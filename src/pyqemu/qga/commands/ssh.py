"""guest-ssh-*: a user's ~/.ssh/authorized_keys."""
from __future__ import annotations

import os
import pwd
from typing import Any, Dict, List, Optional

from pyqemu.qga.errors import QgaError
from pyqemu.qga.qapi import ListOf, arg, opt


def _user(username: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(username)
    except KeyError:
        # getpwnam() leaves errno at 0 for an unknown user.
        raise QgaError("failed to lookup user '%s': Success" % username) from None


def _keys_path(pw: pwd.struct_passwd) -> str:
    return os.path.join(pw.pw_dir, ".ssh", "authorized_keys")


def _read_lines(path: str) -> List[str]:
    """The file's lines as written; the file is rewritten from them verbatim."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    return text.split("\n") if text else []


def _check_keys(keys: List[str]) -> None:
    for k in keys:
        if "\n" in k:
            raise QgaError("invalid OpenSSH public key: '%s'" % k)


def _write_keys(pw: pwd.struct_passwd, lines: List[str]) -> None:
    sshdir = os.path.join(pw.pw_dir, ".ssh")
    if not os.path.isdir(sshdir):
        try:
            os.mkdir(sshdir, 0o700)
            os.chown(sshdir, pw.pw_uid, pw.pw_gid)
        except OSError as exc:
            raise QgaError("failed to create directory '%s': %s"
                           % (sshdir, os.strerror(exc.errno or 5))) from None
    path = _keys_path(pw)
    tmp = path + ".tmp-pyqemu-ga"
    try:
        with open(tmp, "w") as f:
            f.write("\n".join(lines))
        os.chmod(tmp, 0o600)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        os.replace(tmp, path)
    except OSError as exc:
        raise QgaError("failed to write to '%s': %s" % (path, os.strerror(exc.errno or 5))) from None


def _read_error(path: str, exc: OSError) -> QgaError:
    return QgaError("failed to read '%s': Failed to open file \u201c%s\u201d: %s"
                    % (path, path, os.strerror(exc.errno or 5)))


def get_keys(agent: Any, username: str) -> Dict[str, List[str]]:
    pw = _user(username)
    path = _keys_path(pw)
    try:
        lines = _read_lines(path)
    except OSError as exc:
        raise _read_error(path, exc) from None
    keys = [k for k in (x.strip() for x in lines) if k and not k.startswith("#")]
    # QEMU's agent collects them into a prepended list: newest line first.
    keys.reverse()
    return {"keys": keys}


def add_keys(agent: Any, username: str, keys: List[str], reset: Optional[bool] = None) -> None:
    _check_keys(keys)
    pw = _user(username)
    lines: List[str] = []
    if not reset:
        try:
            lines = _read_lines(_keys_path(pw))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _read_error(_keys_path(pw), exc) from None
    for k in keys:
        if k not in lines:
            lines.append(k)
    _write_keys(pw, lines)


def remove_keys(agent: Any, username: str, keys: List[str]) -> None:
    _check_keys(keys)
    pw = _user(username)
    try:
        lines = _read_lines(_keys_path(pw))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _read_error(_keys_path(pw), exc) from None
    _write_keys(pw, [line for line in lines if line not in keys])


SPECS = {
    "guest-ssh-get-authorized-keys": (get_keys, [arg("username")], True, True),
    "guest-ssh-add-authorized-keys": (add_keys, [arg("username"), arg("keys", ListOf("str")),
                                                 opt("reset", "bool")], True, True),
    "guest-ssh-remove-authorized-keys": (remove_keys, [arg("username"), arg("keys", ListOf("str"))],
                                         True, True),
}
