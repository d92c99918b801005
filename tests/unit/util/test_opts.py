"""The QemuOpts/keyval parser: every rule of QEMU's option syntax."""
import pytest
from hypothesis import given, strategies as st

from pyqemu.util import opts
from pyqemu.util.error import OptionError
from pyqemu.util.opts import OptDesc, OptsList


def chardev_list():
    return OptsList("chardev", implied_key="backend")


def test_key_value_pairs_in_order():
    o = OptsList("drive").parse("file=a.img,if=virtio,cache=none", store=False)
    assert o.items == [("file", "a.img"), ("if", "virtio"), ("cache", "none")]
    assert o.get("if") == "virtio"
    assert o.get("missing") is None


def test_double_comma_is_a_literal_comma():
    o = OptsList("drive").parse("file=a,,b,,c.img,format=raw", store=False)
    assert o.get("file") == "a,b,c.img"
    assert o.get("format") == "raw"
    # and it escapes back the same way
    assert "file=a,,b,,c.img" in o.to_string()


def test_implied_first_key():
    netdev = OptsList("netdev", implied_key="type")
    o = netdev.parse("user,id=n0", store=False)
    assert o.get("type") == "user" and o.id == "n0"
    o = chardev_list().parse("socket,id=c0,path=/tmp/s", store=False)
    assert o.get("backend") == "socket"
    o = OptsList("machine", implied_key="type").parse("pc,accel=tcg", store=False)
    assert o.get("type") == "pc"


def test_implied_key_only_for_the_first_element():
    o = OptsList("netdev", implied_key="type").parse("id=n0,user", warn_on_flag=False, store=False)
    assert o.get("type") is None
    assert o.get("user") == "on"


def test_drive_has_no_implied_key_so_bare_word_is_a_flag(capsys):
    o = OptsList("drive").parse("file", store=False)
    assert o.get("file") == "on"


def test_bare_flags_mean_on_and_no_prefix_means_off(capsys):
    o = chardev_list().parse("socket,id=c,path=/tmp/s,server,nowait", loc="-chardev x", store=False)
    assert o.get("server") == "on"
    assert o.get("wait") == "off"
    err = capsys.readouterr().err
    # QEMU 7.2 warns about the short forms, naming the long form to use.
    assert "-chardev x: warning: short-form boolean option 'server' deprecated" in err
    assert "Please use server=on instead" in err
    assert "Please use wait=off instead" in err


def test_readonly_flag_on_drive(capsys):
    o = OptsList("drive").parse("file=x.img,readonly", store=False)
    assert o.get_bool("readonly") is True


@pytest.mark.parametrize("text", ["help", "?", "socket,help", "socket,id=x,?"])
def test_help_anywhere(text):
    o = chardev_list().parse(text, store=False)
    assert o.help_wanted


def test_implied_help_keeps_the_value_for_the_owner():
    o = OptsList("netdev", implied_key="type").parse("help", store=False)
    assert o.help_wanted and o.get("type") == "help"


@pytest.mark.parametrize("value,expected", [
    ("on", True), ("yes", True), ("true", True), ("y", True),
    ("off", False), ("no", False), ("false", False), ("n", False),
])
def test_booleans(value, expected):
    desc = [OptDesc("ro", opts.OPT_BOOL)]
    o = OptsList("x", desc=desc).parse("ro=" + value, store=False)
    assert o.get_bool("ro") is expected


def test_bad_boolean_is_rejected_with_qemu_wording():
    desc = [OptDesc("lazy_refcounts", opts.OPT_BOOL)]
    with pytest.raises(OptionError) as e:
        OptsList("x", desc=desc).parse("lazy_refcounts=maybe", store=False)
    assert str(e.value) == "Parameter 'lazy_refcounts' expects 'on' or 'off'"


@pytest.mark.parametrize("text,expected", [
    ("0", 0), ("512", 512), ("1k", 1024), ("1K", 1024), ("64k", 65536), ("1M", 1 << 20),
    ("2G", 2 << 30), ("1T", 1 << 40), ("1P", 1 << 50), ("1E", 1 << 60), ("100b", 100),
    ("100B", 100), ("1.5G", 3 << 29), ("0.5k", 512), ("1.k", 1024), ("0x1000", 4096),
    ("15E", 15 << 60),
])
def test_sizes(text, expected):
    assert opts.strtosz(text) == expected


@pytest.mark.parametrize("text", ["12Q", "", "abc", "-1", "1.5", "0x10k", "1e3", "16E", "k", "1kk",
                                  "99999999999999999999"])
def test_bad_sizes(text):
    with pytest.raises((ValueError, OverflowError)):
        opts.strtosz(text)


def test_size_default_suffix_for_megabytes():
    assert opts.strtosz("128", default_suffix="M") == 128 << 20
    assert opts.strtosz("1G", default_suffix="M") == 1 << 30


def test_bad_size_option_has_qemu_message_and_hint():
    desc = [OptDesc("size", opts.OPT_SIZE)]
    with pytest.raises(OptionError) as e:
        OptsList("x", desc=desc).parse("size=12Q", store=False)
    assert str(e.value) == "Parameter 'size' expects a non-negative number below 2^64"
    assert e.value.hint.startswith("Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-")


