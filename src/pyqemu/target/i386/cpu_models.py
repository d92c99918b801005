"""The x86 CPU models of QEMU 7.2 and the CPUID a guest sees for them.

One table serves ``-cpu help``, ``-cpu MODEL,+flag,-flag,flag=on|off``,
the QMP ``query-cpu-definitions`` / ``query-cpu-model-expansion`` commands,
and the CPUID instruction of both the system and the user-mode emulators.

The model definitions (vendor, family/model/stepping, minimum CPUID levels,
model-id string and feature flags) are those of QEMU 7.2's x86_64 target,
recorded from its static model expansion.  The feature words and their bit
positions follow the Intel SDM / AMD APM CPUID layout with QEMU's flag names.

Like QEMU's TCG, a CPU advertises only what the emulator implements:
:data:`PYQEMU_FEATURES` lists what pyqemu's translator and system-mode
helpers really do.  A feature QEMU's own TCG cannot provide either is dropped
with QEMU's "TCG doesn't support requested feature" warning; one QEMU's TCG
has but pyqemu lacks is dropped with the same warning when the user asked for
it explicitly, and silently when it only comes with the model (so the default
``qemu64`` starts as quietly as in QEMU).
"""
from __future__ import annotations

import struct
from typing import Callable, Dict, List, Optional, Tuple

from pyqemu.util.error import QemuError

INTEL, AMD, HYGON = "GenuineIntel", "AuthenticAMD", "HygonGenuine"


class FeatureWord:
    """One 32-bit feature word: where it lives (CPUID leaf/register or an MSR)."""

    def __init__(self, key: str, names: str, leaf: int = -1, subleaf: int = 0, reg: str = "",
                 msr: int = -1) -> None:
        self.key = key
        self.leaf = leaf
        self.subleaf = subleaf
        self.reg = reg
        self.msr = msr
        # one name per bit, '-' for a bit without a flag name
        self.names: List[Optional[str]] = [None if n == "-" else n for n in names.split()]
        if len(self.names) < 32:
            self.names += [None] * (32 - len(self.names))

    def location(self) -> str:
        """QEMU's way of naming the word in warnings: CPUID.07H:EBX or MSR(10AH)."""
        if self.msr >= 0:
            return "MSR(%02XH)" % self.msr
        return "CPUID.%02XH:%s" % (self.leaf, self.reg)


def _w(key: str, names: str, **kw) -> FeatureWord:
    return FeatureWord(key, names, **kw)


# QEMU's feature-word order: warnings and unavailable-features lists follow it.
FEATURE_WORDS: Tuple[FeatureWord, ...] = (
    _w("1_EDX", "fpu vme de pse tsc msr pae mce cx8 apic - sep mtrr pge mca cmov pat pse36 pn "
       "clflush - ds acpi mmx fxsr sse sse2 ss ht tm ia64 pbe", leaf=1, reg="EDX"),
    _w("1_ECX", "pni pclmulqdq dtes64 monitor ds-cpl vmx smx est tm2 ssse3 cid - fma cx16 xtpr "
       "pdcm - pcid dca sse4.1 sse4.2 x2apic movbe popcnt tsc-deadline aes xsave - avx f16c "
       "rdrand hypervisor", leaf=1, reg="ECX"),
    _w("7_0_EBX", "fsgsbase tsc-adjust sgx bmi1 hle avx2 - smep bmi2 erms invpcid rtm - - mpx - "
       "avx512f avx512dq rdseed adx smap avx512ifma pcommit clflushopt clwb intel-pt avx512pf "
       "avx512er avx512cd sha-ni avx512bw avx512vl", leaf=7, reg="EBX"),
    _w("7_0_ECX", "- avx512vbmi umip pku - waitpkg avx512vbmi2 - gfni vaes vpclmulqdq avx512vnni "
       "avx512bitalg - avx512-vpopcntdq - la57 - - - - - rdpid - bus-lock-detect cldemote - "
       "movdiri movdir64b - sgxlc pks", leaf=7, reg="ECX"),
    _w("7_0_EDX", "- - avx512-4vnniw avx512-4fmaps fsrm - - - avx512-vp2intersect - md-clear - - - "
       "serialize - tsx-ldtrk - - arch-lbr - - amx-bf16 avx512-fp16 amx-tile amx-int8 spec-ctrl "
       "stibp - arch-capabilities core-capability ssbd", leaf=7, reg="EDX"),
    _w("7_1_EAX", "- - - - avx-vnni avx512-bf16", leaf=7, subleaf=1, reg="EAX"),
    _w("8000_0001_EDX", "- - - - - - - - - - - syscall - - - - - - - - nx - mmxext - - fxsr-opt "
       "pdpe1gb rdtscp - lm 3dnowext 3dnow", leaf=0x80000001, reg="EDX"),
    _w("8000_0001_ECX", "lahf-lm cmp-legacy svm extapic cr8legacy abm sse4a misalignsse "
       "3dnowprefetch osvw ibs xop skinit wdt - lwp fma4 tce - nodeid-msr - tbm topoext "
       "perfctr-core perfctr-nb", leaf=0x80000001, reg="ECX"),
    _w("8000_0007_EDX", "- - - - - - - - invtsc", leaf=0x80000007, reg="EDX"),
    _w("8000_0008_EBX", "clzero - xsaveerptr - - - - - - wbnoinvd - - ibpb - ibrs amd-stibp - - - - "
       "- - - - amd-ssbd virt-ssbd amd-no-ssb", leaf=0x80000008, reg="EBX"),
    _w("C000_0001_EDX", "- - xstore xstore-en - - xcrypt xcrypt-en ace2 ace2-en phe phe-en pmm "
       "pmm-en", leaf=0xC0000001, reg="EDX"),
    _w("KVM", "kvmclock kvm-nopiodelay kvm-mmu kvmclock kvm-asyncpf kvm-steal-time kvm-pv-eoi "
       "kvm-pv-unhalt - kvm-pv-tlb-flush - kvm-pv-ipi kvm-poll-control kvm-pv-sched-yield "
       "kvm-asyncpf-int kvm-msi-ext-dest-id - - - - - - - - kvmclock-stable-bit",
       leaf=0x40000001, reg="EAX"),
    _w("KVM_HINTS", "kvm-hint-dedicated", leaf=0x40000001, reg="EDX"),
    _w("SVM", "npt lbrv svm-lock nrip-save tsc-scale vmcb-clean flushbyasid decodeassists - - "
       "pause-filter - pfthreshold avic - v-vmsave-vmload vgif - - - - - - - - - - - "
       "svme-addr-chk", leaf=0x8000000A, reg="EDX"),
    _w("XSAVE", "xsaveopt xsavec xgetbv1 xsaves xfd", leaf=0xD, subleaf=1, reg="EAX"),
    _w("6_EAX", "- - arat", leaf=6, reg="EAX"),
    _w("ARCH_CAPABILITIES", "rdctl-no ibrs-all rsba skip-l1dfl-vmentry ssb-no mds-no "
       "pschange-mc-no tsx-ctrl taa-no", msr=0x10A),
    _w("CORE_CAPABILITY", "- - - - - split-lock-detect", msr=0xCF),
    _w("PERF_CAPABILITIES", "- - - - - - - - - - - - - full-width-write", msr=0x345),
    _w("VMX_PROCBASED_CTLS", "- - vmx-vintr-pending vmx-tsc-offset - - - vmx-hlt-exit - "
       "vmx-invlpg-exit vmx-mwait-exit vmx-rdpmc-exit vmx-rdtsc-exit - - vmx-cr3-load-noexit "
       "vmx-cr3-store-noexit - - vmx-cr8-load-exit vmx-cr8-store-exit vmx-flexpriority "
       "vmx-vnmi-pending vmx-movdr-exit vmx-io-exit vmx-io-bitmap - vmx-mtf vmx-msr-bitmap "
       "vmx-monitor-exit vmx-pause-exit vmx-secondary-ctls", msr=0x48E),
    _w("VMX_SECONDARY_CTLS", "vmx-apicv-xapic vmx-ept vmx-desc-exit vmx-rdtscp-exit "
       "vmx-apicv-x2apic vmx-vpid vmx-wbinvd-exit vmx-unrestricted-guest vmx-apicv-register "
       "vmx-apicv-vid vmx-ple vmx-rdrand-exit vmx-invpcid-exit vmx-vmfunc vmx-shadow-vmcs "
       "vmx-encls-exit vmx-rdseed-exit vmx-pml - - vmx-xsaves - - - - vmx-tsc-scaling",
       msr=0x48B),
    _w("VMX_PINBASED_CTLS", "vmx-intr-exit - - vmx-nmi-exit - vmx-vnmi vmx-preemption-timer "
       "vmx-posted-intr", msr=0x48D),
    _w("VMX_EXIT_CTLS", "- - vmx-exit-nosave-debugctl - - - - - - - - - "
       "vmx-exit-load-perf-global-ctrl - - vmx-exit-ack-intr - - vmx-exit-save-pat "
       "vmx-exit-load-pat vmx-exit-save-efer vmx-exit-load-efer vmx-exit-save-preemption-timer "
       "vmx-exit-clear-bndcfgs - vmx-exit-clear-rtit-ctl - - - vmx-exit-load-pkrs", msr=0x48F),
    _w("VMX_ENTRY_CTLS", "- - vmx-entry-noload-debugctl - - - - - - vmx-entry-ia32e-mode - - - "
       "vmx-entry-load-perf-global-ctrl vmx-entry-load-pat vmx-entry-load-efer "
       "vmx-entry-load-bndcfgs - vmx-entry-load-rtit-ctl - - - vmx-entry-load-pkrs", msr=0x490),
    _w("VMX_MISC", "- - - - - vmx-store-lma vmx-activity-hlt vmx-activity-shutdown "
       "vmx-activity-wait-sipi - - - - - - - - - - - - - - - - - - - - vmx-vmwrite-vmexit-fields "
       "vmx-zero-len-inject", msr=0x485),
    # EPT/VPID capabilities are 64 bits wide in QEMU: two words here, the upper
    # one numbered from 32 in warnings
    _w("VMX_EPT_VPID_CAPS", "vmx-ept-execonly - - - - - vmx-page-walk-4 vmx-page-walk-5 - - - - "
       "- - - - vmx-ept-2mb vmx-ept-1gb - - vmx-invept vmx-eptad vmx-ept-advanced-exitinfo - - "
       "vmx-invept-single-context vmx-invept-all-context", msr=0x48C),
    _w("VMX_EPT_VPID_CAPS_HI", "vmx-invvpid - - - - - - - vmx-invvpid-single-addr "
       "vmx-invept-single-context vmx-invvpid-all-context vmx-invept-single-context-noglobals",
       msr=0x48C),
    _w("VMX_BASIC_HI", "- - - - - - - - - - - - - - - - - - - - - - vmx-ins-outs vmx-true-ctls",
       msr=0x480),
    _w("VMX_VMFUNC", "vmx-eptp-switching", msr=0x491),
    _w("14_0_ECX", "- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - intel-pt-lip",
       leaf=0x14, reg="ECX"),
    _w("SGX_12_0_EAX", "sgx1 sgx2", leaf=0x12, reg="EAX"),
    _w("SGX_12_0_EBX", "sgx-exinfo", leaf=0x12, reg="EBX"),
    _w("SGX_12_1_EAX", "- sgx-debug sgx-mode64 - sgx-provisionkey sgx-tokenkey - sgx-kss",
       leaf=0x12, subleaf=1, reg="EAX"),
)

# bit offsets added to the bit number in warnings for the high halves of
# QEMU's 64-bit MSR words
_BIT_BASE = {"VMX_EPT_VPID_CAPS_HI": 32, "VMX_BASIC_HI": 32}

