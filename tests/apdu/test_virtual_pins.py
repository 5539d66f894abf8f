"""The PIN state machine alone (TS 102 221 §11.1.9-11.1.13), without APDUs."""

from __future__ import annotations

from apdu.virtual.pins import SecretCode, parse_new_pin, pin_block


def pin1(retries: int = 3, puk_retries: int = 10) -> SecretCode:
    return SecretCode(0x01, "0000", retries, True, "12345678", puk_retries, can_disable=True)


GOOD = pin_block("0000")
BAD = pin_block("9999")
PUK = pin_block("12345678")


def test_pin_block_pads_with_ff() -> None:
    assert pin_block("1234") == b"1234\xff\xff\xff\xff"
    assert parse_new_pin(b"1234\xff\xff\xff\xff") == "1234"
    assert parse_new_pin(b"123\xff\xff\xff\xff\xff") is None
    assert parse_new_pin(b"12a4\xff\xff\xff\xff") is None
    assert parse_new_pin(b"12345678") == "12345678"


def test_query_spends_nothing_whatever_the_state() -> None:
    pin = pin1()
    for _ in range(5):
        assert pin.verify(None) == 0x63C3
    pin.verify(GOOD)
    assert pin.verify(None) == 0x9000  # verified: "verification not required"
    pin.disable(GOOD)
    assert pin.verify(None) == 0x63C3  # disabled: the counter, per §11.1.9.1.2
    assert pin.retries == 3


def test_three_wrong_block_then_6983() -> None:
    pin = pin1()
    assert [pin.verify(BAD) for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert pin.blocked and not pin.dead
    assert pin.verify(GOOD) == 0x6983
    assert pin.verify(None) == 0x63C0


def test_correct_pin_resets_counter() -> None:
    pin = pin1()
    pin.verify(BAD)
    pin.verify(BAD)
    assert pin.verify(GOOD) == 0x9000
    assert pin.retries == 3 and pin.verified


def test_unblock_sets_new_pin_and_resets_both_counters() -> None:
    pin = pin1(retries=0, puk_retries=7)
    assert pin.unblock(None) == 0x63C7
    assert pin.unblock(pin_block("11111111") + pin_block("4321")) == 0x63C6
    assert pin.unblock(PUK + pin_block("4321")) == 0x9000
    assert (pin.value, pin.retries, pin.puk_retries, pin.verified) == ("4321", 3, 10, True)


def test_ten_wrong_puk_kill_the_pin() -> None:
    pin = pin1(retries=0)
    answers = [pin.unblock(BAD + GOOD) for _ in range(10)]
    assert answers == [0x63C0 | n for n in range(9, -1, -1)]
    assert pin.dead
    assert pin.unblock(PUK + GOOD) == 0x6983
    assert pin.verify(GOOD) == 0x6983
    assert pin.change(GOOD + GOOD) == 0x6983
    assert pin.unblock(None) == 0x63C0


def test_dead_puk_with_live_pin_still_verifies() -> None:
    pin = pin1(retries=3, puk_retries=0)
    assert not pin.dead
    assert pin.verify(GOOD) == 0x9000


def test_disable_and_enable_need_the_pin_and_count_attempts() -> None:
    pin = pin1()
    assert pin.disable(BAD) == 0x63C2
    assert pin.disable(GOOD) == 0x9000
    assert not pin.enabled and pin.satisfied and pin.retries == 3
    assert pin.verify(GOOD) == 0x6984  # a disabled PIN cannot be verified
    assert pin.disable(GOOD) == 0x6984
    assert pin.enable(BAD) == 0x63C2
    assert pin.enable(GOOD) == 0x9000
    assert pin.enabled and pin.enable(GOOD) == 0x6985


def test_change_pin() -> None:
    pin = pin1()
    assert pin.change(BAD + pin_block("5678")) == 0x63C2
    assert pin.change(GOOD + pin_block("56")) == 0x6A80
    assert pin.retries == 2, "a malformed new PIN must not spend an attempt"
    assert pin.change(GOOD + pin_block("5678")) == 0x9000
    assert pin.value == "5678" and pin.retries == 3


def test_lengths_and_non_disableable_codes() -> None:
    pin = pin1()
    assert pin.verify(b"0000") == 0x6700
    assert pin.unblock(PUK) == 0x6700
    assert pin.change(GOOD) == 0x6700
    adm = SecretCode(0x0A, "12345678", 10, True, None, 0, max_retries=10, max_puk_retries=0)
    assert adm.disable(pin_block("12345678")) == 0x6985
    assert adm.unblock(None) == 0x6985
    assert adm.verify(None) == 0x63CA


def test_repr_hides_values() -> None:
    text = repr(pin1())
    assert "0000" not in text and "12345678" not in text
