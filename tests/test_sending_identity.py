"""A gateway with several identities signs, and connects, with the identity that serves the
dossier's sending school (not the first one configured)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from oso_gateway.dossier.generator import demo_school, generate_dossier
from oso_gateway.runtime import build_services
from oso_gateway.transfer.demo import PRIMARY_OIN, VENDOR_OIN, setup_dev_gateways
from oso_gateway.transfer.receive import School


def test_each_sending_school_is_served_by_its_own_identity(tmp_path: Path) -> None:
    gateways = setup_dev_gateways(tmp_path)
    vendor = gateways[VENDOR_OIN].settings
    both = dataclasses.replace(
        vendor, identities=(*vendor.identities, *gateways[PRIMARY_OIN].settings.identities)
    )
    services = build_services(both)
    try:
        assert services.identities[0].oin == VENDOR_OIN  # the first configured
        assert services.outbox_view is not None
        for school, kind, oin in (("00YY00", "POVO", PRIMARY_OIN), ("02CD00", "POVO", VENDOR_OIN)):
            data = generate_dossier(
                overstap=kind, seed=3, now=datetime.now(UTC), sending_school=demo_school(school)
            )
            prepared = services.outbox_view.prepare(
                data, to=School.parse("01AB00"), now=datetime.now(UTC)
            )
            assert prepared.sender_oin == oin
            record = services.outbox.enqueue(prepared)
            assert record.our_oin == oin
            transport = services.outbox.transport_for(oin)
            cert_file, _key = transport.cert  # type: ignore[attr-defined]
            assert cert_file.endswith(f"gateway-{oin}.crt.pem")
            assert services.outbox.config_for(oin).identity.oin == oin
    finally:
        services.close()
