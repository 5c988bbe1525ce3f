"""Imported dossiers: loading one (decrypted) and searching them by pupil facts."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from oso_gateway.store import models as m
from oso_gateway.store.base import StoreBase
from oso_gateway.store.records import (
    DossierSummary,
    PupilFacts,
    dossier_aad,
    index_aad,
)

_T = TypeVar("_T")


class DossierSearch(StoreBase):
    """Stored dossiers and their search index."""

    def _index_row(self, dossier_id: str, pupil: PupilFacts) -> dict[str, object]:
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
            key_id=cipher.key_id,
            ciphertext=cipher.encrypt(display, aad=index_aad(dossier_id)),
        )

    def load_dossier(self, dossier_id: str) -> bytes:
        """The decrypted dossier XML. ``LookupError`` when absent, E504 when it won't decrypt."""

        def work(session: Session) -> tuple[str, bytes, str]:
            row = session.get(m.Dossier, dossier_id)
            if row is None:
                raise LookupError(f"no dossier {dossier_id}")
            message = self._get(session, row.message_pk)
            return row.key_id, row.ciphertext, message.message_id

        key_id, blob, message_id = self._read(work)
        return self.cipher.decrypt(blob, aad=dossier_aad(dossier_id, message_id), key_id=key_id)

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

        def work(session: Session) -> list[tuple[DossierSummary, str, bytes]]:
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
                found.append((summary, index.key_id, index.ciphertext))
            return found

        result = []
        for summary, key_id, blob in self._read(work):
            facts = json.loads(
                cipher.decrypt(blob, aad=index_aad(summary.dossier_id), key_id=key_id)
            )
            born = facts.get("birth_date")
            pupil = PupilFacts(
                family_name=facts.get("family_name"),
                given_names=facts.get("given_names"),
                birth_date=date.fromisoformat(born) if born else None,
            )
            result.append(dataclasses.replace(summary, pupil=pupil))
        return result
