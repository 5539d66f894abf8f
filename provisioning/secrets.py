"""Card secrets at rest: AES-GCM, one sealed blob per card, the ICCID bound in.

PIN1, PUK1, PIN2, PUK2, ADM1, Ki and OPc of a card are sealed together with
AES-256-GCM under the station's secrets key; the card's ICCID is the associated
data, so a blob copied onto another card's row does not open. A blob is
``version (1 byte) | nonce (12) | ciphertext and tag``.

The key is 32 random bytes, written as 64 hex digits: in the key file (created
with mode 0600 on first use) or in ``SIMTOOL_KEY``. Its *key id* (a short
fingerprint, safe to show) is recorded in the database, so a wrong key is named
as such instead of failing on every card.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets as stdlib_secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from provisioning.errors import SecretsKeyError

KEY_BYTES = 32
_BLOB_VERSION = 1
_BLOB_HEADER = bytes([_BLOB_VERSION])
_NONCE_BYTES = 12
_AAD_PREFIX = b"simtool card secrets v1|"
ENV_KEY_SOURCE = "SIMTOOL_KEY"


_FIELDS = ("pin1", "puk1", "pin2", "puk2", "adm1", "ki", "opc")
_SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class CardSecrets:
    """The secret values of one card; ``repr`` names which are present, never the values.

    PINs, PUKs and ADM1 are digit (ADM1: hex) strings, Ki and OPc 16 bytes.
    """

    pin1: str | None = None
    puk1: str | None = None
    pin2: str | None = None
    puk2: str | None = None
    adm1: str | None = None
    ki: bytes | None = None
    opc: bytes | None = None

    def __repr__(self) -> str:
        present = [name for name in _FIELDS if getattr(self, name) is not None]
        return f"CardSecrets(present={present})"

    def to_plaintext(self) -> bytes:
        """The compact encoding that gets sealed: the seven values joined by ``|``."""
        text = _SEPARATOR.join(
            (
                self.pin1 or "",
                self.puk1 or "",
                self.pin2 or "",
                self.puk2 or "",
                self.adm1 or "",
                self.ki.hex() if self.ki else "",
                self.opc.hex() if self.opc else "",
            )
        )
        if text.count(_SEPARATOR) != len(_FIELDS) - 1:
            raise ValueError("a card secret contains the separator '|'")
        return text.encode("ascii")

    @classmethod
    def from_plaintext(cls, data: bytes) -> CardSecrets:
        """Decode :meth:`to_plaintext` output."""
        pin1, puk1, pin2, puk2, adm1, ki, opc = data.decode("ascii").split(_SEPARATOR)
        return cls(
            pin1=pin1 or None,
            puk1=puk1 or None,
            pin2=pin2 or None,
            puk2=puk2 or None,
            adm1=adm1.upper() or None,
            ki=bytes.fromhex(ki) if ki else None,
            opc=bytes.fromhex(opc) if opc else None,
        )


def key_id_of(key: bytes) -> str:
    """A 16-hex-digit fingerprint of a key: shows which key, reveals nothing of it."""
    return hashlib.sha256(b"simtool key id|" + key).hexdigest()[:16]


class SecretBox:
    """Seals and opens card secrets with one key; ``source`` says where the key came from."""

    def __init__(self, key: bytes, *, source: str) -> None:
        if len(key) != KEY_BYTES:
            raise SecretsKeyError(
                f"the secrets key from {source} must be {KEY_BYTES} bytes", source=source
            )
        self._aead = AESGCM(key)
        self.key_id = key_id_of(key)
        self.source = source

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r}, source={self.source!r})"

    def seal(self, iccid: str, card_secrets: CardSecrets) -> bytes:
        """Encrypt one card's secrets, bound to its ICCID."""
        return self.seal_plaintext(iccid, card_secrets.to_plaintext())

    def seal_plaintext(self, iccid: str, plaintext: bytes) -> bytes:
        """Encrypt secrets already encoded by :meth:`CardSecrets.to_plaintext` (bulk import)."""
        nonce = os.urandom(_NONCE_BYTES)
        return (
            _BLOB_HEADER
            + nonce
            + self._aead.encrypt(nonce, plaintext, _AAD_PREFIX + iccid.encode())
        )

    def bulk_sealer(self, pool: int = 4096) -> Callable[[str, bytes], bytes]:
        """:meth:`seal_plaintext` for a stream of many cards (the stock import).

        The same blob, key and associated data; only the nonces are drawn from
        the OS ``pool`` at a time instead of one call per card. Each nonce is
        fresh random bytes used once. One ``os.urandom`` per card lets go of the
        GIL per card, and a thread writing rows at the same time then takes it
        every time: that hand-over cost the import more than the sealing itself.
        """
        encrypt = self._aead.encrypt
        size = _NONCE_BYTES * pool
        nonces = b""
        at = size

        def seal(iccid: str, plaintext: bytes) -> bytes:
            nonlocal nonces, at
            if at == size:
                nonces, at = os.urandom(size), 0
            nonce = nonces[at : at + _NONCE_BYTES]
            at += _NONCE_BYTES
            return _BLOB_HEADER + nonce + encrypt(nonce, plaintext, _AAD_PREFIX + iccid.encode())

        return seal

    def open(self, iccid: str, blob: bytes) -> CardSecrets:
        """Decrypt one card's secrets; a wrong key or a blob of another card is refused."""
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[0] != _BLOB_VERSION:
            raise SecretsKeyError(
                f"the secrets of card {iccid} are not a sealed blob",
                source=self.source,
                key_id=self.key_id,
            )
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            plaintext = self._aead.decrypt(nonce, sealed, _AAD_PREFIX + iccid.encode())
        except InvalidTag as error:
            raise SecretsKeyError(
                f"the secrets of card {iccid} do not open with key {self.key_id} from "
                f"{self.source} (wrong key, or the row was altered)",
                source=self.source,
                key_id=self.key_id,
            ) from error
        return CardSecrets.from_plaintext(plaintext)


