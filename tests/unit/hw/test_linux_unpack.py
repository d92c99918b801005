"""host-unpack=on: the bzImage payload decompressed on the host, the vmlinux
segments at their physical addresses, the boot_params zero page and the
64-bit entry state, checked on a synthetic bzImage (hermetic)."""
import gzip
import lzma
import struct

import pytest

from pyqemu.hw.i386 import linux_unpack as L
from pyqemu.util.error import QemuError

ENTRY = 0x1000000


def vmlinux() -> bytes:
    """An x86-64 ELF with a text segment at 16 MiB and a bss-carrying data segment."""
    eh = bytearray(64)
    eh[0:7] = b"\x7fELF\x02\x01\x01"
    struct.pack_into("<HHIQQQIHHHHHH", eh, 16, 2, 62, 1, ENTRY, 64, 0, 0, 64, 56, 2, 64, 0, 0)
    text = b"\x90" * 32 + b"\xf4"
    data = b"DATA"
    ph1 = struct.pack("<IIQQQQQQ", 1, 5, 0x1000, 0xFFFFFFFF81000000, ENTRY, len(text), len(text), 0x1000)
    ph2 = struct.pack("<IIQQQQQQ", 1, 6, 0x2000, 0xFFFFFFFF82000000, 0x2000000, len(data), 0x3000, 0x1000)
    img = bytearray(0x3000)
    img[0:64] = eh
    img[64:64 + 112] = ph1 + ph2
    img[0x1000:0x1000 + len(text)] = text
    img[0x2000:0x2000 + len(data)] = data
    return bytes(img)


def bzimage(payload_compress=lambda b: lzma.compress(b, format=lzma.FORMAT_XZ),
            protocol=0x20F, body=None) -> bytes:
    setup_sects = 3
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1F1] = setup_sects
    setup[0x1FE:0x200] = b"\x55\xaa"
    setup[0x201] = 0x6A                        # header end: 0x202 + 0x6a = 0x26c
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, protocol)
    setup[0x211] = 0x01                        # LOADED_HIGH
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)     # initrd_addr_max
    struct.pack_into("<I", setup, 0x230, 0x200000)       # kernel_alignment
    struct.pack_into("<H", setup, 0x236, 0x7F)           # xloadflags
    struct.pack_into("<I", setup, 0x260, 0x3000000)      # init_size
    elf = vmlinux() if body is None else body
    payload = payload_compress(elf) + struct.pack("<I", len(elf))
    struct.pack_into("<II", setup, 0x248, 0x100, len(payload))
    return bytes(setup) + bytes(0x100) + payload


@pytest.mark.parametrize("compress", [lambda b: lzma.compress(b, format=lzma.FORMAT_XZ),
                                      lambda b: gzip.compress(b, mtime=0),
                                      lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE)])
def test_payload_unpacks_to_the_vmlinux(compress):
    k = bzimage(compress)
    assert L.decompress_payload(L._payload(k)) == vmlinux()


def test_segments_at_physical_addresses_with_bss():
    entry, segs = L.vmlinux_segments(vmlinux())
    assert entry == ENTRY
    assert [(p, len(d), m) for p, d, m in segs] == [(ENTRY, 33, 33), (0x2000000, 4, 0x3000)]


def test_prepare_lays_out_memory_and_zero_page(tmp_path):
    kpath = tmp_path / "bzImage"
    kpath.write_bytes(bzimage())
    ipath = tmp_path / "initrd"
    ipath.write_bytes(b"I" * 10000)
    below = 256 << 20
    boot = L.prepare(str(kpath), str(ipath), "console=ttyS0 quiet", below, 0)
    blobs = dict(boot.blobs)
    assert boot.entry == ENTRY
    assert blobs[ENTRY].startswith(b"\x90" * 32)
    assert blobs[0x2000000] == b"DATA" + bytes(0x3000 - 4)         # bss zeroed
    assert blobs[L.CMDLINE_ADDR] == b"console=ttyS0 quiet\0"
    zp = blobs[L.ZERO_PAGE_ADDR]
    assert len(zp) == 4096
    assert zp[0x202:0x206] == b"HdrS" and zp[0x1FE:0x200] == b"\x55\xaa"
    assert zp[0x210] == 0xB0 and zp[0x211] & 1
    assert struct.unpack_from("<II", zp, 0x228) == (L.CMDLINE_ADDR, 0x7FFFFFFF) or \
        struct.unpack_from("<I", zp, 0x228)[0] == L.CMDLINE_ADDR
    assert struct.unpack_from("<I", zp, 0x238)[0] == len("console=ttyS0 quiet")
    # the initrd as high as QEMU puts it: below RAM top less the ACPI room, page aligned
    addr, size = struct.unpack_from("<II", zp, 0x218)
    assert size == 10000 and addr % 4096 == 0
    assert addr + size <= below - L.ACPI_DATA_SIZE and blobs[addr] == b"I" * 10000
    assert addr == (below - L.ACPI_DATA_SIZE - 1 - 10000) & ~4095
    # e820: low RAM, EBDA, BIOS, RAM from 1 MiB to the top, the flash below 4 GiB
    n = zp[0x1E8]
    e820 = [struct.unpack_from("<QQI", zp, 0x2D0 + 20 * i) for i in range(n)]
    assert e820 == [(0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2),
                    (0x100000, below - 0x100000, 1), (0xFFFC0000, 0x40000, 2)]
    assert zp[0x1EF] == 0                           # sentinel: the loader cleared it
    # page tables identity-map 4 GiB with 2 MiB pages, the GDT has flat 64-bit CS 0x10 / DS 0x18
    assert struct.unpack_from("<Q", blobs[L.PML4_ADDR], 0)[0] == L.PDPT_ADDR | 3
    pds = blobs[L.PD_ADDR]
    assert struct.unpack_from("<Q", pds, 8 * 8)[0] == (8 << 21) | 0x83
    assert len(pds) == 4 * 4096
    gdt = blobs[L.GDT_ADDR]
    cs, ds = struct.unpack_from("<QQ", gdt, 0x10)
    assert (cs >> 53) & 1 == 1 and (cs >> 40) & 0xFF == 0x9B    # L=1, present code
    assert (ds >> 40) & 0xFF == 0x93


