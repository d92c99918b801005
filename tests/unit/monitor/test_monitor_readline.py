from pyqemu.monitor.readline import ReadLine

# Bytes real QEMU 7.2 echoes while "info version\r" arrives on a telnet monitor.
QEMU_ECHO = (
    "i\x1b[K\x1b[Din\x1b[K\x1b[D\x1b[Dinf\x1b[K\x1b[D\x1b[D\x1b[Dinfo\x1b[K\x1b[D\x1b[D\x1b[D\x1b[Dinfo "
    "\x1b[K\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dinfo v\x1b[K\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dinfo ve\x1b[K"
    "\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dinfo ver\x1b[K\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D"
    "\x1b[Dinfo vers\x1b[K\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dinfo versi\x1b[K\x1b[D"
    "\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dinfo versio\x1b[K\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D"
    "\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dinfo version\x1b[K\r\n")


def make(completions=()):
    out, lines = [], []
    # The monitor's printf turns "\n" into CR LF; do the same here.
    rl = ReadLine(lambda t: out.append(t.replace("\n", "\r\n")), lines.append,
                  lambda head: list(completions))
    return rl, out, lines


def test_echo_is_byte_identical_to_qemu():
    rl, out, lines = make()
    rl.feed("info version\r")
    assert "".join(out) == QEMU_ECHO
    assert lines == ["info version"]


def test_editing_keys():
    rl, out, lines = make()
    rl.feed("helo\x1b[Dl\r")          # left arrow, insert
    rl.feed("abc\x01X\x05Y\r")        # C-a home, C-e end
    rl.feed("one two\x17three\r")     # C-w deletes a word
    rl.feed("xy\x7f\x08z\r")          # DEL and backspace
    rl.feed("abc\x1b[H\x1b[3~\r")     # Home, Delete
    assert lines == ["hello", "XabcY", "one three", "z", "bc"]


def test_history_navigation_and_dedup():
    rl, out, lines = make()
    rl.feed("a\rb\ra\r")
    assert rl.history == ["b", "a"]
    rl.feed("\x1b[A\x1b[A\r")         # up twice: "b"
    assert lines[-1] == "b"
    rl.feed("\x1b[A\x1b[B\x1b[B\r")   # up, down, down: back to an empty line
    assert lines[-1] == ""
    assert rl.history == ["a", "b"]


def test_completion_unique_and_multiple():
    rl, out, lines = make(["info", "quit", "qom-list", "qom-set"])
    rl.feed("in\t")
    assert rl.buf == "info "
    rl.buf, rl.index = "", 0
    out.clear()
    rl.prompt = "(qemu) "
    rl.feed("qo\t")
    assert rl.buf == "qom-"
    text = "".join(out)
    assert "\r\nqom-list  qom-set   \r\n(qemu) " in text
