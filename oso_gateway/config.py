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
import dataclasses
import re
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from oso_gateway.errors import ConfigError
from oso_gateway.limits import MAX_MESSAGE_BYTES
from oso_gateway.protocol import SCHOOL_BRIN_PATTERN, VESTIGING_PATTERN, is_oin

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


def setting(
    default: Any,
    *,
    env: bool = False,
    minimum: float | None = 0,
    maximum: float | None = None,
) -> Any:
    """A key of a settings table, declared once: its default, its bounds (numbers), and whether
    ``OSO_GATEWAY_<TABLE>_<KEY>`` may override it. Its type is the field's annotation."""
    return field(default=default, metadata={"env": env, "minimum": minimum, "maximum": maximum})


@dataclass(frozen=True, kw_only=True)
class TrustSettings:
    anchor_files: tuple[Path, ...] = setting(())
    intermediate_files: tuple[Path, ...] = setting(())
    crl_files: tuple[Path, ...] = setting(())
    #: fail closed when a CRL is missing or stale
    require_crl: bool = setting(True, env=True)
    #: minutes between fetches of the CRLs of the certificates' distribution points into
    #: ``<data_dir>/crls`` (0: never)
    crl_fetch_minutes: float = setting(60.0, maximum=10080.0)


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    host: str = setting("127.0.0.1", env=True)
    port: int = setting(8443, env=True, minimum=1, maximum=65535)
    tls_cert_file: Path | None = setting(None, env=True)
    tls_key_file: Path | None = setting(None, env=True)
    #: CA bundle that client certificates (mutual TLS) must chain to
    tls_client_ca_file: Path | None = setting(None, env=True)
    #: also serve ``GET /metrics`` in plain HTTP on 127.0.0.1:<this port> (None: not; 0: any)
    metrics_port: int | None = setting(None, env=True, maximum=65535)


@dataclass(frozen=True, kw_only=True)
class LimitSettings:
    #: the largest sealed message (``oso_gateway.limits``: a dossier with 50 MiB of attachments)
    max_request_bytes: int = setting(MAX_MESSAGE_BYTES, env=True, minimum=1024)
    #: seconds, for outgoing HTTP requests and for reading an incoming request
    request_timeout: float = setting(60.0, env=True, minimum=0.1)
    #: seconds for the whole of an incoming request (headers and body), however it trickles in
    request_deadline: float = setting(300.0, env=True, minimum=0.1)
    #: open connections the server accepts in all, and from one peer address
    max_connections: int = setting(256, env=True, minimum=1)
    max_connections_per_address: int = setting(16, env=True, minimum=1)


@dataclass(frozen=True, kw_only=True)
class RetrySettings:
    """Sender retry policy: exponential back-off ``base_delay * 2**(attempt-1)``, capped."""

    max_attempts: int = setting(10, env=True, minimum=1)
    base_delay: float = setting(30.0, env=True)
    max_delay: float = setting(3600.0, env=True)
    #: fraction (0..1) of the delay added or removed at random
    jitter: float = setting(0.2, env=True, maximum=1.0)
    #: seconds a claimed message stays claimed without the sending worker's heartbeat (a worker
    #: killed mid-send frees it after this long; a live one renews it every third of it)
    lease_seconds: float = setting(15.0, env=True, minimum=1.0, maximum=3600.0)


@dataclass(frozen=True, kw_only=True)
class ConsoleSettings:
    """Operator web console (``docs/console.md``): its own listener, apart from the SOAP port."""

    enabled: bool = setting(False, env=True)
    host: str = setting("127.0.0.1", env=True)
    port: int = setting(8444, env=True, maximum=65535)
    #: URL path the console lives under ("" = the root)
    path_prefix: str = setting("/console", env=True)
    #: idle seconds after which a console session ends
    session_timeout: int = setting(900, env=True, minimum=60, maximum=86400)
    #: send the session cookie only over HTTPS (turn off only for plain-http development)
    cookie_secure: bool = setting(True, env=True)
    #: file holding the session-signing secret (32+ random bytes); None: a new one per process
    secret_key_file: Path | None = setting(None, env=True)
    #: serve the console over HTTPS with this certificate and key (else plain HTTP: loopback or
    #: behind a TLS-terminating reverse proxy)
    tls_cert_file: Path | None = setting(None)
    tls_key_file: Path | None = setting(None)
    #: login attempts (right or wrong) allowed per client address and per account name, counted
    #: in the serving process (Flask-Limiter notation): many operators behind one NAT or proxy
    #: share an address
    login_limit_per_address: str = setting("20/minute;100/hour", env=True)
    login_limit_per_account: str = setting("5/minute;30/hour", env=True)


