"""The school directory: lookup, mandates, strict loading, and the health check (dev PKI)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from oso_gateway.cli import main
from oso_gateway.errors import DirectoryFileError, MandateMissing, UnknownSchool
from oso_gateway.security.namespaces import KT_RSA_OAEP, KT_RSA_OAEP_MGF1P
from oso_gateway.security.trust import TrustConfig
from oso_gateway.transfer.directory import Directory, endpoint_problem

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "certs" / "dev"
EXAMPLE = REPO / "examples" / "config" / "directory.toml"
EXAMPLE_CONFIG = REPO / "examples" / "config" / "gateway-regenboog.toml"
REGENBOOG, COLLEGE, VENDOR = (f"0000000100000000000{i}" for i in (1, 2, 3))
EXPIRED, REVOKED = "00000001000000000008", "00000001000000000009"


def _cert(oin: str) -> Path:
    return DEV / f"gateway-{oin}.crt.pem"


def _trust(*, require_crl: bool = True) -> TrustConfig:
    return TrustConfig.from_pem(
        anchors=[(DEV / "root-ca.crt.pem").read_bytes()],
        intermediates=[(DEV / "issuing-ca.crt.pem").read_bytes()],
        crls=[(DEV / "root-ca.crl.pem").read_bytes(), (DEV / "issuing-ca.crl.pem").read_bytes()],
        require_crl=require_crl,
    )


def _dev_now() -> datetime:
    """A moment at which the committed dev PKI (certificates and CRLs) is valid."""
    crl = x509.load_pem_x509_crl((DEV / "issuing-ca.crl.pem").read_bytes())
    return crl.last_update_utc + timedelta(hours=1)


def _directory_toml(*gateways: tuple[str, str], extra: str = "") -> bytes:
    """One school per gateway (BRIN 1x00 for the i-th), each gateway with its own certificate."""
    parts = []
    for i, (oin, cert_oin) in enumerate(gateways):
        parts.append(
            f'[gateways."{oin}"]\nendpoint = "https://gw{i}.example.nl/oso"\n'
            f'encryption_certificate = "{_cert(cert_oin)}"\n'
        )
        parts.append(
            f'[[schools]]\nbrin = "1{i}AA"\nvestiging = "00"\nname = "School {i}"\n'
            f'gateway = "{oin}"\n'
        )
    return ("\n".join(parts) + extra).encode()


@pytest.fixture(scope="module")
def example() -> Directory:
    return Directory.load(EXAMPLE)


def test_lookup_gives_the_serving_gateway_endpoint_certificate_and_key_transport(
    example: Directory,
) -> None:
    school = example.lookup("01AB", "00")
    assert school.name == "Het Dev College" and school.code == "01AB00"
    assert school.oin == COLLEGE
    assert school.endpoint == "https://localhost:8442/oso/v1/messages"
    assert school.encryption_certificate == x509.load_pem_x509_certificate(
        _cert(COLLEGE).read_bytes()
    )
    assert school.key_transport == KT_RSA_OAEP
    vendor_school = example.lookup("02cd", "00")  # BRIN letters in any case
    assert vendor_school.oin == VENDOR and vendor_school.key_transport == KT_RSA_OAEP_MGF1P
    assert (
        vendor_school.endpoint == "https://localhost:8443/oso/v1/messages/02CD00"
    )  # its own endpoint
    assert vendor_school.gateway.endpoint == "https://localhost:8443/oso/v1/messages"
    assert [s.code for s in example.schools_served_by(VENDOR)] == ["02CD00", "03EF00"]
    assert [str(s) for s in example.schools()] == ["00YY00", "01AB00", "02CD00", "03EF00"]


def test_an_unknown_school_is_a_typed_error(example: Directory) -> None:
    with pytest.raises(UnknownSchool, match="99ZZ00") as info:
        example.lookup("99ZZ", "00")
    assert info.value.code == "OSO-E430"
    with pytest.raises(UnknownSchool):
        example.lookup("00YY", "01")  # known BRIN, other vestiging


def test_the_serving_gateway_and_listed_oins_are_mandated_no_one_else(example: Directory) -> None:
    assert example.is_mandated(REGENBOOG, "00YY", "00")
    assert example.is_mandated(VENDOR, "03EF", "00")
    assert example.is_mandated(REGENBOOG, "03EF", "00")  # explicitly mandated
    assert not example.is_mandated(COLLEGE, "03EF", "00")
    assert not example.is_mandated(REGENBOOG, "01AB", "00")
    assert not example.is_mandated(REGENBOOG, "99ZZ", "00")
    example.check_mandate(VENDOR, "02CD", "00")  # no error


def test_a_missing_mandate_is_refused_with_its_own_code(example: Directory) -> None:
    with pytest.raises(MandateMissing, match=f"OIN {COLLEGE} is not mandated") as info:
        example.check_mandate(COLLEGE, "00YY", "00")
    assert info.value.code == "OSO-E431" and info.value.http_status == 403
    with pytest.raises(MandateMissing, match="not in the directory"):
        example.check_mandate(REGENBOOG, "99ZZ", "00")


def test_a_broken_file_lists_every_problem_at_once(tmp_path: Path) -> None:
    data = f"""
