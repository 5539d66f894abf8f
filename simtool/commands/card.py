"""Card commands: ``readers``, ``read``, ``atr``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from apdu.card import CardIdentity, read_card, read_iccid
from apdu.errors import ExitCode, ParseError, UsageError
from apdu.files import luhn_valid
from simtool.cardaccess import open_card
from simtool.options import json_option, reader_option, trace_option
from simtool.output import render, table, to_jsonable

if TYPE_CHECKING:
    from rich.console import Console


_atr_list_option = click.option(
    "--atr-list",
    "atr_list",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Name cards from this smartcard_list.txt. Default: the user's list "
    "(~/.config/simtool/smartcard_list.txt, then ~/.cache/smartcard_list.txt as "
    "pcsc-tools downloads it), else /usr/share/pcsc/smartcard_list.txt.",
)


@click.command("readers")
@click.option(
    "--reader",
    "-r",
    "reader",
    default=None,
    metavar="URL",
    help="Only the readers this URL names (lab:all: every lab slot; virtual:PROFILE: "
    "that virtual card). Default: every reader of every PC/SC service that is up.",
)
@_atr_list_option
@json_option
def readers_command(reader: str | None, atr_list: str | None, as_json: bool) -> None:
    """List readers with their URL and PC/SC service, card present, ATR and card name.

    When both the system's pcscd and the lab are up, each reader shows which
    service it belongs to (pcsc:N or lab:N): a bare index would be ambiguous.
    """
    from apdu.atr import AtrNameList
    from simtool.readers import backend_for, parse_reader_url

    url = parse_reader_url(reader) if reader is not None else None
    backend = backend_for(url.scheme if url is not None else "pcsc")
    with backend.errors_explained():
        entries = backend.entries(url)
    names = AtrNameList.newest(atr_list)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        known = names.names(entry.atr) if entry.atr else []
        rows.append(
            {
                "url": entry.url,
                "service": entry.service,
                "index": entry.index,
                "reader": entry.reader,
                "card_present": entry.card_present,
                "atr": entry.atr.hex().upper() if entry.atr else None,
                "card_name": known[0] if known else None,
            }
        )

    def human(console: Console) -> None:
        console.print(
            table(
                "Readers",
                ["URL", "service", "reader", "card", "ATR", "name"],
                [
                    (
                        r["url"],
                        r["service"],
                        r["reader"],
                        "yes" if r["card_present"] else "-",
                        r["atr"],
                        r["card_name"],
                    )
                    for r in rows
                ],
            )
        )

    # An object, not a bare list: every --json success carries "ok": true.
    render({"readers": rows}, as_json, human)


def identity_json(identity: CardIdentity) -> dict[str, Any]:
    """The JSON shape of ``simtool read`` (stable keys for scripts)."""
    return {
        "iccid": identity.iccid,
        "iccid_luhn_ok": identity.iccid_luhn_ok,
        "imsi": identity.imsi,
        "imsi_protected": identity.imsi_protected,
        "msisdn": identity.msisdn,
        "spn": identity.spn,
        "mcc": identity.mcc,
        "mnc": identity.mnc,
        "mnc_length": identity.mnc_length,
        "card_type": identity.card_type,
        "dead": identity.dead,
        "applications": [
            {"aid": a.aid.hex().upper(), "label": a.label, "kind": a.kind}
            for a in identity.applications
        ],
        "pins": {
            name: {"state": pin.state, **to_jsonable(pin)} for name, pin in identity.pins.items()
        },
        "atr": identity.atr.hex().upper(),
        "apdu_count": identity.apdu_count,
        "notes": identity.notes,
        "partial": identity.partial,
        "problems": [
            {
                "file": p.file,
                "sw": None if p.sw is None else f"{p.sw:04X}",
                "meaning": p.meaning,
            }
            for p in identity.problems
        ],
    }


@click.command("read")
@reader_option
@click.option(
    "--modem",
    default=None,
    metavar="PORT",
    help="Read the SIM inside an LTE modem through AT+CSIM instead of a reader.",
)
@click.option("--dialect", default=None, help="Modem dialect (with --modem); default: detect.")
@click.option(
    "--applications",
    is_flag=True,
    help="Also list the card's applications (reads EF.DIR: a few more APDUs).",
)
@click.option(
    "--iccid-only", is_flag=True, help="Read only the ICCID (2 APDUs), for scripts and benches."
)
@trace_option
@json_option
def read_command(
    reader: str | None,
    modem: str | None,
    dialect: str | None,
    applications: bool,
    iccid_only: bool,
    trace_path: str | None,
    as_json: bool,
) -> None:
    """Read a card's ICCID, IMSI, MSISDN, SPN, applications and PIN counters.

    No PIN or PUK attempt is spent: counters are read with empty VERIFY/UNBLOCK
    commands. A file the card refuses is listed with its status word and the
    read goes on; the exit code is then 16 (partial).
    """
    with open_card(reader, modem=modem, dialect=dialect, trace_path=trace_path) as transport:
        if transport.protocol in ("T=0", "T=1"):
            # Leave the card as found after power-up (MF current, nothing
            # verified): the next program's read starts from a known state.
            transport.reset_when_closed = True
        if iccid_only:
            iccid = read_iccid(transport)
            count = transport.stats.apdus
        else:
            identity = read_card(transport, applications=applications)
    if iccid_only:
        render(
            {"iccid": iccid, "iccid_luhn_ok": luhn_valid(iccid), "apdu_count": count},
            as_json,
            lambda console: console.print(iccid),
        )
        return
    data = identity_json(identity)

    def human(console: Console) -> None:
        luhn = "ok" if identity.iccid_luhn_ok else "BAD check digit"
        imsi = "protected by PIN1" if identity.imsi_protected else identity.imsi
        console.print(
            table(
                f"Card ({identity.card_type.upper()})",
                ["field", "value"],
                [
                    ("ICCID", f"{identity.iccid} (Luhn {luhn})"),
                    ("IMSI", imsi),
                    ("MSISDN", identity.msisdn),
                    ("SPN", identity.spn),
                    ("MNC length", identity.mnc_length),
                    (
                        "applications",
                        ", ".join(f"{a.kind} {a.aid.hex().upper()}" for a in identity.applications)
                        or None,
                    ),
                    ("APDUs", identity.apdu_count),
                ],
            )
        )
        console.print(
            table(
                "PIN counters",
                ["", "state", "retries"],
                [(name.upper(), pin.state, pin.retries) for name, pin in identity.pins.items()],
            )
        )
        if identity.dead:
            console.print("[bold red]PUK1 is blocked: this card is dead.[/]")
        for note in identity.notes:
            console.print(f"note: {note}")
        for problem in identity.problems:
            console.print(f"[yellow]not read: {problem}[/]")

    render(data, as_json, human)
    if identity.partial:
        raise SystemExit(ExitCode.PARTIAL)


@click.command("atr")
@click.argument("hex_atr", required=False, metavar="HEX")
@reader_option
@_atr_list_option
@json_option
def atr_command(
    hex_atr: str | None, reader: str | None, atr_list: str | None, as_json: bool
) -> None:
    """Analyse an ATR (ISO 7816-3) given as HEX, or the card's in --reader.

    Without either, the ATR of the card in the only reader holding one.
    """
    from apdu.atr import AtrNameList, parse_atr, parse_atr_hex

    if hex_atr is not None and reader is not None:
        raise UsageError("give an ATR in hex or --reader, not both")
    if hex_atr is not None:
        atr = parse_atr_hex(hex_atr)
    else:
        with open_card(reader) as transport:
            raw = transport.atr
        if not raw:
            raise UsageError(f"{transport.name} gives no ATR (a modem hides it)")
        atr = parse_atr(raw)
    names = AtrNameList.newest(atr_list).names(atr.raw)
    data = {"ok": atr.ok, **to_jsonable(atr), "card_names": names}

    def human(console: Console) -> None:
        console.print(f"ATR {atr.raw.hex(' ').upper()}")
        rows: list[tuple[str, Any]] = [
            ("convention", atr.ts),
            ("protocols", ", ".join(f"T={p}" for p in atr.protocols)),
            ("Fi/Di", f"{atr.fi}/{atr.di}"),
            ("historical bytes", atr.historical_bytes.hex()),
            ("TCK", "valid" if atr.tck_valid else ("absent" if atr.tck is None else "WRONG")),
        ]
        console.print(table(None, ["", ""], rows))
        for finding in atr.findings:
            console.print(f"{finding.severity}: {finding.message} [{finding.code}]")
        for card_name in names:
            console.print(f"known as: {card_name}")

    render(data, as_json, human)
    if not atr.ok:
        # Printed in full above; the exit code tells a script it is unusable.
        raise ParseError("the ATR is not usable (errors listed above)", data=atr.raw.hex().upper())
