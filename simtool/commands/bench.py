"""``simtool bench run``: a station that provisions cards as fast as staff insert them."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import IO

import click

from apdu.errors import ReaderNotFoundError, SimtoolError, UsageError
from provisioning.bench import BenchMode
from provisioning.devices import BundledModem, DeviceFacts, DeviceSession
from simtool.bench.station import BenchConfig, BenchEvent, BenchStation, ScanQueue, Sink
from simtool.bench.view import bell_sink, headless_sink, json_sink, render_bench
from simtool.cardaccess import pcsc_hints
from simtool.config import Settings, station_options
from simtool.i18n import LANGUAGES, resolve_language, translator

MODES = [m.value for m in BenchMode]


@click.group("bench")
def bench_group() -> None:
    """The bench: several readers, a PASS or FAIL per slot, every result on record."""


def resolve_readers(specs: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """PC/SC reader names for ``--reader`` values, and the label the operator knows each by.

    Reader URLs go through the registry (:func:`simtool.readers.expand_readers`):
    ``lab:all`` is every slot of the running lab, ``lab:N`` one slot,
    ``pcsc:NAME`` (or a bare name or index) one reader; ``all`` is every reader
    of the PC/SC service. One process talks to one pcscd, so the lab and the
    system's readers cannot be mixed.
    """
    from simtool.readers import expand_readers
    from simtool.readers.pcsc import pcsc_reader_name

    wanted = specs or ("all",)
    names: list[str] = []
    labels: dict[str, str] = {}

    def add(name: str, label: str) -> None:
        if name not in names:
            names.append(name)
            labels[name] = label

    for spec in wanted:
        if spec == "all":
            from apdu.transport.pcsc import list_readers

            with pcsc_hints():
                found = list_readers()
            if not found:
                raise ReaderNotFoundError("no PC/SC readers found")
            for name in found:
                add(name, name)
            continue
        for url in expand_readers(spec):
            if url.scheme not in ("pcsc", "lab"):
                raise UsageError(f"the bench watches PC/SC readers; {url} is not one")
            with pcsc_hints():
                add(pcsc_reader_name(url), str(url))
    return names, labels


class _SharedModem:
    """One bundled-router port shared by every reader: configured one card at a time."""

    def __init__(self, modem: DeviceSession) -> None:
        self._modem = modem
        self._lock = threading.Lock()

    def configure(self) -> DeviceFacts:
        """Configure and prove the router (waits while another slot uses the port)."""
        with self._lock:
            return self._modem.configure()


def _scanner_lines(port: str | None) -> Iterator[str]:
    """Lines from the scanner: a serial device, else the terminal (a scanner is a keyboard)."""
    if port is None:
        yield from sys.stdin
        return
    import serial

    try:
        device = serial.serial_for_url(port, baudrate=9600, timeout=None)
    except (serial.SerialException, ValueError) as error:
        raise UsageError(f"cannot open the scanner {port}: {error}") from error
    with device:
        while True:
            line = device.readline()
            if not line:
                return
            yield line.decode("utf-8", errors="replace")


def _read_scans(station: BenchStation, scans: ScanQueue, port: str | None) -> None:
    from datetime import UTC, datetime

    for line in _scanner_lines(port):
        if station.stop_event.is_set():
            return
        if not line.strip():
            continue
        try:
            kind = scans.put_text(line)
        except (SimtoolError, ValueError) as error:
            station.emit(BenchEvent("scan", datetime.now(UTC), rule="bad-scan", message=str(error)))
            continue
        station.emit(BenchEvent("scan", datetime.now(UTC), message=f"{kind} {line.strip()}"))


@contextmanager
def _events_stream(path: str | None) -> Iterator[IO[str] | None]:
    if path is None:
        yield None
    elif path == "-":
        yield sys.stdout
    else:
        try:
            stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as error:
            raise UsageError(f"cannot write the events file {path}: {error}") from error
        with stream:
            yield stream


@bench_group.command("run")
@click.option(
    "--reader",
    "-r",
    "readers",
    multiple=True,
    metavar="URL",
    help="Reader to watch (repeatable): lab:all, lab:N, all, pcsc:NAME or a reader name. "
    "Default: all.",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default=BenchMode.PROVISION.value,
    show_default=True,
    help="provision: bind each card to an order; return: take returned cards in; "
    "diagnose: the technician's verdict on each card.",
)
@click.option(
    "--assign",
    type=click.Choice(["scan", "fifo"]),
    default="scan",
    show_default=True,
    help="scan: the scanned order slip picks the order of the next card; fifo: the oldest "
    "pending order the card can serve.",
)
@click.option(
    "--scanner",
    default=None,
    metavar="PORT",
    help="A serial barcode scanner (default: lines typed or scanned at the terminal).",
)
@click.option(
    "--modem",
    default=None,
    metavar="PORT",
    help="The bundled router's port: configured, proven and registered with each order.",
)
@click.option("--dialect", default=None, help="The router's dialect (default: detect).")
@click.option("--apn-profile", default=None, help="APN profile for --modem (default: ijmio).")
@click.option(
    "--headless",
    is_flag=True,
    help="One plain line per event instead of the screen (always so without a terminal).",
)
@click.option(
    "--events",
    "events_path",
    default=None,
    metavar="FILE|-",
    help="Append every event as a JSON line to FILE (- for stdout).",
)
@click.option(
    "--exit-after",
    type=click.IntRange(1),
    default=None,
    help="Stop after N cards have an outcome.",
)
@click.option(
    "--idle-exit",
    type=click.FloatRange(0.1),
    default=None,
    metavar="SECONDS",
    help="Stop after that long without an event.",
)
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default=None,
    help="Language of the screen (default: SIMTOOL_LANG, then the locale).",
)
@station_options
def run_command(
    settings: Settings,
    readers: tuple[str, ...],
    mode: str,
    assign: str,
    scanner: str | None,
    modem: str | None,
    dialect: str | None,
    apn_profile: str | None,
    headless: bool,
    events_path: str | None,
    exit_after: int | None,
    idle_exit: float | None,
    lang: str | None,
) -> None:
    """Watch the readers and handle every card inserted: PASS or FAIL per slot.

    Cards already in the readers are handled as if just inserted; a card that
    stays is handled once; pull it and insert it again for a new pass.
    """
    _ = translator(resolve_language(lang))
    # No terminal (CI, a pipe, a service): plain lines, never screen codes.
    headless = headless or not sys.stdout.isatty()
    bench_mode = BenchMode(mode)
    if bench_mode is not BenchMode.PROVISION and (modem or scanner):
        raise UsageError("--modem and --scanner belong to --mode provision")
    if bench_mode is not BenchMode.PROVISION:
        assign = "fifo"
    names, labels = resolve_readers(readers)
    database = settings.database()
    bundled: Callable[[], DeviceSession] | None = None
    if modem is not None:
        from modem.profiles import resolve_profile

        shared = _SharedModem(BundledModem(modem, resolve_profile(apn_profile), dialect=dialect))
        bundled = lambda: shared  # noqa: E731 - one router port for every slot
    config = BenchConfig(
        database=database,
        actor=settings.actor(),
        mode=bench_mode,
        assign=assign,
        keyring=settings.keyring() if bench_mode is not BenchMode.RETURN else None,
        bundled_modem=bundled,
        exit_after=exit_after,
        idle_exit=idle_exit,
    )
    with ExitStack() as stack:
        events = stack.enter_context(_events_stream(events_path))
        sinks: list[Sink] = []
        if events is not None:
            sinks.append(json_sink(events))
        if headless:
            out = sys.stderr if events is sys.stdout else sys.stdout
            sinks.append(headless_sink(_, out))
        else:
            from rich.console import Console

            screen = Console(highlight=False)
            sinks.append(bell_sink(screen))
        scans = ScanQueue()
        station = BenchStation(config, names, sinks, labels=labels, scans=scans)
        if assign == "scan" and bench_mode is BenchMode.PROVISION:
            threading.Thread(
                target=_read_scans, args=(station, scans, scanner), name="scanner", daemon=True
            ).start()
        try:
            if headless:
                station.run()
            else:
                from rich.live import Live

                with Live(
                    render_bench(_, station), console=screen, screen=True, auto_refresh=False
                ) as live:
                    station.run(tick=lambda: live.update(render_bench(_, station), refresh=True))
        except KeyboardInterrupt:
            station.stop()