def test_above_4g_ram_in_e820():
    e = L.e820_entries(0xC0000000, 1 << 30)
    assert e[-1] == (1 << 32, 1 << 30, 1)


def test_errors_are_clear(tmp_path):
    k = tmp_path / "k"
    k.write_bytes(bzimage(protocol=0x206))
    with pytest.raises(QemuError, match="protocol 2.08"):
        L.prepare(str(k), None, "", 256 << 20, 0)
    k.write_bytes(bzimage(lambda b: b"\x02\x21\x4c\x18" + b))
    with pytest.raises(QemuError, match="compression"):
        L.prepare(str(k), None, "", 256 << 20, 0)
    k.write_bytes(bzimage(body=b"not an elf" * 10))
    with pytest.raises(QemuError, match="not an x86-64 ELF"):
        L.prepare(str(k), None, "", 256 << 20, 0)
    k.write_bytes(b"\x00" * 4096)
    with pytest.raises(QemuError, match="needs a bzImage"):
        L.prepare(str(k), None, "", 256 << 20, 0)
    good = tmp_path / "good"
    good.write_bytes(bzimage())
    with pytest.raises(QemuError, match="MiB of RAM"):
        L.prepare(str(good), None, "", 32 << 20, 0)        # init_size reaches 64 MiB
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(200 << 20)
    with pytest.raises(QemuError, match="initrd is too large"):
        L.prepare(str(good), str(big), "", 128 << 20, 0)
    corrupt = bytearray(bzimage())
    corrupt[-20] ^= 0xFF
    k.write_bytes(bytes(corrupt))
    with pytest.raises(QemuError):
        L.prepare(str(k), None, "", 256 << 20, 0)


def test_enter_kernel_sets_the_64bit_boot_state(make_pc):
    m = make_pc()
    cpu = m.cpus[0]
    boot = L.DirectBoot()
    boot.entry = ENTRY
    L.enter_kernel(cpu, boot)
    assert cpu.rip == ENTRY and cpu.regs[6] == L.ZERO_PAGE_ADDR
    assert cpu.cr[0] & 0x80000001 == 0x80000001 and cpu.cr[4] & 0x20 and cpu.cr[3] == L.PML4_ADDR
    assert cpu.efer & 0x500 == 0x500
    assert cpu.code64 and cpu.segs[1] == 0x10 and cpu.segs[2] == 0x18 and cpu.segs[3] == 0x18
    assert not cpu.eflags & 0x200


def test_mp_table_lists_every_cpu_and_the_ioapic():
    t = L.mp_table(3, 0x663, 0x0781ABFD)
    fp, cfg = t[:16], t[16:]
    assert fp[:4] == b"_MP_" and sum(fp) & 0xFF == 0
    assert struct.unpack_from("<I", fp, 4)[0] == L.MP_TABLE_ADDR + 16 and fp[8] == 1 and fp[9] == 4
    length, = struct.unpack_from("<H", cfg, 4)
    assert cfg[:4] == b"PCMP" and len(cfg) == length and sum(cfg) & 0xFF == 0
    count, lapic = struct.unpack_from("<HI", cfg, 34)
    assert lapic == 0xFEE00000
    pos, procs, ioapics, ints = 44, [], [], []
    for _ in range(count):
        kind = cfg[pos]
        if kind == 0:
            procs.append((cfg[pos + 1], cfg[pos + 3]))
            pos += 20
        else:
            if kind == 2:
                ioapics.append(struct.unpack_from("<I", cfg, pos + 4)[0])
            if kind == 3:
                ints.append((cfg[pos + 5], cfg[pos + 7]))
            pos += 8
    assert procs == [(0, 3), (1, 1), (2, 1)]          # APIC IDs, enabled, BSP first
    assert ioapics == [0xFEC00000]
    assert (0, 2) in ints and (1, 1) in ints and all(irq != 2 for irq, _ in ints)


@pytest.mark.parametrize("ncpus", [1, 2])
def test_host_unpack_machine_writes_the_mp_table(make_pc, tmp_path, ncpus):
    # SeaBIOS writes an MP table for one CPU too: without it Linux reports
    # "Boot CPU (id 0) not listed by BIOS"
    from pyqemu.exec.memory import address_space_memory
    kpath = tmp_path / "bzImage"
    kpath.write_bytes(bzimage())
    m = make_pc("-M", "pc,host-unpack=on", "-kernel", str(kpath), "-smp", str(ncpus))
    m.reset()
    mem = address_space_memory()
    eax, _b, _c, edx = m.cpus[0].cpuid(1, 0)
    table = L.mp_table(ncpus, eax, edx)
    assert mem.read_bytes(L.MP_TABLE_ADDR, len(table)) == table
    assert table.count(b"PCMP") == 1 and len(table) == 16 + 44 + 20 * ncpus + 8 + 8 + 15 * 8 + 2 * 8
