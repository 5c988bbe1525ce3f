"""Run every benchmark module and print one report. `python -m benchmarks [--quick] [NAME...]`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def median_time(fn: Callable[[], object], *, repeat: int = 7, min_time: float = 0.05) -> float:
    """Median wall time of one call of ``fn`` in seconds (each sample loops until min_time)."""
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        n = 0
        start = time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        samples.append(elapsed / n)
    return statistics.median(samples)


@dataclass
class Report:
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def section(self, title: str) -> None:
        print(f"\n== {title}")
        sys.stdout.flush()

    def line(self, name: str, value: str, note: str = "") -> None:
        self.rows.append((name, value, note))
        print(f"  {name:<48} {value:>14}  {note}")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller sizes")
    parser.add_argument("names", nargs="*", help="run only these benchmark modules (e.g. dossier)")
    args = parser.parse_args(argv)
    here = Path(__file__).parent
    modules = sorted(
        m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")
    )
    report = Report()
    for name in modules:
        short = name.removeprefix("bench_")
        if args.names and short not in args.names:
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        module.run(report, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
