"""Live trust material: the directory, trust anchors, intermediates and CRLs reloaded without a
restart, when a file changes (polled) or on request (``serve`` asks on SIGHUP).

A reload reads everything anew and swaps it in whole: the receive service, the outbox and the
pull service then verify with the new ``TrustConfig`` (a fresh one: nothing of the old one's
verification cache survives, so a newly revoked certificate is refused at once) and look schools
up in the new directory. A new version that does not load (a malformed CRL, a directory with a
problem) is refused and logged, and the current material stays: a CRL that is not replaced still
goes stale and the gateway then fails closed as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from oso_gateway.errors import GatewayError
from oso_gateway.transfer.directory import LiveDirectory

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.security.trust import TrustConfig
    from oso_gateway.transfer.services import GatewayServices

log = logging.getLogger(__name__)

#: seconds between two looks at the files' modification times
CHECK_INTERVAL = 5.0


def _version(paths: Sequence[Path]) -> tuple[object, ...]:
    versions: list[object] = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            versions.append(None)
            continue
        versions.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(versions)


class TrustReloader:
    """Reloads one gateway's trust material into its services (thread-safe: one at a time)."""

    def __init__(
        self,
        services: GatewayServices,
        *,
        load_trust: Callable[..., TrustConfig],
        on_reload: Sequence[Callable[[], None]] = (),
        extra_crl_files: Callable[[], Sequence[Path]] = tuple,
    ) -> None:
        self.services = services
        #: reads the trust files (``runtime.load_trust``: settings, extra_crls=...)
        self.load_trust = load_trust
        self.on_reload = list(on_reload)
        #: CRL files besides ``trust.crl_files`` (those fetched from distribution points)
        self.extra_crl_files = extra_crl_files
        self._lock = threading.Lock()
        self._files_version = _version(self._files())
        self.reloads = 0
        #: the configuration file, watched only to say that its change needs a restart
        self._config = [services.settings.config_file] if services.settings.config_file else []
        self._config_version = _version(self._config)

    def _files(self) -> list[Path]:
        t = self.services.settings.trust
        return [*t.anchor_files, *t.intermediate_files, *t.crl_files, *self.extra_crl_files()]

    def changed(self) -> bool:
        directory = self.services.directory
        moved = isinstance(directory, LiveDirectory) and directory.changed()
        return moved or _version(self._files()) != self._files_version

    def check(self) -> bool:
        """Reload when a file changed; True when new material was swapped in. A changed
        configuration file is not applied (only the trust material is live): it is said once
        per change, as a warning, so that the operator restarts (a school's inzage policy set
        in `[pull]` held for the command line at once and for the running server not at all:
        a walkthrough)."""
        config_version = _version(self._config)
        if config_version != self._config_version:
            self._config_version = config_version
            log.warning(
                "the configuration file %s changed: a running gateway applies only its trust "
                "material and directory; restart serve and outbox run to apply the rest%s",
                self._config[0],
                _loads(self._config[0]),
            )
        return self.changed() and self.reload()

    def reload(self) -> bool:
        """Read everything anew and swap it in; False (current material kept) on a problem."""
        with self._lock:
            version = _version(self._files())
            try:
                trust = self.load_trust(self.services.settings, extra_crls=self.extra_crl_files())
                directory = self.services.directory
                if isinstance(directory, LiveDirectory):
                    directory.reload()
            except GatewayError as exc:
                self._files_version = version  # not again until the files change again
                self.services.trust_reload_refused = exc.code
                log.error("trust reload refused, keeping the current material: %s %s",
                          exc.code, exc.detail)  # fmt: skip
                return False
            except Exception as exc:  # a loader's own failure: the same refusal, not a dead thread
                self._files_version = version
                self.services.trust_reload_refused = type(exc).__name__
                log.error("trust reload failed, keeping the current material: %s",
                          type(exc).__name__)  # fmt: skip
                return False
            self._files_version = version
            self.services.trust_reload_refused = None
            self.services.apply_trust(trust)
            self.reloads += 1
        for callback in self.on_reload:
            try:
                callback()
            except Exception as exc:  # e.g. the TLS context: the rest of the reload stands
                # and the metric says so: the listener keeps its old CRLs (a review)
                self.services.trust_reload_refused = getattr(exc, "code", type(exc).__name__)
                log.exception("a reload hook failed (the TLS listener keeps its CRLs)")
        log.info("trust material reloaded (%d CRLs)", len(trust.crls))
        self._say_directory_problems(trust)
        return True

    def _say_directory_problems(self, trust: TrustConfig) -> None:
        """What ``directory check`` would say of the directory as reloaded, as warnings: a
        directory that gave our own OIN another gateway's certificate was taken with only
        "trust material reloaded" (an operator's drill). The directory stays in use: each
        problem is one gateway's or one school's, and may be on purpose for a while."""
        from oso_gateway.transfer.directory import identity_problems

        directory = self.services.directory
        if not isinstance(directory, LiveDirectory):
            return
        try:
            current = directory.current
            problems = current.check(trust=trust, now=datetime.now(UTC))
            problems += identity_problems(
                [(i.oin, i.certificate) for i in self.services.identities], current
            )
        except Exception:  # a check's own failure says nothing about the material
            log.exception("checking the reloaded directory failed")
            return
        for problem in problems:
            log.warning(
                "the directory as reloaded: %s (`oso-gateway directory check` lists them)",
                problem,
            )

    def run(
        self, stop: threading.Event, *, wake: threading.Event, interval: float = CHECK_INTERVAL
    ) -> None:
        """Until ``stop``: reload when a file changed, and at once when ``wake`` is set. Nothing
        ends the loop but ``stop``: a configuration file with a typo in its database URL raised
        a ValueError here, the thread died, and the running gateway went on trusting a peer
        whose certificate a new CRL revoked, SIGHUP included (a security review)."""
        while not stop.is_set():
            woken = wake.wait(interval)
            if stop.is_set():
                return
            try:
                if woken:
                    wake.clear()
                    self.reload()
                else:
                    self.check()
            except Exception:
                log.exception("the trust reload check failed; trying again in %.0f s", interval)


def _loads(path: Path) -> str:
    """Empty when the configuration file loads as it is now, else what a restart would refuse
    (said with the change, not found at the restart: an operator's walkthrough)."""
    import os

    from oso_gateway.config import load_settings
    from oso_gateway.store.engine import normalise_url

    try:
        normalise_url(load_settings(path, os.environ).database_url)  # as a restart reads it
    except GatewayError as exc:
        return f" (but it does not load as it is: {exc.code}: {exc.detail}; a restart would fail)"
    except Exception as exc:  # a loader's own failure says as much (and must not end the thread)
        return f" (but it does not load as it is: {type(exc).__name__}; a restart would fail)"
    return ""
