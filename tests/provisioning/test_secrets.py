"""Card secrets at rest: AES-GCM bound to the ICCID, the key file, the key id, rotation."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update

from apdu.errors import UsageError
from provisioning.audit import Actor, verify_audit
from provisioning.database import Database
from provisioning.errors import SecretsKeyError
from provisioning.keys import box_for, key_status, rotate_key
from provisioning.models import Card
from provisioning.records import reveal_secret, show_card
from provisioning.secrets import CardSecrets, Keyring, SecretBox, key_id_of, new_key
from provisioning.stock import import_stock
from tests.provisioning.helpers import Stock

SECRETS = CardSecrets(
    pin1="0000",
    puk1="12345678",
    pin2="4321",
    puk2="87654321",
    adm1="0A0B0C0D0E0F0102",
    ki=bytes(range(16)),
    opc=bytes(range(16, 32)),
)


def test_seal_and_open() -> None:
    box = SecretBox(new_key(), source="test")
    blob = box.seal("8981090000000000004", SECRETS)
    assert blob[0] == 1 and len(blob) > 12 + 16
    assert box.open("8981090000000000004", blob) == SECRETS
    assert b"12345678" not in blob and bytes(range(16)) not in blob


def test_bulk_sealer_seals_as_seal_does_with_a_fresh_nonce_each() -> None:
    box = SecretBox(new_key(), source="test")
    seal = box.bulk_sealer(pool=2)  # refilled twice over five cards
    iccids = [f"898109000000000{n:04d}" for n in range(5)]
    blobs = [seal(iccid, SECRETS.to_plaintext()) for iccid in iccids]
    for iccid, blob in zip(iccids, blobs, strict=True):
        assert box.open(iccid, blob) == SECRETS
        assert len(blob) == len(box.seal(iccid, SECRETS))
    with pytest.raises(SecretsKeyError):
        box.open(iccids[1], blobs[0])  # still bound to its own ICCID
    assert len({blob[1:13] for blob in blobs}) == len(blobs)
    # Sealing twice gives different blobs (fresh nonce each time).
    assert box.seal("8981090000000000004", SECRETS) != blob


def test_blob_is_bound_to_its_iccid_and_key() -> None:
    box = SecretBox(new_key(), source="test")
    blob = box.seal("8981090000000000004", SECRETS)
    with pytest.raises(SecretsKeyError, match="do not open"):
        box.open("8981090000000000012", blob)  # copied onto another card's row
    with pytest.raises(SecretsKeyError, match="do not open"):
        SecretBox(new_key(), source="other").open("8981090000000000004", blob)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SecretsKeyError):
        box.open("8981090000000000004", tampered)
    with pytest.raises(SecretsKeyError, match="not a sealed blob"):
        box.open("8981090000000000004", b"\x02" + blob[1:])


def test_reprs_never_show_secrets() -> None:
    key = new_key()
    text = (
        repr(SECRETS)
        + repr(SecretBox(key, source="x"))
        + repr(Keyring(Path("k"), env_key=key.hex()))
    )
    for secret in ("12345678", "87654321", "4321", "0A0B0C0D0E0F0102", key.hex()):
        assert secret not in text
    assert "present=['pin1', 'puk1'" in repr(SECRETS)


def test_key_file_created_0600_on_first_use(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "new" / "secrets.key")
    with pytest.raises(SecretsKeyError, match="does not exist"):
        keyring.box(create=False)
    box = keyring.box(create=True)
    mode = keyring.key_file.stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(keyring.key_file.parent.stat().st_mode) == 0o700
    assert keyring.box(create=True).key_id == box.key_id
    keyring.key_file.chmod(0o644)
    with pytest.raises(SecretsKeyError, match="chmod 600"):
        keyring.box(create=False)


def test_key_from_the_environment(tmp_path: Path) -> None:
    key = new_key()
    keyring = Keyring(tmp_path / "unused.key", env_key=key.hex())
    assert keyring.box(create=True).key_id == key_id_of(key)
    assert not keyring.key_file.exists()
    with pytest.raises(SecretsKeyError, match="64 hex digits"):
        Keyring(tmp_path / "k", env_key="abc").box(create=False)


def test_database_names_the_wrong_key(
    database: Database, keyring: Keyring, actor: Actor, stock: Callable[..., Stock], tmp_path: Path
) -> None:
    file = stock(3)
    import_stock(database, keyring, actor, file.path)
    other = Keyring(tmp_path / "other.key")
    other.box(create=True)
    with pytest.raises(SecretsKeyError) as wrong:
        import_stock(database, other, actor, stock(3, first_serial=10).path)
    assert wrong.value.expected_key_id == keyring.box(create=False).key_id
    assert wrong.value.key_id == other.box(create=False).key_id
    status = key_status(database, other)
    assert not status.matches and status.database_key_id == wrong.value.expected_key_id


def test_reveal_puk_is_audited(
    database: Database, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> None:
    file = stock(2)
    import_stock(database, keyring, actor, file.path)
    row = file.row(1)
    assert reveal_secret(database, keyring, actor, row.iccid, "puk1") == row.secrets.puk1
    history = show_card(database, row.iccid).history
    assert [(e.action, e.result) for e in history] == [("reveal-secret", "puk1")]
    assert row.secrets.puk1 not in str(history)


def test_rotate_reseals_every_card_in_one_go(
    database: Database,
    keyring: Keyring,
    actor: Actor,
    stock: Callable[..., Stock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import provisioning.keys as keys_module

    monkeypatch.setattr(keys_module, "_CHUNK", 4)  # several chunks with a small file
    file = stock(11)
    import_stock(database, keyring, actor, file.path)
    old_id = keyring.box(create=False).key_id
    rotation = rotate_key(database, keyring, actor)
    assert (rotation.old_key_id, rotation.cards) == (old_id, 11)
    new_box = keyring.box(create=False)
    assert new_box.key_id == rotation.new_key_id != old_id
    assert stat.S_IMODE(keyring.key_file.stat().st_mode) == 0o600
    assert not keyring.pending_file.exists()
    with database.read() as session:
        assert box_for(session, keyring, sealing=False).key_id == new_box.key_id
        for card, row in zip(
            session.execute(select(Card).order_by(Card.id)).scalars(), file.rows, strict=True
        ):
            assert new_box.open(card.iccid, card.secrets) == row.secrets
    assert verify_audit(database).ok


def test_failed_rotation_changes_nothing(
    database: Database, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> None:
    file = stock(3)
    import_stock(database, keyring, actor, file.path)
    old_id = keyring.box(create=False).key_id
    with database.write() as session:  # one row that the old key cannot open
        session.execute(
            update(Card)
            .where(Card.iccid == file.row(2).iccid)
            .values(secrets=file.row(2).iccid.encode())
        )
    with pytest.raises(SecretsKeyError):
        rotate_key(database, keyring, actor)
    assert keyring.box(create=False).key_id == old_id
    assert not keyring.pending_file.exists()
    box = keyring.box(create=False)
    with database.read() as session:
        first = session.execute(select(Card).where(Card.iccid == file.row(0).iccid)).scalar_one()
        assert box.open(first.iccid, first.secrets) == file.row(0).secrets


def test_interrupted_rotation_is_finished_on_next_use(
    database: Database,
    keyring: Keyring,
    actor: Actor,
    stock: Callable[..., Stock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file = stock(2)
    import_stock(database, keyring, actor, file.path)

    def die(src: object, dst: object) -> None:
        raise KeyboardInterrupt  # the process dies after the commit, before the swap

    monkeypatch.setattr(os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        rotate_key(database, keyring, actor)
    monkeypatch.undo()
    assert keyring.pending_file.exists()
    with database.read() as session:
        box = box_for(session, keyring, sealing=False)
    assert not keyring.pending_file.exists()
    assert keyring.box(create=False).key_id == box.key_id
    assert (
        reveal_secret(database, keyring, actor, file.row(0).iccid, "puk2")
        == file.row(0).secrets.puk2
    )


def test_rotation_with_an_environment_key(
    database: Database, actor: Actor, stock: Callable[..., Stock], tmp_path: Path
) -> None:
    keyring = Keyring(tmp_path / "unused.key", env_key=new_key().hex())
    file = stock(2)
    import_stock(database, keyring, actor, file.path)
    with pytest.raises(UsageError, match="--new-key-file"):
        rotate_key(database, keyring, actor)
    target = tmp_path / "handover.key"
    rotation = rotate_key(database, keyring, actor, new_key_file=target)
    assert rotation.key_file == target and stat.S_IMODE(target.stat().st_mode) == 0o600
    moved = Keyring(tmp_path / "x", env_key=target.read_text().strip())
    assert (
        reveal_secret(database, moved, actor, file.row(1).iccid, "puk1") == file.row(1).secrets.puk1
    )