@pytest.mark.parametrize("text,expected", [("10", 10), ("0x10", 16), ("010", 8), ("0", 0)])
def test_numbers_decimal_hex_octal(text, expected):
    assert opts.parse_number("n", text) == expected


@pytest.mark.parametrize("text", ["abc", "12x", "", "0x"])
def test_bad_numbers(text):
    with pytest.raises(OptionError) as e:
        opts.parse_number("n", text)
    assert str(e.value) == "Parameter 'n' expects a number"


def test_range_check_message():
    with pytest.raises(OptionError) as e:
        opts.check_range("cluster_bits", 30, 9, 21)
    assert "expects a value between 9 and 21" in str(e.value)


def test_value_may_contain_equals_sign():
    # As in QEMU, a value runs to the next single comma: a=b=c sets a to 'b=c'.
    o = OptsList("drive").parse("a=b=c", store=False)
    assert o.get("a") == "b=c"


def test_unknown_key_is_rejected_when_keys_are_described():
    desc = [OptDesc("size", opts.OPT_SIZE), OptDesc("cluster_size", opts.OPT_SIZE)]
    with pytest.raises(OptionError) as e:
        OptsList("create", desc=desc).parse("a=b=c", store=False)
    assert str(e.value) == "Invalid parameter 'a'"


def test_ids_are_checked_and_unique():
    lst = chardev_list()
    lst.parse("null,id=a")
    with pytest.raises(OptionError) as e:
        lst.parse("null,id=a")
    assert str(e.value) == "Duplicate ID 'a' for chardev"
    with pytest.raises(OptionError) as e:
        lst.parse("null,id=1a")
    assert str(e.value) == "Parameter 'id' expects an identifier"
    assert "starting with a letter" in e.value.hint


def test_merge_lists_collect_into_one_instance():
    smp = OptsList("smp-opts", implied_key="cpus", merge_lists=True, option="smp")
    smp.parse("2")
    smp.parse("sockets=2")
    assert len(smp.instances) == 1
    assert smp.instances[0].to_dict() == {"cpus": "2", "sockets": "2"}


def test_dotted_keys_build_nested_options():
    o = OptsList("drive").parse("file.driver=file,file.filename=a.img,driver=qcow2", store=False)
    assert o.to_tree() == {"file": {"driver": "file", "filename": "a.img"}, "driver": "qcow2"}


def test_list_keys_build_lists():
    tree, help_wanted = opts.keyval_parse("driver=gluster,server.0.host=a,server.1.host=b")
    assert tree == {"driver": "gluster", "server": [{"host": "a"}, {"host": "b"}]}
    assert not help_wanted


def test_list_keys_must_be_contiguous():
    with pytest.raises(OptionError) as e:
        opts.keyval_parse("server.0.host=a,server.2.host=b")
    assert "Parameter 'server.1' missing" == str(e.value)


def test_inconsistent_nesting_is_rejected():
    with pytest.raises(OptionError) as e:
        opts.keyval_parse("file=a,file.driver=b")
    assert "used inconsistently" in str(e.value)


def test_keyval_needs_equals_except_for_implied_key():
    tree, _ = opts.keyval_parse("qcow2,file.filename=x", implied_key="driver")
    assert tree == {"driver": "qcow2", "file": {"filename": "x"}}
    with pytest.raises(OptionError) as e:
        opts.keyval_parse("driver=qcow2,readonly")
    assert str(e.value) == "Expected '=' after parameter 'readonly'"


def test_keyval_help():
    _, help_wanted = opts.keyval_parse("memory-backend-ram,help", implied_key="qom-type")
    assert help_wanted


def test_json_filename_gives_the_same_tree_as_dotted_keys():
    a = opts.parse_json_filename(
        'json:{"driver": "qcow2", "file": {"driver": "file", "filename": "a.img"}}')
    b = opts.parse_json_filename('json:{"driver": "qcow2", "file.driver": "file", "file.filename": "a.img"}')
    c = OptsList("drive").parse("driver=qcow2,file.driver=file,file.filename=a.img", store=False).to_tree()
    assert a == b == c


@pytest.mark.parametrize("text,msg", [
    ("json:{", "Could not parse the JSON options"),
    ("json:[1]", "Invalid JSON object given"),
])
def test_bad_json_filenames(text, msg):
    with pytest.raises(OptionError) as e:
        opts.parse_json_filename(text)
    assert str(e.value) == msg


def test_flatten_inverts_crumple():
    tree = {"a": {"b": "1", "c": [{"d": "x"}, {"d": "y"}]}, "e": "2"}
    assert opts.crumple(opts.flatten(tree)) == tree


@given(st.text(alphabet="abc=,.xyz?", max_size=40))
def test_parser_never_crashes(text):
    """Any input either parses or raises OptionError: never another exception."""
    try:
        OptsList("drive").parse(text, warn_on_flag=False, store=False)
    except OptionError:
        pass
    try:
        opts.keyval_parse(text)
    except OptionError:
        pass


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_escaping_round_trips(value):
    o = OptsList("drive").parse("file=" + opts.escape_value(value), store=False)
    assert o.get("file") == value


@given(st.text(max_size=20))
def test_size_parser_only_raises_value_errors(text):
    try:
        assert opts.strtosz(text) >= 0
    except (ValueError, OverflowError):
        pass
