"""Final result codes: V.250 codes, +CME ERROR and +CMS ERROR in both forms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modem.codes import CME_ERRORS, classify_final


@pytest.mark.parametrize(
    ("line", "kind", "code", "text"),
    [
        ("OK", "ok", None, None),
        ("ERROR", "error", None, "ERROR"),
        ("NO CARRIER", "error", None, "NO CARRIER"),
        ("BUSY", "error", None, "BUSY"),
        ("NO ANSWER", "error", None, "NO ANSWER"),
        ("NO DIALTONE", "error", None, "NO DIALTONE"),
        ("CONNECT 150000000", "connect", None, None),
        # TS 27.007 clause 9.2.1: the same error as a number (CMEE=1) and as text (CMEE=2).
        ("+CME ERROR: 10", "cme", 10, "SIM not inserted"),
        ("+CME ERROR: SIM not inserted", "cme", 10, "SIM not inserted"),
        ("+CME ERROR: 16", "cme", 16, "incorrect password"),
        ("+CME ERROR: incorrect password", "cme", 16, "incorrect password"),
        ("+CME ERROR: SIM PIN required", "cme", 11, "SIM PIN required"),
        ("+CME ERROR: 149", "cme", 149, "PDP authentication failure"),
        # Vendors quote or case the text differently; the number is still found.
        ('+CME ERROR: "operation not allowed"', "cme", 3, "operation not allowed"),
        ("+CME ERROR: Operation Not Supported", "cme", 4, "Operation Not Supported"),
        # An unknown text keeps its words and has no number.
        ("+CME ERROR: vendor specific trouble", "cme", None, "vendor specific trouble"),
        # TS 27.005 clause 3.2.5.
        ("+CMS ERROR: 330", "cms", 330, "SMSC address unknown"),
        ("+CMS ERROR: SIM busy", "cms", 314, "SIM busy"),
    ],
)
def test_final_result_codes(line: str, kind: str, code: int | None, text: str | None) -> None:
    result = classify_final(line)
    assert result is not None
    assert (result.kind, result.code, result.text) == (kind, code, text)
    assert result.ok == (kind == "ok")


@pytest.mark.parametrize("line", ["+CPIN: READY", "RDY", "OKAY", "+CME ERRORS", "", "ok then"])
def test_other_lines_are_not_final(line: str) -> None:
    assert classify_final(line) is None


def test_every_numbered_cme_text_maps_back_to_its_number() -> None:
    for code, text in CME_ERRORS.items():
        result = classify_final(f"+CME ERROR: {text}")
        assert result is not None and result.code == code


@given(st.text(max_size=80))
def test_classify_never_raises(line: str) -> None:
    result = classify_final(line)
    assert result is None or result.line == line.strip()
