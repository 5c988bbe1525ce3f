"""Storage keys (key-encryption keys) behind ONE small provider interface.

Every stored dossier, outbound payload and other pupil content has its own random 256-bit data
key (``oso_gateway.store.crypto``). The data key is stored only wrapped (AES-256-GCM) by a
*storage key* from the keyring, identified by a key id. A vendor that keeps its storage keys in a
KMS implements ``KeyProvider`` (wrap, unwrap, a lookup MAC, and the few management calls) and
names it in ``storage.provider = "package.module:factory"``; the factory gets the ``Settings``.

The built-in ``LocalKeyProvider`` holds the keys in memory, read from

* the single storage key of ``storage.key`` / ``storage.key_file`` / ``OSO_GATEWAY_STORAGE_KEY``
  (its id is derived from it, as before keyrings existed: rows written then still open), and
* a keyring file (``storage.keyring_file``; default ``storage-keyring.json`` beside the
  configuration file) that ``oso-gateway keys rotate`` creates and updates, or the same JSON in
  ``OSO_GATEWAY_STORAGE_KEYRING`` (read-only then: rotation needs the new key put there first).

Key states: ``active`` (new data keys are wrapped under it; one per school scope, and one
default), ``inactive`` (replaced by rotation: unwraps only, rotation moves data keys off it),
``retired`` (the operator's decision to get rid of it: unwraps only), ``destroyed`` (material
deleted; allowed only once no data key refers to it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import importlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from oso_gateway.errors import (
    AtRestDecryptionError,
    ConfigError,
    KeyringReadOnly,
    KeyStateError,
    UnknownStorageKey,
)

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.config import Settings

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
FORMAT = "oso-gateway-keyring/1"
ACTIVE, INACTIVE, RETIRED, DESTROYED = "active", "inactive", "retired", "destroyed"
STATES = (ACTIVE, INACTIVE, RETIRED, DESTROYED)
#: the file name used when ``storage.keyring_file`` is not set (beside the configuration file)
DEFAULT_KEYRING_NAME = "storage-keyring.json"


def derive(key: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(key)


def legacy_key_id(key: bytes) -> str:
    """The id of a single storage key as at-rest encryption named it before keyrings."""
    return derive(key, b"oso-gateway/at-rest/key-id/v1")[:8].hex()


def legacy_lookup_key(key: bytes) -> bytes:
    return derive(key, b"oso-gateway/at-rest/lookup-hmac/v1")


@dataclass(frozen=True, kw_only=True)
class KeyInfo:
    """What may be said about a storage key (never its material)."""

    key_id: str
    state: str
    #: the school (BRIN + vestiging) whose data it wraps; None: the default key
    school: str | None = None
    created: str | None = None
    #: the key's material is available to this process
    available: bool = True


@runtime_checkable
class KeyProvider(Protocol):
    """Storage keys for envelope encryption. Implement this for a KMS."""

    def keys(self) -> Sequence[KeyInfo]:
        """Every key the provider knows, in any state."""
        ...

    def active_key_id(self, school: str | None = None) -> str:
        """The key new data keys of ``school`` are wrapped under (the default key without one)."""
        ...

    def wrap(self, key_id: str, data_key: bytes, *, aad: bytes) -> bytes: ...

    def unwrap(self, key_id: str, wrapped: bytes, *, aad: bytes) -> bytes:
        """``AtRestDecryptionError`` (E504) for a key it does not have or a blob that won't open."""
        ...

    def lookup_mac(self, message: bytes) -> bytes:
        """HMAC-SHA256 for searchable keyed hashes; stable across rotations."""
        ...

    def create_key(self, *, school: str | None = None) -> str:
        """A new key, made the active one of its scope (the previous one becomes inactive)."""
        ...

    def set_state(self, key_id: str, state: str) -> None: ...

    def destroy(self, key_id: str) -> None:
        """Delete the key's material for good (the caller checked nothing refers to it)."""
        ...


@dataclass(frozen=True, kw_only=True)
class _Entry:
    info: KeyInfo
    material: bytes | None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, *, where: str) -> bytes:
    if not isinstance(text, str):
        raise ConfigError(f"{where}: expected base64 text")
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: not valid base64") from None
    if len(value) != KEY_BYTES:
        raise ConfigError(f"{where}: a key must be {KEY_BYTES} bytes")
    return value


