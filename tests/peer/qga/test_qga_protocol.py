"""Same requests to Debian's qemu-ga and to pyqemu-ga: the answers must match."""
import base64
import json
import os

import pytest

from qgaclient import shape

# Answers that do not depend on the moment: compared byte for byte.
EXACT = [
    b'{"execute":"guest-ping"}',
    b'{"execute":"guest-ping","id":"abc"}',
    b'{"execute":"guest-ping","id":{"a":[1,true,null]}}',
    b'{"execute":"guest-sync","arguments":{"id":123}}',
    b'{"execute":"guest-sync"}',
    b'{"execute":"guest-sync","arguments":{"id":"str"}}',
    b'{"execute":"guest-sync","arguments":{"id":18446744073709551615}}',
    b'{"execute":"guest-sync","arguments":{"id":1.5}}',
    b'{"execute":"guest-sync","arguments":{"id":1}, "id":"\xc3\xa9\x7f\\u0001/"}',
    b'{"execute":"guest-nope"}',
    b'{"execute":"guest-ping","arguments":{"x":1}}',
    b'[1,2]',
    b'{"foo":1}',
    b'{"execute":1}',
    b"{'execute':'guest-ping'}",
    b'{"execute":"guest-ping","arguments":[]}',
    b'{"execute":"guest-ping","arguments":null}',
    b'{"arguments":{}}',
    b'{"exec-oob":"guest-ping"}',
    b'{"execute":"guest-ping","arguments":{"a":1,"a":2}}',
    b'{1:2}',
    b'{"a" 1}',
    b'{"a":}',
    b'{"a":1 "b":2}',
    b'[1 2]',
    b'[1,]',
    b'"\\q"',
    b'"\\u12"',
    b'"a\x01b"',
    b'{"x":nul}',
    b'{"execute":"guest-get-devices"}',
    b'{"execute":"guest-get-timezone"}',
    b'{"execute":"guest-get-host-name"}',
    b'{"execute":"guest-get-osinfo"}',
    b'{"execute":"guest-get-vcpus"}',
    b'{"execute":"guest-get-memory-block-info"}',
    b'{"execute":"guest-get-disks"}',
    b'{"execute":"guest-fsfreeze-status"}',
    b'{"execute":"guest-fstrim","arguments":{"minimum":99999999999999999}}',
    b'{"execute":"guest-file-open","arguments":{"path":"/nonexistent/x"}}',
    b'{"execute":"guest-file-open","arguments":{"path":"/etc/hostname","mode":"zz"}}',
    b'{"execute":"guest-file-read","arguments":{"handle":999}}',
    b'{"execute":"guest-file-seek","arguments":{"handle":1,"offset":1,"whence":"bogus"}}',
    b'{"execute":"guest-set-time","arguments":{"time":"x"}}',
    b'{"execute":"guest-exec-status","arguments":{"pid":1}}',
    b'{"execute":"guest-exec","arguments":{"path":"/nonexist"}}',
    b'{"execute":"guest-exec","arguments":{"path":"/etc"}}',
    b'{"execute":"guest-file-seek","arguments":{"handle":1,"offset":0,"whence":true}}',
    b'{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[{"phys-index":-1,"online":true}]}}',
    b'{"execute":"guest-fstrim","arguments":{"minimum":-1}}',
    b'{"execute":"guest-exec","arguments":{"path":"/bin/cat","input-data":"!!!"}}',
    b'{"execute":"guest-exec","arguments":{"path":"/bin/true","capture-output":"yes"}}',
    b'{"execute":"guest-set-vcpus","arguments":{"vcpus":[]}}',
    b'{"execute":"guest-set-vcpus","arguments":{"vcpus":{}}}',
    b'{"execute":"guest-set-vcpus","arguments":{"vcpus":[1]}}',
    b'{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"online":true}]}}',
    b'{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":0,"online":true}]}}',
    b'{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":0,"online":false}]}}',
    b'{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":99,"online":true}]}}',
    b'{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[]}}',
    b'{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[{"phys-index":99999,"online":true}]}}',
    b'{"execute":"guest-ssh-get-authorized-keys","arguments":{"username":"nosuchuser"}}',
    b'{"execute":"guest-set-user-password","arguments":{"username":"x","password":"!!","crypted":false}}',
    # a list naming no mount point freezes nothing (never [] here: a reader
    # mistaking it for "no list" would freeze this machine's filesystems)
    b'{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":["/nonexistent-mount"]}}',
    b'{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":"x"}}',
    b'{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[{"phys-index":"x","online":true}]}}',
    b'{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[{"phys-index":1.5,"online":true}]}}',
    b'{"execute":"guest-exec","arguments":{"path":""}}',
    b'{"execute":"guest-exec","arguments":{"path":"/bin/true","arg":[1]}}',
    b'{"execute":"guest-ssh-add-authorized-keys","arguments":{"username":"nosuch","keys":["a\\nb"]}}',
    b'{"execute":"guest-ssh-remove-authorized-keys","arguments":{"username":"nosuch","keys":["a\\nb"]}}',
    b'{"execute":"guest-ssh-remove-authorized-keys","arguments":{"username":"nosuch","keys":["ok"]}}',
    b'{"execute":"guest-file-open","arguments":{"path":"/etc/hostname","mode":"rw"}}',
    b'{"execute":"guest-file-open","arguments":{"path":"/etc/hostname","mode":""}}',
    b'{"execute":"guest-file-open","arguments":{"path":""}}',
]


