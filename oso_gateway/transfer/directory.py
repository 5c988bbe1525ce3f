"""The school directory (like the Onderwijs Serviceregister): who serves which school, where.

A TOML file lists the gateways (OIN → endpoint, encryption certificate, optional key-transport pin)
and the schools (BRIN + vestiging → name, serving gateway, further mandated OINs)::

    [gateways."00000001000000000002"]
    name = "Het Dev College"
    endpoint = "https://gw2.example.nl/oso/v1/messages"
    encryption_certificate = "certs/gateway-00000001000000000002.crt.pem"
    key_transport = "rsa-oaep"          # optional: "rsa-oaep" (default) | "rsa-oaep-mgf1p"

    [[schools]]
    brin = "01AB"
    vestiging = "00"
    name = "Het Dev College"
    gateway = "00000001000000000002"    # the serving gateway; it is mandated for the school
    endpoint = "https://gw2.example.nl/oso/v1/messages/01AB00"  # optional (default: the gateway's)
    mandated = []                        # optional: further OINs that may send for this school

A sender looks the recipient up (``lookup``); a receiver checks that the signing OIN is mandated
for the sending school (``check_mandate``). Loading is strict: every problem in the file is listed
in one ``DirectoryFileError`` (OSO-E505). ``Directory.check`` adds what can change over time:
certificates trusted and not about to expire.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from cryptography import x509

from oso_gateway.errors import DirectoryFileError, GatewayError, MandateMissing, UnknownSchool
from oso_gateway.protocol import SCHOOL_BRIN_PATTERN, is_oin
from oso_gateway.security.namespaces import KT_RSA_OAEP, KT_RSA_OAEP_MGF1P

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.security.trust import TrustConfig

#: names usable in ``key_transport`` → the algorithm URI given to ``wss.seal``
KEY_TRANSPORTS: Mapping[str, str] = {"rsa-oaep": KT_RSA_OAEP, "rsa-oaep-mgf1p": KT_RSA_OAEP_MGF1P}
#: ``directory check`` warns when a certificate expires within this period
EXPIRY_WARNING = timedelta(days=30)

BRIN_RE = re.compile(SCHOOL_BRIN_PATTERN)
VESTIGING_RE = re.compile(r"[0-9]{2}")

_GATEWAY_KEYS = {"name", "endpoint", "encryption_certificate", "key_transport"}
_SCHOOL_KEYS = {"brin", "vestiging", "name", "gateway", "endpoint", "mandated"}


@dataclass(frozen=True, kw_only=True)
class GatewayEntry:
    oin: str
    name: str
    endpoint: str
    certificate_file: Path
    encryption_certificate: x509.Certificate
    #: key-transport algorithm URI to use when sealing for this gateway
    key_transport: str


@dataclass(frozen=True, kw_only=True)
class SchoolEntry:
    brin: str
    vestiging: str
    name: str
    gateway: GatewayEntry
    #: where to send for this school: its own ``endpoint`` or else the gateway's
    endpoint: str
    #: OINs that may send on behalf of this school (always includes the serving gateway)
    mandated: frozenset[str]

    @property
    def code(self) -> str:
        """BRIN + vestiging, e.g. ``00YY00``."""
        return self.brin + self.vestiging

    def __str__(self) -> str:
        return self.code

    # The fields a sender needs, without going through .gateway:
    @property
    def oin(self) -> str:
        return self.gateway.oin

    @property
    def encryption_certificate(self) -> x509.Certificate:
        return self.gateway.encryption_certificate

    @property
    def key_transport(self) -> str:
        return self.gateway.key_transport


class Directory:
    """The loaded directory. Immutable; reload the file to pick up changes."""

    def __init__(
        self,
        *,
        gateways: Mapping[str, GatewayEntry],
        schools: Mapping[tuple[str, str], SchoolEntry],
        source: str = "<directory>",
    ) -> None:
        self.gateways: Mapping[str, GatewayEntry] = dict(gateways)
        self._schools: Mapping[tuple[str, str], SchoolEntry] = dict(schools)
        self.source = source

    @classmethod
    def load(cls, path: Path) -> Directory:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DirectoryFileError(
                f"cannot read directory file {path} ({exc.strerror})"
            ) from None
        return cls.from_toml(data, Path(path).resolve().parent, source=str(path))

    @classmethod
    def from_toml(cls, data: bytes, base_dir: Path, *, source: str = "<directory>") -> Directory:
        """Parse ``data``; certificate paths resolve against ``base_dir``."""
        try:
            doc = tomllib.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise DirectoryFileError(f"{source}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise DirectoryFileError(f"{source}: not valid TOML ({exc})") from None
        return _Parser(source, base_dir).parse(doc)

    # --- queries ----------------------------------------------------------------------------

    def lookup(self, brin: str, vestiging: str) -> SchoolEntry:
        """The school, or ``UnknownSchool`` (OSO-E430)."""
        entry = self._schools.get((brin.upper(), vestiging))
        if entry is None:
            raise UnknownSchool(f"school {brin}{vestiging} is not in the directory")
        return entry

    def is_mandated(self, oin: str, brin: str, vestiging: str) -> bool:
        entry = self._schools.get((brin.upper(), vestiging))
        return entry is not None and oin in entry.mandated

    def check_mandate(self, oin: str, brin: str, vestiging: str) -> None:
        """``MandateMissing`` (OSO-E431) unless ``oin`` may speak for the school."""
        if (brin.upper(), vestiging) not in self._schools:
            raise MandateMissing(f"OIN {oin}: school {brin}{vestiging} is not in the directory")
        if not self.is_mandated(oin, brin, vestiging):
            raise MandateMissing(f"OIN {oin} is not mandated for school {brin}{vestiging}")

    def schools(self) -> list[SchoolEntry]:
        """Every school, ordered by code (``str(entry)`` is the code, e.g. ``00YY00``)."""
        return [self._schools[key] for key in sorted(self._schools)]

    def school_names(self) -> dict[str, str]:
        """School code (BRIN + vestiging) → the school's name."""
        return {str(entry): entry.name for entry in self.schools()}

    def schools_served_by(self, oin: str) -> list[SchoolEntry]:
        return [s for s in self.schools() if s.gateway.oin == oin]

    # --- health -----------------------------------------------------------------------------

    def check(self, *, trust: TrustConfig | None, now: datetime) -> list[str]:
        """Problems that are not about the file's shape: trust, expiry, OIN in the certificate.

        ``trust=None`` reports that trust could not be checked (a problem: fail closed).
        """
        from oso_gateway.security.trust import oin_of, verify_certificate

        problems = []
        if trust is None:
            problems.append("no trust anchors configured: certificates cannot be checked")
        for oin, gw in sorted(self.gateways.items()):
            cert = gw.encryption_certificate
            where = f"gateway {oin}: {gw.certificate_file}"
            try:
                if oin_of(cert) != oin:
                    problems.append(f"{where}: the certificate does not carry OIN {oin}")
                if trust is not None:
                    verify_certificate(cert, trust=trust, now=now, purpose="encryption")
            except GatewayError as exc:
                problems.append(f"{where}: {exc.code}: {exc.detail}")
                continue
            left = cert.not_valid_after_utc - now
            if timedelta(0) <= left < EXPIRY_WARNING:
                problems.append(
                    f"{where}: expires in {left.days} days "
                    f"({cert.not_valid_after_utc.date().isoformat()})"
                )
            elif left < timedelta(0) and trust is None:
                problems.append(f"{where}: expired {cert.not_valid_after_utc.date().isoformat()}")
        return problems

    def to_json(self) -> dict[str, Any]:
        """A plain description (for ``directory show --json``)."""
        from oso_gateway.security.trust import fingerprint

        return {
            "source": self.source,
            "gateways": [
                {
                    "oin": gw.oin,
                    "name": gw.name,
                    "endpoint": gw.endpoint,
                    "encryption_certificate": str(gw.certificate_file),
                    "certificate_sha256": fingerprint(gw.encryption_certificate),
                    "not_after": gw.encryption_certificate.not_valid_after_utc.isoformat(),
                    "key_transport": gw.key_transport,
                }
                for _, gw in sorted(self.gateways.items())
            ],
            "schools": [
                {
                    "brin": s.brin,
                    "vestiging": s.vestiging,
                    "name": s.name,
                    "gateway": s.gateway.oin,
                    "endpoint": s.endpoint,
                    "mandated": sorted(s.mandated),
                }
                for s in self.schools()
            ],
        }


