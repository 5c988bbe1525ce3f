"""The pull workflow between two development gateways on loopback (``demo --flow pull``).

Het Dev College (01AB00, the new school) asks Basisschool De Regenboog (00YY00, the old school)
for a pupil's dossier; the old school accepts, prepares the dossier (held: its policy requires the
parents' inzage), records the inzage, and the dossier is delivered for the request and imported.
Both gateways serve mutual TLS on loopback; every message gets a signed receipt. Each step is
returned as a line of text (request ids, schools, statuses, digests: no pupil data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from lxml import etree

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.protocol import DOSSIER_NS
from oso_gateway.runtime import build_services, start_gateway_in_thread
from oso_gateway.store import models as m
from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN, setup_dev_gateways
from oso_gateway.transfer.pull.payloads import Pupil
from oso_gateway.transfer.schools import School

_N = f"{{{DOSSIER_NS}}}"


@dataclass
class PullDemoResult:
    request_id: str = ""
    delivery_message_id: str = ""
    #: the new school's request status at the end (``delivered`` when all went well)
    requester_status: str = ""
    holder_status: str = ""
    imported: bool = False
    steps: list[str] = field(default_factory=list)
    receipts: list[str] = field(default_factory=list)
    #: the parents' preview (categories and counts, no personal data)
    preview: dict[str, object] | None = None
    sender_url: str = ""
    receiver_url: str = ""

    @property
    def ok(self) -> bool:
        return self.imported and self.requester_status == "delivered"


def run_demo_pull(
    workdir: Path, *, seed: int = 2019, echo: Callable[[str], None] | None = None
) -> PullDemoResult:
    """Run the whole exchange; ``echo`` sees each step as it happens."""
    result = PullDemoResult()

    def step(text: str) -> None:
        result.steps.append(text)
        if echo is not None:
            echo(text)

    gateways = setup_dev_gateways(workdir)
    old_gw, new_gw = gateways[PRIMARY_OIN], gateways[SECONDARY_OIN]
    result.sender_url, result.receiver_url = old_gw.url, new_gw.url
    old = build_services(old_gw.settings)
    new = build_services(new_gw.settings)
    servers = [
        start_gateway_in_thread(old_gw.settings, services=old, threads=4),
        start_gateway_in_thread(new_gw.settings, services=new, threads=4),
    ]
    old_school, new_school = School("00YY", "00"), School("01AB", "00")
    try:
        now = datetime.now(UTC)
        data = generate_dossier(overstap="POVO", seed=seed, now=now)
        pupil = _pupil_of(data)

        request = new.pull.send_request(
            requesting=new_school, old_school=old_school, pupil=pupil, requested_date=now.date()
        )
        result.request_id = request.request_id
        _deliver(new, request.request_id, result, "request")
        step(f"1. request sent      {request.request_id}  {new_school} -> {old_school}")

        received = old.pull.find(request.request_id, side=m.HOLDER)
        step(
            f"2. request received  at {old_school}: status {received.status}, answer by "
            f"{received.deadline.date().isoformat()}"
        )
        ready_by = now.date() + timedelta(days=5)
        accepted = old.pull.accept(request.request_id, ready_by=ready_by)
        _deliver_latest(old, result, "answer (accepted)")
        seen = new.pull.find(request.request_id, side=m.REQUESTER)
        step(f"3. accepted          ready by {accepted.ready_by}; new school sees: {seen.status}")

        held = old.pull.answer_with_dossier(request.request_id, data)
        shown = old.pull.preview(request.request_id)
        result.preview = shown.as_dict() if shown is not None else None
        step(
            f"4. dossier prepared  pupil matches the request; {held.outcome} until the "
            "parents' inzage (school policy: required)"
        )
        released = old.pull.record_inzage(
            request.request_id,
            inzage_date=date.today(),
            how="meeting",
            zienswijze=None,
            previewed=shown.version if shown is not None else None,
        )
        assert released is not None
        result.delivery_message_id = released.delivery_message_id or ""
        step(
            f"5. inzage recorded   {date.today().isoformat()} (meeting, no zienswijze) of "
            f"the version previewed, {shown.version if shown is not None else '-'}"
        )
        _deliver(old, result.delivery_message_id, result, "delivery")
        step(f"6. delivered         {result.delivery_message_id}  RelatesTo {request.request_id}")

        inbound = new.store.find_message(m.IN, result.delivery_message_id)
        result.imported = inbound is not None and inbound.status == m.IMPORTED
        new.pull.refresh()
        old.pull.refresh()
        final = new.pull.find(request.request_id, side=m.REQUESTER)
        result.requester_status = final.status
        result.holder_status = old.pull.find(request.request_id, side=m.HOLDER).status
        step(
            f"7. imported          at {new_school}: message "
            f"{inbound.status if inbound else 'missing'}, relates to "
            f"{inbound.relates_to if inbound else '-'}; request {final.status}"
        )
        step(f"8. old school        request {result.holder_status}")
        return result
    finally:
        for server in reversed(servers):
            server.stop()
        old.close()
        new.close()


def _deliver(services: object, message_id: str, result: PullDemoResult, what: str) -> None:
    from oso_gateway.transfer.services import GatewayServices

    assert isinstance(services, GatewayServices)
    record = services.outbox.wait_for(message_id, timeout=30)
    receipt = "receipt verified" if record.status == m.DELIVERED else "NO receipt"
    result.receipts.append(
        f"{what:<18} {message_id}  {record.status} ({receipt})"
        + (f" {record.last_error_code}" if record.last_error_code else "")
    )


def _deliver_latest(services: object, result: PullDemoResult, what: str) -> None:
    from oso_gateway.transfer.services import GatewayServices

    assert isinstance(services, GatewayServices)
    pending = services.store.list_messages(direction=m.OUT, statuses=(m.QUEUED, m.RETRYING))
    for record in pending:
        _deliver(services, record.message_id, result, what)


def _pupil_of(data: bytes) -> Pupil:
    leerling = etree.fromstring(data).find(f"{_N}huidigeschool/{_N}leerling")
    assert leerling is not None
    return Pupil(
        bsn=leerling.findtext(_N + "bsn"),
        onderwijsnummer=leerling.findtext(_N + "onderwijsnummer"),
        birth_date=date.fromisoformat(leerling.findtext(_N + "geboortedatum") or ""),
        family_name=leerling.findtext(_N + "achternaam") or "",
        given_names=" ".join(e.text or "" for e in leerling.findall(_N + "voornaam")) or None,
    )
