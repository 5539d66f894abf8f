"""Identifiers of the warehouse: Luhn vectors, formats, and no stray exceptions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import ParseError
from provisioning.identifiers import (
    format_msisdn,
    luhn_check_digit,
    luhn_ok,
    luhn_ok_digits,
    parse_customer_id,
    parse_iccid,
    parse_imei,
    parse_imsi,
    parse_msisdn,
    parse_service_code,
)


@pytest.mark.parametrize(
    ("payload", "digit"),
    [
        ("7992739871", 3),  # the classic ISO/IEC 7812 worked example
        ("35693803564380", 9),  # docs/domain.md's IMEI 356938035643809
        ("898109000000000000", 4),  # the lab's first card 8981090000000000004
        ("0", 0),
    ],
)
def test_luhn_vectors(payload: str, digit: int) -> None:
    assert luhn_check_digit(payload) == digit
    assert luhn_ok(payload + str(digit))
    assert not luhn_ok(payload + str((digit + 1) % 10))


@given(st.text(alphabet="0123456789", min_size=1, max_size=30), st.integers(1, 9))
def test_luhn_detects_every_single_digit_error(payload: str, delta: int) -> None:
    number = payload + str(luhn_check_digit(payload))
    position = len(payload) - 1
    wrong = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    assert luhn_ok(number)
    assert not luhn_ok(wrong)


def test_iccid_rules() -> None:
    assert parse_iccid(" 8981090000000000004 ") == "8981090000000000004"
    with pytest.raises(ParseError, match="Luhn"):
        parse_iccid("8981090000000000005")
    with pytest.raises(ParseError, match="19 or 20"):
        parse_iccid("898109000000004")
    with pytest.raises(ParseError, match="8981"):
        parse_iccid("8944090000000000004"[:18] + str(luhn_check_digit("894409000000000000")))
    with pytest.raises(ParseError, match="digits"):
        parse_iccid("8981O90000000000004")


def test_twenty_digit_iccid() -> None:
    payload = "8981100000000000001"
    iccid = payload + str(luhn_check_digit(payload))
    assert len(iccid) == 20
    assert parse_iccid(iccid) == iccid


def test_imsi_rules() -> None:
    assert parse_imsi("440103000000001") == "440103000000001"
    assert parse_imsi("441200000000001") == "441200000000001"
    with pytest.raises(ParseError, match="MCC"):
        parse_imsi("001010000000001")
    with pytest.raises(ParseError, match="15 digits"):
        parse_imsi("44010300000001")


def test_imei_and_other_codes() -> None:
    assert parse_imei("356938035643809") == "356938035643809"
    with pytest.raises(ParseError, match="Luhn"):
        parse_imei("356938035643808")
    assert parse_msisdn("070-1234-5678") == "07012345678"
    assert format_msisdn("07012345678") == "070-1234-5678"
    with pytest.raises(ParseError):
        parse_msisdn("03-1234-5678")
    assert parse_service_code("hdd1234567") == "hdd1234567"
    with pytest.raises(ParseError):
        parse_service_code("hdu1234567")
    assert parse_customer_id("MA123") == "MA123"
    with pytest.raises(ParseError):
        parse_customer_id("MB123")


@given(st.text(max_size=40))
def test_parsers_raise_only_parse_error(text: str) -> None:
    for parse in (
        parse_iccid,
        parse_imsi,
        parse_imei,
        parse_msisdn,
        parse_service_code,
        parse_customer_id,
    ):
        try:
            result = parse(text)
        except ParseError:
            continue
        assert result.isascii() and result.strip() == result


@given(st.text(alphabet="0123456789", min_size=2, max_size=25))
def test_bulk_luhn_agrees(number: str) -> None:
    assert luhn_ok_digits(number) == luhn_ok(number)
