"""``modem list``: ports that answer AT are found, silent ports never hang the listing."""

from __future__ import annotations

import os
import time
import tty
from collections.abc import Callable
from typing import Any

from modem.discovery import list_modem_ports, probe

SimFactory = Callable[..., Any]


def test_silent_and_answering_ports(sim_pty: SimFactory) -> None:
    sim = sim_pty("telit")
    master, slave = os.openpty()  # a tty nobody answers on
    tty.setraw(slave)
    silent = os.ttyname(slave)
    try:
        started = time.monotonic()
        reports = list_modem_ports([sim.path, silent, "/dev/does-not-exist"], deadline=0.5)
        elapsed = time.monotonic() - started
    finally:
        os.close(master)
        os.close(slave)
    by_device = {r.device: r for r in reports}
    assert by_device[sim.path].answers_at is True
    assert by_device[sim.path].modem_model == "LE910C1-EU"
    assert by_device[silent].answers_at is False and "AT" in (by_device[silent].error or "")
    assert by_device["/dev/does-not-exist"].answers_at is False
    assert elapsed < 5.0


def test_probe_of_a_simulated_url() -> None:
    report = probe("simmodem://fibocom", deadline=0.5)
    assert report.answers_at and report.dialect == "fibocom"


def test_listing_without_probing_sends_nothing() -> None:
    reports = list_modem_ports(["simmodem://generic"], probe_ports=False)
    assert all(r.answers_at is None for r in reports)
