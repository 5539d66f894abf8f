"""The station's key is read once, and again as soon as its file changes.

A provision opens the key every time; the file is re-read only when its stat
changes, so a rotation (the file replaced) or a chmod (its mode checked
again) takes effect at once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioning.errors import SecretsKeyError
from provisioning.keys import box_for_key_id
from provisioning.secrets import Keyring, key_id_of, new_key, write_key_file


def _keyring(tmp_path: Path) -> tuple[Keyring, str]:
    key = new_key()
    key_file = tmp_path / "keys" / "secrets.key"
    key_file.parent.mkdir()
    write_key_file(key_file, key)
    return Keyring(key_file=key_file), key_id_of(key)


def test_the_same_file_gives_the_same_box(tmp_path: Path) -> None:
    keyring, key_id = _keyring(tmp_path)
    assert box_for_key_id(keyring, key_id) is box_for_key_id(keyring, key_id)


def test_a_replaced_key_file_is_read_again(tmp_path: Path) -> None:
    keyring, old_id = _keyring(tmp_path)
    assert box_for_key_id(keyring, old_id).key_id == old_id
    other = new_key()
    staged = keyring.key_file.with_name("staged.key")
    write_key_file(staged, other)
    os.replace(staged, keyring.key_file)
    assert box_for_key_id(keyring, key_id_of(other)).key_id == key_id_of(other)
    with pytest.raises(SecretsKeyError, match=old_id):
        box_for_key_id(keyring, old_id)


def test_a_key_file_opened_to_others_is_refused_at_once(tmp_path: Path) -> None:
    keyring, key_id = _keyring(tmp_path)
    box_for_key_id(keyring, key_id)
    keyring.key_file.chmod(0o644)
    with pytest.raises(SecretsKeyError, match="open to other users"):
        box_for_key_id(keyring, key_id)
