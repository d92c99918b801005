"""Bad input never escapes as an exception: QMP answers every value, HMP prints a message."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqemu.monitor import register_builtin_commands
from pyqemu.monitor.hmp import run_hmp_command
from pyqemu.monitor.json_stream import JsonError, JsonStreamer
from pyqemu.monitor.qmp import QmpMonitor

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=300))
def test_streamer_survives_any_bytes(data):
    s = JsonStreamer()
    for item in s.feed(data):
        assert isinstance(item, (JsonError, dict, list, str, int, float, bool, type(None)))
    # Whatever came before, a well-formed request after a newline-free reset still parses.
    s2 = JsonStreamer()
    s2.feed(data)
    s2._reset([], "")
    assert s2.feed(b'{"execute": "x"}') == [{"execute": "x"}]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10)


class _Sink:
    typename = "loopback"

    def set_handlers(self, *a, **k):
        pass

    def write(self, data):
        return len(data)


@FUZZ
@given(st.dictionaries(st.sampled_from(["execute", "arguments", "id", "exec-oob", "foo"]),
                       json_values, max_size=4) | json_values)
def test_qmp_answers_every_request_with_return_or_error(req):
    register_builtin_commands()
    mon = QmpMonitor(_Sink())
    mon.negotiated = True
    if isinstance(req, dict) and isinstance(req.get("execute"), str):
        # Keep to side-effect-free commands: unknown names and query-*/ringbuf ones.
        if req["execute"] not in ("query-version", "query-chardev", "ringbuf-read", "query-commands"):
            req["execute"] = "x-" + req["execute"]
    req.pop("exec-oob", None) if isinstance(req, dict) else None
    resp = mon.handle(req)
    assert set(resp) <= {"return", "error", "id"}
    assert ("return" in resp) != ("error" in resp)
    if "error" in resp:
        assert set(resp["error"]) == {"class", "desc"}
    json.dumps(resp)
    mon.close()


@FUZZ
@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x7f), max_size=60))
def test_hmp_prints_something_sensible_for_any_line(line):
    register_builtin_commands()
    # Only the harmless commands: a random first word would otherwise hit quit/stop/etc.
    for prefix in ("help ", "info ", "ringbuf_read ", "p ", "nosuch "):
        out = run_hmp_command(prefix + line.replace("\n", " ").replace("\r", " "))
        assert isinstance(out, str)
        assert "Traceback" not in out
