"""Model-specific registers: rdmsr/wrmsr.

As QEMU 7.2's TCG (checked against it in tests/peer/sysemu): RDMSR/WRMSR
above ring 0 is #GP(0); an MSR it does not know reads as 0 and ignores
writes, read-only ones ignore writes, EFER keeps only the bits the CPU model
supports, and the base MSRs take any value.
"""
from __future__ import annotations

from pyqemu.target.i386.sysemu import cpu as c
from pyqemu.target.i386.sysemu.excp import EXCP_GP, CpuException

MSR_IA32_TSC = 0x10
MSR_IA32_APICBASE = 0x1b
MSR_IA32_FEATURE_CONTROL = 0x3a
MSR_IA32_TSC_ADJUST = 0x3b
MSR_IA32_UCODE_REV = 0x8b
MSR_MTRRcap = 0xfe
MSR_IA32_SYSENTER_CS = 0x174
MSR_IA32_SYSENTER_ESP = 0x175
MSR_IA32_SYSENTER_EIP = 0x176
MSR_MCG_CAP = 0x179
MSR_MCG_STATUS = 0x17a
MSR_MCG_CTL = 0x17b
MSR_IA32_MISC_ENABLE = 0x1a0
MSR_MTRRphysBase0 = 0x200
MSR_MTRRfix64K_00000 = 0x250
MSR_MTRRfix16K_80000 = 0x258
MSR_MTRRfix16K_A0000 = 0x259
MSR_MTRRfix4K_C0000 = 0x268
MSR_PAT = 0x277
MSR_MTRRdefType = 0x2ff
MSR_MC0_CTL = 0x400
MSR_IA32_TSC_DEADLINE = 0x6e0
MSR_EFER = 0xc0000080
MSR_STAR = 0xc0000081
MSR_LSTAR = 0xc0000082
MSR_CSTAR = 0xc0000083
MSR_FMASK = 0xc0000084
MSR_FSBASE = 0xc0000100
MSR_GSBASE = 0xc0000101
MSR_KERNELGSBASE = 0xc0000102
MSR_TSC_AUX = 0xc0000103

APICBASE_BSP = 1 << 8
APICBASE_ENABLE = 1 << 11
APIC_DEFAULT_ADDRESS = 0xfee00000
MCG_CAP_DEFAULT = (1 << 8) | (1 << 24) | 10      # MCG_CTL_P | MCG_SER_P, 10 banks
MTRR_CAP_DEFAULT = 8 | (1 << 8) | (1 << 10)      # 8 variable ranges, fixed ranges, WC
PAT_DEFAULT = 0x0007040600070406

# MSRs that simply hold what was written (value kept in cpu.msrs)
_PLAIN = set([MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_STAR,
              MSR_LSTAR, MSR_CSTAR, MSR_FMASK, MSR_KERNELGSBASE, MSR_TSC_AUX, MSR_PAT,
              MSR_MTRRdefType, MSR_MTRRfix64K_00000, MSR_MTRRfix16K_80000, MSR_MTRRfix16K_A0000,
              MSR_IA32_MISC_ENABLE, MSR_MCG_STATUS, MSR_MCG_CTL, MSR_IA32_FEATURE_CONTROL,
              MSR_IA32_TSC_DEADLINE, MSR_IA32_UCODE_REV])
_PLAIN.update(range(MSR_MTRRphysBase0, MSR_MTRRphysBase0 + 16))
_PLAIN.update(range(MSR_MTRRfix4K_C0000, MSR_MTRRfix4K_C0000 + 8))
_PLAIN.update(range(MSR_MC0_CTL, MSR_MC0_CTL + 4 * (MCG_CAP_DEFAULT & 0xff)))

M64 = (1 << 64) - 1


def msr_reset(cpu) -> None:
    cpu.msrs = dict.fromkeys(_PLAIN, 0)
    cpu.msrs[MSR_PAT] = PAT_DEFAULT
    cpu.msrs[MSR_IA32_MISC_ENABLE] = 1             # fast strings
    for bank in range(MCG_CAP_DEFAULT & 0xff):
        cpu.msrs[MSR_MC0_CTL + 4 * bank] = M64
    cpu.apic_base = APIC_DEFAULT_ADDRESS | APICBASE_ENABLE | (APICBASE_BSP if cpu.cpu_index == 0
                                                               else 0)
    cpu.tsc_offset = 0


def _efer_mask(cpu) -> int:
    m = cpu.model
    mask = 0
    if m.ext_edx & (1 << 11):
        mask |= c.EFER_SCE
    if m.ext_edx & (1 << 29):
        mask |= c.EFER_LME
    if m.ext_edx & (1 << 20):
        mask |= c.EFER_NXE
    if m.ext_edx & (1 << 25):
        mask |= c.EFER_FFXSR
    return mask


def rdtsc(cpu) -> int:
    if cpu.cr[4] & c.CR4_TSD and cpu.cpl != 0:
        raise CpuException(EXCP_GP, 0)
    return (cpu.tsc_source() + cpu.tsc_offset) & M64


def rdmsr(cpu, index: int) -> int:
    """The value of MSR ``index`` (0 for an unknown one); #GP(0) outside ring 0."""
    if cpu.cpl != 0:
        raise CpuException(EXCP_GP, 0)
    index &= 0xffffffff
    if index in _PLAIN:
        return cpu.msrs[index]
    if index == MSR_IA32_TSC:
        return (cpu.tsc_source() + cpu.tsc_offset) & M64
    if index == MSR_IA32_TSC_ADJUST:
        return cpu.tsc_offset & M64
    if index == MSR_IA32_APICBASE:
        return cpu.apic_base
    if index == MSR_EFER:
        return cpu.efer
    if index == MSR_FSBASE:
        return cpu.fs_base
    if index == MSR_GSBASE:
        return cpu.gs_base
    if index == MSR_MTRRcap:
        return MTRR_CAP_DEFAULT
    if index == MSR_MCG_CAP:
        return MCG_CAP_DEFAULT
    return 0


def wrmsr(cpu, index: int, value: int) -> None:
    """Write MSR ``index``; #GP(0) outside ring 0; unknown and read-only MSRs
    ignore the write."""
    if cpu.cpl != 0:
        raise CpuException(EXCP_GP, 0)
    index &= 0xffffffff
    value &= M64
    if index in _PLAIN:
        cpu.msrs[index] = value
    elif index == MSR_IA32_TSC:
        cpu.tsc_offset = value - cpu.tsc_source()
    elif index == MSR_IA32_TSC_ADJUST:
        cpu.tsc_offset = value
    elif index == MSR_IA32_APICBASE:
        cpu.apic_base = value
        if cpu.apic_base_hook is not None:
            cpu.apic_base_hook(value)
    elif index == MSR_EFER:
        mask = _efer_mask(cpu)
        cpu.efer = (cpu.efer & ~mask) | (value & mask)
        cpu.tlb.flush()
        cpu.update_mode()
    elif index in (MSR_FSBASE, MSR_GSBASE):
        if index == MSR_FSBASE:
            cpu.fs_base = value
        else:
            cpu.gs_base = value
        cpu.sync_fs_gs()
    # MTRRcap, MCG_CAP (read-only) and unknown MSRs: the write is dropped
