"""A key rollover: the old and the new identity of one OIN side by side, as
``docs/operations.md`` offers it. Found by an operator's walkthrough: the receiver listed its
schools once per identity, so every message to them "named several schools" (E453), and
``directory check`` held each identity on its own against the directory's certificate."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from dossier_samples import sample_xml
from gateway_pair import (
    DEV,
    RECEIVER_OIN,
    RECEIVER_SCHOOL,
    RECEIVER_URL,
    GatewayPair,
    directory_toml,
    identity,
    renewed_identity,
    trust,
    with_sending_school,
)

from oso_gateway.cli import main
from oso_gateway.store import models as m
from oso_gateway.transfer.directory import Directory
from oso_gateway.transfer.receive import ReceiverConfig, ReceiveService
from oso_gateway.transfer.services import served_schools

REPO = Path(__file__).resolve().parent.parent


def _send(pair: GatewayPair, data: bytes) -> str:
    prepared = pair.prepare(data)
    pair.outbox.enqueue(prepared)
    pair.outbox.run_once()
    record = pair.sender_store.find_message(m.OUT, prepared.message_id)
    assert record is not None
    return f"{record.status} {record.last_error_code}"


def test_a_receiver_with_the_old_and_the_new_key_takes_dossiers_sealed_to_either(
    pair: GatewayPair, tmp_path: Path
) -> None:
    old = identity(RECEIVER_OIN)
    new, _key_file, cert_file = renewed_identity(RECEIVER_OIN, tmp_path, now=pair.clock())
    served = served_schools(pair.directory, (old, new))
    assert [s.school for s in served].count(RECEIVER_SCHOOL) == 1
    pair.transport.receivers[RECEIVER_URL] = ReceiveService(
        config=ReceiverConfig(identities=(old, new), trust=trust(), served=served),
        directory=pair.directory,
        store=pair.inbound,
        clock=pair.clock,
    )
    first = with_sending_school(sample_xml(), "00YY")
    assert _send(pair, first) == "delivered None"  # sealed to the old certificate
    renewed = directory_toml().replace(
        f'encryption_certificate = "gateway-{RECEIVER_OIN}.crt.pem"',
        f'encryption_certificate = "{cert_file.as_posix()}"',
    )
    assert renewed != directory_toml()
    pair.set_sender_directory(Directory.from_toml(renewed.encode(), DEV, source="<renewed>"))
    second = with_sending_school(sample_xml(overstap="VOVO"), "00YY")
    assert _send(pair, second) == "delivered None"  # and to the new one


def test_directory_check_takes_either_key_of_a_rollover(tmp_path: Path) -> None:
    from datetime import timedelta

    from cryptography import x509

    now = x509.load_pem_x509_crl(
        (DEV / "issuing-ca.crl.pem").read_bytes()
    ).last_update_utc + timedelta(hours=1)
    oin = "00000001000000000001"
    _new, key_file, cert_file = renewed_identity(oin, tmp_path, now=now)
    example = REPO / "examples" / "config"
    text = (example / "gateway-regenboog.toml").read_text().replace('"../../', f'"{REPO}/')
    text = text.replace('file = "directory.toml"', f'file = "{example / "directory.toml"}"')
    text += f'\n[[identity]]\noin = "{oin}"\nkey_file = "{key_file}"\ncert_file = "{cert_file}"\n'
    config = tmp_path / "gateway.toml"
    config.write_text(text)

    def check(directory: str) -> tuple[int, str]:
        path = tmp_path / "directory.toml"
        path.write_text(directory)
        result = CliRunner().invoke(
            main,
            ["directory", "check", "--config", str(config), "--now", now.isoformat(),
             "--file", str(path)],
        )  # fmt: skip
        return result.exit_code, result.output

    listed = (example / "directory.toml").read_text().replace('"../../', f'"{REPO}/')
    assert check(listed)[0] == 0, check(listed)[1]  # the old certificate
    code, output = check(listed.replace(f"{REPO}/certs/dev/gateway-{oin}.crt.pem", str(cert_file)))
    assert code == 0, output  # the new one
    code, output = check(
        listed.replace(f"gateway-{oin}.crt.pem", "gateway-00000001000000000002.crt.pem")
    )
    assert code == 1 and "holds another key than any of this gateway's 2" in output, output


def test_with_two_keys_of_one_oin_the_gateway_sends_with_the_first(tmp_path: Path) -> None:
    """As the docs say, and as it signs receipts and anchors: the last identity had won."""
    from datetime import UTC, datetime

    from oso_gateway.config import load_settings
    from oso_gateway.runtime import build_services
    from oso_gateway.transfer.demo import PRIMARY_OIN, setup_dev_gateways

    gateway = setup_dev_gateways(tmp_path / "gw")[PRIMARY_OIN]
    new, key_file, cert_file = renewed_identity(
        PRIMARY_OIN, tmp_path / "new", now=datetime.now(UTC)
    )
    config = gateway.config_file
    with config.open("a", encoding="utf-8") as out:
        out.write(
            f'\n[[identity]]\noin = "{PRIMARY_OIN}"\n'
            f'key_file = "{key_file.as_posix()}"\ncert_file = "{cert_file.as_posix()}"\n'
        )
    services = build_services(load_settings(config, {}))
    try:
        old, second = services.identities
        assert second.certificate == new.certificate
        for sender in (services.sender_config, services.outbox.configs[PRIMARY_OIN]):
            assert sender.identity.certificate == old.certificate
    finally:
        services.close()
