"""CRLs fetched from the certificates' distribution points, on a schedule.

The URLs come from the ``cRLDistributionPoints`` extension (http and https only) of the
certificates the gateway relies on: the trust anchors and intermediates, our own identity
certificates and the directory's gateway certificates. Each CRL fetched is accepted only when it
parses, is signed by a CA we know (an anchor or intermediate whose subject is its issuer) and is
not older than the copy we have; it is then written atomically into ``<data_dir>/crls/`` and the
trust reload (``transfer.reload``) applies it like a replaced ``trust.crl_files`` entry. A failed
fetch changes nothing: the copy we have stays, and once it is stale the gateway fails closed as
with any stale CRL (``trust.require_crl``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from cryptography import x509

from oso_gateway.security.keys import load_crls
from oso_gateway.security.trust import TrustConfig

log = logging.getLogger(__name__)

#: a CRL bigger than this is not read to the end
MAX_CRL_BYTES = 20 * 1024 * 1024
_SUFFIX = ".crl.pem"


def distribution_points(certificates: Iterable[x509.Certificate]) -> list[str]:
    """The http(s) CRL distribution point URLs of ``certificates``, each once, in order."""
    urls: dict[str, None] = {}
    for cert in certificates:
        try:
            ext = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        except x509.ExtensionNotFound:
            continue
        for point in ext:
            for name in point.full_name or ():
                if isinstance(
                    name, x509.UniformResourceIdentifier
                ) and name.value.lower().startswith(("http://", "https://")):
                    urls[name.value] = None
    return list(urls)


def cached_crl_files(cache_dir: Path) -> list[Path]:
    """The CRLs fetched earlier (for ``load_trust(extra_crls=...)``)."""
    return sorted(cache_dir.glob("*" + _SUFFIX)) if cache_dir.is_dir() else []


@dataclass
class FetchReport:
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _get(url: str, timeout: float) -> bytes:
    with requests.get(url, timeout=timeout, stream=True, allow_redirects=False) as response:
        if response.status_code != 200:
            raise OSError(f"HTTP status {response.status_code}")
        body = b""
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > MAX_CRL_BYTES:
                raise OSError("CRL over the size limit")
        return body


class CrlFetcher:
    """Fetches the CRLs of the distribution points into ``cache_dir``."""

    def __init__(
        self,
        *,
        cache_dir: Path,
        trust: Callable[[], TrustConfig],
        certificates: Callable[[], Iterable[x509.Certificate]],
        timeout: float = 30.0,
        get: Callable[[str, float], bytes] = _get,
    ) -> None:
        self.cache_dir = cache_dir
        self.trust = trust
        self.certificates = certificates
        self.timeout = timeout
        self._get = get

    def path_for(self, url: str) -> Path:
        return self.cache_dir / (hashlib.sha256(url.encode()).hexdigest()[:24] + _SUFFIX)

    def fetch_all(self) -> FetchReport:
        """One round: every distribution point once (errors are reported, never raised)."""
        report = FetchReport()
        trust = self.trust()
        for url in distribution_points(self.certificates()):
            try:
                if self._fetch(url, trust):
                    report.updated.append(url)
                else:
                    report.unchanged.append(url)
            except (OSError, ValueError, requests.RequestException) as exc:
                report.failed[url] = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("CRL fetch from %s failed: %s", url[:200], report.failed[url])
        return report

    def _fetch(self, url: str, trust: TrustConfig) -> bool:
        data = self._get(url, self.timeout)
        crls = load_crls(data)
        if len(crls) != 1:
            raise ValueError(f"{len(crls)} CRLs in the answer, expected one")
        crl = crls[0]
        issuers = [c for c in (*trust.anchors, *trust.intermediates) if c.subject == crl.issuer]
        if not any(crl.is_signature_valid(c.public_key()) for c in issuers):  # type: ignore[arg-type]
            raise ValueError("not signed by a CA we know")
        path = self.path_for(url)
        if path.exists():
            old = load_crls(path.read_bytes())
            if old and old[0].last_update_utc >= crl.last_update_utc:
                return False
        from cryptography.hazmat.primitives.serialization import Encoding

        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = path.with_suffix(".tmp")
        fresh.write_bytes(crl.public_bytes(Encoding.PEM))
        os.replace(fresh, path)
        log.info("CRL of %s fetched from %s (thisUpdate %s)", crl.issuer.rfc4514_string(),
                 url[:200], crl.last_update_utc.isoformat())  # fmt: skip
        return True

    def run(self, stop: threading.Event, *, interval: float) -> None:
        """A round now, then every ``interval`` seconds until ``stop``."""
        while not stop.is_set():
            try:
                self.fetch_all()
            except Exception:  # a round's own failure must not end the fetching for good
                log.exception("a CRL fetch round failed; the next in %.0f s", interval)
            stop.wait(interval)
