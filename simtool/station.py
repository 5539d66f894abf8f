"""The station's main job on its embedded defaults: a provisioning pass over the lab.

This is what a warehouse bench does all day, run end to end on virtual parts:
the card vendor's stock file is imported, orders (lines) are waiting, and each
card in a reader is checked and bound to its line; the first line ships with a
bundled LTE router, configured over its AT port and registered with the line.
One order is deliberately placed with the wrong form factor, to show a refusal
that writes nothing. The audit chain is verified at the end.

Everything here composes the APIs of the lower layers; no business rule lives
in this module.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from apdu.errors import SimtoolError
from apdu.lab import Lab
from apdu.transport.pcsc import PcscTransport, use_pcsc_socket
from apdu.virtual import CardProfile
from modem.profiles import resolve_profile
from provisioning.audit import Actor, verify_audit
from provisioning.database import Database
from provisioning.devices import BundledModem
from provisioning.errors import CheckFailedError
from provisioning.labstock import write_lab_stock_file
from provisioning.lifecycle import FormFactor
from provisioning.lines import LineSpec, add_line
from provisioning.reader import ReaderCard
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
from provisioning.workflows import provision
from simtool.config import Settings

FUNCTION_CLASSES = ("data", "sms", "voice")
CUSTOMER = "MA0000001"
# The order placed with the wrong form factor: a nano card asked for as micro
# (or the reverse), which the stock record must refuse.
WRONG_FORM_FACTOR = {"standard": "micro", "micro": "nano", "nano": "micro", "multi": "nano"}


@dataclass
class OrderResult:
    """One order of the pass: which card, which line, what happened."""

    slot: int
    iccid: str
    service_code: str
    function_class: str
    form_factor: str
    outcome: str
    detail: str
    pin: str | None = None
    device_imei: str | None = None
    seconds: float = 0.0


@dataclass
class PassResult:
    """The whole pass, for the screen and for ``--json``."""

    database: str
    lab_dir: str
    modem_port: str | None
    stock_cards: int
    orders: list[OrderResult] = field(default_factory=list)
    audit_ok: bool = False
    audit_events: int = 0
    seconds: float = 0.0

    @property
    def provisioned(self) -> int:
        """Cards bound to their lines."""
        return sum(1 for o in self.orders if o.outcome == "provisioned")

    @property
    def ok(self) -> bool:
        """Every order did what it should (the planted refusal refused)."""
        return self.audit_ok and all(
            o.outcome in ("provisioned", "refused as expected") for o in self.orders
        )


@contextmanager
def simulated_modem(dialect: str) -> Iterator[str]:
    """A modem simulator in its own process, on a real pty; yields the pty path."""
    process = subprocess.Popen(
        [sys.executable, "-m", "modem.simulator", "--dialect", dialect],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 15.0)
        path = process.stdout.readline().strip() if ready else ""
        if not path.startswith("/dev/"):
            raise SimtoolError(f"the modem simulator did not start ({path!r})")
        yield path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def default_demo_database(settings: Settings) -> str:
    """A new SQLite file beside the station's own database, named by the time."""
    base = Path(settings.db).parent if "://" not in settings.db else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    return str(base / f"demo-{datetime.now():%Y%m%d-%H%M%S}.sqlite")


def run_pass(
    settings: Settings,
    *,
    cards: int,
    dialect: str = "quectel",
    keep_lab: bool = False,
    labdir: Path | None = None,
) -> PassResult:
    """Bring up the lab, import its stock, provision every card; the lab goes down after."""
    started = time.monotonic()
    labdir = labdir or Path(tempfile.mkdtemp(prefix="simtool-demo-lab-"))
    lab = Lab.up(cards=cards, labdir=labdir, fresh=True)
    # This process talks to the lab's private pcscd (before any PC/SC context).
    use_pcsc_socket(lab.pcsc_socket)
    os.environ["SIMTOOL_LAB_DIR"] = str(labdir)
    try:
        with simulated_modem(dialect) as port:
            result = _provision_lab(settings, lab, port, cards)
    finally:
        if not keep_lab:
            lab.down()
    result.seconds = time.monotonic() - started
    return result


def _provision_lab(settings: Settings, lab: Lab, port: str, cards: int) -> PassResult:
    database, keyring, actor = settings.database(create=True), settings.keyring(), settings.actor()
    with tempfile.TemporaryDirectory(prefix="simtool-demo-") as scratch:
        stock_path = Path(scratch) / "vendor-stock.csv"
        write_lab_stock_file(stock_path, labdir=lab.labdir)
        imported = import_stock(database, keyring, actor, stock_path, batch="lab-demo")
    result = PassResult(
        database=settings.db, lab_dir=str(lab.labdir), modem_port=port, stock_cards=imported.cards
    )
    stamp = int(time.time()) % 10_000_000
    profile = resolve_profile("ijmio")
    for slot in range(cards):
        card = lab.profile(slot)
        assert card is not None
        function_class = FUNCTION_CLASSES[slot % len(FUNCTION_CLASSES)]
        code = f"hdd{(stamp + slot) % 10_000_000:07d}"
        add_line(
            database,
            actor,
            LineSpec.parse(
                service_code=code,
                msisdn=card.msisdn,
                customer=CUSTOMER,
                network_type="D",
                function_class=function_class,
                identity_verified=function_class == "voice",
            ),
        )
        if slot == cards - 1 and cards > 1:
            result.orders.append(
                _order(
                    database,
                    actor,
                    keyring,
                    lab,
                    slot,
                    card,
                    code,
                    function_class,
                    WRONG_FORM_FACTOR[card.form_factor],
                    expect_refusal=True,
                )
            )
        result.orders.append(
            _order(
                database,
                actor,
                keyring,
                lab,
                slot,
                card,
                code,
                function_class,
                card.form_factor,
                modem=BundledModem(port, profile) if slot == 0 else None,
            )
        )
    audit = verify_audit(database)
    result.audit_ok, result.audit_events = audit.ok, audit.events
    return result


def _order(
    database: Database,
    actor: Actor,
    keyring: Keyring,
    lab: Lab,
    slot: int,
    card: CardProfile,
    code: str,
    function_class: str,
    form_factor: str,
    *,
    modem: BundledModem | None = None,
    expect_refusal: bool = False,
) -> OrderResult:
    started = time.monotonic()
    order = OrderResult(
        slot=slot,
        iccid=card.iccid,
        service_code=code,
        function_class=function_class,
        form_factor=form_factor,
        outcome="",
        detail="",
    )
    try:
        with PcscTransport(lab.reader_name(slot)) as transport:
            bound = provision(
                database,
                actor,
                service_code=code,
                form_factor=FormFactor(form_factor),
                card=ReaderCard(transport),
                keyring=keyring,
                bundled_modem=modem,
            )
        order.outcome = "unexpectedly provisioned" if expect_refusal else "provisioned"
        order.detail = f"{len(bound.checks)} checks passed"
        order.pin = bound.pin.outcome.value
        order.device_imei = bound.device_imei
    except CheckFailedError as refusal:
        order.outcome = "refused as expected" if expect_refusal else "refused"
        order.detail = str(refusal)
    except SimtoolError as error:
        order.outcome = "failed"
        order.detail = str(error)
    order.seconds = time.monotonic() - started
    return order
