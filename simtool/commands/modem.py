"""``simtool modem``: list, inspect, configure LTE modems, and simulate one."""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from apdu.errors import ExitCode, UsageError
from modem.channel import DEFAULT_TIMEOUT
from modem.configure import (
    PASSWORD_WRITTEN_NOT_READABLE,
    REQUIRED_FIELDS,
    ConfigureResult,
    configure_port,
)
from modem.connect import ConnectResult, connect_port
from modem.dialects import DIALECT_NAMES, DIALECTS, Auth, summarize
from modem.discovery import list_modem_ports
from modem.errors import ConnectionRejectedError, NotVerifiedError
from modem.info import ModemInfo, read_info
from modem.modem import enter_pin_on_port
from modem.profiles import resolve_profile
from modem.simulator.faults import FAULT_SYNTAX
from modem.trace import AtTracer
from simtool.config import Settings, station_options
from simtool.options import json_option
from simtool.output import render, table, to_jsonable

F = TypeVar("F", bound=Callable[..., Any])

# Longest sensible deadline for one ordinary AT command; more is a typo.
MAX_TIMEOUT = 600.0

_port_option = click.option(
    "--port",
    "-p",
    required=True,
    metavar="PATH|URL",
    help="AT port: a device (/dev/ttyUSB2), a pty, or a pyserial URL "
    "(simmodem://quectel?latency=0.02).",
)
_dialect_option = click.option(
    "--dialect",
    type=click.Choice(DIALECT_NAMES),
    default=None,
    help="Override the dialect detected from +CGMI/+CGMM.",
)


class Seconds(click.FloatRange):
    """A duration in seconds within a range; ``nan`` (which compares false with any
    bound, so a plain float range lets it through) is refused too."""

    name = "number of seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The value as a float inside the range, or a usage error naming the option."""
        result = super().convert(value, param, ctx)
        if math.isnan(result):
            self.fail(f"{value!r} is not a valid {self.name}.", param, ctx)
        return result


_timeout_option = click.option(
    "--timeout",
    type=Seconds(0, MAX_TIMEOUT, min_open=True),
    default=DEFAULT_TIMEOUT,
    metavar="SECONDS",
    show_default=True,
    help="Deadline per ordinary AT command, in seconds (above 0).",
)


def _trace_option(func: F) -> F:
    """``--trace FILE``: the AT exchange as JSON lines (the card commands' option
    traces APDUs; this one traces what the modem is told and answers)."""
    return click.option(
        "--trace",
        "trace_path",
        type=click.Path(dir_okay=False),
        default=None,
        metavar="FILE",
        help="Write every AT command and answer as JSON lines to FILE (credentials and PINs "
        "masked).",
    )(func)


@contextmanager
def _at_trace(path: str | None) -> Iterator[AtTracer | None]:
    # Opened before the port, so a trace file that cannot be written stops the
    # command before anything is sent; closed whatever happens.
    tracer = AtTracer.to_path(path) if path else None
    try:
        yield tracer
    finally:
        if tracer is not None:
            tracer.close()


def _count(value: int | None) -> str:
    return "unknown" if value is None else str(value)


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


class ModemUsageError(click.UsageError):
    """A malformed option value of a modem command: 64 (bad request), as the table says."""

    exit_code = ExitCode.USAGE


