"""``simtool pin``: PIN status and operations, all under the PIN safety policy."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from apdu.card import Card, read_iccid
from apdu.errors import UsageError
from apdu.pin import PinOutcome, PinPolicy, validate_pin
from apdu.transport.base import CardTransport
from simtool.cardaccess import open_card
from simtool.config import Settings, station_options
from simtool.options import json_option, reader_option, trace_option
from simtool.output import render, table, to_jsonable

if TYPE_CHECKING:
    from rich.console import Console

_which_option = click.option(
    "--which",
    type=click.Choice(["pin1", "pin2"]),
    default="pin1",
    show_default=True,
    help="Which PIN.",
)
_force_option = click.option(
    "--force",
    is_flag=True,
    help="Allow an attempt that could block the PIN or kill the card (asks for confirmation "
    "when a person is at the terminal).",
)
_stdin_option = click.option(
    "--pin-stdin",
    "pin_stdin",
    is_flag=True,
    help="Read the secrets from standard input, one per line, in the order of the options "
    "(for scripts; nothing on the command line).",
)


class SecretSource:
    """Where the secrets of one command come from: an option, stdin, or a hidden prompt.

    Secrets typed by a person never go on the command line (they would land
    in the shell history and the process list): without an option and without
    ``--pin-stdin`` the station prompts with echo off.
    """

    def __init__(self, from_stdin: bool) -> None:
        self.from_stdin = from_stdin
        self._lines: list[str] | None = None

    def get(self, given: str | None, prompt: str) -> str:
        """The secret from the option, the next stdin line, or a hidden prompt."""
        if given is not None:
            return given
        if self.from_stdin:
            if self._lines is None:
                self._lines = [line.strip() for line in sys.stdin.read().splitlines()]
            if not self._lines:
                raise UsageError(f"--pin-stdin: no line left for the {prompt}")
            return self._lines.pop(0)
        if not sys.stdin.isatty():
            raise UsageError(f"no {prompt} given: use a prompt at a terminal, or --pin-stdin")
        value: str = click.prompt(prompt, hide_input=True)
        return value


def _confirmer() -> Callable[[str], bool] | None:
    # Only a person can confirm; a script that says --force has decided.
    if sys.stdin.isatty():
        return lambda question: click.confirm(question, default=False)
    return None


def _outcome_json(outcome: PinOutcome) -> dict[str, Any]:
    return {"ok": True, **to_jsonable(outcome)}


def _run(
    reader: str | None, trace_path: str | None, force: bool, action: Callable[[PinPolicy], Any]
) -> Any:
    with open_card(reader, trace_path=trace_path) as transport:
        policy = PinPolicy(Card(transport), force=force, confirm=_confirmer() if force else None)
        return action(policy)


def _print_outcome(outcome: PinOutcome, as_json: bool) -> None:
    render(_outcome_json(outcome), as_json, lambda c: c.print(outcome.message))


@click.group("pin")
def pin_group() -> None:
    """PIN status and operations that never block a card by accident.

    Counters are read before every attempt; an attempt that could leave a
    counter at 0 is refused unless --force is given.
    """


@pin_group.command("status")
@reader_option
@trace_option
@json_option
def status_command(reader: str | None, trace_path: str | None, as_json: bool) -> None:
    """State and retries of PIN1, PIN2 and their PUKs (no attempt spent)."""
    pins = _run(reader, trace_path, False, lambda policy: policy.status())
    data = {name: {"state": pin.state, **to_jsonable(pin)} for name, pin in pins.items()}
    if pins["puk1"].blocked:
        data["pin1"]["state"] = "dead"

    def human(console: Console) -> None:
        console.print(
            table(
                "PIN status",
                ["", "state", "retries"],
                [(name.upper(), value["state"], value["retries"]) for name, value in data.items()],
            )
        )

    render(data, as_json, human)


def _single_pin_command(name: str, summary: str, prompt: str) -> click.Command:
    """verify / enable / disable: one PIN value, one policy operation of the same name."""

    @pin_group.command(name, help=summary)
    @_which_option
    @click.option("--pin", default=None, help=f"The {prompt} (scripts only; people are prompted).")
    @_stdin_option
    @_force_option
    @reader_option
    @trace_option
    @json_option
    def command(
        which: str,
        pin: str | None,
        pin_stdin: bool,
        force: bool,
        reader: str | None,
        trace_path: str | None,
        as_json: bool,
    ) -> None:
        value = SecretSource(pin_stdin).get(pin, which.upper())
        outcome = _run(
            reader, trace_path, force, lambda policy: getattr(policy, name)(which, value)
        )
        _print_outcome(outcome, as_json)

    return command


verify_command = _single_pin_command("verify", "Verify a PIN.", "PIN")
enable_command = _single_pin_command("enable", "Enable PIN verification.", "PIN")
disable_command = _single_pin_command("disable", "Disable PIN verification.", "PIN")


@pin_group.command("change")
@_which_option
@click.option("--pin", default=None, help="The current PIN.")
@click.option("--new-pin", default=None, help="The new PIN.")
@_stdin_option
@_force_option
@reader_option
@trace_option
@json_option
def change_command(
    which: str,
    pin: str | None,
    new_pin: str | None,
    pin_stdin: bool,
    force: bool,
    reader: str | None,
    trace_path: str | None,
    as_json: bool,
) -> None:
    """Change a PIN."""
    source = SecretSource(pin_stdin)
    old = source.get(pin, f"current {which.upper()}")
    new = source.get(new_pin, f"new {which.upper()}")
    _print_outcome(_run(reader, trace_path, force, lambda p: p.change(which, old, new)), as_json)


@pin_group.command("unblock")
@_which_option
@click.option("--puk", default=None, help="The PUK (default: from the line database).")
@click.option("--new-pin", default=None, help="The new PIN.")
@_stdin_option
@_force_option
@reader_option
@trace_option
@json_option
@station_options
def unblock_command(
    which: str,
    puk: str | None,
    new_pin: str | None,
    pin_stdin: bool,
    force: bool,
    reader: str | None,
    trace_path: str | None,
    as_json: bool,
    settings: Settings,
) -> None:
    """Unblock a PIN with its PUK and set a new PIN."""
    # Every argument is checked before any secret is opened: a missing new PIN
    # must not cost a PUK reveal (audited) for nothing.
    if new_pin is None and not pin_stdin and not sys.stdin.isatty():
        raise UsageError(
            f"no new {which.upper()} given: use --new-pin, --pin-stdin, or a prompt at a terminal"
        )
    if new_pin is not None:
        validate_pin(new_pin, f"new {which.upper()}")
    source = SecretSource(pin_stdin)

    def action(policy: PinPolicy) -> PinOutcome:
        puk_value = puk
        known_card = False
        if puk_value is None and not pin_stdin:
            puk_value = stored_puk(policy.card.transport, which, settings)
            known_card = puk_value is not None
        puk_value = source.get(puk_value, f"PUK{which[3:]}")
        new = source.get(new_pin, f"new {which.upper()}")
        if not known_card:
            return policy.unblock(which, puk_value, new)
        # A card the line database knows: the PIN operation goes on its record.
        from provisioning.records import recorded_pin_operation

        iccid = read_iccid(policy.card.transport)
        with recorded_pin_operation(
            settings.database(), settings.actor(), iccid, "unblock", which
        ) as record:
            outcome = policy.unblock(which, puk_value, new)
            record(outcome.retries_before, outcome.retries_after)
        return outcome

    _print_outcome(_run(reader, trace_path, force, action), as_json)


def stored_puk(transport: CardTransport, which: str, settings: Settings) -> str | None:
    """The card's PUK from the line database, or None when no database knows the card.

    The lookup is audited ("reveal-secret") and the value is never shown. A
    SQLite database that does not exist yet is not created just to look.
    """
    from provisioning.database import database_url
    from provisioning.errors import NotFoundError
    from provisioning.records import reveal_secret

    url = database_url(settings.db)
    if url.get_backend_name() == "sqlite" and (not url.database or not Path(url.database).exists()):
        return None
    iccid = read_iccid(transport)
    try:
        value = reveal_secret(
            settings.database(),
            settings.keyring(),
            settings.actor(),
            iccid,
            "puk1" if which == "pin1" else "puk2",
        )
    except NotFoundError:
        return None
    click.echo(f"PUK{which[3:]} taken from the line database for card {iccid} (audited)", err=True)
    return value


@pin_group.command("ensure-default")
@click.option(
    "--pin", default=None, help="The card's current PIN1, if known, to change it back to 0000."
)
@_stdin_option
@_force_option
@reader_option
@trace_option
@json_option
def ensure_default_command(
    pin: str | None,
    pin_stdin: bool,
    force: bool,
    reader: str | None,
    trace_path: str | None,
    as_json: bool,
) -> None:
    """The warehouse check: leave the card with PIN1 = 0000, or say why it cannot be proven."""
    known = pin if pin is not None or not pin_stdin else SecretSource(True).get(None, "PIN1")
    result = _run(reader, trace_path, force, lambda p: p.ensure_default(known))
    render(
        {"ok": result.ok, **to_jsonable(result)},
        as_json,
        lambda c: c.print(f"{result.outcome}: {result.reason}"),
    )
    if not result.ok:
        raise SystemExit(7)
