"""Serve a simulated modem on a pseudo-terminal, as a USB modem's AT port looks.

``os.openpty()`` gives a real tty pair: the client opens the slave path like
``/dev/ttyUSB2``; this process reads the master. The server keeps its own
handle on the slave so that a client closing the port does not hang up the
master, and several clients can come one after the other (``configure``, then
``configure`` again, then ``info``) against the same modem state.

The loop waits in ``select`` on the master, bounded by the time the next
output is due; it never sleeps for a fixed time. SIGTERM and SIGINT end it.

With a control input (``python -m modem.simulator --control-stdin``), a test
drives the SIM tray while a client holds the port: one command a line,
``sim pull``, ``sim insert`` or ``sim stall`` (the SIM stops answering
``AT+CSIM``); each is acknowledged with a line ``ok <command>`` (or ``error
<command>``) once the modem's state has changed, so a test waits on that line
instead of sleeping.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import signal
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from modem.simulator.engine import SimulatedModem, default_card
from modem.simulator.faults import parse_faults

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServeSummary:
    """What a server run did, for its log line at exit."""

    path: str
    commands: int
    seconds: float


class PtyServer:
    """One simulated modem behind one pty."""

    def __init__(
        self,
        engine: SimulatedModem,
        *,
        control: int | None = None,
        acknowledge: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self._control = control
        self._control_buffer = b""
        self._acknowledge = acknowledge
        self.master, self.slave = os.openpty()
        # Raw, so the line discipline neither echoes nor translates CR; pyserial
        # sets the same on open, this covers the time before a client comes.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        self._wake_read, self._wake_write = wake_read, wake_write
        self._stopping = False
        self._pending_out = b""

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler)."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")

    def serve(self) -> ServeSummary:
        """Run until :meth:`stop`."""
        started = time.monotonic()
        try:
            while not self._stopping:
                self._step()
        finally:
            for fd in (self.master, self.slave, self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)
        return ServeSummary(self.path, self.engine.commands, time.monotonic() - started)

    def _step(self) -> None:
        now = time.monotonic()
        due = self.engine.next_due()
        timeout = None if due is None else max(0.0, due - now)
        writers = [self.master] if self._pending_out else []
        readers = [self.master, self._wake_read]
        if self._control is not None:
            readers.append(self._control)
        readable, writable, _ = select.select(readers, writers, [], timeout)
        if self._wake_read in readable:
            os.read(self._wake_read, 64)
        if self._control is not None and self._control in readable:
            self._read_control()
        if self.master in readable:
            try:
                data = os.read(self.master, 4096)
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                data = b""
            if data:
                self.engine.feed(data, time.monotonic())
        self._pending_out += self.engine.take_due(time.monotonic())
        if self._pending_out and (writable or not writers):
            self._flush()

    def _read_control(self) -> None:
        assert self._control is not None
        data = os.read(self._control, 4096)
        if not data:
            self._control = None  # the controlling side went away: serve on
            return
        self._control_buffer += data
        while b"\n" in self._control_buffer:
            raw, self._control_buffer = self._control_buffer.split(b"\n", 1)
            command = raw.decode("ascii", errors="replace").strip()
            if command:
                self._control_command(command)

    def _control_command(self, command: str) -> None:
        actions = {
            "sim pull": self.engine.pull_sim,
            "sim insert": self.engine.insert_sim,
            "sim stall": self.engine.stall_sim,
        }
        action = actions.get(command)
        if action is not None:
            action()
            log.info("control: %s", command)
        else:
            log.warning("control: unknown command %r (known: %s)", command, ", ".join(actions))
        if self._acknowledge is not None:
            self._acknowledge(f"{'ok' if action is not None else 'error'} {command}")

    def _flush(self) -> None:
        try:
            written = os.write(self.master, self._pending_out)
        except BlockingIOError:
            return
        except OSError as error:
            if error.errno == errno.EIO:
                self._pending_out = b""
                return
            raise
        self._pending_out = self._pending_out[written:]
        if len(self._pending_out) > 65536:
            # No client is reading: keep the newest output, as a full UART
            # FIFO drops what it cannot hold.
            self._pending_out = self._pending_out[-4096:]


def serve_pty(
    dialect: str,
    *,
    latency: float = 0.0,
    faults: str | None = None,
    profile: str | None = None,
    on_ready: Callable[[str], None] | None = None,
    control: int | None = None,
    acknowledge: Callable[[str], None] | None = None,
) -> ServeSummary:
    """Serve a simulated ``dialect`` modem on a new pty until SIGTERM/SIGINT.

    ``on_ready`` gets the slave path once the pty exists (the CLI prints it);
    ``control`` is a file descriptor of control lines, each answered through
    ``acknowledge`` (see the module documentation).
    """
    engine = SimulatedModem(
        dialect, card=default_card(profile), latency=latency, faults=parse_faults(faults)
    )
    server = PtyServer(engine, control=control, acknowledge=acknowledge)

    def handle(signum: int, frame: FrameType | None) -> None:
        server.stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if on_ready is not None:
            on_ready(server.path)
        log.info(
            "simulated %s modem on %s (faults: %s)",
            dialect,
            server.path,
            ",".join(engine.faults.names()) or "none",
        )
        return server.serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
