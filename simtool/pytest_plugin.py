"""Virtual SIM cards and simulated modems for any project's pytest suite.

Installed with simtool, this plugin (entry point ``pytest11``) gives every test
suite three fixtures, the way pytest-postgresql serves databases:

``sim_virtual_card``
    An in-process virtual UICC, connected: no pcscd, no lab, no root. Its
    profile is ``default`` unless the test says otherwise with
    ``@pytest.mark.sim_profile("classic-sim")`` (a profile name or a JSON file)
    or indirect parametrisation (``@pytest.mark.parametrize("sim_virtual_card",
    ["blocked-pin"], indirect=True)``).

``sim_lab``
    Virtual cards in real readers: a private pcscd with vpcd, the same path a
    physical reader takes (needs root or user namespaces, and Debian's pcscd
    and vsmartcard-vpcd). ``@pytest.mark.sim_lab(cards=2, profiles=[...])``
    says how many cards and which; they are inserted for the test and pulled
    at its end. One lab serves the whole session (starting pcscd takes about a
    second), and its socket is chosen before any test can touch pyscard,
    because the PC/SC library reads ``PCSCLITE_CSOCK_NAME`` only once per
    process. A session that uses ``sim_lab`` therefore talks to the lab's
    pcscd, not to the system's.

``sim_modem``
    A simulated AT modem in its own process on a real pty, which pyserial
    opens like ``/dev/ttyUSB2``. ``@pytest.mark.sim_modem(dialect="quectel",
    faults="echo,urc", latency=0.02, profile="default")`` chooses it;
    ``sim_modem_factory(dialect, ...)`` starts more than one.

Everything heavy is imported inside the fixtures: loading the plugin costs a
project that does not use it nothing.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from apdu.card import Card
    from apdu.command import ResponseApdu
    from apdu.lab import Lab
    from apdu.transport.inprocess import InProcessTransport
    from apdu.virtual import CardProfile, VirtualUicc

#: How long a simulated modem may take to print its pty path.
MODEM_STARTUP_SECONDS = 15.0
LAB_FIXTURE = "sim_lab"

_LABDIR = pytest.StashKey[Path]()
_LAB_SERVER = pytest.StashKey["LabServer"]()


def pytest_configure(config: pytest.Config) -> None:
    """Declare the markers the fixtures read."""
    config.addinivalue_line(
        "markers", "sim_profile(name): the profile of sim_virtual_card (name or JSON file)"
    )
    config.addinivalue_line(
        "markers", "sim_lab(cards=1, profiles=()): the cards sim_lab inserts for the test"
    )
    config.addinivalue_line(
        "markers",
        "sim_modem(dialect='generic', faults=None, latency=0.0, profile=None): "
        "the modem sim_modem starts",
    )


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Point PC/SC at the lab before any test runs, if a collected test needs the lab."""
    if not any(LAB_FIXTURE in getattr(item, "fixturenames", ()) for item in items):
        return
    _choose_labdir(config)


def _choose_labdir(config: pytest.Config) -> Path:
    """The session's lab directory; sets the PC/SC socket variable once, early."""
    from apdu.lab.layout import LABDIR_ENV, PCSC_SOCKET_ENV, LabLayout

    labdir = config.stash.get(_LABDIR, None)
    if labdir is not None:
        return labdir
    given = os.environ.get(LABDIR_ENV)
    if given and os.environ.get(PCSC_SOCKET_ENV) == str(LabLayout(Path(given)).pcsc_socket):
        # The suite (or the shell) already pointed PC/SC at a lab: share it.
        labdir = Path(given)
    else:
        # Short and under /tmp: unix socket paths are limited to 107 bytes.
        labdir = Path(tempfile.mkdtemp(prefix="simtool-lab-", dir="/tmp"))
        os.environ[PCSC_SOCKET_ENV] = str(LabLayout(labdir).pcsc_socket)
        os.environ[LABDIR_ENV] = str(labdir)
        config.add_cleanup(lambda: shutil.rmtree(labdir, ignore_errors=True))
    config.stash[_LABDIR] = labdir
    return labdir


