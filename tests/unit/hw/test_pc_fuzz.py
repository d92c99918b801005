"""Random guest I/O at the PC's ports never raises, and reads stay in range."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyqemu.exec.memory import address_space_io, address_space_memory

PORTS = [0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1, 0x40, 0x41, 0x42, 0x43, 0x61, 0x60, 0x64,
         0x70, 0x71, 0x92, 0x3F8, 0x3F9, 0x3FA, 0x3FB, 0x3FC, 0x3FD, 0x3FE, 0x3FF,
         0xCF8, 0xCF9, 0xCFC, 0xCFD, 0xCFE, 0xCFF, 0x510, 0x511, 0x514, 0x518]
ops = st.lists(st.tuples(st.sampled_from(["in", "out"]), st.sampled_from(PORTS),
                         st.sampled_from([1, 2, 4]), st.integers(0, 0xFFFFFFFF)), max_size=60)


def test_random_port_io(make_pc):
    make_pc("-serial", "null")
    io = address_space_io()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(ops)
    def run(seq):
        for kind, port, size, val in seq:
            if kind == "in":
                assert 0 <= io.read(port, size) < (1 << (8 * size))
            else:
                io.write(port, size, val)
        # The reset vector stays readable whatever PAM/SMRAM state was written.
        address_space_memory().read(0xFFFFFFF0, 4)
    run()
