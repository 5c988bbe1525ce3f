"""Gateway settings: read once from a TOML file plus ``OSO_GATEWAY_*`` environment overrides.

``load_settings(path, env)`` returns a frozen ``Settings``; the caller passes it explicitly to
whatever needs it (no global state). Relative paths in the file resolve against the file's own
directory; relative paths from the environment resolve against the working directory.

Every problem is a ``ConfigError`` (OSO-E501) that names the key and the file, never a value that
might be secret. Unknown keys are errors too (a typo must not silently fall back to a default).
The full key reference is in ``docs/operations.md``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from oso_gateway.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.security.trust import TrustConfig
    from oso_gateway.security.wss import Identity

_T = TypeVar("_T")

ENV_PREFIX = "OSO_GATEWAY_"
#: The environment variable naming the configuration file (used by the CLI's ``--config``).
CONFIG_ENV = "OSO_GATEWAY_CONFIG"
STORAGE_KEY_BYTES = 32


@dataclass(frozen=True, kw_only=True)
class IdentitySettings:
    """One local gateway identity (an OIN with its signing/decryption key and certificate)."""

    oin: str
    key_file: Path
    cert_file: Path
    #: intermediate certificates sent along / used for path building (optional)
    chain_files: tuple[Path, ...] = ()
    #: file holding the private key's passphrase (optional; the key file may be unencrypted)
    key_password_file: Path | None = None


@dataclass(frozen=True, kw_only=True)
class TrustSettings:
    anchor_files: tuple[Path, ...] = ()
    intermediate_files: tuple[Path, ...] = ()
    crl_files: tuple[Path, ...] = ()
    #: fail closed when a CRL is missing or stale
    require_crl: bool = True


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8443
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: CA bundle that client certificates (mutual TLS) must chain to
    tls_client_ca_file: Path | None = None
    #: also serve ``GET /metrics`` in plain HTTP on 127.0.0.1:<this port> (None: not; 0: any)
    metrics_port: int | None = None


@dataclass(frozen=True, kw_only=True)
class LimitSettings:
    max_request_bytes: int = 64 * 1024 * 1024
    #: seconds, for outgoing HTTP requests and for reading an incoming request
    request_timeout: float = 60.0


@dataclass(frozen=True, kw_only=True)
class RetrySettings:
    """Sender retry policy: exponential back-off ``base_delay * 2**(attempt-1)``, capped."""

    max_attempts: int = 10
    base_delay: float = 30.0
    max_delay: float = 3600.0
    #: fraction (0..1) of the delay added or removed at random
    jitter: float = 0.2
    #: seconds a claimed message stays claimed without the sending worker's heartbeat (a worker
    #: killed mid-send frees it after this long; a live one renews it every third of it)
    lease_seconds: float = 15.0


@dataclass(frozen=True, kw_only=True)
class ConsoleSettings:
    """Operator web console (``docs/console.md``): its own listener, apart from the SOAP port."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8444
    #: URL path the console lives under ("" = the root)
    path_prefix: str = "/console"
    #: idle seconds after which a console session ends
    session_timeout: int = 900
    #: send the session cookie only over HTTPS (turn off only for plain-http development)
    cookie_secure: bool = True
    #: file holding the session-signing secret (32+ random bytes); None: a new one per process
    secret_key_file: Path | None = None
    #: serve the console over HTTPS with this certificate and key (else plain HTTP: loopback or
    #: behind a TLS-terminating reverse proxy)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


