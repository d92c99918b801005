"""The x86 CPU model table: -cpu parsing, filtering to what pyqemu implements, CPUID."""
import struct

import pytest

from pyqemu.target.i386 import cpu_models as cm
from pyqemu.util.error import QemuError


def resolve(option):
    warnings = []
    cpu = cm.resolve(option, warnings.append)
    return cpu, warnings


def brand(cpu):
    raw = b"".join(struct.pack("<4I", *cpu.cpuid(leaf)) for leaf in (0x80000002, 0x80000003, 0x80000004))
    return raw.rstrip(b"\0").decode()


def test_help_lists_every_model_alias_and_flag_once():
    text = cm.cpu_help_text()
    lines = text.splitlines()
    assert lines[0] == "Available CPUs:"
    assert "x86 Haswell-IBRS          (alias of Haswell-v3)" in lines
    assert "x86 qemu64                (alias configured by machine type)" in lines
    assert "x86 qemu64-v1             QEMU Virtual CPU version 2.5+" in lines
    assert lines.index("x86 base                  base CPU model type with no features enabled") < \
        lines.index("x86 max                   Enables all features supported by the accelerator in the current host")
    flags = text.split("Recognized CPUID flags:\n")[1].split()
    assert flags == sorted(flags) and "sse4.2" in flags and flags.count("kvmclock") == 2
    assert all(len(line) <= 75 for line in text.split("Recognized CPUID flags:\n")[1].splitlines())
    # user mode has no 'host' model
    assert "x86 host" in text and "x86 host" not in cm.cpu_help_text(system=False)


def test_qemu64_cpuid_matches_qemu_tcg_less_svm():
    cpu, warnings = resolve("qemu64")
    assert warnings == []
    assert cpu.cpuid(0) == (0xd, 0x68747541, 0x444d4163, 0x69746e65)       # AuthenticAMD
    assert cpu.cpuid(1) == (0x00060fb1, 0x800, 0x80002001, 0x078bfbfd)
    # QEMU's TCG has SVM, pyqemu not: dropped quietly, the AMD mirror of leaf 1 stays
    assert cpu.cpuid(0x80000001) == (0x00060fb1, 0, 1, 0x2193fbfd)
    assert cpu.cpuid(0x8000000A) == (0, 0, 0, 0)
    assert brand(cpu) == "QEMU Virtual CPU version 2.5+"
    assert cpu.cpuid(0x80000008) == (0x3028, 0, 0, 0)
    assert cpu.cpuid(0x40000000)[0] == 0x40000001


def test_leaves_beyond_the_limits_answer_the_last_basic_leaf():
    cpu, _ = resolve("Haswell")
    last = cpu.cpuid(0xd)
    assert cpu.cpuid(0xe) == last and cpu.cpuid(0x80000009) == last
    assert cpu.cpuid(0xc0000000) == last and cpu.cpuid(0x40000002) == last


def test_model_features_qemu_tcg_lacks_warn_in_feature_word_order():
    _, warnings = resolve("Haswell")
    assert warnings == [
        "TCG doesn't support requested feature: CPUID.01H:ECX.pcid [bit 17]",
        "TCG doesn't support requested feature: CPUID.01H:ECX.x2apic [bit 21]",
        "TCG doesn't support requested feature: CPUID.01H:ECX.tsc-deadline [bit 24]",
        "TCG doesn't support requested feature: CPUID.07H:EBX.hle [bit 4]",
        "TCG doesn't support requested feature: CPUID.07H:EBX.invpcid [bit 10]",
        "TCG doesn't support requested feature: CPUID.07H:EBX.rtm [bit 11]",
    ]


def test_guest_sees_only_what_pyqemu_implements():
    cpu, _ = resolve("Haswell")
    ecx = cpu.cpuid(1)[2]
    assert ecx & (1 << 28) == 0          # AVX: QEMU's TCG has it, pyqemu not
    assert ecx & (1 << 23)               # POPCNT
    assert cpu.cpuid(7)[1] == (1 << 3) | (1 << 7) | (1 << 8)   # bmi1 smep bmi2
    assert cpu.cpuid(0xd) == (0, 0, 0, 0)                       # no XSAVE


def test_explicit_request_for_a_missing_feature_warns():
    _, warnings = resolve("qemu64,+avx,+vmx")
    assert warnings == ["TCG doesn't support requested feature: CPUID.01H:ECX.vmx [bit 5]",
                        "TCG doesn't support requested feature: CPUID.01H:ECX.avx [bit 28]"]


def test_minus_wins_and_mixing_forms_is_called_ambiguous():
    cpu, warnings = resolve("qemu64,-sse4.2,sse4.2=on")
    assert warnings[:2] == ['Ambiguous CPU model string. Don\'t mix both "-sse4.2" and "sse4.2=on"',
                            "Compatibility of ambiguous CPU model strings won't be kept on future QEMU versions"]
    assert not cpu.cpuid(1)[2] & (1 << 20)
    cpu, warnings = resolve("qemu64,sse4_2,+popcnt,-popcnt")
    assert warnings == [] and cpu.cpuid(1)[2] & (1 << 20) and not cpu.cpuid(1)[2] & (1 << 23)


