"""Transfer payloads on the wire: the signed receipt's body and SOAP Faults.

Pure helpers (no I/O beyond loading our own XSD once). The receipt payload travels sealed (signed
and encrypted, with a SignatureConfirmation in the Security header); a Fault travels in the clear
and therefore says nothing but the stable error code and the public message of that code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree

from oso_gateway.dossier.schema import compiled_schema
from oso_gateway.errors import GatewayError, PeerFault, ReceiptInvalid
from oso_gateway.security.namespaces import SOAP as SOAP_NS
from oso_gateway.security.xmlparse import ParseLimits, parse_xml

TRANSFER_NS = "urn:oso-gateway:transfer:1"
TRANSFER_SCHEMA = "oso_gateway_transfer.xsd"

#: wsa:Action values of the messages we exchange.
ACTION_DELIVER = "urn:oso-gateway:action:dossier:deliver:1"
ACTION_RECEIPT = "urn:oso-gateway:action:dossier:receipt:1"

#: A receipt is sealed with this validity: a duplicate delivery gets the ORIGINAL receipt back,
#: possibly hours later, and the sender must still be able to open it. (Requests keep the short
#: default ttl; a receipt cannot be replayed to anyone: it names the request's MessageID and
#: confirms its SignatureValue.)
RECEIPT_TTL = timedelta(hours=24)

_T = f"{{{TRANSFER_NS}}}"
_FAULT_LIMITS = ParseLimits(max_bytes=64 * 1024, max_depth=16)


@dataclass(frozen=True, kw_only=True)
class Receipt:
    request_message_id: str
    status: str
    received_at: datetime
    payload_digest: str
    payload_bytes: int
    receiver_brin: str
    receiver_vestiging: str


def build_receipt(receipt: Receipt) -> etree._Element:
    """The receipt payload element (to be sealed as the Body of the reply)."""
    root = etree.Element(_T + "Receipt", nsmap={None: TRANSFER_NS})  # type: ignore[dict-item]
    etree.SubElement(root, _T + "RequestMessageID").text = receipt.request_message_id
    etree.SubElement(root, _T + "Status").text = receipt.status
    received = receipt.received_at.astimezone(UTC).isoformat(timespec="seconds")
    etree.SubElement(root, _T + "ReceivedAt").text = received.replace("+00:00", "Z")
    etree.SubElement(root, _T + "PayloadDigest").text = receipt.payload_digest
    etree.SubElement(root, _T + "PayloadBytes").text = str(receipt.payload_bytes)
    etree.SubElement(
        root,
        _T + "Receiver",
        brin=receipt.receiver_brin,
        vestiging=receipt.receiver_vestiging,
    )
    _validate(root)
    return root


def parse_receipt(element: etree._Element) -> Receipt:
    """Read a (verified, decrypted) receipt payload; raise ReceiptInvalid if it is not one."""
    _validate(element)

    def text(name: str) -> str:
        return element.findtext(_T + name) or ""

    receiver = element.find(_T + "Receiver")
    assert receiver is not None  # guaranteed by the schema
    try:  # schema-valid xs:dateTime values Python cannot represent (24:00:00, year 10000)
        received = datetime.fromisoformat(text("ReceivedAt").replace("Z", "+00:00"))
    except ValueError:
        raise ReceiptInvalid(f"ReceivedAt {text('ReceivedAt')[:40]!r} is not usable") from None
    if received.tzinfo is None:
        raise ReceiptInvalid("ReceivedAt has no time zone")
    return Receipt(
        request_message_id=text("RequestMessageID"),
        status=text("Status"),
        received_at=received,
        payload_digest=text("PayloadDigest"),
        payload_bytes=int(text("PayloadBytes")),
        receiver_brin=receiver.get("brin", ""),
        receiver_vestiging=receiver.get("vestiging", ""),
    )


def _validate(element: etree._Element) -> None:
    schema = compiled_schema(TRANSFER_SCHEMA)
    if element.tag != _T + "Receipt" or not schema.validate(etree.ElementTree(element)):
        entries: list[Any] = list(schema.error_log)  # type: ignore[call-overload]
        errors = [f"line {e.line}: {e.type_name}" for e in entries][:5]
        raise ReceiptInvalid("receipt does not match the transfer schema: " + "; ".join(errors))


def build_fault(error: GatewayError) -> bytes:
    """A SOAP 1.1 Fault for ``error``: fault code, public message, and our stable code as detail.

    Only the public message is sent: the precise reason (``error.detail``) stays in our own log.
    """
    env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS, "t": TRANSFER_NS})
    body = etree.SubElement(env, f"{{{SOAP_NS}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{error.soap_fault}"
    etree.SubElement(fault, "faultstring").text = error.public_message
    detail = etree.SubElement(fault, "detail")
    etree.SubElement(detail, _T + "ErrorCode").text = error.code
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def parse_fault(data: bytes) -> PeerFault | None:
    """The peer's Fault as a PeerFault, or None when ``data`` is not a SOAP Fault."""
    try:
        root = parse_xml(data, limits=_FAULT_LIMITS).getroot()
    except GatewayError:
        return None
    fault = root.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    if root.tag != f"{{{SOAP_NS}}}Envelope" or fault is None:
        return None
    fault_code = (fault.findtext("faultcode") or "").strip()
    message = (fault.findtext("faultstring") or "").strip()[:200]
    code = (fault.findtext(f"detail/{_T}ErrorCode") or "").strip()
    if not (
        len(code) == 8 and code.startswith("OSO-E") and code[5:].isascii() and code[5:].isdigit()
    ):
        code = "OSO-E000"
    return PeerFault(code, fault_code, message)
