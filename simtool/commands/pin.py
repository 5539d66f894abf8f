"""``simtool pin``: PIN status and operations, all under the PIN safety policy."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from apdu.card import Card, read_iccid
from apdu.errors import PinPolicyError, SimtoolError, UsageError
from apdu.pin import PinOutcome, PinPolicy, validate_pin
from apdu.transport.base import CardTransport
from simtool.cardaccess import open_card
from simtool.config import Settings, station_options
from simtool.options import json_option, reader_option, trace_option
from simtool.output import render, table, to_jsonable

if TYPE_CHECKING:
    from rich.console import Console

    from provisioning.records import PinResult

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


F = TypeVar("F", bound=Callable[..., Any])


def _card_write_options(func: F) -> F:
    """The options every PIN-changing command shares, in the order ``--help`` lists them.

    One stack so that the commands that write to a card cannot drift apart
    in how secrets are read, how risky attempts are allowed and where they go.
    """
    # Applied innermost first, as the decorator lines they replace were.
    for option in (
        station_options,
        json_option,
        trace_option,
        reader_option,
        _force_option,
        _stdin_option,
    ):
        func = option(func)
    return func


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


def _outcome_json(outcome: PinOutcome, record: PinRecord) -> dict[str, Any]:
    return {"ok": True, **to_jsonable(outcome), "recorded": record.recorded}


def _run(
    reader: str | None, trace_path: str | None, force: bool, action: Callable[[PinPolicy], Any]
) -> Any:
    with open_card(reader, trace_path=trace_path) as transport:
        policy = PinPolicy(Card(transport), force=force, confirm=_confirmer() if force else None)
        return action(policy)


def line_database_exists(db: str) -> bool:
    """True when ``--db`` names a line database that may exist: a SQLite file that is
    there, or a server URL (only connecting tells).

    Answered without importing SQLAlchemy, so that a card command at a desk
    with no line database stays as fast as before.
    """
    text = db.strip()
    if "://" not in text:
        return bool(text) and Path(text).expanduser().is_file()
    from provisioning.database import database_url

    try:
        url = database_url(text)
    except SimtoolError:
        return False
    if url.get_backend_name() == "sqlite":
        path = url.database
        return bool(path) and path is not None and Path(path).expanduser().is_file()
    return True


class PinRecord:
    """The audit record of PIN operations on the card in the reader, when the line
    database knows the card.

    The database is opened only when one exists, after the card operation,
    and is never created. A database that cannot be opened or written does
    not undo or fail the card operation: the operator is told on stderr (the
    exit code stays the card operation's, since the card has changed and a
    retry would spend another attempt) and the JSON says ``"recorded": false``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.iccid: str | None = None
        self.recorded = False

    def find_card(self, transport: CardTransport) -> None:
        """Read the card's ICCID when a line database may know it (before any attempt)."""
        if not line_database_exists(self.settings.db):
            return
        try:
            self.iccid = read_iccid(transport)
        except SimtoolError:
            # A card without a readable ICCID cannot be on anyone's record;
            # the PIN operation itself decides what its card can do.
            self.iccid = None

    def write(
        self,
        operation: str,
        which: str,
        result: PinResult,
        before: int | None,
        after: int | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record the operation if the database knows the card; warn when it cannot."""
        if self.iccid is None:
            return
        from sqlalchemy.exc import SQLAlchemyError

        from provisioning.records import record_pin_operation

        try:
            database = self.settings.database()
            try:
                self.recorded = record_pin_operation(
                    database,
                    self.settings.actor(),
                    self.iccid,
                    operation,
                    which,
                    result,
                    retries_before=before,
                    retries_after=after,
                    details=details,
                )
            finally:
                database.dispose()
        except (SimtoolError, SQLAlchemyError, OSError) as error:
            click.echo(
                f"warning: PIN {operation} {result} on card {self.iccid}, but not recorded "
                f"in the line database: {str(error).splitlines()[0] if str(error) else error!r}",
                err=True,
            )

    def failure(self, operation: str, which: str, error: SimtoolError) -> None:
        """Record a refused (policy) or failed (card) attempt."""
        result: PinResult = "refused" if isinstance(error, PinPolicyError) else "failed"
        self.write(
            operation,
            which,
            result,
            getattr(error, "retries_before", None),
            getattr(error, "retries_after", None),
            {"error": type(error).__name__},
        )


def _run_recorded(
    settings: Settings,
    operation: str,
    which: str,
    reader: str | None,
    trace_path: str | None,
    force: bool,
    action: Callable[[PinPolicy, PinRecord], Any],
) -> tuple[Any, PinRecord]:
    """Run a PIN operation on the card; a refusal or failure goes on its record first.

    A success is recorded by the caller, which knows what "done" means for it.
    """
    record = PinRecord(settings)
    failure: SimtoolError | None = None
    with open_card(reader, trace_path=trace_path) as transport:
        record.find_card(transport)
        policy = PinPolicy(Card(transport), force=force, confirm=_confirmer() if force else None)
        try:
            return action(policy, record), record
        except SimtoolError as error:
            failure = error
    # Outside the card session: the database write does not hold the reader.
    record.failure(operation, which, failure)
    raise failure


def _finish(outcome: PinOutcome, record: PinRecord, as_json: bool) -> None:
    """Record a successful operation, then print it."""
    record.write(
        outcome.operation, outcome.which, "done", outcome.retries_before, outcome.retries_after
    )
    render(_outcome_json(outcome, record), as_json, lambda c: c.print(outcome.message))


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
    @_card_write_options
    def command(
        which: str,
        pin: str | None,
        pin_stdin: bool,
        force: bool,
        reader: str | None,
        trace_path: str | None,
        as_json: bool,
        settings: Settings,
    ) -> None:
        value = SecretSource(pin_stdin).get(pin, which.upper())
        outcome, record = _run_recorded(
            settings,
            name,
            which,
            reader,
            trace_path,
            force,
            lambda policy, _record: getattr(policy, name)(which, value),
        )
        _finish(outcome, record, as_json)

    return command


verify_command = _single_pin_command("verify", "Verify a PIN.", "PIN")
enable_command = _single_pin_command("enable", "Enable PIN verification.", "PIN")
disable_command = _single_pin_command("disable", "Disable PIN verification.", "PIN")


@pin_group.command("change")
@_which_option
@click.option("--pin", default=None, help="The current PIN.")
@click.option("--new-pin", default=None, help="The new PIN.")
@_card_write_options
def change_command(
    which: str,
    pin: str | None,
    new_pin: str | None,
    pin_stdin: bool,
    force: bool,
    reader: str | None,
    trace_path: str | None,
    as_json: bool,
    settings: Settings,
) -> None:
    """Change a PIN."""
    source = SecretSource(pin_stdin)
    old = source.get(pin, f"current {which.upper()}")
    new = source.get(new_pin, f"new {which.upper()}")
    outcome, record = _run_recorded(
        settings,
        "change",
        which,
        reader,
        trace_path,
        force,
        lambda p, _r: p.change(which, old, new),
    )
    _finish(outcome, record, as_json)


@pin_group.command("unblock")
@_which_option
@click.option("--puk", default=None, help="The PUK (default: from the line database).")
@click.option("--new-pin", default=None, help="The new PIN.")
@_card_write_options
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

    def action(policy: PinPolicy, record: PinRecord) -> PinOutcome:
        puk_value = puk
        if puk_value is None and not pin_stdin and record.iccid is not None:
            puk_value = stored_puk(record.iccid, which, settings)
        puk_value = source.get(puk_value, f"PUK{which[3:]}")
        new = source.get(new_pin, f"new {which.upper()}")
        return policy.unblock(which, puk_value, new)

    outcome, record = _run_recorded(settings, "unblock", which, reader, trace_path, force, action)
    _finish(outcome, record, as_json)


def stored_puk(iccid: str, which: str, settings: Settings) -> str | None:
    """The card's PUK from the line database, or None when the database does not know the card.

    Called only when a line database exists (:class:`PinRecord` found one and
    read the ICCID). The lookup is audited ("reveal-secret") and the value is
    never shown.
    """
    from provisioning.errors import NotFoundError
    from provisioning.records import reveal_secret

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
@_card_write_options
def ensure_default_command(
    pin: str | None,
    pin_stdin: bool,
    force: bool,
    reader: str | None,
    trace_path: str | None,
    as_json: bool,
    settings: Settings,
) -> None:
    """The warehouse check: leave the card with PIN1 = 0000, or say why it cannot be proven."""
    known = pin if pin is not None or not pin_stdin else SecretSource(True).get(None, "PIN1")
    result, record = _run_recorded(
        settings,
        "ensure-default",
        "pin1",
        reader,
        trace_path,
        force,
        lambda p, _r: p.ensure_default(known),
    )
    # "cannot-prove" is the card failing the check (exit 7), not a refusal of
    # the station's policy: nothing is proven about its PIN1.
    record.write(
        "ensure-default",
        "pin1",
        "done" if result.ok else "failed",
        result.retries_before,
        result.retries_after,
        {"outcome": result.outcome},
    )
    render(
        {"ok": result.ok, **to_jsonable(result), "recorded": record.recorded},
        as_json,
        lambda c: c.print(f"{result.outcome}: {result.reason}"),
    )
    if not result.ok:
        raise SystemExit(7)
