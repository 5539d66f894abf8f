"""Other stations, as separate processes, for the concurrency and crash tests.

Functions here run in child processes (multiprocessing "spawn", or ``python
-c``), so they take plain data and build everything themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provisioning.audit import Actor
from provisioning.cardfacts import PinOutcome, StaticCard
from provisioning.database import Database
from provisioning.errors import ProvisioningError
from provisioning.lifecycle import FormFactor
from provisioning.secrets import Keyring
from provisioning.stockfile import StockRow
from provisioning.workflows import provision
from tests.provisioning.helpers import chip


class _CardAtTheStartLine(StaticCard):
    """A card whose PIN check waits until every station has done its own checks."""

    barrier: Any = None

    def ensure_default_pin(self, known_pin: str | None) -> PinOutcome:
        self.barrier.wait(timeout=60)
        return super().ensure_default_pin(known_pin)


def race_provision(
    url: str,
    key_file: str,
    station: str,
    service_code: str,
    row: StockRow,
    barrier: Any,
    results: Any,
) -> None:
    """One station provisioning ``row`` onto ``service_code``; reports won or lost."""
    database = Database(url)
    plain = chip(row)
    card = _CardAtTheStartLine(plain.facts, plain.pin_outcome, plain.imsi_after_pin)
    card.barrier = barrier
    try:
        provision(
            database,
            Actor(operator=f"op-{station}", station=station),
            service_code=service_code,
            form_factor=FormFactor(row.form_factor),
            card=card,
            keyring=Keyring(Path(key_file)),
        )
    except ProvisioningError as error:
        results.put((station, "lost", type(error).__name__, str(error)))
    except BaseException as error:  # reported, so the parent sees what went wrong
        results.put((station, "crashed", type(error).__name__, str(error)))
    else:
        results.put((station, "won", "", ""))
    finally:
        database.dispose()
