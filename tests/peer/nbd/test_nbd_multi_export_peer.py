"""Several exports from one pyqemu NBD server (the library API), seen by nbdinfo --list."""
from __future__ import annotations

import json
import socket
import threading

from nbd_peer_util import need, run

from pyqemu.block import open_image
from pyqemu.nbd.blockexport import BlockNodeBackend
from pyqemu.nbd.export import Export, LockedBackend
from pyqemu.nbd.server import NBDServer

MiB = 1 << 20


def test_nbdinfo_list_shows_every_export(tmp_path):
    a, b = str(tmp_path / "a.raw"), str(tmp_path / "b.qcow2")
    with open(a, "wb") as f:
        f.truncate(MiB)
    run([need("qemu-img"), "create", "-q", "-f", "qcow2", b, "3M"])
    exports = [Export("alpha", LockedBackend(BlockNodeBackend(open_image(a, "raw", readonly=True))),
                      description="first disk"),
               Export("beta", LockedBackend(BlockNodeBackend(open_image(b, "qcow2", readonly=False))),
                      description="second disk", multi_conn=True)]
    sock_path = str(tmp_path / "m.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(sock_path)
    listener.listen(4)
    server = NBDServer(exports, max_connections=0, persistent=True)
    t = threading.Thread(target=server.serve_forever, args=([listener],), daemon=True)
    t.start()
    try:
        out = json.loads(run([need("nbdinfo"), "--json", "--list", "nbd+unix:///?socket=%s" % sock_path]).stdout)
        got = {e["export-name"]: e for e in out["exports"]}
        assert set(got) == {"alpha", "beta"}
        assert got["alpha"]["description"] == "first disk" and got["alpha"]["is_read_only"]
        assert got["alpha"]["export-size"] == MiB
        assert got["beta"]["export-size"] == 3 * MiB and got["beta"]["can_multi_conn"]
        assert got["beta"]["can_trim"] and not got["beta"]["is_read_only"]
        run([need("qemu-io"), "-f", "raw", "-c", "write -P 0x44 0 64k",
             "nbd+unix:///beta?socket=%s" % sock_path])
    finally:
        server.stop()
        t.join(10)
        for e in exports:
            e.backend.close()
    p = run([need("qemu-io"), "-f", "qcow2", "-c", "read -P 0x44 0 64k", b])
    assert "failed" not in p.stdout
    run([need("qemu-img"), "check", b])
