"""CLI command modules. Each module defines ``register(group)`` adding its commands."""

from __future__ import annotations

import importlib
import pkgutil

import click


def register_all(group: click.Group) -> None:
    """Import every module in this package and let it add its commands to ``group``."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(group)