@dataclass(frozen=True, kw_only=True)
class ApiSettings:
    """The school API (``docs/api.md``): its own listener, apart from the SOAP and console ports."""

    enabled: bool = setting(False, env=True)
    host: str = setting("127.0.0.1", env=True)
    port: int = setting(8445, env=True, maximum=65535)
    #: serve over HTTPS with this certificate and key (else plain HTTP: loopback or behind a
    #: TLS-terminating reverse proxy)
    tls_cert_file: Path | None = setting(None)
    tls_key_file: Path | None = setting(None)
    #: per API client (Flask-Limiter notation, e.g. "120/minute;2000/hour")
    rate_limit: str = setting("120/minute")
    #: requests with a missing or wrong credential, per client address (same notation): over
    #: it, 429 before the credential is looked at
    failed_auth_limit: str = setting("30/minute;300/hour")


@dataclass(frozen=True, kw_only=True)
class DuplicateSettings:
    """Duplicate dossiers (same payload digest): refused when sent, recorded when received."""

    #: hours within which the same dossier for the same school is refused (0: never refused)
    outbound_window_hours: float = setting(168.0)
    #: a received dossier whose content we already hold is recorded as a duplicate of the first
    #: (no second copy); false: imported again
    inbound_record: bool = setting(True)
    #: hours back the receiver looks for the first copy
    inbound_window_hours: float = setting(720.0)


@dataclass(frozen=True, kw_only=True)
class LogSettings:
    """Transfer-log anchors: the signed head (seq, hash) appended to a file kept apart."""

    #: JSON lines; None: ``<data_dir>/transfer-log.anchors``
    anchor_file: Path | None = setting(None, env=True)
    #: anchor when this many events were appended since the last anchor …
    anchor_every_events: int = setting(1000, minimum=1)
    #: … or when this many minutes passed since it (and something was appended)
    anchor_every_minutes: float = setting(60.0, minimum=0.1)
    #: where the retention purge writes the events it prunes from the log (past
    #: ``retention.transfer_log_days``), as JSON lines ``log verify --archive`` reads; None:
    #: pruned events are not kept
    archive_dir: Path | None = setting(None, env=True)
    #: certificates of identities this gateway held before (a renewal): ``log verify`` also
    #: accepts the anchors they signed
    earlier_cert_files: tuple[Path, ...] = setting(())


@dataclass(frozen=True, kw_only=True)
class RetentionSettings:
    """How long each kind of data is kept (days); the retention purge erases what is older.

    Received dossier content counts from its acknowledgement by the school system, or from
    receipt when it was never acknowledged; a closed pull request's record from its last status
    change; the transfer log holds no pupil data and is kept longest.
    """

    received_acknowledged_days: float = setting(30.0)
    received_unfetched_days: float = setting(90.0)
    outbound_undelivered_days: float = setting(30.0)
    rejected_failed_days: float = setting(30.0)
    requests_days: float = setting(90.0)
    #: a school-API Idempotency-Key's record (its keyed hash, the body's digest, the message it
    #: made): a retry with the key after this period is a new call
    idempotency_key_days: float = setting(30.0)
    transfer_log_days: float = setting(3650.0)
    #: the scheduled purge inside ``serve`` runs this often (0: never)
    purge_every_minutes: float = setting(60.0)


def _check_retention(table: Any, r: RetentionSettings) -> RetentionSettings:
    content = max(
        r.received_acknowledged_days,
        r.received_unfetched_days,
        r.outbound_undelivered_days,
        r.rejected_failed_days,
        r.requests_days,
    )
    if r.transfer_log_days < content:
        raise table.error("transfer_log_days", "must be at least the longest content retention")
    return r