WORDS: Dict[str, FeatureWord] = {w.key: w for w in FEATURE_WORDS}
# flag name -> (word key, bit); a name used twice (kvmclock) keeps both bits
FEATURES: Dict[str, List[Tuple[str, int]]] = {}
for _word in FEATURE_WORDS:
    for _bit, _name in enumerate(_word.names):
        if _name is not None:
            FEATURES.setdefault(_name, []).append((_word.key, _bit))

_WORD_INDEX = {w.key: i for i, w in enumerate(FEATURE_WORDS)}

# A feature word that means nothing without one feature (QEMU's feature
# dependencies): cleared when the feature is absent.
_DEPENDENCIES = (
    ("arch-capabilities", ("ARCH_CAPABILITIES",)),
    ("core-capability", ("CORE_CAPABILITY",)),
    ("pdcm", ("PERF_CAPABILITIES",)),
    ("vmx", tuple(w.key for w in FEATURE_WORDS if w.key.startswith("VMX_"))),
    ("intel-pt", ("14_0_ECX",)),
    ("svm", ("SVM",)),
    ("sgx", ("SGX_12_0_EAX", "SGX_12_0_EBX", "SGX_12_1_EAX")),
)

# Legacy spellings QEMU still accepts as property names (after '_' -> '-').
FEATURE_ALIASES = {
    "sse3": "pni", "pclmuldq": "pclmulqdq", "sse4-1": "sse4.1", "sse4-2": "sse4.2",
    "xd": "nx", "ffxsr": "fxsr-opt", "i64": "lm", "lahf-lm": "lahf-lm",
}

# The features QEMU 7.2's TCG can give a guest (its max model under TCG).
QEMU_TCG_FEATURES = frozenset((
    "3dnow 3dnowext abm acpi adx aes apic arat avx avx2 bmi1 bmi2 clflush clflushopt clwb cmov "
    "cr8legacy cx16 cx8 de erms f16c fma fpu fsgsbase fxsr hypervisor la57 lahf-lm lm mca mce "
    "mmx mmxext monitor movbe mpx msr mtrr npt nx pae pat pclmulqdq pcommit pdpe1gb pge pks pku "
    "pni popcnt pse pse36 rdrand rdtscp sep smap smep ss sse sse2 sse4.1 sse4.2 sse4a ssse3 svm "
    "svme-addr-chk syscall tsc umip vaes vgif xgetbv1 xsave xsaveopt").split())

# What pyqemu implements (docs/tcg.md, docs/x86-system.md): the integer, x87,
# MMX, SSE..SSE4.2, POPCNT, MOVBE, RDTSCP, BMI1/BMI2 and LZCNT instructions,
# SYSCALL/SYSENTER, NX and SMEP paging, PSE/PAE/long mode, the MSRs, MTRRs,
# PAT and the local APIC.
PYQEMU_FEATURES = frozenset((
    "fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse "
    "sse2 pni ssse3 cx16 sse4.1 sse4.2 movbe popcnt hypervisor bmi1 bmi2 smep syscall nx "
    "rdtscp lm lahf-lm abm").split()) & QEMU_TCG_FEATURES

# the 32-bit targets (qemu-system-i386, qemu-i386) have no long mode and no SYSCALL
_NOT_ON_I386 = frozenset(("lm", "syscall"))


class _Def:
    """One model of QEMU's table (a versioned name such as ``Haswell-v1``)."""

    def __init__(self, name: str, model_id: str, vendor: str, family: int, model: int,
                 stepping: int, level: int, xlevel: int, features: str = "",
                 desc: Optional[str] = None) -> None:
        self.name = name
        self.model_id = model_id
        self.vendor = vendor
        self.family = family
        self.model = model
        self.stepping = stepping
        self.level = level
        self.xlevel = xlevel
        self.features = tuple(features.split())
        self.desc = model_id if desc is None else desc
        self.caches: Optional["_Caches"] = None


