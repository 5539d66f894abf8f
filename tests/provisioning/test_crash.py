"""A station killed (SIGKILL) in the middle of an import or a provision leaves the
database exactly as it was: nothing half-written, and the work can be redone.

The child process is a real ``python`` running the workflow; a wrapper around
one internal step tells the parent "now" while the transaction is open, with
rows already sent to the database, and the parent kills it there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from provisioning.audit import Actor, verify_audit
from provisioning.database import Database
from provisioning.lifecycle import CardState, LineState
from provisioning.lines import LineSpec, add_line
from provisioning.records import show_card, show_line
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
from provisioning.workflows import provision
from tests.provisioning.helpers import Stock, chip, snapshot

REPO = Path(__file__).resolve().parents[2]

IMPORT_CHILD = """
import sys, time
from pathlib import Path
import provisioning.stock as stock
from provisioning.audit import Actor
from provisioning.database import Database
from provisioning.secrets import Keyring

stock.INSERT_BATCH = 50
original = stock._flush
def flush_then_hang(*args):
    original(*args)
    print("IN-TRANSACTION", flush=True)
    time.sleep(120)
stock._flush = flush_then_hang
stock.import_stock(Database(sys.argv[1]), Keyring(Path(sys.argv[2])), Actor("op", "st"),
                   Path(sys.argv[3]))
"""

PROVISION_CHILD = """
import sys, time
from pathlib import Path
import provisioning.workflows as workflows
from provisioning.audit import Actor
from provisioning.database import Database
from provisioning.lifecycle import FormFactor
from provisioning.secrets import Keyring
from provisioning.stockfile import example_rows
from tests.provisioning.helpers import chip

original = workflows.append_event
def append_then_hang(*args, **kwargs):
    event = original(*args, **kwargs)
    if hasattr(args[0], "flush"):  # a Session; a provision writes through a Connection
        args[0].flush()
    print("IN-TRANSACTION", flush=True)
    time.sleep(120)
    return event
workflows.append_event = append_then_hang
row = next(example_rows(1, first_serial=int(sys.argv[3])))
workflows.provision(Database(sys.argv[1]), Actor("op", "st"), service_code=sys.argv[4],
                    form_factor=FormFactor.NANO, card=chip(row),
                    keyring=Keyring(Path(sys.argv[2])))
"""


def kill_inside_transaction(script: str, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "IN-TRANSACTION":
        child.kill()
        raise AssertionError(
            f"child did not reach the transaction: {line!r} {child.communicate()[1]}"
        )
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def test_killed_import_leaves_nothing(
    database: Database, db_url: str, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> None:
    import_stock(database, keyring, actor, stock(3).path)
    before = snapshot(database)
    big = stock(400, first_serial=1000)
    kill_inside_transaction(IMPORT_CHILD, db_url, str(keyring.key_file), str(big.path))
    database.dispose()
    assert snapshot(database) == before
    assert verify_audit(database).ok
    assert import_stock(database, keyring, actor, big.path).cards == 400


def test_killed_provision_leaves_nothing(
    database: Database, db_url: str, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> None:
    file = stock(2, first_serial=500)
    import_stock(database, keyring, actor, file.path)
    add_line(
        database,
        actor,
        LineSpec.parse(
            service_code="hdd5000001",
            msisdn=None,
            customer="MA5",
            network_type="D",
            function_class="data",
        ),
    )
    before = snapshot(database)
    kill_inside_transaction(PROVISION_CHILD, db_url, str(keyring.key_file), "500", "hdd5000001")
    database.dispose()
    assert snapshot(database) == before
    assert verify_audit(database).ok
    assert show_card(database, file.row(0).iccid).state is CardState.IN_STOCK
    from provisioning.lifecycle import FormFactor

    provision(
        database,
        actor,
        service_code="hdd5000001",
        form_factor=FormFactor.NANO,
        card=chip(file.row(0)),
        keyring=keyring,
    )
    assert show_line(database, "hdd5000001").state is LineState.ACTIVE