class _Parser:
    """Builds a Directory, collecting every problem before failing."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir
        self.problems: list[str] = []

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def parse(self, doc: dict[str, Any]) -> Directory:
        for key in sorted(set(doc) - {"gateways", "schools"}):
            self.problem(key, "unknown key")
        raw_gateways = doc.get("gateways", {})
        raw_schools = doc.get("schools", [])
        if not isinstance(raw_gateways, dict):
            self.problem("gateways", 'must be tables [gateways."<OIN>"]')
            raw_gateways = {}
        if not isinstance(raw_schools, list) or not all(isinstance(s, dict) for s in raw_schools):
            self.problem("schools", "must be an array of tables [[schools]]")
            raw_schools = []
        gateways = {}
        for oin, table in raw_gateways.items():
            entry = self._gateway(str(oin), table)
            if entry is not None:
                gateways[oin] = entry
        schools: dict[tuple[str, str], SchoolEntry] = {}
        for i, table in enumerate(raw_schools):
            where = f"schools[{i}]"
            entry2 = self._school(where, table, raw_gateways, gateways)
            if entry2 is None:
                continue
            school_key = (entry2.brin, entry2.vestiging)
            if school_key in schools:
                self.problem(where, f"school {entry2.code} is listed twice")
            schools[school_key] = entry2
        if self.problems:
            raise DirectoryFileError(
                f"{self.source}: {len(self.problems)} problem(s): " + "; ".join(self.problems),
                problems=tuple(self.problems),
            )
        return Directory(gateways=gateways, schools=schools, source=self.source)

    def _string(self, where: str, table: dict[str, Any], key: str, *, required: bool) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                self.problem(where, f"{key} is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(where, f"{key} must be a non-empty string")
            return None
        return value

    def _gateway(self, oin: str, table: Any) -> GatewayEntry | None:
        where = f'gateways."{oin}"'
        if not is_oin(oin):
            self.problem(where, "the key must be a 20-digit OIN")
            return None
        if not isinstance(table, dict):
            self.problem(where, "must be a table")
            return None
        for key in sorted(set(table) - _GATEWAY_KEYS):
            self.problem(where, f"{key}: unknown key")
        name = self._string(where, table, "name", required=False) or oin
        endpoint = self._string(where, table, "endpoint", required=True)
        if endpoint is not None and (why := endpoint_problem(endpoint)) is not None:
            self.problem(where, f"endpoint {why}")
            endpoint = None
        kt_name = self._string(where, table, "key_transport", required=False) or "rsa-oaep"
        key_transport = KEY_TRANSPORTS.get(kt_name)
        if key_transport is None:
            self.problem(where, f"key_transport must be one of {', '.join(KEY_TRANSPORTS)}")
        cert_text = self._string(where, table, "encryption_certificate", required=True)
        cert = cert_file = None
        if cert_text is not None:
            cert_file = Path(cert_text).expanduser()
            cert_file = cert_file if cert_file.is_absolute() else self.base_dir / cert_file
            cert = self._certificate(where, cert_file)
        if endpoint is None or key_transport is None or cert is None or cert_file is None:
            return None
        return GatewayEntry(
            oin=oin,
            name=name,
            endpoint=endpoint,
            certificate_file=cert_file,
            encryption_certificate=cert,
            key_transport=key_transport,
        )

    def _certificate(self, where: str, path: Path) -> x509.Certificate | None:
        from oso_gateway.security.keys import load_certificate

        try:
            data = path.read_bytes()
        except OSError as exc:
            self.problem(where, f"cannot read encryption_certificate {path} ({exc.strerror})")
            return None
        try:
            return load_certificate(data)
        except GatewayError as exc:
            self.problem(where, f"encryption_certificate {path}: {exc.code}: {exc.detail}")
            return None

    def _school(
        self,
        where: str,
        table: dict[str, Any],
        raw_gateways: Mapping[str, Any],
        gateways: Mapping[str, GatewayEntry],
    ) -> SchoolEntry | None:
        for key in sorted(set(table) - _SCHOOL_KEYS):
            self.problem(where, f"{key}: unknown key")
        brin = self._string(where, table, "brin", required=True)
        vestiging = self._string(where, table, "vestiging", required=True)
        name = self._string(where, table, "name", required=True)
        oin = self._string(where, table, "gateway", required=True)
        endpoint = self._string(where, table, "endpoint", required=False)
        ok = True
        if endpoint is not None and (why := endpoint_problem(endpoint)) is not None:
            self.problem(where, f"endpoint {why}")
            ok = False
        if brin is not None and not BRIN_RE.fullmatch(brin):
            self.problem(
                where,
                "brin must be 2 digits and 2 capitals, e.g. 00YY (the dossier's brincode: a "
                "school with another could never send one)",
            )
            ok = False
        if vestiging is not None and not VESTIGING_RE.fullmatch(vestiging):
            self.problem(where, "vestiging must be 2 digits, e.g. 00")
            ok = False
        if oin is not None and oin not in raw_gateways:
            self.problem(where, f"gateway {oin} is not listed under [gateways]")
            ok = False
        extra = table.get("mandated", [])
        if not isinstance(extra, list) or not all(isinstance(o, str) and is_oin(o) for o in extra):
            self.problem(where, "mandated must be a list of 20-digit OINs")
            ok = False
            extra = []
        if not ok or brin is None or vestiging is None or name is None or oin is None:
            return None
        gateway = gateways.get(oin)
        if gateway is None:  # listed, but broken: already reported there
            return None
        return SchoolEntry(
            brin=brin,
            vestiging=vestiging,
            name=name,
            gateway=gateway,
            endpoint=endpoint or gateway.endpoint,
            mandated=frozenset({oin, *extra}),
        )


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` is not a usable gateway endpoint (an absolute https URL), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a well-formed URL"
    del port
    if parts.scheme != "https":
        return "must be an https:// URL"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials"
    if parts.fragment:
        return "must not contain a fragment"
    if any(ch.isspace() for ch in url):
        return "must not contain spaces"
    return None


# --- the directory as the gateway reads it: one interface, sources behind it -----------------


class DirectorySource(Protocol):
    """Where the directory comes from. The file is the first source; a vendor can plug in its
    copy of the national service register by implementing these two methods."""

    def load(self) -> Directory:
        """The whole directory now (``DirectoryFileError`` listing every problem)."""
        ...

    def version(self) -> object:
        """Changes whenever ``load`` would return something else (cheap: polled)."""
        ...


class FileDirectorySource:
    """The directory file (``directory.file``); its version is its size and modification time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> Directory:
        return Directory.load(self.path)

    def version(self) -> object:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)