@dataclass(frozen=True, kw_only=True)
class ApiSettings:
    """The school API (``docs/api.md``): its own listener, apart from the SOAP and console ports."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8445
    #: serve over HTTPS with this certificate and key (else plain HTTP: loopback or behind a
    #: TLS-terminating reverse proxy)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: per API client (Flask-Limiter notation, e.g. "120/minute;2000/hour")
    rate_limit: str = "120/minute"


@dataclass(frozen=True, kw_only=True)
class DuplicateSettings:
    """Duplicate dossiers (same payload digest): refused when sent, recorded when received."""

    #: hours within which the same dossier for the same school is refused (0: never refused)
    outbound_window_hours: float = 168.0
    #: a received dossier whose content we already hold is recorded as a duplicate of the first
    #: (no second copy); false: imported again
    inbound_record: bool = True
    #: hours back the receiver looks for the first copy
    inbound_window_hours: float = 720.0


@dataclass(frozen=True, kw_only=True)
class LogSettings:
    """Transfer-log anchors: the signed head (seq, hash) appended to a file kept apart."""

    #: JSON lines; None: ``<data_dir>/transfer-log.anchors``
    anchor_file: Path | None = None
    #: anchor when this many events were appended since the last anchor …
    anchor_every_events: int = 1000
    #: … or when this many minutes passed since it (and something was appended)
    anchor_every_minutes: float = 60.0


#: What a school's policy asks before a dossier leaves (``[pull]`` ``inzage``).
INZAGE_REQUIRED = "required"  #: the parents' inzage must be recorded
INZAGE_OR_WAIVER = "required-or-waived"  #: recorded, or waived with a recorded reason
INZAGE_NOT_REQUIRED = "not-required"  #: no gate
INZAGE_POLICIES = (INZAGE_REQUIRED, INZAGE_OR_WAIVER, INZAGE_NOT_REQUIRED)


@dataclass(frozen=True, kw_only=True)
class SchoolPolicy:
    """One school's inzage policy (the old school's side of the pull workflow)."""

    inzage: str = INZAGE_REQUIRED
    #: the gate holds for a pushed (unrequested) dossier too
    push_requires_inzage: bool = False


@dataclass(frozen=True, kw_only=True)
class PullSettings:
    """The pull workflow (``docs/protocol.md``): deadlines and each school's inzage policy."""

    #: the old school answers a request within this many days (its inbox shows the deadline)
    answer_days: int = 10
    #: a request the new school sent expires when not delivered within this many days
    expire_days: int = 42
    #: the policy of a school without its own ``[pull.schools."BRINVV"]`` table
    default_policy: SchoolPolicy = SchoolPolicy()
    #: per school code (BRIN + vestiging)
    schools: tuple[tuple[str, SchoolPolicy], ...] = ()

    def policy_for(self, school: str) -> SchoolPolicy:
        return dict(self.schools).get(school, self.default_policy)


@dataclass(frozen=True, kw_only=True)
class Settings:
    #: the file the settings came from (None: defaults + environment only)
    config_file: Path | None = None
    data_dir: Path
    database_url: str
    #: 32-byte at-rest key; None when not configured (commands needing it then fail)
    storage_key: bytes | None = field(default=None, repr=False)
    #: ``storage.key_file`` when it does not exist (yet): commands that need the key then say
    #: how to create it; those that do not (``db upgrade``, ``directory check``) still run
    missing_storage_key_file: Path | None = None
    identities: tuple[IdentitySettings, ...] = ()
    trust: TrustSettings = TrustSettings()
    directory_file: Path | None = None
    server: ServerSettings = ServerSettings()
    limits: LimitSettings = LimitSettings()
    retry: RetrySettings = RetrySettings()
    console: ConsoleSettings = ConsoleSettings()
    log: LogSettings = LogSettings()
    pull: PullSettings = PullSettings()
    api: ApiSettings = ApiSettings()
    duplicates: DuplicateSettings = DuplicateSettings()

    @property
    def anchor_file(self) -> Path:
        """Where transfer-log anchors are appended (``log.anchor_file`` or the data directory)."""
        return self.log.anchor_file or self.data_dir / "transfer-log.anchors"

    def require_storage_key(self) -> bytes:
        """The at-rest key, or ``ConfigError`` when none is configured."""
        if self.storage_key is None and self.missing_storage_key_file is not None:
            raise ConfigError(
                f"storage.key_file {self.missing_storage_key_file} does not exist: create it "
                f"with `oso-gateway db keygen --out {self.missing_storage_key_file}`"
            )
        if self.storage_key is None:
            raise ConfigError(
                f"no at-rest storage key configured: set storage.key or storage.key_file "
                f"in {self._where()} or {ENV_PREFIX}STORAGE_KEY"
            )
        return self.storage_key

    def require_directory_file(self) -> Path:
        if self.directory_file is None:
            raise ConfigError(
                f"no directory file configured: set directory.file in {self._where()} "
                f"or {ENV_PREFIX}DIRECTORY_FILE"
            )
        return self.directory_file

    def _where(self) -> str:
        return str(self.config_file) if self.config_file else "the configuration file"


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'gateway.sqlite').as_posix()}"