def test_exact_answers(agents):
    real, ours = agents
    rc, oc = real.connect(), ours.connect()
    rc.sync()
    oc.sync()
    for req in EXACT:
        # Each request is followed by a space so that a bare scalar ends.
        want = rc.raw(req + b" ")
        got = oc.raw(req + b" ")
        assert got == want, req
    rc.close()
    oc.close()


def test_parse_errors_and_resync(agents):
    cases = [
        (b'{"execute":"guest-ping"', 0), (b'}\n', 1),
        (b'{"execute":"guest-ping"\n', 0), (b'\xff', 1), (b'{"execute":"guest-ping"}', 1),
        (b'\xff{"execute":"guest-ping"}', 2),
        (b'{"execute":"guest-ping"}}', 2),
        (b'{"execute":"guest-ping"} {"execute":"guest-ping"}', 2),
        (b'123', 0), (b' ', 1),
    ]
    real, ours = agents
    rc, oc = real.connect(), ours.connect()
    for data, n in cases:
        assert oc.raw(data, n) == rc.raw(data, n), data
    rc.close()
    oc.close()


def test_sync_delimited_framing(agents):
    for agent in agents:
        c = agent.connect()
        out = c.raw(b'\xff{"execute":"guest-sync-delimited","arguments":{"id":7}}', 2)
        assert out[1] == b'\xff{"return": 7}\n'
        c.close()


def test_guest_info_lists_the_same_commands(agents):
    real, ours = [json.loads(a.connect().cmd("guest-info")) for a in agents]
    assert [c["name"] for c in ours["return"]["supported_commands"]] == \
        [c["name"] for c in real["return"]["supported_commands"]]
    assert ours["return"]["supported_commands"] == real["return"]["supported_commands"]
    assert ours["return"]["version"] == real["return"]["version"]


@pytest.mark.parametrize("cmd", ["guest-get-time", "guest-network-get-interfaces",
                                 "guest-get-fsinfo", "guest-get-users",
                                 "guest-get-memory-blocks", "guest-get-diskstats",
                                 "guest-get-cpustats"])
def test_same_shape(agents, cmd):
    real, ours = [a.connect().call(cmd) for a in agents]
    assert shape(ours) == shape(real)
    if isinstance(real["return"], list):
        assert len(ours["return"]) == len(real["return"])
    if cmd == "guest-get-time":
        assert abs(ours["return"] - real["return"]) < 60 * 10**9
    if cmd == "guest-network-get-interfaces":
        strip = [{k: v for k, v in i.items() if k != "statistics"} for i in real["return"]]
        assert [{k: v for k, v in i.items() if k != "statistics"} for i in ours["return"]] == strip
    if cmd == "guest-get-fsinfo":
        for r, o in zip(real["return"], ours["return"]):
            assert (o["name"], o["mountpoint"], o["type"], o["disk"], o["total-bytes"]) == \
                (r["name"], r["mountpoint"], r["type"], r["disk"], r["total-bytes"])