class _ModemGroup(click.Group):
    """The modem commands: a bad option value leaves with 64; an unknown option or a
    missing argument with 2, like every command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModemUsageError:
            raise
        except click.BadParameter as error:
            raise ModemUsageError(error.format_message(), error.ctx) from error


@click.group("modem", cls=_ModemGroup)
def modem_group() -> None:
    """LTE modems over their AT port: find, inspect, configure the APN, simulate."""


@modem_group.command("list")
@click.option(
    "--also",
    "extra",
    multiple=True,
    metavar="PATH|URL",
    help="Probe this port too (a pty or URL the OS does not list).",
)
@click.option("--no-probe", is_flag=True, help="Only list; send nothing.")
@json_option
def list_command(extra: tuple[str, ...], no_probe: bool, as_json: bool) -> None:
    """Serial ports with USB ids, and which of them answer AT (short deadline)."""
    reports = list_modem_ports(extra, probe_ports=not no_probe)

    def human(console: Console) -> None:
        console.print(
            table(
                "Serial ports",
                ["port", "USB id", "description", "AT", "modem", "dialect"],
                [
                    (
                        r.device,
                        r.usb_id,
                        r.description or r.product,
                        "-" if r.answers_at is None else ("yes" if r.answers_at else "no"),
                        " ".join(p for p in (r.modem_manufacturer, r.modem_model) if p) or None,
                        r.dialect,
                    )
                    for r in reports
                ],
            )
        )

    # An object, not a bare list: every --json success carries "ok": true.
    render({"ports": reports}, as_json, human)


@modem_group.command("info")
@_port_option
@_dialect_option
@_timeout_option
@_trace_option
@json_option
def info_command(
    port: str, dialect: str | None, timeout: float, trace_path: str | None, as_json: bool
) -> None:
    """Identity, IMEI, SIM (ICCID, IMSI, PIN state), registration, signal, contexts."""
    with _at_trace(trace_path) as tracer:
        info = read_info(port, dialect=dialect, timeout=timeout, tracer=tracer)
    render(info, as_json, lambda console: _print_info(console, info))


def _print_info(console: Console, info: ModemInfo) -> None:
    identity, sim = info.identity, info.sim
    rows: list[tuple[str, Any]] = [
        ("port", info.port),
        ("dialect", info.dialect),
        ("manufacturer", identity.manufacturer),
        ("model", identity.model),
        ("firmware", identity.revision),
        ("IMEI", identity.imei),
        ("SIM state", sim.pin_state),
        ("ICCID", sim.iccid),
        ("ICCID from", sim.iccid_source),
        ("IMSI", sim.imsi),
        (
            "PIN1 / PUK1 left",
            None
            if sim.retries is None
            else f"{_count(sim.retries.pin1)} / {_count(sim.retries.puk1)}",
        ),
    ]
    if info.network is not None:
        for report in info.network.registrations:
            rows.append(
                (
                    report.kind,
                    f"{report.state}" + (f" ({report.technology})" if report.technology else ""),
                )
            )
        if info.network.operator is not None:
            rows.append(("operator", info.network.operator.name))
        if info.network.signal is not None:
            rows.append(
                (
                    "signal",
                    None
                    if info.network.signal.rssi_dbm is None
                    else f"{info.network.signal.rssi_dbm} dBm",
                )
            )
    console.print(table("Modem", ["", "value"], rows))
    if info.contexts:
        console.print(
            table(
                "PDP contexts",
                ["cid", "type", "APN", "active", "auth", "user", "password"],
                [
                    (
                        c.cid,
                        c.pdp_type,
                        c.apn,
                        _yes_no(c.active),
                        c.auth,
                        c.user,
                        None if c.password_set is None else ("set" if c.password_set else "empty"),
                    )
                    for c in info.contexts
                ],
            )
        )
    for note in info.notes:
        console.print(f"note: {note}")


@modem_group.command("configure")
@_port_option
@click.option(
    "--profile",
    "profile_name",
    default=None,
    metavar="NAME",
    help="APN profile (built in: ijmio; more from the config file). Default: ijmio "
    "unless --apn is given.",
)
@click.option("--apn", default=None, help="APN (overrides the profile's).")
@click.option("--user", default=None, help="User name (overrides the profile's).")
@click.option("--password", default=None, help="Password (overrides the profile's).")
@click.option(
    "--auth",
    type=click.Choice([a.value for a in Auth]),
    default=None,
    help="Authentication (pap-or-chap is sent as CHAP where the dialect has no 'either' value).",
)
@click.option(
    "--pdp-type",
    type=click.Choice(["IP", "IPV6", "IPV4V6"]),
    default=None,
    help="PDP type (default IP).",
)
@click.option(
    "--cid", type=click.IntRange(1, 24), default=1, show_default=True, help="PDP context id."
)
@_dialect_option
@click.option(
    "--force-write",
    is_flag=True,
    help="Write the context and credentials even when the modem reads every field "
    "back equal already. (Credentials are always written where the password "
    "cannot be read back.)",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file with more APN profiles (must exist).",
)
@_timeout_option
@_trace_option
@click.option(
    "--service-code",
    default=None,
    metavar="CODE",
    help="Register the device (IMEI, model, firmware, profile, verified or not) "
    "with this line in the line database, with an audit event.",
)
@click.option(
    "--connect-test",
    is_flag=True,
    help="After a verified read-back, activate the context to prove the network accepts "
    "the credentials (address and DNS shown; deactivated again). Exit 9 when refused.",
)
@json_option
@station_options
def configure_command(
    port: str,
    profile_name: str | None,
    apn: str | None,
    user: str | None,
    password: str | None,
    auth: str | None,
    pdp_type: str | None,
    cid: int,
    dialect: str | None,
    force_write: bool,
    config_path: Path | None,
    timeout: float,
    trace_path: str | None,
    service_code: str | None,
    connect_test: bool,
    as_json: bool,
    settings: Settings,
) -> None:
    """Write the APN profile, apply it, read it back and prove it (exit 0 when verified)."""
    profile = resolve_profile(
        profile_name,
        apn=apn,
        user=user,
        password=password,
        auth=auth,
        pdp_type=pdp_type,
        config_path=config_path,
    )
    sim_iccid = None
    if service_code is not None:
        sim_iccid = _check_sim(settings, port, dialect, timeout, service_code)
    with _at_trace(trace_path) as tracer:
        result = configure_port(
            port,
            profile,
            cid=cid,
            dialect=dialect,
            timeout=timeout,
            tracer=tracer,
            force_write=force_write,
            connect_test=connect_test,
        )
    data = _result_json(result)
    if service_code is not None:
        # Recorded even when not verified: the trail then shows an unproven device.
        data["registration"] = to_jsonable(_register(settings, service_code, result, sim_iccid))
    render(data, as_json, lambda console: _print_result(console, result, data.get("registration")))
    if not result.verified:
        # Password read-backs are masked already ("**** (differs)").
        raise NotVerifiedError(
            [
                (c.field, c.read_back)
                for c in result.checks
                if c.status == "mismatch" or (c.field in REQUIRED_FIELDS and c.status != "match")
            ]
        )
    if result.connection_error is not None:
        raise result.connection_error


def _result_json(result: ConfigureResult) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable(result)
    error = result.connection_error
    data.update(
        changed=result.changed,
        verified_fields=list(result.verified_fields),
        not_readable=list(result.not_readable),
        password_status=result.password_status,
        connection_proven=result.connection_proven,
        connection_error=None if error is None else _rejection_json(error),
    )
    return data


def _rejection_json(error: ConnectionRejectedError) -> dict[str, Any]:
    return {
        "message": str(error),
        "kind": error.kind,
        "cause": error.cause,
        "reason": error.reason,
        "final": error.final,
    }


def _check_sim(
    settings: Settings, port: str, dialect: str | None, timeout: float, service_code: str
) -> str | None:
    """The router must hold its line's card: checked before anything is written; a
    refusal (or a modem that fails) is recorded. The card's ICCID, or None (no card yet)."""
    from modem.errors import ModemError
    from modem.modem import Modem
    from provisioning.workflows import LineRef, check_modem_sim, sim_checked

    database, ref = settings.database(), LineRef(service_code=service_code)
    with sim_checked(database, settings.actor(), ref):
        with Modem.open(port, dialect=dialect, timeout=timeout) as modem:
            try:
                seen: str | None = modem.iccid()[0].iccid
            except ModemError:  # an unreadable SIM is judged by the check
                seen = None
        return check_modem_sim(database, ref, seen)


