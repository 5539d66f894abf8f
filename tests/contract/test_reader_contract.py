"""One card contract, every reader backend.

The way python-can's back-to-back tests run one suite of bus scenarios over
every interface, these scenarios run over every reader backend of
:mod:`simtool.readers`, each opened by its URL through the registry as a
command opens it:

- ``virtual``: ``virtual:default``, the virtual UICC in this process;
- ``replay``: the scenario runs once on ``virtual:default`` with ``--trace``
  files, then again on ``replay:`` of those files, which must answer the same
  and be used up exactly;
- ``lab``: a fresh card in a lab slot, ``lab:N``, through real pcscd + vpcd;
- ``modem``: the SIM of the modem simulator on a real pty, ``modem:PTY``,
  through ``AT+CSIM``.

A scenario that cannot apply to a backend is left out of that backend's
parametrisation by :data:`EXCLUDED`, with the reason; nothing here skips.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from apdu.card import Card, read_card, read_iccid
from apdu.errors import DeadlineError, NoCardError
from apdu.pin import PinAttemptError, PinPolicy
from apdu.transport.base import CardTransport
from apdu.transport.inprocess import InProcessTransport
from apdu.transport.replay import ReplayTransport
from apdu.virtual import CardProfile, load_profile
from simtool.readers import OpenOptions, open_reader

BACKENDS = ("virtual", "replay", "lab", "modem")
SCENARIOS = ("identity", "counters", "pin_transitions", "removal", "deadline")

#: (backend, scenario) pairs that do not apply, and why. Kept explicit, so a
#: backend that cannot keep a promise of the contract says so here.
EXCLUDED: dict[tuple[str, str], str] = {
    ("replay", "removal"): (
        "a trace records the exchanges a card answered; pulling the card out is a reader "
        "event, not an answer, so a trace holds nothing that could replay it"
    ),
    ("replay", "deadline"): (
        "a stalled card gives no answer to record, and a replay answers every recorded "
        "command at once (or refuses one that departs from the trace): a deadline belongs "
        "to a live link"
    ),
}

#: The card every backend serves (the modem simulator and the lab load it by name).
PROFILE = "default"
DEADLINE = 0.5
MODEM_DIALECT = "quectel"
_MARKS: dict[str, tuple[pytest.MarkDecorator, ...]] = {"lab": (pytest.mark.lab,)}


def backends(scenario: str) -> list[Any]:
    """The parametrisation of ``scenario``: every backend it applies to."""
    assert scenario in SCENARIOS
    return [
        pytest.param(name, id=name, marks=_MARKS.get(name, ()))
        for name in BACKENDS
        if (name, scenario) not in EXCLUDED
    ]


# --- the benches: one per backend -----------------------------------------------------------


class Bench:
    """A card of one backend, and what a test does to it (pull it, stall it)."""

    name = ""

    def __init__(self, profile: CardProfile) -> None:
        self.profile = profile

    def url(self) -> str:
        """The reader URL of the card."""
        raise NotImplementedError

    def options(self, timeout: float | None) -> OpenOptions:
        return OpenOptions(timeout=timeout)

    def card(self, *, timeout: float | None = None) -> AbstractContextManager[CardTransport]:
        """The card, connected, as a command gets it."""
        return open_reader(self.url(), options=self.options(timeout))

    def pull(self, transport: CardTransport) -> None:
        """Take the card out of its reader while ``transport`` holds it."""
        raise NotImplementedError

    @contextmanager
    def stalled_card(self, timeout: float) -> Iterator[CardTransport]:
        """A connected card that answers no command."""
        raise NotImplementedError
        yield  # pragma: no cover

    def run(self, scenario: Callable[[Bench], None]) -> None:
        scenario(self)


class VirtualBench(Bench):
    name = "virtual"

    def __init__(self, profile: CardProfile, trace_dir: Path | None = None) -> None:
        super().__init__(profile)
        self.trace_dir = trace_dir
        self.opened = 0

    def url(self) -> str:
        return f"virtual:{PROFILE}"

    def options(self, timeout: float | None) -> OpenOptions:
        self.opened += 1
        trace = None if self.trace_dir is None else str(self.trace_dir / f"{self.opened}.jsonl")
        return OpenOptions(timeout=timeout, trace_path=trace)

    def pull(self, transport: CardTransport) -> None:
        assert isinstance(transport, InProcessTransport)
        transport.pull()

    @contextmanager
    def stalled_card(self, timeout: float) -> Iterator[CardTransport]:
        with self.card(timeout=timeout) as transport:
            assert isinstance(transport, InProcessTransport)
            transport.stall()
            yield transport


class ReplayBench(Bench):
    """Records each scenario on a virtual card, then replays the recording."""

    name = "replay"

    def __init__(self, profile: CardProfile, trace_dir: Path) -> None:
        super().__init__(profile)
        self.trace_dir = trace_dir
        self.opened = 0
        self.replays: list[ReplayTransport] = []

    def url(self) -> str:
        self.opened += 1
        return f"replay:{self.trace_dir / f'{self.opened}.jsonl'}"

    @contextmanager
    def card(self, *, timeout: float | None = None) -> Iterator[CardTransport]:
        with open_reader(self.url(), options=OpenOptions(timeout=timeout)) as transport:
            assert isinstance(transport, ReplayTransport)
            self.replays.append(transport)
            yield transport

    def run(self, scenario: Callable[[Bench], None]) -> None:
        recorder = VirtualBench(self.profile, self.trace_dir)
        scenario(recorder)
        scenario(self)
        assert self.opened == recorder.opened
        # The replay asked for exactly what was recorded, nothing more, nothing less.
        assert [replay.remaining for replay in self.replays] == [0] * len(self.replays)


class LabBench(Bench):
    name = "lab"

    def __init__(self, profile: CardProfile, lab: Any, fresh_card: Any) -> None:
        super().__init__(profile)
        self.lab = lab
        self.fresh_card = fresh_card
        reader, _ = fresh_card(profile)
        self.slot = lab.slot_of(reader)

    def url(self) -> str:
        return f"lab:{self.slot}"

    def pull(self, transport: CardTransport) -> None:
        self.lab.remove(self.slot)

    @contextmanager
    def stalled_card(self, timeout: float) -> Iterator[CardTransport]:
        # The lab's mute card gives its ATR, then never answers over vpcd.
        reader, _ = self.fresh_card("mute")
        url = f"lab:{self.lab.slot_of(reader)}"
        with open_reader(url, options=OpenOptions(timeout=timeout)) as transport:
            yield transport


class ModemBench(Bench):
    name = "modem"

    def __init__(self, profile: CardProfile, simulator: Any) -> None:
        super().__init__(profile)
        self.simulator = simulator

    def url(self) -> str:
        return f"modem:{self.simulator.path}"

    def options(self, timeout: float | None) -> OpenOptions:
        return OpenOptions(timeout=timeout, dialect=MODEM_DIALECT)

    def pull(self, transport: CardTransport) -> None:
        self.simulator.control("sim pull")

    @contextmanager
    def stalled_card(self, timeout: float) -> Iterator[CardTransport]:
        with self.card(timeout=timeout) as transport:
            self.simulator.control("sim stall")
            yield transport


@pytest.fixture
def bench(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bench]:
    """The backend named by the parametrisation, serving the ``default`` card."""
    # Virtual cards keep their state in the user's state directory: the test's own.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    profile = load_profile(PROFILE)
    name = request.param
    if name == "virtual":
        yield VirtualBench(profile)
    elif name == "replay":
        yield ReplayBench(profile, tmp_path)
    elif name == "lab":
        yield LabBench(
            profile, request.getfixturevalue("lab"), request.getfixturevalue("fresh_card")
        )
    elif name == "modem":
        from simtool.pytest_plugin import start_modem

        simulator = start_modem(MODEM_DIALECT, profile=PROFILE, control=True)
        try:
            yield ModemBench(profile, simulator)
        finally:
            simulator.stop()
    else:  # pragma: no cover - a backend added to BACKENDS without a bench
        pytest.fail(f"no bench for backend {name!r}")


# --- the scenarios --------------------------------------------------------------------------


def identity(bench: Bench) -> None:
    """The identity read gives the profile's ICCID, IMSI and MSISDN."""
    with bench.card() as transport:
        card = read_card(transport)
    assert card.iccid == bench.profile.iccid
    assert card.iccid_luhn_ok
    assert card.imsi == bench.profile.imsi
    assert card.msisdn == bench.profile.msisdn
    assert card.card_type == "uicc"


