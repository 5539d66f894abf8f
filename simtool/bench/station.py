"""The bench station loop: readers, card events, one worker per reader, outcomes.

One process, one thread per reader (the card's APDU time is waiting, not
work, so threads overlap it), and one monitor thread turning the project's
reader monitor (:class:`apdu.transport.monitor.ReaderMonitor`, which survives
pcscd restarts) into per-reader work. Cards already present at start come as
``inserted`` events like any other; a card is handled once per insertion.

A pcscd restart (or a reader unplugged) makes the monitor report every card
removed; such a card is not taken as pulled: when it is seen again with the
ICCID whose pass was finished, nothing is repeated. A pass cut short by the
outage is simply run again (provisioning is ordered so that a retry is safe).

Every outcome goes to the sinks (screen, plain lines, JSON lines) as a
:class:`BenchEvent`; the business rules are in :mod:`provisioning.bench`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apdu.card import read_iccid
from apdu.errors import CardError, NoCardError, SimtoolError, TransportError
from apdu.transport.base import DEFAULT_TIMEOUT
from apdu.transport.monitor import ReaderEvent, ReaderMonitor
from apdu.transport.pcsc import PcscTransport
from provisioning.audit import Actor
from provisioning.bench import (
    BenchMode,
    CardOutcome,
    OrderQueue,
    diagnose_at_bench,
    outcome_of_card_error,
    provision_card,
    record_outcome,
    return_card_at_bench,
)
from provisioning.database import Database
from provisioning.devices import DeviceSession
from provisioning.identifiers import parse_iccid, parse_service_code
from provisioning.reader import ReaderCard
from provisioning.secrets import Keyring

log = logging.getLogger(__name__)

#: How long a worker waits, after a card error, to learn whether the card was
#: pulled or pcscd went away (the monitor reports both within milliseconds).
_SETTLE_S = 1.0
#: Removals reported this shortly before "service lost" were the outage, not pulls.
_OUTAGE_WINDOW_S = 1.0


@dataclass(frozen=True)
class BenchEvent:
    """Something the operator (or a script) should know; ``at`` is UTC."""

    event: str
    at: datetime
    reader: str | None = None
    iccid: str | None = None
    result: str | None = None
    service_code: str | None = None
    rule: str | None = None
    seconds: float | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON line: a card's outcome always has every key of the issue's format."""
        data: dict[str, Any] = {"event": self.event, "at": self.at.isoformat()}
        if self.event == "card":
            data.update(
                reader=self.reader,
                iccid=self.iccid,
                result=self.result,
                service_code=self.service_code,
                rule=self.rule,
                seconds=None if self.seconds is None else round(self.seconds, 3),
                message=self.message,
            )
            return data
        for name in ("reader", "iccid", "service_code", "rule", "message"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data


Sink = Callable[[BenchEvent], None]


@dataclass
class Scan:
    """One order slip or card label, as scanned."""

    service_code: str | None = None
    label_iccid: str | None = None


class ScanQueue:
    """What the operator scanned, waiting for the next inserted card.

    A service code (order slip) starts an assignment; a card label (an ICCID)
    completes the last assignment that has none, so "slip, label, insert" and
    "slip, insert" both work. Lines that are neither are refused with a reason.
    """

    def __init__(self) -> None:
        self._items: list[Scan] = []
        self._condition = threading.Condition()

    def put_text(self, text: str) -> str:
        """Take one scanned line; returns what it was taken as (for the event log)."""
        value = text.strip()
        if not value:
            raise ValueError("empty scan")
        compact = value.replace(" ", "")
        if compact.isdigit() and compact.startswith("89"):
            iccid = parse_iccid(compact)
            with self._condition:
                target = next((s for s in self._items if s.label_iccid is None), None)
                if target is None:
                    self._items.append(Scan(label_iccid=iccid))
                else:
                    target.label_iccid = iccid
                self._condition.notify_all()
            return "label"
        code = parse_service_code(value)
        with self._condition:
            self._items.append(Scan(service_code=code))
            self._condition.notify_all()
        return "order"

    def take(self, timeout: float) -> Scan | None:
        """The oldest assignment with a service code, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for index, item in enumerate(self._items):
                    if item.service_code is not None:
                        return self._items.pop(index)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)

    def pending(self) -> list[str]:
        """The service codes scanned and not yet used (for the screen)."""
        with self._condition:
            return [s.service_code for s in self._items if s.service_code]


@dataclass
class BenchConfig:
    """What one bench does: mode, assignment, the database and who is at it."""

    database: Database
    actor: Actor
    mode: BenchMode = BenchMode.PROVISION
    assign: str = "fifo"
    keyring: Keyring | None = None
    bundled_modem: Callable[[], DeviceSession] | None = None
    exit_after: int | None = None
    idle_exit: float | None = None
    timeout: float = DEFAULT_TIMEOUT


@dataclass
class SlotStatus:
    """One reader as the operator sees it."""

    reader: str
    label: str
    state: str = "waiting"
    iccid: str | None = None
    service_code: str | None = None
    rule: str | None = None
    message: str | None = None
    seconds: float | None = None
    changed_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Totals:
    """Running totals of one bench run."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.monotonic)
    first_pass_s: float | None = None

    @property
    def done(self) -> int:
        """Cards with an outcome."""
        return self.passed + self.failed + self.skipped

    def per_minute(self, now: float | None = None) -> float:
        """Cards with an outcome per minute since the start."""
        elapsed = (now or time.monotonic()) - self.started
        return 60.0 * self.done / elapsed if elapsed > 0 else 0.0


class _Slot:
    """The worker of one reader."""

    def __init__(self, station: BenchStation, reader: str) -> None:
        self.station = station
        self.reader = reader
        self.inserted: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.present = threading.Event()
        self.removed = threading.Event()
        # The card whose pass finished in this reader, and whether the reader
        # lost sight of it through an outage rather than a pull.
        self.finished_iccid: str | None = None
        self.held = False
        #: The state and values its last outcome showed (put back after an outage).
        self.last: tuple[str, dict[str, Any]] | None = None
        self.thread = threading.Thread(target=self._run, name=f"bench {reader}", daemon=True)

    def _run(self) -> None:
        stop = self.station.stop_event
        while not stop.is_set():
            # Blocks without polling: stop() wakes every worker.
            self.inserted.get()
            if stop.is_set() or not self.present.is_set():
                continue
            try:
                self.station.handle(self)
            except Exception:
                # A bug must not take the reader out of service; it is logged.
                log.exception("bench worker %s failed", self.reader)


class BenchStation:
    """A running bench over ``readers`` (PC/SC names; ``labels`` are what the operator
    calls them); see the module documentation."""

    def __init__(
        self,
        config: BenchConfig,
        readers: list[str],
        sinks: list[Sink],
        *,
        labels: dict[str, str] | None = None,
        scans: ScanQueue | None = None,
    ) -> None:
        self.config = config
        self.readers = readers
        self.sinks = sinks
        self.labels = labels or {}
        self.scans = scans or ScanQueue()
        self.queue = OrderQueue(config.database) if config.assign == "fifo" else None
        self.stop_event = threading.Event()
        self.totals = Totals()
        self.status = {r: SlotStatus(reader=r, label=self.labels.get(r, r)) for r in readers}
        self._slots = {r: _Slot(self, r) for r in readers}
        self._lock = threading.Lock()
        self._last_event = time.monotonic()
        self._outages = 0
        # Readers whose card was reported removed lately, and when: an outage
        # that follows at once was the reason, not a pull.
        self._recent_removed: dict[str, float] = {}
        self._dispatch_lock = threading.Lock()
        self._monitor = threading.Thread(target=self._watch, name="bench monitor", daemon=True)

    # -- events ------------------------------------------------------------

    def emit(self, event: BenchEvent) -> None:
        """Hand an event to every sink (one at a time: sinks need no locking)."""
        with self._lock:
            self._last_event = time.monotonic()
            if event.event == "card":
                if event.result == "pass":
                    self.totals.passed += 1
                    if self.totals.first_pass_s is None:
                        self.totals.first_pass_s = time.monotonic() - self.totals.started
                elif event.result == "fail":
                    self.totals.failed += 1
                else:
                    self.totals.skipped += 1
            for sink in self.sinks:
                try:
                    sink(event)
                except Exception:
                    log.exception("bench event sink failed")
            limit = self.config.exit_after
            if limit is not None and self.totals.done >= limit:
                self.stop_event.set()

    def _event(self, kind: str, reader: str | None = None, **values: Any) -> None:
        label = None if reader is None else self.labels.get(reader, reader)
        self.emit(BenchEvent(kind, datetime.now(UTC), reader=label, **values))

    def _set(self, reader: str, state: str, **values: Any) -> None:
        with self._lock:
            status = self.status[reader]
            status.state = state
            for name in ("iccid", "service_code", "rule", "message", "seconds"):
                setattr(status, name, values.get(name))
            status.changed_at = datetime.now(UTC)

    # -- running -----------------------------------------------------------

    def start(self) -> None:
        """Start the monitor and the workers (returns at once)."""
        self.totals = Totals()
        self._event("start", message=f"{len(self.readers)} readers, {self.config.mode}")
        for slot in self._slots.values():
            slot.thread.start()
        self._monitor.start()

    def idle_for(self) -> float:
        """Seconds since the last event."""
        return time.monotonic() - self._last_event

    def should_stop(self) -> bool:
        """True once an exit condition (``--exit-after``, ``--idle-exit``) holds."""
        idle = self.config.idle_exit
        if idle is not None and self.idle_for() >= idle:
            self.stop_event.set()
        return self.stop_event.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking cards; wait for passes in progress to finish."""
        self.stop_event.set()
        for slot in self._slots.values():
            slot.inserted.put(0)
        deadline = time.monotonic() + timeout
        for slot in self._slots.values():
            if slot.thread.is_alive():
                slot.thread.join(max(0.0, deadline - time.monotonic()))
        self._monitor.join(max(0.0, deadline - time.monotonic()))
        if self.queue is not None:
            self.queue.close()
        self._event(
            "stop",
            message=f"{self.totals.passed} passed, {self.totals.failed} failed, "
            f"{self.totals.skipped} skipped",
        )

    def run(self, tick: Callable[[], None] | None = None, interval: float = 0.1) -> Totals:
        """Start, wait for an exit condition (or KeyboardInterrupt), stop; the totals."""
        self.start()
        try:
            while not self.should_stop():
                if tick is not None:
                    tick()
                self.stop_event.wait(interval)
        finally:
            self.stop()
            if tick is not None:
                tick()
        return self.totals

    def _watch(self) -> None:
        monitor = ReaderMonitor(poll_ms=500, readers=list(self.readers))
        for event in monitor.events(self.stop_event):
            with self._dispatch_lock:
                self._dispatch(event)

    def _dispatch(self, event: ReaderEvent) -> None:
        slot = self._slots.get(event.reader)
        now = time.monotonic()
        if event.kind == "removed" and slot is not None:
            slot.present.clear()
            slot.removed.set()
            self._recent_removed[event.reader] = now
            self._removed(event.reader)
            return
        if event.kind in ("service-lost", "reader-removed"):
            # The removals just before an outage were no pulls: the cards are
            # probably still there, and are recognised when seen again.
            gone = (
                [r for r, at in self._recent_removed.items() if now - at < _OUTAGE_WINDOW_S]
                if event.kind == "service-lost"
                else [event.reader]
            )
            for reader in gone:
                if reader in self._slots:
                    self._slots[reader].held = True
            self._recent_removed.clear()
            if event.kind == "service-lost":
                self._outages += 1
            self._event(event.kind, event.reader or None)
            return
        if event.kind == "inserted" and slot is not None:
            slot.removed.clear()
            slot.present.set()
            slot.inserted.put(1)
        elif event.kind == "service-back":
            self._event("service-back")

    def _removed(self, reader: str) -> None:
        if self.status[reader].state not in ("reading", "scan"):
            self._set(reader, "waiting")
        self._event("removed", reader)

    # -- one card ----------------------------------------------------------

    def handle(self, slot: _Slot) -> None:
        """One inserted card, from its ICCID to its outcome."""
        reader = slot.reader
        started = time.monotonic()
        outages = self._outages
        iccid: str | None = None
        self._set(reader, "reading")
        transport = PcscTransport(reader, timeout=self.config.timeout)
        try:
            transport.connect()
            iccid = read_iccid(transport)
            if slot.held and slot.finished_iccid == iccid:
                # The same card, seen again after an outage: its pass is done.
                slot.held = False
                if slot.last is not None:
                    self._set(reader, slot.last[0], **slot.last[1])
                self._event("resumed", reader, iccid=iccid)
                return
            slot.held = False
            slot.finished_iccid = None
            self._event("inserted", reader, iccid=iccid)
            outcome = self._work(slot, transport, iccid)
            if outcome is None:
                self._set(reader, "waiting")
                return
        except TransportError as error:
            outcome = self._card_error(slot, error, iccid, outages)
            if outcome is None:
                self._set(reader, "waiting")
                self._event("interrupted", reader, iccid=iccid, message=str(error))
                return
        except CardError as error:
            outcome = CardOutcome("fail", iccid, rule="card-error", message=str(error))
        except SimtoolError as error:
            rule = getattr(error, "rule", None) or type(error).__name__
            outcome = CardOutcome("fail", iccid, rule=str(rule), message=str(error))
        finally:
            transport.disconnect()
        seconds = time.monotonic() - started
        self._finish(slot, outcome, seconds)

    def _work(self, slot: _Slot, transport: PcscTransport, iccid: str) -> CardOutcome | None:
        config = self.config
        card = ReaderCard(transport)
        if config.mode is BenchMode.RETURN:
            return return_card_at_bench(config.database, config.actor, iccid, card)
        if config.mode is BenchMode.DIAGNOSE:
            if config.keyring is None:
                raise ValueError("a diagnosing bench needs the secrets keyring")
            return diagnose_at_bench(config.database, config.actor, config.keyring, transport)
        service_code = None
        label = None
        if config.assign == "scan":
            scan = self._wait_for_scan(slot, iccid)
            if scan is None:
                return None
            service_code, label = scan.service_code, scan.label_iccid
            self._set(slot.reader, "reading", iccid=iccid, service_code=service_code)
        bundled = config.bundled_modem() if config.bundled_modem is not None else None
        return provision_card(
            config.database,
            config.actor,
            iccid,
            card,
            queue=self.queue,
            service_code=service_code,
            scanned_iccid=label,
            keyring=config.keyring,
            bundled_modem=bundled,
        )

    def _wait_for_scan(self, slot: _Slot, iccid: str) -> Scan | None:
        self._set(slot.reader, "scan", iccid=iccid)
        self._event("waiting-scan", slot.reader, iccid=iccid)
        while not self.stop_event.is_set() and not slot.removed.is_set():
            scan = self.scans.take(0.2)
            if scan is not None:
                return scan
        return None

    def _card_error(
        self, slot: _Slot, error: SimtoolError, iccid: str | None, outages: int
    ) -> CardOutcome | None:
        """A failure mid-way: the card pulled (an outcome), or pcscd gone (run it again)."""
        deadline = time.monotonic() + _SETTLE_S
        while time.monotonic() < deadline and self._outages == outages:
            if slot.removed.wait(0.05):
                # A pull and an outage both start with "removed"; the outage
                # follows at once if there is one.
                slot.removed.wait(0.05)
                time.sleep(0.05)
                break
        if self._outages != outages or slot.held:
            return None
        removed = slot.removed.is_set() or isinstance(error, NoCardError)
        return outcome_of_card_error(iccid, error, removed)

    def _finish(self, slot: _Slot, outcome: CardOutcome, seconds: float) -> None:
        config = self.config
        try:
            record_outcome(
                config.database,
                config.actor,
                outcome,
                reader=slot.reader,
                mode=config.mode,
                seconds=seconds,
            )
        except SimtoolError as error:
            log.error("bench: the outcome of %s could not be recorded: %s", outcome.iccid, error)
        if outcome.rule != "card-removed":
            slot.finished_iccid = outcome.iccid
        state = {"pass": "pass", "fail": "fail", "skip": "skip"}[outcome.result]
        values = {
            "iccid": outcome.iccid,
            "service_code": outcome.service_code,
            "rule": outcome.rule,
            "message": outcome.message,
            "seconds": seconds,
        }
        self._set(slot.reader, state, **values)
        slot.last = (state, values)
        self.emit(
            BenchEvent(
                "card",
                datetime.now(UTC),
                reader=self.labels.get(slot.reader, slot.reader),
                iccid=outcome.iccid,
                result=outcome.result,
                service_code=outcome.service_code,
                rule=outcome.rule,
                seconds=seconds,
                message=outcome.message,
            )
        )
