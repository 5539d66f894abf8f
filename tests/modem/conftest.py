"""Fixtures for the modem tests: simulated modems in their own process, on a real pty.

``sim_pty(dialect, latency=0.0, faults=None, profile=None, control=False)`` is
the sim plugin's ``sim_modem_factory`` (``simtool.pytest_plugin``): it starts
``python -m modem.simulator`` as a separate process, waits (bounded) for the
pty path it prints, and stops the process at the end of the test. The client
side then opens that path with pyserial exactly like a USB modem's port. With
``control=True`` the test drives the SIM tray while a client holds the port:
``sim.control("sim pull")`` returns once the simulator acknowledged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from modem.simulator.protocol_simmodem import forget
from simtool.pytest_plugin import ModemFactory


@pytest.fixture
def sim_pty(sim_modem_factory: ModemFactory) -> ModemFactory:
    """Factory of simulator processes, all stopped at the end of the test."""
    return sim_modem_factory


@pytest.fixture
def shared_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique name for a shared in-process ``simmodem://`` engine, forgotten after."""
    name = f"test-{request.node.name}-{time.monotonic_ns()}"
    yield name
    forget(name)
