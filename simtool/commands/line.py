"""``simtool line``: the lines to provision (add, import, update, cancel)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from provisioning.lifecycle import (
    ActivationTrigger,
    ContractType,
    FormFactor,
    FunctionClass,
    NetworkType,
)
from provisioning.lines import LineSpec, add_line, import_lines, update_line
from provisioning.workflows import LineRef, cancel_line
from simtool.commands.workflow import line_ref_options, print_line_action
from simtool.config import Settings, station_options
from simtool.options import json_option
from simtool.output import render

_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


@click.group("line")
def line_group() -> None:
    """Lines (回線): service code, phone number, customer, type and function."""


@line_group.command("add")
@click.option("--service-code", required=True, help="The line's service code (hdd...).")
@click.option("--msisdn", default=None, help="The line's phone number (070-XXXX-XXXX).")
@click.option("--customer", required=True, help="The customer's mioID (MA...).")
@click.option(
    "--type",
    "network_type",
    required=True,
    type=click.Choice([t.value for t in NetworkType]),
    help="Network type.",
)
@click.option(
    "--function",
    "function_class",
    required=True,
    type=click.Choice([f.value for f in FunctionClass]),
    help="Function class.",
)
@click.option(
    "--identity-verified",
    is_flag=True,
    help="The customer's identity check is recorded (required for voice).",
)
@click.option(
    "--contract",
    type=click.Choice([c.value for c in ContractType]),
    default=None,
    help="Type I: monthly or prepaid.",
)
@click.option(
    "--activation",
    type=click.Choice([a.value for a in ActivationTrigger]),
    default=None,
    help="Type I: active from first attach, or from a chosen date.",
)
@click.option("--activation-date", type=_DATE, default=None, help="Type I manual activation.")
@click.option(
    "--delivered-on",
    type=_DATE,
    default=None,
    help="When the card arrived at the customer's address.",
)
@click.option(
    "--form-factor",
    type=click.Choice([f.value for f in FormFactor]),
    default=None,
    help="The SIM size the order asks for (checked at provisioning; a multi-cut card "
    "serves any size its type allows). Default: given at provisioning.",
)
@station_options
@json_option
def add_command(
    settings: Settings,
    service_code: str,
    msisdn: str | None,
    customer: str,
    network_type: str,
    function_class: str,
    identity_verified: bool,
    contract: str | None,
    activation: str | None,
    activation_date: datetime | None,
    delivered_on: datetime | None,
    form_factor: str | None,
    as_json: bool,
) -> None:
    """Add one line, pending its first card."""
    spec = LineSpec.parse(
        service_code=service_code,
        msisdn=msisdn,
        customer=customer,
        network_type=network_type,
        function_class=function_class,
        identity_verified=identity_verified,
        contract_type=contract,
        activation_trigger=activation,
        activation_date=_day(activation_date),
        delivered_on=_day(delivered_on),
        form_factor=form_factor,
    )
    added = add_line(settings.database(), settings.actor(), spec)
    render(added, as_json, lambda c: c.print(f"line {added.service_code} added ({added.state})"))


@line_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@station_options
@json_option
def import_command(settings: Settings, file: Path, as_json: bool) -> None:
    """Add the lines of a CSV file, all or none (SERVICE_CODE, MSISDN, CUSTOMER, TYPE, FUNCTION,
    optionally IDENTITY_VERIFIED, CONTRACT, ACTIVATION, ACTIVATION_DATE, DELIVERED_ON,
    FORM_FACTOR)."""
    result = import_lines(settings.database(), settings.actor(), file)
    render(
        result,
        as_json,
        lambda c: c.print(
            f"{result.added} lines added, {result.unchanged} already there unchanged"
        ),
    )


@line_group.command("update")
@click.option("--service-code", required=True, help="The line's service code.")
@click.option("--identity-verified", is_flag=True, help="Record the identity check.")
@click.option(
    "--delivered-on",
    type=_DATE,
    default=None,
    help="When the card arrived at the customer's address.",
)
@click.option("--activation-date", type=_DATE, default=None, help="Type I activation date.")
@station_options
@json_option
def update_command(
    settings: Settings,
    service_code: str,
    identity_verified: bool,
    delivered_on: datetime | None,
    activation_date: datetime | None,
    as_json: bool,
) -> None:
    """Record a line's identity check, delivery date or activation date."""
    updated = update_line(
        settings.database(),
        settings.actor(),
        service_code,
        identity_verified=identity_verified or None,
        delivered_on=_day(delivered_on),
        activation_date=_day(activation_date),
    )
    render(
        updated,
        as_json,
        lambda c: c.print(
            f"line {service_code}: "
            + (", ".join(f"{k} {v}" for k, v in updated.changed.items()) or "nothing changed")
        ),
    )


@line_group.command("cancel")
@line_ref_options
@station_options
@json_option
def cancel_command(
    settings: Settings,
    service_code: str | None,
    msisdn: str | None,
    iccid: str | None,
    as_json: bool,
) -> None:
    """Cancel a line; its card is then awaited back (types D, K) or retired (type I)."""
    result = cancel_line(
        settings.database(),
        settings.actor(),
        LineRef(service_code=service_code, msisdn=msisdn, iccid=iccid),
    )
    print_line_action(result, as_json)
