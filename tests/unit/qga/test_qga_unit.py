"""pyqemu-ga's library in-process: JSON dialect, argument checks, state, config."""
import base64
import pwd

import pytest

from pyqemu.qga import config as conf
from pyqemu.qga import qjson
from pyqemu.qga.agent import Agent, AgentConfig
from pyqemu.qga.commands import ssh


def _feed(*chunks):
    out = []
    s = qjson.JsonStreamer(lambda v, e: out.append((v, e)))
    for c in chunks:
        s.feed(c)
    return out


def test_stream_split_and_joined_messages():
    assert _feed(b'{"a":', b' [1, 2.5, true, null]}') == [({"a": [1, 2.5, True, None]}, None)]
    assert _feed(b'{"x":1}{"y":2}') == [({"x": 1}, None), ({"y": 2}, None)]
    assert _feed(b"'single'") == [("single", None)]
    assert _feed(b"12") == [] and _feed(b"12 ") == [(12, None)]


def test_stream_errors_resynchronise():
    out = _feed(b'{"execute":"x"\n\xff{"ok":1}')
    assert out == [(None, "JSON parse error, stray '\ufffd'"), ({"ok": 1}, None)]
    assert _feed(b'{"a" 1}')[0][1] == "JSON parse error, missing : in object pair"
    assert _feed(b'{"a":1,"a":2}')[0][1] == "JSON parse error, duplicate key"
    assert _feed(b'"\\u12"')[0][1] == 'JSON parse error, \\u12" is not a valid Unicode character'
    assert _feed(b"[" * 1025)[0][1] == "JSON nesting depth limit exceeded"


def test_string_escapes_and_surrogates():
    assert qjson.parse(b'"\\ud83d\\ude00\\n\\/"') == "\U0001F600\n/"
    with pytest.raises(qjson.JsonParseError):
        qjson.parse(b'"\xc3\x28"')


def test_writer_matches_qemu_layout():
    assert qjson.to_json({"return": {}, "id": "\xe9\x7f"}) == '{"return": {}, "id": "\\u00E9\\u007F"}'
    assert qjson.to_json({"desc": "d", "class": "c"}) == '{"class": "c", "desc": "d"}'
    assert qjson.to_json([1, True, None, "\U0001F600"]) == '[1, true, null, "\\uD83D\\uDE00"]'


@pytest.fixture
def agent(tmp_path):
    a = Agent(AgentConfig(statedir=str(tmp_path)))
    yield a
    a.close()


def test_argument_errors(agent):
    def err(req):
        return agent.handle(req)["error"]["desc"]
    assert err({"execute": "guest-sync"}) == "Parameter 'id' is missing"
    assert err({"execute": "guest-sync", "arguments": {"id": True}}) == \
        "Invalid parameter type for 'id', expected: integer"
    assert err({"execute": "guest-set-vcpus", "arguments": {"vcpus": [{"logical-id": 0}]}}) == \
        "Parameter 'vcpus[0].online' is missing"
    assert err({"execute": "guest-file-seek", "arguments": {"handle": 1, "offset": 0, "whence": "x"}}) == \
        "Parameter 'whence' does not accept value 'x'"
    assert agent.handle({"execute": "nope"})["error"]["class"] == "CommandNotFound"


def test_handles_persist_in_statedir(tmp_path):
    f = tmp_path / "data"
    f.write_bytes(b"abc")
    a = Agent(AgentConfig(statedir=str(tmp_path)))
    h = a.handle({"execute": "guest-file-open", "arguments": {"path": str(f)}})["return"]
    a.close()
    b = Agent(AgentConfig(statedir=str(tmp_path)))
    assert b.handle({"execute": "guest-file-open", "arguments": {"path": str(f)}})["return"] == h + 1
    r = b.handle({"execute": "guest-file-read", "arguments": {"handle": h + 1}})["return"]
    assert base64.b64decode(r["buf-b64"]) == b"abc" and r["eof"] is True
    b.close()


def test_frozen_state_refuses_writers(agent, tmp_path):
    agent.set_frozen(True)
    rsp = agent.handle({"execute": "guest-file-open", "arguments": {"path": "/x"}})
    assert rsp["error"] == {"class": "CommandNotFound", "desc": "Command guest-file-open has been "
                            "disabled: the agent is in frozen state"}
    assert agent.handle({"execute": "guest-fsfreeze-status"}) == {"return": "frozen"}
    agent.set_frozen(False)
    missing = str(tmp_path / "missing")
    assert agent.handle({"execute": "guest-file-open", "arguments": {"path": missing}})["error"]["desc"] \
        == "failed to open file '%s' (mode: 'r'): No such file or directory" % missing


def test_config_file_and_command_line(tmp_path):
    p = tmp_path / "qemu-ga.conf"
    p.write_text("[general]\nverbose=1\nmethod=unix-listen\npath=/run/q.sock\nblock-rpcs=a,b\n")
    cfg = AgentConfig()
    conf.load_file(cfg, str(p))
    conf.finalize(cfg)
    assert cfg.verbose and cfg.blocked == ["b", "a"]
    assert "block-rpcs=b,a\n" in conf.dump(cfg)
    no_path = AgentConfig(method="unix-listen")
    with pytest.raises(Exception, match="must specify a path for this channel"):
        conf.finalize(no_path)
    p.write_text("[general]\nverbose=maybe\n")
    with pytest.raises(Exception, match="cannot be interpreted"):
        conf.load_file(AgentConfig(), str(p))


def test_ssh_keys_in_a_fake_home(agent, tmp_path, monkeypatch):
    import os
    home = tmp_path / "home"
    home.mkdir()
    fake = pwd.struct_passwd(("alice", "x", os.getuid(), os.getgid(), "", str(home), "/bin/sh"))
    monkeypatch.setattr(ssh.pwd, "getpwnam", lambda n: fake)
    call = agent.handle
    assert call({"execute": "guest-ssh-add-authorized-keys",
                 "arguments": {"username": "alice", "keys": ["ssh-ed25519 AAAA a", "ssh-rsa BBBB b"]}}) \
        == {"return": {}}
    assert call({"execute": "guest-ssh-remove-authorized-keys",
                 "arguments": {"username": "alice", "keys": ["ssh-rsa BBBB b"]}}) == {"return": {}}
    assert call({"execute": "guest-ssh-get-authorized-keys", "arguments": {"username": "alice"}}) == \
        {"return": {"keys": ["ssh-ed25519 AAAA a"]}}
    assert (home / ".ssh" / "authorized_keys").read_text() == "ssh-ed25519 AAAA a"
    assert oct((home / ".ssh" / "authorized_keys").stat().st_mode & 0o777) == "0o600"


def test_a_failing_command_is_an_error_answer(agent):
    def broken(ctx):
        raise ValueError("boom")
    agent.registry.register("guest-broken")(broken)
    rsp = agent.handle({"execute": "guest-broken", "id": 1})
    assert rsp == {"error": {"class": "GenericError",
                             "desc": "internal error in guest-broken: ValueError: boom"}, "id": 1}
    assert agent.handle({"execute": "guest-ping"}) == {"return": {}}


def test_base64_as_glib_decodes_it():
    from pyqemu.qga import b64
    assert b64.decode("YWJj") == b"abc" and b64.decode("YWI=") == b"ab"
    assert b64.decode("YQ") == b"" and b64.decode("YWJjZA") == b"abc"
    assert b64.decode("YQ==YQ==") == b"aa" and b64.decode("YW=j") == b"a#"
    with pytest.raises(Exception, match="Base64 data contains invalid characters"):
        b64.decode("YW Jj")
