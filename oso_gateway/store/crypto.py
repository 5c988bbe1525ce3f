"""At-rest encryption of stored dossiers and their searchable fields.

One 32-byte storage key (from the configuration) is never used directly: HKDF-SHA256 derives

* an AES-256-GCM key for data (dossiers, the outbox payloads, the index's display values). Each
  value gets a fresh 96-bit random nonce; the blob is ``nonce || ciphertext+tag``. The associated
  data names the row (table, row id, and what the row belongs to), so a ciphertext copied into
  another row does not decrypt.
* an HMAC-SHA256 key for lookups: the pupil's family name and birth date are stored as keyed
  hashes of their normalised form, so an exact search works without decrypting every row, and a
  stolen database without the key does not reveal them (a plain hash of a name or date would be
  guessable by trying all candidates).
* a key id (16 hex) stored next to each ciphertext: a wrong key is reported as such before any
  decryption is tried, and a future key rotation can tell old rows from new.

Failures raise ``AtRestDecryptionError`` (OSO-E504).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from oso_gateway.errors import AtRestDecryptionError, ConfigError

NONCE_BYTES = 12
_TAG_BYTES = 16


def _derive(key: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(key)


class AtRestCipher:
    """AES-256-GCM for rows at rest plus keyed lookup hashes, from one storage key."""

    def __init__(self, storage_key: bytes) -> None:
        if len(storage_key) != 32:
            raise ConfigError("the storage key must be 32 bytes")
        self._aead = AESGCM(_derive(storage_key, b"oso-gateway/at-rest/aes-256-gcm/v1"))
        self._mac_key = _derive(storage_key, b"oso-gateway/at-rest/lookup-hmac/v1")
        self.key_id = _derive(storage_key, b"oso-gateway/at-rest/key-id/v1")[:8].hex()

    def __repr__(self) -> str:
        return f"AtRestCipher(key_id={self.key_id})"

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, *, aad: bytes, key_id: str) -> bytes:
        if key_id != self.key_id:
            raise AtRestDecryptionError(
                f"stored data was encrypted under key id {key_id}; the configured storage key "
                f"has id {self.key_id}"
            )
        if len(blob) < NONCE_BYTES + _TAG_BYTES:
            raise AtRestDecryptionError("stored ciphertext is truncated")
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise AtRestDecryptionError(
                "stored ciphertext does not authenticate (altered, or moved from another row)"
            ) from None

    def lookup_hash(self, kind: str, value: str) -> str:
        """Keyed hash of a normalised search value (``kind`` separates the value spaces)."""
        message = kind.encode("ascii") + b"\x00" + normalise_search_value(value).encode("utf-8")
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()


def normalise_search_value(value: str) -> str:
    """Case-, accent- and spacing-insensitive form: 'Émile  de Vries' -> 'emile de vries'."""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def aad_for(table: str, row_id: str | int, owner: str = "") -> bytes:
    """Associated data naming a row: ciphertexts cannot be swapped between rows or tables."""
    return f"oso-gateway/{table}/{row_id}/{owner}".encode()
