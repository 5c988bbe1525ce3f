"""A school leaving the directory, as an operator's job does it: the directory file rewritten
without the school's entry and replaced atomically (a running gateway reloads it)."""

from __future__ import annotations

import os
from pathlib import Path


def without_school(path: Path, code: str) -> str:
    """Remove the ``[[schools]]`` entry of ``code`` from the directory file, replacing the file
    atomically as an operator's job does; returns the text before."""
    before = path.read_text(encoding="utf-8")
    head, *blocks = before.split("[[schools]]")
    brin, vestiging = code[:4], code[4:]
    kept = [
        b for b in blocks if not (f'brin = "{brin}"' in b and f'vestiging = "{vestiging}"' in b)
    ]
    assert len(kept) == len(blocks) - 1, f"{code} is not in {path}"
    replace_file(path, head + "".join("[[schools]]" + b for b in kept))
    return before


def replace_file(path: Path, text: str) -> None:
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, path)