def test_properties_family_model_id_level():
    cpu, _ = resolve("qemu64,family=23,model=1,stepping=2,model-id=Test CPU")
    assert cpu.cpuid(1)[0] == 0x00800f12
    assert brand(cpu) == "Test CPU"
    cpu, _ = resolve("qemu64,xlevel=0x80000001,level=2")
    assert cpu.cpuid(0x80000000)[0] == 0x80000001 and cpu.cpuid(0)[0] == 2


@pytest.mark.parametrize("option, message", [
    ("nosuch", "unable to find CPU model 'nosuch'"),
    ("qemu64,+foo", "Property 'qemu64-x86_64-cpu.foo' not found"),
    ("qemu64,foo=on", "can't apply global qemu64-x86_64-cpu.foo=on: Property 'qemu64-x86_64-cpu.foo' not found"),
    ("qemu64,vmx=bad", "can't apply global qemu64-x86_64-cpu.vmx=bad: Parameter 'vmx' expects 'on' or 'off'"),
    ("qemu64,family=x", "can't apply global qemu64-x86_64-cpu.family=x: Parameter 'family' expects int64"),
    ("qemu64,+family", "Invalid parameter type for 'family', expected: integer"),
    ("qemu64,vendor=abc", "can't apply global qemu64-x86_64-cpu.vendor=abc: Property '.vendor' doesn't take value 'abc'"),
    ("qemu64,enforce,+vmx", "TCG doesn't support requested features"),
    ("host", "CPU model 'host' requires KVM or HVF"),
    ("qemu64,phys-bits=20", "phys-bits should be between 32 and 52  (but is 20)"),
    ("qemu64,phys-bits=39", "pyqemu does not implement phys-bits other than 40"),
    ("qemu64,hv-relaxed=on",
     "can't apply global qemu64-x86_64-cpu.hv-relaxed=on: pyqemu does not implement the CPU property 'hv-relaxed'"),
])
def test_errors_use_qemu_wording(option, message):
    with pytest.raises(QemuError) as err:
        resolve(option)
    assert str(err.value) == message


def test_max_is_everything_pyqemu_implements_without_warnings():
    cpu, warnings = resolve("max")
    assert warnings == []
    assert set(cpu.feature_names()) == set(cm.PYQEMU_FEATURES)
    assert brand(cpu) == "QEMU TCG CPU version 2.5+"


def test_topology_shows_in_leaves_1_4_and_b():
    cpu = cm.resolve("Haswell", lambda msg: None, realize=False)
    cpu.nr_cores, cpu.nr_threads = 2, 2
    cm.finish(cpu, lambda msg: None)
    eax, ebx, ecx, edx = cpu.cpuid(1, 0, apic_id=3)
    assert ebx >> 24 == 3 and (ebx >> 16) & 0xff == 4 and edx & (1 << 28)
    assert cpu.cpuid(0xb, 0, apic_id=3) == (1, 2, 0x100, 3)
    assert cpu.cpuid(0xb, 1, apic_id=3) == (2, 4, 0x201, 3)
    assert cpu.cpuid(4, 0)[0] >> 26 == 1


def test_definitions_and_expansion():
    defs = cm.cpu_definitions()
    names = [d["name"] for d in defs]
    assert names[:3] == ["max", "host", "base"] and names[-1] == "486"
    by_name = {d["name"]: d for d in defs}
    assert by_name["qemu64"]["alias-of"] == "qemu64-v1"
    assert by_name["base"]["static"] is True
    assert "svm" in by_name["qemu64"]["unavailable-features"]
    missing = by_name["Haswell-v1"]["unavailable-features"]
    assert missing.index("pcid") < missing.index("avx") < missing.index("rtm")
    model = cm.model_expansion("Haswell", {"avx2": False, "family": 7}, "static")["model"]
    assert model["name"] == "base" and model["props"]["avx2"] is False and model["props"]["avx"] is True
    assert model["props"]["family"] == 7 and model["props"]["model-id"] == "Intel Core Processor (Haswell)"
    with pytest.raises(QemuError, match="expected: boolean"):
        cm.model_expansion("qemu64", {"vmx": "x"}, "static")


def test_i386_target_has_no_long_mode_or_syscall():
    warnings = []
    cpu = cm.resolve("qemu64", warnings.append, target="i386")
    assert warnings == ["TCG doesn't support requested feature: CPUID.80000001H:EDX.syscall [bit 11]",
                        "TCG doesn't support requested feature: CPUID.80000001H:EDX.lm [bit 29]"]
    assert cpu.cpuid(0x80000001)[3] == 0x0193f3fd      # as qemu-i386 -cpu qemu64
    assert cpu.typename == "qemu64-i386-cpu"
    cpu = cm.resolve("max", warnings.append, target="i386")
    assert len(warnings) == 2 and not cpu.has("lm")