def parse_key(text: str, *, source: str) -> bytes:
    """A key written as 64 hex digits (surrounding whitespace allowed)."""
    cleaned = text.strip()
    try:
        key = bytes.fromhex(cleaned)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise SecretsKeyError(
            f"the secrets key in {source} must be {2 * KEY_BYTES} hex digits", source=source
        )
    return key


def new_key() -> bytes:
    """A fresh random key."""
    return stdlib_secrets.token_bytes(KEY_BYTES)


def write_key_file(path: Path, key: bytes) -> None:
    """Create ``path`` (mode 0600, parents 0700) holding ``key``; refuses to overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Keyring:
    """Where the station's secrets key comes from: ``SIMTOOL_KEY``, else the key file."""

    key_file: Path
    env_key: str | None = field(default=None, repr=False)

    @property
    def source(self) -> str:
        """Where the key is read from, for messages."""
        return ENV_KEY_SOURCE if self.env_key else str(self.key_file)

    @property
    def pending_file(self) -> Path:
        """Where ``keys rotate`` puts the new key until the database has switched to it."""
        return self.key_file.with_name(self.key_file.name + ".new")

    def box(self, *, create: bool) -> SecretBox:
        """The key as a :class:`SecretBox`; with ``create`` a missing key file is made."""
        if self.env_key:
            return SecretBox(parse_key(self.env_key, source=ENV_KEY_SOURCE), source=ENV_KEY_SOURCE)
        if not self.key_file.exists():
            if not create:
                raise SecretsKeyError(
                    f"no secrets key: {self.key_file} does not exist (it is "
                    f"created by the first stock import)",
                    source=str(self.key_file),
                )
            # Another process may have created it a moment ago: then use theirs.
            with contextlib.suppress(FileExistsError):
                write_key_file(self.key_file, new_key())
        return self.read_file_box(self.key_file)

    @staticmethod
    def read_file_box(path: Path) -> SecretBox:
        """The key in ``path``; refused when others could read the file."""
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise SecretsKeyError(
                    f"key file {path} is open to other users (mode {stat.S_IMODE(mode):04o}); "
                    f"run 'chmod 600 {path}'",
                    source=str(path),
                )
            text = path.read_text(encoding="ascii", errors="replace")
        except OSError as error:
            raise SecretsKeyError(
                f"cannot read key file {path}: {error.strerror}", source=str(path)
            ) from error
        return SecretBox(parse_key(text, source=str(path)), source=str(path))
