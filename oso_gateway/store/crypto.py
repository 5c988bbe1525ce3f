"""At-rest encryption of stored pupil content: one data key per item, wrapped by a storage key.

Envelope encryption:

* every dossier (with its index row), outbound payload and other stored pupil content gets its
  own random 256-bit **data key**. The content is AES-256-GCM under that key with a fresh 96-bit
  nonce (``nonce || ciphertext+tag``); the associated data names the row (table, row id, and what
  the row belongs to), so a ciphertext copied into another row does not decrypt.
* the data key is stored only **wrapped** (AES-256-GCM) under a storage key of the keyring
  (``oso_gateway.store.keyring``), with the data key's own id and school as associated data. The
  ``data_keys`` row names the storage key by id: rotation re-wraps data keys without touching the
  content, and erasure (crypto-shredding) deletes the wrapped key with the ciphertext.
* keyed lookups: the pupil's family name, birth date and BSN are stored as HMAC-SHA256 of their
  normalised form (the keyring's lookup key, stable across rotations), so an exact search works
  without decrypting every row, and a stolen database without the key does not reveal them.

Rows written before data keys existed (``key_id`` set, no data key) were encrypted directly under
a key derived from the single storage key; they still open (``decrypt``) and ``keys rotate``
re-encrypts them under data keys.

Failures raise ``AtRestDecryptionError`` (OSO-E504).
"""

from __future__ import annotations

import os
import secrets
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from oso_gateway.errors import AtRestDecryptionError, ConfigError
from oso_gateway.security import primitives
from oso_gateway.store.keyring import (
    KEY_BYTES,
    NONCE_BYTES,
    TAG_BYTES,
    KeyProvider,
    LocalKeyProvider,
    derive,
)

__all__ = ["NONCE_BYTES", "AtRestCipher", "DataKey", "aad_for", "normalise_search_value"]


@dataclass(frozen=True, kw_only=True)
class DataKey:
    """A fresh data key with its wrapped form (what the ``data_keys`` row stores)."""

    id: str
    kek_id: str
    wrapped: bytes
    school: str | None
    key: bytes = field(repr=False)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


#: plaintext encrypted at a time by ``seal_parts``
_SEAL_CHUNK = 4 * 1024 * 1024


def seal_parts(key: bytes, plaintext: bytes, aad: bytes) -> Iterator[bytes]:
    """``_seal(key, plaintext, aad)`` in pieces (nonce, ciphertext, tag), made one by one: a
    large dossier is written at rest without a second buffer of its size."""
    nonce, pieces = primitives.aes_gcm_encrypt_pieces(key, plaintext, piece=_SEAL_CHUNK, aad=aad)
    yield nonce
    yield from pieces


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise AtRestDecryptionError("stored ciphertext is truncated")
    view = memoryview(blob)  # slices of a view: no ciphertext-sized copy
    try:
        return AESGCM(key).decrypt(view[:NONCE_BYTES], view[NONCE_BYTES:], aad)
    except InvalidTag:
        raise AtRestDecryptionError(
            "stored ciphertext does not authenticate (altered, or moved from another row)"
        ) from None


#: the prefix of an encrypted decline reason in ``messages.note``
_NOTE_V1 = "v1:"


def note_aad(message_id: str) -> bytes:
    return aad_for("messages", message_id, "note")


def seal_note(data_key: bytes, note: str, *, message_id: str) -> str:
    """A decline reason encrypted for ``messages.note`` (a text column): "v1:" and base64."""
    blob = _seal(data_key, note.encode("utf-8"), note_aad(message_id))
    return _NOTE_V1 + primitives.b64encode(blob).decode("ascii")


def open_note(data_key: bytes, stored: str, *, message_id: str) -> str:
    """The decline reason ``seal_note`` stored (E-coded ``AtRestDecryptionError`` if altered)."""
    if not stored.startswith(_NOTE_V1):
        raise AtRestDecryptionError("stored decline reason is not in the encrypted form")
    try:
        blob = primitives.b64decode(stored[len(_NOTE_V1) :])
    except ValueError:
        raise AtRestDecryptionError("stored decline reason is not valid base64") from None
    return _open(data_key, blob, note_aad(message_id)).decode("utf-8")