# QEMU 7.2's x86_64 models (every version; unversioned names are aliases below).
# The levels are the minimum CPUID leaves each model starts from; features may
# raise them (see X86CPUDef._auto_levels).
_DEFS: Tuple[_Def, ...] = (
    _Def('486-v1', '', INTEL, 4, 8, 0, 0x1, 0x0,
         features=('fpu hypervisor pse')),
    _Def('athlon-v1', 'QEMU Virtual CPU version 2.5+', AMD, 6, 2, 3, 0x2, 0x80000008,
         features=('3dnow 3dnowext apic cmov cx8 de fpu fxsr hypervisor mca mce mmx mmxext msr mtrr pae pat '
                   'pge pse pse36 sep sse sse2 tsc')),
    _Def('Broadwell-v1', 'Intel Core Processor (Broadwell)', INTEL, 6, 61, 2, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hle hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae '
                   'pat pcid pclmulqdq pge pni popcnt pse pse36 rdrand rdseed rdtscp rtm sep smap smep sse '
                   'sse2 sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('Broadwell-v2', 'Intel Core Processor (Broadwell, no TSX)', INTEL, 6, 61, 2, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat '
                   'pcid pclmulqdq pge pni popcnt pse pse36 rdrand rdseed rdtscp sep smap smep sse sse2 sse4.1 '
                   'sse4.2 ssse3 syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('Broadwell-v3', 'Intel Core Processor (Broadwell, IBRS)', INTEL, 6, 61, 2, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hle hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae '
                   'pat pcid pclmulqdq pge pni popcnt pse pse36 rdrand rdseed rdtscp rtm sep smap smep '
                   'spec-ctrl sse sse2 sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('Broadwell-v4', 'Intel Core Processor (Broadwell, no TSX, IBRS)', INTEL, 6, 61, 2, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat '
                   'pcid pclmulqdq pge pni popcnt pse pse36 rdrand rdseed rdtscp sep smap smep spec-ctrl sse '
                   'sse2 sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('Cascadelake-Server-v1', 'Intel Xeon Processor (Cascadelake)', INTEL, 6, 85, 6, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 avx512bw avx512cd avx512dq avx512f avx512vl '
                   'avx512vnni bmi1 bmi2 clflush clflushopt clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase '
                   'fxsr hle hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid '
                   'pclmulqdq pdpe1gb pge pku pni popcnt pse pse36 rdrand rdseed rdtscp rtm sep smap smep '
                   'spec-ctrl ssbd sse sse2 sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline x2apic xgetbv1 xsave '
                   'xsavec xsaveopt')),
    _Def('Cascadelake-Server-v2', 'Intel Xeon Processor (Cascadelake)', INTEL, 6, 85, 6, 0xd, 0x80000008,
         desc='Intel Xeon Processor (Cascadelake) [ARCH_CAPABILITIES]',
         features=('3dnowprefetch abm adx aes apic arat arch-capabilities avx avx2 avx512bw avx512cd avx512dq '
                   'avx512f avx512vl avx512vnni bmi1 bmi2 clflush clflushopt clwb cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hle hypervisor ibrs-all invpcid lahf-lm lm mca mce mds-no mmx movbe '
                   'msr mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt pse pse36 rdctl-no rdrand '
                   'rdseed rdtscp rtm sep skip-l1dfl-vmentry smap smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 '
                   'ssse3 syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Cascadelake-Server-v3', 'Intel Xeon Processor (Cascadelake)', INTEL, 6, 85, 6, 0xd, 0x80000008,
         desc='Intel Xeon Processor (Cascadelake) [ARCH_CAPABILITIES, no TSX]',
         features=('3dnowprefetch abm adx aes apic arat arch-capabilities avx avx2 avx512bw avx512cd avx512dq '
                   'avx512f avx512vl avx512vnni bmi1 bmi2 clflush clflushopt clwb cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hypervisor ibrs-all invpcid lahf-lm lm mca mce mds-no mmx movbe msr '
                   'mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt pse pse36 rdctl-no rdrand rdseed '
                   'rdtscp sep skip-l1dfl-vmentry smap smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 ssse3 '
                   'syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Cascadelake-Server-v4', 'Intel Xeon Processor (Cascadelake)', INTEL, 6, 85, 6, 0xd, 0x80000008,
         desc='Intel Xeon Processor (Cascadelake) [ARCH_CAPABILITIES, EPT switching, no TSX]',
         features=('3dnowprefetch abm adx aes apic arat arch-capabilities avx avx2 avx512bw avx512cd avx512dq '
                   'avx512f avx512vl avx512vnni bmi1 bmi2 clflush clflushopt clwb cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hypervisor ibrs-all invpcid lahf-lm lm mca mce mds-no mmx movbe msr '
                   'mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt pse pse36 rdctl-no rdrand rdseed '
                   'rdtscp sep skip-l1dfl-vmentry smap smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 ssse3 '
                   'syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Cascadelake-Server-v5', 'Intel Xeon Processor (Cascadelake)', INTEL, 6, 85, 6, 0xd, 0x80000008,
         desc='Intel Xeon Processor (Cascadelake) [ARCH_CAPABILITIES, EPT switching, XSAVES, no TSX]',
         features=('3dnowprefetch abm adx aes apic arat arch-capabilities avx avx2 avx512bw avx512cd avx512dq '
                   'avx512f avx512vl avx512vnni bmi1 bmi2 clflush clflushopt clwb cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hypervisor ibrs-all invpcid lahf-lm lm mca mce mds-no mmx movbe msr '
                   'mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt pse pse36 rdctl-no rdrand rdseed '
                   'rdtscp sep skip-l1dfl-vmentry smap smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 ssse3 '
                   'syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt xsaves')),
    _Def('Conroe-v1', 'Intel Celeron_4x0 (Conroe/Merom Class Core 2)', INTEL, 6, 15, 3, 0xa, 0x80000008,
         features=('apic clflush cmov cx8 de fpu fxsr hypervisor lahf-lm lm mca mce mmx msr mtrr nx pae pat '
                   'pge pni pse pse36 sep sse sse2 ssse3 syscall tsc')),
    _Def('Cooperlake-v1', 'Intel Xeon Processor (Cooperlake)', INTEL, 6, 85, 10, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat arch-capabilities avx avx2 avx512-bf16 avx512bw '
                   'avx512cd avx512dq avx512f avx512vl avx512vnni bmi1 bmi2 clflush clflushopt clwb cmov cx16 '
                   'cx8 de erms f16c fma fpu fsgsbase fxsr hle hypervisor ibrs-all invpcid lahf-lm lm mca mce '
                   'mds-no mmx movbe msr mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt '
                   'pschange-mc-no pse pse36 rdctl-no rdrand rdseed rdtscp rtm sep skip-l1dfl-vmentry smap '
                   'smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 ssse3 stibp syscall taa-no tsc tsc-deadline '
                   'x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Cooperlake-v2', 'Intel Xeon Processor (Cooperlake)', INTEL, 6, 85, 10, 0xd, 0x80000008,
         desc='Intel Xeon Processor (Cooperlake) [XSAVES]',
         features=('3dnowprefetch abm adx aes apic arat arch-capabilities avx avx2 avx512-bf16 avx512bw '
                   'avx512cd avx512dq avx512f avx512vl avx512vnni bmi1 bmi2 clflush clflushopt clwb cmov cx16 '
                   'cx8 de erms f16c fma fpu fsgsbase fxsr hle hypervisor ibrs-all invpcid lahf-lm lm mca mce '
                   'mds-no mmx movbe msr mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt '
                   'pschange-mc-no pse pse36 rdctl-no rdrand rdseed rdtscp rtm sep skip-l1dfl-vmentry smap '
                   'smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 ssse3 stibp syscall taa-no tsc tsc-deadline '
                   'x2apic xgetbv1 xsave xsavec xsaveopt xsaves')),
    _Def('core2duo-v1', 'Intel(R) Core(TM)2 Duo CPU     T7700  @ 2.40GHz', INTEL, 6, 15, 11, 0xa, 0x80000008,
         features=('acpi apic clflush cmov cx16 cx8 de fpu fxsr hypervisor lahf-lm lm mca mce mmx monitor msr '
                   'mtrr nx pae pat pge pni pse pse36 sep ss sse sse2 ssse3 syscall tsc')),
    _Def('coreduo-v1', 'Genuine Intel(R) CPU           T2600  @ 2.16GHz', INTEL, 6, 14, 8, 0xa, 0x80000008,
         features=('acpi apic clflush cmov cx8 de fpu fxsr hypervisor mca mce mmx monitor msr mtrr nx pae pat '
                   'pge pni pse sep ss sse sse2 tsc')),
    _Def('Denverton-v1', 'Intel Atom Processor (Denverton)', INTEL, 6, 95, 1, 0x15, 0x80000008,
         features=('3dnowprefetch aes apic arat arch-capabilities clflush clflushopt cmov cx16 cx8 de erms fpu '
                   'fsgsbase fxsr hypervisor lahf-lm lm mca mce mmx monitor movbe mpx msr mtrr nx pae pat '
                   'pclmulqdq pdpe1gb pge pni popcnt pse pse36 rdctl-no rdrand rdseed rdtscp sep sha-ni '
                   'skip-l1dfl-vmentry smap smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 ssse3 syscall tsc '
                   'tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Denverton-v2', 'Intel Atom Processor (Denverton)', INTEL, 6, 95, 1, 0x15, 0x80000008,
         desc='Intel Atom Processor (Denverton) [no MPX, no MONITOR]',
         features=('3dnowprefetch aes apic arat arch-capabilities clflush clflushopt cmov cx16 cx8 de erms fpu '
                   'fsgsbase fxsr hypervisor lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pclmulqdq '
                   'pdpe1gb pge pni popcnt pse pse36 rdctl-no rdrand rdseed rdtscp sep sha-ni '
                   'skip-l1dfl-vmentry smap smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 ssse3 syscall tsc '
                   'tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Denverton-v3', 'Intel Atom Processor (Denverton)', INTEL, 6, 95, 1, 0x15, 0x80000008,
         desc='Intel Atom Processor (Denverton) [XSAVES, no MPX, no MONITOR]',
         features=('3dnowprefetch aes apic arat arch-capabilities clflush clflushopt cmov cx16 cx8 de erms fpu '
                   'fsgsbase fxsr hypervisor lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pclmulqdq '
                   'pdpe1gb pge pni popcnt pse pse36 rdctl-no rdrand rdseed rdtscp sep sha-ni '
                   'skip-l1dfl-vmentry smap smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 ssse3 syscall tsc '
                   'tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt xsaves')),
    _Def('Dhyana-v1', 'Hygon Dhyana Processor', HYGON, 24, 0, 1, 0xd, 0x8000001e,
         features=('3dnowprefetch abm adx apic arat avx avx2 bmi1 bmi2 clflush clflushopt cmov cr8legacy cx16 '
                   'cx8 de f16c fma fpu fsgsbase fxsr fxsr-opt hypervisor ibpb lahf-lm lm mca mce misalignsse '
                   'mmx mmxext monitor movbe msr mtrr npt nrip-save nx osvw pae pat pdpe1gb pge pni popcnt pse '
                   'pse36 rdrand rdseed rdtscp sep smap smep sse sse2 sse4.1 sse4.2 sse4a ssse3 svm syscall '
                   'topoext tsc xgetbv1 xsave xsavec xsaveopt')),
    _Def('Dhyana-v2', 'Hygon Dhyana Processor', HYGON, 24, 0, 1, 0xd, 0x8000001e,
         desc='Hygon Dhyana Processor [XSAVES]',
         features=('3dnowprefetch abm adx apic arat avx avx2 bmi1 bmi2 clflush clflushopt cmov cr8legacy cx16 '
                   'cx8 de f16c fma fpu fsgsbase fxsr fxsr-opt hypervisor ibpb lahf-lm lm mca mce misalignsse '
                   'mmx mmxext monitor movbe msr mtrr npt nrip-save nx osvw pae pat pdpe1gb pge pni popcnt pse '
                   'pse36 rdrand rdseed rdtscp sep smap smep sse sse2 sse4.1 sse4.2 sse4a ssse3 svm syscall '
                   'topoext tsc xgetbv1 xsave xsavec xsaveopt xsaves')),
    _Def('EPYC-Milan-v1', 'AMD EPYC-Milan Processor', AMD, 25, 1, 1, 0xd, 0x8000001e,
         features=('3dnowprefetch abm adx aes amd-ssbd amd-stibp apic arat avx avx2 bmi1 bmi2 clflush '
                   'clflushopt clwb clzero cmov cr8legacy cx16 cx8 de erms f16c fma fpu fsgsbase fsrm fxsr '
                   'fxsr-opt hypervisor ibpb ibrs invpcid lahf-lm lm mca mce misalignsse mmx mmxext monitor '
                   'movbe msr mtrr npt nrip-save nx osvw pae pat pcid pclmulqdq pdpe1gb perfctr-core pge pku '
                   'pni popcnt pse pse36 rdpid rdrand rdseed rdtscp sep sha-ni smap smep sse sse2 sse4.1 '
                   'sse4.2 sse4a ssse3 svm svme-addr-chk syscall topoext tsc umip wbnoinvd xgetbv1 xsave '
                   'xsavec xsaveerptr xsaveopt xsaves')),
    _Def('EPYC-Rome-v1', 'AMD EPYC-Rome Processor', AMD, 23, 49, 0, 0xd, 0x8000001e,
         features=('3dnowprefetch abm adx aes amd-stibp apic arat avx avx2 bmi1 bmi2 clflush clflushopt clwb '
                   'clzero cmov cr8legacy cx16 cx8 de f16c fma fpu fsgsbase fxsr fxsr-opt hypervisor ibpb '
                   'lahf-lm lm mca mce misalignsse mmx mmxext monitor movbe msr mtrr npt nrip-save nx osvw pae '
                   'pat pclmulqdq pdpe1gb perfctr-core pge pni popcnt pse pse36 rdpid rdrand rdseed rdtscp sep '
                   'sha-ni smap smep sse sse2 sse4.1 sse4.2 sse4a ssse3 svm syscall topoext tsc umip wbnoinvd '
                   'xgetbv1 xsave xsavec xsaveerptr xsaveopt xsaves')),
    _Def('EPYC-Rome-v2', 'AMD EPYC-Rome Processor', AMD, 23, 49, 0, 0xd, 0x8000001e,
         features=('3dnowprefetch abm adx aes amd-ssbd amd-stibp apic arat avx avx2 bmi1 bmi2 clflush '
                   'clflushopt clwb clzero cmov cr8legacy cx16 cx8 de f16c fma fpu fsgsbase fxsr fxsr-opt '
                   'hypervisor ibpb ibrs lahf-lm lm mca mce misalignsse mmx mmxext monitor movbe msr mtrr npt '
                   'nrip-save nx osvw pae pat pclmulqdq pdpe1gb perfctr-core pge pni popcnt pse pse36 rdpid '
                   'rdrand rdseed rdtscp sep sha-ni smap smep sse sse2 sse4.1 sse4.2 sse4a ssse3 svm syscall '
                   'topoext tsc umip wbnoinvd xgetbv1 xsave xsavec xsaveerptr xsaveopt xsaves')),
    _Def('EPYC-v1', 'AMD EPYC Processor', AMD, 23, 1, 2, 0xd, 0x8000001e,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 bmi1 bmi2 clflush clflushopt cmov cr8legacy '
                   'cx16 cx8 de f16c fma fpu fsgsbase fxsr fxsr-opt hypervisor lahf-lm lm mca mce misalignsse '
                   'mmx mmxext monitor movbe msr mtrr npt nrip-save nx osvw pae pat pclmulqdq pdpe1gb pge pni '
                   'popcnt pse pse36 rdrand rdseed rdtscp sep sha-ni smap smep sse sse2 sse4.1 sse4.2 sse4a '
                   'ssse3 svm syscall topoext tsc xgetbv1 xsave xsavec xsaveopt')),
    _Def('EPYC-v2', 'AMD EPYC Processor (with IBPB)', AMD, 23, 1, 2, 0xd, 0x8000001e,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 bmi1 bmi2 clflush clflushopt cmov cr8legacy '
                   'cx16 cx8 de f16c fma fpu fsgsbase fxsr fxsr-opt hypervisor ibpb lahf-lm lm mca mce '
                   'misalignsse mmx mmxext monitor movbe msr mtrr npt nrip-save nx osvw pae pat pclmulqdq '
                   'pdpe1gb pge pni popcnt pse pse36 rdrand rdseed rdtscp sep sha-ni smap smep sse sse2 sse4.1 '
                   'sse4.2 sse4a ssse3 svm syscall topoext tsc xgetbv1 xsave xsavec xsaveopt')),
    _Def('EPYC-v3', 'AMD EPYC Processor', AMD, 23, 1, 2, 0xd, 0x8000001e,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 bmi1 bmi2 clflush clflushopt clzero cmov '
                   'cr8legacy cx16 cx8 de f16c fma fpu fsgsbase fxsr fxsr-opt hypervisor ibpb lahf-lm lm mca '
                   'mce misalignsse mmx mmxext monitor movbe msr mtrr npt nrip-save nx osvw pae pat pclmulqdq '
                   'pdpe1gb perfctr-core pge pni popcnt pse pse36 rdrand rdseed rdtscp sep sha-ni smap smep '
                   'sse sse2 sse4.1 sse4.2 sse4a ssse3 svm syscall topoext tsc xgetbv1 xsave xsavec xsaveerptr '
                   'xsaveopt xsaves')),
    _Def('Haswell-v1', 'Intel Core Processor (Haswell)', INTEL, 6, 60, 4, 0xd, 0x80000008,
         features=('abm aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c fma fpu fsgsbase '
                   'fxsr hle hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid '
                   'pclmulqdq pge pni popcnt pse pse36 rdrand rdtscp rtm sep smep sse sse2 sse4.1 sse4.2 ssse3 '
                   'syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('Haswell-v2', 'Intel Core Processor (Haswell, no TSX)', INTEL, 6, 60, 1, 0xd, 0x80000008,
         features=('abm aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c fma fpu fsgsbase '
                   'fxsr hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid pclmulqdq '
                   'pge pni popcnt pse pse36 rdrand rdtscp sep smep sse sse2 sse4.1 sse4.2 ssse3 syscall tsc '
                   'tsc-deadline x2apic xsave xsaveopt')),
    _Def('Haswell-v3', 'Intel Core Processor (Haswell, IBRS)', INTEL, 6, 60, 4, 0xd, 0x80000008,
         features=('abm aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c fma fpu fsgsbase '
                   'fxsr hle hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid '
                   'pclmulqdq pge pni popcnt pse pse36 rdrand rdtscp rtm sep smep spec-ctrl sse sse2 sse4.1 '
                   'sse4.2 ssse3 syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('Haswell-v4', 'Intel Core Processor (Haswell, no TSX, IBRS)', INTEL, 6, 60, 1, 0xd, 0x80000008,
         features=('abm aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c fma fpu fsgsbase '
                   'fxsr hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid pclmulqdq '
                   'pge pni popcnt pse pse36 rdrand rdtscp sep smep spec-ctrl sse sse2 sse4.1 sse4.2 ssse3 '
                   'syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('Icelake-Server-v1', 'Intel Xeon Processor (Icelake)', INTEL, 6, 134, 0, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 avx512-vpopcntdq avx512bitalg avx512bw '
                   'avx512cd avx512dq avx512f avx512vbmi avx512vbmi2 avx512vl avx512vnni bmi1 bmi2 clflush '
                   'clflushopt clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase fxsr gfni hle hypervisor '
                   'invpcid la57 lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid pclmulqdq pdpe1gb pge '
                   'pku pni popcnt pse pse36 rdrand rdseed rdtscp rtm sep smap smep spec-ctrl ssbd sse sse2 '
                   'sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline umip vaes vpclmulqdq wbnoinvd x2apic xgetbv1 '
                   'xsave xsavec xsaveopt')),
    _Def('Icelake-Server-v2', 'Intel Xeon Processor (Icelake)', INTEL, 6, 134, 0, 0xd, 0x80000008,
         desc='Intel Xeon Processor (Icelake) [no TSX]',
         features=('3dnowprefetch abm adx aes apic arat avx avx2 avx512-vpopcntdq avx512bitalg avx512bw '
                   'avx512cd avx512dq avx512f avx512vbmi avx512vbmi2 avx512vl avx512vnni bmi1 bmi2 clflush '
                   'clflushopt clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase fxsr gfni hypervisor invpcid '
                   'la57 lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni '
                   'popcnt pse pse36 rdrand rdseed rdtscp sep smap smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 '
                   'ssse3 syscall tsc tsc-deadline umip vaes vpclmulqdq wbnoinvd x2apic xgetbv1 xsave xsavec '
                   'xsaveopt')),
    _Def('Icelake-Server-v3', 'Intel Xeon Processor (Icelake)', INTEL, 6, 134, 0, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat arch-capabilities avx avx2 avx512-vpopcntdq '
                   'avx512bitalg avx512bw avx512cd avx512dq avx512f avx512vbmi avx512vbmi2 avx512vl avx512vnni '
                   'bmi1 bmi2 clflush clflushopt clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase fxsr gfni '
                   'hypervisor ibrs-all invpcid la57 lahf-lm lm mca mce mds-no mmx movbe msr mtrr nx pae pat '
                   'pcid pclmulqdq pdpe1gb pge pku pni popcnt pschange-mc-no pse pse36 rdctl-no rdrand rdseed '
                   'rdtscp sep skip-l1dfl-vmentry smap smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 ssse3 '
                   'syscall taa-no tsc tsc-deadline umip vaes vpclmulqdq wbnoinvd x2apic xgetbv1 xsave xsavec '
                   'xsaveopt')),
    _Def('Icelake-Server-v4', 'Intel Xeon Processor (Icelake)', INTEL, 6, 106, 0, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat arch-capabilities avx avx2 avx512-vpopcntdq '
                   'avx512bitalg avx512bw avx512cd avx512dq avx512f avx512ifma avx512vbmi avx512vbmi2 avx512vl '
                   'avx512vnni bmi1 bmi2 clflush clflushopt clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase '
                   'fsrm fxsr gfni hypervisor ibrs-all invpcid la57 lahf-lm lm mca mce mds-no mmx movbe msr '
                   'mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt pschange-mc-no pse pse36 '
                   'rdctl-no rdpid rdrand rdseed rdtscp sep sha-ni skip-l1dfl-vmentry smap smep spec-ctrl ssbd '
                   'sse sse2 sse4.1 sse4.2 ssse3 syscall taa-no tsc tsc-deadline umip vaes vpclmulqdq wbnoinvd '
                   'x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Icelake-Server-v5', 'Intel Xeon Processor (Icelake)', INTEL, 6, 106, 0, 0xd, 0x80000008,
         desc='Intel Xeon Processor (Icelake) [XSAVES]',
         features=('3dnowprefetch abm adx aes apic arat arch-capabilities avx avx2 avx512-vpopcntdq '
                   'avx512bitalg avx512bw avx512cd avx512dq avx512f avx512ifma avx512vbmi avx512vbmi2 avx512vl '
                   'avx512vnni bmi1 bmi2 clflush clflushopt clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase '
                   'fsrm fxsr gfni hypervisor ibrs-all invpcid la57 lahf-lm lm mca mce mds-no mmx movbe msr '
                   'mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt pschange-mc-no pse pse36 '
                   'rdctl-no rdpid rdrand rdseed rdtscp sep sha-ni skip-l1dfl-vmentry smap smep spec-ctrl ssbd '
                   'sse sse2 sse4.1 sse4.2 ssse3 syscall taa-no tsc tsc-deadline umip vaes vpclmulqdq wbnoinvd '
                   'x2apic xgetbv1 xsave xsavec xsaveopt xsaves')),
    _Def('Icelake-Server-v6', 'Intel Xeon Processor (Icelake)', INTEL, 6, 106, 0, 0xd, 0x80000008,
         desc='Intel Xeon Processor (Icelake) [5-level EPT]',
         features=('3dnowprefetch abm adx aes apic arat arch-capabilities avx avx2 avx512-vpopcntdq '
                   'avx512bitalg avx512bw avx512cd avx512dq avx512f avx512ifma avx512vbmi avx512vbmi2 avx512vl '
                   'avx512vnni bmi1 bmi2 clflush clflushopt clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase '
                   'fsrm fxsr gfni hypervisor ibrs-all invpcid la57 lahf-lm lm mca mce mds-no mmx movbe msr '
                   'mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt pschange-mc-no pse pse36 '
                   'rdctl-no rdpid rdrand rdseed rdtscp sep sha-ni skip-l1dfl-vmentry smap smep spec-ctrl ssbd '
                   'sse sse2 sse4.1 sse4.2 ssse3 syscall taa-no tsc tsc-deadline umip vaes vpclmulqdq wbnoinvd '
                   'x2apic xgetbv1 xsave xsavec xsaveopt xsaves')),
    _Def('IvyBridge-v1', 'Intel Xeon E3-12xx v2 (Ivy Bridge)', INTEL, 6, 58, 9, 0xd, 0x80000008,
         features=('aes apic arat avx clflush cmov cx16 cx8 de erms f16c fpu fsgsbase fxsr hypervisor lahf-lm '
                   'lm mca mce mmx msr mtrr nx pae pat pclmulqdq pge pni popcnt pse pse36 rdrand rdtscp sep '
                   'smep sse sse2 sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('IvyBridge-v2', 'Intel Xeon E3-12xx v2 (Ivy Bridge, IBRS)', INTEL, 6, 58, 9, 0xd, 0x80000008,
         features=('aes apic arat avx clflush cmov cx16 cx8 de erms f16c fpu fsgsbase fxsr hypervisor lahf-lm '
                   'lm mca mce mmx msr mtrr nx pae pat pclmulqdq pge pni popcnt pse pse36 rdrand rdtscp sep '
                   'smep spec-ctrl sse sse2 sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('KnightsMill-v1', 'Intel Xeon Phi Processor (Knights Mill)', INTEL, 6, 133, 0, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 avx512-4fmaps avx512-4vnniw avx512-vpopcntdq '
                   'avx512cd avx512er avx512f avx512pf bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c fma fpu '
                   'fsgsbase fxsr hypervisor lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pclmulqdq '
                   'pdpe1gb pge pni popcnt pse pse36 rdrand rdseed rdtscp sep smep ss sse sse2 sse4.1 sse4.2 '
                   'ssse3 syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('kvm32-v1', 'Common 32-bit KVM processor', INTEL, 15, 6, 1, 0x5, 0x80000008,
         features=('apic clflush cmov cx8 de fpu fxsr hypervisor mca mce mmx msr mtrr pae pat pge pni pse '
                   'pse36 sep sse sse2 tsc')),
    _Def('kvm64-v1', 'Common KVM processor', INTEL, 15, 6, 1, 0xd, 0x80000008,
         features=('apic clflush cmov cx16 cx8 de fpu fxsr hypervisor lm mca mce mmx msr mtrr nx pae pat pge '
                   'pni pse pse36 sep sse sse2 syscall tsc')),
    _Def('n270-v1', 'Intel(R) Atom(TM) CPU N270   @ 1.60GHz', INTEL, 6, 28, 2, 0xa, 0x80000008,
         features=('acpi apic clflush cmov cx8 de fpu fxsr hypervisor lahf-lm mca mce mmx monitor movbe msr '
                   'mtrr nx pae pat pge pni pse sep ss sse sse2 ssse3 tsc')),
    _Def('Nehalem-v1', 'Intel Core i7 9xx (Nehalem Class Core i7)', INTEL, 6, 26, 3, 0xb, 0x80000008,
         features=('apic clflush cmov cx16 cx8 de fpu fxsr hypervisor lahf-lm lm mca mce mmx msr mtrr nx pae '
                   'pat pge pni popcnt pse pse36 sep sse sse2 sse4.1 sse4.2 ssse3 syscall tsc')),
    _Def('Nehalem-v2', 'Intel Core i7 9xx (Nehalem Core i7, IBRS update)', INTEL, 6, 26, 3, 0xb, 0x80000008,
         features=('apic clflush cmov cx16 cx8 de fpu fxsr hypervisor lahf-lm lm mca mce mmx msr mtrr nx pae '
                   'pat pge pni popcnt pse pse36 sep spec-ctrl sse sse2 sse4.1 sse4.2 ssse3 syscall tsc')),
    _Def('Opteron_G1-v1', 'AMD Opteron 240 (Gen 1 Class Opteron)', AMD, 15, 6, 1, 0x5, 0x80000008,
         features=('apic clflush cmov cx8 de fpu fxsr hypervisor lm mca mce mmx msr mtrr nx pae pat pge pni '
                   'pse pse36 sep sse sse2 syscall tsc')),
    _Def('Opteron_G2-v1', 'AMD Opteron 22xx (Gen 2 Class Opteron)', AMD, 15, 6, 1, 0x5, 0x80000008,
         features=('apic clflush cmov cx16 cx8 de fpu fxsr hypervisor lahf-lm lm mca mce mmx msr mtrr nx pae '
                   'pat pge pni pse pse36 sep sse sse2 svm syscall tsc')),
    _Def('Opteron_G3-v1', 'AMD Opteron 23xx (Gen 3 Class Opteron)', AMD, 16, 2, 3, 0x5, 0x80000008,
         features=('abm apic clflush cmov cx16 cx8 de fpu fxsr hypervisor lahf-lm lm mca mce misalignsse mmx '
                   'monitor msr mtrr nx pae pat pge pni popcnt pse pse36 rdtscp sep sse sse2 sse4a svm syscall '
                   'tsc')),
    _Def('Opteron_G4-v1', 'AMD Opteron 62xx class CPU', AMD, 21, 1, 2, 0xd, 0x8000001a,
         features=('3dnowprefetch abm aes apic avx clflush cmov cx16 cx8 de fma4 fpu fxsr hypervisor lahf-lm '
                   'lm mca mce misalignsse mmx msr mtrr npt nrip-save nx pae pat pclmulqdq pdpe1gb pge pni '
                   'popcnt pse pse36 rdtscp sep sse sse2 sse4.1 sse4.2 sse4a ssse3 svm syscall tsc xop xsave')),
    _Def('Opteron_G5-v1', 'AMD Opteron 63xx class CPU', AMD, 21, 2, 0, 0xd, 0x8000001a,
         features=('3dnowprefetch abm aes apic avx clflush cmov cx16 cx8 de f16c fma fma4 fpu fxsr hypervisor '
                   'lahf-lm lm mca mce misalignsse mmx msr mtrr npt nrip-save nx pae pat pclmulqdq pdpe1gb pge '
                   'pni popcnt pse pse36 rdtscp sep sse sse2 sse4.1 sse4.2 sse4a ssse3 svm syscall tbm tsc xop '
                   'xsave')),
    _Def('Penryn-v1', 'Intel Core 2 Duo P9xxx (Penryn Class Core 2)', INTEL, 6, 23, 3, 0xa, 0x80000008,
         features=('apic clflush cmov cx16 cx8 de fpu fxsr hypervisor lahf-lm lm mca mce mmx msr mtrr nx pae '
                   'pat pge pni pse pse36 sep sse sse2 sse4.1 ssse3 syscall tsc')),
    _Def('pentium-v1', '', INTEL, 5, 4, 3, 0x1, 0x0,
         features=('apic cx8 de fpu hypervisor mce mmx msr pse tsc')),
    _Def('pentium2-v1', '', INTEL, 6, 5, 2, 0x2, 0x0,
         features=('apic cmov cx8 de fpu fxsr hypervisor mca mce mmx msr mtrr pae pat pge pse pse36 sep tsc')),
    _Def('pentium3-v1', '', INTEL, 6, 7, 3, 0x3, 0x0,
         features=('apic cmov cx8 de fpu fxsr hypervisor mca mce mmx msr mtrr pae pat pge pse pse36 sep sse '
                   'tsc')),
    _Def('phenom-v1', 'AMD Phenom(tm) 9550 Quad-Core Processor', AMD, 16, 2, 3, 0x5, 0x8000001a,
         features=('3dnow 3dnowext abm apic clflush cmov cx16 cx8 de fpu fxsr fxsr-opt hypervisor lahf-lm lm '
                   'mca mce mmx mmxext monitor msr mtrr npt nx pae pat pdpe1gb pge pni popcnt pse pse36 rdtscp '
                   'sep sse sse2 sse4a svm syscall tsc')),
    _Def('qemu32-v1', 'QEMU Virtual CPU version 2.5+', INTEL, 6, 6, 3, 0x4, 0x80000004,
         features=('apic cmov cx8 de fpu fxsr hypervisor mce mmx msr pae pat pge pni pse sep sse sse2 tsc')),
    _Def('qemu64-v1', 'QEMU Virtual CPU version 2.5+', AMD, 15, 107, 1, 0xd, 0x8000000a,
         features=('apic clflush cmov cx16 cx8 de fpu fxsr hypervisor lahf-lm lm mca mce mmx msr mtrr nx pae '
                   'pat pge pni pse pse36 sep sse sse2 svm syscall tsc')),
    _Def('SandyBridge-v1', 'Intel Xeon E312xx (Sandy Bridge)', INTEL, 6, 42, 1, 0xd, 0x80000008,
         features=('aes apic arat avx clflush cmov cx16 cx8 de fpu fxsr hypervisor lahf-lm lm mca mce mmx msr '
                   'mtrr nx pae pat pclmulqdq pge pni popcnt pse pse36 rdtscp sep sse sse2 sse4.1 sse4.2 ssse3 '
                   'syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('SandyBridge-v2', 'Intel Xeon E312xx (Sandy Bridge, IBRS update)', INTEL, 6, 42, 1, 0xd, 0x80000008,
         features=('aes apic arat avx clflush cmov cx16 cx8 de fpu fxsr hypervisor lahf-lm lm mca mce mmx msr '
                   'mtrr nx pae pat pclmulqdq pge pni popcnt pse pse36 rdtscp sep spec-ctrl sse sse2 sse4.1 '
                   'sse4.2 ssse3 syscall tsc tsc-deadline x2apic xsave xsaveopt')),
    _Def('Skylake-Client-v1', 'Intel Core Processor (Skylake)', INTEL, 6, 94, 3, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hle hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae '
                   'pat pcid pclmulqdq pge pni popcnt pse pse36 rdrand rdseed rdtscp rtm sep smap smep sse '
                   'sse2 sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Skylake-Client-v2', 'Intel Core Processor (Skylake, IBRS)', INTEL, 6, 94, 3, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hle hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae '
                   'pat pcid pclmulqdq pge pni popcnt pse pse36 rdrand rdseed rdtscp rtm sep smap smep '
                   'spec-ctrl sse sse2 sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline x2apic xgetbv1 xsave '
                   'xsavec xsaveopt')),
    _Def('Skylake-Client-v3', 'Intel Core Processor (Skylake, IBRS, no TSX)', INTEL, 6, 94, 3, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat '
                   'pcid pclmulqdq pge pni popcnt pse pse36 rdrand rdseed rdtscp sep smap smep spec-ctrl sse '
                   'sse2 sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Skylake-Client-v4', 'Intel Core Processor (Skylake, IBRS, no TSX)', INTEL, 6, 94, 3, 0xd, 0x80000008,
         desc='Intel Core Processor (Skylake, IBRS, no TSX) [IBRS, XSAVES, no TSX]',
         features=('3dnowprefetch abm adx aes apic arat avx avx2 bmi1 bmi2 clflush cmov cx16 cx8 de erms f16c '
                   'fma fpu fsgsbase fxsr hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat '
                   'pcid pclmulqdq pge pni popcnt pse pse36 rdrand rdseed rdtscp sep smap smep spec-ctrl sse '
                   'sse2 sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt '
                   'xsaves')),
    _Def('Skylake-Server-v1', 'Intel Xeon Processor (Skylake)', INTEL, 6, 85, 4, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 avx512bw avx512cd avx512dq avx512f avx512vl '
                   'bmi1 bmi2 clflush clflushopt clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase fxsr hle '
                   'hypervisor invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid pclmulqdq pdpe1gb '
                   'pge pku pni popcnt pse pse36 rdrand rdseed rdtscp rtm sep smap smep sse sse2 sse4.1 sse4.2 '
                   'ssse3 syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Skylake-Server-v2', 'Intel Xeon Processor (Skylake, IBRS)', INTEL, 6, 85, 4, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 avx512bw avx512cd avx512dq avx512f avx512vl '
                   'bmi1 bmi2 clflush clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase fxsr hle hypervisor '
                   'invpcid lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku '
                   'pni popcnt pse pse36 rdrand rdseed rdtscp rtm sep smap smep spec-ctrl sse sse2 sse4.1 '
                   'sse4.2 ssse3 syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Skylake-Server-v3', 'Intel Xeon Processor (Skylake, IBRS, no TSX)', INTEL, 6, 85, 4, 0xd, 0x80000008,
         features=('3dnowprefetch abm adx aes apic arat avx avx2 avx512bw avx512cd avx512dq avx512f avx512vl '
                   'bmi1 bmi2 clflush clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase fxsr hypervisor invpcid '
                   'lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt '
                   'pse pse36 rdrand rdseed rdtscp sep smap smep spec-ctrl sse sse2 sse4.1 sse4.2 ssse3 '
                   'syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Skylake-Server-v4', 'Intel Xeon Processor (Skylake, IBRS, no TSX)', INTEL, 6, 85, 4, 0xd, 0x80000008,
         desc='Intel Xeon Processor (Skylake, IBRS, no TSX) [IBRS, EPT switching, no TSX]',
         features=('3dnowprefetch abm adx aes apic arat avx avx2 avx512bw avx512cd avx512dq avx512f avx512vl '
                   'bmi1 bmi2 clflush clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase fxsr hypervisor invpcid '
                   'lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt '
                   'pse pse36 rdrand rdseed rdtscp sep smap smep spec-ctrl sse sse2 sse4.1 sse4.2 ssse3 '
                   'syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Skylake-Server-v5', 'Intel Xeon Processor (Skylake, IBRS, no TSX)', INTEL, 6, 85, 4, 0xd, 0x80000008,
         desc='Intel Xeon Processor (Skylake, IBRS, no TSX) [IBRS, XSAVES, EPT switching, no TSX]',
         features=('3dnowprefetch abm adx aes apic arat avx avx2 avx512bw avx512cd avx512dq avx512f avx512vl '
                   'bmi1 bmi2 clflush clwb cmov cx16 cx8 de erms f16c fma fpu fsgsbase fxsr hypervisor invpcid '
                   'lahf-lm lm mca mce mmx movbe msr mtrr nx pae pat pcid pclmulqdq pdpe1gb pge pku pni popcnt '
                   'pse pse36 rdrand rdseed rdtscp sep smap smep spec-ctrl sse sse2 sse4.1 sse4.2 ssse3 '
                   'syscall tsc tsc-deadline x2apic xgetbv1 xsave xsavec xsaveopt xsaves')),
    _Def('Snowridge-v1', 'Intel Atom Processor (SnowRidge)', INTEL, 6, 134, 1, 0x1b, 0x80000008,
         features=('3dnowprefetch aes apic arat arch-capabilities cldemote clflush clflushopt clwb cmov '
                   'core-capability cx16 cx8 de erms fpu fsgsbase fxsr gfni hypervisor lahf-lm lm mca mce mmx '
                   'monitor movbe movdir64b movdiri mpx msr mtrr nx pae pat pclmulqdq pdpe1gb pge pni popcnt '
                   'pse pse36 rdrand rdseed rdtscp sep sha-ni smap smep spec-ctrl split-lock-detect ssbd sse '
                   'sse2 sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline umip x2apic xgetbv1 xsave xsavec '
                   'xsaveopt')),
    _Def('Snowridge-v2', 'Intel Atom Processor (Snowridge, no MPX)', INTEL, 6, 134, 1, 0x1b, 0x80000008,
         features=('3dnowprefetch aes apic arat arch-capabilities cldemote clflush clflushopt clwb cmov '
                   'core-capability cx16 cx8 de erms fpu fsgsbase fxsr gfni hypervisor lahf-lm lm mca mce mmx '
                   'monitor movbe movdir64b movdiri msr mtrr nx pae pat pclmulqdq pdpe1gb pge pni popcnt pse '
                   'pse36 rdrand rdseed rdtscp sep sha-ni smap smep spec-ctrl split-lock-detect ssbd sse sse2 '
                   'sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline umip x2apic xgetbv1 xsave xsavec xsaveopt')),
    _Def('Snowridge-v3', 'Intel Atom Processor (Snowridge, no MPX)', INTEL, 6, 134, 1, 0x1b, 0x80000008,
         desc='Intel Atom Processor (Snowridge, no MPX) [XSAVES, no MPX]',
         features=('3dnowprefetch aes apic arat arch-capabilities cldemote clflush clflushopt clwb cmov '
                   'core-capability cx16 cx8 de erms fpu fsgsbase fxsr gfni hypervisor lahf-lm lm mca mce mmx '
                   'monitor movbe movdir64b movdiri msr mtrr nx pae pat pclmulqdq pdpe1gb pge pni popcnt pse '
                   'pse36 rdrand rdseed rdtscp sep sha-ni smap smep spec-ctrl split-lock-detect ssbd sse sse2 '
                   'sse4.1 sse4.2 ssse3 syscall tsc tsc-deadline umip x2apic xgetbv1 xsave xsavec xsaveopt '
                   'xsaves')),
    _Def('Snowridge-v4', 'Intel Atom Processor (Snowridge, no MPX)', INTEL, 6, 134, 1, 0x1b, 0x80000008,
         desc='Intel Atom Processor (Snowridge, no MPX) [no split lock detect, no core-capability]',
         features=('3dnowprefetch aes apic arat arch-capabilities cldemote clflush clflushopt clwb cmov cx16 '
                   'cx8 de erms fpu fsgsbase fxsr gfni hypervisor lahf-lm lm mca mce mmx monitor movbe '
                   'movdir64b movdiri msr mtrr nx pae pat pclmulqdq pdpe1gb pge pni popcnt pse pse36 rdrand '
                   'rdseed rdtscp sep sha-ni smap smep spec-ctrl ssbd sse sse2 sse4.1 sse4.2 ssse3 syscall tsc '
                   'tsc-deadline umip x2apic xgetbv1 xsave xsavec xsaveopt xsaves')),
    _Def('Westmere-v1', 'Westmere E56xx/L56xx/X56xx (Nehalem-C)', INTEL, 6, 44, 1, 0xb, 0x80000008,
         features=('aes apic arat clflush cmov cx16 cx8 de fpu fxsr hypervisor lahf-lm lm mca mce mmx msr mtrr '
                   'nx pae pat pclmulqdq pge pni popcnt pse pse36 sep sse sse2 sse4.1 sse4.2 ssse3 syscall tsc')),
    _Def('Westmere-v2', 'Westmere E56xx/L56xx/X56xx (IBRS update)', INTEL, 6, 44, 1, 0xb, 0x80000008,
         features=('aes apic arat clflush cmov cx16 cx8 de fpu fxsr hypervisor lahf-lm lm mca mce mmx msr mtrr '
                   'nx pae pat pclmulqdq pge pni popcnt pse pse36 sep spec-ctrl sse sse2 sse4.1 sse4.2 ssse3 '
                   'syscall tsc')),
)

# "-cpu help" marks these "(alias of ...)"; every other unversioned name is an
# alias of its -v1 chosen by the machine type (v1 for all machines of 7.2).
_NAMED_ALIASES = {
    "Broadwell-IBRS": "Broadwell-v3", "Broadwell-noTSX": "Broadwell-v2",
    "Broadwell-noTSX-IBRS": "Broadwell-v4", "Cascadelake-Server-noTSX": "Cascadelake-Server-v3",
    "EPYC-IBPB": "EPYC-v2", "Haswell-IBRS": "Haswell-v3", "Haswell-noTSX": "Haswell-v2",
    "Haswell-noTSX-IBRS": "Haswell-v4", "Icelake-Server-noTSX": "Icelake-Server-v2",
    "IvyBridge-IBRS": "IvyBridge-v2", "Nehalem-IBRS": "Nehalem-v2",
    "SandyBridge-IBRS": "SandyBridge-v2", "Skylake-Client-IBRS": "Skylake-Client-v2",
    "Skylake-Client-noTSX-IBRS": "Skylake-Client-v3",
    "Skylake-Server-IBRS": "Skylake-Server-v2",
    "Skylake-Server-noTSX-IBRS": "Skylake-Server-v3", "Westmere-IBRS": "Westmere-v2",
}

_VERSIONED: Dict[str, _Def] = {d.name: d for d in _DEFS}


class _Caches:
    """A model's own cache description, as the CPUID leaves that show it (one
    CPU; the sharing fields are added from the topology)."""

    def __init__(self, leaf2: Tuple[int, int], l1: Tuple[int, int], l2l3: Tuple[int, int],
                 leaf4: Tuple[Tuple[int, int, int, int], ...]) -> None:
        self.leaf2 = leaf2            # ECX, EDX of leaf 2
        self.l1 = l1                  # ECX, EDX of 0x80000005
        self.l2l3 = l2l3              # ECX, EDX of 0x80000006
        self.leaf4 = leaf4            # leaf 4 / 0x8000001D subleaves


# QEMU's legacy cache description (models without their own)
_LEGACY_CACHES = _Caches((0x4d, 0x002c307d), (0x40020140, 0x40020140), (0x02008140, 0x00808140),
                         ((0x121, 0x01c0003f, 0x3f, 1), (0x122, 0x01c0003f, 0x3f, 1),
                          (0x143, 0x03c0003f, 0xfff, 1), (0x163, 0x03c0003f, 0x3fff, 6)))
_EPYC_CACHES = _Caches((0x4b, 0x002cff80), (0x20080140, 0x40040140), (0x02006140, 0x00408140),
                       ((0x121, 0x01c0003f, 0x3f, 1), (0x122, 0x00c0003f, 0xff, 1),
                        (0x43, 0x01c0003f, 0x3ff, 0), (0x163, 0x03c0003f, 0x1fff, 6)))
_ROME_CACHES = _Caches((0x4b, 0x002cff80), (0x20080140, 0x20080140), (0x02006140, 0x00808140),
                       ((0x121, 0x01c0003f, 0x3f, 1), (0x122, 0x01c0003f, 0x3f, 1),
                        (0x43, 0x01c0003f, 0x3ff, 0), (0x163, 0x03c0003f, 0x3fff, 6)))
_MILAN_CACHES = _Caches((0x4b, 0x002cff80), (0x20080140, 0x20080140), (0x02006140, 0x01008140),
                        ((0x121, 0x01c0003f, 0x3f, 1), (0x122, 0x01c0003f, 0x3f, 1),
                         (0x43, 0x01c0003f, 0x3ff, 0), (0x163, 0x03c0003f, 0x7fff, 6)))


def _model_caches(name: str) -> Optional[_Caches]:
    if name.startswith(("EPYC-Rome",)):
        return _ROME_CACHES
    if name.startswith("EPYC-Milan"):
        return _MILAN_CACHES
    if name.startswith(("EPYC-v", "Dhyana-v")):
        return _EPYC_CACHES
    return None
for _d in _DEFS:
    _d.caches = _model_caches(_d.name)
_MACHINE_ALIASES: Dict[str, str] = {d.name[:-3]: d.name for d in _DEFS if d.name.endswith("-v1")}

# the three models outside the versioned table
_BASE = _Def("base", "", "", 0, 0, 0, 0, 0, desc="base CPU model type with no features enabled")
# QEMU's max reaches leaf 0x8000000A through SVM, which pyqemu lacks: keep
# 0x80000008 (brand string, address sizes) visible all the same
_MAX = _Def("max", "QEMU TCG CPU version 2.5+", AMD, 15, 107, 1, 0, 0x80000008,
            " ".join(sorted(PYQEMU_FEATURES)),
            desc="Enables all features supported by the accelerator in the current host")
_HOST_DESC = "processor with all supported host features "
# -cpu host needs KVM; under TCG it fails once realized, as in QEMU
_HOST = _Def("host", "", "", 0, 0, 0, 0, 0, desc=_HOST_DESC)

# properties of QEMU's x86 CPU that pyqemu takes; the rest of QEMU's properties
# are refused by name rather than silently ignored
_INT_PROPS = {"family": "int64", "model": "int64", "stepping": "int64", "level": "uint64",
              "xlevel": "uint64", "xlevel2": "uint64", "min-level": "uint64",
              "min-xlevel": "uint64", "min-xlevel2": "uint64", "phys-bits": "uint32"}
_STR_PROPS = ("vendor", "model-id")
# boolean properties: check/enforce/l3-cache act; kvm (the KVM signature), migratable
# (max and host only) and pmu (TCG has no PMU leaf either way) change nothing a
# TCG guest sees
_BOOL_PROPS = ("check", "enforce", "kvm", "migratable", "l3-cache", "pmu")
# QEMU's other x86 CPU properties: refused by name as not implemented here
_QEMU_ONLY_PROPS = frozenset((
    "apic-id core-id die-id socket-id thread-id node-id cpuid-0xb fill-mtrr-mask "
    "full-cpuid-auto-level host-phys-bits host-phys-bits-limit kvm-no-smi-migration "
    "kvm-pv-enforce-cpuid lbr-fmt legacy-cache level-func7 lmce start-powered-off tcg-cpuid "
    "tsc-frequency ucode-rev vmware-cpuid-freq x-force-features x-hv-max-vps "
    "x-hv-synic-kvm-only x-intel-pt-auto-level x-migrate-smi-count x-vendor-cpuid-only "
    "hv-version-id-build hv-version-id-major hv-version-id-minor hv-version-id-sbranch "
    "hv-version-id-snumber hv-version-id-spack hv-vendor-id hv-spinlocks").split())


def model_names() -> List[str]:
    """Every name ``-cpu`` takes, in QEMU's ``-cpu help`` order."""
    names = list(_VERSIONED) + list(_MACHINE_ALIASES) + list(_NAMED_ALIASES)
    return sorted(names) + ["base", "max"]


def _lookup(name: str) -> Optional[_Def]:
    if name in _VERSIONED:
        return _VERSIONED[name]
    target = _MACHINE_ALIASES.get(name) or _NAMED_ALIASES.get(name)
    if target is not None:
        return _VERSIONED[target]
    return {"base": _BASE, "max": _MAX, "host": _HOST}.get(name)


def alias_of(name: str) -> Optional[str]:
    return _MACHINE_ALIASES.get(name) or _NAMED_ALIASES.get(name)


def has_model(name: str) -> bool:
    return _lookup(name) is not None


def cpu_help_text(system: bool = True) -> str:
    """``-cpu help`` of qemu-system-x86_64 7.2 (of qemu-x86_64 without
    ``system``: no ``host`` model there), byte for byte."""
    lines = ["Available CPUs:"]
    entries = []
    for name in list(_VERSIONED) + list(_MACHINE_ALIASES) + list(_NAMED_ALIASES):
        if name in _MACHINE_ALIASES:
            desc = "(alias configured by machine type)"
        elif name in _NAMED_ALIASES:
            desc = "(alias of %s)" % _NAMED_ALIASES[name]
        else:
            desc = _VERSIONED[name].desc
        entries.append((name, desc))
    entries.sort()
    entries += [("base", _BASE.desc)] + ([("host", _HOST_DESC)] if system else []) + [
        ("max", _MAX.desc)]
    for name, desc in entries:
        lines.append("x86 %-20s  %s" % (name, desc))
    lines += ["", "Recognized CPUID flags:"]
    row = ""
    for flag in sorted(n for w in FEATURE_WORDS for n in w.names if n):
        if row and len(row) + 1 + len(flag) > 75:
            lines.append(row)
            row = ""
        row = (row + " " + flag) if row else "  " + flag
    lines.append(row)
    return "\n".join(lines) + "\n\n"


def _bit_label(word: FeatureWord, bit: int) -> str:
    return "%s.%s [bit %d]" % (word.location(), word.names[bit], bit + _BIT_BASE.get(word.key, 0))


def _feature_bits(name: str) -> List[Tuple[str, int]]:
    return FEATURES.get(FEATURE_ALIASES.get(name, name), [])


class X86CPUDef:
    """A model after ``-cpu`` parsing and filtering: what one CPU advertises."""

    def __init__(self, base: _Def, typename: str, target: str = "x86_64") -> None:
        self.base = base
        self.name = base.name
        self.typename = typename
        self.target = target
        self.vendor = base.vendor
        self.family = base.family
        self.model = base.model
        self.stepping = base.stepping
        self.model_id = base.model_id
        self.min_level = base.level
        self.min_xlevel = base.xlevel
        self.min_xlevel2 = 0
        self.level: Optional[int] = None      # None: automatic, as QEMU's default
        self.xlevel: Optional[int] = None
        self.xlevel2: Optional[int] = None
        self.features: Dict[str, int] = {w.key: 0 for w in FEATURE_WORDS}
        for name in base.features:
            self.set_feature(name, True)
        self.requested: Dict[str, int] = {w.key: 0 for w in FEATURE_WORDS}
        self.filtered: List[Tuple[str, int]] = []
        self.dropped: List[Tuple[str, int]] = []
        self.level_func7 = 0
        self.check = True
        self.enforce = False
        self.plus: List[str] = []
        self.minus: List[str] = []
        # topology (the board sets it before the CPUs exist)
        self.nr_cores = 1
        self.nr_threads = 1
        self.phys_bits = 40
        self.phys_bits_opt = 0         # -cpu phys-bits=N (0: the default)
        self.l3_cache = True

    # -- features -------------------------------------------------------------------
    def set_feature(self, name: str, on: bool, user: bool = False) -> None:
        for key, bit in _feature_bits(name):
            if on:
                self.features[key] |= 1 << bit
            else:
                self.features[key] &= ~(1 << bit)
            if user:
                self.requested[key] |= 1 << bit

    def has(self, name: str) -> bool:
        return any(self.features[k] >> b & 1 for k, b in _feature_bits(name))

    def feature_names(self) -> List[str]:
        return sorted({w.names[b] for w in FEATURE_WORDS for b in range(32)
                       if w.names[b] and self.features[w.key] >> b & 1})

    def realize(self, warn: Callable[[str], None]) -> None:
        """QEMU's expand + filter: dependencies, levels, then drop what the CPU
        cannot do."""
        f = self.features
        qemu_tcg, ours = QEMU_TCG_FEATURES, PYQEMU_FEATURES
        if self.target != "x86_64":
            qemu_tcg, ours = qemu_tcg - _NOT_ON_I386, ours - _NOT_ON_I386
        # KVM paravirtual features do not exist under TCG (QEMU drops them quietly)
        f["KVM"] = f["KVM_HINTS"] = 0
        # A model feature QEMU's TCG has but pyqemu lacks goes first, quietly, as
        # if the user had said -feature: the rest of the expansion (levels,
        # dependent words) then sees the same CPU as QEMU would.
        for w in FEATURE_WORDS:
            for bit in range(32):
                name = w.names[bit]
                if (f[w.key] >> bit & 1 and name in qemu_tcg
                        and name not in ours and not self.requested[w.key] >> bit & 1):
                    f[w.key] &= ~(1 << bit)
                    self.dropped.append((w.key, bit))
        dropped_names = {WORDS[k].names[b] for k, b in self.dropped}
        for need, words in _DEPENDENCIES:
            if self.has(need):
                continue
            for key in words:
                for bit in range(32):
                    if need in dropped_names and WORDS[key].names[bit] not in qemu_tcg:
                        # QEMU keeps 'need' and then reports this bit as unsupported:
                        # leave it to the filter below so the warnings are QEMU's
                        continue
                    if f[key] >> bit & 1:
                        f[key] &= ~(1 << bit)
                        if self.requested[key] >> bit & 1:
                            warn("This feature depends on other features that were not "
                                 "requested: %s" % _bit_label(WORDS[key], bit))
        self._auto_levels()
        self.filtered = []
        for w in FEATURE_WORDS:
            for bit in range(32):
                if not f[w.key] >> bit & 1 or w.names[bit] in ours:
                    continue
                f[w.key] &= ~(1 << bit)
                self.filtered.append((w.key, bit))
                if self.check:
                    warn("TCG doesn't support requested feature: %s" % _bit_label(w, bit))
        if self.enforce and self.filtered:
            raise QemuError("TCG doesn't support requested features")
        # AMD CPUs mirror most of leaf 1 EDX in 0x80000001 EDX
        if self.vendor == AMD:
            f["8000_0001_EDX"] = ((f["8000_0001_EDX"] & ~0x0183F3FF)
                                  | (f["1_EDX"] & 0x0183F3FF))
        if not f["8000_0001_EDX"] & (1 << 29):
            # without long mode the address sizes are the 32-bit ones
            self.phys_bits = 36 if f["1_EDX"] & (1 << 17) else 32
        elif self.phys_bits_opt:
            if not 32 <= self.phys_bits_opt <= 52:
                raise QemuError("phys-bits should be between 32 and 52  (but is %u)"
                                % self.phys_bits_opt)
            if self.phys_bits_opt != 40:
                # the page walker's reserved bits are those of 40 address bits
                raise QemuError("pyqemu does not implement phys-bits other than 40")

    def _auto_levels(self) -> None:
        f = self.features
        level, xlevel, xlevel2 = self.min_level, self.min_xlevel, self.min_xlevel2
        # the leaves a present feature needs (QEMU's full-cpuid-auto-level)
        for key, need in (("6_EAX", 6), ("7_0_EBX", 7), ("7_0_ECX", 7), ("7_0_EDX", 7),
                          ("7_1_EAX", 7), ("XSAVE", 0xD), ("14_0_ECX", 0x14),
                          ("SGX_12_0_EAX", 0x12), ("SGX_12_0_EBX", 0x12),
                          ("SGX_12_1_EAX", 0x12)):
            if f[key]:
                level = max(level, need)
        for key, need in (("8000_0001_EDX", 0x80000001), ("8000_0001_ECX", 0x80000001),
                          ("8000_0007_EDX", 0x80000007), ("8000_0008_EBX", 0x80000008),
                          ("SVM", 0x8000000A)):
            if f[key]:
                xlevel = max(xlevel, need)
        if f["8000_0001_ECX"] & 4:          # SVM needs leaf 0x8000000A
            xlevel = max(xlevel, 0x8000000A)
        if f["C000_0001_EDX"]:
            xlevel2 = max(xlevel2, 0xC0000001)
        if f["7_1_EAX"]:
            self.level_func7 = 1
        # QEMU raises the minimums themselves (query-cpu-model-expansion shows them)
        self.min_level, self.min_xlevel, self.min_xlevel2 = level, xlevel, xlevel2
        if self.level is None:
            self.level = level
        if self.xlevel is None:
            self.xlevel = xlevel
        if self.xlevel2 is None:
            self.xlevel2 = xlevel2

    def unavailable_features(self) -> List[str]:
        """The model's features this emulator cannot give (query-cpu-definitions)."""
        probe = X86CPUDef(self.base, self.typename, self.target)
        probe.realize(lambda msg: None)
        return [WORDS[k].names[b] or "" for k, b in sorted(
            probe.dropped + probe.filtered, key=lambda kb: (_WORD_INDEX[kb[0]], kb[1]))]

    # -- CPUID ----------------------------------------------------------------------
    def version(self) -> int:
        fam = self.family
        eax = (min(fam, 15) << 8) | ((self.model & 0xf) << 4) | (self.stepping & 0xf)
        if fam > 15:
            eax |= (fam - 15) << 20
        return eax | ((self.model >> 4) & 0xf) << 16

    def _vendor_regs(self) -> Tuple[int, int, int]:
        b, d, c = struct.unpack("<3I", self.vendor.encode().ljust(12, b"\0")[:12])
        return b, c, d

    def cpuid(self, leaf: int, sub: int = 0, apic_id: int = 0, cr4: int = 0) -> Tuple[int, int, int, int]:
        """CPUID as the guest sees it (``cr4`` supplies the OSXSAVE/OSPKE bits)."""
        assert self.level is not None and self.xlevel is not None and self.xlevel2 is not None
        leaf &= 0xffffffff
        top = leaf & 0xf0000000
        limit = {0xC0000000: self.xlevel2, 0x80000000: self.xlevel,
                 0x40000000: 0x40000001}.get(top, self.level)
        if leaf > limit:
            leaf = self.level        # QEMU answers with the last basic leaf
        f = self.features
        threads, cores = self.nr_threads, self.nr_cores
        if leaf == 0:
            b, c, d = self._vendor_regs()
            return self.level, b, c, d
        if leaf == 1:
            ebx = (apic_id << 24) | (8 << 8)
            edx = f["1_EDX"]
            if cores * threads > 1:
                ebx |= (cores * threads) << 16
                edx |= 1 << 28               # HT
            ecx = f["1_ECX"] | ((1 << 27) if cr4 & (1 << 18) else 0)
            return self.version(), ebx, ecx, edx
        caches = self.base.caches or _LEGACY_CACHES
        if leaf in (2, 4) and self.vendor == AMD:
            return 0, 0, 0, 0                # Intel's leaves (QEMU's x-vendor-cpuid-only)
        if leaf == 2:
            if not self.l3_cache:
                return 1, 0, 0, caches.leaf2[1]
            return (1, 0) + caches.leaf2
        if leaf == 4:
            return self._cache_leaf(caches, sub)
        if leaf == 5:
            return 0, 0, 3, 0                # MWAIT: extensions + interrupt break-event
        if leaf == 6:
            return f["6_EAX"], 0, 0, 0
        if leaf == 7:
            if sub == 0:
                ecx = f["7_0_ECX"] | ((1 << 4) if cr4 & (1 << 22) else 0)
                return self.level_func7, f["7_0_EBX"], ecx, f["7_0_EDX"]
            if sub == 1:
                return f["7_1_EAX"], 0, 0, 0
            return 0, 0, 0, 0
        if leaf == 0xB:
            core_off = (threads - 1).bit_length()
            pkg_off = core_off + (cores - 1).bit_length()
            ecx = sub & 0xff
            if sub == 0:
                return core_off, threads, ecx | 0x100, apic_id
            if sub == 1:
                return pkg_off, cores * threads, ecx | 0x200, apic_id
            return 0, 0, ecx, apic_id
        if leaf == 0x40000000:
            return (0x40000001,) + struct.unpack("<3I", b"TCGTCGTCGTCG")
        if leaf == 0x80000000:
            b, c, d = self._vendor_regs()
            return self.xlevel, b, c, d
        if leaf == 0x80000001:
            return self.version(), 0, f["8000_0001_ECX"], f["8000_0001_EDX"]
        if 0x80000002 <= leaf <= 0x80000004:
            brand = self.model_id.encode()[:48].ljust(48, b"\0")
            k = (leaf - 0x80000002) * 16
            return struct.unpack("<4I", brand[k:k + 16])
        if leaf == 0x80000005:
            return (0x01ff01ff, 0x01ff01ff) + caches.l1           # TLBs, L1 caches
        if leaf == 0x80000006:
            if not self.l3_cache:
                return 0, 0x42004200, caches.l2l3[0], 0
            return (0, 0x42004200) + caches.l2l3                  # TLBs, L2/L3 caches
        if leaf == 0x80000007:
            return 0, 0, 0, f["8000_0007_EDX"]
        if leaf == 0x80000008:
            virt = 57 if f["7_0_ECX"] & (1 << 16) else 48
            if not f["8000_0001_EDX"] & (1 << 29):
                virt = 0
            ecx = (cores * threads - 1) if self.vendor != INTEL and cores * threads > 1 else 0
            return self.phys_bits | (virt << 8), f["8000_0008_EBX"], ecx, 0
        if leaf == 0x8000000A:
            if f["8000_0001_ECX"] & 4:
                return 1, 0x10, 0, f["SVM"]
            return 0, 0, 0, 0
        if leaf == 0x8000001D and self.base.caches is not None:
            return self._cache_leaf(caches, sub, leaf4=False)
        if leaf == 0xC0000000:
            return self.xlevel2, 0, 0, 0
        if leaf == 0xC0000001:
            return 0, 0, 0, f["C000_0001_EDX"]
        # 0xD (XSAVE), 0x12 (SGX), 0x14 (PT), PMU, AMD topology: features pyqemu
        # never advertises, so their leaves read as zero
        return 0, 0, 0, 0

    def _cache_leaf(self, caches: "_Caches", sub: int, leaf4: bool = True) -> Tuple[int, int, int, int]:
        table = caches.leaf4
        if not self.l3_cache and leaf4:
            table = table[:3]
        if sub >= len(table):
            return 0, 0, 0, 0
        eax, ebx, ecx, edx = table[sub]
        share = self.nr_threads if sub < 3 else self.nr_threads * self.nr_cores
        eax |= ((self.nr_cores - 1) << 26) | ((share - 1) << 14)
        return eax, ebx, ecx, edx


def _parse_int(text: str, kind: str, prop: str, global_text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise QemuError("can't apply global %s: Parameter '%s' expects %s"
                        % (global_text, prop, kind)) from None
    return value


def _parse_bool(text: str, prop: str, global_text: str) -> bool:
    if text in ("on", "yes", "true", "y"):
        return True
    if text in ("off", "no", "false", "n"):
        return False
    raise QemuError("can't apply global %s: Parameter '%s' expects 'on' or 'off'"
                    % (global_text, prop))


def resolve(option: str, warn: Callable[[str], None], target: str = "x86_64",
            realize: bool = True, parse_warn: Optional[Callable[[str], None]] = None) -> X86CPUDef:
    """Parse ``-cpu MODEL[,+feat][,-feat][,feat=on|off][,prop=value]`` as QEMU does.

    Warnings go to ``warn`` (without the program prefix; those about the
    option string itself to ``parse_warn`` when given: QEMU prints them once,
    not per CPU); errors raise QemuError with QEMU's wording.  With ``realize`` the result is filtered
    for this emulator and ready to answer CPUID.
    """
    parts = option.split(",")
    name = parts[0]
    base = _lookup(name)
    if base is None:
        raise QemuError("unable to find CPU model '%s'" % name)
    typename = "%s-%s-cpu" % (name, target)
    cpu = X86CPUDef(base, typename, target)
    if base is _MAX and target != "x86_64":
        for feat in _NOT_ON_I386:      # "everything the accelerator has"
            cpu.set_feature(feat, False)
    plus: List[str] = []
    minus: List[str] = []
    ambiguous = False
    pwarn = warn if parse_warn is None else parse_warn
    for item in parts[1:]:
        if not item:
            continue
        if item[0] in "+-":
            feat = item[1:].replace("_", "-")
            (plus if item[0] == "+" else minus).append(feat)
            continue
        prop, eq, value = item.partition("=")
        prop = prop.replace("_", "-")
        if not eq:
            value = "on"
        for sign, lst in (("+", plus), ("-", minus)):
            if prop in lst:
                pwarn("Ambiguous CPU model string. Don't mix both \"%s%s\" and \"%s=%s\""
                     % (sign, prop, prop, value))
                ambiguous = True
        gtext = "%s.%s=%s" % (typename, prop, value)
        if _feature_bits(prop):
            cpu.set_feature(prop, _parse_bool(value, prop, gtext), user=True)
        elif prop in _INT_PROPS:
            v = _parse_int(value, _INT_PROPS[prop], prop, gtext)
            if prop in ("family", "model", "stepping"):
                setattr(cpu, prop, v)
            elif prop == "phys-bits":
                cpu.phys_bits_opt = v & 0xffffffff
            else:
                setattr(cpu, prop.replace("-", "_"), v & 0xffffffff)
        elif prop == "vendor":
            if len(value) != 12:
                raise QemuError("can't apply global %s: Property '.vendor' doesn't take value '%s'"
                                % (gtext, value))
            cpu.vendor = value
        elif prop == "model-id":
            cpu.model_id = value
        elif prop in _BOOL_PROPS and (prop != "migratable" or base in (_MAX, _HOST)):
            on = _parse_bool(value, prop, gtext)
            if prop in ("check", "enforce"):
                setattr(cpu, prop, on)
            elif prop == "l3-cache":
                cpu.l3_cache = on
        elif prop in _QEMU_ONLY_PROPS or prop.startswith("hv-"):
            raise QemuError("can't apply global %s: pyqemu does not implement the CPU property '%s'"
                            % (gtext, prop))
        else:
            raise QemuError("can't apply global %s: Property '%s.%s' not found"
                            % (gtext, typename, prop))
    if ambiguous:
        pwarn("Compatibility of ambiguous CPU model strings won't be kept on future QEMU versions")
    cpu.plus, cpu.minus = plus, minus
    if realize:
        finish(cpu, warn)
    return cpu


def finish(cpu: X86CPUDef, warn: Callable[[str], None]) -> None:
    """Apply ``+feat``/``-feat`` and filter (QEMU does this when the CPU is realized)."""
    for feat in cpu.plus + cpu.minus:
        if not _feature_bits(feat):
            if feat in _INT_PROPS:
                raise QemuError("Invalid parameter type for '%s', expected: integer" % feat)
            raise QemuError("Property '%s.%s' not found" % (cpu.typename, feat))
    # '+feat' and '-feat' apply after 'feat=on|off', and '-' wins
    for feat in cpu.plus:
        cpu.set_feature(feat, True, user=True)
    for feat in cpu.minus:
        cpu.set_feature(feat, False, user=True)
    cpu.realize(warn)
    if cpu.name == "host":
        raise QemuError("CPU model 'host' requires KVM or HVF")


def model_expansion(name: str, props: Optional[Dict[str, object]], kind: str,
                    target: str = "x86_64") -> Dict[str, object]:
    """query-cpu-model-expansion: ``static`` is ``base`` plus every feature
    and the identity properties; ``full`` keeps the name and adds the levels."""
    base = _lookup(name)
    if base is None or name == "host":
        raise QemuError("CPU model '%s' not found" % name)
    typename = "%s-%s-cpu" % (name, target)
    cpu = X86CPUDef(base, typename)
    for prop, value in (props or {}).items():
        _apply_typed(cpu, prop, value)
    cpu._auto_levels()
    out: Dict[str, object] = {}
    for w in FEATURE_WORDS:
        for bit, flag in enumerate(w.names):
            if flag:
                out[flag] = bool(out.get(flag)) or bool(cpu.features[w.key] >> bit & 1)
    out.update({"family": cpu.family, "model": cpu.model, "stepping": cpu.stepping,
                "vendor": cpu.vendor, "model-id": cpu.model_id,
                "min-level": cpu.min_level, "min-xlevel": cpu.min_xlevel,
                "lmce": False})          # local machine-check: not offered
    if kind == "static":
        return {"model": {"name": "base", "props": out}}
    out.update({"level": cpu.level, "xlevel": cpu.xlevel, "xlevel2": cpu.xlevel2,
                "min-xlevel2": cpu.min_xlevel2, "check": cpu.check, "enforce": cpu.enforce})
    return {"model": {"name": name, "props": out}}


def _apply_typed(cpu: X86CPUDef, prop: str, value: object) -> None:
    """One property of a QMP CpuModelInfo (typed JSON values, not strings)."""
    if _feature_bits(prop) or prop in _BOOL_PROPS:
        if not isinstance(value, bool):
            raise QemuError("Invalid parameter type for '%s', expected: boolean" % prop)
        if _feature_bits(prop):
            cpu.set_feature(prop, value, user=True)
        elif prop in ("check", "enforce"):
            setattr(cpu, prop, value)
    elif prop in _INT_PROPS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise QemuError("Invalid parameter type for '%s', expected: integer" % prop)
        if prop in ("family", "model", "stepping"):
            setattr(cpu, prop, value)
        else:
            setattr(cpu, prop.replace("-", "_"), value & 0xffffffff)
    elif prop in _STR_PROPS:
        if not isinstance(value, str):
            raise QemuError("Invalid parameter type for '%s', expected: string" % prop)
        if prop == "vendor":
            if len(value) != 12:
                raise QemuError("Property '.vendor' doesn't take value '%s'" % value)
            cpu.vendor = value
        else:
            cpu.model_id = value
    else:
        raise QemuError("Property '%s.%s' not found" % (cpu.typename, prop))


def cpu_definitions(target: str = "x86_64") -> List[Dict[str, object]]:
    """query-cpu-definitions in QEMU's order (max, host, base, then the rest
    in reverse name order)."""
    out: List[Dict[str, object]] = []
    names = ["max", "host", "base"] + sorted(set(model_names()) - {"max", "base"}, reverse=True)
    for name in names:
        entry: Dict[str, object] = {"name": name, "typename": "%s-%s-cpu" % (name, target)}
        if name == "host":
            entry["unavailable-features"] = ["kvm"]
        else:
            base = _lookup(name)
            assert base is not None
            entry["unavailable-features"] = X86CPUDef(base, name, target).unavailable_features()
        target_name = alias_of(name)
        if target_name is not None:
            entry["alias-of"] = target_name
        entry["static"] = name == "base"
        entry["migration-safe"] = name not in ("max", "host")
        entry["deprecated"] = False
        out.append(entry)
    return out




# -- the CPUs of the system emulator ---------------------------------------------------

def _user_model(cpu: X86CPUDef):
    """The older per-CPU model record the CPU state keeps (EFER mask, user mode)."""
    from pyqemu.target.i386.cpu import CpuModel
    f = cpu.features
    return CpuModel(cpu.name, cpu.base.desc, cpu.level or 0, cpu.family, cpu.model, cpu.stepping,
                    f["1_EDX"], f["1_ECX"], f["8000_0001_EDX"], f["8000_0001_ECX"],
                    vendor=cpu.vendor, model_id=cpu.model_id,
                    long_mode=bool(f["8000_0001_EDX"] & (1 << 29)))


def attach(sys_cpu, cpu: X86CPUDef, apic_id: int) -> None:
    """Make a CPU object answer CPUID (and derive its EFER mask) from ``cpu``."""
    sys_cpu.cpu_def = cpu
    sys_cpu.model = _user_model(cpu)

    def cpuid(leaf: int, sub: int) -> Tuple[int, int, int, int]:
        cr = getattr(sys_cpu, "cr", None)
        return cpu.cpuid(leaf, sub, apic_id, cr[4] if cr else 0)
    sys_cpu.cpuid = cpuid


def _factory(name: str) -> Callable:
    def make(machine, index: int):
        from pyqemu.exec.memory import (AddressSpace, address_space_io, address_space_memory,
                                        get_system_memory)
        from pyqemu.target.i386.sysemu.cpu import X86SysCPU
        option = machine.cpu_type or name
        warn = _warn_to_stderr
        parsed = resolve(option, warn, target=getattr(machine, "target", "x86_64"), realize=False,
                         parse_warn=warn if index == 0 else (lambda msg: None))
        if getattr(machine, "NAME", "") == "none":
            # QEMU's none machine gives its CPU no APIC ID
            raise QemuError("apic-id property was not initialized properly")
        smp = getattr(machine, "smp", {})
        parsed.nr_cores = smp.get("cores", 1) or 1
        parsed.nr_threads = smp.get("threads", 1) or 1
        finish(parsed, warn)
        sys_cpu = X86SysCPU(address_space_memory(), "qemu64", index)
        # QEMU gives each CPU its own view of system memory ("cpu-memory-N" in
        # info mtree); the CPU keeps dispatching through the shared one, which
        # has the same root and so the same contents
        sys_cpu.cpu_as = AddressSpace(get_system_memory(), "cpu-memory-%d" % index)
        sys_cpu.io_as = address_space_io()
        from pyqemu.hw.i386.topology import apic_id_from_index
        # the APIC ID follows the -smp topology, as in QEMU (not always the index)
        sys_cpu.apic_id = apic_id_from_index(smp, index) if smp else index
        attach(sys_cpu, parsed, sys_cpu.apic_id)
        sys_cpu.reset()       # EDX at reset is this model's CPUID.1.EAX
        return sys_cpu
    return make


def _warn_to_stderr(msg: str) -> None:
    from pyqemu.util.error import warn_report
    warn_report(msg)


def _register() -> None:
    from pyqemu.system import cpus
    for name in model_names() + ["host"]:
        cpus.register_cpu_model(name, _factory(name), "")
    cpus.set_cpu_help(cpu_help_text)


_register()
