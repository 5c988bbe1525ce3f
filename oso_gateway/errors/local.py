"""OSO-E5xx: our own side (configuration, store, storage keys, the transfer log)."""

from __future__ import annotations

from oso_gateway.errors.base import LocalError


class ConfigError(LocalError):
    """The configuration file, environment or a file it names is missing or invalid; the detail
    names file and key, never a secret."""

    code = "OSO-E501"
    public_message = "The gateway is misconfigured."


class StoreUnavailable(LocalError):
    """The database cannot be reached or is locked past the busy timeout; nothing was stored,
    try again."""

    code = "OSO-E502"
    http_status = 503
    transient = True
    public_message = "The receiving gateway is temporarily unavailable; try again later."


class SchemaNotCurrent(LocalError):
    """The database schema is behind this version (run `oso-gateway db upgrade`) or ahead of it."""

    code = "OSO-E503"
    http_status = 503
    public_message = "The receiving gateway is temporarily unavailable; try again later."


class AtRestDecryptionError(LocalError):
    """Stored data cannot be decrypted: wrong storage key, or the row was altered or swapped."""

    code = "OSO-E504"
    #: At a receiver it is the receiver's own state (a keyring not yet re-read, a key its
    #: operator restores): the sender tries again later rather than give the dossier up.
    transient = True


class DirectoryFileError(ConfigError):
    """The directory file is malformed; ``problems`` lists every problem found."""

    code = "OSO-E505"

    def __init__(self, detail: str = "", problems: tuple[str, ...] = ()) -> None:
        self.problems = problems or (detail,)
        super().__init__(detail or "; ".join(problems))


class LogEventInvalid(LocalError):
    """We tried to write a transfer-log event with an unknown field or a value of the wrong form."""

    code = "OSO-E520"
    public_message = "Internal error at the gateway (transfer log)."


class LogAnchorInvalid(LocalError):
    """An anchor file entry is malformed or its signature does not verify."""

    code = "OSO-E521"
    public_message = "The transfer log anchor is not valid."


class LogChainBroken(LocalError):
    """The transfer log does not verify where the retention purge was to prune it (a broken
    link, an anchor that names another event there, or a recorded base no base anchor names):
    nothing was pruned or signed; run `oso-gateway log verify` and find out what changed the
    log."""

    code = "OSO-E522"
    public_message = "Internal error at the gateway (transfer log)."


# --- operations (issue 14 ops): OSO-E560..E589 ---


class DatabaseMissing(ConfigError):
    """A command that reads the store found no database where the settings point (typically
    run without ``--config``): it is not created silently; run ``oso-gateway db upgrade`` with
    the same configuration, or pass ``--config``."""

    code = "OSO-E560"


class ListenFailed(ConfigError):
    """The server could not listen on its address and port (in use by another process, or not
    an address of this machine); the detail names address, port and the system's reason."""

    code = "OSO-E561"


class OutputUnwritable(LocalError):
    """A command's output file cannot be written (no such directory, not a directory, no
    permission); the detail names the file and the system's reason. Nothing was written."""

    code = "OSO-E562"


class GatewayRunning(LocalError):
    """``db upgrade`` found gateway processes running on the database (``serve``, its receiver
    and outbox processes, ``outbox run``): the schema is not migrated under them. Stop every
    one of them, then upgrade; the detail says how many hold the database, and where."""

    code = "OSO-E563"


class UpgradeInProgress(LocalError):
    """A gateway process did not start: ``db upgrade`` was migrating its database and had not
    finished within the wait. Start it again once the upgrade has ended."""

    code = "OSO-E564"
