"""System-mode x86 CPU state: control registers, descriptor caches, MSRs.

:class:`X86SysCPU` extends the user-mode :class:`X86CPU` with the privileged
state.  Segment registers keep QEMU's layout: the selector in ``segs[i]``
(as user mode) plus hidden ``seg_base``/``seg_limit``/``seg_flags``, where the
flags are the descriptor's high dword as read (type, S, DPL, P, AVL, L, D/B, G
in their descriptor bit positions; ``info registers`` shows it whole, as QEMU).
"""
from __future__ import annotations

from typing import Callable, List, Optional

from pyqemu.exec.softmmu import MMUView, SoftMMU
from pyqemu.target.i386.cpu import R_EDX, X86CPU

R_ES, R_CS, R_SS, R_DS, R_FS, R_GS = range(6)
SEG_NAMES = ("ES", "CS", "SS", "DS", "FS", "GS")

CR0_PE, CR0_MP, CR0_EM, CR0_TS, CR0_ET, CR0_NE = 1, 2, 4, 8, 0x10, 0x20
CR0_WP, CR0_AM, CR0_NW, CR0_CD, CR0_PG = 1 << 16, 1 << 18, 1 << 29, 1 << 30, 1 << 31

CR4_VME, CR4_PVI, CR4_TSD, CR4_DE, CR4_PSE, CR4_PAE = 1, 2, 4, 8, 0x10, 0x20
CR4_MCE, CR4_PGE, CR4_PCE, CR4_OSFXSR, CR4_OSXMMEXCPT = 0x40, 0x80, 0x100, 0x200, 0x400
CR4_UMIP, CR4_FSGSBASE, CR4_PCIDE, CR4_OSXSAVE = 0x800, 1 << 16, 1 << 17, 1 << 18
CR4_SMEP, CR4_SMAP = 1 << 20, 1 << 21

EFER_SCE, EFER_LME, EFER_LMA, EFER_NXE, EFER_FFXSR = 1, 1 << 8, 1 << 10, 1 << 11, 1 << 14

# eflags bits outside the arithmetic ones
TF_MASK, IF_MASK, DF_MASK, IOPL_MASK, NT_MASK = 0x100, 0x200, 0x400, 0x3000, 0x4000
RF_MASK, VM_MASK, AC_MASK, VIF_MASK, VIP_MASK, ID_MASK = (1 << 16, 1 << 17, 1 << 18, 1 << 19,
                                                          1 << 20, 1 << 21)

# descriptor high-dword fields (seg_flags uses the same positions)
DESC_G_MASK = 1 << 23
DESC_B_MASK = 1 << 22
DESC_L_MASK = 1 << 21
DESC_AVL_MASK = 1 << 20
DESC_P_MASK = 1 << 15
DESC_DPL_SHIFT = 13
DESC_DPL_MASK = 3 << 13
DESC_S_MASK = 1 << 12
DESC_TYPE_SHIFT = 8
DESC_TYPE_MASK = 15 << 8
DESC_A_MASK = 1 << 8
DESC_CS_MASK = 1 << 11      # code segment (with S)
DESC_C_MASK = 1 << 10       # conforming code
DESC_E_MASK = 1 << 10       # expand-down data
DESC_R_MASK = 1 << 9        # readable code
DESC_W_MASK = 1 << 9        # writable data
DESC_TSS_BUSY_MASK = 1 << 9
DESC_FLAGS_MASK = 0x00f0ff00

MMU_KERNEL_IDX = 0
MMU_USER_IDX = 1
MMU_PHYS_IDX = 2

DR6_FIXED_1 = 0xffff0ff0
DR7_FIXED_1 = 0x400


class SegmentCache:
    """LDTR and TR: a selector and its hidden descriptor cache."""

    __slots__ = ("selector", "base", "limit", "flags")

    def __init__(self, selector: int = 0, base: int = 0, limit: int = 0, flags: int = 0) -> None:
        self.selector = selector
        self.base = base
        self.limit = limit
        self.flags = flags