def _register(
    settings: Settings, service_code: str, result: ConfigureResult, sim_iccid: str | None
) -> object:
    """Record the configured device with its line (one transaction, audited)."""
    from provisioning.devices import DeviceFacts
    from provisioning.workflows import LineRef, register_device

    device = DeviceFacts(
        imei=result.imei,
        maker=result.manufacturer,
        model=result.model,
        firmware=result.firmware,
        apn_profile=result.profile,
        verified=result.verified,
        connection_proven=result.connection_proven,
    )
    return register_device(
        settings.database(),
        settings.actor(),
        LineRef(service_code=service_code),
        device,
        sim_iccid=sim_iccid,
    )


def _print_result(
    console: Console, result: ConfigureResult, registration: dict[str, Any] | None = None
) -> None:
    console.print(
        f"{result.manufacturer} {result.model} (IMEI {result.imei}), "
        f"dialect {result.dialect}, profile {result.profile}, context {result.cid}"
    )
    if registration is not None:
        how = "registered" if registration["created"] else "registration updated"
        console.print(
            f"{how} with line {registration['service_code']} "
            f"(audit event {registration['audit_seq']})"
        )
    if result.sim_state is not None:
        console.print(f"SIM state: {result.sim_state}")
    if result.written:
        for command in result.written:
            console.print(f"wrote: {command}")
    else:
        console.print(
            "wrote nothing: every field, the password included, read back equal to the profile"
        )
    if result.applied:
        console.print(f"applied: {result.applied}")
    elif result.rewritten_in_place:
        console.print("applied: nothing (credentials rewritten in place; the connection is kept)")
    password_status = result.password_status
    console.print(
        table(
            "Read back",
            ["field", "wanted", "read back", "result"],
            [
                (
                    c.field,
                    c.wanted,
                    c.read_back,
                    password_status if c.field == "password" and password_status else c.status,
                )
                for c in result.checks
            ],
        )
    )
    for warning in result.warnings:
        console.print(f"warning: {warning}")
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(_verdict(result))
    if result.connection is not None:
        _print_connection(console, result.connection, heading="connection test")
    elif result.connection_error is not None:
        console.print(f"connection test: REFUSED: {result.connection_error}")


