"""Card tools for card people: ``apdu`` (raw APDUs) and ``watch`` (reader events).

Neither imports rich: their output is JSON lines or plain text, and ``watch``
prints as events happen.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import click

from apdu.card import Card
from apdu.command import CommandApdu
from apdu.errors import ParseError, UsageError
from apdu.status import describe_sw, is_success
from apdu.transport.trace import mask_command
from simtool.cardaccess import open_card
from simtool.options import json_option, reader_option, trace_option

_SEPARATORS = re.compile(r"[\s:]")


def parse_apdu_hex(text: str) -> CommandApdu:
    """A command APDU from hex (spaces and colons allowed); UsageError when malformed.

    The message never repeats the input: it may hold a PIN.
    """
    compact = _SEPARATORS.sub("", text)
    try:
        raw = bytes.fromhex(compact)
    except ValueError:
        raise UsageError(
            f"an APDU must be hex digits ({len(compact)} characters given, not all hex)"
        ) from None
    try:
        return CommandApdu.from_bytes(raw)
    except ParseError as error:
        raise UsageError(f"not a command APDU ({len(raw)} bytes): {error}") from None


@click.command("apdu")
@reader_option
@click.argument("commands", nargs=-1, required=True, metavar="HEX...")
@trace_option
@json_option
def apdu_command(
    reader: str | None, commands: tuple[str, ...], trace_path: str | None, as_json: bool
) -> None:
    """Send raw APDUs to a card and print each status word with its meaning.

    GET RESPONSE (61xx) and the re-send after 6Cxx are done for you; the data
    of VERIFY-family commands (PINs) is masked in the output and the trace.
    The commands go in one PC/SC transaction; the card is reset afterwards
    when one of them presented a PIN.
    """
    parsed = [parse_apdu_hex(text) for text in commands]
    results: list[dict[str, Any]] = []
    with open_card(reader, trace_path=trace_path) as transport:
        card = Card(transport)
        with transport.transaction():
            for command in parsed:
                response = card.send(command)
                results.append(
                    {
                        "command": mask_command(command.to_bytes()),
                        "data": response.data.hex().upper(),
                        "sw": f"{response.sw:04X}",
                        "meaning": describe_sw(response.sw),
                        "ok": is_success(response.sw),
                    }
                )
    if as_json:
        click.echo(json.dumps({"ok": True, "reader": transport.name, "responses": results}))
        return
    for result in results:
        click.echo(f"> {result['command']}")
        if result["data"]:
            click.echo(f"< {result['data']}")
        click.echo(f"< {result['sw']}  {result['meaning']}")


@click.command("watch")
@reader_option
@click.option(
    "--exit-after",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Stop after N events (for scripts and tests).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Stop after SECONDS (default: run until interrupted).",
)
@json_option
def watch_command(
    reader: str | None, exit_after: int | None, timeout: float | None, as_json: bool
) -> None:
    """Print reader and card events as they happen, with the ATR and the card's name.

    Like pcsc_scan: readers plugged and unplugged, cards inserted and removed.
    With --json, one JSON object per line: {"event": "inserted" | "removed" |
    "reader-added" | "reader-removed", "reader", "atr", "card_name"}. A pcscd
    restart is survived (events "service-lost", "service-back").
    """
    from apdu.atr import AtrNameList
    from apdu.transport.monitor import ReaderMonitor

    # Resolving the reader ties this process to its pcscd (lab or system);
    # without one, the first service that is up is watched.
    only = [_watched_reader(reader)] if reader is not None else None
    if only is None:
        _bind_first_service()
    names: AtrNameList | None = None
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set) if timeout is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    count = 0
    try:
        for event in ReaderMonitor(poll_ms=200, readers=only).events(stop):
            card_name: str | None = None
            if event.atr:
                names = names or AtrNameList.load()
                known = names.names(event.atr)
                card_name = known[0] if known else None
            atr = event.atr.hex().upper() if event.atr else None
            if as_json:
                line = {
                    "event": event.kind,
                    "reader": event.reader,
                    "atr": atr,
                    "card_name": card_name,
                }
                click.echo(json.dumps(line))
            else:
                text = " ".join(str(p) for p in (event.kind, event.reader, atr, card_name) if p)
                click.echo(text)
            count += 1
            if exit_after is not None and count >= exit_after:
                break
    finally:
        stop.set()
        if timer is not None:
            timer.cancel()


def _watched_reader(spec: str) -> str:
    """The PC/SC reader name of ``--reader`` (a lab slot, an index or a name)."""
    from simtool.readers import resolve_single
    from simtool.readers.pcsc import pcsc_reader_name

    url = resolve_single(spec)
    if url is None or url.scheme not in ("pcsc", "lab"):
        raise UsageError("watch follows PC/SC readers: give pcsc:..., lab:N or a reader name")
    return pcsc_reader_name(url)


def _bind_first_service() -> None:
    """Point this process at the pcscd a bare reader would mean (pinned, system, then lab)."""
    from apdu.transport.pcsc import use_pcsc_socket
    from simtool.readers.pcsc import services_up

    services = services_up()
    if services:
        use_pcsc_socket(services[0].socket)


@click.command("files")
@reader_option
@trace_option
@json_option
def files_command(reader: str | None, trace_path: str | None, as_json: bool) -> None:
    """Walk the card's file system as far as its access rules allow, decoding known files.

    The files of the MF, DF.TELECOM, DF.GSM and ADF.USIM that the standards
    define are selected with their FCP and read; files behind a PIN show as
    protected. No PIN is presented: verify one first (simtool pin verify
    resets the card afterwards, so use simtool apdu in one call if needed).
    """
    from dataclasses import asdict

    from apdu.filewalk import walk_files

    with open_card(reader, trace_path=trace_path) as transport:
        tree = walk_files(transport)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": True,
                    "directories": tree.directories,
                    "files": [
                        {k: v for k, v in asdict(entry).items() if v is not None}
                        for entry in tree.files
                    ],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    current = None
    for entry in tree.files:
        if entry.path != current:
            current = entry.path
            click.echo(current)
        shape = entry.structure or ""
        if entry.record_length:
            shape += f" {entry.records}x{entry.record_length}"
        elif entry.size is not None:
            shape += f" {entry.size} bytes"
        detail = (
            json.dumps(entry.decoded, ensure_ascii=False)
            if entry.decoded is not None
            else (f"{entry.sw} {entry.meaning}" if entry.sw else "")
        )
        click.echo(f"  {entry.fid} {entry.name:14} {entry.status:9} {shape:24} {detail}".rstrip())
