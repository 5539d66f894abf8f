"""Chained command lines (V.250 ``AT+CGMI;+CGMM``): splitting answers, falling back.

Pure logic with a scripted runner; the simulator tests cover the same on a pty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from modem.channel import AtCommand, AtResponse, at
from modem.codes import FinalResult
from modem.errors import AtCommandError
from modem.modem import (
    chain_command,
    chaining_refused,
    forget_chaining_refusals,
    run_batch,
    split_answer,
)

OK = FinalResult("OK", "ok")


class FakeChannel:
    """Only what chain_command reads from a channel."""

    default_timeout = 5.0


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    forget_chaining_refusals()
    yield
    forget_chaining_refusals()


def test_chain_line_prefixes_and_deadline() -> None:
    commands = [at("AT+CPIN?"), at("AT+CGDCONT?"), at("AT+CGATT=1", prefix=False)]
    line = chain_command(FakeChannel(), commands)  # type: ignore[arg-type]
    assert line.text == "AT+CPIN?;+CGDCONT?;+CGATT=1"
    assert line.prefix == "+CPIN:" and line.also == ("+CGDCONT:",)
    assert line.timeout == 5.0 + 5.0 + 140.0  # AT+CGATT= has its long deadline


def test_split_prefixed_and_free_text_answers() -> None:
    commands = [
        at("ATE0", prefix=False),
        at("AT+CGMI", prefix="+CGMI:", free_text=True),
        at("AT+CGMM", prefix="+CGMM:", free_text=True),
        at("AT+CGSN", prefix="+CGSN:", free_text=True),
    ]
    assert split_answer(commands, ["Quectel", "+CGMM: EC25", "866758041234560"]) == [
        [],
        ["Quectel"],
        ["+CGMM: EC25"],
        ["866758041234560"],
    ]
    # Two bare lines for one free-text command: cannot be told apart.
    assert split_answer(commands, ["Quectel", "EC25", "rev", "866758041234560"]) is None


def _runner(
    script: dict[str, list[str] | str],
) -> tuple[list[str], Callable[[AtCommand], AtResponse]]:
    sent: list[str] = []

    def run(command: AtCommand) -> AtResponse:
        sent.append(command.text)
        answer = script[command.text]
        if isinstance(answer, str):
            raise AtCommandError(command.shown, (), answer)
        return AtResponse(command.shown, tuple(answer), OK, 0.01)

    return sent, run


def test_refused_chain_falls_back_and_is_remembered() -> None:
    notes: list[str] = []
    sent, run = _runner(
        {"AT+CPIN?;+CGATT?": "ERROR", "AT+CPIN?": ["+CPIN: READY"], "AT+CGATT?": ["+CGATT: 1"]}
    )
    commands = [at("AT+CPIN?"), at("AT+CGATT?")]
    results = run_batch(FakeChannel(), commands, run, key="dialect:x", note=notes.append)  # type: ignore[arg-type]
    assert [r.lines for r in results if isinstance(r, AtResponse)] == [
        ("+CPIN: READY",),
        ("+CGATT: 1",),
    ]
    assert chaining_refused("dialect:x") and notes
    sent.clear()
    run_batch(FakeChannel(), commands, run, key="dialect:x", note=notes.append)  # type: ignore[arg-type]
    assert sent == ["AT+CPIN?", "AT+CGATT?"]  # no second chained try


def test_a_failing_command_is_not_a_refusal_to_chain() -> None:
    _, run = _runner(
        {
            "AT+CPIN?;+CGATT?": "+CME ERROR: 10",
            "AT+CPIN?": "+CME ERROR: 10",
            "AT+CGATT?": ["+CGATT: 0"],
        }
    )
    results = run_batch(
        FakeChannel(),  # type: ignore[arg-type]
        [at("AT+CPIN?"), at("AT+CGATT?")],
        run,
        key="dialect:y",
        note=lambda _: None,
    )
    assert isinstance(results[0], AtCommandError) and isinstance(results[1], AtResponse)
    assert not chaining_refused("dialect:y")


def test_writes_stop_at_the_first_failure() -> None:
    sent, run = _runner({"AT+A=1;+B=1": "ERROR", "AT+A=1": "ERROR", "AT+B=1": []})
    results = run_batch(
        FakeChannel(),  # type: ignore[arg-type]
        [at("AT+A=1", prefix=False), at("AT+B=1", prefix=False)],
        run,
        key="dialect:z",
        note=lambda _: None,
        stop_at_error=True,
    )
    assert len(results) == 1 and sent == ["AT+A=1;+B=1", "AT+A=1"]
