"""Imported dossiers: loading one (decrypted) and searching them by pupil facts."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from oso_gateway.errors import DossierPurged
from oso_gateway.store import models as m
from oso_gateway.store.base import StoreBase
from oso_gateway.store.crypto import DataKey
from oso_gateway.store.records import (
    DossierSummary,
    PupilFacts,
    dossier_aad,
    index_aad,
)

_T = TypeVar("_T")


class DossierSearch(StoreBase):
    """Stored dossiers and their search index."""

    def _index_row(
        self, dossier_id: str, pupil: PupilFacts, data_key: DataKey
    ) -> dict[str, object]:
        """The ``dossier_index`` row of a dossier (values for an insert)."""
        cipher = self.cipher
        display = json.dumps(
            {
                "family_name": pupil.family_name,
                "given_names": pupil.given_names,
                "birth_date": pupil.birth_date.isoformat() if pupil.birth_date else None,
            },
            sort_keys=True,
        ).encode("utf-8")
        return dict(
            dossier_id=dossier_id,
            name_hmac=cipher.lookup_hash("family_name", pupil.family_name)
            if pupil.family_name
            else None,
            birth_date_hmac=cipher.lookup_hash("birth_date", pupil.birth_date.isoformat())
            if pupil.birth_date
            else None,
            bsn_hmac=cipher.lookup_hash("bsn", pupil.bsn) if pupil.bsn else None,
            key_id=data_key.kek_id,
            data_key_id=data_key.id,
            ciphertext=cipher.seal(data_key.key, display, aad=index_aad(dossier_id)),
        )

    def load_dossier(self, dossier_id: str) -> bytes:
        """The decrypted dossier XML. ``LookupError`` when absent, E504 when it won't decrypt."""

        def work(session: Session) -> tuple[str, bytes, str, bytes | None]:
            row = session.get(m.Dossier, dossier_id)
            if row is None:
                raise LookupError(f"no dossier {dossier_id}")
            message = self._get(session, row.message_pk)
            if message.purged_at is not None:
                raise DossierPurged(f"the dossier of {message.message_id} was purged")
            key = self._data_key(session, row.data_key_id)
            return row.key_id, row.ciphertext, message.message_id, key

        key_id, blob, message_id, data_key = self._read(work)
        aad = dossier_aad(dossier_id, message_id)
        if data_key is not None:
            return self.cipher.open(data_key, blob, aad=aad)
        return self.cipher.decrypt(blob, aad=aad, key_id=key_id)

    def find_dossiers(
        self,
        *,
        family_name: str | None = None,
        birth_date: date | None = None,
        sending_school: str | None = None,
        limit: int = 100,
    ) -> list[DossierSummary]:
        """Exact search (case/accent-insensitive name) over the keyed hashes; newest first."""
        cipher = self.cipher

        def work(session: Session) -> list[tuple[DossierSummary, str, bytes, bytes | None]]:
            stmt = (
                select(m.Dossier, m.DossierIndex, m.Message.message_id)
                .join(m.DossierIndex, m.DossierIndex.dossier_id == m.Dossier.id)
                .join(m.Message, m.Message.id == m.Dossier.message_pk)
                .order_by(m.Dossier.imported_at.desc(), m.Dossier.id)
                .limit(limit)
            )
            if family_name is not None:
                stmt = stmt.where(
                    m.DossierIndex.name_hmac == cipher.lookup_hash("family_name", family_name)
                )
            if birth_date is not None:
                stmt = stmt.where(
                    m.DossierIndex.birth_date_hmac
                    == cipher.lookup_hash("birth_date", birth_date.isoformat())
                )
            if sending_school is not None:
                stmt = stmt.where(m.Dossier.sending_school == sending_school)
            found = []
            for dossier, index, message_id in session.execute(stmt):
                summary = DossierSummary(
                    dossier_id=dossier.id,
                    message_id=message_id,
                    sending_school=dossier.sending_school,
                    receiving_school=dossier.receiving_school,
                    payload_digest=dossier.payload_digest,
                    size=dossier.size,
                    imported_at=dossier.imported_at,
                    pupil=PupilFacts(),
                )
                key = self._data_key(session, index.data_key_id)
                found.append((summary, index.key_id, index.ciphertext, key))
            return found

        result = []
        for summary, key_id, blob, data_key in self._read(work):
            aad = index_aad(summary.dossier_id)
            plain = (
                cipher.open(data_key, blob, aad=aad)
                if data_key is not None
                else cipher.decrypt(blob, aad=aad, key_id=key_id)
            )
            facts = json.loads(plain)
            born = facts.get("birth_date")
            pupil = PupilFacts(
                family_name=facts.get("family_name"),
                given_names=facts.get("given_names"),
                birth_date=date.fromisoformat(born) if born else None,
            )
            result.append(dataclasses.replace(summary, pupil=pupil))
        return result