def counters(bench: Bench) -> None:
    """Counters are read without spending an attempt: the same twice, full."""
    full = {"pin1": 3, "pin2": 3, "puk1": 10, "puk2": 10}
    for _ in range(2):
        with bench.card() as transport:
            pins = PinPolicy(Card(transport)).status()
        assert {name: pin.retries for name, pin in pins.items()} == full
        assert pins["pin1"].enabled


def pin_transitions(bench: Bench) -> None:
    """verify wrong, verify right, change and change back; each counter as the card keeps it."""
    with bench.card() as transport:
        policy = PinPolicy(Card(transport))
        with pytest.raises(PinAttemptError) as wrong:
            policy.verify("pin1", "9999")
        assert (wrong.value.retries_before, wrong.value.retries_after) == (3, 2)
    # A new session, as the next command would open it: the counter was kept.
    with bench.card() as transport:
        policy = PinPolicy(Card(transport))
        assert policy.counter("pin1") == (2, False)
        assert policy.verify("pin1", "0000").retries_after == 3
        assert policy.change("pin1", "0000", "2468").retries_after == 3
    with bench.card() as transport:
        policy = PinPolicy(Card(transport))
        with pytest.raises(PinAttemptError):
            policy.verify("pin1", "0000")
        assert policy.change("pin1", "2468", "0000").retries_after == 3
        # Back to the default, with a full counter.
        assert policy.verify("pin1", "0000").retries_after == 3


