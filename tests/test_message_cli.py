"""`oso-gateway seal` / `open` with the committed development PKI."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import hashes
from lxml import etree

from oso_gateway.cli import main
from oso_gateway.errors import (
    CertificateExpired,
    CertificateRevoked,
    CrlMissing,
    SignerUntrusted,
    error_class_for,
)
from oso_gateway.security import wss
from oso_gateway.security.keys import load_certificate

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"
SENDER, RECIPIENT, OTHER = "00000001000000000001", "00000001000000000002", "00000001000000000003"
EXPIRED, REVOKED = "00000001000000000008", "00000001000000000009"
TO = "https://gateway-2.example/oso/transfer"
ACTION = "urn:example:oso:deliver"
# A stand-in payload with a recognisable value: it must never appear in error output.
SECRET = "Pietje-Puk-1999"
PAYLOAD = (
    f"<t:dossier xmlns:t='urn:example:oso-test'><t:naam>{SECRET}</t:naam>"
    "<t:bijlage>QUJD</t:bijlage></t:dossier>"
).encode()
REJECTED = re.compile(
    r"^rejected: (OSO-E\d{3}) [^\n]*?(?: \(cause: (OSO-E\d{3})\))?$", re.MULTILINE
)


def key(oin: str) -> str:
    return str(DEV / f"gateway-{oin}.key.pem")


def cert(oin: str) -> str:
    return str(DEV / f"gateway-{oin}.crt.pem")


TRUST_ARGS = [
    "--trust",
    str(DEV / "root-ca.crt.pem"),
    "--intermediate",
    str(DEV / "issuing-ca.crt.pem"),
    "--crl",
    str(DEV / "root-ca.crl.pem"),
    "--crl",
    str(DEV / "issuing-ca.crl.pem"),
]


def run(args: Sequence[str], stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def c14n(data: bytes) -> bytes:
    return etree.tostring(etree.fromstring(data), method="c14n", exclusive=True)


@pytest.fixture
def payload_file(tmp_path: Path) -> Path:
    path = tmp_path / "payload.xml"
    path.write_bytes(PAYLOAD)
    return path


def seal_args(payload: Path, out: Path, sender: str = SENDER, *extra: str) -> list[str]:
    return [
        "seal",
        "--payload",
        str(payload),
        "--sender-key",
        key(sender),
        "--sender-cert",
        cert(sender),
        "--recipient-cert",
        cert(RECIPIENT),
        "--to",
        TO,
        "--action",
        ACTION,
        "--out",
        str(out),
        *extra,
    ]


def sealed(tmp_path: Path, payload: Path, sender: str = SENDER, *extra: str) -> Path:
    out = tmp_path / f"sealed-{sender}.xml"
    result = run(seal_args(payload, out, sender, *extra))
    assert result.exit_code == 0, result.output
    return out


def open_args(message: Path, as_oin: str = RECIPIENT, *extra: str) -> list[str]:
    return ["open", str(message), "--key", key(as_oin), "--cert", cert(as_oin), *TRUST_ARGS, *extra]


def assert_rejected(result: Result, code: str | None = None, cause: str | None = None) -> str:
    """Exit 1, a code (and the cause) on stderr, and nothing of the payload anywhere."""
    assert result.exit_code == 1, result.output
    match = REJECTED.search(result.stderr)
    assert match, result.stderr
    if code is not None:
        assert match.group(1) == code, result.stderr
    if cause is not None:
        assert match.group(2) == cause, result.stderr
    assert SECRET not in result.output
    return match.group(1)


# --- round trip ---------------------------------------------------------------------------------


def test_sealed_message_opens_as_the_recipient_and_yields_the_payload(
    tmp_path: Path, payload_file: Path
) -> None:
    message = sealed(tmp_path, payload_file)
    data = message.read_bytes()
    assert SECRET.encode() not in data  # the Body is encrypted
    assert f"oin={SENDER}".encode() in data  # wsa:From from the sender certificate's OIN
    result = run(open_args(message))
    assert result.exit_code == 0, result.output
    assert c14n(result.stdout_bytes) == c14n(PAYLOAD)
    assert result.stderr == ""


def test_seal_writes_to_stdout_and_reads_the_payload_from_stdin(tmp_path: Path) -> None:
    args = seal_args(Path("-"), tmp_path / "unused.xml")
    args = args[: args.index("--out")]
    result = run(args, stdin=PAYLOAD)
    assert result.exit_code == 0, result.output
    message = tmp_path / "from-stdout.xml"
    message.write_bytes(result.stdout_bytes)
    opened = run([*open_args(message), "--out", str(tmp_path / "payload-out.xml")])
    assert opened.exit_code == 0, opened.output
    assert opened.stdout_bytes == b""
    assert c14n((tmp_path / "payload-out.xml").read_bytes()) == c14n(PAYLOAD)


def test_open_reads_the_message_from_stdin(tmp_path: Path, payload_file: Path) -> None:
    message = sealed(tmp_path, payload_file)
    result = run(open_args(Path("-")), stdin=message.read_bytes())
    assert result.exit_code == 0, result.output
    assert c14n(result.stdout_bytes) == c14n(PAYLOAD)


def test_oaep_mgf1p_is_emitted_on_request_and_opens(tmp_path: Path, payload_file: Path) -> None:
    message = sealed(tmp_path, payload_file, SENDER, "--oaep", "mgf1p")
    assert wss.KT_RSA_OAEP_MGF1P.encode() in message.read_bytes()
    assert run(open_args(message)).exit_code == 0


def test_default_key_transport_is_rsa_oaep_with_sha256(tmp_path: Path, payload_file: Path) -> None:
    data = sealed(tmp_path, payload_file).read_bytes()
    assert wss.KT_RSA_OAEP.encode() in data
    assert wss.KT_RSA_OAEP_MGF1P.encode() not in data


def test_message_id_and_relates_to_are_carried_through(tmp_path: Path, payload_file: Path) -> None:
    message = sealed(
        tmp_path,
        payload_file,
        SENDER,
        "--message-id",
        "urn:uuid:6f1c1c7e-6d7e-4a5e-9d8e-1a2b3c4d5e6f",
        "--relates-to",
        "urn:uuid:00000000-0000-4000-8000-000000000001",
    )
    summary = json.loads(run([*open_args(message), "--json"]).stdout)
    assert summary["message_id"] == "urn:uuid:6f1c1c7e-6d7e-4a5e-9d8e-1a2b3c4d5e6f"
    assert summary["relates_to"] == "urn:uuid:00000000-0000-4000-8000-000000000001"


# --- --json -------------------------------------------------------------------------------------


def test_open_json_reports_the_verified_metadata_and_no_payload(
    tmp_path: Path, payload_file: Path
) -> None:
    message = sealed(tmp_path, payload_file)
    result = run([*open_args(message), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    sender_cert = load_certificate(Path(cert(SENDER)).read_bytes())
    assert summary["code"] is None
    assert summary["message"]
    assert summary["message_id"].startswith("urn:uuid:")
    assert (summary["action"], summary["to"]) == (ACTION, TO)
    assert (summary["from_oin"], summary["recipient_oin"]) == (SENDER, RECIPIENT)
    assert summary["signer_fingerprint_sha256"] == sender_cert.fingerprint(hashes.SHA256()).hex()
    assert summary["payload_digest"] == hashlib.sha256(c14n(PAYLOAD)).hexdigest()
    assert SECRET not in result.stdout


def test_open_json_on_rejection_gives_only_code_and_public_message(
    tmp_path: Path, payload_file: Path
) -> None:
    message = sealed(tmp_path, payload_file)
    result = run([*open_args(message, OTHER), "--json"])
    code = assert_rejected(result)
    assert json.loads(result.stdout) == {
        "code": code,
        "message": error_class_for(code).public_message,  # type: ignore[union-attr]
    }


# --- rejections ---------------------------------------------------------------------------------


def test_open_with_another_gateways_key_is_rejected_with_a_code(
    tmp_path: Path, payload_file: Path
) -> None:
    message = sealed(tmp_path, payload_file)
    result = run(open_args(message, OTHER))
    code = assert_rejected(result)
    assert code.startswith("OSO-E2")
    assert result.stdout_bytes == b""


def test_a_tampered_message_is_rejected(tmp_path: Path, payload_file: Path) -> None:
    message = sealed(tmp_path, payload_file)
    data = message.read_bytes()
    data = data.replace(ACTION.encode(), b"urn:example:oso:delete")
    message.write_bytes(data)
    assert_rejected(run(open_args(message)))


def test_revoked_sender_certificate_is_rejected_with_the_revocation_code(
    tmp_path: Path, payload_file: Path
) -> None:
    message = sealed(tmp_path, payload_file, REVOKED)
    result = run([*open_args(message), "--json"])
    assert_rejected(result, SignerUntrusted.code, CertificateRevoked.code)
    assert json.loads(result.stdout) == {
        "code": SignerUntrusted.code,
        "message": SignerUntrusted.public_message,
        "cause_code": CertificateRevoked.code,
    }


def test_a_missing_crl_fails_closed_unless_not_required(tmp_path: Path, payload_file: Path) -> None:
    message = sealed(tmp_path, payload_file)
    without_crls = [a for a in TRUST_ARGS if not a.endswith(".crl.pem") and a != "--crl"]
    base = ["open", str(message), "--key", key(RECIPIENT), "--cert", cert(RECIPIENT)]
    assert_rejected(run([*base, *without_crls]), CrlMissing.code)
    result = run([*base, *without_crls, "--no-crl-required"])
    assert result.exit_code == 0, result.output


def test_expected_to_rejects_a_message_for_another_endpoint(
    tmp_path: Path, payload_file: Path
) -> None:
    message = sealed(tmp_path, payload_file)
    assert run([*open_args(message), "--expected-to", TO]).exit_code == 0
    assert_rejected(run([*open_args(message), "--expected-to", "https://elsewhere.example/oso"]))


def test_verbose_rejection_adds_the_logged_detail_but_no_payload(
    tmp_path: Path, payload_file: Path
) -> None:
    message = sealed(tmp_path, payload_file)
    result = run([*open_args(message, OTHER), "--verbose"])
    assert_rejected(result)
    assert re.search(r"^detail: \S", result.stderr, re.MULTILINE)


def test_seal_rejects_a_payload_that_is_not_well_formed_without_echoing_it(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(PAYLOAD[:-5])
    result = run(seal_args(bad, tmp_path / "out.xml"))
    assert_rejected(result, "OSO-E201")
    assert not (tmp_path / "out.xml").exists()


# --- usage errors (exit 2) ----------------------------------------------------------------------


def test_open_without_trust_anchors_is_a_usage_error(tmp_path: Path, payload_file: Path) -> None:
    message = sealed(tmp_path, payload_file)
    result = run(["open", str(message), "--key", key(RECIPIENT), "--cert", cert(RECIPIENT)])
    assert result.exit_code == 2
    assert "--trust" in result.output


def test_open_with_keys_and_certs_unpaired_is_a_usage_error(
    tmp_path: Path, payload_file: Path
) -> None:
    message = sealed(tmp_path, payload_file)
    result = run(["open", str(message), "--key", key(RECIPIENT), *TRUST_ARGS])
    assert result.exit_code == 2
    assert "--cert" in result.output


def test_seal_without_a_destination_is_a_usage_error(tmp_path: Path, payload_file: Path) -> None:
    args = seal_args(payload_file, tmp_path / "out.xml")
    i = args.index("--to")
    result = run(args[:i] + args[i + 2 :])
    assert result.exit_code == 2
    assert "--to" in result.output


def test_a_certificate_given_as_the_private_key_is_a_usage_error_with_the_key_code(
    tmp_path: Path, payload_file: Path
) -> None:
    args = seal_args(payload_file, tmp_path / "out.xml")
    args[args.index("--sender-key") + 1] = cert(SENDER)
    result = run(args)
    assert result.exit_code == 2
    assert "OSO-E320" in result.output


def test_a_certificate_that_does_not_belong_to_the_key_is_a_usage_error(
    tmp_path: Path, payload_file: Path
) -> None:
    args = seal_args(payload_file, tmp_path / "out.xml")
    args[args.index("--sender-cert") + 1] = cert(OTHER)
    result = run(args)
    assert result.exit_code == 2
    assert "does not belong" in result.output


def test_unknown_oaep_variant_is_a_usage_error(tmp_path: Path, payload_file: Path) -> None:
    result = run(seal_args(payload_file, tmp_path / "out.xml", SENDER, "--oaep", "sha1"))
    assert result.exit_code == 2


def test_a_missing_message_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run(open_args(tmp_path / "absent.xml"))
    assert result.exit_code == 2


# --- identities and trust from the configuration file ------------------------------------------


def write_config(tmp_path: Path, oins: Sequence[str]) -> Path:
    lines = [
        "[trust]",
        f'anchor_files = ["{DEV / "root-ca.crt.pem"}"]',
        f'intermediate_files = ["{DEV / "issuing-ca.crt.pem"}"]',
        f'crl_files = ["{DEV / "root-ca.crl.pem"}", "{DEV / "issuing-ca.crl.pem"}"]',
    ]
    for oin in oins:
        lines += [
            "[[identity]]",
            f'oin = "{oin}"',
            f'key_file = "{key(oin)}"',
            f'cert_file = "{cert(oin)}"',
        ]
    path = tmp_path / f"gateway-{len(oins)}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_seal_and_open_take_identities_and_trust_from_the_config_file(
    tmp_path: Path, payload_file: Path
) -> None:
    sender_config = write_config(tmp_path, [SENDER])
    args = seal_args(payload_file, tmp_path / "out.xml")
    for flag in ("--sender-key", "--sender-cert"):
        i = args.index(flag)
        del args[i : i + 2]
    result = run([*args, "--config", str(sender_config)])
    assert result.exit_code == 0, result.output
    receiver_config = write_config(tmp_path, [OTHER, RECIPIENT])
    opened = run(["open", str(tmp_path / "out.xml"), "--config", str(receiver_config), "--json"])
    assert opened.exit_code == 0, opened.output
    assert json.loads(opened.stdout)["recipient_oin"] == RECIPIENT


def test_seal_with_several_configured_identities_needs_from_oin(
    tmp_path: Path, payload_file: Path
) -> None:
    config = write_config(tmp_path, [SENDER, OTHER])
    args = seal_args(payload_file, tmp_path / "out.xml")
    for flag in ("--sender-key", "--sender-cert"):
        i = args.index(flag)
        del args[i : i + 2]
    assert run([*args, "--config", str(config)]).exit_code == 2
    result = run([*args, "--config", str(config), "--from-oin", OTHER])
    assert result.exit_code == 0, result.output
    assert f"oin={OTHER}".encode() in (tmp_path / "out.xml").read_bytes()


def test_expired_sender_certificate_is_rejected_with_the_expiry_code(
    tmp_path: Path, payload_file: Path
) -> None:
    message = sealed(tmp_path, payload_file, EXPIRED)
    assert_rejected(run(open_args(message)), SignerUntrusted.code, CertificateExpired.code)


def test_open_finds_the_configuration_through_the_environment(
    tmp_path: Path, payload_file: Path
) -> None:
    message = sealed(tmp_path, payload_file)
    config = write_config(tmp_path, [RECIPIENT])
    result = CliRunner().invoke(
        main, ["open", str(message)], env={"OSO_GATEWAY_CONFIG": str(config)}
    )
    assert result.exit_code == 0, result.output
    assert c14n(result.stdout_bytes) == c14n(PAYLOAD)


def test_seal_flags_take_precedence_over_a_configured_identity(
    tmp_path: Path, payload_file: Path
) -> None:
    config = write_config(tmp_path, [OTHER])
    out = tmp_path / "out.xml"
    result = CliRunner().invoke(
        main, seal_args(payload_file, out), env={"OSO_GATEWAY_CONFIG": str(config)}
    )
    assert result.exit_code == 0, result.output
    assert f"oin={SENDER}".encode() in out.read_bytes()


def test_a_broken_configuration_file_is_a_usage_error_with_the_config_code(
    tmp_path: Path, payload_file: Path
) -> None:
    message = sealed(tmp_path, payload_file)
    config = tmp_path / "broken.toml"
    config.write_text("[[identity]]\noin = 'not-an-oin'\n", encoding="utf-8")
    result = run(["open", str(message), "--config", str(config)])
    assert result.exit_code == 2
    assert "OSO-E501" in result.output