#: The tables read into one settings dataclass each, by their TOML name.
SETTINGS_TABLES: dict[str, type[Any]] = {
    "trust": TrustSettings,
    "server": ServerSettings,
    "limits": LimitSettings,
    "retry": RetrySettings,
    "console": ConsoleSettings,
    "log": LogSettings,
    "api": ApiSettings,
    "duplicates": DuplicateSettings,
    "retention": RetentionSettings,
}


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
    #: an inzage (not a waiver) must name the version of the dossier the parents were shown
    #: (``inzage record --previewed``, the API's ``previewed``)
    inzage_requires_version: bool = False


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
    #: the local keyring file (``storage.keyring_file``; None: beside the configuration file)
    keyring_file: Path | None = None
    #: keyring JSON from ``OSO_GATEWAY_STORAGE_KEYRING`` (read-only keyring)
    keyring_text: str | None = field(default=None, repr=False)
    #: a vendor's key provider, "package.module:factory" (``storage.provider``)
    key_provider: str | None = None
    retention: RetentionSettings = RetentionSettings()
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
    def crl_cache_dir(self) -> Path:
        """Where CRLs fetched from distribution points are kept."""
        return self.data_dir / "crls"

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

    def __init__(
        self,
        table: Mapping[str, Any],
        *,
        name: str,
        source: str,
        base_dir: Path,
        from_env: Mapping[str, str] | None = None,
    ) -> None:
        self._table = table
        self._name = name
        self._source = source
        self._base = base_dir
        self._seen: set[str] = set()
        #: dotted key -> the environment variable that set it (an error names the variable)
        self._env: Mapping[str, str] = from_env or {}

    def _key(self, key: str) -> str:
        return f"{self._name}.{key}" if self._name else key

    def error(self, key: str, what: str) -> ConfigError:
        variable = self._env.get(self._key(key))
        if variable is not None:  # the environment's value, not the file's
            return ConfigError(f"environment: {variable} ({self._key(key)}): {what}")
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
        return _Reader(
            value or {},
            name=self._key(key),
            source=self._source,
            base_dir=self._base,
            from_env=self._env,
        )

    def get_tables(self, key: str) -> list[_Reader]:
        value = self._get(key, list, "an array of tables")
        if value is None:
            return []
        if not all(isinstance(v, dict) for v in value):
            raise self.error(key, "must be an array of tables ([[" + self._key(key) + "]])")
        return [
            _Reader(
                v,
                name=f"{self._key(key)}[{i}]",
                source=self._source,
                base_dir=self._base,
                from_env=self._env,
            )
            for i, v in enumerate(value)
        ]

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self._base / path

    def where(self, key: str) -> str:
        """Where ``key``'s value came from, as ``error`` names it: the environment variable
        that set it, or the file and the key."""
        variable = self._env.get(self._key(key))
        if variable is not None:
            return f"environment: {variable} ({self._key(key)})"
        return f"{self._source}: {self._key(key)}"

    def finish(self) -> None:
        """Every key of the table that was not read is an unknown one: all of them named at
        once (with two typos, the second showed only once the first was fixed)."""
        unknown = sorted(set(self._table) - self._seen)
        if len(unknown) == 1:
            raise self.error(unknown[0], "unknown key")
        if unknown:
            names = ", ".join(self._key(key) for key in unknown[:20])
            raise ConfigError(f"{self._source}: unknown keys: {names}")


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
    from_env = _apply_env(doc, env)
    return _build(doc, config_file=path, source=source, base_dir=base_dir, from_env=from_env)


#: Environment overrides of keys outside the settings tables: OSO_GATEWAY_<NAME> -> (table, key,
#: type); the tables' own keys declare theirs with ``setting(..., env=True)``.
_OTHER_ENV_KEYS: dict[str, tuple[str, str, str]] = {
    "DATA_DIR": ("", "data_dir", "Path"),
    "DATABASE_URL": ("", "database_url", "database_url"),
    "STORAGE_KEY": ("storage", "key", "str"),
    "STORAGE_KEY_FILE": ("storage", "key_file", "Path"),
    "STORAGE_KEYRING_FILE": ("storage", "keyring_file", "Path"),
    "STORAGE_KEYRING": ("storage", "keyring", "str"),
    "STORAGE_PROVIDER": ("storage", "provider", "str"),
    "DIRECTORY_FILE": ("directory", "file", "Path"),
}


def _env_keys() -> dict[str, tuple[str, str, str]]:
    keys = dict(_OTHER_ENV_KEYS)
    for table, cls in SETTINGS_TABLES.items():
        for f in fields(cls):
            if f.metadata.get("env"):
                keys[f"{table}_{f.name}".upper()] = (table, f.name, str(f.type))
    return keys


#: Every key the environment can override: OSO_GATEWAY_<NAME> -> (table, key, type).
ENV_KEYS: dict[str, tuple[str, str, str]] = _env_keys()