def _parse_keyring(text: str, *, where: str) -> tuple[bytes | None, list[_Entry], str | None]:
    """(lookup key, entries, the id of the configured key of the gateway that wrote it) from
    keyring JSON; errors name the place, never a key."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise ConfigError(f"{where}: not valid keyring JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"{where}: not an oso-gateway keyring (format {FORMAT})")
    lookup = doc.get("lookup_key")
    lookup_key = None if lookup is None else _unb64(lookup, where=f"{where}: lookup_key")
    entries = []
    for i, raw in enumerate(doc.get("keys") or []):
        here = f"{where}: keys[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise ConfigError(f"{here}: needs an id")
        state = raw.get("state", ACTIVE)
        if state not in STATES:
            raise ConfigError(f"{here}: state must be one of {', '.join(STATES)}")
        material = raw.get("key")
        info = KeyInfo(
            key_id=raw["id"],
            state=state,
            school=raw.get("school"),
            created=raw.get("created"),
            available=material is not None,
        )
        entries.append(
            _Entry(info=info, material=None if material is None else _unb64(material, where=here))
        )
    owner = doc.get("config_key_id")
    if owner is not None and not isinstance(owner, str):
        raise ConfigError(f"{where}: config_key_id must be a key id")
    return lookup_key, entries, owner


class LocalKeyProvider:
    """Storage keys held in this process, from the configured key and a keyring file."""

    def __init__(
        self,
        *,
        base_key: bytes | None = None,
        keyring_file: Path | None = None,
        keyring_text: str | None = None,
    ) -> None:
        if base_key is not None and len(base_key) != KEY_BYTES:
            raise ConfigError("the storage key must be 32 bytes")
        self._base = base_key
        self._file = keyring_file
        self._text = keyring_text
        self._lock = threading.RLock()
        self._stamp: tuple[int, int] | None = None
        self._lookup: bytes | None = None
        self._entries: dict[str, _Entry] = {}
        #: the configured key id of the gateway the keyring belongs to (None: not yet known)
        self._owner: str | None = None
        self._load()

    def __repr__(self) -> str:
        return f"LocalKeyProvider(keys={sorted(self._entries)})"

    @property
    def writable(self) -> bool:
        return self._text is None and self._file is not None

    # --- loading ------------------------------------------------------------------------------

    def _file_stamp(self) -> tuple[int, int] | None:
        if self._file is None or self._text is not None:
            return None
        try:
            st = self._file.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _load(self) -> None:
        entries: dict[str, _Entry] = {}
        lookup: bytes | None = None
        if self._base is not None:
            base_id = legacy_key_id(self._base)
            entries[base_id] = _Entry(
                info=KeyInfo(key_id=base_id, state=ACTIVE), material=self._base
            )
            lookup = legacy_lookup_key(self._base)
        text, where = self._text, "environment: OSO_GATEWAY_STORAGE_KEYRING"
        stamp = self._file_stamp()
        if text is None and stamp is not None:
            assert self._file is not None
            where = str(self._file)
            try:
                text = self._file.read_text("utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read keyring file {where} ({exc.strerror})") from None
        owner = None if self._base is None else legacy_key_id(self._base)
        if text is not None:
            file_lookup, listed, written_by = _parse_keyring(text, where=where)
            if written_by is not None and owner is not None and written_by != owner:
                # Two gateways sharing one keyring would wrap each other's data under their
                # keys, search with each other's lookup key and delete keys the other uses.
                raise ConfigError(
                    f"{where}: this keyring belongs to a gateway with another storage.key "
                    f"(key id {written_by}; this configuration's is {owner}). Either two "
                    "gateways share it: give each its own storage.keyring_file. Or this "
                    "gateway's storage.key was changed: put the previous key back (storage "
                    "keys change with `keys rotate`, never by editing storage.key)"
                )
            owner = owner or written_by
            lookup = file_lookup or lookup
            for entry in listed:
                known = entries.get(entry.info.key_id)
                material = entry.material or (known.material if known else None)
                if entry.info.state == DESTROYED:
                    material = None  # the configured copy is ignored once destroyed
                info = replace(entry.info, available=material is not None)
                entries[entry.info.key_id] = _Entry(info=info, material=material)
        self._entries, self._lookup, self._stamp, self._owner = entries, lookup, stamp, owner

    def _refresh(self) -> None:
        """Pick up a keyring that another process (``keys rotate``) changed."""
        if self._file is not None and self._file_stamp() != self._stamp:
            with self._lock:
                self._load()

    def _save(self) -> None:
        if not self.writable:
            raise KeyringReadOnly(
                "the keyring comes from the environment; add the new key there "
                "(or configure storage.keyring_file)"
            )
        assert self._file is not None
        keys = []
        for entry in self._entries.values():
            info = entry.info
            from_config = self._base is not None and info.key_id == legacy_key_id(self._base)
            keys.append(
                {
                    "id": info.key_id,
                    "state": info.state,
                    "school": info.school,
                    "created": info.created,
                    # the configured key stays in the configuration, not copied here
                    "key": None if entry.material is None or from_config else _b64(entry.material),
                }
            )
        doc = {
            "format": FORMAT,
            "config_key_id": self._owner,
            "lookup_key": None if self._lookup is None else _b64(self._lookup),
            "keys": keys,
        }
        self._file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_name(self._file.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._file)
        self._stamp = self._file_stamp()

    # --- the provider interface ---------------------------------------------------------------

    def keys(self) -> Sequence[KeyInfo]:
        self._refresh()
        return [e.info for e in self._entries.values()]

    def active_key_id(self, school: str | None = None) -> str:
        self._refresh()
        actives = {
            e.info.school: e.info.key_id for e in self._entries.values() if e.info.state == ACTIVE
        }
        key_id = actives.get(school) if school is not None else None
        key_id = key_id or actives.get(None)
        if key_id is None:
            raise ConfigError(
                "no active storage key: set storage.key or storage.key_file, or a keyring "
                "with an active key"
            )
        return key_id

    def _material(self, key_id: str) -> bytes:
        entry = self._entries.get(key_id)
        if entry is None:
            self._refresh()
            entry = self._entries.get(key_id)
        if entry is None or entry.material is None:
            raise AtRestDecryptionError(
                f"stored data is wrapped under storage key id {key_id}, which none of the "
                "configured storage keys is (another key, or one destroyed): configure the key "
                "with that id (`oso-gateway keys list` shows the ids configured), e.g. restored "
                "from a backup"
            )
        return entry.material

    def wrap(self, key_id: str, data_key: bytes, *, aad: bytes) -> bytes:
        aead = AESGCM(derive(self._material(key_id), b"oso-gateway/keyring/wrap/v1"))
        nonce = os.urandom(NONCE_BYTES)
        return nonce + aead.encrypt(nonce, data_key, aad)

    def unwrap(self, key_id: str, wrapped: bytes, *, aad: bytes) -> bytes:
        aead = AESGCM(derive(self._material(key_id), b"oso-gateway/keyring/wrap/v1"))
        try:
            return aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise AtRestDecryptionError(
                f"a data key wrapped under storage key {key_id} does not authenticate"
            ) from None

    def lookup_mac(self, message: bytes) -> bytes:
        self._refresh()
        if self._lookup is None:
            raise ConfigError("no storage key configured for keyed lookups")
        return hmac.new(self._lookup, message, hashlib.sha256).digest()

    def legacy_material(self, key_id: str) -> bytes | None:
        """The material of a key that encrypted rows directly (before data keys), if held (a
        key another process added since: the keyring file is read again, as ``_material``
        does; without it, a row the CLI wrote under a new key failed in ``serve``)."""
        entry = self._entries.get(key_id)
        if entry is None:
            self._refresh()
            entry = self._entries.get(key_id)
        return None if entry is None else entry.material

    def create_key(self, *, school: str | None = None) -> str:
        with self._lock:
            self._refresh()
            material = secrets.token_bytes(KEY_BYTES)
            key_id = secrets.token_hex(8)
            for key, entry in list(self._entries.items()):
                if entry.info.state == ACTIVE and entry.info.school == school:
                    self._entries[key] = replace(entry, info=replace(entry.info, state=INACTIVE))
            created = datetime.now(UTC).isoformat(timespec="seconds")
            self._entries[key_id] = _Entry(
                info=KeyInfo(key_id=key_id, state=ACTIVE, school=school, created=created),
                material=material,
            )
            self._save()
            return key_id

    def set_state(self, key_id: str, state: str) -> None:
        with self._lock:
            self._refresh()
            entry = self._entries.get(key_id)
            if entry is None:
                raise UnknownStorageKey(f"storage key {key_id} is not in the keyring")
            if state not in STATES:
                raise KeyStateError(f"unknown key state {state!r}")
            self._entries[key_id] = replace(entry, info=replace(entry.info, state=state))
            self._save()

    def destroy(self, key_id: str) -> None:
        with self._lock:
            self._refresh()
            entry = self._entries.get(key_id)
            if entry is None:
                raise UnknownStorageKey(f"storage key {key_id} is not in the keyring")
            info = replace(entry.info, state=DESTROYED, available=False)
            self._entries[key_id] = _Entry(info=info, material=None)
            self._save()


def keyring_file_for(settings: Settings) -> Path:
    """Where the local keyring lives (``storage.keyring_file`` or beside the configuration)."""
    if settings.keyring_file is not None:
        return settings.keyring_file
    base = settings.config_file.parent if settings.config_file else settings.data_dir
    return base / DEFAULT_KEYRING_NAME


def provider_from_settings(settings: Settings) -> KeyProvider | None:
    """The configured key provider; None when no key source is configured at all."""
    if settings.key_provider:
        module_name, _, attr = settings.key_provider.partition(":")
        try:
            factory: Callable[[Settings], KeyProvider] = getattr(
                importlib.import_module(module_name), attr or "provider"
            )
        except (ImportError, AttributeError):
            raise ConfigError(f"storage.provider: cannot load {settings.key_provider}") from None
        return factory(settings)
    path = keyring_file_for(settings)
    if settings.storage_key is None and settings.keyring_text is None and not path.is_file():
        return None
    return LocalKeyProvider(
        base_key=settings.storage_key, keyring_file=path, keyring_text=settings.keyring_text
    )
