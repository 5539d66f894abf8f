"""Fixtures shared by every test package: the virtual SIM lab.

``lab`` (session): a lab of 16 slots, lab stock cards ``lab_profile(0..7)`` in
slots 0-7, slots 8-15 free for ``fresh_card``. It is started on first use.

``fresh_card`` (function): a factory; ``fresh_card()`` or
``fresh_card("blocked-pin")`` / ``fresh_card(profile)`` inserts a NEW card
(fresh state) into one of the free slots (round robin: the ninth call of a
test replaces its first card) and returns ``(reader_name, profile)``. Tests
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

from apdu.virtual import CardProfile, lab_profile, load_profile
from simtool.lab import Lab, LabError
from simtool.lab.layout import LABDIR_ENV, PCSC_SOCKET_ENV, LabLayout

#: Lab stock cards in slots 0..LAB_CARDS-1; the rest are for fresh_card.
LAB_CARDS = 8
LAB_SLOTS = 16
FRESH_SLOTS = tuple(range(LAB_CARDS, LAB_SLOTS))
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
def lab(pytestconfig: pytest.Config) -> Iterator[Lab]:
    """The session's virtual lab (real pcscd + vpcd + virtual cards)."""
    labdir = pytestconfig.stash[_SESSION_LABDIR]
    try:
        running = Lab.up(cards=LAB_CARDS, slots=LAB_SLOTS, labdir=labdir, fresh=True)
    except LabError as error:
        # No skip: a suite that silently skips its lab tests proves nothing.
        pytest.fail(
            f"the virtual lab cannot start, so lab tests cannot run: {error}", pytrace=False
        )
    try:
        yield running
    finally:
        running.down()


_fresh_numbers = itertools.count(FRESH_INDEX_BASE)


@pytest.fixture
def fresh_card(lab: Lab) -> Iterator[FreshCard]:
    """Insert new cards (fresh state) into free slots: ``fresh_card(profile=None)``.

    ``profile`` is a CardProfile, a profile name or file, or None for a new
    lab stock card with an ICCID unused so far in the session.
    """
    used: list[int] = []
    calls = itertools.count()

    def insert(profile: CardProfile | str | Path | None = None) -> tuple[str, CardProfile]:
        # Round robin: a test (or a hypothesis loop) may ask for any number of
        # cards; the ninth replaces the first.
        slot = FRESH_SLOTS[next(calls) % len(FRESH_SLOTS)]
        if profile is None:
            card = lab_profile(next(_fresh_numbers))
        elif isinstance(profile, CardProfile):
            card = profile
        else:
            card = load_profile(profile)
        if lab.slot(slot).present:
            lab.remove(slot)
        lab.insert(slot, card)
        if slot not in used:
            used.append(slot)
        return lab.reader_name(slot), card

    yield insert
    for slot in used:
        if lab.slot(slot).present:
            lab.remove(slot)