def _print_connection(console: Console, connection: ConnectResult, *, heading: str) -> None:
    how = "already active, re-activated" if connection.reactivated else "activated"
    if connection.was_active and not connection.reactivated:
        how = "already active (the modem would not re-activate it)"
    after = "deactivated again" if connection.deactivated else "left active"
    console.print(
        f"{heading}: CONNECTED context {connection.cid} ({how}, {after}): "
        f"IPv4 {connection.ipv4 or '-'}"
        + (f", IPv6 {connection.ipv6}" if connection.ipv6 else "")
        + f", DNS {', '.join(connection.dns) or '-'}"
        + (f", APN {connection.apn}" if connection.apn else "")
        + f" (from {connection.address_source})"
    )


def _verdict(result: ConfigureResult) -> str:
    if not result.verified:
        return "NOT VERIFIED"
    text = f"VERIFIED: {', '.join(result.verified_fields)} read back equal"
    if result.password_status == PASSWORD_WRITTEN_NOT_READABLE:
        text += "; password written, not readable back (not verified)"
    elif result.password_status is not None and result.password_status != "match":
        text += f"; password {result.password_status}"
    return text


@modem_group.command("connect")
@_port_option
@click.option(
    "--cid", type=click.IntRange(1, 24), default=1, show_default=True, help="PDP context id."
)
@click.option("--stay", is_flag=True, help="Leave the context active after the test.")
@_dialect_option
@_timeout_option
@_trace_option
@json_option
def connect_command(
    port: str,
    cid: int,
    stay: bool,
    dialect: str | None,
    timeout: float,
    trace_path: str | None,
    as_json: bool,
) -> None:
    """Activate the PDP context: the network's address and DNS prove the credentials.

    The context is deactivated again unless --stay (one that was active before
    is re-activated and left active). A refusal exits 9 naming the cause
    (authentication failed, unknown APN, not subscribed, no service).
    """
    with _at_trace(trace_path) as tracer:
        result = connect_port(port, cid, stay=stay, dialect=dialect, timeout=timeout, tracer=tracer)
    data: dict[str, Any] = to_jsonable(result)
    data["connected"] = result.connected

    def human(console: Console) -> None:
        _print_connection(console, result, heading="connection")
        for note in result.notes:
            console.print(f"note: {note}")

    render(data, as_json, human)


