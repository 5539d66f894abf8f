"""What the operator sees: the full screen (rich), plain lines, and JSON lines.

Every word goes through :func:`simtool.i18n.translator` (``--lang ja|en``);
times are shown in the operator's zone (Asia/Tokyo) and stored in UTC.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING

from simtool.bench.station import BenchEvent, BenchStation, SlotStatus
from simtool.i18n import N_, Translate, format_local_time, local_time

if TYPE_CHECKING:
    # rich is imported where the screen is drawn: a headless bench starts faster.
    from rich.console import Console, RenderableType
    from rich.panel import Panel

#: Slot states, as the operator reads them.
STATE_TEXT = {
    "waiting": N_("waiting for a card"),
    "reading": N_("reading"),
    "scan": N_("scan the order slip"),
    "pass": N_("PASS"),
    "fail": N_("FAIL"),
    "skip": N_("already done"),
}

STATE_STYLE = {
    "waiting": "dim",
    "reading": "bold yellow",
    "scan": "bold cyan",
    "pass": "bold white on green",
    "fail": "bold white on red",
    "skip": "bold blue",
}

#: Why a card failed or was skipped, by rule code, in the operator's words.
RULE_TEXT = {
    "stock-only": N_("card not in stock"),
    "lost-never-reused": N_("card reported lost: never reuse"),
    "returned-closed": N_("card already returned"),
    "allowed-combination": N_("combination not offered"),
    "network-type-match": N_("wrong network type"),
    "voice-identity-verified": N_("identity not verified"),
    "form-factor-match": N_("wrong form factor"),
    "chip-iccid": N_("chip ICCID invalid"),
    "label-match": N_("label does not match the chip"),
    "imsi-match": N_("IMSI does not match"),
    "pin1-default": N_("PIN not default or blocked"),
    "line-state": N_("order not pending"),
    "card-state": N_("card state does not allow this"),
    "return-after-cancel": N_("line not cancelled yet"),
    "device-configured": N_("router settings not proven"),
    "device-once": N_("router already registered"),
    "no-pending-order": N_("no pending order for this card"),
    "already-done": N_("already done"),
    "card-removed": N_("card removed mid-way"),
    "card-error": N_("card does not answer"),
    "concurrent-change": N_("another station took it"),
    "recoverable": N_("PIN blocked: unblock with the PUK"),
    "blocked": N_("blocked by use: reissue"),
    "faulty": N_("faulty card: reissue"),
    "not-ours": N_("not our card"),
}

EVENT_TEXT = {
    "start": N_("bench started"),
    "stop": N_("bench stopped"),
    "inserted": N_("card inserted"),
    "removed": N_("card removed"),
    "waiting-scan": N_("scan the order slip"),
    "scan": N_("scanned"),
    "service-lost": N_("PC/SC service lost"),
    "service-back": N_("PC/SC service back"),
    "reader-removed": N_("reader unplugged"),
    "resumed": N_("card seen again, already done"),
    "interrupted": N_("pass interrupted, will run again"),
}

RESULT_TEXT = {"pass": N_("PASS"), "fail": N_("FAIL"), "skip": N_("already done")}


def rule_text(_: Translate, rule: str | None) -> str:
    """A rule code in the operator's words (the code itself when unknown)."""
    if rule is None:
        return ""
    known = RULE_TEXT.get(rule)
    return _(known) if known else rule


def event_line(_: Translate, event: BenchEvent, zone: str | None = None) -> str:
    """One plain line for ``--headless``: local time, reader, what happened."""
    when = f"{local_time(event.at, zone):%H:%M:%S}"
    where = event.reader or "-"
    if event.event == "card":
        result = _(RESULT_TEXT.get(event.result or "", event.result or "?"))
        parts = [when, where, result, event.iccid or "-"]
        if event.service_code:
            parts.append(f"{_('order')} {event.service_code}")
        if event.rule and not (event.result == "skip" and event.rule == "already-done"):
            parts.append(rule_text(_, event.rule))
        if event.seconds is not None:
            parts.append(f"{event.seconds:.2f} s")
        return "  ".join(parts)
    text = _(EVENT_TEXT.get(event.event, event.event))
    details = " ".join(v for v in (event.iccid, event.message) if v)
    return "  ".join(p for p in (when, where, text, details) if p)


def headless_sink(
    _: Translate, stream: IO[str], zone: str | None = None
) -> Callable[[BenchEvent], None]:
    """A sink printing one plain line per event."""

    def sink(event: BenchEvent) -> None:
        stream.write(event_line(_, event, zone) + "\n")
        stream.flush()

    return sink


def json_sink(stream: IO[str]) -> Callable[[BenchEvent], None]:
    """A sink writing one JSON object per line, flushed at once (a kill loses no line)."""

    def sink(event: BenchEvent) -> None:
        stream.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        stream.flush()

    return sink


def bell_sink(console: Console) -> Callable[[BenchEvent], None]:
    """Ring the terminal bell on every FAIL."""

    def sink(event: BenchEvent) -> None:
        if event.event == "card" and event.result == "fail":
            console.bell()

    return sink


def _slot_panel(_: Translate, status: SlotStatus, zone: str | None) -> Panel:
    from rich.panel import Panel
    from rich.text import Text

    body = Text()
    body.append(f" {_(STATE_TEXT.get(status.state, status.state))} \n", STATE_STYLE[status.state])
    if status.iccid:
        body.append(f"ICCID {status.iccid}\n")
    if status.service_code:
        body.append(f"{_('order')} {status.service_code}\n")
    if status.rule and status.state in ("fail", "skip"):
        body.append(rule_text(_, status.rule) + "\n", "bold")
    if status.seconds is not None and status.state in ("pass", "fail", "skip"):
        body.append(f"{status.seconds:.2f} s  ")
    body.append(f"{local_time(status.changed_at, zone):%H:%M:%S}", "dim")
    border = {"pass": "green", "fail": "red"}.get(status.state, "white")
    return Panel(body, title=status.label, border_style=border, width=36)


def render_bench(_: Translate, station: BenchStation, zone: str | None = None) -> RenderableType:
    """The whole screen: one panel per slot, then the totals."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1))
    columns = 4 if len(station.readers) > 4 else max(1, len(station.readers))
    for _column in range(columns):
        grid.add_column()
    panels = [_slot_panel(_, station.status[r], zone) for r in station.readers]
    for start in range(0, len(panels), columns):
        grid.add_row(*panels[start : start + columns])
    totals = station.totals
    summary = Text()
    summary.append(f"{_('passed')} {totals.passed}   ", "green")
    summary.append(f"{_('failed')} {totals.failed}   ", "red")
    summary.append(f"{_('already done')} {totals.skipped}   ")
    summary.append(f"{_('cards per minute')} {totals.per_minute():.1f}")
    pending = station.scans.pending() if station.config.assign == "scan" else []
    if pending:
        summary.append(f"\n{_('scanned orders waiting')}: {', '.join(pending)}")
    header = Text(
        f"{_('Station')} {station.config.actor.station}  {_('Operator')} "
        f"{station.config.actor.operator}  {format_local_time(datetime.now(UTC), zone)}",
        "bold",
    )
    return Group(header, grid, summary)