colour = "blue"
[gateways."00000001000000000001"]
endpoint = "http://gw.example.nl/oso"
encryption_certificate = "{_cert(REGENBOOG)}"
key_transport = "rsa-1_5"
[gateways."00000001000000000002"]
endpoint = "https://gw2.example.nl/oso"
encryption_certificate = "missing.pem"
[gateways."12345"]
endpoint = "https://gw3.example.nl/oso"
[[schools]]
brin = "0yy"
vestiging = "0"
name = "Bad codes"
gateway = "00000001000000000001"
[[schools]]
brin = "05GH"
vestiging = "00"
gateway = "00000001000000000007"
endpoint = "ftp://gw.example.nl/05GH00"
mandated = ["42"]
"""
    with pytest.raises(DirectoryFileError) as info:
        Directory.from_toml(data.encode(), tmp_path, source="test.toml")
    text = "\n".join(info.value.problems)
    for expected in (
        "colour: unknown key",
        "endpoint must be an https:// URL",
        "key_transport must be one of rsa-oaep, rsa-oaep-mgf1p",
        "cannot read encryption_certificate",
        "the key must be a 20-digit OIN",
        "brin must be",
        "vestiging must be 2 digits",
        "name is required",
        "gateway 00000001000000000007 is not listed",
        "mandated must be a list of 20-digit OINs",
    ):
        assert expected in text, expected
    assert info.value.code == "OSO-E505"
    assert str(tmp_path / "missing.pem") in text
    assert text.count("endpoint must be an https:// URL") == 2  # gateway's and school's


def test_a_file_that_is_not_a_certificate_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    data = _directory_toml((REGENBOOG, REGENBOOG)).replace(
        str(_cert(REGENBOOG)).encode(), str(bogus).encode()
    )
    with pytest.raises(DirectoryFileError, match="OSO-E313"):
        Directory.from_toml(data, tmp_path)


def test_duplicate_school_entries_are_reported(tmp_path: Path) -> None:
    one = _directory_toml((REGENBOOG, REGENBOOG)).decode()
    school = one[one.index("[[schools]]") :]
    with pytest.raises(DirectoryFileError, match="school 10AA00 is listed twice"):
        Directory.from_toml((one + "\n" + school).encode(), tmp_path)


def test_not_toml_is_a_directory_file_error(tmp_path: Path) -> None:
    with pytest.raises(DirectoryFileError, match="not valid TOML"):
        Directory.from_toml(b"[gateways\n", tmp_path)
    with pytest.raises(DirectoryFileError, match="cannot read directory file"):
        Directory.load(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://gw.example.nl/oso", None),
        ("https://127.0.0.1:8443/oso/v1", None),
        ("http://gw.example.nl/oso", "must be an https:// URL"),
        ("https:///oso", "has no host"),
        ("https://user:pw@gw.example.nl/", "must not contain credentials"),
        ("https://gw.example.nl/oso#x", "must not contain a fragment"),
        ("https://gw.example.nl:99999/", "is not a well-formed URL"),
        ("https://gw.example.nl/o so", "must not contain spaces"),
        ("gw.example.nl/oso", "must be an https:// URL"),
    ],
)
def test_endpoints_must_be_well_formed_https_urls(url: str, problem: str | None) -> None:
    assert endpoint_problem(url) == problem


def test_the_example_directory_passes_the_check_against_the_dev_pki(example: Directory) -> None:
    assert example.check(trust=_trust(), now=_dev_now()) == []


def test_the_check_reports_revoked_expired_and_mismatched_certificates(tmp_path: Path) -> None:
    data = _directory_toml(
        (REGENBOOG, REGENBOOG), (EXPIRED, EXPIRED), (REVOKED, REVOKED), (COLLEGE, VENDOR)
    )
    directory = Directory.from_toml(data, tmp_path)
    problems = directory.check(trust=_trust(), now=_dev_now())
    assert len(problems) == 3, problems
    by_gateway = {p.split(":")[0]: p for p in problems}
    assert "OSO-E302" in by_gateway[f"gateway {EXPIRED}"]
    assert "OSO-E304" in by_gateway[f"gateway {REVOKED}"]
    assert "does not carry OIN" in by_gateway[f"gateway {COLLEGE}"]


def test_the_check_warns_30_days_before_a_certificate_expires(tmp_path: Path) -> None:
    directory = Directory.from_toml(_directory_toml((REGENBOOG, REGENBOOG)), tmp_path)
    not_after = directory.gateways[REGENBOOG].encryption_certificate.not_valid_after_utc
    trust = _trust(require_crl=False)  # the dev CRLs are stale that far ahead
    soon = directory.check(trust=trust, now=not_after - timedelta(days=10))
    assert len(soon) == 1 and "expires in 10 days" in soon[0]
    assert directory.check(trust=trust, now=not_after - timedelta(days=31)) == []


def test_the_check_without_trust_anchors_fails_closed(example: Directory) -> None:
    problems = example.check(trust=None, now=_dev_now())
    assert problems == ["no trust anchors configured: certificates cannot be checked"]


# --- CLI -------------------------------------------------------------------------------------


def test_cli_check_of_the_example_configuration_succeeds() -> None:
    now = _dev_now().isoformat()
    result = CliRunner().invoke(
        main, ["directory", "check", "--config", str(EXAMPLE_CONFIG), "--now", now]
    )
    assert result.exit_code == 0, result.output
    assert "OK:" in result.output and "3 gateways, 4 schools" in result.output


def test_cli_check_exits_1_listing_the_problems(tmp_path: Path) -> None:
    bad = tmp_path / "directory.toml"
    bad.write_bytes(_directory_toml((REVOKED, REVOKED)).replace(b"https://", b"http://"))
    args = ["directory", "check", "--config", str(EXAMPLE_CONFIG), "--file", str(bad)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "OSO-E505: 1 problem(s):" in result.output and "https:// URL" in result.output
    bad.write_bytes(_directory_toml((REVOKED, REVOKED)))
    result = CliRunner().invoke(main, [*args, "--now", _dev_now().isoformat()])
    assert result.exit_code == 1 and "OSO-E304" in result.output


def test_cli_show_json_describes_gateways_and_schools() -> None:
    result = CliRunner().invoke(main, ["directory", "show", "--json", "--file", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [g["oin"] for g in doc["gateways"]] == [REGENBOOG, COLLEGE, VENDOR]
    assert {s["brin"] + s["vestiging"] for s in doc["schools"]} == {
        "00YY00",
        "01AB00",
        "02CD00",
        "03EF00",
    }
    assert doc["gateways"][2]["key_transport"] == KT_RSA_OAEP_MGF1P
    plain = CliRunner().invoke(main, ["directory", "show", "--file", str(EXAMPLE)])
    assert "03EF00  CSG Het Baken" in plain.output and "also mandated" in plain.output


def test_cli_without_a_directory_file_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "gateway.toml"
    empty.write_text("")
    result = CliRunner().invoke(main, ["directory", "show", "--config", str(empty)])
    assert result.exit_code == 2 and "directory.file" in result.output


def test_cli_check_reports_our_own_key_and_certificate_too(tmp_path: Path) -> None:
    """It said OK while this gateway's own key file was missing, or the directory gave its OIN
    a certificate whose key it does not hold (found by a helper's walkthrough)."""
    dev = REPO / "certs" / "dev"
    text = EXAMPLE_CONFIG.read_text().replace('"../../', f'"{REPO.as_posix()}/')
    text = text.replace('file = "directory.toml"', f'file = "{EXAMPLE.as_posix()}"')
    now = _dev_now().isoformat()

    def check(config_text: str, directory: Path | None = None) -> str:
        config = tmp_path / "gateway.toml"
        config.write_text(config_text)
        extra = ["--file", str(directory)] if directory else []
        result = CliRunner().invoke(
            main, ["directory", "check", "--config", str(config), "--now", now, *extra]
        )
        assert result.exit_code == (0 if "OK:" in result.output else 1), result.output
        return result.output

    assert "OK:" in check(text)
    missing = text.replace("gateway-00000001000000000001.key.pem", "no-such.key.pem")
    output = check(missing)
    assert "our identity: OSO-E501" in output and "cannot read key_file" in output
    # the directory gives our OIN (…01) the certificate of gateway …02
    swapped = tmp_path / "directory.toml"
    swapped.write_text(
        EXAMPLE.read_text()
        .replace("gateway-00000001000000000001.crt.pem", "@@")
        .replace("gateway-00000001000000000002.crt.pem", "gateway-00000001000000000001.crt.pem")
        .replace("@@", "gateway-00000001000000000002.crt.pem")
        .replace('"../../certs/dev/', f'"{dev.as_posix()}/')
    )
    output = check(text, swapped)
    assert "gateway 00000001000000000001: the directory's certificate" in output
    assert "a key it does not hold" in output


@pytest.mark.parametrize("brin", ["1000", "10A1", "1A0B"])
def test_a_brin_no_dossier_can_carry_is_refused(tmp_path: Path, brin: str) -> None:
    """A vendor listed a school with BRIN "1000": the directory, `api-client add` and
    `operator add` took it, and every dossier of that school was refused (E102), since the
    gegevensset's brincode is two digits and two capitals."""
    from oso_gateway.transfer.schools import School

    one = (
        _directory_toml((REGENBOOG, REGENBOOG))
        .decode()
        .replace('brin = "10AA"', f'brin = "{brin}"')
    )
    assert f'brin = "{brin}"' in one
    with pytest.raises(DirectoryFileError) as info:
        Directory.from_toml(one.encode(), tmp_path)
    assert "brin must be 2 digits and 2 capitals" in "\n".join(info.value.problems)
    with pytest.raises(ValueError, match="BRIN"):
        School.parse_new(brin + "00")  # a school named anew (an option, an API field)
    assert School.parse_new("10aa00").code == "10AA00"
    if brin[:2].isdigit():  # one stored or sent before (two digits first) is still read
        assert School.parse(brin + "00").brin == brin
