"""Card insertion and removal events from every PC/SC reader.

pyscard's ``CardMonitor`` dies on a pcscd restart (its context answers
``SCARD_E_NO_SERVICE`` forever and the thread ends in tracebacks). This
monitor owns its context: on any context-level failure it releases it,
waits a little (with a cap), and establishes a new one, re-listing readers. It
also watches the PnP pseudo-reader so readers plugged in later are seen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from apdu.transport.pcsc import (
    SCARD_E_NO_READERS_AVAILABLE,
    SCARD_E_TIMEOUT,
    SCARD_S_SUCCESS,
    _scard,
    describe_pcsc_error,
)

log = logging.getLogger(__name__)

PNP_READER = "\\\\?PnP?\\Notification"

EventKind = Literal[
    "inserted", "removed", "reader-added", "reader-removed", "service-lost", "service-back"
]


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """Something that happened at a reader."""

    kind: EventKind
    reader: str
    atr: bytes | None = None


class ReaderMonitor:
    """Yields :class:`ReaderEvent` until ``stop`` is set.

    ``poll_ms`` bounds how long one wait blocks, so ``stop`` is honoured
    promptly; events themselves arrive as soon as pcscd reports them.
    """

    def __init__(
        self, *, poll_ms: int = 500, max_backoff: float = 2.0, readers: list[str] | None = None
    ) -> None:
        self.poll_ms = poll_ms
        self.max_backoff = max_backoff
        self.only = readers

    def events(self, stop: threading.Event) -> Iterator[ReaderEvent]:
        """Events in the order they happen; initial cards are reported as inserted."""
        scard = _scard()
        known: dict[str, int] = {}
        backoff = 0.05
        service_up = True
        while not stop.is_set():
            hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != SCARD_S_SUCCESS:
                if service_up:
                    service_up = False
                    yield ReaderEvent("service-lost", "", None)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if not service_up:
                service_up = True
                yield ReaderEvent("service-back", "", None)
            backoff = 0.05
            try:
                lost = yield from self._watch(scard, ctx, known, stop)
            finally:
                scard.SCardReleaseContext(ctx)
            if lost:
                # Cards seen before the loss are reported again once the
                # service is back, so forget them now.
                for reader in list(known):
                    if known.pop(reader) & scard.SCARD_STATE_PRESENT:
                        yield ReaderEvent("removed", reader)
                service_up = False
                yield ReaderEvent("service-lost", "", None)

    def _list(self, scard: Any, ctx: Any) -> tuple[int, list[str]]:
        hresult, names = scard.SCardListReaders(ctx, [])
        if hresult & 0xFFFFFFFF == SCARD_E_NO_READERS_AVAILABLE:
            return SCARD_S_SUCCESS, []
        names = list(names or [])
        if self.only is not None:
            names = [n for n in names if n in self.only]
        return hresult, names

    def _watch(
        self, scard: Any, ctx: Any, known: dict[str, int], stop: threading.Event
    ) -> Generator[ReaderEvent, None, bool]:
        """Wait for changes on one context; returns True when the context failed.

        Any failure other than a timeout abandons the context: re-establishing
        is cheap, and a context that failed once is not trusted again.
        """
        hresult, names = self._list(scard, ctx)
        if hresult != SCARD_S_SUCCESS:
            return True
        for gone in [r for r in known if r not in names]:
            if known.pop(gone) & scard.SCARD_STATE_PRESENT:
                yield ReaderEvent("removed", gone)
            yield ReaderEvent("reader-removed", gone)
        for name in names:
            if name not in known:
                known[name] = scard.SCARD_STATE_UNAWARE
                yield ReaderEvent("reader-added", name)
        query = [(name, known[name]) for name in names] + [(PNP_READER, len(names) << 16)]
        while not stop.is_set():
            hresult, states = scard.SCardGetStatusChange(ctx, self.poll_ms, query)
            code = hresult & 0xFFFFFFFF
            if code == SCARD_E_TIMEOUT:
                continue
            if code != SCARD_S_SUCCESS:
                log.info("reader monitor: %s; re-establishing", describe_pcsc_error(code))
                return True
            reader_list_changed = False
            new_query = []
            for name, event_state, atr in states:
                if name == PNP_READER:
                    if event_state & scard.SCARD_STATE_CHANGED:
                        reader_list_changed = True
                    new_query.append((name, event_state & ~scard.SCARD_STATE_CHANGED))
                    continue
                before = known.get(name, 0)
                present = bool(event_state & scard.SCARD_STATE_PRESENT)
                was_present = bool(before & scard.SCARD_STATE_PRESENT)
                if present and not was_present:
                    yield ReaderEvent("inserted", name, bytes(atr) if atr else None)
                elif was_present and not present:
                    yield ReaderEvent("removed", name)
                state = event_state & ~scard.SCARD_STATE_CHANGED
                known[name] = state
                new_query.append((name, state))
            query = new_query
            if reader_list_changed:
                return False
        return False


def wait_for_card(reader: str, *, present: bool = True, timeout: float = 5.0) -> bool:
    """Block until ``reader`` has (or has no) card; False on timeout."""
    deadline = time.monotonic() + timeout
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.daemon = True
    timer.start()
    try:
        for event in ReaderMonitor(poll_ms=100, readers=[reader]).events(stop):
            if event.reader != reader:
                continue
            if present and event.kind == "inserted":
                return True
            if not present and event.kind in ("removed", "reader-removed"):
                return True
            if not present and event.kind == "reader-added":
                # The first snapshot: a reader with no card reports nothing more.
                from apdu.transport.pcsc import reader_states

                states = {s.name: s for s in reader_states([reader])}
                if reader in states and not states[reader].card_present:
                    return True
            if time.monotonic() > deadline:
                break
        return False
    finally:
        timer.cancel()
        stop.set()
