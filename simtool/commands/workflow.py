"""The warehouse workflows on the command line: provision, return, lost, reissue,
change-form-factor, suspend and resume.

Each command opens the reader (when it needs the card), calls one workflow of
:mod:`provisioning.workflows`, and prints the result; a refusal prints every
check made (``--json``: on stdout) and exits non-zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console

from apdu.errors import UsageError
from provisioning.devices import BundledModem, DeviceFacts, DeviceSession
from provisioning.errors import CheckFailedError
from provisioning.lifecycle import FormFactor, ReissueReason
from provisioning.reader import ReaderCard
from provisioning.workflows import (
    BindResult,
    LineActionResult,
    LineRef,
    change_form_factor,
    provision,
    reissue,
    release_device,
    report_lost,
    resume,
    return_card,
    suspend,
)
from simtool.cardaccess import open_card
from simtool.config import Settings, station_options
from simtool.options import json_option, reader_option, trace_option
from simtool.output import render, table, to_jsonable

F = TypeVar("F", bound=Callable[..., Any])

_FORM_FACTORS = [f.value for f in FormFactor]


def line_ref_options(func: F) -> F:
    """``--service-code`` / ``--msisdn`` / ``--iccid``: one of them names the line."""
    for option in reversed(
        (
            click.option("--service-code", default=None, help="The line's service code."),
            click.option("--msisdn", default=None, help="The line's phone number."),
            click.option("--iccid", default=None, help="The ICCID of the line's current card."),
        )
    ):
        func = option(func)
    return func


def _line_ref(service_code: str | None, msisdn: str | None, iccid: str | None) -> LineRef:
    return LineRef(service_code=service_code, msisdn=msisdn, iccid=iccid)


def print_line_action(result: LineActionResult, as_json: bool) -> None:
    """Print a line or card state change."""

    def human(console: Console) -> None:
        card = f"; card {result.iccid} {result.card_state}" if result.iccid else ""
        console.print(f"{result.action}: line {result.service_code} is {result.line_state}{card}")
        if result.note:
            console.print(result.note)

    render(result, as_json, human)


def _print_bind(result: BindResult, as_json: bool) -> None:
    def human(console: Console) -> None:
        console.print(
            table(
                f"{result.action} {result.service_code}: PASSED",
                ["check", "result", "detail"],
                [[c.name, "ok", c.detail] for c in result.checks],
            )
        )
        console.print(
            f"card {result.iccid} ({result.form_factor}) is now the card of line "
            f"{result.service_code} ({result.line_state})"
        )
        if result.old_iccid:
            console.print(
                f"old card {result.old_iccid} is {result.old_card_state}; fee: "
                f"{result.fee}; carried over: {result.carried_over}"
            )

    render({"passed": True, **to_jsonable(result)}, as_json, human)


@contextmanager
def _refusals_shown(as_json: bool) -> Iterator[None]:
    """On a refused check, show every check made, then let the error end the command.

    With ``--json`` the CLI's error handler prints the refusal (rule, checks).
    """
    try:
        yield
    except CheckFailedError as error:
        if not as_json:
            Console(stderr=True, highlight=False).print(
                table(
                    "REFUSED (nothing was written)",
                    ["check", "result", "detail"],
                    [[c.name, "ok" if c.passed else "FAILED", c.detail] for c in error.checks],
                )
            )
        raise


def _bind_card_in_reader(
    settings: Settings,
    reader: str | None,
    trace_path: str | None,
    as_json: bool,
    workflow: Callable[..., BindResult],
    **options: Any,
) -> None:
    """Run a workflow that binds the card in the reader to a line, and print the binding.

    provision, reissue and change-form-factor open the card, show refusals
    and print the result alike; ``options`` are the workflow's own keywords.
    """
    database = settings.database()
    with _refusals_shown(as_json), open_card(reader, trace_path=trace_path) as transport:
        result = workflow(
            database,
            settings.actor(),
            card=ReaderCard(transport),
            keyring=settings.keyring(),
            **options,
        )
    _print_bind(result, as_json)


def _device(
    imei: str | None,
    maker: str | None,
    model: str | None,
    firmware: str | None,
    apn_profile: str | None,
    modem: str | None,
) -> DeviceFacts | None:
    if imei is None:
        if any((maker, model, firmware)) or (apn_profile and not modem):
            raise UsageError("device details need --device-imei (or --modem)")
        return None
    if modem is not None:
        raise UsageError("give --modem (configured here) or --device-imei (by hand), not both")
    return DeviceFacts(
        imei=imei, maker=maker, model=model, firmware=firmware, apn_profile=apn_profile
    )


def _bundled_modem(
    port: str | None, dialect: str | None, apn_profile: str | None
) -> DeviceSession | None:
    if port is None:
        return None
    from modem.profiles import resolve_profile

    return BundledModem(port, resolve_profile(apn_profile), dialect=dialect)


@click.command("provision")
@reader_option
@click.option("--service-code", required=True, help="The pending line to bind the card to.")
@click.option(
    "--form-factor",
    default=None,
    type=click.Choice(_FORM_FACTORS),
    help="The form factor the order asks for (needed when the line's order names none).",
)
@click.option(
    "--scan",
    "scanned_iccid",
    default=None,
    metavar="ICCID",
    help="The ICCID scanned from the card's label; must match the chip.",
)
@click.option(
    "--modem",
    default=None,
    metavar="PORT",
    help="A bundled modem to configure (APN profile written, read back, proven) "
    "and register with the line.",
)
@click.option("--dialect", default=None, help="The modem's dialect (default: detect).")
@click.option(
    "--apn-profile",
    default=None,
    help="APN profile for --modem (default: ijmio), or the one set by hand.",
)
@click.option("--device-imei", default=None, help="IMEI of a bundled device set up by hand.")
@click.option("--device-maker", default=None, help="Its maker.")
@click.option("--device-model", default=None, help="Its model.")
@click.option("--device-firmware", default=None, help="Its firmware version.")
@trace_option
@station_options
@json_option
def provision_command(
    settings: Settings,
    reader: str | None,
    service_code: str,
    form_factor: str | None,
    scanned_iccid: str | None,
    modem: str | None,
    dialect: str | None,
    apn_profile: str | None,
    device_imei: str | None,
    device_maker: str | None,
    device_model: str | None,
    device_firmware: str | None,
    trace_path: str | None,
    as_json: bool,
) -> None:
    """Check the card in the reader and bind it to a line: every check passes or nothing
    is written."""
    device = _device(device_imei, device_maker, device_model, device_firmware, apn_profile, modem)
    bundled = _bundled_modem(modem, dialect, apn_profile)
    _bind_card_in_reader(
        settings,
        reader,
        trace_path,
        as_json,
        provision,
        service_code=service_code,
        form_factor=FormFactor(form_factor) if form_factor else None,
        scanned_iccid=scanned_iccid,
        device=device,
        bundled_modem=bundled,
    )


@click.command("reissue")
@reader_option
@click.option("--service-code", required=True, help="The line that gets a new card.")
@click.option(
    "--reason",
    required=True,
    type=click.Choice([r.value for r in ReissueReason]),
    help="faulty: the old card is judged faulty; lost: it was reported lost.",
)
@click.option(
    "--form-factor",
    type=click.Choice(_FORM_FACTORS),
    default=None,
    help="Form factor of the new card (default: the old card's).",
)
@click.option(
    "--scan",
    "scanned_iccid",
    default=None,
    metavar="ICCID",
    help="The ICCID scanned from the new card's label.",
)
@click.option(
    "--evidence",
    default=None,
    metavar="REPORT_ID",
    help="With --reason faulty: the diagnosis report (simtool diagnose) that judged the "
    "old card faulty; it must be in the audit trail.",
)
@trace_option
@station_options
@json_option
def reissue_command(
    settings: Settings,
    reader: str | None,
    service_code: str,
    reason: str,
    form_factor: str | None,
    scanned_iccid: str | None,
    evidence: str | None,
    trace_path: str | None,
    as_json: bool,
) -> None:
    """A new card for the same line and phone number (the reissue fee is recorded)."""
    _bind_card_in_reader(
        settings,
        reader,
        trace_path,
        as_json,
        reissue,
        service_code=service_code,
        reason=ReissueReason(reason),
        form_factor=FormFactor(form_factor) if form_factor else None,
        scanned_iccid=scanned_iccid,
        evidence=evidence,
    )


@click.command("change-form-factor")
@reader_option
@click.option("--service-code", required=True, help="The line whose card changes type.")
@click.option(
    "--form-factor", required=True, type=click.Choice(_FORM_FACTORS), help="The new form factor."
)
@click.option(
    "--scan",
    "scanned_iccid",
    default=None,
    metavar="ICCID",
    help="The ICCID scanned from the new card's label.",
)
@trace_option
@station_options
@json_option
def change_form_factor_command(
    settings: Settings,
    reader: str | None,
    service_code: str,
    form_factor: str,
    scanned_iccid: str | None,
    trace_path: str | None,
    as_json: bool,
) -> None:
    """Bind a card of another form factor; the old card stops working (final)."""
    _bind_card_in_reader(
        settings,
        reader,
        trace_path,
        as_json,
        change_form_factor,
        service_code=service_code,
        form_factor=FormFactor(form_factor),
        scanned_iccid=scanned_iccid,
    )


@click.command("return")
@reader_option
@click.option("--iccid", default=None, help="The returned card's ICCID (instead of a reader).")
@click.option(
    "--device-imei",
    default=None,
    help="A returned lent router (§13-2): it leaves its cancelled line and may ship again.",
)
@station_options
@json_option
def return_command(
    settings: Settings,
    reader: str | None,
    iccid: str | None,
    device_imei: str | None,
    as_json: bool,
) -> None:
    """Take a returned card in (a card once reported lost is flagged never-reuse), or a
    returned lent router (--device-imei)."""
    if device_imei is not None:
        if iccid is not None or reader is not None:
            raise UsageError("give --device-imei alone (a router), or a card")
        released = release_device(settings.database(), settings.actor(), device_imei)
        render(
            released,
            as_json,
            lambda c: c.print(
                f"device {released.imei} taken back from line {released.service_code}; "
                "it may ship again"
            ),
        )
        return
    database = settings.database()
    if iccid is not None:
        if reader is not None:
            raise UsageError("give --iccid or --reader, not both")
        result = return_card(database, settings.actor(), iccid=iccid)
    else:
        with open_card(reader) as transport:
            result = return_card(database, settings.actor(), card=ReaderCard(transport))

    def human(console: Console) -> None:
        console.print(
            f"card {result.iccid}: {result.previous_state} -> {result.state}; {result.disposition}"
        )
        if result.never_reuse:
            console.print("[bold]LOST-FOUND: NEVER REUSE - route to disposal[/bold]")

    render(result, as_json, human)


@click.command("lost")
@line_ref_options
@station_options
@json_option
def lost_command(
    settings: Settings,
    service_code: str | None,
    msisdn: str | None,
    iccid: str | None,
    as_json: bool,
) -> None:
    """The customer lost the card: suspend the line, mark the card lost for good."""
    print_line_action(
        report_lost(settings.database(), settings.actor(), _line_ref(service_code, msisdn, iccid)),
        as_json,
    )


@click.command("suspend")
@line_ref_options
@station_options
@json_option
def suspend_command(
    settings: Settings,
    service_code: str | None,
    msisdn: str | None,
    iccid: str | None,
    as_json: bool,
) -> None:
    """Suspend (中断) a line: its card stops working until resumed."""
    print_line_action(
        suspend(settings.database(), settings.actor(), _line_ref(service_code, msisdn, iccid)),
        as_json,
    )


@click.command("resume")
@line_ref_options
@station_options
@json_option
def resume_command(
    settings: Settings,
    service_code: str | None,
    msisdn: str | None,
    iccid: str | None,
    as_json: bool,
) -> None:
    """Resume a suspended line (a line whose card is lost resumes with its new card)."""
    print_line_action(
        resume(settings.database(), settings.actor(), _line_ref(service_code, msisdn, iccid)),
        as_json,
    )