# --- reading ------------------------------------------------------------------------------------


class _Reader:
    """Typed access to one TOML table; remembers which keys were read to report unknown ones."""

    def __init__(self, table: Mapping[str, Any], *, name: str, source: str, base_dir: Path) -> None:
        self._table = table
        self._name = name
        self._source = source
        self._base = base_dir
        self._seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self._name}.{key}" if self._name else key

    def error(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self._source}: {self._key(key)}: {what}")

    def _get(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        self._seen.add(key)
        value = self._table.get(key)
        if value is None:
            return None
        # bool is an int in Python: keep them apart.
        if isinstance(value, bool) and kind is not bool:
            raise self.error(key, f"must be {what}")
        if not isinstance(value, kind):
            raise self.error(key, f"must be {what}")
        return value

    def get_str(self, key: str) -> str | None:
        value = self._get(key, str, "a string")
        if value is not None and not value.strip():
            raise self.error(key, "must not be empty")
        return value  # type: ignore[no-any-return]

    def get_int(self, key: str, *, minimum: int = 0, maximum: int | None = None) -> int | None:
        value = self._get(key, int, "an integer")
        if value is not None and (value < minimum or (maximum is not None and value > maximum)):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise self.error(key, f"must be {bound}")
        return value  # type: ignore[no-any-return]

    def get_float(
        self, key: str, *, minimum: float = 0.0, maximum: float | None = None
    ) -> float | None:
        value = self._get(key, (int, float), "a number")
        if value is not None and (value < minimum or (maximum is not None and value > maximum)):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise self.error(key, f"must be {bound}")
        return None if value is None else float(value)

    def get_bool(self, key: str) -> bool | None:
        return self._get(key, bool, "true or false")  # type: ignore[no-any-return]

    def get_path(self, key: str) -> Path | None:
        value = self.get_str(key)
        return None if value is None else self.resolve(value)

    def get_paths(self, key: str) -> tuple[Path, ...]:
        value = self._get(key, list, "a list of file paths")
        if value is None:
            return ()
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(key, "must be a list of file paths")
        return tuple(self.resolve(v) for v in value)

    def get_table(self, key: str) -> _Reader:
        value = self._get(key, dict, "a table")
        return _Reader(value or {}, name=self._key(key), source=self._source, base_dir=self._base)

    def get_tables(self, key: str) -> list[_Reader]:
        value = self._get(key, list, "an array of tables")
        if value is None:
            return []
        if not all(isinstance(v, dict) for v in value):
            raise self.error(key, "must be an array of tables ([[" + self._key(key) + "]])")
        return [
            _Reader(v, name=f"{self._key(key)}[{i}]", source=self._source, base_dir=self._base)
            for i, v in enumerate(value)
        ]

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self._base / path

    def finish(self) -> None:
        unknown = sorted(set(self._table) - self._seen)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _decode_key(text: str, *, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: the storage key is not valid base64") from None
    if len(key) != STORAGE_KEY_BYTES:
        raise ConfigError(
            f"{where}: the storage key must be {STORAGE_KEY_BYTES} bytes (base64), "
            f"got {len(key)} bytes"
        )
    return key


def _read_key_file(path: Path, *, where: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read key file {path} ({exc.strerror})") from None
    # A key file holds the 32 raw bytes or their base64 (as `oso-gateway db keygen` writes).
    if len(data) == STORAGE_KEY_BYTES:
        return data
    return _decode_key(data.decode("ascii", "replace"), where=f"{where} ({path})")


def generate_storage_key() -> str:
    """A fresh random at-rest key, base64 (for a key file or ``storage.key``)."""
    return base64.b64encode(secrets.token_bytes(STORAGE_KEY_BYTES)).decode("ascii")


def load_settings(path: Path | None, env: Mapping[str, str]) -> Settings:
    """Read ``path`` (TOML; None: defaults only), then apply ``OSO_GATEWAY_*`` from ``env``."""
    if path is not None:
        path = Path(path).expanduser().resolve()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path} ({exc.strerror})") from None
        try:
            doc = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            # The message names line and column; it quotes no value.
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        base_dir = path.parent
        source = str(path)
    else:
        doc = {}
        base_dir = Path.cwd()
        source = "defaults"
    _apply_env(doc, env)
    return _build(doc, config_file=path, source=source, base_dir=base_dir)


#: Scalar keys that the environment can override: OSO_GATEWAY_<NAME> -> (table, key).
ENV_KEYS: dict[str, tuple[str, str]] = {
    "DATA_DIR": ("", "data_dir"),
    "DATABASE_URL": ("", "database_url"),
    "STORAGE_KEY": ("storage", "key"),
    "STORAGE_KEY_FILE": ("storage", "key_file"),
    "DIRECTORY_FILE": ("directory", "file"),
    "TRUST_REQUIRE_CRL": ("trust", "require_crl"),
    "SERVER_HOST": ("server", "host"),
    "SERVER_PORT": ("server", "port"),
    "SERVER_TLS_CERT_FILE": ("server", "tls_cert_file"),
    "SERVER_TLS_KEY_FILE": ("server", "tls_key_file"),
    "SERVER_TLS_CLIENT_CA_FILE": ("server", "tls_client_ca_file"),
    "LIMITS_MAX_REQUEST_BYTES": ("limits", "max_request_bytes"),
    "LIMITS_REQUEST_TIMEOUT": ("limits", "request_timeout"),
    "RETRY_MAX_ATTEMPTS": ("retry", "max_attempts"),
    "RETRY_BASE_DELAY": ("retry", "base_delay"),
    "RETRY_MAX_DELAY": ("retry", "max_delay"),
    "RETRY_JITTER": ("retry", "jitter"),
    "RETRY_LEASE_SECONDS": ("retry", "lease_seconds"),
    "SERVER_METRICS_PORT": ("server", "metrics_port"),
    "CONSOLE_ENABLED": ("console", "enabled"),
    "CONSOLE_HOST": ("console", "host"),
    "CONSOLE_PORT": ("console", "port"),
    "CONSOLE_PATH_PREFIX": ("console", "path_prefix"),
    "CONSOLE_SESSION_TIMEOUT": ("console", "session_timeout"),
    "CONSOLE_COOKIE_SECURE": ("console", "cookie_secure"),
    "CONSOLE_SECRET_KEY_FILE": ("console", "secret_key_file"),
    "LOG_ANCHOR_FILE": ("log", "anchor_file"),
    "API_ENABLED": ("api", "enabled"),
    "API_HOST": ("api", "host"),
    "API_PORT": ("api", "port"),
}
_PATH_KEYS = {
    "data_dir",
    "key_file",
    "file",
    "tls_cert_file",
    "tls_key_file",
    "tls_client_ca_file",
    "anchor_file",
    "secret_key_file",
}
_INT_KEYS = {"port", "metrics_port", "max_request_bytes", "max_attempts", "session_timeout"}
_FLOAT_KEYS = {"request_timeout", "base_delay", "max_delay", "jitter", "lease_seconds"}
_BOOL_KEYS = {"require_crl", "enabled", "cookie_secure"}


def _apply_env(doc: dict[str, Any], env: Mapping[str, str]) -> None:
    known = {ENV_PREFIX + name for name in ENV_KEYS} | {CONFIG_ENV}
    for name in env:
        if name.startswith(ENV_PREFIX) and name not in known:
            raise ConfigError(f"environment: {name}: unknown setting")
    for name, (table, key) in ENV_KEYS.items():
        text = env.get(ENV_PREFIX + name)
        if text is None:
            continue
        where = f"environment: {ENV_PREFIX}{name}"
        value: Any = text
        if key == "database_url":
            value = _resolve_sqlite(text, Path.cwd())
        elif key in _PATH_KEYS:
            value = str(Path(text).expanduser().absolute())
        elif key in _INT_KEYS:
            try:
                value = int(text)
            except ValueError:
                raise ConfigError(f"{where}: must be an integer") from None
        elif key in _FLOAT_KEYS:
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"{where}: must be a number") from None
        elif key in _BOOL_KEYS:
            lowered = text.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no"}:
                raise ConfigError(f"{where}: must be true or false")
            value = lowered in {"1", "true", "yes"}
        target = doc.setdefault(table, {}) if table else doc
        if not isinstance(target, dict):
            raise ConfigError(f"{where}: the file's [{table}] is not a table")
        if table == "storage" and key in {"key", "key_file"}:
            # The environment's key source replaces the file's, whichever form either uses.
            target.pop("key", None)
            target.pop("key_file", None)
        target[key] = value


def _build(
    doc: dict[str, Any], *, config_file: Path | None, source: str, base_dir: Path
) -> Settings:
    top = _Reader(doc, name="", source=source, base_dir=base_dir)
    data_dir = top.get_path("data_dir") or base_dir / "data"
    database_url = top.get_str("database_url")
    database_url = (
        _resolve_sqlite(database_url, base_dir) if database_url else default_database_url(data_dir)
    )

    storage = top.get_table("storage")
    key_text = storage.get_str("key")
    key_file = storage.get_path("key_file")
    storage.finish()
    storage_key: bytes | None = None
    missing_key_file: Path | None = None
    if key_text is not None and key_file is not None:
        raise storage.error("key", "set either storage.key or storage.key_file, not both")
    if key_text is not None:
        storage_key = _decode_key(key_text, where=f"{source}: storage.key")
    elif key_file is not None and not key_file.exists():
        missing_key_file = key_file  # an error only for a command that needs the key
    elif key_file is not None:
        storage_key = _read_key_file(key_file, where=f"{source}: storage.key_file")

    identities = []
    for ident in top.get_tables("identity"):
        oin = ident.get_str("oin")
        key = ident.get_path("key_file")
        cert = ident.get_path("cert_file")
        for name, value in (("oin", oin), ("key_file", key), ("cert_file", cert)):
            if value is None:
                raise ident.error(name, "is required")
        assert oin is not None and key is not None and cert is not None
        if not (len(oin) == 20 and oin.isascii() and oin.isdigit()):
            raise ident.error("oin", "must be exactly 20 digits")
        identities.append(
            IdentitySettings(
                oin=oin,
                key_file=key,
                cert_file=cert,
                chain_files=ident.get_paths("chain_files"),
                key_password_file=ident.get_path("key_password_file"),
            )
        )
        ident.finish()

    t = top.get_table("trust")
    trust = TrustSettings(
        anchor_files=t.get_paths("anchor_files"),
        intermediate_files=t.get_paths("intermediate_files"),
        crl_files=t.get_paths("crl_files"),
        require_crl=_or(t.get_bool("require_crl"), True),
    )
    t.finish()

    d = top.get_table("directory")
    directory_file = d.get_path("file")
    d.finish()

    s = top.get_table("server")
    server = ServerSettings(
        host=_or(s.get_str("host"), ServerSettings.host),
        port=_or(s.get_int("port", minimum=1, maximum=65535), ServerSettings.port),
        tls_cert_file=s.get_path("tls_cert_file"),
        tls_key_file=s.get_path("tls_key_file"),
        tls_client_ca_file=s.get_path("tls_client_ca_file"),
        metrics_port=s.get_int("metrics_port", minimum=0, maximum=65535),
    )
    s.finish()

    lim = top.get_table("limits")
    limits = LimitSettings(
        max_request_bytes=_or(
            lim.get_int("max_request_bytes", minimum=1024), LimitSettings.max_request_bytes
        ),
        request_timeout=_or(
            lim.get_float("request_timeout", minimum=0.1), LimitSettings.request_timeout
        ),
    )
    lim.finish()

    r = top.get_table("retry")
    retry = RetrySettings(
        max_attempts=_or(r.get_int("max_attempts", minimum=1), RetrySettings.max_attempts),
        base_delay=_or(r.get_float("base_delay"), RetrySettings.base_delay),
        max_delay=_or(r.get_float("max_delay"), RetrySettings.max_delay),
        jitter=_or(r.get_float("jitter", maximum=1.0), RetrySettings.jitter),
        lease_seconds=_or(
            r.get_float("lease_seconds", minimum=1.0, maximum=3600.0), RetrySettings.lease_seconds
        ),
    )
    if retry.max_delay < retry.base_delay:
        raise r.error("max_delay", "must be at least retry.base_delay")
    r.finish()

    c = top.get_table("console")
    prefix = _or(c.get_str("path_prefix"), ConsoleSettings.path_prefix).rstrip("/")
    if prefix and (not prefix.startswith("/") or not re.fullmatch(r"[A-Za-z0-9/._-]+", prefix)):
        raise c.error("path_prefix", "must be a URL path such as /console (or /)")
    console = ConsoleSettings(
        enabled=_or(c.get_bool("enabled"), False),
        host=_or(c.get_str("host"), ConsoleSettings.host),
        port=_or(c.get_int("port", minimum=0, maximum=65535), ConsoleSettings.port),
        path_prefix=prefix,
        session_timeout=_or(
            c.get_int("session_timeout", minimum=60, maximum=86400),
            ConsoleSettings.session_timeout,
        ),
        cookie_secure=_or(c.get_bool("cookie_secure"), True),
        secret_key_file=c.get_path("secret_key_file"),
        tls_cert_file=c.get_path("tls_cert_file"),
        tls_key_file=c.get_path("tls_key_file"),
    )
    if (console.tls_cert_file is None) != (console.tls_key_file is None):
        raise c.error("tls_cert_file", "set both console.tls_cert_file and console.tls_key_file")
    c.finish()

    lg = top.get_table("log")
    log = LogSettings(
        anchor_file=lg.get_path("anchor_file"),
        anchor_every_events=_or(
            lg.get_int("anchor_every_events", minimum=1), LogSettings.anchor_every_events
        ),
        anchor_every_minutes=_or(
            lg.get_float("anchor_every_minutes", minimum=0.1), LogSettings.anchor_every_minutes
        ),
    )
    lg.finish()

    pull = _pull_settings(top.get_table("pull"))
    api = _api_settings(top.get_table("api"))
    duplicates = _duplicate_settings(top.get_table("duplicates"))

    top.finish()
    return Settings(
        config_file=config_file,
        data_dir=data_dir,
        database_url=database_url,
        storage_key=storage_key,
        missing_storage_key_file=missing_key_file,
        identities=tuple(identities),
        trust=trust,
        directory_file=directory_file,
        server=server,
        limits=limits,
        retry=retry,
        console=console,
        log=log,
        pull=pull,
        api=api,
        duplicates=duplicates,
    )


def _school_policy(table: _Reader, default: SchoolPolicy) -> SchoolPolicy:
    inzage = _or(table.get_str("inzage"), default.inzage)
    if inzage not in INZAGE_POLICIES:
        raise table.error("inzage", "must be one of " + ", ".join(INZAGE_POLICIES))
    return SchoolPolicy(
        inzage=inzage,
        push_requires_inzage=_or(
            table.get_bool("push_requires_inzage"), default.push_requires_inzage
        ),
    )


def _pull_settings(p: _Reader) -> PullSettings:
    default = _school_policy(p, SchoolPolicy())
    schools_table = p.get_table("schools")
    schools = []
    for code in sorted(schools_table._table):
        if not re.fullmatch(r"[0-9]{2}[0-9A-Z]{2}[0-9]{2}", code):
            raise schools_table.error(code, "must be a school code BRIN + vestiging (01AB00)")
        table = schools_table.get_table(code)
        schools.append((code, _school_policy(table, default)))
        table.finish()
    schools_table.finish()
    pull = PullSettings(
        answer_days=_or(p.get_int("answer_days", minimum=1), PullSettings.answer_days),
        expire_days=_or(p.get_int("expire_days", minimum=1), PullSettings.expire_days),
        default_policy=default,
        schools=tuple(schools),
    )
    p.finish()
    return pull


def _api_settings(a: _Reader) -> ApiSettings:
    limit = _or(a.get_str("rate_limit"), ApiSettings.rate_limit)
    if not re.fullmatch(r"\d+ ?(/|per) ?\d* ?[a-z]+( ?[;,] ?\d+ ?(/|per) ?\d* ?[a-z]+)*", limit):
        raise a.error("rate_limit", "must read like 120/minute or 120/minute;2000/hour")
    api = ApiSettings(
        enabled=_or(a.get_bool("enabled"), False),
        host=_or(a.get_str("host"), ApiSettings.host),
        port=_or(a.get_int("port", minimum=0, maximum=65535), ApiSettings.port),
        tls_cert_file=a.get_path("tls_cert_file"),
        tls_key_file=a.get_path("tls_key_file"),
        rate_limit=limit,
    )
    if (api.tls_cert_file is None) != (api.tls_key_file is None):
        raise a.error("tls_cert_file", "set both api.tls_cert_file and api.tls_key_file")
    a.finish()
    return api


def _duplicate_settings(d: _Reader) -> DuplicateSettings:
    result = DuplicateSettings(
        outbound_window_hours=_or(
            d.get_float("outbound_window_hours"), DuplicateSettings.outbound_window_hours
        ),
        inbound_record=_or(d.get_bool("inbound_record"), True),
        inbound_window_hours=_or(
            d.get_float("inbound_window_hours"), DuplicateSettings.inbound_window_hours
        ),
    )
    d.finish()
    return result


def _resolve_sqlite(url: str, base_dir: Path) -> str:
    """A relative SQLite file path is relative to the configuration file, like other paths."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # reported (without echoing it) when the engine is created
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
        or Path(database).is_absolute()
    ):
        return url
    resolved = parsed.set(database=str(base_dir / Path(database).expanduser()))
    return resolved.render_as_string(hide_password=False)


def _or(value: _T | None, default: _T) -> _T:
    return default if value is None else value


# --- security objects from the settings (file I/O happens here, not in oso_gateway.security) ---


def _read(path: Path, *, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path} ({exc.strerror})") from None


def _spki(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_identities(settings: Settings) -> tuple[Identity, ...]:
    """Our gateway identities as ``oso_gateway.security.wss.Identity`` objects."""
    from oso_gateway.security.keys import load_certificate, load_certificates, load_private_key
    from oso_gateway.security.trust import oin_of
    from oso_gateway.security.wss import Identity

    result = []
    for ident in settings.identities:
        password = None
        if ident.key_password_file is not None:
            password = _read(ident.key_password_file, what="key password file").strip()
        key = load_private_key(_read(ident.key_file, what="private key file"), password=password)
        cert = load_certificate(_read(ident.cert_file, what="certificate file"))
        if _spki(cert.public_key()) != _spki(key.public_key()):
            raise ConfigError(
                f"identity {ident.oin}: certificate {ident.cert_file} does not match the key"
            )
        if oin_of(cert) != ident.oin:
            raise ConfigError(
                f"identity {ident.oin}: certificate {ident.cert_file} carries another OIN"
            )
        chain = tuple(
            c for p in ident.chain_files for c in load_certificates(_read(p, what="chain file"))
        )
        result.append(Identity(oin=ident.oin, private_key=key, certificate=cert, chain=chain))
    return tuple(result)


def load_trust(settings: Settings) -> TrustConfig:
    """The trust configuration (anchors, intermediates, CRLs) read from the configured files."""
    from oso_gateway.security.trust import TrustConfig

    t = settings.trust
    if not t.anchor_files:
        raise ConfigError("no trust anchors configured: set trust.anchor_files")
    return TrustConfig.from_pem(
        anchors=[_read(p, what="trust anchor file") for p in t.anchor_files],
        intermediates=[
            _read(p, what="intermediate certificate file") for p in t.intermediate_files
        ],
        crls=[_read(p, what="CRL file") for p in t.crl_files],
        require_crl=t.require_crl,
    )
