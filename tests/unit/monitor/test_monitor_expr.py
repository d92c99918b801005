import pytest

from pyqemu.monitor import expr
from pyqemu.monitor.expr import ExprError, eval_expr

# Values printed by real QEMU 7.2's "p EXPR" (as unsigned 64-bit).
QEMU_VALUES = [
    ("1+2*3", 7), ("0x7fffffffffffffff*2", 0xfffffffffffffffe), ("-1", 0xffffffffffffffff),
    ("~0", 0xffffffffffffffff), ("10%3", 1), ("5|2&3", 3), ("2*3+4", 10), ("'a'", 0x61),
    ("1 +  2", 3), ("255", 255), ("010", 8), ("0x10", 16), ("(1+2)*3", 9), ("-7/2", 0xfffffffffffffffd),
    ("-7%2", (-1) & expr.MASK), ("2*3|1", 7), ("6^3", 5), ("2*3|4", 6), ("3|4+1", 8),
    ("6&3*2", 6), ("8-2|1", 5), ("2*3&2", 2), ("7&3+1", 4), ("1+6&3", 3),
]


@pytest.mark.parametrize("text, value", QEMU_VALUES)
def test_values_match_qemu(text, value):
    assert eval_expr(text) == value


@pytest.mark.parametrize("text, msg", [
    ("1/0", "division by zero"), ("(1", "')' expected"), ("$pc", "unknown register"),
    ("99999999999999999999", "number too large"), ("abc", "invalid char 'a' in expression"),
    ("1+", "unexpected end of expression"), ("", "unexpected end of expression"),
])
def test_errors_match_qemu(text, msg, monkeypatch):
    # no CPU: a PC machine built by an earlier test of the session leaves its hook
    monkeypatch.setattr(expr, "_register_hook", None)
    with pytest.raises(ExprError) as e:
        eval_expr(text)
    assert e.value.msg == msg


def test_register_hook():
    expr.set_register_hook(lambda name: {"eax": 5, "pc": 0x1000}.get(name))
    try:
        assert eval_expr("$eax*2+$pc") == 0x100a
        with pytest.raises(ExprError, match="unknown register"):
            eval_expr("$nope")
    finally:
        expr.set_register_hook(None)
