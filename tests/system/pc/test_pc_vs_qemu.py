"""The PC machine's devices seen through their I/O ports from the monitor (the
guest's view without a CPU), compared with real qemu-system-x86_64 -M pc -S."""
import subprocess

import pytest
from pcvm import PYQEMU, PCVM


def both(real_qemu, tmp_path, args, probe):
    out = []
    for tag, prog in (("py", PYQEMU), ("real", real_qemu)):
        vm = PCVM(prog, [a.replace("@", "%s/%s-" % (tmp_path, tag)) for a in args], str(tmp_path), tag)
        try:
            out.append(probe(vm))
        finally:
            vm.close()
    return out


def cmos(vm):
    vals = []
    for i in range(128):
        vm.outb(0x70, i)
        vals.append(vm.inb(0x71))
    return vals


@pytest.mark.parametrize("args", [["-m", "128"], ["-m", "5G", "-smp", "3"], ["-m", "3584"]])
def test_cmos_contents(real_qemu, tmp_path, args):
    ours, real = both(real_qemu, tmp_path, args, cmos)
    # 0x00-0x09 are the running clock; everything else is configuration.
    assert ours[0x0A:] == real[0x0A:]


def test_cmos_clock_from_rtc_base(real_qemu, tmp_path):
    ours, real = both(real_qemu, tmp_path, ["-rtc", "base=2006-06-17T16:01:21"], cmos)
    # hour, day of week, date, month, year, century (minutes/seconds may tick over)
    for i in (0x04, 0x06, 0x07, 0x08, 0x09, 0x32):
        assert ours[i] == real[i], hex(i)
    assert ours[0x09] == 0x06 and ours[0x32] == 0x20


def pci_config(vm):
    words = []
    for devfn in (0, 8, 0x18):
        for off in range(0, 256, 4):
            vm.outl(0xCF8, 0x80000000 | devfn << 8 | off)
            words.append(vm.inl(0xCFC))
    vm.outl(0xCF8, 0x00000000)  # enable bit clear: no configuration cycle
    words.append(vm.inl(0xCFC))
    words.append(vm.inl(0xCF8))
    return words


def test_pci_config_space(real_qemu, tmp_path):
    ours, real = both(real_qemu, tmp_path, ["-m", "512"], pci_config)
    assert ours == real
    assert ours[0] == 0x12378086 and ours[64] == 0x70008086


def test_info_pci_host_and_isa_bridge(real_qemu, tmp_path):
    ours, real = both(real_qemu, tmp_path, [], lambda vm: vm.hmp("info pci"))
    # pyqemu has no IDE (01.1) or PM (01.3) function yet: the first two must agree.
    n = ours.count("\n")
    assert n == 8 and real.splitlines()[:8] == ours.splitlines()


def pam(vm):
    out = [vm.hmp("xp /8xb 0xffff0"), vm.hmp("xp /4xb 0xfffffff0")]
    for val in (0x3000, 0x1000, 0x0000):  # PAM0 high nibble: RW RAM, RO RAM, PCI (BIOS)
        vm.outl(0xCF8, 0x80000058)
        vm.outl(0xCFC, val)
        vm.hmp("xp /4xb 0xf0000")
        out.append(vm.hmp("xp /8xb 0xffff0"))
    return out


def test_pam_switches_bios_and_ram(real_qemu, tmp_path):
    ours, real = both(real_qemu, tmp_path, [], pam)
    assert ours == real
    assert ours[2] != ours[0]  # RAM is zero where the BIOS showed through