def wrap_aad(data_key_id: str, school: str | None) -> bytes:
    return aad_for("data_keys", data_key_id, school or "")


class AtRestCipher:
    """Envelope encryption over a key provider (or, for short, one 32-byte storage key)."""

    def __init__(
        self, storage_key: bytes | None = None, *, provider: KeyProvider | None = None
    ) -> None:
        if provider is None:
            if storage_key is None or len(storage_key) != KEY_BYTES:
                raise ConfigError("the storage key must be 32 bytes")
            provider = LocalKeyProvider(base_key=storage_key)
        self.provider = provider

    def __repr__(self) -> str:
        return f"AtRestCipher(provider={self.provider!r})"

    @property
    def key_id(self) -> str:
        """The default active storage key's id."""
        return self.provider.active_key_id(None)

    # --- data keys ----------------------------------------------------------------------------

    def new_data_key(self, school: str | None = None) -> DataKey:
        """A random data key, wrapped under the active storage key of ``school``."""
        key = secrets.token_bytes(KEY_BYTES)
        key_id = str(uuid.uuid4())
        kek_id = self.provider.active_key_id(school)
        wrapped = self.provider.wrap(kek_id, key, aad=wrap_aad(key_id, school))
        return DataKey(id=key_id, kek_id=kek_id, wrapped=wrapped, school=school, key=key)

    def unwrap(self, data_key_id: str, *, kek_id: str, wrapped: bytes, school: str | None) -> bytes:
        return self.provider.unwrap(kek_id, wrapped, aad=wrap_aad(data_key_id, school))

    def rewrap(
        self, data_key_id: str, *, kek_id: str, wrapped: bytes, school: str | None, to: str
    ) -> bytes:
        """The data key wrapped under storage key ``to`` instead (rotation)."""
        aad = wrap_aad(data_key_id, school)
        return self.provider.wrap(to, self.provider.unwrap(kek_id, wrapped, aad=aad), aad=aad)

    @staticmethod
    def seal(data_key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
        return _seal(data_key, plaintext, aad)

    @staticmethod
    def seal_pieces(
        data_key: bytes, plaintext: bytes, *, aad: bytes
    ) -> tuple[int, Iterator[bytes]]:
        """``seal`` a piece at a time: ``(size, pieces)``; the pieces concatenate to what
        ``seal`` returns (``nonce || ciphertext+tag``), without a ciphertext-sized buffer."""
        return NONCE_BYTES + len(plaintext) + TAG_BYTES, seal_parts(data_key, plaintext, aad)

    @staticmethod
    def open(data_key: bytes, blob: bytes, *, aad: bytes) -> bytes:
        return _open(data_key, blob, aad)

    # --- rows from before data keys (directly under the single storage key) -------------------

    def _legacy_key(self, key_id: str) -> bytes:
        material = None
        if isinstance(self.provider, LocalKeyProvider):
            material = self.provider.legacy_material(key_id)
        if material is None:
            raise AtRestDecryptionError(
                f"stored data was encrypted under storage key id {key_id}, which the keyring "
                f"does not hold (the active key is {self.key_id})"
            )
        return derive(material, b"oso-gateway/at-rest/aes-256-gcm/v1")

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Directly under the active storage key (the form of rows before data keys)."""
        return _seal(self._legacy_key(self.key_id), plaintext, aad)

    def decrypt(self, blob: bytes, *, aad: bytes, key_id: str) -> bytes:
        """A row encrypted directly under storage key ``key_id`` (before data keys)."""
        return _open(self._legacy_key(key_id), blob, aad)

    # --- keyed lookups ------------------------------------------------------------------------

    def lookup_hash(self, kind: str, value: str) -> str:
        """Keyed hash of a normalised search value (``kind`` separates the value spaces)."""
        message = kind.encode("ascii") + b"\x00" + normalise_search_value(value).encode("utf-8")
        return self.provider.lookup_mac(message).hex()


def normalise_search_value(value: str) -> str:
    """Case-, accent- and spacing-insensitive form: 'Émile  de Vries' -> 'emile de vries'."""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def aad_for(table: str, row_id: str | int, owner: str = "") -> bytes:
    """Associated data naming a row: ciphertexts cannot be swapped between rows or tables."""
    return f"oso-gateway/{table}/{row_id}/{owner}".encode()