class X86SysCPU(X86CPU):
    """An x86 CPU with its privileged state, over a physical address space."""

    def __init__(self, address_space, model: str = "qemu64", cpu_index: int = 0) -> None:
        super().__init__(None, model, 64)
        from pyqemu.target.i386.sysemu.mmu import tlb_fill
        self.cpu_index = cpu_index
        self.as_ = address_space
        self.tlb = SoftMMU(address_space, lambda va, acc, idx: tlb_fill(self, va, acc, idx))
        # the memory interface of translated code and helpers, one per MMU index;
        # ``mem`` follows the CPL (the execution loop keeps it current)
        self.views = [MMUView(self.tlb, i) for i in range(3)]
        self.mem = self.views[MMU_KERNEL_IDX]
        self.io_as = None               # the machine's I/O port space
        self.exit_request = False       # leave the execution loop at the next block end
        # the machine's interrupt line: level, and the acknowledge that gives the
        # vector (-1: spurious / gone)
        self.intr_level = False
        self.get_irq: Callable[[], int] = lambda: -1
        self.irq_blocked = False
        self.interrupt_count = 0
        self.on_triple_fault: Optional[Callable[[], None]] = None
        self.seg_base: List[int] = [0] * 6
        self.seg_limit: List[int] = [0] * 6
        self.seg_flags: List[int] = [0] * 6
        self.ldt = SegmentCache()
        self.tr = SegmentCache()
        self.gdt = SegmentCache()      # base/limit only
        self.idt = SegmentCache()
        self.cr = [0] * 9              # cr[0], cr[2], cr[3], cr[4], cr[8] used
        self.efer = 0
        self.dr = [0] * 8
        self.a20_mask = (1 << 64) - 1
        self.cpl = 0
        # where virtual time comes from (the machine installs its clock); the
        # default counts guest instructions so a bare CPU is deterministic
        self.tsc_source: Callable[[], int] = lambda: self.insn_count
        self.apic_base_hook: Optional[Callable[[int], None]] = None
        self.tpr_hook: Optional[Callable[[int], None]] = None
        self.shutdown_request = False
        self.inhibit_irq = False      # the STI / MOV SS shadow
        self.reset()

    # -- reset -------------------------------------------------------------------
    def reset(self) -> None:
        """The power-on / INIT state of the SDM (QEMU's x86_cpu_reset)."""
        from pyqemu.target.i386.sysemu.msr import msr_reset
        self.regs = [0] * 16
        self.regs[R_EDX] = self.cpuid(1, 0)[0]
        self.rip = 0xfff0
        self.set_eflags(2)
        self.cr = [0] * 9
        self.cr[0] = CR0_CD | CR0_NW | CR0_ET
        self.efer = 0
        self.cpl = 0
        for i in range(6):
            self.segs[i] = 0
            self.seg_base[i] = 0
            self.seg_limit[i] = 0xffff
            self.seg_flags[i] = DESC_P_MASK | DESC_S_MASK | DESC_W_MASK | DESC_A_MASK
        self.segs[R_CS] = 0xf000
        self.seg_base[R_CS] = 0xffff0000
        self.seg_flags[R_CS] = DESC_P_MASK | DESC_S_MASK | DESC_CS_MASK | DESC_R_MASK | DESC_A_MASK
        self.fs_base = self.gs_base = 0
        self.ldt = SegmentCache(0, 0, 0xffff, DESC_P_MASK | (2 << DESC_TYPE_SHIFT))
        self.tr = SegmentCache(0, 0, 0xffff, DESC_P_MASK | (11 << DESC_TYPE_SHIFT))
        self.gdt = SegmentCache(0, 0, 0xffff, 0)
        self.idt = SegmentCache(0, 0, 0xffff, 0)
        self.dr = [0] * 8
        self.dr[6] = DR6_FIXED_1
        self.dr[7] = DR7_FIXED_1
        self.a20_mask = (1 << 64) - 1
        self.xmm = [0] * 16
        self.mxcsr = 0x1f80
        self.fpregs = [0] * 8
        self.fpstt = self.fpus = 0
        self.fpuc = 0x37f
        self.fptags = [1] * 8
        self.halted = False
        self.inhibit_irq = False
        self.exception_index = -1
        self.old_exception = -1
        msr_reset(self)
        self.update_mode()
        self.tlb.flush()
        self.mem = self.views[MMU_KERNEL_IDX]

    def dump_state(self) -> str:
        """``info registers`` / ``-d cpu``: QEMU's system-mode register dump."""
        from pyqemu.target.i386.sysemu.dump import dump_state
        return dump_state(self)

    def memory_rw_debug(self, addr: int, length: int) -> Optional[bytes]:
        """Monitor ``x``: linear memory through the page tables, None if unmapped."""
        from pyqemu.target.i386.sysemu.monitor import read_virtual
        return read_virtual(self, addr, length)

    def disassemble(self, addr: int, count: int, physical: bool = False) -> str:
        """Monitor ``x /Ni`` and ``xp /Ni``."""
        from pyqemu.target.i386.sysemu.monitor import disassemble
        return disassemble(self, addr, count, physical)

    # -- derived mode state -------------------------------------------------------
    def update_mode(self) -> None:
        """Recompute the mode bits the translator keys blocks on (QEMU's hflags)."""
        lma = bool(self.efer & EFER_LMA)
        self.lma = lma
        csf = self.seg_flags[R_CS]
        self.code64 = lma and bool(csf & DESC_L_MASK)
        self.code32 = self.code64 or bool(csf & DESC_B_MASK)
        self.ss32 = self.code64 or bool(self.seg_flags[R_SS] & DESC_B_MASK)
        self.pe = bool(self.cr[0] & CR0_PE)
        self.mode = 64 if self.code64 else (32 if self.code32 else 16)

    @property
    def vm86(self) -> bool:
        return bool(self.eflags & VM_MASK)

    def mmu_index(self) -> int:
        return MMU_USER_IDX if self.cpl == 3 else MMU_KERNEL_IDX

    def load_seg_cache(self, seg: int, selector: int, base: int, limit: int, flags: int) -> None:
        """Load a segment register's selector and hidden cache (no checks)."""
        self.segs[seg] = selector
        self.seg_base[seg] = base
        self.seg_limit[seg] = limit
        self.seg_flags[seg] = flags
        if seg == R_FS:
            self.fs_base = base
        elif seg == R_GS:
            self.gs_base = base
        elif seg == R_SS:
            self.cpl = (flags >> DESC_DPL_SHIFT) & 3
        if seg in (R_CS, R_SS):
            self.update_mode()

    def sync_fs_gs(self) -> None:
        """Translated code writes fs_base/gs_base (wrfsbase); keep the caches equal."""
        self.seg_base[R_FS] = self.fs_base
        self.seg_base[R_GS] = self.gs_base

    # -- linear-address accesses at kernel privilege (descriptor tables, stacks) --
    def ldk(self, addr: int, size: int) -> int:
        return self.tlb.ld(addr & self._la_mask(), size, MMU_KERNEL_IDX)

    def stk(self, addr: int, size: int, value: int) -> None:
        self.tlb.st(addr & self._la_mask(), size, value, MMU_KERNEL_IDX)

    def ld_idx(self, addr: int, size: int, mmu_idx: int) -> int:
        return self.tlb.ld(addr & self._la_mask(), size, mmu_idx)

    def st_idx(self, addr: int, size: int, value: int, mmu_idx: int) -> None:
        self.tlb.st(addr & self._la_mask(), size, value, mmu_idx)

    def _la_mask(self) -> int:
        return (1 << 64) - 1 if self.lma else 0xffffffff
