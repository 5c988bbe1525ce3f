"""Review attacks on the attachment checks (``dossier/rules/attachment.py``, GW.DOC01-03).

``zipfile`` reads an attachment's central directory through the seekable base64 view. A ZIP whose
directory says it needs a newer version to extract than ``zipfile`` knows made ``zipfile`` raise
``NotImplementedError``, which the check did not catch: validating such a dossier (a peer's
delivery, an upload) ended in an untyped exception (an internal error with a traceback on the
receiving side) instead of the finding GW.DOC03.
"""

from __future__ import annotations

import base64
import io
import struct
import zipfile
from datetime import UTC, datetime

import pytest
from dossier_samples import build_dossier, find
from gateway_pair import RECEIVER_OIN, RECEIVER_URL, GatewayPair, identity
from lxml import etree

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.dossier.rules import attachment, check_rules
from oso_gateway.security.wss import seal
from oso_gateway.transfer import wire
from oso_gateway.transfer.send import new_message_id

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CONTENT = "huidigeschool/leerling/overigdocumentlijst/document/bestandsinhoud"


def _zip_needing_version(version: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("brief.pdf", b"%PDF-1.4 " * 40)
    raw = bytearray(buf.getvalue())
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<H", raw, central + 6, version)  # version needed to extract
    return bytes(raw)


def _codes(text: str) -> set[str]:
    root = build_dossier()
    find(root, CONTENT).text = text
    return {f.code for f in check_rules(root, now=NOW)}


@pytest.mark.parametrize("piece_chars", [64, attachment.PIECE_CHARS])
def test_a_zip_needing_an_unknown_version_is_refused_with_doc03_not_an_exception(
    piece_chars: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attachment, "PIECE_CHARS", piece_chars)
    text = base64.b64encode(_zip_needing_version(99)).decode()
    assert _codes(text) == {"GW.DOC03"}


def test_a_zip_within_the_known_versions_is_still_accepted() -> None:
    assert _codes(base64.b64encode(_zip_needing_version(20)).decode()) == set()


def test_a_delivery_carrying_such_a_zip_is_judged_not_an_internal_error(pair: GatewayPair) -> None:
    # through the real receive service (seal, open, validate, SQLite store): GW.DOC03 is a
    # warning, so the dossier is imported with its receipt; before, the uncaught
    # NotImplementedError made it an internal error (500, a traceback in our log)
    dossier = etree.fromstring(
        generate_dossier(overstap="POVO", seed=3, now=pair.clock(), attachments_kb=16)
    )
    contents = dossier.findall(".//{*}bestandsinhoud")
    assert contents
    contents[0].text = base64.b64encode(_zip_needing_version(99)).decode()
    sealed = seal(
        dossier,
        sender=pair.sender_config.identity,
        recipient_certificate=identity(RECEIVER_OIN).certificate,
        to=RECEIVER_URL,
        action=wire.ACTION_DELIVER,
        message_id=new_message_id(),
        now=pair.clock(),
    )
    result = pair.receiver.handle(sealed.data)
    assert wire.parse_fault(result.body) is None, result.body[:300]
    assert result.http_status == 200