@dataclass
class LabServer:
    """The session's lab and which of its slots are lent to tests."""

    lab: Lab
    free: list[int]

    def take(self, count: int) -> list[int]:
        """``count`` free slots, highest first (low slots stay for stock cards)."""
        if count > len(self.free):
            raise pytest.UsageError(
                f"sim_lab asked for {count} cards; {len(self.free)} slots are free"
            )
        taken, self.free = self.free[:count], self.free[count:]
        return taken

    def give_back(self, slots: Sequence[int]) -> None:
        """Return slots to the pool (their cards pulled)."""
        for slot in slots:
            if self.lab.slot(slot).present:
                self.lab.remove(slot)
        self.free = sorted({*self.free, *slots}, reverse=True)

    def reserve(self, slots: Sequence[int]) -> None:
        """Keep ``slots`` out of the pool for good (a suite's own stock cards)."""
        busy = [slot for slot in slots if slot not in self.free]
        if busy:
            raise pytest.UsageError(f"lab slots {busy} are already in use")
        self.free = [slot for slot in self.free if slot not in slots]


def lab_server(config: pytest.Config) -> LabServer:
    """The session lab (16 empty readers), started on first use and stopped at the end."""
    server = config.stash.get(_LAB_SERVER, None)
    if server is not None:
        return server
    from apdu.lab import MAX_SLOTS, Lab, LabError

    labdir = _choose_labdir(config)
    try:
        lab = Lab.up(cards=0, slots=MAX_SLOTS, labdir=labdir, fresh=True)
    except LabError as error:
        # No skip: a suite that silently skips its card tests proves nothing.
        pytest.fail(f"the virtual card lab cannot start: {error}", pytrace=False)
    server = LabServer(lab, list(range(MAX_SLOTS - 1, -1, -1)))
    config.stash[_LAB_SERVER] = server
    config.add_cleanup(lab.down)
    return server


@dataclass
class LabCards:
    """The cards ``sim_lab`` inserted for one test."""

    lab: Lab
    slots: list[int]
    profiles: list[CardProfile]

    @property
    def readers(self) -> list[str]:
        """The PC/SC reader names of the cards, in order."""
        return [self.lab.reader_name(slot) for slot in self.slots]

    @property
    def urls(self) -> list[str]:
        """``lab:N`` reader URLs of the cards, for simtool commands."""
        return [f"lab:{slot}" for slot in self.slots]

    def remove(self, index: int = 0) -> None:
        """Pull card ``index``; returns once pcscd sees the slot empty."""
        self.lab.remove(self.slots[index])

    def insert(self, index: int = 0) -> None:
        """Put card ``index`` back, with its state."""
        self.lab.insert(self.slots[index])


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    marker = request.node.get_closest_marker(name)
    if marker is None:
        return {}
    kwargs = dict(marker.kwargs)
    if marker.args:
        kwargs.setdefault("_args", marker.args)
    return kwargs


@pytest.fixture
def sim_lab(request: pytest.FixtureRequest) -> Iterator[LabCards]:
    """Virtual cards in the lab's readers (real pcscd + vpcd), pulled after the test."""
    from apdu.virtual import lab_profile, load_profile

    options = _marker_kwargs(request, "sim_lab")
    named = [load_profile(p) for p in options.get("profiles", ())]
    count = int(options.get("cards", max(1, len(named))))
    server = lab_server(request.config)
    slots = server.take(count)
    profiles = [
        named[i] if i < len(named) else lab_profile(next(_lab_serials)) for i in range(count)
    ]
    try:
        for slot, profile in zip(slots, profiles, strict=True):
            server.lab.insert(slot, profile)
        yield LabCards(server.lab, slots, profiles)
    finally:
        server.give_back(slots)


def _serials() -> Iterator[int]:
    # Stock numbers far from a suite's own lab stock, so ICCIDs never collide.
    number = 5000
    while True:
        yield number
        number += 1


_lab_serials = _serials()


@dataclass
class VirtualCard:
    """An in-process virtual UICC and a connected transport to it."""

    profile: CardProfile
    card: VirtualUicc
    transport: InProcessTransport
    atr: bytes = field(default=b"")

    def transmit(self, command: bytes) -> ResponseApdu:
        """Send one command APDU (bytes); returns the response (``.data``, ``.sw``)."""
        return self.transport.transmit(command)

    def api(self) -> Card:
        """simtool's card API over this card (``read_identity()``, PIN counters, ...)."""
        from apdu.card import Card

        return Card(self.transport)