def removal(bench: Bench) -> None:
    """A card pulled out mid-use: the next command fails with the removal error."""
    with bench.card() as transport:
        assert read_iccid(transport) == bench.profile.iccid
        bench.pull(transport)
        with pytest.raises(NoCardError):
            read_iccid(transport)


def deadline(bench: Bench) -> None:
    """A card that stops answering: DeadlineError once the deadline has passed, no hang."""
    with bench.stalled_card(DEADLINE) as transport:
        started = time.monotonic()
        with pytest.raises(DeadlineError):
            read_iccid(transport)
        elapsed = time.monotonic() - started
    assert DEADLINE * 0.8 <= elapsed < DEADLINE + 4.0


@pytest.mark.parametrize("bench", backends("identity"), indirect=True)
def test_identity(bench: Bench) -> None:
    bench.run(identity)


@pytest.mark.parametrize("bench", backends("counters"), indirect=True)
def test_counters(bench: Bench) -> None:
    bench.run(counters)


@pytest.mark.parametrize("bench", backends("pin_transitions"), indirect=True)
def test_pin_transitions(bench: Bench) -> None:
    bench.run(pin_transitions)


@pytest.mark.parametrize("bench", backends("removal"), indirect=True)
def test_removal(bench: Bench) -> None:
    bench.run(removal)


@pytest.mark.parametrize("bench", backends("deadline"), indirect=True)
def test_deadline(bench: Bench) -> None:
    bench.run(deadline)


def test_every_scenario_runs_or_is_excluded_with_a_reason() -> None:
    # Each scenario has its test, and every pair left out names a real backend
    # and scenario and says why: the matrix is complete by construction.
    for scenario in SCENARIOS:
        assert callable(globals()[f"test_{scenario}"])
    for (backend, scenario), reason in EXCLUDED.items():
        assert backend in BACKENDS and scenario in SCENARIOS
        assert len(reason) > 40, (backend, scenario)
    assert {"virtual", "lab", "modem"} == {
        name for name in BACKENDS if all((name, s) not in EXCLUDED for s in SCENARIOS)
    }
