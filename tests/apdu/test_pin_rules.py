"""The pure rules of the PIN safety policy (no card involved)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import PinPolicyError, UsageError
from apdu.pin import check_attempt, validate_pin, validate_puk


@pytest.mark.parametrize("pin", ["0000", "1234", "12345678", "0000000"])
def test_valid_pins(pin: str) -> None:
    validate_pin(pin)


@pytest.mark.parametrize("pin", ["", "123", "123456789", "12a4", " 1234", "1234\n", "１２３４"])
def test_invalid_pins_are_refused_without_echo(pin: str) -> None:
    with pytest.raises(UsageError) as info:
        validate_pin(pin)
    if pin.strip():
        assert pin.strip() not in str(info.value)


@pytest.mark.parametrize("puk", ["1234567", "123456789", "abcdefgh", ""])
def test_invalid_puks(puk: str) -> None:
    with pytest.raises(UsageError):
        validate_puk(puk)


def test_attempt_allowed_while_two_or_more_retries() -> None:
    check_attempt("pin1", 3, force=False)
    check_attempt("pin1", 2, force=False)
    check_attempt("puk1", 10, force=False)


@pytest.mark.parametrize("which", ["pin1", "pin2", "puk1", "puk2"])
def test_last_attempt_refused_without_force(which: str) -> None:
    with pytest.raises(PinPolicyError) as info:
        check_attempt(which, 1, force=False)
    assert info.value.rule == "last-attempt"
    assert info.value.retries_before == info.value.retries_after == 1
    assert "PIN policy" in str(info.value)


def test_last_attempt_allowed_with_force_and_confirmation() -> None:
    asked: list[str] = []

    def confirm(question: str) -> bool:
        asked.append(question)
        return True

    check_attempt("pin1", 1, force=True, confirm=confirm)
    assert asked and "1 retry" in asked[0]


def test_forced_attempt_not_confirmed_is_refused() -> None:
    with pytest.raises(PinPolicyError) as info:
        check_attempt("puk1", 1, force=True, confirm=lambda q: False)
    assert info.value.rule == "not-confirmed"


def test_blocked_counter_is_refused_even_with_force() -> None:
    with pytest.raises(PinPolicyError) as info:
        check_attempt("pin1", 0, force=True)
    assert info.value.rule == "blocked"


def test_unknown_counter_needs_force() -> None:
    with pytest.raises(PinPolicyError) as info:
        check_attempt("pin1", None, force=False)
    assert info.value.rule == "counter-unknown"
    check_attempt("pin1", None, force=True)


@given(st.integers(min_value=0, max_value=15), st.booleans())
def test_an_allowed_unforced_attempt_never_reaches_zero(retries: int, force: bool) -> None:
    # Whatever the counter, an attempt allowed without force leaves at least
    # one retry even when the value sent is wrong.
    try:
        check_attempt("pin1", retries, force=False)
    except PinPolicyError:
        return
    assert retries - 1 >= 1
