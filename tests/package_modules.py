"""Import every module of the oso_gateway package (for checks that must see all of it)."""

from __future__ import annotations

import importlib
import pkgutil

import oso_gateway

#: Modules never imported: Alembic scripts run migrations when imported.
_SKIP_PARTS = frozenset({"migrations", "__main__"})


def import_all_modules() -> list[str]:
    """Import every module of the package and return their names. An import failure is raised,
    not skipped: a check that silently misses a module would pass for the wrong reason."""
    names = []
    prefix = oso_gateway.__name__ + "."
    for info in pkgutil.walk_packages(oso_gateway.__path__, prefix):
        if _SKIP_PARTS.intersection(info.name.split(".")):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as exc:
            msg = f"cannot import {info.name}: {exc}"
            raise ImportError(msg) from exc
        names.append(info.name)
    return names