def identity_problems(
    identities: Sequence[tuple[str, x509.Certificate]], directory: Directory
) -> list[str]:
    """Our own identities (OIN, certificate) against the directory: the certificate it gives
    our OIN must hold one of our keys (by key: a certificate re-issued for the same key is the
    same key; one OIN may hold several keys in a rollover), else every sender encrypts to a key
    we do not hold. A gateway that only sends need not be listed."""
    from oso_gateway.security.keys import spki

    keys: dict[str, set[bytes]] = {}
    for oin, certificate in identities:
        keys.setdefault(oin, set()).add(spki(certificate.public_key()))
    problems = []
    for oin, ours in keys.items():
        entry = directory.gateways.get(oin)
        if entry is None:
            continue
        if spki(entry.encryption_certificate.public_key()) not in ours:
            held = "this gateway's" if len(ours) == 1 else f"any of this gateway's {len(ours)}"
            problems.append(
                f"gateway {oin}: the directory's certificate ({entry.certificate_file}) "
                f"holds another key than {held}: senders would encrypt to a key it does "
                "not hold"
            )
    return problems


class LiveDirectory:
    """The directory every part of a running gateway reads: the current ``Directory`` of its
    source, replaced as a whole by ``reload`` (never half-updated; a broken new version is
    refused and the current one kept)."""

    def __init__(self, source: DirectorySource) -> None:
        self.source = source
        self._version = source.version()
        self._current = source.load()

    @property
    def current(self) -> Directory:
        return self._current

    def changed(self) -> bool:
        return self.source.version() != self._version

    def reload(self) -> Directory:
        """Load the source again (``DirectoryFileError``: the current directory stays)."""
        version = self.source.version()
        self._current = self.source.load()
        self._version = version
        return self._current

    # DirectoryLike and the rest of Directory's queries, on the current version
    def lookup(self, brin: str, vestiging: str) -> SchoolEntry:
        return self._current.lookup(brin, vestiging)

    def check_mandate(self, oin: str, brin: str, vestiging: str) -> None:
        self._current.check_mandate(oin, brin, vestiging)

    def is_mandated(self, oin: str, brin: str, vestiging: str) -> bool:
        return self._current.is_mandated(oin, brin, vestiging)

    def schools(self) -> list[SchoolEntry]:
        return self._current.schools()

    def school_names(self) -> dict[str, str]:
        return self._current.school_names()

    def schools_served_by(self, oin: str) -> list[SchoolEntry]:
        return self._current.schools_served_by(oin)

    @property
    def gateways(self) -> Mapping[str, GatewayEntry]:
        return self._current.gateways

    def check(self, *, trust: TrustConfig | None, now: datetime) -> list[str]:
        return self._current.check(trust=trust, now=now)

    def to_json(self) -> dict[str, Any]:
        return self._current.to_json()