def ports(vm):
    out = []
    for base in (0x20, 0xA0):
        vm.outb(base, 0x0A)
        out.append(vm.inb(base))
        vm.outb(base, 0x0B)
        out += [vm.inb(base), vm.inb(base + 1)]
    out += [vm.inb(0x4D0), vm.inb(0x4D1)]
    # ICW1-ICW4 then a mask, as a BIOS programs the master
    for port, val in ((0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01), (0x21, 0xFB)):
        vm.outb(port, val)
    out.append(vm.inb(0x21))
    vm.outb(0x64, 0x20)
    out += [vm.inb(0x64), vm.inb(0x60), vm.inb(0x64)]
    vm.outb(0x64, 0xAA)
    out += [vm.inb(0x60), vm.inb(0x64)]
    vm.outb(0x64, 0xD0)
    out.append(vm.inb(0x60))
    vm.outb(0x60, 0xF2)
    out += [vm.inb(0x60), vm.inb(0x60), vm.inb(0x60)]
    out.append(vm.inb(0x92))
    out += [vm.inb(0x3F8 + i) for i in range(8)]
    vm.outb(0x3FF, 0x5A)
    out.append(vm.inb(0x3FF))
    vm.outb(0x3F9, 0x02)
    out += [vm.inb(0x3FA), vm.inb(0x3FA)]
    vm.outb(0x3FC, 0x10)
    out.append(vm.inb(0x3FE))
    vm.outb(0x3FC, 0x1F)
    out.append(vm.inb(0x3FE))
    vm.outb(0x3F8, 0x41)
    out += [vm.inb(0x3FD), vm.inb(0x3F8), vm.inb(0x3FD)]
    vm.outb(0x3FC, 0x08)
    vm.outb(0x3FB, 0x80)  # DLAB: divisor latch
    vm.outb(0x3F8, 0x01)
    out += [vm.inb(0x3F8), vm.inb(0x3F9)]
    vm.outb(0x3FB, 0x03)
    for c in b"COM1 says hi\n":
        vm.outb(0x3F8, c)
    out.append(vm.inb(0xCF9))
    return out


def test_device_registers(real_qemu, tmp_path):
    ours, real = both(real_qemu, tmp_path, ["-serial", "file:@com1.txt"], ports)
    assert ours == real
    assert (tmp_path / "py-com1.txt").read_bytes() == b"COM1 says hi\n"
    assert (tmp_path / "real-com1.txt").read_bytes() == b"COM1 says hi\n"


@pytest.mark.parametrize("port,val", [(0x64, 0xFE), (0xCF9, 0x06), (0x92, 0x01)])
def test_guest_reset_lines(real_qemu, tmp_path, port, val):
    def probe(vm):
        vm.outb(port, val)
        ok = vm.wait_event("RESET")
        return ok or (vm.events, vm.qmp("query-status"))
    assert both(real_qemu, tmp_path, [], probe) == [True, True]


def fw_cfg(vm):
    def item(key, n):
        vm.hmp("o /h 0x510 0x%x" % key)
        return bytes(vm.inb(0x511) for _ in range(n))
    out = [item(k, 16) for k in (0x0, 0x1, 0x3, 0x4, 0x5, 0xE, 0xF, 0x8002, 0x8003)]
    out.append(vm.inl(0x514))
    d = item(0x19, 4)
    files = {}
    for i in range(int.from_bytes(d, "big")):
        e = item(0x19, 4 + 64 * (i + 1))[4 + 64 * i:]
        files[e[8:].rstrip(b"\0").decode()] = (int.from_bytes(e[:4], "big"), int.from_bytes(e[4:6], "big"))
    size, key = files["etc/e820"]
    out.append(item(key, size))
    return out


@pytest.mark.parametrize("args", [["-m", "512", "-smp", "2"], ["-m", "5G", "-smp", "1,maxcpus=4"]])
def test_fw_cfg_items_and_e820(real_qemu, tmp_path, args):
    ours, real = both(real_qemu, tmp_path, args, fw_cfg)
    assert ours == real
    assert ours[0][:4] == b"QEMU"


@pytest.mark.parametrize("value", [0x00, 0x03, 0x7F])
def test_debugcon_and_debug_exit(real_qemu, tmp_path, value):
    results = []
    for tag, prog in (("py", PYQEMU), ("real", real_qemu)):
        log = tmp_path / ("%s-debugcon.txt" % tag)
        vm = PCVM(prog, ["-debugcon", "file:%s" % log,
                         "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"], str(tmp_path), tag)
        try:
            for c in b"dbg\n":
                vm.outb(0xE9, c)
            readback = vm.inb(0xE9)
            vm.f.write('{"execute": "human-monitor-command", "arguments": '
                       '{"command-line": "o /b 0xf4 0x%x"}}\n' % value)
            vm.f.flush()
            status = vm.proc.wait(timeout=20)
        finally:
            vm.close()
        results.append((readback, status, log.read_bytes()))
    assert results[0] == results[1]
    assert results[0] == (0xE9, ((value << 1) | 1) & 0xFF, b"dbg\n")