def test_file_session(agents, tmp_path):
    answers = []
    for i, agent in enumerate(agents):
        path = tmp_path / ("f%d.txt" % i)
        path.write_bytes(b"hello\n")
        c = agent.connect()
        h = c.call("guest-file-open", path=str(path), mode="r+")["return"]
        assert isinstance(h, int) and h >= 1000
        seq = [
            c.cmd("guest-file-read", handle=h, count=3),
            c.cmd("guest-file-read", handle=h),
            c.cmd("guest-file-read", handle=h, count=-1),
            c.cmd("guest-file-read", handle=h, count=999999999999),
            c.cmd("guest-file-seek", handle=h, offset=0, whence="set"),
            c.cmd("guest-file-seek", handle=h, offset=0, whence=0),
            c.cmd("guest-file-seek", handle=h, offset=-100, whence="set"),
            c.cmd("guest-file-write", handle=h, buf_b64=base64.b64encode(b"XYZ").decode()),
            c.cmd("guest-file-write", handle=h, buf_b64="WFla", count=10),
            c.cmd("guest-file-write", handle=h, buf_b64="***"),
            # GLib's base64: partial groups dropped, '=' anywhere counts as a digit
            c.cmd("guest-file-write", handle=h, buf_b64="YQ"),
            c.cmd("guest-file-seek", handle=h, offset=0, whence="set"),
            c.cmd("guest-file-write", handle=h, buf_b64="WFla"),
            c.cmd("guest-file-seek", handle=h, offset=8, whence="set"),
            c.cmd("guest-file-write", handle=h, buf_b64="YQ==YQ==YW=jY===WFla"),
            c.cmd("guest-file-seek", handle=h, offset=8, whence="set"),
            c.cmd("guest-file-read", handle=h),
            c.cmd("guest-file-seek", handle=h, offset=6, whence="set"),
            c.cmd("guest-file-write", handle=h, buf_b64=""),
            c.cmd("guest-file-read", handle=h, count=0),
            c.cmd("guest-file-flush", handle=h),
            c.cmd("guest-file-seek", handle=h, offset=0, whence="end"),
            c.cmd("guest-file-close", handle=h),
            c.cmd("guest-file-close", handle=h).replace(b"%d" % h, b"H"),
        ]
        h2 = c.call("guest-file-open", path=str(path))["return"]
        assert h2 == h + 1
        seq.append(c.cmd("guest-file-write", handle=h2, buf_b64="WFla"))
        h3 = c.call("guest-file-open", path=str(tmp_path))["return"]
        seq.append(c.cmd("guest-file-read", handle=h3))
        answers.append(seq)
        assert path.read_bytes()[:6] == b"XYZlo\n"
    assert answers[1] == answers[0]


def test_exec_session(agents, tmp_path):
    script = tmp_path / "no-shebang"
    script.write_text('echo "args: $1"\n')
    script.chmod(0o755)
    answers = []
    for agent in agents:
        c = agent.connect()
        pids = [c.call("guest-exec", path="/bin/sh", arg=["-c", "echo out; echo err >&2; exit 3"],
                       capture_output=True)["return"]["pid"],
                c.call("guest-exec", path="/bin/sh", arg=["-c", "kill -9 $$"])["return"]["pid"],
                c.call("guest-exec", path="/bin/cat", input_data="aGVsbG8=",
                       capture_output=True)["return"]["pid"],
                c.call("guest-exec", path="env", env=["A=1"], capture_output=True)["return"]["pid"],
                c.call("guest-exec", path=str(script), arg=["x y"], capture_output=True)["return"]["pid"]]
        seq = []
        for pid in pids:
            for _ in range(100):
                st = c.call("guest-exec-status", pid=pid)
                if st["return"]["exited"]:
                    break
                os.sched_yield()
                import time
                time.sleep(0.05)
            seq.append(st)
            seq.append(c.call("guest-exec-status", pid=pid))
        slow = c.call("guest-exec", path="/bin/sleep", arg=["5"])["return"]["pid"]
        seq.append(c.call("guest-exec-status", pid=slow))
        os.kill(slow, 9)
        answers.append(seq)
    assert answers[1] == answers[0]
    assert base64.b64decode(answers[0][0]["return"]["out-data"]) == b"out\n"


