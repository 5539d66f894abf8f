"""Fixtures shared by every test package: the virtual SIM lab.

``lab`` (session): the sim plugin's lab of 16 slots (``simtool.pytest_plugin``),
with the lab stock cards ``lab_profile(0..7)`` in slots 0-7; the other slots are
lent to ``fresh_card`` and the plugin's ``sim_lab``. It is started on first use.

``fresh_card`` (function): a factory; ``fresh_card()`` or
``fresh_card("blocked-pin")`` / ``fresh_card(profile)`` inserts a NEW card
(fresh state) into one of the test's free slots (round robin: the seventh
call of a test replaces its first card) and returns ``(reader_name, profile)``. Tests
that block PINs or pull cards use it so that they disturb no other test.
The cards are pulled again at the end of the test.

libpcsclite reads ``PCSCLITE_CSOCK_NAME`` once per process, when it is first
used, so the lab directory (and with it the socket path) is chosen when
pytest starts, before any test can touch pyscard; ``SIMTOOL_LAB_DIR`` is set
too, so that ``simtool`` subprocesses find the same lab.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from apdu.lab import Lab
from apdu.lab.layout import LABDIR_ENV, PCSC_SOCKET_ENV, LabLayout
from apdu.virtual import CardProfile, lab_profile, load_profile
from simtool.pytest_plugin import lab_server

# Hypothesis' per-example deadline measures wall time: on a shared 2-core
# machine running several workers it fails tests for load, not for bugs. Speed
# is measured by the benchmarks in bench/, never by tests.
settings.register_profile("simtool", deadline=None)
settings.load_profile("simtool")

#: Lab stock cards in slots 0..LAB_CARDS-1; the rest are for fresh_card.
LAB_CARDS = 8
#: Slots one test's fresh_card may hold at once (the rest stay for sim_lab).
FRESH_CARDS = 6
#: lab_profile indexes of fresh cards start here (unique ICCIDs per session).
FRESH_INDEX_BASE = 1000

FreshCard = Callable[..., tuple[str, CardProfile]]

_SESSION_LABDIR = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """Choose the session lab's directory and point PC/SC at it before any test runs."""
    # Short, under /tmp: unix socket paths are limited to 107 bytes.
    labdir = Path(tempfile.mkdtemp(prefix="simtool-lab-", dir="/tmp"))
    config.stash[_SESSION_LABDIR] = labdir
    os.environ[PCSC_SOCKET_ENV] = str(LabLayout(labdir).pcsc_socket)
    os.environ[LABDIR_ENV] = str(labdir)
    # virtual: readers keep card state in the user's state directory: during
    # the tests, one of the session's own (never the developer's cards).
    os.environ["XDG_STATE_HOME"] = str(labdir / "state")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop a lab left running (after a crash) and remove the session lab's directory."""
    labdir = config.stash.get(_SESSION_LABDIR, None)
    if labdir is None:
        return
    lab = Lab.find(labdir)
    if lab is not None:
        lab.down()
    shutil.rmtree(labdir, ignore_errors=True)


@pytest.fixture(scope="session")
def lab(pytestconfig: pytest.Config) -> Lab:
    """The session's virtual lab (real pcscd + vpcd + virtual cards), from the sim plugin.

    Slots 0..LAB_CARDS-1 hold the lab stock cards; the plugin's ``sim_lab``
    fixture lends the other slots to tests, as ``fresh_card`` does.
    """
    server = lab_server(pytestconfig)
    stock = list(range(LAB_CARDS))
    server.reserve(stock)
    for slot in stock:
        server.lab.insert(slot, lab_profile(slot))
    return server.lab


_fresh_numbers = itertools.count(FRESH_INDEX_BASE)


@pytest.fixture
def fresh_card(lab: Lab, pytestconfig: pytest.Config) -> Iterator[FreshCard]:
    """Insert new cards (fresh state) into free slots: ``fresh_card(profile=None)``.

    ``profile`` is a CardProfile, a profile name or file, or None for a new
    lab stock card with an ICCID unused so far in the session. A test may ask
    for any number of cards: past FRESH_CARDS, the oldest slot is reused.
    """
    server = lab_server(pytestconfig)
    slots = server.take(FRESH_CARDS)
    calls = itertools.count()

    def insert(profile: CardProfile | str | Path | None = None) -> tuple[str, CardProfile]:
        slot = slots[next(calls) % len(slots)]
        if profile is None:
            card = lab_profile(next(_fresh_numbers))
        elif isinstance(profile, CardProfile):
            card = profile
        else:
            card = load_profile(profile)
        if lab.slot(slot).present:
            lab.remove(slot)
        lab.insert(slot, card)
        return lab.reader_name(slot), card

    try:
        yield insert
    finally:
        server.give_back(slots)
