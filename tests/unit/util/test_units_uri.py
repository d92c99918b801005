"""Size formatting as qemu-img prints it, and URIs."""
import pytest

from pyqemu.util.units import size_to_str
from pyqemu.util.uri import URIError, format_nbd_uri, nbd_uri_to_options, parse_uri


@pytest.mark.parametrize("value,text", [
    (0, "0 B"), (1, "1 B"), (512, "512 B"), (1000, "0.977 KiB"), (1024, "1 KiB"),
    (192 * 1024, "192 KiB"), (int(11.3 * 2 ** 20), "11.3 MiB"), (1 << 30, "1 GiB"),
    (10 << 30, "10 GiB"), (1536 << 20, "1.5 GiB"), (1 << 40, "1 TiB"), (1 << 62, "4 EiB"),
    (1023, "0.999 KiB"), (999, "999 B"),
])
def test_size_to_str(value, text):
    assert size_to_str(value) == text


def test_nbd_tcp_uri():
    assert nbd_uri_to_options("nbd://example.org:1234/disk") == {
        "export": "disk", "server": {"type": "inet", "host": "example.org", "port": "1234"}}
    assert nbd_uri_to_options("nbd://localhost") == {
        "server": {"type": "inet", "host": "localhost", "port": "10809"}}
    assert nbd_uri_to_options("nbd+tcp://[::1]:99/") == {
        "server": {"type": "inet", "host": "::1", "port": "99"}}


def test_nbd_unix_uri():
    assert nbd_uri_to_options("nbd+unix:///exp?socket=/tmp/nbd.sock") == {
        "export": "exp", "server": {"type": "unix", "path": "/tmp/nbd.sock"}}


@pytest.mark.parametrize("uri", [
    "nbd+unix:///x", "nbd+unix:///x?sock=a", "nbd+unix://host/x?socket=/s", "nbd://h/x?socket=/s",
    "http://h/x", "nbd://h:99999/x", "nbd://h:port/x", "::nonsense",
])
def test_bad_nbd_uris(uri):
    with pytest.raises(URIError):
        nbd_uri_to_options(uri)


def test_round_trip_through_format():
    for uri in ("nbd://h:10809/e", "nbd+unix:///e?socket=/tmp/s", "nbd://[::1]:10809/e"):
        o = nbd_uri_to_options(uri)
        assert nbd_uri_to_options(format_nbd_uri(o["server"], o.get("export"))) == o


def test_generic_uri_parts():
    u = parse_uri("file:/tmp/a%20b.img")
    assert u.scheme == "file" and u.path == "/tmp/a b.img"
    u = parse_uri("nbd://user@host:12/p?a=1&b=2#frag")
    assert (u.user, u.server, u.port, u.path, u.fragment) == ("user", "host", 12, "/p", "frag")
    assert u.query_params() == [("a", "1"), ("b", "2")]
