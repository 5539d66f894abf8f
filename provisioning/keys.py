"""The secrets key against the database: which key sealed the cards, and rotation.

The database records the key id of the key that sealed every card. A station
with another key is told so by name (key ids) instead of failing card by card.

``rotate_key`` re-seals every card under a new key in one transaction. The new
key is written first, next to the key file (``<key file>.new``); only after
the database committed does it replace the key file. If the process dies in
between, the next use of the key notices that the database already names the
new key and finishes the swap.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from apdu.errors import UsageError
from provisioning.audit import Actor, append_event
from provisioning.database import Database
from provisioning.errors import ConcurrentChangeError, SecretsKeyError
from provisioning.models import Base, SecretsKeyRecord
from provisioning.secrets import Keyring, SecretBox, key_id_of, new_key, write_key_file

_RECORD_ID = 1
_CHUNK = 5000


# Built once: every provision reads the record (see bench/bench_stations.py).
_KEY_RECORD = select(SecretsKeyRecord).where(SecretsKeyRecord.id == _RECORD_ID)
_KEY_RECORD_LOCKED = _KEY_RECORD.with_for_update()


def box_for(session: Session, keyring: Keyring, *, sealing: bool) -> SecretBox:
    """The key this database's secrets are sealed with, checked against the database.

    With ``sealing`` (about to store secrets) a database without secrets yet
    adopts the keyring's key, creating the key file if needed.
    """
    query = _KEY_RECORD_LOCKED if sealing else _KEY_RECORD
    record = session.execute(query).scalar_one_or_none()
    if record is None:
        if not sealing:
            raise SecretsKeyError(
                "no card secrets are stored in this database yet", source=keyring.source
            )
        box = keyring.box(create=True)
        session.add(SecretsKeyRecord(id=_RECORD_ID, key_id=box.key_id, set_at=datetime.now(UTC)))
        session.flush()
        return box
    return box_for_key_id(keyring, record.key_id)


#: The id of the key the database's secrets are sealed with, for a query that
#: reads it beside the card (one statement, one snapshot: see box_for_key_id).
KEY_ID_OF_DATABASE = (
    select(SecretsKeyRecord.key_id).where(SecretsKeyRecord.id == _RECORD_ID).scalar_subquery()
)


def box_for_key_id(keyring: Keyring, key_id: str | None) -> SecretBox:
    """The station's key, checked against ``key_id``, the database's (None: no secrets yet).

    For a caller that read the key id in the same statement as the sealed
    secrets it opens (:data:`KEY_ID_OF_DATABASE`), so a key rotation committed
    between two reads cannot pair a card with the wrong key.
    """
    if key_id is None:
        raise SecretsKeyError(
            "no card secrets are stored in this database yet", source=keyring.source
        )
    if not keyring.env_key and not keyring.key_file.exists():
        _finish_interrupted_rotation(keyring, key_id)
    box = _station_box(keyring)
    if box.key_id == key_id:
        return box
    if not keyring.env_key and _finish_interrupted_rotation(keyring, key_id):
        return keyring.box(create=False)
    raise SecretsKeyError(
        f"this database's card secrets are sealed with key {key_id}, but the key from "
        f"{box.source} is {box.key_id}; use the station's key (after 'keys rotate' on another "
        f"station, copy the new key here)",
        source=box.source,
        key_id=box.key_id,
        expected_key_id=key_id,
    )


# The key file as last read, under what its stat said then: a station opens
# the key at every provision, and reading and parsing the file again costs
# more than the rest of the check. A rotation replaces the file (new inode),
# a chmod changes the mode: either reads it again, with its checks.
_last_box: dict[tuple[str, int, int, int, int], SecretBox] = {}


def _station_box(keyring: Keyring) -> SecretBox:
    """``keyring.box(create=False)``, without re-reading a key file that did not change."""
    if keyring.env_key:
        return keyring.box(create=False)
    try:
        info = keyring.key_file.stat()
    except OSError:
        return keyring.box(create=False)  # its own error, naming the file
    seen = (str(keyring.key_file), info.st_ino, info.st_mtime_ns, info.st_size, info.st_mode)
    box = _last_box.get(seen)
    if box is None:
        box = keyring.box(create=False)
        _last_box.clear()
        _last_box[seen] = box
    return box


def _finish_interrupted_rotation(keyring: Keyring, wanted_key_id: str) -> bool:
    pending = keyring.pending_file
    if not pending.exists():
        return False
    if Keyring.read_file_box(pending).key_id != wanted_key_id:
        return False
    os.replace(pending, keyring.key_file)
    return True


@dataclass(frozen=True)
class KeyStatus:
    """Which key the station has and which the database needs (ids only)."""

    source: str
    key_id: str | None
    database_key_id: str | None
    matches: bool


def key_status(database: Database, keyring: Keyring) -> KeyStatus:
    """Compare the station's key with the database's, without changing either."""
    with database.read() as session:
        record = session.get(SecretsKeyRecord, _RECORD_ID)
    try:
        key_id: str | None = keyring.box(create=False).key_id
    except SecretsKeyError:
        key_id = None
    expected = record.key_id if record else None
    return KeyStatus(
        source=keyring.source,
        key_id=key_id,
        database_key_id=expected,
        matches=key_id is not None and (expected is None or key_id == expected),
    )


@dataclass(frozen=True)
class KeyRotation:
    """What ``keys rotate`` did: key ids before and after, cards re-sealed, where the key is."""

    old_key_id: str
    new_key_id: str
    cards: int
    key_file: Path


def rotate_key(
    database: Database, keyring: Keyring, actor: Actor, *, new_key_file: Path | None = None
) -> KeyRotation:
    """Re-seal every card's secrets under a fresh key, in one transaction.

    With a key file the new key replaces it once the database committed. With
    ``SIMTOOL_KEY`` the new key is written to ``new_key_file`` (mode 0600) for
    the operator to move into the environment; nothing else holds it.
    """
    if keyring.env_key and new_key_file is None:
        raise UsageError("the key comes from SIMTOOL_KEY: give --new-key-file for the new key")
    with database.read() as session:
        old = box_for(session, keyring, sealing=False)
    target = new_key_file or keyring.pending_file
    if target == keyring.pending_file:
        # A leftover of a rotation that never committed (box_for finished any
        # that did): its key sealed nothing.
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
    key = new_key()
    try:
        write_key_file(target, key)
    except FileExistsError as error:
        raise UsageError(f"{target} exists; refusing to overwrite a key file") from error
    new = SecretBox(key, source=str(target))
    try:
        with database.write() as session:
            cards = _reseal_all(session, old, new)
            append_event(
                session,
                actor,
                "keys-rotate",
                details={"old_key_id": old.key_id, "new_key_id": new.key_id, "cards": cards},
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    final = target
    if target == keyring.pending_file:
        os.replace(target, keyring.key_file)
        final = keyring.key_file
    return KeyRotation(
        old_key_id=old.key_id, new_key_id=key_id_of(key), cards=cards, key_file=final
    )


def _reseal_all(session: Session, old: SecretBox, new: SecretBox) -> int:
    record = session.execute(
        select(SecretsKeyRecord).where(SecretsKeyRecord.id == _RECORD_ID).with_for_update()
    ).scalar_one()
    if record.key_id != old.key_id:
        raise ConcurrentChangeError(
            "another station rotated the key meanwhile", kind="secrets key", key=record.key_id
        )
    table = Base.metadata.tables["cards"]
    statement = (
        update(table).where(table.c.id == bindparam("card_id")).values(secrets=bindparam("sealed"))
    )
    connection = session.connection()
    last_id = 0
    count = 0
    while True:
        chunk = connection.execute(
            select(table.c.id, table.c.iccid, table.c.secrets)
            .where(table.c.id > last_id)
            .order_by(table.c.id)
            .limit(_CHUNK)
        ).all()
        if not chunk:
            break
        connection.execute(
            statement,
            [
                {"card_id": card_id, "sealed": new.seal(iccid, old.open(iccid, sealed))}
                for card_id, iccid, sealed in chunk
            ],
        )
        count += len(chunk)
        last_id = chunk[-1][0]
    record.key_id = new.key_id
    record.set_at = datetime.now(UTC)
    session.flush()
    return count
