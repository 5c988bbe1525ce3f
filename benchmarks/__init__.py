"""`make bench`: speed and memory as ratios against primitive floors measured in the same run.

Each module ``benchmarks/bench_*.py`` defines ``run(report: Report, quick: bool) -> None``.
"""
