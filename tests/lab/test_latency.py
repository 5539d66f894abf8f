"""``simtool lab up --latency MS [--jitter MS]``: lab cards answer at real cards' speed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apdu.errors import UsageError
from apdu.lab import Lab
from apdu.lab.latency import CardLatency, SlowCard
from apdu.lab.layout import LABDIR_ENV, PCSC_SOCKET_ENV
from apdu.virtual import VirtualUicc, lab_profile


def test_delay_within_the_jitter() -> None:
    latency = CardLatency()
    assert latency.delay() == 0.0
    latency.set(10, 2)
    delays = [latency.delay() for _ in range(500)]
    assert 0.008 <= min(delays) < 0.0095 and 0.0105 < max(delays) <= 0.012
    assert latency.milliseconds == (10.0, 2.0)
    with pytest.raises(UsageError, match="jitter"):
        latency.set(5, 10)
    with pytest.raises(UsageError, match="latency must be"):
        latency.set(-1)


def test_slow_card_is_the_card_it_wraps() -> None:
    card = VirtualUicc(lab_profile(0))
    slow = SlowCard(card, CardLatency())
    assert slow.atr == card.atr == slow.power_on()
    # SELECT MF answers as the card does (no delay set): the wrapper only waits.
    assert (
        slow.process(bytes.fromhex("00A40004023F00"))[-2:]
        == card.process(bytes.fromhex("00A40004023F00"))[-2:]
    )
    assert slow.profile is card.profile  # other attributes are the card's


@pytest.fixture(scope="module")
def slow_lab() -> Iterator[Lab]:
    labdir = Path(tempfile.mkdtemp(prefix="h6-latency-", dir="/tmp"))
    lab = Lab.up(cards=2, labdir=labdir, fresh=True)
    try:
        yield lab
    finally:
        lab.down()
        shutil.rmtree(labdir, ignore_errors=True)


@pytest.mark.lab
def test_lab_up_latency_slows_every_apdu(slow_lab: Lab) -> None:
    env = {
        **os.environ,
        LABDIR_ENV: str(slow_lab.labdir),
        PCSC_SOCKET_ENV: str(slow_lab.pcsc_socket),
    }

    def simtool(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "simtool", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    up = simtool("lab", "up", "--latency", "25", "--jitter", "5")
    assert up.returncode == 0, up.stderr
    assert "after 25 ms (jitter 5 ms)" in up.stdout
    started = time.monotonic()
    read = simtool("read", "--reader", "lab:0", "--json")
    elapsed = time.monotonic() - started
    assert read.returncode == 0, read.stderr
    apdus = int(json.loads(read.stdout)["apdu_count"])
    # A lower bound only: every APDU waited at least 20 ms in the card.
    assert elapsed >= apdus * 0.020
    assert simtool("lab", "up", "--jitter", "5").returncode == 64
    assert slow_lab.set_latency(0) == (0.0, 0.0)