def pit(vm):
    out = []
    vm.outb(0x43, 0xEE)  # read back the status of all three channels
    out += [vm.inb(0x40), vm.inb(0x41), vm.inb(0x42)]
    vm.outb(0x43, 0x34)  # channel 0, lo/hi, rate generator
    vm.outb(0x40, 0x9C)
    vm.outb(0x40, 0x2E)
    vm.outb(0x43, 0x00)  # latch
    out += [vm.inb(0x40), vm.inb(0x40)]
    vm.outb(0x43, 0xC2)  # read back count and status of channel 0
    out += [vm.inb(0x40), vm.inb(0x40), vm.inb(0x40)]
    vm.outb(0x43, 0xB0)
    vm.outb(0x42, 0xFF)
    vm.outb(0x42, 0xFF)
    out += [vm.inb(0x61), vm.inb(0x61)]
    vm.outb(0x61, 0x01)  # gate channel 2
    out.append(vm.inb(0x61) & ~0x10)
    vm.outb(0x43, 0xE8)
    out.append(vm.inb(0x42))
    vm.outb(0x43, 0x50)  # channel 1, LSB only
    vm.outb(0x41, 0x12)
    out += [vm.inb(0x41), vm.inb(0x41)]
    vm.outb(0x43, 0xA0)  # channel 2, MSB only
    vm.outb(0x42, 0x34)
    out += [vm.inb(0x42), vm.inb(0x42), vm.inb(0x43)]
    return out


def test_pit_registers_with_the_clock_stopped(real_qemu, tmp_path):
    # -S keeps the virtual clock at a standstill, so counts are exact.
    ours, real = both(real_qemu, tmp_path, [], pit)
    assert ours == real
    assert ours[3:5] == [0x9C, 0x2E]


def test_qtree_blocks_match(real_qemu, tmp_path):
    """Devices whose properties pyqemu models fully print the same qtree lines."""
    ours, real = both(real_qemu, tmp_path, [], lambda vm: vm.hmp("info qtree"))
    for start in ('  dev: ioapic, id ""', '  dev: i440FX-pcihost, id ""'):
        def block(text):
            lines = text.splitlines()
            i = lines.index(start)
            out = [lines[i]]
            for ln in lines[i + 1:]:
                if not ln.startswith("    ") or ln.startswith("    bus:"):
                    break
                out.append(ln)
            return out
        assert block(ours) == block(real)


def fw_cfg_file(vm, name):
    def item(key, n):
        vm.hmp("o /h 0x510 0x%x" % key)
        return bytes(vm.inb(0x511) for _ in range(n))
    n = int.from_bytes(item(0x19, 4), "big")
    d = item(0x19, 4 + 64 * n)[4:]
    for i in range(n):
        e = d[64 * i:64 * i + 64]
        if e[8:].rstrip(b"\0") == name.encode():
            return item(int.from_bytes(e[4:6], "big"), int.from_bytes(e[:4], "big"))
    return None


def test_user_fw_cfg_blobs(real_qemu, tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 3)
    ours, real = both(real_qemu, tmp_path,
                      ["-fw_cfg", "name=opt/str,string=hello fw_cfg",
                       "-fw_cfg", "opt/file,file=%s" % blob],
                      lambda vm: (fw_cfg_file(vm, "opt/str"), fw_cfg_file(vm, "opt/file")))
    assert ours == real == (b"hello fw_cfg", bytes(range(256)) * 3)


@pytest.mark.parametrize("arg", ["string=hi", "name=opt/x", "name=opt/x,string=a,file=/etc/hostname",
                                 "name=opt/x,file=/no/such/file"])
def test_user_fw_cfg_errors(real_qemu, arg):
    out = []
    for prog in (PYQEMU, real_qemu):
        p = subprocess.run([prog, "-M", "pc", "-S", "-display", "none", "-nodefaults",
                            "-fw_cfg", arg], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30)
        out.append((p.returncode, p.stderr.decode().split(": ", 1)[1]))
    assert out[0] == out[1] and out[0][0] == 1


def test_hpet_registers(real_qemu, tmp_path):
    cmds = ["xp /4wx 0xfed00000", "xp /4wx 0xfed00010", "xp /2wx 0xfed000f0",
            "xp /6wx 0xfed00100", "xp /6wx 0xfed00120", "xp /6wx 0xfed00140",
            "xp /2wx 0xfed00160", "xp /2gx 0xfed00000", "xp /4wx 0xfec00000"]
    ours, real = both(real_qemu, tmp_path, [], lambda vm: [vm.hmp(c) for c in cmds])
    assert ours == real
    assert "0x009896808086a201" in ours[7]


def test_query_pci(real_qemu, tmp_path):
    ours, real = both(real_qemu, tmp_path, [], lambda vm: vm.qmp("query-pci")["return"])
    # pyqemu has the host bridge and the ISA bridge; they must be QEMU's entries.
    assert ours[0]["devices"] == real[0]["devices"][:2]
    assert len(ours[0]["devices"]) == 2
