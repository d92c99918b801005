from pyqemu.monitor.json_stream import JsonError, JsonStreamer, to_json


def texts(items):
    return [str(i) if isinstance(i, JsonError) else i for i in items]


def test_values_split_across_and_within_writes():
    s = JsonStreamer()
    assert s.feed(b'{"execute": "a"') == []
    assert s.feed(b'}{"execute"') == [{"execute": "a"}]
    assert s.feed(b': "b", "x": "}{"}\n[1,\n2]') == [{"execute": "b", "x": "}{"}, [1, 2]]


def test_scalars_and_escapes():
    s = JsonStreamer()
    assert s.feed(b'123 null "a\\"b" ') == [123, None, 'a"b']


def test_errors_in_qemu_words_and_recovery():
    s = JsonStreamer()
    assert texts(s.feed(b'{"execute": foo}')) == ["JSON parse error, invalid keyword 'foo'"]
    assert texts(s.feed(b'{"execute":"q" "x"}')) == ["JSON parse error, expected separator in dict"]
    assert texts(s.feed(b'}')) == ["JSON parse error, expecting value"]
    assert s.feed(b'{"ok": 1}') == [{"ok": 1}]


def test_nesting_limit():
    s = JsonStreamer()
    out = s.feed(b"[" * 2000)
    assert texts(out) == ["JSON parse error, too many nested containers"]


def test_output_style():
    assert to_json({"return": {}, "id": 1}) == '{"return": {}, "id": 1}'
    # -qmp-pretty, as QEMU prints it (captured from qemu-system-x86_64 -qmp-pretty).
    assert to_json({"return": {}, "id": "a"}, pretty=True) == \
        '{\n    "return": {\n    },\n    "id": "a"\n}'
    assert to_json({"id": [1, {}]}, pretty=True) == \
        '{\n    "id": [\n        1,\n        {\n        }\n    ]\n}'


def test_single_quoted_strings_as_qemu_accepts_them():
    s = JsonStreamer()
    assert s.feed(b"{'execute': 'q', 'id': 'a\\'b\"c'} 'x'") == [{"execute": "q", "id": "a'b\"c"}, "x"]
    assert s.feed(b'{"execute": "x\\\'y"}') == [{"execute": "x'y"}]
