"""Fixtures for the modem tests: simulated modems in their own process, on a real pty.

``sim_pty(dialect, latency=0.0, faults=None, profile=None, control=False)``
starts ``python -m modem.simulator`` as a separate process, waits (bounded)
for the pty path it prints, and stops the process at the end of the test. The
client side then opens that path with pyserial exactly like a USB modem's
port. With ``control=True`` the test drives the SIM tray while a client holds
the port: ``sim.control("sim pull")`` returns once the simulator acknowledged.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from modem.simulator.protocol_simmodem import forget

STARTUP_DEADLINE = 15.0


@dataclass
class SimProcess:
    """A running simulator: its pty path and process."""

    path: str
    process: subprocess.Popen[str]

    def control(self, command: str, timeout: float = STARTUP_DEADLINE) -> None:
        """Send one control line (``sim pull``, ``sim insert``, ``sim stall``) and wait
        for its acknowledgement (needs ``control=True`` at start)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        answer = self.process.stdout.readline().strip() if ready else "(nothing)"
        if answer != f"ok {command}":
            pytest.fail(f"simulator control {command!r} answered {answer!r}")

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(timeout=10)
        return self.process.returncode


SimFactory = Callable[..., SimProcess]


def start_simulator(
    dialect: str,
    *,
    latency: float = 0.0,
    faults: str | None = None,
    profile: str | None = None,
    control: bool = False,
) -> SimProcess:
    """Start ``python -m modem.simulator`` and wait for the pty path it prints."""
    command = [
        sys.executable,
        "-m",
        "modem.simulator",
        "--dialect",
        dialect,
        "--latency",
        str(latency),
    ]
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
    end = time.monotonic() + STARTUP_DEADLINE
    ready, _, _ = select.select([process.stdout], [], [], max(0.0, end - time.monotonic()))
    if not ready:
        process.kill()
        pytest.fail(f"simulator for {dialect} printed no pty path within {STARTUP_DEADLINE} s")
    path = process.stdout.readline().strip()
    if not path.startswith("/dev/"):
        process.kill()
        error = process.stderr.read() if process.stderr else ""
        pytest.fail(f"simulator for {dialect} did not start: {path!r} {error}")
    return SimProcess(path, process)


@pytest.fixture
def sim_pty() -> Iterator[SimFactory]:
    """Factory of simulator processes, all stopped at the end of the test."""
    started: list[SimProcess] = []

    def start(dialect: str, **options: object) -> SimProcess:
        sim = start_simulator(dialect, **options)  # type: ignore[arg-type]
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def shared_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique name for a shared in-process ``simmodem://`` engine, forgotten after."""
    name = f"test-{request.node.name}-{time.monotonic_ns()}"
    yield name
    forget(name)
