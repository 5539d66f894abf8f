"""Find modem ports: list serial ports with their USB ids, probe which answer AT.

A USB modem shows several ports (diagnostics, NMEA, AT, PPP) and only some
answer AT; other serial ports (a console, a GPS, nothing at all) may never
answer or even block on write. Every probe therefore runs in its own thread
with a short deadline and a write timeout, and the listing waits for all of
them together, bounded: a port that does not answer is reported, never waited
on past the deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

import serial
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from modem.channel import AtChannel, at
from modem.dialects import detect_dialect
from modem.errors import ModemError
from modem.parsers import parse_text_answer
from modem.ports import is_url, register_simulator_scheme

PROBE_DEADLINE = 1.0


@dataclass(frozen=True, slots=True)
class PortReport:
    """One serial port: what the OS says about it and whether it answered AT."""

    device: str
    description: str | None = None
    usb_id: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    serial_number: str | None = None
    interface: str | None = None
    answers_at: bool | None = None
    modem_manufacturer: str | None = None
    modem_model: str | None = None
    dialect: str | None = None
    error: str | None = None


def _describe(info: ListPortInfo) -> PortReport:
    usb_id = (
        f"{info.vid:04x}:{info.pid:04x}" if info.vid is not None and info.pid is not None else None
    )
    description = info.description if info.description and info.description != "n/a" else None
    return PortReport(
        device=info.device,
        description=description,
        usb_id=usb_id,
        manufacturer=info.manufacturer,
        product=info.product,
        serial_number=info.serial_number,
        interface=info.interface,
    )


def probe(device: str, deadline: float = PROBE_DEADLINE) -> PortReport:
    """Open ``device``, send ``AT`` and, if it answers, ask maker and model.

    Every step is bounded by ``deadline`` seconds; the port is closed after.
    """
    report = PortReport(device=device)
    register_simulator_scheme()
    try:
        if is_url(device):
            port = serial.serial_for_url(device, timeout=0.05, write_timeout=deadline)
        else:
            port = serial.serial_for_url(
                device, timeout=0.05, write_timeout=deadline, exclusive=True
            )
    except (serial.SerialException, OSError, ValueError) as error:
        return replace(report, answers_at=False, error=f"cannot open: {error}")
    channel = AtChannel(port, name=device, default_timeout=deadline)
    try:
        channel.execute(at("AT", prefix=False, timeout=deadline))
    except ModemError as error:
        channel.close()
        return replace(report, answers_at=False, error=str(error))
    try:
        maker = parse_text_answer(
            channel.execute(at("AT+CGMI", prefix="+CGMI:", free_text=True, timeout=deadline)).lines
        )
        model = parse_text_answer(
            channel.execute(at("AT+CGMM", prefix="+CGMM:", free_text=True, timeout=deadline)).lines
        )
    except ModemError as error:
        return replace(report, answers_at=True, error=f"answers AT, not +CGMI/+CGMM: {error}")
    finally:
        channel.close()
    return replace(
        report,
        answers_at=True,
        modem_manufacturer=maker,
        modem_model=model,
        dialect=detect_dialect(maker, model).name,
    )


def list_modem_ports(
    extra: Iterable[str] = (), *, probe_ports: bool = True, deadline: float = PROBE_DEADLINE
) -> list[PortReport]:
    """Serial ports known to the OS (plus ``extra`` paths or URLs), probed in parallel.

    The whole listing takes about ``deadline`` plus the time to open and
    close the ports; a probe still stuck after twice the deadline is reported
    as not answering and left behind (its daemon thread owns nothing else).
    """
    reports = [_describe(info) for info in sorted(list_ports.comports(), key=lambda i: i.device)]
    known = {r.device for r in reports}
    reports += [PortReport(device=path) for path in extra if path not in known]
    if not probe_ports:
        return reports
    results: dict[str, PortReport] = {}
    lock = threading.Lock()

    def run(device: str) -> None:
        outcome = probe(device, deadline)
        with lock:
            results[device] = outcome

    threads = [
        threading.Thread(target=run, args=(r.device,), name=f"probe-{r.device}", daemon=True)
        for r in reports
    ]
    for thread in threads:
        thread.start()
    end = time.monotonic() + 2 * deadline + 2.0
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    merged: list[PortReport] = []
    for report in reports:
        with lock:
            outcome = results.get(report.device)
        if outcome is None:
            merged.append(
                replace(report, answers_at=False, error=f"no answer within {2 * deadline:g} s")
            )
        else:
            merged.append(
                replace(
                    report,
                    answers_at=outcome.answers_at,
                    modem_manufacturer=outcome.modem_manufacturer,
                    modem_model=outcome.modem_model,
                    dialect=outcome.dialect,
                    error=outcome.error,
                )
            )
    return merged