def _apply_env(doc: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Apply the ``OSO_GATEWAY_*`` variables to ``doc``; returns which dotted keys they set
    (and by which variable)."""
    applied: dict[str, str] = {}
    known = {ENV_PREFIX + name for name in ENV_KEYS} | {CONFIG_ENV}
    for name in env:
        if name.startswith(ENV_PREFIX) and name not in known:
            raise ConfigError(f"environment: {name}: unknown setting")
    for name, (table, key, kind) in ENV_KEYS.items():
        text = env.get(ENV_PREFIX + name)
        if text is None:
            continue
        value = _env_value(text, kind, where=f"environment: {ENV_PREFIX}{name}")
        target = doc.setdefault(table, {}) if table else doc
        if not isinstance(target, dict):
            raise ConfigError(
                f"environment: {ENV_PREFIX}{name}: the file's [{table}] is not a table"
            )
        if table == "storage" and key in {"key", "key_file"}:
            # The environment's key source replaces the file's, whichever form either uses.
            target.pop("key", None)
            target.pop("key_file", None)
        target[key] = value
        applied[f"{table}.{key}" if table else key] = ENV_PREFIX + name
    return applied


def _env_value(text: str, kind: str, *, where: str) -> Any:
    """An environment variable's text as the TOML value of a key of type ``kind``."""
    if kind == "database_url":
        return _resolve_sqlite(text, Path.cwd())
    if "Path" in kind:
        return str(Path(text).expanduser().absolute())
    if kind in ("int", "int | None"):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where}: must be an integer") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where}: must be a number") from None
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered not in {"1", "0", "true", "false", "yes", "no"}:
            raise ConfigError(f"{where}: must be true or false")
        return lowered in {"1", "true", "yes"}
    return text


def _build(
    doc: dict[str, Any],
    *,
    config_file: Path | None,
    source: str,
    base_dir: Path,
    from_env: Mapping[str, str] | None = None,
) -> Settings:
    """The settings from the parsed document, table by table in the file's reference order."""
    top = _Reader(doc, name="", source=source, base_dir=base_dir, from_env=from_env)
    data_dir = top.get_path("data_dir") or base_dir / "data"
    database_url = top.get_str("database_url")
    storage = top.get_table("storage")
    keyring_file = storage.get_path("keyring_file")
    keyring_text = storage.get_str("keyring")
    key_provider = storage.get_str("provider")
    storage_key, missing_key_file = _read_storage_key(storage, source=source)
    settings = Settings(
        config_file=config_file,
        data_dir=data_dir,
        database_url=(
            _resolve_sqlite(database_url, base_dir)
            if database_url
            else default_database_url(data_dir)
        ),
        storage_key=storage_key,
        missing_storage_key_file=missing_key_file,
        keyring_file=keyring_file,
        keyring_text=keyring_text,
        key_provider=key_provider,
        retention=_read_table(
            top.get_table("retention"), RetentionSettings, check=_check_retention
        ),
        identities=tuple(_read_identity(ident) for ident in top.get_tables("identity")),
        trust=_read_table(top.get_table("trust"), TrustSettings),
        directory_file=_read_directory_file(top.get_table("directory")),
        server=_read_table(top.get_table("server"), ServerSettings),
        limits=_read_table(top.get_table("limits"), LimitSettings),
        retry=_read_table(top.get_table("retry"), RetrySettings, check=_check_retry),
        console=_read_table(top.get_table("console"), ConsoleSettings, check=_check_console),
        log=_read_table(top.get_table("log"), LogSettings),
        pull=_pull_settings(top.get_table("pull")),
        api=_read_table(top.get_table("api"), ApiSettings, check=_check_api),
        duplicates=_read_table(top.get_table("duplicates"), DuplicateSettings),
    )
    top.finish()
    return settings


_D = TypeVar("_D")


def _read_table(
    table: _Reader, cls: type[_D], *, check: Callable[[_Reader, _D], _D] | None = None
) -> _D:
    """One settings table: each key as its field declares it (type, bounds); a key not in the
    file keeps the field's default; ``check`` validates the table as a whole."""
    values = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = _read_key(table, f.name, str(f.type), f.metadata)
        if value is not None:
            values[f.name] = value
    result = cls(**values)
    if check is not None:
        result = check(table, result)
    table.finish()
    return result


def _read_key(table: _Reader, key: str, kind: str, meta: Mapping[str, Any]) -> Any:
    if kind == "str":
        return table.get_str(key)
    if kind == "bool":
        return table.get_bool(key)
    if kind in ("int", "int | None"):
        return table.get_int(key, minimum=int(meta["minimum"]), maximum=meta["maximum"])
    if kind == "float":
        return table.get_float(key, minimum=float(meta["minimum"]), maximum=meta["maximum"])
    if kind == "tuple[Path, ...]":
        return table.get_paths(key) or None
    if kind == "Path | None":
        return table.get_path(key)
    raise TypeError(f"no reader for settings of type {kind}")  # a new field type: add it here


def _check_retry(table: _Reader, retry: RetrySettings) -> RetrySettings:
    if retry.max_delay < retry.base_delay:
        raise table.error("max_delay", "must be at least retry.base_delay")
    return retry


