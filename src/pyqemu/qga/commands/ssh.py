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


def _read_keys(path: str) -> List[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    return [line for line in (x.strip() for x in text.splitlines())
            if line and not line.startswith("#")]


def _check_keys(keys: List[str]) -> None:
    for k in keys:
        if not k.strip():
            raise QgaError("the public key is empty")
        if "\n" in k or "\r" in k:
            raise QgaError("the public key contains newlines")


def _write_keys(pw: pwd.struct_passwd, keys: List[str]) -> None:
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
            f.write("".join(k + "\n" for k in keys))
        os.chmod(tmp, 0o600)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        os.replace(tmp, path)
    except OSError as exc:
        raise QgaError("failed to write to '%s': %s" % (path, os.strerror(exc.errno or 5))) from None


def get_keys(agent: Any, username: str) -> Dict[str, List[str]]:
    pw = _user(username)
    path = _keys_path(pw)
    try:
        return {"keys": _read_keys(path)}
    except OSError as exc:
        raise QgaError("failed to read '%s': Failed to open file \u201c%s\u201d: %s"
                       % (path, path, os.strerror(exc.errno or 5))) from None


def add_keys(agent: Any, username: str, keys: List[str], reset: Optional[bool] = None) -> None:
    _check_keys(keys)
    pw = _user(username)
    current: List[str] = []
    if not reset:
        try:
            current = _read_keys(_keys_path(pw))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise QgaError("failed to read '%s': %s" % (_keys_path(pw), os.strerror(exc.errno or 5))) from None
    for k in keys:
        if k not in current:
            current.append(k)
    _write_keys(pw, current)


def remove_keys(agent: Any, username: str, keys: List[str]) -> None:
    _check_keys(keys)
    pw = _user(username)
    try:
        current = _read_keys(_keys_path(pw))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise QgaError("failed to read '%s': %s" % (_keys_path(pw), os.strerror(exc.errno or 5))) from None
    _write_keys(pw, [k for k in current if k not in keys])


SPECS = {
    "guest-ssh-get-authorized-keys": (get_keys, [arg("username")], True, True),
    "guest-ssh-add-authorized-keys": (add_keys, [arg("username"), arg("keys", ListOf("str")),
                                                 opt("reset", "bool")], True, True),
    "guest-ssh-remove-authorized-keys": (remove_keys, [arg("username"), arg("keys", ListOf("str"))],
                                         True, True),
}
