"""Arbitrary bytes never break the JSON streamer, and 0xFF always resynchronises it."""
from hypothesis import given, settings
from hypothesis import strategies as st

from pyqemu.qga import qjson

PIECES = st.sampled_from([b"{", b"}", b"[", b"]", b":", b",", b'"', b"'", b"\\", b"\\u", b"1",
                          b"-", b"0.", b"e", b"true", b"nul", b" ", b"\n", b"\x00", b"\xc3",
                          b"\xff", b'"execute"', b'"guest-ping"'])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(PIECES, st.binary(max_size=8)), max_size=40))
def test_garbage_then_resync(chunks):
    out = []
    s = qjson.JsonStreamer(lambda v, e: out.append((v, e)))
    for c in chunks:
        s.feed(c)
    for value, err in out:
        # an error carries no value (a value of None is JSON null)
        if err is not None:
            assert value is None and err.startswith("JSON ")
    # Close whatever is open by resetting with 0xFF, then a clean request parses.
    out.clear()
    s.feed(b'\xff{"execute":"guest-ping"}')
    assert out[-1] == ({"execute": "guest-ping"}, None)