@pytest.fixture
def sim_virtual_card(request: pytest.FixtureRequest) -> Iterator[VirtualCard]:
    """An in-process virtual UICC (profile from ``sim_profile`` or indirect param)."""
    from apdu.transport.inprocess import InProcessTransport
    from apdu.virtual import VirtualUicc, load_profile

    source = getattr(request, "param", None)
    if source is None:
        args = _marker_kwargs(request, "sim_profile").get("_args", ("default",))
        source = args[0]
    profile = load_profile(source)
    card = VirtualUicc(profile)
    transport = InProcessTransport(card, name=f"virtual:{profile.name}")
    atr = transport.connect()
    try:
        yield VirtualCard(profile, card, transport, atr)
    finally:
        transport.disconnect()


@dataclass
class SimulatedModem:
    """A simulator process serving one modem on a pty."""

    port: str
    dialect: str
    process: subprocess.Popen[str]

    @property
    def path(self) -> str:
        """The pty path (the same as :attr:`port`)."""
        return self.port

    def control(self, command: str, timeout: float = MODEM_STARTUP_SECONDS) -> None:
        """Drive the SIM tray while a client holds the port (``sim pull``, ``sim insert``,
        ``sim stall``); returns once the simulator acknowledged. Needs ``control=True``."""
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            pytest.fail("this simulated modem was started without control=True")
        stdin.write(command + "\n")
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], timeout)
        answer = stdout.readline().strip() if ready else "(nothing)"
        if answer != f"ok {command}":
            pytest.fail(f"simulator control {command!r} answered {answer!r}")

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(timeout=10)
        return self.process.returncode


ModemFactory = Callable[..., SimulatedModem]


def start_modem(
    dialect: str = "generic",
    *,
    faults: str | None = None,
    latency: float = 0.0,
    profile: str | None = None,
    control: bool = False,
) -> SimulatedModem:
    """Start ``python -m modem.simulator`` and wait (bounded) for its pty path.

    ``control=True`` keeps a line to the simulator's SIM tray open
    (:meth:`SimulatedModem.control`).
    """
    command = [sys.executable, "-m", "modem.simulator", "--dialect", dialect]
    command += ["--latency", str(latency)]
    if faults:
        command += ["--faults", faults]
    if profile:
        command += ["--profile", profile]
    if control:
        command.append("--control-stdin")
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE if control else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    assert process.stdout is not None
    end = time.monotonic() + MODEM_STARTUP_SECONDS
    ready, _, _ = select.select([process.stdout], [], [], max(0.0, end - time.monotonic()))
    if not ready:
        process.kill()
        process.wait()
        pytest.fail(
            f"the {dialect} modem simulator printed no pty within {MODEM_STARTUP_SECONDS} s"
        )
    path = process.stdout.readline().strip()
    if not path.startswith("/dev/"):
        process.kill()
        error = process.stderr.read() if process.stderr else ""
        process.wait()
        pytest.fail(f"the {dialect} modem simulator did not start: {path!r} {error}")
    return SimulatedModem(path, dialect, process)


@pytest.fixture
def sim_modem_factory() -> Iterator[ModemFactory]:
    """``sim_modem_factory(dialect, faults=, latency=, profile=)``; stopped after the test."""
    started: list[SimulatedModem] = []

    def start(dialect: str = "generic", **options: Any) -> SimulatedModem:
        modem = start_modem(dialect, **options)
        started.append(modem)
        return modem

    yield start
    for modem in started:
        modem.stop()


@pytest.fixture
def sim_modem(request: pytest.FixtureRequest, sim_modem_factory: ModemFactory) -> SimulatedModem:
    """A simulated modem on a pty (``sim_modem`` marker or indirect param: the dialect)."""
    options = _marker_kwargs(request, "sim_modem")
    args = options.pop("_args", ())
    dialect = getattr(request, "param", None) or (args[0] if args else None)
    dialect = dialect or options.pop("dialect", "generic")
    options.pop("dialect", None)
    return sim_modem_factory(dialect, **options)