def test_blocked_commands(tmp_path):
    from qgaclient import PYQEMU_GA, QEMU_GA, Agent
    got = []
    for prog, d in ((QEMU_GA, "real"), (PYQEMU_GA, "ours")):
        a = Agent(prog, tmp_path / d, ["-b", "guest-ping,guest-exec,guest-nonexist"])
        try:
            c = a.connect()
            info = c.call("guest-info")["return"]["supported_commands"]
            got.append((c.cmd("guest-ping"), c.cmd("guest-exec", path="/bin/true"),
                        c.cmd("guest-ping", x=1),
                        [x for x in info if x["name"] in ("guest-ping", "guest-exec", "guest-sync")]))
        finally:
            a.stop()
    assert got[1] == got[0]
    assert b"has been disabled" in got[0][0]


def test_robustness(agents):
    """Garbage, an oversized message and a client that vanishes leave both agents serving."""
    for agent in agents:
        c = agent.connect()
        c.send(b'{"execute":"guest-ping","arguments":{"x":"' + b"A" * (1 << 20))
        c.close()                      # vanished mid-message
        c = agent.connect()
        c.send(b'{"execute":"guest-exec","arguments":{"path":"/bin/sleep","arg":["0.2"]}}')
        c.close()                      # vanished before the answer
        c = agent.connect()
        c.sync()
        out = c.raw(b"[" * 1100 + b"]" * 1100, 1)
        assert b"JSON nesting depth limit exceeded" in out[0]
        c.sync()
        assert c.cmd("guest-ping") == b'{"return": {}}\n'
        c.close()
    assert all(a.proc.poll() is None for a in agents)


def test_oversized_message(agents):
    """A 65 MiB string: the size limit, then the same recovery in both agents."""
    got = []
    for agent in agents:
        c = agent.connect()
        c.send(b'{"execute":"guest-ping","arguments":{"x":"' + b"A" * (65 << 20) + b'"}}')
        c.send(b'\xff{"execute":"guest-sync-delimited","arguments":{"id":77}}')
        lines = []
        while not lines or b"\xff" not in lines[-1]:
            lines.append(c._line())
        assert c.cmd("guest-ping") == b'{"return": {}}\n'
        c.close()
        got.append(lines)
    assert got[1] == got[0]
    assert b"JSON token size limit exceeded" in got[0][0]


def test_exec_output_is_capped(agents):
    """More than 16 MiB of output: both agents keep the first 16 MiB and say so."""
    got = []
    for agent in agents:
        c = agent.connect()
        pid = c.call("guest-exec", path="/bin/sh", arg=["-c", "head -c 17000000 /dev/zero; echo e >&2"],
                     capture_output=True)["return"]["pid"]
        import time
        for _ in range(400):
            st = c.call("guest-exec-status", pid=pid)["return"]
            if st["exited"]:
                break
            time.sleep(0.05)
        got.append({k: (len(base64.b64decode(v)) if k.endswith("-data") else v) for k, v in st.items()})
    assert got[1] == got[0]
    assert got[0]["out-data"] == 16 << 20 and got[0]["out-truncated"] is True


def test_one_client_at_a_time(agents):
    """A second client waits, unanswered, until the first one leaves."""
    import socket as _socket
    for agent in agents:
        first = agent.connect()
        first.sync()
        second = agent.connect()
        second.send(b'{"execute":"guest-sync","arguments":{"id":42}}')
        second.s.settimeout(0.5)
        with pytest.raises(_socket.timeout):
            second.s.recv(100)
        second.s.settimeout(10)
        assert first.cmd("guest-ping") == b'{"return": {}}\n'
        first.close()
        assert second._line() == b'{"return": 42}\n'
        second.close()