def _check_console(table: _Reader, console: ConsoleSettings) -> ConsoleSettings:
    prefix = console.path_prefix.rstrip("/")
    if prefix and (not prefix.startswith("/") or not re.fullmatch(r"[A-Za-z0-9/._-]+", prefix)):
        raise table.error("path_prefix", "must be a URL path such as /console (or /)")
    if (console.tls_cert_file is None) != (console.tls_key_file is None):
        raise table.error(
            "tls_cert_file", "set both console.tls_cert_file and console.tls_key_file"
        )
    for name in ("login_limit_per_address", "login_limit_per_account"):
        if not re.fullmatch(_RATE_LIMIT, getattr(console, name)):
            raise table.error(name, "must read like 5/minute or 5/minute;30/hour")
    return dataclasses.replace(console, path_prefix=prefix)


def _read_storage_key(storage: _Reader, *, source: str) -> tuple[bytes | None, Path | None]:
    """``storage.key`` (base64) or ``storage.key_file`` (raw or base64), not both; and the key
    file when it does not exist (yet): an error only for a command that needs the key."""
    key_text = storage.get_str("key")
    key_file = storage.get_path("key_file")
    storage.finish()
    if key_text is not None and key_file is not None:
        raise storage.error("key", "set either storage.key or storage.key_file, not both")
    if key_text is not None:  # the file's or the environment's (OSO_GATEWAY_STORAGE_KEY)
        return _decode_key(key_text, where=storage.where("key")), None
    if key_file is not None and not key_file.exists():
        return None, key_file
    if key_file is not None:
        return _read_key_file(key_file, where=storage.where("key_file")), None
    return None, None


def _read_identity(ident: _Reader) -> IdentitySettings:
    oin = ident.get_str("oin")
    key = ident.get_path("key_file")
    cert = ident.get_path("cert_file")
    for name, value in (("oin", oin), ("key_file", key), ("cert_file", cert)):
        if value is None:
            raise ident.error(name, "is required")
    assert oin is not None and key is not None and cert is not None
    if not is_oin(oin):
        raise ident.error("oin", "must be exactly 20 digits")
    identity = IdentitySettings(
        oin=oin,
        key_file=key,
        cert_file=cert,
        chain_files=ident.get_paths("chain_files"),
        key_password_file=ident.get_path("key_password_file"),
    )
    ident.finish()
    return identity


def _read_directory_file(directory: _Reader) -> Path | None:
    path = directory.get_path("file")
    directory.finish()
    return path


_T = TypeVar("_T")


def _or(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def _school_policy(table: _Reader, default: SchoolPolicy) -> SchoolPolicy:
    inzage = _or(table.get_str("inzage"), default.inzage)
    if inzage not in INZAGE_POLICIES:
        raise table.error("inzage", "must be one of " + ", ".join(INZAGE_POLICIES))
    return SchoolPolicy(
        inzage=inzage,
        push_requires_inzage=_or(
            table.get_bool("push_requires_inzage"), default.push_requires_inzage
        ),
        inzage_requires_version=_or(
            table.get_bool("inzage_requires_version"), default.inzage_requires_version
        ),
    )


def _pull_settings(p: _Reader) -> PullSettings:
    default = _school_policy(p, SchoolPolicy())
    schools_table = p.get_table("schools")
    schools = []
    for code in sorted(schools_table._table):
        if not re.fullmatch(SCHOOL_BRIN_PATTERN + VESTIGING_PATTERN, code):
            raise schools_table.error(
                code, "must be a school code: BRIN (2 digits, 2 capitals) + vestiging (01AB00)"
            )
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


_RATE_LIMIT = r"\d+ ?(/|per) ?\d* ?[a-z]+( ?[;,] ?\d+ ?(/|per) ?\d* ?[a-z]+)*"


def _check_api(table: _Reader, api: ApiSettings) -> ApiSettings:
    if not re.fullmatch(_RATE_LIMIT, api.rate_limit):
        raise table.error("rate_limit", "must read like 120/minute or 120/minute;2000/hour")
    if not re.fullmatch(_RATE_LIMIT, api.failed_auth_limit):
        raise table.error("failed_auth_limit", "must read like 30/minute or 30/minute;300/hour")
    if (api.tls_cert_file is None) != (api.tls_key_file is None):
        raise table.error("tls_cert_file", "set both api.tls_cert_file and api.tls_key_file")
    return api


def _resolve_sqlite(url: str, base_dir: Path) -> str:
    """A relative SQLite file path is relative to the configuration file, like other paths."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
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
