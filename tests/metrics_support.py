"""Reading the Prometheus text format in tests: every sample of a ``/metrics`` page, checked line
by line, and the page of a list of metric families (through prometheus-client)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

_LINE = re.compile(
    r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"(\{(?P<labels>([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\n]|\\[\\\"n])*\",?)*)\})?"
    r" (?P<value>[-+]?(\d+(\.\d+)?([eE][-+]?\d+)?|Inf|NaN))"
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, checking the format line by line."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    typed: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _hash, _type, name, kind = line.split(" ")
            assert kind in {"gauge", "counter", "histogram"}
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        match = _LINE.fullmatch(line)
        assert match, f"not exposition format: {line!r}"
        name = match["name"]
        assert re.sub(r"_(bucket|sum|count)$", "", name) in typed or name in typed
        labels = frozenset(_LABEL.findall(match["labels"] or ""))
        samples[(name, labels)] = float(match["value"])
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> list[Metric]:
        return self.families


def exposition(families: Iterable[Metric]) -> str:
    """The text format of ``families``, as ``/metrics`` writes it."""
    registry = CollectorRegistry()
    registry.register(_Families(families))
    return generate_latest(registry).decode()
