"""-readconfig / -writeconfig in QEMU's ini format."""
import pytest

from pyqemu.util import opts
from pyqemu.util.error import OptionError
from pyqemu.util.opts import OptsList


@pytest.fixture
def groups(monkeypatch):
    monkeypatch.setattr(opts, "_groups", {})
    drive = opts.register_opts(OptsList("drive"))
    smp = opts.register_opts(OptsList("smp-opts", implied_key="cpus", merge_lists=True, option="smp"))
    boot = opts.register_opts(OptsList("boot-opts", implied_key="order", merge_lists=True, option="boot"))
    acpi = opts.register_opts(OptsList("acpi", option="acpitable"))
    return drive, smp, boot, acpi


def test_read_sections_ids_and_values(tmp_path, groups):
    drive, smp, boot, acpi = groups
    cfg = tmp_path / "vm.cfg"
    cfg.write_text('# qemu config file\n\n[drive "d0"]\n  file = "disk,1.img"\n  if = "none"\n\n'
                   '[smp-opts]\n  cpus = "2"\n[boot-opts]\n  order = "c"\n[acpi]\n  sig = "SSDT"\n')
    opts.read_config(str(cfg))
    d = drive.find("d0")
    assert d.to_dict() == {"file": "disk,1.img", "if": "none"}
    assert smp.instances[0].get("cpus") == "2"
    assert boot.instances[0].get("order") == "c"
    assert acpi.instances[0].get("sig") == "SSDT"


def test_section_names_from_the_command_line_are_accepted_too(tmp_path, groups):
    cfg = tmp_path / "vm.cfg"
    cfg.write_text('[smp]\n  cpus = "4"\n')
    opts.read_config(str(cfg))
    assert groups[1].instances[0].get("cpus") == "4"


def test_write_then_read_round_trip(tmp_path, groups, monkeypatch):
    drive, smp, _, _ = groups
    drive.parse('file=a "quoted",,name.img,if=virtio,id=hd0')
    drive.parse("file=b.img")
    smp.parse("2,sockets=1")
    out = tmp_path / "out.cfg"
    opts.write_config(str(out))
    text = out.read_text()
    assert text.startswith("# qemu config file\n\n")
    assert '[drive "hd0"]\n  file = "a \\"quoted\\",name.img"\n  if = "virtio"\n' in text
    assert "[smp-opts]\n" in text
    before = [(o.list.name, o.id, o.items) for g in opts.registered_opts() for o in g.instances]
    for g in opts.registered_opts():
        g.instances = []
    opts.read_config(str(out))
    after = [(o.list.name, o.id, o.items) for g in opts.registered_opts() for o in g.instances]
    assert after == before


def test_unknown_group_is_reported_at_its_first_entry(tmp_path, groups):
    cfg = tmp_path / "d.cfg"
    cfg.write_text('[drive]\n  if = "none"\n[nosuch]\n  a = "b"\n')
    with pytest.raises(OptionError) as e:
        opts.read_config(str(cfg))
    assert str(e.value) == "There is no option group 'nosuch'"
    assert e.value.loc == "%s:4" % cfg and e.value.file_loc


@pytest.mark.parametrize("text", ["garbage\n", '  a = "b"\n'])
def test_entries_outside_a_group(tmp_path, groups, text):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(text)
    with pytest.raises(OptionError) as e:
        opts.read_config(str(cfg))
    assert str(e.value) == "no group defined"
    assert e.value.loc == "%s:1" % cfg


def test_a_bare_word_is_a_key_that_its_group_then_rejects(tmp_path, groups, monkeypatch):
    # QEMU reads 'garbage' as garbage = "": a group that knows its keys rejects it.
    opts.register_opts(OptsList("machine", desc=[opts.OptDesc("type")]))
    cfg = tmp_path / "bad.cfg"
    cfg.write_text('[machine]\n  type = "none"\n  garbage\n')
    with pytest.raises(OptionError) as e:
        opts.read_config(str(cfg))
    assert str(e.value) == "Invalid parameter 'garbage'"
    assert e.value.loc == "%s:3" % cfg


def test_missing_file(tmp_path, groups):
    with pytest.raises(OptionError) as e:
        opts.read_config(str(tmp_path / "nope.cfg"))
    assert "Could not open" in str(e.value) and "No such file or directory" in str(e.value)


def test_set_option(groups):
    drive = groups[0]
    drive.parse("file=a.img,id=hd0")
    opts.set_option("drive.hd0.cache=none")
    assert drive.find("hd0").get("cache") == "none"
    with pytest.raises(OptionError):
        opts.set_option("drive.nope.cache=none")
