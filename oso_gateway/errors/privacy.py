"""OSO-E530–E559: the privacy lifecycle (storage keys, retention and erasure, disclosure,
objections)."""

from __future__ import annotations

from oso_gateway.errors.base import LocalError


class DossierPurged(LocalError):
    """The message's content was erased by the retention purge or an erasure on request (its
    data key and ciphertext were destroyed); only PII-free metadata remains."""

    code = "OSO-E530"
    http_status = 410
    public_message = (
        "The content of this message was erased (retention period, or an erasure on request)."
    )


class KeyStateError(LocalError):
    """A storage-key operation is not allowed in the key's state (e.g. retiring the active
    key, or deleting a key that was not retired first)."""

    code = "OSO-E531"


class KeyStillReferenced(LocalError):
    """A storage key cannot be deleted: data keys (or rows from before data keys) are still
    wrapped under it; run `oso-gateway keys rotate` first."""

    code = "OSO-E532"


class UnknownStorageKey(LocalError):
    """The keyring holds no key with this id (or its material was destroyed)."""

    code = "OSO-E533"


class KeyringReadOnly(LocalError):
    """The keyring comes from the environment (or a vendor provider that does not create keys
    here): add the new key there first."""

    code = "OSO-E534"


class DisclosureNotFound(LocalError):
    """No disclosure record matches the message id or pupil asked for."""

    code = "OSO-E540"
    http_status = 404


class InvalidObjection(LocalError):
    """An objection names a category that does not exist, or one that cannot be withheld
    (the dossier's required core)."""

    code = "OSO-E541"
    http_status = 400


class ObjectionNotApplied(LocalError):
    """A dossier was about to be queued with a category the parents objected to (it was not
    prepared with the recorded objections): refused, nothing was queued."""

    code = "OSO-E542"


class RequestPurged(LocalError):
    """A closed dossier request's encrypted content (the pupil's facts, a decline text, the
    parents' view) was erased by the retention purge or an erasure on request (``subject
    erase``); only its PII-free status remains."""

    code = "OSO-E543"
    http_status = 410
    public_message = (
        "The content of this request was erased (retention period, or an erasure on request)."
    )
