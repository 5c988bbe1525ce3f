"""Our verdicts on the committed dev PKI agree with an independent one (`openssl verify`)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import require

from oso_gateway import errors
from oso_gateway.security import keys, pki
from oso_gateway.security.trust import TrustConfig, verify_certificate

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def openssl() -> str:
    path = shutil.which("openssl")
    require("openssl", path is not None, "install the Debian package openssl")
    assert path is not None
    return path


def _openssl_verdict(openssl: str, cert_file: Path, at: int) -> str:
    result = subprocess.run(
        [
            openssl,
            "verify",
            "-attime",
            str(at),
            "-crl_check_all",
            "-CAfile",
            str(DEV / pki.ROOT_CERT_FILE),
            "-untrusted",
            str(DEV / pki.ISSUING_CERT_FILE),
            "-CRLfile",
            str(DEV / pki.ROOT_CRL_FILE),
            "-CRLfile",
            str(DEV / pki.ISSUING_CRL_FILE),
            str(cert_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        return "ok"
    text = result.stdout + result.stderr
    if "certificate revoked" in text:
        return "revoked"
    if "certificate has expired" in text:
        return "expired"
    return "other: " + text.strip().splitlines()[-1]


@pytest.mark.parametrize("ident", pki.DEV_IDENTITIES, ids=lambda i: i.oin)
def test_openssl_and_we_agree_on_each_committed_gateway_certificate(
    ident: pki.DevIdentity, openssl: str
) -> None:
    now = keys.load_crl((DEV / pki.ISSUING_CRL_FILE).read_bytes()).last_update_utc
    now += timedelta(days=1)
    trust = TrustConfig.from_pem(
        anchors=[(DEV / pki.ROOT_CERT_FILE).read_bytes()],
        intermediates=[(DEV / pki.ISSUING_CERT_FILE).read_bytes()],
        crls=[(DEV / pki.ROOT_CRL_FILE).read_bytes(), (DEV / pki.ISSUING_CRL_FILE).read_bytes()],
    )
    cert_file = DEV / ident.cert_file
    try:
        verify_certificate(keys.load_certificate(cert_file.read_bytes()), trust=trust, now=now)
        ours = "ok"
    except errors.CertificateRevoked:
        ours = "revoked"
    except errors.CertificateExpired:
        ours = "expired"
    theirs = _openssl_verdict(openssl, cert_file, int(now.timestamp()))
    assert ours == theirs
    assert ours == {"valid": "ok"}.get(ident.status, ident.status)
