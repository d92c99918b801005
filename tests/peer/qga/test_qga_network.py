"""guest-network-get-interfaces in a private network namespace.

Both agents run in one throwaway namespace holding a bridge with several
IPv4/IPv6 addresses, a veth pair without addresses and a tun device without
a MAC address.  Everything but the traffic counters (the kernel's IPv6 set-up
still sends a few packets on the bridge) must match byte for byte.
"""
import os
import re
import shutil
import subprocess

import pytest

from qgaclient import PYQEMU_GA, QEMU_GA, Agent

SETUP = """set -e
ip link set lo up
ip link add br0 type bridge
ip addr add 10.1.2.3/24 dev br0
ip addr add 10.9.9.9/8 dev br0
ip link set br0 up
ip -6 addr add fd00::5/64 dev br0 nodad
ip link add veth0 type veth peer name veth1
ip tuntap add dev tun0 mode tun
ip addr add 192.168.7.1/30 dev tun0
"""


@pytest.fixture
def netns():
    for tool in ("unshare", "nsenter", "ip"):
        if not shutil.which(tool):
            pytest.fail("needs %s" % tool)
    if os.geteuid() != 0:
        pytest.fail("needs root")
    holder = subprocess.Popen(["unshare", "-n", "sleep", "120"])
    try:
        for _ in range(100):
            if os.readlink("/proc/%d/ns/net" % holder.pid) != os.readlink("/proc/self/ns/net"):
                break
            subprocess.run(["sleep", "0.02"])
        ns = os.readlink("/proc/%d/ns/net" % holder.pid)
        assert ns != os.readlink("/proc/self/ns/net")
        subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "sh", "-c", SETUP], check=True,
                       capture_output=True)
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_interfaces(tmp_path, netns):
    got = []
    for prog, d in ((QEMU_GA, "real"), (PYQEMU_GA, "ours")):
        a = Agent(prog, tmp_path / d, wrapper=["nsenter", "-t", str(netns), "-n"])
        try:
            out = a.connect().cmd("guest-network-get-interfaces")
            got.append(re.sub(rb'("[rt]x-[a-z]+": )\d+', rb"\1N", out))
        finally:
            a.stop()
    assert got[1] == got[0]
    for want in (b'"10.9.9.9"', b'"fd00::5"', b'"veth1"', b'"tun0"', b'"192.168.7.1"'):
        assert want in got[0]