@modem_group.command("pin")
@_port_option
@click.option("--pin", default=None, help="PIN1 (scripts only; people are prompted).")
@click.option("--pin-stdin", "pin_stdin", is_flag=True, help="Read PIN1 from standard input.")
@click.option(
    "--force", is_flag=True, help="Allow the attempt even when the counter is unknown or at 1."
)
@_dialect_option
@_timeout_option
@_trace_option
@json_option
def pin_command(
    port: str,
    pin: str | None,
    pin_stdin: bool,
    force: bool,
    dialect: str | None,
    timeout: float,
    trace_path: str | None,
    as_json: bool,
) -> None:
    """Enter PIN1 through the modem (AT+CPIN) under the PIN safety policy."""
    value = _secret(pin, pin_stdin, "PIN1")
    # Only a person can confirm; a script that says --force has decided.
    confirm = (
        (lambda question: click.confirm(question, default=False))
        if force and sys.stdin.isatty()
        else None
    )
    with _at_trace(trace_path) as tracer:
        outcome = enter_pin_on_port(
            port,
            value,
            dialect=dialect,
            force=force,
            confirm=confirm,
            timeout=timeout,
            tracer=tracer,
        )
    left = (
        f", PIN1 attempts left: {_count(outcome.retries_after)}"
        if outcome.sent or outcome.retries_after is not None
        else ""
    )
    render(
        outcome,
        as_json,
        lambda console: console.print(
            f"{outcome.message} (state {outcome.state_before} -> {outcome.state_after}{left})"
        ),
    )


def _secret(given: str | None, from_stdin: bool, prompt: str) -> str:
    # A PIN typed by a person never goes on the command line (shell history,
    # process list): without --pin the station prompts with echo off.
    if given is not None:
        return given
    if from_stdin:
        line = sys.stdin.readline().strip()
        if not line:
            raise UsageError(f"--pin-stdin: no {prompt} on standard input")
        return line
    if not sys.stdin.isatty():
        raise UsageError(f"no {prompt} given: use a prompt at a terminal, or --pin-stdin")
    value: str = click.prompt(prompt, hide_input=True)
    return value


@modem_group.command("dialects")
@json_option
def dialects_command(as_json: bool) -> None:
    """The dialect table: credential command, argument order, read-back, apply rule."""
    rows = [summarize(d) for d in DIALECTS.values()]

    def human(console: Console) -> None:
        console.print(
            table(
                "Dialects",
                [
                    "name",
                    "auth command",
                    "argument order",
                    "read back",
                    "password readable",
                    "pap-or-chap",
                    "ICCID",
                    "retries",
                    "apply",
                ],
                [
                    (
                        s.name,
                        s.auth_command,
                        ",".join(s.write_order),
                        s.read_command,
                        _yes_no(s.password_readable),
                        s.pap_or_chap,
                        s.iccid_command,
                        s.retry_command,
                        s.apply,
                    )
                    for s in rows
                ],
            )
        )

    render({"dialects": [dataclasses.asdict(r) for r in rows]}, as_json, human)


@modem_group.command("sim")
@click.option(
    "--dialect",
    type=click.Choice(DIALECT_NAMES),
    default="generic",
    show_default=True,
    help="Which modem family to behave like.",
)
@click.option(
    "--latency",
    type=Seconds(0, MAX_TIMEOUT),
    default=0.0,
    metavar="SECONDS",
    show_default=True,
    help="Seconds added to every answer.",
)
@click.option(
    "--faults", default=None, metavar="LIST", help=f"Comma-separated: {', '.join(FAULT_SYNTAX)}."
)
@click.option(
    "--profile",
    "card_profile",
    default=None,
    metavar="CARDPROFILE",
    help="The SIM: lab:N is stock card N as generated by the lab (lab_profile(N)), "
    "not the card currently in lab slot N; or a card profile name or a JSON "
    "file. Default: lab:0.",
)
def sim_command(dialect: str, latency: float, faults: str | None, card_profile: str | None) -> None:
    """Serve a simulated modem on a pty: prints its path, serves until SIGTERM/SIGINT."""
    from modem.simulator.ptyserver import serve_pty

    def ready(path: str) -> None:
        click.echo(path)
        sys.stdout.flush()

    serve_pty(dialect, latency=latency, faults=faults, profile=card_profile, on_ready=ready)
